"""Exact means and covariances of LINEAR optimizers on the noisy quadratic model.

Source: the claims EMA-scale and SEMA-nqm (proofs/sources.md#theoretical-claims);
derivations in ``proofs/ema.md`` and ``proofs/sema.md``.
Everything here is derived from the optimizers' documented updates (the module
docstrings of refimpl.optimizers), not read off the kernels: the tests compare the two.

The problem (refimpl.problems.NoisyQuadratic): ``H = diag(h)``, mini-batch gradient
``g = h * (w - w*) + xi`` with ``xi = sqrt(c / B) * z``, ``z ~ N(0, I)`` fresh each step.
Coordinates never interact, so each coordinate ``i`` is a small linear system. Its state
after ``n`` steps is the column ::

    s_n = (w, buf, ema, 1)        w: parameter, buf: momentum buffer (PyTorch buf,
                                  optax trace or Keras velocity), ema: the RAW EMA buffer,
                                  1: a constant that carries w*, weight decay offsets

and one optimizer step is ``s_{n+1} = A_n s_n + b_n xi_n`` with a 4x4 matrix ``A_n``
and a 4-vector ``b_n`` that depend only on the hyperparameters, the step number and
``h_i, w*_i`` (never on the noise). Because ``xi_n`` is independent of ``s_n``, with
variance ``sigma^2 = c_i / B``, the mean ``m_n = E s_n`` and covariance ``S_n = Cov s_n``
follow exactly (a time-varying discrete Lyapunov recursion)::

    m_{n+1} = A_n m_n,        S_{n+1} = A_n S_n A_n^T + sigma^2 b_n b_n^T,
    m_0 = (w0, 0, ema0, 1),   S_0 = 0.

Since ``s_n`` is a linear function of Gaussian noise it is exactly Gaussian, so the two
moments ARE its distribution. The expected population loss (``NoisyQuadratic.loss``) is
``E L(w) = sum_i 1/2 h_i ((E w_i - w*_i)^2 + Var w_i)``.

How ``A_n, b_n`` are built (per coordinate; k, lam, eta, mu, tau below are scalars).
The gradient the base optimizer sees is the linear form

    g = k (h (w - w*) + xi) + lam w,     k = s (1 + rho_sam h)

with ``s = -1`` if ``maximize`` else 1, ``lam`` the coupled weight decay, and
``rho_sam`` the radius of an unnormalized SAM (USAM) step, 0 without SAM: USAM evaluates
``g_adv = grad(w + rho_sam g) = (1 + rho_sam h)(h (w - w*) + xi)`` on the same batch.
Then, with ``eta`` the step's learning rate and ``mu`` the momentum:

* pytorch: ``buf' = g`` on the first step (count 0), else ``mu buf + (1 - tau) g``;
  ``d = g + mu buf'`` (nesterov) or ``buf'``; ``w' = w - eta d``.
* optax:   ``buf' = g + mu buf``; ``d`` as above; ``w' = w - eta d``.
* keras:   ``buf' = mu buf - eta g``; ``w' = w + mu buf' - eta g`` (nesterov) or
  ``w + buf'``.
* ``mu = 0``: ``w' = w - eta g`` in every convention (the buffer stays 0; its row of
  ``A`` is written as 0, which keeps the stationary analysis free of a fake eigenvalue 1).

EMA (after the base step, on the new w), if ``n % update_every == 0`` with the decay
``delta_n`` of the warm-up schedule: ``ema' = delta_n ema + (1 - delta_n) w'``. The
reported average is ``ema`` (start "copy") or ``ema / (1 - P_n)`` (start "zeros", ``P_n``
the product of the decays used; ``ema`` itself when ``P_n = 1``): a deterministic factor.
Switch EMA, at a switch: ``w <- average`` (and ``buf <- 0``, count 0 if
``on_switch="reset"``). Each of these is a matrix on ``s``; ``A_n`` is their product.

Supported: SGD (every option: momentum, dampening, nesterov, weight decay, maximize, the
three conventions, any lr schedule), EMA / SwitchEMA over it (every start, update_every,
every warm-up, every switch option), SWA (the mean of k + 1 snapshots is an EMA step
with decay k / (k + 1); no stationary distribution) and Lookahead (exactly Switch EMA
with decay 1 - alpha, updated and switched every k steps), and
SAM(SGD, ascent="unnormalized") inside or outside them. Adam, FAME, normalized or
adaptive SAM and StableSAM divide by data-
dependent norms or second moments: their dynamics are not linear and raise TypeError.

Public API: :func:`moments` (the exact recursion over a run), :func:`stationary` (its
fixed point, or periodic orbit for Switch EMA, by ``scipy.linalg.solve_discrete_lyapunov``),
:func:`spectral_radius` and :func:`transitions` (the matrices themselves).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from refimpl import _validate
from refimpl.optimizers.adam import Adam
from refimpl.optimizers.averagers import SWA, Lookahead
from refimpl.optimizers.ema import EMA, SwitchEMA
from refimpl.optimizers.fame import FAME
from refimpl.optimizers.sam import SAM, StableSAM
from refimpl.optimizers.sgd import SGD
from refimpl.problems.quadratic import NoisyQuadratic

#: Names of the state components, in the order of the rows of ``A`` (then the constant 1).
STATE = ("w", "buf", "ema")
W, BUF, EMA_ROW, ONE, XI = 0, 1, 2, 3, 4  # rows of the (4, 5) map on (w, buf, ema, 1, xi)


# ---------------------------------------------------------------------------------------
# what the optimizer is, as far as the linear theory is concerned

@dataclass(frozen=True)
class _Linear:
    """A supported optimizer split into its layers: the SGD, USAM's radius, the averager."""

    sgd: SGD
    rho_sam: float
    averager: EMA | SWA | None  # a Lookahead is held as its SwitchEMA (see _linear)
    feedback: float = 0.0  # gamma of an EMA teacher in the gradient (moments(ema_feedback=))


