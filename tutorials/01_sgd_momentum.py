# %% [markdown]
# # SGD and momentum on quadratics
#
# On a one-dimensional quadratic $f(w) = \frac{h}{2} w^2$ heavy-ball momentum is a *linear*
# recursion, so everything about it can be computed exactly: the iterates are powers of a
# $2 \times 2$ matrix, stability is a statement about the roots of a quadratic polynomial,
# and the three momentum conventions found in PyTorch, optax and Keras can be compared line
# by line.
#
# You will learn to
#
# - predict every iterate of `refimpl.SGD` from the powers of a $2 \times 2$ companion
#   matrix, and measure how far the floating-point run is from that prediction (in units of
#   the machine epsilon $\varepsilon = 2^{-52}$);
# - read the stable learning rates off the spectral radius, $0 < \eta h < 2(1 + \mu)$ for
#   heavy ball and $0 < \eta h < \frac{2(1 + \mu)}{1 + 2\mu}$ for Nesterov, and find the
#   same edge by bisection on real runs;
# - see why the three momentum conventions agree while the learning rate is constant and
#   part ways after a learning-rate drop.
#
# Notation: $\eta$ is the learning rate (`lr` in code), $\mu$ the momentum, $h$ the
# curvature and $h' = \eta h$ the step size in units of the curvature.
#
# Prerequisites: gradient descent, eigenvalues of a $2 \times 2$ matrix. The tutorial
# illustrates the claims **SGD-quadratic** and **SGD-nesterov** of
# [proofs/sgd.md](../proofs/sgd.md) and the convention witness of
# [sources](../proofs/sources.md#the-lr-change-witness).

# %%
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np

import refimpl as r
from refimpl import theory
from refimpl.tutorial import Tutorial

tut = Tutorial(
    title="SGD and momentum on quadratics",
    claim="On f(w) = h w^2/2 refimpl's heavy-ball iterates equal the companion-matrix closed "
          "form to within the derived rounding allowance (oscillating runs decay at rate "
          "sqrt(mu) inside +-C sqrt(mu)^t, C set by the start), and the measured stability edge "
          "lies within the bisection bracket of 2(1+mu)/h (Nesterov: 2(1+mu)/((1+2mu)h)); "
          "the PyTorch and optax conventions are bitwise equal, Keras follows the same "
          "recursion at constant lr and gives w2 = -0.200 instead of -0.119 after an lr drop.",
    idea=r"On $f(w) = \frac{h}{2} w^2$ heavy-ball momentum is a linear recursion: its "
         r"iterates are powers of a $2 \times 2$ companion matrix. They converge exactly "
         r"while $0 < \eta h < 2(1 + \mu)$ and, when the roots are complex, decay like "
         r"$\sqrt{\mu}^{\,t}$ whatever $\eta$ is. PyTorch, optax and Keras write momentum "
         r"differently but agree while $\eta$ is constant; after a learning-rate change "
         r"Keras's velocity still carries the old $\eta$.",
    formula=r"w_{t+1} = (1 + \mu - \eta h)\, w_t - \mu\, w_{t-1}, \qquad "
            r"\text{stable} \;\Leftrightarrow\; 0 < \eta h < 2(1 + \mu)",
)
FAST = tut.fast
EPS = np.finfo(np.float64).eps

# %% [markdown]
# ## 1. The closed form: a companion matrix
#
# PyTorch's heavy ball keeps a buffer $b$: $b \leftarrow \mu b + g$ ($b = g$ on the first
# step), then $w \leftarrow w - \eta b$. On $f = \frac{h}{2} w^2$ the gradient is $g = h w$.
# Eliminating the buffer ([proofs/sgd.md](../proofs/sgd.md), claim SGD-quadratic, item 2)
# leaves a two-term recursion in $w$ alone, with $h' = \eta h$:
#
# $$
# w_{t+1} = (1 + \mu - h')\, w_t - \mu\, w_{t-1}, \qquad w_{-1} = w_0 \ \text{(zero velocity)}.
# $$
#
# In matrix form $(w_{t+1}, w_t)^\top = M\, (w_t, w_{t-1})^\top$ with the companion matrix
#
# $$
# M = \begin{pmatrix} 1 + \mu - h' & -\mu \\ 1 & 0 \end{pmatrix}, \qquad
# \begin{pmatrix} w_t \\ w_{t-1} \end{pmatrix} = M^t \begin{pmatrix} w_0 \\ w_0 \end{pmatrix}.
# $$
#
# The eigenvalues of $M$ are the roots of $z^2 - (1 + \mu - h')\, z + \mu$; they fix the
# shape of the run:
#
# - two real positive roots: a smooth, **overdamped** decay;
# - a double root at $h' = (1 - \sqrt{\mu})^2$: **critical damping**;
# - complex roots, $(1 - \sqrt{\mu})^2 < h' < (1 + \sqrt{\mu})^2$: an **oscillation** with
#   modulus exactly $\sqrt{\mu}$ (the two roots are conjugate and their product is $\mu$);
# - real negative roots (large $h'$): the iterate flips sign every step.
#
# We compute $M^t (w_0, w_0)^\top$ in exact rational arithmetic (Python's `Fraction`, from
# the exact binary values of the float hyperparameters), so the prediction carries no
# rounding.

