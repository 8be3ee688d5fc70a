"""Claims TEMA-poly, TEMA-lag, TEMA-noise, FAME-adam and FAME-debias (proofs/tema_fame.md).

The filters are studied through their impulse responses h_k (the output for the input
1, 0, 0, ...): steady state means y_t = sum_k h_k x_{t-k} over the infinite past, so
* reproducing polynomials of degree < n  <=>  moments mu_0 = 1, mu_1 = .. = mu_{n-1} = 0,
  and the error on t^n is then (-1)^(n+1) mu_n = n! L^n (TEMA-poly);
* the lag is mu_1 (TEMA-lag);  the white-noise variance gain is sum_k h_k^2 (TEMA-noise).
Exact values come from exact rational arithmetic (fractions): closed forms and the
discrete Lyapunov equation of the filter's state space. The float filters
(``refimpl.filters``) and FAME's own moment chain (read from ``FAME.update``'s state) are
compared with them.

Rounding allowances used below (u = eps / 2):
* an EMA m <- b m + (1 - b) x errs by <= 3 u max|x| per step and its recursion damps by
  b, so its error stays below 3 u max|x| / (1 - b); the impulse response element
  m_k = (1 - b) b^k is built by k multiplications, relative error <= (k + 2) u;
* a TEMA combination 3 m1 - 3 m2 + m3 errs by at most 3 u (3|m1| + 3|m2| + |m3|).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from refimpl import EMA, FAME, Adam, NoisyQuadratic, StableSAM, filters, train
from tests.conftest import vectors

EPS = np.finfo(np.float64).eps
DENORM = 2.0**-1074  # absolute error of a rounding in the subnormal range
F = Fraction


def L(b):
    return b / (1 - b)


def impulse(T):
    x = np.zeros(T)
    x[0] = 1.0
    return x


def chain(x, b1, b3, b4):
    """The three EMAs of the chain as float arrays, built from filters.ema (zero start,
    each EMA fed the new output of the previous one, as in FAME)."""
    m1 = filters.ema(x, b1)
    m2 = filters.ema(m1, b3)
    m3 = filters.ema(m2, b4)
    return m1, m2, m3


def moment_allowance(m1, m2, m3, j, coeffs=(3.0, 3.0, 1.0)):
    """Rounding allowance for sum_k k^j h_k with h = c1 m1 - c2 m2 + c3 m3 computed in
    floats: element k errs by <= (k + 4) u (3|m1| + 3|m2| + |m3|) (module docstring),
    and the sum adds one more u per term; allowed 8 eps sum_k (k + 4) k^j (...)."""
    k = np.arange(m1.shape[0], dtype=np.float64)
    weight = coeffs[0] * np.abs(m1) + coeffs[1] * np.abs(m2) + coeffs[2] * np.abs(m3)
    return 8 * EPS * float(np.sum((k + 4) * k**j * weight))


def tail_bound(b, T, j):
    """Truncation bound for sum_{k >= T} k^j |h_k|, |h_k| <= 7 C(k+2, 2) b^k (each EMA
    power E^n has impulse response (1-b)^n C(k+n-1, n-1) b^k <= C(k+2, 2) b^k, and the
    combination's coefficients sum to 7 in absolute value). The terms shrink by at most
    r = b ((T + 3) / T)^(j + 2) < 1 a step, so the tail is below term_T / (1 - r)."""
    r = b * ((T + 3) / T) ** (j + 2)
    assert r < 1
    return 7 * T**j * (T + 1) * (T + 2) / 2 * b**T / (1 - r)


# ======================================================================== TEMA-poly

@pytest.mark.claim("TEMA-poly")
@given(x=vectors(d_min=1, d_max=40, lo=-100.0, hi=100.0), b=st.floats(0.0, 0.99))
def test_one_minus_tema_is_the_cube_of_one_minus_ema(x, b):
    """[TEMA-poly, transfer function] For ANY signal (zero start): x - TEMA(x) equals
    (1 - EMA) applied three times, and x - DEMA(x) equals it applied twice: 1 - TEMA =
    (1 - E)^3, 1 - DEMA = (1 - E)^2 as operators (all causal, linear, time-invariant
    and zero-started, so they compose and commute exactly). Allowance 80 eps max|x| /
    (1 - b): each of the <= 6 EMAs errs by 3 u M_i / (1 - b) with M_i <= 8 max|x| the
    size of its input, and the differences and the combination add a few u max|x|
    (plus 64 x 2^-1074 for roundings in the subnormal range)."""
    M = float(np.max(np.abs(x)))
    r1 = x - filters.ema(x, b)
    r2 = r1 - filters.ema(r1, b)
    r3 = r2 - filters.ema(r2, b)
    tol = 80 * EPS * M / (1 - b) + 64 * DENORM
    assert np.all(np.abs((x - filters.tema(x, b)) - r3) <= tol)
    assert np.all(np.abs((x - filters.dema(x, b)) - r2) <= tol)


@pytest.mark.claim("TEMA-poly")
@given(x=vectors(d_min=5, d_max=40, lo=-100.0, hi=100.0), b=st.floats(0.5, 0.99))
def test_transfer_function_check_has_teeth(x, b):
    """Teeth: the same comparison rejects a TEMA with a perturbed coefficient
    (3 m1 - 3 m2 + 0.99 m3) and FAME's mixed-decay TEMA (b, b/2, b/2), on every signal
    where the perturbation is larger than the allowance (it is 0.01 |m3| and, for the
    mixed decays, the whole change of m2 and m3)."""
    M = float(np.max(np.abs(x)))
    r1 = x - filters.ema(x, b)
    r2 = r1 - filters.ema(r1, b)
    r3 = r2 - filters.ema(r2, b)
    tol = 80 * EPS * M / (1 - b)
    m1, m2, m3 = chain(x, b, b, b)
    assume(0.01 * np.max(np.abs(m3)) > 4 * tol)
    assert not np.all(np.abs((x - (3 * m1 - 3 * m2 + 0.99 * m3)) - r3) <= tol)
    mixed = filters.tema(x, b, b / 2, b / 2)
    assume(np.max(np.abs(mixed - filters.tema(x, b))) > 4 * tol)
    assert not np.all(np.abs((x - mixed) - r3) <= tol)


def one_minus_filter_exact(x, b, order):
    """y = (1 - E)^order x for the zero-started EMA E of decay b, EXACTLY (Fractions),
    from a difference equation instead of from any EMA: E(z) = (1 - b) / (1 - b z^-1),
    so 1 - E(z) = b (1 - z^-1) / (1 - b z^-1), and y solves
    (1 - b z^-1)^order y = b^order (1 - z^-1)^order x with zero initial conditions
    (x_t = y_t = 0 for t < 0): for order 3,
    y_t = 3 b y_(t-1) - 3 b^2 y_(t-2) + b^3 y_(t-3) + b^3 (x_t - 3 x_(t-1) + 3 x_(t-2) - x_(t-3))."""
    b = F(b)
    binom = [math.comb(order, j) * (-1) ** j for j in range(order + 1)]  # (1 - z^-1)^order
    xs = [F(v) for v in x]
    ys: list = []
    for t in range(len(xs)):
        acc = sum(binom[j] * xs[t - j] for j in range(order + 1) if t - j >= 0) * b**order
        acc -= sum(binom[j] * b**j * ys[t - j] for j in range(1, order + 1) if t - j >= 0)
        ys.append(acc)
    return ys


def cube_law_holds(x, b, tema_out, dema_out):
    """x - TEMA(x) = (1 - E)^3 x and x - DEMA(x) = (1 - E)^2 x against the exact
    difference equations, within the float filters' rounding allowance 80 eps max|x| /
    (1 - b) + 64 x 2^-1074 (each of the chain's EMAs errs by <= 3 u M_i / (1 - b) plus
    the error it inherits, the combination adds a few u max|x|; module docstring)."""
    M = float(np.max(np.abs(x)))
    tol = 80 * EPS * M / (1 - b) + 64 * DENORM
    r3, r2 = one_minus_filter_exact(x, b, 3), one_minus_filter_exact(x, b, 2)
    return (all(abs(F(float(xi - ti)) - yi) <= tol for xi, ti, yi in zip(x, tema_out, r3))
            and all(abs(F(float(xi - di)) - yi) <= tol for xi, di, yi in zip(x, dema_out, r2)))


@pytest.mark.claim("TEMA-poly")
@given(x=vectors(d_min=1, d_max=30, lo=-100.0, hi=100.0), b=st.floats(0.0, 0.99))
@example(x=np.array([1.0, 0.0, 0.0, 0.0, 0.0]), b=0.5)
def test_one_minus_tema_is_the_cube_against_an_independent_expression(x, b):
    """[TEMA-poly, transfer function] The cube identity checked against an expression that
    uses no EMA at all: the exact solution of the third-order (second-order for DEMA)
    difference equation of (1 - E)^3 (one_minus_filter_exact). The operator identity
    above compares filters.tema with filters.ema, and would hold for ANY linear filter
    in place of E; this one pins E to the EMA of decay b."""
    assert cube_law_holds(x, b, filters.tema(x, b), filters.dema(x, b))


def _swapped_ema(x, b):
    """A wrong EMA with the weights swapped: m <- (1 - b) m + b x (zero start)."""
    out, m = np.empty_like(x), 0.0
    for t, v in enumerate(x):
        m = (1 - b) * m + b * v
        out[t] = m
    return out


@pytest.mark.claim("TEMA-poly")
def test_independent_cube_check_has_teeth():
    """Teeth: a TEMA and DEMA built from an EMA with swapped weights (b = 0.8) satisfy the
    operator identity built from that same wrong EMA (the old check cannot see the
    mistake), but the independent difference-equation check rejects them; it also
    rejects the perturbed coefficient 3 m1 - 3 m2 + 0.99 m3 and FAME's mixed decays."""
    x = np.array([3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, -6.0, 5.0, 3.0])
    b = 0.8
    assert cube_law_holds(x, b, filters.tema(x, b), filters.dema(x, b))
    e1 = _swapped_ema(x, b)
    e2 = _swapped_ema(e1, b)
    e3 = _swapped_ema(e2, b)
    wrong_tema, wrong_dema = 3 * e1 - 3 * e2 + e3, 2 * e1 - e2
    r1 = x - _swapped_ema(x, b)
    r2 = r1 - _swapped_ema(r1, b)
    r3 = r2 - _swapped_ema(r2, b)
    tol = 80 * EPS * 9.0 / (1 - b)
    assert np.all(np.abs((x - wrong_tema) - r3) <= tol)      # the self-consistent check passes
    assert np.all(np.abs((x - wrong_dema) - r2) <= tol)
    assert not cube_law_holds(x, b, wrong_tema, wrong_dema)   # the independent one does not
    m1, m2, m3 = chain(x, b, b, b)
    assert not cube_law_holds(x, b, 3 * m1 - 3 * m2 + 0.99 * m3, filters.dema(x, b))
    assert not cube_law_holds(x, b, filters.tema(x, b, b / 2, b / 2), filters.dema(x, b))


def measured_moments(kind, b, T, jmax):
    """sum_k k^j h_k for j <= jmax of the float filter's impulse response, with the
    allowance (rounding + truncation) for each."""
    x = impulse(T)
    m1, m2, m3 = chain(x, b, b, b)
    h = {"ema": m1, "dema": 2 * m1 - m2, "tema": 3 * m1 - 3 * m2 + m3}[kind]
    coeffs = {"ema": (1, 0, 0), "dema": (2, 1, 0), "tema": (3, 3, 1)}[kind]
    k = np.arange(T, dtype=np.float64)
    out = []
    for j in range(jmax + 1):
        tol = moment_allowance(m1, m2, m3, j, coeffs) + tail_bound(b, T, j)
        out.append((float(np.sum(k**j * h)), tol))
    return out


@pytest.mark.claim("TEMA-poly")
@given(b=st.floats(0.0, 0.9))
def test_impulse_response_moments_give_the_steady_state_errors(b):
    """[TEMA-poly] Moments of the impulse responses, T = 900 terms (tail_bound):
    EMA  mu_0 = 1, mu_1 = L;
    DEMA mu_0 = 1, mu_1 = 0, mu_2 = -2 L^2;
    TEMA mu_0 = 1, mu_1 = mu_2 = 0, mu_3 = 6 L^3.
    So in steady state EMA/DEMA/TEMA reproduce trends of degree < 1/2/3 and leave the
    error (-1)^(n+1) mu_n = n! L^n on t^n: L, 2 L^2, 6 L^3 (proofs/tema_fame.md)."""
    T, Lb = 900, b / (1 - b)
    expected = {"ema": [1, Lb], "dema": [1, 0, -2 * Lb**2], "tema": [1, 0, 0, 6 * Lb**3]}
    for kind, mus in expected.items():
        got = measured_moments(kind, b, T, len(mus) - 1)
        for (value, tol), mu in zip(got, mus):
            # the exact mu is evaluated in floats: a few u of its own size on top
            assert abs(value - mu) <= tol + 8 * EPS * abs(mu), (kind, value, mu)


@pytest.mark.claim("TEMA-poly")
@given(b=st.floats(0.0, 0.75), coef=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4))
@example(b=0.125, coef=[0.0, 0.0, 0.0, 5e-324])    # subnormal: absolute roundings of 2^-1074
def test_steady_state_error_on_polynomials_through_the_filters(b, coef):
    """[TEMA-poly] Through the float filters on polynomial trends (t = 1..400): each
    filter of order n, fed a polynomial of degree n, ends with the error n! L^n times
    the leading coefficient, whatever the lower coefficients:
    EMA on a0 + a1 t leaves a1 L; DEMA on a0 + a1 t + a2 t^2 leaves 2 a2 L^2;
    TEMA on a0 + a1 t + a2 t^2 + a3 t^3 leaves 6 a3 L^3.
    The transient is b^t times a polynomial of degree < 3 (proof); at t = 400 and
    b <= 3/4, b^t < 1e-49, far below the rounding allowance 80 eps max|x| / (1 - b)
    (plus 64 x 2^-1074 for roundings in the subnormal range)."""
    T = 400
    t = np.arange(1, T + 1, dtype=np.float64)
    a0, a1, a2, a3 = coef
    Lb = b / (1 - b)
    for kind, x, err in (("ema", a0 + a1 * t, a1 * Lb),
                         ("dema", a0 + a1 * t + a2 * t**2, 2 * a2 * Lb**2),
                         ("tema", a0 + a1 * t + a2 * t**2 + a3 * t**3, 6 * a3 * Lb**3)):
        y = getattr(filters, kind)(x, b)
        tol = 80 * EPS * float(np.max(np.abs(x))) / (1 - b) + 8 * EPS * abs(err) + 64 * DENORM
        assert abs((x[-1] - y[-1]) - err) <= tol, kind


