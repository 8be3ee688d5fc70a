"""Claims SSAM-norm, SSAM-1d, SAM-quadratic, SAM-saddle and SAM-bounce (proofs/sam.md),
checked through the public step API and the jitted loop ``refimpl.train``.

How the descent gradient is observed without test doubles: run one step of
``Opt(SGD(lr=1))`` from v = 0 on the shifted oracle ``v -> oracle(v + w)``. The base
step is then ``0 - 1 * g_descent``, which is exact, so ``-w_new`` IS the descent
gradient bit for bit, and the oracle sees exactly the points w and w + e.

Tolerances (u = eps / 2):
* a global norm ``sqrt(sum x_i^2)`` of d terms carries a relative error of at most
  (d/2 + 1) u; the rescale ``g_adv * fl(||g|| / ||g_adv||)`` adds two more roundings;
  so ||g_ssam|| = ||g|| (1 + delta) with |delta| <= (d + 4) u, and we allow (d + 4) eps.
* in one dimension ``sqrt(x * x) == |x|`` exactly (no under/overflow), so g_ssam =
  sign(g_adv) |g| (1 + d1)(1 + d2): |g_ssam - sign(g_adv)|g|| <= (eps + eps^2) |g|.
* stability envelopes carry a rounding allowance stated where they are used.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from refimpl import SAM, SGD, NoisyQuadratic, Quadratic, StableSAM, theory, train
from refimpl._kernels import l2_norm
from tests.conftest import finite_floats, vectors

EPS = np.finfo(np.float64).eps
U = EPS / 2
DENORM = 2.0**-1074


# ---------------------------------------------------------------------- observation

def observe(opt_cls, oracle, w, **kwargs):
    """(g, g_adv, g_descent) of one ``opt_cls(SGD(lr=1), **kwargs)`` step at ``w``."""
    w = np.asarray(w, dtype=np.float64)
    seen = []

    def shifted(v):
        loss, g = oracle(v + w)
        seen.append(g.copy())
        return loss, g

    opt = opt_cls(SGD(lr=1.0), **kwargs)
    v0 = np.zeros_like(w)
    w_new, _, _ = opt.step(v0, opt.init(v0), shifted)
    g, g_adv = seen
    return g, g_adv, -w_new


def quadratic_oracle(H, b=None):
    H = np.asarray(H, dtype=np.float64)
    b = np.zeros(H.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
    return lambda w: (float(0.5 * w @ H @ w + b @ w), H @ w + b)


def tanh_oracle(d, seed, k=4):
    """A smooth non-quadratic loss: f(w) = sum_k a_k tanh(v_k . w + c_k) + b . w,
    gradient sum_k a_k (1 - tanh^2(v_k . w + c_k)) v_k + b. Random, from the seed."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a, V, c, b = rng.normal(size=k) * 3, rng.normal(size=(k, d)), rng.normal(size=k), \
        rng.normal(size=d) * 0.1

    def oracle(w):
        z = V @ w + c
        t = np.tanh(z)
        return float(a @ t + b @ w), V.T @ (a * (1.0 - t * t)) + b

    return oracle


def random_quadratic_oracle(d, seed):
    rng = np.random.Generator(np.random.PCG64(seed))
    A = rng.normal(size=(d, d)) * 2
    return quadratic_oracle(A + A.T, rng.normal(size=d))


def make_oracle(kind, d, seed):
    return (tanh_oracle if kind == "tanh" else random_quadratic_oracle)(d, seed)


# ------------------------------------------------------------------------- SSAM-norm

def ssam_norm_law(g, g_adv, g_desc):
    """SSAM-norm: ||g_desc|| == ||g|| to (d + 4) eps, g_desc has the sign of g_adv in
    every coordinate (rounding never flips a sign), and g_desc is a multiple of g_adv
    (residual after projection within (d + 4) eps of ||g_desc||)."""
    d = g.shape[0]
    tol = (d + 4) * EPS
    n, n_desc = l2_norm(g), l2_norm(g_desc)
    if abs(n_desc - n) > tol * n:
        return False
    if np.any(np.sign(g_desc) != np.sign(g_adv)):
        return False
    s = float(g_desc @ g_adv) / float(g_adv @ g_adv)
    return s > 0.0 and l2_norm(g_desc - s * g_adv) <= tol * n_desc


ssam_norm_cases = dict(w=vectors(d_min=1, d_max=6, lo=-5.0, hi=5.0),
                       kind=st.sampled_from(["tanh", "quadratic"]),
                       seed=st.integers(0, 2**32 - 1),
                       rho=st.floats(0.0, 3.0),
                       ascent=st.sampled_from(["normalized", "unnormalized"]))


@pytest.mark.claim("SSAM-norm")
@given(**ssam_norm_cases)
def test_ssam_descent_gradient_has_the_ascent_gradient_norm(w, kind, seed, rho, ascent):
    """[SSAM-norm] For ANY w and ANY data (random quadratics and random sums of tanh,
    whose gradients are not linear in w), both ascent forms, eps = 0:
    ||g_ssam|| = ||g|| and g_ssam = s g_adv with s = ||g|| / ||g_adv|| > 0.
    (Squares kept away from under/overflow: 1e-150 < norms < 1e150.)"""
    g, g_adv, g_ssam = observe(StableSAM, make_oracle(kind, w.shape[0], seed), w,
                               rho=rho, ascent=ascent, eps=0.0)
    assume(1e-150 < l2_norm(g) < 1e150 and 1e-150 < l2_norm(g_adv) < 1e150)
    assert ssam_norm_law(g, g_adv, g_ssam)


@pytest.mark.claim("SSAM-norm")
@given(**ssam_norm_cases)
def test_ssam_norm_check_has_teeth(w, kind, seed, rho, ascent):
    """Teeth, as a property: on every draw where the variant genuinely differs, the same
    check rejects (a) no renormalization (plain SAM's g_adv), (b) the inverse ratio
    g_adv ||g_adv|| / ||g||, (c) renormalizing the wrong vector, g (it has the right
    norm but is not parallel to g_adv)."""
    g, g_adv, _ = observe(SAM, make_oracle(kind, w.shape[0], seed), w, rho=rho,
                          ascent=ascent, eps=0.0)
    n, n_adv = l2_norm(g), l2_norm(g_adv)
    assume(1e-150 < n < 1e150 and 1e-150 < n_adv < 1e150)
    if abs(n_adv - n) > 1e-6 * n:
        assert not ssam_norm_law(g, g_adv, g_adv)
        assert not ssam_norm_law(g, g_adv, g_adv * (n_adv / n))
    cos = float(g @ g_adv) / (n * n_adv)
    if cos < 1 - 1e-6:
        assert not ssam_norm_law(g, g_adv, g)


@pytest.mark.claim("SSAM-norm")
@pytest.mark.parametrize("ascent", ["unnormalized", "normalized"])
def test_ssam_step_length_in_the_jitted_loop(ascent):
    """[SSAM-norm] Through refimpl.train on the noisy quadratic model (each step its own
    mini-batch): with a plain SGD base, ||w_t - w_{t+1}|| = lr ||g_t||, where ||g_t||
    is the loop's own record of the first gradient's norm. Rounding: the base step and
    the difference add u (lr ||g|| + ||w_{t+1}||) per coordinate on top of the (d + 4)
    eps of the rescale: allowed (d + 8) eps (lr ||g_t|| + ||w_{t+1}||).
    Teeth: plain SAM's step lengths fail the same check on most steps."""
    prob = NoisyQuadratic(h=np.array([10.0, 3.0, 1.0, 0.3]), batch_size=4)
    lr, w0, T, d = 0.05, np.array([1.0, -2.0, 0.5, 3.0]), 200, 4
    for cls, must_hold in ((StableSAM, True), (SAM, False)):
        rec = train(prob, cls(SGD(lr=lr), rho=0.2, ascent=ascent, eps=0.0), w0=w0, steps=T,
                    record_params=True, seed=3)
        steps = np.array([l2_norm(rec.params[t] - rec.params[t + 1]) for t in range(T)])
        tol = (d + 8) * EPS * (lr * rec.grad_norms + np.array([l2_norm(p) for p in rec.params[1:]]))
        ok = np.abs(steps - lr * rec.grad_norms) <= tol
        if must_hold:
            assert ok.all()
        else:
            assert ok.mean() < 0.05


# --------------------------------------------------------------------------- SSAM-1d

@st.composite
def convex_1d(draw):
    """f(w) = sum_k a_k softplus(b_k w + c_k) + gamma w^2 / 2 with a_k, gamma >= 0:
    convex, f' nondecreasing, not quadratic."""
    k = draw(st.integers(1, 4))
    a = np.array(draw(st.lists(st.floats(0.0, 5.0), min_size=k, max_size=k)))
    b = np.array(draw(st.lists(st.floats(-3.0, 3.0), min_size=k, max_size=k)))
    c = np.array(draw(st.lists(st.floats(-3.0, 3.0), min_size=k, max_size=k)))
    gamma = draw(st.floats(0.0, 5.0))

    def oracle(w):
        z = b * w[0] + c
        sig = 0.5 * (1.0 + np.tanh(0.5 * z))                      # logistic(z)
        loss = float(np.sum(a * np.logaddexp(0.0, z)) + 0.5 * gamma * w[0] ** 2)
        return loss, np.array([float(np.sum(a * b * sig)) + gamma * w[0]])

    return oracle