# %%
def sgd_run(h, lr, mu, steps, *, nesterov=False, convention="pytorch", w0=1.0):
    """Iterates w_0..w_T of refimpl.train on f(w) = h w^2 / 2 (lr: float or per-step array)."""
    problem = r.Quadratic(np.array([[h]]))
    opt = r.SGD(lr=lr, momentum=mu, nesterov=nesterov, convention=convention)
    rec = r.train(problem, opt, w0=np.array([w0]), steps=steps, record_params=True)
    return rec.params[:, 0]


def companion_prediction(h, lr, mu, steps, w0=1.0):
    """w_t = first row of M^t (w0, w0), with M^t built one factor at a time in exact rationals."""
    a, b = 1 + Fraction(mu) - Fraction(lr) * Fraction(h), Fraction(mu)
    P = [[Fraction(1), Fraction(0)], [Fraction(0), Fraction(1)]]  # M^0
    out = [Fraction(w0)]
    for _ in range(steps):
        P = [[a * P[0][0] - b * P[1][0], a * P[0][1] - b * P[1][1]], [P[0][0], P[0][1]]]
        out.append((P[0][0] + P[0][1]) * Fraction(w0))
    return out


def roots(a, b):
    """Roots of z^2 - a z + b, larger modulus first."""
    z = np.roots([1.0, -a, b]).astype(complex)
    return z[np.argsort(-np.abs(z))]

# %% [markdown]
# Four regimes at $\mu = 0.5$ ($h = 1$, so $\eta = h'$), and one typical deep-learning
# setting, $\mu = 0.9$ with $h' = 0.1$. The step API gives the same bits as the jitted loop;
# we check that once here.

# %%
MU = 0.5
CASES = [  # (label, h', mu)
    ("overdamped", 0.03, MU),
    ("critical", (1 - np.sqrt(MU)) ** 2, MU),
    ("oscillating", 0.25, MU),
    ("sign-flipping", 2.95, MU),
    ("ringing", 0.1, 0.9),
]
T1 = 120 if FAST else 300
runs, exact = {}, {}
for label, hp, mu in CASES:
    runs[label] = sgd_run(1.0, hp, mu, T1)
    exact[label] = companion_prediction(1.0, hp, mu, T1)
    z = roots(1 + mu - hp, mu)
    print(f"{label:20s} h'={hp:.4f} mu={mu}: roots {np.round(z, 4)}, |z|max = {abs(z[0]):.4f}")

# the step API, stepped by hand, equals the jitted loop bit for bit
opt, w = r.SGD(lr=0.25, momentum=MU), np.array([1.0])
state, stepped = opt.init(w), [1.0]
for _ in range(T1):
    w, state = opt.update(w, state, np.array([1.0 * w[0]]))
    stepped.append(w[0])
step_api_equal = bool(np.array_equal(stepped, runs["oscillating"]))
print("step API == train():", step_api_equal)

# %% [markdown]
# How close is the float run to the exact prediction? Each step rounds a few times (the
# gradient $h w$, $\mu b$, the sum, $\eta b$, the subtraction); written as the recursion
# plus a local error $\delta_k$, one step errs by at most $|\delta_k| \le 16\, \varepsilon\, m_k$,
# where $m_k = |w_{k-1}| + |w_k| + |w_{k+1}|$ (valid for $h' \le 4$; derived in the docstring
# of `tests/test_claims_sgd.py`). The recursion carries $\delta_k$ to step $t$ multiplied by
# $U_{t-k-1}$, and $|U_n| \le (n + 1)\, r^n$ with $r$ the largest root modulus
# ([proofs/sgd.md](../proofs/sgd.md), "Two envelopes"). Summing gives a **rounding
# allowance** for every step, computed from the run itself:
#
# $$
# |w_t^{\text{float}} - w_t^{\text{exact}}| \le \sum_{k < t} (t - k)\, r^{\,t-k-1}\,
# 16\, \varepsilon\, m_k .
# $$
#
# We report the error in units of $\varepsilon \max_t |w_t|$.

# %%
def allowance(x, a, b, lr):
    """Per-step bound on |x_t(float) - x_t(exact)|: sum_k (t-k) r^(t-k-1) (16 eps m_k + tiny)."""
    r_max = abs(roots(a, b)[0])
    m = np.abs(x)
    mk = m[:-1] + m[1:] + np.concatenate([[0.0], m[:-2]])  # k = 0..T-1
    bound = np.zeros(len(x))
    for t in range(1, len(x)):
        n = t - np.arange(t)  # t - k
        bound[t] = np.sum(n * r_max ** (n - 1) * (16 * EPS * mk[:t] + (4 * lr + 2) * 2.0**-1074))
    return bound


