"""Sharpness and flatness of a loss landscape, through Hessian-vector products
(proofs/sources.md#problems).

Every function here works on any *problem* object with this protocol (the quadratics of
:mod:`refimpl.problems` and the small MLPs implement it)::

    problem.dim          int d, the number of parameters
    problem.loss(w)      float, the deterministic loss L(w) (full data set or population)
    problem.grad(w)      (d,) array, the gradient of L at w
    problem.hvp(w, v)    (d,) array, H(w) v with H(w) the Hessian of L at w

A function checks only the parts it uses (a TypeError names a missing one) and checks
what the problem returns (a non-finite value raises FloatingPointError: no silent nan;
so does a result of its own that overflows float64, such as an estimate's variance).
Random draws come from ``numpy.random.Generator(PCG64(seed))``; dot products and norms
use ``math.fsum`` (correctly rounded, hence independent of summation order and BLAS) on
vectors first scaled by a power of two (exact), so no square or product overflows or
underflows: eigenvalues, residuals and norms are right at any magnitude (Hessians of
size 1e-300 or 1e300 alike), with the bits of the unscaled sums in between. So
every result is deterministic for a seed, and bit for bit the same on any machine where
the problem's own loss and hvp are, with one exception: ARPACK (Lanczos) orthogonalizes
through BLAS, so its bits are fixed on one machine and agree elsewhere to rounding
(always within the reported residual). Inputs are never modified.

Sources: Lanczos via ARPACK (Lehoucq, Sorensen and Yang 1998); Hutchinson (1990), "A
stochastic estimator of the trace of the influence matrix for Laplacian smoothing
splines"; flatness as the expected loss increase under random perturbations, the
"sharpness by random perturbation" family of Jiang et al. (2020), "Fantastic
generalization measures and where to find them"; filter normalization from Li et al.
(2018). The closed forms on quadratics below are ours, checked in
tests/test_landscape.py.

Sharpness: the top Hessian eigenvalue
-------------------------------------
:func:`top_eigenvalue` finds ``lambda_max(H(w))``, the curvature that limits gradient
descent (on a quadratic GD is stable iff ``lr < 2 / lambda_max``), without forming H:

* ``method="lanczos"`` (default): ARPACK's implicitly restarted Lanczos
  (``scipy.sparse.linalg.eigsh``) on a LinearOperator whose product is ``problem.hvp``.
  ``which="LA"`` (default) gives the largest algebraic eigenvalue, ``"SA"`` the smallest
  (negative curvature, saddles), ``"LM"`` the largest in magnitude. The start vector
  ``v0`` is a standard normal draw from ``seed``.
* ``method="power"``: power iteration ``v <- H v / ||H v||``. It converges to the
  eigenvalue of largest MAGNITUDE (only ``which="LM"``): on an indefinite Hessian with
  ``|lambda_min| > lambda_max`` it returns the negative ``lambda_min``, not the
  sharpness; the error shrinks like ``|lambda_2 / lambda_1|^k`` after k products, so it
  is slow when the two largest magnitudes are close and never converges when they are
  equal with opposite signs (``+a`` and ``-a``: v then flips between two vectors).

Both stop when the relative residual of the Ritz pair ``(theta, v)``, ``||v|| = 1``,
is small: ``||H v - theta v|| <= tol * |theta|`` (ARPACK: the same test on its residual
estimate, with ``|theta|`` floored at ``eps^(2/3)``). For a symmetric H and the Rayleigh
quotient ``theta = v^T H v`` some eigenvalue lies within the residual r of theta
(``|theta - lambda| <= r``), and the top one much closer (Kato-Temple): if
``theta > lambda_2`` then ``0 <= lambda_max - theta <= r^2 / (theta - lambda_2)``, so the
eigenvalue is accurate to about ``tol^2`` relative when the gap is not small. The
result reports the residual it measured with one more product. A run that
does not converge within ``maxiter`` raises :class:`NoConvergence`, which carries the
last estimate when there is one (a returned result always has ``converged=True``).

Trace of the Hessian (Hutchinson)
---------------------------------
For random probes z with ``E[z z^T] = I``, ``E[z^T H z] = tr(H)``. :func:`hessian_trace`
averages ``x_s = z_s^T H z_s`` over ``samples`` independent probes. The variance of one
sample is

* Rademacher (``z_i = +-1``): ``Var x = 2 sum_{i != j} H_ij^2``  (the diagonal drops
  out because ``z_i^2 = 1``: x equals ``tr(H)`` exactly for every probe when H is
  diagonal, and the estimate is then exact);
* Gaussian (``z ~ N(0, I)``): ``Var x = 2 sum_{i,j} H_ij^2 = 2 ||H||_F^2``.

The reported standard error is ``s / sqrt(samples)`` with s the sample standard
deviation (``ddof = 1``); it is ``inf`` for one sample (unknown, not zero).

Flatness: expected loss increase under random perturbations
-----------------------------------------------------------
:func:`flatness` estimates ``F(rho) = E[L(w + delta)] - L(w)`` for random perturbations
of size rho (``radius``):

* ``distribution="sphere"``: ``delta = rho * u``, u uniform on the unit sphere, so
  ``||delta|| = rho`` exactly (u = z / ||z|| with z standard normal);
* ``distribution="gaussian"``: ``delta ~ N(0, sigma^2 I)``, ``sigma = rho / sqrt(d)``,
  so ``E ||delta||^2 = rho^2``.

With ``antithetic=True`` (default) each sample evaluates the pair ``+-delta``:
``x = ((L(w + delta) - L(w)) + (L(w - delta) - L(w))) / 2``; otherwise
``x = L(w + delta) - L(w)``. ``samples`` counts perturbations (pairs), so the cost is
``2 samples + 1`` losses (``samples + 1`` without pairs).

On a quadratic, with ``g = grad L(w)``: ``L(w + delta) - L(w) = g.delta + 1/2 delta^T H
delta``. The pair cancels the linear term exactly, ``x = 1/2 delta^T H delta``. By
symmetry ``E[u u^T] = I / d`` on the sphere (the d diagonal moments ``E[u_i^2]`` are
equal and sum to ``E||u||^2 = 1``; the off-diagonal ones vanish under ``u_i -> -u_i``),
and ``E[delta delta^T] = sigma^2 I = rho^2 I / d`` for the Gaussian, so both give

    F(rho) = rho^2 / (2 d) * tr(H)        (exactly, for any g, with or without pairs).

Variance of one antithetic sample on a quadratic, from ``E[u_i^4] = 3 / (d (d + 2))``
and ``E[u_i^2 u_j^2] = 1 / (d (d + 2))`` on the sphere and Gaussian moments otherwise:

* sphere:   ``Var x = rho^4 / 4 * 2 (||H||_F^2 - tr(H)^2 / d) / (d (d + 2))``; zero
  when ``H = c I`` or ``d = 1``: then every sample equals F exactly (up to rounding);
* gaussian: ``Var x = sigma^4 / 4 * 2 ||H||_F^2``.

Without pairs add the linear term's variance, ``rho^2 ||g||^2 / d`` (sphere) or
``sigma^2 ||g||^2`` (gaussian); it is uncorrelated with the quadratic term (odd against
even under ``delta -> -delta``). Away from a minimum it usually dominates: use pairs.

Slices for plots
----------------
:func:`random_direction` draws a standard normal direction from ``seed``, optionally
scaled to unit norm, or filter-normalized (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets"): within each parameter block b (a filter or a neuron's
incoming weights) the direction is rescaled to the weights' norm,
``d_b <- d_b * ||w_b|| / ||d_b||``, and coordinates outside every block (biases, say)
are set to zero. :func:`slice_1d` and :func:`slice_2d` evaluate
``L(w + a d1)`` and ``L((w + a d1) + b d2)`` on grids. On a quadratic
``L(w + a u) = L(w) + a g.u + a^2 / 2 u^T H u`` exactly.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

from refimpl import _validate

__all__ = ["EigenResult", "Estimate", "NoConvergence", "top_eigenvalue", "hessian_trace",
           "flatness", "random_direction", "slice_1d", "slice_2d"]

_METHODS = ("lanczos", "power")
_WHICH = ("LA", "SA", "LM")
_PROBES = ("rademacher", "gaussian")
_PERTURBATIONS = ("sphere", "gaussian")
_NORMALIZE = (None, "unit", "filter")
_POWER_MAXITER = 1000


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class EigenResult:
    """An eigenpair of the Hessian at w.

    value: the eigenvalue estimate theta (the Rayleigh quotient of ``vector``).
    vector: (d,) unit eigenvector, read-only; sign fixed so that its largest-magnitude
        entry (the first one, on ties) is positive.
    hvps: Hessian-vector products used, including the one that measured ``residual``.
    converged: True for a returned result (False only on :class:`NoConvergence`'s).
    residual: ``||H vector - value * vector||`` (an eigenvalue lies within it of value).
    method, which: what was asked for.
    """

    value: float
    vector: np.ndarray
    hvps: int
    converged: bool
    residual: float
    method: str
    which: str


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate: ``value`` (the sample mean), its ``standard_error``
    (sample standard deviation / sqrt(samples); inf for one sample), the number of
    ``samples`` and of problem ``evaluations`` (HVPs or losses) it used."""

    value: float
    standard_error: float
    samples: int
    evaluations: int


class NoConvergence(RuntimeError):
    """The eigensolver did not converge; ``result`` holds the last estimate (an
    :class:`EigenResult` with ``converged=False``) or None when there is none."""

    def __init__(self, message: str, result: EigenResult | None):
        super().__init__(message)
        self.result = result


# ----------------------------------------------------------------- sharpness: lambda_max


def top_eigenvalue(problem, w, *, method: str = "lanczos", which: str | None = None,
                   tol: float = 1e-8, maxiter: int | None = None,
                   seed: int = 0) -> EigenResult:
    """The extreme eigenvalue of the Hessian of ``problem.loss`` at ``w``, and its vector.

    Parameters
    ----------
    problem : has ``dim`` and ``hvp(w, v)``.
    w : (d,) float64, the point.
    method : ``"lanczos"`` (ARPACK via scipy's eigsh) or ``"power"`` (power iteration).
    which : ``"LA"`` largest algebraic (the sharpness; the default for Lanczos),
        ``"SA"`` smallest algebraic, ``"LM"`` largest magnitude (the only choice, and
        the default, for power iteration: it cannot find anything else).
    tol : relative residual to stop at, ``||H v - theta v|| <= tol |theta|``; > 0.
    maxiter : Lanczos: ARPACK restarts (default scipy's, 10 d); power: iterations,
        one HVP each (default 1000).
    seed : the start vector is ``Generator(PCG64(seed)).standard_normal(d)``.

    Returns an :class:`EigenResult`; raises :class:`NoConvergence` if ``maxiter`` runs
    out. ``d = 1`` is answered with one product (the Hessian is the number ``H e_1``).
    """
    _require(problem, "hvp")
    d = _dim(problem)
    w = _validate.vector("w", w, size=d)
    method = _validate.choice("method", method, _METHODS)
    if which is None:
        which = "LA" if method == "lanczos" else "LM"
    which = _validate.choice("which", which, _WHICH)
    if method == "power" and which != "LM":
        raise ValueError(f"which must be 'LM' for method='power' (power iteration finds the "
                         f"largest-magnitude eigenvalue), got {which!r}; use method='lanczos'")
    tol = _validate.real("tol", tol, lo=0.0, lo_open=True)
    if maxiter is not None:
        maxiter = _validate.integer("maxiter", maxiter, lo=1)
    seed = _validate.integer("seed", seed, lo=0)

    counter = _CountingHVP(problem, w, d)
    if d == 1:
        value = float(counter(np.ones(1))[0])
        return EigenResult(value, _readonly(np.ones(1)), counter.count, True, 0.0, method, which)
    v0 = np.random.Generator(np.random.PCG64(seed)).standard_normal(d)
    if method == "lanczos":
        return _lanczos(counter, v0, which, tol, maxiter)
    return _power(counter, v0, tol, _POWER_MAXITER if maxiter is None else maxiter)


def _lanczos(counter, v0, which, tol, maxiter):
    d = counter.d
    op = LinearOperator((d, d), matvec=counter, dtype=np.float64)
    try:
        _, vectors = eigsh(op, k=1, which=which, v0=v0, tol=tol, maxiter=maxiter)
    except ArpackError as err:
        if isinstance(err, ArpackNoConvergence):
            raise _lanczos_failure(counter, err, which, tol, maxiter) from None
        # ARPACK stops ("starting vector is zero") when H v0 = 0: the Krylov space is
        # span(v0) and (0, v0) is an exact eigenpair (H = 0, or v0 in H's null space, an
        # event of probability zero for a nonzero H with a random v0).
        v = _unit(v0)
        hv = counter(v)
        if _norm(hv) == 0.0:
            return _pair(counter, v, hv, True, "lanczos", which)
        raise NoConvergence(f"ARPACK failed: {err}", None) from None
    # theta is recomputed as the Rayleigh quotient of the returned vector (equal to
    # ARPACK's value to rounding) so that value, vector and residual belong together.
    v = _unit(np.ascontiguousarray(vectors[:, 0], dtype=np.float64))
    hv = counter(v)
    return _pair(counter, v, hv, True, "lanczos", which)


def _lanczos_failure(counter, err, which, tol, maxiter):
    partial = None
    if len(err.eigenvalues) > 0:   # a converged Ritz pair, if ARPACK had one
        v = _unit(np.ascontiguousarray(err.eigenvectors[:, 0], dtype=np.float64))
        partial = _pair(counter, v, counter(v), False, "lanczos", which)
    return NoConvergence(f"Lanczos did not reach tol={tol!r} within maxiter={maxiter!r} "
                         f"restarts; raise maxiter or tol", partial)


def _power(counter, v0, tol, maxiter):
    v = _unit(v0)
    for _ in range(maxiter):
        hv = counter(v)
        theta = _dot(v, hv)
        if _converged(_residual(v, hv, theta), theta, tol):
            return _pair(counter, v, hv, True, "power", "LM")
        v = _unit(hv)   # H v != 0 here (else theta = residual = 0 converged): a unit vector
    last = _pair(counter, v, counter(v), False, "power", "LM")
    raise NoConvergence(f"power iteration did not reach tol={tol!r} in maxiter={maxiter} "
                        f"iterations (|lambda_2 / lambda_1| is close to 1?)", last)


def _converged(residual, theta, tol):
    """The stopping test ``||H v - theta v|| <= tol |theta|`` for a unit v, as the ratio
    ``residual / |theta|`` (``tol * |theta|`` would underflow to 0 for a tiny theta). It
    passes with ``theta = 0`` only for a zero residual: ``H v = 0`` exactly, the exact
    eigenpair (0, v). Every norm and dot product is scaled (see :func:`_scaled`), so
    neither an overflowed norm (which once normalised v to the zero vector) nor an
    underflowed residual (which once made a first guess look converged) can pass it."""
    if theta == 0.0:
        return residual == 0.0
    return residual / abs(theta) <= tol


def _pair(counter, v, hv, converged, method, which):
    """The Ritz pair (v^T H v, v) with its measured residual, sign made canonical."""
    theta = _dot(v, hv)
    residual = _residual(v, hv, theta)
    return EigenResult(theta, _readonly(_canonical_sign(v)), counter.count, converged,
                       residual, method, which)


class _CountingHVP:
    """``v -> problem.hvp(w, v)`` with a checked output and a count of the calls."""

    def __init__(self, problem, w, d):
        self.problem, self.w, self.d, self.count = problem, w, d, 0

    def __call__(self, v):
        v = np.ascontiguousarray(np.asarray(v, dtype=np.float64).reshape(self.d))
        self.count += 1
        return _output_vector("hvp", self.problem.hvp(self.w, v), self.d)


# --------------------------------------------------------------- trace (Hutchinson)


def hessian_trace(problem, w, *, samples: int = 100, seed: int = 0,
                  distribution: str = "rademacher") -> Estimate:
    """Hutchinson's estimate of ``tr H(w)``: the mean of ``z^T H z`` over probes z.

    ``distribution``: ``"rademacher"`` (``z_i = +-1``, variance ``2 sum_{i!=j} H_ij^2``
    per sample, exact for a diagonal H) or ``"gaussian"`` (variance ``2 ||H||_F^2``).
    Probes are drawn one per sample, in order, from ``Generator(PCG64(seed))``. Uses
    ``samples`` HVPs.
    """
    _require(problem, "hvp")
    d = _dim(problem)
    w = _validate.vector("w", w, size=d)
    samples = _validate.integer("samples", samples, lo=1)
    seed = _validate.integer("seed", seed, lo=0)
    distribution = _validate.choice("distribution", distribution, _PROBES)
    _validate.allocation("samples", samples, 8 * samples, "the probes' values")
    rng = np.random.Generator(np.random.PCG64(seed))
    counter = _CountingHVP(problem, w, d)
    values = np.empty(samples)
    for s in range(samples):
        if distribution == "rademacher":
            z = 2.0 * rng.integers(0, 2, size=d) - 1.0   # exactly +-1.0
        else:
            z = rng.standard_normal(d)
        values[s] = _dot(z, counter(z))
    return _estimate(values, counter.count)


# ------------------------------------------------------------------------- flatness


def flatness(problem, w, *, radius: float, samples: int = 100, seed: int = 0,
             distribution: str = "sphere", antithetic: bool = True) -> Estimate:
    """The expected loss increase ``E[L(w + delta)] - L(w)`` for random ``delta`` of
    size ``radius`` (module docstring: ``radius^2 tr(H) / (2 d)`` on a quadratic).

    ``distribution``: ``"sphere"`` (``||delta|| = radius`` exactly) or ``"gaussian"``
    (``delta ~ N(0, (radius^2 / d) I)``). ``antithetic``: evaluate ``+-delta`` per sample
    (cancels the gradient term exactly). One standard normal (d,) draw per sample, in
    order, from ``Generator(PCG64(seed))``. Uses ``2 samples + 1`` losses with pairs,
    ``samples + 1`` without.
    """
    _require(problem, "loss")
    d = _dim(problem)
    w = _validate.vector("w", w, size=d)
    radius = _validate.real("radius", radius, lo=0.0, lo_open=True)
    samples = _validate.integer("samples", samples, lo=1)
    seed = _validate.integer("seed", seed, lo=0)
    distribution = _validate.choice("distribution", distribution, _PERTURBATIONS)
    _validate.allocation("samples", samples, 8 * samples, "the samples' values")
    antithetic = _validate.flag("antithetic", antithetic)
    rng = np.random.Generator(np.random.PCG64(seed))
    loss = _CountingLoss(problem)
    base = loss(w)
    values = np.empty(samples)
    sigma = radius / math.sqrt(d)
    for s in range(samples):
        z = rng.standard_normal(d)
        if distribution == "sphere":
            delta = (radius / _norm(z)) * z   # ||z|| > 0 with probability one
        else:
            delta = sigma * z
        up = loss(_moved(w, delta, radius)) - base
        if antithetic:
            values[s] = (up + (loss(_moved(w, -delta, radius)) - base)) / 2.0
        else:
            values[s] = up
    return _estimate(values, loss.count)


def _moved(w, delta, radius):
    """``w + delta``, refusing a radius that moves w out of the float64 range."""
    with np.errstate(over="ignore", invalid="ignore"):
        x = w + delta
    if not np.all(np.isfinite(x)):
        raise ValueError(f"radius={radius!r} moves w out of the float64 range (w + delta "
                         "overflows); use a smaller radius")
    return x


class _CountingLoss:
    """``x -> problem.loss(x)`` with a checked (finite, real) output and a call count."""

    def __init__(self, problem):
        self.problem, self.count = problem, 0

    def __call__(self, x):
        self.count += 1
        value = self.problem.loss(x)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"problem.loss must return a real number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise FloatingPointError(f"problem.loss returned {value!r} (the point is too far "
                                     f"out; use a smaller radius or range)")
        return value


# -------------------------------------------------------------------------- slices


def random_direction(w, *, seed: int, normalize: str | None = None, blocks=None) -> np.ndarray:
    """A random direction in parameter space, shaped like ``w``.

    ``Generator(PCG64(seed)).standard_normal(d)``, then by ``normalize``:

    * None: as drawn (``E ||d||^2 = d``);
    * ``"unit"``: divided by its norm;
    * ``"filter"`` (Li et al. 2018): for each slice ``b`` in ``blocks`` (disjoint,
      non-empty, step 1, inside ``range(d)``), ``d[b] *= ||w[b]|| / ||d[b]||``; entries in
      no block become zero (biases are left unperturbed). Needs ``blocks``.
    """
    w = _validate.vector("w", w)
    seed = _validate.integer("seed", seed, lo=0)
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of None, 'unit', 'filter', got {normalize!r}")
    if (normalize == "filter") != (blocks is not None):
        raise ValueError("blocks (a list of slices) is needed for normalize='filter' "
                         "and only then")
    d = w.shape[0]
    direction = np.random.Generator(np.random.PCG64(seed)).standard_normal(d)
    if normalize == "unit":
        return direction / _norm(direction)
    if normalize == "filter":
        out = np.zeros(d)
        for b in _check_blocks(blocks, d):
            norm = _norm(direction[b])
            if norm > 0.0:   # a zero draw (probability zero) stays zero
                out[b] = direction[b] * (_norm(w[b]) / norm)
        return out
    return direction


def slice_1d(problem, w, direction, alphas) -> np.ndarray:
    """``[L(w + a * direction) for a in alphas]`` (each point ``w + a * direction``
    computed element-wise: one product and one sum, each rounded once)."""
    _require(problem, "loss")
    d = _dim(problem)
    w = _validate.vector("w", w, size=d)
    direction = _validate.vector("direction", direction, size=d)
    alphas = _validate.vector("alphas", alphas)
    loss = _CountingLoss(problem)
    return np.array([loss(w + a * direction) for a in alphas])


def slice_2d(problem, w, d1, d2, alphas, betas) -> np.ndarray:
    """The (len(alphas), len(betas)) grid ``L((w + a * d1) + b * d2)``, row a, column b."""
    _require(problem, "loss")
    d = _dim(problem)
    w = _validate.vector("w", w, size=d)
    d1 = _validate.vector("d1", d1, size=d)
    d2 = _validate.vector("d2", d2, size=d)
    alphas = _validate.vector("alphas", alphas)
    betas = _validate.vector("betas", betas)
    loss = _CountingLoss(problem)
    grid = np.empty((alphas.shape[0], betas.shape[0]))
    for i, a in enumerate(alphas):
        row = w + a * d1
        for j, b in enumerate(betas):
            grid[i, j] = loss(row + b * d2)
    return grid


# ------------------------------------------------------------------------- helpers


def _require(problem, *methods):
    """TypeError naming the first missing part of the protocol this function uses."""
    if not hasattr(problem, "dim"):
        raise TypeError(f"problem must have a dim attribute (the landscape protocol: dim, "
                        f"loss(w), grad(w), hvp(w, v)); got {type(problem).__name__}")
    for name in methods:
        if not callable(getattr(problem, name, None)):
            raise TypeError(f"problem has no {name}() method (the landscape protocol: dim, "
                            f"loss(w), grad(w), hvp(w, v)); got {type(problem).__name__}")


def _dim(problem) -> int:
    return _validate.integer("problem.dim", problem.dim, lo=1)


def _output_vector(name, out, d):
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != (d,):
        raise TypeError(f"problem.{name} must return a float64 array of shape ({d},)")
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(f"problem.{name} returned a non-finite value")
    return out


def _check_blocks(blocks, d):
    if isinstance(blocks, slice) or not hasattr(blocks, "__iter__"):
        raise TypeError("blocks must be a list of slices")
    blocks = list(blocks)
    covered = np.zeros(d, dtype=bool)
    for b in blocks:
        if not isinstance(b, slice):
            raise TypeError(f"blocks must be a list of slices, found {type(b).__name__}")
        ok = (isinstance(b.start, numbers.Integral) and isinstance(b.stop, numbers.Integral)
              and b.step in (None, 1) and 0 <= b.start < b.stop <= d)
        if not ok:
            raise ValueError(f"blocks must be slices start:stop with 0 <= start < stop <= {d} "
                             f"and step 1, got {b}")
        if np.any(covered[b]):
            raise ValueError(f"blocks must be disjoint; {b} overlaps an earlier block")
        covered[b] = True
    return blocks


def _estimate(values: np.ndarray, evaluations: int) -> Estimate:
    """Mean and standard error, shifted by the first value: a constant sequence gives
    its value and a zero standard error exactly. Samples, mean or variance beyond
    float64 raise FloatingPointError (never an inf or nan estimate from finite inputs)."""
    n = values.shape[0]
    shift = float(values[0])
    try:
        with np.errstate(over="raise", invalid="raise"):
            if not np.all(np.isfinite(values)):
                raise FloatingPointError
            mean = shift + math.fsum(values - shift) / n
            if n == 1:
                return Estimate(mean, math.inf, 1, evaluations)
            variance = math.fsum((values - mean) ** 2) / (n - 1)
            standard_error = math.sqrt(variance / n)
    except (FloatingPointError, OverflowError):
        raise FloatingPointError("the samples, their mean or their variance overflowed "
                                 "float64 (the problem's values are too large)") from None
    if not (math.isfinite(mean) and math.isfinite(standard_error)):
        raise FloatingPointError("the mean or standard error overflowed float64 (the "
                                 "problem's values are too large)")
    return Estimate(mean, standard_error, n, evaluations)


def _exponent(x) -> int:
    """The e with ``max|x|`` in ``[2^e, 2^(e+1))`` (0 for a zero vector)."""
    big = float(np.max(np.abs(x)))
    return 0 if big == 0.0 else math.frexp(big)[1] - 1


def _scaled(x):
    """``(x * 2^-e, e)`` with e from :func:`_exponent`: the largest entry moves into
    ``[1, 2)``. Scaling by a power of two is exact (an entry more than 2^1000 times
    smaller than the largest may lose bits: far below any rounding of a dot product or
    norm of x), so squares and products of scaled entries neither overflow nor lose
    bits to underflow, whatever the magnitude of x."""
    e = _exponent(x)
    return np.ldexp(x, -e), e


def _unscale(value: float, e: int) -> float:
    """``value * 2^e`` (one exact scaling, or one rounding into the subnormal range);
    FloatingPointError if the true result overflows float64."""
    try:
        return math.ldexp(value, e)
    except OverflowError:
        raise FloatingPointError("a dot product or norm of the problem's vectors overflows "
                                 "float64 (the Hessian-vector products are too large)") from None


def _dot(x, y) -> float:
    """``x . y``, correctly rounded (``math.fsum`` of the exactly scaled products; the
    same bits as ``fsum(x * y)`` whenever no product overflows or underflows)."""
    xs, ex = _scaled(x)
    ys, ey = _scaled(y)
    return _unscale(math.fsum(xs * ys), ex + ey)


def _norm(x) -> float:
    """``||x||`` without overflow or underflow of the squares (the bits of
    ``sqrt(fsum(x * x))`` whenever no square over- or underflows)."""
    xs, e = _scaled(x)
    return _unscale(math.sqrt(math.fsum(xs * xs)), e)


def _residual(v, hv, theta) -> float:
    """``||H v - theta v||`` computed on ``H v`` and ``theta`` scaled together by the
    same power of two, so ``theta v`` cannot underflow (a residual of vectors of size
    1e-200 is measured, not flushed to zero) and the difference is the same bits."""
    e = _exponent(hv)
    return _unscale(_norm(np.ldexp(hv, -e) - math.ldexp(theta, -e) * v), e)


def _unit(x):
    """``x / ||x||`` on the scaled x (never an overflowed or underflowed norm: the result
    is a unit vector for any nonzero finite x); a zero vector is returned as a copy."""
    xs, _ = _scaled(x)
    norm = math.sqrt(math.fsum(xs * xs))
    return xs / norm if norm > 0.0 else x.copy()


def _canonical_sign(v):
    return -v if v[int(np.argmax(np.abs(v)))] < 0.0 else v


def _readonly(a):
    out = np.array(a, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out
