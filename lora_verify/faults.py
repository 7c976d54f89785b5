"""Faults of the kernel under test: an example that kills its process's CUDA context, or never returns.

The kernels a user checks may be broken in ways that take the checking process down: an illegal address
poisons the CUDA context (every later call in the process fails too), a loop that never ends hangs it.
A run with pytest-xdist workers (``-n N``; ``lora-verify fuzz`` always has them) survives both:

- before each example's check, :func:`guarded` writes the example as an *in-flight* case file of its
  worker, so that the batch that took the worker down is on disk whatever happens next;
- an error after which the device no longer works is a **crash**: the worker saves the example as a case
  named for the fault ("crash: <error>"), counts it as a failure of the property, writes its tally and
  exits at once, before hypothesis could shrink or replay the example in the dead context (which gave
  ``FlakyFailure``: the replay failed somewhere else);
- an example still running after the watchdog's limit (Triton compiles not counted) is a **hang**: the
  watchdog thread does the same ("hang: no result in N s") and hard-exits the worker;
- xdist replaces the worker and the run goes on with the next test; the controller merges the dead
  worker's tally from its progress file and turns an in-flight case the worker could not save itself
  (a process killed outright) into a crash case (:func:`recover`).

Without xdist a crash ends the session (``pytest.exit``) with the verdict table; a hang ends the process.
A fault case is ``<op>__<layout>__<property>__<crash|hang>_<batch digest>.json``: each faulting batch once,
never over the shrunk case of an ordinary failure. On CPU the interpreter's bounds layer stops a stray
access before it happens: one far from every allocation of the launch (``IllegalAddress``: an illegal
address on a GPU) is a crash here too, so that a CPU run rehearses the GPU's; a nearer one
(``MemoryViolation``: silent on a GPU) is an ordinary failure, shrunk as usual; a hang is a hang on both.
"""

import hashlib
import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from lora_verify import compiles
from lora_verify.cases import REPLAY, case_path, save

FAULT_EXIT = 75  # a worker's exit status after it saved a fault
LIMIT_S = {"cuda": 60.0, "cpu": 900.0}  # default watchdog limits: an interpreted example can take minutes
_state = {"inflight": None, "worker": False, "tally": None}


def configure(inflight: Optional[str], worker: bool, tally) -> None:
    """Where this process writes its in-flight case (None: nowhere), and whether it is an xdist worker."""
    _state.update(inflight=inflight, worker=worker, tally=tally)


def limit_s(device) -> float:
    """The watchdog's limit for one example: ``LORA_WATCHDOG_S``, else per device type."""
    return float(os.environ.get("LORA_WATCHDOG_S") or LIMIT_S.get(device.type, LIMIT_S["cpu"]))


def device_works(device) -> bool:
    """False when ``device`` no longer runs anything (a CUDA context killed by an illegal address)."""
    if device.type != "cuda":
        return True
    import torch

    try:
        torch.cuda.synchronize(device)
        return float(torch.ones(1, device=device).add_(1).cpu()) == 2.0
    except Exception:
        return False


