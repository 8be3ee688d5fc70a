r"""Exercises of tutorial 04 (Switch EMA).

04.1 (checked) writes Switch EMA by hand on a one-dimensional quadratic without noise,
with refimpl's conventions (order of the step, the EMA update and the switch); 04.2
(checked) finds the factor by which one epoch of SEMA shrinks the distance to the
minimum, and compares it with SGD's; 04.3 (on paper) derives Lemma 2 (switching every
step is SGD with a smaller learning rate) and what it costs.

Both checkers compute their expected values in exact rational arithmetic
(:class:`fractions.Fraction`) by running the documented update rules, independently of
the answer, and compare with equality: they call the student's function with Fraction
arguments, on which a function written with plain arithmetic (``+``, ``-``, ``*``,
``/``, ``**`` with integer exponents) returns exact Fractions.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np

from refimpl.exercises import Exercise

__all__ = ["EXERCISES"]


def _exact(x, what: str) -> F:
    """A value the student's function returned for Fraction inputs: must be exact."""
    if isinstance(x, np.integer):
        x = int(x)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (F, int)):
        raise AssertionError(
            f"{what} is {type(x).__name__} {x!r}; with Fraction arguments your function "
            "should return exact Fractions: use only +, -, *, / and ** with integer "
            "exponents (no float(), math functions or numpy arrays of floats)")
    return F(x)


# ------------------------------------------------------------------------------ 04.1

# (w0, lr, h, rho, K, steps) on f(w) = h w^2 / 2: a flat direction over three epochs and a
# part, switching every step (K = 1), a sharp direction (lr h = 3/2, a = -1/2), a run
# shorter than an epoch (no switch: the plain EMA), rho = 0 (the average is w: SGD) and
# the tutorial's rho = 0.99 with K = 10.
_RUN_CASES = [
    (F(1), F(1, 10), F(1), F(9, 10), 3, 10),
    (F(-2), F(1, 2), F(3, 2), F(1, 2), 1, 6),
    (F(5), F(3, 2), F(1), F(9, 10), 4, 12),
    (F(1), F(1, 4), F(1), F(3, 4), 5, 4),
    (F(3), F(1, 5), F(2), F(0), 2, 6),
    (F(1), F(1, 10), F(1), F(99, 100), 10, 25),
]


