"""Synthetic data sets, generated in code from a seed (no downloads).

* :func:`two_spirals` and :func:`circles`: two-class problems in the plane that no
  linear classifier solves (classification, one-hot targets for ``loss="xent"``).
* :func:`teacher_student`: regression targets produced by a random "teacher" MLP, so a
  student of the same architecture can fit them exactly (a realizable problem).

Every generator draws from ``numpy.random.Generator(PCG64(seed))`` in a documented
order, so a data set is a pure function of its arguments. The examples come class by
class (not shuffled): :class:`~refimpl.problems.mlp.MLPProblem` shuffles per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from refimpl import _validate


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs ``X`` (n, n_features) and targets ``Y`` (n, n_outputs), read-only float64.

    ``labels`` (n,) int64 class indices for classification sets (``Y`` is then their
    one-hot encoding), else None. ``info`` records how the set was made.
    """

    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        X = _validate.matrix("X", self.X)
        Y = _validate.matrix("Y", self.Y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}")
        labels = self.labels
        if labels is not None:
            if (not isinstance(labels, np.ndarray) or isinstance(labels, np.ma.MaskedArray)
                    or labels.dtype != np.int64 or labels.ndim != 1):
                raise TypeError("labels must be None or a 1-D int64 numpy array of class "
                                f"indices, got {type(labels).__name__}"
                                + (f" of dtype {labels.dtype}, shape {labels.shape}"
                                   if isinstance(labels, np.ndarray) else ""))
            if labels.shape[0] != X.shape[0]:
                raise ValueError(f"labels must have one entry per row of X ({X.shape[0]}), "
                                 f"got {labels.shape[0]}")
            if labels.size and (labels.min() < 0 or labels.max() >= Y.shape[1]):
                raise ValueError(f"labels must be class indices in [0, {Y.shape[1] - 1}] "
                                 "(the columns of Y)")
            if not np.array_equal(np.argmax(Y, axis=1), labels):
                raise ValueError("labels must be the class of each row of Y (its largest "
                                 "entry's column)")
        for name in ("X", "Y", "labels"):
            a = getattr(self, name)
            if a is not None:
                a = np.array(a, copy=True)
                a.flags.writeable = False
                object.__setattr__(self, name, a)

    @property
    def n(self) -> int:
        """The number of examples (rows of X)."""
        return self.X.shape[0]


def one_hot(labels, n_classes: int) -> np.ndarray:
    """(n, n_classes) float64 one-hot rows of the integer ``labels`` in [0, n_classes)."""
    n_classes = _validate.integer("n_classes", n_classes, lo=1)
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise TypeError("labels must be a 1-D integer numpy array")
    _validate.allocation("n_classes", n_classes, 8 * labels.size * n_classes, "the one-hot rows")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes - 1}]")
    Y = np.zeros((labels.size, n_classes))
    Y[np.arange(labels.size), labels] = 1.0
    return Y


def _check_points(X, *names_and_values):
    """Raise a ValueError naming the generator's parameters if the points overflowed."""
    if not np.all(np.isfinite(X)):
        given = ", ".join(f"{names_and_values[i]}={names_and_values[i + 1]!r}"
                          for i in range(0, len(names_and_values), 2))
        raise ValueError(f"the points overflow float64 with {given}: use a smaller value")


def two_spirals(n: int = 200, *, turns: float = 1.0, noise: float = 0.0, seed: int = 0) -> Dataset:
    """Two interleaved spirals, n / 2 points each (n even, >= 2), labels 0 and 1.

    Class 0: for ``u ~ U(0, 1)`` (one draw per point), angle ``t = 2 pi turns sqrt(u)``
    and radius ``r = t / (2 pi turns)`` (in (0, 1]), point ``r (cos t, sin t)``; class 1
    is the same construction rotated by pi (``-x``). Then Gaussian noise of standard
    deviation ``noise`` is added to every coordinate. Draw order: the u of class 0, the
    u of class 1, then the noise (n, 2) if ``noise > 0``.
    """
    n = _validate.integer("n", n, lo=2)
    if n % 2:
        raise ValueError(f"n must be even (two classes of n / 2 points), got {n}")
    _validate.allocation("n", n, 8 * 12 * n, "the points, their labels and the draws")
    turns = _validate.real("turns", turns, lo=0.0, lo_open=True)
    noise = _validate.real("noise", noise, lo=0.0)
    seed = _validate.integer("seed", seed, lo=0)
    rng = np.random.Generator(np.random.PCG64(seed))
    half = n // 2
    parts = []
    with np.errstate(over="ignore", invalid="ignore"):  # a huge turns: checked below
        for sign in (1.0, -1.0):
            t = 2.0 * math.pi * turns * np.sqrt(rng.uniform(size=half))
            r = t / (2.0 * math.pi * turns)
            parts.append(sign * np.stack([r * np.cos(t), r * np.sin(t)], axis=1))
    X = np.concatenate(parts)
    if noise > 0.0:
        with np.errstate(over="ignore", invalid="ignore"):
            X = X + noise * rng.standard_normal((n, 2))
    _check_points(X, "noise", noise, "turns", turns)
    labels = np.repeat(np.arange(2, dtype=np.int64), half)
    return Dataset(np.ascontiguousarray(X), one_hot(labels, 2), labels, "two_spirals",
                   {"n": n, "turns": turns, "noise": noise, "seed": seed})


