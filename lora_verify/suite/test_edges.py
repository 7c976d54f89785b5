"""Each regime boundary of impl's kernels once, on one small fixed batch: hypothesis' explicit examples for them.

``OpInfo.edges`` lists, per operation, the dims at its kernel's boundaries (``lora_verify.ops``: the last K of
each of shrink's split and block regimes and the first of the next; the first slice width of each of expand's
column regimes for a rank of each column tile width; the last rank of each rank block and the first of the
next). The strategies draw these dims too, but 100 examples need not reach every one (hypothesis' examples
cluster); ``@example`` cannot feed ``st.data()``, so these cases are their own test. Each is checked for
closeness to the reference (unsorted) and for layout agreement (sorted, lookup and grouped against unsorted,
bit for bit), and counts in the regime table like any example.
"""

import pytest

from lora_verify import regimes
from lora_verify.cases import saved_on_failure
from lora_verify.inputs import materialize
from lora_verify.ops import OPS
from lora_verify.properties import PROPERTIES_BY_NAME
from lora_verify.strategies import Batch, Seq, Slot, Values

CHECKS = (("close to reference", "unsorted"), ("sorted == unsorted", "both"))
# few rows (the dims are what varies): a segment one row past a tile, a decode row, an empty segment, a rank-0 row;
# slots of rank R, a smaller rank and rank 0
SEQS = (Seq(17, 0), Seq(1, 1), Seq(0, 1), Seq(1, 2))


def edge_batch(R: int, dims, index: int) -> Batch:
    slots = (Slot(R, 1.5), Slot(max(1, R // 3), -0.5), Slot(0, 2.0))
    return Batch(R, slots, SEQS, dims, Values(seed=1000 + index, awkward=True))


CASES = [
    pytest.param(op, edge_batch(R, dims, i), id=f"{op.name}-R{R}-{dims.k or 'x'.join(map(str, dims.widths))}")
    for op in OPS
    for i, (R, dims) in enumerate(op.edges())
]


@pytest.mark.parametrize(("op", "batch"), CASES)
def test_regime_edge(op, batch, impl_module, profile, device, verdicts, case_dir):
    verdicts.batches += 1
    for prop_name, layout in CHECKS:
        prop = PROPERTIES_BY_NAME[prop_name]
        reason = prop.unclaimed(profile, layout)
        if reason:
            verdicts.not_claimed(op.name, layout, prop_name, reason)
            continue
        case = materialize(batch, op, device, strided_x=profile.strided_x)
        with (
            saved_on_failure(case_dir, op.name, layout, prop_name, batch, {}, impl_module.__name__, device),
            regimes.counted(verdicts, regimes.edge_check(op.name), impl_module),
        ):
            prop.check(impl_module, case, layout, verdicts, profile)
