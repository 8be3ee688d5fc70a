"""A small multi-layer perceptron with hand-written forward, backward and
Hessian-vector passes (proofs/sources.md#problems).

Architecture ``sizes = (n_0, n_1, ..., n_L)``: layer ``l = 1..L`` computes

    z_l = W_l a_{l-1} + b_l,      a_l = sigma(z_l) for l < L,      output f = z_L

with ``sigma`` = tanh or relu and ``a_0 = x``. The loss of a mini-batch of B examples
(PyTorch's conventions, so ``torch.nn.MSELoss`` / ``CrossEntropyLoss`` give the same
values):

* ``"mse"``:  ``(1 / (B n_L)) sum_b sum_j (f_j - y_j)^2``   (mean over batch and outputs)
* ``"xent"``: ``(1 / B) sum_b sum_j y_j (logsumexp(f) - f_j)``  (softmax cross-entropy;
  ``y`` is a one-hot row or any non-negative class weights; each term computed as
  ``(max(f) - f_j) + log sum exp(f - max(f))``, accurate to a few ulps at any scale)

**The flat parameter vector.** ``w`` holds the layers in order, each as ``W_l``
(shape (n_l, n_{l-1}), row-major, PyTorch's ``nn.Linear.weight`` layout) followed by
``b_l`` (n_l,). :meth:`MLP.unravel` and :meth:`MLP.ravel` convert; ``MLP.n_params``
is the length.

**Order of operations (bit reproducibility).** Every sum is a plain loop in a fixed
order, no BLAS, so results do not depend on the machine or the library:
``z_l[j] = b_l[j] + W_l[j,0] a[0] + W_l[j,1] a[1] + ...`` (start from the bias, add the
terms in index order); weight gradients sum over the batch in example order. The loops
are arranged with the batch index innermost where no sum runs over it, so LLVM can
vectorise them without reassociating any sum (fastmath stays off). Activations are
stored feature-major: ``A[unit, example]``.

**Backward pass** (``delta_l = dLoss/dz_l``):
``delta_L`` from the loss head (mse: ``(2 / (B n_L)) (f - y)``; xent:
``(softmax(f) * sum(y) - y) / B``), then ``dW_l = delta_l a_{l-1}^T``,
``db_l = sum_b delta_l``, ``delta_{l-1} = sigma'(z_{l-1}) * (W_l^T delta_l)``, with
``tanh' = 1 - a^2`` and ``relu'(z) = 1 if z > 0 else 0`` (0 at z = 0, as PyTorch).

**Hessian-vector product** (Pearlmutter 1994, the R-operator ``R{.} = d/dt (.)(w + t v)``
at t = 0): a forward pass of ``R{z_l} = V_l a_{l-1} + W_l R{a_{l-1}} + v_b``,
``R{a_l} = sigma'(z_l) R{z_l}``, the loss head's second derivative
(mse: ``R{delta_L} = (2 / (B n_L)) R{f}``; xent: ``sum(y) p (R{f} - p . R{f}) / B``), and
a backward pass of ``R{dW_l} = R{delta_l} a_{l-1}^T + delta_l R{a_{l-1}}^T``,
``R{delta_{l-1}} = sigma''(z) R{z} (W^T delta) + sigma'(z) (V^T delta + W^T R{delta})``
with ``tanh'' = -2 a (1 - a^2)`` and ``relu'' = 0``. This is the EXACT Hessian times v
(no finite difference): its only error is floating-point rounding, of the same order as
the gradient's (a few ulps per operation, amplified by the usual condition numbers).
For relu the Hessian is the piecewise one (kinks ignored), as in every autodiff library.

Initialisation (:meth:`MLP.init`) is seeded and documented there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refimpl import _validate
from refimpl._jit import kernel
from refimpl._tanh import tanh

ACTIVATIONS = ("tanh", "relu")
LOSSES = ("mse", "xent")
INITS = ("pytorch", "glorot", "he")
TANH, RELU = 0, 1
MSE, XENT = 0, 1


# ----------------------------------------------------------------------------- kernels
# ``net`` is an int64 array (activation code, loss code, n_0, n_1, ..., n_L); ``X`` is
# (n, n_0) and ``Y`` (n, n_L) batch-major data; ``idx`` (B,) selects the mini-batch.
# Work arrays Z, A, D are (sum(sizes), B): rows offset(l) .. offset(l) + n_l - 1 hold
# layer l (layer 0 = the inputs).


@kernel
def mlp_shape(net):
    """(rows, widest): the number of units over all layers (the rows of the work arrays
    Z, A, D) and the widest layer."""
    rows = 0
    widest = 0
    for layer in range(2, net.shape[0]):
        rows += net[layer]
        widest = max(widest, net[layer])
    return rows, widest


@kernel
def softmax_column(F, b, prob):
    """Write ``prob = softmax(F[:, b])`` (exponentials shifted by the column's maximum
    ``m``, so none overflows) and return ``(m, log s)`` with ``s = sum_j exp(F[j, b] - m)``
    in [1, n], so that ``logsumexp(F[:, b]) = m + log s``.

    The loss uses ``logsumexp - f_j = (m - f_j) + log s``: ``m - f_j`` is exact when f_j
    is within a factor 2 of m (Sterbenz) and one rounding otherwise, and ``log s`` is at
    most log n, so the term is accurate to a few ulps. Computing ``m + log s`` first and
    then subtracting f_j loses ``log s`` to the rounding of m: two equal logits of 1e16
    would give 0 instead of log 2."""
    n = F.shape[0]
    m = F[0, b]
    for j in range(1, n):
        if F[j, b] > m:
            m = F[j, b]
    s = 0.0
    for j in range(n):
        s += math.exp(F[j, b] - m)
    for j in range(n):
        prob[j] = math.exp(F[j, b] - m) / s
    return m, math.log(s)


@kernel
def mlp_forward(net, w, X, idx, Z, A):
    """Forward pass of the batch ``X[idx]``: pre-activations into Z, activations into A
    (the output rows of A equal Z: no activation on the last layer)."""
    act = net[0]
    L = net.shape[0] - 3
    B = idx.shape[0]
    for k in range(net[2]):
        for b in range(B):
            A[k, b] = X[idx[b], k]
    z = np.empty(B)  # one unit's pre-activations over the batch, kept hot in cache
    p = 0  # offset of W_l in w
    r_in = 0  # first row of layer l-1 in A
    for layer in range(L):
        n_i = net[2 + layer]
        n_o = net[3 + layer]
        r_out = r_in + n_i
        p_bias = p + n_o * n_i
        hidden = layer < L - 1
        for j in range(n_o):
            for b in range(B):
                z[b] = w[p_bias + j]
            for k in range(n_i):
                w_jk = w[p + j * n_i + k]
                for b in range(B):
                    z[b] += w_jk * A[r_in + k, b]
            row = r_out + j
            for b in range(B):
                Z[row, b] = z[b]
            if not hidden:
                for b in range(B):
                    A[row, b] = z[b]
            elif act == TANH:  # refimpl's own tanh: the same bits everywhere, vectorised
                for b in range(B):
                    A[row, b] = tanh(z[b])
            else:
                for b in range(B):
                    A[row, b] = z[b] if z[b] > 0.0 else 0.0
        p = p_bias + n_o
        r_in = r_out


@kernel
def mlp_head(loss_kind, F, Y, idx, D):
    """Loss of the outputs ``F`` (n_L, B) against ``Y[idx]``; writes dLoss/dF into D."""
    n_o, B = F.shape
    total = 0.0
    if loss_kind == MSE:
        scale = 2.0 / (B * n_o)
        for b in range(B):
            for j in range(n_o):
                r = F[j, b] - Y[idx[b], j]
                total += r * r
                D[j, b] = scale * r
        return total / (B * n_o)
    prob = np.empty(n_o)
    for b in range(B):
        m, log_s = softmax_column(F, b, prob)
        y_sum = 0.0
        for j in range(n_o):
            y = Y[idx[b], j]
            total += y * ((m - F[j, b]) + log_s)
            y_sum += y
        for j in range(n_o):
            D[j, b] = (prob[j] * y_sum - Y[idx[b], j]) / B
    return total / B


@kernel
def mlp_backward(net, w, Z, A, D, AT, g):
    """Backward pass: D holds dLoss/dz of the output rows on entry and receives the
    hidden rows; writes the gradient into g. AT is a (B, max(sizes)) work array."""
    act = net[0]
    L = net.shape[0] - 3
    B = Z.shape[1]
    widest = AT.shape[1]
    g_row = np.empty(widest)  # dLoss/dW_l[j, :] while it is summed over the batch
    d_in = np.empty(B)  # W_l^T delta_l for one input unit, over the batch
    p = g.shape[0]
    r_out = Z.shape[0]
    for layer in range(L - 1, -1, -1):
        n_i = net[2 + layer]
        n_o = net[3 + layer]
        r_out -= n_o
        r_in = r_out - n_i
        p -= n_o * n_i + n_o
        p_bias = p + n_o * n_i
        for b in range(B):  # a_{l-1} batch-major, so the k loops below are contiguous
            for k in range(n_i):
                AT[b, k] = A[r_in + k, b]
        # dW[j, k] = sum_b delta[j, b] a[k, b] and db[j] = sum_b delta[j, b], b in order
        for j in range(n_o):
            for k in range(n_i):
                g_row[k] = 0.0
            g_b = 0.0
            for b in range(B):
                d = D[r_out + j, b]
                g_b += d
                for k in range(n_i):
                    g_row[k] += d * AT[b, k]
            for k in range(n_i):
                g[p + j * n_i + k] = g_row[k]
            g[p_bias + j] = g_b
        if layer == 0:
            break
        # delta_{l-1}[k, b] = sigma'(z[k, b]) * sum_j W[j, k] delta[j, b], j in order
        for k in range(n_i):
            for b in range(B):
                d_in[b] = 0.0
            for j in range(n_o):
                w_jk = w[p + j * n_i + k]
                for b in range(B):
                    d_in[b] += w_jk * D[r_out + j, b]
            row = r_in + k
            for b in range(B):
                if act == TANH:
                    a = A[row, b]
                    D[row, b] = d_in[b] * (1.0 - a * a)
                elif Z[row, b] > 0.0:
                    D[row, b] = d_in[b]
                else:
                    D[row, b] = 0.0


@kernel
def mlp_loss_grad(net, w, X, Y, idx, g):
    """Mini-batch loss of ``X[idx], Y[idx]`` at w; writes its gradient into g."""
    rows, widest = mlp_shape(net)
    B = idx.shape[0]
    Z = np.zeros((rows, B))
    A = np.zeros((rows, B))
    D = np.zeros((rows, B))
    AT = np.empty((B, widest))
    mlp_forward(net, w, X, idx, Z, A)
    n_out = net[net.shape[0] - 1]
    loss = mlp_head(net[1], A[rows - n_out:], Y, idx, D[rows - n_out:])
    mlp_backward(net, w, Z, A, D, AT, g)
    return loss


@kernel
def mlp_hvp(net, w, v, X, Y, idx, hv):
    """Exact Hessian-vector product of the mini-batch loss at w with v (R-operator);
    writes H v into hv and returns the loss."""
    act = net[0]
    L = net.shape[0] - 3
    rows, widest = mlp_shape(net)
    B = idx.shape[0]
    Z = np.zeros((rows, B))
    A = np.zeros((rows, B))
    D = np.zeros((rows, B))
    RZ = np.zeros((rows, B))
    RA = np.zeros((rows, B))  # input rows stay 0: the data do not depend on w
    RD = np.zeros((rows, B))
    dA = np.zeros((widest, B))
    RdA = np.zeros((widest, B))
    mlp_forward(net, w, X, idx, Z, A)
    n_out = net[net.shape[0] - 1]
    loss = mlp_head(net[1], A[rows - n_out:], Y, idx, D[rows - n_out:])

    # R-forward: R{z_l} = v_b + V_l a_{l-1} + W_l R{a_{l-1}}, R{a_l} = sigma'(z_l) R{z_l}
    p = 0
    r_in = 0
    for layer in range(L):
        n_i = net[2 + layer]
        n_o = net[3 + layer]
        r_out = r_in + n_i
        p_bias = p + n_o * n_i
        for j in range(n_o):
            row = r_out + j
            for b in range(B):
                RZ[row, b] = v[p_bias + j]
            for k in range(n_i):
                v_jk = v[p + j * n_i + k]
                for b in range(B):
                    RZ[row, b] += v_jk * A[r_in + k, b]
            for k in range(n_i):
                w_jk = w[p + j * n_i + k]
                for b in range(B):
                    RZ[row, b] += w_jk * RA[r_in + k, b]
            for b in range(B):
                if layer == L - 1:
                    RA[row, b] = RZ[row, b]
                elif act == TANH:
                    a = A[row, b]
                    RA[row, b] = (1.0 - a * a) * RZ[row, b]
                elif Z[row, b] > 0.0:
                    RA[row, b] = RZ[row, b]
                else:
                    RA[row, b] = 0.0
        p = p_bias + n_o
        r_in = r_out

    # R of the loss head: R{delta_L} = (d^2 loss / df^2) R{f}
    r0 = rows - n_out
    if net[1] == MSE:
        scale = 2.0 / (B * n_out)
        for j in range(n_out):
            for b in range(B):
                RD[r0 + j, b] = scale * RZ[r0 + j, b]
    else:
        prob = np.empty(n_out)
        for b in range(B):
            softmax_column(Z[r0:], b, prob)
            y_sum = 0.0
            p_dot = 0.0
            for j in range(n_out):
                y_sum += Y[idx[b], j]
                p_dot += prob[j] * RZ[r0 + j, b]
            for j in range(n_out):
                RD[r0 + j, b] = y_sum * prob[j] * (RZ[r0 + j, b] - p_dot) / B

    # R-backward
    p = hv.shape[0]
    r_out = rows
    for layer in range(L - 1, -1, -1):
        n_i = net[2 + layer]
        n_o = net[3 + layer]
        r_out -= n_o
        r_in = r_out - n_i
        p -= n_o * n_i + n_o
        p_bias = p + n_o * n_i
        # R{dW} = R{delta} a^T + delta R{a}^T, R{db} = sum_b R{delta}
        for j in range(n_o):
            hv_b = 0.0
            for k in range(n_i):
                acc = 0.0
                for b in range(B):
                    acc += RD[r_out + j, b] * A[r_in + k, b] + D[r_out + j, b] * RA[r_in + k, b]
                hv[p + j * n_i + k] = acc
            for b in range(B):
                hv_b += RD[r_out + j, b]
            hv[p_bias + j] = hv_b
        if layer == 0:
            break
        # W^T delta and R{W^T delta} = V^T delta + W^T R{delta}
        for k in range(n_i):
            for b in range(B):
                dA[k, b] = 0.0
                RdA[k, b] = 0.0
        for j in range(n_o):
            for k in range(n_i):
                w_jk = w[p + j * n_i + k]
                v_jk = v[p + j * n_i + k]
                for b in range(B):
                    dA[k, b] += w_jk * D[r_out + j, b]
                    RdA[k, b] += v_jk * D[r_out + j, b] + w_jk * RD[r_out + j, b]
        for k in range(n_i):
            row = r_in + k
            for b in range(B):
                if act == TANH:
                    a = A[row, b]
                    slope = 1.0 - a * a
                    D[row, b] = dA[k, b] * slope
                    RD[row, b] = -2.0 * a * slope * RZ[row, b] * dA[k, b] + slope * RdA[k, b]
                elif Z[row, b] > 0.0:
                    D[row, b] = dA[k, b]
                    RD[row, b] = RdA[k, b]
                else:
                    D[row, b] = 0.0
                    RD[row, b] = 0.0
    return loss


# ------------------------------------------------------------------------ architecture


@dataclass(frozen=True, eq=False)
class MLP:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of ints >= 1, at least two (inputs and outputs), e.g. (2, 64, 64, 1).
    activation : "tanh" (default) or "relu", on every hidden layer (none on the output).
    loss : "mse" (regression, default) or "xent" (softmax cross-entropy; needs
        ``sizes[-1] >= 2`` classes).
    """

    sizes: tuple
    activation: str = "tanh"
    loss: str = "mse"

    def __post_init__(self):
        sizes = self.sizes
        if (isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__")
                or (isinstance(sizes, np.ndarray) and sizes.ndim != 1)):
            raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}")
        sizes = tuple(_validate.integer(f"sizes[{i}]", n, lo=1) for i, n in enumerate(sizes))
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least two entries (inputs, outputs), got {sizes}")
        _validate.choice("activation", self.activation, ACTIVATIONS)
        _validate.choice("loss", self.loss, LOSSES)
        if self.loss == "xent" and sizes[-1] < 2:
            raise ValueError(f"loss='xent' needs at least 2 outputs (classes), got sizes[-1] = {sizes[-1]}")
        n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        _validate.allocation("sizes", sizes, 8 * 8 * n_params,
                             f"a network of {n_params} parameters (its weights, gradient "
                             "and an optimizer's buffers)")
        object.__setattr__(self, "sizes", sizes)
        net = np.array([ACTIVATIONS.index(self.activation), LOSSES.index(self.loss), *sizes],
                       dtype=np.int64)
        net.flags.writeable = False
        object.__setattr__(self, "net", net)

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector: sum of n_l * n_{l-1} + n_l."""
        return sum(o * i + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))

    def shapes(self) -> list[tuple[tuple[int, int], tuple[int]]]:
        """``[((n_1, n_0), (n_1,)), ((n_2, n_1), (n_2,)), ...]``: weight and bias shapes."""
        return [((o, i), (o,)) for i, o in zip(self.sizes[:-1], self.sizes[1:])]

    def blocks(self) -> list[tuple[slice, slice]]:
        """Per layer, the slices of ``w`` holding W_l and b_l."""
        out, p = [], 0
        for (o, i), _ in self.shapes():
            out.append((slice(p, p + o * i), slice(p + o * i, p + o * i + o)))
            p += o * i + o
        return out

    def unravel(self, w) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split a flat ``w`` into ``[(W_1, b_1), ..., (W_L, b_L)]`` (copies)."""
        w = _validate.vector("w", w, size=self.n_params)
        return [(w[sw].reshape(shape_w).copy(), w[sb].copy())
                for (sw, sb), (shape_w, _) in zip(self.blocks(), self.shapes())]

    def ravel(self, layers) -> np.ndarray:
        """Inverse of :meth:`unravel`: concatenate ``[(W_l, b_l), ...]`` into a flat w."""
        shapes = self.shapes()
        if not isinstance(layers, (list, tuple)) or len(layers) != len(shapes):
            raise ValueError(f"layers must be a list of {len(shapes)} (W, b) pairs")
        parts = []
        for l, (pair, (shape_w, shape_b)) in enumerate(zip(layers, shapes)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"layers[{l}] must be a pair (W, b)")
            W = _validate.matrix(f"layers[{l}][0]", np.ascontiguousarray(pair[0])
                                 if isinstance(pair[0], np.ndarray) else pair[0], shape=shape_w)
            b = _validate.vector(f"layers[{l}][1]", pair[1], size=shape_b[0])
            parts += [W.ravel(), b]
        return np.concatenate(parts)

    def init(self, seed: int = 0, *, scheme: str = "pytorch") -> np.ndarray:
        """Seeded initial parameters, drawn layer by layer (W_l then b_l) from
        ``Generator(PCG64(seed))``.

        * "pytorch" (default, ``nn.Linear``'s default): W and b ~ U(-s, s), s = 1/sqrt(n_{l-1}).
        * "glorot": W ~ U(-s, s), s = sqrt(6 / (n_{l-1} + n_l)); b = 0 (suits tanh).
        * "he": W ~ N(0, 2 / n_{l-1}); b = 0 (suits relu).
        """
        seed = _validate.integer("seed", seed, lo=0)
        _validate.choice("scheme", scheme, INITS)
        rng = np.random.Generator(np.random.PCG64(seed))
        parts = []
        for (o, i), _ in self.shapes():
            if scheme == "pytorch":
                s = 1.0 / math.sqrt(i)
                parts += [rng.uniform(-s, s, size=o * i), rng.uniform(-s, s, size=o)]
            elif scheme == "glorot":
                s = math.sqrt(6.0 / (i + o))
                parts += [rng.uniform(-s, s, size=o * i), np.zeros(o)]
            else:
                parts += [rng.standard_normal(o * i) * math.sqrt(2.0 / i), np.zeros(o)]
        return np.concatenate(parts)

    def forward(self, w, X) -> np.ndarray:
        """Network outputs (logits for "xent") for the rows of X: shape (n, sizes[-1])."""
        w = _validate.vector("w", w, size=self.n_params)
        X = _validate.matrix("X", X)
        if X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have {self.sizes[0]} columns (sizes[0]), got {X.shape[1]}")
        rows, n = sum(self.sizes), X.shape[0]
        Z, A = np.zeros((rows, n)), np.zeros((rows, n))
        mlp_forward(self.net, w, X, np.arange(n, dtype=np.int64), Z, A)
        return _validate.finite_result("MLP.forward", np.ascontiguousarray(A[rows - self.sizes[-1]:].T))


