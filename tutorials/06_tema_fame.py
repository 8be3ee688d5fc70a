# %% [markdown]
# # TEMA lag and FAME
#
# FAME (Fast Adaptive Moment Estimation) is Adam whose first moment is a triple
# exponential moving average (TEMA) of the gradient instead of one EMA. A TEMA runs three
# EMAs in a chain, `m1 ← EMA_b1(g)`, `m2 ← EMA_b3(m1)`, `m3 ← EMA_b4(m2)`, and outputs
# `3 m1 - 3 m2 + m3`. The promise is less lag. This tutorial measures what that means.
#
# You will see:
#
# - EMA, DEMA and TEMA (equal decays) on constant, linear and quadratic trends, and the
#   steady-state errors `0`, `L`, `2 L²`, `6 L³` with `L = ρ / (1 - ρ)` (claim
#   `TEMA-poly`);
# - lag and white-noise variance gain as functions of the decay, simulated beside the
#   closed forms `filters.lag` / `filters.tema_lag` (claims `TEMA-lag`, `TEMA-noise`),
#   including where "less lag costs variance" stops being a law;
# - FAME's bias correction: how long the first steps are with the authors' `1 - b1^t`
#   and with exact debiasing (claim `FAME-debias`), at the code defaults and at the
#   paper's configs, where the overshoot becomes an undershoot;
# - FAME against Adam on a small two-spirals network, and the exact reduction of FAME
#   to Adam when `b3 = b4 = 0` (claim `FAME-adam`).
#
# Prerequisites: the EMA `m_t = ρ m_{t-1} + (1 - ρ) x_t` and Adam. Proofs:
# `proofs/tema_fame.md`. Code: `refimpl/filters.py`, `refimpl/optimizers/fame.py`.

# %%
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import refimpl as r
from refimpl import filters
from refimpl.problems import data
from refimpl.tutorial import Tutorial

tut = Tutorial(
    title="TEMA lag and FAME",
    claim="With equal decays TEMA reproduces trends of degree <= 2 with zero steady-state "
          "error while the EMA lags a ramp by rho / (1 - rho) steps, and each filter's "
          "white-noise variance gain equals its closed form; FAME's step on a constant "
          "gradient is R_t lr with 1 - b1^t debiasing (1.75, 1.487, ... at 0.9/0.5/0.5, "
          "below lr from step 2 at 0.9/0.3/0.7) and exactly lr with exact debiasing; and "
          "FAME with b3 = b4 = 0 is Adam bit for bit.",
)
FAST = tut.fast
EPS = np.finfo(np.float64).eps

# %% [markdown]
# ## 1. Filters on polynomial trends
#
# Every filter here is linear and time-invariant: its output is `y_t = Σ_k h_k x_{t-k}`
# with the impulse response `h`. With equal decays `ρ`, `1 - TEMA = (1 - EMA)³` as
# operators, so the TEMA's impulse response has moments `Σ h_k = 1`,
# `Σ k h_k = Σ k² h_k = 0`. That is why, in steady state, it reproduces polynomials of
# degree ≤ 2 exactly. The EMA (`Σ k h_k = L`) lags a ramp by `L = ρ / (1 - ρ)` steps and
# DEMA `2 m1 - m2` is exact up to degree 1 and leaves `2 L²` per unit of `t²`.
#
# We feed `x_t = 1`, `x_t = t` and `x_t = t² / 100` for `t = 1..T`, `ρ = 0.9` (`L = 9`),
# and read the error `x_T - y_T` at `T = 600`, long after the start-up transient.

# %%
RHO, T_POLY = 0.9, 600
L9 = filters.lag(RHO)
t = np.arange(1, T_POLY + 1, dtype=np.float64)
a2 = 0.01
inputs = {"constant 1": (np.ones(T_POLY), 0),
          "ramp t": (t.copy(), 1),
          "quadratic t²/100": (a2 * t**2, 2)}
FILTERS = {"EMA": lambda x: filters.ema(x, RHO),
           "DEMA": lambda x: filters.dema(x, RHO),
           "TEMA": lambda x: filters.tema(x, RHO)}
# steady-state error x_t - y_t (proofs/tema_fame.md, TEMA-poly): zero below the filter's
# order n, n! L^n times the leading coefficient at degree n; the EMA on a quadratic
# a t^2 leaves 2 a L t - a (L + 2 L^2) (it uses the moment sum k^2 h_k = L + 2 L^2)
closed = {("EMA", 0): 0.0, ("EMA", 1): L9, ("EMA", 2): a2 * (2 * L9 * T_POLY - L9 - 2 * L9**2),
          ("DEMA", 0): 0.0, ("DEMA", 1): 0.0, ("DEMA", 2): a2 * 2 * L9**2,
          ("TEMA", 0): 0.0, ("TEMA", 1): 0.0, ("TEMA", 2): 0.0}
outputs = {(f, name): FILTERS[f](x) for f in FILTERS for name, (x, _) in inputs.items()}

