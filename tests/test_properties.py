"""The properties of SPEC.md ("What must hold"), each run over every operation in ``OPS``.

Each test draws a batch with hypothesis, makes it into tensors, runs the
kernels of ``impl`` and checks one property; a failure prints the minimal
batch (hypothesis shrinks it) and a ``@reproduce_failure`` line to replay it.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from tests.bounds import error_bound
from tests.ops import GUARD_ROWS, LAYOUTS, OPS, materialize, run, run_reference, subbatch
from tests.strategies import batches

by_op = pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
by_layout = pytest.mark.parametrize("layout", LAYOUTS)


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that -0.0 != 0.0 and NaN == NaN of the same payload."""
    return t.contiguous().view({2: torch.int16, 4: torch.int32}[t.element_size()]).cpu()


def same_bits(a, b) -> bool:
    return torch.equal(bits(a), bits(b))


def draw_case(data, op, device):
    return materialize(data.draw(batches(op.dims), label="batch"), op, device)


def worst_cell(case, err, ratio, out, ref, bound):
    t, col = divmod(int(torch.argmax(ratio)), ratio.shape[1])
    slot = case.batch_info.weight_indices.cpu()[
        int(torch.searchsorted(case.batch_info.seg_indptr.cpu()[1:], torch.tensor(t), right=True))
    ]
    return (
        f"worst cell: token {t}, slot {int(slot)}, column {col}: kernel {float(out[t, col])!r}, "
        f"reference {float(ref[t, col])!r}, |error| {float(err[t, col])!r} > bound {float(bound[t, col])!r}"
    )


@by_layout
@by_op
@given(data=st.data())
def test_close_to_reference(op, layout, device, verdicts, data):
    """|kernel - exact| <= the rounding bound on every defined cell; guard bands and rank-0 rows untouched."""
    case = draw_case(data, op, device)
    buffer_before = None if case.base_buffer is None else case.base_buffer.clone()
    base_before = None if case.base is None else case.base.clone()
    out = run(impl, case, layout).cpu().double()
    ref, defined, mag = run_reference(case, base_before)
    bound = error_bound(
        ref,
        mag,
        op.n_terms(case.batch.dims, case.batch.max_rank),
        float(case.batch_info.scalings.abs().max()),
        case.x.dtype,
    )
    err = (out - ref).abs()
    ratio = torch.where(defined, torch.nan_to_num(err / bound, nan=float("inf")), 0.0)
    ok = bool((ratio <= 1).all())
    verdicts.record(op.name, layout, "close to reference", ok, float(ratio.max()) if ratio.numel() else 0.0)
    assert ok, worst_cell(case, err, ratio, out, ref, bound)
    if op.in_place:
        interior = torch.zeros_like(case.base_buffer, dtype=torch.bool)
        interior[GUARD_ROWS : GUARD_ROWS + out.shape[0], : out.shape[1]] = True
        guards_ok = torch.equal(bits(case.base_buffer)[~interior.cpu()], bits(buffer_before)[~interior.cpu()])
        verdicts.record(op.name, layout, "guard bands untouched", guards_ok)
        assert guards_ok, "a cell outside the output (a guard band) was written"
        rank0 = torch.tensor([r == 0 for r in case.row_ranks()], dtype=torch.bool)
        rank0_ok = torch.equal(bits(case.base)[rank0], bits(base_before)[rank0])
        verdicts.record(op.name, layout, "rank-0 rows keep base", rank0_ok)
        assert rank0_ok, "a rank-0 row of the output is not base bit for bit"


@by_op
@given(data=st.data())
def test_sorted_matches_unsorted(op, device, verdicts, data):
    """Both layouts give the same bits on every defined cell."""
    case = draw_case(data, op, device)
    unsorted = run(impl, case.fresh(), "unsorted")
    sorted_ = run(impl, case, "sorted")
    _, defined, _ = run_reference(case, None if case.base is None else case.base)
    ok = torch.equal(bits(unsorted)[defined], bits(sorted_)[defined])
    verdicts.record(op.name, "both", "sorted == unsorted", ok)
    assert ok, "sorted and unsorted layouts differ"


@by_layout
@by_op
@given(data=st.data())
def test_deterministic(op, layout, device, verdicts, data):
    """The same call twice gives the same bits (the whole output, undefined cells aside)."""
    case = draw_case(data, op, device)
    first = run(impl, case.fresh(), layout)
    second = run(impl, case, layout)
    _, defined, _ = run_reference(case, None)
    ok = torch.equal(bits(first)[defined], bits(second)[defined])
    verdicts.record(op.name, layout, "deterministic", ok)
    assert ok, "two identical calls differ"


@by_layout
@by_op
@given(data=st.data())
def test_batch_invariant(op, layout, device, verdicts, data):
    """A token's output does not depend on its batch-mates or on the order of the sequences."""
    case = draw_case(data, op, device)
    n = len(case.batch.seqs)
    kept = [i for i in range(n) if data.draw(st.booleans(), label=f"keep sequence {i}")]
    order = data.draw(st.permutations(kept), label="kept sequences, in their new order")
    other, rows = subbatch(case, order)
    full = run(impl, case, layout)
    part = run(impl, other, layout)
    _, defined, _ = run_reference(other, None)
    ok = torch.equal(bits(part)[defined], bits(full[rows])[defined])
    verdicts.record(op.name, layout, "batch-invariant", ok)
    assert ok, f"outputs changed when the batch became sequences {order}"
