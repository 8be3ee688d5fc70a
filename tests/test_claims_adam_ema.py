"""Claim EMA-adam (proofs/ema.md): the EMA Scaling Rule combined with Adam's square-root
rule. Adam is not linear, so there are no exact moments; the claim's bound holds for the
SAMPLE means of any set of runs (the EMA is linear in w), so it is checked on seeded runs
of refimpl.train with no statistical slack, only rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import EMA, Adam, NoisyQuadratic, train
from refimpl._jit import JIT_DISABLED
from refimpl.scaling import scale_optimizer

# 2000 seeded runs per configuration take a second compiled and many minutes as plain
# Python; with NUMBA_DISABLE_JIT=1 they are skipped (test_jit.py checks the compiled loop
# against its Python reading bit for bit, so rerunning them uncompiled adds no information)
pytestmark = pytest.mark.skipif(JIT_DISABLED, reason="thousands of seeded Adam runs; compiled == "
                                "plain Python is checked in test_jit.py")

H, C, B0, LR, RHO, BASE_STEPS, RUNS = np.array([1.0, 0.3]), np.array([100.0, 100.0]), 4, 0.002, 0.99, 800, 2000
EPS = np.finfo(np.float64).eps


def sample_means(kappa, rule):
    """Mean over RUNS seeded runs of w_t and of the EMA after every step (t = 0..steps)."""
    prob = NoisyQuadratic(H, c=C, batch_size=B0 * kappa, w_star=np.zeros(2))
    opt = scale_optimizer(EMA(Adam(lr=LR), decay=RHO), kappa)
    if not rule:
        opt = EMA(opt.inner, decay=RHO)  # Adam scaled, the EMA's decay kept
    w_sum = z_sum = 0.0
    for seed in range(RUNS):
        rec = train(prob, opt, w0=np.ones(2), steps=BASE_STEPS // kappa, seed=seed,
                    record_params=True)
        w_sum = w_sum + rec.params
        z_sum = z_sum + rec.averages
    return w_sum / RUNS, z_sum / RUNS


@pytest.fixture(scope="module")
def base():
    return sample_means(1, True)


def bound_terms(base, scaled_w, kappa):
    """G: the student's largest matched-time mean gap; V: the base run's largest drift of
    the mean within a block of kappa steps (against the block's last step)."""
    w1, _ = base
    G = np.max(np.abs(scaled_w - w1[::kappa]), axis=0)
    blocks = w1[1:].reshape(-1, kappa, 2)
    V = np.max(np.abs(blocks - blocks[:, -1:, :]), axis=(0, 1))
    return G, V


@pytest.mark.claim("EMA-adam")
@pytest.mark.parametrize("kappa", [2, 4])
def test_with_rho_kappa_the_ema_adds_no_gap_of_its_own(base, kappa):
    """|mean z_scaled(j) - mean z_base(kappa j)| <= G + V at every matched step (proved
    for any runs; rounding: 1e-12 absolute), and the end-of-run EMA gap is below 1.5
    times the student's own."""
    w, z = sample_means(kappa, True)
    G, V = bound_terms(base, w, kappa)
    gap = np.abs(z - base[1][::kappa])
    print(f"\nkappa {kappa}, rho^kappa: EMA gap max {gap.max(axis=0)}, G {G}, V {V}; "
          f"end: EMA {gap[-1]}, student {np.abs(w[-1] - base[0][-1])}")
    assert np.all(gap <= G + V + 1e-12)
    assert np.all(gap[-1] <= 1.5 * np.abs(w[-1] - base[0][-1]) + 4e-3)


@pytest.mark.claim("EMA-adam")
@pytest.mark.parametrize("kappa", [2, 4])
def test_teeth_keeping_rho_breaks_the_bound(base, kappa):
    """With Adam scaled but the EMA's decay kept, the same bound fails and the end-of-run
    EMA gap is more than 5 times the student's."""
    w, z = sample_means(kappa, False)
    G, V = bound_terms(base, w, kappa)
    gap = np.abs(z - base[1][::kappa])
    print(f"\nkappa {kappa}, rho kept: EMA gap at the end {gap[-1]}, G + V = {G + V}")
    assert np.any(gap > G + V + 1e-12)
    assert gap[-1, 0] > 5 * np.abs(w[-1, 0] - base[0][-1, 0])
