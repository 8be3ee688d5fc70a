"""Model EMA (proofs/sources.md#model-ema): start conventions, exact debiasing, warm-up schedules, wrapping.

Most hand-computed cases use binary-exact numbers (lr 0.25, decay 0.5, w on a grid of
1/16) so that every intermediate value is exact and the comparison is bitwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl.optimizers import EMA, FAME, SAM, SGD, Adam, EMAState, StableSAM, SwitchEMA
from refimpl.problems.quadratic import Quadratic

from conftest import vectors

EPS = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).smallest_subnormal

W0 = np.array([1.0, -1.0])
G = np.array([1.0, 2.0])


def constant_oracle(g=G):
    """The fixed gradient oracle ``w -> (0, g)``; returns a fresh copy every call."""
    return lambda w: (0.0, g.copy())


def run(opt, w0, grad_fn, steps):
    """Step ``opt`` ``steps`` times; return the list of (w, state) after each step."""
    w, state = w0, opt.init(w0)
    out = []
    for _ in range(steps):
        w, state, _ = opt.step(w, state, grad_fn)
        out.append((w, state))
    return out


# -- hand-computed first steps ------------------------------------------------------


def test_copy_start_first_steps_by_hand():
    """start="copy" (timm V2, V3 without step=): ema_0 = w0, then the EMA recursion.

    SGD lr 0.25, g = (1, 2): w1 = (0.75, -1.5), w2 = (0.5, -2), w3 = (0.25, -2.5).
    decay 0.5: ema1 = .5*(1,-1) + .5*(.75,-1.5) = (0.875, -1.25)
               ema2 = .5*ema1 + .5*w2 = (0.6875, -1.625)
               ema3 = .5*ema2 + .5*w3 = (0.46875, -2.0625)     (all binary-exact)
    """
    opt = EMA(SGD(lr=0.25), decay=0.5)
    state = opt.init(W0)
    assert np.array_equal(opt.average(state), W0)
    steps = run(opt, W0, constant_oracle(), 3)
    expected_w = [[0.75, -1.5], [0.5, -2.0], [0.25, -2.5]]
    expected_ema = [[0.875, -1.25], [0.6875, -1.625], [0.46875, -2.0625]]
    for (w, s), ew, ee in zip(steps, expected_w, expected_ema):
        assert np.array_equal(w, ew)
        assert np.array_equal(s.ema, ee)
        assert np.array_equal(opt.average(s), ee)
        assert s.decay_product == 0.5 ** s.step


def test_zeros_start_first_steps_by_hand():
    """start="zeros" (optax): raw buffer from 0, average = ema / (1 - prod decays).

    Same run as above. ema1 = .5*0 + .5*w1 = (0.375, -0.75); average = ema1 / (1 - .5)
    = (0.75, -1.5) = w1.  ema2 = .5*ema1 + .5*w2 = (0.4375, -1.375); average = ema2 / .75
    = (7/12, -11/6) (each a single correctly rounded division, equal to Python's 7/12).
    """
    opt = EMA(SGD(lr=0.25), decay=0.5, start="zeros")
    (w1, s1), (w2, s2) = run(opt, W0, constant_oracle(), 2)
    assert np.array_equal(s1.ema, [0.375, -0.75])
    assert np.array_equal(opt.average(s1), [0.75, -1.5])
    assert np.array_equal(s2.ema, [0.4375, -1.375])
    assert s2.decay_product == 0.25
    assert np.array_equal(opt.average(s2), [7 / 12, -11 / 6])


def test_first_start_by_hand_torch_averaged_model():
    """start="first" (torch AveragedModel's documented loop: update_parameters after every
    optimizer step, the first call copies the model). Same run as above (decay 0.5):
    before any step the average is w0; ema1 = w1 = (0.75, -1.5) (not a mix with w0);
    ema2 = .5 w1 + .5 w2 = (0.625, -1.75); ema3 = .5 ema2 + .5 w3 = (0.4375, -2.125)."""
    opt = EMA(SGD(lr=0.25), decay=0.5, start="first")
    assert np.array_equal(opt.average(opt.init(W0)), W0)
    steps = run(opt, W0, constant_oracle(), 3)
    expected = [[0.75, -1.5], [0.625, -1.75], [0.4375, -2.125]]
    for (_, s), e in zip(steps, expected):
        assert np.array_equal(opt.average(s), e)
    assert [opt.decay_at(n) for n in (1, 2, 3)] == [0.0, 0.5, 0.5]


@given(decay=st.floats(0.0, 0.999), steps=st.integers(1, 12), seed=st.integers(0, 99))
def test_first_start_is_copy_start_one_step_later(decay, steps, seed):
    """start="first" after steps 1..n equals start="copy" begun at w1 (the iterate after
    step 1) and fed w2..wn: the first update is a copy, then the same recursion. Bit for
    bit, on the noisy quadratic's SGD iterates."""
    from refimpl.problems.quadratic import NoisyQuadratic
    problem = NoisyQuadratic(np.array([1.0, 0.5, 2.0]), batch_size=2)
    noise = problem.draw_noise(steps, seed)
    base = SGD(lr=0.1, momentum=0.5)
    first = EMA(base, decay=decay, start="first")
    w, state = np.array([1.0, -1.0, 0.5]), first.init(np.array([1.0, -1.0, 0.5]))
    iterates = []
    for t in range(steps):
        w, state, _ = first.step(w, state, problem.grad_fn(noise[t]))
        iterates.append(w)
    ema = iterates[0].copy()
    for x in iterates[1:]:
        ema = decay * ema + (1.0 - decay) * x
    assert np.array_equal(first.average(state), ema)


def test_first_start_with_update_every_and_timm_update_after_step():
    """The first update copies whatever step it falls on: update_every = 3 -> the update
    after step 3 copies w3 (decay_at(3) = 0), later ones use the decay. timm ModelEmaV3
    with step= and no warm-up: decay 0 while n <= update_after_step + 1, here 1..3 for
    update_after_step = 2, then 0.9. With start="copy" update_after_step does nothing
    without warm-up."""
    every3 = EMA(SGD(lr=0.25), decay=0.5, start="first", update_every=3)
    assert [every3.decay_at(n) for n in (3, 6)] == [0.0, 0.5]
    steps = run(every3, W0, constant_oracle(), 6)
    w3 = steps[2][0]
    assert np.array_equal(every3.average(steps[1][1]), W0)  # no update yet
    assert np.array_equal(every3.average(steps[2][1]), w3)
    assert np.array_equal(every3.average(steps[5][1]), 0.5 * w3 + 0.5 * steps[5][0])
    timm = EMA(SGD(), decay=0.9, start="first", update_after_step=2)
    assert [timm.decay_at(n) for n in range(1, 6)] == [0.0, 0.0, 0.0, 0.9, 0.9]
    assert EMA(SGD(), decay=0.9, update_after_step=2).decay_at(1) == 0.9


def test_zeros_start_before_any_update_is_zero_vector():
    """Before the first EMA update nothing has been averaged: the zero-start average is 0
    (the product of decays is the empty product 1, and no 0/0 is formed)."""
    opt = EMA(SGD(lr=0.25), decay=0.5, start="zeros", update_every=2)
    state = opt.init(W0)
    assert np.array_equal(opt.average(state), np.zeros(2))
    (_, s1), = run(opt, W0, constant_oracle(), 1)
    assert s1.decay_product == 1.0
    assert np.array_equal(opt.average(s1), np.zeros(2))


def test_decay_is_not_mmcv_momentum():
    """``decay`` weights the OLD average (openmixup's "momentum"); mmcv/mmdet's momentum is
    1 - decay. w0 = 0, w1 = 1, decay 0.9: ema1 = 0.9*0 + (1 - 0.9)*1 = 0.1; the mmcv
    reading (ema = (1 - m) ema + m w with m = 0.9) would give 0.9."""
    opt = EMA(SGD(lr=1.0), decay=0.9)
    (_, s1), = run(opt, np.zeros(1), constant_oracle(np.array([-1.0])), 1)
    # one rounding in 1 - 0.9 (0.09999999999999998), times 1 exactly
    assert s1.ema[0] == pytest.approx(0.1, rel=2 * EPS, abs=0)


def test_zeros_average_is_debiased_not_raw():
    """A zero-start average that were NOT debiased would report (1 - decay) * w after
    one step. With SGD lr 0 (w constant = c): raw buffer = 0.1 c, average = c."""
    c = np.array([3.0, -5.0, 0.25])
    opt = EMA(SGD(lr=0.0), decay=0.9, start="zeros")
    (_, s1), = run(opt, c, constant_oracle(np.ones(3)), 1)
    # raw: 0.9*0 + fl(1 - 0.9) * c, one rounding in the product: 2 eps relative
    np.testing.assert_allclose(s1.ema, 0.1 * c, rtol=2 * EPS, atol=0)
    assert not np.allclose(s1.ema, c)
    # average: fl(fl(a c) / a) with a = fl(1 - 0.9): within 1 ulp of c (two roundings)
    np.testing.assert_allclose(opt.average(s1), c, rtol=2 * EPS, atol=0)


# -- EMA-debias ---------------------------------------------------------------------


def _warmup_kwargs(draw):
    warmup = draw(st.sampled_from([None, "timm", "constant", "linear", "exp"]))
    kw = {"warmup": warmup}
    if warmup == "timm":
        kw.update(update_after_step=draw(st.integers(0, 4)),
                  warmup_gamma=draw(st.sampled_from([0.5, 1.0, 3.0])),
                  warmup_power=draw(st.sampled_from([2 / 3, 0.75, 1.0, 2.0])))
    elif warmup is not None:
        kw.update(warmup_steps=draw(st.integers(1, 8)),
                  warmup_ratio=draw(st.sampled_from([0.1, 0.5, 0.9, 1.0])))
    return kw


@st.composite
def ema_configs(draw):
    decay = draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999]),
                           st.floats(0.0, 0.999)))
    kw = _warmup_kwargs(draw)
    if kw["warmup"] == "timm":
        kw["min_decay"] = draw(st.sampled_from([0.0, 0.5 * decay, decay]))
    return dict(decay=decay, update_every=draw(st.integers(1, 3)), **kw)


