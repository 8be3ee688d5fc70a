"""Claims EMA-compose, EMA-debias and EMA-scale (proofs/ema.md; sources:
proofs/sources.md#ema-scaling-rule).

EMA-compose and EMA-debias are checked through refimpl's EMA (step API and the jitted
loop) with tolerances derived in proofs/ema.md. EMA-scale, the centrepiece, is checked
with the EXACT means and covariances of refimpl.theory (no Monte Carlo noise), plus a
Monte Carlo spot check through refimpl.train. Run with ``-s`` to print the tables that
proofs/ema.md quotes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refimpl as r
from refimpl import theory
from refimpl.scaling import scale_optimizer
from tests.nqm_exact import Exact1D
from tests.test_theory import closed_form_ema_var, mc_failures, mc_samples

from conftest import finite_floats, vectors

EPS = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).smallest_subnormal


def lr_zero_oracle(w):
    """Any oracle will do: with lr 0 the parameters never move."""
    return 0.0, np.ones_like(w)


# ---------------------------------------------------------------------------------------
# EMA-compose

decays = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999]), st.floats(0.0, 0.999))


@pytest.mark.claim("EMA-compose")
@given(a=vectors(3, 3), x=vectors(3, 3), decay=decays, k=st.integers(1, 40))
@example(a=np.array([1e3, -1e3, 0.0]), x=np.array([-1e3, 1e3, 1e-300]), decay=0.999, k=40)
def test_k_steps_toward_fixed_target_are_one_step_of_decay_power_k(a, x, decay, k):
    """EMA-compose through the EMA optimizer: buffer a, parameters fixed at the target x
    (SGD lr 0); k updates with decay rho equal one update with rho ** k.

    Exact: e_k - x = rho^k (a - x). Rounding (proofs/ema.md): each update is a convex
    combination costing <= 3 u m (m = max |a|, |x|; u = eps/2), damped afterwards, so
    the k-step side is within 1.5 k eps m; the one-step side within 1.5 eps m plus
    |fl(rho^k) - rho^k| |a - x| <= eps m. Bound (1.5 k + 3) eps m, plus (3 k + 3) TINY
    for products that underflow into subnormals."""
    many = r.EMA(r.SGD(lr=0.0), decay=decay)
    one = r.EMA(r.SGD(lr=0.0), decay=decay ** k)
    s_many = many.init(x)._replace(ema=a.copy())
    w = x
    for _ in range(k):
        w, s_many, _ = many.step(w, s_many, lr_zero_oracle)
    assert np.array_equal(w, x)
    _, s_one, _ = one.step(x, one.init(x)._replace(ema=a.copy()), lr_zero_oracle)
    m = np.maximum(np.abs(a), np.abs(x))
    bound = (1.5 * k + 3) * EPS * m + (3 * k + 3) * TINY
    assert np.all(np.abs(s_many.ema - s_one.ema) <= bound)


@pytest.mark.claim("EMA-compose")
@pytest.mark.parametrize("decay", [0.5, 0.75, 0.25])
def test_compose_is_bitwise_in_exact_arithmetic(decay):
    """With decay a two-bit binary fraction and small integer buffer and target, every
    operation of k <= 8 updates is exact (at most 2 + 2k significant bits), so the two
    sides agree BIT FOR BIT: the law itself, with no rounding in the way."""
    a, x = np.array([3.0, -5.0, 0.0, 7.0]), np.array([-1.0, 2.0, 6.0, 7.0])
    for k in range(1, 9):
        many = r.EMA(r.SGD(lr=0.0), decay=decay)
        s = many.init(x)._replace(ema=a.copy())
        for _ in range(k):
            _, s, _ = many.step(x, s, lr_zero_oracle)
        one = r.EMA(r.SGD(lr=0.0), decay=decay ** k)
        _, s1, _ = one.step(x, one.init(x)._replace(ema=a.copy()), lr_zero_oracle)
        assert np.array_equal(s.ema, s1.ema)
        assert np.array_equal(s.ema, x + decay ** k * (a - x))


@pytest.mark.claim("EMA-compose")
@pytest.mark.parametrize("wrong", ["linearized 1 - k (1 - rho)", "off by one rho^(k-1)"])
def test_compose_teeth_wrong_decays_are_rejected(wrong):
    """The check of the previous tests (bound (1.5 k + 3) eps m) rejects the two usual
    misreadings of the composed decay: the first-order 1 - k (1 - rho) (Bernoulli: it
    differs from rho^k by C(k, 2)(1 - rho)^2 + ...) and rho^(k-1)."""
    a, x, decay, k = np.array([10.0, -3.0]), np.array([-2.0, 5.0]), 0.9, 5
    many = r.EMA(r.SGD(lr=0.0), decay=decay)
    s = many.init(x)._replace(ema=a.copy())
    for _ in range(k):
        _, s, _ = many.step(x, s, lr_zero_oracle)
    b = 1 - k * (1 - decay) if wrong.startswith("linearized") else decay ** (k - 1)
    one = r.EMA(r.SGD(lr=0.0), decay=b)
    _, s1, _ = one.step(x, one.init(x)._replace(ema=a.copy()), lr_zero_oracle)
    m = np.maximum(np.abs(a), np.abs(x))
    assert np.all(np.abs(s.ema - s1.ema) > 1e6 * (1.5 * k + 3) * EPS * m)


@pytest.mark.claim("EMA-compose")
@given(decay=st.sampled_from([0.5, 0.9, 0.99]), k=st.integers(2, 16),
       lr=st.sampled_from([0.01, 0.1, 0.5]), g=finite_floats(-10, 10))
def test_compose_fails_by_the_lag_term_for_a_moving_target(decay, k, lr, g):
    """Where EMA-compose stops holding: if the target moves (w_j = w_0 - j lr g under a
    constant gradient) the k-step EMA differs from one step of rho^k toward w_k by exactly
    D = (1 - rho) sum_j rho^(k-j) (w_j - w_k) = lr g (1 - rho) sum_j rho^(k-j) (k - j):
    the lag that the EMA Scaling Rule's first-order error term is made of.
    Tolerance, m = max(1, |w|, |D|): the k-step EMA 1.5 k eps m and the one-step 3 eps m
    (as above); the iterates w_j - w_k differ from (k - j) lr g by <= k eps m (one
    rounding of lr g, one per subtraction), and the float sum for D by <= 2 k eps m:
    (4.5 k + 4) eps m."""
    w0 = np.array([1.0])
    grad = np.array([g])
    opt = r.EMA(r.SGD(lr=lr), decay=decay)
    w, s = w0, opt.init(w0)
    for _ in range(k):
        w, s, _ = opt.step(w, s, lambda v: (0.0, grad.copy()))
    one = decay ** k * w0 + (1 - decay ** k) * w  # one step of rho^k toward w_k
    lag = lr * g * (1 - decay) * sum(decay ** (k - j) * (k - j) for j in range(1, k + 1))
    m = max(abs(w0[0]), abs(w[0]), abs(lag), 1.0)
    assert abs((s.ema[0] - one[0]) - lag) <= (4.5 * k + 4) * EPS * m
    if lr * g != 0.0 and decay * k > 0.0:
        assert lag != 0.0  # the law fails by a nonzero, known amount


# ---------------------------------------------------------------------------------------
# EMA-debias

@st.composite
def zero_start_emas(draw):
    decay = draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999]), st.floats(0.0, 0.999)))
    kw = dict(decay=decay, start="zeros", update_every=draw(st.integers(1, 3)))
    warmup = draw(st.sampled_from([None, "timm", "constant", "linear", "exp"]))
    if warmup == "timm":
        kw.update(warmup="timm", update_after_step=draw(st.integers(0, 4)),
                  warmup_power=draw(st.sampled_from([2 / 3, 1.0])))
    elif warmup is not None:
        kw.update(warmup=warmup, warmup_steps=draw(st.integers(1, 8)),
                  warmup_ratio=draw(st.sampled_from([0.1, 0.5, 1.0])))
    return r.EMA(r.SGD(lr=0.0), **kw)


def debias_bound(updates, product):
    """Relative bound on |average - c| / |c| after ``updates`` EMA updates of a constant c
    from zero, P = the product of the decays used (proofs/ema.md, EMA-debias):
    raw buffer (1 - P) c to (n + 1) eps relative, the computed product to (n - 1) u, so
    1 - P to (n - 1) u P / (1 - P) + u, and the division one more u. Total
    (n + 2 + (n - 1) P / (2 (1 - P))) eps; + 1 eps for second-order terms."""
    n, P = updates, product
    return (n + 3 + (n - 1) * P / (2 * (1 - P))) * EPS


@pytest.mark.claim("EMA-debias")
@given(opt=zero_start_emas(), c=vectors(1, 3, lo=-1e6, hi=1e6).filter(
    lambda v: np.all((v == 0) | (np.abs(v) > 1e-200))), steps=st.integers(1, 40))
@example(opt=r.EMA(r.SGD(lr=0.0), decay=0.999, start="zeros"), c=np.array([1e6, -3.0]), steps=40)
def test_debiased_zero_start_average_of_a_constant_through_train(opt, c, steps):
    """EMA-debias through the jitted loop: with w constant (lr 0) the debiased zero-start
    average equals the constant at every step from the first update on, to the derived
    bound debias_bound (before the first update nothing is averaged: exactly 0)."""
    problem = r.NoisyQuadratic(np.ones(c.shape[0]), batch_size=2)
    rec = r.train(problem, opt, w0=c, steps=steps, record_params=True, seed=1)
    assert np.array_equal(rec.params[-1], c)
    assert np.array_equal(rec.averages[0], np.zeros_like(c))
    product, updates = 1.0, 0
    for n in range(1, steps + 1):
        if n % opt.update_every == 0:
            product, updates = product * opt.decay_at(n), updates + 1
        if updates == 0:
            assert np.array_equal(rec.averages[n], np.zeros_like(c))
            continue
        err = np.abs(rec.averages[n] - c)
        assert np.all(err <= debias_bound(updates, product) * np.abs(c)), (n, err)


@pytest.mark.claim("EMA-debias")
def test_debias_teeth():
    """The bound rejects the two usual mistakes: no debiasing (raw buffer 0.001 c after one
    update at decay 0.999), and optax's 1 - decay ** n when a warm-up changed the decays
    (timm's first decay is 0, so the product of the decays used is 0 and the raw buffer
    is already the average, while 1 - 0.999 ** n inflates it ~1000 times)."""
    c = np.array([2.0, -3.0])
    plain = r.EMA(r.SGD(lr=0.0), decay=0.999, start="zeros")
    timm = r.EMA(r.SGD(lr=0.0), decay=0.999, start="zeros", warmup="timm")
    for opt, wrong in ((plain, lambda s, n: s.ema), (timm, lambda s, n: s.ema / (1 - 0.999 ** n))):
        w, s = c, opt.init(c)
        for n in range(1, 6):
            w, s, _ = opt.step(w, s, lr_zero_oracle)
            bound = debias_bound(n, s.decay_product) * np.abs(c)
            assert np.all(np.abs(opt.average(s) - c) <= bound)
            assert not np.any(np.abs(wrong(s, n) - c) <= bound)


# ---------------------------------------------------------------------------------------
# EMA-scale: the exact moments of (B, lr, rho) for kappa n steps and of the scaled run

H = np.array([1.0, 0.3])       # h_max = 1
B = 4
W0 = np.ones(2)                # w* = 0, so |w0 - w*|_inf = 1
T_HORIZON = 4.0                # compare over t = lr * steps in [0, 4]
ALPHA = 1.5                    # the EMA's rate per unit time: rho = 1 - ALPHA * lr
KAPPAS = (2, 4, 8, 16)
LEVELS = (0.2, 0.1, 0.05, 0.025, 0.0125)  # kappa * lr * h_max


def base_run(lr):
    return r.EMA(r.SGD(lr=lr), decay=1.0 - ALPHA * lr)


def matched(lr, kappa, scaled=None):
    """Exact moments of the base run (B, lr, rho) over kappa n steps and of the scaled one
    (default: scale_optimizer) over n steps, n = T_HORIZON / (kappa lr)."""
    base = base_run(lr)
    scaled = scale_optimizer(base, kappa) if scaled is None else scaled
    n = int(round(T_HORIZON / (kappa * lr)))
    m1 = theory.moments(r.NoisyQuadratic(H, batch_size=B), base, w0=W0, steps=kappa * n)
    m2 = theory.moments(r.NoisyQuadratic(H, batch_size=kappa * B), scaled, w0=W0, steps=n)
    return m1, m2


def gaps(m1, m2, kappa):
    """Matched-time gaps (t = kappa j base steps = j scaled steps), each relative to its
    scale: EMA mean / |w0 - w*|, EMA variance / max of the base run's, same for w."""
    def gap(a, b):
        return np.max(np.abs(a[::kappa] - b))
    return dict(avg_mean=gap(m1.mean_avg, m2.mean_avg),
                avg_var=gap(m1.var_avg, m2.var_avg) / np.max(m1.var_avg),
                w_mean=gap(m1.mean_w, m2.mean_w),
                w_var=gap(m1.var_w, m2.var_w) / np.max(m1.var_w))


