"""What a tutorial script uses to record its figures, numbers and checks.

A tutorial (``tutorials/NN_name.py``) is a percent-format script: ``# %%`` starts a code
cell, ``# %% [markdown]`` a prose cell whose lines start with ``#``. It runs three ways:
as plain Python (``python tutorials/01_sgd_momentum.py``), as a notebook (jupytext opens
the format), and headless through ``refimpl tutorials`` (:mod:`refimpl.course`), which
also writes the lesson pages and the index. Near its top a tutorial makes one
:class:`Tutorial`::

    tut = Tutorial(title="SGD and momentum on quadratics",
                   claim="Heavy-ball momentum on a quadratic is a linear recursion ...")
    FAST = tut.fast                      # shrink loops, never change what is asserted
    ...
    tut.figure(fig, "stability", "Spectral radius over (lr, momentum)")
    tut.number("largest stable lr at momentum 0.9", lr_max)
    ...
    tut.check(abs(lr_max - 2 * 1.9 / 10) < 1e-12, "the stable range ends at 2(1+mu)/h")

``fast`` and the output directory come from the run: ``refimpl tutorials --fast --out DIR``
sets them; a standalone run reads ``REFIMPL_TUTORIAL_FAST=1`` and
``REFIMPL_TUTORIAL_OUT`` (default ``refimpl-tutorials``) from the environment. Figures
are saved with matplotlib's Agg backend as PNG and closed. ``check`` raises
AssertionError with its statement, so a failed claim stops the tutorial and makes
``refimpl tutorials`` exit non-zero.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Check", "Figure", "Number", "Tutorial"]

# The runner (refimpl.course) sets this to a _Context before a tutorial's first cell
# and back to None after its last; a standalone run leaves it None.
_ACTIVE = None

FIGURE_DPI = 110  # PNG resolution: a 6.4 x 4.8 inch figure is 704 x 528 pixels


@dataclass(frozen=True)
class Figure:
    """A saved figure: its file (relative to the tutorial's directory) and caption."""

    file: str
    caption: str


@dataclass(frozen=True)
class Number:
    """A measured number: a label, the value as computed, and its printed form."""

    label: str
    value: object
    text: str


@dataclass(frozen=True)
class Check:
    """A checked statement and whether it held."""

    statement: str
    passed: bool


@dataclass
class _Context:
    """Where a tutorial run writes and what it recorded (filled by Tutorial's methods)."""

    name: str
    out: Path
    fast: bool
    title: str = ""
    claim: str = ""
    figures: list = field(default_factory=list)
    numbers: list = field(default_factory=list)
    checks: list = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "tutorial"


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"environment variable {name} must be 0/1/true/false/yes/no, got {value!r}")


def _unlabelled(fig) -> list[str]:
    """What a figure lacks: every panel that shows data needs an x and a y label (a
    3-D panel a z label too; a label on a panel it shares the axis with counts), and a panel with two or more labelled artists needs a
    legend (its own or the figure's). Colorbars are labelled through their own axes."""
    problems = []
    has_figure_legend = bool(fig.legends)
    for i, ax in enumerate(fig.axes, start=1):
        if ax.get_label() == "<colorbar>" or not ax.get_visible():
            continue
        shows_data = ax.lines or ax.collections or ax.images or ax.patches or ax.containers
        if not shows_data:
            continue
        where = f"panel {i}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        for axis in ("x", "y") + (("z",) if hasattr(ax, "get_zlabel") else ()):
            # a panel sharing its axis with a labelled one (plt.subplots(sharex=True)) is
            # labelled by it, as the bottom row labels a column
            shared = getattr(ax, f"get_shared_{axis}_axes", None)
            siblings = shared().get_siblings(ax) if shared else [ax]
            if not any(getattr(a, f"get_{axis}label")().strip() for a in siblings):
                problems.append(f"{where} has no {axis} label")
        labelled = [h for h in ax.get_legend_handles_labels()[1] if not h.startswith("_")]
        if len(labelled) >= 2 and ax.get_legend() is None and not has_figure_legend:
            problems.append(f"{where} has {len(labelled)} labelled artists but no legend")
    return problems


