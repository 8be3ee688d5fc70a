# %% [markdown]
# # TEMA lag and FAME
#
# FAME (Fast Adaptive Moment Estimation) is Adam whose first moment is a triple
# exponential moving average (TEMA) of the gradient instead of one EMA. A TEMA runs three
# EMAs in a chain, each fed by the one before,
#
# $$
# m_1 \leftarrow \operatorname{EMA}_{b_1}(g), \qquad
# m_2 \leftarrow \operatorname{EMA}_{b_3}(m_1), \qquad
# m_3 \leftarrow \operatorname{EMA}_{b_4}(m_2),
# $$
#
# and outputs $3 m_1 - 3 m_2 + m_3$. The promise is less lag. This tutorial measures what
# that means.
#
# You will learn to
#
# - predict the steady-state error of EMA, DEMA and TEMA (equal decays) on constant,
#   linear and quadratic trends: $0$, $L$, $2 L^2$, $6 L^3$ with
#   $L = \frac{\rho}{1 - \rho}$ (claim **TEMA-poly**);
# - compute the lag of FAME's mixed-decay TEMA, $L(b_1) - 2 L(b_3) + L(b_4)$, and its
#   white-noise variance gain, and check both against simulation (claims **TEMA-lag**,
#   **TEMA-noise**), including where "less lag costs variance" stops being a law;
# - tell how long FAME's first steps are with the authors' bias correction
#   $1 - b_1^t$ and with exact debiasing (claim **FAME-debias**), at the code defaults
#   and at the paper's configs, where the overshoot becomes an undershoot;
# - compare FAME with Adam on a small two-spirals network, and see FAME reduce to Adam
#   exactly when $b_3 = b_4 = 0$ (claim **FAME-adam**).
#
# Notation: $\rho$ (or $b_1, b_3, b_4$) are EMA decays, $L(b) = \frac{b}{1 - b}$ is an
# EMA's lag in steps, $h_k$ a filter's impulse response, $\eta$ the learning rate (`lr`).
#
# Prerequisites: the EMA $m_t = \rho\, m_{t-1} + (1 - \rho)\, x_t$ and Adam. Proofs:
# [proofs/tema_fame.md](../proofs/tema_fame.md); sources:
# [sources](../proofs/sources.md#fame). Code: `refimpl/filters.py`,
# `refimpl/optimizers/fame.py`.

# %%
from fractions import Fraction

import math

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
    idea=r"Lags add along a chain of EMAs, so TEMA's combination $3 m_1 - 3 m_2 + m_3$ "
         r"cancels them: with equal decays it follows constant, linear and quadratic trends "
         r"with no steady-state error, where one EMA lags a ramp by "
         r"$L = \frac{\rho}{1 - \rho}$ steps. The price is noise: at $\rho = 0.9$ TEMA "
         r"passes nearly four times the EMA's white-noise variance. FAME's mixed decays keep "
         r"only part of the lag reduction (the paper's configs lag *more* than Adam), and "
         r"its bias correction $1 - b_1^t$ makes the first steps too long or too short.",
    formula=r"\text{lag}(b_1, b_3, b_4) = L(b_1) - 2 L(b_3) + L(b_4), \qquad "
            r"L(b) = \frac{b}{1 - b}",
)
FAST = tut.fast
EPS = np.finfo(np.float64).eps

# %% [markdown]
# ## 1. Filters on polynomial trends
#
# Every filter here is linear and time-invariant: its output is
#
# $$
# y_t = \sum_{k \ge 0} h_k\, x_{t-k}
# $$
#
# with the impulse response $h$. With equal decays $\rho$,
# $1 - \mathrm{TEMA} = (1 - \mathrm{EMA})^3$ as operators, so the TEMA's impulse response
# has moments $\sum_k h_k = 1$ and $\sum_k k\, h_k = \sum_k k^2 h_k = 0$. That is why, in
# steady state, it reproduces polynomials of degree $\le 2$ exactly. The EMA
# ($\sum_k k\, h_k = L$) lags a ramp by $L = \frac{\rho}{1 - \rho}$ steps, and DEMA
# $2 m_1 - m_2$ is exact up to degree 1 and leaves $2 L^2$ per unit of $t^2$
# ([TEMA-poly](../proofs/tema_fame.md#claim-tema-poly)).
#
# We feed $x_t = 1$, $x_t = t$ and $x_t = t^2 / 100$ for $t = 1, \dots, T$, with
# $\rho = 0.9$ ($L = 9$), and read the error $x_T - y_T$ at $T = 600$, long after the
# start-up transient.

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
# How close must "zero" be? Two effects, both bounded in
# [proofs/tema_fame.md](../proofs/tema_fame.md#claim-tema-poly):
#
# - rounding: each EMA's error is damped by $\rho$ and stays below
#   $3 u \max|x| / (1 - \rho)$ with $u = \varepsilon / 2$ ($\varepsilon = 2^{-52}$); the
#   proofs' tests allow $80\, \varepsilon \max|x| / (1 - \rho)$ for the whole chain;
# - the start-up transient at $T$: $\sum_{k \ge T} |h_k|\, k^p$ for a degree-$p$ input,
#   with $|h_k| \le 7 \binom{k + 2}{2} \rho^k$, summed as a geometric tail (`tail`
#   below).

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
# TEMA's first failing degree is 3: on $x_t = t^3 / 10^4$ its steady-state error should
# be $6 L^3 / 10^4$ (the third moment is $\sum_k k^3 h_k = 6 L^3$), with the same
# allowance.

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
fig, axes = plt.subplots(2, 3, figsize=(13, 7.6), constrained_layout=True)
colors = {"EMA": "tab:red", "DEMA": "tab:green", "TEMA": "tab:blue"}
titles = {"constant 1": r"input $x_t = 1$", "ramp t": r"input $x_t = t$",
          "quadratic t²/100": r"input $x_t = t^2 / 100$"}