@pytest.mark.claim("TEMA-poly")
def test_moment_check_has_teeth():
    """Teeth: b = 0.8 (L = 4). A perturbed TEMA (3 m1 - 3 m2 + 0.99 m3) has mu_0 = 0.99
    (it no longer reproduces constants); FAME's mixed TEMA (0.8, 0.4, 0.4) has
    mu_1 = 4 - 2 * (2/3) + 2/3 = 10/3 != 0 (it does not reproduce ramps); the claimed
    6 L^3 = 384 is not DEMA's third moment. (Allowances as in the moment test.)"""
    T, b = 900, 0.8
    x = impulse(T)
    k = np.arange(T, dtype=np.float64)
    m1, m2, m3 = chain(x, b, b, b)
    tol0 = moment_allowance(m1, m2, m3, 0) + tail_bound(b, T, 0)
    assert abs(np.sum(3 * m1 - 3 * m2 + 0.99 * m3) - 0.99) <= tol0
    assert abs(np.sum(3 * m1 - 3 * m2 + 0.99 * m3) - 1.0) > 1000 * tol0
    n1, n2, n3 = chain(x, 0.8, 0.4, 0.4)
    mixed = filters.tema(x, 0.8, 0.4, 0.4)
    tol1 = moment_allowance(n1, n2, n3, 1) + tail_bound(b, T, 1) + 8 * EPS * 10 / 3
    assert abs(np.sum(k * mixed) - 10 / 3) <= tol1
    assert abs(np.sum(k * mixed)) > 1000 * tol1
    tol3 = moment_allowance(m1, m2, m3, 3, (2, 1, 0)) + tail_bound(b, T, 3)
    assert abs(np.sum(k**3 * (2 * m1 - m2)) - 384.0) > 1000 * tol3


