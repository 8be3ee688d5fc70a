# %% [markdown]
# # Checking your own optimizer against the golden vectors
#
# You have ported an optimizer (to PyTorch, JAX, C++, or just your own NumPy code) and
# want to know whether it computes *the same thing* as refimpl: the same conventions,
# step by step, to rounding. refimpl ships **golden vectors** for exactly this: small
# cases that store every input exactly and, for every step, the expected parameters with
# a tolerance derived from a rounding-error bound.
#
# You will learn to
#
# - open the shipped vectors and read one case field by field, including where its
#   tolerance comes from (a bound on rounding, linear in the unit roundoff $u$);
# - write an adapter for a hand-written NumPy SGD with momentum, as a reader porting an
#   optimizer would, and check it with `golden.check`;
# - see what a wrong convention looks like (Keras momentum, dampening on the first step,
#   decoupled weight decay): each fails at the step where its convention first differs;
# - run the same check from the command line, `refimpl golden check --impl mymodule:make`.
#
# Prerequisites: tutorial 01 (SGD and momentum). Reference: `refimpl/golden/FORMAT.md`
# (the format and the checking rule, sections 2 to 7), the README section "Checking your
# own optimizer", and [sources](../proofs/sources.md#sgd) (the three momentum conventions,
# where they come from, and their
# [witness](../proofs/sources.md#the-lr-change-witness)).
# No PyTorch or optax is needed: everything here is NumPy.

# %%
import contextlib
import importlib
import io
import json
import sys
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

import refimpl.cli
from refimpl import golden
from refimpl.golden import run_case
from refimpl.golden.adapter import make as refimpl_make
from refimpl.tutorial import Tutorial

tut = Tutorial(
    title="Checking your own optimizer against the golden vectors",
    claim=("A hand-written NumPy SGD with PyTorch-convention momentum passes every shipped SGD "
           "case it can express (the float64 ones bit for bit), while Keras-style momentum, "
           "first-step dampening and decoupled weight decay each fail at exactly the step where "
           "their convention first changes the iterates (the first lr change, step 1, step 2; "
           "step 1 for Adam's decoupled decay); refimpl's own adapter passes every shipped "
           "case."),
    idea=r"A golden case stores every input exactly and, after every step, the expected "
         r"parameters with a tolerance: twice a bound on the rounding error that a correct "
         r"implementation and refimpl can accumulate, so a correct port passes (in float64 "
         r"often bit for bit). A wrong convention is not rounding: it fails many decades above the "
         r"tolerance, at exactly the step where its recursion first differs, e.g. Keras "
         r"momentum at the first change of $\eta$, because $v_t = -\eta\, b_t$ only while "
         r"$\eta$ is constant.",
    formula=r"|w_{k,i} - w^{\text{ref}}_{k,i}| \le \operatorname{tol}_{k,i} "
            r"= 2\left(E_{k,i}(u_{\text{impl}}) + E_{k,i}(u_{\text{ref}})\right)"
            r"\quad \text{for every step } k \text{ and coordinate } i")
FAST = tut.fast  # the whole check takes about a second, so fast mode runs it all too

# %% [markdown]
# ## 1. What a golden case is
#
# The vectors ship inside the package as one JSON file per optimizer family;
# `golden.VECTORS` is their directory and `golden.load` reads and validates a file
# (schema, cross-field rules, exact numbers). Each case becomes a `golden.Case` object:
# the very object an adapter receives.

# %%
files = golden.golden_files(golden.VECTORS)
cases = {c.id: c for path in files for c in golden.load(path).cases}
families = Counter(cid.split("/")[0] for cid in cases)
for family, n in sorted(families.items()):
    print(f"{family:11s} {n:3d} cases")
n_cases, n_files = len(cases), len(files)
tut.number("shipped cases", n_cases)
tut.number("float32 cases", sum(c.dtype == "float32" for c in cases.values()))
tut.number("files (families)", n_files)
# one file per family: every case in a file belongs to the family the file is named after
one_family_per_file = all(c.id.split("/")[0] == path.stem
                          for path in files for c in golden.load(path).cases)

# %% [markdown]
# **Inputs are stored exactly.** Every real number is written in the shortest decimal
# that reads back to the same double. Each file carries a `float_probe`, pairs of a
# C99 hex float and its decimal, so that a reader in another language can test its JSON
# parser first: a parser that is not correctly rounded is not exact enough for the
# vectors. Python's is:

# %%
probe = json.loads((golden.VECTORS / "sgd.json").read_text())["float_probe"]
for pair in probe:
    print(f"{pair['hex']:>24s}  {pair['decimal']!r:>24s}  "
          f"equal: {float.fromhex(pair['hex']) == pair['decimal']}")
