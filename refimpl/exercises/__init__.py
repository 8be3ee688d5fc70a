"""Exercises for the tutorials, with checkers a student runs.

Each tutorial ``NN_name`` has a module ``refimpl.exercises.tNN_name`` holding its
``EXERCISES``: 2 to 4 :class:`Exercise` objects, at least one with a checker. The
statement (Markdown with ``$...$`` math) appears at the end of the lesson page and as
cells of the notebook; a checked exercise is answered in code and checked with::

    from refimpl.exercises import check
    check("01.2", my_answer)        # prints what was verified, or what is still wrong

A checker compares the answer with values computed independently of it (closed forms,
exact rationals, refimpl's tested optimizers) and raises ``AssertionError`` with a hint
when it is wrong. Reference solutions live in ``refimpl.exercises.solutions.tNN_name``
(``SOLUTIONS``: per exercise id the answer a checker accepts, or for an exercise
without a checker a worked answer in Markdown; ``MISTAKES``: per checked exercise
answers a student plausibly writes that its checker must reject). They are not linked
from the course folder; ``refimpl tutorials --solutions`` writes them next to it, and
the test suite runs every solution and every mistake through its checker.
"""

from __future__ import annotations

import importlib
import re
import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["Exercise", "check", "for_tutorial", "all_exercises", "solutions_for"]

ID_PATTERN = re.compile(r"^(\d\d)\.(\d)$")


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    Parameters
    ----------
    id : str
        ``"NN.k"``: the tutorial's number and the exercise's position (1 to 4).
    title : str
        A short name, shown as the exercise's heading.
    text : str
        The statement, in Markdown with ``$...$`` / ``$$...$$`` math.
    starter : str or None
        Code a student starts from (shown in the notebook, ending with the ``check``
        call); None for an exercise without a checker.
    checker : callable or None
        ``checker(answer) -> str``: returns what it verified, raises AssertionError
        with a hint when the answer is wrong. None for a pen-and-paper exercise.
    """

    id: str
    title: str
    text: str
    starter: str | None = None
    checker: Callable | None = None

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"id must look like '01.2', got {self.id!r}")
        for name in ("title", "text"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise TypeError(f"{name} must be a non-empty string")
        if (self.starter is None) != (self.checker is None):
            raise ValueError(f"exercise {self.id}: a checked exercise needs a starter and a "
                             "checker, a pen-and-paper one neither")

    @property
    def checked(self) -> bool:
        return self.checker is not None


def _module_name(tutorial: str, solutions: bool = False) -> str:
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", tutorial):
        raise ValueError(f"tutorial must be a name like '01_sgd_momentum', got {tutorial!r}")
    base = "refimpl.exercises.solutions" if solutions else "refimpl.exercises"
    return f"{base}.t{tutorial}"


def for_tutorial(tutorial: str) -> list[Exercise]:
    """The exercises of tutorial ``NN_name`` (an empty list if it has none)."""
    try:
        module = importlib.import_module(_module_name(tutorial))
    except ModuleNotFoundError as exc:
        if exc.name == _module_name(tutorial):
            return []
        raise
    exercises = list(module.EXERCISES)
    for ex in exercises:
        if ex.id[:2] != tutorial[:2]:
            raise ValueError(f"exercise {ex.id} is listed under tutorial {tutorial}")
    return exercises


def solutions_for(tutorial: str):
    """The module holding tutorial ``NN_name``'s SOLUTIONS and MISTAKES."""
    return importlib.import_module(_module_name(tutorial, solutions=True))


def all_exercises() -> dict[str, Exercise]:
    """Every exercise of every tutorial, by id."""
    from refimpl import course

    found = {}
    for name in course.discover():
        for ex in for_tutorial(name):
            if ex.id in found:
                raise ValueError(f"exercise id {ex.id} is used twice")
            found[ex.id] = ex
    return found


def _find(exercise_id: str) -> Exercise:
    if not isinstance(exercise_id, str) or not ID_PATTERN.match(exercise_id):
        raise ValueError(f"exercise_id must look like '01.2', got {exercise_id!r}")
    exercises = all_exercises()
    if exercise_id not in exercises:
        raise ValueError(f"no exercise {exercise_id!r}; there are: {', '.join(sorted(exercises))}")
    ex = exercises[exercise_id]
    if not ex.checked:
        raise ValueError(f"exercise {exercise_id} is answered on paper: it has no checker")
    return ex


def run_checker(exercise_id: str, answer) -> tuple[bool, str]:
    """Run the checker: ``(True, what was verified)`` or ``(False, what is wrong)``."""
    ex = _find(exercise_id)
    try:
        return True, ex.checker(answer)
    except AssertionError as exc:
        return False, str(exc) or "the answer does not match"
    except Exception as exc:  # the student's code raised: show where, briefly
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return False, (f"your answer raised {type(exc).__name__}: {exc} "
                       f"(line {where.lineno} of {where.filename})")


def check(exercise_id: str, answer) -> None:
    """Check an answer to exercise ``exercise_id`` and print the verdict (correct, or
    not yet and why). Returns None, so a notebook cell ending with it shows only the
    verdict; :func:`run_checker` returns it as ``(ok, message)``."""
    ok, message = run_checker(exercise_id, answer)
    print(f"Exercise {exercise_id}: {'correct' if ok else 'not yet'}. {message}")
