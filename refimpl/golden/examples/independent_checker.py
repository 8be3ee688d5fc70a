"""An independent checker for refimpl's golden vectors, written from FORMAT.md alone.

This file is deliberately self-contained: it uses only the Python standard library and
numpy, and it was written from `refimpl/golden/FORMAT.md`, `schema.json` and the JSON
vectors, without looking at refimpl's code.  It plays the role of "another language":
every problem (section 3), optimizer (section 4) and the checking rule (section 6) are
implemented again here, as a C++ or Julia port would implement them.

    python independent_checker.py [DIR_OR_FILE ...] [-v]

Default input: `../vectors` relative to this file (refimpl/golden/vectors).  Prints
one line per failing / skipped case (every case with -v) and per-family counts; the
exit status is 0 when no implemented case failed and no input was malformed, 1
otherwise, 2 for a usage error.

Precision: a case's `dtype` says what to compute in.  Everything (the oracle, the
optimizer state, the averages) is computed in that dtype; float32 cases are a genuine
float32 run (inputs are exactly representable in float32, section 2).
"""

from __future__ import annotations

import dataclasses
import glob
import itertools
import json
import os
import sys

import numpy as np

FORMAT_VERSION = 2
DTYPES = {"float64": np.float64, "float32": np.float32}


class Malformed(Exception):
    """The input violates the format (section 7: reported as MALFORMED)."""


class Unsupported(Exception):
    """The documentation does not specify this well enough to implement: skipped."""


# --------------------------------------------------------------------------------------
# Section 3: problems (gradient oracles).  oracle(w) -> (loss, g), in the case's dtype.
# --------------------------------------------------------------------------------------

def quadratic_oracle(problem, dt):
    H = np.array(problem["H"], dtype=dt)
    w_star = np.array(problem["w_star"], dtype=dt)

    def make(step):
        def oracle(w):
            r = w - w_star
            g = H @ r                                   # g_i = sum_j H_ij r_j
            loss = dt(0.5) * np.sum(r * g)              # 0.5 sum_i r_i g_i
            return loss, g
        return oracle
    return make


def noisy_quadratic_oracle(problem, dt):
    h = np.array(problem["h"], dtype=dt)
    scale = np.array(problem["noise_scale"], dtype=dt)
    w_star = np.array(problem["w_star"], dtype=dt)

    def make(step):
        z = np.array(step["noise"], dtype=dt)          # both SAM evaluations: same z
        xi = scale * z

        def oracle(w):
            r = w - w_star
            g = h * r + xi
            loss = np.sum(dt(0.5) * h * r * r + xi * r)
            return loss, g
        return oracle
    return make


def replay_oracle(problem, dt):
    def make(step):
        g_k = np.array(step["gradient"], dtype=dt)

        def oracle(w):
            return np.sum(g_k * w), g_k.copy()          # linear loss g . w
        return oracle
    return make


