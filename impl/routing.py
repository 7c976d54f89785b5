"""Routing: the per-sequence layout turned into the sorted-by-adapter layout.

Runs on the device with no host synchronisation (no ``.item()``, no data-
dependent shapes), for any segment lengths, so that it can sit inside a
CUDA graph. Rows past the live token count (``seg_indptr[-1]``) get the
sentinel slot ``L``: they sort last and belong to no segment.
"""

import torch

from .batch_info import LoRABatchInfo


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


def sort_by_adapter(batch: LoRABatchInfo, num_tokens: int) -> LoRABatchInfo:
    """The sorted layout of a per-sequence batch of ``num_tokens`` rows (an upper bound)."""
    num_slots = batch.lora_ranks.shape[0]
    permutation, seg_lens, seg_indptr = route(batch.seg_indptr, batch.weight_indices, num_slots, num_tokens)
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
    )