@pytest.mark.claim("EMA-debias")
@given(config=ema_configs(), c=vectors(1, 4, lo=-1e6, hi=1e6), steps=st.integers(1, 30))
def test_debiased_zero_start_reproduces_a_constant(config, c, steps):
    """EMA-debias: with w constant (SGD lr 0) the debiased zero-start average equals the
    constant at every step after the first update, for every warm-up schedule and
    update_every (the debias divides by 1 - the product of the decays ACTUALLY used).

    Not bitwise: each EMA step is a convex combination with 3 roundings (relative error
    grows by <= 3 eps per update), and 1 - P_n (P_n = product of n rounded factors,
    relative error n eps) cancels, amplifying that error by P_n / (1 - P_n). Bound:
    |avg - c| <= (3 n + 2 + n P_n / (1 - P_n)) eps |c|, plus, for subnormal values, the
    absolute rounding of <= 2 n half-ulps of the smallest subnormal, divided by 1 - P_n.
    """
    opt = EMA(SGD(lr=0.0), start="zeros", **config)
    w, state = c, opt.init(c)
    updates = 0
    for n in range(1, steps + 1):
        w, state, _ = opt.step(w, state, constant_oracle(np.ones_like(c)))
        assert np.array_equal(w, c)
        if n % opt.update_every:
            continue
        updates += 1
        p = state.decay_product
        assert p < 1.0  # every decay used is < 1
        bound = (3 * updates + 2 + updates * p / (1.0 - p)) * EPS
        slack = 2 * updates * TINY / (1.0 - p)
        err = np.abs(opt.average(state) - c)
        assert np.all(err <= bound * np.abs(c) + slack), (n, err, bound)