# %% [markdown]
# How close must "zero" be? Two effects, both bounded in `proofs/tema_fame.md`:
#
# - rounding: each EMA's error is damped by `ρ` and stays below `3 u max|x| / (1 - ρ)`;
#   the proofs' tests allow `80 eps max|x| / (1 - ρ)` for the whole chain;
# - the start-up transient at `T`: `Σ_{k≥T} |h_k| k^p` for a degree-`p` input, with
#   `|h_k| ≤ 7 C(k + 2, 2) ρ^k`, summed as a geometric tail (`tail` below).

# %%
def tail(b, T, p):
    """Bound on sum_{k >= T} k^p |h_k| with |h_k| <= 7 C(k+2, 2) b^k (any of the filters,
    b its largest decay): the terms shrink at least by q = b ((T + 3) / T)^(p + 2) a step."""
    q = b * ((T + 3) / T) ** (p + 2)
    return 7 * T**p * (T + 1) * (T + 2) / 2 * b**T / (1 - q)


errors, allowed = {}, {}
for (f, name), y in outputs.items():
    x, p = inputs[name]
    lead = a2 if p == 2 else 1.0
    errors[f, p] = x[-1] - y[-1]
    allowed[f, p] = (80 * EPS * np.max(np.abs(x)) / (1 - RHO) + lead * tail(RHO, T_POLY, p)
                     + 8 * EPS * abs(closed[f, p]))
    print(f"{f:4s} on {name:17s}: x_T - y_T = {errors[f, p]: .6e}   closed form "
          f"{closed[f, p]: .6e}   allowed deviation {allowed[f, p]:.1e}")
tut.number("EMA ramp lag (measured)", errors["EMA", 1], "steps", fmt=".12g")
tut.number("TEMA error on t²/100 (measured)", errors["TEMA", 2], fmt=".3e")
tut.number("DEMA error on t²/100 (measured; closed form 2 L² / 100 = 1.62)", errors["DEMA", 2],
           fmt=".12g")

# %% [markdown]
# TEMA's first failing degree is 3: on `x_t = t³ / 10⁴` its steady-state error should be
# `6 L³ / 10⁴` (the third moment `Σ k³ h_k = 6 L³`), with the same allowance.

# %%
a3 = 1e-4
cubic = a3 * t**3
tema_cubic_err = cubic[-1] - filters.tema(cubic, RHO)[-1]
tema_cubic_closed = a3 * 6 * L9**3
tema_cubic_allowed = (80 * EPS * np.max(np.abs(cubic)) / (1 - RHO) + a3 * tail(RHO, T_POLY, 3)
                      + 8 * EPS * tema_cubic_closed)
print(f"TEMA on t³/10⁴: x_T - y_T = {tema_cubic_err:.12g}, closed form 6 L³ / 10⁴ = "
      f"{tema_cubic_closed:.12g}, allowed deviation {tema_cubic_allowed:.1e}")
tut.number("TEMA error on t³/10⁴ (measured)", tema_cubic_err, fmt=".12g")

# %%
T_SHOW = 120
fig, axes = plt.subplots(2, 3, figsize=(12, 6.8), constrained_layout=True)
colors = {"EMA": "tab:red", "DEMA": "tab:green", "TEMA": "tab:blue"}
for col, (name, (x, p)) in enumerate(inputs.items()):
    top, bottom = axes[0, col], axes[1, col]
    top.plot(t[:T_SHOW], x[:T_SHOW], "k", lw=3, alpha=0.35, label="input x")
    for f in FILTERS:
        y = outputs[f, name][:T_SHOW]
        top.plot(t[:T_SHOW], y, color=colors[f], lw=1.3, label=f)
        bottom.plot(t[:T_SHOW], x[:T_SHOW] - y, color=colors[f], lw=1.3, label=f)
    top.set_title(f"input: {name}")
    top.set_ylabel("signal")
    top.set_xlabel("step t")
    bottom.set_ylabel("error x - y")
    bottom.set_xlabel("step t")
    bottom.axhline(0.0, color="gray", lw=0.8)
    top.legend(fontsize=8)
axes[1, 1].axhline(L9, color="tab:red", ls=":", lw=1.5, label="L = 9")
axes[1, 2].axhline(2 * a2 * L9**2, color="tab:green", ls=":", lw=1.5, label="2 L² / 100")
axes[1, 2].set_ylim(-3, 12)
for ax in axes[1]:
    ax.legend(fontsize=8)
fig.suptitle("ρ = 0.9: EMA lags a ramp by L = 9; DEMA is exact on ramps; TEMA also on quadratics")
tut.figure(fig, "polynomial_trends", "Top: inputs (grey) and filter outputs; bottom: the "
           "errors, which settle at 0, L = 9 (EMA on the ramp) and 2 L²/100 (DEMA on the "
           "quadratic); the EMA's error on the quadratic keeps growing (off the bottom "
           "right panel's scale), the TEMA's goes to 0 on all three.")

