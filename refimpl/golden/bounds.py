"""Rounding-error arithmetic for the golden tolerances (FORMAT.md, "How the tolerances
are derived").

A :class:`Val` is an array of float64 values computed during ONE optimizer step,
together with

* ``d`` (k, n): its derivative with respect to the n numbers of the state at the start
  of the step (forward-mode differentiation; ``None`` means zero);
* ``e`` (2, k): a bound on the rounding error committed *during this step* on the way
  to the value, for two unit roundoffs at once: row 0 for the implementation under test
  (``u_impl``: 2^-53 for float64 cases, 2^-24 for float32 ones), row 1 for refimpl
  itself (``u_ref`` = 2^-53). The inputs of the step (the state, the step's gradient
  data, the hyperparameters) count as exact here; errors carried in from earlier steps
  are propagated separately, through the product of the step Jacobians ``d``
  (:mod:`refimpl.golden.model`), which keeps the cancellations of a contracting step
  map that an element-wise bound would lose.

Each operation adds ``u * |result|`` (one rounding) to the propagated bounds of its
operands: ``|x' y' - x y| <= |y| e_x + |x| e_y + e_x e_y``,
``|x'/y' - x/y| <= (e_x + |x/y| e_y) / (|y| - e_y)``,
``|sqrt(x') - sqrt(x)| <= min(e_x / (sqrt(x) + sqrt(x - e_x)), sqrt(e_x))``,
``|max(x', y') - max(x, y)| <= max(e_x, e_y)``. Sums and linear combinations of n
terms are charged ``(2n - 1) u sum |terms|``: every product and every addition rounds
once, and no partial sum exceeds the sum of the absolute terms, so the charge holds for
ANY order and grouping of the sum, with or without fused multiply-add (PyTorch's
``add_(x, alpha=a)`` and ``lerp``, optax's ``a * x + y`` are all covered).

Non-smooth points are bounded without linearising across them: a square root or an
absolute value at exactly 0, and a ``max`` whose arguments are within their error
bounds of each other, take the whole error bound of their argument(s) (this step's and
the one propagated from earlier steps, which ``Ctx.total`` provides) into this step's
bound. The one discontinuity, a division guarded by ``denominator != 0`` (SAM with
eps = 0), is recorded in ``Ctx.kinks``; the model refuses a case where that
denominator is zero with a non-zero error bound.
"""

from __future__ import annotations

import math

import numpy as np

#: unit roundoff of IEEE binary64 and binary32 (round to nearest)
U64 = 2.0 ** -53
U32 = 2.0 ** -24


class IllConditioned(ValueError):
    """A golden case whose tolerance cannot be derived (a kink within rounding)."""


class Ctx:
    """One step's arithmetic: the two unit roundoffs, the state size, and (from the
    second step on) the propagator that knows the errors carried in from earlier steps,
    so that non-smooth operations can bound them soundly."""

    def __init__(self, u_impl: float, u_ref: float, n: int, prop=None):
        self.u = np.array([[u_impl], [u_ref]])
        self.n = n
        self.prop = prop
        self.kinks: list[tuple] = []

    def const(self, x) -> "Val":
        """An exact input (a hyperparameter, a data value): no derivative, no error."""
        v = np.atleast_1d(np.asarray(x, dtype=np.float64)).copy()
        return Val(self, v, None, np.zeros((2, v.shape[0])))

    def seed(self, x, offset: int) -> "Val":
        """A block of the step's input state, occupying state entries offset.. ."""
        v = np.atleast_1d(np.asarray(x, dtype=np.float64)).copy()
        d = np.zeros((v.shape[0], self.n))
        d[np.arange(v.shape[0]), offset + np.arange(v.shape[0])] = 1.0
        return Val(self, v, d, np.zeros((2, v.shape[0])))

    def round(self, v):
        """The bound of one rounding of ``v``: ``u |v|`` (shape (2, k))."""
        return self.u * np.abs(v)

    def total(self, x: "Val") -> np.ndarray:
        """(2, k) bound on ALL of ``x``'s error: this step's and the propagated one."""
        if self.prop is None:
            return np.broadcast_to(x.e, (2, x.v.shape[0])).copy()
        return self.prop.total(x)


