"""A time-boxed fuzzing run: ``python -m tests.fuzz --minutes 60 [-n 4] [--impl MODULE] [-- PYTEST ARGS]``.

Runs rounds of the property suite under the ``fuzz`` profile (fresh random
seeds each round, one example database on disk shared by every worker and
round, so a failure found once is replayed first ever after) until the time
box ends, with one live line: elapsed and remaining time, batches checked per
second, failures so far. Every failure is saved as a case file (``--case-dir``).
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

from tests.report import format_table


def _progress(prefix):
    examples = failures = 0
    for path in glob.glob(f"{prefix}.*"):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        examples += data["batches"]
        failures += data["failures"]
    return examples, failures


def _merge(total, path):
    if not os.path.exists(path):
        return
    with open(path) as f:
        data = json.load(f)
    for r in data["rows"]:
        key = (r["operation"], r["layout"], r["property"])
        row = total.setdefault(key, {"examples": 0, "failures": 0, "worst": 0.0})
        row["examples"] += r["examples"]
        row["failures"] += r["failures"]
        row["worst"] = max(row["worst"], r["worst"])


def _clock(seconds):
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="the time box")
    parser.add_argument(
        "-n", "--workers", default="2", help="pytest-xdist workers (one GPU each where there are several)"
    )
    parser.add_argument("--impl", default="impl")
    parser.add_argument("--case-dir", default="fuzz-cases")
    parser.add_argument("--report", default="fuzz-report.json")
    parser.add_argument("pytest_args", nargs="*", default=["tests/test_properties.py", "tests/test_routing.py"])
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60
    start, totals, round_no, stopped = time.monotonic(), {}, 0, False
    work = tempfile.mkdtemp(prefix="lora-fuzz-")
    base = (0, 0)
    while time.monotonic() < deadline and not stopped:
        round_no += 1
        prefix, report = f"{work}/progress{round_no}", f"{work}/round{round_no}.json"
        env = {**os.environ, "HYPOTHESIS_PROFILE": "fuzz", "LORA_PROGRESS": prefix}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            args.workers,
            "--hypothesis-seed",
            str(int.from_bytes(os.urandom(4), "little")),
            "--impl",
            args.impl,
            "--case-dir",
            args.case_dir,
            "--verdicts-json",
            report,
            *args.pytest_args,
        ]
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            while child.poll() is None:
                time.sleep(1)
                done, failed = _progress(prefix)
                now = time.monotonic()
                rate = (base[0] + done) / max(now - start, 1e-9)
                print(
                    f"\r[round {round_no}] elapsed {_clock(now - start)}  remaining "
                    f"{_clock(max(deadline - now, 0))}  {base[0] + done} batches  {rate:.1f}/s  "
                    f"failures {base[1] + failed}   ",
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
        done, failed = _progress(prefix)
        base = (base[0] + done, base[1] + failed)
        _merge(totals, report)
    print()
    rows = [
        {"operation": k[0], "layout": k[1], "property": k[2], **v, "verdict": "FAIL" if v["failures"] else "PASS"}
        for k, v in sorted(totals.items())
    ]
    for line in format_table(rows):
        print(line)
    with open(args.report, "w") as f:
        json.dump(
            {"rows": rows, "batches": base[0], "failures": base[1], "seconds": time.monotonic() - start}, f, indent=1
        )
    print(f"{base[0]} batches in {_clock(time.monotonic() - start)}, {base[1]} failing; cases in {args.case_dir}/")
    return int(base[1] > 0)


if __name__ == "__main__":
    sys.exit(main())
