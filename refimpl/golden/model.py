"""The error model behind the golden tolerances: every optimizer's step written a second
time, in the rounding-error arithmetic of :mod:`refimpl.golden.bounds`, straight from
the formulas of FORMAT.md (not from refimpl's kernels).

It serves twice. (1) It derives the tolerances: along the case's own trajectory it
computes, per step, the Jacobian ``J_t`` of the step map and the bound ``delta_t`` of the
step's own roundings, and bounds the error of the state after step t by
``E_t = sum_{s <= t} |J_t ... J_{s+1}| delta_s`` (first order in u; the product is
formed with its signs before the absolute value, so a contracting step map keeps its
contraction). Losses and averages are bounded likewise. (2) Its float64 values are an
independent implementation, and the writer checks that refimpl agrees with it within
``2 E`` (both follow the same formulas with the same rounding budget): the tolerance
admits a second, independently written implementation by construction.

Every function takes the case's JSON objects (dicts), so the model reads exactly what
an adapter reads.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal

import numpy as np

from refimpl.golden import bounds as B
from refimpl.golden.bounds import Ctx, IllConditioned, Val, lincomb

#: the margin of the tolerance: tol = MARGIN * (E_impl + E_ref), FORMAT.md explains it
MARGIN = 2.0


# -- state layout ---------------------------------------------------------------------

def state_layout(optimizer: dict, d: int) -> list[tuple[str, int]]:
    """The numbers carried from step to step, in order: (name, size)."""
    base = optimizer["base"]
    names = [("w", d)]
    if base["kind"] == "sgd":
        names.append(("buf", d))
    elif base["kind"] == "adam":
        names += [("m", d), ("v", d)]
        if base.get("amsgrad") is not None:
            names.append(("v_max", d))
    elif base["variant"] == "official":
        names += [("m1", d), ("m2", d), ("m3", d), ("v", d), ("resp", 3)]
        if base.get("amsgrad", False):
            names.append(("v_max", d))
    else:
        names += [("m1", d), ("m2", d), ("m3", d), ("v1", d), ("v2", d), ("v3", d),
                  ("resp", 6)]
    if optimizer["average"] is not None:
        names += [("ema", d), ("prod", 1)]
    return names


def initial_state(optimizer: dict, w0: np.ndarray) -> dict[str, np.ndarray]:
    """The state before step 1: zero buffers, ``ema = w0`` (copy) or 0, product 1."""
    state = {name: np.zeros(size) for name, size in state_layout(optimizer, w0.shape[0])}
    state["w"] = w0.copy()
    average = optimizer["average"]
    if average is not None:
        if average.get("start", "copy") != "zeros":  # SWA and Lookahead start at w0
            state["ema"] = w0.copy()
        state["prod"] = np.ones(1)
    return state


# -- problems ---------------------------------------------------------------------------

def oracle(ctx: Ctx, problem: dict, step: dict, w: Val):
    """``(loss, g)`` of the step's mini-batch at ``w`` (FORMAT.md, "Problems")."""
    kind = problem["kind"]
    if kind == "quadratic":
        r = w - ctx.const(problem["w_star"])
        g = B.matvec(np.asarray(problem["H"], dtype=np.float64), r)
        return 0.5 * B.dot(r, g), g
    if kind == "noisy_quadratic":
        r = w - ctx.const(problem["w_star"])
        h = ctx.const(problem["h"])
        xi = ctx.const(problem["noise_scale"]) * ctx.const(step["noise"])
        g = h * r + xi
        terms = 0.5 * h * r * r + xi * r
        return B.total(terms), g
    if kind == "replay":
        g = ctx.const(step["gradient"])
        return B.dot(g, w), g
    if kind == "mlp":
        return mlp_oracle(ctx, problem, step, w)
    raise ValueError(f"unknown problem kind {kind!r}")


