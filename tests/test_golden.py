"""Golden vectors and the checker (refimpl.golden; the format is refimpl/golden/FORMAT.md).

What is checked, and why each check would fail on a wrong implementation:

* refimpl passes every shipped case through the public plug-in protocol, and
  regenerating the vectors gives the same bytes (drift guard);
* the expected values equal the jitted training loop's (an independent path);
* the tolerance derivation: a hand count of the roundings of one step, the
  contraction law of the propagation, and soundness against EXACT rational arithmetic
  (the bound must contain the exact result, for refimpl and for a genuine float32
  implementation);
* teeth: a third implementation (numpy, below) passes in both precisions, and each
  deliberately wrong variant fails at the first step where its convention differs;
* the checker survives broken adapters and reports malformed files with the file, the
  case and the field; the CLI's exit codes; FORMAT.md's numbers match the vectors.
"""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refimpl as r
from refimpl import golden
from refimpl.cli import main
from refimpl.golden import adapter, catalog, generate, model
from refimpl.golden.checker import compare, run_case
from refimpl.golden.fileformat import SCHEMA_PATH, load, load_schema

U64, U32 = 2.0 ** -53, 2.0 ** -24


@pytest.fixture(scope="module")
def shipped():
    """{case id: Case} of the shipped vectors (which must load without an error)."""
    out = {}
    for path in golden.golden_files(golden.VECTORS):
        loaded = load(path)
        assert loaded.errors == []
        out.update({c.id: c for c in loaded.cases})
    return out


def check_one(case, factory):
    return compare(case, run_case(case, factory))


# -- a third implementation of FORMAT.md section 4, in numpy, with switchable bugs --------

class NumpyStepper:
    """SGD, Adam, SAM/StableSAM, EMA and Switch EMA from FORMAT.md, computed in ``dtype``
    (default: the case's), in another order of operations than refimpl's (lerp-form
    EMAs, Adam's division inside the square root is NOT used unless as a bug), with
    one optional ``bug`` to show that the checker catches it."""

    def __init__(self, case, dtype=None, bug=None):
        if case.base.kind == "fame":
            raise golden.Unsupported("no FAME in this numpy implementation")
        self.case, self.bug = case, bug
        self.dt = np.dtype(dtype or case.dtype).type
        self.w = self._a(case.w0)
        self._reset_base()
        self.n = self.epoch = 0
        av = case.average
        if av is not None:
            self.ema = np.zeros_like(self.w) if av.get("start") == "zeros" else self.w.copy()
            self.prod = 1.0
            self.snapshots = 0

    def _a(self, x):
        return np.asarray(x, dtype=self.dt)

    def _reset_base(self):
        self.buf = np.zeros_like(self.w)
        self.m = np.zeros_like(self.w)
        self.v = np.zeros_like(self.w)
        self.v_max = np.zeros_like(self.w)
        self.count = 0

    def _grad(self, grad_fn, w):
        return self._a(grad_fn(w)[1])

    def _norm(self, x):
        return np.sqrt(np.sum(x * x))

    def _base(self, w, g, lr):
        b, s, bug = self.case.base, self.dt, self.bug
        wd = s(b["weight_decay"])
        decoupled = b.get("decoupled_weight_decay", False)
        if bug == "coupled_wd":
            decoupled = False
        if b["maximize"] and bug != "maximize_after_wd":
            g = -g
        if wd != 0 and decoupled:
            w = w * (s(1) - lr * wd)  # AdamW, before the moments
        elif wd != 0 and bug != "decoupled_wd":
            g = g + wd * w
        if b["maximize"] and bug == "maximize_after_wd":
            g = -g
        if b.kind == "sgd":
            mu, nesterov = s(b["momentum"]), b["nesterov"]
            convention = "keras" if bug == "keras" else b["convention"]
            if mu == 0:
                w_new = w - lr * g
            elif convention == "keras":
                self.buf = mu * self.buf - lr * g
                w_new = w + mu * self.buf - lr * g if nesterov else w + self.buf
            else:
                if convention == "optax":
                    self.buf = g + mu * self.buf
                elif self.count == 0 and bug != "dampen_first":
                    self.buf = g
                else:
                    self.buf = mu * self.buf + (s(1) - s(b["dampening"])) * g
                d = g + mu * self.buf if nesterov else self.buf
                w_new = w + (-lr) * d
        else:
            t = self.count + 1
            b1, b2, eps = s(b["beta1"]), s(b["beta2"]), s(b["eps"])
            self.m = self.m + (s(1) - b1) * (g - self.m)  # lerp, as torch.optim.Adam
            self.v = b2 * self.v + (s(1) - b2) * g * g
            c1, c2 = s(1) - b1 ** t, s(1) - b2 ** t
            amsgrad = b.get("amsgrad")
            if bug == "no_amsgrad":
                amsgrad = None
            elif bug == "other_amsgrad_max" and amsgrad is not None:
                amsgrad = {"raw": "debiased", "debiased": "raw"}[amsgrad]
            if amsgrad == "raw":
                self.v_max = np.maximum(self.v_max, self.v)
                denom = np.sqrt(self.v_max) / np.sqrt(c2) + eps
            elif amsgrad == "debiased":
                self.v_max = np.maximum(self.v_max, self.v / c2)
                denom = np.sqrt(self.v_max) + eps
            elif bug == "eps_in_sqrt":
                denom = np.sqrt(self.v / c2 + eps)
            else:
                denom = np.sqrt(self.v) / np.sqrt(c2) + eps
            w_new = w - (lr / c1) * (self.m / denom)
        if wd != 0 and bug == "decoupled_wd":
            w_new = w_new - lr * wd * w
        self.count += 1
        return w_new

    def _ascent(self, sam, w, g):
        s = self.dt
        rho, eps = s(sam["rho"]), s(sam["eps"])
        ascent = sam["ascent"]
        if ascent == "adaptive_unnormalized" and self.bug == "normalized_adaptive":
            ascent = "adaptive"
        if ascent == "unnormalized":
            return rho * g
        if ascent == "adaptive_unnormalized":
            return rho * (w * w * g)
        weighted = np.abs(w) * g if ascent == "adaptive" else g
        direction = w * w * g if ascent == "adaptive" else g
        if self.bug == "no_eps":  # optax's normalize: no eps and no 0/0 guard
            return direction * (rho / self._norm(weighted))
        denom = self._norm(weighted) + eps
        return direction * (rho / denom if denom != 0 else s(0))

    def _decay(self, n):
        av = self.case.average
        decay = av["decay"]
        if av["start"] == "first" and self.bug != "first_as_copy":
            last = (1 if self.bug == "first_ignores_update_after_step"
                    else max(av["update_every"], av["update_after_step"] + 1))
            if n <= last:
                return 0.0
        if av["warmup"] is None:
            return decay
        if av["warmup"] == "timm":
            steps = max(0, n - av["update_after_step"] - 1)
            if steps <= 0:
                return 0.0
            value = 1.0 - (1.0 + steps / av["warmup_gamma"]) ** (-av["warmup_power"])
            return min(max(value, av["min_decay"]), decay)
        i = n if self.bug == "warmup_off_by_one" else n - 1
        T, ratio = av["warmup_steps"], av["warmup_ratio"]
        if i > T:
            return decay
        if av["warmup"] == "constant":
            return ratio * decay
        if av["warmup"] == "linear":
            return (1.0 - (1.0 - i / T) * (1.0 - ratio)) * decay
        return ratio ** (1.0 - i / T) * decay

    def step(self, grad_fn, inputs):
        s = self.dt
        lr = s(inputs.lr)
        w = self.w
        g = self._grad(grad_fn, w)
        sam = self.case.sam
        at = w
        if sam is not None and self.bug != "no_second_eval":
            e = self._ascent(sam, w, g)
            w_adv = w + e
            g_adv = self._grad(grad_fn, w_adv)
            if sam["kind"] == "stable_sam" and self.bug != "no_rescale":
                eps = s(sam["eps"])
                if sam["ascent"].startswith("adaptive"):
                    num, den = self._norm(np.abs(w) * g), self._norm(np.abs(w_adv) * g_adv) + eps
                else:
                    num, den = self._norm(g), self._norm(g_adv) + eps
                g_adv = g_adv * (num / den if den != 0 else s(0))
            g = g_adv
            if self.bug == "step_from_w_adv":
                at = w_adv
        self.w = self._base(at, g, lr)
        self.n += 1
        self.epoch += bool(inputs.epoch_end)
        av = self.case.average
        if av is None:
            return self.w, None
        if av.kind == "swa":
            if self._snapshot_due(inputs):
                # bug "swa_from_w0": the first snapshot averaged with w0 instead of copied
                k = self.snapshots + (self.bug == "swa_from_w0")
                self.ema = self.w.copy() if k == 0 else self.ema + (self.w - self.ema) / s(k + 1)
                self.snapshots += 1
            return self.w, self.ema
        if av.kind == "lookahead":
            if self.n % av["k"] == 0:
                first = (av["start"] == "first" and self.snapshots == 0
                         and self.bug != "lookahead_first_as_copy")
                self.ema = self.w.copy() if first else self.ema + s(av["alpha"]) * (self.w - self.ema)
                if self.bug != "lookahead_no_restart":
                    self.w = self.ema.copy()
                if av["on_sync"] == "reset" and self.bug != "lookahead_keep_state":
                    self._reset_base()
                self.snapshots += 1
            return self.w, self.ema
        if self.n % av["update_every"] == 0:
            decay = self._decay(self.n)
            self.ema = self.ema + (s(1) - s(decay)) * (self.w - self.ema)  # lerp form
            self.prod *= decay
        average = self.ema if (av["start"] != "zeros" or self.prod == 1.0) else self.ema / s(1 - self.prod)
        if av.kind == "switch_ema" and self.bug != "no_switch" and self._switch_due(inputs):
            self.w = average.copy()
            if av["on_switch"] == "reset":
                self._reset_base()
        return self.w, average

    def _snapshot_due(self, inputs):
        av, n = self.case.average, self.n
        start = av["swa_start"] - (self.bug == "swa_start_off_by_one")
        if av["swa_unit"] == "step":
            return n % av["swa_every"] == 0 and n > start
        return inputs.epoch_end and self.epoch % av["swa_every"] == 0 and self.epoch > start

    def _switch_due(self, inputs):
        av, n = self.case.average, self.n
        if av["start"] == "zeros" and n < av["update_every"]:
            return False
        if av["switch_unit"] == "step":
            return n % av["switch_every"] == 0 and n > av["switch_start"]
        return inputs.epoch_end and self.epoch % av["switch_every"] == 0 and self.epoch > av["switch_start"]


