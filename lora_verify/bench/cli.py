"""``lora-verify bench``: times our kernels against every peer on a grid of real layer shapes, on one GPU.

    lora-verify bench                                   # the small grid: the 8B layer, 18 decode + 3 prefill shapes
    lora-verify bench --grid full --rep 2 --compile-jobs 12 --budget-s 420   # both layers, ranks 8-128, 8k prefill
    lora-verify bench --quick                           # three shapes (a smoke test)
    lora-verify bench --dry-run --tiny                  # CPU: builds every batch, calls every implementation once
    lora-verify bench --from-json benchmarks/results/GPU/results.json   # re-renders the tables and the plot

Writes ``results.md`` (``results_<grid>`` for a grid other than ``full``), ``.json`` and ``.png`` under
``--out`` (default ``benchmarks/results/<gpu>/``, from the repository root) and prints a summary last.
"""

import argparse
import datetime
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
import triton

from lora_verify.bench import grid as grid_mod
from lora_verify.bench import inputs, peers
from lora_verify.bench.plot import write_plot
from lora_verify.bench.results import derive, load, save
from lora_verify.bench.runner import Mode, Runner, warm
from lora_verify.bench.tables import print_summary, write_markdown


def parse_args(argv):
    head, examples = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(prog="lora-verify bench", description=head, epilog=examples,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=grid_mod.GRIDS, default="small",
                   help="small: the 8B layer, ranks 16/64, 18 decode + 3 prefill shapes; full: the 8B and 70B "
                   "layers, ranks 8/16/64/128, 36 decode + 6 prefill shapes (8192-token prefill included)")
    p.add_argument("--quick", action="store_true", help="three shapes only (a smoke test)")
    p.add_argument("--ops", default=",".join(grid_mod.op_groups()),
                   help="comma-separated: " + ", ".join(grid_mod.op_groups()) + " (qkv, gate_up: shrink + expand)")
    p.add_argument("--layers", default=None, help="comma-separated subset of the grid's layers: "
                   + ", ".join(grid_mod.LAYERS))
    p.add_argument("--peers", default=None, help="comma-separated subset of: "
                   + ", ".join(label for label, *_ in peers.ADAPTERS) + "; 'none' for none (default: all)")
    p.add_argument("--peer", action="append", default=[], metavar="LABEL=MODULE",
                   help="also time MODULE (SPEC.md's entry points and a PROFILE) under LABEL, both layouts")
    p.add_argument("--dry-run", action="store_true", help="build every batch, bytes and grids; no timing")
    p.add_argument("--tiny", action="store_true",
                   help="tiny dims and shapes; with --dry-run, every implementation is called once and checked")
    p.add_argument("--rep", type=int, default=10, help="ms of calls per CUDA-graph replay (default 10)")
    p.add_argument("--budget-s", type=float, default=270.0,
                   help="no new timing starts this many seconds after the command started (compile warm-up "
                   "included); the rows left are reported skipped (default 270)")
    p.add_argument("--compile-jobs", type=int, default=0,
                   help="before timing, this many processes call every Triton implementation once on a share "
                   "of the grid, filling Triton's cache (compiles in parallel); default 0: compile as it goes")
    p.add_argument("--warm-shard", default=None, help=argparse.SUPPRESS)  # I/N: a --compile-jobs worker
    p.add_argument("--max-gather-gib", type=float, default=8.0,
                   help="skip torch gather+bmm where its gathered weights exceed this (default 8)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results/<gpu>/)")
    p.add_argument("--from-json", type=Path, default=None, help="re-render the tables and plot of a saved run")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed rows")
    return p.parse_args(argv)


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def stem(args) -> str:
    name = "results" + ("" if args.grid == "full" else f"_{args.grid}")
    return name + "".join(f"_{flag}" for flag in ("quick", "tiny") if getattr(args, flag)) + (
        "_dry-run" if args.dry_run else "")


def write_outputs(out_dir: Path, name: str, rows, meta) -> list:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {s: out_dir / f"{name}.{s}" for s in ("json", "md", "png")}
    save(paths["json"], rows, meta)
    write_markdown(paths["md"], rows, meta)
    notes = [f"table: {paths['md']}", f"json: {paths['json']}"]
    try:
        notes.append(write_plot(paths["png"], rows, meta))
    except Exception as exc:
        notes.append(f"plot failed: {peers.first_line(exc)}")
    return notes


def from_json(args) -> int:
    rows, meta = load(args.from_json)
    derive(rows, meta.get("copy_gbps"), meta.get("floor_us"))
    notes = write_outputs(args.out or args.from_json.parent, args.from_json.stem, rows, meta)
    print_summary(rows, meta, notes)
    return 0


def plan(args) -> tuple:
    """(groups, routing shapes): every (layer, operation, shape) to time, and one shape per batch to route."""
    grid = grid_mod.GRIDS[args.grid]
    try:
        labels = grid_mod.select_ops(args.ops)
        layers = grid_mod.layers(grid, args.tiny, args.layers.split(",") if args.layers else None)
    except ValueError as exc:
        raise SystemExit(f"bench: {exc}") from None
    shapes = grid_mod.shapes(grid, args.quick, args.tiny)
    groups = [(layer, b, s) for layer in layers for b in grid_mod.layer_ops(layer) if b.label in labels for s in shapes]
    routing: dict = {}
    for shape in shapes:
        routing.setdefault(shape.batch, shape)
    return groups, list(routing.values())


