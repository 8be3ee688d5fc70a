"""Example adapter: optax (JAX) against the golden vectors.

    refimpl golden check --impl refimpl.golden.examples.optax_adapter:make

What it runs, written as an optax user would (this file imports jax and optax; refimpl
never depends on them; float64 cases need ``jax_enable_x64``, which importing this
module turns on):

* ``optax.sgd`` (trace momentum, nesterov), ``optax.adam``, ``optax.amsgrad``
  (``amsgrad: "debiased"``) and ``optax.adamw`` (``decoupled_weight_decay``; with
  AMSGrad the same chain around ``scale_by_amsgrad``), each wrapped in
  ``optax.inject_hyperparams`` so the checker's per-step learning rate is set before each
  update; coupled weight decay is ``optax.add_decayed_weights`` chained BEFORE the
  optimizer, and maximize is ``optax.scale(-1.0)`` before that (PyTorch's order);
* Lookahead with ``optax.lookahead`` (slow weights from the initial parameters, refimpl's
  ``start="copy"``; ``reset_state`` for ``on_sync="reset"``); optax has no SWA;
* model EMA with ``optax.ema(decay, debias=True)`` applied to the parameters: a zero
  start with debiasing, refimpl's ``start="zeros"``; Switch EMA copies the debiased
  average into the parameters (``on_switch="reset"`` re-initialises the optimizer state;
  the learning rate is injected, so the schedule keeps counting);
* SAM / USAM / ASAM / StableSAM written with ``jax.numpy`` in the form of
  ``optax.contrib.sam``'s adversarial step (``normalize`` then ``sgd(rho)``), with the
  case's eps and refimpl's 0/0 := 0 guard added; :func:`make_contrib_normalize` uses
  ``optax.contrib.normalize`` itself instead, which has no eps.

Convention differences (and the flags that match optax):

* ``optax.sgd`` has no dampening (cases with dampening > 0 are skipped) and no Keras
  momentum; its trace equals PyTorch's buffer when dampening is 0, so PyTorch-convention
  cases run.
* ``optax.ema`` starts from zeros and debiases (``start="zeros"``); copy-start cases and
  the decay warm-ups are skipped.
* ``optax.contrib.normalize`` divides by the global norm with no eps: a zero gradient
  gives NaN, where refimpl with ``eps=0`` defines the ascent as 0 (flag
  ``sam_zero_gradient``), and with eps > 0 the ascent differs by a relative
  eps / ||g|| (flag ``sam_eps``).
* ``optax.amsgrad`` keeps the maximum of the DEBIASED second moment; torch's raw
  maximum (``amsgrad: "raw"``) is not in optax (``bias_correction_nu=False`` is the
  AMSGrad paper's form without any correction): skipped.
* no FAME in optax: skipped.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from refimpl.golden import Unsupported  # noqa: E402

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}
# the global L2 norm: optax.tree.norm where it exists (global_norm is deprecated there)
_tree = getattr(optax, "tree", None)
global_norm = _tree.norm if _tree is not None and hasattr(_tree, "norm") else optax.global_norm


def _base(case):
    b = case.base
    if b.kind == "fame":
        raise Unsupported("optax has no FAME")
    parts = []
    if b["maximize"]:
        parts.append(optax.scale(-1.0))
    decoupled = b.kind == "adam" and b.get("decoupled_weight_decay", False)
    if b["weight_decay"] != 0.0 and not decoupled:
        parts.append(optax.add_decayed_weights(b["weight_decay"]))
    lr0 = float(case.lr[0])
    if b.kind == "sgd":
        if b["convention"] == "keras":
            raise Unsupported("optax.sgd has no Keras-style momentum (lr inside the velocity)")
        if b["dampening"] != 0.0:
            raise Unsupported("optax.sgd has no dampening")
        momentum = b["momentum"] if b["momentum"] != 0.0 else None
        parts.append(optax.inject_hyperparams(optax.sgd)(learning_rate=lr0, momentum=momentum,
                                                         nesterov=b["nesterov"]))
    else:
        amsgrad = b.get("amsgrad")
        if amsgrad == "raw":
            raise Unsupported("optax.amsgrad keeps the debiased maximum (torch's is raw)")
        hyper = dict(learning_rate=lr0, b1=b["beta1"], b2=b["beta2"], eps=b["eps"])
        if decoupled:
            maker = adamw_amsgrad if amsgrad == "debiased" else optax.adamw
            hyper["weight_decay"] = b["weight_decay"]
        else:
            maker = optax.amsgrad if amsgrad == "debiased" else optax.adam
        parts.append(optax.inject_hyperparams(maker)(**hyper))
    return optax.chain(*parts)


def adamw_amsgrad(learning_rate, b1, b2, eps, weight_decay):
    """optax.adamw's chain with optax.amsgrad's scaling (optax has no alias for it)."""
    return optax.chain(optax.scale_by_amsgrad(b1=b1, b2=b2, eps=eps),
                       optax.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(learning_rate))


def ascent(spec, w, g, *, contrib_normalize=False):
    """SAM's ascent e for parameters w and gradient g (jax arrays)."""
    rho, eps, kind = spec["rho"], spec["eps"], spec["ascent"]
    if kind == "unnormalized":
        return rho * g
    if kind == "adaptive_unnormalized":
        return rho * (w * w * g)
    if contrib_normalize and kind == "normalized":
        normalized, _ = optax.contrib.normalize().update(g, optax.EmptyState())
        return rho * normalized
    weighted = jnp.abs(w) * g if kind == "adaptive" else g
    denom = global_norm(weighted) + eps
    scale = jnp.where(denom != 0, rho / jnp.where(denom != 0, denom, 1), 0)
    return (w * w * g if kind == "adaptive" else g) * scale


