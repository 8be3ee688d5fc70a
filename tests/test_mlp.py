"""The MLP problem: hand-written gradients and Hessian-vector products checked against
finite differences and closed forms, the parameter layout, mini-batching, the jitted
loop, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import refimpl as r
from refimpl._jit import JIT_DISABLED
from refimpl.problems import data
from refimpl.problems.mlp import mlp_forward
from tests.helpers import hand_run

EPS = np.finfo(np.float64).eps


def _problem(seed, sizes, activation, loss, n, batch_size=None, w_scale=1.0):
    """A random MLPProblem and random w, v on it (all from ``seed``)."""
    rng = np.random.default_rng(seed)
    mlp = r.MLP(sizes, activation=activation, loss=loss)
    X = rng.standard_normal((n, sizes[0]))
    if loss == "mse":
        Y = rng.standard_normal((n, sizes[-1]))
    else:
        Y = data.one_hot(rng.integers(sizes[-1], size=n), sizes[-1])
    problem = r.MLPProblem(mlp, X, Y, batch_size or n)
    w = mlp.init(seed) * w_scale + 0.1 * rng.standard_normal(mlp.n_params)
    return problem, w, rng.standard_normal(mlp.n_params)


def _hidden_preactivations(problem, w):
    sizes = problem.mlp.sizes
    rows = sum(sizes)
    Z, A = np.zeros((rows, problem.n)), np.zeros((rows, problem.n))
    mlp_forward(problem.mlp.net, w, problem.X, np.arange(problem.n, dtype=np.int64), Z, A)
    return Z[sizes[0]:rows - sizes[-1]]


architectures = st.tuples(
    st.integers(1, 3),                                   # inputs
    st.lists(st.integers(1, 5), min_size=0, max_size=2),  # hidden widths
    st.integers(2, 3),                                   # outputs
).map(lambda t: (t[0], *t[1], t[2]))
settings_ = dict(sizes=architectures, activation=st.sampled_from(["tanh", "relu"]),
                 loss=st.sampled_from(["mse", "xent"]), seed=st.integers(0, 2**32 - 1),
                 n=st.integers(1, 6))

H_FD = 1e-5
# Central differences: truncation h^2/6 |f'''| (f''' = O(10) for these O(1) networks)
# plus rounding ~ eps |f| / h: both well under 1e-7. A wrong gradient (a dropped factor,
# a transposed weight, a missing activation derivative) is off by O(|g|).
FD_TOL = 1e-6


@given(**settings_)
def test_gradient_matches_central_differences(sizes, activation, loss, seed, n):
    problem, w, _ = _problem(seed, sizes, activation, loss, n)
    if activation == "relu":  # a kink within the step breaks the finite difference
        assume(np.min(np.abs(_hidden_preactivations(problem, w)), initial=1.0) > 1e-3)
    g = problem.grad(w)
    fd = np.empty_like(g)
    for i in range(problem.dim):
        e = np.zeros(problem.dim)
        e[i] = H_FD
        fd[i] = (problem.loss(w + e) - problem.loss(w - e)) / (2 * H_FD)
    assert np.max(np.abs(fd - g)) <= FD_TOL * (1.0 + np.max(np.abs(g)))


@given(**settings_)
def test_hvp_matches_differences_of_gradients(sizes, activation, loss, seed, n):
    """H v from the R-operator against (g(w + h v) - g(w - h v)) / 2h."""
    problem, w, v = _problem(seed, sizes, activation, loss, n)
    if activation == "relu":
        assume(np.min(np.abs(_hidden_preactivations(problem, w)), initial=1.0) > 1e-2)
    hv = problem.hvp(w, v)
    fd = (problem.grad(w + H_FD * v) - problem.grad(w - H_FD * v)) / (2 * H_FD)
    scale = 1.0 + np.max(np.abs(hv)) + np.max(np.abs(v))
    assert np.max(np.abs(fd - hv)) <= FD_TOL * scale * 10  # |v| up to ~3: 10x the step's reach


@given(**settings_)
def test_hessian_is_symmetric_and_linear(sizes, activation, loss, seed, n):
    """u . H v == v . H u and H (a v) == a H v, to rounding (the Hessian is a symmetric
    linear map; an R-operator that dropped a term would break symmetry)."""
    problem, w, v = _problem(seed, sizes, activation, loss, n)
    u = np.random.default_rng(seed + 1).standard_normal(problem.dim)
    hv, hu = problem.hvp(w, v), problem.hvp(w, u)
    size = np.abs(u) @ np.abs(hv) + np.abs(v) @ np.abs(hu) + 1e-300
    # each entry of H v is a sum of O(B * width * depth) rounded products: 1e3 eps bounds it
    assert abs(u @ hv - v @ hu) <= 1e3 * EPS * size
    assert np.allclose(problem.hvp(w, 2.0 * v), 2.0 * hv, rtol=0, atol=1e3 * EPS * (1 + np.max(np.abs(hv))))


def test_linear_model_gradient_and_hessian_closed_form():
    """With no hidden layer and mse the loss is a quadratic in (W, b):
    L = 1/(B o) ||X~ theta^T - Y||^2 with X~ = [X 1], so g and H v have closed forms."""
    rng = np.random.default_rng(0)
    n, i, o = 7, 3, 2
    mlp = r.MLP((i, o), loss="mse")
    X, Y = rng.standard_normal((n, i)), rng.standard_normal((n, o))
    problem = r.MLPProblem(mlp, X, Y, batch_size=n)
    w, v = rng.standard_normal(mlp.n_params), rng.standard_normal(mlp.n_params)
    (W, b), = mlp.unravel(w)
    (V, c), = mlp.unravel(v)
    R = X @ W.T + b - Y
    g_W, g_b = 2 / (n * o) * R.T @ X, 2 / (n * o) * R.sum(0)
    dF = X @ V.T + c
    h_W, h_b = 2 / (n * o) * dF.T @ X, 2 / (n * o) * dF.sum(0)
    tol = 64 * EPS  # BLAS vs fixed-order sums of 7 terms: a few ulps of the terms' size
    assert np.allclose(problem.grad(w), mlp.ravel([(g_W, g_b)]), rtol=tol, atol=tol)
    assert np.allclose(problem.hvp(w, v), mlp.ravel([(h_W, h_b)]), rtol=tol, atol=tol)
    assert math.isclose(problem.loss(w), np.mean(R ** 2), rel_tol=tol)


def test_tiny_network_by_hand():
    """1-1-1 tanh network, one example x = 1, y = 0, mse:
    z1 = w1 * 1 + b1 = 0.5 + 0 = 0.5, a1 = tanh(0.5), f = w2 a1 + b2 = 2 tanh(0.5) + 0.25
    L = f^2;  dL/df = 2 f;  dL/dw2 = 2 f a1;  dL/db2 = 2 f;
    dL/dz1 = 2 f w2 (1 - a1^2);  dL/dw1 = dL/dz1 * x;  dL/db1 = dL/dz1."""
    mlp = r.MLP((1, 1, 1), activation="tanh", loss="mse")
    problem = r.MLPProblem(mlp, np.array([[1.0]]), np.array([[0.0]]), batch_size=1)
    w = np.array([0.5, 0.0, 2.0, 0.25])  # W1, b1, W2, b2
    a1 = math.tanh(0.5)
    f = 2.0 * a1 + 0.25
    dz1 = 2 * f * 2.0 * (1 - a1 * a1)
    loss, g = problem.loss_and_grad(w)
    assert math.isclose(loss, f * f, rel_tol=4 * EPS)
    assert np.allclose(g, [dz1, dz1, 2 * f * a1, 2 * f], rtol=8 * EPS, atol=0)


def test_forward_matches_the_numpy_expression_and_pytorch_layout():
    """w = [W1 (out, in) row-major, b1, W2, b2] as torch.nn.Linear stores them, and the
    forward pass is tanh(X W1^T + b1) W2^T + b2."""
    mlp = r.MLP((2, 3, 1), activation="tanh")
    w = np.arange(mlp.n_params, dtype=np.float64) / 10
    (W1, b1), (W2, b2) = mlp.unravel(w)
    assert np.array_equal(W1, np.array([[0.0, 0.1], [0.2, 0.3], [0.4, 0.5]]))
    assert np.array_equal(b1, [0.6, 0.7, 0.8]) and np.array_equal(W2, [[0.9, 1.0, 1.1]])
    assert np.array_equal(b2, [1.2])
    assert np.array_equal(mlp.ravel(mlp.unravel(w)), w)
    X = np.random.default_rng(1).standard_normal((5, 2))
    expected = np.tanh(X @ W1.T + b1) @ W2.T + b2
    assert np.allclose(mlp.forward(w, X), expected, rtol=16 * EPS, atol=16 * EPS)
    relu = r.MLP((2, 3, 1), activation="relu")
    assert np.allclose(relu.forward(w, X), np.maximum(X @ W1.T + b1, 0) @ W2.T + b2,
                       rtol=16 * EPS, atol=16 * EPS)


def test_relu_derivative_at_zero_is_zero():
    """relu'(0) = 0 (PyTorch's choice): a unit sitting exactly at z = 0 passes no gradient."""
    mlp = r.MLP((1, 1, 1), activation="relu")
    problem = r.MLPProblem(mlp, np.array([[1.0]]), np.array([[1.0]]), batch_size=1)
    w = np.array([1.0, -1.0, 3.0, 0.0])  # z1 = 1 - 1 = 0
    g = problem.grad(w)
    assert g[0] == 0.0 and g[1] == 0.0 and g[2] == 0.0  # a1 = 0 too
    assert g[3] == 2.0 * (0.0 - 1.0)


@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-30, 30))
@example(seed=6051876, shift=0.0)
def test_cross_entropy_laws(seed, shift):
    """Softmax is shift invariant (adding c to every output bias changes nothing) and,
    for one-hot targets, the output-bias gradients sum to zero over the classes."""
    problem, w, _ = _problem(seed, (2, 4, 3), "tanh", "xent", 5)
    loss, g = problem.loss_and_grad(w)
    shifted = w.copy()
    shifted[-3:] += shift
    assert math.isclose(problem.loss(shifted), loss, rel_tol=1e-12, abs_tol=64 * EPS * (1 + abs(shift)))
    # The law's rounding error scales with the probabilities (O(1)), not with |g|, which
    # is small when the fit is good: each p_j = exp(f_j - m) / s is off by <= (n + 3) eps
    # relative (exp 1 ulp, the n-term sum s, the division), each delta = (p - y) / B
    # adds 2 eps / B, and each g_j sums B deltas of size <= 1 / B (B eps). With n = 3
    # classes and B = 5: |sum_j g_j| <= n (B + n + 5) eps = 39 eps < 64 eps. (Hypothesis
    # found seed 6051876 with 3.5e-17 > 16 eps max|g|, a bound that scaled with |g|.)
    assert abs(g[-3:].sum()) <= 64 * EPS


def test_cross_entropy_by_hand():
    """Zero weights: every logit 0, p = 1/3 each; L = log 3; dL/db2 = (p - y) = (1/3, -2/3, 1/3)."""
    mlp = r.MLP((2, 3), loss="xent")
    problem = r.MLPProblem(mlp, np.array([[1.0, 2.0]]), np.array([[0.0, 1.0, 0.0]]), batch_size=1)
    loss, g = problem.loss_and_grad(np.zeros(mlp.n_params))
    assert math.isclose(loss, math.log(3.0), rel_tol=2 * EPS)
    assert np.allclose(g[-3:], [1 / 3, -2 / 3, 1 / 3], rtol=2 * EPS, atol=0)
    assert np.allclose(g[:6], [1 / 3, 2 / 3, -2 / 3, -4 / 3, 1 / 3, 2 / 3], rtol=4 * EPS, atol=0)


def test_full_loss_is_the_mean_of_equal_batch_losses():
    """Mean losses: with batches that partition the data, loss(all) = mean of batch losses."""
    problem, w, _ = _problem(3, (2, 5, 2), "tanh", "xent", 12, batch_size=4)
    batches = problem.draw_noise(problem.steps_per_epoch, 0)
    per_batch = [problem.grad_fn(b)(w)[0] for b in batches]
    assert math.isclose(problem.loss(w), float(np.mean(per_batch)), rel_tol=64 * EPS)
    g_mean = np.mean([problem.grad_fn(b)(w)[1] for b in batches], axis=0)
    assert np.allclose(problem.grad(w), g_mean, rtol=0, atol=64 * EPS * np.max(np.abs(g_mean)))


def test_batches_are_real_epochs():
    """Each epoch is a fresh permutation from Generator(PCG64(seed)) cut into n // B
    batches of exactly B; the n % B left over are not used that epoch (drop_last)."""
    problem, _, _ = _problem(0, (2, 2), "tanh", "mse", 10, batch_size=3)
    assert problem.steps_per_epoch == 3
    batches = problem.draw_noise(7, seed=5)
    assert batches.shape == (7, 3) and batches.dtype == np.int64
    rng = np.random.Generator(np.random.PCG64(5))
    perms = [rng.permutation(10) for _ in range(3)]
    expected = np.concatenate([p[:9].reshape(3, 3) for p in perms])[:7]
    assert np.array_equal(batches, expected)
    for e in range(2):  # no index repeats within an epoch
        assert len(set(batches[3 * e:3 * e + 3].ravel())) == 9
    ordered = r.MLPProblem(problem.mlp, problem.X, problem.Y, 3, shuffle=False)
    assert np.array_equal(ordered.draw_noise(4, 0), [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 2]])
    assert np.array_equal(problem.draw_noise(7, 5), batches)  # replayable


OPTIMIZERS = {
    "sgd-momentum": r.SGD(lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": r.Adam(lr=0.01),
    "fame-full": r.FAME(lr=0.01, variant="full"),
    "sam": r.SAM(r.SGD(lr=0.1), rho=0.05),
    "stable-asam": r.StableSAM(r.SGD(lr=0.1, momentum=0.9), rho=0.05, ascent="adaptive"),
    "ema": r.EMA(r.Adam(lr=0.01), decay=0.9),
    "sema-epoch": r.SwitchEMA(r.SAM(r.SGD(lr=0.1, momentum=0.9)), decay=0.8),
    "sema-reset": r.SwitchEMA(r.FAME(lr=0.01), decay=0.8, on_switch="reset", start="zeros"),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("activation,loss", [("tanh", "xent"), ("relu", "mse")])
def test_train_on_mlp_equals_hand_stepping(name, activation, loss):
    """The jitted loop on the MLP runs the same kernels in the same order as the step
    API with the problem's oracle (bitwise), with the problem's epochs."""
    problem, w0, _ = _problem(11, (2, 4, 3, 2), activation, loss, 10, batch_size=3)
    opt = OPTIMIZERS[name]
    rec = r.train(problem, opt, w0=w0, epochs=4, seed=2, record_params=True)
    assert rec.steps == 4 * problem.steps_per_epoch
    params, losses, norms, evals, _ = hand_run(problem, opt, w0, rec.steps,
                                               steps_per_epoch=problem.steps_per_epoch, seed=2)
    assert np.array_equal(rec.params, params)
    assert np.array_equal(rec.losses, losses)
    assert np.array_equal(rec.grad_norms, norms)
    assert rec.grad_evals == evals


def test_switch_ema_switches_at_data_epoch_ends():
    """With the MLP's epochs, right after every epoch end the iterate IS the EMA."""
    problem, w0, _ = _problem(4, (2, 3, 2), "tanh", "xent", 9, batch_size=2)
    rec = r.train(problem, r.SwitchEMA(r.SGD(lr=0.1), decay=0.5), w0=w0, epochs=3, seed=1,
                  record_params=True)
    spe = problem.steps_per_epoch
    for n in range(1, rec.steps + 1):
        if n % spe == 0:
            assert np.array_equal(rec.params[n], rec.averages[n])
        else:
            assert not np.array_equal(rec.params[n], rec.averages[n])


