"""vLLM's Triton LoRA ops behind SPEC.md's entry points: ``--impl lora_verify.adapters.vllm``.

What vLLM has (0.33.0, ``vllm/lora/ops/triton_ops/``): ``lora_shrink(x, [A_j], out, *meta, scaling)`` and
``lora_expand(x, [B_j], out, *meta, offset_start, add_inputs)`` serve every projection: one weight tensor
per slice, each ``(L, R, K)`` or ``(L, width_j, R)`` over one padded rank ``R`` (the kernels read all of
it: a slot of lower rank is zero-padded), the shrink's output ``(slices, S, R)`` in fp32, the expand's
input likewise per slice. The metadata groups rows: group ``z`` is slot ``lora_ids[z]`` (-1: no LoRA,
skipped) over rows ``order[start[z] : start[z] + count[z]]``; groups may repeat a slot and come in any
order. vLLM passes ``scaling = 1.0`` and folds each adapter's scaling into its B weights when it loads them
(``lora_b *= scaling``, in the weights' dtype); its expand rounds ``x @ B.T`` to the output dtype, then adds
the output (``add_inputs``) and rounds again. Its shrink splits K into partials summed with fp32 atomics
(64 splits below 128 tokens, 8 from there on), unless ``VLLM_BATCH_INVARIANT`` (read when the ops are
imported) is set: then fixed partials summed in order by a second kernel.

The translation: our segments fed to vLLM's kernels as its groups (per-sequence: a group per sequence
over the rows in order; sorted: a group per slot over our permutation, which is vLLM's own grouping),
rank-0 slots as ``-1``; SPEC's rank-packed slices repacked into vLLM's zero-padded per-slice tensors (for
the expand, scaled per slot as vLLM loads them); the expand's input likewise; the shrink's fp32 output
gathered back into SPEC's rank-packed ``(S, slices * R)`` in ``x``'s dtype (the rounding vLLM's expand makes
when it reads that buffer). The repacked weights are kept per weight tensor and rewritten by every call
(device ops, no host sync), because vLLM caches each weight list's pointer table by address and builds it
with a host-to-device copy, as for weights vLLM allocates once (a table naming freed memory is dropped with
it). vLLM's expand asserts a contiguous output: a strided ``base_output`` is updated through a contiguous
copy. qkv's slice widths are read from ``output_offset`` on the host, once per tensor
(``lora_verify.adapters.batch.host_offsets``): vLLM takes the slices as a list of tensors.

Stand-ins (``lora_verify.adapters.stubs``): ``vllm.envs`` (``VLLM_BATCH_INVARIANT`` as set here, the rest at
vLLM's defaults), ``vllm.logger``, ``vllm.platforms.current_platform``, ``vllm.triton_utils``,
``vllm.utils.math_utils``, ``vllm.utils.torch_utils`` (its op registration left out: the plain functions are
used). Kernel files from ``LORA_VLLM`` (a directory holding ``vllm/``) or the installed vLLM.

What it claims (``PROFILE``): both layouts; fp16 and bf16 (its shrink asserts them); a row-strided ``x``;
the LoRA term rounded first, after scaling folded into B ("folded_scaling"); not graph capture through
SPEC's calls (qkv's widths on the host are a host sync; vLLM captures these ops, knowing them); determinism
and batch invariance only with ``VLLM_BATCH_INVARIANT`` (this module follows the environment variable;
``lora_verify.adapters.vllm_batch_invariant`` sets it); no named input errors.
"""

import logging
import os
import weakref

import torch
import triton
import triton.language as tl

from lora_verify.adapters import batch, stubs
from lora_verify.interpreter import bounds
from lora_verify.profiles import Profile

ENV = "LORA_VLLM"
OPS = "vllm.lora.ops.triton_ops"
FILES = tuple(f"lora/ops/triton_ops/{f}.py" for f in ("lora_shrink_op", "lora_expand_op", "kernel_utils", "utils"))


class _Logger(logging.LoggerAdapter):
    """vLLM's logger: ``*_once`` logs a message once."""

    said = set()

    def warning_once(self, msg, *args, **kwargs):
        if msg not in self.said:
            self.said.add(msg)
            self.warning(msg, *args)

    def info_once(self, msg, *args, **kwargs):
        if msg not in self.said:
            self.said.add(msg)
            self.info(msg, *args)


class _Platform:
    """``current_platform``: the CUDA device's capability, if any."""

    def is_cuda(self) -> bool:
        return torch.cuda.is_available() and torch.version.cuda is not None

    def _capability(self) -> int:
        major, minor = torch.cuda.get_device_capability()
        return major * 10 + minor

    def has_device_capability(self, capability: int) -> bool:
        return self.is_cuda() and self._capability() >= capability

    def is_device_capability(self, capability: int) -> bool:
        return self.is_cuda() and self._capability() == capability


def _h2d(data, device=None, dtype=None, out=None):
    return batch.to_device(data, dtype, device)


def _no_custom_op(*args, **kwargs):
    raise AttributeError("not registered as torch.ops.vllm.*: the plain function is used")