err_ulps, within, err_rel, allow = {}, {}, {}, {}
for label, hp, mu in CASES:
    x, ex = runs[label], exact[label]
    err = np.array([abs(Fraction(float(v)) - e) for v, e in zip(x, ex)], dtype=float)
    err_rel[label] = err / (EPS * np.abs(x).max())  # plotted below
    err_ulps[label] = err_rel[label].max()
    allow[label] = allowance(x, 1 + mu - hp, mu, hp)
    within[label] = bool(np.all(err <= allow[label]))
    tut.number(f"max |run - closed form| ({label})", err_ulps[label], "eps x max|w|", ".3g")
print("every step within the allowance:", within)

# %% [markdown]
# With complex roots $z, \bar z$ the run is $w_t = 2 \operatorname{Re}(c\, z^t)$ with
# $c = \frac{w_1 - \bar z\, w_0}{z - \bar z}$, so it decays at the rate $|z| = \sqrt{\mu}$
# inside the envelope $\pm C \sqrt{\mu}^{\,t}$. The amplitude $C = 2|c|$ is set by the start
# $(w_0, w_1)$ and is not 1 in general: with $w_1 = (1 - h')\, w_0$, working out $|c|$ gives
#
# $$
# C^2 = \left(1 + \frac{(1 - \mu - h')^2}{4\mu - (1 + \mu - h')^2}\right) w_0^2 .
# $$
#
# We check that the float runs stay inside this envelope (up to their rounding allowance)
# and print how far they leave the naive $\pm \sqrt{\mu}^{\,t}$.

# %%
envelope_ok, amp = {}, {}
for label, hp, mu in CASES:
    a, b = 1 + Fraction(mu) - Fraction(hp), Fraction(mu)
    if a * a >= 4 * b:
        continue  # real roots: no oscillation envelope
    C2 = 1 + (1 - b - Fraction(hp)) ** 2 / (4 * b - a * a)  # exact rational C^2 (w0 = 1)
    amp[label] = float(C2) ** 0.5
    x, t = runs[label], np.arange(len(runs[label]))
    # exactly |w_t| <= C mu^(t/2); the float run may exceed it by its rounding allowance
    inside = np.maximum(np.abs(x) - allow[label], 0.0)
    envelope_ok[label] = all(Fraction(float(v)) ** 2 <= C2 * b**k for k, v in enumerate(inside))
    tut.number(f"envelope amplitude C ({label})", amp[label], "", ".4f")
    tut.number(f"max |w_t| / sqrt(mu)^t ({label})", np.max(np.abs(x) / np.sqrt(mu) ** t), "", ".4f")
print("every run inside ±C sqrt(mu)^t (plus its allowance):", envelope_ok)
# teeth: the naive envelope ±sqrt(mu)^t (C = 1) is left by the oscillating run, beyond rounding
t = np.arange(T1 + 1)
naive_left = bool(np.any(np.abs(runs["oscillating"]) - allow["oscillating"] > np.sqrt(MU) ** t))

# %% [markdown]
# The lines are the exact companion-matrix prediction, the dots are `refimpl.train`'s
# iterates. Note the shapes the roots predicted: monotone, fastest monotone (critical),
# oscillating inside $\pm C \sqrt{\mu}^{\,t}$, and flipping sign. With $\mu = 0.9$ the
# envelope $0.9^{t/2}$ decays slowly: the familiar ringing of heavy momentum.

# %%
fig, axes = plt.subplots(2, 3, figsize=(13, 8.4))
for ax, (label, hp, mu) in zip(axes.flat, CASES):
    t = np.arange(31 if mu == MU else 81)
    z = roots(1 + mu - hp, mu)
    ax.plot(t, [float(v) for v in exact[label][: len(t)]], "-", color="C0", lw=1.2,
            label=r"closed form $M^t\,(w_0, w_0)$")
    ax.plot(t, runs[label][:len(t)], "o", ms=3.5, color="C1", label="refimpl.train")
    if label in amp:
        env = amp[label] * np.sqrt(mu) ** t
        ax.plot(t, env, ":", color="gray", label=r"envelope $\pm C\,\sqrt{\mu}^{\,t}$")
        ax.plot(t, -env, ":", color="gray")
    ax.axhline(0, color="k", lw=0.5)
    if np.iscomplex(z[0]):
        zs = rf"${z[0].real:.2f} \pm {abs(z[0].imag):.2f}i$, $C = {amp[label]:.3f}$"
    else:
        zs = rf"${z[0].real:.3f}$, ${z[1].real:.3f}$"
    ax.set_title(f"{label}: $h' = {hp:.3g}$, $\\mu = {mu}$\nroots {zs}")
    ax.set(xlabel="step $t$", ylabel="$w_t$")
ax = axes.flat[5]
for i, (label, hp, mu) in enumerate(CASES):
    ax.plot(err_rel[label], ".", ms=3, color=f"C{i}", label=label)
