r"""Exercises of tutorial 03 (the EMA Scaling Rule).

03.1 (checked) applies the rule to a whole run, hyperparameters and length; 03.2 (checked)
finds the first-order error of the EMA's clock under the rule, the term that makes the
rule a first-order statement; 03.3 (on paper) derives where the rule breaks down.

Both checkers compute their expected values in exact rational arithmetic
(:class:`fractions.Fraction`), independently of the answer, and compare with equality:
03.1 feeds only dyadic numbers with few significant bits, on which ``kappa * lr`` and
``decay ** kappa`` are exact in float64 (verified at import), so a correct answer gives
exactly the rational value whether it uses ``**`` or a loop of products; 03.2 asks for a
closed form that returns an exact Fraction.
"""

from __future__ import annotations

import numbers
from fractions import Fraction as F

import numpy as np

from refimpl.exercises import Exercise

__all__ = ["EXERCISES"]


def _exact(x, what: str) -> F:
    """A number returned by the student as an exact Fraction (floats convert exactly)."""
    if isinstance(x, np.ndarray) and x.size == 1:
        x = x.reshape(()).item()
    if isinstance(x, np.floating):
        x = float(x)
    elif isinstance(x, np.integer):
        x = int(x)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise AssertionError(f"{what} should be a number, got {type(x).__name__} {x!r}")
    if isinstance(x, float) and not np.isfinite(x):
        raise AssertionError(f"{what} is {x}")
    return F(x)


def _integer(x, what: str) -> int:
    """A count returned by the student: an int (or numpy integer), nothing else."""
    if isinstance(x, np.integer):
        x = int(x)
    if isinstance(x, bool) or not isinstance(x, int):
        raise AssertionError(
            f"{what} should be an int (a count), got {type(x).__name__} {x!r}"
            + ("; use integer division, //" if isinstance(x, (float, np.floating)) else ""))
    return x


# ------------------------------------------------------------------------------ 03.1

# (lr, batch_size, decay, steps, kappa): dyadic lr and decay with few significant bits, so
# that kappa * lr and decay ** kappa (at most 7 * 7 = 49 bits) are exact in float64, and
# steps divisible by kappa. They cover kappa = 1 (nothing changes), an odd kappa, a decay
# near 1 (127/128: where 1 - kappa (1 - decay) is close to decay ** kappa) and a small one.
_RUN_CASES = [
    (0.03125, 4, 0.9375, 160, 4),
    (0.125, 32, 0.875, 1000, 8),
    (0.0078125, 128, 0.9921875, 3000, 3),
    (0.25, 1, 0.5, 50, 5),
    (0.0625, 16, 0.984375, 700, 7),
    (0.046875, 64, 0.96875, 90, 2),
    (0.5, 8, 0.75, 12, 1),
]


def _rule_exact(lr, batch_size, decay, steps, kappa):
    """The scaled run, exactly: (kappa lr, kappa B, decay^kappa, steps / kappa)."""
    assert steps % kappa == 0
    return F(lr) * kappa, batch_size * kappa, F(decay) ** kappa, steps // kappa


def _verify_exact():
    """The premise of the 03.1 checker: every expected value is a float64 (so a correct
    float computation, by ** or by repeated products, is exact), and the first-order
    form 1 - kappa (1 - decay) differs from decay ** kappa wherever kappa > 1."""
    for lr, batch_size, decay, steps, kappa in _RUN_CASES:
        want_lr, _, want_decay, _ = _rule_exact(lr, batch_size, decay, steps, kappa)
        assert F(kappa * lr) == want_lr and F(decay ** kappa) == want_decay
        product = 1.0
        for _ in range(kappa):
            product *= decay
        assert F(product) == want_decay
        assert kappa == 1 or F(1 - kappa * (1 - decay)) != want_decay


_verify_exact()  # at import: a checker built on a false premise fails loudly


