"""The golden cases: every optimizer and convention option, float64 and float32, and
the named edge cases (FORMAT.md section 8 lists them with their flags).

A case is defined here by its inputs only (optimizer, problem, w0, per-step learning
rates and data); :mod:`refimpl.golden.generate` adds the expected values (refimpl's
float64 run) and the derived tolerances. Case ids are stable: never rename or reuse
one; add new cases with new ids.

Problem data are dyadic (exact in binary), so the float32 variants change only the
hyperparameters, which are rounded to the nearest float32 (e.g. momentum 0.9 becomes
0.89999997615814208984375); that rounded value is the case's input in both precisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from refimpl.problems.data import teacher_student, two_spirals
from refimpl.problems.mlp import MLP, MLPProblem
from refimpl.problems.quadratic import NoisyQuadratic

# -- what each flag means (copied into every file that uses it) ---------------------------

NOTES = {
    "lr_schedule": "The learning rate changes between steps (steps[k].lr is the rate of that "
                   "step). An implementation that reads the rate once, or uses step k's rate at "
                   "step k + 1, fails at the first change.",
    "lr_inside_velocity": "Keras-style momentum keeps the learning rate inside the velocity "
                          "(v = mu v - lr g; w = w + v), PyTorch and optax multiply the buffer "
                          "by the current rate (w = w - lr buf). They agree while lr is constant "
                          "and differ from the first step whose lr differs from the previous "
                          "step's: use convention 'keras' for the first, 'pytorch'/'optax' for "
                          "the others.",
    "first_step_dampening": "PyTorch does not dampen the first step: buf = g on step 1, then "
                            "buf = mu buf + (1 - dampening) g. Dampening step 1 too "
                            "(buf = (1 - dampening) g from a zero buffer) fails at step 1.",
    "nesterov": "Nesterov momentum in its PyTorch/optax form d = g + mu buf (buffer already "
                "updated), Keras form w = w + mu v - lr g. Evaluating the gradient at a "
                "look-ahead point instead is a different algorithm and fails at step 1 or 2.",
    "coupled_weight_decay": "weight_decay is coupled L2: g = g + wd w, added to the gradient "
                            "before any momentum or moment. Decoupled decay (AdamW, SGDW: "
                            "w = w - lr wd w) fails at step 1 for Adam, and at step 2 for SGD "
                            "with momentum (whose first step is w - lr (g + wd w) either way).",
    "maximize_weight_decay": "maximize negates the gradient first and adds wd w afterwards "
                             "(PyTorch's order), so the decay is not negated. Negating after "
                             "adding the decay fails at step 1. The problem is concave (H "
                             "negative definite), so ascent converges.",
    "optax_trace": "optax's momentum: trace = g + mu trace from zeros, no dampening; the same "
                   "iterates as PyTorch's when dampening is 0.",
    "zero_gradient": "The gradient is exactly 0 at some steps. Adam-type steps are then "
                     "0 / (0 + eps) = 0; a missing eps gives NaN there.",
    "sam_zero_gradient": "The gradient is exactly 0 at some steps of a SAM-type optimizer: the "
                         "ascent is rho g / (||g|| + eps) = 0 when eps > 0. With eps = 0 the "
                         "scale 0/0 is defined as 0 (no ascent, no StableSAM rescale); an "
                         "implementation without that guard (optax's normalize) returns NaN.",
    "sam_eps": "eps is the case's own (0.5 to change every step visibly, or 0 as in optax "
               "and the official JAX code): ignoring eps, or adding it to the squared norm, "
               "fails at step 1 of the eps-large case.",
    "sam_same_batch": "Both gradient evaluations of a SAM step see the same mini-batch (the same "
                      "noise draw steps[k].noise). Drawing new noise for the second one fails at "
                      "step 1.",
    "sam_descent_at_w": "The base optimizer steps from w (not from w + e) with the gradient "
                        "taken at w + e; its weight decay uses w and is added after StableSAM's "
                        "rescale (so it is not rescaled).",
    "adaptive_ascent": "ASAM (davda54 form): e = rho w^2 g / (|| |w| g || + eps); StableSAM's "
                       "adaptive version divides || |w| g || by || |w + e| g_adv || + eps.",
    "stable_sam_rescale": "StableSAM rescales the descent gradient to the norm of the first "
                          "gradient: g_adv ||g|| / (||g_adv|| + eps).",
    "fame_adam_reduction": "With beta3 = beta4 = 0, official FAME is Adam with coupled L2 bit "
                           "for bit (compare with adam/quadratic).",
    "fame_exact_debias": "debias = 'exact': divide by the chain's response to a constant 1 "
                         "(3 r1 - 3 r2 + r3) instead of 1 - beta^t.",
    "fame_negative_v_guard": "After a gradient spike, full FAME's TEMA second moment "
                             "3 v1 - 3 v2 + v3 turns negative. v_guard 'adam' keeps the "
                             "denominator at or above Adam's sqrt(v1 / (1 - b2^t)); 'zero' only "
                             "clips v_tema at 0, which allows steps up to lr m / eps.",
    "ema_zero_start_debias": "start = 'zeros' (optax): the reported average is "
                             "ema / (1 - product of the decays used so far); before the first "
                             "update it is the zero vector. start = 'copy' (torch "
                             "AveragedModel, timm) sets ema = w0 before step 1.",
    "ema_update_every": "The EMA is updated only after steps n with n % update_every == 0.",
    "ema_first_update": "start = 'first' (torch AveragedModel used as documented, timm "
                        "ModelEmaV3 given step=): ema = w0 before step 1, and the decay is 0 "
                        "after every step n <= max(update_every, update_after_step + 1), so "
                        "the first update copies w. Mixing w0 into the first update (start "
                        "'copy') fails at the first update.",
    "amsgrad_max": "AMSGrad keeps a running maximum of the second moment: torch (and the FAME "
                   "authors' code) of the RAW v, divided by the current 1 - beta2^t; optax of "
                   "the DEBIASED v / (1 - beta2^t). They agree while v / (1 - beta2^t) does "
                   "not fall; on these cases it falls, and the wrong form fails within a few "
                   "steps (as does plain Adam).",
    "decoupled_weight_decay": "AdamW: w = w * (1 - lr * weight_decay) BEFORE the moments, with "
                              "the step's own rate and not negated by maximize; the decay "
                              "never enters m or v. Coupled L2 (g + wd w) fails at step 1.",
    "adaptive_unnormalized_ascent": "The StableSAM authors' adaptive USAM: e = rho * w * w * g, "
                                    "not normalized (ASAM's normalized form divides by "
                                    "|| |w| g || + eps and fails at step 1); StableSAM's norms "
                                    "are the adaptive ones, || |w| g || and || |w + e| g_adv ||.",
    "warmup_boundary": "The decay warm-up ends inside the run. An off-by-one in the warm-up's "
                       "step index (openmixup's i = n - 1, timm's n - update_after_step - 1) "
                       "fails at the first step whose decay differs.",
    "switch_boundary": "Switch EMA copies the average into the parameters at the end of every "
                       "switch_every-th epoch (or step), once the count exceeds switch_start. "
                       "Switching at the start of an epoch, one step off, or never fails at the "
                       "first switch.",
    "switch_reset": "on_switch = 'reset' re-initialises the base optimizer's state (momentum, "
                    "moments, bias-correction count) at each switch; the learning-rate schedule "
                    "keeps counting.",
    "switch_before_first_update": "start = 'zeros' with update_every > 1: a switch that falls "
                                  "before the first EMA update is skipped (nothing averaged "
                                  "yet).",
    "mlp_relu": "Hidden layers use relu (max(z, 0), derivative 1 for z > 0 and 0 for "
                "z < 0, as PyTorch). The case keeps every hidden pre-activation farther from 0 "
                "than its error bound at every step, so no implementation can land on the "
                "other side of the kink; tanh instead of relu fails at step 1.",
    "mlp_xent": "The loss is softmax cross-entropy averaged over the batch, "
                "(1 / B) sum_b sum_j y_j (logsumexp(f_b) - f_bj), with one-hot targets "
                "(torch.nn.CrossEntropyLoss on logits); its gradient is "
                "(softmax(f_b) sum_j y_bj - y_b) / B. Summing instead of averaging over the "
                "batch, or a softmax over the batch instead of the classes, fails at step 1.",
    "swa_mean": "SWA (torch AveragedModel's default): the first snapshot copies w, the k-th "
                "later one updates avg + (w - avg) / (k + 1), so the average is the mean of the "
                "snapshots; before the first it is w0. A snapshot falls at the end of every "
                "swa_every-th epoch (or step) once that count exceeds swa_start. Averaging from "
                "w0 instead of copying, or one snapshot off, fails at the first snapshot.",
    "lookahead_sync": "Lookahead: every k steps slow = slow + alpha (w - slow), then w = slow; "
                      "the slow weights (the reported average) start at w0. A sync one step "
                      "off, or w not reset to the slow weights, fails at the first sync.",
    "lookahead_first_sync": "start = 'first' (timm): the first sync copies the fast weights "
                            "into the slow ones and leaves w unchanged; starting from w0 "
                            "instead fails at the first sync.",
    "lookahead_reset": "on_sync = 'reset': the fast optimizer's state (Adam's moments and "
                       "bias-correction count) restarts after each sync; keeping it fails at "
                       "the step after the first sync.",
    "mlp_layout": "The parameters are the MLP's layers in order, each as its weight matrix "
                  "W_l (n_l x n_(l-1), row-major: PyTorch's nn.Linear.weight) followed by its "
                  "bias b_l; the mse loss is the mean over the batch AND the outputs "
                  "(torch.nn.MSELoss). A transposed weight or a sum instead of a mean fails "
                  "at step 1.",
    "divergence": "The learning rate is far too large: the run diverges and the implementation "
                  "must report it at step diverges_at (a non-finite loss, gradient or parameter, "
                  "or an error), with finite values matching before it (FORMAT.md section 6).",
}

FAMILIES = {
    "sgd": "SGD with momentum, dampening, Nesterov, weight decay, maximize and per-step "
           "learning rates, in the PyTorch, optax and Keras conventions.",
    "adam": "Adam in torch.optim.Adam's order of operations: coupled L2 or decoupled (AdamW) "
            "weight decay, and AMSGrad with torch's or optax's maximum.",
    "fame": "FAME (triple-EMA Adam): the authors' 'official' variant and the five-decay "
            "'full' reconstruction, with both debiasing rules and both v guards.",
    "sam": "SAM, USAM, ASAM and adaptive USAM over SGD, Adam and FAME.",
    "stable_sam": "StableSAM (renormalized SAM) with its four ascent forms.",
    "ema": "Model EMA: copy, zero and first-update starts, update_every, and the timm and "
           "openmixup decay warm-ups.",
    "switch_ema": "Switch EMA (SEMA): switches per epoch or per step, switch_start, "
                  "keep or reset the optimizer state.",
    "mlp": "A 2-4-1 tanh network (mean squared error) on 16 teacher-student examples, "
           "mini-batches of 4 drawn per epoch, under SGD, Adam, SAM and Switch EMA; a relu "
           "regression net and 2-4-2 tanh and relu classifiers with softmax cross-entropy "
           "on 16 two-spirals points.",
    "divergence": "Runs with a far too large learning rate: the expected values up to the "
                  "diverging step, and the step where the implementation must report it.",
    "averagers": "SWA (torch AveragedModel's equal average) and Lookahead (the paper's and "
                 "timm's starts, keep or reset the fast optimizer): the averagers Switch EMA "
                 "is compared with.",
}


# -- building blocks ------------------------------------------------------------------------

def sgd(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
        convention="pytorch"):
    return dict(kind="sgd", momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                nesterov=nesterov, maximize=maximize, convention=convention)


def adam(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, maximize=False,
         decoupled_weight_decay=False, amsgrad=None):
    """The optional fields (FORMAT.md 4.2) are written only when they are not off, so
    that the cases written before they existed keep their exact form."""
    out = dict(kind="adam", beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
               maximize=maximize)
    if decoupled_weight_decay:
        out["decoupled_weight_decay"] = True
    if amsgrad is not None:
        out["amsgrad"] = amsgrad
    return out


def fame(variant="official", beta1=0.9, beta2=0.999, beta3=0.5, beta4=0.5, beta5=0.5,
         eps=1e-8, weight_decay=0.0, maximize=False, debias=None, v_guard="adam",
         amsgrad=False, decoupled_weight_decay=False):
    if debias is None:
        debias = "adam" if variant == "official" else "exact"
    out = dict(kind="fame", variant=variant, beta1=beta1, beta2=beta2, beta3=beta3,
               beta4=beta4, beta5=beta5, eps=eps, weight_decay=weight_decay,
               maximize=maximize, debias=debias, v_guard=v_guard)
    if amsgrad:  # optional fields (FORMAT.md 4.3): written only when on
        out["amsgrad"] = True
    if decoupled_weight_decay:
        out["decoupled_weight_decay"] = True
    return out


def sam(kind="sam", rho=0.05, ascent=None, eps=1e-12):
    if ascent is None:
        ascent = "normalized" if kind == "sam" else "unnormalized"
    return dict(kind=kind, rho=rho, ascent=ascent, eps=eps)


def ema(decay=0.9, update_every=1, start="copy", warmup=None, update_after_step=0,
        warmup_gamma=1.0, warmup_power=2.0 / 3.0, min_decay=0.0, warmup_ratio=0.9,
        warmup_steps=0, **switch):
    out = dict(kind="ema", decay=decay, update_every=update_every, start=start, warmup=warmup,
               update_after_step=update_after_step, warmup_gamma=warmup_gamma,
               warmup_power=warmup_power, min_decay=min_decay, warmup_ratio=warmup_ratio,
               warmup_steps=warmup_steps)
    if switch:
        out["kind"] = "switch_ema"
        out.update(dict(dict(switch_every=1, switch_unit="epoch", switch_start=0,
                             on_switch="keep"), **switch))
    return out


def swa(swa_every=1, swa_unit="epoch", swa_start=0):
    return dict(kind="swa", swa_every=swa_every, swa_unit=swa_unit, swa_start=swa_start)


def lookahead(k=5, alpha=0.5, start="copy", on_sync="keep"):
    return dict(kind="lookahead", k=k, alpha=alpha, start=start, on_sync=on_sync)


def opt(base, sam_=None, average=None):
    return {"base": base, "sam": sam_, "average": average}


# problems: dyadic data, exact in float32
H3 = [[2.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 0.5]]
W_STAR3 = [0.5, -0.25, 1.0]
W0_3 = [1.5, 1.0, -0.5]


def quadratic(H=H3, w_star=W_STAR3):
    return {"kind": "quadratic", "H": [list(row) for row in H], "w_star": list(w_star)}


def concave(H=H3, w_star=W_STAR3):
    """-H: a concave quadratic, maximised at w_star (for maximize=True)."""
    return quadratic([[-x for x in row] for row in H], w_star)


@dataclass
class CaseSpec:
    """A case's inputs. ``step_data``: per-step extra inputs (noise or gradient)."""

    id: str
    comment: str
    flags: list
    optimizer: dict
    problem: dict
    w0: list
    lr: list
    dtype: str = "float64"
    steps_per_epoch: int | None = None
    step_data: list | None = None
    family: str = field(init=False, default="")

    def __post_init__(self):
        self.family = self.id.split("/", 1)[0]
        for flag in self.flags:
            if flag not in NOTES:
                raise ValueError(f"{self.id}: flag {flag!r} has no note")

    @property
    def n_steps(self) -> int:
        return len(self.lr)


