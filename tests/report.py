"""A pytest plugin that tallies every property check and prints the verdicts.

Tests wrap each check of a generated batch in the ``verdicts`` fixture's
``check(op, layout, prop)`` context: an exception inside (a failed assertion,
or an error the kernel raised) counts as a failure; ``ratio`` is the worst
``|error| / bound`` seen. Under pytest-xdist each worker ships its tally to
the controller, which prints one table (operation x layout x property:
examples, failures, worst error relative to its bound, verdict) and the
device each worker ran on, and writes it as JSON with ``--verdicts-json``.
With ``LORA_PROGRESS`` set to a path, each process also keeps its running
tally there (``PATH.<worker>``), for the fuzz driver's live line and table.
"""

import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager

import pytest

_KEY = "lora_verdicts"


class Tally:
    def __init__(self):
        self.rows = defaultdict(lambda: {"examples": 0, "failures": 0, "worst": 0.0})
        self.devices = {}
        self.batches = 0  # generated batches; one may be checked by several (sub-)properties
        self._progress = os.environ.get("LORA_PROGRESS")
        self._written = 0.0

    def record(self, op: str, layout: str, prop: str, ok: bool, ratio: float = 0.0):
        row = self.rows[(op, layout, prop)]
        row["examples"] += 1
        row["failures"] += int(not ok)
        row["worst"] = max(row["worst"], float(ratio))
        if self._progress and time.monotonic() - self._written > 1.0:
            self.write_progress()

    def write_progress(self):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"{self._progress}.{worker}", "w") as f:
            f.write(self.dump())
        self._written = time.monotonic()

    @contextmanager
    def check(self, op: str, layout: str, prop: str):
        """Records one example of ``prop``: failed if the body raises (an assertion or a kernel error).

        An interrupt (Ctrl-C, the fuzz driver's time box) records nothing: it is not a verdict.
        """
        outcome = {"ratio": 0.0}
        try:
            yield outcome
        except Exception:
            self.record(op, layout, prop, False, outcome["ratio"])
            raise
        self.record(op, layout, prop, True, outcome["ratio"])

    def merge(self, dumped: str):
        data = json.loads(dumped)
        for key, row in data["rows"]:
            mine = self.rows[tuple(key)]
            mine["examples"] += row["examples"]
            mine["failures"] += row["failures"]
            mine["worst"] = max(mine["worst"], row["worst"])
        self.devices.update(data["devices"])

    def dump(self) -> str:
        rows = [[list(k), v] for k, v in self.rows.items()]
        return json.dumps({"rows": rows, "devices": self.devices, "batches": self.batches})


def pytest_addoption(parser):
    parser.addoption("--verdicts-json", default=None, help="also write the verdict table to this JSON file")


def pytest_configure(config):
    config._lora_tally = Tally()


@pytest.fixture(scope="session")
def verdicts(request):
    return request.config._lora_tally


def pytest_sessionfinish(session):
    tally = session.config._lora_tally
    if tally._progress:
        tally.write_progress()
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the tally over
        session.config.workeroutput[_KEY] = tally.dump()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent when xdist is not loaded
def pytest_testnodedown(node, error):
    dumped = getattr(node, "workeroutput", {}).get(_KEY)
    if dumped:
        node.config._lora_tally.merge(dumped)


def verdict_rows(tally):
    """The table as dicts, sorted by operation, layout, property."""
    return [
        {"operation": op, "layout": layout, "property": prop, **row, "verdict": "FAIL" if row["failures"] else "PASS"}
        for (op, layout, prop), row in sorted(tally.rows.items())
    ]


def format_table(rows):
    head = f"{'operation':<20} {'layout':<9} {'property':<22} {'examples':>8} {'failed':>6}"
    lines = [f"{head} {'worst err/bound':>15}  verdict"]
    for r in rows:
        worst = f"{r['worst']:.3g}" if r["property"] == "close to reference" else "exact"
        lines.append(
            f"{r['operation']:<20} {r['layout']:<9} {r['property']:<22} {r['examples']:>8} {r['failures']:>6} "
            f"{worst:>15}  {r['verdict']}"
        )
    return lines


def pytest_terminal_summary(terminalreporter, config):
    tally = config._lora_tally
    if hasattr(config, "workeroutput") or not tally.rows:
        return
    rows = verdict_rows(tally)
    terminalreporter.section("property verdicts")
    for line in format_table(rows):
        terminalreporter.write_line(line)
    for worker, dev in sorted(tally.devices.items()):
        terminalreporter.write_line(f"worker {worker}: {dev}")
    path = config.getoption("--verdicts-json")
    if path:
        with open(path, "w") as f:
            json.dump({"rows": rows, "devices": tally.devices}, f, indent=1)