# ========================================================================= TEMA-lag

def fame_moments(b1, b3, b4, x):
    """FAME's own TEMA of the gradient sequence x, read from the optimizer state:
    FAME(lr=0) never moves w, and after each update its state holds m1, m2, m3."""
    opt = FAME(lr=0.0, beta1=b1, beta3=b3, beta4=b4)
    w = np.zeros(1)
    s = opt.init(w)
    out = np.empty(x.shape[0])
    for t, g in enumerate(x):
        w, s = opt.update(w, s, np.array([g]))
        out[t] = 3.0 * s.m1[0] - 3.0 * s.m2[0] + s.m3[0]
    return out


def adam_first_moment(b1, x):
    opt = Adam(lr=0.0, beta1=b1)
    w = np.zeros(1)
    s = opt.init(w)
    out = np.empty(x.shape[0])
    for t, g in enumerate(x):
        w, s = opt.update(w, s, np.array([g]))
        out[t] = s.m[0]
    return out


decays = st.floats(0.0, 0.9)


@pytest.mark.claim("TEMA-lag")
@given(b1=decays, b3=decays, b4=decays)
def test_lag_is_the_first_moment_of_the_mixed_tema(b1, b3, b4):
    """[TEMA-lag] The mixed-decay TEMA 3 E1 - 3 E1 E3 + E1 E3 E4 has DC gain mu_0 =
    3 - 3 + 1 = 1 and first moment mu_1 = 3 L1 - 3 (L1 + L3) + (L1 + L3 + L4) =
    L1 - 2 L3 + L4 (lags add under composition), = filters.tema_lag. Measured on the
    float impulse response (T = 900, tail_bound with b = max decay)."""
    T = 900
    x = impulse(T)
    m1, m2, m3 = chain(x, b1, b3, b4)
    h = 3 * m1 - 3 * m2 + m3
    assert np.array_equal(h, filters.tema(x, b1, b3, b4))
    k = np.arange(T, dtype=np.float64)
    bmax = max(b1, b3, b4)
    for j, mu in ((0, 1.0), (1, filters.tema_lag(b1, b3, b4))):
        tol = moment_allowance(m1, m2, m3, j) + tail_bound(bmax, T, j) + 8 * EPS * abs(mu)
        assert abs(float(np.sum(k**j * h)) - mu) <= tol


@pytest.mark.claim("TEMA-lag")
@settings(max_examples=30)
@given(b1=decays, b3=decays, b4=decays)
def test_fame_lags_less_than_adam_iff_L4_below_2_L3(b1, b3, b4):
    """[TEMA-lag] Through the optimizers themselves: feed the ramp g_t = t to FAME(lr=0)
    and to Adam(lr=0) with the same b1 and read their first-moment estimates from the
    state. FAME's TEMA sequence is filters.tema bit for bit; its measured lag
    T - TEMA_T equals L1 - 2 L3 + L4 and Adam's T - m_T equals L1 (T = 1500: the
    transient ~ t^2 0.9^t is below 1e-60; allowance 64 eps T: the output is ~T, a few
    roundings per EMA, coefficient sum 7). Hence FAME lags less than Adam iff
    L(b4) < 2 L(b3) (decided only where |L4 - 2 L3| > 1e-9)."""
    T = 1500
    x = np.arange(1, T + 1, dtype=np.float64)
    tema = fame_moments(b1, b3, b4, x)
    assert np.array_equal(tema, filters.tema(x, b1, b3, b4))
    lag_fame = T - tema[-1]
    lag_adam = T - adam_first_moment(b1, x)[-1]
    assert abs(lag_fame - filters.tema_lag(b1, b3, b4)) <= 64 * EPS * T
    assert abs(lag_adam - filters.lag(b1)) <= 64 * EPS * T
    margin = filters.lag(b4) - 2 * filters.lag(b3)
    assume(abs(margin) > 1e-9)
    assert (lag_fame < lag_adam) == (margin < 0)


def tracks_better(b1, b3, b4):
    """TEMA-lag's tracking condition: FAME's TEMA has a smaller steady-state |error| on a
    ramp than Adam's EMA iff |L1 - 2 L3 + L4| < L1, i.e. 0 < 2 L3 - L4 < 2 L1."""
    L1, L3, L4 = filters.lag(b1), filters.lag(b3), filters.lag(b4)
    return 0 < 2 * L3 - L4 < 2 * L1


@pytest.mark.claim("TEMA-lag")
@settings(max_examples=30)
@given(b1=decays, b3=decays, b4=decays)
@example(b1=0.5, b3=0.9, b4=0.0)    # lags less (-17 < 1) but tracks worse (17 > 1)
def test_fame_tracks_a_ramp_better_than_adam_iff_0_lt_2L3_minus_L4_lt_2L1(b1, b3, b4):
    """[TEMA-lag, tracking] On the ramp x_t = t (T = 1500, allowance 64 eps T as above),
    through filters.tema and filters.ema (FAME's and Adam's moment chains equal them bit
    for bit: test_fame_lags_less_than_adam_iff_L4_below_2_L3 and the teeth test below):
    the TEMA's steady-state error |T - TEMA_T| is below the EMA's |T - m_T| iff
    0 < 2 L3 - L4 < 2 L1 (decided where both margins exceed 1e-9). "Lags less"
    (L4 < 2 L3) is not enough: a negative lag is a lead, an error too."""
    T = 1500
    x = np.arange(1, T + 1, dtype=np.float64)
    err_fame = abs(T - filters.tema(x, b1, b3, b4)[-1])
    err_adam = abs(T - filters.ema(x, b1)[-1])
    L1, L3, L4 = filters.lag(b1), filters.lag(b3), filters.lag(b4)
    assert abs(err_fame - abs(L1 - 2 * L3 + L4)) <= 64 * EPS * T
    assume(min(abs(2 * L3 - L4), abs(2 * L3 - L4 - 2 * L1)) > 1e-9)
    assert (err_fame < err_adam) == tracks_better(b1, b3, b4)


@pytest.mark.claim("TEMA-lag")
def test_tracking_check_has_teeth():
    """Teeth: at (b1, b3, b4) = (0.5, 0.9, 0) (L = 1, 9, 0) FAME's TEMA LEADS a ramp by
    17 steps: its lag -17 is less than Adam's 1, so the "lags less" predicate says it is
    better, but its error 17 is 17 times Adam's. The tracking condition (2 L3 - L4 = 18
    is not below 2 L1 = 2) says worse, as measured. At the code defaults (0.9, 0.5, 0.5)
    both predicates agree (8 < 9: better)."""
    T = 1500
    x = np.arange(1, T + 1, dtype=np.float64)
    lag_fame = T - fame_moments(0.5, 0.9, 0.0, x)[-1]
    lag_adam = T - adam_first_moment(0.5, x)[-1]
    assert abs(lag_fame - (-17.0)) <= 64 * EPS * T and abs(lag_adam - 1.0) <= 64 * EPS * T
    lags_less = filters.lag(0.0) < 2 * filters.lag(0.9)
    assert lags_less and lag_fame < lag_adam                  # "lags less": true
    assert abs(lag_fame) > abs(lag_adam)                      # ... yet tracks worse
    assert not tracks_better(0.5, 0.9, 0.0)
    assert tracks_better(0.9, 0.5, 0.5)
    assert abs(T - fame_moments(0.9, 0.5, 0.5, x)[-1]) < abs(T - adam_first_moment(0.9, x)[-1])