def numpy_impl(case):
    """The correct numpy implementation, in the case's precision."""
    return NumpyStepper(case)


def numpy_float32(case):
    """The numpy implementation forced to float32 (wrong for float64 cases)."""
    return NumpyStepper(case, dtype=np.float32)


def with_bug(bug):
    def factory(case):
        return NumpyStepper(case, bug=bug)
    factory.__name__ = f"numpy_{bug}"
    return factory


wrong_keras = with_bug("keras")  # importable for the CLI test: tests.test_golden:wrong_keras


# -- refimpl itself, and the drift guard --------------------------------------------------

def test_refimpl_passes_every_shipped_case_through_the_plugin_protocol():
    """The public protocol with refimpl's own adapter (a MODULE:FACTORY string)."""
    report = golden.check(golden.VECTORS, "refimpl.golden.adapter:make")
    assert report.format_errors == []
    assert report.count("pass") == 123 and report.count("fail") == 0 and report.count("skip") == 0
    assert report.ok


def test_regenerating_the_vectors_gives_identical_bytes(tmp_path, capsys):
    """Drift guard: ``refimpl golden write DIR`` reproduces the shipped files byte for byte
    (any change to refimpl's numbers, the error model or the writer shows up here)."""
    assert main(["golden", "write", str(tmp_path)]) == 0
    shipped_names = sorted(p.name for p in golden.VECTORS.glob("*.json"))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == shipped_names
    for name in shipped_names:
        assert (tmp_path / name).read_bytes() == (golden.VECTORS / name).read_bytes(), name


def test_expected_values_equal_the_jitted_training_loop(shipped):
    """train() (one numba kernel) and the step API the vectors come from agree bit for bit
    on every float64 quadratic, noisy-quadratic and MLP case (train draws the same noise
    and batches from the recorded seed), including where the divergence cases stop
    (train reports ``steps = diverges_at - 1``)."""
    checked = 0
    for case in shipped.values():
        p = case.problem
        if case.dtype != "float64" or p.kind == "replay":
            continue
        spe = case.steps_per_epoch
        if p.kind == "quadratic":
            problem = r.Quadratic(np.array(p["H"]), np.array(p["w_star"]))
        elif p.kind == "mlp":
            problem = r.MLPProblem(r.MLP(p["sizes"], p["activation"], p["loss"]), np.array(p["X"]),
                                   np.array(p["Y"]), batch_size=p["batch_size"])
            spe = None  # the data set defines the epoch
            assert np.array_equal(problem.draw_noise(case.n_steps, p["seed"]),
                                  [case.step_data(k)["batch"] for k in range(1, case.n_steps + 1)])
        else:
            problem = r.NoisyQuadratic(np.array(p["h"]), c=np.array(p["noise_scale"]) ** 2,
                                       batch_size=1, w_star=np.array(p["w_star"]))
        with np.errstate(over="ignore", invalid="ignore"):  # the divergence cases overflow
            rec = r.train(problem, adapter.build(case), w0=np.array(case.w0),
                          steps=case.n_steps, seed=p.get("seed", 0),
                          steps_per_epoch=spe, record_params=True,
                          on_divergence="stop")
        n = case.n_done
        assert rec.steps == n and rec.diverged == (case.diverges_at is not None), case.id
        assert np.array_equal(rec.params[1:n + 1], case.params), case.id
        assert np.array_equal(rec.losses[:n], case.loss), case.id
        if case.average is not None:
            assert np.array_equal(rec.averages[1:n + 1], case.average_expected), case.id
        checked += 1
    assert checked == 86