# %% [markdown]
# ## 2. Lag and noise gain as functions of the decay
#
# *Lag*: the steady-state delay on a ramp, `Σ k h_k`. For FAME's mixed decays `(b1, b3, b4)`
# it is `L(b1) - 2 L(b3) + L(b4)` (`filters.tema_lag`): lags add along a chain. With
# equal decays that is 0; with the code defaults `(b1, 0.5, 0.5)` and the paper's configs
# `(b1, 0.3, 0.7)` it is not. We measure it as `x_T - y_T` on `x_t = t`.
#
# *Noise gain*: for white noise of variance `σ²` the output variance is `σ² Σ h_k²`. The
# closed forms at equal decay `ρ` (`proofs/tema_fame.md`, TEMA-noise):
# `G_EMA = (1 - ρ) / (1 + ρ)`, `G_DEMA = (1 - ρ)(1 + 4ρ + 5ρ²) / (1 + ρ)³`,
# `G_TEMA = (1 - ρ)(1 + 6ρ + 16ρ² + 24ρ³ + 19ρ⁴) / (1 + ρ)⁵`.

# %%
def gain_closed(kind, b):
    if kind == "EMA":
        return (1 - b) / (1 + b)
    if kind == "DEMA":
        return (1 - b) * (1 + 4 * b + 5 * b**2) / (1 + b) ** 3
    return (1 - b) * (1 + 6 * b + 16 * b**2 + 24 * b**3 + 19 * b**4) / (1 + b) ** 5

# %% [markdown]
# The lags first: each filter on a ramp of `T = 800` steps at six decays, against its
# closed form, with the allowance of section 1 (taken at the filter's largest decay).

# %%
RHOS = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
T_LAG = 800
ramp = np.arange(1, T_LAG + 1, dtype=np.float64)
lag_filters = {
    "EMA": (lambda x, b: filters.ema(x, b), lambda b: filters.lag(b), lambda b: b),
    "TEMA (ρ, ρ, ρ)": (lambda x, b: filters.tema(x, b), lambda b: filters.tema_lag(b, b, b),
                       lambda b: b),
    "TEMA (ρ, 0.5, 0.5)": (lambda x, b: filters.tema(x, b, 0.5, 0.5),
                           lambda b: filters.tema_lag(b, 0.5, 0.5), lambda b: max(b, 0.5)),
    "TEMA (ρ, 0.3, 0.7)": (lambda x, b: filters.tema(x, b, 0.3, 0.7),
                           lambda b: filters.tema_lag(b, 0.3, 0.7), lambda b: max(b, 0.7)),
}
lag_meas, lag_form, lag_ok = {}, {}, True
for name, (run, formula, bmax) in lag_filters.items():
    lag_meas[name] = np.array([ramp[-1] - run(ramp, b)[-1] for b in RHOS])
    lag_form[name] = np.array([formula(b) for b in RHOS])
    tol = np.array([80 * EPS * T_LAG / (1 - bmax(b)) + tail(bmax(b), T_LAG, 1)
                    + 8 * EPS * abs(f) for b, f in zip(RHOS, lag_form[name])])
    lag_ok = lag_ok and bool(np.all(np.abs(lag_meas[name] - lag_form[name]) <= tol))
    print(f"{name:19s} measured lags {np.round(lag_meas[name], 4)}")
    print(f"{'':19s} closed form   {np.round(lag_form[name], 4)}")
tut.number("largest |measured - closed-form lag| over all filters and decays",
           max(np.abs(lag_meas[k] - lag_form[k]).max() for k in lag_meas), "steps", fmt=".2e")

# %% [markdown]
# For the noise gain we need many independent outputs. FAME's state holds the chain
# `(m1, m2, m3)` for every coordinate, so `FAME(lr=0)` fed a vector of `R` independent
# standard-normal "gradients" per step is a bank of `R` TEMA chains built from the very
# kernels of `refimpl.filters` (one column is compared with `filters.tema` bit for bit).
# `m1` is the EMA, `2 m1 - m2` the DEMA (with `b3 = ρ`), `3 m1 - 3 m2 + m3` the TEMA.
#
# After `T = 600` steps each output is a Gaussian of variance `G` (the truncated tail of
# `Σ h_k²` is below `1e-12` relative, checked below), and the `R` outputs are independent:
# `R Ĝ / G` with `Ĝ = mean(y²)` is exactly `χ²_R`. We accept when `Ĝ / G` lies in the
# central `χ²_R / R` interval of total false-alarm probability `1e-6`, split over all the
# comparisons (Bonferroni).

# %%
R_MC = 4000 if FAST else 20000
T_MC = 600
rng = np.random.Generator(np.random.PCG64(2024))


def filter_bank(b, steps, R):
    """Final EMA, DEMA, TEMA outputs of R independent chains on white noise, and column 0's
    whole noise sequence (to compare with filters.tema)."""
    opt = r.FAME(lr=0.0, beta1=b, beta3=b, beta4=b)
    w, state = np.zeros(R), opt.init(np.zeros(R))
    first = np.empty(steps)
    for k in range(steps):
        g = rng.standard_normal(R)
        first[k] = g[0]
        w, state = opt.update(w, state, g)
    m1, m2, m3 = state.m1, state.m2, state.m3
    return {"EMA": m1, "DEMA": 2 * m1 - m2, "TEMA": 3 * m1 - 3 * m2 + m3}, first

# %% [markdown]
# One bank per decay; `Ĝ / G` for each filter against the Bonferroni `χ²` interval.

