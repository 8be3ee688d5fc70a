"""Switch EMA (proofs/sources.md#switch-ema): when the switch fires, what it copies, what it keeps or resets,
its reductions to EMA and to the base optimizer, and the jitted training loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl.optimizers import EMA, FAME, SAM, SGD, Adam, SGDState, SwitchEMA
from refimpl.problems.quadratic import NoisyQuadratic, Quadratic
from refimpl.train import train

PROBLEM = Quadratic(np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([1.0, -2.0]))
W0 = np.array([3.0, 2.5])


def switch_steps(opt, steps, epoch_ends=(), w0=W0, problem=PROBLEM):
    """Step ``opt`` (epoch_end=True at the 1-based steps in ``epoch_ends``) and return the
    steps after which ``w`` was replaced by the average.

    A switch is detected against the wrapped optimizer's own step from the same state:
    without a switch ``w`` must equal it bit for bit, with a switch ``w`` must equal the
    new average bit for bit (and differ from the plain step)."""
    w, state = w0, opt.init(w0)
    switched = []
    for n in range(1, steps + 1):
        w_plain, _, _ = opt.inner.step(w, state.inner, problem.grad_fn())
        w, state, _ = opt.step(w, state, problem.grad_fn(), epoch_end=n in epoch_ends)
        assert state.step == n
        if np.array_equal(w, w_plain):
            continue
        assert np.array_equal(w, opt.average(state)), n
        switched.append(n)
    return switched


# -- when the switch fires ----------------------------------------------------------


def test_epoch_switch_every_epoch():
    """switch_unit="epoch", switch_every 1: w <- average exactly at the steps flagged
    epoch_end (irregular epochs: 2, 5, 6, 9), nowhere else.
    The openmixup SwitchEMAHook's inverted condition (switch when NOT every_n) would
    never switch with interval 1."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.5)
    assert switch_steps(opt, 10, epoch_ends={2, 5, 6, 9}) == [2, 5, 6, 9]


def test_epoch_switch_every_second_epoch():
    """switch_every 2: epochs end at steps 2, 5, 6, 9, 11, 14 (counts 1..6); switches
    at the END of the 2nd, 4th, 6th epochs: steps 5, 9, 14 (the detection hook's
    (epoch + 1) % 2 == 0 with a 0-based epoch). A 0-based count tested before the
    increment (epoch % 2 == 0) would switch at steps 2, 6, 11 instead."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.5, switch_every=2)
    ends = {2, 5, 6, 9, 11, 14}
    assert switch_steps(opt, 15, epoch_ends=ends) == [5, 9, 14]


def test_epoch_switch_start():
    """switch_start 2: only once the epoch count exceeds 2. Epochs end every 2 steps:
    counts 1..5 at steps 2..10; every 1 -> steps 6, 8, 10; every 2 -> count 4 only
    (count 2 is not > 2): step 8."""
    ends = {2, 4, 6, 8, 10}
    base = SGD(lr=0.1, momentum=0.9)
    assert switch_steps(SwitchEMA(base, decay=0.5, switch_start=2), 11, ends) == [6, 8, 10]
    assert switch_steps(SwitchEMA(base, decay=0.5, switch_start=2, switch_every=2),
                        11, ends) == [8]


def test_epoch_count_is_the_number_of_epoch_end_flags():
    opt = SwitchEMA(SGD(lr=0.1), decay=0.5)
    w, state = W0, opt.init(W0)
    for n in range(1, 8):
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn(), epoch_end=n % 3 == 0)
    assert state.epoch == 2 and state.step == 7


def test_step_switch():
    """switch_unit="step", switch_every 3, switch_start 4: after steps n with n % 3 == 0
    and n > 4: 6, 9, 12 (not 3). epoch_end flags are ignored in this unit."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.5, switch_unit="step",
                    switch_every=3, switch_start=4)
    assert switch_steps(opt, 13, epoch_ends={1, 2, 4, 5}) == [6, 9, 12]


