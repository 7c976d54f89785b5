"""Device-side helpers shared by the kernels: which rows a program serves, and the grid that serves them."""

import triton
import triton.language as tl


@triton.jit
def program_tile(seg_lens, num_segments, BLOCK_S: tl.constexpr, SEGMENTS: tl.constexpr, SORTED: tl.constexpr):
    """``(segment, row tile)`` of this program; the segment is ``num_segments`` or more when it serves none.

    Per-sequence: grid axes 0 and 1 are row tile and segment. Sorted: axis 0 numbers the row tiles of all
    segments in order, found from the running sum of the segments' tile counts (``SEGMENTS`` is
    ``num_segments`` rounded up to a power of two), so that no program is launched for an adapter's
    absent rows: ``cdiv(S, BLOCK_S) + num_segments`` programs cover any sorted batch of ``S`` rows.
    """
    if SORTED:
        idx = tl.arange(0, SEGMENTS)
        lens = tl.load(seg_lens + idx, mask=idx < num_segments, other=0)
        tiles = (lens + BLOCK_S - 1) // BLOCK_S
        ends = tl.cumsum(tiles, 0)  # one past each segment's last tile
        tile = tl.program_id(0)
        seg = tl.sum((ends <= tile).to(tl.int32), 0)
        first = tl.sum(tl.where(idx == seg, ends - tiles, 0), 0)
        return seg, tile - first
    else:
        return tl.program_id(1), tl.program_id(0)


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
    """The kernel arguments every entry point passes for the batch, in kernel order, and the layout."""
    permutation = batch_info.permutation
    sorted_layout = permutation is not None
    return (
        batch_info.seg_lens,
        batch_info.seg_indptr,
        batch_info.weight_indices,
        batch_info.lora_ranks,
        permutation if sorted_layout else batch_info.seg_lens,  # unused when per-sequence
        batch_info.num_segments,
    ), sorted_layout


def tile_grid(batch_info, num_rows: int, block_s: int) -> tuple:
    """Grid axes 0 and 1 (see ``program_tile``) and the ``SEGMENTS`` constant, for a batch of ``num_rows`` rows."""
    segments = batch_info.num_segments
    if batch_info.permutation is not None:
        return (triton.cdiv(num_rows, block_s) + segments, 1), triton.next_power_of_2(segments)
    return (triton.cdiv(max(batch_info.max_len, 1), block_s), segments), 1
