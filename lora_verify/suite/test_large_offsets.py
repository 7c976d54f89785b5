"""Rows past 2^31 elements: offsets that wrap in int32, on the GPU.

The kernels form ``row * stride`` in int64. In int32 it wraps once a tensor holds more than 2^31
elements (4 GiB of bf16), which no CPU-sized batch reaches: this is the one test that can tell the
mutant ``seg_rows_int32`` apart. A segment of ``TAIL`` rows sits at the end of a tall ``x`` (shrink)
or ``base_output`` (expand), behind a rank-0 segment over every row before it (no work there); its
rows are checked against the float64 reference with the suite's rounding bound, in both layouts.
"""

import pytest
import torch

from impl import per_sequence, sort_by_adapter
from lora_verify.bounds import EXTRA_ROUNDINGS, error_bound

pytestmark = pytest.mark.gpu
WIDTH = 4096  # x's K (shrink) and the output's N (expand)
ROWS = 2**31 // WIDTH + 40  # the tall tensor holds more than 2^31 elements
TAIL, RANK, SCALING = 20, 16, -0.5  # the live segment: a full row tile and a partial one
NEEDS_BYTES = ROWS * WIDTH * 2 + (1 << 30)  # the tall bf16 tensor, and 1 GiB for the rest (shrink's partials)


def tail_batch(layout: str, device):
    """Rows ``[0, ROWS - TAIL)`` on slot 0 (rank 0), the last ``TAIL`` on slot 1 (rank ``RANK``)."""
    batch = per_sequence([ROWS - TAIL, TAIL], [0, 1], [0, RANK], [1.0, SCALING], device=device)
    return sort_by_adapter(batch, ROWS) if layout == "sorted" else batch


def check_tail(out, ref, mag, n_terms, lora_mag=None, extra_roundings=0):
    bound = error_bound(ref, mag, n_terms, 1.0, torch.bfloat16, lora_mag, extra_roundings)  # 1.0: largest |scaling|
    err = (out.double() - ref).abs()
    assert bool((err <= bound).all()), f"rows past 2^31 elements: worst |error| / bound {float((err / bound).max())}"


@pytest.fixture
def claimed(profile, verdicts, request):
    layout = request.node.callspec.params["layout"]
    reason = profile.unclaimed((layout,))
    if reason:
        verdicts.not_claimed("large offsets", layout, "rows past 2^31 elements", reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")


@pytest.fixture(scope="module")
def room(device):
    if device.type != "cuda" or torch.cuda.mem_get_info(device)[0] < NEEDS_BYTES:
        pytest.skip(f"needs a CUDA device with {NEEDS_BYTES / 2**30:.0f} GiB free")


@pytest.mark.parametrize("layout", ["unsorted", "sorted"])
def test_shrink_reads_rows_past_int32(impl_module, device, room, claimed, layout):
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.full((ROWS, WIDTH), float("nan"), dtype=torch.bfloat16, device=device)  # only the tail is read
    x[-TAIL:] = torch.randn(TAIL, WIDTH, generator=gen, device=device)
    w = torch.randn(2, RANK, WIDTH, generator=gen, device=device).to(torch.bfloat16)
    y = impl_module.sgemm_lora_a_fwd(x, w, tail_batch(layout, device))
    torch.cuda.synchronize(device)  # a fault from a wrapped offset is raised here, not by a later call
    xt, w1 = x[-TAIL:].double(), w[1].double()
    check_tail(y[-TAIL:, :RANK], xt @ w1.T, xt.abs() @ w1.abs().T, WIDTH)


@pytest.mark.parametrize("layout", ["unsorted", "sorted"])
def test_expand_writes_rows_past_int32(impl_module, profile, device, room, claimed, layout):
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(ROWS, RANK, generator=gen, device=device).to(torch.bfloat16)
    w = torch.randn(2, WIDTH, RANK, generator=gen, device=device).to(torch.bfloat16)
    base = torch.empty(ROWS, WIDTH, dtype=torch.bfloat16, device=device)
    base[-TAIL:] = torch.randn(TAIL, WIDTH, generator=gen, device=device)
    tail_base = base[-TAIL:].double()  # before the kernel adds into it
    out = impl_module.sgemm_lora_b_fwd(x, w, tail_batch(layout, device), base)
    torch.cuda.synchronize(device)
    xt, w1 = x[-TAIL:].double(), w[1].double()
    ref = tail_base + SCALING * (xt @ w1.T)
    lora_mag = abs(SCALING) * (xt.abs() @ w1.abs().T)
    check_tail(out[-TAIL:], ref, tail_base.abs() + lora_mag, RANK, lora_mag, EXTRA_ROUNDINGS[profile.rounding])