@pytest.mark.claim("SSAM-1d")
@given(oracle=convex_1d(), w=finite_floats(-5.0, 5.0), rho=st.floats(0.0, 3.0),
       ascent=st.sampled_from(["normalized", "unnormalized"]))
def test_ssam_is_gradient_descent_on_convex_1d(oracle, w, rho, ascent):
    """[SSAM-1d] On a convex f in one dimension, for both ascent forms: g_adv = f'(w + e)
    with e of the sign of g, so sign(g_adv) = sign(g) (f' nondecreasing) whenever
    g_adv != 0, and g_ssam = g_adv |g| / |g_adv| = g: the StableSAM step IS the
    gradient-descent step, to (eps + eps^2) |g|."""
    g, g_adv, g_ssam = observe(StableSAM, oracle, [w], rho=rho, ascent=ascent, eps=0.0)
    assume(1e-150 < abs(g[0]) < 1e150 and abs(g_adv[0]) > 1e-150)
    assert abs(g_ssam[0] - g[0]) <= (EPS + EPS**2) * abs(g[0])


@pytest.mark.claim("SSAM-1d")
@given(oracle=convex_1d(), w=finite_floats(-5.0, 5.0), rho=st.floats(0.01, 3.0))
def test_ssam_1d_check_has_teeth(oracle, w, rho):
    """Teeth: the same check rejects plain USAM (g_adv = f'(w + rho g)) whenever it
    differs from g by more than the tolerance, i.e. wherever f is not locally flat."""
    g, g_adv, g_desc = observe(SAM, oracle, [w], rho=rho, ascent="unnormalized", eps=0.0)
    assume(1e-150 < abs(g[0]) < 1e150)
    assume(abs(g_adv[0] - g[0]) > 1e-9 * abs(g[0]))
    assert abs(g_desc[0] - g[0]) > (EPS + EPS**2) * abs(g[0])


@pytest.mark.claim("SSAM-1d")
@given(seed=st.integers(0, 2**32 - 1), w=finite_floats(-5.0, 5.0), rho=st.floats(0.0, 5.0),
       ascent=st.sampled_from(["normalized", "unnormalized"]))
def test_ssam_1d_general_law_sign_of_g_adv_times_norm_of_g(seed, w, rho, ascent):
    """[SSAM-1d, exact form] On ANY smooth f (here random tanh sums, not convex):
    g_ssam = sign(g_adv) |g|. So SSAM is GD exactly when g_adv has the sign of g, and
    steps UPHILL (g_ssam = -g) where the ascent point's slope has the other sign."""
    g, g_adv, g_ssam = observe(StableSAM, tanh_oracle(1, seed), [w], rho=rho,
                               ascent=ascent, eps=0.0)
    assume(1e-150 < abs(g[0]) < 1e150 and abs(g_adv[0]) > 1e-150)
    assert abs(g_ssam[0] - math.copysign(abs(g[0]), g_adv[0])) <= (EPS + EPS**2) * abs(g[0])


@pytest.mark.claim("SSAM-1d")
@pytest.mark.parametrize("ascent,w0", [("unnormalized", 1.0), ("normalized", 0.05)])
def test_ssam_1d_fails_off_convexity_it_converges_to_a_maximum(ascent, w0):
    """Where SSAM-1d stops holding. f = -10 w^2 (lam = -20), rho = 0.1, lr = 0.03.
    Unnormalized ascent: g_adv = lam (1 + rho lam) w = 20 w has the sign OPPOSITE to
    g = -20 w (lam < -1/rho), so g_ssam = +20 w and w <- (1 - 0.6) w = 0.4 w: SSAM
    converges to the MAXIMUM. Normalized ascent: e = -0.1 sign(w), and for |w| < rho
    the ascent point lies across the maximum: the same 0.4 w contraction.
    Gradient descent escapes: w <- 1.6 w. Over 60 steps: 0.4^60 = 1.3e-24, 1.6^60 = 1.8e12."""
    q = Quadratic(np.array([[-20.0]]))
    T = 60
    rec = train(q, StableSAM(SGD(lr=0.03), rho=0.1, ascent=ascent, eps=0.0), w0=np.array([w0]),
                steps=T, record_params=True)
    ratios = rec.params[1:, 0] / rec.params[:-1, 0]
    assert np.all(np.abs(ratios - 0.4) <= 4 * EPS)         # a few roundings per step
    gd = train(q, SGD(lr=0.03), w0=np.array([w0]), steps=T)
    assert abs(gd.w[0]) >= 0.99 * 1.6**T * w0


# ---------------------------------------------------------------- SAM-quadratic: USAM

@pytest.mark.claim("SAM-quadratic")
@given(d=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), rho=st.floats(0.0, 2.0),
       w=vectors(d_min=4, d_max=4, lo=-10.0, hi=10.0))
def test_usam_descent_gradient_is_h_times_i_plus_rho_h_times_w(d, seed, rho, w):
    """[SAM-quadratic] On f = 1/2 w^T H w (any symmetric H), USAM's descent gradient is
    g_adv = H (w + rho H w) = H (I + rho H) w. Compared with the exact rational value:
    each of the two d-term matrix-vector products and the three scalar operations err by
    at most (d + 3) u relative to the absolute-value computation, so the allowance per
    coordinate is (d + 3) eps (|H| (|w| + rho |H| |w|))_i."""
    w = w[:d]
    rng = np.random.Generator(np.random.PCG64(seed))
    A = rng.normal(size=(d, d)) * 3
    H = A + A.T
    _, _, g_desc = observe(SAM, quadratic_oracle(H), w, rho=rho, ascent="unnormalized")
    Hf = [[Fraction(x) for x in row] for row in H.tolist()]
    wf, rf = [Fraction(x) for x in w.tolist()], Fraction(rho)
    Hw = [sum(Hf[i][j] * wf[j] for j in range(d)) for i in range(d)]
    exact = [sum(Hf[i][j] * (wf[j] + rf * Hw[j]) for j in range(d)) for i in range(d)]
    aH, aw = np.abs(H), np.abs(w)
    bound = (d + 3) * EPS * (aH @ (aw + rho * (aH @ aw))) + 8 * DENORM
    assert np.all(np.abs(g_desc - np.array([float(x) for x in exact])) <= bound)


@pytest.mark.claim("SAM-quadratic")
@pytest.mark.parametrize("H,rho,lr", [([[2, 1], [1, 3]], 0.25, 0.125), ([[4, 0], [0, 1]], 0.5, 0.0625),
                                      ([[1, -2], [-2, 1]], 0.125, 0.25)])
def test_usam_iterates_equal_the_closed_form_bitwise(H, rho, lr):
    """[SAM-quadratic] w_t = (I - lr H (I + rho H))^t w_0 through the jitted loop, BIT FOR
    BIT: with dyadic H, rho, lr and w_0 every intermediate value of the first steps is a
    float (checked below), so the loop must produce the exact rational closed form
    (the last H is indefinite: the identity does not need definiteness)."""
    Hn = np.array(H, dtype=np.float64)
    w0 = np.array([3.0, -1.0])
    F = Fraction
    M = [[F(int(i == j)) - F(lr) * sum(F(H[i][k]) * (F(int(k == j)) + F(rho) * F(H[k][j]))
                                        for k in range(2)) for j in range(2)] for i in range(2)]
    x = [F(3), F(-1)]
    expected = [list(x)]
    for _ in range(6):
        x = [M[i][0] * x[0] + M[i][1] * x[1] for i in range(2)]
        expected.append(list(x))
    assert all(F(float(v)) == v for row in expected for v in row)
    rec = train(Quadratic(Hn), SAM(SGD(lr=lr), rho=rho, ascent="unnormalized"), w0=w0,
                steps=6, record_params=True)
    assert [[F(v) for v in row] for row in rec.params.tolist()] == expected


def per_step_allowance(x, k_lr):
    """Local rounding bound of one USAM/SSAM step on a diagonal quadratic, coordinate
    x_t -> x_{t+1}: six roundings (lam x, rho g, x + e, lam (x + e), lr * ., x - .), each
    relative to a term no larger than (|x_t| + |x_{t+1}|) (1 + |k_lr|) with k_lr the
    largest |lr lam (1 + rho lam)| of the coordinate: 8 u (|x_t| + |x_{t+1}|)(1 + |k_lr|),
    plus an absolute 2^-1074 per rounding in the subnormal range."""
    return 8 * U * (np.abs(x[:-1]) + np.abs(x[1:])) * (1 + abs(k_lr)) + 6 * DENORM


