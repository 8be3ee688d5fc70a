"""EMA, DEMA and TEMA as signal filters (refimpl.filters; proofs/sources.md#fame; claims
TEMA-poly,
TEMA-lag, EMA-debias).

The filters are compared bit for bit with an independent plain-Python loop, the
polynomial-trend laws are checked in exact rational arithmetic (fractions) and then the
float filter is compared with the exact values, and the lag formulas are checked against
the measured lag of the actual filter output.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl import filters
from tests.conftest import vectors

EPS = np.finfo(np.float64).eps

# Decays in [0, 1) with the special cases mixed in (0 = no memory, 0.999 = Adam's b2).
decays = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.999]),
                   st.floats(0.0, 1.0, exclude_max=True))


# --------------------------------------------------------------------------- references

def ref_chain(x, b1, b3, b4, order, debias):
    """Independent plain-Python reading of the zero-started EMA chain (same operation
    order as the module docstring: each EMA is ``b * m + (1 - b) * input``)."""
    m1 = m2 = m3 = 0.0
    r1 = r2 = r3 = 0.0
    out = []
    for xt in x.tolist():
        m1 = b1 * m1 + (1.0 - b1) * xt
        m2 = b3 * m2 + (1.0 - b3) * m1
        m3 = b4 * m3 + (1.0 - b4) * m2
        r1 = b1 * r1 + (1.0 - b1) * 1.0
        r2 = b3 * r2 + (1.0 - b3) * r1
        r3 = b4 * r3 + (1.0 - b4) * r2
        if order == 1:
            y, r = m1, r1
        elif order == 2:
            y, r = 2.0 * m1 - m2, 2.0 * r1 - r2
        else:
            y, r = 3.0 * m1 - 3.0 * m2 + m3, 3.0 * r1 - 3.0 * r2 + r3
        out.append(y / r if debias else y)
    return np.array(out)


def exact_filter(x, b1, b3, b4, order):
    """The filter in exact rational arithmetic (x and decays as Fractions)."""
    m1 = m2 = m3 = Fraction(0)
    out = []
    for xt in x:
        m1 = b1 * m1 + (1 - b1) * xt
        m2 = b3 * m2 + (1 - b3) * m1
        m3 = b4 * m3 + (1 - b4) * m2
        out.append((m1, 2 * m1 - m2, 3 * m1 - 3 * m2 + m3)[order - 1])
    return out


def L(b):
    """Exact EMA lag b / (1 - b) of a Fraction."""
    return b / (1 - b)


# ------------------------------------------------------------- bitwise vs the reference

@given(x=vectors(1, 30), b1=decays, b3=decays, b4=decays, debias=st.booleans())
def test_filters_equal_an_independent_loop_bitwise(x, b1, b3, b4, debias):
    """ema, dema and tema equal the plain-Python recursions bit for bit (same order of
    operations, IEEE float64, no fastmath), with and without debiasing."""
    assert np.array_equal(filters.ema(x, b1, debias=debias), ref_chain(x, b1, b1, b1, 1, debias))
    assert np.array_equal(filters.dema(x, b1, debias=debias), ref_chain(x, b1, b1, b1, 2, debias))
    assert np.array_equal(filters.tema(x, b1, b3, b4, debias=debias),
                          ref_chain(x, b1, b3, b4, 3, debias))


@given(x=vectors(1, 20), b1=decays, b3=decays)
def test_tema_default_decays(x, b1, b3):
    """``tema(x, b)`` is the classical TEMA (b, b, b); ``tema(x, b1, b3)`` uses b4 = b3."""
    assert np.array_equal(filters.tema(x, b1), filters.tema(x, b1, b1, b1))
    assert np.array_equal(filters.tema(x, b1, b3), filters.tema(x, b1, b3, b3))


def test_first_steps_by_hand():
    """x = (2, 2, ...), decays 0.9 / 0.5 / 0.5 (FAME's defaults), steps 1 and 2:
    m1 = 0.1*2 = 0.2,  m2 = 0.5*0.2 = 0.1,  m3 = 0.5*0.1 = 0.05
      -> EMA 0.2, TEMA = 0.6 - 0.3 + 0.05 = 0.35
    m1 = 0.9*0.2 + 0.2 = 0.38, m2 = 0.05 + 0.19 = 0.24, m3 = 0.025 + 0.12 = 0.145
      -> EMA 0.38, TEMA = 1.14 - 0.72 + 0.145 = 0.565
    DEMA (0.9, 0.9): m2 = 0.02 then 0.018 + 0.038 = 0.056 -> 0.38, 0.704.
    (Decimal decays are not exact binary numbers: compare to 8 eps relative.)"""
    x = np.array([2.0, 2.0])
    np.testing.assert_allclose(filters.ema(x, 0.9), [0.2, 0.38], rtol=8 * EPS)
    np.testing.assert_allclose(filters.tema(x, 0.9, 0.5, 0.5), [0.35, 0.565], rtol=8 * EPS)
    np.testing.assert_allclose(filters.dema(x, 0.9), [0.38, 0.704], rtol=8 * EPS)


# ------------------------------------------------------------------- polynomial trends

@pytest.mark.claim("TEMA-poly")
@pytest.mark.parametrize("b", [Fraction(1, 2), Fraction(4, 5), Fraction(9, 10)])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_polynomial_trends_exact_law(b, order):
    """EMA/DEMA/TEMA (order n = 1/2/3, equal decays) on x_t = t^k, zero start, in exact
    arithmetic: x_t - y_t = c_k + b^t q(t) with q a polynomial of degree < n (the
    transient of an n-fold pole at b), where c_k = 0 for k < n (the trend is
    reproduced exactly in steady state) and c_n = n! L^n (the first failing degree).
    Checked as: (x_t - y_t - c_k) / b^t has vanishing n-th finite differences, and the
    transient |b^t q(t)| shrinks below 1e-6 |x_t|."""
    T = 120
    for k in range(order + 1):
        x = [Fraction(t) ** k for t in range(1, T + 1)]
        y = exact_filter(x, b, b, b, order)
        c = math.factorial(order) * L(b) ** order if k == order else Fraction(0)
        q = [(xt - yt - c) / b ** t for t, (xt, yt) in enumerate(zip(x, y), start=1)]
        for _ in range(order):
            q = [q1 - q0 for q0, q1 in zip(q, q[1:])]
        assert all(d == 0 for d in q), (order, k)
        transient = x[-1] - y[-1] - c
        if b <= Fraction(4, 5):
            assert abs(transient) < Fraction(1, 10**6) * x[-1]
    # and the law genuinely distinguishes the orders: EMA does not reproduce a ramp
    y = exact_filter([Fraction(t) for t in range(1, T + 1)], b, b, b, 1)
    assert T - y[-1] > L(b) / 2


@pytest.mark.claim("TEMA-poly")
@pytest.mark.parametrize("order,name", [(2, "dema"), (3, "tema")])
def test_float_filters_match_exact_polynomial_outputs(order, name):
    """The float filters on x_t = 3 + t/2 (DEMA) and 3 + t/2 + t^2/4 (TEMA), b = 0.75
    (all dyadic, so the exact reference has the same inputs), agree with exact
    arithmetic to 64 eps * max|x| (a few roundings per step, damped by b < 1, amplified
    by at most the combination's coefficient sum 3 + 3 + 1); after 120 steps the
    transient is below 1e-9 of the signal, so the output reproduces the trend."""
    T, b = 120, 0.75
    t = np.arange(1, T + 1, dtype=np.float64)
    x = 3.0 + t / 2 + (t * t / 4 if order == 3 else 0.0)
    y = filters.dema(x, b) if name == "dema" else filters.tema(x, b)
    exact = exact_filter([Fraction(v) for v in x.tolist()], *(Fraction(b),) * 3, order)
    err = np.abs(y - np.array([float(e) for e in exact]))
    assert err.max() <= 64 * EPS * np.abs(x).max()
    assert abs(y[-1] - x[-1]) <= 1e-9 * x[-1]
    # the transient decays: |x_t - y_t| at t = 30, 60, 120 shrinks monotonically
    gaps = np.abs(x - y)[[29, 59, 119]]
    assert gaps[0] > gaps[1] > gaps[2]


@given(b=st.floats(0.0, 0.95))
def test_ema_ramp_closed_form_and_lag(b):
    """EMA of x_t = t from zero: e_t = m_t - (t - L) obeys e_t = b e_{t-1}, e_0 = L, so
    m_t = t - L + L b^t exactly; the steady-state lag is L(b) = b / (1 - b).
    Tolerance 32 eps * t: each step's rounding is relative to |m_t| <= t and is damped
    by b; the closed form itself is evaluated in floats."""
    T = 800
    t = np.arange(1, T + 1, dtype=np.float64)
    m = filters.ema(t, b)
    Lb = b / (1.0 - b)
    closed = t - Lb + Lb * b ** t
    assert np.all(np.abs(m - closed) <= 32 * EPS * (t + Lb))
    assert abs((T - m[-1]) - filters.lag(b)) <= 32 * EPS * T


@pytest.mark.claim("TEMA-poly")
@given(b=st.floats(0.0, 0.95), a=st.floats(-10, 10), s=st.floats(-10, 10))
def test_dema_reproduces_linear_trend(b, a, s):
    """DEMA (equal decays) reproduces x_t = a + s t in steady state, while the EMA lags
    it by s L(b); tolerance 64 eps * max|x| (roundings, as above)."""
    T = 800
    t = np.arange(1, T + 1, dtype=np.float64)
    x = a + s * t
    scale = np.abs(x).max() + 1.0
    assert abs(filters.dema(x, b)[-1] - x[-1]) <= 64 * EPS * scale
    assert abs((x[-1] - filters.ema(x, b)[-1]) - s * b / (1 - b)) <= 64 * EPS * scale * (1 + b / (1 - b))


# -------------------------------------------------------------------------------- lags

@pytest.mark.claim("TEMA-lag")
def test_spec_lag_numbers_exact():
    """TEMA-lag (proofs/sources.md#theoretical-claims): with exact decimal decays, L(0.9) = 9, tema_lag(0.9, 0.5, 0.5) =
    9 - 2*1 + 1 = 8 and tema_lag(0.9, 0.3, 0.7) = 9 - 2*(3/7) + 7/3 = 220/21 = 10.476...:
    the paper's configs lag MORE than Adam's EMA, the code defaults less. The float
    functions agree within 1e-13 (the decimals are not binary numbers; dL/db =
    1/(1-b)^2 <= 100 turns their 1e-17 representation error into <= 1e-15, plus
    rounding)."""
    F = Fraction
    exact_lag = L(F(9, 10))
    exact_cfg = L(F(9, 10)) - 2 * L(F(3, 10)) + L(F(7, 10))
    exact_def = L(F(9, 10)) - 2 * L(F(1, 2)) + L(F(1, 2))
    assert (exact_lag, exact_cfg, exact_def) == (9, F(220, 21), 8)
    assert exact_cfg > exact_lag > exact_def
    assert round(float(exact_cfg), 2) == 10.48
    assert abs(filters.lag(0.9) - 9.0) <= 1e-13
    assert abs(filters.tema_lag(0.9, 0.3, 0.7) - 220 / 21) <= 1e-13
    assert abs(filters.tema_lag(0.9, 0.5, 0.5) - 8.0) <= 1e-13
    assert filters.tema_lag(0.9, 0.3, 0.7) > filters.lag(0.9) > filters.tema_lag(0.9, 0.5, 0.5)


@given(b=st.floats(0.5, 1.0, exclude_max=True))
def test_lag_is_correctly_rounded_for_b_at_least_half(b):
    """For b in [0.5, 1), 1 - b is exact (Sterbenz), so lag(b) = b / (1 - b) is the
    correctly rounded exact value."""
    fb = Fraction(b)
    assert filters.lag(b) == float(fb / (1 - fb))


@pytest.mark.claim("TEMA-lag")
@given(b1=st.floats(0.0, 0.95), b3=st.floats(0.0, 0.95), b4=st.floats(0.0, 0.95))
def test_measured_lag_of_tema_equals_tema_lag(b1, b3, b4):
    """The lag formula is a claim about the filter: run the actual TEMA on x_t = t for
    T = 1500 steps (the transient, ~ t^2 * 0.95^t, is far below rounding there) and
    measure T - y_T. It equals L(b1) - 2 L(b3) + L(b4). So the sign of
    tema_lag - lag(b1) = L(b4) - 2 L(b3) decides whether TEMA lags less than the EMA.
    Tolerance 64 eps * T: the output is ~T, the TEMA combination's coefficients sum to 7,
    each EMA adds a few damped roundings."""
    T = 1500
    t = np.arange(1, T + 1, dtype=np.float64)
    measured = T - filters.tema(t, b1, b3, b4)[-1]
    assert abs(measured - filters.tema_lag(b1, b3, b4)) <= 64 * EPS * T
    assert abs((T - filters.ema(t, b1)[-1]) - filters.lag(b1)) <= 64 * EPS * T


# ------------------------------------------------------------------------------ debias

def _response(b1, b3, b4, order, T):
    """The chain's response to the constant 1 (plain floats) and the combination's
    condition number (sum |coefficient * m_i|) / |output| at each step."""
    m1 = m2 = m3 = 0.0
    out, cond = [], []
    for _ in range(T):
        m1 = b1 * m1 + (1.0 - b1)
        m2 = b3 * m2 + (1.0 - b3) * m1
        m3 = b4 * m3 + (1.0 - b4) * m2
        y, s = ((m1, m1), (2 * m1 - m2, 2 * m1 + m2), (3 * m1 - 3 * m2 + m3, 3 * m1 + 3 * m2 + m3))[order - 1]
        out.append(y)
        cond.append(s / y)
    return np.array(out), np.array(cond)


@pytest.mark.claim("EMA-debias")
@given(k=st.integers(-20, 20), sign=st.sampled_from([1.0, -1.0]),
       b1=decays, b3=decays, b4=decays)
def test_debias_reproduces_power_of_two_constant_exactly(k, sign, b1, b3, b4):
    """A constant c = +-2^k: every rounding in the chain scales exactly with c, so
    y_t = c * r_t bit for bit and y_t / r_t = c EXACTLY at every step, for ema, dema
    and tema with mixed decays."""
    c = sign * 2.0 ** k
    x = np.full(40, c)
    for y in (filters.ema(x, b1, debias=True), filters.dema(x, b1, debias=True),
              filters.tema(x, b1, b3, b4, debias=True)):
        assert np.all(y == c)


@pytest.mark.claim("EMA-debias")
@given(c=st.floats(1e-6, 1e6) | st.floats(-1e6, -1e-6), b1=decays, b3=decays, b4=decays)
def test_debias_reproduces_any_constant_to_ulps(c, b1, b3, b4):
    """Any constant c is reproduced at every step t to 4 t cond_t eps (relative), where
    cond_t is the combination's condition number (1 for EMA; TEMA with b4 near 1 and
    b3 small cancels heavily): each of the t steps adds a couple of relative roundings
    of eps/2 to each EMA (damped by decays < 1), the output amplifies them by cond_t.
    For moderate decays this is a handful of ulps. Without debiasing, the zero start
    is visibly biased (the first EMA output is (1 - b1) c)."""
    T = 40
    x = np.full(T, c)
    t = np.arange(1, T + 1)
    for order, y in ((1, filters.ema(x, b1, debias=True)), (2, filters.dema(x, b1, debias=True)),
                     (3, filters.tema(x, b1, b3, b4, debias=True))):
        bs = (b1, b1, b1) if order < 3 else (b1, b3, b4)
        _, cond = _response(*bs, order, T)
        assert np.all(np.abs(y - c) <= 4 * t * cond * EPS * abs(c)), order
    assert filters.ema(x, b1)[0] == (1.0 - b1) * c


@given(b=decays)
def test_single_ema_response_is_adams_bias_correction(b):
    """For one EMA the response to a constant 1 is 1 - b^t (Adam's bias correction),
    to t eps (one rounding per step in the recursion, one in the power)."""
    T = 50
    t = np.arange(1, T + 1)
    r = filters.ema(np.ones(T), b)
    assert np.all(np.abs(r - (1.0 - b ** t)) <= t * EPS)


# -------------------------------------------------------------------------- validation

@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_decay_out_of_range_names_the_parameter(bad):
    """Decays must be finite and in [0, 1); the message names the argument."""
    x = np.ones(3)
    with pytest.raises(ValueError, match="decay"):
        filters.ema(x, bad)
    with pytest.raises(ValueError, match="decay"):
        filters.dema(x, bad)
    for i, name in enumerate(("b1", "b3", "b4")):
        bs = [0.5, 0.5, 0.5]
        bs[i] = bad
        with pytest.raises(ValueError, match=name):
            filters.tema(x, *bs)
        with pytest.raises(ValueError, match=name):
            filters.tema_lag(*bs)
    with pytest.raises(ValueError, match="decay"):
        filters.lag(bad)


def test_decay_must_be_a_real_number():
    with pytest.raises(TypeError, match="decay"):
        filters.ema(np.ones(3), True)
    with pytest.raises(TypeError, match="b3"):
        filters.tema(np.ones(3), 0.5, "0.5")


@pytest.mark.parametrize("bad,exc", [
    (np.ones((2, 2)), ValueError),           # not 1-D
    ([1.0, 2.0], TypeError),                  # a list, not an array
    (np.ones(3, dtype=np.float32), TypeError),  # no silent cast
    (np.arange(3), TypeError),                # integer dtype
    (np.ones(6)[::2], TypeError),             # strided view
    (np.array([]), ValueError),               # empty
    (np.array([1.0, np.nan]), ValueError),    # non-finite
])
def test_signal_must_be_a_finite_float64_vector(bad, exc):
    for f in (lambda x: filters.ema(x, 0.5), lambda x: filters.dema(x, 0.5),
              lambda x: filters.tema(x, 0.5, 0.5, 0.5)):
        with pytest.raises(exc, match="x"):
            f(bad)


@pytest.mark.parametrize("bad", [1, 0, "yes", None, np.float64(1.0)])
def test_debias_must_be_a_bool(bad):
    for f in (filters.ema, filters.dema, filters.tema):
        with pytest.raises(TypeError, match="debias"):
            f(np.ones(3), 0.5, debias=bad)


@given(x=vectors(1, 10), b1=decays, debias=st.booleans())
def test_input_is_not_modified(x, b1, debias):
    x0 = x.copy()
    for f in (filters.ema, filters.dema, filters.tema):
        y = f(x, b1, debias=debias)
        assert y is not x
    assert np.array_equal(x, x0)
