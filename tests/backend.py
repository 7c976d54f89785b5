"""Picks how kernels run, before any kernel module is imported.

Without CUDA the kernels run under Triton's interpreter (``@triton.jit``
decides at decoration time, so this must come first), made faithful for bf16
by ``tests.interpreter_bf16`` and bounds- and race-checked by
``tests.interpreter_bounds``. The kernels' source is the same either way.
"""

import os

import torch


def setup() -> bool:
    """Chooses the backend; returns whether kernels are interpreted."""
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    if interpreting:
        from tests import interpreter_bf16, interpreter_bounds

        interpreter_bf16.install()
        interpreter_bounds.install()
    return interpreting


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