_TABLE: dict = {}


def scale_table():
    """gaps[kappa][level] for the grid KAPPAS x LEVELS (computed once, ~1 s)."""
    if not _TABLE:
        for kappa in KAPPAS:
            _TABLE[kappa] = {x: gaps(*matched(x / kappa, kappa), kappa) for x in LEVELS}
    return _TABLE


@pytest.mark.claim("EMA-scale")
def test_scale_optimizer_is_the_rule():
    """scale_optimizer gives exactly (kappa lr, rho ** kappa), momentum kept."""
    base = r.EMA(r.SGD(lr=0.01, momentum=0.9), decay=0.985)
    s = scale_optimizer(base, 8)
    assert s.inner.lr.constant == 0.08 and s.inner.momentum == 0.9 and s.decay == 0.985 ** 8


@pytest.mark.claim("EMA-scale")
def test_matched_time_gap_shrinks_linearly_in_lr():
    """EMA-scale (proofs/sources.md#ema-scaling-rule): with the rule, the matched-time gap of the EMA's exact mean and
    variance (and of w's) halves when lr halves, for kappa = 2, 4, 8, 16.

    The gap is (kappa - 1) lr C + O((kappa lr h)^2) (proofs/ema.md), so the ratio of
    gaps at lr/2 and lr is 1/2 + O(kappa lr h_max); the test allows |ratio - 1/2| <=
    kappa lr h_max (unit constant) for every consecutive pair of the a-priori grid
    kappa lr h_max in {0.2, 0.1, 0.05, 0.025, 0.0125}."""
    table = scale_table()
    print("\nEMA-scale: matched-time gaps / ((kappa - 1) lr), and ratio gap(lr/2)/gap(lr)")
    for kappa in KAPPAS:
        for big, small in zip(LEVELS, LEVELS[1:]):
            for key in ("avg_mean", "avg_var", "w_mean", "w_var"):
                ratio = table[kappa][small][key] / table[kappa][big][key]
                assert abs(ratio - 0.5) <= big, (kappa, big, key, ratio)
        for x in LEVELS:
            g = table[kappa][x]
            lr = x / kappa
            print(f"kappa {kappa:2d} kappa*lr*h_max {x:<6}: " + "  ".join(
                f"{k} {v / ((kappa - 1) * lr):.4f}" for k, v in g.items()))