def _linear(optimizer) -> _Linear:
    """Split ``optimizer`` or raise TypeError saying why its dynamics are not linear."""
    averager = None
    inner = optimizer
    if isinstance(inner, Lookahead):
        averager, inner = _lookahead_as_switch_ema(inner), inner.inner
    elif isinstance(inner, (EMA, SWA)):
        averager, inner = inner, inner.inner
    rho_sam = 0.0
    if isinstance(inner, StableSAM):
        raise TypeError("StableSAM rescales the gradient by the ratio of two data-dependent "
                        "norms: its dynamics on the noisy quadratic model are not linear, so "
                        "refimpl.theory has no exact moments for it (use Monte Carlo)")
    if isinstance(inner, SAM):
        if inner.ascent != "unnormalized":
            raise TypeError(f"SAM with ascent={inner.ascent!r} divides by a gradient norm: its "
                            "dynamics are not linear; refimpl.theory supports only "
                            "ascent='unnormalized' (USAM)")
        rho_sam, inner = inner.rho, inner.base
    if isinstance(inner, (Adam, FAME)):
        raise TypeError(f"{type(inner).__name__} divides by a running second moment: its "
                        "dynamics are not linear, so refimpl.theory has no exact moments "
                        "for it; supported: SGD, SAM(SGD, ascent='unnormalized'), and "
                        "EMA/SwitchEMA over either")
    if not isinstance(inner, SGD):
        raise TypeError("optimizer must be SGD, SAM(SGD, ascent='unnormalized'), or "
                        f"EMA/SwitchEMA over one of them; got {type(optimizer).__name__}")
    return _Linear(inner, rho_sam, averager)


def _lookahead_as_switch_ema(a: Lookahead) -> SwitchEMA:
    """Lookahead(k, alpha) is, in exact arithmetic, Switch EMA with decay 1 - alpha whose
    EMA is updated and copied back every k steps (refimpl.optimizers.averagers); the
    first-sync start is the EMA's start="first" (the update after step k copies w)."""
    return SwitchEMA(a.inner, decay=1.0 - a.alpha, update_every=a.k, start=a.start,
                     switch_unit="step", switch_every=a.k,
                     on_switch="reset" if a.on_sync == "reset" else "keep")


def _zero_start(a) -> bool:
    """Whether the average starts at 0 (an EMA with start="zeros"); SWA starts at w0."""
    return isinstance(a, EMA) and a.start == "zeros"


