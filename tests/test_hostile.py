"""Hostile input on every public entry point.

The law, for each entry point and each parameter: given any value a user or a tampered
file could pass (NaN, infinities, 1e308, integers beyond int64 and beyond float, bools,
strings, lists, 0-d / 2-D / empty / float32 / int64 / non-contiguous / masked arrays,
hand-edited optimizer states), the call either

* raises one of the documented errors - ``TypeError``, ``ValueError`` (which includes
  ``GoldenFormatError``) or ``FloatingPointError`` - with a message that names the
  parameter that was given the hostile value (or, for a ``FloatingPointError``, says
  what overflowed), or
* returns a result in which every float is finite (no silent NaN or infinity),

and never modifies an array it was given. Anything else - an ``OverflowError``, a numba
``TypingError``, an ``IndexError`` from a kernel, a ``MemoryError``, a hang, a segfault -
fails the test.

The hostile values are a fixed list (so a failure names the value) mixed with hypothesis'
own floats. Integers that would be valid but huge (2**31 steps) are in the list on
purpose: they must be refused before any allocation or loop, with the memory or time
they would need, not attempted.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refimpl as r
from refimpl import filters, golden, landscape, scaling, theory
from refimpl.problems import data

ALLOWED = (TypeError, ValueError, FloatingPointError)


def _masked():
    return np.ma.masked_array([1.0, np.nan], mask=[False, True])


# Each entry is a factory, so a value that one call could mutate is fresh for the next.
HOSTILE_FACTORIES = [
    lambda: float("nan"), lambda: float("inf"), lambda: -float("inf"), lambda: 1e308,
    lambda: -1e308, lambda: 5e-324, lambda: -0.0, lambda: 0, lambda: -1, lambda: 1.5,
    lambda: 2**31, lambda: 2**63 - 1, lambda: 2**63, lambda: 2**70, lambda: -2**70,
    lambda: 10**400, lambda: -10**400, lambda: True, lambda: None, lambda: "1",
    lambda: b"1", lambda: 1 + 1j, lambda: [1.0, 2.0], lambda: (1.0,), lambda: {},
    lambda: np.float32(0.1), lambda: np.int64(-3), lambda: np.array(1.0),
    lambda: np.array([]), lambda: np.ones((2, 2)), lambda: np.ones(3, dtype=np.float32),
    lambda: np.ones(3, dtype=np.int64), lambda: np.ones(6)[::2], lambda: _masked(),
    lambda: np.array([1.0, np.nan]), lambda: np.array([1e308, 1e308]),
    lambda: np.array([1.0, 2.0], dtype=object), lambda: np.ones(10**5),
]
HOSTILE = st.one_of(
    st.integers(0, len(HOSTILE_FACTORIES) - 1).map(lambda i: HOSTILE_FACTORIES[i]()),
    st.floats(allow_nan=True, allow_infinity=True),
)


# ---------------------------------------------------------------------------- checking

def _arrays(obj, seen=None):
    """Every ndarray reachable from obj (containers, namedtuples, dataclasses)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _arrays(x, seen)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _arrays(x, seen)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _arrays(getattr(obj, f.name), seen)


def _assert_finite(result, where):
    """No float anywhere in a result is NaN or infinite."""
    todo, seen = [result], set()
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, (float, np.floating)):
            assert math.isfinite(x), f"{where} returned a non-finite float {x!r}"
        elif isinstance(x, np.ndarray):
            if x.dtype.kind in "fc":
                assert np.all(np.isfinite(x)), f"{where} returned a non-finite array"
        elif isinstance(x, (list, tuple)):
            todo.extend(x)
        elif isinstance(x, dict):
            todo.extend(x.values())
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            todo.extend(getattr(x, f.name) for f in dataclasses.fields(x))