def nqm(h, noise_scale, w_star, steps, seed):
    """The noisy quadratic model with its noise drawn by refimpl (stored per step)."""
    c = np.square(np.asarray(noise_scale, dtype=np.float64))
    problem = NoisyQuadratic(np.asarray(h, dtype=np.float64), c=c, batch_size=1,
                             w_star=np.asarray(w_star, dtype=np.float64))
    assert np.array_equal(problem.noise_scale, noise_scale), "noise_scale must be exact"
    noise = problem.draw_noise(steps, seed)
    spec = {"kind": "noisy_quadratic", "h": list(h), "noise_scale": list(noise_scale),
            "w_star": list(w_star), "seed": seed}
    return spec, [{"noise": row.tolist()} for row in noise]


def replay(gradients):
    return {"kind": "replay"}, [{"gradient": list(g)} for g in gradients]


def schedule(T):
    """Warm-up over 4 steps to 0.1, then 0.1, 0.05 and 0.02 in blocks."""
    head = [0.025, 0.05, 0.075, 0.1]
    rest = T - 4
    a, b = rest // 3, rest // 3
    return head + [0.1] * a + [0.05] * b + [0.02] * (rest - a - b)


def to_float32(spec: CaseSpec, suffix="-f32") -> CaseSpec:
    """The float32 variant: every real input rounded to the nearest float32."""
    def r32(x):
        if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
            return x
        if isinstance(x, float):
            return float(np.float32(x))
        if isinstance(x, list):
            return [r32(y) for y in x]
        if isinstance(x, dict):
            return {k: r32(v) for k, v in x.items()}
        raise TypeError(type(x))

    return replace(spec, id=spec.id + suffix, dtype="float32",
                   comment=spec.comment + " float32: inputs rounded to float32, expected "
                                          "values from refimpl's float64 run on them.",
                   optimizer=r32(spec.optimizer), problem=r32(spec.problem), w0=r32(spec.w0),
                   lr=r32(spec.lr), step_data=r32(spec.step_data))


