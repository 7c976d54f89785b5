"""The verdict tally and its table: operation x layout x property, examples, failures, worst error, verdict.

Checks of a generated batch run inside ``Tally.check(op, layout, prop)``: an exception inside (a failed
assertion, or an error the kernel raised) counts as a failure; ``ratio`` is the worst ``|error| / bound``
seen (NaN and inf shown as such: a NaN error is never "0"). A property the implementation does not claim
is recorded with ``not_claimed`` and shown as NOT CLAIMED with the reason: never as a pass. A test that fails
outside its checks (out of memory while building a batch, a fixture's error) gives the properties it was
checking an ERROR, with the test and its error: their passing examples are no verdict. A property whose
test had not ended when the run stopped (SIGINT, a worker lost) is INCOMPLETE unless it failed: its passes
are of the examples that ran. Workers'
tallies merge through ``dump``/``merge``; the pytest plugin prints the table and writes it as JSON.
"""

import json
import math
import os
import time
from collections import defaultdict
from contextlib import contextmanager


def worse(a, b):
    """The worse of two err/bound ratios: NaN beats everything, then the larger; None is 'not measured'."""
    if a is None or b is None:
        return b if a is None else a
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return max(a, b)


def _row():
    return {"examples": 0, "failures": 0, "worst": None, "not_claimed": "", "faults": [], "errors": [],
            "unfinished": False}


class Tally:
    def __init__(self):
        self.rows = defaultdict(_row)
        self.devices = {}
        self.header = []  # lines naming the implementation and its claims (lora_verify.profiles.Profile.summary)
        self.batches = 0  # generated batches; one may be checked by several (sub-)properties
        self.extra = {}  # more numbers for the progress file (lora_verify.compiles.STATS)
        self.progress = os.environ.get("LORA_PROGRESS")  # where write_progress keeps this process's tally
        self.regimes = defaultdict(int)  # lora_verify.regimes key -> checked examples whose launches took it
        self.regime_checks = set()  # "test: op, layout, property" of the checks that counted regimes
        self._written = 0.0
        self._test = None  # the test running now (begin_test): the properties it touched, whether a check failed

    def begin_test(self, keys=()):
        """A test starts; ``keys`` are the (op, layout, property) it checks, where known before it runs."""
        self._test = {"touched": set(keys), "failed": False}

    def end_test(self, failed: bool, note: str, interrupted: bool = False):
        """The test ended; if it ``failed`` with no check failing, its properties get the error ``note``, or are
        left unfinished if the run was ``interrupted`` (a stop that surfaces as another exception is no error)."""
        test, self._test = self._test, None
        if not failed or test is None or test["failed"]:
            return
        for key in test["touched"]:
            if interrupted:
                self.rows[key]["unfinished"] = True
            else:
                self.rows[key]["errors"].append(note)

    def record(self, op: str, layout: str, prop: str, ok: bool, ratio=None):
        if self._test is not None:
            self._test["touched"].add((op, layout, prop))
            self._test["failed"] |= not ok
        row = self.rows[(op, layout, prop)]
        row["examples"] += 1
        row["failures"] += int(not ok)
        row["worst"] = worse(row["worst"], None if ratio is None else float(ratio))
        if self.progress and time.monotonic() - self._written > 1.0:
            self.write_progress()

    def count_regimes(self, check: str, keys):
        """One checked example (of ``check``) whose kernel launches took the regimes ``keys``."""
        self.regime_checks.add(check)
        for key in keys:
            self.regimes[key] += 1

    def not_claimed(self, op: str, layout: str, prop: str, reason: str):
        """``prop`` is not claimed by the implementation (the profile's reason): neither pass nor failure."""
        self.rows[(op, layout, prop)]["not_claimed"] = reason

    def fault(self, op: str, layout: str, prop: str, note: str):
        """A crash or hang of the implementation on an example of ``prop`` (lora_verify.faults), with its case."""
        self.rows[(op, layout, prop)]["faults"].append(note)

    def write_progress(self):
        path = f"{self.progress}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        with open(f"{path}.tmp", "w") as f:
            f.write(self.dump())
        os.replace(f"{path}.tmp", path)  # whole: the controller may read it at any time
        self._written = time.monotonic()

    @contextmanager
    def check(self, op: str, layout: str, prop: str):
        """Records one example of ``prop``: failed if the body raises (an assertion or a kernel error).

        The body may set ``outcome["ratio"]``. An interrupt (Ctrl-C, the fuzz driver's time box) records
        nothing: it is not a verdict.
        """
        outcome = {"ratio": None}
        try:
            yield outcome
        except Exception:
            self.record(op, layout, prop, False, outcome["ratio"])
            raise
        except BaseException as exc:  # pytest.fail() and a missed pytest.raises() fail a check too
            if type(exc).__name__ == "Failed":
                self.record(op, layout, prop, False, outcome["ratio"])
            raise
        self.record(op, layout, prop, True, outcome["ratio"])

    def merge(self, dumped: str):
        data = json.loads(dumped)
        for key, row in data["rows"]:
            mine = self.rows[tuple(key)]
            mine["examples"] += row["examples"]
            mine["failures"] += row["failures"]
            mine["worst"] = worse(mine["worst"], row["worst"])
            mine["not_claimed"] = mine["not_claimed"] or row["not_claimed"]
            mine["faults"] += [f for f in row.get("faults", ()) if f not in mine["faults"]]
            mine["errors"] += [e for e in row.get("errors", ()) if e not in mine["errors"]]
            mine["unfinished"] = mine["unfinished"] or row.get("unfinished", False)
        self.devices.update(data["devices"])
        for key, n in data.get("regimes", {}).items():
            self.regimes[key] += n
        self.regime_checks.update(data.get("regime_checks", ()))
        self.header = self.header or data.get("header", [])

    def dump(self) -> str:
        """This tally as JSON; a test still running (a progress file, a stopped worker's last) leaves its
        properties ``unfinished``."""
        running = self._test["touched"] if self._test else set()
        rows = [[list(k), {**v, "unfinished": v["unfinished"] or k in running}] for k, v in self.rows.items()]
        return json.dumps({
            "rows": rows, "devices": self.devices, "batches": self.batches, "header": self.header,
            "regimes": self.regimes, "regime_checks": sorted(self.regime_checks), **self.extra,
        })