def geometric_allowance(x, m, k_lr):
    """sum_k |m|^(T-1-k) delta_k: the local errors carried to step T by a multiplier m."""
    delta = per_step_allowance(x, k_lr)
    T = delta.shape[0]
    return float(sum(abs(m) ** (T - 1 - k) * delta[k] for k in range(T)))


def usam_bound(lam_max, rho):
    return 2.0 / (lam_max * (1.0 + rho * lam_max))


spectra = st.lists(st.floats(0.1, 1.0), min_size=0, max_size=3).flatmap(
    lambda rest: st.floats(0.5, 20.0).map(lambda top: np.array([top] + [top * f for f in rest])))


@pytest.mark.claim("SAM-quadratic")
@given(lam=spectra, rho_lam=st.floats(0.0, 3.0), delta=st.floats(0.05, 0.5))
def test_usam_stability_boundary_both_sides(lam, rho_lam, delta):
    """[SAM-quadratic] USAM on diag(lam) (rho = rho_lam / lam_max) is linear with
    multipliers m_i = 1 - lr lam_i (1 + rho lam_i); it is stable iff
    lr < 2 / (lam_max (1 + rho lam_max)) =: lr*. At (1 - delta) lr*: every coordinate
    obeys |x_T| <= |m_i|^T |x_0| + allowance, T the first step where max |m_i|^T <= 1e-6;
    at (1 + delta) lr*: |x_T| >= |m_1|^T |x_0| - allowance with |m_1| = 1 + 2 delta,
    T the first step where that is >= 1e6. Teeth: GD's bound 2 / lam_max is wrong for
    USAM: at 0.95 * 2 / lam_max USAM diverges whenever rho lam_max >= 0.2 (then
    |m_1| = |1 - 1.9 (1 + rho lam_max)| >= 1.28)."""
    rho = rho_lam / lam[0]
    k = lam * (1.0 + rho * lam)
    q = Quadratic(np.diag(lam))
    w0 = np.ones(lam.shape[0])

    lr = (1 - delta) * usam_bound(lam[0], rho)
    m = 1.0 - lr * k
    T = math.ceil(math.log(1e-6) / math.log(np.max(np.abs(m)))) if np.max(np.abs(m)) > 0 else 1
    x = train(q, SAM(SGD(lr=lr), rho=rho, ascent="unnormalized"), w0=w0, steps=T,
              record_params=True).params
    for i in range(lam.shape[0]):
        assert abs(x[T, i]) <= abs(m[i]) ** T + geometric_allowance(x[:, i], m[i], lr * k[i])
    assert np.max(np.abs(x[T])) <= 1e-6 * (1 + 1e-9)

    lr = (1 + delta) * usam_bound(lam[0], rho)
    m1 = 1.0 - lr * k[0]
    T = math.ceil(math.log(1e6) / math.log(abs(m1)))
    x = train(q, SAM(SGD(lr=lr), rho=rho, ascent="unnormalized"), w0=w0, steps=T,
              record_params=True).params
    assert abs(x[T, 0]) >= abs(m1) ** T - geometric_allowance(x[:, 0], m1, lr * k[0])
    assert abs(x[T, 0]) >= 1e6 * (1 - 1e-9)

    if rho_lam >= 0.2:   # teeth: (1 - delta) 2 / lam_max exceeds lr* once (1 + rho lam)(1 - delta) > 1
        lr = (1 - 0.05) * 2.0 / lam[0]
        m1 = 1.0 - lr * k[0]
        assert abs(m1) > 1.0
        T = math.ceil(math.log(1e6) / math.log(abs(m1)))
        x = train(q, SAM(SGD(lr=lr), rho=rho, ascent="unnormalized"), w0=w0, steps=T).w
        assert abs(x[0]) >= 1e6 * (1 - 1e-9)


# -------------------------------------------------------------- SAM-quadratic: StableSAM

def ssam_envelope(lam, lr, w0):
    """The convergence envelope of proofs/sam.md (SAM-quadratic, StableSAM part) for
    lam_1 > lam_2 > ... > lam_m > 0 (diagonal H, one coordinate per eigenvalue) and
    lr < 2 / lam_1. Returns (K, Q): |x_j(t)| <= K_j Q_j^t for every t, any rho_t >= 0
    (so for both ascent forms). Constants:
      p_j = max(|1 - lr lam_j|, 1 - lr lam_j^2 / lam_1),  q_j = (1 + p_j) / 2,
      theta_j = (1 + q_j) / (lr lam_j),  phi_j = 1 - 1 / theta_j^2,
      A_j = max(1, lr lam_j^2 / lam_m - 1),
      Q_m = q_m, K_m = |x_m(0)|;  for j < m: Q_j = max(q_j, Q_{>j}),
      K_j = max(|x_j(0)|, A_j lam_{j+1} K_{>j} / (lam_j sqrt(phi_j) Q_j)),
    with K_{>j} = sum_{i>j} K_i and Q_{>j} = max_{i>j} Q_i."""
    m = lam.shape[0]
    p = np.maximum(np.abs(1 - lr * lam), 1 - lr * lam**2 / lam[0])
    q = (1 + p) / 2
    K, Q = np.zeros(m), np.zeros(m)
    K[m - 1], Q[m - 1] = abs(w0[m - 1]), q[m - 1]
    for j in range(m - 2, -1, -1):
        theta = (1 + q[j]) / (lr * lam[j])
        phi = 1 - 1 / theta**2
        A = max(1.0, lr * lam[j] ** 2 / lam[m - 1] - 1)
        Q[j] = max(q[j], Q[j + 1:].max())
        K[j] = max(abs(w0[j]), A * lam[j + 1] * K[j + 1:].sum() / (lam[j] * math.sqrt(phi) * Q[j]))
    return K, Q


def envelope_steps(K, Q, target):
    """The first T with sum_j K_j Q_j^T <= target (derived, not guessed)."""
    logs = np.log(Q)
    T = 1
    while np.sum(K * np.exp(T * logs)) > target:
        T += 1
    return T


distinct_spectra = st.lists(st.floats(0.125, 0.99), min_size=1, max_size=3, unique=True).flatmap(
    lambda fs: st.floats(0.5, 20.0).map(
        lambda top: np.array([top] + [top * f for f in sorted(fs, reverse=True)])))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # diverging runs, NUMBA_DISABLE_JIT
@pytest.mark.claim("SAM-quadratic")
@settings(max_examples=40)
@given(lam=distinct_spectra, rho_lam=st.floats(0.0, 3.0), delta=st.floats(0.05, 0.5),
       ascent=st.sampled_from(["unnormalized", "normalized"]),
       signs=st.lists(st.sampled_from([1.0, -1.0]), min_size=4, max_size=4),
       tilt=st.floats(-3.0, 3.0))
def test_stable_sam_has_exactly_gds_range(lam, rho_lam, delta, ascent, signs, tilt):
    """[SAM-quadratic] StableSAM restores GD's range EXACTLY (not approximately): on any
    diagonal SPD quadratic, for both ascent forms (eps = 0),
    (a) at lr = (1 - delta) 2 / lam_1 every coordinate stays under the envelope
        K_j Q_j^t of the proof (ssam_envelope) at every step, and ||w_T|| <= 1e-6 ||w_0||
        at the first step T where the envelope guarantees it;
    (b) at lr = (1 + delta) 2 / lam_1 the top coordinate grows by at least
        lr lam_1 - 1 = 1 + 2 delta at EVERY step (the descent gradient's top component
        is s c_1 lam_1 x_1 with s c_1 >= 1).
    w_0 has coordinates +-10^(tilt j / (d - 1)), so the gradient can start
    dominated by a low-curvature coordinate (the case where s c_1 > 1 and the top
    coordinate transiently grows). Rounding: envelope x (1 + 32 d t eps); per-step
    growth allowance (d + 12) eps (|x_t| + |x_{t+1}|) (norms in s plus six roundings).
    Teeth: the same envelope check rejects plain USAM whenever (1 - delta)(1 + rho lam_1)
    > 1.05, i.e. lr is above USAM's own bound and its top multiplier is below -1.1
    (then |x_1| >= 1.1^T while the envelope at T is below 1e-6 ||w_0|| < |x_1(0)|)."""
    d = lam.shape[0]
    rho = rho_lam / lam[0]
    w0 = np.array([signs[j] * 10.0 ** (tilt * j / max(d - 1, 1)) for j in range(d)])
    q = Quadratic(np.diag(lam))

    lr = (1 - delta) * 2.0 / lam[0]
    K, Q = ssam_envelope(lam, lr, w0)
    T = envelope_steps(K, Q, 1e-6 * l2_norm(w0))
    assert T <= 6000
    x = train(q, StableSAM(SGD(lr=lr), rho=rho, ascent=ascent, eps=0.0), w0=w0, steps=T,
              record_params=True).params
    t = np.arange(T + 1)[:, None]
    assert np.all(np.abs(x) <= K * Q ** t * (1 + 32 * d * t * EPS) + 1e-300)
    assert l2_norm(x[T]) <= 1e-6 * l2_norm(w0) * (1 + 1e-9)

    # teeth: no renormalization (USAM / SAM) breaks the envelope when lr > its own bound
    if (1 - delta) * (1 + rho_lam) > 1.05:
        y = train(q, SAM(SGD(lr=lr), rho=rho, ascent=ascent, eps=0.0), w0=w0, steps=T,
                  record_params=True, on_divergence="stop").params
        n = y.shape[0]
        assert not np.all(np.abs(y) <= K * Q ** t[:n] * (1 + 32 * d * t[:n] * EPS) + 1e-300)

    lr = (1 + delta) * 2.0 / lam[0]
    growth = lr * lam[0] - 1
    T = math.ceil(math.log(1e6 / abs(w0[0])) / math.log(growth))
    x = train(q, StableSAM(SGD(lr=lr), rho=rho, ascent=ascent, eps=0.0), w0=w0, steps=T,
              record_params=True).params[:, 0]
    slack = (d + 12) * EPS * (np.abs(x[:-1]) + np.abs(x[1:]))
    assert np.all(np.abs(x[1:]) >= growth * np.abs(x[:-1]) - slack)
    assert abs(x[T]) >= 1e6 * (1 - 1e-9)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # diverging runs, NUMBA_DISABLE_JIT
