"""The interpreter computes Python logic in kernels as Triton's compiler does (lora_verify/interpreter/semantics.py).

Tiny kernels under TRITON_INTERPRET=1: ``and`` / ``or`` / ``not`` on block tensors give elementwise logic
(checked against NumPy), constants short-circuit as the code generator's ``visit_BoolOp`` does, a Python
``bool`` argument is taken, and an integer division by zero is refused naming the kernel and line. Each
check is also run on the interpreter's own behaviour (``uninstalled()``), where it fails: the fixes are needed.
"""

import os

import numpy as np
import pytest
import torch
import triton
import triton.language as tl

from lora_verify.interpreter import semantics

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
pytestmark = pytest.mark.skipif(
    not INTERPRETING, reason="patches Triton's CPU interpreter only (TRITON_INTERPRET=1); compiled kernels need none"
)
if INTERPRETING:
    semantics.install()

B = 8


@triton.jit
def _both(r, c, n, m):
    return (r < n) and (c < m)  # a device function: rewritten too


@triton.jit
def _logic_kernel(out, n, m, ALWAYS: tl.constexpr, NEVER: tl.constexpr, BLOCK: tl.constexpr):
    r = tl.arange(0, BLOCK)[:, None]
    c = tl.arange(0, BLOCK)[None, :]
    both = (r < n) and (c < m)
    either = (r < n) or (c < m)
    neither = not ((r < n) or (c < m))
    three = (r < n) and ALWAYS and (c < m) and (r + c < n + 1)  # a constant that decides nothing is dropped
    called = _both(r, c, n, m)
    ptrs = out + r * BLOCK + c
    tl.store(ptrs, both.to(tl.int32) + 2 * either.to(tl.int32) + 4 * neither.to(tl.int32) + 8 * three.to(tl.int32))
    tl.store(ptrs + BLOCK * BLOCK, called.to(tl.int32), mask=(r < n) or NEVER)  # NEVER False: the mask is r < n


def logic(n, m):
    out = torch.full((2, B, B), -1, dtype=torch.int32)
    _logic_kernel[(1,)](out, n, m, ALWAYS=True, NEVER=False, BLOCK=B)
    return out.numpy()


def expected(n, m):
    r, c = np.arange(B)[:, None], np.arange(B)[None, :]
    both, either = (r < n) & (c < m), (r < n) | (c < m)
    three = both & (r + c < n + 1)
    codes = both.astype(np.int32) + 2 * either + 4 * ~either + 8 * three
    called = np.where(np.broadcast_to(r < n, (B, B)), both, -1)
    return np.stack([codes, called])


@pytest.mark.parametrize("n, m", [(3, 5), (0, 8), (8, 0), (5, 3)])
def test_boolean_operators_are_elementwise(n, m):
    assert (logic(n, m) == expected(n, m)).all()


def test_the_interpreters_own_and_keeps_only_the_last_operand():
    with semantics.uninstalled():
        wrong = logic(3, 5)
    assert not (wrong == expected(3, 5)).all()
    assert (logic(3, 5) == expected(3, 5)).all()  # fixed again afterwards


@triton.jit
def _flag_kernel(out, flag):
    value = 1
    if flag:
        value = 2
    tl.store(out, value)


@pytest.mark.parametrize("flag", [True, False])
def test_python_bool_argument(flag):
    """The compiler types a bool argument ``u1`` and branches on it (sglang 0.4.8's ``fuse_scaling_add``)."""
    out = torch.zeros(1, dtype=torch.int32)
    _flag_kernel[(1,)](out, flag)
    assert out.item() == (2 if flag else 1)
    with semantics.uninstalled(), pytest.raises(Exception, match="itemsize"):
        _flag_kernel[(1,)](out, flag)


@triton.jit
def _divide_kernel(out, d):
    p = tl.program_id(0)
    tl.store(out + p, 7 // d + 7 % d)


def test_integer_division_by_zero_is_refused():
    """Undefined when compiled: refused, naming the kernel and its line; the interpreter alone returns 0."""
    out = torch.zeros(1, dtype=torch.int32)
    line = _divide_kernel.fn.__code__.co_firstlineno + 3
    with pytest.raises(Exception, match=rf"kernel _divide_kernel \(.*test_interpreter_semantics.py:{line}\).*by zero"):
        _divide_kernel[(1,)](out, 0)
    _divide_kernel[(1,)](out, 2)
    assert out.item() == 7 // 2 + 7 % 2
    with semantics.uninstalled(), pytest.warns(RuntimeWarning):
        _divide_kernel[(1,)](out, 0)


@triton.jit
def _int_and_kernel(out, BLOCK: tl.constexpr):
    r = tl.arange(0, BLOCK)
    tl.store(out + r, r and r)


def test_and_of_int_tensors_is_refused_as_the_compiler_refuses_it():
    """The code generator's ``logical_and`` bitcasts each operand to int1: an int32 tensor cannot be."""
    with pytest.raises(Exception, match=r"kernel _int_and_kernel .*'and' of tensors.*bitcast"):
        _int_and_kernel[(1,)](torch.zeros(B, dtype=torch.int32), BLOCK=B)


def test_assignment_expression_in_a_boolean_operator_is_refused():
    def kernel(out, n, BLOCK: tl.constexpr):
        r = tl.arange(0, BLOCK)
        tl.store(out + r, r, mask=(r < n) and ((s := r) < 4))
        tl.store(out + s, r)

    with pytest.raises(Exception, match=r"kernel kernel \(.*\): an assignment expression"):
        triton.jit(kernel)[(1,)](torch.zeros(B, dtype=torch.int32), 3, BLOCK=B)
