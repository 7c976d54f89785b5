"""sglang's default LoRA backend, ``csgmv`` (chunked SGMV), behind SPEC.md's entry points:
``--impl lora_verify.adapters.sglang_csgmv``.

What sglang has (0.5.23, ``--lora-backend csgmv``, the default): two launch wrappers in
``sglang/kernels/ops/lora/dense/``, ``chunked_sgmv_lora_shrink_forward(x, weights, batch_info, num_slices)``
and ``chunked_sgmv_lora_expand_forward(x, weights, batch_info, slice_offsets, max_slice_size, base_output)``,
serve all four operations (the expand takes the slices' output offsets). Their batch info is sglang's
chunked one (built by ``srt/lora/backend/chunked_backend.py``): every token read through ``permutation``
(always), segment ``c`` is the logical positions ``[seg_indptr[c], seg_indptr[c+1])`` (``seg_lens`` is not
read), and one program covers ``max_len`` rows of a segment, a power of two used as ``BLOCK_M``: a longer
segment's extra rows are silently left out. sglang cuts each adapter's tokens into chunks of 16
(``--max-lora-chunk-size``'s default; larger chunks follow the token count).

The translation (``lora_verify.adapters.batch.chunks``): our segments, in either layout, laid end to end and
cut into chunks of 16, with ``permutation`` the physical row at each position (per-sequence: the rows in
order; sorted: our permutation, which is how sglang itself orders them). The chunk count is fixed by the
token count and the number of segments, and the translation runs on the device without a host sync, so a
call can be captured in a CUDA graph. The expand's offsets: SPEC's ``output_offset`` (a device tensor) for
qkv, device tables made once per layer shape for the others (``slice_offsets_cpu`` is not passed).

Stand-ins (``lora_verify.adapters.stubs``): ``sglang.srt.environ.envs`` (the two switches read, from the
environment at call time), ``sglang.srt.utils`` (``get_device_name``, as sglang's: the CUDA device's name, and
"cpu" where sglang's returns None, which its config lookup cannot take; ``cached_triton_kernel``: Triton's
own cache, sglang's path where ``SGLANG_USE_CUSTOM_TRITON_KERNEL_CACHE`` is set false; its default on CUDA,
a cache keyed by a few arguments only, is not reproduced), ``sglang.srt.lora.utils.LoRABatchInfo`` (an
annotation). Kernel files from ``LORA_SGLANG`` (a directory holding ``sglang/``) or the installed sglang.

What it claims (``PROFILE``): both layouts; fp16, bf16, fp32; a dense ``x`` only (both wrappers assert
``x.is_contiguous()``: its strides are constexprs); deterministic and batch-invariant (no atomics; the
chunk, hence the block configuration, is fixed); graph capture; expands that round the LoRA term before
adding ``base`` ("lora_first"); no named input errors.
"""

import os

import torch

from lora_verify.adapters import batch, sglang_release, stubs
from lora_verify.profiles import Profile

ENV = "LORA_SGLANG"
DENSE = "sglang.kernels.ops.lora.dense"
FILES = tuple(f"kernels/ops/lora/dense/{f}.py" for f in ("chunked_sgmv_shrink", "chunked_sgmv_expand",
                                                         "lora_tuning_config"))
CHUNK = 16  # sglang's default --max-lora-chunk-size: every chunk 16 rows (BLOCK_M)


class EnvFlag:
    """sglang's ``envs.X``: ``.get()`` reads the environment at call time, false unless "1"/"true"."""

    def __init__(self, name: str):
        self.name = name

    def is_set(self) -> bool:
        return self.name in os.environ

    def get(self) -> bool:
        return os.environ.get(self.name, "").strip().lower() in ("1", "true", "yes", "on")


def _device_name(device_id: int = 0) -> str:
    return torch.cuda.get_device_name(device_id) if torch.cuda.is_available() else "cpu"


def _load():
    root = stubs.locate(ENV, "sglang", FILES, resolve=lambda spec: sglang_release.locate(spec)[0])
    names = ("SGLANG_ENABLE_LORA_CSGMV_SPLIT_K", "SGLANG_ENABLE_DETERMINISTIC_INFERENCE")
    envs = type("Envs", (), {name: EnvFlag(name) for name in names})()
    stand_ins = {
        **stubs.packages("sglang", root, "sglang.kernels", "sglang.kernels.ops", "sglang.kernels.ops.lora", DENSE),
        "sglang.srt": stubs.package("sglang.srt"),
        "sglang.srt.environ": stubs.module("sglang.srt.environ", envs=envs),
        "sglang.srt.utils": stubs.module(
            "sglang.srt.utils", get_device_name=_device_name, cached_triton_kernel=lambda key_fn=None: lambda fn: fn
        ),
        "sglang.srt.lora": stubs.package("sglang.srt.lora"),
        "sglang.srt.lora.utils": stubs.module("sglang.srt.lora.utils", LoRABatchInfo=object),
    }
    shrink, expand = stubs.load(stand_ins, f"{DENSE}.chunked_sgmv_shrink", f"{DENSE}.chunked_sgmv_expand",
                                where=root / "kernels/ops/lora/dense")
    return root, shrink.chunked_sgmv_lora_shrink_forward, expand.chunked_sgmv_lora_expand_forward


ROOT, SHRINK, EXPAND = _load()
PROFILE = Profile(
    name="sglang csgmv",
    source=str(ROOT),
    strided_x=False,
    input_errors=False,
    rounding="lora_first",
    why={
        "strided_x": "both wrappers assert x.is_contiguous() (x's strides are constexprs); sglang passes a dense x",
        "input_errors": "its wrappers check a few shapes with asserts, no named error per argument",
    },
)


class ChunkedBatchInfo:
    """sglang's chunked ``LoRABatchInfo``: the fields csgmv reads."""

    def __init__(self, bi, num_rows: int):
        with batch.Kept() as self.kept:  # the output gets memory of its own under graph capture
            cut = batch.chunks(bi, num_rows, CHUNK)
            self.lora_ranks = bi.lora_ranks.to(torch.int32).contiguous()
            self.scalings = bi.scalings.to(torch.float32).contiguous()
        self.bs, self.num_segments, self.max_len, self.use_cuda_graph = bi.bs, cut.count, CHUNK, False
        self.seg_indptr, self.weight_indices, self.permutation = cut.seg_indptr, cut.weight_indices, cut.permutation
        self.seg_lens = None  # not read


def _expand(x, weights, batch_info, offsets, max_width, base_output):
    info = ChunkedBatchInfo(batch_info, x.shape[0])
    return EXPAND(x, weights, info, offsets, max_width, base_output)


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1):
    """SPEC.md's shrink: csgmv's shrink with ``num_slices = stack_num``."""
    return SHRINK(x, weights, ChunkedBatchInfo(batch_info, x.shape[0]), stack_num)


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    """SPEC.md's expand: one slice of the whole width."""
    n = weights.shape[1]
    return _expand(x, weights, batch_info, batch.device_offsets((0, n), x.device), n, base_output)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    """SPEC.md's qkv expand: SPEC's ``output_offset`` is csgmv's ``slice_offsets``."""
    return _expand(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    """SPEC.md's gate/up expand: two slices of ``output_dim``."""
    offsets = batch.device_offsets((0, output_dim, 2 * output_dim), x.device)
    return _expand(x, gate_up_lora_b, batch_info, offsets, output_dim, base_output)