# %%
KINDS = ("EMA", "DEMA", "TEMA")
alpha = 1e-6 / (len(RHOS) * len(KINDS))
lo_q, hi_q = stats.chi2.ppf(alpha / 2, R_MC) / R_MC, stats.chi2.ppf(1 - alpha / 2, R_MC) / R_MC
gain_mc, bank_matches_filters = {k: [] for k in KINDS}, True
for b in RHOS:
    outs, first = filter_bank(b, T_MC, R_MC)
    bank_matches_filters &= bool(filters.tema(first, b)[-1] == outs["TEMA"][0])
    for k in KINDS:
        gain_mc[k].append(np.mean(outs[k] ** 2))
gain_mc = {k: np.array(v) for k, v in gain_mc.items()}
gain_cf = {k: np.array([gain_closed(k, b) for b in RHOS]) for k in KINDS}
ratios = np.array([gain_mc[k] / gain_cf[k] for k in KINDS])
print(f"R = {R_MC}: acceptance interval for G_hat / G = [{lo_q:.4f}, {hi_q:.4f}]")
for k in KINDS:
    print(f"{k:4s} G_hat / G at rho = {RHOS}: {np.round(gain_mc[k] / gain_cf[k], 4)}")
tut.number("Monte Carlo TEMA gain at ρ = 0.9", gain_mc["TEMA"][RHOS == 0.9][0], fmt=".4f")
tut.number("closed-form TEMA gain at ρ = 0.9 (493219/2476099)", gain_closed("TEMA", 0.9),
           fmt=".4f")

# %% [markdown]
# The deterministic version of the same number: `Σ h_k²` of the float filters' impulse
# responses (2000 terms), against the closed forms, and the truncation at `T = 600`.

# %%
imp = np.zeros(2000)
imp[0] = 1.0
gain_imp_err, trunc = 0.0, 0.0
for b in RHOS:
    for k, h in (("EMA", filters.ema(imp, b)), ("DEMA", filters.dema(imp, b)),
                 ("TEMA", filters.tema(imp, b))):
        G = gain_closed(k, b)
        gain_imp_err = max(gain_imp_err, abs(np.sum(h**2) - G) / G)
        trunc = max(trunc, np.sum(h[T_MC:] ** 2) / G)
tut.number("max relative |Σ h_k² - closed form| (impulse responses)", gain_imp_err, fmt=".2e")
tut.number("max relative truncated tail Σ_{k≥600} h_k² / G", trunc, fmt=".2e")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
fine = np.linspace(0.5, 0.95, 91)
ax = axes[0]
for (name, (_, formula, _)), c in zip(lag_filters.items(),
                                      ("tab:red", "tab:blue", "tab:purple", "tab:orange")):
    ax.plot(fine, [formula(b) for b in fine], color=c, lw=1.3, label=f"{name}: closed form")
    ax.plot(RHOS, lag_meas[name], "o", color=c, ms=5, mfc="none")
ax.plot([], [], "ko", mfc="none", label="measured on a ramp")
ax.set_xlabel("decay ρ (= b1)")
ax.set_ylabel("steady-state lag (steps)")
ax.set_title("Lag on a ramp")
ax.legend(fontsize=8)
ax = axes[1]
for k, c in zip(KINDS, ("tab:red", "tab:green", "tab:blue")):
    ax.plot(fine, [gain_closed(k, b) for b in fine], color=c, lw=1.3, label=f"{k}: closed form")
    ax.errorbar(RHOS, gain_mc[k], yerr=[gain_cf[k] * (1 - lo_q), gain_cf[k] * (hi_q - 1)],
                fmt="o", color=c, ms=4, mfc="none", capsize=2)
ax.errorbar([], [], yerr=[], fmt="ko", mfc="none", label="Monte Carlo (bars: acceptance)")
ax.set_yscale("log")
ax.set_xlabel("decay ρ (equal decays)")
ax.set_ylabel("variance gain Σ h_k²")
ax.set_title(f"White-noise variance gain (R = {R_MC})")
ax.legend(fontsize=8)
tut.figure(fig, "lag_and_noise", "Left: lag against the decay; the equal-decay TEMA has "
           "lag 0, the EMA ρ/(1-ρ), FAME's mixed TEMAs lie in between or above. Right: "
           "variance gains; removing the lag multiplies the noise gain (TEMA above EMA at "
           "every ρ), and the simulation sits on the closed forms.")

# %% [markdown]
# Is "less lag costs variance" a law? Along the EMA family and between EMA, DEMA and TEMA
# at one decay, yes. For filters in general, no: the two-level window
# `h_k = (3N - 1) / (2N²)` for `k < N`, `-(N - 1) / (2N²)` for `N ≤ k < 2N` sums to 1, has
# lag 0, and its gain is about `2.5 / N`. We compute its lag and gain for `N = 100`
# beside the EMA at 0.9 and FAME's two mixed TEMAs at `b1 = 0.9` (their gains from their
# impulse responses).