ax.set(xlabel="step $t$", ylabel=r"$|w_t - w_t^{\mathrm{exact}}| \,/\, (\varepsilon \max|w|)$")
ax.set_title("Rounding error of the run")
ax.legend(ncol=2, markerscale=3, handletextpad=0.1, columnspacing=0.6)
handles, labels = axes.flat[2].get_legend_handles_labels()  # oscillating: all three kinds
fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
fig.suptitle(r"Heavy ball on $f = w^2/2$ from $w_0 = 1$: exact prediction vs refimpl's run")
fig.tight_layout(rect=(0, 0.05, 1, 1))
tut.figure(fig, "closed_form", "Heavy-ball iterates (dots) on the exact companion-matrix "
           "prediction (lines) in the regimes set by the roots; oscillating runs decay at the "
           "rate √μ, inside ±C √μ^t with C set by (w0, w1). Last panel: the float run's "
           "distance from the exact prediction, a few eps of the run's scale.")

# %% [markdown]
# In each panel the dots sit on the line: the closed form predicts every iterate. Compare
# the shapes with the roots in the titles, and note in the two oscillating panels that the
# run stays inside the dotted envelope, whose height at $t = 0$ is $C$ (printed in the
# title), not 1. In the last panel no point rises above a few $\varepsilon$.

# %% [markdown]
# ## 2. The stability region
#
# The run converges from every start iff both roots lie inside the unit circle. By the
# Schur-Cohn lemma of [proofs/sgd.md](../proofs/sgd.md) this is, for heavy ball,
#
# $$
# 0 < h' < 2(1 + \mu).
# $$
#
# PyTorch's Nesterov (step direction $d = g + \mu b$) has the recursion
# $w_{t+1} = (1 + \mu)(1 - h')\, w_t - \mu (1 - h')\, w_{t-1}$ and the smaller region
# $0 < h' < \frac{2(1 + \mu)}{1 + 2\mu}$ (claim SGD-nesterov).
#
# We do not trust our algebra here: `refimpl.theory.transitions` builds the one-step matrix
# of the optimizer from its documented update, and we take the largest eigenvalue modulus
# over a grid of $(h', \mu)$. One call handles a whole row of $h'$ values, as the
# coordinates of a noise-free `NoisyQuadratic` with $h = h'$ and $\eta = 1$.

# %%
H_GRID = np.linspace(0.0, 4.4, 221 if FAST else 441)
MU_GRID = np.linspace(0.0, 0.98, 50 if FAST else 99)


def radius_map(nesterov):
    rad = np.empty((len(MU_GRID), len(H_GRID)))
    for i, mu in enumerate(MU_GRID):
        problem = r.NoisyQuadratic(h=H_GRID, c=np.zeros_like(H_GRID))
        opt = r.SGD(lr=1.0, momentum=mu, nesterov=nesterov and mu > 0)
        A, _, _ = theory.transitions(problem, opt, steps=2)
        # A[n - 1, coord] maps the state (w, buf, ema, 1) over step n. We take step 2 (A[1]):
        # step 1 is PyTorch's special first step (buf = g). The slice :3 drops the constant
        # 1 (it only carries w* = 0 here); the ema row is zero without an averager.
        rad[i] = np.abs(np.linalg.eigvals(A[1, :, :3, :3])).max(axis=1)
    return rad


rad_hb, rad_nes = radius_map(False), radius_map(True)
HP, MUS = np.meshgrid(H_GRID, MU_GRID)
bound_hb = 2 * (1 + MUS)
bound_nes = np.where(MUS > 0, 2 * (1 + MUS) / (1 + 2 * MUS), 2.0)  # mu = 0: plain GD
# points well away from the boundary (radius there is within ~sqrt(eps) of 1)
away_hb = (np.abs(HP - bound_hb) > 1e-3) & (HP > 1e-3)
away_nes = (np.abs(HP - bound_nes) > 1e-3) & (HP > 1e-3)
region_hb = bool(np.all((rad_hb[away_hb] < 1) == (HP[away_hb] < bound_hb[away_hb])))
region_nes = bool(np.all((rad_nes[away_nes] < 1) == (HP[away_nes] < bound_nes[away_nes])))
print("heavy ball: radius < 1 exactly where h' < 2(1+mu):", region_hb)
print("Nesterov:   radius < 1 exactly where h' < 2(1+mu)/(1+2mu):", region_nes)

# %% [markdown]
# Two spot checks: inside the complex-root band the radius is $\sqrt{\mu}$, and the public
# one-call API `theory.spectral_radius` agrees.

# %%
band = ((1 - np.sqrt(MUS)) ** 2 + 0.05 < HP) & (HP < (1 + np.sqrt(MUS)) ** 2 - 0.05)
tut.number("max |radius - sqrt(mu)| in the complex-root band",
           np.abs(rad_hb - np.sqrt(MUS))[band].max(), "", ".2g")
sr = theory.spectral_radius(r.NoisyQuadratic(h=np.array([2.0]), c=np.zeros(1)),
                            r.SGD(lr=1.0, momentum=0.5))
print("theory.spectral_radius at h' = 2, mu = 0.5:", sr, " sqrt(mu):", np.sqrt(0.5))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 5.6), sharey=True, layout="constrained")
# where the roots turn complex (discriminant a^2 - 4b = 0): heavy ball h' = (1 -+ sqrt mu)^2;
# Nesterov h' = ((1 - mu) / (1 + mu))^2 and h' = 1 (for h' > 1, b < 0: real roots)
critical = {"hb": ((1 - np.sqrt(MU_GRID)) ** 2, (1 + np.sqrt(MU_GRID)) ** 2),
            "nes": (((1 - MU_GRID) / (1 + MU_GRID)) ** 2, np.ones_like(MU_GRID))}
