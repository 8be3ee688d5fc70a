"""Claim SSAM-stability (proofs/sam.md): uniform stability of SGD, USAM, normalized SAM and
StableSAM on per-example logistic regression, and the learning rates where it holds.

Everything runs through refimpl's public step API (``opt.step(w, state, oracle)``) with
an oracle written here in NumPy: the per-example logistic loss
``f(w; x, y) = log(1 + exp(-y x.w))``, convex, L-Lipschitz with L = ||x|| <= R and
beta-smooth with beta = R^2 / 4. The expected values are closed forms (the bound
``2 eta L H_T``, the thresholds ``2 / beta`` and ``2 / (beta (1 + rho beta))``) and USAM's
sharp threshold from a dense evaluation of a scalar function, never refimpl's output.

Rounding allowance: one step computes ``w - eta g`` from a gradient with a few roundings,
so each computed iterate is within ``8 eps (||w|| + eta L)`` of the exact image of the
computed previous iterate; a distance between two runs may therefore grow by twice that
at a step where the exact maps cannot make it grow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from refimpl import SAM, SGD, StableSAM

EPS = np.finfo(np.float64).eps
R = 2.0                      # every example has ||x|| <= R, and some ||x|| = R
BETA, L = R * R / 4.0, R     # smoothness and Lipschitz constant of the per-example loss
RHO = 0.25                   # rho R^2 = 1: USAM's closed-form range 2 / (beta (1 + rho beta)) = 1.6
KINDS = ("SGD", "USAM", "SAM", "StableSAM")


def oracle(x, y):
    """Per-example logistic loss and gradient ``l'(s) y x``, s = y x.w, l'(s) = -1/(1 + e^s)."""
    def f(w):
        s = y * float(x @ w)
        return float(np.logaddexp(0.0, -s)), -expit(-s) * y * x
    return f


def make(kind, lr):
    base = SGD(lr=lr)
    if kind == "SGD":
        return base
    if kind == "USAM":
        return SAM(base, rho=RHO, ascent="unnormalized", eps=0.0)
    if kind == "SAM":
        return SAM(base, rho=RHO, ascent="normalized", eps=0.0)
    return StableSAM(base, rho=RHO, eps=0.0)  # the paper's version: USAM's ascent


def limit(kind):
    """The learning rates the claim covers: 2 / beta, and for USAM 2 / (beta (1 + rho beta))."""
    return 2.0 / (BETA * (1.0 + RHO * BETA)) if kind == "USAM" else 2.0 / BETA


def step(kind, lr, w, x, y):
    opt = make(kind, lr)
    return opt.step(w, opt.init(w), oracle(x, y))[0]


def slack(*ws, lr):
    return 16.0 * EPS * (sum(float(np.linalg.norm(w)) for w in ws) + lr * L)


@st.composite
def examples(draw, d=2):
    """A unit direction scaled to a norm in [R/4, R] (half the time exactly R), a label."""
    v = np.array(draw(st.lists(st.floats(-1, 1), min_size=d, max_size=d)))
    if np.linalg.norm(v) < 1e-3:
        v = np.eye(d)[0]
    norm = R if draw(st.booleans()) else draw(st.floats(R / 4, R))
    return v / np.linalg.norm(v) * norm, draw(st.sampled_from([-1.0, 1.0]))


points = st.lists(st.floats(-3, 3), min_size=2, max_size=2).map(np.array)


# ------------------------------------------------------------ the lemma: step maps


@pytest.mark.claim("SSAM-stability")
@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), z=examples(), frac=st.floats(0.05, 1.0), u=points, v=points)
def test_each_step_map_is_nonexpansive_in_its_range(kind, z, frac, u, v):
    """||G(u) - G(v)|| <= ||u - v|| for eta <= the method's limit (the proof's lemma)."""
    lr = frac * limit(kind)
    x, y = z
    gu, gv = step(kind, lr, u, x, y), step(kind, lr, v, x, y)
    assert np.linalg.norm(gu - gv) <= np.linalg.norm(u - v) + slack(u, v, lr=lr)
    # the bounded step: ||G(w) - w|| <= eta L (|l'| < 1 at any point, ascent or not)
    assert np.linalg.norm(gu - u) <= lr * np.linalg.norm(x) * (1 + 4 * EPS)


@pytest.mark.claim("SSAM-stability")
@settings(max_examples=30, deadline=None)
@given(zs=st.lists(examples(), min_size=1, max_size=6), frac=st.floats(0.05, 1.0),
       w0=points, seed=st.integers(0, 2**32 - 1))
def test_stablesam_is_sgd_on_per_example_losses(zs, frac, w0, seed):
    """g and g_adv are both multiples of y x, so g_ssam = g: StableSAM's run is SGD's,
    to rounding (non-expansive maps do not amplify it: at most T slack)."""
    lr = frac * 2.0 / BETA
    idx = np.random.default_rng(seed).integers(0, len(zs), 30)
    a, b = w0.copy(), w0.copy()
    worst = 0.0
    for i in idx:
        a, b = step("StableSAM", lr, a, *zs[i]), step("SGD", lr, b, *zs[i])
        worst += slack(a, b, lr=lr)
    assert np.linalg.norm(a - b) <= worst


# ------------------------------------------------------- the theorem: neighbouring runs


def neighbouring_runs(kind, lr, S, S2, idx, w0):
    """Distances ||w_t - w'_t|| (t = 0..T) and the running slack, same index sequence."""
    a, b = w0.copy(), w0.copy()
    dist, slk = [0.0], [0.0]
    for i in idx:
        a, b = step(kind, lr, a, *S[i]), step(kind, lr, b, *S2[i])
        dist.append(float(np.linalg.norm(a - b)))
        slk.append(slk[-1] + slack(a, b, lr=lr))
    return np.array(dist), np.array(slk)