def mlp_oracle(problem, dt):
    sizes = [int(n) for n in problem["sizes"]]
    X = np.array(problem["X"], dtype=dt)
    Y = np.array(problem["Y"], dtype=dt)
    activation, loss_kind = problem["activation"], problem["loss"]
    if activation not in ("tanh", "relu"):
        raise Malformed(f"problem.activation: unknown {activation!r}")
    if loss_kind not in ("mse", "xent"):
        raise Malformed(f"problem.loss: unknown {loss_kind!r}")

    def unpack(w):
        """The flat vector -> [(W_l, b_l)]: W_l row-major (n_l x n_(l-1)), then b_l."""
        layers, at = [], 0
        for n_in, n_out in itertools.pairwise(sizes):
            W = w[at:at + n_out * n_in].reshape(n_out, n_in)
            at += n_out * n_in
            b = w[at:at + n_out]
            at += n_out
            layers.append((W, b))
        return layers

    def make(step):
        rows = np.array(step["batch"], dtype=np.int64)
        x, y = X[rows], Y[rows]                         # B x n_0, B x n_L
        B, n_L = x.shape[0], sizes[-1]

        def oracle(w):
            layers = unpack(w)
            acts, zs = [x], []                          # a_0 = x
            for l, (W, b) in enumerate(layers):
                z = acts[-1] @ W.T + b                  # z_l = W_l a_(l-1) + b_l
                zs.append(z)
                if l < len(layers) - 1:
                    acts.append(np.tanh(z) if activation == "tanh" else np.maximum(z, 0))
            f = zs[-1]
            if loss_kind == "mse":
                diff = f - y
                loss = np.sum(diff * diff) / dt(B * n_L)
                dz = dt(2) * diff / dt(B * n_L)
            else:  # softmax cross-entropy with (soft) targets y
                m = np.max(f, axis=1, keepdims=True)
                lse = m + np.log(np.sum(np.exp(f - m), axis=1, keepdims=True))
                loss = np.sum(y * (lse - f)) / dt(B)
                p = np.exp(f - lse)
                dz = (np.sum(y, axis=1, keepdims=True) * p - y) / dt(B)
            grads = []
            for l in range(len(layers) - 1, -1, -1):    # backpropagation
                W, _ = layers[l]
                grads.append(((dz.T @ acts[l]).reshape(-1), np.sum(dz, axis=0)))
                if l > 0:
                    da = dz @ W
                    if activation == "tanh":
                        dz = da * (dt(1) - acts[l] * acts[l])
                    else:
                        dz = da * (zs[l - 1] > 0)       # relu'(0) = 0
            g = np.concatenate([part for gW, gb in reversed(grads) for part in (gW, gb)])
            return loss, g.astype(dt, copy=False)
        return oracle
    return make


PROBLEMS = {
    "quadratic": quadratic_oracle,
    "noisy_quadratic": noisy_quadratic_oracle,
    "replay": replay_oracle,
    "mlp": mlp_oracle,
}


# --------------------------------------------------------------------------------------
# Section 4.1 - 4.3: base optimizers.  step(w, g, lr) -> new w;  reset() (section 4.6).
# --------------------------------------------------------------------------------------

def prepare(g, w, spec, dt):
    """maximize first, then coupled L2 weight decay at w (sections 4.1, 4.2)."""
    if spec["maximize"]:
        g = -g
    if spec["weight_decay"] != 0:
        g = g + dt(spec["weight_decay"]) * w
    return g


class SGD:
    def __init__(self, spec, dt):
        self.spec, self.dt = spec, dt
        self.mu = dt(spec["momentum"])
        self.dampening = dt(spec["dampening"])
        self.nesterov, self.convention = spec["nesterov"], spec["convention"]
        if self.convention not in ("pytorch", "optax", "keras"):
            raise Malformed(f"optimizer.base.convention: unknown {self.convention!r}")
        self.reset()

    def reset(self):
        self.buf, self.t = None, 0

    def step(self, w, g, lr):
        self.t += 1
        g = prepare(g, w, self.spec, self.dt)
        mu = self.mu
        if mu == 0:
            return w - lr * g
        if self.buf is None:
            self.buf = np.zeros_like(w)
        if self.convention == "keras":                  # the buffer is the velocity v
            self.buf = mu * self.buf - lr * g
            return w + mu * self.buf - lr * g if self.nesterov else w + self.buf
        if self.convention == "pytorch":
            if self.t == 1:
                self.buf = g.copy()                     # no dampening on the first step
            else:
                self.buf = mu * self.buf + (1 - self.dampening) * g
        else:  # optax trace
            self.buf = g + mu * self.buf
        d = g + mu * self.buf if self.nesterov else self.buf
        return w - lr * d


ADAM_FIELDS = {"kind", "beta1", "beta2", "eps", "weight_decay", "maximize",
               "decoupled_weight_decay", "amsgrad"}


