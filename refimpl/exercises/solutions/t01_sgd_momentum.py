r"""Reference solutions of tutorial 01's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (a worked answer in
Markdown for 01.3, which is answered on paper); MISTAKES lists, per checked exercise,
answers a student plausibly writes, each of which its checker rejects.
"""

from __future__ import annotations


# ------------------------------------------------------------------------------ 01.1

def keras_step(w, v, g, lr, mu):
    """One step of Keras's SGD momentum: the velocity carries the learning rate."""
    v = mu * v - lr * g
    return w + v, v


def _pytorch_convention(w, v, g, lr, mu):
    """Mistake: PyTorch's buffer and step (b <- mu b + g, w <- w - lr b)."""
    v = mu * v + g
    return w - lr * v, v


def _old_velocity(w, v, g, lr, mu):
    """Mistake: w moves by the velocity of the previous step."""
    return w + v, mu * v - lr * g


def _uphill(w, v, g, lr, mu):
    """Mistake: the gradient enters with the wrong sign."""
    v = mu * v + lr * g
    return w + v, v


def _lr_outside(w, v, g, lr, mu):
    """Mistake: lr outside the velocity (optax's trace with a minus sign): the same steps
    as PyTorch, so right at a constant lr and wrong after a change."""
    v = mu * v - g
    return w + lr * v, v


# ------------------------------------------------------------------------------ 01.2

def keras_minus_pytorch(t, s, lr1, lr2, mu):
    r"""D_t = w_t(Keras) - w_t(PyTorch) for g = 1, w_0 = 0, lr1 at steps 1..s, lr2 after.

    For n > s Keras's velocity is v_n = -lr2 b_n - (lr1 - lr2) mu^(n-s) b_s (the update is
    linear; b_n is PyTorch's buffer, the same in both runs because g = 1 does not depend
    on w), and PyTorch's step is -lr2 b_n. Summing the surplus over n = s+1..t:

        D_t = -(lr1 - lr2) b_s (mu + ... + mu^(t-s))
            = -(lr1 - lr2) b_s mu (1 - mu^(t-s)) / (1 - mu),

    with b_s = 1 + mu + ... + mu^(s-1) = (1 - mu^s) / (1 - mu).
    """
    return -(lr1 - lr2) * mu * (1 - mu**s) * (1 - mu ** (t - s)) / (1 - mu) ** 2


def _limit_only(t, s, lr1, lr2, mu):
    """Mistake: the limit t -> infinity (the surplus summed to infinity)."""
    return -(lr1 - lr2) * mu * (1 - mu**s) / (1 - mu) ** 2


def _buffer_limit(t, s, lr1, lr2, mu):
    """Mistake: b_s replaced by its limit 1 / (1 - mu)."""
    return -(lr1 - lr2) * mu * (1 - mu ** (t - s)) / (1 - mu) ** 2


def _off_by_one(t, s, lr1, lr2, mu):
    """Mistake: the surplus counted from k = 0 (the step at the drop has no surplus)."""
    return -(lr1 - lr2) * (1 - mu**s) * (1 - mu ** (t - s + 1)) / (1 - mu) ** 2


def _pytorch_minus_keras(t, s, lr1, lr2, mu):
    """Mistake: the sign (pytorch - keras)."""
    return (lr1 - lr2) * mu * (1 - mu**s) * (1 - mu ** (t - s)) / (1 - mu) ** 2


def _in_floats(t, s, lr1, lr2, mu):
    """Mistake: the right formula evaluated in floats (not exact, so not comparable)."""
    return float(keras_minus_pytorch(t, s, lr1, lr2, mu))


# ------------------------------------------------------------------------------ 01.3

_TUNING = r"""**1.** The roots $z_1, z_2$ of $z^2 - (1 + \mu - \eta h) z + \mu$ multiply to
$\mu$. While the discriminant $(1 + \mu - \eta h)^2 - 4\mu$ is negative they are complex
conjugates, so $|z_1| = |z_2| = \sqrt{\mu}$; the discriminant is negative exactly when
$|1 + \mu - \eta h| < 2\sqrt{\mu}$, i.e. $(1 - \sqrt{\mu})^2 < \eta h < (1 + \sqrt{\mu})^2$.
At the two ends the root is double, $\pm\sqrt{\mu}$, so the radius is still $\sqrt{\mu}$
(the run then behaves like $(t + 1)\sqrt{\mu}^{\,t}$). Outside the band the roots are real
and distinct with product $\mu$, so one of them has modulus larger than $\sqrt{\mu}$.

**2.** Put $\eta m = (1 - \sqrt{\mu})^2$ and $\eta L = (1 + \sqrt{\mu})^2$. Dividing,
$\sqrt{\kappa} = \frac{1 + \sqrt{\mu}}{1 - \sqrt{\mu}}$, so

$$
\sqrt{\mu} = \frac{\sqrt{\kappa} - 1}{\sqrt{\kappa} + 1}, \qquad
\eta = \frac{(1 + \sqrt{\mu})^2}{L} = \frac{4}{(\sqrt{L} + \sqrt{m})^2} .
$$

Every $h \in [m, L]$ then lies in the band, so every radius is $\sqrt{\mu}$, which is
$\frac{\sqrt{\kappa} - 1}{\sqrt{\kappa} + 1}$ (Polyak's tuning).

**3.** The error shrinks by $e$ in about $1 / (-\ln r)$ steps. For $\kappa = 100$: heavy
ball has $r = \frac{9}{11} \approx 0.818$ and needs about $1 / \ln(11/9) \approx 5$ steps;
GD has $r = \frac{99}{101} \approx 0.980$ and needs about $1 / \ln(101/99) \approx 50$.
For large $\kappa$ the ratio is about $\sqrt{\kappa}$: momentum turns $\kappa$ into
$\sqrt{\kappa}$ (up to the factor $t + 1$ at the band's ends)."""


SOLUTIONS = {
    "01.1": keras_step,
    "01.2": keras_minus_pytorch,
    "01.3": _TUNING,
}

MISTAKES = {
    "01.1": [_pytorch_convention, _old_velocity, _uphill, _lr_outside],
    "01.2": [_limit_only, _buffer_limit, _off_by_one, _pytorch_minus_keras, _in_floats],
}
