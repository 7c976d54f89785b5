"""Did a kernel edit make it faster? ``python -m benchmarks.compare OLD_IMPL_DIR [--new DIR] [--ops ...]`` (GPU).

Times this tree's ``impl`` (or the one under ``--new DIR``) and another copy of the package (``OLD_IMPL_DIR``,
e.g. made with ``git archive HEAD~1 impl | tar -x -C /tmp/old``: the folder that holds ``impl/``) in one
process, on the decode shapes of a benchmark grid (``lora_verify.bench``; ``--shapes``: prefill, all), both
layouts, CUDA-graph replay, median, the two alternating shape by shape so that clock drift hits both alike.
Prints per operation and layout the time of each, new / old per shape and the geometric mean of new / old;
checks first that both give the same output bit for bit (the ``sorted == unsorted`` and batch-invariance
properties make that expected of a re-tiling). ``--routing`` times the two ``sort_by_adapter`` instead, on every
batch of the grid (decode and prefill), and checks that they give the same permutation, segments and tile table.
"""

import argparse
import functools
import importlib.util
import math
import sys
from pathlib import Path

import torch
import triton

from benchmarks import tune
from lora_verify.bench import grid, inputs
from lora_verify.bench.timing import time_us


def load_package(folder: Path, name: str):
    """``folder/impl`` imported under ``name`` (its relative imports resolve inside it)."""
    spec = importlib.util.spec_from_file_location(name, folder / "impl" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def set_constants(package, specs) -> None:
    """``["impl.shrink.GROUP=4", ...]`` (``benchmarks/tune.py``'s ``--set``, one value each) assigned to
    ``package``'s modules (the new impl, whatever name it was loaded under)."""
    for module, values in tune.parse_sets(specs).items():
        target = importlib.import_module(package.__name__ + module.removeprefix("impl"))
        for name, (value,) in values.items():
            setattr(target, name, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="folder holding the other impl/ package")
    parser.add_argument("--new", type=Path, default=None, help="folder holding the new impl/ (default: this tree's)")
    parser.add_argument("--ops", default="shrink,expand", help="comma-separated: " + ", ".join(grid.op_labels()))
    parser.add_argument("--rep", type=int, default=20, help="ms of calls per CUDA-graph replay")
    parser.add_argument("--grid", choices=grid.GRIDS, default="small", help="whose decode shapes")
    parser.add_argument("--layer", choices=grid.LAYERS, default="8b")
    parser.add_argument("--shapes", choices=("decode", "prefill", "all"), default="decode", help="which of the grid's")
    parser.add_argument("--routing", action="store_true", help="time the two routings instead of the kernels")
    parser.add_argument("--set", action="append", default=[], metavar="impl.MODULE.NAME=V",
                        help="a constant of the new impl for the run, as tune.py names it (repeatable)")
    args = parser.parse_args()
    new = importlib.import_module("impl") if args.new is None else load_package(args.new, "impl_new")
    set_constants(new, args.set)
    old = load_package(args.old, "impl_old")
    device = torch.device("cuda")
    shapes = grid.shapes(grid.GRIDS[args.grid], phase=args.shapes)
    print(f"{torch.cuda.get_device_name()}, Triton {triton.__version__}; new = {Path(new.__file__).parent}, "
          f"old = {Path(old.__file__).parent}")
    if args.routing:
        return compare_routing(new, old, grid.shapes(grid.GRIDS[args.grid]), args.rep, device)
    for op_name in args.ops.split(","):
        bench_op = grid.bench_op(grid.LAYERS[args.layer], op_name)
        for layout in ("sorted", "unsorted"):
            ratios = []
            for shape in shapes:
                case = inputs.build(bench_op, shape, device)
                info = getattr(case, layout)
                outs = [case.call(m, info, case.new_base())() for m in (new, old)]
                same = torch.equal(outs[0], outs[1])
                times = [time_us(case.call(m, info, case.new_base()), args.rep) for m in (new, old)]
                ratios.append(times[0] / times[1])
                print(f"{op_name:<15} {layout:<8} {shape.label:<14} new {times[0]:7.2f} us  old {times[1]:7.2f} us"
                      f"  new/old {ratios[-1]:.3f}  {'bit-identical' if same else 'OUTPUTS DIFFER'}", flush=True)
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
            print(f"{op_name:<15} {layout:<8} geomean new/old {geo:.3f}  (worst {max(ratios):.3f})", flush=True)


def compare_routing(new, old, shapes, rep, device):
    """Each distinct batch of ``shapes`` routed by both, timed side by side; outputs compared bit for bit."""
    ratios, seen = [], set()
    for shape in shapes:
        if shape.batch in seen:
            continue
        seen.add(shape.batch)
        per_seq = inputs.batch_infos(shape, device)[0]
        routed = [m.sort_by_adapter(per_seq, shape.tokens) for m in (new, old)]
        fields = ("permutation", "seg_lens", "seg_indptr", "tiles")
        same = all(torch.equal(getattr(routed[0], f), getattr(routed[1], f)) for f in fields)
        calls = [functools.partial(m.sort_by_adapter, per_seq, shape.tokens) for m in (new, old)]
        times = [time_us(call, rep) for call in calls]
        ratios.append(times[0] / times[1])
        print(f"routing {shape.batch:<14} tokens {shape.tokens:<6} new {times[0]:7.2f} us  old {times[1]:7.2f} us"
              f"  new/old {ratios[-1]:.3f}  {'bit-identical' if same else 'OUTPUTS DIFFER'}", flush=True)
    geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"routing geomean new/old {geo:.3f}  (worst {max(ratios):.3f})", flush=True)


if __name__ == "__main__":
    main()
