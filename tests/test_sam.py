"""SAM, USAM and ASAM over a base optimizer (proofs/sources.md#sam-usam-and-asam).

The hand-computed cases use an element-wise affine oracle ``g(w) = a * w + b`` whose
numbers are exact in binary (halves, quarters, small integers), so every expected value
below is exact and compared bit for bit. ``calls`` records the points the oracle saw:
``calls[0]`` is w, ``calls[1]`` is w + e, which exposes the ascent step e directly.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refimpl.optimizers import EMA, FAME, SAM, SGD, Adam, SAMState, StableSAM
from refimpl.optimizers.sam import ASCENTS
from refimpl.problems import NoisyQuadratic, Quadratic
from tests.conftest import vectors

EPS = np.finfo(np.float64).eps


def affine_oracle(a, b, calls=None, returned=None):
    """``w -> (sum a/2 w^2 + b w, a * w + b)``, recording inputs and outputs."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)

    def oracle(w):
        if calls is not None:
            calls.append(w.copy())
        g = a * w + b
        if returned is not None:
            returned.append((g, g.copy()))
        return float(np.sum(0.5 * a * w * w + b * w)), g

    return oracle


def recording(oracle, calls):
    """Wrap any oracle so that it records the points it is called at."""

    def wrapped(w):
        calls.append(w.copy())
        return oracle(w)

    return wrapped


def one_step(opt, w, oracle):
    w = np.asarray(w, dtype=np.float64)
    return opt.step(w, opt.init(w), oracle)


def bases():
    """One of each base optimizer, with state that matters (momentum, moments, TEMA)."""
    return [SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
            Adam(lr=0.01, weight_decay=0.01),
            FAME(lr=0.01, beta3=0.3, beta4=0.7)]


def small_quadratic(d):
    """A fixed SPD quadratic in d dimensions (diagonal 0.5..2 plus 0.1 everywhere)."""
    H = np.diag(np.linspace(0.5, 2.0, d)) + 0.1
    return Quadratic(H, w_star=np.linspace(-1.0, 1.0, d))


# ---------------------------------------------------------------- the protocol


def test_two_oracle_calls_first_at_w_second_at_w_plus_e():
    """Exactly two evaluations per step, at w then at w + e, and StepInfo says so;
    info.loss and info.grad_norm are those of the FIRST call (at w)."""
    calls = []
    w = np.array([1.0, 2.0])
    opt = SAM(SGD(lr=0.5), rho=2.5, ascent="normalized", eps=0.0)
    state = opt.init(w)
    for _ in range(3):
        n_before = len(calls)
        w_new, state, info = opt.step(w, state, affine_oracle(2.0, [4.0, 4.0], calls))
        assert len(calls) == n_before + 2
        assert info.grad_evals == 2
        assert np.array_equal(calls[n_before], w)
        g = 2.0 * w + 4.0
        assert info.loss == float(np.sum(w * w + 4.0 * w))
        assert info.grad_norm == math.sqrt(g[0] * g[0] + g[1] * g[1])
        w = w_new


def test_same_minibatch_noisy_quadratic():
    """On the noisy quadratic both evaluations of a step use the same noise row z_t:
    g_adv = h * (w + e - w*) + sqrt(c / B) * z_t, bit for bit; using row t + 1 (what a
    loop drawing noise per CALL would do) gives a different step."""
    problem = NoisyQuadratic(h=np.array([2.0, 0.5, 1.0]), batch_size=4,
                             w_star=np.array([0.5, -1.0, 0.25]))
    Z = problem.draw_noise(4, seed=7)
    lr = 0.1
    opt = SAM(SGD(lr=lr), rho=0.05)
    w = np.array([1.0, 2.0, -3.0])
    state = opt.init(w)
    for t in range(3):
        calls = []
        w_new, state, info = opt.step(w, state, recording(problem.grad_fn(Z[t]), calls))
        w_adv = calls[1]
        xi = problem.noise_scale * Z[t]
        g_adv = problem.h * (w_adv - problem.w_star) + xi
        assert np.array_equal(w_new, w - lr * g_adv)
        xi_next = problem.noise_scale * Z[t + 1]
        assert not np.array_equal(w_new, w - lr * (problem.h * (w_adv - problem.w_star) + xi_next))
        # the ascent used the gradient of the same batch at w
        g = problem.h * (w - problem.w_star) + xi
        e = 0.05 * g / (np.linalg.norm(g) + 1e-12)
        np.testing.assert_allclose(w_adv, w + e, rtol=8 * EPS, atol=8 * EPS * np.abs(w).max())
        r = w - problem.w_star
        assert info.loss == pytest.approx(np.sum(0.5 * problem.h * r * r + xi * r), rel=8 * EPS)
        w = w_new


