r"""Exercises of tutorial 05 (SAM versus StableSAM).

05.1 (checked) finds USAM's divergence edge on quadratics by bisection on real runs and
compares it with the closed form; 05.2 (checked) writes StableSAM's rescale; 05.3 (on
paper) works out which saddles attract USAM at a given learning rate, and why StableSAM
is gradient descent in one dimension.

Expected values are computed independently of the answer: 05.1 from the closed form
$2 / (\lambda_{\max} (1 + \rho \lambda_{\max}))$ (claim SAM-quadratic of proofs/sam.md),
evaluated exactly in rationals; 05.2 from exact rational squared norms
(:class:`fractions.Fraction`) and a 50-digit square root (:mod:`decimal`).
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal, localcontext
from fractions import Fraction as F

import numpy as np

from refimpl.exercises import Exercise

__all__ = ["EXERCISES"]

EPS = float(np.finfo(np.float64).eps)

# ------------------------------------------------------------------------------ 05.1

# (eigenvalues of H, rho): the tutorial's case first, then a third dimension, a large
# rho and a stiff problem. In every case rho lam_max >= 0.25, so GD's bound 2 / lam_max
# is at least 25% above USAM's, and lam_min differs from lam_max by a factor >= 2: the
# usual mix-ups all land far outside the tolerance below.
_EDGE_CASES = [
    ((10.0, 1.0), 0.1),
    ((4.0, 1.0, 0.5), 0.5),
    ((2.0, 1.0), 0.25),
    ((100.0, 3.0), 0.01),
]

# Relative tolerance. The statement's escape test ("||w_T|| > ||w_0|| after T = 2000
# steps from w_0 = (1, ..., 1)") cannot fire below the bound b (USAM shrinks every
# coordinate there), and fires at b (1 + delta) once e^(T delta) > sqrt(d), i.e. for
# delta > ln(d) / (2T) <= ln(3) / 4000 < 3e-4; a bisection to relative width 1e-4 adds
# at most 1e-4. So an honest answer is within 4e-4 of b; we accept 5e-3, which also
# admits other reasonable tests (e.g. "converged below 1e-8 in 20000 steps"), and
# still rejects GD's bound (+25% at least), a missing factor 2 (-50%), the wrong
# eigenvalue and runs far too short to decide (see the solutions' MISTAKES).
_EDGE_RTOL = 5e-3


def _usam_bound(h_diag, rho) -> F:
    """2 / (lam_max (1 + rho lam_max)), exactly, for the float inputs."""
    lam, rho = F(max(h_diag)), F(rho)
    return 2 / (lam * (1 + rho * lam))


def _number(x, what: str) -> float:
    if isinstance(x, np.ndarray) and x.size == 1:
        x = x.reshape(()).item()
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.floating)):
        raise AssertionError(f"{what} should be a number (a float), got {type(x).__name__} "
                             f"{x!r}")
    x = float(x)
    if not math.isfinite(x) or x <= 0:
        raise AssertionError(f"{what} is {x}: a learning rate edge is a positive finite number")
    return x


def _edge_hint(rel: float, h_diag, rho) -> str:
    lam = max(h_diag)
    if abs(rel - rho * lam) < 0.05 * rho * lam:
        return ("that is gradient descent's edge 2 / lam_max: did you bisect plain SGD? USAM "
                "steps with the gradient at w + rho g, which sees the curvature "
                "lam (1 + rho lam)")
    hints = []
    if abs(rel + 0.5) < 0.02:
        hints.append("off by a factor 2: GD on curvature k is stable while lr k < 2, not "
                     "lr k < 1")
    if abs((1 + rel) * (1 + rho * lam) - 1) < 0.02:
        hints.append("the factor 1 + rho lam is counted twice: the curvature USAM sees is "
                     "lam (1 + rho lam)")
    if hints:
        return "; or ".join(hints)
    if rel < 0:
        return ("your edge is too low: a run just below the bound converges only slowly; if "
                "you test for convergence, run much longer or test escape "
                "(||w_T|| > ||w_0||) instead")
    return ("your edge is too high: either the runs are too short to see the slow growth "
            "just above the bound, or the sharp direction (lam_max) is not the one that "
            "diverges first in your runs")


def _check_edge(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function usam_edge(h_diag, rho) -> float, got "
                             f"{type(answer).__name__} {answer!r}")
    lines = []
    for h_diag, rho in _EDGE_CASES:
        got = _number(answer(np.array(h_diag), rho), f"usam_edge({list(h_diag)}, {rho})")
        want = _usam_bound(h_diag, rho)
        rel = float((F(got) - want) / want)
        if abs(rel) > _EDGE_RTOL:
            raise AssertionError(
                f"for H = diag{h_diag}, rho = {rho} your edge is {got:.6g}, but USAM's "
                f"stability bound 2 / (lam_max (1 + rho lam_max)) is {float(want):.6g} "
                f"(relative difference {rel:+.2e}, allowed {_EDGE_RTOL:g}): "
                + _edge_hint(rel, h_diag, rho))
        lines.append(f"{float(want):.4g}")
    return (f"usam_edge agrees with 2 / (lam_max (1 + rho lam_max)) to relative {_EDGE_RTOL:g} "
            f"on {len(_EDGE_CASES)} quadratics (bounds {', '.join(lines)}), the first being "
            "the tutorial's diag(10, 1) with rho = 0.1, where GD's edge would be 0.2.")


_EDGE_STARTER = '''\
import numpy as np

import refimpl as r
from refimpl.exercises import check


def escapes(h_diag, rho, lr, steps=2000):
    """True if USAM on f = w^T diag(h_diag) w / 2 from w_0 = (1, ..., 1) ends with
    ||w_T|| > ||w_0|| (or overflows)."""
    problem = r.Quadratic(np.diag(h_diag))
    opt = r.SAM(r.SGD(lr=lr), rho=rho, ascent="unnormalized", eps=0.0)
    w0 = np.ones(len(h_diag))
    rec = r.train(problem, opt, w0=w0, steps=steps, on_divergence="stop")
    return bool(rec.diverged or np.linalg.norm(rec.w) > np.linalg.norm(w0))


def usam_edge(h_diag, rho):
    """The learning rate where USAM starts to diverge, found by bisection on escapes()."""
    lo, hi = 0.0, 10.0 / max(h_diag)      # USAM converges at lo and escapes at hi
    ...  # your code: halve [lo, hi] until hi - lo < 1e-4 * hi
    return hi


h, rho = np.array([10.0, 1.0]), 0.1
edge = usam_edge(h, rho)
lam = h.max()
print(f"bisected edge {edge:.6f}; USAM's formula 2 / (lam (1 + rho lam)) = "
      f"{2 / (lam * (1 + rho * lam)):.6f}; GD's 2 / lam = {2 / lam:.6f}")

check("05.1", usam_edge)
'''

# ------------------------------------------------------------------------------ 05.2

# (g, g_adv): the tutorial's quadratic (g_adv = (I + rho H) g), a sign flip between the
# two gradients, one coordinate, a long vector, scales from 1e-3 to 1e5 and a g_adv much
# shorter than g. A right norm alone (e.g. returning g) fails on the direction.
_RESCALE_CASES = [
    ([10.0, 1.0], [20.0, 1.1]),
    ([3.0, -4.0], [-1.0, 2.0]),
    ([2.5], [-0.75]),
    ([0.1 * k - 0.7 for k in range(13)], [0.3 - 0.05 * k * k for k in range(13)]),
    ([1e-3, 2e-3, -5e-4], [4e5, -1e5, 2e5]),
    ([7.0, 0.0, -1.0, 2.0], [1e-2, 3e-2, 0.0, -2e-2]),
]


def _rescale_exact(g, g_adv):
    """g_adv * ||g|| / ||g_adv|| to 50 significant digits, rounded to floats."""
    n2 = sum(F(x) ** 2 for x in g)
    a2 = sum(F(x) ** 2 for x in g_adv)
    with localcontext() as ctx:
        ctx.prec = 50
        ratio = (Decimal(n2.numerator) / Decimal(n2.denominator)
                 / (Decimal(a2.numerator) / Decimal(a2.denominator))).sqrt()
        return np.array([float(Decimal(x) * ratio) for x in g_adv])


def _check_rescale(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function ssam_rescale(g, g_adv) -> array, got "
                             f"{type(answer).__name__} {answer!r}")
    worst = 0.0
    for g, g_adv in _RESCALE_CASES:
        d = len(g)
        got = answer(np.array(g), np.array(g_adv))
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            raise AssertionError(f"ssam_rescale should return an array of {d} floats, got "
                                 f"{type(got).__name__} {got!r}") from None
        if got.shape != (d,):
            raise AssertionError(f"ssam_rescale(g, g_adv) with {d} coordinates returned shape "
                                 f"{got.shape}; expected ({d},), one value per coordinate")
        want = _rescale_exact(g, g_adv)
        # Tolerance per coordinate: the two norms (d squares and d - 1 additions, then a
        # square root) err by at most (d/2 + 1) u each, u = eps/2; their ratio by about
        # (d + 3) u, and the product with g_adv_i adds u: (d + 4) u = (d/2 + 2) eps. We
        # allow (d + 6) eps |want_i|, as the tutorial does for the norm (claim SSAM-norm).
        tol = (d + 6) * EPS * np.abs(want)
        if not np.all(np.isfinite(got)) or np.any(np.abs(got - want) > tol):
            k = int(np.argmax(~np.isfinite(got) | (np.abs(got - want) > tol)))
            hint = "the rescale is g_adv * ||g|| / ||g_adv|| with Euclidean norms"
            if np.allclose(got, np.array(g), rtol=1e-12, atol=0):
                hint = ("that is g itself: it has the right length, but StableSAM keeps "
                        "SAM's direction g_adv and changes only its length")
            elif np.isclose(np.linalg.norm(got), 1.0, rtol=1e-12):
                hint = "a unit vector: multiply by ||g|| too"
            elif np.allclose(got, want, rtol=1e-5, atol=0):
                hint = ("close, but not to a few eps: compute in float64 throughout (no "
                        "float32), with the Euclidean norms")
            elif not np.isclose(np.linalg.norm(got), np.linalg.norm(g), rtol=1e-9):
                hint = (f"its length is {np.linalg.norm(got):.6g}, but it must be ||g|| = "
                        f"{np.linalg.norm(g):.6g} (L2 norms, not squared, not L1)")
            raise AssertionError(
                f"for g = {g}, g_adv = {g_adv}: coordinate {k} is {float(got[k])!r}, expected "
                f"{float(want[k])!r} (to {d + 6} eps relative): " + hint)
        rel = np.abs(got - want) / np.abs(np.where(want == 0, 1.0, want))
        worst = max(worst, float(rel.max() / EPS))
    return (f"ssam_rescale equals g_adv ||g|| / ||g_adv|| (computed with exact squared norms "
            f"and a 50-digit square root) on {len(_RESCALE_CASES)} pairs, 1 to 13 "
            f"coordinates, within (d + 6) eps per coordinate (worst {worst:.2f} eps).")


_RESCALE_STARTER = '''\
import numpy as np

import refimpl as r
from refimpl.exercises import check


def ssam_rescale(g, g_adv):
    """StableSAM's descent gradient: g_adv rescaled to the length of g."""
    ...  # your code
    return g_adv


