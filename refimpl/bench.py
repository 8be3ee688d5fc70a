"""Benchmarks: refimpl's speed and memory as ratios against baselines measured in the same
run (``refimpl bench [--quick] [--json FILE]``). benchmarks/README.md explains the method,
the byte counts and how to read the table.

Sections (``--sections`` picks some):

* ``bandwidth``: the physical limit. A STREAM-style triad ``a = b + s * c`` compiled with
  refimpl's own numba options over d = 1e7 float64, counted as STREAM counts it (24 bytes
  per element), plus context rows: a read-modify-write ``a = a + s * b`` and NumPy's copy
  and triad.
* ``steps``: one optimizer step (SGD with momentum, the EMA update, the StableSAM
  rescale, Adam, FAME official and full) at d = 1e3, 1e5, 1e7. Effective GB/s = the
  bytes the update must move (:data:`STEP_CASES`, counted from the kernel's own element
  accesses by :func:`traced_bytes`) / the time of one step; compared with the triad and
  with the readable NumPy expression of the same update (checked to give the same bits).
* ``runs``: whole runs. A quadratic with d = 10 for 1e5 steps (the jitted loop against a
  Python loop over NumPy calls), the cost of the loop's per-step copy of ``w``, and an
  MLP 2-64-64-1 with batch 64 trained by SGD (against vectorised NumPy and, if a Python
  with torch is available, torch CPU eager on the same network and optimizer).
* ``startup``: numba compilation of every kernel with an empty cache, the warm start, and
  (source checkout, not in ``--quick``) the test suite's wall time cold and warm.
* ``memory``: peak resident memory of one jitted step at d = 1e7 against its arrays.
* ``diagnostics``: measurements behind the design choices and the missed targets: what
  the dividing kernels gain from numba's ``error_model="numpy"`` (refimpl's setting;
  same bits as ``"python"``), refimpl's 8-lane norm against one running sum, the cost of
  refimpl's tanh in the MLP, and how often the platform's tanh rounds differently.

Timing (:func:`time_call`): ``time.perf_counter``; one warm-up call first, so compilation
and first-touch page faults are excluded; then ``repeat`` samples of ``number`` calls
each (``number`` chosen so that a sample lasts at least ``min_time``). The value is the
best sample, the spread ``median / best - 1``. Speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import refimpl
from refimpl._jit import JIT_DISABLED, kernel
from refimpl._kernels import l2_norm
from refimpl.optimizers.adam import Adam, AdamState, adam_kernel
from refimpl.optimizers.ema import ema_update_kernel
from refimpl.optimizers.fame import fame_full_kernel, fame_official_kernel
from refimpl.optimizers.sam import stable_rescale_kernel
from refimpl.optimizers.sgd import SGD, sgd_kernel
from refimpl.problems import MLP, MLPProblem, NoisyQuadratic, Quadratic, data
from refimpl.problems.mlp import mlp_loss_grad
from refimpl.train import train

EPS = float(np.finfo(np.float64).eps)
SECTIONS = ("bandwidth", "steps", "runs", "startup", "memory", "diagnostics")


# ------------------------------------------------------------------------------ records

_TARGET = re.compile(r"^(value|ratio) (>=|<=) ([0-9.]+(?:e[+-]?[0-9]+)?)$")


@dataclass(frozen=True)
class Record:
    """One row of the table and of the JSON file.

    ``value`` in ``unit``; ``baseline`` the same quantity for the baseline (same unit) and
    ``ratio = value / baseline``; ``target`` a condition on the value or the ratio such as
    ``"ratio >= 0.7"`` or ``"value <= 180"``; ``met`` whether it holds (None when there is
    no target or nothing was measured); ``spread`` the relative timing spread
    (median / best - 1, the larger of value's and baseline's); ``note`` what to know.
    """

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    spread: float | None = None
    note: str = ""


def meets(target: str | None, value: float | None, ratio: float | None) -> bool | None:
    """Evaluate ``target`` ("value|ratio >=|<= number"); None if no target or no data."""
    if target is None:
        return None
    match = _TARGET.match(target)
    if match is None:
        raise ValueError(f"target must look like 'ratio >= 0.7' or 'value <= 180', got {target!r}")
    x = value if match[1] == "value" else ratio
    if x is None:
        return None
    bound = float(match[3])
    return x >= bound if match[2] == ">=" else x <= bound


def record(name: str, value: float | None, unit: str, *, baseline: float | None = None,
           target: str | None = None, spread: float | None = None, note: str = "",
           why_missed: str = "") -> Record:
    """A :class:`Record` with ``ratio`` and ``met`` computed; ``why_missed`` is added to
    the note when the target is not met."""
    ratio = None
    if value is not None and baseline is not None and baseline != 0.0:
        ratio = value / baseline
    met = meets(target, value, ratio)
    if met is False and why_missed:
        note = f"{note.rstrip('.')}. {why_missed}" if note else why_missed
    return Record(name, value, unit, baseline, ratio, target, met, spread, note)


# ------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the best and the median of ``samples`` samples of ``number``
    calls each."""

    best: float
    median: float
    samples: int
    number: int

    @property
    def spread(self) -> float:
        return self.median / self.best - 1.0