def test_spec_witness_values(shipped):
    """The lr-change witness (proofs/sources.md#the-lr-change-witness): g = 1, mu 0.9,
    w0 = 0, lr 0.1 then 0.01. PyTorch/optax w2 = -0.1 - 0.01 *
    (0.9 * 1 + 1) = -0.119; Keras w2 = -0.1 + (0.9 * (-0.1) - 0.01) = -0.2."""
    for cid, w2 in (("sgd/witness-pytorch", -0.119), ("sgd/witness-optax", -0.119),
                    ("sgd/witness-keras", -0.2)):
        assert abs(shipped[cid].params[1][0] - w2) <= 4 * U64 * 0.2, cid  # a few roundings


def test_every_case_has_a_tolerance_far_below_a_convention_difference(shipped):
    """Not vacuous: tol_params / max|params| < 1e-3 at every step of every case (float32
    included; FORMAT.md section 5 quotes this), and < 1e-11 for float64 cases."""
    for case in shipped.values():
        scale = np.abs(case.params).max(axis=1)
        rel = case.tol_params.max(axis=1) / scale
        assert rel.max() < (1e-11 if case.dtype == "float64" else 1e-3), case.id


# -- the tolerance derivation -------------------------------------------------------------------

def _replay_sgd_spec(dtype="float64"):
    spec = catalog.CaseSpec("sgd/hand-count", "two plain SGD steps on replayed gradients", [],
                          catalog.opt(catalog.sgd()), {"kind": "replay"}, [0.75], [0.25, 0.5],
                          step_data=[{"gradient": [0.5]}, {"gradient": [-1.5]}])
    return spec if dtype == "float64" else catalog.to_float32(spec)


@pytest.mark.parametrize("dtype,u_impl", [("float64", U64), ("float32", U32)])
def test_tolerance_of_plain_sgd_is_the_hand_count(dtype, u_impl):
    """w1 = w0 - lr g is a 2-term linear combination: (2*2 - 1) = 3 roundings of at most
    u (|w0| + |lr g|) each: delta_1 = 3u (0.75 + 0.125) = 2.625 u. Replay gradients do
    not depend on w, so the step's Jacobian is 1 and step 2 adds
    delta_2 = 3u (|w1| + |lr g2|) = 3u (0.625 + 0.75) = 4.125 u. The loss g . w is one
    product: 1 rounding, u |0.5 * 0.75| at step 1. tol = 2 (E(u_impl) + E(2^-53))."""
    case = generate.build_case(_replay_sgd_spec(dtype))
    s1, s2 = case["steps"]
    assert s1["params"] == [0.625] and s2["params"] == [1.375]
    tol = lambda c: generate.round_up(2 * (c * u_impl + c * U64))  # noqa: E731
    assert s1["tol_params"] == [tol(2.625)]
    assert s2["tol_params"] == [tol(2.625 + 4.125)]
    assert s1["tol_loss"] == tol(0.375)


def test_propagation_keeps_the_contraction():
    """GD on f = 1/2 h w^2 (h = 1, lr = 1.5): the step map w -> (1 - lr h) w has Jacobian
    -0.5, so E_t = sum_s 0.5^(t - s) delta_s, and the bound settles instead of growing
    like (1 + lr h)^t = 2.5^t (what element-wise absolute values would give). Local
    roundings of a step: r = w - 0 (u|w|), g = h r (1 rounding + h e_r), w - lr g
    (3u (|w| + lr |g|) + lr e_g): delta = u|w| (2 lr h + 3 + 3 lr h) = 10.5 u |w|."""
    spec = catalog.CaseSpec("sgd/contraction", "1-d GD", [], catalog.opt(catalog.sgd()),
                          catalog.quadratic([[1.0]], [0.0]), [1.0], [1.5] * 20)
    obj = generate._inputs(spec)
    out = model.run(obj, U64)
    w = [1.0] + [o["params"][0] for o in out]
    for t in range(1, 21):
        hand = sum(0.5 ** (t - s) * 10.5 * U64 * abs(w[s - 1]) for s in range(1, t + 1))
        assert out[t - 1]["E_params"][1][0] == pytest.approx(hand, rel=1e-12)
    assert out[19]["E_params"][1][0] < 1e-6 * 2.5 ** 20 * 10.5 * U64  # far below the wrap


def _exact_oracle(problem, step, w):
    F = Fraction
    if problem.kind == "replay":
        g = [F(x) for x in step["gradient"]]
        return sum(gi * wi for gi, wi in zip(g, w)), g
    rr = [wi - F(x) for wi, x in zip(w, problem["w_star"])]
    if problem.kind == "quadratic":
        H = [[F(x) for x in row] for row in problem["H"]]
        g = [sum(H[i][j] * rr[j] for j in range(len(w))) for i in range(len(w))]
        return F(1, 2) * sum(ri * gi for ri, gi in zip(rr, g)), g
    xi = [F(s) * F(z) for s, z in zip(problem["noise_scale"], step["noise"])]
    h = [F(x) for x in problem["h"]]
    g = [hi * ri + x for hi, ri, x in zip(h, rr, xi)]
    return sum(F(1, 2) * hi * ri * ri + x * ri for hi, ri, x in zip(h, rr, xi)), g