# -- the cases -------------------------------------------------------------------------------------

def _sgd_cases():
    T = 24
    lr = schedule(T)
    q = quadratic()
    witness = replay([[1.0], [1.0]])
    out = [
        CaseSpec("sgd/gd-quadratic", "Plain gradient descent (momentum 0) on a 3-d quadratic "
                 "with a non-diagonal H.", [], opt(sgd()), q, W0_3, [0.25] * T),
        CaseSpec("sgd/witness-pytorch", "The lr-change witness "
                 "(proofs/sources.md#the-lr-change-witness): g = 1 always, momentum 0.9, "
                 "w0 = 0, "
                 "lr 0.1 then 0.01: w2 = -0.1 - 0.01 * 1.9 = -0.119.",
                 ["lr_schedule", "lr_inside_velocity"], opt(sgd(momentum=0.9)), witness[0],
                 [0.0], [0.1, 0.01], step_data=witness[1]),
        CaseSpec("sgd/witness-optax", "The lr-change witness in the optax convention: the same "
                 "w2 = -0.119 as PyTorch.", ["lr_schedule", "optax_trace"],
                 opt(sgd(momentum=0.9, convention="optax")), witness[0], [0.0], [0.1, 0.01],
                 step_data=witness[1]),
        CaseSpec("sgd/witness-keras", "The lr-change witness in the Keras convention: "
                 "w2 = -0.1 + (0.9 * (-0.1) - 0.01) = -0.2 (the old lr stays in the velocity).",
                 ["lr_schedule", "lr_inside_velocity"],
                 opt(sgd(momentum=0.9, convention="keras")), witness[0], [0.0], [0.1, 0.01],
                 step_data=witness[1]),
        CaseSpec("sgd/pytorch-momentum-schedule", "Heavy ball (PyTorch convention) under a "
                 "warm-up and step-decay schedule.", ["lr_schedule", "lr_inside_velocity"],
                 opt(sgd(momentum=0.9)), q, W0_3, lr),
        CaseSpec("sgd/pytorch-dampening", "Momentum 0.9 with dampening 0.5: the first step is "
                 "not dampened.", ["first_step_dampening"],
                 opt(sgd(momentum=0.9, dampening=0.5)), q, W0_3, [0.25] * T),
        CaseSpec("sgd/pytorch-nesterov", "Nesterov momentum (PyTorch form) under a schedule.",
                 ["nesterov", "lr_schedule"], opt(sgd(momentum=0.9, nesterov=True)), q, W0_3, lr),
        CaseSpec("sgd/pytorch-weight-decay", "Momentum with coupled weight decay 0.1.",
                 ["coupled_weight_decay"], opt(sgd(momentum=0.9, weight_decay=0.1)), q, W0_3,
                 [0.125] * T),
        CaseSpec("sgd/pytorch-maximize-weight-decay", "maximize=True with weight decay 0.1 on a "
                 "concave quadratic: g = -g first, then g + 0.1 w.",
                 ["maximize_weight_decay", "coupled_weight_decay"],
                 opt(sgd(momentum=0.5, weight_decay=0.1, maximize=True)), concave(), W0_3,
                 [0.25] * T),
        CaseSpec("sgd/optax-momentum-schedule", "optax's trace under the same schedule as "
                 "sgd/pytorch-momentum-schedule (same iterates).",
                 ["optax_trace", "lr_schedule", "lr_inside_velocity"],
                 opt(sgd(momentum=0.9, convention="optax")), q, W0_3, lr),
        CaseSpec("sgd/optax-nesterov", "optax's Nesterov trace under a schedule.",
                 ["optax_trace", "nesterov", "lr_schedule"],
                 opt(sgd(momentum=0.9, nesterov=True, convention="optax")), q, W0_3, lr),
        CaseSpec("sgd/keras-momentum-schedule", "Keras momentum (lr inside the velocity) "
                 "under the schedule: differs from PyTorch from the first lr change on.",
                 ["lr_schedule", "lr_inside_velocity"],
                 opt(sgd(momentum=0.9, convention="keras")), q, W0_3, lr),
        CaseSpec("sgd/keras-nesterov", "Keras Nesterov (w = w + mu v - lr g) under the "
                 "schedule.", ["lr_schedule", "lr_inside_velocity", "nesterov"],
                 opt(sgd(momentum=0.9, nesterov=True, convention="keras")), q, W0_3, lr),
    ]
    p, data = nqm([4.0, 1.0, 0.25], [0.5, 0.25, 0.125], [0.25, -0.5, 0.75], T, seed=1)
    out.append(CaseSpec("sgd/nqm-momentum", "Momentum on the noisy quadratic model (stored "
                        "noise, batch size 1).", [], opt(sgd(momentum=0.9)), p, W0_3,
                        [0.125] * T, step_data=data))
    out += [to_float32(out[i]) for i in (4, 6, 11, 13)]
    out.append(to_float32(CaseSpec("sgd/pytorch-dampening-weight-decay", "Dampening 0.5 and "
                                   "weight decay 0.1 together.",
                                   ["first_step_dampening", "coupled_weight_decay"],
                                   opt(sgd(momentum=0.9, dampening=0.5, weight_decay=0.1)),
                                   q, W0_3, [0.25] * T)))
    return out