class Adam:
    """Section 4.2, with its two optional fields (absent: off)."""

    def __init__(self, spec, dt):
        unknown = set(spec) - ADAM_FIELDS
        if unknown:  # section 10: never ignore a field
            raise Malformed(f"optimizer.base: unknown field(s) {sorted(unknown)}")
        self.spec, self.dt = spec, dt
        self.b1, self.b2, self.eps = dt(spec["beta1"]), dt(spec["beta2"]), dt(spec["eps"])
        self.decoupled = spec.get("decoupled_weight_decay", False)
        if self.decoupled not in (True, False):
            raise Malformed("optimizer.base.decoupled_weight_decay: not a boolean")
        self.amsgrad = spec.get("amsgrad")
        if self.amsgrad not in (None, "raw", "debiased"):
            raise Malformed(f"optimizer.base.amsgrad: unknown {self.amsgrad!r}")
        self.reset()

    def reset(self):
        self.m = self.v = self.v_max = None
        self.t = 0

    def step(self, w, g, lr):
        self.t += 1
        t, b1, b2 = self.t, self.b1, self.b2
        if self.decoupled:
            if self.spec["maximize"]:
                g = -g
            if self.spec["weight_decay"] != 0:
                w = w * (1 - lr * self.dt(self.spec["weight_decay"]))
        else:
            g = prepare(g, w, self.spec, self.dt)
        if self.m is None:
            self.m, self.v, self.v_max = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        c2 = 1 - b2 ** t
        if self.amsgrad == "raw":
            self.v_max = np.maximum(self.v_max, self.v)
            denom = np.sqrt(self.v_max) / np.sqrt(c2) + self.eps
        elif self.amsgrad == "debiased":
            self.v_max = np.maximum(self.v_max, self.v / c2)
            denom = np.sqrt(self.v_max) + self.eps
        else:
            denom = np.sqrt(self.v) / np.sqrt(c2) + self.eps
        return w - (lr / (1 - b1 ** t)) * (self.m / denom)


def ema(m, x, b):
    return b * m + (1 - b) * x


