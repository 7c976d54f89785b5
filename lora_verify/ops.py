"""The operation table: each of SPEC.md's operations declared once, with everything that varies per operation.

An :class:`OpInfo` names the entry point (looked up by name in the module under test, so any
implementation of SPEC.md's calling convention can be checked), its float64 reference, the dims
hypothesis draws and a fixed sample of them, the shapes it takes, which input cells the contract says
are never read (poisoned with NaN), how it is called, how many products each output cell sums (for
the error bound), its own bad-input cases (as PyTorch's OpInfo carries its error inputs), the kernel
file of ours that serves it, what it costs relative to the others, and its shapes in a real model
layer (the benchmark). Properties, bad-input tests, adapters' tests, graph tests, the mutation runner
and the benchmark all iterate ``OPS``; a fifth operation is its kernel, its reference and one entry here.
"""

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import triton
from hypothesis import strategies as st

import reference
from impl.expand import MAX_COLUMN_TILES, MIN_PROGRAMS, column_tiles_per_program, expand_blocks
from impl.shrink import LONG_SPLIT_K, shrink_blocks
from lora_verify.errors import Break, arg, edit
from lora_verify.errors import LoRAInputError as Bad
from lora_verify.errors import LoRATypeError as BadType
from lora_verify.strategies import Dims, boundaries, feature_dim, max_ranks, near

NAN = float("nan")


@dataclass(frozen=True)
class Layer:
    """The widths of one transformer layer: what a real model hands the four operations."""

    name: str
    hidden: int  # K of every shrink, N of the plain expand (o_proj)
    q: int
    kv: int
    intermediate: int  # each of gate/up's two slices; K of down_proj's shrink


@dataclass(frozen=True)
class OpInfo:
    name: str
    entry: str  # entry-point name (SPEC.md), looked up in the module under test
    reference: Callable  # reference/loops.py: the float64 value and the cells the contract defines
    dims: Callable  # (R) -> strategy of Dims for a pool of padded rank R: around its kernel's regime boundaries;
    # built once per R (lora_verify.strategies: a strategy built anew each example costs more than drawing it)
    ranks: st.SearchStrategy  # of the pool's padded rank R
    edges: Callable  # () -> [(R, Dims)]: each regime boundary of its kernel once (lora_verify/suite/test_edges.py)
    sample: Dims  # small fixed dims: the fixed-batch tests (adapters', the graph's snapping)
    slices: Optional[int]  # output slices of an expand; None: a shrink (its stack_num is drawn in the dims)
    x_cols: Callable  # (dims, R) -> columns of x
    w_shape: Callable  # (dims, R) -> per-slot weight shape
    out_cols: Optional[Callable]  # (dims) -> columns of base_output; None: the op returns a new tensor
    poison: Callable  # (x, w, dims, rows_rank, slot_rank) -> NaN where the contract forbids reads
    call: Callable  # (fn, x, w, batch_info, dims, base, offsets) -> fn's result; offsets: slice_offsets on device
    n_terms: Callable  # (dims, R) -> products summed per output cell
    kernel: str  # the file of ours (impl/) that serves it: the mutation runner's map from a file to its ops
    cost: int  # relative cost of one example on the interpreter: cheap operations are checked first
    bench: Callable  # (Layer) -> {benchmark label: Dims}: its shapes in a real layer
    breaks: tuple = ()  # bad-input cases of its own (lora_verify.errors.BREAKS holds those of every op)
    # the sorted layout's variants (lora_verify.properties.SORTED_VARIANTS) its kernel has paths for
    sorted_variants: tuple = ("sorted", "lookup", "grouped")

    def __repr__(self):
        return self.name

    @property
    def in_place(self) -> bool:
        return self.out_cols is not None

    def slice_offsets(self, dims: Dims) -> Optional[list]:
        """``[0, w0, w0 + w1, ...]`` of an expand's output slices; None for a shrink."""
        if self.slices is None:
            return None
        out = [0]
        for width in dims.widths:
            out.append(out[-1] + width)
        return out


# ------------------------------------------------ dims at impl's regime boundaries (just below, at, just above each)


def _pow2(n: int) -> bool:
    return n & (n - 1) == 0


def _shrink_regime(K: int) -> tuple:
    """What K decides in impl.shrink: the K block, the K per split and the number of splits."""
    _, block_k, k_split = shrink_blocks(K, 1)
    return block_k, k_split, triton.cdiv(K, k_split)


def shrink_k_edges() -> list:
    """Every K at which shrink's regime changes, up to the first K of long-K blocks whose split count is not a
    power of two (there ``_sum_splits_kernel`` masks padded splits; real layers have such K: down_proj's 14336)."""
    short, K = _shrink_regime(1)[0], 1
    while _shrink_regime(K)[0] == short or _pow2(_shrink_regime(K)[2]):
        K += 1
    return boundaries(_shrink_regime, K)