@pytest.mark.claim("TEMA-lag")
def test_spec_lag_numbers_through_fame_and_adam():
    """[TEMA-lag] The numbers listed with the claim (proofs/sources.md#theoretical-claims)
    measured on the optimizers (ramp, T = 1500):
    Adam (b1 = 0.9) lags 9.00 steps; FAME at the code defaults (0.9, 0.5, 0.5) lags
    9 - 2 + 1 = 8.00 (less); FAME at the paper's configs (0.9, 0.3, 0.7) lags
    9 - 6/7 + 7/3 = 220/21 = 10.48 (MORE than Adam: L(0.7) = 7/3 > 2 L(0.3) = 6/7).
    (Teeth: test_lag_check_has_teeth.)"""
    T = 1500
    x = np.arange(1, T + 1, dtype=np.float64)
    lag_adam = T - adam_first_moment(0.9, x)[-1]
    lag_def = T - fame_moments(0.9, 0.5, 0.5, x)[-1]
    lag_cfg = T - fame_moments(0.9, 0.3, 0.7, x)[-1]
    assert [round(v, 2) for v in (lag_adam, lag_def, lag_cfg)] == [9.0, 8.0, 10.48]
    # 64 eps T as above, plus the decimal decays' representation errors (<= 1e-17 each)
    # magnified by dL/db = 1 / (1 - b)^2 <= 100: 1e-13 covers them
    assert abs(lag_cfg - 220 / 21) <= 64 * EPS * T + 1e-13
    assert lag_cfg > lag_adam > lag_def


@pytest.mark.claim("TEMA-lag")
def test_lag_check_has_teeth():
    """Teeth: the measured lag of FAME's TEMA at the configs (0.9, 0.3, 0.7) rejects the
    wrong formulas L1 - L3 + L4 (= 10.9), L1 + L3 + L4 and (L1 + L3 + L4) / 3 (each off
    by more than 0.1, against an allowance of 64 eps T), and a perturbed TEMA
    (3 m1 - 3 m2 + 0.99 m3, DC gain 0.99) has no finite lag: T - y_T keeps growing,
    by 0.01 per step in steady state."""
    T = 1500
    x = np.arange(1, T + 1, dtype=np.float64)
    lag_cfg = T - fame_moments(0.9, 0.3, 0.7, x)[-1]
    assert abs(lag_cfg - filters.tema_lag(0.9, 0.3, 0.7)) <= 64 * EPS * T
    L1, L3, L4 = L(0.9), L(0.3), L(0.7)
    for wrong in (L1 - L3 + L4, L1 + L3 + L4, (L1 + L3 + L4) / 3):
        assert abs(lag_cfg - wrong) > 0.1
    m1, m2, m3 = chain(x, 0.9, 0.9, 0.9)
    perturbed = 3 * m1 - 3 * m2 + 0.99 * m3
    half = T // 2
    assert (T - perturbed[-1]) - (half - perturbed[half - 1]) > 0.01 * (T - half) * 0.99


# ======================================================================= TEMA-noise

