"""The version of refimpl, in one place: pyproject.toml reads it, ``refimpl.__version__``
and ``refimpl --version`` print it, and the cache folder's name carries it."""

__version__ = "0.1.0"
