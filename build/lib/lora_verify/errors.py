"""Bad-input cases (SPEC.md: "Bad input gets a clear error and changes nothing"), as OpInfo's error inputs.

A :class:`Break` takes a valid call, made by the op table from a drawn batch (:class:`Call`), and breaks
exactly one thing; the call must then raise the break's error type with a message that starts with the
argument's name. ``BREAKS`` holds the cases every operation has (those of ``base_output`` for in-place
operations only); each operation's own cases sit on its entry of ``lora_verify.ops.OPS``.
"""

import dataclasses
import inspect
import types
from dataclasses import dataclass
from typing import Callable

import torch
from hypothesis import assume

from impl.validate import LoRAInputError, LoRATypeError
from lora_verify.inputs import GUARD_ROWS
from lora_verify.layouts import layout_info

Bad, BadType = LoRAInputError, LoRATypeError


class Call:
    """One entry-point call with its arguments by name, as the op table makes them, for a break to edit."""

    def __init__(self, module, case, layout):
        capture = lambda *args, **kwargs: (args, kwargs)
        args, kwargs = case.op.call(
            capture, case.x, case.w, layout_info(case, layout), case.batch.dims, case.base, case.offsets
        )
        self.case, self.fn = case, getattr(module, case.op.entry)
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        self.args = bound.arguments
        self.weights = list(self.args)[1]  # weights, qkv_lora_b or gate_up_lora_b
        self.batch_info = self.args["batch_info"]  # as made, before any break

    def tensors(self):
        """Every tensor the call can reach, the case's own included (meta tensors hold no data)."""
        found = [self.case.x, self.case.w, self.case.base_buffer, *self.args.values()]
        for bi in (self.batch_info, self.args["batch_info"]):
            found += getattr(bi, "__dict__", {}).values()
        return [t for t in found if isinstance(t, torch.Tensor) and not t.is_meta]


def arg(name, fn):
    """A break that replaces argument ``name`` (``"W"``: the weights) by ``fn(value, call)``."""

    def apply(call):
        key = call.weights if name == "W" else name
        call.args[key] = fn(call.args[key], call)

    return apply


def field(name, fn):
    """A break that replaces batch-info field ``name`` by ``fn(value, call)``."""

    def apply(call):
        bi = call.args["batch_info"]
        call.args["batch_info"] = dataclasses.replace(bi, **{name: fn(getattr(bi, name), call)})

    return apply


def lengths(i, value):
    """A break that sets ``seg_lens[i] = value(seg_lens)``, keeping ``seg_indptr`` and ``max_len`` in step."""

    def apply(call):
        bi = call.args["batch_info"]
        lens = bi.seg_lens.clone()
        lens[i] = value(lens)
        indptr = torch.cat([lens.new_zeros(1), lens.cumsum(0).to(lens.dtype)])
        max_len = max(bi.max_len, int(lens.max()))
        call.args["batch_info"] = dataclasses.replace(bi, seg_lens=lens, seg_indptr=indptr, max_len=max_len)

    return apply


def edit(i, value):
    """``fn(tensor, call)`` for :func:`arg`/:func:`field`: a copy with entry ``i`` set to ``value(tensor, call)``."""

    def fn(t, call):
        t = t.clone()  # never write to the case's own tensors
        t[i] = value(t, call)
        return t

    return fn


def without(name):
    """``fn(batch_info, call)`` for :func:`arg`: an object with the batch info's fields but ``name``."""
    return lambda bi, call: types.SimpleNamespace(**{k: v for k, v in vars(bi).items() if k != name})


def strided(t, call=None):
    """The same values with stride 2 along the last dimension (where that dimension has one entry, no break)."""
    assume(t.shape[-1] > 1)
    return torch.stack([t, t], -1)[..., 0]


def other_float(t, call=None):
    return t.to(torch.float16 if t.dtype != torch.float16 else torch.bfloat16)


def to_meta(t, call=None):
    return t.to("meta")


@dataclass(frozen=True)
class Break:
    name: str
    arg: str  # the argument the message must start with; "W" is the op's weights argument
    error: type
    apply: Callable  # (Call) -> None: breaks one thing, never in place
    values: bool = False  # only the value checks see it: run with the debug switch on
    layout: str = "unsorted"
    in_place_only: bool = False  # a break of base_output: operations that take one


