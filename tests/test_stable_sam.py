"""Stable SAM (Tan et al. 2024): SAM with the descent gradient renormalized
(proofs/sources.md#stablesam).

The descent gradient g_ssam is observed exactly by a base SGD that records the
gradient it is handed (``RecordingSGD``); with lr = 1 and no weight decay that is the
observable ``w - w_new`` (checked in ``test_observation_through_sgd_lr_one``).

Tolerances: l2_norm sums d squares in order, so a computed norm carries a relative
error of at most (d/2 + 1) u (u = eps/2: d-1 additions and d squarings under the square
root, halved by it, plus the root's own rounding). ||g_ssam|| is ||g_adv|| times
fl(||g|| / ||g_adv||), each element rounded once more, so
||g_ssam||_computed = ||g||_computed * (1 + delta) with |delta| <= (d + 4) u; the tests
allow (d + 4) eps, a factor 2 of margin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from refimpl._kernels import l2_norm, weighted_l2_norm
from refimpl.optimizers import EMA, FAME, SAM, SGD, Adam, StableSAM
from tests.conftest import finite_floats, vectors

EPS = np.finfo(np.float64).eps
ASCENTS = ["normalized", "unnormalized", "adaptive", "adaptive_unnormalized"]


class RecordingSGD(SGD):
    """Plain SGD that also records every gradient ``update`` receives (the descent
    gradient chosen by SAM/StableSAM). A test double: still an SGD for isinstance."""

    def update(self, w, state, g):
        self.__dict__.setdefault("seen", []).append(g.copy())
        return super().update(w, state, g)


def descent(opt_cls, w, oracle, **kwargs):
    """Run one step of ``opt_cls(RecordingSGD(lr=1))`` and return (g, g_adv, g_descent,
    w_adv, w_new): the two oracle gradients, what the base received, the second point."""
    base = RecordingSGD(lr=1.0)
    opt = opt_cls(base, **kwargs)
    calls, grads = [], []

    def recorded(x):
        calls.append(x.copy())
        loss, g = oracle(x)
        grads.append(g.copy())
        return loss, g

    w_new, _, _ = opt.step(w, opt.init(w), recorded)
    (g_desc,) = base.seen
    return grads[0], grads[1], g_desc, calls[1], w_new


def affine_oracle(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return lambda w: (float(np.sum(0.5 * a * w * w + b * w)), a * w + b)


def random_oracle(kind, d, seed):
    """A random quadratic (symmetric, possibly indefinite H, linear term b) or a
    nonlinear oracle f = sum c cos(w) + 1/4 ||w||^4 + b.w."""
    rng = np.random.default_rng(seed)
    b = rng.normal(size=d)
    if kind == "quadratic":
        A = rng.normal(size=(d, d)) * 3.0
        H = A + A.T
        return lambda w: (float(0.5 * w @ H @ w + b @ w), H @ w + b)
    c = rng.normal(size=d) * 3.0

    def oracle(w):
        s = float(np.sum(w * w))
        return float(np.sum(c * np.cos(w)) + 0.25 * s * s + b @ w), -c * np.sin(w) + s * w + b

    return oracle


def satisfies_norm_law(g, g_adv, g_desc):
    """SSAM-norm: ||g_desc|| == ||g|| within (d + 4) eps, and g_desc = s g_adv with s > 0
    (each element one rounding away from s g_adv, so the residual is within (d + 4) eps
    of ||g_desc|| too)."""
    d = g.shape[0]
    tol = (d + 4) * EPS
    n, n_desc = l2_norm(g), l2_norm(g_desc)
    if abs(n_desc - n) > tol * n:
        return False
    s = float(g_desc @ g_adv) / float(g_adv @ g_adv)
    return s > 0.0 and l2_norm(g_desc - s * g_adv) <= tol * n_desc


# ---------------------------------------------------------------- SSAM-norm


@given(w=vectors(d_min=1, d_max=6, lo=-10.0, hi=10.0),
       kind=st.sampled_from(["quadratic", "nonlinear"]),
       seed=st.integers(0, 2**32 - 1),
       rho=st.floats(0.0, 2.0),
       ascent=st.sampled_from(["normalized", "unnormalized"]))
def test_ssam_norm_law(w, kind, seed, rho, ascent):
    """[SSAM-norm] With eps = 0: ||g_ssam|| = ||g|| and g_ssam is a positive multiple of
    g_adv, for any w and data. (Norms kept away from under/overflow of their squares.)"""
    g, g_adv, g_ssam, _, _ = descent(StableSAM, w, random_oracle(kind, w.shape[0], seed),
                                     rho=rho, ascent=ascent, eps=0.0)
    assume(1e-100 < l2_norm(g) < 1e100 and 1e-100 < l2_norm(g_adv) < 1e100)
    assert satisfies_norm_law(g, g_adv, g_ssam)
    nonzero = g_adv != 0.0
    assert np.array_equal(np.sign(g_ssam[nonzero]), np.sign(g_adv[nonzero]))


@given(w=vectors(d_min=1, d_max=6, lo=-10.0, hi=10.0),
       kind=st.sampled_from(["quadratic", "nonlinear"]),
       seed=st.integers(0, 2**32 - 1),
       rho=st.floats(0.0, 2.0))
def test_ssam_norm_law_adaptive(w, kind, seed, rho):
    """[SSAM-norm, ASAM form] The official code's adaptive norms: with eps = 0,
    || |w + e| g_ssam || = || |w| g || (the norm on the right taken at w, the one on the
    left at w + e), and g_ssam is a positive multiple of g_adv."""
    g, g_adv, g_ssam, w_adv, _ = descent(StableSAM, w, random_oracle(kind, w.shape[0], seed),
                                         rho=rho, ascent="adaptive", eps=0.0)
    n, n_adv = weighted_l2_norm(w, g), weighted_l2_norm(w_adv, g_adv)
    assume(1e-100 < n < 1e100 and 1e-100 < n_adv < 1e100)
    tol = (w.shape[0] + 4) * EPS
    assert abs(weighted_l2_norm(w_adv, g_ssam) - n) <= tol * n
    s = float(g_ssam @ g_adv) / float(g_adv @ g_adv)
    assert s > 0.0
    assert l2_norm(g_ssam - s * g_adv) <= tol * l2_norm(g_ssam)


@pytest.mark.parametrize("ascent", ASCENTS)
def test_norm_law_has_teeth_plain_sam_fails_it(ascent):
    """The check above rejects a descent gradient that was not renormalized: on
    f = 1/2 w^T diag(10, 1) w at w = (1, 1), g = (10, 1) and g_adv = H (w + e) is
    longer than g, so plain SAM's g_adv fails the law while StableSAM's passes."""
    oracle = affine_oracle([10.0, 1.0], 0.0)
    w = np.array([1.0, 1.0])
    g, g_adv, g_sam, _, _ = descent(SAM, w, oracle, rho=0.1, ascent=ascent, eps=0.0)
    assert np.array_equal(g_sam, g_adv)
    assert not satisfies_norm_law(g, g_adv, g_sam)
    g, g_adv, g_ssam, _, _ = descent(StableSAM, w, oracle, rho=0.1, ascent="unnormalized",
                                     eps=0.0)
    assert satisfies_norm_law(g, g_adv, g_ssam)


def test_observation_through_sgd_lr_one():
    """The descent gradient is what a base SGD(lr=1, no weight decay) subtracts:
    w_new == w - g_ssam bit for bit (1.0 * g is exact); from w = 0 the observable
    w - w_new is g_ssam itself."""
    oracle = affine_oracle([3.0, 1.0, 0.5], [1.0, -2.0, 0.25])
    for w in (np.array([0.3, -1.2, 2.0]), np.zeros(3)):
        _, _, g_ssam, _, w_new = descent(StableSAM, w, oracle, rho=0.2)
        assert np.array_equal(w_new, w - g_ssam)
    assert np.array_equal(np.zeros(3) - w_new, g_ssam)


@given(w=vectors(d_min=1, d_max=6, lo=-10.0, hi=10.0),
       seed=st.integers(0, 2**32 - 1),
       rho=st.floats(0.0, 2.0),
       ascent=st.sampled_from(ASCENTS))
def test_rescale_formula_with_default_eps(w, seed, rho, ascent):
    """With the default eps = 1e-12: g_ssam = g_adv * (||g|| / (||g_adv|| + eps)), the
    adaptive norms being || |w| g || and || |w + e| g_adv ||, bit for bit in this order
    of operations."""
    g, g_adv, g_ssam, w_adv, _ = descent(StableSAM, w, random_oracle("quadratic", w.shape[0], seed),
                                         rho=rho, ascent=ascent)
    if ascent.startswith("adaptive"):
        num, den = weighted_l2_norm(w, g), weighted_l2_norm(w_adv, g_adv) + 1e-12
    else:
        num, den = l2_norm(g), l2_norm(g_adv) + 1e-12
    assert np.array_equal(g_ssam, g_adv * (num / den))


@pytest.mark.parametrize("make_base", [lambda: Adam(lr=0.01, weight_decay=0.1),
                                       lambda: FAME(lr=0.01, beta3=0.3, beta4=0.7),
                                       lambda: SGD(lr=0.05, momentum=0.9)])
def test_stable_sam_over_each_base(make_base):
    """Over SGD, Adam and FAME, several steps: StableSAM's step == base.update(w, inner,
    g_adv * (||g|| / (||g_adv|| + eps))) bit for bit."""
    base = make_base()
    opt = StableSAM(base, rho=0.1)
    oracle = affine_oracle([2.0, 0.5, 1.0], [1.0, -1.0, 0.5])
    w = np.array([1.0, -2.0, 0.5])
    state, base_state = opt.init(w), base.init(w)
    for _ in range(5):
        g = oracle(w)[1]
        g_adv = oracle(w + 0.1 * g)[1]
        w_new, state, info = opt.step(w, state, oracle)
        expected, base_state = base.update(w, base_state,
                                           g_adv * (l2_norm(g) / (l2_norm(g_adv) + 1e-12)))
        assert info.grad_evals == 2
        assert np.array_equal(w_new, expected)
        w = w_new


# ---------------------------------------------------------------- SSAM-1d


def quartic(w):
    """f(w) = w^4/4 + w^2 (convex, not quadratic): f' = w^3 + 2w, f'' = 3w^2 + 2."""
    return float(w[0] ** 4 / 4 + w[0] ** 2), w ** 3 + 2.0 * w


