"""Whether a tunable constant's candidates give the same bits: ``python -m benchmarks.same_bits --set M.NAME=V1,V2``.

A launch choice made per batch (``impl.shrink.GROUP_MIN_ROWS``: table tiles grouped per program on large batches)
keeps a row's result independent of its batch only if every candidate computes the same bits. This runs each operation
of ``--ops`` on the benchmark grid's shapes (``benchmarks/tune.py``'s cases, both layouts) under every setting of
the ``--set`` constants and compares the outputs with the first setting's, exactly. Exit 1 when any differs.
"""

import argparse
import sys

import torch

import impl
from benchmarks import tune
from lora_verify import backend
from lora_verify.bench import grid, inputs


def outputs(case, layout, setting) -> torch.Tensor:
    """The op's output on ``case`` in ``layout`` with ``setting``'s constants in force (then restored)."""
    with tune.in_force(*setting):
        return case.call(impl, getattr(case, layout), case.new_base())().clone()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="shrink", help="the layer's operations (" + ", ".join(grid.op_labels()) + ")")
    parser.add_argument("--grid", choices=grid.GRIDS, default="full")
    parser.add_argument("--layer", choices=grid.LAYERS, default="8b")
    parser.add_argument("--phase", choices=("decode", "prefill", "all"), default="all")
    parser.add_argument("--shapes", default="", help="only these shape labels (comma-separated: 64/64/128,...)")
    parser.add_argument("--tiny", action="store_true", help="the tiny layer and shapes (the interpreter's dry run)")
    parser.add_argument("--set", action="append", required=True, metavar="MODULE.NAME=V1,V2",
                        help="the candidates compared (repeatable: every combination)")
    args = parser.parse_args(argv)
    impl.debug(False)
    device = backend.device()  # the GPU, or the CPU under the interpreter
    overrides = tune.parse_sets(args.set)
    layer = grid.TINY if args.tiny else grid.LAYERS[args.layer]
    shapes = tune.pick_shapes(parser, args, tiny=args.tiny)
    differing = 0
    for op_name in args.ops.split(","):
        bench_op = grid.bench_op(layer, op_name)
        candidates = list(tune.settings(tune.kernel_of(op_name), overrides))
        for shape in shapes:
            case = inputs.build(bench_op, shape, device)
            for layout in ("sorted", "unsorted"):
                first = outputs(case, layout, candidates[0])
                for setting in candidates[1:]:
                    other = outputs(case, layout, setting)
                    cells = int((first.view(torch.int16) != other.view(torch.int16)).sum())
                    differing += cells > 0
                    print(f"{op_name} {shape.label} {layout} {setting[1]} vs {candidates[0][1]}: "
                          + ("same bits" if not cells else f"{cells} cells differ"), flush=True)
    print(f"{differing} comparisons differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
