"""Claim EMA-progressive (proofs/ema.md): Progressive Scaling, the batch grown stage by
stage with the EMA Scaling Rule applied at every change (refimpl.scaling.progressive),
on the teacher-student NQM of EMA-feedback.

Expected values: the SDE limit by matrix exponentials (tests/test_claims_feedback.py's
``sde_moments``, independent of refimpl.theory); the chained exact moments
(``theory.moments(start=...)``) are checked against Monte Carlo runs of the step API that
carry one optimizer state through the stages.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from refimpl import EMA, SGD, NoisyQuadratic, SwitchEMA, theory
from refimpl._jit import JIT_DISABLED
from refimpl.scaling import Stage, progressive
from tests.test_claims_feedback import B0, BETA_T, C, GAMMA, H, W0, W_STAR, sde_moments

STAGES = [(1, 40), (2, 40), (4, 80), (8, 160)]  # (kappa, base steps): 320 base steps


def nqm(kappa):
    return NoisyQuadratic(np.array([H]), c=np.array([C]), batch_size=B0 * kappa,
                          w_star=np.array([W_STAR]))


def chained(eta, rule, scale=1, gamma=GAMMA):
    """Exact moments after all stages (base step eta, stages' base steps times scale)."""
    rho = 1.0 - BETA_T * eta
    base = EMA(SGD(lr=eta), decay=rho)
    m = None
    for stage in progressive(base, [(k, n * scale) for k, n in STAGES]):
        opt = stage.optimizer if rule else EMA(SGD(lr=stage.kappa * eta), decay=rho)
        start = {"w0": np.array([W0])} if m is None else {"start": m}
        m = theory.moments(nqm(stage.kappa), opt, steps=stage.steps, ema_feedback=gamma, **start)
    return m


def errors(eta, rule, scale):
    m = chained(eta, rule, scale)
    T = eta * scale * sum(n for _, n in STAGES)
    mean, cov = sde_moments(GAMMA, BETA_T, eta * C / B0, T)
    return (max(abs(m.mean_w[-1, 0] - mean[0]), abs(m.mean_avg[-1, 0] - mean[1])),
            max(abs(m.var_w[-1, 0] / cov[0, 0] - 1), abs(m.var_avg[-1, 0] / cov[1, 1] - 1)))


@pytest.mark.claim("EMA-progressive")
def test_progressive_scaling_converges_to_the_base_runs_limit_at_first_order():
    """Stages kappa = 1, 2, 4, 8 with the rule at each change: halving eta (and doubling
    every stage's length, so the same training time T = 3.2) halves the errors of the
    means and relative variances against the SDE (ratio in [0.4, 0.6])."""
    coarse, fine = errors(0.01, True, 1), errors(0.005, True, 2)
    print(f"\nprogressive, rule: mean error {coarse[0]:.2e} -> {fine[0]:.2e}, relative "
          f"variance error {coarse[1]:.2e} -> {fine[1]:.2e}")
    assert all(0.4 <= f / c <= 0.6 for c, f in zip(coarse, fine))


@pytest.mark.claim("EMA-progressive")
def test_teeth_progressive_without_rho_kappa_keeps_an_order_one_gap():
    """Scaling only the learning rate at the changes: the gap does not shrink."""
    coarse, fine = errors(0.01, False, 1), errors(0.005, False, 2)
    print(f"\nprogressive, rho kept: mean error {coarse[0]:.2e} -> {fine[0]:.2e}")
    assert fine[0] > 0.1 and fine[0] > 0.9 * coarse[0]


@pytest.mark.claim("EMA-progressive")
@pytest.mark.skipif(JIT_DISABLED, reason="thousands of step-API runs; compiled == plain "
                    "Python is checked in test_jit.py")
def test_chained_moments_match_monte_carlo_of_one_state_through_the_stages():
    """theory.moments(start=...) against 2000 step-API runs that keep one EMA(SGD) state
    through the stages, each stage with its own scaled optimizer and batch size, the
    teacher in the oracle: means within 4 standard errors, variances in a chi-square
    99.99 % interval."""
    eta, runs = 0.02, 2000
    m = chained(eta, True)
    stages = progressive(EMA(SGD(lr=eta), decay=1.0 - BETA_T * eta), STAGES)
    rng_seed = 11
    W, Z = np.empty(runs), np.empty(runs)
    noise = {i: nqm(s.kappa).draw_noise(s.steps * runs, rng_seed + i).reshape(runs, s.steps)
             for i, s in enumerate(stages)}
    for k in range(runs):
        w = np.array([W0])
        state = stages[0].optimizer.init(w)
        for i, stage in enumerate(stages):
            prob, opt = nqm(stage.kappa), stage.optimizer
            for t in range(stage.steps):
                teacher, base = opt.average(state), prob.grad_fn(noise[i][k, t:t + 1])
                w, state, _ = opt.step(w, state, lambda v, base=base, teacher=teacher: (
                    base(v)[0], base(v)[1] + GAMMA * (v - teacher)))
        W[k], Z[k] = w[0], stages[-1].optimizer.average(state)[0]
    lo, hi = scipy.stats.chi2.ppf([5e-5, 1 - 5e-5], runs - 1) / (runs - 1)
    for x, mean, var in ((W, m.mean_w[-1, 0], m.var_w[-1, 0]), (Z, m.mean_avg[-1, 0], m.var_avg[-1, 0])):
        assert abs(x.mean() - mean) <= 4 * np.sqrt(var / runs)
        assert lo <= x.var(ddof=1) / var <= hi


def test_progressive_builds_the_stages_from_the_base_hyperparameters():
    base = EMA(SGD(lr=0.01), decay=0.9)
    stages = progressive(base, [(1, 10), (2, 10), (4, 8)])
    assert [s.kappa for s in stages] == [1, 2, 4] and [s.steps for s in stages] == [10, 5, 2]
    assert stages[2].optimizer.decay == 0.9 ** 4 and stages[2].optimizer.inner.lr.constant == 0.04
    assert isinstance(stages[0], Stage) and base.decay == 0.9  # the input is unchanged


@pytest.mark.parametrize("stages,error,match", [
    ([], ValueError, "at least one"),
    ("12", TypeError, "sequence"),
    ([(2, 3)], ValueError, "divisible by kappa=2"),
    ([(0, 4)], ValueError, "kappa"),
    ([(2, 0)], ValueError, "base_steps"),
    ([(2, 4, 1)], ValueError, "pair"),
    ([(1.5, 3)], (ValueError, TypeError), "kappa"),
])
def test_progressive_refuses_bad_stages(stages, error, match):
    with pytest.raises(error, match=match):
        progressive(EMA(SGD(lr=0.01), decay=0.9), stages)


def test_progressive_refuses_a_schedule_and_start_refuses_what_it_cannot_continue():
    with pytest.raises(ValueError, match="constant learning rate"):
        progressive(SGD(lr=np.full(10, 0.1)), [(1, 2)])
    prob = nqm(1)
    first = theory.moments(prob, EMA(SGD(lr=0.1), decay=0.9), w0=np.ones(1), steps=3)
    with pytest.raises(ValueError, match="exactly one of w0"):
        theory.moments(prob, EMA(SGD(lr=0.1), decay=0.9), w0=np.ones(1), steps=3, start=first)
    with pytest.raises(ValueError, match="exactly one of w0"):
        theory.moments(prob, EMA(SGD(lr=0.1), decay=0.9), steps=3)
    with pytest.raises(ValueError, match="plain EMA"):
        theory.moments(prob, SwitchEMA(SGD(lr=0.1), decay=0.9), steps=3, start=first)
    with pytest.raises(ValueError, match="averager exactly when"):
        theory.moments(prob, SGD(lr=0.1), steps=3, start=first)
    with pytest.raises(TypeError, match="Moments"):
        theory.moments(prob, SGD(lr=0.1), steps=3, start="nope")
    # continuing is exact: 3 + 4 steps equal 7 steps of the same optimizer
    opt = EMA(SGD(lr=0.1, momentum=0.9), decay=0.9)
    both = theory.moments(prob, opt, steps=4,
                          start=theory.moments(prob, opt, w0=np.ones(1), steps=3))
    whole = theory.moments(prob, opt, w0=np.ones(1), steps=7)
    assert np.allclose(both.mean[-1], whole.mean[-1], rtol=1e-14, atol=0)
    assert np.allclose(both.cov[-1], whole.cov[-1], rtol=1e-13, atol=1e-300)