def _load(batch_invariant: bool):
    root = stubs.locate(ENV, "vllm", FILES)
    envs = stubs.module("vllm.envs", VLLM_BATCH_INVARIANT=batch_invariant, VLLM_TUNED_CONFIG_FOLDER=None,
                        VLLM_LORA_DISABLE_PDL=False, VLLM_LORA_ENABLE_DUAL_STREAM=False)
    stand_ins = {
        **stubs.packages("vllm", root, "vllm.lora", "vllm.lora.ops", OPS),  # skips triton_ops/__init__ (MoE, fp8)
        "vllm.envs": envs,
        "vllm.logger": stubs.module("vllm.logger", init_logger=lambda name: _Logger(logging.getLogger(name), {})),
        "vllm.platforms": stubs.module("vllm.platforms", current_platform=_Platform()),
        "vllm.triton_utils": stubs.module("vllm.triton_utils", tl=tl, triton=triton),
        "vllm.utils": stubs.package("vllm.utils"),
        "vllm.utils.math_utils": stubs.module("vllm.utils.math_utils", next_power_of_2=triton.next_power_of_2),
        "vllm.utils.torch_utils": stubs.module("vllm.utils.torch_utils", async_tensor_h2d=_h2d,
                                               direct_register_custom_op=_no_custom_op),
    }
    utils, shrink, expand = stubs.load(stand_ins, f"{OPS}.utils", f"{OPS}.lora_shrink_op", f"{OPS}.lora_expand_op",
                                       where=root / "lora/ops/triton_ops")
    return root, utils, shrink.lora_shrink, expand.lora_expand


def from_environment() -> bool:
    """vLLM's reading of ``VLLM_BATCH_INVARIANT``: an integer, on unless 0."""
    return bool(int(os.environ.get("VLLM_BATCH_INVARIANT", "0")))


class Packed:
    """vLLM-layout copies of the suite's weight tensors, one set per tensor while it lives, rewritten by
    every call; when a tensor goes, its copies go and so do vLLM's pointer tables that name them."""

    def __init__(self, tables):
        self.tables, self.held = tables, {}

    def get(self, weights: torch.Tensor, key: tuple, shapes: list) -> list:
        index = (id(weights), key)
        held = self.held.get(index)
        if held is None or held[0]() is not weights:
            buffers = [torch.empty(s, dtype=weights.dtype, device=weights.device) for s in shapes]
            held = (weakref.ref(weights, lambda _, index=index: self._drop(index)), buffers)
            self.held[index] = held
        return held[1]

    def _drop(self, index):
        held = self.held.get(index)
        if held is None or held[0]() is not None:
            return
        del self.held[index]
        gone = {b.data_ptr() for b in held[1]}
        for table in self.tables:
            for key in [k for k in table if gone & set(k)]:
                del table[key]


def _rank_gather(source, ranks, slice_: int, width: int):
    """``(rows, width)``: row ``t`` holds ``source[t, slice_*r_t : (slice_+1)*r_t]``, zeros past ``r_t`` (where
    ``source`` may hold anything): SPEC's rank-packed slice as vLLM's zero-padded one."""
    i = torch.arange(width, device=source.device)
    keep = i[None, :] < ranks[:, None]
    index = torch.where(keep, slice_ * ranks[:, None] + i[None, :], 0)
    return torch.where(keep, source.gather(1, index), 0)