@pytest.mark.claim("EMA-scale")
def test_first_order_coefficient_is_kappa_independent():
    """The gap is (kappa - 1) lr C: divided by (kappa - 1) lr, the smallest-lr gaps agree
    across kappa within kappa lr h_max = 1.25 % (the O(kappa lr h) remainder). For the
    mean of w the constant is known in closed form: the gap of (1 - lr h)^(kappa j) and
    (1 - kappa lr h)^j is (kappa - 1) lr h^2 t e^(-h t) / 2 + O(lr^2), largest at t = 1/h:
    C = h_max / (2 e) = 0.18394 (h_max = 1)."""
    table = scale_table()
    x = LEVELS[-1]
    for key in ("avg_mean", "avg_var", "w_mean", "w_var"):
        c = [table[k][x][key] / ((k - 1) * x / k) for k in KAPPAS]
        assert max(c) - min(c) <= x * min(c), (key, c)
    c_w = [table[k][x]["w_mean"] / ((k - 1) * x / k) for k in KAPPAS]
    assert all(abs(ci / (1 / (2 * np.e)) - 1) <= x for ci in c_w), c_w
    # the EMA's mean: C = max over t in [0, 4] and both curvatures of |C(t)| (derived in
    # proofs/ema.md) = 0.33852 at h = 1, t = 1.160 (the h = 0.3 coordinate peaks at 0.132)
    t = np.linspace(0.0, T_HORIZON, 400001)
    c_ema = max(np.max(np.abs(ema_mean_first_order(t, h))) for h in H)
    assert round(c_ema, 5) == 0.33852
    c_avg = [table[k][x]["avg_mean"] / ((k - 1) * x / k) for k in KAPPAS]
    assert all(abs(ci / c_ema - 1) <= x for ci in c_avg), (c_avg, c_ema)


