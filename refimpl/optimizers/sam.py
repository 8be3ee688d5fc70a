r"""Sharpness-aware minimization: SAM, USAM, ASAM and Stable SAM. Sources:
proofs/sources.md#sam-usam-and-asam and proofs/sources.md#stablesam.

SAM (Foret et al. 2021) and ASAM (Kwon et al. 2021, in davda54/sam's form), per step on
ONE mini-batch, two gradient evaluations::

    g     = grad(w)
    e     = rho * g / (||g|| + eps)                      ascent="normalized"   (SAM)
          = rho * g                                      ascent="unnormalized" (USAM)
          = rho * w**2 * g / (|| |w| * g || + eps)       ascent="adaptive"     (ASAM)
          = rho * w**2 * g                               ascent="adaptive_unnormalized"
    g_adv = grad(w + e)                                  (same mini-batch)
    w, base_state = base.update(w, base_state, g_adv)    (the step is taken AT w)

``"adaptive_unnormalized"`` is the adaptive USAM of the StableSAM authors' code
(``usam.py``, ``USAM(adaptive=True)``: ``e_w = p**2 * p.grad * rho``, cltan023/stablesam2024
at 57264e7): adaptive but not normalized. With every ``|w_i| = 1`` it is USAM.

Stable SAM (Tan et al. 2024, "Stabilizing Sharpness-aware Minimization Through A Simple
Renormalization Strategy") rescales the descent gradient before the base step::

    g_ssam = g_adv * (||g|| / (||g_adv|| + eps))
    with ascent="adaptive" or "adaptive_unnormalized" (the official code's sam.py and
    usam.py): || |w| * g || / (|| |w + e| * g_adv || + eps)

In mathematical notation (normalized ascent; USAM drops the division, ASAM multiplies
by $w^2$ and takes the norm of $|w| \odot g$):

$$e_t = \rho \frac{g}{\lVert g \rVert + \epsilon}, \qquad g_{\mathrm{adv}} = \nabla L_t(w + e_t), \qquad g_{\mathrm{SSAM}} = g_{\mathrm{adv}} \frac{\lVert g \rVert}{\lVert g_{\mathrm{adv}} \rVert + \epsilon}$$

Norms are global L2 norms over all parameters, summed in the fixed 8-lane order of
refimpl._kernels. Weight decay
belongs to the base optimizer: it is added at ``w`` after the rescale and is not rescaled.

Edge case, named so that it is never a silent NaN: when a denominator is exactly zero
(only possible with ``eps=0`` and a zero gradient, or one whose squares all underflow to
zero, every |g_i| below about 1.5e-162) the scale factor is taken as 0, so ``e = 0``
(SAM) and ``g_ssam = 0`` (StableSAM). optax's SAM, which has no eps, would return NaN
there. The norms are plain sums of squares, so they overflow once the sum exceeds
~1.8e308 (|g| above about 1e154): the normalized and adaptive ascents are then 0
(rho / inf), and StableSAM raises FloatingPointError (inf / inf), as the loop does.

``StableSAM`` is named so in code because "SSAM" also names Sparse SAM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl._kernels import add_into, all_finite, l2_norm, weighted_l2_norm
from refimpl.optimizers.adam import Adam
from refimpl.optimizers.base import StepInfo, check_state, check_wrappable
from refimpl.optimizers.fame import FAME
from refimpl.optimizers.sgd import SGD

ASCENTS = ("normalized", "unnormalized", "adaptive", "adaptive_unnormalized")
NORMALIZED, UNNORMALIZED, ADAPTIVE, ADAPTIVE_UNNORMALIZED = 0, 1, 2, 3


class SAMState(NamedTuple):
    """SAM keeps no state of its own: ``inner`` is the base optimizer's state."""

    inner: tuple


@kernel
def ascent_kernel(w, g, rho, eps, ascent, e):
    """Write the ascent step ``e`` (d,) for parameters ``w`` and gradient ``g``."""
    if ascent == UNNORMALIZED:
        for i in range(w.shape[0]):
            e[i] = rho * g[i]
        return
    if ascent == ADAPTIVE_UNNORMALIZED:  # the authors' (w * w) * g * rho, in that order
        for i in range(w.shape[0]):
            e[i] = w[i] * w[i] * g[i] * rho
        return
    if ascent == NORMALIZED:
        denominator = l2_norm(g) + eps
    else:
        denominator = weighted_l2_norm(w, g) + eps
    scale = rho / denominator if denominator != 0.0 else 0.0
    for i in range(w.shape[0]):
        if ascent == NORMALIZED:
            e[i] = g[i] * scale
        else:
            e[i] = w[i] * w[i] * g[i] * scale