panels = ((axes[0], rad_hb, bound_hb, "hb", r"$\eta h = 2(1 + \mu)$",
           r"$(1 \mp \sqrt{\mu})^2$"),
          (axes[1], rad_nes, bound_nes, "nes", r"$\eta h = \dfrac{2(1 + \mu)}{1 + 2\mu}$",
           r"$\left(\dfrac{1 - \mu}{1 + \mu}\right)^2$ and $1$"))
for ax, rad, bound, key, name, crit_name in panels:
    im = ax.pcolormesh(H_GRID, MU_GRID, np.minimum(rad, 1.5), cmap="viridis", vmin=0, vmax=1.5,
                       shading="auto")
    ax.contour(H_GRID, MU_GRID, rad, levels=[1.0], colors="white", linewidths=2.5)
    ax.plot(bound[:, 0], MU_GRID, "r--", lw=1.5, label=name)
    lo_c, hi_c = critical[key]
    ax.plot(lo_c, MU_GRID, ":", color="orange", lw=2.2, label=f"complex roots: {crit_name}")
    ax.plot(hi_c, MU_GRID, ":", color="orange", lw=2.2)
    ax.set_xlim(H_GRID[0], H_GRID[-1])
    ax.set_xlabel(r"$\eta h$")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17))
axes[0].set_ylabel(r"momentum $\mu$")
axes[0].set_title("Heavy ball")
axes[1].set_title("Nesterov (PyTorch form)")
fig.colorbar(im, ax=axes, label="spectral radius (clipped at 1.5)")
tut.figure(fig, "stability", "Spectral radius of the one-step map over (ηh, μ); the white "
           "contour (radius 1) lies on the dashed formula; between the dotted curves the roots "
           "are complex (for heavy ball the radius there is exactly √μ).", key=True)

# %% [markdown]
# Read the figure from left to right at a fixed $\mu$: the radius falls, stays flat at
# $\sqrt{\mu}$ between the dotted curves, then rises and crosses 1 (white) exactly on the
# dashed line. Nesterov's stable region (right) is narrower, more so at large $\mu$.

# %% [markdown]
# ### Measuring the edge on real runs
#
# Now forget the formula and *measure* the largest stable learning rate for $h = 10$,
# $\mu = 0.9$ by bisection: a run of $T$ steps from $w_0 = 1$ counts as stable if it does
# not overflow (`on_divergence="stop"`) and ends with $|w_T| < 1$. Just outside the edge the
# dominant root is $1 + O(\text{margin})$, so $T$ must be long enough for the run to decide.
# For $w_{t+1} = a w_t - b w_{t-1}$ with roots $z_1, z_2$ ($|z_1| = r \ge |z_2|$), the
# envelopes of [proofs/sgd.md](../proofs/sgd.md) bound the run from both sides:
#
# $$
# \frac{|w_T|}{|w_0|} \le \left|\frac{w_1}{w_0}\right| T\, r^{T-1} + |b|\, (T-1)\, r^{T-2},
# \qquad
# \frac{|w_T|}{|w_0|} \ge |c_1|\, |z_1|^T - |c_2|\, |z_2|^T ,
# $$
#
# with $c_1, c_2$ the coefficients of the root expansion $w_T = (c_1 z_1^T + c_2 z_2^T)\, w_0$.
# We check that at a relative margin `BAND` (a tenth of the bisection tolerance) from the
# formula's edge the upper envelope is already below 1 (stable side) and the lower one above
# 1 (unstable side). Then every run outside that band is classified correctly, so the true
# edge lies in the final bracket widened by `BAND` on each side.

# %%
H, MU9 = 10.0, 0.9
T_BIS, TOL = (100_000, 1e-3) if FAST else (1_000_000, 1e-4)
BAND = TOL / 10  # relative margin at which the envelopes must already decide


def recursion(hp, mu, nesterov):
    """(a, b, w1/w0) of w_{t+1} = a w_t - b w_{t-1} (proofs/sgd.md)."""
    if nesterov:
        return (1 + mu) * (1 - hp), mu * (1 - hp), 1 - hp * (1 + mu)
    return 1 + mu - hp, mu, 1 - hp


def upper_envelope(hp, mu, nesterov, T):
    """Upper bound on |w_T| / |w_0|: |x1| T r^(T-1) + |b| (T-1) r^(T-2) (proofs/sgd.md)."""
    a, b, x1 = recursion(hp, mu, nesterov)
    rr = abs(roots(a, b)[0])
    return abs(x1) * T * rr ** (T - 1) + abs(b) * (T - 1) * rr ** (T - 2)


def lower_envelope(hp, mu, nesterov, T):
    """Lower bound on |w_T| / |w_0| from the root expansion w_T = c1 z1^T + c2 z2^T."""
    a, b, x1 = recursion(hp, mu, nesterov)
    z1, z2 = roots(a, b)
    c1, c2 = (x1 - z2) / (z1 - z2), (z1 - x1) / (z1 - z2)
    return abs(c1) * abs(z1) ** T - abs(c2) * abs(z2) ** T

