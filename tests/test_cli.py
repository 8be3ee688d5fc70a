"""The ``refimpl`` command (refimpl.cli); `refimpl tutorials` is tested in
tests/test_course.py and tests/test_tutorials.py, `golden` in tests/test_golden.py, `bench`
in tests/test_bench.py."""

from __future__ import annotations

import pytest

from refimpl.cli import main


@pytest.mark.parametrize("argv", [["nonsense"], [], ["tutorials", "--no-such-flag"]])
def test_bad_command_line_exits_with_code_2(argv, capsys):
    """argparse's usage error: SystemExit(2), message on stderr, nothing run."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "usage: refimpl" in captured.err and captured.out == ""