def _sema_exact(w0, lr, h, rho, K, steps, *, variant="right"):
    """(ws, avgs) of SEMA on f(w) = h w^2 / 2 without noise, refimpl's conventions: after
    step n (from 1) the SGD step w <- w - lr h w, then the EMA update with the new w,
    then, if n % K == 0, the switch w <- avg. The average starts as a copy of w0.
    ``variant`` names a wrong convention, used to diagnose an answer."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for n in range(1, steps + 1):
        w_old = w
        w = w - lr * h * w
        due = (n - 1) % K == 0 if variant == "off_by_one" else n % K == 0
        if variant == "no_switch":
            due = False
        if variant == "switch_first" and due:
            w = avg
        if variant == "swapped":
            avg = (1 - rho) * avg + rho * w
        elif variant == "old_w":
            avg = rho * avg + (1 - rho) * w_old
        else:
            avg = rho * avg + (1 - rho) * w
        if due and variant == "reversed":
            avg = w
        elif due and variant != "switch_first":
            w = avg
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


_RUN_DIAGNOSES = [
    ("no_switch", "there is no switch: after every K-th step (n % K == 0, n counted from "
                  "1) w must be set to the average"),
    ("off_by_one", "the switch comes at the END of each epoch, after steps K, 2K, ... "
                   "(n % K == 0 with n counted from 1), not after steps 1, K + 1, ..."),
    ("switch_first", "the order within a step: first the SGD step, then the EMA update "
                     "with the new w, and only then the switch w <- average"),
    ("reversed", "the switch copies the average INTO the weights (w <- average), not the "
                 "weights into the average"),
    ("swapped", "the EMA update is avg <- rho avg + (1 - rho) w: rho weighs the old "
                "average"),
    ("old_w", "the EMA update uses the weights AFTER this step's SGD update"),
]


def _check_sema_run(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function sema_run(w0, lr, h, rho, K, steps) -> "
                             f"(ws, avgs), got {type(answer).__name__} {answer!r}")
    results = []
    for case in _RUN_CASES:
        out = answer(*case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError("sema_run should return the pair (ws, avgs); for "
                                 f"{case} it returned {out!r}")
        ws, avgs = out
        steps = case[-1]
        for name, seq in (("ws", ws), ("avgs", avgs)):
            if not hasattr(seq, "__len__") or len(seq) != steps + 1:
                raise AssertionError(
                    f"{name} should hold steps + 1 = {steps + 1} values (the start, then the "
                    f"value after each step); for {case} it has "
                    f"{len(seq) if hasattr(seq, '__len__') else type(seq).__name__}")
        results.append(([_exact(x, "an entry of ws") for x in ws],
                        [_exact(x, "an entry of avgs") for x in avgs]))
    for case, (ws, avgs) in zip(_RUN_CASES, results):
        want_ws, want_avgs = _sema_exact(*case)
        if (ws, avgs) == (want_ws, want_avgs):
            continue
        n = next(i for i in range(len(ws)) if (ws[i], avgs[i]) != (want_ws[i], want_avgs[i]))
        hint = ("after step n: w <- w - lr h w; avg <- rho avg + (1 - rho) w; if n % K == 0, "
                "w <- avg; the average starts as a copy of w0")
        if n == 0:
            hint = "ws[0] and avgs[0] are the start: w0 and its copy"
        for variant, text in _RUN_DIAGNOSES:
            if all(res == tuple(_sema_exact(*c, variant=variant))
                   for c, res in zip(_RUN_CASES, results)):
                hint = text
                break
        w0, lr, h, rho, K, steps = case
        raise AssertionError(
            f"for w0 = {w0}, lr = {lr}, h = {h}, rho = {rho}, K = {K}, after step {n} "
            f"(w, avg) should be ({want_ws[n]}, {want_avgs[n]}) = "
            f"({float(want_ws[n]):.6g}, {float(want_avgs[n]):.6g}), yours is "
            f"({ws[n]}, {avgs[n]}): " + hint)
    ws, avgs = _sema_exact(*_RUN_CASES[-1])
    return (f"sema_run matches Switch EMA run in exact arithmetic on {len(_RUN_CASES)} "
            "cases, among them K = 1, a sharp direction (lr h = 3/2), a run shorter than an "
            "epoch and rho = 0; with rho = 0.99, K = 10, lr h = 0.1 the distance to the "
            f"minimum after 20 steps is {float(ws[20]):.4f}, where SGD's is "
            f"{0.9 ** 20:.4f}.")


_RUN_STARTER = '''\
from fractions import Fraction as F

import numpy as np

import refimpl as r
from refimpl.exercises import check


def sema_run(w0, lr, h, rho, K, steps):
    """Switch EMA on f(w) = h w^2 / 2 (no noise): return (ws, avgs), each holding the start
    and then the value after each of the `steps` steps (w after the switch, if any)."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for n in range(1, steps + 1):
        ...  # your code: the SGD step, the EMA update, the switch at the end of an epoch
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


# Beside refimpl's SwitchEMA (in floats), an epoch being K = 3 steps:
rec = r.train(r.Quadratic(np.array([[1.0]])), r.SwitchEMA(r.SGD(lr=0.1), decay=0.9),
              w0=np.array([1.0]), steps=10, steps_per_epoch=3, record_params=True)
ws, avgs = sema_run(F(1), F(1, 10), F(1), F(9, 10), 3, 10)
for n in range(11):
    print(f"step {n:2d}  yours ({float(ws[n]):.6f}, {float(avgs[n]):.6f})  "
          f"refimpl ({rec.params[n, 0]:.6f}, {rec.averages[n, 0]:.6f})")

