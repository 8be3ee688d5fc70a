r"""Stochastic gradient descent with momentum, Nesterov and weight decay.

Source: the update of ``torch.optim.SGD`` (Sutskever et al. 2013 for Nesterov in this
form), with two other conventions users meet offered as named options. Sources and the
code each convention follows: proofs/sources.md#sgd.

Default convention ``"pytorch"`` (per step, ``g`` the mini-batch gradient)::

    g <- -g                              if maximize
    g <- g + weight_decay * w            (coupled L2)
    buf <- g                             on the first step (no dampening there)
    buf <- momentum * buf + (1 - dampening) * g     afterwards
    d <- g + momentum * buf  if nesterov  else  buf
    w <- w - lr * d

``"optax"`` (``optax.sgd``): ``trace <- g + momentum * trace`` from zeros, no
dampening; the same iterates as PyTorch when dampening is 0.
``"keras"`` (Keras 2 / Sutskever / numpy-ml): ``v <- momentum * v - lr * g``;
``w <- w + v`` (nesterov: ``w <- w + momentum * v - lr * g``). The learning rate sits
inside the velocity, so it equals PyTorch only while lr is constant. In every
convention ``weight_decay`` is the coupled L2 term above (Keras 3's own
``weight_decay`` argument is decoupled and is not modelled).

With ``momentum == 0`` all three conventions are ``w <- w - lr * g``.

In mathematical notation (PyTorch convention, step $t \ge 1$, $\lambda$ the weight
decay, $\mu$ the momentum, $\tau$ the dampening, $\eta_t$ the learning rate):

$$g_t = \nabla L_t(w_{t-1}) + \lambda w_{t-1}$$

$$b_t = \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1)$$

$$w_t = w_{t-1} - \eta_t (g_t + \mu b_t) \quad \text{(nesterov)}, \qquad w_t = w_{t-1} - \eta_t b_t \quad \text{(otherwise)}$$
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl.optimizers.base import BaseOptimizer
from refimpl.schedules import Schedule, as_schedule

CONVENTIONS = ("pytorch", "optax", "keras")
PYTORCH, OPTAX, KERAS = 0, 1, 2


class SGDState(NamedTuple):
    """``step``: steps taken (indexes the lr schedule); ``count``: steps since init or
    the last reset (``count == 0`` marks PyTorch's first step); ``momentum_buffer``:
    shape (d,), PyTorch's ``buf`` / optax's ``trace`` / Keras's velocity ``v``."""

    step: int
    count: int
    momentum_buffer: np.ndarray


@kernel
def sgd_kernel(w, buf, g, lr, momentum, dampening, weight_decay, nesterov, maximize,
               first, convention):
    """One SGD step, in place on ``w`` (d,) and ``buf`` (d,). Arrays and scalars only."""
    for i in range(w.shape[0]):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]
        if momentum == 0.0:
            w[i] = w[i] - lr * gi
        elif convention == PYTORCH:
            if first:
                b = gi
            else:
                b = momentum * buf[i] + (1.0 - dampening) * gi
            buf[i] = b
            d = gi + momentum * b if nesterov else b
            w[i] = w[i] - lr * d
        elif convention == OPTAX:
            b = gi + momentum * buf[i]
            buf[i] = b
            d = gi + momentum * b if nesterov else b
            w[i] = w[i] - lr * d
        else:  # KERAS: the learning rate lives inside the velocity
            v = momentum * buf[i] - lr * gi
            buf[i] = v
            if nesterov:
                w[i] = w[i] + momentum * v - lr * gi
            else:
                w[i] = w[i] + v


@dataclass(frozen=True)
class SGD(BaseOptimizer):
    """SGD with momentum (PyTorch convention by default).

    Parameters
    ----------
    lr : float, float64 array (per step) or callable ``t -> lr``; >= 0.
    momentum : float in [0, 1). 0 disables the buffer.
    dampening : float in [0, 1]; PyTorch only (skipped on the first step).
    weight_decay : float >= 0, coupled L2 added to the gradient.
    nesterov : bool; requires momentum > 0 and dampening == 0.
    maximize : bool; ascend instead of descend (the gradient is negated first).
    convention : "pytorch" (default), "optax" or "keras"; see the module docstring.
    """

    lr: Schedule | float = 0.01
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    maximize: bool = False
    convention: str = "pytorch"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "lr", as_schedule("lr", self.lr))
        set_(self, "momentum", _validate.real("momentum", self.momentum, lo=0.0, hi=1.0, hi_open=True))
        set_(self, "dampening", _validate.real("dampening", self.dampening, lo=0.0, hi=1.0))
        set_(self, "weight_decay", _validate.real("weight_decay", self.weight_decay, lo=0.0))
        _validate.flag("nesterov", self.nesterov)
        _validate.flag("maximize", self.maximize)
        _validate.choice("convention", self.convention, CONVENTIONS)
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening == 0, got "
                f"momentum={self.momentum!r}, dampening={self.dampening!r}"
            )
        if self.convention != "pytorch" and self.dampening != 0.0:
            raise ValueError(
                f"dampening must be 0.0 with convention={self.convention!r} "
                f"(only the PyTorch convention has dampening), got {self.dampening!r}"
            )

    def _state_type(self):
        return SGDState

    def init(self, w) -> SGDState:
        """The state before the first step: a zero momentum buffer, counters at 0."""
        w = _validate.vector("w", w)
        return SGDState(0, 0, np.zeros_like(w))

    def reset(self, state: SGDState) -> SGDState:
        """A zero momentum buffer and ``count = 0`` (the next step is PyTorch's first step again); keeps ``step``, which indexes the lr schedule."""
        return SGDState(state.step, 0, np.zeros_like(state.momentum_buffer))

    def update(self, w, state: SGDState, g):
        """``(w, state)`` after one step with gradient ``g``; inputs are not modified."""
        w = _validate.vector("w", w)
        g = _validate.vector("g", g, size=w.shape[0])
        self.check_state(state, w)
        lr = self.lr.at(state.step)
        w_new = w.copy()
        buf = state.momentum_buffer.copy()
        sgd_kernel(w_new, buf, g, lr, self.momentum, self.dampening, self.weight_decay,
                   self.nesterov, self.maximize, state.count == 0,
                   CONVENTIONS.index(self.convention))
        return self._checked(w_new), SGDState(state.step + 1, state.count + 1, buf)

    # The training loop's view: kind code, float hyperparameters, integer flags.
    def _loop_args(self):
        hp = np.array([self.momentum, self.dampening, self.weight_decay])
        flags = np.array([self.nesterov, self.maximize, CONVENTIONS.index(self.convention)],
                         dtype=np.int64)
        return hp, flags
