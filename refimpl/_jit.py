"""The one place that imports numba and sets the jit options.

Every kernel in refimpl is decorated with :func:`kernel`. The options are fixed here so
that no module can quietly change them:

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

The compiled machine code is cached on disk, so only the first run pays the compilation
time (about 20 s for every kernel on a 2-core machine; a warm start takes about 1 s).
numba's own cache (``cache=True``) has three faults for a package like this one, so
refimpl places and keys the cache itself:

1. numba writes beside the sources (``site-packages/refimpl/**/__pycache__``), where
   ``pip uninstall`` does not remove the files, and the left-over folders then shadow a
   later (editable) install of refimpl as an empty namespace package;
2. numba keys a kernel on its own file only, so after an edit of a function that the
   kernel calls from another module, the old machine code keeps running;
3. with no writable folder beside the sources and no writable home, ``import refimpl``
   fails ("cannot cache function ...: no locator available").

Here the cache lives in one folder per version of the sources::

    <cache root>/<refimpl version>-<SHA-256 of every refimpl/**/*.py, first 16 hex digits>/

The cache root is ``$REFIMPL_CACHE_DIR`` if set, else ``$NUMBA_CACHE_DIR/refimpl`` if
that is set, else the user's cache folder (``~/.cache/refimpl`` on Linux,
``~/Library/Caches/refimpl`` on macOS, ``%LOCALAPPDATA%\\refimpl\\Cache`` on Windows).
Any change to any of refimpl's sources (not only the kernel's own file) selects a new,
empty folder, so nothing stale is ever loaded; the tutorials and proofs are not hashed,
they hold no kernels. If no cache folder can be created and written, kernels compile in memory on
each run and the import never fails. ``refimpl cache`` prints where the cache is and
its size; ``refimpl cache --clear`` removes the folders refimpl made (each holds a
marker file ``REFIMPL_CACHE``; nothing else is touched). ``REFIMPL_CACHE_DIR=off``
turns the disk cache off.

Set the environment variable ``NUMBA_DISABLE_JIT=1`` to run every kernel as ordinary
Python (numba then returns the undecorated function). The test suite passes in both
modes and checks that each compiled kernel equals its ``.py_func`` bit for bit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

from refimpl._version import __version__

#: True when numba runs kernels as plain Python (``NUMBA_DISABLE_JIT=1``).
JIT_DISABLED: bool = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

_OPTIONS = dict(fastmath=False, nogil=True, error_model="numpy")

#: Every kernel defined through :func:`kernel`, by qualified name (for the tests that
#: compare compiled and pure-Python results).
KERNELS: dict[str, object] = {}

PACKAGE_DIR = Path(__file__).resolve().parent

#: The file that marks a folder as one refimpl made for its cache.
MARKER = "REFIMPL_CACHE"


def source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over every ``*.py`` file of the package (relative path and contents, in
    sorted order), skipping the tutorials and the proofs (no kernels; in a wheel they sit
    inside the package, in a source checkout beside it, and the same sources must give
    the same key): the key of the cache folder."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir).as_posix()
        if relative.startswith(("tutorials/", "proofs/")):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_root() -> Path | None:
    """The folder that holds refimpl's cache folders (None when the cache is off)."""
    explicit = os.environ.get("REFIMPL_CACHE_DIR")
    if explicit is not None:
        return None if explicit.strip().lower() in ("", "0", "off", "none") else Path(explicit)
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir) / "refimpl"
    from numba.misc.appdirs import AppDirs

    return Path(AppDirs(appname="refimpl", appauthor=False).user_cache_dir)


def cache_folder_name() -> str:
    """This run's cache folder: the version and the sources' hash, plus ``-boundscheck``
    when numba checks array bounds (``NUMBA_BOUNDSCHECK=1``). numba's own index keys
    machine code on the signature and the CPU, not on that setting, so without the
    suffix a bounds-checked run could load kernels compiled without checks (and
    silently check nothing), or a normal run the slower checked ones."""
    suffix = "-boundscheck" if numba.config.BOUNDSCHECK else ""
    return f"{__version__}-{source_hash()[:16]}{suffix}"


