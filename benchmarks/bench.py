#!/usr/bin/env python3
"""Times the segmented LoRA kernels on one GPU, in one run, against their memory roofline.

For every operation and shape of the grid it times, under CUDA-graph replay
(``triton.testing.do_bench_cudagraph``, median):

- ``ours sorted`` / ``ours unsorted``: ``impl``'s kernels on the sorted-by-adapter and per-sequence layouts
  (routing is done before the timed region; it is timed on its own, as op ``routing``);
- ``sglang sorted`` / ``sglang unsorted``: sglang's kernels through ``adapters.sglang`` (skipped, with the
  reason, when that module cannot be imported);
- ``torch gather+bmm``: ``weights[slot of each token]`` gathered, then ``torch.bmm``;
- ``empty kernel``: an empty ``@triton.jit`` kernel launched on each grid our sorted path launches (the launch
  floor: shrink is two kernels, the split-K partials and their sum).

The roofline is the bytes the operation must move (see ``bytes_moved``) over the copy bandwidth measured in
the same run. Writes ``results_<gpu>.md`` (header + tables), ``results_<gpu>.json`` and ``results_<gpu>.png``
under ``--out`` (default: this folder) and prints a summary table last.

    python benchmarks/bench.py                      # the whole grid (GPU, a few minutes)
    python benchmarks/bench.py --quick --out /tmp/b # three shapes
    TRITON_INTERPRET=1 python benchmarks/bench.py --dry-run            # builds every batch, no timing (CPU)
    TRITON_INTERPRET=1 python benchmarks/bench.py --dry-run --tiny     # tiny dims, calls every implementation once
    python benchmarks/bench.py --from-json benchmarks/results_X.json   # re-renders the table and plot
"""

import argparse
import datetime
import importlib
import json
import os
import re
import shlex
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import triton

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
DTYPE = torch.bfloat16

# The grid of the issue (decode: one token per sequence) and a few prefill shapes.
DECODE_BATCHES = (64, 256, 1024)
DECODE_ADAPTERS = (1, 8, 64)
DECODE_RANKS = (16, 64)
PREFILL = ((1, 2048, 1, 64), (4, 512, 4, 64), (16, 512, 8, 16))  # (sequences, tokens each, adapters, rank)

IMPLS = ("empty kernel", "ours sorted", "ours unsorted", "sglang sorted", "sglang unsorted", "torch gather+bmm")
SHORT = {
    "ours sorted": "sorted",
    "ours unsorted": "unsorted",
    "sglang sorted": "sgl-sort",
    "sglang unsorted": "sgl-unsort",
    "torch gather+bmm": "torch",
    "empty kernel": "floor",
}


@dataclass(frozen=True)
class Dims:
    hidden: int  # K of every shrink, N of the plain expand
    q: int
    kv: int
    gate_up: int  # each of the two slices of gate/up


REAL = Dims(hidden=4096, q=4096, kv=1024, gate_up=14336)  # a Llama-3-8B-like layer
TINY = Dims(hidden=64, q=64, kv=32, gate_up=48)


@dataclass(frozen=True)
class Op:
    name: str
    entry: str  # the entry point (SPEC.md)
    stack: int  # shrink: stack_num; expand: number of slices

    @property
    def is_shrink(self) -> bool:
        return self.entry == "sgemm_lora_a_fwd"

    def slices(self, dims: Dims):
        return {
            "expand": [dims.hidden],
            "qkv_expand": [dims.q, dims.kv, dims.kv],
            "gate_up_expand": [dims.gate_up, dims.gate_up],
        }[self.name]


