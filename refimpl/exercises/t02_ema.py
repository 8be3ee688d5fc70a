r"""Exercises of tutorial 02 (EMA of the weights: lag versus variance, warm-up, debiasing).

02.1 (checked) asks for the lag of the debiased zero-start EMA on a ramp, 02.2 (checked)
for its variance on white noise, both in closed form at a finite step $t$; 02.3 (on
paper) computes how long an average remembers $w_0$.

Both checkers run the EMA itself in exact rational arithmetic (:class:`fractions.Fraction`)
on the inputs they test, independently of the answer, and compare with equality: the
answer is a closed form that returns an exact Fraction when called with Fractions.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np

from refimpl.exercises import Exercise

__all__ = ["EXERCISES"]

# decays and steps tested: rho = 1/2 (short memory) to 999/1000, t = 1 (the first update)
# to several memory lengths
_RHOS = [F(1, 2), F(3, 4), F(9, 10), F(99, 100), F(999, 1000)]
_STEPS = [1, 2, 3, 10, 100, 400]


def _closed_form_result(answer, name, t, rho):
    """answer(t, rho) as an exact Fraction, or an AssertionError saying what was wrong."""
    got = answer(t, rho)
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (F, int, np.integer)):
        raise AssertionError(
            f"{name}(t={t}, rho={rho}) returned {type(got).__name__} {got!r}; called with a "
            "Fraction rho the closed form should return an exact Fraction: use only +, -, *, "
            "/ and ** with integer exponents (no float(), math.pow or numpy)")
    return F(int(got)) if isinstance(got, np.integer) else F(got)


def _first_wrong(answer, name, expected, diagnoses):
    """Compare answer(t, rho) with expected(t, rho) on the grid; raise with a hint."""
    if not callable(answer):
        raise AssertionError(f"expected the function {name}(t, rho), got "
                             f"{type(answer).__name__} {answer!r}")
    cases = [(t, rho) for rho in _RHOS for t in _STEPS]
    got = {case: _closed_form_result(answer, name, *case) for case in cases}
    want = {case: expected(*case) for case in cases}
    wrong = [case for case in cases if got[case] != want[case]]
    if not wrong:
        return len(cases)
    t, rho = wrong[0]
    hint = diagnoses[-1][1]
    for formula, text in diagnoses[:-1]:
        if all(got[case] == formula(*case) for case in cases):
            hint = text
            break
    raise AssertionError(
        f"{name}(t={t}, rho={rho}) = {float(got[(t, rho)]):.10g}, but the EMA run in exact "
        f"arithmetic gives {float(want[(t, rho)]):.10g}: {hint}")


# ------------------------------------------------------------------------------ 02.1

def _debiased_lag_exact(t, rho):
    """t - m_hat_t for the ramp x_k = k, from the EMA run in rationals."""
    m, product = F(0), F(1)
    for k in range(1, t + 1):
        m = rho * m + (1 - rho) * k
        product *= rho
    return t - m / (1 - product)


def _check_debiased_lag(answer) -> str:
    L = lambda rho: rho / (1 - rho)  # noqa: E731 (the steady-state lag)
    diagnoses = [
        (lambda t, rho: L(rho) * (1 - rho**t),
         "that is the raw (biased) EMA's lag, L (1 - rho^t); divide m_t by 1 - rho^t first"),
        (lambda t, rho: L(rho),
         "that is the steady-state lag L = rho/(1 - rho); at finite t the debiased EMA lags "
         "less (at t = 1 it is x_1 itself: no lag)"),
        (lambda t, rho: L(rho) - rho**t / (1 - rho**t),
         "close: dividing t - L (1 - rho^t) by 1 - rho^t leaves t / (1 - rho^t), not "
         "1 / (1 - rho^t)"),
        (None, "write m_t = t - L (1 - rho^t) (the tutorial's ramp lag), divide it by "
               "1 - rho^t and subtract the result from t"),
    ]
    n = _first_wrong(answer, "debiased_lag", _debiased_lag_exact, diagnoses)
    lag_now = float(_debiased_lag_exact(10, F(99, 100)))
    raw_now = float(F(99, 100) / F(1, 100) * (1 - F(99, 100) ** 10))
    return (f"debiased_lag(t, rho) equals t - m_t / (1 - rho^t) for the ramp x_k = k, run in "
            f"exact arithmetic, at all {n} pairs of t in {_STEPS} and rho in "
            f"{[str(r) for r in _RHOS]}. Debiasing cuts the early lag: at rho = 0.99, t = 10 "
            f"it is {lag_now:.3f} steps against the raw EMA's {raw_now:.3f}.")


_LAG_STARTER = '''\
from fractions import Fraction as F

from refimpl.exercises import check


def debiased_lag(t, rho):
    """t - m_hat_t: the lag of the debiased zero-start EMA behind the ramp x_k = k after
    t updates (m_hat_t = m_t / (1 - rho^t))."""
    ...  # your closed form (only +, -, *, / and ** with integer exponents)
    return rho / (1 - rho)


# a first look: the lag after 1, 10, 100 and 1000 updates at rho = 0.99
print([float(debiased_lag(t, F(99, 100))) for t in (1, 10, 100, 1000)])

check("02.1", debiased_lag)
'''

# ------------------------------------------------------------------------------ 02.2

def _debiased_variance_exact(t, rho):
    """Var(m_hat_t) for independent unit-variance inputs, by running the update: m_t =
    rho m_(t-1) + (1 - rho) x_t with x_t independent of m_(t-1) gives Var(m_t) =
    rho^2 Var(m_(t-1)) + (1 - rho)^2; the debiased average divides m_t by 1 - P_t (P_t the
    product of the t decays), its variance by (1 - P_t)^2."""
    var, product = F(0), F(1)
    for _ in range(t):
        var = rho * rho * var + (1 - rho) ** 2
        product *= rho
    return var / (1 - product) ** 2


def _check_debiased_variance(answer) -> str:
    raw = lambda t, rho: (1 - rho) ** 2 * (1 - rho ** (2 * t)) / (1 - rho**2)  # noqa: E731
    diagnoses = [
        (raw, "that is the raw EMA's variance; the debiased EMA is m_t / (1 - rho^t), so its "
              "variance is divided by (1 - rho^t)^2"),
        (lambda t, rho: raw(t, rho) / (1 - rho**t),
         "dividing a random variable by a constant c divides its variance by c^2: here "
         "(1 - rho^t)^2, not 1 - rho^t"),
        (lambda t, rho: (1 - rho) / (1 + rho),
         "that is the stationary variance; at finite t the debiased EMA averages fewer "
         "inputs (at t = 1 it is x_1 itself: variance 1)"),
        (None, "the debiased EMA is the sum over j of w_j x_j with weights "
               "w_j = (1 - rho) rho^(t-j) / (1 - rho^t); its variance is the sum of w_j^2, a "
               "geometric sum"),
    ]
    n = _first_wrong(answer, "debiased_variance", _debiased_variance_exact, diagnoses)
    early = float(_debiased_variance_exact(10, F(99, 100)))
    stationary = float(F(1, 100) / F(199, 100))
    return (f"debiased_variance(t, rho) equals the variance of the debiased zero-start EMA, "
            f"computed in exact arithmetic by running its update, at all {n} "
            f"pairs of t in {_STEPS} and rho in {[str(r) for r in _RHOS]}. Debiasing fixes the "
            f"mean, not the noise: at rho = 0.99, t = 10 the variance is {early:.4f}, "
            f"{early / stationary:.0f} times the stationary {stationary:.4f}.")


_VARIANCE_STARTER = '''\
from fractions import Fraction as F

import numpy as np

from refimpl import filters
from refimpl.exercises import check


def debiased_variance(t, rho):
    """Var(m_t / (1 - rho^t)) after t updates of a zero-start EMA of independent inputs of
    variance 1."""
    ...  # your closed form (only +, -, *, / and ** with integer exponents)
    return (1 - rho) / (1 + rho)


# a Monte Carlo look: 20000 noise series, debiased after t = 10 updates at rho = 0.99
x = np.random.default_rng(0).standard_normal((20000, 10))
m_hat = np.array([filters.ema(row, 0.99)[-1] for row in x]) / (1 - 0.99**10)
print("sample variance", m_hat.var(), " your formula", float(debiased_variance(10, F(99, 100))))

check("02.2", debiased_variance)
'''

# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="02.1",
        title="The lag of the debiased EMA",
        text=r"""The tutorial shows that the zero-start EMA of the ramp $x_k = k$ lags by