@pytest.mark.claim("SAM-quadratic")
@pytest.mark.parametrize("eps", [0.0, 1e-12])
def test_spec_numbers_diag_10_1_rho_0_1(eps):
    """[SAM-quadratic] The example listed with the claim (proofs/sources.md#theoretical-claims),
    H = diag(10, 1), rho = 0.1, w_0 = (1, 1), through
    the jitted loop. Derived: USAM's bound is 2 / (10 (1 + 0.1 * 10)) = 0.1 exactly;
    GD's and StableSAM's (both ascent forms) are 2 / 10 = 0.2 exactly. So the listed
    numbers are right (USAM diverges above 0.1; SSAM and GD converge at 0.19 and
    diverge at 0.21), and the boundary is exact: 0.199 converges, 0.201 diverges.
    'converges' = ||w_T|| <= 1e-6 and 'diverges' = ||w_T|| >= 1e6 after T = 6000 steps;
    enough by the closed forms: the slowest converging case (0.199) has the envelope
    (ssam_envelope) below 1e-6 by then, and the slowest diverging one (0.201) grows by
    >= 1.01 a step, 1.01^6000 > 1e25. With the default eps = 1e-12 the rescale stalls
    once ||g_adv|| ~ 1e-12 (proofs/sam.md), far below the 1e-6 criterion."""
    lam, T, w0 = np.array([10.0, 1.0]), 6000, np.ones(2)
    K, Q = ssam_envelope(lam, 0.199, w0)
    assert envelope_steps(K, Q, 1e-6) <= T
    q = Quadratic(np.diag(lam))

    def verdict(opt):
        rec = train(q, opt, w0=w0, steps=T, on_divergence="stop")
        n = l2_norm(rec.w)
        return "converges" if n <= 1e-6 else ("diverges" if rec.diverged or n >= 1e6 else "?")

    usam = lambda lr: SAM(SGD(lr=lr), rho=0.1, ascent="unnormalized", eps=eps)
    assert [verdict(usam(lr)) for lr in (0.09, 0.099, 0.101, 0.11, 0.19)] == \
        ["converges", "converges", "diverges", "diverges", "diverges"]
    for lr, expected in ((0.19, "converges"), (0.199, "converges"), (0.201, "diverges"),
                         (0.21, "diverges")):
        assert verdict(SGD(lr=lr)) == expected
        for ascent in ("unnormalized", "normalized"):
            assert verdict(StableSAM(SGD(lr=lr), rho=0.1, ascent=ascent, eps=eps)) == expected


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # diverging runs, NUMBA_DISABLE_JIT
@pytest.mark.claim("SAM-quadratic")
def test_stability_bounds_check_has_teeth():
    """Teeth: the boundary check 'converges (||w_T|| <= 1e-6) at 0.95 x bound, diverges
    (>= 1e6) at 1.05 x bound' on diag(10, 1), rho = 0.1, T = 6000 accepts USAM with
    0.1 and StableSAM (both ascents) and GD with 0.2, and rejects the swapped bounds:
    0.2 for USAM (it diverges at 0.19), 0.1 for StableSAM (it converges at 0.105), and
    StableSAM without the renormalization (that is USAM) with 0.2. T suffices by the
    closed forms: the slowest converging case has multiplier modulus <= 0.99, the
    slowest diverging one >= 1.05."""
    q, w0, T = Quadratic(np.diag([10.0, 1.0])), np.ones(2), 6000

    def accepted(make, bound):
        below = train(q, make(0.95 * bound), w0=w0, steps=T, on_divergence="stop")
        above = train(q, make(1.05 * bound), w0=w0, steps=T, on_divergence="stop")
        converged = not below.diverged and l2_norm(below.w) <= 1e-6
        diverged = above.diverged or l2_norm(above.w) >= 1e6
        return converged and diverged

    usam = lambda lr: SAM(SGD(lr=lr), rho=0.1, ascent="unnormalized", eps=0.0)
    ssam = lambda ascent: (lambda lr: StableSAM(SGD(lr=lr), rho=0.1, ascent=ascent, eps=0.0))
    assert accepted(usam, 0.1) and accepted(lambda lr: SGD(lr=lr), 0.2)
    assert accepted(ssam("unnormalized"), 0.2) and accepted(ssam("normalized"), 0.2)
    assert not accepted(usam, 0.2)
    assert not accepted(ssam("unnormalized"), 0.1) and not accepted(ssam("normalized"), 0.1)


@pytest.mark.claim("SAM-quadratic")
def test_stable_sam_transient_growth_on_diag_10_1():
    """Where 'same range as GD' stops meaning 'same dynamics': at lr = 0.19 < 0.2 with
    w_0 = (1e-3, 1) the gradient is dominated by the flat coordinate, s = ||g|| /
    ||g_adv|| is close to 1 / 1.1, and the sharp coordinate's multiplier is
    1 - 0.19 * 10 * s (1 + 0.1 * 10) ~ 1 - 3.8 / 1.1 = -2.45: it GROWS at first
    (GD's multiplier there is -0.9), until it dominates the gradient and s -> 1/2.
    Checked: the first step multiplies x_1 by a factor within 1e-5 of
    1 - 3.8 s_0, s_0 = sqrt(100e-6 + 1) / sqrt(400e-6 + 1.21); |x_1| peaks above 50x
    its start (GD's |x_1| only shrinks); the run still converges (the envelope's guarantee)."""
    q = Quadratic(np.diag([10.0, 1.0]))
    w0 = np.array([1e-3, 1.0])
    x = train(q, StableSAM(SGD(lr=0.19), rho=0.1, eps=0.0), w0=w0, steps=3000,
              record_params=True).params
    s0 = math.sqrt(100e-6 + 1.0) / math.sqrt(400e-6 + 1.21)
    assert abs(x[1, 0] / x[0, 0] - (1 - 3.8 * s0)) <= 1e-5
    assert round(1 - 3.8 * s0, 2) == -2.45
    assert np.max(np.abs(x[:, 0])) > 50 * 1e-3
    assert l2_norm(x[-1]) <= 1e-6


# ------------------------------------------------------------------------ SAM-saddle

@pytest.mark.claim("SAM-saddle")
@given(lam=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=5),
       rho=st.floats(0.0, 1.0), lr=st.floats(1e-3, 1.0),
       w=vectors(d_min=5, d_max=5, lo=-10.0, hi=10.0))
@example(lam=[1.0, -5.0, -20.0], rho=0.1, lr=0.05, w=np.ones(5))
def test_which_directions_attract_under_usam_and_stable_sam(lam, rho, lr, w):
    """[SAM-saddle] On f = 1/2 w^T diag(lam) w, per coordinate and per step, the
    displacement x - x' has the sign of x * k with k = lam (1 + rho lam) (USAM's
    effective curvature) for USAM AND StableSAM: StableSAM's displacement is a common
    positive multiple s of USAM's (g_ssam = s g_adv). So a direction is pushed toward
    the saddle iff k > 0, i.e. lam > 0 OR lam < -1/rho, and away iff -1/rho < lam < 0.
    Gradient descent's sign is that of lam alone.
    (Coordinates with |lr k| < 1e-8, or |x| < 1e-100, are skipped: rounding can decide
    those signs.)"""
    lam = np.array(lam)
    d = lam.shape[0]
    w = w[:d]
    k = lam * (1 + rho * lam)
    H = np.diag(lam)
    _, _, g_usam = observe(SAM, quadratic_oracle(H), w, rho=rho, ascent="unnormalized", eps=0.0)
    _, _, g_ssam = observe(StableSAM, quadratic_oracle(H), w, rho=rho, ascent="unnormalized",
                           eps=0.0)
    decided = (np.abs(lr * k) > 1e-8) & (np.abs(w) > 1e-100)
    assume(decided.any())
    for gd in (g_usam, g_ssam):         # lr * g_descent is the displacement x - x'
        assert np.array_equal(np.sign(gd[decided]), np.sign(w[decided] * k[decided]))
    s = float(g_ssam @ g_usam) / float(g_usam @ g_usam)
    assert s > 0
    assert l2_norm(g_ssam - s * g_usam) <= (d + 4) * EPS * l2_norm(g_ssam)


