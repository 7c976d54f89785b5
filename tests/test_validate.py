"""impl's input validation as an API (``impl/validate.py``): what passes, what reads no values, the switch.

The bad-input property itself (every break refused, nothing written) is ``lora_verify/suite/test_bad_input.py``.
"""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from lora_verify.errors import Call, field
from lora_verify.inputs import materialize
from lora_verify.layouts import LAYOUTS
from lora_verify.ops import OPS
from lora_verify.strategies import batches


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@given(data=st.data())
def test_valid_input_passes(op, layout, device, data):
    """validate() accepts every valid call: any dtype, empty batches, rank-0 slots; sorted, stale permutation
    entries past the live rows, as a CUDA graph's buffers hold them."""
    batch = data.draw(batches(op.dims))
    dtype = data.draw(st.sampled_from(["bfloat16", "float16", "float32"]))
    case = materialize(dataclasses.replace(batch, values=dataclasses.replace(batch.values, dtype=dtype)), op, device)
    call = Call(impl, case, layout)
    if layout == "sorted":
        field("permutation", lambda p, c: torch.cat([p, p.new_tensor([-1, 1 << 20])]))(call)
    impl.validate.validate(op.entry, **call.args)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@given(data=st.data())
def test_metadata_checks_read_no_values(op, device, data):
    """With the debug switch off, a call's checks pass on meta tensors, which hold no values: no host sync."""
    call = Call(impl, materialize(data.draw(batches(op.dims)), op, device), "sorted")  # routed on the device
    meta = lambda v: v.to("meta") if isinstance(v, torch.Tensor) else v
    args = {k: meta(v) for k, v in call.args.items()}
    bi = call.args["batch_info"]
    args["batch_info"] = dataclasses.replace(bi, **{k: meta(v) for k, v in vars(bi).items()})
    impl.validate.check_call(op.entry, **args, values=False)


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
