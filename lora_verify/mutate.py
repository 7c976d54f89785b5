"""Mutation testing: the CI profile against every planted bug of ``lora_verify/mutants.py``, and the kill rate.

    lora-verify mutants [--only NAME ...] [--quick] [-j N]      (from this repository's root)
    lora-verify mutants --generated [--sample N --seed S] [-j N] [--json FILE]
                                      the mutants generated from impl's AST (lora_verify/generated.py)
    lora-verify mutants --generated --compiled [--memcheck] ...   the same, compiled on a CUDA machine

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
Logs: ``.out/mutants/<name>.log``; ``--json`` also writes each verdict (the CPU/GPU comparison reads them).

``--compiled`` runs the selection compiled on the CUDA device instead of the interpreter (the interpreter's
own tests are left out; the ``-j`` processes share the visible GPUs, each mutant on the next one in turn). The
interpreter's bounds checker sees a stray read whose value never reaches an output; the compiled GPU does
not, so with ``--memcheck`` a mutant of the out-of-bounds classes (``GeneratedMutant.out_of_bounds``) that
survives the compiled selection runs again under compute-sanitizer's memcheck: closeness to the reference and
layout agreement, ``LORA_MEMCHECK_EXAMPLES`` (default 10) examples each, every launch argument alone in an
allocation of its own size (``lora_verify.tight``: the suite's margins would hide a stray), killed by any
report. A mutant that the CPU run (``--cpu-json``) killed by a ``MemoryViolation`` takes memcheck first, with the
test that killed it on the CPU added to the tier, and the compiled selection only if memcheck finds nothing: the
verdict is the same either way (killed by either), and a stray read that never reaches an output survives the
whole compiled selection (minutes) before memcheck's few examples see it. With ``--cpu-json``, the test that
killed a mutant on the CPU also runs alone before its selection (one test of it: the same verdict, sooner). A
run that printed pytest's summary and has not exited ``LINGER_S`` later is killed, its verdict taken from the
summary.

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
  operations before those naming none; then routing, the regression corpus, the regime edges, closeness to the reference
  (which also checks guard bands and rank-0 rows), bit-exact layout agreement, batch invariance,
  determinism; cheap operations (``OpInfo.cost``) and the sorted layout first; then the other tests in
  collection order.
"""

import argparse
import faulthandler
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

from hypothesis import Phase, settings

from lora_verify import generated, stamp
from lora_verify.faults import FAULT_EXIT
from lora_verify.mutants import MUTANTS

ROOT = Path.cwd()  # this repository's root: its impl/ is what the mutants edit
LOGS = ROOT / ".out" / "mutants"
COPY_IGNORE = shutil.ignore_patterns(*stamp.IGNORED)
TIMEOUT_S = 1800  # a backstop: a hang is killed by the suite's watchdog (lora_verify.faults) well before
WATCHDOG_S = "300"  # an example of the CI profile takes seconds on the interpreter; a hang is cut at this
# the CPU's tests on either backend: the interpreter's own tests and the GPU-only tiers are left out, and so is the
# check of the mutant generator itself (tests/test_generated.py), which reads impl's source: a mutant that drops an
# early exit also drops that exit's mutants, and generate() then refuses EQUIVALENT's stale name (a false kill);
# so is the hand catalogue's (tests/test_mutants.py): a generated mutant may edit the text a hand mutant plants in.
# The compile tests that judge the code's quality (spills), not its results, are left out too: a mutant they alone
# fail (the x load's masked lanes reading 1.0 cost a spill) computes what the contract asks
QUALITY = [f"--deselect=tests/test_compile.py::{name}" for name in (
    "test_at_real_shapes_the_matmuls_copy_asynchronously_and_spill_nothing",
    "test_the_wide_expand_compiles_at_its_warps_to_wgmma_without_spills")]
PYTEST = ["-x", "-q", "-p", "lora_verify.mutate", "tests", "lora_verify/suite", "--ignore-glob=*/test_interpreter_*",
          "--ignore=tests/test_generated.py", "--ignore=tests/test_mutants.py", *QUALITY, "-m", "not gpu"]
