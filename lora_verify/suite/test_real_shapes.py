"""Real model shapes on the GPU: each operation on a real layer's projection, up to 64 adapters of ranks 8-256,
decode batches of up to 1,024 tokens and prefill batches of up to 8,192 (``lora_verify.layers``), against the
float64 reference vectorised on the device (``reference/vectorised.py``), in both layouts.

Per batch: close to the reference within the implementation's bound (``lora_verify.bounds``) in each layout it
claims, and, where it claims both, the sorted layout bit for bit the unsorted one on every defined cell. The
profile's examples are shared out over the four operations (``gpu``: 250 each, 1,000 batches; one xdist worker
per operation). Marked ``gpu``: without CUDA the tier is skipped with that reason (the interpreter would take
hours per batch of these sizes).
"""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import impl
import reference
from lora_verify import regimes
from lora_verify.bounds import EXTRA_ROUNDINGS, error_bound
from lora_verify.layers import materialize, real_batches
from lora_verify.ops import OPS

pytestmark = pytest.mark.gpu
CLOSE, AGREE = "real: close to reference", "real: sorted == unsorted"  # the verdict table's rows
EXAMPLES = max(1, settings.default.max_examples // len(OPS))
CHUNK = 1024  # output rows compared at a time: float64 temporaries of 8,192 x 57,344 cells would take 4 GB each


def _call(fn, case, info, base):
    op = case.batch.info
    return op.call(fn, case.x, case.w, info, case.batch.dims, base, case.offsets)


def _reference(case):
    """The float64 value, its defined cells and the magnitude ``|base| + |s| |x| @ |W|.T``, on the device."""
    fn, info = getattr(reference.vectorised, case.batch.info.entry), case.batch_info
    ref, defined = _call(fn, case, info, case.base)
    abs_case = dataclasses.replace(case, x=torch.nan_to_num(case.x.abs()), w=torch.nan_to_num(case.w.abs()),
                                   base=None if case.base is None else case.base.abs())
    mag, _ = _call(fn, abs_case, dataclasses.replace(info, scalings=info.scalings.abs()), abs_case.base)
    return ref, defined, mag


def _worst(case, out, ref, defined, mag, rounding) -> tuple:
    """``(worst |error| / bound, token, column)`` over the defined cells, a chunk of rows at a time."""
    op, info = case.batch.info, case.batch_info
    extra = EXTRA_ROUNDINGS[rounding] if op.in_place else 0
    n_terms, s_max = op.n_terms(case.batch.dims, case.batch.max_rank), float(info.scalings.abs().max())
    worst = (0.0, 0, 0)
    for lo in range(0, out.shape[0], CHUNK):
        rows = slice(lo, lo + CHUNK)
        lora_mag = (mag[rows] - case.base[rows].abs().double()).clamp(min=0) if extra else None
        bound = error_bound(ref[rows], mag[rows], n_terms, s_max, case.x.dtype, lora_mag, extra)
        ratio = torch.nan_to_num((out[rows].double() - ref[rows]).abs_() / bound, nan=float("inf"))
        ratio = torch.where(defined[rows], ratio, 0.0)
        t, col = divmod(int(torch.argmax(ratio)), ratio.shape[1])
        if float(ratio[t, col]) > worst[0] or lo == 0:
            worst = (float(ratio[t, col]), lo + t, col)
    return worst


def _raw(t):
    return t.view({2: torch.int16, 4: torch.int32}[t.element_size()])


@pytest.mark.parametrize("op", OPS, ids=repr)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_real_layer(op, impl_module, profile, device, verdicts, data):
    batch = data.draw(real_batches(ops=(op.name,)), label="batch")
    verdicts.batches += 1
    case = materialize(batch, device)
    ref, defined, mag = _reference(case)
    infos = {"unsorted": case.batch_info, "sorted": impl.sort_by_adapter(case.batch_info, case.x.shape[0])}
    outputs = {}
    for layout in [layout for layout in infos if layout in profile.layouts]:
        with verdicts.check(op.name, layout, CLOSE) as v, regimes.counted(
            verdicts, f"real layers: {op.name} {layout}", impl_module
        ):
            base = None if case.base is None else case.base.clone()
            out = outputs[layout] = _call(getattr(impl_module, op.entry), case, infos[layout], base)
            v["ratio"], t, col = _worst(case, out, ref, defined, mag, profile.rounding)
            assert v["ratio"] <= 1, (
                f"{batch}: token {t}, column {col}: kernel {float(out[t, col])!r}, reference {float(ref[t, col])!r}"
            )
    if len(outputs) == 2:
        with verdicts.check(op.name, "both", AGREE):
            differ = (_raw(outputs["sorted"]) != _raw(outputs["unsorted"])) & defined
            assert not differ.any(), f"{batch}: layouts differ at (token, column) {differ.nonzero()[:8].tolist()}"
