"""The pytest plugin (entry point ``pytest11``): options, hypothesis profiles, fixtures and the verdict table.

Installed, it makes ``pytest --pyargs lora_verify.suite --impl my.module`` run the properties against any
module with SPEC.md's four entry points, from any directory. Importing it has no side effects on other
test runs: the backend (Triton's interpreter without CUDA, made faithful and bounds-checked) and the
hypothesis profile are chosen by :func:`activate`, which the suite's conftest calls, and which the ini
option ``lora_verify_activate`` (this repository's pyproject.toml sets it) asks for at configure time.

Profiles (``--hypothesis-profile`` or ``HYPOTHESIS_PROFILE``): ``dev`` (the default, 20 examples a
property), ``ci`` (100, derandomised), ``gpu`` (1,000, derandomised), ``fuzz`` (fresh examples each run,
a shared example database on disk, ``LORA_FUZZ_EXAMPLES`` a round; used by ``lora-verify fuzz``).
"""

import importlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from lora_verify import backend, compiles, durations, faults, profiles, stamp
from lora_verify.report import Tally, format_table, verdict_rows

_KEY = "lora_verdicts"
_common = dict(
    deadline=None,
    print_blob=True,
    report_multiple_bugs=False,  # shrink the first bug found; interpreted examples are slow
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=100, derandomize=True, **_common)
settings.register_profile("gpu", max_examples=1000, derandomize=True, **_common)
settings.register_profile("dev", max_examples=20, **_common)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("LORA_FUZZ_EXAMPLES", "200")),
    database=DirectoryBasedExampleDatabase(os.environ.get("LORA_FUZZ_DB", ".hypothesis/fuzz")),
    **_common,
)


def activate(config=None) -> bool:
    """Chooses the backend and, unless ``--hypothesis-profile`` named one, loads ``HYPOTHESIS_PROFILE``
    (default ``dev``). Call before any kernel module is imported; returns whether kernels are interpreted."""
    interpreting = backend.setup()
    given = config.getoption("hypothesis_profile", None) if config is not None else None
    if not given:
        settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
    return interpreting


def pytest_addoption(parser):
    parser.addini("lora_verify_activate", "choose the backend and profile at configure time", type="bool")
    group = parser.getgroup("lora-verify", "multi-LoRA kernel verification (lora_verify)")
    group.addoption(
        "--impl",
        default=os.environ.get("LORA_IMPL", "impl"),
        help="module under test: exposes SPEC.md's four entry points, its claims in PROFILE "
        "(default: impl; lora_verify.adapters.sglang for sglang's kernels)",
    )
    group.addoption(
        "--sglang",
        default=None,
        help="the sglang release lora_verify.adapters.sglang loads: a directory, a .whl or a version to fetch "
        "(sets LORA_SGLANG; default: that variable, else the installed sglang)",
    )
    group.addoption("--case-dir", default=os.environ.get("LORA_CASE_DIR", "failures"), help="where failing cases go")
    group.addoption("--verdicts-json", default=None, help="also write the verdict table to this JSON file")


def pytest_configure(config):
    if config.getoption("sglang", None):
        os.environ["LORA_SGLANG"] = config.getoption("sglang")
    if config.getini("lora_verify_activate"):
        activate(config)
    config._lora_tally = tally = Tally()
    config._lora_merged = set()  # the workers whose tallies are merged
    # every test process keeps its tally in a progress file, so that a worker that dies (lora_verify.faults) loses
    # nothing it found: the xdist controller (or lora-verify fuzz, which sets LORA_PROGRESS) merges the file
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        backend.share_cores()
    controller = worker is None and bool(config.getoption("numprocesses", None))
    prefix = tally.progress
    if worker is not None:
        prefix = tally.progress = worker.get("lora_progress", prefix)
    elif controller:  # its workers write the files, it reads them
        if not prefix:
            config._lora_tmp = tempfile.mkdtemp(prefix="lora-progress-")
            prefix = f"{config._lora_tmp}/tally"
        tally.progress = None
    config._lora_progress = prefix
    compiles.install()
    if os.environ.get("LORA_TIGHT") == "1":  # memcheck's runs: each launch argument alone in its allocation
        from lora_verify import tight

        tight.install()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Python's own: nothing else relies on it
        try:
            signal.signal(signal.SIGINT, _note_sigint)
        except ValueError:  # not the main thread: failures after a stop stay errors
            pass
    if worker is None:  # read once and handed to the workers, which must all collect the same order
        kind = _run_kind(config)
        config._lora_durations = durations.load(config.rootpath, kind)
        config.pluginmanager.register(durations.Recorder(config.rootpath, kind), "lora_durations")
    else:
        config._lora_durations = worker.get("lora_durations", {})
    tally.extra = {} if controller else compiles.STATS  # a controller sums its workers' (pytest_testnodedown)
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    faults.configure(prefix and f"{prefix}-inflight.{name}", worker is not None, tally)
    # Triton 3.6's interpreter calls int() on one-element arrays (an error from NumPy 2.4 on; CPU runs pin 2.3),
    # and reduces whole blocks, NaN-poisoned margins included, before applying masks: neither is a finding
    config.addinivalue_line("filterwarnings", "ignore:Conversion of an array with ndim:DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:invalid value encountered:RuntimeWarning")
    config.addinivalue_line("markers", "interpreter: needs Triton's interpreter (CPU only)")
    config.addinivalue_line("markers", "gpu: needs a CUDA device")