def test_train_loop_uses_one_noise_row_per_sam_step():
    """The jitted loop agrees with the formula above: both SAM evaluations of step t see
    draw_noise(steps, seed)[t] (checked bitwise through the stepping API)."""
    from refimpl.train import train

    problem = NoisyQuadratic(h=np.array([2.0, 0.5, 1.0]), batch_size=2)
    opt = SAM(SGD(lr=0.1), rho=0.05)
    w0 = np.array([1.0, 2.0, -3.0])
    rec = train(problem, opt, w0=w0, steps=4, seed=3, record_params=True)
    Z = problem.draw_noise(4, 3)
    w, state = w0, opt.init(w0)
    for t in range(4):
        w, state, _ = opt.step(w, state, problem.grad_fn(Z[t]))
        assert np.array_equal(rec.params[t + 1], w)
    assert rec.grad_evals == 8


def test_base_step_is_taken_at_w_not_at_w_plus_e():
    """w=(1,2), g(w)=2w+4 -> g=(6,8), ||g||=10; rho=2.5, eps=0: e=0.25*g=(1.5,2),
    w+e=(2.5,4), g_adv=2*(2.5,4)+4=(9,12). SGD lr=0.5 AT w: (1-4.5, 2-6)=(-3.5,-4).
    Stepping from w+e instead would give (2.5-4.5, 4-6)=(-2,-2)."""
    w_new, _, _ = one_step(SAM(SGD(lr=0.5), rho=2.5, eps=0.0), [1.0, 2.0],
                           affine_oracle(2.0, [4.0, 4.0]))
    assert np.array_equal(w_new, [-3.5, -4.0])
    assert not np.array_equal(w_new, [-2.0, -2.0])


@pytest.mark.parametrize("make_base", [lambda: SGD(lr=0.05, momentum=0.9, dampening=0.1),
                                       lambda: Adam(lr=0.01, weight_decay=0.1),
                                       lambda: FAME(lr=0.01, beta3=0.3, beta4=0.7),
                                       lambda: FAME(lr=0.01, variant="full")])
@pytest.mark.parametrize("ascent", list(ASCENTS))
def test_sam_is_base_update_at_w_with_adversarial_gradient(make_base, ascent):
    """For SGD, Adam and FAME, over several steps: SAM's step == base.update(w, inner,
    g(calls[1])) bit for bit, i.e. the base sees exactly the gradient at the second
    point, at w, with its own state carried through SAMState.inner."""
    base = make_base()
    opt = SAM(base, rho=0.1, ascent=ascent)
    problem = small_quadratic(4)
    w = np.array([1.0, -2.0, 0.5, 3.0])
    state = opt.init(w)
    base_state = base.init(w)
    for _ in range(5):
        calls = []
        w_new, state, _ = opt.step(w, state, recording(problem.loss_and_grad, calls))
        expected, base_state = base.update(w, base_state, problem.grad(calls[1]))
        assert np.array_equal(w_new, expected)
        for a, b in zip(state.inner, base_state):
            assert np.array_equal(a, b)
        w = w_new


# ---------------------------------------------------------------- the ascent step


def test_normalized_ascent_by_hand():
    """Foret: e = rho g / (||g|| + eps). g=(6,8), ||g||=10, rho=2.5, eps=10 (large on
    purpose, to pin its place): e = 2.5*(6,8)/20 = (0.75, 1). eps inside the square root,
    sqrt(100+10), or no eps at all, (1.5, 2), would differ."""
    calls = []
    one_step(SAM(SGD(lr=0.5), rho=2.5, ascent="normalized", eps=10.0), [1.0, 2.0],
             affine_oracle(2.0, [4.0, 4.0], calls))
    assert np.array_equal(calls[1] - calls[0], [0.75, 1.0])


def test_normalized_ascent_has_length_rho():
    """With eps=0 the normalized ascent has norm rho (up to a few ulps: one division,
    d products, and the norm's own rounding)."""
    calls = []
    w = np.array([0.0, 0.0, 0.0])
    one_step(SAM(SGD(lr=0.1), rho=0.3, eps=0.0), w, affine_oracle(1.0, [3.0, -1.0, 7.0], calls))
    assert np.linalg.norm(calls[1]) == pytest.approx(0.3, rel=8 * EPS)