def exact_run(case):
    """FORMAT.md 4.1, 4.5 to 4.8 (SGD, EMA with a rational warm-up, Switch EMA, SWA,
    Lookahead) in exact
    rational arithmetic on the case's (exact) inputs: (params, average, loss) per step."""
    F = Fraction
    b, av = case.base, case.average
    w = [F(x) for x in case.w0]
    buf = [F(0)] * len(w)
    count = n = epoch = 0
    snapshots = 0
    if av is not None:
        ema = [F(0)] * len(w) if av.get("start") == "zeros" else list(w)
        prod = F(1)
    mu, damp, wd = F(b["momentum"]), F(b["dampening"]), F(b["weight_decay"])
    out = []
    for k in range(1, case.n_done + 1):
        step = case.step_data(k)
        lr = F(step["lr"])
        loss, g = _exact_oracle(case.problem, step, w)
        g = [-x for x in g] if b["maximize"] else g
        g = [gi + wd * wi for gi, wi in zip(g, w)]
        if mu == 0:
            w = [wi - lr * gi for wi, gi in zip(w, g)]
        elif b["convention"] == "keras":
            buf = [mu * v - lr * gi for v, gi in zip(buf, g)]
            w = ([wi + mu * v - lr * gi for wi, v, gi in zip(w, buf, g)] if b["nesterov"]
                 else [wi + v for wi, v in zip(w, buf)])
        else:
            if b["convention"] == "optax":
                buf = [gi + mu * v for gi, v in zip(g, buf)]
            elif count == 0:
                buf = list(g)
            else:
                buf = [mu * v + (1 - damp) * gi for v, gi in zip(buf, g)]
            d = [gi + mu * v for gi, v in zip(g, buf)] if b["nesterov"] else buf
            w = [wi - lr * di for wi, di in zip(w, d)]
        count, n = count + 1, n + 1
        epoch += bool(step["epoch_end"])
        average = None
        if av is not None and av.kind == "swa":  # FORMAT.md 4.7: the mean of the snapshots
            if _snapshot_due(av, n, epoch, step["epoch_end"]):
                snapshots += 1
                ema = [e + (wi - e) / snapshots for e, wi in zip(ema, w)]
            average = ema
        elif av is not None and av.kind == "lookahead":  # 4.8
            if n % av["k"] == 0:
                a = F(0) if av["start"] == "first" and snapshots == 0 else F(av["alpha"])
                ema = w if a == 0 else [e + a * (wi - e) for e, wi in zip(ema, w)]
                w, snapshots = list(ema), snapshots + 1
                if av["on_sync"] == "reset":
                    buf, count = [F(0)] * len(w), 0
            average = ema
        elif av is not None:
            if n % av["update_every"] == 0:
                decay = F(av["decay"])
                i, T, ratio = n - 1, av["warmup_steps"], F(av["warmup_ratio"])
                if av["warmup"] == "constant" and i <= T:
                    decay = ratio * decay
                elif av["warmup"] == "linear" and i <= T:
                    decay = (1 - (1 - F(i, T)) * (1 - ratio)) * decay
                if av["start"] == "first" and n <= max(av["update_every"],
                                                       av["update_after_step"] + 1):
                    decay = F(0)  # the first update copies w
                ema = [decay * e + (1 - decay) * wi for e, wi in zip(ema, w)]
                prod *= decay
            average = ema if (av["start"] != "zeros" or prod == 1) else [e / (1 - prod) for e in ema]
            if av.kind == "switch_ema" and _due(av, n, epoch, step["epoch_end"]):
                w = list(average)
                if av["on_switch"] == "reset":
                    buf, count = [F(0)] * len(w), 0
        out.append((w, average, loss))
    return out


def _snapshot_due(av, n, epoch, epoch_end):
    if av["swa_unit"] == "step":
        return n % av["swa_every"] == 0 and n > av["swa_start"]
    return epoch_end and epoch % av["swa_every"] == 0 and epoch > av["swa_start"]


def _due(av, n, epoch, epoch_end):
    if av["start"] == "zeros" and n < av["update_every"]:
        return False
    if av["switch_unit"] == "step":
        return n % av["switch_every"] == 0 and n > av["switch_start"]
    return epoch_end and epoch % av["switch_every"] == 0 and epoch > av["switch_start"]


def _rational_cases(shipped):
    for case in shipped.values():
        av = case.average
        if (case.base.kind == "sgd" and case.sam is None and case.problem.kind != "mlp"
                and (av is None or av.kind in ("swa", "lookahead")
                     or av["warmup"] in (None, "constant", "linear"))):
            yield case


def test_the_bound_contains_the_exact_rational_result(shipped):
    """Soundness of the derivation: for every SGD / EMA / Switch-EMA case (rational
    formulas), refimpl's float64 values are within E(u_ref) of the exact rational result,
    and a genuine float32 implementation (numpy, below) within E(u_impl) in the float32
    cases, at every step, for the parameters, the average and the loss."""
    def frac(x):
        return np.array([float(v) for v in x])

    n_cases = 0
    for case in _rational_cases(shipped):
        exact = exact_run(case)
        E = model.run(case.raw, U32 if case.dtype == "float32" else U64, steps=case.n_done)
        f32 = run_case(case, numpy_impl) if case.dtype == "float32" else None
        for k, (w, average, loss) in enumerate(exact):
            # compare in exact arithmetic: |float - exact| as a Fraction
            err = [abs(Fraction(float(p)) - e) for p, e in zip(case.params[k], w)]
            assert all(float(x) <= b for x, b in zip(err, E[k]["E_params"][1])), (case.id, k + 1)
            assert float(abs(Fraction(float(case.loss[k])) - loss)) <= E[k]["E_loss"][1][0], (case.id, k + 1)
            if average is not None:
                err = [abs(Fraction(float(p)) - e) for p, e in zip(case.average_expected[k], average)]
                assert all(float(x) <= b for x, b in zip(err, E[k]["E_average"][1])), (case.id, k + 1)
            if f32 is not None:
                got = f32.steps[k].params
                err = np.abs(got - frac(w))
                assert np.all(err <= E[k]["E_params"][0] * (1 + 1e-9)), (case.id, k + 1)
        n_cases += 1
    assert n_cases == 43


# -- teeth: a third implementation passes, its wrong variants fail where they should -----------------

def test_a_numpy_implementation_passes_in_both_precisions():
    """Positive control: the numpy implementation of FORMAT.md (a different order of
    operations: lerp EMAs, w + (-lr) d) in each case's precision passes every case it can
    run (all but FAME), float32 cases computed truly in float32, and the divergence cases
    (it overflows at the expected step)."""
    report = golden.check(golden.VECTORS, numpy_impl)
    assert report.count("fail") == 0, report.text()
    assert report.count("pass") == 107 and report.count("skip") == 16


def first_lr_change(case):
    return next(k for k in range(2, case.n_steps + 1) if case.lr[k - 1] != case.lr[k - 2])


