"""Sharpness and flatness measures (refimpl.landscape) on quadratics, where every answer
is known exactly, and the Hessian-vector products the quadratics provide for them.

Exact answers used below (derivations in refimpl/landscape.py's docstring):

* top eigenvalue: ``numpy.linalg.eigvalsh(H)``;
* Hutchinson: ``E[z^T H z] = tr H``; one-sample variance ``2 sum_{i!=j} H_ij^2``
  (Rademacher; 0 for diagonal H) or ``2 ||H||_F^2`` (Gaussian);
* flatness: ``E[L(w + delta)] - L(w) = radius^2 tr(H) / (2 d)`` for both perturbations;
* slices: ``f(w + a u) = f(w) + a g.u + a^2 / 2 u^T H u``.

Statistical checks use fixed seeds (so they are deterministic) and a band of 5 standard
deviations of the estimator computed from the EXACT variance (a false alarm has
probability below 1e-6 under the normal approximation). A check of a reported standard
error compares ``SE^2 * N`` (the sample variance s^2) with the exact variance, allowing 5
standard deviations of s^2, ``sqrt((mu_4 - sigma^4) / N)`` to leading order, with the
fourth central moment mu_4 computed exactly (enumeration, Gaussian cumulants) or bounded
(``mu_4 <= (b - a)^2 sigma^2`` for a variable in [a, b]).

Rounding tolerances: a d-term sum of products carries at most ~ d eps times the sum of
the absolute terms (the bound used in test_problems.py); each tolerance says which sums
it covers.
"""

from __future__ import annotations

import itertools
import math
import types
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refimpl import landscape as ls
from refimpl.problems import NoisyQuadratic, Quadratic
from tests.conftest import finite_floats, vectors

EPS = np.finfo(np.float64).eps
Z = 5.0  # standard deviations allowed in statistical checks (see the module docstring)


def symmetric(d, seed, kind="indefinite"):
    """A random exactly-symmetric d x d matrix: "indefinite" A + A^T, or "spd"
    (M + M^T) / 2 with M = A A^T + I / 10 (BLAS need not return A A^T exactly
    symmetric; the average of M and M^T is, since addition commutes)."""
    A = np.random.default_rng(seed).normal(size=(d, d))
    if kind == "indefinite":
        return A + A.T
    M = A @ A.T + 0.1 * np.eye(d)
    return (M + M.T) / 2


def with_spectrum(lams, seed):
    """An exactly-symmetric matrix whose eigenvalues are lams up to rounding."""
    d = len(lams)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    M = (Q * np.asarray(lams)) @ Q.T
    return (M + M.T) / 2


def problem_from(dim, loss=None, grad=None, hvp=None):
    """A protocol object built from functions (used for deliberately wrong variants)."""
    return types.SimpleNamespace(dim=dim, loss=loss, grad=grad, hvp=hvp)


def wrong_hvp(q: Quadratic, bug: str):
    """The Quadratic with a deliberately wrong Hessian operator."""
    H = q.hessian()
    if bug == "sign":
        B = -H
    elif bug == "double":
        B = 2 * H
    elif bug == "offdiag_doubled":   # right diagonal (so the right trace), wrong rest
        B = 2 * H - np.diag(np.diag(H))
    return problem_from(q.dim, loss=q.loss, grad=q.grad, hvp=lambda w, v: B @ v)


def without_half(q: Quadratic):
    """The Quadratic's loss with the 1/2 forgotten: (w - w*)^T H (w - w*)."""
    return problem_from(q.dim, loss=lambda w: 2.0 * q.loss(w), grad=q.grad, hvp=q.hvp)


def loop_matvec(H, v):
    """sum_j H_ij v_j, left to right: the documented order."""
    d = v.shape[0]
    out = np.empty(d)
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += float(H[i, j]) * float(v[j])
        out[i] = acc
    return out


# ======================================================= the problems' new methods


@given(w=vectors(d_min=1, d_max=8, lo=-100.0, hi=100.0), seed=st.integers(0, 2**32 - 1))
def test_quadratic_hvp_is_H_v(w, seed):
    """Quadratic.hvp(w, v) = H v: bit for bit the index-order loop, within d eps |H||v|
    of BLAS (one d-term sum each side, see the module docstring), the same at every w,
    and grad(w) = hvp(w, w - w*) bit for bit (the gradient is H r with the same sums)."""
    d = w.shape[0]
    rng = np.random.default_rng(seed)
    H = symmetric(d, seed)
    v = rng.normal(size=d) * 10.0
    q = Quadratic(H, w_star=rng.normal(size=d))
    hv = q.hvp(w, v)
    assert np.array_equal(hv, loop_matvec(H, v))
    assert np.all(np.abs(hv - H @ v) <= d * EPS * (np.abs(H) @ np.abs(v)))
    assert np.array_equal(q.hvp(np.zeros(d), v), hv)
    assert np.array_equal(q.grad(w), q.hvp(w, w - q.w_star))


def test_quadratic_hvp_by_hand():
    """H = [[2, 1], [1, 3]], v = (1, -1): H v = (2 - 1, 1 - 3) = (1, -2)."""
    q = Quadratic(np.array([[2.0, 1.0], [1.0, 3.0]]))
    assert np.array_equal(q.hvp(np.array([5.0, 7.0]), np.array([1.0, -1.0])), [1.0, -2.0])


@given(h=vectors(d_min=1, d_max=8), seed=st.integers(0, 2**32 - 1))
def test_noisy_quadratic_grad_and_hvp(h, seed):
    """NoisyQuadratic.grad(w) = h * (w - w*) (the population gradient: the oracle with
    zero noise, bit for bit) and hvp(w, v) = h * v; element-wise, one rounding each, so
    equal to NumPy's element-wise result bit for bit."""
    d = h.shape[0]
    rng = np.random.default_rng(seed)
    w_star, w, v = rng.normal(size=(3, d)) * 10.0
    nq = NoisyQuadratic(h, c=np.ones(d), w_star=w_star)
    assert np.array_equal(nq.grad(w), h * (w - w_star))
    assert np.array_equal(nq.grad(w), nq.grad_fn(np.zeros(d))(w)[1])
    assert np.array_equal(nq.hvp(w, v), h * v)