def time_call(f: Callable[[], object], *, repeat: int, min_time: float = 0.0,
              number: int | None = None, warmup: Callable[[], object] | None = None,
              clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time ``f()``: a warm-up call (``warmup()`` if given, else ``f()``), then ``repeat``
    samples of ``number`` calls. Without ``number``, one more timed call of ``f``
    calibrates it (reused from the warm-up when that was ``f`` itself) so that a sample
    lasts at least ``min_time`` seconds. The garbage collector is off while sampling."""
    start = clock()
    (warmup or f)()
    once = clock() - start
    if number is None:
        if warmup is not None:
            start = clock()
            f()
            once = clock() - start
        number = max(1, math.ceil(min_time / once)) if once > 0.0 else 1
    samples = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = clock()
            for _ in range(number):
                f()
            samples.append((clock() - start) / number)
    finally:
        if gc_was_on:
            gc.enable()
    return Timing(min(samples), statistics.median(samples), repeat, number)


def gbps(bytes_per_element: float, d: int, seconds: float) -> float:
    """Effective bandwidth in GB/s (1e9 bytes per second)."""
    return bytes_per_element * d / seconds / 1e9


# ------------------------------------------------------------------ bandwidth kernels


@kernel
def triad_kernel(a, b, c, s):
    """STREAM triad ``a = b + s * c``: two reads and one write per element."""
    for i in range(a.shape[0]):
        a[i] = b[i] + s * c[i]


@kernel
def update_kernel(a, b, s):
    """``a = a + s * b``: a read-modify-write, the access pattern of an optimizer state
    (the written line was just read, so no extra read for ownership)."""
    for i in range(a.shape[0]):
        a[i] = a[i] + s * b[i]


@kernel
def copy_loop_kernel(w, w_before, steps):
    """``steps`` times: change ``w[0]``, then ``w_before[:] = w``, the copy that
    :func:`refimpl.train.train_kernel` makes every step to hand back the last finite
    iterate if an update overflows."""
    for _ in range(steps):
        w[0] = w[0] + 1.0
        w_before[:] = w


# ----------------------------------------------------------------- optimizer steps


@dataclass(frozen=True)
class StepCase:
    """One optimizer update: its kernel, the arguments of a benchmark step, the readable
    NumPy version of the same update, and the bytes it must move per element.

    ``make(d, rng)`` returns the kernel's arguments; ``numpy_update(*args)`` returns the
    new values of the arguments at positions ``outputs`` (new arrays; the inputs are not
    modified) and the kernel's return value. ``bytes_per_element`` is counted by hand
    (benchmarks/README.md) and checked against :func:`traced_bytes` in the tests.
    ``rounding`` is 0 when the NumPy version must agree bit for bit, else a bound on
    ``|kernel - numpy| / |kernel|`` per element in units of eps for a given d.
    ``why_slow`` / ``why_numpy`` explain a missed bandwidth / NumPy target (measured
    causes; the diagnostics section measures them).
    """

    name: str
    label: str
    kernel: object
    make: Callable
    numpy_update: Callable
    outputs: tuple
    bytes_per_element: int
    rounding: Callable[[int], float] = lambda d: 0.0
    why_slow: str = ""
    why_numpy: str = ""
    triad_target: float = 0.7


def _normal(rng, d, scale):
    return rng.standard_normal(d) * scale


def _positive(rng, d, scale):
    return (0.1 + rng.random(d)) * scale


def _make_sgd(d, rng):
    # PyTorch convention, momentum 0.9, after the first step, no weight decay
    return (_normal(rng, d, 1.0), _normal(rng, d, 0.1), _normal(rng, d, 0.1),
            0.01, 0.9, 0.0, 0.0, False, False, False, 0)


def numpy_sgd(w, buf, g, lr, momentum, dampening, weight_decay, nesterov, maximize, first,
              convention):
    """SGD with momentum as one writes it in NumPy (PyTorch convention, not the first
    step, no weight decay: the benchmark's case)."""
    _only(weight_decay == 0.0 and not (nesterov or maximize or first) and convention == 0,
          "numpy_sgd")
    buf = momentum * buf + (1.0 - dampening) * g
    w = w - lr * buf
    return (w, buf), None


def _make_ema(d, rng):
    return _normal(rng, d, 1.0), _normal(rng, d, 1.0), 0.999


def numpy_ema(ema, w, decay):
    ema = decay * ema + (1.0 - decay) * w
    return (ema,), None


def _make_stable(d, rng):
    w, g = _normal(rng, d, 1.0), _normal(rng, d, 0.1)
    return (w, w + 0.05 * g, g, _normal(rng, d, 0.1), 1e-12, False, np.empty(d))


def numpy_stable_rescale(w, w_adv, g, g_adv, eps, adaptive, out):
    """StableSAM's ``g_adv * (||g|| / (||g_adv|| + eps))`` with np.linalg.norm."""
    _only(not adaptive, "numpy_stable_rescale")
    return (g_adv * (np.linalg.norm(g) / (np.linalg.norm(g_adv) + eps)),), None


def _stable_rounding(d):
    # Each norm is a sum of d squares: relative error <= d u + u after the square root
    # (u = eps / 2), in both versions but in different summation orders; add the
    # division, the + eps and the product: |difference| <= (2 d u + 10 u) |value|.
    return d + 5.0


def _make_adam(d, rng):
    return (_normal(rng, d, 1.0), _normal(rng, d, 0.01), _positive(rng, d, 1e-4), np.zeros(d),
            _normal(rng, d, 0.1), 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 10.0, False, 0)


def numpy_adam(w, m, v, v_max, g, lr, beta1, beta2, eps, weight_decay, maximize, t,
               decoupled, amsgrad):
    """Adam as one writes it in NumPy (no weight decay, no AMSGrad)."""
    _only(weight_decay == 0.0 and not maximize and amsgrad == 0, "numpy_adam")
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    denom = np.sqrt(v) / math.sqrt(1.0 - beta2 ** t) + eps
    w = w - (lr / (1.0 - beta1 ** t)) * (m / denom)
    return (w, m, v), None


def _make_fame(d, rng):
    return (_normal(rng, d, 1.0), _normal(rng, d, 0.01), _normal(rng, d, 0.01),
            _normal(rng, d, 0.01), _positive(rng, d, 1e-4), np.zeros(3), _normal(rng, d, 0.1),
            1e-3, 0.9, 0.999, 0.5, 0.5, 1e-8, 0.0, False, False, 10.0)


def numpy_fame(w, m1, m2, m3, v, response, g, lr, b1, b2, b3, b4, eps, weight_decay, maximize,
               exact_debias, t):
    """Official FAME (the authors' ``1 - b1**t`` debiasing) as one writes it in NumPy."""
    _only(weight_decay == 0.0 and not (maximize or exact_debias), "numpy_fame")
    m1 = b1 * m1 + (1.0 - b1) * g
    m2 = b3 * m2 + (1.0 - b3) * m1
    m3 = b4 * m3 + (1.0 - b4) * m2
    tema = 3.0 * m1 - 3.0 * m2 + m3
    v = b2 * v + (1.0 - b2) * g * g
    denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t) + eps
    w = w - (lr / (1.0 - b1 ** t)) * (tema / denom)
    return (w, m1, m2, m3, v, response.copy()), None


def _make_fame_full(d, rng):
    return (_normal(rng, d, 1.0), _normal(rng, d, 0.01), _normal(rng, d, 0.01),
            _normal(rng, d, 0.01), _positive(rng, d, 1e-4), _positive(rng, d, 1e-4),
            _positive(rng, d, 1e-4), np.zeros(6), _normal(rng, d, 0.1),
            1e-3, 0.9, 0.999, 0.5, 0.5, 0.5, 1e-8, 0.0, False, True, True, 10.0)


def numpy_fame_full(w, m1, m2, m3, v1, v2, v3, response, g, lr, b1, b2, b3, b4, b5, eps,
                    weight_decay, maximize, exact_debias, guard_adam, t):
    """Full FAME (its defaults: exact debiasing, the Adam guard) as one writes it in NumPy."""
    _only(weight_decay == 0.0 and not maximize and exact_debias and guard_adam,
          "numpy_fame_full")
    r = response.copy()  # the two chains' responses to a constant 1 (scalars)
    r[0] = b1 * r[0] + (1.0 - b1) * 1.0
    r[1] = b3 * r[1] + (1.0 - b3) * r[0]
    r[2] = b5 * r[2] + (1.0 - b5) * r[1]
    r[3] = b2 * r[3] + (1.0 - b2) * 1.0
    r[4] = b4 * r[4] + (1.0 - b4) * r[3]
    r[5] = b5 * r[5] + (1.0 - b5) * r[4]
    m_correction = 3.0 * r[0] - 3.0 * r[1] + r[2]
    v_correction = 3.0 * r[3] - 3.0 * r[4] + r[5]
    m1 = b1 * m1 + (1.0 - b1) * g
    m2 = b3 * m2 + (1.0 - b3) * m1
    m3 = b5 * m3 + (1.0 - b5) * m2
    v1 = b2 * v1 + (1.0 - b2) * g * g
    v2 = b4 * v2 + (1.0 - b4) * v1
    v3 = b5 * v3 + (1.0 - b5) * v2
    m_tema = 3.0 * m1 - 3.0 * m2 + m3
    v_tema = 3.0 * v1 - 3.0 * v2 + v3
    d_tema = np.sqrt(np.maximum(v_tema, 0.0)) / math.sqrt(v_correction)
    d_adam = np.sqrt(v1) / math.sqrt(1.0 - b2 ** t)
    clipped = int(np.count_nonzero(d_tema < d_adam))
    denom = np.maximum(d_tema, d_adam) + eps
    w = w - (lr / m_correction) * (m_tema / denom)
    return (w, m1, m2, m3, v1, v2, v3, r), clipped


def _only(condition: bool, name: str):
    if not condition:
        raise ValueError(f"{name} implements only the benchmark's configuration")


_DIVIDING = ("adam", "fame", "fame_full")  # kernels whose loops divide: see the diagnostics
_LANE_NORMS = (
    "Its two norms are 8-lane fixed-order sums (refimpl._kernels) that read g and g_adv "
    "once each before the product pass; the diagnostics row compares one running sum.")
_NUMPY_ALSO_OPTIMAL = (
    "NumPy's expression makes the same three passes over memory (two norms through BLAS's "
    "vectorised dot, then one product), so no kernel can be 2x faster than it: the best "
    "possible ratio is about 1 plus NumPy's cost of a fresh output array.")

STEP_CASES = (
    StepCase("sgd", "SGD momentum", sgd_kernel, _make_sgd, numpy_sgd, (0, 1), 40),
    StepCase("ema", "EMA update", ema_update_kernel, _make_ema, numpy_ema, (0,), 24),
    StepCase("stable_sam", "StableSAM rescale", stable_rescale_kernel, _make_stable,
             numpy_stable_rescale, (6,), 32, _stable_rounding, why_slow=_LANE_NORMS,
             why_numpy=_NUMPY_ALSO_OPTIMAL, triad_target=0.8),
    StepCase("adam", "Adam", adam_kernel, _make_adam, numpy_adam, (0, 1, 2), 56),
    StepCase("fame", "FAME official", fame_official_kernel, _make_fame, numpy_fame,
             (0, 1, 2, 3, 4, 5), 88),
    StepCase("fame_full", "FAME full", fame_full_kernel, _make_fame_full, numpy_fame_full,
             (0, 1, 2, 3, 4, 5, 6, 7), 120),
)


def run_kernel(case: StepCase, args):
    """The kernel's outputs on copies of ``args``: (arrays at ``case.outputs``, return)."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    returned = case.kernel(*args)
    return tuple(args[k] for k in case.outputs), returned


def agrees(case: StepCase, args, numpy_update: Callable | None = None) -> bool:
    """Whether the NumPy version (``case.numpy_update`` unless given) computes the same
    update as the kernel on ``args``: bit for bit, or within ``case.rounding``."""
    numpy_update = numpy_update or case.numpy_update
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    expected, returned = run_kernel(case, args)
    got, got_returned = numpy_update(*copies)
    if not all(np.array_equal(a, b) for a, b in zip(copies, args) if isinstance(a, np.ndarray)):
        return False  # the NumPy version modified its input
    if len(got) != len(expected) or got_returned != returned:
        return False
    d = args[0].shape[0]
    for x, y in zip(expected, got):
        if x.shape != y.shape:
            return False
        tol = case.rounding(d) * EPS
        if tol == 0.0:
            if not np.array_equal(x, y):
                return False
        elif not np.all(np.abs(x - y) <= tol * np.abs(x)):
            return False
    return True


# ------------------------------------------------------ the byte model, from the kernels


class _Traced:
    """Stands in for a (d,) float64 array and logs each element read and write."""

    def __init__(self, name, values, log):
        self.name, self.values, self.log = name, values, log
        self.shape = values.shape

    def __getitem__(self, i):
        self.log.append((self.name, "read", int(i)))
        return float(self.values[i])

    def __setitem__(self, i, x):
        self.log.append((self.name, "write", int(i)))
        self.values[i] = x


def python_reading(func):
    """``func`` as plain Python all the way down: its own code, with every kernel it calls
    replaced by that kernel's Python reading (so traced arrays reach the inner loops)."""
    py = getattr(func, "py_func", func)
    namespace = dict(py.__globals__)
    for key in py.__code__.co_names:  # the global names the function's code uses
        value = py.__globals__.get(key)
        if value is not func and hasattr(value, "py_func"):
            namespace[key] = python_reading(value)
    return types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__,
                              py.__closure__)


