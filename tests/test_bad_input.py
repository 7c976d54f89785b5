"""Bad input gets a clear error and changes nothing (SPEC.md, "What must hold"; ``impl/validate.py``).

Each named break takes a valid call, made by the op table from a drawn batch, and breaks exactly one
thing. The call must raise the break's error type, with a message that starts with the argument's name,
and leave every tensor it was given bit for bit as it was. Breaks that only the value checks can see run
with the debug switch on; ``validate()`` alone must catch every break.
"""

import dataclasses
import inspect
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import impl
from impl.validate import LoRAInputError as Bad
from impl.validate import LoRATypeError as BadType
from tests.ops import GUARD_ROWS, LAYOUTS, OPS, layout_info, materialize
from tests.strategies import batches

SHRINK = ("sgemm_lora_a_fwd",)
EXPANDS = ("sgemm_lora_b_fwd", "qkv_lora_b_fwd", "gate_up_lora_b_fwd")
QKV, GATE_UP = ("qkv_lora_b_fwd",), ("gate_up_lora_b_fwd",)


class Call:
    """One entry-point call with its arguments by name, as the op table makes them, for a break to edit."""

    def __init__(self, case, layout):
        capture = lambda *args, **kwargs: (args, kwargs)
        args, kwargs = case.op.call(capture, case.x, case.w, layout_info(case, layout), case.batch.dims, case.base)
        self.case, self.fn = case, getattr(impl, case.op.entry)
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        self.args = bound.arguments
        self.weights = list(self.args)[1]  # weights, qkv_lora_b or gate_up_lora_b

    def tensors(self):
        """Every tensor the call can reach, the case's own included (meta tensors hold no data)."""
        found = [self.case.x, self.case.w, self.case.base_buffer, *self.args.values()]
        found += vars(self.args["batch_info"]).values()
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
    ops: tuple = SHRINK + EXPANDS
    values: bool = False  # only the value checks see it: run with the debug switch on
    layout: str = "unsorted"


