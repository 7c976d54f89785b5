"""impl's kernels compiled for a Hopper GPU (sm_90) on any machine: the compile cases and their compile.

``CASES`` names, per kernel configuration, each kernel's pointer arguments (their types) and constants; other
arguments are int32. The compile ends in the ``ptxas`` that ships in Triton's wheel, so it needs no GPU and no
driver. It must run in a process without ``TRITON_INTERPRET`` (``@triton.jit`` picks the interpreter at import):
``python -m lora_verify.sm90`` prints every case's outcome as JSON (``tests/test_compile.py`` runs it so);
``benchmarks/compile_time.py`` times the compile, ``benchmarks/ptx_sm90.py`` reads the PTX.
"""

import importlib
import json
from typing import Optional

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

TARGET = GPUTarget("cuda", 90, 32)
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
    **{  # 64 rows a program, looked up (impl.expand.rows_per_program), at WIDE_WARPS (WARPS below); rank 128 (its
        # column tile widened to WIDE_BLOCK_N): the largest blocks it launches
        f"expand-wide{suffix}": (
            *EXPAND,
            dict(**LAYOUTS["lookup"], OFFSETS_IN_TENSOR=suffix == "-qkv", BLOCK_S=64, BLOCK_N=128, BLOCK_K=128,
                 EVEN_K=True, STAGES=2),
        )
        for suffix in ("", "-qkv")
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


# cases launched with other than 4 warps: the constant saying so
WARPS = {case: ("impl.expand", "WIDE_WARPS") for case in ("expand-wide", "expand-wide-qkv")}


def warps_of(case: str) -> int:
    """The warps ``case``'s launches use: the constant ``WARPS`` names, else 4."""
    module, name = WARPS.get(case, (None, None))
    return getattr(importlib.import_module(module), name) if module else 4


def kernel(case: str, overrides=None, warps: Optional[int] = None):
    """``CASES[case]`` (its constants updated by ``overrides``) compiled for sm_90 with ``warps`` warps (None: the
    launch's, ``warps_of``): Triton's compiled kernel (``.asm["ptx"]``, ``.asm["cubin"]``). Raises what the compiler
    raises."""
    module, name, pointers, constants = CASES[case]
    constants = {**constants, **(overrides or {})}
    fn = getattr(importlib.import_module(module), name)
    names = fn.arg_names
    missing = [p.name for p in fn.params if p.is_constexpr and p.name not in constants]
    unknown = sorted((set(pointers) | set(constants)) - set(names))
    if missing or unknown:
        raise ValueError(f"CASES is out of date: constants missing {missing}, names not in the kernel {unknown}")
    signature = {n: "constexpr" if n in constants else pointers.get(n, "i32") for n in names}
    source = ASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    return triton.compile(source, target=TARGET, options={"num_warps": warps or warps_of(case)})


def outcome(case: str) -> str:
    """The empty string if ``case`` compiles, else the error (the finding)."""
    try:
        kernel(case)
    except Exception as exc:  # the compiler's error is the finding
        return f"{type(exc).__name__}: {exc}"
    return ""


if __name__ == "__main__":
    print(json.dumps({name: outcome(name) for name in CASES}))
