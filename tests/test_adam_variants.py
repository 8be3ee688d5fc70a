"""AMSGrad (torch's raw maximum and optax's debiased maximum) and AdamW (decoupled weight
decay): hand-computed steps with closed-form values, scalar transcriptions of the peers'
code, the reductions to Adam, the jitted loop and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refimpl as r
from refimpl import Adam, AdamW
from refimpl.optimizers import AdamState
from tests.conftest import vectors

EPS = np.finfo(np.float64).eps

decays = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.999]), st.floats(0.0, 0.9999))


def torch_adam_step(w, m, v, v_max, g, t, lr, beta1, beta2, eps, weight_decay, maximize,
                    decoupled, amsgrad):
    """Scalar transcription of torch.optim.Adam's ``_single_tensor_adam`` (torch 2.13,
    torch/optim/adam.py lines 397-546): maximize, then decoupled decay
    (``param.mul_(1 - lr * wd)``) or coupled L2, the moments, and for amsgrad
    ``torch.maximum(max_exp_avg_sq, exp_avg_sq)`` divided by the bias correction.

    One deliberate difference: torch writes ``bias_correction2 ** 0.5``, a C ``pow``,
    which is not correctly rounded everywhere. Fuzzing found beta2 = 0.009765625, t = 8:
    1 - beta2^8 = 1 - 2^-53 and ``** 0.5`` gives 1.0 where the correctly rounded square
    root is 1 - 2^-53 (glibc). refimpl uses ``math.sqrt`` (correctly rounded on every
    platform, so its bits do not depend on the libm); so does this transcription."""
    bias_correction1 = 1 - beta1 ** float(t)
    bias_correction2 = 1 - beta2 ** float(t)
    step_size = lr / bias_correction1
    bias_correction2_sqrt = math.sqrt(bias_correction2)
    w, m, v, v_max = list(w), list(m), list(v), list(v_max)
    for i in range(len(w)):
        grad = -g[i] if maximize else g[i]
        if weight_decay != 0:
            if decoupled:
                w[i] = w[i] * (1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * w[i]
        m[i] = beta1 * m[i] + (1 - beta1) * grad
        v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
        if amsgrad:
            v_max[i] = max(v_max[i], v[i])
            denom = math.sqrt(v_max[i]) / bias_correction2_sqrt + eps
        else:
            denom = math.sqrt(v[i]) / bias_correction2_sqrt + eps
        w[i] = w[i] - step_size * (m[i] / denom)
    return w, m, v, v_max


def optax_amsgrad_step(w, mu, nu, nu_max, g, t, lr, b1, b2, eps):
    """Scalar transcription of optax.amsgrad (optax 0.2.8, ``scale_by_amsgrad`` with its
    defaults, then ``scale_by_learning_rate``): the maximum of the DEBIASED nu."""
    w, mu, nu, nu_max = list(w), list(mu), list(nu), list(nu_max)
    for i in range(len(w)):
        mu[i] = (1 - b1) * g[i] + b1 * mu[i]
        nu[i] = (1 - b2) * g[i] ** 2 + b2 * nu[i]
        mu_hat = mu[i] / (1 - b1 ** t)
        nu_hat = nu[i] / (1 - b2 ** t)
        nu_max[i] = max(nu_max[i], nu_hat)
        w[i] = w[i] + (-lr) * (mu_hat / (math.sqrt(nu_max[i]) + eps))
    return w, mu, nu, nu_max


# ----------------------------------------------------------------- hand-computed steps

def test_amsgrad_forms_by_hand_after_the_second_moment_falls():
    """betas (0.5, 0.5), g1 = 2 then g2 = 0, lr = 1, eps = 2^-40 (negligible):
      step 1: m = 1, v = 2, 1 - b2 = 1/2: v / (1/2) = 4, every form's denominator is
        2 + eps and step size 1 / (1/2) = 2: w1 = w0 - 2 / (2 + eps), the same for all.
      step 2: m = 1/2, v = 1 (it FELL from 2), 1 - b2^2 = 3/4, step size 4/3:
        Adam           denom = sqrt(1) / sqrt(3/4)  = 2/sqrt(3):  step (2/3) sqrt(3)/2 = 1/sqrt(3)
        AMSGrad raw    denom = sqrt(2) / sqrt(3/4)  (torch keeps v_max = 2): step 1/sqrt(6)
        AMSGrad debiased denom = sqrt(max(4, 4/3)) = 2 (optax keeps v_hat = 4): step 1/3
    Three different second steps, each to 8 eps plus eps's own relative effect (2^-40)."""
    w0, g1, g2 = np.array([0.0]), np.array([2.0]), np.array([0.0])
    expected = {None: 1 / math.sqrt(3), "raw": 1 / math.sqrt(6), "debiased": 1 / 3}
    seconds = {}
    for form, step2 in expected.items():
        opt = Adam(lr=1.0, beta1=0.5, beta2=0.5, eps=2.0 ** -40, amsgrad=form is not None,
                   amsgrad_max=form or "raw")
        w1, s1 = opt.update(w0, opt.init(w0), g1)
        assert w1[0] == -(2.0 / (2.0 + 2.0 ** -40))
        w2, s2 = opt.update(w1, s1, g2)
        seconds[form] = w1[0] - w2[0]
        assert seconds[form] == pytest.approx(step2, rel=8 * EPS + 2.0 ** -39)
        if form == "raw":
            assert s2.v_max[0] == 2.0 and s2.v[0] == 1.0
        if form == "debiased":
            assert s2.v_max[0] == 4.0
        if form is None:
            assert s2.v_max[0] == 0.0  # untouched without AMSGrad
    assert len(set(seconds.values())) == 3


