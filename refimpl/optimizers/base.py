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

    def check_state(self, state, w, path: str = "state") -> None:
        """Check a state against this optimizer and ``w`` before any kernel runs (see
        :func:`check_state`)."""
        check_state(type(self).__name__, state, self._state_type(), w, path,
                    lengths=self._state_lengths())

    def _state_lengths(self) -> dict:
        """Buffers whose length is their own (not ``len(w)``): name -> length."""
        return {}


#: the largest value a state's counter may hold: kernels turn counts into float64
#: exponents and indices, exact below 2**53
MAX_COUNT = 2 ** 53

#: state fields that count steps, epochs or events: integers in [0, MAX_COUNT]
COUNTERS = ("step", "count", "epoch", "v_clipped")



def check_state(owner: str, state, cls, w, path: str = "state", *, lengths=None) -> None:
    """Check a state (from ``owner.init``, possibly edited by hand) before any kernel runs.

    One rule for every optimizer, so that no kernel ever reads past an array, truncates
    an integer buffer or indexes a schedule with a negative step:

    * ``state`` is exactly a ``cls`` (a NamedTuple from ``owner.init``);
    * a counter (``step``, ``count``, ``epoch``, ``v_clipped``) is an int (not a bool) in
      [0, 2**53];
    * ``decay_product`` is a real in [0, 1];
    * ``inner`` is left to the wrapped optimizer (wrappers check it next, with
      ``path + ".inner"``);
    * every other field is a buffer: a plain float64 numpy array (no list, no masked
      array, no float32 or int64), 1-D, C-contiguous, with ``len(w)`` entries (or
      ``lengths[name]``, for a buffer of its own size such as FAME's ``response``),
      and finite: a NaN in a buffer the configuration never reads (SGD's with
      momentum 0) would otherwise be carried along silently.

    Raises TypeError or ValueError naming ``state.<field>`` and the allowed range.
    """
    if type(state) is not cls:
        raise TypeError(f"{path} must be a {cls.__name__} (from {owner}.init), "
                        f"got {type(state).__name__}")
    d = w.shape[0]
    for name, value in zip(state._fields, state):
        where = f"{path}.{name}"
        if name in COUNTERS:
            _validate.integer(where, value, lo=0, hi=MAX_COUNT)
        elif name == "decay_product":
            _validate.real(where, value, lo=0.0, hi=1.0)
        elif name == "inner":
            continue
        else:
            size = (lengths or {}).get(name, d)
            _validate.buffer(where, value)
            if value.shape[0] != size:
                what = "the length of w" if name not in (lengths or {}) else f"from {owner}.init"
                raise ValueError(f"{where} must have length {size} ({what}), got "
                                 f"{value.shape[0]}: the state belongs to another problem or "
                                 "was edited")
            if not all_finite(value):  # one jitted pass, no temporary array
                raise ValueError(f"{where} must be finite (found nan or inf)")


class Averager:
    """What the averaging wrappers (EMA, SwitchEMA, SWA, Lookahead) share: they are the
    outermost layer, hold the wrapped optimizer's state in ``state.inner``, and are never
    reset. Subclasses define ``_state_type``."""

    def reset(self, state):
        """Not available: an averager is the outermost layer, so nothing ever resets it (raises TypeError)."""
        raise TypeError(f"{type(self).__name__} cannot be wrapped, so it is never reset")

    def check_state(self, state, w, path: str = "state") -> None:
        """Check a state and the wrapped optimizer's (``state.inner``) against ``w``
        before any kernel runs (:func:`refimpl.optimizers.base.check_state`)."""
        check_state(type(self).__name__, state, self._state_type(), w, path)
        self.inner.check_state(state.inner, w, f"{path}.inner")

    def _inner_step(self, w, state, grad_fn, epoch_end):
        """Validate ``w`` and ``epoch_end``, check the state, and take the wrapped
        optimizer's step: ``(w_new, inner_state, info)``."""
        w = _validate.vector("w", w)
        _validate.flag("epoch_end", epoch_end)
        self.check_state(state, w)
        return self.inner.step(w, state.inner, grad_fn)


def check_wrappable(name: str, inner, allowed: tuple, hint: str):
    """Check that a wrapper's ``inner`` optimizer is of an allowed class."""
    if not isinstance(inner, allowed):
        names = " or ".join(cls.__name__ for cls in allowed)
        raise TypeError(f"{name} must be a {names} optimizer, got {type(inner).__name__}. {hint}")
    return inner
