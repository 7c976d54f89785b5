"""lora_verify.tight: each launch argument alone in an allocation of its view's span; the results unchanged."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton
import triton.language as tl

from lora_verify import tight


@triton.jit
def _scale_kernel(src, dst, n, stray, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(dst + offs, 2 * tl.load(src + offs, mask=offs < n + stray), mask=offs < n)


def scale(src, dst, stray=0):
    """``dst = 2 * src``; ``stray`` = 1 reads one element past ``src`` (a planted ``<`` -> ``<=``)."""
    _scale_kernel[(1,)](src, dst, dst.numel(), stray, BLOCK=2 * triton.next_power_of_2(dst.numel()))


@pytest.fixture
def installed():
    tight.install()
    yield
    tight.uninstall()


def _in_margins(device, n, value):
    """A view of ``n`` elements with 3 poisoned elements on each side, and its whole buffer."""
    buffer = torch.full((n + 6,), value, device=device)
    return buffer[3:3 + n], buffer


def _packed(device, n):
    """``src`` and ``dst`` of ``n`` elements, disjoint views of one buffer, each between 3 poisoned elements."""
    buffer = torch.full((2 * n + 9,), -1.0, device=device)
    return buffer[3:3 + n], buffer[n + 6:2 * n + 6], buffer


def _seen_by_kernel(monkeypatch):
    """The storage sizes (bytes) and data pointers of the tensors each launch of ``_scale_kernel`` is given."""
    seen = []
    monkeypatch.setattr(_scale_kernel, "pre_run_hooks", [lambda *args, **kwargs: seen.append(
        [(a.untyped_storage().nbytes(), a.data_ptr()) for a in args if isinstance(a, torch.Tensor)])])
    return seen


def test_a_copy_holds_its_view_alone_with_its_strides(device):
    padded = torch.arange(24.0, device=device).reshape(4, 6)[1:3, :4]  # rows of 4 with 2 padding columns
    copy = tight.tight_copy(padded)
    assert copy.stride() == padded.stride() and torch.equal(copy, padded)
    assert copy.untyped_storage().nbytes() == tight.span(padded) * 4 == (6 + 4) * 4


def test_each_argument_is_moved_out_of_its_margins_and_the_output_copied_back(device, installed, monkeypatch):
    seen = _seen_by_kernel(monkeypatch)
    src, _ = _in_margins(device, 5, float("nan"))
    src.copy_(torch.arange(5.0))
    dst, dst_buffer = _in_margins(device, 5, -1.0)
    scale(src, dst)
    assert seen == [[(5 * 4, seen[0][0][1]), (5 * 4, seen[0][1][1])]]  # each alone: 5 floats, no margins
    assert {p for _, p in seen[0]}.isdisjoint({src.data_ptr(), dst.data_ptr()})
    assert dst_buffer.tolist() == [-1.0] * 3 + [0.0, 2.0, 4.0, 6.0, 8.0] + [-1.0] * 3


def test_overlapping_arguments_keep_their_storage(device, installed, monkeypatch):
    seen = _seen_by_kernel(monkeypatch)
    buffer = torch.arange(8.0, device=device)
    scale(buffer[:4], buffer[2:6])  # spans overlap: copies apart would break the aliasing a kernel may rely on
    assert seen == [[(8 * 4, buffer.data_ptr()), (8 * 4, buffer[2:].data_ptr())]]
    assert buffer.tolist() == [0.0, 1.0, 0.0, 2.0, 4.0, 6.0, 6.0, 7.0]


def test_disjoint_views_of_one_allocation_are_moved_each_alone(device, installed, monkeypatch):
    seen = _seen_by_kernel(monkeypatch)
    src, dst, buffer = _packed(device, 4)  # as the suite moves a case to the GPU: one copy, each tensor a view
    src.copy_(torch.arange(4.0))
    scale(src, dst)
    assert [n for n, _ in seen[0]] == [4 * 4, 4 * 4]
    assert {p for _, p in seen[0]}.isdisjoint({src.data_ptr(), dst.data_ptr()})
    assert buffer.tolist() == [-1.0] * 3 + [0.0, 1.0, 2.0, 3.0] + [-1.0] * 3 + [0.0, 2.0, 4.0, 6.0] + [-1.0] * 3


def test_uninstall_restores_the_launchers(device, monkeypatch):
    tight.install()
    tight.uninstall()
    seen = _seen_by_kernel(monkeypatch)
    src, src_buffer = _in_margins(device, 2, 1.0)
    scale(src, torch.empty(2, device=device))
    assert seen[0][0] == (src_buffer.untyped_storage().nbytes(), src.data_ptr())


MEMCHECK_STRAY = """import torch
from tests.test_tight import _packed, scale
src, dst, _ = _packed("cuda", 5)
scale(src, dst, stray=1)
torch.cuda.synchronize()
"""


@pytest.mark.gpu
@pytest.mark.skipif(not shutil.which("compute-sanitizer"), reason="needs compute-sanitizer (CUDA's toolkit)")
def test_memcheck_sees_a_stray_past_a_moved_argument_and_not_the_same_stray_into_its_margin():
    """``src`` and ``dst`` packed in one allocation, as the suite's cases are on a GPU."""
    from lora_verify.mutate import MEMCHECK, MEMCHECK_ENV

    root = Path(__file__).resolve().parents[1]
    status = {}
    for tight_on in ("1", "0"):
        env = {**os.environ, **MEMCHECK_ENV, "PYTHONPATH": str(root)}  # LORA_TIGHT is read by the pytest plugin only
        script = ("from lora_verify import tight; tight.install()\n" if tight_on == "1" else "") + MEMCHECK_STRAY
        run = subprocess.run([*MEMCHECK, sys.executable, "-c", script], cwd=root, env=env, capture_output=True,
                             text=True, timeout=300)
        status[tight_on] = (run.returncode, "Invalid __global__ read" in run.stdout + run.stderr)
    assert status == {"1": (86, True), "0": (0, False)}