def test_noisy_quadratic_grad_by_hand():
    """h = (2, 4), w* = (1, -1), w = (3, 0): grad = (2 * 2, 4 * 1) = (4, 4); hvp at any
    w of v = (0.5, -1) is (1, -4)."""
    nq = NoisyQuadratic(np.array([2.0, 4.0]), w_star=np.array([1.0, -1.0]))
    assert np.array_equal(nq.grad(np.array([3.0, 0.0])), [4.0, 4.0])
    assert np.array_equal(nq.hvp(np.array([3.0, 0.0]), np.array([0.5, -1.0])), [1.0, -4.0])


def test_new_problem_methods_validate_and_do_not_mutate():
    """Wrong length, a list, non-finite input: ValueError/TypeError naming w or v;
    overflow of H v raises FloatingPointError; inputs are read-only-safe."""
    q = Quadratic(np.array([[2.0, 1.0], [1.0, 3.0]]))
    nq = NoisyQuadratic(np.array([2.0, 4.0]))
    w = np.array([1.0, 2.0])
    w.flags.writeable = False   # any write would raise
    v = np.array([0.5, -1.0])
    v.flags.writeable = False
    for method in (q.hvp, nq.hvp):
        method(w, v)
        with pytest.raises(ValueError, match="v must have length 2"):
            method(w, np.ones(3))
        with pytest.raises(ValueError, match="w must have length 2"):
            method(np.ones(3), v)
        with pytest.raises(TypeError, match="v must be a numpy"):
            method(w, [1.0, 2.0])
        with pytest.raises(ValueError, match="v must be finite"):
            method(w, np.array([np.nan, 1.0]))
        with pytest.raises(FloatingPointError, match="hvp overflowed"):
            method(w, np.array([1e308, 1e308]))
    with pytest.raises(ValueError, match="w must have length 2"):
        nq.grad(np.ones(3))
    with pytest.raises(FloatingPointError, match="grad overflowed"):
        nq.grad(np.array([1e308, 0.0]))
    assert np.array_equal(w, [1.0, 2.0]) and np.array_equal(v, [0.5, -1.0])


# ========================================================== sharpness: top eigenvalue


def eigen_error_bound(H, result):
    """How far result.value may be from the eigenvalue it approximates: the measured
    residual (some eigenvalue lies within ||H v - theta v|| of theta, v a unit vector)
    plus rounding: 4 d eps ||H||_F covers the HVP's sums (d eps |H||v| <= d eps ||H||_F
    per entry), the residual's and eigvalsh's backward error (a small multiple of d eps
    ||H||_2)."""
    d = H.shape[0]
    return result.residual + 4 * d * EPS * np.linalg.norm(H)


def eigen_check(H, result, target):
    """The law: result is a unit vector whose Rayleigh quotient is within the bound of
    the target eigenvalue, with the residual it reports."""
    v = result.vector
    r = H @ v - result.value * v
    return bool(abs(np.linalg.norm(v) - 1.0) <= 2 * H.shape[0] * EPS
                and abs(result.value - target) <= eigen_error_bound(H, result)
                and abs(np.linalg.norm(r) - result.residual) <= 4 * H.shape[0] * EPS
                * np.linalg.norm(H))


def target_eigenvalue(H, which):
    lams = np.linalg.eigvalsh(H)
    if which == "LA":
        return lams[-1]
    if which == "SA":
        return lams[0]
    return lams[np.argmax(np.abs(lams))]


@given(d=st.integers(1, 8), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["spd", "indefinite"]), which=st.sampled_from(["LA", "SA", "LM"]),
       tol=st.sampled_from([1e-6, 1e-8, 1e-12]))
@example(d=2, seed=0, kind="indefinite", which="LA", tol=1e-8)
def test_lanczos_matches_eigvalsh(d, seed, kind, which, tol):
    """Lanczos (eigsh) finds eigvalsh's largest / smallest / largest-magnitude eigenvalue
    within its measured residual (+ rounding), and the residual meets the solver's
    tolerance: ||H v - theta v|| <= tol max(|theta|, eps^(2/3)) (ARPACK's stopping test,
    on its own residual estimate) + 4 d eps ||H||_F (the estimate vs the recomputed
    residual: one HVP's rounding)."""
    H = symmetric(d, seed, kind)
    q = Quadratic(H)
    result = ls.top_eigenvalue(q, np.zeros(d), which=which, tol=tol, seed=seed % 1000)
    assert result.converged and result.method == "lanczos" and result.which == which
    assert eigen_check(H, result, target_eigenvalue(H, which))
    floor = max(abs(result.value), EPS ** (2 / 3))
    assert result.residual <= tol * floor + 4 * d * EPS * np.linalg.norm(H)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["spd", "indefinite"])
@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-10])
def test_lanczos_with_restarts(seed, kind, tol):
    """d = 60 > ARPACK's 20 Lanczos vectors, so it restarts and the tolerance matters:
    the same laws as above, and Kato-Temple for the top eigenvalue: 0 <= lambda_max -
    theta <= r^2 / (theta - lambda_2) (+ the same 4 d eps ||H||_F of rounding): the
    eigenvalue is far more accurate than the residual."""
    d = 60
    H = symmetric(d, seed, kind)
    result = ls.top_eigenvalue(Quadratic(H), np.zeros(d), tol=tol)
    lams = np.linalg.eigvalsh(H)
    assert eigen_check(H, result, lams[-1])
    rounding = 4 * d * EPS * np.linalg.norm(H)
    assert result.residual <= tol * abs(result.value) + rounding
    assert result.value > lams[-2]
    assert -rounding <= lams[-1] - result.value <= (
        result.residual ** 2 / (result.value - lams[-2]) + rounding)
    assert result.hvps > 20


@given(d=st.integers(2, 8), seed=st.integers(0, 2**32 - 1), negative=st.booleans(),
       ratio=st.floats(0.0, 0.8))
