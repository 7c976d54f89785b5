"""The regression corpus: every case in ``tests/corpus/`` is replayed by every ordinary run.

A case enters the corpus once a bug it caught is fixed (copy the saved file
here); it fails again if the bug comes back.
"""

from pathlib import Path

import pytest

from tests.cases import load
from tests.ops import OPS_BY_NAME, materialize
from tests.properties import PROPERTIES_BY_NAME

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.json"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_case(path, impl_module, device, verdicts):
    record = load(path)
    case = materialize(record["batch"], OPS_BY_NAME[record["op"]], device)
    PROPERTIES_BY_NAME[record["property"]].check(impl_module, case, record["layout"], verdicts, **record["params"])
