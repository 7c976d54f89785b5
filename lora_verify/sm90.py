"""impl's kernels compiled for a Hopper GPU (sm_90) on any machine: the compile cases and their compile.

``CASES`` names, per kernel configuration, each kernel's pointer arguments (their types) and constants; other
arguments are int32. A case compiles as a launch at a real model's shapes is specialized (``aligned``): pointers
16-byte aligned and ``ALIGNED_INTS`` multiples of 16, so that its loads are vectorized and copied asynchronously;
or, with ``aligned=False``, as a launch at the suite's odd sizes is, without those hints. The compile ends in the
``ptxas`` that ships in Triton's wheel, so it needs no GPU and no driver. It must run in a process without
``TRITON_INTERPRET`` (``@triton.jit`` picks the interpreter at import): ``python -m lora_verify.sm90`` prints every
case's outcome (both alignments) as JSON, ``--shared`` the shared memory of every launch impl's rules give
(``tests/test_compile.py`` runs both); ``benchmarks/compile_time.py`` times the compile, ``benchmarks/ptx_sm90.py``
reads the PTX.
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


# per kernel, the integer arguments that are multiples of 16 at a real model's shapes (hidden sizes, ranks of 16
# and more, and their strides), where Triton's launch specializes them (divisibility 16) as it does aligned pointers
ALIGNED_INTS = {
    "_shrink_kernel": ("K", "k_split", "x_stride", "w_stride_l", "w_stride_n", "out_stride_split", "out_stride_row"),
    "_sum_splits_kernel": ("N", "p_stride_split"),
    "_expand_kernel": ("slice_width", "x_stride", "w_stride_l", "w_stride_n", "out_stride"),
}


# cases launched with other than 4 warps: the constant saying so
WARPS = {case: ("impl.expand", "WIDE_WARPS") for case in ("expand-wide", "expand-wide-qkv")}


def warps_of(case: str) -> int:
    """The warps ``case``'s launches use: the constant ``WARPS`` names, else 4."""
    module, name = WARPS.get(case, (None, None))
    return getattr(importlib.import_module(module), name) if module else 4


def kernel(case: str, overrides=None, warps: Optional[int] = None, element: str = BF16, stages: Optional[int] = None,
           aligned: bool = True):
    """``CASES[case]`` (its constants updated by ``overrides``, its bfloat16 pointers of type ``element``) compiled
    for sm_90 with ``warps`` warps (None: the launch's, ``warps_of``) and ``stages`` (None: Triton's default), with a
    real shape's alignment or not (``aligned``): Triton's compiled kernel (``.asm["ptx"]``, ``.asm["cubin"]``,
    ``.metadata.shared``). Raises what the compiler raises."""
    module, name, pointers, constants = CASES[case]
    pointers = {n: element if t == BF16 else t for n, t in pointers.items()}
    constants = {**constants, **(overrides or {})}
    fn = getattr(importlib.import_module(module), name)
    names = fn.arg_names
    missing = [p.name for p in fn.params if p.is_constexpr and p.name not in constants]
    unknown = sorted((set(pointers) | set(constants) | set(ALIGNED_INTS.get(name, ()))) - set(names))
    if missing or unknown:
        raise ValueError(f"CASES is out of date: constants missing {missing}, names not in the kernel {unknown}")
    signature = {n: "constexpr" if n in constants else pointers.get(n, "i32") for n in names}
    ints = [n for n in ALIGNED_INTS.get(name, ()) if n not in constants]
    hinted = [n for n in names if signature[n].startswith("*") or n in ints]
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in hinted} if aligned else {}
    source = ASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in constants.items()}, attrs=attrs)
    options = {"num_warps": warps or warps_of(case), **({"num_stages": stages} if stages else {})}
    return triton.compile(source, target=TARGET, options=options)


def outcome(case: str) -> str:
    """The empty string if ``case`` compiles both aligned and not, else the error (the finding)."""
    for aligned in (True, False):
        try:
            kernel(case, aligned=aligned)
        except Exception as exc:  # the compiler's error is the finding
            return f"{'aligned' if aligned else 'unaligned'}: {type(exc).__name__}: {exc}"
    return ""


# the shared memory one program may use on sm_90 (227 KB: H100 and H200); past it the launch raises OutOfResources
SHARED_LIMIT = 232448
SHRINK_CASES = {(False, False): "shrink-sorted", (True, False): "shrink-grouped", (False, True): "shrink-fused",
                (True, True): "shrink-grouped-fused"}  # (GROUP > 1, FUSED) -> the case of that launch


def launches(max_rank: int) -> dict:
    """``{label: (case, overrides, warps, stages)}``: every block configuration impl's launch rules give shrink and
    expand for ranks up to ``max_rank`` (the GPU tier's largest: ``lora_verify.layers.RANKS``), on every launch
    whatever its thresholds (the suite's grouped variant sets them to 0); ``stages``: the compile's ``num_stages``
    (None: Triton's default). A label is ``benchmarks.ptx_sm90``'s spec of the case, then the stages if set."""
    from impl import expand, shrink

    found = {}
    for R in range(1, max_rank + 1):
        for wide in (False, True):  # with two column tiles a program or more: the most loads in flight
            options = expand.launch_options(R, wide, group=2)
            warps = options.pop("num_warps")
            for offsets in ("uniform", "qkv"):  # qkv: two column loops, the vector one and the element one
                case = f"expand-{'lookup' if wide else 'sorted'}-{offsets}"
                found[(case, tuple(options.items()), warps, None)] = 1
    for K in (256, 4096):  # each side of shrink_blocks' long-K rule
        for N in range(1, 3 * max_rank + 1):  # qkv's three slices at most
            block_n, block_k, _ = shrink.shrink_blocks(K, N)
            for rows in (1, shrink.STAGES_MIN_ROWS):
                for group in (1, shrink.GROUP):
                    for fused in (False, True):
                        case = SHRINK_CASES[group > 1, fused]
                        options = (("BLOCK_N", block_n), ("BLOCK_K", block_k), ("GROUP", group), ("FUSED", fused))
                        found[(case, options, shrink.NUM_WARPS, shrink.num_stages(rows, N))] = 1
    return {
        f"{case}:{','.join(f'{k}={v}' for k, v in options)}" + (f" (num_stages {stages})" if stages else ""):
        (case, dict(options), warps, stages)
        for case, options, warps, stages in found
    }


def shared(case: str, overrides: dict, warps: int, stages=None):
    """Bytes of shared memory a program of ``case`` with ``overrides`` takes with float32 inputs (the widest
    element: every tile grows with it), aligned or not (the larger), or the compiler's error."""
    try:
        return max(kernel(case, overrides, warps, element=F32, stages=stages, aligned=aligned).metadata.shared
                   for aligned in (True, False))
    except Exception as exc:  # the compiler's error is the finding
        return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--shared"]:  # every launch's shared memory (tests/test_compile.py)
        from lora_verify.layers import RANKS

        print(json.dumps({label: shared(*launch) for label, launch in launches(max(RANKS)).items()}))
    else:
        print(json.dumps({name: outcome(name) for name in CASES}))