def circles(n: int = 200, *, factor: float = 0.5, noise: float = 0.05, seed: int = 0) -> Dataset:
    """Two concentric circles, n / 2 points each (n even): label 0 on the unit circle,
    label 1 on the circle of radius ``factor`` in (0, 1).

    Angles ``U(0, 2 pi)`` (class 0's draws first, then class 1's), then Gaussian noise
    of standard deviation ``noise`` on every coordinate.
    """
    n = _validate.integer("n", n, lo=2)
    if n % 2:
        raise ValueError(f"n must be even (two classes of n / 2 points), got {n}")
    _validate.allocation("n", n, 8 * 12 * n, "the points, their labels and the draws")
    factor = _validate.real("factor", factor, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    noise = _validate.real("noise", noise, lo=0.0)
    seed = _validate.integer("seed", seed, lo=0)
    rng = np.random.Generator(np.random.PCG64(seed))
    half = n // 2
    parts = []
    for radius in (1.0, factor):
        t = rng.uniform(0.0, 2.0 * math.pi, size=half)
        parts.append(radius * np.stack([np.cos(t), np.sin(t)], axis=1))
    X = np.concatenate(parts)
    if noise > 0.0:
        with np.errstate(over="ignore", invalid="ignore"):
            X = X + noise * rng.standard_normal((n, 2))
    _check_points(X, "noise", noise)
    labels = np.repeat(np.arange(2, dtype=np.int64), half)
    return Dataset(np.ascontiguousarray(X), one_hot(labels, 2), labels, "circles",
                   {"n": n, "factor": factor, "noise": noise, "seed": seed})


def teacher_student(n: int = 256, *, sizes=(2, 16, 1), activation: str = "tanh",
                    noise: float = 0.0, seed: int = 0) -> Dataset:
    """Regression data from a random teacher network.

    Draw order: the teacher's weights ``MLP(sizes, activation).init(seed_t, "glorot")``
    with ``seed_t`` the first integer drawn from ``Generator(PCG64(seed))``, then the
    inputs ``X ~ N(0, I)`` (n, sizes[0]), then label noise ``N(0, noise^2)`` (n, sizes[-1])
    if ``noise > 0``. ``Y = teacher(X) + noise``. ``info["teacher_w"]`` holds the
    teacher's flat weights: with ``noise = 0`` a student of the same architecture has
    zero loss there.
    """
    from refimpl.problems.mlp import MLP

    n = _validate.integer("n", n, lo=1)
    noise = _validate.real("noise", noise, lo=0.0)
    seed = _validate.integer("seed", seed, lo=0)
    teacher = MLP(tuple(sizes), activation=activation, loss="mse")
    _validate.allocation("n", n, 8 * 3 * n * (teacher.sizes[0] + 2 * teacher.sizes[-1]
                                              + max(teacher.sizes)), "the inputs and targets")
    rng = np.random.Generator(np.random.PCG64(seed))
    teacher_w = teacher.init(int(rng.integers(2**63)), scheme="glorot")
    X = rng.standard_normal((n, teacher.sizes[0]))
    Y = teacher.forward(teacher_w, X)
    if noise > 0.0:
        Y = Y + noise * rng.standard_normal(Y.shape)
    teacher_w.flags.writeable = False
    return Dataset(X, np.ascontiguousarray(Y), None, "teacher_student",
                   {"n": n, "sizes": teacher.sizes, "activation": activation, "noise": noise,
                    "seed": seed, "teacher_w": teacher_w})
