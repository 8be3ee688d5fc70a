r"""Reference solutions of tutorial 07's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (an adapter factory
``make(case)`` for 07.1 and 07.2, a worked answer in Markdown for 07.3, which is answered
on paper); MISTAKES lists, per checked exercise, answers a student plausibly writes, each
of which its checker rejects.
"""

from __future__ import annotations

import numpy as np

from refimpl.golden import Unsupported

# ------------------------------------------------------------------------------ 07.1


class KerasStepper:
    """SGD with momentum in Keras's convention: the velocity carries the learning rate.

    The keyword switches build the recorded mistakes; the defaults are the solution."""

    def __init__(self, case, *, rate_outside=False, old_velocity=False, nesterov=True,
                 decay=True, maximize_first=True):
        b = case.base
        self.dt = case.numpy_dtype.type
        self.w = case.w0.astype(self.dt)
        self.v = np.zeros_like(self.w)
        self.mu, self.wd = self.dt(b["momentum"]), self.dt(b["weight_decay"] if decay else 0)
        self.nesterov, self.maximize = b["nesterov"] and nesterov, b["maximize"]
        self.rate_outside, self.old_velocity = rate_outside, old_velocity
        self.maximize_first = maximize_first

    def step(self, grad_fn, inputs):
        loss, g = grad_fn(self.w)
        g, lr = g.astype(self.dt), self.dt(inputs.lr)
        if self.maximize and self.maximize_first:
            g = -g
        if self.wd != 0:
            g = g + self.wd * self.w
        if self.maximize and not self.maximize_first:
            g = -g
        if self.rate_outside:  # PyTorch's recursion: v is a buffer of raw gradients
            self.v = self.mu * self.v + g
            d = g + self.mu * self.v if self.nesterov else self.v
            self.w = self.w - lr * d
            return self.w
        if self.old_velocity:  # w moves by the previous step's velocity
            self.w, self.v = self.w + self.v, self.mu * self.v - lr * g
            return self.w
        self.v = self.mu * self.v - lr * g
        self.w = self.w + self.mu * self.v - lr * g if self.nesterov else self.w + self.v
        return self.w


def _plain_sgd_only(case):
    if case.base.kind != "sgd" or case.sam is not None or case.average is not None:
        raise Unsupported("plain SGD only")


def make_keras(case):
    """The 07.1 adapter: a Keras port, whatever the case's convention."""
    _plain_sgd_only(case)
    return KerasStepper(case)


def _keras_variant(**wrong):
    def make(case):
        _plain_sgd_only(case)
        return KerasStepper(case, **wrong)

    return make


def _reads_convention(case):
    """Mistake: switches to PyTorch's recursion on PyTorch and optax cases (a correct SGD,
    but not the Keras port the exercise asks for: nothing left to notice)."""
    _plain_sgd_only(case)
    return KerasStepper(case, rate_outside=case.base["convention"] != "keras")


def _skips_keras_cases(case):
    """Mistake: copies the tutorial's refusal of the Keras cases."""
    _plain_sgd_only(case)
    if case.base["convention"] == "keras":
        raise Unsupported("Keras momentum is another recursion")
    return KerasStepper(case)


# ------------------------------------------------------------------------------ 07.2


class FixedSGD:
    """The colleague's torch.optim.SGD port, fixed: the three switches put each bug back.

    Bugs: the rate read once at the first step (lr_schedule), maximize applied after the
    weight decay (maximize_weight_decay), the first step dampened (first_step_dampening)."""

    def __init__(self, momentum, dampening, weight_decay, nesterov, maximize, *,
                 lr_once=False, maximize_last=False, dampen_first=False):
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.lr_once, self.maximize_last, self.dampen_first = lr_once, maximize_last, dampen_first
        self.buf, self.lr = None, None

    def step(self, w, g, lr):
        if self.lr is None or not self.lr_once:
            self.lr = lr  # fixed: each step's own rate
        if self.maximize and not self.maximize_last:
            g = -g  # fixed: negate first ...
        if self.weight_decay != 0:
            g = g + self.weight_decay * w  # ... then add the coupled decay
        if self.maximize and self.maximize_last:
            g = -g
        if self.momentum == 0:
            return w - self.lr * g
        if self.buf is None and not self.dampen_first:
            self.buf = g.copy()  # fixed: PyTorch's first buffer is the undampened gradient
        else:
            if self.buf is None:
                self.buf = np.zeros_like(w)
            self.buf = self.momentum * self.buf + (1 - self.dampening) * g
        d = g + self.momentum * self.buf if self.nesterov else self.buf
        return w - self.lr * d


class PortStepper:
    def __init__(self, case, **bugs):
        b = case.base
        self.w = case.w0.copy()
        self.opt = FixedSGD(b["momentum"], b["dampening"], b["weight_decay"], b["nesterov"],
                            b["maximize"], **bugs)

    def step(self, grad_fn, inputs):
        loss, g = grad_fn(self.w)
        self.w = self.opt.step(self.w, g, inputs.lr)
        return self.w


def _port(**bugs):
    def make(case):
        _plain_sgd_only(case)
        if case.base["convention"] == "keras":
            raise Unsupported("Keras momentum is another recursion")
        return PortStepper(case, **bugs)

    return make


make_fixed_port = _port()


