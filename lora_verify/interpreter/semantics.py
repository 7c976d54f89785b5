"""Python semantics the interpreter keeps where Triton's compiler has its own: made to match the compiler.

Triton's interpreter runs a kernel's Python as Python. Three places where that differs from what the compiler
(Triton 3.6's code generator, lowered through LLVM) makes of the same source:

1. ``and`` / ``or`` / ``not`` on tensors. The code generator (``visit_BoolOp``, ``visit_UnaryOp``) evaluates
   every operand in order, short-circuits only on compile-time constants, and combines the tensor operands
   with ``logical_and`` / ``logical_or`` / ``__not__``: elementwise logic. Python's ``and`` asks the first
   operand's ``__bool__``, which the interpreter answers ``True`` for any block tensor, so
   ``mask=(rows < n) and (cols < m)`` silently becomes ``mask=(cols < m)`` (older sglang kernels write masks
   this way). Here each such operator of a ``@triton.jit`` function is rewritten, in the AST the interpreter
   already rewrites, into a call that does what the code generator does; an operator the rewrite cannot
   express faithfully (an assignment expression inside one) is refused, naming the kernel and line.
2. A Python ``bool`` argument of a kernel (not ``tl.constexpr``). The compiler types it ``u1`` (an ``int1``
   scalar) and branches on it; the interpreter builds an ``int1`` handle around an int32 array and fails
   ("numpy data itemsize (32 bits) exceeds dtype primitive_bitwidth (1 bits)"). Here it gets a bool array.
3. Integer division or remainder by zero. Compiled, it is LLVM ``sdiv``/``srem`` by zero: undefined behaviour
   (the GPU returns some value); the interpreter's NumPy returns 0 with a warning and the kernel runs on.
   Here it raises :class:`UndefinedBehaviour` naming the kernel and line: a kernel that divides by zero on
   some input is wrong on that input, whatever the interpreter would have computed.

``install()`` applies the three (idempotent); ``uninstalled()`` restores the interpreter's own behaviour for
the duration (to show what each fix changes). Kernels' source is never changed.
"""

from __future__ import annotations

import ast
import contextlib
import sys
from pathlib import Path

import numpy as np

BOOL_OP, NOT = "_lora_verify_bool_op", "_lora_verify_not"  # the helpers' names in a rewritten kernel's globals
_ORIGINALS: dict = {}  # (owner, name) -> the interpreter's attribute
_PATCHED: dict = {}  # (owner, name) -> ours


class UndefinedBehaviour(ArithmeticError):
    """A kernel did what compiled code leaves undefined (integer division by zero)."""


class UnsupportedLogic(SyntaxError):
    """A boolean operator the rewrite cannot make match the compiler."""


def _tensor_type():
    import triton.language as tl

    return tl.tensor


def bool_op(op: str, site: str, *operands):
    """``a and b and ...`` / ``a or b or ...`` as Triton's code generator computes them (``visit_BoolOp``).

    ``operands`` are thunks, evaluated in order. A non-tensor value (a constant) that decides the result is
    returned at once, as the compiler short-circuits on constants; one that does not is dropped. The tensors
    are combined right to left with ``logical_and`` / ``logical_or`` (elementwise, int1), never short-circuited.
    """
    tensor, method = _tensor_type(), {"and": "logical_and", "or": "logical_or"}[op]
    tensors, value = [], None
    for thunk in operands:
        value = thunk()
        if isinstance(value, tensor):
            tensors.append(value)
        elif bool(value) is (op == "or"):
            return value
    if not tensors:
        return value
    try:
        while len(tensors) > 1:
            rhs, lhs = tensors.pop(), tensors.pop()
            tensors.append(getattr(lhs, method)(rhs))
    except Exception as exc:  # the compiler refuses it too (e.g. logical_and of int32 tensors)
        raise type(exc)(f"{site}: '{op}' of tensors: {exc}") from exc
    return tensors[0]


def not_(site: str, operand):
    """``not a``: a tensor's ``__not__`` (elementwise, int1) as the code generator calls it; Python's otherwise."""
    if not isinstance(operand, _tensor_type()):
        return not operand
    try:
        return operand.__not__()
    except Exception as exc:
        raise type(exc)(f"{site}: 'not' of a tensor: {exc}") from exc


