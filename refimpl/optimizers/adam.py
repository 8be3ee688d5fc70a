r"""Adam with coupled L2 weight decay (Kingma and Ba 2015, Algorithm 1), in the order of
operations of ``torch.optim.Adam`` (amsgrad off). FAME reduces to it (proofs/sources.md#fame),
and the Adam branch of the scaling rules (proofs/sources.md#ema-scaling-rule) applies to it.

Per step, with ``t`` counted from 1 since init or the last reset::

    g <- -g                         if maximize
    g <- g + weight_decay * w
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g * g
    denom <- sqrt(v) / sqrt(1 - beta2**t) + eps
    w <- w - (lr / (1 - beta1**t)) * (m / denom)

(PyTorch writes the first moment as ``m.lerp_(g, 1 - beta1)``, which can differ from
``beta1 * m + (1 - beta1) * g`` in the last bit; refimpl uses the textbook form.)

In mathematical notation ($\beta_1, \beta_2$ the decays, $\epsilon$ the guard):

$$m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2$$

$$w_t = w_{t-1} - \frac{\eta_t}{1 - \beta_1^t} \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}$$
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl.optimizers.base import BaseOptimizer
from refimpl.schedules import Schedule, as_schedule


class AdamState(NamedTuple):
    """``step`` indexes the lr schedule; ``count`` (steps since init/reset) gives the
    bias-correction exponent ``t = count + 1``; ``m``, ``v``: shape (d,)."""

    step: int
    count: int
    m: np.ndarray
    v: np.ndarray


@kernel
def adam_kernel(w, m, v, g, lr, beta1, beta2, eps, weight_decay, maximize, t):
    """One Adam step in place on ``w``, ``m``, ``v`` (all (d,)); ``t`` >= 1 as a float."""
    step_size = lr / (1.0 - beta1 ** t)
    bias2_sqrt = math.sqrt(1.0 - beta2 ** t)
    for i in range(w.shape[0]):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * gi
        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi
        denom = math.sqrt(v[i]) / bias2_sqrt + eps
        w[i] = w[i] - step_size * (m[i] / denom)


@dataclass(frozen=True)
class Adam(BaseOptimizer):
    """Adam (coupled L2). ``lr`` >= 0 (float, per-step array or callable);
    ``beta1``, ``beta2`` in [0, 1); ``eps`` > 0; ``weight_decay`` >= 0."""

    lr: Schedule | float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    maximize: bool = False

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "lr", as_schedule("lr", self.lr))
        for name in ("beta1", "beta2"):
            set_(self, name, _validate.real(name, getattr(self, name), lo=0.0, hi=1.0, hi_open=True))
        set_(self, "eps", _validate.real("eps", self.eps, lo=0.0, lo_open=True))
        set_(self, "weight_decay", _validate.real("weight_decay", self.weight_decay, lo=0.0))
        _validate.flag("maximize", self.maximize)

    def _state_type(self):
        return AdamState

    def init(self, w) -> AdamState:
        """The state before the first step: zero moments, counters at 0 (``w`` is validated)."""
        w = _validate.vector("w", w)
        return AdamState(0, 0, np.zeros_like(w), np.zeros_like(w))

    def reset(self, state: AdamState) -> AdamState:
        """Zero moments and a restarted bias correction (``count = 0``); keeps ``step``, which indexes the lr schedule."""
        return AdamState(state.step, 0, np.zeros_like(state.m), np.zeros_like(state.v))

    def update(self, w, state: AdamState, g):
        """``(w, state)`` after one step with gradient ``g``; inputs are not modified."""
        w = _validate.vector("w", w)
        g = _validate.vector("g", g, size=w.shape[0])
        self.check_state(state, w)
        lr = self.lr.at(state.step)
        w_new, m, v = w.copy(), state.m.copy(), state.v.copy()
        adam_kernel(w_new, m, v, g, lr, self.beta1, self.beta2, self.eps,
                    self.weight_decay, self.maximize, float(state.count + 1))
        return self._checked(w_new), AdamState(state.step + 1, state.count + 1, m, v)

    def _loop_args(self):
        hp = np.array([self.beta1, self.beta2, self.eps, self.weight_decay])
        return hp, np.array([self.maximize], dtype=np.int64)