def lyapunov_gain(b1, b3, b4, coeffs):
    """sum_k h_k^2 EXACTLY (Fractions) for y = c1 m1 + c2 m2 + c3 m3 of the chain
    (b1, b3, b4): with the state s = (m1, m2, m3), s_t = A s_{t-1} + B x_t and
    y_t = C s_t, h_k = C A^k B and sum_k h_k^2 = C P C^T where P = A P A^T + B B^T
    (the discrete Lyapunov equation), solved here as a 9 x 9 linear system."""
    a1, a3, a4 = 1 - b1, 1 - b3, 1 - b4
    A = [[b1, 0, 0], [a3 * b1, b3, 0], [a4 * a3 * b1, a4 * b3, b4]]
    B = [a1, a3 * a1, a4 * a3 * a1]
    C = list(coeffs)
    n = 3
    # (I - A (x) A) vec(P) = vec(B B^T), vec row-major: P[i][j] -> 3 i + j
    M = [[F(int(r == c)) - A[r // n][c // n] * A[r % n][c % n] for c in range(9)] + [B[r // n] * B[r % n]]
         for r in range(9)]
    for col in range(9):                       # Gauss-Jordan elimination, exact
        piv = next(r for r in range(col, 9) if M[r][col] != 0)
        M[col], M[piv] = M[piv], M[col]
        M[col] = [v / M[col][col] for v in M[col]]
        for r in range(9):
            if r != col and M[r][col] != 0:
                f = M[r][col]
                M[r] = [vr - f * vc for vr, vc in zip(M[r], M[col])]
    P = [[M[3 * i + j][9] for j in range(3)] for i in range(3)]
    return sum(C[i] * P[i][j] * C[j] for i in range(3) for j in range(3))


def gain_closed_form(kind, b):
    """The closed forms of proofs/tema_fame.md (TEMA-noise)."""
    if kind == "ema":
        return (1 - b) / (1 + b)
    if kind == "dema":
        return (1 - b) * (1 + 4 * b + 5 * b**2) / (1 + b) ** 3
    return (1 - b) * (1 + 6 * b + 16 * b**2 + 24 * b**3 + 19 * b**4) / (1 + b) ** 5


COEFFS = {"ema": (1, 0, 0), "dema": (2, -1, 0), "tema": (3, -3, 1)}


@pytest.mark.claim("TEMA-noise")
def test_noise_gain_closed_forms_are_exact():
    """[TEMA-noise] For b = 0, 1/100, ..., 99/100 (exact rationals) the Lyapunov solution
    equals EMA (1-b)/(1+b), DEMA (1-b)(1 + 4b + 5b^2)/(1+b)^3,
    TEMA (1-b)(1 + 6b + 16b^2 + 24b^3 + 19b^4)/(1+b)^5, exactly. This PROVES the closed
    forms: by Cramer's rule the Lyapunov gain is a ratio of polynomials in b of degree
    <= 54 (9 x 9 system, entries of degree <= 6), so after cross-multiplying with a
    closed form (degree 5 / 5) the difference is a polynomial of degree <= 59 with 100
    roots: it is zero."""
    for num in range(100):
        b = F(num, 100)
        for kind, c in COEFFS.items():
            assert lyapunov_gain(b, b, b, c) == gain_closed_form(kind, b)


@pytest.mark.claim("TEMA-noise")
def test_spec_noise_numbers_and_the_lag_variance_trade():
    """[TEMA-noise] The numbers listed with the claim, exactly: EMA(0.9) 1/19 = 0.0526 (lag 9);
    DEMA(0.9) 865/6859 = 0.126 (lag 0); TEMA(0.9) 493219/2476099 = 0.199 (lag 0, and
    exact on quadratic trends), 3.8 times the EMA's variance. FAME's mixed TEMAs
    (exact rationals, Lyapunov): defaults (0.9, 0.5, 0.5) 0.0695 with lag 8 (less lag
    and MORE variance than Adam's EMA); configs (0.9, 0.3, 0.7) 0.0453 with lag 10.48
    (more lag and LESS variance). Teeth: the perturbed TEMA (0.99 m3) has another gain,
    and 'TEMA's gain is the EMA's' is rejected."""
    b = F(9, 10)
    ema, dema, tema = (lyapunov_gain(b, b, b, COEFFS[k]) for k in ("ema", "dema", "tema"))
    assert (ema, dema, tema) == (F(1, 19), F(865, 6859), F(493219, 2476099))
    assert [round(float(v), 4) for v in (ema, dema, tema)] == [0.0526, 0.1261, 0.1992]
    assert round(float(tema / ema), 2) == 3.78
    default = lyapunov_gain(b, F(1, 2), F(1, 2), COEFFS["tema"])
    config = lyapunov_gain(b, F(3, 10), F(7, 10), COEFFS["tema"])
    assert [round(float(v), 4) for v in (default, config)] == [0.0695, 0.0453]
    assert config < ema < default
    assert lyapunov_gain(b, b, b, (3, -3, F(99, 100))) != tema
    assert tema != ema


@pytest.mark.claim("TEMA-noise")
@given(b=st.floats(0.0, 0.95), b3=st.floats(0.0, 0.95), b4=st.floats(0.0, 0.95))
def test_float_filters_and_fame_have_these_gains(b, b3, b4):
    """[TEMA-noise] sum_k h_k^2 of the float impulse responses (filters and FAME's own
    chain) equals the exact value for the float decays (Fractions of the floats), to a
    relative 16 (k_max + 4) eps with k_max = 1500 terms (each h_k^2 is within
    2 (k + 4) u of its value relative to the squared terms' size, tail < 1e-30: 0.95^1500
    times a polynomial). Teeth: the perturbed TEMA 3 m1 - 3 m2 + 0.99 m3 fails it."""
    T = 1500
    x = impulse(T)
    m1, m2, m3 = chain(x, b, b, b)
    tol_scale = 16 * (T + 4) * EPS
    for kind, h in (("ema", m1), ("dema", 2 * m1 - m2), ("tema", 3 * m1 - 3 * m2 + m3)):
        exact = float(gain_closed_form(kind, F(b)))
        absolute = {"ema": 1, "dema": 3, "tema": 7}[kind] ** 2 * float(np.sum(m1**2 + m2**2 + m3**2))
        assert abs(float(np.sum(h * h)) - exact) <= tol_scale * absolute
    h = fame_moments(b, b3, b4, x)
    n1, n2, n3 = chain(x, b, b3, b4)
    exact = float(lyapunov_gain(F(b), F(b3), F(b4), COEFFS["tema"]))
    assert abs(float(np.sum(h * h)) - exact) <= tol_scale * 49 * float(np.sum(n1**2 + n2**2 + n3**2))
    # teeth: a perturbed TEMA (0.99 m3) fails the same comparison whenever its exact gain
    # differs from the TEMA's by more than the allowance
    bad = 3 * m1 - 3 * m2 + 0.99 * m3
    tol = tol_scale * 49 * float(np.sum(m1**2 + m2**2 + m3**2))
    exact_bad = float(lyapunov_gain(F(b), F(b), F(b), (3, -3, F(0.99))))
    exact_good = float(gain_closed_form("tema", F(b)))
    if abs(exact_bad - exact_good) > 3 * tol:
        assert abs(float(np.sum(bad * bad)) - exact_good) > tol


@pytest.mark.claim("TEMA-noise")
def test_noise_gain_check_has_teeth():
    """Teeth: at b = 0.9 the exact TEMA gain 493219/2476099 rejects the EMA's formula
    (1 - b)/(1 + b) = 1/19, the DEMA's 865/6859, a perturbed TEMA (0.99 m3) and a
    closed form with one coefficient changed (19 b^4 -> 18 b^4); the float impulse
    response of the true TEMA (1500 terms) is within the rounding allowance of
    test_float_filters_and_fame_have_these_gains of the exact value, and more than 10
    allowances away from every wrong one."""
    b = F(9, 10)
    exact = lyapunov_gain(b, b, b, COEFFS["tema"])
    wrong = [gain_closed_form("ema", b), gain_closed_form("dema", b),
             lyapunov_gain(b, b, b, (3, -3, F(99, 100))),
             (1 - b) * (1 + 6 * b + 16 * b**2 + 24 * b**3 + 18 * b**4) / (1 + b) ** 5]
    assert all(v != exact for v in wrong)
    T = 1500
    m1, m2, m3 = chain(impulse(T), 0.9, 0.9, 0.9)
    h = 3 * m1 - 3 * m2 + m3
    measured = float(np.sum(h * h))
    tol = 16 * (T + 4) * EPS * 49 * float(np.sum(m1**2 + m2**2 + m3**2))  # as in the float test
    assert abs(measured - float(exact)) <= tol
    assert all(abs(measured - float(v)) > 10 * tol for v in wrong)


@pytest.mark.claim("TEMA-noise")
def test_gain_ordering_is_a_polynomial_identity():
    """[TEMA-noise] 'Less lag (more polynomial exactness) costs variance', exactly:
    with G_E, G_D, G_T the gains, (1 + b)^4 G_T / G_E - (1 + b)^4 = 2b + 10b^2 + 20b^3
    + 18b^4 and (1 + b)^2 (G_T - G_D) (1 + b)^3 / (1 - b) = 2b^2 + 10b^3 + 14b^4 (all
    coefficients positive: EMA < DEMA < TEMA on (0, 1)), and along the EMA family
    G_E (1 + 2 L) = 1 (variance and lag trade one for one). Checked as polynomial
    identities at 12 points (two polynomials of degree <= 6 that agree at 12 points are
    equal)."""
    for num in range(1, 13):
        b = F(num, 13)
        GE, GD, GT = (gain_closed_form(k, b) for k in ("ema", "dema", "tema"))
        assert (1 + b) ** 4 * GT / GE - (1 + b) ** 4 == 2 * b + 10 * b**2 + 20 * b**3 + 18 * b**4
        assert (GT - GD) * (1 + b) ** 5 / (1 - b) == 2 * b**2 + 10 * b**3 + 14 * b**4
        assert (GD - GE) * (1 + b) ** 3 / (1 - b) == 2 * b + 4 * b**2
        assert GE * (1 + 2 * L(b)) == 1
        assert GE < GD < GT
    # the TEMA / EMA ratio (1 + 6b + 16b^2 + 24b^3 + 19b^4) / (1 + b)^4 runs from 1 at
    # b = 0 to 66 / 16 = 4.125 at b = 1
    ratio = lambda b: (1 + 6 * b + 16 * b**2 + 24 * b**3 + 19 * b**4) / (1 + b) ** 4
    assert ratio(F(0)) == 1 and ratio(F(1)) == F(66, 16) == F(4125, 1000)


@pytest.mark.claim("TEMA-noise")
def test_zero_lag_does_not_force_a_large_variance():
    """Where 'less lag costs variance' stops being a law: it holds along the EMA family
    and between EMA, DEMA and TEMA at equal decay, but not for filters in general. The
    two-level window h_k = alpha (0 <= k < N), beta (N <= k < 2N) with
    alpha = (3N - 1) / (2 N^2), beta = -(N - 1) / (2 N^2) has sum 1 and lag 0, and
    variance gain ((3N - 1)^2 + (N - 1)^2) / (4 N^3) ~ 2.5 / N: for N = 100 it is
    0.0248, below EMA(0.9)'s 1/19 = 0.0526, which lags 9 steps."""
    N = 100
    alpha, beta = F(3 * N - 1, 2 * N * N), F(-(N - 1), 2 * N * N)
    h = [alpha] * N + [beta] * N
    assert sum(h) == 1
    assert sum(k * hk for k, hk in enumerate(h)) == 0
    gain = sum(hk * hk for hk in h)
    assert gain == F((3 * N - 1) ** 2 + (N - 1) ** 2, 4 * N**3)
    assert round(float(gain), 4) == 0.0248
    assert gain < F(1, 19)


# ====================================================================== TEMA-filter

def freq_response(omega, b, n):
    """F_n(e^(i omega)) = 1 - (1 - E)^n with E = (1 - b) / (1 - b e^(-i omega)): the
    frequency response of the equal-decay EMA (n = 1), DEMA (2), TEMA (3)."""
    E = (1 - b) / (1 - b * np.exp(-1j * omega))
    return 1 - (1 - E) ** n


FILTERS = {1: lambda x, b: filters.ema(x, b), 2: lambda x, b: filters.dema(x, b),
           3: lambda x, b: filters.tema(x, b)}


def step_shortfall(n_steps, b, order):
    """1 - s_n, the step response's distance below 1, in closed form (proofs/tema_fame.md):
    EMA b^(n+1); DEMA b^(n+1) (b - n (1 - b)); TEMA b^(n+1) q(n) / 2 with
    q(n) = (1 - b)^2 n^2 - (1 - b)(1 + 3 b) n + 2 b^2."""
    n = np.arange(n_steps, dtype=np.float64)
    if order == 1:
        return b ** (n + 1)
    if order == 2:
        return b ** (n + 1) * (b - n * (1 - b))
    return b ** (n + 1) * ((1 - b) ** 2 * n**2 - (1 - b) * (1 + 3 * b) * n + 2 * b**2) / 2


def tema_overshoot_roots(b):
    """The roots n_-, n_+ of q: ((1 + 3 b) -+ sqrt(1 + 6 b + b^2)) / (2 (1 - b))."""
    r = math.sqrt(1 + 6 * b + b * b)
    return (1 + 3 * b - r) / (2 * (1 - b)), (1 + 3 * b + r) / (2 * (1 - b))


@pytest.mark.claim("TEMA-filter")
@given(b=st.floats(0.0, 0.9), omega=st.floats(0.01, math.pi), order=st.sampled_from([1, 2, 3]))
@example(b=0.9, omega=0.11848516693013904, order=3)   # TEMA 0.9's peak gain 1.2378
def test_steady_state_response_to_a_sinusoid_is_the_frequency_response(b, omega, order):
    """[TEMA-filter] Through refimpl.filters: fed x_t = cos(omega t), t < 1500, each filter
    ends (last 100 steps) on Re(F_n(e^(i omega)) e^(i omega t)). Allowance: the filters'
    rounding 80 eps / (1 - b) (TEMA-poly), plus the phases: fl(omega t) errs by up to
    u omega T, which moves the input by as much at every step (the filter sums |h_k| <= 7
    of them) and the prediction by |F| u omega T <= 1.3 u omega T: 5 eps omega T in all.
    The start-up transient is b^t times a polynomial of degree < 3 in t, below 1e-40
    after t = 1400 for b <= 0.9."""
    T = 1500
    t = np.arange(T, dtype=np.float64)
    y = FILTERS[order](np.cos(omega * t), b)
    pred = np.real(freq_response(omega, b, order) * np.exp(1j * omega * t))
    assert np.max(np.abs(y[-100:] - pred[-100:])) <= 80 * EPS / (1 - b) + 5 * EPS * omega * T


@pytest.mark.claim("TEMA-filter")
@given(b=st.floats(0.05, 0.95))
@example(b=0.9)
def test_step_responses_overshoot_and_ring_as_derived(b):
    """[TEMA-filter] Unit step through refimpl.filters, 400 steps: 1 - s_n equals the
    closed forms of step_shortfall within 80 eps / (1 - b) (+ 64 subnormal roundings), and
    so: the EMA never overshoots (s_n < 1), DEMA overshoots exactly for n > L = b / (1 - b)
    (then approaches 1 from above), TEMA overshoots exactly for n_- < n < n_+ (the roots of
    q) and approaches 1 from below after n_+: it rings. At b = 0.9: DEMA from n = 10 on,
    TEMA for n = 6 .. 31 with a peak 17.5 % above 1 at n = 12. (Signs decided only where
    the closed form exceeds the allowance; integer roots are skipped.)"""
    T = 400
    u = np.ones(T)
    tol = 80 * EPS / (1 - b) + 64 * DENORM
    n = np.arange(T)
    lo, hi = tema_overshoot_roots(b)
    L_b = b / (1 - b)
    for order, over in ((1, np.zeros(T, dtype=bool)), (2, n > L_b), (3, (n > lo) & (n < hi))):
        s = FILTERS[order](u, b)
        closed = step_shortfall(T, b, order)
        assert np.all(np.abs((1 - s) - closed) <= tol), order
        decided = np.abs(closed) > tol
        assert np.array_equal((s > 1)[decided], over[decided]), order
    if b == 0.9:
        s = filters.tema(u, b)
        assert list(np.flatnonzero(s[:60] > 1)[[0, -1]]) == [6, 31]
        assert int(np.argmax(s)) == 12 and round(float(s.max()) - 1, 3) == 0.175
        assert int(np.flatnonzero(filters.dema(u, b) > 1)[0]) == 10


@pytest.mark.claim("TEMA-filter")
@given(b=st.floats(0.05, 0.9), order=st.sampled_from([1, 2, 3]))
def test_gradient_sign_reversal_flips_after_the_step_response_passes_one_half(b, order):
    """[TEMA-filter] A gradient that was +1 for 1000 steps (steady state to b^1000) and
    is -1 from then on: by linearity the filter's output is 1 - 2 s_n, n steps after the
    reversal, so its sign flips at the first n with s_n > 1/2 (for the EMA
    n + 1 > ln 2 / ln(1 / b)); checked through refimpl.filters within 160 eps / (1 - b)."""
    x = np.concatenate([np.ones(1000), -np.ones(200)])
    y = FILTERS[order](x, b)[1000:]
    s = 1 - step_shortfall(200, b, order)
    assert np.all(np.abs(y - (1 - 2 * s)) <= 160 * EPS / (1 - b))
    flip = int(np.argmax(y < 0))
    assert flip == int(np.argmax(s > 0.5))
    x = math.log(2) / math.log(1 / b)       # EMA: b^(n + 1) < 1/2  <=>  n + 1 > x
    if order == 1:                           # (or n + 1 = x, to rounding, at the boundary)
        assert flip == math.floor(x) or abs(flip + 1 - x) < 1e-9


def filtered_gd_polynomial(eta_h, b, order):
    """Characteristic polynomial of w_(t+1) = w_t - lr F_n(h w)_t: with F_n = 1 - (1-E)^n
    and 1 - E(z) = b (1 - z^-1) / (1 - b z^-1), multiplying z - 1 + lr h F_n(z) = 0 by
    (z - b)^n gives (z - 1)(z - b)^n + lr h ((z - b)^n - b^n (z - 1)^n)."""
    zb, z1 = np.poly([b] * order), np.poly([1.0] * order)
    return np.polyadd(np.polymul([1.0, -1.0], zb), eta_h * np.polysub(zb, b**order * z1))


def filtered_gd_bound(b, order):
    """lr h at which a root of filtered_gd_polynomial sits at z = -1:
    2 (1 + b)^n / ((1 + b)^n - (2 b)^n)."""
    return 2 * (1 + b) ** order / ((1 + b) ** order - (2 * b) ** order)


def filtered_gd_run(eta_h, b, order, T):
    """|w_T| of gradient descent on f = w^2 / 2 (h = 1) with the gradient filtered by
    refimpl.filters (the whole gradient history re-filtered each step: zero start)."""
    w, g = 1.0, []
    for _ in range(T):
        g.append(w)
        w = w - eta_h * float(FILTERS[order](np.array(g), b)[-1])
    return abs(w)


@pytest.mark.claim("TEMA-filter")
@pytest.mark.parametrize("order", [1, 2, 3])
def test_gd_with_a_filtered_gradient_is_stable_below_the_derived_bound(order):
    """[TEMA-filter] Gradient descent with an EMA / DEMA / TEMA-filtered gradient on a
    quadratic of curvature h: at lr h = 2 (1 + b)^n / ((1 + b)^n - (2 b)^n) a root of the
    characteristic polynomial is exactly -1 (proved); the run is stable for every lr h
    below it and unstable above it (proved for the EMA, where the loop is heavy ball with
    lr (1 - b); OBSERVED for DEMA and TEMA: every root is inside the unit circle at 60
    values of lr h in (0, bound) and one is outside at 1.01 x bound, for b in
    {0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95}). Through refimpl.filters in the loop (b = 0.9,
    300 steps): at 0.97 x bound |w_T| < 1e-2, at 1.03 x bound |w_T| > 1e2. The TEMA's range
    is 13.36 / lr at b = 0.9, against 38 for the EMA."""
    for b in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95):
        bound = filtered_gd_bound(b, order)
        at = np.roots(filtered_gd_polynomial(bound, b, order))
        assert np.min(np.abs(at + 1)) < 1e-6
        for eh in np.linspace(0.01, 0.99, 60) * bound:
            assert np.max(np.abs(np.roots(filtered_gd_polynomial(eh, b, order)))) < 1
        assert np.max(np.abs(np.roots(filtered_gd_polynomial(1.01 * bound, b, order)))) > 1
    bound = filtered_gd_bound(0.9, order)
    assert filtered_gd_run(0.97 * bound, 0.9, order, 300) < 1e-2
    assert filtered_gd_run(1.03 * bound, 0.9, order, 300) > 1e2
    assert round(filtered_gd_bound(0.9, 3), 2) == 13.36 and round(filtered_gd_bound(0.9, 1), 6) == 38


@pytest.mark.claim("TEMA-filter")
def test_filter_checks_teeth():
    """Teeth: the sinusoid check rejects the response without the cube (F = E, the EMA's,
    for the TEMA) and the conjugate phase; the step-response check rejects q with the
    sign of its middle term flipped; the closed loop with the EMA's bound 38 in place of the
    TEMA's diverges (b = 0.9)."""
    b, omega = 0.9, 0.3
    t = np.arange(1500, dtype=np.float64)
    y = filters.tema(np.cos(omega * t), b)
    tol = 80 * EPS / (1 - b) + 5 * EPS * omega * 1500
    right = np.real(freq_response(omega, b, 3) * np.exp(1j * omega * t))
    assert np.max(np.abs(y[-100:] - right[-100:])) <= tol
    for wrong in (freq_response(omega, b, 1), np.conj(freq_response(omega, b, 3))):
        assert np.max(np.abs(y[-100:] - np.real(wrong * np.exp(1j * omega * t))[-100:])) > 1e6 * tol
    s = filters.tema(np.ones(100), b)
    n = np.arange(100)
    flipped = b ** (n + 1) * ((1 - b) ** 2 * n**2 + (1 - b) * (1 + 3 * b) * n + 2 * b**2) / 2
    assert np.max(np.abs((1 - s) - flipped)) > 1e6 * tol
    assert filtered_gd_run(0.9 * 38.0, 0.9, 3, 200) > 1e2


# ========================================================================= FAME-adam

fame_hyper = dict(lr=st.floats(1e-4, 0.1), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.0, 0.999),
                  eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.floats(0.0, 0.5),
                  wrap=st.sampled_from(["none", "stablesam", "ema"]))


