"""The interpreter runs a launch's programs last to first (lora_verify.interpreter.order)."""

import pytest
import torch
import triton
import triton.language as tl

pytestmark = pytest.mark.interpreter


@triton.jit
def _arrival_kernel(counter, order):
    """Each program writes its id at its arrival's place."""
    tl.store(order + tl.atomic_add(counter, 1), tl.program_id(0) * 100 + tl.program_id(1))


def test_programs_run_last_to_first_on_every_axis():
    counter, order = torch.zeros(1, dtype=torch.int32), torch.full((6,), -1, dtype=torch.int32)
    _arrival_kernel[(3, 2)](counter, order)
    assert order.tolist() == [201, 200, 101, 100, 1, 0]
