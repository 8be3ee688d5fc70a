r"""What a tutorial script uses to record its figures, numbers and checks.

A tutorial (``tutorials/NN_name.py``) is a percent-format script: ``# %%`` starts a code
cell, ``# %% [markdown]`` a prose cell whose lines start with ``#``. It runs three ways:
as plain Python (``python tutorials/01_sgd_momentum.py``), as a notebook (jupytext opens
the format), and headless through ``refimpl tutorials`` (:mod:`refimpl.course`), which
also writes the lesson pages and the index. Near its top a tutorial makes one
:class:`Tutorial`::

    tut = Tutorial(title="SGD and momentum on quadratics",
                   claim="Heavy-ball momentum on a quadratic is a linear recursion ...",
                   idea="Momentum is stable exactly while $\eta h < 2(1 + \mu)$ ...",
                   formula=r"0 < \eta h < 2(1 + \mu)")
    FAST = tut.fast                      # shrink loops, never change what is asserted
    ...
    tut.figure(fig, "stability", "Spectral radius over (lr, momentum)", key=True)
    tut.number("largest stable lr at momentum 0.9", lr_max)
    ...
    tut.check(abs(lr_max - 2 * 1.9 / 10) < 1e-12, "the stable range ends at 2(1+mu)/h")

``claim`` is what the checks establish, with its tolerances; ``idea`` says the same in
plain words for a student (Markdown with ``$...$`` math) and ``formula`` is its key
formula in LaTeX. The lesson page opens with the idea, the formula and the figure saved
with ``key=True``; the claim, numbers and checks close it, in its "Checks" section.

``fast`` and the output folder come from the run: ``refimpl tutorials --fast --out DIR``
sets them. A standalone run (``python tutorials/02_ema.py``, or the notebook run in
Jupyter) reads ``REFIMPL_TUTORIAL_FAST=1`` from the environment and writes to

* ``$REFIMPL_TUTORIAL_OUT/NN_name/`` when that variable is set;
* else the lesson folder itself, when the script or notebook runs from a course folder
  that ``refimpl tutorials`` wrote (its parent holds the marker file ``.refimpl-course``);
* else ``refimpl-tutorials/NN_name/`` under the current folder,

where ``NN_name`` is the script's file name, so every way of running a tutorial writes
to one folder per tutorial. Figures use a style sized for a projector (text at least
``MIN_TEXT_PX`` pixels high on a page column ``COLUMN_PX`` wide; a figure with smaller
text is an error), are saved as PNG and closed; under Jupyter or IPython they are also
shown inline. ``check`` raises AssertionError with its statement, so a failed claim
stops the tutorial and makes ``refimpl tutorials`` exit non-zero. ``figure``,
``number`` and ``check`` return None, so a cell ending with one shows no stray value.
"""

from __future__ import annotations

import io

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

FIGURE_DPI = 100  # PNG resolution: a 10 x 4.5 inch figure is 1000 x 450 pixels

#: The widest a figure is shown on a lesson page (CSS pixels), and the smallest text
#: height allowed there: legible on a 1280 x 720 projector at 100% zoom.
COLUMN_PX = 1000
MIN_TEXT_PX = 12.5

#: The figure style of every tutorial (applied when a Tutorial is made).
STYLE = {"font.size": 14, "axes.titlesize": 14, "axes.labelsize": 14,
         "xtick.labelsize": 13, "ytick.labelsize": 13, "legend.fontsize": 12.5,
         "figure.titlesize": 15, "lines.linewidth": 2.0, "figure.dpi": FIGURE_DPI,
         "savefig.dpi": FIGURE_DPI}

#: The marker file of a course folder written by ``refimpl tutorials``.
COURSE_MARKER = ".refimpl-course"


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
    idea: str = ""
    formula: str = ""
    key_figure: str = ""
    figures: list = field(default_factory=list)
    numbers: list = field(default_factory=list)
    checks: list = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "tutorial"


def _standalone_name(title: str) -> str:
    """``NN_name`` of a tutorial run outside the runner: the script's file name, else
    (in a notebook) the lesson folder's name, else the title's slug."""
    import __main__

    script = getattr(__main__, "__file__", None)
    if script and re.fullmatch(r"\d\d_[a-z0-9_]+", Path(script).stem):
        return Path(script).stem
    if re.fullmatch(r"\d\d_[a-z0-9_]+", Path.cwd().name):
        return Path.cwd().name
    return _slug(title)


def _standalone_out(name: str) -> Path:
    """Where a standalone run writes (see the module docstring)."""
    root = os.environ.get("REFIMPL_TUTORIAL_OUT")
    if root:
        return Path(root) / name
    import __main__

    script = getattr(__main__, "__file__", None)
    here = Path(script).resolve().parent if script else Path.cwd()
    if here.name == name and (here.parent / COURSE_MARKER).is_file():
        return here
    return Path("refimpl-tutorials") / name


