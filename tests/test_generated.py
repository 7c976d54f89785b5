"""The generated mutants: every one applies to the tree, changes it, still parses, and has a unique stable name;
the equivalents argued in the code are those the records show surviving and those docs/mutants.md argues."""

import ast
import json
import re
from pathlib import Path

from lora_verify import generated

ROOT = Path(__file__).resolve().parents[1]


def test_every_generated_mutant_applies_and_parses():
    mutants = generated.generate(ROOT)
    assert len({m.name for m in mutants}) == len(mutants)
    assert {m.cls for m in mutants} == set(generated.CLASSES)
    assert {m.file for m in mutants} == set(generated.SOURCES)
    for m in mutants:
        text = (ROOT / m.file).read_text()
        planted = m.planted(text)
        assert planted != text
        ast.parse(planted)
        assert m.name.split(".")[0] == Path(m.file).stem and f".L{m.line}.{m.cls}." in m.name


def test_names_and_samples_are_stable():
    first, second = generated.generate(ROOT), generated.generate(ROOT)
    assert [m.name for m in first] == [m.name for m in second]
    sample = generated.sample(first, 10, seed=3)
    assert [m.name for m in sample] == [m.name for m in generated.sample(second, 10, seed=3)] and len(sample) == 10


def test_the_equivalents_argued_are_the_cpu_records_survivors_and_the_docs_list():
    cpu = json.loads((ROOT / "docs/mutants_generated_cpu.json").read_text())["mutants"]
    assert {m["name"] for m in cpu} == {m.name for m in generated.generate(ROOT)}, "the CPU record is of another tree"
    assert {m["name"] for m in cpu if not m["killed"]} == set(generated.EQUIVALENT)
    doc = (ROOT / "docs/mutants.md").read_text().split("### Equivalent survivors")[1]
    listed = dict(re.findall(r"^- `([\w.]+)`: (.*)$", doc, re.M))
    assert listed == {n: " ".join(why.split()).rstrip(".") + "." for n, why in generated.EQUIVALENT.items()}


def test_a_resumed_run_skips_and_keeps_what_its_json_holds(tmp_path, monkeypatch):
    from lora_verify import mutate

    first, second = [m.name for m in generated.generate(ROOT)[:2]]
    out = tmp_path / "gpu.json"
    earlier = {"name": first, "file": "impl/x.py", "what": "w", "killed": True, "by": "a test", "seconds": 1.0,
               "equivalent": ""}
    out.write_text(json.dumps({"mutants": [earlier, {**earlier, "name": mutate.UNMUTATED.name, "killed": False}]}))
    ran = []
    monkeypatch.setattr(mutate, "run_mutant", lambda m, *a: ran.append(m.name) or mutate.Result(m.name, True, "x", 0))
    mutate.main(["--generated", "--only", first, second, "--parallel-sanity", "--resume", "--json", str(out)])
    assert sorted(ran) == sorted([mutate.UNMUTATED.name, second])  # the control runs again; the first does not
    names = [m["name"] for m in json.loads(out.read_text())["mutants"]]
    assert names[0] == first and sorted(names[1:]) == sorted([mutate.UNMUTATED.name, second])


def test_an_expected_survivor_runs_its_selection_on_xdist_workers(tmp_path, monkeypatch):
    from lora_verify import mutate

    seen = []
    monkeypatch.setattr(mutate, "run_selection", lambda tree, log, args, *rest, **kw: seen.append(args) or (0, ""))
    monkeypatch.setattr(mutate, "copy_tree", lambda source, dest: dest.mkdir(parents=True) or dest)
    result = mutate.run_mutant(mutate.UNMUTATED, tmp_path, workers=3)
    assert not result.killed and seen == [["--mutated", "impl/batch_info.py", "-n", "3", "--maxschedchunk", "1"]]


