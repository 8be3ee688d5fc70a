"""The tutorials' exercises (refimpl.exercises): every tutorial has 2 to 4, at least one
checked by code; every reference solution passes its checker and every recorded mistake
fails it (so no checker accepts anything); the student-facing ``check`` reports both."""

from __future__ import annotations

import pytest

from refimpl import course, exercises

TUTORIALS = list(course.discover())
EXERCISES = exercises.all_exercises()
CHECKED = sorted(i for i, ex in EXERCISES.items() if ex.checked)


@pytest.mark.parametrize("name", TUTORIALS)
def test_every_tutorial_has_two_to_four_exercises_one_checked(name):
    found = exercises.for_tutorial(name)
    assert 2 <= len(found) <= 4, f"{name} has {len(found)} exercises"
    assert any(ex.checked for ex in found), f"{name} has no exercise checked by code"
    assert [ex.id for ex in found] == [f"{name[:2]}.{k}" for k in range(1, len(found) + 1)]
    solutions = exercises.solutions_for(name)
    for ex in found:
        assert ex.id in solutions.SOLUTIONS, f"exercise {ex.id} has no reference solution"
        if ex.checked:
            assert solutions.MISTAKES.get(ex.id), f"exercise {ex.id} records no mistake"
            assert f'check("{ex.id}"' in ex.starter, "the starter ends with its check call"
        else:
            assert isinstance(solutions.SOLUTIONS[ex.id], str)


@pytest.mark.parametrize("exercise_id", CHECKED)
def test_the_solution_passes_and_every_mistake_fails(exercise_id, capsys):
    solutions = exercises.solutions_for(next(n for n in TUTORIALS if n[:2] == exercise_id[:2]))
    assert exercises.check(exercise_id, solutions.SOLUTIONS[exercise_id]) is None
    assert capsys.readouterr().out.startswith(f"Exercise {exercise_id}: correct.")
    assert exercises.run_checker(exercise_id, solutions.SOLUTIONS[exercise_id])[0] is True
    for k, mistake in enumerate(solutions.MISTAKES[exercise_id]):
        ok, message = exercises.run_checker(exercise_id, mistake)
        assert not ok, f"mistake {k} of {exercise_id} passes its checker"
        assert message.strip()


def test_check_reports_a_crashing_answer_and_bad_ids(capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    exercises.check(CHECKED[0], broken)
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {CHECKED[0]}: not yet.") and "ZeroDivisionError" in out
    with pytest.raises(ValueError, match="exercise_id"):
        exercises.check("1.2", broken)
    with pytest.raises(ValueError, match="no exercise"):
        exercises.check("99.9", broken)