$t - m_t = L\,(1 - \rho^t)$ after $t$ updates, with $L = \frac{\rho}{1 - \rho}$. optax's
debiased average reports $\hat m_t = \frac{m_t}{1 - \rho^t}$ instead.

Find the lag $t - \hat m_t$ of the debiased average in closed form and write it as
`debiased_lag(t, rho)`. Use only `+`, `-`, `*`, `/` and `**` with integer exponents, so
that with a `Fraction` decay it returns an exact `Fraction`: the checker calls it for
several $t$ and $\rho$ and compares, exactly, with the EMA of the ramp run in rational
arithmetic. Then compare with $L\,(1 - \rho^t)$: which average lags less early on, and what
does each give at $t = 1$?

*Hint:* substitute $m_t = t - L\,(1 - \rho^t)$ and simplify; the result is $L$ minus a
term that vanishes as $t \to \infty$.""",
        starter=_LAG_STARTER,
        checker=_check_debiased_lag,
    ),
    Exercise(
        id="02.2",
        title="The price of debiasing: early noise",
        text=r"""Feed the zero-start EMA independent inputs of variance 1. The tutorial's
variance of $m_t$ is $\frac{(1 - \rho)^2 (1 - \rho^{2t})}{1 - \rho^2}$. Find the variance
of the debiased average $\hat m_t = \frac{m_t}{1 - \rho^t}$ in closed form and write it
as `debiased_variance(t, rho)` (exact with `Fraction` arguments, as in 02.1). The starter
prints a Monte Carlo estimate next to your formula; the checker compares, exactly, with
the variance obtained by running the EMA's update in rational arithmetic
($\operatorname{Var}(m_t) = \rho^2 \operatorname{Var}(m_{t-1}) + (1 - \rho)^2$, then the
division by $1 - \rho^t$).

