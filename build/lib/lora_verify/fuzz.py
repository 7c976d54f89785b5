"""A time-boxed fuzzing run: ``lora-verify fuzz --minutes 60 [-n 4] [--impl MODULE] [-- PYTEST ARGS]``.

Runs rounds of the property suite under the ``fuzz`` profile (fresh random
examples each round, one example database on disk shared by every worker and
round, so a failure found once is replayed first ever after) until the time
box ends, with one live line: elapsed and remaining time, batches checked per
second, failures so far. Every failure is saved as a case file (``--case-dir``)
and its message, with the replay command, goes to the rounds' log (``--log``).
No ``--hypothesis-seed`` is passed: hypothesis neither reads nor writes its
database for a test run under a forced seed.
Ctrl-C stops the run without losing what it found; the merged verdict table
is printed and written to ``fuzz-report.json`` at the end.
"""

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from lora_verify.report import Tally, format_table, verdict_rows

SUITE = ["--pyargs", "lora_verify.suite.test_properties", "lora_verify.suite.test_routing"]


def _tally(prefix):
    """The merged tally of one round, from the files its workers keep up to date."""
    tally = Tally()
    for path in glob.glob(f"{prefix}.*"):
        try:
            with open(path) as f:
                dumped = f.read()
            tally.merge(dumped)
            tally.batches += json.loads(dumped)["batches"]
        except (OSError, ValueError):
            continue  # a file being rewritten: read it next time
    return tally


def _clock(seconds):
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


def _failing(tally):
    return sum(1 for row in tally.rows.values() if row["failures"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lora-verify fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="the time box")
    parser.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (each takes its own GPU if several)")
    parser.add_argument("--impl", default="impl")
    parser.add_argument("--case-dir", default="fuzz-cases")
    parser.add_argument("--report", default="fuzz-report.json")
    parser.add_argument("--log", default="fuzz-rounds.log", help="every round's pytest output, appended")
    parser.add_argument("pytest_args", nargs="*", default=SUITE, help="what to fuzz (default: the properties)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    deadline = start + args.minutes * 60
    work = tempfile.mkdtemp(prefix="lora-fuzz-")
    total, round_no, stopped = Tally(), 0, False
    while time.monotonic() < deadline and not stopped:
        round_no += 1
        prefix = f"{work}/round{round_no}"
        env = {**os.environ, "HYPOTHESIS_PROFILE": "fuzz", "LORA_PROGRESS": prefix}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "lora_verify.plugin",
            "-n",
            args.workers,
            "--impl",
            args.impl,
            "--case-dir",
            args.case_dir,
            *args.pytest_args,
        ]
        with open(args.log, "a") as log:
            log.write(f"==== round {round_no}: {' '.join(cmd)}\n")
            log.flush()
            child = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while child.poll() is None:
                time.sleep(1)
                now, tally = time.monotonic(), _tally(prefix)
                batches = total.batches + tally.batches
                failing = _failing(total) + _failing(tally)
                print(
                    f"\r[round {round_no}] elapsed {_clock(now - start)}  remaining "
                    f"{_clock(max(deadline - now, 0))}  {batches} batches  {batches / (now - start):.1f}/s  "
                    f"failing properties {failing}   ",
                    end="",
                    flush=True,
                )
                if now >= deadline:
                    child.send_signal(signal.SIGINT)
                    break
        except KeyboardInterrupt:
            stopped = True
            child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
        round_tally = _tally(prefix)
        total.merge(round_tally.dump())
        total.batches += round_tally.batches
    print()
    rows = verdict_rows(total)
    for line in format_table(rows, total.header):
        print(line)
    for worker, dev in sorted(total.devices.items()):
        print(f"worker {worker}: {dev}")
    seconds = time.monotonic() - start
    cases = sorted(glob.glob(f"{args.case_dir}/*.json"))
    for path in cases:
        print(f"case: {path}")
    with open(args.report, "w") as f:
        report = {"rows": rows, "devices": total.devices, "batches": total.batches, "seconds": seconds}
        json.dump({**report, "rounds": round_no, "cases": cases}, f, indent=1)
    print(
        f"{total.batches} batches in {_clock(seconds)} ({total.batches / seconds:.1f}/s); "
        f"{_failing(total)} failing properties; cases in {args.case_dir}/"
    )
    return int(_failing(total) > 0)