def mlp_oracle(ctx: Ctx, problem: dict, step: dict, w: Val):
    """The MLP's mini-batch loss and gradient (FORMAT.md section 3.4): tanh or relu
    (refused when a pre-activation comes within its error bound of relu's kink, see
    :func:`refimpl.golden.bounds.relu`), mse or softmax cross-entropy."""
    sizes, act, loss_kind = problem["sizes"], problem["activation"], problem["loss"]
    X, Y = np.asarray(problem["X"], dtype=np.float64), np.asarray(problem["Y"], dtype=np.float64)
    idx = np.asarray(step["batch"], dtype=np.int64)
    batch = idx.shape[0]
    acts = [[ctx.const(X[idx, k]) for k in range(sizes[0])]]  # per unit: (B,) over the batch
    layers, p = [], 0
    for layer, (n_i, n_o) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = [[w[p + j * n_i + k] for k in range(n_i)] for j in range(n_o)]
        bias = [w[p + n_o * n_i + j] for j in range(n_o)]
        p += n_o * n_i + n_o
        z = [lincomb((1.0, bias[j]), *((W[j][k], acts[-1][k]) for k in range(n_i)))
             for j in range(n_o)]
        hidden = layer < len(sizes) - 2
        sigma = B.tanh if act == "tanh" else B.relu
        acts.append([sigma(zj) for zj in z] if hidden else z)
        layers.append(W)
    n_out = sizes[-1]
    if loss_kind == "mse":
        r = [acts[-1][j] - ctx.const(Y[idx, j]) for j in range(n_out)]
        total = B.sum_of_squares(B.concat([r[j][b] for b in range(batch) for j in range(n_out)]))
        loss = total / ctx.const(float(batch * n_out))
        scale = ctx.const(2.0) / ctx.const(float(batch * n_out))
        delta = [scale * rj for rj in r]
    else:
        loss, delta = _xent_head(ctx, acts[-1], Y[idx], batch)
    grads = []
    for layer in range(len(sizes) - 2, -1, -1):
        n_i, n_o = sizes[layer], sizes[layer + 1]
        a_in, W = acts[layer], layers[layer]
        dW = [B.dot(delta[j], a_in[k]) for j in range(n_o) for k in range(n_i)]
        db = [B.total(delta[j]) for j in range(n_o)]
        grads.append(dW + db)
        if layer > 0:
            back = [lincomb(*((W[j][k], delta[j]) for j in range(n_o))) for k in range(n_i)]
            if act == "tanh":
                delta = [back[k] * (1.0 - a_in[k] * a_in[k]) for k in range(n_i)]
            else:  # relu' = 1 where a > 0 (z > 0, away from the kink), else 0: exact
                delta = [back[k] * ctx.const((a_in[k].v > 0.0).astype(float))
                         for k in range(n_i)]
    g = B.concat([part for block in reversed(grads) for part in block])
    return loss, g


def _xent_head(ctx: Ctx, f, Y, batch):
    """Softmax cross-entropy (FORMAT.md section 3.4) in refimpl's order: per example the
    logits' maximum m, s = sum_j exp(f_j - m), loss term y_j ((m - f_j) + log s), and
    dLoss/df_j = (softmax_j sum(y) - y_j) / B. ``f``: n_out Vals over the batch."""
    n_out = len(f)
    m = f[0]
    for j in range(1, n_out):
        m = B.maximum(m, f[j])
    shifted = [B.exp(f[j] - m) for j in range(n_out)]
    s = shifted[0]
    for j in range(1, n_out):
        s = s + shifted[j]
    log_s = B.log(s)
    y_sum = Y.sum(axis=1)
    terms = [ctx.const(Y[:, j]) * ((m - f[j]) + log_s) for j in range(n_out)]
    loss = B.total(B.concat([terms[j][b] for b in range(batch) for j in range(n_out)]))
    loss = loss / ctx.const(float(batch))
    delta = [((shifted[j] / s) * ctx.const(y_sum) - ctx.const(Y[:, j])) / ctx.const(float(batch))
             for j in range(n_out)]
    return loss, delta


# -- base optimizers ------------------------------------------------------------------------

def _prepare(ctx, hp, w, g):
    """maximize, then coupled weight decay: ``g <- -g``; ``g <- g + wd w``."""
    if hp["maximize"]:
        g = -g
    if hp["weight_decay"] != 0.0:
        g = lincomb((1.0, g), (ctx.const(hp["weight_decay"]), w))
    return g


def _one_minus(ctx, b):
    return ctx.const(1.0) - ctx.const(b)


def _ema(ctx, m, x, b):
    """``b m + (1 - b) x``."""
    return lincomb((ctx.const(b), m), (_one_minus(ctx, b), x))


def _tema(m1, m2, m3):
    return lincomb((3.0, m1), (-3.0, m2), (1.0, m3))


