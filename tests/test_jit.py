"""Every compiled kernel equals its pure-Python reading bit for bit.

refimpl promises that the numba kernels ARE the readable code: compiled (no fastmath)
and run as plain Python (``.py_func``, or ``NUMBA_DISABLE_JIT=1``) they produce the same
bits. Each registered kernel is called here on random and special inputs both ways and
every output array and the return value are compared with ``np.array_equal``. A new
kernel without an entry in ``CASES`` fails ``test_every_kernel_has_a_case``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import refimpl
import refimpl.bench  # noqa: F401  (registers its kernels)
import refimpl.filters  # noqa: F401
import refimpl.train  # noqa: F401
from refimpl._jit import JIT_DISABLED, KERNELS

D = 5


def _vec(rng, scale=1.0):
    x = rng.standard_normal(D) * scale
    x[rng.integers(D)] = 0.0  # a zero element in every vector
    return x


def _pos(rng):
    return np.abs(rng.standard_normal(D)) + 0.1


def _sgd(rng):
    return (_vec(rng), _vec(rng), _vec(rng), float(rng.uniform(0, 1)), float(rng.uniform(0, 0.99)),
            float(rng.uniform(0, 1)), float(rng.uniform(0, 0.1)), bool(rng.integers(2)),
            bool(rng.integers(2)), bool(rng.integers(2)), int(rng.integers(3)))


def _fame_official(rng):
    return (_vec(rng), _vec(rng), _vec(rng), _vec(rng), _pos(rng), np.zeros(3), _vec(rng),
            float(rng.uniform(0, 0.1)), 0.9, 0.999, float(rng.uniform(0, 0.99)),
            float(rng.uniform(0, 0.99)), 1e-8, float(rng.uniform(0, 0.1)), bool(rng.integers(2)),
            bool(rng.integers(2)), float(rng.integers(1, 50)))


def _fame_official_amsgrad(rng):
    args = _fame_official(rng)
    return args[:5] + (_pos(rng),) + args[5:]


def _fame_full(rng):
    return (_vec(rng), _vec(rng), _vec(rng), _vec(rng), _pos(rng), _pos(rng), _pos(rng),
            np.zeros(6), _vec(rng) * 10, float(rng.uniform(0, 0.1)), 0.9, 0.999,
            float(rng.uniform(0, 0.99)), float(rng.uniform(0, 0.99)), float(rng.uniform(0, 0.99)),
            1e-8, float(rng.uniform(0, 0.1)), bool(rng.integers(2)), bool(rng.integers(2)),
            bool(rng.integers(2)), float(rng.integers(1, 50)))


def _mlp_case(rng, n=6, sizes=(2, 3, 3)):
    """(net, w, X, Y, idx) of a random small MLP: tanh/relu, mse/xent, a batch of 4."""
    act, loss = int(rng.integers(2)), int(rng.integers(2))
    net = np.array([act, loss, *sizes], dtype=np.int64)
    d = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    X = rng.standard_normal((n, sizes[0]))
    Y = rng.standard_normal((n, sizes[-1])) if loss == 0 else np.eye(sizes[-1])[rng.integers(sizes[-1], size=n)]
    idx = rng.integers(n, size=4).astype(np.int64)
    return net, rng.standard_normal(d), X, Y, idx


def _mlp_forward(rng):
    net, w, X, _, idx = _mlp_case(rng)
    rows = int(net[2:].sum())
    return net, w, X, idx, np.zeros((rows, 4)), np.zeros((rows, 4))


def _mlp_head(rng):
    net, _, _, Y, idx = _mlp_case(rng)
    return int(net[1]), rng.standard_normal((3, 4)) * 5, Y, idx, np.empty((3, 4))


def _mlp_loss_grad(rng):
    net, w, X, Y, idx = _mlp_case(rng)
    return net, w, X, Y, idx, np.empty(w.shape[0])


def _mlp_hvp(rng):
    net, w, X, Y, idx = _mlp_case(rng)
    return net, w, rng.standard_normal(w.shape[0]), X, Y, idx, np.empty(w.shape[0])


def _mlp_backward(rng):
    net, w, X, _, idx = _mlp_case(rng)
    rows = int(net[2:].sum())
    Z, A = np.zeros((rows, 4)), np.zeros((rows, 4))
    refimpl.problems.mlp.mlp_forward(net, w, X, idx, Z, A)
    return net, w, Z, A, rng.standard_normal((rows, 4)), np.empty((4, 3)), np.empty(w.shape[0])


def _train(rng):
    d, steps = 3, 25
    problem = int(rng.integers(3))
    net, w_mlp, X, Y, _ = _mlp_case(rng, sizes=(2, 1))  # (2, 1) has d = 3 parameters
    assert w_mlp.shape == (d,)
    batches = rng.integers(X.shape[0], size=(steps, 4)).astype(np.int64)
    H = rng.standard_normal((d, d))
    H = H + H.T
    base = int(rng.integers(3))
    base_hp = {0: np.array([0.9, 0.0, 0.01]), 1: np.array([0.9, 0.999, 1e-8, 0.0]),
               2: np.array([0.9, 0.999, 0.5, 0.5, 0.5, 1e-8, 0.0])}[base]
    base_flags = {0: np.array([1, 0, 0]), 1: np.array([0, int(rng.integers(2)), int(rng.integers(3))]), 2: np.array([int(rng.integers(2)), 0, 1, int(rng.integers(2)), int(rng.integers(2)),
                                int(rng.integers(2))])}[base]
    return (problem, H, _pos(rng)[:d], rng.standard_normal(d), _pos(rng)[:d],
            rng.standard_normal((steps, d)), net, X, Y, batches, rng.standard_normal(d),
            np.full(steps, 0.01), 5,
            base, base_hp, base_flags.astype(np.int64), int(rng.integers(3)), 0.05, 1e-12,
            int(rng.integers(4)), int(rng.integers(3)), 0.9, int(rng.integers(5)),
            np.array([1.0, 2 / 3, 0.0, 0.9]),
            np.array([1, int(rng.integers(2)), 0, 4, 2, 0, 0, 1, int(rng.integers(3))]),
            rng.standard_normal(d), np.zeros(steps), np.zeros(steps), np.zeros((steps + 1, d)),
            np.zeros((steps + 1, d)), bool(rng.integers(2)))


def _long(rng, n):
    x = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3)
    x[rng.integers(n)] = 0.0
    return x


def _tanh_arg(rng):
    special = [0.0, -0.0, 5e-324, -1e-300, 0.75, -0.75, np.nextafter(0.75, 0.0), 19.1, 22.0,
               -30.0, 1e308, np.inf, -np.inf, np.nan]
    if rng.random() < 0.4:
        return float(rng.choice(special))
    return float(rng.standard_normal() * 10.0 ** rng.uniform(-9, 1.5))


CASES = {
    # lengths 0 .. 40: the 8-lane blocks, the partial last block, and empty vectors
    "refimpl._kernels.l2_norm": lambda rng: (_long(rng, int(rng.integers(1, 41))),),
    "refimpl._kernels.weighted_l2_norm": lambda rng: (
        lambda n: (_long(rng, n), _long(rng, n)))(int(rng.integers(1, 41))),
    "refimpl._kernels._square_or_zero": lambda rng: (_vec(rng), int(rng.integers(D + 3))),
    "refimpl._kernels._weighted_square_or_zero": lambda rng: (
        _vec(rng), _vec(rng), int(rng.integers(D + 3))),
    "refimpl._tanh.tanh": lambda rng: (_tanh_arg(rng),),
    "refimpl._kernels.add_into": lambda rng: (_vec(rng), _vec(rng), np.empty(D)),
    "refimpl._kernels.decoupled_decay": lambda rng: (
        _vec(rng), float(rng.uniform(0, 2)), float(rng.choice([0.0, 0.3])), bool(rng.integers(2))),
    "refimpl._kernels.all_finite": lambda rng: (np.where(rng.random(D) < 0.2, np.inf, _vec(rng)),),
    "refimpl.optimizers.adam.adam_kernel": lambda rng: (
        _vec(rng), _vec(rng), _pos(rng), _pos(rng), _vec(rng), float(rng.uniform(0, 0.1)), 0.9,
        0.999, 1e-8, float(rng.uniform(0, 0.1)), bool(rng.integers(2)), float(rng.integers(1, 100)),
        bool(rng.integers(2)), int(rng.integers(3))),
    "refimpl.optimizers.adam.adam_step_kernel": lambda rng: (
        _vec(rng), _vec(rng), _pos(rng), _vec(rng), float(rng.uniform(0, 0.1)), 0.9, 0.999, 1e-8,
        float(rng.uniform(0, 0.1)), bool(rng.integers(2)), float(rng.integers(1, 100))),
    "refimpl.optimizers.adam.amsgrad_step_kernel": lambda rng: (
        _vec(rng), _vec(rng), _pos(rng), _pos(rng), _vec(rng), float(rng.uniform(0, 0.1)), 0.9,
        0.999, 1e-8, float(rng.uniform(0, 0.1)), bool(rng.integers(2)), float(rng.integers(1, 100)),
        bool(rng.integers(2))),
    "refimpl.filters.ema_step": lambda rng: tuple(float(x) for x in rng.standard_normal(2)) + (float(rng.uniform(0, 1)),),
    "refimpl.filters.dema_combine": lambda rng: tuple(float(x) for x in rng.standard_normal(2)),
    "refimpl.filters.tema_combine": lambda rng: tuple(float(x) for x in rng.standard_normal(3)),
    "refimpl.filters._chain_kernel": lambda rng: (
        rng.standard_normal(30), float(rng.uniform(0, 0.99)), float(rng.uniform(0, 0.99)),
        float(rng.uniform(0, 0.99)), int(rng.integers(1, 4)), bool(rng.integers(2)), np.empty(30)),
    "refimpl.optimizers.fame.fame_official_kernel": _fame_official,
    "refimpl.optimizers.fame.official_m_correction": lambda rng: (
        np.abs(_vec(rng)[:3]), float(rng.uniform(0, 0.99)), float(rng.uniform(0, 0.99)),
        float(rng.uniform(0, 0.99)), bool(rng.integers(2)), float(rng.integers(1, 50))),
    "refimpl.optimizers.fame.fame_official_amsgrad_kernel": _fame_official_amsgrad,
    "refimpl.optimizers.fame.fame_full_kernel": _fame_full,
    "refimpl.optimizers.sgd.sgd_kernel": _sgd,
    "refimpl.optimizers.sam.ascent_kernel": lambda rng: (
        _vec(rng), _vec(rng), float(rng.uniform(0, 1)), float(rng.choice([0.0, 1e-12])),
        int(rng.integers(4)), np.empty(D)),
    "refimpl.optimizers.sam.stable_rescale_kernel": lambda rng: (
        _vec(rng), _vec(rng), _vec(rng), _vec(rng), float(rng.choice([0.0, 1e-12])),
        bool(rng.integers(2)), np.empty(D)),
    "refimpl.optimizers.averagers.swa_update_kernel": lambda rng: (
        _vec(rng), _vec(rng), int(rng.integers(0, 5))),
    "refimpl.optimizers.averagers.swa_due": lambda rng: (
        int(rng.integers(1, 40)), int(rng.integers(0, 10)), bool(rng.integers(2)),
        int(rng.integers(1, 4)), bool(rng.integers(2)), int(rng.integers(0, 4))),
    "refimpl.optimizers.averagers.lookahead_sync_kernel": lambda rng: (
        _vec(rng), _vec(rng), float(rng.uniform(0, 1)), bool(rng.integers(2))),
    "refimpl.optimizers.ema.ema_update_kernel": lambda rng: (_vec(rng), _vec(rng), float(rng.uniform(0, 1))),
    "refimpl.optimizers.ema.debias_kernel": lambda rng: (_vec(rng), float(rng.choice([1.0, 0.5, 0.9 ** 7])), np.empty(D)),
    "refimpl.optimizers.ema.ema_decay_kernel": lambda rng: (
        int(rng.integers(1, 40)), float(rng.uniform(0, 1)), int(rng.integers(5)), int(rng.integers(0, 5)),
        float(rng.uniform(0.5, 2)), float(rng.uniform(0.3, 1)), 0.0, float(rng.uniform(0.1, 1)),
        int(rng.integers(1, 30)), int(rng.integers(0, 4))),
    "refimpl.optimizers.ema.switch_due": lambda rng: (
        int(rng.integers(1, 40)), int(rng.integers(0, 10)), bool(rng.integers(2)), int(rng.integers(1, 4)),
        bool(rng.integers(2)), int(rng.integers(0, 4)), bool(rng.integers(2)), int(rng.integers(1, 4))),
    "refimpl.problems.quadratic.quadratic_kernel": lambda rng: (
        rng.standard_normal((D, D)), _vec(rng), _vec(rng), np.empty(D)),
    "refimpl.problems.quadratic.noisy_quadratic_kernel": lambda rng: (
        _pos(rng), _vec(rng), _pos(rng), _vec(rng), _vec(rng), np.empty(D)),
    "refimpl.train.base_kernel": lambda rng: (
        0, np.array([0.9, 0.1, 0.01]), np.array([0, 1, 0]), _vec(rng), _vec(rng),
        rng.standard_normal((6, D)), np.zeros(6), int(rng.integers(3)), 0.1),
    "refimpl.train.train_kernel": _train,
    "refimpl.bench.triad_kernel": lambda rng: (np.zeros(D), _vec(rng), _vec(rng), float(rng.standard_normal())),
    "refimpl.bench.update_kernel": lambda rng: (_vec(rng), _vec(rng), float(rng.standard_normal())),
    "refimpl.bench.copy_loop_kernel": lambda rng: (_vec(rng), np.zeros(D), int(rng.integers(0, 4))),
    "refimpl.problems.mlp.mlp_shape": lambda rng: (_mlp_case(rng)[0],),
    "refimpl.problems.mlp.softmax_column": lambda rng: (
        rng.standard_normal((3, 4)) * 30, int(rng.integers(4)), np.empty(3)),
    "refimpl.problems.mlp.mlp_forward": _mlp_forward,
    "refimpl.problems.mlp.mlp_head": _mlp_head,
    "refimpl.problems.mlp.mlp_backward": _mlp_backward,
    "refimpl.problems.mlp.mlp_loss_grad": _mlp_loss_grad,
    "refimpl.problems.mlp.mlp_hvp": _mlp_hvp,
}


def test_every_kernel_has_a_case():
    assert set(KERNELS) == set(CASES)


def _same(a, b):
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: the kernels are plain Python already")
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", range(12))
def test_kernel_equals_its_python_reading(name, seed):
    compiled = KERNELS[name]
    args = CASES[name](np.random.default_rng(seed))
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    out_jit = compiled(*args)
    out_py = compiled.py_func(*copies)
    assert _same(out_jit, out_py), f"{name}: return values differ"
    for i, (a, b) in enumerate(zip(args, copies)):
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b, equal_nan=True), f"{name}: argument {i} differs"


_SCRIPT = r"""
import json, numpy as np, refimpl as r
from refimpl._jit import JIT_DISABLED
runs = {}
nqm = r.NoisyQuadratic(np.array([2.0, 0.5, 0.1]), batch_size=2)
opts = {
    "sema-stable-sgd": r.SwitchEMA(r.StableSAM(r.SGD(lr=0.1, momentum=0.9)), decay=0.9, start="zeros"),
    "ema-asam-adam": r.EMA(r.SAM(r.Adam(lr=0.01), ascent="adaptive"), decay=0.8, warmup="timm"),
    "fame-full": r.FAME(lr=0.01, variant="full"),
    "keras-nesterov": r.SGD(lr=0.05, momentum=0.9, nesterov=True, convention="keras"),
}
for name, opt in opts.items():
    rec = r.train(nqm, opt, w0=np.ones(3), steps=40, steps_per_epoch=6, seed=5, record_params=True)
    runs[name] = [float(x).hex() for x in np.concatenate([rec.params.ravel(), rec.losses])]
