"""Hypothesis strategies that build a batch the way a person describes one.

"A pool of slots (rank, scaling) under a padded rank R; sequences, each a
length and a slot; the operation's dims; and how the tensor values look."
Everything drawn is a small frozen dataclass of plain numbers, so a failing
case prints (and shrinks to) a short readable batch; tensors are made from it
by :func:`lora_verify.inputs.materialize` with the drawn seed.

Strategies are built once per argument tuple (``lru_cache``) and composites draw only from such prebuilt
ones: building and validating hypothesis strategies anew for every example cost more than the rest of an
example's host work.
"""

from dataclasses import dataclass
from functools import lru_cache

from hypothesis import strategies as st


@dataclass(frozen=True)
class Slot:
    rank: int
    scaling: float


@dataclass(frozen=True)
class Seq:
    length: int
    slot: int


@dataclass(frozen=True)
class Dims:
    k: int = 0  # shrink: input features
    widths: tuple = ()  # expand family: output slice widths
    stack_num: int = 1


@dataclass(frozen=True)
class Values:
    """How tensor values are drawn: ``seed`` for the generator, power-of-two scales, awkward entries."""

    seed: int
    x_exp: int = 0
    w_exp: int = 0
    awkward: bool = False  # sprinkle -0.0, exact zeros, subnormals and large entries
    dtype: str = "bfloat16"  # of activations and weights; float32 shows summation-order changes bf16 hides


@dataclass(frozen=True)
class Batch:
    max_rank: int
    slots: tuple
    seqs: tuple
    dims: Dims
    values: Values

    @property
    def num_tokens(self) -> int:
        return sum(s.length for s in self.seqs)


scalings = st.sampled_from([1.0, 0.5, -2.0, 0.0, 3.0]) | st.floats(-4, 4, width=32, allow_subnormal=False)


@lru_cache(maxsize=None)
def slot_pools(max_rank: int, max_slots: int = 6):
    """Adapter slots with mixed ranks, rank 0 (no LoRA) included.

    Ranks shrink towards 1, not 0: a failing batch then shrinks to one slot of
    rank 1 rather than to a used slot behind rank-0 slots that cannot go.
    """
    rank = st.integers(1, max_rank) | st.sampled_from([0, max_rank])
    return st.lists(st.builds(Slot, rank, scalings), min_size=1, max_size=max_slots).map(tuple)


@lru_cache(maxsize=None)
def lengths():
    """Decode (1), empty (0), short, and longer than one 16-row tile."""
    return st.sampled_from([1, 0, 16, 17]) | st.integers(0, 4) | st.integers(0, 40)


@lru_cache(maxsize=None)
def _sequences(num_slots: int, max_seqs: int, decode: bool):
    length = st.just(1) if decode else lengths()
    return st.lists(st.builds(Seq, length, st.integers(0, num_slots - 1)), min_size=0, max_size=max_seqs).map(tuple)


@lru_cache(maxsize=None)
def sequence_lists(num_slots: int, max_seqs: int = 8):
    """Either a one-token decode batch or sequences of any length, each on some slot."""
    return st.booleans().flatmap(lambda decode: _sequences(num_slots, max_seqs, decode))


DTYPES = ("bfloat16", "bfloat16", "float32")  # bf16 twice as often; float32 shows orders bf16 hides


@lru_cache(maxsize=None)
def values(dtypes=DTYPES):
    """Scales keep every |x|·|W|·K·|s| + |base| far below bf16's overflow (2^128); ``dtypes`` those drawn
    (an implementation's claimed ones; fp16 alone when it claims only fp16)."""
    drawn = [d for d in DTYPES if d in dtypes] or [dtypes[0]]
    return st.builds(
        Values,
        seed=st.integers(0, 2**32 - 1),
        x_exp=st.sampled_from([0, -20, 20]) | st.integers(-30, 30),
        w_exp=st.sampled_from([0, -20, 20]) | st.integers(-30, 30),
        awkward=st.booleans(),
        dtype=st.sampled_from(drawn),
    )


def max_ranks():
    """The pool's padded rank R: small, and block sizes' neighbours (96: a rank block of 128, rank-masked)."""
    return st.integers(1, 24) | st.sampled_from([33, 64, 96])


def batches(dims_strategy, dtypes=DTYPES, ranks=None):
    """A whole batch for one operation: R (from ``ranks``, default :func:`max_ranks`), its slots, the sequences,
    the dims (``dims_strategy(R)``: an ``OpInfo.dims``), the values (of ``dtypes``). Built once per arguments."""
    return _batches(dims_strategy, tuple(dtypes), ranks)


@lru_cache(maxsize=None)
@st.composite
def _batches(draw, dims_strategy, dtypes, ranks):
    max_rank = draw(ranks if ranks is not None else max_ranks())
    slots = draw(slot_pools(max_rank))
    seqs = draw(sequence_lists(len(slots)))
    dims = draw(dims_strategy(max_rank))
    return Batch(max_rank, slots, seqs, dims, draw(values(dtypes)))


def feature_dim(max_value: int = 100):
    """Hidden sizes, block multiples and their neighbours included."""
    return st.sampled_from([1, 16, 31, 32, 33, 64]) | st.integers(1, max_value)


def boundaries(regime, stop: int, start: int = 1) -> list:
    """The ``n`` in ``(start, stop]`` where ``regime(n) != regime(n - 1)``: the first value of each new regime."""
    return [n for n in range(start + 1, stop + 1) if regime(n) != regime(n - 1)]


def near(points, low: int = 1):
    """Each point and its neighbours (just below, at, just above), none below ``low``."""
    return st.sampled_from(sorted({p + d for p in points for d in (-1, 0, 1) if p + d >= low}))
