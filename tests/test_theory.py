"""refimpl.theory: the exact moment recursions against the simulator (EMA-lyapunov).

The theory is an independent derivation (matrices written from the optimizers'
docstrings); these tests compare it with refimpl.train, the jitted simulator:

(a) without noise (c = 0) the mean recursion IS the run: equal to a derived rounding
    bound, for every supported option;
(b) with noise, Monte Carlo over 2000 fixed seeds: sample means and variances of w and of
    the average agree with the exact moments within exact Gaussian / chi-square bounds;
(c) stationary() is the long-run limit of moments(), and matches closed forms;
(d) unsupported optimizers and bad input raise clear errors;
(e) teeth: a recursion with a dropped dampening factor or a missing USAM factor
    (1 + rho h) fails the same checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import example, given
from hypothesis import strategies as st

import refimpl as r
from refimpl import theory
from refimpl.optimizers import AVERAGERS

EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------------
# helpers shared with the claim tests

def mc_samples(problem, optimizer, w0, steps, runs, steps_per_epoch=None):
    """(runs, steps + 1, d) parameters and averages of ``runs`` seeded runs of train."""
    params, avgs = [], []
    for seed in range(runs):
        rec = r.train(problem, optimizer, w0=w0, steps=steps, seed=seed,
                      steps_per_epoch=steps_per_epoch, record_params=True)
        params.append(rec.params)
        avgs.append(rec.averages)
    return np.array(params), (np.array(avgs) if avgs[0] is not None else None)


def mc_failures(samples, mean, var, rows, alpha=1e-6):
    """Which (row, coordinate) checks of an exactly Gaussian sample reject the moments.

    ``samples`` (R, T+1, d) are R independent draws of a Gaussian vector whose exact mean
    and variance per (row, coordinate) are ``mean`` and ``var`` (T+1, d). For each of the
    m = len(rows) * d points two exact tests run, each at level alpha / (2 m) (Bonferroni,
    so a CORRECT theory fails any check with probability <= alpha = 1e-6):

    * mean: (xbar - mean) / sqrt(var / R) ~ N(0, 1) exactly (var is the theory's);
    * variance: (R - 1) s^2 / var ~ chi-square(R - 1) exactly, s^2 the sample variance.

    Where the theory's variance is 0 the samples must equal the mean exactly.
    Returns the list of failures as (kind, row, coordinate, statistic)."""
    R = samples.shape[0]
    m = len(rows) * samples.shape[2]
    level = alpha / (2 * m)
    z = scipy.stats.norm.isf(level / 2)
    lo, hi = scipy.stats.chi2.ppf(level / 2, R - 1), scipy.stats.chi2.isf(level / 2, R - 1)
    out = []
    for t in rows:
        x = samples[:, t, :]
        for i in range(x.shape[1]):
            if var[t, i] == 0.0:  # deterministic (e.g. a zero-start average before its
                if not np.all(x[:, i] == mean[t, i]):  # first update): exact equality
                    out.append(("deterministic", t, i, x[:, i].max()))
                continue
            stat = (x[:, i].mean() - mean[t, i]) / np.sqrt(var[t, i] / R)
            if abs(stat) > z:
                out.append(("mean", t, i, stat))
            q = (R - 1) * x[:, i].var(ddof=1) / var[t, i]
            if not lo <= q <= hi:
                out.append(("var", t, i, q / (R - 1)))
    return out


def rounding_bound(problem, optimizer, w0, steps, steps_per_epoch=None):
    """Bound on |mean recursion - simulator| per step and coordinate for c = 0.

    Both sides evaluate the same real map s_n = A_n s_{n-1}: the simulator in its own order
    of operations, the theory as matrix entries (a few operations each) times a 4-term dot
    product. Counting along the longest path (USAM + momentum + weight decay + EMA +
    switch), the simulator rounds at most 16 times and the theory at most 32 times (10 for
    an entry, 2 x 6 in the EMA and switch matrix products, 6 in A s), each time by at most
    u = eps/2 relative to an intermediate value no larger than M_n, the same formulas
    evaluated with absolute values and every minus turned into a plus (magnitudes below).
    So the two local errors of step n together are <= delta_n = 24 eps M_n, and the
    difference after step t is <= sum_n ||A_t ... A_{n+1}||_inf delta_n (errors are carried
    by the exact map). Returns (steps + 1, d) bounds for w and for the average."""
    A, _, f = theory.transitions(problem, optimizer, steps=steps, steps_per_epoch=steps_per_epoch)
    m = theory.moments(problem, optimizer, w0=w0, steps=steps, steps_per_epoch=steps_per_epoch)
    inner = optimizer.inner if isinstance(optimizer, AVERAGERS) else optimizer
    rho = inner.rho if isinstance(inner, r.SAM) else 0.0
    sgd = inner.base if isinstance(inner, r.SAM) else inner
    h, ws = np.abs(problem.h), np.abs(problem.w_star)
    lam, mu = sgd.weight_decay, sgd.momentum
    lrs = sgd.lr.array(steps)
    s = np.abs(m.mean)  # (steps + 1, d, 3): |w|, |buf|, |ema|
    d = problem.dim
    bound = np.zeros((steps + 1, d))
    delta = np.zeros((steps + 1, d))
    for n in range(1, steps + 1):
        w, buf, ema = (np.maximum(s[n - 1, :, j], s[n, :, j]) for j in range(3))
        g = h * (w + ws)
        w_adv = w + rho * g                 # USAM's ascent point (w itself when rho = 0)
        g = h * (w_adv + ws) + lam * w
        b = mu * buf + g + lrs[n - 1] * g   # covers PyTorch/optax buf and Keras velocity
        step = lrs[n - 1] * (g + mu * b) + mu * b
        w_new = w + step
        M = np.max([np.ones(d), w, buf, ema, w_adv, g, b, step, w_new,
                    f[n - 1] * (ema + w_new)], axis=0)
        delta[n] = 24 * EPS * M
    for t in range(1, steps + 1):
        for i in range(d):
            Phi = np.eye(4)
            for n in range(t, 0, -1):  # step n's error, carried by A_{n+1} .. A_t
                bound[t, i] += np.max(np.sum(np.abs(Phi), axis=1)) * delta[n, i]
                Phi = Phi @ A[n - 1, i]
    avg = m.mean_avg if m.mean_avg is not None else np.zeros_like(m.mean_w)
    # the average is debias * ema: the factor scales the error, and the product (theory)
    # versus the division (simulator) adds <= 2 roundings of |average|
    return bound, bound * m.debias[:, None] + 2 * EPS * np.abs(avg)


# ---------------------------------------------------------------------------------------
# the supported optimizers, as a hypothesis strategy and as named cases

@st.composite
def sgds(draw):
    convention = draw(st.sampled_from(["pytorch", "optax", "keras"]))
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
    dampening = draw(st.sampled_from([0.0, 0.3])) if convention == "pytorch" and momentum else 0.0
    nesterov = bool(momentum) and dampening == 0.0 and draw(st.booleans())
    lr_kind = draw(st.sampled_from(["float", "array", "callable"]))
    lr = {"float": 0.1, "array": np.linspace(0.2, 0.02, 40),
          "callable": lambda t: 0.15 / (1.0 + 0.1 * t)}[lr_kind]
    return r.SGD(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                 weight_decay=draw(st.sampled_from([0.0, 0.05])),
                 maximize=draw(st.sampled_from([False, False, True])), convention=convention)


@st.composite
def linear_optimizers(draw):
    opt = draw(sgds())
    if draw(st.booleans()):
        opt = r.SAM(opt, rho=draw(st.sampled_from([0.0, 0.1, 0.3])), ascent="unnormalized")
    kind = draw(st.sampled_from([None, "ema", "sema"]))
    if kind is None:
        return opt
    kw = dict(decay=draw(st.sampled_from([0.0, 0.5, 0.8, 0.95])),
              start=draw(st.sampled_from(["copy", "zeros"])),
              update_every=draw(st.integers(1, 3)))
    warmup = draw(st.sampled_from([None, "timm", "constant", "linear", "exp"]))
    if warmup == "timm":
        kw.update(warmup="timm", update_after_step=draw(st.integers(0, 3)))
    elif warmup is not None:
        kw.update(warmup=warmup, warmup_steps=draw(st.integers(1, 8)))
    if kind == "ema":
        return r.EMA(opt, **kw)
    return r.SwitchEMA(opt, switch_every=draw(st.integers(1, 3)),
                       switch_unit=draw(st.sampled_from(["epoch", "step"])),
                       switch_start=draw(st.integers(0, 2)),
                       on_switch=draw(st.sampled_from(["keep", "reset"])), **kw)


SGD_MOM = r.SGD(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)
NAMED = {
    "sgd": r.SGD(lr=0.1),
    "pytorch-damp-wd": SGD_MOM,
    "pytorch-nesterov-schedule": r.SGD(lr=np.linspace(0.2, 0.02, 40), momentum=0.9, nesterov=True),
    "optax-maximize": r.SGD(lr=0.05, momentum=0.5, convention="optax", maximize=True),
    "keras-nesterov-callable": r.SGD(lr=lambda t: 0.1 / (1 + t), momentum=0.5,
                                     convention="keras", nesterov=True),
    "usam": r.SAM(SGD_MOM, rho=0.2, ascent="unnormalized"),
    "ema-copy": r.EMA(SGD_MOM, decay=0.8),
    "ema-zeros-every3-timm": r.EMA(SGD_MOM, decay=0.9, start="zeros", update_every=3,
                                   warmup="timm", update_after_step=2),
    "ema-openmixup-exp": r.EMA(r.SGD(lr=0.1, momentum=0.5, convention="keras"), decay=0.9,
                               warmup="exp", warmup_steps=6, warmup_ratio=0.5),
    "sema-epoch-reset-usam": r.SwitchEMA(r.SAM(SGD_MOM, rho=0.1, ascent="unnormalized"),
                                         decay=0.8, on_switch="reset", switch_every=2),
    "sema-step-zeros-linear": r.SwitchEMA(SGD_MOM, decay=0.7, start="zeros", update_every=2,
                                          switch_unit="step", switch_every=3, switch_start=2,
                                          warmup="linear", warmup_steps=4),
    "ema-first-after-2": r.EMA(SGD_MOM, decay=0.8, start="first", update_after_step=2),
    "swa-steps": r.SWA(SGD_MOM, swa_every=2, swa_unit="step", swa_start=3),
    "swa-epoch-usam": r.SWA(r.SAM(SGD_MOM, rho=0.1, ascent="unnormalized"), swa_start=1),
    "lookahead": r.Lookahead(SGD_MOM, k=3, alpha=0.5),
    "lookahead-first-reset": r.Lookahead(SGD_MOM, k=4, alpha=0.3, start="first",
                                         on_sync="reset"),
}
H = np.array([2.0, 0.5, 1.0])
W_STAR = np.array([0.3, -1.0, 0.0])
W0 = np.array([1.0, 2.0, -0.5])


def noiseless(h=H, w_star=W_STAR):
    return r.NoisyQuadratic(h, c=np.zeros(h.shape[0]), batch_size=3, w_star=w_star)


def assert_mean_is_the_run(problem, opt, w0, steps, spe):
    rec = r.train(problem, opt, w0=w0, steps=steps, steps_per_epoch=spe, record_params=True)
    m = theory.moments(problem, opt, w0=w0, steps=steps, steps_per_epoch=spe)
    bw, bavg = rounding_bound(problem, opt, w0, steps, spe)
    assert np.all(np.abs(m.mean_w - rec.params) <= bw)
    # no noise: every variance is exactly 0 (sigma^2 = 0 adds nothing to S_0 = 0)
    assert not np.any(m.cov)
    if rec.averages is not None:
        assert np.all(np.abs(m.mean_avg - rec.averages) <= bavg)
    diff = np.abs(m.mean_w - rec.params)
    return np.max(diff) / np.spacing(np.max(np.abs(m.mean))), np.max(bw) / max(np.max(diff), 1e-300)


# ---------------------------------------------------------------------------------------
# (a) no noise: the mean recursion is the run

@pytest.mark.claim("EMA-lyapunov")
@pytest.mark.parametrize("name", list(NAMED))
def test_mean_recursion_is_the_noiseless_run(name):
    """c = 0: theory.moments(...).mean_w equals train's iterates within the derived
    rounding bound (rounding_bound), for every named option; the averages too. Prints
    the largest difference in ulps of the largest state component, and how far below
    the bound it is."""
    ulps, margin = assert_mean_is_the_run(noiseless(), NAMED[name], W0, 30, 4)
    print(f"\n{name}: max |theory - train| = {ulps:.2f} ulps; bound / difference = {margin:.3g}")


DYADIC_BASE = r.SGD(lr=0.25, momentum=0.5, dampening=0.5, weight_decay=0.0625)
DYADIC = {
    "sgd": r.SGD(lr=0.25),
    "pytorch-damp-wd": DYADIC_BASE,
    "pytorch-nesterov": r.SGD(lr=0.125, momentum=0.5, nesterov=True),
    "optax-nesterov-maximize": r.SGD(lr=0.25, momentum=0.5, convention="optax", nesterov=True,
                                     maximize=True),
    "keras-nesterov": r.SGD(lr=0.25, momentum=0.5, convention="keras", nesterov=True),
    "keras-schedule": r.SGD(lr=np.array([0.25, 0.125] * 3), momentum=0.5, convention="keras"),
    "usam": r.SAM(DYADIC_BASE, rho=0.25, ascent="unnormalized"),
    "ema-every2": r.EMA(DYADIC_BASE, decay=0.75, update_every=2),
    "sema-epoch-reset-usam": r.SwitchEMA(r.SAM(DYADIC_BASE, rho=0.25, ascent="unnormalized"),
                                         decay=0.5, switch_every=2, on_switch="reset"),
    "sema-step-start": r.SwitchEMA(DYADIC_BASE, decay=0.75, switch_unit="step", switch_every=3,
                                   switch_start=2),
}


@pytest.mark.claim("EMA-lyapunov")
@pytest.mark.parametrize("name", list(DYADIC))
def test_mean_recursion_is_the_noiseless_run_bitwise_when_exact(name):
    """With dyadic data (h, w*, w0, lr, momentum, dampening, decays: few-bit binary
    fractions) no operation of 6 steps rounds, on either side: the theory's float mean
    equals the same recursion in exact rational arithmetic (fractions.Fraction), and
    train's iterates and averages equal it BIT FOR BIT. (Past ~7 steps the products need
    more than 53 bits and the rounding bound of the next test takes over.)"""
    from fractions import Fraction
    opt, steps = DYADIC[name], 6
    problem = noiseless(w_star=np.array([0.25, -1.0, 0.0]))
    rec = r.train(problem, opt, w0=W0, steps=steps, steps_per_epoch=2, record_params=True)
    m = theory.moments(problem, opt, w0=W0, steps=steps, steps_per_epoch=2)
    A, _, _ = theory.transitions(problem, opt, steps=steps, steps_per_epoch=2)
    for i in range(problem.dim):
        ema0 = W0[i] if isinstance(opt, r.EMA) else 0.0
        s = [Fraction(x) for x in (W0[i], 0.0, ema0, 1.0)]
        for n in range(steps):
            s = [sum(Fraction(A[n, i, j, k]) * s[k] for k in range(4)) for j in range(4)]
            assert [Fraction(x) for x in m.mean[n + 1, i]] == s[:3]
    assert np.array_equal(m.mean_w, rec.params)
    if rec.averages is not None:
        assert np.array_equal(m.mean_avg, rec.averages)


@pytest.mark.claim("EMA-lyapunov")
@given(opt=linear_optimizers(), spe=st.sampled_from([3, 5]), steps=st.integers(1, 30))
@example(opt=r.SwitchEMA(r.SGD(lr=0.1, momentum=0.9), decay=0.5, start="zeros", update_every=3,
                         switch_unit="step", switch_every=2, on_switch="reset"),
         spe=3, steps=30)
def test_mean_recursion_is_the_noiseless_run_fuzzed(opt, spe, steps):
    """Every combination of the supported options (hypothesis), the same law."""
    assert_mean_is_the_run(noiseless(), opt, W0, steps, spe)


@pytest.mark.claim("EMA-lyapunov")
def test_rounding_bound_has_teeth():
    """The bound is tight enough to catch a real mistake: the recursion of an SGD with the
    dampening factor dropped (theory of dampening 0, simulator with dampening 0.3) is
    outside it by orders of magnitude, as is USAM's recursion without (1 + rho h)."""
    problem = noiseless()
    rec = r.train(problem, SGD_MOM, w0=W0, steps=30, record_params=True)
    wrong = theory.moments(problem, r.SGD(lr=0.1, momentum=0.9, weight_decay=0.05), w0=W0, steps=30)
    bw, _ = rounding_bound(problem, SGD_MOM, W0, 30)
    assert np.max(np.abs(wrong.mean_w - rec.params) - 1e6 * bw) > 0
    usam = r.SAM(SGD_MOM, rho=0.2, ascent="unnormalized")
    rec = r.train(problem, usam, w0=W0, steps=30, record_params=True)
    wrong = theory.moments(problem, SGD_MOM, w0=W0, steps=30)
    bw, _ = rounding_bound(problem, usam, W0, 30)
    assert np.max(np.abs(wrong.mean_w - rec.params) - 1e6 * bw) > 0


