r"""Model EMA and Switch EMA (SEMA) as wrappers over any optimizer. Sources:
proofs/sources.md#model-ema and proofs/sources.md#switch-ema.

Model EMA (Polyak averaging with exponential weights): after the wrapped optimizer's
step number ``n`` (counted from 1), if ``n % update_every == 0``::

    ema <- decay * ema + (1 - decay) * w

In mathematical notation, with $\rho$ the decay: $\bar w_n = \rho \bar w_{n-1} + (1 - \rho) w_n$.

refimpl calls the EMA coefficient ``decay`` (the paper's rho) everywhere. Beware the
peers: openmixup's ``momentum`` is this decay, mmcv/mmdet's ``momentum`` is 1 - decay.

Start (the peers disagree):

* ``start="copy"`` (default; timm ModelEmaV2, ModelEmaV3 without ``step``): ``ema = w0``
  at init.
* ``start="first"`` (torch ``AveragedModel`` as documented, timm ModelEmaV3 with
  ``step=`` passed and no warm-up): ``ema = w0`` at init, but the first EMA update copies
  ``w``: the decay is 0 after every step ``n <= max(update_every, update_after_step + 1)``.
  With ``update_every = 1`` and ``update_after_step = 0`` this is torch's "the first
  ``update_parameters`` copies the model" (so the average after step 1 is w1, not w0);
  timm's V3 returns decay 0 while ``n <= update_after_step + 1``. With those values and
  no warm-up it equals ``start="copy"`` started one step later, from w1.
* ``start="zeros"`` (optax): ``ema = 0`` at init and the reported average is exactly
  debiased, ``ema / (1 - prod(decays used so far))``: the filter's response to a
  constant 1, so a constant ``w`` is reproduced exactly at every step. Before the first
  update nothing has been averaged and the reported average is the zero vector.

Decay warm-up, a pure function of ``n`` (``warmup=``):

* ``"timm"`` (timm / ema-pytorch): ``s = max(0, n - update_after_step - 1)``; the decay
  is 0 if ``s <= 0``, else ``clamp(1 - (1 + s / warmup_gamma) ** -warmup_power,
  min_decay, decay)``. Defaults gamma 1, power 2/3. The first update copies ``w``.
* ``"constant"``, ``"linear"``, ``"exp"`` (openmixup, the SEMA authors' code), with
  ``i = n - 1`` (openmixup's 0-based iteration), ratio ``r = warmup_ratio`` and
  ``T = warmup_steps``, for ``i <= T``: ``r * decay``;
  ``(1 - (1 - i / T) * (1 - r)) * decay``; ``r ** (1 - i / T) * decay``. After: decay.

Switch EMA (Li et al., "Switch EMA: A Free Lunch for Better Flatness and Sharpness"):
the same EMA plus a switch ``w <- average`` at the end of every ``switch_every``-th
epoch (``switch_unit="epoch"``, signalled by ``step(..., epoch_end=True)``) or after
every ``switch_every``-th step (``switch_unit="step"``), once the count exceeds
``switch_start``. With ``start="zeros"`` a switch that falls before the first EMA update
(possible with ``update_every > 1``) is skipped: nothing has been averaged yet. The EMA
buffer is never reset. The wrapped optimizer's state
(momentum, Adam moments) is kept by default (``on_switch="keep"``) or re-initialised
(``on_switch="reset"``, as Lookahead-style designs do); the learning-rate schedule
keeps counting either way.

Note on the authors' code: the openmixup ``SwitchEMAHook`` switches when
``not every_n_iters(switch_interval)``, the inverse of its documentation (with interval
1 it never switches), while their detection hook switches when
``(epoch + 1) % interval == 0``. refimpl implements the documented intent: switch at
the END of every ``switch_every``-th epoch.
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

STARTS = ("copy", "zeros", "first")
WARMUPS = (None, "timm", "constant", "linear", "exp")
NO_WARMUP, TIMM, CONSTANT, LINEAR, EXP = 0, 1, 2, 3, 4
SWITCH_UNITS = ("epoch", "step")
ON_SWITCH = ("keep", "reset")


class EMAState(NamedTuple):
    """``step``: optimizer steps taken (n after the step is ``step + 1``); ``epoch``:
    epochs completed (``epoch_end`` flags seen); ``ema``: the raw buffer, shape (d,);
    ``decay_product``: product of the decays used so far (for zero-start debiasing);
    ``inner``: the wrapped optimizer's state."""

    step: int
    epoch: int
    ema: np.ndarray
    decay_product: float
    inner: tuple


