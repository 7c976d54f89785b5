"""What the compiler makes of a kernel for sm_90, on any machine: ``python -m benchmarks.ptx_sm90 CASE ...``.

Each CASE is one of ``lora_verify.sm90``'s cases, optionally with constants overridden (``CASE:NAME=VALUE,...``,
e.g. ``shrink-sorted:BLOCK_N=16``). It is compiled with ``--warps`` warps (default: the case's launch's,
``lora_verify.sm90.warps_of``) and the ptxas in Triton's wheel, specialized as a launch at a real model's shapes is
(``--unaligned``: as one at the suite's odd sizes); printed per case: ptxas' resource line (registers, spills), the
tensor-core instructions in the PTX (``wgmma`` on warpgroups of 64 rows, ``mma.sync`` on warps) and its asynchronous
copies to shared memory (``cp.async``: none where the loads are not known aligned).
No GPU and no driver needed: a lead for what to time, not a timing. Run without ``TRITON_INTERPRET``
(``@triton.jit`` picks the interpreter at import).
"""

import argparse
import os
import re
import subprocess
import tempfile
from pathlib import Path

from triton.backends.nvidia.compiler import get_ptxas

from lora_verify.sm90 import CASES, kernel, warps_of

MMA = {"wgmma": re.compile(r"\bwgmma\.mma_async\b"), "mma.sync": re.compile(r"\bmma\.sync\b"),
       "cp.async": re.compile(r"\bcp\.async\.c[ag]\.shared\.global\b")}


def parse(spec: str) -> tuple:
    """``"CASE:NAME=VALUE,..."`` -> ``(case, {NAME: value})`` (integers, or True/False)."""
    case, _, overrides = spec.partition(":")
    if case not in CASES:
        raise SystemExit(f"no case {case!r}; expected one of {', '.join(CASES)}")
    values = {"True": True, "False": False}
    return case, {k: values[v] if v in values else int(v)
                  for k, v in (item.split("=", 1) for item in overrides.split(",") if item)}


def resources(text: str) -> str:
    """ptxas -v's lines on the kernel's registers, stack and spills, joined."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.ptx"
        path.write_text(text)
        done = subprocess.run([get_ptxas(90).path, "-v", "--gpu-name", "sm_90a", str(path), "-o", str(path) + ".o"],
                              capture_output=True, text=True, check=True)
    lines = [line.split(":", 1)[-1].strip() for line in done.stderr.splitlines()]
    return "; ".join(line for line in lines if "spill stores" in line or "registers" in line)


def instructions(text: str) -> str:
    """How many of each tensor-core instruction and asynchronous copy the PTX holds."""
    return ", ".join(f"{name} {len(pattern.findall(text))}" for name, pattern in MMA.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", metavar="CASE[:NAME=VALUE,...]")
    parser.add_argument("--warps", type=int, default=None, help="default: the case's launch (lora_verify.sm90.WARPS)")
    parser.add_argument("--unaligned", action="store_true", help="without the alignment a real shape's launch has")
    args = parser.parse_args()
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("run it without TRITON_INTERPRET=1: the kernels would be the interpreter's")
    for spec in args.cases:
        case, overrides = parse(spec)
        warps = args.warps or warps_of(case)
        text = kernel(case, overrides, warps, aligned=not args.unaligned).asm["ptx"]
        print(f"{spec:<45} warps {warps}: {instructions(text)}; {resources(text)}", flush=True)


if __name__ == "__main__":
    main()