for col, (name, (x, p)) in enumerate(inputs.items()):
    top, bottom = axes[0, col], axes[1, col]
    top.plot(t[:T_SHOW], x[:T_SHOW], "k", lw=4, alpha=0.35,
             label=r"input $x$" if col == 0 else None)   # one legend, in the first panel
    for f in FILTERS:
        y = outputs[f, name][:T_SHOW]
        top.plot(t[:T_SHOW], y, color=colors[f], lw=1.6, label=f if col == 0 else None)
        bottom.plot(t[:T_SHOW], x[:T_SHOW] - y, color=colors[f], lw=1.6)
    top.set_title(titles[name])
    top.set_ylabel("signal")
    top.set_xlabel(r"step $t$")
    bottom.set_ylabel(r"error $x_t - y_t$")
    bottom.set_xlabel(r"step $t$")
    bottom.axhline(0.0, color="gray", lw=0.8)
axes[1, 1].axhline(L9, color="tab:red", ls=":", lw=2, label=r"$L = 9$")
axes[1, 2].axhline(2 * a2 * L9**2, color="tab:green", ls=":", lw=2, label=r"$2 L^2 / 100$")
axes[1, 2].set_ylim(-3, 12)
axes[0, 0].set_ylim(0, 1.5)                   # room for the legend above the signals
axes[0, 0].legend(loc="upper right", ncol=2)
for ax in axes[1, 1:]:
    ax.legend(loc="center right")
fig.suptitle(r"$\rho = 0.9$: EMA lags a ramp by $L = 9$; DEMA is exact on ramps; "
             r"TEMA also on quadratics")
tut.figure(fig, "polynomial_trends", "Top: inputs (grey) and filter outputs; bottom: the "
           "errors, which settle at 0, L = 9 (EMA on the ramp) and 2 L²/100 (DEMA on the "
           "quadratic); the EMA's error on the quadratic keeps growing (off the bottom "
           "right panel's scale), the TEMA's goes to 0 on all three.")

# %% [markdown]
# Read the bottom row from left to right: the blue TEMA error returns to 0 in all three
# panels after a start-up of a few dozen steps, while the red EMA error settles at
# $L = 9$ on the ramp and the green DEMA error at $2 L^2 / 100 = 1.62$ on the quadratic
# (the dotted lines). The price of the faster filters is visible at the start: their
# transients overshoot more.

# %% [markdown]
# ## 2. Lag and noise gain as functions of the decay
#
# *Lag*: the steady-state delay on a ramp, $\sum_k k\, h_k$. The chain's $m_1$ lags by
# $L(b_1)$, $m_2$ by $L(b_1) + L(b_3)$ and $m_3$ by $L(b_1) + L(b_3) + L(b_4)$ (lags add
# along a chain), and the weights $3, -3, 1$ sum to 1, so FAME's mixed decays
# $(b_1, b_3, b_4)$ lag by
#
# $$
# 3 L(b_1) - 3 \bigl(L(b_1) + L(b_3)\bigr) + \bigl(L(b_1) + L(b_3) + L(b_4)\bigr)
# = L(b_1) - 2 L(b_3) + L(b_4)
# $$
#
# (`filters.tema_lag`, [TEMA-lag](../proofs/tema_fame.md#claim-tema-lag)). With equal
# decays that is 0; with the code defaults $(b_1, 0.5, 0.5)$ and the paper's configs
# $(b_1, 0.3, 0.7)$ it is not. We measure it as $x_T - y_T$ on $x_t = t$.
#
# *Noise gain*: for white noise of variance $\sigma^2$ the output variance is
# $\sigma^2 \sum_k h_k^2$. The closed forms at equal decay $\rho$
# ([TEMA-noise](../proofs/tema_fame.md#claim-tema-noise)):
#
# $$
# \begin{aligned}
# G_{\text{EMA}} &= \frac{1 - \rho}{1 + \rho}, \qquad
# G_{\text{DEMA}} = \frac{(1 - \rho)(1 + 4\rho + 5\rho^2)}{(1 + \rho)^3}, \\
# G_{\text{TEMA}} &= \frac{(1 - \rho)(1 + 6\rho + 16\rho^2 + 24\rho^3 + 19\rho^4)}{(1 + \rho)^5}.
# \end{aligned}
# $$