def ema_mean_first_order(t, h, alpha=ALPHA):
    """The first-order coefficient of the EMA mean's matched-time gap, derived in
    proofs/ema.md: gap(t) = (kappa - 1) lr C(t) + O(lr^2) with
    C(t) = (alpha h / (alpha - h)) ((alpha - 2 h) (e^(-h t) - e^(-alpha t)) / (2 (alpha - h))
    + h t e^(-h t) / 2)   (w0 - w* = 1, start copy, rho = 1 - alpha lr)."""
    eh, ea = np.exp(-h * t), np.exp(-alpha * t)
    return alpha * h / (alpha - h) * ((alpha - 2 * h) * (eh - ea) / (2 * (alpha - h)) + h * t * eh / 2)


def ema_mean_exact(n, lr, h, rho):
    """The EMA's exact mean after n steps of gradient descent (w0 - w* = 1, start copy):
    w_n = a^n with a = 1 - lr h, and z_n = rho z_(n-1) + (1 - rho) a^n, z_0 = 1, sums to
    z_n = rho^n + (1 - rho) a (a^n - rho^n) / (a - rho)   (a != rho)."""
    a = 1 - lr * h
    return rho ** n + (1 - rho) * a * (a ** n - rho ** n) / (a - rho)


def sde_ema_mean(t, beta, h):
    """Mean of the SDE limit of the EMA (rate beta per unit time) of gradient flow from
    w0 = 1 on curvature h: dZ = beta (e^(-h t) - Z) dt, Z(0) = 1, so
    Z(t) = (beta e^(-h t) - h e^(-beta t)) / (beta - h) (beta != h)."""
    return (beta * np.exp(-h * t) - h * np.exp(-beta * t)) / (beta - h)


