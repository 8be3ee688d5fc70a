r"""SWA and Lookahead: the weight averagers Switch EMA is measured against, as wrappers
over any optimizer beside EMA and SwitchEMA. Sources: proofs/sources.md#swa-and-lookahead.

SWA (Izmailov, Podoprikhin, Garipov, Vetrov and Wilson, "Averaging Weights Leads to Wider
Optima and Better Generalization", UAI 2018), as ``torch.optim.swa_utils.AveragedModel``
computes it with its default (equal-weight) average: after the wrapped optimizer's step
``n``, if a snapshot is due, with ``k`` the snapshots taken so far::

    average <- w                                   if k == 0 (the first snapshot copies)
    average <- average + (w - average) / (k + 1)   otherwise (torch's get_swa_avg_fn)

so the average is the mean of the snapshots. A snapshot is due at the end of every
``swa_every``-th epoch (``swa_unit="epoch"``) or after every ``swa_every``-th step
(``swa_unit="step"``) once that count exceeds ``swa_start``. torch's recipe
``if epoch > swa_start: swa_model.update_parameters(model)`` at the end of each epoch
(``epoch`` counted from 0) is ``swa_unit="epoch", swa_every=1, swa_start=swa_start + 1``.
Before the first snapshot the average is ``w0`` (AveragedModel holds the model's copy
from its construction). SWA never feeds back into ``w``.

In mathematical notation, with snapshots $w_{n_1}, \dots, w_{n_K}$:
$\bar w = \frac{1}{K} \sum_{j=1}^{K} w_{n_j}$.

Lookahead (Zhang, Lucas, Hinton and Ba, "Lookahead Optimizer: k steps forward, 1 step
back", NeurIPS 2019): slow weights ``slow`` that every ``k`` steps of the wrapped ("fast")
optimizer move a fraction ``alpha`` toward the fast weights, which then restart from
them. After step ``n``, if ``n % k == 0``::

    slow <- slow + alpha * (w - slow)      (timm's ``slow.add_(fast - slow, alpha=alpha)``)
    w    <- slow

``start="copy"`` (the paper's $\phi_0 = \theta_0$): ``slow = w0`` at init.
``start="first"`` (timm's ``Lookahead``, which creates the slow buffer from the fast
weights at the first sync): the first sync sets ``slow = w`` and leaves ``w`` as it is.
The fast optimizer's state (momentum, Adam moments) is kept across a sync
(``on_sync="keep"``, timm) or re-initialised (``on_sync="reset"``); the learning-rate
schedule keeps counting either way.

Lookahead is Switch EMA with a different average: in exact arithmetic Lookahead(k, alpha)
is ``SwitchEMA(decay=1 - alpha, update_every=k, switch_unit="step", switch_every=k)``
(the EMA updated and copied back only every k steps); with k = 1 it is SEMA switching
every step. In floating point the two forms round differently (``slow + alpha (w - slow)``
against ``decay ema + (1 - decay) w``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl.optimizers.adam import Adam
from refimpl.optimizers.base import Averager, check_wrappable
from refimpl.optimizers.fame import FAME
from refimpl.optimizers.sam import SAM
from refimpl.optimizers.sgd import SGD

SWA_UNITS = ("epoch", "step")
LOOKAHEAD_STARTS = ("copy", "first")
ON_SYNC = ("keep", "reset")
_WRAP_HINT = "SWA/Lookahead wrap a base optimizer or a SAM/StableSAM; averagers do not nest."


class SWAState(NamedTuple):
    """``step``: optimizer steps taken; ``epoch``: epochs completed; ``average``: the
    running mean, shape (d,) (``w0`` before the first snapshot); ``count``: snapshots
    averaged so far; ``inner``: the wrapped optimizer's state."""

    step: int
    epoch: int
    average: np.ndarray
    count: int
    inner: tuple


class LookaheadState(NamedTuple):
    """``step``: fast steps taken; ``count``: syncs so far; ``slow``: the slow weights,
    shape (d,); ``inner``: the fast optimizer's state."""

    step: int
    count: int
    slow: np.ndarray
    inner: tuple


@kernel
def swa_update_kernel(average, w, count):
    """The snapshot ``w`` into the mean of ``count`` earlier ones, in place."""
    if count == 0:
        for i in range(average.shape[0]):
            average[i] = w[i]
        return
    k1 = float(count + 1)
    for i in range(average.shape[0]):
        average[i] = average[i] + (w[i] - average[i]) / k1


@kernel
def swa_due(n, epoch, epoch_end, every, unit_is_step, start):
    """Whether SWA takes a snapshot after step ``n`` (``epoch``: epochs completed)."""
    if unit_is_step:
        return n % every == 0 and n > start
    return epoch_end and epoch % every == 0 and epoch > start


@kernel
def lookahead_sync_kernel(slow, w, alpha, copy):
    """``slow <- slow + alpha (w - slow)`` (or ``slow <- w`` when ``copy``), then
    ``w <- slow``; both in place."""
    for i in range(slow.shape[0]):
        if copy:
            slow[i] = w[i]
        else:
            slow[i] = slow[i] + alpha * (w[i] - slow[i])
        w[i] = slow[i]


