"""The generated mutants: every one applies to the tree, changes it, still parses, and has a unique stable name."""

import ast
from pathlib import Path

from lora_verify import generated

ROOT = Path(__file__).resolve().parents[1]


def test_every_generated_mutant_applies_and_parses():
    mutants = generated.generate(ROOT)
    assert len({m.name for m in mutants}) == len(mutants)
    assert {m.cls for m in mutants} == set(generated.CLASSES)
    assert {m.file for m in mutants} == set(generated.SOURCES)
    for m in mutants:
        text = (ROOT / m.file).read_text()
        planted = m.planted(text)
        assert planted != text
        ast.parse(planted)
        assert m.name.split(".")[0] == Path(m.file).stem and f".L{m.line}.{m.cls}." in m.name


def test_names_and_samples_are_stable():
    first, second = generated.generate(ROOT), generated.generate(ROOT)
    assert [m.name for m in first] == [m.name for m in second]
    sample = generated.sample(first, 10, seed=3)
    assert [m.name for m in sample] == [m.name for m in generated.sample(second, 10, seed=3)] and len(sample) == 10
