r"""Exercises of tutorial 01 (SGD and momentum on quadratics).

01.1 (checked) implements the Keras momentum step and runs it beside PyTorch's convention
through a learning-rate drop; 01.2 (checked) derives the closed form of the gap the drop
opens between the two; 01.3 (on paper) tunes heavy ball for a range of curvatures.

Both checkers compute their expected values in exact rational arithmetic
(:class:`fractions.Fraction`) from the update rules as documented, independently of the
answer, and compare with equality: 01.1 feeds the student's step only dyadic numbers
(few significant bits), on which every float operation is exact, so a correct step gives
exactly the rational value; 01.2 asks for a closed form that returns an exact Fraction.
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
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.floating)):
        raise AssertionError(f"{what} should be a number (a float), got {type(x).__name__} "
                             f"{x!r}")
    if isinstance(x, float) and not np.isfinite(x):
        raise AssertionError(f"{what} is {x}: the step should not overflow on these inputs")
    return F(x)


# ------------------------------------------------------------------------------ 01.1

# (w, v, g, lr, mu): dyadic numbers of a few bits, so that mu * v, lr * g, their
# difference and w + v are all exact in float64 and a correct step returns exactly the
# rational values. They cover the first step (v = 0), a zero gradient (pure decay), mu = 0
# (plain SGD), and signs of every kind.
_STEP_CASES = [
    (1.0, 0.0, 1.0, 0.25, 0.75),
    (0.5, -0.25, 2.0, 0.125, 0.875),
    (-1.5, 0.375, -0.75, 0.0625, 0.5),
    (2.0, 1.0, 0.0, 0.5, 0.9375),
    (0.0, -0.5, 3.0, 0.03125, 0.0),
    (1.25, 0.125, -2.5, 0.25, 0.75),
]

# the schedule run on f(w) = w^2 / 2 (g = w) from w0 = 1, v0 = 0: a drop after step 4
_MU = F(3, 4)
_SCHEDULE = [F(1, 4)] * 4 + [F(1, 32)] * 6


def _keras_exact(w, v, g, lr, mu):
    v = mu * v - lr * g
    return w + v, v


def _trajectories():
    """Exact Keras (w, v) and PyTorch w over _SCHEDULE on f = w^2/2, from w0 = 1."""
    wk, v, wp, b = F(1), F(0), F(1), F(0)
    keras, pytorch = [], []
    for t, lr in enumerate(_SCHEDULE, start=1):
        wk, v = _keras_exact(wk, v, wk, lr, _MU)
        b = wp if t == 1 else _MU * b + wp  # PyTorch: buf = g on the first step
        wp = wp - lr * b
        keras.append((wk, v))
        pytorch.append(wp)
    return keras, pytorch


def _verify_exact():
    """The premise of the 01.1 checker: on its inputs the float step is exact (every
    expected value is a float64), and the exact Keras and PyTorch trajectories agree
    exactly up to the drop and differ from it on. Returns the first step at the new lr."""
    for case in _STEP_CASES:
        for x in _keras_exact(*(F(c) for c in case)):
            assert F(float(x)) == x, case
    keras, pytorch = _trajectories()
    assert all(F(float(x)) == x for pair in keras for x in pair)
    drop = _SCHEDULE.index(_SCHEDULE[-1]) + 1
    same = [t for t in range(1, len(_SCHEDULE) + 1) if keras[t - 1][0] == pytorch[t - 1]]
    assert same == list(range(1, drop)), same
    return drop


_DROP = _verify_exact()  # at import: a checker built on a false premise fails loudly


def _call_step(step, args, where):
    try:
        out = step(*args)
    except TypeError as exc:
        raise AssertionError(f"keras_step{args} raised TypeError ({exc}); it should take "
                             "five numbers (w, v, g, lr, mu)") from None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(f"keras_step should return the pair (w_new, v_new); {where} it "
                             f"returned {out!r}")
    return _exact(out[0], "w_new"), _exact(out[1], "v_new")


def _hint(w, v, g, lr, mu, w_new, v_new):
    """What a wrong (w_new, v_new) most likely did, for the message."""
    if v_new == mu * v + g and w_new == w - lr * v_new:
        return ("this is PyTorch's convention (buffer mu b + g, step -lr b); Keras keeps the "
                "learning rate inside the velocity: v <- mu v - lr g, then w <- w + v")
    if v_new == mu * v - lr * g and w_new == w + v:
        return "w moved by the old velocity: update v first, then add the new v to w"
    if v_new == mu * v + lr * g:
        return "the velocity points uphill: it is v <- mu v - lr g (minus the gradient)"
    if v_new == mu * v - g:
        return ("the learning rate is missing from the velocity: Keras's v carries lr "
                "(v <- mu v - lr g); that is what makes it differ from PyTorch after an lr "
                "change")
    if v_new == mu * v - lr * g and w_new == w - v_new:
        return "the step adds the velocity: w <- w + v (v already points downhill)"
    return "Keras's rule is v <- mu v - lr g, then w <- w + v (with the new v)"


def _check_keras_step(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function keras_step(w, v, g, lr, mu) -> (w_new, "
                             f"v_new), got {type(answer).__name__} {answer!r}")
    for case in _STEP_CASES:
        w, v, g, lr, mu = (F(x) for x in case)
        want_w, want_v = _keras_exact(w, v, g, lr, mu)
        got_w, got_v = _call_step(answer, case, f"for (w, v, g, lr, mu) = {case}")
        if (got_w, got_v) != (want_w, want_v):
            raise AssertionError(
                f"keras_step{case} returned (w, v) = ({float(got_w)!r}, {float(got_v)!r}), "
                f"expected ({float(want_w)!r}, {float(want_v)!r}): "
                + _hint(w, v, g, lr, mu, got_w, got_v))
    keras, pytorch = _trajectories()
    w, v = 1.0, 0.0
    for t, (lr, (want_w, want_v)) in enumerate(zip(_SCHEDULE, keras), start=1):
        w, v = _call_step(answer, (w, v, w, float(lr), float(_MU)), f"at step {t}")
        if (w, v) != (want_w, want_v):
            raise AssertionError(
                f"on f(w) = w^2/2 with lr {[float(x) for x in _SCHEDULE]} and mu = 0.75, step "
                f"{t} gives (w, v) = ({float(w)!r}, {float(v)!r}), expected "
                f"({float(want_w)!r}, {float(want_v)!r}): each step must use only its own "
                "arguments (no state kept between calls)")
        w, v = float(w), float(v)
    gap = keras[-1][0] - pytorch[-1]
    return (f"keras_step is v <- mu v - lr g, w <- w + v exactly on {len(_STEP_CASES)} single "
            f"steps and over a {len(_SCHEDULE)}-step schedule on f(w) = w^2/2 whose lr drops "
            f"from 1/4 to 1/32 at step {_DROP}. In exact arithmetic its trajectory equals "
            f"PyTorch's at steps 1 to {_DROP - 1} and differs from step {_DROP} on "
            f"(w_keras - w_pytorch = {float(gap):.6f} at step {len(_SCHEDULE)}).")


_KERAS_STARTER = '''\
import numpy as np

import refimpl as r
from refimpl.exercises import check


def keras_step(w, v, g, lr, mu):
    """One step of Keras's SGD momentum: return the new (w, v)."""
    ...  # your code: update the velocity v, then the weight w
    return w, v


