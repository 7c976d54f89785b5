"""Routing: the per-sequence layout turned into the sorted-by-adapter layout, in one kernel launch.

Runs on the device with no host synchronisation (no ``.item()``, no data-dependent shapes), for any
segment lengths, so that it can sit inside a CUDA graph. No sort is needed: a per-sequence segment's rows
are contiguous, so the sorted layout is each slot's segments in segment order, and each segment's place
in it is a sum of lengths. Rows past the live token count (``seg_indptr[-1]``) form a sentinel segment
of slot ``L``: they sort last, in order, and belong to no slot. The tile table (the ``tiles`` field)
lists the sorted layout's row tiles once per batch, for every kernel of the batch to read.
"""

import torch
import triton
import triton.language as tl

from .batch_info import LoRABatchInfo
from .segments import BLOCK_S, sorted_programs

ROWS_PER_STEP = tl.constexpr(64)  # tile-table rows a program writes at a time; permutation entries: their rows
COUNT_ELEMENTS = 8192  # slots x segments compared at a time when a program counts every slot's rows


@triton.jit
def _segments(seg_indptr, weight_indices, idx, num_segments, num_slots, num_tokens):
    """``(first row, rows, slot)`` of per-sequence segments ``idx`` (a scalar or a block).

    Segment ``num_segments`` is the sentinel: the rows from the live count up to ``num_tokens``, slot
    ``num_slots``. Indices past it are empty segments of that slot.
    """
    real = idx < num_segments
    start = tl.load(seg_indptr + idx, mask=idx <= num_segments, other=0)
    end = tl.where(real, tl.load(seg_indptr + idx + 1, mask=real, other=0), num_tokens)
    rows = tl.where(idx <= num_segments, end - start, 0)
    slot = tl.where(real, tl.load(weight_indices + idx, mask=real, other=0), num_slots)
    return start, rows, slot


@triton.jit
def _slot_counts(
    seg_indptr, weight_indices, num_segments, num_slots, num_tokens, SLOTS: tl.constexpr, SEG_BLOCK: tl.constexpr
):
    """Rows of each slot ``0 .. SLOTS - 1``, counted over every segment (the sentinel's rows in slot ``num_slots``,
    a bin past ``SLOTS`` unless ``num_slots`` is not a power of two; no program reads that bin)."""
    bins = tl.arange(0, SLOTS)
    counts = tl.zeros([SLOTS], dtype=tl.int32)
    for first in range(0, num_segments + 1, SEG_BLOCK):
        idx = first + tl.arange(0, SEG_BLOCK)
        _, rows, slot = _segments(seg_indptr, weight_indices, idx, num_segments, num_slots, num_tokens)
        counts += tl.sum(tl.where(slot[None, :] == bins[:, None], rows[None, :], 0), 1)
    return counts


