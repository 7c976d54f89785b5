"""Suite-wide set-up: interpreter mode without a GPU, hypothesis profiles, the device fixture.

Without CUDA the kernels run under Triton's interpreter, which must be chosen
before any kernel module is imported (``@triton.jit`` decides at decoration),
and whose bf16 arithmetic is made faithful by ``tests.interpreter_bf16``. Every
interpreted launch is also bounds- and race-checked (``tests.interpreter_bounds``).
"""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
if INTERPRETING:
    from tests import interpreter_bf16, interpreter_bounds

    interpreter_bf16.install()
    interpreter_bounds.install()

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


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
def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