@pytest.mark.claim("EMA-debias")
@given(config=ema_configs(), steps=st.integers(1, 30))
def test_decay_product_is_product_of_decays_used(config, steps):
    """The debias denominator uses the decays used at the update steps, multiplied in
    order from 1.0 (bitwise), not decay ** n (optax's formula, which is only right
    without warm-up and with update_every = 1)."""
    opt = EMA(SGD(lr=0.0), start="zeros", **config)
    w, state = np.ones(2), opt.init(np.ones(2))
    product = 1.0
    for n in range(1, steps + 1):
        w, state, _ = opt.step(w, state, constant_oracle(np.ones(2)))
        if n % opt.update_every == 0:
            product = product * opt.decay_at(n)
        assert state.decay_product == product


def test_debias_bitwise_in_exact_arithmetic():
    """decay 0.5 and c a power of two: ema_n = (1 - 2^-n) c, P_n = 2^-n and the division
    are all exact for n <= 52, so the debiased average equals c bit for bit."""
    c = np.array([4.0, -0.125, 1.0])
    opt = EMA(SGD(lr=0.0), decay=0.5, start="zeros")
    for n, (_, s) in enumerate(run(opt, c, constant_oracle(np.ones(3)), 40), start=1):
        assert np.array_equal(s.ema, (1.0 - 0.5 ** n) * c)
        assert np.array_equal(opt.average(s), c)


