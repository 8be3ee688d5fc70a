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


def test_version_and_python_dash_m(capsys):
    """``refimpl --version`` prints the single-sourced version; ``python -m refimpl``
    is the same command."""
    import subprocess
    import sys

    import refimpl
    from refimpl._version import __version__

    assert refimpl.__version__ == __version__
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"refimpl {__version__}"
    proc = subprocess.run([sys.executable, "-m", "refimpl", "--version"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == f"refimpl {__version__}"


def test_help_is_plain_text_and_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":mod:" not in text and ":func:" not in text
    for code in ("0  success", "1  a failed check", "2  a usage error"):
        assert code in text


@pytest.mark.parametrize("argv, usage", [
    (["tutorials", "--fats"], "usage: refimpl tutorials"),
    (["golden", "check", "--nope"], "usage: refimpl golden check"),
    (["cache", "--bogus"], "usage: refimpl cache"),
])
def test_a_subcommand_error_shows_the_subcommands_usage(argv, usage, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(usage)


@pytest.mark.parametrize("words", [["golden", "check"], ["golden", "list"]])
def test_a_missing_path_is_a_usage_error(words, tmp_path, capsys):
    missing = str(tmp_path / "nonexistent")
    assert main(words + [missing]) == 2
    captured = capsys.readouterr()
    assert "no such file or folder" in captured.err and "MALFORMED" not in captured.out
    assert captured.err.startswith(f"usage: refimpl {' '.join(words)}")


def test_golden_check_does_not_put_the_current_folder_on_sys_path(tmp_path, monkeypatch):
    """With the default adapter a module in the current folder must never be importable
    through the check (numba imports standard modules lazily; a difflib.py there would
    run). Asked for explicitly with --impl, the current folder is searched."""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["golden", "check", "-k", "sgd/witness-*"]) == 0
    assert str(tmp_path) not in sys.path
    (tmp_path / "my_adapter.py").write_text(
        "from refimpl.golden.adapter import make\n")
    assert main(["golden", "check", "-k", "sgd/witness-*", "--impl", "my_adapter:make"]) == 0
    assert str(tmp_path) in sys.path
