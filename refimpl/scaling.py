r"""The EMA Scaling Rule (Busbridge et al. 2023, "How to Scale Your EMA") and the
optimizers' own scaling rules. Sources: proofs/sources.md#ema-scaling-rule.

When the batch size grows from B to kappa * B, the rule keeps the training dynamics
(to first order in the learning rate, in the SDE limit) if

* every EMA decay becomes ``decay ** kappa`` (the model EMA, and every other EMA in the
  system: refimpl also applies it to momentum-like decays where the optimizer's own
  rule says so);
* SGD: ``lr -> kappa * lr``, momentum kept (the linear scaling rule);
* Adam-like (Adam, FAME; Malladi et al. 2022, square-root rule): ``lr -> sqrt(kappa) lr``,
  every beta ``b -> b ** kappa`` (equal to ``1 - kappa (1 - b)`` to first order, and in
  [0, 1) for kappa >= 1; for kappa < 1 a decay within an ulp of 1 can round to 1.0, which
  is refused with a ValueError), ``eps -> eps / sqrt(kappa)``;
* SAM's radius ``rho`` has no published rule: it is kept, and said so.

In mathematical notation, for a batch $\kappa B$ instead of $B$: the EMA decay
$\rho \to \rho^\kappa$, SGD's $\eta \to \kappa \eta$, and Adam's
$\eta \to \sqrt{\kappa} \eta$, $\beta \to \beta^\kappa$, $\epsilon \to \epsilon / \sqrt{\kappa}$.

``update_every`` is kept: an EMA updated every k steps then updates kappa times less
often per unit of training time, which is exactly what ``decay ** kappa`` compensates.
Switch points are moments in training time: SwitchEMA's ``switch_every`` and
``switch_start`` with ``switch_unit="step"`` shrink by kappa (they must stay integers, so
a count not divisible by kappa is an error); epoch-based switching needs no change.
EMA warm-up schedules have no published scaling rule and are refused. A per-step
learning-rate schedule is resampled at matched times: the new step ``j`` uses
``kappa * lr[kappa * j]`` (SGD) or ``sqrt(kappa) * lr[kappa * j]`` (Adam-like).

The rule is first order in lr: it breaks down when ``kappa * lr`` approaches the
stability limit of the base optimizer (the theory issue tests exactly where).

**Progressive Scaling** (:func:`progressive`): grow the batch during one run, stage by
stage, and apply the rule at every change, to the base hyperparameters (not to the
previous stage's), keeping the optimizer's state (weights, buffers, the EMA) across the
changes. A stage that trains for ``base_steps`` steps' worth of the base run with
multiplier kappa takes ``base_steps / kappa`` steps. Our design from the rule (the
paper's own algorithm was not at hand); claim EMA-progressive in proofs/ema.md.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from refimpl import _validate
from refimpl.optimizers.adam import Adam
from refimpl.optimizers.averagers import SWA, Lookahead
from refimpl.optimizers.ema import EMA, SwitchEMA
from refimpl.optimizers.fame import FAME
from refimpl.optimizers.sam import SAM
from refimpl.optimizers.sgd import SGD
from refimpl.schedules import Schedule, as_schedule
from refimpl.train import _layers  # the one place that splits an optimizer's layers


def scale_decay(decay: float, kappa: float) -> float:
    """The EMA Scaling Rule for one decay: ``decay ** kappa``."""
    decay = _validate.real("decay", decay, lo=0.0, hi=1.0, hi_open=True)
    return _power("decay", decay, _check_kappa(kappa))


def _power(name: str, decay: float, kappa: float) -> float:
    """``decay ** kappa``, refusing the one case where it leaves [0, 1): for kappa < 1 a
    decay within an ulp of 1 rounds to exactly 1.0 (an EMA that never moves)."""
    scaled = decay ** kappa
    if scaled >= 1.0:
        raise ValueError(f"{name}={decay!r} ** kappa={kappa!r} rounds to 1.0, which is not a "
                         "valid decay; use kappa >= 1 or a decay further from 1")
    return scaled


def scale_optimizer(optimizer, kappa: float):
    """The optimizer (and its wrappers) with every hyperparameter scaled for a batch
    ``kappa`` times larger. Returns a new optimizer; the input is unchanged.

    kappa > 0; it must be an integer when the optimizer has step counts or a per-step
    schedule to rescale (and may be fractional, e.g. 0.5 for halving the batch, otherwise).
    """
    kappa = _check_kappa(kappa)
    if isinstance(optimizer, SGD):
        return dataclasses.replace(optimizer, lr=_scale_schedule(optimizer.lr, kappa, kappa))
    if isinstance(optimizer, Adam):
        if optimizer.decoupled_weight_decay and optimizer.weight_decay != 0.0:
            raise ValueError("scale_optimizer has no rule for decoupled weight decay (AdamW, "
                             "weight_decay != 0): the square-root rule in refimpl's sources "
                             "covers Adam's lr, betas and eps only; scale weight_decay "
                             "yourself or use coupled L2")
        root = math.sqrt(kappa)
        return dataclasses.replace(
            optimizer, lr=_scale_schedule(optimizer.lr, kappa, root),
            beta1=_power("beta1", optimizer.beta1, kappa),
            beta2=_power("beta2", optimizer.beta2, kappa),
            eps=optimizer.eps / root)
    if isinstance(optimizer, FAME):
        root = math.sqrt(kappa)
        return dataclasses.replace(
            optimizer, lr=_scale_schedule(optimizer.lr, kappa, root),
            **{f"beta{i}": _power(f"beta{i}", getattr(optimizer, f"beta{i}"), kappa)
               for i in range(1, 6)},
            eps=optimizer.eps / root)
    if isinstance(optimizer, SAM):
        return dataclasses.replace(optimizer, base=scale_optimizer(optimizer.base, kappa))
    if isinstance(optimizer, EMA):
        if optimizer.warmup is not None:
            raise ValueError(
                f"scale_optimizer does not rescale EMA warm-up schedules (warmup="
                f"{optimizer.warmup!r}): no published rule says how; scale an EMA with "
                "warmup=None, or build the scaled warm-up yourself")
        decay = _power("decay", optimizer.decay, kappa)
        changes = dict(
            inner=scale_optimizer(optimizer.inner, kappa),
            decay=decay,
            min_decay=min(optimizer.min_decay, decay),  # unused without warm-up
        )
        if isinstance(optimizer, SwitchEMA) and optimizer.switch_unit == "step":
            changes["switch_every"] = _scale_count("switch_every", optimizer.switch_every, kappa, lo=1)
            changes["switch_start"] = _scale_count("switch_start", optimizer.switch_start, kappa)
        return dataclasses.replace(optimizer, **changes)
    if isinstance(optimizer, (SWA, Lookahead)):
        raise ValueError(f"scale_optimizer has no rule for {type(optimizer).__name__} (none "
                         "is published): scale its inner optimizer and choose "
                         f"{'swa_every / swa_start' if isinstance(optimizer, SWA) else 'k'} "
                         "yourself")
    raise TypeError(f"optimizer must be a refimpl optimizer, got {type(optimizer).__name__}")


def _check_kappa(kappa) -> float:
    return _validate.real("kappa", kappa, lo=0.0, lo_open=True)


def _scale_count(name: str, value: int, kappa: float, lo: int = 0) -> int:
    if value == 0:
        return 0
    scaled = value / kappa
    if scaled != int(scaled) or scaled < lo:
        raise ValueError(f"{name}={value} is a count of steps and must stay an integer >= {lo} "
                         f"under kappa={kappa!r}; choose a count divisible by kappa")
    return int(scaled)


def _scale_schedule(lr: Schedule, kappa: float, factor: float) -> Schedule:
    if lr.constant is not None:
        return as_schedule("lr", lr.constant * factor)
    if kappa != int(kappa):
        raise ValueError(f"a per-step lr schedule can only be resampled for an integer kappa, "
                         f"got kappa={kappa!r}")
    k = int(kappa)
    if lr.values is not None:
        resampled = np.ascontiguousarray(lr.values[::k]) * factor
        return as_schedule("lr", resampled)
    f = lr.function
    return as_schedule("lr", lambda j: factor * f(k * j))


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of :func:`progressive`: the batch multiplier, the scaled optimizer, and
    the number of steps it runs (``base_steps / kappa``)."""

    kappa: int
    optimizer: object
    steps: int