def test_debias_with_warmup_by_hand():
    """timm warm-up (power 1, gamma 1, update_after_step 0) with zero start, w = c = 3:
    decays 0, 1/2, 2/3 at n = 1, 2, 3.  ema1 = 0 + 1*3 = 3, P = 0 -> average 3/1 = 3
    (exact: the first update copies). ema2 = .5*3 + .5*3 = 3, P = 0 -> average 3.
    A debias with decay ** n (0.9 ** 2 = 0.81) would give 3 / 0.19 instead."""
    opt = EMA(SGD(lr=0.0), decay=0.9, start="zeros", warmup="timm", warmup_power=1.0)
    steps = run(opt, np.array([3.0]), constant_oracle(np.ones(1)), 3)
    for _, s in steps[:2]:
        assert s.decay_product == 0.0
        assert np.array_equal(s.ema, [3.0])
        assert np.array_equal(opt.average(s), [3.0])
    # step 3: decay fl(1 - 1/3); ema still 3 up to 2 roundings
    assert opt.average(steps[2][1])[0] == pytest.approx(3.0, rel=4 * EPS, abs=0)


# -- EMA-compose --------------------------------------------------------------------


@pytest.mark.claim("EMA-compose")
@given(a=vectors(3, 3, lo=-1e3, hi=1e3), x=vectors(3, 3, lo=-1e3, hi=1e3),
       decay=st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.floats(0.0, 0.999)),
       k=st.integers(1, 20))
def test_k_updates_toward_fixed_target_equal_one_with_decay_power_k(a, x, decay, k):
    """EMA-compose: from ema = a (start "copy", w0 = a), SGD lr = [1, 0, 0, ...] with the
    gradient a - x jumps once to the target t = fl(a - fl(a - x)) and stays; k EMA
    updates with decay b equal one update with b ** k.

    Tolerance (3 k + 6) eps max(|a|, |t|): each update rounds 3 times (<= 3 eps of the
    larger magnitude, later damped by b <= 1); the one-shot side has 3 roundings plus
    the rounding of b ** k and 1 - b ** k.
    """
    lrs = np.zeros(k)
    lrs[0] = 1.0
    oracle = constant_oracle(a - x)
    many = run(EMA(SGD(lr=lrs), decay=decay), a, oracle, k)
    one = run(EMA(SGD(lr=lrs[:1]), decay=decay ** k), a, oracle, 1)
    target = one[0][0]
    assert np.array_equal(many[-1][0], target)  # lr 0 keeps w at the target
    scale = np.maximum(np.abs(a), np.abs(target))
    tol = (3 * k + 6) * EPS * scale + (3 * k + 6) * TINY
    assert np.all(np.abs(many[-1][1].ema - one[0][1].ema) <= tol)


# -- update_every -------------------------------------------------------------------


def test_update_every_updates_only_after_multiples():
    """update_every = 3: the EMA moves only after steps 3 and 6 (n % 3 == 0), with the
    parameters of those steps: w3 = (0.25, -2.5), w6 = (-0.5, -4).
    ema3 = .5*(1,-1) + .5*w3 = (0.625, -1.75); ema6 = .5*ema3 + .5*w6 = (0.0625, -2.875).
    Updating after steps 1, 4, 7 ((n - 1) % k == 0) would move it at step 1."""
    opt = EMA(SGD(lr=0.25), decay=0.5, update_every=3)
    emas = [s.ema for _, s in run(opt, W0, constant_oracle(), 7)]
    assert np.array_equal(emas[0], W0) and np.array_equal(emas[1], W0)
    assert np.array_equal(emas[2], [0.625, -1.75])
    assert np.array_equal(emas[3], emas[2]) and np.array_equal(emas[4], emas[2])
    assert np.array_equal(emas[5], [0.0625, -2.875])
    assert np.array_equal(emas[6], emas[5])


