"""The jitted training loop: bit-for-bit equal to stepping by hand, reproducible, and
strict about its inputs."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl as r
from refimpl.optimizers import AVERAGERS
from refimpl.scaling import scale_optimizer
from tests.helpers import hand_run

NQM = r.NoisyQuadratic(np.array([1.0, 0.1, 3.0]), batch_size=4, w_star=np.array([0.5, -0.5, 0.0]))
QUAD = r.Quadratic(np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.1], [0.0, 0.1, 0.5]]))
W0 = np.array([1.0, -1.0, 0.5])
LR_SCHEDULE = np.linspace(0.1, 0.01, 60)

BASES = {
    "sgd": r.SGD(lr=0.1),
    "sgd-momentum-damp": r.SGD(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "sgd-nesterov-schedule": r.SGD(lr=LR_SCHEDULE, momentum=0.9, nesterov=True),
    "sgd-optax-maximize": r.SGD(lr=0.05, momentum=0.5, convention="optax", maximize=True),
    "sgd-keras-nesterov": r.SGD(lr=0.05, momentum=0.5, convention="keras", nesterov=True),
    "adam": r.Adam(lr=0.01, weight_decay=0.01),
    "adam-amsgrad-maximize": r.Adam(lr=0.01, weight_decay=0.01, amsgrad=True, maximize=True),
    "adamw-amsgrad-debiased": r.AdamW(lr=LR_SCHEDULE, weight_decay=0.1, amsgrad=True,
                                      amsgrad_max="debiased"),
    "fame-official": r.FAME(lr=0.01),
    "fame-official-exact": r.FAME(lr=0.01, beta3=0.3, beta4=0.7, debias="exact"),
    "fame-full": r.FAME(lr=0.01, variant="full"),
    "fame-full-adam-debias": r.FAME(lr=0.01, variant="full", debias="adam", maximize=True),
}
WRAPPERS = {
    "plain": lambda b: b,
    "sam": lambda b: r.SAM(b, rho=0.05),
    "usam": lambda b: r.SAM(b, rho=0.05, ascent="unnormalized"),
    "asam": lambda b: r.SAM(b, rho=0.05, ascent="adaptive"),
    "stable": lambda b: r.StableSAM(b, rho=0.05),
    "stable-adaptive": lambda b: r.StableSAM(b, rho=0.05, ascent="adaptive", eps=0.0),
    "usam-adaptive": lambda b: r.SAM(b, rho=0.05, ascent="adaptive_unnormalized"),
    "stable-adaptive-unnormalized": lambda b: r.StableSAM(b, rho=0.05,
                                                          ascent="adaptive_unnormalized"),
    "ema-first-after-2": lambda b: r.EMA(b, decay=0.9, start="first", update_after_step=2),
    "sema-first-every-3": lambda b: r.SwitchEMA(b, decay=0.8, start="first", update_every=3,
                                                switch_unit="step", switch_every=4),
    "swa-epoch-start-1": lambda b: r.SWA(r.SAM(b), swa_start=1),
    "swa-steps-every-3": lambda b: r.SWA(b, swa_every=3, swa_unit="step", swa_start=10),
    "lookahead": lambda b: r.Lookahead(b, k=5, alpha=0.5),
    "lookahead-first-reset": lambda b: r.Lookahead(r.StableSAM(b), k=3, alpha=0.3, start="first",
                                                   on_sync="reset"),
    "ema-zeros-timm": lambda b: r.EMA(r.SAM(b), decay=0.9, start="zeros", warmup="timm",
                                      update_after_step=3),
    "ema-every-3": lambda b: r.EMA(b, decay=0.8, update_every=3, warmup="exp", warmup_steps=10),
    "sema-epoch-reset": lambda b: r.SwitchEMA(b, decay=0.8, on_switch="reset", warmup="linear",
                                              warmup_steps=5, switch_every=2, switch_start=1),
    "sema-step-zeros": lambda b: r.SwitchEMA(r.StableSAM(b), decay=0.7, start="zeros",
                                             switch_unit="step", switch_every=5),
}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # no-JIT divergence
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("base", list(BASES))
def test_train_equals_hand_stepping_bit_for_bit(base, wrapper):
    """train() and the public step API run the same kernels in the same order. (Ascent
    with maximize=True on these convex problems makes the adaptive USAM's cubic push
    w^2 g overflow: then both must stop at the same step with the same iterates.)"""
    opt = WRAPPERS[wrapper](BASES[base])
    for problem in (NQM, QUAD):
        try:
            params, losses, norms, evals, state = hand_run(problem, opt, W0, 60,
                                                           steps_per_epoch=7, seed=3)
        except FloatingPointError:
            prefix = _hand_prefix(problem, opt, 60)
            rec = r.train(problem, opt, w0=W0, steps=60, steps_per_epoch=7, seed=3,
                          record_params=True, on_divergence="stop")
            assert rec.diverged and np.array_equal(rec.params, prefix)
            continue
        rec = r.train(problem, opt, w0=W0, steps=60, steps_per_epoch=7, seed=3,
                      record_params=True)
        assert np.array_equal(rec.params, params)
        assert np.array_equal(rec.losses, losses)
        assert np.array_equal(rec.grad_norms, norms)
        assert rec.grad_evals == evals
        assert np.array_equal(rec.w, params[-1])
        if isinstance(opt, AVERAGERS):
            assert np.array_equal(rec.average, opt.average(state))
            assert np.array_equal(rec.averages[-1], rec.average)
        else:
            assert rec.average is None and rec.averages is None
        inner = state.inner if isinstance(opt, AVERAGERS) else state
        inner = inner.inner if isinstance(inner, r.optimizers.SAMState) else inner
        assert rec.v_clipped == getattr(inner, "v_clipped", 0)


def _hand_prefix(problem, opt, steps):
    """The iterates of the step API up to (not including) the step that raises."""
    state, w = opt.init(W0), W0
    noise = problem.draw_noise(steps, 3)
    params = [W0]
    for t in range(steps):
        try:
            w, state, _ = opt.step(w, state, problem.grad_fn(None if noise is None else noise[t]),
                                   epoch_end=(t + 1) % 7 == 0)
        except FloatingPointError:
            return np.array(params)
        params.append(w)
    raise AssertionError("the step API did not diverge on the second run")


def test_averages_history_matches_hand_stepping():
    opt = r.SwitchEMA(r.SGD(lr=0.1, momentum=0.9), decay=0.9, start="zeros")
    rec = r.train(NQM, opt, w0=W0, steps=30, steps_per_epoch=4, record_params=True)
    state, w = opt.init(W0), W0
    noise = NQM.draw_noise(30, 0)
    assert np.array_equal(rec.averages[0], opt.average(state))
    for t in range(30):
        w, state, _ = opt.step(w, state, NQM.grad_fn(noise[t]), epoch_end=(t + 1) % 4 == 0)
        assert np.array_equal(rec.averages[t + 1], opt.average(state))


def test_same_seed_same_run_and_other_seed_differs():
    opt = r.EMA(r.StableSAM(r.SGD(lr=0.05, momentum=0.9)), decay=0.9)
    a = r.train(NQM, opt, w0=W0, steps=50, seed=11, record_params=True)
    b = r.train(NQM, opt, w0=W0, steps=50, seed=11, record_params=True)
    c = r.train(NQM, opt, w0=W0, steps=50, seed=12, record_params=True)
    assert np.array_equal(a.params, b.params) and np.array_equal(a.losses, b.losses)
    assert not np.array_equal(a.params, c.params)
    assert a.seed == 11


def test_grad_evals_count():
    assert r.train(QUAD, r.SGD(lr=0.1), w0=W0, steps=17).grad_evals == 17
    assert r.train(QUAD, r.SAM(r.SGD(lr=0.1)), w0=W0, steps=17).grad_evals == 34
    assert r.train(QUAD, r.EMA(r.StableSAM(r.Adam()), decay=0.9), w0=W0, steps=5).grad_evals == 10


def test_record_shapes_and_read_only():
    rec = r.train(NQM, r.EMA(r.SGD(lr=0.1), decay=0.9), w0=W0, steps=12, record_params=True)
    assert rec.losses.shape == (12,) and rec.grad_norms.shape == (12,)
    assert rec.params.shape == (13, 3) and rec.averages.shape == (13, 3)
    assert np.array_equal(rec.params[0], W0) and np.array_equal(rec.averages[0], W0)
    with pytest.raises(ValueError):
        rec.losses[0] = 1.0
    small = r.train(NQM, r.SGD(lr=0.1), w0=W0, steps=12)
    assert small.params is None and small.averages is None
    assert np.array_equal(small.w, r.train(NQM, r.SGD(lr=0.1), w0=W0, steps=12,
                                           record_params=True).params[-1])


def test_ema_does_not_change_the_iterates():
    """EMA without a switch never feeds back: its iterates are the base optimizer's."""
    base = r.SGD(lr=0.1, momentum=0.9)
    a = r.train(NQM, base, w0=W0, steps=40, record_params=True)
    b = r.train(NQM, r.EMA(base, decay=0.95), w0=W0, steps=40, record_params=True)
    assert np.array_equal(a.params, b.params)


