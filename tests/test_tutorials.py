"""Every tutorial runs in fast mode and its checks hold; none can drop out silently.

The list below is the course: a tutorial renamed, removed or added without updating it
fails ``test_the_course_is_exactly_these_tutorials``. The tutorials run once per session
(fast mode, one module-scoped run of ``refimpl.course.run``) and each one's result is a
separate test. Under ``NUMBA_DISABLE_JIT=1`` the runs are skipped: in pure Python the
MLP trainings alone would take minutes, and tests/test_jit.py proves the compiled
kernels equal their Python reading bit for bit.
"""

from __future__ import annotations

import html
import html.parser
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from refimpl import course, render

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
    assert set(config["packages"]) == found | {"refimpl.tutorials", "refimpl.proofs"}
    assert config["package-dir"] == {"refimpl.tutorials": "tutorials", "refimpl.proofs": "proofs"}
    assert "*.md" in config["package-data"]["refimpl.proofs"]


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


@no_jit
@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_each_lesson_teaches_first(fast_run, name):
    """The idea in plain words, its formula and a key figure open the lesson; the
    Exercises and then the Checks close it, with every number and check."""
    out, results = fast_run
    r = results[name]
    assert r.idea and r.formula and r.key_figure in [f.file for f in r.figures]
    page = (out / name / "lesson.html").read_text()
    order = [page.index('id="the-idea"'), page.index(f'src="{r.key_figure}"'),
             page.index('class="toc box"'), page.index('id="exercises"'),
             page.index('id="checks"')]
    assert order == sorted(order)
    checks = page[page.index('id="checks"'):]
    assert checks.count("<li>") >= len(r.checks) and len(r.checks) > 0
    assert checks.count("<tr>") == len(r.numbers) + 1
    assert 'rel="next"' in page or name == COURSE[-1]
    assert 'rel="prev"' in page or name == COURSE[0]


class _Page(html.parser.HTMLParser):
    """Links, images, ids, and the text outside links/code/math of one page."""

    def __init__(self):
        super().__init__()
        self.refs, self.ids, self.text, self.stack = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.refs.append(attrs["href"])
        if tag == "img":
            self.refs.append(attrs["src"])
        if tag in ("a", "code", "pre", "math", "style", "script"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if not self.stack:
            self.text.append(data)


def _pages(out: Path):
    return sorted(p for p in out.rglob("*.html"))


@no_jit
@pytest.mark.slow
def test_every_page_renders_its_math_and_every_link_resolves(fast_run):
    out, _ = fast_run
    pages = _pages(out)
    assert len(pages) >= len(COURSE) + 1 + 6  # lessons, index, proofs
    assert render.MATH_ERRORS == []
    parsed = {}
    for page in pages:
        parser = _Page()
        parser.feed(page.read_text())
        parsed[page] = parser
    for page, parser in parsed.items():
        text = " ".join(parser.text)
        where = page.relative_to(out)
        assert "$" not in text, f"{where}: a raw $ outside code: ...{text[text.find('$') - 60:][:120]}"
        assert not re.search(r"\\(frac|sqrt|eta|rho|mu|lambda|sum|begin|left|right|cdot)\b",
                             text), f"{where}: raw LaTeX"
        assert 'class="math-error"' not in page.read_text(), where
        # every cited proof is a link: no proofs/NAME.md left as plain text
        assert not re.search(r"proofs/[a-z_]+\.md", text), f"{where}: a proof cited as text"
        for ref in parser.refs:
            if re.match(r"^[a-z]+:", ref):
                continue
            target, _, anchor = ref.partition("#")
            resolved = (page.parent / target).resolve() if target else page
            assert resolved.exists(), f"{where}: broken link {ref}"
            if anchor and resolved.suffix == ".html":
                ids = parsed[resolved].ids if resolved in parsed else set()
                assert anchor in ids, f"{where}: link {ref} names no anchor there"


@no_jit
@pytest.mark.slow
def test_every_lesson_links_the_proofs_it_cites(fast_run):
    out, _ = fast_run
    cited = 0
    for name in COURSE:
        page = (out / name / "lesson.html").read_text()
        cited += len(re.findall(r'href="\.\./proofs/[a-z_]+\.html', page))
    assert cited >= len(COURSE) - 1  # every lesson on theory links its proofs


@no_jit
@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_each_notebook_is_valid_executed_and_shows_its_figures(fast_run, name):
    nbformat = pytest.importorskip("nbformat")
    out, results = fast_run
    path = out / name / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    executed = [c for c in code if c.execution_count is not None]
    images = [o for c in executed for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(results[name].figures)
    for cell in executed:
        for output in cell.outputs:
            assert output.output_type != "execute_result", (
                f"{name}: a cell ends with a bare expression: {output.data}")
            text = "".join(output.get("text", ""))
            assert "PosixPath" not in text and "np.float64" not in text, text
    # the exercises' starters follow, not executed, each ending with its check call
    starters = [c for c in code if c.execution_count is None]
    assert starters and all("check(" in c.source for c in starters)
    assert json.loads(path.read_text())["nbformat"] == 4


_METRICS = """<script>
window.addEventListener("load", () => {
  const maths = [...document.querySelectorAll("math")];
  const sized = maths.filter(m => { const r = m.getBoundingClientRect();
                                    return r.width > 0 && r.height > 0; });
  const doc = document.documentElement;
  const out = document.createElement("pre");
  out.id = "refimpl-metrics";
  out.textContent = JSON.stringify({maths: maths.length, sized: sized.length,
    scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth,
    mathHeight: sized.length ? sized[0].getBoundingClientRect().height : 0});
  document.body.appendChild(out);
});
</script>"""


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@no_jit
@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (.ci/run "
                    "installs Debian's chromium package)")
@pytest.mark.parametrize("page", ["index.html", "02_ema/lesson.html", "proofs/sam.html"])
def test_a_real_browser_renders_the_math_and_nothing_scrolls_sideways(fast_run, page):
    """Headless Chromium at 1280 px: every MathML element has a size (the browser renders
    the math, no script needed), and the page is no wider than the window."""
    out, _ = fast_run
    source = out / page
    probe = source.with_name(".probe-" + source.name)
    probe.write_text(source.read_text().replace("</body>", _METRICS + "</body>"))
    try:
        proc = subprocess.run([_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                               "--window-size=1280,720", "--virtual-time-budget=5000",
                               "--dump-dom", probe.as_uri()],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="refimpl-metrics">(.*?)</pre>', proc.stdout)
    assert found, proc.stderr[-2000:]
    metrics = json.loads(html.unescape(found.group(1)))
    assert metrics["maths"] > 0 and metrics["sized"] == metrics["maths"], metrics
    assert metrics["mathHeight"] >= 10, metrics  # not collapsed to a line of nothing
    assert metrics["scrollWidth"] <= metrics["innerWidth"], metrics
