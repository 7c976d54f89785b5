"""bfloat16 arithmetic for Triton's CPU interpreter (TRITON_INTERPRET=1).

Why: the interpreter (Triton 3.6.0, checked here, and 3.9.0) stores a bf16
tensor as a raw ``uint16`` numpy array and then computes on those *bits*:
``tl.dot``, ``+ - *``, comparisons, ``tl.fma``, ``tl.sum`` (and min/max,
unary math and the standard reductions/scans where they are reached with bf16
operands) treat the bit patterns as integers, so a bf16 dot comes back ~1e10
off and negative values compare wrongly.  (Its dot of other float dtypes is
NumPy's matmul, whose BLAS may round a row by its position in the block: every
16- and 32-bit float dot here is computed row by row, ``rowwise_matmul``.)
Casts are wrong too: fp32 -> bf16 truncates, the RTNE path of
``_convert_float`` rounds half-up (no sticky bits, no ties-to-even, no
mantissa carry), bf16 -> fp32 flushes subnormals, and int/fp16/fp64 <-> bf16
go through ``astype`` on the ``uint16`` bits.  Kernels
under test would thus be judged against garbage.

What: ``install()`` patches ``triton.runtime.interpreter.InterpreterBuilder``
(and the interpreter's ``ReduceOps``/``ScanOps`` helpers) so that bf16 behaves
as on a GPU: every bf16 operand is widened exactly to float32 (bits << 16), the
operation runs in float32, and every bf16 result is rounded back with
round-to-nearest-even (NaN stays NaN, overflow goes to inf, subnormals are
kept).  Operations on other dtypes are delegated to the saved originals.  Only
the interpreter is patched; kernels are never changed.  ``uninstalled()`` is a
context manager that temporarily restores the originals (to show the bug).
"""

from __future__ import annotations

import contextlib

import numpy as np

_ORIGINALS: dict = {}  # (owner, name) -> original attribute
_PATCHED: dict = {}  # (owner, name) -> our replacement

_QUIET_NAN_BIT = 0x0040
_MISSING = object()  # marks an attribute that install() added


# ----------------------------------------------------------------- bit helpers
def widen(bits) -> np.ndarray:
    """bf16 bits (uint16) -> float32, exact: bf16 is the top half of fp32."""
    return (np.asarray(bits).astype(np.uint32) << 16).view(np.float32)


def round_rne(x) -> np.ndarray:
    """float32 -> bf16 bits with round-to-nearest-even.

    Adding 0x7FFF plus the lowest kept bit and truncating rounds half-way
    cases to even and lets a mantissa carry ripple into the exponent, which
    also yields inf on overflow and handles subnormals (bf16 and fp32 share
    the exponent range, so bf16 subnormals are fp32 subnormals).
    """
    x = np.asarray(x, dtype=np.float32)
    b = x.view(np.uint32).astype(np.uint64)
    r = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return np.where(np.isnan(x), (b >> 16) | _QUIET_NAN_BIT, r).astype(np.uint16)


def round_rtz(x) -> np.ndarray:
    """float32 -> bf16 bits, rounding toward zero (truncation; NaN kept NaN)."""
    x = np.asarray(x, dtype=np.float32)
    b = x.view(np.uint32) >> 16
    return np.where(np.isnan(x), b | _QUIET_NAN_BIT, b).astype(np.uint16)


def _f64_to_f32_odd(v: np.ndarray) -> np.ndarray:
    """float64 -> float32 with round-to-odd (a sticky rounding).

    A round-to-odd result with >= p + 2 bits, rounded again to nearest-even at
    p bits, equals the single correctly rounded result (Boldo & Melquiond), so
    f64 -> odd f32 -> RNE bf16 is a correct direct f64 -> bf16 rounding.
    """
    f = v.astype(np.float32)
    inexact = f.astype(np.float64) != v
    even = (f.view(np.uint32) & 1) == 0
    toward = np.where(v > f, np.float32(np.inf), np.float32(-np.inf))
    return np.where(inexact & even & ~np.isnan(v), np.nextafter(f, toward), f)


