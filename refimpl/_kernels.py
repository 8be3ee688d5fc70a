"""Small shared kernels: fixed-order reductions and element-wise helpers.

Sums run left to right in a plain loop, never through BLAS, so the result does not
depend on the machine, the thread count or the array's alignment.
"""

from __future__ import annotations

import math

from refimpl._jit import kernel


@kernel
def l2_norm(x):
    """Global L2 norm ``sqrt(sum_i x_i^2)``, summed in index order."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    return math.sqrt(total)


@kernel
def weighted_l2_norm(a, x):
    """``|| |a| * x ||``: the ASAM norm, with the product taken element-wise first."""
    total = 0.0
    for i in range(x.shape[0]):
        y = abs(a[i]) * x[i]
        total += y * y
    return math.sqrt(total)


@kernel
def decoupled_decay(w, lr, weight_decay, decoupled):
    """AdamW's weight decay, ``w <- w * (1 - lr * weight_decay)`` in place (the factor
    computed once, as torch does), when ``decoupled`` and ``weight_decay != 0``. Returns the
    coupled L2 coefficient left to add to the gradient: 0 after a decoupled decay, else
    ``weight_decay`` (Adam's and FAME's shared first step)."""
    if not decoupled or weight_decay == 0.0:
        return weight_decay
    factor = 1.0 - lr * weight_decay
    for i in range(w.shape[0]):
        w[i] = w[i] * factor
    return 0.0


@kernel
def add_into(x, y, out):
    """``out = x + y`` element-wise."""
    for i in range(x.shape[0]):
        out[i] = x[i] + y[i]


@kernel
def all_finite(x):
    """True when no element of ``x`` is nan or inf."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True