class _Logic(ast.NodeTransformer):
    """Rewrites boolean operators into calls of :func:`bool_op` / :func:`not_` (operands as lambdas)."""

    def __init__(self, function: str, filename: str):
        self.function, self.filename = function, filename

    def site(self, node) -> str:
        return f"kernel {self.function} ({self.filename}:{node.lineno})"

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if any(isinstance(n, ast.NamedExpr) for n in ast.walk(node)):
            raise UnsupportedLogic(
                f"{self.site(node)}: an assignment expression inside '{ast.unparse(node)}': the interpreter "
                "cannot evaluate it as the compiler does"
            )
        thunks = [ast.Lambda(args=ast.arguments([], [], None, [], [], None, []), body=v) for v in node.values]
        op = "and" if isinstance(node.op, ast.And) else "or"
        call = ast.Call(ast.Name(BOOL_OP, ast.Load()), [ast.Constant(op), ast.Constant(self.site(node)), *thunks], [])
        return ast.copy_location(call, node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.Not):
            return node
        call = ast.Call(ast.Name(NOT, ast.Load()), [ast.Constant(self.site(node)), node.operand], [])
        return ast.copy_location(call, node)


def _kernel_line() -> str:
    """``kernel NAME (file:line)`` of the innermost frame outside Triton and this package: the kernel's source."""
    import triton

    skip = (str(Path(triton.__file__).parent), str(Path(__file__).parent))
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame = frame.f_back
    if frame is None:
        return "a kernel"
    return f"kernel {frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})"


def install() -> None:
    """Applies the three fixes to Triton's interpreter (idempotent)."""
    if _ORIGINALS:
        return
    import triton.language as tl
    from triton.runtime import interpreter as interp

    def patch(owner, name, make):
        _ORIGINALS[(owner, name)] = getattr(owner, name)
        _PATCHED[(owner, name)] = make(_ORIGINALS[(owner, name)])
        setattr(owner, name, _PATCHED[(owner, name)])

    def logic_rewrite(transform):
        def rewrite(self, src):
            tree = transform(self, src)  # the interpreter's own rewrite; line numbers are the file's now
            self.fn.__globals__.setdefault(BOOL_OP, bool_op)
            self.fn.__globals__.setdefault(NOT, not_)
            return ast.fix_missing_locations(_Logic(self.fn.__name__, self.filename).visit(tree))

        return rewrite

    def bool_args(implicit_cvt):
        def cvt(arg):
            if isinstance(arg, bool):
                return tl.tensor(interp.TensorHandle(np.array([arg], dtype=np.bool_), tl.int1), tl.int1)
            return implicit_cvt(arg)

        return cvt

    def defined_division(method):
        def divide(self, lhs, rhs):
            if lhs.dtype.scalar.is_int() and not np.all(rhs.data):
                raise UndefinedBehaviour(
                    f"{_kernel_line()}: integer division or remainder by zero: undefined when compiled "
                    "(LLVM sdiv/srem), the interpreter's 0 is no answer"
                )
            return method(self, lhs, rhs)

        return divide

    patch(interp.FunctionRewriter, "_transform_ast", logic_rewrite)
    patch(interp, "_implicit_cvt", bool_args)
    for name in ("create_sdiv", "create_udiv", "create_srem", "create_urem"):
        patch(interp.InterpreterBuilder, name, defined_division)
    interp.InterpretedFunction.rewritten_fn.clear()  # functions rewritten before are rewritten again


@contextlib.contextmanager
def uninstalled():
    """The interpreter's own behaviour for the duration (kernels rewritten meanwhile are rewritten again after)."""
    from triton.runtime import interpreter as interp

    for (owner, name), original in _ORIGINALS.items():
        setattr(owner, name, original)
    interp.InterpretedFunction.rewritten_fn.clear()
    try:
        yield
    finally:
        for (owner, name), ours in _PATCHED.items():
            setattr(owner, name, ours)
        interp.InterpretedFunction.rewritten_fn.clear()
