"""CUDA-graph replay: batch-info buffers of a fixed capacity, rewritten in place each step.

See SPEC.md, "Under CUDA graphs".

Every size a launch depends on is fixed at capture: per-sequence segments number ``max_seqs`` (unused ones
have length 0 and slot 0), sorted segments are the ``L`` slots, ``max_len`` is the token capacity. A step
writes the new batch's per-sequence lengths and slots into the static buffers without a host sync or a
device allocation; :meth:`GraphBatchBuffers.route` derives ``seg_indptr`` and the sorted layout from them
on the device and is captured too (a graph before the kernels'), so each replay re-routes and allocates nothing.
"""

from dataclasses import dataclass

import torch

from . import routing
from .batch_info import LoRABatchInfo
from .segments import sorted_programs


def _fill(static: torch.Tensor, values) -> None:
    """Writes ``values`` (a tensor or a host list) into the front of ``static`` and zeroes the rest, without a sync.

    A host list goes through pinned memory (the caching host allocator keeps the block until the copy is done).
    """
    n = len(values)
    if isinstance(values, torch.Tensor):
        static[:n].copy_(values, non_blocking=True)
        static[n:].zero_()
    else:
        host = torch.zeros(static.shape, dtype=static.dtype, pin_memory=static.is_cuda)
        host[:n] = torch.tensor(values, dtype=static.dtype)
        static.copy_(host, non_blocking=True)


@dataclass
class GraphBatchBuffers:
    """Static batch-info tensors for a capacity, seen through two fixed-size ``LoRABatchInfo``s.

    ``unsorted``: ``max_seqs`` per-sequence segments. ``sorted``: one segment per slot, rows through a
    ``permutation`` of ``max_tokens`` entries (those past the live count hold the rows past it; never read),
    and a tile table long enough for any batch of the capacity (``segments.sorted_programs`` rows).
    Both share ``lora_ranks`` and ``scalings``; both have ``max_len = max_tokens`` and ``use_cuda_graph``.
    ``counts``: the routing's per-chunk slot counts (``routing.count_chunks``), so that routing allocates nothing.
    """

    unsorted: LoRABatchInfo
    sorted: LoRABatchInfo
    counts: torch.Tensor

    @classmethod
    def allocate(cls, max_tokens: int, max_seqs: int, num_slots: int, device) -> "GraphBatchBuffers":
        if min(max_tokens, max_seqs, num_slots) < 1:
            got = (max_tokens, max_seqs, num_slots)
            raise ValueError(f"capacity: expected max_tokens, max_seqs, num_slots >= 1, got {got}")
        i32 = dict(dtype=torch.int32, device=device)
        shared = dict(
            lora_ranks=torch.zeros(num_slots, **i32),
            scalings=torch.zeros(num_slots, dtype=torch.float32, device=device),
            max_len=max_tokens,
            use_cuda_graph=True,
        )
        unsorted = LoRABatchInfo(
            bs=max_seqs,
            num_segments=max_seqs,
            seg_lens=torch.zeros(max_seqs, **i32),
            seg_indptr=torch.zeros(max_seqs + 1, **i32),
            weight_indices=torch.zeros(max_seqs, **i32),
            **shared,
        )
        sorted_ = LoRABatchInfo(
            bs=num_slots,
            num_segments=num_slots,
            seg_lens=torch.zeros(num_slots, **i32),
            seg_indptr=torch.zeros(num_slots + 1, **i32),
            weight_indices=torch.arange(num_slots, **i32),
            permutation=torch.arange(max_tokens, **i32),
            tiles=torch.zeros((sorted_programs(max_tokens, num_slots), 3), **i32),
            **shared,
        )
        slots, _, chunks = routing.count_chunks(max_seqs, num_slots)
        return cls(unsorted, sorted_, torch.empty((chunks, slots), **i32))

    @property
    def max_tokens(self) -> int:
        return self.unsorted.max_len

    @property
    def max_seqs(self) -> int:
        return self.unsorted.num_segments

    @property
    def num_slots(self) -> int:
        return self.sorted.num_segments

    def info(self, layout: str) -> LoRABatchInfo:
        """The batch info of ``layout`` ("sorted" or "unsorted")."""
        return self.sorted if layout == "sorted" else self.unsorted

    def write(self, seg_lens, weight_indices, lora_ranks, scalings) -> None:
        """Writes a batch (device tensors or host lists) in place; unused sequences get length 0 and slot 0.

        Values are not checked here (that would sync); a host list's lengths are checked against the capacity.
        """
        n = len(seg_lens)
        if n > self.max_seqs or len(weight_indices) != n:
            raise ValueError(
                f"seg_lens, weight_indices: expected equal lengths <= max_seqs == {self.max_seqs}, "
                f"got {n} and {len(weight_indices)}"
            )
        if len(lora_ranks) != self.num_slots or len(scalings) != self.num_slots:
            got = (len(lora_ranks), len(scalings))
            raise ValueError(f"lora_ranks, scalings: expected {self.num_slots} slots each, got {got}")
        if not isinstance(seg_lens, torch.Tensor) and sum(seg_lens) > self.max_tokens:
            raise ValueError(f"seg_lens: expected <= max_tokens == {self.max_tokens} tokens, got {sum(seg_lens)}")
        _fill(self.unsorted.seg_lens, seg_lens)
        _fill(self.unsorted.weight_indices, weight_indices)
        _fill(self.unsorted.lora_ranks, lora_ranks)
        _fill(self.unsorted.scalings, scalings)

    def route(self) -> None:
        """Derives ``seg_indptr`` and the sorted layout from the per-sequence lengths and slots, in place.

        No host sync, no allocation; capturable: a cumulative sum and ``routing.route``'s one or two launches, which
        write the sorted buffers directly.
        """
        per_seq, sorted_ = self.unsorted, self.sorted
        torch.cumsum(per_seq.seg_lens, 0, dtype=torch.int32, out=per_seq.seg_indptr[1:])
        layout = (sorted_.permutation, sorted_.seg_lens, sorted_.seg_indptr, sorted_.tiles)
        args = (per_seq.seg_indptr, per_seq.weight_indices, self.num_slots, self.max_tokens)
        routing.route(*args, out=layout, counts=self.counts)


