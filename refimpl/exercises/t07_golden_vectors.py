r"""Exercises of tutorial 07 (checking your own optimizer against the golden vectors).

07.1 (checked) writes SGD momentum in the Keras convention as a golden-vector adapter and
runs it through the golden checker; 07.2 (checked) debugs a colleague's PyTorch-convention
port with the checker's failure reports until it passes every SGD case; 07.3 (on paper)
derives the first step at which each wrong convention shows, and designs the shortest
case that catches all three.

Both checkers run the student's factory through :func:`refimpl.golden.check`, the checker
a user runs, and take what must happen from the shipped vectors alone, never from the
answer: 07.1 from each case's convention, flags and learning rates (a PyTorch or optax
case flagged ``lr_inside_velocity`` must fail at its first change of the learning rate,
every other selected case must pass), a rule verified on first use against the math and
against refimpl's own tested Keras SGD run through the same checker; 07.2 from each
case's convention (every PyTorch and optax case must pass). Pass or fail is the
checker's verdict with the vectors' own tolerances (a first-order rounding-error bound
per step and coordinate, FORMAT.md section 5), so no tolerance is chosen here.
"""

from __future__ import annotations

import functools

from refimpl.exercises import Exercise

__all__ = ["EXERCISES"]


def _golden():
    from refimpl import golden  # imported on use: listing the exercises stays light

    return golden


def _sgd_file():
    return _golden().VECTORS / "sgd.json"


@functools.cache
def _sgd_cases() -> dict:
    """The shipped SGD cases by id (in file order)."""
    return {c.id: c for c in _golden().load(_sgd_file()).cases}


def _first_lr_change(case):
    """The first step k >= 2 whose learning rate differs from step k - 1's, or None."""
    return next((k for k in range(2, case.n_steps + 1) if case.lr[k - 1] != case.lr[k - 2]),
                None)


def _head(report: str, lines: int = 14) -> str:
    """The first lines of one case's failure report, indented."""
    out = report.splitlines()
    shown = out[:lines] + (["..."] if len(out) > lines else [])
    return "\n".join("    " + line for line in shown)


def _require_factory(answer, name: str) -> None:
    if not callable(answer):
        raise AssertionError(
            f"expected the adapter's factory {name}(case) -> stepper (a function that takes a "
            f"refimpl.golden.Case and returns an object with step(grad_fn, inputs)), got "
            f"{type(answer).__name__} {answer!r}")


# ------------------------------------------------------------------------------ 07.1

# The cases 07.1 runs: plain SGD without dampening (Keras has none), covering mu = 0, a
# constant rate with coupled weight decay and with maximize, the noisy quadratic, Nesterov,
# float32, the three conventions, and the lr-change witness.
_KERAS_SELECTED = (
    "sgd/gd-quadratic", "sgd/witness-pytorch", "sgd/witness-keras",
    "sgd/pytorch-momentum-schedule", "sgd/pytorch-weight-decay",
    "sgd/pytorch-maximize-weight-decay", "sgd/optax-momentum-schedule",
    "sgd/keras-momentum-schedule", "sgd/keras-nesterov", "sgd/nqm-momentum",
    "sgd/keras-momentum-schedule-f32",
)


def _refimpl_keras(case):
    """refimpl's own SGD forced to the Keras convention (tested in tests/test_sgd.py)."""
    from refimpl.golden import adapter

    return adapter.Stepper(adapter.build(case, base__convention="keras"), case.w0)


@functools.cache
def _keras_expectations() -> dict:
    """{case id: None (must pass) or the step at which it must first fail}, read from the
    vectors: a PyTorch or optax case flagged ``lr_inside_velocity`` fails at its first
    change of the learning rate, every other selected case passes.

    Two premises are verified (once, on first use), so that a checker built on a false
    one fails loudly instead of blaming the student: (1) on every selected case the flag
    rule is the math of FORMAT.md 4.1 (no dampening; Keras differs from PyTorch and optax
    iff the momentum is non-zero and the rate changes, from the first change on); (2)
    refimpl's own Keras SGD, run through the same checker, shows exactly this pattern.
    """
    cases = _sgd_cases()
    expected = {}
    for cid in _KERAS_SELECTED:
        c = cases[cid]
        b = c.base
        flagged = "lr_inside_velocity" in c.flags and b["convention"] != "keras"
        math_says = (b["convention"] != "keras" and b["momentum"] != 0
                     and _first_lr_change(c) is not None)
        if b.kind != "sgd" or b["dampening"] != 0 or flagged != math_says:
            raise RuntimeError(f"exercise 07.1's premise fails on {cid}: the shipped vectors "
                               "changed; the checker needs updating")
        expected[cid] = _first_lr_change(c) if flagged else None
    report = _golden().check(_sgd_file(), _refimpl_keras, select=list(_KERAS_SELECTED))
    got = {r.case_id: (r.step if r.status == "fail" else None) for r in report.results}
    if got != expected or report.count("skip") or report.format_errors:
        raise RuntimeError(f"exercise 07.1's premise fails: refimpl's Keras SGD gives {got}, "
                           f"the vectors' flags say {expected}")
    return expected