def _add_d(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _scale_d(c, d):
    return None if d is None else np.asarray(c)[:, None] * d


class Val:
    """Values ``v`` (k,), derivatives ``d`` (k, n) or None, step-local bounds ``e`` (2, k)."""

    __slots__ = ("ctx", "v", "d", "e")

    def __init__(self, ctx, v, d, e):
        self.ctx, self.v, self.d, self.e = ctx, v, d, e

    def _lift(self, x) -> "Val":
        return x if isinstance(x, Val) else self.ctx.const(x)

    # -- one rounding per operation --------------------------------------------------
    def __add__(self, other):
        b = self._lift(other)
        v = self.v + b.v
        return Val(self.ctx, v, _add_d(self.d, b.d), self.e + b.e + self.ctx.round(v))

    __radd__ = __add__

    def __neg__(self):
        return Val(self.ctx, -self.v, None if self.d is None else -self.d, self.e)

    def __sub__(self, other):
        return self + (-self._lift(other))

    def __rsub__(self, other):
        return self._lift(other) + (-self)

    def __mul__(self, other):
        b = self._lift(other)
        v = self.v * b.v
        d = _add_d(_scale_d(b.v, self.d), _scale_d(self.v, b.d))
        e = np.abs(b.v) * self.e + np.abs(self.v) * b.e + self.e * b.e + self.ctx.round(v)
        return Val(self.ctx, v, d, e)

    __rmul__ = __mul__

    def __truediv__(self, other):
        b = self._lift(other)
        if np.any(b.v == 0.0):
            raise IllConditioned("division by an exact zero in the error model")
        v = self.v / b.v
        d = None
        if self.d is not None or b.d is not None:
            num = _add_d(self.d, _scale_d(-v, b.d))
            d = _scale_d(1.0 / b.v, num)
        room = np.abs(b.v) - b.e
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.where(room > 0.0, (self.e + np.abs(v) * b.e) / room, np.inf)
        e = np.where((self.e == 0.0) & (b.e == 0.0), 0.0, e) + self.ctx.round(v)
        return Val(self.ctx, v, d, e)

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __getitem__(self, i):
        """Element ``i`` as a (1,) Val (no rounding)."""
        s = slice(i, i + 1)
        return Val(self.ctx, self.v[s], None if self.d is None else self.d[s], self.e[:, s])


# -- functions ----------------------------------------------------------------------

def sqrt(x: Val) -> Val:
    """Square root. Where ``x`` is exactly 0 it is not differentiable: there the
    derivative is set to 0 and the whole error bound E of ``x`` (this step's and the
    propagated one) enters as ``sqrt(E)``, since ``sqrt(x') <= sqrt(|x' - 0|)``."""
    if np.any(x.v < 0.0):
        raise IllConditioned("square root of a negative value in the error model")
    v = np.sqrt(x.v)
    at_zero = x.v == 0.0
    d = None
    if x.d is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(at_zero[:, None], 0.0, x.d / (2.0 * v[:, None]))
    lower = np.sqrt(np.maximum(x.v - x.e, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = np.where(x.e > 0.0, x.e / (v + lower), 0.0)
    e = np.minimum(linear, np.sqrt(x.e))
    if np.any(at_zero):
        e = np.where(at_zero, np.sqrt(x.ctx.total(x)), e)
    return Val(x.ctx, v, d, e + x.ctx.round(v))


def tanh(x: Val) -> Val:
    """tanh, charged ``4 u |result|`` (a library tanh within 2 ulps) plus the propagated
    ``(1 - tanh(x)^2) e_x`` (tanh is 1-Lipschitz, and its slope is that)."""
    v = np.tanh(x.v)
    slope = 1.0 - v * v
    return Val(x.ctx, v, _scale_d(slope, x.d), slope * x.e + 4.0 * x.ctx.u * np.abs(v))


def relu(x: Val) -> Val:
    """``max(x, 0)`` (exact) with the derivative 1 where x > 0 and 0 where x < 0. Refused
    (IllConditioned) where |x| is within its total error bound: an implementation could
    then take the other side of the kink, and the backward pass's 0-or-1 factor with it,
    which no first-order bound covers. Cases that pass keep every pre-activation away
    from the kink."""
    near = np.abs(x.v) <= x.ctx.total(x).max(axis=0)
    if np.any(near):
        raise IllConditioned("a relu pre-activation is within its error bound of the kink "
                             f"(|z| = {float(np.min(np.abs(x.v))):.3g})")
    on = x.v > 0.0
    return Val(x.ctx, np.where(on, x.v, 0.0), _scale_d(on.astype(float), x.d),
               np.where(on, x.e, 0.0))


def exp(x: Val) -> Val:
    """``exp(x)``, charged ``4 u |result|`` (a library exp within 2 ulps) plus the
    propagated ``exp(x) e_x`` (first order)."""
    v = np.exp(x.v)
    return Val(x.ctx, v, _scale_d(v, x.d), v * x.e + 4.0 * x.ctx.u * np.abs(v))


def log(x: Val) -> Val:
    """``log(x)`` for x > 0 (refused otherwise), charged ``4 u |result|`` (a library log
    within 2 ulps) plus the propagated ``e_x / (x - e_x)``."""
    if np.any(x.v <= 0.0):
        raise IllConditioned("log of a non-positive value in the error model")
    v = np.log(x.v)
    room = x.v - x.e
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(room > 0.0, x.e / room, np.inf)
    e = np.where(x.e == 0.0, 0.0, e)
    return Val(x.ctx, v, _scale_d(1.0 / x.v, x.d), e + 4.0 * x.ctx.u * np.abs(v))


def absolute(x: Val) -> Val:
    """|x| (exact). Where ``x`` is exactly 0 the derivative is set to 0 and the whole
    error bound of ``x`` enters this step's bound (``| |x'| - 0 | = |x' - 0|``)."""
    at_zero = x.v == 0.0
    e = np.where(at_zero, x.ctx.total(x), x.e) if np.any(at_zero) else x.e
    return Val(x.ctx, np.abs(x.v), _scale_d(np.sign(x.v), x.d), e)


def maximum(a: Val, b: Val) -> Val:
    """Element-wise max (exact), with the winner's derivative. Where the two are
    farther apart than their total error bounds the winner is the same in every
    admissible implementation and only its own error counts; at a near-tie the bound is
    ``max(E_a, E_b)`` (``|max(a', b') - max(a, b)| <= max(|a' - a|, |b' - b|)``), all
    of it entered here (the derivative part then counts twice: conservative)."""
    a, b = a._lift(a), a._lift(b)
    first = a.v >= b.v
    v = np.where(first, a.v, b.v)
    k = v.shape[0]
    n = a.ctx.n
    da = np.zeros((k, n)) if a.d is None else np.broadcast_to(a.d, (k, n))
    db = np.zeros((k, n)) if b.d is None else np.broadcast_to(b.d, (k, n))
    d = None if a.d is None and b.d is None else np.where(first[:, None], da, db)
    Ea, Eb = a.ctx.total(a), a.ctx.total(b)
    near_tie = np.abs(a.v - b.v) <= Ea + Eb
    e = np.where(near_tie, np.maximum(Ea, Eb), np.where(first, a.e, b.e))
    return Val(a.ctx, v, d, e)


def lincomb(*pairs) -> Val:
    """``c0 x0 + c1 x1 + ...`` evaluated left to right, charged ``(2n - 1) u sum|c x|``
    (valid for any order and grouping, with or without fused multiply-add)."""
    ctx = next(p.ctx for pair in pairs for p in pair if isinstance(p, Val))
    terms = [(c if isinstance(c, Val) else ctx.const(c), x if isinstance(x, Val) else ctx.const(x))
             for c, x in pairs]
    v = None
    d = None
    e = 0.0
    size = 0.0
    for c, x in terms:
        cx = c.v * x.v
        v = cx if v is None else v + cx
        d = _add_d(d, _add_d(_scale_d(c.v, x.d), _scale_d(x.v, c.d)))
        e = e + np.abs(c.v) * x.e + np.abs(x.v) * c.e + c.e * x.e
        size = size + np.abs(cx)
    e = e + (2 * len(terms) - 1) * ctx.u * size
    return Val(ctx, np.atleast_1d(v), d, np.broadcast_to(e, (2, np.atleast_1d(v).shape[0])).copy())


def _reduce(x_terms: Val, n_ops: int) -> Val:
    """Sum a Val's elements into a (1,) Val: left-to-right value, any-order bound."""
    ctx = x_terms.ctx
    total = 0.0
    for t in x_terms.v:
        total += t  # the index order every refimpl kernel uses
    d = None if x_terms.d is None else x_terms.d.sum(axis=0, keepdims=True)
    e = x_terms.e.sum(axis=1, keepdims=True) + n_ops * ctx.u * np.abs(x_terms.v).sum()
    return Val(ctx, np.array([total]), d, e)


def dot(a: Val, b: Val) -> Val:
    """``sum_i a_i b_i`` as a (1,) Val, charged ``(2k - 1) u sum |a_i b_i|``."""
    k = max(a.v.shape[0], b.v.shape[0])
    v = a.v * b.v
    d = _add_d(_scale_d(b.v, a.d), _scale_d(a.v, b.d))
    e = np.abs(b.v) * a.e + np.abs(a.v) * b.e + a.e * b.e  # propagated only
    return _reduce(Val(a.ctx, v, d, e), 2 * k - 1)


def sum_of_squares(x: Val) -> Val:
    """``sum_i x_i^2`` (refimpl's norms), charged ``(2k - 1) u sum x_i^2``."""
    return dot(x, x)


def total(x: Val) -> Val:
    """``sum_i x_i``, charged ``(k - 1) u sum |x_i|``."""
    return _reduce(Val(x.ctx, x.v, x.d, x.e), x.v.shape[0] - 1)


def matvec(H: np.ndarray, r: Val) -> Val:
    """``H r`` for an exact matrix H (k, k): row sums in index order, each charged
    ``(2k - 1) u sum_j |H_ij r_j|``."""
    ctx = r.ctx
    k = H.shape[0]
    v = np.empty(k)
    for i in range(k):
        acc = 0.0
        for j in range(k):
            acc += H[i, j] * r.v[j]
        v[i] = acc
    d = None if r.d is None else H @ r.d
    e = r.e @ np.abs(H).T + (2 * k - 1) * ctx.u * (np.abs(H) @ np.abs(r.v))
    return Val(ctx, v, d, e)


def int_power(ctx: Ctx, base: float, t: int) -> Val:
    """``base ** t`` for an exact base and integer t >= 1, as refimpl computes it
    (``pow``). Charged ``(t + 1) u |result|``: a library ``pow`` is within 2u, and
    t - 1 repeated multiplications are within (t - 1) u."""
    v = base ** float(t)
    return Val(ctx, np.array([v]), None, (t + 1) * ctx.u * abs(v))


def real_power(base: Val, p) -> Val:
    """``base ** p`` for a constant base > 0 and an exponent p (a float, or a constant
    Val with its own error; timm's and openmixup's warm-ups). Charged
    ``(2 + 2 |p log(base)|) u |result|`` (a library pow is within 2u; exp(p log b)
    amplifies the rounding of its argument by |p log b|), plus the propagated
    ``|p| |result| / base * e_base + |result log(base)| * e_p``."""
    exponent = p if isinstance(p, Val) else base.ctx.const(p)
    b = float(base.v[0])
    q = float(exponent.v[0])
    v = b ** q
    log_b = math.log(b)
    e = (abs(q) * abs(v) / b * base.e + abs(v * log_b) * exponent.e
         + (2.0 + 2.0 * abs(q * log_b)) * base.ctx.u * abs(v))
    return Val(base.ctx, np.array([v]), None, e)


def concat(parts) -> Val:
    """Join (k_i,) Vals into one Val (no rounding)."""
    ctx = parts[0].ctx
    v = np.concatenate([p.v for p in parts])
    e = np.concatenate([np.broadcast_to(p.e, (2, p.v.shape[0])) for p in parts], axis=1)
    if all(p.d is None for p in parts):
        d = None
    else:
        d = np.concatenate([np.zeros((p.v.shape[0], ctx.n)) if p.d is None
                            else np.broadcast_to(p.d, (p.v.shape[0], ctx.n)) for p in parts])
    return Val(ctx, v, d, e)
