# %% [markdown]
# # EMA of the weights: lag versus variance, warm-up, debiasing
#
# An exponential moving average of the weights,
#
# $$
# m_t = \rho\, m_{t-1} + (1 - \rho)\, w_t ,
# $$
#
# is a low-pass filter on the optimizer's trajectory. It trades **lag** (it trails a moving
# signal) against **variance** (it averages noise away), and its start matters: begun as a
# copy of $w_0$ it remembers $w_0$ for about $\frac{1}{1 - \rho}$ steps; begun at zero it is
# biased toward zero unless debiased.
#
# You will learn
#
# - the two closed forms of the trade-off: a lag of $\frac{\rho}{1 - \rho}$ steps on a linear
#   trend, a variance of $\frac{1 - \rho}{1 + \rho}$ times that of white noise, and what they
#   mean for the expected loss of the averaged weights on the noisy quadratic model (exact,
#   from `refimpl.theory.moments`, next to a Monte Carlo band of real runs);
# - what the `warmup` options of `refimpl.EMA` do to the decay and to $w_0$'s memory;
# - why the debiased zero-start EMA is a true weighted average of the iterates (weights
#   summing to 1), while the raw one shrinks toward 0 by the factor $1 - \rho^t$.
#
# Prerequisites: tutorial 01 is helpful but not required; mean and variance of a sum of
# independent Gaussians. Claims illustrated ([proofs/ema.md](../proofs/ema.md)):
# **EMA-lyapunov** (exact moments), **EMA-compose** ($\rho^t$ memory), **EMA-debias**. Where
# the conventions come from: [sources](../proofs/sources.md#model-ema).

# %%
import math
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import refimpl as r
from refimpl import filters, theory
from refimpl.tutorial import Tutorial

tut = Tutorial(
    title="EMA of the weights: lag versus variance, warm-up, debiasing",
    claim="An EMA with decay rho lags a linear trend by rho/(1-rho)(1-rho^t) steps (to a "
          "derived rounding bound) and keeps (1-rho)(1-rho^2t)/(1+rho) of white noise's "
          "variance (chi-square test, false alarm 1e-6); on the noisy quadratic model "
          "refimpl.train's EMA matches the exact moments of refimpl.theory (false alarm "
          "1e-6); w0's weight in a copy-started EMA is the product of the decays used "
          "(bitwise); the debiased zero-start EMA reproduces a constant and equals the "
          "copy-start average with w0's share removed and renormalised.",
    idea=r"An EMA of the weights with decay $\rho$ averages over about $\frac{1}{1 - \rho}$ "
         r"steps: it trails a moving trajectory by $\frac{\rho}{1 - \rho}$ steps and keeps "
         r"only $\frac{1 - \rho}{1 + \rho}$ of white noise's variance, so halving the noise "
         r"costs about doubling the lag. Its start matters as much: a copy of $w_0$ stays in "
         r"the average with weight $\rho^t$ (warm-ups shorten that memory), and a zero start "
         r"must be divided by $1 - \rho^t$.",
    formula=r"\text{lag} = \frac{\rho}{1 - \rho}, \qquad "
            r"\frac{\operatorname{Var}(m_t)}{\operatorname{Var}(x)} \to \frac{1 - \rho}{1 + \rho}"
            r" = \frac{1}{1 + 2\,\text{lag}}",
)
FAST = tut.fast
EPS = np.finfo(np.float64).eps
RHOS = np.array([0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995])

# %% [markdown]
# ## 1. Lag versus variance
#
# ### Lag on a linear trend
#
# Feed the EMA the ramp $x_t = t$ from $m_0 = 0$. The error $e_t = m_t - (t - L)$ with
# $L = \frac{\rho}{1 - \rho}$ obeys $e_t = \rho\, e_{t-1}$ (substitute and use
# $L (1 - \rho) = \rho$), and $e_0 = L$, so exactly
#
# $$
# \text{lag}_t = t - m_t = L\, (1 - \rho^t) \;\to\; L = \frac{\rho}{1 - \rho} \text{ steps}.
# $$
#
# A rounding bound for the check: each update
# $\operatorname{fl}(\operatorname{fl}(\rho m) + \operatorname{fl}((1 - \rho) x))$ rounds
# three times ($1 - \rho$ is exact for $\rho \ge \frac{1}{2}$), each by at most
# $u = \varepsilon/2$ of a number $\le t$ (with $\varepsilon = 2^{-52}$ the machine
# epsilon); earlier errors shrink by $\rho$ each step, so
# $|m_t^{\text{float}} - m_t| \le \frac{3 u t}{1 - \rho}$. Then $t - m_t$ is exact
# (Sterbenz), and evaluating $L (1 - \rho^t)$ adds a few $\varepsilon L$.

# %%
T_LAG = 3000
ramp = np.arange(1, T_LAG + 1, dtype=float)
lag_measured, lag_formula, lag_bound = [], [], []
for rho in RHOS:
    m = filters.ema(ramp, rho)
    L = filters.lag(rho)  # rho / (1 - rho)
    lag_measured.append(T_LAG - m[-1])
    lag_formula.append(L * (1 - rho**T_LAG))
    lag_bound.append(1.5 * EPS * T_LAG / (1 - rho) + 4 * EPS * L)
lag_measured, lag_formula, lag_bound = map(np.array, (lag_measured, lag_formula, lag_bound))
for rho, lm, lf in zip(RHOS, lag_measured, lag_formula):
    print(f"rho = {rho:5}: measured lag {lm:10.6f} steps, formula {lf:10.6f}, "
          f"difference {abs(lm - lf):.1e}")
