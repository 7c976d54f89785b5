"""One benchmark shape called a few times per layout, for a profiler, and the profile as a table.

    ncu --clock-control none --profile-from-start off --csv --page details \
        --section SpeedOfLight --section LaunchStats --section Occupancy \
        python -m benchmarks.ncu_case --shape 1024/1/128 --ops qkv_expand --layouts sorted --cublas > PROFILE.csv
    python -m benchmarks.ncu_case --table PROFILE.csv

Calls our entry point of each operation ``--calls`` times on each layout of the shape (``lora_verify.bench``'s
tensors), and with ``--cublas`` the benchmark's cuBLAS dense row of a one-adapter shape as often, so that each
kernel launch shows up in the profile in turn. Only the calls are profiled (``torch.cuda.profiler`` starts and
stops around them: building the tensors and routing launch kernels too). ``--table`` renders ncu's CSV: a row per
kernel launch, duration, throughputs, registers, occupancy.
"""

import argparse
import csv
import sys

COLUMNS = (  # (heading, ncu's metric name): SpeedOfLight, LaunchStats, Occupancy
    ("us", "Duration"),
    ("DRAM %", "DRAM Throughput"),
    ("memory %", "Memory Throughput"),
    ("L2 %", "L2 Cache Throughput"),
    ("SM %", "Compute (SM) Throughput"),
    ("regs", "Registers Per Thread"),
    ("smem KiB", "Dynamic Shared Memory Per Block"),
    ("waves", "Waves Per SM"),
    ("occupancy %", "Achieved Occupancy"),
)
# ncu's units of a duration, in us: the lent GPU's ncu writes ns and us, older releases nsecond and usecond
US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}
KIB = {"byte/block": 1 / 1024}  # the shared memory's unit, the one seen: another fails loudly


def table(rows) -> str:
    """Markdown of ncu's ``--csv --page details`` rows (dicts): one line per launch, in profile order."""
    launches = {}
    for row in rows:
        launch = launches.setdefault(row["ID"], {"kernel": row["Kernel Name"], "grid": row["Grid Size"],
                                                 "block": row["Block Size"]})
        value, unit = row["Metric Value"], row["Metric Unit"]
        if row["Metric Name"] == "Duration":  # ncu picks the unit per launch
            value = f"{float(value.replace(',', '')) * US[unit]:.2f}"
        elif row["Metric Name"] == "Dynamic Shared Memory Per Block":
            value = f"{float(value.replace(',', '')) * KIB[unit]:.0f}"
        launch[row["Metric Name"]] = value
    heads = ["kernel", "grid", "block"] + [h for h, _ in COLUMNS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for launch in launches.values():
        name = launch["kernel"].split("(")[0][:60]
        cells = [name, launch["grid"], launch["block"]] + [launch.get(metric, "") for _, metric in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calls(args) -> None:
    import torch

    import impl
    from lora_verify.bench import grid, inputs, peers

    impl.debug(False)
    (shape,) = [s for s in grid.shapes(grid.GRIDS[args.grid]) if s.label == args.shape]
    dense = next(c for c in peers.contenders(peers=[]) if c.kind == "dense")  # the benchmark's cuBLAS row
    if args.cublas and not dense.applies(shape):
        sys.exit(f"--cublas: {shape.label} is not a one-adapter shape")
    for op_name in args.ops.split(","):
        case = inputs.build(grid.bench_op(grid.LAYERS[args.layer], op_name), shape, torch.device("cuda"))
        fns = [(layout, case.call(impl, getattr(case, layout), case.new_base())) for layout in args.layouts.split(",")]
        if args.cublas:
            fns.append((dense.name, dense.make(case, case.new_base())))
        for name, fn in fns:
            fn()  # compiled and warm before the profile starts
            torch.cuda.synchronize()
            torch.cuda.profiler.start()
            for _ in range(args.calls):
                fn()
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()
            print(f"{op_name} {name} {shape.label}: {args.calls} calls", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", metavar="CSV", help="render ncu's CSV (--csv --page details) as markdown, and stop")
    parser.add_argument("--shape", default="64/64/16", help="a shape label of the grid, e.g. 64/64/16, p16x512/8/16")
    parser.add_argument("--ops", default="shrink,expand", help="comma-separated operation labels of the grid")
    parser.add_argument("--layouts", default="sorted,unsorted", help="comma-separated: sorted, unsorted")
    parser.add_argument("--cublas", action="store_true", help="also the cuBLAS dense row (one-adapter shapes)")
    parser.add_argument("--calls", type=int, default=4, help="calls per operation and layout")
    parser.add_argument("--grid", default="full", help="where the shape is")
    parser.add_argument("--layer", default="8b")
    args = parser.parse_args()
    if args.table:
        with open(args.table, newline="") as f:
            lines = [line for line in f if line.startswith('"')]  # ncu's own log lines start with ==PROF==
        print(table(csv.DictReader(lines)))
        return
    calls(args)


if __name__ == "__main__":
    main()
