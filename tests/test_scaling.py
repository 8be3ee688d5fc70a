"""The EMA Scaling Rule and the optimizers' own scaling rules (refimpl.scaling; sources:
proofs/sources.md#ema-scaling-rule).

Each rule is checked bitwise against the formula it promises (decay ** kappa,
lr * kappa, lr * sqrt(kappa), eps / sqrt(kappa)); the composition law is checked to a
tolerance derived from the roundings involved.
"""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import refimpl as r
from refimpl import EMA, FAME, SAM, SGD, Adam, StableSAM, SwitchEMA
from refimpl.scaling import scale_decay, scale_optimizer

EPS = np.finfo(np.float64).eps

decay_values = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999, 1.0 - EPS / 2]),
                         st.floats(1e-2, 1.0, exclude_max=True))
int_kappas = st.integers(1, 8)
kappas = st.one_of(int_kappas, st.sampled_from([0.5, 0.25, 1.5]), st.floats(0.125, 8.0))


# ---------------------------------------------------------------------------------------
# scale_decay

@given(decay_values, kappas)
def test_scale_decay_is_power(decay, kappa):
    """decay -> decay ** kappa, bit for bit; a larger batch (kappa >= 1) shortens the
    memory (scaled <= decay < 1), a smaller one lengthens it (scaled >= decay). The one
    power that rounds to 1.0 is refused (see the next test)."""
    if decay ** kappa == 1.0:
        with pytest.raises(ValueError, match="rounds to 1.0"):
            scale_decay(decay, kappa)
        return
    scaled = scale_decay(decay, kappa)
    assert scaled == decay ** kappa
    if kappa >= 1:
        assert 0.0 <= scaled <= decay < 1.0
    else:
        assert decay <= scaled < 1.0


def test_fractional_kappa_rounding_decay_to_one_is_refused():
    """For kappa < 1 a decay within an ulp of 1 can round to exactly 1.0 (here
    (1 - eps/2) ** 0.5 = 1 - eps/4, a tie that rounds to even = 1.0): the "always in
    [0, 1)" first assumed for b ** kappa holds only for kappa >= 1. Both scale_decay and scale_optimizer refuse it
    with an error naming the decay, rather than returning a frozen EMA."""
    d = 1.0 - EPS / 2
    assert d ** 0.5 == 1.0  # the rounding this test is about
    with pytest.raises(ValueError, match="decay=.* rounds to 1.0"):
        scale_decay(d, 0.5)
    with pytest.raises(ValueError, match="decay=.* rounds to 1.0"):
        scale_optimizer(EMA(SGD(lr=0.1), decay=d), 0.5)
    with pytest.raises(ValueError, match="beta2=.* rounds to 1.0"):
        scale_optimizer(Adam(beta2=d), 0.5)


def test_scale_decay_hand_values():
    # 0.99 ** 2 = 0.9801; 0.5 ** 3 = 0.125 (exact); 0.25 ** 0.5 = 0.5 (exact)
    assert scale_decay(0.5, 3) == 0.125
    assert scale_decay(0.25, 0.5) == 0.5
    assert abs(scale_decay(0.99, 2) - 0.9801) <= 2 * EPS
    assert scale_decay(0.0, 4) == 0.0
    assert scale_decay(0.9, 1) == 0.9


@given(st.floats(1e-6, 0.1), int_kappas)
def test_scale_decay_is_first_order_linear_rule(x, kappa):
    """With b = 1 - x, b ** kappa = 1 - kappa x + O(x^2): Bernoulli's inequalities give
    1 - kappa x <= b**kappa <= 1 - kappa x + C(kappa, 2) x^2 for integer kappa >= 1.
    Fails for the other reading of the rule, b -> b * kappa or 1 - (1-b)/kappa.
    Slack: 8 eps for the roundings of 1 - x, the power and 1 - kappa x (all near 1)."""
    b = 1.0 - x
    x = 1.0 - b  # the x that b actually represents (exact: Sterbenz)
    scaled = scale_decay(b, kappa)
    linear = 1.0 - kappa * x
    assert linear - 8 * EPS <= scaled <= linear + comb(kappa, 2) * x * x + 8 * EPS


