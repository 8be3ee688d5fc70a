"""The jitted training loop and the record of a run.

``train(problem, optimizer, w0=..., steps=...)`` runs the whole optimisation inside one
numba kernel (:func:`train_kernel`). It calls the very kernels that the public step API
calls, in the same order, so stepping by hand gives the same numbers bit for bit::

    state = opt.init(w0); w = w0
    noise = problem.draw_noise(steps, seed)  # None (Quadratic), (steps, d) normal draws
                                             # (NoisyQuadratic), (steps, B) batches (MLP)
    for t in range(steps):
        grad_fn = problem.grad_fn(None if noise is None else noise[t])
        epoch_end = steps_per_epoch is not None and (t + 1) % steps_per_epoch == 0
        w, state, info = opt.step(w, state, grad_fn, epoch_end=epoch_end)

Inside the kernel an optimizer is its three layers, outermost first: an averager (none,
EMA, SwitchEMA, SWA, Lookahead), a perturbation (none, SAM, StableSAM) and a base (SGD,
Adam, FAME), each
given as a kind code plus arrays of hyperparameters (``_loop_args``). The base state
lives in the rows of one array (1 row for SGD, 3 for Adam, 4 for official FAME (5 with
AMSGrad), 6 for full FAME) plus a (6,) array of scalars; every row starts at zero, as
``init`` makes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl._kernels import add_into, all_finite, decoupled_decay, l2_norm
from refimpl.optimizers.adam import Adam, adam_kernel
from refimpl.optimizers.averagers import (SWA, Lookahead, lookahead_sync_kernel, swa_due,
                                          swa_update_kernel)
from refimpl.optimizers.ema import (EMA, WARMUPS, SwitchEMA, debias_kernel, ema_decay_kernel,
                                    ema_update_kernel, switch_due)
from refimpl.optimizers.fame import (FAME, fame_full_kernel, fame_official_amsgrad_kernel,
                                     fame_official_kernel)
from refimpl.optimizers.sam import (ADAPTIVE, ASCENTS, SAM, StableSAM, ascent_kernel,
                                    stable_rescale_kernel)
from refimpl.optimizers.sgd import SGD, sgd_kernel
from refimpl.problems.mlp import MLPProblem, mlp_loss_grad
from refimpl.problems.quadratic import (NoisyQuadratic, Quadratic, noisy_quadratic_kernel,
                                        quadratic_kernel)

# kind codes of the loop
QUADRATIC, NOISY_QUADRATIC, MLP_PROBLEM = 0, 1, 2
BASE_SGD, BASE_ADAM, BASE_FAME = 0, 1, 2
NO_SAM, PLAIN_SAM, STABLE_SAM = 0, 1, 2
NO_AVERAGE, AVERAGE_EMA, AVERAGE_SEMA, AVERAGE_SWA, AVERAGE_LOOKAHEAD = 0, 1, 2, 3, 4


@dataclass(frozen=True, eq=False)
class Record:
    """What a run produced (arrays are read-only).

    steps : steps completed (less than asked only if the run diverged and
        ``on_divergence="stop"``).
    losses : (steps,) mini-batch loss at the pre-step parameters of each step.
    grad_norms : (steps,) global L2 norm of the first gradient of each step.
    grad_evals : total calls of the gradient oracle (2 per step for SAM-type).
    w : (d,) final parameters.  average : (d,) final EMA average, or None.
    params : (steps + 1, d) parameters after each step, row 0 = w0 (``record_params``).
    averages : (steps + 1, d) EMA averages likewise, or None.
    v_clipped : how often full FAME's v guard changed a value (0 for other optimizers).
    diverged : True if a non-finite loss, gradient or parameter stopped the run.
    seed : the noise seed.
    """

    steps: int
    losses: np.ndarray
    grad_norms: np.ndarray
    grad_evals: int
    w: np.ndarray
    average: np.ndarray | None
    params: np.ndarray | None
    averages: np.ndarray | None
    v_clipped: int
    diverged: bool
    seed: int


@kernel
def base_kernel(kind, hp, flags, w, g, S, R, count, lr):
    """One step of the base optimizer in place; returns full FAME's guard count."""
    t = float(count + 1)
    if kind == BASE_SGD:
        sgd_kernel(w, S[0], g, lr, hp[0], hp[1], hp[2], flags[0] != 0, flags[1] != 0,
                   count == 0, flags[2])
        return 0
    if kind == BASE_ADAM:
        adam_kernel(w, S[0], S[1], S[2], g, lr, hp[0], hp[1], hp[2], hp[3], flags[0] != 0, t,
                    flags[1] != 0, flags[2])
        return 0
    wd = decoupled_decay(w, lr, hp[6], flags[5] != 0)  # FAME with AdamW's decay: 0 after
    if flags[0] == 0 and flags[4] != 0:
        fame_official_amsgrad_kernel(w, S[0], S[1], S[2], S[3], S[4], R[:3], g, lr, hp[0],
                                     hp[1], hp[2], hp[3], hp[5], wd, flags[1] != 0,
                                     flags[2] != 0, t)
        return 0
    if flags[0] == 0:
        fame_official_kernel(w, S[0], S[1], S[2], S[3], R[:3], g, lr, hp[0], hp[1], hp[2],
                             hp[3], hp[5], wd, flags[1] != 0, flags[2] != 0, t)
        return 0
    return fame_full_kernel(w, S[0], S[1], S[2], S[3], S[4], S[5], R, g, lr, hp[0], hp[1],
                            hp[2], hp[3], hp[4], hp[5], wd, flags[1] != 0, flags[2] != 0,
                            flags[3] != 0, t)