@pytest.mark.claim("SAM-saddle")
def test_saddle_check_has_teeth_spec_interval_rejected():
    """The project's notes first said USAM's effective curvature lam (1 + rho lam)
    'turns positive for -1/rho < lam < 0'. It is the other way round: lam (1 + rho lam) is an upward parabola
    with roots 0 and -1/rho, NEGATIVE between them and positive for lam < -1/rho.
    rho = 0.1: lam = -5 gives -5 * 0.5 = -2.5 (repelled), lam = -20 gives -20 * (-1) =
    +20 (attracted). That first predicate is rejected by the observed per-step signs;
    the corrected one (lam > 0 or lam < -1/rho) is accepted."""
    lam = np.array([1.0, -5.0, -20.0])
    rho, w = 0.1, np.ones(3)
    _, _, g = observe(StableSAM, quadratic_oracle(np.diag(lam)), w, rho=rho, eps=0.0)
    attracted = g > 0                               # displacement toward 0 from w = +1
    spec_predicate = (lam > 0) | ((-1 / rho < lam) & (lam < 0))
    corrected = (lam > 0) | (lam < -1 / rho)
    assert np.array_equal(attracted, corrected)
    assert not np.array_equal(attracted, spec_predicate)
    assert np.array_equal(lam * (1 + rho * lam), [1.1, -2.5, 20.0])
    # the grid's envelope rejects the claim's first heading ("lam < -1/rho ATTRACTS"):
    # at lam = -30, lr = 0.05, USAM's y grows like 2^T; and it rejects a sign slip in k
    y = saddle_runs(rho, 0.05, [-30.0])["USAM"][0]
    assert y > 1.0 and abs(y / 2.0**SADDLE_T - 1) < 1e-12
    slip = abs(1 - 0.05 * -30.0 * (1 - rho * -30.0))       # k = lam (1 - rho lam): 7
    assert not (slip - 1e-9) ** SADDLE_T <= y <= (slip + 1e-9) ** SADDLE_T


@pytest.mark.claim("SAM-saddle")
def test_usam_and_stable_sam_converge_to_a_saddle_gd_escapes():
    """[SAM-saddle] H = diag(1, -20), rho = 0.1, lr = 0.05, w_0 = (1, 1), 300 steps.
    USAM's multipliers are 1 - 0.05 * 1.1 = 0.945 and 1 - 0.05 * 20 = 0: it converges
    to the saddle, as does StableSAM (s in [1/1.1, 1]: multipliers in [0.945, 0.95] and
    [0, 0.091]); GD's multiplier along -20 is 2: it escapes. With H = diag(1, -5)
    (-1/rho < -5 < 0) all three escape (multipliers 1.125 for USAM, >= 1 + 0.125/1.1
    for StableSAM, 1.25 for GD)."""
    T = 300
    runs = {}
    for name, H in (("strong", [1.0, -20.0]), ("weak", [1.0, -5.0])):
        q = Quadratic(np.diag(H))
        for opt_name, opt in (("usam", SAM(SGD(lr=0.05), rho=0.1, ascent="unnormalized")),
                              ("ssam", StableSAM(SGD(lr=0.05), rho=0.1, eps=0.0)),
                              ("gd", SGD(lr=0.05))):
            runs[name, opt_name] = train(q, opt, w0=np.ones(2), steps=T).w
    for opt_name in ("usam", "ssam"):
        assert l2_norm(runs["strong", opt_name]) <= 0.95**T * 1.0001
    assert abs(runs["strong", "gd"][1]) >= 2.0**T * 0.9999
    assert abs(runs["weak", "usam"][1]) >= 1.125**T * 0.9999
    assert abs(runs["weak", "ssam"][1]) >= (1 + 0.125 / 1.1) ** T * 0.9999
    assert abs(runs["weak", "gd"][1]) >= 1.25**T * 0.9999


#: the SAM-saddle grid, fixed before any number was computed: every (rho, lr), and
#: negative curvatures from -60 to -0.25 (plus the review's -30), on f = 1/2 (x^2 + lam y^2)
SADDLE_RHOS = (0.05, 0.1, 0.5)
SADDLE_LRS = (0.01, 0.05, 0.1, 0.3)
SADDLE_LAMS = np.unique(np.concatenate([np.linspace(-60.0, -0.25, 80), [-30.0]]))
SADDLE_T = 20


def saddle_envelopes(rho, lr, lam):
    """The SAM-saddle statement for the direction of curvature lam of
    f = 1/2 (x^2 + lam y^2), as per-step factors (lo, hi) with lo |y| <= |y'| <= hi |y|
    in exact arithmetic, for USAM, StableSAM and GD.
    USAM: y' = m y, m = 1 - lr k, k = lam (1 + rho lam): lo = hi = |m|.
    StableSAM: y' = (1 - lr s k) y with s = ||g|| / ||g_adv|| in [1 / max|c|, 1 / min|c|],
    c = 1 + rho lam_j over both directions: lo and hi are the extremes of |1 - lr s k| over
    that interval (|1 - lr s k| is convex in s; lo = 0 if the interval crosses 1 / (lr k)).
    GD: y' = (1 - lr lam) y."""
    k = lam * (1 + rho * lam)
    m = abs(1 - lr * k)
    c = np.abs([1 + rho, 1 + rho * lam])
    s_lo, s_hi = 1 / c.max(), 1 / c.min()
    ends = sorted((abs(1 - lr * s_lo * k), abs(1 - lr * s_hi * k)))
    crosses = k > 0 and s_lo <= 1 / (lr * k) <= s_hi
    ssam = (0.0 if crosses else ends[0], ends[1])
    gd = abs(1 - lr * lam)
    return (m, m), ssam, (gd, gd), s_hi * abs(k)

def saddle_runs(rho, lr, lams):
    """|y_T| / |y_0| for USAM and StableSAM (one 2-D run per lam: StableSAM couples the
    directions through s) and GD, from w_0 = (1, 1), T = SADDLE_T steps, eps = 0."""
    out = {"USAM": [], "StableSAM": [], "GD": []}
    for lam in lams:
        q = Quadratic(np.diag([1.0, lam]))
        for name, opt in (("USAM", SAM(SGD(lr=lr), rho=rho, ascent="unnormalized", eps=0.0)),
                          ("StableSAM", StableSAM(SGD(lr=lr), rho=rho, eps=0.0)),
                          ("GD", SGD(lr=lr))):
            out[name].append(abs(train(q, opt, w0=np.ones(2), steps=SADDLE_T).w[1]))
    return {name: np.array(v) for name, v in out.items()}


@pytest.mark.claim("SAM-saddle")
def test_saddle_attraction_and_divergence_on_a_grid():
    """[SAM-saddle] On the whole grid (3 rho x 4 lr x 81 lam), after T = 20 steps from
    w_0 = (1, 1), |y_T| lies in the envelope [(lo - a)^T, (hi + a)^T] of the statement's
    per-step factors (saddle_envelopes) for USAM, StableSAM and GD. Rounding: one USAM or
    GD step rounds at most 6 times, each by <= u M |y| with M = 1 + lr |lam| (1 + rho
    |lam|) bounding every intermediate, so a = 8 eps M; StableSAM's two norms and the
    rescale add a few eps relative to s (proofs/sam.md, SSAM-norm): a = 32 eps (1 + lr
    s_max |k|). A direction CONVERGES where hi + a < 1 and DIVERGES where lo - a > 1;
    USAM and GD are decided in every cell (no |m| within 1e-6 of 1 on the grid).
    So a strong negative curvature lam < -1/rho attracts USAM only where
    lr lam (1 + rho lam) < 2 (lam = -30, rho = 0.1, lr = 0.05 has m = -2 and diverges),
    and the grid contains both outcomes; GD diverges in every cell."""
    counts = {"usam strong, converges": 0, "usam strong, diverges": 0,
              "ssam converges": 0, "ssam diverges": 0, "ssam undecided": 0}
    for rho in SADDLE_RHOS:
        lams = SADDLE_LAMS[np.abs(SADDLE_LAMS * rho + 1) > 1e-9]  # c = 0: s undefined
        for lr in SADDLE_LRS:
            runs = saddle_runs(rho, lr, lams)
            for i, lam in enumerate(lams):
                usam, ssam, gd, lr_s_k = saddle_envelopes(rho, lr, lam)
                big_m = 1 + lr * abs(lam) * (1 + rho * abs(lam))
                for name, (lo, hi), a in (("USAM", usam, 8 * EPS * big_m),
                                          ("StableSAM", ssam, 32 * EPS * (1 + lr * lr_s_k)),
                                          ("GD", gd, 8 * EPS * (1 + lr * abs(lam)))):
                    y = runs[name][i]
                    assert max(lo - a, 0.0) ** SADDLE_T <= y <= (hi + a) ** SADDLE_T, \
                        (name, rho, lr, lam, lo, hi, y)
                    if name != "StableSAM":
                        assert hi + a < 1 or lo - a > 1, (name, rho, lr, lam)
                    elif hi + a < 1:
                        counts["ssam converges"] += 1
                    elif lo - a > 1:
                        counts["ssam diverges"] += 1
                    else:
                        counts["ssam undecided"] += 1
                assert gd[0] > 1
                if lam < -1 / rho:
                    counts["usam strong, " + ("converges" if usam[1] < 1 else "diverges")] += 1
    print("\nSAM-saddle grid:", counts)
    assert counts["usam strong, converges"] > 0 and counts["usam strong, diverges"] > 0