def sgd(ctx, hp, S, w, g, lr, count):
    g = _prepare(ctx, hp, w, g)
    mu, lr = hp["momentum"], ctx.const(lr)
    buf = S["buf"]
    if mu == 0.0:
        return lincomb((1.0, w), (-lr, g)), {"buf": buf}
    mu = ctx.const(mu)
    convention = hp["convention"]
    if convention == "keras":
        v = lincomb((mu, buf), (-lr, g))
        if hp["nesterov"]:
            return lincomb((1.0, w), (mu, v), (-lr, g)), {"buf": v}
        return lincomb((1.0, w), (1.0, v)), {"buf": v}
    if convention == "optax":
        b = lincomb((1.0, g), (mu, buf))
    elif count == 0:
        b = g  # PyTorch's first step: buf = g, no dampening
    else:
        b = lincomb((mu, buf), (_one_minus(ctx, hp["dampening"]), g))
    direction = lincomb((1.0, g), (mu, b)) if hp["nesterov"] else b
    return lincomb((1.0, w), (-lr, direction)), {"buf": b}


def _prepare_decay(ctx, hp, w, g, lr):
    """(w, g) after maximize and the weight decay: coupled (``_prepare``) or, with the
    optional ``decoupled_weight_decay``, AdamW's ``w (1 - lr wd)`` first (4.2, 4.3)."""
    if not hp.get("decoupled_weight_decay", False):
        return w, _prepare(ctx, hp, w, g)
    if hp["maximize"]:
        g = -g
    if hp["weight_decay"] != 0.0:
        w = w * (1.0 - ctx.const(lr) * ctx.const(hp["weight_decay"]))
    return w, g


def adam(ctx, hp, S, w, g, lr, count):
    w, g = _prepare_decay(ctx, hp, w, g, lr)
    t = count + 1
    m = _ema(ctx, S["m"], g, hp["beta1"])
    v = lincomb((ctx.const(hp["beta2"]), S["v"]), (_one_minus(ctx, hp["beta2"]), g * g))
    step_size = ctx.const(lr) / (1.0 - B.int_power(ctx, hp["beta1"], t))
    bias2 = 1.0 - B.int_power(ctx, hp["beta2"], t)
    new = {"m": m, "v": v}
    amsgrad = hp.get("amsgrad")
    if amsgrad == "raw":
        new["v_max"] = B.maximum(S["v_max"], v)
        denom = B.sqrt(new["v_max"]) / B.sqrt(bias2) + ctx.const(hp["eps"])
    elif amsgrad == "debiased":
        new["v_max"] = B.maximum(S["v_max"], v / bias2)
        denom = B.sqrt(new["v_max"]) + ctx.const(hp["eps"])
    else:
        denom = B.sqrt(v) / B.sqrt(bias2) + ctx.const(hp["eps"])
    return lincomb((1.0, w), (-step_size, m / denom)), new


def _response(ctx, resp, decays):
    """The EMA chain's response to a constant 1 (exact debiasing), and its TEMA."""
    r = [resp[i] for i in range(3)]
    r[0] = _ema(ctx, r[0], ctx.const(1.0), decays[0])
    r[1] = _ema(ctx, r[1], r[0], decays[1])
    r[2] = _ema(ctx, r[2], r[1], decays[2])
    return r, _tema(*r)


def fame(ctx, hp, S, w, g, lr, count):
    w, g = _prepare_decay(ctx, hp, w, g, lr)
    t = count + 1
    b1, b2, b3, b4, b5 = (hp[k] for k in ("beta1", "beta2", "beta3", "beta4", "beta5"))
    exact = hp["debias"] == "exact"
    full = hp["variant"] == "full"
    resp = S["resp"]
    new = {}
    if exact:
        rm, m_correction = _response(ctx, [resp[i] for i in range(3)], (b1, b3, b5 if full else b4))
        parts = rm
        if full:
            rv, v_correction = _response(ctx, [resp[i] for i in range(3, 6)], (b2, b4, b5))
            parts = rm + rv
        new["resp"] = B.concat(parts)
    else:
        new["resp"] = resp
        m_correction = 1.0 - B.int_power(ctx, b1, t)
        v_correction = 1.0 - B.int_power(ctx, b2, t)
    step_size = ctx.const(lr) / m_correction
    m1 = _ema(ctx, S["m1"], g, b1)
    m2 = _ema(ctx, S["m2"], m1, b3)
    m3 = _ema(ctx, S["m3"], m2, b5 if full else b4)
    tema = _tema(m1, m2, m3)
    new.update(m1=m1, m2=m2, m3=m3)
    adam_v_name = "v1" if full else "v"
    v1 = lincomb((ctx.const(b2), S[adam_v_name]), (_one_minus(ctx, b2), g * g))
    adam_correction = B.sqrt(1.0 - B.int_power(ctx, b2, t))
    if not full:
        new["v"] = v1
        if hp.get("amsgrad", False):  # the authors' flag: torch's raw maximum
            new["v_max"] = v1 = B.maximum(S["v_max"], v1)
        denom = B.sqrt(v1) / adam_correction + ctx.const(hp["eps"])
    else:
        v2 = _ema(ctx, S["v2"], v1, b4)
        v3 = _ema(ctx, S["v3"], v2, b5)
        new.update(v1=v1, v2=v2, v3=v3)
        v_tema = _tema(v1, v2, v3)
        zero = ctx.const(0.0)
        d_tema = B.sqrt(B.maximum(v_tema, zero)) / B.sqrt(v_correction)
        if hp["v_guard"] == "adam":
            d_tema = B.maximum(d_tema, B.sqrt(v1) / adam_correction)
        denom = d_tema + ctx.const(hp["eps"])
    return lincomb((1.0, w), (-step_size, tema / denom)), new


