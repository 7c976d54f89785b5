"""Other engines' kernels behind SPEC.md's entry points (sglang's csgmv and triton_v2, vLLM), on fixed batches.

The translations of our batch info (``lora_verify.adapters.batch``: chunks, rows, per-token slots) are
checked against their definition on their own. Each adapter, where its kernel files are present
(``LORA_SGLANG``, ``LORA_VLLM``; skipped with the import error as the reason where not), is checked against
the float64 reference on one small fixed batch per operation (the table's ``sample`` dims, both layouts:
mixed ranks, a rank-0 slot, an empty sequence and one longer than a 16-row chunk) within the bound of its
profile's rounding model, and the rounding models that differ from SPEC's are shown to be needed and enough.
"""

import contextlib
import gc
import importlib
import weakref

import pytest
import torch

import impl
from lora_verify.adapters import batch, stubs
from lora_verify.bounds import case_bound
from lora_verify.inputs import materialize
from lora_verify.layouts import LAYOUTS, layout_info, run, run_reference
from lora_verify.ops import OPS
from lora_verify.strategies import Batch, Dims, Seq, Slot, Values

SLOTS = (Slot(4, 0.5), Slot(0, 1.0), Slot(2, -2.0))
SEQS = (Seq(3, 0), Seq(0, 1), Seq(17, 2), Seq(1, 1), Seq(2, 0))
EXPANDS = [op for op in OPS if op.in_place]
# vLLM's default shrink launches 64 K-splits per row tile (a minute for the fixed batch): its batch-invariant
# twin, the same translation with 8 ordered splits, stands for it here (and test_vllm_default_shrink)
ADAPTERS = {
    "sglang_csgmv": OPS,
    "sglang_triton_v2": OPS,
    "vllm": EXPANDS,
    "vllm_batch_invariant": OPS,
}


def adapter(name):
    try:
        return importlib.import_module(f"lora_verify.adapters.{name}")
    except ImportError as exc:
        pytest.skip(f"lora_verify.adapters.{name} cannot be imported: {exc}")


def fixed_case(op, device, strided_x, slots=SLOTS, seqs=SEQS, max_rank=4, seed=0):
    return materialize(Batch(max_rank, slots, seqs, op.sample, Values(seed)), op, device, strided_x)


def errors(module, case, layout):
    """(|module's output - reference|, bound of the module's rounding model, SPEC's bound, defined cells)."""
    base = None if case.base is None else case.base.clone()
    ref, defined, mag = run_reference(case, base)  # on the reference's device (lora_verify.layouts)
    out = run(module, case.fresh(), layout).to(ref.device, torch.float64)
    own = case_bound(case, ref, mag, base, module.PROFILE.rounding)
    return (out - ref).abs(), own, case_bound(case, ref, mag, base, "once"), defined


def per_sequence(device, seqs=SEQS, slots=SLOTS):
    return impl.per_sequence([s.length for s in seqs], [s.slot for s in seqs], [s.rank for s in slots],
                             [s.scaling for s in slots], device)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_rows_and_slots(layout, device):
    """The segments laid end to end give every row once, in segment order; rank-0 and uncovered rows get -1."""
    seqs = (*SEQS, Seq(5, 2))
    info = per_sequence(device, seqs)
    S = info.seg_lens.sum().item() + 3  # three rows no segment covers
    if layout == "sorted":
        info = impl.sort_by_adapter(info, S)
    placed = batch.rows(info, S)
    expected = []
    for i in range(info.num_segments):
        start, n = info.seg_indptr[i].item(), info.seg_lens[i].item()
        logical = list(range(start, start + n))
        expected += logical if info.permutation is None else info.permutation[logical].tolist()
    live = placed.live.tolist()
    assert placed.row[placed.live].tolist() == expected and live == [True] * len(expected) + [False] * 3
    slot_of_row = [s.slot for s in seqs for _ in range(s.length)] + [None] * 3
    want = [-1 if a is None or SLOTS[a].rank == 0 else a for a in slot_of_row]
    assert batch.token_slots(info, S).tolist() == want


