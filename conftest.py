"""Suite-wide set-up: the backend, hypothesis profiles, the implementation under test, fixtures.

The backend comes first (``tests.backend``): without CUDA, kernels run under
Triton's interpreter, which must be chosen before any kernel module loads.
"""

import importlib
import os

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests import backend

INTERPRETING = backend.setup()

pytest_plugins = ["tests.report"]

_common = dict(
    deadline=None,
    print_blob=True,
    report_multiple_bugs=False,  # shrink the first bug found; interpreted examples are slow
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=100, derandomize=True, **_common)
settings.register_profile("gpu", max_examples=1000, derandomize=True, **_common)
settings.register_profile("dev", max_examples=20, **_common)
# fuzz: one round of a time-boxed run (tests/fuzz.py loops rounds); workers share the example database
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("LORA_FUZZ_EXAMPLES", "200")),
    database=DirectoryBasedExampleDatabase(os.environ.get("LORA_FUZZ_DB", ".hypothesis/fuzz")),
    **_common,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser):
    parser.addoption(
        "--impl",
        default=os.environ.get("LORA_IMPL", "impl"),
        help="module under test: exposes SPEC.md's four entry points (default: impl; adapters.sglang for sglang)",
    )
    parser.addoption("--case-dir", default=os.environ.get("LORA_CASE_DIR", "failures"), help="where failing cases go")


def pytest_configure(config):
    config.addinivalue_line("markers", "interpreter: needs Triton's interpreter (CPU only)")
    config.addinivalue_line("markers", "gpu: needs a CUDA device")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "interpreter" in item.keywords and not INTERPRETING:
            item.add_marker(pytest.mark.skip(reason="tests Triton's interpreter; kernels are compiled here"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device; none on this machine"))


@pytest.fixture(scope="session")
def device(verdicts):
    dev = backend.device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "Triton interpreter"
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
def case_dir(request):
    return request.config.getoption("--case-dir")
