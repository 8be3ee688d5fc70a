"""Example adapter: pytorch_optimizer's SAM against the golden vectors, a worked example
of a real bug the float64 vectors find.

    refimpl golden check --impl refimpl.golden.examples.pytorch_optimizer_adapter:make

``pytorch_optimizer.SAM`` (the package ``pytorch_optimizer`` on PyPI, checked at 4.1.0;
refimpl never depends on it) wraps a torch optimizer in davda54's two-step form:
``first_step`` adds ``e = (w^2 if adaptive else 1) * g * rho / (||g|| + perturb_eps)``,
``second_step`` restores ``w`` and lets the base optimizer step with the gradient at
``w + e``. Everything else here is the torch adapter (torch.optim SGD / Adam / AdamW,
AveragedModel for the EMA).

What the checker reports: its global gradient norm
(``pytorch_optimizer/optimizer/utils/gradient.py``, ``get_global_gradient_norm``) casts
each parameter's norm to float32 (``.float()``) before squaring and summing, even for
float64 parameters, so the ascent ``e`` carries a relative error of about 6e-8 and every
float64 SAM case fails at step 1 (refimpl's float64 tolerances are about 1e-15 relative;
tests/test_golden_adapters.py asserts this). The float32 cases pass: there the cast
changes nothing. Cases it cannot express are skipped: StableSAM (no renormalization in
``SAM``), the unnormalized ascents, and whatever the torch adapter skips.
"""

from __future__ import annotations

import pytorch_optimizer

from refimpl.golden import Unsupported
from refimpl.golden.examples import torch_adapter


class _TwoStep:
    """Drives ``pytorch_optimizer.SAM`` the way its documentation does, one tensor."""

    def __init__(self, param, sam):
        self.p, self.sam = param, sam

    def step(self, grad_at):
        self.p.grad = grad_at(self.p)
        self.sam.first_step()          # w <- w + e, from p.grad
        self.p.grad = grad_at(self.p)  # the gradient at w + e
        self.sam.second_step()         # w restored, base optimizer steps


class Stepper(torch_adapter.Stepper):
    def __init__(self, case):
        super().__init__(case)
        cls, kwargs = torch_adapter.base_optimizer(case)
        s = case.sam
        sam = pytorch_optimizer.SAM([self.model.w], cls, rho=s["rho"],
                                    adaptive=s["ascent"] == "adaptive",
                                    perturb_eps=s["eps"], **kwargs)
        self.opt = sam.base_optimizer  # lr per step and the state reset go here
        self.sam = _TwoStep(self.model.w, sam)


def make(case):
    """The factory: SAM cases with a normalized ascent (plain or adaptive)."""
    s = case.sam
    if s is None:
        raise Unsupported("not a SAM case (the torch adapter covers these)")
    if s["kind"] != "sam":
        raise Unsupported("pytorch_optimizer.SAM has no StableSAM renormalization")
    if s["ascent"] not in ("normalized", "adaptive"):
        raise Unsupported(f"pytorch_optimizer.SAM has no {s['ascent']!r} ascent")
    torch_adapter.make(case)  # raises Unsupported for what torch cannot express
    return Stepper(case)