@pytest.mark.claim("EMA-scale")
def test_keeping_rho_leaves_an_order_one_gap():
    """Without the rule (scaled run keeps rho) the EMA's rate per unit time drops from
    ALPHA to ALPHA / kappa. The gap of the EMA's mean does not shrink with lr: it
    converges to the SDE value max_t |Z_ALPHA(t) - Z_(ALPHA/kappa)(t)| (0.18 for kappa 2 up
    to 0.71 for kappa 16), the deviation from it halving with lr (ratio 1/2 within
    kappa lr h_max, as above). Meanwhile w itself, which follows its own rule, still
    matches (its gaps are those of the previous test)."""
    t = np.linspace(0.0, T_HORIZON, 40001)
    print("\nEMA-scale without the decay rule: EMA mean gap -> SDE limit")
    for kappa in KAPPAS:
        limit = max(np.max(np.abs(sde_ema_mean(t, ALPHA, h) - sde_ema_mean(t, ALPHA / kappa, h)))
                    for h in H)
        dev = []
        for x in LEVELS[1:]:
            lr = x / kappa
            keep = r.EMA(r.SGD(lr=kappa * lr), decay=1.0 - ALPHA * lr)
            g = gaps(*matched(lr, kappa, keep), kappa)
            assert g["avg_mean"] >= 0.9 * limit  # order one, not shrinking
            assert g["w_mean"] <= 0.25 * (kappa - 1) * lr  # w still obeys its rule
            dev.append(limit - g["avg_mean"])
            print(f"kappa {kappa:2d} kappa*lr {x:<6}: gap {g['avg_mean']:.5f}  SDE limit {limit:.5f}")
        for big, (d1, d2) in zip(LEVELS[1:], zip(dev, dev[1:])):
            assert abs(d2 / d1 - 0.5) <= big
    assert 0.17 < max(np.max(np.abs(sde_ema_mean(t, ALPHA, h) - sde_ema_mean(t, ALPHA / 2, h)))
                      for h in H) < 0.19


