"""SGD (proofs/sources.md#sgd) and learning-rate schedules: hand-computed steps, the three momentum
conventions and exactly when they coincide, schedules, state, validation.

Hand-computed cases use dyadic numbers (0.25, 0.5, small integers) so that every
product and sum is exact in binary floating point: the expected values are then the
exact real-number results, and the comparisons are bitwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl import Quadratic, train
from refimpl.optimizers.adam import Adam
from refimpl.optimizers.sgd import SGD, SGDState, sgd_kernel

from conftest import finite_floats

EPS = np.finfo(np.float64).eps
DENORM = np.nextafter(0.0, 1.0)  # 2**-1074, the absolute error bound of an underflow


def run(opt, w0, grads):
    """Apply ``opt.update`` once per gradient; return the list of iterates w1..wT."""
    w, state = w0, opt.init(w0)
    out = []
    for g in grads:
        w, state = opt.update(w, state, g)
        out.append(w)
    return out, state


def a(*xs):
    return np.array(xs, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# strategies

lrs = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.floats(0.0, 1.0))
momenta = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.floats(0.0, 1.0, exclude_max=True))
decays = st.one_of(st.sampled_from([0.0, 0.25, 1e-4]), st.floats(0.0, 1.0))


@st.composite
def problems(draw, t_min=1, t_max=12):
    """(w0, [g_1 .. g_T]) with d <= 6 and T <= 12."""
    d = draw(st.integers(1, 6))
    vec = st.lists(finite_floats(), min_size=d, max_size=d).map(a_list)
    w0 = draw(vec)
    grads = draw(st.lists(vec, min_size=t_min, max_size=t_max))
    return w0, grads


def a_list(xs):
    return np.array(xs, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# hand-computed steps (PyTorch convention)

def test_plain_sgd_two_steps():
    """w <- w - lr * g with momentum 0."""
    # lr = 0.5, w0 = (1, -2), g1 = (2, 1), g2 = (-4, 0.5)
    # w1 = (1 - 0.5*2, -2 - 0.5*1)      = (0, -2.5)
    # w2 = (0 - 0.5*(-4), -2.5 - 0.5*0.5) = (2, -2.75)
    (w1, w2), state = run(SGD(lr=0.5), a(1.0, -2.0), [a(2.0, 1.0), a(-4.0, 0.5)])
    assert np.array_equal(w1, a(0.0, -2.5))
    assert np.array_equal(w2, a(2.0, -2.75))
    assert np.array_equal(state.momentum_buffer, a(0.0, 0.0))  # unused when momentum == 0


def test_momentum_with_dampening_three_steps():
    """PyTorch: buf = g on the FIRST step (no dampening), then mu*buf + (1-damp)*g.
    Fails for optax/Keras-style traces (no first-step rule) and for dampening on step 1."""
    # mu = 0.5, damp = 0.25, lr = 0.5, w0 = 0, g = 4, 8, 2
    # step 1: buf = 4 (NOT 0.75*4 = 3);       w1 = 0 - 0.5*4   = -2
    # step 2: buf = 0.5*4 + 0.75*8 = 2 + 6 = 8;   w2 = -2 - 0.5*8  = -6
    # step 3: buf = 0.5*8 + 0.75*2 = 4 + 1.5 = 5.5; w3 = -6 - 0.5*5.5 = -8.75
    opt = SGD(lr=0.5, momentum=0.5, dampening=0.25)
    w, s = a(0.0), opt.init(a(0.0))
    expected = [(-2.0, 4.0), (-6.0, 8.0), (-8.75, 5.5)]
    for g, (w_exp, buf_exp) in zip([4.0, 8.0, 2.0], expected):
        w, s = opt.update(w, s, a(g))
        assert w[0] == w_exp and s.momentum_buffer[0] == buf_exp


def test_dampening_first_step_skip_differs_from_damping_step_one():
    """PyTorch skips dampening on step 1; a peer that damps step 1 too (buf = (1-damp)*g
    from zeros, e.g. a naive EMA-style buffer) gives different iterates."""
    # mu = 0.5, damp = 0.5, lr = 0.5, g = 1, w0 = 0
    # PyTorch: buf1 = 1,                 w1 = -0.5; buf2 = 0.5*1 + 0.5*1 = 1,      w2 = -1.0
    # damped:  buf1 = 0.5*0 + 0.5*1 = 0.5, w1 = -0.25; buf2 = 0.25 + 0.5 = 0.75, w2 = -0.625
    opt = SGD(lr=0.5, momentum=0.5, dampening=0.5)
    (w1, w2), _ = run(opt, a(0.0), [a(1.0), a(1.0)])
    assert (w1[0], w2[0]) == (-0.5, -1.0)
    assert (w1[0], w2[0]) != (-0.25, -0.625)


def test_dampening_one_freezes_buffer_after_first_step():
    """dampening = 1 (allowed, [0, 1]): buf_t = mu^(t-1) * g_1, later gradients ignored."""
    # mu = 0.5, lr = 1, g = 4, 100, -100: buf = 4, 2, 1; w = -4, -6, -7
    opt = SGD(lr=1.0, momentum=0.5, dampening=1.0)
    ws, state = run(opt, a(0.0), [a(4.0), a(100.0), a(-100.0)])
    assert [w[0] for w in ws] == [-4.0, -6.0, -7.0]
    assert state.momentum_buffer[0] == 1.0


def test_nesterov_two_steps():
    """d = g + mu*buf (after the buffer update). Fails if Nesterov were ignored (heavy
    ball gives w1 = -2) or used the OLD buffer (d1 = g = 4, w1 = -2)."""
    # mu = 0.5, lr = 0.5, w0 = 0, g = 4, 8
    # step 1: buf = 4;            d = 4 + 0.5*4  = 6;  w1 = 0 - 0.5*6   = -3
    # step 2: buf = 0.5*4 + 8 = 10; d = 8 + 0.5*10 = 13; w2 = -3 - 0.5*13 = -9.5
    (w1, w2), state = run(SGD(lr=0.5, momentum=0.5, nesterov=True), a(0.0), [a(4.0), a(8.0)])
    assert (w1[0], w2[0]) == (-3.0, -9.5)
    assert state.momentum_buffer[0] == 10.0


def test_maximize_negates_before_weight_decay():
    """PyTorch: g = -g, THEN g += wd*w, so weight decay still shrinks |w| when
    maximizing. Fails if the order were swapped (g = -(g + wd*w))."""
    # lr = 0.5, wd = 0.5, w0 = 2, g = 3 twice
    # step 1: g = -3 + 0.5*2 = -2;   w1 = 2 - 0.5*(-2)    = 3
    #   (swapped: -(3 + 1) = -4;     w1 = 2 + 2           = 4)
    # step 2: g = -3 + 0.5*3 = -1.5; w2 = 3 - 0.5*(-1.5)  = 3.75
    opt = SGD(lr=0.5, weight_decay=0.5, maximize=True)
    (w1, w2), _ = run(opt, a(2.0), [a(3.0), a(3.0)])
    assert (w1[0], w2[0]) == (3.0, 3.75)
    # With a zero gradient only the decay acts: w1 = 2 * (1 - 0.5*0.5) = 1.5 (swapped
    # order would give 2 * (1 + 0.25) = 2.5: maximizing the L2 penalty too).
    (w1,), _ = run(opt, a(2.0), [a(0.0)])
    assert w1[0] == 1.5


def test_weight_decay_is_coupled_into_the_buffer():
    """Coupled L2: wd*w is added to g BEFORE the momentum buffer. Fails for decoupled
    weight decay (SGDW / Keras 3 ``weight_decay``: w -= lr*wd*w outside the buffer)."""
    # mu = 0.5, wd = 0.25, lr = 0.5, w0 = 4, g = 0
    # step 1: g = 0.25*4 = 1;        buf = 1;                    w1 = 4 - 0.5*1       = 3.5
    # step 2: g = 0.25*3.5 = 0.875;  buf = 0.5*1 + 0.875 = 1.375; w2 = 3.5 - 0.5*1.375 = 2.8125
    # decoupled: buf stays 0, w2 = 3.5 - 0.5*0.25*3.5 = 3.0625
    opt = SGD(lr=0.5, momentum=0.5, weight_decay=0.25)
    (w1, w2), state = run(opt, a(4.0), [a(0.0), a(0.0)])
    assert (w1[0], w2[0]) == (3.5, 2.8125)
    assert state.momentum_buffer[0] == 1.375


def test_step_uses_the_oracle_gradient_once():
    """``step`` = one oracle call at w, then ``update`` with that gradient."""
    q = Quadratic(np.array([[2.0, 0.0], [0.0, 0.5]]))
    opt = SGD(lr=0.25, momentum=0.5)
    w0 = a(1.0, -4.0)
    w, s, info = opt.step(w0, opt.init(w0), q.grad_fn())
    # g = (2, -2), loss = 1/2 (2*1 + 0.5*16) = 5, ||g|| = sqrt(8); w1 = w0 - 0.25*g
    assert np.array_equal(w, a(0.5, -3.5))
    assert info == (5.0, np.sqrt(8.0), 1)
    w_u, s_u = opt.update(w0, opt.init(w0), a(2.0, -2.0))
    assert np.array_equal(w, w_u) and np.array_equal(s.momentum_buffer, s_u.momentum_buffer)


# ---------------------------------------------------------------------------------------
# conventions

def _witness(convention):
    opt = SGD(lr=a(0.1, 0.01), momentum=0.9, convention=convention)
    (w1, w2), _ = run(opt, a(0.0), [a(1.0), a(1.0)])
    return w1[0], w2[0]


def test_convention_witness_changing_lr():
    """The lr-change witness (proofs/sources.md#the-lr-change-witness): g = 1, mu = 0.9,
    w0 = 0, lr 0.1 then 0.01.

    PyTorch: buf1 = 1, w1 = -0.1*1 = -0.1; buf2 = 0.9*1 + 1 = 1.9, w2 = -0.1 - 0.01*1.9 = -0.119.
    optax:   trace1 = 1 + 0.9*0 = 1, trace2 = 1 + 0.9*1 = 1.9: the same, w2 = -0.119.
    Keras:   v1 = 0.9*0 - 0.1*1 = -0.1, w1 = -0.1; v2 = 0.9*(-0.1) - 0.01*1 = -0.1,
             w2 = -0.2 (the old lr 0.1 stays inside the velocity).
    Each value is within 2 ulps of the decimal (two or three roundings of numbers < 1).
    """
    tp, to, tk = _witness("pytorch"), _witness("optax"), _witness("keras")
    assert tp == to  # bitwise: same operations once dampening = 0
    assert tp[0] == tk[0] == -0.1
    assert abs(tp[1] - (-0.119)) <= 2 * EPS * 0.119
    assert abs(tk[1] - (-0.2)) <= 2 * EPS * 0.2
    # and the exact float expressions, in the kernels' order of operations
    assert tp[1] == (0.0 - 0.1 * 1.0) - 0.01 * (0.9 * 1.0 + 1.0)
    assert tk[1] == -0.1 + (0.9 * (0.0 - 0.1 * 1.0) - 0.01 * 1.0)


@given(problems(), lrs, momenta, st.booleans(), st.booleans(), decays)
def test_optax_equals_pytorch_when_dampening_is_zero(prob, lr, mu, nesterov, maximize, wd):
    """optax's trace from zeros (g + mu*trace) equals PyTorch's first-step rule
    (buf = g) and later mu*buf + 1.0*g: bitwise (== on values; the only possible bit
    difference is the sign of a zero: optax's -0.0 + 0.0 gives +0.0)."""
    nesterov = nesterov and mu > 0.0
    w0, grads = prob
    wd = min(wd, 1.0)
    kw = dict(lr=lr, momentum=mu, nesterov=nesterov, maximize=maximize, weight_decay=wd)
    wp, sp = run(SGD(**kw), w0, grads)
    wo, so = run(SGD(convention="optax", **kw), w0, grads)
    for x, y in zip(wp, wo):
        assert np.array_equal(x, y)
    assert np.array_equal(sp.momentum_buffer, so.momentum_buffer)


@given(problems(), lrs, momenta, st.booleans())
def test_keras_equals_pytorch_while_lr_is_constant(prob, lr, mu, nesterov):
    """Keras's velocity is v_t = -lr * buf_t in exact arithmetic, so with a constant lr
    the iterates agree, but NOT bitwise: Keras rounds lr*g before the momentum multiply
    (mu*(lr*b) vs lr*(mu*b)), so each step differs by a few roundings. Error bound
    (first order, u = eps/2): the buffer error after t steps is <= 3 t u lr A_t with
    A_t = mu A_{t-1} + |g_t| (the trace of |g|; twice that for Nesterov), and each
    w-update rounds once per implementation, so
    |w_keras - w_torch| <= sum_t (2u |w_t| + 8 (t+1) u lr A_t), doubled here for margin,
    plus one denormal per operation for underflow."""
    nesterov = nesterov and mu > 0.0
    w0, grads = prob
    kw = dict(lr=lr, momentum=mu, nesterov=nesterov)
    wp, _ = run(SGD(**kw), w0, grads)
    wk, _ = run(SGD(convention="keras", **kw), w0, grads)
    A = np.zeros_like(w0)
    bound = np.zeros_like(w0)
    for t, (g, x) in enumerate(zip(grads, wp), start=1):
        A = mu * A + np.abs(g)
        scale = 2 * A if nesterov else A
        bound += EPS * np.abs(x) + 8 * (t + 1) * EPS * lr * scale + 16 * DENORM
        assert np.all(np.abs(wk[t - 1] - x) <= bound)


def test_keras_equals_pytorch_bitwise_when_arithmetic_is_exact():
    """With dyadic lr, mu and gradients every rounding is exact, so the algebraic
    identity v_t = -lr * buf_t shows bit for bit (constant lr)."""
    grads = [a(4.0, -2.0), a(8.0, 1.0), a(-2.0, 0.5), a(1.0, 1.0)]
    for nesterov in (False, True):
        kw = dict(lr=0.25, momentum=0.5, nesterov=nesterov)
        wp, _ = run(SGD(**kw), a(1.0, 3.0), grads)
        wk, _ = run(SGD(convention="keras", **kw), a(1.0, 3.0), grads)
        assert all(np.array_equal(x, y) for x, y in zip(wp, wk))


def test_keras_state_is_the_velocity_not_the_trace():
    """Keras stores v = -lr * trace (lr inside); PyTorch/optax store the trace."""
    # lr = 0.5, mu = 0.5, g = 4 then 8: trace = 4, 10; v = -2, 0.5*(-2) - 4 = -5
    _, sk = run(SGD(lr=0.5, momentum=0.5, convention="keras"), a(0.0), [a(4.0), a(8.0)])
    _, sp = run(SGD(lr=0.5, momentum=0.5), a(0.0), [a(4.0), a(8.0)])
    assert sk.momentum_buffer[0] == -5.0 and sp.momentum_buffer[0] == 10.0


@given(problems(t_min=1, t_max=8), st.booleans(), decays)
def test_momentum_zero_all_conventions_identical(prob, maximize, wd):
    """With momentum 0 every convention is w <- w - lr*g, bitwise, even with a
    CHANGING lr (Keras differs from PyTorch only through the velocity)."""
    w0, grads = prob
    lr = np.linspace(1.0, 0.01, len(grads))
    runs = [run(SGD(lr=lr, weight_decay=min(wd, 1.0), maximize=maximize, convention=c),
                w0, grads)[0] for c in ("pytorch", "optax", "keras")]
    for other in runs[1:]:
        assert all(np.array_equal(x, y) for x, y in zip(runs[0], other))


@given(problems(t_min=1, t_max=6), momenta, st.sampled_from([0, 1, 2]), st.booleans(),
       st.booleans(), st.floats(0.0, 0.9))
def test_kernel_compiled_equals_python(prob, mu, convention, nesterov, first, damp):
    """The jitted sgd_kernel and its plain-Python reading give the same bits."""
    w0, grads = prob
    py = getattr(sgd_kernel, "py_func", sgd_kernel)
    nesterov = nesterov and mu > 0.0
    damp = damp if convention == 0 and not nesterov else 0.0
    w1, b1, w2, b2 = w0.copy(), grads[0] * 0.5, w0.copy(), grads[0] * 0.5
    for g in grads:
        sgd_kernel(w1, b1, g, 0.1, mu, damp, 0.01, nesterov, False, first, convention)
        py(w2, b2, g, 0.1, mu, damp, 0.01, nesterov, False, first, convention)
        first = False
    assert np.array_equal(w1.view(np.int64), w2.view(np.int64))
    assert np.array_equal(b1.view(np.int64), b2.view(np.int64))


# ---------------------------------------------------------------------------------------
# learning-rate schedules

@given(problems(t_min=1, t_max=8), st.floats(0.0, 1.0), momenta,
       st.sampled_from(["pytorch", "optax", "keras"]))
def test_float_array_callable_schedules_bit_identical(prob, lr, mu, convention):
    """A constant lr given as float, per-step array or callable: the same bits."""
    w0, grads = prob
    n = len(grads)
    forms = [lr, np.full(n, lr), lambda t: lr]
    runs = [run(SGD(lr=f, momentum=mu, convention=convention), w0, grads)[0] for f in forms]
    for other in runs[1:]:
        assert all(np.array_equal(x, y) for x, y in zip(runs[0], other))


def test_array_and_callable_schedules_agree_step_by_step():
    """lr[t] at 0-based step t: array and callable t -> lr[t] agree; hand check."""
    # lr = 0.5, 0.25, 1 ; g = 1, mu = 0 ; w = -0.5, -0.75, -1.75
    values = a(0.5, 0.25, 1.0)
    grads = [a(1.0)] * 3
    wa, _ = run(SGD(lr=values), a(0.0), grads)
    wc, _ = run(SGD(lr=lambda t: float(values[t])), a(0.0), grads)
    assert [w[0] for w in wa] == [w[0] for w in wc] == [-0.5, -0.75, -1.75]


def test_schedules_bit_identical_in_the_training_loop():
    """train() materialises the schedule once: float, array and callable runs match,
    and match the step-by-step update loop."""
    q = Quadratic(np.array([[3.0, 1.0], [1.0, 2.0]]), a(1.0, -1.0))
    w0 = a(0.3, 0.7)
    recs = [train(q, SGD(lr=f, momentum=0.9, nesterov=True), w0=w0, steps=20,
                  record_params=True) for f in (0.05, np.full(20, 0.05), lambda t: 0.05)]
    for r in recs[1:]:
        assert np.array_equal(r.params, recs[0].params)
    opt, w = SGD(lr=0.05, momentum=0.9, nesterov=True), w0
    s = opt.init(w0)
    for t in range(20):
        w, s, _ = opt.step(w, s, q.grad_fn())
        assert np.array_equal(w, recs[0].params[t + 1])


def test_array_schedule_past_its_end_raises():
    """Never a silent repeat of the last value."""
    opt = SGD(lr=a(0.1, 0.2))
    ws, state = run(opt, a(1.0), [a(1.0), a(1.0)])
    with pytest.raises(ValueError, match="lr schedule has 2 entries"):
        opt.update(ws[-1], state, a(1.0))
    q = Quadratic(np.eye(1))
    with pytest.raises(ValueError, match="lr schedule"):
        train(q, opt, w0=a(1.0), steps=3)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_callable_returning_bad_lr_raises(bad):
    """A callable is checked at every step; the message names lr and the step."""
    opt = SGD(lr=lambda t: 0.1 if t == 0 else bad)
    ws, state = run(opt, a(1.0), [a(1.0)])
    with pytest.raises(ValueError, match=r"lr\(1\)"):
        opt.update(ws[-1], state, a(1.0))


def test_callable_returning_non_number_raises():
    opt = SGD(lr=lambda t: "0.1")
    with pytest.raises(TypeError, match=r"lr\(0\)"):
        opt.update(a(1.0), opt.init(a(1.0)), a(1.0))


@pytest.mark.parametrize("values, exc", [
    (a(0.1, -0.1), ValueError), (a(0.1, np.nan), ValueError),
    (np.array([0.1], dtype=np.float32), TypeError), (np.zeros((2, 2)), ValueError),
    ([0.1, 0.2], TypeError),
])
def test_bad_array_schedule_raises(values, exc):
    with pytest.raises(exc, match="lr"):
        SGD(lr=values)


def test_array_schedule_is_copied():
    """The optimizer keeps a read-only copy: the user's array is neither frozen nor
    able to change a running optimizer's rates."""
    values = a(0.5, 0.5)
    opt = SGD(lr=values)
    values[1] = 100.0
    assert values.flags.writeable
    (w1, w2), _ = run(opt, a(0.0), [a(1.0), a(1.0)])
    assert w2[0] == -1.0  # -0.5 - 0.5, not -0.5 - 100
    with pytest.raises(ValueError):
        opt.lr.values[0] = 1.0


# ---------------------------------------------------------------------------------------
# state

def test_counters_and_reset_keep_schedule_index_and_restart_first_step():
    """step indexes the schedule and survives reset(); count and the buffer restart,
    so the first-step rule (no dampening) applies again after a reset."""
    # lr = 0.5, 0.5, 0.25 ; mu = 0.5, damp = 0.5 ; g = 4, 4, 8
    # step 1: buf = 4, w = -2;  step 2: buf = 0.5*4 + 0.5*4 = 4, w = -4
    # reset: buf = 0, count = 0, step = 2
    # step 3 (first again): buf = 8 (not 0.5*8 = 4), lr = lr[2] = 0.25: w = -4 - 2 = -6
    opt = SGD(lr=a(0.5, 0.5, 0.25), momentum=0.5, dampening=0.5)
    ws, s = run(opt, a(0.0), [a(4.0), a(4.0)])
    assert (s.step, s.count) == (2, 2) and ws[-1][0] == -4.0
    r = opt.reset(s)
    assert isinstance(r, SGDState) and (r.step, r.count) == (2, 0)
    assert np.array_equal(r.momentum_buffer, a(0.0))
    assert s.momentum_buffer[0] == 4.0  # reset returned a new state
    w, r = opt.update(ws[-1], r, a(8.0))
    assert w[0] == -6.0 and r.momentum_buffer[0] == 8.0 and (r.step, r.count) == (3, 1)


def test_init_state():
    s = SGD(momentum=0.9).init(a(1.0, 2.0, 3.0))
    assert (s.step, s.count) == (0, 0) and np.array_equal(s.momentum_buffer, np.zeros(3))


def test_state_from_another_problem_size_raises():
    opt = SGD(lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum_buffer"):
        opt.update(a(1.0, 2.0), opt.init(a(1.0, 2.0, 3.0)), a(1.0, 1.0))


def test_state_of_another_optimizer_raises():
    w = a(1.0)
    with pytest.raises(TypeError, match="state must be a SGDState"):
        SGD().update(w, Adam().init(w), a(1.0))


@given(problems(t_min=2, t_max=4), st.sampled_from(["pytorch", "optax", "keras"]))
def test_inputs_never_mutated(prob, convention):
    """update() copies: w, g and the state's arrays are unchanged; new arrays return."""
    w0, grads = prob
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.01, convention=convention)
    _, state = run(opt, w0, grads[:1])
    w, g = w0.copy(), grads[1].copy()
    buf = state.momentum_buffer.copy()
    w_new, new = opt.update(w, state, g)
    assert np.array_equal(w, w0) and np.array_equal(g, grads[1])
    assert np.array_equal(state.momentum_buffer, buf)
    assert w_new is not w and new.momentum_buffer is not state.momentum_buffer


def test_diverging_update_raises():
    """An overflowing update is reported, not returned as inf."""
    with np.errstate(over="ignore"), pytest.raises(FloatingPointError, match="SGD"):
        SGD(lr=1e300).update(a(0.0), SGD().init(a(0.0)), a(1e300))


# ---------------------------------------------------------------------------------------
# validation

@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(lr=-0.1), ValueError, "lr"),
    (dict(lr=float("nan")), ValueError, "lr"),
    (dict(lr=float("inf")), ValueError, "lr"),
    (dict(lr="0.1"), TypeError, "lr"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(momentum=float("nan")), ValueError, "momentum"),
    (dict(momentum=True), TypeError, "momentum"),
    (dict(momentum=0.9, dampening=-0.1), ValueError, "dampening"),
    (dict(momentum=0.9, dampening=1.5), ValueError, "dampening"),
    (dict(momentum=0.9, dampening=float("inf")), ValueError, "dampening"),
    (dict(weight_decay=-1e-4), ValueError, "weight_decay"),
    (dict(weight_decay=float("nan")), ValueError, "weight_decay"),
    (dict(nesterov=True), ValueError, "nesterov"),
    (dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "nesterov"),
    (dict(momentum=0.9, dampening=0.1, convention="optax"), ValueError, "dampening"),
    (dict(momentum=0.9, dampening=0.1, convention="keras"), ValueError, "dampening"),
    (dict(convention="tensorflow"), ValueError, "convention"),
    (dict(convention="PyTorch"), ValueError, "convention"),
    (dict(nesterov=1, momentum=0.9), TypeError, "nesterov"),
    (dict(maximize=0), TypeError, "maximize"),
])
def test_bad_hyperparameters_raise(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        SGD(**kwargs)


def test_boundary_hyperparameters_accepted():
    """The closed ends of the ranges: lr = 0, dampening = 1, weight_decay = 0."""
    SGD(lr=0.0, momentum=0.0)
    SGD(momentum=0.5, dampening=1.0)
    assert SGD(lr=np.float64(0.5)).lr.constant == 0.5


@pytest.mark.parametrize("w, exc", [
    ([1.0, 2.0], TypeError),
    (np.array([1.0, 2.0], dtype=np.float32), TypeError),
    (np.array([1, 2]), TypeError),
    (np.ones((2, 2)), ValueError),
    (np.arange(4.0)[::2], TypeError),
    (np.array([1.0, np.nan]), ValueError),
    (np.array([np.inf, 1.0]), ValueError),
    (np.zeros(0), ValueError),
])
def test_bad_parameter_vectors_raise(w, exc):
    """w is checked by init, update and step; g by update."""
    opt = SGD(lr=0.1)
    good = np.ones(2)
    with pytest.raises(exc, match="w"):
        opt.init(w)
    with pytest.raises(exc, match="w"):
        opt.update(w, opt.init(good), good)
    with pytest.raises(exc, match="w"):
        opt.step(w, opt.init(good), lambda x: (0.0, good))
    with pytest.raises(exc, match="g"):
        opt.update(good, opt.init(good), w)


def test_gradient_of_wrong_length_raises():
    opt = SGD(lr=0.1)
    with pytest.raises(ValueError, match="g must have length 2"):
        opt.update(np.ones(2), opt.init(np.ones(2)), np.ones(3))
