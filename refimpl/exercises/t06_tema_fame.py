r"""Exercises of tutorial 06 (TEMA lag and FAME).

06.1 (checked) asks for the steady-state lag of FAME's mixed-decay TEMA as an exact
rational; 06.2 (checked) writes one step of the TEMA filter; 06.3 (on paper) finds FAME's
first step on a constant gradient and relates its overshoot to the lag.

Expected values are computed independently of the answer. 06.1: the lag is the first
moment $\sum_k k\, h_k = H'(1)$ of the impulse response, and the checker evaluates the
transfer function $H = 3 E_1 - 3 E_1 E_3 + E_1 E_3 E_4$, $E_b(s) = (1 - b) / (1 - b s)$,
at $s = 1 + \epsilon$ in exact dual-number arithmetic over :class:`fractions.Fraction`
(no lag formula is assumed). 06.2: refimpl's tested filter ``refimpl.filters.tema``, with
the rounding allowance of claim TEMA-poly in ``proofs/tema_fame.md``.
"""

from __future__ import annotations

import numbers
from fractions import Fraction as F

import numpy as np

from refimpl.exercises import Exercise

__all__ = ["EXERCISES"]

EPS = float(np.finfo(np.float64).eps)

# ------------------------------------------------------------------------------ 06.1

# decays tested: 0 (no smoothing), the code defaults' 1/2, the paper's 3/10 and 7/10,
# 9/10, a long memory 999/1000 and 1/3: every triple (b1, b3, b4), 343 in all, among them
# the equal decays (lag 0), b3 = b4 = 0 (FAME = Adam: lag L(b1)) and both FAME configs.
_DECAYS = [F(0), F(1, 3), F(1, 2), F(3, 10), F(7, 10), F(9, 10), F(999, 1000)]


class _Dual:
    """a + b eps with eps^2 = 0, exact: f(1 + eps) = f(1) + f'(1) eps."""

    def __init__(self, a, b=F(0)):
        self.a, self.b = F(a), F(b)

    def __add__(self, other):
        other = other if isinstance(other, _Dual) else _Dual(other)
        return _Dual(self.a + other.a, self.b + other.b)

    __radd__ = __add__

    def __sub__(self, other):
        other = other if isinstance(other, _Dual) else _Dual(other)
        return _Dual(self.a - other.a, self.b - other.b)

    def __rsub__(self, other):
        return _Dual(other) - self

    def __mul__(self, other):
        other = other if isinstance(other, _Dual) else _Dual(other)
        return _Dual(self.a * other.a, self.a * other.b + self.b * other.a)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = other if isinstance(other, _Dual) else _Dual(other)
        return _Dual(self.a / other.a, (self.b * other.a - self.a * other.b) / other.a**2)

    def __rtruediv__(self, other):
        return _Dual(other) / self


def _tema_lag_exact(b1, b3, b4) -> F:
    """H'(1) for the TEMA's transfer function H = 3 E1 - 3 E1 E3 + E1 E3 E4."""
    s = _Dual(1, 1)                                  # s = 1 + eps
    e1, e3, e4 = ((1 - b) / (1 - b * s) for b in (b1, b3, b4))
    h = 3 * e1 - 3 * e1 * e3 + e1 * e3 * e4
    assert h.a == 1, "the TEMA passes constants: H(1) = 1"
    return h.b


def _exact_result(answer, b1, b3, b4) -> F:
    got = answer(b1, b3, b4)
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (F, int, np.integer)):
        raise AssertionError(
            f"tema_lag({b1}, {b3}, {b4}) returned {type(got).__name__} {got!r}; called with "
            "Fraction decays it should return an exact Fraction: use only +, -, * and / on "
            "the decays (no float(), numpy or refimpl.filters, which work in floats)")
    return F(int(got)) if isinstance(got, np.integer) else F(got)