pool_size = lambda t, call: call.args["batch_info"].lora_ranks.shape[0]
BREAKS = [
    # metadata: caught on every call, no host sync
    Break("x 1-D", "x", Bad, arg("x", lambda x, c: x[:, 0])),
    Break("x float64", "x", BadType, arg("x", lambda x, c: x.double())),
    Break("x dtype differs from weights", "W", BadType, arg("x", other_float)),
    Break("x inner stride not 1", "x", Bad, arg("x", strided)),
    Break("weights 2-D", "W", Bad, arg("W", lambda w, c: w[0])),
    Break("weights inner dim mismatch", "W", Bad, arg("W", lambda w, c: w[..., :-1].contiguous())),
    Break("weights non-contiguous", "W", Bad, arg("W", strided)),
    Break("tensors on two devices", "W", Bad, arg("W", to_meta)),
    Break("stack_num 4", "stack_num", Bad, arg("stack_num", lambda s, c: 4), SHRINK),
    Break("stack_num float", "stack_num", BadType, arg("stack_num", lambda s, c: float(s)), SHRINK),
    Break(
        "base_output wrong shape",
        "base_output",
        Bad,
        arg("base_output", lambda b, c: c.case.base_buffer[GUARD_ROWS : GUARD_ROWS + b.shape[0], : b.shape[1] + 1]),
        EXPANDS,
    ),
    Break("base_output dtype differs from x", "base_output", BadType, arg("base_output", other_float), EXPANDS),
    Break("base_output inner stride not 1", "base_output", Bad, arg("base_output", strided), EXPANDS),
    Break("output_dim mismatch", "output_dim", Bad, arg("output_dim", lambda d, c: d + 1), GATE_UP),
    Break("output_offset wrong length", "output_offset", Bad, arg("output_offset", lambda o, c: o[:3]), QKV),
    Break("output_offset float", "output_offset", BadType, arg("output_offset", lambda o, c: o.float()), QKV),
    Break("max_qkv_out_dim not an int", "max_qkv_out_dim", BadType, arg("max_qkv_out_dim", lambda m, c: float(m)), QKV),
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
        "output_offset not increasing",
        "output_offset",
        Bad,
        arg("output_offset", edit(1, lambda o, c: o[2] + 1)),
        QKV,
        values=True,
    ),
    Break(
        "output_offset wrong end",
        "output_offset",
        Bad,
        arg("output_offset", edit(3, lambda o, c: o[3] + 1)),
        QKV,
        values=True,
    ),
    Break(
        "output_offset not from 0",
        "output_offset",
        Bad,
        arg("output_offset", edit(0, lambda o, c: 1)),
        QKV,
        values=True,
    ),
    Break(
        "max_qkv_out_dim too small",
        "max_qkv_out_dim",
        Bad,
        arg("max_qkv_out_dim", lambda m, c: m - 1),
        QKV,
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


def breakable_batches(op):
    """Batches of two or more sequences and rows, so that every break has something to break."""
    return batches(op.dims).filter(lambda b: len(b.seqs) >= 2 and b.num_tokens >= 2)


BREAKABLE = {op.name: breakable_batches(op) for op in OPS}  # built once: hypothesis validates each new strategy


@st.composite
def bad_calls(draw, op, breaks, device):
    """A valid call of ``op`` with exactly one thing broken by one of ``breaks``."""
    brk = draw(st.sampled_from([b for b in breaks if op.entry in b.ops]), label="break")
    call = Call(materialize(draw(BREAKABLE[op.name], label="batch"), op, device), brk.layout)
    brk.apply(call)
    return brk, call


def raw(t):
    """A copy of the bytes of ``t``, to compare bit for bit."""
    return t.detach().contiguous().view(-1).view(torch.uint8).cpu().clone()


@pytest.mark.parametrize(
    "brk, op", [pytest.param(b, op, id=f"{b.name}-{op.name}") for b in BREAKS for op in OPS if op.entry in b.ops]
)
@settings(max_examples=min(settings.default.max_examples, 5))  # a break is structural: a few batches suffice
@given(data=st.data())
def test_bad_input_raises_and_changes_nothing(brk, op, device, data):
    """The right error, naming the argument; every tensor bit for bit as before; validate() agrees."""
    _, call = data.draw(bad_calls(op, [brk], device))
    before = [(t, raw(t)) for t in call.tensors()]
    name = call.weights if brk.arg == "W" else brk.arg
    with impl.debug(brk.values), pytest.raises(Bad) as raised:
        call.fn(**call.args)
    assert type(raised.value) is brk.error, f"{type(raised.value).__name__}: {raised.value}"
    assert str(raised.value).startswith(f"{name}: expected "), str(raised.value)
    assert all(torch.equal(raw(t), bits) for t, bits in before), "a tensor changed though the call was refused"
    with impl.debug(False), pytest.raises(brk.error, match=f"^{re.escape(name)}: expected "):
        impl.validate.validate(op.entry, **call.args)


def test_every_kind_is_named_once():
    assert len({b.name for b in BREAKS}) == len(BREAKS) >= 15


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@given(data=st.data())
def test_valid_input_passes(op, layout, device, data):
    """validate() accepts every valid call: any dtype, empty batches, rank-0 slots; sorted, stale permutation
    entries past the live rows, as a CUDA graph's buffers hold them."""
    batch = data.draw(batches(op.dims))
    dtype = data.draw(st.sampled_from(["bfloat16", "float16", "float32"]))
    case = materialize(dataclasses.replace(batch, values=dataclasses.replace(batch.values, dtype=dtype)), op, device)
    call = Call(case, layout)
    if layout == "sorted":
        field("permutation", lambda p, c: torch.cat([p, p.new_tensor([-1, 1 << 20])]))(call)
    impl.validate.validate(op.entry, **call.args)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@given(data=st.data())
def test_metadata_checks_read_no_values(op, device, data):
    """With the debug switch off, a call's checks pass on meta tensors, which hold no values: no host sync."""
    call = Call(materialize(data.draw(batches(op.dims)), op, device), "sorted")  # routed on the device
    meta = lambda v: v.to("meta") if isinstance(v, torch.Tensor) else v
    args = {k: meta(v) for k, v in call.args.items()}
    bi = call.args["batch_info"]
    args["batch_info"] = dataclasses.replace(bi, **{k: meta(v) for k, v in vars(bi).items()})
    x, w, bi = (args.pop(k) for k in list(args)[:3])
    impl.validate.check(op.entry, x, w, bi, **args, values=False)


def test_debug_switch():
    """debug(on) sets the switch; as a context manager it restores it; LORA_VALIDATE=1 sets it at import."""
    before = impl.validate.enabled()
    with impl.debug(not before):
        assert impl.validate.enabled() is not before
    assert impl.validate.enabled() is before
    impl.debug(True)
    assert impl.validate.enabled()
    impl.debug(before)
    env = {**os.environ, "LORA_VALIDATE": "1"}
    code = "import impl; print(impl.validate.enabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[1], capture_output=True)
    assert out.stdout.decode().strip() == "True", out.stderr.decode()