def _run_hint(lr, batch_size, decay, steps, kappa, got):
    """What a wrong scaled run most likely did, for the message."""
    g_lr, g_batch, g_decay, g_steps = got
    lr, decay = F(lr), F(decay)
    if (g_lr, g_batch, g_decay, g_steps) == (lr, batch_size, decay, steps):
        return "this is the base run unchanged: every one of the four must be scaled"
    if g_decay == decay:
        return ("the decay was kept: the scaled run takes kappa times fewer steps, so an "
                "EMA that forgets 1 - decay per step forgets kappa times too slowly per "
                "sample; raise the decay to the power kappa")
    if g_decay == 1 - kappa * (1 - decay):
        return ("1 - kappa (1 - decay) is the rule only to first order; the rule is "
                "decay ** kappa: kappa steps of decay rho toward a fixed target are one "
                "step of rho^kappa")
    if g_decay != decay ** kappa:
        return ("the decay: kappa base steps of the EMA multiply the old average by "
                "rho^kappa, so the scaled run's decay is decay ** kappa (smaller than decay)")
    if g_lr == lr:
        return "the learning rate was kept: SGD's linear scaling rule multiplies it by kappa"
    if g_lr != lr * kappa:
        return ("the learning rate: SGD's rule is linear, lr * kappa (the square root is "
                "the rule for Adam)")
    if g_batch != batch_size * kappa:
        return "the batch size is multiplied by kappa"
    return ("the length: the scaled run sees kappa times more samples per step, so it "
            "takes steps // kappa steps to see the same number of samples")