def _check_tema_lag(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function tema_lag(b1, b3, b4), got "
                             f"{type(answer).__name__} {answer!r}")
    L = lambda b: b / (1 - b)  # noqa: E731 (an EMA's lag, for the hints only)
    diagnoses = [
        (lambda b1, b3, b4: 3 * L(b1) - 3 * L(b3) + L(b4),
         "that weighs the three EMAs' own lags 3, -3, 1 as if each smoothed the input; but "
         "m2 smooths m1 and m3 smooths m2, so their lags are L(b1) + L(b3) and "
         "L(b1) + L(b3) + L(b4)"),
        (lambda b1, b3, b4: L(b1) + L(b3) + L(b4),
         "that is the lag of m3 alone; the output is the combination 3 m1 - 3 m2 + m3"),
        (lambda b1, b3, b4: L(b1) - 2 * L(b4) + L(b3),
         "b3 and b4 are swapped: b3 is the decay of the second EMA (m2), b4 of the third"),
        (None, "the lag of a combination with weights summing to 1 is the same combination "
               "of the lags; find the lags of m1, m2 and m3 first (lags add along a chain)"),
    ]
    cases = [(b1, b3, b4) for b1 in _DECAYS for b3 in _DECAYS for b4 in _DECAYS]
    got = {case: _exact_result(answer, *case) for case in cases}
    want = {case: _tema_lag_exact(*case) for case in cases}
    wrong = [case for case in cases if got[case] != want[case]]
    if wrong:
        b1, b3, b4 = wrong[0]
        hint = diagnoses[-1][1]
        for formula, text in diagnoses[:-1]:
            if all(got[case] == formula(*case) for case in cases):
                hint = text
                break
        raise AssertionError(
            f"tema_lag({b1}, {b3}, {b4}) = {got[wrong[0]]} ({float(got[wrong[0]]):.6g}), but "
            f"the first moment of the TEMA's impulse response is {want[wrong[0]]} "
            f"({float(want[wrong[0]]):.6g}): {hint}")
    paper = want[F(9, 10), F(3, 10), F(7, 10)]
    defaults = want[F(9, 10), F(1, 2), F(1, 2)]
    return (f"tema_lag(b1, b3, b4) equals the TEMA's first moment H'(1), computed exactly from "
            f"its transfer function, at all {len(cases)} triples of decays in "
            f"{[str(b) for b in _DECAYS]}. At b1 = 9/10 the code defaults (1/2, 1/2) lag "
            f"{defaults} steps and the paper's configs (3/10, 7/10) {paper} = "
            f"{float(paper):.3f} steps, against Adam's EMA's 9.")


_LAG_STARTER = '''\
from fractions import Fraction as F

import numpy as np

from refimpl import filters
from refimpl.exercises import check


def tema_lag(b1, b3, b4):
    """Steady-state lag (in steps, on a ramp) of the TEMA 3 m1 - 3 m2 + m3 with
    m1 = EMA_b1(x), m2 = EMA_b3(m1), m3 = EMA_b4(m2)."""
    ...  # your closed form (only +, -, * and / on the decays)
    return b1 / (1 - b1)


# the code defaults and the paper's configs at b1 = 0.9, against Adam's EMA (9 steps)
for b3, b4 in ((F(1, 2), F(1, 2)), (F(3, 10), F(7, 10))):
    print(f"b3 = {b3}, b4 = {b4}: lag {tema_lag(F(9, 10), b3, b4)}")

# a measurement on a long ramp, in floats (the zero-start transient has died out)
ramp = np.arange(1.0, 2001.0)
print("measured at 0.9/0.3/0.7:", ramp[-1] - filters.tema(ramp, 0.9, 0.3, 0.7)[-1])

check("06.1", tema_lag)
'''

# ------------------------------------------------------------------------------ 06.2