def test_rounding_bound_is_not_vacuous():
    """The derived bound is worst-case (377 to 4820 times the largest differences
    observed, which are 0.75 to 5 ulps of the largest state component; printed by
    test_mean_recursion_is_the_noiseless_run), yet below 1e-12 times the largest state
    component over 30 steps: a real mistake (previous test) is 1e6 times outside it."""
    for name in ("pytorch-damp-wd", "sema-epoch-reset-usam", "ema-zeros-every3-timm"):
        bw, _ = rounding_bound(noiseless(), NAMED[name], W0, 30, 4)
        m = theory.moments(noiseless(), NAMED[name], w0=W0, steps=30, steps_per_epoch=4)
        assert np.max(bw) < 1e-12 * np.max(np.abs(m.mean))


def test_warmup_decays_restated_exactly():
    """theory restates the warm-up schedules from the EMA docstring; they equal
    EMA.decay_at bit for bit (so the debias products agree bit for bit too)."""
    for opt in (NAMED["ema-zeros-every3-timm"], NAMED["ema-openmixup-exp"],
                NAMED["sema-step-zeros-linear"],
                r.EMA(r.SGD(), decay=0.99, warmup="constant", warmup_steps=5),
                r.EMA(r.SGD(), decay=0.999, warmup="timm", warmup_power=0.75, warmup_gamma=3.0,
                      min_decay=0.5)):
        for n in range(1, 60):
            assert theory._decay(opt, n) == opt.decay_at(n)


