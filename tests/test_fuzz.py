"""Fuzzing the public API: bad input gets a clear ValueError/TypeError naming the
parameter before any kernel runs; good input never yields a silent NaN; inputs are never
modified."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import refimpl as r
from tests.conftest import vectors

# values a user might pass by mistake, mixed with valid ones
ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.booleans(),
    st.sampled_from([None, "0.1", "pytorch", "official", "full", "exact", "adam", "normalized",
                     "adaptive", "unnormalized", "copy", "zeros", "timm", "linear", "exp",
                     "constant", "epoch", "step", "keep", "reset", "first", "raw", "debiased",
                     "adaptive_unnormalized", "pullback", [0.1], np.float32(0.1),
                     np.array([0.1, 0.2]), np.array([0.1, np.nan])]),
)

FIELDS = {
    r.SGD: ["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "convention"],
    r.Adam: ["lr", "beta1", "beta2", "eps", "weight_decay", "maximize", "decoupled_weight_decay",
             "amsgrad", "amsgrad_max"],
    r.AdamW: ["lr", "weight_decay", "decoupled_weight_decay", "amsgrad", "amsgrad_max"],
    r.FAME: ["lr", "beta1", "beta2", "beta3", "beta4", "beta5", "eps", "weight_decay", "maximize",
             "variant", "debias", "amsgrad", "decoupled_weight_decay"],
}
WRAPPER_FIELDS = {
    r.SAM: ["rho", "ascent", "eps"],
    r.StableSAM: ["rho", "ascent", "eps"],
    r.EMA: ["decay", "update_every", "start", "warmup", "update_after_step", "warmup_gamma",
            "warmup_power", "min_decay", "warmup_ratio", "warmup_steps"],
    r.SwitchEMA: ["decay", "update_every", "start", "warmup", "switch_every", "switch_unit",
                  "switch_start", "on_switch", "warmup_steps"],
    r.SWA: ["swa_every", "swa_unit", "swa_start"],
    r.Lookahead: ["k", "alpha", "start", "on_sync"],
}


def _construct(cls, kwargs, *inner):
    """Build, and check that a refusal names one of the parameters given."""
    try:
        return cls(*inner, **kwargs)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert any(name in message for name in kwargs), (
            f"{cls.__name__}({kwargs}) raised {err!r}, which names none of the parameters")
        return None


def _clean_oracle(w):
    """A smooth non-quadratic oracle: f = sum(log(cosh(w)) + w^2 / 2), written without
    overflow (log cosh w = |w| + log1p(exp(-2|w|)) - log 2)."""
    a = np.abs(w)
    log_cosh = a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0)
    return float(np.sum(log_cosh + 0.5 * w * w)), np.tanh(w) + w


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # huge lr: loud divergence
@given(cls=st.sampled_from(list(FIELDS)), data=st.data())
def test_base_constructors_refuse_clearly_and_step_finitely(cls, data):
    names = data.draw(st.lists(st.sampled_from(FIELDS[cls]), unique=True, max_size=4))
    kwargs = {name: data.draw(ANY_VALUE, label=name) for name in names}
    opt = _construct(cls, kwargs)
    if opt is None:
        return
    _check_steps(opt, data)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # huge lr: loud divergence
@given(cls=st.sampled_from(list(WRAPPER_FIELDS)), data=st.data())
def test_wrapper_constructors_refuse_clearly_and_step_finitely(cls, data):
    names = data.draw(st.lists(st.sampled_from(WRAPPER_FIELDS[cls]), unique=True, max_size=4))
    kwargs = {name: data.draw(ANY_VALUE, label=name) for name in names}
    base = data.draw(st.sampled_from([r.SGD(lr=0.1, momentum=0.9), r.Adam(), r.FAME(variant="full")]))
    opt = _construct(cls, kwargs, base)
    if opt is None:
        return
    _check_steps(opt, data)


def test_fuzz_counterexample_short_lr_array():
    """Found by the fuzz profile: an lr array of 2 entries stepped 3 times. The third
    step must be a clear ValueError, never a silent reuse of the last rate."""
    opt = r.SGD(lr=np.array([0.1, 0.2]))
    w, state = np.array([0.0]), opt.init(np.array([0.0]))
    for _ in range(2):
        w, state, _ = opt.step(w, state, _clean_oracle)
    with pytest.raises(ValueError, match="lr schedule has 2 entries; step 2 is past its end"):
        opt.step(w, state, _clean_oracle)


def _check_steps(opt, data):
    w = data.draw(vectors(1, 5, -10, 10), label="w")
    w_before = w.copy()
    state = opt.init(w)
    for step in range(2):  # the shortest lr array drawn has 2 entries
        try:
            w_new, state, info = opt.step(w, state, _clean_oracle, epoch_end=bool(step % 2))
        except FloatingPointError:
            return  # a loud divergence is allowed; a silent NaN is not
        assert np.array_equal(w, w_before), "step modified its input"
        assert np.all(np.isfinite(w_new)) and np.isfinite(info.loss)
        w, w_before = w_new, w_new.copy()


@given(w=vectors(1, 5), g_len=st.integers(1, 6))
@example(w=np.array([1.0]), g_len=2)
def test_update_rejects_wrong_shapes(w, g_len):
    opt = r.SGD(lr=0.1)
    state = opt.init(w)
    g = np.ones(g_len)
    if g_len != w.shape[0]:
        with pytest.raises(ValueError, match="g must have length"):
            opt.update(w, state, g)
    other = opt.init(np.ones(w.shape[0] + 1))
    with pytest.raises(ValueError, match="momentum_buffer"):
        opt.update(w, other, np.ones(w.shape[0]))


@pytest.mark.parametrize("bad, error, match", [
    ([1.0, 2.0], TypeError, "numpy float64 array"),
    (np.ones(3, dtype=np.float32), TypeError, "dtype float64"),
    (np.ones(3, dtype=np.int64), TypeError, "dtype float64"),
    (np.ones((2, 3)), ValueError, "1-D"),
    (np.ones(6)[::2], TypeError, "C-contiguous"),
    (np.array([1.0, np.nan]), ValueError, "finite"),
    (np.array([np.inf]), ValueError, "finite"),
    (np.ones(0), ValueError, "at least one element"),
])
@pytest.mark.parametrize("opt", [r.SGD(), r.Adam(), r.FAME(), r.SAM(r.SGD()), r.EMA(r.SGD())],
                         ids=["sgd", "adam", "fame", "sam", "ema"])
def test_bad_parameter_vectors_are_refused_before_any_kernel(opt, bad, error, match):
    with pytest.raises(error, match=match):
        opt.init(bad)
    state = opt.init(np.ones(3))
    with pytest.raises(error, match=match):
        opt.step(bad, state, _clean_oracle)


@pytest.mark.parametrize("result, error, match", [
    (np.ones(3), TypeError, "tuple"),
    ((1.0, [1.0, 1.0, 1.0]), TypeError, "1-D float64"),
    ((1.0, np.ones(2)), ValueError, "length 3"),
    (("1.0", np.ones(3)), TypeError, "loss"),
    ((np.nan, np.ones(3)), FloatingPointError, "non-finite"),
    ((1.0, np.array([1.0, np.inf, 0.0])), FloatingPointError, "non-finite"),
])
@pytest.mark.parametrize("opt", [r.SGD(), r.StableSAM(r.SGD()), r.SwitchEMA(r.Adam())],
                         ids=["sgd", "stable-sam", "sema"])
def test_broken_oracles_are_named(opt, result, error, match):
    state = opt.init(np.ones(3))
    with pytest.raises(error, match=match):
        opt.step(np.ones(3), state, lambda w: result)


def test_state_of_another_optimizer_is_refused():
    w = np.ones(2)
    with pytest.raises(TypeError, match="SGDState"):
        r.SGD().update(w, r.Adam().init(w), w)
    with pytest.raises(TypeError, match="SAMState"):
        r.SAM(r.SGD()).step(w, r.SGD().init(w), _clean_oracle)
    with pytest.raises(TypeError, match="EMAState"):
        r.EMA(r.SGD()).step(w, r.SGD().init(w), _clean_oracle)


def test_optimizers_are_immutable():
    opt = r.SGD(lr=0.1)
    with pytest.raises(AttributeError):
        opt.lr = 0.2
    schedule = np.array([0.1, 0.2])
    opt = r.SGD(lr=schedule)
    schedule[0] = 5.0  # the optimizer keeps its own read-only copy
    assert opt.lr.at(0) == 0.1
    with pytest.raises(ValueError):
        opt.lr.values[0] = 1.0