class GraphRunner:
    """CUDA graphs of the routing and of ``step(batch_info, *statics)``, for a capacity and a layout.

    ``statics`` are the step's static tensor inputs, token input first (its rows are the capacity);
    ``step`` returns the output (a static input updated in place, or a tensor it allocates, which then
    lives in the graph's pool). :meth:`load` writes a batch and its inputs, :meth:`replay` re-routes and
    reruns the kernels and returns the live rows of ``output``. Routing and step are two graphs, each with
    its own memory pool, so that nothing routing writes shares memory with ``output``: a replay
    writes no cell of ``output`` that the kernels do not.
    """

    def __init__(self, step, statics, buffers: GraphBatchBuffers, layout: str):
        self.buffers, self.statics, self.num_tokens = buffers, tuple(statics), 0
        if self.statics[0].shape[0] != buffers.max_tokens:
            got = self.statics[0].shape[0]
            raise ValueError(f"statics[0]: expected max_tokens == {buffers.max_tokens} rows, got {got}")
        info = buffers.info(layout)
        self.graphs = (torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            buffers.route()
            step(info, *self.statics)  # warm-up, outside capture: compiles the kernels
            self.graphs[0].capture_begin()
            buffers.route()
            self.graphs[0].capture_end()
            self.graphs[1].capture_begin()
            self.output = step(info, *self.statics)
            self.graphs[1].capture_end()
        torch.cuda.current_stream().wait_stream(stream)

    def load(self, seg_lens, weight_indices, lora_ranks, scalings, *inputs) -> None:
        """Writes a batch (see :meth:`GraphBatchBuffers.write`) and the leading rows of each static input.

        ``inputs[0]``'s row count is the batch's token count; no host sync, no allocation (device inputs).
        """
        if len(inputs) != len(self.statics):
            raise ValueError(f"inputs: expected {len(self.statics)} tensors, got {len(inputs)}")
        for i, (static, value) in enumerate(zip(self.statics, inputs, strict=True)):
            if value.shape[1:] != static.shape[1:] or value.shape[0] > static.shape[0]:
                expected = f"(<= {static.shape[0]}, {', '.join(map(str, static.shape[1:]))})"
                raise ValueError(f"inputs[{i}]: expected shape {expected}, got {tuple(value.shape)}")
        self.buffers.write(seg_lens, weight_indices, lora_ranks, scalings)
        for static, value in zip(self.statics, inputs, strict=True):
            static[: value.shape[0]].copy_(value, non_blocking=True)
        self.num_tokens = inputs[0].shape[0]

    def replay(self) -> torch.Tensor:
        """Replays the routing and the step on the current stream; returns the live rows of ``output`` (a view)."""
        for graph in self.graphs:
            graph.replay()
        return self.output[: self.num_tokens]
