"""One benchmark shape called a few times per layout, for a profiler: ``ncu ... python -m benchmarks.ncu_case``.

    ncu --clock-control none -k regex:"_shrink_kernel|_expand_kernel|_sum_splits" \
        --section SpeedOfLight --section LaunchStats --section WarpStateStats --section Occupancy \
        python -m benchmarks.ncu_case --shape 64/64/16 --ops shrink,expand

Calls our entry point of each operation ``--calls`` times on the sorted, then the per-sequence batch of the
shape (``lora_verify.bench``'s tensors), so that each kernel launch of each layout shows up in the profile in turn.
"""

import argparse

import torch

import impl
from lora_verify.bench import grid, inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64/64/16", help="a shape label of the grid, e.g. 64/64/16, p16x512/8/16")
    parser.add_argument("--ops", default="shrink,expand", help="comma-separated: " + ", ".join(grid.op_labels()))
    parser.add_argument("--calls", type=int, default=4, help="calls per operation and layout")
    parser.add_argument("--grid", choices=grid.GRIDS, default="full", help="where the shape is")
    parser.add_argument("--layer", choices=grid.LAYERS, default="8b")
    args = parser.parse_args()
    impl.debug(False)
    (shape,) = [s for s in grid.shapes(grid.GRIDS[args.grid]) if s.label == args.shape]
    for op_name in args.ops.split(","):
        case = inputs.build(grid.bench_op(grid.LAYERS[args.layer], op_name), shape, torch.device("cuda"))
        for layout in ("sorted", "unsorted"):
            fn = case.call(impl, getattr(case, layout), case.new_base())
            for _ in range(args.calls):
                fn()
            torch.cuda.synchronize()
            print(f"{op_name} {layout} {shape.label}: {args.calls} calls", flush=True)


if __name__ == "__main__":
    main()