tut.number("measured lag at rho = 0.99", lag_measured[5], "steps", ".6f")
lag_ok = bool(np.all(np.abs(lag_measured - lag_formula) <= lag_bound))
# teeth: the tempting 1 / (1 - rho) is off by one step, far outside the bound
lag_off_by_one = (1 / (1 - RHOS)) * (1 - RHOS**T_LAG)
lag_wrong_rejected = bool(np.all(np.abs(lag_measured - lag_off_by_one) > lag_bound))

# %% [markdown]
# The filter is not a model of the optimizer's EMA, it *is* the same update. Give `SGD` a
# constant gradient 1 with learning rate $\eta = 0.25$ (so $w_t = -0.25\, t$ exactly) and
# wrap it in `refimpl.EMA` (copy start, $w_0 = 0$): the average after each step equals the
# filter on the weight sequence, bit for bit, and trails the weights by $L (1 - \rho^t)$
# steps.

# %%
opt = r.EMA(r.SGD(lr=0.25), decay=0.9)
w, state = np.zeros(1), opt.init(np.zeros(1))
weights, averages = [], []
for _ in range(200):
    w, state, _ = opt.step(w, state, lambda v: (0.0, np.ones(1)))  # constant gradient 1
    weights.append(w[0])
    averages.append(opt.average(state)[0])
model_ema_is_filter = bool(np.array_equal(averages, filters.ema(np.array(weights), 0.9)))
print("model EMA == filters.ema on the weights, bitwise:", model_ema_is_filter)
print("lag of the model EMA after 200 steps:", (averages[-1] - weights[-1]) / 0.25,
      "steps; L (1 - rho^200) =", filters.lag(0.9) * (1 - 0.9**200))

# %% [markdown]
# ### Variance on white noise
#
# For independent $x_t \sim \mathcal{N}(0, 1)$ the zero-started EMA is
# $m_t = (1 - \rho) \sum_{j=1}^{t} \rho^{t-j} x_j$, a Gaussian with variance
#
# $$
# v_t = \frac{(1 - \rho)^2 (1 - \rho^{2t})}{1 - \rho^2} \;\to\; \frac{1 - \rho}{1 + \rho} .
# $$
#
# We filter $R$ independent noise series and compare the sample variance of $m_t$ with the
# formula. Because $m_t$ is exactly Gaussian with known mean 0, $R s^2 / v_t$ (with
# $s^2$ the mean of $m_t^2$ over the series) is exactly $\chi^2$ with $R$ degrees of
# freedom: the acceptance interval is exact, with total false-alarm probability $10^{-6}$
# split over the values of $\rho$ (Bonferroni). In terms of the lag, the variance ratio is
# $\frac{1}{1 + 2L}$: halving the noise variance costs about doubling the lag.
#
# The price of so small a false-alarm rate is resolution: a formula is only told apart from
# the truth if it is off by more than the printed acceptance interval of the ratio (its
# half-width is printed too, and shrinks like $1 / \sqrt{R}$). A formula a few percent off
# would pass here. The teeth check uses a formula missing the factor $(1 - \rho)^2$, off by
# $\frac{1}{(1 - \rho)^2} \ge 4$.

# %%
R_NOISE, N_NOISE = (800, 600) if FAST else (4000, 1000)
ALPHA = 1e-6
noise = np.random.Generator(np.random.PCG64(2024)).standard_normal((R_NOISE, N_NOISE))
var_ratio, var_formula, var_lo, var_hi = [], [], [], []
q_lo = stats.chi2.ppf(ALPHA / (2 * len(RHOS)), R_NOISE) / R_NOISE
q_hi = stats.chi2.ppf(1 - ALPHA / (2 * len(RHOS)), R_NOISE) / R_NOISE
for rho in RHOS:
    last = np.array([filters.ema(row, rho)[-1] for row in noise])
    v = (1 - rho) ** 2 * (1 - rho ** (2 * N_NOISE)) / (1 - rho**2)
    var_ratio.append(np.mean(last**2))
    var_formula.append(v)
    var_lo.append(q_lo * v)
    var_hi.append(q_hi * v)
var_ratio, var_formula, var_lo, var_hi = map(np.array, (var_ratio, var_formula, var_lo, var_hi))
for rho, s2, v in zip(RHOS, var_ratio, var_formula):
    print(f"rho = {rho:5}: sample variance {s2:.5f}, formula {v:.5f}, ratio {s2 / v:.3f}")
print(f"acceptance interval for the ratio (R = {R_NOISE}): [{q_lo:.3f}, {q_hi:.3f}]")
tut.number(f"half-width of the variance test's acceptance interval (R = {R_NOISE})",
           (q_hi - q_lo) / 2, "", ".3f")
tut.number("variance ratio at rho = 0.9 (sample)", var_ratio[2], "", ".4f")
var_ok = bool(np.all((var_lo <= var_ratio) & (var_ratio <= var_hi)))
# teeth: the variance without the (1 - rho) factor squared, (1 - rho^2t)/(1 - rho^2), is rejected
var_wrong_rejected = bool(np.all(var_ratio < q_lo * var_formula / (1 - RHOS) ** 2))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
grid = np.linspace(0.45, 0.997, 300)
axes[0].plot(1 - grid, grid / (1 - grid), "-", color="C0", label=r"$\dfrac{\rho}{1 - \rho}$")
axes[0].plot(1 - RHOS, lag_measured, "o", color="C1", label=f"measured after {T_LAG} steps")
axes[0].set_xscale("log")
axes[0].set_yscale("log")
axes[0].set_xlabel(r"$1 - \rho$")
axes[0].set_ylabel("lag behind a ramp (steps)")
axes[0].set_title(r"Lag grows like $1 / (1 - \rho)$")
axes[0].legend()
axes[1].plot(1 - grid, (1 - grid) / (1 + grid), "-", color="C0",
             label=r"$\dfrac{1 - \rho}{1 + \rho}$")
