"""The properties of SPEC.md ("What must hold") as plain functions of a case.

The hypothesis tests, the regression corpus and the replay command all run
these, so a property is written once. Each takes the module under test, a
:class:`lora_verify.inputs.Case`, a layout, the tally and the implementation's
profile, raises ``AssertionError`` with the worst cell when it does not hold,
and records one verdict per sub-property. ``PROPERTIES`` lists them with the
layouts they run in, the claims they need (``lora_verify.profiles``) and the
extra parameters hypothesis draws for them.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from hypothesis import strategies as st

from lora_verify.bounds import case_bound
from lora_verify.inputs import GUARD_ROWS, subbatch
from lora_verify.layouts import defined_cells, run, run_reference
from lora_verify.scratch import poisoned


def raw(t: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that -0.0 != 0.0 and NaN == NaN of the same payload, on ``t``'s device (compared
    there: one host synchronisation per verdict)."""
    return t.contiguous().view({2: torch.int16, 4: torch.int32}[t.element_size()])


def bits(t: torch.Tensor) -> torch.Tensor:
    """:func:`raw`, on the CPU."""
    return raw(t).cpu()


def _worst_cell(case, err, ratio, out, ref, bound):
    t, col = divmod(int(torch.argmax(ratio)), ratio.shape[1])
    seg = int(torch.searchsorted(case.batch_info.seg_indptr.cpu()[1:], torch.tensor(t), right=True))
    slot = int(case.batch_info.weight_indices.cpu()[seg])
    return (
        f"worst cell: token {t}, slot {slot}, column {col}: kernel {float(out[t, col])!r}, "
        f"reference {float(ref[t, col])!r}, |error| {float(err[t, col])!r} > bound {float(bound[t, col])!r}"
    )


def close_to_reference(module, case, layout, tally, profile):
    """|kernel - exact| <= the bound of the implementation's rounding model on defined cells; guard bands and
    rank-0 rows untouched."""
    op = case.op
    buffer_before = None if case.base_buffer is None else case.base_buffer.clone()
    base_before = None if case.base is None else case.base.clone()
    with tally.check(op.name, layout, "close to reference") as v:
        out = run(module, case, layout)
        ref, defined, mag = run_reference(case, base_before)
        out = out.to(ref.device, torch.float64)
        bound = case_bound(case, ref, mag, base_before, profile.rounding)
        err = (out - ref).abs()
        # a NaN error is inf times the bound (the bound is never 0): the ratio holds no NaN, its max decides
        ratio = torch.where(defined, torch.nan_to_num(err / bound, nan=float("inf")), 0.0)
        v["ratio"] = float(ratio.max()) if ratio.numel() else 0.0
        assert v["ratio"] <= 1, _worst_cell(case, err, ratio, out, ref, bound)
    if not op.in_place:
        return
    with tally.check(op.name, layout, "guard bands untouched"):
        interior = torch.zeros_like(case.base_buffer, dtype=torch.bool)
        interior[GUARD_ROWS : GUARD_ROWS + out.shape[0], : out.shape[1]] = True
        outside = (raw(case.base_buffer) != raw(buffer_before)) & ~interior
        assert not outside.any(), f"guard cells written (buffer row, column): {outside.nonzero()[:8].tolist()}"
    with tally.check(op.name, layout, "rank-0 rows keep base"):
        rank0 = torch.tensor([r == 0 for r in case.row_ranks()], dtype=torch.bool, device=case.base.device)
        changed = (raw(case.base) != raw(base_before)) & rank0[:, None]
        assert not changed.any(), f"rank-0 cells changed (token, column): {changed.nonzero()[:8].tolist()}"


def _differing(a, b, defined):
    diff = (raw(a) != raw(b)) & defined.to(a.device)
    return diff.nonzero()[:8].tolist() if diff.any() else []


# the sorted layout's variants that must give unsorted's bits: the layout (lora_verify.layouts) -> its name in messages
SORTED_VARIANTS = {"sorted": "sorted", "lookup": "sorted without its tile table", "grouped": "grouped",
                   "grouped_split": "grouped, its splits summed by a second kernel"}