@given(decay_values, kappas, kappas)
def test_scale_decay_composition_law(decay, k1, k2):
    """Scaling by k1 then k2 equals scaling by k1*k2 ((d^k1)^k2 = d^(k1 k2)), to a few
    ulps: the intermediate d^k1 carries a relative error <= 1 ulp (pow's own error
    plus one rounding) that the outer power multiplies by k2; the outer pow and the
    reference add an ulp each; and a rounded product k1*k2 (relative u) perturbs the
    exponent, costing k1 k2 |ln d| u relative."""
    # a power that rounds to 1.0 (kappa < 1, decay within ulps of 1) is refused: skip those
    assume(decay ** k1 < 1.0 and (decay ** k1) ** k2 < 1.0 and decay ** (k1 * k2) < 1.0)
    inner = scale_decay(decay, k1)
    twice = scale_decay(inner, k2)
    once = scale_decay(decay, k1 * k2)
    if decay == 0.0:
        assert twice == once == 0.0
        return
    tol = EPS * (k2 + 3 + k1 * k2 * abs(math.log(decay)))
    assert abs(twice - once) <= tol * once


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_scale_decay_bad_decay(decay):
    with pytest.raises(ValueError, match="decay"):
        scale_decay(decay, 2)


@pytest.mark.parametrize("kappa, exc", [
    (0, ValueError), (0.0, ValueError), (-2, ValueError), (float("nan"), ValueError),
    (float("inf"), ValueError), (True, TypeError), ("2", TypeError),
])
def test_bad_kappa(kappa, exc):
    with pytest.raises(exc, match="kappa"):
        scale_decay(0.9, kappa)
    with pytest.raises(exc, match="kappa"):
        scale_optimizer(SGD(lr=0.1), kappa)
    with pytest.raises(exc, match="kappa"):
        scale_optimizer(EMA(Adam(), decay=0.9), kappa)


# ---------------------------------------------------------------------------------------
# the optimizers' own rules

@given(st.floats(0.0, 1.0), kappas)
def test_sgd_linear_scaling_rule(lr, kappa):
    """SGD: lr -> lr * kappa; momentum (and everything else) kept. Fails for the
    square-root rule of Adam-like optimizers and for treating momentum as an EMA
    (mu -> mu ** kappa)."""
    opt = SGD(lr=lr, momentum=0.9, dampening=0.1, weight_decay=1e-4, maximize=True)
    s = scale_optimizer(opt, kappa)
    assert type(s) is SGD
    assert s.lr.constant == lr * kappa
    assert (s.momentum, s.dampening, s.weight_decay, s.nesterov, s.maximize, s.convention) \
        == (0.9, 0.1, 1e-4, False, True, "pytorch")
    for conv in ("optax", "keras"):
        assert scale_optimizer(SGD(lr=lr, momentum=0.5, convention=conv), kappa).convention == conv


def test_sgd_hand_values():
    # 0.05 * 4 = 0.2 (within one rounding); 0.5 * 0.5 = 0.25 exact
    assert scale_optimizer(SGD(lr=0.05, momentum=0.9), 4).lr.constant == 0.05 * 4
    s = scale_optimizer(SGD(lr=0.5, momentum=0.9, nesterov=True), 0.5)
    assert s.lr.constant == 0.25 and s.momentum == 0.9 and s.nesterov


@given(kappas)
def test_adam_square_root_rule(kappa):
    """Adam (Malladi et al.): lr * sqrt(kappa), beta -> beta ** kappa, eps / sqrt(kappa);
    weight_decay (part of the objective) and maximize kept. Fails for the linear rule."""
    opt = Adam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, maximize=True)
    s = scale_optimizer(opt, kappa)
    root = math.sqrt(kappa)
    assert type(s) is Adam
    assert s.lr.constant == 1e-3 * root
    assert (s.beta1, s.beta2) == (0.9 ** kappa, 0.999 ** kappa)
    assert s.eps == 1e-8 / root
    assert (s.weight_decay, s.maximize) == (0.01, True)


def test_adam_hand_values():
    # kappa = 4: lr 1e-3 * 2, beta1 0.5 ** 4 = 0.0625, eps 1e-8 / 2 (all exact scalings)
    s = scale_optimizer(Adam(lr=1e-3, beta1=0.5, beta2=0.75, eps=1e-8), 4)
    assert (s.lr.constant, s.beta1, s.beta2, s.eps) == (2e-3, 0.0625, 0.75 ** 4, 5e-9)