# %%
def gain_closed(kind, b):
    if kind == "EMA":
        return (1 - b) / (1 + b)
    if kind == "DEMA":
        return (1 - b) * (1 + 4 * b + 5 * b**2) / (1 + b) ** 3
    return (1 - b) * (1 + 6 * b + 16 * b**2 + 24 * b**3 + 19 * b**4) / (1 + b) ** 5

# %% [markdown]
# The lags first: each filter on a ramp of $T = 800$ steps at six decays, against its
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
# **Less lag is not better tracking.** The lag is signed: a negative lag is a *lead*, the
# filter over-extrapolates the ramp, and that is an error too. FAME's TEMA follows a ramp
# more closely than Adam's EMA (smaller $|\text{steady-state error}|$) iff
# $|L_1 - 2 L_3 + L_4| < L_1$, that is
#
# $$
# 0 < 2 L(b_3) - L(b_4) < 2 L(b_1) ,
# $$
#
# while "lags less" only needs the left inequality. With $(b_1, b_3, b_4) = (0.5, 0.9, 0)$
# ($L = 1, 9, 0$) the TEMA lags $1 - 18 + 0 = -17$ steps: less than the EMA's 1, yet 17
# times further from the ramp (claim **TEMA-lag**).

# %%
lead = ramp[-1] - filters.tema(ramp, 0.5, 0.9, 0.0)[-1]
ema_lag_05 = ramp[-1] - filters.ema(ramp, 0.5)[-1]
tut.number("TEMA (0.5, 0.9, 0) ramp lag (measured; negative = lead)", lead, "steps", fmt=".10g")
tut.number("EMA 0.5 ramp lag (measured)", ema_lag_05, "steps", fmt=".10g")

# %% [markdown]
# For the noise gain we need many independent outputs. FAME's state holds the chain
# $(m_1, m_2, m_3)$ for every coordinate, so `FAME(lr=0)` fed a vector of $R$ independent
# standard-normal "gradients" per step is a bank of $R$ TEMA chains built from the very
# kernels of `refimpl.filters` (one column is compared with `filters.tema` bit for bit).
# $m_1$ is the EMA, $2 m_1 - m_2$ the DEMA (with $b_3 = \rho$), $3 m_1 - 3 m_2 + m_3$ the
# TEMA.
#
# After $T = 600$ steps each output is a Gaussian of variance $G$ (the truncated tail of
# $\sum_k h_k^2$ is below $10^{-12}$ relative, checked below), and the $R$ outputs are
# independent: $R\, \hat G / G$ with $\hat G = \operatorname{mean}(y^2)$ is exactly
# $\chi^2_R$. We accept when $\hat G / G$ lies in the central $\chi^2_R / R$ interval of
# total false-alarm probability $10^{-6}$, split over all the comparisons (Bonferroni).

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
# One bank per decay; $\hat G / G$ for each filter against the Bonferroni $\chi^2$
# interval.

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
# The deterministic version of the same number: $\sum_k h_k^2$ of the float filters'
# impulse responses (2000 terms), against the closed forms, and the truncation at
# $T = 600$.

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
fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), constrained_layout=True)
fine = np.linspace(0.5, 0.95, 91)
ax = axes[0]
for (name, (_, formula, _)), c in zip(lag_filters.items(),
                                      ("tab:red", "tab:blue", "tab:purple", "tab:orange")):
    ax.plot(fine, [formula(b) for b in fine], color=c, lw=1.6,
            label=name.replace("ρ", r"$\rho$"))
    ax.plot(RHOS, lag_meas[name], "o", color=c, ms=7, mfc="none")
