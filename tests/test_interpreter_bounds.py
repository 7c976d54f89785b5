"""The bounds- and race-checking interpreter mode, checked on tiny kernels it must and must not flag."""

import pytest
import torch
import triton
import triton.language as tl

from lora_verify.interpreter.bounds import FAR, IllegalAddress, MemoryViolation, unchecked

pytestmark = pytest.mark.interpreter


@triton.jit
def _copy_kernel(src, dst, n, extra, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n + extra  # extra = 1 plants the classic `<` -> `<=`
    tl.store(dst + offs, tl.load(src + offs, mask=mask), mask=offs < n)


def copy(src, dst, extra=0, block=4):
    _copy_kernel[(triton.cdiv(dst.numel(), block),)](src, dst, dst.numel(), extra, BLOCK=block)


@triton.jit
def _same_row_kernel(dst, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)  # every program writes the first BLOCK elements
    tl.store(dst + offs, tl.full((BLOCK,), 1.0, tl.float32), mask=offs < n)


def test_correct_kernel_is_not_flagged():
    src = torch.arange(10.0)
    dst = torch.zeros(10)
    copy(src, dst)
    assert torch.equal(src, dst)


def test_launch_options_are_accepted_and_still_checked():
    src, dst = torch.arange(6.0), torch.zeros(6)
    _copy_kernel[(2,)](src, dst, 6, 0, BLOCK=4, num_warps=8, num_stages=2)
    assert torch.equal(src, dst)
    with pytest.raises(Exception, match=r"_copy_kernel: load .*'src' \[6\]"):
        _copy_kernel[(2,)](src, dst, 6, 1, BLOCK=4, num_warps=8)


def test_one_past_the_end_is_flagged_with_kernel_argument_and_offset():
    src, dst = torch.arange(6.0), torch.zeros(6)
    with pytest.raises(Exception, match=r"_copy_kernel: load by program \(1, 0, 0\).*'src' \[6\].*offsets \[6\]"):
        copy(src, dst, extra=1)


def test_a_padding_column_of_a_view_is_out_of_bounds():
    buffer = torch.zeros(4, 5)
    view = buffer[:, :4]  # row stride 5: column 4 is padding, inside the storage but not the view
    flat = torch.arange(16.0)
    _copy_kernel[(1,)](view, flat, 4, 0, BLOCK=8)  # view[0, :4]: in bounds
    with pytest.raises(Exception, match=r"load .* argument 'src' \[4, 4\] \(strides \[5, 1\]\).*offsets \[4\]"):
        _copy_kernel[(1,)](view, flat, 5, 0, BLOCK=8)  # view[0, 4] is padding: in the storage, not the view


@triton.jit
def _far_kernel(src, dst, jump, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(dst + offs, tl.load(src + offs + jump))


def test_a_load_far_from_every_allocation_is_an_illegal_address_a_near_one_is_not():
    """Past every allocation by more than FAR bytes: what kills a GPU's context (lora_verify.faults: a crash)."""
    src, dst = torch.arange(8.0), torch.zeros(4)
    with pytest.raises(Exception, match=rf"{IllegalAddress.__name__}\(\"_far_kernel: load .*'src'") as far:
        _far_kernel[(1,)](src, dst, FAR // 2, BLOCK=4)  # 2 GiB past src: past dst by over FAR too
    assert isinstance(far.value.__cause__, IllegalAddress)
    with pytest.raises(Exception, match=r"MemoryViolation\(") as near:
        _far_kernel[(1,)](src, dst, 6, BLOCK=4)  # 2 lanes past src: a silent read on a GPU
    assert not isinstance(near.value.__cause__, IllegalAddress)


def test_two_programs_storing_one_element_is_a_race():
    with pytest.raises(Exception, match=r"race: programs \(1, 0, 0\) and \(0, 0, 0\).*'dst' element offset 0"):
        _same_row_kernel[(2,)](torch.zeros(4), 4, BLOCK=4)


@triton.jit
def _handoff_kernel(parts, counter, total, SEM: tl.constexpr, COUNT: tl.constexpr):
    """Each program stores a part; with ``COUNT`` the last to count itself done (else every program) adds them up:
    a hand-off between programs, in small."""
    tl.store(parts + tl.program_id(0), tl.program_id(0) + 1)
    offs = tl.arange(0, 4)
    if COUNT:
        if tl.atomic_add(counter, 1, sem=SEM, scope="gpu") == tl.num_programs(0) - 1:
            tl.store(total, tl.sum(tl.load(parts + offs, mask=offs < tl.num_programs(0), other=0), 0))
    else:
        tl.store(total + tl.program_id(0), tl.sum(tl.load(parts + offs, mask=offs < tl.num_programs(0), other=0), 0))


def test_a_load_of_another_programs_store_needs_an_atomic_between_them():
    """Released by the storer, acquired by the loader (acq_rel does both): ordered. A relaxed count, a release
    alone, or no count at all: the load may see the part before it is stored, on a GPU."""
    parts, counter, total = (torch.zeros(n, dtype=torch.int32) for n in (3, 1, 3))
    _handoff_kernel[(3,)](parts, counter, total, SEM="acq_rel", COUNT=True)
    assert total[0] == 1 + 2 + 3 and counter[0] == 3
    race = r"race: program \(\d, 0, 0\) loads 'parts' element offset \d that program \(\d, 0, 0\) stored, with no"
    for sem, count in (("relaxed", True), ("release", True), ("acq_rel", False)):
        counter.zero_()
        with pytest.raises(Exception, match=race):
            _handoff_kernel[(3,)](parts, counter, total, SEM=sem, COUNT=count)


def test_unchecked_runs_the_planted_bug_silently():
    src, dst = torch.arange(6.0), torch.zeros(6)
    with unchecked():
        copy(src, dst, extra=1)  # reads one element past src, yet the result is right
    assert torch.equal(src, dst)
    with pytest.raises(Exception, match=MemoryViolation.__name__):
        copy(src, dst, extra=1)