def test_teacher_weights_give_zero_loss():
    """teacher_student with noise 0: the teacher's own weights fit exactly (loss 0.0,
    gradient 0.0): the targets come from the same forward kernel."""
    ds = data.teacher_student(20, sizes=(3, 5, 2), activation="tanh", seed=4)
    problem = r.MLPProblem(r.MLP((3, 5, 2), activation="tanh"), ds.X, ds.Y, batch_size=5)
    loss, g = problem.loss_and_grad(ds.info["teacher_w"])
    assert loss == 0.0 and not np.any(g)


def test_init_schemes():
    mlp = r.MLP((4, 8, 3))
    w = mlp.init(7)
    assert np.array_equal(w, mlp.init(7)) and not np.array_equal(w, mlp.init(8))
    (W1, b1), (W2, b2) = mlp.unravel(w)
    assert np.max(np.abs(W1)) <= 1 / 2 and np.max(np.abs(b1)) <= 1 / 2  # 1/sqrt(4)
    assert np.max(np.abs(W2)) <= 1 / math.sqrt(8)
    rng = np.random.Generator(np.random.PCG64(7))
    assert np.array_equal(W1.ravel(), rng.uniform(-0.5, 0.5, size=32))  # documented draw order
    (G1, c1), (G2, c2) = mlp.unravel(mlp.init(7, scheme="glorot"))
    assert not np.any(c1) and not np.any(c2) and np.max(np.abs(G1)) <= math.sqrt(6 / 12)
    wide = r.MLP((400, 300, 1))
    (H1, d1), _ = wide.unravel(wide.init(0, scheme="he"))
    # std sqrt(2/400); the sample std of 120000 normals is within 1% (10 standard errors)
    assert abs(np.std(H1) / math.sqrt(2 / 400) - 1) < 0.01 and not np.any(d1)


