"""Every property of ``tests.properties`` over every operation of ``tests.ops.OPS``, on hypothesis batches.

A failure prints the shrunk batch, a ``@reproduce_failure`` line, and the
case file it saved with the command that replays it.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cases import saved_on_failure
from tests.ops import OPS, OPS_BY_NAME, materialize
from tests.properties import PROPERTIES, PROPERTIES_BY_NAME
from tests.strategies import batches

CHECKS = [
    pytest.param(p.name, layout, id=f"{p.name.replace(' ', '_')}-{layout}") for p in PROPERTIES for layout in p.layouts
]


@pytest.mark.parametrize(("prop_name", "layout"), CHECKS)
@pytest.mark.parametrize("op_name", [op.name for op in OPS])
@given(data=st.data())
def test_property(op_name, prop_name, layout, impl_module, device, verdicts, case_dir, data):
    op, prop = OPS_BY_NAME[op_name], PROPERTIES_BY_NAME[prop_name]
    batch = data.draw(batches(op.dims), label="batch")
    verdicts.batches += 1
    case = materialize(batch, op, device)
    params = data.draw(prop.params(case), label="params") if prop.params else {}
    with saved_on_failure(case_dir, op_name, layout, prop_name, batch, params, impl_module.__name__, device):
        prop.check(impl_module, case, layout, verdicts, **params)
