"""Every tutorial runs in fast mode and its checks hold; none can drop out silently.

The list below is the course: a tutorial renamed, removed or added without updating it
fails ``test_the_course_is_exactly_these_tutorials``. The tutorials run once per session
(fast mode, one module-scoped run of ``refimpl.course.run``) and each one's result is a
separate test. Under ``NUMBA_DISABLE_JIT=1`` the runs are skipped: in pure Python the
MLP trainings alone would take minutes, and tests/test_jit.py proves the compiled
kernels equal their Python reading bit for bit.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from refimpl import course

ROOT = Path(__file__).resolve().parent.parent

COURSE = [
    "01_sgd_momentum",
    "02_ema",
    "03_ema_scaling_rule",
    "04_switch_ema",
    "05_sam_stablesam",
    "06_tema_fame",
    "07_golden_vectors",
]

no_jit = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
    reason="the tutorials run with the JIT (in pure Python the trainings take minutes); "
           "test_jit.py checks the kernels equal their Python reading")


def test_the_course_is_exactly_these_tutorials():
    assert list(course.discover()) == COURSE
    assert list(course.discover(ROOT / "tutorials")) == COURSE


def test_the_shipped_tutorials_are_the_repositorys():
    """What ``refimpl tutorials`` runs (the installed refimpl.tutorials) is tutorials/."""
    shipped = course.discover()
    assert all(p.read_bytes() == (ROOT / "tutorials" / p.name).read_bytes()
               for p in shipped.values())


def test_the_readme_lists_the_course():
    section = re.search(r"## Tutorials\n(.*?)\n## ", (ROOT / "README.md").read_text(), re.S)
    assert re.findall(r"^\| `(\d\d_\w+)` \|", section.group(1), re.M) == COURSE


def test_pyproject_ships_every_package_and_the_tutorials():
    """pyproject.toml lists the packages explicitly (to map tutorials/ to
    refimpl.tutorials), so a new subpackage must be added there: this test notices."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "refimpl").rglob("__init__.py")}
    assert set(config["packages"]) == found | {"refimpl.tutorials"}
    assert config["package-dir"] == {"refimpl.tutorials": "tutorials"}


@pytest.mark.parametrize("name", COURSE)
def test_each_tutorial_follows_the_format(name):
    """Percent format, a title cell first, a Tutorial(...) whose title is that heading,
    and a closing '## What we checked' section followed only by code cells."""
    text = (ROOT / "tutorials" / f"{name}.py").read_text()
    cells = course.parse(text)
    assert cells[0].kind == "markdown"
    title = re.match(r"^# (.+)$", cells[0].source.splitlines()[0]).group(1)
    assert re.search(r'Tutorial\(\s*title="' + re.escape(title) + '"', text), title
    closing = [i for i, c in enumerate(cells)
               if c.kind == "markdown" and c.source.startswith("## What we checked")]
    assert len(closing) == 1 and all(c.kind == "code" for c in cells[closing[0] + 1:])
    assert "tut.check(" in cells[-1].source


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    results = course.run(fast=True, out=out, progress=lambda line: None)
    return out, {r.name: r for r in results}


@no_jit
@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_each_tutorial_holds_in_fast_mode(fast_run, name):
    out, results = fast_run
    result = results[name]
    assert result.ok, f"{name}: {result.status}\n{result.message}"
    assert result.checks and all(c.passed for c in result.checks)
    assert result.numbers and result.figures
    for fig in result.figures:
        png = (out / name / fig.file).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, fig.file
    for page in ("lesson.md", "lesson.html", f"{name}.py"):
        assert (out / name / page).is_file()


@no_jit
@pytest.mark.slow
def test_the_index_shows_every_tutorials_claim_numbers_and_figures(fast_run):
    out, results = fast_run
    index_md, index_html = (out / "index.md").read_text(), (out / "index.html").read_text()
    assert len(re.findall(r"^## \d\d\. ", index_md, re.M)) == len(COURSE)
    for name in COURSE:
        r = results[name]
        for index in (index_md, index_html):
            assert f"{name}/lesson" in index
            for fig in r.figures:
                assert f"{name}/{fig.file}" in index
        assert f"**Claim.** {r.claim}" in index_md
        for n in r.numbers:
            assert f"| {course._cell(n.label)} | {course._cell(n.text)} |" in index_md
