"""shrink: ``y[t, :stack_num*r] = x[t] @ W[a, :stack_num*r, :].T`` (SPEC.md, operation 1)."""

import torch
import triton
import triton.language as tl

from .segments import launch_common, row_tiles, segment_rows
from .validate import check

BLOCK_S = 16


@triton.jit
def _shrink_kernel(
    x,
    w,
    y,
    seg_lens,
    seg_indptr,
    weight_indices,
    lora_ranks,
    permutation,
    K,
    stack_num,
    x_stride,
    w_stride_l,
    w_stride_n,
    y_stride,
    SORTED: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    row_tile = tl.program_id(0)
    seg = tl.program_id(1)
    n_tile = tl.program_id(2)
    seg_len = tl.load(seg_lens + seg)
    slot = tl.load(weight_indices + seg)
    n_valid = stack_num * tl.load(lora_ranks + slot)  # slices are rank-packed
    if row_tile * BLOCK_S >= seg_len or n_tile * BLOCK_N >= n_valid:
        return  # also the rank-0 exit: nothing of such a row is in the contract
    rows, row_mask = segment_rows(seg_indptr, permutation, seg, seg_len, row_tile, BLOCK_S, SORTED)
    offs_n = n_tile * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < n_valid
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = x + rows[:, None] * x_stride + offs_k[None, :]
    w_ptrs = w + slot.to(tl.int64) * w_stride_l + offs_n[None, :].to(tl.int64) * w_stride_n + offs_k[:, None]
    acc = tl.zeros((BLOCK_S, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        k_mask = offs_k < K - k
        xs = tl.load(x_ptrs, mask=row_mask[:, None] & k_mask[None, :], other=0.0)
        ws = tl.load(w_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
        acc += tl.dot(xs, ws)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    y_ptrs = y + rows[:, None] * y_stride + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y.dtype.element_ty), mask=row_mask[:, None] & n_mask[None, :])


def sgemm_lora_a_fwd(x: torch.Tensor, weights: torch.Tensor, batch_info, stack_num: int = 1) -> torch.Tensor:
    """x (S, K), weights (L, stack_num*R, K) -> y (S, stack_num*R); cells past stack_num*r are undefined."""
    check("sgemm_lora_a_fwd", x, weights, batch_info, stack_num=stack_num)
    S, K = x.shape
    N = weights.shape[1]
    y = torch.empty((S, N), dtype=x.dtype, device=x.device)
    if S == 0 or batch_info.num_segments == 0:
        return y
    block_n = 16 if N <= 16 else 32
    block_k = 32 if K <= 256 else 64
    common, sorted_layout = launch_common(batch_info)
    grid = (row_tiles(batch_info, BLOCK_S), batch_info.num_segments, triton.cdiv(N, block_n))
    _shrink_kernel[grid](
        x,
        weights,
        y,
        *common,
        K,
        stack_num,
        x.stride(0),
        weights.stride(0),
        weights.stride(1),
        y.stride(0),
        SORTED=sorted_layout,
        BLOCK_S=BLOCK_S,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
    )
    return y