# Beside PyTorch's convention (refimpl.SGD's default) on f(w) = w^2 / 2, whose gradient is
# g = w, with a learning rate that drops from 0.25 to 0.03125 after 4 steps:
lrs = [0.25] * 4 + [0.03125] * 6
pytorch = r.train(r.Quadratic(np.array([[1.0]])), r.SGD(lr=np.array(lrs), momentum=0.75),
                  w0=np.ones(1), steps=len(lrs), record_params=True).params[1:, 0]
w, v = 1.0, 0.0
for t, (lr, w_pt) in enumerate(zip(lrs, pytorch), start=1):
    w, v = keras_step(w, v, w, lr, 0.75)
    print(f"step {t:2d}  lr {lr:<8}  keras {w:+.8f}  pytorch {w_pt:+.8f}  "
          f"difference {w - w_pt:+.2e}")

check("01.1", keras_step)
'''

# ------------------------------------------------------------------------------ 01.2

# (t, s, lr1, lr2, mu): the tutorial's witness first, then t = s (no gap yet), a rise of
# the lr (the gap changes sign), mu = 0 (no memory, no gap), long runs and large mu.
_GAP_CASES = [
    (2, 1, F(1, 10), F(1, 100), F(9, 10)),
    (3, 3, F(1, 10), F(1, 100), F(9, 10)),
    (5, 2, F(1, 4), F(1, 32), F(3, 4)),
    (10, 3, F(1, 2), F(1, 8), F(1, 2)),
    (4, 1, F(1, 10), F(1, 5), F(9, 10)),
    (6, 2, F(1, 4), F(1, 8), F(0)),
    (40, 25, F(1, 10), F(1, 1000), F(99, 100)),
    (11, 10, F(3, 10), F(1, 10), F(4, 5)),
]


def _gap_exact(t, s, lr1, lr2, mu):
    """w_t(keras) - w_t(pytorch) for g = 1, w0 = 0, lr1 at steps 1..s and lr2 after."""
    wk = wp = v = b = F(0)
    for n in range(1, t + 1):
        lr = lr1 if n <= s else lr2
        v = mu * v - lr * 1
        wk += v
        b = mu * b + 1  # equals g = 1 on the first step (b = 0 before it)
        wp -= lr * b
    return wk - wp


# Wrong closed forms students reach, each with what it missed: an answer equal to one of
# them on every case gets that hint (on one case alone several can coincide).
_GAP_DIAGNOSES = [
    (lambda t, s, a, b, mu: -(a - b) * mu * (1 - mu**s) / (1 - mu) ** 2,
     "that is the limit t -> infinity; after t - s steps at lr2 only the terms "
     "k = 1, ..., t - s of the geometric sum have arrived"),
    (lambda t, s, a, b, mu: -(a - b) * mu * (1 - mu ** (t - s)) / (1 - mu) ** 2,
     "b_s is PyTorch's buffer after s steps of g = 1, 1 + mu + ... + mu^(s-1) = "
     "(1 - mu^s)/(1 - mu), not its limit 1/(1 - mu)"),
    (lambda t, s, a, b, mu: -(a - b) * (1 - mu**s) * (1 - mu ** (t - s + 1)) / (1 - mu) ** 2,
     "the surplus starts one step after the drop: at the first step at lr2 Keras's velocity "
     "is -lr2 b_(s+1) - (lr1 - lr2) mu b_s, so the sum runs over k = 1, ..., t - s"),
    (lambda t, s, a, b, mu: -_gap_exact(t, s, a, b, mu),
     "the sign: after a drop (lr1 > lr2) Keras overshoots, its stored velocity still "
     "carrying the larger lr, so for g = 1 w_keras - w_pytorch < 0"),
]


def _check_gap(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function keras_minus_pytorch(t, s, lr1, lr2, mu), "
                             f"got {type(answer).__name__} {answer!r}")
    got_all = []
    for t, s, lr1, lr2, mu in _GAP_CASES:
        got = answer(t, s, lr1, lr2, mu)
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (F, int, np.integer)):
            raise AssertionError(
                f"keras_minus_pytorch(t={t}, s={s}, lr1={lr1}, lr2={lr2}, mu={mu}) returned "
                f"{type(got).__name__} {got!r}; with Fraction arguments the closed form should "
                "return an exact Fraction: use only +, -, *, / and ** with integer exponents "
                "(no float(), math.pow or numpy)")
        got_all.append(F(int(got)) if isinstance(got, np.integer) else F(got))
    wrong = [(case, got) for case, got in zip(_GAP_CASES, got_all) if got != _gap_exact(*case)]
    if wrong:
        (t, s, lr1, lr2, mu), got = wrong[0]
        want = _gap_exact(t, s, lr1, lr2, mu)
        hint = "sum the surplus velocity -(lr1 - lr2) mu^k b_s over k = 1, ..., t - s"
        if t == s:
            hint = "at t = s both runs have only seen lr1: the gap is 0"
        for formula, text in _GAP_DIAGNOSES:
            if all(g == formula(*case) for case, g in zip(_GAP_CASES, got_all)):
                hint = text
                break
        raise AssertionError(
            f"for t = {t}, s = {s}, lr1 = {lr1}, lr2 = {lr2}, mu = {mu} the gap is "
            f"{want} = {float(want):.6g}, your formula gives {got} = {float(got):.6g}: " + hint)
    return (f"keras_minus_pytorch equals w_t(keras) - w_t(pytorch), run in exact arithmetic, "
            f"on {len(_GAP_CASES)} cases, among them the tutorial's witness "
            f"D_2 = -0.2 - (-0.119) = {_gap_exact(2, 1, F(1, 10), F(1, 100), F(9, 10))}, "
            "t = s, a rise of the lr (the gap changes sign) and mu = 0.")


_GAP_STARTER = '''\
from fractions import Fraction as F

