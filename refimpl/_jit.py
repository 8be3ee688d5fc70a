"""The one place that imports numba and sets the jit options.

Every kernel in refimpl is decorated with :func:`kernel`. The options are fixed here so
that no module can quietly change them:

* ``cache=True``: compiled machine code is stored beside the sources (``__pycache__``),
  so only the first run on a machine pays the compilation time.
* ``fastmath=False``: fast-math lets LLVM reassociate sums and assume no NaN or inf,
  which changes IEEE results (``0 * inf`` becomes 0, sums change order). A reference
  implementation must produce the same bits as the plain-Python reading of the kernel.
* ``error_model="python"``: division by zero raises ``ZeroDivisionError`` as in Python
  instead of silently producing inf; kernels are written so that it never happens.
* no ``parallel``: parallel reductions reorder sums.

Set the environment variable ``NUMBA_DISABLE_JIT=1`` to run every kernel as ordinary
Python (numba then returns the undecorated function). The test suite passes in both
modes and checks that each compiled kernel equals its ``.py_func`` bit for bit.
"""

from __future__ import annotations

import os

import numba

#: True when numba runs kernels as plain Python (``NUMBA_DISABLE_JIT=1``).
JIT_DISABLED: bool = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

_OPTIONS = dict(cache=True, fastmath=False, nogil=True, error_model="python")

#: Every kernel defined through :func:`kernel`, by qualified name (for the tests that
#: compare compiled and pure-Python results).
KERNELS: dict[str, object] = {}


def kernel(func):
    """Compile ``func`` with refimpl's fixed numba options and register it."""
    compiled = numba.njit(**_OPTIONS)(func)
    KERNELS[f"{func.__module__}.{func.__qualname__}"] = compiled
    return compiled
