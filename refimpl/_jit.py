"""The one place that imports numba and sets the jit options.

Every kernel in refimpl is decorated with :func:`kernel`. The options are fixed here so
that no module can quietly change them:

* ``cache=True``: compiled machine code is stored beside the sources (``__pycache__``),
  so only the first run on a machine pays the compilation time.
* ``fastmath=False``: fast-math lets LLVM reassociate sums and assume no NaN or inf,
  which changes IEEE results (``0 * inf`` becomes 0, sums change order). A reference
  implementation must produce the same bits as the plain-Python reading of the kernel.
* ``error_model="numpy"``: a float division follows IEEE 754 (``x / 0`` is inf or nan)
  instead of testing every divisor for zero and raising ``ZeroDivisionError``. The
  kernels never divide by zero (every divisor is positive by construction: ``eps > 0``
  is validated, bias corrections are ``1 - b**t`` with ``b < 1``, SAM's zero norm is a
  branch), so results are the same bits under both models; the per-division test of
  ``"python"`` only kept LLVM from vectorising Adam's and FAME's loops (measured by
  ``refimpl bench``: Adam's step 3.4x faster at d = 1e7). A non-finite value that got
  through anyway is caught where it matters: the training loop and the step API check
  every loss, gradient and iterate and raise ``FloatingPointError`` (never a silent nan).
* no ``parallel``: parallel reductions reorder sums.

numba's cache key is the kernel's source file and bytecode, NOT these options: after
changing an option here, delete the cached machine code (``find refimpl -name
'*.nb[ic]' -delete``) or unchanged modules keep running code compiled the old way.

Set the environment variable ``NUMBA_DISABLE_JIT=1`` to run every kernel as ordinary
Python (numba then returns the undecorated function). The test suite passes in both
modes and checks that each compiled kernel equals its ``.py_func`` bit for bit.
"""

from __future__ import annotations

import os

import numba

#: True when numba runs kernels as plain Python (``NUMBA_DISABLE_JIT=1``).
JIT_DISABLED: bool = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

_OPTIONS = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")

#: Every kernel defined through :func:`kernel`, by qualified name (for the tests that
#: compare compiled and pure-Python results).
KERNELS: dict[str, object] = {}


def kernel(func):
    """Compile ``func`` with refimpl's fixed numba options and register it."""
    compiled = numba.njit(**_OPTIONS)(func)
    KERNELS[f"{func.__module__}.{func.__qualname__}"] = compiled
    return compiled