ax.plot([], [], "ko", mfc="none", ms=7, label="measured on a ramp")
ax.set_xlabel(r"decay $\rho$ ($= b_1$)")
ax.set_ylabel("steady-state lag (steps)")
ax.set_title("Lag on a ramp (lines: closed form)")
ax.legend(loc="upper left")
ax = axes[1]
for k, c in zip(KINDS, ("tab:red", "tab:green", "tab:blue")):
    ax.plot(fine, [gain_closed(k, b) for b in fine], color=c, lw=1.6, label=k)
    ax.errorbar(RHOS, gain_mc[k], yerr=[gain_cf[k] * (1 - lo_q), gain_cf[k] * (hi_q - 1)],
                fmt="o", color=c, ms=7, mfc="none", capsize=3)
ax.errorbar([], [], yerr=[], fmt="ko", mfc="none", ms=7, label="Monte Carlo")
ax.set_yscale("log")
ax.set_xlabel(r"decay $\rho$ (equal decays)")
ax.set_ylabel(r"variance gain $\Sigma_k\, h_k^2$")
ax.set_title(f"White-noise variance gain ($R = {R_MC}$)")
ax.legend(loc="lower left")
tut.figure(fig, "lag_and_noise", "Left: lag against the decay; the equal-decay TEMA has "
           "lag 0, the EMA ρ/(1-ρ), FAME's mixed TEMAs lie in between or above. Right: "
           "variance gains (lines: closed forms; bars: the Monte Carlo acceptance intervals); "
           "removing the lag multiplies the noise gain (TEMA above EMA at every ρ), and the "
           "simulation sits on the closed forms.", key=True)

# %% [markdown]
# On the left, follow the blue line along 0 and the orange one above the red: the
# equal-decay TEMA has no lag at all, but the paper's mixed decays $(\rho, 0.3, 0.7)$ lag
# *more* than the plain EMA at every decay, by
# $L(0.7) - 2 L(0.3) = \frac{7}{3} - \frac{6}{7} \approx 1.48$ steps, while the code
# defaults (purple) gain just $2 L(0.5) - L(0.5) = 1$ step on it. On the right, the
# blue TEMA curve lies above the red EMA curve at every $\rho$: the lag is paid for in
# noise.

# %% [markdown]
# Is "less lag costs variance" a law? Along the EMA family and between EMA, DEMA and TEMA
# at one decay, yes. For filters in general, no: the two-level window
#
# $$
# h_k = \begin{cases}
# \frac{3N - 1}{2N^2} & 0 \le k < N, \\
# -\frac{N - 1}{2N^2} & N \le k < 2N
# \end{cases}
# $$
#
# sums to 1, has lag 0, and its gain is about $2.5 / N$. We compute its lag and gain for
# $N = 100$ beside the EMA at 0.9 and FAME's two mixed TEMAs at $b_1 = 0.9$ (their gains
# from their impulse responses).

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
for name, (lg, gn) in trade.items():   # an EMA with lag L has gain 1 / (1 + 2 L)
    print(f"{name:17s}: lag {lg:7.3f} steps, gain {gn:.4f} "
          f"(an EMA with this lag: {1 / (1 + 2 * max(lg, 0.0)):.4f})")
window_sum = float(np.sum(window))
tut.number("window: sum of h", window_sum, fmt=".15g")
tut.number("window: lag", trade[f"window N = {N}"][0], "steps", fmt=".3g")
tut.number("window: gain", trade[f"window N = {N}"][1], fmt=".4f")
tut.number("FAME 0.9/0.3/0.7: lag (Adam's EMA: 9)", trade["FAME 0.9/0.3/0.7"][0], "steps",
           fmt=".4f")

# %%
fig, ax = plt.subplots(figsize=(9, 4.8))
b_family = np.linspace(0.3, 0.97, 100)
ax.plot([filters.lag(b) for b in b_family], [gain_closed("EMA", b) for b in b_family],
        color="tab:red", lw=1.6, label=r"EMA family ($\rho$ from 0.3 to 0.97)")
for (name, (lg, gn)), m, c in zip(trade.items(), ("o", "s", "^", "v", "*"),
                                  ("tab:red", "tab:blue", "tab:purple", "tab:orange", "k")):
    ax.plot(lg, gn, m, color=c, ms=15 if m == "*" else 10,
            label=name.replace("window N", "window $N$"))
ax.set_yscale("log")
ax.set_xlabel("lag on a ramp (steps)")
ax.set_ylabel(r"variance gain $\Sigma_k\, h_k^2$")
ax.set_title("Lag against noise: not a law for all filters")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
tut.figure(fig, "lag_vs_noise", "Each filter as a point (lag, gain). Along the EMA curve "
           "less lag means more noise, and TEMA 0.9 buys lag 0 with a larger gain, but "
           "the two-level window (star) has lag 0 and a gain below the EMA at 0.9.")

