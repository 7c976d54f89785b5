"""vLLM's Triton LoRA ops with ``VLLM_BATCH_INVARIANT=1``: ``--impl lora_verify.adapters.vllm_batch_invariant``.

The same kernels and translation as ``lora_verify.adapters.vllm``, loaded with vLLM's batch-invariant switch
on: its shrink splits K into 8 fixed fp32 partials (blocks of 256) that a second kernel sums in order, for
every token count, instead of atomics. So this one claims determinism and batch invariance.
"""

from lora_verify.adapters.vllm import VllmLoRA

_OPS = VllmLoRA(batch_invariant=True)
PROFILE = _OPS.profile
sgemm_lora_a_fwd = _OPS.sgemm_lora_a_fwd
sgemm_lora_b_fwd = _OPS.sgemm_lora_b_fwd
qkv_lora_b_fwd = _OPS.qkv_lora_b_fwd
gate_up_lora_b_fwd = _OPS.gate_up_lora_b_fwd