def sorted_matches_unsorted(module, case, layout, tally, profile, part=None):
    """The sorted layout gives unsorted's bits on every defined cell; so do the sorted layout without its tile
    table ("lookup") and with the work grouped per program as on large batches ("grouped": several table tiles
    for shrink, its splits summed in the program, several column tiles for expand; "grouped_split": shrink's
    grouped programs with their splits summed by a second kernel), whose other properties follow from
    this one; an in-place output's whole buffer, guard bands included, is the same. ``part`` (a key of
    ``SORTED_VARIANTS``) checks that variant alone: the suite gives each its own test, so that a compiled run
    compiles one variant's kernels per test; None checks every variant of the operation's (``sorted_variants``)."""
    with tally.check(case.op.name, layout, "sorted == unsorted"):
        unsorted_case = case.fresh()
        unsorted = run(module, unsorted_case, "unsorted")
        defined = defined_cells(case)
        for kind in (part,) if part else case.op.sorted_variants:
            name, other_case = SORTED_VARIANTS[kind], case.fresh()
            diff = _differing(unsorted, run(module, other_case, kind), defined)
            assert not diff, f"{name} and unsorted differ at (token, column) {diff}"
            if case.base_buffer is not None:
                everywhere = torch.ones((), dtype=torch.bool)
                diff = _differing(unsorted_case.base_buffer, other_case.base_buffer, everywhere)
                assert not diff, f"{name} and unsorted: buffers differ at (row, column) {diff}"


def deterministic(module, case, layout, tally, profile):
    """The same call twice gives the same bits on every defined cell; each call's fresh allocations hold another
    poison (``lora_verify.scratch``), so an output that depends on memory nobody wrote differs too."""
    with tally.check(case.op.name, layout, "deterministic"):
        with poisoned(0):
            first = run(module, case.fresh(), layout)
        with poisoned(1):
            second = run(module, case, layout)
        diff = _differing(first, second, defined_cells(case))
        assert not diff, (f"two identical calls differ at (token, column) {diff} (their fresh allocations held two "
                          "poisons: an output read memory nobody wrote, or the calls are not deterministic)")


def batch_invariant(module, case, layout, tally, profile, order):
    """A token's output does not depend on its batch-mates or on the order of the sequences."""
    other, rows = subbatch(case, order)
    with tally.check(case.op.name, layout, "batch-invariant"):
        full = run(module, case, layout)
        part = run(module, other, layout)
        diff = _differing(part, full[rows], defined_cells(other))
        assert not diff, f"with only sequences {order}, outputs differ at (token, column) {diff}"


@st.composite
def kept_sequences(draw, case):
    """Some of the case's sequences, in a new order."""
    kept = [i for i in range(len(case.batch.seqs)) if draw(st.booleans())]
    return {"order": draw(st.permutations(kept))}


@dataclass(frozen=True)
class Property:
    name: str
    check: Callable
    layouts: tuple
    needs: tuple = ()  # claims (lora_verify.profiles.CLAIMS) it needs, besides its layout ("both": both layouts)
    params: Optional[Callable] = None  # case -> strategy of keyword arguments for ``check``
    calls: int = 1  # kernel calls per example: the plugin starts costly tests first (xdist then ends together)
    parts: tuple = ()  # values of ``check``'s ``part``: the suite runs each as a test of its own (none: one test)
    variants: int = 1  # layouts an example runs: compiled, each meets its own kernel variants (compiles dominate)

    def unclaimed(self, profile, layout) -> Optional[str]:
        """Why ``profile`` does not claim this property in ``layout``; None when it does."""
        layouts = ("unsorted", "sorted") if layout == "both" else (layout,)
        return profile.unclaimed((*layouts, *self.needs))


PROPERTIES = [
    Property("close to reference", close_to_reference, ("unsorted", "sorted")),
    # the same bits from two layouts presuppose the same bits from two calls: an implementation that does not claim
    # determinism (vLLM's atomics) cannot claim this either
    Property("sorted == unsorted", sorted_matches_unsorted, ("both",), ("deterministic",), calls=2,
             parts=tuple(SORTED_VARIANTS), variants=2),
    Property("deterministic", deterministic, ("unsorted", "sorted"), ("deterministic",), calls=2),
    Property("batch-invariant", batch_invariant, ("unsorted", "sorted"), ("batch_invariant",), kept_sequences, 2),
]
PROPERTIES_BY_NAME = {p.name: p for p in PROPERTIES}