axes[1].errorbar(1 - RHOS, var_ratio, yerr=[var_ratio - var_lo, var_hi - var_ratio], fmt="o",
                 color="C1", capsize=3, label=f"sample, $R = {R_NOISE}$\n($10^{{-6}}$ interval)")
axes[1].set_xscale("log")
axes[1].set_yscale("log")
axes[1].set_xlabel(r"$1 - \rho$")
axes[1].set_ylabel(r"$\mathrm{Var}(m_t)\, /\, \mathrm{Var}(x)$")
axes[1].set_title(r"Variance shrinks like $(1 - \rho) / 2$")
axes[1].legend()
fig.tight_layout()
tut.figure(fig, "lag_variance", "The trade-off: measured lag (left) and variance ratio (right, "
           "with the exact 1e-6 acceptance interval) on the closed-form curves.", key=True)

# %% [markdown]
# Both panels have the same horizontal axis, $1 - \rho$ on a log scale: moving left (a
# longer average) raises the lag on the left as fast as it lowers the variance on the
# right. Every measured point sits on its closed-form curve.

# %% [markdown]
# ### The trade-off on the noisy quadratic model
#
# Now the EMA of a real optimizer. On the noisy quadratic model (`NoisyQuadratic`: loss
# $\sum_i \frac{h_i}{2} w_i^2$, gradient noise of variance $c_i / B$ in coordinate $i$ for
# a batch of size $B$) SGD's iterate settles into a noisy stationary cloud around the
# minimum; the EMA averages that noise away but lags behind while the iterate is still
# travelling. Because everything is linear, the mean and covariance of $(w, m)$ follow an
# exact recursion (claim EMA-lyapunov), which `refimpl.theory.moments` evaluates: exact
# expected losses, no sampling. Beside it we run `refimpl.train` with $R$ seeds.

# %%
problem = r.NoisyQuadratic(h=np.array([1.0, 0.05]), batch_size=4)  # c = h
opt_nqm = r.EMA(r.SGD(lr=0.1), decay=0.95)
w0 = np.array([1.0, 1.0])
T_NQM = 600
R_MC = 400 if FAST else 2000
mom = theory.moments(problem, opt_nqm, w0=w0, steps=T_NQM)
P_runs = np.empty((R_MC, T_NQM + 1, 2))
A_runs = np.empty((R_MC, T_NQM + 1, 2))
for seed in range(R_MC):
    rec = r.train(problem, opt_nqm, w0=w0, steps=T_NQM, seed=seed, record_params=True)
    P_runs[seed], A_runs[seed] = rec.params, rec.averages
loss_runs_w = 0.5 * np.sum(problem.h * P_runs**2, axis=2)
loss_runs_avg = 0.5 * np.sum(problem.h * A_runs**2, axis=2)
stat = theory.stationary(problem, opt_nqm)
crossing = int(np.nonzero(mom.loss_avg >= mom.loss_w)[0].max()) + 1
tut.number("stationary expected loss, iterate", stat.loss_w[0], "", ".5g")
tut.number("stationary expected loss, EMA average", stat.loss_avg[0], "", ".5g")
tut.number("EMA average better than the iterate from step", crossing)

# %% [markdown]
# The exact stationary variances have closed forms ([proofs/ema.md](../proofs/ema.md),
# EMA-lyapunov): with $a = 1 - \eta h$ and $\sigma^2 = c / B$, the iterate's variance and
# the EMA's are
#
# $$
# V = \frac{\eta\, \sigma^2}{h\, (2 - \eta h)}, \qquad
# E = V\, \frac{(1 - \rho)(1 + \rho a)}{(1 + \rho)(1 - \rho a)} .
# $$
#
# For $a \to 1$ (a flat direction, where the iterate's own noise is strongly correlated)
# the factor tends to 1: averaging helps least where the iterate already moves slowly. We
# compare the formula with `theory.stationary`.
#
# How close must they be? `theory.stationary` solves the discrete Lyapunov equation
# $S = F S F^\top + Q$ for the $3 \times 3$ map $F$ of the state $(w, b, m)$ (weight,
# momentum buffer, EMA); scipy does this directly, as the $9 \times 9$ linear system
# $K \operatorname{vec}(S) = \operatorname{vec}(Q)$ with $K = I - F \otimes F$. A
# backward-stable solve errs, in norm and relative to $\|S\|$, by at most
# $\operatorname{cond}(K)$ times its backward error; we allow $2 \cdot 9\, \varepsilon$ for
# that backward error (forming $K$ and $Q$ costs a few $\varepsilon$ per entry, the pivoted
# LU of an $n \times n$ system about $n \varepsilon$). A variance is one entry of $S$, so
# its relative error is at most
# $18\, \varepsilon \operatorname{cond}(K)\, \|S\| / \text{entry}$; the closed forms round
# about a dozen times, so we add $16\, \varepsilon$. $F$ is read off `theory.transitions`
# (the map of step 2: step 1 is the same here, plain SGD without momentum).

