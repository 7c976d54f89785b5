#!/usr/bin/env python3
"""What does the same multiply cost with no adapters at all? ``python benchmarks/dense_floor.py [--out FILE]`` (GPU).

Issue 7 asks every decode shape to take at most 2x the larger of its byte roofline and the launch floor
(one empty launch). For each decode shape of shrink and expand this times, in one run, CUDA-graph replay,
median, like bench.py:

- ``ours sorted``: our kernels on the sorted layout (what the issue measures);
- ``ours, 1 segment``: our kernels on one segment of all the tokens on slot 0 (no routing, no gather: the
  same kernels' floor on this shape);
- ``cuBLAS dense``: ``torch.mm`` (shrink) or ``Tensor.addmm_`` (expand) with slot 0's weight: the vendor's
  dense GEMM of the same size, with no adapters, routing or gather.

With one adapter the three compute the same product. Where even the dense GEMM takes more than the
target, the target is below what a plain matmul of that shape takes on this GPU.
"""

import argparse
import sys
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402

import impl  # noqa: E402


def dense_call(case: bench.Case, base):
    """Slot 0's weight applied to every token by cuBLAS (expand: added into ``base``, scaled like slot 0)."""
    x, w = case.x, case.weights[0]
    if case.op.is_shrink:
        out = torch.empty(x.shape[0], w.shape[0], device=x.device, dtype=x.dtype)
        return lambda: torch.mm(x, w.T, out=out)
    scaling = float(case.scalings[0])
    return lambda: base.addmm_(x, w.T, alpha=scaling)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--rep", type=int, default=20, help="do_bench_cudagraph rep in ms")
    args = parser.parse_args()
    device = torch.device("cuda")
    impl.debug(False)
    runner = bench.Bench(bench.parse_args(["--rep", str(args.rep)]), device)
    runner.measure_copy()
    runner.measure_floor()
    floor = runner.floor_us
    lines = [f"# dense_floor.py on {torch.cuda.get_device_name()} (torch {torch.__version__}, Triton "
             f"{triton.__version__})", "",
             f"times in us; copy bandwidth {runner.copy_gbps:,.0f} GB/s, one empty launch {floor:.2f} us; "
             "target = 2 x max(roofline, one empty launch)", "",
             "| op | b/a/r | roofline | target | ours sorted | ours, 1 segment | cuBLAS dense | "
             "ours sorted / target | cuBLAS dense / target |",
             "|---|---|---|---|---|---|---|---|---|"]
    shapes = [s for s in bench.grid_shapes(False, False) if s.phase == "decode"]
    for op_name in ("shrink", "expand"):
        for shape in shapes:
            case = bench.Case(impl, bench.OPS[op_name], shape, bench.REAL, device)
            S, A, R = shape.tokens, shape.adapters, shape.rank
            one_segment = impl.per_sequence([S], [0], [R] * A, [1.0] * A, device=device)
            base = case.base.clone() if not case.op.is_shrink else None
            calls = (case.call(impl, case.sorted, base), case.call(impl, one_segment, base), dense_call(case, base))
            times = []
            for call in calls:
                call()  # compiles outside the timed region
                times.append(bench.time_us(call, args.rep))
            roofline = case.bytes / (runner.copy_gbps * 1e3)
            target = 2 * max(roofline, floor)
            lines.append(f"| {op_name} | {shape.label} | {roofline:.2f} | {target:.2f} | "
                         + " | ".join(f"{t:.2f}" for t in times)
                         + f" | {times[0] / target:.2f} | {times[2] / target:.2f} |")
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
