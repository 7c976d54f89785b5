"""Mutation testing: the CI profile against every planted bug of ``lora_verify/mutants.py``, and the kill rate.

    lora-verify mutants [--only NAME ...] [--quick] [-j N]      (from this repository's root)

The tree is copied once (other people may edit it meanwhile); that unmutated copy must pass the
selection (else a kill means nothing), unless a pass stamp of the whole suite on the same tree and
environment (``lora_verify.stamp``: ``tox -e cpu`` just before, in CI) shows it already; then each
mutant runs in its own copy of it (``@triton.jit`` reads the source there), one pytest process per
mutant, ``-j`` at a time, under ``TRITON_INTERPRET=1 HYPOTHESIS_PROFILE=ci`` with ``-x``, over ``tests/``
and ``lora_verify/suite/``; a mutant that crashes or hangs its run is killed by that fault
(``lora_verify.faults``: its watchdog cuts a hang at ``WATCHDOG_S``). Per mutant it prints killed or
survived, the first failing test and its message, and the time; then a markdown table (the one in
docs/mutants.md) and the kill rate.
Exit status 0 iff every mutant not marked equivalent died, and none marked equivalent did.
Logs: ``.out/mutants/<name>.log``.

The same module is the pytest plugin of those runs (``-p lora_verify.mutate``). It keeps everything the CI
runs (``tox -e cpu``: every test file) with the CI profile's examples, and only makes a kill cheaper:

- no shrink or explain phase: the same derandomised examples are generated and the first failing one
  still fails its test; shrinking would only make the report smaller, at many kernel runs per kill;
- a test is left out only where its parameters prove it never runs the mutated file: operations
  (an ``op``, or a graph's stages) all served by another kernel file (``OpInfo.kernel``: a shrink mutant
  cannot change an expand), the unsorted layout of ``test_properties.py`` for a routing mutant; and
  ``test_interpreter_*.py``, which test the interpreter layers and import no ``impl`` code;
- cheap, strong checks first, so that ``-x`` stops a killed mutant early: the tests of the mutated
  file itself where they are named (``FIRST_FOR_FILE``: the graph buffers; routing's compile; layout
  agreement for the row mapping); for a mutant of an operation's kernel file, the tests of its
  operations before those naming none; then routing, the regression corpus, closeness to the reference
  (which also checks guard bands and rank-0 rows), bit-exact layout agreement, batch invariance,
  determinism; cheap operations (``OpInfo.cost``) and the sorted layout first; then the other tests in
  collection order.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from hypothesis import Phase, settings

from lora_verify import stamp
from lora_verify.faults import FAULT_EXIT
from lora_verify.mutants import BY_NAME, MUTANTS

ROOT = Path.cwd()  # this repository's root: its impl/ is what the mutants edit
LOGS = ROOT / ".out" / "mutants"
COPY_IGNORE = shutil.ignore_patterns(*stamp.IGNORED)
TIMEOUT_S = 1800  # a backstop: a hang is killed by the suite's watchdog (lora_verify.faults) well before
WATCHDOG_S = "300"  # an example of the CI profile takes seconds on the interpreter; a hang is cut at this
PYTEST = ["-x", "-q", "-p", "lora_verify.mutate", "tests", "lora_verify/suite", "--ignore-glob=*/test_interpreter_*"]

# ------------------------------------------------------------ the pytest plugin (-p lora_verify.mutate)
FIRST = [  # test names or properties (``prop_name``), cheap and strong first
    "test_routing_invariants",
    "test_corpus_case",
    "close to reference",
    "sorted == unsorted",
    "batch-invariant",
    "deterministic",
]
FIRST_FOR_FILE = {  # tests that exercise a file most directly go before everything else for its mutants
    "impl/graph.py": ["test_buffers_follow_batches"],  # buffer contents step by step; replay tests come later
    "impl/routing.py": ["test_compiles_for_sm90"],  # the tile-table kernel: 10 s, before the interpreter's tests
    "impl/segments.py": ["sorted == unsorted"],  # the only property that runs the lookup path (sorted, no table)
}


def pytest_addoption(parser):
    parser.addoption("--mutated", default=None, help="the file a mutant edits: leave out tests that never run it")


def pytest_configure(config):
    phases = [p for p in settings.default.phases if p not in (Phase.shrink, Phase.explain)]
    settings.register_profile("mutants", parent=settings.default, phases=phases)
    settings.load_profile("mutants")


def _params(item) -> dict:
    return item.callspec.params if hasattr(item, "callspec") else {}


def _ops(item) -> list:
    """The operations (``lora_verify.ops.OpInfo``) a test runs, from its parameters; [] when they do not say."""
    params = _params(item)
    if "op" in params:
        return [params["op"]]
    return list(getattr(params.get("gop"), "stages", ()))


def _runs(item, mutated, kernels) -> bool:
    """False only where the test's parameters prove it never executes the file ``mutated``."""
    ops = _ops(item)
    if mutated in kernels and ops and mutated not in {op.kernel for op in ops}:
        return False
    unsorted = _params(item).get("layout") == "unsorted" and item.module.__name__.endswith(".test_properties")
    return not (mutated == "impl/routing.py" and unsorted)