def _checked(item) -> tuple:
    """The (op, layout, property) a property test checks, from its parameters (known before it runs)."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    op, prop, layout = params.get("op"), params.get("prop_name"), params.get("layout")
    return ((op.name, layout, prop),) if hasattr(op, "name") and prop and layout else ()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that fails outside its checks gives its properties an ERROR (lora_verify.report)."""
    report = (yield).get_result()
    tally = item.config._lora_tally
    if report.when == "setup":
        tally.begin_test(_checked(item))
    if report.failed and report.when in ("setup", "call"):
        line = str(call.excinfo.value).strip().splitlines()[0][:200] if call.excinfo else report.outcome
        tally.end_test(True, f"ERROR in {item.name} ({report.when}): {line}", interrupted=bool(_SIGINTS))
    elif report.when == "teardown":
        tally.end_test(False, "")


_SIGINTS = []  # when this process got SIGINT (a time limit's stop): a test failing after it failed from the stop


def _note_sigint(signum, frame):
    _SIGINTS.append(time.monotonic())
    signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as before


def _cost(item) -> int:
    """A property test's kernel calls per example, weighted by its operation's cost on the interpreter; compiled,
    where the first run's compiles dominate, the tests whose examples run the most layouts first; 0 for other
    tests."""
    from lora_verify.properties import PROPERTIES_BY_NAME

    params = item.callspec.params if hasattr(item, "callspec") else {}
    prop, op = PROPERTIES_BY_NAME.get(params.get("prop_name")), params.get("op")
    if not (prop and hasattr(op, "cost")):
        return 0
    calls = (op.cost + 1) * prop.calls
    return calls if os.environ.get("TRITON_INTERPRET") == "1" else 1000 * prop.variants + calls


def pytest_collection_modifyitems(config, items):
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    for item in items:
        if "interpreter" in item.keywords and not interpreting:
            item.add_marker(pytest.mark.skip(reason="tests Triton's interpreter; kernels are compiled here"))
        if "gpu" in item.keywords and not backend.has_cuda():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device; none on this machine"))
    # the longest tests first: xdist's workers then run out of work at about the same time (with
    # --maxschedchunk 1, as tox's cpu env runs, each takes one test at a time); the last run's durations
    # decide where there are any, else the estimate
    items.sort(key=durations.order_key(config._lora_durations, _cost))


def _run_kind(config) -> str:
    """What durations are comparable across: the backend, the hypothesis profile and the module under test."""
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    chosen = config.getoption("hypothesis_profile", None) or os.environ.get("HYPOTHESIS_PROFILE", "dev")
    return f"{'interpreter' if interpreting else 'compiled'}, {chosen} profile, {config.getoption('--impl')}"


@pytest.hookimpl(optionalhook=True)  # xdist, controller: what each worker (first or replacement) is told
def pytest_configure_node(node):
    node.workerinput["lora_progress"] = node.config._lora_progress
    node.workerinput["lora_durations"] = node.config._lora_durations


def _whole_suite(config) -> bool:
    """The default selection (testpaths, nothing deselected) against impl: what a pass stamp stands for."""
    o = config.option
    chosen = o.keyword or o.markexpr or o.deselect or o.ignore or o.ignore_glob or getattr(o, "lf", False)
    return config.args_source == config.ArgsSource.TESTPATHS and not chosen and o.impl == "impl"


def pytest_sessionstart(session):
    config = session.config
    if not hasattr(config, "workerinput") and _whole_suite(config):
        config._lora_stamp = (time.monotonic(), stamp.tree_digest(config.rootpath))


@pytest.fixture(scope="session")
def verdicts(request):
    return request.config._lora_tally


@pytest.fixture(scope="session")
def device(verdicts):
    dev = backend.device()
    name = backend.device_name(dev)
    verdicts.devices[os.environ.get("PYTEST_XDIST_WORKER", "main")] = f"{dev} ({name})"
    return dev


@pytest.fixture(scope="session")
def impl_module(request):
    name = request.config.getoption("--impl")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"implementation under test {name!r} cannot be imported: {exc}")


@pytest.fixture(scope="session")
def profile(impl_module, verdicts):
    """What the implementation under test claims (lora_verify.profiles)."""
    found = profiles.of(impl_module)
    verdicts.header = found.summary()
    return found