def test_update_every_uses_optimizer_step_for_warmup():
    """With update_every = 2 the warm-up is evaluated at the optimizer step n (timm V3's
    step, ema-pytorch's call counter), not at the update count: at n = 2 the timm decay
    (power 1) is s / (1 + s) with s = 1, i.e. 0.5, so ema2 = .5*w0 + .5*w2 =
    (0.75, -1.5). Counting updates (1 -> decay 0) would give ema2 = w2 = (0.5, -2)."""
    opt = EMA(SGD(lr=0.25), decay=0.99, update_every=2, warmup="timm", warmup_power=1.0)
    (_, s1), (_, s2) = run(opt, W0, constant_oracle(), 2)
    assert np.array_equal(s1.ema, W0)
    assert np.array_equal(s2.ema, [0.75, -1.5])


# -- warm-up schedules --------------------------------------------------------------


def test_timm_warmup_boundaries():
    """timm/ema-pytorch: s = max(0, n - u - 1); decay 0 if s <= 0 else
    clamp(1 - (1 + s/gamma) ** -power, min_decay, decay). u = update_after_step = 5:
    n = 5 -> 0, n = 6 -> 0, n = 7 (s = 1) -> 1 - 2 ** (-2/3) = 0.37003947505256...;
    the exponent is NEGATIVE: 1 - 2 ** (+2/3) would be negative."""
    opt = EMA(SGD(), decay=0.9999, warmup="timm", update_after_step=5)
    assert opt.decay_at(1) == 0.0
    assert opt.decay_at(5) == 0.0
    assert opt.decay_at(6) == 0.0
    assert opt.decay_at(7) == pytest.approx(0.3700394750525634, rel=4 * EPS, abs=0)
    # large s approaches decay from below: s = 10**6 -> 1 - (10**6 + 1) ** (-2/3) ~ 0.9999
    assert opt.decay_at(10 ** 6 + 6) == 0.9999


def test_timm_warmup_clamps():
    """Clamp from below by min_decay (only once s > 0: ema-pytorch returns 0 while
    s <= 0) and from above by decay; gamma divides s.
    power 1: value = 1 - 1/(1 + s/gamma).
    min_decay 0.45, u = 0: n = 1 -> 0 (not 0.45); n = 2 (s=1): 0.5; n = 2 with
    power 2/3 -> 0.370 < 0.45 -> 0.45.
    decay 0.6, power 1: s = 1 -> 0.5; s = 2 -> 2/3 > 0.6 -> 0.6.
    gamma 2, power 1: s = 1 -> 1 - 1/1.5 = 1/3 (1 - fl(2/3), within 2 ulps of 1/3)."""
    low = EMA(SGD(), decay=0.9, warmup="timm", min_decay=0.45)
    assert low.decay_at(1) == 0.0
    assert low.decay_at(2) == 0.45
    high = EMA(SGD(), decay=0.6, warmup="timm", warmup_power=1.0)
    assert high.decay_at(2) == 0.5
    assert high.decay_at(3) == 0.6
    assert high.decay_at(50) == 0.6
    gamma = EMA(SGD(), decay=0.9, warmup="timm", warmup_power=1.0, warmup_gamma=2.0)
    assert gamma.decay_at(2) == pytest.approx(1 / 3, rel=4 * EPS, abs=0)
    assert gamma.decay_at(3) == 0.5  # 1 - 1/(1 + 2/2), exact


def test_timm_warmup_through_steps():
    """timm warm-up, power 1, u = 0, through real steps: n = 1 decay 0 (copies w1),
    n = 2 decay 1/2, n = 3 decay min(2/3, 0.6) = 0.6.
    ema1 = w1 = (0.75, -1.5); ema2 = .5*ema1 + .5*(0.5, -2) = (0.625, -1.75);
    ema3 = 0.6*ema2 + fl(1 - 0.6)*(0.25, -2.5) = (0.475, -2.05) up to 3 roundings."""
    opt = EMA(SGD(lr=0.25), decay=0.6, warmup="timm", warmup_power=1.0)
    (_, s1), (_, s2), (_, s3) = run(opt, W0, constant_oracle(), 3)
    assert np.array_equal(s1.ema, [0.75, -1.5])
    assert np.array_equal(s2.ema, [0.625, -1.75])
    np.testing.assert_allclose(s3.ema, [0.475, -2.05], rtol=4 * EPS, atol=0)