class Tutorial:
    """The record of one tutorial run: title, claim, figures, numbers and checks.

    Parameters
    ----------
    title : str
        The tutorial's title, as shown in the index.
    claim : str
        The idea the tutorial demonstrates, in one or two sentences; its final cells
        check it with :meth:`check`.
    """

    def __init__(self, title: str, claim: str):
        for pname, value in (("title", title), ("claim", claim)):
            if not isinstance(value, str) or not value.strip():
                raise TypeError(f"{pname} must be a non-empty string, got {value!r}")
        ctx = _ACTIVE
        if ctx is None:  # a standalone run: configuration from the environment
            root = Path(os.environ.get("REFIMPL_TUTORIAL_OUT", "refimpl-tutorials"))
            ctx = _Context(name=_slug(title), out=root / _slug(title),
                           fast=_env_flag("REFIMPL_TUTORIAL_FAST"))
        ctx.title, ctx.claim = title.strip(), " ".join(claim.split())
        ctx.out.mkdir(parents=True, exist_ok=True)
        self._ctx = ctx

    @property
    def fast(self) -> bool:
        """True under ``--fast``: use fewer steps and runs; assert the same claim."""
        return self._ctx.fast

    @property
    def out(self) -> Path:
        """The directory this tutorial writes its figures to."""
        return self._ctx.out

    def figure(self, fig, name: str, caption: str) -> Path:
        """Save ``fig`` as ``NAME.png`` in :attr:`out`, close it, record the caption.

        ``name`` is a short file stem (letters, digits, ``_`` and ``-``); a name used twice
        in one tutorial is an error, so no figure silently replaces another. A panel that
        shows data without x and y labels, or with several labelled artists and no
        legend, is an error too (ValueError naming the panel).
        """
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"name must be letters, digits, '_' or '-', got {name!r}")
        if not isinstance(caption, str) or not caption.strip():
            raise TypeError(f"caption must be a non-empty string, got {caption!r}")
        file = f"{name}.png"
        if any(f.file == file for f in self._ctx.figures):
            raise ValueError(f"name {name!r} was already used for a figure of this tutorial")
        problems = _unlabelled(fig)
        if problems:
            raise ValueError(f"figure {name!r} is not readable at a glance: "
                             + "; ".join(problems))
        import matplotlib.pyplot as plt

        path = self._ctx.out / file
        fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        self._ctx.figures.append(Figure(file, " ".join(caption.split())))
        print(f"[figure] {path.name}: {caption}")
        return path

    def number(self, label: str, value, unit: str = "", fmt: str = ".4g"):
        """Print ``label: value unit`` and record it for the index; returns ``value``.

        ``value`` is a real number (formatted with ``fmt``), an integer (printed in full),
        a bool or a string. A NaN or infinite value is an error: a measured number that
        is not finite means the tutorial went wrong.
        """
        if not isinstance(label, str) or not label.strip():
            raise TypeError(f"label must be a non-empty string, got {label!r}")
        if isinstance(value, (bool, str)):
            text = str(value)
        elif isinstance(value, numbers.Integral):
            text = str(int(value))
        elif isinstance(value, numbers.Real):
            if not math.isfinite(float(value)):
                raise ValueError(f"value of {label!r} must be finite, got {value!r}")
            text = format(float(value), fmt)
        else:
            raise TypeError(f"value must be a real number, bool or str, got {type(value).__name__}")
        if unit:
            text = f"{text} {unit}"
        self._ctx.numbers.append(Number(label, value, text))
        print(f"{label}: {text}")
        return value

    def check(self, condition, statement: str) -> None:
        """Assert ``condition``; record ``statement`` as checked (or raise AssertionError).

        ``condition`` must be a bool (a NumPy bool is accepted): an array would make the
        meaning of the check ambiguous.
        """
        if not isinstance(statement, str) or not statement.strip():
            raise TypeError(f"statement must be a non-empty string, got {statement!r}")
        if type(condition).__name__ not in ("bool", "bool_"):
            raise TypeError(f"condition must be a bool, got {type(condition).__name__}")
        passed = bool(condition)
        self._ctx.checks.append(Check(" ".join(statement.split()), passed))
        print(f"[check] {'holds' if passed else 'FAILS'}: {statement}")
        if not passed:
            raise AssertionError(statement)
