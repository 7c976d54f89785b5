"""sglang's ``triton_v2`` LoRA backend behind SPEC.md's entry points: ``--impl lora_verify.adapters.sglang_triton_v2``.

What sglang has (0.5.23, ``--lora-backend triton_v2``): grouped GEMMs over a route, in
``sglang/kernels/ops/lora/common/``: ``routing.build_route(token_slots, ...)`` groups the tokens by slot into
blocks (a ``RouteView``; each token's slot, -1 for no LoRA), ``lora_a.grouped_lora_a`` shrinks the routed
rows (rank-packed slices, as SPEC.md) and ``lora_b.grouped_lora_b`` expands them into the output, slices
mapped by a ``SliceGeometry``, scaling in fp32 and ``base`` added in fp32 before the one rounding. The engine
(``srt/lora/dense/runner.py``) picks a plan per call from tables keyed by the token count (families, route
block, tiles, split-K); this adapter fixes one, ``DensePlan``'s defaults: grouped A and B, blocks of 16
rows, A tiles 64x128, B tiles 128x64, no split-K.

The translation: no segments and no permutation reach the kernels, only each token's slot
(``lora_verify.adapters.batch.token_slots``, -1 for rank-0 slots), the same for both of our layouts; the
route is sglang's own (its one-program builder up to 512 tokens, else its three-kernel builder, forced with
``capacity``: the builder between, a CUDA JIT, is not carried). The geometry is built here as
``slice_geometry`` would (which refuses a CPU device): from host ints for expand and gate/up (device tables
made once per shape), and for qkv from SPEC's ``output_offset`` device tensor itself (three equal widths:
``max_qkv_out_dim`` tells; otherwise the kernel's irregular path, which reads the offsets from that tensor),
so that no call synchronises with the host and a call can be captured in a CUDA graph.

Stand-ins (``lora_verify.adapters.stubs``): ``msgspec`` (``RouteView``'s base class, a frozen keyword-only
dataclass here, where msgspec is not installed), ``sglang.kernels.ops.lora.moe.virtual_experts`` (the CUDA
JIT route: raises), ``sglang.kernels.jit.utils.is_arch_support_pdl`` (imported by the large route at call
time: sm90 and later). Kernel files from ``LORA_SGLANG`` (a directory holding ``sglang/``) or the installed sglang.

What it claims (``PROFILE``): both layouts; fp16, bf16, fp32; a row-strided ``x`` (every stride is an
argument); deterministic and batch-invariant under the one fixed plan (no atomics on data: the route's
atomics only order rows inside a block); graph capture; SPEC's rounding ("once"); no named input errors.
"""

import dataclasses

import torch
import triton

from lora_verify.adapters import batch, sglang_release, stubs
from lora_verify.profiles import Profile

