"""Bit-exact checks of the interpreter's bf16 layer (lora_verify/interpreter/bf16.py).

Tiny kernels run under TRITON_INTERPRET=1 and are compared bit for bit with
torch's CPU bf16 arithmetic (which computes in float32 and rounds to nearest
even), with an exact rational reference for +, -, *, /, fma and the rounding
casts, and within a proven error bound for tl.dot and tl.sum.
"""

import os
from fractions import Fraction

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_verify.interpreter import bf16 as layer

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
pytestmark = [
    pytest.mark.skipif(
        not INTERPRETING,
        reason="the bf16 layer patches Triton's CPU interpreter only (TRITON_INTERPRET=1); "
        "on a GPU, kernels run natively and the layer is not used"),
    # x / 0 etc. in the interpreter's own fp32 numpy code (a GPU gives inf/NaN silently)
    pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning"),
]
if INTERPRETING:
    layer.install()

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BF16, F32 = torch.bfloat16, torch.float32


# ----------------------------------------------------------------- helpers
def bf16_from_bits(bits) -> torch.Tensor:
    return torch.from_numpy(np.asarray(bits, dtype=np.uint16).view(np.int16).copy()).view(BF16)


def bits_of(t: torch.Tensor) -> np.ndarray:
    return t.contiguous().view(torch.int16).numpy().view(np.uint16)


def f32_from_bits(bits) -> torch.Tensor:
    return torch.from_numpy(np.asarray(bits, dtype=np.uint32).view(np.float32).copy())


def raw_bits(t: torch.Tensor) -> np.ndarray:
    return t.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]).numpy()


def assert_same(got: torch.Tensor, want: torch.Tensor, value_only=None):
    """Bit-for-bit equality; NaNs need only be NaN (payloads differ by
    platform); where value_only is set (e.g. max(-0, +0)) values must match."""
    assert got.dtype == want.dtype and got.shape == want.shape
    g, w = got.double().numpy(), want.double().numpy()
    nan = np.isnan(w)
    assert (np.isnan(g) == nan).all(), f"NaN mismatch at {np.flatnonzero(np.isnan(g) != nan)[:5]}"
    bad = (raw_bits(got) != raw_bits(want)) & ~nan
    if value_only is not None:
        bad &= ~(np.asarray(value_only) & (g == w))
    idx = np.flatnonzero(bad)
    assert idx.size == 0, f"{idx.size} mismatches at {idx[:5]}: got {g.ravel()[idx[:5]]}, want {w.ravel()[idx[:5]]}"


def exact_bf16_bits(x: Fraction, mode: str = "rne") -> int:
    """Correctly rounded bf16 bits of a nonzero rational x (the reference)."""
    sign = 0x8000 if x < 0 else 0
    q = abs(x)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1  # now 2**e <= q < 2**(e + 1)
    ulp = Fraction(2) ** (max(e, -126) - 7)  # 8 significant bits; subnormals below 2**-126
    n, rem = divmod(q, ulp)
    n = int(n)
    if mode == "rne" and (2 * rem > ulp or (2 * rem == ulp and n % 2 == 1)):
        n += 1
    if n * ulp >= 2 ** 128:
        return sign | (0x7F80 if mode == "rne" else 0x7F7F)  # inf / largest finite
    return sign | int(np.float32(float(n * ulp)).view(np.uint32) >> 16)


# bf16 bit patterns: any 16 bits, or an fp32 (subnormal, huge, inf, nan) rounded by torch
bf16_bits = st.one_of(
    st.integers(0, 0xFFFF),
    st.floats(width=32).map(lambda v: int(bits_of(torch.tensor([v], dtype=F32).to(BF16))[0])))
bf16_pairs = st.lists(st.tuples(bf16_bits, bf16_bits), min_size=1, max_size=64)

EDGE_BITS = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x8080, 0x3F80, 0xBF80, 0x3F81, 0x3FFF,
             0x4000, 0xC040, 0x3E80, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0x0100, 0x4B80, 0xCB81]
EDGE_PAIRS = [(a, b) for a in EDGE_BITS for b in EDGE_BITS]


def split(pairs):
    a, b = zip(*pairs, strict=True)
    return bf16_from_bits(a), bf16_from_bits(b)