# %%
N = 100
window = np.concatenate([np.full(N, (3 * N - 1) / (2 * N**2)), np.full(N, -(N - 1) / (2 * N**2))])
k_idx = np.arange(2 * N)
trade = {"EMA 0.9": (filters.lag(0.9), np.sum(filters.ema(imp, 0.9) ** 2)),
         "TEMA 0.9": (0.0, np.sum(filters.tema(imp, 0.9) ** 2)),
         "FAME 0.9/0.5/0.5": (filters.tema_lag(0.9, 0.5, 0.5),
                              np.sum(filters.tema(imp, 0.9, 0.5, 0.5) ** 2)),
         "FAME 0.9/0.3/0.7": (filters.tema_lag(0.9, 0.3, 0.7),
                              np.sum(filters.tema(imp, 0.9, 0.3, 0.7) ** 2)),
         f"window N = {N}": (float(np.sum(k_idx * window)), float(np.sum(window**2)))}
for name, (lg, gn) in trade.items():
    print(f"{name:17s}: lag {lg:7.3f} steps, gain {gn:.4f}")
window_sum = float(np.sum(window))
tut.number("window: sum of h", window_sum, fmt=".15g")
tut.number("window: lag", trade[f"window N = {N}"][0], "steps", fmt=".3g")
tut.number("window: gain", trade[f"window N = {N}"][1], fmt=".4f")
tut.number("FAME 0.9/0.3/0.7: lag (Adam's EMA: 9)", trade["FAME 0.9/0.3/0.7"][0], "steps",
           fmt=".4f")

# %%
fig, ax = plt.subplots(figsize=(6.6, 4.3))
b_family = np.linspace(0.3, 0.97, 100)
ax.plot([filters.lag(b) for b in b_family], [gain_closed("EMA", b) for b in b_family],
        color="tab:red", lw=1.3, label="EMA family (ρ from 0.3 to 0.97)")
for (name, (lg, gn)), m in zip(trade.items(), ("o", "s", "^", "v", "*")):
    ax.plot(lg, gn, m, ms=10 if m == "*" else 7, label=name)
ax.set_yscale("log")
ax.set_xlabel("lag on a ramp (steps)")
ax.set_ylabel("white-noise variance gain")
ax.set_title("Lag against noise: not a law for all filters")
ax.legend(fontsize=8)
tut.figure(fig, "lag_vs_noise", "Each filter as a point (lag, gain). Along the EMA curve "
           "less lag means more noise, and TEMA 0.9 buys lag 0 with a larger gain, but "
           "the two-level window (star) has lag 0 and a gain below the EMA at 0.9.")

# %% [markdown]
# ## 3. FAME's bias correction
#
# The chain starts at zero, so early outputs are too small. The authors divide by
# `1 - b1^t` (Adam's correction of one EMA); the chain's real response to a constant 1 is
# `TEMA_t(1)`, different unless `b3 = b4 = 0`. On a constant gradient `g` (with
# `|g| ≫ eps`), step t then moves `w` by `R_t · lr` with
# `R_t = TEMA_t(1) / (1 - b1^t)` (`debias="adam"`), or by exactly `lr`
# (`debias="exact"`). `proofs/tema_fame.md` gives `R_t` in closed form for `b3 = b4`.
#
# We measure `R_t` as `(w_{t-1} - w_t) / lr` from the optimizer itself (`g = 1`,
# `lr = 1`, `eps = 1e-300` so that `|g| + eps = |g|` in floats) and compute the exact
# value in rational arithmetic from the float decays.

# %%
T_DB = 40


def measured_ratios(b3, b4, debias, b1=0.9):
    opt = r.FAME(lr=1.0, beta1=b1, beta3=b3, beta4=b4, eps=1e-300, debias=debias)
    w, state = np.zeros(1), opt.init(np.zeros(1))
    out, slack = [], []
    for _ in range(T_DB):
        w_new, state = opt.update(w, state, np.ones(1))
        out.append(w[0] - w_new[0])
        slack.append(abs(w[0]) + abs(w_new[0]))
        w = w_new
    return np.array(out), np.array(slack)


def exact_ratios(b3, b4, b1=0.9):
    """R_t = TEMA_t(1) / (1 - b1^t) in rationals, for the given (float) decays."""
    b1, b3, b4 = Fraction(b1), Fraction(b3), Fraction(b4)
    r1 = r2 = r3 = Fraction(0)
    out = []
    for k in range(1, T_DB + 1):
        r1 = b1 * r1 + (1 - b1)
        r2 = b3 * r2 + (1 - b3) * r1
        r3 = b4 * r3 + (1 - b4) * r2
        out.append((3 * r1 - 3 * r2 + r3) / (1 - b1**k))
    return out

# %% [markdown]
# The closed form for `b3 = b4 = β` from the proofs, then all three at both configs
# (and the paper's `R_4` with the decimal decays, as the proofs state it).

# %%
def closed_form_ratio(k, alpha=0.9, beta=0.5):
    """proofs/tema_fame.md FAME-debias item 2 (b3 = b4 = beta)."""
    A = (1 - beta) * alpha / (alpha - beta)
    return 1 + (A - 1) * ((2 - A) * (alpha**k - beta**k)
                          + (1 - beta) * k * beta**k) / (1 - alpha**k)