from refimpl.exercises import check


def keras_minus_pytorch(t, s, lr1, lr2, mu):
    """w_t(Keras) - w_t(PyTorch) for g = 1, w_0 = 0, lr1 at steps 1..s, lr2 after (t >= s)."""
    ...  # your closed form (only +, -, *, / and ** with integer exponents)
    return 0


# the tutorial's witness: w_2 = -0.2 (Keras) and -0.119 (PyTorch)
print(keras_minus_pytorch(2, 1, F(1, 10), F(1, 100), F(9, 10)), "should be", F(-81, 1000))

check("01.2", keras_minus_pytorch)
'''

# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="01.1",
        title="Keras momentum, one step at a time",
        text=r"""Keras keeps the learning rate *inside* its velocity: from $v_0 = 0$,

$$
v_t = \mu\, v_{t-1} - \eta_t\, g_t, \qquad w_t = w_{t-1} + v_t ,
$$

while PyTorch keeps a buffer of raw gradients, $b_t = \mu\, b_{t-1} + g_t$ and
$w_t = w_{t-1} - \eta_t\, b_t$.

Write `keras_step(w, v, g, lr, mu)` returning the new pair `(w, v)` for plain numbers.
The starter then runs it beside `refimpl.SGD` (PyTorch's convention) on
$f(w) = \frac{1}{2} w^2$ with a learning rate that drops from $\frac{1}{4}$ to
$\frac{1}{32}$ after 4 steps: look at the printed difference before and after the drop.
Hand the function to `check("01.1", keras_step)`.

The checker calls your step on single steps and over that schedule and compares every
$(w, v)$ with the rule above computed in exact rationals. It feeds only numbers with few
binary digits (like $0.75$ or $0.03125$), on which every floating-point operation is
exact, so the comparison is equality.

*Hint:* at a constant $\eta$, $v_t = -\eta\, b_t$, so the two conventions take the same
steps; after the drop Keras's $v$ still carries the old $\eta$.""",
        starter=_KERAS_STARTER,
        checker=_check_keras_step,
    ),
    Exercise(
        id="01.2",
        title="The gap a learning-rate drop opens",
        text=r"""Take a constant gradient $g = 1$, $w_0 = 0$, momentum $\mu$, the learning
rate $\eta_1$ for the steps $1, \dots, s$ and $\eta_2$ after. Find a closed form for the
gap $D_t = w_t^{\text{Keras}} - w_t^{\text{PyTorch}}$ at $t \ge s$, and write it as
`keras_minus_pytorch(t, s, lr1, lr2, mu)`.

The tutorial's witness is one value: $s = 1$, $\eta_1 = 0.1$, $\eta_2 = 0.01$,
$\mu = 0.9$ gives $D_2 = -0.2 - (-0.119) = -0.081$.

Use only `+`, `-`, `*`, `/` and `**` with integer exponents, so that with `Fraction`
arguments your function returns an exact `Fraction`: the checker calls it with fractions
for several $(t, s, \eta_1, \eta_2, \mu)$ and compares it, exactly, with the two
recursions run in rational arithmetic.

*Hint:* the tutorial shows that $k$ steps after the drop Keras's velocity exceeds the
PyTorch-style one by the surplus $-(\eta_1 - \eta_2)\, \mu^k\, b_s$, where for $g = 1$
the buffer is $b_s = 1 + \mu + \dots + \mu^{s-1}$. The gap in $w$ is the sum of the
surpluses; sum the geometric series.""",
        starter=_GAP_STARTER,
        checker=_check_gap,
    ),
    Exercise(
        id="01.3",
        title="One momentum for many curvatures",
        text=r"""A quadratic has curvatures $h$ anywhere in $[m, L]$, with condition
number $\kappa = L / m$, and heavy ball uses one $\eta$ and one $\mu$ for all of them.

1. Show that the spectral radius of the companion matrix is exactly $\sqrt{\mu}$ for
   every $h$ with $(1 - \sqrt{\mu})^2 \le \eta h \le (1 + \sqrt{\mu})^2$, and larger
   outside that band. (In the stability figure, this is the flat region between the
   dotted curves.)
2. Choose $\eta$ and $\mu$ so that $[\eta m, \eta L]$ is exactly the band, and show that
   the worst radius over $[m, L]$ is then $\frac{\sqrt{\kappa} - 1}{\sqrt{\kappa} + 1}$.
3. Plain gradient descent at its best $\eta$ has worst radius
   $\frac{\kappa - 1}{\kappa + 1}$. For $\kappa = 100$, about how many steps does each
   method need to shrink the error by a factor $e$?

*Hint:* the roots of $z^2 - (1 + \mu - \eta h) z + \mu$ multiply to $\mu$; when they are
real and distinct, one of them is larger than $\sqrt{\mu}$ in modulus.""",
    ),
]
