r"""Reference solutions of tutorial 06's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (a worked answer in
Markdown for 06.3, which is answered on paper); MISTAKES lists, per checked exercise,
answers a student plausibly writes, each of which its checker rejects.
"""

from __future__ import annotations

from refimpl import filters


# ------------------------------------------------------------------------------ 06.1

def tema_lag(b1, b3, b4):
    r"""m1 lags L(b1), m2 = EMA_b3(m1) lags L(b1) + L(b3), m3 lags L(b1) + L(b3) + L(b4)
    (lags add along a chain); the weights 3, -3, 1 sum to 1, so the output lags

        3 L(b1) - 3 (L(b1) + L(b3)) + (L(b1) + L(b3) + L(b4)) = L(b1) - 2 L(b3) + L(b4).

    (Writing 1/(1 - b) for the lag also passes: it is L(b) + 1, and the constant cancels
    because 1 - 2 + 1 = 0.) At b1 = 9/10: the defaults lag 9 - 2 + 1 = 8 steps, the
    paper's configs 9 - 6/7 + 7/3 = 220/21 = 10.48; the TEMA lags less than EMA_b1 iff
    L(b4) < 2 L(b3).
    """
    return b1 / (1 - b1) - 2 * b3 / (1 - b3) + b4 / (1 - b4)


def _parallel_lags(b1, b3, b4):
    """Mistake: each EMA's own lag, as if all three smoothed the input."""
    return 3 * b1 / (1 - b1) - 3 * b3 / (1 - b3) + b4 / (1 - b4)


def _last_ema_lag(b1, b3, b4):
    """Mistake: the lag of m3 alone."""
    return b1 / (1 - b1) + b3 / (1 - b3) + b4 / (1 - b4)


def _swapped(b1, b3, b4):
    """Mistake: b3 and b4 exchanged."""
    return b1 / (1 - b1) - 2 * b4 / (1 - b4) + b3 / (1 - b3)


def _in_floats(b1, b3, b4):
    """Mistake: the right value through refimpl's float helper (not exact)."""
    return filters.tema_lag(float(b1), float(b3), float(b4))


# ------------------------------------------------------------------------------ 06.2

def tema_step(m, x, b1, b3, b4):
    """One TEMA step: the three EMAs in order, each reading its predecessor's new value."""
    m1, m2, m3 = m
    m1 = b1 * m1 + (1 - b1) * x
    m2 = b3 * m2 + (1 - b3) * m1
    m3 = b4 * m3 + (1 - b4) * m2
    return (m1, m2, m3), 3 * m1 - 3 * m2 + m3


def _stale_chain(m, x, b1, b3, b4):
    """Mistake: m2 and m3 read the previous step's m1 and m2."""
    m1, m2, m3 = m
    return (b1 * m1 + (1 - b1) * x, b3 * m2 + (1 - b3) * m1, b4 * m3 + (1 - b4) * m2), \
        3 * (b1 * m1 + (1 - b1) * x) - 3 * (b3 * m2 + (1 - b3) * m1) + (b4 * m3 + (1 - b4) * m2)


def _parallel(m, x, b1, b3, b4):
    """Mistake: three EMAs of the input instead of a chain."""
    m1, m2, m3 = m
    m1 = b1 * m1 + (1 - b1) * x
    m2 = b3 * m2 + (1 - b3) * x
    m3 = b4 * m3 + (1 - b4) * x
    return (m1, m2, m3), 3 * m1 - 3 * m2 + m3


def _dema_output(m, x, b1, b3, b4):
    """Mistake: the DEMA combination 2 m1 - m2."""
    (m1, m2, m3), _ = tema_step(m, x, b1, b3, b4)
    return (m1, m2, m3), 2 * m1 - m2


def _b3_b4_swapped(m, x, b1, b3, b4):
    """Mistake: b4 for the second EMA, b3 for the third."""
    return tema_step(m, x, b1, b4, b3)


def _y_only(m, x, b1, b3, b4):
    """Mistake: returns only the output, not the pair (state, output)."""
    return tema_step(m, x, b1, b3, b4)[1]


# ------------------------------------------------------------------------------ 06.3

_FIRST_STEP = r"""**1.** From the zero state, one step on the input 1 gives $m_1 = 1 - b_1$,
$m_2 = (1 - b_3)(1 - b_1)$, $m_3 = (1 - b_4)(1 - b_3)(1 - b_1)$, so

$$
\mathrm{TEMA}_1(1) = (1 - b_1)\left[3 - 3 (1 - b_3) + (1 - b_3)(1 - b_4)\right]
= (1 - b_1)\left[3 b_3 + (1 - b_3)(1 - b_4)\right],
$$

and dividing by $1 - b_1^1 = 1 - b_1$ leaves $R_1 = 3 b_3 + (1 - b_3)(1 - b_4)$, with no
$b_1$ in it. Defaults: $1.5 + 0.25 = 1.75$; paper: $0.9 + 0.7 \cdot 0.3 = 1.11$; these are
the tutorial's printed "defaults: R_1" (1.7500) and "paper configs: R_1" (1.1100).

**2.** $R_1 - 1 = 3 b_3 + 1 - b_3 - b_4 + b_3 b_4 - 1 = 2 b_3 - b_4 (1 - b_3)$, which is
positive iff $b_4 < \frac{2 b_3}{1 - b_3} = 2 L(b_3)$. For $0 \le b_4 < 1$,
$L(b_4) = \frac{b_4}{1 - b_4} \ge b_4$, so $L(b_4) < 2 L(b_3)$ implies $b_4 < 2 L(b_3)$:
a TEMA that lags less than $\operatorname{EMA}_{b_1}$ always overshoots at step 1. The
converse is false: the paper's configs lag *more* ($L(0.7) = \frac{7}{3} > 2 L(0.3) =
\frac{6}{7}$) and still overshoot at step 1, since $0.7 < \frac{6}{7}$ ($R_1 = 1.11$).

**3.** With $b_3 = b_4 = 0$ the chain copies: $m_2 = m_1$, $m_3 = m_2 = m_1$, and the
TEMA is $3 m_1 - 3 m_1 + m_1 = m_1$, Adam's first moment. On the constant input 1,
$m_1 = 1 - b_1^t$ exactly, so $R_t = 1$ at every $t$: the correction $1 - b_1^t$ is the
exact one for a single EMA, and FAME is Adam (claim FAME-adam)."""


SOLUTIONS = {
    "06.1": tema_lag,
    "06.2": tema_step,
    "06.3": _FIRST_STEP,
}

MISTAKES = {
    "06.1": [_parallel_lags, _last_ema_lag, _swapped, _in_floats],
    "06.2": [_stale_chain, _parallel, _dema_output, _b3_b4_swapped, _y_only],
}