# ------------------------------------------------------------------------ SAM-bounce

@pytest.mark.claim("SAM-bounce")
@given(lam=st.floats(0.1, 10.0), h=st.floats(0.05, 1.9), rho=st.floats(1e-3, 1.0),
       w0=st.floats(-5.0, 5.0))
@example(lam=1.0, h=0.5, rho=0.5, w0=0.5)     # w_1 = 0.25 - 0.25 = 0 exactly: stays at 0
@example(lam=1.0, h=1.0, rho=1.0, w0=1.0)     # |1 - h| = 0: on the cycle after one step
def test_normalized_sam_ends_in_a_two_cycle(lam, h, rho, w0):
    """[SAM-bounce] Foret's normalized SAM on f = lam w^2 / 2 (eps = 0) never converges
    to the minimum: e = rho sign(w) is a kick of fixed size, and the iterates approach
    the 2-cycle +-w_c with w_c = lr lam rho / (2 - lr lam), the error shrinking by
    |1 - lr lam| each step once the sign alternates. T = 40 + log(1e-10) / log|1 - h|
    steps (the sign starts alternating within |w_0| / (h rho) steps; we require that
    below 30 via w_0 and h rho bounds, else skip). Rounding: each step errs by at most
    6 u (|w| + h (|w| + rho)) <= 6 u (5 w_c + 2 rho) near the cycle, damped by
    |1 - h| <= 0.95 (a sum of at most 20 such errors): allowed 256 eps (w_c + rho).
    The one exception: an orbit that lands exactly on w = 0 (g = 0, so e = 0) stays there.
    Teeth: the check rejects the plausible wrong amplitude lr lam rho / 2, and USAM
    (unnormalized, linear, multiplier m = 1 - lr lam (1 + rho lam)) does not bounce: where
    |m|^T |w_0| < w_c / 4 it ends below w_c / 4 (no cycle).  (At |m| = 1 USAM sits on its
    own marginal 2-cycle, e.g. h = rho lam = 1, where |w_t| = |w_0|.)"""
    lr = h / lam
    assume(abs(w0) > 1e-3)          # w = 0 is a fixed point: g = 0 gives e = 0
    assume(abs(w0) / (h * rho) < 30 and abs(1 - h) < 0.95)
    T = 40 + (math.ceil(math.log(1e-10) / math.log(abs(1 - h))) if h != 1 else 1)
    w_c = h * rho / (2 - h)
    q = Quadratic(np.array([[lam]]))
    x = train(q, SAM(SGD(lr=lr), rho=rho, eps=0.0), w0=np.array([w0]), steps=T,
              record_params=True).params[:, 0]
    if np.any(x == 0.0):        # the orbit landed exactly on the kink w = 0 (measure zero)
        assert np.all(x[np.argmax(x == 0.0):] == 0.0)
        return
    tol = 1e-10 * (abs(w0) + w_c) + 256 * EPS * (w_c + rho)
    assert abs(abs(x[T]) - w_c) <= tol
    assert abs(x[T] + x[T - 1]) <= 2 * tol                   # alternating signs
    assert abs(abs(x[T]) - h * rho / 2) > tol                # a wrong amplitude is rejected
    m = 1 - h * (1 + rho * lam)                              # USAM's (linear) multiplier
    if abs(m) < 1 and abs(m) ** T * abs(w0) < w_c / 4:       # USAM does not bounce: -> 0
        u = train(q, SAM(SGD(lr=lr), rho=rho, eps=0.0, ascent="unnormalized"),
                  w0=np.array([w0]), steps=T).w[0]
        assert abs(u) <= abs(m) ** T * abs(w0) * (1 + 1e-9) + 1e-300 < w_c / 4


@pytest.mark.claim("SAM-bounce")
def test_bounce_check_has_teeth():
    """Teeth: lam = 1, lr = 0.5 (h = 0.5), rho = 0.1, w_0 = 1, 200 steps (the sign starts
    alternating within 2 steps, then the error shrinks by 0.5 a step). The cycle check
    (|w_T| = w_c = 0.05 / 1.5 = 1/30 with alternating signs, to 1e-12: rounding near
    the cycle is ~1e-17 and the transient 0.5^198 is nil) accepts Foret's
    SAM and rejects the amplitude h rho / 2 = 0.025 and USAM (linear, multiplier
    1 - 0.5 * 1.1 = 0.45: it ends at 0, no cycle)."""
    q, T = Quadratic(np.array([[1.0]])), 200

    def cycle(ascent, amplitude):
        x = train(q, SAM(SGD(lr=0.5), rho=0.1, ascent=ascent, eps=0.0), w0=np.ones(1), steps=T,
                  record_params=True).params[:, 0]
        return abs(abs(x[T]) - amplitude) <= 1e-12 and abs(x[T] + x[T - 1]) <= 1e-12

    assert cycle("normalized", 1 / 30)
    assert not cycle("normalized", 0.025)
    assert not cycle("unnormalized", 1 / 30)


# ------------------------------------------------------------------------ SAM-escape

@pytest.mark.claim("SAM-escape")
@given(lam=st.floats(-9.5, -0.5), lr=st.floats(0.01, 0.3), rho=st.just(0.1),
       lam_plus=st.floats(0.5, 5.0))
@example(lam=-5.0, lr=0.05, rho=0.1, lam_plus=1.0)
def test_usam_escapes_a_weak_saddle_more_slowly_than_gd_and_stable_sam_catches_up(lam, lr, rho,
                                                                                  lam_plus):
    """[SAM-escape] f = 1/2 (lam_plus x^2 + lam y^2), -1/rho < lam < 0 (weak negative
    curvature), w_0 = (1, 1e-3), 60 steps through refimpl.train, eps = 0.
    * GD's y grows by exactly 1 + lr |lam| per step and USAM's by 1 + lr |lam| c,
      c = 1 - rho |lam| in (0, 1): strictly slower. Checked on the closed forms
      (1 + lr |lam| c)^t y_0 within 8 eps (t + 1) relative (one multiplier per step, a
      few roundings each).
    * StableSAM's per-step factor is 1 + lr |lam| c s with s = ||g|| / ||g_adv||, in
      [1 / max|c_j|, 1 / min|c_j|]; computing s from the recorded iterate (an independent
      closed form: s^2 = (lp^2 x^2 + lam^2 y^2) / (cp^2 lp^2 x^2 + c^2 lam^2 y^2)) predicts
      every step's factor to 1e-12 relative, and once y dominates the ascent gradient
      (x -> 0, y grows) s c -> 1: the last factor is within 1 % of GD's whenever
      (cp lp x)^2 <= 0.02 (c lam y)^2 at that step (then |s c - 1| <= 0.01)."""
    T = 60
    q = Quadratic(np.diag([lam_plus, lam]))
    w0 = np.array([1.0, 1e-3])
    c, cp = 1 + rho * lam, 1 + rho * lam_plus
    runs = {}
    for name, opt in (("gd", SGD(lr=lr)),
                      ("usam", SAM(SGD(lr=lr), rho=rho, ascent="unnormalized", eps=0.0)),
                      ("ssam", StableSAM(SGD(lr=lr), rho=rho, eps=0.0))):
        runs[name] = train(q, opt, w0=w0, steps=T, record_params=True,
                           on_divergence="stop").params
    t = np.arange(T + 1)
    for name, m in (("gd", 1 + lr * abs(lam)), ("usam", 1 + lr * abs(lam) * c)):
        y = runs[name][:, 1]
        assert np.all(np.abs(y / (w0[1] * m ** t) - 1) <= 8 * EPS * (t + 1)), name
    assert 1 + lr * abs(lam) * c < 1 + lr * abs(lam)
    x, y = runs["ssam"][:, 0], runs["ssam"][:, 1]
    s = np.sqrt((lam_plus**2 * x**2 + lam**2 * y**2) / (cp**2 * lam_plus**2 * x**2 + c**2 * lam**2 * y**2))
    factor = y[1:] / y[:-1]
    np.testing.assert_allclose(factor, 1 + lr * abs(lam) * c * s[:-1], rtol=1e-12)
    assert np.all((s >= 1 / max(c, cp) * (1 - 1e-12)) & (s <= 1 / min(c, cp) * (1 + 1e-12)))
    # s c = sqrt((1 + r) / (1 + r')) with r = lp^2 x^2 / (lam^2 y^2) <= r' = (cp / c)^2 r:
    # once r' <= 0.02, |s c - 1| <= 0.01 and the factor is within 1 % of GD's
    if (cp * lam_plus * x[-2]) ** 2 <= 0.02 * (c * lam * y[-2]) ** 2:
        assert abs(factor[-1] / (1 + lr * abs(lam)) - 1) <= 0.01


