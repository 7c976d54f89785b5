"""Block shapes for our kernels, chosen by measurement: ``python -m benchmarks.tune [--out FILE]`` (GPU).

Times our sorted and unsorted shrink and expand over a benchmark grid's shapes, decode by default
(``lora_verify.bench``'s shapes and tensors, CUDA-graph replay, median), for each candidate setting of the tunable
module constants, and prints per setting the geometric mean over the grid and the worst shape. Settings are applied by
assigning the constants (``impl/shrink.py``, ``impl/expand.py`` read them at every call); the chosen values are then
written into the source by hand, with this command's output in ``docs/experiments/``.

``--ops`` takes any operation of the layer (``down_shrink``, ``qkv_expand``: the candidates of its kernel),
``--phase`` and ``--shapes`` pick the shapes, and ``--set MODULE.NAME=V1,V2`` replaces the candidates of that module's
kernel (each ``--set`` one more dimension): e.g. ``--set impl.shrink.GROUP=1,4 --set impl.shrink.NUM_STAGES=2,3,4``.
``--peer`` times a peer's rows on the same cases in the same process, for a side-by-side figure.
"""

import argparse
import contextlib
import importlib
import itertools
import math
from pathlib import Path

import torch
import triton

import impl
from lora_verify import backend
from lora_verify.bench import grid, inputs, peers
from lora_verify.bench.timing import time_us

CANDIDATES = {
    # the split length: K_BLOCKS_PER_SPLIT up to LONG_SPLIT_K, K_BLOCKS_PER_LONG_SPLIT past it
    "shrink": {"impl.shrink": {"BLOCK_K_LONG": (64, 128), "K_BLOCKS_PER_SPLIT": (2, 4, 8),
                               "K_BLOCKS_PER_LONG_SPLIT": (4, 8, 16)}},
    "expand": {"impl.expand": {"MIN_PROGRAMS": (192, 384, 768), "NUM_STAGES": (2, 3), "NUM_WARPS": (4, 8)}},
}


def kernel_of(label: str) -> str:
    """The kernel (a key of ``CANDIDATES``) of a benchmark operation: ``down_shrink`` -> ``shrink``."""
    return label.rsplit("_", 1)[-1]


def parse_sets(specs) -> dict:
    """``["impl.shrink.GROUP=1,4", ...]`` -> ``{"impl.shrink": {"GROUP": (1, 4)}}`` (integer values)."""
    space: dict = {}
    for spec in specs:
        target, values = spec.split("=", 1)
        module, name = target.rsplit(".", 1)
        space.setdefault(module, {})[name] = tuple(int(v) for v in values.split(","))
    return space


def settings(kernel, overrides=None):
    """``(module, {name: value})`` for every candidate setting of ``kernel``'s constants (``overrides``: a
    ``parse_sets`` result, whose space replaces the default one of the same module)."""
    ((module, space),) = CANDIDATES[kernel].items()
    space = (overrides or {}).get(module, space)
    names = list(space)
    for values in itertools.product(*(space[n] for n in names)):
        yield module, dict(zip(names, values, strict=True))


