"""Block shapes for our kernels, chosen by measurement: ``python -m benchmarks.tune [--out FILE]`` (GPU).

Times our sorted and unsorted shrink and expand over the decode shapes of a benchmark grid (``lora_verify.bench``'s
shapes and tensors, CUDA-graph replay, median) for each candidate setting of the tunable module constants, and
prints per setting the geometric mean over the grid and the worst shape. Settings are applied by assigning the
constants (``impl/shrink.py``, ``impl/expand.py`` read them at every call); the chosen values are then written
into the source by hand, with this command's output in ``docs/experiments/``.
"""

import argparse
import importlib
import itertools
import math
from pathlib import Path

import torch
import triton

import impl
from lora_verify.bench import grid, inputs
from lora_verify.bench.timing import time_us

CANDIDATES = {
    "shrink": {"impl.shrink": {"BLOCK_K_LONG": (64, 128), "K_BLOCKS_PER_SPLIT": (1, 2, 4, 8)}},
    "expand": {"impl.expand": {"MIN_PROGRAMS": (192, 384, 768), "NUM_STAGES": (2, 3), "NUM_WARPS": (4, 8)}},
}


def settings(op_name):
    ((module, space),) = CANDIDATES[op_name].items()
    names = list(space)
    for values in itertools.product(*(space[n] for n in names)):
        yield module, dict(zip(names, values, strict=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--rep", type=int, default=10, help="ms of calls per CUDA-graph replay")
    parser.add_argument("--ops", default="shrink,expand", help="which of: " + ", ".join(CANDIDATES))
    parser.add_argument("--grid", choices=grid.GRIDS, default="small", help="whose decode shapes")
    parser.add_argument("--layer", choices=grid.LAYERS, default="8b")
    args = parser.parse_args()
    impl.debug(False)
    device = torch.device("cuda")
    shapes = [s for s in grid.shapes(grid.GRIDS[args.grid]) if s.phase == "decode"]
    lines = [f"# tune.py on {torch.cuda.get_device_name()} (Triton {triton.__version__}), layer {args.layer}", "",
             "| op | setting | layout | geomean us | worst shape (us) | " + " | ".join(s.label for s in shapes) + " |",
             "|---" * (5 + len(shapes)) + "|"]
    for op_name in args.ops.split(","):
        bench_op = grid.bench_op(grid.LAYERS[args.layer], op_name)
        cases = [inputs.build(bench_op, shape, device) for shape in shapes]
        for module_name, setting in settings(op_name):
            module = importlib.import_module(module_name)
            saved = {k: getattr(module, k) for k in setting}
            for k, v in setting.items():
                setattr(module, k, v)
            try:
                for layout in ("sorted", "unsorted"):
                    times = [time_us(case.call(impl, getattr(case, layout), case.new_base()), args.rep)
                             for case in cases]
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