def test_adamw_first_step_by_hand():
    """AdamW, g = 0, w0 = 2, wd = 1e-2, lr = 1e-3: m = v = 0, so Adam's part is
    0 / (0 + eps) = 0 and only the decay acts: w1 = 2 (1 - 1e-5) = 1.99998 (to 2 eps).
    Coupled L2 would move by lr * 0.02 / (0.02 + 1e-8), about 1e-3 (50 times more)."""
    w1, s1 = AdamW(lr=1e-3).update(np.array([2.0]), AdamW().init(np.array([2.0])),
                                   np.array([0.0]))
    assert w1[0] == pytest.approx(1.99998, rel=2 * EPS)
    assert s1.m[0] == 0.0 and s1.v[0] == 0.0
    coupled, _ = Adam(lr=1e-3, weight_decay=1e-2).update(np.array([2.0]),
                                                         Adam().init(np.array([2.0])),
                                                         np.array([0.0]))
    assert 2.0 - coupled[0] > 40 * (2.0 - w1[0])


def test_adamw_decay_uses_the_step_learning_rate_and_is_not_negated_by_maximize():
    """Two steps with lr = (0.5, 0.25), wd = 0.5, g = 0, maximize=True: the decay
    multiplies by 1 - 0.25 then 1 - 0.125 (the rate of each step; an exact product in
    binary) and still shrinks w: w2 = 8 * 0.75 * 0.875 = 5.25 exactly."""
    opt = AdamW(lr=np.array([0.5, 0.25]), weight_decay=0.5, maximize=True)
    w, s = np.array([8.0]), opt.init(np.array([8.0]))
    w, s = opt.update(w, s, np.array([0.0]))
    assert w[0] == 6.0
    w, s = opt.update(w, s, np.array([0.0]))
    assert w[0] == 5.25


# -------------------------------------------------------------- peers' transcriptions

@given(steps=st.integers(1, 10), data=st.data(), lr=st.floats(0.0, 1.0), beta1=decays,
       beta2=decays, eps=st.sampled_from([1e-8, 1e-3, 1.0]), weight_decay=st.floats(0.0, 1.0),
       maximize=st.booleans(), decoupled=st.booleans(), amsgrad=st.booleans())
def test_equals_torch_transcription_bitwise(steps, data, lr, beta1, beta2, eps, weight_decay,
                                            maximize, decoupled, amsgrad):
    """Every combination of maximize, coupled or decoupled decay and raw AMSGrad equals
    the transcription of torch's loop bit for bit (refimpl computes 1 - lr wd once per
    step, torch once per parameter: the same float)."""
    d = data.draw(st.integers(1, 5))
    w = data.draw(vectors(d, d, -10, 10))
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
               maximize=maximize, decoupled_weight_decay=decoupled, amsgrad=amsgrad)
    state = opt.init(w)
    ref = (w.tolist(), [0.0] * d, [0.0] * d, [0.0] * d)
    for t in range(1, steps + 1):
        g = data.draw(vectors(d, d))
        ref = torch_adam_step(*ref, g.tolist(), t, lr, beta1, beta2, eps, weight_decay,
                              maximize, decoupled, amsgrad)
        if not all(math.isfinite(x) for x in ref[0]):
            with pytest.raises(FloatingPointError):
                opt.update(w, state, g)
            return
        w, state = opt.update(w, state, g)
        assert np.array_equal(w, ref[0]) and np.array_equal(state.m, ref[1])
        assert np.array_equal(state.v, ref[2])
        if amsgrad:
            assert np.array_equal(state.v_max, ref[3])