ENV = "LORA_SGLANG"
COMMON = "sglang.kernels.ops.lora.common"
FILES = tuple(f"kernels/ops/lora/common/{f}.py" for f in ("route_view", "routing", "lora_a", "lora_b"))
BLOCK = 16  # DensePlan's route block
A_TILES = {"BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 8, "num_warps": 4, "num_stages": 3}
B_TILES = {"BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 8, "num_warps": 4, "num_stages": 2}
SMALL_ROUTE_ROWS = 512  # routing.build_route's one-program builder serves up to this many tokens


class Struct:
    """msgspec.Struct's use here: ``class C(Struct, frozen=True, kw_only=True)`` is a dataclass."""

    def __init_subclass__(cls, frozen=False, kw_only=False, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=frozen, kw_only=kw_only)(cls)


def _pdl() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 9


def _no_jit_route(*args, **kwargs):
    raise NotImplementedError("sglang's CUDA JIT route builder is not carried (the adapter forces capacity=)")


def _load():
    root = stubs.locate(ENV, "sglang", FILES, resolve=lambda spec: sglang_release.locate(spec)[0])
    stand_ins = {
        **stubs.packages("sglang", root, "sglang.kernels", "sglang.kernels.ops", "sglang.kernels.ops.lora", COMMON),
        "sglang.kernels.ops.lora.moe": stubs.package("sglang.kernels.ops.lora.moe"),
        "sglang.kernels.ops.lora.moe.virtual_experts": stubs.module(
            "sglang.kernels.ops.lora.moe.virtual_experts", _align_block_size_jit=_no_jit_route
        ),
    }
    try:
        import msgspec  # noqa: F401
    except ImportError:
        stand_ins["msgspec"] = stubs.module("msgspec", Struct=Struct)
    modules = stubs.load(stand_ins, *(f"{COMMON}.{f}" for f in ("routing", "lora_a", "lora_b")),
                         where=root / "kernels/ops/lora/common")
    return root, *modules


ROOT, ROUTING, LORA_A, LORA_B = _load()
# what the large route imports when called
CALL_STAND_INS = {"sglang.kernels.jit.utils": stubs.module("sglang.kernels.jit.utils", is_arch_support_pdl=_pdl)}
PROFILE = Profile(
    name="sglang triton_v2",
    source=str(ROOT),
    input_errors=False,
    why={"input_errors": "its wrappers raise ValueError for a few shapes and options, not per argument"},
)


def _route(slots, num_slots):
    rows = slots.shape[0]
    if rows <= SMALL_ROUTE_ROWS:
        return ROUTING.build_route(slots, max_loras=num_slots, block_size=BLOCK)
    with stubs.installed(CALL_STAND_INS):
        return ROUTING.build_route(slots, max_loras=num_slots, block_size=BLOCK, capacity=rows)


def _geometry(offsets, widths, block_n):
    """A ``SliceGeometry`` as ``lora_b.slice_geometry`` builds it: ``offsets`` an int32 device tensor of the
    slices' starts and end, ``widths`` the slice widths when known on the host, else ``(n_slices, max width)``
    for the irregular path (the kernel reads the offsets from the tensor; tiles past a slice return)."""
    if isinstance(widths, list):
        starts = [0]
        for w in widths[:-1]:
            starts.append(starts[-1] + w)
        uniform = widths[0] if len(set(widths)) == 1 else 0
        stride = starts[1] if len(starts) > 1 else uniform
        regular = stride > 0 and all(c == s * stride for s, c in enumerate(starts))
        return LORA_B.SliceGeometry(
            slice_offsets=offsets, out_offsets=offsets[:-1], num_slices=len(widths),
            num_column_tiles=sum(triton.cdiv(w, block_n) for w in widths), uniform_width=uniform,
            out_stride=stride if regular else 0, full_tiles=all(w % block_n == 0 for w in widths),
            block_size_n=block_n,
        )
    n_slices, max_width = widths
    return LORA_B.SliceGeometry(
        slice_offsets=offsets, out_offsets=offsets[:-1], num_slices=n_slices,
        num_column_tiles=n_slices * triton.cdiv(max_width, block_n), uniform_width=0, out_stride=0,
        full_tiles=False, block_size_n=block_n,
    )


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1):
    """SPEC.md's shrink: ``grouped_lora_a`` with ``stack = stack_num`` over the route of the tokens' slots."""
    out = torch.empty((x.shape[0], weights.shape[1]), dtype=x.dtype, device=x.device)
    if x.shape[0]:  # an empty batch: no route to build (the builder for 0 rows is the JIT one)
        route = _route(batch.token_slots(batch_info, x.shape[0]), weights.shape[0])
        ranks = batch_info.lora_ranks.to(torch.int32).contiguous()
        LORA_A.grouped_lora_a(x, weights, out, route, config=A_TILES, pair_input=True, lora_ranks=ranks,
                              stack=stack_num)
    return out


def _expand(x, weights, batch_info, geometry, base_output):
    out = torch.zeros((x.shape[0], weights.shape[1]), dtype=x.dtype, device=x.device) if base_output is None \
        else base_output
    if x.shape[0]:
        route = _route(batch.token_slots(batch_info, x.shape[0]), weights.shape[0])
        LORA_B.grouped_lora_b(
            x, weights, out, route, geometry=geometry, config=B_TILES, add_inplace=True, zero_sentinel=False,
            lora_ranks=batch_info.lora_ranks.to(torch.int32).contiguous(),
            scalings=batch_info.scalings.to(torch.float32).contiguous(),
        )
    return out


def _host_geometry(widths, device):
    offsets = [0]
    for w in widths:
        offsets.append(offsets[-1] + w)
    return _geometry(batch.device_offsets(offsets, device), widths, B_TILES["BLOCK_SIZE_N"])


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None):
    """SPEC.md's expand: ``grouped_lora_b``, one slice of the whole width."""
    return _expand(x, weights, batch_info, _host_geometry([weights.shape[1]], x.device), base_output)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None):
    """SPEC.md's qkv expand: three slices at ``output_offset``."""
    if 3 * max_qkv_out_dim == qkv_lora_b.shape[1]:  # q, k and v of one width: sglang's uniform geometry
        geometry = _host_geometry([max_qkv_out_dim] * 3, x.device)
    else:
        geometry = _geometry(output_offset, (3, max_qkv_out_dim), B_TILES["BLOCK_SIZE_N"])
    return _expand(x, qkv_lora_b, batch_info, geometry, base_output)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None):
    """SPEC.md's gate/up expand: two slices of ``output_dim``."""
    return _expand(x, gate_up_lora_b, batch_info, _host_geometry([output_dim] * 2, x.device), base_output)
