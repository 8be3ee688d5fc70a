"""The golden cases inside another project's pytest run, and the machine-readable reports.

Each test works in a throwaway project folder outside the repository (pytest's tmp_path),
as an engineer's repository would look: an adapter file and nothing of refimpl's. The
plugin comes from the installed package's ``pytest11`` entry point; where refimpl is
only on PYTHONPATH (no entry point), it is loaded with ``-p`` instead.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import refimpl
from refimpl import golden
from refimpl.cli import main

REPO = Path(refimpl.__file__).parents[1]

GOOD = "from refimpl.golden.adapter import make\n"

# refimpl's own adapter with one wrong number: after step 2 the reported parameters are
# 1 + 1e-9 times the right ones (far above a float64 tolerance, far below a bug anyone
# would see by eye), on the SGD family only
WRONG = '''
from refimpl.golden import adapter


def make(case):
    inner = adapter.make(case)
    if not case.id.startswith("sgd/"):
        return inner
    steps = {"k": 0}

    def step(grad_fn, inputs):
        steps["k"] += 1
        out = inner.step(grad_fn, inputs)
        params, average = out if isinstance(out, tuple) else (out, None)
        return (params * (1 + 1e-9) if steps["k"] == 2 else params), average
    return step
'''

UNSUPPORTED = '''
from refimpl.golden import Unsupported, adapter


def make(case):
    if case.base.kind == "fame":
        raise Unsupported("this library has no FAME")
    return adapter.make(case)
'''


def _plugin_args() -> list[str]:
    names = {e.name for e in entry_points(group="pytest11")}
    return [] if "refimpl-golden" in names else ["-p", "refimpl.golden.pytest_plugin"]


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS",)}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-rfs", *_plugin_args(), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def _project(tmp_path: Path, adapter_source: str) -> Path:
    project = tmp_path / "their_project"
    project.mkdir()
    (project / "adapter.py").write_text(adapter_source)
    (project / "test_theirs.py").write_text("def test_their_own():\n    assert True\n")
    return project


@pytest.mark.slow
def test_a_correct_adapter_passes_every_case_as_its_own_item(tmp_path):
    project = _project(tmp_path, GOOD)
    done = _pytest(project, "--refimpl-impl", "adapter:make")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    n_cases = len(golden.cases())
    assert f"{n_cases + 1} passed" in done.stdout  # every case, and their own test


def test_a_wrong_adapter_fails_with_the_first_step_diagnosis(tmp_path):
    project = _project(tmp_path, WRONG)
    done = _pytest(project, "--refimpl-impl", "adapter:make", "-k", "sgd and witness")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    deselected = len(golden.cases()) - 3 + 1  # the other cases and their own test
    assert f"3 failed, {deselected} deselected" in done.stdout
    assert "first mismatch at step 2" in done.stdout
    assert "FAILED refimpl-golden/sgd.json::sgd/witness-" in done.stdout


def test_k_selects_by_family_and_flag_and_unsupported_cases_skip(tmp_path):
    project = _project(tmp_path, UNSUPPORTED)
    done = _pytest(project, "--refimpl-impl", str(project / "adapter.py") + ":make",
                   "-k", "fame or nesterov", "--collect-only")
    assert done.returncode == 0, done.stderr[-3000:]
    selected = [line for line in done.stdout.splitlines() if "::" in line]
    # -k matches a substring of the case id, of its file's name, or a flag exactly
    expected = [c.id for c in golden.cases()
                if any(k in c.id or k in Path(c.file).name or k in c.flags
                       for k in ("fame", "nesterov"))]
    assert sorted(s.split("::", 1)[1] for s in selected) == sorted(expected)
    done = _pytest(project, "--refimpl-impl", "adapter:make", "-k", "lr_inside_velocity",
                   "--collect-only")  # a flag that is in no case id
    flagged = sorted(c.id for c in golden.cases() if "lr_inside_velocity" in c.flags)
    assert flagged and sorted(line.split("::", 1)[1] for line in done.stdout.splitlines()
                              if "::" in line) == flagged
    done = _pytest(project, "--refimpl-impl", "adapter:make", "-k", "fame/official-defaults")
    assert done.returncode == 0 and "skipped" in done.stdout
    assert "unsupported by the adapter: this library has no FAME" in done.stdout


def test_without_the_option_the_plugin_adds_nothing(tmp_path):
    project = _project(tmp_path, GOOD)
    done = _pytest(project)
    assert done.returncode == 0 and "1 passed" in done.stdout


def test_a_bad_impl_is_a_usage_error(tmp_path):
    project = _project(tmp_path, GOOD)
    done = _pytest(project, "--refimpl-impl", "no_such_module:make")
    assert done.returncode == 4 and "--refimpl-impl: cannot import module 'no_such_module'" in done.stderr


def test_cases_selects_by_glob_and_refuses_a_pattern_that_matches_nothing():
    sgd = golden.cases("sgd/*")
    assert sgd and all(c.id.startswith("sgd/") for c in sgd)
    both = [c.id for c in golden.cases() if c.id.startswith("sgd/") or c.id == "adam/quadratic"]
    assert [c.id for c in golden.cases("sgd/*", "adam/quadratic")] == both  # file order
    with pytest.raises(ValueError, match=r"no golden case matches 'sgdd/\*'"):
        golden.cases("sgdd/*")


def test_check_writes_json_and_junit_reports(tmp_path, monkeypatch, capsys):
    (tmp_path / "wrong.py").write_text(WRONG)
    json_path, xml_path = tmp_path / "out" / "report.json", tmp_path / "out" / "report.xml"
    json_path.parent.mkdir()
    code = main(["golden", "check", "-k", "sgd/witness-*", "-k", "adam/quadratic",
                 "--impl", str(tmp_path / "wrong.py") + ":make",
                 "--json", str(json_path), "--junit", str(xml_path)])
    assert code == 1
    report = json.loads(json_path.read_text())
    assert report["schema"] == "refimpl-golden-check/1" and report["ok"] is False
    assert (report["passed"], report["failed"], report["skipped"]) == (1, 3, 0)
    by_id = {c["id"]: c for c in report["cases"]}
    assert by_id["adam/quadratic"]["status"] == "pass"
    assert all(c["step"] == 2 for c in report["cases"] if c["status"] == "fail")
    suite = ET.parse(xml_path).getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "3"
    failures = [t.get("name") for t in suite.iter("testcase") if t.find("failure") is not None]
    assert sorted(failures) == sorted(i for i, c in by_id.items() if c["status"] == "fail")
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["report.json", "report.xml"]


def test_an_unwritable_report_is_a_usage_error_before_any_case(capsys):
    assert main(["golden", "check", "--json", "/proc/report.json"]) == 2
    assert "--json '/proc/report.json' cannot be written" in capsys.readouterr().err


def test_golden_cases_stays_the_function_after_every_golden_module_is_imported():
    """The regression: a submodule refimpl/golden/cases.py (now catalog.py) replaced the
    attribute golden.cases by itself as soon as anything imported it."""
    import pkgutil

    for info in pkgutil.iter_modules(golden.__path__):
        importlib.import_module(f"refimpl.golden.{info.name}")
    assert callable(golden.cases) and golden.cases("sgd/gd-quadratic")[0].id == "sgd/gd-quadratic"