def test_unnormalized_ascent_by_hand():
    """USAM: e = rho g. g=(6,8), rho=0.5 -> e=(3,4), w+e=(4,6), g_adv=(12,16), lr=0.5:
    w_new=(1-6, 2-8)=(-5,-6). eps plays no part (eps=10 changes nothing); the normalized
    ascent would give e = 0.5*(0.6,0.8) = (0.3,0.4)."""
    for eps in (0.0, 1e-12, 10.0):
        calls = []
        w_new, _, _ = one_step(SAM(SGD(lr=0.5), rho=0.5, ascent="unnormalized", eps=eps),
                               [1.0, 2.0], affine_oracle(2.0, [4.0, 4.0], calls))
        assert np.array_equal(calls[1], [4.0, 6.0])
        assert np.array_equal(w_new, [-5.0, -6.0])


def test_adaptive_ascent_by_hand_davda54_form():
    """ASAM in davda54/sam's form: e = rho w^2 g / (|| |w| g || + eps).
    w=(-1,2), g(w)=2w+(5,-2)=(3,2); |w| g=(3,4), norm 5; rho=5, eps=0: scale 1,
    e = w^2 g = (3,8); w+e=(2,10); g_adv=(4+5, 20-2)=(9,18); lr=0.5:
    w_new = (-1-4.5, 2-9) = (-5.5,-7)."""
    calls = []
    w_new, _, _ = one_step(SAM(SGD(lr=0.5), rho=5.0, ascent="adaptive", eps=0.0), [-1.0, 2.0],
                           affine_oracle(2.0, [5.0, -2.0], calls))
    assert np.array_equal(calls[1] - calls[0], [3.0, 8.0])
    assert np.array_equal(w_new, [-5.5, -7.0])


def test_adaptive_unnormalized_ascent_by_hand_authors_usam_form():
    """The StableSAM authors' adaptive USAM (usam.py, adaptive=True): e = rho w^2 g, no
    normalization. w=(-1,2), g(w)=2w+(5,-2)=(3,2), rho=0.5: e = 0.5 (3, 8) = (1.5, 4);
    w+e=(0.5,6); g_adv=(1+5, 12-2)=(6,10); lr=0.5: w_new=(-1-3, 2-5)=(-4,-3). eps plays
    no part (10 changes nothing); the normalized "adaptive" ascent would be
    0.5 (3, 8) / 5 = (0.3, 0.8)."""
    for eps in (0.0, 1e-12, 10.0):
        calls = []
        w_new, _, _ = one_step(SAM(SGD(lr=0.5), rho=0.5, ascent="adaptive_unnormalized",
                                   eps=eps), [-1.0, 2.0], affine_oracle(2.0, [5.0, -2.0], calls))
        assert np.array_equal(calls[1] - calls[0], [1.5, 4.0])
        assert np.array_equal(w_new, [-4.0, -3.0])


@given(signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=1, max_size=6),
       b=st.floats(-5.0, 5.0), rho=st.floats(0.0, 2.0), which=st.integers(0, 2))
def test_adaptive_unnormalized_with_unit_weights_is_usam(signs, b, rho, which):
    """Where every |w_i| = 1, w^2 g = g exactly, so the adaptive USAM step is USAM's bit
    for bit (the ascent, the point w + e and the base's update)."""
    w = np.array(signs)
    runs = []
    for ascent in ("adaptive_unnormalized", "unnormalized"):
        calls = []
        w_new, state, _ = one_step(SAM(bases()[which], rho=rho, ascent=ascent), w,
                                   affine_oracle(1.5, b, calls))
        runs.append((calls[1], w_new))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


def test_adaptive_ascent_differs_from_other_asam_variants():
    """Peers' ASAM variants give other e on the case above (w=(-1,2), g=(3,2), rho=5):
    |w| g / || |w| g || (T=|w| once) -> (3,4); w|w| g (sign-keeping) -> (-3,8);
    Kwon et al.'s T = |w| + 0.01 -> ~(3.05, 8.0); plain SAM 5 g/||g|| -> (4.16, 2.77).
    refimpl's adaptive gives exactly (3,8) and none of them."""
    w = np.array([-1.0, 2.0])
    g = np.array([3.0, 2.0])
    calls = []
    one_step(SAM(SGD(lr=0.5), rho=5.0, ascent="adaptive", eps=0.0), w,
             affine_oracle(2.0, [5.0, -2.0], calls))
    e = calls[1] - calls[0]
    T = np.abs(w) + 0.01
    peers = {
        "|w| instead of w^2": 5.0 * np.abs(w) * g / np.linalg.norm(np.abs(w) * g),
        "w|w| instead of w^2": 5.0 * w * np.abs(w) * g / np.linalg.norm(np.abs(w) * g),
        "Kwon T=|w|+0.01": 5.0 * T * T * g / np.linalg.norm(T * g),
        "normalized": 5.0 * g / np.linalg.norm(g),
    }
    for name, e_peer in peers.items():
        assert np.abs(e - e_peer).max() > 1e-3, name
    assert np.array_equal(e, [3.0, 8.0])