def test_power_iteration_finds_the_largest_magnitude(d, seed, negative, ratio):
    """Power iteration returns the eigenvalue of largest MAGNITUDE, with its sign: with
    a dominant lambda_1 = -10 (negative=True) it returns -10 even though the largest
    algebraic eigenvalue (the sharpness) is smaller in magnitude but larger. Spectrum:
    lambda_1 = +-10, the others in [-10 ratio, 10 ratio] with ratio <= 0.8, so it
    converges like 0.8^k: 1000 iterations reach tol = 1e-10. The stopping rule is the
    exact relative residual ||H v - theta v|| <= tol |theta|."""
    rng = np.random.default_rng(seed)
    lead = -10.0 if negative else 10.0
    lams = np.concatenate([[lead], rng.uniform(-10 * ratio, 10 * ratio, d - 1)])
    H = with_spectrum(lams, seed)
    result = ls.top_eigenvalue(Quadratic(H), np.zeros(d), method="power", tol=1e-10)
    assert result.which == "LM"
    assert eigen_check(H, result, target_eigenvalue(H, "LM"))
    assert result.residual <= 1e-10 * abs(result.value)
    assert (result.value < 0) == negative


def test_power_and_lanczos_differ_on_an_indefinite_hessian():
    """Eigenvalues (1, 0.5, -3): Lanczos "LA" gives the sharpness 1, power iteration the
    largest magnitude -3 (so it is not a sharpness measure on an indefinite Hessian),
    Lanczos "SA" and "LM" give -3."""
    H = with_spectrum([1.0, 0.5, -3.0], seed=7)
    q = Quadratic(H)
    w = np.zeros(3)
    lanczos = ls.top_eigenvalue(q, w)
    power = ls.top_eigenvalue(q, w, method="power", tol=1e-12)
    assert eigen_check(H, lanczos, target_eigenvalue(H, "LA"))
    assert abs(lanczos.value - 1.0) < 1e-12 and abs(power.value + 3.0) < 1e-12
    for which in ("SA", "LM"):
        assert abs(ls.top_eigenvalue(q, w, which=which).value + 3.0) < 1e-12


