"""Example adapter: PyTorch's optimizers against the golden vectors.

    refimpl golden check --impl refimpl.golden.examples.torch_adapter:make

What it runs, written as a PyTorch user would (this file imports torch; refimpl never
depends on it):

* ``torch.optim.SGD`` (momentum, dampening, nesterov, weight_decay, maximize),
  ``torch.optim.Adam`` (``amsgrad=True`` for ``amsgrad: "raw"``) and
  ``torch.optim.AdamW`` (``decoupled_weight_decay``), the learning rate set in
  ``param_groups`` before each step;
* model EMA with ``torch.optim.swa_utils.AveragedModel`` and a ``multi_avg_fn`` that
  lerps like ``get_ema_multi_avg_fn`` with the step's decay (warm-ups included);
  Switch EMA on top of it (copy the average into the model; ``on_switch="reset"``
  clears ``optimizer.state``);
* SWA with ``AveragedModel``'s default equal average, and Lookahead written here as
  timm's ``Lookahead`` computes it (``slow.add_(fast - slow, alpha=alpha)``, then
  ``fast.copy_(slow)``; ``on_sync="reset"`` clears ``optimizer.state``);
* a SAM / ASAM / USAM / StableSAM wrapper in the style of the widely used davda54/sam
  code: the ascent is added to the parameters in place and subtracted again after the
  second gradient, then the base optimizer steps.

Convention differences (and the flags that match torch):

* ``AveragedModel`` copies the model at its FIRST ``update_parameters`` call. Calling it
  once before training gives refimpl's ``start="copy"`` (ema = w0); calling it first
  after step 1, as torch's documentation does, is refimpl's ``start="first"`` (the
  first update copies; later ones use the decay). There is no zero start with
  debiasing: ``start="zeros"`` cases are skipped (optax has it).
* torch's AMSGrad keeps the maximum of the raw second moment; optax's maximum of the
  debiased one (``amsgrad: "debiased"``) is not in torch: skipped.
* torch has no Keras-style momentum and no FAME: those cases are skipped. Cases in the
  optax convention run on ``torch.optim.SGD``: with dampening 0 the iterates are the same.
* Rounding, not conventions: ``param.add_(d, alpha=-lr)`` is one fused multiply-add,
  Adam writes its first moment with ``lerp_``, the EMA uses ``_foreach_lerp_``, the
  davda54-style SAM restores ``w`` as ``(w + e) - e``; the tolerances admit all of it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from refimpl.golden import Unsupported

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class Model(torch.nn.Module):
    """The parameter vector as a module (AveragedModel averages modules)."""

    def __init__(self, w0, dtype):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(np.asarray(w0), dtype=dtype))


def ema_decay(av, n):
    """The EMA decay after step n, from FORMAT.md section 4.5."""
    if av["start"] == "first" and n <= max(av["update_every"], av["update_after_step"] + 1):
        return 0.0  # lerp with weight 1: a copy (the first call copies anyway)
    decay = av["decay"]
    if av["warmup"] is None:
        return decay
    if av["warmup"] == "timm":
        s = max(0, n - av["update_after_step"] - 1)
        if s <= 0:
            return 0.0
        value = 1.0 - (1.0 + s / av["warmup_gamma"]) ** (-av["warmup_power"])
        return min(max(value, av["min_decay"]), decay)
    i, steps, ratio = n - 1, av["warmup_steps"], av["warmup_ratio"]
    if i > steps:
        return decay
    if av["warmup"] == "constant":
        return ratio * decay
    if av["warmup"] == "linear":
        return (1.0 - (1.0 - i / steps) * (1.0 - ratio)) * decay
    return ratio ** (1.0 - i / steps) * decay


class SAM:
    """davda54-style SAM around a torch optimizer (one parameter tensor here)."""

    def __init__(self, param, base, spec):
        self.p, self.base, self.spec = param, base, spec

    def step(self, grad_at):
        rho, eps, ascent = self.spec["rho"], self.spec["eps"], self.spec["ascent"]
        p = self.p
        g = grad_at(p)
        with torch.no_grad():
            w_abs = torch.abs(p)           # |w|, for the adaptive norms
            if ascent == "unnormalized":
                e = rho * g
            elif ascent == "adaptive_unnormalized":  # the StableSAM authors' usam.py
                e = torch.pow(p, 2) * g * rho
            else:
                weighted = w_abs * g if ascent == "adaptive" else g
                norm = torch.linalg.vector_norm(weighted)
                denom = norm + eps
                scale = rho / denom if denom != 0 else torch.zeros((), dtype=p.dtype)
                e = (torch.pow(p, 2) * g if ascent == "adaptive" else g) * scale
            p.add_(e)                      # climb to w + e
        g_adv = grad_at(p)
        with torch.no_grad():
            if self.spec["kind"] == "stable_sam":
                if ascent in ("adaptive", "adaptive_unnormalized"):
                    num = torch.linalg.vector_norm(w_abs * g)
                    den = torch.linalg.vector_norm(torch.abs(p) * g_adv) + eps
                else:
                    num = torch.linalg.vector_norm(g)
                    den = torch.linalg.vector_norm(g_adv) + eps
                g_adv = g_adv * (num / den if den != 0 else 0.0)
            p.sub_(e)                      # back to w, as davda54 does: (w + e) - e
        p.grad = g_adv
        self.base.step()


def base_optimizer(case):
    """(torch optimizer class, keyword arguments) of the case's base optimizer."""
    b = case.base
    if b.kind == "sgd":
        return torch.optim.SGD, dict(lr=float(case.lr[0]), momentum=b["momentum"],
                                     dampening=b["dampening"], weight_decay=b["weight_decay"],
                                     nesterov=b["nesterov"], maximize=b["maximize"])
    cls = torch.optim.AdamW if b.get("decoupled_weight_decay", False) else torch.optim.Adam
    return cls, dict(lr=float(case.lr[0]), betas=(b["beta1"], b["beta2"]), eps=b["eps"],
                     weight_decay=b["weight_decay"], maximize=b["maximize"],
                     amsgrad=b.get("amsgrad") == "raw")