def test_openmixup_warmups_by_hand():
    """openmixup (SEMA's code), i = n - 1, r = 0.5, T = 4, decay 0.8, for i <= T:
    constant r*decay = 0.4 for every i <= 4 (n <= 5), then 0.8.
    linear (1 - (1 - i/T)(1 - r)) decay: i=0 -> 0.4, i=2 -> 0.75*0.8, i=4 -> 0.8.
    exp r ** (1 - i/T) decay: i=0 -> 0.4, i=2 -> sqrt(.5)*.8 = 0.56568542494923..., i=4
    -> 0.8. i = T + 1 (n = 6) -> plain decay 0.8 for all three.
    A 1-based i (i = n) would give constant 0.8 at n = 5 and linear 0.5 at n = 1."""
    kw = dict(decay=0.8, warmup_ratio=0.5, warmup_steps=4)
    const = EMA(SGD(), warmup="constant", **kw)
    lin = EMA(SGD(), warmup="linear", **kw)
    exp = EMA(SGD(), warmup="exp", **kw)
    assert [const.decay_at(n) for n in (1, 3, 5, 6, 7)] == [0.4, 0.4, 0.4, 0.8, 0.8]
    assert lin.decay_at(1) == 0.4
    assert lin.decay_at(3) == pytest.approx(0.6, rel=2 * EPS, abs=0)
    assert lin.decay_at(5) == 0.8
    assert lin.decay_at(6) == 0.8
    assert exp.decay_at(1) == 0.4
    assert exp.decay_at(3) == pytest.approx(0.5656854249492381, rel=4 * EPS, abs=0)
    assert exp.decay_at(5) == 0.8
    assert exp.decay_at(6) == 0.8


def test_openmixup_constant_warmup_through_steps():
    """constant warm-up, decay 0.5, r = 0.5, T = 1: decays 0.25 (n=1, i=0), 0.25 (n=2,
    i=1=T), 0.5 (n=3).  ema1 = .25*(1,-1) + .75*(.75,-1.5) = (0.8125, -1.375);
    ema2 = .25*ema1 + .75*(.5,-2) = (0.578125, -1.84375);
    ema3 = .5*ema2 + .5*(.25,-2.5) = (0.4140625, -2.171875)   (binary-exact)."""
    opt = EMA(SGD(lr=0.25), decay=0.5, warmup="constant", warmup_ratio=0.5, warmup_steps=1)
    emas = [s.ema for _, s in run(opt, W0, constant_oracle(), 3)]
    assert np.array_equal(emas[0], [0.8125, -1.375])
    assert np.array_equal(emas[1], [0.578125, -1.84375])
    assert np.array_equal(emas[2], [0.4140625, -2.171875])


@given(config=ema_configs(), n=st.integers(1, 200))
def test_decay_at_in_range(config, n):
    """Every schedule returns a decay in [0, decay]: never above the target decay (so
    the EMA never averages longer than asked) and never negative."""
    opt = EMA(SGD(), **config)
    assert 0.0 <= opt.decay_at(n) <= opt.decay


# -- copies and immutability --------------------------------------------------------


@pytest.mark.parametrize("start", ["copy", "zeros", "first"])
def test_average_returns_a_copy(start):
    """Mutating the array returned by ``average`` changes neither the state nor later
    averages."""
    opt = EMA(SGD(lr=0.25), decay=0.5, start=start)
    (_, s1), = run(opt, W0, constant_oracle(), 1)
    raw = s1.ema.copy()
    avg = opt.average(s1)
    before = avg.copy()
    avg[:] = 123.0
    assert np.array_equal(s1.ema, raw)
    assert np.array_equal(opt.average(s1), before)
    assert opt.average(s1) is not opt.average(s1)