@pytest.mark.parametrize("variant", ["official", "full"])
@given(kappa=kappas)
def test_fame_square_root_rule_all_five_betas(variant, kappa):
    """FAME: like Adam, and EVERY decay of the TEMA chains (beta1..beta5) -> ** kappa.
    Fails if only Adam's beta1/beta2 were scaled. variant and debias kept."""
    betas = dict(beta1=0.9, beta2=0.999, beta3=0.3, beta4=0.7, beta5=0.5)
    opt = FAME(lr=1e-3, eps=1e-8, weight_decay=0.01, variant=variant, debias="exact", **betas)
    s = scale_optimizer(opt, kappa)
    root = math.sqrt(kappa)
    assert type(s) is FAME
    assert s.lr.constant == 1e-3 * root and s.eps == 1e-8 / root
    for name, b in betas.items():
        assert getattr(s, name) == b ** kappa, name
    assert (s.variant, s.debias, s.weight_decay) == (variant, "exact", 0.01)


@pytest.mark.parametrize("cls", [SAM, StableSAM])
@pytest.mark.parametrize("base", [SGD(lr=0.1, momentum=0.9), Adam(lr=1e-3), FAME()])
def test_sam_keeps_rho_and_scales_base(cls, base):
    """SAM/StableSAM: no published rule for rho, so rho (and ascent, eps) are kept; the
    base optimizer is scaled by its own rule."""
    opt = cls(base, rho=0.05, ascent="adaptive", eps=1e-10)
    s = scale_optimizer(opt, 4)
    assert type(s) is cls
    assert (s.rho, s.ascent, s.eps) == (0.05, "adaptive", 1e-10)
    _assert_same(s.base, scale_optimizer(base, 4))


def test_ema_decay_power_update_every_kept():
    """EMA: decay ** kappa; update_every and start kept (updating every k steps then
    happens kappa times less often per unit of training time, which decay ** kappa
    compensates); the wrapped optimizer scaled by its own rule."""
    inner = SAM(SGD(lr=0.05, momentum=0.9), rho=0.1)
    for cls, extra in ((EMA, {}), (SwitchEMA, dict(switch_every=3, switch_unit="epoch"))):
        opt = cls(inner, decay=0.99, update_every=5, start="zeros", **extra)
        s = scale_optimizer(opt, 4)
        assert type(s) is cls
        assert s.decay == 0.99 ** 4
        assert (s.update_every, s.start, s.warmup) == (5, "zeros", None)
        _assert_same(s.inner, scale_optimizer(inner, 4))
        assert s.inner.base.lr.constant == 0.05 * 4 and s.inner.rho == 0.1


@pytest.mark.parametrize("warmup, extra", [
    ("timm", {}), ("constant", dict(warmup_steps=10)), ("linear", dict(warmup_steps=10)),
    ("exp", dict(warmup_steps=10)),
])
def test_ema_warmup_refused(warmup, extra):
    """Warm-up schedules have no published scaling rule: refused, not guessed."""
    for opt in (EMA(SGD(lr=0.1), decay=0.99, warmup=warmup, **extra),
                SwitchEMA(SGD(lr=0.1), decay=0.99, warmup=warmup, switch_unit="step", **extra)):
        with pytest.raises(ValueError, match="warmup"):
            scale_optimizer(opt, 2)


def test_switch_ema_step_counts_shrink_by_kappa():
    """switch_unit="step": switch_every and switch_start are moments in training time,
    divided by kappa (multiplied for kappa < 1); "epoch" counts are unchanged."""
    opt = SwitchEMA(SGD(lr=0.1), decay=0.9, switch_every=8, switch_start=12,
                    switch_unit="step", on_switch="reset")
    s = scale_optimizer(opt, 4)
    assert (s.switch_every, s.switch_start, s.switch_unit, s.on_switch) == (2, 3, "step", "reset")
    s = scale_optimizer(opt, 0.5)
    assert (s.switch_every, s.switch_start) == (16, 24)
    s = scale_optimizer(SwitchEMA(SGD(lr=0.1), decay=0.9, switch_every=8, switch_unit="step"), 8)
    assert (s.switch_every, s.switch_start) == (1, 0)
    by_epoch = SwitchEMA(SGD(lr=0.1), decay=0.9, switch_every=3, switch_start=5)
    s = scale_optimizer(by_epoch, 4)
    assert (s.switch_every, s.switch_start, s.switch_unit) == (3, 5, "epoch")


