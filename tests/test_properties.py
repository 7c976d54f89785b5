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
from tests.ops import GUARD_ROWS, LAYOUTS, OPS, OPS_BY_NAME, materialize, run, run_reference, subbatch
from tests.strategies import batches

by_op = pytest.mark.parametrize("op_name", [op.name for op in OPS])
by_layout = pytest.mark.parametrize("layout", LAYOUTS)


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that -0.0 != 0.0 and NaN == NaN of the same payload."""
    return t.contiguous().view({2: torch.int16, 4: torch.int32}[t.element_size()]).cpu()


def draw_case(data, op, device):
    return materialize(data.draw(batches(op.dims), label="batch"), op, device)


def worst_cell(case, err, ratio, out, ref, bound):
    t, col = divmod(int(torch.argmax(ratio)), ratio.shape[1])
    seg = int(torch.searchsorted(case.batch_info.seg_indptr.cpu()[1:], torch.tensor(t), right=True))
    slot = int(case.batch_info.weight_indices.cpu()[seg])
    return (
        f"worst cell: token {t}, slot {slot}, column {col}: kernel {float(out[t, col])!r}, "
        f"reference {float(ref[t, col])!r}, |error| {float(err[t, col])!r} > bound {float(bound[t, col])!r}"
    )


@by_layout
@by_op
@given(data=st.data())
def test_close_to_reference(op_name, layout, device, verdicts, data):
    """|kernel - exact| <= the rounding bound on every defined cell; guard bands and rank-0 rows untouched."""
    op = OPS_BY_NAME[op_name]
    case = draw_case(data, op, device)
    buffer_before = None if case.base_buffer is None else case.base_buffer.clone()
    base_before = None if case.base is None else case.base.clone()
    with verdicts.check(op.name, layout, "close to reference") as v:
        out = run(impl, case, layout).cpu().double()
        ref, defined, mag = run_reference(case, base_before)
        n_terms = op.n_terms(case.batch.dims, case.batch.max_rank)
        max_scaling = float(case.batch_info.scalings.abs().max())
        bound = error_bound(ref, mag, n_terms, max_scaling, case.x.dtype)
        err = (out - ref).abs()
        ratio = torch.where(defined, torch.nan_to_num(err / bound, nan=float("inf")), 0.0)
        v["ratio"] = float(ratio.max()) if ratio.numel() else 0.0
        assert bool((ratio <= 1).all()), worst_cell(case, err, ratio, out, ref, bound)
    if op.in_place:
        with verdicts.check(op.name, layout, "guard bands untouched"):
            interior = torch.zeros_like(case.base_buffer, dtype=torch.bool, device="cpu")
            interior[GUARD_ROWS : GUARD_ROWS + out.shape[0], : out.shape[1]] = True
            assert torch.equal(bits(case.base_buffer)[~interior], bits(buffer_before)[~interior]), (
                "a cell outside the output (a guard band) was written"
            )
        with verdicts.check(op.name, layout, "rank-0 rows keep base"):
            rank0 = torch.tensor([r == 0 for r in case.row_ranks()], dtype=torch.bool)
            assert torch.equal(bits(case.base)[rank0], bits(base_before)[rank0]), (
                "a rank-0 row of the output is not base bit for bit"
            )


@by_op
@given(data=st.data())
def test_sorted_matches_unsorted(op_name, device, verdicts, data):
    """Both layouts give the same bits on every defined cell."""
    op = OPS_BY_NAME[op_name]
    case = draw_case(data, op, device)
    with verdicts.check(op.name, "both", "sorted == unsorted"):
        unsorted = run(impl, case.fresh(), "unsorted")
        sorted_ = run(impl, case, "sorted")
        _, defined, _ = run_reference(case, case.base)
        assert torch.equal(bits(unsorted)[defined], bits(sorted_)[defined]), "sorted and unsorted layouts differ"


@by_layout
@by_op
@given(data=st.data())
def test_deterministic(op_name, layout, device, verdicts, data):
    """The same call twice gives the same bits on every defined cell."""
    op = OPS_BY_NAME[op_name]
    case = draw_case(data, op, device)
    with verdicts.check(op.name, layout, "deterministic"):
        first = run(impl, case.fresh(), layout)
        second = run(impl, case, layout)
        _, defined, _ = run_reference(case, None)
        assert torch.equal(bits(first)[defined], bits(second)[defined]), "two identical calls differ"


@by_layout
@by_op
@given(data=st.data())
def test_batch_invariant(op_name, layout, device, verdicts, data):
    """A token's output does not depend on its batch-mates or on the order of the sequences."""
    op = OPS_BY_NAME[op_name]
    case = draw_case(data, op, device)
    kept = [i for i in range(len(case.batch.seqs)) if data.draw(st.booleans(), label=f"keep sequence {i}")]
    order = data.draw(st.permutations(kept), label="kept sequences, in their new order")
    other, rows = subbatch(case, order)
    with verdicts.check(op.name, layout, "batch-invariant"):
        full = run(impl, case, layout)
        part = run(impl, other, layout)
        _, defined, _ = run_reference(other, None)
        assert torch.equal(bits(part)[defined], bits(full[rows])[defined]), (
            f"outputs changed when the batch became sequences {order}"
        )
