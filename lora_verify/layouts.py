"""Calling an implementation on a case in one of the batch layouts, and the reference on the same case.

"unsorted" is the per-sequence layout; "sorted" is impl's routing of it, its tile table included; the
properties also compare "lookup" (the sorted layout with sglang's fields only, so that the kernels look each
program's segment up in ``seg_indptr``), "grouped" (the sorted one with impl grouping work per program, and
shrink summing its splits in the program, as it does on large batches only: ``GROUPING``) and "grouped_split"
(grouped, shrink's splits summed by a second kernel, as on large batches of one adapter).
"""

import contextlib
import dataclasses
import importlib
import os
import weakref
from functools import lru_cache
from typing import Optional

import torch

import impl
from lora_verify.inputs import Case, poison_batch_info

LAYOUTS = ["unsorted", "sorted"]
# The float64 reference. Each op's OpInfo.reference (reference/loops.py: loops on the CPU) is the oracle; for
# inputs on a GPU, the functions of the same names in DEVICE_REFERENCE (a module of reference/ with the loops'
# signatures and results, computing on the inputs' device) serve instead when that module exists ("" or
# LORA_DEVICE_REFERENCE= : the loops everywhere). One switch: nothing else chooses a reference.
DEVICE_REFERENCE = os.environ.get("LORA_DEVICE_REFERENCE", "reference.vectorised")
# ... for cases of at least this many products (tokens x products per token); smaller ones take the loops: one core
# does a float64 product in 0.05-0.1 ns (a case this size in 2-3 ms; docs/results/h100x1/README.md),
# less than the device reference's launches and host synchronisations cost a process sharing the GPU with others
# (LORA_DEVICE_REFERENCE_MIN_PRODUCTS=0: the device reference for every case, as before; for comparisons)
DEVICE_REFERENCE_MIN_PRODUCTS = int(os.environ.get("LORA_DEVICE_REFERENCE_MIN_PRODUCTS", 1 << 25))
# what makes impl's kernels group work per program on large batches only, and the value that groups every batch:
# shrink's table tiles (impl.shrink.tiles_per_program), its splits summed in the program (sums_in_program) and its
# deeper pipeline (num_stages: compiled only), expand's column tiles (impl.expand.column_tiles_per_program) and its
# wide row tiles (rows_per_program)
FUSING = ("FUSE_MIN_PROGRAMS", "FUSE_MIN_TILES")  # of impl.shrink
GROUPING = {
    impl.shrink: ("GROUP_MIN_ROWS", "GROUP_MIN_SLOT_ROWS", *FUSING, "STAGES_MIN_ROWS"),
    impl.expand: ("MIN_PROGRAMS", "WIDE_MIN_PROGRAMS", "WIDE_MIN_ROWS", "WIDE_MIN_SEGMENT_ROWS", "WIDE_MIN_RANK",
                  "WIDE_QKV_MIN_RANK"),
}


_routed = {}  # id of a per-sequence batch info -> (rows, impl's routing of it)


def sorted_layout(case: Case):
    """impl's sorted layout of the case's batch, routed once per batch info: the sorted, lookup and grouped
    layouts of one batch, and a second call on it, share it (each still gets its own poisoned copy)."""
    bi, rows = case.batch_info, case.x.shape[0]
    key = id(bi)
    hit = _routed.get(key)
    if hit is None or hit[0] != rows:
        if hit is None:
            weakref.finalize(bi, _routed.pop, key, None)
        hit = _routed[key] = (rows, impl.sort_by_adapter(bi, rows))
    return hit[1]


def layout_info(case: Case, layout: str):
    """The batch info of ``layout``: "unsorted", "sorted", "lookup", "grouped" or "grouped_split" (see the module
    docstring)."""
    if layout == "unsorted":
        return case.batch_info
    info = sorted_layout(case)
    if layout == "lookup":
        info = dataclasses.replace(info, tiles=None)
    return poison_batch_info(info)


@contextlib.contextmanager
def grouping_forced(fused: bool = True):
    """impl groups work per program on every batch, however small (thresholds at 0), for the duration; shrink's
    programs then sum all their splits themselves on every batch (``fused``) or on none (their thresholds out of
    reach: the splits summed outside the programs)."""
    saved = {(m, name): getattr(m, name) for m, names in GROUPING.items() for name in names}
    for m, name in saved:
        setattr(m, name, 0 if fused or name not in FUSING else 1 << 62)
    try:
        yield
    finally:
        for (m, name), value in saved.items():
            setattr(m, name, value)


def call(module, case: Case, batch_info, x=None, base=None):
    """The op of ``module`` on the case's inputs and ``batch_info`` (``x``, ``base`` replace the case's)."""
    fn = getattr(module, case.op.entry)
    x = case.x if x is None else x
    return case.op.call(fn, x, case.w, batch_info, case.batch.dims, base, case.offsets)


def run(module, case: Case, layout: str) -> torch.Tensor:
    """Calls the op of ``module`` on ``case`` in ``layout``; returns the output (the base view if in place)."""
    grouped = layout in ("grouped", "grouped_split")
    with grouping_forced(fused=layout == "grouped") if grouped else contextlib.nullcontext():
        return call(module, case, layout_info(case, layout), base=case.base)


@lru_cache(maxsize=None)
def _device_reference(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def reference_of(case: Case):
    """The reference function for the case's op: ``DEVICE_REFERENCE``'s for a large case on a GPU, else the loops."""
    op, x, w = case.op, case.x, case.w
    large = x.shape[0] * (w[0].numel() if w.shape[0] else 0) >= DEVICE_REFERENCE_MIN_PRODUCTS
    module = _device_reference(DEVICE_REFERENCE) if DEVICE_REFERENCE and x.device.type == "cuda" and large else None
    return getattr(module, op.reference.__name__) if module is not None else op.reference


def defined_cells(case: Case) -> torch.Tensor:
    """The cells of the output the contract defines (from the reference), on the reference's device."""
    op = case.op
    return op.call(reference_of(case), case.x, case.w, case.batch_info, case.batch.dims, None, case.offsets)[1]


def run_reference(case: Case, base_before: Optional[torch.Tensor]):
    """(ref, defined, mag): the float64 value, the cells the contract defines, and the |.| magnitude, on the
    reference's device (the CPU for the loops)."""
    op, bi, d = case.op, case.batch_info, case.batch.dims
    reference = reference_of(case)
    ref, defined = op.call(reference, case.x, case.w, bi, d, base_before, case.offsets)
    x_abs = torch.nan_to_num(case.x.abs(), nan=0.0)
    w_abs = torch.nan_to_num(case.w.abs(), nan=0.0)
    abs_info = dataclasses.replace(bi, scalings=bi.scalings.abs())
    base_abs = None if base_before is None else base_before.abs()
    mag, _ = op.call(reference, x_abs, w_abs, abs_info, d, base_abs, case.offsets)
    return ref, defined, mag