def progressive(optimizer, stages) -> list[Stage]:
    """Progressive Scaling: the stages of one run whose batch grows.

    ``stages`` is a sequence of ``(kappa, base_steps)``: at stage i the batch is
    ``kappa_i`` times the base batch, the optimizer is ``scale_optimizer(optimizer,
    kappa_i)`` (the rule applied to the BASE hyperparameters), and the stage covers
    ``base_steps_i`` steps of the base run, i.e. ``base_steps_i / kappa_i`` of its own
    (which must be an integer). Run the stages one after the other with one optimizer
    state (the step API accepts the state of the previous stage's optimizer: same kinds,
    same shapes), each with its batch size; ``refimpl.theory.moments(start=...)`` gives
    the exact moments of such a run on the noisy quadratic model. The optimizer must not
    have a per-step learning-rate schedule (it would restart at every stage).
    """
    if isinstance(stages, (str, bytes)) or not hasattr(stages, "__iter__"):
        raise TypeError("stages must be a sequence of (kappa, base_steps) pairs")
    stages = list(stages)
    if not stages:
        raise ValueError("stages must hold at least one (kappa, base_steps) pair")
    if _layers(optimizer)[2].lr.constant is None:  # the base optimizer's schedule
        raise ValueError("progressive needs a constant learning rate: a per-step schedule "
                         "would restart at every stage")
    out = []
    for i, pair in enumerate(stages):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"stages[{i}] must be a pair (kappa, base_steps), got {pair!r}")
        kappa = _validate.integer(f"stages[{i}][0] (kappa)", pair[0], lo=1)
        base_steps = _validate.integer(f"stages[{i}][1] (base_steps)", pair[1], lo=1)
        if base_steps % kappa:
            raise ValueError(f"stages[{i}]: base_steps={base_steps} must be divisible by "
                             f"kappa={kappa} (a stage runs base_steps / kappa steps)")
        out.append(Stage(kappa, scale_optimizer(optimizer, kappa), base_steps // kappa))
    return out