def test_inputs_are_not_mutated():
    problem, w, v = _problem(5, (2, 3, 2), "tanh", "xent", 6, batch_size=2)
    X, Y = np.random.default_rng(0).standard_normal((6, 2)), problem.Y.copy()
    Xc, wc, vc = X.copy(), w.copy(), v.copy()
    p2 = r.MLPProblem(problem.mlp, X, np.array(Y), batch_size=2)
    X[0, 0] = 99.0  # the problem holds its own read-only copy
    assert p2.X[0, 0] == Xc[0, 0] and not p2.X.flags.writeable
    p2.loss_and_grad(w), p2.hvp(w, v), p2.grad_fn(np.array([0, 1]))(w)
    r.train(p2, r.SGD(lr=0.1), w0=w, epochs=1)
    assert np.array_equal(w, wc) and np.array_equal(v, vc)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(sizes=(2,)), ValueError, "sizes"),
    (dict(sizes=(2, 0, 1)), ValueError, r"sizes\[1\]"),
    (dict(sizes="21"), TypeError, "sizes"),
    (dict(sizes=(2, 1.5)), TypeError, r"sizes\[1\]"),
    (dict(sizes=(2, 3), activation="sigmoid"), ValueError, "activation"),
    (dict(sizes=(2, 3), loss="hinge"), ValueError, "loss"),
    (dict(sizes=(2, 1), loss="xent"), ValueError, "xent"),
])
def test_mlp_rejects_bad_architecture(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        r.MLP(**kwargs)


def test_problem_rejects_bad_data():
    mlp = r.MLP((2, 3, 2), loss="xent")
    X, Y = np.zeros((4, 2)), np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="X must have shape"):
        r.MLPProblem(mlp, np.zeros((4, 3)), Y, 2)
    with pytest.raises(ValueError, match="Y must have shape"):
        r.MLPProblem(mlp, X, Y[:3], 2)
    with pytest.raises(ValueError, match="Y must have shape"):
        r.MLPProblem(mlp, X, np.zeros((4, 3)), 2)
    with pytest.raises(ValueError, match="X must have at least one element"):
        r.MLPProblem(mlp, np.zeros((0, 2)), np.zeros((0, 2)), 1)
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 4\]"):
        r.MLPProblem(mlp, X, Y, 5)
    with pytest.raises(ValueError, match="batch_size"):
        r.MLPProblem(mlp, X, Y, 0)
    with pytest.raises(ValueError, match="Y must be >= 0"):
        r.MLPProblem(mlp, X, -Y, 2)
    with pytest.raises(TypeError, match="X must have dtype float64"):
        r.MLPProblem(mlp, X.astype(np.float32), Y, 2)
    with pytest.raises(ValueError, match="X must be finite"):
        r.MLPProblem(mlp, np.full((4, 2), np.nan), Y, 2)
    with pytest.raises(TypeError, match="mlp must be an MLP"):
        r.MLPProblem("mlp", X, Y, 2)
    problem = r.MLPProblem(mlp, X, Y, 2)
    w = mlp.init(0)
    with pytest.raises(ValueError, match=r"batch indices must be in \[0, 3\]"):
        problem.grad_fn(np.array([0, 4]))
    with pytest.raises(TypeError, match="batch must be a 1-D integer"):
        problem.grad_fn(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="w must have length"):
        problem.loss(np.zeros(3))
    with pytest.raises(ValueError, match="v must have length"):
        problem.hvp(w, np.zeros(3))
    with pytest.raises(ValueError, match="steps_per_epoch must equal the problem's"):
        r.train(problem, r.SGD(lr=0.1), w0=w, epochs=2, steps_per_epoch=3)
    with pytest.raises(ValueError, match="accuracy needs a classification"):
        r.MLPProblem(r.MLP((2, 1)), X, np.zeros((4, 1)), 2).accuracy(np.zeros(3))