probes_exact = all(float.fromhex(p["hex"]) == p["decimal"] for p in probe)

# %% [markdown]
# Now open one case: heavy-ball momentum in PyTorch's convention, on a 3-dimensional
# quadratic, under a warm-up and step-decay learning-rate schedule. Every option of the
# optimizer is spelled out (nothing is left to a library default), and the step inputs
# (here just the learning rate) are listed per step.

# %%
case = cases["sgd/pytorch-momentum-schedule"]
print("id:       ", case.id, f"({case.dtype}, d = {case.d}, {case.n_steps} steps)")
print("comment:  ", case.comment)
print("flags:    ", case.flags)
print("optimizer:", case.describe())
print("problem:  ", case.problem.kind, "H =", case.problem["H"].tolist(),
      "w_star =", case.problem["w_star"].tolist())
print("w0:       ", case.w0.tolist())
print("lr:       ", case.lr.tolist())
print("step 1 as stored:", json.dumps(case.step_data(1)))
print("tolerance:", case.raw["tolerance"])

# %% [markdown]
# The flags name the conventions this case pins down, and each file's `notes` explain
# them; here `lr_inside_velocity` says Keras-style momentum agrees with PyTorch's only
# while the rate is constant:

# %%
for flag in case.flags:
    print(f"{flag}: {case.notes[flag]}\n")

# %% [markdown]
# **Tolerances.** `tol_params` is not a guess: for every step $k$ and coordinate $i$ it is
#
# $$
# \operatorname{tol}_{k,i} = 2\left(E_{k,i}(u_{\text{impl}}) + E_{k,i}(u_{\text{ref}})\right),
# $$
#
# where $E(u)$ is a first-order bound on the rounding error a correct implementation can
# accumulate up to that step with unit roundoff $u$ (FORMAT.md section 5), rounded up to
# two significant digits. $E(u)$ is linear in $u$, so the float64 tolerance is
# $4\,E(2^{-53})$ and the float32 twin's (same inputs, rounded to float32; refimpl's half
# stays float64) is $2\,E(2^{-24}) + 2\,E(2^{-53})$, larger by the factor
#
# $$
# \frac{2\,E(2^{-24}) + 2\,E(2^{-53})}{4\,E(2^{-53})} = \frac{2^{29} + 1}{2} = 2^{28} + \frac{1}{2},
# $$
#
# up to the 10% that rounding each tolerance up to two significant digits may add. The
# tolerance follows the run. Next to it we plot how far apart PyTorch's and Keras's
# expected iterates are on the same problem and schedule (the case
# `sgd/keras-momentum-schedule`): a convention difference, not rounding.

# %%
twin = cases["sgd/pytorch-momentum-schedule-f32"]
keras_case = cases["sgd/keras-momentum-schedule"]
steps = np.arange(1, case.n_steps + 1)
rel_tol64 = np.max(case.tol_params / np.abs(case.params), axis=1)
rel_tol32 = np.max(twin.tol_params / np.abs(twin.params), axis=1)
conv_gap = np.max(np.abs(keras_case.params - case.params) / np.abs(case.params), axis=1)
fig, ax = plt.subplots(figsize=(9, 5))
ax.semilogy(steps, rel_tol64, "o-", label="tolerance, float64 case")
ax.semilogy(steps, rel_tol32, "s-", label="tolerance, float32 twin")
ax.semilogy(steps, np.where(conv_gap > 0, conv_gap, np.nan), "^-",
            label=r"$|w^{\mathrm{Keras}}_k - w^{\mathrm{PyTorch}}_k|$ (expected iterates)")
ax.set(xlabel="step $k$", ylabel=r"relative to $|w_k|$ (max over coordinates)",
       title="sgd/pytorch-momentum-schedule: tolerance vs a convention gap")
_ = ax.legend(loc="center right")
tut.figure(fig, "tolerance_per_step",
           "Relative tolerance per step of the float64 case and its float32 twin (log scale), "
           "and the relative gap between Keras and PyTorch momentum on the same schedule: "
           "zero at step 1 (not drawn), then many decades above both tolerances.")
tut.number("largest relative tolerance, float64 case", rel_tol64.max())
tut.number("largest relative tolerance, float32 twin", rel_tol32.max())
tut.number("smallest Keras-PyTorch gap after step 1 / float64 tolerance",
           np.min(conv_gap[1:] / rel_tol64[1:]))
tut.number("smallest Keras-PyTorch gap after step 1 / float32 tolerance",
           np.min(conv_gap[1:] / rel_tol32[1:]))
