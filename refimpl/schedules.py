"""Learning-rate schedules: a constant, an explicit per-step array, or a function.

Every optimizer stores its learning rate as a :class:`Schedule`, so ``lr`` can be

* a float: the same rate at every step;
* a 1-D float64 array: ``lr[t]`` is used at step ``t`` (0-based); running past its end
  is an error, never a silent repeat of the last value;
* a callable ``f(t) -> float``: evaluated once per step; each value is checked.

The training loop materialises the schedule into an array once (:meth:`Schedule.array`),
so all three forms give bit-identical runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from refimpl import _validate


@dataclass(frozen=True, eq=False)
class Schedule:
    """A validated learning-rate schedule (build it with :func:`as_schedule`)."""

    name: str
    constant: float | None = None
    values: np.ndarray | None = None
    function: Callable[[int], float] | None = None

    def at(self, step: int) -> float:
        """The rate at 0-based step ``step``."""
        if self.constant is not None:
            return self.constant
        if self.values is not None:
            if step >= self.values.shape[0]:
                raise ValueError(
                    f"{self.name} schedule has {self.values.shape[0]} entries; "
                    f"step {step} is past its end"
                )
            return float(self.values[step])
        value = self.function(step)
        return _validate.real(f"{self.name}({step})", value, lo=0.0)

    def array(self, steps: int) -> np.ndarray:
        """The rates for steps ``0 .. steps-1`` as a new float64 array."""
        if self.constant is not None:
            return np.full(steps, self.constant, dtype=np.float64)
        if self.values is not None:
            if steps > self.values.shape[0]:
                raise ValueError(
                    f"{self.name} schedule has {self.values.shape[0]} entries, "
                    f"but {steps} steps were asked for"
                )
            return self.values[:steps].copy()
        return np.array([self.at(t) for t in range(steps)], dtype=np.float64)

    def __repr__(self) -> str:
        if self.constant is not None:
            return repr(self.constant)
        if self.values is not None:
            return f"<array of {self.values.shape[0]} rates>"
        return f"<function {getattr(self.function, '__name__', 'schedule')}>"


def as_schedule(name: str, lr) -> Schedule:
    """Validate ``lr`` (float, 1-D float64 array, or callable) as a non-negative schedule."""
    if isinstance(lr, Schedule):
        return lr
    if callable(lr):
        return Schedule(name, function=lr)
    if isinstance(lr, np.ndarray):
        values = _validate.vector(name, lr)
        if np.any(values < 0.0):
            raise ValueError(f"{name} must be in [0.0, inf) at every step")
        frozen = values.copy()
        frozen.flags.writeable = False
        return Schedule(name, values=frozen)
    return Schedule(name, constant=_validate.real(name, lr, lo=0.0))
