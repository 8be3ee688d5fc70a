"""Claim EMA-feedback (proofs/ema.md): the EMA Scaling Rule when the model EMA is a teacher
that feeds back into the student's loss, on the noisy quadratic model.

The student's gradient is the NQM's plus ``gamma (w - z)``, z the EMA teacher before the
step (a stop-gradient target). Expected values come from the stochastic differential
equation the runs approximate, solved with matrix exponentials (Van Loan's method for
the covariance: scipy.linalg.expm), an algorithm independent of refimpl.theory; and
refimpl.theory's new ``ema_feedback`` recursion is checked against Monte Carlo runs of
refimpl's own EMA step API with the teacher in the oracle.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from refimpl import EMA, SGD, NoisyQuadratic, SwitchEMA, theory
from refimpl._jit import JIT_DISABLED

H, W_STAR, C, B0, GAMMA = 1.0, 0.5, 1.0, 4, 0.5
BETA_T = 2.0   # the teacher's rate per unit time, (1 - rho) / eta
T_END = 3.2    # a multiple of kappa * eta for every kappa and eta below
W0 = 1.0


def sde_moments(gamma, beta_t, D, T):
    """Mean and covariance at time T of (w, z) under dw = -(h (w - w*) + gamma (w - z)) dt
    + sqrt(D) dW, dz = beta_t (w - z) dt, from (W0, W0)."""
    M = np.array([[-(H + gamma), gamma], [beta_t, -beta_t]])
    aug = np.zeros((3, 3))
    aug[:2, :2], aug[:2, 2] = M, [H * W_STAR, 0.0]
    mean = (scipy.linalg.expm(aug * T) @ np.array([W0, W0, 1.0]))[:2]
    V = np.zeros((4, 4))
    V[:2, :2], V[0, 2], V[2:, 2:] = -M, D, M.T
    E = scipy.linalg.expm(V * T)
    cov = E[2:, 2:].T @ E[:2, 2:]
    return mean, 0.5 * (cov + cov.T)


def scaled_run(eta, kappa, rule, gamma=GAMMA):
    """refimpl.theory's exact moments of the run with batch kappa B0, lr kappa eta and
    decay rho^kappa (rule) or rho (no rule), rho = 1 - BETA_T eta, up to time T_END."""
    rho = 1.0 - BETA_T * eta
    prob = NoisyQuadratic(np.array([H]), c=np.array([C]), batch_size=B0 * kappa,
                          w_star=np.array([W_STAR]))
    opt = EMA(SGD(lr=kappa * eta), decay=rho ** kappa if rule else rho)
    steps = round(T_END / (kappa * eta))
    assert abs(steps * kappa * eta - T_END) < 1e-9
    return theory.moments(prob, opt, w0=np.array([W0]), steps=steps, ema_feedback=gamma)


def errors(eta, kappa, rule, gamma=GAMMA):
    """(mean error of w and z, relative variance error of w and z) against the SDE."""
    m = scaled_run(eta, kappa, rule, gamma)
    mean, cov = sde_moments(gamma, BETA_T, eta * C / B0, T_END)
    e_mean = max(abs(m.mean_w[-1, 0] - mean[0]), abs(m.mean_avg[-1, 0] - mean[1]))
    e_var = max(abs(m.var_w[-1, 0] / cov[0, 0] - 1), abs(m.var_avg[-1, 0] / cov[1, 1] - 1))
    return e_mean, e_var


@pytest.mark.claim("EMA-feedback")
@pytest.mark.parametrize("kappa", [1, 2, 4, 8])
def test_the_rule_matches_the_sde_at_first_order(kappa):
    """With rho^kappa, halving eta halves the distance to the SDE (ratio within
    [0.4, 0.6]), for the means and the relative variances of student and teacher: the
    scaled runs all converge to the base run's limit, at rate O(kappa eta)."""
    coarse, fine = errors(0.02, kappa, True), errors(0.01, kappa, True)
    print(f"\nkappa {kappa}: mean error {coarse[0]:.2e} -> {fine[0]:.2e}, "
          f"relative variance error {coarse[1]:.2e} -> {fine[1]:.2e}")
    for c, f in zip(coarse, fine):
        assert 0.4 <= f / c <= 0.6
    assert fine[0] <= 0.02 * kappa and fine[1] <= 0.1 * kappa  # O(kappa eta) at eta = 0.01


@pytest.mark.claim("EMA-feedback")
@pytest.mark.parametrize("kappa", [2, 4, 8])
def test_teeth_keeping_rho_leaves_an_order_one_gap(kappa):
    """Without the rule the scaled run converges to ANOTHER limit (teacher rate
    BETA_T / kappa): halving eta does not shrink the gap, which stays above 0.05."""
    coarse, fine = errors(0.02, kappa, False), errors(0.01, kappa, False)
    print(f"\nkappa {kappa}, rho kept: mean error {coarse[0]:.2e} -> {fine[0]:.2e}")
    assert fine[0] > 0.05 and fine[0] > 0.8 * coarse[0]


