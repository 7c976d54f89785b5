"""A time-boxed fuzzing run: ``lora-verify fuzz --minutes 60 [-n 4] [--bundle 8] [--impl MODULE] [-- PYTEST ARGS]``.

Runs rounds of the property suite under the ``fuzz`` profile (fresh random
examples each round, one example database on disk shared by every worker and
round, so a failure found once is replayed first ever after) until the time
box ends, with one live line: elapsed and remaining time, batches checked per
second, failures so far. Every failure is saved as a case file (``--case-dir``)
and its message, with the replay command, goes to the rounds' log (``--log``).
No ``--hypothesis-seed`` is passed: hypothesis neither reads nor writes its
database for a test run under a forced seed.
A crash or hang of the implementation costs one worker, which xdist replaces: the example is saved as a
case named for the fault and counted, and the run goes on (``lora_verify.faults``).
Rounds after the first are sized to last about ``--round-s`` (default 5 minutes: starting 15 workers on a GPU
machine took about 25 s, docs/results/h100x1/README.md);
each worker runs torch single-threaded (the workers are the parallelism). The report gives the rate over
the whole run and the rate while the workers run (each round from its first checked batch to its last,
start-ups left out), and the Triton compiles apart (count, worker-seconds).
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
    """The merged tally of one round, from the files its workers keep up to date (compile numbers summed)."""
    tally = Tally()
    tally.extra = {"compiles": 0, "compile_s": 0.0}
    for path in glob.glob(f"{prefix}.*"):
        try:
            with open(path) as f:
                dumped = f.read()
            data = json.loads(dumped)
            tally.merge(dumped)
        except (OSError, ValueError):
            continue  # a file being rewritten: read it next time
        tally.batches += data["batches"]
        for key in tally.extra:
            tally.extra[key] += data.get(key, 0)
    return tally


def default_workers() -> str:
    """One worker per core but one on a GPU machine (the host is the bottleneck); 2 under the interpreter."""
    import torch

    return str(max(1, (os.cpu_count() or 2) - 1)) if torch.cuda.is_available() else "2"


def _clock(seconds):
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


def _failing(tally):
    """Properties with a failed check, or with a test that failed outside its checks (an ERROR)."""
    return sum(1 for row in tally.rows.values() if row["failures"] or row.get("errors"))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lora-verify fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="the time box")
    parser.add_argument("-n", "--workers", default=None,
                        help="pytest-xdist workers, each on its own GPU if several (default: cores-1 on CUDA, else 2)")
    parser.add_argument("--bundle", type=int, default=int(os.environ.get("LORA_BUNDLE", "1")),
                        help="batches per hypothesis example: up to this many (lora_verify/suite/test_properties.py)")
    parser.add_argument("--round-s", type=float, default=300.0,
                        help="rounds after the first last about this long (each starts its workers afresh)")
    parser.add_argument("--impl", default="impl")
    parser.add_argument("--case-dir", default="fuzz-cases")
    parser.add_argument("--report", default="fuzz-report.json")
    parser.add_argument("--log", default="fuzz-rounds.log", help="every round's pytest output, appended")
    parser.add_argument("pytest_args", nargs="*", default=SUITE, help="what to fuzz (default: the properties)")
    args = parser.parse_args(argv)
    workers = args.workers or default_workers()
    start = time.monotonic()
    deadline = start + args.minutes * 60
    work = tempfile.mkdtemp(prefix="lora-fuzz-")
    total, round_no, stopped = Tally(), 0, False
    total.extra = {"compiles": 0, "compile_s": 0.0}
    examples = int(os.environ.get("LORA_FUZZ_EXAMPLES", "200"))
    running = [0, 0.0, 0.0]  # batches, seconds and compile worker-seconds of the rounds while their workers ran
    while time.monotonic() < deadline and not stopped:
        round_no += 1
        prefix = f"{work}/round{round_no}"
        env = {**os.environ, "HYPOTHESIS_PROFILE": "fuzz", "LORA_PROGRESS": prefix, "LORA_BUNDLE": str(args.bundle),
               "LORA_FUZZ_EXAMPLES": str(examples)}
        for threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(threads, "1")
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
            workers,
            "--maxschedchunk",
            "1",  # one test at a time per worker, longest first (the plugin's order): they end together
            "--max-worker-restart",
            "100000",  # a worker lost to a crash or hang of the implementation is replaced, however often
            "--impl",
            args.impl,
            "--case-dir",
            args.case_dir,
            *args.pytest_args,
        ]
        round_start = time.monotonic()
        with open(args.log, "a") as log:
            log.write(f"==== round {round_no} ({examples} examples a test): {' '.join(cmd)}\n")
            log.flush()
            # its own process group: the time box's SIGINT reaches every worker, which ends its example at once
            child = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        first = last = None  # (time, batches) of the round's first and last sample with checked batches
        try:
            while child.poll() is None:
                time.sleep(1)
                now, tally = time.monotonic(), _tally(prefix)
                if tally.batches:
                    first = first or (now, tally.batches)
                    if tally.batches > (last or first)[1]:
                        last = (now, tally.batches)
                batches = total.batches + tally.batches
                failing = _failing(total) + _failing(tally)
                print(
                    f"\r[round {round_no}] elapsed {_clock(now - start)}  remaining "
                    f"{_clock(max(deadline - now, 0))}  {batches} batches  {batches / (now - start):.1f}/s  "
                    f"failing properties {failing}  compiles {total.extra['compiles'] + tally.extra['compiles']}   ",
                    end="",
                    flush=True,
                )
                if now >= deadline:
                    os.killpg(child.pid, signal.SIGINT)
                    break
        except KeyboardInterrupt:
            stopped = True
            os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=10)  # then killed: the progress files hold its tally to within a second
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
        round_tally = _tally(prefix)
        for row in round_tally.rows.values():  # the time box ends every round inside its tests: what ran counts
            row["unfinished"] = False
        total.merge(round_tally.dump())
        total.batches += round_tally.batches
        for key in total.extra:
            total.extra[key] += round_tally.extra[key]
        if first and last:
            running[0] += last[1] - first[1]
            running[1] += last[0] - first[0]
            running[2] += round_tally.extra["compile_s"]
        if not stopped and time.monotonic() < deadline:  # size the next round to last about --round-s
            examples = max(20, min(1_000_000, int(examples * args.round_s / max(time.monotonic() - round_start, 1))))
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
    steady = running[0] / running[1] if running[1] else 0.0
    # compiles excluded: each worker's compile seconds taken out of the window (an upper estimate of the loss)
    uncompiled = running[1] - running[2] / (int(workers) if workers.isdigit() else os.cpu_count() or 1)
    warm = running[0] / uncompiled if uncompiled > 0 else 0.0
    with open(args.report, "w") as f:
        report = {"rows": rows, "devices": total.devices, "batches": total.batches, "seconds": seconds}
        report.update(rounds=round_no, cases=cases, workers=workers, bundle=args.bundle, **total.extra)
        report.update(running_batches=running[0], running_s=running[1], running_rate=steady, warm_rate=warm)
        json.dump(report, f, indent=1)
    print(
        f"{total.batches} batches in {_clock(seconds)} ({total.batches / seconds:.1f}/s; while the workers ran: "
        f"{steady:.1f}/s, compiles excluded: {warm:.1f}/s) with {workers} workers, bundles of up to {args.bundle}; "
        f"{total.extra['compiles']} Triton compiles ({total.extra['compile_s']:.0f} worker-s); "
        f"{_failing(total)} failing properties; "
        f"cases in {args.case_dir}/"
    )
    return int(_failing(total) > 0)

