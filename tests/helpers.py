"""Test helpers shared by several files (not a test module)."""

from __future__ import annotations

import numpy as np


def hand_run(problem, optimizer, w0, steps, *, steps_per_epoch=None, seed=0):
    """Step ``optimizer`` by hand through the public API, as train()'s docstring says.

    Returns (params (steps+1, d), losses (steps,), grad_norms (steps,), grad_evals,
    final state)."""
    state = optimizer.init(w0)
    w = w0
    noise = problem.draw_noise(steps, seed)
    params, losses, norms, evals = [w0.copy()], [], [], 0
    for t in range(steps):
        grad_fn = problem.grad_fn(None if noise is None else noise[t])
        epoch_end = steps_per_epoch is not None and (t + 1) % steps_per_epoch == 0
        w, state, info = optimizer.step(w, state, grad_fn, epoch_end=epoch_end)
        params.append(w)
        losses.append(info.loss)
        norms.append(info.grad_norm)
        evals += info.grad_evals
    return np.array(params), np.array(losses), np.array(norms), evals, state