@pytest.mark.parametrize("every, start, kappa, name", [
    (6, 0, 4, "switch_every"),    # 6 / 4 = 1.5
    (2, 0, 4, "switch_every"),    # 2 / 4 = 0.5 < 1
    (8, 6, 4, "switch_start"),    # 6 / 4 = 1.5
    (3, 0, 0.4, "switch_every"),  # 3 / 0.4 = 7.4999...: not an integer
])
def test_switch_ema_step_counts_not_divisible(every, start, kappa, name):
    opt = SwitchEMA(SGD(lr=0.1), decay=0.9, switch_every=every, switch_start=start,
                    switch_unit="step")
    with pytest.raises(ValueError, match=name):
        scale_optimizer(opt, kappa)


# ---------------------------------------------------------------------------------------
# learning-rate schedules: resampled at matched times

@pytest.mark.parametrize("make, factor", [
    (lambda lr: SGD(lr=lr, momentum=0.9), lambda k: k),
    (lambda lr: Adam(lr=lr), math.sqrt),
    (lambda lr: FAME(lr=lr), math.sqrt),
])
@given(values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), kappa=int_kappas)
def test_array_schedule_resampled_at_matched_times(make, factor, values, kappa):
    """New step j is old step kappa*j: new lr[j] = factor * lr[kappa*j], bitwise, with
    ceil(n / kappa) entries (SGD factor kappa, Adam-like sqrt(kappa))."""
    lr = np.array(values)
    s = scale_optimizer(make(lr), kappa)
    new = s.lr.array(-(-len(values) // kappa))
    f = factor(kappa)
    assert np.array_equal(new, np.array([f * values[kappa * j] for j in range(len(new))]))
    with pytest.raises(ValueError, match="lr"):
        s.lr.at(len(new))  # the resampled schedule ends where the old one did
    assert np.array_equal(make(lr).lr.values, lr)


def test_array_schedule_hand_values():
    # lr = (0.1, 0.2, 0.3, 0.4, 0.5), kappa 2: new = 2 * (0.1, 0.3, 0.5)
    s = scale_optimizer(SGD(lr=np.array([0.1, 0.2, 0.3, 0.4, 0.5])), 2)
    assert np.array_equal(s.lr.array(3), np.array([0.2, 0.6, 1.0]))


@pytest.mark.parametrize("make, factor", [
    (lambda lr: SGD(lr=lr), lambda k: k), (lambda lr: Adam(lr=lr), math.sqrt)])
def test_callable_schedule_resampled_at_matched_times(make, factor):
    """A callable f becomes j -> factor * f(kappa * j)."""
    f = lambda t: 0.1 / (1.0 + t)  # noqa: E731
    for kappa in (1, 2, 3):
        s = scale_optimizer(make(f), kappa)
        assert all(s.lr.at(j) == factor(kappa) * f(kappa * j) for j in range(20))


def test_schedule_needs_integer_kappa():
    """A per-step schedule cannot be resampled at fractional matched times; a constant
    lr can (kappa = 0.5: halving the batch)."""
    for lr in (np.full(4, 0.1), lambda t: 0.1):
        with pytest.raises(ValueError, match="kappa"):
            scale_optimizer(SGD(lr=lr), 1.5)
    assert scale_optimizer(SGD(lr=0.1), 0.5).lr.constant == 0.05
    assert scale_optimizer(SGD(lr=np.full(4, 0.1)), 2.0).lr.array(2)[0] == 0.2


# ---------------------------------------------------------------------------------------
# identities, composition, purity, bad input

def _nested():
    base = FAME(lr=np.linspace(1e-3, 1e-4, 48), beta3=0.3, beta4=0.7)
    return SwitchEMA(StableSAM(base, rho=0.05), decay=0.999, update_every=2,
                     switch_every=24, switch_start=48, switch_unit="step")


def _fields(opt):
    """Every hyperparameter of a (nested) optimizer as comparable values."""
    out = {}
    for name, value in vars(opt).items():
        if name == "lr":
            out[name] = (value.constant, None if value.values is None else value.values.tolist(),
                         value.function)
        elif hasattr(value, "__dataclass_fields__"):
            out.update({f"{name}.{k}": v for k, v in _fields(value).items()})
        else:
            out[name] = value
    return out


def _assert_same(x, y):
    assert type(x) is type(y) and _fields(x) == _fields(y)


def test_kappa_one_is_identity():
    """kappa = 1 changes nothing, bit for bit (d ** 1 = d, lr * 1, sqrt(1) = 1)."""
    opt = _nested()
    _assert_same(scale_optimizer(opt, 1), opt)
    sgd = SGD(lr=0.07, momentum=0.9)
    _assert_same(scale_optimizer(sgd, 1), sgd)


def test_original_unchanged():
    """scale_optimizer returns new objects; the input and its lr array are untouched."""
    opt = _nested()
    before = _fields(opt)
    scaled = scale_optimizer(opt, 2)
    assert _fields(opt) == before
    assert scaled is not opt and scaled.inner is not opt.inner
    assert scaled.inner.base.lr.values.shape == (24,) and opt.inner.base.lr.values.shape == (48,)


@given(st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2, 4, 8]))
def test_composition_law_nested(k1, k2):
    """scale(scale(opt, k1), k2) == scale(opt, k1 * k2): decays to a few ulps (the
    composition law above), lr factors to 2 ulps ((x * f1) * f2 rounds twice,
    x * (f1 f2) once, and sqrt(k1) sqrt(k2) vs sqrt(k1 k2) adds an ulp each),
    integer switch counts and the resampled indices exactly."""
    opt = SwitchEMA(SAM(Adam(lr=np.linspace(1e-3, 1e-4, 64), beta1=0.9, beta2=0.999)),
                    decay=0.999, switch_every=64, switch_unit="step")
    twice = scale_optimizer(scale_optimizer(opt, k1), k2)
    once = scale_optimizer(opt, k1 * k2)
    assert twice.switch_every == once.switch_every == 64 // (k1 * k2)
    for x, y in ((twice.decay, once.decay), (twice.inner.base.beta1, once.inner.base.beta1),
                 (twice.inner.base.beta2, once.inner.base.beta2)):
        assert abs(x - y) <= (k2 + 3) * EPS * y
    assert abs(twice.inner.base.eps - once.inner.base.eps) <= 4 * EPS * once.inner.base.eps
    a, b = twice.inner.base.lr.values, once.inner.base.lr.values
    assert a.shape == b.shape
    assert np.all(np.abs(a - b) <= 4 * EPS * b)


