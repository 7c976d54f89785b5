"""shrink: ``y[t, :stack_num*r] = x[t] @ W[a, :stack_num*r, :].T`` (SPEC.md, operation 1).

K is cut into splits that depend on K alone; each split's sum is a float32 partial, and the partials are
added in split order, then rounded once, so every row's sum is the same whatever the batch (batch-invariant
and deterministic, no atomics). On a small grid each program sums one split for one row tile (several tiles
of a tile table on large batches: ``tiles_per_program``) into a partial in memory, and ``_sum_splits_kernel``
adds them up: a long K runs on many programs at once instead of one program's serial loop. On a large grid
(row programs and output tiles: ``sums_in_program``) each program runs all of K, adds each split's sum to its
total as it ends, in the same order, and writes the rounded total: the same bits, without the partials'
round trip through memory and the second launch.
"""

import torch
import triton
import triton.language as tl

from .segments import BLOCK_S, launch_common, program_rows, table_block, tile_grid, tiles_of
from .validate import check, entry_point

BLOCK_K_LONG = 128  # BLOCK_K when K > 256
K_BLOCKS_PER_SPLIT = 4  # a split is this many BLOCK_K steps of K
SUM_ELEMENTS = 4096  # partials one program of _sum_splits_kernel adds up
# table tiles per program (each weight chunk read once for all of them) on large batches of few rows per slot;
# measured (docs/experiments/compare_group_h100.txt): 0.60-0.92 of one tile per program at 1024 rows over 1 or 8 slots,
# slower on fewer rows (too few programs) or more slots (a pass per slot among a program's tiles)
GROUP, GROUP_MIN_ROWS, GROUP_MIN_SLOT_ROWS = 4, 1024, 128
# each program sums its splits from 128 row programs and 256 output tiles (timed: docs/results/h100x1/README.md)
FUSE_MIN_PROGRAMS, FUSE_MIN_TILES = 128, 256


