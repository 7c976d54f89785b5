"""Real sglang releases, in both directions: their kernels loaded from either file layout, and their own
``LoRABatchInfo`` class driving our kernels (SPEC.md: an object of sglang's class is a valid batch info).

``LORA_SGLANG_RELEASES`` names the releases (comma-separated: versions, fetched with ``pip download
--no-deps`` into ``LORA_SGLANG_CACHE``, directories or wheels). ``tox -e cpu`` fetches 0.5.23 (the current
layout, ``kernels/ops/lora/dense``) and 0.4.10 (the oldest, ``srt/lora/triton_ops``: no sorted path, a class
without ``permutation``, and a mask written with Python ``and``). Without it the tests are skipped, saying so.
"""

import dataclasses
import os

import pytest
import torch
from packaging.version import Version

import impl
from lora_verify.adapters import sglang_release
from lora_verify.bounds import case_bound
from lora_verify.inputs import materialize
from lora_verify.interpreter.bounds import MemoryViolation
from lora_verify.layouts import run_reference
from lora_verify.ops import OPS
from lora_verify.properties import bits
from lora_verify.strategies import Batch, Seq, Slot, Values

RELEASES = [spec for spec in os.environ.get("LORA_SGLANG_RELEASES", "").split(",") if spec]
SLOTS = (Slot(4, 0.5), Slot(0, 1.0), Slot(2, -2.0))  # mixed ranks, a rank-0 slot
SEQS = (Seq(3, 0), Seq(0, 1), Seq(17, 2), Seq(1, 1), Seq(2, 0))  # an empty sequence, one past a 16-row tile
N_MASK_FIXED = Version("0.5.10")  # sgemm_lora_b masks its columns (N) from this release on


@pytest.fixture(scope="module", params=RELEASES or [None], ids=lambda spec: f"sglang-{spec}")
def release(request):
    if request.param is None:
        pytest.skip("no sglang release named: set LORA_SGLANG_RELEASES=0.5.23,0.4.10 (tox -e cpu does)")
    return sglang_release.load(request.param)


def expected_package(version: Version) -> str:
    """The kernel package of a release (sglang moved it at 0.5.16 and at 0.5.22)."""
    if version >= Version("0.5.22"):
        return "sglang.kernels.ops.lora.dense"
    return "sglang.kernels.ops.gemm" if version >= Version("0.5.16") else "sglang.srt.lora.triton_ops"


def test_release_loads_with_its_profile(release):
    version = Version(release.version)
    assert release.kernel_package == expected_package(version)
    assert all(callable(release.kernels[op.entry]) for op in OPS)
    profile = sglang_release.profile(release)
    assert profile.layouts == (("unsorted", "sorted") if version >= Version("0.5.11") else ("unsorted",))
    assert (profile.rounding, profile.strided_x, profile.input_errors) == ("lora_first", False, False)
    assert release.version in profile.summary()[0] and str(release.kernel_dir) in profile.summary()[0]


def test_every_kind_of_source(release, tmp_path):
    """The release's directory, the directory above it, a source checkout (python/sglang/) and its wheel (where the
    cache holds one) all lead to the same files and version."""
    checkout = tmp_path / "checkout" / "python"
    checkout.mkdir(parents=True)
    (checkout / "sglang").symlink_to(release.package_dir, target_is_directory=True)
    specs = [str(release.package_dir), str(release.package_dir.parent), str(tmp_path / "checkout")]
    specs += [str(w) for w in (sglang_release.cache_dir() / "wheels").glob(f"sglang-{release.version}-*.whl")]
    for spec in specs:
        package_dir, _ = sglang_release.locate(spec)
        assert sglang_release.read_version(package_dir) == release.version, spec
        assert sglang_release.kernel_package(package_dir) == release.kernel_package, spec
        utils = sglang_release.UTILS
        assert (package_dir / utils).read_bytes() == (release.package_dir / utils).read_bytes(), spec


def as_sglang(cls, batch_info):
    """``batch_info``'s SPEC.md fields, as many as ``cls`` has, in an object of sglang's class (by keyword)."""
    names = {f.name for f in dataclasses.fields(cls)} & set(sglang_release.SPEC_FIELDS)
    return cls(**{name: getattr(batch_info, name) for name in names})


def spec_class(release) -> bool:
    return {f.name for f in dataclasses.fields(release.batch_info_class)} >= set(sglang_release.SPEC_FIELDS)


def fixed_case(op, device, strided_x=True):
    return materialize(Batch(4, SLOTS, SEQS, op.sample, Values(0)), op, device, strided_x)


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_our_kernels_take_sglangs_class(release, op, device):
    """Both layouts (the sorted one with impl's routing copied in, no tile table): within SPEC.md's bound of the
    exact value, and the same bits; a class without SPEC.md's fields (before 0.5.2) is refused by name."""
    case = fixed_case(op, device)
    if not spec_class(release):
        with pytest.raises(impl.LoRATypeError, match="^batch_info: expected an object with sglang's"):
            op.call(getattr(impl, op.entry), case.x, case.w, as_sglang(release.batch_info_class, case.batch_info),
                    case.batch.dims, case.fresh().base, case.offsets)
        return
    routed = impl.sort_by_adapter(case.batch_info, case.x.shape[0])
    base_before = None if case.base is None else case.base.clone()
    ref, defined, mag = run_reference(case, base_before)
    bound = case_bound(case, ref, mag, base_before, "once")
    outputs = []
    for info in (case.batch_info, routed):
        ours = case.fresh()
        sg = as_sglang(release.batch_info_class, info)
        assert type(sg) is release.batch_info_class and not hasattr(sg, "tiles")
        out = op.call(getattr(impl, op.entry), ours.x, ours.w, sg, ours.batch.dims, ours.base, ours.offsets)
        assert ((out.cpu().double() - ref).abs() <= bound)[defined].all()
        outputs.append(out)
    assert torch.equal(bits(outputs[0])[defined], bits(outputs[1])[defined])


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_sglangs_kernels_on_a_fixed_batch(release, op, device):
    """The release's own kernels with its own class, per-sequence: within its rounding model's bound; releases
    before 0.5.10 store past the columns of sgemm_lora_b's output when N is not a multiple of 256 (40 here),
    which the interpreter's bounds check catches (on a GPU it overwrites the next rows)."""
    case = fixed_case(op, device, strided_x=False)
    info = as_sglang(release.batch_info_class, case.batch_info)
    fn, base_before = release.kernels[op.entry], None if case.base is None else case.base.clone()
    if op.name == "sgemm_lora_b_fwd" and Version(release.version) < N_MASK_FIXED:
        if device.type == "cpu":
            with pytest.raises(Exception, match=f"{MemoryViolation.__name__}.*out of bounds"):
                op.call(fn, case.x, case.w, info, case.batch.dims, case.base, case.offsets)
        return
    out = op.call(fn, case.x, case.w, info, case.batch.dims, case.base, case.offsets).cpu().double()
    ref, defined, mag = run_reference(case, base_before)
    assert ((out - ref).abs() <= case_bound(case, ref, mag, base_before, "lora_first"))[defined].all()
