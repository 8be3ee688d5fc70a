"""FAME, Fast Adaptive Moment Estimation: Adam with a triple EMA (TEMA) of the gradient
(Break a Lag: Triple Exponential Moving Average for Enhanced Optimization). Sources:
proofs/sources.md#fame.

Two variants; both are implemented, neither is the other's approximation.

``variant="official"`` (the authors' code, used by all their experiments), per step with
``t`` counted from 1 since init or the last reset::

    g  <- -g                      if maximize
    g  <- g + weight_decay * w    (coupled L2; with decoupled_weight_decay instead
                                   w <- w * (1 - lr * weight_decay) first, AdamW's form)
    m1 <- b1 m1 + (1 - b1) g
    m2 <- b3 m2 + (1 - b3) m1     (the new m1)
    m3 <- b4 m3 + (1 - b4) m2
    tema <- 3 m1 - 3 m2 + m3
    v  <- b2 v + (1 - b2) g * g   (plain Adam second moment)
    denom <- sqrt(v) / sqrt(1 - b2**t) + eps
           (amsgrad=True: v_max <- max(v_max, v); denom <- sqrt(v_max) / sqrt(1 - b2**t) + eps)
    w  <- w - (lr / c_t) * (tema / denom)

with ``c_t = 1 - b1**t`` (``debias="adam"``, the authors' choice) or ``c_t`` = the
TEMA chain's exact response to a constant gradient of 1 (``debias="exact"``). With
b3 = b4 = 0 and ``debias="adam"`` this is exactly Adam, bit for bit, except for the sign
of a zero: with b1 = 0 and a gradient of exactly -0.0, ``(3 m1 - 3 m2) + m3`` is +0.0
where Adam's m is -0.0, so a parameter of exactly -0.0 ends as -0.0 under FAME and +0.0
under Adam (equal as numbers; proofs/tema_fame.md, FAME-adam).

``variant="full"`` (the talk slides; OUR RECONSTRUCTION, since bias correction and eps
placement were not published): TEMA on both moments with five decays, the m-chain
(b1, b3, b5) over g and the v-chain (b2, b4, b5) over g * g::

    v1     <- b2 v1 + (1 - b2) g * g   (Adam's order of operations: ((1 - b2) g) g)
    m_tema <- 3 m1 - 3 m2 + m3,   v_tema <- 3 v1 - 3 v2 + v3
    d_tema <- sqrt(max(v_tema, 0)) / sqrt(c2_t)
    denom  <- max(d_tema, sqrt(v1) / sqrt(1 - b2**t)) + eps     v_guard="adam" (default)
            = d_tema + eps                                      v_guard="zero"
    w      <- w - (lr / c1_t) * (m_tema / denom)

``debias="exact"`` (default for "full"): c1_t, c2_t are the two chains' responses to a
constant 1; ``debias="adam"``: ``1 - b1**t`` and ``1 - b2**t``.

The guard is needed because TEMA's impulse response has negative lobes: after a gradient
spike v_tema falls below zero, and just before that it is tiny but positive. Clamping
at zero alone (``v_guard="zero"``) keeps the square root real but lets the step grow to
``lr * m_tema / eps``: with all five decays 0.9, a spike g = 10 followed by zero gradients
sends w from about -0.004 to +3254 at step 14. The default ``v_guard="adam"`` never lets
the debiased TEMA second moment fall below Adam's own debiased estimate (the v-chain's
first EMA), so a step is never larger than Adam's step with the same m_tema.
``FAMEFullState.v_clipped`` counts the elements where the guard changed the value.

With b3 = b4 = b5 = 0 and ``debias="adam"`` this is Adam, bit for bit (up to the sign of
a zero, as above), under either guard
(hence v1 is computed in Adam's order, not as ``ema_step(v1, g * g, b2)``, which rounds
differently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl._kernels import decoupled_decay
from refimpl.filters import ema_step, tema_combine
from refimpl.optimizers.base import BaseOptimizer
from refimpl.schedules import Schedule, as_schedule

VARIANTS = ("official", "full")
DEBIAS = ("adam", "exact")
V_GUARDS = ("adam", "zero")


class FAMEState(NamedTuple):
    """Official FAME. ``m1, m2, m3, v``: shape (d,); ``v_max``: AMSGrad's running maximum
    of v, shape (d,) (zero without AMSGrad). ``response``: shape (3,), the m-chain's
    response to a constant 1 (used by ``debias="exact"``)."""

    step: int
    count: int
    m1: np.ndarray
    m2: np.ndarray
    m3: np.ndarray
    v: np.ndarray
    v_max: np.ndarray
    response: np.ndarray


class FAMEFullState(NamedTuple):
    """Full FAME. ``m1..m3`` and ``v1..v3``: shape (d,). ``response``: shape (6,), the
    m-chain's then the v-chain's response to a constant 1. ``v_clipped``: how many
    elements the ``max(v_tema, 0)`` guard has clipped so far."""

    step: int
    count: int
    m1: np.ndarray
    m2: np.ndarray
    m3: np.ndarray
    v1: np.ndarray
    v2: np.ndarray
    v3: np.ndarray
    response: np.ndarray
    v_clipped: int


@kernel
def official_m_correction(response, b1, b3, b4, exact_debias, t):
    """The official variant's first-moment correction c_t: ``1 - b1**t``, or (exact
    debiasing) the TEMA of the chain run on a constant 1, whose state ``response`` (3,)
    is advanced in place."""
    if exact_debias:
        response[0] = ema_step(response[0], 1.0, b1)
        response[1] = ema_step(response[1], response[0], b3)
        response[2] = ema_step(response[2], response[1], b4)
        return tema_combine(response[0], response[1], response[2])
    return 1.0 - b1 ** t


@kernel
def fame_official_kernel(w, m1, m2, m3, v, response, g, lr, b1, b2, b3, b4, eps,
                         weight_decay, maximize, exact_debias, t):
    """One official-FAME step in place (``t`` >= 1 as a float)."""
    step_size = lr / official_m_correction(response, b1, b3, b4, exact_debias, t)
    v_correction_sqrt = math.sqrt(1.0 - b2 ** t)
    for i in range(w.shape[0]):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]
        m1[i] = ema_step(m1[i], gi, b1)
        m2[i] = ema_step(m2[i], m1[i], b3)
        m3[i] = ema_step(m3[i], m2[i], b4)
        tema = tema_combine(m1[i], m2[i], m3[i])
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi
        denom = math.sqrt(v[i]) / v_correction_sqrt + eps
        w[i] = w[i] - step_size * (tema / denom)


@kernel
def fame_official_amsgrad_kernel(w, m1, m2, m3, v, v_max, response, g, lr, b1, b2, b3, b4,
                                 eps, weight_decay, maximize, exact_debias, t):
    """Official FAME with the authors' ``amsgrad=True``: the same step with the running
    maximum of v in the denominator (``torch.maximum(max_exp_avg_sq, exp_avg_sq)``, then
    divided by the bias correction, as torch's Adam). A loop of its own, as Adam's, so
    that neither loop branches on the option (LLVM then vectorises both)."""
    step_size = lr / official_m_correction(response, b1, b3, b4, exact_debias, t)
    v_correction_sqrt = math.sqrt(1.0 - b2 ** t)
    for i in range(w.shape[0]):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]
        m1[i] = ema_step(m1[i], gi, b1)
        m2[i] = ema_step(m2[i], m1[i], b3)
        m3[i] = ema_step(m3[i], m2[i], b4)
        tema = tema_combine(m1[i], m2[i], m3[i])
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi
        v_max[i] = max(v_max[i], v[i])
        denom = math.sqrt(v_max[i]) / v_correction_sqrt + eps
        w[i] = w[i] - step_size * (tema / denom)


@kernel
def fame_full_kernel(w, m1, m2, m3, v1, v2, v3, response, g, lr, b1, b2, b3, b4, b5,
                     eps, weight_decay, maximize, exact_debias, guard_adam, t):
    """One full-FAME step in place; returns how many elements the v guard changed."""
    if exact_debias:
        response[0] = ema_step(response[0], 1.0, b1)
        response[1] = ema_step(response[1], response[0], b3)
        response[2] = ema_step(response[2], response[1], b5)
        response[3] = ema_step(response[3], 1.0, b2)
        response[4] = ema_step(response[4], response[3], b4)
        response[5] = ema_step(response[5], response[4], b5)
        m_correction = tema_combine(response[0], response[1], response[2])
        v_correction = tema_combine(response[3], response[4], response[5])
    else:
        m_correction = 1.0 - b1 ** t
        v_correction = 1.0 - b2 ** t
    step_size = lr / m_correction
    v_correction_sqrt = math.sqrt(v_correction)
    adam_correction_sqrt = math.sqrt(1.0 - b2 ** t)
    clipped = 0
    for i in range(w.shape[0]):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]
        m1[i] = ema_step(m1[i], gi, b1)
        m2[i] = ema_step(m2[i], m1[i], b3)
        m3[i] = ema_step(m3[i], m2[i], b5)
        v1[i] = b2 * v1[i] + (1.0 - b2) * gi * gi  # Adam's order: ((1 - b2) g) g
        v2[i] = ema_step(v2[i], v1[i], b4)
        v3[i] = ema_step(v3[i], v2[i], b5)
        m_tema = tema_combine(m1[i], m2[i], m3[i])
        v_tema = tema_combine(v1[i], v2[i], v3[i])
        if guard_adam:
            d_tema = math.sqrt(max(v_tema, 0.0)) / v_correction_sqrt
            d_adam = math.sqrt(v1[i]) / adam_correction_sqrt
            if d_tema < d_adam:
                d_tema = d_adam
                clipped += 1
        else:
            if v_tema < 0.0:
                v_tema = 0.0
                clipped += 1
            d_tema = math.sqrt(v_tema) / v_correction_sqrt
        denom = d_tema + eps
        w[i] = w[i] - step_size * (m_tema / denom)
    return clipped


@dataclass(frozen=True)
class FAME(BaseOptimizer):
    """FAME (see the module docstring for both variants' exact updates).

    Parameters (decays in [0, 1); defaults are the official code's)
    ----------
    lr : >= 0 (float, per-step array or callable). Default 1e-3.
    beta1 : first EMA of the gradient (0.9).  beta2 : second moment (0.999).
    beta3, beta4 : the 2nd and 3rd EMA of the TEMA chain (0.5, 0.5; the paper's
        experiment configs use 0.3 and 0.7). In "full", beta4 is the v-chain's 2nd EMA.
    beta5 : "full" only, third EMA of both chains (0.5, our choice).
    eps : > 0 (1e-8).  weight_decay : >= 0, coupled L2.  maximize : bool.
    variant : "official" (default) or "full".
    debias : "adam" (``1 - b**t``) or "exact" (the chain's response to a constant);
        default "adam" for "official" (the authors' code), "exact" for "full".
    v_guard : "full" only: "adam" (default; the TEMA second moment never below Adam's)
        or "zero" (``max(v_tema, 0)`` only; can take steps up to ``lr * m / eps``).
    amsgrad : "official" only (the authors' flag): ``v_max <- max(v_max, v)`` and
        ``denom <- sqrt(v_max) / sqrt(1 - b2**t) + eps``, as torch's Adam.
    decoupled_weight_decay : bool; True applies ``weight_decay`` as AdamW does,
        ``w <- w * (1 - lr * weight_decay)`` before the moments (not in the authors' code;
        for users who put FAME where AdamW was).
    """

    lr: Schedule | float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    beta3: float = 0.5
    beta4: float = 0.5
    beta5: float = 0.5
    eps: float = 1e-8
    weight_decay: float = 0.0
    maximize: bool = False
    variant: str = "official"
    debias: str | None = None
    v_guard: str = "adam"
    amsgrad: bool = False
    decoupled_weight_decay: bool = False

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "lr", as_schedule("lr", self.lr))
        for name in ("beta1", "beta2", "beta3", "beta4", "beta5"):
            set_(self, name, _validate.real(name, getattr(self, name), lo=0.0, hi=1.0, hi_open=True))
        set_(self, "eps", _validate.real("eps", self.eps, lo=0.0, lo_open=True))
        set_(self, "weight_decay", _validate.real("weight_decay", self.weight_decay, lo=0.0))
        _validate.flag("maximize", self.maximize)
        _validate.choice("variant", self.variant, VARIANTS)
        if self.debias is None:
            set_(self, "debias", "adam" if self.variant == "official" else "exact")
        _validate.choice("debias", self.debias, DEBIAS)
        _validate.choice("v_guard", self.v_guard, V_GUARDS)
        set_(self, "amsgrad", _validate.flag("amsgrad", self.amsgrad))
        set_(self, "decoupled_weight_decay", _validate.flag("decoupled_weight_decay",
                                                            self.decoupled_weight_decay))
        if self.amsgrad and self.variant != "official":
            raise ValueError("amsgrad must be False with variant='full': AMSGrad is an option "
                             "of the authors' code, the 'official' variant")

    def _state_type(self):
        return FAMEState if self.variant == "official" else FAMEFullState

    def _state_lengths(self):
        return {"response": 3 if self.variant == "official" else 6}

    def init(self, w):
        """The state before the first step: every EMA buffer and response at zero, counters at 0."""
        w = _validate.vector("w", w)
        z = np.zeros_like
        if self.variant == "official":
            return FAMEState(0, 0, z(w), z(w), z(w), z(w), z(w), np.zeros(3))
        return FAMEFullState(0, 0, z(w), z(w), z(w), z(w), z(w), z(w), np.zeros(6), 0)

    def reset(self, state):
        """Fresh moments and bias corrections; keeps ``step`` (lr schedule) and the
        diagnostic ``v_clipped`` counter."""
        fresh = self.init(state.m1)._replace(step=state.step)
        if self.variant == "full":
            fresh = fresh._replace(v_clipped=state.v_clipped)
        return fresh

    def update(self, w, state, g):
        """``(w, state)`` after one step with gradient ``g``; inputs are not modified."""
        w = _validate.vector("w", w)
        g = _validate.vector("g", g, size=w.shape[0])
        self.check_state(state, w)
        lr = self.lr.at(state.step)
        exact = self.debias == "exact"
        t = float(state.count + 1)
        w_new = w.copy()
        wd = decoupled_decay(w_new, lr, self.weight_decay, self.decoupled_weight_decay)
        if self.variant == "official":
            m1, m2, m3, v, v_max, r = (a.copy() for a in (state.m1, state.m2, state.m3, state.v,
                                                          state.v_max, state.response))
            if self.amsgrad:
                fame_official_amsgrad_kernel(w_new, m1, m2, m3, v, v_max, r, g, lr, self.beta1,
                                             self.beta2, self.beta3, self.beta4, self.eps,
                                             wd, self.maximize, exact, t)
            else:
                fame_official_kernel(w_new, m1, m2, m3, v, r, g, lr, self.beta1, self.beta2,
                                     self.beta3, self.beta4, self.eps, wd,
                                     self.maximize, exact, t)
            return self._checked(w_new), FAMEState(state.step + 1, state.count + 1, m1, m2, m3,
                                                   v, v_max, r)
        arrays = [a.copy() for a in (state.m1, state.m2, state.m3, state.v1, state.v2,
                                     state.v3, state.response)]
        clipped = fame_full_kernel(w_new, *arrays, g, lr, self.beta1, self.beta2,
                                   self.beta3, self.beta4, self.beta5, self.eps,
                                   wd, self.maximize, exact,
                                   self.v_guard == "adam", t)
        return self._checked(w_new), FAMEFullState(state.step + 1, state.count + 1, *arrays,
                                    state.v_clipped + clipped)

    def _loop_args(self):
        hp = np.array([self.beta1, self.beta2, self.beta3, self.beta4, self.beta5,
                       self.eps, self.weight_decay])
        flags = np.array([VARIANTS.index(self.variant), self.maximize,
                          self.debias == "exact", self.v_guard == "adam", self.amsgrad,
                          self.decoupled_weight_decay], dtype=np.int64)
        return hp, flags