def _problem(problem) -> NoisyQuadratic:
    if not isinstance(problem, NoisyQuadratic):
        raise TypeError("problem must be a NoisyQuadratic (a diagonal quadratic with Gaussian "
                        f"gradient noise; use c=0 for no noise), got {type(problem).__name__}")
    return problem


def _check_epochs(lin: _Linear, steps_per_epoch):
    if steps_per_epoch is not None:
        return _validate.integer("steps_per_epoch", steps_per_epoch, lo=1)
    a = lin.averager
    if isinstance(a, SwitchEMA) and a.switch_unit == "epoch":
        raise ValueError("SwitchEMA with switch_unit='epoch' switches at epoch ends: pass "
                         "steps_per_epoch= (or use switch_unit='step')")
    if isinstance(a, SWA) and a.swa_unit == "epoch":
        raise ValueError("SWA with swa_unit='epoch' takes its snapshots at epoch ends: pass "
                         "steps_per_epoch= (or use swa_unit='step')")
    return None


# ---------------------------------------------------------------------------------------
# the schedules of the averager, restated from refimpl.optimizers.ema's docstring

def _decay(a: EMA, n: int) -> float:
    """The EMA decay used after optimizer step ``n`` (from 1)."""
    if a.start == "first" and n <= max(a.update_every, a.update_after_step + 1):
        return 0.0  # the first update copies w
    if a.warmup is None:
        return a.decay
    if a.warmup == "timm":
        s = max(0, n - a.update_after_step - 1)
        if s <= 0:
            return 0.0
        value = 1.0 - (1.0 + s / a.warmup_gamma) ** (-a.warmup_power)
        return min(max(value, a.min_decay), a.decay)
    i = n - 1  # openmixup's 0-based iteration
    if i > a.warmup_steps:
        return a.decay
    r, T = a.warmup_ratio, a.warmup_steps
    if a.warmup == "constant":
        return r * a.decay
    if a.warmup == "linear":
        return (1.0 - (1.0 - i / T) * (1.0 - r)) * a.decay
    return r ** (1.0 - i / T) * a.decay


def _switches(a: EMA | None, n: int, epoch: int, epoch_end: bool) -> bool:
    """Whether Switch EMA copies its average into w after step ``n``."""
    if not isinstance(a, SwitchEMA):
        return False
    if a.start == "zeros" and n < a.update_every:
        return False  # nothing has been averaged yet
    if a.switch_unit == "step":
        return n % a.switch_every == 0 and n > a.switch_start
    return epoch_end and epoch % a.switch_every == 0 and epoch > a.switch_start


# ---------------------------------------------------------------------------------------
# one step as a matrix

def _base_map(lin: _Linear, h, w_star, lr: float, first: bool) -> np.ndarray:
    """The (d, 4, 5) map of one (USAM-)SGD step from (w, buf, ema, 1, xi) to (w, buf, ema, 1)."""
    sgd = lin.sgd
    d = h.shape[0]
    unit = np.eye(5)
    e_w, e_buf, e_ema, e_one, e_xi = (np.broadcast_to(unit[j], (d, 5)) for j in range(5))
    sign = -1.0 if sgd.maximize else 1.0
    k = (sign * (1.0 + lin.rho_sam * h))[:, None]
    lam, mu, eta = sgd.weight_decay, sgd.momentum, lr
    hc, wc = h[:, None], w_star[:, None]
    # g = k (h (w - w*) + xi) + lam w + gamma (w - ema), as a row acting on (w, buf, ema, 1, xi)
    g = (k * hc + lam) * e_w - k * hc * wc * e_one + k * e_xi
    if lin.feedback != 0.0:  # the EMA teacher as it stands before the step
        g = g + lin.feedback * (e_w - e_ema)
    if mu == 0.0:
        w_new, buf_new = e_w - eta * g, 0.0 * e_buf
    elif sgd.convention == "keras":
        buf_new = mu * e_buf - eta * g
        w_new = e_w + mu * buf_new - eta * g if sgd.nesterov else e_w + buf_new
    else:
        if sgd.convention == "optax":
            buf_new = g + mu * e_buf
        elif first:
            buf_new = g  # PyTorch's first step: buf = g, no dampening
        else:
            buf_new = mu * e_buf + (1.0 - sgd.dampening) * g
        direction = g + mu * buf_new if sgd.nesterov else buf_new
        w_new = e_w - eta * direction
    ema_new = e_ema if lin.averager is not None else 0.0 * e_ema  # no averager: ema = 0
    return np.stack([w_new, buf_new, ema_new, e_one], axis=1)


