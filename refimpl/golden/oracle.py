"""The gradient oracle the checker hands to an adapter (FORMAT.md section 3).

``grad_fn(w) -> (loss, g)`` evaluates the mini-batch of ONE step, in float64, with
refimpl's own problem kernels (fixed-order sums, no BLAS): the very numbers the expected
values were generated with. ``w`` may be anything ``numpy.asarray`` turns into d floats
(a float32 array, a list, a CPU tensor's ``.numpy()``); it is read, never modified. Each
call returns new arrays. Non-finite inputs give non-finite outputs (never an
exception): that is how a diverging run shows.

Every call is recorded (point, loss, gradient), so the checker can count gradient
evaluations and compare the loss of the first one.
"""

from __future__ import annotations

import numpy as np

from refimpl.problems.mlp import MLP, mlp_loss_grad
from refimpl.problems.quadratic import noisy_quadratic_kernel, quadratic_kernel


def replay_loss(g: np.ndarray, w: np.ndarray) -> float:
    """The replay problem's loss ``sum_i g_i w_i`` (index order)."""
    total = 0.0
    for i in range(w.shape[0]):
        total += float(g[i]) * float(w[i])
    return total


class Oracle:
    """The oracle of 1-based step ``k`` of ``case``; ``calls`` lists (w, loss, g)."""

    def __init__(self, case, k: int):
        self.case = case
        self.k = k
        self.calls: list[tuple[np.ndarray, float, np.ndarray]] = []
        data = case.step_data(k)
        p = case.problem
        self._kind = p.kind
        if p.kind == "quadratic":
            self._H = np.ascontiguousarray(p["H"])
            self._w_star = np.ascontiguousarray(p["w_star"])
        elif p.kind == "noisy_quadratic":
            self._h = np.ascontiguousarray(p["h"])
            self._w_star = np.ascontiguousarray(p["w_star"])
            self._scale = np.ascontiguousarray(p["noise_scale"])
            self._z = np.array(data["noise"], dtype=np.float64)
        elif p.kind == "replay":
            self._g = np.array(data["gradient"], dtype=np.float64)
        elif p.kind == "mlp":
            self._net = MLP(tuple(int(n) for n in p["sizes"]), p["activation"], p["loss"]).net
            self._X = np.ascontiguousarray(p["X"])
            self._Y = np.ascontiguousarray(p["Y"])
            self._idx = np.array(data["batch"], dtype=np.int64)
        else:  # the reader refuses unknown kinds; keep the message if one slips through
            raise ValueError(f"unknown problem kind {p.kind!r}")

    def __call__(self, w):
        x = np.array(w, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.case.d:
            raise ValueError(f"grad_fn expects {self.case.d} parameters, got shape "
                             f"{np.shape(w)}")
        g = np.empty(self.case.d)
        with np.errstate(all="ignore"):  # a diverging run overflows here, by design
            if self._kind == "quadratic":
                loss = quadratic_kernel(self._H, self._w_star, x, g)
            elif self._kind == "noisy_quadratic":
                loss = noisy_quadratic_kernel(self._h, self._w_star, self._scale, self._z, x, g)
            elif self._kind == "mlp":
                loss = mlp_loss_grad(self._net, x, self._X, self._Y, self._idx, g)
            else:
                g[:] = self._g
                loss = replay_loss(self._g, x)
        loss = float(loss)
        self.calls.append((x.copy(), loss, g.copy()))
        return loss, g

    @property
    def saw_non_finite(self) -> bool:
        return any(not (np.isfinite(loss) and np.all(np.isfinite(g))) for _, loss, g in self.calls)
