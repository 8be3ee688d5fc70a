"""refimpl's own tanh, built from IEEE-754 basic operations only.

A library's ``tanh`` (libm, NumPy's SIMD loops, MKL) rounds differently on each
platform, and a scalar libm call cannot be vectorised: it cost the MLP most of its step.
:func:`tanh` below uses only ``+ - * /``, comparisons and ``floor`` (all exactly rounded
by IEEE 754), in a fixed order, with no fused multiply-add (refimpl's kernels never
enable fastmath or contraction). Its bits are therefore the same on every machine, in
the jitted kernels and in plain Python (``NUMBA_DISABLE_JIT=1``), and the loop that
calls it vectorises (no call, no branch: both halves below are computed and one is
selected).

**Algorithm** (``a = |x|``; the sign is restored at the end, since tanh is odd)

* ``a < 0.75``: ``tanh(a) = a + a s P(s)`` with ``s = a^2`` and ``P`` the degree-12
  polynomial :data:`TANH_P` (coefficients ascending), a Chebyshev fit of
  ``(tanh(a) - a) / a^3`` on ``s`` in [0, 0.5625]; with its coefficients rounded to
  double its absolute error is below 2e-17 (1.85e-17 of it the rounding of -1/3), so
  the fit adds at most ``a^3 2e-17``, below 0.08 ulp of tanh(a).
* ``a >= 0.75``: ``tanh(a) = 1 - 2 / (e^{2a} + 1)``, with ``e^y`` (``y = 2 min(a, 22)``;
  beyond 19.1 tanh rounds to 1) computed as ``2^k e^r``:

  - ``k = floor(y / ln 2 + 1/2)``, ``r = (y - k LN2_HI) - k LN2_LO`` (Cody and Waite's
    reduction: :data:`LN2_HI` is ln 2 truncated to 32 significant bits, so ``k LN2_HI``
    is exact and so is ``y - k LN2_HI`` (Sterbenz); :data:`LN2_LO` = ln 2 - LN2_HI
    rounded); ``|r| <= ln 2 / 2``;
  - ``e^r`` by its Taylor polynomial of degree 13 (coefficients ``1/n!`` rounded,
    :data:`EXP_TAYLOR`; the truncation error is below 6e-18 relative);
  - ``2^k`` (``0 <= k <= 64``) as a product of the powers ``2^(2^i)`` selected by the
    bits of k: exact, and branch-free.

**Accuracy.** Measured against the exact value (Python's ``decimal`` at 70 digits,
correctly rounded ``exp``), by ``benchmarks/tanh_ulp.py`` over 2,000,000 points and the
edge cases: the maximum error is :data:`MAX_ULP_MEASURED` = 1.08 ulp (reached just above
0.75, where ``1 - q`` passes on the rounding of q); below 0.75 it is 0.76 ulp, above 3
it is 0.51 ulp. The bound is measured, not proven; ``tests/test_tanh.py`` checks it on
a sweep of its own and each edge case. glibc's tanh measured on the same points reaches
2.0 ulp. Edge cases: ``tanh(+-0) = +-0``, subnormal x returns x (exact: tanh(x) = x to
far below an ulp), ``tanh(+-inf) = +-1``, nan gives nan, and no input overflows
(``e^{2a}`` is formed only for ``a <= 22``).

The constants are derived by ``benchmarks/tanh_ulp.py derive`` (needs mpmath for the
Chebyshev fit), which prints them as written here.
"""

from __future__ import annotations

import math

from refimpl._jit import kernel

#: Below this |x| the odd polynomial is used, from it on the exponential form.
SWITCH = 0.75
#: From here on ``e^{2a}`` is capped (tanh already rounds to 1 beyond 19.1).
CAP = 22.0
#: ln 2 truncated to 32 significant bits (a multiple of 2^-32).
LN2_HI = 0.6931471803691238
#: ln 2 - LN2_HI, rounded to double.
LN2_LO = 1.9082149292705877e-10
#: 1 / ln 2, rounded to double.
INV_LN2 = 1.4426950408889634
#: P(s) ~ (tanh(a) - a) / a^3 at s = a^2 in [0, 0.5625], coefficients of s^0 .. s^12.
TANH_P = (-0.3333333333333333, 0.13333333333332661, -0.05396825396758208,
          0.021869488509711037, -0.008863234987439102, 0.0035921213885060418,
          -0.0014557818253310693, 0.0005897469986953327, -0.00023809406936979282,
          9.42476297649358e-05, -3.449472469998217e-05, 1.0048053928129499e-05,
          -1.6408599646831444e-06)
#: 1/n! rounded to double, n = 0 .. 13 (Taylor coefficients of e^r).
EXP_TAYLOR = (1.0, 1.0, 0.5, 0.16666666666666666, 0.041666666666666664,
              0.008333333333333333, 0.001388888888888889, 0.0001984126984126984,
              2.48015873015873e-05, 2.7557319223985893e-06, 2.755731922398589e-07,
              2.505210838544172e-08, 2.08767569878681e-09, 1.6059043836821613e-10)
#: The largest error measured by benchmarks/tanh_ulp.py, in units in the last place.
MAX_ULP_MEASURED = 1.08


@kernel(inline=True)
def tanh(x):
    """tanh(x) from basic IEEE operations (module docstring): at most 1.08 ulp from the
    exact value (measured), the same bits on every platform."""
    a = abs(x)
    # a < SWITCH: tanh(a) = a + a s P(s), s = a^2, P by Horner's rule
    s = a * a
    p = TANH_P[12]
    for i in range(11, -1, -1):
        p = p * s + TANH_P[i]
    small = a + a * (s * p)
    # a >= SWITCH: tanh(a) = 1 - 2 / (e^y + 1), y = 2a, e^y = 2^k e^r
    y = 2.0 * (a if a < CAP else CAP)  # a nan goes to CAP here; the select below keeps it
    k = math.floor(y * INV_LN2 + 0.5)
    r = (y - k * LN2_HI) - k * LN2_LO
    q = EXP_TAYLOR[13]
    for i in range(12, -1, -1):
        q = q * r + EXP_TAYLOR[i]
    two_k = 1.0
    if k & 1:
        two_k *= 2.0
    if k & 2:
        two_k *= 4.0
    if k & 4:
        two_k *= 16.0
    if k & 8:
        two_k *= 256.0
    if k & 16:
        two_k *= 65536.0
    if k & 32:
        two_k *= 4294967296.0
    if k & 64:
        two_k *= 18446744073709551616.0
    big = 1.0 - 2.0 / (q * two_k + 1.0)
    t = small if not (a >= SWITCH) else big  # nan takes the polynomial: nan
    return math.copysign(t, x)