def _adam_cases():
    T = 20
    q = quadratic()
    zeros_then = replay([[0.0, 0.0], [0.0, 0.0], [1.0, -0.5], [0.5, 0.25], [0.0, 1.0],
                         [0.0, 0.0], [-0.25, 0.5], [1.0, 1.0]])
    out = [
        CaseSpec("adam/quadratic", "Adam (0.9, 0.999, eps 1e-8) on the 3-d quadratic.", [],
                 opt(adam()), q, W0_3, [0.05] * T),
        CaseSpec("adam/weight-decay", "Adam with coupled weight decay 0.1 (not AdamW).",
                 ["coupled_weight_decay"], opt(adam(weight_decay=0.1)), q, W0_3, [0.05] * T),
        CaseSpec("adam/maximize-weight-decay", "maximize=True with weight decay on the concave "
                 "quadratic.", ["maximize_weight_decay", "coupled_weight_decay"],
                 opt(adam(weight_decay=0.1, maximize=True)), concave(), W0_3, [0.05] * T),
        CaseSpec("adam/schedule", "Adam under the warm-up and decay schedule.", ["lr_schedule"],
                 opt(adam()), q, W0_3, schedule(T)),
        CaseSpec("adam/large-eps", "eps = 0.125, large enough to matter: its placement "
                 "(added to sqrt(v_hat)) is tested.", [],
                 opt(adam(eps=0.125)), q, W0_3, [0.05] * T),
        CaseSpec("adam/zero-gradient", "Exact zero gradients at steps 1, 2 and 6 (replay): "
                 "the step is 0 / (0 + eps) = 0.", ["zero_gradient"], opt(adam()), zeros_then[0],
                 [1.0, -1.0], [0.1] * 8, step_data=zeros_then[1]),
    ]
    p, data = nqm([4.0, 1.0, 0.25], [0.5, 0.25, 0.125], [0.25, -0.5, 0.75], T, seed=2)
    out.append(CaseSpec("adam/nqm", "Adam on the noisy quadratic model.", [], opt(adam()), p,
                        W0_3, [0.05] * T, step_data=data))
    out += [to_float32(out[i]) for i in (0, 1, 4)]
    # added with AMSGrad and AdamW: a gradient that spikes and then falls, so that v falls
    # and the two AMSGrad maxima (raw, debiased) part from Adam and from each other
    spike = replay([[4.0, -2.0], [0.5, 0.25], [0.25, -0.5], [0.125, 0.25], [1.0, 0.5],
                    [0.0, 0.0], [0.25, 0.125], [0.5, -0.25], [0.0625, 0.5], [0.25, 0.25]])
    new = [
        CaseSpec("adam/amsgrad-raw", "AMSGrad as torch.optim.Adam(amsgrad=True) and the FAME "
                 "authors' code compute it: the running maximum of the RAW v, divided by the "
                 "current bias correction (betas 0.9, 0.5; the gradient falls after a spike).",
                 ["amsgrad_max"], opt(adam(beta2=0.5, amsgrad="raw")), spike[0], [1.0, -1.0],
                 [0.1] * 10, step_data=spike[1]),
        CaseSpec("adam/amsgrad-debiased", "AMSGrad as optax.amsgrad computes it: the running "
                 "maximum of the DEBIASED v / (1 - beta2^t) (same gradients as "
                 "adam/amsgrad-raw).", ["amsgrad_max"],
                 opt(adam(beta2=0.5, amsgrad="debiased")), spike[0], [1.0, -1.0], [0.1] * 10,
                 step_data=spike[1]),
        CaseSpec("adam/amsgrad-quadratic", "torch's AMSGrad (beta2 0.9) on the 3-d quadratic "
                 "under the schedule.", ["amsgrad_max", "lr_schedule"],
                 opt(adam(beta2=0.9, amsgrad="raw")), q, W0_3, schedule(T)),
        CaseSpec("adam/adamw", "AdamW (decoupled weight decay 0.25, torch.optim.AdamW's "
                 "order: w = w (1 - lr wd) before the moments).", ["decoupled_weight_decay"],
                 opt(adam(weight_decay=0.25, decoupled_weight_decay=True)), q, W0_3,
                 [0.05] * T),
        CaseSpec("adam/adamw-schedule-maximize", "AdamW with maximize under the schedule on the "
                 "concave quadratic: the decay uses each step's rate and is not negated.",
                 ["decoupled_weight_decay", "lr_schedule", "maximize_weight_decay"],
                 opt(adam(weight_decay=0.25, maximize=True, decoupled_weight_decay=True)),
                 concave(), W0_3, schedule(T)),
        CaseSpec("adam/adamw-amsgrad-debiased", "optax.adamw's decoupled decay with optax's "
                 "AMSGrad maximum (a combination torch does not have: its AdamW uses the raw "
                 "maximum).", ["decoupled_weight_decay", "amsgrad_max"],
                 opt(adam(beta2=0.5, weight_decay=0.125, decoupled_weight_decay=True,
                          amsgrad="debiased")), spike[0], [1.0, -1.0], [0.1] * 10,
                 step_data=spike[1]),
    ]
    out += new + [to_float32(new[0]), to_float32(new[3])]
    return out


