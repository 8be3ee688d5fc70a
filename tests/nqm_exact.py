"""Independent expected values for SGD, the EMA and Switch EMA on one coordinate of the
noisy quadratic model (not a test module).

The moment recursion is written again here, from the optimizers' documented updates
(the module docstrings of refimpl.optimizers), without reading refimpl.theory, and run
in 40-digit decimal arithmetic (``decimal``), so its rounding (about 1e-40 per operation,
amplified by at most the condition number 1 / (1 - r^2) of the recursion) is far below
float64's: the tests compare refimpl.theory's float64 values with these.

One coordinate, curvature ``h``, noise variance ``sigma2 = c / B``, in deviations
``x = w - w*`` (every update is affine with weights summing to one, so ``w*`` drops out).
The state is ``(x, buf, e)`` (weights, heavy-ball buffer, raw EMA buffer); one step n:

* heavy ball (PyTorch, dampening 0; ``buf = 0`` before the first step, so the first-step
  rule ``buf = g`` is ``mu * 0 + g``): ``g = h x + xi``, ``buf' = mu buf + g``,
  ``x' = x - lr buf'``;
* if ``n % every == 0``: ``e' = rho e + (1 - rho) x'`` (start "copy": ``e = x`` at step 0);
* if ``K`` and ``n % K == 0`` (a switch at every epoch end), by ``switch``:
  ``"sema"``: ``x <- e`` (and ``buf <- 0`` if ``reset_buffer``); ``"never"``: nothing
  (the EMA: a switch that never fires); ``"reset_ema"``: ``e <- x`` (the copy made the
  wrong way round: the average is reset to the weights, which keep running as SGD).

Means follow ``m' = A m``, covariances ``S' = A S A^T + sigma2 b b^T`` with ``b`` the
column of the noise ``xi``; the expected loss is ``h / 2 (m_x^2 + Var x)``.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from operator import mul

import numpy as np

PREC = 40
SWITCHES = ("sema", "never", "reset_ema")


def _d(x) -> Decimal:
    return Decimal(float(x))  # exact: every float64 is a finite decimal


def _mat(a, b):
    """The matrix product a b (3x3 lists)."""
    cols = list(zip(*b))
    return [[sum(map(mul, row, col)) for col in cols] for row in a]


def _vec(a, v):
    return [sum(map(mul, row, v)) for row in a]


def _sandwich(a, s):
    """A S A^T: row i, column j is (A S)_i . A_j."""
    a_s = _mat(a, s)
    return [[sum(map(mul, row, other)) for other in a] for row in a_s]


def _eye():
    return [[Decimal(int(i == j)) for j in range(3)] for i in range(3)]


def _add_noise(s, b, sigma2):
    return [[s[i][j] + sigma2 * b[i] * b[j] for j in range(3)] for i in range(3)]


class Exact1D:
    """See the module docstring. ``K=None``: no epochs (SGD or EMA)."""

    def __init__(self, *, h=1.0, c=1.0, batch_size=1, lr, mu=0.0, rho=None, every=1, K=None,
                 switch="sema", reset_buffer=False):
        assert switch in SWITCHES
        with localcontext() as ctx:
            ctx.prec = PREC
            self.h, self.sigma2 = _d(h), _d(c) / _d(batch_size)
            lr, mu = _d(lr), _d(mu)
            base = [[1 - lr * self.h, -lr * mu, Decimal(0)],
                    [self.h, mu, Decimal(0)],
                    [Decimal(0), Decimal(0), Decimal(1)]]
            self._noise = [-lr, Decimal(1), Decimal(0)]
            self._base = base
            self._ema = None
            if rho is not None:
                rho = _d(rho)
                self._ema = [[Decimal(1), Decimal(0), Decimal(0)],
                             [Decimal(0), Decimal(1), Decimal(0)],
                             [1 - rho, Decimal(0), rho]]
            self.every, self.K, self.switch, self.reset_buffer = every, K, switch, reset_buffer

    def _step_map(self, n):
        """(A, b) of step n (1-based), in the module's order: base, EMA, switch."""
        a, b = self._base, self._noise
        if self._ema is not None and n % self.every == 0:
            a, b = _mat(self._ema, a), _vec(self._ema, b)
        if self.K is not None and n % self.K == 0 and self.switch != "never":
            s = _eye()
            if self.switch == "sema":
                s[0] = [Decimal(0), Decimal(0), Decimal(1)]
                if self.reset_buffer:
                    s[1] = [Decimal(0)] * 3
            else:  # reset_ema
                s[2] = [Decimal(1), Decimal(0), Decimal(0)]
            a, b = _mat(s, a), _vec(s, b)
        return a, b

    def _loss(self, m, s, row):
        return float(self.h * (m[row] * m[row] + s[row][row]) / 2)

    def moments(self, x0, steps):
        """Expected losses of the weights and of the average after steps 0..steps, and the
        variances: dict of float arrays ``loss_w, loss_avg, var_w, var_avg, mean_w, mean_avg``."""
        out = {k: [] for k in ("loss_w", "loss_avg", "var_w", "var_avg", "mean_w", "mean_avg")}
        with localcontext() as ctx:
            ctx.prec = PREC
            m = [_d(x0), Decimal(0), _d(x0)]
            s = [[Decimal(0)] * 3 for _ in range(3)]
            for n in range(steps + 1):
                if n:
                    a, b = self._step_map(n)
                    m, s = _vec(a, m), _add_noise(_sandwich(a, s), b, self.sigma2)
                out["loss_w"].append(self._loss(m, s, 0))
                out["loss_avg"].append(self._loss(m, s, 2))
                out["var_w"].append(float(s[0][0]))
                out["var_avg"].append(float(s[2][2]))
                out["mean_w"].append(float(m[0]))
                out["mean_avg"].append(float(m[2]))
        return {k: np.array(v) for k, v in out.items()}

    def stationary(self):
        """The periodic steady state: per phase j = 0..p-1 (the state after steps n with
        n % p == j; p = lcm(every, K)), the expected losses ``loss_w, loss_avg`` (means are
        0). Solves S = P S P^T + Q over one period by doubling
        (S <- S + M S M^T, M <- M^2 from S = Q, M = P), the sum of P^k Q P^kT."""
        p = int(np.lcm(self.every, self.K or 1))
        with localcontext() as ctx:
            ctx.prec = PREC
            P, Q = _eye(), [[Decimal(0)] * 3 for _ in range(3)]
            maps = [self._step_map(n) for n in range(1, p + 1)]
            for a, b in maps:
                P = _mat(a, P)
                Q = _add_noise(_sandwich(a, Q), b, self.sigma2)
            S, M = Q, P
            for _ in range(200):
                S = [[S[i][j] + t for j, t in enumerate(row)] for i, row in enumerate(_sandwich(M, S))]
                M = _mat(M, M)
                size = max(abs(v) for row in M for v in row)
                if size < Decimal(10) ** -(PREC + 5):
                    break
                if size > Decimal(10) ** 30:
                    raise ValueError("unstable: the period map grows")
            else:
                raise ValueError("the doubling did not converge in 200 iterations")
            zero = [Decimal(0)] * 3
            loss_w, loss_avg = [self._loss(zero, S, 0)], [self._loss(zero, S, 2)]
            for a, b in maps[:-1]:
                S = _add_noise(_sandwich(a, S), b, self.sigma2)
                loss_w.append(self._loss(zero, S, 0))
                loss_avg.append(self._loss(zero, S, 2))
        return np.array(loss_w), np.array(loss_avg)