def test_step_switch_every_step():
    """switch_every 1 in steps: every step switches (openmixup's inverted hook: never)."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.5, switch_unit="step")
    assert switch_steps(opt, 5) == [1, 2, 3, 4, 5]


# -- SEMA-switch --------------------------------------------------------------------


@pytest.mark.claim("SEMA-switch")
@pytest.mark.parametrize("start", ["copy", "zeros"])
def test_w_equals_average_right_after_switch(start):
    """Right after a switch w == average bit for bit; for start="zeros" that is the
    DEBIASED average (the raw buffer is (1 - P) times smaller)."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.8, start=start, switch_unit="step",
                    switch_every=2)
    w, state = W0, opt.init(W0)
    for n in range(1, 7):
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
        if n % 2 == 0:
            assert np.array_equal(w, opt.average(state))
            if start == "zeros":
                expected = state.ema / (1.0 - state.decay_product)
                assert np.array_equal(w, expected)
                assert not np.allclose(w, state.ema)
            else:
                assert np.array_equal(w, state.ema)


@pytest.mark.claim("SEMA-switch")
@given(decay=st.one_of(st.sampled_from([0.0, 0.5, 0.9]), st.floats(0.0, 0.99)),
       start=st.sampled_from(["copy", "zeros"]), update_every=st.integers(1, 3),
       unit=st.sampled_from(["epoch", "step"]), steps=st.integers(1, 12))
def test_sema_never_switching_is_ema(decay, start, update_every, unit, steps):
    """SEMA-switch: with the switch never firing (epoch unit and no epoch_end; or step
    unit with switch_start >= steps) SEMA is EMA bit for bit: params, buffers, averages
    and the inner state."""
    kw = dict(decay=decay, start=start, update_every=update_every)
    sema = SwitchEMA(SGD(lr=0.1, momentum=0.9), switch_unit=unit, switch_start=steps, **kw)
    ema = EMA(SGD(lr=0.1, momentum=0.9), **kw)
    w1, s1 = W0, sema.init(W0)
    w2, s2 = W0, ema.init(W0)
    for _ in range(steps):
        w1, s1, i1 = sema.step(w1, s1, PROBLEM.grad_fn())
        w2, s2, i2 = ema.step(w2, s2, PROBLEM.grad_fn())
        assert np.array_equal(w1, w2) and i1 == i2
        assert np.array_equal(s1.ema, s2.ema) and s1.decay_product == s2.decay_product
        assert np.array_equal(sema.average(s1), ema.average(s2))
        assert np.array_equal(s1.inner.momentum_buffer, s2.inner.momentum_buffer)


@pytest.mark.claim("SEMA-switch")
@pytest.mark.parametrize("base", [SGD(lr=0.1, momentum=0.9), Adam(lr=0.05)],
                         ids=["SGD", "Adam"])
@pytest.mark.parametrize("start", ["copy", "zeros"])
def test_sema_with_zero_decay_is_base(base, start):
    """SEMA-switch: decay 0 makes the average the current w (0*ema + 1*w = w exactly;
    for "zeros" the product is 0 and the debias divides by 1), so switching every step
    returns the base optimizer's iterates and state bit for bit."""
    opt = SwitchEMA(base, decay=0.0, start=start, switch_unit="step")
    w1, s1 = W0, opt.init(W0)
    w2, s2 = W0, base.init(W0)
    for _ in range(8):
        w1, s1, _ = opt.step(w1, s1, PROBLEM.grad_fn())
        w2, s2, _ = base.step(w2, s2, PROBLEM.grad_fn())
        assert np.array_equal(w1, w2)
        assert type(s1.inner) is type(s2)
        for a, b in zip(s1.inner, s2):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("start", ["copy", "zeros"])