CONFIGS = {"defaults 0.9/0.5/0.5": (0.5, 0.5), "paper 0.9/0.3/0.7": (0.3, 0.7)}
R_meas, R_exact, R_slack, R_exactdebias = {}, {}, {}, {}
for name, (b3, b4) in CONFIGS.items():
    R_meas[name], R_slack[name] = measured_ratios(b3, b4, "adam")
    R_exact[name] = np.array([float(v) for v in exact_ratios(b3, b4)])
    R_exactdebias[name], _ = measured_ratios(b3, b4, "exact")
    print(f"{name}: R_1..R_6 (measured) = {np.round(R_meas[name][:6], 4)}")
d_name, p_name = "defaults 0.9/0.5/0.5", "paper 0.9/0.3/0.7"
R_closed = np.array([closed_form_ratio(k) for k in range(1, T_DB + 1)])
# the proofs' rational value uses the decimal decays 9/10, 3/10, 7/10 exactly
paper_R4 = exact_ratios(Fraction(3, 10), Fraction(7, 10), b1=Fraction(9, 10))[3]
print("paper configs, decimal decays: R_4 =", paper_R4)
t_min = int(np.argmin(R_meas[p_name])) + 1
tut.number("defaults: R_1", R_meas[d_name][0], fmt=".4f")
tut.number("defaults: R_2", R_meas[d_name][1], fmt=".4f")
tut.number("paper configs: R_1", R_meas[p_name][0], fmt=".4f")
tut.number("paper configs: shortest step (ratio)", R_meas[p_name].min(), fmt=".4f")
tut.number("paper configs: at step", t_min)

# %% [markdown]
# The measured ratios, the rational recursion and (for `b3 = b4`) the closed form must
# agree to rounding. Allowance: the chain's response carries at most
# `80 eps / (1 - b1)` relative rounding (as in section 1), and the difference
# `w_{t-1} - w_t` adds `u (|w_{t-1}| + |w_t|)`.

# %%
agree = {}
for name in CONFIGS:
    tol = 80 * EPS / (1 - 0.9) * R_exact[name] + EPS * R_slack[name]
    agree[name] = bool(np.all(np.abs(R_meas[name] - R_exact[name]) <= tol))
    exact_dev = np.abs(R_exactdebias[name] - 1.0).max()
    print(f"{name}: max |measured - exact| = {np.abs(R_meas[name] - R_exact[name]).max():.2e}, "
          f"exact debiasing: max |step / lr - 1| = {exact_dev:.2e}")
closed_dev = float(np.abs(R_closed - R_exact[d_name]).max())
tut.number("defaults: max |closed form - rational recursion|", closed_dev, fmt=".2e")

fig, ax = plt.subplots(figsize=(6.6, 4.3))
steps_db = np.arange(1, T_DB + 1)
ax.plot(steps_db, R_meas[d_name], "o-", color="tab:blue", ms=4, label="1 - b1^t, 0.9/0.5/0.5")
ax.plot(steps_db, R_closed, "k:", lw=1.5, label="closed form (b3 = b4)")
ax.plot(steps_db, R_meas[p_name], "s-", color="tab:orange", ms=4, label="1 - b1^t, 0.9/0.3/0.7")
for name in CONFIGS:
    ax.plot(steps_db, R_exactdebias[name], "-", color="tab:green", lw=3, alpha=0.5,
            label="exact debiasing (both configs)" if name == d_name else None)
ax.axhline(1.0, color="gray", lw=0.8)
ax.set_xlabel("step t")
ax.set_ylabel("step length / lr on a constant gradient")
ax.set_title("FAME's first steps: overshoot, undershoot, or exactly lr")
ax.legend(fontsize=8)
tut.figure(fig, "debias", "The ratio R_t of FAME's step to lr on a constant gradient: with "
           "1 - b1^t it overshoots at the code defaults (blue) and undershoots from step 2 "
           "at the paper's configs (orange); exact debiasing gives steps of exactly lr.")

# %% [markdown]
# ## 4. FAME against Adam on a small network
#
# A 2-16-16-2 tanh network with cross-entropy on 200 two-spirals points (the README's
# "first look" setting), mini-batches of 20, the same learning rate 0.01 for Adam,
# FAME official (`b1, b3, b4 = 0.9, 0.5, 0.5`, `1 - b1^t`: the authors' code) and FAME
# full (`variant="full"`), three initialisation/shuffle seeds. "Full" is the version in
# the authors' talk slides: a TEMA on BOTH moments, the gradient chain with decays
# `(b1, b3, b5)` and the squared-gradient chain with `(b2, b4, b5)`, five decays in all.
# The slides do not say how it is bias-corrected or where `eps` goes, so refimpl's
# version is a reconstruction (exact debiasing of both chains, documented in
# `refimpl/optimizers/fame.py`). This is one small problem: it measures these runs, not
# a general ranking.

# %%
spirals = data.two_spirals(200, seed=0)
net = r.MLP((2, 16, 16, 2), activation="tanh", loss="xent")
mlp = r.MLPProblem(net, spirals.X, spirals.Y, batch_size=20)
EPOCHS, LR, SEEDS = (40 if FAST else 150), 0.01, (0, 1, 2)
OPTS = {"Adam": r.Adam(lr=LR), "FAME official": r.FAME(lr=LR),
        "FAME full": r.FAME(lr=LR, variant="full")}
