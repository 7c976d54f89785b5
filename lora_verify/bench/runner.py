"""Runs the grid: every contender on every (layer, operation, shape), and routing per batch, into rows.

Per group it builds the case once and computes the float64 reference of its sampled rows once; then, per
contender, one eager call (it also compiles) is checked against the reference under the contender's
rounding model, and the same call is timed (each contender has an output buffer of its own). A row that
raises is marked failed and the run goes on; a lost CUDA context stops the timing (the rest is reported
skipped). No new timing starts after the time budget: the rows left are reported skipped, so that a run
always ends and writes its files.
"""

import time
import traceback
from dataclasses import dataclass
from typing import Optional

import torch

from lora_verify.bench import inputs
from lora_verify.bench.peers import Skip, first_line
from lora_verify.bench.results import Row, derive
from lora_verify.bench.roofline import bytes_moved
from lora_verify.bench.tables import cell
from lora_verify.bench.timing import copy_bandwidth, launch_floor, time_us


@dataclass
class Mode:
    timing: bool  # time every row (GPU)
    calling: bool  # call every implementation once (and check it, unless warming)
    checking: bool = True
    rep: int = 10  # ms of calls per replay
    budget_s: float = 270.0
    verbose: bool = False


class Runner:
    def __init__(self, contenders, mode: Mode, device, log=print, start: Optional[float] = None):
        """``start``: the ``time.monotonic()`` the budget counts from (default: now)."""
        self.contenders, self.mode, self.device, self.log = contenders, mode, device, log
        self.start = time.monotonic() if start is None else start
        self.rows: list = []
        self.dead: Optional[str] = None  # set when the CUDA context is lost: nothing more can run
        self.copy_gbps: Optional[float] = None
        self.copy_note = "not measured"
        self.floor_us: Optional[float] = None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def skip_reason(self) -> Optional[str]:
        if self.dead:
            return f"CUDA context lost earlier ({self.dead})"
        if self.mode.timing and self.elapsed() > self.mode.budget_s:
            return f"time budget of {self.mode.budget_s:g} s spent"
        return None

    def new_row(self, op: str, layer: str, impl_name: str, kind: str, shape, rank: int) -> Row:
        row = Row(op, layer, impl_name, kind, shape.phase, shape.seqs, shape.seq_len, shape.tokens, shape.adapters,
                  rank)
        self.rows.append(row)
        return row

    def guarded(self, row: Row, body):
        """Runs ``body(row)``; an exception marks the row failed (Skip: skipped) and the run goes on."""
        reason = self.skip_reason()
        if reason:
            row.status, row.note = "skipped", reason
            return
        try:
            body(row)
        except Skip as why:
            row.status, row.note = "skipped", str(why)
        except Exception as exc:
            row.status, row.note = "failed", first_line(exc)
            if self.mode.verbose:
                traceback.print_exc()
            if self.device.type == "cuda":
                try:
                    torch.cuda.synchronize()
                except Exception as sync_exc:
                    self.dead = f"{row.op} {row.impl} {row.label}: {first_line(sync_exc)}"

    def time_into(self, row: Row, fn):
        """Under CUDA-graph replay; where the capture fails, eagerly (marked, with the reason)."""
        if not self.mode.timing:
            return
        try:
            row.time_us, row.timing = time_us(fn, self.mode.rep), "graph"
        except Exception as exc:
            torch.cuda.synchronize()  # raises if the context is lost: the row fails and the run stops
            row.time_us, row.timing = time_us(fn, self.mode.rep, graph=False), "eager"
            row.note = "; ".join(filter(None, [f"timed eagerly: CUDA-graph capture failed: {first_line(exc)}",
                                               row.note]))

    # -- yardsticks

    def measure_yardsticks(self):
        try:
            self.copy_gbps, self.copy_note = copy_bandwidth(self.device)
        except Exception as exc:  # the run goes on without the roofline
            self.log(f"bench: copy bandwidth not measured: {first_line(exc)}")
        try:
            self.floor_us = launch_floor(self.device, self.mode.rep)
        except Exception as exc:
            self.log(f"bench: launch floor not measured: {first_line(exc)}")

    # -- rows

    def run_routing(self, shape):
        """Each contender's routing of the shape's batch (ours: ``impl.sort_by_adapter``, tile table included)."""
        for c in self.contenders:
            if c.route is None:
                continue
            row = self.new_row("routing", "-", c.name, "routing", shape, 0)
            if c.skip:
                row.status, row.note = "skipped", c.skip
            elif not self.mode.calling:
                row.status = "built"
            else:
                self.guarded(row, lambda row, c=c: self.route(row, c, shape))

    def route(self, row: Row, c, shape):
        unsorted, sorted_, _ = inputs.batch_infos(shape, self.device)
        call = c.route(unsorted, sorted_, shape.tokens)
        call()
        self.time_into(row, call)

    def run_group(self, layer, bench_op, shape) -> dict:
        rows: dict = {}
        reason, failure, case, reference = self.skip_reason(), None, None, None
        if not reason:
            try:
                case = inputs.build(bench_op, shape, self.device, values=self.mode.calling)
                if self.mode.calling and self.mode.checking:
                    reference = inputs.reference_sample(case)
            except Exception as exc:
                failure = f"building the case: {first_line(exc)}"
        for c in self.contenders:
            if not c.applies(shape):
                continue
            row = rows[c.name] = self.new_row(bench_op.label, layer.name, c.name, c.kind, shape, shape.rank)
            if case is not None:
                row.bytes = bytes_moved(bench_op, shape, case.present, case.x.element_size())
            if failure:
                row.status, row.note = "failed", failure
            elif reason or c.skip:
                row.status, row.note = "skipped", reason or c.skip
            else:
                self.guarded(row, lambda row, c=c: self.run_contender(row, c, case, reference))
        return rows

    def run_contender(self, row: Row, c, case, reference):
        row.note = c.note
        call = c.make(case, case.new_base())
        row.grid = getattr(call, "grids", None)
        if not self.mode.calling:
            row.status = "built"
            return
        out = call()  # eager: it also compiles, outside the timed region
        if c.checked and reference is not None:
            row.err_bound = inputs.error_ratio(out, reference, c.rounding)
            row.checked_rows = len(reference.rows)
            if not row.err_bound <= 1:
                row.status = "wrong"
                row.note = "; ".join(filter(None, [f"error {row.err_bound:.3g} x its bound (rounding "
                                                   f"{c.rounding!r}, {row.checked_rows} rows checked)", row.note]))
        self.time_into(row, call)

    # -- the run

    def run(self, groups, routing_shapes):
        """``groups``: (layer, BenchOp, Shape) triples; ``routing_shapes``: one shape per batch to route."""
        if self.mode.timing:
            self.measure_yardsticks()
            self.log(f"[{self.elapsed():5.1f}s] copy bandwidth {fmt(self.copy_gbps, 'GB/s')}, "
                     f"launch floor (1 program) {fmt(self.floor_us, 'us')}")
        try:
            for shape in routing_shapes:
                self.run_routing(shape)
            for layer, bench_op, shape in groups:
                rows = self.run_group(layer, bench_op, shape)
                if self.device.type == "cuda" and not self.dead:
                    torch.cuda.empty_cache()  # the group's tensors and graph pools are gone: return the memory
                cells = " ".join(f"{c.short} {cell(rows[c.name])}" for c in self.contenders if c.name in rows)
                self.log(f"[{self.elapsed():5.1f}s] {layer.name} {bench_op.label:15s} {shape.label:14s} {cells}")
        except KeyboardInterrupt:
            self.log("interrupted: writing what was measured")
        derive(self.rows, self.copy_gbps, self.floor_us)


def fmt(value, unit: str) -> str:
    return "-" if value is None else f"{value:.2f} {unit}" if unit == "us" else f"{value:,.0f} {unit}"


def warm(contenders, groups, routing_shapes, device, log=print):
    """Calls every contender that compiles once per group, untimed and unchecked: fills Triton's cache."""
    runner = Runner([c for c in contenders if c.compiles], Mode(timing=False, calling=True, checking=False),
                    device, log=log)
    runner.run(groups, routing_shapes)
    return runner