pool_size = lambda t, call: call.args["batch_info"].lora_ranks.shape[0]
BREAKS = [
    # metadata: caught on every call, no host sync
    Break("batch_info None", "batch_info", BadType, arg("batch_info", lambda b, c: None)),
    Break("batch_info a dict", "batch_info", BadType, arg("batch_info", lambda b, c: dict(vars(b)))),
    Break("batch_info without seg_indptr", "batch_info", BadType, arg("batch_info", without("seg_indptr"))),
    Break("x 1-D", "x", Bad, arg("x", lambda x, c: x[:, 0])),
    Break("x float64", "x", BadType, arg("x", lambda x, c: x.double())),
    Break("x dtype differs from weights", "W", BadType, arg("x", other_float)),
    Break("x inner stride not 1", "x", Bad, arg("x", strided)),
    Break("weights 2-D", "W", Bad, arg("W", lambda w, c: w[0])),
    Break("weights inner dim mismatch", "W", Bad, arg("W", lambda w, c: w[..., :-1].contiguous())),
    Break("weights non-contiguous", "W", Bad, arg("W", strided)),
    Break("tensors on two devices", "W", Bad, arg("W", to_meta)),
    Break(
        "base_output wrong shape",
        "base_output",
        Bad,
        arg("base_output", lambda b, c: c.case.base_buffer[GUARD_ROWS : GUARD_ROWS + b.shape[0], : b.shape[1] + 1]),
        in_place_only=True,
    ),
    Break("base_output dtype differs from x", "base_output", BadType, arg("base_output", other_float),
          in_place_only=True),
    Break("base_output inner stride not 1", "base_output", Bad, arg("base_output", strided),
          in_place_only=True),
    Break("index tensor float", "batch_info.seg_lens", BadType, field("seg_lens", lambda t, c: t.float())),
    Break("index tensor non-contiguous", "batch_info.weight_indices", Bad, field("weight_indices", strided)),
    Break("batch-info tensor on another device", "batch_info.lora_ranks", Bad, field("lora_ranks", to_meta)),
    Break("weight_indices wrong length", "batch_info.weight_indices", Bad, field("weight_indices", lambda t, c: t[1:])),
    Break("seg_indptr wrong length", "batch_info.seg_indptr", Bad, field("seg_indptr", lambda t, c: t[:-1])),
    Break(
        "lora_ranks length not L",
        "batch_info.lora_ranks",
        Bad,
        field("lora_ranks", lambda t, c: torch.cat([t, t.new_zeros(1)])),
    ),
    Break("scalings float64", "batch_info.scalings", BadType, field("scalings", lambda t, c: t.double())),
    Break("scalings length not L", "batch_info.scalings", Bad, field("scalings", lambda t, c: t[1:])),
    Break("num_segments negative", "batch_info.num_segments", Bad, field("num_segments", lambda n, c: -1)),
    Break("max_len negative", "batch_info.max_len", Bad, field("max_len", lambda n, c: -1)),
    Break(
        "permutation float",
        "batch_info.permutation",
        BadType,
        field("permutation", lambda t, c: t.float()),
        layout="sorted",
    ),
    # values: caught by validate() and, with the debug switch on, by every call
    Break(
        "slot index past L", "batch_info.weight_indices", Bad, field("weight_indices", edit(0, pool_size)), values=True
    ),
    Break(
        "negative slot",
        "batch_info.weight_indices",
        Bad,
        field("weight_indices", edit(0, lambda t, c: -1)),
        values=True,
    ),
    Break(
        "rank above R",
        "batch_info.lora_ranks",
        Bad,
        field("lora_ranks", edit(0, lambda t, c: c.case.batch.max_rank + 1)),
        values=True,
    ),
    Break("negative rank", "batch_info.lora_ranks", Bad, field("lora_ranks", edit(0, lambda t, c: -1)), values=True),
    Break("negative seg_len", "batch_info.seg_lens", Bad, lengths(0, lambda n: -1), values=True),
    Break(
        "seg_indptr inconsistent with seg_lens",
        "batch_info.seg_indptr",
        Bad,
        field("seg_indptr", edit(1, lambda t, c: t[1] + 1)),
        values=True,
    ),
    Break(
        "seg_indptr not from 0", "batch_info.seg_indptr", Bad, field("seg_indptr", edit(0, lambda t, c: 1)), values=True
    ),
    Break("rows past x", "batch_info.seg_indptr", Bad, lengths(-1, lambda n: n[-1] + 1), values=True),
    Break(
        "max_len too small",
        "batch_info.max_len",
        Bad,
        field("max_len", lambda m, c: int(c.args["batch_info"].seg_lens.max()) - 1),
        values=True,
    ),
    Break(
        "permutation row past x",
        "batch_info.permutation",
        Bad,
        field("permutation", edit(0, lambda p, c: c.case.x.shape[0])),
        values=True,
        layout="sorted",
    ),
    Break(
        "permutation repeats a row",
        "batch_info.permutation",
        Bad,
        field("permutation", edit(1, lambda p, c: p[0])),
        values=True,
        layout="sorted",
    ),
    Break(
        "permutation shorter than its segments",
        "batch_info.permutation",
        Bad,
        field("permutation", lambda p, c: p[:-1]),
        values=True,
        layout="sorted",
    ),
    Break("tiles int64", "batch_info.tiles", BadType, field("tiles", lambda t, c: t.long()), layout="sorted"),
    Break(
        "tiles 2 columns", "batch_info.tiles", Bad, field("tiles", lambda t, c: t[:, :2].contiguous()), layout="sorted"
    ),
    Break(
        "tiles without permutation",
        "batch_info.tiles",
        Bad,
        field("tiles", lambda t, c: torch.zeros((4, 3), dtype=torch.int32)),
    ),
    Break(
        "tiles stale",
        "batch_info.tiles",
        Bad,
        field("tiles", edit(0, lambda t, c: t[0] + t.new_tensor([1, 0, 0]))),
        values=True,
        layout="sorted",
    ),
    Break(
        "tiles missing a live tile",
        "batch_info.tiles",
        Bad,
        field("tiles", lambda t, c: t[: int((t[:, 1] > 0).sum()) - 1]),
        values=True,
        layout="sorted",
    ),
]


def breaks_of(op) -> list:
    """Every bad-input case of ``op``: those of every operation (base_output's if it takes one), then its own."""
    return [b for b in BREAKS if op.in_place or not b.in_place_only] + list(op.breaks)