@pytest.mark.claim("SAM-escape")
@given(lam=st.floats(-10.0, -0.1), h=st.floats(0.05, 0.999), rho=st.floats(0.01, 1.0),
       frac=st.floats(-0.999, 0.999))
@example(lam=-2.0, h=0.4, rho=0.5, frac=0.6)
def test_normalized_sam_never_leaves_a_one_dimensional_saddle_from_within_rho(lam, h, rho, frac):
    """[SAM-escape] f = lam w^2 / 2 with lam < 0, normalized SAM (eps = 0), lr |lam| = h < 1,
    |w_0| = |frac| rho < rho: |w_t| <= max(|w_0|, h rho) at every one of 300 steps
    (through refimpl.train): the iterates stay trapped near the maximum, where GD and
    USAM leave it. Allowance 8 eps rho per bound (one step rounds a few times, and the
    bound is not compounded: the map contracts toward the invariant interval's inside)."""
    lr = h / abs(lam)
    w0 = frac * rho
    # below |g| ~ 1.5e-154, g^2 underflows and the float norm (sqrt of a sum of squares,
    # unscaled, as in the peers) is not |g|: the kick is then not rho (proofs/sam.md)
    assume(abs(lam * w0) > 1e-100)
    q = Quadratic(np.array([[lam]]))
    w = train(q, SAM(SGD(lr=lr), rho=rho, eps=0.0), w0=np.array([w0]), steps=300,
              record_params=True).params[:, 0]
    bound = max(abs(w0), h * rho)
    assert np.all(np.abs(w) <= bound + 8 * EPS * rho)


@pytest.mark.claim("SAM-escape")
def test_escape_checks_teeth():
    """Teeth. (i) The trap check rejects USAM (unnormalized, rho = 0.25: c = 0.5,
    multiplier 1.2) and GD (multiplier 1.4) from the start of the trap test's example
    (lam = -2, lr 0.2, w_0 = 0.3): both leave |w| <= 0.3. (ii) Normalized SAM with h = 1.5 > 1 escapes from w_0 = rho / 100:
    the first flip lands at h rho - (1 + h) |w_0| > rho, outside the interval, so the
    condition h < 1 is needed. (iii) The USAM escape check rejects the factor without c
    (GD's), and StableSAM's predicted factor with s = 1."""
    q = Quadratic(np.array([[-2.0]]))
    for opt in (SAM(SGD(lr=0.2), rho=0.25, ascent="unnormalized", eps=0.0), SGD(lr=0.2)):
        w = train(q, opt, w0=np.array([0.3]), steps=100, record_params=True).params[:, 0]
        assert np.max(np.abs(w)) > 0.3 + 8 * EPS
    q = Quadratic(np.array([[-1.0]]))
    w = train(q, SAM(SGD(lr=1.5), rho=0.5, eps=0.0), w0=np.array([0.005]), steps=5,
              record_params=True, on_divergence="stop").params[:, 0]
    assert abs(w[1]) > 0.5 and abs(w[-1]) > abs(w[1])
    lam, lr, rho = -5.0, 0.05, 0.1
    q = Quadratic(np.diag([1.0, lam]))
    y = train(q, SAM(SGD(lr=lr), rho=rho, ascent="unnormalized", eps=0.0),
              w0=np.array([1.0, 1e-3]), steps=60, record_params=True).params[:, 1]
    t = np.arange(61)
    assert not np.all(np.abs(y / (1e-3 * (1 + lr * abs(lam)) ** t) - 1) <= 8 * EPS * (t + 1))
    p = train(q, StableSAM(SGD(lr=lr), rho=rho, eps=0.0), w0=np.array([1.0, 1e-3]), steps=60,
              record_params=True).params
    c = 1 + rho * lam
    assert not np.allclose(p[1:, 1] / p[:-1, 1], 1 + lr * abs(lam) * c, rtol=1e-6)
    # and here StableSAM does catch up with GD: the dominance condition holds at the end
    assert (1.1 * p[-2, 0]) ** 2 <= 0.02 * (c * lam * p[-2, 1]) ** 2
    assert abs(p[-1, 1] / p[-2, 1] / (1 + lr * abs(lam)) - 1) <= 0.01


@pytest.mark.claim("SAM-escape")
@given(lam=st.floats(-9.5, -0.5), lr=st.floats(0.01, 0.3), rho=st.just(0.1),
       sigma2=st.floats(0.01, 4.0))
def test_noise_driven_escape_from_the_saddle_exact_second_moment(lam, lr, rho, sigma2):
    """[SAM-escape, noise] From w_0 = w* (on the saddle) of the NQM with h = lam < 0 and
    noise variance sigma2, the mean stays 0 and the exact variance (refimpl.theory) is
    Var w_n = lr^2 k^2 sigma2 (m^(2n) - 1) / (m^2 - 1) with m = 1 + lr |lam| k, k = 1 for
    GD and k = c = 1 - rho |lam| for USAM (its ascent scales the noise by c too): checked
    to 1e-12 relative over 40 steps; USAM's second moment is strictly below GD's at every
    step n >= 1, so noise drives it out more slowly."""
    p = NoisyQuadratic(np.array([lam]), c=np.array([sigma2]), batch_size=1)
    n = np.arange(41)
    c = 1 + rho * lam
    out = {}
    for name, opt, k in (("gd", SGD(lr=lr), 1.0),
                         ("usam", SAM(SGD(lr=lr), rho=rho, ascent="unnormalized"), c)):
        mo = theory.moments(p, opt, w0=np.zeros(1), steps=40)
        m = 1 + lr * abs(lam) * k
        closed = lr**2 * k**2 * sigma2 * (m ** (2 * n) - 1) / (m**2 - 1)
        assert not np.any(mo.mean_w)
        np.testing.assert_allclose(mo.var_w[:, 0], closed, rtol=1e-12)
        out[name] = mo.var_w[:, 0]
    assert np.all(out["usam"][1:] < out["gd"][1:])


# ------------------------------------------------------------------------ SAM-ascent

def trust_region_max(lam, g, rho):
    """max over ||e|| <= rho of g.e + 1/2 e^T diag(lam) e, by an algorithm independent of
    refimpl (the trust-region conditions): a boundary maximiser is e = (mu I - diag(lam))^-1 g
    with mu >= max(lam) and ||e|| = rho; for mu > max(lam) the norm decreases in mu, so mu
    solves sum g_i^2 / (mu - lam_i)^2 = rho^2 by bisection. If even mu -> max(lam) gives
    ||e|| < rho (g has no weight on the top eigendirection: the 'hard case'), mu = max(lam)
    and the missing length goes along the top direction (also tried near the hard case, where
    bisection cannot resolve mu). An interior maximiser exists only for a negative definite
    diag(lam): -g / lam, if inside the ball. Every candidate is feasible and the maximiser
    is among them, so the best candidate is the maximum."""
    lam, g = np.asarray(lam, dtype=np.float64), np.asarray(g, dtype=np.float64)
    top = float(np.max(lam))
    on_top = lam == top
    q = lambda e: float(g @ e + 0.5 * e @ (lam * e))   # noqa: E731
    candidates = []
    if np.any(g[on_top] != 0):
        def norm_at(mu):
            return math.sqrt(float(np.sum(g**2 / (mu - lam) ** 2)))
        # at hi every mu - lam_i >= ||g|| / rho, so norm_at(hi) <= rho: the root is in (lo, hi]
        lo, hi = top, top + float(np.linalg.norm(g)) / rho + 1.0
        for _ in range(400):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if norm_at(mid) > rho:
                lo = mid
            else:
                hi = mid
        candidates.append(q(g / (hi - lam)))
    # mu = max(lam) exactly (the hard case, and near it, where bisection cannot resolve mu):
    # the other directions at mu, the missing length along the top direction
    e = np.zeros_like(g)
    e[~on_top] = g[~on_top] / (top - lam[~on_top])
    rest = rho**2 - float(e @ e)
    if rest >= 0:
        i = int(np.argmax(on_top))
        e[i] = math.copysign(math.sqrt(rest), g[i]) if g[i] != 0 else math.sqrt(rest)
        candidates.append(q(e))
    elif not np.any(g[on_top] != 0) and np.any(~on_top):
        # the top direction is not reached: the secular equation without it
        candidates.append(trust_region_max(lam[~on_top], g[~on_top], rho))
    if np.all(lam < 0):
        e_in = -g / lam
        if float(np.linalg.norm(e_in)) <= rho:
            candidates.append(q(e_in))
    return max(candidates)