@kernel
def stable_rescale_kernel(w, w_adv, g, g_adv, eps, adaptive, out):
    """Write ``g_ssam = g_adv * (||g|| / (||g_adv|| + eps))`` into ``out`` (d,)."""
    if adaptive:
        numerator = weighted_l2_norm(w, g)
        denominator = weighted_l2_norm(w_adv, g_adv) + eps
    else:
        numerator = l2_norm(g)
        denominator = l2_norm(g_adv) + eps
    scale = numerator / denominator if denominator != 0.0 else 0.0
    for i in range(g_adv.shape[0]):
        out[i] = g_adv[i] * scale


@dataclass(frozen=True)
class SAM:
    """SAM / USAM / ASAM over a base optimizer (SGD, Adam or FAME).

    Parameters
    ----------
    base : the optimizer that takes the step at ``w`` with the adversarial gradient.
    rho : ascent radius >= 0 (0 gives back the base optimizer, with two evaluations).
    ascent : "normalized" (SAM, default), "unnormalized" (USAM), "adaptive" (ASAM,
        normalized) or "adaptive_unnormalized" (the StableSAM authors' adaptive USAM).
    eps : >= 0 added to the norm in the denominator (1e-12 as in the PyTorch codes;
        optax and the official JAX code use 0).
    """

    base: object
    rho: float = 0.05
    ascent: str = "normalized"
    eps: float = 1e-12

    def __post_init__(self):
        check_wrappable("base", self.base, (SGD, Adam, FAME),
                        "SAM wraps a base optimizer; put EMA/SwitchEMA outside: EMA(SAM(SGD(...))).")
        object.__setattr__(self, "rho", _validate.real("rho", self.rho, lo=0.0))
        object.__setattr__(self, "eps", _validate.real("eps", self.eps, lo=0.0))
        _validate.choice("ascent", self.ascent, ASCENTS)

    def init(self, w) -> SAMState:
        """The base optimizer's initial state, wrapped (SAM keeps no state of its own)."""
        return SAMState(self.base.init(w))

    def check_state(self, state, w, path: str = "state") -> None:
        """Check a state and its base optimizer's state (``state.inner``) against ``w``
        before any kernel runs (:func:`refimpl.optimizers.base.check_state`)."""
        check_state(type(self).__name__, state, SAMState, w, path)
        self.base.check_state(state.inner, w, f"{path}.inner")

    def reset(self, state: SAMState) -> SAMState:
        """The base optimizer's reset, wrapped."""
        return SAMState(self.base.reset(state.inner))

    def step(self, w, state: SAMState, grad_fn, *, epoch_end: bool = False):
        """One SAM step: two oracle calls on the same mini-batch, base step at ``w``."""
        w = _validate.vector("w", w)
        _validate.flag("epoch_end", epoch_end)
        self.check_state(state, w)
        d = w.shape[0]
        loss, g = _validate.oracle_output(grad_fn(w), d)
        e = np.empty(d)
        ascent_kernel(w, g, self.rho, self.eps, ASCENTS.index(self.ascent), e)
        w_adv = np.empty(d)
        add_into(w, e, w_adv)
        if not all_finite(w_adv):
            # e overflowed (USAM's rho g or the adaptive rho w^2 g on a diverging run): the
            # loop reports divergence here, so does the step API (not the oracle's
            # "w must be finite", which would blame the caller's w)
            raise FloatingPointError(
                f"{type(self).__name__}'s ascent point w + e is not finite (the run has "
                "diverged)")
        _, g_adv = _validate.oracle_output(grad_fn(w_adv), d)
        g_descent = self._descent_gradient(w, w_adv, g, g_adv)
        w_new, inner = self.base.update(w, state.inner, g_descent)
        return w_new, SAMState(inner), StepInfo(loss, l2_norm(g), 2)

    def _descent_gradient(self, w, w_adv, g, g_adv):
        return g_adv


@dataclass(frozen=True)
class StableSAM(SAM):
    """Stable SAM: SAM whose descent gradient is rescaled to the ascent gradient's norm.

    Same parameters as :class:`SAM`, but ``ascent`` defaults to "unnormalized", the
    USAM-based version the authors' repository calls the one used in the paper.
    With ``ascent="adaptive"`` or ``"adaptive_unnormalized"`` both norms are the ASAM
    norms, the second one taken at ``w + e`` as in the official code.
    """

    ascent: str = "unnormalized"

    def _descent_gradient(self, w, w_adv, g, g_adv):
        out = np.empty_like(g_adv)
        stable_rescale_kernel(w, w_adv, g, g_adv, self.eps, self.ascent.startswith("adaptive"),
                              out)
        if not all_finite(out):
            # Both norms overflowed (sum of squares > ~1.8e308): inf / inf. The training
            # loop reports this as divergence; so does the step API.
            raise FloatingPointError(
                "StableSAM's rescaled gradient is not finite: the gradient norms overflowed "
                "(the run has diverged)")
        return out
