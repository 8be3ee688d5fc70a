r"""Reference solutions of tutorial 05's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (a worked answer in
Markdown for 05.3, which is answered on paper); MISTAKES lists, per checked exercise,
answers a student plausibly writes, each of which its checker rejects.
"""

from __future__ import annotations

import numpy as np

import refimpl as r


# ------------------------------------------------------------------------------ 05.1

def _escapes(opt, h_diag, steps=2000):
    """True if opt on f = w^T diag(h_diag) w / 2 from w_0 = (1, ..., 1) ends with
    ||w_T|| > ||w_0|| (or overflows)."""
    w0 = np.ones(len(h_diag))
    rec = r.train(r.Quadratic(np.diag(h_diag)), opt, w0=w0, steps=steps,
                  on_divergence="stop")
    return bool(rec.diverged or np.linalg.norm(rec.w) > np.linalg.norm(w0))


def _bisect(escapes_at, hi):
    lo = 0.0
    for _ in range(60):                     # 14 halvings reach 1e-4; 60 caps a bad bracket
        if hi - lo < 1e-4 * hi:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if escapes_at(mid) else (mid, hi)
    return hi


def usam_edge(h_diag, rho):
    """USAM's edge by bisection on the escape event (T = 2000 steps)."""
    def escapes_at(lr):
        opt = r.SAM(r.SGD(lr=lr), rho=rho, ascent="unnormalized", eps=0.0)
        return _escapes(opt, h_diag)
    return _bisect(escapes_at, 10.0 / max(h_diag))


def _bisect_gd(h_diag, rho):
    """Mistake: the bisection runs plain SGD (GD), whose edge is 2 / lam_max."""
    return _bisect(lambda lr: _escapes(r.SGD(lr=lr), h_diag), 10.0 / max(h_diag))


def _too_short_runs(h_diag, rho):
    """Mistake: the escape test on runs of 5 steps: just above the bound the sharp
    coordinate grows too slowly to pass ||w_0|| that soon, so the edge is too high."""
    def escapes_at(lr):
        opt = r.SAM(r.SGD(lr=lr), rho=rho, ascent="unnormalized", eps=0.0)
        return _escapes(opt, h_diag, steps=5)
    return _bisect(escapes_at, 10.0 / max(h_diag))


def _gd_formula(h_diag, rho):
    """Mistake: gradient descent's bound."""
    return 2.0 / max(h_diag)


def _missing_two(h_diag, rho):
    """Mistake: 'stable while lr k < 1'."""
    lam = max(h_diag)
    return 1.0 / (lam * (1 + rho * lam))


def _wrong_eigenvalue(h_diag, rho):
    """Mistake: the flat direction lam_min instead of the sharp one."""
    lam = min(h_diag)
    return 2.0 / (lam * (1 + rho * lam))


def _ascent_squared(h_diag, rho):
    """Mistake: the factor (1 + rho lam) counted twice."""
    lam = max(h_diag)
    return 2.0 / (lam * (1 + rho * lam) ** 2)


# ------------------------------------------------------------------------------ 05.2

def ssam_rescale(g, g_adv):
    """g_adv rescaled to the Euclidean length of g."""
    return g_adv * (np.linalg.norm(g) / np.linalg.norm(g_adv))


def _returns_g(g, g_adv):
    """Mistake: the right length, the wrong direction."""
    return np.array(g, dtype=float)


def _unit(g, g_adv):
    """Mistake: normalized only (missing ||g||)."""
    return g_adv / np.linalg.norm(g_adv)


def _inverted(g, g_adv):
    """Mistake: the ratio upside down."""
    return g_adv * (np.linalg.norm(g_adv) / np.linalg.norm(g))


def _squared_norms(g, g_adv):
    """Mistake: squared norms."""
    return g_adv * (np.dot(g, g) / np.dot(g_adv, g_adv))