def test_epochs_equal_steps():
    opt = r.SwitchEMA(r.SGD(lr=0.1), decay=0.9)
    a = r.train(NQM, opt, w0=W0, epochs=6, steps_per_epoch=5, record_params=True)
    b = r.train(NQM, opt, w0=W0, steps=30, steps_per_epoch=5, record_params=True)
    assert a.steps == 30 and np.array_equal(a.params, b.params)


def test_switch_points_in_the_loop():
    """With decay 0.5 the average differs from w except right after a switch."""
    opt = r.SwitchEMA(r.SGD(lr=0.1, momentum=0.9), decay=0.5, switch_every=2)
    rec = r.train(NQM, opt, w0=W0, steps=24, steps_per_epoch=4, record_params=True)
    switched = [n for n in range(1, 25) if np.array_equal(rec.params[n], rec.averages[n])]
    assert switched == [8, 16, 24]  # ends of epochs 2, 4, 6


def test_w0_not_mutated_and_zero_steps():
    w0 = W0.copy()
    rec = r.train(NQM, r.SGD(lr=0.1), w0=w0, steps=0, record_params=True)
    assert np.array_equal(w0, W0)
    assert rec.steps == 0 and rec.losses.shape == (0,) and np.array_equal(rec.w, W0)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NUMBA_DISABLE_JIT=1
