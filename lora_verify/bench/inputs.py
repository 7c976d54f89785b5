"""One operation on one batch shape, made into tensors and batch infos (everything outside the timed region).

Shapes come from the operation table (``x_cols``, ``w_shape``, ``out_cols``, ``slice_offsets``); every slot
has the shape's rank and a scaling of 0.5 (a power of two: exact wherever an implementation applies it, to
x, to the weights or to the product). The per-sequence batch is ``impl.per_sequence`` with sequence ``i``
on slot ``i % adapters``; the sorted one is ``impl.sort_by_adapter`` of it, tile table included.

The check (:func:`reference_sample`, :func:`error_ratio`) compares an output with the table's float64
reference on a sample of rows, within the property suite's error bound: the loop reference runs on the
host and would take minutes on the large shapes, and every row is computed alike (batch invariance is the
contract's, and checked by the suite).
"""

import dataclasses
import functools
from typing import Optional

import torch

import impl
from lora_verify import inputs as suite_inputs
from lora_verify.bounds import case_bound
from lora_verify.layouts import run_reference
from lora_verify.strategies import Batch, Seq, Slot, Values

DTYPE = torch.bfloat16
SCALING = 0.5
ALL_ROWS = 64  # batches up to this many tokens are checked on every row
SAMPLE_SLOTS, SAMPLE_ROWS_PER_SLOT = 4, 4  # larger ones: first, last and evenly spaced slots and rows of each


def spread(items: list, n: int) -> list:
    """``n`` items of ``items``, first and last included, evenly spaced (all when there are few)."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


@dataclasses.dataclass
class Case:
    """Tensors and batch infos of one operation (a ``grid.BenchOp``) on one ``grid.Shape``."""

    bench_op: object
    shape: object
    x: torch.Tensor
    w: torch.Tensor
    base: Optional[torch.Tensor]  # the in-place output's starting value; implementations get clones
    offsets: Optional[torch.Tensor]  # the expand's slice offsets, int32 on the device
    unsorted: object  # impl.LoRABatchInfo, per-sequence
    sorted: object  # impl.LoRABatchInfo, sorted by adapter, with routing's tile table
    token_slots: torch.Tensor  # slot of each row (int64, on the device)

    @property
    def op(self):
        return self.bench_op.op

    @property
    def dims(self):
        return self.bench_op.dims

    @property
    def present(self) -> int:
        """Adapters with at least one row."""
        return min(self.shape.adapters, self.shape.seqs)

    def new_base(self):
        return None if self.base is None else self.base.clone()

    def call(self, module, batch_info, base=None):
        """A zero-argument call of ``module``'s entry point of this op (an expand updates ``base`` in place)."""
        op, fn = self.op, getattr(module, self.op.entry)
        return lambda: op.call(fn, self.x, self.w, batch_info, self.dims, base, self.offsets)


@functools.lru_cache(maxsize=16)
def batch_infos(shape, device) -> tuple:
    """(per-sequence, sorted, slot of each row) of a shape: one routing per batch, shared by every operation
    (as an engine routes once per step for all its layers)."""
    A, slots = shape.adapters, shape.seq_slots()
    unsorted = impl.per_sequence([shape.seq_len] * shape.seqs, slots, [shape.rank] * A, [SCALING] * A, device=device)
    token_slots = torch.tensor([a for a in slots for _ in range(shape.seq_len)], device=device)
    return unsorted, impl.sort_by_adapter(unsorted, shape.tokens), token_slots


def build(bench_op, shape, device, values: bool = True, seed: int = 0) -> Case:
    """The case's tensors on ``device``: random normal when ``values``, else uninitialised (a dry run's shapes)."""
    op, dims, R, A, S = bench_op.op, bench_op.dims, shape.rank, shape.adapters, shape.tokens
    gen = torch.Generator(device=device).manual_seed(seed)

    def tensor(*size):
        if not values:
            return torch.empty(*size, dtype=DTYPE, device=device)
        return torch.randn(*size, generator=gen, device=device, dtype=torch.float32).to(DTYPE)

    unsorted, sorted_, token_slots = batch_infos(shape, torch.device(device))
    offsets = op.slice_offsets(dims)
    return Case(
        bench_op=bench_op,
        shape=shape,
        x=tensor(S, op.x_cols(dims, R)),
        w=tensor(A, *op.w_shape(dims, R)),
        base=tensor(S, op.out_cols(dims)) if op.in_place else None,
        offsets=None if offsets is None else torch.tensor(offsets, dtype=torch.int32, device=device),
        unsorted=unsorted,
        sorted=sorted_,
        token_slots=token_slots,
    )


