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


def test_a_test_failing_outside_its_checks_is_an_error_not_a_pass():
    tally = Tally()
    tally.begin_test()
    with tally.check("op", "sorted", "deterministic"):
        pass
    tally.end_test(True, "ERROR in test_x (call): CUDA out of memory")  # e.g. while building the next batch
    tally.begin_test([("op", "unsorted", "deterministic")])  # failed at setup: no check ran
    tally.end_test(True, "ERROR in test_y (setup): CUDA out of memory")
    tally.begin_test()
    with pytest.raises(AssertionError), tally.check("op", "sorted", "batch-invariant"):
        raise AssertionError("differs")
    tally.end_test(True, "the check's own failure")  # explained by a failed check: no error on top
    merged = Tally()
    merged.merge(tally.dump())
    verdicts = {(r["layout"], r["property"]): r for r in verdict_rows(merged)}
    assert verdicts[("sorted", "deterministic")]["verdict"] == "ERROR"
    assert verdicts[("unsorted", "deterministic")]["verdict"] == "ERROR"
    assert verdicts[("sorted", "batch-invariant")]["verdict"] == "FAIL"
    assert verdicts[("sorted", "batch-invariant")]["errors"] == []
    assert any("CUDA out of memory" in line for line in format_table(verdict_rows(merged)))


def test_an_interrupted_controller_merges_its_workers_progress(tmp_path):
    from types import SimpleNamespace

    from lora_verify.plugin import _merge_unreported

    worker = Tally()
    with worker.check("op", "sorted", "deterministic"):
        pass
    prefix = tmp_path / "tally"
    (tmp_path / "tally.gw0").write_text(worker.dump())
    (tmp_path / "tally.gw1").write_text(worker.dump())
    (tmp_path / "tally.gw1-died").write_text(worker.dump())  # a dead worker's, merged when it died
    config = SimpleNamespace(_lora_progress=str(prefix), _lora_merged={"gw1"}, _lora_tally=Tally())
    _merge_unreported(config)
    assert config._lora_tally.rows[("op", "sorted", "deterministic")]["examples"] == 1  # gw0 only
    assert config._lora_merged == {"gw0", "gw1"}


def test_a_test_stopped_before_its_end_leaves_its_properties_incomplete():
    worker = Tally()
    worker.begin_test()
    with worker.check("op", "sorted", "deterministic"):
        pass
    stopped = worker.dump()  # a progress file, or a worker's tally when SIGINT stops it inside the test
    worker.end_test(False, "")
    ended = worker.dump()
    for dumped, expected in ((stopped, "INCOMPLETE"), (ended, "PASS")):
        controller = Tally()
        controller.merge(dumped)
        assert [r["verdict"] for r in verdict_rows(controller)] == [expected]
    failed = Tally()
    failed.begin_test()
    with pytest.raises(AssertionError), failed.check("op", "sorted", "deterministic"):
        raise AssertionError("differs")
    controller = Tally()
    controller.merge(failed.dump())
    assert [r["verdict"] for r in verdict_rows(controller)] == ["FAIL"]  # a failure stands, ended or not


def test_a_test_failing_after_a_stop_is_incomplete_not_an_error():
    import signal

    from lora_verify import plugin

    tally = Tally()
    tally.begin_test()
    with tally.check("op", "sorted", "close to reference"):
        pass
    # a time limit's SIGINT inside hypothesis can surface as another exception (seen: "assert None is not None")
    tally.end_test(True, "ERROR in test_x (call): assert None is not None", interrupted=True)
    controller = Tally()
    controller.merge(tally.dump())
    [row] = verdict_rows(controller)
    assert (row["verdict"], row["errors"]) == ("INCOMPLETE", [])
    with pytest.raises(KeyboardInterrupt):  # the plugin's handler notes the stop and interrupts as before
        plugin._note_sigint(signal.SIGINT, None)
    assert plugin._SIGINTS.pop()