_STEP_ONE = ("step 1 is the same in every convention (v_1 = -lr g_1, so w_1 = w_0 - lr g_1, "
             "or w_0 - (1 + mu) lr g_1 with Nesterov), so a failure there is not the "
             "convention: check the gradient (negate it for "
             "maximize first, then add the coupled decay weight_decay * w), Nesterov's step "
             "w + mu v - lr g, that w moves by this step's new v (not the previous one), "
             "that the stepper returns the new parameters, and that it "
             "calls grad_fn once per step")


def _keras_hint(case, result, want) -> str:
    cid, b = case.id, case.base
    got = result.step if result.status == "fail" else None
    if result.status == "skip":
        return (f"your factory skipped {cid} ({result.message}). A Keras port can express "
                "every case of this selection (plain SGD without dampening): build the stepper "
                "whatever case.base['convention'] says.")
    if want is not None and got is None:
        lr_a, lr_b = case.lr[want - 2], case.lr[want - 1]
        return (f"your adapter passes {cid}, a {b['convention']}-convention case flagged "
                f"lr_inside_velocity whose learning rate changes at step {want} ({lr_a:g} -> "
                f"{lr_b:g}). Keras momentum cannot pass it: its velocity still carries the old "
                "rate. Your adapter follows PyTorch's recursion (a buffer multiplied by the "
                "current rate, w <- w - lr b) or reads case.base['convention']; this exercise "
                "ports Keras, whatever the case asks: v <- mu v - lr g, then w <- w + v.")
    if got == 0:
        return f"your factory or stepper failed before step 1 on {cid}:\n" + _head(result.report)
    if want is None:
        where = (f"your adapter fails {cid} at step {got}, a case it must pass "
                 + ("(its convention is Keras's)" if b["convention"] == "keras" else
                    "(momentum 0: every convention is w <- w - lr g)" if b["momentum"] == 0 else
                    "(its learning rate is constant, where Keras and PyTorch agree)"))
    else:
        where = (f"your adapter fails {cid} at step {got}, before its first change of the "
                 f"learning rate (step {want}), where Keras and PyTorch still agree"
                 if got < want else
                 f"your adapter fails {cid} at step {got}, expected at step {want}, its "
                 "first change of the learning rate")
    if got == 1:
        why = _STEP_ONE
    else:
        why = ("after step 1 the velocity must carry the learning rate and persist across "
               "steps: v <- mu v - lr g with this step's lr, then w <- w + v with the NEW v")
    return f"{where}: {why}. The checker's report:\n" + _head(result.report)


def _check_keras_adapter(answer) -> str:
    _require_factory(answer, "make")
    expected = _keras_expectations()
    cases = _sgd_cases()
    report = _golden().check(_sgd_file(), answer, select=list(expected))
    for result in report.results:
        want = expected[result.case_id]
        got = result.step if result.status == "fail" else None
        if result.status == "skip" or got != want:
            raise AssertionError(_keras_hint(cases[result.case_id], result, want))
    passed = [cid for cid, k in expected.items() if k is None]
    failed = [f"{cid} at step {k}" for cid, k in expected.items() if k is not None]
    return (f"golden.check ran your Keras adapter on {len(expected)} SGD cases and judged "
            f"them as the vectors predict: it passes the {len(passed)} whose learning rate is "
            "constant, whose momentum is 0 or whose convention is Keras (float32 and Nesterov "
            f"included), and fails exactly the {len(failed)} PyTorch and optax cases flagged "
            f"lr_inside_velocity, each at its first change of the learning rate "
            f"({', '.join(failed)}). refimpl's own Keras SGD gives the same verdicts.")


_KERAS_STARTER = '''\
import numpy as np

from refimpl import golden
from refimpl.exercises import check
from refimpl.golden import Unsupported


class KerasStepper:
    """SGD with momentum in Keras's convention, stepped by the golden checker."""

    def __init__(self, case):
        b = case.base
        self.dt = case.numpy_dtype.type              # compute in the case's precision
        self.w = case.w0.astype(self.dt)             # exact: the inputs fit the dtype
        self.v = np.zeros_like(self.w)               # the velocity, v_0 = 0
        self.mu, self.wd = self.dt(b["momentum"]), self.dt(b["weight_decay"])
        self.nesterov, self.maximize = b["nesterov"], b["maximize"]

    def step(self, grad_fn, inputs):
        loss, g = grad_fn(self.w)                    # float64 gradient of this step's batch
        g, lr = g.astype(self.dt), self.dt(inputs.lr)
        ...  # your code: maximize, then the coupled decay, then Keras's velocity and step
        return self.w                                # the new parameters


def make(case):
    if case.base.kind != "sgd" or case.sam is not None or case.average is not None:
        raise Unsupported("plain SGD only")
    return KerasStepper(case)  # whatever case.base["convention"] says: this port is Keras


# every SGD case, one line each (the checker runs a selection of them)
report = golden.check(golden.VECTORS / "sgd.json", make)
for r in report.results:
    c = r.case_id
    print(f"{r.status:4s} {c:38s}" + (f" first failing step {r.step}" if r.step else ""))

check("07.1", make)
'''


