#!/usr/bin/env python3
"""Block shapes for our kernels, chosen by measurement: ``python benchmarks/tune.py [--out FILE]`` (GPU).

Times our sorted and unsorted shrink and expand over the issue's decode grid (bench.py's shapes and
tensors, CUDA-graph replay, median) for each candidate setting of the tunable module constants, and
prints per setting the geometric mean over the grid and the worst shape. Settings are applied by
assigning the constants (``impl/shrink.py``, ``impl/expand.py`` read them at every call); the chosen
values are then written into the source by hand, with this command's output in benchmarks/.
"""

import argparse
import importlib
import itertools
import math
import sys
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402

CANDIDATES = {
    "shrink": {"impl.shrink": {"BLOCK_K_LONG": (64, 128), "K_BLOCKS_PER_SPLIT": (1, 2, 4, 8)}},
    "expand": {"impl.expand": {"MIN_PROGRAMS": (192, 384, 768), "NUM_STAGES": (2, 3), "NUM_WARPS": (4, 8)}},
}


def settings(op_name):
    (module, space), = CANDIDATES[op_name].items()
    names = list(space)
    for values in itertools.product(*(space[n] for n in names)):
        yield module, dict(zip(names, values, strict=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--rep", type=int, default=10, help="do_bench_cudagraph rep in ms")
    parser.add_argument("--ops", default="shrink,expand", help="which of: " + ", ".join(CANDIDATES))
    args = parser.parse_args()
    impl = importlib.import_module("impl")
    device = torch.device("cuda")
    shapes = [s for s in bench.grid_shapes(False, False) if s.phase == "decode"]
    lines = [f"# tune.py on {torch.cuda.get_device_name()} (Triton {triton.__version__})", "",
             "| op | setting | layout | geomean us | worst shape (us) | " + " | ".join(s.label for s in shapes) + " |",
             "|---" * (5 + len(shapes)) + "|"]
    for op_name in args.ops.split(","):
        op = bench.OPS[op_name]
        cases = [bench.Case(impl, op, shape, bench.REAL, device) for shape in shapes]
        for module_name, setting in settings(op_name):
            module = importlib.import_module(module_name)
            saved = {k: getattr(module, k) for k in setting}
            for k, v in setting.items():
                setattr(module, k, v)
            try:
                for layout in ("sorted", "unsorted"):
                    times = []
                    for case in cases:
                        info = getattr(case, layout)
                        base = None if op.is_shrink else case.base.clone()
                        fn = case.call(impl, info, base)
                        times.append(bench.time_us(fn, args.rep))
                    geo = math.exp(sum(map(math.log, times)) / len(times))
                    worst = max(range(len(times)), key=lambda i: times[i])
                    label = ", ".join(f"{k}={v}" for k, v in setting.items())
                    lines.append(f"| {op_name} | {label} | {layout} | {geo:.2f} | {shapes[worst].label} "
                                 f"({times[worst]:.1f}) | " + " | ".join(f"{t:.1f}" for t in times) + " |")
                    print(lines[-1].split(" | ")[:5], flush=True)
            finally:
                for k, v in saved.items():
                    setattr(module, k, v)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