# ----------------------------------------------------------------- kernels
@triton.jit
def _binary_kernel(x_ptr, y_ptr, out_ptr, n, OP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    if OP == "add":
        r = x + y
    elif OP == "sub":
        r = x - y
    elif OP == "mul":
        r = x * y
    elif OP == "div":
        r = x / y  # Triton divides bf16 in fp32 (on a GPU with approximate div.full.f32); the store rounds
    elif OP == "max":
        r = tl.maximum(x, y)  # maxnumf: a NaN operand is ignored
    elif OP == "min":
        r = tl.minimum(x, y)
    elif OP == "max_nan":
        r = tl.maximum(x, y, propagate_nan=tl.PropagateNan.ALL)
    else:
        r = tl.minimum(x, y, propagate_nan=tl.PropagateNan.ALL)
    tl.store(out_ptr + offs, r, mask=mask)


def binary(op, x, y):
    out = torch.empty_like(x)
    _binary_kernel[(1, )](x, y, out, x.numel(), OP=op, BLOCK=triton.next_power_of_2(x.numel()))
    return out


@triton.jit
def _compare_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + 0 * n + offs, (x < y).to(tl.int8), mask=mask)
    tl.store(out_ptr + 1 * n + offs, (x <= y).to(tl.int8), mask=mask)
    tl.store(out_ptr + 2 * n + offs, (x > y).to(tl.int8), mask=mask)
    tl.store(out_ptr + 3 * n + offs, (x >= y).to(tl.int8), mask=mask)
    tl.store(out_ptr + 4 * n + offs, (x == y).to(tl.int8), mask=mask)
    tl.store(out_ptr + 5 * n + offs, (x != y).to(tl.int8), mask=mask)


