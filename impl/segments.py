"""Device-side helpers shared by the kernels: which rows a program serves."""

import triton
import triton.language as tl


@triton.jit
def segment_rows(seg_indptr, permutation, seg, seg_len, row_tile, BLOCK_S: tl.constexpr, SORTED: tl.constexpr):
    """Physical rows and mask of row tile ``row_tile`` of segment ``seg``.

    Per-sequence: rows ``seg_start + offset``. Sorted: ``permutation[seg_start + offset]``.
    Rows at or past the segment's length are masked off and never read or written.
    """
    seg_start = tl.load(seg_indptr + seg)
    offs = row_tile * BLOCK_S + tl.arange(0, BLOCK_S)
    mask = offs < seg_len
    if SORTED:
        rows = tl.load(permutation + seg_start + offs, mask=mask, other=0)
    else:
        rows = seg_start + offs
    return rows.to(tl.int64), mask


def launch_common(batch_info):
    """The kernel arguments every entry point passes for the batch, in kernel order."""
    permutation = batch_info.permutation
    sorted_layout = permutation is not None
    return (
        batch_info.seg_lens,
        batch_info.seg_indptr,
        batch_info.weight_indices,
        batch_info.lora_ranks,
        permutation if sorted_layout else batch_info.seg_lens,  # unused when per-sequence
    ), sorted_layout


def row_tiles(batch_info, block_s: int) -> int:
    return triton.cdiv(max(batch_info.max_len, 1), block_s)