def _call(where, param, fn, *args, **kwargs):
    """Call fn; allow only documented errors naming ``param``; check no mutation and no
    silent non-finite value."""
    before = [(a, a.copy()) for a in _arrays([args, kwargs]) if isinstance(a, np.ndarray)
              and not isinstance(a, np.ma.MaskedArray) and a.dtype != object]
    masked = [(a, a.data.copy(), np.ma.getmaskarray(a).copy())
              for a in _arrays([args, kwargs]) if isinstance(a, np.ma.MaskedArray)]
    try:
        result = fn(*args, **kwargs)
    except FloatingPointError as err:
        result = None
        assert str(err), f"{where}: FloatingPointError without a message"
    except (TypeError, ValueError) as err:
        result = None
        message = str(err)
        assert param is None or param in message, (
            f"{where}: {type(err).__name__} does not name {param!r}: {message}")
    for a, copy_ in before:
        assert np.array_equal(a, copy_, equal_nan=a.dtype.kind in "fc"), f"{where} modified its input"
    for a, data_, mask in masked:
        assert np.array_equal(a.data, data_, equal_nan=True) and np.array_equal(
            np.ma.getmaskarray(a), mask), f"{where} modified its input"
    if result is not None:
        _assert_finite(result, where)
    return result


# ------------------------------------------------------------------ fixed valid pieces

def _quad():
    return r.Quadratic(H=np.diag([2.0, 1.0]))


def _nqm():
    return r.NoisyQuadratic(h=np.array([2.0, 1.0]), batch_size=2)


def _mlp_problem(loss="mse"):
    if loss == "mse":
        mlp = r.MLP((2, 3, 1))
        X, Y = np.linspace(-1, 1, 8).reshape(4, 2), np.linspace(0, 1, 4).reshape(4, 1)
    else:
        mlp = r.MLP((2, 3, 2), loss="xent")
        X, Y = np.linspace(-1, 1, 8).reshape(4, 2), data.one_hot(np.array([0, 1, 1, 0]), 2)
    return r.MLPProblem(mlp, X, Y, batch_size=2)