def traced_bytes(func, args) -> int:
    """Bytes per element that ``func(*args)`` must move, counted from its own accesses.

    Every (d,) array argument (d = len(args[0]) >= 2) is replaced by a logging stand-in and
    the Python reading of ``func`` is run. A *sweep* over an array is a run of accesses of
    one kind (read or write) whose indices never decrease: it moves each element once
    (re-reading ``w[i]`` within the same iteration hits a register or L1, not memory). The
    count is 8 bytes per element per sweep. Each sweep must cover all d elements.
    """
    d = args[0].shape[0]
    if d < 2:
        raise ValueError("traced_bytes needs d >= 2 to see a second sweep")
    log = []
    traced = [_Traced(f"argument {k}", a.copy(), log)
              if isinstance(a, np.ndarray) and a.shape == (d,) else a
              for k, a in enumerate(args)]
    python_reading(func)(*traced)
    sweeps = 0
    for name, kind in sorted({(n, k) for n, k, _ in log}):
        indices = [i for n, k, i in log if n == name and k == kind]
        if set(indices) != set(range(d)):
            raise ValueError(f"{name} is {kind} only in part: not a streaming access")
        sweeps += 1 + sum(1 for a, b in itertools.pairwise(indices) if b < a)
    return 8 * sweeps


# ----------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one bench run (``plan(quick)`` makes the two standard ones)."""

    quick: bool
    repeat: int
    min_time: float
    bandwidth_d: int
    step_sizes: tuple
    target_d: int
    check_d: int
    quad_d: int
    quad_steps: int
    quad_python_steps: int
    mlp_sizes: tuple
    mlp_wide: tuple
    mlp_batch: int
    mlp_n: int
    mlp_steps: int
    memory_d: int
    suite: bool
    torch_python: str | None
    torch_threads: int = 1


def plan(quick: bool, torch_python: str | None = None, torch_threads: int = 1) -> Plan:
    """The standard plan; ``--quick`` takes fewer samples and skips the suite timings."""
    return Plan(quick=quick, repeat=3 if quick else 7, min_time=0.01 if quick else 0.05,
                bandwidth_d=10**7, step_sizes=(10**3, 10**5, 10**7), target_d=10**7,
                check_d=1000, quad_d=10, quad_steps=10**5,
                quad_python_steps=10**4 if quick else 10**5,
                mlp_sizes=(2, 64, 64, 1), mlp_wide=(2, 256, 256, 1), mlp_batch=64, mlp_n=1024,
                mlp_steps=500 if quick else 3000,
                memory_d=10**7, suite=not quick, torch_python=torch_python,
                torch_threads=torch_threads)


def _sci(d: int) -> str:
    exponent = round(math.log10(d)) if d > 0 else 0
    return f"1e{exponent}" if 10**exponent == d else str(d)


# ------------------------------------------------------------------ section: bandwidth


def bench_bandwidth(p: Plan) -> tuple[list[Record], float]:
    """The triad (the reference) and context rows; returns the records and triad GB/s."""
    d = p.bandwidth_d
    rng = np.random.default_rng(0)
    a, b, c = np.zeros(d), rng.random(d), rng.random(d)

    def timed(f):  # at least 10 samples: every "vs triad" ratio divides by this number
        return time_call(f, repeat=max(p.repeat, 10), min_time=p.min_time)

    triad = timed(lambda: triad_kernel(a, b, c, 3.0))
    update = timed(lambda: update_kernel(a, b, 1e-3))
    copy = timed(lambda: np.copyto(a, b))

    def numpy_triad():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    numpy_t = timed(numpy_triad)
    limit = gbps(24, d, triad.best)
    n = _sci(d)
    return [
        record(f"triad a = b + s*c (numba), d={n}", limit, "GB/s", spread=triad.spread,
               note="the physical limit of the other rows; 24 B/element as STREAM counts "
                    "(a write to a line not in cache also reads it: 32 B really move)"),
        record(f"update a = a + s*b (numba), d={n}", gbps(24, d, update.best), "GB/s",
               baseline=limit, spread=update.spread,
               note="read-modify-write like optimizer state: no read for ownership"),
        record(f"numpy copy, d={n}", gbps(16, d, copy.best), "GB/s", baseline=limit,
               spread=copy.spread),
        record(f"numpy triad (multiply, add; out=), d={n}", gbps(24, d, numpy_t.best), "GB/s",
               baseline=limit, spread=numpy_t.spread, note="two passes, counted as 24 B"),
    ], limit