# ------------------------------------------------------------------- training quality
# The bar: the two spirals with 1.5 turns (200 points, no noise). The best LINEAR
# classifier reaches 70% training accuracy there (test_linear_baseline_on_spirals), so
# the bar of >= 99% can only be met by a network that learned the nonlinear boundary.
# Budget: 400 epochs of 10 batches of 20 (4000 steps), each optimizer with one standard
# setting (no per-optimizer tuning beyond the usual lr of its family).
# These runs take 0.05-0.5 s compiled but minutes as plain Python; with NUMBA_DISABLE_JIT=1
# they are skipped: the compiled loop equals its Python reading bit for bit (test_jit.py,
# including whole MLP runs), so rerunning them uncompiled would add time, not information.
needs_jit = pytest.mark.skipif(JIT_DISABLED, reason="4000-step trainings; the compiled "
                               "loop is checked bitwise against plain Python in test_jit.py")

SPIRALS = data.two_spirals(200, turns=1.5, seed=0)
NET = r.MLP((2, 32, 32, 2), activation="tanh", loss="xent")
SPIRAL_PROBLEM = r.MLPProblem(NET, SPIRALS.X, SPIRALS.Y, batch_size=20)
_SGD = r.SGD(lr=0.1, momentum=0.9)
TRAINED = {
    "sgd-momentum": _SGD,
    "sgd-nesterov": r.SGD(lr=0.1, momentum=0.9, nesterov=True),
    "adam": r.Adam(lr=0.01),
    "fame-official": r.FAME(lr=0.01),
    "fame-full": r.FAME(lr=0.01, variant="full"),
    "sam": r.SAM(_SGD, rho=0.05),
    "stable-sam": r.StableSAM(_SGD, rho=0.05),
    "ema": r.EMA(_SGD, decay=0.99),
    "switch-ema": r.SwitchEMA(_SGD, decay=0.9),
}