# Each entry: (name, the parameter a hostile value goes into, a call taking that value).
ENTRIES = [
    # constructors of problems and data
    ("Quadratic(H)", "H", lambda v: r.Quadratic(H=v)),
    ("Quadratic(w_star)", "w_star", lambda v: r.Quadratic(H=np.eye(2), w_star=v)),
    ("NoisyQuadratic(h)", "h", lambda v: r.NoisyQuadratic(h=v)),
    ("NoisyQuadratic(c)", "c", lambda v: r.NoisyQuadratic(h=np.ones(2), c=v)),
    ("NoisyQuadratic(batch_size)", "batch_size", lambda v: r.NoisyQuadratic(h=np.ones(2), batch_size=v)),
    ("MLP(sizes)", "sizes", lambda v: r.MLP(sizes=v)),
    ("MLP(sizes[1])", "sizes", lambda v: r.MLP(sizes=(2, v, 1))),
    ("MLP(activation)", "activation", lambda v: r.MLP((2, 3, 1), activation=v)),
    ("MLPProblem(X)", "X", lambda v: r.MLPProblem(r.MLP((2, 3, 1)), v, np.zeros((4, 1)), 2)),
    ("MLPProblem(Y)", "Y", lambda v: r.MLPProblem(r.MLP((2, 3, 1)), np.zeros((4, 2)), v, 2)),
    ("MLPProblem(batch_size)", "batch_size",
     lambda v: r.MLPProblem(r.MLP((2, 3, 1)), np.zeros((4, 2)), np.zeros((4, 1)), v)),
    ("Dataset(X)", "X", lambda v: data.Dataset(v, np.zeros((2, 1)))),
    ("Dataset(labels)", "labels", lambda v: data.Dataset(np.zeros((2, 2)), np.eye(2), labels=v)),
    ("one_hot(labels)", "labels", lambda v: data.one_hot(v, 2)),
    ("one_hot(n_classes)", "n_classes", lambda v: data.one_hot(np.array([0, 1]), v)),
    ("two_spirals(n)", "n", lambda v: data.two_spirals(v)),
    ("two_spirals(noise)", "noise", lambda v: data.two_spirals(20, noise=v)),
    ("two_spirals(turns)", "turns", lambda v: data.two_spirals(20, turns=v)),
    ("two_spirals(seed)", "seed", lambda v: data.two_spirals(20, seed=v)),
    ("circles(factor)", "factor", lambda v: data.circles(20, factor=v)),
    ("teacher_student(n)", "n", lambda v: data.teacher_student(v)),
    # problem methods
    ("Quadratic.loss(w)", "w", lambda v: _quad().loss(v)),
    ("Quadratic.grad(w)", "w", lambda v: _quad().grad(v)),
    ("Quadratic.hvp(v)", "v", lambda v: _quad().hvp(np.ones(2), v)),
    ("NoisyQuadratic.loss(w)", "w", lambda v: _nqm().loss(v)),
    ("NoisyQuadratic.grad(w)", "w", lambda v: _nqm().grad(v)),
    ("NoisyQuadratic.draw_noise(steps)", "steps", lambda v: _nqm().draw_noise(v, 0)),
    ("NoisyQuadratic.draw_noise(seed)", "seed", lambda v: _nqm().draw_noise(3, v)),
    ("MLPProblem.loss(w)", "w", lambda v: _mlp_problem().loss(v)),
    ("MLPProblem.grad(w)", "w", lambda v: _mlp_problem().grad(v)),
    ("MLPProblem.hvp(v)", "v", lambda v: _mlp_problem().hvp(np.zeros(13), v)),
    ("MLPProblem(xent).loss(w)", "w", lambda v: _mlp_problem("xent").loss(v)),
    ("MLPProblem.draw_noise(steps)", "steps", lambda v: _mlp_problem().draw_noise(v, 0)),
    ("MLP.forward(w)", "w", lambda v: r.MLP((2, 3, 1)).forward(v, np.zeros((2, 2)))),
    ("MLP.forward(X)", "X", lambda v: r.MLP((2, 3, 1)).forward(np.zeros(13), v)),
    ("MLP.init(seed)", "seed", lambda v: r.MLP((2, 3, 1)).init(v)),
    # optimizers' constructors
    ("SGD(lr)", "lr", lambda v: r.SGD(lr=v)),
    ("SGD(momentum)", "momentum", lambda v: r.SGD(momentum=v)),
    ("Adam(beta2)", "beta2", lambda v: r.Adam(beta2=v)),
    ("FAME(beta3)", "beta3", lambda v: r.FAME(beta3=v)),
    ("SAM(rho)", "rho", lambda v: r.SAM(r.SGD(), rho=v)),
    ("StableSAM(eps)", "eps", lambda v: r.StableSAM(r.SGD(), eps=v)),
    ("EMA(decay)", "decay", lambda v: r.EMA(r.SGD(), decay=v)),
    ("EMA(update_every)", "update_every", lambda v: r.EMA(r.SGD(), update_every=v)),
    ("EMA(update_after_step)", "update_after_step", lambda v: r.EMA(r.SGD(), update_after_step=v)),
    ("SwitchEMA(switch_every)", "switch_every", lambda v: r.SwitchEMA(r.SGD(), switch_every=v)),
    ("SWA(swa_every)", "swa_every", lambda v: r.SWA(r.SGD(), swa_every=v)),
    ("Lookahead(k)", "k", lambda v: r.Lookahead(r.SGD(), k=v)),
    ("Lookahead(alpha)", "alpha", lambda v: r.Lookahead(r.SGD(), alpha=v)),
    ("Adam(amsgrad_max)", "amsgrad_max", lambda v: r.Adam(amsgrad=True, amsgrad_max=v)),
    ("as_schedule(lr)", "lr", lambda v: r.as_schedule("lr", v)),
    # optimizers' steps
    ("SGD.init(w)", "w", lambda v: r.SGD(momentum=0.9).init(v)),
    ("SGD.update(g)", "g", lambda v: r.SGD(momentum=0.9).update(np.ones(2), r.SGD(momentum=0.9).init(np.ones(2)), v)),
    ("EMA.step(w)", "w", lambda v: _step(r.EMA(r.SGD()), v)),
    ("SwitchEMA.step(w)", "w", lambda v: _step(r.SwitchEMA(r.SGD()), v)),
    ("SWA.step(w)", "w", lambda v: _step(r.SWA(r.SGD(), swa_unit="step"), v)),
    ("Lookahead.step(w)", "w", lambda v: _step(r.Lookahead(r.AdamW(amsgrad=True), k=1), v)),
    ("StableSAM.step(w)", "w", lambda v: _step(r.StableSAM(r.Adam()), v)),
    ("step(epoch_end)", "epoch_end", lambda v: r.SGD().step(np.ones(2), r.SGD().init(np.ones(2)),
                                                            _quad().grad_fn(), epoch_end=v)),
    # training
    ("train(w0)", "w0", lambda v: r.train(_quad(), r.SGD(lr=0.1), w0=v, steps=3)),
    ("train(steps)", "steps", lambda v: r.train(_quad(), r.SGD(lr=0.1), w0=np.ones(2), steps=v)),
    ("train(epochs)", "epochs", lambda v: r.train(_nqm(), r.SGD(lr=0.1), w0=np.ones(2), epochs=v,
                                                  steps_per_epoch=2)),
    ("train(steps_per_epoch)", "steps_per_epoch",
     lambda v: r.train(_nqm(), r.SGD(lr=0.1), w0=np.ones(2), epochs=2, steps_per_epoch=v)),
    ("train(seed)", "seed", lambda v: r.train(_nqm(), r.SGD(lr=0.1), w0=np.ones(2), steps=3, seed=v)),
    ("train(MLP steps)", "steps", lambda v: r.train(_mlp_problem(), r.SGD(lr=0.1), w0=np.zeros(13), steps=v)),
    ("train(MLP epochs)", "epochs", lambda v: r.train(_mlp_problem(), r.SGD(lr=0.1), w0=np.zeros(13), epochs=v)),
    # filters
    ("filters.ema(x)", "x", lambda v: filters.ema(v, 0.9)),
    ("filters.ema(decay)", "decay", lambda v: filters.ema(np.ones(3), v)),
    ("filters.tema(x)", "x", lambda v: filters.tema(v, 0.0)),
    ("filters.tema(b1)", "b1", lambda v: filters.tema(np.ones(3), v)),
    ("filters.lag(decay)", "decay", lambda v: filters.lag(v)),
    # landscape
    ("top_eigenvalue(w)", "w", lambda v: landscape.top_eigenvalue(_quad(), v)),
    ("top_eigenvalue(power, w)", "w", lambda v: landscape.top_eigenvalue(_quad(), v, method="power")),
    ("hessian_trace(samples)", "samples", lambda v: landscape.hessian_trace(_quad(), np.ones(2), samples=v)),
    ("hessian_trace(seed)", "seed", lambda v: landscape.hessian_trace(_quad(), np.ones(2), seed=v)),
    ("flatness(radius)", "radius", lambda v: landscape.flatness(_quad(), np.ones(2), radius=v, samples=3)),
    ("random_direction(w)", "w", lambda v: landscape.random_direction(v, seed=0)),
    ("slice_1d(alphas)", "alphas", lambda v: landscape.slice_1d(_quad(), np.ones(2), np.ones(2), v)),
    ("slice_1d(direction)", "direction", lambda v: landscape.slice_1d(_quad(), np.ones(2), v, np.ones(2))),
    # theory
    ("theory.moments(steps)", "steps", lambda v: theory.moments(_nqm(), r.SGD(lr=0.1), w0=np.ones(2), steps=v)),
    ("theory.moments(w0)", "w0", lambda v: theory.moments(_nqm(), r.SGD(lr=0.1), w0=v, steps=3)),
    ("theory.spectral_radius(switch_every)", "switch_every",
     lambda v: theory.spectral_radius(_nqm(), r.SwitchEMA(r.SGD(lr=0.1), switch_every=v, switch_unit="step"))),
    ("theory.stationary(decay)", "decay", lambda v: theory.stationary(_nqm(), r.EMA(r.SGD(lr=0.1), decay=v))),
    # scaling
    ("scale_decay(decay)", "decay", lambda v: scaling.scale_decay(v, 2.0)),
    ("scale_decay(kappa)", "kappa", lambda v: scaling.scale_decay(0.99, v)),
    ("scale_optimizer(kappa)", "kappa", lambda v: scaling.scale_optimizer(r.EMA(r.SGD(lr=0.1)), v)),
]


