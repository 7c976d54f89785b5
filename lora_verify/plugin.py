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

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from lora_verify import backend
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
    group.addoption("--case-dir", default=os.environ.get("LORA_CASE_DIR", "failures"), help="where failing cases go")
    group.addoption("--verdicts-json", default=None, help="also write the verdict table to this JSON file")


def pytest_configure(config):
    if config.getini("lora_verify_activate"):
        activate(config)
    config._lora_tally = Tally()
    config.addinivalue_line("markers", "interpreter: needs Triton's interpreter (CPU only)")
    config.addinivalue_line("markers", "gpu: needs a CUDA device")


def pytest_collection_modifyitems(config, items):
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    for item in items:
        if "interpreter" in item.keywords and not interpreting:
            item.add_marker(pytest.mark.skip(reason="tests Triton's interpreter; kernels are compiled here"))
        if "gpu" in item.keywords and not backend.has_cuda():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device; none on this machine"))


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
    from lora_verify import profiles

    found = profiles.of(impl_module)
    verdicts.header = found.summary()
    return found


@pytest.fixture(scope="session")
def case_dir(request):
    return request.config.getoption("--case-dir")


def _regimes_enforced(tally) -> bool:
    from lora_verify import regimes

    return regimes.enforced(tally, settings.get_current_profile_name())


def pytest_sessionfinish(session):
    tally = session.config._lora_tally
    if tally._progress:
        tally.write_progress()
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the tally over
        session.config.workeroutput[_KEY] = tally.dump()
    elif tally.regime_checks and _regimes_enforced(tally) and session.exitstatus == pytest.ExitCode.OK:
        from lora_verify import regimes

        if regimes.shortfalls(tally.regimes):  # the table in the summary names them
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent when xdist is not loaded
def pytest_testnodedown(node, error):
    dumped = getattr(node, "workeroutput", {}).get(_KEY)
    if dumped:
        node.config._lora_tally.merge(dumped)


def pytest_terminal_summary(terminalreporter, config):
    tally = config._lora_tally
    if hasattr(config, "workeroutput") or not tally.rows:
        return
    rows = verdict_rows(tally)
    terminalreporter.section("property verdicts")
    for line in format_table(rows, tally.header):
        terminalreporter.write_line(line)
    for worker, dev in sorted(tally.devices.items()):
        terminalreporter.write_line(f"worker {worker}: {dev}")
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
            json.dump({"header": tally.header, "rows": rows, "devices": tally.devices, "regimes": tally.regimes},
                      f, indent=1)