def _fame_cases():
    T = 20
    q = quadratic()
    spike = replay([[10.0, 0.5]] + [[0.0, 0.5]] * 15)
    out = [
        CaseSpec("fame/official-defaults", "Official FAME with the code's defaults (0.9, "
                 "0.999, 0.5, 0.5, eps 1e-8).", [], opt(fame()), q, W0_3, [0.05] * T),
        CaseSpec("fame/official-configs", "Official FAME with the paper's experiment decays "
                 "beta3 = 0.3, beta4 = 0.7.", [], opt(fame(beta3=0.3, beta4=0.7)), q, W0_3,
                 [0.05] * T),
        CaseSpec("fame/official-exact-debias", "Official FAME with exact debiasing of the "
                 "TEMA chain.", ["fame_exact_debias"], opt(fame(debias="exact")), q, W0_3,
                 [0.05] * T),
        CaseSpec("fame/official-adam-reduction", "beta3 = beta4 = 0: the same numbers as "
                 "adam/quadratic.", ["fame_adam_reduction"], opt(fame(beta3=0.0, beta4=0.0)),
                 q, W0_3, [0.05] * T),
        CaseSpec("fame/official-weight-decay-maximize", "Coupled weight decay with maximize "
                 "on the concave quadratic.", ["maximize_weight_decay", "coupled_weight_decay"],
                 opt(fame(weight_decay=0.1, maximize=True)), concave(), W0_3, [0.05] * T),
        CaseSpec("fame/full-defaults", "Full FAME (five decays, exact debias, v_guard adam).",
                 [], opt(fame(variant="full")), q, W0_3, [0.05] * T),
        CaseSpec("fame/full-adam-debias", "Full FAME with Adam's 1 - b^t corrections.", [],
                 opt(fame(variant="full", debias="adam")), q, W0_3, [0.05] * T),
        CaseSpec("fame/full-distinct-decays", "Full FAME with beta3, beta4, beta5 all different "
                 "(0.3, 0.6, 0.8), so that each decay's place in the two chains matters.", [],
                 opt(fame(variant="full", beta3=0.3, beta4=0.6, beta5=0.8)), q, W0_3,
                 [0.05] * T),
        CaseSpec("fame/full-spike-guard-adam", "A gradient spike (10) then zeros in the first "
                 "coordinate, all decays 0.9: v_tema turns negative and the 'adam' guard "
                 "holds the denominator at Adam's.", ["fame_negative_v_guard"],
                 opt(fame(variant="full", beta1=0.9, beta2=0.9, beta3=0.9, beta4=0.9, beta5=0.9,
                          debias="adam")), spike[0], [0.0, 0.0], [0.01] * 16,
                 step_data=spike[1]),
        CaseSpec("fame/full-spike-guard-zero", "The same spike with v_guard 'zero': v_tema is "
                 "clipped at 0 only.", ["fame_negative_v_guard"],
                 opt(fame(variant="full", beta1=0.9, beta2=0.9, beta3=0.9, beta4=0.9, beta5=0.9,
                          debias="adam", v_guard="zero")), spike[0], [0.0, 0.0], [0.01] * 16,
                 step_data=spike[1]),
    ]
    p, data = nqm([4.0, 1.0, 0.25], [0.5, 0.25, 0.125], [0.25, -0.5, 0.75], T, seed=3)
    out.append(CaseSpec("fame/official-nqm", "Official FAME on the noisy quadratic model.", [],
                        opt(fame()), p, W0_3, [0.05] * T, step_data=data))
    out += [to_float32(out[i]) for i in (0, 5)]
    falling = replay([[4.0, -2.0], [0.5, 0.25], [0.25, -0.5], [0.125, 0.25], [1.0, 0.5],
                      [0.0, 0.0], [0.25, 0.125], [0.5, -0.25], [0.0625, 0.5], [0.25, 0.25]])
    out.append(CaseSpec("fame/official-amsgrad", "Official FAME with the authors' amsgrad=True "
                        "(the running maximum of the raw v, as torch's Adam), beta2 0.5, "
                        "b3 0.3, b4 0.7, on a gradient that falls after a spike.",
                        ["amsgrad_max"], opt(fame(beta2=0.5, beta3=0.3, beta4=0.7, amsgrad=True)),
                        falling[0], [1.0, -1.0], [0.1] * 10, step_data=falling[1]))
    out.append(CaseSpec("fame/full-decoupled-maximize", "Full FAME with AdamW's decoupled "
                        "weight decay 0.25 and maximize on the concave quadratic: w (1 - lr wd) "
                        "before the moments, not negated.",
                        ["decoupled_weight_decay", "maximize_weight_decay"],
                        opt(fame(variant="full", weight_decay=0.25, maximize=True,
                                 decoupled_weight_decay=True)), concave(), W0_3, [0.05] * T))
    return out