def sample_rows(case: Case) -> list:
    """The rows the check looks at: all of a small batch; else a few rows of a few slots (see the constants)."""
    rows_of: dict = {}
    for row, slot in enumerate(case.token_slots.tolist()):
        rows_of.setdefault(slot, []).append(row)
    if case.shape.tokens <= ALL_ROWS:
        return sorted(r for rows in rows_of.values() for r in rows)
    slots = spread(sorted(rows_of), SAMPLE_SLOTS)
    return sorted(r for s in slots for r in spread(rows_of[s], SAMPLE_ROWS_PER_SLOT))


@dataclasses.dataclass
class Reference:
    """The float64 reference of the sampled rows: the suite's own case of them, and what the bound needs."""

    rows: torch.Tensor  # int64 row indices into the benchmark case's rows (on its device)
    sample: suite_inputs.Case  # the sampled rows as a case of the property suite (host tensors)
    base: Optional[torch.Tensor]  # their base before the call (host), expands only
    ref: torch.Tensor  # float64, host
    defined: torch.Tensor  # bool, host: the cells SPEC.md defines
    mag: torch.Tensor  # float64, host: the same expression over absolute values


def reference_sample(case: Case) -> Reference:
    """The table's reference (``OpInfo.reference``, float64 on the host) on the sampled rows of the case.

    The sampled rows become a case of the property suite (``lora_verify.inputs.Case``: one sequence per
    slot, only the weights of the slots they use, on the host), so that the reference's loops touch what
    they need and no more, and the suite's own functions compute its value and its bound.
    """
    rows = sample_rows(case)
    slot_of_row = case.token_slots.cpu()[rows].tolist()
    used = sorted(set(slot_of_row))
    rows = [rows[i] for i in sorted(range(len(rows)), key=lambda i: (slot_of_row[i], rows[i]))]
    R = case.shape.rank
    batch = Batch(max_rank=R, slots=tuple(Slot(R, SCALING) for _ in used),
                  seqs=tuple(Seq(slot_of_row.count(s), k) for k, s in enumerate(used)), dims=case.dims,
                  values=Values(seed=0, dtype=str(DTYPE).removeprefix("torch.")))
    info = impl.per_sequence([q.length for q in batch.seqs], [q.slot for q in batch.seqs], [R] * len(used),
                             [SCALING] * len(used), device="cpu")
    index = torch.tensor(rows, dtype=torch.long, device=case.x.device)
    sample = suite_inputs.Case(
        batch=batch,
        op=case.op,
        batch_info=info,
        x=case.x[index].cpu(),
        w=case.w[torch.tensor(used, device=case.w.device)].cpu(),
        base_buffer=None,
        offsets=None if case.offsets is None else case.offsets.cpu(),
    )
    base = None if case.base is None else case.base[index].cpu()
    ref, defined, mag = run_reference(sample, base)
    return Reference(index, sample, base, ref, defined, mag)


def error_ratio(out: torch.Tensor, reference: Reference, rounding: str = "once") -> float:
    """Worst ``|out - ref| / bound`` over the sampled rows' defined cells, the bound the property suite uses
    (``lora_verify.bounds.case_bound``) under the implementation's rounding model: at most 1 for a correct
    implementation, NaN or more for a wrong one."""
    got = out[reference.rows].double().cpu()
    bound = case_bound(reference.sample, reference.ref, reference.mag, reference.base, rounding)
    ratio = torch.nan_to_num((got - reference.ref).abs() / bound, nan=float("inf"))
    return float(torch.where(reference.defined, ratio, 0.0).max())
