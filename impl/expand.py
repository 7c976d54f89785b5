"""The three expand operations, one kernel: ``out[t, slice j] += s[a] * x[t, j*r:(j+1)*r] @ W[a, slice j, :r].T``.

Plain expand is one slice of width N; gate/up is two slices of ``output_dim``;
qkv reads its slice boundaries from ``output_offset`` (SPEC.md, operations 2-4).
"""

import torch
import triton
import triton.language as tl

from .segments import BLOCK_S, launch_common, program_rows, tile_grid
from .validate import check, entry_point

NUM_WARPS = 4
W_BLOCK_ELEMENTS = 8192  # a weight block of BLOCK_K x BLOCK_N: 128 columns up to rank 64, fewer past it
NUM_STAGES = 3  # loads of a program's next column tiles in flight while one is computed
# column tiles per program double (up to 8) while at least this many programs remain (about 3 per SM of an
# H100); measured (docs/experiments/compare_expand_columns_h100.txt): 0.54-0.8 of one tile per program at rank 64
MIN_PROGRAMS, MAX_COLUMN_TILES = 384, 8
VECTOR = tl.constexpr(8)  # output elements per vector access, 16 bytes of bfloat16 (float32 needs 4 of them)


@triton.jit
def _expand_kernel(
    x,
    w,
    out,
    output_offset,
    seg_lens,
    seg_indptr,
    weight_indices,
    lora_ranks,
    permutation,
    tiles,
    num_segments,
    scalings,
    slice_width,
    groups_per_slice,
    group_size,
    x_stride,
    w_stride_l,
    w_stride_n,
    out_stride,
    SORTED: tl.constexpr,
    TABLE: tl.constexpr,
    SEGMENTS: tl.constexpr,
    OFFSETS_IN_TENSOR: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    STAGES: tl.constexpr,
):
    """One row tile times ``group_size`` column tiles of slice ``j`` from ``n_first`` (fewer at the slice's end).

    The whole rank is one block (``BLOCK_K >= R``): x is read once, then each column tile is one dot.
    """
    tile = tl.program_id(0)
    # every load of the prologue is issued before the first exit, so that their latencies overlap
    slot, rows, row_mask, rows_left = program_rows(
        seg_lens, seg_indptr, weight_indices, permutation, tiles, num_segments, tile, BLOCK_S, SEGMENTS, SORTED, TABLE
    )
    j = tl.program_id(2) // groups_per_slice  # the slice
    n_first = tl.program_id(2) % groups_per_slice * group_size
    rank = tl.load(lora_ranks + slot)
    if OFFSETS_IN_TENSOR:
        n_start = tl.load(output_offset + j)
        n_width = tl.load(output_offset + j + 1) - n_start
    else:
        n_start = j * slice_width
        n_width = slice_width
    if rank == 0 or rows_left <= 0:
        return  # rank-0 rows keep base bit for bit
    if n_first * BLOCK_N >= n_width:
        return
    offs_k = tl.arange(0, BLOCK_K)
    k_mask = offs_k < rank
    x_ptrs = x + rows[:, None] * x_stride + j * rank + offs_k[None, :]  # rank-packed slice
    xs = tl.load(x_ptrs, mask=row_mask[:, None] & k_mask[None, :], other=0.0)
    scaling = tl.load(scalings + slot)
    w_slot = w + slot.to(tl.int64) * w_stride_l
    n_end = tl.minimum(n_first + group_size, tl.cdiv(n_width, BLOCK_N))
    if not OFFSETS_IN_TENSOR:  # j * slice_width: the compiler knows the columns' alignment from slice_width's
        _columns(xs, scaling, w_slot, out, rows, row_mask, n_start, n_width, n_first, n_end, offs_k, k_mask,
                 w_stride_n, out_stride, BLOCK_N, EVEN_K, STAGES)
    elif (n_start | n_width) % VECTOR == 0:  # a slice on vector boundaries (every real model's q, k, v): as
        # multiples of VECTOR the compiler sees them aligned and loads and stores the output in vectors (offsets
        # read from a tensor: single elements otherwise)
        _columns(xs, scaling, w_slot, out, rows, row_mask, n_start // VECTOR * VECTOR, n_width // VECTOR * VECTOR,
                 n_first, n_end, offs_k, k_mask, w_stride_n, out_stride, BLOCK_N, EVEN_K, STAGES)
    else:  # one tile at a time: a pipeline's buffers here would add to the vector loop's (no real shape comes here)
        _columns(xs, scaling, w_slot, out, rows, row_mask, n_start, n_width, n_first, n_end, offs_k, k_mask,
                 w_stride_n, out_stride, BLOCK_N, EVEN_K, 1)