check("04.1", sema_run)
'''

# ------------------------------------------------------------------------------ 04.2

# (a, rho, K) with a = 1 - lr h: the tutorial's flat direction (a = 0.9, rho = 0.99,
# K = 10), a = rho (where the geometric-series closed form divides by zero), K = 1, a
# sharp direction (a < 0), a = 0 (lr h = 1), a flatter direction than rho, and a = 1
# (h = 0: nothing moves).
_FACTOR_CASES = [
    (F(9, 10), F(99, 100), 10),
    (F(9, 10), F(9, 10), 5),
    (F(1, 2), F(9, 10), 1),
    (F(-1, 2), F(9, 10), 4),
    (F(0), F(1, 2), 3),
    (F(99, 100), F(9, 10), 20),
    (F(1), F(9, 10), 5),
]


def _factor_exact(a, rho, K):
    """The distance to the minimum after one epoch of SEMA without noise, from w = avg = 1:
    K steps w <- a w, each followed by avg <- rho avg + (1 - rho) w, then the switch."""
    w = avg = F(1)
    for _ in range(K):
        w = a * w
        avg = rho * avg + (1 - rho) * w
    return avg


_FACTOR_DIAGNOSES = [
    (lambda a, rho, K: a**K,
     "a^K is what SGD does in K steps; SEMA ends the epoch at the average, not at w"),
    (lambda a, rho, K: rho**K,
     "rho^K is only the weight the average keeps on the start of the epoch; add what it "
     "took in from the K new weights a, a^2, ..., a^K"),
    (lambda a, rho, K: rho**K + (1 - rho) * sum(rho ** (K - 1 - j) * a**j for j in range(K)),
     "the EMA update after step j uses the weights after that step, a^j for j = 1..K, not "
     "a^(j-1)"),
    (lambda a, rho, K: rho**K + sum(rho ** (K - j) * a**j for j in range(1, K + 1)),
     "each new weight enters the average with the factor (1 - rho)"),
]


def _check_factor(answer) -> str:
    if not callable(answer):
        raise AssertionError("expected the function epoch_factor(a, rho, K), got "
                             f"{type(answer).__name__} {answer!r}")
    got_all = []
    for a, rho, K in _FACTOR_CASES:
        try:
            got = answer(a, rho, K)
        except ZeroDivisionError:
            raise AssertionError(
                f"epoch_factor(a={a}, rho={rho}, K={K}) divided by zero: a closed form with "
                "(rho^K - a^K) / (rho - a) needs its limit at a = rho (or sum the series "
                "term by term)") from None
        got_all.append(_exact(got, f"epoch_factor(a={a}, rho={rho}, K={K})"))
    wrong = [(case, got) for case, got in zip(_FACTOR_CASES, got_all)
             if got != _factor_exact(*case)]
    if wrong:
        (a, rho, K), got = wrong[0]
        want = _factor_exact(a, rho, K)
        hint = ("start an epoch at w = avg = 1; run K steps of w <- a w, each followed by "
                "avg <- rho avg + (1 - rho) w; the switch then makes w = avg")
        for formula, text in _FACTOR_DIAGNOSES:
            if all(g == formula(*case) for case, g in zip(_FACTOR_CASES, got_all)):
                hint = text
                break
        raise AssertionError(f"for a = {a}, rho = {rho}, K = {K} the factor is {want} = "
                             f"{float(want):.6g}, yours is {got} = {float(got):.6g}: " + hint)
    s = _factor_exact(*_FACTOR_CASES[0])
    return (f"epoch_factor equals one epoch of Switch EMA run in exact arithmetic on "
            f"{len(_FACTOR_CASES)} cases, including a = rho, a sharp direction and a = 1. For "
            f"the tutorial's a = 0.9, rho = 0.99, K = 10 it is {float(s):.4f} per epoch, "
            f"where SGD's is 0.9^10 = {0.9 ** 10:.4f}: SEMA needs about "
            f"{np.log(0.9 ** 10) / np.log(float(s)):.0f} times as many epochs to shrink the "
            "distance to the minimum by the same factor.")


_FACTOR_STARTER = '''\
from fractions import Fraction as F

from refimpl.exercises import check


def epoch_factor(a, rho, K):
    """w at the end of an epoch (after the switch) divided by w at its start, for Switch
    EMA without noise on a direction where one SGD step multiplies w - w* by a."""
    s = 1
    ...  # your code: a loop over the epoch's K steps, or a closed form
    return s


