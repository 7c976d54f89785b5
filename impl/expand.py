"""The three expand operations, one kernel: ``out[t, slice j] += s[a] * x[t, j*r:(j+1)*r] @ W[a, slice j, :r].T``.

Plain expand is one slice of width N; gate/up is two slices of ``output_dim``;
qkv reads its slice boundaries from ``output_offset`` (SPEC.md, operations 2-4).
"""

import torch
import triton
import triton.language as tl

from .segments import BLOCK_S, launch_common, program_rows, tile_grid
from .validate import check

BLOCK_N = 128
NUM_WARPS = 4
BLOCK_K_MAX = 64  # rank block: the whole rank up to 64


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
    n_tiles_per_slice,
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
):
    tile = tl.program_id(0)
    # every load of the prologue is issued before the first exit, so that their latencies overlap
    slot, rows, row_mask, rows_left = program_rows(
        seg_lens, seg_indptr, weight_indices, permutation, tiles, num_segments, tile, BLOCK_S, SEGMENTS, SORTED, TABLE
    )
    j = tl.program_id(2) // n_tiles_per_slice  # the slice
    n_tile = tl.program_id(2) % n_tiles_per_slice
    rank = tl.load(lora_ranks + slot)
    if OFFSETS_IN_TENSOR:
        n_start = tl.load(output_offset + j)
        n_width = tl.load(output_offset + j + 1) - n_start
    else:
        n_start = j * slice_width
        n_width = slice_width
    if rank == 0 or rows_left <= 0:
        return  # rank-0 rows keep base bit for bit
    if n_tile * BLOCK_N >= n_width:
        return
    offs_n = n_tile * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < n_width
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = x + rows[:, None] * x_stride + j * rank + offs_k[None, :]  # rank-packed slice
    w_ptrs = (
        w + slot.to(tl.int64) * w_stride_l + (n_start + offs_n[None, :]).to(tl.int64) * w_stride_n + offs_k[:, None]
    )
    acc = tl.zeros((BLOCK_S, BLOCK_N), dtype=tl.float32)
    for k in range(0, rank, BLOCK_K):
        k_mask = offs_k < rank - k
        xs = tl.load(x_ptrs, mask=row_mask[:, None] & k_mask[None, :], other=0.0)
        ws = tl.load(w_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
        acc += tl.dot(xs, ws)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    scaling = tl.load(scalings + slot)
    out_ptrs = out + rows[:, None] * out_stride + n_start + offs_n[None, :]
    out_mask = row_mask[:, None] & n_mask[None, :]
    base = tl.load(out_ptrs, mask=out_mask, other=0.0)
    result = base.to(tl.float32) + acc * scaling
    tl.store(out_ptrs, result.to(out.dtype.element_ty), mask=out_mask)


def _expand(x, weights, batch_info, base_output, n_out, num_slices, slice_width, output_offset=None):
    S = x.shape[0]
    if base_output is None:
        base_output = torch.zeros((S, n_out), dtype=x.dtype, device=x.device)
    if S == 0 or batch_info.num_segments == 0:
        return base_output
    R = weights.shape[-1]
    block_k = max(16, min(BLOCK_K_MAX, triton.next_power_of_2(R)))
    n_tiles_per_slice = triton.cdiv(slice_width, BLOCK_N)
    common, layout = launch_common(batch_info)
    tiles, segments = tile_grid(batch_info, S)
    _expand_kernel[(*tiles, num_slices * n_tiles_per_slice)](
        x,
        weights,
        base_output,
        output_offset if output_offset is not None else batch_info.seg_lens,
        *common,
        batch_info.scalings,
        slice_width,
        n_tiles_per_slice,
        x.stride(0),
        weights.stride(0),
        weights.stride(1),
        base_output.stride(0),
        **layout,
        SEGMENTS=segments,
        OFFSETS_IN_TENSOR=output_offset is not None,
        BLOCK_S=BLOCK_S,
        BLOCK_N=BLOCK_N,
        BLOCK_K=block_k,
        num_warps=NUM_WARPS,
    )
    return base_output


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    """x (S, R), weights (L, N, R); base_output (S, N) updated in place and returned."""
    check("sgemm_lora_b_fwd", x, weights, batch_info, base_output=base_output)
    N = weights.shape[1]
    return _expand(x, weights, batch_info, base_output, N, 1, N)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    """x (S, 3R), qkv_lora_b (L, output_offset[-1], R); slice j is columns output_offset[j:j+2]."""
    check(
        "qkv_lora_b_fwd",
        x,
        qkv_lora_b,
        batch_info,
        base_output=base_output,
        output_offset=output_offset,
        max_qkv_out_dim=max_qkv_out_dim,
    )
    n_out = qkv_lora_b.shape[1]
    return _expand(x, qkv_lora_b, batch_info, base_output, n_out, 3, max_qkv_out_dim, output_offset)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    """x (S, 2R), gate_up_lora_b (L, 2*output_dim, R); two slices of width output_dim."""
    check("gate_up_lora_b_fwd", x, gate_up_lora_b, batch_info, base_output=base_output, output_dim=output_dim)
    return _expand(x, gate_up_lora_b, batch_info, base_output, 2 * output_dim, 2, output_dim)