# %% [markdown]
# The bisection itself: a run is stable if it neither overflows nor ends with $|w_T| \ge 1$.

# %%
def is_stable(lr, nesterov):
    rec = r.train(r.Quadratic(np.array([[H]])), r.SGD(lr=lr, momentum=MU9, nesterov=nesterov),
                  w0=np.ones(1), steps=T_BIS, on_divergence="stop")
    return (not rec.diverged) and abs(rec.w[0]) < 1.0


def bisect_edge(nesterov):
    lo, hi = 0.01, 1.0
    assert is_stable(lo, nesterov) and not is_stable(hi, nesterov)
    runs_used = 2
    while hi - lo > TOL * lo:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if is_stable(mid, nesterov) else (lo, mid)
        runs_used += 1
    return lo, hi, runs_used

# %% [markdown]
# Bisect both variants, and ask the envelopes whether `T_BIS` steps decide at margin `BAND`.

# %%
edges = {}
FORMULA = {False: 2 * (1 + MU9) / H, True: 2 * (1 + MU9) / ((1 + 2 * MU9) * H)}
for nesterov, formula in FORMULA.items():
    lo, hi, n_runs = bisect_edge(nesterov)
    name = "Nesterov" if nesterov else "heavy ball"
    hp_edge = formula * H
    decided = (upper_envelope(hp_edge * (1 - BAND), MU9, nesterov, T_BIS) < 1.0
               and lower_envelope(hp_edge * (1 + BAND), MU9, nesterov, T_BIS) > 1.0)
    edges[name] = (lo, hi, formula, decided)
    print(f"{name}: bracket [{lo:.7f}, {hi:.7f}] after {n_runs} runs of {T_BIS} steps; "
          f"formula {formula:.7f}; envelopes decide at ±{BAND:g}: {decided}")
    tut.number(f"measured stable-lr edge, {name} (h = 10, mu = 0.9)", 0.5 * (lo + hi), "", ".7g")
    tut.number(f"formula edge, {name}", formula, "", ".7g")

# %% [markdown]
# ## 3. Three momentum conventions
#
# Libraries write momentum three ways (the `convention` option of `refimpl.SGD`):
#
# | convention | buffer | step |
# |---|---|---|
# | `"pytorch"` | $b \leftarrow \mu b + g$ ($b = g$ first) | $w \leftarrow w - \eta_t b$ |
# | `"optax"` | $m \leftarrow g + \mu m$ from $m = 0$ | $w \leftarrow w - \eta_t m$ |
# | `"keras"` | $v \leftarrow \mu v - \eta_t g$ from $v = 0$ | $w \leftarrow w + v$ |
#
# PyTorch and optax perform the same floating-point operations (with dampening 0), so they
# are equal bit for bit, whatever the learning-rate schedule $\eta_t$. Keras keeps the
# learning rate *inside* the velocity: at a constant $\eta$, $v = -\eta b$ and the three
# follow the same recursion; after a change of $\eta$ Keras's velocity still remembers the
# old one. The lr-change witness of
# [sources](../proofs/sources.md#the-lr-change-witness): constant gradient $g = 1$,
# $\mu = 0.9$, $w_0 = 0$, $\eta_1 = 0.1$ then $\eta_2 = 0.01$. By hand: PyTorch has
# $b_1 = 1$, $b_2 = 1.9$ and $w_2 = -0.1 - 0.01 \cdot 1.9 = -0.119$; Keras has
# $v_1 = -0.1$, $v_2 = 0.9 \cdot (-0.1) - 0.01 = -0.1$ and $w_2 = -0.2$.

# %%
def witness(convention):
    opt = r.SGD(lr=np.array([0.1, 0.01]), momentum=0.9, convention=convention)
    w, state = np.zeros(1), opt.init(np.zeros(1))
    for _ in range(2):
        w, state = opt.update(w, state, np.ones(1))
    return w[0]


w2 = {c: witness(c) for c in ("pytorch", "optax", "keras")}
for c, v in w2.items():
    tut.number(f"witness w2 ({c})", v, "", ".17g")
# the same numbers, written out in the kernels' order of operations
w2_pytorch_by_hand = (0.0 - 0.1 * 1.0) - 0.01 * (0.9 * 1.0 + 1.0)  # buf2 = 1.9
w2_keras_by_hand = -0.1 + (0.9 * (0.0 - 0.1 * 1.0) - 0.01 * 1.0)  # v2 = -0.09 - 0.01
print("PyTorch by hand:", w2_pytorch_by_hand, " Keras by hand:", w2_keras_by_hand)