# On the tutorial's quadratic f = w^T diag(10, 1) w / 2 with rho = 0.1, at w = (1, 1):
H, rho, w = np.diag([10.0, 1.0]), 0.1, np.array([1.0, 1.0])
g = H @ w
g_adv = H @ (w + rho * g)
mine = ssam_rescale(g, g_adv)
print("g =", g, " g_adv =", g_adv, " rescaled =", mine)
print("||rescaled|| =", np.linalg.norm(mine), " ||g|| =", np.linalg.norm(g))

# refimpl's StableSAM takes the step -lr * (its rescaled gradient): compare
opt = r.StableSAM(r.SGD(lr=1.0), rho=rho, eps=0.0)
w_new, _, _ = opt.step(w, opt.init(w), r.Quadratic(H).grad_fn(None))
print("refimpl's rescaled gradient:", w - w_new)

check("05.2", ssam_rescale)
'''

# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="05.1",
        title="Find USAM's edge by bisection",
        text=r"""On $f(w) = \frac{1}{2} w^\top H w$ with $H = \operatorname{diag}(h_1, \dots, h_d)$,
USAM (SAM with the unnormalized ascent $e = \rho\, g$) is predicted to be stable exactly
for

$$
\eta < \frac{2}{\lambda_{\max} (1 + \rho \lambda_{\max})},
$$

not for gradient descent's $\eta < 2 / \lambda_{\max}$. Check it on real runs.

Write `usam_edge(h_diag, rho)`, which bisects the learning rate on the event "after
$T = 2000$ steps from $w_0 = (1, \dots, 1)$, $\|w_T\| > \|w_0\|$" (the starter's
`escapes`, which runs `refimpl.SAM(..., ascent="unnormalized")`) until the bracket's
relative width is below $10^{-4}$, and returns the upper end. Print it beside both
formulas for $H = \operatorname{diag}(10, 1)$, $\rho = 0.1$, then hand the function to
`check("05.1", usam_edge)`.

The checker calls it on four quadratics (the tutorial's, a 3-dimensional one, a large
$\rho$ and a stiff one) and compares with the formula, computed exactly: it accepts a
relative difference up to $5 \cdot 10^{-3}$. A correct bisection lands within
$4 \cdot 10^{-4}$: below the bound USAM shrinks every coordinate, so the event cannot
happen, and at $\eta = b (1 + \delta)$ the sharp coordinate grows at least like
$e^{T \delta}$, which passes $\|w_0\| = \sqrt{d}$ once $\delta > \frac{\ln d}{2T}$.

*Hint:* at $w + \rho g$ the gradient is $H (I + \rho H)\, w$, so USAM is gradient
descent with the curvatures $\lambda (1 + \rho \lambda)$.""",
        starter=_EDGE_STARTER,
        checker=_check_edge,
    ),
    Exercise(
        id="05.2",
        title="StableSAM's rescale",
        text=r"""StableSAM steps in SAM's direction $g_{\text{adv}} = \nabla f(w + e)$ but
with the length of $g = \nabla f(w)$:

$$
g_{\text{ssam}} = g_{\text{adv}}\, \frac{\|g\|}{\|g_{\text{adv}}\|}
\qquad \text{(Euclidean norms)}.
$$

Write `ssam_rescale(g, g_adv)` for NumPy vectors (you may assume $g_{\text{adv}} \ne 0$).
The starter compares it with `refimpl.StableSAM` at one point of the tutorial's quadratic.
Hand the function to `check("05.2", ssam_rescale)`.

The checker calls it on six pairs of vectors (1 to 13 coordinates, scales from $10^{-3}$
to $10^{5}$, a $g_{\text{adv}}$ pointing against $g$) and compares every coordinate with
the rescale computed from exact squared norms and a 50-digit square root. It allows
$(d + 6)\, \varepsilon$ relative error per coordinate, the rounding of two
$d$-term norms, their ratio and one product (the allowance of the tutorial's claim
**SSAM-norm**).

*Hint:* having the right length is not enough: $g$ itself has it too.""",
        starter=_RESCALE_STARTER,
        checker=_check_rescale,
    ),
    Exercise(
        id="05.3",
        title="Which saddles attract USAM, and StableSAM in one dimension",
        text=r"""1. On $f = \frac{1}{2} (x^2 + \lambda y^2)$ with $\lambda < 0$, USAM multiplies
   $y$ by $1 - \eta\, \lambda (1 + \rho \lambda)$ per step. With $\rho = 0.1$ and
   $\eta = 0.05$, find the exact interval of $\lambda$ where the saddle attracts $y$
   (multiplier of modulus below 1). Compare with the tutorial: its grid stops at
   $\lambda = -25$, and $\lambda = -30$ overshoots.
2. Show that for any $\rho > 0$ and $\eta > 0$ this interval is nonempty and lies left
   of $-1/\rho$: strong negative curvature attracts, but not arbitrarily strong.
3. In one dimension, on $f = \frac{\lambda}{2} w^2$ with $\lambda > 0$, show that
   StableSAM's step is exactly gradient descent's (claim **SSAM-1d** of
   [proofs/sam.md](../proofs/sam.md)). Why does that not settle the tutorial's
   two-dimensional claim that StableSAM's stable range is GD's?

*Hint:* for 1, solve $0 < \eta \lambda (1 + \rho \lambda) < 2$, two quadratic
inequalities in $\lambda$.""",
    ),
]
