"""A kernel that kills its worker's device, hangs, or takes the process down is survived (lora_verify.faults).

One pytest run with one xdist worker over four tests: a check whose device then no longer works (as after
an illegal address on a GPU; simulated here), one that never returns, one whose process is killed outright,
and a plain one after them. Each faulting example must be saved once as a case named for its fault, counted
as a failure of its property, the verdicts of its worker found before the fault kept, and the run must go on.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = '''
import os, time
import torch
from lora_verify import faults
from lora_verify.cases import case_record
from lora_verify.strategies import Batch, Dims, Seq, Slot, Values

CPU = torch.device("cpu")


def guarded(verdicts, prop, case_dir, seed):
    batch = Batch(2, (Slot(2, 1.0),), (Seq(3, 0),), Dims(k=8), Values(seed=seed))
    record = case_record("op", "unsorted", prop, batch, {}, "impl", CPU, "in flight")
    return faults.guarded(case_dir, record, verdicts, CPU)


def test_crash(verdicts, case_dir, monkeypatch):
    with guarded(verdicts, "crashes", case_dir, 1), verdicts.check("op", "unsorted", "crashes"):
        pass  # an example that passes, before the one that crashes
    monkeypatch.setattr(faults, "device_works", lambda device: False)  # what an illegal address leaves
    with guarded(verdicts, "crashes", case_dir, 2), verdicts.check("op", "unsorted", "crashes"):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_hang(verdicts, case_dir):
    with guarded(verdicts, "hangs", case_dir, 3):
        time.sleep(600)


def test_killed(verdicts, case_dir):
    with guarded(verdicts, "dies", case_dir, 4):
        os.kill(os.getpid(), 9)


def test_after(verdicts):
    with verdicts.check("op", "unsorted", "still checked"):
        pass
'''


def test_crash_hang_and_death_are_saved_counted_and_survived(tmp_path):
    (tmp_path / "test_planted.py").write_text(TESTS)
    cases, report = tmp_path / "cases", tmp_path / "verdicts.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LORA_WATCHDOG_S": "2"}
    env.pop("LORA_PROGRESS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "lora_verify.plugin", "-n", "1",
         "-p", "no:randomly", "--case-dir", str(cases), "--verdicts-json", str(report), "test_planted.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    rows = {r["property"]: r for r in json.loads(report.read_text())["rows"]}
    expected = {"crashes": (2, 1, "crash: RuntimeError: CUDA error: an illegal memory access"),
                "hangs": (1, 1, "hang: no result in 2 s"), "dies": (1, 1, "crash: the worker died")}
    for prop, (examples, failures, note) in expected.items():
        row = rows[prop]
        assert (row["examples"], row["failures"]) == (examples, failures), (prop, row, out)
        [fault] = row["faults"]
        assert fault.startswith(note) and "(case: " in fault, (prop, fault)
        [case] = cases.glob(f"op__unsorted__{prop}__{note.split(':')[0]}_*.json")
        assert json.loads(case.read_text())["error"].startswith(note), case
    assert (rows["still checked"]["examples"], rows["still checked"]["failures"]) == (1, 0), out
    assert len(list(cases.iterdir())) == 3, sorted(cases.iterdir())
    assert "3 failed, 1 passed" in out, out


def test_an_illegal_address_of_the_interpreter_counts_as_a_dead_device():
    """The interpreter's IllegalAddress (an access far from every allocation) is found through the errors that
    wrap it; a plain MemoryViolation (silent on a GPU) is not a fault."""
    from lora_verify import faults
    from lora_verify.interpreter.bounds import IllegalAddress, MemoryViolation

    def raised(inner):
        try:
            try:
                raise inner
            except Exception as e:
                raise RuntimeError("InterpreterError(...)") from e
        except Exception as outer:
            return outer

    assert isinstance(faults._killing(raised(IllegalAddress("load 64 GiB past 'x'"))), IllegalAddress)
    assert faults._killing(raised(MemoryViolation("load one past 'x'"))) is None