# %% [markdown]
# The red curve is what an EMA offers, $G = \frac{1}{1 + 2L}$: less lag for more noise.
# A point below it beats every EMA with the same lag, a point above it loses to one
# (the printout above gives the EMA's gain at each point's lag). TEMA 0.9 (square) is far
# below: an EMA with lag 0 copies its input, gain 1. The code defaults (up triangle) are
# above: an EMA with decay $\frac{8}{9}$ has the same 8 steps of lag and less noise. The
# paper's configs (down triangle) sit on the curve, a hair below. And the black star, the
# window, has lag 0 and less noise than the EMA at 0.9, which lags 9 steps.

# %% [markdown]
# ## 3. FAME's bias correction
#
# The chain starts at zero, so early outputs are too small. The authors divide by
# $1 - b_1^t$ (Adam's correction of one EMA); the chain's real response to a constant 1 is
# $\mathrm{TEMA}_t(1)$, different unless $b_3 = b_4 = 0$. On a constant gradient $g$
# (with $|g| \gg$ `eps`), step $t$ then moves $w$ by $R_t\, \eta$ with `debias="adam"`,
#
# $$
# R_t = \frac{\mathrm{TEMA}_t(1)}{1 - b_1^t},
# $$
#
# or by exactly $\eta$ with `debias="exact"`.
# [FAME-debias](../proofs/tema_fame.md#claim-fame-debias) gives $R_t$ in closed form for
# $b_3 = b_4$.
#
# We measure $R_t$ as $(w_{t-1} - w_t) / \eta$ from the optimizer itself ($g = 1$,
# $\eta = 1$, `eps=1e-300` so that $|g| + \text{eps} = |g|$ in floats) and compute the
# exact value in rational arithmetic from the float decays.

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
# The closed form for $b_1 = \alpha$, $b_3 = b_4 = \beta$ from the proofs,
#
# $$
# R_t = 1 + (A - 1)\, \frac{(2 - A)(\alpha^t - \beta^t) + (1 - \beta)\, t\, \beta^t}{1 - \alpha^t},
# \qquad A = \frac{(1 - \beta)\, \alpha}{\alpha - \beta},
# $$
#
# then all three at both configs (and the paper's $R_4$ with the decimal decays, as the
# proofs state it).

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
# The measured ratios, the rational recursion and (for $b_3 = b_4$) the closed form must
# agree to rounding. Allowance: the chain's response carries at most
# $80\, \varepsilon / (1 - b_1)$ relative rounding (as in section 1), and the difference
# $w_{t-1} - w_t$ adds $u\, (|w_{t-1}| + |w_t|)$.

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

fig, ax = plt.subplots(figsize=(9, 4.8))
steps_db = np.arange(1, T_DB + 1)
ax.plot(steps_db, R_meas[d_name], "o-", color="tab:blue", ms=5,
        label=r"$1 - b_1^t$, 0.9/0.5/0.5")
ax.plot(steps_db, R_closed, "k:", lw=2, label=r"closed form ($b_3 = b_4$)")
ax.plot(steps_db, R_meas[p_name], "s-", color="tab:orange", ms=5,
        label=r"$1 - b_1^t$, 0.9/0.3/0.7")
for name in CONFIGS:
    ax.plot(steps_db, R_exactdebias[name], "-", color="tab:green", lw=4, alpha=0.5,
            label="exact debiasing\n(both configs)" if name == d_name else None)
ax.axhline(1.0, color="gray", lw=0.8)
ax.set_xlabel(r"step $t$")
ax.set_ylabel(r"$R_t$ = step length / $\eta$")
ax.set_title(r"FAME's first steps on a constant gradient: too long, too short, or $\eta$")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
tut.figure(fig, "debias", "The ratio R_t of FAME's step to lr on a constant gradient: with "
           "1 - b1^t it overshoots at the code defaults (blue) and undershoots from step 2 "
           "at the paper's configs (orange); exact debiasing gives steps of exactly lr.")

# %% [markdown]
# Look at the first few steps: at the code defaults (blue) the first step is $1.75\,\eta$
# and the excess decays over about twenty steps; at the paper's configs (orange) only the
# first step is too long, and steps 2 to 40 are too short, the shortest at $t = 4$. The
# green line, exact debiasing, stays on 1 from the first step.