def _step(opt, w):
    """One step of opt from w on the quadratic (init from a valid vector of w's size)."""
    size = w.shape[0] if isinstance(w, np.ndarray) and w.ndim == 1 and w.size else 2
    state = opt.init(np.ones(size))
    return opt.step(w, state, lambda x: (0.5 * float(x @ x), x.copy()))  # f = |x|^2 / 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name, param, call", ENTRIES, ids=[e[0] for e in ENTRIES])
def test_every_entry_point_refuses_clearly_or_returns_finite_values(name, param, call):
    """Every fixed hostile value, each once (a failure lists every value that broke)."""
    failures = []
    for make in HOSTILE_FACTORIES:
        value = make()
        try:
            _call(name, param, call, value)
        except AssertionError as err:
            failures.append(f"{name} with {value!r:.60}: {err}")
        except Exception as err:  # noqa: BLE001 - an undocumented exception is the failure
            failures.append(f"{name} with {value!r:.60}: raised {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name, param, call", ENTRIES, ids=[e[0] for e in ENTRIES])
@settings(max_examples=10)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_every_entry_point_takes_any_float(name, param, call, value):
    _call(name, param, call, value)


# ----------------------------------------------------------------- hand-edited states

OPTIMIZERS = {
    "sgd": lambda: r.SGD(lr=0.1, momentum=0.9),
    "adam": lambda: r.Adam(),
    "fame": lambda: r.FAME(),
    "fame-full": lambda: r.FAME(variant="full"),
    "sam": lambda: r.SAM(r.SGD(lr=0.1, momentum=0.9)),
    "stable-sam": lambda: r.StableSAM(r.Adam()),
    "ema": lambda: r.EMA(r.SGD(lr=np.array([0.1, 0.1, 0.1]))),
    "sema": lambda: r.SwitchEMA(r.SGD(lr=0.1, momentum=0.9)),
    "swa": lambda: r.SWA(r.Adam(amsgrad=True), swa_unit="step"),
    "lookahead": lambda: r.Lookahead(r.SGD(lr=0.1, momentum=0.9), k=2),
}