twin_ratio = twin.tol_params / case.tol_params / 2.0**28  # every step and coordinate
tut.number("float32 / float64 tolerance / 2^28, smallest", twin_ratio.min())
tut.number("float32 / float64 tolerance / 2^28, largest", twin_ratio.max())

# %% [markdown]
# In the figure, look at the vertical distances: the two tolerance curves run parallel,
# $2^{28}$ (about eight decades) apart, and the Keras-PyTorch gap, zero at step 1 where
# $\eta$ has not changed yet, sits above even the float32 tolerance from step 2 on. A
# tolerance that loose for rounding is still far too tight for a convention difference.
#
# refimpl's own adapter (`refimpl.golden.adapter:make`, an ordinary plug-in written
# against refimpl's public API) is how the expected values were made, so it should not
# merely pass: it should reproduce every stored parameter bit for bit. We run all the
# shipped cases through it with `run_case` (which returns the whole trajectory) and
# `compare` (which applies the checking rule).

# %%
refimpl_results, refimpl_bitwise = [], 0
for c in cases.values():
    traj = run_case(c, refimpl_make)
    refimpl_results.append(golden.compare(c, traj))
    refimpl_bitwise += all(np.array_equal(traj.steps[k].params, c.params[k])
                           for k in range(c.n_done))
refimpl_pass = sum(r.status == "pass" for r in refimpl_results)
tut.number("cases refimpl's own adapter passes", refimpl_pass)
tut.number("cases it reproduces bit for bit", refimpl_bitwise)

# %% [markdown]
# ## 2. Writing an adapter
#
# Here is "your" optimizer: SGD with heavy-ball momentum, written the way `torch.optim.SGD`
# documents it (coupled L2 weight decay added to the gradient, no dampening on the first
# step, the buffer $b_t$ multiplied by the *current* learning rate:
# $w_t = w_{t-1} - \eta_t\, b_t$). It knows nothing about
# golden vectors. We write it to a module file, `tut07_my_sgd.py`, because the command
# line check in section 4 imports the adapter by module name, as it would import yours.

# %%
MY_SGD = '''\
"""tut07_my_sgd: the user's optimizer, SGD with momentum in torch.optim.SGD's convention."""
import numpy as np


class MomentumSGD:
    def __init__(self, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False, dtype=np.float64):
        self.dt = np.dtype(dtype).type                # compute in this precision
        self.momentum, self.dampening = self.dt(momentum), self.dt(dampening)
        self.weight_decay = self.dt(weight_decay)
        self.nesterov, self.maximize = nesterov, maximize
        self.buf = None                               # momentum buffer, made at step 1

    def gradient(self, w, g):
        g = -g if self.maximize else g                # negate first ...
        if self.weight_decay != 0:
            g = g + self.weight_decay * w             # ... then coupled L2 decay
        return g
'''

# %% [markdown]
# Its step is PyTorch's recursion; then the module file is written.

# %%
MY_SGD += '''
    def step(self, w, g, lr):
        """The new parameters after one step from w with gradient g at rate lr."""
        g, lr = self.gradient(w, g), self.dt(lr)
        if self.momentum == 0:
            return w - lr * g
        if self.buf is None:
            self.buf = g.copy()                       # first step: no dampening
        else:
            self.buf = self.momentum * self.buf + (1 - self.dampening) * g
        d = g + self.momentum * self.buf if self.nesterov else self.buf
        return w - lr * d
'''
_ = (tut.out / "tut07_my_sgd.py").write_text(MY_SGD)  # (returns the character count)

# %% [markdown]
# The **adapter** translates a golden case into that optimizer (FORMAT.md section 7): a
# factory `make(case)` returns an object whose `step(grad_fn, inputs)` takes one step.
# `grad_fn(w)` is the case's gradient oracle for this step's mini-batch (float64; the
# checker counts the calls and records the loss), `inputs` has the step number, its
# learning rate and `epoch_end`. A case the optimizer cannot express raises
# `golden.Unsupported`, which is reported as *skipped*, not failed. optax's convention is
# accepted too: its trace is PyTorch's buffer when dampening is 0 (the reader guarantees
# that). The factory takes the optimizer class as a parameter so that section 3 can swap
# in wrong variants.

# %%
ADAPTER = '''\
"""tut07_my_sgd_golden: the golden-vector adapter for tut07_my_sgd (FORMAT.md section 7)."""
from refimpl.golden import Unsupported
from tut07_my_sgd import MomentumSGD


class Stepper:
    def __init__(self, case, optimizer_cls):
        b, self.dt = case.base, case.numpy_dtype.type
        self.w = case.w0.astype(self.dt)              # exact: inputs fit the case's dtype
        self.opt = optimizer_cls(momentum=b["momentum"], dampening=b["dampening"],
                                 weight_decay=b["weight_decay"], nesterov=b["nesterov"],
                                 maximize=b["maximize"], dtype=self.dt)

    def step(self, grad_fn, inputs):
        loss, g = grad_fn(self.w)                     # float64 oracle of this step's batch
        self.w = self.opt.step(self.w, g.astype(self.dt), inputs.lr)
        return self.w, None                           # no EMA average
'''