# ----------------------------------------------------------------------------- problem


@dataclass(frozen=True, eq=False)
class MLPProblem:
    """An :class:`MLP` on a data set, with mini-batches of a fixed size.

    Parameters
    ----------
    mlp : the network (architecture, activation, loss).
    X : (n, sizes[0]) float64 inputs.   Y : (n, sizes[-1]) float64 targets (for "xent":
        non-negative class weights per row, normally one-hot; see ``data.one_hot``).
    batch_size : int in [1, n].
    shuffle : reshuffle the examples at every epoch (default) or take them in order.

    Mini-batches (:meth:`draw_noise`): an epoch is a permutation of the n examples
    (``Generator(PCG64(seed)).permutation(n)``, one per epoch, drawn in epoch order)
    cut into ``steps_per_epoch = n // batch_size`` batches of exactly ``batch_size``
    examples; the ``n % batch_size`` examples left over are not used in that epoch
    (PyTorch's ``drop_last=True``), so every step sees the same batch size.

    The problem protocol of :mod:`refimpl.landscape`: ``dim``, and ``loss``, ``grad``,
    ``hvp`` on the FULL data set; ``grad_fn(batch)`` is the mini-batch oracle of a step.
    """

    mlp: MLP
    X: np.ndarray
    Y: np.ndarray
    batch_size: int
    shuffle: bool = True

    def __post_init__(self):
        if not isinstance(self.mlp, MLP):
            raise TypeError(f"mlp must be an MLP, got {type(self.mlp).__name__}")
        X = _validate.matrix("X", self.X)
        Y = _validate.matrix("Y", self.Y)
        n_in, n_out = self.mlp.sizes[0], self.mlp.sizes[-1]
        if X.shape[1] != n_in:
            raise ValueError(f"X must have shape (n, {n_in}) to match sizes[0], got {X.shape}")
        if Y.shape != (X.shape[0], n_out):
            raise ValueError(f"Y must have shape ({X.shape[0]}, {n_out}) (one row per row of X, "
                             f"sizes[-1] columns), got {Y.shape}")
        if self.mlp.loss == "xent" and np.any(Y < 0.0):
            raise ValueError("Y must be >= 0 for loss='xent' (one-hot rows or class weights)")
        n = X.shape[0]
        _validate.integer("batch_size", self.batch_size, lo=1)
        if self.batch_size > n:
            raise ValueError(f"batch_size must be in [1, {n}] (the data set has {n} examples), "
                             f"got {self.batch_size}")
        _validate.flag("shuffle", self.shuffle)
        for name, a in (("X", X), ("Y", Y)):
            a = np.array(a, copy=True)
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    @property
    def dim(self) -> int:
        """The number of parameters (the network's ``n_params``)."""
        return self.mlp.n_params

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.X.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        """Mini-batches per epoch: ``n // batch_size`` (a last partial batch is dropped)."""
        return self.n // self.batch_size

    def draw_noise(self, steps: int, seed: int) -> np.ndarray:
        """The mini-batches of ``steps`` steps: an int64 array (steps, batch_size) of
        example indices (see the class docstring). Named like NoisyQuadratic's so that
        :func:`refimpl.train` and a hand-written loop treat both problems alike."""
        steps = _validate.integer("steps", steps, lo=0)
        seed = _validate.integer("seed", seed, lo=0)
        spe, B = self.steps_per_epoch, self.batch_size
        epochs = -(-steps // spe)
        _validate.allocation("steps", steps, 8 * (epochs * spe * B + steps * B),
                             "the mini-batch indices")
        rng = np.random.Generator(np.random.PCG64(seed))
        rows = []
        for _ in range(epochs):
            order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
            rows.append(order[: spe * B].reshape(spe, B))
        out = np.concatenate(rows) if rows else np.zeros((0, B), dtype=np.int64)
        return np.ascontiguousarray(out[:steps], dtype=np.int64)

    draw_batches = draw_noise

    def grad_fn(self, batch):
        """The oracle ``w -> (loss_B, g_B)`` of the mini-batch ``batch`` (indices, one row
        of :meth:`draw_noise`)."""
        idx = self._indices("batch", batch)

        def oracle(w):
            w = _validate.vector("w", w, size=self.dim)
            g = np.empty(self.dim)
            loss = mlp_loss_grad(self.mlp.net, w, self.X, self.Y, idx, g)
            return float(loss), g

        return oracle

    def loss_and_grad(self, w, batch=None):
        """Loss and gradient on the full data set (or on ``batch``)."""
        w = _validate.vector("w", w, size=self.dim)
        idx = self._all() if batch is None else self._indices("batch", batch)
        g = np.empty(self.dim)
        loss = mlp_loss_grad(self.mlp.net, w, self.X, self.Y, idx, g)
        return _validate.finite_result("MLPProblem.loss_and_grad", float(loss), g)

    def loss(self, w) -> float:
        """The full-data-set loss."""
        return self.loss_and_grad(w)[0]

    def grad(self, w) -> np.ndarray:
        """The full-data-set gradient."""
        return self.loss_and_grad(w)[1]

    def hvp(self, w, v, batch=None) -> np.ndarray:
        """Exact Hessian-vector product ``H(w) v`` of the full-data-set loss (or of the
        loss on ``batch``), by the R-operator (see the module docstring)."""
        w = _validate.vector("w", w, size=self.dim)
        v = _validate.vector("v", v, size=self.dim)
        idx = self._all() if batch is None else self._indices("batch", batch)
        hv = np.empty(self.dim)
        mlp_hvp(self.mlp.net, w, v, self.X, self.Y, idx, hv)
        return _validate.finite_result("MLPProblem.hvp", hv)

    def predict(self, w, X=None) -> np.ndarray:
        """Outputs (n, sizes[-1]) on X (default: the training inputs)."""
        return self.mlp.forward(w, self.X if X is None else X)

    def accuracy(self, w, X=None, Y=None) -> float:
        """Fraction of rows whose largest output is the largest target (classification)."""
        if self.mlp.loss != "xent":
            raise ValueError("accuracy needs a classification problem (loss='xent')")
        if (X is None) != (Y is None):
            raise ValueError("give both X and Y, or neither (the training set)")
        F = self.predict(w, X)
        Y = self.Y if Y is None else _validate.matrix("Y", Y, shape=F.shape)
        return float(np.mean(np.argmax(F, axis=1) == np.argmax(Y, axis=1)))

    def _all(self) -> np.ndarray:
        return np.arange(self.n, dtype=np.int64)

    def _indices(self, name, batch) -> np.ndarray:
        if not isinstance(batch, np.ndarray) or batch.dtype.kind not in "iu" or batch.ndim != 1:
            raise TypeError(f"{name} must be a 1-D integer numpy array of example indices")
        if batch.size == 0:
            raise ValueError(f"{name} must hold at least one index")
        if batch.min() < 0 or batch.max() >= self.n:
            raise ValueError(f"{name} indices must be in [0, {self.n - 1}]")
        return np.ascontiguousarray(batch, dtype=np.int64)