def _ema_matrix(d: int, decay: float) -> np.ndarray:
    """(d, 4, 4): ``ema <- decay ema + (1 - decay) w``, the rest unchanged."""
    U = np.tile(np.eye(4), (d, 1, 1))
    U[:, EMA_ROW, EMA_ROW] = decay
    U[:, EMA_ROW, W] = 1.0 - decay
    return U


def _switch_matrix(d: int, factor: float, reset: bool) -> np.ndarray:
    """(d, 4, 4): ``w <- factor * ema`` (factor = the debias), ``buf <- 0`` if reset."""
    S = np.tile(np.eye(4), (d, 1, 1))
    S[:, W, :] = 0.0
    S[:, W, EMA_ROW] = factor
    if reset:
        S[:, BUF, :] = 0.0
    return S


def _debias_factor(a: EMA | None, product: float) -> float:
    """Reported average = factor * ema: 1 for "copy" and "first", 1 / (1 - P) for "zeros" (1 if P = 1)."""
    if not _zero_start(a) or product == 1.0:
        return 1.0
    return 1.0 / (1.0 - product)


def _steps(lin: _Linear, problem: NoisyQuadratic, steps: int, steps_per_epoch,
           continued: bool = False):
    """Yield ``(A, b, factor)`` for steps n = 1..steps: A (d, 4, 4), b (d, 4), and the
    debias factor of the average after the step. ``continued``: the run carries on from
    an earlier one (moments(start=...)), so PyTorch's first-step rule does not apply."""
    h, w_star = np.asarray(problem.h), np.asarray(problem.w_star)
    d = h.shape[0]
    a = lin.averager
    lrs = lin.sgd.lr.array(steps)
    count, epoch, product, snapshots = int(continued), 0, 1.0, 0
    for t in range(steps):
        n = t + 1
        M = _base_map(lin, h, w_star, float(lrs[t]), count == 0)
        count += 1
        epoch_end = steps_per_epoch is not None and n % steps_per_epoch == 0
        epoch += int(epoch_end)
        if isinstance(a, SWA):
            # the mean of k + 1 snapshots: an EMA step with decay k / (k + 1) (0: a copy)
            if a.snapshot_due(n, epoch, epoch_end):
                M = _ema_matrix(d, snapshots / (snapshots + 1.0)) @ M
                snapshots += 1
            yield M[:, :, :4], M[:, :, 4], 1.0
            continue
        if a is not None and n % a.update_every == 0:
            decay = _decay(a, n)
            M = _ema_matrix(d, decay) @ M
            product = product * decay
        factor = _debias_factor(a, product)
        if _switches(a, n, epoch, epoch_end):
            reset = a.on_switch == "reset"
            M = _switch_matrix(d, factor, reset) @ M
            if reset:
                count = 0  # PyTorch's first-step rule applies again
        yield M[:, :, :4], M[:, :, 4], factor


# ---------------------------------------------------------------------------------------
# the moments of a run

def _frozen(a):
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def _expected_loss(h, w_star, mean, var):
    """sum_i 1/2 h_i ((E w_i - w*_i)^2 + Var w_i), along the last axis."""
    return 0.5 * np.sum(h * ((mean - w_star) ** 2 + var), axis=-1)


@dataclass(frozen=True, eq=False)
class Moments:
    """Exact first and second moments of a run, after each step (row 0 = before any).

    mean, cov : (steps + 1, d, 3) and (steps + 1, d, 3, 3), the state (w, buf, ema) with
        ema the RAW buffer (see STATE).
    mean_w, var_w : (steps + 1, d) of the parameters.
    mean_avg, var_avg, cov_w_avg : (steps + 1, d) of the reported average (debiased for
        start="zeros"), and Cov(w_i, avg_i); None without an EMA.
    loss_w, loss_avg : (steps + 1,) expected population loss of w and of the average.
    debias : (steps + 1,) the factor with average = debias * ema (ones for "copy").
    """

    steps: int
    mean: np.ndarray
    cov: np.ndarray
    debias: np.ndarray
    mean_w: np.ndarray
    var_w: np.ndarray
    mean_avg: np.ndarray | None
    var_avg: np.ndarray | None
    cov_w_avg: np.ndarray | None
    loss_w: np.ndarray
    loss_avg: np.ndarray | None