class FAME:
    def __init__(self, spec, dt):
        self.spec, self.dt = spec, dt
        self.variant = spec["variant"]
        if self.variant not in ("official", "full"):
            raise Malformed(f"optimizer.base.variant: unknown {self.variant!r}")
        if spec["debias"] not in ("adam", "exact"):
            raise Malformed(f"optimizer.base.debias: unknown {spec['debias']!r}")
        if spec["v_guard"] not in ("adam", "zero"):
            raise Malformed(f"optimizer.base.v_guard: unknown {spec['v_guard']!r}")
        self.b = {i: dt(spec[f"beta{i}"]) for i in range(1, 6)}
        self.eps = dt(spec["eps"])
        self.decoupled = spec.get("decoupled_weight_decay", False)
        if self.decoupled not in (True, False):
            raise Malformed("optimizer.base.decoupled_weight_decay: not a boolean")
        self.amsgrad = spec.get("amsgrad", False)
        if self.amsgrad not in (True, False) or (self.amsgrad and self.variant != "official"):
            raise Malformed(f"optimizer.base.amsgrad: {self.amsgrad!r} (a boolean, official only)")
        self.reset()

    def reset(self):
        self.t = 0
        self.v_max = None      # AMSGrad's running maximum of v (official variant)
        self.state = None      # m1, m2, m3, v1, v2, v3 (vectors)
        self.resp = None       # r1, r2, r3 (m-chain) and q1, q2, q3 (v-chain) on input 1

    def step(self, w, g, lr):
        self.t += 1
        t, b, dt = self.t, self.b, self.dt
        full = self.variant == "full"
        if self.decoupled:                              # section 4.3: AdamW's decay first
            g = -g if self.spec["maximize"] else g
            if self.spec["weight_decay"] != 0:
                w = w * (1 - lr * dt(self.spec["weight_decay"]))
        else:
            g = prepare(g, w, self.spec, dt)
        if self.state is None:
            self.state = [np.zeros_like(w) for _ in range(6)]
            self.resp = [dt(0)] * 6
        m1, m2, m3, v1, v2, v3 = self.state
        b_m3 = b[5] if full else b[4]                   # the m-chain's third decay
        m1 = ema(m1, g, b[1])
        m2 = ema(m2, m1, b[3])
        m3 = ema(m3, m2, b_m3)
        v1 = b[2] * v1 + (1 - b[2]) * g * g
        if full:
            v2 = ema(v2, v1, b[4])
            v3 = ema(v3, v2, b[5])
        self.state = [m1, m2, m3, v1, v2, v3]

        # Corrections c_t (m-chain) and c2_t (v-chain, full variant).
        r1, r2, r3, q1, q2, q3 = self.resp
        one = dt(1)
        r1 = ema(r1, one, b[1])
        r2 = ema(r2, r1, b[3])
        r3 = ema(r3, r2, b_m3)
        q1 = ema(q1, one, b[2])
        q2 = ema(q2, q1, b[4])
        q3 = ema(q3, q2, b[5])
        self.resp = [r1, r2, r3, q1, q2, q3]
        if self.spec["debias"] == "adam":
            c, c2 = 1 - b[1] ** t, 1 - b[2] ** t
        else:
            c, c2 = 3 * r1 - 3 * r2 + r3, 3 * q1 - 3 * q2 + q3

        m_tema = 3 * m1 - 3 * m2 + m3
        if not full:
            if self.amsgrad:                            # section 4.3: max of the raw v
                self.v_max = v1 if self.v_max is None else np.maximum(self.v_max, v1)
                v1 = self.v_max
            denom = np.sqrt(v1) / np.sqrt(1 - b[2] ** t) + self.eps
            return w - (lr / c) * (m_tema / denom)
        v_tema = 3 * v1 - 3 * v2 + v3
        d = np.sqrt(np.maximum(v_tema, 0)) / np.sqrt(c2)
        if self.spec["v_guard"] == "adam":
            d = np.maximum(d, np.sqrt(v1) / np.sqrt(1 - b[2] ** t))
        return w - (lr / c) * (m_tema / (d + self.eps))


BASES = {"sgd": SGD, "adam": Adam, "fame": FAME}


# --------------------------------------------------------------------------------------
# Section 4.4: SAM / StableSAM.  descent(w, oracle) -> the base optimizer's gradient.
# --------------------------------------------------------------------------------------

def norm(x):
    return np.sqrt(np.sum(x * x))


def safe_ratio(num, den):
    """num / den, with the scale defined as 0 when den is exactly 0 (section 4.4)."""
    return num / den if den != 0 else num * 0


class SAM:
    def __init__(self, spec, dt):
        self.kind, self.ascent = spec["kind"], spec["ascent"]
        if self.kind not in ("sam", "stable_sam"):
            raise Malformed(f"optimizer.sam.kind: unknown {self.kind!r}")
        if self.ascent not in ("normalized", "unnormalized", "adaptive", "adaptive_unnormalized"):
            raise Malformed(f"optimizer.sam.ascent: unknown {self.ascent!r}")
        self.rho, self.eps = dt(spec["rho"]), dt(spec["eps"])

    def descent(self, w, oracle):
        rho, eps = self.rho, self.eps
        _, g = oracle(w)
        if self.ascent == "normalized":
            e = g * safe_ratio(rho, norm(g) + eps)
        elif self.ascent == "unnormalized":
            e = rho * g
        elif self.ascent == "adaptive_unnormalized":
            e = w * w * g * rho
        else:  # adaptive (ASAM)
            e = w * w * g * safe_ratio(rho, norm(np.abs(w) * g) + eps)
        _, g_adv = oracle(w + e)
        if self.kind == "sam":
            return g_adv
        if self.ascent in ("adaptive", "adaptive_unnormalized"):
            scale = safe_ratio(norm(np.abs(w) * g), norm(np.abs(w + e) * g_adv) + eps)
        else:
            scale = safe_ratio(norm(g), norm(g_adv) + eps)
        return g_adv * scale


