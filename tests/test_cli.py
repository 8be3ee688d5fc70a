"""The ``refimpl`` command (refimpl.cli); `refimpl tutorials` is tested in
tests/test_course.py and tests/test_tutorials.py, `golden` in tests/test_golden.py, `bench`
in tests/test_bench.py."""

from __future__ import annotations

from pathlib import Path

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


_SHADOWS = ("difflib", "unittest", "pydoc", "inspect_probe_unused")


def _env_with_jit(refimpl):
    """The subprocess's environment: refimpl importable, and numba compiling (its lazy
    imports of standard modules are what a planted file would shadow, so these tests
    keep the JIT on even in CI's NUMBA_DISABLE_JIT=1 pass)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    return dict(env, PYTHONPATH=str(Path(refimpl.__file__).parents[1]))


def _plant_shadows(folder):
    """Files named like standard modules that numba or refimpl may import lazily; each
    leaves a marker file when executed."""
    for name in _SHADOWS:
        (folder / f"{name}.py").write_text(
            f"open({str(folder / ('RAN_' + name))!r}, 'w').write('x')\n")


@pytest.mark.parametrize("how", ["python -m refimpl", "python -m refimpl --impl file"])
def test_python_m_refimpl_never_runs_a_module_from_the_current_folder(tmp_path, how):
    """The reproduction: a unittest.py in the folder where `python -m refimpl golden check`
    runs was executed (numba imports unittest lazily) and the check still passed. With an
    adapter given as a file, no folder is added either."""
    import os
    import subprocess
    import sys

    import refimpl

    _plant_shadows(tmp_path)
    words = ["golden", "check", "-k", "sgd/witness-*"]
    if how.endswith("file"):
        adapters = tmp_path / "adapters"
        adapters.mkdir()
        (adapters / "mine.py").write_text("from refimpl.golden.adapter import make\n")
        words += ["--impl", "adapters/mine.py:make"]
    env = _env_with_jit(refimpl)
    done = subprocess.run([sys.executable, "-m", "refimpl", *words], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    assert sorted(p.name for p in tmp_path.glob("RAN_*")) == []


def test_the_unfixed_entry_point_would_run_them(tmp_path):
    """Teeth for the test above: the same check with the current folder left first on
    sys.path (what `python -m` does by itself) does execute the planted unittest.py."""
    import os
    import subprocess
    import sys

    import refimpl

    _plant_shadows(tmp_path)
    code = ("import sys; from refimpl.cli import main; "
            "sys.exit(main(['golden', 'check', '-k', 'sgd/witness-*']))")
    env = _env_with_jit(refimpl)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "RAN_unittest").exists()



@pytest.mark.parametrize("path,cwd,safe,expected", [
    (["/here", "/lib"], "/here", False, ["/lib"]),
    (["", "/lib"], "/here", False, ["/lib"]),
    (["/lib", "/here"], "/here", False, ["/lib", "/here"]),  # only the first entry
    (["/here", "/lib"], "/here", True, ["/here", "/lib"]),  # -P: Python added nothing
    ([], "/here", False, []),
])
def test_the_entry_point_drops_only_the_folder_python_m_added(path, cwd, safe, expected):
    from refimpl.cli import drop_current_folder

    drop_current_folder(path, cwd, safe)
    assert path == expected


def test_a_missing_adapter_file_is_a_usage_error(tmp_path, capsys):
    assert main(["golden", "check", "--impl", str(tmp_path / "nope.py") + ":make"]) == 2
    assert "nope.py" in capsys.readouterr().err
