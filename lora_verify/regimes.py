"""The regimes of impl's kernels: which path each launch took, declared once, and how often checked examples hit each.

A kernel launch decides its regime from its arguments and grid: shrink's split count (one, a power of two, or not:
``_sum_splits_kernel`` then masks padded splits), its long-K blocks, table tiles per program (grouped) and the
table's tail, its splits summed by each program (fused) or by a second kernel, its pipeline depth (a launch option:
only the compiler acts on it); expand's column tiles per program, whole-rank (``EVEN_K``) or rank-masked weights
and rank block; how programs find their rows (per-sequence, the sorted tile table, or the lookup in
``seg_indptr``); programs with nothing to do (tiles past the live ones).
:func:`recording` observes launches without changing them: for its duration the ``run`` method of each
``@triton.jit`` object (``kernel[grid](...)`` calls it, compiled or interpreted alike) is wrapped to keep the
launch's arguments (integer tensors copied on their device, no host sync: routing's test forbids one) before it
runs; a :class:`Launch` summarises them into facts when they are first read, after the body. Each :class:`Regime`
is a predicate over one launch's facts and the number of checked examples the CI profile must give it; the suite
counts, per example, the regimes its launches took (``Tally.regimes``), the plugin prints the table and fails a
complete ``ci`` run in which a regime got fewer examples than its minimum.
"""

import contextlib
import functools
import importlib
from dataclasses import dataclass
from typing import Callable

import torch
import triton

KERNELS = {  # observed kernel -> its module
    "_shrink_kernel": "impl.shrink",
    "_sum_splits_kernel": "impl.shrink",
    "_expand_kernel": "impl.expand",
    "_count_kernel": "impl.routing",
    "_route_kernel": "impl.routing",
}


@dataclass(frozen=True)
class Launch:
    kernel: str
    grid: tuple  # three ints
    args: dict  # the launch's arguments by name, integer tensors as they were at the launch

    @functools.cached_property
    def facts(self) -> dict:
        """What the regimes are decided on (see the ``_facts_*`` functions); reads the tensors (a host sync)."""
        return FACTS[self.kernel](self.args, self.grid)


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _rows(a: dict, grid: tuple, tile_programs: int) -> dict:
    """How the programs of the tile axis find their rows, and how many of the ``tile_programs`` serve none.

    Live tiles are the segments' (or the table's) tiles with rows; ``slots`` the slots of the live ones.
    """
    block_s, ranks = a["BLOCK_S"], a["lora_ranks"].tolist()
    if a["TABLE"]:
        table = a["tiles"].tolist()
        tiles = [(rows, slot) for _, rows, slot in table]
        path = "table"
    else:
        n = a["num_segments"]
        lens, slots = a["seg_lens"][:n].tolist(), a["weight_indices"][:n].tolist()
        tiles = [(min(block_s, length - i), s) for length, s in zip(lens, slots, strict=True)
                 for i in range(0, length, block_s)]
        path = "lookup" if a["SORTED"] else "per-sequence"
    live = [(rows, slot) for rows, slot in tiles if rows > 0]
    return dict(path=path, table=tiles, live_tiles=len(live), idle=tile_programs > len(live),
                slots=sorted({slot for _, slot in live}), ranks=ranks)


def _facts_shrink(a: dict, grid: tuple) -> dict:
    K, k_split, block_n, group = a["K"], a["k_split"], a["BLOCK_N"], a["GROUP"]
    splits, n_tiles = triton.cdiv(K, k_split), a["n_tiles"]
    tile_programs = a["num_tiles"] if a["TABLE"] else grid[0] * grid[1]
    f = _rows(a, grid, tile_programs)
    n_valid = [a["stack_num"] * f["ranks"][s] for s in f["slots"]]
    groups = [f["table"][i : i + group] for i in range(0, len(f["table"]), group)] if group > 1 else []
    return dict(
        f,
        splits=splits,
        block_k=a["BLOCK_K"],
        k_tail=K % a["BLOCK_K"] != 0,
        split_tail=K % k_split != 0,
        k_split=k_split,
        n_tiles=n_tiles,
        rank_exit=any(n <= (n_tiles - 1) * block_n for n in n_valid),  # some column tile has nothing to do
        rank0=0 in n_valid,
        group=group,
        fused=a["FUSED"],
        table_tail=group > 1 and len(f["table"]) % group != 0,
        mixed_group=any(len({s for rows, s in g if rows > 0}) > 1 for g in groups),
        idle_group=any(all(rows == 0 for rows, _ in g) for g in groups),
        stages=a["num_stages"],
    )


