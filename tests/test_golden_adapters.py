"""The example adapters for PyTorch, optax and pytorch_optimizer's SAM
(refimpl/golden/examples) against the golden vectors. Each test runs only when its library is installed and skips cleanly otherwise:
neither library is a dependency of refimpl or of its test suite.

What FORMAT.md section 9 states, checked here: every case the peer can express passes,
the skipped cases are exactly those it cannot express (FAME, Keras momentum, the EMA
start it lacks, optax's missing dampening, the AMSGrad maximum it lacks), the peer stays
well inside the tolerance (rounding differences only), optax's eps-free
``contrib.normalize`` fails exactly the SAM cases that depend on eps or a zero gradient,
and pytorch_optimizer's float32 gradient norm fails every float64 SAM case where the
ascent shows.
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
              or (c.average is not None and c.average.get("start") == "zeros")
              or (c.base.kind == "adam" and c.base.get("amsgrad") == "debiased")}
    assert _ids(results, "skip") == cannot and len(cannot) == 26
    assert len(_ids(results, "pass")) == 97
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
              or (c.average is not None and c.average.kind in ("ema", "switch_ema")
                  and (c.average["start"] != "zeros" or c.average["warmup"] is not None))
              or (c.average is not None and c.average.kind == "swa")
              or (c.average is not None and c.average.kind == "lookahead"
                  and c.average["start"] != "copy")
              or (c.base.kind == "adam" and c.base.get("amsgrad") == "raw")}
    assert _ids(results, "skip") == cannot and len(cannot) == 53
    assert len(_ids(results, "pass")) == 70
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


def _norm_in_float64(param_groups, device=None, *, weight_adaptive=False):
    """pytorch_optimizer's get_global_gradient_norm (squared) with the float32 cast
    removed: the sum of squares of every (|w|-weighted) gradient entry in float64."""
    import torch
    total = torch.zeros(1, dtype=torch.float64)
    for group in param_groups:
        adaptive = weight_adaptive and group.get("adaptive", False)
        for p in group["params"]:
            if p.grad is not None:
                g = p.grad * p.abs() if adaptive else p.grad
                total = total + (g.to(torch.float64) ** 2).sum()
    return total


def test_pytorch_optimizer_sam_float32_norm_is_caught_at_step_1(monkeypatch):
    """The worked example of FORMAT.md section 9: pytorch_optimizer.SAM casts the global
    gradient norm to float32 even for float64 parameters. Every float64 SAM case whose
    ascent matters fails at step 1 (sam/adam at step 2: Adam's first step is
    lr g / (|g| + eps), nearly blind to the size of g); the float32 cases pass;
    sam/zero-gradient passes because its replayed gradient does not depend on w, so the
    ascent cannot show. With eps = 0 and a zero gradient it divides 0 by 0 (no guard).
    Control: the same adapter with the norm summed in float64 passes every case except
    that 0/0 one, so the float32 cast is the whole difference."""
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_optimizer")
    import pytorch_optimizer.optimizer.sam as po_sam

    from refimpl.golden.examples import pytorch_optimizer_adapter

    results, _ = _run_all(pytorch_optimizer_adapter.make)
    steps = {cid: r.step for cid, r in results.items() if r.status == "fail"}
    float64_sam = {c.id for c in _all_cases() if c.sam is not None and c.sam["kind"] == "sam"
                   and c.sam["ascent"] in ("normalized", "adaptive") and c.dtype == "float64"
                   and c.base.kind != "fame"}  # torch has no FAME: skipped
    assert set(steps) == float64_sam - {"sam/zero-gradient"}
    assert steps.pop("sam/adam") == 2 and set(steps.values()) == {1}
    assert "diverged at step 1" in results["sam/zero-gradient-eps0"].message
    assert _ids(results, "pass") == {"sam/zero-gradient", "sam/normalized-sgd-f32",
                                     "sam/adaptive-sgd-f32"}
    monkeypatch.setattr(po_sam, "get_global_gradient_norm", _norm_in_float64)
    fixed, _ = _run_all(pytorch_optimizer_adapter.make)
    assert _ids(fixed, "fail") == {"sam/zero-gradient-eps0"}
    assert len(_ids(fixed, "pass")) == 13
