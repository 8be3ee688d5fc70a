"""Quadratic problems with exact gradients, Hessians and minimizers
(proofs/sources.md#problems).

``Quadratic``: ``f(w) = 1/2 (w - w*)^T H (w - w*)`` for any symmetric H (positive
definite for a minimum, indefinite for a saddle). Gradient ``H (w - w*)``.

``NoisyQuadratic`` (Zhang et al. 2019, "Which algorithmic choices matter at which batch
sizes?"): diagonal ``H = diag(h)`` and a mini-batch gradient with additive Gaussian
noise of covariance ``diag(c) / B``::

    xi      = sqrt(c / B) * z,        z ~ N(0, I) drawn per step
    loss_B  = sum_i 1/2 h_i r_i^2 + xi_i r_i,    r = w - w*
    g_B     = h * r + xi

The noise does not depend on ``w``, so the two gradient evaluations of a SAM step on
the same mini-batch see the same ``xi``. The standard-normal draws ``z`` come from
``numpy.random.Generator(PCG64(seed))`` as one (steps, d) array
(:meth:`NoisyQuadratic.draw_noise`), so any run can be replayed or stored exactly.

Both problems also offer the landscape protocol of :mod:`refimpl.landscape`: ``dim``,
``loss(w)``, ``grad(w)`` and the Hessian-vector product ``hvp(w, v)`` (``H v`` for the
Quadratic, ``h * v`` for the noisy quadratic model, whose ``loss`` and ``grad`` are the
noise-free population ones).

Every sum runs in index order in a plain loop (no BLAS), so results are bitwise
reproducible. The kernels are shared with the jitted training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel


@kernel
def quadratic_kernel(H, w_star, w, g):
    """Write ``g = H (w - w*)`` (fixed-order sums) and return ``1/2 (w-w*)^T H (w-w*)``."""
    d = w.shape[0]
    loss = 0.0
    for i in range(d):
        acc = 0.0
        for j in range(d):  # r_j = w_j - w*_j recomputed: no work array to allocate per call
            acc += H[i, j] * (w[j] - w_star[j])
        g[i] = acc
        loss += (w[i] - w_star[i]) * acc
    return 0.5 * loss


@kernel
def noisy_quadratic_kernel(h, w_star, noise_scale, z, w, g):
    """Write ``g = h * r + xi`` with ``xi = noise_scale * z`` and return the batch loss."""
    loss = 0.0
    for i in range(w.shape[0]):
        r = w[i] - w_star[i]
        xi = noise_scale[i] * z[i]
        g[i] = h[i] * r + xi
        loss += 0.5 * h[i] * r * r + xi * r
    return loss


@dataclass(frozen=True, eq=False)
class Quadratic:
    """``f(w) = 1/2 (w - w*)^T H (w - w*)``.

    Parameters
    ----------
    H : (d, d) symmetric float64 matrix (exactly symmetric: ``H == H.T``).
    w_star : (d,) float64, the stationary point (default zeros).
    """

    H: np.ndarray
    w_star: np.ndarray | None = None

    def __post_init__(self):
        H = _validate.matrix("H", self.H)
        if H.shape[0] != H.shape[1]:
            raise ValueError(f"H must be square, got shape {H.shape}")
        if not np.array_equal(H, H.T):
            raise ValueError("H must be exactly symmetric (H == H.T)")
        d = H.shape[0]
        w_star = np.zeros(d) if self.w_star is None else _validate.vector("w_star", self.w_star, size=d)
        object.__setattr__(self, "H", _frozen(H))
        object.__setattr__(self, "w_star", _frozen(w_star))

    @property
    def dim(self) -> int:
        """The number of parameters d."""
        return self.H.shape[0]

    def loss(self, w) -> float:
        """The exact loss at ``w``."""
        return self.loss_and_grad(w)[0]

    def grad(self, w) -> np.ndarray:
        """The exact gradient ``H (w - w*)``."""
        return self.loss_and_grad(w)[1]

    def loss_and_grad(self, w):
        """Loss and gradient; FloatingPointError if either overflows float64."""
        loss, g = self._oracle(w)
        return _validate.finite_result("Quadratic.loss_and_grad", loss, g)

    def _oracle(self, w):
        """The step oracle: loss and gradient as computed (a non-finite value is the
        optimizer's divergence to report, not an error here)."""
        w = _validate.vector("w", w, size=self.dim)
        g = np.empty(self.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = quadratic_kernel(self.H, self.w_star, w, g)
        return float(loss), g

    def hessian(self) -> np.ndarray:
        """A copy of H."""
        return self.H.copy()

    def hvp(self, w, v) -> np.ndarray:
        """The Hessian-vector product ``H v`` (exact; the same at every ``w``).

        ``(H v)_i = sum_j H_ij v_j`` summed in index order: it is the gradient kernel
        read with ``w* = 0`` and ``w = v`` (``v_j - 0`` is exactly ``v_j``), so it adds no
        kernel and no BLAS. ``w`` is validated and otherwise unused: a quadratic's
        Hessian does not depend on the point. Raises FloatingPointError if ``H v``
        overflows.
        """
        _validate.vector("w", w, size=self.dim)
        v = _validate.vector("v", v, size=self.dim)
        out = np.empty(self.dim)
        with np.errstate(over="ignore", invalid="ignore"):  # the discarded loss may overflow
            quadratic_kernel(self.H, np.zeros(self.dim), v, out)
        return _finite("hvp", out)

    def grad_fn(self, noise=None):
        """The oracle ``w -> (loss, g)`` for a step (deterministic: no noise argument)."""
        if noise is not None:
            raise ValueError("noise must be None for a Quadratic (it has no gradient noise)")
        return self._oracle

    def draw_noise(self, steps: int, seed: int) -> None:
        """A deterministic problem draws no noise (returns None)."""
        _validate.integer("steps", steps, lo=0)
        _validate.integer("seed", seed, lo=0)
        return None


@dataclass(frozen=True, eq=False)
class NoisyQuadratic:
    """The noisy quadratic model with ``H = diag(h)`` and noise covariance ``diag(c) / B``.

    Parameters
    ----------
    h : (d,) float64, the Hessian's diagonal (any sign; positive for a minimum).
    c : (d,) float64 >= 0, the per-example gradient-noise variances (default ``h``,
        the common choice C = H; then h must be >= 0).
    batch_size : int >= 1, B.
    w_star : (d,) float64, the minimizer (default zeros).
    """

    h: np.ndarray
    c: np.ndarray | None = None
    batch_size: int = 1
    w_star: np.ndarray | None = None

    def __post_init__(self):
        h = _validate.vector("h", self.h)
        d = h.shape[0]
        c = h if self.c is None else _validate.vector("c", self.c, size=d)
        if np.any(c < 0.0):
            raise ValueError("c (gradient-noise variances) must be >= 0" +
                             (" (c defaults to h, so h must be >= 0 too)" if self.c is None else ""))
        _validate.integer("batch_size", self.batch_size, lo=1)
        w_star = np.zeros(d) if self.w_star is None else _validate.vector("w_star", self.w_star, size=d)
        object.__setattr__(self, "h", _frozen(h))
        object.__setattr__(self, "c", _frozen(c))
        object.__setattr__(self, "w_star", _frozen(w_star))
        object.__setattr__(self, "noise_scale", _frozen(np.sqrt(c / self.batch_size)))

    @property
    def dim(self) -> int:
        """The number of parameters d."""
        return self.h.shape[0]

    def loss(self, w) -> float:
        """The population (noise-free) loss ``sum 1/2 h_i (w_i - w*_i)^2``."""
        w = _validate.vector("w", w, size=self.dim)
        g = np.empty(self.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = float(noisy_quadratic_kernel(self.h, self.w_star, np.zeros(self.dim),
                                                np.zeros(self.dim), w, g))
        return _validate.finite_result("NoisyQuadratic.loss", loss)

    def grad(self, w) -> np.ndarray:
        """The population (noise-free) gradient ``h * (w - w*)``: the mini-batch oracle's
        gradient with zero noise, from the same kernel (so ``grad(w)`` equals
        ``grad_fn(zeros)(w)[1]`` bit for bit). Raises FloatingPointError on overflow."""
        w = _validate.vector("w", w, size=self.dim)
        g = np.empty(self.dim)
        zeros = np.zeros(self.dim)
        with np.errstate(over="ignore", invalid="ignore"):  # the discarded loss may overflow
            noisy_quadratic_kernel(self.h, self.w_star, zeros, zeros, w, g)
        return _finite("grad", g)

    def hvp(self, w, v) -> np.ndarray:
        """The Hessian-vector product ``h * v`` (element-wise, one rounding per element;
        the same at every ``w``, which is validated and otherwise unused). Raises
        FloatingPointError if it overflows."""
        _validate.vector("w", w, size=self.dim)
        v = _validate.vector("v", v, size=self.dim)
        with np.errstate(over="ignore"):
            out = self.h * v
        return _finite("hvp", out)

    def draw_noise(self, steps: int, seed: int) -> np.ndarray:
        """Standard-normal draws, shape (steps, d), from ``Generator(PCG64(seed))``."""
        steps = _validate.integer("steps", steps, lo=0)
        seed = _validate.integer("seed", seed, lo=0)
        _validate.allocation("steps", steps, 8 * steps * self.dim, "the noise draws")
        rng = np.random.Generator(np.random.PCG64(seed))
        return rng.standard_normal((steps, self.dim))

    def grad_fn(self, noise):
        """The oracle ``w -> (loss_B, g_B)`` of the mini-batch whose standard-normal
        draw is ``noise`` (d,) (one row of :meth:`draw_noise`)."""
        z = _validate.vector("noise", noise, size=self.dim).copy()

        def oracle(w):
            w = _validate.vector("w", w, size=self.dim)
            g = np.empty(self.dim)
            loss = noisy_quadratic_kernel(self.h, self.w_star, self.noise_scale, z, w, g)
            return float(loss), g

        return oracle


def _finite(name: str, out: np.ndarray) -> np.ndarray:
    """Return ``out`` if it is finite; a quadratic's exact value overflowed otherwise."""
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(f"{name} overflowed float64 (the input is too large)")
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True, order="C")
    out.flags.writeable = False
    return out