def _facts_sum(a: dict, grid: tuple) -> dict:
    numel = int(a["seg_indptr"][a["num_segments"]]) * a["N"]
    return dict(splits=a["splits"], padded=a["splits"] < a["SPLITS"], tail=numel % a["BLOCK"] != 0)


def _facts_expand(a: dict, grid: tuple) -> dict:
    f = _rows(a, grid, grid[0] * grid[1])
    block_n, group, per_slice = a["BLOCK_N"], a["group_size"], a["groups_per_slice"]
    slices = grid[2] // per_slice
    if a["OFFSETS_IN_TENSOR"]:
        offsets = a["output_offset"][: slices + 1].tolist()
        widths = [hi - lo for lo, hi in zip(offsets, offsets[1:], strict=False)]
    else:
        widths = [a["slice_width"]] * slices
    vector = _expand_constants().VECTOR.value  # qkv's slices: on vector boundaries or not (the kernel's branch)
    on_vectors = [lo % vector == 0 and hi % vector == 0 for lo, hi in zip(offsets, offsets[1:], strict=False)
                  ] if a["OFFSETS_IN_TENSOR"] else []
    tiles_per_slice = triton.cdiv(a["slice_width"], block_n)
    ranks = [f["ranks"][s] for s in f["slots"]]
    return dict(
        f,
        column_tiles=group,
        block_s=a["BLOCK_S"],
        widened=block_n > _expand_constants().expand_blocks(a["BLOCK_K"])[0],  # the wide launch's column tile
        qkv=a["OFFSETS_IN_TENSOR"],
        qkv_on_vectors=any(on_vectors),  # its columns loaded and stored in vectors
        qkv_off_vectors=a["OFFSETS_IN_TENSOR"] and not all(on_vectors),  # element by element
        groups_per_slice=per_slice,
        clipped=tiles_per_slice % group != 0,  # a slice's last group has fewer tiles than the others
        narrow_exit=any(triton.cdiv(w, block_n) <= (per_slice - 1) * group for w in widths),
        block_k=a["BLOCK_K"],
        even_k=a["EVEN_K"],
        rank_masked=any(0 < r < a["BLOCK_K"] for r in ranks),
        rank0=0 in ranks,
    )


def _segment_list(a: dict) -> tuple:
    """The per-sequence segments' lengths and slots (the sentinel not among them)."""
    n = a["num_segments"]
    indptr, slots = a["seg_indptr"][: n + 1].tolist(), a["weight_indices"][:n].tolist()
    return [hi - lo for lo, hi in zip(indptr, indptr[1:], strict=False)], slots, indptr[n]


def _facts_count(a: dict, grid: tuple) -> dict:
    """The chunks of segments (the sentinel counted) the counting kernel takes, ``CHUNK`` each, over ``SLOTS`` bins."""
    return dict(chunk_padded=(a["num_segments"] + 1) % a["CHUNK"] != 0, slots_padded=a["num_slots"] < a["SLOTS"])