def moments(problem, optimizer, *, w0=None, steps: int, steps_per_epoch: int | None = None,
            ema_feedback: float = 0.0, start: Moments | None = None) -> Moments:
    """The exact moments of ``train(problem, optimizer, w0=w0, steps=steps,
    steps_per_epoch=steps_per_epoch)`` over the noise (see the module docstring).

    ``ema_feedback = gamma > 0`` makes the model EMA a teacher that feeds back into the
    loss (BYOL, pseudo-labelling; proofs/ema.md, claim EMA-feedback): the gradient of
    step n becomes ``g + gamma (w - z)``, with z the EMA's average as it stands before
    the step (a stop-gradient target), i.e. the loss gains ``gamma / 2 ||w - sg(z)||^2``.
    It needs an EMA or SwitchEMA whose average is its raw buffer (start "copy" or
    "first"). No loop in refimpl runs this coupling (the problem would need the
    optimizer's state); the claim's tests run it through the step API.

    ``start=m`` continues from the last row of an earlier run's moments ``m`` instead of
    from ``w0`` (give one of the two): the state (w, buffer, EMA) keeps its distribution
    and only the hyperparameters change, as when Progressive Scaling
    (:func:`refimpl.scaling.progressive`) grows the batch. The continued run's
    learning-rate schedule restarts at its first entry, PyTorch's first-step rule does
    not apply again, and the averager must be a plain EMA (or none, in both runs) with
    update_every = 1, no warm-up and start "copy": their step counters would otherwise
    restart.

    Raises TypeError for an optimizer whose dynamics are not linear, and
    FloatingPointError if the moments overflow (the run diverges).
    """
    problem = _problem(problem)
    lin = _linear(optimizer)
    if (w0 is None) == (start is None):
        raise ValueError("give exactly one of w0 (a fresh run) and start (the Moments of an "
                         "earlier run to continue)")
    if start is not None:
        _check_continuation(lin, optimizer, start, problem.dim)
    gamma = _validate.real("ema_feedback", ema_feedback, lo=0.0)
    if gamma != 0.0:
        if not isinstance(optimizer, EMA):
            raise ValueError("ema_feedback needs an EMA teacher: optimizer must be an EMA or "
                             f"SwitchEMA (over SGD or USAM), got {type(optimizer).__name__}")
        if lin.averager.start == "zeros":
            raise ValueError("ema_feedback needs the EMA's average to be its raw buffer "
                             "(start='copy' or 'first'), got start='zeros'")
        lin = dataclasses.replace(lin, feedback=gamma)
    d = problem.dim
    if start is None:
        w0 = _validate.vector("w0", w0, size=d)
    steps = _validate.integer("steps", steps, lo=0)
    steps_per_epoch = _check_epochs(lin, steps_per_epoch)
    sigma2 = np.asarray(problem.c) / problem.batch_size
    h, w_star = np.asarray(problem.h), np.asarray(problem.w_star)

    _validate.allocation("steps", steps, 8 * (steps + 1) * d * 60, "the moments of every step")
    mean = np.zeros((steps + 1, d, 4))
    cov = np.zeros((steps + 1, d, 4, 4))
    debias = np.ones(steps + 1)
    mean[0, :, ONE] = 1.0
    if start is not None:
        mean[0, :, :3] = start.mean[-1]
        cov[0, :, :3, :3] = start.cov[-1]
    else:
        mean[0, :, W] = w0
        if lin.averager is not None and not _zero_start(lin.averager):
            mean[0, :, EMA_ROW] = w0
    continued = start is not None
    with np.errstate(over="ignore", invalid="ignore"):
        for n, (A, b, factor) in enumerate(
                _steps(lin, problem, steps, steps_per_epoch, continued), 1):
            mean[n] = np.einsum("dij,dj->di", A, mean[n - 1])
            S = A @ cov[n - 1] @ np.swapaxes(A, 1, 2) + sigma2[:, None, None] * (
                b[:, :, None] * b[:, None, :])
            cov[n] = 0.5 * (S + np.swapaxes(S, 1, 2))  # exact symmetry
            debias[n] = factor
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise FloatingPointError("the exact moments overflowed: this run diverges (see "
                                 "refimpl.theory.spectral_radius)")
    mean, cov = mean[:, :, :3], cov[:, :, :3, :3]
    mean_w, var_w = mean[:, :, W], cov[:, :, W, W]
    f = debias[:, None]
    avg = lin.averager is not None
    mean_avg = f * mean[:, :, EMA_ROW] if avg else None
    var_avg = f * f * cov[:, :, EMA_ROW, EMA_ROW] if avg else None
    cov_w_avg = f * cov[:, :, W, EMA_ROW] if avg else None
    with np.errstate(over="ignore", invalid="ignore"):
        loss_w = _expected_loss(h, w_star, mean_w, var_w)
        loss_avg = _expected_loss(h, w_star, mean_avg, var_avg) if avg else None
    for x in (mean_avg, var_avg, cov_w_avg, loss_w, loss_avg):
        if x is not None and not np.all(np.isfinite(x)):
            raise FloatingPointError("the expected loss or the average's moments overflow "
                                     "float64 (the moments themselves are finite: w0 or "
                                     "w_star is too large for this problem)")
    return Moments(
        steps=steps, mean=_frozen(mean), cov=_frozen(cov), debias=_frozen(debias),
        mean_w=_frozen(mean_w), var_w=_frozen(var_w), mean_avg=_frozen(mean_avg),
        var_avg=_frozen(var_avg), cov_w_avg=_frozen(cov_w_avg),
        loss_w=_frozen(loss_w), loss_avg=_frozen(loss_avg) if avg else None,
    )