@pytest.mark.claim("SSAM-stability")
@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(KINDS), zs=st.lists(examples(), min_size=2, max_size=8),
       z_new=examples(), frac=st.floats(0.05, 1.0), w0=points, seed=st.integers(0, 2**32 - 1))
def test_neighbouring_runs_stay_within_2_eta_L_per_hit(kind, zs, z_new, frac, w0, seed):
    """S and S' differ in example j. At a step that does not pick j the distance does not
    grow; at a step that picks j it grows by at most 2 eta L. So ||w_T - w'_T|| <= 2 eta L
    H_T (H_T = the number of steps that picked j), whose mean over uniform sampling is
    2 eta L T / n: Hardt, Recht and Singer's bound, here for all four methods."""
    lr = frac * limit(kind)
    rng = np.random.default_rng(seed)
    j = int(rng.integers(len(zs)))
    S2 = list(zs)
    S2[j] = z_new
    idx = rng.integers(0, len(zs), 40)
    dist, slk = neighbouring_runs(kind, lr, zs, S2, idx, w0)
    hit = idx == j
    growth = np.diff(dist)
    assert np.all(growth[~hit] <= np.diff(slk)[~hit])
    assert np.all(growth[hit] <= 2 * lr * L + np.diff(slk)[hit])
    assert dist[-1] <= 2 * lr * L * hit.sum() + slk[-1]
    if not hit.any():
        assert dist[-1] == 0.0  # the same operations on the same data: the same bits


# --------------------------------------------------------- USAM's range, and the teeth


def usam_slope_sup(c: float) -> tuple[float, float]:
    """sup over s of phi'(s) = l''(psi(s)) (1 + c l''(s)), psi(s) = s + c l'(s): the
    largest slope of USAM's per-example map along x, in units of ||x||^2 (c = rho ||x||^2).
    Dense grid then golden-section refinement; the function is smooth and unimodal."""
    def lpp(s):
        p = expit(s)
        return p * (1.0 - p)

    def dphi(s):
        return lpp(s + c * (-expit(-s))) * (1.0 + c * lpp(s))

    grid = np.linspace(-10, 10, 200001)
    k = int(np.argmax(dphi(grid)))
    lo, hi = grid[k - 1], grid[k + 1]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        m1, m2 = hi - g * (hi - lo), lo + g * (hi - lo)
        lo, hi = (lo, m2) if dphi(m1) > dphi(m2) else (m1, hi)
    s = 0.5 * (lo + hi)
    return float(dphi(s)), float(s)


