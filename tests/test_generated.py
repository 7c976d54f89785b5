"""The generated mutants: every one applies to the tree, changes it, still parses, and has a unique stable name."""

import ast
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


def test_a_resumed_run_skips_and_keeps_what_its_json_holds(tmp_path, monkeypatch):
    import json

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


def test_a_stray_the_cpu_caught_takes_memcheck_first_and_the_selection_only_if_memcheck_finds_nothing(
        tmp_path, monkeypatch):
    import json

    from lora_verify import mutate

    stray, value = [m for m in generated.generate(ROOT) if m.out_of_bounds][:2]
    cpu = tmp_path / "cpu.json"
    cpu.write_text(json.dumps({"mutants": [{"name": stray.name, "by": "t: MemoryViolation('load')"},
                                           {"name": value.name, "by": "t: values differ"}]}))
    order = mutate.memcheck_order(cpu)
    assert (order(stray), order(value), order(mutate.UNMUTATED)) == ("first", "after", None)
    monkeypatch.setattr(mutate, "copy_tree", lambda source, dest: dest.mkdir(parents=True) or dest)
    monkeypatch.setattr(generated.GeneratedMutant, "apply", lambda self, root: None)
    for mutant, memcheck_rc, runs in ((stray, 86, ["memcheck"]), (stray, 0, ["memcheck", "selection"]),
                                      (value, 86, ["selection", "memcheck"])):
        seen = []

        def selection(tree, log, args, compiled, memcheck=False, seen=seen, rc=memcheck_rc):
            seen.append("memcheck" if memcheck else "selection")
            return (rc if memcheck else 0), ""
        monkeypatch.setattr(mutate, "run_selection", selection)
        result = mutate.run_mutant(mutant, tmp_path / f"{mutant.name}-{memcheck_rc}", True, order)
        assert seen == runs and result.killed == (memcheck_rc == 86)