def warm_up(argv, jobs: int):
    """``jobs`` processes each call every Triton implementation once on its share of the grid (Triton's cache)."""
    start = time.monotonic()
    cmd = [sys.executable, "-m", "lora_verify", "bench", *argv]
    procs = [subprocess.Popen([*cmd, "--warm-shard", f"{i}/{jobs}"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(jobs)]
    for i, proc in enumerate(procs):
        out, _ = proc.communicate()
        last = (out.strip().splitlines() or ["(no output)"])[-1]
        print(f"bench: compile worker {i}/{jobs}: exit {proc.returncode}: {last[:200]}", flush=True)
    print(f"bench: compile warm-up {time.monotonic() - start:.0f} s", flush=True)


def describe(args, grid) -> str:
    def seq(values, sep="/"):
        return sep.join(map(str, values))

    if args.quick or args.tiny:
        shapes = grid_mod.shapes(grid, args.quick, args.tiny)
        return f"{args.grid}{' (quick)' if args.quick else ''}{' (tiny)' if args.tiny else ''}: " + ", ".join(
            s.label for s in shapes)
    return (f"{args.grid}: decode {seq(grid_mod.DECODE_TOKENS)} tokens x {seq(grid_mod.DECODE_ADAPTERS)} adapters x "
            f"ranks {seq(grid.ranks)}; prefill (sequences x tokens x adapters x rank) "
            + ", ".join(seq(p, "x") for p in grid.prefill))


def device_for(args) -> torch.device:
    if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        return torch.device("cuda")
    if args.dry_run:
        return torch.device("cpu")
    raise SystemExit("bench: timing needs a CUDA GPU (and TRITON_INTERPRET unset); use --dry-run on CPU")


def shard(items: list, spec: str, key=None) -> list:
    """Part ``I`` of ``N`` (``spec`` = "I/N") of ``items`` sorted by ``key``, contiguous: groups of one operation
    and rank, which share most kernel variants whatever the layer, mostly fall to one worker."""
    i, n = map(int, spec.split("/"))
    items = sorted(items, key=key) if key else items
    return items[i * len(items) // n : (i + 1) * len(items) // n]


def main(argv=None) -> int:
    start = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.from_json:
        return from_json(args)
    groups, routing_shapes = plan(args)
    device = device_for(args)
    extra = tuple(tuple(spec.split("=", 1)) for spec in args.peer)
    if any(len(e) != 2 for e in extra):
        raise SystemExit("bench: --peer takes LABEL=MODULE")
    chosen = None if args.peers is None else [p for p in args.peers.split(",") if p and p != "none"]
    try:
        contenders = peers.contenders(args.max_gather_gib, chosen, extra)
    except ValueError as exc:
        raise SystemExit(f"bench: --peers: {exc}") from None
    if args.warm_shard:
        mine = shard(groups, args.warm_shard, key=lambda g: (g[1].label, g[2].rank, g[2].adapters))
        runner = warm(contenders, mine, shard(routing_shapes, args.warm_shard), device, log=lambda *_: None)
        print(f"warmed {len(mine)} groups in {runner.elapsed():.0f} s "
              f"({sum(r.status == 'failed' for r in runner.rows)} rows failed)")
        return 0
    timing = not args.dry_run
    print(f"bench: {len(groups)} groups (layer x op x shape) x {len(contenders)} implementations + "
          f"routing of {len(routing_shapes)} batches, on {device}", flush=True)
    for c in contenders:
        print(f"bench: {c.name}: {c.skip or c.about or 'ok'}", flush=True)
    if timing and args.compile_jobs > 0:
        warm_up(argv, args.compile_jobs)
    mode = Mode(timing=timing, calling=timing or args.tiny, rep=args.rep, budget_s=args.budget_s, verbose=args.verbose)
    runner = Runner(contenders, mode, device, log=lambda line: print(line, flush=True), start=start)
    runner.run(groups, routing_shapes)

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    detail = "-"
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        detail = f"{prop.multi_processor_count} SMs, {prop.total_memory / 2**30:.0f} GiB, sm_{prop.major}{prop.minor}"
    grid = grid_mod.GRIDS[args.grid]
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": gpu,
        "slug": slugify(gpu),
        "device_detail": detail,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "copy_gbps": runner.copy_gbps,
        "copy_note": runner.copy_note,
        "floor_us": runner.floor_us,
        "rep_ms": args.rep,
        "grid": describe(args, grid),
        "layers": "; ".join(f"{la.name}: hidden {la.hidden}, q {la.q}, kv {la.kv}, intermediate {la.intermediate}"
                            for la in dict.fromkeys(g[0] for g in groups)),
        "implementations": {c.name: c.skip or c.about or "ok" for c in contenders},
        "short": {c.name: c.short for c in contenders},
        "checked": f"every row of batches up to {inputs.ALL_ROWS} tokens, else {inputs.SAMPLE_ROWS_PER_SLOT} rows "
        f"(first, last, evenly between) of {inputs.SAMPLE_SLOTS} slots (likewise)",
        "command": "lora-verify bench " + shlex.join(argv),
        "elapsed_s": runner.elapsed(),
        "dry_run": args.dry_run,
    }
    if args.dry_run and args.out is None:
        notes = ["dry run: no files written (pass --out to write them)"]
    else:
        notes = write_outputs(args.out or Path("benchmarks", "results", meta["slug"]), stem(args), runner.rows, meta)
    print_summary(runner.rows, meta, notes)
    return 0

