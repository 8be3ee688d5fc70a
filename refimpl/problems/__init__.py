"""Test problems with exact gradients (proofs/sources.md#problems): quadratics, the noisy
quadratic model,
a small MLP with hand-written backprop and Hessian-vector products, and synthetic data."""

from refimpl.problems.data import Dataset, circles, one_hot, teacher_student, two_spirals
from refimpl.problems.mlp import MLP, MLPProblem
from refimpl.problems.quadratic import NoisyQuadratic, Quadratic

__all__ = ["Quadratic", "NoisyQuadratic", "MLP", "MLPProblem", "Dataset", "two_spirals",
           "circles", "teacher_student", "one_hot"]
