"""Claims SGD-quadratic and SGD-nesterov (proofs/sgd.md): gradient descent and momentum
on a quadratic, checked through the jitted loop ``refimpl.train`` and the step API.

* GD's closed form ``w_t - w* = (I - lr H)^t (w_0 - w*)`` holds BIT FOR BIT while the
  arithmetic is exact (dyadic H, lr, w: every intermediate is a float), for any
  symmetric H, definite or not.
* Heavy ball (PyTorch form, dampening 0) and Nesterov obey the two-term recursions the
  proof derives by eliminating the buffer; again bit for bit with dyadic data.
* Stability: heavy ball is stable iff 0 < lr lam < 2 (1 + mu), Nesterov iff
  0 < lr lam < 2 (1 + mu) / (1 + 2 mu). Both sides of each boundary are checked
  against envelopes derived from the characteristic polynomial
  ``z^2 - a z + b`` (no guessed margins): just below, ``|x_T| <= |x_1| T r^(T-1) +
  b |x_0| (T-1) r^(T-2)`` (r = largest root modulus < 1); just above,
  ``|x_T| >= |c_1| |z_1|^T - |c_2| |z_2|^T`` with |z_1| > 1.
* Teeth: the same boundary check rejects the wrong bounds 2/lam (GD's), 2/((1-mu) lam),
  the heavy-ball bound applied to Nesterov, and the undamped bound applied to a run
  with dampening.

Rounding allowance on the envelopes (``allowance``). Write the computed run as the
two-term recursion plus a local error: x_{k+1} = a x_k - b x_{k-1} + delta_k. The
roundings of step k are those of the buffer update (lam x, mu buf, the sum, and for
Nesterov the combination d), multiplied by lr when subtracted, plus those of lr d and of
the subtraction. Relative to their operands each errs by u = eps/2, and every operand
times lr is at most 4 m_k with m_k = |x_{k-1}| + |x_k| + |x_{k+1}| (lr buf = x_k -
x_{k+1}, h <= 4): delta_k <= 16 eps m_k. In the subnormal range a rounding errs by up
to 2^-1075 absolutely instead, and the buffer's are multiplied by lr: at most
(4 lr + 2) 2^-1074 in all. The recursion carries delta_k to step T multiplied by
U_{T-k-1}, |U_n| <= (n + 1) r^n, so the allowance is
sum_k (T - k) r^(T-k-1) (16 eps m_k + (4 lr + 2) 2^-1074), computed from the run itself.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from refimpl import SGD, Quadratic, train

EPS = np.finfo(np.float64).eps
DENORM = 2.0**-1074  # absolute error of a rounding in the subnormal range

# ------------------------------------------------------------------------ exact helpers

def representable(x: Fraction) -> bool:
    """True if the rational x is exactly a float64 (no rounding needed)."""
    return abs(x) < 2.0**900 and Fraction(float(x)) == x


def exact_gd_run(H, w_star, w0, lr, T):
    """Plain GD in exact rationals, in the loop's order of operations
    (r = w - w*, g_i = sum_j H_ij r_j left to right, w <- w - lr g). Returns the
    iterates up to the last step whose every intermediate value is a float64 (so the
    float loop computes exactly these numbers)."""
    d = len(w0)
    w = [Fraction(x) for x in w0]
    out = [list(w)]
    for _ in range(T):
        r = [w[j] - Fraction(w_star[j]) for j in range(d)]
        new, ok = [], all(representable(x) for x in r)
        for i in range(d):
            acc = Fraction(0)
            for j in range(d):
                acc += Fraction(H[i][j]) * r[j]
                ok = ok and representable(Fraction(H[i][j]) * r[j]) and representable(acc)
            step = Fraction(lr) * acc
            new.append(w[i] - step)
            ok = ok and representable(step) and representable(new[-1])
        if not ok:
            break
        w = new
        out.append(list(w))
    return out


def matrix_power_closed_form(H, w_star, w0, lr, t):
    """(I - lr H)^t (w0 - w*) + w* in exact rationals, by repeated matrix products
    (the closed form itself, independent of the loop's recursion)."""
    d = len(w0)
    M = [[Fraction(int(i == j)) - Fraction(lr) * Fraction(H[i][j]) for j in range(d)]
         for i in range(d)]
    P = [[Fraction(int(i == j)) for j in range(d)] for i in range(d)]
    for _ in range(t):
        P = [[sum(P[i][k] * M[k][j] for k in range(d)) for j in range(d)] for i in range(d)]
    e0 = [Fraction(w0[j]) - Fraction(w_star[j]) for j in range(d)]
    return [sum(P[i][j] * e0[j] for j in range(d)) + Fraction(w_star[i]) for i in range(d)]


# ------------------------------------------------------------------ GD closed form

@st.composite
def dyadic_problems(draw):
    d = draw(st.integers(1, 3))
    H = [[0] * d for _ in range(d)]
    for i in range(d):
        for j in range(i, d):
            H[i][j] = H[j][i] = draw(st.integers(-4, 4))   # symmetric, any signature
    w_star = [draw(st.integers(-8, 8)) for _ in range(d)]
    w0 = [draw(st.integers(-8, 8)) for _ in range(d)]
    lr = 2.0 ** -draw(st.integers(1, 5))
    return np.array(H, dtype=np.float64), np.array(w_star, float), np.array(w0, float), lr


@pytest.mark.claim("SGD-quadratic")
@given(prob=dyadic_problems())
def test_gd_iterates_equal_the_closed_form_bitwise(prob):
    """[SGD-quadratic] w_t = (I - lr H)^t (w_0 - w*) + w*, for ANY symmetric H (definite,
    indefinite or singular). With dyadic H, w*, w_0 and lr = 2^-k every intermediate
    value is a float while its numerator fits in 53 bits, so the jitted loop and the
    step API must reproduce the exact rational closed form BIT FOR BIT up to that step
    (at least 3 steps are always exact here: numerators grow by <= 7 bits a step)."""
    H, w_star, w0, lr = prob
    exact = exact_gd_run(H.tolist(), w_star.tolist(), w0.tolist(), lr, 12)
    T = len(exact) - 1
    assert T >= 3
    rec = train(Quadratic(H, w_star), SGD(lr=lr), w0=w0, steps=T, record_params=True)
    opt, w, state = SGD(lr=lr), w0, SGD(lr=lr).init(w0)
    for t in range(T + 1):
        closed = [float(x) for x in matrix_power_closed_form(H, w_star, w0, lr, t)]
        assert [Fraction(x) for x in closed] == exact[t]          # closed form == recursion
        assert np.array_equal(rec.params[t], closed)               # the loop, bitwise
        assert np.array_equal(w, closed)                           # the step API, bitwise
        w, state, _ = opt.step(w, state, Quadratic(H, w_star).grad_fn())


@pytest.mark.claim("SGD-quadratic")
def test_gd_closed_form_teeth_wrong_sign_or_order():
    """Teeth: the same bitwise comparison rejects the two classic slips,
    (I + lr H)^t and the ascent-then-shift (I - lr H)^t w_0 (forgetting w*).
    H = [[2, 1], [1, 3]], w* = (1, -1), w_0 = (3, 2), lr = 1/4:
    w_1 = w_0 - 1/4 H (2, 3) = (3, 2) - 1/4 (7, 11) = (1.25, -0.75)."""
    H, w_star, w0, lr = np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([1.0, -1.0]), \
        np.array([3.0, 2.0]), 0.25
    rec = train(Quadratic(H, w_star), SGD(lr=lr), w0=w0, steps=4, record_params=True)
    assert np.array_equal(rec.params[1], [1.25, -0.75])
    for t in range(1, 5):
        right = [float(x) for x in matrix_power_closed_form(H, w_star, w0, lr, t)]
        wrong_sign = [float(x) for x in matrix_power_closed_form(H, w_star, w0, -lr, t)]
        no_shift = [float(x) for x in matrix_power_closed_form(H, [0.0, 0.0], w0, lr, t)]
        assert np.array_equal(rec.params[t], right)
        assert not np.array_equal(rec.params[t], wrong_sign)
        assert not np.array_equal(rec.params[t], no_shift)


# ----------------------------------------------------- the two-term recursions, bitwise

def coordinate_run(lam, lr, mu, T, *, nesterov=False, convention="pytorch", dampening=0.0,
                   x0=1.0):
    """The loop on f = 1/2 diag(lam) w^2 (w* = 0): the (T + 1, d) iterates.
    A diagonal H keeps the coordinates independent (the sums only add exact zeros)."""
    lam = np.asarray(lam, dtype=np.float64)
    opt = SGD(lr=lr, momentum=mu, nesterov=nesterov, convention=convention,
              dampening=dampening)
    x0 = np.broadcast_to(np.asarray(x0, dtype=np.float64), lam.shape).copy()
    rec = train(Quadratic(np.diag(lam)), opt, w0=x0, steps=T, record_params=True,
                on_divergence="stop")
    return rec.params


def recursion(kind, h, mu, damp=0.0):
    """(a, b, c1): x_{t+1} = a x_t - b x_{t-1} for t >= 1 and x_1 = c1 x_0, with
    h = lr lam (proofs/sgd.md). Dampening d enters as h' = (1 - d) h after step 1."""
    if kind == "heavy":
        return 1.0 + mu - (1.0 - damp) * h, mu, 1.0 - h
    return (1.0 + mu) * (1.0 - h), mu * (1.0 - h), 1.0 - h * (1.0 + mu)


@pytest.mark.claim("SGD-quadratic")
@pytest.mark.parametrize("convention", ["pytorch", "keras"])
@pytest.mark.parametrize("lam,lr,mu", [(3.0, 0.25, 0.5), (1.0, 0.5, 0.75), (6.0, 0.5, 0.25),
                                       (-2.0, 0.125, 0.5)])
def test_heavy_ball_obeys_the_two_term_recursion_bitwise(lam, lr, mu, convention):
    """[SGD-quadratic] Eliminating the buffer (proofs/sgd.md): per eigen-coordinate,
    x_1 = (1 - h) x_0 and x_{t+1} = (1 + mu - h) x_t - mu x_{t-1}, h = lr lam.
    Dyadic h and mu keep every value exact for the 10 steps checked (numerators grow by
    <= 4 bits a step), so the loop matches the exact recursion bit for bit. The
    recursion has characteristic polynomial z^2 - (1 + mu - h) z + mu. Keras's
    v = mu v - lr g; w += v gives the SAME iterates at a constant lr (so the same region;
    it is not a wrong variant of this claim)."""
    T = 10
    x = coordinate_run([lam], lr, mu, T, convention=convention)[:, 0]
    a, b, c1 = (Fraction(v) for v in recursion("heavy", lam * lr, mu))
    ex = [Fraction(1), c1]
    for _ in range(T - 1):
        ex.append(a * ex[-1] - b * ex[-2])
    assert all(representable(v) for v in ex)
    assert [Fraction(v) for v in x] == ex


@pytest.mark.claim("SGD-nesterov")
@pytest.mark.parametrize("lam,lr,mu", [(3.0, 0.25, 0.5), (1.0, 0.5, 0.75), (2.0, 0.5, 0.25)])
def test_nesterov_obeys_its_two_term_recursion_bitwise(lam, lr, mu):
    """[SGD-nesterov] PyTorch Nesterov (d = g + mu buf): x_1 = (1 - h (1 + mu)) x_0 and
    x_{t+1} = (1 + mu)(1 - h) x_t - mu (1 - h) x_{t-1}; bit for bit with dyadic data.
    The heavy-ball recursion is rejected on the same run."""
    T = 10
    x = coordinate_run([lam], lr, mu, T, nesterov=True)[:, 0]
    for kind, should_match in (("nesterov", True), ("heavy", False)):
        a, b, c1 = (Fraction(v) for v in recursion(kind, lam * lr, mu))
        ex = [Fraction(1), c1]
        for _ in range(T - 1):
            ex.append(a * ex[-1] - b * ex[-2])
        assert ([Fraction(v) for v in x] == ex) is should_match


# ------------------------------------------------------------------ stability envelopes

def roots(a, b):
    """Roots of z^2 - a z + b, largest modulus first (complex if needed)."""
    disc = complex(a * a - 4.0 * b)
    z1, z2 = (a + disc ** 0.5) / 2, (a - disc ** 0.5) / 2
    return (z1, z2) if abs(z1) >= abs(z2) else (z2, z1)


def upper_envelope(a, b, c1, T):
    """|x_T| / |x_0| <= |c1| T r^(T-1) + |b| (T-1) r^(T-2): x_T = x_1 U_{T-1} - b x_0
    U_{T-2} with U_n = sum_{j<=n} z1^j z2^(n-j), |U_n| <= (n+1) r^n (any roots,
    repeated or complex)."""
    r = abs(roots(a, b)[0])
    return abs(c1) * T * r ** (T - 1) + abs(b) * (T - 1) * r ** (T - 2)


def lower_envelope(a, b, c1, T):
    """For real roots |z1| > |z2|: x_t = C1 z1^t + C2 z2^t with C1 = (x_1 - z2 x_0) /
    (z1 - z2), C2 = (z1 x_0 - x_1) / (z1 - z2); |x_T| / |x_0| >= |C1||z1|^T - |C2||z2|^T."""
    z1, z2 = roots(a, b)
    assert z1.imag == 0.0 and z2.imag == 0.0
    z1, z2 = z1.real, z2.real
    C1, C2 = (c1 - z2) / (z1 - z2), (z1 - c1) / (z1 - z2)
    return abs(C1) * abs(z1) ** T - abs(C2) * abs(z2) ** T


def allowance(x, a, b, T, lr):
    """Rounding allowance for |x_T| against the envelopes (module docstring)."""
    r = abs(roots(a, b)[0])
    m = np.abs(x[:T + 1])
    total = 0.0
    for k in range(T):
        m_k = m[k] + m[k + 1] + (m[k - 1] if k > 0 else 0.0)
        total += (T - k) * r ** (T - k - 1) * (16 * EPS * m_k + (4 * lr + 2) * DENORM)
    return total


def steps_to_converge(kind, hs, mu, damp=0.0, target=1e-6, cap=4000):
    """The smallest T whose upper envelope is below ``target`` for every h in hs:
    the number of steps is DERIVED from the closed form, not guessed."""
    for T in range(2, cap):
        if all(upper_envelope(*recursion(kind, h, mu, damp), T) <= target for h in hs):
            return T
    raise AssertionError("envelope does not reach the target: widen the margins")


def steps_to_diverge(kind, h_top, mu, damp=0.0, target=1e6, cap=4000):
    for T in range(2, cap):
        if lower_envelope(*recursion(kind, h_top, mu, damp), T) >= target:
            return T
    raise AssertionError("envelope does not reach the target")


def hb_bound(lam_max, mu):
    return 2.0 * (1.0 + mu) / lam_max


def nesterov_bound(lam_max, mu):
    return 2.0 * (1.0 + mu) / ((1.0 + 2.0 * mu) * lam_max)


spectra = st.lists(st.floats(0.25, 1.0), min_size=0, max_size=3).flatmap(
    lambda rest: st.floats(0.1, 20.0).map(lambda top: np.array([top] + [top * f for f in rest])))
margins = st.floats(0.05, 0.5)


@pytest.mark.claim("SGD-quadratic")
@given(lam=spectra, mu=st.floats(0.0, 0.9), delta=margins)
@example(lam=np.array([0.1015625, 0.05389637]), mu=0.0, delta=0.05)   # ends subnormal
def test_heavy_ball_converges_below_and_diverges_above_the_bound(lam, mu, delta):
    """[SGD-quadratic] Heavy ball (PyTorch, dampening 0): at lr = (1 - delta) 2 (1 + mu)
    / lam_max every coordinate stays under its upper envelope (root moduli < 1) for T
    steps, T the first step where every envelope is below 1e-6; at lr = (1 + delta) 2
    (1 + mu) / lam_max the top coordinate stays above its lower envelope (a real root
    below -1) until that envelope exceeds 1e6. Rounding: ``allowance`` (module
    docstring); the final 1e-6 / 1e6 comparisons allow 1e-9 relative for it."""
    top = lam[0]
    lr = (1.0 - delta) * hb_bound(top, mu)
    hs = [lr * v for v in lam]
    T = steps_to_converge("heavy", hs, mu)
    x = coordinate_run(lam, lr, mu, T)
    for i, h in enumerate(hs):
        rec = recursion("heavy", h, mu)
        assert abs(x[T, i]) <= upper_envelope(*rec, T) + allowance(x[:, i], *rec[:2], T, lr)
    assert np.max(np.abs(x[T])) <= 1e-6 * (1 + 1e-9)

    lr = (1.0 + delta) * hb_bound(top, mu)
    T = steps_to_diverge("heavy", lr * top, mu)
    x = coordinate_run(lam, lr, mu, T)
    rec = recursion("heavy", lr * top, mu)
    assert abs(x[T, 0]) >= lower_envelope(*rec, T) - allowance(x[:, 0], *rec[:2], T, lr)
    assert abs(x[T, 0]) >= 1e6 * (1 - 1e-9)


@pytest.mark.claim("SGD-nesterov")
@given(lam=spectra, mu=st.floats(0.01, 0.9), delta=margins)
def test_nesterov_converges_below_and_diverges_above_its_bound(lam, mu, delta):
    """[SGD-nesterov] PyTorch Nesterov: stable iff 0 < lr lam < 2 (1 + mu) / (1 + 2 mu);
    both sides checked against the envelopes of z^2 - (1+mu)(1-h) z + mu (1-h), as above
    (mu > 0: PyTorch rejects Nesterov without momentum)."""
    top = lam[0]
    lr = (1.0 - delta) * nesterov_bound(top, mu)
    hs = [lr * v for v in lam]
    T = steps_to_converge("nesterov", hs, mu)
    x = coordinate_run(lam, lr, mu, T, nesterov=True)
    for i, h in enumerate(hs):
        rec = recursion("nesterov", h, mu)
        assert abs(x[T, i]) <= upper_envelope(*rec, T) + allowance(x[:, i], *rec[:2], T, lr)

    lr = (1.0 + delta) * nesterov_bound(top, mu)
    T = steps_to_diverge("nesterov", lr * top, mu)
    x = coordinate_run(lam, lr, mu, T, nesterov=True)
    rec = recursion("nesterov", lr * top, mu)
    assert abs(x[T, 0]) >= lower_envelope(*rec, T) - allowance(x[:, 0], *rec[:2], T, lr)
    assert abs(x[T, 0]) >= 1e6 * (1 - 1e-9)


# ------------------------------------------------------------------------------- teeth

def boundary_verdict(bound, lam, mu, delta, T, **opts):
    """The claim-level check a teacher would run: converges (|w_T| <= 1e-6 |w_0|) at
    (1 - delta) * bound and diverges (|w_T| >= 1e6 |w_0|) at (1 + delta) * bound."""
    below = coordinate_run(lam, (1 - delta) * bound, mu, T, **opts)
    above = coordinate_run(lam, (1 + delta) * bound, mu, T, **opts)
    converged = below.shape[0] == T + 1 and np.max(np.abs(below[-1])) <= 1e-6
    diverged = above.shape[0] < T + 1 or np.max(np.abs(above[-1])) >= 1e6
    return converged and diverged


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # diverging runs, NUMBA_DISABLE_JIT
@pytest.mark.claim("SGD-quadratic")
@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_boundary_check_has_teeth(mu):
    """Teeth: with lam = (4, 1), delta = 0.1 and T = 600 steps (enough by the envelopes
    for the true bound: see steps_to_converge), the check accepts 2 (1 + mu) / lam_max
    and rejects GD's 2 / lam_max (heavy ball still converges above it), 2 / ((1 - mu)
    lam_max) (it diverges below it), and the undamped bound for a run with dampening 0.5
    (whose region is 0 < lr (1 - 0.5) lam < 2 (1 + mu), derived the same way: it
    converges above the undamped bound)."""
    lam, delta, T = np.array([4.0, 1.0]), 0.1, 600
    need = max(steps_to_converge("heavy", [(1 - delta) * hb_bound(4.0, mu) * v for v in lam], mu),
               steps_to_diverge("heavy", (1 + delta) * hb_bound(4.0, mu) * 4.0, mu))
    assert need <= T
    assert boundary_verdict(hb_bound(4.0, mu), lam, mu, delta, T)
    assert not boundary_verdict(2.0 / 4.0, lam, mu, delta, T)
    assert not boundary_verdict(2.0 / ((1 - mu) * 4.0), lam, mu, delta, T)
    assert boundary_verdict(hb_bound(4.0, mu) / 0.5, lam, mu, delta, T, dampening=0.5)
    assert not boundary_verdict(hb_bound(4.0, mu), lam, mu, delta, T, dampening=0.5)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # diverging runs, NUMBA_DISABLE_JIT
@pytest.mark.claim("SGD-nesterov")
@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_nesterov_boundary_check_has_teeth(mu):
    """Teeth for SGD-nesterov: with lam = (4, 1), delta = 0.1, T = 600 (enough by the
    envelopes), the boundary check accepts 2 (1 + mu) / ((1 + 2 mu) lam_max) for a
    Nesterov run and rejects heavy ball's 2 (1 + mu) / lam_max and GD's 2 / lam_max
    there (a Nesterov run diverges below both)."""
    lam, delta, T = np.array([4.0, 1.0]), 0.1, 600
    need = max(steps_to_converge("nesterov", [(1 - delta) * nesterov_bound(4.0, mu) * v for v in lam], mu),
               steps_to_diverge("nesterov", (1 + delta) * nesterov_bound(4.0, mu) * 4.0, mu))
    assert need <= T
    assert boundary_verdict(nesterov_bound(4.0, mu), lam, mu, delta, T, nesterov=True)
    assert not boundary_verdict(hb_bound(4.0, mu), lam, mu, delta, T, nesterov=True)
    assert not boundary_verdict(2.0 / 4.0, lam, mu, delta, T, nesterov=True)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # diverging runs, NUMBA_DISABLE_JIT
@pytest.mark.claim("SGD-quadratic")
def test_keras_convention_has_the_same_region():
    """At a constant lr the Keras convention (lr inside the velocity) gives the same
    iterates as PyTorch (to rounding), hence the same region: it passes the check that
    the wrong bounds fail. (So it is not a 'wrong variant' for this claim; it differs
    from PyTorch only when lr changes between steps: the lr-change witness,
    proofs/sources.md#the-lr-change-witness.)"""
    lam, mu, delta, T = np.array([4.0, 1.0]), 0.9, 0.1, 600
    assert boundary_verdict(hb_bound(4.0, mu), lam, mu, delta, T, convention="keras")
    assert not boundary_verdict(2.0 / 4.0, lam, mu, delta, T, convention="keras")


@pytest.mark.claim("SGD-quadratic")
@given(mu=st.floats(0.0, 0.95), h=st.floats(-1.0, 6.0))
def test_schur_cohn_conditions_equal_the_root_test(mu, h):
    """The algebra of the proof: for z^2 - a z + b with real a, b, both roots lie
    strictly inside the unit circle iff |b| < 1 and |a| < 1 + b (Schur-Cohn/Jury). For
    heavy ball (a = 1 + mu - h, b = mu) this is 0 < h < 2 (1 + mu); for Nesterov
    (a = (1 + mu)(1 - h), b = mu (1 - h)) it is 0 < h < 2 (1 + mu) / (1 + 2 mu).
    Compared with numerically computed roots away from the boundary (where the two
    tests could disagree by rounding: margins of 1e-9)."""
    for kind, lo, hi in (("heavy", 0.0, 2 * (1 + mu)),
                         ("nesterov", 0.0, 2 * (1 + mu) / (1 + 2 * mu))):
        assume(min(abs(h - lo), abs(h - hi)) > 1e-6)
        a, b, _ = recursion(kind, h, mu)
        assume(abs(abs(b) - 1) > 1e-9 and abs(abs(a) - (1 + b)) > 1e-9)
        r = max(abs(z) for z in np.roots([1.0, -a, b]))
        assume(abs(r - 1) > 1e-9)
        inside = r < 1
        assert inside == (abs(b) < 1 and abs(a) < 1 + b)
        assert inside == (lo < h < hi)
