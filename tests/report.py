"""A pytest plugin that tallies every property check and prints the verdicts.

Tests wrap each check of a generated batch in the ``verdicts`` fixture's
``check(op, layout, prop)`` context: an exception inside (a failed assertion,
or an error the kernel raised) counts as a failure; ``ratio`` is the worst
``|error| / bound`` seen.
Under pytest-xdist each worker ships its tally to the controller, which
prints one table: operation x layout x property, examples, failures, worst
error relative to its bound, and a verdict.
"""

import json
from collections import defaultdict
from contextlib import contextmanager

import pytest

_KEY = "lora_verdicts"


class Tally:
    def __init__(self):
        self.rows = defaultdict(lambda: {"examples": 0, "failures": 0, "worst": 0.0})

    def record(self, op: str, layout: str, prop: str, ok: bool, ratio: float = 0.0):
        row = self.rows[(op, layout, prop)]
        row["examples"] += 1
        row["failures"] += int(not ok)
        row["worst"] = max(row["worst"], float(ratio))

    @contextmanager
    def check(self, op: str, layout: str, prop: str):
        """Records one example of ``prop``: failed if the body raises (an assertion or a kernel error)."""
        outcome = {"ratio": 0.0}
        try:
            yield outcome
        except BaseException:
            self.record(op, layout, prop, False, outcome["ratio"])
            raise
        self.record(op, layout, prop, True, outcome["ratio"])

    def merge(self, dumped: str):
        for key, row in json.loads(dumped):
            mine = self.rows[tuple(key)]
            mine["examples"] += row["examples"]
            mine["failures"] += row["failures"]
            mine["worst"] = max(mine["worst"], row["worst"])

    def dump(self) -> str:
        return json.dumps([[list(k), v] for k, v in self.rows.items()])


def pytest_configure(config):
    config._lora_tally = Tally()


@pytest.fixture(scope="session")
def verdicts(request):
    return request.config._lora_tally


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the tally over
        session.config.workeroutput[_KEY] = session.config._lora_tally.dump()


def pytest_testnodedown(node, error):
    dumped = getattr(node, "workeroutput", {}).get(_KEY)
    if dumped:
        node.config._lora_tally.merge(dumped)


def pytest_terminal_summary(terminalreporter, config):
    rows = config._lora_tally.rows
    if not rows:
        return
    tr = terminalreporter
    tr.section("property verdicts")
    head = f"{'operation':<20} {'layout':<9} {'property':<22} {'examples':>8} {'failed':>6}"
    tr.write_line(f"{head} {'worst err/bound':>15}  verdict")
    for (op, layout, prop), row in sorted(rows.items()):
        verdict = "PASS" if row["failures"] == 0 else "FAIL"
        worst = f"{row['worst']:.3g}" if prop == "close to reference" else "exact"
        tr.write_line(
            f"{op:<20} {layout:<9} {prop:<22} {row['examples']:>8} {row['failures']:>6} {worst:>15}  {verdict}"
        )
