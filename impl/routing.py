"""Routing: the per-sequence layout turned into the sorted-by-adapter layout, in one or two kernel launches.

Runs on the device with no host synchronisation (no ``.item()``, no data-dependent shapes), for any
segment lengths, so that it can sit inside a CUDA graph. No sort is needed: a per-sequence segment's rows
are contiguous, so the sorted layout is each slot's segments in segment order, and each segment's place
in it is a sum of lengths. Rows past the live token count (``seg_indptr[-1]``) form a sentinel segment
of slot ``L``: they sort last, in order, and belong to no slot. The tile table (the ``tiles`` field)
lists the sorted layout's row tiles once per batch, for every kernel of the batch to read.

Segments are taken in chunks of ``COUNT_ELEMENTS // SLOTS``. A batch of one chunk is routed in one launch,
each program counting the chunk itself in one step. A larger one is counted first, a program per chunk
(``_count_kernel``); the routing kernel's programs then read those counts, in one step while the chunks
times the slots are at most ``COUNT_ELEMENTS``, instead of each walking every segment itself, one dependent
step per chunk (nine at 1,024 segments over 64 slots: 20 us against 8 on an H100,
``docs/results/h100x1/README.md``).
"""

import torch
import triton
import triton.language as tl

from .batch_info import LoRABatchInfo
from .segments import BLOCK_S, sorted_programs

ROWS_PER_STEP = tl.constexpr(64)  # tile-table rows a program writes at a time; permutation entries: their rows
COUNT_ELEMENTS = 8192  # slots x segments (or x chunks of them) a program takes at a time


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
def _chunk_count(
    seg_indptr, weight_indices, c, num_segments, num_slots, num_tokens, SLOTS: tl.constexpr, CHUNK: tl.constexpr
):
    """Rows of each slot ``0 .. SLOTS - 1`` among segments ``c * CHUNK`` onwards, ``CHUNK`` of them, the sentinel
    included (its rows in bin ``num_slots``, absent when that is ``SLOTS``; no program reads that bin)."""
    idx = c * CHUNK + tl.arange(0, CHUNK)
    _, rows, slot = _segments(seg_indptr, weight_indices, idx, num_segments, num_slots, num_tokens)
    bins = tl.arange(0, SLOTS)
    return tl.sum(tl.where(slot[None, :] == bins[:, None], rows[None, :], 0), 1)


@triton.jit
def _count_kernel(
    seg_indptr,
    weight_indices,
    chunk_counts,
    num_segments,
    num_slots,
    num_tokens,
    SLOTS: tl.constexpr,
    CHUNK: tl.constexpr,
):
    """``chunk_counts[c]``: chunk ``c``'s rows of each slot (``_chunk_count``), a program per chunk."""
    c = tl.program_id(0)
    counts = _chunk_count(seg_indptr, weight_indices, c, num_segments, num_slots, num_tokens, SLOTS, CHUNK)
    tl.store(chunk_counts + c * SLOTS + tl.arange(0, SLOTS), counts)


@triton.jit
def _chunk_sums(chunk_counts, num_chunks, chunk, SLOTS: tl.constexpr, CHUNK_ROWS: tl.constexpr):
    """``(each slot's rows outside chunk chunk, its rows in the chunks before it)``, from ``CHUNK_ROWS`` chunks'
    counts at a time."""
    bins = tl.arange(0, SLOTS)
    outside = tl.zeros([SLOTS], dtype=tl.int32)
    earlier = tl.zeros([SLOTS], dtype=tl.int32)
    for first in range(0, num_chunks, CHUNK_ROWS):
        c = first + tl.arange(0, CHUNK_ROWS)
        block = tl.load(chunk_counts + c[:, None] * SLOTS + bins[None, :], mask=c[:, None] < num_chunks, other=0)
        outside += tl.sum(tl.where(c[:, None] != chunk, block, 0), 0)
        earlier += tl.sum(tl.where(c[:, None] < chunk, block, 0), 0)
    return outside, earlier