def test_transition_matrix_by_hand():
    """SGD lr 1/2, momentum 1/2, dampening 1/2, h = 2, w* = 0, step 2 (not the first):
    buf' = buf/2 + (1/2)(2 w + xi) = w + buf/2 + xi/2, w' = w - buf'/2 = w/2 - buf/4 - xi/4.
    Step 1 (PyTorch's first step, buf = g = 2 w + xi): w' = w - (2w + xi)/2 = -xi/2."""
    problem = r.NoisyQuadratic(np.array([2.0]), batch_size=1)
    opt = r.SGD(lr=0.5, momentum=0.5, dampening=0.5)
    A, b, f = theory.transitions(problem, opt, steps=2)
    assert np.array_equal(A[1, 0, :2, :2], [[0.5, -0.25], [1.0, 0.5]])
    assert np.array_equal(b[1, 0, :2], [-0.25, 0.5])
    assert np.array_equal(A[0, 0, :2, :2], [[0.0, 0.0], [2.0, 0.0]])
    assert np.array_equal(b[0, 0, :2], [-0.5, 1.0])
    assert np.array_equal(A[:, 0, 3], np.tile([0.0, 0.0, 0.0, 1.0], (2, 1)))  # constant 1
    assert np.array_equal(f, [1.0, 1.0])