def _check_continuation(lin: _Linear, optimizer, start, d: int) -> None:
    """Refuse a ``start=`` that :func:`moments` cannot continue exactly."""
    if not isinstance(start, Moments):
        raise TypeError(f"start must be the Moments of an earlier run, got {type(start).__name__}")
    if start.mean.shape[1] != d:
        raise ValueError(f"start has {start.mean.shape[1]} coordinates, the problem {d}")
    a = lin.averager
    if a is not None and (type(a) is not EMA or a.update_every != 1 or a.warmup is not None
                          or a.start != "copy"):
        raise ValueError("start= continues a run only with a plain EMA (update_every=1, no "
                         "warm-up, start='copy') or no averager: other averagers count steps "
                         f"from the start of the run; got {type(optimizer).__name__}")
    if (a is None) != (start.mean_avg is None):
        raise ValueError("start= must come from a run with an averager exactly when this "
                         "optimizer has one")


def transitions(problem, optimizer, *, steps: int, steps_per_epoch: int | None = None):
    """The matrices of a run: ``(A, b, debias)`` with A (steps, d, 4, 4), b (steps, d, 4)
    and debias (steps,), so that ``s_n = A[n-1] s_{n-1} + b[n-1] xi_n`` on the state
    (w, buf, ema, 1) of each coordinate. Same errors as :func:`moments`."""
    problem = _problem(problem)
    lin = _linear(optimizer)
    steps = _validate.integer("steps", steps, lo=0)
    steps_per_epoch = _check_epochs(lin, steps_per_epoch)
    d = problem.dim
    _validate.allocation("steps", steps, 8 * steps * (20 * d + 1), "the maps of every step")
    A, b, f = np.zeros((steps, d, 4, 4)), np.zeros((steps, d, 4)), np.ones(steps)
    for t, (At, bt, ft) in enumerate(_steps(lin, problem, steps, steps_per_epoch)):
        A[t], b[t], f[t] = At, bt, ft
    return _frozen(A), _frozen(b), _frozen(f)


# ---------------------------------------------------------------------------------------
# the long run: stationary distribution (periodic for update_every > 1 and Switch EMA)

def _period(lin: _Linear, steps_per_epoch) -> int:
    a = lin.averager
    if a is None:
        return 1
    if isinstance(a, SWA):
        raise ValueError("SWA's weights change with every snapshot (the k-th gets 1/k): its "
                         "average has no stationary distribution; use moments() over a "
                         "finite run")
    p = a.update_every
    if isinstance(a, SwitchEMA):
        switch = a.switch_every if a.switch_unit == "step" else a.switch_every * steps_per_epoch
        p = p * switch // math.gcd(p, switch)
    return p


