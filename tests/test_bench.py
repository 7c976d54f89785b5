"""The benchmark's dry run (``lora-verify bench --dry-run --tiny``): every batch built, every implementation called
once and checked against the float64 reference, every row ok or skipped with its reason; and the grids' plans."""

import sys
import types

import pytest

import impl
from lora_verify.bench import cli, grid, peers
from lora_verify.bench.results import derive, load
from lora_verify.bench.tables import goals

OFF = 1.03  # the planted peer's output is 3% off: far outside bf16's bound


class Prepared(types.SimpleNamespace):
    """The planted peer's own batch info."""


def _planted():
    """A module with SPEC.md's entry points that calls ours and scales the output: the check must catch it.
    Its ``prepare`` (a copy of the batch info) is what its entry points get; it claims the sorted layout only."""
    module = types.ModuleType("bench_planted_peer")
    module.prepare = lambda batch_info, num_rows: Prepared(**vars(batch_info))
    module.PROFILE = {"name": "planted", "layouts": ("sorted",), "why": {"unsorted": "planted on sorted only"}}

    def wrap(entry):
        def call(x, w, batch_info, *args, **kwargs):
            assert isinstance(batch_info, Prepared)
            return getattr(impl, entry)(x, w, impl.LoRABatchInfo(**vars(batch_info)), *args, **kwargs).mul_(OFF)

        return call

    for op in grid.layer_ops(grid.TINY):
        setattr(module, op.op.entry, wrap(op.op.entry))
    return module


def test_dry_run_tiny(tmp_path):
    """One dry run (under xdist a module fixture could run it on each worker): its rows, then its files."""
    sys.modules["bench_planted_peer"] = _planted()
    try:
        args = ["--dry-run", "--tiny", "--quick", "--peer", "planted=bench_planted_peer", "--out", str(tmp_path)]
        assert cli.main(args) == 0
    finally:
        del sys.modules["bench_planted_peer"]
    (json_path,) = tmp_path.glob("*.json")
    rows, _ = load(json_path)
    check_rows(rows)
    check_every_row_present(rows)
    check_from_json(json_path, rows)
    check_timed_tables(json_path, tmp_path / "timed")


def check_rows(rows):
    """Every row ok or skipped with its reason; the planted peer's rows outside their bound; ours within."""
    planted = [r for r in rows if r.impl == "planted sorted" and r.op != "routing"]
    assert planted and all(r.status == "wrong" and r.err_bound > 1 for r in planted)
    unclaimed = [r for r in rows if r.impl == "planted unsorted"]
    assert unclaimed and all(r.status == "skipped" and r.note.startswith("not claimed: unsorted") for r in unclaimed)
    others = [r for r in rows if not r.impl.startswith("planted")]
    bad = [(r.op, r.impl, r.label, r.status, r.note) for r in others if r.status not in ("ok", "skipped")]
    assert not bad
    assert all(r.note for r in others if r.status == "skipped")
    checked = [r for r in others if r.status == "ok" and r.kind not in ("floor", "routing")]
    assert checked and all(r.err_bound is not None and r.err_bound <= 1 and r.checked_rows for r in checked)


def check_every_row_present(rows):
    names = [c.name for c in peers.contenders(peers=None)] + ["planted sorted", "planted unsorted"]
    shapes = grid.shapes(grid.GRIDS["small"], quick=True, tiny=True)
    have = {(r.op, r.label, r.impl) for r in rows}
    for label in grid.op_labels():
        for shape in shapes:
            for name in names:
                if name != "cuBLAS dense" or shape.adapters == 1:
                    assert (label, shape.label, name) in have
    for name in ("ours sorted", "ours unsorted", "empty kernel", "torch gather+bmm"):
        assert all(r.status == "ok" for r in rows if r.impl == name)
    routed = {(r.impl, r.label) for r in rows if r.op == "routing" and r.status == "ok"}
    assert routed == {(name, s.batch) for s in shapes for name in ("ours sorted", "planted sorted")}


def check_from_json(json_path, rows):
    md = json_path.with_suffix(".md")
    md.unlink()
    assert cli.main(["--from-json", str(json_path)]) == 0
    assert md.read_text().startswith("# LoRA kernel benchmark: ")
    assert load(json_path)[0] == rows


