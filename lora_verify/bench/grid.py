"""What the benchmark runs: model layers, batch shapes, and each operation's shapes in a layer.

A layer's operations and their dims come from the operation table (``OpInfo.bench(layer)``: shrink, the
stacked qkv and gate/up shrinks, down_proj's shrink, expand and the stacked expands); this module only
says which layers and batches. A batch shape is sequences x tokens each, the adapters they spread over
(sequence ``i`` on slot ``i % adapters``) and the rank of every slot.
"""

from dataclasses import dataclass

from lora_verify.ops import OPS, Layer

LAYERS = {
    "8b": Layer("8b", hidden=4096, q=4096, kv=1024, intermediate=14336),  # Llama-3-8B-like
    "70b": Layer("70b", hidden=8192, q=8192, kv=1024, intermediate=28672),  # Llama-3-70B-like
}
TINY = Layer("tiny", hidden=64, q=64, kv=32, intermediate=48)  # --tiny: the interpreter's dry run

DECODE_TOKENS = (64, 256, 1024)  # one token per sequence
DECODE_ADAPTERS = (1, 8, 64)
PREFILL = ((1, 2048, 1, 64), (4, 512, 4, 64), (16, 512, 8, 16))  # (sequences, tokens each, adapters, rank)
PREFILL_8K = ((1, 8192, 1, 16), (8, 1024, 8, 64), (64, 128, 64, 128))  # 8192-token prefill batches


@dataclass(frozen=True)
class Grid:
    name: str
    layers: tuple  # names in LAYERS
    ranks: tuple  # decode ranks
    prefill: tuple


GRIDS = {
    "small": Grid("small", ("8b",), (16, 64), PREFILL),  # 18 decode + 3 prefill shapes of the 8B layer
    "full": Grid("full", ("8b", "70b"), (8, 16, 64, 128), PREFILL + PREFILL_8K),  # 36 + 6 shapes per layer
}


@dataclass(frozen=True)
class Shape:
    phase: str  # "decode" or "prefill"
    seqs: int
    seq_len: int
    adapters: int
    rank: int

    @property
    def tokens(self) -> int:
        return self.seqs * self.seq_len

    @property
    def batch(self) -> str:
        """Sequences (``pNxL``: N prefill sequences of L tokens) / adapters: what routing depends on."""
        seqs = str(self.seqs) if self.phase == "decode" else f"p{self.seqs}x{self.seq_len}"
        return f"{seqs}/{self.adapters}"

    @property
    def label(self) -> str:
        return f"{self.batch}/{self.rank}"

    def seq_slots(self) -> list:
        return [i % self.adapters for i in range(self.seqs)]


def shapes(grid: Grid, quick: bool = False, tiny: bool = False, phase: str = "all") -> list:
    """The grid's batch shapes, decode first; ``quick``: the first and last decode shape and one prefill;
    ``phase``: "decode" or "prefill" for those alone."""
    if tiny:
        decode = [Shape("decode", b, 1, a, 16) for b in (4, 8) for a in (1, 3)]
        prefill = [Shape("prefill", 2, 8, 2, 16)]
    else:
        decode = [Shape("decode", b, 1, a, r) for b in DECODE_TOKENS for a in DECODE_ADAPTERS for r in grid.ranks]
        prefill = [Shape("prefill", *p) for p in grid.prefill]
    picked = [decode[0], decode[-1], prefill[1 % len(prefill)]] if quick else decode + prefill
    return [s for s in picked if phase in ("all", s.phase)]


def layers(grid: Grid, tiny: bool = False, only=None) -> list:
    """The grid's layers (``only``: a subset of their names); ``tiny``: the one tiny layer."""
    if tiny:
        return [TINY]
    names = [n for n in grid.layers if only is None or n in only]
    unknown = set(only or ()) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; expected some of {', '.join(LAYERS)}")
    return [LAYERS[n] for n in names]


@dataclass(frozen=True)
class BenchOp:
    """One operation of a layer: its benchmark label, its table entry and its dims in that layer."""

    label: str
    op: object  # lora_verify.ops.OpInfo
    dims: object  # lora_verify.strategies.Dims


def layer_ops(layer: Layer) -> list:
    """Every operation of the table in ``layer``, shrinks first, in the table's order."""
    return [BenchOp(label, op, dims) for op in OPS for label, dims in op.bench(layer).items()]


def bench_op(layer: Layer, label: str) -> BenchOp:
    """The operation of ``layer`` with benchmark label ``label``."""
    ops = {b.label: b for b in layer_ops(layer)}
    if label not in ops:
        raise ValueError(f"unknown operation {label!r}; expected one of {', '.join(ops)}")
    return ops[label]


def op_labels() -> list:
    return [b.label for b in layer_ops(TINY)]


def op_groups() -> dict:
    """``qkv`` -> its shrink and expand, ``gate_up`` -> its two, ``down`` -> down_proj's shrink; and each label."""
    groups: dict = {}
    for label in op_labels():
        prefix = label.rsplit("_", 1)[0] if "_" in label else label
        groups.setdefault(prefix, []).append(label)
    for label in op_labels():
        groups.setdefault(label, [label])
    return groups


def select_ops(spec: str) -> list:
    """Labels named by ``spec`` (comma-separated groups or labels), in the table's order."""
    groups, chosen = op_groups(), set()
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part not in groups:
            raise ValueError(f"--ops: unknown {part!r}; expected some of {', '.join(groups)}")
        chosen.update(groups[part])
    return [label for label in op_labels() if label in chosen]