TEETH = [
    # (case, bug, first failing step, why)
    ("sgd/witness-pytorch", "keras", 2, "lr 0.1 -> 0.01 at step 2"),
    ("sgd/pytorch-momentum-schedule", "keras", "lr", "the first lr change"),
    ("sgd/optax-nesterov", "keras", "lr", "the first lr change"),
    ("sgd/pytorch-momentum-schedule-f32", "keras", "lr", "the first lr change, float32"),
    ("sgd/pytorch-dampening", "dampen_first", 1, "buf = 0.5 g instead of g"),
    ("sgd/pytorch-weight-decay", "decoupled_wd", 2,
     "step 1 is w - lr (g + wd w) either way; then the buffer carries wd w or not"),
    ("adam/weight-decay", "decoupled_wd", 1, "AdamW instead of L2"),
    ("sgd/pytorch-maximize-weight-decay", "maximize_after_wd", 1, "-(g + wd w)"),
    ("adam/maximize-weight-decay", "maximize_after_wd", 1, "-(g + wd w)"),
    ("adam/large-eps", "eps_in_sqrt", 1, "sqrt(v_hat + eps) instead of sqrt(v_hat) + eps"),
    ("sam/zero-gradient", "no_eps", 1, "0/0 = NaN at the zero gradient of step 1"),
    ("sam/eps-large", "no_eps", 1, "eps = 0.5 ignored"),
    ("stable_sam/unnormalized-sgd", "no_rescale", 1, "SAM instead of StableSAM"),
    ("sam/normalized-sgd", "step_from_w_adv", 1, "base step from w + e"),
    ("switch_ema/epoch", "no_switch", 5, "first epoch end: 5 steps per epoch"),
    ("switch_ema/every-2-epochs-start-1", "no_switch", 8, "epoch 2 > start 1, 4 steps each"),
    ("switch_ema/steps", "no_switch", 6, "every 6 steps"),
    ("switch_ema/reset", "no_switch", 5, "first epoch end"),
    ("ema/constant-warmup", "warmup_off_by_one", 7, "i = n - 1 <= 6 warms steps 1..7, i = n only 1..6"),
    ("adam/adamw", "coupled_wd", 1, "Adam's coupled L2 instead of AdamW"),
    ("adam/adamw-schedule-maximize", "coupled_wd", 1, "coupled L2 under maximize"),
    ("adam/adamw-amsgrad-debiased", "coupled_wd", 1, "coupled L2"),
    ("adam/amsgrad-raw", "no_amsgrad", 2, "v falls at step 2 (g from (4, -2) to (0.5, 0.25))"),
    ("adam/amsgrad-raw", "other_amsgrad_max", 2, "optax's debiased maximum keeps 2 v1, torch's v1 / 0.75"),
    ("adam/amsgrad-debiased", "other_amsgrad_max", 2, "torch's raw maximum"),
    ("adam/amsgrad-debiased", "no_amsgrad", 2, "plain Adam"),
    ("sam/adaptive-unnormalized-sgd", "normalized_adaptive", 1, "ASAM's normalized form"),
    ("stable_sam/adaptive-unnormalized-sgd", "normalized_adaptive", 1, "ASAM's normalized form"),
    ("ema/first", "first_as_copy", 1, "step 1 mixes w0 into the average"),
    ("ema/first-update-every-3", "first_as_copy", 3, "the first update is after step 3"),
    ("ema/first-update-after-step-2", "first_ignores_update_after_step", 2,
     "timm's V3 copies after steps 1..3, not only step 1"),
    ("switch_ema/first-steps", "first_as_copy", 1, "the average after step 1"),
    ("averagers/swa-epochs", "swa_from_w0", 8, "the first snapshot, end of epoch 2"),
    ("averagers/swa-epochs", "swa_start_off_by_one", 4, "a snapshot at the end of epoch 1"),
    ("averagers/swa-steps-adam-nqm", "swa_from_w0", 6, "the first snapshot (step 6 > 4)"),
    ("averagers/lookahead", "lookahead_no_restart", 5, "after the sync at step 5 the "
     "parameters are the slow weights"),
    ("averagers/lookahead-first-reset-adam", "lookahead_first_as_copy", 3, "the first sync"),
    ("averagers/lookahead-first-reset-adam", "lookahead_keep_state", 4,
     "the step after the first sync"),
]


@pytest.mark.parametrize("cid,bug,step,why", TEETH, ids=[f"{t[0]}:{t[1]}" for t in TEETH])
def test_a_wrong_convention_fails_at_the_first_step_where_it_differs(shipped, cid, bug, step, why):
    case = shipped[cid]
    if step == "lr":
        step = first_lr_change(case)
    result = check_one(case, with_bug(bug))
    assert result.status == "fail" and result.step == step, (why, result.report)
    assert f"step {step}" in result.report and cid in result.report
    # the report shows the values before and at the failing step, and the case's flags
    assert f"step {step - 1} (before)" in result.report and f"step {step} (at)" in result.report
    for flag in case.flags:
        assert flag in result.report


def test_skipping_the_second_evaluation_is_caught_by_the_evaluation_count(shipped):
    """A 'SAM' that calls the oracle once: grad evals 1 instead of 2 at step 1."""
    result = check_one(shipped["sam/normalized-sgd"], with_bug("no_second_eval"))
    assert result.step == 1 and "grad evals = 1, expected 2" in result.message


@pytest.mark.parametrize("cid", ["sgd/pytorch-momentum-schedule", "adam/quadratic",
                                 "switch_ema/epoch", "sam/adaptive-sgd"])
def test_float64_tolerances_reject_a_float32_computation(shipped, cid):
    """Precision is part of the contract: float32 arithmetic (relative error ~6e-8) on a
    float64 case fails at step 1, whose tolerance is ~1e-15 relative."""
    result = check_one(shipped[cid], numpy_float32)
    assert result.status == "fail" and result.step == 1


@settings(max_examples=25)
@given(momentum=st.sampled_from([0.5, 0.9]), nesterov=st.booleans(),
       convention=st.sampled_from(["pytorch", "optax"]), weight_decay=st.sampled_from([0.0, 0.1]),
       rates=st.lists(st.sampled_from([0.0625, 0.125, 0.25]), min_size=2, max_size=8),
       dtype=st.sampled_from(["float64", "float32"]))
def test_random_sgd_cases_admit_the_numpy_implementation_and_reject_keras(
        momentum, nesterov, convention, weight_decay, rates, dtype):
    """For any such SGD configuration and schedule, the derived tolerance admits the
    numpy implementation (float32 arithmetic in float32 cases), and Keras momentum fails
    exactly at the first step whose lr differs from the previous one (passes if none)."""
    spec = catalog.CaseSpec("sgd/random", "random", [], catalog.opt(catalog.sgd(
        momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, convention=convention)),
        catalog.quadratic(), catalog.W0_3, rates)
    if dtype == "float32":
        spec = catalog.to_float32(spec)
    obj = generate.build_case(spec)
    case = golden.load_data(_file_with([obj]), "random.json").cases[0]
    assert check_one(case, numpy_impl).status == "pass"
    changes = [k for k in range(2, len(rates) + 1) if rates[k - 1] != rates[k - 2]]
    result = check_one(case, with_bug("keras"))
    if changes:
        assert result.status == "fail" and result.step == changes[0]
    else:
        assert result.status == "pass"


# -- the checker never crashes on a broken adapter ------------------------------------------------

class Raises:
    def __init__(self, at, exc):
        self.at, self.exc = at, exc
        self.inner = None

    def __call__(self, case):
        self.inner = adapter.make(case)
        return self

    def step(self, grad_fn, inputs):
        if inputs.step == self.at:
            raise self.exc
        return self.inner.step(grad_fn, inputs)


def test_an_exception_in_a_step_is_a_failure_naming_the_case_and_step(shipped):
    result = check_one(shipped["sgd/gd-quadratic"], Raises(3, KeyError("oops")))
    assert result.status == "fail" and result.step == 3
    assert "step 3 raised KeyError" in result.message and "sgd/gd-quadratic" in result.report


def test_an_arithmetic_error_is_read_as_divergence(shipped):
    result = check_one(shipped["sgd/gd-quadratic"], Raises(2, FloatingPointError("overflow")))
    assert result.step == 2 and "diverged at step 2" in result.message
    assert "FloatingPointError" in result.message


@pytest.mark.parametrize("factory,needle", [
    (lambda case: 1 / 0 if case else None, "the factory raised ZeroDivisionError"),
    (lambda case: object(), "has no step(grad_fn, inputs) method"),
    (lambda case: (lambda grad_fn, inputs: np.zeros(2)), "params must have 3 entries"),
    (lambda case: (lambda grad_fn, inputs: "nonsense"), "could not convert string"),
    (lambda case: (lambda grad_fn, inputs: (grad_fn(np.zeros(5)), None)), "expects 3 parameters"),
])
def test_a_broken_adapter_is_reported_not_raised(shipped, factory, needle):
    result = check_one(shipped["sgd/gd-quadratic"], factory)
    assert result.status == "fail" and needle in result.message, result.message


