"""Rows past 2^31 elements: offsets that wrap in int32, on the GPU.

A kernel that forms ``row * stride`` in int32 wraps once a tensor holds more than 2^31 elements
(4 GiB of bf16), which no CPU-sized batch reaches: this is the one test that can tell the mutant
``seg_rows_int32`` apart. For every operation of the table, a segment of ``TAIL`` rows sits at the end
of a tall tensor (``x`` of a shrink, ``base_output`` of an in-place op: the wide one), behind a rank-0
segment over every row before it (no work there). Its rows are checked against the float64 reference
of the same ``TAIL`` rows alone, with the suite's bound for the implementation's rounding, in both layouts.
"""

import dataclasses

import pytest
import torch

from impl import per_sequence, sort_by_adapter
from lora_verify.bounds import case_bound
from lora_verify.inputs import Case
from lora_verify.ops import OPS, Layer
from lora_verify.strategies import Batch, Dims, Seq, Slot, Values

pytestmark = pytest.mark.gpu
TALL = Layer("tall", hidden=4096, q=4096, kv=1024, intermediate=4096)  # the widths each op's tall tensor gets
TAIL, RANK, SCALING = 20, 16, -0.5  # the live segment: a full row tile and a partial one


def tall_dims(op) -> Dims:
    return next(iter(op.bench(TALL).values()))


def tall_rows(op) -> int:
    """Rows that put the op's wide tensor past 2^31 elements."""
    d = tall_dims(op)
    return 2**31 // (op.out_cols(d) if op.in_place else op.x_cols(d, RANK)) + 40


def tail_batch(rows: int, layout: str, device):
    """Rows ``[0, rows - TAIL)`` on slot 0 (rank 0), the last ``TAIL`` on slot 1 (rank ``RANK``)."""
    batch = per_sequence([rows - TAIL, TAIL], [0, 1], [0, RANK], [1.0, SCALING], device=device)
    return sort_by_adapter(batch, rows) if layout == "sorted" else batch


@pytest.fixture
def claimed(profile, verdicts, request):
    layout = request.node.callspec.params["layout"]
    reason = profile.unclaimed((layout,))
    if reason:
        verdicts.not_claimed("large offsets", layout, "rows past 2^31 elements", reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")


def check_tail(module, profile, op, layout, rows, device, outcome):
    """The op on ``rows`` rows, only the last ``TAIL`` live, against the reference of those rows alone."""
    d = tall_dims(op)
    gen = torch.Generator(device=device).manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=device).to(torch.bfloat16)

    x_tail, w = randn(TAIL, op.x_cols(d, RANK)), randn(2, *op.w_shape(d, RANK))
    x = torch.full((rows, x_tail.shape[1]), float("nan"), dtype=torch.bfloat16, device=device)  # rank 0: unread
    x[-TAIL:] = x_tail
    base = base_tail = None
    if op.in_place:
        base_tail = randn(TAIL, op.out_cols(d))
        base = torch.empty((rows, op.out_cols(d)), dtype=torch.bfloat16, device=device)
        base[-TAIL:] = base_tail
    offsets = op.slice_offsets(d)
    offsets = None if offsets is None else torch.tensor(offsets, dtype=torch.int32, device=device)
    out = op.call(getattr(module, op.entry), x, w, tail_batch(rows, layout, device), d, base, offsets)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a fault from a wrapped offset is raised here, not by a later call
    batch = Batch(RANK, (Slot(0, 1.0), Slot(RANK, SCALING)), (Seq(TAIL, 1),), d, Values(0))
    small = Case(batch, op, per_sequence([TAIL], [1], [0, RANK], [1.0, SCALING], device=device), x_tail, w, None,
                 offsets)
    ref, defined = op.call(op.reference, x_tail, w, small.batch_info, d, base_tail, offsets)
    abs_info = dataclasses.replace(small.batch_info, scalings=small.batch_info.scalings.abs())
    base_abs = None if base_tail is None else base_tail.abs()
    mag, _ = op.call(op.reference, x_tail.abs(), w.abs(), abs_info, d, base_abs, offsets)
    bound = case_bound(small, ref, mag, base_tail, profile.rounding)
    ratio = torch.where(defined, (out[-TAIL:].double().cpu() - ref).abs() / bound, 0.0)
    outcome["ratio"] = float(ratio.max())
    assert bool((ratio <= 1).all()), f"rows past 2^31 elements: worst |error| / bound {float(ratio.max())}"


@pytest.mark.parametrize("layout", ["unsorted", "sorted"])
@pytest.mark.parametrize("op", OPS, ids=repr)
def test_rows_past_int32(op, layout, impl_module, profile, device, claimed, verdicts):
    rows = tall_rows(op)
    d = tall_dims(op)
    wide = op.out_cols(d) if op.in_place else op.x_cols(d, RANK)
    if device.type != "cuda" or torch.cuda.mem_get_info(device)[0] < rows * wide * 2 + (1 << 30):
        pytest.skip(f"needs a CUDA device with {rows * wide * 2 / 2**30 + 1:.0f} GiB free")
    with verdicts.check(op.name, layout, "rows past 2^31 elements") as outcome:
        check_tail(impl_module, profile, op, layout, rows, device, outcome)