# %% [markdown]
# The factory refuses what the optimizer cannot express and otherwise builds a `Stepper`.

# %%
ADAPTER += '''

def make(case, optimizer_cls=MomentumSGD):
    if case.base.kind != "sgd" or case.sam is not None or case.average is not None:
        raise Unsupported("tut07_my_sgd is plain SGD with momentum")
    if case.base["convention"] == "keras":
        raise Unsupported("Keras momentum (lr inside the velocity) is another recursion")
    return Stepper(case, optimizer_cls)
'''
(tut.out / "tut07_my_sgd_golden.py").write_text(ADAPTER)
sys.path.insert(0, str(tut.out))
for name in ("tut07_my_sgd", "tut07_my_sgd_golden"):
    sys.modules.pop(name, None)  # a re-run in the same process imports the fresh files
my_sgd = importlib.import_module("tut07_my_sgd")
adapter = importlib.import_module("tut07_my_sgd_golden")

# %% [markdown]
# `golden.check(paths, factory)` runs every case of the given files through the factory
# and judges each step: the right number of oracle calls, the loss at the first call,
# and every parameter within its tolerance. We give it the SGD family's file.

# %%
sgd_file = golden.VECTORS / "sgd.json"
report = golden.check(sgd_file, adapter.make)
print(report.text(verbose=True))
n_pass, n_fail, n_skip = report.count("pass"), report.count("fail"), report.count("skip")
tut.number("SGD cases passed", n_pass)
tut.number("SGD cases failed", n_fail)
tut.number("SGD cases skipped (Keras convention)", n_skip)
skipped_ids = {r.case_id for r in report.results if r.status == "skip"}
keras_ids = {cid for cid, c in cases.items()
             if cid.startswith("sgd/") and c.base["convention"] == "keras"}
n_sgd_cases = len(golden.load(sgd_file).cases)

# %% [markdown]
# **How much of the tolerance does it use?** Passing is a yes/no answer; the margin says
# how robust the pass is. For every passing case and step $k$ we take the share of the
# tolerance used,
#
# $$
# r_k = \max_i \frac{|w^{\text{mine}}_{k,i} - w^{\text{ref}}_{k,i}|}{\operatorname{tol}_{k,i}} ,
# $$
#
# which must stay at most 1. In float64 our NumPy code performs
# the same operations in the same order as refimpl's SGD kernel
# (`refimpl/optimizers/sgd.py`), and IEEE arithmetic is deterministic, so it must
# reproduce the expected values bit for bit ($r_k = 0$); an equal formula evaluated
# in another order, such as $w_{t-1} - (\eta \mu)\, b_{t-1} - \eta\, g_t$, generally would not.
# In the float32 cases it really computes in float32 while the expected values are
# float64, so it deviates somewhere in every float32 case (printed; an adapter that silently
# computed in float64 would not), and the ratio shows how much of the derived bound
# float32 rounding actually uses.

# %%
sgd_cases = [cases[r.case_id] for r in report.results if r.status == "pass"]
fig, ax = plt.subplots(figsize=(9, 5))
usage = {}
for c in sgd_cases:
    traj = run_case(c, adapter.make)
    got = np.array([s.params for s in traj.steps])
    usage[c.id] = np.max(np.abs(got - c.params) / c.tol_params, axis=1)
    if c.dtype == "float32":
        ax.semilogy(np.arange(1, c.n_steps + 1), usage[c.id], "o-", ms=3, label=c.id)
ax.axhline(1.0, color="k", ls="--", label="tolerance (ratio 1)")
ax.set(xlabel="step $k$",
       ylabel=r"$r_k = \max_i\, |w^{\mathrm{mine}}_{k,i} - w^{\mathrm{ref}}_{k,i}|"
              r"\,/\,\mathrm{tol}_{k,i}$",
       title="Share of the tolerance used by the NumPy SGD, float32 cases")