# ------------------------------------------------------------------------------ 07.2

def _check_fixed_port(answer) -> str:
    _require_factory(answer, "make")
    cases = _sgd_cases()
    required = [cid for cid, c in cases.items() if c.base["convention"] != "keras"]
    report = _golden().check(_sgd_file(), answer)
    if report.format_errors or len(report.results) != len(cases):
        raise RuntimeError("exercise 07.2: the shipped SGD vectors did not load cleanly")
    failing = [r for r in report.results if r.status == "fail"]
    if failing:
        r = failing[0]
        c = cases[r.case_id]
        if r.step == 1:
            where = "it shows at step 1, so look at what the first step does"
        elif r.step is not None and r.step == _first_lr_change(c):
            where = ("it shows at the first change of the learning rate, so look at which "
                     "rate each step uses")
        else:
            where = "the step where it first shows narrows down where to look"
        ids = ", ".join(x.case_id for x in failing)
        raise AssertionError(
            f"{len(failing)} SGD case(s) still fail: {ids}. The first one's report "
            f"follows; its flags name the convention at fault, and {where}:\n"
            + _head(r.report, lines=40))
    skipped = [r for r in report.results if r.status == "skip" and r.case_id in required]
    if skipped:
        r = skipped[0]
        raise AssertionError(
            f"your factory skips {len(skipped)} PyTorch- or optax-convention case(s), e.g. "
            f"{r.case_id} ({r.message}). A port of torch.optim.SGD must pass every one of them "
            "(optax's iterates are PyTorch's when the dampening is 0); only the Keras cases "
            "may be skipped. Skipping a case hides its failure: fix the optimizer instead.")
    keras = [cid for cid in cases if cid not in required]
    n32 = sum(cases[cid].dtype == "float32" for cid in required)
    done = {"skip": "skipped", "pass": "passed"}
    keras_status = sorted({done[r.status] for r in report.results if r.case_id in keras})
    return (f"golden.check passes all {len(required)} PyTorch- and optax-convention SGD cases "
            f"({n32} of them float32), among them the ones flagged first_step_dampening, "
            f"maximize_weight_decay and lr_schedule, and fails none; the {len(keras)} Keras "
            f"cases were {' or '.join(keras_status)}.")


_PORT_STARTER = '''\
import numpy as np

from refimpl import golden
from refimpl.exercises import check
from refimpl.golden import Unsupported


class ColleagueSGD:
    """A colleague's port of torch.optim.SGD (FORMAT.md section 4.1). Three bugs."""

    def __init__(self, momentum, dampening, weight_decay, nesterov, maximize):
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.buf, self.lr = None, None

    def step(self, w, g, lr):
        if self.lr is None:
            self.lr = lr
        if self.weight_decay != 0:
            g = g + self.weight_decay * w
        if self.maximize:
            g = -g
        if self.momentum == 0:
            return w - self.lr * g
        if self.buf is None:
            self.buf = np.zeros_like(w)
        self.buf = self.momentum * self.buf + (1 - self.dampening) * g
        d = g + self.momentum * self.buf if self.nesterov else self.buf
        return w - self.lr * d


class Stepper:
    def __init__(self, case):
        b = case.base
        self.w = case.w0.copy()  # float64 also for the float32 cases: their tolerance allows it
        self.opt = ColleagueSGD(b["momentum"], b["dampening"], b["weight_decay"],
                                b["nesterov"], b["maximize"])

    def step(self, grad_fn, inputs):
        loss, g = grad_fn(self.w)
        self.w = self.opt.step(self.w, g, inputs.lr)
        return self.w


def make(case):
    if case.base.kind != "sgd" or case.sam is not None or case.average is not None:
        raise Unsupported("plain SGD only")
    if case.base["convention"] == "keras":
        raise Unsupported("Keras momentum is another recursion")
    return Stepper(case)


report = golden.check(golden.VECTORS / "sgd.json", make)
first = next((r for r in report.results if r.status == "fail"), None)
print(first.report if first else "no failure")  # the step, the values, the flags' notes
print(report.text().splitlines()[-1])           # golden: N passed, N failed, N skipped

check("07.2", make)
'''