# --------------------------------------------------------------------- section: steps


def bench_steps(p: Plan, limit: float) -> list[Record]:
    """Each optimizer step against the triad and against its NumPy version."""
    rng = np.random.default_rng(1)
    records = []
    for case in STEP_CASES:
        if not agrees(case, case.make(p.check_d, rng)):
            raise RuntimeError(f"the NumPy baseline of {case.name} does not compute the "
                               "kernel's update: the comparison would be meaningless")
        for d in p.step_sizes:
            records += _bench_step(p, case, d, rng, limit)
    return records


def _bench_step(p: Plan, case: StepCase, d: int, rng, limit: float) -> list[Record]:
    args = case.make(d, rng)
    kernel_t = time_call(lambda: case.kernel(*args), repeat=p.repeat, min_time=p.min_time)
    numpy_t = time_call(lambda: case.numpy_update(*args), repeat=p.repeat, min_time=p.min_time)
    speed = gbps(case.bytes_per_element, d, kernel_t.best)
    at_target = d == p.target_d
    label = f"{case.label}, d={_sci(d)}"
    return [
        record(f"{label}: vs triad", speed, "GB/s", baseline=limit, spread=kernel_t.spread,
               target=f"ratio >= {case.triad_target}" if at_target else None,
               why_missed=case.why_slow,
               note=f"{case.bytes_per_element} B/element" if at_target else ""),
        record(f"{label}: vs NumPy", speed, "GB/s",
               baseline=gbps(case.bytes_per_element, d, numpy_t.best),
               spread=max(kernel_t.spread, numpy_t.spread),
               target="ratio >= 2" if at_target else None, why_missed=case.why_numpy),
    ]


# ---------------------------------------------------------------------- section: runs


def quadratic_problem(d: int, seed: int = 0) -> Quadratic:
    """A random SPD quadratic: H = Q diag(logspace(-4, 0, d)) Q^T (exactly symmetric),
    w* = 1 (so converged iterates stay far from subnormal numbers)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    h = (q * np.logspace(-4.0, 0.0, d)) @ q.T
    return Quadratic((h + h.T) / 2.0, np.ones(d))


def numpy_quadratic_sgd(H, w_star, w0, lr, momentum, steps):
    """The plain Python loop over NumPy calls that the jitted loop replaces: the same
    loss, gradient, gradient norm, finiteness checks and SGD momentum update (PyTorch
    convention). Returns (w, losses, grad_norms)."""
    w = w0.copy()
    buf = None
    losses, grad_norms = np.empty(steps), np.empty(steps)
    for t in range(steps):
        r = w - w_star
        g = H @ r
        loss = 0.5 * (r @ g)
        if not (math.isfinite(loss) and np.isfinite(g).all()):
            raise FloatingPointError(f"diverged at step {t}")
        losses[t], grad_norms[t] = loss, np.linalg.norm(g)
        buf = g if buf is None else momentum * buf + g
        w_new = w - lr * buf
        if not np.isfinite(w_new).all():
            raise FloatingPointError(f"diverged at step {t}")
        w = w_new
    return w, losses, grad_norms


def numpy_mlp_loss_grad(mlp: MLP, w, X, Y):
    """Loss and gradient of a tanh or relu MLP with the mse loss on the batch (X, Y),
    vectorised NumPy: batch-major activations, matrix products (BLAS), refimpl's flat
    parameter layout."""
    if mlp.loss != "mse":
        raise ValueError("numpy_mlp_loss_grad implements the mse loss only")
    relu = mlp.activation == "relu"
    blocks = mlp.blocks()
    layers = [(w[sw].reshape(shape), w[sb]) for (sw, sb), (shape, _) in zip(blocks, mlp.shapes())]
    acts = [X]  # acts[l]: (B, n_l)
    for l, (W, b) in enumerate(layers):
        z = acts[-1] @ W.T + b
        hidden = l < len(layers) - 1
        acts.append(z if not hidden else np.maximum(z, 0.0) if relu else np.tanh(z))
    residual = acts[-1] - Y
    loss = float(np.mean(residual * residual))
    delta = (2.0 / residual.size) * residual  # dLoss/dz of the output layer
    g = np.empty_like(w)
    for l in range(len(layers) - 1, -1, -1):
        sw, sb = blocks[l]
        g[sw] = (delta.T @ acts[l]).ravel()
        g[sb] = delta.sum(axis=0)
        if l > 0:
            slope = (acts[l] > 0.0) if relu else (1.0 - acts[l] * acts[l])
            delta = (delta @ layers[l][0]) * slope
    return loss, g


def numpy_mlp_sgd(mlp: MLP, X, Y, batches, w0, lr, momentum):
    """SGD with momentum (PyTorch convention) over the mini-batches ``batches`` (steps, B)
    with :func:`numpy_mlp_loss_grad`. Returns (w, losses)."""
    w = w0.copy()
    buf = None
    losses = np.empty(len(batches))
    for t, idx in enumerate(batches):
        losses[t], g = numpy_mlp_loss_grad(mlp, w, X[idx], Y[idx])
        buf = g if buf is None else momentum * buf + g
        w = w - lr * buf
    return w, losses


def mlp_problem(sizes, n, batch, seed=0, activation="tanh") -> tuple[MLPProblem, np.ndarray]:
    """Teacher-student regression data for an mse MLP of ``sizes``, and w0."""
    mlp = MLP(tuple(sizes), activation=activation)
    ds = data.teacher_student(n, sizes=tuple(sizes), seed=seed)
    return MLPProblem(mlp, ds.X, ds.Y, batch_size=batch), mlp.init(seed)


_TORCH_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
inp = np.load(sys.argv[1])
X, Y, batches, w0 = (torch.from_numpy(inp[k]) for k in ("X", "Y", "batches", "w0"))
sizes = [int(s) for s in inp["sizes"]]
lr, momentum, repeat = float(inp["lr"]), float(inp["momentum"]), int(inp["repeat"])
act = torch.nn.ReLU if int(inp["relu"]) else torch.nn.Tanh
torch.set_num_threads(int(inp["threads"]))
layers = []
for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
    layers.append(torch.nn.Linear(n_in, n_out, dtype=torch.float64))
    if i < len(sizes) - 2:
        layers.append(act())
net = torch.nn.Sequential(*layers)
linears = [m for m in net if isinstance(m, torch.nn.Linear)]
loss_fn = torch.nn.MSELoss()

def load_w0():  # refimpl's flat layout: W_l (row-major, nn.Linear's layout), then b_l
    p = 0
    with torch.no_grad():
        for lin in linears:
            for t in (lin.weight, lin.bias):
                t.copy_(w0[p:p + t.numel()].reshape(t.shape))
                p += t.numel()

def run(rows):
    load_w0()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    for idx in rows:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(X[idx]), Y[idx])
        loss.backward()
        opt.step()

run(batches[:20])
times = []
for _ in range(repeat):
    start = time.perf_counter()
    run(batches)
    times.append(time.perf_counter() - start)
w = torch.cat([t.detach().reshape(-1) for lin in linears for t in (lin.weight, lin.bias)])
np.save(sys.argv[2], w.numpy())
print(json.dumps({"times": times, "threads": torch.get_num_threads(), "version": torch.__version__}))
"""