_ = ax.legend(ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
tut.figure(fig, "tolerance_used",
           "How much of each step's tolerance the hand-written NumPy SGD uses in the float32 "
           "cases (log scale): every point stays below the dashed line at 1.")
use64 = max(u.max() for cid, u in usage.items() if cases[cid].dtype == "float64")
use32 = max(u.max() for cid, u in usage.items() if cases[cid].dtype == "float32")
f64_ids = [cid for cid in usage if cases[cid].dtype == "float64"]
f32_ids = [cid for cid in usage if cases[cid].dtype == "float32"]
f64_bitwise = sum(bool(np.all(usage[cid] == 0)) for cid in f64_ids)
f32_rounded = sum(bool(usage[cid].max() > 0) for cid in f32_ids)
tut.number("largest share of the tolerance used, float64 cases", use64)
tut.number("float64 SGD cases passed", len(f64_ids))
tut.number("of them reproduced bit for bit", f64_bitwise)
tut.number("largest share of the tolerance used, float32 cases", use32)
tut.number("float32 SGD cases passed", len(f32_ids))
tut.number("of them with some nonzero deviation (real float32 rounding)", f32_rounded)

# %% [markdown]
# In the figure, look at the height of the curves below the dashed line: that gap is
# the safety margin of the pass, the share of the derived bound that real float32
# rounding used (the largest value is printed above). The float64 cases are not drawn:
# their $r_k$ is exactly 0, which a log scale cannot show.
#
# ## 3. What a wrong convention looks like
#
# Three mistakes that are easy to make when porting momentum SGD, each a small subclass
# of the correct optimizer:
#
# - **Keras-style momentum** keeps the learning rate inside the velocity:
#   $v_t = \mu\, v_{t-1} - \eta_t\, g_t$, $w_t = w_{t-1} + v_t$. With a constant rate
#   $\eta$ this is PyTorch's recursion with $v_t = -\eta\, b_t$; from the first step
#   whose rate differs from the previous one, it is not.
# - **Dampening on the first step**: $b_1 = (1 - \tau)\, g_1$ (dampening $\tau$), where
#   PyTorch sets $b_1 = g_1$. It can only matter when $\tau \ne 0$, and then at step 1.
# - **Decoupled weight decay** (the AdamW/SGDW way):
#   $w_t = w_{t-1} - \eta\, b_t - \eta \lambda\, w_{t-1}$ with the buffer built from the
#   bare gradient. At step 1 both give $w_0 - \eta\,(g_1 + \lambda w_0)$; from step 2 the
#   coupled buffer remembers $\lambda w_0$ and the decoupled one does not.

# %%
class KerasMomentum(my_sgd.MomentumSGD):
    def step(self, w, g, lr):
        g, lr = self.gradient(w, g), self.dt(lr)
        self.buf = -lr * g if self.buf is None else self.momentum * self.buf - lr * g
        return w + self.momentum * self.buf - lr * g if self.nesterov else w + self.buf


class DampenedFirstStep(my_sgd.MomentumSGD):
    def step(self, w, g, lr):
        if self.buf is None and self.momentum != 0:
            self.buf = np.zeros_like(w)  # so step 1 takes the dampened branch
        return super().step(w, g, lr)


class DecoupledWeightDecay(my_sgd.MomentumSGD):
    def step(self, w, g, lr):
        decay, self.weight_decay = self.weight_decay, self.dt(0)
        w_new = super().step(w, g, lr)  # the momentum step with the bare gradient
        self.weight_decay = decay
        return w_new - self.dt(lr) * decay * w


def factory(optimizer_cls):
    return lambda c: adapter.make(c, optimizer_cls=optimizer_cls)


# %% [markdown]
# When a case fails, the report names it and its file, the first step that mismatches
# and what differed, the expected and actual values before and at that step, and the
# case's flags with their notes (which usually name the culprit). Here is Keras-style
# momentum on the case we opened in section 1:

# %%
keras_report = golden.check(sgd_file, factory(KerasMomentum),
                            select=["sgd/pytorch-momentum-schedule"])
print(keras_report.text())
keras_step = keras_report.results[0].step
tut.number("first failing step, Keras momentum on sgd/pytorch-momentum-schedule", keras_step)

# %% [markdown]
# **Does each mistake fail exactly where the math says?** From the three bullet points
# above we predict, for every SGD case the adapter supports, the first step at which each
# variant's iterates differ from PyTorch's in exact arithmetic (`None` = never; with
# $\mu = 0$ every convention is $w_t = w_{t-1} - \eta_t\, g_t$, and Keras, which has no
# dampening, differs on a dampened case at step 2, where PyTorch's buffer first takes
# $(1 - \tau)\, g_2$). Then we
# run the whole SGD file through each variant and compare with the step the checker
# reports. A prediction of `None` that passes is as much a result as a failure: the
# vectors can only catch a convention in a case that exercises it, which is why the
# cases carry flags such as `lr_schedule`.

# %%
def first_lr_change(c):
    return next((k for k in range(2, c.n_steps + 1) if c.lr[k - 1] != c.lr[k - 2]), None)


def predicted_step(variant, c):
    b = c.base
    if b["momentum"] == 0:
        return None  # every convention is w - lr g
    if variant is KerasMomentum:
        return 2 if b["dampening"] != 0 else first_lr_change(c)
    if variant is DampenedFirstStep:
        return 1 if b["dampening"] != 0 else None
    return 2 if b["weight_decay"] != 0 else None  # DecoupledWeightDecay


# %%
variants = (KerasMomentum, DampenedFirstStep, DecoupledWeightDecay)
agree, n_failing = {}, {}
for variant in variants:
    rep = golden.check(sgd_file, factory(variant))
    rows = [(r.case_id, predicted_step(variant, cases[r.case_id]), r.step)
            for r in rep.results if r.status != "skip"]
    agree[variant.__name__] = all(p == s for _, p, s in rows)
    n_failing[variant.__name__] = rep.count("fail")
    print(f"{variant.__name__}: {rep.count('fail')} failed, {rep.count('pass')} passed")
    for cid, p, s in rows:
        if p is not None or s is not None:
            print(f"    {cid:40s} predicted step {p}, first failing step {s}")
    tut.number(f"{variant.__name__}: cases failing", rep.count("fail"))

# %% [markdown]
# **By how much?** For one case per mistake (the case that exercises it) we plot
# the share of the tolerance used,
# $\max_i |w^{\text{wrong}}_{k,i} - w^{\text{ref}}_{k,i}| / \operatorname{tol}_{k,i}$, at
# every step $k$, the run continued past the first
# failure. The correct adapter on the same case stays at or below 1 (it is exactly 0 in
# these float64 cases, so it is not drawn on the log scale); each wrong variant jumps many
# decades above the tolerance line at its predicted step.

# %%
showcase = [(KerasMomentum, "sgd/pytorch-momentum-schedule"),
            (DampenedFirstStep, "sgd/pytorch-dampening"),
            (DecoupledWeightDecay, "sgd/pytorch-weight-decay")]
fig, ax = plt.subplots(figsize=(9, 5.5))
ratio_at = {}
for variant, cid in showcase:
    c = cases[cid]
    got = np.array([s.params for s in run_case(c, factory(variant)).steps])
    ratio = np.max(np.abs(got - c.params) / c.tol_params, axis=1)
    ratio_at[variant.__name__] = ratio
    ax.semilogy(np.arange(1, c.n_steps + 1), np.where(ratio > 0, ratio, np.nan), "o-", ms=3,
                label=f"{variant.__name__} on {cid}")
ax.axhline(1.0, color="k", ls="--", label="tolerance (ratio 1)")
ax.set(xlabel="step $k$",
       ylabel=r"$\max_i\, |w^{\mathrm{wrong}}_{k,i} - w^{\mathrm{ref}}_{k,i}|"
              r"\,/\,\mathrm{tol}_{k,i}$",
       title="Wrong conventions against the golden vectors")
_ = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16))
tut.figure(fig, "wrong_conventions",
           "Distance of each wrong variant from the expected iterates, in units of the step's "
           "tolerance (log scale). Points below the dashed line pass; exact zeros (before the "
           "conventions differ) are not drawn. Each variant crosses the line at its predicted "
           "step and stays far above it.", key=True)
