"""A benchmark row, the ratios derived from the rows of its group, and the JSON file that holds a run."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from lora_verify.bench.roofline import roofline_us

KINDS = ("floor", "ours", "peer", "dense", "routing")  # peer: an adapter or torch gather+bmm; dense: cuBLAS


@dataclass
class Row:
    op: str  # a benchmark label of the operation table (e.g. qkv_shrink), or "routing"
    layer: str  # grid.LAYERS name; "-" for routing (it does not depend on the layer)
    impl: str  # e.g. "ours sorted", "sglang unsorted", "torch gather+bmm"
    kind: str  # one of KINDS
    phase: str
    batch: int  # sequences
    seq_len: int
    tokens: int
    adapters: int
    rank: int  # 0 for routing
    bytes: Optional[int] = None
    time_us: Optional[float] = None
    timing: str = ""  # "graph" (CUDA-graph replay) or "eager"
    gbps: Optional[float] = None
    roofline_us: Optional[float] = None
    x_roofline: Optional[float] = None  # time / roofline
    x_floor: Optional[float] = None  # time / the empty kernel on our sorted grids (routing: on one program)
    x_best_peer: Optional[float] = None  # time / the fastest peer's time, same op, layer and shape
    x_cublas: Optional[float] = None  # time / cuBLAS's dense GEMM (one-adapter shapes)
    err_bound: Optional[float] = None  # worst |out - float64 reference| / error bound on the checked rows
    checked_rows: Optional[int] = None
    grid: Optional[list] = None  # the floor's grids: those our sorted path launches
    status: str = "ok"  # ok, wrong (outside its bound), failed (raised), skipped, built (dry run, not called)
    note: str = ""

    @property
    def label(self) -> str:
        seqs = str(self.batch) if self.phase == "decode" else f"p{self.batch}x{self.seq_len}"
        return f"{seqs}/{self.adapters}" + ("" if self.op == "routing" else f"/{self.rank}")

    @property
    def group(self) -> tuple:
        return (self.layer, self.op, self.label)


def groups(rows) -> dict:
    """(layer, op, shape label) -> {impl: row}, in the rows' order."""
    out: dict = {}
    for row in rows:
        out.setdefault(row.group, {})[row.impl] = row
    return out


def derive(rows, copy_gbps: Optional[float], floor_us: Optional[float]):
    """Bandwidth, roofline and the ratios of every row, from the rows of its group."""
    for group in groups(rows).values():
        times = {kind: [r.time_us for r in group.values() if r.kind == kind and r.time_us] for kind in KINDS}
        floor = min(times["floor"], default=floor_us if any(r.kind == "routing" for r in group.values()) else None)
        best_peer = min(times["peer"], default=None)
        cublas = min(times["dense"], default=None)
        for row in group.values():
            row.roofline_us = roofline_us(row.bytes, copy_gbps) if row.bytes and copy_gbps else None
            row.gbps = row.x_roofline = row.x_floor = row.x_best_peer = row.x_cublas = None
            if not row.time_us:
                continue
            if row.bytes:
                row.gbps = row.bytes / (row.time_us * 1e3)
                row.x_roofline = row.time_us / row.roofline_us if row.roofline_us else None
            if row.kind != "floor":
                row.x_floor = row.time_us / floor if floor else None
                row.x_best_peer = row.time_us / best_peer if best_peer else None
                row.x_cublas = row.time_us / cublas if cublas else None


def save(path: Path, rows, meta: dict):
    path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")


def load(path: Path) -> tuple:
    data = json.loads(path.read_text())
    return [Row(**r) for r in data["rows"]], data["meta"]
