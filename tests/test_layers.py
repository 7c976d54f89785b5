"""The real-shape tier's strategy stays in the ranges it claims, and its tensors are poisoned where the contract
never reads (checked on a tiny layer: the real ones are GPU-sized)."""

import torch
from hypothesis import given, settings

from lora_verify.layers import MAX_DECODE, MAX_PREFILL, MAX_SLOTS, RealBatch, materialize, real_batches
from lora_verify.ops import Layer


@settings(max_examples=50)
@given(real_batches())
def test_real_batches_stay_in_range(batch):
    layer = batch.layer
    assert 2048 <= layer.hidden <= 8192 and 512 <= layer.kv <= 1024 and 11008 <= layer.intermediate <= 28672
    assert 1 <= len(batch.ranks) <= MAX_SLOTS and all(r == 0 or 8 <= r <= 256 for r in batch.ranks)
    assert sum(batch.prefill) <= MAX_PREFILL and 0 <= batch.decode <= MAX_DECODE and batch.lengths
    assert batch.projection in batch.info.bench(layer)


def test_materialize_poisons_what_the_contract_never_reads():
    layer = Layer("tiny", 48, 48, 16, 40)
    shrink = materialize(RealBatch(layer, "sgemm_lora_a_fwd", "qkv_shrink", (8, 0, 12), (3,), 2, 5), "cpu")
    rows = torch.arange(shrink.w.shape[1])
    for a, r in enumerate((8, 0, 12)):
        assert torch.isnan(shrink.w[a, rows >= 3 * r]).all() and not torch.isnan(shrink.w[a, rows < 3 * r]).any()
    expand = materialize(RealBatch(layer, "qkv_lora_b_fwd", "qkv_expand", (8, 0, 12), (3,), 2, 5), "cpu")
    for a, r in enumerate((8, 0, 12)):
        assert torch.isnan(expand.w[a, :, r:]).all() and not torch.isnan(expand.w[a, :, :r]).any()
    slot_of_row = torch.repeat_interleave(expand.batch_info.weight_indices, expand.batch_info.seg_lens)
    for t, a in enumerate(slot_of_row.tolist()):
        r = (8, 0, 12)[a]
        assert torch.isnan(expand.x[t, 3 * r :]).all() and not torch.isnan(expand.x[t, : 3 * r]).any()