# %% [markdown]
# ## 4. FAME against Adam on a small network
#
# A 2-16-16-2 tanh network with cross-entropy on 200 two-spirals points (the README's
# "first look" setting), mini-batches of 20, the same learning rate 0.01 for Adam,
# FAME official ($b_1, b_3, b_4 = 0.9, 0.5, 0.5$ with $1 - b_1^t$: the authors' code)
# and FAME full (`variant="full"`), three initialisation/shuffle seeds. "Full" is the
# version in the authors' talk slides: a TEMA on *both* moments, the gradient chain with
# decays $(b_1, b_3, b_5)$ and the squared-gradient chain with $(b_2, b_4, b_5)$, five
# decays in all. The slides do not say how it is bias-corrected or where `eps` goes, so
# refimpl's version is a reconstruction (exact debiasing of both chains, documented in
# `refimpl/optimizers/fame.py` and in [sources](../proofs/sources.md#full-variant)).
# This is one small problem: it measures these runs, not a general ranking.

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
fig, ax = plt.subplots(figsize=(9, 4.8))
for name, c in zip(OPTS, ("tab:red", "tab:blue", "tab:green")):
    for seed in SEEDS:
        ax.plot(np.arange(1, EPOCHS + 1), curves[name, seed], color=c, lw=1.6,
                alpha=1.0 if seed == 0 else 0.35, label=name if seed == 0 else None)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("mean mini-batch loss")
ax.set_title(rf"Two spirals, 2-16-16-2 tanh, $\eta = {LR}$, seeds {SEEDS}")
ax.legend(loc="lower left")
verdict = ("the ranking of the final losses is the same on all three seeds" if same_ranking
           else "which one ends lowest depends on the seed")
tut.figure(fig, "mlp_training", "Training loss per epoch for Adam and the two FAME "
           f"variants at the same learning rate; solid: seed 0, faint: seeds 1 and 2; "
           f"{verdict} (printed above).")

# %% [markdown]
# Compare the gap between the colours within one seed with the spread between seeds
# (the faint curves): on this problem the seed moves the curves at least as much as the
# choice of method, so the figure is no ranking of the optimizers. The printout above
# says whether the order of the final losses is the same on every seed.

# %% [markdown]
# The reduction [FAME-adam](../proofs/tema_fame.md#claim-fame-adam): with
# $b_3 = b_4 = 0$ the chain copies $m_1$ into $m_2$ and $m_3$, and
# $(3 m_1 - 3 m_1) + m_1 = m_1$; every other operation is written in Adam's order. So
# the whole MLP run must match Adam bit for bit (the one documented exception, the sign
# of an exact zero, needs $b_1 = 0$). Teeth: FAME at its defaults (different mathematics)
# must *not* match bitwise. We also print how far $b_3 = b_4 = 0$ with exact debiasing
# lands: the same mathematics with a different rounding, so it may or may not match
# bitwise, and we assert neither.

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
# ## 5. TEMA as a filter: frequencies, steps and a closed loop
#
# A linear filter is also described by what it does to a sinusoid, to a step, and inside
# a feedback loop (claim **TEMA-filter**, [proofs](../proofs/tema_fame.md#claim-tema-filter)).
# With equal decays, $1 - F_n = (1 - E)^n$ gives the frequency response
#
# $$
# F_n(e^{i\omega}) = 1 - \Bigl(\frac{b\,(1 - e^{-i\omega})}{1 - b\, e^{-i\omega}}\Bigr)^n ,
# $$
#
# and the step response has closed forms: $1 - s_t = b^{t+1}$ (EMA),
# $b^{t+1}(b - t(1 - b))$ (DEMA), $b^{t+1} q(t) / 2$ with
# $q(t) = (1 - b)^2 t^2 - (1 - b)(1 + 3b)\, t + 2 b^2$ (TEMA). The EMA never overshoots a
# step; DEMA overshoots once $t > L$; TEMA overshoots between the two roots of $q$ and then
# comes back from below: it *rings*. The same numbers say how fast a filtered gradient
# follows a sign reversal: the output $1 - 2 s_t$ flips when $s_t$ passes $\tfrac12$.
#
# Inside a loop, gradient descent $w \leftarrow w - \eta\, F_n(h w)$ on a quadratic is stable up to
# $\eta h = 2 (1 + b)^n / ((1 + b)^n - (2b)^n)$: 38 for the EMA at $b = 0.9$ (proved: heavy
# ball), 19.5 for DEMA and 13.4 for TEMA (observed on a grid). Less lag, shorter range.

# %%
B_F = 0.9
omegas = np.linspace(0.0, np.pi, 2001)
E_f = (1 - B_F) / (1 - B_F * np.exp(-1j * omegas))
gain = {n: np.abs(1 - (1 - E_f) ** n) for n in (1, 2, 3)}
names_f = {1: "EMA", 2: "DEMA", 3: "TEMA"}
for n in (2, 3):
    tut.number(f"{names_f[n]} {B_F}: peak gain |F(e^iω)|", gain[n].max(), fmt=".4f")
