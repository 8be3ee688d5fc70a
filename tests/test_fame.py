"""FAME (refimpl.optimizers.fame; proofs/sources.md#fame; claims FAME-adam and
FAME-debias): both
variants against independent scalar references, the reductions to Adam bit for bit,
hand-computed steps, the debias="adam" overshoot versus exact debiasing, full FAME's
max(v_tema, 0) guard, defaults, reset(), state checks and validation."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl import FAME, Adam
from refimpl.optimizers import FAMEFullState, FAMEState
from tests.conftest import vectors

EPS = np.finfo(np.float64).eps

decays = st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 0.999]),
                   st.floats(0.0, 1.0, exclude_max=True))
eps_values = st.one_of(st.sampled_from([1e-8, 1e-12, 1.0]), st.floats(1e-12, 1e-2))


# -------------------------------------------------------------------------- references

def _ema(m, x, b):
    return b * m + (1.0 - b) * x


def _tema(a, b, c):
    return 3.0 * a - 3.0 * b + c


def ref_official(w, s, g, lr, b1, b2, b3, b4, eps, wd, maximize, exact):
    """Scalar reading of the official FAME update (the module docstring's formulas);
    ``s`` is a dict of lists m1, m2, m3, v, r (3,) and the count; returns new w, s."""
    t = float(s["count"] + 1)
    r = list(s["r"])
    if exact:
        r[0] = _ema(r[0], 1.0, b1)
        r[1] = _ema(r[1], r[0], b3)
        r[2] = _ema(r[2], r[1], b4)
        c1 = _tema(*r)
    else:
        c1 = 1.0 - b1 ** t
    step_size = lr / c1
    v_corr = math.sqrt(1.0 - b2 ** t)
    w, m1, m2, m3, v = (list(a) for a in (w, s["m1"], s["m2"], s["m3"], s["v"]))
    for i in range(len(w)):
        gi = -g[i] if maximize else g[i]
        if wd != 0.0:
            gi = gi + wd * w[i]
        m1[i] = _ema(m1[i], gi, b1)
        m2[i] = _ema(m2[i], m1[i], b3)
        m3[i] = _ema(m3[i], m2[i], b4)
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi          # plain Adam second moment
        denom = math.sqrt(v[i]) / v_corr + eps
        w[i] = w[i] - step_size * (_tema(m1[i], m2[i], m3[i]) / denom)
    return w, dict(count=s["count"] + 1, m1=m1, m2=m2, m3=m3, v=v, r=r)


def ref_full(w, s, g, lr, b1, b2, b3, b4, b5, eps, wd, maximize, exact, guard="adam"):
    """Scalar reading of full FAME (TEMA on both moments; guard "adam": the debiased
    TEMA second moment never below Adam's, or "zero": max(v_tema, 0)); returns new w,
    s and how many elements the guard changed."""
    t = float(s["count"] + 1)
    r = list(s["r"])
    if exact:
        r[0] = _ema(r[0], 1.0, b1)
        r[1] = _ema(r[1], r[0], b3)
        r[2] = _ema(r[2], r[1], b5)
        r[3] = _ema(r[3], 1.0, b2)
        r[4] = _ema(r[4], r[3], b4)
        r[5] = _ema(r[5], r[4], b5)
        c1, c2 = _tema(*r[:3]), _tema(*r[3:])
    else:
        c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
    step_size = lr / c1
    c2_sqrt = math.sqrt(c2)
    adam_sqrt = math.sqrt(1.0 - b2 ** t)
    w, m1, m2, m3, v1, v2, v3 = (list(a) for a in (w, s["m1"], s["m2"], s["m3"], s["v1"], s["v2"], s["v3"]))
    clipped = 0
    for i in range(len(w)):
        gi = -g[i] if maximize else g[i]
        if wd != 0.0:
            gi = gi + wd * w[i]
        m1[i] = _ema(m1[i], gi, b1)
        m2[i] = _ema(m2[i], m1[i], b3)
        m3[i] = _ema(m3[i], m2[i], b5)
        v1[i] = b2 * v1[i] + (1.0 - b2) * gi * gi         # Adam's order, ((1-b2) g) g
        v2[i] = _ema(v2[i], v1[i], b4)
        v3[i] = _ema(v3[i], v2[i], b5)
        v_tema = _tema(v1[i], v2[i], v3[i])
        if guard == "adam":
            d = math.sqrt(max(v_tema, 0.0)) / c2_sqrt
            if d < math.sqrt(v1[i]) / adam_sqrt:
                d, clipped = math.sqrt(v1[i]) / adam_sqrt, clipped + 1
        else:
            if v_tema < 0.0:
                v_tema, clipped = 0.0, clipped + 1
            d = math.sqrt(v_tema) / c2_sqrt
        denom = d + eps
        w[i] = w[i] - step_size * (_tema(m1[i], m2[i], m3[i]) / denom)
    return w, dict(count=s["count"] + 1, m1=m1, m2=m2, m3=m3, v1=v1, v2=v2, v3=v3, r=r), clipped


def fresh(d, full=False):
    z = [0.0] * d
    if full:
        return dict(count=0, m1=z, m2=z, m3=z, v1=z, v2=z, v3=z, r=[0.0] * 6)
    return dict(count=0, m1=z, m2=z, m3=z, v=z, r=[0.0] * 3)


def exact_overshoot(t_max, b1=Fraction(9, 10), b3=Fraction(1, 2), b4=Fraction(1, 2)):
    """R_t = TEMA_t(1) / (1 - b1^t), exactly: the official FAME displacement per lr
    under a constant gradient with debias="adam" (eps and v-rounding aside)."""
    m1 = m2 = m3 = Fraction(0)
    out = []
    for t in range(1, t_max + 1):
        m1 = b1 * m1 + (1 - b1)
        m2 = b3 * m2 + (1 - b3) * m1
        m3 = b4 * m3 + (1 - b4) * m2
        out.append((3 * m1 - 3 * m2 + m3) / (1 - b1 ** t))
    return out


hyper = dict(lr=st.floats(0.0, 1.0), beta1=decays, beta2=decays, eps=eps_values,
             weight_decay=st.floats(0.0, 1.0), maximize=st.booleans())


def _grads(data, steps):
    d = data.draw(st.integers(1, 5))
    w = data.draw(vectors(d, d, -10, 10))
    return w, [data.draw(vectors(d, d)) for _ in range(steps)]


def _assert_runs_like_adam(fame, adam, w, grads, same_state):
    """FAME and Adam step through ``grads`` from ``w`` with equal iterates bit for bit and
    ``same_state(fame_state, adam_state)`` true after every step; a diverging Adam run
    must make FAME diverge at the same step."""
    wf, sf, wa, sa = w, fame.init(w), w, adam.init(w)
    for g in grads:
        try:
            wa, sa = adam.update(wa, sa, g)
        except FloatingPointError:
            with pytest.raises(FloatingPointError):
                fame.update(wf, sf, g)
            return
        wf, sf = fame.update(wf, sf, g)
        assert np.array_equal(wf, wa) and same_state(sf, sa)


def _same_v_max(sf, sa):
    return np.array_equal(sf.v_max, sa.v_max)


# ------------------------------------------------------------------ reductions to Adam

@pytest.mark.claim("FAME-adam")
@given(steps=st.integers(1, 15), data=st.data(), **hyper)
def test_official_with_b3_b4_zero_is_adam_bitwise(steps, data, lr, beta1, beta2, eps,
                                                   weight_decay, maximize):
    """b3 = b4 = 0: m2 = 0*m2 + 1*m1 = m1 and m3 = m1 exactly, so TEMA = (3 m1 - 3 m1) + m1
    = m1 exactly and, with the authors' 1 - b1^t, official FAME IS Adam (coupled L2,
    torch order) bit for bit: parameters and moments, over many steps."""
    w, grads = _grads(data, steps)
    fame = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=0.0, beta4=0.0, eps=eps,
                weight_decay=weight_decay, maximize=maximize)
    adam = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                maximize=maximize)
    assert fame.debias == "adam"
    _assert_runs_like_adam(fame, adam, w, grads, lambda sf, sa: (
        np.array_equal(sf.m1, sa.m) and np.array_equal(sf.v, sa.v)
        and np.array_equal(sf.m3, sa.m)))


@pytest.mark.claim("FAME-adam")
@given(steps=st.integers(1, 15), data=st.data(), **hyper)
def test_full_with_b3_b4_b5_zero_and_adam_debias_is_adam_bitwise(steps, data, lr, beta1, beta2,
                                                                  eps, weight_decay, maximize):
    """Full FAME with b3 = b4 = b5 = 0 and debias="adam": both TEMAs collapse exactly to
    their first EMA (m_tema = m1, v_tema = v1 >= 0, the guard never fires), so it is
    Adam bit for bit."""
    w, grads = _grads(data, steps)
    fame = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=0.0, beta4=0.0, beta5=0.0, eps=eps,
                weight_decay=weight_decay, maximize=maximize, variant="full", debias="adam")
    adam = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                maximize=maximize)
    _assert_runs_like_adam(fame, adam, w, grads, lambda sf, sa: (
        np.array_equal(sf.v1, sa.v) and sf.v_clipped == 0))


# --------------------------------------------------------- against scalar references

@given(steps=st.integers(1, 12), data=st.data(), beta3=decays, beta4=decays,
       exact=st.booleans(), **hyper)
def test_official_equals_scalar_reference_bitwise(steps, data, beta3, beta4, exact, lr, beta1,
                                                  beta2, eps, weight_decay, maximize):
    """Official FAME, any decays and either debias, equals the scalar reading of the
    module docstring bit for bit (parameters, all moments, the response chain)."""
    w, grads = _grads(data, steps)
    opt = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=beta3, beta4=beta4, eps=eps,
               weight_decay=weight_decay, maximize=maximize,
               debias="exact" if exact else "adam")
    s, rw, rs = opt.init(w), w.tolist(), fresh(w.shape[0])
    for g in grads:
        rw, rs = ref_official(rw, rs, g.tolist(), lr, beta1, beta2, beta3, beta4, eps,
                              weight_decay, maximize, exact)
        if not all(math.isfinite(x) for x in rw):
            with pytest.raises(FloatingPointError):
                opt.update(w, s, g)
            return
        w, s = opt.update(w, s, g)
        assert np.array_equal(w, rw)
        for name in ("m1", "m2", "m3", "v"):
            assert np.array_equal(getattr(s, name), rs[name]), name
        assert np.array_equal(s.response, rs["r"]) if exact else not s.response.any()


@given(steps=st.integers(1, 12), data=st.data(), beta3=decays, beta4=decays, beta5=decays,
       exact=st.booleans(), guard=st.sampled_from(["adam", "zero"]), **hyper)
def test_full_equals_scalar_reference_bitwise(steps, data, beta3, beta4, beta5, exact, guard, lr,
                                              beta1, beta2, eps, weight_decay, maximize):
    """Full FAME (our reconstruction) equals its scalar reading bit for bit, including
    the guard count, under both guards."""
    w, grads = _grads(data, steps)
    opt = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=beta3, beta4=beta4, beta5=beta5,
               eps=eps, weight_decay=weight_decay, maximize=maximize, variant="full",
               debias="exact" if exact else "adam", v_guard=guard)
    s, rw, rs, clipped = opt.init(w), w.tolist(), fresh(w.shape[0], full=True), 0
    for g in grads:
        rw, rs, c = ref_full(rw, rs, g.tolist(), lr, beta1, beta2, beta3, beta4, beta5, eps,
                             weight_decay, maximize, exact, guard)
        clipped += c
        if not all(math.isfinite(x) for x in rw):
            with pytest.raises(FloatingPointError):
                opt.update(w, s, g)
            return
        w, s = opt.update(w, s, g)
        assert np.array_equal(w, rw) and s.v_clipped == clipped
        for name in ("m1", "m2", "m3", "v1", "v2", "v3"):
            assert np.array_equal(getattr(s, name), rs[name]), name


# ----------------------------------------------------------------------- hand-computed

def test_official_first_steps_by_hand_at_defaults():
    """Defaults (b1, b2, b3, b4) = (0.9, 0.999, 0.5, 0.5), eps 1e-8, lr 1e-3, constant
    g = 2 (and -2 in a second coordinate). Step 1:
      m1 = 0.1*2 = 0.2, m2 = 0.5*0.2 = 0.1, m3 = 0.5*0.1 = 0.05
      TEMA = 3*0.2 - 3*0.1 + 0.05 = 0.35,  v = 0.001*4 = 0.004
      denom = sqrt(0.004) / sqrt(1 - 0.999) + 1e-8 = 2 + 1e-8
      d1 = (1e-3 / (1 - 0.9)) * 0.35 / (2 + 1e-8) = 1.75e-3 * 2 / (2 + 1e-8)
         = 1.7499999912500000e-3     (1.75 lr, the FAME-debias overshoot)
    Step 2: m1 = 0.38, m2 = 0.05 + 0.19 = 0.24, m3 = 0.025 + 0.12 = 0.145,
      TEMA = 1.14 - 0.72 + 0.145 = 0.565 = 0.2825 * 2, v / (1 - 0.999^2) = 4,
      d2 = (1e-3 / 0.19) * 0.565 / (2 + 1e-8) = 1.4868420978289474e-3
    Tolerance 4096 eps relative: decimal decays are not binary numbers and
    1 - 0.999^t magnifies their representation error ~1000-fold."""
    opt = FAME(lr=1e-3)
    assert (opt.beta1, opt.beta2, opt.beta3, opt.beta4, opt.eps) == (0.9, 0.999, 0.5, 0.5, 1e-8)
    z, g = np.zeros(2), np.array([2.0, -2.0])
    w1, s1 = opt.update(z, opt.init(z), g)
    np.testing.assert_allclose(-w1, [1.74999999125e-3, -1.74999999125e-3], rtol=4096 * EPS)
    np.testing.assert_allclose(s1.m1, [0.2, -0.2], rtol=4 * EPS)
    np.testing.assert_allclose(s1.m2, [0.1, -0.1], rtol=4 * EPS)
    np.testing.assert_allclose(s1.m3, [0.05, -0.05], rtol=4 * EPS)
    np.testing.assert_allclose(s1.v, [0.004, 0.004], rtol=4 * EPS)
    w2, _ = opt.update(z, s1, g)
    np.testing.assert_allclose(-w2, [1.4868420978289474e-3, -1.4868420978289474e-3],
                               rtol=4096 * EPS)
    # the decimals above, recomputed
    getcontext().prec = 40
    d = Decimal
    assert abs(d("1e-3") / d("0.19") * d("0.565") / (2 + d("1e-8"))
               - d("1.4868420978289474e-3")) < d("1e-19")
    assert abs(d("1e-3") / d("0.1") * d("0.35") / (2 + d("1e-8"))
               - d("1.74999999125e-3")) < d("1e-19")


def test_official_v_is_plain_adam_second_moment():
    """Official FAME keeps Adam's v (no TEMA on the second moment) with Adam's
    1 - b2^t. g = 1 then 3, lr 1, defaults; step 2 in exact decimals:
      m1 = 0.39, m2 = 0.22, m3 = 0.1225, TEMA = 1.17 - 0.66 + 0.1225 = 0.6325
      v = 0.999*0.001 + 0.001*9 = 0.009999, v / (1 - 0.999^2) = 5.00200100050025...
      d2 = (1 / 0.19) * 0.6325 / (sqrt(5.0020010005) + 1e-8) = 1.4884527055371856
    A TEMA of g^2 (decays b2, b4 = 0.5, b5 = 0.5, as in "full") with the same
    correction would give v_tema = 0.01693575 and d2 = 1.1437; the test rejects it."""
    opt = FAME(lr=1.0)
    z = np.zeros(1)
    _, s1 = opt.update(z, opt.init(z), np.array([1.0]))
    w2, s2 = opt.update(z, s1, np.array([3.0]))
    np.testing.assert_allclose(-w2, [1.4884527055371856], rtol=4096 * EPS)
    np.testing.assert_allclose(s2.v, [0.009999], rtol=8 * EPS)
    getcontext().prec = 40
    d = Decimal
    c2 = 1 - d("0.999") ** 2
    tema_v = 3 * d("0.009999") - 3 * d("0.0052495") + d("0.00268725")
    alt = d("0.6325") / d("0.19") / ((tema_v / c2).sqrt() + d("1e-8"))
    assert abs(alt - d("1.1437")) < d("1e-4")
    assert abs(float(alt) + w2[0]) > 0.3


# ------------------------------------------------------------------ FAME-debias claims

QUOTED = [1.75, 1.487, 1.330, 1.234, 1.173]  # FAME-debias as listed, steps 1-5


@pytest.mark.claim("FAME-debias")
def test_overshoot_ratios_exact():
    """R_t = TEMA_t(1) / (1 - 0.9^t) at (0.9, 0.5, 0.5), in exact rationals:
    t=1: 0.175 / 0.1 = 7/4; t=2: 0.2825 / 0.19 = 1.48684...; t=3: 0.3605 / 0.271 =
    1.33026...; then 1.2338..., 1.1730... . The claim (proofs/sources.md#theoretical-claims)
    quotes them to 3 decimals."""
    R = exact_overshoot(5)
    assert R[0] == Fraction(7, 4)
    assert R[1] == Fraction(2825, 1900)
    for r, q in zip(R, QUOTED):
        assert abs(float(r) - q) <= 5e-4
    assert all(r1 > r2 > 1 for r1, r2 in zip(R, R[1:]))


@pytest.mark.claim("FAME-debias")
@given(mag=st.floats(1.0, 1e3), sign=st.sampled_from([1.0, -1.0]), lr=st.floats(1e-6, 1.0))
def test_adam_debias_overshoots_constant_gradient(mag, sign, lr):
    """Official FAME, debias="adam" (the authors' 1 - b1^t), constant g, |g| >= 1 >> eps
    = 1e-8. Step t moves by lr * R_t * g / (sqrt(v_t)/sqrt(1 - b2^t) + eps); with
    v_t = (1 - b2^t) g^2 that is R_t * lr * sign(g) * |g| / (|g| + eps), and eps changes
    it by at most eps/|g| <= 1e-8 relative: negligible against the 4 quoted digits.
    Checked twice: (a) against lr * R_t * g / (sqrt(v_t)/sqrt(1 - b2^t) + eps) with
    the code's own v_t, to 64 eps (roundings in the TEMA chain, condition ~3);
    (b) against R_t * lr * sign(g) to 1e-8 + 4096 eps (eps, plus 1 - b2^t ~ 1e-3
    magnifying ulp-level errors in v ~1000-fold). The displacement is read exactly as
    -w_new from w = 0 each step (w does not enter the update without weight decay)."""
    g = np.array([sign * mag])
    opt = FAME(lr=lr)  # debias="adam" by default
    z = np.zeros(1)
    s = opt.init(z)
    for t, r in enumerate(exact_overshoot(5), start=1):
        w, s = opt.update(z, s, g)
        disp = -w[0]
        vfac = math.sqrt(s.v[0]) / math.sqrt(1.0 - 0.999 ** t)
        assert abs(disp - lr * float(r) * g[0] / (vfac + 1e-8)) <= 64 * EPS * abs(disp)
        assert abs(disp / (lr * sign) - float(r)) <= (1e-8 + 4096 * EPS) * float(r)


@pytest.mark.claim("FAME-debias")
@given(mag=st.floats(1.0, 1e3), sign=st.sampled_from([1.0, -1.0]), lr=st.floats(1e-6, 1.0),
       b3=st.sampled_from([0.5, 0.3]), b4=st.sampled_from([0.5, 0.7]))
def test_exact_debias_moves_by_one_lr_every_step(mag, sign, lr, b3, b4):
    """debias="exact" divides the TEMA by its own response to a constant 1, so
    TEMA_t(g) / c_t = g and every step moves by lr * g / (sqrt(v_t)/sqrt(1 - b2^t) + eps)
    to a few ulps (16 eps: the chains on g and on 1 round independently), i.e.
    1.0 x lr (to 1e-8 + 4096 eps, as above) at every one of 20 steps: no overshoot."""
    g = np.array([sign * mag])
    opt = FAME(lr=lr, beta3=b3, beta4=b4, debias="exact")
    z = np.zeros(1)
    s = opt.init(z)
    for t in range(1, 21):
        w, s = opt.update(z, s, g)
        disp = -w[0]
        vfac = math.sqrt(s.v[0]) / math.sqrt(1.0 - 0.999 ** t)
        assert abs(disp - lr * (g[0] / (vfac + 1e-8))) <= 16 * EPS * abs(disp)
        assert abs(disp / (lr * sign) - 1.0) <= 1e-8 + 4096 * EPS


def test_debias_defaults_and_their_effect():
    """debias defaults to "adam" for official (the authors' code) and "exact" for full
    (our choice). On the first step with constant g the official default moves by
    1.75 lr (0.175 / 0.1), the full default by 1.0 lr (both chains exactly debiased)."""
    assert FAME().debias == "adam"
    assert FAME(variant="full").debias == "exact"
    assert FAME(variant="full", debias="adam").debias == "adam"
    assert FAME(debias="exact").debias == "exact"
    z, g = np.zeros(1), np.array([4.0])
    for opt, ratio in ((FAME(lr=1e-2), 1.75), (FAME(lr=1e-2, variant="full"), 1.0)):
        w, _ = opt.update(z, opt.init(z), g)
        assert abs(-w[0] / 1e-2 - ratio) <= ratio * (1e-8 + 4096 * EPS)
    a, e = FAME(lr=1e-2), FAME(lr=1e-2, debias="adam")
    assert np.array_equal(a.update(z, a.init(z), g)[0], e.update(z, e.init(z), g)[0])


# ------------------------------------------------------------------ full FAME's guard

def test_zero_guard_clamps_negative_v_tema_after_a_spike():
    """Classical TEMA(0.9) on both chains (all five decays 0.9): coordinate 0 sees a
    spike g = 10 then zeros; the v-chain's TEMA impulse response has a negative lobe,
    so v_tema = 3 v1 - 3 v2 + v3 turns negative. Coordinate 1 sees a constant 1 (its
    v_tema stays positive). The guard must clamp to 0 so that sqrt stays real:
    state.v_clipped > 0 and equals the reference's count, the parameters stay finite,
    every step equals the scalar formula with max(v_tema, 0) bit for bit, and on a
    clipped step the displacement is exactly (lr / c1_t) * m_tema / eps."""
    b, lr, eps = 0.9, 1e-3, 1e-8
    opt = FAME(lr=lr, beta1=b, beta2=b, beta3=b, beta4=b, beta5=b, eps=eps, variant="full",
               v_guard="zero")
    w = np.zeros(2)
    s, rw, rs = opt.init(w), w.tolist(), fresh(2, full=True)
    negative_steps = 0
    for t in range(60):
        g = np.array([10.0 if t == 0 else 0.0, 1.0])
        rw, rs, _ = ref_full(rw, rs, g.tolist(), lr, b, b, b, b, b, eps, 0.0, False, True, "zero")
        w_old, (w, s) = w, opt.update(w, s, g)
        assert np.array_equal(w, rw) and np.all(np.isfinite(w))
        raw = 3.0 * s.v1 - 3.0 * s.v2 + s.v3
        assert raw[1] > 0.0
        if raw[0] < 0.0:
            negative_steps += 1
            r = s.response
            c1 = 3.0 * r[0] - 3.0 * r[1] + r[2]
            m_tema = 3.0 * s.m1[0] - 3.0 * s.m2[0] + s.m3[0]
            assert w[0] == w_old[0] - (lr / c1) * (m_tema / eps)
    assert negative_steps > 0 and s.v_clipped == negative_steps


def _spike_run(guard, steps=40):
    b = 0.9
    opt = FAME(lr=1e-3, beta1=b, beta2=b, beta3=b, beta4=b, beta5=b, variant="full", v_guard=guard)
    w, s, traj = np.zeros(1), opt.init(np.zeros(1)), []
    for t in range(steps):
        g = np.array([10.0 if t == 0 else 0.0])
        w_old = w
        w, s = opt.update(w, s, g)
        traj.append(w[0] - w_old[0])
    return np.array(traj), s


def test_zero_guard_blows_up_after_a_spike_and_adam_guard_does_not():
    """Why v_guard="adam" is the default: after a spike g = 10 and zero gradients, with all
    decays 0.9, max(v_tema, 0) lets the denominator collapse to eps and one step exceeds
    1000 (lr = 1e-3, so a million times lr), while the "adam" guard keeps every step at
    most Adam's bound |step| <= lr * |m_tema| / (sqrt(v1) / sqrt(1 - b2^t)) and in
    particular below 10 lr here."""
    zero, _ = _spike_run("zero")
    assert np.max(np.abs(zero)) > 1000.0
    adam, s = _spike_run("adam")
    assert np.max(np.abs(adam)) < 10 * 1e-3 and s.v_clipped > 0


@pytest.mark.parametrize("guard", ["adam", "zero"])
def test_full_with_first_ema_only_is_adam_under_both_guards(guard):
    """b3 = b4 = b5 = 0, debias="adam": v_tema = v1 and the "adam" guard compares the value
    with itself (never fires); both guards give Adam's steps bit for bit."""
    rng = np.random.default_rng(0)
    full = FAME(lr=1e-2, beta3=0.0, beta4=0.0, beta5=0.0, variant="full", debias="adam",
                v_guard=guard)
    adam = Adam(lr=1e-2)
    w, sf, sa = rng.standard_normal(4), None, None
    wf, wa = w, w
    sf, sa = full.init(w), adam.init(w)
    for _ in range(20):
        g = rng.standard_normal(4)
        wf, sf = full.update(wf, sf, g)
        wa, sa = adam.update(wa, sa, g)
        assert np.array_equal(wf, wa)
    assert sf.v_clipped == 0


def test_v_guard_is_validated():
    with pytest.raises(ValueError, match="v_guard"):
        FAME(variant="full", v_guard="none")


# ------------------------------------------------------------------- reset and state

@pytest.mark.parametrize("variant", ["official", "full"])
def test_reset_keeps_step_and_guard_count(variant):
    """reset() clears all moments and the response chain and restarts count (t = 1),
    keeps `step` (the lr schedule index) and, for full, v_clipped. The next step then
    equals a fresh optimizer's first step at lr[step] bit for bit."""
    lrs = np.arange(1.0, 18.0) * 1e-3
    kw = dict(beta1=0.9, beta2=0.9, beta3=0.9, beta4=0.9, beta5=0.9, debias="exact", variant=variant)
    opt = FAME(lr=lrs, **kw)
    w = np.zeros(1)
    s = opt.init(w)
    for g in [10.0] + [0.0] * 15:  # a spike, then zeros: full's guard fires from step 14
        w, s = opt.update(w, s, np.array([g]))
    r = opt.reset(s)
    assert (r.step, r.count) == (16, 0)
    assert type(r) is type(s)
    for name, value in zip(r._fields, r):
        if isinstance(value, np.ndarray):
            assert not value.any(), name
    if variant == "full":
        assert s.v_clipped > 0 and r.v_clipped == s.v_clipped
    g = np.array([-0.5])
    w_r, s_r = opt.update(w, r, g)
    f = FAME(lr=float(lrs[16]), **kw)
    w_f, _ = f.update(w, f.init(w), g)
    assert np.array_equal(w_r, w_f) and (s_r.step, s_r.count) == (17, 1)


def test_state_type_mismatch_raises_type_error():
    """A state from the other variant (or from Adam) is a TypeError naming the class."""
    w, g = np.zeros(2), np.ones(2)
    official, full = FAME(), FAME(variant="full")
    with pytest.raises(TypeError, match="FAMEFullState"):
        full.update(w, official.init(w), g)
    with pytest.raises(TypeError, match="FAMEState"):
        official.update(w, full.init(w), g)
    with pytest.raises(TypeError, match="state"):
        official.update(w, Adam().init(w), g)
    with pytest.raises(ValueError, match="state"):
        official.update(w, official.init(np.zeros(3)), g)
    assert isinstance(official.init(w), FAMEState) and isinstance(full.init(w), FAMEFullState)


@pytest.mark.parametrize("variant", ["official", "full"])
@given(data=st.data())
def test_inputs_are_never_modified(variant, data):
    w = data.draw(vectors(1, 5, -10, 10))
    g = data.draw(vectors(w.shape[0], w.shape[0]))
    opt = FAME(lr=0.1, weight_decay=0.1, variant=variant, debias="exact")
    w, s = opt.update(w, opt.init(w), g)  # non-zero moments and response
    before = (w.copy(), g.copy(), [a.copy() if isinstance(a, np.ndarray) else a for a in s])
    w1, s1 = opt.update(w, s, g)
    opt.reset(s)
    assert np.array_equal(w, before[0]) and np.array_equal(g, before[1])
    for old, cur in zip(before[2], s):
        assert np.array_equal(old, cur)
    assert w1 is not w and all(a is not b for a, b in zip(s1, s) if isinstance(a, np.ndarray))


# -------------------------------------------------------------------------- validation

@pytest.mark.parametrize("name", ["beta1", "beta2", "beta3", "beta4", "beta5"])
@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0, float("nan"), float("inf")])
def test_all_five_betas_validated(name, bad):
    for variant in ("official", "full"):
        with pytest.raises(ValueError, match=name):
            FAME(variant=variant, **{name: bad})


@pytest.mark.parametrize("name,bad,exc", [
    ("eps", 0.0, ValueError), ("eps", -1e-8, ValueError), ("eps", float("nan"), ValueError),
    ("lr", -1e-3, ValueError), ("lr", float("inf"), ValueError),
    ("weight_decay", -1.0, ValueError), ("weight_decay", float("nan"), ValueError),
    ("beta3", "0.5", TypeError), ("beta5", True, TypeError),
    ("maximize", 1, TypeError), ("maximize", None, TypeError),
    ("variant", "Official", ValueError), ("variant", "tema", ValueError),
    ("variant", None, ValueError),
    ("debias", "none", ValueError), ("debias", "Adam", ValueError), ("debias", 1, ValueError),
    ("debias", "", ValueError),
])
def test_bad_hyperparameters_name_the_parameter(name, bad, exc):
    with pytest.raises(exc, match=name):
        FAME(**{name: bad})


# ---------------------------------------------------------------------------- AMSGrad

def ref_official_amsgrad(w, s, g, lr, b1, b2, b3, b4, eps, wd):
    """Scalar transcription of the FAME authors' ``Tema`` with ``amsgrad=True`` (their
    ``torch.maximum(max_exp_avg_sqs[i], exp_avg_sq)``, then
    ``max_exp_avg_sqs[i].sqrt() / math.sqrt(bias_correction2) + eps``), no maximize."""
    t = float(s["count"] + 1)
    bias_correction1, bias_correction2 = 1 - b1 ** t, 1 - b2 ** t
    w, m1, m2, m3, v, vm = (list(a) for a in (w, s["m1"], s["m2"], s["m3"], s["v"], s["vm"]))
    for i in range(len(w)):
        gi = g[i] + wd * w[i] if wd != 0 else g[i]
        m1[i] = b1 * m1[i] + (1 - b1) * gi
        m2[i] = b3 * m2[i] + (1 - b3) * m1[i]
        m3[i] = b4 * m3[i] + (1 - b4) * m2[i]
        v[i] = b2 * v[i] + (1 - b2) * gi * gi
        vm[i] = max(vm[i], v[i])
        denom = math.sqrt(vm[i]) / math.sqrt(bias_correction2) + eps
        # param.addcdiv_(tema, denom, value=-step_size): the quotient first
        w[i] = w[i] - (lr / bias_correction1) * (((3 * m1[i] - 3 * m2[i]) + m3[i]) / denom)
    return w, dict(count=s["count"] + 1, m1=m1, m2=m2, m3=m3, v=v, vm=vm)


@given(steps=st.integers(1, 12), data=st.data(), beta3=decays, beta4=decays,
       lr=st.floats(0.0, 1.0), beta1=decays, beta2=decays, weight_decay=st.floats(0.0, 1.0))
def test_amsgrad_equals_the_authors_code_transcription(steps, data, beta3, beta4, lr, beta1,
                                                       beta2, weight_decay):
    """FAME(amsgrad=True) against the scalar transcription of the authors' loop, bit for
    bit (their addcdiv divides first, as refimpl does)."""
    w, grads = _grads(data, steps)
    opt = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=beta3, beta4=beta4,
               weight_decay=weight_decay, amsgrad=True)
    state, ref = opt.init(w), dict(count=0, m1=[0.0] * len(w), m2=[0.0] * len(w),
                                   m3=[0.0] * len(w), v=[0.0] * len(w), vm=[0.0] * len(w))
    rw = w.tolist()
    for g in grads:
        rw_new, ref = ref_official_amsgrad(rw, ref, g.tolist(), lr, beta1, beta2, beta3, beta4,
                                           1e-8, weight_decay)
        if not all(math.isfinite(x) for x in rw_new):
            return
        try:
            w_new, state = opt.update(w, state, g)
        except FloatingPointError:
            return
        assert np.array_equal(w_new, rw_new)
        assert np.array_equal(state.v_max, ref["vm"]) and np.array_equal(state.v, ref["v"])
        w, rw = w_new, rw_new


@given(steps=st.integers(1, 12), data=st.data(), beta1=decays, beta2=decays,
       lr=st.floats(0.0, 1.0))
def test_amsgrad_with_b3_b4_zero_is_adams_amsgrad_bitwise(steps, data, beta1, beta2, lr):
    """The FAME-adam reduction holds with AMSGrad too: b3 = b4 = 0 gives torch's AMSGrad
    (Adam(amsgrad=True)) bit for bit, including the running maximum."""
    w, grads = _grads(data, steps)
    fame = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=0.0, beta4=0.0, amsgrad=True)
    adam = Adam(lr=lr, beta1=beta1, beta2=beta2, amsgrad=True)
    _assert_runs_like_adam(fame, adam, w, grads, _same_v_max)