# decay triples: equal decays, the code defaults, the paper's configs, a long memory with
# mixed decays, and b3 = b4 = 0 (the TEMA is then m1 itself); swapping b3 and b4 or
# reusing b1 changes the output on every mixed triple.
_STEP_DECAYS = [(0.9, 0.9, 0.9), (0.9, 0.5, 0.5), (0.9, 0.3, 0.7), (0.99, 0.6, 0.95),
                (0.5, 0.0, 0.0)]


def _step_signals():
    rng = np.random.default_rng(2006)
    t = np.arange(1, 301, dtype=np.float64)
    impulse = np.zeros(120)
    impulse[0] = 1.0
    return {"white noise": rng.standard_normal(300),
            "ramp x_t = t": t,
            "step": np.concatenate([np.zeros(40), np.ones(160)]),
            "impulse": impulse}


def _as_float(v, what: str) -> float:
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(()).item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating)):
        raise AssertionError(f"{what} should be a number, got {type(v).__name__} {v!r}")
    return float(v)


def _run_student(answer, x, b1, b3, b4) -> np.ndarray:
    m = (0.0, 0.0, 0.0)
    out = np.empty(len(x))
    for k, xk in enumerate(x):
        res = answer(m, float(xk), b1, b3, b4)
        if not (isinstance(res, tuple) and len(res) == 2):
            raise AssertionError(
                "tema_step(m, x, b1, b3, b4) should return a pair (m_new, y): the new state "
                f"(m1, m2, m3) and the output; got {type(res).__name__} {res!r}")
        m_new, y = res
        try:
            m_new = tuple(m_new)
        except TypeError:
            raise AssertionError(f"the new state should be (m1, m2, m3), got {m_new!r}") from None
        if len(m_new) != 3:
            raise AssertionError(f"the new state should have 3 entries (m1, m2, m3), got "
                                 f"{len(m_new)}: {m_new!r}")
        m = tuple(_as_float(v, "each entry of the state") for v in m_new)
        out[k] = _as_float(y, "the output y")
    return out


def _variants(x, b1, b3, b4) -> dict:
    """Plausible wrong filters, to name the mistake in the hint."""
    def chain(decays, combine, old_m1=False, parallel=False):
        m1 = m2 = m3 = 0.0
        y = np.empty(len(x))
        for k, xk in enumerate(x):
            prev1, prev2 = m1, m2
            m1 = decays[0] * m1 + (1 - decays[0]) * xk
            src2 = xk if parallel else (prev1 if old_m1 else m1)
            m2 = decays[1] * m2 + (1 - decays[1]) * src2
            src3 = xk if parallel else (prev2 if old_m1 else m2)
            m3 = decays[2] * m3 + (1 - decays[2]) * src3
            y[k] = combine(m1, m2, m3)
        return y

    tema = lambda a, b, c: 3 * a - 3 * b + c  # noqa: E731
    return {
        "m2 and m3 are updated from the previous step's m1 and m2; each EMA of the chain "
        "must use the value its predecessor has just computed (m1 first, then m2, then m3)":
            chain((b1, b3, b4), tema, old_m1=True),
        "your three EMAs all smooth the input x; in the chain m2 smooths m1 and m3 smooths m2":
            chain((b1, b3, b4), tema, parallel=True),
        "that is the DEMA 2 m1 - m2; the TEMA is 3 m1 - 3 m2 + m3":
            chain((b1, b3, b4), lambda a, b, c: 2 * a - b),
        "b3 and b4 are swapped: b3 is the second EMA's decay, b4 the third's":
            chain((b1, b4, b3), tema),
        "all three EMAs use b1; FAME's chain uses b1, b3, b4":
            chain((b1, b1, b1), tema),
        "the output is the raw combination 3 m1 - 3 m2 + m3, not a debiased one":
            chain((b1, b3, b4), tema) / (1 - b1 ** np.arange(1, len(x) + 1)),
    }