for variant, cid in showcase:
    k = predicted_step(variant, cases[cid])
    tut.number(f"{variant.__name__}: |diff| / tol at predicted step {k}",
               ratio_at[variant.__name__][k - 1])

# %% [markdown]
# In the figure, look at where each curve first appears and how high it jumps: before
# the predicted step a variant is within tolerance (here its distance is exactly 0, so
# nothing is drawn), and at that step it leaps to many decades above the dashed line
# (the values are printed above). There is no gray zone between rounding and a
# convention bug.
#
# **The same mistake in Adam fails earlier.** Adam divides the first moment by the root of
# the second, so at step 1 its update is $\eta\, g_i / (|g_i| + \epsilon)$ per coordinate,
# whatever the gradient's size: coupled decay is folded into $g$ and normalised away with
# it, while decoupled decay (AdamW) subtracts $\eta \lambda\, w_0$ on top. So the
# prediction is step 1, not 2.
# A minimal Adam in torch.optim.Adam's order, correct and decoupled:

# %%
class TinyAdam:
    def __init__(self, case, decoupled=False):
        if case.base.kind != "adam" or case.dtype != "float64":
            raise golden.Unsupported("TinyAdam computes in float64 only")
        if case.base.get("amsgrad") is not None or case.base.get("decoupled_weight_decay"):
            raise golden.Unsupported("TinyAdam is plain Adam (no AMSGrad, no AdamW)")
        self.b, self.decoupled, self.t = case.base, decoupled, 0
        self.w = case.w0.copy()
        self.m, self.v = np.zeros(case.d), np.zeros(case.d)

    def step(self, grad_fn, inputs):
        b, w, lr = self.b, self.w, inputs.lr
        g = -grad_fn(w)[1] if b["maximize"] else grad_fn(w)[1]
        g = g + (0 if self.decoupled else b["weight_decay"] * w)  # coupled: into g
        self.t += 1
        self.m = b["beta1"] * self.m + (1 - b["beta1"]) * g
        self.v = b["beta2"] * self.v + (1 - b["beta2"]) * g * g
        denom = np.sqrt(self.v) / np.sqrt(1 - b["beta2"] ** self.t) + b["eps"]
        self.w = w - (lr / (1 - b["beta1"] ** self.t)) * (self.m / denom)
        if self.decoupled:
            self.w = self.w - lr * b["weight_decay"] * w
        return self.w