def wrapped(opt, wrap):
    if wrap == "stablesam":
        return StableSAM(opt, rho=0.05)
    if wrap == "ema":
        return EMA(opt, decay=0.9)
    return opt


@pytest.mark.claim("FAME-adam")
@settings(max_examples=30)
@given(seed=st.integers(0, 2**20), **fame_hyper)
def test_fame_with_b3_b4_zero_is_adam_in_the_jitted_loop(seed, lr, beta1, beta2, eps,
                                                         weight_decay, wrap):
    """[FAME-adam] Through refimpl.train on the noisy quadratic model, alone or wrapped
    (StableSAM, EMA): official FAME with b3 = b4 = 0 (and the authors' 1 - b1^t) gives
    the SAME parameters as Adam with coupled L2 at every step, bit for bit.
    Why bitwise: 0 * m2 + 1 * m1 = m1 exactly, so m3 = m2 = m1 and
    (3 m1 - 3 m1) + m1 = m1 exactly; every other operation is Adam's, in Adam's order."""
    prob = NoisyQuadratic(h=np.array([4.0, 1.0, 0.25]), batch_size=2)
    w0 = np.array([1.0, -2.0, 3.0])
    kw = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
    a = train(prob, wrapped(Adam(**kw), wrap), w0=w0, steps=60, seed=seed, record_params=True)
    f = train(prob, wrapped(FAME(beta3=0.0, beta4=0.0, **kw), wrap), w0=w0, steps=60, seed=seed,
              record_params=True)
    assert np.array_equal(a.params, f.params)


