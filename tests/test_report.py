"""The verdict tally: a raised check is a failure, an interrupt is no verdict, NaN and inf stay visible."""

import math

import pytest

from lora_verify.report import Tally, format_ratio, format_table, verdict_rows


def test_a_failed_check_counts_and_an_interrupt_does_not():
    tally = Tally()
    with tally.check("op", "sorted", "close to reference") as outcome:
        outcome["ratio"] = 0.5
    with pytest.raises(AssertionError), tally.check("op", "sorted", "close to reference"):
        raise AssertionError("off")
    with pytest.raises(KeyboardInterrupt), tally.check("op", "sorted", "close to reference"):
        raise KeyboardInterrupt  # the fuzz driver's time box ends a round this way
    row = tally.rows[("op", "sorted", "close to reference")]
    assert (row["examples"], row["failures"], row["worst"]) == (2, 1, 0.5)


def test_pytest_fail_counts_as_a_failure():
    tally = Tally()
    with pytest.raises(pytest.fail.Exception), tally.check("op", "unsorted", "bad input refused"):
        pytest.fail("DID NOT RAISE")
    assert tally.rows[("op", "unsorted", "bad input refused")]["failures"] == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_and_inf_errors_are_shown_as_such(bad):
    """A NaN ratio survives merging (max() would drop it) and prints as nan; inf as inf; none measured as '-'."""
    tally, other = Tally(), Tally()
    with pytest.raises(AssertionError), tally.check("op", "sorted", "close to reference") as outcome:
        outcome["ratio"] = bad
        raise AssertionError("NaN output")
    with other.check("op", "sorted", "close to reference") as outcome:
        outcome["ratio"] = 0.25
    other.merge(tally.dump())
    [row] = verdict_rows(other)
    assert format_ratio(row["worst"]) == ("nan" if math.isnan(bad) else "inf") and row["verdict"] == "FAIL"
    assert format_ratio(None) == "-"


def test_not_claimed_is_neither_pass_nor_fail():
    tally = Tally()
    tally.not_claimed("op", "sorted", "sorted == unsorted", "released before the sorted grid")
    [row] = verdict_rows(tally)
    assert row["verdict"] == "NOT CLAIMED"
    assert "NOT CLAIMED (released before the sorted grid)" in format_table([row])[-1]
