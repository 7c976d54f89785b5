"""Triton kernels for the four segmented LoRA matmuls, under sglang's entry-point names."""

from . import validate  # the module: validate.validate(...), validate.debug(...)
from .batch_info import LoRABatchInfo, per_sequence
from .expand import gate_up_lora_b_fwd, qkv_lora_b_fwd, sgemm_lora_b_fwd
from .graph import GraphBatchBuffers, GraphRunner
from .routing import route, sort_by_adapter
from .shrink import sgemm_lora_a_fwd
from .validate import LoRAInputError, LoRATypeError, debug

# What these kernels claim (lora_verify.profiles): all of SPEC.md. A plain dict, so impl imports no test code.
PROFILE = {
    "name": "impl",
    "layouts": ("unsorted", "sorted"),
    "dtypes": ("bfloat16", "float16", "float32"),
    "strided_x": True,
    "deterministic": True,
    "batch_invariant": True,
    "graph_capture": True,
    "input_errors": True,
    "rounding": "once",
}

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
    "PROFILE",
]