def test_grids():
    small = cli.plan(cli.parse_args([]))
    full = cli.plan(cli.parse_args(["--grid", "full"]))
    assert (len(small[0]), len(small[1])) == (7 * 21, 12)
    assert len(full[0]) == 2 * 7 * 42
    shapes = {s for _, _, s in full[0]}
    assert {s.rank for s in shapes} == {8, 16, 64, 128}
    assert max(s.tokens for s in shapes if s.phase == "prefill") == 8192
    assert {(layer.name, b.label) for layer, b, _ in full[0]} >= {("70b", "down_shrink"), ("8b", "down_shrink")}
    down = next(b for layer, b, _ in full[0] if layer.name == "70b" and b.label == "down_shrink")
    assert down.dims.k == 28672
    assert grid.select_ops("qkv,down") == ["qkv_shrink", "down_shrink", "qkv_expand"]
    by_phase = {p: grid.shapes(grid.GRIDS["full"], phase=p) for p in ("all", "decode", "prefill")}
    assert [len(by_phase[p]) for p in by_phase] == [42, 36, 6]
    assert by_phase["all"] == by_phase["decode"] + by_phase["prefill"]
    assert {s.phase for s in by_phase["prefill"]} == {"prefill"}


def check_timed_tables(json_path, out):
    """Times put on the dry run's rows: the ratios, the goals and the files follow from them."""
    rows, meta = load(json_path)
    fake = {"empty kernel": 1.0, "ours sorted": 2.0, "ours unsorted": 3.0, "torch gather+bmm": 4.0}
    fake["cuBLAS dense"] = 1.5
    for r in rows:
        r.time_us = 12.0 if r.op == "routing" else fake.get(r.impl, 5.0 if r.status == "ok" else None)
    derive(rows, copy_gbps=1000.0, floor_us=1.0)
    ours = [r for r in rows if r.impl == "ours sorted" and r.op != "routing"]
    assert all(r.x_best_peer == 0.5 and r.x_floor == 2.0 for r in ours)
    assert all(r.x_cublas == pytest.approx(2.0 / 1.5) for r in ours if r.adapters == 1)
    assert all(r.x_cublas is None for r in ours if r.adapters > 1)
    text = "\n".join(goals(rows))
    one_adapter = sum(1 for s in grid.shapes(grid.GRIDS["small"], quick=True, tiny=True) if s.adapters == 1)
    for label in grid.op_labels():
        assert f"| tiny | {label} | 3 | 2.00 | 2.00 " in text
        assert "| 0 | 0.75 " in text and f"| {one_adapter}: " in text
    assert "ours routing, decode: worst 12.0 us" in text and "2 of 2 batches over it" in text
    meta["elapsed_s"] = 0.0
    notes = cli.write_outputs(out, "results", rows, meta)
    assert "## Goals (issue 22)" in (out / "results.md").read_text()
    assert (out / "results.png").exists() or any(n.startswith("plot skipped") for n in notes)


def test_tune_settings_name_real_constants_and_set_replaces_a_kernels_space():
    import importlib

    from benchmarks import tune

    assert [tune.kernel_of(op) for op in ("down_shrink", "qkv_expand", "shrink")] == ["shrink", "expand", "shrink"]
    for kernel in tune.CANDIDATES:
        for module, setting in tune.settings(kernel):
            assert all(hasattr(importlib.import_module(module), name) for name in setting), (module, setting)
    overrides = tune.parse_sets(["impl.shrink.GROUP=1,4", "impl.shrink.BLOCK_K_LONG=128"])
    assert list(tune.settings("shrink", overrides)) == [
        ("impl.shrink", {"GROUP": 1, "BLOCK_K_LONG": 128}), ("impl.shrink", {"GROUP": 4, "BLOCK_K_LONG": 128})]
    assert list(tune.settings("expand", overrides)) == list(tune.settings("expand"))