def parabola(w):
    """f(w) = 3/2 w^2: f' = 3w."""
    return float(1.5 * w[0] ** 2), 3.0 * w


@given(w=finite_floats(-3.0, 3.0), rho=st.floats(0.0, 1.0),
       ascent=st.sampled_from(["normalized", "unnormalized"]),
       oracle=st.sampled_from([quartic, parabola]))
@example(w=-2.5, rho=1.0, ascent="normalized", oracle=quartic)
def test_ssam_1d_descent_gradient_is_the_gradient(w, rho, ascent, oracle):
    """[SSAM-1d] In one dimension with eps = 0, g_ssam = g_adv |g| / |g_adv| = g when
    g_adv has the sign of g (true on a convex f: w + e moves along g). sqrt(x*x) == |x|
    exactly in binary floating point, so only the division and the product round:
    |g_ssam - g| <= 2u|g| = eps |g|."""
    w = np.array([w])
    assume(abs(oracle(w)[1][0]) > 1e-150)        # g*g must not underflow (see module doc)
    g, _, g_ssam, _, _ = descent(StableSAM, w, oracle, rho=rho, ascent=ascent, eps=0.0)
    assert abs(g_ssam[0] - g[0]) <= EPS * abs(g[0])


@pytest.mark.parametrize("ascent", ["normalized", "unnormalized"])
@pytest.mark.parametrize("oracle", [quartic, parabola])
def test_ssam_1d_iterates_equal_gradient_descent(ascent, oracle):
    """[SSAM-1d] StableSAM(SGD(lr)) and SGD(lr) iterates agree over 30 steps. Each step
    differs by at most 2 eps (lr |g| + |w|) (the eps |g| above, scaled by lr, plus two
    roundings), and with lr f'' <= 0.05 * 29 < 2 the GD map does not expand differences,
    so step t is within the sum of the per-step bounds. Plain SAM (smaller rho, so that
    it does not blow up) is visibly not GD."""
    lr, w0 = 0.05, np.array([2.9])
    ssam, sgd, sam = StableSAM(SGD(lr=lr), rho=0.5, ascent=ascent, eps=0.0), SGD(lr=lr), \
        SAM(SGD(lr=lr), rho=0.05, ascent=ascent, eps=0.0)
    a, sa = w0, ssam.init(w0)
    b, sb = w0, sgd.init(w0)
    c, sc = w0, sam.init(w0)
    bound, sam_gap = 0.0, 0.0
    for _ in range(30):
        bound += 2 * EPS * (lr * abs(oracle(b)[1][0]) + abs(b[0]))
        a, sa, _ = ssam.step(a, sa, oracle)
        b, sb, _ = sgd.step(b, sb, oracle)
        c, sc, _ = sam.step(c, sc, oracle)
        assert abs(a[0] - b[0]) <= bound
        sam_gap = max(sam_gap, abs(c[0] - b[0]))
    assert sam_gap > 1e-2