@pytest.mark.claim("FAME-adam")
def test_fame_adam_check_has_teeth():
    """Teeth: the same bitwise check rejects (a) FAME with b3 = b4 = 0 but debias="exact"
    (mathematically Adam: the chain's response is 1 - b1^t, but built by the recursion
    r <- b1 r + (1 - b1) instead of the power, so it differs in the last bits: within
    64 eps of Adam, not equal); (b) b4 = 0.5 with b3 = 0 (not Adam);
    (c) Adam with DECOUPLED weight decay (AdamW, w <- w - lr wd w before the Adam step),
    which is not what FAME's coupled L2 is."""
    prob = NoisyQuadratic(h=np.array([4.0, 1.0, 0.25]), batch_size=2)
    w0 = np.array([1.0, -2.0, 3.0])
    kw = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
    adam = train(prob, Adam(**kw), w0=w0, steps=60, seed=1, record_params=True).params
    exact = train(prob, FAME(beta3=0.0, beta4=0.0, debias="exact", **kw), w0=w0, steps=60, seed=1,
                  record_params=True).params
    assert not np.array_equal(adam, exact)
    # close: each step's correction differs by O((t + L(b1)) eps) relative, on steps of
    # size ~lr = 0.01, over 60 steps of a contracting run: far below 64 eps of |w|
    assert np.max(np.abs(adam - exact)) <= 64 * EPS * np.max(np.abs(adam))
    other = train(prob, FAME(beta3=0.0, beta4=0.5, **kw), w0=w0, steps=60, seed=1,
                  record_params=True).params
    assert not np.array_equal(adam, other)
    # AdamW by hand on the same mini-batches
    noise = prob.draw_noise(60, 1)
    w, m, v = w0.copy(), np.zeros(3), np.zeros(3)
    for t in range(60):
        g = prob.grad_fn(noise[t])(w)[1]
        w = w - 0.01 * 0.1 * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.01 / (1 - 0.9 ** (t + 1)) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** (t + 1)) + 1e-8)
    fame = train(prob, FAME(beta3=0.0, beta4=0.0, **kw), w0=w0, steps=60, seed=1).w
    assert np.max(np.abs(fame - w)) > 1e-6


@pytest.mark.claim("FAME-adam")
def test_fame_adam_sign_of_zero_corner():
    """'Bit for bit' holds for every value, but not for the sign of a zero in one corner:
    with b1 = 0, a negative gradient and then a gradient of exactly -0.0, Adam's
    m = 0 * m + 1 * (-0.0) = -0.0 + -0.0 = -0.0, and FAME's chain gives m1 = m2 = m3 =
    -0.0 but TEMA = (3 m1 - 3 m2) + m3 = (-0.0 + 0.0) + -0.0 = +0.0. A parameter that is
    exactly -0.0 then becomes -0.0 - (+0.0) = -0.0 under FAME and -0.0 - (-0.0) = +0.0
    under Adam: equal as numbers (==), different bits. (The quadratic problems never
    produce a -0.0 gradient: their sums start from +0.0.)"""
    fame, adam = FAME(lr=0.1, beta1=0.0, beta3=0.0, beta4=0.0), Adam(lr=0.1, beta1=0.0)
    w = np.array([-0.0])
    sf, sa = fame.init(w), adam.init(w)
    for g in (np.array([-1.0]), np.array([-0.0])):
        wf, sf = fame.update(w, sf, g)
        wa, sa = adam.update(w, sa, g)
        assert np.array_equal(wf, wa)
    assert np.signbit(wf[0]) and not np.signbit(wa[0])


# ======================================================================= FAME-debias

def exact_overshoot(b1, b3, b4, T):
    """R_t = TEMA_t(1) / (1 - b1^t) in exact rationals (the chain's response to 1)."""
    r1 = r2 = r3 = F(0)
    out = []
    for t in range(1, T + 1):
        r1 = b1 * r1 + (1 - b1)
        r2 = b3 * r2 + (1 - b3) * r1
        r3 = b4 * r3 + (1 - b4) * r2
        out.append((3 * r1 - 3 * r2 + r3) / (1 - b1**t))
    return out


def closed_form_overshoot(a, b, t):
    """proofs/tema_fame.md, FAME-debias, for b3 = b4 = b != b1 = a:
    R_t = 1 + (A - 1) [(2 - A)(a^t - b^t) + (1 - b) t b^t] / (1 - a^t),
    A = (1 - b) a / (a - b)."""
    A = (1 - b) * a / (a - b)
    return 1 + (A - 1) * ((2 - A) * (a**t - b**t) + (1 - b) * t * b**t) / (1 - a**t)


@pytest.mark.claim("FAME-debias")
@given(a=st.integers(1, 99), b=st.integers(0, 99))
def test_overshoot_closed_form_is_exact(a, b):
    """[FAME-debias] For b1 = a/100 != b3 = b4 = b/100 the closed form equals the exact
    recursion at t = 1..30; the values listed with the claim at (0.9, 0.5, 0.5) are its
    first five:
    1.75, 1.487, 1.330, 1.234, 1.173."""
    assume(a != b)
    a, b = F(a, 100), F(b, 100)
    assert exact_overshoot(a, b, b, 30) == [closed_form_overshoot(a, b, t) for t in range(1, 31)]