from refimpl.problems import data
for act, loss, ds in (("tanh", "xent", data.two_spirals(12, seed=1)),
                      ("relu", "mse", data.teacher_student(12, sizes=(2, 3, 1), seed=2))):
    mlp = r.MLP((2, 4, ds.Y.shape[1]), activation=act, loss=loss)
    problem = r.MLPProblem(mlp, ds.X, ds.Y, batch_size=5)
    opt = r.SwitchEMA(r.StableSAM(r.SGD(lr=0.1, momentum=0.9)), decay=0.9)
    rec = r.train(problem, opt, w0=mlp.init(3), epochs=4, seed=7, record_params=True)
    runs["mlp-" + act + "-" + loss] = [float(x).hex() for x in np.concatenate([rec.params.ravel(), rec.losses])]
print(json.dumps({"jit_disabled": JIT_DISABLED, "runs": runs}))
"""


def _run_script(disable_jit: bool):
    env = dict(os.environ)
    env["NUMBA_DISABLE_JIT"] = "1" if disable_jit else "0"
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_whole_runs_identical_with_and_without_jit():
    """A subprocess with NUMBA_DISABLE_JIT=1 reproduces the compiled loop's runs bitwise."""
    python = _run_script(disable_jit=True)
    compiled = _run_script(disable_jit=False)
    assert python["jit_disabled"] is True and compiled["jit_disabled"] is False
    assert python["runs"] == compiled["runs"]