STATE_VALUES = st.one_of(
    HOSTILE.map(lambda v: ("as is", v)),
    st.sampled_from(["short", "long", "huge", "f32", "i64", "2d", "list", "nan", "masked",
                     "negative", "big"]).map(lambda e: ("shaped", e)),
)


def _edit(drawn, old):
    """A hostile replacement for one state field: a hostile value as is, or one shaped
    after the field's valid value."""
    how, value = drawn
    if how == "as is":
        return value
    n = old.shape[0] if isinstance(old, np.ndarray) and old.ndim else 3
    base = old if isinstance(old, np.ndarray) else np.zeros(n)
    return {
        "short": np.zeros(max(n - 1, 0)), "long": np.zeros(n + 1), "huge": np.zeros(10**5),
        "f32": np.asarray(base, dtype=np.float32), "i64": np.ones(n, dtype=np.int64),
        "2d": np.zeros((n, 1)), "list": [0.0] * n, "nan": np.full(n, np.nan),
        "masked": np.ma.masked_array(np.zeros(n), mask=np.zeros(n, dtype=bool)),
        "negative": -1, "big": 2**70,
    }[value]


def _all_states(state, path="state"):
    """(path, state, field) for every field of a state and of its nested inner states."""
    for field in state._fields:
        value = getattr(state, field)
        if hasattr(value, "_fields"):
            yield from _all_states(value, f"{path}.{field}")
        yield path, state, field


