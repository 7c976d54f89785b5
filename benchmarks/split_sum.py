"""What the split shrink's second launch costs: ``python -m benchmarks.split_sum [--layer 8b] [--shapes ...]`` (GPU).

A shrink that is not summed in its programs (``impl.shrink.sums_in_program``) launches twice: the split partials,
then ``_sum_splits_kernel``. For each shape (default: the grid's one-adapter shapes, where cuBLAS's one launch
wins) this times, in one process and CUDA-graph replay as every benchmark does: our sorted call; the same call with
the sum's launch left out (its output then wrong: a measurement, not a path); the empty kernel on the grids the call
launches (the launch floor); and cuBLAS's dense GEMM. ``ours - without sum`` is what a single-launch split shrink
(the last program of a tile summing the partials in split order) could save at most.
"""

import argparse
import contextlib
import math
from pathlib import Path

import torch
import triton

import impl
import impl.shrink
from lora_verify import backend
from lora_verify.bench import grid, inputs, peers
from lora_verify.bench.timing import launch_grids, time_us


class _NotLaunched:
    """Stands in for a kernel: ``kernel[grid](...)`` launches nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def without_sum():
    """``impl.shrink``'s sum launch left out for the duration."""
    kept = impl.shrink._sum_splits_kernel
    impl.shrink._sum_splits_kernel = _NotLaunched()
    try:
        yield
    finally:
        impl.shrink._sum_splits_kernel = kept


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=grid.GRIDS, default="full")
    parser.add_argument("--layer", choices=grid.LAYERS, default="8b")
    parser.add_argument("--ops", default="shrink,qkv_shrink,gate_up_shrink,down_shrink")
    parser.add_argument("--shapes", default="", help="shape labels (comma-separated; default: the one-adapter ones)")
    parser.add_argument("--rep", type=int, default=10, help="ms of calls per CUDA-graph replay")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    args = parser.parse_args()

    def say(lines):  # the row printed, and the table written as it goes (a run stopped at its limit keeps its rows)
        print(lines[-1], flush=True)
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")

    impl.debug(False)
    device = backend.device()
    every = grid.shapes(grid.GRIDS[args.grid])
    named = args.shapes.split(",") if args.shapes else [s.label for s in every if s.adapters == 1]
    shapes = [s for s in every if s.label in named]
    named_rows = {c.name: c for c in peers.contenders(peers=[])}
    floor, dense = named_rows["empty kernel"], named_rows["cuBLAS dense"]
    lines = [f"# split_sum.py on {torch.cuda.get_device_name()} (Triton {triton.__version__}), layer {args.layer}", "",
             "| op | shape | launches | ours sorted us | without sum us | saved | floor us | cuBLAS us |",
             "|---|---|---|---|---|---|---|---|"]
    for op_name in args.ops.split(","):
        bench_op = grid.bench_op(grid.LAYERS[args.layer], op_name)
        ratios = []
        for shape in shapes:
            case = inputs.build(bench_op, shape, device)
            call = case.call(impl, case.sorted, case.new_base())
            n = len(launch_grids("impl.shrink", call))
            ours = time_us(call, args.rep)
            with without_sum():
                alone = time_us(case.call(impl, case.sorted, case.new_base()), args.rep)
            empty = time_us(floor.make(case, case.new_base()), args.rep)
            cublas = time_us(dense.make(case, case.new_base()), args.rep)
            ratios.append(alone / ours)
            lines.append(f"| {op_name} | {shape.label} | {n} | {ours:.2f} | {alone:.2f} | {ours - alone:.2f} | "
                         f"{empty:.2f} | {cublas:.2f} |")
            say(lines)
        lines.append(f"| {op_name} | geomean without sum / ours | | | {math.prod(ratios) ** (1 / len(ratios)):.3f} "
                     "| | | |")
        say(lines)


if __name__ == "__main__":
    main()