@kernel
def ema_update_kernel(ema, w, decay):
    """``ema <- decay * ema + (1 - decay) * w`` in place; ``ema``, ``w``: (d,)."""
    for i in range(ema.shape[0]):
        ema[i] = decay * ema[i] + (1.0 - decay) * w[i]


@kernel
def debias_kernel(ema, decay_product, out):
    """``out = ema / (1 - decay_product)``; before any update (product 1) ``out = ema``."""
    correction = 1.0 - decay_product
    for i in range(ema.shape[0]):
        out[i] = ema[i] / correction if correction != 0.0 else ema[i]


@kernel
def ema_decay_kernel(n, decay, warmup, update_after_step, gamma, power, min_decay,
                     ratio, warmup_steps, copy_until):
    """The decay used at optimizer step ``n`` (from 1) under the chosen warm-up; 0 while
    ``n <= copy_until`` (``start="first"``; pass 0 otherwise)."""
    if n <= copy_until:
        return 0.0
    if warmup == NO_WARMUP:
        return decay
    if warmup == TIMM:
        s = max(0, n - update_after_step - 1)
        if s <= 0:
            return 0.0
        value = 1.0 - (1.0 + s / gamma) ** (-power)
        return min(max(value, min_decay), decay)
    i = n - 1
    if i > warmup_steps:
        return decay
    if warmup == CONSTANT:
        return ratio * decay
    if warmup == LINEAR:
        k = (1.0 - i / warmup_steps) * (1.0 - ratio)
        return (1.0 - k) * decay
    return ratio ** (1.0 - i / warmup_steps) * decay


@kernel
def switch_due(n, epoch, epoch_end, every, unit_is_step, start, zeros_start, update_every):
    """Whether Switch EMA copies the average into ``w`` after step ``n``.

    A zero-started EMA has averaged nothing before its first update (at
    ``n = update_every``): there is no average to switch to, so no switch is due."""
    if zeros_start and n < update_every:
        return False
    if unit_is_step:
        return n % every == 0 and n > start
    return epoch_end and epoch % every == 0 and epoch > start