def test_ssam_1d_adaptive_is_not_gradient_descent_denominator_at_w_plus_e():
    """With ascent="adaptive" the denominator is || |w + e| g_adv || at w + e, so even in
    1-D StableSAM is not GD. f = w^2 (g = 2w), w = 1, rho = 1, eps = 0:
    e = 1 * 1^2 * 2 / (|1| * 2) = 1, w + e = 2, g_adv = 4,
    scale = (|1| * 2) / (|2| * 4) = 1/4, g_ssam = 1; SGD lr=0.5: w_new = 1 - 0.5 = 0.5.
    With |w| in the denominator: scale = 2 / (1 * 4) = 1/2, g_ssam = 2 = g, w_new = 0."""
    w_new, _, _ = StableSAM(SGD(lr=0.5), rho=1.0, ascent="adaptive", eps=0.0).step(
        np.array([1.0]), StableSAM(SGD(lr=0.5)).init(np.array([1.0])), affine_oracle(2.0, 0.0))
    assert np.array_equal(w_new, [0.5])
    assert not np.array_equal(w_new, [0.0])


def test_adaptive_unnormalized_by_hand_authors_usam_stable():
    """The authors' USAM(adaptive=True, stable=True): e = rho w^2 g, then the descent
    gradient is scaled by || |w| g || / (|| |w + e| g_adv || + eps). f = w^2 (g = 2w),
    w = 1, rho = 0.5, eps = 0: e = 0.5 * 1 * 2 = 1, w + e = 2, g_adv = 4,
    scale = (1 * 2) / (2 * 4) = 1/4, g_ssam = 1; SGD lr = 0.5: w_new = 0.5 exactly.
    The normalized "adaptive" ascent has e = 0.5 instead: w + e = 1.5, g_adv = 3,
    scale = 2 / 4.5, g_ssam = 4/3 and w_new = 1/3."""
    got = {}
    for ascent in ("adaptive_unnormalized", "adaptive"):
        opt = StableSAM(SGD(lr=0.5), rho=0.5, ascent=ascent, eps=0.0)
        got[ascent] = opt.step(np.array([1.0]), opt.init(np.array([1.0])),
                               affine_oracle(2.0, 0.0))[0][0]
    assert got["adaptive_unnormalized"] == 0.5
    assert got["adaptive"] == pytest.approx(1 / 3, rel=4 * EPS)


