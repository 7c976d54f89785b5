"""Every property of ``lora_verify.properties`` over every operation of ``lora_verify.ops.OPS``, on hypothesis
batches, as far as the implementation under test claims it (its profile).

A failure prints the shrunk batch, a ``@reproduce_failure`` line, and the case file it saved with the
command that replays it. A property not claimed is reported as such in the verdict table (and skipped
here with the reason).
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_verify import regimes
from lora_verify.cases import saved_on_failure
from lora_verify.inputs import materialize
from lora_verify.ops import OPS
from lora_verify.properties import PROPERTIES, PROPERTIES_BY_NAME
from lora_verify.strategies import batches

CHECKS = [
    pytest.param(p.name, layout, id=f"{p.name.replace(' ', '_')}-{layout}") for p in PROPERTIES for layout in p.layouts
]


@pytest.mark.parametrize(("prop_name", "layout"), CHECKS)
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_property(op, prop_name, layout, impl_module, profile, device, verdicts, case_dir, data):
    prop = PROPERTIES_BY_NAME[prop_name]
    reason = prop.unclaimed(profile, layout)
    if reason:
        verdicts.not_claimed(op.name, layout, prop_name, reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")
    batch = data.draw(batches(op.dims, dtypes=profile.dtypes, ranks=op.ranks), label="batch")
    verdicts.batches += 1
    case = materialize(batch, op, device, strided_x=profile.strided_x)
    params = data.draw(prop.params(case), label="params") if prop.params else {}
    with (
        saved_on_failure(case_dir, op.name, layout, prop_name, batch, params, impl_module.__name__, device),
        regimes.counted(verdicts, regimes.check_name(op.name, layout, prop_name), impl_module),
    ):
        prop.check(impl_module, case, layout, verdicts, profile, **params)