# %%
adam_file = golden.VECTORS / "adam.json"
adam_ok = golden.check(adam_file, TinyAdam)
adam_wrong = golden.check(adam_file, lambda c: TinyAdam(c, decoupled=True))
print(adam_ok.text(verbose=True), "\n")
adam_rows = [(r.case_id, 1 if cases[r.case_id].base["weight_decay"] != 0 else None, r.step)
             for r in adam_wrong.results if r.status != "skip"]
for cid, p, s in adam_rows:
    print(f"decoupled decay on {cid:28s} predicted step {p}, first failing step {s}")
print("\n".join(adam_wrong.text().splitlines()[:4]), "\n  ...")
adam_agree = all(p == s for _, p, s in adam_rows)
adam64 = [c for c in golden.load(adam_file).cases if c.dtype == "float64"
          and c.base.get("amsgrad") is None and not c.base.get("decoupled_weight_decay")]
n_adam64 = len(adam64)
n_adam_wd = sum(c.base["weight_decay"] != 0 for c in adam64)
adam_step = next(s for cid, _, s in adam_rows if cid == "adam/weight-decay")
tut.number("float64 plain Adam cases", n_adam64)
tut.number("of them with weight decay", n_adam_wd)
tut.number("first failing step, decoupled decay on adam/weight-decay", adam_step)

# %% [markdown]
# ## 4. The same check from the command line
#
# In a project you would run the check from a shell (or CI) against your adapter module;
# MODULE is imported with the current directory on `sys.path`, and the exit status is 0
# when no case failed, 1 when one did, 2 for a usage error:
#
# ```bash
# cd /path/to/your/adapter          # where tut07_my_sgd_golden.py lives
# refimpl golden check --impl tut07_my_sgd_golden:make -k 'sgd/*'
# refimpl golden check --impl tut07_my_sgd_golden:make -k 'sgd/*' -v   # list passes too
# ```
#
# Here we call the same entry point, `refimpl.cli.main`, on the module written in
# section 2 (its directory is already on `sys.path`) and capture its output and exit code.
# Without `-k` it runs every shipped case: the adapter skips those it cannot express and
# is checked on the rest, including the MLP and divergence cases that use plain SGD.