@needs_jit
@pytest.mark.parametrize("turns,accuracy", [(1.5, 0.70), (1.0, 0.775)])
def test_linear_baseline_on_spirals(turns, accuracy):
    """Logistic regression (an MLP without hidden layer) trained to a stationary point
    (full-batch gradient norm < 1e-10) on 200 spiral points: 70% correct for 1.5 turns
    (the bar's data set), 77.5% for 1 turn (the README's example)."""
    spirals = data.two_spirals(200, turns=turns, seed=0)
    linear = r.MLP((2, 2), loss="xent")
    problem = r.MLPProblem(linear, spirals.X, spirals.Y, batch_size=200)
    rec = r.train(problem, r.SGD(lr=1.0, momentum=0.9), w0=linear.init(0), steps=5000)
    assert np.linalg.norm(problem.grad(rec.w)) < 1e-10
    assert problem.accuracy(rec.w) == accuracy


@needs_jit
@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINED))
def test_every_optimizer_learns_the_spirals(name):
    rec = r.train(SPIRAL_PROBLEM, TRAINED[name], w0=NET.init(0), epochs=400, seed=0)
    assert SPIRAL_PROBLEM.accuracy(rec.w) >= 0.99
    if rec.average is not None:
        assert SPIRAL_PROBLEM.accuracy(rec.average) >= 0.99