@triton.jit
def _columns(xs, scaling, w_slot, out, rows, row_mask, n_start, n_width, n_first, n_end, offs_k, k_mask, w_stride_n,
             out_stride, BLOCK_N: tl.constexpr, EVEN_K: tl.constexpr, STAGES: tl.constexpr):
    """Column tiles ``n_first`` to ``n_end`` of the slice at ``n_start``: ``out += scaling * xs @ W[cols].T``."""
    for n_tile in tl.range(n_first, n_end, num_stages=STAGES):
        offs_n = n_tile * BLOCK_N + tl.arange(0, BLOCK_N)
        n_mask = offs_n < n_width
        w_ptrs = w_slot + (n_start + offs_n[None, :]).to(tl.int64) * w_stride_n + offs_k[:, None]
        if EVEN_K:  # columns up to R are all in memory: load them whole (a run-time rank mask would split
            # the load into single elements), then zero those past the rank
            ws = tl.where(k_mask[:, None], tl.load(w_ptrs, mask=n_mask[None, :], other=0.0), 0.0)
        else:
            ws = tl.load(w_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
        acc = tl.dot(xs, ws)
        out_ptrs = out + rows[:, None] * out_stride + n_start + offs_n[None, :]
        out_mask = row_mask[:, None] & n_mask[None, :]
        base = tl.load(out_ptrs, mask=out_mask, other=0.0)
        result = base.to(tl.float32) + acc * scaling
        tl.store(out_ptrs, result.to(out.dtype.element_ty), mask=out_mask)

def expand_blocks(R: int, wide: bool = False) -> tuple:
    """``(BLOCK_N, BLOCK_K)``: the whole rank in one block; functions of the weights' shape alone. The wide launch
    (``wide``) widens ``BLOCK_N`` to ``WIDE_BLOCK_N`` while its weight block stays within ``WIDE_W_BLOCK_ELEMENTS``:
    a row's output is the same dot over the rank whatever the column tile."""
    block_k = max(16, triton.next_power_of_2(R))
    block_n = max(16, min(128, W_BLOCK_ELEMENTS // block_k))
    if wide and WIDE_BLOCK_N * block_k <= WIDE_W_BLOCK_ELEMENTS:
        block_n = max(block_n, WIDE_BLOCK_N)
    return block_n, block_k


def launch_options(R: int, wide: bool, group: int) -> dict:
    """``_expand_kernel``'s blocks, pipeline depth and warps for rank ``R`` on the wide or the narrow launch, with
    ``group`` column tiles a program (host-side numbers: no sync)."""
    block_n, block_k = expand_blocks(R, wide)
    stages = (WIDE_STAGES if wide else NUM_STAGES) if group > 1 else 1
    return dict(BLOCK_S=WIDE_ROWS if wide else BLOCK_S, BLOCK_N=block_n, BLOCK_K=block_k, EVEN_K=R == block_k,
                STAGES=stages, num_warps=WIDE_WARPS if wide else NUM_WARPS)


def column_tiles_per_program(row_programs: int, n_tiles: int, min_programs: int) -> int:
    """Column tiles each program serves, one after another (the loads of the next in flight meanwhile).

    Depends on the grid's size only, never on a row's data: a row's arithmetic is the same whatever it is.
    """
    group = 1
    while 2 * group <= min(MAX_COLUMN_TILES, n_tiles) and row_programs * n_tiles // (2 * group) >= min_programs:
        group *= 2
    return group


# a sorted batch of at least WIDE_MIN_ROWS rows and WIDE_MIN_SEGMENT_ROWS a segment on average, with weights of rank
# WIDE_MIN_RANK or more, is served WIDE_ROWS rows a program (WIDE_WARPS warps), its segments looked up in seg_indptr
# (the tile table's tiles are BLOCK_S rows): each weight tile is then read once per WIDE_ROWS rows instead of once per
# BLOCK_S. Its column tiles are at least WIDE_BLOCK_N wide (rank 128: 128, not 64), grouped while WIDE_MIN_PROGRAMS
# programs remain, WIDE_STAGES loads in flight. qkv goes wide from rank WIDE_QKV_MIN_RANK only (slower wide at 64).
# Timed on an H100 (docs/experiments/tune_expand_wide_h100.md, tune_expand_wide_columns_h100.md). A batch of fewer
# rows, down to WIDE_ROWS, goes wide too when its output has WIDE_MIN_COLUMN_TILES wide column tiles or more (gate/up's
# 28672 columns: 224; expand's 4096: 32, too few programs): 8B gate/up 64/1/128 0.66 of the time, 64/1/64 0.77, expand
# 64/1/64 1.18 (docs/results/h100x1/qkv_vectors/, h30)
WIDE_ROWS, WIDE_MIN_ROWS, WIDE_MIN_SEGMENT_ROWS, WIDE_MIN_RANK, WIDE_WARPS = 64, 256, 64, 64, 8
WIDE_MIN_PROGRAMS, WIDE_STAGES, WIDE_BLOCK_N, WIDE_QKV_MIN_RANK, WIDE_MIN_COLUMN_TILES = 264, 2, 128, 128, 128
# the widened weight block's limit (128 columns up to rank 128): float32 weights of rank 129-256 at 128 columns need
# 352-384 KB of shared memory, past sm_90's 227 KB a program (OutOfResources on the GPU; tests/test_compile.py)
WIDE_W_BLOCK_ELEMENTS = 16384


def rows_per_program(batch_info, num_rows: int, R: int, n_out: int, qkv: bool = False) -> int:
    """``WIDE_ROWS`` for a sorted batch of at least ``WIDE_MIN_ROWS`` rows (``WIDE_ROWS`` where its ``n_out`` columns
    make ``WIDE_MIN_COLUMN_TILES`` wide tiles) and ``WIDE_MIN_SEGMENT_ROWS`` a segment on average, weights of rank
    ``R >= WIDE_MIN_RANK`` (``WIDE_QKV_MIN_RANK`` for ``qkv``; host-side numbers: no sync), else ``BLOCK_S``. A row's
    output is one dot over the whole rank either way: the suite checks that the bits are the same (sorted and
    grouped == unsorted)."""
    segments = max(batch_info.num_segments, 1)
    min_rank = max(WIDE_MIN_RANK, WIDE_QKV_MIN_RANK) if qkv else WIDE_MIN_RANK
    wide_columns = triton.cdiv(n_out, expand_blocks(R, wide=True)[0]) >= WIDE_MIN_COLUMN_TILES
    min_rows = min(WIDE_MIN_ROWS, WIDE_ROWS) if wide_columns else WIDE_MIN_ROWS
    long = num_rows >= min_rows and num_rows >= WIDE_MIN_SEGMENT_ROWS * segments and R >= min_rank
    return WIDE_ROWS if batch_info.permutation is not None and long else BLOCK_S


def _expand(x, weights, batch_info, base_output, n_out, num_slices, slice_width, output_offset=None):
    S = x.shape[0]
    if base_output is None:
        base_output = torch.zeros((S, n_out), dtype=x.dtype, device=x.device)
    if S == 0 or batch_info.num_segments == 0:
        return base_output
    R = weights.shape[-1]
    block_s = rows_per_program(batch_info, S, R, n_out, qkv=output_offset is not None)
    wide = block_s != BLOCK_S
    block_n = expand_blocks(R, wide)[0]
    n_tiles_per_slice = triton.cdiv(slice_width, block_n)
    common, layout = launch_common(batch_info, table=not wide)
    tiles, segments = tile_grid(batch_info, S, block_s, table=not wide)
    # the live column tiles: n_out wide in all (qkv's narrower k, v slices included)
    group = column_tiles_per_program(tiles[0] * tiles[1], triton.cdiv(n_out, block_n),
                                     WIDE_MIN_PROGRAMS if wide else MIN_PROGRAMS)
    groups_per_slice = triton.cdiv(n_tiles_per_slice, group)
    options = launch_options(R, wide, group)
    _expand_kernel[(*tiles, num_slices * groups_per_slice)](
        x,
        weights,
        base_output,
        output_offset if output_offset is not None else batch_info.seg_lens,
        *common,
        batch_info.scalings,
        slice_width,
        groups_per_slice,
        group,
        x.stride(0),
        weights.stride(0),
        weights.stride(1),
        base_output.stride(0),
        **layout,
        SEGMENTS=segments,
        OFFSETS_IN_TENSOR=output_offset is not None,
        **options,
    )
    return base_output


@entry_point(slices=1)
def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    """x (S, R), weights (L, N, R); base_output (S, N) updated in place and returned."""
    check(x, weights, batch_info, slices=1, base_output=base_output)
    N = weights.shape[1]
    return _expand(x, weights, batch_info, base_output, N, 1, N)


@entry_point(slices=3)
def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    """x (S, 3R), qkv_lora_b (L, output_offset[-1], R); slice j is columns output_offset[j:j+2]."""
    check(
        x,
        qkv_lora_b,
        batch_info,
        weights_name="qkv_lora_b",
        slices=3,
        base_output=base_output,
        output_offset=output_offset,
        max_qkv_out_dim=max_qkv_out_dim,
    )
    n_out = qkv_lora_b.shape[1]
    return _expand(x, qkv_lora_b, batch_info, base_output, n_out, 3, max_qkv_out_dim, output_offset)


@entry_point(slices=2)
def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    """x (S, 2R), gate_up_lora_b (L, 2*output_dim, R); two slices of width output_dim."""
    check(
        x,
        gate_up_lora_b,
        batch_info,
        weights_name="gate_up_lora_b",
        slices=2,
        base_output=base_output,
        output_dim=output_dim,
    )
    return _expand(x, gate_up_lora_b, batch_info, base_output, 2 * output_dim, 2, output_dim)