@triton.jit
def _shrink_rows(
    x,
    w,
    out,
    rows,
    row_mask,
    slot,
    n_valid,
    n_tile,
    split,
    K,
    k_split,
    x_stride,
    w_stride_l,
    w_stride_n,
    out_stride_split,
    out_stride_row,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    FUSED: tl.constexpr,
):
    """Column tile ``n_tile`` for the ``BLOCK_M`` rows (masked) of one slot: split ``split``'s float32 partial,
    or with ``FUSED`` all of K, each split's sum added to the total as it ends (``_sum_splits_kernel``'s
    order), the total rounded to ``out``'s type."""
    offs_n = n_tile * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < n_valid
    k_start = split * k_split
    k_end = K if FUSED else tl.minimum(k_start + k_split, K)
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = x + rows[:, None] * x_stride + k_start + offs_k[None, :]
    w_ptrs = w + slot.to(tl.int64) * w_stride_l + offs_n[None, :].to(tl.int64) * w_stride_n + k_start + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    total = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(k_start, k_end, BLOCK_K):
        k_mask = offs_k < K - k
        xs = tl.load(x_ptrs, mask=row_mask[:, None] & k_mask[None, :], other=0.0)
        ws = tl.load(w_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
        acc += tl.dot(xs, ws)
        if FUSED:  # a split ends: its sum joins the total (the first is the total), the next starts from zero
            split_end = ((k + BLOCK_K) % k_split == 0) | (k + BLOCK_K >= K)
            total = tl.where(split_end, tl.where(k < k_split, acc, total + acc), total)
            acc = tl.where(split_end, 0.0, acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    out_ptrs = out + split * out_stride_split + rows[:, None] * out_stride_row + offs_n[None, :]
    tl.store(out_ptrs, (total if FUSED else acc).to(out.dtype.element_ty), mask=row_mask[:, None] & n_mask[None, :])


@triton.jit
def _shrink_kernel(
    x,
    w,
    out,
    seg_lens,
    seg_indptr,
    weight_indices,
    lora_ranks,
    permutation,
    tiles,
    num_segments,
    K,
    k_split,
    n_tiles,
    num_tiles,
    stack_num,
    x_stride,
    w_stride_l,
    w_stride_n,
    out_stride_split,
    out_stride_row,
    SORTED: tl.constexpr,
    TABLE: tl.constexpr,
    SEGMENTS: tl.constexpr,
    GROUP: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    FUSED: tl.constexpr,
):
    splits = 1 if FUSED else tl.cdiv(K, k_split)  # launched per row tile and column tile
    if TABLE:  # tile-major on axis 0 (see the launch)
        per_tile = n_tiles * splits
        tile, work = tl.program_id(0) // per_tile, tl.program_id(0) % per_tile
    else:
        tile, work = tl.program_id(0), tl.program_id(2)
    n_tile = work % n_tiles
    split = work // n_tiles
    if GROUP > 1:  # table tiles tile*GROUP onwards: one pass per slot among them, each weight chunk read once
        first = tile * GROUP
        rows, row_mask, slots = table_block(tiles, permutation, num_tiles, first, BLOCK_S, GROUP)
        # the group's row counts, slots and ranks, loaded before the loop (not unrolled: a third of the compile
        # time, docs/experiments/compile_group_cpu.txt); each pass picks its tile's from registers
        g_ids = tl.arange(0, GROUP)
        in_table = first + g_ids < num_tiles
        lives = tl.load(tiles + (first + g_ids) * 3 + 1, mask=in_table, other=0)
        group_slots = tl.load(tiles + (first + g_ids) * 3 + 2, mask=in_table, other=-1)
        n_valids = stack_num * tl.load(lora_ranks + group_slots, mask=lives > 0, other=0)
        previous = -1
        for g in range(GROUP):
            live = tl.sum(tl.where(g_ids == g, lives, 0), 0)
            slot = tl.sum(tl.where(g_ids == g, group_slots, 0), 0)
            n_valid = tl.sum(tl.where(g_ids == g, n_valids, 0), 0)
            if (live > 0) & (slot != previous) & (n_tile * BLOCK_N < n_valid):  # a slot's tiles are adjacent
                _shrink_rows(
                    x,
                    w,
                    out,
                    rows,
                    row_mask & (slots == slot),
                    slot,
                    n_valid,
                    n_tile,
                    split,
                    K,
                    k_split,
                    x_stride,
                    w_stride_l,
                    w_stride_n,
                    out_stride_split,
                    out_stride_row,
                    GROUP * BLOCK_S,
                    BLOCK_N,
                    BLOCK_K,
                    FUSED,
                )
            previous = slot
    else:
        # every load of the prologue is issued before the exit, so that their latencies overlap
        slot, rows, row_mask, rows_left = program_rows(
            seg_lens,
            seg_indptr,
            weight_indices,
            permutation,
            tiles,
            num_segments,
            tile,
            BLOCK_S,
            SEGMENTS,
            SORTED,
            TABLE,
        )
        n_valid = stack_num * tl.load(lora_ranks + slot)  # slices are rank-packed
        if rows_left <= 0 or n_tile * BLOCK_N >= n_valid:
            return  # also the rank-0 exit: nothing of such a row is in the contract
        _shrink_rows(
            x,
            w,
            out,
            rows,
            row_mask,
            slot,
            n_valid,
            n_tile,
            split,
            K,
            k_split,
            x_stride,
            w_stride_l,
            w_stride_n,
            out_stride_split,
            out_stride_row,
            BLOCK_S,
            BLOCK_N,
            BLOCK_K,
            FUSED,
        )


@triton.jit
def _sum_splits_kernel(
    partials, y, seg_indptr, num_segments, N, splits, p_stride_split, SPLITS: tl.constexpr, BLOCK: tl.constexpr
):
    """``y = partials[0] + partials[1] + ...`` (``splits`` of them, added left to right, as a fused shrink
    program adds them) elementwise over the live rows, rounded once (y, each split contiguous).

    The live rows are ``[0, seg_indptr[num_segments])`` in both layouts: rows past them are never written.
    The loop is unrolled to ``SPLITS`` (``splits`` rounded up to a power of two), so that every load is
    issued before the first add waits on one; splits past ``splits`` leave the total as it is.
    """
    numel = tl.load(seg_indptr + num_segments).to(tl.int64) * N
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < numel
    total = tl.load(partials + offs, mask=live, other=0.0)
    for s in tl.static_range(1, SPLITS):
        part = tl.load(partials + tl.full((), s, tl.int64) * p_stride_split + offs, mask=live & (s < splits), other=0.0)
        total = tl.where(s < splits, total + part, total)
    tl.store(y + offs, total.to(y.dtype.element_ty), mask=live)


# _shrink_kernel's launch options, here for benchmarks/tune.py (Triton's defaults; 8 warps timed slower, ninth session).
# A batch of at least STAGES_MIN_ROWS rows with at most STAGES_MAX_N columns (rank-16 prefill) keeps one more load in
# flight: timed 3-5% faster there (both layouts), and slower at 2048 rows or at wider N (benchmarks/README.md).
# Either gives a row the same bits (the K loop runs in the same order); the suite's grouped variant takes
# STAGES_LONG on every batch it applies to (lora_verify.layouts.GROUPING).
NUM_WARPS, NUM_STAGES = 4, 3
STAGES_LONG, STAGES_MIN_ROWS, STAGES_MAX_N = 4, 4096, 16
BLOCK_N_MAX = 64  # the widest column tile (16 and 32 timed no faster where sglang wins)
# K longer than LONG_SPLIT_K is split every K_BLOCKS_PER_LONG_SPLIT blocks: half the partials, timed 1-7% faster on
# the 70B layer's shrinks and down_proj's (H200, docs/experiments/tune_shrink_splits_h200.md); a function of K alone
LONG_SPLIT_K, K_BLOCKS_PER_LONG_SPLIT = 4096, 8


def num_stages(num_rows: int, N: int) -> int:
    """The launch's ``num_stages`` for ``num_rows`` rows of ``N`` columns (host-side numbers: no sync)."""
    return STAGES_LONG if num_rows >= STAGES_MIN_ROWS and N <= STAGES_MAX_N else NUM_STAGES


def shrink_blocks(K: int, N: int) -> tuple:
    """``(BLOCK_N, BLOCK_K, K per split)``: functions of the weights' shape alone, never of the batch (K per split of
    K alone: a row's sum order never depends on its batch)."""
    block_n = max(16, min(BLOCK_N_MAX, triton.next_power_of_2(N)))
    if K <= 256:  # small K (the interpreter's test sizes): 64-wide splits, so that several get tested
        return block_n, 32, 64
    return block_n, BLOCK_K_LONG, BLOCK_K_LONG * (K_BLOCKS_PER_SPLIT if K <= LONG_SPLIT_K else K_BLOCKS_PER_LONG_SPLIT)


def tiles_per_program(batch_info, num_rows: int) -> int:
    """``GROUP`` when the batch has a tile table, at least ``GROUP_MIN_ROWS`` rows and ``GROUP_MIN_SLOT_ROWS``
    per segment on average (host-side numbers: no sync), else 1."""
    segments = max(batch_info.num_segments, 1)
    large = num_rows >= GROUP_MIN_ROWS and num_rows >= GROUP_MIN_SLOT_ROWS * segments
    return GROUP if tiles_of(batch_info) is not None and large else 1


def sums_in_program(row_programs: int, out_tiles: int, splits: int) -> bool:
    """Whether each program sums all of K's splits itself: with one split, or at least ``FUSE_MIN_PROGRAMS``
    row programs and ``FUSE_MIN_TILES`` output tiles (host-side numbers: no sync; either way a row gets the
    same bits)."""
    return splits == 1 or (row_programs >= FUSE_MIN_PROGRAMS and out_tiles >= FUSE_MIN_TILES)


@entry_point()
def sgemm_lora_a_fwd(x: torch.Tensor, weights: torch.Tensor, batch_info, stack_num: int = 1) -> torch.Tensor:
    """x (S, K), weights (L, stack_num*R, K) -> y (S, stack_num*R); cells past stack_num*r are undefined."""
    check(x, weights, batch_info, stack_num=stack_num)
    S, K = x.shape
    N = weights.shape[1]
    y = torch.empty((S, N), dtype=x.dtype, device=x.device)
    if S == 0 or batch_info.num_segments == 0:
        return y
    block_n, block_k, k_split = shrink_blocks(K, N)
    splits, n_tiles = triton.cdiv(K, k_split), triton.cdiv(N, block_n)
    common, layout = launch_common(batch_info)
    (tiles, segments_axis), segments = tile_grid(batch_info, S)
    group = tiles_per_program(batch_info, S)
    table = tiles_of(batch_info) is not None
    fused = sums_in_program(triton.cdiv(tiles, group) * segments_axis, tiles * segments_axis * n_tiles, splits)
    programs = 1 if fused else splits  # per row tile and column tile
    out = y if fused else torch.empty((splits, S, N), dtype=torch.float32, device=x.device)
    # with a tile table, tile-major on one axis: its idle tiles (at its end) run last; measured faster at
    # 64 tokens over 64 adapters than the table's tiles side by side (docs/experiments/compare_table_order_h100.txt)
    grid = (
        (triton.cdiv(tiles, group) * n_tiles * programs, 1, 1) if table else (tiles, segments_axis, n_tiles * programs)
    )
    _shrink_kernel[grid](
        x,
        weights,
        out,
        *common,
        K,
        k_split,
        n_tiles,
        tiles,
        stack_num,
        x.stride(0),
        weights.stride(0),
        weights.stride(1),
        0 if fused else out.stride(0),
        out.stride(-2),
        **layout,
        SEGMENTS=segments,
        GROUP=group,
        BLOCK_S=BLOCK_S,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        FUSED=fused,
        num_warps=NUM_WARPS,
        num_stages=num_stages(S, N),
    )
    if fused:
        return y
    splits_p2 = triton.next_power_of_2(splits)
    block = max(SUM_ELEMENTS // splits_p2, 16)
    _sum_splits_kernel[(triton.cdiv(S * N, block),)](
        out,
        y,
        batch_info.seg_indptr,
        batch_info.num_segments,
        N,
        splits,
        out.stride(0),
        SPLITS=splits_p2,
        BLOCK=block,
    )
    return y