def test_divergence_raises_or_stops():
    """GD on lam = 3 diverges for lr > 2/3: the loop names the step or returns the prefix."""
    problem = r.Quadratic(np.array([[3.0]]))
    opt = r.SGD(lr=1.0)  # w <- (1 - 3) w = -2 w: |w| doubles every step, overflows ~ step 1024
    with pytest.raises(FloatingPointError, match="diverged at step"):
        r.train(problem, opt, w0=np.array([1.0]), steps=3000)
    rec = r.train(problem, opt, w0=np.array([1.0]), steps=3000, on_divergence="stop",
                  record_params=True)
    assert rec.diverged and 0 < rec.steps < 3000
    assert np.all(np.isfinite(rec.losses)) and np.all(np.isfinite(rec.params))
    assert rec.params.shape == (rec.steps + 1, 1) and rec.losses.shape == (rec.steps,)
    assert np.array_equal(rec.w, rec.params[-1])
    # without recorded params the final w is still the last finite iterate
    assert np.array_equal(r.train(problem, opt, w0=np.array([1.0]), steps=3000,
                                  on_divergence="stop").w, rec.w)
    # the exact iterates are w_t = (-2)^t until the loss overflows
    assert np.array_equal(rec.params[:50, 0], (-2.0) ** np.arange(50))
    # stepping by hand stops at the same step with FloatingPointError
    params, *_ = hand_run(problem, opt, np.array([1.0]), rec.steps)
    assert np.array_equal(params, rec.params)
    state, w = opt.init(np.array([1.0])), rec.w
    with pytest.raises(FloatingPointError):
        for _ in range(3):
            w, state, _ = opt.step(w, state, problem.grad_fn())


def test_train_with_scaled_optimizer_runs_fewer_steps():
    """Smoke of the scaling helper through the loop: kappa = 2 halves the step count
    at the same training time; the exact law is the theory issue's EMA-scale."""
    opt = r.EMA(r.SGD(lr=0.01), decay=0.99)
    scaled = scale_optimizer(opt, 2)
    a = r.train(r.Quadratic(np.eye(2)), opt, w0=np.ones(2), steps=200)
    b = r.train(r.Quadratic(np.eye(2)), scaled, w0=np.ones(2), steps=100)
    # deterministic GD: w_t = (1 - lr)^t; with kappa = 2: (1 - 2 lr)^(t/2), O(lr) apart
    assert abs(a.w[0] - 0.99 ** 200) < 1e-12 and abs(b.w[0] - 0.98 ** 100) < 1e-12
    assert abs(a.average[0] - b.average[0]) < 0.05 * a.average[0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=None), "exactly one of steps"),
    (dict(steps=5, epochs=1, steps_per_epoch=5), "exactly one of steps"),
    (dict(steps=None, epochs=3), "steps_per_epoch"),
    (dict(steps=-1), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(steps=5, seed=-1), "seed"),
    (dict(steps=5, steps_per_epoch=0), "steps_per_epoch"),
    (dict(steps=5, record_params=1), "record_params"),
    (dict(steps=5, on_divergence="ignore"), "on_divergence"),
])
def test_train_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        r.train(NQM, r.SGD(lr=0.1), w0=W0, **kwargs)


def test_train_rejects_bad_problem_optimizer_and_w0():
    with pytest.raises(TypeError, match="problem"):
        r.train(object(), r.SGD(), w0=W0, steps=1)
    with pytest.raises(TypeError, match="optimizer"):
        r.train(NQM, object(), w0=W0, steps=1)
    with pytest.raises(ValueError, match="w0"):
        r.train(NQM, r.SGD(), w0=np.ones(2), steps=1)
    with pytest.raises(TypeError, match="w0"):
        r.train(NQM, r.SGD(), w0=np.ones(3, dtype=np.float32), steps=1)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        r.train(NQM, r.SwitchEMA(r.SGD()), w0=W0, steps=10)
    with pytest.raises(ValueError, match="schedule has 60 entries"):
        r.train(NQM, BASES["sgd-nesterov-schedule"], w0=W0, steps=61)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NUMBA_DISABLE_JIT=1
def test_overflowing_update_stops_with_the_last_finite_iterate():
    """Finite loss and gradient, but lr * g overflows: the loop stops at that step and
    hands back the iterate before it; the step API raises FloatingPointError."""
    problem = r.Quadratic(np.array([[1.0]]))
    opt = r.SGD(lr=1e300)
    w0 = np.array([1e10])  # g = 1e10, lr * g = inf
    rec = r.train(problem, opt, w0=w0, steps=5, on_divergence="stop")
    assert rec.diverged and rec.steps == 0 and np.array_equal(rec.w, w0)
    with pytest.raises(FloatingPointError, match="non-finite parameters"):
        opt.step(w0, opt.init(w0), problem.grad_fn())