def torch_mlp_sgd(python: str, problem: MLPProblem, batches, w0, lr, momentum, *, repeat,
                  threads) -> tuple[list[float], np.ndarray, dict]:
    """Run the same network and optimizer in torch CPU eager (float64) in ``python``:
    returns the per-run times, the final weights (refimpl's layout) and torch's info."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "input.npz", Path(tmp) / "w.npy"
        np.savez(inp, X=problem.X, Y=problem.Y, batches=batches, w0=w0,
                 sizes=np.array(problem.mlp.sizes), lr=lr, momentum=momentum, repeat=repeat,
                 threads=threads, relu=int(problem.mlp.activation == "relu"))
        proc = subprocess.run([python, "-c", _TORCH_SCRIPT, str(inp), str(out)],
                              capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the torch baseline failed: {proc.stderr.strip()[-800:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return info["times"], np.load(out), info


def bench_runs(p: Plan) -> list[Record]:
    """Whole runs: the quadratic, the loop's copy of w, the MLP."""
    quadratic, loop_ns = _bench_quadratic(p)
    return [quadratic, *_bench_copy(p, loop_ns), *_bench_mlp(p)]


def _bench_quadratic(p: Plan) -> tuple[Record, float]:
    """Quadratic d = 10: the jitted loop against a Python loop over NumPy calls."""
    problem, w0 = quadratic_problem(p.quad_d), np.zeros(p.quad_d)
    opt = SGD(lr=0.01, momentum=0.9)
    jit = time_call(lambda: train(problem, opt, w0=w0, steps=p.quad_steps), repeat=p.repeat,
                    number=1, warmup=lambda: train(problem, opt, w0=w0, steps=10))
    H, w_star = problem.H.copy(), problem.w_star.copy()
    python = time_call(lambda: numpy_quadratic_sgd(H, w_star, w0, 0.01, 0.9, p.quad_python_steps),
                       repeat=p.repeat, number=1)
    loop_ns = jit.best / p.quad_steps * 1e9
    shorter = f"; the Python loop ran {_sci(p.quad_python_steps)} steps" if p.quick else ""
    return record(
        f"quadratic d={p.quad_d}, SGD momentum, {_sci(p.quad_steps)} steps: jitted loop vs "
        "Python loop over NumPy", p.quad_steps / jit.best, "steps/s",
        baseline=p.quad_python_steps / python.best, spread=max(jit.spread, python.spread),
        target="ratio >= 20", note=f"{loop_ns:.0f} ns per jitted step{shorter}",
        why_missed=_QUADRATIC_WHY), loop_ns


def _bench_copy(p: Plan, loop_ns: float) -> list[Record]:
    """The loop's copy of w every step (to hand back the last finite iterate when
    ``on_divergence="stop"``; the default "raise" skips it), at the
    quadratic's d against the loop's step, and at target_d against an SGD step."""
    w, w_before = np.ones(p.quad_d), np.empty(p.quad_d)
    small = time_call(lambda: copy_loop_kernel(w, w_before, p.quad_steps), repeat=p.repeat,
                      number=1)
    args = _make_sgd(p.target_d, np.random.default_rng(2))
    w_large, before_large = args[0], np.empty(p.target_d)
    large = time_call(lambda: copy_loop_kernel(w_large, before_large, 1), repeat=p.repeat,
                      min_time=p.min_time)
    step = time_call(lambda: sgd_kernel(*args), repeat=p.repeat, min_time=p.min_time)
    return [
        record(f"loop's copy of w per step, d={p.quad_d}", small.best / p.quad_steps * 1e9, "ns",
               baseline=loop_ns, spread=small.spread,
               note="ratio = share of the jitted step (the copy timed in a bare loop that "
                    "also changes w[0] every step)"),
        record(f"loop's copy of w per step, d={_sci(p.target_d)}", large.best * 1e3, "ms",
               baseline=step.best * 1e3, spread=max(large.spread, step.spread),
               note="ratio = cost relative to one SGD momentum step (16 B/element, plus the "
                    "read for ownership of w_before, against 40); paid only with "
                    "on_divergence='stop', which needs the last finite iterate"),
    ]


# A baseline must run the same computation: its final weights may differ from refimpl's by
# rounding (measured ~1e-16 relative here), never by a different update (lr * g ~ 1e-3).
_SAME_RUN = 1e-9


def _bench_mlp(p: Plan) -> list[Record]:
    """MLP: the jitted loop against vectorised NumPy and torch on the same mini-batches,
    for the target network (tanh, p.mlp_sizes) and, reported without a target, the same
    network with relu and a wider tanh network (p.mlp_wide)."""
    configs = [(p.mlp_sizes, "tanh", True), (p.mlp_sizes, "relu", False),
               (p.mlp_wide, "tanh", False)]
    return [rec for sizes, act, targets in configs
            for rec in _bench_mlp_network(p, sizes, act, targets)]