def _usable_cache_dir() -> Path | None:
    """This version's cache folder, created and tested for writing; None if impossible."""
    if JIT_DISABLED:
        return None
    try:
        root = cache_root()
        if root is None:
            return None
        folder = root / cache_folder_name()
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / MARKER
        if not marker.exists():
            marker.write_text("numba machine code of refimpl; safe to delete\n")
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except (OSError, ValueError):
        return None


#: This run's cache folder, or None when kernels compile in memory only.
CACHE_DIR: Path | None = _usable_cache_dir()


def _function_cache_class():
    """A numba FunctionCache whose only locator is refimpl's folder (numba's caching
    classes are internal: if they move, refimpl compiles without a cache)."""
    from numba.core import caching

    class RefimplLocator(caching._CacheLocator):
        def __init__(self, py_func, py_file):
            self._lineno = py_func.__code__.co_firstlineno
            relative = Path(py_file).resolve().parent.relative_to(PACKAGE_DIR)
            self._cache_path = str(CACHE_DIR.joinpath(*relative.parts))

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            return CACHE_DIR.name  # the folder is already keyed on every source

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            self = cls(py_func, py_file)
            self.ensure_cache_path()
            return self

    class RefimplImpl(caching.CompileResultCacheImpl):
        _locator_classes = [RefimplLocator]

    class RefimplFunctionCache(caching.FunctionCache):
        _impl_class = RefimplImpl

    return RefimplFunctionCache


_FunctionCache = None
if CACHE_DIR is not None:
    try:
        _FunctionCache = _function_cache_class()
    except (ImportError, AttributeError):  # pragma: no cover (a numba without these)
        CACHE_DIR = None


def kernel(func=None, *, inline: bool = False):
    """Compile ``func`` with refimpl's fixed numba options and register it.

    ``@kernel(inline=True)`` marks a small element-wise function (refimpl's tanh) that
    numba inlines into each caller, so that the caller's loop can be vectorised; a call
    LLVM does not inline keeps the loop scalar (measured: 15 ns per tanh instead of 4)."""
    if func is None:
        return lambda f: kernel(f, inline=inline)
    options = dict(_OPTIONS, inline="always") if inline else _OPTIONS
    compiled = numba.njit(**options)(func)
    if _FunctionCache is not None and not JIT_DISABLED:
        try:
            compiled._cache = _FunctionCache(func)
        except (OSError, RuntimeError, ValueError):
            pass  # compile in memory: a cache is an optimisation, never a failure
    KERNELS[f"{func.__module__}.{func.__qualname__}"] = compiled
    return compiled


def clear_cache(root: Path | None = None) -> list[Path]:
    """Remove every cache folder refimpl made under ``root`` (default: the current cache
    root): only folders holding the marker file, never anything else. Returns them."""
    import shutil

    root = cache_root() if root is None else Path(root)
    removed = []
    if root is None or not root.is_dir():
        return removed
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.is_symlink() and (folder / MARKER).is_file():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def describe_cache() -> str:
    """Where the cache is and how large, for ``refimpl cache``."""
    if JIT_DISABLED:
        return "NUMBA_DISABLE_JIT is set: kernels run as Python, nothing is cached"
    root = cache_root()
    if root is None:
        return "disk cache off (REFIMPL_CACHE_DIR=off): kernels compile in memory"
    if CACHE_DIR is None:
        return f"cache root {root} is not writable: kernels compile in memory on each run"
    folders = [f for f in sorted(root.iterdir()) if f.is_dir() and (f / MARKER).is_file()]
    size = sum(p.stat().st_size for f in folders for p in f.rglob("*") if p.is_file())
    return (f"cache root {root}\nthis version's folder {CACHE_DIR.name}\n"
            f"{len(folders)} cache folder(s), {size / 2**20:.1f} MiB in all")