class VllmLoRA:
    """vLLM's shrink and expand, loaded with ``VLLM_BATCH_INVARIANT`` on or off, behind SPEC.md's entry points."""

    def __init__(self, batch_invariant: bool):
        self.root, utils, self.shrink, self.expand = _load(batch_invariant)
        self.packed = Packed((utils._LORA_A_PTR_DICT, utils._LORA_B_PTR_DICT))
        name = "vllm" + (" (VLLM_BATCH_INVARIANT=1)" if batch_invariant else "")
        atomics = "its shrink sums split-K partials with fp32 atomics (split and BLOCK_K change at 128 tokens)"
        self.profile = Profile(
            name=name,
            source=str(self.root),
            dtypes=("bfloat16", "float16"),
            deterministic=batch_invariant,
            batch_invariant=batch_invariant,
            graph_capture=False,
            input_errors=False,
            rounding="folded_scaling",
            why={
                "dtypes": "its shrink asserts fp16 or bf16 inputs and weights",
                "deterministic": f"{atomics}; VLLM_BATCH_INVARIANT=1 sums fixed partials in order",
                "batch_invariant": f"{atomics}; VLLM_BATCH_INVARIANT=1 fixes them",
                "graph_capture": "vLLM takes qkv's slices as a list of tensors: their widths, in SPEC's device "
                "output_offset, are read on the host (a sync); vLLM knows them from the model when it captures",
                "input_errors": "its ops check shapes and dtypes with asserts, no named error per argument",
            },
        )

    def _meta(self, bi, num_rows: int):
        """vLLM's seven metadata arguments from our segments (a group per segment)."""
        n = bi.num_segments
        slots = bi.weight_indices[:n].long()
        lora_ids = torch.where(bi.lora_ranks.long()[slots] > 0, slots, -1).to(torch.int32)
        order = bi.permutation[:num_rows] if bi.sorted else torch.arange(num_rows, device=slots.device)
        return (
            batch.token_slots(bi, num_rows).long(),  # vLLM checks only its size
            order.to(torch.int32).contiguous(),
            bi.seg_lens[:n].to(torch.int32).contiguous(),
            bi.seg_indptr[: n + 1].to(torch.int32).contiguous(),
            lora_ids,
            torch.tensor([False]),  # "no row has LoRA": a host flag vLLM computes outside graphs; the groups say it
            torch.tensor([n], dtype=torch.int32),  # groups launched (host)
        )

    def sgemm_lora_a_fwd(self, x, weights, batch_info, stack_num=1):
        """SPEC.md's shrink: ``lora_shrink`` over ``stack_num`` zero-padded slices, gathered back rank-packed."""
        S, K = x.shape
        L, R = weights.shape[0], weights.shape[1] // stack_num
        y = torch.empty((S, stack_num * R), dtype=x.dtype, device=x.device)  # first: see batch.Kept
        ranks = batch_info.lora_ranks.long()
        slices = self.packed.get(weights, ("a", stack_num), [(L, R, K)] * stack_num)
        i = torch.arange(R, device=x.device)
        keep = i[None, :] < ranks[:, None]
        for j, a in enumerate(slices):  # a[s, i] = weights[s, j*r + i] for i < r, else 0
            index = torch.where(keep, j * ranks[:, None] + i[None, :], 0)
            a.copy_(torch.where(keep[:, :, None], weights.gather(1, index[:, :, None].expand(L, R, K)), 0))
        out = torch.empty((stack_num, S, R), dtype=torch.float32, device=x.device)
        with bounds.reachable(*slices):
            self.shrink(x, slices, out, *self._meta(batch_info, S), 1.0)
        r = batch.token_ranks(batch_info, batch.token_slots(batch_info, S))[:, None]
        c = torch.arange(stack_num * R, device=x.device)[None, :]
        index = torch.where(c < stack_num * r, (c // r.clamp(min=1)) * R + c % r.clamp(min=1), 0)
        gathered = out.permute(1, 0, 2).reshape(S, stack_num * R).gather(1, index).to(x.dtype)
        return torch.where(c < stack_num * r, gathered, y, out=y)

    def _expand(self, x, weights, batch_info, widths, base_output):
        S, (L, N, R) = x.shape[0], weights.shape
        ranks = batch_info.lora_ranks.long()
        token_ranks = batch.token_ranks(batch_info, batch.token_slots(batch_info, S))
        x3 = torch.stack([_rank_gather(x, token_ranks, j, R) for j in range(len(widths))])
        shapes = [(L, w, R) for w in widths]
        slices = self.packed.get(weights, ("b", tuple(widths)), shapes)
        start = 0
        scalings = batch_info.scalings.to(torch.float32)[:, None, None]
        for b, w in zip(slices, widths, strict=True):  # vLLM's loaded B: scaled in the weights' dtype, 0 past r
            scaled = (weights[:, start : start + w] * scalings).to(weights.dtype)
            keep = torch.arange(R, device=x.device)[None, None, :] < ranks[:, None, None]
            b.copy_(torch.where(keep, scaled, 0))
            start += w
        out = torch.zeros((S, N), dtype=x.dtype, device=x.device) if base_output is None else base_output
        work = out if out.is_contiguous() else out.contiguous()
        with bounds.reachable(*slices):
            self.expand(x3, slices, work, *self._meta(batch_info, S), offset_start=0, add_inputs=True)
        return out if work is out else out.copy_(work)

    def sgemm_lora_b_fwd(self, x, weights, batch_info, base_output=None):
        """SPEC.md's expand: ``lora_expand`` with one slice."""
        return self._expand(x, weights, batch_info, [weights.shape[1]], base_output)

    def qkv_lora_b_fwd(self, x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
        """SPEC.md's qkv expand: three slices, widths from ``output_offset``."""
        o = batch.host_offsets(output_offset)
        return self._expand(x, qkv_lora_b, batch_info, [o[1] - o[0], o[2] - o[1], o[3] - o[2]], base_output)

    def gate_up_lora_b_fwd(self, x, gate_up_lora_b, batch_info, output_dim, base_output=None):
        """SPEC.md's gate/up expand: two slices of ``output_dim``."""
        return self._expand(x, gate_up_lora_b, batch_info, [output_dim] * 2, base_output)


_OPS = VllmLoRA(from_environment())
PROFILE = _OPS.profile
sgemm_lora_a_fwd = _OPS.sgemm_lora_a_fwd
sgemm_lora_b_fwd = _OPS.sgemm_lora_b_fwd
qkv_lora_b_fwd = _OPS.qkv_lora_b_fwd
gate_up_lora_b_fwd = _OPS.gate_up_lora_b_fwd
