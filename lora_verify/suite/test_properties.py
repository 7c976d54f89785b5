"""Every property of ``lora_verify.properties`` over every operation of ``lora_verify.ops.OPS``, on hypothesis
batches, as far as the implementation under test claims it (its profile).

A failure prints the shrunk batch, a ``@reproduce_failure`` line, and the case file it saved with the
command that replays it; a crash or hang of the kernel is saved and survived (``lora_verify.faults``).
A property not claimed is reported as such in the verdict table (and skipped here with the reason).
"""

import os
from functools import lru_cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_verify import regimes
from lora_verify.cases import case_record, saved_on_failure
from lora_verify.faults import guarded
from lora_verify.inputs import materialize
from lora_verify.ops import OPS
from lora_verify.properties import PROPERTIES, PROPERTIES_BY_NAME
from lora_verify.strategies import batches

# batches one example checks: 1 (the CI and GPU profiles), more when fuzzing (lora-verify fuzz --bundle): a
# bundle of 1 to BUNDLE batches shares hypothesis' per-example cost; a failing bundle shrinks to the failing
# batch alone (the list shrinks too), and that batch is what the case file holds
BUNDLE = int(os.environ.get("LORA_BUNDLE", "1"))


@lru_cache(maxsize=None)
def bundles(dims, dtypes, ranks):
    return st.lists(batches(dims, dtypes=dtypes, ranks=ranks), min_size=1, max_size=BUNDLE)


def drawn(data, op, dtypes) -> list:
    if BUNDLE == 1:
        return [data.draw(batches(op.dims, dtypes=dtypes, ranks=op.ranks), label="batch")]
    return data.draw(bundles(op.dims, tuple(dtypes), op.ranks), label="batches")


CHECKS = [  # a part of the operation's own (sorted == unsorted: its sorted variants)
    pytest.param(op, p.name, layout, part,
                 id="-".join([op.name, p.name.replace(" ", "_"), layout, *([part] if part else [])]))
    for p in PROPERTIES
    for layout in p.layouts
    for op in OPS
    for part in p.parts or (None,)
    if part is None or part in op.sorted_variants
]


@pytest.mark.parametrize(("op", "prop_name", "layout", "part"), CHECKS)
@given(data=st.data())
def test_property(op, prop_name, layout, part, impl_module, profile, device, verdicts, case_dir, data):
    prop = PROPERTIES_BY_NAME[prop_name]
    reason = prop.unclaimed(profile, layout)
    if reason:
        verdicts.not_claimed(op.name, layout, prop_name, reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")
    check = regimes.check_name(op.name, layout, prop_name)
    for batch in drawn(data, op, profile.dtypes):
        verdicts.batches += 1
        case = materialize(batch, op, device, strided_x=profile.strided_x)
        params = data.draw(prop.params(case), label="params") if prop.params else {}
        record = case_record(op.name, layout, prop_name, batch, params, impl_module.__name__, device, "in flight")
        with (
            saved_on_failure(case_dir, op.name, layout, prop_name, batch, params, impl_module.__name__, device),
            guarded(case_dir, record, verdicts, device),  # a crash or hang of the kernel: saved, counted, survived
            regimes.counted(verdicts, check, impl_module),
        ):
            prop.check(impl_module, case, layout, verdicts, profile, **params, **({"part": part} if part else {}))