def _l1_norms(g, g_adv):
    """Mistake: L1 norms."""
    return g_adv * (np.abs(g).sum() / np.abs(g_adv).sum())


def _float32(g, g_adv):
    """Mistake: computed in single precision (errors of about 1e-7, not a few eps)."""
    g32, a32 = np.float32(g), np.float32(g_adv)
    return a32 * (np.linalg.norm(g32) / np.linalg.norm(a32))


# ------------------------------------------------------------------------------ 05.3

_SADDLES = r"""**1.** The multiplier $m = 1 - \eta k$ with $k = \lambda (1 + \rho \lambda)$
has $|m| < 1$ iff $0 < \eta k < 2$. With $\rho = 0.1$, $\eta = 0.05$:
$k > 0$ for $\lambda < 0$ means $1 + 0.1 \lambda < 0$, i.e. $\lambda < -10$; and
$0.05 \lambda (1 + 0.1 \lambda) < 2$ means $\lambda^2 + 10 \lambda - 400 < 0$, i.e.
$\lambda > -5 - \sqrt{425} \approx -25.62$. The saddle attracts $y$ exactly for

$$
-5 - \sqrt{425} < \lambda < -10 ,
$$

so the tutorial's grid ($\lambda \ge -25$, $\eta k \le 1.875$) lies inside, and
$\lambda = -30$ ($\eta k = 3$, multiplier $-2$) overshoots.

**2.** $\eta k(\lambda) = \eta \rho \lambda^2 + \eta \lambda$ is a parabola with roots
$-1/\rho$ and $0$, positive left of $-1/\rho$ and increasing to $+\infty$ as
$\lambda \to -\infty$. So $\{0 < \eta k < 2\}$ on $\lambda < 0$ is the interval from the
left root $\lambda_- = \frac{-1 - \sqrt{1 + 8 \rho / \eta}}{2 \rho}$ of $\eta k = 2$ to
$-1/\rho$; it is nonempty because $\sqrt{1 + 8\rho/\eta} > 1$. Strong curvature attracts,
but past $\lambda_-$ the step overshoots the saddle by more than it started from.

**3.** In one dimension $g = \lambda w$ and $g_{\text{adv}} = \lambda (w + \rho \lambda w)
= (1 + \rho \lambda)\, g$, a positive multiple of $g$ when $\lambda > 0$. Rescaling it to
length $|g|$ gives back $g$ itself (same sign, same length), so StableSAM's step is
$-\eta g$, gradient descent's, and its stable range is $\eta < 2/\lambda$. In several
dimensions the scale $s = \|g\| / \|g_{\text{adv}}\|$ is one number for all directions
and changes with $w$, so StableSAM is *not* GD direction by direction: the direction of
$\lambda_j$ is multiplied by $1 - \eta\, s\, (1 + \rho \lambda_j)\, \lambda_j$, stretched
by $1 + \rho \lambda_j$ and shrunk by the common $s$. Since
$1/s^2 = \sum_j (1 + \rho \lambda_j)^2 f_j$ with weights $f_j$ summing to 1, $s$ lies
between $1/(1 + \rho \lambda_{\max})$ and $1/(1 + \rho \lambda_{\min})$: the sharp
direction's step is at least GD's (so StableSAM diverges above $2/\lambda_{\max}$), but
the flat directions' steps are longer than GD's, and that convergence nevertheless holds
for every $\eta < 2/\lambda_{\max}$ needs the full argument of the proof of
**SAM-quadratic** in [proofs/sam.md](../proofs/sam.md)."""


SOLUTIONS = {
    "05.1": usam_edge,
    "05.2": ssam_rescale,
    "05.3": _SADDLES,
}

MISTAKES = {
    "05.1": [_bisect_gd, _too_short_runs, _gd_formula, _missing_two,
             _wrong_eigenvalue, _ascent_squared],
    "05.2": [_returns_g, _unit, _inverted, _squared_norms, _l1_norms, _float32],
}