@pytest.mark.claim("SAM-ascent")
@given(g=vectors(d_min=1, d_max=6, lo=-10.0, hi=10.0), rho=st.floats(1e-3, 2.0),
       seed=st.integers(0, 2**32 - 1))
def test_normalized_ascent_maximises_the_linearised_loss_over_the_ball(g, rho, seed):
    """[SAM-ascent, first order] max over ||e|| <= rho of g.e is rho ||g|| (Cauchy-Schwarz,
    the dual of the 2-norm is the 2-norm), attained at e* = rho g / ||g||. refimpl's
    normalized ascent (eps = 0) is e*: observed through one SAM step on the linear loss
    f(v) = g.v, the ascent point is w + e with g.e = rho ||g|| within (d + 6) eps rho
    ||g||, and ||e|| = rho within (d + 6) eps rho. No other point of the ball does better:
    200 random e with ||e|| <= rho (directions from a seeded Gaussian) have g.e <= rho ||g||."""
    assume(float(np.linalg.norm(g)) > 1e-100)
    seen = []

    def oracle(v):
        seen.append(v.copy())
        return float(g @ v), g.copy()

    opt = SAM(SGD(lr=1.0), rho=rho, eps=0.0)
    w = np.zeros_like(g)
    opt.step(w, opt.init(w), oracle)
    e = seen[1] - seen[0]
    d = g.shape[0]
    gn = float(np.linalg.norm(g))
    assert abs(float(g @ e) - rho * gn) <= (d + 6) * EPS * rho * gn
    assert abs(float(np.linalg.norm(e)) - rho) <= (d + 6) * EPS * rho
    rng = np.random.Generator(np.random.PCG64(seed))
    z = rng.standard_normal((200, d))
    pts = rho * rng.uniform(0, 1, (200, 1)) * z / np.linalg.norm(z, axis=1, keepdims=True)
    assert np.all(pts @ g <= rho * gn * (1 + 4 * d * EPS))


@pytest.mark.claim("SAM-ascent")
@given(lam=st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=5),
       w=vectors(d_min=5, d_max=5, lo=-3.0, hi=3.0), rho=st.floats(0.01, 1.0))
@example(lam=[10.0, 1.0], w=np.array([0.0, 1.0, 0, 0, 0]), rho=0.5)
def test_first_order_ascent_is_within_half_rho_squared_spread_of_the_true_inner_max(lam, w, rho):
    """[SAM-ascent, quadratic] On f = 1/2 w^T diag(lam) w the true inner maximum
    M = max_{||e|| <= rho} f(w + e) (trust_region_max, independent) and SAM's ascent value
    f(w + e*) satisfy 0 <= M - f(w + e*) <= rho^2 (max(lam_max, 0) - lam_min) / 2: the
    first-order ascent is optimal up to the curvature spread over the ball (for a positive
    semi-definite H, rho^2 (lam_max - lam_min) / 2). (Proof: proofs/sam.md.)
    Allowance 1e-12 (|f| + rho ||g|| + rho^2 max|lam|) for rounding in both evaluations
    and the bisection."""
    lam = np.array(lam)
    d = lam.shape[0]
    w = w[:d]
    g = lam * w
    assume(float(np.linalg.norm(g)) > 1e-6)
    f = lambda v: 0.5 * float(v @ (lam * v))   # noqa: E731
    seen = []

    def oracle(v):
        seen.append(v.copy())
        return f(v), lam * v

    opt = SAM(SGD(lr=1.0), rho=rho, eps=0.0)
    opt.step(w, opt.init(w), oracle)
    sam_value = f(seen[1])
    M = f(w) + trust_region_max(lam, g, rho)
    tol = 1e-12 * (abs(f(w)) + rho * float(np.linalg.norm(g)) + rho**2 * float(np.max(np.abs(lam))))
    assert sam_value <= M + tol
    assert M - sam_value <= rho**2 * (max(lam.max(), 0.0) - lam.min()) / 2 + tol


def sign_push_probability(h, x, c, batch):
    """P(sign(g) = +1) for the one-coordinate NQM gradient g = h x + sqrt(c / B) z:
    Phi(h x / sqrt(c / B)), so the expected ascent push of normalized SAM (eps = 0) is
    rho h (2 Phi - 1) (proofs/sam.md, SAM-ascent item 3)."""
    return float(scipy.stats.norm.cdf(h * x / math.sqrt(c / batch)))


@pytest.mark.claim("SAM-ascent")
@pytest.mark.parametrize("batch", [1, 4, 16, 64])
def test_m_sharpness_the_ascent_push_shrinks_with_the_ascent_batch(batch):
    """[SAM-ascent, m-sharpness] One coordinate of the NQM (h = 2, c = 1, w - w* = 0.1),
    normalized SAM (eps = 0) with the ascent computed on the same mini-batch of size B:
    g_adv - g = rho h sign(g) exactly, so over R = 4000 seeded batches the number K of
    positive pushes is Binomial(R, Phi(h x sqrt(B / c))) EXACTLY; K lies in the central
    interval of probability 1 - 1e-6 / 4 (four batch sizes). The expected push
    rho h (2 Phi - 1) grows with B: 0.159, 0.311, 0.576, 0.890 (times rho h) for
    B = 1, 4, 16, 64. USAM's expected descent gradient is (1 + rho h) h x whatever B (its
    ascent is linear in the noise): checked exactly by refimpl.theory's one-step mean."""
    h, c, x, rho, R = 2.0, 1.0, 0.1, 0.05, 4000
    p = sign_push_probability(h, x, c, batch)
    problem = NoisyQuadratic(np.array([h]), c=np.array([c]), batch_size=batch)
    noise = problem.draw_noise(R, 7)
    opt = SAM(SGD(lr=1.0), rho=rho, eps=0.0)
    w = np.array([x])
    pushes = []
    for z in noise:
        grad = problem.grad_fn(z)
        _, g = grad(w)
        w_new, _, _ = opt.step(w, opt.init(w), grad)
        pushes.append((x - w_new[0]) - g[0])   # g_adv - g
    pushes = np.array(pushes)
    assert np.all(np.abs(np.abs(pushes) - rho * h) <= 8 * EPS * (1 + abs(x) * h + 3 * math.sqrt(c / batch)))
    K = int(np.sum(pushes > 0))
    level = 1e-6 / 4
    lo, hi = scipy.stats.binom.ppf(level / 2, R, p), scipy.stats.binom.isf(level / 2, R, p)
    assert lo <= K <= hi, (K, lo, hi, p)
    expected = {1: 0.159, 4: 0.311, 16: 0.576, 64: 0.890}[batch]
    assert round(2 * p - 1, 3) == expected
    usam = SAM(SGD(lr=1.0), rho=rho, ascent="unnormalized")
    m = theory.moments(problem, usam, w0=w, steps=1)
    assert abs((x - m.mean_w[1, 0]) - (1 + rho * h) * h * x) <= 4 * EPS


@pytest.mark.claim("SAM-ascent")
def test_ascent_checks_teeth():
    """Teeth: (i) the first-order check rejects the descent direction -rho g / ||g|| and
    USAM's rho g (not on the sphere unless ||g|| = 1); (ii) the binomial check rejects
    the full-batch ascent (an ascent from the noise-free gradient pushes +1 every time:
    K = R, far above the interval at B = 4); (iii) the curvature bound rejects a claimed
    bound of rho^2 (lam_max - lam_min) / 20 on diag(10, 1) at w = (0, 1), rho = 0.5."""
    g = np.array([3.0, -4.0])
    rho = 0.1
    for e in (-rho * g / 5.0, rho * g):
        assert not (abs(float(g @ e) - rho * 5.0) <= 8 * EPS * rho * 5.0
                    and abs(float(np.linalg.norm(e)) - rho) <= 8 * EPS * rho)
    R, p = 4000, sign_push_probability(2.0, 0.1, 1.0, 4)
    hi = scipy.stats.binom.isf(1e-6 / 8, R, p)
    assert R > hi
    lam, w, rho = np.array([10.0, 1.0]), np.array([0.0, 1.0]), 0.5
    g = lam * w
    f = lambda v: 0.5 * float(v @ (lam * v))   # noqa: E731
    e = rho * g / np.linalg.norm(g)
    gap = f(w) + trust_region_max(lam, g, rho) - f(w + e)
    assert rho**2 * (lam.max() - lam.min()) / 20 < gap <= rho**2 * (lam.max() - lam.min()) / 2
