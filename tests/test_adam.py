"""Adam with coupled L2 (refimpl.optimizers.adam), in torch.optim.Adam's order of
operations: hand-computed steps, the first-step identity, the peers' differing
conventions (Keras eps-hat, AdamW decoupled decay, maximize order), the bias-correction
restart on reset(), per-step learning rates, validation and purity."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl import Adam, SGD
from refimpl.optimizers import AdamState
from tests.conftest import finite_floats, vectors

EPS = np.finfo(np.float64).eps

decays = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.999]), st.floats(0.0, 1.0, exclude_max=True))
eps_values = st.one_of(st.sampled_from([1e-8, 1e-12, 1.0]), st.floats(1e-12, 1e-2))


def ref_adam_step(w, m, v, g, t, lr, beta1, beta2, eps, weight_decay, maximize):
    """Independent scalar transcription of torch.optim.Adam's _single_tensor_adam
    (amsgrad off, textbook form of the first moment), on Python lists. t >= 1."""
    step_size = lr / (1.0 - beta1 ** float(t))
    bias2_sqrt = math.sqrt(1.0 - beta2 ** float(t))
    w, m, v = list(w), list(m), list(v)
    for i in range(len(w)):
        gi = -g[i] if maximize else g[i]          # torch: grad = -grad first ...
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]         # ... then grad.add(param, alpha=wd)
        m[i] = beta1 * m[i] + (1.0 - beta1) * gi
        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi
        denom = math.sqrt(v[i]) / bias2_sqrt + eps
        w[i] = w[i] - step_size * (m[i] / denom)
    return w, m, v


# ----------------------------------------------------------------------- hand-computed

def test_first_two_steps_by_hand():
    """lr 0.1, betas (0.9, 0.999), eps 1e-8, w0 = (1, -2, 0.5), g1 = (0.5, -4, 0),
    g2 = (1, 2, 0). Exact decimal arithmetic (40 digits) gives:
    step 1 (t=1): m = 0.1 g1 = (0.05, -0.4, 0), v = 0.001 g1^2 = (0.00025, 0.016, 0),
      v / (1 - 0.999) = g1^2, denom = |g1| + 1e-8, step size 0.1 / 0.1 = 1, so
      d1 = (0.05 / 0.50000001, -0.4 / 4.00000001, 0)
         = (0.099999998000000040, -0.099999999750000001, 0)
      w1 = (0.90000000199999996, -1.9000000002499999994, 0.5)
    step 2 (t=2): m = 0.9 m + 0.1 g2 = (0.145, -0.16, 0),
      v = 0.999 v + 0.001 g2^2 = (0.00124975, 0.019984, 0),
      v / (1 - 0.999^2) = (0.62518759379689845, 9.9969984992496248, 0),
      d2 = (0.1 / 0.19) m / (sqrt(v_hat) + 1e-8) = (0.096518201361491240, -0.026633703881804449, 0)
      w2 = (0.80348180063850872, -1.8733662963681955508, 0.5)
    The zero-gradient coordinate has m = v = 0, denom = eps, and does not move at all.
    Tolerance 4096 eps relative to the displacement: the decimal hyperparameters are
    not binary numbers and 1 - 0.999^2 = 0.002 magnifies their ~1e-16 representation
    and rounding errors about 500-fold."""
    getcontext().prec = 40
    opt = Adam(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    w0 = np.array([1.0, -2.0, 0.5])
    s0 = opt.init(w0)
    w1, s1 = opt.update(w0, s0, np.array([0.5, -4.0, 0.0]))
    w2, s2 = opt.update(w1, s1, np.array([1.0, 2.0, 0.0]))
    d1 = np.array([0.099999998000000040, -0.099999999750000001, 0.0])
    d2 = np.array([0.096518201361491240, -0.026633703881804449, 0.0])
    np.testing.assert_allclose(w0 - w1, d1, rtol=4096 * EPS, atol=0)
    np.testing.assert_allclose(w1 - w2, d2, rtol=4096 * EPS, atol=4 * EPS)
    np.testing.assert_allclose(w2, [0.80348180063850872, -1.8733662963681955508, 0.5],
                               rtol=8 * EPS, atol=0)
    np.testing.assert_allclose(s2.m, [0.145, -0.16, 0.0], rtol=8 * EPS)
    np.testing.assert_allclose(s2.v, [0.00124975, 0.019984, 0.0], rtol=64 * EPS)
    assert w1[2] == w2[2] == 0.5
    assert (s1.step, s1.count, s2.step, s2.count) == (1, 1, 2, 2)
    # the decimal values in the docstring, recomputed (documents where they come from)
    d = Decimal
    vhat = (d("0.999") * d("0.016") + d("0.001") * 4) / (1 - d("0.999") ** 2)
    disp = d("0.1") / d("0.19") * d("-0.16") / (vhat.sqrt() + d("1e-8"))
    assert abs(disp - d("-0.026633703881804449")) < d("1e-18")


@given(w=vectors(1, 6), data=st.data(), lr=st.floats(0.0, 10.0), beta1=decays,
       beta2=decays, eps=eps_values)
def test_first_step_is_lr_times_g_over_abs_g_plus_eps(w, data, lr, beta1, beta2, eps):
    """Step 1 (t = 1, weight decay 0), written out as refimpl computes it:
        m = (1 - b1) g,   v = (1 - b2) g * g,
        denom = sqrt(v) / sqrt(1 - b2) + eps,   w1 = w0 - (lr / (1 - b1)) * (m / denom)
    which is bit for bit what the code returns, and mathematically
    lr * g / (|g| + eps): each coordinate moves by about lr, whatever the betas. From
    w0 = 0 the displacement is checked against lr * g / (|g| + eps) to 16 eps relative
    (about six roundings, none amplified: 1 - b1**1 and 1 - b2 are the same floats on
    both sides; checked where the result is >= 1e-200, away from gradual underflow).
    Torch puts eps OUTSIDE the bias correction; see the Keras test."""
    g = data.draw(vectors(w.shape[0], w.shape[0]))
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    w1, s1 = opt.update(w, opt.init(w), g)
    c1, c2 = 1.0 - beta1, 1.0 - beta2
    for i in range(w.shape[0]):
        m = c1 * g[i]
        v = c2 * g[i] * g[i]
        denom = math.sqrt(v) / math.sqrt(c2) + eps
        assert w1[i] == w[i] - (lr / c1) * (m / denom)
        assert s1.m[i] == m and s1.v[i] == v
    z = np.zeros_like(w)
    disp = -opt.update(z, opt.init(z), g)[0]
    expected = lr * (g / (np.abs(g) + eps))
    normal = np.abs(expected) >= 1e-200  # keep every intermediate out of the subnormals
    np.testing.assert_allclose(disp[normal], expected[normal], rtol=16 * EPS, atol=0)
    assert np.all(disp[g == 0.0] == 0.0)


def test_eps_outside_bias_correction_not_keras_eps_hat():
    """Peer: tf.keras Adam uses Kingma & Ba's "epsilon hat" form,
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), w -= lr_t m / (sqrt(v) + eps), i.e. eps
    INSIDE the bias correction. With g = eps = 1e-8 on step 1:
      torch/refimpl: lr * 1e-8 / (1e-8 + 1e-8) = lr / 2
      keras:         lr * 1e-8 / (1e-8 + 1e-8 / sqrt(0.001)) = lr / 32.62 = 0.0307 lr."""
    opt = Adam(lr=1.0, eps=1e-8)
    w0 = np.zeros(1)
    w1, _ = opt.update(w0, opt.init(w0), np.array([1e-8]))
    np.testing.assert_allclose(-w1, [0.5], rtol=16 * EPS)
    keras = 1e-8 / (1e-8 + 1e-8 / math.sqrt(0.001))
    assert abs(-w1[0] - keras) > 0.4


# ------------------------------------------------------------------------- conventions

@given(steps=st.integers(1, 12), data=st.data(), lr=st.floats(0.0, 1.0), beta1=decays,
       beta2=decays, eps=eps_values, weight_decay=st.floats(0.0, 1.0), maximize=st.booleans())
def test_equals_torch_order_reference_bitwise(steps, data, lr, beta1, beta2, eps,
                                              weight_decay, maximize):
    """Many steps equal the scalar transcription of torch.optim.Adam bit for bit
    (maximize negates first, then coupled L2 adds wd * w). A diverging run (possible
    with b2 ~ 0 and b1 ~ 1) must raise FloatingPointError exactly when the reference
    leaves the finite numbers."""
    d = data.draw(st.integers(1, 6))
    w = data.draw(vectors(d, d, -10, 10))
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
               maximize=maximize)
    state = opt.init(w)
    rw, rm, rv = w.tolist(), [0.0] * d, [0.0] * d
    for t in range(1, steps + 1):
        g = data.draw(vectors(d, d))
        rw, rm, rv = ref_adam_step(rw, rm, rv, g.tolist(), t, lr, beta1, beta2, eps,
                                   weight_decay, maximize)
        if not all(math.isfinite(x) for x in rw):
            with pytest.raises(FloatingPointError):
                opt.update(w, state, g)
            return
        w, state = opt.update(w, state, g)
        assert np.array_equal(w, rw) and np.array_equal(state.m, rm) and np.array_equal(state.v, rv)
        assert state.step == state.count == t


def test_maximize_negates_before_weight_decay():
    """torch order: g <- -g, THEN g <- g + wd * w, so weight decay still shrinks w when
    maximizing. With g = 0, w = 1, wd = 0.1: effective gradient +0.1 and step 1 moves w
    by -lr * 0.1 / (0.1 + eps) ~ -lr (toward 0). A peer that negates after adding the
    decay (g <- -(g + wd w)) would move w AWAY from 0 by +lr."""
    opt = Adam(lr=0.01, weight_decay=0.1, maximize=True)
    w0 = np.array([1.0])
    w1, _ = opt.update(w0, opt.init(w0), np.array([0.0]))
    np.testing.assert_allclose(w1, [1.0 - 0.01 * 0.1 / (0.1 + 1e-8)], rtol=4 * EPS)


@given(w=vectors(1, 6), data=st.data(), weight_decay=st.floats(0.0, 1.0))
def test_maximize_equals_minimizing_the_negated_gradient(w, data, weight_decay):
    """maximize=True with gradient g is bitwise minimization with -g (negation is exact,
    and happens before the weight decay term)."""
    g = data.draw(vectors(w.shape[0], w.shape[0]))
    up = Adam(lr=0.01, weight_decay=weight_decay, maximize=True)
    down = Adam(lr=0.01, weight_decay=weight_decay)
    s_up, s_down = up.init(w), down.init(w)
    w_up = w_down = w
    for _ in range(3):
        w_up, s_up = up.update(w_up, s_up, g)
        w_down, s_down = down.update(w_down, s_down, -g)
    assert np.array_equal(w_up, w_down) and np.array_equal(s_up.m, s_down.m)


def test_weight_decay_is_coupled_l2_not_adamw():
    """Coupled L2 (torch.optim.Adam): wd * w joins the gradient and is normalized by
    sqrt(v), so with g = 0, w = 2, wd = 1e-2 the first step moves by
    lr * 0.02 / (0.02 + 1e-8) ~ lr = 1e-3. Peer torch.optim.AdamW (decoupled) would move
    by lr * wd * w = 2e-5 only."""
    opt = Adam(lr=1e-3, weight_decay=1e-2)
    w0 = np.array([2.0])
    w1, s1 = opt.update(w0, opt.init(w0), np.array([0.0]))
    np.testing.assert_allclose(w1, [2.0 - 1e-3 * 0.02 / (0.02 + 1e-8)], rtol=4 * EPS)
    assert s1.m[0] == (1.0 - 0.9) * (1e-2 * 2.0)


# ----------------------------------------------------------------- reset and schedules

def test_reset_restarts_bias_correction_but_not_the_schedule():
    """reset() zeroes m and v and restarts the bias-correction exponent t = count + 1,
    while `step` (the lr schedule index) keeps counting. After 3 steps and a reset, the
    4th step uses lr[3] = 0.4 and t = 1, so it equals a fresh Adam(lr=0.4) first step
    bit for bit and moves by 0.4 * g / (|g| + eps). A peer that kept t = 4 with fresh
    moments would move by 0.4 * (0.1 / (1 - 0.9^4)) / sqrt(0.001 / (1 - 0.999^4))
    = 0.4 * 0.2908 / 0.5004 = 0.58 * 0.4 per unit sign(g)."""
    lrs = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    opt = Adam(lr=lrs)
    w = np.array([1.0, -1.0])
    s = opt.init(w)
    for g in ([1.0, 2.0], [-3.0, 0.5], [2.0, 2.0]):
        w, s = opt.update(w, s, np.array(g))
    r = opt.reset(s)
    assert (r.step, r.count) == (3, 0)
    assert np.array_equal(r.m, np.zeros(2)) and np.array_equal(r.v, np.zeros(2))
    assert r.m is not s.m
    g = np.array([0.25, -8.0])
    w_after, s_after = opt.update(w, r, g)
    fresh = Adam(lr=0.4)
    w_fresh, s_fresh = fresh.update(w, fresh.init(w), g)
    assert np.array_equal(w_after, w_fresh)
    assert np.array_equal(s_after.m, s_fresh.m) and np.array_equal(s_after.v, s_fresh.v)
    assert (s_after.step, s_after.count) == (4, 1)
    np.testing.assert_allclose(w - w_after, 0.4 * g / (np.abs(g) + 1e-8), rtol=16 * EPS)
    # without the restart (t = 4) the same fresh moments would give a different step
    m, v, t = 0.1 * g, 0.001 * g * g, 4
    no_restart = 0.4 / (1 - 0.9 ** t) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
    assert np.all(np.abs(no_restart - (w - w_after)) > 0.1)


@given(steps=st.integers(1, 8), data=st.data())
def test_per_step_lr_array_equals_stepping_with_each_rate(steps, data):
    """lr as an array: step t uses lr[t]. Equal bitwise to running step t with a
    constant-rate Adam(lr=lr[t]) on the same state, and to the callable form."""
    lrs = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=steps, max_size=steps)))
    w = data.draw(vectors(1, 4))
    grads = [data.draw(vectors(w.shape[0], w.shape[0])) for _ in range(steps)]
    a, f = Adam(lr=lrs), Adam(lr=lambda t: float(lrs[t]))
    sa, sf = a.init(w), f.init(w)
    wa = wf = wc = w
    sc = sa
    for t, g in enumerate(grads):
        wa, sa = a.update(wa, sa, g)
        wf, sf = f.update(wf, sf, g)
        wc, sc = Adam(lr=float(lrs[t])).update(wc, sc, g)
        assert np.array_equal(wa, wc) and np.array_equal(wa, wf)
    with pytest.raises(ValueError, match="lr"):
        a.update(wa, sa, grads[0])  # past the end of the schedule


def test_zero_lr_leaves_w_but_updates_moments():
    opt = Adam(lr=0.0)
    w = np.array([1.5, -2.5])
    w1, s1 = opt.update(w, opt.init(w), np.array([1.0, 1.0]))
    assert np.array_equal(w1, w) and np.all(s1.m != 0)


def test_step_evaluates_the_oracle_once_and_equals_update():
    opt = Adam(lr=0.01)
    w = np.array([1.0, 2.0])
    grad_fn = lambda x: (float(x @ x) / 2, x.copy())  # noqa: E731
    w1, s1, info = opt.step(w, opt.init(w), grad_fn)
    w2, s2 = opt.update(w, opt.init(w), w.copy())
    assert np.array_equal(w1, w2) and info.grad_evals == 1 and info.loss == 2.5


def test_overflow_raises_floating_point_error():
    """An update that overflows raises instead of returning inf parameters."""
    opt = Adam(lr=1e308, beta1=0.5)
    w = np.array([-1e308])
    with pytest.raises(FloatingPointError):
        opt.update(w, opt.init(w), np.array([1.0]))


# -------------------------------------------------------------------------- validation

@pytest.mark.parametrize("name", ["beta1", "beta2"])
@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_betas_must_be_in_unit_interval(name, bad):
    with pytest.raises(ValueError, match=name):
        Adam(**{name: bad})


@pytest.mark.parametrize("name,bad", [
    ("eps", 0.0), ("eps", -1e-8), ("eps", float("nan")), ("eps", float("inf")),
    ("lr", -1e-3), ("lr", float("nan")), ("lr", float("inf")),
    ("weight_decay", -0.1), ("weight_decay", float("nan")),
])
def test_bad_values_name_the_parameter(name, bad):
    with pytest.raises(ValueError, match=name):
        Adam(**{name: bad})


@pytest.mark.parametrize("name,bad", [
    ("beta1", "0.9"), ("beta2", True), ("eps", None), ("weight_decay", [0.1]),
    ("maximize", 1), ("maximize", "yes"),
])
def test_bad_types_name_the_parameter(name, bad):
    with pytest.raises(TypeError, match=name):
        Adam(**{name: bad})


def test_bad_lr_schedules():
    with pytest.raises(ValueError, match="lr"):
        Adam(lr=np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match="lr"):
        Adam(lr=np.array([0.1, np.nan]))
    opt = Adam(lr=lambda t: -1.0)
    w = np.ones(2)
    with pytest.raises(ValueError, match="lr"):
        opt.update(w, opt.init(w), np.ones(2))


def test_bad_update_arguments():
    opt = Adam()
    w = np.ones(3)
    s = opt.init(w)
    with pytest.raises(ValueError, match="g"):
        opt.update(w, s, np.ones(2))
    with pytest.raises(TypeError, match="w"):
        opt.update(w.astype(np.float32), s, np.ones(3))
    with pytest.raises(ValueError, match="g"):
        opt.update(w, s, np.array([1.0, np.nan, 1.0]))
    with pytest.raises(TypeError, match="state"):
        opt.update(w, SGD().init(w), np.ones(3))
    with pytest.raises(ValueError, match="state"):
        opt.update(w, opt.init(np.ones(4)), np.ones(3))


# ------------------------------------------------------------------------------ purity

@given(w=vectors(1, 6), data=st.data(), weight_decay=st.floats(0.0, 1.0), maximize=st.booleans())
def test_inputs_are_never_modified(w, data, weight_decay, maximize):
    """update() returns new arrays; w, g and the old state are left untouched."""
    g = data.draw(vectors(w.shape[0], w.shape[0]))
    opt = Adam(lr=0.1, weight_decay=weight_decay, maximize=maximize)
    s = opt.init(w)
    w, s = opt.update(w, s, g)  # a state with non-zero moments
    copies = [a.copy() for a in (w, g, s.m, s.v)]
    w1, s1 = opt.update(w, s, g)
    for before, after in zip(copies, (w, g, s.m, s.v)):
        assert np.array_equal(before, after)
    assert w1 is not w and s1.m is not s.m and s1.v is not s.v
    assert isinstance(s1, AdamState)
    r = opt.reset(s)
    assert np.array_equal(s.m, copies[2]) and np.array_equal(s.v, copies[3])
    assert r.m is not s.m


@given(x=finite_floats(-1e3, 1e3))
def test_zero_gradient_from_fresh_state_does_not_move(x):
    """g = 0, wd = 0: m = v = 0, denom = eps, the update is exactly 0 (no 0/0)."""
    opt = Adam(lr=1.0)
    w = np.array([x])
    w1, _ = opt.update(w, opt.init(w), np.array([0.0]))
    assert np.array_equal(w1, w)