def compare(x, y):
    out = torch.empty(6, x.numel(), dtype=torch.int8)
    _compare_kernel[(1, )](x, y, out, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    return out.bool()


@triton.jit
def _fma_kernel(x_ptr, y_ptr, z_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    z = tl.load(z_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.fma(x, y, z), mask=mask)


def fma(x, y, z):
    out = torch.empty_like(x)
    _fma_kernel[(1, )](x, y, z, out, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    return out


@triton.jit
def _cast_kernel(x_ptr, out_ptr, n, ROUNDING: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    if ROUNDING == "":
        r = x.to(out_ptr.dtype.element_ty)
    else:
        r = x.to(out_ptr.dtype.element_ty, fp_downcast_rounding=ROUNDING)
    tl.store(out_ptr + offs, r, mask=mask)


def cast(x, dtype, rounding=""):
    out = torch.empty(x.shape, dtype=dtype)
    _cast_kernel[(1, )](x, out, x.numel(), ROUNDING=rounding, BLOCK=triton.next_power_of_2(x.numel()))
    return out


@triton.jit
def _scalar_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x * 0.1 + tl.full((BLOCK, ), 1.5, tl.bfloat16), mask=mask)


def scalar_ops(x):
    out = torch.empty_like(x)
    _scalar_kernel[(1, )](x, out, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    return out


@triton.jit
def _dot_kernel(a_ptr, b_ptr, c_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + m[:, None] * K + k[None, :])
    b = tl.load(b_ptr + k[:, None] * N + n[None, :])
    c = tl.load(c_ptr + m[:, None] * N + n[None, :])
    tl.store(out_ptr + m[:, None] * N + n[None, :], tl.dot(a, b, c))  # fp32 accumulator


def dot(a, b, c):
    out = torch.empty_like(c)
    _dot_kernel[(1, )](a, b, c, out, M=a.shape[0], N=b.shape[1], K=a.shape[1])
    return out


@triton.jit
def _max_combine(a, b):
    return tl.where(a > b, a, b)  # stays bf16 (tl.maximum would promote to fp32)


@triton.jit
def _reduce_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(out_ptr + 0, tl.sum(x, axis=0))  # stays bf16: every partial sum rounded
    tl.store(out_ptr + 1, tl.max(x, axis=0))  # tl.max / tl.min promote bf16 to fp32
    tl.store(out_ptr + 2, tl.min(x, axis=0))
    tl.store(out_ptr + 3, tl.reduce(x, 0, _max_combine))  # generic path: builder ops on bf16


def reduce_ops(x):
    out = torch.empty(4, dtype=BF16)
    _reduce_kernel[(1, )](x, out, BLOCK=x.numel())
    return out


# ----------------------------------------------------- elementwise arithmetic
TORCH_BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
                "max": torch.fmax, "min": torch.fmin, "max_nan": torch.maximum, "min_nan": torch.minimum}


def check_binary(op, x, y):
    if op in ("max", "min"):
        # tl.maximum/minimum promote bf16 to fp32, and the interpreter's fp32
        # maxnumf/minnumf propagate NaN (a GPU returns the other operand):
        # outside this layer's scope, so NaN operands are left out here.
        keep = ~(torch.isnan(x) | torch.isnan(y))
        x, y = x[keep], y[keep]
        if x.numel() == 0:
            return
    got, want = binary(op, x, y), TORCH_BINARY[op](x, y)
    # max/min of +0 and -0 may return either zero (torch returns its first operand)
    zeros = (x.float() == 0).numpy() & (y.float() == 0).numpy() if op.startswith(("max", "min")) else None
    assert_same(got, want, value_only=zeros)


@pytest.mark.parametrize("op", list(TORCH_BINARY))
def test_binary_edge_cases_match_torch(op):
    check_binary(op, *split(EDGE_PAIRS))


@pytest.mark.parametrize("op", list(TORCH_BINARY))
@SETTINGS
@given(pairs=bf16_pairs)
def test_binary_random_match_torch(op, pairs):
    check_binary(op, *split(pairs))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@SETTINGS
@given(pairs=bf16_pairs)
def test_binary_is_correctly_rounded(op, pairs):
    """Independent of torch: fp32-compute-then-RNE equals one exact rounding."""
    x, y = split(pairs)
    got = bits_of(binary(op, x, y))
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    for i, (a, b) in enumerate(zip(x.double().tolist(), y.double().tolist(), strict=True)):
        if not (np.isfinite(a) and np.isfinite(b)) or (op == "div" and b == 0):
            continue
        exact = fn(Fraction(a), Fraction(b))
        if exact != 0:
            assert got[i] == exact_bf16_bits(exact), (op, a, b)


@SETTINGS
@given(triples=st.lists(st.tuples(bf16_bits, bf16_bits, bf16_bits), min_size=1, max_size=64))
def test_fma_is_correctly_rounded(triples):
    x, y, z = (bf16_from_bits(t) for t in zip(*triples, strict=True))
    got = bits_of(fma(x, y, z))
    for i, (a, b, c) in enumerate(zip(x.double().tolist(), y.double().tolist(), z.double().tolist(), strict=True)):
        if np.isfinite([a, b, c]).all():
            exact = Fraction(a) * Fraction(b) + Fraction(c)
            if exact != 0:
                assert got[i] == exact_bf16_bits(exact), (a, b, c)


def test_scalar_constants_are_rounded_to_bf16():
    x = bf16_from_bits(EDGE_BITS)
    want = x * torch.tensor(0.1, dtype=BF16) + torch.tensor(1.5, dtype=BF16)
    assert_same(scalar_ops(x), want)


# -------------------------------------------------------------- comparisons
def check_compare(x, y):
    got = compare(x, y)
    for row, fn in enumerate([torch.lt, torch.le, torch.gt, torch.ge, torch.eq, torch.ne]):
        assert torch.equal(got[row], fn(x, y)), fn.__name__


def test_compare_edge_cases_match_torch():
    check_compare(*split(EDGE_PAIRS))


@SETTINGS
@given(pairs=bf16_pairs)
def test_compare_random_match_torch(pairs):
    check_compare(*split(pairs))


# -------------------------------------------------------------------- casts
# fp32 bit pattern -> expected bf16 bits under round-to-nearest-even
RNE_CASES = {
    0x3F808000: 0x3F80,  # 1 + 2**-8: tie, lower neighbour even -> down
    0x3F818000: 0x3F82,  # tie, lower neighbour odd -> up to even
    0x3F808001: 0x3F81,  # just above the tie (sticky bit) -> up
    0x3F817FFF: 0x3F81,  # just below the tie -> down
    0x3FFF8000: 0x4000,  # tie on odd 0x3FFF: mantissa carries into the exponent
    0x3FFFFFFF: 0x4000,
    0x7F7F7FFF: 0x7F7F,  # just below the overflow threshold: largest finite
    0x7F7F8000: 0x7F80,  # tie above bf16 max -> inf
    0x7F7FFFFF: 0x7F80,  # fp32 max -> inf
    0x7F800000: 0x7F80,  # inf
    0x00000001: 0x0000,  # smallest fp32 subnormal -> +0
    0x00008000: 0x0000,  # subnormal tie, even -> 0
    0x00018000: 0x0002,  # subnormal tie, odd -> up
    0x0000C000: 0x0001,
    0x007F8000: 0x0080,  # largest bf16 subnormal tie -> smallest normal
    0x007FFFFF: 0x0080,
    0x80000000: 0x8000,  # -0.0
    0xBF818000: 0xBF82,  # negative tie
    0xBF808000: 0xBF80,
    0xFF7F8000: 0xFF80,  # -> -inf
    0x80008000: 0x8000,  # tiny negative -> -0.0
}
NAN_F32_BITS = [0x7FC00000, 0xFFC00000, 0x7F800001, 0x7F808000, 0xFFFFFFFF]  # incl. signalling NaNs


def test_fp32_to_bf16_rne_edge_cases():
    x = f32_from_bits(list(RNE_CASES) + NAN_F32_BITS)
    got = cast(x, BF16)
    n = len(RNE_CASES)
    assert list(bits_of(got[:n])) == list(RNE_CASES.values())
    assert torch.isnan(got[n:]).all()  # NaN stays NaN (never rounds into inf)
    assert_same(got, x.to(BF16))
    assert_same(cast(x, BF16, "rtne"), x.to(BF16))


@SETTINGS
@given(vals=st.lists(st.one_of(st.floats(width=32), st.integers(0, 2**32 - 1).map(
    lambda b: float(np.uint32(b).view(np.float32)))), min_size=1, max_size=256))
def test_fp32_to_bf16_random(vals):
    x = torch.tensor(vals, dtype=F32)
    got = cast(x, BF16)
    assert_same(got, x.to(BF16))
    finite = np.isfinite(x.numpy()) & (x.numpy() != 0)
    for i in np.flatnonzero(finite):
        assert bits_of(got)[i] == exact_bf16_bits(Fraction(float(x[i]))), float(x[i])
    # round toward zero is truncation of the fp32 bits (NaN kept NaN)
    rtz, nan = cast(x, BF16, "rtz"), torch.isnan(x).numpy()
    assert torch.isnan(rtz).numpy()[nan].all()
    assert np.array_equal(bits_of(rtz)[~nan], (x.numpy().view(np.uint32) >> 16)[~nan])


@SETTINGS
@given(vals=st.lists(st.floats(width=64, allow_nan=False), min_size=1, max_size=64))
def test_fp64_to_bf16(vals):
    """fp64 goes through fp32 (RNE twice), as torch's CPU cast does; with
    rtz the result is the exact truncation."""
    x = torch.tensor(vals, dtype=torch.float64)
    assert_same(cast(x, BF16), x.to(BF16))
    rtz = bits_of(cast(x, BF16, "rtz"))
    for i, v in enumerate(vals):
        if np.isfinite(v) and v != 0:
            assert rtz[i] == exact_bf16_bits(Fraction(v), "rtz"), v


def test_fp64_to_bf16_double_rounding_case():
    x = torch.tensor([1 + 2**-8 + 2**-30], dtype=torch.float64)  # fp32 rounds it onto a tie
    assert cast(x, BF16).item() == 1.0 == x.to(BF16).item()


ALL_BF16 = bf16_from_bits(np.arange(0x10000))


def test_bf16_to_fp32_exhaustive():
    got = cast(ALL_BF16, F32)
    assert_same(got, ALL_BF16.to(F32))
    assert np.array_equal(got.numpy().view(np.uint32)[~torch.isnan(got).numpy()],
                          (np.arange(0x10000, dtype=np.uint32) << 16)[~torch.isnan(got).numpy()])


def test_bf16_to_fp16_exhaustive():
    assert_same(cast(ALL_BF16, torch.float16), ALL_BF16.to(torch.float16))


def test_fp16_to_bf16_exhaustive():
    x = torch.from_numpy(np.arange(0x10000, dtype=np.uint16).view(np.float16).copy())
    assert_same(cast(x, BF16), x.to(BF16))


def test_fp8_to_bf16_exhaustive_finite():
    # inf/NaN left out: the interpreter's own fp8 -> fp32 upcast (_convert_float) maps them to finite values
    x = torch.arange(256, dtype=torch.uint8).view(torch.float8_e5m2)
    x = x[torch.isfinite(x.float())]
    assert_same(cast(x, BF16), x.to(BF16))


def test_bf16_to_int32_in_range():
    x = ALL_BF16[torch.isfinite(ALL_BF16) & (ALL_BF16.float().abs() < 2**31)]
    assert torch.equal(cast(x, torch.int32), x.to(torch.int32))


@SETTINGS
@given(vals=st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=256))
def test_int32_to_bf16(vals):
    # 16842753 = 2**24 + 2**16 + 1: int -> fp32 (RNE) lands on a bf16 tie, so
    # the result is 2**24, as for torch and Triton's GPU lowering (sitofp f32, cvt.rn.bf16)
    x = torch.tensor(vals + [16842753, 2**24 + 1, -2**31, 2**31 - 1, 0, -1, 257, 259], dtype=torch.int32)
    got = cast(x, BF16)
    assert_same(got, x.to(BF16))
    assert got[len(vals)].item() == 2**24


# ---------------------------------------------------------------------- dot
def dot_inputs(seed, m=16, n=16, k=32):
    rng = np.random.default_rng(seed)

    def rand(*shape):  # signs, and magnitudes spread over 2**-30 .. 2**30
        return torch.from_numpy(rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape))

    return rand(m, k).to(BF16), rand(k, n).to(BF16), rand(m, n).float()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_dot_fp32_accumulation(seed):
    """bf16 products are exact in fp32, so the only error is fp32 summation of
    K + 1 terms; compare against the float64 product of the exactly widened
    operands with the classical bound |err| <= gamma_{K+1} * (|A||B| + |C|),
    gamma_n = n * 2**-24 / (1 - n * 2**-24). (Exact equality with a float32
    matmul would only test numpy against itself: summation order is free.)"""
    a, b, c = dot_inputs(seed)
    got = dot(a, b, c).double()
    a64, b64, c64 = a.double(), b.double(), c.double()
    want = a64 @ b64 + c64
    n = a.shape[1] + 1
    gamma = n * 2.0**-24 / (1 - n * 2.0**-24)
    bound = gamma * (a64.abs() @ b64.abs() + c64.abs())
    assert ((got - want).abs() <= bound).all()


@pytest.mark.parametrize("dtype", [BF16, torch.float16, F32])
def test_a_rows_dot_does_not_depend_on_its_place_in_the_block(dtype):
    """As on the GPU (each MMA row from its own operands), a row's dot gives the same bits alone and at every
    other row of the block; NumPy's BLAS need not (OpenBLAS's AVX-512 sgemm differs by position)."""
    a, b, c = dot_inputs(1, k=32)
    a, b, c = a.float().clamp(-4, 4).to(dtype), b.float().clamp(-4, 4).to(dtype), c.zero_()
    alone = dot(torch.cat([a[:1], torch.zeros_like(a[1:])]), b, c)[0]
    for place in range(1, a.shape[0]):
        block = torch.zeros_like(a)
        block[place] = a[0]
        assert torch.equal(dot(block, b, c)[place], alone), place


# --------------------------------------------------------------- reductions
def test_reductions_on_bf16():
    x = torch.tensor([(-1) ** i * (i % 3) for i in range(64)], dtype=BF16)  # exact partial sums
    got = reduce_ops(x)
    assert got.tolist() == [x.double().sum().item(), 2.0, -2.0, 2.0]
    y = torch.tensor([-3.5, -0.25, -7.0, -1.0] * 16, dtype=BF16)  # all negative: bit order inverted
    assert reduce_ops(y).tolist() == [-188.0, -0.25, -7.0, -0.25]


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_sum_error_bound(seed):
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(128)).to(BF16)
    got = reduce_ops(x)[0].double().item()
    levels = 7  # pairwise tree over 128 values, each partial sum rounded to bf16
    bound = levels * 2.0**-8 / (1 - levels * 2.0**-8) * x.double().abs().sum().item()
    assert abs(got - x.double().sum().item()) <= bound


# ------------------------------------------- without the layer it is wrong
def test_unpatched_interpreter_is_wrong():
    a, b, c = dot_inputs(0, k=16)
    a = a.float().clamp(-4, 4).to(BF16)
    b = b.float().clamp(-4, 4).to(BF16)
    c.zero_()
    want = a.double() @ b.double()
    with layer.uninstalled():  # the original interpreter: bf16 bits used as integers
        bad_dot = dot(a, b, c).double()
        bad_cast = cast(f32_from_bits([0x3F818000]), BF16)  # truncates instead of RNE
        bad_sum = reduce_ops(torch.ones(64, dtype=BF16))[0].item()
    assert (bad_dot - want).abs().max() > 1e6
    assert bits_of(bad_cast)[0] == 0x3F81
    assert bad_sum != 64.0
    assert (dot(a, b, c).double() - want).abs().max() < 1e-3  # patched again afterwards