def _late_steps(lin: _Linear, problem: NoisyQuadratic, p: int, steps_per_epoch):
    """The maps of steps n = 1..p of the LATE run (n read modulo the period p): the first-
    step rule, warm-ups, switch_start and the zero-start debias (P_n -> 0) have all
    worn off."""
    h, w_star = np.asarray(problem.h), np.asarray(problem.w_star)
    d = h.shape[0]
    a = lin.averager
    lr = lin.sgd.lr.constant
    out = []
    for n in range(1, p + 1):
        M = _base_map(lin, h, w_star, lr, first=False)
        if a is not None and n % a.update_every == 0:
            M = _ema_matrix(d, a.decay) @ M
        if isinstance(a, SwitchEMA):
            if a.switch_unit == "step":
                due = n % a.switch_every == 0
            else:
                due = n % (steps_per_epoch * a.switch_every) == 0
            if due:
                M = _switch_matrix(d, 1.0, a.on_switch == "reset") @ M
        out.append((M[:, :, :4], M[:, :, 4]))
    return out


#: the longest period (in steps) whose maps are formed one step at a time: ``stationary``
#: returns one distribution per phase, and forming the period's noise takes about 80 us a
#: step on the project's machine (8 s at this limit). ``spectral_radius`` needs no noise
#: and forms a longer period by repeated squaring when update_every = 1.
MAX_PERIOD = 10 ** 5


def _period_map(lin, problem, steps_per_epoch):
    if lin.sgd.lr.constant is None:
        raise ValueError("stationary needs a constant learning rate (lr a float); a "
                         "schedule has no steady state")
    p = _period(lin, steps_per_epoch)
    if p > MAX_PERIOD:
        raise ValueError(f"the run's period is {p} steps (lcm of update_every and the switch "
                         f"period), more than MAX_PERIOD = {MAX_PERIOD}: its stationary "
                         "distribution has one entry per phase and is formed step by step "
                         "(use a smaller switch_every or steps_per_epoch)")
    late = _late_steps(lin, problem, p, steps_per_epoch)
    d = problem.dim
    sigma2 = np.asarray(problem.c) / problem.batch_size
    Phi = np.tile(np.eye(4), (d, 1, 1))
    Q = np.zeros((d, 4, 4))
    for A, b in late:
        Phi = A @ Phi
        Q = A @ Q @ np.swapaxes(A, 1, 2) + sigma2[:, None, None] * (b[:, :, None] * b[:, None, :])
    return p, late, Phi, Q, sigma2


def spectral_radius(problem, optimizer, *, steps_per_epoch: int | None = None) -> float:
    """The largest spectral radius, over coordinates, of the homogeneous part of the map
    over one period (one step for SGD and EMA with update_every = 1; lcm(update_every,
    switch period) steps for Switch EMA). The run is stable iff it is < 1."""
    problem = _problem(problem)
    lin = _linear(optimizer)
    steps_per_epoch = _check_epochs(lin, steps_per_epoch)
    p = _period(lin, steps_per_epoch)
    if p > MAX_PERIOD and lin.averager.update_every == 1:
        Phi = _long_period_map(lin, problem, p, steps_per_epoch)
    else:
        _, _, Phi, _, _ = _period_map(lin, problem, steps_per_epoch)
    return float(np.max(np.abs(np.linalg.eigvals(Phi[:, :3, :3]))))


def _long_period_map(lin, problem, p, steps_per_epoch):
    """The homogeneous map over a long Switch EMA period with update_every = 1: steps
    1..p-1 all apply the same map A (base step, then EMA), step p applies the switch S
    after it, so the period's map is ``S A A^(p-1) = S A^p``, with ``A^p`` formed by
    repeated squaring (about 2 log2(p) products instead of p)."""
    if lin.sgd.lr.constant is None:
        raise ValueError("spectral_radius needs a constant learning rate (lr a float)")
    late = _late_steps(lin, problem, 1, steps_per_epoch)  # n = 1: not a switch step (p > 1)
    A = late[0][0]
    S = _switch_matrix(problem.dim, 1.0, lin.averager.on_switch == "reset")
    return S @ np.linalg.matrix_power(A, p)


