"""What every optimizer in refimpl shares: the step protocol and the step record.

An optimizer is an immutable object holding validated hyperparameters, with pure
functions over an explicit, immutable state (a NamedTuple of arrays and counters):

``state = opt.init(w)``
    The state before the first step.

``w, state, info = opt.step(w, state, grad_fn, *, epoch_end=False)``
    One optimizer step. ``grad_fn(w) -> (loss, g)`` evaluates ONE mini-batch; the
    SAM family calls it twice (at ``w`` and at ``w + e``). ``epoch_end`` tells an
    averaging wrapper that this step closes an epoch (Switch EMA switches there);
    the other optimizers ignore it. Inputs are never modified; new arrays come back.

``w, state = opt.update(w, state, g)`` (base optimizers only)
    The same update with a gradient already computed: what SAM and StableSAM call
    with their descent gradient.

``state = opt.reset(state)``
    The state as after ``init`` (buffers cleared, bias corrections restarted), keeping
    the step count that indexes the learning-rate schedule. Switch EMA's
    ``on_switch="reset"`` uses it.

Wrappers hold the state of what they wrap (``state.inner``) and compose in one order:
``EMA/SwitchEMA( SAM/StableSAM( base ) )``, where the base is SGD, Adam or FAME.
(SAM over EMA would give the same iterates, since the EMA never feeds back into ``w``
except through a switch; refimpl keeps one canonical order so that every composition
has one jitted training loop.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._kernels import all_finite, l2_norm


class StepInfo(NamedTuple):
    """What one step observed: the mini-batch loss at the pre-step parameters, the
    global L2 norm of the gradient there, and how many times ``grad_fn`` was called."""

    loss: float
    grad_norm: float
    grad_evals: int


class BaseOptimizer:
    """Shared ``step`` of the gradient-based optimizers (SGD, Adam, FAME).

    Subclasses provide ``init``, ``update`` and ``reset``; ``step`` is always
    "evaluate the oracle once at w, then update".
    """

    def step(self, w, state, grad_fn, *, epoch_end: bool = False):
        """One step: ``loss, g = grad_fn(w)``, then :meth:`update` with ``g``."""
        w = _validate.vector("w", w)
        _validate.flag("epoch_end", epoch_end)
        loss, g = _validate.oracle_output(grad_fn(w), w.shape[0])
        w_new, state_new = self.update(w, state, g)
        return w_new, state_new, StepInfo(loss, l2_norm(g), 1)

    def _checked(self, w_new):
        """Raise instead of returning non-finite parameters (an overflowing update)."""
        if not all_finite(w_new):
            raise FloatingPointError(
                f"{type(self).__name__} produced non-finite parameters (the run has "
                "diverged; is the learning rate too large?)"
            )
        return w_new

    def _check_state(self, state, cls, w):
        """Reject a state of the wrong optimizer or size, before any kernel runs."""
        if not isinstance(state, cls):
            raise TypeError(
                f"state must be a {cls.__name__} (from {type(self).__name__}.init), "
                f"got {type(state).__name__}"
            )
        for name, value in zip(state._fields, state):
            if isinstance(value, np.ndarray) and value.ndim == 1 and name != "response":
                if value.shape[0] != w.shape[0]:
                    raise ValueError(
                        f"state.{name} has length {value.shape[0]} but w has length "
                        f"{w.shape[0]}: the state belongs to another problem"
                    )


def check_wrappable(name: str, inner, allowed: tuple, hint: str):
    """Check that a wrapper's ``inner`` optimizer is of an allowed class."""
    if not isinstance(inner, allowed):
        names = " or ".join(cls.__name__ for cls in allowed)
        raise TypeError(f"{name} must be a {names} optimizer, got {type(inner).__name__}. {hint}")
    return inner