def _cost(item, mutated, kernels):
    kind = _params(item).get("prop_name", item.originalname)
    if kind in FIRST_FOR_FILE.get(mutated, ()):
        return -1, -1, 0, False
    # a mutant of an operation's kernel file: the tests of those operations before the tests naming none
    mine = 0 if mutated not in kernels or mutated in {op.kernel for op in _ops(item)} else 1
    if kind not in FIRST:
        return mine, len(FIRST), 0, False
    cost = max((op.cost for op in _ops(item)), default=-1)
    return mine, FIRST.index(kind), cost, _params(item).get("layout") == "unsorted"


def pytest_collection_modifyitems(config, items):
    mutated = config.getoption("--mutated")
    kernels = {op.kernel for item in items for op in _ops(item)}  # the kernel files that serve an operation
    deselected = [item for item in items if not _runs(item, mutated, kernels)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = sorted(
        (item for item in items if _runs(item, mutated, kernels)), key=lambda item: _cost(item, mutated, kernels)
    )


# ------------------------------------------------------------------------------------------- the runner
@dataclass
class Result:
    name: str
    killed: bool
    by: str  # first failing test and its message, or why it died otherwise
    seconds: float


def first_failure(output: str) -> str:
    """The first ``FAILED``/``ERROR`` line of pytest's summary, shortened to test id and message."""
    for line in output.splitlines():
        m = re.match(r"(?:FAILED|ERROR) (?:tests/|lora_verify/suite/)?(\S+?)(?: - (.*))?$", line)
        if m:
            test, message = m.group(1).split("::")[-1], (m.group(2) or "").strip()
            message = re.sub(r"^(AssertionError: |triton\.runtime\.errors\.InterpreterError: )", "", message)
            return f"{test}: {message[:100]}" if message else test
    return ""


def fault_line(output: str) -> str:
    """The crash or hang a worker reported before it exited (lora_verify.faults)."""
    found = re.search(r"^((?:crash|hang): .*)$", output, re.M)
    return found.group(1)[:120] if found else ""


def run_selection(tree: Path, log: Path, args=()) -> tuple:
    """Runs the selection in ``tree`` under the CI profile; (exit status, output)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "HYPOTHESIS_PROFILE": "ci", "COLUMNS": "400"}
    env.setdefault("LORA_WATCHDOG_S", WATCHDOG_S)
    cmd = [sys.executable, "-m", "pytest", *PYTEST, *args]
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, output = None, f"{e.stdout or ''}{e.stderr or ''}\ntimed out after {TIMEOUT_S} s"
    log.write_text(output)
    return rc, output


def copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=COPY_IGNORE)
    return dest


def run_mutant(mutant, source: Path) -> Result:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        tree = copy_tree(source, Path(tmp) / "tree")
        mutant.apply(tree)
        rc, output = run_selection(tree, LOGS / f"{mutant.name}.log", ["--mutated", mutant.file])
    seconds = time.monotonic() - start
    if rc in (0, 1, 2, None, FAULT_EXIT) or rc < 0:  # passed, failed, interrupted, timeout, a fault, signal
        by = first_failure(output) or fault_line(output) or ("timeout" if rc is None else f"exit status {rc}")
        return Result(mutant.name, rc != 0, by if rc != 0 else "", seconds)
    raise RuntimeError(f"mutant {mutant.name}: pytest exit status {rc}, see {LOGS / mutant.name}.log")


def passed_already(source: Path):
    """The pass stamp (lora_verify.stamp) the whole suite left in this repository for the same tree, CI
    profile and environment (``tox -e cpu`` just before, in CI); None if there is none."""
    from hypothesis import settings

    from lora_verify import plugin  # noqa: F401  (registers the profiles)

    ci = settings.get_profile("ci")
    return stamp.matching(ROOT, source, stamp.environment(ci.max_examples, ci.derandomize, True))


def sanity_check(source: Path, jobs: int) -> float:
    """The unmutated tree must pass the whole selection (in parallel: it is only pass or fail)."""
    start = time.monotonic()
    rc, output = run_selection(source, LOGS / "unmutated.log", ["-n", str(jobs)] if jobs > 1 else [])
    if rc != 0:
        sys.exit(f"the unmutated tree fails the selection ({first_failure(output)}): see {LOGS}/unmutated.log")
    return time.monotonic() - start


def table(results, catalogue) -> str:
    rows = ["| mutant | file | what it plants | result | killed by (first failing test) | time |", "|---" * 6 + "|"]
    for r in results:
        m = catalogue[r.name]
        verdict = "killed" if r.killed else ("survived (equivalent)" if m.equivalent else "**survived**")
        by = r.by.replace("|", "\\|") or "—"
        rows.append(f"| `{m.name}` | {m.file} | {m.what} | {verdict} | {by} | {r.seconds:.0f} s |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lora-verify mutants", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(BY_NAME), help="these mutants only")
    parser.add_argument("--quick", action="store_true", help="the representative subset (for CI)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants run at once (one pytest each)")
    args = parser.parse_args(argv)
    if not (ROOT / "impl").is_dir():
        sys.exit(f"lora-verify mutants runs from the repository's root (its impl/ holds the kernels); here: {ROOT}")
    chosen = [BY_NAME[n] for n in args.only] if args.only else [m for m in MUTANTS if m.quick or not args.quick]
    LOGS.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        source = copy_tree(ROOT, Path(tmp) / "unmutated")  # one snapshot: the working tree may change meanwhile
        for mutant in chosen:  # every find text occurs once: fail before any long run
            mutant.planted((source / mutant.file).read_text())
        passed = passed_already(source)
        if passed:
            ago = time.time() - passed["time"]
            print(f"unmutated tree: the whole suite passed on this tree and environment {ago:.0f} s ago "
                  f"({stamp.PATH}, a {passed['seconds']:.0f} s run); its selection is not run again", flush=True)
        else:
            print(f"unmutated tree passes the selection ({sanity_check(source, args.jobs):.0f} s)", flush=True)
        results = {}
        with ThreadPoolExecutor(args.jobs) as pool:  # expected survivors run the whole selection: start them first
            runs = [pool.submit(run_mutant, m, source) for m in sorted(chosen, key=lambda m: not m.equivalent)]
            for done in as_completed(runs):
                r = done.result()
                print(f"{r.name:<30} {'killed  ' if r.killed else 'SURVIVED'} {r.seconds:6.0f} s  {r.by}", flush=True)
                results[r.name] = r
    results = [results[m.name] for m in chosen]
    killed = sum(r.killed for r in results)
    unexpected = [r.name for r in results if not r.killed and not BY_NAME[r.name].equivalent]
    wrongly_equivalent = [r.name for r in results if r.killed and BY_NAME[r.name].equivalent]
    print("\n" + table(results, BY_NAME) + "\n")
    print(f"kill rate: {killed}/{len(results)} = {killed / len(results):.0%}; survivors not marked equivalent: "
          f"{unexpected or 'none'}; marked equivalent but killed: {wrongly_equivalent or 'none'}; "
          f"wall time {time.monotonic() - start:.0f} s with -j {args.jobs}")
    return 1 if unexpected or wrongly_equivalent else 0