def _text_too_small(fig) -> list[str]:
    """The texts of ``fig`` that would be shown under MIN_TEXT_PX pixels high on a page
    column COLUMN_PX wide (the PNG is shown at its size, or shrunk to the column)."""
    width_in = fig.get_figwidth()
    px_per_pt = min(FIGURE_DPI, COLUMN_PX / width_in) / 72.0
    small = []
    for text in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")):
        if not text.get_visible() or not str(text.get_text()).strip():
            continue
        height = text.get_fontsize() * px_per_pt
        if height < MIN_TEXT_PX:
            small.append(f"{str(text.get_text())[:30]!r} ({height:.1f} px)")
    return small


def _show_inline(fig) -> None:
    """Under IPython or Jupyter, show ``fig`` in the output before it is closed."""
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    if get_ipython() is not None:
        from IPython.display import display

        display(fig)


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
        What the tutorial's checks establish, with its tolerances, in one or two
        sentences; its final cells check it with :meth:`check`.
    idea : str
        The same idea in plain words for a student (Markdown; ``$...$`` math allowed):
        what to take away. The lesson page opens with it.
    formula : str
        The idea's key formula, in LaTeX without the ``$$`` (shown under the idea).
    """

    def __init__(self, title: str, claim: str, idea: str = "", formula: str = ""):
        for pname, value in (("title", title), ("claim", claim)):
            if not isinstance(value, str) or not value.strip():
                raise TypeError(f"{pname} must be a non-empty string, got {value!r}")
        for pname, value in (("idea", idea), ("formula", formula)):
            if not isinstance(value, str):
                raise TypeError(f"{pname} must be a string, got {value!r}")
        ctx = _ACTIVE
        if ctx is None:  # a standalone run: configuration from the environment
            name = _standalone_name(title)
            ctx = _Context(name=name, out=_standalone_out(name),
                           fast=_env_flag("REFIMPL_TUTORIAL_FAST"))
        ctx.title, ctx.claim = title.strip(), " ".join(claim.split())
        ctx.idea, ctx.formula = idea.strip(), formula.strip()
        ctx.out.mkdir(parents=True, exist_ok=True)
        import matplotlib

        matplotlib.rcParams.update(STYLE)
        self._ctx = ctx

    @property
    def fast(self) -> bool:
        """True under ``--fast``: use fewer steps and runs; assert the same claim."""
        return self._ctx.fast

    @property
    def out(self) -> Path:
        """The directory this tutorial writes its figures to."""
        return self._ctx.out

    def figure(self, fig, name: str, caption: str, key: bool = False) -> None:
        """Save ``fig`` as ``NAME.png`` in :attr:`out`, show it inline under Jupyter,
        close it, record the caption.

        ``name`` is a short file stem (letters, digits, ``_`` and ``-``); a name used twice
        in one tutorial is an error, so no figure silently replaces another. A panel that
        shows data without x and y labels, or with several labelled artists and no
        legend, is an error too (ValueError naming the panel), and so is text too small
        to read when projected. ``key=True`` marks the tutorial's key figure, shown first
        on the lesson page and in the index (one per tutorial).
        """
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"name must be letters, digits, '_' or '-', got {name!r}")
        if not isinstance(caption, str) or not caption.strip():
            raise TypeError(f"caption must be a non-empty string, got {caption!r}")
        file = f"{name}.png"
        if any(f.file == file for f in self._ctx.figures):
            raise ValueError(f"name {name!r} was already used for a figure of this tutorial")
        if not isinstance(key, bool):
            raise TypeError(f"key must be a bool, got {type(key).__name__}")
        if key and self._ctx.key_figure:
            raise ValueError(f"the key figure is already {self._ctx.key_figure!r}")
        problems = _unlabelled(fig)
        small = _text_too_small(fig)
        if small:
            problems.append(f"text under {MIN_TEXT_PX} px at a {COLUMN_PX} px column: "
                            + ", ".join(small[:4]) + (" ..." if len(small) > 4 else "")
                            + " (enlarge the font or narrow the figure)")
        if problems:
            raise ValueError(f"figure {name!r} is not readable at a glance: "
                             + "; ".join(problems))
        import matplotlib.pyplot as plt

        path = self._ctx.out / file
        png = io.BytesIO()  # rendered in memory, then written atomically (no half a file)
        fig.savefig(png, format="png", dpi=FIGURE_DPI, bbox_inches="tight",
                    metadata={"Software": None})
        from refimpl import render

        render.write_atomic(path, png.getvalue())
        _show_inline(fig)
        plt.close(fig)
        self._ctx.figures.append(Figure(file, " ".join(caption.split())))
        if key:
            self._ctx.key_figure = file
        print(f"[figure] {path.name}: {' '.join(caption.split())}")

    def number(self, label: str, value, unit: str = "", fmt: str = ".4g") -> None:
        """Print ``label: value unit`` and record it for the index.

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