@pytest.mark.claim("FAME-debias")
def test_spec_overshoot_numbers_and_where_the_sign_flips():
    """[FAME-debias] (0.9, 0.5, 0.5): R_1..R_5 = 1.75, 1.487, 1.330, 1.234, 1.173 and
    R_t > 1 for every t (A = 9/8 lies in (1, 2): both terms of the closed form are
    positive), checked to t = 300. But the sign depends on the decays:
    * b3 = b4 = 0.85 > b1 / (2 - b1) = 0.818 (A = 2.7 > 2): R_1 = 2.5725, then R_t < 1
      from t = 40 on (undershoot);
    * the paper's configs (0.9, 0.3, 0.7): A = 1.05 for b3 and A' = 1.35 for b4, so the
      slowest mode's coefficient 3A - A A' - 2 = -0.2675 is negative: R_1 = 1.11, then
      R_t < 1 for every t >= 2, the smallest R_4 = 27003/34390 = 0.785: those steps are
      ~21% SHORTER than lr."""
    a = F(9, 10)
    A = lambda b: (1 - b) * a / (a - b)
    R = exact_overshoot(a, F(1, 2), F(1, 2), 300)
    assert [round(float(r), 3) for r in R[:5]] == [1.75, 1.487, 1.330, 1.234, 1.173]
    assert A(F(1, 2)) == F(9, 8)
    assert all(r > 1 for r in R)
    assert round(float(a / (2 - a)), 3) == 0.818          # A < 2  <=>  b3 < b1 / (2 - b1)
    R = exact_overshoot(a, F(85, 100), F(85, 100), 300)
    assert A(F(85, 100)) == F(27, 10)
    assert float(R[0]) == 2.5725
    assert next(t for t, r in enumerate(R, start=1) if r < 1) == 40
    assert all(r < 1 for r in R[39:])
    R = exact_overshoot(a, F(3, 10), F(7, 10), 300)
    A3, A4 = A(F(3, 10)), A(F(7, 10))
    assert (A3, A4) == (F(105, 100), F(135, 100))
    assert 3 * A3 - A3 * A4 - 2 == F(-2675, 10000)        # < 0: eventual undershoot
    assert float(R[0]) == 1.11
    assert all(r < 1 for r in R[1:])
    assert min(R) == R[3] == F(27003, 34390)
    assert round(float(R[3]), 3) == 0.785


def fame_displacements(b1, b3, b4, debias, T, sign):
    """Official FAME with b2 = 0 and eps = 2^-1000 on the constant gradient g = sign:
    v = 1 and sqrt(v) / sqrt(1 - 0^t) + eps rounds to exactly 1, so step t moves w by
    exactly fl(fl(lr / c_t) tema_t) with lr = 1: the bias-corrected first moment itself.
    Returns the displacements (T,) and the final state."""
    opt = FAME(lr=1.0, beta1=b1, beta2=0.0, beta3=b3, beta4=b4, eps=2.0**-1000, debias=debias)
    w = np.zeros(1)
    s = opt.init(w)
    out = np.empty(T)
    for t in range(T):
        w_new, s = opt.update(w, s, np.array([sign]))
        out[t] = (w[0] - w_new[0]) * sign
        w = np.zeros(1)                   # w does not enter the update (no weight decay)
        # (re-centering keeps the displacement exact: 0 - x is exact)
    return out, s


debias_decays = dict(b1=st.floats(0.5, 0.99), b3=st.floats(0.0, 0.95), b4=st.floats(0.0, 0.95),
                     sign=st.sampled_from([1.0, -1.0]))


@pytest.mark.claim("FAME-debias")
@settings(max_examples=40)
@given(**debias_decays)
def test_fame_step_on_a_constant_gradient_is_r_t_lr(b1, b3, b4, sign):
    """[FAME-debias] Official FAME with the authors' 1 - b1^t moves by R_t lr on a
    constant gradient, R_t = TEMA_t(1) / (1 - b1^t) computed EXACTLY for the float
    decays (Fractions of the floats), at t = 1..40, any decays. Allowance
    64 (t cond_t + 1 + L(b1)) eps R_t: the chain's roundings (t steps, combination
    condition cond_t = (3 r1 + 3 r2 + r3) / |TEMA(1)|), and 1 - b1^t whose relative error
    is up to (1 + L(b1)) u. Teeth: the "exact" variant's displacements (1 x lr) fail
    this check wherever |R_t - 1| exceeds the allowance."""
    T = 40
    disp, _ = fame_displacements(b1, b3, b4, "adam", T, sign)
    R = exact_overshoot(F(b1), F(b3), F(b4), T)
    r1 = r2 = r3 = F(0)
    exact_disp, _ = fame_displacements(b1, b3, b4, "exact", T, sign)
    for t in range(1, T + 1):
        r1 = F(b1) * r1 + (1 - F(b1))
        r2 = F(b3) * r2 + (1 - F(b3)) * r1
        r3 = F(b4) * r3 + (1 - F(b4)) * r2
        cond = float((3 * r1 + 3 * r2 + r3) / abs(3 * r1 - 3 * r2 + r3))
        tol = 64 * (t * cond + 1 + b1 / (1 - b1)) * EPS * float(R[t - 1])
        assert abs(disp[t - 1] - float(R[t - 1])) <= tol
        if abs(float(R[t - 1]) - 1) > 2 * tol:
            assert abs(exact_disp[t - 1] - float(R[t - 1])) > tol


@pytest.mark.claim("FAME-debias")
@settings(max_examples=40)
@given(**debias_decays)
def test_exact_debias_moves_by_exactly_lr(b1, b3, b4, sign):
    """[FAME-debias] debias="exact" divides by the chain's own response to a constant 1
    (c_t = TEMA_t(1), the same recursion run on 1 instead of g): on g = +-1 the two
    chains are the same computation up to the sign, so TEMA_t(g) / c_t = g and every
    step moves by lr to 1 rounding (the division lr / c_t and the product: 2 u), at
    every t = 1..40, for any decays.
    Teeth: the same check rejects the authors' 1 - b1^t and a 'debias by 1 - b4^t'
    variant (built from FAME's own state), wherever their exact ratios
    TEMA_t(1) / (1 - b^t) differ from 1 by more than 1e-9 at some t <= 40."""
    T = 40
    disp, _ = fame_displacements(b1, b3, b4, "exact", T, sign)
    assert np.all(np.abs(disp - 1.0) <= EPS)

    opt = FAME(lr=1.0, beta1=b1, beta2=0.0, beta3=b3, beta4=b4, eps=2.0**-1000)
    w, s = np.zeros(1), opt.init(np.zeros(1))
    adam_disp, b4_disp = np.empty(T), np.empty(T)
    for t in range(1, T + 1):
        w_new, s = opt.update(w, s, np.array([sign]))
        adam_disp[t - 1] = -w_new[0] * sign
        tema = (3.0 * s.m1[0] - 3.0 * s.m2[0] + s.m3[0]) * sign
        b4_disp[t - 1] = tema / (1.0 - b4**t)
    exact_tema = [r * (1 - F(b1) ** t) for t, r in
                  enumerate(exact_overshoot(F(b1), F(b3), F(b4), T), start=1)]
    for c, variant in ((lambda t: 1 - F(b1) ** t, adam_disp), (lambda t: 1 - F(b4) ** t, b4_disp)):
        off = max(abs(float(exact_tema[t - 1] / c(t)) - 1) for t in range(1, T + 1))
        if off > 1e-9:
            assert not np.all(np.abs(variant - 1.0) <= EPS)


@pytest.mark.claim("FAME-debias")
def test_debias_check_has_teeth():
    """Teeth at the code defaults (0.9, 0.5, 0.5), 10 steps on g = 1. The 'R_t lr' check,
    to 1e-9 (the rounding allowance of test_fame_step_on_a_constant_gradient_is_r_t_lr
    is below 1e-11 here, and |R_t - 1| >= 0.059 for t <= 10), accepts debias="adam" and
    rejects debias="exact" (steps of 1 x lr). The 'exactly lr' check (to eps) accepts
    "exact" and rejects "adam" (1.75 x lr at step 1) and a variant dividing by
    1 - b4^t (built from FAME's own state: TEMA_1 / (1 - 0.5) = 0.35 at step 1)."""
    T = 10
    R = [float(r) for r in exact_overshoot(F(9, 10), F(1, 2), F(1, 2), T)]
    adam, _ = fame_displacements(0.9, 0.5, 0.5, "adam", T, 1.0)
    exact, _ = fame_displacements(0.9, 0.5, 0.5, "exact", T, 1.0)
    assert np.all(np.abs(adam - R) <= 1e-9)
    assert not np.all(np.abs(exact - R) <= 1e-9)
    assert np.all(np.abs(exact - 1.0) <= EPS)
    assert not np.all(np.abs(adam - 1.0) <= EPS)
    opt = FAME(lr=1.0, beta2=0.0, eps=2.0**-1000)
    _, state = opt.update(np.zeros(1), opt.init(np.zeros(1)), np.array([1.0]))
    b4_variant = (3.0 * state.m1[0] - 3.0 * state.m2[0] + state.m3[0]) / (1 - 0.5)
    assert abs(b4_variant - 0.35) <= 4 * EPS
    assert abs(b4_variant - 1.0) > EPS
