"""SWA and Lookahead (refimpl.optimizers.averagers; proofs/sources.md#swa-and-lookahead):
hand-computed runs on binary-exact numbers, the reductions the issue names (SWA over one
snapshot is a copy, Lookahead with alpha = 1 is the fast optimizer, Lookahead is Switch
EMA updated and switched every k steps), the mean of the snapshots against an exactly
rounded sum, the jitted loop, and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refimpl as r
from refimpl.optimizers import LookaheadState, SWAState
from tests.helpers import hand_run

EPS = np.finfo(np.float64).eps
W0 = np.array([1.0, -1.0])
G = np.array([1.0, 2.0])


def constant_oracle(w):
    return 0.0, G.copy()


def run(opt, steps, w0=W0, oracle=constant_oracle, spe=None):
    """(w, state) after each step of the step API."""
    w, s = w0, opt.init(w0)
    out = []
    for t in range(steps):
        w, s, _ = opt.step(w, s, oracle, epoch_end=spe is not None and (t + 1) % spe == 0)
        out.append((w, s))
    return out


# -------------------------------------------------------------------------------- SWA

def test_swa_by_hand():
    """SGD lr 0.25 on the constant gradient (1, 2): w1 = (0.75, -1.5), w2 = (0.5, -2),
    w3 = (0.25, -2.5), w4 = (0, -3). Snapshots after steps 2, 3, 4 (swa_start 1, every
    step): the average is w0 before, then w2 (a copy), (w2 + w3) / 2 = (0.375, -2.25),
    (w2 + w3 + w4) / 3 = (0.25, -2.5); all binary-exact. The iterates are SGD's."""
    opt = r.SWA(r.SGD(lr=0.25), swa_unit="step", swa_start=1)
    steps = run(opt, 4)
    expected = [[1.0, -1.0], [0.5, -2.0], [0.375, -2.25], [0.25, -2.5]]
    for (w, s), e in zip(steps, expected):
        assert np.array_equal(opt.average(s), e)
    assert [s.count for _, s in steps] == [0, 1, 2, 3]
    assert np.array_equal(steps[-1][0], [0.0, -3.0])


def test_swa_epochs_follow_torchs_recipe():
    """torch: ``if epoch > swa_start: swa_model.update_parameters(model)`` at the end of
    epoch ``epoch`` (from 0). With swa_start = 1 there that is refimpl's swa_start = 2:
    4 steps per epoch, snapshots after steps 12 and 16 (the ends of epochs 2 and 3 from
    0), none before. swa_every = 2 keeps every second epoch end (steps 8 and 16)."""
    opt = r.SWA(r.SGD(lr=0.25), swa_start=2)
    counts = [s.count for _, s in run(opt, 16, spe=4)]
    assert [n for n in range(1, 17) if counts[n - 1] > (counts[n - 2] if n > 1 else 0)] == [12, 16]
    every2 = r.SWA(r.SGD(lr=0.25), swa_every=2)
    counts = [s.count for _, s in run(every2, 16, spe=4)]
    assert [n for n in range(1, 17) if counts[n - 1] > (counts[n - 2] if n > 1 else 0)] == [8, 16]


def test_swa_over_one_snapshot_is_a_copy():
    """A single snapshot is the iterate itself, bit for bit (no (w - avg) / 1 rounding)."""
    rng = np.random.default_rng(1)
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    w0 = rng.standard_normal(3)
    opt = r.SWA(r.SGD(lr=0.1, momentum=0.9), swa_every=7, swa_unit="step")
    rec = r.train(problem, opt, w0=w0, steps=10, seed=3, record_params=True)
    assert np.array_equal(rec.averages[7], rec.params[7])
    assert np.array_equal(rec.average, rec.params[7])


@given(seed=st.integers(0, 10 ** 6), steps=st.integers(1, 40), every=st.integers(1, 4))
def test_swa_is_the_mean_of_its_snapshots(seed, steps, every):
    """The running form avg + (w - avg) / (k + 1) against the exactly rounded mean
    fsum(snapshots) / K of the recorded iterates: each update rounds 3 times and carries
    the earlier error with weight k / (k + 1) < 1, so after K snapshots the error is at
    most 3 K u max|w| (u = eps / 2), plus the final division's half ulp."""
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    w0 = np.random.default_rng(seed).standard_normal(3)
    opt = r.SWA(r.SGD(lr=0.2, momentum=0.5), swa_every=every, swa_unit="step")
    rec = r.train(problem, opt, w0=w0, steps=steps, seed=seed, record_params=True)
    snaps = rec.params[every::every]
    if snaps.shape[0] == 0:
        assert np.array_equal(rec.average, w0)
        return
    K = snaps.shape[0]
    exact = np.array([math.fsum(snaps[:, i]) / K for i in range(3)])
    scale = np.max(np.abs(snaps))
    assert np.all(np.abs(rec.average - exact) <= (1.5 * K + 1) * EPS * scale)