def test_usam_matrix_by_hand():
    """USAM rho 1/4 on h = 2: g_adv = (1 + 2/4)(2 (w - w*) + xi) = 3 (w - w*) + 1.5 xi;
    SGD lr 1/4, w* = 1: w' = w - (3 w - 3 + 1.5 xi)/4 = w/4 + 3/4 - 3 xi / 8."""
    problem = r.NoisyQuadratic(np.array([2.0]), batch_size=1, w_star=np.array([1.0]))
    A, b, _ = theory.transitions(problem, r.SAM(r.SGD(lr=0.25), rho=0.25, ascent="unnormalized"),
                                 steps=1)
    assert np.array_equal(A[0, 0, 0], [0.25, 0.0, 0.0, 0.75])
    assert b[0, 0, 0] == -0.375


# ---------------------------------------------------------------------------------------
# (b) Monte Carlo through the jitted simulator

NOISY = r.NoisyQuadratic(np.array([2.0, 0.5]), batch_size=2, w_star=np.array([0.3, -1.0]))
MC_W0 = np.array([1.0, 2.0])
MC_RUNS, MC_STEPS, MC_ROWS = 2000, 24, (1, 2, 6, 13, 24)
MC_CASES = {
    "pytorch-damp-wd": (r.SGD(lr=0.2, momentum=0.5, dampening=0.5, weight_decay=0.05), None),
    "keras-nesterov-schedule": (r.SGD(lr=np.linspace(0.3, 0.05, MC_STEPS), momentum=0.5,
                                      convention="keras", nesterov=True), None),
    "ema-zeros-every2-timm": (r.EMA(r.SGD(lr=0.2, momentum=0.5), decay=0.8, start="zeros",
                                    update_every=2, warmup="timm"), None),
    "sema-epoch-reset-usam": (r.SwitchEMA(r.SAM(r.SGD(lr=0.15, momentum=0.5), rho=0.3,
                                                ascent="unnormalized"),
                                          decay=0.7, on_switch="reset"), 5),
    "sema-step-optax-nesterov": (r.SwitchEMA(r.SGD(lr=0.1, momentum=0.5, convention="optax",
                                                   nesterov=True),
                                             decay=0.8, switch_unit="step", switch_every=4), None),
}
_MC_CACHE: dict = {}