curves, final = {}, {}
for name, opt in OPTS.items():
    for seed in SEEDS:
        rec = r.train(mlp, opt, w0=net.init(seed=seed), epochs=EPOCHS, seed=seed)
        curves[name, seed] = rec.losses.reshape(EPOCHS, mlp.steps_per_epoch).mean(axis=1)
        final[name, seed] = (mlp.loss(rec.w), mlp.accuracy(rec.w))
print(f"after {EPOCHS} epochs: full-data loss / accuracy")
for name in OPTS:
    print(f"{name:14s}: " + "   ".join(f"seed {s}: {final[name, s][0]:.4f} / "
                                         f"{final[name, s][1]:.3f}" for s in SEEDS))
rankings = {s: tuple(sorted(OPTS, key=lambda n: final[n, s][0])) for s in SEEDS}
same_ranking = len(set(rankings.values())) == 1
for s in SEEDS:
    print(f"seed {s}: lowest to highest final loss: {' < '.join(rankings[s])}")
tut.number("same loss ranking on every seed", bool(same_ranking))

# %%
fig, ax = plt.subplots(figsize=(6.8, 4.3))
for name, c in zip(OPTS, ("tab:red", "tab:blue", "tab:green")):
    for seed in SEEDS:
        ax.plot(np.arange(1, EPOCHS + 1), curves[name, seed], color=c, lw=1.2,
                alpha=1.0 if seed == 0 else 0.35, label=name if seed == 0 else None)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("mean mini-batch training loss")
ax.set_title(f"Two spirals, 2-16-16-2 tanh, lr = {LR}, seeds {SEEDS}")
ax.legend(fontsize=8)
verdict = ("the ranking of the final losses is the same on all three seeds" if same_ranking
           else "which one ends lowest depends on the seed")
tut.figure(fig, "mlp_training", "Training loss per epoch for Adam and the two FAME "
           f"variants at the same learning rate; solid: seed 0, faint: seeds 1 and 2; "
           f"{verdict} (printed above).")

# %% [markdown]
# The reduction `FAME-adam`: with `b3 = b4 = 0` the chain copies `m1` into `m2` and `m3`,
# and `(3 m1 - 3 m1) + m1 = m1`; every other operation is written in Adam's order. So
# the whole MLP run must match Adam bit for bit (the one documented exception, the sign
# of an exact zero, needs `b1 = 0`). Teeth: FAME at its defaults (different mathematics)
# must NOT match bitwise. We also print how far `b3 = b4 = 0` with exact debiasing lands:
# the same mathematics with a different rounding, so it may or may not match bitwise,
# and we assert neither.

# %%
T_RED = 30 * mlp.steps_per_epoch
w0 = net.init(seed=0)


def params(opt):
    return r.train(mlp, opt, w0=w0, steps=T_RED, seed=0, record_params=True).params


adam_params = params(r.Adam(lr=LR))
reduced = params(r.FAME(lr=LR, beta3=0.0, beta4=0.0))
reduced_exact = params(r.FAME(lr=LR, beta3=0.0, beta4=0.0, debias="exact"))
fame_default = params(r.FAME(lr=LR))


def same_bits(a, b):
    return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


reduction_bitwise = same_bits(adam_params, reduced)
exact_close = float(np.abs(reduced_exact - adam_params).max())
tut.number("FAME(b3 = b4 = 0) vs Adam: identical bits over all iterates", reduction_bitwise)
tut.number("FAME(b3 = b4 = 0, exact debias) vs Adam: max |difference|", exact_close, fmt=".2e")
tut.number("FAME defaults vs Adam: max |difference|",
           float(np.abs(fame_default - adam_params).max()), fmt=".3g")

# %% [markdown]
# ## What we checked
#
# - `TEMA-poly`: at `ρ = 0.9`, TEMA's steady-state error on constant, ramp and quadratic
#   input, DEMA's on constant and ramp, and the EMA's on a constant are 0 (the same check
#   rejects DEMA on the quadratic and EMA on the ramp); EMA's ramp lag
#   is `L = ρ/(1-ρ) = 9`, DEMA's quadratic error `2 L² a`, the EMA's quadratic error
#   `2 a L T - a (L + 2 L²)`, and TEMA's error on the cubic `a₃ t³` is `6 L³ a₃`, each
#   within the rounding plus transient allowance.
# - `TEMA-lag`: the measured ramp lags of EMA, equal-decay TEMA and FAME's two mixed
#   TEMAs equal `filters.lag` / `filters.tema_lag` at every decay (same allowance); the
#   paper's configs lag more than Adam's EMA (9 steps), the defaults less.
# - `TEMA-noise`: `Σ h_k²` of the float impulse responses equals the closed forms to
#   `1e-12` relative; the Monte Carlo gains lie in their `χ²` acceptance intervals
#   (false-alarm probability `1e-6` in total); at every decay the Monte Carlo gains are
#   ordered `Ĝ_EMA < Ĝ_DEMA < Ĝ_TEMA` and each rejects the other two filters' closed
#   forms (so the acceptance test can tell the three formulas apart); and the zero-lag
#   window has a gain below EMA(0.9)'s.
# - `FAME-debias`: the optimizer's step ratios equal the exact rational `R_t` at both
#   configs (and the closed form at the defaults); the defaults' first five are
#   1.75, 1.487, 1.330, 1.234, 1.173; at the paper's configs `R_1 > 1`, `R_t < 1` for
#   `t = 2..40`, the shortest is `R_4 = 27003/34390`; exact debiasing moves by `lr`
#   (rounding allowance as above), while `1 - b1^t` is off by more than 10% somewhere.
# - `FAME-adam`: FAME with `b3 = b4 = 0` reproduces Adam's MLP run bit for bit; FAME at
#   its defaults does not.
# - The FAME filter bank's column equals `filters.tema` bit for bit.