def _replace(state, target, field, value):
    if state is target:
        return state._replace(**{field: value})
    for f in state._fields:
        inner = getattr(state, f)
        if hasattr(inner, "_fields"):
            new = _replace(inner, target, field, value)
            if new is not inner:
                return state._replace(**{f: new})
    return state


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@given(data=st.data())
def test_a_hand_edited_state_is_refused_before_any_kernel_runs(kind, data):
    opt = OPTIMIZERS[kind]()
    w = np.array([1.0, -0.5, 0.25])
    problem = r.Quadratic(H=np.diag([1.0, 2.0, 0.5]))
    state = opt.init(w)
    # step once so counters and buffers are non-trivial
    w, state, _ = opt.step(w, state, problem.grad_fn())
    fields = list(_all_states(state))
    path, target, field = data.draw(st.sampled_from(fields), label="field")
    value = _edit(data.draw(STATE_VALUES, label="value"), getattr(target, field))
    edited = _replace(state, target, field, value)
    _call(f"{kind}.step with {path}.{field} = {value!r:.60}", field,
          opt.step, w, edited, problem.grad_fn())


# ------------------------------------------------------------- tampered golden files

SMALL_GOLDEN = min(golden.golden_files(golden.VECTORS), key=lambda p: p.stat().st_size)


@given(data=st.data())
def test_a_tampered_golden_file_loads_or_raises_only_golden_format_error(tmp_path_factory, data):
    text = SMALL_GOLDEN.read_text()
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(text) - 1),
                                         st.sampled_from(["9", "-", "e", "1e999", "0x1p+9999",
                                                          "[", "]", "{", "}", ",", '"', "",
                                                          "true", "null", "1" * 400])),
                               min_size=1, max_size=3), label="edits")
    for pos, s in sorted(edits, reverse=True):
        text = text[:pos] + s + text[pos + 1:]
    path = tmp_path_factory.mktemp("golden") / "tampered.json"
    path.write_text(text)
    try:
        golden.load(path)
    except golden.GoldenFormatError:
        pass


def test_the_golden_file_for_the_tamper_test_is_small():
    """Keep the tamper test fast: it loads the smallest shipped file (< 200 kB)."""
    assert SMALL_GOLDEN.stat().st_size < 200_000
    golden.load(SMALL_GOLDEN)  # the untampered file loads


# ------------------------------------------------------- the reproductions, named

def _sema_and_state():
    opt = r.SwitchEMA(r.SGD(lr=0.1, momentum=0.9), switch_every=2, switch_unit="step")
    w = np.array([1.0, -0.5, 0.25])
    return opt, w, opt.init(w)