@needs_jit
@pytest.mark.slow
def test_student_fits_the_teacher():
    """Realizable regression: a student of the teacher's architecture, trained with Adam,
    explains >= 99.9% of the target variance (R^2) after 300 epochs."""
    ds = data.teacher_student(256, sizes=(2, 16, 1), seed=1)
    problem = r.MLPProblem(r.MLP((2, 16, 1)), ds.X, ds.Y, batch_size=32)
    rec = r.train(problem, r.Adam(lr=0.01), w0=problem.mlp.init(1), epochs=300, seed=0)
    r2 = 1.0 - problem.loss(rec.w) / np.var(ds.Y)
    assert r2 >= 0.999


# ------------------------------------------------------------------ landscape on the MLP


def _dense_hessian(problem, w):
    """H column by column from the exact HVP, symmetrized (its asymmetry is rounding)."""
    H = np.array([problem.hvp(w, e) for e in np.eye(problem.dim)]).T
    return 0.5 * (H + H.T)


@pytest.mark.parametrize("activation,loss", [("tanh", "xent"), ("relu", "mse")])
def test_landscape_measures_on_the_mlp_match_the_dense_hessian(activation, loss):
    """Sharpness (Lanczos, both ends of the spectrum) and the Hutchinson trace, driven
    only by problem.hvp, agree with the eigenvalues and trace of the Hessian assembled
    from the same HVPs (an MLP is not a quadratic, so this is the test that the
    protocol works beyond the closed forms)."""
    from refimpl import landscape

    problem, w, _ = _problem(21, (2, 6, 5, 3 if loss == "xent" else 1), activation, loss, 16)
    H = _dense_hessian(problem, w)
    eig = np.linalg.eigvalsh(H)
    top = landscape.top_eigenvalue(problem, w, tol=1e-10)
    bottom = landscape.top_eigenvalue(problem, w, which="SA", tol=1e-10)
    scale = np.max(np.abs(eig))
    # Kato-Temple: eigenvalue error <= residual^2 / gap; with tol 1e-10 this is far
    # below the 1e-9 relative allowance, which also covers the dense solver's rounding
    assert abs(top.value - eig[-1]) <= 1e-9 * scale
    assert abs(bottom.value - eig[0]) <= 1e-9 * scale
    assert np.allclose(np.abs(top.vector @ np.linalg.eigh(H)[1][:, -1]), 1.0, atol=1e-6)
    tr = landscape.hessian_trace(problem, w, samples=400, seed=3)
    assert abs(tr.value - np.trace(H)) <= 5 * tr.standard_error