def mc(name):
    if name not in _MC_CACHE:
        opt, spe = MC_CASES[name]
        _MC_CACHE[name] = mc_samples(NOISY, opt, MC_W0, MC_STEPS, MC_RUNS, spe)
    return _MC_CACHE[name]


@pytest.mark.claim("EMA-lyapunov")
@pytest.mark.parametrize("name", list(MC_CASES))
def test_monte_carlo_matches_exact_moments(name):
    """2000 seeded runs of train: the sample mean and variance of w and of the average at
    steps 1, 2, 6, 13, 24 pass the exact Gaussian / chi-square tests of mc_failures
    (family-wise level 1e-6: a correct theory fails with probability <= 1e-6)."""
    opt, spe = MC_CASES[name]
    params, avgs = mc(name)
    m = theory.moments(NOISY, opt, w0=MC_W0, steps=MC_STEPS, steps_per_epoch=spe)
    assert mc_failures(params, m.mean_w, m.var_w, MC_ROWS) == []
    if avgs is not None:
        assert mc_failures(avgs, m.mean_avg, m.var_avg, MC_ROWS) == []


@pytest.mark.claim("EMA-lyapunov")
def test_monte_carlo_has_teeth():
    """(e) The same checks reject a recursion with the dampening factor (1 - tau)
    dropped (the exact moments of dampening 0 against runs with dampening 0.5), and a USAM
    recursion without the factor (1 + rho h) (the moments of plain SGD against USAM runs)."""
    opt, _ = MC_CASES["pytorch-damp-wd"]
    params, _ = mc("pytorch-damp-wd")
    wrong = theory.moments(NOISY, r.SGD(lr=0.2, momentum=0.5, weight_decay=0.05), w0=MC_W0,
                           steps=MC_STEPS)
    assert len(mc_failures(params, wrong.mean_w, wrong.var_w, MC_ROWS)) >= 5
    opt, spe = MC_CASES["sema-epoch-reset-usam"]
    params, avgs = mc("sema-epoch-reset-usam")
    no_factor = r.SwitchEMA(r.SGD(lr=0.15, momentum=0.5), decay=0.7, on_switch="reset")
    wrong = theory.moments(NOISY, no_factor, w0=MC_W0, steps=MC_STEPS, steps_per_epoch=spe)
    assert len(mc_failures(params, wrong.mean_w, wrong.var_w, MC_ROWS)) >= 5
    assert len(mc_failures(avgs, wrong.mean_avg, wrong.var_avg, MC_ROWS)) >= 5


# ---------------------------------------------------------------------------------------
# (b') the noise term exactly: variances from the simulator's impulse responses

IMPULSE_PROBLEM = r.NoisyQuadratic(np.array([2.0, 0.5, 1.0]), c=np.array([1.0, 3.0, 0.5]),
                                   batch_size=3)     # w* = 0
IMPULSE_STEPS, IMPULSE_SPE = 24, 4


def impulse_moments(opt, problem=IMPULSE_PROBLEM, steps=IMPULSE_STEPS, spe=IMPULSE_SPE):
    """Var w, Var avg and Cov(w, avg) after steps 0..steps, from the step API alone.

    With w* = 0 and w0 = 0 every supported optimizer is LINEAR in the noise draws z_k
    (the mean path is identically 0), so w_n = sum_k r_k(n) z_k where r_k(n) is the
    state at step n of the run whose only nonzero draw is z_k = 1 (all coordinates; they
    do not interact). The z_k are independent standard normals, so Var w_n = sum_k r_k(n)^2
    exactly, and likewise for the average and the cross term. One run per k."""
    d = problem.dim
    zero = np.zeros(d)
    var_w, var_a, cov = (np.zeros((steps + 1, d)) for _ in range(3))
    averaging = isinstance(opt, AVERAGERS)
    for k in range(steps):
        w, s = zero, opt.init(zero)
        for t in range(steps):
            z = np.ones(d) if t == k else zero
            w, s, _ = opt.step(w, s, problem.grad_fn(z), epoch_end=(t + 1) % spe == 0)
            a = opt.average(s) if averaging else zero
            var_w[t + 1] += w * w
            var_a[t + 1] += a * a
            cov[t + 1] += w * a
    return var_w, var_a, cov


IMPULSE_CASES = {name: NAMED[name] for name in (
    "pytorch-damp-wd", "pytorch-nesterov-schedule", "optax-maximize", "keras-nesterov-callable",
    "usam", "ema-zeros-every3-timm", "ema-openmixup-exp", "sema-epoch-reset-usam",
    "sema-step-zeros-linear", "ema-first-after-2", "swa-steps", "swa-epoch-usam", "lookahead",
    "lookahead-first-reset")}


