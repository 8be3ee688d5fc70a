"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind,
outside the allowed range) with a message that names the parameter and the allowed
range, before any kernel runs. Checks never modify their input.
"""

from __future__ import annotations

import math
import numbers
import os
import stat

import numpy as np


def real(name: str, value, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """Return ``value`` as a Python float after checking it is a finite real in range.

    ``lo``/``hi`` are the bounds (None = unbounded); ``lo_open``/``hi_open`` exclude them.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:  # a Python int (or Fraction) beyond the float64 range
        raise ValueError(f"{name} must be finite and within the float64 range "
                         f"(|x| <= 1.8e308), got {_short(value)}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ValueError(f"{name} must be in {_range(lo, hi, lo_open, hi_open)}, got {x!r}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ValueError(f"{name} must be in {_range(lo, hi, lo_open, hi_open)}, got {x!r}")
    return x


#: every integer argument fits the kernels' int64 (a larger one would crash inside numba)
INT64_MAX = 2 ** 63 - 1


def integer(name: str, value, *, lo=None, hi=None) -> int:
    """Return ``value`` as a Python int after checking it is an integer in [lo, hi].

    ``hi`` defaults to :data:`INT64_MAX` and is never above it, ``lo`` to -2**63: the
    kernels take int64, so a Python integer beyond it is refused here, not in numba."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    n = int(value)
    hi = INT64_MAX if hi is None else min(hi, INT64_MAX)
    lo = -INT64_MAX - 1 if lo is None else lo
    if n < lo or n > hi:
        raise ValueError(f"{name} must be in {_range(lo, hi, False, False)}, got {_short(n)}")
    return n


def _short(n) -> str:
    """A number as text, an integer of more than 24 digits by its length only."""
    text = str(n)
    return text if len(text) <= 24 else f"an integer of {len(text.lstrip('-'))} digits"


def flag(name: str, value) -> bool:
    """Return ``value`` after checking it is a bool (not merely truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def choice(name: str, value, allowed) -> str:
    """Return ``value`` after checking it is one of the strings in ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def vector(name: str, value, *, size: int | None = None) -> np.ndarray:
    """Check that ``value`` is a 1-D, C-contiguous, finite float64 array (of ``size``).

    Nothing is converted silently: a float32 or integer array, a list, or a strided
    view is a TypeError, because a reference implementation must not hide a cast or a
    copy from the user. The array itself is returned (callers copy before writing).
    """
    _float_array(name, value, 1, "1-D (one flat parameter vector)")
    if size is not None and value.shape[0] != size:
        raise ValueError(f"{name} must have length {size}, got {value.shape[0]}")
    _nonempty_finite(name, value)
    return value


def buffer(name: str, value) -> np.ndarray:
    """Check an optimizer state's buffer: a plain 1-D, C-contiguous float64 array (the
    caller checks its length and scans its values with a jitted kernel)."""
    _float_array(name, value, 1, "1-D (one entry per parameter)")
    return value


def matrix(name: str, value, *, shape=None) -> np.ndarray:
    """Check that ``value`` is a 2-D, C-contiguous, non-empty, finite float64 array."""
    _float_array(name, value, 2, "2-D")
    if shape is not None and value.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {value.shape}")
    _nonempty_finite(name, value)
    return value


def _float_array(name: str, value, ndim: int, what: str) -> None:
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain numpy array, got a masked array (its mask "
                        "would be ignored; use np.ma.filled to choose the masked values)")
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy float64 array, got {type(value).__name__} "
            f"(use np.asarray(x, dtype=np.float64))"
        )
    if value.dtype != np.float64:
        raise TypeError(f"{name} must have dtype float64, got {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {what}, got shape {value.shape}")
    if not value.flags.c_contiguous:
        raise TypeError(f"{name} must be C-contiguous (use np.ascontiguousarray)")


def _nonempty_finite(name: str, value: np.ndarray) -> None:
    if value.size == 0:
        raise ValueError(f"{name} must have at least one element")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{name} must be finite (found nan or inf)")


#: the most memory one call may allocate for its arrays (8 GiB). A size beyond it (say
#: ``train(..., steps=10**12)``) is refused before anything is allocated, with the
#: memory it would need; raise this constant to allow larger runs on a larger machine.
MAX_ARRAY_BYTES = 8 * 2 ** 30


def allocation(name: str, value, nbytes: int, what: str) -> None:
    """Refuse, before allocating, arrays of ``nbytes`` bytes in total (for ``what``) that
    the argument ``name`` = ``value`` asks for, if that is above :data:`MAX_ARRAY_BYTES`."""
    if nbytes > MAX_ARRAY_BYTES:
        raise ValueError(f"{name}={_short(value)} would need about {_bytes(nbytes)} for {what}, "
                         f"more than the limit of {_bytes(MAX_ARRAY_BYTES)} "
                         "(refimpl._validate.MAX_ARRAY_BYTES)")


def _bytes(n: int) -> str:
    for unit, size in (("EiB", 2 ** 60), ("PiB", 2 ** 50), ("TiB", 2 ** 40), ("GiB", 2 ** 30),
                       ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def finite_result(where: str, *values):
    """The non-finite policy of the problems' and filters' public evaluations: a result
    computed from finite, validated inputs that is NaN or infinite raises
    FloatingPointError naming ``where`` (it overflowed float64), instead of being
    returned silently. The step oracles (``grad_fn``) do not use it: the optimizers and
    :func:`refimpl.train` read a non-finite loss or gradient as divergence. Returns
    the single value, or the values as a tuple."""
    for value in values:
        finite = math.isfinite(value) if isinstance(value, float) else np.all(np.isfinite(value))
        if not finite:
            raise FloatingPointError(f"{where} overflowed float64: the inputs are finite but "
                                     "too large for this value to be represented")
    return values[0] if len(values) == 1 else values


def oracle_output(result, size: int) -> tuple[float, np.ndarray]:
    """Check what a gradient oracle returned: ``(loss, g)`` with finite float loss and a
    float64 vector ``g`` of length ``size``. Raises FloatingPointError for non-finite
    values (a diverged run), TypeError/ValueError for a malformed oracle."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError("grad_fn must return a tuple (loss, g)")
    loss, g = result
    if isinstance(loss, (bool, np.bool_)) or not isinstance(loss, numbers.Real):
        raise TypeError(f"grad_fn's loss must be a real number, got {type(loss).__name__}")
    if not isinstance(g, np.ndarray) or g.dtype != np.float64 or g.ndim != 1:
        raise TypeError("grad_fn's gradient must be a 1-D float64 numpy array")
    if g.shape[0] != size:
        raise ValueError(f"grad_fn's gradient must have length {size}, got {g.shape[0]}")
    if not math.isfinite(float(loss)) or not np.all(np.isfinite(g)):
        raise FloatingPointError(
            "grad_fn returned a non-finite loss or gradient (the run has diverged)"
        )
    return float(loss), np.ascontiguousarray(g)


def regular_file_bytes(name: str, path, limit: int) -> bytes:
    """Return the bytes of the regular file ``path`` after checking it holds at most
    ``limit`` bytes.

    Untrusted paths get two guards. A FIFO, device or socket (``/dev/zero``, a named
    pipe) is refused from ``os.stat`` BEFORE it is opened, since opening or reading one
    can block forever or never end; the open itself is non-blocking and the opened file
    is checked again (the path may have been swapped in between). At most ``limit + 1``
    bytes are read, so a huge or growing file costs no more than the limit. Raises
    ``ValueError`` naming ``name`` and the limit, or ``OSError`` if it cannot be read.
    """
    kind = _file_kind(os.stat(path).st_mode)
    if kind != "regular file":
        raise ValueError(f"{name} must be a regular file, got a {kind}: {os.fspath(path)!r}")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        kind = _file_kind(os.fstat(handle.fileno()).st_mode)
        if kind != "regular file":
            raise ValueError(f"{name} must be a regular file, got a {kind}: {os.fspath(path)!r}")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} must be at most {limit} bytes, {os.fspath(path)!r} is larger")
    return data


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


def _range(lo, hi, lo_open, hi_open) -> str:
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    a = "-inf" if lo is None else "-2**63" if lo == -INT64_MAX - 1 else repr(lo)
    b = "inf" if hi is None else "2**63 - 1" if hi == INT64_MAX else repr(hi)
    return f"{left}{a}, {b}{right}"
