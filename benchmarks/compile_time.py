"""Did a kernel edit make its compile slower? ``python -m benchmarks.compile_time [OLD_DIR] [--cases ...]``.

Times the sm_90 compile (Triton's ``ptxas`` included, no GPU needed) of ``lora_verify.sm90``'s cases, for
this tree's ``impl`` and, given a folder holding another ``impl/`` (as for ``benchmarks.compare``), for that one,
each in a child process with a fresh Triton cache. A case is compiled after ``sum_splits`` (which pays the
compiler's start-up) and then again from the in-memory cache (~0 s: a check that the first figure was a compile).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(cases):
    import impl
    from lora_verify.sm90 import outcome

    outcome("sum_splits")
    for name in cases:
        start = time.perf_counter()
        error = outcome(name)
        first = time.perf_counter() - start
        start = time.perf_counter()
        outcome(name)
        print(f"{Path(impl.__file__).parent}  {name:<36} {first:6.2f} s (again: {time.perf_counter() - start:.2f} s) "
              f"{error[:200]}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, nargs="?", help="folder holding another impl/ package")
    parser.add_argument("--cases", default="shrink-sorted,shrink-grouped", help="comma-separated CASES names")
    parser.add_argument("--repeat", type=int, default=2, help="child processes per tree")
    args = parser.parse_args()
    trees = [ROOT] + ([args.old.resolve()] if args.old else [])
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    for _ in range(args.repeat):
        for tree in trees:
            env.update(TRITON_CACHE_DIR=tempfile.mkdtemp(), PYTHONPATH=os.pathsep.join([str(tree), str(ROOT)]))
            code = f"from benchmarks.compile_time import child; child({args.cases.split(',')!r})"
            subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, check=True)


if __name__ == "__main__":
    main()
