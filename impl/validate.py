"""Input checks for the four entry points: bad input gets a clear error and nothing is written (SPEC.md).

Two tiers, because the kernels sit on a hot path and inside CUDA graphs:

- **Metadata checks** (ranks, shapes against each other, dtypes, devices, strides, the scalar arguments) read
  no tensor values, so they cost microseconds and never synchronise with the device. Every entry point runs
  them first, before it allocates or launches anything.
- **Value checks** (slot indices, ranks, segment lengths against ``seg_indptr``, rows against ``x``, the
  permutation, ``max_len``, ``output_offset``, ``max_qkv_out_dim``) must read device tensors, which
  synchronises, so they are off on the hot path. :func:`validate` runs both tiers on one call without
  running it; the debug switch (``LORA_VALIDATE=1`` at import, or :func:`debug`) runs both on every call.

Every error is a :class:`LoRAInputError` (a ``ValueError``) whose message starts with the argument's name,
then what was expected and what came; a wrong dtype or Python type is a :class:`LoRATypeError`, which is
also a ``TypeError``.
"""

import inspect
import numbers
import os

import torch

from .segments import BLOCK_S, tiles_of

FLOATS = (torch.float16, torch.bfloat16, torch.float32)
INDICES = (torch.int32, torch.int64)
# sglang's LoRABatchInfo fields every kernel may read (SPEC.md); ``tiles`` is ours and optional
FIELDS = ("bs", "num_segments", "seg_lens", "seg_indptr", "weight_indices", "lora_ranks", "scalings", "max_len",
          "permutation")
ABSENT = object()  # an argument the entry point does not have
_ENTRIES = {}  # entry-point name -> (function, slices), filled by ``entry_point``


def entry_point(slices=None):
    """Registers an entry point for :func:`validate` by name; ``slices`` of its output (None: shrink)."""

    def register(fn):
        _ENTRIES[fn.__name__] = (fn, slices)
        return fn

    return register


class LoRAInputError(ValueError):
    """A bad argument to an entry point; the message reads ``"<argument>: expected ..., got ..."``."""


class LoRATypeError(LoRAInputError, TypeError):
    """A bad dtype or Python type."""


def _fail(name, expected, got, error=LoRAInputError):
    raise error(f"{name}: expected {expected}, got {got}")


_debug = os.environ.get("LORA_VALIDATE", "0") not in ("", "0")


def enabled() -> bool:
    """Whether every call runs the value checks (the debug switch)."""
    return _debug


class debug:
    """``debug(True)`` runs the value checks on every call from now on, ``debug(False)`` stops them;
    ``with debug(True): ...`` does so inside the block only. Off by default: the checks synchronise."""

    def __init__(self, on: bool = True):
        global _debug
        self._before, _debug = _debug, bool(on)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _debug
        _debug = self._before


def _int(name, value, minimum=None, choices=None):
    if type(value) is not int and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
        _fail(name, "an int", f"{type(value).__name__} {value!r}", LoRATypeError)
    if choices is not None and value not in choices:
        _fail(name, " or ".join(map(str, choices)), value)
    if minimum is not None and value < minimum:
        _fail(name, f"an int >= {minimum}", value)


