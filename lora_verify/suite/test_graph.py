"""CUDA-graph replay (SPEC.md, "Under CUDA graphs"): one capture, a sequence of batches written in place.

Hypothesis draws a capacity and then a sequence of batches (large, small, empty, decode, one adapter, all
rank 0, full capacity, any), each written into the static buffers and replayed through ``impl.GraphRunner``
around the entry points of the module under test (``--impl``), where it claims graph capture. Per step:
the replay equals an eager call on the same batch bit for bit and is close to the reference (its
rounding model's bound); output rows past the live count keep a sentinel; nothing of a larger earlier batch
leaks; the step neither synchronises with the host nor allocates. The buffer-filling routing is also
checked on CPU (contents, no capture).
"""

from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from itertools import accumulate

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import impl
from lora_verify.bounds import case_bound
from lora_verify.inputs import batch_info_of, materialize
from lora_verify.layouts import LAYOUTS, layout_info, run_reference
from lora_verify.ops import OPS, OpInfo
from lora_verify.properties import bits
from lora_verify.strategies import Batch, Dims, Seq, Slot, feature_dim, scalings, values

KINDS = ("large", "small", "empty", "decode", "one adapter", "all rank 0", "full capacity", "any")
SENTINEL = 0x7FA5  # bf16 bits of a NaN no kernel produces: output rows past the live count hold it
GRAPH_EXAMPLES = max(2, settings.default.max_examples // 5)  # each example is 5-7 batches: gpu profile -> 200
# Feature sizes and R are drawn from short lists: Triton compiles a kernel per divisibility-by-16 class of its
# int arguments, and what varies here is the batch (tests.test_properties covers the dims).
FEATURES = (16, 33, 80)
RANKS = (3, 16, 24)


def snap(n: int) -> int:
    return min(FEATURES, key=lambda f: abs(f - n))


@dataclass(frozen=True)
class GraphOp:
    """What one graph runs: an operation, or a shrink followed by an expand (a fused projection)."""

    name: str
    stages: tuple  # of OpInfo

    def __repr__(self):
        return self.name

    @property
    def last(self) -> OpInfo:
        return self.stages[-1]

    def dims(self):
        """The op's dims with each feature size snapped to ``FEATURES``."""
        dims = self.last.dims(max(RANKS))  # feature sizes are snapped below: R only picks the edges
        if len(self.stages) == 2:
            dims = st.tuples(feature_dim(), dims).map(lambda kd: replace(kd[1], k=kd[0]))
        return dims.map(lambda d: replace(d, k=d.k and snap(d.k), widths=tuple(map(snap, d.widths))))

    def statics(self, cap, device):
        """Zeroed static inputs for the capacity: x, one weight pool per stage, base if in place."""
        d, R, T, L = cap.dims, cap.max_rank, cap.max_tokens, cap.num_slots
        zeros = partial(torch.zeros, dtype=torch.bfloat16, device=device)
        tensors = [zeros(T, self.stages[0].x_cols(d, R))] + [zeros(L, *op.w_shape(d, R)) for op in self.stages]
        return tensors + ([zeros(T, self.last.out_cols(d))] if self.last.in_place else [])

    def materialize(self, batch, device, strided_x=True):
        """(inputs in the statics' order, one lora_verify.inputs Case per stage)."""
        cases = [materialize(batch, op, device, strided_x) for op in self.stages]
        inputs = [cases[0].x] + [c.w for c in cases]
        return inputs + ([cases[-1].base] if self.last.in_place else []), cases


# each op alone, and the real LoRA path of each fused projection: a shrink feeding an expand of several slices
SHRINKS = [op for op in OPS if op.slices is None]
GRAPH_OPS = [GraphOp(op.name, (op,)) for op in OPS] + [
    GraphOp(f"{shrink.name}->{op.name}", (shrink, op)) for shrink in SHRINKS for op in OPS if (op.slices or 0) > 1
]


def call(module, op, bi, dims, offsets, x, w, base):
    return op.call(getattr(module, op.entry), x, w, bi, dims, base, offsets)


def forward(module, gop, dims, offsets, bi, *inputs):
    """The op or chain on ``bi``: what the graph captures (static inputs) and what eager runs (the case's)."""
    if len(gop.stages) == 1:
        x, w, *base = inputs
        return call(module, gop.last, bi, dims, offsets, x, w, base[0] if base else None)
    (shrink, expand), (x, wa, wb, base) = gop.stages, inputs
    y = call(module, shrink, bi, dims, offsets, x, wa, None)
    return call(module, expand, bi, dims, offsets, y, wb, base)


@dataclass(frozen=True)
class Capacity:
    max_tokens: int
    max_seqs: int
    num_slots: int
    max_rank: int
    dims: Dims


def capacities(dims):
    tokens = st.sampled_from([1, 16, 17, 48]) | st.integers(1, 80)
    return st.builds(Capacity, tokens, st.integers(1, 10), st.integers(1, 6), st.sampled_from(RANKS), dims)


@st.composite
def split(draw, total: int, n: int):
    """``n`` lengths (0 allowed) summing to ``total``."""
    if not n:
        return []
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=n - 1, max_size=n - 1)))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