# --------------------------------------------------------------------------------------
# Sections 4.5, 4.6: EMA and Switch EMA.
# --------------------------------------------------------------------------------------

class EMA:
    def __init__(self, spec, w0, dt):
        self.spec, self.dt = spec, dt
        self.switch = spec["kind"] == "switch_ema"
        if spec["start"] not in ("copy", "zeros", "first"):
            raise Malformed(f"optimizer.average.start: unknown {spec['start']!r}")
        if spec["warmup"] not in (None, "timm", "constant", "linear", "exp"):
            raise Malformed(f"optimizer.average.warmup: unknown {spec['warmup']!r}")
        if self.switch and spec["switch_unit"] not in ("step", "epoch"):
            raise Malformed(f"optimizer.average.switch_unit: unknown {spec['switch_unit']!r}")
        if self.switch and spec["on_switch"] not in ("keep", "reset"):
            raise Malformed(f"optimizer.average.on_switch: unknown {spec['on_switch']!r}")
        self.zeros = spec["start"] == "zeros"
        self.ema = np.zeros_like(w0) if self.zeros else w0.copy()
        self.P = dt(1)
        self.updated = False
        self.epoch = 0

    def decay(self, n):
        s, dt, decay = self.spec, self.dt, self.dt(self.spec["decay"])
        if s["start"] == "first" and n <= max(s["update_every"], s["update_after_step"] + 1):
            return dt(0)                                # the first update copies w
        warmup = s["warmup"]
        if warmup is None:
            return decay
        if warmup == "timm":
            k = max(0, n - s["update_after_step"] - 1)
            if k == 0:
                return dt(0)
            value = 1 - (1 + dt(k) / dt(s["warmup_gamma"])) ** (-dt(s["warmup_power"]))
            return min(max(value, dt(s["min_decay"])), decay)
        i, T, r = n - 1, s["warmup_steps"], dt(s["warmup_ratio"])
        if i > T:
            return decay
        if warmup == "constant":
            return r * decay
        if T == 0:   # i == T == 0: i / T is 0 / 0 and FORMAT.md 4.5 does not say (skip)
            raise Unsupported(f"{warmup} warm-up with warmup_steps = 0: i / T is 0 / 0")
        if warmup == "linear":
            return (1 - (1 - dt(i) / dt(T)) * (1 - r)) * decay
        return r ** (1 - dt(i) / dt(T)) * decay       # "exp"

    def reported(self):
        if not self.zeros:
            return self.ema.copy()
        if not self.updated:
            return np.zeros_like(self.ema)
        return self.ema / (1 - self.P)

    def after_step(self, w, n, epoch_end):
        """The update after base step n.  Returns (average, switched)."""
        s = self.spec
        if n % s["update_every"] == 0:
            b = self.decay(n)
            self.ema = b * self.ema + (1 - b) * w
            self.P = self.P * b
            self.updated = True
        if epoch_end:
            self.epoch += 1
        average = self.reported()
        if not self.switch:
            return average, False
        due = not (self.zeros and n < s["update_every"])
        if s["switch_unit"] == "step":
            due = due and n % s["switch_every"] == 0 and n > s["switch_start"]
        else:
            due = (due and epoch_end and self.epoch % s["switch_every"] == 0
                   and self.epoch > s["switch_start"])
        return average, due