@given(steps=st.integers(1, 12), data=st.data(), beta1=decays, beta2=decays)
def test_debiased_amsgrad_equals_optax_transcription(steps, data, beta1, beta2):
    """amsgrad_max="debiased" is optax.amsgrad: same iterates to rounding. optax divides
    mu by its correction and scales by -lr last; refimpl multiplies m / denom by
    lr / (1 - b1^t): a few roundings apart per step, amplified by at most the
    1 / (1 - b2^t) of the debiasing; bound: 64 eps per step relative to the largest
    |w| seen plus the total displacement."""
    d = data.draw(st.integers(1, 4))
    w = data.draw(vectors(d, d, -10, 10))
    opt = Adam(lr=0.1, beta1=beta1, beta2=beta2, eps=1e-8, amsgrad=True,
               amsgrad_max="debiased")
    state = opt.init(w)
    ref = (w.tolist(), [0.0] * d, [0.0] * d, [0.0] * d)
    scale = float(np.max(np.abs(w))) + 0.1 * steps
    for t in range(1, steps + 1):
        g = data.draw(vectors(d, d, -100, 100))
        ref = optax_amsgrad_step(*ref, g.tolist(), t, 0.1, beta1, beta2, 1e-8)
        w, state = opt.update(w, state, g)
        np.testing.assert_allclose(w, ref[0], rtol=0, atol=64 * t * EPS * scale)


def test_torch_pow_half_is_not_always_the_correctly_rounded_sqrt():
    """Why the transcription above uses math.sqrt: at 1 - 2^-53 the exact square root is
    just below the midpoint 1 - 2^-54 between 1 - 2^-53 and 1, so the correctly rounded
    result is 1 - 2^-53; Python's (C's) ``** 0.5`` may return 1.0 (it does with glibc).
    refimpl's Adam uses math.sqrt and gets the correctly rounded value."""
    x = 1.0 - 2.0 ** -53
    assert math.sqrt(x) == x  # correctly rounded (IEEE 754 requires it of sqrt)
    assert 1.0 - 0.009765625 ** 8.0 == x  # the bias correction the fuzzer found
    # seven zero gradients, then g = 1 at t = 8 (beta1 = 0: m = 1, v = 1 - beta2)
    opt = Adam(lr=1.0, beta1=0.0, beta2=0.009765625, eps=1e-8)
    w, s = np.array([1.0]), opt.init(np.array([1.0]))
    for g in [0.0] * 7 + [1.0]:
        w, s = opt.update(w, s, np.array([g]))
    v = (1.0 - 0.009765625) * 1.0 * 1.0
    assert w[0] == 1.0 - 1.0 * (1.0 / (math.sqrt(v) / math.sqrt(x) + 1e-8))


def test_amsgrad_forms_differ_from_each_other_and_from_adam_on_a_falling_gradient():
    """beta2 = 0.5, a gradient that jumps and then falls (10, then 0.1 for five steps): all three
    second steps differ by more than 1e-3 relative; torch's and optax's forms are NOT
    two roundings of one algorithm."""
    w0 = np.array([1.0])
    runs = {}
    for key, kw in {"adam": {}, "raw": dict(amsgrad=True),
                    "debiased": dict(amsgrad=True, amsgrad_max="debiased")}.items():
        opt = Adam(lr=0.01, beta2=0.5, **kw)
        w, s = w0, opt.init(w0)
        for g in [10.0] + [0.1] * 5:
            w, s = opt.update(w, s, np.array([g]))
        runs[key] = w[0] - w0[0]
    values = sorted(runs.values())
    assert all(abs(b - a) > 1e-3 * abs(b) for a, b in zip(values, values[1:]))


# -------------------------------------------------------------------------- reductions

@given(c=st.floats(1e-3, 1e3), beta1=decays, beta2=decays, sign=st.sampled_from([-1.0, 1.0]))
def test_raw_amsgrad_is_adam_while_v_never_decreases(c, beta1, beta2, sign):
    """Gradients doubling every step, g_t = c 2^t: v_t = b2 v + (1 - b2) g_t^2 with
    v_{t-1} <= g_{t-1}^2 = g_t^2 / 4, so v never decreases, max(v_max, v) = v and
    torch's AMSGrad is Adam bit for bit (checked on the computed v, too)."""
    w0 = np.array([0.5, -0.25])
    adam, ams = Adam(lr=0.01, beta1=beta1, beta2=beta2), Adam(lr=0.01, beta1=beta1,
                                                            beta2=beta2, amsgrad=True)
    wa, sa, wb, sb = w0, adam.init(w0), w0, ams.init(w0)
    previous = np.zeros(2)
    for t in range(1, 9):
        g = np.array([c, -c]) * sign * 2.0 ** t
        wa, sa = adam.update(wa, sa, g)
        wb, sb = ams.update(wb, sb, g)
        assert np.all(sa.v >= previous)
        previous = sa.v
        assert np.array_equal(wa, wb) and np.array_equal(sb.v_max, sa.v)