def test_a_stray_the_cpu_caught_takes_memcheck_first_then_its_cpu_test_alone_then_the_selection(tmp_path, monkeypatch):
    from lora_verify import mutate

    stray, value = [m for m in generated.generate(ROOT) if m.out_of_bounds][:2]
    other = next(m for m in generated.generate(ROOT) if not m.out_of_bounds)
    cpu = tmp_path / "cpu.json"
    cpu.write_text(json.dumps({"mutants": [
        {"name": stray.name, "killed": True, "by": "test_x[a-1]: MemoryViolation('load')"},
        {"name": value.name, "killed": True, "by": "crash: illegal address"},
        {"name": other.name, "killed": True, "by": "test_y: MemoryViolation('store')"}]}))
    order = mutate.memcheck_order(cpu)
    assert [order(m) for m in (stray, value, other, mutate.UNMUTATED)] == [
        ("first", "test_x[a-1]"), ("after", ""), ("first", "test_y"), (None, "")]
    assert mutate.memcheck_order(cpu, memcheck=False)(stray) == (None, "test_x[a-1]")  # the CPU's test, no memcheck
    monkeypatch.setattr(mutate, "copy_tree", lambda source, dest: dest.mkdir(parents=True) or dest)
    monkeypatch.setattr(mutate, "defining_file", lambda tree, test: "tests/test_x.py" if "test_x" in test else None)
    monkeypatch.setattr(generated.GeneratedMutant, "apply", lambda self, root: None)
    for i, (mutant, status, runs) in enumerate((
            (stray, {"memcheck": 86}, ["memcheck"]),
            (stray, {"memcheck": 0, "alone": 1}, ["memcheck", "alone"]),
            (stray, {"memcheck": 0, "alone": 5, "selection": 1}, ["memcheck", "alone", "selection"]),  # deselected
            (stray, {"memcheck": 0, "alone": 0, "selection": 0}, ["memcheck", "alone", "selection"]),
            (value, {"selection": 0, "memcheck": 86}, ["selection", "memcheck"]))):
        seen = []

        def selection(tree, log, args, compiled, memcheck=False, targets=None, seen=seen, status=status):
            kind = "memcheck" if memcheck else "alone" if targets else "selection"
            assert kind != "alone" or targets == ["tests/test_x.py::test_x[a-1]"]
            seen.append(kind)
            return status[kind], ""
        monkeypatch.setattr(mutate, "run_selection", selection)
        result = mutate.run_mutant(mutant, tmp_path / str(i), True, order)
        assert seen == runs and result.killed == any(status[kind] in (1, 86) for kind in runs)


def test_memcheck_adds_the_cpus_killing_test_where_k_can_name_it():
    from lora_verify.mutate import MEMCHECK_TESTS, memcheck_tests

    tier = "close_to_reference or both"
    assert memcheck_tests(ROOT, "test_regime_edge[sgemm_lora_a_fwd-R24-64]") == [
        MEMCHECK_TESTS[0], "lora_verify/suite/test_edges.py", "-k",
        f"{tier} or test_regime_edge[sgemm_lora_a_fwd-R24-64]", "-p", "no:xdist"]
    assert memcheck_tests(ROOT, "test_routing_invariants")[1:4] == [
        "lora_verify/suite/test_routing.py", "-k", f"{tier} or test_routing_invariants"]
    for unnamed in ("test_property[qkv_lora_b_fwd-sorted_==_unsorted-both-lookup]", "test_no_such_test", "",
                    "test_buffers_follow_batches"):  # a graph test: no capture without the caching allocator
        assert memcheck_tests(ROOT, unnamed) == MEMCHECK_TESTS  # "==" is no -k name; the tier has the property


def test_a_run_that_lingers_after_its_summary_is_killed_with_the_summarys_verdict(tmp_path, monkeypatch):
    import sys
    import time

    from lora_verify import mutate

    monkeypatch.setattr(mutate, "LINGER_S", 1)
    for summary, status in (("1 failed, 17 passed, 1 warning in 226.40s (0:03:46)", 1), ("3 passed in 0.10s", 0)):
        log = tmp_path / "run.log"
        script = f"print('..F'); print({summary!r}, flush=True); import time; time.sleep(60)"
        with open(log, "w") as out:
            start = time.monotonic()
            proc = mutate.subprocess.Popen([sys.executable, "-c", script], stdout=out)
            assert mutate._wait(proc, log) == status and time.monotonic() - start < 30
