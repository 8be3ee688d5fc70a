r"""Adam (Kingma and Ba 2015, Algorithm 1) in the order of operations of
``torch.optim.Adam``, with its two options: AMSGrad and decoupled weight decay (AdamW,
Loshchilov and Hutter 2019). FAME reduces to it (proofs/sources.md#fame), and the Adam
branch of the scaling rules (proofs/sources.md#ema-scaling-rule) applies to it.

Per step, with ``t`` counted from 1 since init or the last reset (torch/optim/adam.py,
``_single_tensor_adam``, torch 2.13)::

    g <- -g                         if maximize
    w <- w * (1 - lr * weight_decay)   if decoupled_weight_decay   (AdamW; not negated)
    g <- g + weight_decay * w          otherwise                   (coupled L2)
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g * g
    denom <- sqrt(v) / sqrt(1 - beta2**t) + eps                        amsgrad=False
    v_max <- max(v_max, v);               denom <- sqrt(v_max) / sqrt(1 - beta2**t) + eps
                                                    amsgrad=True, amsgrad_max="raw" (torch)
    v_max <- max(v_max, v / (1 - beta2**t)); denom <- sqrt(v_max) + eps
                                               amsgrad=True, amsgrad_max="debiased" (optax)
    w <- w - (lr / (1 - beta1**t)) * (m / denom)

The two AMSGrad forms are different algorithms, not two roundings of one: torch keeps
the largest RAW second moment and divides it by the current bias correction, optax
(``scale_by_amsgrad``, ``bias_correction_nu=True``, the default) keeps the largest
DEBIASED one. While ``v / (1 - beta2**t)`` has not decreased they agree; after a large
gradient followed by small ones they do not (tests/test_adam_variants.py shows a case). Before
``v`` ever decreases, torch's AMSGrad is Adam.

(PyTorch writes the first moment as ``m.lerp_(g, 1 - beta1)``, which can differ from
``beta1 * m + (1 - beta1) * g`` in the last bit; refimpl uses the textbook form. optax's
AdamW adds ``weight_decay * w`` to Adam's direction before scaling by ``lr``,
``w - lr * (d + wd * w)``: the same update, rounded differently.)

In mathematical notation ($\beta_1, \beta_2$ the decays, $\epsilon$ the guard, $\lambda$
the weight decay, coupled: $g_t \leftarrow g_t + \lambda w_{t-1}$):

$$m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2$$

$$w_t = (1 - \eta_t \lambda_{\mathrm{dec}})\, w_{t-1} - \frac{\eta_t}{1 - \beta_1^t} \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}$$

with $\lambda_{\mathrm{dec}} = \lambda$ for AdamW and 0 otherwise, and $v_t$ in the
denominator replaced by $\max_{s \le t} v_s$ (torch's AMSGrad) or the denominator by
$\sqrt{\max_{s \le t} v_s / (1 - \beta_2^s)} + \epsilon$ (optax's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl._kernels import decoupled_decay
from refimpl.optimizers.base import BaseOptimizer
from refimpl.schedules import Schedule, as_schedule

AMSGRAD_MAX = ("raw", "debiased")
NO_AMSGRAD, AMSGRAD_RAW, AMSGRAD_DEBIASED = 0, 1, 2


class AdamState(NamedTuple):
    """``step`` indexes the lr schedule; ``count`` (steps since init/reset) gives the
    bias-correction exponent ``t = count + 1``; ``m``, ``v``, ``v_max``: shape (d,)
    (``v_max``, AMSGrad's running maximum, stays zero without AMSGrad)."""

    step: int
    count: int
    m: np.ndarray
    v: np.ndarray
    v_max: np.ndarray


@kernel
def adam_kernel(w, m, v, v_max, g, lr, beta1, beta2, eps, weight_decay, maximize, t,
                decoupled, amsgrad):
    """One Adam step in place on ``w``, ``m``, ``v``, ``v_max`` (all (d,)); ``t`` >= 1 as
    a float; ``amsgrad`` is NO_AMSGRAD, AMSGRAD_RAW or AMSGRAD_DEBIASED.

    AdamW's decay is its own pass over ``w`` first, as torch does (``param.mul_`` before
    the moments); each variant then has its own loop, so that every loop is branch-free
    in its options and LLVM vectorises it (one loop with the three denominators in it
    ran 3.5 times slower at d = 1e7)."""
    weight_decay = decoupled_decay(w, lr, weight_decay, decoupled)  # 0 once decoupled
    if amsgrad == NO_AMSGRAD:
        adam_step_kernel(w, m, v, g, lr, beta1, beta2, eps, weight_decay, maximize, t)
    else:
        amsgrad_step_kernel(w, m, v, v_max, g, lr, beta1, beta2, eps, weight_decay, maximize,
                            t, amsgrad == AMSGRAD_DEBIASED)


@kernel
def adam_step_kernel(w, m, v, g, lr, beta1, beta2, eps, weight_decay, maximize, t):
    """Adam's moments and step with coupled L2 (``weight_decay`` added to g)."""
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


@kernel
def amsgrad_step_kernel(w, m, v, v_max, g, lr, beta1, beta2, eps, weight_decay, maximize, t,
                        debiased):
    """The same step with AMSGrad's running maximum: of the raw v (torch) or of the
    debiased v / (1 - beta2**t) (optax, ``debiased``)."""
    step_size = lr / (1.0 - beta1 ** t)
    bias2 = 1.0 - beta2 ** t
    bias2_sqrt = math.sqrt(bias2)
    for i in range(w.shape[0]):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * w[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * gi
        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi
        if debiased:
            v_max[i] = max(v_max[i], v[i] / bias2)
            denom = math.sqrt(v_max[i]) + eps
        else:
            v_max[i] = max(v_max[i], v[i])
            denom = math.sqrt(v_max[i]) / bias2_sqrt + eps
        w[i] = w[i] - step_size * (m[i] / denom)


@dataclass(frozen=True)
class Adam(BaseOptimizer):
    """Adam. ``lr`` >= 0 (float, per-step array or callable); ``beta1``, ``beta2`` in
    [0, 1); ``eps`` > 0; ``weight_decay`` >= 0, coupled L2 unless
    ``decoupled_weight_decay`` (then AdamW, as torch's flag of the same name);
    ``amsgrad`` (bool) with ``amsgrad_max`` "raw" (torch, the FAME authors' code) or
    "debiased" (optax)."""

    lr: Schedule | float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    maximize: bool = False
    decoupled_weight_decay: bool = False
    amsgrad: bool = False
    amsgrad_max: str = "raw"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "lr", as_schedule("lr", self.lr))
        for name in ("beta1", "beta2"):
            set_(self, name, _validate.real(name, getattr(self, name), lo=0.0, hi=1.0, hi_open=True))
        set_(self, "eps", _validate.real("eps", self.eps, lo=0.0, lo_open=True))
        set_(self, "weight_decay", _validate.real("weight_decay", self.weight_decay, lo=0.0))
        for name in ("maximize", "decoupled_weight_decay", "amsgrad"):
            set_(self, name, _validate.flag(name, getattr(self, name)))
        _validate.choice("amsgrad_max", self.amsgrad_max, AMSGRAD_MAX)

    def _state_type(self):
        return AdamState

    def init(self, w) -> AdamState:
        """The state before the first step: zero moments, counters at 0 (``w`` is validated)."""
        w = _validate.vector("w", w)
        return AdamState(0, 0, np.zeros_like(w), np.zeros_like(w), np.zeros_like(w))

    def reset(self, state: AdamState) -> AdamState:
        """Zero moments (and AMSGrad maximum) and a restarted bias correction
        (``count = 0``); keeps ``step``, which indexes the lr schedule."""
        z = np.zeros_like
        return AdamState(state.step, 0, z(state.m), z(state.v), z(state.v_max))

    def _amsgrad_code(self) -> int:
        if not self.amsgrad:
            return NO_AMSGRAD
        return AMSGRAD_RAW if self.amsgrad_max == "raw" else AMSGRAD_DEBIASED

    def update(self, w, state: AdamState, g):
        """``(w, state)`` after one step with gradient ``g``; inputs are not modified."""
        w = _validate.vector("w", w)
        g = _validate.vector("g", g, size=w.shape[0])
        self.check_state(state, w)
        lr = self.lr.at(state.step)
        w_new, m, v, v_max = w.copy(), state.m.copy(), state.v.copy(), state.v_max.copy()
        adam_kernel(w_new, m, v, v_max, g, lr, self.beta1, self.beta2, self.eps,
                    self.weight_decay, self.maximize, float(state.count + 1),
                    self.decoupled_weight_decay, self._amsgrad_code())
        return self._checked(w_new), AdamState(state.step + 1, state.count + 1, m, v, v_max)

    def _loop_args(self):
        hp = np.array([self.beta1, self.beta2, self.eps, self.weight_decay])
        flags = np.array([self.maximize, self.decoupled_weight_decay, self._amsgrad_code()],
                         dtype=np.int64)
        return hp, flags


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (Loshchilov and Hutter 2019): :class:`Adam` with decoupled weight decay,
    ``w <- w * (1 - lr * weight_decay)`` before the moments, and torch.optim.AdamW's
    default ``weight_decay=1e-2`` (optax.adamw's default is 1e-4). With
    ``weight_decay=0`` it is Adam. ``decoupled_weight_decay`` must stay True (use
    :class:`Adam` for coupled L2)."""

    weight_decay: float = 1e-2
    decoupled_weight_decay: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.decoupled_weight_decay:
            raise ValueError("decoupled_weight_decay must be True for AdamW (it is what makes "
                             "AdamW); use Adam(weight_decay=...) for coupled L2")
