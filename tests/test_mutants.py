"""The hand-written mutants: each plants in today's tree (its text occurs once), changes it, and still parses."""

import ast
from pathlib import Path

from lora_verify.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[1]


def test_every_hand_written_mutant_plants_once_and_parses():
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        text = (ROOT / m.file).read_text()
        planted = m.planted(text)  # raises unless the text occurs exactly once
        assert planted != text, m.name
        ast.parse(planted)