RANK_LIMIT = 130  # the largest R drawn on CPU: past the rank block of 128 into the next (the GPU tier draws to 256)


def rank_edges() -> list:
    """The ranks at which expand's blocks change (impl.expand.expand_blocks: BLOCK_K, hence BLOCK_N)."""
    return boundaries(expand_blocks, RANK_LIMIT - 1)


@functools.lru_cache(maxsize=None)
def column_edges(R: int, slices: int) -> list:
    """Slice widths at which expand's column tiling changes for rank ``R``: its column tile (``expand_blocks``),
    and on a grid large enough to group (the "grouped" layout forces one) the column tiles per program
    (``column_tiles_per_program``, from all ``slices`` slices' tiles), the groups per slice and whether a
    slice's last group is clipped; up to one group of ``MAX_COLUMN_TILES`` and one more tile in all (the
    interpreter's cost grows with the tiles: more groups per slice come from the plain expand's one slice)."""
    block_n = expand_blocks(R)[0]

    def regime(width):
        tiles = triton.cdiv(width, block_n)
        group = column_tiles_per_program(MIN_PROGRAMS * MAX_COLUMN_TILES, slices * tiles, MIN_PROGRAMS)
        return group, triton.cdiv(tiles, group), tiles % group != 0

    return boundaries(regime, triton.cdiv(MAX_COLUMN_TILES + 1, slices) * block_n)


@functools.lru_cache(maxsize=None)
def widest_group(R: int, slices: int = 1) -> st.SearchStrategy:
    """Slice widths at which a grouped expand program serves ``MAX_COLUMN_TILES`` column tiles (rank ``R``,
    ``slices`` slices of that width: the output's column tiles decide), just past the first: a branch of the
    strategies of its own, so that that regime's minimum has margin."""
    first = triton.cdiv((MAX_COLUMN_TILES - 1) * expand_blocks(R)[0] + 1, slices)
    return st.sampled_from([first, first + 1, first + 2])


def _shrink_edges() -> list:
    """The last K of each of shrink's regimes and the first of the next, the split length's change (long K: only
    here, the interpreter's time grows with K) among them; R gives two column tiles of 3 slices."""
    edges = shrink_k_edges() + [LONG_SPLIT_K + 1]
    return [(24, Dims(k=K, stack_num=3)) for e in edges for K in (e - 1, e)]


def _expand_edges(slices: int) -> list:
    """The first width of each column regime (slices of equal width) at the largest rank of the widest column
    tile (real models' ranks: R <= 64), and the last rank of each rank block and the first of the next."""
    dims = lambda width: Dims(widths=(width,) * slices, stack_num=slices)
    R = max(r for r in range(1, RANK_LIMIT + 1) if expand_blocks(r)[0] == expand_blocks(1)[0])
    return [(R, dims(width)) for width in column_edges(R, slices)] + [
        (r, dims(40)) for e in rank_edges() for r in (e - 1, e)
    ]


SHORT_K = [e for e in shrink_k_edges() if _shrink_regime(e)[0] == _shrink_regime(1)[0]]
LONG_K = sorted(set(shrink_k_edges()) - set(SHORT_K))  # long-K blocks and their split counts; the last: 3 splits
SHRINK_DIMS = st.builds(
    Dims,
    # small K (the interpreter's time grows with K); around each change of split count (3 splits: not a power of
    # two); around long-K blocks and their splits; just past the first long K whose split count is not a power of
    # two (down_proj's regime), a branch of its own so that the regime table's minimum has margin
    k=feature_dim() | feature_dim() | near(SHORT_K) | near(LONG_K) | near([LONG_K[-1] + 1]),
    stack_num=st.sampled_from([1, 2, 3]),
)
EXPAND_RANKS = max_ranks() | near(rank_edges())  # whole-rank (R a block size) and rank-masked blocks of each size


def _poison_shrink(x, w, dims, row_rank, slot_rank):
    """Weight rows past ``stack_num * r`` are padding."""
    for a, r in enumerate(slot_rank):
        w[a, dims.stack_num * r :] = NAN


def _poison_expand(x, w, dims, row_rank, slot_rank):
    """x columns past ``slices * r`` are shrink's undefined cells; weight columns past ``r`` are padding."""
    slices = len(dims.widths)
    for t, r in enumerate(row_rank):
        x[t, slices * r :] = NAN
    for a, r in enumerate(slot_rank):
        w[a, :, r:] = NAN