def _skips_hard_cases(case):
    """Mistake: the bugs left in, the cases that show them skipped."""
    _plain_sgd_only(case)
    if (case.base["convention"] == "keras" or case.base["dampening"] != 0
            or case.base["maximize"] or len(set(case.lr.tolist())) > 1):
        raise Unsupported("not needed")
    return PortStepper(case, lr_once=True, maximize_last=True, dampen_first=True)


# ------------------------------------------------------------------------------ 07.3

_CATCH = r"""**1.** With $\tau = 0$ and a constant rate $\eta$: $v_1 = -\eta\, g_1 = -\eta\, b_1$,
and if $v_{t-1} = -\eta\, b_{t-1}$ then
$v_t = \mu\, v_{t-1} - \eta\, g_t = -\eta\,(\mu\, b_{t-1} + g_t) = -\eta\, b_t$. So
$w_t = w_{t-1} + v_t = w_{t-1} - \eta\, b_t$: the same steps, hence the same iterates and
the same gradients. At the first step $s$ with a new rate, $v_{s-1} = -\eta_{s-1} b_{s-1}$
still carries the old rate:

$$
w^{\text{Keras}}_s - w^{\text{PyTorch}}_s
= \left(-\eta_{s-1}\mu\, b_{s-1} - \eta_s g_s\right)
  - \left(-\eta_s \mu\, b_{s-1} - \eta_s g_s\right)
= (\eta_s - \eta_{s-1})\, \mu\, b_{s-1} .
$$

For the witness ($b_1 = g_1 = 1$, $\mu = 0.9$, $\eta$ from $0.1$ to $0.01$) this is
$-0.081 = -0.2 - (-0.119)$. A change of rate does not expose Keras when $\mu = 0$ or
$b_{s-1} = 0$ (e.g. only zero gradients so far), and in floating point when the gap is
below the tolerance (a change of $\eta$ by a few ulps).

**2.** Dampened first step: $b_1 = (1 - \tau)\, g_1$ instead of $g_1$, so
$w_1 - w^{\text{PyTorch}}_1 = -\eta_1 (1 - \tau) g_1 + \eta_1 g_1 = \eta_1 \tau\, g_1$.
Decoupled decay builds the buffer from the bare gradient $\gamma_t$ and subtracts
$\eta_t \lambda\, w_{t-1}$ separately. At step 1 both give
$w_0 - \eta_1 (\gamma_1 + \lambda w_0)$. At step 2 (same $w_1$, same $\gamma_2$) the coupled
buffer is $\mu(\gamma_1 + \lambda w_0) + \gamma_2 + \lambda w_1$, the decoupled step is
$\eta_2 (\mu \gamma_1 + \gamma_2) + \eta_2 \lambda w_1$, so
$w^{\text{decoupled}}_2 - w^{\text{coupled}}_2 = \eta_2\, \mu\, \lambda\, w_0$: the coupled
buffer remembers the decay of step 1.

**3.** No single step can do it: Keras and decoupled decay agree with PyTorch at step 1
(part 1 with $t = 1$, and part 2). **Two steps** suffice, with $\mu > 0$ and:

- $\tau \ne 0$ and $g_1 \ne 0$: the dampened first step fails at **step 1** ($\eta_1 \tau g_1$);
- $\lambda \ne 0$ and $w_0 \ne 0$: decoupled decay fails at **step 2**; with $\tau \ne 0$
  the gap is $\eta_2 \lambda (\mu w_0 - \tau w_1)$, non-zero unless $\mu w_0 = \tau w_1$;
- Keras then fails at **step 2** even at a constant rate, since it has no dampening: the
  gap is $(\eta_2 - \eta_1)\, \mu\, b_1 - \eta_2\, \tau\, g_2$, so $g_2 \ne 0$ (or
  $\eta_2 \ne \eta_1$) exposes it. Without dampening (where the Keras convention is
  defined) it needs $\eta_2 \ne \eta_1$ and $b_1 \ne 0$, and the dampening mistake is then
  no mistake at all: with $\tau = 0$ it computes PyTorch's iterates.

The tolerance hardly matters: each gap is first order in the data ($\eta \mu \lambda w_0$,
$\eta \tau g$, $\Delta\eta\, \mu\, b$), while the tolerance is a rounding bound, about
$10^{-15}$ to $10^{-12}$ of the parameters' size in float64 and $10^{-6}$ to $10^{-4}$ in
float32. Any case with inputs of ordinary size separates them by many decades, as the
tutorial's figure shows; only a deliberately tiny difference
(a rate change of a few ulps) could hide."""


SOLUTIONS = {
    "07.1": make_keras,
    "07.2": make_fixed_port,
    "07.3": _CATCH,
}

MISTAKES = {
    "07.1": [
        _keras_variant(rate_outside=True),    # PyTorch's recursion: lr outside the velocity
        _keras_variant(old_velocity=True),    # w moves by the previous velocity
        _keras_variant(nesterov=False),       # Nesterov ignored
        _keras_variant(decay=False),          # weight decay forgotten
        _keras_variant(maximize_first=False),  # maximize after the decay
        _reads_convention,                    # not a Keras port: passes the PyTorch cases
        _skips_keras_cases,                   # refuses the cases it is made for
    ],
    "07.2": [
        _port(lr_once=True, maximize_last=True, dampen_first=True),  # the starter as given
        _port(lr_once=True),         # two bugs fixed, the rate still read once
        _port(maximize_last=True),   # two bugs fixed, maximize still after the decay
        _port(dampen_first=True),    # two bugs fixed, the first step still dampened
        _skips_hard_cases,           # hides the failures behind Unsupported
    ],
}