@pytest.mark.parametrize("layout", LAYOUTS)
def test_chunks(layout, device):
    """Chunks of at most 16 rows tile each segment in order; their count is fixed by the host ints."""
    info = per_sequence(device, (Seq(33, 0), Seq(0, 1), Seq(16, 2), Seq(1, 0)))
    S = 50
    if layout == "sorted":
        info = impl.sort_by_adapter(info, S)
    cut = batch.chunks(info, S, 16)
    assert cut.count == S // 16 + info.num_segments == cut.weight_indices.numel() == cut.seg_indptr.numel() - 1
    bounds_ = cut.seg_indptr.tolist()
    pieces = [(bounds_[c], bounds_[c + 1], cut.weight_indices[c].item()) for c in range(cut.count)]
    assert all(0 <= hi - lo <= 16 for lo, hi, _ in pieces) and bounds_[0] == 0 and bounds_[-1] == S
    rows_of_slot = {}
    for lo, hi, slot in pieces:
        rows_of_slot.setdefault(slot, []).extend(cut.permutation[lo:hi].tolist())
    placed = batch.rows(info, S)
    for i in range(info.num_segments):
        slot = info.weight_indices[i].item()
        mine = placed.row[placed.live & (placed.segment == i)].tolist()
        assert rows_of_slot.get(slot, [])[: len(mine)] == mine
        rows_of_slot[slot] = rows_of_slot.get(slot, [])[len(mine):]
    assert not any(rows_of_slot.values())


def test_kept_holds_the_intermediates():
    """What ``batch.Kept`` holds stays allocated after the code that made it returns (so that under graph capture
    no later allocation gets its memory)."""
    def translate(n):
        return (torch.arange(n) * 2).cumsum(0)[-1]  # the arange and the product are freed on return

    with batch.Kept() as kept:
        total = translate(5)
    alive = [weakref.ref(t) for t in kept.tensors]
    assert total.item() == 20 and len(alive) >= 3
    del total
    gc.collect()
    assert all(r() is not None for r in alive)
    del kept
    gc.collect()
    assert all(r() is None for r in alive)


def test_host_offsets_read_once_per_tensor():
    offsets = torch.tensor([0, 4, 6, 8], dtype=torch.int32)
    assert batch.host_offsets(offsets) == (0, 4, 6, 8)
    offsets[1] = 5  # a tensor changed in place is not read again (documented)
    assert batch.host_offsets(offsets) == (0, 4, 6, 8)
    assert batch.host_offsets(offsets.clone()) == (0, 5, 6, 8)


def test_missing_kernel_files_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_SGLANG", str(tmp_path))
    with pytest.raises(ImportError, match="LORA_SGLANG"):
        stubs.locate("LORA_SGLANG", "sglang", ["kernels/ops/lora/dense/chunked_sgmv_shrink.py"])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("name", "op"), [(n, op) for n, ops in ADAPTERS.items() for op in ops], ids=str)
def test_close_to_reference(name, op, layout, device):
    """Within the bound of the profile's rounding model of the exact value, in the x its profile takes."""
    module = adapter(name)
    err, bound, _, defined = errors(module, fixed_case(op, device, module.PROFILE.strided_x), layout)
    assert bool((err <= bound)[defined].all()), f"worst |error| / bound {float((err / bound)[defined].max())}"


@pytest.mark.parametrize(
    ("name", "lower", "scaling", "seeds"),
    [
        # csgmv rounds s*(x@W) to bf16 before adding base: SPEC's single rounding is not met, "lora_first" is
        ("sglang_csgmv", "once", 1.0, {"sgemm_lora_b_fwd": 0, "qkv_lora_b_fwd": 0, "gate_up_lora_b_fwd": 0}),
        # vLLM also folds s into B (rounded) first: "lora_first" is not met, "folded_scaling" is
        ("vllm", "lora_first", 0.3, {"sgemm_lora_b_fwd": 15, "qkv_lora_b_fwd": 0, "gate_up_lora_b_fwd": 4}),
    ],
)
@pytest.mark.parametrize("op", EXPANDS, ids=repr)
def test_rounding_model_needed_and_enough(name, lower, scaling, seeds, op, device):
    """One token, rank 1: the error exceeds the next smaller model's bound and meets the declared one."""
    module = adapter(name)
    case = fixed_case(op, device, module.PROFILE.strided_x, (Slot(1, scaling),), (Seq(1, 0),), 1, seeds[op.name])
    base = case.base.clone()
    ref, defined, mag = run_reference(case, base)
    out = run(module, case.fresh(), "unsorted").to(ref.device, torch.float64)
    err = (out - ref).abs()
    assert not bool((err <= case_bound(case, ref, mag, base, lower))[defined].all())
    assert bool((err <= case_bound(case, ref, mag, base, module.PROFILE.rounding))[defined].all())


def test_triton_v2_keeps_spec_rounding(device):
    """triton_v2 adds base in fp32 and rounds once: where csgmv misses SPEC's bound, it meets it."""
    module = adapter("sglang_triton_v2")
    assert module.PROFILE.rounding == "once"
    for op in EXPANDS:
        case = fixed_case(op, device, True, (Slot(1, 1.0),), (Seq(1, 0),), 1, 0)
        err, bound, _, defined = errors(module, case, "unsorted")
        assert bool((err <= bound)[defined].all())