def _killing(exc: BaseException) -> Optional[BaseException]:
    """The exception in ``exc``'s chain that stands for a dead device on the interpreter (``kills_device``:
    lora_verify.interpreter.bounds.IllegalAddress), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if getattr(type(exc), "kills_device", False):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _named(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def fault_path(case_dir, record: dict, kind: str) -> Path:
    digest = hashlib.sha256(json.dumps([record["batch"], record["params"]], sort_keys=True).encode()).hexdigest()
    path = case_path(case_dir, record["op"], record["layout"], record["property"])
    return path.with_name(f"{path.stem}__{kind}_{digest[:10]}.json")


def save_fault(case_dir, record: dict, note: str) -> Path:
    """Saves the example as a fault case (``note`` starts with its kind, "crash" or "hang")."""
    path = fault_path(case_dir, record, note.split(":")[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(path.parent, {**record, "error": note}, path)


class Watchdog:
    """A daemon thread that calls an armed example's ``on_timeout`` once it has run ``seconds``, time spent
    in Triton compiles (``lora_verify.compiles``) not counted. Arming and disarming are attribute writes."""

    def __init__(self):
        self._armed = None  # (start, compile seconds at start, limit, on_timeout)
        self._thread = None

    def arm(self, seconds: float, on_timeout) -> None:
        if self._thread is None:
            compiles.install()
            self._thread = threading.Thread(target=self._watch, args=(min(1.0, seconds / 8),), daemon=True)
            self._thread.start()
        self._armed = (time.monotonic(), compiles.seconds(), seconds, on_timeout)

    def disarm(self) -> None:
        self._armed = None

    def _watch(self, poll: float) -> None:
        while True:
            time.sleep(poll)
            armed = self._armed
            if armed is None:
                continue
            start, compiling_before, limit, on_timeout = armed
            if time.monotonic() - start - (compiles.seconds() - compiling_before) > limit:
                self._armed = None
                on_timeout()


WATCHDOG = Watchdog()


def _write_inflight(record: dict) -> None:
    path = _state["inflight"]
    if path:
        with open(path, "w") as f:
            f.write(json.dumps(record))


def _clear_inflight() -> None:
    path = _state["inflight"]
    if path and os.path.exists(path):
        os.remove(path)


def _fault(case_dir, record: dict, tally, note: str, counted: bool) -> Path:
    """Saves and counts a fault, writes the tally, and says so on stderr; the caller ends the process."""
    path = save_fault(case_dir, record, note)
    key = (record["op"], record["layout"], record["property"])
    if not counted:  # a hang: the check never got to record its verdict
        tally.record(*key, False)
    tally.fault(*key, f"{note} (case: {path})")
    if tally.progress:
        tally.write_progress()
    _clear_inflight()
    print(f"\n{note}\nsaved case: {path}\nreplay it:  {REPLAY} {path} --impl {record['impl']}", file=sys.stderr)
    sys.stderr.flush()
    return path


@contextmanager
def guarded(case_dir, record: dict, tally, device):
    """One example's check, made survivable: saved in flight before it runs; a crash or a hang saved as a
    fault case, counted, and the process ended before hypothesis can shrink it (see the module docstring).
    Inside any case-saving context of ordinary failures, so that a crash is saved once, as a crash."""
    _write_inflight(record)
    seconds = limit_s(device)

    def hang():
        _fault(case_dir, record, tally, f"hang: no result in {seconds:g} s", counted=False)
        os._exit(FAULT_EXIT)

    WATCHDOG.arm(seconds, hang)
    try:
        yield
    except Exception as exc:
        WATCHDOG.disarm()
        fatal = _killing(exc)
        if fatal is None and device_works(device):
            raise
        path = _fault(case_dir, record, tally, f"crash: {_named(fatal or exc)}"[:500], counted=True)
        if _state["worker"]:
            os._exit(FAULT_EXIT)
        import pytest

        pytest.exit(f"the device died on an example (case: {path}); no later example could run", returncode=1)
    finally:  # the example ended (passed, failed or was interrupted): nothing is in flight
        WATCHDOG.disarm()
        _clear_inflight()


@contextmanager
def ended_on_fault(device, out=sys.stdout):
    """For a tool that runs the implementation outside a test run (replay): a crash or a hang ends the process
    with exit status 1, after one line naming it ("crash: <error>" / "hang: no result in N s")."""
    seconds = limit_s(device)

    def end(line):
        print(line, file=out, flush=True)
        os._exit(1)  # no clean-up: the device may be dead

    WATCHDOG.arm(seconds, lambda: end(f"hang: no result in {seconds:g} s"))
    try:
        yield
    except Exception as exc:
        if not device_works(device):  # an IllegalAddress of the interpreter leaves the CPU working: triage goes on
            end(f"crash: {_named(exc)}")
        raise
    finally:
        WATCHDOG.disarm()


def recover(inflight: str, case_dir, tally, error) -> Optional[Path]:
    """A dead worker's in-flight case, if it left one (it died without saving it): saved as a crash and counted."""
    try:
        record = json.loads(Path(inflight).read_text())
    except (OSError, ValueError):
        return None
    os.remove(inflight)
    note = f"crash: the worker died ({str(error).strip().splitlines()[0] if error else 'no reason given'})"
    path = save_fault(case_dir, record, note)
    key = (record["op"], record["layout"], record["property"])
    tally.record(*key, False)
    tally.fault(*key, f"{note} (case: {path})")
    return path
