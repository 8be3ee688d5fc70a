"""Small shared kernels: fixed-order reductions and element-wise helpers.

Sums run in a fixed, written-down order in plain loops, never through BLAS, so the
result does not depend on the machine, the thread count or the array's alignment.

**The order of a global L2 norm** (every one refimpl takes: SAM's and StableSAM's norms,
the gradient norms the loops record, golden/FORMAT.md section 3.5): eight lanes, lane
``l`` (0..7) summing ``y_i^2`` for ``i = l, l + 8, l + 16, ...`` in increasing i, each
lane starting from 0.0 (``y_i = x_i``, or ``|a_i| x_i`` for ASAM's weighted norm); then
``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``; then the square root. The eight
independent running sums let LLVM keep them in two vector registers (no reassociation:
fastmath stays off), so the norm runs at memory bandwidth instead of at one addition's
latency per element; the error bound is that of recursive summation over ceil(n/8) + 3
terms, smaller than one running sum's.
"""

from __future__ import annotations

import math

from refimpl._jit import kernel


@kernel(inline=True)
def _square_or_zero(x, i):
    """``x[i]^2``, or 0.0 past the end (adding +0.0 leaves a lane's sum unchanged)."""
    return x[i] * x[i] if i < x.shape[0] else 0.0


@kernel(inline=True)
def _weighted_square_or_zero(a, x, i):
    """``(|a[i]| x[i])^2``, or 0.0 past the end."""
    if i >= x.shape[0]:
        return 0.0
    y = abs(a[i]) * x[i]
    return y * y


@kernel
def l2_norm(x):
    """Global L2 norm ``sqrt(sum_i x_i^2)`` in the 8-lane order of the module docstring."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n = x.shape[0]
    full = n - n % 8
    for i in range(0, full, 8):  # lane l sums x[i + l]^2
        s0 += x[i] * x[i]
        s1 += x[i + 1] * x[i + 1]
        s2 += x[i + 2] * x[i + 2]
        s3 += x[i + 3] * x[i + 3]
        s4 += x[i + 4] * x[i + 4]
        s5 += x[i + 5] * x[i + 5]
        s6 += x[i + 6] * x[i + 6]
        s7 += x[i + 7] * x[i + 7]
    if full < n:  # the last, partial block: element i still goes to lane i mod 8
        s0 += _square_or_zero(x, full)
        s1 += _square_or_zero(x, full + 1)
        s2 += _square_or_zero(x, full + 2)
        s3 += _square_or_zero(x, full + 3)
        s4 += _square_or_zero(x, full + 4)
        s5 += _square_or_zero(x, full + 5)
        s6 += _square_or_zero(x, full + 6)
        s7 += _square_or_zero(x, full + 7)
    return math.sqrt(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)))


@kernel
def weighted_l2_norm(a, x):
    """``|| |a| * x ||``: the ASAM norm, with the product taken element-wise first, in the
    8-lane order of the module docstring."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n = x.shape[0]
    full = n - n % 8
    for i in range(0, full, 8):  # lane l sums (|a[i + l]| x[i + l])^2
        y0 = abs(a[i]) * x[i]
        y1 = abs(a[i + 1]) * x[i + 1]
        y2 = abs(a[i + 2]) * x[i + 2]
        y3 = abs(a[i + 3]) * x[i + 3]
        y4 = abs(a[i + 4]) * x[i + 4]
        y5 = abs(a[i + 5]) * x[i + 5]
        y6 = abs(a[i + 6]) * x[i + 6]
        y7 = abs(a[i + 7]) * x[i + 7]
        s0 += y0 * y0
        s1 += y1 * y1
        s2 += y2 * y2
        s3 += y3 * y3
        s4 += y4 * y4
        s5 += y5 * y5
        s6 += y6 * y6
        s7 += y7 * y7
    if full < n:  # the last, partial block: element i still goes to lane i mod 8
        s0 += _weighted_square_or_zero(a, x, full)
        s1 += _weighted_square_or_zero(a, x, full + 1)
        s2 += _weighted_square_or_zero(a, x, full + 2)
        s3 += _weighted_square_or_zero(a, x, full + 3)
        s4 += _weighted_square_or_zero(a, x, full + 4)
        s5 += _weighted_square_or_zero(a, x, full + 5)
        s6 += _weighted_square_or_zero(a, x, full + 6)
        s7 += _weighted_square_or_zero(a, x, full + 7)
    return math.sqrt(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)))


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