# %%
for (f, p), expected in closed.items():
    tut.check(bool(abs(errors[f, p] - expected) <= allowed[f, p]),
              f"TEMA-poly: {f} on degree {p}: steady-state error = closed form "
              f"{expected:.6g} within {allowed[f, p]:.1e}")
tut.check(bool(abs(errors["DEMA", 2]) > 1e6 * allowed["TEMA", 2]
               and abs(errors["EMA", 1]) > 1e6 * allowed["TEMA", 1]),
          "teeth: the zero-error check rejects DEMA on the quadratic and EMA on the ramp "
          "(by a factor above 1e6)")
tut.check(bool(abs(tema_cubic_err - tema_cubic_closed) <= tema_cubic_allowed
               and tema_cubic_closed > 1e6 * tema_cubic_allowed),
          "TEMA-poly: TEMA on a cubic a3 t^3 leaves 6 L^3 a3, a million allowances from 0")
tut.check(lag_ok, "TEMA-lag: ramp lags equal filters.lag / filters.tema_lag at every decay")
tut.check(bool(trade["FAME 0.9/0.3/0.7"][0] > filters.lag(0.9) > trade["FAME 0.9/0.5/0.5"][0]),
          "TEMA-lag: the paper's configs lag more than Adam's EMA (9 steps), the defaults less")

# %%
tut.check(bool(gain_imp_err < 1e-12 and trunc < 1e-12),
          "TEMA-noise: sum h_k^2 of the float filters = closed forms to 1e-12; tail at 600 < 1e-12")
tut.check(bool(np.all((ratios >= lo_q) & (ratios <= hi_q))),
          "TEMA-noise: every Monte Carlo gain in its chi-square interval (total false alarm 1e-6)")
cross = [not (lo_q <= gain_mc[k][i] / gain_cf[j][i] <= hi_q)
         for i in range(len(RHOS)) for k in KINDS for j in KINDS if j != k]
ordered = np.all(gain_mc["EMA"] < gain_mc["DEMA"]) and np.all(gain_mc["DEMA"] < gain_mc["TEMA"])
tut.check(bool(ordered and all(cross)),
          "TEMA-noise: at every decay the measured gains are ordered EMA < DEMA < TEMA, and each "
          "rejects the other two filters' closed forms")
window_lag, window_gain = trade[f"window N = {N}"]
tut.check(bool(abs(window_sum - 1) < 1e-12 and abs(window_lag) < 1e-9
               and window_gain < trade["EMA 0.9"][1]),
          "not a law: a lag-0 window with gain below EMA(0.9)'s (which lags 9 steps)")
tut.check(bank_matches_filters, "FAME(lr=0)'s chain equals filters.tema bit for bit")

# %%
tut.check(agree[d_name] and agree[p_name],
          "FAME-debias: the optimizer's step ratios equal the exact R_t (both configs, t <= 40)")
tut.check(bool(closed_dev <= 1e-13),
          "FAME-debias: the closed form of R_t equals the recursion at 0.9/0.5/0.5 (to 1e-13)")
tut.check(bool(np.all(np.abs(R_meas[d_name][:5] - np.array([1.75, 1.487, 1.330, 1.234, 1.173]))
                      <= 5e-4)),
          "FAME-debias: defaults' R_1..R_5 = 1.75, 1.487, 1.330, 1.234, 1.173 (3 decimals)")
tut.check(bool(R_meas[p_name][0] > 1 and np.all(R_meas[p_name][1:] < 1)
               and t_min == 4 and paper_R4 == Fraction(27003, 34390)
               and abs(R_meas[p_name][3] - 27003 / 34390) <= 1e-12),
          "FAME-debias: paper configs overshoot at step 1 only; shortest R_4 = 27003/34390")
tut.check(bool(all(np.all(np.abs(R_exactdebias[n] - 1.0)
                          <= 80 * EPS / (1 - 0.9) + EPS * R_slack[n]) for n in CONFIGS)),
          "FAME-debias: exact debiasing moves by exactly lr (to rounding) at every step, "
          "both configs")
tut.check(bool(all(np.abs(R_meas[n] - 1.0).max() > 0.1 for n in CONFIGS)),
          "teeth: with 1 - b1^t some step is off lr by more than 10% at both configs")

# %%
tut.check(reduction_bitwise,
          "FAME-adam: FAME(b3 = b4 = 0) reproduces Adam's MLP run bit for bit")
tut.check(bool(not same_bits(adam_params, fame_default)),
          "teeth: FAME at its defaults is not bitwise Adam")