# %%
h, sig2, lr, rho = problem.h, problem.c / problem.batch_size, 0.1, 0.95
a = 1 - lr * h
V = lr * sig2 / (h * (2 - lr * h))
E = V * (1 - rho) * (1 + rho * a) / ((1 + rho) * (1 - rho * a))
print("variance reduction factor per coordinate:", E / V)
rel_gap = np.maximum(np.abs(stat.var_w[0] - V) / V, np.abs(stat.var_avg[0] - E) / E)
stat_rel_err = rel_gap.max()
tut.number("max relative gap, theory.stationary vs closed form", stat_rel_err, "", ".2g")
A_nqm, _, _ = theory.transitions(problem, opt_nqm, steps=2)
F_nqm = A_nqm[1, :, :3, :3]  # per coordinate, the map of (w, buf, ema); column 4 is the 1
cond_K = np.array([np.linalg.cond(np.eye(9) - np.kron(F, F)) for F in F_nqm])
S_norm = np.linalg.norm(stat.cov[0], axis=(1, 2))  # Frobenius norm of each coordinate's S
entry_min = np.minimum(stat.var_w[0], stat.var_avg[0])
stat_tol = 18 * EPS * cond_K * S_norm / entry_min + 16 * EPS
print("cond(K) per coordinate:", cond_K, " allowed relative gap:", stat_tol)
stat_ok = bool(np.all(rel_gap <= stat_tol))

# %% [markdown]
# Monte Carlo against the exact moments, with teeth. At a few steps $n$, for each
# coordinate with exact mean $\bar m$ and variance $v$, the sample mean of $R$ independent
# runs $x_1, \dots, x_R$ is exactly $\mathcal{N}(\bar m, v / R)$ and
# $\sum_r (x_r - \bar m)^2 / v$ is exactly $\chi^2$ with $R$ degrees of freedom, because the
# state is Gaussian. We accept at a total false-alarm probability of $10^{-6}$ (Bonferroni
# over all the tests). The same test must reject a wrong theory: the iterate's variance
# passed off as the average's.

# %%
CHECK_STEPS = [5, 50, T_NQM]
n_tests = len(CHECK_STEPS) * 2 * 2 * 2  # steps x coordinates x (w, avg) x (mean, var)
z_crit = stats.norm.ppf(1 - ALPHA / (2 * n_tests))
c_lo = stats.chi2.ppf(ALPHA / (2 * n_tests), R_MC)
c_hi = stats.chi2.ppf(1 - ALPHA / (2 * n_tests), R_MC)


def gaussian_test(x, mean, var):
    """Both exact tests for R samples of N(mean, var); True if both accept."""
    z = (x.mean() - mean) / math.sqrt(var / len(x))
    chi = np.sum((x - mean) ** 2) / var
    return abs(z) <= z_crit and c_lo <= chi <= c_hi


mc_ok, worst_z = True, 0.0
for n in CHECK_STEPS:
    for i in range(2):
        for x, m_, v_ in ((P_runs[:, n, i], mom.mean_w[n, i], mom.var_w[n, i]),
                          (A_runs[:, n, i], mom.mean_avg[n, i], mom.var_avg[n, i])):
            mc_ok = mc_ok and gaussian_test(x, m_, v_)
            worst_z = max(worst_z, abs(x.mean() - m_) / math.sqrt(v_ / R_MC))
print(f"largest |z| of the means: {worst_z:.2f} (critical {z_crit:.2f}); "
      f"chi-square interval [{c_lo:.0f}, {c_hi:.0f}]")
wrong_var_rejected = not gaussian_test(A_runs[:, T_NQM, 0], mom.mean_avg[T_NQM, 0],
                                       mom.var_w[T_NQM, 0])

# %%
steps = np.arange(T_NQM + 1)
fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
for runs_loss, exact_loss, name, col in ((loss_runs_w, mom.loss_w, "iterate $w_t$", "C0"),
                                         (loss_runs_avg, mom.loss_avg, "EMA $m_t$", "C1")):
    mean = runs_loss.mean(axis=0)
    se = runs_loss.std(axis=0, ddof=1) / math.sqrt(R_MC)
    ax.fill_between(steps, mean - 3 * se, mean + 3 * se, color=col, alpha=0.3,
                    label=f"{name}: Monte Carlo\nmean ± 3 SE ({R_MC} runs)")
    ax.plot(steps, exact_loss, "-", color=col, lw=1.5, label=f"{name}: exact\n(theory.moments)")
ax.axhline(stat.loss_w[0], color="C0", ls=":", lw=1.5, label="stationary, iterate")
ax.axhline(stat.loss_avg[0], color="C1", ls=":", lw=1.5, label="stationary, average")
ax.axvline(crossing, color="gray", ls="--", lw=1.0, label=f"average better\nfrom step {crossing}")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("step $t$")
ax.set_ylabel("expected loss")
ax.set_title(r"Noisy quadratic, SGD ($\eta = 0.1$) + EMA ($\rho = 0.95$)")
fig.legend(loc="outside right center")
tut.figure(fig, "nqm_loss", "Expected loss of the iterate and of the EMA average: exact curves "
           "inside the Monte Carlo bands. The average lags at first, then settles lower.")

# %% [markdown]
# Follow the two solid curves: the EMA's (orange) starts above the iterate's, because it
# still remembers the start, crosses it at the dashed line and settles on a lower plateau.
# Each exact curve runs inside its Monte Carlo band.