def _expand_entry(name, slices, widths, sample, call, cost, bench, breaks=()):
    return OpInfo(
        name=name,
        entry=name,
        reference=getattr(reference, name),
        dims=functools.lru_cache(maxsize=None)(lambda R: widths(R).map(lambda ws: Dims(widths=ws, stack_num=len(ws)))),
        ranks=EXPAND_RANKS,
        edges=lambda: _expand_edges(slices),
        sample=sample,
        slices=slices,
        x_cols=lambda d, R: len(d.widths) * R,
        w_shape=lambda d, R: (sum(d.widths), R),
        out_cols=lambda d: sum(d.widths),
        poison=_poison_expand,
        call=call,
        n_terms=lambda d, R: R,
        kernel="impl/expand.py",
        cost=cost,
        bench=bench,
        breaks=breaks,
    )


OPS = [
    OpInfo(
        name="sgemm_lora_a_fwd",
        entry="sgemm_lora_a_fwd",
        reference=reference.sgemm_lora_a_fwd,
        dims=lambda R: SHRINK_DIMS,
        ranks=max_ranks(),
        edges=_shrink_edges,
        sample=Dims(k=33, stack_num=3),
        slices=None,
        x_cols=lambda d, R: d.k,
        w_shape=lambda d, R: (d.stack_num * R, d.k),
        out_cols=None,
        poison=_poison_shrink,
        call=lambda fn, x, w, bi, d, base, offsets: fn(x, w, bi, d.stack_num),
        n_terms=lambda d, R: d.k,
        kernel="impl/shrink.py",
        cost=0,
        bench=lambda layer: {
            "shrink": Dims(k=layer.hidden, stack_num=1),
            "qkv_shrink": Dims(k=layer.hidden, stack_num=3),
            "gate_up_shrink": Dims(k=layer.hidden, stack_num=2),
            "down_shrink": Dims(k=layer.intermediate, stack_num=1),
        },
        breaks=(
            Break("stack_num 4", "stack_num", Bad, arg("stack_num", lambda s, c: 4)),
            Break("stack_num float", "stack_num", BadType, arg("stack_num", lambda s, c: float(s))),
        ),
        sorted_variants=("sorted", "lookup", "grouped", "grouped_split"),  # grouped programs' splits, not fused
    ),
    _expand_entry(
        "sgemm_lora_b_fwd",
        1,
        lambda R: st.tuples(feature_dim(150) | near(column_edges(R, 1)) | widest_group(R)),
        Dims(widths=(40,)),
        lambda fn, x, w, bi, d, base, offsets: fn(x, w, bi, base_output=base),
        cost=1,
        bench=lambda layer: {"expand": Dims(widths=(layer.hidden,))},
    ),
    _expand_entry(
        "qkv_lora_b_fwd",
        3,
        lambda R: st.tuples(
            # q alone wide enough for the widest group
            feature_dim(80) | feature_dim(80) | near(column_edges(R, 3)) | widest_group(R), feature_dim(40)
        ).map(
            lambda qk: (*qk, qk[1])
        ),
        Dims(widths=(24, 8, 8), stack_num=3),
        lambda fn, x, w, bi, d, base, offsets: fn(x, w, bi, offsets, max(d.widths), base_output=base),
        cost=3,
        bench=lambda layer: {"qkv_expand": Dims(widths=(layer.q, layer.kv, layer.kv), stack_num=3)},
        breaks=(
            Break("output_offset wrong length", "output_offset", Bad, arg("output_offset", lambda o, c: o[:3])),
            Break("output_offset float", "output_offset", BadType, arg("output_offset", lambda o, c: o.float())),
            Break(
                "max_qkv_out_dim not an int", "max_qkv_out_dim", BadType, arg("max_qkv_out_dim", lambda m, c: float(m))
            ),
            Break(
                "output_offset not increasing",
                "output_offset",
                Bad,
                arg("output_offset", edit(1, lambda o, c: o[2] + 1)),
                values=True,
            ),
            Break("output_offset wrong end", "output_offset", Bad, arg("output_offset", edit(3, lambda o, c: o[3] + 1)),
                  values=True),
            Break("output_offset not from 0", "output_offset", Bad, arg("output_offset", edit(0, lambda o, c: 1)),
                  values=True),
            Break("max_qkv_out_dim too small", "max_qkv_out_dim", Bad, arg("max_qkv_out_dim", lambda m, c: m - 1),
                  values=True),
        ),
    ),
    _expand_entry(
        "gate_up_lora_b_fwd",
        2,
        lambda R: (feature_dim(80) | feature_dim(80) | near(column_edges(R, 2)) | widest_group(R, 2)).map(
            lambda dim: (dim, dim)
        ),
        Dims(widths=(16, 16), stack_num=2),
        lambda fn, x, w, bi, d, base, offsets: fn(x, w, bi, d.widths[0], base_output=base),
        cost=2,
        bench=lambda layer: {"gate_up_expand": Dims(widths=(layer.intermediate, layer.intermediate), stack_num=2)},
        breaks=(Break("output_dim mismatch", "output_dim", Bad, arg("output_dim", lambda d, c: d + 1)),),
    ),
]
OPS_BY_NAME = {op.name: op for op in OPS}