Check your formula at $t = 1$ (what is $\hat m_1$?) and as $t \to \infty$. Together with
02.1 this is the lag-variance trade-off of the tutorial once more: debiasing removes the
pull toward 0 and most of the early lag, and pays with early noise.

*Hint:* $\operatorname{Var}(c X) = c^2 \operatorname{Var}(X)$, and
$1 - \rho^{2t} = (1 - \rho^t)(1 + \rho^t)$.""",
        starter=_VARIANCE_STARTER,
        checker=_check_debiased_variance,
    ),
    Exercise(
        id="02.3",
        title="How long is w0 remembered?",
        text=r"""A copy-started EMA keeps $w_0$ with weight $P_t$, the product of the decays
used so far.

1. Without warm-up, $P_t = \rho^t$. For $\rho = 0.999$, after how many steps is $w_0$'s
   weight below 1%? Give the exact step and the rule of thumb in units of
   $\frac{1}{1 - \rho}$, and compare with the number the tutorial prints.
2. With the constant warm-up ($q = 0.9$, $T = 1000$, so the decay is $q\rho$ for the
   first $T + 1$ steps), answer the same question. Does the answer depend on $T$?
3. Why is $w_0$'s weight exactly 0 after one step of timm's warm-up, for every $\rho$?

*Hint:* solve $P_t < 0.01$ with logarithms, and use $-\ln \rho \approx 1 - \rho$ for
$\rho$ near 1.""",
    ),
]
