"""Shared test configuration: hypothesis profiles and small strategies.

Profiles (choose with HYPOTHESIS_PROFILE; CI=true selects "ci" by default):

* dev  - the default on a workstation: 60 examples per test, no deadline.
* ci   - derandomized (the same examples on every run) and deadline-free, 100 examples.
* fuzz - 2000 examples, randomized: run it when you change a kernel.

No deadline anywhere: the first call of a kernel may include numba compilation.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def finite_floats(lo=-1e3, hi=1e3):
    """Bounded floats that mix in simple special cases (0, +-1, tiny values)."""
    return st.one_of(
        st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 1e-300, -1e-300]),
        st.floats(lo, hi, allow_nan=False, allow_infinity=False),
    )


def vectors(d_min=1, d_max=6, lo=-1e3, hi=1e3):
    """1-D float64 arrays with elements from :func:`finite_floats`."""
    return st.integers(d_min, d_max).flatmap(
        lambda d: st.lists(finite_floats(lo, hi), min_size=d, max_size=d).map(
            lambda xs: np.array(xs, dtype=np.float64)))


def pytest_addoption(parser):
    parser.addoption("--claim", action="append", default=[], metavar="LABEL",
                     help="run only the tests marked @pytest.mark.claim(LABEL) (repeatable); "
                          "the labels are listed in proofs/README.md")


def pytest_collection_modifyitems(config, items):
    wanted = set(config.getoption("--claim"))
    if not wanted:
        return
    keep, drop = [], []
    for item in items:
        labels = {m.args[0] for m in item.iter_markers("claim") if m.args}
        (keep if labels & wanted else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