@dataclass(frozen=True, eq=False)
class Stationary:
    """The long-run distribution: stationary for a time-invariant run, periodic (period
    ``period`` steps) for update_every > 1 or Switch EMA. Index ``j`` of every array is
    the phase: the state after steps ``n`` with ``n % period == j`` (phase 0 = right after
    a switch). Fields as in :class:`Moments`, with a phase axis instead of a step axis;
    the average's debias factor is 1 in the limit."""

    period: int
    mean: np.ndarray
    cov: np.ndarray
    mean_w: np.ndarray
    var_w: np.ndarray
    mean_avg: np.ndarray | None
    var_avg: np.ndarray | None
    cov_w_avg: np.ndarray | None
    loss_w: np.ndarray
    loss_avg: np.ndarray | None
    radius: float


def stationary(problem, optimizer, *, steps_per_epoch: int | None = None) -> Stationary:
    """The steady state of a constant-lr run: solves ``S = Phi S Phi^T + Q`` (discrete
    Lyapunov, ``scipy.linalg.solve_discrete_lyapunov``) for the map ``Phi`` over one
    period and the noise ``Q`` it accumulates, and ``m = Phi m + c`` for the mean.

    Raises ValueError if the run is unstable (spectral radius >= 1) or lr is a schedule.
    """
    problem = _problem(problem)
    lin = _linear(optimizer)
    steps_per_epoch = _check_epochs(lin, steps_per_epoch)
    p, late, Phi, Q, _ = _period_map(lin, problem, steps_per_epoch)
    d = problem.dim
    F = Phi[:, :3, :3]
    radii = np.max(np.abs(np.linalg.eigvals(F)), axis=1)
    if np.any(radii >= 1.0):
        i = int(np.argmax(radii))
        raise ValueError(f"the run is unstable: the spectral radius of its map over one period "
                         f"is {radii[i]!r} >= 1 (coordinate {i}, h={problem.h[i]!r}); there "
                         "is no stationary distribution (reduce the learning rate)")
    mean = np.zeros((p, d, 4))
    cov = np.zeros((p, d, 4, 4))
    mean[0, :, ONE] = 1.0
    mean[0, :, :3] = np.linalg.solve(np.eye(3) - F, Phi[:, :3, 3:4])[:, :, 0]
    for i in range(d):
        cov[0, i, :3, :3] = scipy.linalg.solve_discrete_lyapunov(F[i], Q[i, :3, :3])
    sigma2 = np.asarray(problem.c) / problem.batch_size
    for j in range(1, p):  # propagate through the period; late[j - 1] is step n = j
        A, b = late[j - 1]
        mean[j] = np.einsum("dij,dj->di", A, mean[j - 1])
        S = A @ cov[j - 1] @ np.swapaxes(A, 1, 2) + sigma2[:, None, None] * (
            b[:, :, None] * b[:, None, :])
        cov[j] = 0.5 * (S + np.swapaxes(S, 1, 2))
    cov[0] = 0.5 * (cov[0] + np.swapaxes(cov[0], 1, 2))
    mean, cov = mean[:, :, :3], cov[:, :, :3, :3]
    h, w_star = np.asarray(problem.h), np.asarray(problem.w_star)
    mean_w, var_w = mean[:, :, W], cov[:, :, W, W]
    avg = lin.averager is not None
    mean_avg = mean[:, :, EMA_ROW] if avg else None
    var_avg = cov[:, :, EMA_ROW, EMA_ROW] if avg else None
    return Stationary(
        period=p, mean=_frozen(mean), cov=_frozen(cov), mean_w=_frozen(mean_w),
        var_w=_frozen(var_w), mean_avg=_frozen(mean_avg), var_avg=_frozen(var_avg),
        cov_w_avg=_frozen(cov[:, :, W, EMA_ROW]) if avg else None,
        loss_w=_frozen(_expected_loss(h, w_star, mean_w, var_w)),
        loss_avg=_frozen(_expected_loss(h, w_star, mean_avg, var_avg)) if avg else None,
        radius=float(np.max(radii)),
    )