class Stepper:
    def __init__(self, case, contrib_normalize=False):
        self.case = case
        self.dtype = DTYPES[case.dtype]
        self.contrib = contrib_normalize
        self.opt = _base(case)
        self.w = jnp.asarray(np.asarray(case.w0), dtype=self.dtype)
        self.state = self.opt.init(self.w)
        self.av = case.average
        self.n = self.epoch = 0
        self.lookahead = self.av is not None and self.av.kind == "lookahead"
        if self.lookahead:  # optax.lookahead carries (fast, slow) as the parameters
            self.opt = optax.lookahead(self.opt, sync_period=self.av["k"],
                                       slow_step_size=self.av["alpha"],
                                       reset_state=self.av["on_sync"] == "reset")
            self.params = optax.LookaheadParams.init_synced(self.w)
            self.state = self.opt.init(self.params)
        elif self.av is not None:
            self.ema = optax.ema(self.av["decay"], debias=True)
            self.ema_state = self.ema.init(self.w)
            self.average = jnp.zeros_like(self.w)  # nothing averaged yet

    def _grad(self, grad_fn, w):
        _, g = grad_fn(np.asarray(w))
        return jnp.asarray(np.asarray(g), dtype=self.dtype)

    def _set_lr(self, lr):
        chain = self.state.fast_state if self.lookahead else self.state
        chain[-1].hyperparams["learning_rate"] = jnp.asarray(lr, dtype=self.dtype)

    def _switch_due(self, epoch_end):
        av, n = self.av, self.n
        if av.kind != "switch_ema" or n < av["update_every"]:
            return False
        if av["switch_unit"] == "step":
            return n % av["switch_every"] == 0 and n > av["switch_start"]
        return epoch_end and self.epoch % av["switch_every"] == 0 and self.epoch > av["switch_start"]

    def step(self, grad_fn, inputs):
        self._set_lr(inputs.lr)
        w = self.w
        g = self._grad(grad_fn, w)
        sam = self.case.sam
        if sam is not None:
            e = ascent(sam, w, g, contrib_normalize=self.contrib)
            w_adv = w + e
            g_adv = self._grad(grad_fn, w_adv)
            if sam["kind"] == "stable_sam":
                if sam["ascent"] in ("adaptive", "adaptive_unnormalized"):
                    num = global_norm(jnp.abs(w) * g)
                    den = global_norm(jnp.abs(w_adv) * g_adv) + sam["eps"]
                else:
                    num = global_norm(g)
                    den = global_norm(g_adv) + sam["eps"]
                g_adv = g_adv * jnp.where(den != 0, num / jnp.where(den != 0, den, 1), 0)
            g = g_adv
        if self.lookahead:
            updates, self.state = self.opt.update(g, self.state, self.params)
            self.params = optax.apply_updates(self.params, updates)
            self.w = self.params.fast
            return np.asarray(self.w), np.asarray(self.params.slow)
        updates, self.state = self.opt.update(g, self.state, w)
        self.w = optax.apply_updates(w, updates)
        self.n += 1
        if inputs.epoch_end:
            self.epoch += 1
        if self.av is None:
            return np.asarray(self.w), None
        if self.n % self.av["update_every"] == 0:
            self.average, self.ema_state = self.ema.update(self.w, self.ema_state)
        if self._switch_due(inputs.epoch_end):
            self.w = self.average
            if self.av["on_switch"] == "reset":
                self.state = self.opt.init(self.w)
        return np.asarray(self.w), np.asarray(self.average)


def _supported(case):
    av = case.average
    if av is not None and av.kind == "swa":
        raise Unsupported("optax has no SWA (equal-weight averaging)")
    if av is not None and av.kind == "lookahead":
        if av["start"] != "copy":
            raise Unsupported("optax.lookahead starts the slow weights at the initial "
                              "parameters (start='copy' only)")
    elif av is not None:
        if av["start"] != "zeros":
            raise Unsupported("optax.ema starts from zeros (start='zeros' only)")
        if av["warmup"] is not None:
            raise Unsupported("optax.ema has a constant decay (no warm-up)")


def make(case):
    """The factory: skip what optax cannot express, else a :class:`Stepper`."""
    _supported(case)
    return Stepper(case)


def make_contrib_normalize(case):
    """Like :func:`make`, but SAM's normalized ascent uses ``optax.contrib.normalize``
    (no eps): shows the convention difference on the ``sam_zero_gradient`` cases."""
    _supported(case)
    return Stepper(case, contrib_normalize=True)
