"""``lora_verify.adapters.sglang``: sglang's kernels behind SPEC.md's entry points, checked on fixed batches.

Skipped, with the import error as the reason, where sglang is not installed. Where it is: the four
entry points exist, each agrees with our ``impl`` on one small fixed batch per operation (the table's
``sample`` dims, both layouts) within the two implementations' bounds, and the two claims its profile
leaves out or changes are pinned down: sglang's shrink/expand wrappers reject a row-strided ``x`` (so
it claims a dense one), and its expands round the LoRA term before adding ``base``: an error beyond the
"once" bound, within the "lora_first" one.
"""

import importlib
import importlib.util

import pytest

import impl
from lora_verify.bounds import case_bound
from lora_verify.inputs import materialize
from lora_verify.layouts import LAYOUTS, call, run, run_reference
from lora_verify.ops import OPS
from lora_verify.strategies import Batch, Seq, Slot, Values

# Mixed ranks with a rank-0 slot, an empty sequence and one longer than a 16-row tile.
SLOTS = (Slot(4, 0.5), Slot(0, 1.0), Slot(2, -2.0))
SEQS = (Seq(3, 0), Seq(0, 1), Seq(17, 2), Seq(1, 1), Seq(2, 0))
EXPANDS = [op for op in OPS if op.in_place]


@pytest.fixture(scope="module")
def sglang():
    """The adapter, imported after conftest chose the backend (``@triton.jit`` decides at import)."""
    try:
        return importlib.import_module("lora_verify.adapters.sglang")
    except ImportError as exc:
        pytest.skip(f"lora_verify.adapters.sglang cannot be imported: {exc}")


def fixed_case(op, device, slots=SLOTS, seqs=SEQS, max_rank=4, seed=0, strided_x=False):
    return materialize(Batch(max_rank, slots, seqs, op.sample, Values(seed)), op, device, strided_x)


def outputs(module, case, layout):
    """(module's output, the float64 reference, defined cells, magnitude), the call leaving ``case`` as it was."""
    base_before = None if case.base is None else case.base.clone()
    out = run(module, case.fresh(), layout).cpu().double()
    ref, defined, mag = (t.cpu() for t in run_reference(case, base_before))
    return out, ref, defined, mag, base_before


def test_entry_points(sglang):
    assert all(callable(getattr(sglang, op.entry)) for op in OPS)
    assert all(kernel.__code__.co_filename.startswith(str(sglang.KERNEL_DIR)) for kernel in sglang.KERNELS.values())


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", OPS, ids=repr)
def test_matches_impl(op, layout, sglang, device):
    """Both within their own rounding bound of the exact value, so within the sum of the two of each other."""
    case = fixed_case(op, device)
    if layout not in sglang.PROFILE.layouts:  # a release whose kernels ignore permutation refuses a sorted batch
        with pytest.raises(ValueError, match="^permutation: "):
            outputs(sglang, case, layout)
        return
    theirs, ref, defined, mag, base = outputs(sglang, case, layout)
    ours = outputs(impl, case, layout)[0]
    bound = case_bound(case, ref, mag, base, "once")
    theirs_bound = case_bound(case, ref, mag, base, sglang.PROFILE.rounding)
    assert ((ours - ref).abs() <= bound)[defined].all()
    assert ((theirs - ours).abs() <= bound + theirs_bound)[defined].all()


@pytest.mark.parametrize("op", EXPANDS, ids=repr)
def test_expand_rounds_the_lora_term_first(op, sglang, device):
    """The property suite's shrunk example (one token, rank 1, scaling 1, seed 0) misses SPEC.md's bound
    ("once") and meets the declared "lora_first" one: the profile's rounding is needed, and enough."""
    case = fixed_case(op, device, slots=(Slot(1, 1.0),), seqs=(Seq(1, 0),), max_rank=1)
    out, ref, defined, mag, base = outputs(sglang, case, "unsorted")
    err = (out - ref).abs()
    assert not (err <= case_bound(case, ref, mag, base, "once"))[defined].all()
    assert (err <= case_bound(case, ref, mag, base, sglang.PROFILE.rounding))[defined].all()


@pytest.mark.parametrize("op", [op for op in OPS if op.slices in (None, 1)], ids=repr)
def test_row_strided_x(op, sglang, device):
    """sglang's shrink and plain expand assert a contiguous ``x``: its profile claims a dense one only."""
    assert not sglang.PROFILE.strided_x
    case = fixed_case(op, device, strided_x=True)
    assert not case.x.is_contiguous()  # the suite's x: a view inside padding columns
    with pytest.raises(AssertionError):
        call(sglang, case, case.batch_info, base=case.fresh().base)
    call(sglang, case, case.batch_info, x=case.x.contiguous(), base=case.fresh().base)  # a dense x is taken


def test_missing_sglang_is_a_clear_import_error(sglang, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="sglang is not installed"):
        sglang.sglang_release.load("")