# ------------------------------------------------------------------------------ texts

EXERCISES = [
    Exercise(
        id="07.1",
        title="A Keras-momentum adapter",
        text=r"""You have ported Keras's SGD to NumPy and want to see where the golden
vectors agree with it. Keras keeps the learning rate *inside* the velocity: from
$v_0 = 0$,

$$
v_t = \mu\, v_{t-1} - \eta_t\, g_t, \qquad
w_t = \begin{cases} w_{t-1} + v_t & \text{plain,} \\
w_{t-1} + \mu\, v_t - \eta_t\, g_t & \text{Nesterov,} \end{cases}
$$

where $g_t$ is the gradient after `maximize` (negate first) and the coupled decay
($g_t + \lambda\, w_{t-1}$), as in FORMAT.md section 4.1.

Complete `KerasStepper.step` in the starter (compute in the case's dtype, keep the
velocity between steps) and hand the factory to `check("07.1", make)`. Do not read
`case.base["convention"]`: your port is Keras whatever the case asks; the point is to
see which cases notice.

The checker runs `make` through `golden.check` on 11 SGD cases and takes what must happen
from the vectors alone: every case whose convention is `keras`, whose $\eta$ is constant or
whose $\mu = 0$ must pass (the float32 one too: its tolerance allows float32 rounding),
and every PyTorch or optax case flagged `lr_inside_velocity` must fail, at exactly its
first change of $\eta$.

*Hint:* while $\eta$ is constant, $v_t = -\eta\, b_t$ with PyTorch's buffer
$b_t = \mu\, b_{t-1} + g_t$, so the two conventions take the same steps, and a failure at
step 1 is never the convention. The starter lists all 19 SGD cases: the Nesterov and
`witness-optax` cases change $\eta$ too and fail for the same reason, and
`pytorch-dampening` fails at step 2 because Keras has no dampening.""",
        starter=_KERAS_STARTER,
        checker=_check_keras_adapter,
    ),
    Exercise(
        id="07.2",
        title="Debug a port with the failure reports",
        text=r"""A colleague ported `torch.optim.SGD` (PyTorch's convention, FORMAT.md
section 4.1) and wrapped it in the adapter of the starter. It has three bugs, each of a
kind the golden cases' flags are built to catch. Run the starter and read the first
failure report: the failing step, the expected and actual values before and at it, and
the case's flags with their notes. Fix the optimizer, run again, and repeat until
`golden.check` reports no failure; then hand the fixed factory to `check("07.2", make)`.

The checker runs all 19 SGD cases: every PyTorch- and optax-convention case must pass
(optax's iterates are PyTorch's when the dampening $\tau$ is 0), and each Keras one may be
skipped (`Unsupported`) or passed. Skipping a PyTorch case to hide its failure is not
accepted.

*Hint:* the step at which a case first fails narrows down the bug: one that shows at
step 1 is in what the first step does (PyTorch's buffer starts as $b_1 = g_1$, with no
dampening), one that shows at the first change of $\eta_t$ is in which learning rate a
step uses.""",
        starter=_PORT_STARTER,
        checker=_check_fixed_port,
    ),
    Exercise(
        id="07.3",
        title="What a case can catch",
        text=r"""Take SGD with momentum $\mu > 0$ in PyTorch's convention (buffer
$b_1 = g_1$, $b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t$, step $w_t = w_{t-1} - \eta_t\, b_t$,
where $g_t$ includes the coupled decay $\lambda\, w_{t-1}$), without Nesterov, and the
three wrong variants of the tutorial's section 3.

1. With $\tau = 0$, show by induction that Keras's velocity is $v_t = -\eta\, b_t$ while
   the rate is a constant $\eta$, and that at the first step $s$ with
   $\eta_s \ne \eta_{s-1}$ the iterates differ by
   $w^{\text{Keras}}_s - w^{\text{PyTorch}}_s = (\eta_s - \eta_{s-1})\, \mu\, b_{s-1}$.
   When does a change of rate still not expose Keras?
2. Show that dampening the first step moves $w_1$ by $\eta_1 \tau\, g_1$, and that
   decoupled weight decay (with $\tau = 0$) agrees with the coupled one at step 1 and
   differs at step 2 by $\eta_2\, \mu\, \lambda\, w_0$.
3. Design the shortest case on which all three variants fail: how many steps, and which
   of $\tau$, $\lambda$, $\eta_2 - \eta_1$, $w_0$, $g_1$, $g_2$ must be non-zero? At which
   step does each variant fail? Why does the size of the tolerance hardly matter here?

*Hint:* up to the step where two recursions first differ they produce the same $w$ and
so the same gradients; compare only the one step where they part.""",
    ),
]