def _sam_cases(kind):
    T = 20
    q = quadratic()
    base = sgd(momentum=0.9)
    zero = replay([[0.0, 0.0], [0.5, -1.0], [0.0, 0.0], [0.25, 0.25], [1.0, 0.0]])
    prefix = kind
    label = "SAM" if kind == "sam" else "StableSAM"
    ascents = ("normalized", "unnormalized", "adaptive")
    out = []
    for ascent in ascents:
        rho = 0.5 if ascent == "adaptive" else 0.05
        flags = ["adaptive_ascent"] if ascent == "adaptive" else []
        if kind == "stable_sam":
            flags.append("stable_sam_rescale")
        out.append(CaseSpec(f"{prefix}/{ascent}-sgd", f"{label} with the {ascent} ascent "
                            f"(rho {rho}) over SGD momentum 0.9.", flags,
                            opt(base, sam(kind, rho=rho, ascent=ascent)), q, W0_3, [0.1] * T))
    out += [
        CaseSpec(f"{prefix}/eps-large", f"{label} with eps = 0.5, large enough to change every "
                 "step.", ["sam_eps"], opt(base, sam(kind, rho=0.25, ascent="normalized", eps=0.5)),
                 q, W0_3, [0.1] * T),
        CaseSpec(f"{prefix}/normalized-eps0-sgd", f"{label} with the normalized ascent and "
                 "eps = 0, as optax.contrib.normalize and the official JAX code compute it.",
                 ["sam_eps"], opt(base, sam(kind, rho=0.05, ascent="normalized", eps=0.0)), q,
                 W0_3, [0.1] * T),
        CaseSpec(f"{prefix}/zero-gradient", f"{label} on replayed gradients that are exactly "
                 "0 at steps 1 and 3 (eps 1e-12).", ["sam_zero_gradient"],
                 opt(base, sam(kind, ascent="normalized")), zero[0], [1.0, -0.5], [0.1] * 5,
                 step_data=zero[1]),
        CaseSpec(f"{prefix}/zero-gradient-eps0", f"{label} with eps = 0 and exact zero "
                 "gradients: the guarded scale 0/0 := 0.", ["sam_zero_gradient"],
                 opt(base, sam(kind, ascent="normalized", eps=0.0)), zero[0], [1.0, -0.5],
                 [0.1] * 5, step_data=zero[1]),
        CaseSpec(f"{prefix}/weight-decay", f"{label} over SGD with weight decay 0.1: the decay "
                 "is applied at w by the base optimizer.",
                 ["sam_descent_at_w", "coupled_weight_decay"],
                 opt(sgd(momentum=0.9, weight_decay=0.1), sam(kind, rho=0.1)), q, W0_3,
                 [0.1] * T),
        CaseSpec(f"{prefix}/adam", f"{label} over Adam.", [], opt(adam(), sam(kind, rho=0.1)),
                 q, W0_3, [0.05] * T),
    ]
    if kind == "sam":
        out.append(CaseSpec("sam/fame", "SAM over official FAME.", [],
                            opt(fame(), sam(kind, rho=0.1)), q, W0_3, [0.05] * T))
    p, data = nqm([4.0, 1.0, 0.25], [0.5, 0.25, 0.125], [0.25, -0.5, 0.75], T,
                  seed=4 if kind == "sam" else 5)
    out.append(CaseSpec(f"{prefix}/nqm", f"{label} on the noisy quadratic model: both "
                        "evaluations use the step's noise.", ["sam_same_batch"],
                        opt(base, sam(kind, rho=0.1)), p, W0_3, [0.1] * T, step_data=data))
    out += [to_float32(out[0]), to_float32(out[2])]
    # added with the authors' adaptive USAM (usam.py, adaptive=True): e = rho w^2 g
    flags = ["adaptive_unnormalized_ascent"] + (["stable_sam_rescale"] if kind == "stable_sam"
                                                else [])
    out.append(CaseSpec(f"{prefix}/adaptive-unnormalized-sgd", f"{label} with the StableSAM "
                        "authors' adaptive USAM ascent e = rho w^2 g (rho 0.05) over SGD "
                        "momentum 0.9.", flags,
                        opt(base, sam(kind, rho=0.05, ascent="adaptive_unnormalized")), q,
                        W0_3, [0.1] * T))
    return out