# %%
def run_cli(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = refimpl.cli.main(argv)
    return code, out.getvalue().strip()


cli_code, cli_out = run_cli(["golden", "check", "--impl", "tut07_my_sgd_golden:make",
                             "-k", "sgd/*"])
print(cli_out.splitlines()[-1], "| exit code", cli_code)
all_code, all_out = run_cli(["golden", "check", "--impl", "tut07_my_sgd_golden:make", "-v"])
print("\n".join(line for line in all_out.splitlines() if line.startswith(("PASS", "golden:"))))
print("exit code", all_code)
tut.number("CLI exit code, sgd/* with the correct adapter", cli_code)

# %% [markdown]
# ## 5. The same check inside your own test suite
#
# Engineers rarely run a separate command by hand: the vectors belong in the project's
# own CI, next to its other tests. refimpl ships a pytest plugin, inactive unless asked
# for, that turns every golden case into a test item of your run (`-k` selects by case
# id, family, file or flag; an `Unsupported` case is skipped with its reason; a failure
# prints the report of section 3):
#
# ```bash
# pytest --refimpl-impl tut07_my_sgd_golden:make              # a module on sys.path
# pytest --refimpl-impl tests/adapter.py:make -k "sgd and not f32"   # or a file
# ```
#
# or a test of your own, parametrized over the cases you choose:
#
# ```python
# @pytest.mark.parametrize("case", golden.cases("sgd/*"), ids=lambda c: c.id)
# def test_my_sgd(case):
#     result = golden.compare(case, golden.run_case(case, make))
#     assert result.status != "fail", result.report
# ```
#
# For other CI systems, `refimpl golden check ... --junit FILE` writes a JUnit XML
# report and `--json FILE` one JSON object per case. An implementation in another
# language (C++, Rust) reads `refimpl/golden/vectors/*.json` itself: FORMAT.md is enough
# to write that reader, and section 6 of it gives the comparison loop.

# %% [markdown]
# ## What we checked
#
# - The shipped vectors come one file per family (every case in a file belongs to the
#   family the file is named after), and Python's JSON reader turns every `float_probe`
#   decimal into exactly its hex double.
# - refimpl's own adapter passes every shipped case, reproducing every stored parameter
#   bit for bit (the vectors are its run).
# - The hand-written NumPy SGD fails no SGD case, skips exactly the Keras-convention
#   cases and passes all the others (the counts are printed in section 2).
# - It reproduces every float64 SGD case bit for bit, and deviates somewhere in every
#   float32 case (it really rounds in float32) while passing it.
# - The float32 twin's tolerance is $2^{28}$ times the float64 one (within the 10% of
#   two-digit rounding), as the linear bound predicts.
# - The tolerance is far below a convention difference: Keras and PyTorch expected
#   iterates differ by more than a million tolerances from step 2 on.
# - Each wrong variant fails at exactly the step predicted from the math, on every SGD
#   case, and passes where the prediction says its convention cannot show: Keras momentum
#   at the first lr change (step 2 on the case we opened), first-step dampening at step 1,
#   decoupled weight decay at step 2. A minimal Adam passes every float64 plain-Adam case
#   (it declines the AMSGrad and AdamW cases as unsupported), and its decoupled-decay
#   variant fails exactly the float64 cases with weight decay (at least one), each at step 1.
# - The command line gives the same verdict as `golden.check`, with exit code 0.

# %%
tut.check(bool(one_family_per_file and n_files == len(families)),
          "the shipped vectors come one file per family, named after it")
tut.check(probes_exact, "every float_probe decimal parses to exactly its hex double")
tut.check(refimpl_pass == n_cases and refimpl_bitwise == n_cases,
          "refimpl's own adapter passes every shipped case and reproduces every parameter "
          "bit for bit")
tut.check(n_fail == 0 and skipped_ids == keras_ids and n_skip == len(keras_ids) > 0
          and n_pass == n_sgd_cases - len(keras_ids),
          "the NumPy SGD fails no SGD case, skips exactly the Keras ones and passes all others")
tut.check(len(f64_ids) > 0 and f64_bitwise == len(f64_ids)
          and len(f32_ids) > 0 and f32_rounded == len(f32_ids),
          "the NumPy SGD reproduces every float64 SGD case bit for bit and deviates somewhere "
          "in every float32 one (real float32 rounding)")
tut.check(bool(np.all((twin_ratio > 1 / 1.1) & (twin_ratio < 1.1))),
          "the float32 twin's tolerance is 2^28 times the float64 one at every step and "
          "coordinate, within the 10% of rounding each up to two significant digits")
tut.check(bool(np.min(conv_gap[1:] / rel_tol64[1:]) > 1e6),
          "from step 2 the Keras-PyTorch gap exceeds the float64 tolerance a million times")

# %%
tut.check(keras_step == first_lr_change(case) == 2,
          "Keras momentum fails sgd/pytorch-momentum-schedule at its first lr change, step 2")
tut.check(all(agree.values()) and all(n > 0 for n in n_failing.values()),
          "each wrong SGD variant fails at exactly its predicted first step on every SGD case "
          "(and passes where none is predicted)")
tut.check(all(bool(ratio_at[v.__name__][predicted_step(v, cases[cid]) - 1] > 1)
              and bool(np.all(ratio_at[v.__name__][:predicted_step(v, cases[cid]) - 1] <= 1))
              for v, cid in showcase),
          "in the figure each variant is within tolerance before its predicted step and "
          "outside it at that step")
tut.check(adam_ok.count("fail") == 0 and adam_ok.count("pass") == n_adam64 and adam_step == 1
          and adam_agree and adam_wrong.count("fail") == n_adam_wd > 0,
          "TinyAdam passes every float64 plain-Adam case; with decoupled decay it fails exactly "
          "the weight-decay ones, at step 1")
tut.check(cli_code == 0 and cli_out.splitlines()[-1] == report.text().splitlines()[-1]
          and all_code == 0,
          "the command line gives golden.check's verdict on sgd/* and exits 0")