t_sin = np.arange(1500, dtype=np.float64)
OMEGA_F = omegas[np.argmax(gain[3])]
y_sin = filters.tema(np.cos(OMEGA_F * t_sin), B_F)
F_peak = 1 - (1 - (1 - B_F) / (1 - B_F * np.exp(-1j * OMEGA_F))) ** 3
sin_err = np.max(np.abs(y_sin[-100:] - np.real(F_peak * np.exp(1j * OMEGA_F * t_sin))[-100:]))
tut.number("TEMA at its peak frequency: |measured - Re(F e^iωt)| over the last 100 steps",
           sin_err, fmt=".2e")
steps_f = np.arange(60)
step = {1: filters.ema(np.ones(60), B_F), 2: filters.dema(np.ones(60), B_F),
        3: filters.tema(np.ones(60), B_F)}
q_f = (1 - B_F) ** 2 * steps_f**2 - (1 - B_F) * (1 + 3 * B_F) * steps_f + 2 * B_F**2
closed_step = {1: 1 - B_F ** (steps_f + 1),
               2: 1 - B_F ** (steps_f + 1) * (B_F - steps_f * (1 - B_F)),
               3: 1 - B_F ** (steps_f + 1) * q_f / 2}
step_err = max(np.max(np.abs(step[n] - closed_step[n])) for n in step)
tut.number("largest |step response - closed form| (EMA, DEMA, TEMA, 60 steps)", step_err,
           fmt=".2e")
over = np.flatnonzero(step[3] > 1)
tut.number("TEMA 0.9 overshoots the step from t", int(over[0]))
tut.number("... to t", int(over[-1]))
tut.number("TEMA 0.9 peak overshoot", step[3].max() - 1, fmt=".4f")
tut.number("DEMA 0.9 overshoots the step from t", int(np.flatnonzero(step[2] > 1)[0]))
flip = {n: int(np.argmax(step[n] > 0.5)) for n in (1, 2, 3)}
for n in (1, 2, 3):
    tut.number(f"{names_f[n]}: steps until a reversed gradient flips the output's sign", flip[n])
bound_f = {n: 2 * (1 + B_F) ** n / ((1 + B_F) ** n - (2 * B_F) ** n) for n in (1, 2, 3)}
for n in (1, 2, 3):
    tut.number(f"{names_f[n]}: stable lr h below", bound_f[n], fmt=".4g")


def filtered_loop(eta_h, n, T=300):
    """|w_t| of gradient descent on w^2 / 2 with the gradient filtered by refimpl.filters."""
    run = {1: filters.ema, 2: filters.dema, 3: filters.tema}[n]
    w, g, out = 1.0, [], [1.0]
    for _ in range(T):
        g.append(w)
        w = w - eta_h * float(run(np.array(g), B_F)[-1])
        out.append(abs(w))
    return np.array(out)


loop_in = filtered_loop(0.97 * bound_f[3], 3)
loop_out = filtered_loop(1.03 * bound_f[3], 3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12.5, 4.4), constrained_layout=True)
for n, col in zip((1, 2, 3), ("tab:blue", "tab:orange", "tab:red")):
    axes[0].plot(omegas, gain[n], color=col, label=names_f[n])
    axes[1].plot(steps_f, step[n], "o", color=col, ms=3, label=names_f[n])
    axes[1].plot(steps_f, closed_step[n], "-", color=col, lw=0.8)
axes[0].axhline(1.0, color="0.5", lw=0.8, ls="--")
axes[0].set(xscale="log", xlim=(1e-3, np.pi), xlabel=r"frequency $\omega$",
            ylabel=r"gain $|F(e^{i\omega})|$", title=f"frequency response, b = {B_F}")
axes[0].legend()
axes[1].axhline(1.0, color="0.5", lw=0.8, ls="--")
axes[1].set(xlabel="t", ylabel=r"step response $s_t$", title="step responses (lines: closed forms)")
axes[1].legend()
axes[2].semilogy(loop_in, color="tab:red", label=f"TEMA, lr h = 0.97 x {bound_f[3]:.2f}")
axes[2].semilogy(loop_out, color="tab:red", ls="--", label=f"TEMA, lr h = 1.03 x {bound_f[3]:.2f}")
axes[2].set(xlabel="step", ylabel=r"$|w_t|$", title="gradient descent with a TEMA gradient")
axes[2].legend()
tut.figure(fig, "tema_as_a_filter", "Left: DEMA and TEMA amplify a band of low frequencies "
           "(gain above 1), the EMA never does. Middle: TEMA overshoots a step for t = 6..31 "
           "and comes back from below; DEMA overshoots from t = 10. Right: inside a loop the "
           "TEMA-filtered gradient is stable just below lr h = 13.36 and diverges just above.")

