"""EMA, DEMA and TEMA as signal filters (the building blocks of FAME; proofs/sources.md#fame).

For a signal ``x_1, x_2, ...`` and decays in [0, 1), a chain of three EMAs started at 0::

    m1 <- b1 * m1 + (1 - b1) * x
    m2 <- b3 * m2 + (1 - b3) * m1      (uses the new m1)
    m3 <- b4 * m3 + (1 - b4) * m2      (uses the new m2)

gives ``EMA = m1``, ``DEMA = 2 m1 - m2`` (with b3 = b1) and
``TEMA = 3 m1 - 3 m2 + m3``. The classical TEMA has b1 = b3 = b4; FAME mixes decays.
The paper names (b1, b3, b4) follow FAME, where b2 is Adam's second-moment decay.

A zero-started chain is biased toward 0 early on. ``debias=True`` divides each output by
the same filter's response to the constant signal 1 (for a single EMA that response is
``1 - b**t``, Adam's bias correction), so a constant signal is reproduced at every step.

The element kernels :func:`ema_step` and :func:`tema_combine` are the ones FAME's
kernels call, so the filter studied here is exactly the one inside the optimizer.
"""

from __future__ import annotations

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel


@kernel
def ema_step(m, x, decay):
    """One EMA update of a scalar: ``decay * m + (1 - decay) * x``."""
    return decay * m + (1.0 - decay) * x


@kernel
def dema_combine(m1, m2):
    """DEMA output ``2 m1 - m2``."""
    return 2.0 * m1 - m2


@kernel
def tema_combine(m1, m2, m3):
    """TEMA output ``3 m1 - 3 m2 + m3``, evaluated as ``(3 m1 - 3 m2) + m3``."""
    return 3.0 * m1 - 3.0 * m2 + m3


@kernel
def _chain_kernel(x, b1, b3, b4, order, debias, out):
    """Run the EMA chain over ``x`` (T,) and write EMA/DEMA/TEMA (``order`` 1/2/3)."""
    m1 = m2 = m3 = 0.0
    r1 = r2 = r3 = 0.0  # the chain's response to the constant 1
    for t in range(x.shape[0]):
        m1 = ema_step(m1, x[t], b1)
        m2 = ema_step(m2, m1, b3)
        m3 = ema_step(m3, m2, b4)
        r1 = ema_step(r1, 1.0, b1)
        r2 = ema_step(r2, r1, b3)
        r3 = ema_step(r3, r2, b4)
        if order == 1:
            y, r = m1, r1
        elif order == 2:
            y, r = dema_combine(m1, m2), dema_combine(r1, r2)
        else:
            y, r = tema_combine(m1, m2, m3), tema_combine(r1, r2, r3)
        out[t] = y / r if debias else y


def _run(x, decays, names, order, debias):
    x = _validate.vector("x", x)
    for name, b in zip(names, decays):
        _validate.real(name, b, lo=0.0, hi=1.0, hi_open=True)
    _validate.flag("debias", debias)
    b1 = float(decays[0])
    b3 = float(decays[1]) if len(decays) > 1 else b1
    b4 = float(decays[2]) if len(decays) > 2 else b3
    out = np.empty_like(x)
    _chain_kernel(x, b1, b3, b4, order, debias, out)
    return _validate.finite_result(("ema", "dema", "tema")[order - 1], out)


def ema(x, decay: float, *, debias: bool = False) -> np.ndarray:
    """Zero-started EMA of the signal ``x`` (T,): ``m_t = decay m_{t-1} + (1 - decay) x_t``."""
    return _run(x, (decay,), ("decay",), 1, debias)


def dema(x, decay: float, *, debias: bool = False) -> np.ndarray:
    """Zero-started DEMA ``2 m1 - m2`` with one decay for both EMAs."""
    return _run(x, (decay, decay), ("decay", "decay"), 2, debias)


def tema(x, b1: float, b3: float | None = None, b4: float | None = None, *,
         debias: bool = False) -> np.ndarray:
    """Zero-started TEMA ``3 m1 - 3 m2 + m3``; ``b3`` defaults to ``b1`` and ``b4`` to
    ``b3`` (so ``tema(x, b)`` is the classical TEMA); FAME's mixed decays are
    ``tema(x, 0.9, 0.5, 0.5)``."""
    b3 = b1 if b3 is None else b3
    b4 = b3 if b4 is None else b4
    return _run(x, (b1, b3, b4), ("b1", "b3", "b4"), 3, debias)


def lag(decay: float) -> float:
    """Steady-state lag ``L(b) = b / (1 - b)`` (in steps) of an EMA with decay ``b``."""
    b = _validate.real("decay", decay, lo=0.0, hi=1.0, hi_open=True)
    return b / (1.0 - b)


def tema_lag(b1: float, b3: float, b4: float) -> float:
    """Steady-state lag of the mixed-decay TEMA: ``L(b1) - 2 L(b3) + L(b4)`` (claim
    TEMA-lag; derived in proofs/tema_fame.md)."""
    for name, b in (("b1", b1), ("b3", b3), ("b4", b4)):
        _validate.real(name, b, lo=0.0, hi=1.0, hi_open=True)
    return lag(b1) - 2.0 * lag(b3) + lag(b4)