@kernel
def train_kernel(problem, H, h, w_star, noise_scale, Z, net, X, Y, batches, w, lrs, steps_per_epoch,
                 base, base_hp, base_flags, sam, rho, sam_eps, ascent,
                 average, decay, warmup, warmup_hp, ema_ints, ema,
                 losses, grad_norms, params, averages, keep_last_finite):
    """Run ``losses.shape[0]`` steps in place on ``w`` and ``ema``.

    ``Z`` (steps, d) holds the noisy quadratic's draws, ``batches`` (steps, B) the
    MLP's mini-batches (the other problems get a (0, d) Z and a (steps, 0) batches).
    ``warmup_hp`` = (gamma, power, min_decay, ratio); ``ema_ints`` = (update_every,
    zeros_start, update_after_step, warmup_steps, switch_every, switch_by_step,
    switch_start, reset_on_switch, copy_until); for SWA and Lookahead the same slots hold
    (1, 0, 0, 0, every (swa_every or k), unit_is_step, swa_start, reset_on_sync,
    first_start) and ``decay`` holds Lookahead's alpha. ``params`` / ``averages`` have
    steps + 1 rows when
    recorded, else 0. Returns (steps completed, gradient evaluations, decay product,
    FAME guard count).
    """
    d = w.shape[0]
    steps = losses.shape[0]
    record = params.shape[0] > 0
    g = np.empty(d)
    e = np.empty(d)
    w_adv = np.empty(d)
    g_adv = np.empty(d)
    g_descent = np.empty(d)
    # to hand back the last finite iterate if an update overflows (only when the record
    # is returned on divergence: keep_last_finite, i.e. on_divergence="stop")
    w_before = np.empty(d if keep_last_finite else 0)
    # the base state rows: SGD's buffer, Adam's m, v and v_max, official FAME's 4 (5 with
    # AMSGrad's v_max), full FAME's 6
    if base == BASE_SGD:
        rows = 1
    elif base == BASE_ADAM:
        rows = 3
    elif base_flags[0] == 0:
        rows = 5 if base_flags[4] else 4
    else:
        rows = 6
    S = np.zeros((rows, d))
    R = np.zeros(6)
    count = 0
    evals = 0
    clipped = 0
    product = 1.0
    epoch = 0
    snapshots = 0  # SWA's snapshots, Lookahead's syncs
    if record:
        params[0, :] = w
        if average != NO_AVERAGE:
            if ema_ints[1]:
                debias_kernel(ema, product, averages[0])
            else:
                averages[0, :] = ema
    for t in range(steps):
        # the mini-batch loss and gradient at w (the problem kinds are dispatched here,
        # not through a helper: a call with every problem's arrays cost ~100 ns a step)
        if problem == QUADRATIC:
            loss = quadratic_kernel(H, w_star, w, g)
        elif problem == NOISY_QUADRATIC:
            loss = noisy_quadratic_kernel(h, w_star, noise_scale, Z[t], w, g)
        else:
            loss = mlp_loss_grad(net, w, X, Y, batches[t], g)
        evals += 1
        if not (np.isfinite(loss) and all_finite(g)):
            return t, evals, product, clipped
        losses[t] = loss
        grad_norms[t] = l2_norm(g)
        if keep_last_finite:
            w_before[:] = w
        descent = g
        if sam != NO_SAM:
            # SAM: the gradient at w + e on the same mini-batch
            ascent_kernel(w, g, rho, sam_eps, ascent, e)
            add_into(w, e, w_adv)
            if problem == QUADRATIC:
                loss_adv = quadratic_kernel(H, w_star, w_adv, g_adv)
            elif problem == NOISY_QUADRATIC:
                loss_adv = noisy_quadratic_kernel(h, w_star, noise_scale, Z[t], w_adv, g_adv)
            else:
                loss_adv = mlp_loss_grad(net, w_adv, X, Y, batches[t], g_adv)
            evals += 1
            # the loss at w + e is not used, but the step API's oracle check rejects a
            # non-finite one: so does the loop, and both stop at the same step
            if not (np.isfinite(loss_adv) and all_finite(g_adv)):
                return t, evals, product, clipped
            if sam == STABLE_SAM:
                stable_rescale_kernel(w, w_adv, g, g_adv, sam_eps, ascent >= ADAPTIVE, g_descent)
                descent = g_descent
            else:
                descent = g_adv
        # the base optimizer's step at w with the descent gradient
        clipped += base_kernel(base, base_hp, base_flags, w, descent, S, R, count, lrs[t])
        count += 1
        if not all_finite(w):
            if keep_last_finite:
                w[:] = w_before
            return t, evals, product, clipped
        n = t + 1
        epoch_end = steps_per_epoch > 0 and n % steps_per_epoch == 0
        if epoch_end:
            epoch += 1
        if average == AVERAGE_SWA:
            if swa_due(n, epoch, epoch_end, ema_ints[4], ema_ints[5] != 0, ema_ints[6]):
                swa_update_kernel(ema, w, snapshots)
                snapshots += 1
        elif average == AVERAGE_LOOKAHEAD:
            if n % ema_ints[4] == 0:
                lookahead_sync_kernel(ema, w, decay, ema_ints[8] != 0 and snapshots == 0)
                snapshots += 1
                if ema_ints[7]:
                    S[:, :] = 0.0
                    R[:] = 0.0
                    count = 0
        elif average != NO_AVERAGE:
            if n % ema_ints[0] == 0:
                rate = ema_decay_kernel(n, decay, warmup, ema_ints[2], warmup_hp[0],
                                        warmup_hp[1], warmup_hp[2], warmup_hp[3], ema_ints[3],
                                        ema_ints[8])
                ema_update_kernel(ema, w, rate)
                product = product * rate
            if average == AVERAGE_SEMA and switch_due(n, epoch, epoch_end, ema_ints[4],
                                                      ema_ints[5] != 0, ema_ints[6],
                                                      ema_ints[1] != 0, ema_ints[0]):
                if ema_ints[1]:
                    debias_kernel(ema, product, w)
                else:
                    w[:] = ema
                if ema_ints[7]:
                    S[:, :] = 0.0
                    R[:] = 0.0
                    count = 0
        if record:
            params[n, :] = w
            if average != NO_AVERAGE:
                if ema_ints[1]:
                    debias_kernel(ema, product, averages[n])
                else:
                    averages[n, :] = ema
    return steps, evals, product, clipped