def _ema_cases():
    T = 20
    q = quadratic()
    base = sgd(momentum=0.9)
    lr = [0.1] * T
    out = [
        CaseSpec("ema/copy", "EMA (decay 0.9, start copy) over SGD momentum.", [],
                 opt(base, None, ema(0.9)), q, W0_3, lr),
        CaseSpec("ema/zeros", "Zero-started EMA with exact debiasing (optax's ema).",
                 ["ema_zero_start_debias"], opt(base, None, ema(0.9, start="zeros")), q, W0_3, lr),
        CaseSpec("ema/update-every-3", "EMA updated after every third step.",
                 ["ema_update_every"], opt(base, None, ema(0.75, update_every=3)), q, W0_3, lr),
        CaseSpec("ema/zeros-update-every-3", "Zero start and update_every 3: the average is 0 "
                 "until step 3.", ["ema_zero_start_debias", "ema_update_every"],
                 opt(base, None, ema(0.75, update_every=3, start="zeros")), q, W0_3, lr),
        CaseSpec("ema/timm-warmup", "timm / ema-pytorch warm-up (update_after_step 3, gamma 1, "
                 "power 2/3, min_decay 0.1, decay 0.9).", ["warmup_boundary"],
                 opt(base, None, ema(0.9, warmup="timm", update_after_step=3, min_decay=0.1)),
                 q, W0_3, lr),
        CaseSpec("ema/timm-min-decay", "timm warm-up where min_decay binds (0.5) and gamma "
                 "is not 1 (gamma 2, power 0.75, update_after_step 0, decay 0.95).",
                 ["warmup_boundary"],
                 opt(base, None, ema(0.95, warmup="timm", warmup_gamma=2.0, warmup_power=0.75,
                                     min_decay=0.5)), q, W0_3, lr),
        CaseSpec("ema/constant-warmup", "openmixup constant warm-up (ratio 0.5, 6 steps).",
                 ["warmup_boundary"],
                 opt(base, None, ema(0.9, warmup="constant", warmup_ratio=0.5, warmup_steps=6)),
                 q, W0_3, lr),
        CaseSpec("ema/linear-warmup", "openmixup linear warm-up (ratio 0.5, 6 steps).",
                 ["warmup_boundary"],
                 opt(base, None, ema(0.9, warmup="linear", warmup_ratio=0.5, warmup_steps=6)),
                 q, W0_3, lr),
        CaseSpec("ema/exp-warmup", "openmixup exponential warm-up (ratio 0.5, 6 steps).",
                 ["warmup_boundary"],
                 opt(base, None, ema(0.9, warmup="exp", warmup_ratio=0.5, warmup_steps=6)),
                 q, W0_3, lr),
        CaseSpec("ema/sam", "EMA over SAM over SGD.", [],
                 opt(base, sam("sam", rho=0.05), ema(0.9)), q, W0_3, lr),
        CaseSpec("ema/adam-zeros", "Zero-started EMA over Adam.", ["ema_zero_start_debias"],
                 opt(adam(), None, ema(0.8, start="zeros")), q, W0_3, [0.05] * T),
    ]
    out += [to_float32(out[0]), to_float32(out[4])]
    out += [  # added with start = "first"
        CaseSpec("ema/first", "start 'first' (torch AveragedModel's documented loop): the "
                 "update after step 1 copies w1; decay 0.9 afterwards.", ["ema_first_update"],
                 opt(base, None, ema(0.9, start="first")), q, W0_3, lr),
        CaseSpec("ema/first-update-every-3", "start 'first' with update_every 3: the first "
                 "update (after step 3) copies w3.", ["ema_first_update", "ema_update_every"],
                 opt(base, None, ema(0.75, start="first", update_every=3)), q, W0_3, lr),
        CaseSpec("ema/first-update-after-step-2", "start 'first' with update_after_step 2 "
                 "(timm ModelEmaV3 given step=, no warm-up): decay 0 after steps 1 to 3.",
                 ["ema_first_update", "warmup_boundary"],
                 opt(base, None, ema(0.9, start="first", update_after_step=2)), q, W0_3, lr),
    ]
    return out


def _switch_cases():
    T = 20
    q = quadratic()
    base = sgd(momentum=0.9)
    lr = [0.1] * T
    out = [
        CaseSpec("switch_ema/epoch", "Switch EMA, 5 steps per epoch, switch at the end of every "
                 "epoch.", ["switch_boundary"], opt(base, None, ema(0.8, switch_every=1)), q,
                 W0_3, lr, steps_per_epoch=5),
        CaseSpec("switch_ema/every-2-epochs-start-1", "Switch every 2nd epoch once the epoch "
                 "count exceeds 1 (4 steps per epoch).", ["switch_boundary"],
                 opt(base, None, ema(0.8, switch_every=2, switch_start=1)), q, W0_3, lr,
                 steps_per_epoch=4),
        CaseSpec("switch_ema/start-2", "Switch at the end of every epoch once the epoch "
                 "count exceeds 2: no switch at epochs 1 and 2 (4 steps per epoch).",
                 ["switch_boundary"], opt(base, None, ema(0.8, switch_every=1, switch_start=2)),
                 q, W0_3, lr, steps_per_epoch=4),
        CaseSpec("switch_ema/steps", "Switch every 6 steps (switch_unit 'step'), no epochs.",
                 ["switch_boundary"], opt(base, None, ema(0.8, switch_every=6, switch_unit="step")),
                 q, W0_3, lr),
        CaseSpec("switch_ema/reset", "on_switch 'reset': the momentum buffer restarts after "
                 "each switch (PyTorch's first step again).", ["switch_boundary", "switch_reset"],
                 opt(base, None, ema(0.8, switch_every=1, on_switch="reset")), q, W0_3, lr,
                 steps_per_epoch=5),
        CaseSpec("switch_ema/zeros-update-every", "Zero start, update_every 3, switch every 2 "
                 "steps: the switch due at step 2 is skipped.",
                 ["switch_before_first_update", "ema_zero_start_debias", "ema_update_every",
                  "switch_boundary"],
                 opt(base, None, ema(0.8, start="zeros", update_every=3, switch_every=2,
                                     switch_unit="step")), q, W0_3, lr),
        CaseSpec("switch_ema/adam-reset", "Switch EMA over Adam with reset: the bias "
                 "corrections restart at each switch.", ["switch_boundary", "switch_reset"],
                 opt(adam(), None, ema(0.8, switch_every=1, on_switch="reset")), q, W0_3,
                 [0.05] * T, steps_per_epoch=5),
        CaseSpec("switch_ema/stable-sam", "Switch EMA over StableSAM over SGD.",
                 ["switch_boundary"],
                 opt(base, sam("stable_sam", rho=0.1), ema(0.8, switch_every=1)), q, W0_3, lr,
                 steps_per_epoch=5),
    ]
    out += [to_float32(out[0]), to_float32(out[4])]
    out.append(CaseSpec("switch_ema/first-steps", "start 'first' (torch AveragedModel) and a "
                        "switch every 3 steps: the first switch copies an average that began "
                        "as w1.", ["ema_first_update", "switch_boundary"],
                        opt(base, None, ema(0.8, start="first", switch_every=3,
                                            switch_unit="step")), q, W0_3, lr))
    return out


