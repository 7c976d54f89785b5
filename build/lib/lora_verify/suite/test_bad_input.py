"""Bad input gets a clear error and changes nothing (SPEC.md, "What must hold"), where the implementation
claims it (``input_errors`` in its profile; ours: ``impl/validate.py``).

Each case of ``lora_verify.errors.breaks_of(op)`` takes a valid call, made by the op table from a drawn
batch, and breaks exactly one thing. The call must raise (a ``TypeError`` for a wrong type or dtype, a
``ValueError`` otherwise; ours exactly ``LoRATypeError`` / ``LoRAInputError``), with a message that starts
with the argument's name, and leave every tensor it was given bit for bit as it was. Breaks that only the
value checks can see run with the debug switch on; an implementation with ``validate`` must catch every
break with it alone.
"""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import impl
from lora_verify.errors import Bad, BadType, Call, breaks_of
from lora_verify.inputs import materialize
from lora_verify.ops import OPS
from lora_verify.strategies import batches


def breakable_batches(op):
    """Batches of two or more sequences and rows, so that every break has something to break."""
    return batches(op.dims).filter(lambda b: len(b.seqs) >= 2 and b.num_tokens >= 2)


BREAKABLE = {op.name: breakable_batches(op) for op in OPS}  # built once: hypothesis validates each new strategy


def raw(t):
    """A copy of the bytes of ``t``, to compare bit for bit."""
    return t.detach().contiguous().view(-1).view(torch.uint8).cpu().clone()


BAD_CALLS = [pytest.param(b, op, id=f"{b.name}-{op.name}") for op in OPS for b in breaks_of(op)]


@pytest.mark.parametrize("brk, op", BAD_CALLS)
@settings(max_examples=min(settings.default.max_examples, 5))  # a break is structural: a few batches suffice
@given(data=st.data())
def test_bad_input_raises_and_changes_nothing(brk, op, impl_module, profile, device, verdicts, data):
    """The right error, naming the argument; every tensor bit for bit as before; validate() agrees."""
    reason = profile.unclaimed(("input_errors",))
    if reason:
        verdicts.not_claimed(op.name, brk.layout, "bad input refused", reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")
    call = Call(impl_module, materialize(data.draw(BREAKABLE[op.name], label="batch"), op, device), brk.layout)
    brk.apply(call)
    before = [(t, raw(t)) for t in call.tensors()]
    name = call.weights if brk.arg == "W" else brk.arg
    ours = hasattr(impl_module, "LoRAInputError")
    with verdicts.check(op.name, brk.layout, "bad input refused"):
        with impl.debug(brk.values), pytest.raises((ValueError, TypeError)) as raised:
            call.fn(**call.args)
        kind = brk.error if ours else (TypeError if brk.error is BadType else ValueError)
        assert isinstance(raised.value, kind) and (not ours or type(raised.value) is kind), (
            f"{brk.name}: expected {kind.__name__}, got {type(raised.value).__name__}: {raised.value}"
        )
        assert str(raised.value).startswith(f"{name}: expected "), str(raised.value)
        assert all(torch.equal(raw(t), bits) for t, bits in before), "a tensor changed though the call was refused"
    if hasattr(impl_module, "validate") and hasattr(impl_module.validate, "validate"):
        with impl_module.debug(False), pytest.raises(brk.error, match=f"^{re.escape(name)}: expected "):
            impl_module.validate.validate(op.entry, **call.args)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_kind_is_named_once(op):
    names = [b.name for b in breaks_of(op)]
    assert len(set(names)) == len(names) >= 15
    assert Bad is impl.LoRAInputError
