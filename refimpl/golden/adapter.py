"""refimpl's own adapter for the golden checker: ``refimpl.golden.adapter:make``.

It is an ordinary plug-in (FORMAT.md section 7), written only against the public API
of refimpl and of :mod:`refimpl.golden`, so it doubles as the worked example of an
adapter::

    refimpl golden check --impl refimpl.golden.adapter:make

The learning rate is handed to refimpl as the case's whole per-step array (refimpl
takes schedules as arrays); float32 cases run in float64 on their float32-exact inputs,
which is how their expected values were made.
"""

from __future__ import annotations

import numpy as np

import refimpl as r


def build(case, **overrides):
    """The refimpl optimizer of ``case``; ``overrides`` replace fields of the layers by
    name, ``layer__field=value`` (e.g. ``base__convention="keras"``), which the tests
    use to build deliberately wrong variants."""
    layers = {"base": dict(case.base.fields),
              "sam": None if case.sam is None else dict(case.sam.fields),
              "average": None if case.average is None else dict(case.average.fields)}
    for key, value in overrides.items():
        layer, name = key.split("__", 1)
        layers[layer][name] = value
    b = layers["base"]
    lr = np.array(case.lr, dtype=np.float64)
    if b["kind"] == "sgd":
        opt = r.SGD(lr=lr, momentum=b["momentum"], dampening=b["dampening"],
                    weight_decay=b["weight_decay"], nesterov=b["nesterov"],
                    maximize=b["maximize"], convention=b["convention"])
    elif b["kind"] == "adam":
        amsgrad = b.get("amsgrad")  # optional fields (FORMAT.md 4.2): absent = off
        opt = r.Adam(lr=lr, beta1=b["beta1"], beta2=b["beta2"], eps=b["eps"],
                     weight_decay=b["weight_decay"], maximize=b["maximize"],
                     decoupled_weight_decay=b.get("decoupled_weight_decay", False),
                     amsgrad=amsgrad is not None, amsgrad_max=amsgrad or "raw")
    else:
        opt = r.FAME(lr=lr, beta1=b["beta1"], beta2=b["beta2"], beta3=b["beta3"],
                     beta4=b["beta4"], beta5=b["beta5"], eps=b["eps"],
                     weight_decay=b["weight_decay"], maximize=b["maximize"],
                     variant=b["variant"], debias=b["debias"], v_guard=b["v_guard"],
                     amsgrad=b.get("amsgrad", False),
                     decoupled_weight_decay=b.get("decoupled_weight_decay", False))
    s = layers["sam"]
    if s is not None:
        cls = r.SAM if s["kind"] == "sam" else r.StableSAM
        opt = cls(opt, rho=s["rho"], ascent=s["ascent"], eps=s["eps"])
    a = layers["average"]
    if a is not None and a["kind"] == "swa":
        return r.SWA(opt, swa_every=a["swa_every"], swa_unit=a["swa_unit"],
                     swa_start=a["swa_start"])
    if a is not None and a["kind"] == "lookahead":
        return r.Lookahead(opt, k=a["k"], alpha=a["alpha"], start=a["start"],
                           on_sync=a["on_sync"])
    if a is not None:
        common = dict(decay=a["decay"], update_every=a["update_every"], start=a["start"],
                      warmup=a["warmup"], update_after_step=a["update_after_step"],
                      warmup_gamma=a["warmup_gamma"], warmup_power=a["warmup_power"],
                      min_decay=a["min_decay"], warmup_ratio=a["warmup_ratio"],
                      warmup_steps=a["warmup_steps"])
        if a["kind"] == "ema":
            opt = r.EMA(opt, **common)
        else:
            opt = r.SwitchEMA(opt, switch_every=a["switch_every"], switch_unit=a["switch_unit"],
                              switch_start=a["switch_start"], on_switch=a["on_switch"], **common)
    return opt


class Stepper:
    """Steps a refimpl optimizer through the public step API."""

    def __init__(self, optimizer, w0):
        self.optimizer = optimizer
        self.w = np.array(w0, dtype=np.float64)
        self.state = optimizer.init(self.w)

    def step(self, grad_fn, inputs):
        def oracle(w):
            loss, g = grad_fn(w)
            return float(loss), np.asarray(g, dtype=np.float64)

        self.w, self.state, _ = self.optimizer.step(self.w, self.state, oracle,
                                                    epoch_end=inputs.epoch_end)
        averaging = isinstance(self.optimizer, (r.EMA, r.SWA, r.Lookahead))
        average = self.optimizer.average(self.state) if averaging else None
        return self.w, average


def make(case):
    """The plug-in factory: a :class:`Stepper` for ``case``."""
    return Stepper(build(case), case.w0)