@pytest.mark.claim("EMA-lyapunov")
@pytest.mark.parametrize("name", list(IMPULSE_CASES))
def test_noise_term_equals_the_simulators_impulse_responses(name):
    """The covariance recursion S' = A S A^T + sigma^2 b b^T against the simulator,
    without sampling: theory's Var w, Var avg and Cov(w, avg) equal the sums of squared
    impulse responses of the step API (impulse_moments) to 1e-11 relative to the largest
    variance. Allowance: each response is the mean recursion of a noiseless run, which
    agrees with theory's propagation within rounding_bound (< 1e-12 relative over 30
    steps, test_rounding_bound_is_not_vacuous); a square doubles the relative error and
    the sum of 24 positive terms adds 24 u. The Monte Carlo test above accepts variance
    errors from about -16 % to +18 % (the chi-square band at R = 2000, level 1e-6 / (2 m),
    m = 10); this one
    pins the noise term to rounding."""
    opt = IMPULSE_CASES[name]
    var_w, var_a, cov = impulse_moments(opt)
    m = theory.moments(IMPULSE_PROBLEM, opt, w0=np.zeros(3), steps=IMPULSE_STEPS,
                       steps_per_epoch=IMPULSE_SPE)
    assert not np.any(m.mean_w)
    for got, want in ((m.var_w, var_w), (m.var_avg, var_a), (m.cov_w_avg, cov)):
        if got is None:
            continue
        scale = np.max(np.abs(want))
        assert scale > 0
        assert np.max(np.abs(got - want)) <= 1e-11 * scale, np.max(np.abs(got - want)) / scale


@pytest.mark.claim("EMA-lyapunov")
def test_noise_term_check_has_teeth(monkeypatch):
    """A noise column 5 % too large (variance 10 % too large, inside the Monte Carlo
    band) and USAM's noise without its factor (1 + rho h) are both rejected by the
    impulse-response check, by more than 1e6 times its allowance."""
    opt = IMPULSE_CASES["sema-epoch-reset-usam"]
    var_w, _, _ = impulse_moments(opt)
    scale = np.max(np.abs(var_w))
    real_steps = theory._steps

    def louder(*args, **kwargs):
        for A, b, factor in real_steps(*args, **kwargs):
            yield A, 1.05 * b, factor

    monkeypatch.setattr(theory, "_steps", louder)
    m = theory.moments(IMPULSE_PROBLEM, opt, w0=np.zeros(3), steps=IMPULSE_STEPS,
                       steps_per_epoch=IMPULSE_SPE)
    assert np.max(np.abs(m.var_w - var_w)) > 1e6 * 1e-11 * scale
    monkeypatch.undo()
    usam = IMPULSE_CASES["usam"]
    var_w, _, _ = impulse_moments(usam)
    no_factor = theory.moments(IMPULSE_PROBLEM, SGD_MOM, w0=np.zeros(3), steps=IMPULSE_STEPS,
                               steps_per_epoch=IMPULSE_SPE)
    assert np.max(np.abs(no_factor.var_w - var_w)) > 1e6 * 1e-11 * np.max(var_w)


def test_expected_loss_is_the_population_loss_formula():
    """loss_w = sum 1/2 h ((E w - w*)^2 + Var w): the Monte Carlo average of
    NoisyQuadratic.loss at step 24 agrees with it within 6 standard errors of the sample
    (sd of the loss estimated from the same sample; 2000 runs)."""
    opt, _ = MC_CASES["pytorch-damp-wd"]
    params, _ = mc("pytorch-damp-wd")
    m = theory.moments(NOISY, opt, w0=MC_W0, steps=MC_STEPS)
    losses = np.array([NOISY.loss(p) for p in params[:, -1]])
    assert abs(losses.mean() - m.loss_w[-1]) <= 6 * losses.std(ddof=1) / np.sqrt(MC_RUNS)
    # and the formula itself, by hand for the noiseless mean
    expected = 0.5 * np.sum(NOISY.h * ((m.mean_w[-1] - NOISY.w_star) ** 2 + m.var_w[-1]))
    assert m.loss_w[-1] == expected


# ---------------------------------------------------------------------------------------
# (c) the long run

def closed_form_sgd_var(eta, h, sigma2, mu=0.0):
    """Stationary Var w of heavy ball (PyTorch form, dampening 0) on one coordinate:
    w_{n+1} = (1 + mu - eta h) w_n - mu w_{n-1} - eta xi is an AR(2) process, whose
    variance is (1 - phi2) s^2 / ((1 + phi2)((1 - phi2)^2 - phi1^2)) with phi1 = 1 + mu -
    eta h, phi2 = -mu, s^2 = eta^2 sigma2: (1 + mu) eta sigma2 / ((1 - mu) h (2 (1 + mu) - eta h))."""
    return (1 + mu) * eta * sigma2 / ((1 - mu) * h * (2 * (1 + mu) - eta * h))


def closed_form_ema_var(eta, h, sigma2, rho):
    """Stationary Var of the EMA (decay rho) of plain SGD's iterates, a = 1 - eta h:
    V = eta^2 sigma2 / (1 - a^2), Cov(ema, w) = (1 - rho) V / (1 - rho a),
    Var(ema) = (1 - rho) V (1 + rho a) / ((1 + rho)(1 - rho a)) (proofs/ema.md)."""
    a = 1 - eta * h
    V = eta ** 2 * sigma2 / (1 - a ** 2)
    return V, (1 - rho) * V / (1 - rho * a), (1 - rho) * V * (1 + rho * a) / ((1 + rho) * (1 - rho * a))