def test_one_broken_case_does_not_stop_the_others(shipped):
    """An adapter that crashes on one case only: that case fails, all others pass."""
    def factory(case):
        if case.id == "ema/copy":
            raise RuntimeError("boom")
        return adapter.make(case)
    report = golden.check(golden.VECTORS, factory)
    fails = [x.case_id for x in report.results if x.status == "fail"]
    assert fails == ["ema/copy"] and report.count("pass") == 122
    assert "the factory raised RuntimeError: boom" in report.text()


def test_unsupported_is_a_skip_with_its_reason(shipped):
    def factory(case):
        raise golden.Unsupported("no FAME here")
    result = check_one(shipped["fame/full-defaults"], factory)
    assert result.status == "skip" and result.message == "no FAME here"


def test_divergence_must_happen_at_the_expected_step(shipped):
    """An implementation that clips its parameters never diverges: it fails at
    diverges_at (all earlier steps match). One that diverges early fails there."""
    case = shipped["divergence/gd-too-large-lr"]

    class Clipped:
        def __init__(self, c):
            self.inner = adapter.make(c)

        def step(self, grad_fn, inputs):
            if inputs.step == case.diverges_at:
                return np.zeros(2), None
            return self.inner.step(grad_fn, inputs)

    result = check_one(case, Clipped)
    assert result.step == case.diverges_at and "expected the run to diverge" in result.message
    result = check_one(case, Raises(5, OverflowError("too big")))
    assert result.step == 5 and "diverged at step 5" in result.message


def test_divergence_cases_overflow_robustly(shipped):
    """FORMAT.md section 6: the loss before the diverging step is finite with room (a
    factor 2 below the largest double), and the run diverges through the loss."""
    for cid in ("divergence/gd-too-large-lr", "divergence/usam-too-large-lr"):
        case = shipped[cid]
        assert case.n_done + 1 == case.diverges_at
        assert np.all(np.abs(case.loss) < np.finfo(float).max / 2)
        traj = run_case(case, adapter.make)
        assert traj.diverged_at == case.diverges_at
        assert not math.isfinite(traj.steps[-1].loss)


# -- malformed input: the file, the case and the field ---------------------------------------------

def _file_with(case_objects, **header):
    data = json.loads((golden.VECTORS / "sgd.json").read_text())
    data["cases"] = case_objects
    data.update(header)
    return data


def _sgd_case(shipped, cid="sgd/gd-quadratic"):
    return json.loads(json.dumps(shipped[cid].raw))


