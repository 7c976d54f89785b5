"""The order of a run from the last run's durations (lora_verify.durations)."""

from types import SimpleNamespace

from lora_verify import durations


def _report(nodeid, when, seconds):
    return SimpleNamespace(nodeid=nodeid, when=when, duration=seconds)


def test_a_run_records_the_tests_that_ended_and_keeps_older_figures(tmp_path):
    durations.save(tmp_path, "compiled, gpu profile, impl", {"old": 9.0, "a": 1.0})
    recorder = durations.Recorder(tmp_path, "compiled, gpu profile, impl")
    for when, seconds in (("setup", 0.5), ("call", 3.0), ("teardown", 0.25)):
        recorder.pytest_runtest_logreport(_report("a", when, seconds))
    recorder.pytest_runtest_logreport(_report("unfinished", "setup", 7.0))  # interrupted in its call
    recorder.pytest_sessionfinish(None)
    assert durations.load(tmp_path, "compiled, gpu profile, impl") == {"old": 9.0, "a": 3.75}
    assert durations.load(tmp_path, "interpreter, ci profile, impl") == {}


def test_unseen_tests_first_then_the_longest_and_the_estimate_without_a_record():
    items = [SimpleNamespace(nodeid=n, cost=c) for n, c in (("short", 9), ("long", 1), ("new", 0), ("mid", 5))]
    recorded = {"short": 1.0, "long": 50.0, "mid": 10.0}
    by_record = sorted(items, key=durations.order_key(recorded, lambda item: item.cost))
    assert [i.nodeid for i in by_record] == ["new", "long", "mid", "short"]
    by_estimate = sorted(items, key=durations.order_key({}, lambda item: item.cost))
    assert [i.nodeid for i in by_estimate] == ["short", "mid", "long", "new"]


def test_an_unreadable_record_is_no_record(tmp_path):
    (tmp_path / durations.PATH).parent.mkdir()
    (tmp_path / durations.PATH).write_text("{not json")
    assert durations.load(tmp_path, "compiled, gpu profile, impl") == {}
    durations.save(tmp_path, "k", {"a": 1.0})
    assert durations.load(tmp_path, "k") == {"a": 1.0}
