"""Test problems with exact gradients: quadratics and the noisy quadratic model (SPEC 9)."""

from refimpl.problems.quadratic import NoisyQuadratic, Quadratic

__all__ = ["Quadratic", "NoisyQuadratic"]
