"""How fast can any kernel read the sorted layout? ``python -m benchmarks.chain_floor [--out FILE]`` (GPU).

A kernel of the sorted layout cannot load its rows before it knows its segment, nor its data before it
knows its rows: at least three dependent loads (segment metadata, permutation, data) and a store. This
times that chain alone, with no arithmetic, on the grid our sorted kernels launch (``cdiv(S, 16) +
adapters`` programs of 16 rows) for each decode batch, stopping after 0 (an empty kernel: the launch
floor), 1, 2 and 3 loads, CUDA-graph replay, median, like ``lora-verify bench``. Where the 3-load chain already takes
more than twice the launch floor, no kernel of this layout can be within 2x of the launch floor. The
last columns put our tile lookup (``impl/segments.py: program_tile``) in place of the first load.
"""

import argparse
import functools
from pathlib import Path

import torch
import triton
import triton.language as tl

import impl
from impl.segments import program_tile
from lora_verify.bench import grid, inputs
from lora_verify.bench.timing import time_us

BLOCK_S, BLOCK_K = 16, 128


@triton.jit
def _chain_kernel(seg_indptr, permutation, x, out, num_segments, num_rows, x_stride, DEPTH: tl.constexpr,
                  LOOKUP: tl.constexpr, SEGMENTS: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_K: tl.constexpr):
    """Loads ``DEPTH`` of (segment start, permutation, one block of x), each waiting for the one before.

    ``LOOKUP``: the segment start comes from our sorted kernels' tile lookup (``program_tile``), else from
    one load of ``seg_indptr[program % segments]``.
    """
    pid = tl.program_id(0)
    offs = tl.arange(0, BLOCK_S)
    if DEPTH == 0:
        return
    if LOOKUP:
        _, row_tile, start = program_tile(seg_indptr, num_segments, BLOCK_S, SEGMENTS, True)
        start += row_tile * BLOCK_S
    else:
        start = tl.load(seg_indptr + pid % num_segments)
    value = (start + offs).to(tl.float32)
    if DEPTH >= 2:
        live = start + offs < num_rows
        rows = tl.load(permutation + start + offs, mask=live, other=0).to(tl.int64)
        value = rows.to(tl.float32)
        if DEPTH >= 3:
            cols = tl.arange(0, BLOCK_K)
            xs = tl.load(x + rows[:, None] * x_stride + cols[None, :], mask=live[:, None], other=0.0)
            value = tl.sum(xs.to(tl.float32), 1)
    tl.store(out + pid * BLOCK_S + offs, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--rep", type=int, default=20, help="do_bench_cudagraph rep in ms")
    args = parser.parse_args()
    device = torch.device("cuda")
    shapes = [s for s in grid.shapes(grid.GRIDS["small"]) if s.phase == "decode" and s.rank == 16]
    lines = [f"# chain_floor.py on {torch.cuda.get_device_name()} (Triton {triton.__version__})", "",
             "times in us, sorted grid of each decode batch (rank does not matter here)", "",
             "| batch/adapters | programs | empty (launch floor) | 1 load | 2 loads | 3 loads | 3 loads / empty "
             "| 3 loads, segment from program_tile | program_tile's cost |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shape in shapes:
        S, A = shape.tokens, shape.adapters
        unsorted = impl.per_sequence([1] * S, [i % A for i in range(S)], [16] * A, [1.0] * A, device=device)
        info = impl.sort_by_adapter(unsorted, S)
        x = torch.randn(S, grid.LAYERS["8b"].hidden, device=device).to(inputs.DTYPE)
        programs = triton.cdiv(S, BLOCK_S) + A
        out = torch.empty(programs * BLOCK_S, device=device)
        launch = _chain_kernel[(programs,)]
        kernel_args = (info.seg_indptr, info.permutation, x, out, A, S, x.stride(0))
        times = []
        segments = triton.next_power_of_2(A)
        for depth, lookup in ((0, False), (1, False), (2, False), (3, False), (3, True)):
            call = functools.partial(launch, *kernel_args, DEPTH=depth, LOOKUP=lookup, SEGMENTS=segments,
                                     BLOCK_S=BLOCK_S, BLOCK_K=BLOCK_K)
            call()  # compiles outside the timed region
            times.append(time_us(call, args.rep))
        lines.append(f"| {S}/{A} | {programs} | " + " | ".join(f"{t:.2f}" for t in times[:4])
                     + f" | {times[3] / times[0]:.2f} | {times[4]:.2f} | {times[4] - times[3]:+.2f} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