def test_swa_never_changes_the_iterates():
    base = r.SGD(lr=0.1, momentum=0.9, nesterov=True)
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    w0 = np.array([1.0, -2.0, 0.5])
    a = r.train(problem, r.SWA(base, swa_unit="step"), w0=w0, steps=30, seed=1, record_params=True)
    b = r.train(problem, base, w0=w0, steps=30, seed=1, record_params=True)
    assert np.array_equal(a.params, b.params)


# -------------------------------------------------------------------------- Lookahead

def test_lookahead_by_hand():
    """Same SGD run, k = 2, alpha = 0.5, start "copy" (slow = w0 = (1, -1)):
    step 2: fast (0.5, -2), slow = (1, -1) + 0.5 ((0.5, -2) - (1, -1)) = (0.75, -1.5) = w;
    steps 3, 4 from there: (0.5, -2), (0.25, -2.5); slow = (0.5, -2) = w.
    start "first" (timm): the first sync copies the fast weights (0.5, -2) and w stays;
    steps 3, 4: (0.25, -2.5), (0, -3); slow = (0.25, -2.5) = w."""
    paper = run(r.Lookahead(r.SGD(lr=0.25), k=2, alpha=0.5), 4)
    assert np.array_equal(paper[0][0], [0.75, -1.5])
    assert np.array_equal(paper[1][0], [0.75, -1.5]) and np.array_equal(paper[1][1].slow, [0.75, -1.5])
    assert np.array_equal(paper[3][0], [0.5, -2.0]) and paper[3][1].count == 2
    timm = run(r.Lookahead(r.SGD(lr=0.25), k=2, alpha=0.5, start="first"), 4)
    assert np.array_equal(timm[1][0], [0.5, -2.0]) and np.array_equal(timm[1][1].slow, [0.5, -2.0])
    assert np.array_equal(timm[3][0], [0.25, -2.5]) and np.array_equal(timm[3][1].slow, [0.25, -2.5])


def test_lookahead_with_alpha_one_is_the_fast_optimizer():
    """alpha = 1: slow + (w - slow) = w whenever w - slow is exact (Sterbenz: slow and w
    within a factor 2, same sign) and, here, on a dyadic run where every value is a
    multiple of 1/64: bit for bit equal to the fast optimizer, with momentum."""
    base = r.SGD(lr=0.25, momentum=0.5)
    w_la = [w for w, _ in run(r.Lookahead(base, k=3, alpha=1.0), 12)]
    w_b = [w for w, _ in run(base, 12)]
    assert all(np.array_equal(a, b) for a, b in zip(w_la, w_b))


@pytest.mark.parametrize("k, alpha, start, on_sync", [
    (1, 0.5, "copy", "keep"), (3, 0.25, "copy", "reset"), (4, 0.75, "first", "keep")])
def test_lookahead_is_switch_ema_every_k_steps(k, alpha, start, on_sync):
    """Lookahead(k, alpha) and SwitchEMA(decay = 1 - alpha, update_every = k, switch
    every k steps): the same iterates. With dyadic alpha, decay and a dyadic SGD run both
    forms are exact, so they agree bit for bit (k = 1 is SEMA switching every step)."""
    base = r.SGD(lr=0.25, momentum=0.5)
    la = r.Lookahead(base, k=k, alpha=alpha, start=start, on_sync=on_sync)
    sema = r.SwitchEMA(base, decay=1.0 - alpha, update_every=k, start=start,
                       switch_unit="step", switch_every=k,
                       on_switch="reset" if on_sync == "reset" else "keep")
    for (wa, sa), (wb, sb) in zip(run(la, 16), run(sema, 16)):
        assert np.array_equal(wa, wb)
        assert np.array_equal(la.average(sa), sema.average(sb))


@given(seed=st.integers(0, 10 ** 6), k=st.integers(1, 5), alpha=st.floats(0.05, 1.0))
def test_lookahead_is_switch_ema_to_rounding(seed, k, alpha):
    """On random noisy runs the two forms differ only by rounding: the sync's
    slow + alpha (w - slow) against decay slow + (1 - decay) w rounds at most 3 + 3 times,
    and the coefficient 1 - (1 - alpha) is alpha to within eps; over 24 steps of a
    contracting run the iterates stay within 64 eps of the largest |w|."""
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    w0 = np.random.default_rng(seed).standard_normal(3)
    base = r.SGD(lr=0.1, momentum=0.5)
    a = r.train(problem, r.Lookahead(base, k=k, alpha=alpha), w0=w0, steps=24, seed=seed,
                record_params=True)
    b = r.train(problem, r.SwitchEMA(base, decay=1.0 - alpha, update_every=k,
                                     switch_unit="step", switch_every=k),
                w0=w0, steps=24, seed=seed, record_params=True)
    scale = np.max(np.abs(a.params))
    assert np.max(np.abs(a.params - b.params)) <= 64 * EPS * scale


