"""sglang's own Triton LoRA kernels behind SPEC.md's four entry points: ``--impl lora_verify.adapters.sglang``.

What sglang has (0.5.23): the four segmented matmuls live in ``sglang/kernels/ops/lora/dense/``
(``sgemm_lora_a.py``, ``sgemm_lora_b.py``, ``qkv_lora_b.py``, ``gate_up_lora_b.py``, sharing
``kernel_utils.py``). Their launch wrappers take SPEC.md's names and argument order and read
these batch-info fields: ``bs`` and ``max_len`` (grid size), ``seg_lens``, ``seg_indptr``,
``weight_indices``, ``lora_ranks`` (int32), ``scalings`` (float32) and ``permutation``: not None
selects the sorted path (constexpr ``SORTED_BY_ADAPTER``), where offset ``j`` of segment ``i`` is
row ``permutation[seg_indptr[i] + j]``, SPEC.md's sorted layout. (``.../lora/common/`` is another
API, RouteView-based grouped GEMMs for sglang's newer engine, not these entry points.)

Why the loader: a plain ``import sglang.kernels.ops.lora.dense.sgemm_lora_a`` first runs
``sglang/__init__.py`` (the whole runtime: orjson, transformers, ...), and each leaf imports
``sglang.srt.lora.utils`` (ForwardBatch, AutoConfig) only for a type annotation. With sglang
installed ``--no-deps``, or only the five kernel files carried to a machine, both fail. So the
leaves are imported under empty parent packages whose ``__path__`` is the real directory, with
``sglang.srt.lora.utils`` stubbed; the ``sglang*`` entries are then dropped from ``sys.modules``
so that a later real ``import sglang`` is unaffected. ``@triton.jit`` picks interpreter or
compiler when this module is imported: import it after the backend is chosen (conftest does).

What it claims (``PROFILE``, lora_verify.profiles): both layouts; expands that round the LoRA term to
the output dtype before adding ``base`` ("lora_first"); a dense ``x`` only (its shrink and expand
wrappers ``assert x.is_contiguous()``, and sglang's own callers always pass a dense one); no named
input errors.
"""

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from lora_verify.profiles import Profile

DENSE = "sglang.kernels.ops.lora.dense"
ENTRY_FILES = {  # entry point -> its file in sglang/kernels/ops/lora/dense/
    "sgemm_lora_a_fwd": "sgemm_lora_a",
    "sgemm_lora_b_fwd": "sgemm_lora_b",
    "qkv_lora_b_fwd": "qkv_lora_b",
    "gate_up_lora_b_fwd": "gate_up_lora_b",
}
KERNEL_FILES = ("kernel_utils.py", *(f"{leaf}.py" for leaf in ENTRY_FILES.values()))


@dataclass
class SglangBatchInfo:
    """The fields of sglang's ``LoRABatchInfo`` that its dense kernels read, in the dtypes they expect."""

    bs: int
    num_segments: int
    seg_lens: torch.Tensor  # int32
    seg_indptr: torch.Tensor  # int32
    weight_indices: torch.Tensor  # int32
    lora_ranks: torch.Tensor  # int32
    scalings: torch.Tensor  # float32
    max_len: int
    permutation: Optional[torch.Tensor] = None  # int32; not None selects sglang's sorted path
    use_cuda_graph: bool = False


def to_sglang(batch_info) -> SglangBatchInfo:
    """Our ``impl.LoRABatchInfo`` (same field names, SPEC.md) as sglang's kernels take it.

    ``.to``/``.contiguous`` return the tensor itself when it already fits, so the usual call
    copies nothing and never syncs with the host (safe inside a CUDA graph capture).
    """

    def i32(t):
        return t.to(torch.int32).contiguous()

    perm = batch_info.permutation
    return SglangBatchInfo(
        bs=int(batch_info.bs),
        num_segments=int(batch_info.num_segments),
        seg_lens=i32(batch_info.seg_lens),
        seg_indptr=i32(batch_info.seg_indptr),
        weight_indices=i32(batch_info.weight_indices),
        lora_ranks=i32(batch_info.lora_ranks),
        scalings=batch_info.scalings.to(torch.float32).contiguous(),
        max_len=int(batch_info.max_len),
        permutation=None if perm is None else i32(perm),
        use_cuda_graph=bool(batch_info.use_cuda_graph),
    )