a, rho, K = F(9, 10), F(99, 100), 10
s = epoch_factor(a, rho, K)
print(f"per epoch: SEMA {float(s):.4f}, SGD {float(a**K):.4f}")

check("04.2", epoch_factor)
'''

# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="04.1",
        title="Switch EMA by hand",
        text=r"""Write Switch EMA for $f(w) = \frac{h}{2} w^2$ without noise (so the gradient
is $h w$), with refimpl's conventions: the average starts as a copy of $w_0$, and after
step $n$ (counted from 1)

$$
w \leftarrow w - \eta h w, \qquad \bar w \leftarrow \rho\, \bar w + (1 - \rho)\, w,
\qquad \text{and if } n \bmod K = 0: \ w \leftarrow \bar w .
$$

Complete `sema_run(w0, lr, h, rho, K, steps)` so that it returns `(ws, avgs)`, each of
length `steps + 1`: the start, then $w$ (after the switch, if there is one) and
$\bar w$ after every step. The starter prints your run beside `refimpl.SwitchEMA`.
Hand the function to `check("04.1", sema_run)`.

The checker calls it with `Fraction` arguments on several cases (switching every step,
a sharp direction, a run shorter than an epoch, $\rho = 0$) and compares every value,
exactly, with the rules above run in rational arithmetic: use plain arithmetic so that
your values stay exact.

*Hint:* write the switch last. Then look at your run after step $K$: $w$ restarts from
$\bar w$, which (while $w$ moves steadily toward the minimum) has covered at most a
fraction $1 - \rho^K$ of the way the weights went in the epoch. That is the progress a
switch throws away.""",
        starter=_RUN_STARTER,
        checker=_check_sema_run,
    ),
    Exercise(
        id="04.2",
        title="What one epoch buys",
        text=r"""In a direction with curvature $h$, one SGD step multiplies the distance to the
minimum by $a = 1 - \eta h$. Without noise, one epoch of Switch EMA starts with
$w = \bar w$ (the previous switch made them equal) and ends with $w = \bar w$ again, so
it multiplies the distance by a factor $s(a, \rho, K)$.

Write `epoch_factor(a, rho, K)` returning $s$, by a loop over the $K$ steps or as a closed
form (careful at $a = \rho$), with plain arithmetic: the checker calls it with
`Fraction` arguments, including $a = \rho$, $a < 0$ and $a = 1$, and compares it exactly
with one epoch run in rational arithmetic.

Then compare $s$ with SGD's $a^K$ for the tutorial's $a = 0.9$, $\rho = 0.99$, $K = 10$
(the starter prints both). How many epochs of SEMA match one epoch of SGD? Can $s$ be
smaller than $a^K$ when $0 \le a \le 1$?

*Hint:* write the average at the end of the epoch as a weighted sum of the epoch's start
(distance 1) and of the weights $a, a^2, \dots, a^K$ it took in after each step. What do
those weights sum to, and how does each $a^j$ compare with $a^K$?""",
        starter=_FACTOR_STARTER,
        checker=_check_factor,
    ),
    Exercise(
        id="04.3",
        title="Switching every step, and what it costs",
        text=r"""Take Switch EMA with $K = 1$ (a switch after every step; `switch_unit="step"`)
over SGD without momentum.

1. Show that $w$ then follows SGD with learning rate $(1 - \rho)\, \eta$ exactly, noise
   included (Lemma 2).
2. Using SGD's stationary variance $V(\eta) = \frac{\eta\, \sigma^2}{h (2 - \eta h)}$ in
   a direction of curvature $h$, derive the steady-state online loss ratio
   $\frac{(1 - \rho)(2 - \eta h)}{2 - (1 - \rho)\, \eta h}$ plotted at $K = 1$ in the
   tutorial, and evaluate it for $\eta h = 0.1$, $\rho = 0.99$.
3. What does this gain cost? Compare the number of steps SGD and SEMA need to shrink the
   distance to the minimum by a factor $e$ (noise aside), for the same numbers. Would
   you get the same trade-off by simply lowering the learning rate?

*Hint:* right after a switch $w = \bar w$; write the next EMA update in terms of $\bar w$
and the gradient.""",
    ),
]
