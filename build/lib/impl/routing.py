"""Routing: the per-sequence layout turned into the sorted-by-adapter layout.

Runs on the device with no host synchronisation (no ``.item()``, no data-
dependent shapes), for any segment lengths, so that it can sit inside a
CUDA graph. Rows past the live token count (``seg_indptr[-1]``) get the
sentinel slot ``L``: they sort last and belong to no segment. The tile table
(``tile_table``) lists the sorted layout's row tiles once per batch, for every
kernel of the batch to read.
"""

import torch
import triton
import triton.language as tl

from .batch_info import LoRABatchInfo
from .segments import BLOCK_S, sorted_programs

ROWS_PER_STEP = tl.constexpr(64)  # tile-table rows one program writes at a time


def route(seg_indptr, weight_indices, num_slots: int, num_tokens: int):
    """Returns ``(permutation, seg_lens, seg_indptr)`` of the sorted layout.

    ``permutation`` has ``num_tokens`` entries (a capacity may exceed the live
    count); segment ``a`` is slot ``a``, empty when the slot is absent.
    """
    device = seg_indptr.device
    rows = torch.arange(num_tokens, dtype=seg_indptr.dtype, device=device)
    seg_of_row = torch.searchsorted(seg_indptr[1:].contiguous(), rows, right=True)
    sentinel = torch.full((1,), num_slots, dtype=torch.int64, device=device)
    slot_of_seg = torch.cat([weight_indices.to(torch.int64), sentinel])
    slot_of_row = slot_of_seg[seg_of_row]
    permutation = torch.sort(slot_of_row, stable=True).indices.to(torch.int32)
    counts = torch.zeros(num_slots + 1, dtype=torch.int32, device=device)
    counts.scatter_add_(0, slot_of_row, torch.ones_like(slot_of_row, dtype=torch.int32))
    seg_lens = counts[:num_slots]
    sorted_indptr = torch.zeros(num_slots + 1, dtype=torch.int32, device=device)
    torch.cumsum(seg_lens, 0, dtype=torch.int32, out=sorted_indptr[1:])
    return permutation, seg_lens, sorted_indptr


@triton.jit
def _tile_table_kernel(
    seg_lens, seg_indptr, weight_indices, table, num_segments, length, SEGMENTS: tl.constexpr, BLOCK_S: tl.constexpr
):
    """Program ``s < num_segments`` writes segment ``s``'s tiles; program ``num_segments`` zeroes the rest."""
    s = tl.program_id(0)
    idx = tl.arange(0, SEGMENTS)
    tiles = (tl.load(seg_lens + idx, mask=idx < num_segments, other=0) + BLOCK_S - 1) // BLOCK_S
    first = tl.sum(tl.where(idx < s, tiles, 0), 0)  # the tiles of the segments before s
    offs = tl.arange(0, ROWS_PER_STEP)
    if s < num_segments:
        count = tl.sum(tl.where(idx == s, tiles, 0), 0)
        seg_len, start, slot = tl.load(seg_lens + s), tl.load(seg_indptr + s), tl.load(weight_indices + s)
        for i in range(0, count, ROWS_PER_STEP):
            tile = i + offs
            row, mask = table + (first + tile) * 3, tile < count
            tl.store(row, start + tile * BLOCK_S, mask=mask)
            tl.store(row + 1, tl.minimum(seg_len - tile * BLOCK_S, BLOCK_S), mask=mask)
            tl.store(row + 2, tl.zeros_like(tile) + slot, mask=mask)
    else:
        for i in range(first, length, ROWS_PER_STEP):
            row, mask = table + (i + offs) * 3, i + offs < length
            for field in tl.static_range(3):
                tl.store(row + field, tl.zeros_like(offs), mask=mask)


def tile_table(seg_lens, seg_indptr, weight_indices, length: int, out=None) -> torch.Tensor:
    """The sorted layout's row tiles in segment order, one row each: ``[first logical position, rows, slot]``.

    A segment of ``n`` rows has ``ceil(n / BLOCK_S)`` tiles, all full but the last; rows past the
    segments' tiles are ``[0, 0, 0]`` (idle programs). ``(length, 3)`` int32, written into ``out`` when
    given; one launch, no host sync.
    """
    table = torch.empty((length, 3), dtype=torch.int32, device=seg_lens.device) if out is None else out
    n = seg_lens.shape[0]
    _tile_table_kernel[(n + 1,)](
        seg_lens,
        seg_indptr,
        weight_indices,
        table,
        n,
        length,
        SEGMENTS=triton.next_power_of_2(max(n, 1)),
        BLOCK_S=BLOCK_S,
    )
    return table


def sort_by_adapter(batch: LoRABatchInfo, num_tokens: int) -> LoRABatchInfo:
    """The sorted layout of a per-sequence batch of ``num_tokens`` rows (an upper bound)."""
    num_slots = batch.lora_ranks.shape[0]
    permutation, seg_lens, seg_indptr = route(batch.seg_indptr, batch.weight_indices, num_slots, num_tokens)
    slots = torch.arange(num_slots, dtype=torch.int32, device=seg_lens.device)
    return LoRABatchInfo(
        bs=num_slots,
        num_segments=num_slots,
        seg_lens=seg_lens,
        seg_indptr=seg_indptr,
        weight_indices=slots,
        lora_ranks=batch.lora_ranks,
        scalings=batch.scalings,
        max_len=num_tokens,
        permutation=permutation,
        use_cuda_graph=batch.use_cuda_graph,
        tiles=tile_table(seg_lens, seg_indptr, slots, sorted_programs(num_tokens, num_slots)),
    )
