"""The property suite's own host cost per checked batch, with the kernels and the reference stubbed out.

    python benchmarks/host_ceiling.py [--examples 100] [--bundle 1] [-k EXPR]

Runs ``lora_verify/suite/test_properties.py`` in this process (no xdist) against a null implementation of
SPEC.md's four entry points (defined here: it returns zeros or the base untouched, and routing's kernel
is replaced by an identity permutation with empty segments and an idle tile table), with a null float64
reference (zeros or the base, every cell defined): every property then holds, and what is left is
hypothesis, materialising the batches, the layouts' batch infos and the properties' own work. It prints
the checked batches, the CPU seconds of this process and their ratio: the most batches per second one
worker's core could check whatever the kernels and the reference cost (on CPU tensors; a GPU adds its
launches and copies).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1):
    return torch.zeros((x.shape[0], weights.shape[1]), dtype=x.dtype, device=x.device)


def _expand(x, weights, base_output):
    if base_output is not None:
        return base_output
    return torch.zeros((x.shape[0], weights.shape[1]), dtype=x.dtype, device=x.device)


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    return _expand(x, weights, base_output)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    return _expand(x, qkv_lora_b, base_output)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    return _expand(x, gate_up_lora_b, base_output)


def null_reference(x, weights, batch_info, *args, base_output=None, accum=torch.float64):
    shape = (x.shape[0], weights.shape[1])
    out = torch.zeros(shape, dtype=accum) if base_output is None else base_output.to("cpu", accum)
    return out, torch.ones(shape, dtype=torch.bool)


def null_route(seg_indptr, weight_indices, num_slots, num_tokens, out=None):
    from impl.segments import sorted_programs

    i32 = dict(dtype=torch.int32, device=seg_indptr.device)
    return (
        torch.arange(num_tokens, **i32),
        torch.zeros(num_slots, **i32),
        torch.zeros(num_slots + 1, **i32),
        torch.zeros((sorted_programs(num_tokens, num_slots), 3), **i32),
    )


class Counter:
    def pytest_sessionfinish(self, session):
        self.batches = session.config._lora_tally.batches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="hypothesis examples per test")
    parser.add_argument("--bundle", type=int, default=1, help="batches per example, up to (LORA_BUNDLE)")
    parser.add_argument("-k", default="", help="pytest -k expression (default: every property test)")
    args = parser.parse_args(argv)
    os.environ.update(TRITON_INTERPRET="1", HYPOTHESIS_PROFILE="fuzz", LORA_FUZZ_EXAMPLES=str(args.examples),
                      LORA_BUNDLE=str(args.bundle), LORA_FUZZ_DB=tempfile.mkdtemp(prefix="host-ceiling-db-"))
    sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
    torch.set_num_threads(1)
    import pytest

    import impl.routing
    from lora_verify.ops import OPS

    impl.routing.route = null_route
    for op in OPS:
        object.__setattr__(op, "reference", null_reference)
    counter, cases = Counter(), tempfile.mkdtemp(prefix="host-ceiling-cases-")
    wall, cpu = time.perf_counter(), time.process_time()
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-p", "lora_verify.plugin", "--impl", "host_ceiling", "-k", args.k,
         "--case-dir", cases, str(ROOT / "lora_verify/suite/test_properties.py")],
        plugins=[counter],
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = counter.batches
    print(f"{n} batches (bundles of up to {args.bundle}): {cpu:.1f} CPU s, {wall:.1f} s; "
          f"{1000 * cpu / n:.2f} CPU ms per batch: at most {n / cpu:.0f} batches/s per core")
    return code


if __name__ == "__main__":
    sys.exit(main())