OPS = {
    "shrink": Op("shrink", "sgemm_lora_a_fwd", 1),
    "expand": Op("expand", "sgemm_lora_b_fwd", 1),
    "qkv_shrink": Op("qkv_shrink", "sgemm_lora_a_fwd", 3),
    "qkv_expand": Op("qkv_expand", "qkv_lora_b_fwd", 3),
    "gate_up_shrink": Op("gate_up_shrink", "sgemm_lora_a_fwd", 2),
    "gate_up_expand": Op("gate_up_expand", "gate_up_lora_b_fwd", 2),
}
OP_GROUPS = {
    "shrink": ["shrink"],
    "expand": ["expand"],
    "qkv": ["qkv_shrink", "qkv_expand"],
    "gate_up": ["gate_up_shrink", "gate_up_expand"],
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
    def label(self) -> str:
        batch = str(self.seqs) if self.phase == "decode" else f"p{self.seqs}x{self.seq_len}"
        return f"{batch}/{self.adapters}/{self.rank}"


@dataclass
class Row:
    op: str
    impl: str
    phase: str
    batch: int  # sequences
    seq_len: int
    tokens: int
    adapters: int
    rank: int
    bytes: Optional[int] = None
    time_us: Optional[float] = None
    gbps: Optional[float] = None
    roofline_us: Optional[float] = None
    x_roofline: Optional[float] = None
    x_floor: Optional[float] = None
    x_sglang: Optional[float] = None  # time / sglang sorted's time, same op and shape
    rel_err: Optional[float] = None  # max |out - fp32 reference| / max |reference|, one eager call
    grid: Optional[list] = None
    status: str = "ok"  # ok, failed, skipped, dry-run
    note: str = ""

    @property
    def label(self) -> str:
        return Shape("decode" if self.phase == "decode" else "prefill", self.batch, self.seq_len, self.adapters,
                     self.rank).label


# ---------------------------------------------------------------------------------------------------- shapes


def grid_shapes(quick: bool, tiny: bool):
    if tiny:
        decode = [Shape("decode", b, 1, a, 16) for b in (4, 8) for a in (1, 3)]
        prefill = [Shape("prefill", 2, 8, 2, 16)]
    else:
        decode = [Shape("decode", b, 1, a, r) for b in DECODE_BATCHES for a in DECODE_ADAPTERS for r in DECODE_RANKS]
        prefill = [Shape("prefill", s, n, a, r) for s, n, a, r in PREFILL]
    if quick:
        return [decode[0], decode[-1], prefill[1 % len(prefill)]]
    return decode + prefill


def bytes_moved(op: Op, shape: Shape, dims: Dims, present: int, esize: int = 2) -> int:
    """The floor: every byte the operation must read or write once (weights of the adapters present only)."""
    S, R = shape.tokens, shape.rank
    if op.is_shrink:
        K, n = dims.hidden, op.stack * R
        return (S * K + present * n * K + S * n) * esize
    N = sum(op.slices(dims))
    return (S * op.stack * R + present * N * R + 2 * S * N) * esize


def time_us(fn, rep: int) -> float:
    """Median time of ``fn`` in microseconds, under CUDA-graph replay (every timing script uses this)."""
    torch.cuda.synchronize()  # do_bench_cudagraph runs on a stream of its own, which waits for nothing
    return 1e3 * triton.testing.do_bench_cudagraph(fn, rep=rep, return_mode="median")


# ---------------------------------------------------------------------------------------------------- kernels


@triton.jit
def _empty_kernel(ptr):
    pass


class _GridRecorder:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](...)`` appends ``(name, grid)``, launches nothing."""

    def __init__(self, name: str, launches: list):
        self.name, self.launches = name, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.name, tuple(grid(kwargs) if callable(grid) else grid)))

        return launch


def launch_grids(module_name: str, kernel_names, call) -> list:
    """The grids that ``call()`` launches the kernels ``module_name.<name>`` on, in order, found without launching."""
    module = importlib.import_module(module_name)
    originals = {name: getattr(module, name) for name in kernel_names}
    launches = []
    for name in kernel_names:
        setattr(module, name, _GridRecorder(name, launches))
    try:
        call()
    finally:
        for name, original in originals.items():
            setattr(module, name, original)
    missing = set(kernel_names) - {name for name, _ in launches}
    if missing:
        raise RuntimeError(f"{module_name}: {', '.join(sorted(missing))} not launched")
    return [[int(g) for g in grid] + [1] * (3 - len(grid)) for _, grid in launches]


# ---------------------------------------------------------------------------------------------------- one group


class Case:
    """The tensors and batch infos of one operation on one shape (everything outside the timed region)."""

    def __init__(self, impl, op: Op, shape: Shape, dims: Dims, device, seed: int = 0):
        self.op, self.shape, self.dims = op, shape, dims
        gen = torch.Generator(device=device).manual_seed(seed)
        S, R, A = shape.tokens, shape.rank, shape.adapters
        seq_slots = [i % A for i in range(shape.seqs)]
        self.present = len(set(seq_slots))
        self.unsorted = impl.per_sequence([shape.seq_len] * shape.seqs, seq_slots, [R] * A, [1.0] * A, device=device)
        self.sorted = impl.sort_by_adapter(self.unsorted, S)
        self.token_slots = torch.tensor([s for s in seq_slots for _ in range(shape.seq_len)], device=device)

        def randn(*size):
            return torch.randn(*size, generator=gen, device=device, dtype=torch.float32).to(DTYPE)

        if op.is_shrink:
            self.x = randn(S, dims.hidden)
            self.weights = randn(A, op.stack * R, dims.hidden)
            self.offsets, self.out_width = None, op.stack * R
        else:
            widths = op.slices(dims)
            self.x = randn(S, op.stack * R)
            self.weights = randn(A, sum(widths), R)
            bounds = [0]
            for w in widths:
                bounds.append(bounds[-1] + w)
            self.bounds = bounds
            self.offsets = torch.tensor(bounds, dtype=torch.int32, device=device)
            self.out_width = bounds[-1]
            self.base = randn(S, self.out_width)
        self.scalings = self.unsorted.scalings

    @property
    def bytes(self) -> int:
        return bytes_moved(self.op, self.shape, self.dims, self.present, self.x.element_size())

    @property
    def gather_bytes(self) -> int:
        return self.shape.tokens * self.weights[0].numel() * self.weights.element_size()

    def call(self, module, info, base):
        """A zero-argument call of ``module``'s entry point on ``info``; expand ops update ``base`` in place."""
        op, w, x = self.op, self.weights, self.x
        if op.entry == "sgemm_lora_a_fwd":
            return lambda: module.sgemm_lora_a_fwd(x, w, info, op.stack)
        if op.entry == "sgemm_lora_b_fwd":
            return lambda: module.sgemm_lora_b_fwd(x, w, info, base)
        if op.entry == "qkv_lora_b_fwd":
            width = max(self.op.slices(self.dims))
            return lambda: module.qkv_lora_b_fwd(x, w, info, self.offsets, width, base)
        return lambda: module.gate_up_lora_b_fwd(x, w, info, self.dims.gate_up, base)

    def torch_call(self, base):
        """weights[slot of each token] gathered, then one bmm per slice (plain PyTorch)."""
        x, w, idx, R = self.x, self.weights, self.token_slots, self.shape.rank
        if self.op.is_shrink:
            return lambda: torch.bmm(x.unsqueeze(1), w[idx].transpose(1, 2)).squeeze(1)
        scal = self.scalings[idx].to(x.dtype)
        bounds = self.bounds

        def expand():
            gathered = w[idx]
            xs = (x * scal[:, None]).unsqueeze(1)
            for j in range(len(bounds) - 1):
                lo, hi = bounds[j], bounds[j + 1]
                part = torch.bmm(xs[:, :, j * R : (j + 1) * R], gathered[:, lo:hi, :].transpose(1, 2))
                base[:, lo:hi].add_(part.squeeze(1))
            return base

        return expand

    def reference(self):
        """fp32 result, one matmul per adapter present (not timed)."""
        R, x, w = self.shape.rank, self.x.float(), self.weights.float()
        if self.op.is_shrink:
            out = torch.zeros(self.shape.tokens, self.out_width, device=x.device)
        else:
            out = self.base.float().clone()
        for a in range(self.shape.adapters):
            rows = torch.nonzero(self.token_slots == a).flatten()
            if rows.numel() == 0:
                continue
            if self.op.is_shrink:
                out[rows] = x[rows] @ w[a].T
                continue
            s = float(self.scalings[a])
            for j in range(len(self.bounds) - 1):
                lo, hi = self.bounds[j], self.bounds[j + 1]
                out[rows, lo:hi] += s * (x[rows, j * R : (j + 1) * R] @ w[a, lo:hi].T)
        return out