def _check_tema_step(answer) -> str:
    from refimpl import filters

    if not callable(answer):
        raise AssertionError("expected the function tema_step(m, x, b1, b3, b4) -> (m_new, y), "
                             f"got {type(answer).__name__} {answer!r}")
    worst, n = 0.0, 0
    for name, x in _step_signals().items():
        scale = float(np.max(np.abs(x)))
        for b1, b3, b4 in _STEP_DECAYS:
            got = _run_student(answer, x, b1, b3, b4)
            want = filters.tema(x, b1, b3, b4)
            # Allowance (claim TEMA-poly, proofs/tema_fame.md): each EMA's rounding error is
            # damped by its decay and stays below 3 u max|x| / (1 - b), u = eps/2; along the
            # chain and through the weights 3, 3, 1 both implementations stay within the
            # proofs' 80 eps max|x| / (1 - b_max), whatever the order of their operations
            # (b m + (1 - b) x or m + (1 - b)(x - m)). The mistakes below differ by O(max|x|).
            tol = 80 * EPS * scale / (1 - max(b1, b3, b4))
            dev = np.abs(got - want)
            if not np.all(np.isfinite(got)) or np.any(dev > tol):
                k = int(np.argmax(~np.isfinite(got) | (dev > tol)))
                hint = ("a TEMA step updates m1 = b1 m1 + (1 - b1) x, then m2 from the new "
                        "m1 with b3, then m3 from the new m2 with b4, and outputs "
                        "3 m1 - 3 m2 + m3")
                for text, y in _variants(x, b1, b3, b4).items():
                    if np.all(np.abs(got - y) <= tol):
                        hint = text
                        break
                raise AssertionError(
                    f"on the {name} signal with (b1, b3, b4) = ({b1}, {b3}, {b4}), from the "
                    f"zero state: output {k + 1} is {float(got[k])!r}, refimpl.filters.tema "
                    f"gives {float(want[k])!r} (allowed difference {tol:.1e}): {hint}")
            worst = max(worst, float(dev.max() / (EPS * scale)))
            n += 1
    return (f"tema_step, run from the zero state, reproduces refimpl.filters.tema on {n} "
            f"(signal, decays) pairs (white noise, a ramp, a step and an impulse; equal, "
            f"default, paper and b3 = b4 = 0 decays) within 80 eps max|x| / (1 - b_max); the "
            f"largest difference was {worst:.3g} eps max|x|.")


_STEP_STARTER = '''\
import numpy as np

from refimpl import filters
from refimpl.exercises import check


def tema_step(m, x, b1, b3, b4):
    """One step of FAME's TEMA filter. m = (m1, m2, m3) is the state (zeros at the start),
    x the new input. Returns (m_new, y): the new state and the output 3 m1 - 3 m2 + m3."""
    m1, m2, m3 = m
    ...  # your code: update m1, then m2, then m3
    return (m1, m2, m3), x


# run it on a ramp and compare with refimpl's filter
x = np.arange(1.0, 201.0)
m, ys = (0.0, 0.0, 0.0), []
for xk in x:
    m, y = tema_step(m, xk, 0.9, 0.5, 0.5)
    ys.append(y)
print("last outputs (yours):  ", np.round(ys[-3:], 6))
print("last outputs (refimpl):", np.round(filters.tema(x, 0.9, 0.5, 0.5)[-3:], 6))

check("06.2", tema_step)
'''

# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="06.1",
        title="The lag of FAME's TEMA, exactly",
        text=r"""FAME's first moment is the TEMA $3 m_1 - 3 m_2 + m_3$ of the chain
$m_1 = \operatorname{EMA}_{b_1}(g)$, $m_2 = \operatorname{EMA}_{b_3}(m_1)$,
$m_3 = \operatorname{EMA}_{b_4}(m_2)$. An EMA with decay $b$ lags a ramp by
$L(b) = \frac{b}{1 - b}$ steps.

Find the TEMA's steady-state lag on a ramp as a function of $(b_1, b_3, b_4)$ and write it
as `tema_lag(b1, b3, b4)`, using only `+`, `-`, `*` and `/` so that with `Fraction`
decays it returns an exact `Fraction`. Hand the function to `check("06.1", tema_lag)`:
the checker compares it, exactly, with the first moment $\sum_k k\, h_k$ of the TEMA's
impulse response, which it computes from the transfer function at all 343 triples of
seven decays (including 0, the code defaults and the paper's configs).

Then use it: at $b_1 = 0.9$, do the code defaults $(0.5, 0.5)$ and the paper's
$(0.3, 0.7)$ lag less or more than Adam's EMA (9 steps)? For which $(b_3, b_4)$ does the
TEMA lag less than the EMA with decay $b_1$ alone?

*Hint:* lags add along a chain ($m_2$ lags by $L(b_1) + L(b_3)$), and a combination
whose weights sum to 1 lags by the same combination of lags.""",
        starter=_LAG_STARTER,
        checker=_check_tema_lag,
    ),
    Exercise(
        id="06.2",
        title="A TEMA filter, one step at a time",
        text=r"""Write one step of FAME's TEMA filter on a scalar signal:
`tema_step(m, x, b1, b3, b4)` takes the state $m = (m_1, m_2, m_3)$ and the new input
$x$, updates

$$
m_1 \leftarrow b_1 m_1 + (1 - b_1)\, x, \qquad
m_2 \leftarrow b_3 m_2 + (1 - b_3)\, m_1, \qquad
m_3 \leftarrow b_4 m_3 + (1 - b_4)\, m_2
$$

in this order (each EMA reads the value its predecessor has just computed), and returns
`(m_new, y)` with the output $y = 3 m_1 - 3 m_2 + m_3$ (no bias correction). Hand the
function to `check("06.2", tema_step)`.

The checker runs it from the zero state on four signals (white noise, a ramp, a step, an
impulse) with five decay triples and compares every output with `refimpl.filters.tema`.
It allows $80\, \varepsilon \max|x| / (1 - b_{\max})$, the rounding allowance of claim
[TEMA-poly](../proofs/tema_fame.md#claim-tema-poly): any order of the floating-point
operations passes, a different filter does not.

Then feed it the ramp $x_t = t$ at $(0.9, 0.5, 0.5)$: does $x_t - y_t$ settle at the lag
you found in 06.1?

*Hint:* the order of the three updates matters; with $b_3 = b_4 = 0$ your filter must
reduce to the EMA $m_1$.""",
        starter=_STEP_STARTER,
        checker=_check_tema_step,
    ),
    Exercise(
        id="06.3",
        title="FAME's first step, by hand",
        text=r"""FAME with the authors' correction divides the TEMA by $1 - b_1^t$. On a
constant gradient its step is $R_t\, \eta$ with
$R_t = \frac{\mathrm{TEMA}_t(1)}{1 - b_1^t}$ (section 3 of the tutorial).

1. Show that $R_1 = 3 b_3 + (1 - b_3)(1 - b_4)$, whatever $b_1$. Evaluate it at the code
   defaults $(b_3, b_4) = (0.5, 0.5)$ and at the paper's $(0.3, 0.7)$, and compare with
   the values the tutorial prints.
2. Show that $R_1 > 1$ iff $b_4 < 2 L(b_3)$, with $L(b) = \frac{b}{1 - b}$. Deduce that
   every $(b_3, b_4)$ whose TEMA lags less than the EMA with decay $b_1$ (06.1:
   $L(b_4) < 2 L(b_3)$) overshoots at the first step. Is the converse true?
3. What is $R_t$ for $b_3 = b_4 = 0$, at every $t$, and why (claim
   [FAME-adam](../proofs/tema_fame.md#claim-fame-adam))?

*Hint:* from the zero state, one step on the input 1 gives $m_1 = 1 - b_1$,
$m_2 = (1 - b_3)\, m_1$ and $m_3 = (1 - b_4)\, m_2$.""",
    ),
]
