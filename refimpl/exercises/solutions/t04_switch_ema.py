r"""Reference solutions of tutorial 04's exercises (try them first).

SOLUTIONS maps each exercise id to the answer its checker accepts (a worked answer in
Markdown for 04.3, which is answered on paper); MISTAKES lists, per checked exercise,
answers a student plausibly writes, each of which its checker rejects.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------ 04.1


def sema_run(w0, lr, h, rho, K, steps):
    """Switch EMA on f(w) = h w^2 / 2 without noise: the SGD step, the EMA update with the
    new w, and at the end of every epoch (after steps K, 2K, ...) the switch w <- avg."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for n in range(1, steps + 1):
        w = w - lr * h * w
        avg = rho * avg + (1 - rho) * w
        if n % K == 0:
            w = avg
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


def _no_switch(w0, lr, h, rho, K, steps):
    """Mistake: the plain EMA (the switch forgotten)."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for _ in range(steps):
        w = w - lr * h * w
        avg = rho * avg + (1 - rho) * w
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


def _switch_at_epoch_start(w0, lr, h, rho, K, steps):
    """Mistake: a 0-based counter, switching after steps 1, K + 1, 2K + 1, ..."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for i in range(steps):
        w = w - lr * h * w
        avg = rho * avg + (1 - rho) * w
        if i % K == 0:
            w = avg
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


def _switch_before_update(w0, lr, h, rho, K, steps):
    """Mistake: the switch before the EMA update."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for n in range(1, steps + 1):
        w = w - lr * h * w
        if n % K == 0:
            w = avg
        avg = rho * avg + (1 - rho) * w
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


def _copy_into_average(w0, lr, h, rho, K, steps):
    """Mistake: the switch the wrong way round (avg <- w, a reset of the EMA)."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for n in range(1, steps + 1):
        w = w - lr * h * w
        avg = rho * avg + (1 - rho) * w
        if n % K == 0:
            avg = w
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


def _ema_of_old_weights(w0, lr, h, rho, K, steps):
    """Mistake: the EMA fed the weights from before the step."""
    w, avg = w0, w0
    ws, avgs = [w], [avg]
    for n in range(1, steps + 1):
        avg = rho * avg + (1 - rho) * w
        w = w - lr * h * w
        if n % K == 0:
            w = avg
        ws.append(w)
        avgs.append(avg)
    return ws, avgs


def _in_floats(w0, lr, h, rho, K, steps):
    """Mistake: the right run, in floats (not exact, so not comparable)."""
    ws, avgs = sema_run(float(w0), float(lr), float(h), float(rho), K, steps)
    return ws, avgs


# ------------------------------------------------------------------------------ 04.2


def epoch_factor(a, rho, K):
    """One epoch from w = avg = 1: K steps w <- a w, each followed by the EMA update; the
    switch then sets w to the average. (A loop: no special case at a = rho.)"""
    w = avg = 1
    for _ in range(K):
        w = a * w
        avg = rho * avg + (1 - rho) * w
    return avg


def _sgd_factor(a, rho, K):
    """Mistake: SGD's factor a^K."""
    return a**K


def _missing_a(a, rho, K):
    """Mistake: the average fed the weights before each step (a^(j-1))."""
    return rho**K + (1 - rho) * sum(rho ** (K - 1 - j) * a**j for j in range(K))


def _closed_form_no_limit(a, rho, K):
    """Mistake: the geometric-series closed form, which divides by zero at a = rho."""
    return rho**K + (1 - rho) * a * (rho**K - a**K) / (rho - a)


def _missing_one_minus_rho(a, rho, K):
    """Mistake: the new weights taken in without the factor (1 - rho)."""
    return rho**K + sum(rho ** (K - j) * a**j for j in range(1, K + 1))


# ------------------------------------------------------------------------------ 04.3

_LEMMA2 = r"""**1.** With $K = 1$, after every step $w = \bar w$. Call that common value $x$.
The next step forms $w' = x - \eta g$ (with $g$ the noisy gradient at $x$), the EMA
update gives $\bar w' = \rho x + (1 - \rho)(x - \eta g) = x - (1 - \rho)\, \eta\, g$, and
the switch sets $w$ to it. So $x' = x - (1 - \rho)\, \eta\, g(x)$: SGD with learning rate
$(1 - \rho)\, \eta$ and the same gradient noise, exactly.

**2.** The online loss in the steady state is $\frac{h}{2} V$, so the ratio is
$V((1 - \rho)\eta) / V(\eta)$:

$$
\frac{(1 - \rho)\, \eta\, \sigma^2}{h\, (2 - (1 - \rho)\, \eta h)} \cdot
\frac{h\, (2 - \eta h)}{\eta\, \sigma^2}
= \frac{(1 - \rho)(2 - \eta h)}{2 - (1 - \rho)\, \eta h} .
$$

For $\eta h = 0.1$, $\rho = 0.99$: $\frac{0.01 \cdot 1.9}{2 - 0.001} = \frac{0.019}{1.999}
\approx 0.0095$, the tutorial's $K = 1$ value: about a hundredth of SGD's loss.

**3.** SGD shrinks the distance by $1 - \eta h = 0.9$ per step, so by $e$ in about
$1 / -\ln 0.9 \approx 9.5$ steps; SEMA with $K = 1$ by $1 - (1 - \rho)\, \eta h = 0.999$
per step, so in about $1000$ steps: a hundred times slower. Nothing is free: with
$K = 1$ SEMA *is* SGD at a hundred times smaller learning rate, which has the same
steady state and the same speed. The trade-off between speed and noise is the usual one
of the learning rate; larger $K$ moves SEMA between SGD with $(1 - \rho)\eta$ and SGD with
$\eta$ (plus an average)."""


SOLUTIONS = {
    "04.1": sema_run,
    "04.2": epoch_factor,
    "04.3": _LEMMA2,
}

MISTAKES = {
    "04.1": [_no_switch, _switch_at_epoch_start, _switch_before_update, _copy_into_average,
             _ema_of_old_weights, _in_floats],
    "04.2": [_sgd_factor, _missing_a, _closed_form_no_limit, _missing_one_minus_rho],
}