# %% [markdown]
# ## 2. Warm-up: forgetting the start
#
# A copy-started EMA without warm-up keeps $w_0$ in the average with weight $\rho^t$ after
# $t$ updates (claim EMA-compose: $t$ steps of decay $\rho$ are one step of decay
# $\rho^t$). With the common $\rho = 0.999$, after $\frac{1}{1 - \rho} = 1000$ steps $w_0$
# still holds $0.999^{1000} \approx e^{-1}$ of the average, whatever the optimizer has done
# since. The warm-ups in `refimpl.EMA` use a smaller decay $\delta_n$ at the early steps
# $n = 1, 2, \dots$:
#
# - `"timm"`: $\delta_n = \min\left(\rho,\; 1 - (1 + s)^{-2/3}\right)$ with $s = n - 1$ (0 at
#   the first step, so the first update copies $w$);
# - `"constant"`, `"linear"`, `"exp"` (openmixup, the SEMA authors' code), with
#   $q$ = `warmup_ratio` (default 0.9), $T$ = `warmup_steps` and $i = n - 1$ (openmixup's
#   0-based iteration): while $i \le T$ the decay is $q \rho$, a linear ramp from $q \rho$
#   to $\rho$, and $q^{1 - i/T} \rho$; after that $\rho$. Note that $i \le T$ covers $T + 1$
#   steps.
#
# With warm-ups the decay varies, and $w_0$'s weight is the product of the decays used,
# $P_t = \delta_1 \delta_2 \cdots \delta_t$. We *measure* that weight: on
# $f = \frac{1}{2} w^2$ with $\eta = 1$, SGD jumps to $w = 0$ exactly after one step and
# stays there, so the average is $P_t\, w_0$ with $w_0 = 1$.

# %%
RHO = 0.999
N_WARM = 6000
WARMUPS = {"none": {}, "timm": {"warmup": "timm"},
           "constant": {"warmup": "constant", "warmup_steps": 1000},
           "linear": {"warmup": "linear", "warmup_steps": 1000},
           "exp": {"warmup": "exp", "warmup_steps": 1000}}
jump = r.Quadratic(np.array([[1.0]]))
decays, w0_weight = {}, {}
for name, kw in WARMUPS.items():
    ema_opt = r.EMA(r.SGD(lr=1.0), decay=RHO, **kw)
    decays[name] = np.array([ema_opt.decay_at(n) for n in range(1, N_WARM + 1)])
    rec = r.train(jump, ema_opt, w0=np.ones(1), steps=N_WARM, record_params=True)
    w0_weight[name] = rec.averages[:, 0]
weight_is_product = all(np.array_equal(w0_weight[k][1:], np.cumprod(decays[k]))
                        for k in WARMUPS)
print("w0's weight == cumulative product of decay_at(n), bitwise, for every warm-up:",
      weight_is_product)
for name in WARMUPS:
    below = np.nonzero(w0_weight[name] < 0.01)[0]
    print(f"{name:9s}: weight of w0 after 1000 steps {w0_weight[name][1000]:.4g}; "
          f"below 1% from step {below[0]}")
steps_1pct = int(np.nonzero(w0_weight["none"] < 0.01)[0][0])
tut.number("steps until w0's weight < 1%, no warm-up (rho = 0.999)", steps_1pct)
tut.number("w0's weight after 1/(1 - rho) = 1000 steps, no warm-up", w0_weight["none"][1000],
           "", ".4f")
# closed form without warm-up: P_t = rho^t (cumprod rounds t - 1 times: within t eps relative)
tt = np.arange(N_WARM + 1)
rho_power_ok = bool(np.all(np.abs(w0_weight["none"] - RHO**tt) <= (tt + 1) * EPS * RHO**tt))

# %% [markdown]
# A warm-up with a closed form: the constant one, with its $T + 1$ steps of decay $q \rho$,
#
# $$
# P_t = (q \rho)^{\min(t,\, T + 1)}\; \rho^{\max(t - T - 1,\, 0)} .
# $$

# %%
# constant warm-up: decay q rho for the T + 1 steps n = 1..T+1, then rho, so
# P_t = (q rho)^min(t, T+1) rho^max(t-T-1, 0). Rounding: cumprod (t - 1) u, the two powers
# <= 1 ulp each, their product u: (t/2 + 2) eps relative; we allow (t/2 + 3) eps.
Q_RHO, T_W = 0.9 * RHO, 1000  # the kernel's float product ratio * decay


def constant_warmup_weight(warm_steps):
    return Q_RHO ** np.minimum(tt, warm_steps) * RHO ** np.maximum(tt - warm_steps, 0)


const_tol = (tt / 2 + 3) * EPS * constant_warmup_weight(T_W + 1)
constant_ok = bool(np.all(np.abs(w0_weight["constant"] - constant_warmup_weight(T_W + 1))
                          <= const_tol))
# teeth: reading "i <= T" as T warm-up steps (off by one) is rejected by the same bound
constant_off_by_one_rejected = bool(np.any(
    np.abs(w0_weight["constant"] - constant_warmup_weight(T_W)) > const_tol))
print("constant warm-up weight == (q rho)^min(t, T+1) rho^(t-T-1):", constant_ok,
      "; T-step reading rejected:", constant_off_by_one_rejected)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