@dataclass(frozen=True)
class EMA(Averager):
    """Model EMA over any optimizer (see the module docstring for the exact rules).

    Parameters
    ----------
    inner : SGD, Adam, FAME, SAM or StableSAM.
    decay : in [0, 1); the paper's rho. Default 0.999.
    update_every : int >= 1; update after steps n with ``n % update_every == 0``.
    start : "copy" (default), "zeros" (exactly debiased) or "first" (the first update
        copies w; torch AveragedModel).
    warmup : None (default), "timm", "constant", "linear" or "exp".
    update_after_step : int >= 0 (timm; also with start="first").
    warmup_gamma > 0, warmup_power > 0 (timm; defaults 1 and 2/3).  min_decay in [0, decay] (timm).
    warmup_ratio : in (0, 1] (openmixup; default 0.9).  warmup_steps : int >= 1
        (openmixup, required with its warm-ups).
    """

    inner: object
    decay: float = 0.999
    update_every: int = 1
    start: str = "copy"
    warmup: str | None = None
    update_after_step: int = 0
    warmup_gamma: float = 1.0
    warmup_power: float = 2.0 / 3.0
    min_decay: float = 0.0
    warmup_ratio: float = 0.9
    warmup_steps: int = 0

    def __post_init__(self):
        set_ = object.__setattr__
        check_wrappable("inner", self.inner, (SGD, Adam, FAME, SAM),
                        "EMA/SwitchEMA wrap a base optimizer or a SAM/StableSAM; they do not nest.")
        set_(self, "decay", _validate.real("decay", self.decay, lo=0.0, hi=1.0, hi_open=True))
        _validate.integer("update_every", self.update_every, lo=1)
        _validate.choice("start", self.start, STARTS)
        if self.warmup is not None and (not isinstance(self.warmup, str)
                                        or self.warmup not in WARMUPS):
            raise ValueError(f"warmup must be one of {WARMUPS}, got {self.warmup!r}")
        _validate.integer("update_after_step", self.update_after_step, lo=0)
        set_(self, "warmup_gamma", _validate.real("warmup_gamma", self.warmup_gamma, lo=0.0, lo_open=True))
        set_(self, "warmup_power", _validate.real("warmup_power", self.warmup_power, lo=0.0, lo_open=True))
        set_(self, "min_decay", _validate.real("min_decay", self.min_decay, lo=0.0, hi=self.decay))
        set_(self, "warmup_ratio", _validate.real("warmup_ratio", self.warmup_ratio, lo=0.0, hi=1.0, lo_open=True))
        _validate.integer("warmup_steps", self.warmup_steps, lo=0)
        if self.warmup in ("constant", "linear", "exp") and self.warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1 with warmup={self.warmup!r}, "
                             f"got {self.warmup_steps}")

    # -- the EMA itself -------------------------------------------------------------

    def decay_at(self, n: int) -> float:
        """The decay used by the EMA update after optimizer step ``n`` (n >= 1)."""
        n = _validate.integer("n", n, lo=1)
        return ema_decay_kernel(n, self.decay, WARMUPS.index(self.warmup),
                                self.update_after_step, self.warmup_gamma, self.warmup_power,
                                self.min_decay, self.warmup_ratio, self.warmup_steps,
                                self.copy_until())

    def copy_until(self) -> int:
        """The last step ``n`` whose EMA update copies ``w`` (decay 0) because of
        ``start="first"``: ``max(update_every, update_after_step + 1)``, saturated at
        2**63 - 1 (the largest step count an int64 kernel argument holds, and the largest
        ``n`` any step can have, so the saturation changes no decay); 0 for the other
        starts."""
        if self.start != "first":
            return 0
        return min(max(self.update_every, self.update_after_step + 1), 2 ** 63 - 1)

    def init(self, w) -> EMAState:
        """The state before the first step: the average is ``w`` (start="copy" or
        "first") or zeros (start="zeros"), and the wrapped optimizer's own init."""
        w = _validate.vector("w", w)
        ema = np.zeros_like(w) if self.start == "zeros" else w.copy()
        return EMAState(0, 0, ema, 1.0, self.inner.init(w))

    def average(self, state: EMAState) -> np.ndarray:
        """The averaged parameters (debiased for ``start="zeros"``), a new array."""
        if type(state) is not EMAState:
            raise TypeError(f"state must be an EMAState (from {type(self).__name__}.init), "
                            f"got {type(state).__name__}")
        _validate.vector("state.ema", state.ema)
        _validate.real("state.decay_product", state.decay_product, lo=0.0, hi=1.0)
        if self.start != "zeros":
            return state.ema.copy()
        out = np.empty_like(state.ema)
        debias_kernel(state.ema, state.decay_product, out)
        return out

    def step(self, w, state: EMAState, grad_fn, *, epoch_end: bool = False):
        """The wrapped optimizer's step, then the EMA update (and the switch, for SEMA)."""
        w_new, inner, info = self._inner_step(w, state, grad_fn, epoch_end)
        n = state.step + 1
        epoch = state.epoch + 1 if epoch_end else state.epoch
        ema = state.ema.copy()
        product = state.decay_product
        if n % self.update_every == 0:
            decay = self.decay_at(n)
            ema_update_kernel(ema, w_new, decay)
            product = product * decay
        new_state = EMAState(n, epoch, ema, product, inner)
        if self._switch_due(n, epoch, epoch_end):
            w_new = self.average(new_state)
            if self.on_switch == "reset":
                new_state = new_state._replace(inner=self.inner.reset(inner))
        return w_new, new_state, info

    def _state_type(self):
        return EMAState

    def _switch_due(self, n, epoch, epoch_end) -> bool:
        return False


@dataclass(frozen=True)
class SwitchEMA(EMA):
    """Switch EMA (SEMA): :class:`EMA` plus ``w <- average`` at switch points.

    Extra parameters
    ----------------
    switch_every : int >= 1 (epochs or steps).  switch_unit : "epoch" (default, the
    paper) or "step".  switch_start : int >= 0; switch only once the epoch (step) count
    exceeds it.  on_switch : "keep" (default) or "reset" the wrapped optimizer's state.
    """

    switch_every: int = 1
    switch_unit: str = "epoch"
    switch_start: int = 0
    on_switch: str = "keep"

    def __post_init__(self):
        super().__post_init__()
        _validate.integer("switch_every", self.switch_every, lo=1)
        _validate.choice("switch_unit", self.switch_unit, SWITCH_UNITS)
        _validate.integer("switch_start", self.switch_start, lo=0)
        _validate.choice("on_switch", self.on_switch, ON_SWITCH)

    def _switch_due(self, n, epoch, epoch_end) -> bool:
        return bool(switch_due(n, epoch, epoch_end, self.switch_every,
                               self.switch_unit == "step", self.switch_start,
                               self.start == "zeros", self.update_every))