BASES = {"sgd": sgd, "adam": adam, "fame": fame}


# -- SAM and StableSAM ------------------------------------------------------------------------

def _guarded_ratio(ctx, numerator, denominator):
    """``numerator / denominator``, or 0 where refimpl's guard finds denominator == 0."""
    if denominator.v[0] == 0.0:
        ctx.kinks.append(("zero denominator", denominator, np.array([True])))
        return ctx.const(0.0)
    return numerator / denominator


def ascent(ctx, sam, w, g):
    rho = ctx.const(sam["rho"])
    if sam["ascent"] == "unnormalized":
        return rho * g
    if sam["ascent"] == "adaptive_unnormalized":
        return w * w * g * rho
    eps = ctx.const(sam["eps"])
    if sam["ascent"] == "normalized":
        scale = _guarded_ratio(ctx, rho, B.sqrt(B.sum_of_squares(g)) + eps)
        return g * scale
    scale = _guarded_ratio(ctx, rho, B.sqrt(B.sum_of_squares(B.absolute(w) * g)) + eps)
    return w * w * g * scale


def stable_rescale(ctx, sam, w, w_adv, g, g_adv):
    eps = ctx.const(sam["eps"])
    if sam["ascent"] in ("adaptive", "adaptive_unnormalized"):
        numerator = B.sqrt(B.sum_of_squares(B.absolute(w) * g))
        denominator = B.sqrt(B.sum_of_squares(B.absolute(w_adv) * g_adv)) + eps
    else:
        numerator = B.sqrt(B.sum_of_squares(g))
        denominator = B.sqrt(B.sum_of_squares(g_adv)) + eps
    return g_adv * _guarded_ratio(ctx, numerator, denominator)


# -- EMA and Switch EMA ---------------------------------------------------------------------------

def decay_at(ctx, av, n):
    """The EMA decay after optimizer step n (FORMAT.md, "EMA")."""
    if av["start"] == "first" and n <= max(av["update_every"], av["update_after_step"] + 1):
        return ctx.const(0.0)  # the first update copies w
    decay = ctx.const(av["decay"])
    warmup = av["warmup"]
    if warmup is None:
        return decay
    if warmup == "timm":
        s = max(0, n - av["update_after_step"] - 1)
        if s <= 0:
            return ctx.const(0.0)
        base = 1.0 + ctx.const(float(s)) / ctx.const(av["warmup_gamma"])
        value = 1.0 - B.real_power(base, -av["warmup_power"])
        value = B.maximum(value, ctx.const(av["min_decay"]))
        return -B.maximum(-value, -decay)  # min(value, decay)
    i, steps, ratio = n - 1, av["warmup_steps"], ctx.const(av["warmup_ratio"])
    if i > steps:
        return decay
    if warmup == "constant":
        return ratio * decay
    fraction = ctx.const(float(i)) / ctx.const(float(steps))
    if warmup == "linear":
        k = (1.0 - fraction) * (1.0 - ratio)
        return (1.0 - k) * decay
    return B.real_power(ratio, 1.0 - fraction) * decay


def report_average(ctx, av, ema, prod):
    """The reported average: the buffer (copy start) or ``ema / (1 - prod)`` (zeros)."""
    if av["start"] != "zeros" or prod.v[0] == 1.0:
        return ema
    return ema / (1.0 - prod)