n_axis = np.arange(1, N_WARM + 1)
styles = {"none": "-", "timm": "-", "constant": "-", "linear": "--", "exp": ":"}
for k, name in enumerate(WARMUPS):
    axes[0].plot(n_axis, 1 - decays[name], styles[name], color=f"C{k}", lw=2, label=name)
    axes[1].plot(tt, w0_weight[name], styles[name], color=f"C{k}", lw=2, label=name)
axes[0].set_xscale("log")
axes[0].set_yscale("log")
axes[0].set_xlabel("optimizer step $n$")
axes[0].set_ylabel(r"$1 - \delta_n$ (share of the new $w$)")
axes[0].set_title(rf"Decay schedules, $\rho = {RHO}$")
axes[0].legend()
axes[1].axvline(1 / (1 - RHO), color="gray", ls=":", lw=1.5, label=r"$1 / (1 - \rho)$ steps")
axes[1].set_xscale("log")
axes[1].set_xlabel("step $t$")
axes[1].set_ylabel(r"weight $P_t$ of $w_0$")
axes[1].set_title(r"How long the average remembers $w_0$")
axes[1].legend()
fig.tight_layout()
tut.figure(fig, "warmup", "Left: the share 1 - decay each warm-up gives the newest weights "
           "(timm's first decay is 0: share 1; openmixup's linear and exp ramps nearly "
           "coincide at ratio 0.9). Right: w0's weight in a copy-started average, the product "
           "of the decays; without warm-up it is 0.999^t.")

# %% [markdown]
# On the right, the blue curve (no warm-up) still stands at about $e^{-1}$ at the dotted
# line, $\frac{1}{1 - \rho}$ steps, and reaches 1% only after several times that (the step
# counts are printed above); every warm-up brings $w_0$'s weight down within a few dozen
# steps. The left panel shows why: each warm-up gives the newest weights a much larger
# share at first.
#
# What that memory does to a real trajectory: deterministic GD on $f = \frac{1}{2} w^2$ with
# $\eta = 0.01$ from $w_0 = 1$ reaches $w \approx 0$ after a few hundred steps; the
# un-warmed average is still dragged toward $w_0$ long after.

# %%
slow = r.Quadratic(np.array([[1.0]]))
T_TRAJ = 3000
traj = {}
for name in ("none", "timm", "linear"):
    rec = r.train(slow, r.EMA(r.SGD(lr=0.01), decay=RHO, **WARMUPS[name]), w0=np.ones(1),
                  steps=T_TRAJ, record_params=True)
    traj[name] = rec.averages[:, 0]
    iterate = rec.params[:, 0]
fig, ax = plt.subplots(figsize=(8, 4.6))
ax.plot(iterate, color="k", lw=2, label="iterate $w_t$")
for k, name in enumerate(("none", "timm", "linear")):
    ax.plot(traj[name], color=f"C{[0, 1, 3][k]}", label=f"EMA average, warm-up {name}")
ax.set_xlabel("step $t$")
ax.set_ylabel("$w$")
ax.set_title(rf"GD on $w^2/2$ ($\eta = 0.01$) and its EMA ($\rho = {RHO}$)")
ax.legend()
tut.figure(fig, "warmup_trajectory", "Without warm-up the average keeps w0's memory for "
           "about 1/(1 - rho) steps and trails far behind the iterate; timm's warm-up "
           "follows the iterate from the start.")
tut.number("average at step 1000, no warm-up", traj["none"][1000], "", ".4f")
tut.number("average at step 1000, timm warm-up", traj["timm"][1000], "", ".2e")

# %% [markdown]
# The black iterate is near 0 by step 500; compare the blue average (no warm-up), still far
# above it at step 1000 (the numbers above), with the orange and red ones (warm-ups), which
# follow the iterate closely.
#
# ## 3. Debiasing a zero-started EMA
#
# optax starts the average at zero. After $n$ updates with decays
# $\delta_1, \dots, \delta_n$ the raw buffer is
#
# $$
# m_n = \sum_{j=1}^{n} (1 - \delta_j)\, Q_j\, w_j , \qquad
# Q_j = \delta_{j+1} \cdots \delta_n ,
# $$
#
# a weighted sum whose weights add up to $1 - P_n$ ($P_n$ the product of all decays), not
# to 1. So the raw buffer is shrunk toward 0 by the factor $1 - P_n$ ($1 - \rho^n$ without
# warm-up). `start="zeros"` reports $\hat m_n = m_n / (1 - P_n)$ instead (claim
# EMA-debias): a weighted average with weights summing to exactly 1, so a constant $c$ is
# reproduced at every step. The proof gives the rounding bound
#
# $$
# |\hat m_n - c| \le \left(n + 3 + \frac{(n - 1)\, P_n}{2 (1 - P_n)}\right) \varepsilon\, |c| .
# $$
#
# Comparing with the copy start, whose weights are the same plus $P_n$ on $w_0$, gives an
# exact identity:
#
# $$
# \text{debiased zero start} = \frac{\text{copy start} - P_n\, w_0}{1 - P_n} .
# $$
#
# Debiasing is forgetting $w_0$ and renormalising.

# %%
C, N_DB, RHO_DB = 3.7, 400, 0.99
const_run = r.train(jump, r.EMA(r.SGD(lr=0.0), decay=RHO_DB, start="zeros"),
                    w0=np.array([C]), steps=N_DB, record_params=True)