@pytest.mark.claim("SSAM-stability")
def test_usams_sharp_range_lies_between_its_closed_form_and_sgds():
    """At rho R^2 = 1: sup phi' = 0.31032 < 1/4 (1 + rho beta) = 0.3125, so USAM's exact
    range for ||x|| = R ends at 2 / (R^2 sup phi') = 1.6112, just above the closed form's
    1.6 and below SGD's (and StableSAM's) 2."""
    sup, s_star = usam_slope_sup(RHO * R * R)
    sharp = 2.0 / (R * R * sup)
    print(f"\nsup phi' = {sup:.6f} at s = {s_star:.4f}; USAM's sharp range eta < {sharp:.5f}; "
          f"closed form {limit('USAM'):.5f}; SGD {limit('SGD'):.5f}")
    assert 0.25 * (1 + RHO * BETA) - 0.003 < sup < 0.25 * (1 + RHO * BETA)
    assert limit("USAM") < sharp < limit("SGD")
    assert abs(sharp - 1.6112) < 5e-4


@pytest.mark.claim("SSAM-stability")
@pytest.mark.parametrize("lr", [1.65, 1.8, 2.0])
def test_teeth_usam_expands_where_sgd_and_stablesam_do_not(lr):
    """Between USAM's sharp range (1.6112) and 2 / beta = 2: two points whose margins lie
    either side of the steepest margin s* move APART under USAM's step (factor
    |1 - eta R^2 phi'| > 1), while SGD's and StableSAM's steps bring them closer. The
    claim "USAM is as stable as SGD for eta <= 2 / beta" is rejected."""
    sup, s_star = usam_slope_sup(RHO * R * R)
    x, y = np.array([R, 0.0]), 1.0
    u, v = np.array([(s_star - 1e-4) / R, 0.3]), np.array([(s_star + 1e-4) / R, 0.3])
    d0 = np.linalg.norm(u - v)
    factor = {k: np.linalg.norm(step(k, lr, u, x, y) - step(k, lr, v, x, y)) / d0 for k in KINDS}
    assert factor["USAM"] > 1.0 + 0.5 * (lr * R * R * sup - 2.0)   # expands, as predicted
    assert factor["SGD"] <= 1.0 and factor["StableSAM"] <= 1.0 + 1e-6


@pytest.mark.claim("SSAM-stability")
def test_teeth_sgds_range_is_sharp_too():
    """Just above 2 / beta, SGD's own step expands around the margin 0 (l''(0) = 1/4)."""
    x, y = np.array([R, 0.0]), 1.0
    u, v = np.array([-1e-4 / R, 0.0]), np.array([1e-4 / R, 0.0])
    lr = 1.05 * 2.0 / BETA
    out = np.linalg.norm(step("SGD", lr, u, x, y) - step("SGD", lr, v, x, y))
    assert out > 1.04 * np.linalg.norm(u - v)


@pytest.mark.claim("SSAM-stability")
def test_teeth_a_usam_run_pair_breaks_the_bound_between_the_ranges():
    """The run-level check rejects USAM at eta = 1.8: a neighbouring pair (S' shortens
    example 0 by 1e-6 of its length) whose distance GROWS by more than 10 % at a step that
    does not pick example 0, while SGD and StableSAM on the same pair never grow it there.
    The start w0 is found by a scan of starting margins in [-10, 0] (the hit moves the
    margin up by up to eta R^2, so the common step then acts near s*)."""
    lr = 1.8
    sup, s_star = usam_slope_sup(RHO * R * R)
    x = np.array([R, 0.0])
    S = [(x, 1.0), (x, 1.0)]
    S2 = [(x * (1 - 1e-6), 1.0), (x, 1.0)]
    idx = np.array([0, 1, 1, 1])
    found = None
    for s0 in np.linspace(-10, 0, 4001):
        dist, slk = neighbouring_runs("USAM", lr, S, S2, idx, np.array([s0 / R, 0.0]))
        if dist[2] > 1.1 * dist[1] > 0:
            found = s0
            break
    assert found is not None
    print(f"\nUSAM at eta = {lr}: start margin {found:.3f}; distance after the hit "
          f"{dist[1]:.3e}, one common step later {dist[2]:.3e}")
    w0 = np.array([found / R, 0.0])
    for kind in ("SGD", "StableSAM"):
        dist, slk = neighbouring_runs(kind, lr, S, S2, idx, w0)
        assert np.all(np.diff(dist)[1:] <= np.diff(slk)[1:])
