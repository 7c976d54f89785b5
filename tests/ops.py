"""The operation table: each of the four operations described once.

An :class:`OpInfo` names the entry point (looked up by name in the module
under test, so any implementation of SPEC.md's calling convention can be
checked), its dims strategy, the shapes it takes, which input cells the
contract says are never read (poisoned with NaN), how it is called, and how
many products each output cell sums (for the error bound). Every property in
``test_properties.py`` runs over ``OPS``; a fifth operation is one more entry.
"""

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from hypothesis import strategies as st

import impl
import reference
from tests.strategies import Batch, Dims, feature_dim

NAN = float("nan")
GUARD_ROWS, GUARD_COLS = 2, 3  # untouched bands around an in-place output


@dataclass(frozen=True)
class OpInfo:
    name: str
    entry: str  # entry-point name, same in impl/ and reference/
    dims: st.SearchStrategy  # of Dims
    x_cols: Callable  # (dims, R) -> columns of x
    w_shape: Callable  # (dims, R) -> per-slot weight shape
    out_cols: Optional[Callable]  # (dims) -> columns of base_output; None: the op returns a new tensor
    poison: Callable  # (x, w, dims, rows_rank, slot_rank) -> NaN where the contract forbids reads
    call: Callable  # (fn, x, w, batch_info, dims, base) -> fn's result
    n_terms: Callable  # (dims, R) -> products summed per output cell

    def __repr__(self):
        return self.name

    @property
    def in_place(self) -> bool:
        return self.out_cols is not None


def _poison_shrink(x, w, dims, row_rank, slot_rank):
    """Weight rows past ``stack_num * r`` are padding."""
    for a, r in enumerate(slot_rank):
        w[a, dims.stack_num * r :] = NAN


def _poison_expand(x, w, dims, row_rank, slot_rank):
    """x columns past ``slices * r`` are shrink's undefined cells; weight columns past ``r`` are padding."""
    slices = len(dims.widths)
    for t, r in enumerate(row_rank):
        x[t, slices * r :] = NAN
    for a, r in enumerate(slot_rank):
        w[a, :, r:] = NAN


def _offsets(widths):
    out = [0]
    for width in widths:
        out.append(out[-1] + width)
    return out


def _qkv_call(fn, x, w, bi, dims, base):
    offsets = torch.tensor(_offsets(dims.widths), dtype=torch.int32, device=x.device)
    return fn(x, w, bi, offsets, max(dims.widths), base_output=base)


def _expand_entry(name, widths, call):
    return OpInfo(
        name=name,
        entry=name,
        dims=widths.map(lambda ws: Dims(widths=ws, stack_num=len(ws))),
        x_cols=lambda d, R: len(d.widths) * R,
        w_shape=lambda d, R: (sum(d.widths), R),
        out_cols=lambda d: sum(d.widths),
        poison=_poison_expand,
        call=call,
        n_terms=lambda d, R: R,
    )


OPS = [
    OpInfo(
        name="sgemm_lora_a_fwd",
        entry="sgemm_lora_a_fwd",
        # K past 256 takes the long-K blocks; 600 also splits them (impl.shrink.shrink_blocks)
        dims=st.builds(
            Dims, k=feature_dim() | feature_dim() | st.sampled_from([300, 600]), stack_num=st.sampled_from([1, 2, 3])
        ),
        x_cols=lambda d, R: d.k,
        w_shape=lambda d, R: (d.stack_num * R, d.k),
        out_cols=None,
        poison=_poison_shrink,
        call=lambda fn, x, w, bi, d, base: fn(x, w, bi, d.stack_num),
        n_terms=lambda d, R: d.k,
    ),
    _expand_entry(
        "sgemm_lora_b_fwd",
        # 300 is three column tiles: grouped, more than one group per slice (impl.expand.column_tiles_per_program)
        st.tuples(feature_dim(150) | feature_dim(150) | st.just(300)),
        lambda fn, x, w, bi, d, base: fn(x, w, bi, base_output=base),
    ),
    _expand_entry(
        "qkv_lora_b_fwd",
        st.tuples(feature_dim(80) | feature_dim(80) | st.just(300), feature_dim(40)).map(lambda qk: (*qk, qk[1])),
        _qkv_call,
    ),
    _expand_entry(
        "gate_up_lora_b_fwd",
        (feature_dim(80) | feature_dim(80) | st.just(300)).map(lambda dim: (dim, dim)),
        lambda fn, x, w, bi, d, base: fn(x, w, bi, d.widths[0], base_output=base),
    ),
]
OPS_BY_NAME = {op.name: op for op in OPS}
LAYOUTS = ["unsorted", "sorted"]  # and "lookup", "grouped" (see layout_info), which the properties compare with it
# what makes impl's kernels group work per program on large batches only, and the value that groups every batch:
# shrink's table tiles (impl.shrink.tiles_per_program), expand's column tiles (impl.expand.column_tiles_per_program)
GROUPING = {impl.shrink: ("GROUP_MIN_ROWS", "GROUP_MIN_SLOT_ROWS"), impl.expand: ("MIN_PROGRAMS",)}