def _exact_norm(terms) -> Fraction:
    """sqrt(sum t^2) of exact rationals, to within an ulp in float64 and returned as the
    exact rational of that float (the sum is scaled by 4^k into the normal range, so
    neither the squares nor the root under- or overflow)."""
    s = sum((t * t for t in terms), Fraction(0))
    if s == 0:
        return Fraction(0)
    k = (s.numerator.bit_length() - s.denominator.bit_length()) // 2
    return Fraction(math.sqrt(float(s / Fraction(4) ** k))) * Fraction(2) ** k


@given(w=vectors(d_min=1, d_max=6, lo=-10.0, hi=10.0),
       b=st.floats(-5.0, 5.0), rho=st.floats(0.0, 2.0))
@example(w=np.array([0.0]), b=0.25, rho=2.225073858507e-311)  # fuzz: subnormal rho
@example(w=np.array([1e-300]), b=0.0, rho=2.220446049250313e-16)  # fuzz: rho * g subnormal
@example(w=np.array([0.0]), b=1e-300, rho=9.66e-168)  # fuzz: (rho * g) underflows
def test_ascent_matches_formulas(w, b, rho):
    """All four ascents against their formulas on random points (oracle g = w + b),
    evaluated in exact rational arithmetic (the norm rounded once) and rounded once to
    float64, so the reference itself never underflows: NumPy's ``(rho * g) / n`` did,
    when ``rho * g`` is subnormal. Tolerance: a few ulps times the size of e (the
    kernel's norm and products round in their own order), plus a few subnormal spacings:
    below 2.2e-308 rounding is absolute (each operation errs by up to half of 2^-1074),
    not relative."""
    g = w + b
    R, eps = Fraction(rho), Fraction(1e-12)
    W = [Fraction(float(x)) for x in w]
    G = [Fraction(float(x)) for x in g]
    for ascent in ASCENTS:
        calls = []
        one_step(SAM(SGD(lr=0.1), rho=rho, ascent=ascent, eps=1e-12), w,
                 affine_oracle(1.0, b, calls))
        e = calls[1] - calls[0]   # exact up to the rounding of w + e
        if ascent == "normalized":
            n = _exact_norm(G) + eps
            exact = [R * gi / n for gi in G]
        elif ascent == "unnormalized":
            exact = [R * gi for gi in G]
        elif ascent == "adaptive_unnormalized":
            exact = [R * wi * wi * gi for wi, gi in zip(W, G)]
        else:
            n = _exact_norm([abs(wi) * gi for wi, gi in zip(W, G)]) + eps
            exact = [R * wi * wi * gi / n for wi, gi in zip(W, G)]
        expected = np.array([float(x) for x in exact])
        tol = 16 * len(w) * EPS * (np.abs(expected).max() + np.abs(w).max())
        tol += 8 * np.finfo(np.float64).smallest_subnormal
        assert np.abs(e - expected).max() <= tol


# ---------------------------------------------------------------- special cases


@given(w0=vectors(d_min=1, d_max=5, lo=-5.0, hi=5.0),
       ascent=st.sampled_from(list(ASCENTS)),
       which=st.integers(0, 2))
def test_rho_zero_gives_the_base_iterates_bitwise(w0, ascent, which):
    """rho = 0: e = 0 exactly, so SAM(base) runs the base's iterates bit for bit, still
    with two evaluations per step."""
    base = bases()[which]
    problem = small_quadratic(w0.shape[0])
    sam = SAM(base, rho=0.0, ascent=ascent)
    w_s, s_s = w0, sam.init(w0)
    w_b, s_b = w0, base.init(w0)
    for _ in range(4):
        w_s, s_s, info = sam.step(w_s, s_s, problem.loss_and_grad)
        w_b, s_b, _ = base.step(w_b, s_b, problem.loss_and_grad)
        assert info.grad_evals == 2
        assert np.array_equal(w_s, w_b)


