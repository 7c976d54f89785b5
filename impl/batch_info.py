"""The batch-info object shared by every kernel, under sglang's field names.

One object describes either layout: ``permutation is None`` means per-sequence
segments; otherwise segments are per adapter slot and rows are read through
``permutation`` (see SPEC.md, "The batch, in two layouts").
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import torch


@dataclass
class LoRABatchInfo:
    bs: int
    num_segments: int
    seg_lens: torch.Tensor  # (num_segments,) int32
    seg_indptr: torch.Tensor  # (num_segments + 1,) int32
    weight_indices: torch.Tensor  # (num_segments,) int32: slot of each segment
    lora_ranks: torch.Tensor  # (L,) int32: rank of each slot, 0 = no LoRA
    scalings: torch.Tensor  # (L,) float32
    max_len: int  # upper bound on max(seg_lens); sizes the grid
    permutation: Optional[torch.Tensor] = None  # (>= tokens,) int32, sorted layout only
    use_cuda_graph: bool = False
    # Not one of sglang's fields; optional. (programs, 3) int32, sorted layout only: each program's first
    # logical position, row count and slot, built once per batch by routing (routing.route) and read
    # by every kernel of the batch in place of a lookup in seg_indptr.
    tiles: Optional[torch.Tensor] = None

    @property
    def sorted(self) -> bool:
        return self.permutation is not None


def per_sequence(
    seg_lens: Sequence[int],
    weight_indices: Sequence[int],
    lora_ranks: Sequence[int],
    scalings: Sequence[float],
    device="cpu",
) -> LoRABatchInfo:
    """Builds a per-sequence batch from host lists (a convenience for callers and tests)."""
    i32 = dict(dtype=torch.int32, device=device)
    lens = torch.tensor(list(seg_lens), **i32)
    indptr = torch.zeros(len(seg_lens) + 1, **i32)
    indptr[1:] = torch.cumsum(lens, 0)
    return LoRABatchInfo(
        bs=len(seg_lens),
        num_segments=len(seg_lens),
        seg_lens=lens,
        seg_indptr=indptr,
        weight_indices=torch.tensor(list(weight_indices), **i32),
        lora_ranks=torch.tensor(list(lora_ranks), **i32),
        scalings=torch.tensor(list(scalings), dtype=torch.float32, device=device),
        max_len=max(seg_lens, default=0),
    )
