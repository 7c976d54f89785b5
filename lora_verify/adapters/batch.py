"""Our batch info (SPEC.md, either layout) in the terms other engines use: rows, chunks, per-token slots.

Every function works for both layouts (per-sequence; sorted, rows read through ``permutation``) and for
any segments (``seg_indptr`` need not be the running sum of ``seg_lens``). All run on the device with
fixed sizes (from host ints: the token count, the number of segments) and no host synchronisation, so
that an adapter's translation can sit inside a CUDA graph capture like the kernels it feeds.
"""

import weakref
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class Rows(NamedTuple):
    """The segments laid end to end (segment 0's rows, then segment 1's, ...): at each position ``q`` of
    ``[0, num_rows)``, the physical row, its segment (clamped to a valid index) and whether ``q`` is
    inside a segment at all (positions past the total hold no row)."""

    row: torch.Tensor  # int64 (num_rows,); 0 where not live
    segment: torch.Tensor  # int64 (num_rows,)
    live: torch.Tensor  # bool (num_rows,)
    total: torch.Tensor  # int64 (): rows in all segments


def _segments(bi):
    n = bi.num_segments
    return bi.seg_lens[:n].long(), bi.seg_indptr[:n].long(), bi.weight_indices[:n].long()


def _lookup(positions, lens):
    """(segment, offset in it, live) of each position of the segments laid end to end."""
    ends = torch.cumsum(lens, 0)
    segment = torch.searchsorted(ends, positions, right=True)
    live = segment < lens.numel()
    segment = segment.clamp(max=max(lens.numel() - 1, 0))
    offset = positions - (ends - lens)[segment] if lens.numel() else positions
    return segment, offset, live & (lens.numel() > 0)


def rows(bi, num_rows: int) -> Rows:
    """Where each row sits when the segments are laid end to end (see :class:`Rows`)."""
    lens, starts, _ = _segments(bi)
    device = bi.seg_lens.device
    positions = torch.arange(num_rows, device=device)
    segment, offset, live = _lookup(positions, lens)
    logical = torch.where(live, starts[segment] + offset if lens.numel() else offset, 0)
    row = logical if bi.permutation is None else bi.permutation[:num_rows].long().gather(0, logical)
    return Rows(torch.where(live, row, 0), segment, live, lens.sum())


def token_slots(bi, num_rows: int, rows_: Rows = None) -> torch.Tensor:
    """int32 ``(num_rows,)``: each row's slot, -1 for rows of rank-0 slots and rows no segment covers."""
    rows_ = rows(bi, num_rows) if rows_ is None else rows_
    _, _, slots = _segments(bi)
    slot = slots[rows_.segment] if slots.numel() else torch.zeros_like(rows_.segment)
    active = rows_.live & (bi.lora_ranks.long()[slot] > 0) if slots.numel() else rows_.live
    out = torch.full((num_rows + 1,), -1, dtype=torch.int32, device=rows_.row.device)
    out.scatter_(0, torch.where(active, rows_.row, num_rows), torch.where(active, slot, -1).to(torch.int32))
    return out[:num_rows]


def token_ranks(bi, slots: torch.Tensor) -> torch.Tensor:
    """int64: the rank of each row's slot (0 for slot -1)."""
    return torch.where(slots >= 0, bi.lora_ranks.long()[slots.long().clamp(min=0)], 0)


class Chunks(NamedTuple):
    """The segments cut into chunks of at most ``size`` rows, in one logical order of the rows."""

    seg_indptr: torch.Tensor  # int32 (count + 1,): chunk c covers logical positions [seg_indptr[c], seg_indptr[c+1])
    weight_indices: torch.Tensor  # int32 (count,): the slot of each chunk (0 for the empty ones at the end)
    permutation: torch.Tensor  # int32 (num_rows,): the physical row at each logical position
    count: int  # chunks, a bound fixed by the host ints: the last ones are empty


def chunks(bi, num_rows: int, size: int) -> Chunks:
    """Each segment cut into chunks of ``size`` rows (its last one shorter), the segments laid end to end.

    Segment ``i`` of ``n`` rows gives ``ceil(n / size)`` chunks; ``num_rows // size + num_segments`` bounds
    their number for any batch of ``num_rows`` rows, so the chunk count (and a grid sized by it) depends only
    on host ints. The logical order is the segments' rows end to end (:func:`rows`).
    """
    lens, _, slots = _segments(bi)
    device = bi.seg_lens.device
    count = num_rows // size + lens.numel()
    placed = rows(bi, num_rows)
    per_segment = (lens + size - 1) // size
    index = torch.arange(count, device=device)
    segment, chunk_in_segment, live = _lookup(index, per_segment)
    first_row = torch.cumsum(lens, 0) - lens
    start = first_row[segment] + chunk_in_segment * size if lens.numel() else index
    start = torch.where(live, start, placed.total)
    indptr = torch.cat([start, placed.total.reshape(1)]).to(torch.int32)
    weight_indices = torch.where(live, slots[segment], 0) if slots.numel() else torch.zeros_like(index)
    return Chunks(indptr, weight_indices.to(torch.int32), placed.row.to(torch.int32), count)


class Kept(TorchDispatchMode):
    """Holds every tensor the ops inside it make (``with Kept() as kept:``), for as long as ``kept`` lives.

    An adapter that translates the batch info inside the call frees the translation's intermediates before
    the kernel allocates its output. Under CUDA-graph capture the caching allocator may then give the output
    an intermediate's memory, and every replay rewrites it while building the translation: rows past the
    live count change although no kernel wrote them (csgmv's shrink on an empty batch, on the H200).
    Engines build their batch info outside the graph; keeping the intermediates alive across the kernel's
    call gives the output memory of its own, as there.
    """

    def __init__(self):
        super().__init__()
        self.tensors = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.tensors.append(out)
        return out


_TABLES = {}


def to_device(values, dtype, device) -> torch.Tensor:
    """Host values on ``device`` without a host sync (through pinned memory, as engines copy their tables)."""
    device = torch.device(device)
    host = torch.tensor(values, dtype=dtype, pin_memory=device.type == "cuda")
    return host.to(device, non_blocking=True)


def device_offsets(offsets: tuple, device) -> torch.Tensor:
    """An int32 device tensor of ``offsets`` (host ints), made once per value and device (as an engine makes
    it when it loads a layer: the first call must come before a CUDA graph capture)."""
    key = (tuple(int(o) for o in offsets), torch.device(device))
    if key not in _TABLES:
        _TABLES[key] = to_device(key[0], torch.int32, device)
    return _TABLES[key]


_HOST = {}


def host_offsets(offsets: torch.Tensor) -> tuple:
    """A device tensor's values as host ints, read once per tensor object (a host sync on the first call).

    For layer metadata such as SPEC.md's ``output_offset``, which an engine knows on the host; a tensor
    changed in place after its first read is not seen again.
    """
    key = id(offsets)
    held = _HOST.get(key)
    if held is None or held[0]() is not offsets:
        held = (weakref.ref(offsets, lambda _, key=key: _HOST.pop(key, None)), tuple(offsets.tolist()))
        _HOST[key] = held
    return held[1]