@pytest.mark.claim("EMA-lyapunov")
def test_stationary_closed_forms():
    """stationary() against the closed forms (relative 1e-12: a 3x3 Lyapunov solve has
    condition number ~ 1 / (1 - radius^2) <= 1e3 here, times ~1e2 eps of the solver)."""
    h = np.array([2.0, 0.5, 0.05])
    problem = r.NoisyQuadratic(h, c=np.array([1.0, 3.0, 0.5]), batch_size=4)
    sigma2 = problem.c / 4
    for mu in (0.0, 0.5, 0.9):
        st_ = theory.stationary(problem, r.SGD(lr=0.3, momentum=mu))
        np.testing.assert_allclose(st_.var_w[0], closed_form_sgd_var(0.3, h, sigma2, mu), rtol=1e-12)
        assert np.array_equal(st_.mean_w[0], np.zeros(3))
    st_ = theory.stationary(problem, r.EMA(r.SGD(lr=0.3), decay=0.9))
    V, C, E = closed_form_ema_var(0.3, h, sigma2, 0.9)
    np.testing.assert_allclose(st_.var_w[0], V, rtol=1e-12)
    np.testing.assert_allclose(st_.cov_w_avg[0], C, rtol=1e-12)
    np.testing.assert_allclose(st_.var_avg[0], E, rtol=1e-12)


@pytest.mark.claim("EMA-lyapunov")
@pytest.mark.parametrize("opt,spe,period", [
    (r.SGD(lr=0.3, momentum=0.9, dampening=0.3, weight_decay=0.1), None, 1),
    (r.EMA(r.SAM(r.SGD(lr=0.2, momentum=0.5, convention="keras"), rho=0.2, ascent="unnormalized"),
           decay=0.9, update_every=3, start="zeros"), None, 3),
    (r.SwitchEMA(r.SGD(lr=0.3, momentum=0.5), decay=0.8, switch_every=2, on_switch="reset",
                 switch_start=3, warmup="linear", warmup_steps=10), 5, 10),
    (r.Lookahead(r.SGD(lr=0.3, momentum=0.5), k=4, alpha=0.5, start="first"), None, 4),
])
def test_stationary_is_the_long_run_limit(opt, spe, period):
    """moments() run for N steps (N a multiple of the period, after every warm-up) ends
    in stationary()'s orbit, phase by phase: mean, covariance and the expected losses.
    The transient decays like radius^(N / period) <= 1e-13 here, and transient growth
    (non-normal maps) is at most ~1e2: relative tolerance 1e-10."""
    problem = r.NoisyQuadratic(np.array([2.0, 0.5]), batch_size=2, w_star=np.array([0.3, -1.0]))
    s = theory.stationary(problem, opt, steps_per_epoch=spe)
    p = s.period
    assert p == period and s.radius < 1  # lcm(update_every, switch period in steps)
    n_periods = int(np.ceil(np.log(1e-13) / np.log(s.radius))) + 20
    N = p * n_periods
    m = theory.moments(problem, opt, w0=np.array([1.0, 2.0]), steps=N, steps_per_epoch=spe)
    for j in range(p):
        row = N - p + j if j else N
        np.testing.assert_allclose(m.mean[row], s.mean[j], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m.cov[row], s.cov[j], rtol=1e-10, atol=1e-12 * np.max(s.cov))
        np.testing.assert_allclose(m.loss_w[row], s.loss_w[j], rtol=1e-10)
    if s.loss_avg is not None:
        np.testing.assert_allclose(m.loss_avg[N], s.loss_avg[0], rtol=1e-10)


def test_stability_limit_of_heavy_ball():
    """Heavy ball is stable iff eta h < 2 (1 + mu): stationary() solves just below the
    limit and raises just above it; spectral_radius crosses 1 there."""
    problem = r.NoisyQuadratic(np.array([1.0]), batch_size=1)
    for mu in (0.0, 0.5, 0.9):
        limit = 2 * (1 + mu)
        assert theory.spectral_radius(problem, r.SGD(lr=0.99 * limit, momentum=mu)) < 1
        assert theory.spectral_radius(problem, r.SGD(lr=1.01 * limit, momentum=mu)) > 1
        theory.stationary(problem, r.SGD(lr=0.99 * limit, momentum=mu))
        with pytest.raises(ValueError, match="unstable: the spectral radius"):
            theory.stationary(problem, r.SGD(lr=1.01 * limit, momentum=mu))


# ---------------------------------------------------------------------------------------
# (d) errors

@pytest.mark.parametrize("opt,match", [
    (r.Adam(), "Adam divides by a running second moment"),
    (r.FAME(), "FAME divides"),
    (r.SAM(r.SGD()), "ascent='normalized' divides by a gradient norm"),
    (r.SAM(r.SGD(), ascent="adaptive"), "ascent='adaptive'"),
    (r.StableSAM(r.SGD()), "StableSAM rescales"),
    (r.EMA(r.StableSAM(r.SGD())), "StableSAM"),
    (r.SwitchEMA(r.Adam()), "Adam"),
    (r.EMA(r.SAM(r.FAME(), ascent="unnormalized")), "FAME"),
    ("sgd", "optimizer must be SGD"),
])
def test_nonlinear_optimizers_are_refused(opt, match):
    problem = r.NoisyQuadratic(np.ones(2))
    for call in (lambda: theory.moments(problem, opt, w0=np.ones(2), steps=3),
                 lambda: theory.stationary(problem, opt),
                 lambda: theory.transitions(problem, opt, steps=3),
                 lambda: theory.spectral_radius(problem, opt)):
        with pytest.raises(TypeError, match=match):
            call()