@pytest.mark.parametrize("start", ["copy", "zeros", "first"])
def test_inputs_never_mutated(start):
    """step leaves w, every array of the old state, the oracle's gradient and the lr
    array untouched, and init does not alias w0."""
    lrs = np.array([0.25, 0.125, 0.5])
    lrs_before = lrs.copy()
    opt = EMA(SGD(lr=lrs, momentum=0.9), decay=0.5, start=start)
    w0 = W0.copy()
    state = opt.init(w0)
    w0[:] = 7.0  # init must not alias w0
    assert np.array_equal(state.ema, np.zeros(2) if start == "zeros" else W0)
    g = G.copy()
    w = W0.copy()
    for _ in range(3):
        w_before = w.copy()
        ema_before = state.ema.copy()
        buf_before = state.inner.momentum_buffer.copy()
        w_new, new_state, _ = opt.step(w, state, lambda v: (0.0, g))
        assert np.array_equal(w, w_before)
        assert np.array_equal(state.ema, ema_before)
        assert np.array_equal(state.inner.momentum_buffer, buf_before)
        assert np.array_equal(g, G)
        assert w_new is not w and new_state.ema is not state.ema
        w, state = w_new, new_state
    assert np.array_equal(lrs, lrs_before)


# -- wrapping -----------------------------------------------------------------------

PROBLEM = Quadratic(np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.5]]),
                    np.array([1.0, -2.0, 0.5]))
BASES = {
    "SGD": SGD(lr=0.1, momentum=0.9),
    "Adam": Adam(lr=0.05),
    "FAME": FAME(lr=0.05),
    "SAM": SAM(SGD(lr=0.1, momentum=0.5), rho=0.05),
    "StableSAM": StableSAM(SGD(lr=0.1), rho=0.05),
}


def _assert_states_equal(a, b):
    assert type(a) is type(b)
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            _assert_states_equal(x, y)
        elif isinstance(x, np.ndarray):
            assert np.array_equal(x, y)
        else:
            assert x == y


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize("start", ["copy", "zeros", "first"])
def test_ema_over_each_optimizer(name, start):
    """EMA never feeds back into w: its iterates, step info and inner state equal the
    wrapped optimizer's bit for bit, and the buffer follows
    ema <- decay*ema + (1 - decay)*w (numpy with the kernel's order of operations)."""
    inner = BASES[name]
    opt = EMA(inner, decay=0.75, start=start)
    w0 = np.array([0.5, 0.25, -1.0])
    w_ref, s_ref = w0, inner.init(w0)
    w, state = w0, opt.init(w0)
    ema = np.zeros(3) if start == "zeros" else w0.copy()
    for n in range(1, 7):
        w_ref, s_ref, info_ref = inner.step(w_ref, s_ref, PROBLEM.grad_fn())
        w, state, info = opt.step(w, state, PROBLEM.grad_fn())
        decay = 0.0 if (start == "first" and n == 1) else 0.75  # "first": step 1 copies
        ema = decay * ema + (1.0 - decay) * w_ref
        assert np.array_equal(w, w_ref)
        assert info == info_ref
        _assert_states_equal(state.inner, s_ref)
        assert np.array_equal(state.ema, ema)


@pytest.mark.parametrize("outer", [EMA, SwitchEMA])
@pytest.mark.parametrize("inside", [EMA, SwitchEMA])
def test_ema_does_not_nest(outer, inside):
    """EMA/SwitchEMA over EMA/SwitchEMA is a TypeError that names the parameter and says
    they do not nest."""
    with pytest.raises(TypeError, match="inner.*do not nest"):
        outer(inside(SGD()))


@pytest.mark.parametrize("sam", [SAM, StableSAM])
def test_sam_over_ema_rejected(sam):
    """SAM(EMA(...)) is a TypeError whose message points to the canonical order
    EMA(SAM(base))."""
    with pytest.raises(TypeError, match=r"base.*EMA/SwitchEMA outside"):
        sam(EMA(SGD()))


def test_ema_rejects_non_optimizer():
    with pytest.raises(TypeError, match="inner"):
        EMA(PROBLEM)


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_invalid_decay(decay):
    """decay must be in [0, 1): 1 would freeze the average, nan would poison it."""
    with pytest.raises(ValueError, match="decay"):
        EMA(SGD(), decay=decay)