def switch_due(av, n, epoch, epoch_end):
    if av["kind"] != "switch_ema":
        return False
    if av["start"] == "zeros" and n < av["update_every"]:
        return False
    if av["switch_unit"] == "step":
        return n % av["switch_every"] == 0 and n > av["switch_start"]
    return epoch_end and epoch % av["switch_every"] == 0 and epoch > av["switch_start"]


def _snapshot_due(av, n, epoch, epoch_end):
    if av["swa_unit"] == "step":
        return n % av["swa_every"] == 0 and n > av["swa_start"]
    return epoch_end and epoch % av["swa_every"] == 0 and epoch > av["swa_start"]


def _swa_or_lookahead(ctx, av, ema, w, n, epoch, epoch_end, k):
    """SWA's snapshot (FORMAT.md 4.7) or Lookahead's sync (4.8) after base step n:
    ``(average, event)``, the new average (the slow weights) and whether a snapshot or a
    sync happened (a Lookahead sync also sets w to the average)."""
    if av["kind"] == "swa":
        if not _snapshot_due(av, n, epoch, epoch_end):
            return ema, False
        return (w if k == 0 else ema + (w - ema) / ctx.const(float(k + 1))), True
    if n % av["k"] != 0:
        return ema, False
    if av["start"] == "first" and k == 0:
        return w, True
    return ema + ctx.const(av["alpha"]) * (w - ema), True


def _reset_base(ctx, new, inner):
    """The base optimizer's state re-initialised (Switch EMA's and Lookahead's reset)."""
    for name, value in inner.items():
        new[name] = ctx.const(np.zeros(value.v.shape[0]))


# -- one step ------------------------------------------------------------------------------------

def step(ctx, case, S, counters, step_data):
    """One step of the case's optimizer on Vals. Returns (new state dict, loss Val,
    average Val or None, new counters (n, count, epoch, k)); k counts SWA's snapshots or
    Lookahead's syncs."""
    optimizer, problem = case["optimizer"], case["problem"]
    n, count, epoch, k = counters
    w = S["w"]
    loss, g = oracle(ctx, problem, step_data, w)
    sam = optimizer["sam"]
    if sam is None:
        g_descent = g
    else:
        w_adv = w + ascent(ctx, sam, w, g)
        _, g_adv = oracle(ctx, problem, step_data, w_adv)
        g_descent = g_adv if sam["kind"] == "sam" else stable_rescale(ctx, sam, w, w_adv, g, g_adv)
    base = optimizer["base"]
    w_new, inner = BASES[base["kind"]](ctx, base, S, w, g_descent, step_data["lr"], count)
    new = {"w": w_new, **inner}
    n, count = n + 1, count + 1
    epoch_end = bool(step_data["epoch_end"])
    epoch = epoch + 1 if epoch_end else epoch
    av = optimizer["average"]
    average = None
    if av is not None and av["kind"] in ("swa", "lookahead"):
        average, event = _swa_or_lookahead(ctx, av, S["ema"], w_new, n, epoch, epoch_end, k)
        new["ema"], new["prod"] = average, S["prod"]
        if event:
            k += 1
            if av["kind"] == "lookahead":
                new["w"] = average
                if av["on_sync"] == "reset":
                    _reset_base(ctx, new, inner)
                    count = 0
        return new, loss, average, (n, count, epoch, k)
    if av is not None:
        ema, prod = S["ema"], S["prod"]
        if n % av["update_every"] == 0:
            decay = decay_at(ctx, av, n)
            ema = lincomb((decay, ema), (1.0 - decay, w_new))
            prod = prod * decay
        new["ema"], new["prod"] = ema, prod
        average = report_average(ctx, av, ema, prod)
        if switch_due(av, n, epoch, epoch_end):
            new["w"] = average
            if av["on_switch"] == "reset":
                _reset_base(ctx, new, inner)
                count = 0
    return new, loss, average, (n, count, epoch, k)


# -- propagation across steps ------------------------------------------------------------------------