@st.composite
def batch_in(draw, cap: Capacity, kind: str, stages: int = 1):
    """A batch that fits ``cap``, of the given kind; the pool always has ``num_slots`` slots.

    ``values()`` keeps one product ``|x|·|W|`` far below bf16's overflow; a shrink -> expand chain
    multiplies x by two weights (up to 2^(x_exp + 2 w_exp + 48) before the sums: 2^138 at exponents of 30,
    the overflow a GPU run hit), so its exponents are halved: at most 2^(15 + 30 + 48) = 2^93.
    """
    T, N, L, R = cap.max_tokens, cap.max_seqs, cap.num_slots, cap.max_rank
    rank = st.just(0) if kind == "all rank 0" else st.integers(0, R) | st.sampled_from([0, R])
    slots = tuple(draw(st.lists(st.builds(Slot, rank, scalings), min_size=L, max_size=L)))
    if kind == "decode":
        lengths = [1] * draw(st.integers(1, min(N, T)))
    elif kind == "empty":
        lengths = [0] * draw(st.integers(0, N))
    else:
        n, total = {
            "large": (st.integers(1, N), st.integers((T + 1) // 2, T)),
            "small": (st.integers(1, min(2, N)), st.integers(1, min(4, T))),
            "full capacity": (st.just(N), st.just(T)),
        }.get(kind, (st.integers(0, N), st.integers(0, T)))
        n = draw(n)
        lengths = draw(split(draw(total) if n else 0, n))
    slot = st.just(draw(st.integers(0, L - 1))) if kind == "one adapter" else st.integers(0, L - 1)
    seqs = tuple(Seq(length, draw(slot)) for length in lengths)
    bf16_values = values().map(lambda v: replace(v, dtype="bfloat16"))  # the graph's statics are bf16
    if stages == 2:
        bf16_values = bf16_values.map(lambda v: replace(v, x_exp=v.x_exp // 2, w_exp=v.w_exp // 2))
    return Batch(R, slots, seqs, cap.dims, draw(bf16_values))


def host_lists(batch):
    return (
        [s.length for s in batch.seqs],
        [s.slot for s in batch.seqs],
        [s.rank for s in batch.slots],
        [s.scaling for s in batch.slots],
    )


def device_tensors(bi):
    return bi.seg_lens, bi.weight_indices, bi.lora_ranks, bi.scalings


@contextmanager
def no_host_sync(record, prop):
    """torch's sync debug mode raises on any host synchronisation inside; the verdict is recorded."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    except RuntimeError as e:
        if "synchroniz" not in str(e):  # torch: "called a synchronizing CUDA operation"
            raise
        record(prop, False)
        raise AssertionError(f"{prop}: {e}") from e
    finally:
        torch.cuda.set_sync_debug_mode("default")
    record(prop, True)


def allocations():
    return torch.cuda.memory_stats().get("allocation.all.allocated", 0), torch.cuda.memory_allocated()


def check_step(module, gop, layout, cap, offsets, runner, batch, from_host, record, device, profile):
    """Loads and replays one batch (raising on a host sync); returns ``{property: ok}`` and the worst err/bound."""
    inputs, cases = gop.materialize(batch, device, profile.strided_x)
    bi, S = cases[0].batch_info, batch.num_tokens
    base_before = cases[-1].base.clone() if gop.last.in_place else None
    before = allocations()
    with no_host_sync(record, "step without host sync"):
        runner.load(*(host_lists(batch) if from_host else device_tensors(bi)), *inputs)
        runner.output[S:].view(torch.int16).fill_(SENTINEL)
        out = runner.replay()
    no_alloc = allocations() == before
    eager = forward(module, gop, cap.dims, offsets, layout_info(cases[0], layout), *inputs)
    ref_case = cases[-1]
    if len(gop.stages) == 2:  # the expand stage against the reference, fed eager shrink's (bf16) output
        x, wa = inputs[:2]
        y = call(module, gop.stages[0], layout_info(cases[0], layout), cap.dims, offsets, x, wa, None)
        ref_case = replace(ref_case, x=y)
    ref, defined, mag = (t.cpu() for t in run_reference(ref_case, base_before))  # compared here on the CPU
    bound = case_bound(ref_case, ref, mag, base_before, profile.rounding)
    err = (out.cpu().double() - ref).abs()
    ratio = torch.where(defined, torch.nan_to_num(err / bound, nan=float("inf")), 0.0)
    worst = float(ratio.max()) if ratio.numel() else 0.0
    return {
        "replay == eager": torch.equal(bits(out)[defined], bits(eager)[defined]),
        "close to reference": worst <= 1,
        "rows past live untouched": bool((bits(runner.output[S:]) == SENTINEL).all()),
        "replay allocates nothing": no_alloc,
    }, worst


@pytest.mark.gpu
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("gop", GRAPH_OPS, ids=repr)
@settings(max_examples=GRAPH_EXAMPLES)
@given(data=st.data())
def test_replay_sequence(gop, layout, impl_module, profile, device, verdicts, data):
    """One capture, then 5-7 batches replayed through it, each checked against eager and the reference."""
    reason = profile.unclaimed((layout, "graph_capture"))
    if reason:
        verdicts.not_claimed(gop.name, layout, "graph replay", reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")
    cap = data.draw(capacities(gop.dims()), label="capacity")
    kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=5, max_size=7), label="batch kinds")
    record = partial(verdicts.record, gop.name, layout)
    widths = cap.dims.widths
    offsets = torch.tensor([0, *accumulate(widths)], dtype=torch.int32, device=device)
    statics = gop.statics(cap, device)
    buffers = impl.GraphBatchBuffers.allocate(cap.max_tokens, cap.max_seqs, cap.num_slots, device)
    torch.cuda.synchronize()
    with no_host_sync(record, "capture without host sync"):
        runner = impl.GraphRunner(partial(forward, impl_module, gop, cap.dims, offsets), statics, buffers, layout)
    largest = (0, 0)  # tokens, sequences of the largest batch so far
    for i, kind in enumerate(kinds):
        batch = data.draw(batch_in(cap, kind, len(gop.stages)), label=f"batch {i} ({kind})")
        from_host = data.draw(st.booleans(), label=f"batch {i} written from host lists")
        checks, worst = check_step(
            impl_module, gop, layout, cap, offsets, runner, batch, from_host, record, device, profile
        )
        size = (batch.num_tokens, len(batch.seqs))
        if size[0] < largest[0] or size[1] < largest[1]:
            checks["after a larger batch"] = checks["replay == eager"]
        largest = max(largest[0], size[0]), max(largest[1], size[1])
        for prop, ok in checks.items():
            record(prop, ok, worst if prop == "close to reference" else 0.0)
        failed = [prop for prop, ok in checks.items() if not ok]
        assert not failed, f"batch {i} ({kind}, {size[0]} tokens): {failed}; worst err/bound {worst:.3g}"


@given(data=st.data())
def test_buffers_follow_batches(device, verdicts, data):
    """Written and routed in place, the buffers equal impl.per_sequence / impl.sort_by_adapter on the live part."""
    cap = data.draw(capacities(st.just(Dims())), label="capacity")
    buffers = impl.GraphBatchBuffers.allocate(cap.max_tokens, cap.max_seqs, cap.num_slots, device)
    kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=5, max_size=7), label="batch kinds")
    for i, kind in enumerate(kinds):
        batch = data.draw(batch_in(cap, kind), label=f"batch {i} ({kind})")
        per_seq = batch_info_of(batch, device)
        from_host = data.draw(st.booleans(), label=f"batch {i} written from host lists")
        buffers.write(*(host_lists(batch) if from_host else device_tensors(per_seq)))
        buffers.route()
        S, n, pad = batch.num_tokens, len(batch.seqs), cap.max_seqs - len(batch.seqs)
        sorted_ = impl.sort_by_adapter(per_seq, S)
        u, s = buffers.unsorted, buffers.sorted
        got = {name: getattr(u, name).cpu().tolist() for name in ("seg_lens", "seg_indptr", "weight_indices")}
        expected = {
            "seg_lens": per_seq.seg_lens.tolist() + [0] * pad,
            "seg_indptr": per_seq.seg_indptr.tolist() + [S] * pad,
            "weight_indices": per_seq.weight_indices.tolist() + [0] * pad,
        }
        for name in ("seg_lens", "seg_indptr", "weight_indices", "lora_ranks", "scalings"):
            got[f"sorted {name}"] = getattr(s, name).cpu().tolist()
            expected[f"sorted {name}"] = getattr(sorted_, name).cpu().tolist()
        got["sorted permutation[:S]"] = s.permutation[:S].cpu().tolist()
        expected["sorted permutation[:S]"] = sorted_.permutation[:S].cpu().tolist()
        live = [row for row in sorted_.tiles.cpu().tolist() if row[1] > 0]  # then idle rows to the capacity's length
        got["sorted tiles"] = s.tiles.cpu().tolist()
        expected["sorted tiles"] = live + [[0, 0, 0]] * (s.tiles.shape[0] - len(live))
        for layout, info, segments in (("unsorted", u, cap.max_seqs), ("sorted", s, cap.num_slots)):
            got[f"{layout} sizes"] = (info.bs, info.num_segments, info.max_len, info.use_cuda_graph)
            expected[f"{layout} sizes"] = (segments, segments, cap.max_tokens, True)
        wrong = [name for name in expected if got[name] != expected[name]]
        verdicts.record("graph buffers", "both", "buffers follow batch", not wrong)
        assert not wrong, f"batch {i} ({kind}, {n} seqs, {S} tokens): " + "; ".join(
            f"{name} {got[name]} != {expected[name]}" for name in wrong
        )