@contextlib.contextmanager
def in_force(module_name: str, values: dict):
    """``values`` assigned to the module's constants for the duration, then the old ones put back."""
    module = importlib.import_module(module_name)
    saved = {k: getattr(module, k) for k in values}
    try:
        for k, v in values.items():
            setattr(module, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(module, k, v)


def pick_shapes(parser, args, tiny: bool = False) -> list:
    """The shapes of ``args.grid``'s ``args.phase`` named by ``args.shapes`` (all when it is empty)."""
    shapes = [s for s in grid.shapes(grid.GRIDS[args.grid], tiny=tiny, phase=args.phase)
              if not args.shapes or s.label in args.shapes.split(",")]
    if not shapes:
        parser.error(f"no shape of the {args.grid} grid's {args.phase} shapes is named by --shapes {args.shapes}")
    return shapes


def table_row(op_name, label, layout, shapes, times) -> str:
    """One row of the table: the geometric mean, the worst shape, every shape's time (us); ``None`` where the row
    does not apply (a baseline's ``-``: its mean and worst are over the shapes it applies to)."""
    timed = [i for i, t in enumerate(times) if t is not None]
    geo = math.exp(sum(math.log(times[i]) for i in timed) / len(timed))
    worst = max(timed, key=lambda i: times[i])
    return (f"| {op_name} | {label} | {layout} | {geo:.2f} | {shapes[worst].label} ({times[worst]:.1f}) | "
            + " | ".join("-" if t is None else f"{t:.1f}" for t in times) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--rep", type=int, default=10, help="ms of calls per CUDA-graph replay")
    parser.add_argument("--ops", default="shrink,expand", help="the layer's operations (" + ", ".join(grid.op_labels())
                        + ")")
    parser.add_argument("--grid", choices=grid.GRIDS, default="small", help="whose shapes")
    parser.add_argument("--layer", choices=grid.LAYERS, default="8b")
    parser.add_argument("--phase", choices=("decode", "prefill", "all"), default="decode")
    parser.add_argument("--shapes", default="", help="only these shape labels (comma-separated: 64/64/128,...)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME",
                        help="also time this peer (lora_verify.bench.peers.ADAPTERS: sglang, vllm, ...) or baseline "
                        "(torch, cuBLAS: one-adapter shapes only) on the cases")
    parser.add_argument("--layouts", default="sorted,unsorted", help="ours on these layouts (comma-separated)")
    parser.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=V1,V2",
                        help="candidates of one constant, in place of the module's defaults (repeatable)")
    args = parser.parse_args()
    overrides = parse_sets(args.set)
    impl.debug(False)
    device = backend.device()  # the GPU; the CPU under the interpreter (tests/test_bench.py: a fake clock)
    shapes = pick_shapes(parser, args)
    lines = [f"# tune.py on {torch.cuda.get_device_name()} (Triton {triton.__version__}), layer {args.layer}", "",
             "| op | setting | layout | geomean us | worst shape (us) | " + " | ".join(s.label for s in shapes) + " |",
             "|---" * (5 + len(shapes)) + "|"]
    known = [p for p in args.peer if p in {label for label, *_ in peers.ADAPTERS}]  # the rest name baselines
    named = [c for c in peers.contenders(peers=known) if c.name.rsplit(" ", 1)[0] in args.peer]
    rivals = [c for c in named if not c.skip and (not c.applies or any(map(c.applies, shapes)))]
    skipped = [f"- {c.name}: skipped ({c.skip})" for c in named if c.skip]
    skipped += [f"- {c.name}: skipped (no shape named is one it applies to)" for c in named
                if not c.skip and c not in rivals]
    for op_name in args.ops.split(","):
        bench_op = grid.bench_op(grid.LAYERS[args.layer], op_name)
        cases = [inputs.build(bench_op, shape, device) for shape in shapes]

        def row(label, layout, calls, op_name=op_name):  # a call of None: a shape the row does not apply to
            times = [None if call is None else time_us(call, args.rep) for call in calls]
            lines.append(table_row(op_name, label, layout, shapes, times))
            print(lines[-1].split(" | ")[:5], flush=True)
            if args.out:  # as it goes: a run stopped at a call's limit keeps its rows
                args.out.write_text("\n".join(lines) + "\n")

        for rival in rivals:  # the same cases, the same process: its times side by side with every setting's
            try:
                row(rival.name, "-", [rival.make(case, case.new_base()) if not rival.applies or rival.applies(shape)
                                      else None for case, shape in zip(cases, shapes, strict=True)])
            except peers.Skip as why:
                skipped.append(f"- {op_name}, {rival.name}: skipped ({why})")
        for module_name, setting in settings(kernel_of(op_name), overrides):
            label = ", ".join(f"{k}={v}" for k, v in setting.items())
            try:
                with in_force(module_name, setting):
                    for layout in args.layouts.split(","):
                        row(label, layout, [case.call(impl, getattr(case, layout), case.new_base()) for case in cases])
            except Exception as exc:  # a setting that does not compile (shared memory, registers): said, not fatal
                skipped.append(f"- {op_name}, {label}: failed ({peers.first_line(exc)})")
                print(skipped[-1], flush=True)
    lines += [""] + skipped if skipped else []
    print("\n".join(skipped), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
