"""Routing: the sorted layout built on the device from a per-sequence batch.

Checked against SPEC.md: ``permutation`` is a permutation of the live rows,
grouped by slot in slot order, stable inside a slot; segment ``a`` is slot
``a`` and its length counts that slot's rows (0 when absent); lengths sum to
the token count; rows past the live count (a capacity) sort last. The tile
table (impl's own field) lists each segment's tiles of ``BLOCK_S`` rows in
order, then idle rows, enough for any batch of the capacity. On a GPU
the routing also runs under torch's sync debug mode set to raise on any host
synchronisation.
"""

import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from impl.routing import ROWS_PER_STEP
from impl.segments import BLOCK_S
from lora_verify import regimes
from lora_verify.inputs import batch_info_of
from lora_verify.strategies import Batch, Dims, Seq, Values, near, sequence_lists, slot_pools

STEP_ROWS = int(ROWS_PER_STEP) * BLOCK_S  # rows whose tiles one step of the tile-table kernel writes (or zeroes)


@st.composite
def routed_batches(draw):
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