class SWA:
    """Section 4.7: the equal mean of the snapshots; never changes w."""

    def __init__(self, spec, w0, dt):
        if spec["swa_unit"] not in ("step", "epoch"):
            raise Malformed(f"optimizer.average.swa_unit: unknown {spec['swa_unit']!r}")
        self.spec, self.dt = spec, dt
        self.avg = w0.copy()
        self.k = 0
        self.epoch = 0

    def after_step(self, w, n, epoch_end):
        s = self.spec
        if epoch_end:
            self.epoch += 1
        if s["swa_unit"] == "step":
            due = n % s["swa_every"] == 0 and n > s["swa_start"]
        else:
            due = epoch_end and self.epoch % s["swa_every"] == 0 and self.epoch > s["swa_start"]
        if due:
            self.avg = w.copy() if self.k == 0 else self.avg + (w - self.avg) / self.dt(self.k + 1)
            self.k += 1
        return self.avg.copy(), False


class Lookahead:
    """Section 4.8: slow weights pulled toward w every k steps, then copied into w."""

    def __init__(self, spec, w0, dt):
        if spec["start"] not in ("copy", "first"):
            raise Malformed(f"optimizer.average.start: unknown {spec['start']!r}")
        if spec["on_sync"] not in ("keep", "reset"):
            raise Malformed(f"optimizer.average.on_sync: unknown {spec['on_sync']!r}")
        self.spec, self.dt = spec, dt
        self.slow = w0.copy()
        self.syncs = 0

    def after_step(self, w, n, epoch_end):
        s = self.spec
        if n % s["k"] != 0:
            return self.slow.copy(), False
        if s["start"] == "first" and self.syncs == 0:
            self.slow = w.copy()
        else:
            self.slow = self.slow + self.dt(s["alpha"]) * (w - self.slow)
        self.syncs += 1
        return self.slow.copy(), True                   # the caller copies slow into w


AVERAGERS = {"ema": EMA, "switch_ema": EMA, "swa": SWA, "lookahead": Lookahead}


# --------------------------------------------------------------------------------------
# One case: the loop of section 6.
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    file: str
    family: str
    case_id: str
    status: str            # "pass", "fail", "skip" or "malformed"
    message: str = ""


class StepFailed(Exception):
    pass