@pytest.mark.parametrize("edit,error,needle", [
    (lambda s: s._replace(ema=np.zeros(10 ** 7)), ValueError, "state.ema must have length 3"),
    (lambda s: s._replace(ema=np.zeros(10 ** 5)), ValueError, "state.ema must have length 3"),
    (lambda s: s._replace(ema=np.zeros(2)), ValueError, "state.ema must have length 3"),
    (lambda s: s._replace(ema=np.zeros((3, 1))), ValueError, "state.ema must be 1-D"),
    (lambda s: s._replace(ema=[0.0, 0.0, 0.0]), TypeError, "state.ema must be a numpy float64 array"),
    (lambda s: s._replace(ema=np.zeros(3, dtype=np.float32)), TypeError, "state.ema must have dtype float64"),
    (lambda s: s._replace(ema=np.ma.masked_array(np.zeros(3))), TypeError, "state.ema must be a plain numpy array"),
    (lambda s: s._replace(ema=np.array([0.0, np.nan, 0.0])), ValueError, "state.ema must be finite"),
    (lambda s: s._replace(step=-1), ValueError, "state.step must be in [0, "),
    (lambda s: s._replace(step=2 ** 70), ValueError, "state.step must be in [0, "),
    (lambda s: s._replace(decay_product=1.5), ValueError, "state.decay_product must be in [0.0, 1.0]"),
    (lambda s: s._replace(inner=s.inner._replace(momentum_buffer=np.ones(3, dtype=np.int64))),
     TypeError, "state.inner.momentum_buffer must have dtype float64"),
    (lambda s: s._replace(inner=s.inner._replace(step=-1)), ValueError, "state.inner.step must be in"),
    (lambda s: s._replace(inner=None), TypeError, "state.inner must be a SGDState"),
    (lambda s: tuple(s), TypeError, "state must be a EMAState"),
])
def test_a_hand_built_state_is_refused_with_the_field_named(edit, error, needle):
    """The reproductions: an ema of 10**7 entries segfaulted, of 10**5 gave NaN, a short
    one gave a w of the wrong length, an int64 momentum truncated, step = -1 used lr[-1]."""
    opt, w, state = _sema_and_state()
    bad = edit(state)
    with pytest.raises(error) as info:
        opt.step(w, bad, lambda x: (0.5 * float(x @ x), x.copy()))
    assert needle in str(info.value)


def test_the_untouched_state_steps_and_switches():
    """Teeth for the test above: the same state, unedited, steps (and switches at step 2)."""
    opt, w, state = _sema_and_state()
    oracle = lambda x: (0.5 * float(x @ x), x.copy())  # noqa: E731
    w1, state, _ = opt.step(w, state, oracle)
    w2, state, _ = opt.step(w1, state, oracle)
    np.testing.assert_array_equal(w2, opt.average(state))  # the switch copied the average


@pytest.mark.parametrize("make,needle", [
    (lambda: r.EMA(r.SGD(), update_after_step=2 ** 70), "update_after_step must be in [0, 2**63 - 1]"),
    (lambda: r.SwitchEMA(r.SGD(), switch_every=2 ** 70), "switch_every must be in [1, 2**63 - 1]"),
    (lambda: r.SGD(lr=10 ** 400), "lr must be finite and within the float64 range"),
    (lambda: r.EMA(r.SGD(), decay=-10 ** 400), "decay must be finite and within the float64 range"),
    (lambda: r.MLP((2, 2 ** 40, 1)), "would need about"),
])
def test_numbers_beyond_the_kernels_range_are_value_errors(make, needle):
    with pytest.raises(ValueError) as info:
        make()
    assert needle in str(info.value)


@pytest.mark.parametrize("call,needle", [
    (lambda: _mlp_problem().draw_noise(10 ** 12, 0), "steps=1000000000000 would need about 29.1 TiB"),
    (lambda: _nqm().draw_noise(10 ** 12, 0), "steps=1000000000000 would need about 14.6 TiB"),
    (lambda: r.train(_mlp_problem(), r.SGD(lr=0.1), w0=np.zeros(13), steps=10 ** 12), "would need about"),
    (lambda: r.train(_nqm(), r.SGD(lr=0.1), w0=np.ones(2), epochs=10 ** 12, steps_per_epoch=2),
     "epochs * steps_per_epoch=2000000000000 would need about"),
    (lambda: theory.moments(_nqm(), r.SGD(lr=0.1), w0=np.ones(2), steps=10 ** 12), "would need about"),
])
def test_sizes_are_checked_before_allocating(call, needle):
    """The reproduction: draw_noise(10**12) and train(steps=10**12) on an MLP built a
    Python list until the machine ran out of memory. The expected sizes are counted by
    hand: the MLP problem's batches are 2 x 10**12 rows of 2 int64 indices (the epoch
    permutations and the cut rows) = 32e12 bytes = 29.1 TiB; the NQM's draws are 10**12
    x 2 float64 = 16e12 bytes = 14.6 TiB."""
    with pytest.raises(ValueError) as info:
        call()
    assert needle in str(info.value) and "MAX_ARRAY_BYTES" in str(info.value)