def test_triton_v2_large_route(device):
    """Past 512 tokens sglang's route is built by its three-kernel builder (the adapter forces it)."""
    module = adapter("sglang_triton_v2")
    op = OPS[0]
    seqs = (Seq(300, 0), Seq(213, 2), Seq(4, 1))
    case = materialize(Batch(2, (Slot(2, 1.0), Slot(0, 1.0), Slot(1, 1.0)), seqs, op.sample, Values(3)), op, device)
    err, bound, _, defined = errors(module, case, "unsorted")
    assert case.x.shape[0] > module.SMALL_ROUTE_ROWS and bool((err <= bound)[defined].all())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_vllm_default_shrink(layout, device):
    """vLLM's default shrink (64 K-splits summed with atomics), on the smallest batch that reaches a chunk."""
    module = adapter("vllm")
    op = OPS[0]
    case = materialize(Batch(2, (Slot(0, 1.0), Slot(2, 1.0)), (Seq(2, 1), Seq(1, 0)), Dims(k=33), Values(5)), op,
                       device)
    err, bound, _, defined = errors(module, case, layout)
    assert bool((err <= bound)[defined].all())


def test_vllm_claims_follow_its_switch():
    """Split-K atomics by default: neither determinism nor batch invariance; both with VLLM_BATCH_INVARIANT."""
    default, fixed = adapter("vllm"), adapter("vllm_batch_invariant")
    assert not default.PROFILE.deterministic and not default.PROFILE.batch_invariant
    assert fixed.PROFILE.deterministic and fixed.PROFILE.batch_invariant
    assert default.PROFILE.deterministic == default.PROFILE.batch_invariant == default.from_environment()


def test_vllm_repacked_weights_go_with_theirs(device):
    """vLLM caches pointer tables by address: the adapter's copies, and their tables, live as long as the
    suite's weight tensor, so that no table names freed memory."""
    module = adapter("vllm_batch_invariant")
    op = OPS[2]  # qkv: three slices, a pointer table
    case = fixed_case(op, device, True)
    run(module, case.fresh(), "unsorted")
    packed = module._OPS.packed
    held = [b.data_ptr() for _, buffers in packed.held.values() for b in buffers]
    tables = packed.tables[1]
    assert any(set(key) <= set(held) for key in tables)
    weights = weakref.ref(case.w)
    del case
    gc.collect()
    assert weights() is None and not packed.held and not any(set(key) & set(held) for key in tables)


@pytest.mark.interpreter
@pytest.mark.parametrize("op", EXPANDS[:2], ids=repr)
def test_vllm_launches_stay_bounds_checked(op, device, monkeypatch):
    """vLLM's expand reaches its weights through a pointer table (several slices) or through slot 0's view
    taken as the base of the whole pool (one slice): memory that no argument's view holds. The adapter names
    those tensors (``interpreter.bounds.reachable``); without that, the interpreter's bounds check refuses the
    launch, so the check is on for every other address."""
    module = adapter("vllm_batch_invariant")
    vllm = importlib.import_module("lora_verify.adapters.vllm")
    monkeypatch.setattr(vllm.bounds, "reachable", lambda *tensors: contextlib.nullcontext())
    with pytest.raises(Exception, match="MemoryViolation"):
        run(module, fixed_case(op, device, True), "unsorted")


def test_csgmv_needs_its_chunks(device):
    """Why the adapter chunks: csgmv covers ``max_len`` rows of a segment, and a longer one's extra rows are
    silently left out (sglang's own batches are always chunked). A 17-row segment under ``max_len`` 16: the
    17th row keeps ``base``; chunked (the adapter), it does not."""
    module = adapter("sglang_csgmv")
    op = OPS[1]
    case = fixed_case(op, device, False, (Slot(2, 1.0),), (Seq(17, 0),), 2)
    info = module.ChunkedBatchInfo(case.batch_info, 17)
    info.seg_indptr, info.weight_indices, info.num_segments = info.seg_indptr[[0, -1]], info.weight_indices[:1], 1
    base = case.base.clone()
    out = module.EXPAND(case.x, case.w, info, batch.device_offsets((0, 40), device), 40, base.clone())
    assert torch.equal(out[16], base[16]) and not torch.equal(out[:16], base[:16])
    assert not torch.equal(run(module, case.fresh(), "unsorted")[16], base[16])


def test_sorted_chunks_keep_our_permutation(device):
    """In the sorted layout csgmv reads our permutation as it is: sglang's own order (tokens stably by slot)."""
    op = OPS[0]
    case = fixed_case(op, device, True)
    info = layout_info(case, "sorted")
    S = case.x.shape[0]
    assert batch.chunks(info, S, 16).permutation.tolist() == info.permutation[:S].tolist()