@dataclass(frozen=True)
class SWA(Averager):
    """Stochastic weight averaging over any optimizer (see the module docstring).

    Parameters
    ----------
    inner : SGD, Adam, FAME, SAM or StableSAM.
    swa_every : int >= 1 (epochs or steps between snapshots).
    swa_unit : "epoch" (default, torch's recipe) or "step".
    swa_start : int >= 0; snapshots only once the epoch (step) count exceeds it.
    """

    inner: object
    swa_every: int = 1
    swa_unit: str = "epoch"
    swa_start: int = 0

    def __post_init__(self):
        check_wrappable("inner", self.inner, (SGD, Adam, FAME, SAM), _WRAP_HINT)
        _validate.integer("swa_every", self.swa_every, lo=1)
        _validate.choice("swa_unit", self.swa_unit, SWA_UNITS)
        _validate.integer("swa_start", self.swa_start, lo=0)

    def _state_type(self):
        return SWAState

    def init(self, w) -> SWAState:
        """The state before the first step: the average is a copy of ``w``, no snapshots."""
        w = _validate.vector("w", w)
        return SWAState(0, 0, w.copy(), 0, self.inner.init(w))

    def average(self, state: SWAState) -> np.ndarray:
        """The mean of the snapshots so far (``w0`` before the first), a new array."""
        if type(state) is not SWAState:
            raise TypeError(f"state must be an SWAState (from SWA.init), got "
                            f"{type(state).__name__}")
        return _validate.vector("state.average", state.average).copy()

    def snapshot_due(self, n: int, epoch: int, epoch_end: bool) -> bool:
        """Whether a snapshot is taken after step ``n`` with ``epoch`` epochs completed."""
        return bool(swa_due(n, epoch, epoch_end, self.swa_every, self.swa_unit == "step",
                            self.swa_start))

    def step(self, w, state: SWAState, grad_fn, *, epoch_end: bool = False):
        """The wrapped optimizer's step, then the snapshot if one is due."""
        w_new, inner, info = self._inner_step(w, state, grad_fn, epoch_end)
        n = state.step + 1
        epoch = state.epoch + 1 if epoch_end else state.epoch
        average, count = state.average.copy(), state.count
        if self.snapshot_due(n, epoch, epoch_end):
            swa_update_kernel(average, w_new, count)
            count += 1
        return w_new, SWAState(n, epoch, average, count, inner), info


@dataclass(frozen=True)
class Lookahead(Averager):
    """Lookahead over any optimizer (see the module docstring).

    Parameters
    ----------
    inner : SGD, Adam, FAME, SAM or StableSAM (the fast optimizer).
    k : int >= 1, fast steps between syncs (default 5; timm's default is 6).
    alpha : in (0, 1], the slow weights' step toward the fast ones (default 0.5, as timm).
        alpha = 1 gives the fast optimizer back (to rounding); 0 would freeze w at w0.
    start : "copy" (default, the paper: slow = w0) or "first" (timm: the first sync
        copies the fast weights and changes nothing).
    on_sync : "keep" (default, timm) or "reset" the fast optimizer's state at each sync.
    """

    inner: object
    k: int = 5
    alpha: float = 0.5
    start: str = "copy"
    on_sync: str = "keep"

    def __post_init__(self):
        check_wrappable("inner", self.inner, (SGD, Adam, FAME, SAM), _WRAP_HINT)
        _validate.integer("k", self.k, lo=1)
        object.__setattr__(self, "alpha", _validate.real("alpha", self.alpha, lo=0.0, hi=1.0,
                                                         lo_open=True))
        _validate.choice("start", self.start, LOOKAHEAD_STARTS)
        _validate.choice("on_sync", self.on_sync, ON_SYNC)

    def _state_type(self):
        return LookaheadState

    def init(self, w) -> LookaheadState:
        """The state before the first step: the slow weights are a copy of ``w``."""
        w = _validate.vector("w", w)
        return LookaheadState(0, 0, w.copy(), self.inner.init(w))

    def average(self, state: LookaheadState) -> np.ndarray:
        """The slow weights, a new array."""
        if type(state) is not LookaheadState:
            raise TypeError(f"state must be a LookaheadState (from Lookahead.init), got "
                            f"{type(state).__name__}")
        return _validate.vector("state.slow", state.slow).copy()

    def step(self, w, state: LookaheadState, grad_fn, *, epoch_end: bool = False):
        """A fast step, then (every k-th step) the sync of slow and fast weights."""
        w_new, inner, info = self._inner_step(w, state, grad_fn, epoch_end)
        n = state.step + 1
        slow, count = state.slow.copy(), state.count
        if n % self.k == 0:  # w_new is the inner step's own new array: synced in place
            lookahead_sync_kernel(slow, w_new, self.alpha, self.start == "first" and count == 0)
            count += 1
            if self.on_sync == "reset":
                inner = self.inner.reset(inner)
        return w_new, LookaheadState(n, count, slow, inner), info
