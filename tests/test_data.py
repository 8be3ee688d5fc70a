"""Synthetic data sets: their documented construction, determinism and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refimpl.problems import data

EPS = np.finfo(np.float64).eps


@given(n=st.integers(1, 50).map(lambda k: 2 * k), turns=st.floats(0.25, 4.0),
       seed=st.integers(0, 2**32 - 1))
def test_two_spirals_lie_on_their_spirals(n, turns, seed):
    """Without noise a class-0 point at radius r has angle 2 pi turns r (mod 2 pi); class 1
    is class 0 rotated by pi. Labels are balanced and one-hot encoded."""
    ds = data.two_spirals(n, turns=turns, seed=seed)
    half = n // 2
    assert ds.X.shape == (n, 2) and ds.Y.shape == (n, 2)
    assert np.array_equal(ds.labels, np.repeat([0, 1], half))
    assert np.array_equal(ds.Y, np.eye(2)[ds.labels])
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    assert np.all(r <= 1.0 + 4 * EPS)
    t = 2 * math.pi * turns * r
    sign = np.where(ds.labels == 0, 1.0, -1.0)[:, None]
    on_curve = sign * r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    # t recomputed from the rounded radius: error ~ 2 pi turns * few eps, times r <= 1
    assert np.allclose(ds.X, on_curve, rtol=0, atol=64 * turns * EPS + 1e-13)


def test_two_spirals_documented_draws():
    rng = np.random.Generator(np.random.PCG64(3))
    u0, u1 = rng.uniform(size=5), rng.uniform(size=5)
    noise = rng.standard_normal((10, 2))
    ds = data.two_spirals(10, turns=1.5, noise=0.1, seed=3)
    t = 2 * math.pi * 1.5 * np.sqrt(u0)
    r = t / (2 * math.pi * 1.5)
    assert np.array_equal(ds.X[:5], r[:, None] * np.stack([np.cos(t), np.sin(t)], 1) + 0.1 * noise[:5])
    t1 = 2 * math.pi * 1.5 * np.sqrt(u1)
    r1 = t1 / (2 * math.pi * 1.5)
    assert np.array_equal(ds.X[5:], -(r1[:, None] * np.stack([np.cos(t1), np.sin(t1)], 1)) + 0.1 * noise[5:])


def test_circles_radii():
    ds = data.circles(40, factor=0.3, noise=0.0, seed=1)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    assert np.allclose(r[:20], 1.0, rtol=0, atol=4 * EPS)
    assert np.allclose(r[20:], 0.3, rtol=0, atol=4 * EPS)
    assert np.array_equal(ds.labels, np.repeat([0, 1], 20))


def test_generators_are_deterministic_and_read_only():
    for make in (lambda s: data.two_spirals(20, noise=0.1, seed=s), lambda s: data.circles(20, seed=s),
                 lambda s: data.teacher_student(20, noise=0.1, seed=s)):
        a, b, c = make(1), make(1), make(2)
        assert np.array_equal(a.X, b.X) and np.array_equal(a.Y, b.Y)
        assert not np.array_equal(a.X, c.X)
        assert not a.X.flags.writeable and not a.Y.flags.writeable


def test_teacher_student_documented_draws():
    """Teacher seed = first integer drawn; then X ~ N(0, I); then the label noise."""
    from refimpl.problems.mlp import MLP

    ds = data.teacher_student(6, sizes=(3, 4, 2), noise=0.5, seed=9)
    rng = np.random.Generator(np.random.PCG64(9))
    teacher = MLP((3, 4, 2))
    w = teacher.init(int(rng.integers(2**63)), scheme="glorot")
    X = rng.standard_normal((6, 3))
    Y = teacher.forward(w, X) + 0.5 * rng.standard_normal((6, 2))
    assert np.array_equal(ds.X, X) and np.array_equal(ds.Y, Y)
    assert np.array_equal(ds.info["teacher_w"], w)


def test_one_hot():
    assert np.array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        data.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="labels"):
        data.one_hot(np.array([0.0]), 3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: data.two_spirals(7), ValueError, "n must be even"),
    (lambda: data.two_spirals(0), ValueError, "n must be in"),
    (lambda: data.two_spirals(10, turns=0.0), ValueError, "turns"),
    (lambda: data.two_spirals(10, noise=-1.0), ValueError, "noise"),
    (lambda: data.two_spirals(10, seed=-1), ValueError, "seed"),
    (lambda: data.circles(10, factor=1.0), ValueError, "factor"),
    (lambda: data.circles(10, noise=float("nan")), ValueError, "noise"),
    (lambda: data.teacher_student(0), ValueError, "n must be in"),
    (lambda: data.teacher_student(5, sizes=(2,)), ValueError, "sizes"),
    (lambda: data.teacher_student(5, activation="gelu"), ValueError, "activation"),
    (lambda: data.Dataset(np.zeros((3, 2)), np.zeros((2, 1))), ValueError, "same number of rows"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