def test_amsgrad_by_hand_after_the_second_moment_falls():
    """Adam's hand case with b3 = b4 = 0.5: lr 1, betas (0.5, 0.5), eps 2^-40, g = 2 then 0.
    Step 1: m1 = 1, m2 = 0.5, m3 = 0.25, TEMA = 1.75 (= 3 - 1.5 + 0.25), v = 2, step size
    2, denominator 2 + eps: w1 = -1.75 (to eps's 2^-41). Step 2: m1 = 0.5, m2 = 0.5,
    m3 = 0.375, TEMA = 0.375; v = 1 falls, v_max stays 2: denominator
    sqrt(2) / sqrt(3/4) = sqrt(8/3); step size 4/3: the step is 0.5 / sqrt(8/3) =
    sqrt(3/32) = 0.30619 (plain FAME: 0.5 / (2 / sqrt(3)) = 0.43301)."""
    for amsgrad, second in ((True, math.sqrt(3 / 32)), (False, math.sqrt(3) / 4)):
        opt = FAME(lr=1.0, beta1=0.5, beta2=0.5, beta3=0.5, beta4=0.5, eps=2.0 ** -40,
                   amsgrad=amsgrad)
        w0 = np.array([0.0])
        w1, s1 = opt.update(w0, opt.init(w0), np.array([2.0]))
        assert w1[0] == pytest.approx(-1.75, rel=2.0 ** -39)
        w2, s2 = opt.update(w1, s1, np.array([0.0]))
        assert w1[0] - w2[0] == pytest.approx(second, rel=8 * EPS + 2.0 ** -39)
        assert s2.v_max[0] == (2.0 if amsgrad else 0.0)


