"""``reference/vectorised.py`` computes what ``reference/loops.py`` does: the same defined cells, and values within
float64 rounding of each other (``lora_verify.bounds.reference_agreement``), on random batches in both layouts,
on the suite's device (the vectorised reference runs there; the loops on the CPU)."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from lora_verify import layouts
from lora_verify.bounds import reference_agreement
from lora_verify.inputs import materialize
from lora_verify.layouts import LAYOUTS, layout_info
from lora_verify.ops import OPS
from lora_verify.strategies import Batch, Seq, Slot, Values, batches

EXAMPLES = max(5, settings.default.max_examples // 4)  # ci: 25 a case, 200 in all; a few seconds of CPU


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", OPS, ids=repr)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_vectorised_matches_loops(op, layout, device, data):
    case = materialize(data.draw(batches(op.dims, ranks=op.ranks)), op, device)
    info, d = layout_info(case, layout), case.batch.dims
    base = None if case.base is None else case.base.clone()
    loops, defined = op.call(op.reference, case.x, case.w, info, d, base, case.offsets)
    vectorised, vec_defined = op.call(getattr(reference.vectorised, op.entry), case.x, case.w, info, d, base,
                                      case.offsets)
    vectorised, vec_defined = vectorised.cpu(), vec_defined.cpu()  # the loops' results are on the CPU
    abs_info = dataclasses.replace(info, scalings=info.scalings.abs())
    mag, _ = op.call(op.reference, torch.nan_to_num(case.x.abs()), torch.nan_to_num(case.w.abs()), abs_info, d,
                     None if base is None else base.abs(), case.offsets)
    assert torch.equal(defined, vec_defined)
    err = torch.where(defined, (vectorised - loops).abs(), 0.0)
    tolerance = reference_agreement(mag, op.n_terms(d, case.batch.max_rank))
    assert bool((err <= tolerance).all()), f"differ by {float(err.max())!r} (tolerance {float(tolerance.max())!r})"
    assert not torch.isnan(vectorised[defined]).any()


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_reference_choice(op, device, monkeypatch):
    """The loops serve every case on a CPU and a case below ``DEVICE_REFERENCE_MIN_PRODUCTS`` on a GPU; the device
    reference a case at or above it on a GPU."""
    case = materialize(Batch(16, (Slot(16, 1.0),), (Seq(3, 0),), op.sample, Values(seed=0)), op, device)
    products = case.x.shape[0] * case.w[0].numel()
    monkeypatch.setattr(layouts, "DEVICE_REFERENCE_MIN_PRODUCTS", products + 1)
    assert layouts.reference_of(case) is op.reference
    monkeypatch.setattr(layouts, "DEVICE_REFERENCE_MIN_PRODUCTS", products)
    expected = getattr(reference.vectorised, op.entry) if device.type == "cuda" else op.reference
    assert layouts.reference_of(case) is expected
