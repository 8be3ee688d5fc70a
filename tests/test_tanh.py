"""refimpl's own tanh (refimpl/_tanh.py); the 8-lane order of the L2 norms is tested in
tests/test_problems.py with the other shared kernels.

The expected values are independent of the code under test: the exact tanh from Python's
``decimal`` (correctly rounded exp at 70 digits, via benchmarks/tanh_ulp.py's reference,
itself checked here against published digits) and the constants from exact rationals.
"""

from __future__ import annotations

import importlib.util
import math
import types
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import refimpl._tanh as T
from refimpl._tanh import tanh
from refimpl.problems.mlp import MLP

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tanh_ulp.py"
_spec = importlib.util.spec_from_file_location("tanh_ulp", _SCRIPT)
tanh_ulp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tanh_ulp)


def _ln2() -> Fraction:
    with localcontext() as ctx:
        ctx.prec = 80
        return Fraction(Decimal(2).ln())


def _sweep(seed: int, n: int) -> np.ndarray:
    """Points in every regime: the polynomial, both sides of the switch at 0.75, the
    exponential form, tiny arguments, and their negatives."""
    rng = np.random.default_rng(seed)
    parts = [rng.uniform(0.0, 0.75, n), rng.uniform(0.74, 0.76, n), rng.uniform(0.75, 3.0, n),
             rng.uniform(3.0, 20.0, n // 4), 10.0 ** rng.uniform(-12, 0, n // 2)]
    x = np.concatenate(parts)
    return np.where(rng.random(x.size) < 0.5, -x, x)


def test_the_reference_is_exact():
    # tanh(1) and tanh(1/2) to 40 digits (OEIS A073747 and tanh(1/2) = (e - 1) / (e + 1))
    assert abs(tanh_ulp.exact_tanh(1.0) - Decimal("0.7615941559557648881194582826047935904127")) < Decimal("1e-39")
    with localcontext() as ctx:
        ctx.prec = 60
        e = Decimal(1).exp()
        assert abs(tanh_ulp.exact_tanh(0.5) - (e - 1) / (e + 1)) < Decimal("1e-55")
    # the series branch agrees with the exponential formula where both are accurate
    with localcontext() as ctx:
        ctx.prec = 70
        e = (2 * Decimal(9e-6)).exp()  # the series' first omitted term: 3e-53 relative
        assert abs(tanh_ulp.exact_tanh(9e-6) - (e - 1) / (e + 1)) < Decimal("4e-53") * Decimal(9e-6)
    # ulp_error: the correctly rounded value is within 0.5 ulp, its neighbour within 1.5
    x = 0.5
    r = float(tanh_ulp.exact_tanh(x))
    assert tanh_ulp.ulp_error(x, r) <= 0.5
    assert 0.5 <= tanh_ulp.ulp_error(x, math.nextafter(r, 1.0)) <= 1.5


@pytest.mark.parametrize("seed", [0, 1])
def test_error_is_within_the_stated_bound(seed):
    x = _sweep(seed, 1500)
    errors = np.array([tanh_ulp.ulp_error(float(v), tanh(float(v))) for v in x])
    assert errors.max() <= T.MAX_ULP_MEASURED, (float(x[errors.argmax()]), errors.max())
    # and it is not merely faithful by luck: most results are correctly rounded
    assert np.mean(errors <= 0.5) > 0.75


def test_edge_cases():
    assert math.copysign(1.0, tanh(0.0)) == 1.0 and tanh(0.0) == 0.0
    assert math.copysign(1.0, tanh(-0.0)) == -1.0 and tanh(-0.0) == 0.0
    for x in (5e-324, -5e-324, 2.2250738585072014e-308, -1e-300, 1e-170, 2.0 ** -27):
        assert tanh(x) == x  # |tanh(x) - x| < |x|^3 / 3 is far below half an ulp of x
    assert tanh(math.inf) == 1.0 and tanh(-math.inf) == -1.0
    assert math.isnan(tanh(math.nan))
    for x in (19.1, 21.999, 22.0, 22.5, 354.9, 710.0, 1e300, 1.7976931348623157e308):
        assert tanh(x) == 1.0 and tanh(-x) == -1.0
    # just below 19.06 the exact value still rounds below 1
    assert tanh(19.0) == math.nextafter(1.0, 0.0)
    for x in (0.75, math.nextafter(0.75, 0.0), 1e-8, 0.1, 3.0, 18.0):
        assert tanh_ulp.ulp_error(x, tanh(x)) <= T.MAX_ULP_MEASURED
        assert tanh(-x) == -tanh(x)


_PY_TANH = getattr(tanh, "py_func", tanh)  # NUMBA_DISABLE_JIT=1: tanh is the function


def test_compiled_equals_python_reading_on_the_sweep():
    x = _sweep(7, 300)
    assert all(tanh(float(v)) == _PY_TANH(float(v)) for v in x)


def test_the_constants_are_what_the_docstring_says():
    ln2 = _ln2()
    assert T.EXP_TAYLOR == tuple(float(Fraction(1, math.factorial(n))) for n in range(14))
    hi = Fraction(T.LN2_HI)
    assert (hi * 2 ** 32).denominator == 1 and 0 <= ln2 - hi < Fraction(1, 2 ** 32)
    assert abs(hi + Fraction(T.LN2_LO) - ln2) < Fraction(1, 2 ** 85)
    assert T.INV_LN2 == float(1 / ln2)
    # k * LN2_HI is exact for every k the reduction can produce (0 .. 64)
    assert all(Fraction(k * T.LN2_HI) == k * hi for k in range(65))


def test_the_polynomial_fits_to_its_stated_error():
    """max |P(s) - (tanh(a) - a) / a^3| over [0, 0.5625], evaluated exactly (rationals for P,
    70-digit decimals for tanh) on 400 points: below 2e-17, as the docstring states (most
    of it the rounding of -1/3 to double, 1.85e-17 at s = 0)."""
    worst = Fraction(0)
    for s_float in np.linspace(1e-6, T.SWITCH ** 2, 400):
        a = math.sqrt(s_float)
        s = Fraction(a) ** 2
        p = sum(Fraction(c) * s ** i for i, c in enumerate(T.TANH_P))
        with localcontext() as ctx:
            ctx.prec = 70
            g = (tanh_ulp.exact_tanh(a) - Decimal(a)) / (Decimal(a) ** 3)
        worst = max(worst, abs(p - Fraction(g)))
    assert worst < Fraction(2, 10 ** 17)


def _variant(**constants):
    """tanh's Python reading with some module constants replaced (teeth)."""
    f = _PY_TANH
    return types.FunctionType(f.__code__, {**f.__globals__, **constants})


@pytest.mark.parametrize("wrong", [
    dict(TANH_P=T.TANH_P[:-1] + (0.0,)),             # a term short: fit error ~1e-10
    dict(SWITCH=0.3),                                # exp form where 1 - q cancels
    dict(EXP_TAYLOR=T.EXP_TAYLOR[:12] + (0.0, 0.0)), # exp truncated at degree 11
    dict(LN2_LO=0.0),                                # reduction without the low part
])
def test_teeth_a_wrong_constant_breaks_the_bound(wrong):
    bad = _variant(**wrong)
    x = _sweep(3, 400)
    errors = [tanh_ulp.ulp_error(float(v), bad(float(v))) for v in x]
    assert max(errors) > T.MAX_ULP_MEASURED


def test_the_mlp_uses_refimpls_tanh():
    """A 1-1-1 network with unit weights and zero biases returns tanh(x) itself."""
    mlp = MLP((1, 1, 1))
    w = mlp.ravel([(np.ones((1, 1)), np.zeros(1)), (np.ones((1, 1)), np.zeros(1))])
    x = np.array([[0.3], [0.7512], [1.9], [-4.25], [1e-9]])
    out = mlp.forward(w, x)[:, 0]
    assert [float(v) for v in out] == [tanh(float(v)) for v in x[:, 0]]