def test_flatness_on_the_mlp_is_quadratic_for_small_radii():
    """For a smooth loss, E[L(w + delta)] - L(w) = radius^2 tr(H) / (2 d) + O(radius^4)
    with antithetic pairs (the odd orders cancel): the ratio to the quadratic prediction
    tends to 1 as the radius shrinks, within the estimator's standard error."""
    from refimpl import landscape

    problem, w, _ = _problem(5, (2, 5, 2), "tanh", "xent", 12)
    H = _dense_hessian(problem, w)
    for radius in (1e-2, 1e-3):
        est = landscape.flatness(problem, w, radius=radius, samples=2000, seed=1)
        predicted = radius ** 2 * np.trace(H) / (2 * problem.dim)
        assert abs(est.value - predicted) <= 5 * est.standard_error + 1e-3 * abs(predicted)


# -- the softmax cross-entropy head at any scale, and with unnormalised targets -----------

def _linear_xent(bias, y, x=(0.0,)):
    """A linear softmax model (no hidden layer) whose logits are ``bias + W x`` with W = 0:
    the logits are the bias exactly."""
    n = len(bias)
    mlp = r.MLP((len(x), n), loss="xent")
    w = np.concatenate([np.zeros(n * len(x)), np.array(bias, dtype=float)])
    problem = r.MLPProblem(mlp, np.array([x], dtype=float), np.array([y], dtype=float),
                           batch_size=1)
    return problem, w