def verdict(row) -> str:
    if row["not_claimed"]:
        return "NOT CLAIMED"
    if row["failures"]:
        return "FAIL"
    if row.get("errors"):
        return "ERROR"
    if row.get("unfinished") and row["examples"]:
        return "INCOMPLETE"
    return "PASS" if row["examples"] else "NO EXAMPLES"


def verdict_rows(tally):
    """The table as dicts, sorted by operation, layout, property."""
    return [
        {"operation": op, "layout": layout, "property": prop, **row, "verdict": verdict(row)}
        for (op, layout, prop), row in sorted(tally.rows.items())
    ]


def format_ratio(worst) -> str:
    """An err/bound ratio as printed: 3 significant digits, NaN and inf as such, '-' when none was measured."""
    if worst is None:
        return "-"
    if math.isnan(worst):
        return "nan"
    return "inf" if math.isinf(worst) else f"{worst:.3g}"


def format_table(rows, header=()):
    lines = list(header)
    head = f"{'operation':<20} {'layout':<9} {'property':<24} {'examples':>8} {'failed':>6}"
    lines.append(f"{head} {'worst err/bound':>15}  verdict")
    for r in rows:
        worst = format_ratio(r["worst"]) if "close to reference" in r["property"] else "exact"
        verdict_ = r["verdict"] + (f" ({r['not_claimed']})" if r["not_claimed"] else "")
        lines.append(
            f"{r['operation']:<20} {r['layout']:<9} {r['property']:<24} {r['examples']:>8} {r['failures']:>6} "
            f"{worst:>15}  {verdict_}"
        )
        lines += [f"    {note}" for note in (*r.get("faults", ()), *r.get("errors", ()))]
    return lines
