"""A drawn batch made into tensors: the per-sequence batch info and an operation's inputs, in poisoned margins.

Values come from the batch's seed on the CPU (the same tensors on every device); every input sits inside a
larger buffer whose margins hold poison (NaN, or an out-of-range index), and an in-place output inside
guard bands, so that a stray read shows in the output and a stray write in the bands. A case's buffers go
to the device in one copy (views of one allocation there, as neighbouring allocations are anyway).
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch

import impl
from lora_verify.strategies import Batch

NAN = float("nan")
GUARD_ROWS, GUARD_COLS = 2, 3  # untouched bands around an in-place output
BAD_INDEX = 1 << 30  # what an index tensor's margins hold: out of range for every index
BATCH_FIELDS = ("seg_lens", "seg_indptr", "weight_indices", "lora_ranks", "scalings", "permutation", "tiles")


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


def row_ranks(batch: Batch) -> list:
    """The rank of each token's slot, in row order."""
    ranks = [s.rank for s in batch.slots]
    return [ranks[seq.slot] for seq in batch.seqs for _ in range(seq.length)]


@dataclass
class Case:
    """A batch made into tensors: the per-sequence batch info and the op's inputs."""

    batch: Batch
    op: "object"  # lora_verify.ops.OpInfo
    batch_info: impl.LoRABatchInfo
    x: torch.Tensor
    w: torch.Tensor
    base_buffer: Optional[torch.Tensor]  # guarded buffer; the base is its interior
    offsets: Optional[torch.Tensor] = None  # the op's slice offsets (int32, on the device) for calls that take them

    @property
    def base(self):
        if self.base_buffer is None:
            return None
        S, n = self.x.shape[0], self.op.out_cols(self.batch.dims)
        return self.base_buffer[GUARD_ROWS : GUARD_ROWS + S, :n]

    def row_ranks(self):
        return row_ranks(self.batch)

    def fresh(self):
        """A copy with its own output buffer, for a second call."""
        buf = None if self.base_buffer is None else self.base_buffer.clone()
        return dataclasses.replace(self, base_buffer=buf)