@pytest.mark.parametrize("scale", [0.0, 1.0, 1e3, 1e15, 1e16, 1e300])
def test_cross_entropy_of_equal_logits_is_log_n_at_any_scale(scale):
    """n equal logits: the loss is log n exactly (m - f_j = 0, s = n). The reproduction:
    (m + log s) - f gave 0.0 at 1e16 and 0.75 at 1e15 for log 2 = 0.693."""
    for n in (2, 3, 7):
        problem, w = _linear_xent([scale] * n, [1.0] + [0.0] * (n - 1))
        assert problem.loss(w) == math.log(n)


@pytest.mark.parametrize("top", [0.0, 1e3, 1e15])
@pytest.mark.parametrize("gap", [2.0, 0.5, 30.0])
def test_cross_entropy_of_two_logits_is_the_softplus_of_their_gap(top, gap):
    """Logits (top, top - gap) with the target on the second: the loss is
    gap + log(1 + e^-gap), evaluated here with log1p; within 2 ulps."""
    problem, w = _linear_xent([top, top - gap], [0.0, 1.0])
    exact_gap = top - (top - gap)  # the gap the model really sees (exact at these scales)
    expected = exact_gap + math.log1p(math.exp(-exact_gap))
    assert abs(problem.loss(w) - expected) <= 2 * np.spacing(expected)


def test_cross_entropy_gradient_with_unnormalised_targets_is_p_sum_y_minus_y():
    """Targets that do not sum to 1 (class weights): dL/df = softmax(f) sum(y) - y, so the
    bias gradient is that and the weight gradient is it times x. softmax is computed here
    with math.fsum; within 4 ulps of the largest entry. The head written as p - y (right
    only for rows summing to 1) is off by 1.5 p here."""
    bias, y, x = [0.3, -0.2, 0.1], [0.5, 2.0, 0.0], (1.5, -2.0)
    problem, w = _linear_xent(bias, y, x)
    e = [math.exp(b - max(bias)) for b in bias]
    p = np.array([v / math.fsum(e) for v in e])
    g_bias = p * math.fsum(y) - np.array(y)
    expected = np.concatenate([np.outer(g_bias, x).ravel(), g_bias])
    got = problem.grad(w)
    tol = 4 * np.spacing(np.abs(expected).max())
    assert np.all(np.abs(got - expected) <= tol)
    wrong = np.concatenate([np.outer(p - np.array(y), x).ravel(), p - np.array(y)])
    assert np.abs(wrong - expected).max() > 1e6 * tol  # the test tells the two apart


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_public_evaluations_raise_on_overflow_not_return_nan(activation):
    """The non-finite policy: w = 1e300 is finite, but a relu network's outputs overflow
    (tanh saturates, so only its loss may overflow). loss, grad, hvp and forward raise
    FloatingPointError or return finite values; never a silent inf or NaN."""
    mlp = r.MLP((2, 3, 1), activation=activation)
    problem = r.MLPProblem(mlp, np.ones((4, 2)), np.zeros((4, 1)), batch_size=2)
    w = np.full(mlp.n_params, 1e300)
    for call in (lambda: problem.loss(w), lambda: problem.grad(w),
                 lambda: problem.hvp(w, np.ones(mlp.n_params)),
                 lambda: mlp.forward(w, np.ones((2, 2)))):
        try:
            out = call()
        except FloatingPointError as err:
            assert "overflowed float64" in str(err)
        else:
            assert np.all(np.isfinite(out))
    if activation == "relu":
        with pytest.raises(FloatingPointError, match="MLP.forward overflowed"):
            mlp.forward(w, np.ones((2, 2)))
