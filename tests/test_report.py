"""The verdict tally: a raised check is a failure, an interrupt is no verdict at all."""

import pytest

from tests.report import Tally


def test_a_failed_check_counts_and_an_interrupt_does_not():
    tally = Tally()
    with tally.check("op", "sorted", "close to reference") as outcome:
        outcome["ratio"] = 0.5
    with pytest.raises(AssertionError), tally.check("op", "sorted", "close to reference"):
        raise AssertionError("off")
    with pytest.raises(KeyboardInterrupt), tally.check("op", "sorted", "close to reference"):
        raise KeyboardInterrupt  # the fuzz driver's time box ends a round this way
    assert tally.rows[("op", "sorted", "close to reference")] == {"examples": 2, "failures": 1, "worst": 0.5}