def _check_scale_run(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function scale_run(lr, batch_size, decay, steps, "
                             f"kappa), got {type(answer).__name__} {answer!r}")
    for case in _RUN_CASES:
        out = answer(*case)
        if not isinstance(out, (tuple, list)) or len(out) != 4:
            raise AssertionError("scale_run should return the tuple (lr, batch_size, decay, "
                                 f"steps); for {case} it returned {out!r}")
        got = (_exact(out[0], "lr"), _integer(out[1], "batch_size"), _exact(out[2], "decay"),
               _integer(out[3], "steps"))
        want = _rule_exact(*case)
        if got != want:
            raise AssertionError(
                f"scale_run(lr={case[0]}, batch_size={case[1]}, decay={case[2]}, "
                f"steps={case[3]}, kappa={case[4]}) returned "
                f"({float(got[0])!r}, {got[1]}, {float(got[2])!r}, {got[3]}), expected "
                f"({float(want[0])!r}, {want[1]}, {float(want[2])!r}, {want[3]}): "
                + _run_hint(*case, got))
    return (f"scale_run returns (kappa lr, kappa B, decay^kappa, steps / kappa) exactly on "
            f"{len(_RUN_CASES)} runs with kappa from 1 to 8, e.g. decay 0.875 at kappa = 8 "
            f"becomes 0.875^8 = {0.875 ** 8:.6f}, not the first-order 1 - 8 (1 - 0.875) = 0.")


_RUN_STARTER = '''\
import refimpl as r
from refimpl.exercises import check
from refimpl.scaling import scale_optimizer


def scale_run(lr, batch_size, decay, steps, kappa):
    """SGD with a model EMA, scaled by the EMA Scaling Rule for a kappa times larger batch:
    return (lr, batch_size, decay, steps) of the run that sees the same samples."""
    ...  # your code
    return lr, batch_size, decay, steps


# Compare with refimpl's own rule (it scales an optimizer, not the batch or the length):
print(scale_run(0.025, 4, 0.9625, 160, 4))
print(scale_optimizer(r.EMA(r.SGD(lr=0.025), decay=0.9625), 4))

check("03.1", scale_run)
'''

# ------------------------------------------------------------------------------ 03.2

# (alpha, kappa): the tutorial's alpha = 3/2 first, kappa = 1 (no error), fractions and
# integers of both sizes.
_RATE_CASES = [
    (F(3, 2), 4),
    (F(3, 2), 1),
    (F(1, 3), 8),
    (F(2), 2),
    (F(5, 7), 3),
    (F(1, 10), 16),
    (F(7, 4), 5),
]


def _rate_exact(alpha, kappa):
    r"""The coefficient c of eta in (1 - (1 - alpha eta)^kappa) / (kappa eta), exactly.

    By the binomial theorem 1 - (1 - x)^kappa = sum_{j >= 1} (-1)^(j+1) C(kappa, j) x^j
    with x = alpha eta; divided by kappa eta, the eta^1 term is the j = 2 term:
    -C(kappa, 2) alpha^2 / kappa. Computed from the binomial coefficient, not from the
    simplified form a student is asked to find.
    """
    from math import comb

    return -F(comb(kappa, 2)) * alpha**2 / kappa


_RATE_DIAGNOSES = [
    (lambda alpha, kappa: (kappa - 1) * alpha**2 / 2,
     "the sign: (1 - x)^kappa = 1 - kappa x + C(kappa, 2) x^2 - ..., so 1 - rho^kappa "
     "falls short of kappa alpha eta and the scaled EMA forgets slightly too slowly"),
    (lambda alpha, kappa: -(kappa - 1) * alpha / 2,
     "a factor alpha is missing: the second-order term of (1 - alpha eta)^kappa carries "
     "alpha^2"),
    (lambda alpha, kappa: -kappa * alpha**2 / 2,
     "C(kappa, 2) / kappa is (kappa - 1) / 2, not kappa / 2 (the coefficient must vanish at "
     "kappa = 1, where the rule changes nothing)"),
    (lambda alpha, kappa: -(kappa - 1) * alpha**2,
     "C(kappa, 2) = kappa (kappa - 1) / 2: a factor 1/2 is missing"),
    (lambda alpha, kappa: -kappa * (kappa - 1) * alpha**2 / 2,
     "you found the coefficient of eta^2 in 1 - rho^kappa; divide by kappa eta first"),
    (lambda alpha, kappa: alpha / kappa - alpha,
     "that is the error of keeping rho (rate alpha / kappa), which does not vanish as "
     "eta -> 0; with the rule the rate is alpha + c eta"),
]


def _check_rate(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function first_order_coefficient(alpha, kappa), "
                             f"got {type(answer).__name__} {answer!r}")
    got_all = []
    for alpha, kappa in _RATE_CASES:
        got = answer(alpha, kappa)
        if isinstance(got, np.integer):
            got = int(got)
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (F, int)):
            raise AssertionError(
                f"first_order_coefficient(alpha={alpha}, kappa={kappa}) returned "
                f"{type(got).__name__} {got!r}; with a Fraction alpha and an int kappa the "
                "closed form should return an exact Fraction: use only +, -, *, / and ** "
                "with integer exponents (no float(), math.pow or numpy)")
        got_all.append(F(got))
    wrong = [(case, got) for case, got in zip(_RATE_CASES, got_all) if got != _rate_exact(*case)]
    if wrong:
        (alpha, kappa), got = wrong[0]
        want = _rate_exact(alpha, kappa)
        hint = ("expand (1 - alpha eta)^kappa to second order in eta (binomial theorem), "
                "subtract from 1 and divide by kappa eta")
        for formula, text in _RATE_DIAGNOSES:
            if all(g == formula(*case) for case, g in zip(_RATE_CASES, got_all)):
                hint = text
                break
        raise AssertionError(
            f"for alpha = {alpha}, kappa = {kappa} the coefficient is {want} = "
            f"{float(want):.6g}, yours is {got} = {float(got):.6g}: " + hint)
    a, k = _RATE_CASES[0]
    return (f"first_order_coefficient(alpha, kappa) equals the eta^1 coefficient of "
            f"(1 - (1 - alpha eta)^kappa) / (kappa eta), from the binomial theorem, exactly on "
            f"{len(_RATE_CASES)} cases; for the tutorial's alpha = {a}, kappa = {k} it is "
            f"{_rate_exact(a, k)}: at lr = 0.025 the scaled EMA's rate is about "
            f"{float(a + _rate_exact(a, k) * F(1, 40)):.4f} instead of {float(a)}.")


_RATE_STARTER = '''\
from fractions import Fraction as F

from refimpl.exercises import check


def first_order_coefficient(alpha, kappa):
    """c in (1 - rho^kappa) / (kappa eta) = alpha + c eta + O(eta^2), rho = 1 - alpha eta."""
    ...  # your closed form (only +, -, *, / and ** with integer exponents)
    return 0


# A numerical look first: the error of the rate, divided by eta, as eta shrinks
alpha, kappa = F(3, 2), 4
for eta in (F(1, 10), F(1, 100), F(1, 1000)):
    rho = 1 - alpha * eta
    rate = (1 - rho**kappa) / (kappa * eta)
    print(f"eta = {float(eta):<6}  (rate - alpha) / eta = {float((rate - alpha) / eta):.6f}")

check("03.2", first_order_coefficient)
'''

# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="03.1",
        title="Scale a whole run",
        text=r"""A run is SGD with learning rate $\eta$ and batch size $B$, a model EMA of
decay $\rho$, and a length of $n$ steps. Write `scale_run(lr, batch_size, decay, steps,
kappa)` that returns the tuple `(lr, batch_size, decay, steps)` of the run that the EMA
Scaling Rule prescribes for a batch $\kappa$ times larger and that sees the *same number
of samples*: the run whose step $j$ matches the base run's step $\kappa j$. Assume
`steps` is divisible by `kappa`; return the two counts as `int`.

The starter prints your answer beside `refimpl.scaling.scale_optimizer`, which applies
the rule to the optimizer alone. Hand the function to `check("03.1", scale_run)`.

The checker calls it on several runs with $\kappa$ from 1 to 8 and compares with the rule
computed in exact rationals. Its learning rates and decays have few binary digits (like
$0.875$), so $\kappa \eta$ and $\rho^\kappa$ are exact in floating point and the
comparison is equality.

*Hint:* $\kappa$ EMA steps of decay $\rho$ toward the same weights shrink the old
average by $\rho^\kappa$ (claim EMA-compose of [proofs/ema.md](../proofs/ema.md)). Is
$1 - \kappa(1 - \rho)$ the same thing?""",
        starter=_RUN_STARTER,
        checker=_check_scale_run,
    ),
    Exercise(
        id="03.2",
        title="The EMA's clock under the rule, to first order",
        text=r"""Measured in training time $t = \eta \cdot \text{steps}$, an EMA with
$\rho = 1 - \alpha \eta$ forgets at the rate $\frac{1 - \rho}{\eta} = \alpha$. The scaled
run takes steps of $\kappa \eta$ with decay $\rho^\kappa$, so its rate is
$\frac{1 - \rho^\kappa}{\kappa \eta}$. Show that

$$
\frac{1 - \rho^\kappa}{\kappa \eta} = \alpha + c\, \eta + O(\eta^2)
$$

and find $c$ as a function of $\alpha$ and $\kappa$. Write it as
`first_order_coefficient(alpha, kappa)`, using only `+`, `-`, `*`, `/` and `**` with
integer exponents, so that with a `Fraction` $\alpha$ and an integer $\kappa$ it returns
an exact `Fraction`: the checker compares it, exactly, on several $(\alpha, \kappa)$
with the coefficient read off the binomial theorem.

This $c\, \eta$ is why the rule is first order: with it the scaled EMA follows the same
SDE up to $O(\kappa \eta)$, the gap that halves with $\eta$ in the tutorial. Keeping
$\rho$ instead gives the rate $\alpha / \kappa$, wrong by a constant.

*Hint:* the starter prints $(\text{rate} - \alpha) / \eta$ for shrinking $\eta$; expand
$(1 - \alpha \eta)^\kappa$ to second order.""",
        starter=_RATE_STARTER,
        checker=_check_rate,
    ),
    Exercise(
        id="03.3",
        title="Where the rule must break",
        text=r"""Take one direction of the NQM with curvature $h$ and gradient-noise
variance $\sigma^2 = c / B$, SGD without momentum at learning rate $\eta$.

1. Show that the stationary variance of $w$ is
   $V(\eta, B) = \frac{\eta\, c}{B\, h\, (2 - \eta h)}$ for $0 < \eta h < 2$, and that
   the run has no stationary distribution otherwise.
2. Deduce that the rule's scaled run has
   $\frac{V(\kappa \eta, \kappa B)}{V(\eta, B)} = \frac{2 - \eta h}{2 - \kappa \eta h}$.
   From which $\kappa$ on does the rule change the steady-state variance by more than
   10%, for the tutorial's $\eta = 0.1$, $h = 1$?
3. The EMA is a stable filter whatever $\rho^\kappa$ is. Explain why it cannot rescue the
   scaled run once $\kappa \eta h \ge 2$, and find the largest stable $\kappa$ for
   $\eta = 0.1$ and curvatures $h \in \{1, 0.3\}$.

*Hint:* $w_{n+1} - w^* = (1 - \eta h)(w_n - w^*) - \eta \xi_n$; take variances.""",
    ),
]