def _dense_dir() -> Path:
    """The installed ``sglang/kernels/ops/lora/dense/`` holding every file in KERNEL_FILES."""
    spec = importlib.util.find_spec("sglang")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "adapters.sglang needs sglang's Triton LoRA kernels, and sglang is not installed here "
            "(pip install --no-deps sglang==0.5.23, or put a directory holding "
            "sglang/kernels/ops/lora/dense/{" + ",".join(KERNEL_FILES) + "} on PYTHONPATH)"
        )
    roots = list(spec.submodule_search_locations)
    for root in roots:
        dense = Path(root, "kernels", "ops", "lora", "dense")
        if all((dense / f).is_file() for f in KERNEL_FILES):
            return dense
    raise ImportError(
        f"sglang at {roots} lacks kernels/ops/lora/dense/{{{','.join(KERNEL_FILES)}}} "
        "(the layout of sglang 0.5.23; other versions keep these kernels elsewhere)"
    )


def _package(name: str, path: Optional[Path] = None) -> types.ModuleType:
    """An empty package; with ``path``, submodules are found in that directory."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    module.__path__ = [str(path)] if path else []
    module.__spec__.submodule_search_locations = module.__path__
    return module


def _load_kernels() -> dict:
    """Entry-point name -> sglang's launch wrapper of that name."""
    if "sglang" in sys.modules:  # the real package is imported already: use it as it is
        return {e: getattr(importlib.import_module(f"{DENSE}.{f}"), e) for e, f in ENTRY_FILES.items()}
    dense = _dense_dir()
    root = dense.parents[3]
    utils = types.ModuleType("sglang.srt.lora.utils")
    utils.LoRABatchInfo = SglangBatchInfo  # the leaves use it as a type annotation only
    stand_ins = {
        "sglang": _package("sglang", root),
        "sglang.kernels": _package("sglang.kernels", root / "kernels"),
        "sglang.kernels.ops": _package("sglang.kernels.ops", root / "kernels" / "ops"),
        "sglang.kernels.ops.lora": _package("sglang.kernels.ops.lora", dense.parent),
        DENSE: _package(DENSE, dense),
        "sglang.srt": _package("sglang.srt"),
        "sglang.srt.lora": _package("sglang.srt.lora"),
        "sglang.srt.lora.utils": utils,
    }
    sys.modules.update(stand_ins)
    try:
        return {e: getattr(importlib.import_module(f"{DENSE}.{f}"), e) for e, f in ENTRY_FILES.items()}
    except ImportError as exc:
        raise ImportError(f"sglang's LoRA kernels in {dense} could not be imported: {exc}") from exc
    finally:
        for name in [n for n in sys.modules if n == "sglang" or n.startswith("sglang.")]:
            del sys.modules[name]


KERNELS = _load_kernels()  # entry-point name -> sglang's own launch wrapper
KERNEL_DIR = Path(KERNELS["sgemm_lora_a_fwd"].__code__.co_filename).parent  # where the kernels were loaded from
PROFILE = Profile(
    name="sglang triton",
    source=str(KERNEL_DIR),
    strided_x=False,
    input_errors=False,
    rounding="lora_first",
    why={
        "strided_x": "its shrink and expand wrappers assert x.is_contiguous(); its callers pass a dense x",
        "input_errors": "its wrappers check a few shapes with asserts, no named error per argument",
    },
)


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1):
    """SPEC.md's shrink, by sglang's ``sgemm_lora_a_fwd``."""
    return KERNELS["sgemm_lora_a_fwd"](x, weights, to_sglang(batch_info), stack_num)


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    """SPEC.md's expand, by sglang's ``sgemm_lora_b_fwd`` (in place)."""
    return KERNELS["sgemm_lora_b_fwd"](x, weights, to_sglang(batch_info), base_output)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    """SPEC.md's qkv expand, by sglang's ``qkv_lora_b_fwd`` (three slices, sglang's default)."""
    return KERNELS["qkv_lora_b_fwd"](x, qkv_lora_b, to_sglang(batch_info), output_offset, max_qkv_out_dim, base_output)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    """SPEC.md's gate/up expand, by sglang's ``gate_up_lora_b_fwd``."""
    return KERNELS["gate_up_lora_b_fwd"](x, gate_up_lora_b, to_sglang(batch_info), output_dim, base_output)