def _tensor(name, t, ndim, dtypes, device, dtype_is="", length=None, contiguous=False, row_major=False):
    """Metadata of one tensor argument; ``dtype_is`` says where a single allowed dtype comes from."""
    if not isinstance(t, torch.Tensor):
        _fail(name, "a torch.Tensor", type(t).__name__, LoRATypeError)
    if t.dim() != ndim:
        _fail(name, f"a {ndim}-D tensor", f"{t.dim()}-D of shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        _fail(name, f"dtype {' or '.join(map(str, dtypes))}{dtype_is}", t.dtype, LoRATypeError)
    if device is not None and t.device != device:
        _fail(name, f"device {device} (x's device)", t.device)
    if length is not None and t.shape[0] != length[1]:
        _fail(name, f"length {length[0]} == {length[1]}", t.shape[0])
    if contiguous and not t.is_contiguous():
        _fail(name, "a contiguous tensor", f"shape {tuple(t.shape)} with strides {t.stride()}")
    if row_major and t.shape[-1] > 1 and t.stride(-1) != 1:
        _fail(name, "stride 1 along the last dimension (the kernels take a row stride only)", f"strides {t.stride()}")


def _batch_info(bi, L, w, device):
    """Metadata of the batch-info fields: lengths against ``num_segments`` and the pool size ``L``."""
    missing = [f for f in FIELDS if not hasattr(bi, f)]
    if missing:
        _fail(
            "batch_info",
            f"an object with sglang's LoRABatchInfo fields ({', '.join(FIELDS)})",
            f"{type(bi).__name__} without {', '.join(missing)}",
            LoRATypeError,
        )
    _int("batch_info.num_segments", bi.num_segments, minimum=0)
    _int("batch_info.max_len", bi.max_len, minimum=0)
    n = ("num_segments", bi.num_segments)
    for name, length in (("seg_lens", n), ("seg_indptr", ("num_segments + 1", n[1] + 1)), ("weight_indices", n)):
        _tensor(f"batch_info.{name}", getattr(bi, name), 1, INDICES, device, length=length, contiguous=True)
    pool = (f"L ({w}.shape[0])", L)
    _tensor("batch_info.lora_ranks", bi.lora_ranks, 1, INDICES, device, length=pool, contiguous=True)
    _tensor("batch_info.scalings", bi.scalings, 1, (torch.float32,), device, length=pool, contiguous=True)
    if bi.permutation is not None:
        _tensor("batch_info.permutation", bi.permutation, 1, INDICES, device, contiguous=True)
    tiles = tiles_of(bi)
    if tiles is not None:
        if bi.permutation is None:
            _fail("batch_info.tiles", "None in the per-sequence layout (permutation is None)", "a tensor")
        _tensor("batch_info.tiles", tiles, 2, (torch.int32,), device, contiguous=True)
        if tiles.shape[1] != 3:
            _fail("batch_info.tiles", "shape (rows, 3)", tuple(tiles.shape))


def _in_range(name, values, low, high, expected, where):
    """Fails on the first entry of ``values`` outside ``[low, high)`` (``high`` None: no upper bound)."""
    bad = ((values < low) | (values >= high if high is not None else False)).nonzero()
    if bad.numel():
        i = int(bad[0])
        _fail(name, expected, f"{int(values[i])} at {where} {i}")


def _values(bi, L, R, S):
    """Value checks of the batch; they read device tensors (synchronise)."""
    lens, indptr, slots, ranks = (
        t.cpu().long() for t in (bi.seg_lens, bi.seg_indptr, bi.weight_indices, bi.lora_ranks)
    )
    _in_range("batch_info.lora_ranks", ranks, 0, R + 1, f"ranks in [0, R] == [0, {R}]", "slot")
    _in_range("batch_info.weight_indices", slots, 0, L, f"slots in [0, L) == [0, {L})", "segment")
    _in_range("batch_info.seg_lens", lens, 0, None, "lengths >= 0", "segment")
    starts = torch.cat([lens.new_zeros(1), lens.cumsum(0)])
    if not torch.equal(indptr, starts):
        i = int((indptr != starts).nonzero()[0])
        _fail("batch_info.seg_indptr", f"[0, *cumsum(seg_lens)], i.e. [{i}] == {int(starts[i])}", int(indptr[i]))
    if lens.numel() and bi.max_len < lens.max():
        _fail("batch_info.max_len", f">= max(seg_lens) == {int(lens.max())}", bi.max_len)
    total, perm = int(indptr[-1]), bi.permutation
    if perm is None:
        if total > S:
            _fail("batch_info.seg_indptr", f"segments within x's {S} rows", f"seg_indptr[-1] == {total}")
        return
    if total > perm.shape[0]:
        _fail("batch_info.permutation", f"an entry for each of the {total} positions covered", perm.shape[0])
    rows = perm[:total].cpu().long()
    _in_range("batch_info.permutation", rows, 0, S, f"rows of x, in [0, {S})", "position")
    ordered = rows.sort().values
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.numel():
        _fail("batch_info.permutation", "a permutation of the rows it covers", f"row {int(repeated[0])} twice")
    if tiles_of(bi) is not None:
        _tile_values(tiles_of(bi).cpu(), lens.tolist(), indptr.tolist(), slots.tolist())


def expected_tiles(lens, starts, slots, length: int) -> torch.Tensor:
    """The tile table routing builds (``routing.route``), on the host: each segment's tiles of ``BLOCK_S``
    rows in segment order, ``[first logical position, rows, slot]``, then ``[0, 0, 0]`` up to ``length`` rows."""
    rows = [
        [start + j, min(BLOCK_S, n - j), slot]
        for n, start, slot in zip(lens, starts, slots, strict=False)
        for j in range(0, n, BLOCK_S)
    ]
    return torch.tensor(rows + [[0, 0, 0]] * (length - len(rows)), dtype=torch.int32).reshape(-1, 3)


def _tile_values(tiles, lens, starts, slots):
    """The tile table is the one routing builds from the segments (a stale or foreign table reads wrong rows)."""
    needed = sum((n + BLOCK_S - 1) // BLOCK_S for n in lens)
    if tiles.shape[0] < needed:
        _fail("batch_info.tiles", f"a row for each of the segments' {needed} tiles of {BLOCK_S} rows", tiles.shape[0])
    expected = expected_tiles(lens, starts, slots, tiles.shape[0])
    wrong = (tiles != expected).any(1).nonzero()
    if wrong.numel():
        i = int(wrong[0])
        _fail(
            "batch_info.tiles",
            f"routing's tile table of the segments, row {i} == {expected[i].tolist()}",
            tiles[i].tolist(),
        )


def _offset_values(output_offset, max_qkv_out_dim, w, N):
    """Value checks of qkv's slice offsets; they read a device tensor (synchronise)."""
    off = output_offset.cpu().long()
    expected = f"[0, o_q, o_q + o_kv, {w}.shape[1] == {N}], non-decreasing"
    if off[0] != 0 or off[-1] != N or bool((off.diff() < 0).any()):
        _fail("output_offset", expected, off.tolist())
    widest = int(off.diff().max())
    if max_qkv_out_dim < widest:
        _fail("max_qkv_out_dim", f">= the widest slice == {widest}", max_qkv_out_dim)


def check(
    x,
    weights,
    batch_info,
    *,
    weights_name="weights",
    slices=None,
    stack_num=1,
    base_output=None,
    output_offset=ABSENT,
    max_qkv_out_dim=ABSENT,
    output_dim=ABSENT,
    values=None,
):
    """Checks one call of an entry point: metadata always; values when ``values``, which defaults to the debug
    switch (skipped while a CUDA graph is being captured: the buffers hold no batch yet).

    ``slices``: of the output (None: a shrink, ``stack_num`` then applies); ``weights_name``: the weights
    argument's name in messages; ``output_offset``, ``max_qkv_out_dim``, ``output_dim``: given by the entry
    points that have them."""
    w = weights_name
    _tensor("x", x, 2, FLOATS, None, row_major=True)
    device, (S, cols) = x.device, x.shape
    _tensor(w, weights, 3, (x.dtype,), device, " (x's dtype)", contiguous=True)
    L, N, inner = weights.shape
    if slices is None:
        _int("stack_num", stack_num, choices=(1, 2, 3))
        if inner != cols or N % stack_num:
            _fail(
                w,
                f"shape (L, stack_num*R, K) with stack_num == {stack_num} and K == x.shape[1] == {cols}",
                tuple(weights.shape),
            )
        R = N // stack_num
    else:
        R = inner
        if slices * R != cols:
            _fail(w, f"shape (L, N, R) with {slices}*R == x.shape[1] == {cols}", tuple(weights.shape))
        if output_dim is not ABSENT:
            _int("output_dim", output_dim, minimum=1)
            if 2 * output_dim != N:
                _fail("output_dim", f"2*output_dim == {w}.shape[1] == {N}", output_dim)
        if output_offset is not ABSENT:
            _tensor("output_offset", output_offset, 1, INDICES, device, length=("3 slices + 1", 4), contiguous=True)
            _int("max_qkv_out_dim", max_qkv_out_dim, minimum=1)
        if base_output is not None:
            _tensor("base_output", base_output, 2, (x.dtype,), device, " (x's dtype)", row_major=True)
            if tuple(base_output.shape) != (S, N):
                _fail("base_output", f"shape (x.shape[0], {w}.shape[1]) == {(S, N)}", tuple(base_output.shape))
    _batch_info(batch_info, L, w, device)
    if (_debug if values is None else values) and not (x.is_cuda and torch.cuda.is_current_stream_capturing()):
        _values(batch_info, L, R, S)
        if output_offset is not ABSENT:
            _offset_values(output_offset, max_qkv_out_dim, w, N)


def check_call(entry, *args, values=None, **kwargs):
    """Checks the call ``entry(*args, **kwargs)`` without running it (``values`` as in :func:`check`).

    ``entry`` is one of the four entry points or its name.
    """
    fn, slices = _ENTRIES[getattr(entry, "__name__", entry)]
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    (_, x), (w, weights), (_, batch_info), *rest = bound.arguments.items()
    check(x, weights, batch_info, weights_name=w, slices=slices, **dict(rest), values=values)


def validate(entry, *args, **kwargs):
    """Checks the call ``entry(*args, **kwargs)`` fully, values included, without running it.

    ``entry`` is one of the four entry points or its name; raises :class:`LoRAInputError`. Reads device
    tensors (synchronises): for tests, debugging, and callers off the hot path.
    """
    check_call(entry, *args, values=True, **kwargs)