DIVERGENCE = ("raise", "stop")


def train(problem, optimizer, *, w0, steps: int | None = None, epochs: int | None = None,
          steps_per_epoch: int | None = None, seed: int = 0, record_params: bool = False,
          on_divergence: str = "raise") -> Record:
    """Run ``optimizer`` on ``problem`` from ``w0`` inside the jitted loop.

    Parameters
    ----------
    problem : Quadratic, NoisyQuadratic or MLPProblem.
    optimizer : a base optimizer (SGD, Adam, FAME), optionally wrapped as
        ``SAM/StableSAM(base)`` and then ``EMA/SwitchEMA/SWA/Lookahead(...)``.
    w0 : (d,) float64 initial parameters (not modified).
    steps : number of steps; or ``epochs`` with ``steps_per_epoch``.
    steps_per_epoch : int >= 1; marks epoch ends (``(t + 1) % steps_per_epoch == 0``),
        which SwitchEMA with ``switch_unit="epoch"`` needs. An MLPProblem defines it
        (``n // batch_size``): omit it there (or give the same value).
    seed : int >= 0, seeds the noise of a NoisyQuadratic or the mini-batch shuffling of
        an MLPProblem (``problem.draw_noise``).
    record_params : keep every iterate (and EMA average): (steps + 1, d) arrays.
    on_divergence : "raise" (FloatingPointError naming the step) or "stop" (return the
        record up to the last finite step, with ``diverged=True``).
    """
    if not isinstance(problem, (Quadratic, NoisyQuadratic, MLPProblem)):
        raise TypeError("problem must be a Quadratic, NoisyQuadratic or MLPProblem, got "
                        f"{type(problem).__name__}")
    d = problem.dim
    w0 = _validate.vector("w0", w0, size=d)
    seed = _validate.integer("seed", seed, lo=0)
    _validate.flag("record_params", record_params)
    _validate.choice("on_divergence", on_divergence, DIVERGENCE)
    if steps_per_epoch is not None:
        steps_per_epoch = _validate.integer("steps_per_epoch", steps_per_epoch, lo=1)
    if isinstance(problem, MLPProblem):  # the data set defines the epoch
        if steps_per_epoch is not None and steps_per_epoch != problem.steps_per_epoch:
            raise ValueError(f"steps_per_epoch must equal the problem's ({problem.steps_per_epoch} = "
                             f"{problem.n} examples // batch_size {problem.batch_size}) or be "
                             f"omitted, got {steps_per_epoch}")
        steps_per_epoch = problem.steps_per_epoch
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps= and epochs=")
    if epochs is not None:
        epochs = _validate.integer("epochs", epochs, lo=0)
        if steps_per_epoch is None:
            raise ValueError("epochs= needs steps_per_epoch= (a quadratic has no data set "
                             "that would define an epoch)")
        steps = epochs * steps_per_epoch
    steps_name = "steps" if epochs is None else "epochs * steps_per_epoch"
    steps = _validate.integer(steps_name, steps, lo=0)

    averager, sam, base = _layers(optimizer)
    rows = steps + 1 if record_params else 0
    per_step = {Quadratic: 0, NoisyQuadratic: d}.get(type(problem), 2 * getattr(problem, "batch_size", 0))
    _validate.allocation(steps_name, steps, 8 * (3 * steps + per_step * steps
                                              + rows * d * (1 if averager is None else 2)),
                         "the run's record, rates and noise")
    if (isinstance(averager, SwitchEMA) and averager.switch_unit == "epoch"
            and steps_per_epoch is None):
        raise ValueError("SwitchEMA with switch_unit='epoch' switches at epoch ends: pass "
                         "steps_per_epoch= (or epochs= and steps_per_epoch=), or use "
                         "switch_unit='step'")
    if isinstance(averager, SWA) and averager.swa_unit == "epoch" and steps_per_epoch is None:
        raise ValueError("SWA with swa_unit='epoch' takes its snapshots at epoch ends: pass "
                         "steps_per_epoch= (or epochs= and steps_per_epoch=), or use "
                         "swa_unit='step'")

    # problem arrays (writable copies, so every problem has one compiled loop); the
    # arrays a problem does not use are small placeholders
    H, h, w_star, noise_scale = np.zeros((1, 1)), np.zeros(d), np.zeros(d), np.zeros(d)
    Z, net = np.zeros((0, d)), np.zeros(3, dtype=np.int64)
    X, Y, batches = np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((steps, 0), dtype=np.int64)
    if isinstance(problem, Quadratic):
        kind, H, w_star = QUADRATIC, np.array(problem.H), np.array(problem.w_star)
    elif isinstance(problem, NoisyQuadratic):
        kind, h, w_star = NOISY_QUADRATIC, np.array(problem.h), np.array(problem.w_star)
        noise_scale, Z = np.array(problem.noise_scale), problem.draw_noise(steps, seed)
    else:
        kind, net = MLP_PROBLEM, np.array(problem.mlp.net)
        X, Y, batches = np.array(problem.X), np.array(problem.Y), problem.draw_noise(steps, seed)

    base_kind = BASE_SGD if isinstance(base, SGD) else (BASE_ADAM if isinstance(base, Adam)
                                                        else BASE_FAME)
    base_hp, base_flags = base._loop_args()
    lrs = base.lr.array(steps)
    sam_kind = NO_SAM if sam is None else (STABLE_SAM if isinstance(sam, StableSAM) else PLAIN_SAM)
    rho = 0.0 if sam is None else sam.rho
    sam_eps = 0.0 if sam is None else sam.eps
    ascent = 0 if sam is None else ASCENTS.index(sam.ascent)

    w = w0.copy()
    if averager is None:
        average_kind, decay, warmup = NO_AVERAGE, 0.0, 0
        warmup_hp, ema_ints, ema = np.zeros(4), np.zeros(9, dtype=np.int64), np.zeros(d)
    elif isinstance(averager, SWA):
        average_kind, decay, warmup, warmup_hp = AVERAGE_SWA, 0.0, 0, np.zeros(4)
        ema_ints = np.array([1, 0, 0, 0, averager.swa_every, averager.swa_unit == "step",
                             averager.swa_start, 0, 0], dtype=np.int64)
        ema = averager.init(w0).average
    elif isinstance(averager, Lookahead):
        average_kind, decay, warmup, warmup_hp = AVERAGE_LOOKAHEAD, averager.alpha, 0, np.zeros(4)
        ema_ints = np.array([1, 0, 0, 0, averager.k, 1, 0, averager.on_sync == "reset",
                             averager.start == "first"], dtype=np.int64)
        ema = averager.init(w0).slow
    else:
        a = averager
        average_kind = AVERAGE_SEMA if isinstance(a, SwitchEMA) else AVERAGE_EMA
        decay, warmup = a.decay, WARMUPS.index(a.warmup)
        warmup_hp = np.array([a.warmup_gamma, a.warmup_power, a.min_decay, a.warmup_ratio])
        switch = (a.switch_every, a.switch_unit == "step", a.switch_start,
                  a.on_switch == "reset") if average_kind == AVERAGE_SEMA else (1, 0, 0, 0)
        ema_ints = np.array([a.update_every, a.start == "zeros", a.update_after_step,
                             a.warmup_steps, *switch, a.copy_until()], dtype=np.int64)
        ema = a.init(w0).ema

    losses, grad_norms = np.zeros(steps), np.zeros(steps)
    params = np.zeros((rows, d))
    averages = np.zeros((rows if averager is not None else 0, d))

    done, evals, product, clipped = train_kernel(
        kind, H, h, w_star, noise_scale, Z, net, X, Y, batches, w, lrs, steps_per_epoch or 0,
        base_kind, base_hp, base_flags, sam_kind, rho, sam_eps, ascent,
        average_kind, decay, warmup, warmup_hp, ema_ints, ema,
        losses, grad_norms, params, averages, on_divergence == "stop")

    diverged = done < steps
    if diverged and on_divergence == "raise":
        raise FloatingPointError(
            f"the run diverged at step {done} (0-based): a non-finite loss, gradient or "
            "parameter; pass on_divergence='stop' to get the record up to that step"
        )
    final_average = None
    if averager is not None:
        final_average = np.empty(d)
        if isinstance(averager, EMA) and averager.start == "zeros":
            debias_kernel(ema, product, final_average)
        else:
            final_average[:] = ema
    if diverged:  # keep the finite prefix only; w is the iterate after `done` steps
        losses, grad_norms = losses[:done], grad_norms[:done]
        params, averages = params[: done + 1 if rows else 0], averages[: done + 1 if rows else 0]
    return Record(
        steps=int(done), losses=_ro(losses), grad_norms=_ro(grad_norms), grad_evals=int(evals),
        w=_ro(w), average=None if final_average is None else _ro(final_average),
        params=_ro(params) if record_params else None,
        averages=_ro(averages) if (record_params and averager is not None) else None,
        v_clipped=int(clipped), diverged=bool(diverged), seed=seed,
    )


def _layers(optimizer):
    """Split an optimizer into (averager or None, SAM or None, base)."""
    averager = sam = None
    inner = optimizer
    if isinstance(inner, (EMA, SWA, Lookahead)):
        averager, inner = inner, inner.inner
    if isinstance(inner, SAM):
        sam, inner = inner, inner.base
    if not isinstance(inner, (SGD, Adam, FAME)):
        raise TypeError(f"optimizer must be SGD, Adam or FAME, optionally wrapped as "
                        f"SAM/StableSAM(...) and then EMA/SwitchEMA/SWA/Lookahead(...); got "
                        f"{type(optimizer).__name__}")
    return averager, sam, inner


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