def rowwise_matmul(a, b) -> np.ndarray:
    """``a @ b`` in float64, each output element from its own row and column alone, in one order for all.

    NumPy's matmul goes through BLAS, whose kernels may round a row differently by its position in the block
    (OpenBLAS 0.3.30's sgemm on an AVX-512 AMD EPYC: a row alone and the same row 4th of 16 differ in the last
    bit), where the compiler's MMA computes each row from its operands alone: properties comparing a row's bits
    across batches (sorted == unsorted) would fail on the CPU for no fault of the kernel. Products of bf16, fp16
    and fp32 values are exact in float64; the sum over K is one NumPy reduction, the same for every element.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a[..., :, :, None] * b[..., None, :, :]).sum(axis=-2)


# ------------------------------------------------------------------- patching
def install() -> None:
    """Patch the interpreter for correct bf16 arithmetic (idempotent)."""
    if _ORIGINALS:
        return
    import triton.language as tl
    from triton.runtime import interpreter as interp

    B = interp.InterpreterBuilder
    TH = interp.TensorHandle
    BF16, FP32 = tl.bfloat16, tl.float32
    rounding = getattr(interp._ir, "ROUNDING_MODE", None)
    RTZ = getattr(rounding, "RTZ", object())

    def is_bf16(h) -> bool:
        return getattr(h.dtype, "scalar", h.dtype) == BF16

    def orig(owner, name):
        return _ORIGINALS[(owner, name)]

    def patch(owner, name, make, add=False):
        if owner is None or not (add or hasattr(owner, name)):
            return  # not in this Triton version: nothing to fix
        _ORIGINALS[(owner, name)] = getattr(owner, name, _MISSING)
        _PATCHED[(owner, name)] = make(name)
        setattr(owner, name, _PATCHED[(owner, name)])

    def f32(self, h) -> np.ndarray:
        """Any float/int handle -> float32 values (bf16 exactly)."""
        if is_bf16(h):
            return widen(h.data)
        sty = h.dtype.scalar
        if sty.is_fp8():  # fp8 -> fp32 is an exact upcast in the original code
            return orig(B, "create_fp_to_fp")(self, h, FP32, None).data
        # fp64 goes through float32 here (double rounding, as torch's CPU
        # cast does); int -> fp32 uses numpy's (RNE) conversion, as torch and
        # Triton's GPU lowering (sitofp to f32, then RTNE to bf16) do.
        return np.asarray(h.data).astype(np.float32)

    # tl.full(shape, value, tl.bfloat16) asks the builder for get_bf16, which
    # the interpreter lacks; the GPU builder converts the float like this.
    if not hasattr(B, "get_bf16"):
        patch(B, "get_bf16", lambda name: lambda self, value: TH(
            round_rne(np.array([value], dtype=np.float32)), BF16), add=True)

    # Correct rounding: for +, -, *, / and sqrt on two bf16 operands (p = 8),
    # computing the exact result rounded to float32 (p' = 24) and then
    # rounding that to bf16 gives the correctly rounded bf16 result, because
    # double rounding is innocuous when p' >= 2p + 2 (24 >= 18; Figueroa,
    # "When is double rounding innocuous?", 1995).  fp32 has bf16's exponent
    # range, so overflow is the same and in the subnormal range fp32 keeps 16
    # more bits.  Min/max/fmod/compare are exact in fp32.  Hence "widen,
    # compute in fp32, round RNE" is bit-exact with a GPU, whether it has a
    # native bf16 op or computes in fp32 and converts with cvt.rn.bf16.f32.
    def binary(op):
        def make(name):
            def f(self, lhs, rhs):
                if not (is_bf16(lhs) or is_bf16(rhs)):
                    return orig(B, name)(self, lhs, rhs)
                with np.errstate(all="ignore"):
                    return TH(round_rne(op(f32(self, lhs), f32(self, rhs))), BF16)
            return f
        return make

    for name, op in {
        "create_fadd": np.add, "create_fsub": np.subtract,
        "create_fmul": np.multiply, "create_fdiv": np.divide,
        "create_precise_divf": np.divide, "create_frem": np.fmod,
        # *imumf propagate NaN; *numf return the non-NaN operand (fmin/fmax).
        "create_minimumf": np.minimum, "create_maximumf": np.maximum,
        "create_minnumf": np.fmin, "create_maxnumf": np.fmax,
    }.items():
        patch(B, name, binary(op))

    def compare(op, unordered):
        def make(name):
            def f(self, lhs, rhs):
                if not (is_bf16(lhs) or is_bf16(rhs)):
                    return orig(B, name)(self, lhs, rhs)
                a, b = f32(self, lhs), f32(self, rhs)
                nan = np.isnan(a) | np.isnan(b)
                res = (op(a, b) | nan) if unordered else (op(a, b) & ~nan)
                return TH(np.asarray(res, dtype=bool), tl.int1)
            return f
        return make

    for pred, op in {"LT": np.less, "GT": np.greater, "LE": np.less_equal,
                     "GE": np.greater_equal, "EQ": np.equal, "NE": np.not_equal}.items():
        patch(B, f"create_fcmpO{pred}", compare(op, unordered=False))
        patch(B, f"create_fcmpU{pred}", compare(op, unordered=True))

    def unary(op):
        def make(name):
            def f(self, arg):
                if not is_bf16(arg):
                    return orig(B, name)(self, arg)
                with np.errstate(all="ignore"):
                    return TH(round_rne(op(widen(arg.data)).astype(np.float32)), BF16)
            return f
        return make

    erf32 = getattr(interp, "np_erf_fp32", None)
    for name, op in {
        "create_exp": np.exp, "create_exp2": np.exp2, "create_log": np.log,
        "create_log2": np.log2, "create_sin": np.sin, "create_cos": np.cos,
        "create_sqrt": np.sqrt, "create_precise_sqrt": np.sqrt,
        "create_rsqrt": lambda x: np.float32(1) / np.sqrt(x),
        "create_floor": np.floor, "create_ceil": np.ceil, "create_erf": erf32,
    }.items():
        if op is not None:
            patch(B, name, unary(op))

    def make_fma(name):
        def f(self, x, y, z):
            if not any(is_bf16(h) for h in (x, y, z)):
                return orig(B, name)(self, x, y, z)
            # One rounding of x*y + z: the product of two bf16 values is exact
            # in float64; TwoSum gives the sum's exact error, which makes the
            # float64 sum round-to-odd, and round_rne(_f64_to_f32_odd(.)) then
            # rounds that correctly to bf16 (as fma.rn.bf16 does on a GPU).
            with np.errstate(all="ignore"):
                p = f32(self, x).astype(np.float64) * f32(self, y).astype(np.float64)
                c = f32(self, z).astype(np.float64)
                s = p + c
                bp = s - c
                err = (p - bp) + (c - (s - bp))
                odd = (s.view(np.uint64) & 1) == 1
                fix = (err != 0) & ~odd & np.isfinite(s)
                s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
                return TH(round_rne(_f64_to_f32_odd(s)), BF16)
        return f

    patch(B, "create_fma", make_fma)

    def make_clampf(name):
        def f(self, x, lo, hi, *args):
            if not is_bf16(x):
                return orig(B, name)(self, x, lo, hi, *args)
            out = np.clip(f32(self, x), f32(self, lo), f32(self, hi))
            return TH(round_rne(out), BF16)
        return f

    patch(B, "create_clampf", make_clampf)

    def make_dot(name):
        def f(self, a, b, d, *args):
            if not all(h.dtype.scalar.is_floating() and h.dtype.scalar.primitive_bitwidth in (16, 32) for h in (a, b)):
                return orig(B, name)(self, a, b, d, *args)
            # Every float dot (bf16 by value, not bits): the products exact, the sum row by row
            # (rowwise_matmul: not the GPU's MMA order, so not bit-exact with it), rounded once to
            # float32, then the accumulator added in float32.
            out = rowwise_matmul(f32(self, a), f32(self, b)).astype(np.float32) + f32(self, d)
            if is_bf16(d):
                return TH(round_rne(out), BF16)
            return TH(out.astype(interp._get_np_dtype(d.dtype)), d.dtype.scalar)
        return f

    patch(B, "create_dot", make_dot)

    def make_cast(name):
        def f(self, src, dst_type, *args):
            dst = dst_type.scalar
            if is_bf16(src):
                if dst == BF16:
                    return src
                # bf16 -> anything: exact widening, then the fp32 conversion.
                wide = TH(widen(src.data), FP32)
                return wide if dst == FP32 else orig(B, name)(self, wide, dst_type, *args)
            if dst == BF16:  # anything -> bf16: via float32, then RNE
                return TH(round_rne(f32(self, src)), BF16)
            return orig(B, name)(self, src, dst_type, *args)
        return f

    patch(B, "cast_impl", make_cast)

    def make_fp_to_fp(name):
        def f(self, src, dst_type, rounding_mode):
            dst = dst_type.scalar
            if is_bf16(src):
                wide = TH(widen(src.data), FP32)
                return wide if dst == FP32 else orig(B, name)(self, wide, dst_type, rounding_mode)
            if dst != BF16:
                return orig(B, name)(self, src, dst_type, rounding_mode)
            if rounding_mode == RTZ:
                v = f32(self, src)
                if src.dtype.scalar.is_fp64():  # f64 -> f32 toward zero too
                    d64 = np.asarray(src.data)
                    v = np.where(np.abs(v.astype(np.float64)) > np.abs(d64),
                                 np.nextafter(v, np.float32(0)), v)
                return TH(round_rtz(v), BF16)
            return TH(round_rne(f32(self, src)), BF16)  # RTNE (or exact upcast)
        return f

    patch(B, "create_fp_to_fp", make_fp_to_fp)

    # Reductions and scans are not builder calls: the interpreter computes
    # tl.sum / tl.max / tl.cumsum ... with numpy directly on the data.
    Reduce = getattr(interp, "ReduceOps", None)
    Scan = getattr(interp, "ScanOps", None)

    def make_min_max(name):
        def f(self, input, val_reduce_op, idx_reduce_op=None):
            t = input[0] if isinstance(input, tuple) else input
            if t.dtype.scalar != BF16:
                return orig(Reduce, name)(self, input, val_reduce_op, idx_reduce_op)
            w = widen(t.handle.data)  # min/max/arg* on values are exact
            kw = dict(axis=self.axis, keepdims=self.keep_dims)
            val = idx = None
            if val_reduce_op:
                val = self.to_tensor(round_rne(val_reduce_op(w, **kw)), t.dtype)
            if idx_reduce_op:
                idx = self.to_tensor(idx_reduce_op(w, **kw), tl.int32)
            return (val, idx) if val is not None and idx is not None else (
                val if val is not None else idx)
        return f

    def make_sum(name):
        def f(self, input):
            if input.dtype.scalar != BF16:
                return orig(Reduce, name)(self, input)
            # A bf16 tl.sum stays bf16 (Triton does not upcast it), so every
            # partial sum is rounded: pairwise tree of bf16 adds (a GPU uses a
            # layout-dependent order, so this is not bit-exact with it).
            w = widen(input.handle.data)
            axis = self.axis
            if axis is None:
                w, axis = w.reshape(-1), 0
            w = np.moveaxis(w, axis, -1)
            with np.errstate(all="ignore"):
                while w.shape[-1] > 1:
                    n = w.shape[-1] // 2
                    pair = widen(round_rne(w[..., :n] + w[..., n:2 * n]))
                    w = np.concatenate([pair, w[..., 2 * n:]], axis=-1)
            r = w[..., 0]
            if self.keep_dims:
                r = np.expand_dims(r, axis) if self.axis is not None else r.reshape(
                    (1,) * input.handle.data.ndim)
            return self.to_tensor(round_rne(r), input.dtype)
        return f

    patch(Reduce, "min_max", make_min_max)
    patch(Reduce, "sum", make_sum)

    def scan(op):
        def make(name):
            def f(self, input):
                if input.dtype.scalar != BF16:
                    return orig(Scan, name)(self, input)
                # sequential scan, every partial result rounded to bf16
                w = np.moveaxis(widen(input.handle.data), self.axis, 0).copy()
                with np.errstate(all="ignore"):
                    for i in range(1, w.shape[0]):
                        w[i] = widen(round_rne(op(w[i - 1], w[i])))
                out = round_rne(np.moveaxis(w, 0, self.axis))
                return [self.to_tensor(out, input.dtype)]
            return f
        return make

    patch(Scan, "cumsum", scan(np.add))
    patch(Scan, "cumprod", scan(np.multiply))


@contextlib.contextmanager
def uninstalled():
    """Temporarily restore the original (bit-level) interpreter methods."""
    for (owner, name), fn in _ORIGINALS.items():
        if fn is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, fn)
    try:
        yield
    finally:
        for (owner, name), fn in _PATCHED.items():
            setattr(owner, name, fn)
