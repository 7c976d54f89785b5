"""Triton kernels for the four segmented LoRA matmuls, under sglang's entry-point names."""

from . import validate  # the module: validate.validate(...), validate.debug(...)
from .batch_info import LoRABatchInfo, per_sequence
from .expand import gate_up_lora_b_fwd, qkv_lora_b_fwd, sgemm_lora_b_fwd
from .graph import GraphBatchBuffers, GraphRunner
from .routing import route, sort_by_adapter
from .shrink import sgemm_lora_a_fwd
from .validate import LoRAInputError, LoRATypeError, debug

__all__ = [
    "LoRABatchInfo",
    "per_sequence",
    "route",
    "sort_by_adapter",
    "sgemm_lora_a_fwd",
    "sgemm_lora_b_fwd",
    "qkv_lora_b_fwd",
    "gate_up_lora_b_fwd",
    "GraphBatchBuffers",
    "GraphRunner",
    "validate",
    "debug",
    "LoRAInputError",
    "LoRATypeError",
]
