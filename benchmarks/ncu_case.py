#!/usr/bin/env python3
"""One bench.py shape called a few times per layout, for a profiler: ``ncu ... python benchmarks/ncu_case.py``.

    ncu --clock-control none -k regex:"_shrink_kernel|_expand_kernel|_sum_splits" \
        --section SpeedOfLight --section LaunchStats --section WarpStateStats --section Occupancy \
        python benchmarks/ncu_case.py --shape 64/64/16 --ops shrink,expand

Calls our entry point of each operation ``--calls`` times on the sorted, then the per-sequence batch of the
shape (bench.py's tensors), so that each kernel launch of each layout shows up in the profile in turn.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402

import impl  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64/64/16", help="a decode or prefill label of bench.py, e.g. 64/64/16")
    parser.add_argument("--ops", default="shrink,expand", help="comma-separated: " + ", ".join(bench.OPS))
    parser.add_argument("--calls", type=int, default=4, help="calls per operation and layout")
    args = parser.parse_args()
    (shape,) = [s for s in bench.grid_shapes(False, False) if s.label == args.shape]
    for op_name in args.ops.split(","):
        op = bench.OPS[op_name]
        case = bench.Case(impl, op, shape, bench.REAL, torch.device("cuda"))
        for layout in ("sorted", "unsorted"):
            fn = case.call(impl, getattr(case, layout), None if op.is_shrink else case.base.clone())
            for _ in range(args.calls):
                fn()
            torch.cuda.synchronize()
            print(f"{op_name} {layout} {shape.label}: {args.calls} calls", flush=True)


if __name__ == "__main__":
    main()