# %% [markdown]
# On a quadratic ($h = 1$, $\mu = 0.9$, $w_0 = 1$) with a step decay of the learning rate
# ($\eta = 0.1$ for the first $s = 40$ steps, then $0.01$), the Keras run keeps some of the
# old step size. Right at the drop its stored velocity is $-0.1\, b_s$ where PyTorch's next
# step uses $-0.01\, b_s$. New gradients enter both at the new $\eta$, so (the update being
# linear) $k$ steps after the drop Keras's velocity is
#
# $$
# v_{s+k} = -\eta_2\, b_{s+k} - (\eta_1 - \eta_2)\, \mu^k\, b_s ,
# $$
#
# with $b$ the PyTorch-style buffer of its own gradients: a surplus left over from the old
# learning rate, which decays like $\mu^k$.
#
# At a constant $\eta$ all three follow the exact recursion within the rounding allowance
# of section 1. For Keras this needs its own local error, because it stores $v$ separately
# and $w_k - w_{k-1}$ is not exactly $v_k$ in floating point. With $u = \varepsilon/2$, the
# add $w_k = \operatorname{fl}(w_{k-1} + v_k)$ gives $v_k = w_k - w_{k-1} + \theta w_k$ with
# $|\theta| \le u$. Split the recursion residual as
#
# $$
# \delta_k = (w_{k+1} - w_k - v_{k+1}) + (v_{k+1} - \mu v_k + h' w_k)
#   + \mu\, (v_k - w_k + w_{k-1}) :
# $$
#
# the first and last parts are at most $u |w_{k+1}|$ and $\mu u |w_k|$; the middle one
# collects the four roundings of
#
# $$
# v_{k+1} = \operatorname{fl}\bigl(\operatorname{fl}(\mu v_k)
#   - \operatorname{fl}(\eta \operatorname{fl}(h w_k))\bigr),
# $$
#
# at most $u\, (|v_{k+1}| + \mu |v_k| + 2 h' |w_k|)$. With $|v_k| \le |w_k| + |w_{k-1}|$ (to
# first order) the total is
#
# $$
# |\delta_k| \le u\, \bigl(2 |w_{k+1}| + (1 + 2\mu + 2h')\, |w_k| + \mu |w_{k-1}|\bigr)
#   \le 5.5\, \varepsilon\, m_k
# $$
#
# for $\mu < 1$, $h' \le 4$: inside the $16\, \varepsilon\, m_k$ the allowance uses. (No
# iterate here comes near the subnormal range.)

# %%
T_DROP, T3 = 40, 160
sched = np.where(np.arange(T3) < T_DROP, 0.1, 0.01)
traj = {c: sgd_run(1.0, sched, 0.9, T3, convention=c) for c in ("pytorch", "optax", "keras")}
pt_eq_optax = bool(np.array_equal(traj["pytorch"], traj["optax"]))
print("pytorch == optax bitwise over the whole schedule:", pt_eq_optax)

# constant lr: every convention within the rounding allowance of the exact recursion
ex_const = companion_prediction(1.0, 0.1, 0.9, T3)
const_ok, const_gap = {}, {}
for c in ("pytorch", "optax", "keras"):
    x = sgd_run(1.0, 0.1, 0.9, T3, convention=c)
    err = np.array([abs(Fraction(float(v)) - e) for v, e in zip(x, ex_const)], dtype=float)
    const_ok[c] = bool(np.all(err <= allowance(x, 1.9 - 0.1, 0.9, 0.1)))
    const_gap[c] = x
print("constant lr, within the allowance of the exact recursion:", const_ok)
keras_const_gap = np.abs(const_gap["keras"] - const_gap["pytorch"]).max()
keras_sched_gap = np.abs(traj["keras"] - traj["pytorch"]).max()
tut.number("max |keras - pytorch|, constant lr", keras_const_gap, "", ".3g")
tut.number("max |keras - pytorch|, after the lr drop", keras_sched_gap, "", ".3g")
# the allowance the constant-lr comparison is held to (twice: both runs may err)
ex_f = np.array([float(e) for e in ex_const])
keras_gap_bound = 2 * allowance(ex_f, 1.8, 0.9, 0.1).max()
print("twice the largest allowance:", keras_gap_bound)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
t = np.arange(T3 + 1)
styles = {"pytorch": ("-", 3.0), "optax": ("--", 1.5), "keras": ("-", 1.5)}
for c, (ls, lw) in styles.items():
    axes[0].plot(t, traj[c], ls, lw=lw, label=c)
axes[0].axvline(T_DROP, color="gray", lw=1.0, ls=":", label=r"$\eta$: 0.1 $\to$ 0.01")
axes[0].set_xlabel("step $t$")
axes[0].set_ylabel("$w_t$")
axes[0].set_title(r"Step decay, $h = 1$, $\mu = 0.9$")
axes[0].legend()
axes[1].plot(t, traj["keras"] - traj["pytorch"], color="C2", label="keras − pytorch")
axes[1].plot(t, traj["optax"] - traj["pytorch"], "--", color="C1",
             label="optax − pytorch (exactly 0)")
axes[1].axvline(T_DROP, color="gray", lw=1.0, ls=":")
axes[1].set_xlabel("step $t$")
axes[1].set_ylabel("difference in $w_t$")
axes[1].set_title("They part only after the drop")
axes[1].legend()
fig.tight_layout()
tut.figure(fig, "conventions", "Left: PyTorch and optax coincide (bitwise), Keras agrees until "
           "the lr drop and then overshoots with its stored old-lr velocity. Right: the "
           "differences; before the drop keras - pytorch is at the rounding level.")