@pytest.mark.claim("EMA-feedback")
def test_the_feedback_is_what_makes_the_student_depend_on_the_teachers_decay():
    """With gamma = 0 the student's moments do not depend on the EMA decay at all (the
    setting of EMA-scale); with gamma > 0 keeping rho moves the STUDENT's mean by an
    amount that does not vanish as eta -> 0 (the SDE with teacher rate BETA_T / kappa)."""
    base = scaled_run(0.01, 4, True, gamma=0.0)
    other = scaled_run(0.01, 4, False, gamma=0.0)
    assert np.array_equal(base.mean_w, other.mean_w) and np.array_equal(base.var_w, other.var_w)
    mean_rule, _ = sde_moments(GAMMA, BETA_T, 0.0, T_END)
    mean_kept, _ = sde_moments(GAMMA, BETA_T / 4, 0.0, T_END)
    kept = scaled_run(0.005, 4, False)
    assert abs(mean_rule[0] - mean_kept[0]) > 0.05
    assert abs(kept.mean_w[-1, 0] - mean_kept[0]) < 0.2 * abs(mean_rule[0] - mean_kept[0])


@pytest.mark.claim("EMA-feedback")
@pytest.mark.skipif(JIT_DISABLED, reason="thousands of step-API runs; compiled == plain "
                    "Python is checked in test_jit.py")
def test_theory_with_feedback_matches_monte_carlo_of_the_step_api():
    """refimpl.theory's recursion with ema_feedback against 3000 runs of
    EMA(SGD).step with the teacher in the oracle: the means within 4 standard errors,
    the variances within a chi-square 99.99 % interval."""
    h, c = np.array([1.0, 0.1]), np.array([1.0, 2.0])
    prob = NoisyQuadratic(h, c=c, batch_size=4, w_star=np.array([0.5, -0.3]))
    opt = EMA(SGD(lr=0.05), decay=0.9)
    w0, steps, runs = np.array([1.0, 1.0]), 30, 3000
    exact = theory.moments(prob, opt, w0=w0, steps=steps, ema_feedback=GAMMA)
    noise = prob.draw_noise(steps * runs, 5).reshape(runs, steps, 2)
    W, Z = np.empty((runs, 2)), np.empty((runs, 2))
    for k in range(runs):
        w, state = w0.copy(), opt.init(w0)
        for t in range(steps):
            teacher, base = opt.average(state), prob.grad_fn(noise[k, t])

            def oracle(v, base=base, teacher=teacher):
                loss, g = base(v)
                return loss + 0.5 * GAMMA * float(np.sum((v - teacher) ** 2)), g + GAMMA * (v - teacher)

            w, state, _ = opt.step(w, state, oracle)
        W[k], Z[k] = w, opt.average(state)
    lo, hi = scipy.stats.chi2.ppf([5e-5, 1 - 5e-5], runs - 1) / (runs - 1)
    for x, mean, var in ((W, exact.mean_w[-1], exact.var_w[-1]),
                         (Z, exact.mean_avg[-1], exact.var_avg[-1])):
        assert np.all(np.abs(x.mean(axis=0) - mean) <= 4 * np.sqrt(var / runs))
        assert np.all((lo <= x.var(axis=0, ddof=1) / var) & (x.var(axis=0, ddof=1) / var <= hi))


@pytest.mark.claim("EMA-feedback")
def test_teeth_the_monte_carlo_check_rejects_the_recursion_without_feedback():
    """The same Monte Carlo comparison fails against the moments WITHOUT the feedback term
    (the coupling moves the mean by far more than 4 standard errors)."""
    h, c = np.array([1.0, 0.1]), np.array([1.0, 2.0])
    prob = NoisyQuadratic(h, c=c, batch_size=4, w_star=np.array([0.5, -0.3]))
    opt = EMA(SGD(lr=0.05), decay=0.9)
    w0, steps, runs = np.array([1.0, 1.0]), 30, 400
    wrong = theory.moments(prob, opt, w0=w0, steps=steps)
    noise = prob.draw_noise(steps * runs, 5).reshape(runs, steps, 2)
    W = np.empty((runs, 2))
    for k in range(runs):
        w, state = w0.copy(), opt.init(w0)
        for t in range(steps):
            teacher, base = opt.average(state), prob.grad_fn(noise[k, t])
            w, state, _ = opt.step(w, state, lambda v, base=base, teacher=teacher: (
                base(v)[0], base(v)[1] + GAMMA * (v - teacher)))
        W[k] = w
    assert np.any(np.abs(W.mean(axis=0) - wrong.mean_w[-1]) > 4 * np.sqrt(wrong.var_w[-1] / runs))


def test_feedback_is_refused_where_it_has_no_meaning():
    prob = NoisyQuadratic(np.array([1.0]))
    with pytest.raises(ValueError, match="ema_feedback needs an EMA teacher"):
        theory.moments(prob, SGD(lr=0.1), w0=np.ones(1), steps=2, ema_feedback=0.5)
    with pytest.raises(ValueError, match="start='zeros'"):
        theory.moments(prob, EMA(SGD(lr=0.1), decay=0.9, start="zeros"), w0=np.ones(1),
                       steps=2, ema_feedback=0.5)
    with pytest.raises(ValueError, match="ema_feedback"):
        theory.moments(prob, EMA(SGD(lr=0.1), decay=0.9), w0=np.ones(1), steps=2,
                       ema_feedback=-1.0)
    with pytest.raises((ValueError, TypeError), match="ema_feedback"):
        theory.moments(prob, EMA(SGD(lr=0.1), decay=0.9), w0=np.ones(1), steps=2,
                       ema_feedback=float("nan"))
    # a Switch EMA teacher is accepted (its switches copy the teacher into the student)
    theory.moments(prob, SwitchEMA(SGD(lr=0.1), decay=0.9, switch_unit="step",
                                   switch_every=3), w0=np.ones(1), steps=6, ema_feedback=0.5)