class Stepper:
    def __init__(self, case):
        self.case = case
        dtype = DTYPES[case.dtype]
        self.dtype = dtype
        self.model = Model(case.w0, dtype)
        p = self.model.w
        cls, kwargs = base_optimizer(case)
        self.opt = cls([p], **kwargs)
        self.sam = None if case.sam is None else SAM(p, self.opt, case.sam)
        self.av = case.average
        self.n = 0
        self.epoch = 0
        if self.av is not None and self.av.kind == "swa":
            self.averaged = AveragedModel(self.model)  # the default: equal average (SWA)
        elif self.av is not None and self.av.kind == "lookahead":
            # timm's Lookahead, written here for one tensor: the slow buffer is w0 (the
            # paper) or, for start="first", created from the fast weights at the first sync
            self.slow = p.detach().clone() if self.av["start"] == "copy" else None
            self.w0 = p.detach().clone()  # reported until a "first" slow buffer exists
        elif self.av is not None:
            self.decay = self.av["decay"]

            @torch.no_grad()
            def multi_avg_fn(ema_params, model_params, _num_averaged):
                torch._foreach_lerp_(ema_params, model_params, 1.0 - self.decay)

            self.averaged = AveragedModel(self.model, multi_avg_fn=multi_avg_fn)
            if self.av["start"] == "copy":
                self.averaged.update_parameters(self.model)  # copies w0
            # start="first": torch's documented loop, the first call after a step copies

    def _grad_at(self, grad_fn):
        def grad_at(p):
            _, g = grad_fn(p.detach().cpu().numpy())
            return torch.tensor(np.asarray(g), dtype=self.dtype)
        return grad_at

    def _snapshot_due(self, epoch_end):
        av, n = self.av, self.n
        if av["swa_unit"] == "step":
            return n % av["swa_every"] == 0 and n > av["swa_start"]
        return epoch_end and self.epoch % av["swa_every"] == 0 and self.epoch > av["swa_start"]

    def _switch_due(self, epoch_end):
        av, n = self.av, self.n
        if av.kind != "switch_ema":
            return False
        if av["switch_unit"] == "step":
            return n % av["switch_every"] == 0 and n > av["switch_start"]
        return epoch_end and self.epoch % av["switch_every"] == 0 and self.epoch > av["switch_start"]

    def step(self, grad_fn, inputs):
        for group in self.opt.param_groups:
            group["lr"] = inputs.lr
        grad_at = self._grad_at(grad_fn)
        if self.sam is None:
            self.model.w.grad = grad_at(self.model.w)
            self.opt.step()
        else:
            self.sam.step(grad_at)
        self.n += 1
        if inputs.epoch_end:
            self.epoch += 1
        average = None
        if self.av is not None and self.av.kind == "swa":
            if self._snapshot_due(inputs.epoch_end):
                self.averaged.update_parameters(self.model)
            average = self.averaged.module.w.detach().numpy().copy()
        elif self.av is not None and self.av.kind == "lookahead":
            if self.n % self.av["k"] == 0:
                fast = self.model.w
                with torch.no_grad():
                    if self.slow is None:
                        self.slow = fast.detach().clone()
                    self.slow.add_(fast - self.slow, alpha=self.av["alpha"])
                    fast.copy_(self.slow)
                if self.av["on_sync"] == "reset":
                    self.opt.state.clear()
            average = (self.slow if self.slow is not None else self.w0).detach().numpy().copy()
        elif self.av is not None:
            if self.n % self.av["update_every"] == 0:
                self.decay = ema_decay(self.av, self.n)
                self.averaged.update_parameters(self.model)
            average = self.averaged.module.w.detach().numpy().copy()
            if self._switch_due(inputs.epoch_end):
                with torch.no_grad():
                    self.model.w.copy_(self.averaged.module.w)
                if self.av["on_switch"] == "reset":
                    self.opt.state.clear()
        return self.model.w.detach().numpy().copy(), average


def make(case):
    """The factory: skip what torch cannot express, else a :class:`Stepper`."""
    b = case.base
    if b.kind == "fame":
        raise Unsupported("torch.optim has no FAME")
    if b.kind == "sgd" and b["convention"] == "keras":
        raise Unsupported("torch.optim.SGD has no Keras-style momentum (lr inside the velocity)")
    if case.average is not None and case.average.get("start") == "zeros":
        raise Unsupported("AveragedModel has no zero start with debiasing (start='zeros')")
    if b.kind == "adam" and b.get("amsgrad") == "debiased":
        raise Unsupported("torch's AMSGrad keeps the raw maximum (optax's is debiased)")
    return Stepper(case)