@triton.jit
def _write_segment(
    seg_indptr,
    weight_indices,
    permutation,
    s,
    num_segments,
    num_slots,
    num_tokens,
    SEG_BLOCK: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """Segment ``s``'s rows, in order, into ``permutation`` from the segment's place in the sorted order: after
    the rows of the segments of lower slots and of the earlier segments of its own slot."""
    start, rows, slot = _segments(seg_indptr, weight_indices, s, num_segments, num_slots, num_tokens)
    dest = tl.zeros([], dtype=tl.int32)
    for first in range(0, num_segments + 1, SEG_BLOCK):
        idx = first + tl.arange(0, SEG_BLOCK)
        _, other_rows, other_slot = _segments(seg_indptr, weight_indices, idx, num_segments, num_slots, num_tokens)
        before = (other_slot < slot) | ((other_slot == slot) & (idx < s))
        dest += tl.sum(tl.where(before, other_rows, 0), 0)
    offs = tl.arange(0, ROWS_PER_STEP * BLOCK_S)
    for j in range(0, rows, ROWS_PER_STEP * BLOCK_S):
        tl.store(permutation + dest + j + offs, start + j + offs, mask=j + offs < rows)


@triton.jit
def _write_slot(seg_lens_out, seg_indptr_out, table, a, counts, tiles, SLOTS: tl.constexpr, BLOCK_S: tl.constexpr):
    """Slot ``a``'s length and start, and its tiles into the table after the tiles of the slots before it."""
    bins = tl.arange(0, SLOTS)
    count = tl.sum(tl.where(bins == a, counts, 0), 0)
    start = tl.sum(tl.where(bins < a, counts, 0), 0)
    first = tl.sum(tl.where(bins < a, tiles, 0), 0)  # the tiles of the slots before a
    own = tl.sum(tl.where(bins == a, tiles, 0), 0)
    tl.store(seg_lens_out + a, count)
    tl.store(seg_indptr_out + a, start)
    offs = tl.arange(0, ROWS_PER_STEP)
    for i in range(0, own, ROWS_PER_STEP):
        tile = i + offs
        row, mask = table + (first + tile) * 3, tile < own
        tl.store(row, start + tile * BLOCK_S, mask=mask)
        tl.store(row + 1, tl.minimum(count - tile * BLOCK_S, BLOCK_S), mask=mask)
        tl.store(row + 2, tl.zeros_like(tile) + a, mask=mask)


@triton.jit
def _write_end(seg_indptr_out, table, num_slots, length, counts, tiles, SLOTS: tl.constexpr):
    """The sorted ``seg_indptr``'s last entry (the live count) and ``[0, 0, 0]`` in the table's rows past
    every slot's tiles (idle programs)."""
    bins = tl.arange(0, SLOTS)
    tl.store(seg_indptr_out + num_slots, tl.sum(tl.where(bins < num_slots, counts, 0), 0))
    used = tl.sum(tl.where(bins < num_slots, tiles, 0), 0)
    offs = tl.arange(0, ROWS_PER_STEP)
    for i in range(used, length, ROWS_PER_STEP):
        row, mask = table + (i + offs) * 3, i + offs < length
        for field in tl.static_range(3):
            tl.store(row + field, tl.zeros_like(offs), mask=mask)


@triton.jit
def _route_kernel(
    seg_indptr,
    weight_indices,
    permutation,
    seg_lens_out,
    seg_indptr_out,
    table,
    num_segments,
    num_slots,
    num_tokens,
    length,
    SLOTS: tl.constexpr,
    SEG_BLOCK: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """The whole sorted layout, in three roles by program id: ``p <= num_segments`` writes segment ``p``'s
    permutation entries (the sentinel last); ``p = num_segments + 1 + a`` slot ``a``'s length, start and
    tiles; the last program the end of the sorted ``seg_indptr`` and the idle rows. Each program reads only
    the per-sequence batch: a slot's program counts every slot's rows itself, so no program waits for another."""
    p = tl.program_id(0)
    if p <= num_segments:
        _write_segment(
            seg_indptr, weight_indices, permutation, p, num_segments, num_slots, num_tokens, SEG_BLOCK, BLOCK_S
        )
    else:
        counts = _slot_counts(seg_indptr, weight_indices, num_segments, num_slots, num_tokens, SLOTS, SEG_BLOCK)
        tiles = (counts + BLOCK_S - 1) // BLOCK_S
        if p <= num_segments + num_slots:
            _write_slot(seg_lens_out, seg_indptr_out, table, p - num_segments - 1, counts, tiles, SLOTS, BLOCK_S)
        else:
            _write_end(seg_indptr_out, table, num_slots, length, counts, tiles, SLOTS)


def route(seg_indptr, weight_indices, num_slots: int, num_tokens: int, out=None):
    """``(permutation, seg_lens, seg_indptr, tiles)`` of the sorted layout, in one launch; written into ``out``
    (four tensors of those shapes) when given.

    ``permutation`` has ``num_tokens`` entries (a capacity may exceed the live count; the rows past it keep
    their places at the end); segment ``a`` is slot ``a``, empty when the slot is absent. ``tiles`` has
    ``sorted_programs(num_tokens, num_slots)`` rows ``[first logical position, rows, slot]``: each slot's
    tiles of ``BLOCK_S`` rows in slot order, all full but the last, then ``[0, 0, 0]`` (idle programs).
    """
    if out is None:
        i32 = dict(dtype=torch.int32, device=seg_indptr.device)
        out = (
            torch.empty(num_tokens, **i32),
            torch.empty(num_slots, **i32),
            torch.empty(num_slots + 1, **i32),
            torch.empty((sorted_programs(num_tokens, num_slots), 3), **i32),
        )
    num_segments = seg_indptr.shape[0] - 1
    slots = triton.next_power_of_2(num_slots)
    _route_kernel[(num_segments + num_slots + 2,)](
        seg_indptr,
        weight_indices,
        *out,
        num_segments,
        num_slots,
        num_tokens,
        out[3].shape[0],
        SLOTS=slots,
        SEG_BLOCK=max(1, min(triton.next_power_of_2(num_segments + 1), COUNT_ELEMENTS // slots)),
        BLOCK_S=BLOCK_S,
    )
    return out


def sort_by_adapter(batch: LoRABatchInfo, num_tokens: int) -> LoRABatchInfo:
    """The sorted layout of a per-sequence batch of ``num_tokens`` rows (an upper bound)."""
    num_slots = batch.lora_ranks.shape[0]
    permutation, seg_lens, seg_indptr, tiles = route(batch.seg_indptr, batch.weight_indices, num_slots, num_tokens)
    return LoRABatchInfo(
        bs=num_slots,
        num_segments=num_slots,
        seg_lens=seg_lens,
        seg_indptr=seg_indptr,
        weight_indices=torch.arange(num_slots, dtype=torch.int32, device=seg_lens.device),
        lora_ranks=batch.lora_ranks,
        scalings=batch.scalings,
        max_len=num_tokens,
        permutation=permutation,
        use_cuda_graph=batch.use_cuda_graph,
        tiles=tiles,
    )