# ---------------------------------------------------------------- conventions


def test_default_ascent_is_unnormalized():
    """The paper's version is USAM-based: StableSAM's default ascent is e = rho g
    (while plain SAM defaults to Foret's normalized ascent). f = |w|^2, w = (3, 4),
    g = (6, 8), rho = 0.5: the second point is w + 0.5 g = (6, 8); a normalized ascent
    would put it at (3.3, 4.4)."""
    assert StableSAM(SGD()).ascent == "unnormalized"
    assert SAM(SGD()).ascent == "normalized"
    _, _, _, w_adv, _ = descent(StableSAM, np.array([3.0, 4.0]), affine_oracle(2.0, 0.0), rho=0.5)
    assert np.array_equal(w_adv, [6.0, 8.0])


def test_weight_decay_added_after_rescale_and_not_rescaled():
    """f = |w|^2 (g = 2w), w = (3, 4), USAM rho = 0.5, eps = 0, SGD(lr=0.25, wd=0.5):
    g = (6, 8), ||g|| = 10; e = (3, 4); g_adv = 2 (6, 8) = (12, 16), ||g_adv|| = 20;
    g_ssam = (12, 16) * 10 / 20 = (6, 8); the base adds 0.5 w: d = (7.5, 10);
    w_new = (3 - 1.875, 4 - 2.5) = (1.125, 1.5).
    Rescaling g_adv + wd w = (13.5, 18) to norm 10 would give (6, 8) -> w_new = (1.5, 2);
    plain SAM would give d = (13.5, 18) -> (-0.375, -0.5)."""
    w = np.array([3.0, 4.0])
    opt = StableSAM(SGD(lr=0.25, weight_decay=0.5), rho=0.5, eps=0.0)
    w_new, _, _ = opt.step(w, opt.init(w), affine_oracle(2.0, 0.0))
    assert np.array_equal(w_new, [1.125, 1.5])


