"""The example adapters for PyTorch and optax (refimpl/golden/examples) against the golden
vectors. Each test runs only when its library is installed and skips cleanly otherwise:
neither library is a dependency of refimpl or of its test suite.

What FORMAT.md section 9 states, checked here: every case the peer can express passes,
the skipped cases are exactly those it cannot express (FAME, Keras momentum, the EMA
start it lacks, optax's missing dampening), the peer stays well inside the tolerance
(rounding differences only), and optax's eps-free ``contrib.normalize`` fails exactly
the SAM cases that depend on eps or a zero gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import golden
from refimpl.golden.checker import compare, run_case


def _run_all(factory):
    """(results by id, largest |diff| / tol over every checked value of passing cases)."""
    results, worst = {}, 0.0
    for path in golden.golden_files(golden.VECTORS):
        for case in golden.load(path).cases:
            traj = run_case(case, factory)
            result = compare(case, traj)
            results[case.id] = result
            if result.status != "pass":
                continue
            for k in range(case.n_done):
                pairs = [(traj.steps[k].params, case.params[k], case.tol_params[k])]
                if case.average_expected is not None:
                    pairs.append((traj.steps[k].average, case.average_expected[k], case.tol_average[k]))
                for got, want, tol in pairs:
                    diff = np.abs(got - want)
                    worst = max(worst, float(np.max(np.where(tol > 0, diff / np.where(tol > 0, tol, 1), 0))))
    return results, worst


def _ids(results, status):
    return {cid for cid, r in results.items() if r.status == status}


def _all_cases():
    return [c for p in golden.golden_files(golden.VECTORS) for c in golden.load(p).cases]


def test_torch_adapter_passes_every_case_torch_can_express():
    pytest.importorskip("torch")
    from refimpl.golden.examples import torch_adapter

    results, worst = _run_all(torch_adapter.make)
    assert _ids(results, "fail") == set(), [r.report for r in results.values() if r.status == "fail"]
    cannot = {c.id for c in _all_cases()
              if c.base.kind == "fame"
              or (c.base.kind == "sgd" and c.base["convention"] == "keras")
              or (c.average is not None and c.average["start"] == "zeros")}
    assert _ids(results, "skip") == cannot and len(cannot) == 22
    assert len(_ids(results, "pass")) == 75
    # rounding only (fused multiply-add, lerp, (w + e) - e): measured 0.12 of the tolerance
    assert worst < 0.5


def test_optax_adapter_passes_every_case_optax_can_express():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from refimpl.golden.examples import optax_adapter

    results, worst = _run_all(optax_adapter.make)
    assert _ids(results, "fail") == set(), [r.report for r in results.values() if r.status == "fail"]
    cannot = {c.id for c in _all_cases()
              if c.base.kind == "fame"
              or (c.base.kind == "sgd" and (c.base["convention"] == "keras" or c.base["dampening"] != 0))
              or (c.average is not None and (c.average["start"] != "zeros" or c.average["warmup"] is not None))}
    assert _ids(results, "skip") == cannot and len(cannot) == 40
    assert len(_ids(results, "pass")) == 57
    assert worst < 0.5  # measured 0.10


def test_optax_contrib_normalize_has_no_eps():
    """optax.contrib.normalize divides by the bare global norm: NaN on a zero gradient
    (step 1 of the zero-gradient cases), a visible difference when eps matters
    (eps-large, step 1), and agreement when eps = 0 (normalized-eps0-sgd)."""
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from refimpl.golden.examples import optax_adapter

    sam_cases = [c for c in _all_cases() if c.sam is not None and c.average is None
                 and c.diverges_at is None]
    results = {c.id: compare(c, run_case(c, optax_adapter.make_contrib_normalize)) for c in sam_cases}
    steps = {cid: r.step for cid, r in results.items() if r.status == "fail"}
    for cid in ("sam/zero-gradient", "sam/zero-gradient-eps0", "stable_sam/zero-gradient",
                "stable_sam/zero-gradient-eps0"):
        assert steps[cid] == 1 and "diverged at step 1" in results[cid].message
    assert steps["sam/eps-large"] == 1 and steps["stable_sam/eps-large"] == 1
    assert results["sam/normalized-eps0-sgd"].status == "pass"
    # and, at float64 tolerances, even refimpl's default eps = 1e-12 is visible
    assert set(steps) == {"sam/zero-gradient", "sam/zero-gradient-eps0", "stable_sam/zero-gradient",
                          "stable_sam/zero-gradient-eps0", "sam/eps-large", "stable_sam/eps-large",
                          "sam/normalized-sgd", "sam/weight-decay", "sam/nqm", "mlp/sam"}
