r"""Reference solutions of tutorial 02's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (a worked answer in
Markdown for 02.3, which is answered on paper); MISTAKES lists, per checked exercise,
answers a student plausibly writes, each of which its checker rejects.
"""

from __future__ import annotations


# ------------------------------------------------------------------------------ 02.1

def debiased_lag(t, rho):
    r"""t - m_t / (1 - rho^t) with m_t = t - L (1 - rho^t), L = rho / (1 - rho):

        t - (t - L (1 - rho^t)) / (1 - rho^t) = L - t rho^t / (1 - rho^t).

    At t = 1 it is L - rho / (1 - rho) = 0 (the debiased average is x_1); it rises to L.
    """
    return rho / (1 - rho) - t * rho**t / (1 - rho**t)


def _raw_lag(t, rho):
    """Mistake: the raw EMA's lag (no debiasing)."""
    return rho / (1 - rho) * (1 - rho**t)


def _steady_lag(t, rho):
    """Mistake: the steady-state lag, for every t."""
    return rho / (1 - rho)


def _lost_t(t, rho):
    """Mistake: t / (1 - rho^t) simplified as if t were 1."""
    return rho / (1 - rho) - rho**t / (1 - rho**t)


def _in_floats_lag(t, rho):
    """Mistake: the right formula in floats (not exact)."""
    return float(debiased_lag(t, rho))


# ------------------------------------------------------------------------------ 02.2

def debiased_variance(t, rho):
    r"""Var(m_t) / (1 - rho^t)^2 with Var(m_t) = (1 - rho)^2 (1 - rho^2t) / (1 - rho^2):
    using 1 - rho^2t = (1 - rho^t)(1 + rho^t) and 1 - rho^2 = (1 - rho)(1 + rho),

        (1 - rho)(1 + rho^t) / ((1 + rho)(1 - rho^t)),

    which is 1 at t = 1 (the average is x_1) and falls to (1 - rho)/(1 + rho).
    """
    return (1 - rho) * (1 + rho**t) / ((1 + rho) * (1 - rho**t))


def _raw_variance(t, rho):
    """Mistake: the raw EMA's variance."""
    return (1 - rho) ** 2 * (1 - rho ** (2 * t)) / (1 - rho**2)


def _not_squared(t, rho):
    """Mistake: the variance divided by 1 - rho^t instead of its square."""
    return _raw_variance(t, rho) / (1 - rho**t)


def _stationary(t, rho):
    """Mistake: the stationary variance, for every t."""
    return (1 - rho) / (1 + rho)


# ------------------------------------------------------------------------------ 02.3

_MEMORY = r"""**1.** $\rho^t < 0.01 \iff t > \frac{\ln 100}{-\ln \rho}$. For $\rho = 0.999$,
$-\ln \rho = 0.0010005$, so $t > 4602.87$: the weight first drops below 1% at step
**4603**, the number the tutorial prints ("steps until w0's weight < 1%"). With
$-\ln \rho \approx 1 - \rho$ the rule of thumb is $t \approx \frac{\ln 100}{1 - \rho}
\approx \frac{4.6}{1 - \rho}$: about 4.6 memory lengths, not one (after one,
$\frac{1}{1 - \rho} = 1000$ steps, $w_0$ still holds $0.999^{1000} \approx e^{-1}
\approx 37\%$).

**2.** While the warm-up lasts, $P_t = (q\rho)^t$ with $q\rho = 0.8991$, and
$-\ln 0.8991 = 0.10636$, so $t > \frac{\ln 100}{0.10636} = 43.3$: below 1% from step
**44** (the tutorial prints the same for the constant warm-up). Since $44 \le T + 1$ the
answer does not depend on $T$ as long as $T \ge 43$; for the linear and exp ramps the
decay stays close to $q\rho$ over the first steps, hence their 45.

**3.** timm's decay at step $n$ is $\min(\rho, 1 - (1 + s)^{-2/3})$ with $s = n - 1$: at
the first step $s = 0$ and the decay is $1 - 1 = 0$, so the first update copies the new
weights, $m_1 = w_1$, and $P_t = 0 \cdot \delta_2 \cdots \delta_t = 0$ for all $t \ge 1$."""


SOLUTIONS = {
    "02.1": debiased_lag,
    "02.2": debiased_variance,
    "02.3": _MEMORY,
}

MISTAKES = {
    "02.1": [_raw_lag, _steady_lag, _lost_t, _in_floats_lag],
    "02.2": [_raw_variance, _not_squared, _stationary],
}