def test_amsgrad_validation_and_the_loop():
    with pytest.raises(ValueError, match="amsgrad must be False with variant='full'"):
        FAME(variant="full", amsgrad=True)
    with pytest.raises(TypeError, match="amsgrad"):
        FAME(amsgrad=1)
    import refimpl as r
    from tests.helpers import hand_run
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    for opt in (FAME(lr=0.05, amsgrad=True, debias="exact", beta3=0.3, beta4=0.7),
                r.SwitchEMA(r.SAM(FAME(lr=0.05, amsgrad=True, maximize=False), rho=0.1),
                            decay=0.5, switch_unit="step", switch_every=3, on_switch="reset")):
        rec = r.train(problem, opt, w0=np.array([1.0, -1.0, 0.5]), steps=25, seed=4,
                      record_params=True)
        assert np.array_equal(rec.params, hand_run(problem, opt, np.array([1.0, -1.0, 0.5]), 25,
                                                   seed=4)[0])


@given(steps=st.integers(1, 12), data=st.data(), beta1=decays, beta2=decays,
       lr=st.floats(0.0, 1.0), weight_decay=st.floats(0.0, 1.0), maximize=st.booleans(),
       amsgrad=st.booleans())
def test_decoupled_decay_with_b3_b4_zero_is_adamw_bitwise(steps, data, beta1, beta2, lr,
                                                          weight_decay, maximize, amsgrad):
    """FAME(decoupled_weight_decay=True) applies AdamW's w (1 - lr wd) before the
    moments: with b3 = b4 = 0 it is AdamW bit for bit (and with AMSGrad, AdamW's torch
    AMSGrad), maximize included (the decay is not negated)."""
    w, grads = _grads(data, steps)
    fame = FAME(lr=lr, beta1=beta1, beta2=beta2, beta3=0.0, beta4=0.0, weight_decay=weight_decay,
                maximize=maximize, amsgrad=amsgrad, decoupled_weight_decay=True)
    adamw = Adam(lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, maximize=maximize,
                 amsgrad=amsgrad, decoupled_weight_decay=True)
    _assert_runs_like_adam(fame, adamw, w, grads, _same_v_max)