# %% [markdown]
# Left, the three curves are one until the dotted line; after it the Keras curve (green)
# overshoots. Right, the green difference is flat zero before the drop; after it the surplus
# velocity pushes the Keras run about 0.05 further, and the gap then rings out with the
# run's own oscillation.

# %% [markdown]
# ## What we checked
#
# - The step API and `refimpl.train` give the same iterates bit for bit.
# - In all five cases (overdamped, critical, oscillating, sign-flipping, ringing) every
#   heavy-ball iterate is within the derived rounding allowance of the exact companion-matrix
#   prediction $M^t (w_0, w_0)^\top$.
# - In the two complex-root cases (oscillating, ringing) every float iterate lies inside
#   $\pm C \sqrt{\mu}^{\,t}$, with the amplitude $C$ computed exactly from $(w_0, w_1)$, up
#   to its rounding allowance; the naive envelope $\pm \sqrt{\mu}^{\,t}$ ($C = 1$) is left by
#   the oscillating run by more than its allowance.
# - Over the $(\eta h, \mu)$ grid, away from the boundary, the spectral radius is below 1
#   exactly where $\eta h < 2(1 + \mu)$ (heavy ball) and
#   $\eta h < \frac{2(1 + \mu)}{1 + 2\mu}$ (Nesterov); `theory.spectral_radius` at a
#   complex-root point is $\sqrt{\mu}$.
# - Bisection on real runs brackets the formula edge, for heavy ball and for Nesterov, in a
#   bracket of relative width at most the tolerance (widened by a tenth of it, the band in
#   which the envelopes show the run length could leave the verdict undecided); GD's edge
#   $2/h$ lies outside both brackets.
# - PyTorch and optax are bitwise equal across a learning-rate schedule; at constant $\eta$
#   all three conventions stay within the rounding allowance of the same exact recursion;
#   after the drop Keras differs by far more than the rounding allowance.
# - The witness: PyTorch and optax give $w_2 = -0.1 - 0.01 \cdot 1.9$ and Keras
#   $w_2 = -0.1 - 0.1$, exactly as the kernels' operations in order, and within 2 ulps of
#   $-0.119$ and $-0.200$.

# %%
tut.check(step_api_equal, "the step API and refimpl.train give bitwise-equal iterates")
for label, ok in within.items():
    tut.check(ok, f"{label}: every iterate is within the rounding allowance of M^t (w0, w0)")
for label, ok in envelope_ok.items():
    tut.check(ok, f"{label}: every iterate is inside ±C sqrt(mu)^t, C from (w0, w1), up to "
              "its rounding allowance")
tut.check(naive_left, "oscillating: the run leaves the naive envelope ±sqrt(mu)^t (C = 1) by "
          "more than its rounding allowance")
tut.check(region_hb, "heavy ball: spectral radius < 1 exactly where 0 < lr h < 2 (1 + mu) "
          "(grid)")
tut.check(region_nes, "Nesterov: spectral radius < 1 exactly where "
          "0 < lr h < 2 (1 + mu) / (1 + 2 mu) (grid)")
# complex roots have modulus sqrt(mu) exactly; they are simple (1.3 apart), so backward-stable
# eigenvalues are within a few eps: 8 eps allows for that
tut.check(abs(sr - np.sqrt(0.5)) <= 8 * EPS,
          "theory.spectral_radius at lr h = 2, mu = 0.5 is sqrt(mu) (complex roots), to 8 eps")
for name, (lo, hi, formula, decided) in edges.items():
    tut.check(bool(decided), f"{name}: the envelopes decide a {T_BIS}-step run at relative "
              f"margin {BAND:g} from the formula edge")
    tut.check(bool(lo * (1 - BAND) <= formula <= hi * (1 + BAND) and hi - lo <= TOL * lo),
              f"{name}: the bisection bracket (relative width <= {TOL:g}), widened by "
              f"{BAND:g}, contains the formula edge")
    tut.check(bool(not lo <= 2 / H <= hi), f"{name}: GD's edge 2/h is outside the bracket")

# %%
tut.check(pt_eq_optax, "PyTorch and optax conventions are bitwise equal under a step-decay "
          "schedule")
tut.check(all(const_ok.values()), "at constant lr all three conventions stay within the "
          "rounding allowance of the same exact recursion")
tut.check(bool(keras_const_gap <= keras_gap_bound < keras_sched_gap),
          "keras - pytorch is within twice the allowance at constant lr and far outside it "
          "after the lr drop")
tut.check(w2["pytorch"] == w2["optax"] == w2_pytorch_by_hand
          and abs(w2["pytorch"] + 0.119) <= 2 * EPS * 0.119,
          "witness: PyTorch and optax give w2 = -0.119 (the kernels' float expression, "
          "within 2 ulps of the decimal)")
tut.check(w2["keras"] == w2_keras_by_hand and abs(w2["keras"] + 0.2) <= 2 * EPS * 0.2,
          "witness: Keras gives w2 = -0.200 (the kernels' float expression, within 2 ulps)")
