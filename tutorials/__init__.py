"""The tutorials: percent-format scripts ``NN_name.py``, one idea each.

This folder ships inside the package as ``refimpl.tutorials`` (see pyproject.toml) so
that ``refimpl tutorials`` (refimpl/course.py) finds the scripts after ``pip install .``.
The scripts are not modules to import: run them with ``refimpl tutorials`` or as plain
Python (``python tutorials/01_sgd_momentum.py``), or open them as notebooks (jupytext).
"""