debiased = const_run.averages[:, 0]
# the raw (biased) buffer, read from the state of the step API
ema_opt = r.EMA(r.SGD(lr=0.0), decay=RHO_DB, start="zeros")
w, state = np.array([C]), ema_opt.init(np.array([C]))
raw, products = [0.0], [1.0]
for _ in range(N_DB):
    w, state, _ = ema_opt.step(w, state, jump.grad_fn())
    raw.append(state.ema[0])
    products.append(state.decay_product)
raw, products = np.array(raw), np.array(products)
n = np.arange(N_DB + 1)
n1, P1 = n[1:], products[1:]  # after at least one update, P < 1
debias_bound = (n1 + 3 + (n1 - 1) * P1 / (2 * (1 - P1))) * EPS * C
debias_ok = bool(debiased[0] == 0.0 and np.all(np.abs(debiased[1:] - C) <= debias_bound))
tut.number("max |debiased - c| / (eps c)", np.max(np.abs(debiased[1:] - C)) / (EPS * C), "",
           ".3g")
tut.number("raw zero-start buffer after 10 steps / c (= 1 - 0.99^10)", raw[10] / C, "", ".5f")

# %% [markdown]
# The raw buffer against the exact $(1 - \rho^t)\, c$, computed in rationals.

# %%
# raw vs the exact m_n = (1 - rho^n) c (rho the float 0.99, in rationals): an update rounds
# three times (1 - rho is exact, Sterbenz), at most 2 u m_n to first order (u = eps/2);
# earlier errors shrink by rho and m_k <= m_n, so |raw_n - m_n| <= 2 u n m_n = n eps m_n.
rho_q, m_exact, raw_err = Fraction(RHO_DB), [Fraction(0)], [0.0]
for k in range(1, N_DB + 1):
    m_exact.append(rho_q * m_exact[-1] + (1 - rho_q) * Fraction(C))
    raw_err.append(float(abs(Fraction(float(raw[k])) - m_exact[-1])))
m_exact_f = np.array([float(v) for v in m_exact])
raw_ok = bool(np.all(np.array(raw_err) <= n * EPS * m_exact_f))
tut.number("max |raw - (1 - rho^t) c| / (t eps (1 - rho^t) c)",
           np.max(np.array(raw_err[1:]) / (n1 * EPS * m_exact_f[1:])), "", ".3g")

# %% [markdown]
# The identity on a noisy run: the same seed, once with each start.

# %%
nqm1 = r.NoisyQuadratic(h=np.array([1.0]), batch_size=1)
T_ID, W0 = 500, np.array([2.0])
runs_start = {s: r.train(nqm1, r.EMA(r.SGD(lr=0.05), decay=RHO_DB, start=s), w0=W0, steps=T_ID,
                         seed=7, record_params=True) for s in ("copy", "zeros")}
assert np.array_equal(runs_start["copy"].params, runs_start["zeros"].params)  # same iterates
copy_avg, zero_avg = runs_start["copy"].averages[:, 0], runs_start["zeros"].averages[:, 0]
P = np.concatenate([[1.0], np.cumprod(np.full(T_ID, RHO_DB))])  # the train loop's product
k = np.arange(1, T_ID + 1)
rhs = (copy_avg[1:] - P[1:] * W0[0]) / (1 - P[1:])
M = np.max(np.abs(runs_start["copy"].params))
# each raw buffer errs by <= 1.5 n eps M; P w0 and the subtraction add <= (n/2 + 1) eps
# max(M, |w0|); dividing by 1 - P amplifies all of it; the final division adds 2 eps |avg|
id_bound = ((3 * k + 2) * EPS * M + k * EPS * abs(W0[0])) / (1 - P[1:]) + 2 * EPS * M
identity_ok = bool(np.all(np.abs(zero_avg[1:] - rhs) <= id_bound))
# teeth: without removing w0's share, copy / 1 is not the debiased average
identity_wrong_rejected = bool(np.max(np.abs(zero_avg[1:] - copy_avg[1:]) - id_bound) > 0)
tut.number("max |zeros-debiased - (copy - P w0)/(1 - P)|", np.max(np.abs(zero_avg[1:] - rhs)),
           "", ".2g")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
axes[0].plot(n, raw / C, color="C3", label=r"zero start, raw: $1 - \rho^t$")
axes[0].plot(n, debiased / C, color="C2", lw=2, label="zero start, debiased")
axes[0].axhline(1.0, color="k", ls=":", lw=1.5, label="the constant $c$")
axes[0].set_xlabel("step $t$")
axes[0].set_ylabel("average / $c$")
axes[0].set_title(rf"EMA of a constant, $\rho = {RHO_DB}$")
axes[0].legend(loc="lower right")
tt = np.arange(T_ID + 1)
axes[1].plot(tt, runs_start["copy"].params[:, 0], color="0.7", lw=0.8, label="iterate (noisy SGD)")
axes[1].plot(tt, copy_avg, color="C0", label="copy start")
axes[1].plot(tt[1:], zero_avg[1:], color="C2", lw=2, label="zero start, debiased")
axes[1].plot(tt[1:], zero_avg[1:] * (1 - P[1:]), color="C3", label="zero start, raw")
axes[1].set_xlabel("step $t$")
axes[1].set_ylabel("$w$")
axes[1].set_title(rf"Noisy quadratic, $w_0 = {W0[0]:g}$, $\rho = {RHO_DB}$")
axes[1].legend()
fig.tight_layout()
tut.figure(fig, "debias", "Left: the raw zero-start EMA of a constant rises as 1 - rho^t; the "
           "debiased one is the constant from step 1. Right: on a noisy run the copy start "
           "remembers w0, the raw zero start is pulled to 0, the debiased one follows the "
           "recent iterates.")