@pytest.fixture(scope="session")
def case_dir(request):
    return request.config.getoption("--case-dir")


def _regimes_enforced(tally) -> bool:
    from lora_verify import regimes

    return regimes.enforced(tally, settings.get_current_profile_name())


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    tally = config._lora_tally
    config._lora_interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if tally.progress:
        tally.write_progress()
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the tally over
        config.workeroutput[_KEY] = tally.dump()
    elif tally.regime_checks and _regimes_enforced(tally) and session.exitstatus == pytest.ExitCode.OK:
        from lora_verify import regimes

        if regimes.shortfalls(tally.regimes):  # the table in the summary names them
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    started = getattr(config, "_lora_stamp", None)
    if started and session.exitstatus == 0 and stamp.tree_digest(config.rootpath) == started[1]:
        interpreting = os.environ.get("TRITON_INTERPRET") == "1"
        env = stamp.environment(settings.default.max_examples, settings.default.derandomize, interpreting)
        stamp.write(config.rootpath, env, time.monotonic() - started[0])


def pytest_unconfigure(config):
    if signal.getsignal(signal.SIGINT) is _note_sigint:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if getattr(config, "_lora_tmp", None):
        shutil.rmtree(config._lora_tmp, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent when xdist is not loaded
def pytest_testnodedown(node, error):
    tally, merged = node.config._lora_tally, node.config._lora_merged
    if node.gateway.id in merged:  # xdist reports an interrupted worker down twice
        return
    merged.add(node.gateway.id)
    dumped = getattr(node, "workeroutput", {}).get(_KEY)
    if dumped:
        tally.merge(dumped)
        for key, value in json.loads(dumped).items():
            if key in compiles.STATS:
                tally.extra[key] = tally.extra.get(key, 0) + value
    elif error and node.config._lora_progress:  # a worker that died: its last progress file, and its in-flight case
        prefix, worker = node.config._lora_progress, node.gateway.id
        progress = Path(f"{prefix}.{worker}")
        if progress.exists():
            tally.merge(progress.read_text())
        recovered = Tally()
        recovered.progress = None  # written once, below
        if faults.recover(f"{prefix}-inflight.{worker}", node.config.getoption("--case-dir"), recovered, error):
            tally.merge(recovered.dump())
            Path(f"{prefix}.{worker}-died").write_text(recovered.dump())  # for lora-verify fuzz, which reads the files


INTERRUPTED = ("INTERRUPTED: a property whose test had not ended is INCOMPLETE (unless it failed); the counts are of "
               "the examples that ran")


def _merge_unreported(config):
    """Workers whose tallies never came in (an interrupted run: Ctrl-C, a time limit's SIGINT), from their
    progress files: what they had checked when stopped."""
    prefix = config._lora_progress
    if not prefix or hasattr(config, "workeroutput"):
        return
    for path in sorted(Path(prefix).parent.glob(f"{Path(prefix).name}.gw*")):
        worker = path.name.rsplit(".", 1)[1]
        if worker.startswith("gw") and worker[2:].isdigit() and worker not in config._lora_merged:
            config._lora_merged.add(worker)
            config._lora_tally.merge(path.read_text())


def pytest_terminal_summary(terminalreporter, config):
    tally = config._lora_tally
    interrupted = getattr(config, "_lora_interrupted", False)
    if interrupted:
        _merge_unreported(config)
    if hasattr(config, "workeroutput") or not tally.rows:
        return
    rows = verdict_rows(tally)
    terminalreporter.section("property verdicts")
    for line in format_table(rows, tally.header):
        terminalreporter.write_line(line)
    if interrupted:
        terminalreporter.write_line(INTERRUPTED)
    for worker, dev in sorted(tally.devices.items()):
        terminalreporter.write_line(f"worker {worker}: {dev}")
    if tally.extra.get("compiles"):
        terminalreporter.write_line(
            f"Triton compiles (or loads from its cache): {tally.extra['compiles']}, {tally.extra['compile_s']:.0f} s "
            "summed over the workers"
        )
    if tally.regime_checks:
        from lora_verify import regimes

        enforced = _regimes_enforced(tally)
        terminalreporter.section("regime coverage (impl's kernels: examples whose launches took each regime)")
        for line in regimes.format_coverage(tally.regimes, enforced):
            terminalreporter.write_line(line)
        short = regimes.shortfalls(tally.regimes)
        if enforced and short:
            terminalreporter.write_line(f"FAILED: {len(short)} regime(s) below their minimum")
        elif not enforced:
            terminalreporter.write_line("minimums not enforced: only a ci or gpu run of every property check is")
    path = config.getoption("--verdicts-json")
    if path:
        with open(path, "w") as f:
            json.dump({"header": tally.header, "rows": rows, "devices": tally.devices, "regimes": tally.regimes,
                       "interrupted": INTERRUPTED if interrupted else None}, f, indent=1)
