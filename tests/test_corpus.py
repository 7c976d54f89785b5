"""The regression corpus: every case in ``tests/corpus/`` is replayed by every ordinary run.

A case enters the corpus once a bug it caught is fixed (copy the saved file
here); it fails again if the bug comes back.
"""

from pathlib import Path

import pytest

from lora_verify.cases import load
from lora_verify.inputs import materialize
from lora_verify.ops import OPS_BY_NAME
from lora_verify.properties import PROPERTIES_BY_NAME

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.json"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_case(path, impl_module, profile, device, verdicts):
    record = load(path)
    prop = PROPERTIES_BY_NAME[record["property"]]
    reason = prop.unclaimed(profile, record["layout"])
    if reason:
        verdicts.not_claimed(record["op"], record["layout"], record["property"], reason)
        pytest.skip(f"not claimed by {profile.name}: {reason}")
    case = materialize(record["batch"], OPS_BY_NAME[record["op"]], device, profile.strided_x)
    prop.check(impl_module, case, record["layout"], verdicts, profile, **record["params"])
