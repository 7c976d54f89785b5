"""Every kernel compiles for a Hopper GPU (sm_90) on any machine, CI's GPU-less one included.

Triton's interpreter, which runs the CPU suite, accepts code the compiler refuses (a global annotated
``tl.constexpr``, for one: it failed only on the GPU). The compile runs in a child process without
``TRITON_INTERPRET`` (``@triton.jit`` picks the interpreter at import) and ends in the ``ptxas`` that
ships in Triton's wheel, so it needs no GPU and no driver. ``CASES`` names each kernel's pointer
arguments and constants per configuration; other arguments are int32.
"""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

P32, BF16, F32 = "*i32", "*bf16", "*fp32"
BATCH = dict(seg_lens=P32, seg_indptr=P32, weight_indices=P32, lora_ranks=P32, permutation=P32, tiles=P32)
LAYOUTS = {  # the kernels' three ways to find a program's rows (impl/segments.py: program_rows)
    "unsorted": dict(SORTED=False, TABLE=False, SEGMENTS=1),
    "lookup": dict(SORTED=True, TABLE=False, SEGMENTS=64),
    "sorted": dict(SORTED=True, TABLE=True, SEGMENTS=1),
}
SHRINK = ("impl.shrink", "_shrink_kernel", dict(x=BF16, w=BF16, out=F32, **BATCH))  # out: the partials
FUSED = ("impl.shrink", "_shrink_kernel", dict(x=BF16, w=BF16, out=BF16, **BATCH))  # out: y
EXPAND = ("impl.expand", "_expand_kernel", dict(x=BF16, w=BF16, out=BF16, output_offset=P32, scalings=F32, **BATCH))
CASES = {
    **{
        f"shrink-{layout}": (*SHRINK, dict(**flags, GROUP=1, BLOCK_S=16, BLOCK_N=64, BLOCK_K=128, FUSED=False))
        for layout, flags in LAYOUTS.items()
    },
    "shrink-grouped": (*SHRINK, dict(**LAYOUTS["sorted"], GROUP=4, BLOCK_S=16, BLOCK_N=64, BLOCK_K=128, FUSED=False)),
    "shrink-fused": (*FUSED, dict(**LAYOUTS["unsorted"], GROUP=1, BLOCK_S=16, BLOCK_N=16, BLOCK_K=128, FUSED=True)),
    "shrink-grouped-fused": (
        *FUSED,
        dict(**LAYOUTS["sorted"], GROUP=4, BLOCK_S=16, BLOCK_N=16, BLOCK_K=128, FUSED=True),
    ),
    "sum_splits": (
        "impl.shrink",
        "_sum_splits_kernel",
        dict(partials=F32, y=BF16, seg_indptr=P32),
        dict(SPLITS=8, BLOCK=512),
    ),
    **{
        f"expand-{layout}-{offsets}": (
            *EXPAND,
            dict(**flags, OFFSETS_IN_TENSOR=offsets == "qkv", BLOCK_S=16, BLOCK_N=128, BLOCK_K=64, EVEN_K=True,
                 STAGES=3),
        )
        for layout, flags in LAYOUTS.items()
        for offsets in ("qkv", "uniform")
    },
    "expand-one-column-tile-uneven-rank": (  # R = 96: BLOCK_K 128, the rank mask on the weights' load
        *EXPAND,
        dict(**LAYOUTS["sorted"], OFFSETS_IN_TENSOR=False, BLOCK_S=16, BLOCK_N=64, BLOCK_K=128, EVEN_K=False, STAGES=1),
    ),
    **{
        f"route-{name}": (
            "impl.routing",
            "_route_kernel",
            dict(seg_indptr=P32, weight_indices=P32, chunk_counts=P32, permutation=P32, seg_lens_out=P32,
                 seg_indptr_out=P32, table=P32),
            dict(SLOTS=64, CHUNK=128, CHUNK_ROWS=rows, ONE_CHUNK=rows == 1, BLOCK_S=16),
        )
        for name, rows in (("one-chunk", 1), ("chunks", 16))
    },
    "count": ("impl.routing", "_count_kernel", dict(seg_indptr=P32, weight_indices=P32, chunk_counts=P32),
              dict(SLOTS=64, CHUNK=128)),
}


def compile_case(module, kernel, pointers, constants) -> str:
    """Compiles one case for sm_90 (in the child process); returns "" or the error."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(module), kernel)
    names = fn.arg_names
    missing = [p.name for p in fn.params if p.is_constexpr and p.name not in constants]
    unknown = sorted((set(pointers) | set(constants)) - set(names))
    if missing or unknown:
        return f"CASES is out of date: constants missing {missing}, names not in the kernel {unknown}"
    signature = {n: "constexpr" if n in constants else pointers.get(n, "i32") for n in names}
    source = ASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    try:
        triton.compile(source, target=GPUTarget("cuda", 90, 32))
    except Exception as exc:  # the compiler's error is the finding
        return f"{type(exc).__name__}: {exc}"
    return ""


@pytest.fixture(scope="module")
def compiled():
    """Every case's outcome, from one child process without the interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_compile"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_compiles_for_sm90(case, compiled):
    assert compiled[case] == "", f"{case}: {compiled[case][:3000]}"


def test_ptx_report_counts_the_tensor_core_instructions_and_ptxas_resources():
    """``benchmarks/ptx_sm90.py`` on one case with a constant overridden (a child process, as above)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.ptx_sm90", "shrink-sorted:BLOCK_N=16", "--warps", "4"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = done.stdout.strip()
    assert line.startswith("shrink-sorted:BLOCK_N=16") and re.search(r"warps 4: wgmma 0, mma.sync [1-9]\d*;", line)
    assert re.search(r"\d+ bytes spill stores.*Used \d+ registers", line), line


if __name__ == "__main__":
    print(json.dumps({name: compile_case(*spec) for name, spec in CASES.items()}))
