"""Mutants generated mechanically from the AST of impl's kernels: every ``@triton.jit`` function, routing's host code.

Beside the hand-written catalogue (``lora_verify/mutants.py``: bugs someone thought of), every operator of
these classes in that code becomes one mutant:

- ``cmp``: a comparison flipped at its boundary: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``;
- ``mask``: ``mask=`` dropped from a ``tl.load``/``tl.store`` (with ``other=``, which Triton refuses alone);
- ``exit``: an early exit dropped (the ``return`` of an ``if`` made ``pass``), or its condition negated;
- ``other``: a masked load's ``other=`` changed (0 -> 1, anything else -> 0);
- ``arith``: ``+`` <-> ``-`` in a binary operation;
- ``augassign``: ``+=`` turned into ``=``.

Each is an edit of the file's text at the operator's position (the rest of the file, comments included, is
kept), named stably as ``<file stem>.<function>.L<line>.<class>.<index>`` (``index`` counts the class's
mutants on that line). :class:`GeneratedMutant` has the hand catalogue's interface, so ``lora_verify/mutate.py``
runs both the same way. ``EQUIVALENT`` holds the mutants no input of the contract can tell from the original,
each with the reason; a name there that is generated no more fails loudly (:func:`generate`).
"""

import ast
import random
import re
from dataclasses import dataclass
from pathlib import Path

SOURCES = {  # file -> which functions: "jit" (every @triton.jit one) or a list of host functions besides them
    "impl/segments.py": (),
    "impl/shrink.py": (),
    "impl/expand.py": (),
    "impl/routing.py": ("count_chunks", "route", "sort_by_adapter"),
}
CLASSES = ("cmp", "mask", "exit", "other", "arith", "augassign")
FLIP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
SWAP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+")}
OOB = "could read or write out of bounds"  # what a dropped mask risks; the GPU runs these under memcheck


@dataclass(frozen=True)
class GeneratedMutant:
    name: str
    file: str
    line: int
    cls: str  # one of CLASSES
    edits: tuple  # ((byte start, byte end, original bytes, replacement bytes), ...), ascending
    what: str
    equivalent: str = ""
    quick: bool = False

    def planted(self, text: str) -> str:
        """``text`` (the source of ``file``) with the edit made; the original bytes must be where they were."""
        data = text.encode()
        for start, end, original, _ in self.edits:
            assert data[start:end] == original, (
                f"mutant {self.name}: {data[start:end]!r} at bytes {start}:{end} of {self.file}, expected {original!r}"
            )
        for start, end, _, replacement in reversed(self.edits):
            data = data[:start] + replacement + data[end:]
        return data.decode()

    def apply(self, root: Path) -> None:
        path = root / self.file
        path.write_text(self.planted(path.read_text()))

    @property
    def out_of_bounds(self) -> bool:
        """A mutant whose bug may be a stray access only (dropped mask, mask or exit condition changed):
        the GPU half runs it under compute-sanitizer's memcheck."""
        return self.cls in ("mask", "exit", "cmp")


def _is_jit(fn: ast.FunctionDef) -> bool:
    return any(ast.unparse(d).endswith("jit") for d in fn.decorator_list)


class _Source:
    """A file's bytes with (line, column) -> byte offset (ast's columns are UTF-8 byte offsets)."""

    def __init__(self, text: str):
        self.data = text.encode()
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def start(self, node) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)

    def operator(self, lo: int, hi: int, op: str) -> tuple:
        """Byte span of the operator ``op`` between two operands (bytes ``lo:hi``), where only it, parentheses,
        white space, line continuations and comments may sit."""
        segment = re.sub(rb"#[^\n]*", lambda m: b" " * len(m.group()), self.data[lo:hi])
        found = [(m.start(), m.group()) for m in re.finditer(rb"[^\s()\\]+", segment)]
        assert [tok for _, tok in found] == [op.encode()], f"{op!r} not alone in {self.data[lo:hi]!r}"
        return lo + found[0][0], lo + found[0][0] + len(op.encode())


def _keyword_span(src: _Source, call: ast.Call, name: str) -> tuple:
    """Bytes of ``, name=value`` in ``call`` (from the end of the argument before it)."""
    items = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
    index = next(i for i, k in enumerate(items) if isinstance(k, ast.keyword) and k.arg == name)
    assert index > 0, "a keyword argument after the pointer"
    return src.end(items[index - 1]), src.end(items[index])