def rel_err(out, ref) -> float:
    scale = ref.abs().max().clamp_min(1e-30)
    return float((out.float() - ref).abs().max() / scale)


# ---------------------------------------------------------------------------------------------------- runner


class Bench:
    def __init__(self, args, device):
        self.args, self.device = args, device
        self.dims = TINY if args.tiny else REAL
        self.start = time.monotonic()
        self.rows: list = []
        self.dead: Optional[str] = None  # set when the CUDA context is lost: nothing more can run
        self.timing = not args.dry_run
        self.calling = not args.dry_run or args.tiny  # dry-run + tiny: every implementation is called once
        self.impl = importlib.import_module("impl")
        self.impl.debug(False)  # LORA_VALIDATE=1 would add host syncs, which a CUDA-graph capture cannot take
        try:
            self.sglang = importlib.import_module("lora_verify.adapters.sglang")
            self.sglang_status = f"adapters.sglang, kernels from {getattr(self.sglang, 'KERNEL_DIR', '?')}"
            self.sglang_reason = ""
        except Exception as exc:  # ImportError, or anything the loader raises on a mismatched sglang
            self.sglang = None
            self.sglang_reason = f"sglang not importable: {type(exc).__name__}: {first_line(exc)}"
            self.sglang_status = f"skipped ({self.sglang_reason})"
        self.copy_gbps: Optional[float] = None
        self.floor_us: Optional[float] = None

    # -- timing primitives

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def over_budget(self) -> bool:
        return self.elapsed() > self.args.budget_s

    def bench(self, fn) -> float:
        return time_us(fn, self.args.rep)

    def measure_copy(self):
        for gib in (1.0, 0.25):
            try:
                n = int(gib * 2**30) // 2
                src = torch.empty(n, dtype=DTYPE, device=self.device).normal_()
                dst = torch.empty_like(src)
                ms = triton.testing.do_bench(lambda d=dst, s=src: d.copy_(s), return_mode="median")
                self.copy_gbps = 2 * n * 2 / (ms * 1e-3) / 1e9  # bytes read + written
                self.copy_note = f"{gib:g} GiB device-to-device copy_, read + write, do_bench median"
                del src, dst
                torch.cuda.empty_cache()
                return
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
        raise RuntimeError("could not allocate a copy buffer of 256 MiB")

    def measure_floor(self):
        ptr = torch.zeros(1, device=self.device)
        self.floor_us = self.bench(lambda: _empty_kernel[(1, 1, 1)](ptr))

    # -- rows

    def new_row(self, op_name: str, impl_name: str, shape: Shape) -> Row:
        row = Row(op_name, impl_name, shape.phase, shape.seqs, shape.seq_len, shape.tokens, shape.adapters,
                  shape.rank)
        self.rows.append(row)
        return row

    def skip_reason(self) -> Optional[str]:
        if self.dead:
            return f"CUDA context lost earlier ({self.dead})"
        if self.timing and self.over_budget():
            return f"time budget of {self.args.budget_s:g} s spent"
        return None

    def guarded(self, row: Row, body):
        """Runs ``body(row)``; a failure marks the row and the run goes on (unless the context is lost)."""
        reason = self.skip_reason()
        if reason:
            row.status, row.note = "skipped", reason
            return
        try:
            body(row)
            if row.status == "ok" and not self.timing:
                row.status = "dry-run"
        except Exception as exc:
            row.status, row.note = "failed", f"{type(exc).__name__}: {first_line(exc)}"
            if self.args.verbose:
                traceback.print_exc()
            if self.device.type == "cuda":
                try:
                    torch.cuda.synchronize()
                except Exception as sync_exc:
                    self.dead = f"{row.op} {row.impl} {row.label}: {first_line(sync_exc)}"

    def check(self, row: Row, fn, ref):
        """One eager call (it also compiles), compared with the fp32 reference; a mismatch of shapes is noted."""
        out = fn()
        try:
            row.rel_err = rel_err(out, ref)
        except RuntimeError as exc:
            row.note = f"check: {first_line(exc)}"

    def time_into(self, row: Row, fn):
        if self.timing:
            row.time_us = self.bench(fn)

    # -- groups

    def run_routing(self, shape: Shape):
        row = self.new_row("routing", "ours sort_by_adapter", shape)

        def body(row):
            seq_slots = [i % shape.adapters for i in range(shape.seqs)]
            ranks, scal = [shape.rank] * shape.adapters, [1.0] * shape.adapters
            batch = self.impl.per_sequence([shape.seq_len] * shape.seqs, seq_slots, ranks, scal, device=self.device)
            if self.calling:
                self.impl.sort_by_adapter(batch, shape.tokens)
            self.time_into(row, lambda: self.impl.sort_by_adapter(batch, shape.tokens))

        self.guarded(row, body)

    def run_group(self, op: Op, shape: Shape):
        rows = {name: self.new_row(op.name, name, shape) for name in IMPLS}
        reason = self.skip_reason()
        if reason:
            for row in rows.values():
                row.status, row.note = "skipped", reason
            return rows
        try:
            case = Case(self.impl, op, shape, self.dims, self.device)
        except Exception as exc:
            for row in rows.values():
                row.status, row.note = "failed", f"building the case: {type(exc).__name__}: {first_line(exc)}"
            return rows
        for row in rows.values():
            row.bytes = case.bytes
        ref = case.reference() if self.calling else None

        def ours_grid(row):
            base = None if op.is_shrink else case.base
            module = "impl.shrink" if op.is_shrink else "impl.expand"
            kernels = ("_shrink_kernel", "_sum_splits_kernel") if op.is_shrink else ("_expand_kernel",)
            row.grid = launch_grids(module, kernels, case.call(self.impl, case.sorted, base))
            ptr = case.x

            def floor():
                for grid in row.grid:
                    _empty_kernel[tuple(grid)](ptr)

            if self.calling:
                floor()
            self.time_into(row, floor)

        self.guarded(rows["empty kernel"], ours_grid)

        def kernel_body(module, info):
            def body(row):
                # a base of its own per implementation: expand ops update it in place at every replay
                base = None if op.is_shrink else case.base.clone()
                if self.calling:
                    self.check(row, case.call(module, info, None if op.is_shrink else case.base.clone()), ref)
                self.time_into(row, case.call(module, info, base))

            return body

        self.guarded(rows["ours sorted"], kernel_body(self.impl, case.sorted))
        self.guarded(rows["ours unsorted"], kernel_body(self.impl, case.unsorted))
        for layout, info in (("sorted", case.sorted), ("unsorted", case.unsorted)):
            row = rows[f"sglang {layout}"]
            if self.sglang is None:
                row.status, row.note = "skipped", self.sglang_reason
            else:
                self.guarded(row, kernel_body(self.sglang, info))

        def torch_body(row):
            base = None if op.is_shrink else case.base.clone()
            if self.calling:
                self.check(row, case.torch_call(None if op.is_shrink else case.base.clone()), ref)
            self.time_into(row, case.torch_call(base))

        row = rows["torch gather+bmm"]
        gib = case.gather_bytes / 2**30
        if gib > self.args.max_gather_gib:
            row.status = "skipped"
            row.note = f"the gather needs {gib:.1f} GiB > --max-gather-gib {self.args.max_gather_gib:g}"
        else:
            self.guarded(row, torch_body)
        return rows

    # -- the run

    def run(self, ops, shapes):
        n_rows = len(shapes) + len(ops) * len(shapes) * len(IMPLS)
        print(f"bench: {len(ops)} ops x {len(shapes)} shapes x {len(IMPLS)} implementations + routing = "
              f"{n_rows} rows; sglang: {self.sglang_status}", flush=True)
        if self.timing:
            for measure in (self.measure_copy, self.measure_floor):
                try:
                    measure()
                except Exception as exc:  # the run goes on without the roofline (or the floor)
                    print(f"bench: {measure.__name__} failed: {type(exc).__name__}: {first_line(exc)}", flush=True)
            print(f"[{self.elapsed():5.1f}s] copy bandwidth {fmt_gbps(self.copy_gbps)}, "
                  f"launch floor (1 program) {fmt_us(self.floor_us)} us", flush=True)
        try:
            for shape in shapes:
                self.run_routing(shape)
            for op in ops:
                for shape in shapes:
                    rows = self.run_group(op, shape)
                    if self.device.type == "cuda" and not self.dead:
                        torch.cuda.empty_cache()  # the group's tensors and graph pools are gone: return the memory
                    print(f"[{self.elapsed():5.1f}s] {op.name:15s} {shape.label:14s} "
                          + " ".join(f"{SHORT[k]} {progress_cell(r)}" for k, r in rows.items()), flush=True)
        except KeyboardInterrupt:
            print("interrupted: writing what was measured", flush=True)
        derive(self.rows, self.copy_gbps, self.floor_us)