def test_composition_law_exact_for_powers_of_two():
    """With kappas 2 and 4, every scaling of an lr is by a power of two (exact), so
    scale(scale(sgd, 2), 4) and scale(sgd, 8) agree bitwise."""
    lr = np.linspace(0.1, 0.01, 40)
    twice = scale_optimizer(scale_optimizer(SGD(lr=lr, momentum=0.9), 2), 4)
    once = scale_optimizer(SGD(lr=lr, momentum=0.9), 8)
    assert np.array_equal(twice.lr.values, once.lr.values)
    assert np.array_equal(once.lr.values, 8 * lr[::8])


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="optimizer"):
        scale_optimizer(object(), 2)
    with pytest.raises(TypeError, match="optimizer"):
        scale_optimizer(lambda w: w, 2)


def test_no_rule_is_invented_for_adamw_swa_or_lookahead():
    """No published rule in refimpl's sources covers decoupled weight decay, SWA's
    snapshot schedule or Lookahead's k: scale_optimizer refuses them by name (AdamW with
    weight_decay = 0 is Adam, and is scaled as Adam)."""
    with pytest.raises(ValueError, match="decoupled weight decay"):
        scale_optimizer(r.AdamW(), 2)
    assert scale_optimizer(r.AdamW(weight_decay=0.0), 4).lr.constant == 2e-3
    for opt, name in ((r.SWA(r.SGD()), "SWA"), (r.Lookahead(r.SGD()), "Lookahead")):
        with pytest.raises(ValueError, match=f"no rule for {name}"):
            scale_optimizer(opt, 2)
