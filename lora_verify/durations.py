"""Each test's duration in the last run of its kind, so that the next run starts the longest tests first.

xdist gives each worker one test at a time (``--maxschedchunk 1``), so a run ends when its longest test
does, unless that test starts early. The plugin's estimate (kernel calls per example, weighted by an
operation's cost on the interpreter) misjudges compiled runs: on a GPU, shrink's layout agreement is the
longest test and the estimate starts it late. A run records what its tests took (``PATH`` under the
repository root, keyed by the kind of run: backend, profile, module under test); the next run orders by
that: tests it never saw end first (an interrupted run's unfinished ones among them), then the longest.
With no record the estimate decides. The xdist controller reads the record once and hands it to its
workers, which must all collect the same order.
"""

import json
import math
import os
from pathlib import Path

PATH = Path(".out") / "durations.json"


def load(root: Path, kind: str) -> dict:
    """``{nodeid: seconds}`` recorded for ``kind`` under ``root`` (empty if none or unreadable)."""
    try:
        return json.loads((root / PATH).read_text()).get(kind, {})
    except (OSError, ValueError, AttributeError):
        return {}


def save(root: Path, kind: str, seconds: dict) -> None:
    """Adds ``seconds`` to the record of ``kind`` (tests not run this time keep their old figures)."""
    path = root / PATH
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    record.setdefault(kind, {}).update({k: round(v, 2) for k, v in seconds.items()})
    try:  # whole or not at all: runs beside this one read it at their start
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_text(json.dumps(record, indent=0, sort_keys=True))
        os.replace(part, path)
    except OSError:  # a read-only checkout: order by the estimate next time
        pass


def order_key(recorded: dict, estimate):
    """A sort key for items: with a record, unseen tests first, then the longest; else ``estimate(item)`` desc."""
    if not recorded:
        return lambda item: -estimate(item)
    return lambda item: (-recorded.get(item.nodeid, math.inf), -estimate(item))


class Recorder:
    """A pytest plugin object: sums each test's phases as they are reported and, at the session's end,
    saves the tests that ended (an interrupted run's unfinished tests are not recorded)."""

    def __init__(self, root: Path, kind: str):
        self.root, self.kind, self.seconds, self.ended = root, kind, {}, set()

    def pytest_runtest_logreport(self, report):
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.when == "teardown":
            self.ended.add(report.nodeid)

    def pytest_sessionfinish(self, session):
        save(self.root, self.kind, {k: v for k, v in self.seconds.items() if k in self.ended})