def test_decoupled_decay_by_hand_and_in_the_loop():
    """g = 0 from zero moments: only the decay acts, w1 = w0 (1 - lr wd) = 8 * 0.75 = 6
    exactly (lr 0.5, wd 0.5), in both variants; coupled L2 would move by about lr = 0.5
    instead of 2. The jitted loop runs it as the step API does (official and full)."""
    for variant in ("official", "full"):
        opt = FAME(lr=0.5, weight_decay=0.5, decoupled_weight_decay=True, variant=variant)
        w1, _ = opt.update(np.array([8.0]), opt.init(np.array([8.0])), np.array([0.0]))
        assert w1[0] == 6.0
    import refimpl as r
    from tests.helpers import hand_run
    problem = r.NoisyQuadratic(np.array([1.0, 0.3, 2.0]), batch_size=2)
    w0 = np.array([1.0, -1.0, 0.5])
    for opt in (FAME(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True, amsgrad=True),
                FAME(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True, variant="full")):
        rec = r.train(problem, opt, w0=w0, steps=25, seed=5, record_params=True)
        assert np.array_equal(rec.params, hand_run(problem, opt, w0, 25, seed=5)[0])
    with pytest.raises(TypeError, match="decoupled_weight_decay"):
        FAME(decoupled_weight_decay="yes")
