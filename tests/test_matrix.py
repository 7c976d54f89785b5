"""The release matrix's reading of a row: pytest's counts, a stopped row, ERROR cells named beside FAIL ones."""

from lora_verify import matrix
from lora_verify.matrix import Row, outcome, summary


def test_tests_line_reads_pytests_counts():
    log = "....\n==== 20 failed, 42 passed, 18 skipped, 4 warnings, 7 errors in 94.84s (0:01:34) ====\n"
    assert matrix.tests_line(log) == "20 failed, 42 passed, 18 skipped, 4 warnings, 7 errors"
    assert matrix.tests_line("4 passed in 29.16s\n") == "4 passed"
    assert matrix.tests_line("Traceback: no summary") == ""


def cell(verdict):
    return {"verdict": verdict, "property": "deterministic", "failures": 0, "examples": 10, "worst": None}


def test_outcome_and_summary_show_what_did_not_pass():
    row = Row(label="sglang 0.5.21", impl="m", status="ran", seconds=136.0, tests="2 failed, 85 passed", cells={
        "gate_up_lora_b_fwd|sorted|deterministic": cell("ERROR"),
        "gate_up_lora_b_fwd|unsorted|deterministic": cell("PASS"),
        "sgemm_lora_b_fwd|unsorted|deterministic": cell("FAIL"),
    })
    assert outcome(row) == "ran: 2 failed, 85 passed"
    assert summary(row, "gate_up_lora_b_fwd") == "ERROR: deterministic (sorted)"
    assert summary(row, "sgemm_lora_b_fwd") == "FAIL: deterministic (unsorted)"
    row.stopped = True
    assert outcome(row).startswith("ran, stopped at its time limit (136 s): 2 failed, 85 passed")
    assert outcome(Row(label="x", impl="m", status="cannot run: no output")) == "cannot run: no output"