def _values(shape, exp, awkward, gen):
    """Normal values times 2^exp; when awkward, an eighth of them exact ±0, subnormal or 2^16 larger."""
    v = torch.randn(shape, generator=gen) * 2.0**exp
    if awkward:
        kind = torch.randint(0, 32, shape, generator=gen)
        v = torch.where(kind == 0, torch.zeros_like(v), v)
        v = torch.where(kind == 1, torch.full_like(v, -0.0), v)
        v = torch.where(kind == 2, torch.sign(v) * 2.0**-130, v)  # a bf16 subnormal
        v = torch.where(kind == 3, v * 2.0**16, v)
    return v


@dataclass
class Case:
    """A batch made into tensors: the per-sequence batch info and the op's inputs."""

    batch: Batch
    op: OpInfo
    batch_info: impl.LoRABatchInfo
    x: torch.Tensor
    w: torch.Tensor
    base_buffer: Optional[torch.Tensor]  # guarded buffer; the base is its interior

    @property
    def base(self):
        if self.base_buffer is None:
            return None
        S, n = self.x.shape[0], self.op.out_cols(self.batch.dims)
        return self.base_buffer[GUARD_ROWS : GUARD_ROWS + S, :n]

    def row_ranks(self):
        ranks = [s.rank for s in self.batch.slots]
        return [ranks[seq.slot] for seq in self.batch.seqs for _ in range(seq.length)]

    def fresh(self):
        """A copy with its own output buffer, for a second call."""
        buf = None if self.base_buffer is None else self.base_buffer.clone()
        return Case(self.batch, self.op, self.batch_info, self.x, self.w, buf)


BAD_INDEX = 1 << 30  # what an index tensor's margins hold: out of range for every index


def _in_margins(t: torch.Tensor, rows: int, cols: int):
    """``(buffer, view)``: ``t`` copied into the interior of a larger, poison-filled buffer."""
    fill = NAN if t.is_floating_point() else BAD_INDEX
    shape = (t.shape[0] + 2 * rows, *t.shape[1:])
    if cols:
        shape = (shape[0], t.shape[1] + cols, *t.shape[2:])
    buf = torch.full(shape, fill, dtype=t.dtype, device=t.device)
    view = buf[rows : rows + t.shape[0]]
    if cols:
        view = view[:, : t.shape[1]]
    view.copy_(t)
    return buf, view


def in_poisoned_margins(t: torch.Tensor, rows: int = GUARD_ROWS, cols: int = 0) -> torch.Tensor:
    """``t`` as a view inside a larger allocation whose margins hold poison.

    ``rows`` margins before and after along the first dimension and ``cols``
    padding columns after each row (2-D; the view's row stride grows). The
    poison is NaN for floats (``0 * NaN`` is NaN, so a stray read that meets a
    masked zero still shows) and an out-of-range value for index tensors.
    The view is contiguous when ``cols == 0``.
    """
    return _in_margins(t, rows, cols)[1]


def guarded_buffer(base: torch.Tensor) -> torch.Tensor:
    """The buffer around an in-place output: its interior is ``base`` (see :attr:`Case.base`)."""
    return _in_margins(base, GUARD_ROWS, GUARD_COLS)[0]


def _poison_batch_info(bi: impl.LoRABatchInfo) -> impl.LoRABatchInfo:
    fields = ("seg_lens", "seg_indptr", "weight_indices", "lora_ranks", "scalings", "permutation", "tiles")
    moved = {f: in_poisoned_margins(getattr(bi, f)) for f in fields if getattr(bi, f) is not None}
    return dataclasses.replace(bi, **moved)


def batch_info_of(batch: Batch, device) -> impl.LoRABatchInfo:
    return _poison_batch_info(
        impl.per_sequence(
            [s.length for s in batch.seqs],
            [s.slot for s in batch.seqs],
            [s.rank for s in batch.slots],
            [s.scaling for s in batch.slots],
            device=device,
        )
    )