def test_swa_has_no_stationary_distribution():
    """SWA's k-th snapshot gets weight 1/k: the map changes forever, so stationary()
    and spectral_radius() refuse it with the reason (moments() handles it)."""
    problem = r.NoisyQuadratic(np.ones(2))
    opt = r.SWA(r.SGD(lr=0.1), swa_unit="step")
    for call in (lambda: theory.stationary(problem, opt),
                 lambda: theory.spectral_radius(problem, opt)):
        with pytest.raises(ValueError, match="SWA's weights change with every snapshot"):
            call()
    assert theory.moments(problem, opt, w0=np.ones(2), steps=3).mean_avg.shape == (4, 2)


def test_bad_input():
    problem = r.NoisyQuadratic(np.ones(2))
    opt = r.SGD(lr=0.1)
    with pytest.raises(TypeError, match="NoisyQuadratic"):
        theory.moments(r.Quadratic(np.eye(2)), opt, w0=np.ones(2), steps=3)
    with pytest.raises(ValueError, match="w0 must have length 2"):
        theory.moments(problem, opt, w0=np.ones(3), steps=3)
    with pytest.raises(TypeError, match="w0 must be a numpy float64 array"):
        theory.moments(problem, opt, w0=[1.0, 1.0], steps=3)
    with pytest.raises(ValueError, match="steps must be in"):
        theory.moments(problem, opt, w0=np.ones(2), steps=-1)
    with pytest.raises(TypeError, match="steps must be an integer"):
        theory.moments(problem, opt, w0=np.ones(2), steps=2.0)
    with pytest.raises(ValueError, match="steps_per_epoch must be in"):
        theory.moments(problem, opt, w0=np.ones(2), steps=3, steps_per_epoch=0)
    sema = r.SwitchEMA(opt)
    for call in (lambda: theory.moments(problem, sema, w0=np.ones(2), steps=3),
                 lambda: theory.stationary(problem, sema)):
        with pytest.raises(ValueError, match="steps_per_epoch"):
            call()
    with pytest.raises(ValueError, match="constant learning rate"):
        theory.stationary(problem, r.SGD(lr=np.full(5, 0.1)))
    with pytest.raises(ValueError, match="past its end|entries"):
        theory.moments(problem, r.SGD(lr=np.full(5, 0.1)), w0=np.ones(2), steps=6)
    with pytest.raises(FloatingPointError, match="diverges"):
        theory.moments(problem, r.SGD(lr=3.0), w0=np.ones(2), steps=2000)


def test_outputs_are_read_only_and_inputs_untouched():
    problem = r.NoisyQuadratic(np.array([1.0, 2.0]))
    w0 = np.array([1.0, -1.0])
    m = theory.moments(problem, r.EMA(r.SGD(lr=0.1)), w0=w0, steps=3)
    assert np.array_equal(w0, [1.0, -1.0])
    for a in (m.mean, m.cov, m.mean_w, m.var_w, m.mean_avg, m.var_avg, m.loss_w, m.loss_avg):
        assert not a.flags.writeable
    assert m.mean_w.shape == (4, 2) and m.cov.shape == (4, 2, 3, 3) and m.loss_w.shape == (4,)
    assert theory.moments(problem, r.SGD(lr=0.1), w0=w0, steps=3).mean_avg is None


# -- long periods: bounded work ------------------------------------------------------------

@pytest.mark.parametrize("on_switch", ["keep", "reset"])
@pytest.mark.parametrize("period", [2, 64, 257])
def test_a_long_period_by_repeated_squaring_is_the_step_by_step_product(period, on_switch):
    """spectral_radius forms a period longer than MAX_PERIOD as S A^p (repeated squaring).
    Against the step-by-step product of the same maps, the entries agree within the
    forward error bound of a product of p 4 x 4 matrices in any association order,
    2 p gamma_4 (|S| |A|^p) with gamma_4 = 4u / (1 - 4u), evaluated on absolute values."""
    problem = r.NoisyQuadratic(h=np.array([0.01, 1.0, 5.0]), batch_size=2)
    opt = r.SwitchEMA(r.SGD(lr=0.1, momentum=0.5), decay=0.9, switch_every=period,
                      switch_unit="step", on_switch=on_switch)
    lin = theory._linear(opt)
    squared = theory._long_period_map(lin, problem, period, None)
    _, _, stepwise, _, _ = theory._period_map(lin, problem, None)
    late = theory._late_steps(lin, problem, period, None)
    scale = np.tile(np.eye(4), (3, 1, 1))
    for A, _ in late:
        scale = np.abs(A) @ scale
    u = 2.0 ** -53
    gamma4 = 4 * u / (1 - 4 * u)
    assert np.all(np.abs(squared - stepwise) <= 2 * period * gamma4 * scale)


def test_a_period_of_a_billion_steps_is_bounded_work():
    """The reproduction: SwitchEMA(switch_every=10**9, switch_unit="step") made
    spectral_radius loop once per step (unbounded). Now it returns at once with the radius
    of a stable run, no larger than at K = 10 (A's p-th power vanishes as p grows, since
    rho(A) < 1 here); stationary, whose output has one entry per phase, refuses the
    period with a ValueError naming the limit."""
    problem = r.NoisyQuadratic(h=np.array([0.01, 1.0]), batch_size=2)

    def radius(K):
        return theory.spectral_radius(problem, r.SwitchEMA(
            r.SGD(lr=0.1), decay=0.9, switch_every=K, switch_unit="step"))

    short, long = radius(10), radius(10 ** 9)
    assert 0.0 <= long <= short < 1.0
    with pytest.raises(ValueError, match=r"period is 1000000000 steps .* MAX_PERIOD"):
        theory.stationary(problem, r.SwitchEMA(r.SGD(lr=0.1), decay=0.9, switch_every=10 ** 9,
                                               switch_unit="step"))