def test_weight_decay_is_applied_by_the_base_at_w():
    """SGD(lr=0.5, weight_decay=0.5) under SAM (rho=2.5, eps=0) from w=(1,2), g=2w+4:
    the ascent uses the bare gradient g=(6,8) (so w+e=(2.5,4)), then the base adds
    0.5*w at w: d = (9,12) + (0.5,1) = (9.5,13), w_new = (1-4.75, 2-6.5) = (-3.75,-4.5).
    Decay taken at w+e would give d=(10.25,14) -> (-4.125,-5)."""
    calls = []
    w_new, _, _ = one_step(SAM(SGD(lr=0.5, weight_decay=0.5), rho=2.5, eps=0.0), [1.0, 2.0],
                           affine_oracle(2.0, [4.0, 4.0], calls))
    assert np.array_equal(calls[1], [2.5, 4.0])
    assert np.array_equal(w_new, [-3.75, -4.5])


@pytest.mark.parametrize("ascent", list(ASCENTS))
@pytest.mark.parametrize("eps", [1e-12, 0.0])
def test_zero_gradient_gives_zero_ascent_and_no_nan(ascent, eps):
    """g = 0: e = 0 (with eps = 0 the denominator is 0; optax's SAM would give 0/0 = NaN,
    refimpl's documented rule takes the scale as 0). The second call is at w itself and
    the step is the base's step with a zero gradient: w unchanged."""
    calls = []
    w = np.array([1.0, -2.0, 3.0])
    w_new, _, info = one_step(SAM(SGD(lr=0.5), rho=0.1, ascent=ascent, eps=eps), w,
                              affine_oracle(0.0, 0.0, calls))
    assert np.array_equal(calls[1], w)
    assert np.array_equal(w_new, w)
    assert info.grad_norm == 0.0


def test_adaptive_zero_weights_with_eps_zero():
    """ASAM at w = 0 with eps = 0: || |w| g || = 0 although g != 0; e = 0 by the same
    rule, and the base step uses g itself: w_new = -lr g = -0.5*(3,-1) = (-1.5, 0.5)."""
    calls = []
    w_new, _, _ = one_step(SAM(SGD(lr=0.5), rho=0.1, ascent="adaptive", eps=0.0), [0.0, 0.0],
                           affine_oracle(1.0, [3.0, -1.0], calls))
    assert np.array_equal(calls[1], [0.0, 0.0])
    assert np.array_equal(w_new, [-1.5, 0.5])


def test_init_and_reset_wrap_the_base_state():
    """init wraps the base state; reset resets the base state (momentum buffer cleared,
    step count kept)."""
    opt = SAM(SGD(lr=0.1, momentum=0.9))
    w = np.array([1.0, 2.0])
    state = opt.init(w)
    assert isinstance(state, SAMState)
    w, state, _ = opt.step(w, state, affine_oracle(1.0, 0.0))
    assert np.any(state.inner.momentum_buffer != 0.0)
    reset = opt.reset(state)
    assert isinstance(reset, SAMState)
    assert np.array_equal(reset.inner.momentum_buffer, [0.0, 0.0])
    assert reset.inner.step == state.inner.step == 1


# ---------------------------------------------------------------- malformed oracles


def _oracle_returning(first, second):
    calls = []

    def oracle(w):
        calls.append(None)
        return first if len(calls) == 1 else second

    return oracle


GOOD = (1.0, np.array([1.0, 2.0]))


@pytest.mark.parametrize("bad", [
    (float("nan"), np.array([1.0, 2.0])),
    (1.0, np.array([np.inf, 2.0])),
    (1.0, np.array([1.0, np.nan])),
])
@pytest.mark.parametrize("at", ["first", "second"])
def test_non_finite_oracle_raises_floating_point_error(bad, at):
    """A non-finite loss or gradient, at w or at w + e, is a diverged run."""
    oracle = _oracle_returning(bad, GOOD) if at == "first" else _oracle_returning(GOOD, bad)
    with pytest.raises(FloatingPointError):
        one_step(SAM(SGD(lr=0.1)), [1.0, 2.0], oracle)