def materialize(batch: Batch, op: OpInfo, device) -> Case:
    """Tensors for ``batch``, made from its seed on the CPU and moved to ``device``."""
    v = batch.values
    dtype = getattr(torch, v.dtype)
    gen = torch.Generator().manual_seed(v.seed)
    S, L, R, d = batch.num_tokens, len(batch.slots), batch.max_rank, batch.dims
    x = _values((S, op.x_cols(d, R)), v.x_exp, v.awkward, gen).to(dtype)
    w = _values((L, *op.w_shape(d, R)), v.w_exp, v.awkward, gen).to(dtype)
    case = Case(batch, op, batch_info_of(batch, device), x, w, None)
    op.poison(x, w, d, case.row_ranks(), [s.rank for s in batch.slots])
    if op.in_place:
        base = _values((S, op.out_cols(d)), v.x_exp + v.w_exp, v.awkward, gen).to(dtype)
        case.base_buffer = guarded_buffer(base.to(device))
    case.x = in_poisoned_margins(x.to(device), cols=GUARD_COLS)
    case.w = in_poisoned_margins(w.to(device), rows=1)
    return case


def layout_info(case: Case, layout: str) -> impl.LoRABatchInfo:
    """The batch info of ``layout``: "unsorted" (per-sequence), "sorted" (impl's routing, its tile table
    included), "lookup" (the same sorted layout with sglang's fields only: the kernels then look each
    program's segment up in ``seg_indptr``) or "grouped" (the sorted one; ``run`` has impl group work per
    program, as it does on large batches only: ``GROUPING``)."""
    if layout == "unsorted":
        return case.batch_info
    routed = impl.sort_by_adapter(case.batch_info, case.x.shape[0])
    if layout == "lookup":
        routed = dataclasses.replace(routed, tiles=None)
    return _poison_batch_info(routed)


@contextlib.contextmanager
def grouping_forced():
    """impl groups work per program on every batch, however small (thresholds at 0), for the duration."""
    saved = {(m, name): getattr(m, name) for m, names in GROUPING.items() for name in names}
    for m, name in saved:
        setattr(m, name, 0)
    try:
        yield
    finally:
        for (m, name), value in saved.items():
            setattr(m, name, value)


def run(module, case: Case, layout: str) -> torch.Tensor:
    """Calls the op of ``module`` on ``case`` in ``layout``; returns the output (the base view if in place)."""
    fn = getattr(module, case.op.entry)
    with grouping_forced() if layout == "grouped" else contextlib.nullcontext():
        return case.op.call(fn, case.x, case.w, layout_info(case, layout), case.batch.dims, case.base)


def run_reference(case: Case, base_before: Optional[torch.Tensor]):
    """(ref, defined, mag): the float64 value, the cells the contract defines, and the |.| magnitude."""
    fn = getattr(reference, case.op.entry)
    bi, d = case.batch_info, case.batch.dims
    ref, defined = case.op.call(fn, case.x, case.w, bi, d, base_before)
    x_abs = torch.nan_to_num(case.x.abs(), nan=0.0)
    w_abs = torch.nan_to_num(case.w.abs(), nan=0.0)
    abs_info = impl.LoRABatchInfo(**{**bi.__dict__, "scalings": bi.scalings.abs()})
    base_abs = None if base_before is None else base_before.abs()
    mag, _ = case.op.call(fn, x_abs, w_abs, abs_info, d, base_abs)
    return ref, defined, mag


def sequence_rows(batch: Batch):
    """The rows of each sequence, in batch order."""
    rows, start = [], 0
    for seq in batch.seqs:
        rows.append(list(range(start, start + seq.length)))
        start += seq.length
    return rows


def subbatch(case: Case, order) -> tuple:
    """The case with only the sequences ``order`` (indices, in that order); and its rows in ``case``."""
    rows_of = sequence_rows(case.batch)
    rows = [r for i in order for r in rows_of[i]]
    batch = Batch(
        case.batch.max_rank,
        case.batch.slots,
        tuple(case.batch.seqs[i] for i in order),
        case.batch.dims,
        case.batch.values,
    )
    device = case.x.device
    index = torch.tensor(rows, dtype=torch.long, device=device)
    buf = guarded_buffer(case.base[index]) if case.op.in_place else None
    x = in_poisoned_margins(case.x[index], cols=GUARD_COLS)
    return Case(batch, case.op, batch_info_of(batch, device), x, case.w, buf), index