# %% [markdown]
# ## What we checked
#
# - **TEMA-poly**: at $\rho = 0.9$, TEMA's steady-state error on constant, ramp and
#   quadratic input, DEMA's on constant and ramp, and the EMA's on a constant are 0 (the
#   same check rejects DEMA on the quadratic and EMA on the ramp); EMA's ramp lag is
#   $L = \frac{\rho}{1 - \rho} = 9$, DEMA's quadratic error $2 L^2 a$, the EMA's
#   quadratic error $2 a L T - a (L + 2 L^2)$, and TEMA's error on the cubic $a_3 t^3$ is
#   $6 L^3 a_3$, each within the rounding plus transient allowance.
# - **TEMA-lag**: the measured ramp lags of EMA, equal-decay TEMA and FAME's two mixed
#   TEMAs equal `filters.lag` / `filters.tema_lag` at every decay (same allowance); the
#   paper's configs lag more than Adam's EMA (9 steps), the defaults less.
# - **TEMA-noise**: $\sum_k h_k^2$ of the float impulse responses equals the closed forms
#   to $10^{-12}$ relative; the Monte Carlo gains lie in their $\chi^2$ acceptance
#   intervals (false-alarm probability $10^{-6}$ in total); at every decay the Monte
#   Carlo gains are ordered $\hat G_{\text{EMA}} < \hat G_{\text{DEMA}} < \hat G_{\text{TEMA}}$
#   and each rejects the other two filters' closed forms (so the acceptance test can tell
#   the three formulas apart); and the zero-lag window has a gain below EMA(0.9)'s.
# - **FAME-debias**: the optimizer's step ratios equal the exact rational $R_t$ at both
#   configs (and the closed form at the defaults); the defaults' first five are
#   1.75, 1.487, 1.330, 1.234, 1.173; at the paper's configs $R_1 > 1$ and $R_t < 1$ for
#   $t = 2, \dots, 40$, the shortest being $R_4 = \frac{27003}{34390}$; exact debiasing
#   moves by $\eta$ (rounding allowance as above), while $1 - b_1^t$ is off by more than
#   10% somewhere.
# - **FAME-adam**: FAME with $b_3 = b_4 = 0$ reproduces Adam's MLP run bit for bit; FAME
#   at its defaults does not.
# - The FAME filter bank's column equals `filters.tema` bit for bit.
# - **TEMA-filter** at $b = 0.9$: the TEMA's steady response to a sinusoid at its peak
#   frequency equals $\operatorname{Re}(F e^{i\omega t})$ to $10^{-12}$; the three step responses equal their
#   closed forms to $10^{-13}$; the TEMA overshoots exactly for $t = 6, \dots, 31$ (the roots of $q$)
#   and DEMA from $t = 10 > L$; the closed loop with a TEMA gradient decays at 0.97 times
#   the derived bound and grows at 1.03 times.
#
# The exercises below ask you to compute FAME's lag exactly, to write a TEMA step, and to
# find FAME's first step by hand.

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
tut.check(bool(abs(lead + 17) < 1e-9 and abs(ema_lag_05 - 1) < 1e-9
               and abs(lead) > abs(ema_lag_05)),
          "TEMA-lag: (0.5, 0.9, 0) lags -17 < 1 (less than the EMA) yet tracks 17x worse: "
          "better tracking needs 0 < 2 L3 - L4 < 2 L1")
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

# %%
lo_f = (1 + 3 * B_F - math.sqrt(1 + 6 * B_F + B_F**2)) / (2 * (1 - B_F))
hi_f = (1 + 3 * B_F + math.sqrt(1 + 6 * B_F + B_F**2)) / (2 * (1 - B_F))
tut.check(bool(sin_err < 1e-12 and gain[3].max() > 1.2 and gain[1].max() <= 1.0),
          "TEMA-filter: the TEMA's steady response to a sinusoid is Re(F e^iωt); TEMA amplifies "
          "(peak gain > 1.2), the EMA never does")
tut.check(bool(step_err < 1e-13
               and np.array_equal(over, np.arange(math.floor(lo_f) + 1, math.ceil(hi_f)))
               and int(np.flatnonzero(step[2] > 1)[0]) == math.floor(B_F / (1 - B_F)) + 1
               and not np.any(step[1] > 1)),
          "TEMA-filter: step responses equal the closed forms; TEMA overshoots exactly between "
          "the roots of q, DEMA from t > L, the EMA never")
tut.check(bool(loop_in[-1] < 1e-2 and loop_out[-1] > 1e2),
          "TEMA-filter: GD with a TEMA gradient decays at 0.97 x the bound and grows at 1.03 x")