def _divergence_cases():
    H = [[4.0, 0.0], [0.0, 1.0]]
    return [
        CaseSpec("divergence/gd-too-large-lr", "Gradient descent with lr 1000 on H = diag(4, 1): "
                 "|1 - 4 lr| ~ 4000 per step, the loss overflows after a few dozen steps.",
                 ["divergence"], opt(sgd()), quadratic(H, [0.0, 0.0]), [1.0, 1.0], [1000.0] * 60),
        CaseSpec("divergence/usam-too-large-lr", "USAM (rho 0.1) with lr 10 on H = diag(10, 1): "
                 "the descent gradient H (I + rho H) w grows 199-fold per step.",
                 ["divergence"], opt(sgd(), sam("sam", rho=0.1, ascent="unnormalized")),
                 quadratic([[10.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), [1.0, 1.0], [10.0] * 90),
    ]


def mlp_problem(steps, seed, sizes=(2, 4, 1), n=16, batch_size=4, activation="tanh",
                loss="mse", init_seed=1):
    """An MLP case's problem, its batches drawn by refimpl: a teacher-student regression
    set (loss "mse", the teacher of the same activation) or two spirals (loss "xent",
    one-hot targets)."""
    if loss == "mse":
        data = teacher_student(n, sizes=sizes, activation=activation, seed=0)
    else:
        data = two_spirals(n, seed=0)
    net = MLP(sizes, activation=activation, loss=loss)
    problem = MLPProblem(net, data.X, data.Y, batch_size=batch_size)
    batches = problem.draw_noise(steps, seed)
    spec = {"kind": "mlp", "sizes": list(sizes), "activation": activation, "loss": loss,
            "X": data.X.tolist(), "Y": data.Y.tolist(), "batch_size": batch_size, "seed": seed}
    return spec, [{"batch": row.tolist()} for row in batches], net.init(init_seed).tolist(), problem


def _mlp_cases():
    T = 20
    base = sgd(momentum=0.9)
    p, data, w0, problem = mlp_problem(T, seed=7)
    spe = problem.steps_per_epoch
    out = [
        CaseSpec("mlp/sgd-momentum", "SGD momentum 0.9 on a 2-4-1 tanh MLP.", ["mlp_layout"],
                 opt(base), p, w0, [0.1] * T, step_data=data),
        CaseSpec("mlp/adam", "Adam on the MLP.", ["mlp_layout"], opt(adam()), p, w0, [0.02] * T,
                 step_data=data),
        CaseSpec("mlp/sam", "SAM over SGD momentum on the MLP (both evaluations on the step's "
                 "batch).", ["mlp_layout", "sam_same_batch"], opt(base, sam("sam", rho=0.05)), p,
                 w0, [0.1] * T, step_data=data),
        CaseSpec("mlp/switch-ema", "Switch EMA over SGD momentum, switching at every epoch end "
                 f"({spe} batches).", ["mlp_layout", "switch_boundary"],
                 opt(base, None, ema(0.8, switch_every=1)), p, w0, [0.1] * T,
                 steps_per_epoch=spe, step_data=data),
    ]
    out.append(to_float32(out[0]))
    # added with relu and softmax cross-entropy: a torch classifier's setup
    relu_p, relu_data, relu_w0, _ = mlp_problem(T, seed=8, activation="relu", init_seed=2)
    xent_p, xent_data, xent_w0, _ = mlp_problem(T, seed=9, sizes=(2, 4, 2), loss="xent")
    rx_p, rx_data, rx_w0, _ = mlp_problem(T, seed=10, sizes=(2, 4, 2), activation="relu",
                                          loss="xent", init_seed=3)
    out += [
        CaseSpec("mlp/relu-sgd-momentum", "SGD momentum on a 2-4-1 relu MLP (mse, relu "
                 "teacher); no hidden pre-activation comes within its error bound of the kink "
                 "(the writer refuses a case that does).", ["mlp_layout", "mlp_relu"],
                 opt(base), relu_p, relu_w0, [0.1] * T, step_data=relu_data),
        CaseSpec("mlp/xent-sgd-momentum", "SGD momentum on a 2-4-2 tanh classifier with "
                 "softmax cross-entropy (two spirals, one-hot targets).",
                 ["mlp_layout", "mlp_xent"], opt(base), xent_p, xent_w0, [0.1] * T,
                 step_data=xent_data),
        CaseSpec("mlp/relu-xent-adam", "Adam on a 2-4-2 relu classifier with softmax "
                 "cross-entropy (nn.Linear + ReLU + CrossEntropyLoss).",
                 ["mlp_layout", "mlp_relu", "mlp_xent"], opt(adam()), rx_p, rx_w0,
                 [0.02] * T, step_data=rx_data),
    ]
    return out


def _averager_cases():
    T = 20
    q = quadratic()
    base = sgd(momentum=0.9)
    lr = [0.1] * T
    p, data = nqm([4.0, 1.0, 0.25], [0.5, 0.25, 0.125], [0.25, -0.5, 0.75], T, seed=6)
    out = [
        CaseSpec("averagers/swa-epochs", "SWA (torch AveragedModel's equal average) over SGD "
                 "momentum, a snapshot at the end of every epoch once the epoch count exceeds 1 "
                 "(4 steps per epoch: snapshots after steps 8, 12, 16, 20).", ["swa_mean"],
                 opt(base, None, swa(swa_start=1)), q, W0_3, lr, steps_per_epoch=4),
        CaseSpec("averagers/swa-steps-adam-nqm", "SWA every 3 steps after step 4 over Adam on "
                 "the noisy quadratic model.", ["swa_mean"],
                 opt(adam(), None, swa(swa_every=3, swa_unit="step", swa_start=4)), p, W0_3,
                 [0.05] * T, step_data=data),
        CaseSpec("averagers/lookahead", "Lookahead (k 5, alpha 0.5, slow weights from w0 as "
                 "in the paper) over SGD momentum.", ["lookahead_sync"],
                 opt(base, None, lookahead()), q, W0_3, lr),
        CaseSpec("averagers/lookahead-first-reset-adam", "Lookahead as timm starts it (the "
                 "first sync copies the fast weights), k 3, alpha 0.3, the fast Adam's state "
                 "reset at each sync.", ["lookahead_sync", "lookahead_first_sync",
                                         "lookahead_reset"],
                 opt(adam(), None, lookahead(k=3, alpha=0.3, start="first", on_sync="reset")),
                 q, W0_3, [0.05] * T),
        CaseSpec("averagers/lookahead-sam", "Lookahead (k 4, alpha 0.75) over SAM over SGD "
                 "momentum.", ["lookahead_sync"],
                 opt(base, sam("sam", rho=0.05), lookahead(k=4, alpha=0.75)), q, W0_3, lr),
    ]
    out += [to_float32(out[0]), to_float32(out[2])]
    return out


def all_cases() -> list[CaseSpec]:
    """Every golden case, in file order."""
    return (_sgd_cases() + _adam_cases() + _fame_cases() + _sam_cases("sam")
            + _sam_cases("stable_sam") + _ema_cases() + _switch_cases() + _mlp_cases()
            + _divergence_cases() + _averager_cases())