def _errors(data, tmp_path, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return load(path), str(path)


def test_a_truncated_file_is_reported_with_its_name(tmp_path):
    text = (golden.VECTORS / "sgd.json").read_text()
    loaded, path = _errors(text[: len(text) // 2], tmp_path)
    assert loaded.cases == [] and len(loaded.errors) == 1
    assert str(loaded.errors[0]).startswith(f"file {path}: is not valid JSON (the file looks truncated")


@pytest.mark.parametrize("header,needle", [
    ({"format_version": 1}, "has format_version 1; this reader knows version 2 only"),
    ({"schema": "something-else"}, "is not a refimpl golden file"),
    ({"notes": []}, "field notes: must be of type object"),
])
def test_header_problems_are_reported(shipped, tmp_path, header, needle):
    loaded, path = _errors(_file_with([_sgd_case(shipped)], **header), tmp_path)
    assert loaded.cases == [] and needle in str(loaded.errors[0]) and path in str(loaded.errors[0])


def _mutate(c, path, value):
    keys = path.replace("]", "").replace("[", ".").split(".")
    target = c
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize("path,value,field,needle", [
    ("steps[3].params", KeyError, "steps[3].params", "is missing (required on a completed step)"),
    ("optimizer.base.momentum", "0.9", "optimizer.base.momentum", "must be of type number"),
    ("optimizer.base.momentum", 1.5, "optimizer.base.momentum", "must be < 1"),
    ("optimizer.base.convention", "jax", "optimizer.base.convention", "must be one of"),
    ("problem.kind", "cnn", "problem.kind", "unknown kind 'cnn'"),
    ("problem.H", [[1.0, 2.0], [2.0, 1.0]], "problem.H", "must be 3 x 3"),
    ("steps[1].step", 7, "steps[1].step", "must be 2"),
    ("steps[0].tol_params", [1e-16, -1.0, 0.0], "steps[0].tol_params[1]", "must be >= 0"),
    ("w0", [1.0, 2.0], "problem.H", "must be 2 x 2"),
    ("flags", ["no_such_flag"], "flags", "is not explained in the file's notes"),
    ("steps[2].gradient", [1.0, 2.0, 3.0], "steps[2].gradient", "is not used by problem kind"),
    ("diverges_at", 3, "diverges_at", "must equal the number of steps"),
    ("optimizer.bogus", 1, "optimizer.bogus", "is not a field of this object"),
])
def test_a_broken_case_names_file_case_and_field(shipped, tmp_path, path, value, field, needle):
    bad = _sgd_case(shipped)
    _mutate(bad, path, value)
    good = _sgd_case(shipped, "sgd/pytorch-dampening")
    loaded, fname = _errors(_file_with([bad, good]), tmp_path)
    assert [c.id for c in loaded.cases] == ["sgd/pytorch-dampening"]  # the good case survives
    messages = [str(e) for e in loaded.errors]
    want = f"file {fname}: case 'sgd/gd-quadratic': field {field}: "
    assert any(m.startswith(want) and needle in m for m in messages), messages


@pytest.mark.parametrize("path,value,field,needle", [
    ("w0", [0.0] * 5, "w0", "must have 17 entries (the parameters of an MLP [2, 4, 1])"),
    ("steps[4].batch", [0, 1, 2, 99], "steps[4].batch", "indices must be < 16"),
    ("steps[4].batch", [0, 1], "steps[4].batch", "must have batch_size = 4 indices"),
    ("problem.Y", [[0.0, 1.0]] * 16, "problem.Y", "must be 16 x 1"),
    ("steps[0].noise", [0.0] * 17, "steps[0].noise", "is not used by problem kind 'mlp'"),
])
def test_a_broken_mlp_case_names_the_field(shipped, tmp_path, path, value, field, needle):
    bad = json.loads(json.dumps(shipped["mlp/adam"].raw))
    _mutate(bad, path, value)
    loaded, fname = _errors(_file_with([bad]), tmp_path)
    messages = [str(e) for e in loaded.errors]
    want = f"file {fname}: case 'mlp/adam': field {field}: "
    assert any(m.startswith(want) and needle in m for m in messages), messages


def test_float32_cases_must_have_float32_inputs(shipped, tmp_path):
    bad = _sgd_case(shipped, "sgd/pytorch-momentum-schedule-f32")
    bad["w0"][0] = 0.1  # not a float32 number
    loaded, _ = _errors(_file_with([bad]), tmp_path)
    assert "field w0: must be exactly representable in float32" in str(loaded.errors[0])


def test_non_json_numbers_duplicates_and_probes_are_rejected(shipped, tmp_path):
    text = json.dumps(_file_with([_sgd_case(shipped)])).replace('"lr": 0.25', '"lr": NaN', 1)
    loaded, _ = _errors(text, tmp_path, "nan.json")
    assert "NaN is not a JSON number" in str(loaded.errors[0])
    loaded, _ = _errors(_file_with([_sgd_case(shipped)] * 2), tmp_path, "dup.json")
    assert "field id: is used by an earlier case of this file" in str(loaded.errors[0])
    data = _file_with([_sgd_case(shipped)])
    data["float_probe"][0]["decimal"] = 0.1000000000000001
    loaded, _ = _errors(data, tmp_path, "probe.json")
    assert "field float_probe[0]: decimal" in str(loaded.errors[0])


def test_the_checker_reports_malformed_files_and_checks_the_rest(shipped, tmp_path, capsys):
    (tmp_path / "a_broken.json").write_text("{\"schema\": \"refimpl-golden\", \"format_")
    (tmp_path / "b_good.json").write_text(json.dumps(_file_with([_sgd_case(shipped)])))
    report = golden.check(tmp_path, adapter.make)
    assert not report.ok and report.count("pass") == 1 and len(report.format_errors) == 1
    assert main(["golden", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MALFORMED file " in out and "a_broken.json" in out and "1 passed, 0 failed" in out


def test_the_schema_uses_only_keywords_the_reader_implements():
    """The reader interprets schema.json itself; a keyword it does not implement would be
    silently ignored, so none may appear."""
    known = {"$schema", "$id", "$ref", "$defs", "title", "description", "type", "const", "enum",
             "required", "properties", "additionalProperties", "items", "minItems", "minimum",
             "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern", "oneOf"}

    def walk(schema):
        assert set(schema) <= known, set(schema) - known
        for sub in list(schema.get("properties", {}).values()) + list(schema.get("$defs", {}).values()):
            walk(sub)
        for sub in schema.get("oneOf", []):
            walk(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key])

    walk(load_schema())


def test_shipped_files_validate_against_the_schema_with_jsonschema_if_installed():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text())
    for path in golden.golden_files(golden.VECTORS):
        jsonschema.validate(json.loads(path.read_text()), schema)


# -- the CLI and the documentation ----------------------------------------------------------------

def test_cli_check_list_and_usage_errors(capsys):
    assert main(["golden", "check"]) == 0
    assert capsys.readouterr().out.strip().endswith("golden: 123 passed, 0 failed, 0 skipped")
    assert main(["golden", "check", "--impl", "tests.test_golden:wrong_keras",
                 "-k", "sgd/witness-*"]) == 1
    out = capsys.readouterr().out
    assert "FAIL sgd/witness-pytorch" in out and "first mismatch at step 2 of 2" in out
    assert "golden: 1 passed, 2 failed, 0 skipped" in out  # Keras passes its own witness
    assert main(["golden", "check", "--impl", "no_such_module:make"]) == 2
    assert "cannot import module 'no_such_module'" in capsys.readouterr().err
    assert main(["golden", "check", "-k", "no/such-case"]) == 2
    assert main(["golden", "list"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == ("adam 18, averagers 7, divergence 2, ema 16, fame 15, mlp 8, sam 14, "
                    "sgd 19, stable_sam 13, switch_ema 11; 123 cases")


def test_format_md_matches_the_vectors(shipped):
    """The numbers and names FORMAT.md quotes are the shipped vectors' own."""
    text = " ".join(golden.FORMAT.read_text().split())  # line breaks do not matter
    counts = {}
    for cid in shipped:
        counts[cid.split("/")[0]] = counts.get(cid.split("/")[0], 0) + 1
    assert f"{len(shipped)} cases in {len(counts)} files" in text
    assert ", ".join(f"{k} {counts[k]}" for k in
                     ("sgd", "adam", "fame", "sam", "stable_sam", "ema", "switch_ema",
                      "averagers", "mlp", "divergence")) in text
    n32 = sum(c.dtype == "float32" for c in shipped.values())
    assert f"of which {n32} are float32" in text
    size = sum(p.stat().st_size for p in golden.VECTORS.glob("*.json")) / 1e6
    assert f"about {size:.2f} MB" in text
    for flag in catalog.NOTES:
        assert f"`{flag}`" in text, flag
    assert max(c.n_steps for c in shipped.values() if c.diverges_at is None) == 24
    guard_zero = shipped["fame/full-spike-guard-zero"].params
    assert 2e5 < np.abs(guard_zero).max() < 3e5  # "sends w to about 2.5e5"


# -- the checker at its edge -----------------------------------------------------------------

def off_by(multiple, field, at_step):
    """refimpl's own adapter, with one reported number (the last entry of ``field`` at step
    ``at_step``) moved by ``multiple`` times that entry's tolerance; the adapter's state
    is untouched, so every other number is exactly right."""
    from refimpl.golden import adapter, checker

    def factory(case):
        inner = adapter.make(case)
        counter = {"k": 0}

        def step(grad_fn, inputs):
            counter["k"] += 1
            params, average = checker._outputs(inner.step(grad_fn, inputs), case)
            if counter["k"] == at_step:
                k = at_step - 1
                if field == "params":
                    params = params.copy()
                    params[-1] += multiple * case.tol_params[k][-1]
                else:
                    average = average.copy()
                    average[-1] += multiple * case.tol_average[k][-1]
            return params, average
        return step
    return factory


EDGE_CASES = [("adam/quadratic", "params"), ("ema/copy", "params"), ("ema/copy", "average"),
              ("mlp/sgd-momentum", "params"), ("sgd/gd-quadratic", "params")]


@pytest.mark.parametrize("multiple", [0.1, 0.5, 0.99, 2.0, 10.0, -2.0])
@pytest.mark.parametrize("cid,field", EDGE_CASES, ids=[f"{c}:{f}" for c, f in EDGE_CASES])
def test_the_checker_fails_exactly_the_outputs_beyond_their_tolerance(shipped, cid, field,
                                                                      multiple):
    """An output off by a fraction of its tolerance passes, one off by 2 or 10 times it
    fails at that step naming the field (a checker that accepted 1000 times the
    tolerance, or compared without the absolute value, fails this test)."""
    case = shipped[cid]
    at_step = case.n_done // 2 + 1
    assert case.tol_params[at_step - 1][-1] > 0
    result = check_one(case, off_by(multiple, field, at_step))
    if abs(multiple) < 1:
        assert result.status == "pass", result.report
    else:
        assert result.status == "fail"
        assert f"step {at_step}" in result.report and field in result.report, result.report


# -- golden files as untrusted input -------------------------------------------------------

def _only_error(loaded):
    assert loaded.cases == [] or loaded.errors, "the tampered file was accepted"
    return " | ".join(str(e) for e in loaded.errors)


@pytest.mark.parametrize("field,scale", [("tol_params", 1e300), ("tol_params", 10.0),
                                         ("tol_params", 0.1), ("tol_loss", 1e6)])
def test_a_tolerance_that_is_not_the_files_own_rule_is_malformed(shipped, tmp_path, field, scale):
    """The reproduction: tol_params = 1e300 with wrong expected values passed any
    implementation. Each tolerance is recomputed from the rule (margin * the error
    bound, rounded up to two digits): inflated or deflated, it is reported."""
    bad = _sgd_case(shipped)
    step = bad["steps"][4]
    if field == "tol_loss":
        step[field] = step[field] * scale
        where = "steps[4].tol_loss"
    else:
        step[field][1] = step[field][1] * scale
        where = "steps[4].tol_params[1]"
    loaded, _ = _errors(_file_with([bad]), tmp_path)
    assert loaded.cases == []
    assert any(f"field {where}: is " in str(e) and "tolerance rule gives" in str(e)
               for e in loaded.errors), _only_error(loaded)


def test_expected_values_that_contradict_the_formulas_are_malformed(shipped, tmp_path):
    """Tolerances left right but an expected value moved: no correct implementation could
    pass the case, so the file is malformed (not a failure of the implementation)."""
    bad = _sgd_case(shipped)
    bad["steps"][4]["params"][2] += 1e-3
    loaded, _ = _errors(_file_with([bad]), tmp_path)
    assert any("field steps[4].params[2]: is " in str(e) and "formulas" in str(e)
               for e in loaded.errors), _only_error(loaded)


def test_an_untampered_copy_loads_and_its_tolerances_are_the_rule(shipped, tmp_path):
    """Teeth for the two tests above: the same file untouched loads without an error."""
    loaded, _ = _errors(_file_with([_sgd_case(shipped), _sgd_case(shipped, "sgd/pytorch-dampening")]),
                        tmp_path)
    assert loaded.errors == [] and len(loaded.cases) == 2


def _text_with(shipped, old, new):
    text = json.dumps(_file_with([_sgd_case(shipped)]))
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("old,new,needle", [
    ('"format_version": 2', '"format_version": true', "has format_version True"),
    ('"format_version": 2', '"format_version": 2.0', "has format_version 2.0"),
    ('"format_version": 2', '"format_version": 2, "format_version": 2', "has the key 'format_version' twice"),
    ('"lr": 0.25', '"lr": 0.25, "lr": 0.5', "has the key 'lr' twice"),
    ('"w0": [', '"w0": [' + "1" * 401 + ", ", "holds an integer literal of 401 digits"),
    ('"w0": [', '"w0": [' + "1" * 400 + ", ", "within the float64 range"),
    ('"grad_evals": 1', '"grad_evals": 1000000000000000000000000000000', "int64 range"),
    ('"w0": [', '"w0": [1e999, ', "must be a finite number, got inf"),
])
def test_hostile_numbers_and_keys_are_malformed_not_raised(shipped, tmp_path, old, new, needle):
    loaded, _ = _errors(_text_with(shipped, old, new), tmp_path)
    assert loaded.cases == [] and needle in _only_error(loaded), _only_error(loaded)


def test_a_hex_float_beyond_float64_is_malformed(shipped, tmp_path):
    data = _file_with([_sgd_case(shipped)])
    data["float_probe"][0]["hex"] = "0x1.0000000000000p+99999"  # matches the pattern
    loaded, _ = _errors(data, tmp_path)
    assert "outside the float64 range" in _only_error(loaded)


def test_a_ragged_matrix_in_a_float32_case_is_malformed(shipped, tmp_path):
    bad = _sgd_case(shipped, "sgd/pytorch-momentum-schedule-f32")
    bad["problem"]["H"][1] = bad["problem"]["H"][1][:-1]
    loaded, _ = _errors(_file_with([bad]), tmp_path)
    assert "field problem.H" in _only_error(loaded)


def test_deep_huge_and_special_files_are_malformed(tmp_path):
    from refimpl.golden import fileformat

    loaded, _ = _errors("[" * 100_000 + "]" * 100_000, tmp_path, "deep.json")
    assert "nested 100000 levels deep" in _only_error(loaded)
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(fileformat.MAX_FILE_BYTES + 1)
    assert "must be at most" in _only_error(load(big))
    assert "must be a regular file, got a character device" in _only_error(load("/dev/zero"))
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    assert "must be a regular file, got a FIFO" in _only_error(load(fifo))  # no hang
    assert "must be a regular file, got a directory" in _only_error(load(tmp_path))


@pytest.mark.parametrize("cid, field, step", [
    ("fame/official-amsgrad", "amsgrad", 2),
    ("fame/full-decoupled-maximize", "decoupled_weight_decay", 1),
])
def test_fame_option_cases_reject_fame_without_the_option(shipped, cid, field, step):
    """FAME is skipped by the numpy third implementation, so its new options get their
    teeth from refimpl's own adapter with the field switched off: without AMSGrad the case
    fails at step 2, where v first falls (the gradient drops from (4, -2) to (0.5, 0.25),
    beta2 = 0.5); coupled L2 instead of the decoupled decay fails at step 1. With the
    option the case passes."""
    case = shipped[cid]
    wrong = check_one(case, lambda c: adapter.Stepper(adapter.build(c, **{f"base__{field}": False}),
                                                      c.w0))
    assert wrong.status == "fail" and wrong.step == step
    assert check_one(case, adapter.make).status == "pass"


def test_relu_cases_keep_every_pre_activation_away_from_the_kink(shipped, monkeypatch):
    """The relu cases exist only because no hidden pre-activation comes within its error
    bound of 0 (bounds.relu refuses otherwise, since the backward pass's 0-or-1 factor has
    no first-order bound). Recorded here: the smallest |z| / (its bound) over every step,
    batch example and unit, for both roundings the tolerances use; and the refusal itself:
    a relu unit whose weights and bias are exactly 0 (z = 0) is not written."""
    from refimpl.golden import bounds as B
    seen = []
    original = B.relu

    def recording(x):
        bound = x.ctx.total(x).max(axis=0)
        seen.append(float(np.min(np.abs(x.v) / np.maximum(bound, 1e-300))))
        return original(x)

    monkeypatch.setattr(B, "relu", recording)
    for cid in ("mlp/relu-sgd-momentum", "mlp/relu-xent-adam"):
        case = shipped[cid]
        seen.clear()
        model.run(case.raw, U64)
        assert seen and min(seen) > 1.0
        print(f"\n{cid}: smallest |z| / bound = {min(seen):.3g}")
    monkeypatch.setattr(B, "relu", original)
    spec = next(c for c in catalog.all_cases() if c.id == "mlp/relu-sgd-momentum")
    w0 = list(spec.w0)
    w0[0:2] = [0.0, 0.0]   # unit 0 of the hidden layer: W_1[0, :] = 0 ...
    w0[8] = 0.0            # ... and b_1[0] = 0 (d = 4 * 2 weights, then 4 biases)
    with pytest.raises((B.IllConditioned, generate.GenerationError), match="kink"):
        generate.build_case(catalog.replace(spec, w0=w0))