@pytest.mark.claim("EMA-scale")
def test_teeth_wrong_rules_fail_the_linear_shrinkage():
    """Teeth: the checks of test_matched_time_gap_shrinks_linearly_in_lr reject rules
    other than (kappa lr, rho ** kappa): keeping rho, the 'inverse' decay rule
    1 - (1 - rho) / kappa, and Adam's sqrt(kappa) lr for SGD. Their gap ratios stay near
    1 instead of 1/2 (kappa = 4, levels 0.025 -> 0.0125)."""
    kappa, x1, x2 = 4, 0.025, 0.0125
    wrong = {
        "keep rho": lambda lr: r.EMA(r.SGD(lr=kappa * lr), decay=1 - ALPHA * lr),
        "inverse": lambda lr: r.EMA(r.SGD(lr=kappa * lr), decay=1 - ALPHA * lr / kappa),
        "sqrt lr": lambda lr: r.EMA(r.SGD(lr=np.sqrt(kappa) * lr), decay=(1 - ALPHA * lr) ** kappa),
    }
    for name, make in wrong.items():
        g1 = gaps(*matched(x1 / kappa, kappa, make(x1 / kappa)), kappa)["avg_mean"]
        g2 = gaps(*matched(x2 / kappa, kappa, make(x2 / kappa)), kappa)["avg_mean"]
        assert abs(g2 / g1 - 0.5) > x1, name
        assert g2 > 0.05, name


@pytest.mark.claim("EMA-scale")
def test_rule_breaks_down_at_the_stability_limit():
    """The rule is first order in lr: as kappa lr approaches SGD's stability limit 2 / h_max
    the scaled run stops resembling the base run, and beyond it diverges.
    Base lr 0.1 (lr h_max = 0.1), rho = 0.85. Stationary Var w of SGD is
    lr c / (B h (2 - lr h)) (test_theory), so the scaled/base ratio is exactly
    (2 - lr h) / (2 - kappa lr h): 1.9, 3.8, 19 for kappa = 10, 15, 19 (h = 1); the EMA's
    variance ratio grows likewise; kappa = 21 (kappa lr h = 2.1) is unstable."""
    lr, rho = 0.1, 0.85
    base = r.EMA(r.SGD(lr=lr), decay=rho)
    s1 = theory.stationary(r.NoisyQuadratic(H, batch_size=B), base)
    print("\nEMA-scale near the stability limit (stationary variance, scaled / base):")
    ratios = []
    for kappa in (10, 15, 19):
        s2 = theory.stationary(r.NoisyQuadratic(H, batch_size=kappa * B), scale_optimizer(base, kappa))
        ratio_w = s2.var_w[0] / s1.var_w[0]
        np.testing.assert_allclose(ratio_w, (2 - lr * H) / (2 - kappa * lr * H), rtol=1e-12)
        ratio_avg = s2.var_avg[0, 0] / s1.var_avg[0, 0]
        # closed form (test_theory.closed_form_ema_var): Var of the EMA of SGD, h = c = 1
        closed = (closed_form_ema_var(kappa * lr, 1.0, 1.0 / (kappa * B), rho ** kappa)[2]
                  / closed_form_ema_var(lr, 1.0, 1.0 / B, rho)[2])
        np.testing.assert_allclose(ratio_avg, closed, rtol=1e-12)
        keep = theory.stationary(r.NoisyQuadratic(H, batch_size=kappa * B),
                                 r.EMA(r.SGD(lr=kappa * lr), decay=rho))   # teeth: keep rho
        assert abs(keep.var_avg[0, 0] / s1.var_avg[0, 0] / closed - 1) > 0.1
        print(f"kappa {kappa}: w {ratio_w.round(4)}  ema {ratio_avg:.4f} (closed form {closed:.4f})")
        ratios.append(ratio_avg)
    assert [round(v, 3 - len(str(int(v)))) for v in ratios] == [2.09, 4.80, 26.2]
    unstable = scale_optimizer(base, 21)
    problem = r.NoisyQuadratic(H, batch_size=21 * B)
    assert theory.spectral_radius(problem, unstable) > 1.0
    with pytest.raises(ValueError, match="unstable"):
        theory.stationary(problem, unstable)
    m = theory.moments(problem, unstable, w0=W0, steps=60)
    assert m.var_w[-1, 0] > 1e3 * s1.var_w[0, 0]  # (1.1)^120 growth of the variance