# %% [markdown]
# Left, the red raw curve rises as $1 - \rho^t$ and is still only at $1 - e^{-1} \approx 63\%$
# of the constant after $\frac{1}{1 - \rho} = 100$ steps, while the green debiased one is
# on it from the first step. Right, the three averages differ most early on: blue
# remembers $w_0$ longest, red is pulled toward 0, green follows the recent iterates; by
# the end they have met.

# %% [markdown]
# ## What we checked
#
# - The lag of `filters.ema` on the ramp $x_t = t$ equals $\frac{\rho}{1 - \rho}(1 - \rho^t)$
#   for each $\rho$ within the derived rounding bound, and the off-by-one formula
#   $\frac{1}{1 - \rho}(1 - \rho^t)$ is rejected by the same bound.
# - `refimpl.EMA` over SGD is `filters.ema` applied to the weight sequence, bit for bit.
# - On white noise the sample variance of the EMA lies in the exact $\chi^2$ interval of
#   $\frac{(1 - \rho)^2 (1 - \rho^{2t})}{1 - \rho^2}$ (total false alarm $10^{-6}$) for every
#   $\rho$, and the variance without the $(1 - \rho)^2$ factor is rejected.
# - On the noisy quadratic model, the means and variances of `refimpl.train`'s iterate and
#   EMA average agree with `theory.moments` at steps 5, 50 and the end (exact Gaussian and
#   $\chi^2$ tests, total false alarm $10^{-6}$); the iterate's variance passed off as the
#   average's is rejected; `theory.stationary` matches the closed-form variances within
#   the derived bound $18\, \varepsilon \operatorname{cond}(K)\, \|S\| / \text{entry} +
#   16\, \varepsilon$; the average's stationary loss is below the iterate's while its early
#   loss is above.
# - $w_0$'s weight in a copy-started average is the cumulative product of `EMA.decay_at`,
#   bit for bit, for every warm-up; without warm-up it is $\rho^t$ to $(t + 1)\, \varepsilon$
#   relative; the timm warm-up drops it to 0 after one step; the constant warm-up gives
#   $(q \rho)^{\min(t,\, T + 1)} \rho^{\max(t - T - 1,\, 0)}$ to
#   $(t/2 + 3)\, \varepsilon$ relative, and the off-by-one reading with $T$ warm-up steps is
#   rejected.
# - The debiased zero-start EMA of a constant is 0 before the first update and the
#   constant within the EMA-debias bound after; the raw buffer is $(1 - \rho^t)\, c$ (exact
#   $\rho^t$) to $t\, \varepsilon$ relative.
# - Debiased zero start $= \frac{\text{copy start} - P_t w_0}{1 - P_t}$ within a derived
#   bound; the plain copy start is rejected.

# %%
tut.check(lag_ok, "EMA lag on a linear trend equals rho/(1-rho) (1 - rho^t) within the "
          "rounding bound, for every rho")
tut.check(lag_wrong_rejected, "the off-by-one lag 1/(1-rho) fails the same bound")
tut.check(model_ema_is_filter, "refimpl.EMA over SGD equals filters.ema of the weights bitwise")
tut.check(var_ok, "white-noise variance of the EMA is in the exact chi-square interval of "
          "(1-rho)^2 (1-rho^2t)/(1-rho^2) (false alarm 1e-6)")
tut.check(var_wrong_rejected, "a variance formula missing the (1-rho)^2 factor is rejected")

# %%
tut.check(bool(mc_ok), "NQM: train()'s iterate and EMA average match theory.moments' means "
          "and variances (exact tests, total false alarm 1e-6)")
tut.check(bool(wrong_var_rejected), "NQM: the same test rejects the iterate's variance as "
          "the average's")
tut.check(stat_ok, "theory.stationary equals the closed-form variances of the iterate and "
          "the EMA, to the derived bound 18 eps cond(K) |S| / entry + 16 eps")
tut.check(bool(stat.loss_avg[0] < stat.loss_w[0] and mom.loss_avg[1] > mom.loss_w[1]
               and 1 < crossing < T_NQM),
          "the EMA average's expected loss is above the iterate's at first and below it "
          "in the stationary regime")

# %%
tut.check(weight_is_product, "w0's weight in a copy-started average is the product of the "
          "decays used, bitwise, for every warm-up")
tut.check(rho_power_ok, "without warm-up w0's weight is rho^t (to (t+1) eps relative)")
tut.check(bool(w0_weight["timm"][1] == 0.0), "timm's warm-up removes w0 after one step")
tut.check(constant_ok, "constant warm-up: w0's weight is (q rho)^min(t, T+1) rho^max(t-T-1, 0), "
          "to (t/2 + 3) eps relative")
tut.check(constant_off_by_one_rejected, "constant warm-up: the T-step reading "
          "(q rho)^min(t, T) rho^max(t-T, 0) fails the same bound")
tut.check(debias_ok, "the debiased zero-start EMA of a constant is 0 before the first update "
          "and the constant (EMA-debias bound) after")
tut.check(raw_ok, "the raw zero-start buffer of a constant c is (1 - rho^t) c, to t eps "
          "relative")
tut.check(identity_ok, "debiased zero start = (copy start - P_t w0) / (1 - P_t) within the "
          "derived bound")
tut.check(identity_wrong_rejected, "the copy-start average itself fails that identity")