@triton.jit
def _write_segment(
    seg_indptr,
    weight_indices,
    permutation,
    s,
    outside,
    earlier,
    num_segments,
    num_slots,
    num_tokens,
    SLOTS: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """Segment ``s``'s rows, in order, into ``permutation`` from the segment's place in the sorted order: after
    the rows of the segments of lower slots and of the earlier segments of its own slot; those in its own
    chunk summed here, those outside it from ``_chunk_sums`` (zeros when the batch is one chunk)."""
    start, rows, slot = _segments(seg_indptr, weight_indices, s, num_segments, num_slots, num_tokens)
    idx = (s // CHUNK) * CHUNK + tl.arange(0, CHUNK)
    _, other_rows, other_slot = _segments(seg_indptr, weight_indices, idx, num_segments, num_slots, num_tokens)
    before = (other_slot < slot) | ((other_slot == slot) & (idx < s))
    bins = tl.arange(0, SLOTS)
    dest = tl.sum(tl.where(before, other_rows, 0), 0)
    dest += tl.sum(tl.where(bins < slot, outside, 0), 0) + tl.sum(tl.where(bins == slot, earlier, 0), 0)
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
    chunk_counts,
    permutation,
    seg_lens_out,
    seg_indptr_out,
    table,
    num_segments,
    num_slots,
    num_tokens,
    num_chunks,
    length,
    SLOTS: tl.constexpr,
    CHUNK: tl.constexpr,
    CHUNK_ROWS: tl.constexpr,
    ONE_CHUNK: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """The whole sorted layout, in three roles by program id: ``p <= num_segments`` writes segment ``p``'s
    permutation entries (the sentinel last); ``p = num_segments + 1 + a`` slot ``a``'s length, start and
    tiles; the last program the end of the sorted ``seg_indptr`` and the idle rows. The slots' rows come from
    ``_count_kernel``'s ``chunk_counts``, or, when the batch is one chunk (``ONE_CHUNK``: that kernel was not
    launched), from the segments themselves. No program waits for another."""
    p = tl.program_id(0)
    if p <= num_segments:
        if ONE_CHUNK:
            outside = tl.zeros([SLOTS], dtype=tl.int32)
            earlier = outside
        else:
            outside, earlier = _chunk_sums(chunk_counts, num_chunks, p // CHUNK, SLOTS, CHUNK_ROWS)
        _write_segment(
            seg_indptr,
            weight_indices,
            permutation,
            p,
            outside,
            earlier,
            num_segments,
            num_slots,
            num_tokens,
            SLOTS,
            CHUNK,
            BLOCK_S,
        )
    else:
        if ONE_CHUNK:
            counts = _chunk_count(seg_indptr, weight_indices, 0, num_segments, num_slots, num_tokens, SLOTS, CHUNK)
        else:
            counts, _ = _chunk_sums(chunk_counts, num_chunks, -1, SLOTS, CHUNK_ROWS)
        tiles = (counts + BLOCK_S - 1) // BLOCK_S
        if p <= num_segments + num_slots:
            _write_slot(seg_lens_out, seg_indptr_out, table, p - num_segments - 1, counts, tiles, SLOTS, BLOCK_S)
        else:
            _write_end(seg_indptr_out, table, num_slots, length, counts, tiles, SLOTS)


def count_chunks(num_segments: int, num_slots: int) -> tuple:
    """``(SLOTS, CHUNK, chunks)``: the slot bins, the segments per chunk (the sentinel counted) and the chunks
    of a batch of ``num_segments`` per-sequence segments over ``num_slots`` slots; the counts buffer is
    ``(chunks, SLOTS)`` int32."""
    slots = triton.next_power_of_2(num_slots)
    chunk = max(1, min(triton.next_power_of_2(num_segments + 1), COUNT_ELEMENTS // slots))
    return slots, chunk, triton.cdiv(num_segments + 1, chunk)


def route(seg_indptr, weight_indices, num_slots: int, num_tokens: int, out=None, counts=None):
    """``(permutation, seg_lens, seg_indptr, tiles)`` of the sorted layout, in one launch for a batch of one
    chunk of segments (``count_chunks``), two otherwise; written into ``out`` (four tensors of those shapes)
    when given, the chunks' counts into ``counts`` (``count_chunks``' shape) when given.

    ``permutation`` has ``num_tokens`` entries (a capacity may exceed the live count; the rows past it keep
    their places at the end); segment ``a`` is slot ``a``, empty when the slot is absent. ``tiles`` has
    ``sorted_programs(num_tokens, num_slots)`` rows ``[first logical position, rows, slot]``: each slot's
    tiles of ``BLOCK_S`` rows in slot order, all full but the last, then ``[0, 0, 0]`` (idle programs).
    """
    i32 = dict(dtype=torch.int32, device=seg_indptr.device)
    if out is None:
        out = (
            torch.empty(num_tokens, **i32),
            torch.empty(num_slots, **i32),
            torch.empty(num_slots + 1, **i32),
            torch.empty((sorted_programs(num_tokens, num_slots), 3), **i32),
        )
    num_segments = seg_indptr.shape[0] - 1
    slots, chunk, chunks = count_chunks(num_segments, num_slots)
    if counts is not None and counts.shape != (chunks, slots):
        raise ValueError(f"counts: expected shape {(chunks, slots)}, got {tuple(counts.shape)}")
    if chunks == 1:  # the routing kernel counts the one chunk itself
        counts = seg_indptr  # unused
    else:
        counts = torch.empty((chunks, slots), **i32) if counts is None else counts
        _count_kernel[(chunks,)](
            seg_indptr, weight_indices, counts, num_segments, num_slots, num_tokens, SLOTS=slots, CHUNK=chunk
        )
    _route_kernel[(num_segments + num_slots + 2,)](
        seg_indptr,
        weight_indices,
        counts,
        *out,
        num_segments,
        num_slots,
        num_tokens,
        chunks,
        out[3].shape[0],
        SLOTS=slots,
        CHUNK=chunk,
        CHUNK_ROWS=max(1, min(triton.next_power_of_2(chunks), COUNT_ELEMENTS // slots)),
        ONE_CHUNK=chunks == 1,
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
