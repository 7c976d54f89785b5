"""sglang's own Triton LoRA kernels behind SPEC.md's four entry points: ``--impl lora_verify.adapters.sglang``.

Any release from 0.4.8 on (the four entry points exist since), in any of its file layouts, from the
installed sglang, a directory or source checkout, a wheel, or a version fetched on demand:
``LORA_SGLANG=PATH|WHEEL|VERSION`` or pytest's ``--sglang`` (``lora_verify.adapters.sglang_release`` finds
and loads it). Their launch wrappers take SPEC.md's names and argument order (qkv's extra ``n_slices``,
0.5.11 on, defaults to SPEC.md's three) and a ``LoRABatchInfo``; each call here builds one of the release's
own class, with the fields that release has (they changed at 0.5.2, 0.5.4, 0.5.6, 0.5.10, 0.5.12, 0.5.14
and 0.5.23), by keyword. The kernels read ``bs`` (the segment count: sorted, the slot count), ``max_len``,
``seg_lens``, ``seg_indptr``, ``weight_indices``, ``lora_ranks``, ``scalings`` and, from 0.5.11,
``permutation``: not None selects the sorted path, SPEC.md's sorted layout.

What a release claims (``PROFILE``): ``sglang_release.profile``, from its version.
"""

import dataclasses

import torch

from lora_verify.adapters import sglang_release

RELEASE = sglang_release.load()
KERNELS = RELEASE.kernels  # entry-point name -> sglang's own launch wrapper
KERNEL_DIR = RELEASE.kernel_dir
PROFILE = sglang_release.profile(RELEASE)
SORTED = "sorted" in PROFILE.layouts

FIELDS = {f.name for f in dataclasses.fields(RELEASE.batch_info_class)}  # what this release's class takes


def to_sglang(batch_info):
    """A SPEC.md batch info as the release's own ``LoRABatchInfo`` (int32 indices, float32 scalings).

    ``.to``/``.contiguous`` return the tensor itself when it already fits, so the usual call copies nothing
    and never syncs with the host (safe inside a CUDA graph capture).
    """
    perm = batch_info.permutation
    if perm is not None and not SORTED:
        raise ValueError(f"permutation: sglang {RELEASE.version}'s kernels ignore it: per-sequence segments only")

    def i32(t):
        return t.to(torch.int32).contiguous()

    values = dict(
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
    return RELEASE.batch_info_class(**{k: v for k, v in values.items() if k in FIELDS})


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1):
    """SPEC.md's shrink, by sglang's ``sgemm_lora_a_fwd``."""
    return KERNELS["sgemm_lora_a_fwd"](x, weights, to_sglang(batch_info), stack_num)


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    """SPEC.md's expand, by sglang's ``sgemm_lora_b_fwd`` (in place)."""
    return KERNELS["sgemm_lora_b_fwd"](x, weights, to_sglang(batch_info), base_output)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    """SPEC.md's qkv expand, by sglang's ``qkv_lora_b_fwd`` (three slices, its default where it has n_slices)."""
    return KERNELS["qkv_lora_b_fwd"](x, qkv_lora_b, to_sglang(batch_info), output_offset, max_qkv_out_dim, base_output)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    """SPEC.md's gate/up expand, by sglang's ``gate_up_lora_b_fwd``."""
    return KERNELS["gate_up_lora_b_fwd"](x, gate_up_lora_b, to_sglang(batch_info), output_dim, base_output)