def _bench_mlp_network(p: Plan, sizes, activation, targets) -> list[Record]:
    problem, w0 = mlp_problem(sizes, p.mlp_n, p.mlp_batch, activation=activation)
    lr, momentum = 0.01, 0.9
    # the wide network does 16 times the work per step: fewer steps, same time
    steps = p.mlp_steps if sizes == p.mlp_sizes else max(p.mlp_steps // 10, 20)
    opt = SGD(lr=lr, momentum=momentum)
    name = (f"MLP {'-'.join(map(str, sizes))} {activation}, batch {p.mlp_batch}, "
            "SGD momentum")
    jit = time_call(lambda: train(problem, opt, w0=w0, steps=steps), repeat=p.repeat, number=1,
                    warmup=lambda: train(problem, opt, w0=w0, steps=2))
    w_ref = train(problem, opt, w0=w0, steps=steps).w
    batches = problem.draw_noise(steps, 0)  # the loop's own mini-batches (seed 0)
    X, Y = np.array(problem.X), np.array(problem.Y)

    def numpy_run():
        return numpy_mlp_sgd(problem.mlp, X, Y, batches, w0, lr, momentum)

    numpy_t = time_call(numpy_run, repeat=p.repeat, number=1)
    agreement = _same_run("vectorised NumPy", numpy_run()[0], w_ref)
    records = [record(
        f"{name}: jitted loop vs vectorised NumPy", steps / jit.best, "steps/s",
        baseline=steps / numpy_t.best, spread=max(jit.spread, numpy_t.spread),
        target="ratio >= 2" if targets else None, why_missed=_MLP_WHY,
        note=f"{agreement}; {jit.best / steps * 1e6:.0f} us per jitted step")]
    torch_name = f"{name}: jitted loop vs torch CPU eager"
    if p.torch_python is None:
        records.append(record(torch_name, None, "steps/s",
                              target="ratio >= 4" if targets else None,
                              note="skipped: no Python with torch (use --torch-python PATH)"))
        return records
    times, w_torch, info = torch_mlp_sgd(p.torch_python, problem, batches, w0, lr, momentum,
                                         repeat=p.repeat, threads=p.torch_threads)
    best = min(times)
    records.append(record(
        torch_name, steps / jit.best, "steps/s",
        baseline=steps / best, spread=max(jit.spread, statistics.median(times) / best - 1),
        target="ratio >= 4" if targets else None, why_missed=_MLP_WHY,
        note=f"torch {info['version']}, float64, {info['threads']} thread(s); "
             f"{_same_run('torch', w_torch, w_ref)}"))
    return records


def _same_run(who: str, w, w_ref) -> str:
    diff = float(np.max(np.abs(w - w_ref)) / np.max(np.abs(w_ref)))
    if not diff <= _SAME_RUN:
        raise RuntimeError(f"the {who} baseline does not compute refimpl's run: final weights "
                           f"differ by {diff:.1e} relative (rounding gives ~1e-16)")
    return f"final weights agree with refimpl's to {diff:.1e} relative"


_MLP_WHY = ("The kernels' arithmetic is the bottleneck: matrix-shaped loops in a fixed order "
            "with separate multiplies and adds (no FMA: the compiled kernel must give the bits "
            "of its plain-Python reading) on the 256-bit vectors LLVM chooses here, where "
            "NumPy's OpenBLAS uses FMA on 512-bit vectors; refimpl's tanh is vectorised but "
            "still costs about a fifth of the step. The diagnostics rows measure both.")
_QUADRATIC_WHY = ("Most of the jitted step is the loop's own overhead, not the gradient; "
                  "see the diagnostics row on the noisy quadratic.")


# ------------------------------------------------------------------- section: startup

_STARTUP_SCRIPT = r"""
import json, time
start = time.perf_counter()
import importlib, pkgutil
import numpy as np
import refimpl as r
skipped = []
for m in pkgutil.walk_packages(r.__path__, "refimpl."):
    if m.name not in ("refimpl.bench", "refimpl.cli", "refimpl.__main__"):
        try:
            importlib.import_module(m.name)
        except ImportError:  # an example needing an optional library (jax, torch)
            skipped.append(m.name)
from refimpl import filters
from refimpl._jit import KERNELS
from refimpl.problems import data
imported = time.perf_counter()
nqm = r.NoisyQuadratic(np.array([2.0, 0.5, 0.1]), batch_size=2)
quad = r.Quadratic(np.eye(3))
ds = data.teacher_student(12, sizes=(2, 3, 1), seed=2)
mlp = r.MLP((2, 4, 1))
mp = r.MLPProblem(mlp, ds.X, ds.Y, batch_size=4)
sgd = r.SGD(lr=0.1, momentum=0.9)
r.train(nqm, r.SwitchEMA(r.StableSAM(sgd), decay=0.9, switch_unit="step"), w0=np.ones(3), steps=3)
for opt in (sgd, r.Adam(), r.FAME(), r.FAME(variant="full"), r.SAM(sgd), r.StableSAM(sgd),
            r.EMA(sgd, start="zeros", warmup="timm"), r.SwitchEMA(sgd, switch_unit="step")):
    opt.step(np.ones(3), opt.init(np.ones(3)), quad.grad_fn())
filters.tema(np.ones(5), 0.9)
mp.hvp(mlp.init(0), mlp.init(1)); mlp.forward(mlp.init(0), ds.X)
quad.hvp(np.ones(3), np.ones(3)); nqm.loss(np.ones(3))
done = time.perf_counter()
compiled = {name for name, f in KERNELS.items() if getattr(f, "signatures", None)}
print(json.dumps({"import": imported - start, "total": done - start, "compiled": len(compiled),
                  "kernels": len(KERNELS), "missing": sorted(set(KERNELS) - compiled),
                  "skipped": skipped}))
"""


def _subprocess_env(cache_dir: str) -> dict:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def _startup_run(cache_dir: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _STARTUP_SCRIPT], capture_output=True,
                          text=True, env=_subprocess_env(cache_dir), timeout=900, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the start-up probe failed: {proc.stderr.strip()[-800:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def source_root() -> Path | None:
    """The repository root when refimpl runs from a source checkout with its tests."""
    root = Path(refimpl.__file__).resolve().parent.parent
    return root if (root / "tests" / "conftest.py").is_file() else None


def _suite_run(root: Path, cache_dir: str) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=root, capture_output=True, text=True,
                          env=_subprocess_env(cache_dir), timeout=3600, check=False)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return wall, proc.returncode, lines[-1].strip("= ") if lines else "no output"


def bench_startup(p: Plan) -> list[Record]:
    """Cold compilation of every kernel, the warm start, and the suite cold and warm."""
    with tempfile.TemporaryDirectory() as cache:
        cold, info = _startup_run(cache)
        warm, warm_info = _startup_run(cache)
    missing = f"; not compiled: {', '.join(info['missing'])}" if info["missing"] else ""
    if info["skipped"]:
        missing += f"; not importable here (optional libraries): {', '.join(info['skipped'])}"
    records = [
        record("start-up, empty numba cache: import and compile every kernel", cold, "s",
               note=f"compiled {info['compiled']} of {info['kernels']} kernels; import "
                    f"{info['import']:.1f} s{missing}"),
        record("start-up, warm numba cache: the same work", warm, "s",
               note=f"import {warm_info['import']:.1f} s"),
    ]
    suite_names = ("test suite, empty numba cache", "test suite, warm numba cache")
    targets = ("value <= 180", "value <= 90")
    root = source_root()
    if not p.suite or root is None or importlib.util.find_spec("pytest") is None:
        why = ("skipped in --quick" if not p.suite else
               "skipped: not a source checkout with tests/ and pytest")
        return records + [record(n, None, "s", target=t, note=why)
                          for n, t in zip(suite_names, targets)]
    with tempfile.TemporaryDirectory() as cache:
        for name, target in zip(suite_names, targets):
            wall, code, summary = _suite_run(root, cache)
            rec = record(name, wall, "s", target=target, note=f"pytest: {summary}")
            if code != 0:  # still a timing of the whole suite, but say so loudly
                rec = dataclasses.replace(rec, note=f"pytest FAILED (exit {code}): {summary}")
            records.append(rec)
    return records


# -------------------------------------------------------------------- section: memory


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak():
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


def _measure_peak(build, step) -> tuple[int, int, int]:
    """``build()`` returns (bytes of its arrays, inputs); then ``step(inputs)`` runs.
    Returns (peak resident bytes above the state before ``build``, peak above the state
    after it, the arrays' bytes)."""
    gc.collect()
    start = _status_bytes("VmRSS")
    arrays, inputs = build()
    built = _status_bytes("VmRSS")
    _reset_peak()
    step(inputs)
    peak = _status_bytes("VmHWM")
    return peak - start, peak - built, arrays


def memory_probe(d: int) -> list[dict]:
    """Run in a fresh process: peak memory of each step kernel at size d (arrays filled,
    so resident), of the public ``Adam.update`` and of one step of the training loop."""
    rng = np.random.default_rng(0)
    out = []
    for case in STEP_CASES:
        case.kernel(*case.make(8, rng))  # compile or load outside the measurement

        def build(case=case):
            args = case.make(d, rng)
            return sum(a.nbytes for a in args if isinstance(a, np.ndarray)), args

        peak, _, arrays = _measure_peak(build, lambda args, case=case: case.kernel(*args))
        out.append({"name": case.name, "peak": peak, "arrays": arrays})

    adam = Adam()
    adam.update(np.ones(8), AdamState(0, 3, np.ones(8), np.ones(8), np.zeros(8)), np.ones(8))

    def build_adam():
        w, g = _normal(rng, d, 1.0), _normal(rng, d, 0.1)
        state = AdamState(0, 3, _normal(rng, d, 0.01), _positive(rng, d, 1e-4), np.zeros(d))
        return 5 * 8 * d, (w, state, g)

    peak, _, arrays = _measure_peak(build_adam, lambda inputs: adam.update(*inputs))
    out.append({"name": "adam_update_api", "peak": peak, "arrays": arrays})

    sgd = SGD(lr=0.01, momentum=0.9)
    train(NoisyQuadratic(np.ones(8)), sgd, w0=np.ones(8), steps=1)

    def build_loop():  # the inputs (problem, w0) are not counted: only what train() adds
        return 3 * 8 * d, (NoisyQuadratic(np.full(d, 0.5)), np.ones(d))

    _, added, arrays = _measure_peak(build_loop, lambda inputs: train(inputs[0], sgd,
                                                                      w0=inputs[1], steps=1))
    out.append({"name": "train_loop_sgd", "peak": added, "arrays": arrays})
    return out


_MEMORY_SCRIPT = ("import json, sys; from refimpl.bench import memory_probe; "
                  "print(json.dumps(memory_probe(int(sys.argv[1]))))")


def bench_memory(p: Plan) -> list[Record]:
    """Peak RSS of a jitted step at d = memory_d against the bytes of its arrays."""
    n = _sci(p.memory_d)
    if not Path("/proc/self/clear_refs").exists():
        return [record(f"peak memory of one step, d={n}", None, "MB", target="ratio <= 1.1",
                       note="skipped: needs Linux /proc/self/clear_refs")]
    # A fixed mmap threshold: every large array gets its own mapping and is unmapped when
    # freed, so no freed-but-resident heap memory is reused between measurements.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(p.memory_d)],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the memory probe failed: {proc.stderr.strip()[-800:]}")
    labels = {case.name: case.label for case in STEP_CASES}
    records = []
    for row in json.loads(proc.stdout.strip().splitlines()[-1]):
        peak, arrays = row["peak"] / 1e6, row["arrays"] / 1e6
        if row["name"] in labels:
            records.append(record(
                f"{labels[row['name']]} kernel step, d={n}: peak memory vs its arrays", peak,
                "MB", baseline=arrays, target="ratio <= 1.1",
                note="in place: parameters, state and gradient are all it touches"))
        elif row["name"] == "adam_update_api":
            records.append(record(
                f"Adam.update (public, pure), d={n}: peak vs w + m + v + v_max + g", peak,
                "MB", baseline=arrays, note="returns new w, m, v, v_max by design (inputs "
                                            "never modified): 9 arrays for 5 is 1.8"))
        else:
            records.append(record(
                f"train(), one SGD momentum step, d={n}: memory added vs w + buf + g", peak, "MB",
                baseline=arrays,
                note="beyond its inputs, train() copies the problem's h, w* and noise scale "
                     "and draws the noise (4 d), copies w0 (1 d), and the loop allocates the "
                     "state rows the base optimizer uses (1 d for SGD) and g (1 d); SAM's "
                     "buffers stay untouched without SAM, so they are not resident, and the "
                     "copy of w is made only with on_divergence='stop'"))
    return records


# --------------------------------------------------------------- section: diagnostics


def _l2_norm_running_sum(x):
    """Global L2 norm with one running sum in index order (refimpl's order before format
    version 2): deterministic too, but each addition waits for the previous one."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    return math.sqrt(total)


def _variant(func, **options):
    """``func`` compiled with refimpl's numba options except ``options``. Diagnostics
    only: never registered, never used by refimpl itself."""
    import numba  # only here: refimpl's kernels all come from refimpl._jit.kernel

    settings = {"cache": False, "fastmath": False, "nogil": True, "error_model": "numpy"}
    settings.update(options)
    return numba.njit(**settings)(getattr(func, "py_func", func))


def bench_diagnostics(p: Plan) -> list[Record]:
    """What the missed targets cost, and what a change that keeps the bits would give."""
    rng = np.random.default_rng(3)
    records = [_diagnose_error_model(p, case, rng) for case in STEP_CASES
               if case.name in _DIVIDING]
    return records + [_diagnose_norm(p, rng), _diagnose_loop(p), _diagnose_mlp(p),
                      _diagnose_tanh()]


def _diagnose_error_model(p: Plan, case: StepCase, rng) -> Record:
    """The shipped kernel (error_model='numpy': IEEE division) against the same kernel
    compiled with error_model='python', which tests every divisor for zero and so keeps
    LLVM from vectorising the loop; and whether the two give the same bits."""
    d = p.target_d
    variant = _variant(case.kernel, error_model="python")
    bitwise = True
    for size in (p.check_d, d):
        args = case.make(size, rng)
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        variant(*copies)
        expected = run_kernel(case, args)[0]
        bitwise &= all(np.array_equal(copies[k], x) for k, x in zip(case.outputs, expected))
    shipped = time_call(lambda: case.kernel(*args), repeat=p.repeat, min_time=p.min_time)
    checked = time_call(lambda: variant(*args), repeat=p.repeat, min_time=p.min_time)
    return record(
        f"{case.label}, d={_sci(d)}: shipped (error_model='numpy') vs error_model='python'",
        gbps(case.bytes_per_element, d, shipped.best), "GB/s",
        baseline=gbps(case.bytes_per_element, d, checked.best),
        spread=max(checked.spread, shipped.spread),
        note=f"same bits under both error models at d={_sci(p.check_d)} and d={_sci(d)}: "
             f"{'yes' if bitwise else 'NO'}")


def _diagnose_norm(p: Plan, rng) -> Record:
    d = p.target_d
    x = rng.standard_normal(d)
    running = _variant(_l2_norm_running_sum)
    lanes_t = time_call(lambda: l2_norm(x), repeat=p.repeat, min_time=p.min_time)
    seq_t = time_call(lambda: running(x), repeat=p.repeat, min_time=p.min_time)
    return record(
        f"L2 norm, d={_sci(d)}: refimpl's 8 fixed-order lanes vs one running sum",
        gbps(8, d, lanes_t.best), "GB/s", baseline=gbps(8, d, seq_t.best),
        spread=max(lanes_t.spread, seq_t.spread),
        note=f"relative difference of the two sums here: "
             f"{abs(running(x) - l2_norm(x)) / l2_norm(x):.1e} (another fixed order)")


def _diagnose_loop(p: Plan) -> Record:
    """The jitted loop on the noisy quadratic (d multiply-adds per gradient, minus its
    noise draw) against the quadratic (d^2): what the loop itself costs per step."""
    nqm = NoisyQuadratic(np.linspace(0.1, 1.0, p.quad_d), batch_size=4)
    quad = quadratic_problem(p.quad_d)
    opt, w0, steps = SGD(lr=0.01, momentum=0.9), np.zeros(p.quad_d), p.quad_steps
    noisy = time_call(lambda: train(nqm, opt, w0=w0, steps=steps), repeat=p.repeat, number=1,
                      warmup=lambda: train(nqm, opt, w0=w0, steps=10))
    draw = time_call(lambda: nqm.draw_noise(steps, 0), repeat=p.repeat, number=1)
    plain = time_call(lambda: train(quad, opt, w0=w0, steps=steps), repeat=p.repeat, number=1,
                      warmup=lambda: train(quad, opt, w0=w0, steps=10))
    return record(
        f"jitted loop step, noisy quadratic d={p.quad_d} (noise draw subtracted) vs quadratic",
        (noisy.best - draw.best) / steps * 1e9, "ns", baseline=plain.best / steps * 1e9,
        spread=max(noisy.spread, draw.spread, plain.spread),
        note=f"the noisy quadratic's gradient is {p.quad_d} multiply-adds, the quadratic's "
             f"{p.quad_d ** 2}: what remains is the loop's own cost per step (kernel calls "
             "with many array arguments, views, finiteness checks, the gradient norm)")


def _diagnose_mlp(p: Plan) -> Record:
    """One loss-and-gradient call of the tanh network against the same network with relu
    (no transcendental function): the difference is refimpl's tanh."""
    problem, w0 = mlp_problem(p.mlp_sizes, p.mlp_n, p.mlp_batch)
    X, Y, g = np.array(problem.X), np.array(problem.Y), np.empty(w0.shape[0])
    idx = problem.draw_noise(1, 0)[0]
    tanh_net = MLP(tuple(p.mlp_sizes), activation="tanh").net
    relu_net = MLP(tuple(p.mlp_sizes), activation="relu").net
    tanh_t = time_call(lambda: mlp_loss_grad(tanh_net, w0, X, Y, idx, g), repeat=p.repeat,
                       min_time=p.min_time)
    relu_t = time_call(lambda: mlp_loss_grad(relu_net, w0, X, Y, idx, g), repeat=p.repeat,
                       min_time=p.min_time)
    hidden = sum(p.mlp_sizes[1:-1]) * p.mlp_batch
    pairs = list(zip(p.mlp_sizes[:-1], p.mlp_sizes[1:]))
    # multiply-adds per example: the forward pass and the weight gradient of every layer,
    # the back-propagated delta of every layer but the first
    macs = p.mlp_batch * (2 * sum(i * o for i, o in pairs) + sum(i * o for i, o in pairs[1:]))
    extra = tanh_t.best - relu_t.best
    return record(
        f"MLP {'-'.join(map(str, p.mlp_sizes))} loss + gradient, batch {p.mlp_batch}: tanh "
        "vs relu network", tanh_t.best * 1e6, "us", baseline=relu_t.best * 1e6,
        spread=max(tanh_t.spread, relu_t.spread),
        note=f"the difference, {extra * 1e6:.0f} us, is {hidden} calls of refimpl's tanh "
             f"({extra / hidden * 1e9:.1f} ns each, vectorised); the relu network does {macs} "
             f"multiply-adds in {relu_t.best * 1e6:.0f} us, "
             f"{macs / relu_t.best / 1e9:.1f} G per second")


def _diagnose_tanh() -> Record:
    from refimpl._tanh import tanh

    z = np.random.default_rng(4).standard_normal(100_000) * 3.0
    libm = np.array([math.tanh(v) for v in z])
    ours = np.array([tanh(v) for v in z])
    differ = np.count_nonzero(ours != libm)
    numpy_differ = np.count_nonzero(np.tanh(z) != libm)
    return record(
        "refimpl's tanh vs this platform's libm tanh (math.tanh): inputs whose results differ",
        100.0 * differ / z.size, "%",
        note=f"of {z.size} draws 3 N(0, 1) (NumPy's SIMD np.tanh differs from libm on "
             f"{100.0 * numpy_differ / z.size:.0f}%): every library rounds its own way, "
             "which is why refimpl computes its own")


# ------------------------------------------------------------------- table and JSON


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def format_table(records: list[Record], targets_only: bool = False) -> str:
    """A Markdown table (readable as plain text) followed by the numbered notes as a list;
    with ``targets_only`` just the rows that carry a target."""
    lines = ["| benchmark | value | unit | baseline | ratio | target | met | spread |",
             "|---|---:|---|---:|---:|---|---|---:|"]
    notes = []
    for r in records:
        if targets_only and r.target is None:
            continue
        name = r.name
        if r.note:
            notes.append(r.note)
            name += f" [{len(notes)}]"
        met = {None: "-", True: "yes", False: "**NO**"}[r.met]
        spread = "-" if r.spread is None else f"{100 * r.spread:.0f}%"
        lines.append(f"| {name} | {_fmt(r.value)} | {r.unit} | {_fmt(r.baseline)} | "
                     f"{_fmt(r.ratio)} | {r.target or '-'} | {met} | {spread} |")
    lines.append("")
    lines += [f"- [{k}] {note}" for k, note in enumerate(notes, 1)]
    return "\n".join(lines)


def machine_info(p: Plan) -> dict:
    import numba

    return {"refimpl": refimpl.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "machine": platform.machine(), "processor": _cpu_name(),
            "cpus": os.cpu_count(), "system": platform.platform(), "quick": p.quick,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(path, records: list[Record], meta: dict):
    """Write ``{"schema": "refimpl-bench/1", "meta": ..., "records": [...]}``."""
    payload = {"schema": "refimpl-bench/1", "meta": meta,
               "records": [dataclasses.asdict(r) for r in records]}
    from refimpl.render import write_atomic

    write_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def read_json(path) -> tuple[list[Record], dict]:
    """The records and meta of a file written by :func:`write_json` (ValueError naming the
    file if it is not one)."""
    try:
        payload = json.loads(Path(path).read_text())
        if payload.get("schema") != "refimpl-bench/1":
            raise ValueError("schema is not 'refimpl-bench/1'")
        return [Record(**row) for row in payload["records"]], payload["meta"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a refimpl bench JSON file ({exc})") from None


def header(meta: dict) -> str:
    return (f"refimpl bench{' --quick' if meta.get('quick') else ''}: {meta['processor']}, "
            f"{meta['cpus']} CPUs, numpy {meta['numpy']}, numba {meta['numba']}, "
            f"{meta.get('date', '')}")


# ------------------------------------------------------------------------------ command


def _json_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
    if not path.parent.resolve().is_dir():
        raise argparse.ArgumentTypeError(f"the directory of {text!r} does not exist")
    try:  # before the benchmark runs: can a file be created beside the target?
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=".refimpl-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot write into the directory of {text!r}: {exc.strerror or exc}") from None
    return path


def _sections(text: str) -> tuple:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SECTIONS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"sections must be a comma-separated list of {', '.join(SECTIONS)}; got {text!r}")
    return chosen


def _python_path(text: str) -> str:
    if not (os.path.isfile(text) and os.access(text, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{text!r} is not an executable file")
    return text


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


def add_arguments(parser: argparse.ArgumentParser):
    """The options of ``refimpl bench``."""
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples, shorter Python baselines, no test-suite timings "
                             "(under 2 minutes)")
    parser.add_argument("--json", metavar="FILE", type=_json_path,
                        help="also write the records to FILE as JSON")
    parser.add_argument("--table", metavar="FILE", default=None,
                        help="print the table of a run stored with --json, measuring nothing "
                             "(benchmarks/results.json is the run the README quotes)")
    parser.add_argument("--targets-only", action="store_true",
                        help="print only the rows that carry a target (the JSON file still "
                             "holds every record)")
    parser.add_argument("--sections", metavar="LIST", type=_sections, default=SECTIONS,
                        help=f"comma-separated subset of: {', '.join(SECTIONS)} (default all)")
    parser.add_argument("--torch-python", metavar="PYTHON", type=_python_path, default=None,
                        help="a Python interpreter with torch, for the torch baseline "
                             "(default: this one, if it has torch)")
    parser.add_argument("--torch-threads", metavar="N", type=_positive_int, default=1,
                        help="torch's intra-op threads (default 1: refimpl runs on one core)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed arguments; print the table."""
    if args.table is not None:  # reprint a stored run, measure nothing
        try:
            records, meta = read_json(args.table)
        except ValueError as exc:
            print(f"refimpl bench: {exc}", file=sys.stderr)
            return 2
        print(header(meta) + "\n")
        print(format_table(records, targets_only=args.targets_only))
        met = [r.met for r in records if r.met is not None]
        print(f"\n{sum(met)} of {len(met)} targets met; {meta.get('seconds', 0):.0f} s")
        return 0
    if JIT_DISABLED:
        print("refimpl bench measures the compiled kernels: unset NUMBA_DISABLE_JIT",
              file=sys.stderr)
        return 2
    torch_python = args.torch_python
    if torch_python is None and importlib.util.find_spec("torch") is not None:
        torch_python = sys.executable
    p = plan(args.quick, torch_python, args.torch_threads)
    start = time.perf_counter()
    records: list[Record] = []
    chosen = set(args.sections) | ({"bandwidth"} if "steps" in args.sections else set())
    for section in (s for s in SECTIONS if s in chosen):  # steps need the triad's limit
        print(f"refimpl bench: {section} ...", file=sys.stderr, flush=True)
        if section == "bandwidth":
            rows, limit = bench_bandwidth(p)
        elif section == "steps":
            rows = bench_steps(p, limit)
        elif section == "runs":
            rows = bench_runs(p)
        elif section == "startup":
            rows = bench_startup(p)
        elif section == "memory":
            rows = bench_memory(p)
        else:
            rows = bench_diagnostics(p)
        records += rows
    elapsed = time.perf_counter() - start
    meta = machine_info(p)
    meta["seconds"] = elapsed
    print(header(meta) + "\n")
    print(format_table(records, targets_only=args.targets_only))
    met = [r.met for r in records if r.met is not None]
    print(f"\n{sum(met)} of {len(met)} targets met; {elapsed:.0f} s")
    if args.json is not None:
        write_json(args.json, records, meta)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="refimpl bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