@pytest.mark.parametrize("ascent", ASCENTS)
@pytest.mark.parametrize("eps", [0.0, 1e-12])
def test_zero_ascent_gradient_gives_zero_descent_gradient(ascent, eps):
    """g = 0 at w: then e = 0 and, on a pure oracle, g_adv = 0 too; with eps = 0 the scale
    0/0 is taken as 0 by the documented rule: g_ssam = 0, no NaN. Only the base's weight
    decay moves w: w_new = w - 0.5 * 0.5 * w = 0.75 w (exact)."""
    w = np.array([1.0, -2.0, 4.0])
    opt = StableSAM(SGD(lr=0.5, weight_decay=0.5), rho=0.1, ascent=ascent, eps=eps)
    w_new, _, info = opt.step(w, opt.init(w), affine_oracle(0.0, 0.0))
    assert np.array_equal(w_new, 0.75 * w)
    assert info.grad_norm == 0.0
    # an impure oracle whose second answer is not zero: numerator 0, g_ssam = 0 * g_adv
    answers = iter([(0.0, np.zeros(3)), (0.0, np.array([1.0, 2.0, 3.0]))])
    _, _, g_ssam, _, _ = descent(StableSAM, w, lambda x: next(answers), ascent=ascent, eps=eps)
    assert np.array_equal(g_ssam, np.zeros(3))


def test_adaptive_at_zero_weights_gives_zero_descent_gradient():
    """ASAM norms at w = 0 are 0 (numerator || |0| g || = 0): g_ssam = 0, no NaN, with
    eps = 0 (denominator || |0 + 0| g || = 0, rule: scale 0) and eps > 0 (0 / eps)."""
    for eps in (0.0, 1e-12):
        _, _, g_ssam, _, w_new = descent(StableSAM, np.zeros(2), affine_oracle(1.0, [3.0, -1.0]),
                                         ascent="adaptive", eps=eps)
        assert np.array_equal(g_ssam, [0.0, 0.0])
        assert np.array_equal(w_new, [0.0, 0.0])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(rho=-1.0), ValueError, "rho"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(eps=float("inf")), ValueError, "eps"),
    (dict(ascent="stable"), ValueError, "ascent"),
    (dict(ascent=True), ValueError, "ascent"),
])
def test_invalid_hyperparameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        StableSAM(SGD(lr=0.1), **kwargs)


@pytest.mark.parametrize("inner", [lambda: EMA(SGD()), lambda: StableSAM(SGD()),
                                   lambda: SAM(SGD()), lambda: 0.1])
def test_base_must_be_a_base_optimizer(inner):
    with pytest.raises(TypeError, match="base"):
        StableSAM(inner())


def test_composes_under_ema_only():
    """StableSAM goes inside EMA (EMA(StableSAM(SGD))) and is a SAM for the loop."""
    opt = EMA(StableSAM(SGD(lr=0.1)), decay=0.9)
    w = np.array([1.0, 2.0])
    w_new, _, info = opt.step(w, opt.init(w), affine_oracle(1.0, 0.0))
    assert info.grad_evals == 2
    assert isinstance(StableSAM(SGD()), SAM)
    assert math.isfinite(w_new[0])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")   # NUMBA_DISABLE_JIT
def test_norm_overflow_is_divergence_in_both_paths():
    """f = 1/2 1e100 w^2 at w = 1e60: loss 5e219 and g = 1e160 are finite, but g*g
    overflows, so ||g|| = inf; the normalized ascent is 0 (rho / inf), g_adv = g, and the
    rescale is inf / inf. The step API and the jitted loop both call it divergence
    (FloatingPointError), not a ValueError about an argument the user never passed."""
    from refimpl.problems import Quadratic
    from refimpl.train import train

    q = Quadratic(np.array([[1e100]]))
    opt = StableSAM(SGD(lr=1e-101), ascent="normalized")
    w = np.array([1e60])
    with pytest.raises(FloatingPointError):
        opt.step(w, opt.init(w), q.grad_fn())
    with pytest.raises(FloatingPointError):
        train(q, opt, w0=w, steps=1)