def test_noisy_quadratic_eigenpairs():
    """H = diag(0.5, 3, -1): LA -> 3 with vector e_2, SA -> -1 with e_3, up to the
    tolerance (tol 1e-12 relative residual; 10 eps for rounding)."""
    nq = NoisyQuadratic(np.array([0.5, 3.0, -1.0]), c=np.ones(3))
    w = np.array([1.0, 2.0, 3.0])
    top = ls.top_eigenvalue(nq, w, tol=1e-12)
    bottom = ls.top_eigenvalue(nq, w, which="SA", tol=1e-12)
    assert abs(top.value - 3.0) <= 10 * EPS * 3.0
    assert abs(bottom.value + 1.0) <= 10 * EPS
    assert np.allclose(top.vector, [0.0, 1.0, 0.0], rtol=0, atol=1e-10)
    assert np.allclose(bottom.vector, [0.0, 0.0, 1.0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_one_dimension_and_zero_hessian(method):
    """d = 1: the Hessian is the number h, found exactly with one HVP (vector (1,)).
    H = 0: every eigenvalue is 0; the answer is 0 with residual 0 (ARPACK stops when
    H v0 = 0; power iteration's first product is 0)."""
    one = ls.top_eigenvalue(Quadratic(np.array([[-2.5]])), np.array([4.0]), method=method)
    assert one.value == -2.5 and one.hvps == 1 and np.array_equal(one.vector, [1.0])
    zero = ls.top_eigenvalue(Quadratic(np.zeros((4, 4))), np.ones(4), method=method)
    assert zero.value == 0.0 and zero.residual == 0.0 and zero.converged
    assert abs(np.linalg.norm(zero.vector) - 1.0) <= 4 * EPS


def test_non_convergence_raises_with_the_last_estimate():
    """Eigenvalues (+2, -2, 1): power iteration never converges (v alternates between
    two vectors, so its residual stays large); it raises NoConvergence after maxiter
    products, carrying the last estimate (converged=False). Lanczos gets +2 from the
    same start. A clustered spectrum with 1 restart and tol 1e-14 defeats Lanczos."""
    q = Quadratic(with_spectrum([2.0, -2.0, 1.0], seed=3))
    with pytest.raises(ls.NoConvergence, match="maxiter=50") as info:
        ls.top_eigenvalue(q, np.zeros(3), method="power", maxiter=50)
    last = info.value.result
    assert last is not None and not last.converged and last.hvps == 51
    assert last.residual > 0.1 * abs(last.value)
    assert abs(ls.top_eigenvalue(q, np.zeros(3)).value - 2.0) < 1e-12
    clustered = Quadratic(np.diag(np.linspace(1.0, 1.001, 40)))
    with pytest.raises(ls.NoConvergence, match="Lanczos"):
        ls.top_eigenvalue(clustered, np.zeros(40), maxiter=1, tol=1e-14)


def test_eigen_teeth():
    """The same check rejects a Hessian operator with a sign error (it reports
    -lambda_min = 4.94.. instead of lambda_max = 4.41..) or a factor 2 too many."""
    H = symmetric(6, 1)
    q = Quadratic(H)
    target = np.linalg.eigvalsh(H)[-1]
    assert eigen_check(H, ls.top_eigenvalue(q, np.zeros(6)), target)
    for bug in ("sign", "double"):
        assert not eigen_check(H, ls.top_eigenvalue(wrong_hvp(q, bug), np.zeros(6)), target)


def test_eigen_determinism_and_counts():
    """Same seed: the same bits, also after other solves in between (ARPACK keeps
    internal state across calls). hvps counts every product: power iteration
    k iterations + 0 (the last product is reused), Lanczos ARPACK's + 1 (residual)."""
    H = symmetric(12, 5)
    q = Quadratic(H)
    w = np.zeros(12)
    for method in ("lanczos", "power"):
        kwargs = dict(method=method, seed=3) if method == "lanczos" else dict(
            method=method, seed=3, maxiter=5000)
        first = ls.top_eigenvalue(q, w, **kwargs)
        ls.top_eigenvalue(q, w, method=method, seed=4, maxiter=5000)
        second = ls.top_eigenvalue(q, w, **kwargs)
        assert first.value == second.value and first.residual == second.residual
        assert np.array_equal(first.vector, second.vector) and first.hvps == second.hvps
        assert not first.vector.flags.writeable
    calls = []
    counted = problem_from(12, hvp=lambda w, v: calls.append(1) or q.hvp(w, v))
    result = ls.top_eigenvalue(counted, w, method="power", maxiter=5000)
    assert result.hvps == len(calls)


# ----------------------------------------------- power iteration at extreme magnitudes


def fraction_sqrt(q: Fraction) -> float:
    """sqrt of a non-negative rational to about 1 ulp at any magnitude: q is scaled by an
    exact power of 4 into [1/4, 4] before the float conversion (float(q) alone would
    underflow to 0 for q = 1e-420)."""
    if q == 0:
        return 0.0
    k = (q.denominator.bit_length() - q.numerator.bit_length()) // 2
    return math.ldexp(math.sqrt(float(q * Fraction(4) ** k)), -k)


def exact_power_check(h, result, tol):
    """Check a power-iteration result on H = diag(h) (h > 0 sorted as given) against the
    EXACT answer, in rational arithmetic (fractions.Fraction: no overflow, no underflow,
    independent of the code's scaled sums):

    * the vector is a unit vector (||v||^2 = 1 to 4 d eps);
    * the reported residual is ||H v - theta v|| computed exactly, to 8 eps |lambda| plus
      d half-ulps of the smallest subnormal per entry (the problem's products h_i v_i are
      rounded once: subnormal for tiny h), so a flushed (zero) residual fails;
    * the exact residual r meets the stopping rule r <= tol |theta|;
    * Kato-Temple (a positive spectrum and theta > lambda_2): 0 <= lambda_max - theta
      <= r^2 / (theta - lambda_2), plus 8 eps lambda_max for rounding, so theta equals the
      exact lambda_max = max(h) to a few ulps (with tol = 1e-10, r^2 / gap ~ 1e-20 lambda).
    """
    d = len(h)
    lam = sorted(h)[-1]
    lam2 = sorted(h)[-2]
    v = [Fraction(float(x)) for x in result.vector]
    theta = Fraction(result.value)
    H = [Fraction(x) for x in h]
    norm2 = sum(x * x for x in v)
    r2 = sum((Hi * vi - theta * vi) ** 2 for Hi, vi in zip(H, v))
    r = fraction_sqrt(r2)
    tiny = 2.0 ** -1074
    return (result.converged
            and abs(float(norm2) - 1.0) <= 4 * d * EPS
            and abs(result.residual - r) <= 8 * EPS * lam + d * tiny
            and r <= tol * abs(result.value) * (1 + 4 * EPS)
            and result.value > lam2
            and -8 * EPS * lam <= lam - result.value
            <= r * r / (result.value - lam2) + 8 * EPS * lam)


@pytest.mark.parametrize("h", [
    [1e155, 1.0, 2.0],            # ||H v||^2 overflows: the old norm gave 0.0 "converged"
    [1e-200, 2e-200, 3e-200],     # squares underflow: the old residual was 0 after 1 HVP
    [3e-300, 1e-300, 2e-300],
    [1e-310, 3e-310, 2e-310],     # subnormal Hessian entries
    [3e300, 1e300, 2e300],
    [1e308, 5e307, 1.0],          # H v near the largest double
    [3.0, 1.0, 2.0],
])
def test_power_iteration_at_extreme_magnitudes(h):
    """Power iteration finds lambda_max = max(h) of H = diag(h) whatever its magnitude
    (1e-310 .. 1e308), with a residual that is the true one, and the vector e_argmax.
    Before the norms were scaled it returned 0.0, a zero vector and converged=True for
    h = (1e155, 1, 2) (||H v||^2 = 1e310 overflowed, so v became 0), and stopped after one
    product at 2.889e-200 for h = (1e-200, 2e-200, 3e-200) (every square underflowed, so
    the residual was 0). The check is exact (see :func:`exact_power_check`)."""
    h = np.array(h)
    problem = NoisyQuadratic(h, c=np.zeros(3))
    result = ls.top_eigenvalue(problem, np.zeros(3), method="power", tol=1e-10)
    assert exact_power_check(list(h), result, 1e-10)
    top = int(np.argmax(h))
    assert abs(result.vector[top] - 1.0) <= 1e-9 and result.vector[top] > 0
    assert result.hvps > 1 or h[0] == h[1] == h[2]


def test_power_iteration_is_scale_equivariant_bit_for_bit():
    """On 2^k H the iteration is the one on H with every product scaled by 2^k exactly
    (H v is scaled exactly, and every norm and dot product is computed on exactly scaled
    vectors), so value and residual are 2^k times the k = 0 ones, bit for bit, with the
    same vector and count, for k from -800 to 1000 (H v stays in the normal range down
    to the converged vector's smallest entry, 1e-60: at k = -950 that product underflows
    and only value and residual keep their bits)."""
    h = np.array([0.75, -3.0, 1.5, 2.25])
    base = ls.top_eigenvalue(NoisyQuadratic(h, c=np.zeros(4)), np.zeros(4), method="power",
                             tol=1e-12)
    assert abs(base.value + 3.0) <= 8 * EPS * 3.0
    for k in (-800, -700, -300, -1, 1, 300, 700, 1000):
        scaled = ls.top_eigenvalue(NoisyQuadratic(np.ldexp(h, k), c=np.zeros(4)), np.zeros(4),
                                   method="power", tol=1e-12)
        assert scaled.value == math.ldexp(base.value, k), k
        assert scaled.residual == math.ldexp(base.residual, k), k
        assert np.array_equal(scaled.vector, base.vector) and scaled.hvps == base.hvps


def test_extreme_magnitude_checks_have_teeth(monkeypatch):
    """Without the scaling (the old sums: ``_scaled`` returning x itself) the same checks
    fail at both ends: (1e155, 1, 2) gives theta = 0 with a zero vector, and
    (1e-200, 2e-200, 3e-200) a flushed residual after one product."""
    monkeypatch.setattr(ls, "_scaled", lambda x: (x, 0))
    for h in ([1e155, 1.0, 2.0], [1e-200, 2e-200, 3e-200]):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            result = ls.top_eigenvalue(NoisyQuadratic(np.array(h), c=np.zeros(3)),
                                       np.zeros(3), method="power", tol=1e-10)
        assert not exact_power_check(h, result, 1e-10)


def test_a_trace_beyond_float64_raises():
    """z^T H z = 2e308 for H = diag(1e308, 1e308) and Rademacher z (H z is finite): the
    trace is not a float64, so hessian_trace raises FloatingPointError (not an inf, nor
    fsum's OverflowError). A tiny Hessian keeps its exact trace (the diagonal case is exact
    for every probe, and the products are not flushed): tr diag(1e-300, 2e-300) = 3e-300."""
    with pytest.raises(FloatingPointError, match="overflows float64"):
        ls.hessian_trace(NoisyQuadratic(np.array([1e308, 1e308]), c=np.zeros(2)), np.zeros(2))
    tiny = ls.hessian_trace(NoisyQuadratic(np.array([1e-300, 2e-300]), c=np.zeros(2)),
                            np.zeros(2), samples=3)
    assert tiny.value == 1e-300 + 2e-300 and tiny.standard_error == 0.0


# =================================================================== trace (Hutchinson)


@given(h=vectors(d_min=1, d_max=8), seed=st.integers(0, 2**32 - 1))
@example(h=np.array([1e-300, -1e3, 0.5]), seed=0)
def test_rademacher_trace_is_exact_for_diagonal_hessians(h, seed):
    """z_i^2 = 1 exactly, so for diagonal H every probe gives z^T H z = sum_i h_i: the
    estimate is the correctly rounded sum of h (math.fsum) and the standard error is 0,
    bit for bit, for the noisy quadratic model and for a Quadratic with H = diag(h)
    (its off-diagonal products are exact zeros)."""
    d = h.shape[0]
    nq = NoisyQuadratic(h, c=np.ones(d))
    for problem in (nq, Quadratic(np.diag(h))):
        est = ls.hessian_trace(problem, np.ones(d), samples=7, seed=seed % 1000)
        assert est.value == math.fsum(h) and est.standard_error == 0.0
        assert est.samples == 7 and est.evaluations == 7


def rademacher_moments(H):
    """Exact mean, variance and 4th central moment of z^T H z over all 2^d sign vectors."""
    d = H.shape[0]
    xs = np.array([np.array(z) @ H @ np.array(z)
                   for z in itertools.product([-1.0, 1.0], repeat=d)])
    mean = xs.mean()
    return mean, np.mean((xs - mean) ** 2), np.mean((xs - mean) ** 4)


def gaussian_form_cumulants(H, g, sigma):
    """kappa_2, kappa_4 of X = sigma g.z + sigma^2 / 2 z^T H z, z ~ N(0, I): in H's
    eigenbasis X is a sum of independent a z + b z^2 (a = sigma c_i, b = sigma^2 lam_i /
    2), a shifted scaled noncentral chi^2_1, whose cumulants are kappa_2 = a^2 + 2 b^2,
    kappa_4 = 48 b^4 + 48 a^2 b^2."""
    lams, Q = np.linalg.eigh(H)
    a = sigma * (Q.T @ g)
    b = sigma ** 2 * lams / 2
    return np.sum(a ** 2 + 2 * b ** 2), np.sum(48 * b ** 4 + 48 * a ** 2 * b ** 2)


def estimate_check(est, mean, variance, mu4):
    """The two statistical laws: the estimate is within Z exact standard errors of the
    mean, and the sample variance SE^2 N within Z of its own standard deviation
    sqrt((mu4 - variance^2) / N) of the exact variance."""
    n = est.samples
    s2 = est.standard_error ** 2 * n
    return bool(abs(est.value - mean) <= Z * math.sqrt(variance / n)
                and abs(s2 - variance) <= Z * math.sqrt((mu4 - variance ** 2) / n))


@pytest.mark.parametrize("seed", [0, 1])
def test_rademacher_trace_dense(seed):
    """Dense 6 x 6 H, 4000 probes. Enumerating the 64 sign vectors gives the exact law:
    mean tr H and variance 2 sum_{i!=j} H_ij^2 (checked here to rounding, 64 * 6 eps
    relative), and the estimate and its reported standard error agree with it. Teeth:
    doubling the off-diagonal of the operator keeps the mean (the diagonal is right) but
    quadruples the variance, and the standard-error check rejects it; a sign error
    fails the mean check."""
    H = symmetric(6, seed)
    mean, variance, mu4 = rademacher_moments(H)
    offdiag = H - np.diag(np.diag(H))
    assert abs(mean - np.trace(H)) <= 64 * 6 * EPS * np.sum(np.abs(H))
    assert abs(variance - 2 * np.sum(offdiag ** 2)) <= 64 * 6 * EPS * variance
    q = Quadratic(H)
    w = np.ones(6)
    assert estimate_check(ls.hessian_trace(q, w, samples=4000, seed=seed), mean, variance, mu4)
    for bug in ("offdiag_doubled", "sign"):
        wrong = ls.hessian_trace(wrong_hvp(q, bug), w, samples=4000, seed=seed)
        assert not estimate_check(wrong, mean, variance, mu4)


def test_gaussian_trace():
    """Gaussian probes: variance 2 ||H||_F^2, 4th central moment kappa_4 + 3 kappa_2^2
    (kappa from gaussian_form_cumulants with sigma^2 / 2 = 1, g = 0); not exact on a
    diagonal H (standard error > 0), unlike Rademacher probes."""
    H = symmetric(5, 3)
    k2, k4 = gaussian_form_cumulants(H, np.zeros(5), math.sqrt(2.0))
    assert abs(k2 - 2 * np.sum(H ** 2)) <= 100 * EPS * k2
    est = ls.hessian_trace(Quadratic(H), np.ones(5), samples=4000, seed=2, distribution="gaussian")
    assert estimate_check(est, np.trace(H), k2, k4 + 3 * k2 ** 2)
    diag = ls.hessian_trace(NoisyQuadratic(np.array([1.0, 2.0])), np.ones(2),
                            distribution="gaussian")
    assert diag.standard_error > 0.0


def test_trace_one_sample_and_determinism():
    """One probe: the standard error is unknown (inf, not 0). Same seed: same bits."""
    q = Quadratic(symmetric(4, 0))
    w = np.ones(4)
    one = ls.hessian_trace(q, w, samples=1)
    assert math.isinf(one.standard_error) and one.evaluations == 1
    for dist in ("rademacher", "gaussian"):
        a = ls.hessian_trace(q, w, samples=30, seed=9, distribution=dist)
        b = ls.hessian_trace(q, w, samples=30, seed=9, distribution=dist)
        c = ls.hessian_trace(q, w, samples=30, seed=10, distribution=dist)
        assert a == b and a.value != c.value


# ============================================================================ flatness


def sphere_moments(H, radius):
    """Exact mean and variance of one antithetic sphere sample x = radius^2 / 2 u^T H u,
    and a bound on its 4th central moment, (b - a)^2 variance, with
    b - a = radius^2 (lam_max - lam_min) / 2 the range of x."""
    d = H.shape[0]
    tr, fro2 = np.trace(H), np.sum(H ** 2)
    mean = radius ** 2 * tr / (2 * d)
    variance = radius ** 4 / 4 * 2 * (fro2 - tr ** 2 / d) / (d * (d + 2))
    lams = np.linalg.eigvalsh(H)
    return mean, variance, (radius ** 2 * (lams[-1] - lams[0]) / 2) ** 2 * variance


def quadratic_cases():
    """A dense indefinite Quadratic and a noisy quadratic model, both away from w*."""
    rng = np.random.default_rng(11)
    H = symmetric(5, 11)
    h = np.array([3.0, 1.0, 0.5, -0.25])
    return [(Quadratic(H, w_star=rng.normal(size=5)), H, rng.normal(size=5)),
            (NoisyQuadratic(h, c=np.ones(4), w_star=np.ones(4)), np.diag(h), np.zeros(4))]


@pytest.mark.parametrize("case", [0, 1])
def test_sphere_flatness_antithetic(case):
    """Antithetic sphere samples on a quadratic are radius^2 / 2 u^T H u (the gradient
    term cancels in each pair): mean radius^2 tr(H) / (2 d), exact variance and a 4th
    moment bound from sphere_moments; 2000 pairs. Teeth: the same check rejects a loss
    that forgot its 1/2 (twice the mean)."""
    problem, H, w = quadratic_cases()[case]
    radius = 0.3
    mean, variance, mu4_bound = sphere_moments(H, radius)
    est = ls.flatness(problem, w, radius=radius, samples=2000, seed=case)
    assert est.evaluations == 2 * 2000 + 1
    assert variance > 0 and est.standard_error > 0   # pairs are exact only for H = c I, d = 1
    assert estimate_check(est, mean, variance, mu4_bound + variance ** 2)
    wrong = ls.flatness(without_half(problem), w, radius=radius, samples=2000, seed=case)
    assert not estimate_check(wrong, mean, variance, mu4_bound + variance ** 2)


@pytest.mark.parametrize("antithetic", [True, False])
def test_gaussian_flatness(antithetic):
    """delta ~ N(0, sigma^2 I), sigma = radius / sqrt(d): mean radius^2 tr(H) / (2 d)
    either way; pairs remove the linear term (variance sigma^2 ||g||^2), so the exact
    cumulants use g = 0 with pairs and g = grad f(w) without (gaussian_form_cumulants)."""
    problem, H, w = quadratic_cases()[0]
    d, radius = 5, 0.3
    sigma = radius / math.sqrt(d)
    g = problem.grad(w) if not antithetic else np.zeros(d)
    k2, k4 = gaussian_form_cumulants(H, g, sigma)
    est = ls.flatness(problem, w, radius=radius, samples=2000, seed=4,
                      distribution="gaussian", antithetic=antithetic)
    assert est.evaluations == (2 if antithetic else 1) * 2000 + 1
    assert estimate_check(est, radius ** 2 * np.trace(H) / (2 * d), k2, k4 + 3 * k2 ** 2)


def test_sphere_flatness_without_pairs():
    """Without pairs a sample is radius g.u + radius^2 / 2 u^T H u: same mean, variance
    + radius^2 ||g||^2 / d (uncorrelated terms), range at most 2 radius ||g|| +
    radius^2 (lam_max - lam_min) / 2, which bounds the 4th moment. Here the linear term
    dominates the variance (why pairs are the default)."""
    problem, H, w = quadratic_cases()[0]
    d, radius = 5, 0.3
    g = problem.grad(w)
    mean, variance, _ = sphere_moments(H, radius)
    variance_linear = radius ** 2 * np.sum(g ** 2) / d
    total = variance + variance_linear
    lams = np.linalg.eigvalsh(H)
    spread = 2 * radius * np.linalg.norm(g) + radius ** 2 * (lams[-1] - lams[0]) / 2
    est = ls.flatness(problem, w, radius=radius, samples=2000, seed=5, antithetic=False)
    assert estimate_check(est, mean, total, spread ** 2 * total + total ** 2)
    assert variance_linear > 10 * variance


@pytest.mark.parametrize("d", [1, 2, 7])
def test_sphere_pairs_are_exact_for_isotropic_hessians(d):
    """H = c I (or d = 1): u^T H u = c for every unit u, so every antithetic sphere
    sample is c radius^2 / 2 up to rounding, whatever w and the gradient. Rounding:
    the losses at w, w +- delta carry (2d + 2) eps relative error on 1/2 c ||r||^2 with
    ||r|| <= ||w - w*|| + radius, the points w +- delta one rounding each, ||delta|| =
    radius to (d + 2) eps; 8 (d + 2) eps c (||w - w*|| + radius)^2 covers them."""
    c, radius = 1.5, 0.25
    rng = np.random.default_rng(d)
    w_star, w = rng.normal(size=(2, d))
    q = Quadratic(c * np.eye(d), w_star=w_star)
    est = ls.flatness(q, w, radius=radius, samples=50, seed=d)
    bound = 8 * (d + 2) * EPS * c * (np.linalg.norm(w - w_star) + radius) ** 2
    assert abs(est.value - c * radius ** 2 / 2) <= bound
    assert est.standard_error <= bound


def test_flatness_one_sample_and_determinism():
    """One sample: standard error inf. Same seed: same bits; pairs and no pairs use the
    same draws (the same delta per sample)."""
    problem, _, w = quadratic_cases()[0]
    assert math.isinf(ls.flatness(problem, w, radius=0.1, samples=1).standard_error)
    for dist in ("sphere", "gaussian"):
        a = ls.flatness(problem, w, radius=0.1, samples=20, seed=3, distribution=dist)
        b = ls.flatness(problem, w, radius=0.1, samples=20, seed=3, distribution=dist)
        assert a == b


# ============================================================================== slices


def slice_tolerance(q, w, direction, a):
    """Rounding of f(fl(w + a u)) vs the closed form f(w) + a g.u + a^2/2 u^T H u: the
    point's rounding (|e_i| <= eps (|w_i| + |a u_i|)) moves f by at most |H r|.|e|, and
    each loss / dot product / quadratic form is a d-term sum (d eps of its absolute
    terms); with R = |w - w*| + |a||u| every absolute term is <= R^T |H| R, so
    4 (d + 2) eps (R^T |H| R + (|H| R).(|w| + |a||u|)) covers the lot."""
    d = w.shape[0]
    A = np.abs(q.H)
    R = np.abs(w - q.w_star) + abs(a) * np.abs(direction)
    return 4 * (d + 2) * EPS * (R @ A @ R + (A @ R) @ (np.abs(w) + abs(a) * np.abs(direction)))


def closed_form_1d(q, w, u, a):
    return q.loss(w) + a * (q.grad(w) @ u) + a * a / 2 * (u @ q.H @ u)


@given(d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       alphas=st.lists(finite_floats(-10.0, 10.0), min_size=1, max_size=5))
def test_slice_1d_closed_form(d, seed, alphas):
    """slice_1d = f(w) + a g.u + a^2 / 2 u^T H u to the rounding bound above; the check
    rejects the same loss without its 1/2 (for a != 0; f(w) itself then doubles too)."""
    rng = np.random.default_rng(seed)
    q = Quadratic(symmetric(d, seed), w_star=rng.normal(size=d))
    w = rng.normal(size=d) * 3
    u = ls.random_direction(w, seed=seed % 1000, normalize="unit")
    alphas = np.array(alphas)
    got = ls.slice_1d(q, w, u, alphas)
    assert got.shape == alphas.shape
    for a, value in zip(alphas, got):
        assert abs(value - closed_form_1d(q, w, u, a)) <= slice_tolerance(q, w, u, a)


def test_slice_teeth():
    """A loss with the 1/2 forgotten fails the closed-form check at every nonzero a."""
    q = Quadratic(symmetric(4, 2), w_star=np.ones(4))
    w = np.zeros(4)
    u = ls.random_direction(w, seed=1, normalize="unit")
    alphas = np.array([-1.0, 0.5, 2.0])
    got = ls.slice_1d(without_half(q), w, u, alphas)
    for a, value in zip(alphas, got):
        assert abs(value - closed_form_1d(q, w, u, a)) > slice_tolerance(q, w, u, a)


def test_slice_2d():
    """grid[i, j] = f((w + a_i d1) + b_j d2): the beta = 0 column equals slice_1d bit for
    bit (x + 0 d2 = x), and each entry equals the 2-D closed form f(w) + a g.d1 + b g.d2
    + 1/2 (a^2 d1^T H d1 + 2 a b d1^T H d2 + b^2 d2^T H d2) to the rounding bound with
    R = |w - w*| + |a||d1| + |b||d2|."""
    d = 4
    q = Quadratic(symmetric(d, 8), w_star=np.arange(d, dtype=np.float64))
    w = np.ones(d)
    d1 = ls.random_direction(w, seed=1, normalize="unit")
    d2 = ls.random_direction(w, seed=2, normalize="unit")
    alphas = np.array([-1.0, 0.0, 0.25, 2.0])
    betas = np.array([0.0, -0.5, 1.5])
    grid = ls.slice_2d(q, w, d1, d2, alphas, betas)
    assert grid.shape == (4, 3)
    assert np.array_equal(grid[:, 0], ls.slice_1d(q, w, d1, alphas))
    H, g, A = q.H, q.grad(w), np.abs(q.H)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            curvature = a * a * (d1 @ H @ d1) + 2 * a * b * (d1 @ H @ d2) + b * b * (d2 @ H @ d2)
            exact = q.loss(w) + a * (g @ d1) + b * (g @ d2) + curvature / 2
            step = abs(a) * np.abs(d1) + abs(b) * np.abs(d2)
            R = np.abs(w - q.w_star) + step
            tol = 4 * (d + 2) * EPS * (R @ A @ R + (A @ R) @ (np.abs(w) + step))
            assert abs(grid[i, j] - exact) <= tol


def test_random_direction():
    """The draw is Generator(PCG64(seed)).standard_normal(d); "unit" divides by its
    norm (norm 1 within (d + 2) eps); "filter" rescales each block to ||w_b|| (within
    (d + 2) eps relative) keeping its direction (each block a positive multiple of the
    raw draw), zero outside the blocks and in a block where w is zero."""
    w = np.array([3.0, 4.0, 0.0, 0.0, 1.0, -2.0, 2.0, 7.0])
    raw = np.random.Generator(np.random.PCG64(5)).standard_normal(8)
    assert np.array_equal(ls.random_direction(w, seed=5), raw)
    unit = ls.random_direction(w, seed=5, normalize="unit")
    assert abs(np.linalg.norm(unit) - 1.0) <= 10 * EPS
    blocks = [slice(0, 2), slice(2, 4), slice(4, 7)]
    f = ls.random_direction(w, seed=5, normalize="filter", blocks=blocks)
    assert abs(np.linalg.norm(f[0:2]) - 5.0) <= 10 * EPS * 5.0       # ||(3, 4)|| = 5
    assert abs(np.linalg.norm(f[4:7]) - 3.0) <= 10 * EPS * 3.0       # ||(1, -2, 2)|| = 3
    assert np.array_equal(f[2:4], [0.0, 0.0]) and f[7] == 0.0        # zero weights; no block
    for b in (slice(0, 2), slice(4, 7)):
        ratio = f[b] / raw[b]
        assert np.all(ratio > 0) and np.ptp(ratio) <= 4 * EPS * ratio[0]
    assert np.array_equal(ls.random_direction(w, seed=5, normalize="filter", blocks=blocks), f)


# ================================================================= validation, no mutation


def test_protocol_errors_name_the_missing_part():
    """A TypeError names what the function needs and the problem lacks; a bad dim or a
    malformed hvp / loss output is reported, a non-finite loss raises FloatingPointError."""
    q = Quadratic(np.eye(2))
    w = np.zeros(2)
    with pytest.raises(TypeError, match="hvp"):
        ls.top_eigenvalue(problem_from(2, loss=q.loss), w)
    with pytest.raises(TypeError, match="hvp"):
        ls.hessian_trace(problem_from(2, loss=q.loss), w)
    with pytest.raises(TypeError, match="loss"):
        ls.flatness(problem_from(2, hvp=q.hvp), w, radius=0.1)
    with pytest.raises(TypeError, match="loss"):
        ls.slice_1d(problem_from(2, hvp=q.hvp), w, w, w)
    with pytest.raises(TypeError, match="dim"):
        ls.hessian_trace(types.SimpleNamespace(hvp=q.hvp), w)
    with pytest.raises(ValueError, match="problem.dim"):
        ls.hessian_trace(problem_from(0, hvp=q.hvp), w)
    with pytest.raises(TypeError, match="hvp must return a float64 array"):
        ls.hessian_trace(problem_from(2, hvp=lambda w, v: list(v)), w)
    with pytest.raises(FloatingPointError, match="hvp returned a non-finite"):
        ls.top_eigenvalue(problem_from(2, hvp=lambda w, v: v * np.nan), w, method="power")
    with pytest.raises(FloatingPointError, match="loss returned"):
        ls.flatness(problem_from(2, loss=lambda w: math.inf), w, radius=0.1)
    with pytest.raises(TypeError, match="loss must return a real"):
        ls.slice_1d(problem_from(2, loss=lambda w: "1"), w, w, w)


@pytest.mark.parametrize("call, exc, match", [
    (lambda q, w: ls.flatness(q, w, radius=0.0), ValueError, "radius"),
    (lambda q, w: ls.flatness(q, w, radius=-1.0), ValueError, "radius"),
    (lambda q, w: ls.flatness(q, w, radius=math.nan), ValueError, "radius"),
    (lambda q, w: ls.flatness(q, w, radius=math.inf), ValueError, "radius"),
    (lambda q, w: ls.flatness(q, w, radius="1"), TypeError, "radius"),
    (lambda q, w: ls.flatness(q, w, radius=1.0, samples=0), ValueError, "samples"),
    (lambda q, w: ls.flatness(q, w, radius=1.0, samples=2.0), TypeError, "samples"),
    (lambda q, w: ls.flatness(q, w, radius=1.0, distribution="ball"), ValueError, "distribution"),
    (lambda q, w: ls.flatness(q, w, radius=1.0, antithetic=1), TypeError, "antithetic"),
    (lambda q, w: ls.flatness(q, w, radius=1.0, seed=-1), ValueError, "seed"),
    (lambda q, w: ls.flatness(q, np.zeros(4), radius=1.0), ValueError, "w must have length 3"),
    (lambda q, w: ls.hessian_trace(q, w, samples=0), ValueError, "samples"),
    (lambda q, w: ls.hessian_trace(q, w, distribution="sphere"), ValueError, "distribution"),
    (lambda q, w: ls.hessian_trace(q, [0.0, 0.0, 0.0]), TypeError, "w must be a numpy"),
    (lambda q, w: ls.top_eigenvalue(q, w, method="qr"), ValueError, "method"),
    (lambda q, w: ls.top_eigenvalue(q, w, which="BE"), ValueError, "which"),
    (lambda q, w: ls.top_eigenvalue(q, w, method="power", which="LA"), ValueError, "which"),
    (lambda q, w: ls.top_eigenvalue(q, w, tol=0.0), ValueError, "tol"),
    (lambda q, w: ls.top_eigenvalue(q, w, maxiter=0), ValueError, "maxiter"),
    (lambda q, w: ls.top_eigenvalue(q, w, seed=1.5), TypeError, "seed"),
    (lambda q, w: ls.top_eigenvalue(q, np.zeros((3, 1))), ValueError, "w must be 1-D"),
    (lambda q, w: ls.slice_1d(q, w, np.ones(2), np.ones(2)), ValueError, "direction"),
    (lambda q, w: ls.slice_1d(q, w, w, np.ones((2, 2))), ValueError, "alphas"),
    (lambda q, w: ls.slice_2d(q, w, w, np.ones(4), w, w), ValueError, "d2"),
    (lambda q, w: ls.slice_2d(q, w, w, w, w, np.array([np.nan])), ValueError, "betas"),
    (lambda q, w: ls.random_direction(w, seed=0, normalize="l2"), ValueError, "normalize"),
    (lambda q, w: ls.random_direction(w, seed=0, normalize="filter"), ValueError, "blocks"),
    (lambda q, w: ls.random_direction(w, seed=0, blocks=[slice(0, 1)]), ValueError, "blocks"),
    (lambda q, w: ls.random_direction(w, seed=0, normalize="filter",
                                      blocks=[slice(0, 2), slice(1, 3)]), ValueError, "disjoint"),
    (lambda q, w: ls.random_direction(w, seed=0, normalize="filter",
                                      blocks=[slice(0, 4)]), ValueError, "blocks"),
    (lambda q, w: ls.random_direction(w, seed=0, normalize="filter",
                                      blocks=[slice(0, 3, 2)]), ValueError, "step 1"),
    (lambda q, w: ls.random_direction(w, seed=0, normalize="filter",
                                      blocks=[(0, 2)]), TypeError, "slices"),
])
def test_bad_input(call, exc, match):
    q = Quadratic(np.eye(3))
    with pytest.raises(exc, match=match):
        call(q, np.zeros(3))


def test_inputs_are_not_mutated():
    """Every function runs on read-only inputs (a write would raise) and leaves them
    equal to copies taken before."""
    q = Quadratic(symmetric(3, 0), w_star=np.ones(3))
    arrays = dict(w=np.array([0.5, -1.0, 2.0]), d1=np.array([1.0, 0.0, 0.0]),
                  d2=np.array([0.0, 1.0, 0.0]), alphas=np.array([-1.0, 1.0]))
    before = {k: v.copy() for k, v in arrays.items()}
    for v in arrays.values():
        v.flags.writeable = False
    w, d1, d2, alphas = arrays["w"], arrays["d1"], arrays["d2"], arrays["alphas"]
    ls.top_eigenvalue(q, w)
    ls.top_eigenvalue(q, w, method="power", maxiter=5000)
    ls.hessian_trace(q, w, samples=3)
    ls.flatness(q, w, radius=0.1, samples=3)
    ls.flatness(q, w, radius=0.1, samples=3, distribution="gaussian", antithetic=False)
    ls.random_direction(w, seed=0, normalize="filter", blocks=[slice(0, 3)])
    ls.slice_1d(q, w, d1, alphas)
    ls.slice_2d(q, w, d1, d2, alphas, alphas)
    for k, v in arrays.items():
        assert np.array_equal(v, before[k])