def test_switch_never_resets_ema_buffer(start):
    """The buffer continues through switches: at every step the new buffer is
    decay*old + (1 - decay)*w_plain (the wrapped optimizer's step, before the switch),
    and the decay product keeps multiplying (a reset would restart it at 1, or reset
    the buffer to w or 0)."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.7, start=start,
                    switch_unit="step", switch_every=2)
    w, state = W0, opt.init(W0)
    product = 1.0
    for _ in range(9):
        w_plain, _, _ = opt.inner.step(w, state.inner, PROBLEM.grad_fn())
        expected = 0.7 * state.ema + (1.0 - 0.7) * w_plain
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
        product = product * 0.7
        assert np.array_equal(state.ema, expected)
        assert state.decay_product == product


# -- on_switch: keep / reset --------------------------------------------------------


def test_keep_leaves_momentum_buffer():
    """on_switch="keep" (the paper's SEMA): the switch touches only w; the momentum
    buffer and counters are those of the plain step."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.5, switch_unit="step", switch_every=2)
    w, state = W0, opt.init(W0)
    for n in range(1, 7):
        _, inner_plain, _ = opt.inner.step(w, state.inner, PROBLEM.grad_fn())
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
        assert state.inner.step == state.inner.count == n
        assert np.array_equal(state.inner.momentum_buffer, inner_plain.momentum_buffer)
        assert np.any(state.inner.momentum_buffer != 0.0)


def test_keep_leaves_adam_moments():
    opt = SwitchEMA(Adam(lr=0.05), decay=0.5, switch_unit="step", switch_every=2)
    w, state = W0, opt.init(W0)
    for n in range(1, 7):
        _, inner_plain, _ = opt.inner.step(w, state.inner, PROBLEM.grad_fn())
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
        assert state.inner.count == n
        assert np.array_equal(state.inner.m, inner_plain.m)
        assert np.array_equal(state.inner.v, inner_plain.v)


def test_reset_sgd_restarts_first_step_rule_and_keeps_lr_index():
    """on_switch="reset" (Lookahead-style): after the switch at step 2 the buffer is 0,
    count 0, but ``step`` stays 2. Step 3 then uses PyTorch's first-step rule buf = g
    (no dampening: with dampening 0.5 a non-restarted rule would give 0.9*0 + 0.5*g)
    and the lr of index 2 (0.3, not 0.1 as a restarted schedule would):
    w3 = w_sw - 0.3 * g(w_sw), buf3 = g(w_sw)."""
    lrs = np.array([0.1, 0.2, 0.3, 0.4])
    opt = SwitchEMA(SGD(lr=lrs, momentum=0.9, dampening=0.5), decay=0.5,
                    switch_unit="step", switch_every=2, on_switch="reset")
    w, state = W0, opt.init(W0)
    for _ in range(2):
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
    assert np.array_equal(w, opt.average(state))
    assert state.inner == SGDState(2, 0, state.inner.momentum_buffer)
    assert np.array_equal(state.inner.momentum_buffer, np.zeros(2))
    g = PROBLEM.grad(w)
    w3, s3, _ = opt.step(w, state, PROBLEM.grad_fn())
    assert np.array_equal(w3, w - 0.3 * g)
    assert np.array_equal(s3.inner.momentum_buffer, g)
    assert (s3.inner.step, s3.inner.count) == (3, 1)


def test_reset_adam_restarts_bias_correction():
    """on_switch="reset" with Adam: after the switch at step 2, m = v = 0 and count 0;
    step 3 is Adam's FIRST step (t = 1) with lr index 2:
    m = (1-b1) g, v = (1-b2) g^2, w -= lr/(1 - b1) * m / (sqrt(v)/sqrt(1 - b2) + eps),
    written here with the kernel's order of operations (bitwise)."""
    lrs = np.array([0.01, 0.02, 0.03, 0.04])
    b1, b2, eps = 0.9, 0.999, 1e-8
    opt = SwitchEMA(Adam(lr=lrs, beta1=b1, beta2=b2, eps=eps), decay=0.5,
                    switch_unit="step", switch_every=2, on_switch="reset")
    w, state = W0, opt.init(W0)
    for _ in range(2):
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
    zeros = np.zeros(2)
    assert state.inner.step == 2 and state.inner.count == 0
    assert np.array_equal(state.inner.m, zeros) and np.array_equal(state.inner.v, zeros)
    g = PROBLEM.grad(w)
    m = b1 * zeros + (1.0 - b1) * g
    v = b2 * zeros + (1.0 - b2) * g * g
    denom = np.sqrt(v) / np.sqrt(1.0 - b2 ** 1.0) + eps
    expected = w - (0.03 / (1.0 - b1 ** 1.0)) * (m / denom)
    w3, s3, _ = opt.step(w, state, PROBLEM.grad_fn())
    assert np.array_equal(w3, expected)
    assert np.array_equal(s3.inner.m, m) and np.array_equal(s3.inner.v, v)


@pytest.mark.parametrize("base", [FAME(lr=0.05), FAME(lr=0.05, variant="full"),
                                  SAM(SGD(lr=0.1, momentum=0.9))],
                         ids=["FAME", "FAME-full", "SAM"])
def test_reset_state_is_fresh_init_with_step_kept(base):
    """Through any wrapped optimizer, reset gives the init state with ``step`` kept (and
    full FAME's diagnostic ``v_clipped`` counter, which reset documents as kept)."""
    opt = SwitchEMA(base, decay=0.5, switch_unit="step", switch_every=3, on_switch="reset")
    w, state = W0, opt.init(W0)
    for _ in range(3):
        w, state, _ = opt.step(w, state, PROBLEM.grad_fn())
    inner = state.inner.inner if isinstance(base, SAM) else state.inner
    fresh = (base.base if isinstance(base, SAM) else base).init(W0)
    assert inner.step == 3
    for name, a, b in zip(inner._fields, inner, fresh):
        if name not in ("step", "v_clipped"):
            assert np.array_equal(a, b), name


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize("kw,exc,name", [
    (dict(switch_every=0), ValueError, "switch_every"),
    (dict(switch_every=-1), ValueError, "switch_every"),
    (dict(switch_every=2.0), TypeError, "switch_every"),
    (dict(switch_unit="epochs"), ValueError, "switch_unit"),
    (dict(switch_unit="iter"), ValueError, "switch_unit"),
    (dict(switch_start=-1), ValueError, "switch_start"),
    (dict(switch_start=0.5), TypeError, "switch_start"),
    (dict(on_switch="clear"), ValueError, "on_switch"),
    (dict(on_switch=None), ValueError, "on_switch"),
    (dict(decay=1.0), ValueError, "decay"),
])
def test_invalid_switch_hyperparameters(kw, exc, name):
    with pytest.raises(exc, match=name):
        SwitchEMA(SGD(), **kw)


def test_epoch_end_must_be_bool():
    opt = SwitchEMA(SGD())
    with pytest.raises(TypeError, match="epoch_end"):
        opt.step(W0, opt.init(W0), PROBLEM.grad_fn(), epoch_end=1)


# -- the jitted training loop -------------------------------------------------------

NOISY = NoisyQuadratic(np.array([2.0, 1.0, 0.5]), batch_size=4,
                       w_star=np.array([0.5, -1.0, 2.0]))


def hand_run(problem, opt, w0, steps, seed, steps_per_epoch=None):
    """The public step API, stepped as the train() docstring says; rows like Record."""
    noise = problem.draw_noise(steps, seed)
    w, state = w0, opt.init(w0)
    params, averages = [w0], [opt.average(state)]
    for t in range(steps):
        grad_fn = problem.grad_fn(None if noise is None else noise[t])
        epoch_end = steps_per_epoch is not None and (t + 1) % steps_per_epoch == 0
        w, state, _ = opt.step(w, state, grad_fn, epoch_end=epoch_end)
        params.append(w)
        averages.append(opt.average(state))
    return np.array(params), np.array(averages)


@pytest.mark.parametrize("start", ["copy", "zeros"])
@pytest.mark.parametrize("on_switch", ["keep", "reset"])
@pytest.mark.parametrize("base", [SGD(lr=0.1, momentum=0.9), Adam(lr=0.05)],
                         ids=["SGD", "Adam"])
def test_train_epoch_switch_matches_hand_stepping(start, on_switch, base):
    """train() with steps_per_epoch 3 marks epoch ends (t+1) % 3 == 0 and switches at
    the same steps as hand stepping: record.params and record.averages equal bitwise.
    The switches (every 2nd epoch: steps 6, 12, 18) did happen: params == averages
    there, while at the 1st/3rd epoch ends (steps 3, 9) they differ."""
    opt = SwitchEMA(base, decay=0.8, start=start, switch_every=2, on_switch=on_switch)
    w0 = np.array([1.0, 2.0, -1.0])
    record = train(NOISY, opt, w0=w0, steps=20, steps_per_epoch=3, seed=7,
                   record_params=True)
    params, averages = hand_run(NOISY, opt, w0, 20, 7, steps_per_epoch=3)
    assert np.array_equal(record.params, params)
    assert np.array_equal(record.averages, averages)
    assert np.array_equal(record.w, params[-1])
    assert np.array_equal(record.average, averages[-1])
    for n in (6, 12, 18):
        assert np.array_equal(record.params[n], record.averages[n])
    for n in (3, 9, 15):
        assert not np.array_equal(record.params[n], record.averages[n])


def test_train_step_switch_matches_hand_stepping():
    """switch_unit="step" needs no steps_per_epoch; the loop matches the step API."""
    opt = SwitchEMA(SGD(lr=0.1, momentum=0.9), decay=0.8, switch_unit="step",
                    switch_every=4, switch_start=4, on_switch="reset")
    w0 = np.array([1.0, 2.0, -1.0])
    record = train(NOISY, opt, w0=w0, steps=17, seed=3, record_params=True)
    params, averages = hand_run(NOISY, opt, w0, 17, 3)
    assert np.array_equal(record.params, params)
    assert np.array_equal(record.averages, averages)
    assert not np.array_equal(record.params[4], record.averages[4])  # 4 is not > 4
    assert np.array_equal(record.params[8], record.averages[8])


def test_train_epoch_switch_requires_steps_per_epoch():
    opt = SwitchEMA(SGD(lr=0.1), decay=0.5)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        train(NOISY, opt, w0=np.zeros(3), steps=5)


def test_zero_start_switch_before_first_update_is_skipped():
    """With start="zeros" and update_every=2, the step-1 switch finds nothing averaged:
    it is skipped (w is the SGD iterate), and the step-2 switch uses the debiased EMA.
    Through the jitted loop too."""
    opt = SwitchEMA(SGD(lr=0.1), start="zeros", update_every=2, switch_unit="step", decay=0.5)
    w0 = np.array([3.0, -2.0])
    oracle = lambda v: (0.0, v.copy())  # noqa: E731  g = w
    w, s = w0, opt.init(w0)
    w, s, _ = opt.step(w, s, oracle)
    assert np.array_equal(w, 0.9 * w0)  # no switch to the zero vector
    w, s, _ = opt.step(w, s, oracle)
    assert np.array_equal(w, opt.average(s)) and np.array_equal(w, 0.9 * 0.9 * w0)
    # copy start: the average before any update is w0 itself, and the switch happens
    copy = SwitchEMA(SGD(lr=0.1), update_every=2, switch_unit="step", decay=0.5)
    w, s, _ = copy.step(w0, copy.init(w0), oracle)
    assert np.array_equal(w, w0)
    quad = Quadratic(np.eye(2))
    rec = train(quad, opt, w0=w0, steps=4, record_params=True)
    assert np.array_equal(rec.params[1], 0.9 * w0)