def test_lookahead_reset_restarts_the_fast_optimizer():
    """on_sync = "reset": the step after a sync is the fast optimizer's FIRST step from
    the synced weights (PyTorch momentum: buf = g, no memory of the previous block)."""
    base = r.SGD(lr=0.25, momentum=0.5)
    steps = run(r.Lookahead(base, k=2, alpha=0.5, on_sync="reset"), 3)
    w_sync = steps[1][0]
    first, _ = base.update(w_sync, base.init(w_sync), G)
    assert np.array_equal(steps[2][0], first)
    kept = run(r.Lookahead(base, k=2, alpha=0.5), 3)
    assert not np.array_equal(kept[2][0], first)


# ---------------------------------------------------------------------------- the loop

@pytest.mark.parametrize("opt", [
    r.SWA(r.Adam(lr=0.05, amsgrad=True), swa_start=1),
    r.SWA(r.StableSAM(r.SGD(lr=0.05, momentum=0.9)), swa_every=3, swa_unit="step"),
    r.Lookahead(r.AdamW(lr=0.05), k=4, alpha=0.3, on_sync="reset"),
    r.Lookahead(r.SAM(r.FAME(lr=0.01), rho=0.1), k=3, alpha=0.8, start="first"),
], ids=["swa-amsgrad-epochs", "swa-stable-steps", "lookahead-adamw-reset", "lookahead-sam-fame"])
def test_train_is_the_step_api(opt):
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    w0 = np.array([1.0, -1.0, 0.5])
    rec = r.train(problem, opt, w0=w0, steps=30, steps_per_epoch=4, seed=2, record_params=True)
    params, *_, state = hand_run(problem, opt, w0, 30, steps_per_epoch=4, seed=2)
    assert np.array_equal(rec.params, params)
    assert np.array_equal(rec.average, opt.average(state))


def test_swa_epochs_need_steps_per_epoch():
    problem = r.NoisyQuadratic(np.array([1.0]), batch_size=1)
    with pytest.raises(ValueError, match="swa_unit='epoch'"):
        r.train(problem, r.SWA(r.SGD(lr=0.1)), w0=np.zeros(1), steps=3)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(swa_every=0), ValueError, "swa_every"), (dict(swa_every=1.5), TypeError, "swa_every"),
    (dict(swa_unit="iter"), ValueError, "swa_unit"), (dict(swa_start=-1), ValueError, "swa_start"),
])
def test_swa_validation(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        r.SWA(r.SGD(), **kwargs)


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(k=0), ValueError, "k"), (dict(k=True), TypeError, "k"),
    (dict(alpha=0.0), ValueError, "alpha"), (dict(alpha=1.5), ValueError, "alpha"),
    (dict(alpha=float("nan")), ValueError, "alpha"), (dict(alpha="0.5"), TypeError, "alpha"),
    (dict(start="zeros"), ValueError, "start"), (dict(on_sync="pullback"), ValueError, "on_sync"),
])
def test_lookahead_validation(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        r.Lookahead(r.SGD(), **kwargs)


@pytest.mark.parametrize("outer", [r.SWA, r.Lookahead, r.EMA, r.SwitchEMA])
@pytest.mark.parametrize("inside", [r.SWA, r.Lookahead, r.EMA])
def test_averagers_do_not_nest(outer, inside):
    with pytest.raises(TypeError, match="inner"):
        outer(inside(r.SGD()))


def test_states_are_checked_and_inputs_never_modified():
    opt = r.Lookahead(r.SGD(lr=0.25, momentum=0.5), k=2)
    w = W0.copy()
    s = opt.init(w)
    with pytest.raises(ValueError, match=r"state\.slow must have length 2"):
        opt.step(w, LookaheadState(0, 0, np.zeros(3), s.inner), constant_oracle)
    with pytest.raises(TypeError, match="LookaheadState"):
        opt.step(w, r.SWA(r.SGD()).init(w), constant_oracle)
    before = (w.copy(), s.slow.copy())
    for _ in range(3):
        w_new, s_new, _ = opt.step(w, s, constant_oracle)
        assert np.array_equal(w, before[0]) and np.array_equal(s.slow, before[1])
        w, s = w_new, s_new
        before = (w.copy(), s.slow.copy())
    swa = r.SWA(r.SGD(lr=0.25), swa_unit="step")
    st0 = swa.init(W0)
    with pytest.raises(ValueError, match=r"state\.count"):
        swa.step(W0, SWAState(0, 0, W0.copy(), -1, st0.inner), constant_oracle)
    avg = swa.average(st0)
    avg[:] = 7.0
    assert np.array_equal(swa.average(st0), W0)
    with pytest.raises(TypeError, match="cannot be wrapped"):
        swa.reset(st0)