@pytest.mark.claim("EMA-scale")
def test_scaled_runs_monte_carlo_spot_check():
    """Through refimpl.train: 2000 seeded runs of the base run (B = 4, lr 0.05, rho =
    1 - 1.5 lr, 24 steps) and of its kappa = 4 scaled run (B = 16, 6 steps) each match
    their exact moments (mc_failures, family-wise level 1e-6) at matched times; the exact
    moments of both runs (hence their gaps) equal the independent 40-digit recursion
    (tests/nqm_exact.py) to 1e-12 relative, and the EMA's mean equals its closed form
    ema_mean_exact; the keep-rho run's EMA mean is off that closed form by > 0.01."""
    kappa, lr = 4, 0.05
    base = base_run(lr)
    scaled = scale_optimizer(base, kappa)
    p1, p2 = r.NoisyQuadratic(H, batch_size=B), r.NoisyQuadratic(H, batch_size=kappa * B)
    m1 = theory.moments(p1, base, w0=W0, steps=24)
    m2 = theory.moments(p2, scaled, w0=W0, steps=6)
    w1, a1 = mc_samples(p1, base, W0, 24, 2000)
    w2, a2 = mc_samples(p2, scaled, W0, 6, 2000)
    rows1, rows2 = (4, 8, 16, 24), (1, 2, 4, 6)
    assert mc_failures(w1, m1.mean_w, m1.var_w, rows1) == []
    assert mc_failures(a1, m1.mean_avg, m1.var_avg, rows1) == []
    assert mc_failures(w2, m2.mean_w, m2.var_w, rows2) == []
    assert mc_failures(a2, m2.mean_avg, m2.var_avg, rows2) == []
    # the exact moments of both runs, hence their gaps, against the independent recursion
    # (tests/nqm_exact.py, 40 digits; 24 contracting steps: 1e-12 relative) and the EMA's
    # mean against its closed form ema_mean_exact; the keep-rho run is rejected by both
    for i, h in enumerate(H):
        e1 = Exact1D(h=h, c=h, batch_size=B, lr=lr, rho=base.decay).moments(W0[i], 24)
        e2 = Exact1D(h=h, c=h, batch_size=kappa * B, lr=kappa * lr,
                     rho=base.decay ** kappa).moments(W0[i], 6)
        for m, e in ((m1, e1), (m2, e2)):
            for key in ("mean_avg", "var_avg", "mean_w", "var_w"):
                got, want = getattr(m, key)[:, i], e[key]
                assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want)), key
        n1, n2 = np.arange(25), np.arange(7)
        np.testing.assert_allclose(m1.mean_avg[:, i], ema_mean_exact(n1, lr, h, base.decay),
                                   rtol=1e-12)
        np.testing.assert_allclose(m2.mean_avg[:, i],
                                   ema_mean_exact(n2, kappa * lr, h, base.decay ** kappa), rtol=1e-12)
        assert np.max(np.abs(ema_mean_exact(n2, kappa * lr, h, base.decay) - m2.mean_avg[:, i])) > 0.01
