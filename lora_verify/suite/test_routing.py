"""Routing: the sorted layout built on the device from a per-sequence batch.

Checked against SPEC.md: ``permutation`` is a permutation of the live rows,
grouped by slot in slot order, stable inside a slot; segment ``a`` is slot
``a`` and its length counts that slot's rows (0 when absent); lengths sum to
the token count; rows past the live count (a capacity) sort last. The tile
table (impl's own field) lists each segment's tiles of ``BLOCK_S`` rows in
order, then idle rows, enough for any batch of the capacity. On a GPU
the routing also runs under torch's sync debug mode set to raise on any host
synchronisation. Beside the invariants, the routing's every output equals,
bit for bit, that of the torch routing it replaced (a stable sort of each
row's slot): ``reference_routing``.
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import impl
from impl.routing import ROWS_PER_STEP
from impl.segments import BLOCK_S
from lora_verify import regimes
from lora_verify.inputs import batch_info_of
from lora_verify.strategies import Batch, Dims, Seq, Slot, Values, near, sequence_lists, slot_pools

STEP_ROWS = int(ROWS_PER_STEP) * BLOCK_S  # permutation entries (rows of tiles) one step of the routing kernel writes
# slots of a wide batch: SLOTS 128, chunks of 64 segments (impl.routing.count_chunks), so 64-96 segments
# make 2 chunks; of a very wide one: SLOTS 1024, chunks of 8, so 9-13 chunks, their counts read 8 at a time
WIDE_SLOTS, VERY_WIDE_SLOTS = (65, 80), (513, 540)


def wide_batches(slots=WIDE_SLOTS):
    """A decode-like batch of many short segments on many slots: segments in several of the routing's chunks."""
    return st.integers(*slots).flatmap(
        lambda n: st.tuples(
            st.just(tuple(Slot(a % 5, 1.0) for a in range(n))),  # rank-0 slots among them
            st.lists(st.builds(Seq, st.integers(0, 3), st.integers(0, n - 1)), min_size=64, max_size=96).map(tuple),
        )
    )


@st.composite
def routed_batches(draw):
    kind = draw(st.integers(0, 4))
    if kind < 2:
        slots, seqs = draw(wide_batches((WIDE_SLOTS, VERY_WIDE_SLOTS)[kind]))
    else:
        slots = draw(slot_pools(max_rank=4, max_slots=8))
        seqs = draw(sequence_lists(len(slots), max_seqs=12))
    if draw(st.booleans()):  # a segment around one write step of the tile table (the regime table's minimums)
        seqs += (Seq(draw(near([STEP_ROWS, STEP_ROWS + 1])), draw(st.integers(0, len(slots) - 1))),)
    batch = Batch(4, slots, seqs, Dims(), Values(seed=0))
    # capacity past the live rows, as under CUDA graphs; around one zeroing step of the table's idle rows
    spare = draw(st.integers(0, 5) | near([STEP_ROWS]))
    return batch, batch.num_tokens + spare


@given(routed_batches())
def test_routing_invariants(device, verdicts, drawn):
    batch, capacity = drawn
    verdicts.batches += 1
    per_seq = batch_info_of(batch, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    with verdicts.check("routing (ours)", "sorted", "routing invariants"), regimes.counted(
        verdicts, regimes.ROUTING_CHECK, impl
    ):
        try:
            routed = impl.sort_by_adapter(per_seq, capacity)
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
        check_routing(batch, capacity, routed)


def check_routing(batch, capacity, routed):
    L, S = len(batch.slots), batch.num_tokens
    slot_of_row = [seq.slot for seq in batch.seqs for _ in range(seq.length)]
    expected = sorted(range(S), key=lambda t: slot_of_row[t])  # Python's sort is stable
    perm = routed.permutation.cpu().tolist()
    lens = routed.seg_lens.cpu().tolist()
    indptr = routed.seg_indptr.cpu().tolist()
    tiles = [[indptr[a] + j, min(BLOCK_S, lens[a] - j), a] for a in range(L) for j in range(0, lens[a], BLOCK_S)]
    table_length = -(-capacity // BLOCK_S) + L
    assert (
        routed.sorted
        and routed.num_segments == L
        and routed.weight_indices.cpu().tolist() == list(range(L))
        and perm[:S] == expected
        and sorted(perm) == list(range(capacity))
        and lens == [slot_of_row.count(a) for a in range(L)]
        and indptr == [sum(lens[:a]) for a in range(L + 1)]
        and routed.max_len >= max(lens, default=0)
        and routed.tiles.cpu().tolist() == tiles + [[0, 0, 0]] * (table_length - len(tiles))
        and all(t.dtype == torch.int32 for t in (routed.permutation, routed.seg_lens, routed.seg_indptr, routed.tiles))
    ), f"routing wrong: permutation {perm}, seg_lens {lens}, seg_indptr {indptr}, tiles {routed.tiles.tolist()}"


def reference_routing(seg_indptr, weight_indices, num_slots: int, num_tokens: int):
    """The routing impl had before its one-launch kernel, in torch: each row's slot (rows past the live count
    get the sentinel ``num_slots``), stably sorted; per-slot counts and their prefix sums; each slot's tiles."""
    seg_indptr, weight_indices = seg_indptr.cpu().long(), weight_indices.cpu().long()
    rows = torch.arange(num_tokens)
    seg_of_row = torch.searchsorted(seg_indptr[1:].contiguous(), rows, right=True)
    slot_of_row = torch.cat([weight_indices, torch.tensor([num_slots])])[seg_of_row]
    permutation = torch.sort(slot_of_row, stable=True).indices.int()
    seg_lens = torch.bincount(slot_of_row, minlength=num_slots + 1)[:num_slots].int()
    indptr = F.pad(torch.cumsum(seg_lens, 0), (1, 0)).int()
    tiles = [
        [int(indptr[a]) + j, min(BLOCK_S, int(seg_lens[a]) - j), a]
        for a in range(num_slots)
        for j in range(0, int(seg_lens[a]), BLOCK_S)
    ]
    length = -(-num_tokens // BLOCK_S) + num_slots
    table = torch.tensor(tiles + [[0, 0, 0]] * (length - len(tiles)), dtype=torch.int32).reshape(length, 3)
    return permutation, seg_lens, indptr, table


@given(routed_batches())
def test_routing_matches_reference(device, drawn):
    batch, capacity = drawn
    per_seq = batch_info_of(batch, device)
    routed = impl.sort_by_adapter(per_seq, capacity)
    L = len(batch.slots)
    expected = reference_routing(per_seq.seg_indptr, per_seq.weight_indices, L, capacity)
    got = (routed.permutation, routed.seg_lens, routed.seg_indptr, routed.tiles)
    for name, g, e in zip(("permutation", "seg_lens", "seg_indptr", "tiles"), got, expected, strict=True):
        assert g.dtype == torch.int32 and torch.equal(g.cpu(), e), f"{name}: {g.tolist()}, expected {e.tolist()}"
    assert (routed.bs, routed.num_segments, routed.max_len) == (L, L, capacity)
    assert routed.weight_indices.cpu().tolist() == list(range(L))
    assert routed.lora_ranks is per_seq.lora_ranks and routed.scalings is per_seq.scalings
    assert routed.use_cuda_graph == per_seq.use_cuda_graph