@pytest.mark.parametrize("bad, exc, match", [
    ((1.0, np.array([1.0, 2.0, 3.0])), ValueError, "length"),
    ((1.0, np.array([1.0, 2.0], dtype=np.float32)), TypeError, "float64"),
    ((1.0, np.array([[1.0, 2.0]])), TypeError, "1-D"),
    ((1.0, [1.0, 2.0]), TypeError, "numpy"),
    (np.array([1.0, 2.0]), TypeError, "tuple"),
    (("1.0", np.array([1.0, 2.0])), TypeError, "loss"),
])
@pytest.mark.parametrize("at", ["first", "second"])
def test_malformed_oracle_raises(bad, exc, match, at):
    oracle = _oracle_returning(bad, GOOD) if at == "first" else _oracle_returning(GOOD, bad)
    with pytest.raises(exc, match=match):
        one_step(SAM(SGD(lr=0.1)), [1.0, 2.0], oracle)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("cls", [SAM, StableSAM])
@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(rho=-0.1), ValueError, "rho"),
    (dict(rho=float("nan")), ValueError, "rho"),
    (dict(rho=float("inf")), ValueError, "rho"),
    (dict(rho="0.1"), TypeError, "rho"),
    (dict(rho=True), TypeError, "rho"),
    (dict(eps=-1e-12), ValueError, "eps"),
    (dict(eps=float("nan")), ValueError, "eps"),
    (dict(eps=None), TypeError, "eps"),
    (dict(ascent="sam"), ValueError, "ascent"),
    (dict(ascent="Normalized"), ValueError, "ascent"),
    (dict(ascent=None), ValueError, "ascent"),
])
def test_invalid_hyperparameters(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(SGD(lr=0.1), **kwargs)


@pytest.mark.parametrize("cls", [SAM, StableSAM])
@pytest.mark.parametrize("make_base", [
    lambda: EMA(SGD(lr=0.1)),
    lambda: SAM(SGD(lr=0.1)),
    lambda: StableSAM(SGD(lr=0.1)),
    lambda: SGD,            # the class, not an optimizer
    lambda: None,
    lambda: "sgd",
])
def test_base_must_be_a_base_optimizer(cls, make_base):
    """SAM(EMA(...)), SAM(SAM(...)) and non-optimizers are TypeErrors naming ``base``."""
    with pytest.raises(TypeError, match="base"):
        cls(make_base())


def test_step_argument_validation():
    opt = SAM(SGD(lr=0.1))
    w = np.array([1.0, 2.0])
    oracle = affine_oracle(1.0, 0.0)
    with pytest.raises(TypeError, match="state"):
        opt.step(w, SGD(lr=0.1).init(w), oracle)
    with pytest.raises(TypeError, match="w"):
        opt.step([1.0, 2.0], opt.init(w), oracle)
    with pytest.raises(TypeError, match="w"):
        opt.step(w.astype(np.float32), opt.init(w), oracle)
    with pytest.raises(ValueError, match="w"):
        opt.step(np.array([1.0, np.nan]), opt.init(w), oracle)
    with pytest.raises(TypeError, match="epoch_end"):
        opt.step(w, opt.init(w), oracle, epoch_end=1)
    with pytest.raises(ValueError, match="length"):
        opt.step(np.array([1.0, 2.0, 3.0]), opt.init(w), affine_oracle(1.0, 0.0))


def test_hyperparameters_are_frozen():
    opt = SAM(SGD(lr=0.1), rho=0.05)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.rho = 0.1


# ---------------------------------------------------------------- no mutation


@pytest.mark.parametrize("cls", [SAM, StableSAM])
@pytest.mark.parametrize("ascent", list(ASCENTS))
def test_inputs_are_never_mutated(cls, ascent):
    """w, the state's arrays (made read-only: any write would raise) and the gradients
    the oracle returned are unchanged after several steps."""
    opt = cls(SGD(lr=0.1, momentum=0.9, weight_decay=0.1), rho=0.1, ascent=ascent)
    w = np.array([1.0, -2.0, 0.5])
    state = opt.init(w)
    for _ in range(3):
        returned = []
        w.flags.writeable = False
        state.inner.momentum_buffer.flags.writeable = False
        w_copy, buf_copy = w.copy(), state.inner.momentum_buffer.copy()
        w_new, new_state, _ = opt.step(w, state, affine_oracle(2.0, 1.0, returned=returned))
        assert np.array_equal(w, w_copy)
        assert np.array_equal(state.inner.momentum_buffer, buf_copy)
        for g, g_copy in returned:
            assert np.array_equal(g, g_copy)
        assert w_new is not w
        w, state = w_new, new_state
