"""Pure-PyTorch reference for the four operations, written from SPEC.md line by line."""

from . import vectorised  # the same, vectorised on the inputs' device (real shapes on a GPU)
from .loops import gate_up_lora_b_fwd, qkv_lora_b_fwd, segments, sgemm_lora_a_fwd, sgemm_lora_b_fwd

__all__ = ["vectorised", "segments", "sgemm_lora_a_fwd", "sgemm_lora_b_fwd", "qkv_lora_b_fwd", "gate_up_lora_b_fwd"]