def test_decay_type_and_edges():
    with pytest.raises(TypeError, match="decay"):
        EMA(SGD(), decay="0.9")
    assert EMA(SGD(), decay=0.0).decay == 0.0
    assert EMA(SGD(), decay=np.float32(0.5)).decay == 0.5


@pytest.mark.parametrize("kw,exc,name", [
    (dict(update_every=0), ValueError, "update_every"),
    (dict(update_every=-2), ValueError, "update_every"),
    (dict(update_every=1.0), TypeError, "update_every"),
    (dict(start="ones"), ValueError, "start"),
    (dict(start=None), ValueError, "start"),
    (dict(warmup="cosine"), ValueError, "warmup"),
    (dict(warmup="constant"), ValueError, "warmup_steps"),
    (dict(warmup="linear", warmup_steps=0), ValueError, "warmup_steps"),
    (dict(warmup="exp"), ValueError, "warmup_steps"),
    (dict(warmup_steps=-1), ValueError, "warmup_steps"),
    (dict(warmup_ratio=0.0), ValueError, "warmup_ratio"),
    (dict(warmup_ratio=-0.5), ValueError, "warmup_ratio"),
    (dict(warmup_ratio=1.5), ValueError, "warmup_ratio"),
    (dict(warmup_ratio=float("nan")), ValueError, "warmup_ratio"),
    (dict(min_decay=-0.1), ValueError, "min_decay"),
    (dict(decay=0.9, min_decay=0.95), ValueError, "min_decay"),
    (dict(warmup_gamma=0.0), ValueError, "warmup_gamma"),
    (dict(warmup_gamma=-1.0), ValueError, "warmup_gamma"),
    (dict(warmup_power=0.0), ValueError, "warmup_power"),
    (dict(warmup_power=-2 / 3), ValueError, "warmup_power"),
    (dict(update_after_step=-1), ValueError, "update_after_step"),
])
def test_invalid_hyperparameters(kw, exc, name):
    with pytest.raises(exc, match=name):
        EMA(SGD(), **kw)


def test_valid_edge_hyperparameters():
    """The closed ends of the ranges are accepted: warmup_ratio 1, min_decay = decay,
    warmup_steps 1 with an openmixup warm-up."""
    EMA(SGD(), warmup="linear", warmup_ratio=1.0, warmup_steps=1)
    opt = EMA(SGD(), decay=0.9, warmup="timm", min_decay=0.9)
    assert opt.decay_at(2) == 0.9


def test_invalid_step_arguments():
    opt = EMA(SGD(lr=0.25), decay=0.5)
    state = opt.init(W0)
    with pytest.raises(ValueError, match="n"):
        opt.decay_at(0)
    with pytest.raises(TypeError, match="epoch_end"):
        opt.step(W0, state, constant_oracle(), epoch_end=1)
    with pytest.raises(TypeError, match="state"):
        opt.step(W0, state.inner, constant_oracle())
    with pytest.raises(TypeError, match="state"):
        opt.average(state.inner)
    assert isinstance(state, EMAState)


def test_frozen_hyperparameters():
    """Hyperparameters cannot change under a running state."""
    opt = EMA(SGD(), decay=0.5)
    with pytest.raises(AttributeError):
        opt.decay = 0.9


def test_timm_default_power_is_two_thirds():
    """ema-pytorch / timm defaults: gamma 1, power 2/3."""
    opt = EMA(SGD())
    assert opt.warmup_gamma == 1.0
    assert opt.warmup_power == 2 / 3


def test_first_start_with_the_largest_update_after_step_trains():
    """update_after_step = 2**63 - 1 (its allowed maximum) with start="first": every
    reachable update copies w, so the average is w itself; the loop must not overflow
    its int64 argument (copy_until = 2**63 was an OverflowError in the loop, and in the
    jitted decay_at once the cached int64 signature was used)."""
    import refimpl as r
    opt = EMA(SGD(lr=0.1), start="first", update_after_step=2 ** 63 - 1)
    assert opt.decay_at(5) == 0.0
    rec = r.train(r.Quadratic(np.eye(2)), opt, w0=np.ones(2), steps=3, record_params=True)
    assert np.array_equal(rec.averages[1:], rec.params[1:])