def all_finite(x):
    return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def within(actual, expected, tol):
    """|actual - expected| <= tol element by element; NaN never passes."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    t = np.asarray(tol, dtype=np.float64)
    if a.shape != e.shape:
        return False
    return bool(np.all(np.abs(a - e) <= t))


def describe(what, actual, expected, tol):
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    t = np.asarray(tol, dtype=np.float64)
    return (f"{what}: got {np.array2string(a, precision=17)}, "
            f"expected {np.array2string(e, precision=17)}, "
            f"|diff| {np.array2string(np.abs(a - e), precision=3)} > tol {t}")


def run_case(case):
    """Runs one case; returns (status, message).  Raises Malformed / Unsupported."""
    dt = DTYPES.get(case["dtype"])
    if dt is None:
        raise Malformed(f"dtype: unknown {case['dtype']!r}")
    problem, opt = case["problem"], case["optimizer"]
    if problem["kind"] not in PROBLEMS:
        raise Malformed(f"problem.kind: unknown {problem['kind']!r} (refused, not guessed)")
    if opt["base"]["kind"] not in BASES:
        raise Malformed(f"optimizer.base.kind: unknown {opt['base']['kind']!r}")
    if opt["average"] is not None and opt["average"]["kind"] not in AVERAGERS:
        raise Malformed(f"optimizer.average.kind: unknown {opt['average']['kind']!r}")

    make_oracle = PROBLEMS[problem["kind"]](problem, dt)
    w = np.array(case["w0"], dtype=dt)
    base = BASES[opt["base"]["kind"]](opt["base"], dt)
    sam = SAM(opt["sam"], dt) if opt["sam"] is not None else None
    averager = (AVERAGERS[opt["average"]["kind"]](opt["average"], w, dt)
                if opt["average"] is not None else None)
    K = case["diverges_at"]

    for n, s in enumerate(case["steps"], start=1):
        if s["step"] != n:
            raise Malformed(f"steps[{n - 1}].step: {s['step']} != {n}")
        lr = dt(s["lr"])
        oracle_k = make_oracle(s)
        calls = {"evals": 0, "first_loss": None, "nonfinite": False}

        def counted(x, oracle_k=oracle_k, calls=calls):
            loss, g = oracle_k(np.asarray(x, dtype=dt))
            calls["evals"] += 1
            if calls["first_loss"] is None:
                calls["first_loss"] = loss
            if not (all_finite(loss) and all_finite(g)):
                calls["nonfinite"] = True
            return loss, g

        raised = None
        try:
            if sam is not None:
                g = sam.descent(w, counted)
            else:
                _, g = counted(w)
            w = base.step(w, g, lr)
            average = None
            if averager is not None:
                average, switch = averager.after_step(w, n, s["epoch_end"])
                if switch:                              # w := the reported average
                    w = average.copy()
                    if averager.spec.get("on_switch", averager.spec.get("on_sync")) == "reset":
                        base.reset()
        except ArithmeticError as exc:
            raised = exc
        diverged = raised is not None or calls["nonfinite"] or not all_finite(w)

        if K is not None and n == K:
            if diverged:
                return "pass", f"diverged at step {K} as required"
            return "fail", f"step {n}: must diverge (diverges_at = {K}) but stayed finite"
        if diverged:
            why = f"{type(raised).__name__}: {raised}" if raised else "non-finite values"
            return "fail", f"step {n}: diverged ({why}) but diverges_at = {K}"

        if calls["evals"] != s["grad_evals"]:
            return "fail", f"step {n}: {calls['evals']} oracle calls, expected {s['grad_evals']}"
        loss = calls["first_loss"]
        if not within(loss, s["loss"], s["tol_loss"]):
            return "fail", f"step {n}: " + describe("loss", loss, s["loss"], s["tol_loss"])
        if not within(w, s["params"], s["tol_params"]):
            return "fail", f"step {n}: " + describe("params", w, s["params"], s["tol_params"])
        if s["average"] is not None:
            if average is None:
                return "fail", f"step {n}: an average was expected, none computed"
            if not within(average, s["average"], s["tol_average"]):
                detail = describe("average", average, s["average"], s["tol_average"])
                return "fail", f"step {n}: {detail}"
        elif average is not None:
            return "fail", f"step {n}: an average was computed, none expected"
    if K is not None and K > len(case["steps"]):
        raise Malformed(f"diverges_at = {K} is beyond the last step")
    return "pass", f"{len(case['steps'])} steps"


# --------------------------------------------------------------------------------------
# Reading and validating a file (section 2, a light subset of schema.json).
# --------------------------------------------------------------------------------------

CASE_FIELDS = ("id", "comment", "flags", "dtype", "optimizer", "problem", "w0",
               "steps_per_epoch", "diverges_at", "tolerance", "steps")
EXPECTED_FIELDS = ("loss", "grad_evals", "params", "average", "tol_loss", "tol_params",
                   "tol_average")
STEP_INPUT = {"noisy_quadratic": "noise", "replay": "gradient", "mlp": "batch"}


def numbers_in(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from numbers_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from numbers_in(v)


def validate_case(case):
    for field in CASE_FIELDS:
        if field not in case:
            raise Malformed(f"field {field}: missing")
    for field in ("base", "sam", "average"):
        if field not in case["optimizer"]:
            raise Malformed(f"field optimizer.{field}: missing")
    d = len(case["w0"])
    need = STEP_INPUT.get(case["problem"].get("kind"))
    for k, s in enumerate(case["steps"], start=1):
        for field in ("step", "lr", "epoch_end"):
            if field not in s:
                raise Malformed(f"steps[{k - 1}].{field}: missing")
        if need is not None and need not in s:
            raise Malformed(f"steps[{k - 1}].{need}: missing")
        if k != case["diverges_at"]:
            for field in EXPECTED_FIELDS:
                if field not in s:
                    raise Malformed(f"steps[{k - 1}].{field}: missing")
            if len(s["params"]) != d or len(s["tol_params"]) != d:
                raise Malformed(f"steps[{k - 1}].params: length != {d}")
    if case["dtype"] == "float32":
        # Section 2: every input of a float32 case is exactly representable in float32.
        inputs = [case["w0"], case["problem"], case["optimizer"]]
        inputs += [[s["lr"], s.get("noise", []), s.get("gradient", [])] for s in case["steps"]]
        for x in numbers_in(inputs):
            if isinstance(x, float) and float(np.float32(x)) != x:
                raise Malformed(f"float32 case with an input not representable in float32: {x!r}")


def check_file(path):
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        return [Result(name, "?", "-", "malformed", f"unreadable JSON: {exc}")]
    if not isinstance(data, dict) or data.get("schema") != "refimpl-golden":
        return [Result(name, "?", "-", "malformed", "not a refimpl-golden file")]
    family = str(data.get("family", "?"))
    if data.get("format_version") != FORMAT_VERSION:
        return [Result(name, family, "-", "malformed",
                       f"format_version {data.get('format_version')!r}: only 2 is known")]
    for probe in data.get("float_probe", []):
        if float.fromhex(probe["hex"]) != probe["decimal"]:
            return [Result(name, family, "-", "malformed",
                           f"float_probe: {probe} does not read back exactly")]
    results = []
    for i, case in enumerate(data.get("cases", [])):
        case_id = case.get("id", f"cases[{i}]") if isinstance(case, dict) else f"cases[{i}]"
        try:
            validate_case(case)
            with np.errstate(over="ignore", invalid="ignore"):
                status, message = run_case(case)
        except Unsupported as exc:
            status, message = "skip", str(exc)
        except (Malformed, KeyError, TypeError) as exc:
            status, message = "malformed", f"{type(exc).__name__}: {exc}"
        results.append(Result(name, family, case_id, status, message))
    return results


def default_dir():
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors")


def check(paths):
    """Checks every *.json file of the given directories / files; returns the results."""
    results = []
    for path in paths:
        files = sorted(glob.glob(os.path.join(path, "*.json"))) if os.path.isdir(path) else [path]
        for file in files:
            results.extend(check_file(file))
    return results


def summarize(results):
    """{family: {"pass": n, "fail": n, "skip": n, "malformed": n}}"""
    counts = {}
    for r in results:
        c = counts.setdefault(r.family, {"pass": 0, "fail": 0, "skip": 0, "malformed": 0})
        c[r.status] += 1
    return counts


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv
    paths = [a for a in argv if a != "-v"]
    if any(a.startswith("-") for a in paths):
        print("usage: independent_checker.py [DIR_OR_FILE ...] [-v]", file=sys.stderr)
        return 2
    paths = paths or [default_dir()]
    for p in paths:
        if not os.path.exists(p):
            print(f"no such file or directory: {p}", file=sys.stderr)
            return 2
    results = check(paths)
    for r in results:
        if verbose or r.status != "pass":
            print(f"{r.status.upper():9} {r.file}: {r.case_id}: {r.message}")
    counts = summarize(results)
    print(f"{'family':12} {'pass':>5} {'fail':>5} {'skip':>5} {'malformed':>9}")
    for family, c in counts.items():
        print(f"{family:12} {c['pass']:5} {c['fail']:5} {c['skip']:5} {c['malformed']:9}")
    total = {k: sum(c[k] for c in counts.values()) for k in ("pass", "fail", "skip", "malformed")}
    print(f"{'total':12} {total['pass']:5} {total['fail']:5} {total['skip']:5} "
          f"{total['malformed']:9}")
    return 0 if total["fail"] == 0 and total["malformed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