def _margins(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A poison-filled buffer, ``rows`` larger before and after along the first dimension and ``cols`` along
    the second, with ``t`` copied into its interior (:func:`_interior`); on ``t``'s device."""
    fill = NAN if t.is_floating_point() else BAD_INDEX
    shape = (t.shape[0] + 2 * rows, *t.shape[1:])
    if cols:
        shape = (shape[0], t.shape[1] + cols, *t.shape[2:])
    buf = torch.full(shape, fill, dtype=t.dtype, device=t.device)
    _interior(buf, rows, cols, t.shape).copy_(t)
    return buf


def _interior(buf: torch.Tensor, rows: int, cols: int, shape) -> torch.Tensor:
    view = buf[rows : rows + shape[0]]
    return view[:, : shape[1]] if cols else view


def in_poisoned_margins(t: torch.Tensor, rows: int = GUARD_ROWS, cols: int = 0) -> torch.Tensor:
    """``t`` as a view inside a larger allocation whose margins hold poison.

    ``rows`` margins before and after along the first dimension and ``cols``
    padding columns after each row (2-D; the view's row stride grows). The
    poison is NaN for floats (``0 * NaN`` is NaN, so a stray read that meets a
    masked zero still shows) and an out-of-range value for index tensors.
    The view is contiguous when ``cols == 0``.
    """
    return _interior(_margins(t, rows, cols), rows, cols, t.shape)


def guarded_buffer(base: torch.Tensor) -> torch.Tensor:
    """The buffer around an in-place output: its interior is ``base`` (see :attr:`Case.base`)."""
    return _margins(base, GUARD_ROWS, GUARD_COLS)


def _to_device(buffers: list, device) -> list:
    """CPU tensors on ``device``: one copy of them all, from pinned memory (no host synchronisation; each a
    view of that copy, 256-byte aligned). A GPU step per tensor cost more than the tensors' work."""
    device = torch.device(device)
    if device.type == "cpu":
        return buffers
    sizes = [b.numel() * b.element_size() for b in buffers]
    starts = [0]
    for n in sizes:
        starts.append(starts[-1] + -(-n // 256) * 256)
    host = torch.empty(starts[-1], dtype=torch.uint8, pin_memory=True)
    for b, start, n in zip(buffers, starts[:-1], sizes, strict=True):
        host[start : start + n] = b.reshape(-1).view(torch.uint8)
    packed = host.to(device, non_blocking=True)
    return [packed[s : s + n].view(b.dtype).view(b.shape) for b, s, n in zip(buffers, starts[:-1], sizes, strict=True)]


def _fields(bi) -> dict:
    return {f: getattr(bi, f) for f in BATCH_FIELDS if getattr(bi, f, None) is not None}


def _with_fields(bi, buffers: dict):
    """``bi`` with each tensor field the interior of its poisoned buffer in ``buffers``."""
    return dataclasses.replace(bi, **{f: _interior(b, GUARD_ROWS, 0, getattr(bi, f).shape) for f, b in buffers.items()})


def poison_batch_info(bi):
    """``bi`` with each tensor field moved into poisoned margins (a stray index read then shows)."""
    return _with_fields(bi, {f: _margins(t, GUARD_ROWS, 0) for f, t in _fields(bi).items()})


def _per_sequence(batch: Batch) -> impl.LoRABatchInfo:
    return impl.per_sequence(
        [s.length for s in batch.seqs],
        [s.slot for s in batch.seqs],
        [s.rank for s in batch.slots],
        [s.scaling for s in batch.slots],
    )


def batch_info_of(batch: Batch, device) -> impl.LoRABatchInfo:
    """The per-sequence batch info of ``batch`` on ``device``, each field in poisoned margins."""
    bi = _per_sequence(batch)
    buffers = {f: _margins(t, GUARD_ROWS, 0) for f, t in _fields(bi).items()}
    return _with_fields(bi, dict(zip(buffers, _to_device(list(buffers.values()), device), strict=True)))


def materialize(batch: Batch, op, device, strided_x: bool = True) -> Case:
    """Tensors for ``batch``, made from its seed on the CPU, in their poisoned margins, then moved to
    ``device`` in one copy.

    ``x`` is a row-strided view (padding columns after each row) unless ``strided_x`` is False: for an
    implementation that does not claim to take one (lora_verify.profiles).
    """
    v = batch.values
    dtype = getattr(torch, v.dtype)
    gen = torch.Generator().manual_seed(v.seed)
    S, L, R, d = batch.num_tokens, len(batch.slots), batch.max_rank, batch.dims
    x = _values((S, op.x_cols(d, R)), v.x_exp, v.awkward, gen).to(dtype)
    w = _values((L, *op.w_shape(d, R)), v.w_exp, v.awkward, gen).to(dtype)
    op.poison(x, w, d, row_ranks(batch), [s.rank for s in batch.slots])
    x_cols = GUARD_COLS if strided_x else 0
    host = {"x": _margins(x, GUARD_ROWS, x_cols), "w": _margins(w, 1, 0)}
    if op.in_place:
        base = _values((S, op.out_cols(d)), v.x_exp + v.w_exp, v.awkward, gen).to(dtype)
        host["base"] = guarded_buffer(base)
    offsets = op.slice_offsets(d)
    if offsets is not None:
        host["offsets"] = torch.tensor(offsets, dtype=torch.int32)
    bi = _per_sequence(batch)
    fields = {f: _margins(t, GUARD_ROWS, 0) for f, t in _fields(bi).items()}
    moved = dict(zip([*host, *fields], _to_device([*host.values(), *fields.values()], device), strict=True))
    return Case(
        batch,
        op,
        _with_fields(bi, {f: moved[f] for f in fields}),
        _interior(moved["x"], GUARD_ROWS, x_cols, x.shape),
        _interior(moved["w"], 1, 0, w.shape),
        moved.get("base"),
        moved.get("offsets"),
    )


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
    batch = dataclasses.replace(case.batch, seqs=tuple(case.batch.seqs[i] for i in order))
    device = case.x.device
    index = torch.tensor(rows, dtype=torch.long, device=device)
    buf = guarded_buffer(case.base[index]) if case.op.in_place else None
    x = in_poisoned_margins(case.x[index], cols=GUARD_COLS if case.x.stride(0) != case.x.shape[1] else 0)
    return dataclasses.replace(case, batch=batch, batch_info=batch_info_of(batch, device), x=x, base_buffer=buf), index
