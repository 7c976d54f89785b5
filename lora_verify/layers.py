"""Real model layers and batches over them: the strategy of the GPU tier (``lora_verify/suite/test_real_shapes.py``).

A :class:`RealBatch` is a layer (a ``lora_verify.ops.Layer``: a known model's widths, or one drawn from the
ranges real models span: hidden 2048-8192, kv 512-1024, intermediate 11008-28672), one projection of an
operation in it (``OpInfo.bench``: down_proj's shrink has K = intermediate, 14336 for Llama-3-8B), a pool of
up to 64 adapters of mixed ranks 8-256 (rank 0 too: the base model), and a decode batch (up to 1024
one-token sequences), a prefill batch (up to 8192 tokens) or both mixed. The tensors are made on the device
from its seed (:func:`materialize`): a batch of 8192 tokens costs milliseconds there, seconds on the CPU.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from hypothesis import strategies as st

import impl
from lora_verify.ops import OPS_BY_NAME, Layer, OpInfo

NAN = float("nan")
MODELS = (  # (name, hidden, q, kv, intermediate) of real models' decoder layers
    Layer("llama-3-8b", 4096, 4096, 1024, 14336),
    Layer("llama-3-70b", 8192, 8192, 1024, 28672),
    Layer("mistral-7b", 4096, 4096, 1024, 14336),
    Layer("qwen2-7b", 3584, 3584, 512, 18944),
    Layer("qwen2.5-14b", 5120, 5120, 1024, 13824),
)
MAX_SLOTS, MAX_DECODE, MAX_PREFILL = 64, 1024, 8192
RANKS = (8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class RealBatch:
    layer: Layer
    op: str  # an OpInfo name
    projection: str  # its label in ``OpInfo.bench(layer)``
    ranks: tuple  # per slot; 0 is no LoRA
    prefill: tuple  # lengths of the prefill sequences
    decode: int  # one-token sequences after them
    seed: int  # each sequence's slot, the scalings and the tensors' values

    @property
    def info(self) -> OpInfo:
        return OPS_BY_NAME[self.op]

    @property
    def dims(self):
        return self.info.bench(self.layer)[self.projection]

    @property
    def max_rank(self) -> int:
        return max(max(self.ranks), 1)

    @property
    def lengths(self) -> list:
        return [*self.prefill, *[1] * self.decode]


def _multiple(lo: int, hi: int, step: int):
    return st.integers(-(-lo // step), hi // step).map(lambda m: m * step)


def layers():
    """A known model's layer, or one drawn from real models' ranges (widths multiples of 128, or of 64)."""
    drawn = st.builds(
        lambda hidden, kv, intermediate: Layer(f"drawn-{hidden}-{kv}-{intermediate}", hidden, hidden, kv,
                                               intermediate),
        _multiple(2048, 8192, 128),
        _multiple(512, 1024, 128),
        _multiple(11008, 28672, 64),
    )
    return st.sampled_from(MODELS) | drawn


@st.composite
def real_batches(draw, ops=tuple(OPS_BY_NAME)):
    layer = draw(layers())
    op = draw(st.sampled_from(ops))
    projection = draw(st.sampled_from(sorted(OPS_BY_NAME[op].bench(layer))))
    rank = st.sampled_from(RANKS) | st.integers(RANKS[0], RANKS[-1])
    slots = draw(st.integers(1, MAX_SLOTS) | st.just(MAX_SLOTS))
    ranks = tuple(draw(st.lists(rank | st.just(0), min_size=slots, max_size=slots)))
    kind = draw(st.sampled_from(["decode", "prefill", "mixed"]))
    prefill, decode = (), 0
    if kind != "decode":
        length = st.integers(1, MAX_PREFILL) | st.sampled_from([1, 16, 17, 1024, 2048, MAX_PREFILL])
        total = 0
        for n in draw(st.lists(length, min_size=1, max_size=16)):
            if total + n > MAX_PREFILL:
                break
            prefill, total = (*prefill, n), total + n
    if kind != "prefill":
        decode = draw(st.integers(1, MAX_DECODE) | st.sampled_from([1, 64, 256, MAX_DECODE]))
    return RealBatch(layer, op, projection, ranks, prefill, decode, draw(st.integers(0, 2**32 - 1)))


@dataclass
class RealCase:
    batch: RealBatch
    batch_info: impl.LoRABatchInfo  # per-sequence
    x: torch.Tensor
    w: torch.Tensor
    base: Optional[torch.Tensor]  # an expand's base output (each call gets a copy)
    offsets: Optional[torch.Tensor]


def materialize(batch: RealBatch, device) -> RealCase:
    """The batch's tensors on ``device``, from its seed; cells the contract never reads hold NaN."""
    op, d, R = batch.info, batch.dims, batch.max_rank
    gen = torch.Generator(device=device).manual_seed(batch.seed)
    lengths, L = batch.lengths, len(batch.ranks)
    seq_slots = torch.randint(0, L, (len(lengths),), generator=gen, device=device)
    scalings = torch.tensor([1.0, 0.5, 2.0, -1.0, 0.125], device=device)[
        torch.randint(0, 5, (L,), generator=gen, device=device)]
    info = impl.per_sequence(lengths, seq_slots.tolist(), list(batch.ranks), scalings.tolist(), device=device)

    def randn(*shape):
        return torch.randn(shape, generator=gen, device=device).to(torch.bfloat16)

    S = sum(lengths)
    x, w = randn(S, op.x_cols(d, R)), randn(L, *op.w_shape(d, R))
    ranks = torch.tensor(batch.ranks, device=device)
    if op.slices is None:  # shrink: weight rows past stack_num * r are padding
        w[torch.arange(w.shape[1], device=device)[None, :] >= d.stack_num * ranks[:, None]] = NAN
    else:  # expand: weight columns past r are padding, x columns past slices * r shrink's undefined cells
        w.transpose(1, 2)[torch.arange(R, device=device)[None, :] >= ranks[:, None]] = NAN
        row_ranks = torch.repeat_interleave(ranks[seq_slots], torch.tensor(lengths, device=device))
        x[torch.arange(x.shape[1], device=device)[None, :] >= len(d.widths) * row_ranks[:, None]] = NAN
    offsets = op.slice_offsets(d)
    offsets = None if offsets is None else torch.tensor(offsets, dtype=torch.int32, device=device)
    base = randn(S, op.out_cols(d)) if op.in_place else None
    return RealCase(batch, info, x, w, base, offsets)