def test_tune_times_every_setting_and_the_peer_on_the_chosen_shapes(tmp_path, monkeypatch):
    """The loop on the suite's device (tiny layer and shapes, a fake clock, a planted peer): a row per setting and
    layout and one per peer layout, each over the shapes named; a setting that fails is said and the others go on;
    a baseline named that applies to some shapes only (cuBLAS: one-adapter ones) is timed on those, ``-`` elsewhere."""
    import torch

    from benchmarks import tune
    from impl import shrink

    calls, group = [], shrink.GROUP

    def clock(call, rep):
        calls.append(shrink.GROUP)
        if shrink.GROUP == 2:
            raise RuntimeError("out of resources: shared memory")
        return 1.0

    monkeypatch.setattr(tune, "time_us", clock)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "test device")
    monkeypatch.setitem(grid.LAYERS, "8b", grid.TINY)
    shapes = grid.shapes
    monkeypatch.setattr(grid, "shapes", lambda g, phase, tiny=False: shapes(g, tiny=True, phase=phase))
    monkeypatch.setattr(peers, "ADAPTERS", (("planted", "pl", "bench_planted_peer", ("sorted",)),))
    monkeypatch.setitem(sys.modules, "bench_planted_peer", _planted())
    out = tmp_path / "tune.md"
    monkeypatch.setattr(sys, "argv", ["tune", "--ops", "down_shrink", "--shapes", "4/1/16,8/3/16", "--peer", "planted",
                                      "--peer", "cuBLAS", "--set", "impl.shrink.GROUP=4,2,1", "--out", str(out)])
    tune.main()
    text = out.read_text()
    rows = [line.split(" | ")[1:3] for line in text.splitlines()[4:] if line.startswith("|")]
    assert rows == [["planted sorted", "-"], ["cuBLAS dense", "-"], ["GROUP=4", "sorted"], ["GROUP=4", "unsorted"],
                    ["GROUP=1", "sorted"], ["GROUP=1", "unsorted"]]
    assert "- down_shrink, GROUP=2: failed (RuntimeError: out of resources: shared memory)" in text
    assert "| down_shrink | cuBLAS dense | - | 1.00 | 4/1/16 (1.0) | 1.0 | - |" in text  # one adapter: 4/1/16 only
    assert calls == [group] * 3 + [4] * 4 + [2] + [1] * 4 and shrink.GROUP == group  # each in force, then undone
    assert "4/1/16 | 8/3/16 |" in text


def test_compare_sets_a_constant_of_the_package_it_loaded_not_of_impl():
    """``benchmarks/compare.py --set impl.shrink.GROUP=8``: the new package (another copy of impl, loaded under its
    own name) takes it; this tree's impl keeps its own value."""
    from pathlib import Path

    from benchmarks import compare

    root = Path(__file__).resolve().parents[1]
    package = compare.load_package(root, "impl_set_test")
    try:
        compare.set_constants(package, ["impl.shrink.GROUP=8", "impl.expand.MIN_PROGRAMS=7"])
        assert sys.modules["impl_set_test.shrink"].GROUP == 8 and sys.modules["impl_set_test.expand"].MIN_PROGRAMS == 7
        assert impl.shrink.GROUP != 8 and impl.expand.MIN_PROGRAMS != 7
    finally:
        for name in [n for n in sys.modules if n == "impl_set_test" or n.startswith("impl_set_test.")]:
            del sys.modules[name]


def test_same_bits_says_which_settings_differ_and_exits_1(monkeypatch, capsys):
    """Every candidate's output against the first one's, on the tiny layer: the grouped shrink (forced on these small
    batches) gives the ungrouped one's bits; a candidate planted to change the output (doubled while grouping is
    forced) is named and makes the exit status 1."""
    from benchmarks import same_bits
    from impl import shrink
    from lora_verify.bench import inputs

    argv = ["--tiny", "--ops", "shrink", "--phase", "decode", "--set", "impl.shrink.GROUP_MIN_SLOT_ROWS=0",
            "--set", "impl.shrink.GROUP_MIN_ROWS=1024,0"]
    assert same_bits.main(argv) == 0
    assert "0 comparisons differ" in capsys.readouterr().out
    call = inputs.Case.call

    def planted(case, module, batch_info, base=None):
        fn = call(case, module, batch_info, base)
        return lambda: fn() * (2 if shrink.GROUP_MIN_ROWS == 0 else 1)

    monkeypatch.setattr(inputs.Case, "call", planted)
    assert same_bits.main(argv) == 1
    out = capsys.readouterr().out
    assert "'GROUP_MIN_ROWS': 0} vs {'GROUP_MIN_SLOT_ROWS': 0, 'GROUP_MIN_ROWS': 1024}: " in out
    assert "cells differ" in out and "8 comparisons differ" in out  # 4 decode shapes x 2 layouts