def derive(rows, copy_gbps, floor_us):
    """Bandwidth, roofline and the ratios of every row, from the rows of its (op, shape) group."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row.op, row.label), {})[row.impl] = row
    for group in groups.values():
        floor = group.get("empty kernel")
        group_floor = floor.time_us if floor else floor_us  # routing rows: the 1-program floor
        sgl = group.get("sglang sorted")
        sgl_us = sgl.time_us if sgl else None
        for row in group.values():
            row.roofline_us = row.bytes / (copy_gbps * 1e3) if row.bytes and copy_gbps else None
            row.gbps = row.x_roofline = row.x_floor = row.x_sglang = None
            if row.time_us is None:
                continue
            if row.bytes:
                row.gbps = row.bytes / (row.time_us * 1e3)
                if row.roofline_us:
                    row.x_roofline = row.time_us / row.roofline_us
            if group_floor and row.impl != "empty kernel":
                row.x_floor = row.time_us / group_floor
            if sgl_us and row.impl != "empty kernel":
                row.x_sglang = row.time_us / sgl_us


def progress_cell(row: Row) -> str:
    if row.time_us is not None:
        return fmt_us(row.time_us)
    return {"ok": "ok", "dry-run": "ok", "skipped": "skip", "failed": "FAIL"}.get(row.status, row.status)


def first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]


# ---------------------------------------------------------------------------------------------------- output


def fmt_us(v) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_x(v) -> str:
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def fmt_err(v) -> str:
    return "-" if v is None else f"{v:.1e}"


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


TERSE = {"ours sorted": "sorted", "ours unsorted": "unsort", "sglang sorted": "sgl", "sglang unsorted": "sgl-uns",
         "torch gather+bmm": "torch"}


def pivot(rows, markdown: bool) -> list:
    """One line per (op, shape): roofline, launch floor, each implementation's time, two ratios, the worst error.

    The terminal form is terse (its last lines are what a remote run shows): the op heads its block of lines.
    """
    impls = [i for i in IMPLS if i != "empty kernel" and any(r.impl == i and r.time_us is not None for r in rows)]
    if not impls:  # a dry run: show the shapes and bytes
        impls = [i for i in IMPLS if i != "empty kernel" and any(r.impl == i and r.status != "skipped" for r in rows)]
    have_sgl = "sglang sorted" in impls
    names = SHORT if markdown else TERSE
    head = ["shape b/a/r", "MB", "roof", "floor"] + [names[i] for i in impls]
    head += ["sorted/roof", "sorted/sgl"] if markdown else ["x roof", "x sgl"]
    head += ["max err"] if markdown else ["err"]
    if not have_sgl:
        head.remove(head[-2])
    groups: dict = {}
    for row in rows:
        if row.op != "routing":
            groups.setdefault((row.op, row.label), {})[row.impl] = row
    table = []
    for (op, label), g in groups.items():
        any_row = next(iter(g.values()))
        floor = g.get("empty kernel")
        sorted_row = g.get("ours sorted")
        cells = [op, label, f"{any_row.bytes / 1e6:.1f}" if any_row.bytes else "-", fmt_us(any_row.roofline_us),
                 fmt_us(floor.time_us if floor else None)]
        for i in impls:
            r = g.get(i)
            cells.append(fmt_us(r.time_us) if r and r.time_us is not None else (progress_cell(r) if r else "-"))
        cells.append(fmt_x(sorted_row.x_roofline if sorted_row else None))
        if have_sgl:
            cells.append(fmt_x(sorted_row.x_sglang if sorted_row else None))
        errs = [r.rel_err for r in g.values() if r.rel_err is not None]
        cells.append(f"{max(errs):.0e}" if errs else "-")
        table.append(cells)
    if markdown:
        lines = ["| op | " + " | ".join(head) + " |", "|" + "---|" * (len(head) + 1)]
        lines += ["| " + " | ".join(c) + " |" for c in table]
        return lines
    head.remove("MB")
    table = [[c[0]] + c[1:2] + c[3:] for c in table]
    widths = [max(len(h), *(len(c[k + 1]) for c in table)) for k, h in enumerate(head)]

    def line(cells):
        pairs = enumerate(zip(cells, widths, strict=True))
        return " ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in pairs)

    lines = ["times in us; roof = bytes / copy bandwidth; floor = empty kernel on our sorted grid; "
             "x roof = sorted / roof; x sgl = sorted / sgl", line(head)]
    last_op = None
    for cells in table:
        if cells[0] != last_op:
            lines.append(f"-- {cells[0]}")
            last_op = cells[0]
        lines.append(line(cells[1:]))
    routing = [r for r in rows if r.op == "routing"]
    if routing:
        times = " ".join(f"{r.label}={fmt_us(r.time_us) if r.time_us is not None else progress_cell(r)}"
                         for r in routing)
        lines.append(f"-- routing (sort_by_adapter, us): {times}")
    return lines


FULL_COLUMNS = ("op", "impl", "phase", "batch", "tokens", "adapters", "rank", "time us", "GB/s", "roofline us",
                "x roofline", "x floor", "x sglang sorted", "rel err", "grid", "status")


def full_table(rows) -> list:
    lines = ["| " + " | ".join(FULL_COLUMNS) + " |", "|" + "---|" * len(FULL_COLUMNS)]
    for r in rows:
        if r.status == "skipped":
            continue
        status = r.status if not r.note else f"{r.status}: {r.note}"
        cells = [r.op, r.impl, r.phase, str(r.batch), str(r.tokens), str(r.adapters), str(r.rank), fmt_us(r.time_us),
                 "-" if r.gbps is None else f"{r.gbps:.0f}", fmt_us(r.roofline_us), fmt_x(r.x_roofline),
                 fmt_x(r.x_floor), fmt_x(r.x_sglang), fmt_err(r.rel_err),
                 "-" if r.grid is None else "+".join("x".join(map(str, g)) for g in r.grid), status.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def skipped_summary(rows) -> list:
    counts: dict = {}
    for r in rows:
        if r.status == "skipped":
            key = (r.impl, r.note)
            counts[key] = counts.get(key, 0) + 1
    return [f"- {impl}: {n} rows: {note}" for (impl, note), n in counts.items()]


def failed_summary(rows, limit=None) -> list:
    failed = [r for r in rows if r.status == "failed"]
    lines = [f"- {r.op} / {r.impl} / {r.label}: {r.note}" for r in failed]
    return lines[:limit] + ([f"- ... {len(lines) - limit} more"] if limit and len(lines) > limit else [])


def write_markdown(path: Path, rows, meta):
    lines = [
        f"# LoRA kernel benchmark: {meta['gpu']}",
        "",
        f"- date: {meta['date']}",
        f"- GPU: {meta['gpu']} ({meta['device_detail']})",
        f"- torch {meta['torch']}, Triton {meta['triton']}, CUDA {meta['cuda']}, Python {meta['python']}",
        f"- copy bandwidth: {fmt_gbps(meta['copy_gbps'])} ({meta['copy_note']})",
        f"- launch floor: {fmt_us(meta['floor_us'])} us (an empty @triton.jit kernel on a 1x1x1 grid; "
        "column `floor`: the same kernel on our sorted kernel's grid)",
        f"- timing: triton.testing.do_bench_cudagraph, median, rep={meta['rep_ms']} ms; L2 is not flushed",
        f"- sglang: {meta['sglang']}",
        f"- dims: {meta['dims']}; dtype bf16; scalings 1.0; slot of sequence i = i % adapters",
        f"- command: `{meta['command']}` (from the repository root; {meta['elapsed_s']:.0f} s)",
        "",
        "Times in us. `shape b/a/r`: batch (sequences; `pNxL` = N prefill sequences of L tokens) / adapters / "
        "rank. `MB`: bytes the operation must move; `roof`: MB over the copy bandwidth; `sorted/roof`, "
        "`sorted/sgl`: our sorted kernel's time over the roofline, over sglang's sorted kernel.",
        "",
        "## Summary",
        "",
        *pivot(rows, markdown=True),
        "",
        "## Routing (per-sequence to sorted layout, `impl.sort_by_adapter`, timed on its own)",
        "",
        "| shape b/a/r | tokens | time us | status |",
        "|---|---|---|---|",
        *[f"| {r.label} | {r.tokens} | {fmt_us(r.time_us)} | {r.status} {r.note} |" for r in rows if r.op == "routing"],
        "",
        "## All rows",
        "",
        "`rel err`: max |out - fp32 reference| / max |reference| of one eager call (bf16 output: ~4e-3 expected).",
        "",
        *full_table([r for r in rows if r.op != "routing"]),
        "",
    ]
    skipped = skipped_summary(rows)
    if skipped:
        lines += ["## Skipped", "", *skipped, ""]
    failed = failed_summary(rows)
    if failed:
        lines += ["## Failed", "", *failed, ""]
    path.write_text("\n".join(lines))


def fmt_gbps(v) -> str:
    return "-" if v is None else f"{v:.0f} GB/s"


def write_plot(path: Path, rows, meta) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"plot skipped: {exc}"
    timed = [r for r in rows if r.time_us is not None and r.op != "routing"]
    if not timed:
        return "plot skipped: nothing timed"
    ops = [o for o in OPS if any(r.op == o for r in timed)]
    bars = [i for i in ("ours sorted", "ours unsorted", "sglang sorted", "sglang unsorted", "torch gather+bmm")
            if any(r.impl == i for r in timed)]
    colors = {"ours sorted": "#1f77b4", "ours unsorted": "#9ecae1", "sglang sorted": "#d62728",
              "sglang unsorted": "#f4a6a6", "torch gather+bmm": "#7f7f7f"}
    fig_h = 3.4 * len(ops) + 1.0
    fig, axes = plt.subplots(len(ops), 1, figsize=(16, fig_h), squeeze=False)
    for ax, op in zip(axes[:, 0], ops, strict=True):
        group: dict = {}
        for r in rows:
            if r.op == op:
                group.setdefault(r.label, {})[r.impl] = r
        labels = list(group)
        width = 0.8 / max(len(bars), 1)
        for k, impl in enumerate(bars):
            xs, ys = [], []
            for i, label in enumerate(labels):
                r = group[label].get(impl)
                if r is not None and r.time_us is not None:
                    xs.append(i - 0.4 + width * (k + 0.5))
                    ys.append(r.time_us)
            ax.bar(xs, ys, width, label=impl, color=colors[impl])
        for i, label in enumerate(labels):
            any_row = next(iter(group[label].values()))
            if any_row.roofline_us:
                ax.hlines(any_row.roofline_us, i - 0.45, i + 0.45, colors="black", linewidth=2,
                          label="roofline (bytes / copy bw)" if i == 0 else None)
            floor = group[label].get("empty kernel")
            if floor is not None and floor.time_us is not None:
                ax.hlines(floor.time_us, i - 0.45, i + 0.45, colors="green", linestyles="dashed", linewidth=1.5,
                          label="launch floor (empty kernel, sorted grid)" if i == 0 else None)
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("time (us)")
        ax.set_title(f"{op} (batch/adapters/rank; pNxL = prefill)", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, 1 - 0.25 / fig_h))
    fig.suptitle(f"LoRA kernels on {meta['gpu']} (bf16, CUDA-graph replay, median); copy bw "
                 f"{fmt_gbps(meta['copy_gbps'])}", fontsize=12, y=1 - 0.05 / fig_h)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.8 / fig_h))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot: {path}"


def write_outputs(out_dir: Path, slug: str, rows, meta) -> list:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"results_{slug}"
    json_path, md_path, png_path = (stem.with_suffix(s) for s in (".json", ".md", ".png"))
    json_path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    write_markdown(md_path, rows, meta)
    notes = [f"table: {md_path}", f"json: {json_path}"]
    try:
        notes.append(write_plot(png_path, rows, meta))
    except Exception as exc:
        notes.append(f"plot failed: {type(exc).__name__}: {first_line(exc)}")
    return notes


def print_summary(rows, meta, notes):
    print()
    for line in pivot(rows, markdown=False):
        print(line)
    counts: dict = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(f"GPU {meta['gpu']}; copy {fmt_gbps(meta['copy_gbps'])}; launch floor {fmt_us(meta['floor_us'])} us; "
          f"sglang: {meta['sglang'][:200]}")
    for line in skipped_summary(rows)[:4]:
        print("skipped " + line[2:][:120])
    for line in failed_summary(rows, limit=6):
        print("FAILED " + line[2:][:300])
    print(f"rows: {len(rows)} ({', '.join(f'{n} {s}' for s, n in counts.items())}); "
          f"{meta['elapsed_s']:.0f} s; " + "; ".join(notes))


# ---------------------------------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/)")
    p.add_argument("--quick", action="store_true", help="three shapes only (a smoke test)")
    p.add_argument("--ops", default="shrink,expand,qkv,gate_up",
                   help="comma-separated: shrink, expand, qkv (= qkv_shrink + qkv_expand), gate_up, or single ops")
    p.add_argument("--dry-run", action="store_true", help="build every batch, compute bytes and grids; no timing")
    p.add_argument("--tiny", action="store_true",
                   help="tiny dims and shapes; with --dry-run, calls every implementation once (interpreter test)")
    p.add_argument("--rep", type=int, default=20, help="do_bench_cudagraph rep in ms (default 20)")
    p.add_argument("--budget-s", type=float, default=270.0,
                   help="no new timing starts after this many seconds; the rest is reported skipped (default 270)")
    p.add_argument("--max-gather-gib", type=float, default=8.0,
                   help="skip the torch baseline when its gathered weights exceed this (default 8)")
    p.add_argument("--from-json", type=Path, default=None, help="re-render the table and plot of a saved run")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed rows")
    return p.parse_args(argv)


def select_ops(spec: str):
    names = []
    for part in [s.strip() for s in spec.split(",") if s.strip()]:
        if part in OP_GROUPS:
            names += OP_GROUPS[part]
        elif part in OPS:
            names.append(part)
        else:
            raise SystemExit(f"--ops: unknown {part!r}; expected some of {', '.join([*OP_GROUPS, *OPS])}")
    return [OPS[n] for n in dict.fromkeys(names)]


def command_line() -> str:
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def from_json(args):
    data = json.loads(args.from_json.read_text())
    rows = [Row(**r) for r in data["rows"]]
    meta = data["meta"]
    derive(rows, meta.get("copy_gbps"), meta.get("floor_us"))
    out_dir = args.out or args.from_json.parent
    notes = write_outputs(out_dir, meta["slug"], rows, meta)
    print_summary(rows, meta, notes)


def main(argv=None):
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.from_json:
        return from_json(args)
    ops = select_ops(args.ops)
    if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        device = torch.device("cuda")
    elif args.dry_run:
        device = torch.device("cpu")
    else:
        raise SystemExit("bench: timing needs a CUDA GPU (and TRITON_INTERPRET unset); use --dry-run on CPU")
    shapes = grid_shapes(args.quick, args.tiny)
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        try:  # makes the interpreter's bf16 dot compute as the GPU does, so that `rel err` means something here
            from lora_verify.interpreter import bf16 as interpreter_bf16

            interpreter_bf16.install()
        except ImportError as exc:
            print(f"bench: interpreter bf16 fix not installed ({exc}); rel err of our kernels is meaningless")
    bench = Bench(args, device)
    bench.run(ops, shapes)

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    slug = slugify(gpu) + ("_quick" if args.quick else "") + ("_tiny" if args.tiny else "")
    if args.dry_run:
        slug += "_dry-run"
    detail = "-"
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        detail = f"{prop.multi_processor_count} SMs, {prop.total_memory / 2**30:.0f} GiB, sm_{prop.major}{prop.minor}"
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": gpu,
        "slug": slug,
        "device_detail": detail,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "copy_gbps": bench.copy_gbps,
        "copy_note": getattr(bench, "copy_note", "not measured (dry run)"),
        "floor_us": bench.floor_us,
        "rep_ms": args.rep,
        "sglang": bench.sglang_status,
        "dims": asdict(bench.dims),
        "command": command_line(),
        "elapsed_s": bench.elapsed(),
        "dry_run": args.dry_run,
    }
    if args.dry_run and args.out is None:
        notes = ["dry run: no files written (pass --out to write them)"]
    else:
        notes = write_outputs(args.out or HERE, slug, bench.rows, meta)
    print_summary(bench.rows, meta, notes)
    if args.dry_run:
        print(f"dry run: {len(bench.rows)} rows built "
              f"({sum(r.status == 'failed' for r in bench.rows)} failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
