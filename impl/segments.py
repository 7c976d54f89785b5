"""Device-side helpers shared by the kernels: which rows a program serves, and the grid that serves them."""

import triton
import triton.language as tl

BLOCK_S = 16  # rows per program, in both kernels; a batch's tile table (routing.route) is built for it


@triton.jit
def program_tile(seg_indptr, num_segments, tile, BLOCK_S: tl.constexpr, SEGMENTS: tl.constexpr, SORTED: tl.constexpr):
    """``(segment, row tile, segment start)`` of program ``tile`` of the tile axis; its row tile may lie past
    the segment's rows.

    Per-sequence: ``tile`` is the row tile, grid axis 1 the segment. Sorted: segment ``s``'s tiles are programs
    ``seg_indptr[s] // BLOCK_S + s`` onwards (axis 0). These first tiles increase with ``s``, and a segment's
    tiles end before the next one's first (as long as each segment starts where the one before it ends, as
    the layout's ``seg_indptr`` does), so a program's segment is the last one whose first tile is at or
    before it: one load of ``seg_indptr``, no running sum. No program is launched for an adapter's absent
    rows: ``cdiv(S, BLOCK_S) + num_segments`` programs cover any sorted batch of ``S`` rows.
    """
    if SORTED:
        idx = tl.arange(0, SEGMENTS)
        starts = tl.load(seg_indptr + idx, mask=idx < num_segments, other=0)
        first_tiles = starts // BLOCK_S + idx
        seg = tl.sum(((first_tiles <= tile) & (idx < num_segments)).to(tl.int32), 0) - 1
        seg_start = tl.sum(tl.where(idx == seg, starts, 0), 0)
        return seg, tile - (seg_start // BLOCK_S + seg), seg_start
    else:
        seg = tl.program_id(1)
        return seg, tile, tl.load(seg_indptr + seg)


@triton.jit
def segment_rows(
    seg_indptr, permutation, num_segments, seg_start, seg_len, row_tile, BLOCK_S: tl.constexpr, SORTED: tl.constexpr
):
    """Physical rows and mask of row tile ``row_tile`` of the segment starting at ``seg_start``.

    Per-sequence: rows ``seg_start + offset``. Sorted: ``permutation[seg_start + offset]``, read at every
    position before the live count ``seg_indptr[num_segments]`` (known as early as the segment, so that
    this load need not wait for the segment's length). Rows at or past the segment's length are masked
    off and never read or written.
    """
    offs = row_tile * BLOCK_S + tl.arange(0, BLOCK_S)
    mask = offs < seg_len
    if SORTED:
        live = seg_start + offs < tl.load(seg_indptr + num_segments)
        rows = tl.load(permutation + seg_start + offs, mask=live, other=0)
    else:
        rows = seg_start + offs
    return rows.to(tl.int64), mask


@triton.jit
def program_rows(
    seg_lens,
    seg_indptr,
    weight_indices,
    permutation,
    tiles,
    num_segments,
    tile,
    BLOCK_S: tl.constexpr,
    SEGMENTS: tl.constexpr,
    SORTED: tl.constexpr,
    TABLE: tl.constexpr,
):
    """``(slot, rows, row mask, rows left)`` of program ``tile`` of the tile axis; nothing to do if ``rows left <= 0``.

    With a tile table (sorted only; ``routing.route``) one load gives the tile's first logical
    position, row count and slot; the permutation and the slot's rank are then read side by side: as many
    dependent loads before the data as the per-sequence layout takes. Without one (sglang's fields only),
    ``program_tile`` finds the segment and its length and slot are read from it.
    """
    if TABLE:
        entry = tiles + tile * 3
        start = tl.load(entry)
        rows_left = tl.load(entry + 1)
        slot = tl.load(entry + 2)
        mask = tl.arange(0, BLOCK_S) < rows_left
        rows = tl.load(permutation + start + tl.arange(0, BLOCK_S), mask=mask, other=0).to(tl.int64)
    else:
        seg, row_tile, seg_start = program_tile(seg_indptr, num_segments, tile, BLOCK_S, SEGMENTS, SORTED)
        seg_len = tl.load(seg_lens + seg)
        slot = tl.load(weight_indices + seg)
        rows, mask = segment_rows(seg_indptr, permutation, num_segments, seg_start, seg_len, row_tile, BLOCK_S, SORTED)
        rows_left = seg_len - row_tile * BLOCK_S
    return slot, rows, mask, rows_left


@triton.jit
def table_block(tiles, permutation, num_tiles, first, BLOCK_S: tl.constexpr, GROUP: tl.constexpr):
    """``(rows, mask, slots)`` of the ``GROUP * BLOCK_S`` rows of table tiles ``first .. first + GROUP - 1``
    (tiles past ``num_tiles`` are empty), each row with its tile's slot: the rows a grouped program serves."""
    pos = tl.arange(0, GROUP * BLOCK_S)
    entry = tiles + (first + pos // BLOCK_S) * 3
    in_table = first + pos // BLOCK_S < num_tiles
    start = tl.load(entry, mask=in_table, other=0)
    mask = pos % BLOCK_S < tl.load(entry + 1, mask=in_table, other=0)
    slots = tl.load(entry + 2, mask=in_table, other=-1)
    rows = tl.load(permutation + start + pos % BLOCK_S, mask=mask, other=0)
    return rows.to(tl.int64), mask, slots


def tiles_of(batch_info):
    """The batch's tile table, or None: optional, sglang's own class has no such field (the lookup serves then)."""
    return getattr(batch_info, "tiles", None)


def launch_common(batch_info, table: bool = True):
    """The kernel arguments every entry point passes for the batch, in kernel order, and the layout; without
    ``table`` the batch's tile table is left out (its tiles are ``BLOCK_S`` rows: a grid of other row tiles looks
    its segments up in ``seg_indptr``)."""
    permutation, tiles = batch_info.permutation, tiles_of(batch_info) if table else None
    sorted_layout = permutation is not None
    return (
        batch_info.seg_lens,
        batch_info.seg_indptr,
        batch_info.weight_indices,
        batch_info.lora_ranks,
        permutation if sorted_layout else batch_info.seg_lens,  # unused when per-sequence
        tiles if tiles is not None else batch_info.seg_lens,  # unused without a tile table
        batch_info.num_segments,
    ), dict(SORTED=sorted_layout, TABLE=tiles is not None)


def sorted_programs(num_rows: int, num_segments: int, block_s: int = BLOCK_S) -> int:
    """Programs of a sorted grid (and rows of a tile table) enough for any split of ``num_rows`` rows into
    ``num_segments`` segments: the full tiles of ``block_s`` rows, plus at most one partial tile per segment."""
    return triton.cdiv(num_rows, block_s) + num_segments


def tile_grid(batch_info, num_rows: int, block_s: int = BLOCK_S, table: bool = True) -> tuple:
    """Grid axes 0 and 1 (see ``program_rows``) and the ``SEGMENTS`` constant, for a batch of ``num_rows`` rows
    in tiles of ``block_s`` rows (the tile table, ``BLOCK_S`` rows a tile, only with ``table``)."""
    segments, tiles = batch_info.num_segments, tiles_of(batch_info) if table else None
    if tiles is not None:
        return (tiles.shape[0], 1), 1
    if batch_info.permutation is not None:
        return (sorted_programs(num_rows, segments, block_s), 1), triton.next_power_of_2(segments)
    return (triton.cdiv(max(batch_info.max_len, 1), block_s), segments), 1