def _tl_call(node, names) -> bool:
    f = node.func if isinstance(node, ast.Call) else None
    return isinstance(f, ast.Attribute) and f.attr in names and isinstance(f.value, ast.Name) and f.value.id == "tl"


def _edits_of(src: _Source, fn: ast.FunctionDef, jit: bool):
    """``(class, line, edits, what)`` for every mutation point of ``fn``."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                if type(op) in FLIP:
                    old, new = FLIP[type(op)]
                    lo, hi = src.operator(src.end(left), src.start(right), old)
                    yield "cmp", node.lineno, ((lo, hi, old.encode(), new.encode()),), f"`{old}` -> `{new}`"
                left = right
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAP:
            old, new = SWAP[type(node.op)]
            lo, hi = src.operator(src.end(node.left), src.start(node.right), old)
            yield "arith", node.lineno, ((lo, hi, old.encode(), new.encode()),), f"`{old}` -> `{new}`"
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            lo, hi = src.operator(src.end(node.target), src.start(node.value), "+=")
            yield "augassign", node.lineno, ((lo, hi, b"+=", b"="),), "`+=` -> `=`"
        elif isinstance(node, ast.If) and [type(s) for s in node.body] == [ast.Return] and not node.orelse:
            ret = node.body[0]
            lo, hi = src.start(ret), src.end(ret)
            yield "exit", node.lineno, ((lo, hi, src.data[lo:hi], b"pass"),), "early exit dropped"
            lo, hi = src.start(node.test), src.end(node.test)
            test = src.data[lo:hi]
            yield "exit", node.lineno, ((lo, hi, test, b"not (" + test + b")"),), "early exit's condition negated"
        elif jit and _tl_call(node, ("load", "store")):
            keywords = {k.arg: k for k in node.keywords}
            if "mask" in keywords:
                spans = sorted(_keyword_span(src, node, k) for k in ("mask", "other") if k in keywords)
                edits = tuple((lo, hi, src.data[lo:hi], b"") for lo, hi in spans)
                yield "mask", node.lineno, edits, f"`mask=` dropped from tl.{node.func.attr}"
            other = keywords.get("other")
            if other is not None:
                lo, hi = src.start(other.value), src.end(other.value)
                value = ast.literal_eval(other.value)
                new = ("1.0" if isinstance(value, float) else "1") if value == 0 else "0"
                yield "other", node.lineno, ((lo, hi, src.data[lo:hi], new.encode()),), (
                    f"`other={src.data[lo:hi].decode()}` -> `other={new}`"
                )


def generate(root: Path) -> list:
    """Every generated mutant of the tree at ``root``, in file and source order."""
    out, names = [], set()
    for file, host in SOURCES.items():
        text = (root / file).read_text()
        src, tree, stem = _Source(text), ast.parse(text), Path(file).stem
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef) or not (_is_jit(fn) or fn.name in host):
                continue
            counts = {}
            for cls, line, edits, what in sorted(_edits_of(src, fn, _is_jit(fn)), key=lambda e: (e[2][0][0], e[0])):
                index = counts[(line, cls)] = counts.get((line, cls), -1) + 1
                name = f"{stem}.{fn.name}.L{line}.{cls}.{index}"
                code = text.splitlines()[line - 1].strip()
                out.append(GeneratedMutant(name, file, line, cls, edits, f"{what} in `{code[:80]}`",
                                           EQUIVALENT.get(name, "")))
                names.add(name)
    stale = sorted(set(EQUIVALENT) - names)
    assert not stale, f"EQUIVALENT names mutants that are generated no more (impl changed?): {stale}"
    return out


def sample(mutants: list, size: int, seed: int) -> list:
    """A seeded sample of ``size`` mutants (in their order): the same names for the same tree and seed."""
    if size >= len(mutants):
        return list(mutants)
    chosen = set(random.Random(seed).sample(range(len(mutants)), size))
    return [m for i, m in enumerate(mutants) if i in chosen]


EQUIVALENT = {  # name -> why no input of the contract can tell it from the original (docs/mutants.md)
    "expand._columns.L112.other.0": (
        "base's masked lanes read 1.0 instead of 0.0: they are the lanes off the row or column mask, and the store "
        "of their result uses the same mask (out_mask): nothing of them is written"
    ),
    "routing._segments.L37.other.0": (
        "a segment's start on the lanes past the sentinel (idx > num_segments) reads 1 instead of 0: its only uses are "
        "`rows`, which tl.where sets to 0 on those lanes, and _write_segment's start of its own segment s <= "
        "num_segments, a lane the mask keeps"
    ),
    "routing._segments.L38.other.0": (
        "a segment's end on the lanes not real (idx >= num_segments) reads 1 instead of 0: tl.where(real, ..., "
        "num_tokens) replaces every such lane by num_tokens"
    ),
    "routing._segments.L40.other.0": (
        "a segment's slot on the lanes not real reads 1 instead of 0: tl.where(real, ..., num_slots) replaces every "
        "such lane by num_slots"
    ),
    "routing.count_chunks.L214.arith.0": (
        "CHUNK from num_segments - 1 instead of + 1: it is only the width of the chunks the segments are taken in, "
        "at least 1 by max(1, ...) and a power of two either way, and the chunk count follows from it "
        "(cdiv(num_segments + 1, chunk)); narrower chunks, or two where one would do, give the same sums"
    ),
    "shrink._shrink_rows.L69.other.0": (
        "W's masked lanes read 1.0 instead of 0.0: past K they meet x lanes masked to 0.0 (the same k mask), adding"
        " 0 * 1; past the slot's columns they only feed accumulator columns whose store is masked (n_mask)"
    ),
    "shrink._shrink_kernel.L128.other.0": (
        "a tile past the table gets slot 0 instead of -1; its row count is 0 there (other=0), so the call's "
        "condition (live > 0) fails, and every later tile of the group is past the table too: `previous` is never "
        "compared with a live tile's slot"
    ),
    "shrink._shrink_kernel.L129.other.0": (
        "a tile with no rows gets n_valid = stack_num instead of 0; the call's condition needs live > 0, so n_valid"
        " of such a tile is never used"
    ),
    "shrink._shrink_kernel.L135.cmp.0": (
        "live >= 0 instead of live > 0: a tile with no rows passes that term, but its n_valid is 0 (the rank's load"
        " is masked by live > 0, other=0), so n_tile * BLOCK_N < n_valid fails: no call"
    ),
    "shrink._sum_splits_kernel.L215.other.0": (
        "the first partial's masked lanes read 1.0 instead of 0.0: they are the lanes past the live rows, and the "
        "store uses the same mask (live): nothing of them is written"
    ),
    "shrink._sum_splits_kernel.L217.other.0": (
        "a later partial's masked lanes read 1.0 instead of 0.0: lanes past the live rows are never stored, and a "
        "padded split (s >= splits) is dropped by the tl.where on s < splits that follows"
    ),
    "shrink._sum_splits_kernel.L218.cmp.0": (
        "s <= splits instead of <: the one padded split s == splits is added, as 0.0 (its load is masked by "
        "s < splits); total + 0.0 == total unless total is -0.0, and no partial of a defined cell is: each is a "
        "float32 sum started at +0.0 (tl.zeros), and a round-to-nearest sum is -0.0 only when both terms are (the "
        "partials no program writes, as torch.empty left them, are of cells past stack_num*r: undefined)"
    ),
    "shrink._shrink_kernel.L135.cmp.2": (
        "n_tile * BLOCK_N <= n_valid instead of <: the one extra column tile starts at n_valid, so its column mask "
        "is all false: W is not read, no partial is stored"
    ),
    "shrink._shrink_kernel.L175.cmp.0": (
        "rows_left < 0 instead of <= 0: a program with no rows runs on, but its row mask is all false, so x is not "
        "read and the partials' store is masked; its W loads stay in a valid slot's weights (an idle table tile is "
        "slot 0; without a table the slot is its segment's)"
    ),
    "shrink._shrink_kernel.L175.cmp.1": (
        "n_tile * BLOCK_N > n_valid instead of >=: the program whose column tile starts at n_valid runs on with an "
        "all-false column mask: W is not read, no partial is stored"
    ),
    "expand._expand_kernel.L72.cmp.1": (
        "rows_left < 0 instead of <= 0: a program with no rows runs on with an all-false row mask: x, base and the "
        "output are masked; W is read from a valid slot (an idle table tile is slot 0; without a table its "
        "segment's), and nothing is stored"
    ),
    "expand._expand_kernel.L74.cmp.0": (
        "n_first * BLOCK_N > n_width instead of >=: when equal, n_end = min(n_first + group_size, cdiv(n_width, "
        "BLOCK_N)) = n_first, so the column loop runs no iteration: only x and the scaling are read"
    ),
    "expand._expand_kernel.L74.exit.1": (
        "without the exit a program whose first column tile is past its slice's width reaches a column loop whose "
        "end, min(n_first + group_size, cdiv(n_width, BLOCK_N)), is at or before n_first: no iteration, nothing "
        "stored"
    ),
    "expand._expand_kernel.L79.other.0": (
        "x's masked lanes read 1.0 instead of 0.0: past the rank they meet W lanes that are 0.0 on both load paths "
        "(tl.where on the rank mask, or the load's mask), adding 1 * 0; rows off the row mask feed only outputs "
        "whose store is masked"
    ),
    "expand._columns.L106.other.0": (
        "W's column-masked lanes read 1.0 instead of 0.0 (the rank's lanes are zeroed by the tl.where after the "
        "load): they feed only accumulator columns past the slice's width, whose store is masked (n_mask)"
    ),
    "expand._columns.L108.other.0": (
        "W's masked lanes read 1.0 instead of 0.0: past the rank they meet x lanes masked to 0.0 (the same rank "
        "mask), adding 0 * 1; past the slice's width they feed only columns whose store is masked"
    ),
    "segments.table_block.L100.other.0": (
        "tiles past the table get slot 0 instead of -1; their row count is 0 there, so their lanes are off in the "
        "row mask, and the grouped shrink uses the slots only and-ed with that mask"
    ),
    "segments.table_block.L101.other.0": (
        "masked-off lanes take row 1 instead of 0; every use of a row is and-ed with the same row mask"
    ),
    "shrink._shrink_rows.L68.other.0": (
        "x's masked lanes read 1.0 instead of 0.0: past K they meet W lanes masked to 0.0 (the same k mask), "
        "adding 1 * 0; in rows off the row mask they only feed accumulator rows whose store is masked"
    ),
    "segments.table_block.L98.other.0": (
        "tiles past the table get start 1 instead of 0; their row mask (pos % BLOCK_S < their row count, 0 past "
        "the table) is false, so the permutation is not read for them and their rows are never used"
    ),
    "segments.table_block.L99.other.0": (
        "tiles past the table get a row count of 1 instead of 0, so one lane each is on in the block's row mask; "
        "but those lanes carry slot -1 and the grouped shrink (table_block's only caller) uses the mask only "
        "and-ed with slots == slot for the slot of a live tile (>= 0): they take part in no load of x and no store"
    ),
    "segments.program_rows.L81.other.0": (
        "the table path's masked-off lanes take row 1 instead of 0; those lanes are off in the row mask the "
        "kernels use for every load of x and every store, so the row is never used"
    ),
    "segments.program_rows.L87.arith.0": (
        "without a tile table rows_left only decides the early exits (shrink's and expand's); seg_len + "
        "row_tile * BLOCK_S keeps programs past their segment running, but their row mask (offs < seg_len, "
        "from segment_rows) is all false, so they load no x and store nothing: only work is added"
    ),
    "segments.program_tile.L23.other.0": (
        "the lanes the load masks off (idx >= num_segments) take 1 instead of 0, and both sums over them mask "
        "those lanes again (idx < num_segments; idx == seg < num_segments): the values are never used"
    ),
    "segments.segment_rows.L48.other.0": (
        "a position past the live count reads row 1 instead of 0; such a position is past its segment's length "
        "too (a segment ends at or before the live count), so its row mask is false and every load and store "
        "through that row is masked: the row is never used"
    ),
    "segments.program_tile.L23.cmp.0": (
        "the mask idx <= num_segments also loads seg_indptr[num_segments], an element the contract gives "
        "(num_segments + 1 entries); the sum that finds the program's segment masks it again (idx < "
        "num_segments) and the segment's start is picked at idx == seg < num_segments: the value is never used"
    ),
    "shrink._shrink_kernel.L175.exit.1": (
        "the exit only saves work: without it a program with no rows left has an all-false row mask and one past "
        "the slot's columns an all-false column mask, so every load it makes of x is masked, its W loads stay in "
        "the slot's own (valid) weights, and its one store (the partials) is masked: the same cells are written"
    ),
}