def test_split_sum_times_the_call_with_and_without_its_sum_launch(tmp_path, monkeypatch):
    """``benchmarks/split_sum.py`` on the suite's device (tiny layer, a fake clock that counts each call's launches):
    the call launches the shrink and its sum, the call without it the shrink alone, and the sum is put back after."""
    import torch

    from benchmarks import split_sum
    from impl import shrink
    from lora_verify.bench.timing import launch_grids

    def clock(call, rep):  # our calls: their launches; the floor's and cuBLAS's (none of impl.shrink): 0.5
        try:
            return float(len(launch_grids("impl.shrink", call)))
        except RuntimeError:
            return 0.5

    kept = shrink._sum_splits_kernel
    monkeypatch.setattr(split_sum, "time_us", clock)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "test device")
    monkeypatch.setitem(grid.LAYERS, "8b", grid.Layer("tiny", hidden=192, q=64, kv=32, intermediate=48))  # 3 splits
    shapes = grid.shapes
    monkeypatch.setattr(grid, "shapes", lambda g: shapes(g, tiny=True))
    monkeypatch.setattr(shrink, "FUSE_MIN_PROGRAMS", 1 << 62)  # the splits summed by a second launch
    out = tmp_path / "split_sum.md"
    monkeypatch.setattr(sys, "argv", ["split_sum", "--ops", "shrink", "--shapes", "4/1/16,8/3/16", "--out", str(out)])
    split_sum.main()
    rows = [line.split(" | ")[1:6] for line in out.read_text().splitlines() if line.startswith("| shrink | ")]
    assert rows[:2] == [["4/1/16", "2", "2.00", "1.00", "1.00"], ["8/3/16", "2", "2.00", "1.00", "1.00"]], rows
    assert "| 4/1/16 | 2 | 2.00 | 1.00 | 1.00 | 0.50 | 0.50 |" in out.read_text()  # cuBLAS: one adapter
    assert rows[2][0] == "geomean without sum / ours" and shrink._sum_splits_kernel is kept


def test_ncu_case_renders_a_row_per_launch_from_ncus_csv(tmp_path, capsys, monkeypatch):
    from benchmarks import ncu_case

    head = ["ID", "Process ID", "Kernel Name", "Block Size", "Grid Size", "Section Name", "Metric Name",
            "Metric Unit", "Metric Value"]
    rows = [["0", "7", "_expand_kernel", "(128, 1, 1)", "(16, 1, 48)", "GPU Speed Of Light Throughput",
             "Duration", "usecond", "27.55"],
            ["0", "7", "_expand_kernel", "(128, 1, 1)", "(16, 1, 48)", "Launch Statistics",
             "Registers Per Thread", "register/thread", "72"],
            ["1", "7", "nvjet_hsh_128x64(int)", "(384, 1, 1)", "(96, 1, 1)", "GPU Speed Of Light Throughput",
             "Duration", "ns", "4,350.00"],
            ["1", "7", "nvjet_hsh_128x64(int)", "(384, 1, 1)", "(96, 1, 1)", "GPU Speed Of Light Throughput",
             "DRAM Throughput", "%", "61.2"],
            ["1", "7", "nvjet_hsh_128x64(int)", "(384, 1, 1)", "(96, 1, 1)", "Launch Statistics",
             "Dynamic Shared Memory Per Block", "byte/block", "98,304"],
            ["2", "7", "_expand_kernel", "(128, 1, 1)", "(16, 1, 48)", "GPU Speed Of Light Throughput",
             "Duration", "msecond", "0.03"]]  # the same kernel launched again: a row of its own
    path = tmp_path / "profile.csv"
    path.write_text("==PROF== Connected to process 7\n" + "\n".join(
        ",".join(f'"{cell}"' for cell in row) for row in [head, *rows]) + "\n")
    monkeypatch.setattr("sys.argv", ["ncu_case", "--table", str(path)])
    ncu_case.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| kernel | grid | block | us | DRAM % |") and len(lines) == 5
    assert lines[2] == "| _expand_kernel | (16, 1, 48) | (128, 1, 1) | 27.55 |  |  |  |  | 72 |  |  |  |"
    assert lines[3] == "| nvjet_hsh_128x64 | (96, 1, 1) | (384, 1, 1) | 4.35 | 61.2 |  |  |  |  | 96 |  |  |"
    assert lines[4] == "| _expand_kernel | (16, 1, 48) | (128, 1, 1) | 30.00 |  |  |  |  |  |  |  |  |"