# --padding: bytes of no-man's land after every allocation, so that a stray past one is not inside the next
MEMCHECK = ["compute-sanitizer", "--tool", "memcheck", "--padding", "16384", "--error-exitcode", "86",
            "--print-limit", "5"]
MEMCHECK_TESTS = ["lora_verify/suite/test_properties.py", "-k", "close_to_reference or both", "-p", "no:xdist"]
# every tensor its own cudaMalloc, every launch argument alone in its allocation (lora_verify.tight)
MEMCHECK_ENV = {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1", "LORA_TIGHT": "1"}
SUMMARY = re.compile(rb"\n(=+ )?\d+ (passed|failed|errors?|skipped|deselected)\b[^\n]* in [\d.]+s\b")  # pytest's end
LINGER_S = 60  # a run still alive this long after pytest printed its summary is killed (the verdict is printed)

_GPUS = None  # compiled runs: the GPUs to take in turn (CUDA_VISIBLE_DEVICES of this process, else all)


def _next_gpu() -> str:
    global _GPUS
    if _GPUS is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            import torch

            visible = ",".join(map(str, range(max(torch.cuda.device_count(), 1))))
        _GPUS = cycle(visible.split(","))
    return next(_GPUS)


# ------------------------------------------------------------ the pytest plugin (-p lora_verify.mutate)
FIRST = [  # test names or properties (``prop_name``), cheap and strong first
    "test_routing_invariants",
    "test_corpus_case",
    "test_regime_edge",  # every regime boundary once, on a small batch
    "close to reference",
    "sorted == unsorted",
    "batch-invariant",
    "deterministic",
]
FIRST_FOR_FILE = {  # tests that exercise a file most directly go before everything else for its mutants
    "impl/graph.py": ["test_buffers_follow_batches"],  # buffer contents step by step; replay tests come later
    "impl/routing.py": ["test_compiles_for_sm90"],  # the routing kernel: 10 s, before the interpreter's tests
    "impl/segments.py": ["sorted == unsorted"],  # the only property that runs the lookup path (sorted, no table)
}


def pytest_addoption(parser):
    parser.addoption("--mutated", default=None, help="the file a mutant edits: leave out tests that never run it")


def pytest_configure(config):
    phases = [p for p in settings.default.phases if p not in (Phase.shrink, Phase.explain)]
    examples = int(os.environ.get("LORA_MUTANT_EXAMPLES", settings.default.max_examples))
    settings.register_profile("mutants", parent=settings.default, phases=phases, max_examples=examples)
    settings.load_profile("mutants")


def pytest_unconfigure(config):
    # a run still alive LINGER_S after its summary is killed by the runner (seen on the GPU: pytest's last
    # gc.collect() waiting, most likely on a kernel a mutant left looping): the threads' stacks go into its log first
    faulthandler.dump_traceback_later(LINGER_S // 2)


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


def defining_file(tree: Path, test: str):
    """The file of ``tree``'s tests (the selection's) that defines ``test``'s function ("name[params]"), or None."""
    name = test.split("[")[0]
    files = sorted((tree / "tests").glob("test_*.py")) + sorted((tree / "lora_verify/suite").glob("test_*.py"))
    return next((str(f.relative_to(tree)) for f in files if name and f"def {name}(" in f.read_text()), None)


def memcheck_tests(tree: Path, cpu_test: str = "") -> list:
    """The memcheck tier's pytest arguments: closeness and layout agreement, and ``cpu_test`` (the test id that
    killed the mutant on the CPU) where ``-k`` can name it and a test file of ``tree`` defines its function, but
    not a CUDA-graph test (a capture needs the caching allocator, which memcheck's runs turn off)."""
    file = defining_file(tree, cpu_test) if re.fullmatch(r"[\w:+\-.\[\]/]+", cpu_test) else None
    if file in (None, MEMCHECK_TESTS[0], "lora_verify/suite/test_graph.py"):
        return MEMCHECK_TESTS
    return [MEMCHECK_TESTS[0], file, "-k", f"{MEMCHECK_TESTS[2]} or {cpu_test}", *MEMCHECK_TESTS[3:]]


def _summary_printed(log: Path) -> bool:
    """pytest's last line ("1 failed, 17 passed ... in 226.40s") is in ``log``."""
    with open(log, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
        return bool(SUMMARY.search(f.read()))


def _kill_tree(pid: int) -> None:
    """SIGKILL to ``pid`` and its descendants (Linux /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait(proc, log: Path):
    """``proc``'s exit status; None past ``TIMEOUT_S``. A run that printed pytest's summary and is still alive
    ``LINGER_S`` later (seen on the GPU: a mutant's pytest that never exited) is killed, with the status its
    summary gives (1 if anything failed)."""
    start, summary_at = time.monotonic(), None
    while proc.poll() is None:
        time.sleep(1)
        now = time.monotonic()
        if summary_at is None and _summary_printed(log):
            summary_at = now
        if now - start > TIMEOUT_S or (summary_at is not None and now - summary_at > LINGER_S):
            _kill_tree(proc.pid)
            proc.wait()
            if summary_at is None:
                return None
            tail = log.read_text(errors="replace")[-4096:]
            return 1 if re.search(r"\d+ (failed|errors?)\b", tail) else 0
    return proc.returncode


def run_selection(tree: Path, log: Path, args=(), compiled=False, memcheck=False, targets=None) -> tuple:
    """Runs the selection in ``tree`` under the CI profile, interpreted or compiled on the GPU, or under memcheck;
    ``targets``: pytest's targets instead of the selection's paths (memcheck's tier, one test); (exit status,
    output)."""
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", "COLUMNS": "400"}
    if compiled:
        env.pop("TRITON_INTERPRET", None)
        env["CUDA_VISIBLE_DEVICES"] = _next_gpu()
    else:
        env["TRITON_INTERPRET"] = "1"
    env.setdefault("LORA_WATCHDOG_S", WATCHDOG_S)
    cmd = [sys.executable, "-m", "pytest", *(PYTEST if targets is None else [*PYTEST[:4], *targets]), *args]
    if memcheck:  # a stray then lies outside every allocation
        env.update(MEMCHECK_ENV, LORA_MUTANT_EXAMPLES=os.environ.get("LORA_MEMCHECK_EXAMPLES", "10"))
        cmd = [*MEMCHECK, *cmd]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        rc = _wait(proc, log)
    output = log.read_text(errors="replace") + ("" if rc is not None else f"\ntimed out after {TIMEOUT_S} s")
    return rc, output


def copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=COPY_IGNORE)
    return dest


def _verdict(name, rc, output, seconds) -> Result:
    found = re.search(r"Invalid __global__ .*", output)  # its line may begin with pytest's progress dots
    if rc == 86 or found:  # compute-sanitizer found an error (a run killed for lingering has no exit status)
        return Result(name, True, f"memcheck: {found.group(0)[:100] if found else 'a memcheck report'}", seconds)
    if rc in (0, 1, 2, None, FAULT_EXIT) or rc < 0:  # passed, failed, interrupted, timeout, a fault, signal
        by = first_failure(output) or fault_line(output) or ("timeout" if rc is None else f"exit status {rc}")
        return Result(name, rc != 0, by if rc != 0 else "", seconds)
    raise RuntimeError(f"mutant {name}: pytest exit status {rc}, see {LOGS / name}.log")


def run_mutant(mutant, source: Path, compiled=False, memcheck=None, workers=1) -> Result:
    """Killed or survived. ``memcheck(mutant)`` (``memcheck_order``) is ``(when, cpu_test)``: when "first", the
    mutant runs under memcheck before the selection, "after" only if it survives the selection, None never (the
    docstring); memcheck's tier then includes ``cpu_test``, the test that killed it on the CPU, which also runs
    alone before the selection (a test of the selection: the verdict is the same, sooner). ``workers`` > 1: its
    selection on that many xdist workers (an expected survivor runs all of it)."""
    start = time.monotonic()
    order, cpu_test = memcheck(mutant) if memcheck else (None, "")
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        tree = copy_tree(source, Path(tmp) / "tree")
        mutant.apply(tree)
        args = ["--mutated", mutant.file]
        spread = ["-n", str(workers), "--maxschedchunk", "1"] if workers > 1 else []

        def under_memcheck():
            rc, output = run_selection(tree, LOGS / f"{mutant.name}.memcheck.log", args, compiled, True,
                                       memcheck_tests(tree, cpu_test))
            return _verdict(mutant.name, rc, output, time.monotonic() - start)

        def cpu_test_alone():  # None where this tree has no such test (pytest's 4: not found; 5: none selected)
            file = defining_file(tree, cpu_test)
            rc, output = run_selection(tree, LOGS / f"{mutant.name}.alone.log", args, compiled,
                                       targets=[f"{file}::{cpu_test}"]) if file else (4, "")
            return None if rc in (4, 5) else _verdict(mutant.name, rc, output, time.monotonic() - start)

        result = under_memcheck() if order == "first" else None
        if cpu_test and not (result and result.killed):
            result = cpu_test_alone() or result
        if result is None or not result.killed:
            rc, output = run_selection(tree, LOGS / f"{mutant.name}.log", [*args, *spread], compiled)
            result = _verdict(mutant.name, rc, output, time.monotonic() - start)
            if order == "after" and not result.killed:
                result = under_memcheck()
    return result


def passed_already(source: Path):
    """The pass stamp (lora_verify.stamp) the whole suite left in this repository for the same tree, CI
    profile and environment (``tox -e cpu`` just before, in CI); None if there is none."""
    from lora_verify import plugin  # noqa: F401  (registers the profiles)

    ci = settings.get_profile("ci")
    return stamp.matching(ROOT, source, stamp.environment(ci.max_examples, ci.derandomize, True))


def sanity_check(source: Path, jobs: int, compiled=False) -> float:
    """The unmutated tree must pass the whole selection (in parallel: it is only pass or fail)."""
    start = time.monotonic()
    rc, output = run_selection(source, LOGS / "unmutated.log", ["-n", str(jobs)] if jobs > 1 else [], compiled)
    if rc != 0:
        sys.exit(f"the unmutated tree fails the selection ({first_failure(output)}): see {LOGS}/unmutated.log")
    return time.monotonic() - start


def table(results, catalogue) -> str:
    rows = ["| mutant | file | what it plants | result | killed by (first failing test) | time |", "|---" * 6 + "|"]
    for r in results:
        m = catalogue[r.name]
        verdict = "killed" if r.killed else ("survived (equivalent)" if m.equivalent else "**survived**")
        by = r.by.replace("|", "\\|") or "—"
        what = m.what.replace("|", "\\|")
        rows.append(f"| `{m.name}` | {m.file} | {what} | {verdict} | {by} | {r.seconds:.0f} s |")
    return "\n".join(rows)


@dataclass(frozen=True)
class _Unmutated:
    """The control of ``--parallel-sanity``: the tree as it is (with a file to say which tests may be left out:
    none, as ``impl/batch_info.py`` serves every operation)."""

    name: str = "unmutated"
    file: str = "impl/batch_info.py"
    what: str = "nothing: the unmutated tree (a control: if it dies, every kill of this run means nothing)"
    equivalent: str = "the unmutated tree"
    quick: bool = False

    def planted(self, text: str) -> str:
        return text

    def apply(self, root: Path) -> None:
        pass


UNMUTATED = _Unmutated()


def chosen_mutants(args) -> list:
    """The hand catalogue (or its quick subset), or the generated mutants (or a seeded sample); ``--only``."""
    pool = generated.generate(ROOT) if args.generated else MUTANTS
    if args.only:
        names = {m.name: m for m in pool}
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            sys.exit(f"no such mutant{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        return [names[n] for n in args.only]
    if args.generated:
        return generated.sample(pool, args.sample, args.seed) if args.sample else pool
    return [m for m in pool if m.quick or not args.quick]


def memcheck_order(cpu_json, memcheck=True):
    """``(when, cpu_test)`` for a mutant (``run_mutant``). ``when`` it runs under memcheck (None without
    ``memcheck``): "first" for a mutant the CPU run (``cpu_json``, if given) killed by a ``MemoryViolation``;
    "after" for the other mutants of the out-of-bounds classes; None for the rest. ``cpu_test``: the test that
    killed it on the CPU ("" if none did)."""
    killed = {}
    if cpu_json:
        killed = {r["name"]: r["by"] for r in json.loads(Path(cpu_json).read_text())["mutants"] if r["killed"]}

    def order(m):
        by = killed.get(m.name, "")
        cpu_test = by.split(": ")[0] if re.match(r"test_\w+(\[[^\]]*\])?(: |$)", by) else ""
        if not memcheck:
            return None, cpu_test
        if "MemoryViolation" in by:
            return "first", cpu_test
        return ("after" if getattr(m, "out_of_bounds", False) else None), cpu_test
    return order


def _record(args, catalogue, results, sanity, start) -> dict:
    backend = ("compiled" + (" + memcheck" if args.memcheck else "")) if args.compiled else "interpreter"
    return {
        "backend": backend, "jobs": args.jobs, "sanity_s": sanity, "wall_s": round(time.monotonic() - start),
        "mutants": [{"name": r.name, "file": catalogue[r.name].file, "what": catalogue[r.name].what,
                     "killed": r.killed, "by": r.by, "seconds": round(r.seconds, 1),
                     "equivalent": catalogue[r.name].equivalent} for r in results],
    }


def _earlier(path) -> list:
    """The verdicts a cut run left in ``path`` (the unmutated control's row aside: it runs again if asked)."""
    if not path or not Path(path).exists():
        return []
    return [m for m in json.loads(Path(path).read_text())["mutants"] if m["name"] != UNMUTATED.name]


def comparison(cpu: dict, gpu: dict) -> str:
    """The CPU and GPU verdicts of the mutants both runs have, disagreements first, as a markdown table."""
    on_gpu = {m["name"]: m for m in gpu["mutants"]}
    both = [(m, on_gpu[m["name"]]) for m in cpu["mutants"] if m["name"] in on_gpu]
    both.sort(key=lambda pair: pair[0]["killed"] == pair[1]["killed"])
    verdict = lambda m: f"killed: {m['by']}".replace("|", "\\|") if m["killed"] else "survived"
    rows = [f"CPU ({cpu['backend']}) and GPU ({gpu['backend']}): {len(both)} mutants in both runs, "
            f"{sum(c['killed'] != g['killed'] for c, g in both)} disagreements", "",
            "| mutant | CPU | GPU | agree |", "|---|---|---|---|"]
    for c, g in both:
        rows.append(f"| `{c['name']}` | {verdict(c)[:90]} | {verdict(g)[:90]} | "
                    f"{'yes' if c['killed'] == g['killed'] else '**no**'} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lora-verify mutants", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these mutants only")
    parser.add_argument("--quick", action="store_true", help="the representative subset (for CI)")
    parser.add_argument("--generated", action="store_true", help="the mutants generated from impl's AST")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="a seeded sample of N generated mutants")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants run at once (one pytest each)")
    parser.add_argument("--compiled", action="store_true", help="compiled on the CUDA device, not interpreted")
    parser.add_argument("--memcheck", action="store_true", help="with --compiled: strays' survivors under memcheck")
    parser.add_argument("--cpu-json", default=None, help="a CPU run's --json: each mutant first by the test that "
                        "killed it there; with --memcheck, memcheck first for its MemoryViolation kills")
    parser.add_argument("--json", default=None, help="each mutant's verdict, rewritten as each one ends")
    parser.add_argument("--resume", action="store_true",
                        help="with --json: leave out the mutants that file already holds and keep their verdicts "
                        "in it (a run cut by a time limit goes on where it stopped)")
    parser.add_argument("--parallel-sanity", action="store_true",
                        help="the unmutated tree runs beside the mutants (a row 'unmutated' that must survive), "
                        "not before them")
    parser.add_argument("--survivor-workers", type=int, default=1, metavar="N",
                        help="xdist workers for each expected survivor (equivalent or the control), which runs the "
                        "whole selection: compiled, its variants take one process longer than a device call")
    parser.add_argument("--budget", type=float, default=0, metavar="S",
                        help="start no mutant after S seconds (those not started are left out of the table)")
    parser.add_argument("--compare", nargs=2, metavar=("CPU_JSON", "GPU_JSON"), help="only print the comparison")
    args = parser.parse_args(argv)
    if args.compare:
        print(comparison(*(json.loads(Path(p).read_text()) for p in args.compare)))
        return 0
    if not (ROOT / "impl").is_dir():
        sys.exit(f"lora-verify mutants runs from the repository's root (its impl/ holds the kernels); here: {ROOT}")
    if args.memcheck and not (args.compiled and shutil.which(MEMCHECK[0])):
        sys.exit(f"--memcheck needs --compiled and {MEMCHECK[0]} on the PATH (a CUDA machine)")
    chosen = chosen_mutants(args)
    earlier = _earlier(args.json) if args.resume else []
    if earlier:
        done = {m["name"] for m in earlier}
        print(f"{len(done & {m.name for m in chosen})} mutants already in {args.json}: not run again", flush=True)
        chosen = [m for m in chosen if m.name not in done]
    catalogue = {m.name: m for m in chosen}
    memcheck = memcheck_order(args.cpu_json, args.memcheck) if args.memcheck or args.cpu_json else None
    LOGS.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    results, sanity = {}, None

    def run(mutant):
        if args.budget and time.monotonic() - start > args.budget:
            return None
        return run_mutant(mutant, source, args.compiled, memcheck, args.survivor_workers if mutant.equivalent else 1)

    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        source = copy_tree(ROOT, Path(tmp) / "unmutated")  # one snapshot: the working tree may change meanwhile
        for mutant in chosen:  # every edit applies: fail before any long run
            mutant.planted((source / mutant.file).read_text())
        passed = None if args.compiled or args.parallel_sanity else passed_already(source)
        if args.parallel_sanity:
            chosen.insert(0, UNMUTATED)
            catalogue[UNMUTATED.name] = UNMUTATED
        elif passed:
            ago = time.time() - passed["time"]
            print(f"unmutated tree: the whole suite passed on this tree and environment {ago:.0f} s ago "
                  f"({stamp.PATH}, a {passed['seconds']:.0f} s run); its selection is not run again", flush=True)
        else:
            sanity = round(sanity_check(source, args.jobs, args.compiled))
            print(f"unmutated tree passes the selection ({sanity} s)", flush=True)
        # expected survivors run the whole selection: start them first; then the mutants memcheck takes first (quick)
        first = (lambda m: memcheck(m)[0] == "first") if memcheck else (lambda m: False)
        with ThreadPoolExecutor(args.jobs) as pool:
            runs = [pool.submit(run, m) for m in sorted(chosen, key=lambda m: (not m.equivalent, not first(m)))]
            for done in as_completed(runs):
                r = done.result()
                if r is None:
                    continue
                print(f"{r.name:<44} {'killed  ' if r.killed else 'SURVIVED'} {r.seconds:6.0f} s  {r.by}", flush=True)
                results[r.name] = r
                if args.json:
                    ran = [results[m.name] for m in chosen if m.name in results]
                    record = _record(args, catalogue, ran, sanity, start)
                    record["mutants"] = earlier + record["mutants"]
                    Path(args.json).write_text(json.dumps(record, indent=1))
    results = [results[m.name] for m in chosen if m.name in results]
    killed = sum(r.killed for r in results)
    unexpected = [r.name for r in results if not r.killed and not catalogue[r.name].equivalent]
    wrongly_equivalent = [r.name for r in results if r.killed and catalogue[r.name].equivalent]
    equivalent = sum(bool(catalogue[r.name].equivalent) for r in results)
    print("\n" + table(results, catalogue) + "\n")
    print(f"kill rate: {killed}/{len(results)} = {killed / max(len(results), 1):.0%}; of those not marked equivalent "
          f"({equivalent} are): {killed}/{len(results) - equivalent}; survivors not marked equivalent: "
          f"{unexpected or 'none'}; marked equivalent but killed: {wrongly_equivalent or 'none'}; "
          f"{len(chosen) - len(results)} not run (budget); "
          f"wall time {time.monotonic() - start:.0f} s with -j {args.jobs}")
    return 1 if unexpected or wrongly_equivalent else 0
