"""The error bound a correct kernel meets, derived from floating-point rounding.

For one output cell, let ``ref`` be the exact value (the float64 reference)
and ``mag`` the same expression over absolute values,
``|base| + |s| * sum_k |x_k| |w_k|`` (for shrink, no base and s = 1).
A correct kernel:

1. forms each product of two bf16 (or fp16) operands exactly in fp32
   (8 + 8 significant bits fit in fp32's 24). fp32 operands may be read as
   tf32 by the tensor cores (Triton's default dot precision): cut to 11
   significant bits, the low 13 bits dropped rather than rounded, so each
   operand is off by less than ``v = 2^-10`` relative (2^-11 if rounded),
   and a product by at most ``(2v + v^2) |x_k w_k| <= 3v |x_k w_k|``;
2. adds ``n`` of them in fp32 in any order; each addition is off by at most
   one fp32 ulp, 2^-23 relative (round-to-nearest gives half that; one ulp
   also covers truncating tensor-core accumulators);
3. for an expand, scales by ``s`` and adds ``base`` in fp32: two more such
   operations (one if fused);
4. rounds the fp32 value once to the output dtype: relative error ``u``
   (2^-8 for bf16), plus half the output's subnormal spacing near zero.

Steps 1-3 give at most ``(3v + (n + 2) * 2^-23) * mag`` (first order; ``3v`` is
applied to all of ``mag``, |base| included: looser, never tighter; the float64
reference is off by ``n * 2^-53 * mag``, covered too). Products or sums that
fall below fp32's normal range (2^-126) may also be flushed or rounded:
at most 2^-126 per operation, ``(n + 3) * 2^-126 * (1 + |s|)`` in all. Step 4
multiplies the fp32 error by ``(1 + u)`` and adds ``u * |ref|``. So the bound
scales with the data: cancellation (``ref`` near 0, ``mag`` large) and large
values are judged by what rounding allows for them, not by a fixed atol.

**Rounding models** (``lora_verify.profiles``). SPEC.md's expand adds ``base`` in fp32 and rounds once.
sglang's and vLLM's expands first round the LoRA term ``L = s * (x @ W)`` (fp32, off by at most the
``fp32_err`` above) to the output dtype, then add ``base`` and round again ("lora_first"). That first
rounding changes ``L`` by at most ``u |L| + h`` (``h`` half the output's subnormal spacing), and
``|L| <= lora_mag + fp32_err`` with ``lora_mag = |s| * sum_k |x_k| |w_k|`` (``mag`` less ``|base|``). The
change enters the fp32 sum before step 4, so the bound gains ``(1 + u) * (u * (lora_mag + fp32_err) + h)``
for each such rounding, and nothing more: a kernel off by more than its declared rounding still fails.
A shrink has no base: rounding the LoRA term first is its only rounding, and the model adds nothing.

"folded_scaling" (vLLM): the scaling is folded into the expand's weights beforehand, as vLLM does when
it loads an adapter (``B' = s * B`` computed in fp32 and rounded to the weights' dtype), and the kernel
then rounds the LoRA term first, as "lora_first". Each folded weight is off by at most
``|B'_k - s B_k| <= 2^-24 |s B_k| + 2^-150`` (the fp32 product, its subnormal spacing included) plus
``u |fl32(s B_k)| + h`` (the rounding to the weights' dtype), so by at most ``(u + 2^-23) |s B_k| + h + 2^-149``
(``u * 2^-24 <= 2^-24`` and ``(1 + u) 2^-150 <= 2^-149``). Over the products that is an operand error
``W = (u + 2^-23) * lora_mag + (h + 2^-149) * xsum``, with ``xsum = sum_k |x_k|`` over the cell's rank: the
second term, where a subnormal ``s B_k`` loses its relative precision, is not a multiple of ``lora_mag``.
Steps 1-3 then run on ``x`` and ``B'``, whose magnitude ``sum_k |x_k| |B'_k|`` is at most ``lora_mag + W``:
``fp32_err`` is taken over ``mag + W``, the LoRA term in fp32 is off by at most ``W + fp32_err``, and its
first rounding by ``u (lora_mag + W + fp32_err) + h``. So the bound gains ``(1 + u) W`` beside the fp32
error, and the "lora_first" term is taken with ``lora_mag + W``.
"""

import dataclasses
from typing import Optional

import torch

UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11, torch.float32: 2.0**-24}
INPUT_ROUNDOFF = {torch.bfloat16: 0.0, torch.float16: 0.0, torch.float32: 2.0**-10}  # tf32 operands, truncated
HALF_SUBNORMAL_SPACING = {torch.bfloat16: 2.0**-134, torch.float16: 2.0**-25, torch.float32: 2.0**-150}
FP32_STEP = 2.0**-23
FP32_TINY = 2.0**-126
# rounding model -> roundings of the LoRA term before the last
EXTRA_ROUNDINGS = {"once": 0, "lora_first": 1, "folded_scaling": 1}
FOLDED_SCALING = ("folded_scaling",)  # models whose expand weights are s * B, rounded, before the products


def error_bound(
    ref: torch.Tensor,
    mag: torch.Tensor,
    n_terms: int,
    max_abs_scaling: float,
    dtype,
    lora_mag: Optional[torch.Tensor] = None,
    extra_roundings: int = 0,
    operand_err=0.0,
) -> torch.Tensor:
    """Largest ``|kernel - ref|`` that rounding allows per cell (see the module docstring).

    ``extra_roundings`` of the LoRA term (magnitude ``lora_mag``) before the last rounding add their term;
    ``operand_err`` is ``W`` of a model that rounds an operand of the products ("folded_scaling").
    """
    u, h = UNIT_ROUNDOFF[dtype], HALF_SUBNORMAL_SPACING[dtype]
    products = 3 * INPUT_ROUNDOFF[dtype] + (n_terms + 2) * FP32_STEP
    fp32_err = products * (mag + operand_err) + (n_terms + 3) * FP32_TINY * (1 + max_abs_scaling)
    bound = u * ref.abs() + (1 + u) * (fp32_err + operand_err) + h
    for _ in range(extra_roundings):
        bound = bound + (1 + u) * (u * (lora_mag + operand_err + fp32_err) + h)
    return bound


def folded_scaling_err(case, lora_mag) -> torch.Tensor:
    """``W`` of "folded_scaling" for an expand case (see the module docstring)."""
    op, dtype = case.op, case.x.dtype
    u, h = UNIT_ROUNDOFF[dtype], HALF_SUBNORMAL_SPACING[dtype]
    x_abs = torch.nan_to_num(case.x.abs(), nan=0.0)
    unit = dataclasses.replace(case.batch_info, scalings=torch.ones_like(case.batch_info.scalings))
    xsum, _ = op.call(op.reference, x_abs, torch.ones_like(case.w), unit, case.batch.dims, None, case.offsets)
    return (u + FP32_STEP) * lora_mag + (h + 2.0**-149) * xsum.to(lora_mag.device)


def case_bound(case, ref, mag, base_before, rounding: str = "once") -> torch.Tensor:
    """The bound of one checked case (a ``lora_verify.inputs.Case``) under an implementation's rounding model."""
    op, batch = case.op, case.batch
    extra = EXTRA_ROUNDINGS[rounding] if op.in_place else 0
    lora_mag = None
    if extra:
        lora_mag = mag - base_before.abs().to(mag.device, torch.float64) if base_before is not None else mag
        lora_mag = lora_mag.clamp(min=0)
    operand_err = folded_scaling_err(case, lora_mag) if op.in_place and rounding in FOLDED_SCALING else 0.0
    max_scaling = float(case.batch_info.scalings.abs().max()) if case.batch_info.scalings.numel() else 0.0
    n_terms = op.n_terms(batch.dims, batch.max_rank)
    return error_bound(ref, mag, n_terms, max_scaling, case.x.dtype, lora_mag, extra, operand_err)


FP64_UNIT = 2.0**-53


def reference_agreement(mag: torch.Tensor, n_terms: int) -> torch.Tensor:
    """Largest difference of two float64 references of one cell that add the same products in other orders.

    Each product of two inputs is exact in float64 (bf16 and fp16 have 8 and 11 significant bits, fp32 24:
    at most 48 < 53). A sum of ``n`` of them in any order is off from the exact sum by at most
    ``gamma(n - 1) * sum |x_k w_k|``, ``gamma(m) = m u / (1 - m u)``, ``u = 2^-53``; an expand then scales by
    ``s`` and adds ``base``, one rounding each, so every reference is within ``gamma(n + 1) * mag`` of the
    exact value (``mag = |base| + |s| sum |x_k w_k|``, as for ``error_bound``) and two differ by at most twice
    that. Subnormal float64 results would add ``2^-1074`` per operation: none occur at the suite's scales.
    """
    m = n_terms + 1
    return 2 * (m * FP64_UNIT / (1 - m * FP64_UNIT)) * mag