@given(w=vectors(1, 5), data=st.data(), amsgrad=st.booleans())
def test_adamw_with_zero_decay_is_adam(w, data, amsgrad):
    """weight_decay = 0: AdamW is Adam bit for bit (torch skips the decay entirely)."""
    a, b = AdamW(lr=0.01, weight_decay=0.0, amsgrad=amsgrad), Adam(lr=0.01, amsgrad=amsgrad)
    sa, sb, wa, wb = a.init(w), b.init(w), w, w
    for _ in range(4):
        g = data.draw(vectors(w.shape[0], w.shape[0]))
        wa, sa = a.update(wa, sa, g)
        wb, sb = b.update(wb, sb, g)
    assert np.array_equal(wa, wb)


def test_adamw_decoupled_decay_equals_shrinking_then_adam_step():
    """AdamW = shrink w by (1 - lr wd), then Adam's wd-free step from the shrunk w with
    the same moments: checked against Adam(weight_decay=0) stepping from w (1 - lr wd)."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal(4)
    opt, plain = AdamW(lr=0.05, weight_decay=0.3), Adam(lr=0.05)
    s, sp = opt.init(w), plain.init(w)
    for _ in range(5):
        g = rng.standard_normal(4)
        w_new, s = opt.update(w, s, g)
        expected, sp = plain.update(w * (1.0 - 0.05 * 0.3), sp, g)
        assert np.array_equal(w_new, expected)
        w = w_new


def test_reset_clears_the_amsgrad_maximum():
    opt = Adam(amsgrad=True)
    w = np.array([1.0, 2.0])
    _, s = opt.update(w, opt.init(w), np.array([3.0, -1.0]))
    assert np.all(s.v_max > 0)
    fresh = opt.reset(s)
    assert np.all(fresh.v_max == 0) and fresh.count == 0 and fresh.step == 1


# ------------------------------------------------------------------------- the loop

@pytest.mark.parametrize("opt", [
    Adam(lr=0.05, amsgrad=True), Adam(lr=0.05, amsgrad=True, amsgrad_max="debiased"),
    AdamW(lr=0.05, weight_decay=0.2), AdamW(lr=0.05, amsgrad=True, maximize=True),
    r.SwitchEMA(r.StableSAM(AdamW(lr=0.05, amsgrad=True)), decay=0.5, switch_unit="step",
                switch_every=3, on_switch="reset"),
], ids=["amsgrad", "amsgrad-debiased", "adamw", "adamw-amsgrad-maximize", "sema-stable-adamw"])
def test_train_runs_the_new_options_as_the_step_api(opt):
    from tests.helpers import hand_run
    problem = r.NoisyQuadratic(np.array([1.0, 0.1, 3.0]), batch_size=2)
    w0 = np.array([1.0, -1.0, 0.5])
    rec = r.train(problem, opt, w0=w0, steps=30, seed=1, record_params=True)
    params = hand_run(problem, opt, w0, 30, seed=1)[0]
    assert np.array_equal(rec.params, params)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("name,bad", [("amsgrad", 1), ("amsgrad", "raw"),
                                      ("decoupled_weight_decay", None),
                                      ("decoupled_weight_decay", 0)])
def test_new_flags_must_be_bools(name, bad):
    with pytest.raises(TypeError, match=name):
        Adam(**{name: bad})


@pytest.mark.parametrize("bad", ["torch", "max", "", None, True])
def test_amsgrad_max_names_its_choices(bad):
    with pytest.raises(ValueError, match="amsgrad_max must be one of 'raw', 'debiased'"):
        Adam(amsgrad=True, amsgrad_max=bad)


def test_adamw_must_stay_decoupled_and_validates_weight_decay():
    with pytest.raises(ValueError, match="decoupled_weight_decay must be True for AdamW"):
        AdamW(decoupled_weight_decay=False)
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(weight_decay=-0.1)
    assert AdamW().weight_decay == 1e-2  # torch.optim.AdamW's default


def test_state_without_v_max_or_with_a_bad_one_is_rejected():
    opt = Adam(amsgrad=True)
    w = np.ones(3)
    with pytest.raises(ValueError, match=r"state\.v_max must have length 3"):
        opt.update(w, AdamState(0, 0, np.zeros(3), np.zeros(3), np.zeros(2)), np.ones(3))
    with pytest.raises(ValueError, match=r"state\.v_max must be finite"):
        opt.update(w, AdamState(0, 0, np.zeros(3), np.zeros(3), np.array([0, np.inf, 0.0])),
                   np.ones(3))
