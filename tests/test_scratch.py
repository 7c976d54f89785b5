import math

import torch

from lora_verify.scratch import FACTORIES, PATTERNS, poisoned


def _all(t, value):
    cells = t.double().flatten().tolist()
    return bool(cells) and all(math.isnan(c) if math.isnan(value) else c == value for c in cells)


def test_every_uninitialised_factory_returns_the_patterns_poison_and_is_restored_after():
    real = {name: getattr(torch, name) for name in FACTORIES}, torch.Tensor.new_empty
    for pattern, (floating, integer) in enumerate(PATTERNS):
        with poisoned(pattern):
            floats = [torch.empty(3), torch.empty_strided((2, 2), (2, 1), dtype=torch.bfloat16),
                      torch.zeros(1).new_empty(4)]
            ints = torch.empty_like(torch.zeros(2, dtype=torch.int32))
        assert all(_all(t, floating) for t in floats)
        assert _all(ints, getattr(torch.iinfo(torch.int32), integer))
    assert ({name: getattr(torch, name) for name in FACTORIES}, torch.Tensor.new_empty) == real


def test_a_sum_into_a_fresh_buffer_shows_under_the_two_patterns():
    def accumulate(x):  # the bug: torch.empty taken for zeros
        out = torch.empty_like(x)
        out += x
        return out

    x = torch.arange(4.0)
    with poisoned(0):
        first = accumulate(x)
    with poisoned(1):
        second = accumulate(x)
    assert not torch.equal(first, second)
