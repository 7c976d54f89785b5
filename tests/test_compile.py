"""Every kernel compiles for a Hopper GPU (sm_90) on any machine, CI's GPU-less one included.

Triton's interpreter, which runs the CPU suite, accepts code the compiler refuses (a global annotated
``tl.constexpr``, for one: it failed only on the GPU). The compile (``lora_verify.sm90``: its cases, and
Triton's own ``ptxas``, no GPU and no driver) runs in a child process without ``TRITON_INTERPRET``
(``@triton.jit`` picks the interpreter at import).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lora_verify.sm90 import CASES, SHARED_LIMIT


def without_interpreter(*args: str) -> str:
    """``python -m ARGS`` in a child process without ``TRITON_INTERPRET``, from the repository root: its stdout
    (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def compiled():
    """Every case's outcome, from one child process without the interpreter."""
    return json.loads(without_interpreter("lora_verify.sm90").splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_compiles_for_sm90(case, compiled):
    assert compiled[case] == "", f"{case}: {compiled[case][:3000]}"


def test_ptx_report_counts_the_tensor_core_instructions_and_ptxas_resources():
    """``benchmarks/ptx_sm90.py`` on one case with a constant overridden (a child process)."""
    line = without_interpreter("benchmarks.ptx_sm90", "shrink-sorted:BLOCK_N=16", "--warps", "4").strip()
    assert line.startswith("shrink-sorted:BLOCK_N=16") and re.search(r"warps 4: wgmma 0, mma.sync [1-9]\d*,", line)
    assert re.search(r"cp.async \d+; \d+ bytes stack frame, \d+ bytes spill stores.*Used \d+ registers", line), line


def test_at_real_shapes_the_matmuls_copy_asynchronously_and_spill_nothing():
    """Compiled as a launch at a real model's shapes is (aligned pointers, strides that are multiples of 16), each
    pipelined shrink and expand case copies its tiles to shared memory asynchronously (``cp.async``) and spills no
    register. Without that alignment the loads go through registers and the grouped shrink spills 2.6 KB a thread:
    a figure the eighteenth session read as the kernel's (``docs/experiments/registers_sm90_cpu.md``)."""
    cases = [name for name, (_, fn, _, constants) in CASES.items()
             if fn in ("_shrink_kernel", "_expand_kernel") and constants.get("STAGES", 3) > 1]
    lines = without_interpreter("benchmarks.ptx_sm90", *cases).strip().splitlines()
    assert [line.split()[0] for line in lines] == cases, lines
    for line in lines:
        assert re.search(r"cp.async [1-9]\d*;", line) and " 0 bytes spill stores" in line, line


def test_the_wide_expand_compiles_at_its_warps_to_wgmma_without_spills():
    """The wide launch's cases (64 rows, rank 128, plain and qkv, 8 warps: ``impl.expand.WIDE_WARPS``) take the
    warpgroup MMA and spill nothing: at 4 warps the qkv one spills (``docs/experiments/tune_expand_wide_h100.md``)."""
    import impl

    lines = without_interpreter("benchmarks.ptx_sm90", "expand-wide", "expand-wide-qkv").strip().splitlines()
    assert [line.split()[0] for line in lines] == ["expand-wide", "expand-wide-qkv"], lines
    for line in lines:
        assert re.search(rf"warps {impl.expand.WIDE_WARPS}: wgmma [1-9]\d*, mma.sync 0,", line), line
        assert " 0 bytes spill stores" in line, line


def test_every_launch_fits_in_shared_memory():
    """Each block configuration impl's launch rules give (``lora_verify.sm90.launches``: every rank the GPU tier
    draws, either launch, every stage count) takes at most sm_90's shared memory a program with float32 inputs.
    The interpreter has no such limit: 128-column tiles at rank 129-256 raised ``OutOfResources`` on the GPU only."""
    shared = json.loads(without_interpreter("lora_verify.sm90", "--shared").splitlines()[-1])
    assert any(label.startswith("expand-lookup") for label in shared) and any("GROUP=4" in label for label in shared)
    over = {label: v for label, v in shared.items() if not isinstance(v, int) or v > SHARED_LIMIT}
    assert not over, f"past {SHARED_LIMIT} bytes: {over}"