def _facts_route(a: dict, grid: tuple) -> dict:
    """The per-sequence segments (the sentinel segment of rows past the live count last), the slots' rows and
    tiles, and the blocks the kernel takes them in: the chunks' counts ``CHUNK_ROWS`` at a time, permutation
    entries ``ROWS_PER_STEP * BLOCK_S`` and table rows ``ROWS_PER_STEP`` at a time."""
    num_slots, block_s, chunk = a["num_slots"], a["BLOCK_S"], a["CHUNK"]
    lens, slots, live_rows = _segment_list(a)
    live = [(i, length, s) for i, (length, s) in enumerate(zip(lens, slots, strict=True)) if length]
    counts = [sum(length for _, length, s in live if s == slot) for slot in range(num_slots)]
    segments = [sum(1 for *_, s in live if s == slot) for slot in range(num_slots)]
    chunks_of_slot = [{i // chunk for i, _, s in live if s == slot} for slot in range(num_slots)]
    tiles = sum(triton.cdiv(c, block_s) for c in counts)
    step = int(importlib.import_module(KERNELS["_route_kernel"]).ROWS_PER_STEP)
    past_live = a["num_tokens"] - live_rows
    one_chunk = a["ONE_CHUNK"]
    return dict(
        one_chunk=one_chunk,
        slots_padded=num_slots < a["SLOTS"],
        count_steps=0 if one_chunk else triton.cdiv(a["num_chunks"], a["CHUNK_ROWS"]),
        count_steps_padded=not one_chunk and a["num_chunks"] % a["CHUNK_ROWS"] != 0,
        slot_across_chunks=max(map(len, chunks_of_slot), default=0) > 1,
        empty_segment=0 in lens,
        absent_slot=0 in counts,
        shared_slot=max(segments, default=0) > 1,
        past_live=past_live > 0,
        long_segment=max(lens + [past_live]) > step * block_s,
        long_slot=max((triton.cdiv(c, block_s) for c in counts), default=0) > step,
        idle_rows=a["length"] > tiles,
        zeroing_steps=triton.cdiv(max(a["length"] - tiles, 0), step),
    )


FACTS = {
    "_shrink_kernel": _facts_shrink,
    "_sum_splits_kernel": _facts_sum,
    "_expand_kernel": _facts_expand,
    "_count_kernel": _facts_count,
    "_route_kernel": _facts_route,
}


def _capturing() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _bind(fn, args, kwargs) -> dict:
    """The launch's arguments by name; integer tensors copied (the kernel or a later one may change them)."""
    bound = dict(zip(fn.arg_names, args, strict=False))  # the launch passes a prefix
    bound.update(kwargs)
    return {k: v.clone() if isinstance(v, torch.Tensor) and not v.is_floating_point() else v for k, v in bound.items()}


@contextlib.contextmanager
def recording():
    """Yields a list that collects a :class:`Launch` per launch of impl's kernels, for the duration."""
    launches, wrapped = [], []
    for name, module in KERNELS.items():
        fn = getattr(importlib.import_module(module), name)

        def run(*args, grid, warmup, _fn=fn, _name=name, **kwargs):
            if not warmup and not _capturing():  # a graph's capture: its eager run was recorded
                g = tuple(int(v) for v in grid) + (1,) * (3 - len(grid))
                launches.append(Launch(_name, g, _bind(_fn, args, kwargs)))
            return type(_fn).run(_fn, *args, grid=grid, warmup=warmup, **kwargs)

        fn.run = run  # an instance attribute: kernel[grid](...) calls self.run
        wrapped.append(fn)
    try:
        yield launches
    finally:
        for fn in wrapped:
            del fn.run


ROUTING_CHECK = "routing"  # lora_verify/suite/test_routing.py: the routing kernel on many segments, long slots


def check_name(op: str, layout: str, prop: str) -> str:
    """How the table names a property check that fed it (a complete run has every one: ``required_checks``)."""
    return f"{op} {layout} {prop}"


def edge_check(op: str) -> str:
    """How the table names the regime-boundary cases of an operation (lora_verify/suite/test_edges.py)."""
    return f"{op} regime edges"


def required_checks() -> set:
    """Every check whose examples the minimums count on: each property of each operation, each operation's
    regime edges, and routing."""
    from lora_verify.ops import OPS
    from lora_verify.properties import PROPERTIES

    checks = {check_name(op.name, layout, p.name) for op in OPS for p in PROPERTIES for layout in p.layouts}
    return checks | {edge_check(op.name) for op in OPS} | {ROUTING_CHECK}


ENFORCED_PROFILES = ("ci", "gpu")  # derandomised; the gpu profile draws ten times the ci profile's examples


def enforced(tally, profile: str) -> bool:
    """Minimums hold a run of the ``ci`` (or ``gpu``) profile that ran every required check (not a ``-k``
    subset, not the mutation runner's profile)."""
    return profile in ENFORCED_PROFILES and required_checks() <= tally.regime_checks


@contextlib.contextmanager
def counted(tally, check: str, module):
    """Counts the regimes the body's launches take as one example of ``check`` (a name for the table's
    completeness), when ``module`` is impl: the regimes are its kernels'."""
    if getattr(module, "__name__", None) != "impl":
        yield
        return
    with recording() as launches:
        try:
            yield
        finally:
            tally.count_regimes(check, taken(launches))


@dataclass(frozen=True)
class Regime:
    kernel: str
    name: str
    holds: Callable  # (facts) -> bool
    minimum: int  # examples the ci profile must give it

    @property
    def key(self) -> str:
        return f"{self.kernel}: {self.name}"


def _shrink_constants():
    return importlib.import_module(KERNELS["_shrink_kernel"])


def _expand_constants():
    return importlib.import_module(KERNELS["_expand_kernel"])


MIN = 10  # examples of the ci profile every regime must get (rare ones: their own, lower, with the reason)
LONG_SPLIT_MIN = 2  # the one edge batch of long splits, once per check of lora_verify/suite/test_edges.py


def _regimes():
    shrink, expand = _shrink_constants(), _expand_constants()
    long_k, max_tiles = shrink.BLOCK_K_LONG, expand.MAX_COLUMN_TILES
    paths = [("per-sequence", "per-sequence rows"), ("lookup", "sorted, lookup in seg_indptr (no table)"),
             ("table", "sorted, tile table")]
    out = []
    for kernel in ("_shrink_kernel", "_expand_kernel"):
        for path, what in paths:
            out.append(Regime(kernel, what, lambda f, p=path: f["path"] == p, MIN))
            out.append(Regime(kernel, f"{what}: idle programs", lambda f, p=path: f["path"] == p and f["idle"], MIN))
        out.append(Regime(kernel, "rank-0 rows", lambda f: f["rank0"], MIN))
    out += [
        Regime("_shrink_kernel", "1 split of K", lambda f: f["splits"] == 1, MIN),
        Regime("_shrink_kernel", "splits a power of two > 1", lambda f: f["splits"] > 1 and _pow2(f["splits"]), MIN),
        Regime("_shrink_kernel", "splits not a power of two", lambda f: not _pow2(f["splits"]), MIN),
        Regime("_shrink_kernel", "last split short (K % k_split)", lambda f: f["split_tail"], MIN),
        Regime("_shrink_kernel", "K tail masked (K % BLOCK_K)", lambda f: f["k_tail"], MIN),
        # the edge examples' only (K past LONG_SPLIT_K is slow in the interpreter): one batch, a count per check
        Regime("_shrink_kernel", f"long splits (K > {shrink.LONG_SPLIT_K})",
               lambda f: f["k_split"] == long_k * shrink.K_BLOCKS_PER_LONG_SPLIT, LONG_SPLIT_MIN),
        Regime("_shrink_kernel", f"long-K blocks (BLOCK_K {long_k})", lambda f: f["block_k"] == long_k, MIN),
        Regime("_shrink_kernel", "long-K blocks, splits not a power of two",
               lambda f: f["block_k"] == long_k and not _pow2(f["splits"]), MIN),
        Regime("_shrink_kernel", "several column tiles", lambda f: f["n_tiles"] > 1, MIN),
        Regime("_shrink_kernel", "column tiles past stack_num*r (exit)", lambda f: f["rank_exit"], MIN),
        Regime("_shrink_kernel", f"grouped: {shrink.GROUP} table tiles per program", lambda f: f["group"] > 1, MIN),
        Regime("_shrink_kernel", "grouped: last group past the table's end", lambda f: f["table_tail"], MIN),
        Regime("_shrink_kernel", "grouped: several slots in one group", lambda f: f["mixed_group"], MIN),
        Regime("_shrink_kernel", "grouped: a group of idle tiles only", lambda f: f["idle_group"], MIN),
        Regime("_shrink_kernel", "splits summed in the program (fused)", lambda f: f["fused"], MIN),
        Regime("_shrink_kernel", "fused: several splits", lambda f: f["fused"] and f["splits"] > 1, MIN),
        Regime("_shrink_kernel", "fused: several splits, grouped",
               lambda f: f["fused"] and f["splits"] > 1 and f["group"] > 1, MIN),
        Regime("_shrink_kernel", "splits summed by a second kernel", lambda f: not f["fused"], MIN),
        Regime("_shrink_kernel", "grouped: splits summed by a second kernel",
               lambda f: not f["fused"] and f["group"] > 1, MIN),
        Regime("_shrink_kernel", f"deeper pipeline ({shrink.STAGES_LONG} stages; compiled only)",
               lambda f: f["stages"] == shrink.STAGES_LONG, MIN),
        Regime("_sum_splits_kernel", "splits padded to a power of two (masked)", lambda f: f["padded"], MIN),
        Regime("_sum_splits_kernel", "last block partial", lambda f: f["tail"], MIN),
        Regime("_expand_kernel", "1 column tile per program", lambda f: f["column_tiles"] == 1, MIN),
        Regime("_expand_kernel", f"2..{max_tiles // 2} column tiles per program",
               lambda f: 1 < f["column_tiles"] < max_tiles, MIN),
        Regime("_expand_kernel", f"{max_tiles} column tiles per program",
               lambda f: f["column_tiles"] == max_tiles, MIN),
        Regime("_expand_kernel", f"{expand.WIDE_ROWS} rows per program (wide, looked up)",
               lambda f: f["block_s"] == expand.WIDE_ROWS and f["path"] == "lookup", MIN),
        Regime("_expand_kernel", f"wide, column tile widened to {expand.WIDE_BLOCK_N}", lambda f: f["widened"], MIN),
        Regime("_expand_kernel", "wide, qkv's slices (output_offset)",
               lambda f: f["block_s"] == expand.WIDE_ROWS and f["qkv"], MIN),
        Regime("_expand_kernel", f"qkv: a slice on {expand.VECTOR.value}-column boundaries (vectors)",
               lambda f: f["qkv_on_vectors"], MIN),
        Regime("_expand_kernel", f"qkv: a slice off {expand.VECTOR.value}-column boundaries (elements)",
               lambda f: f["qkv_off_vectors"], MIN),
        Regime("_expand_kernel", "several column groups per slice", lambda f: f["groups_per_slice"] > 1, MIN),
        Regime("_expand_kernel", "a slice's last group clipped", lambda f: f["clipped"], MIN),
        Regime("_expand_kernel", "groups past a narrower slice (exit)", lambda f: f["narrow_exit"], MIN),
        Regime("_expand_kernel", "whole-rank weights (EVEN_K)", lambda f: f["even_k"], MIN),
        Regime("_expand_kernel", "rank-masked weights (R < BLOCK_K)", lambda f: not f["even_k"], MIN),
        Regime("_expand_kernel", "ranks below the block (rank mask)", lambda f: f["rank_masked"], MIN),
    ]
    from lora_verify.ops import RANK_LIMIT

    blocks = sorted({expand.expand_blocks(r)[1] for r in range(1, RANK_LIMIT + 1)})  # the ranks the CPU suite draws
    out += [Regime("_expand_kernel", f"rank block BLOCK_K {b}", lambda f, b=b: f["block_k"] == b, MIN) for b in blocks]
    out += [
        Regime("_count_kernel", "last chunk padded", lambda f: f["chunk_padded"], MIN),
        Regime("_count_kernel", "slots padded to SLOTS", lambda f: f["slots_padded"], MIN),
        Regime("_route_kernel", "segments in one chunk (counted in place)", lambda f: f["one_chunk"], MIN),
        Regime("_route_kernel", "slots padded to SLOTS", lambda f: f["slots_padded"], MIN),
        Regime("_route_kernel", "chunk counts in one step", lambda f: f["count_steps"] == 1, MIN),
        Regime("_route_kernel", "chunk counts in several steps", lambda f: f["count_steps"] > 1, MIN),
        Regime("_route_kernel", "last step of chunk counts padded", lambda f: f["count_steps_padded"], MIN),
        Regime("_route_kernel", "a slot's segments in several chunks", lambda f: f["slot_across_chunks"], MIN),
        Regime("_route_kernel", "an empty segment", lambda f: f["empty_segment"], MIN),
        Regime("_route_kernel", "an absent slot", lambda f: f["absent_slot"], MIN),
        Regime("_route_kernel", "segments sharing a slot", lambda f: f["shared_slot"], MIN),
        Regime("_route_kernel", "rows past the live count", lambda f: f["past_live"], MIN),
        Regime("_route_kernel", "a segment of several permutation steps", lambda f: f["long_segment"], MIN),
        Regime("_route_kernel", "a slot of more than ROWS_PER_STEP tiles", lambda f: f["long_slot"], MIN),
        Regime("_route_kernel", "idle rows zeroed", lambda f: f["idle_rows"], MIN),
        Regime("_route_kernel", "idle rows zeroed in several steps", lambda f: f["zeroing_steps"] > 1, MIN),
    ]
    return out


REGIMES = _regimes()


def taken(launches) -> set:
    """The keys of the regimes that at least one of ``launches`` took."""
    return {r.key for r in REGIMES for launch in launches if launch.kernel == r.kernel and r.holds(launch.facts)}


def coverage_rows(counts: dict) -> list:
    """``(regime, examples, minimum)`` per declared regime, in declaration order."""
    return [(r, counts.get(r.key, 0), r.minimum) for r in REGIMES]


def shortfalls(counts: dict) -> list:
    return [r.key for r, n, minimum in coverage_rows(counts) if n < minimum]


def format_coverage(counts: dict, enforced: bool) -> list:
    lines = [f"{'kernel':<20} {'regime':<46} {'examples':>8} {'min':>4}  status"]
    for r, n, minimum in coverage_rows(counts):
        status = "ok" if n >= minimum else ("BELOW MINIMUM" if enforced else "below minimum (not enforced)")
        lines.append(f"{r.kernel:<20} {r.name:<46} {n:>8} {minimum:>4}  {status}")
    return lines
