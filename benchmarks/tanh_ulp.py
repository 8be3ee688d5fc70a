"""Derive the constants of refimpl's tanh and measure its error in ulps.

    python3 benchmarks/tanh_ulp.py derive            # needs mpmath (pip install mpmath)
    python3 benchmarks/tanh_ulp.py measure [--points N] [--seed S]

``derive`` recomputes every constant of ``refimpl/_tanh.py`` (the Chebyshev fit of
``(tanh(a) - a) / a^3`` with mpmath at 60 digits, the ln 2 split, the Taylor coefficients
of exp) and says whether each equals the value written in the module.

``measure`` compares refimpl's tanh (the jitted kernel, vectorised in a loop) with the
exact value, computed with Python's ``decimal`` at 70 digits (``Decimal.exp`` is
correctly rounded; near 0 the series ``x - x^3/3 + 2x^5/15 - ...``), over N points:
uniform in [0, 1], [1, 3], [3, 20] and log-uniform in [1e-12, 1], a quarter each, plus
the edge cases, and prints the largest error in ulps of the exact value per range, and
glibc's (``math.tanh``) on the same points. The module docstring quotes the run with
the default 2,000,000 points (about 2 minutes).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np


def exact_tanh(x: float) -> Decimal:
    """tanh(x) to about 65 significant digits, from correctly rounded decimal exp."""
    with localcontext() as ctx:
        ctx.prec = 70
        X = Decimal(x)
        if abs(x) < 1e-5:  # the series: the first omitted term is below 4e-53 relative
            s = X * X
            return X * (1 - s / 3 + 2 * s * s / 15 - 17 * s ** 3 / 315 + 62 * s ** 4 / 2835)
        if abs(x) > 100:
            return Decimal(1).copy_sign(X)
        e = (2 * X).exp()
        return (e - 1) / (e + 1)


def ulp_error(x: float, value: float) -> float:
    """|value - tanh(x)| in units in the last place of the exact tanh(x) (the spacing of
    doubles at the exact value: 2^(e - 52) for |tanh| in [2^e, 2^(e+1)), subnormal
    spacing 2^-1074 below 2^-1022)."""
    exact = exact_tanh(x)
    if exact == 0:
        return 0.0 if value == 0 else math.inf
    if not math.isfinite(value):
        return math.inf
    with localcontext() as ctx:
        ctx.prec = 70
        mag = abs(exact)
        e = math.frexp(float(mag))[1] - 1
        if Decimal(2) ** e > mag:  # float(mag) rounded up to a power of 2
            e -= 1
        spacing = Decimal(2) ** max(e - 52, -1074)
        return float(abs(Decimal(value) - exact) / spacing)


def sample(points: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = points // 4
    return {"[0, 1]": rng.uniform(0.0, 1.0, q), "[1, 3]": rng.uniform(1.0, 3.0, q),
            "[3, 20]": rng.uniform(3.0, 20.0, q),
            "[1e-12, 1] log-uniform": 10.0 ** rng.uniform(-12.0, 0.0, points - 3 * q)}


EDGES = (0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1e-8, 0.75,
         np.nextafter(0.75, 0.0), -0.75, 19.0, 19.1, 21.99, 22.0, 22.01, 354.9, 710.0,
         1e308, 1.7976931348623157e308)


def _tanh_array(x: np.ndarray) -> np.ndarray:
    import numba

    from refimpl._tanh import tanh

    @numba.njit(fastmath=False, error_model="numpy")
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = tanh(x[i])

    out = np.empty_like(x)
    loop(x, out)
    return out


def run_measure(points: int, seed: int) -> int:
    from refimpl._tanh import MAX_ULP_MEASURED, tanh

    start = time.perf_counter()
    worst = 0.0
    print(f"{points} points, seed {seed}; error in ulps of the exact value")
    print(f"{'range':<24} {'refimpl max':>12} {'at x':>22} {'mean':>8} {'glibc max':>10}")
    for name, xs in sample(points, seed).items():
        ours = _tanh_array(xs)
        errs = np.array([ulp_error(float(x), float(t)) for x, t in zip(xs, ours)])
        libm = np.array([ulp_error(float(x), math.tanh(x)) for x in xs])
        i = int(np.argmax(errs))
        worst = max(worst, float(errs[i]))
        print(f"{name:<24} {errs[i]:12.4f} {float(xs[i])!r:>22} {errs.mean():8.4f} {libm.max():10.4f}")
    bad = []
    for x in EDGES:
        for v in (float(x), -float(x)):
            t = tanh(v)
            if math.copysign(1.0, t) != math.copysign(1.0, v) or ulp_error(v, t) > MAX_ULP_MEASURED:
                bad.append((v, t))
    inf_ok = tanh(math.inf) == 1.0 and tanh(-math.inf) == -1.0 and math.isnan(tanh(math.nan))
    print(f"edge cases: {2 * len(EDGES)} finite values + inf, -inf, nan: "
          + ("all correct" if not bad and inf_ok else f"WRONG {bad} inf/nan ok: {inf_ok}"))
    print(f"largest error {worst:.4f} ulp (MAX_ULP_MEASURED in refimpl/_tanh.py: "
          f"{MAX_ULP_MEASURED}); {time.perf_counter() - start:.0f} s")
    return 0 if worst <= MAX_ULP_MEASURED and not bad and inf_ok else 1


def derive() -> int:
    try:
        import mpmath as mp
    except ImportError:
        print("derive needs mpmath: pip install mpmath", file=sys.stderr)
        return 2
    import refimpl._tanh as T

    mp.mp.dps = 60
    top = mp.mpf(T.SWITCH) ** 2

    def g(s):  # (tanh(a) - a) / a^3 as a function of s = a^2
        if s == 0:
            return mp.mpf(-1) / 3
        a = mp.sqrt(s)
        return (mp.tanh(a) - a) / (a * s)

    poly, err = mp.chebyfit(g, [mp.mpf(0), top], len(T.TANH_P), error=True)
    tanh_p = tuple(float(c) for c in poly[::-1])
    ln2 = Fraction(str(mp.log(2)))
    ln2_hi = Fraction(math.floor(ln2 * 2 ** 32), 2 ** 32)
    derived = {
        "TANH_P": tanh_p,
        "LN2_HI": float(ln2_hi),
        "LN2_LO": float(ln2 - ln2_hi),
        "INV_LN2": float(1 / ln2),
        "EXP_TAYLOR": tuple(float(Fraction(1, math.factorial(n))) for n in range(len(T.EXP_TAYLOR))),
    }
    print(f"Chebyshev fit of (tanh(a) - a) / a^3 on s = a^2 in [0, {float(top)}], "
          f"{len(tanh_p)} coefficients: max abs error {float(err):.3g}")
    same = True
    for name, value in derived.items():
        ok = getattr(T, name) == value
        same &= ok
        print(f"{name} = {value!r}  ({'as in' if ok else 'DIFFERS FROM'} refimpl/_tanh.py)")
    return 0 if same else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("derive", help="recompute the constants (needs mpmath)")
    m = sub.add_parser("measure", help="measure the error in ulps")
    m.add_argument("--points", type=int, default=2_000_000)
    m.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "derive":
        return derive()
    if args.points < 4:
        parser.error("--points must be at least 4")
    return run_measure(args.points, args.seed)


if __name__ == "__main__":
    sys.exit(main())