class Propagator:
    """Keeps ``P_{t,s} = J_t ... J_{s+1}`` (restricted to the state entries where
    ``delta_s > 0``) for every earlier step s, so that a value computed in the current
    step from the state S_{t-1} has the total bound
    ``e + sum_s |d P_{t-1,s}| delta_s`` (``e``: this step's roundings, ``d``: its
    derivative with respect to S_{t-1})."""

    def __init__(self, n: int):
        self.n = n
        self.blocks: list[tuple[np.ndarray, np.ndarray]] = []

    def total(self, val: Val) -> np.ndarray:
        """(2, k) total error bound of ``val`` (rows: implementation, refimpl)."""
        e = np.broadcast_to(val.e, (2, val.v.shape[0])).copy()
        if val.d is not None:
            d = np.broadcast_to(val.d, (val.v.shape[0], self.n))
            for P, delta in self.blocks:
                e += (np.abs(d @ P) @ delta.T).T
        return e

    def advance(self, J: np.ndarray, delta: np.ndarray) -> None:
        self.blocks = [(J @ P, dl) for P, dl in self.blocks]
        keep = (delta > 0.0).any(axis=0)
        if keep.any():
            self.blocks.append((np.eye(self.n)[:, keep], delta[:, keep]))


def check_kinks(ctx: Ctx, prop: Propagator, step_number: int) -> None:
    """Refuse a step where a guarded division's zero denominator is uncertain: an
    implementation could then divide by a tiny non-zero number instead."""
    for what, x, mask in ctx.kinks:
        if np.any(prop.total(x)[:, mask] > 0.0):
            raise IllConditioned(f"step {step_number}: {what} with a non-zero error bound")


def run(case: dict, u_impl: float, u_ref: float = B.U64, *, steps: int | None = None):
    """Run the model over the case's steps (the completed ones: ``steps``, default all).

    Returns a list of per-step dicts with the model's float64 values (``params``,
    ``average``, ``loss``) and their total error bounds (``E_params``, ``E_average``,
    ``E_loss``, each (2, k): row 0 for u_impl, row 1 for u_ref)."""
    optimizer = case["optimizer"]
    w0 = np.asarray(case["w0"], dtype=np.float64)
    layout = state_layout(optimizer, w0.shape[0])
    n = sum(size for _, size in layout)
    values = initial_state(optimizer, w0)
    prop = Propagator(n)
    counters = (0, 0, 0, 0)
    out = []
    step_list = case["steps"] if steps is None else case["steps"][:steps]
    for k, step_data in enumerate(step_list, start=1):
        ctx = Ctx(u_impl, u_ref, n, prop)
        S, offset = {}, 0
        for name, size in layout:
            S[name] = ctx.seed(values[name], offset)
            offset += size
        new, loss, average, counters = step(ctx, case, S, counters, step_data)
        check_kinks(ctx, prop, k)
        record = {"params": new["w"].v.copy(), "E_params": prop.total(new["w"]),
                  "loss": float(loss.v[0]), "E_loss": prop.total(loss)}
        if average is not None:
            record["average"] = average.v.copy()
            record["E_average"] = prop.total(average)
        J = np.zeros((n, n))
        delta = np.zeros((2, n))
        offset = 0
        for name, size in layout:
            val = new[name]
            if val.d is not None:
                J[offset:offset + size] = np.broadcast_to(val.d, (size, n))
            delta[:, offset:offset + size] = np.broadcast_to(val.e, (2, size))
            values[name] = np.broadcast_to(val.v, (size,)).copy()
            offset += size
        if not (np.all(np.isfinite(J)) and np.all(np.isfinite(delta))):
            raise IllConditioned(f"step {k}: the error model is not finite")
        prop.advance(J, delta)
        out.append(record)
    return out


def tolerance(E: np.ndarray) -> np.ndarray:
    """``MARGIN * (E_impl + E_ref)`` from a (2, k) bound."""
    return MARGIN * (E[0] + E[1])


def round_up(x: float) -> float:
    """``x`` rounded UP to two significant decimal digits (a tolerance never shrinks);
    the last step of the tolerance rule, shared by the writer and the reader."""
    if x == 0.0:
        return 0.0
    if not math.isfinite(x):
        raise IllConditioned(f"non-finite tolerance {x!r}")
    d = Decimal(x)
    q = Decimal(10) ** (d.adjusted() - 1)
    return float((d / q).to_integral_value(rounding=ROUND_CEILING) * q)


def work(case: dict) -> float:
    """A size estimate of :func:`run` on ``case`` (before running it): the propagator
    keeps one block per earlier step, so step t costs about t state-size^3 operations
    plus a fixed Python overhead per block; the sum is ``K (K + 1) / 2 (n^3 + 1000)``."""
    n = sum(size for _, size in state_layout(case["optimizer"], len(case["w0"])))
    K = len(case["steps"])
    return K * (K + 1) / 2 * (float(n) ** 3 + 1000.0)
