r"""Reference solutions of tutorial 03's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (a worked answer in
Markdown for 03.3, which is answered on paper); MISTAKES lists, per checked exercise,
answers a student plausibly writes, each of which its checker rejects.
"""

from __future__ import annotations

import math

# ------------------------------------------------------------------------------ 03.1


def scale_run(lr, batch_size, decay, steps, kappa):
    """The EMA Scaling Rule for SGD: kappa times the batch and the learning rate, the
    decay to the power kappa, and kappa times fewer steps (the same samples)."""
    return kappa * lr, kappa * batch_size, decay ** kappa, steps // kappa


def _decay_kept(lr, batch_size, decay, steps, kappa):
    """Mistake: only SGD's linear rule, the EMA's decay kept."""
    return kappa * lr, kappa * batch_size, decay, steps // kappa


def _first_order_decay(lr, batch_size, decay, steps, kappa):
    """Mistake: 1 - kappa (1 - decay), the rule to first order only."""
    return kappa * lr, kappa * batch_size, 1 - kappa * (1 - decay), steps // kappa


def _inverse_power(lr, batch_size, decay, steps, kappa):
    """Mistake: the power the wrong way round (a slower EMA for fewer steps)."""
    return kappa * lr, kappa * batch_size, decay ** (1 / kappa), steps // kappa


def _square_root_lr(lr, batch_size, decay, steps, kappa):
    """Mistake: Adam's square-root rule for the learning rate."""
    return math.sqrt(kappa) * lr, kappa * batch_size, decay ** kappa, steps // kappa


def _steps_kept(lr, batch_size, decay, steps, kappa):
    """Mistake: the same number of steps (kappa times the samples)."""
    return kappa * lr, kappa * batch_size, decay ** kappa, steps


def _float_steps(lr, batch_size, decay, steps, kappa):
    """Mistake: the length as a float (steps / kappa), not a count."""
    return kappa * lr, kappa * batch_size, decay ** kappa, steps / kappa


# ------------------------------------------------------------------------------ 03.2


def first_order_coefficient(alpha, kappa):
    r"""(1 - alpha eta)^kappa = 1 - kappa alpha eta + kappa (kappa - 1) / 2 alpha^2 eta^2
    - ..., so (1 - rho^kappa) / (kappa eta) = alpha - (kappa - 1) / 2 alpha^2 eta + O(eta^2)."""
    return -(kappa - 1) * alpha**2 / 2


def _wrong_sign(alpha, kappa):
    return (kappa - 1) * alpha**2 / 2


def _kappa_not_kappa_minus_one(alpha, kappa):
    return -kappa * alpha**2 / 2


def _missing_half(alpha, kappa):
    return -(kappa - 1) * alpha**2


def _not_divided(alpha, kappa):
    """Mistake: the eta^2 coefficient of 1 - rho^kappa, not divided by kappa."""
    return -kappa * (kappa - 1) * alpha**2 / 2


def _in_floats(alpha, kappa):
    """Mistake: the right value as a float (not exact, so not comparable)."""
    return float(-(kappa - 1) * alpha**2 / 2)


# ------------------------------------------------------------------------------ 03.3

_BREAKDOWN = r"""**1.** With $e_n = w_n - w^*$ the step is
$e_{n+1} = a\, e_n - \eta\, \xi_n$ with $a = 1 - \eta h$ and $\xi_n$ independent of
$e_n$, of variance $\sigma^2 = c / B$. Taking variances,
$V_{n+1} = a^2 V_n + \eta^2 \sigma^2$. A fixed point exists and attracts iff $a^2 < 1$,
i.e. $0 < \eta h < 2$, and then

$$
V = \frac{\eta^2 \sigma^2}{1 - a^2} = \frac{\eta^2 \sigma^2}{\eta h (2 - \eta h)}
= \frac{\eta\, c}{B\, h\, (2 - \eta h)} .
$$

For $a^2 \ge 1$ the variance grows without bound ($a^2 = 1$: linearly, by
$\eta^2 \sigma^2$ per step).

**2.** In $V(\kappa \eta, \kappa B)$ the factor $\frac{\eta}{B}$ is unchanged, so only
$2 - \eta h$ becomes $2 - \kappa \eta h$:

$$
\frac{V(\kappa \eta, \kappa B)}{V(\eta, B)} = \frac{2 - \eta h}{2 - \kappa \eta h}
= 1 + \frac{(\kappa - 1)\, \eta h}{2 - \kappa \eta h} .
$$

It is at most $1.1$ iff $(\kappa - 1) \eta h \le 0.1\, (2 - \kappa \eta h)$, i.e.
$\kappa \eta h \le \frac{0.2 + \eta h}{1.1}$. For $\eta h = 0.1$ that is
$\kappa \le \frac{0.3}{0.11} \approx 2.7$: already at $\kappa = 3$ the steady-state
variance is $\frac{1.9}{1.7} \approx 1.12$ times the base run's. The rule matches the
*trajectory* to first order in $\kappa \eta$, and the steady state is where that first
order shows (at $\kappa = 10$ the tutorial measures $1.9$).

**3.** The EMA reads $w$ but never feeds back into it (it is a model EMA): the pair
$(w, \bar w)$ evolves by a block-triangular map whose eigenvalues are those of SGD,
$1 - \kappa \eta h_i$, and $\rho^\kappa$. If $w$ diverges, its average, a weighted
sum of the $w_n$, diverges with it. Stability needs $|1 - \kappa \eta h_i| < 1$ for
every $i$, i.e. $\kappa \eta h_{\max} < 2$: with $\eta = 0.1$ and $h_{\max} = 1$,
$\kappa < 20$, so $\kappa = 19$ is the largest stable one ($h = 0.3$ allows
$\kappa \le 66$ and does not bind), as the tutorial's spectral radius shows."""


SOLUTIONS = {
    "03.1": scale_run,
    "03.2": first_order_coefficient,
    "03.3": _BREAKDOWN,
}

MISTAKES = {
    "03.1": [_decay_kept, _first_order_decay, _inverse_power, _square_root_lr, _steps_kept,
             _float_steps],
    "03.2": [_wrong_sign, _kappa_not_kappa_minus_one, _missing_half, _not_divided,
             _in_floats],
}
