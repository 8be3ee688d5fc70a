"""``refimpl tutorials``: run the tutorials headless and write a folder of course material.

The tutorials are the percent-format scripts in the repository's ``tutorials/`` folder
(``NN_name.py``; they ship in the package as ``refimpl.tutorials``). For each selected
tutorial the runner

1. parses the script into cells (``# %% [markdown]`` prose, ``# %%`` code),
2. runs the code cells in order in one fresh namespace, with matplotlib's Agg backend,
   capturing each cell's printed output and the figures it saves through
   :class:`refimpl.tutorial.Tutorial`,
3. writes ``OUT/NAME/``: the figures, the script itself, the executed notebook
   ``NAME.ipynb`` (outputs and figures inline, then the exercises) and a lesson page
   (``lesson.html`` and ``lesson.md``) that teaches first: what the student will learn,
   the key figure, the idea in plain words with its formula, a table of contents, the
   prose, code, output and figures in order, the exercises, and at the end a "Checks"
   section with the claim as checked, every measured number and every check.

Then it writes ``OUT/index.html`` and ``OUT/index.md`` (per tutorial its idea, key
figure and links, then its claim, measured numbers, checks and figures) and renders
every proof of ``proofs/`` (shipped as ``refimpl.proofs``) as ``OUT/proofs/NAME.html``
beside a copy of its Markdown; a lesson's citation of ``proofs/NAME.md`` is a link to
it. Markdown and ``$`` math are rendered offline by :mod:`refimpl.render`.

Nothing refimpl did not write is ever deleted: each lesson folder lists the files a run
wrote in ``.refimpl-files``, and a re-run removes only those (a student's notes in the
folder stay). Pages and notebooks are written atomically (temporary file, then rename). A tutorial *fails* when one of its checks
(or any ``assert``) fails, and is an *error* when it raises anything else or does not
record a title, a figure, a number and, in its last code cell, a check. ``run`` returns
one :class:`Result` per tutorial; the command exits 1 if any is not ok.

Nothing here changes what a tutorial computes: a tutorial run by ``python
tutorials/NN_name.py`` prints the same numbers and saves the same figures.
"""

from __future__ import annotations

import ast
import contextlib
import html
import io
import json
import os
import re
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from refimpl import render
from refimpl import tutorial as _tutorial

__all__ = [
    "Cell",
    "Result",
    "discover",
    "write_proofs",
    "write_solutions",
    "parse",
    "resolve",
    "run",
    "run_one",
    "write_index",
]

NAME_PATTERN = re.compile(r"^(\d\d)_([a-z0-9_]+)$")


@dataclass(frozen=True)
class Cell:
    """One cell of a percent-format script: ``kind`` is "markdown" or "code"; ``source``
    is the cell's text (for Markdown without the leading ``# ``); ``line`` is the 1-based
    line of the script where the text starts."""

    kind: str
    source: str
    line: int


@dataclass
class Result:
    """What running one tutorial produced."""

    name: str
    path: Path
    out: Path
    fast: bool
    status: str = "ok"          # "ok", "failed" (a check or assert) or "error"
    message: str = ""           # the failed statement or the error's traceback
    seconds: float = 0.0
    title: str = ""
    claim: str = ""
    figures: list = field(default_factory=list)   # refimpl.tutorial.Figure
    numbers: list = field(default_factory=list)   # refimpl.tutorial.Number
    checks: list = field(default_factory=list)    # refimpl.tutorial.Check
    cells: list = field(default_factory=list)     # (Cell, outputs, [Figure]) per cell run
    idea: str = ""
    formula: str = ""
    key_figure: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ----------------------------------------------------------------------------- parsing

def parse(text: str) -> list[Cell]:
    """Split a percent-format script into cells.

    A line ``# %%`` starts a code cell and ``# %% [markdown]`` a prose cell (a title after
    ``# %%`` is allowed and ignored). In a prose cell every line is ``#`` or ``# text``.
    Text before the first marker is an error: every line of a tutorial belongs to a cell.
    Empty cells are dropped; leading and trailing blank lines of a cell are trimmed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lines = text.splitlines()
    cells: list[Cell] = []
    kind, start, body = None, 0, []

    def flush():
        while body and not body[0].strip():
            body.pop(0)
            nonlocal start
            start += 1
        while body and not body[-1].strip():
            body.pop()
        if kind is not None and body:
            cells.append(Cell(kind, "\n".join(body), start))

    for number, line in enumerate(lines, start=1):
        marker = re.match(r"^# %%(.*)$", line)
        if marker:
            flush()
            kind = "markdown" if "[markdown]" in marker.group(1) else "code"
            start, body = number + 1, []
            continue
        if kind is None:
            if line.strip():
                raise ValueError(f"line {number}: text before the first '# %%' cell marker")
            continue
        if kind == "markdown":
            if line.strip() and not (line == "#" or line.startswith("# ")):
                raise ValueError(f"line {number}: a Markdown cell line must be '#' or start "
                                 f"with '# ', got {line!r}")
            line = line[2:] if line.startswith("# ") else ""
        body.append(line)
    flush()
    return cells


# --------------------------------------------------------------------------- discovery

def _default_directory() -> Path:
    """The shipped tutorials: the ``refimpl.tutorials`` package (the repository's
    ``tutorials/`` folder, mapped in pyproject.toml)."""
    from importlib import resources

    return Path(str(resources.files("refimpl.tutorials")))


def discover(directory=None) -> dict[str, Path]:
    """The tutorials in ``directory`` (default: the shipped ones), by name, in order.

    A tutorial is a file ``NN_name.py`` (two digits, lower-case name); the name is the
    file's stem. Other files (``__init__.py``) are not tutorials.
    """
    directory = _default_directory() if directory is None else Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory must be an existing folder, got {str(directory)!r}")
    found = {p.stem: p for p in directory.glob("*.py") if NAME_PATTERN.match(p.stem)}
    return dict(sorted(found.items()))


def resolve(names, available: dict[str, Path]) -> dict[str, Path]:
    """Select tutorials by name: the full stem (``03_ema_scaling_rule``), the name without
    its number (``ema_scaling_rule``) or the number (``03``). No names selects all."""
    if not names:
        return dict(available)
    chosen: dict[str, Path] = {}
    for name in names:
        hits = [stem for stem in available
                if name in (stem, stem[:2], NAME_PATTERN.match(stem).group(2))]
        if len(hits) != 1:
            raise ValueError(f"no tutorial named {name!r}; available: {', '.join(available)}")
        chosen[hits[0]] = available[hits[0]]
    return dict(sorted(chosen.items()))


# ------------------------------------------------------------------------------ running

MANIFEST = ".refimpl-files"


def _written_before(out: Path) -> list[str]:
    """The files the previous run wrote into ``out`` (its manifest), if any."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return []
    names = manifest.read_text(encoding="utf-8").splitlines()
    return [n for n in names if n and "/" not in n and "\\" not in n and n != MANIFEST]


def _write_manifest(out: Path, names) -> None:
    """Record what this run wrote into ``out``, then remove what the previous run wrote
    and this one did not (a stale figure): only files a manifest lists are ever removed,
    and only after this run's pages exist, so an interrupted run leaves the previous
    pages and their figures in place."""
    names = sorted(set(names) - {MANIFEST})
    stale = set(_written_before(out)) - set(names)
    render.write_atomic(out / MANIFEST, "\n".join(names) + "\n")
    for name in sorted(stale):
        if (out / name).is_file():
            (out / name).unlink()


def _split_last_expression(source: str, line: int, filename: str):
    """The cell as (statements, last expression or None), compiled with the script's own
    line numbers. Jupyter shows the value of a cell's last bare expression (unless the
    line ends with ';'), so the runner records it too, where the notebook would show it."""
    padded = "\n" * (line - 1) + source
    tree = ast.parse(padded, filename)
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or source.rstrip().endswith(";"):
        return compile(tree, filename, "exec"), None
    statements = ast.Module(body=tree.body[:-1], type_ignores=[])
    expression = ast.Expression(body=last.value)
    return compile(statements, filename, "exec"), compile(expression, filename, "eval")


def run_one(name: str, path, out_root, fast: bool = False) -> Result:
    """Run one tutorial script; write its figures, script, notebook and lesson page to
    OUT/NAME."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    path, out = Path(path), Path(out_root) / name
    out.mkdir(parents=True, exist_ok=True)
    result = Result(name=name, path=path, out=out, fast=fast)
    ctx = _tutorial._Context(name=name, out=out, fast=fast)
    text = path.read_text(encoding="utf-8")
    render.write_atomic(out / path.name, text)
    namespace = {"__name__": "__main__", "__file__": str(path)}
    # what a tutorial may change for itself is put back afterwards
    printoptions, sys_path, cwd = np.get_printoptions(), list(sys.path), os.getcwd()
    rc = dict(matplotlib.rcParams)
    start = time.perf_counter()
    _tutorial._ACTIVE = ctx
    try:
        cells = parse(text)
        code_cells = [c for c in cells if c.kind == "code"]
        for cell in cells:
            if cell.kind == "markdown":
                result.cells.append((cell, [], []))
                continue
            n_figures, n_checks = len(ctx.figures), len(ctx.checks)
            buffer, outputs = io.StringIO(), []
            try:
                # line numbers in tracebacks are the script's own
                code, expression = _split_last_expression(cell.source, cell.line, str(path))
                with contextlib.redirect_stdout(buffer):
                    exec(code, namespace)  # noqa: S102 (running the tutorial is the point)
                    if expression is not None:
                        value = eval(expression, namespace)  # noqa: S307
                        if value is not None:
                            outputs.append(("result", repr(value)))
            finally:
                outputs.insert(0, ("stream", buffer.getvalue()))
                result.cells.append((cell, outputs, ctx.figures[n_figures:]))
            if cell is code_cells[-1] and len(ctx.checks) == n_checks:
                raise _Incomplete("the last code cell records no check: a tutorial ends by "
                                  "checking its claim with tut.check(...)")
        for what, items in (("figure", ctx.figures), ("number", ctx.numbers),
                            ("check", ctx.checks)):
            if not items:
                raise _Incomplete(f"the tutorial recorded no {what}")
        if not ctx.title:
            raise _Incomplete("the tutorial never created refimpl.tutorial.Tutorial(...)")
    except AssertionError as exc:
        result.status = "failed"
        result.message = str(exc) or _short_traceback(exc, path)
    except _Incomplete as exc:
        result.status, result.message = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 (any error of a tutorial is reported, not raised)
        result.status, result.message = "error", _short_traceback(exc, path)
    finally:
        _tutorial._ACTIVE = None
        plt.close("all")
        np.set_printoptions(**printoptions)
        sys.path[:] = sys_path
        os.chdir(cwd)
        matplotlib.rcParams.update(rc)
    result.seconds = time.perf_counter() - start
    result.title, result.claim = ctx.title or name, ctx.claim
    result.idea, result.formula, result.key_figure = ctx.idea, ctx.formula, ctx.key_figure
    result.figures, result.numbers, result.checks = ctx.figures, ctx.numbers, ctx.checks
    _write_lesson(result)
    return result


class _Incomplete(Exception):
    """A tutorial that ran without error but did not record what every tutorial must."""


def _short_traceback(exc: BaseException, path: Path) -> str:
    """The traceback from the tutorial's own frame on (the runner's frames are noise)."""
    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, f in enumerate(frames) if f.filename == str(path)), 0)
    lines = traceback.format_list(frames[first:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def run(names=None, fast: bool = False, out="refimpl-tutorials", directory=None,
        progress=None) -> list[Result]:
    """Run the selected tutorials (default: all) in order and write the index.

    ``progress(text)`` is called with one line when a tutorial starts and one when it
    ends (default: print to stdout). Returns the results in order.
    """
    if not isinstance(fast, bool):
        raise TypeError(f"fast must be a bool, got {type(fast).__name__}")
    available = discover(directory)
    selected = resolve(list(names or []), available)
    if progress is None:
        def progress(line):
            print(line, flush=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    render.write_atomic(out / _tutorial.COURSE_MARKER,
                        "a course folder written by `refimpl tutorials`\n")
    write_proofs(out)
    write_api(out)
    results = []
    width = max(len(n) for n in selected)
    for i, (name, path) in enumerate(selected.items(), start=1):
        progress(f"[{i}/{len(selected)}] {name:{width}s} running ...")
        result = run_one(name, path, out, fast=fast)
        results.append(result)
        status = {"ok": "ok", "failed": "FAILED", "error": "ERROR"}[result.status]
        counts = (f"{len(result.figures)} figures, {len(result.numbers)} numbers, "
                  f"{sum(c.passed for c in result.checks)}/{len(result.checks)} checks hold")
        progress(f"[{i}/{len(selected)}] {name:{width}s} {status:6s} {result.seconds:6.1f} s  "
                 f"({counts})")
        if not result.ok:
            first = result.message.splitlines()[-1] if result.message else ""
            progress(f"      {first}")
    for result in results:  # now every lesson of this run exists: link the neighbours
        _write_lesson(result, {r.name: r.title for r in results}, list(available))
    write_index(results, out)
    return results


# ---------------------------------------------------------------------------- linking

_PROOF_MENTION = re.compile(r"(?<!\]\()(?<![\[/\w])`?proofs/([a-z_]+)\.md(#[\w-]+)?`?(?![\]\w])")


def _link_proof_mentions(markdown: str, prefix: str) -> str:
    """Turn a bare mention of ``proofs/NAME.md`` (in text or a code span, outside code
    blocks) into a Markdown link to ``PREFIX/NAME.md``."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced:
            line = _PROOF_MENTION.sub(
                lambda m: f"[proofs/{m.group(1)}.md{m.group(2) or ''}]"
                          f"({prefix}{m.group(1)}.md{m.group(2) or ''})", line)
        out.append(line)
    return "\n".join(out)


def _linker(page_dir: Path, out: Path):
    """The link rewriter of a page in ``page_dir`` of the course folder ``out``: a link
    to a proof's Markdown goes to its rendered page; a relative link that leaves the
    folder or names nothing in it becomes plain text."""
    out = out.resolve()

    def link(href: str):
        if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith("#"):
            return href
        target, _, anchor = href.partition("#")
        resolved = (page_dir / target).resolve() if target else None
        if resolved is None:
            return href
        if resolved.suffix == ".md" and resolved.parent == out / "proofs":
            # a proof's Markdown (written first) stands for its rendered page
            if not resolved.exists():
                return None
            return target[:-3] + ".html" + (f"#{anchor}" if anchor else "")
        if out not in resolved.parents and resolved != out:
            return None
        if not resolved.exists():
            return None
        return target + (f"#{anchor}" if anchor else "")

    return link


# ---------------------------------------------------------------------------- lessons

def _status_text(result: Result) -> str:
    held = sum(c.passed for c in result.checks)
    if result.ok:
        return f"all {held} checks hold"
    if result.status == "failed":
        return f"FAILED: {result.message.splitlines()[-1] if result.message else 'assertion'}"
    return "ERROR: " + (result.message.splitlines()[-1] if result.message else "")


def _mode(result: Result) -> str:
    return "fast mode" if result.fast else "full mode"


def _cell(text: str) -> str:
    """Text made safe for a Markdown table cell (a bar would end the cell)."""
    return text.replace("|", "\\|")


def _exercise_cells(result: Result) -> list[dict]:
    from refimpl import exercises

    found = exercises.for_tutorial(result.name) if NAME_PATTERN.match(result.name) else []
    if not found:
        return []
    cells = [{"kind": "markdown", "source": "## Exercises\n\nEach checked exercise ends "
              "with a `check(...)` call: run it, read what it says, and try again. "
              "Solutions: `refimpl tutorials --solutions` (try first)."}]
    for ex in found:
        tag = "checked by code" if ex.checked else "on paper"
        cells.append({"kind": "markdown",
                      "source": f"### Exercise {ex.id}: {ex.title} ({tag})\n\n{ex.text}"})
        if ex.checked:
            cells.append({"kind": "code", "source": ex.starter.strip(), "outputs": [],
                          "executed": False})
    return cells


def _notebook_cells(result: Result) -> list[dict]:
    cells = []
    for cell, outputs, figures in result.cells:
        if cell.kind == "markdown":
            cells.append({"kind": "markdown",
                          "source": _link_proof_mentions(cell.source, "../proofs/")})
            continue
        outs = [o for o in outputs if o[0] == "stream"]
        outs += [("image", result.out / f.file) for f in figures]
        outs += [o for o in outputs if o[0] == "result"]
        cells.append({"kind": "code", "source": cell.source, "outputs": outs})
    if not result.ok:
        cells.append({"kind": "markdown", "source": "## This run did not complete\n\n"
                      "```text\n" + result.message + "\n```"})
    return cells + _exercise_cells(result)


def _checks_markdown(result: Result) -> list[str]:
    md = [f"**Result:** {_status_text(result)} ({result.seconds:.1f} s, {_mode(result)})",
          "", f"**Claim.** {result.claim}"]
    if result.numbers:
        md += ["", "| measured | value |", "|---|---:|"]
        md += [f"| {_cell(n.label)} | {_cell(n.text)} |" for n in result.numbers]
    if result.checks:
        md += ["", "Checks:", ""]
        md += [f"- {'holds' if c.passed else '**FAILS**'}: {c.statement}" for c in result.checks]
    return md


def _text_markdown(text: str) -> str:
    """Plain text (a claim, a check statement, a label) safe inside Markdown: a ``$`` or
    a backslash in it is not math or an escape."""
    return text.replace("\\", "\\\\").replace("$", "\\$")


def _checks_html(result: Result, proofs: str) -> str:
    """The Checks section; ``proofs`` is the relative path to the proof pages."""
    def inline(text):
        return render.inline(_link_proof_mentions(_text_markdown(text), proofs))

    cls = "ok" if result.ok else "bad"
    parts = [f'<p><strong>Result:</strong> <span class="{cls}">'
             f"{html.escape(_status_text(result))}</span> ({result.seconds:.1f} s, "
             f"{_mode(result)}).</p>",
             f"<p><strong>Claim.</strong> {inline(result.claim)}</p>"]
    if result.numbers:
        parts.append('<div class="table"><table><thead><tr><th>measured</th><th>value</th>'
                     "</tr></thead><tbody>" + "".join(
                         f"<tr><td>{inline(n.label)}</td>"
                         f"<td>{html.escape(n.text)}</td></tr>" for n in result.numbers)
                     + "</tbody></table></div>")
    if result.checks:
        parts.append("<p>Checks:</p><ul>" + "".join(
            f'<li><span class="{"ok" if c.passed else "bad"}">'
            f'{"holds" if c.passed else "FAILS"}</span>: '
            f"{inline(c.statement)}</li>" for c in result.checks)
            + "</ul>")
    if not result.ok:
        parts.append(f'<pre class="output">{html.escape(result.message)}</pre>')
    return "\n".join(parts)


def _figure_html(fig, prefix: str = "") -> str:
    return (f'<figure><img src="{html.escape(prefix + fig.file)}" '
            f'alt="{html.escape(fig.caption)}" loading="lazy">'
            f"<figcaption>{render.inline(_text_markdown(fig.caption))}</figcaption></figure>")


def _nav_links(result: Result, titles: dict, order) -> tuple[str, str]:
    """The prev/next links of a lesson among ``order``, to lessons that exist (shown by
    their ``titles`` where known, else by name)."""
    order = list(order or [])
    links = ["", ""]
    if result.name in order:
        i = order.index(result.name)
        for k, j in ((0, i - 1), (1, i + 1)):
            if 0 <= j < len(order) and (result.out.parent / order[j] / "lesson.html").is_file():
                arrow = ("&larr; ", "") if k == 0 else ("", " &rarr;")
                links[k] = (f'<a href="../{order[j]}/lesson.html" rel="{("prev", "next")[k]}">'
                            f"{arrow[0]}{order[j][:2]}. {html.escape(titles.get(order[j], order[j]))}"
                            f"{arrow[1]}</a>")
    return links[0], links[1]


def _write_lesson(result: Result, titles=None, order=None) -> None:
    """OUT/NAME/lesson.html, lesson.md and NAME.ipynb; ``order`` (the course's lesson
    names) and ``titles`` (name -> title) give the previous/next links."""
    out = result.out
    course_root = out.parent
    link = _linker(out, course_root)
    seen: set = set()
    cells = list(result.cells)
    intro = []
    if cells and cells[0][0].kind == "markdown":
        intro, cells = [cells[0]], cells[1:]

    def md_html(source: str) -> render.Rendered:
        return render.markdown_to_html(_link_proof_mentions(source, "../proofs/"), link, seen)

    head, md = [], []
    if intro:
        rendered = md_html(intro[0][0].source)
        head.append(rendered.html)
        md.append(intro[0][0].source)
    if not intro or not intro[0][0].source.lstrip().startswith("# "):
        head.insert(0, f"<h1>{html.escape(result.title)}</h1>")
        md.insert(0, f"# {result.title}")
    key = next((f for f in result.figures if f.file == result.key_figure), None)
    if result.idea or result.formula or key:
        box = ['<section class="box idea"><h2 id="the-idea">The idea</h2>']
        seen.add("the-idea")
        md.append("## The idea")
        if result.idea:
            box.append(md_html(result.idea).html)
            md.append(result.idea)
        if result.formula:
            box.append('<div class="math">' + render.math_to_mathml(result.formula, True)
                       + "</div>")
            md.append(f"$$\n{result.formula}\n$$")
        box.append("</section>")
        head.append("\n".join(box))
        if key:
            head.append(_figure_html(key))
            md.append(f"![{key.caption}]({key.file})\n\n*{key.caption}*")
    body, headings = [], []
    for cell, outputs, figures in cells:
        if cell.kind == "markdown":
            rendered = md_html(cell.source)
            body.append(rendered.html)
            headings += rendered.headings
            md.append(cell.source)
            continue
        body.append(render.highlight(cell.source))
        md.append("```python\n" + cell.source + "\n```")
        stream = "".join(v for k, v in outputs if k == "stream")
        results = [v for k, v in outputs if k == "result"]
        if stream.strip():
            body.append('<pre class="output">' + html.escape(stream.rstrip()) + "</pre>")
            md.append("```text\n" + stream.rstrip() + "\n```")
        for fig in figures:
            body.append(_figure_html(fig))
            md.append(f"![{fig.caption}]({fig.file})\n\n*{fig.caption}*")
        for value in results:
            body.append('<pre class="output">' + html.escape(value) + "</pre>")
            md.append("```text\n" + value + "\n```")
    if not result.ok:
        body.append('<h2 id="this-run-did-not-complete">This run did not complete</h2>'
                    '<pre class="output">' + html.escape(result.message) + "</pre>")
        headings.append((2, "this-run-did-not-complete", "This run did not complete"))
        md.append("## This run did not complete\n\n```text\n" + result.message + "\n```")
    exercise_cells = _exercise_cells(result)
    if exercise_cells:
        rendered = md_html(exercise_cells[0]["source"])
        body.append(rendered.html)
        headings += rendered.headings
        md.append(exercise_cells[0]["source"])
        for cell in exercise_cells[1:]:
            if cell["kind"] == "markdown":
                rendered = md_html(cell["source"])
                body.append(f'<section class="box exercise">{rendered.html}</section>')
                headings += rendered.headings
                md.append(cell["source"])
            else:  # the starter code goes inside the exercise's box
                body[-1] = body[-1][:-len("</section>")] + render.highlight(cell["source"]) \
                    + "</section>"
                md.append("```python\n" + cell["source"] + "\n```")
    code_html, code_md = _code_section(result)
    if code_html:
        body.append(code_html)
        headings.append((2, "code", "Code"))
        md.append(code_md)
    body.append('<h2 id="checks">Checks</h2>')
    headings.append((2, "checks", "Checks"))
    body.append(f"<p>What this run of <code>{html.escape(result.path.name)}</code> measured "
                "and checked; every number above comes from the code on this page.</p>")
    body.append(_checks_html(result, "../proofs/"))
    md += ["## Checks", ""] + _checks_markdown(result)
    prev, nxt = _nav_links(result, titles or {}, order)
    notebook, script = f"{result.name}.ipynb", result.path.name
    nav = (f'<a href="../index.html">Course index</a>{prev}{nxt}'
           f'<span class="spacer"></span><a href="{notebook}">Notebook</a>'
           f'<a href="{script}">Script</a>')
    footer = f"<span>{prev}</span><span>{nxt}</span>"
    page_body = "\n".join(head + [render.toc(headings)] + body)
    render.write_atomic(out / "lesson.html", render.page(result.title, page_body, nav, footer))
    md.append("---\n\n" + f"Run by `refimpl tutorials` in {_mode(result)}: "
              f"{_status_text(result)} ({result.seconds:.1f} s). Script: "
              f"[{script}]({script}); notebook: [{notebook}]({notebook}); "
              f"index: [../index.md](../index.md).")
    render.write_atomic(out / "lesson.md", "\n\n".join(md) + "\n")
    nb = render.notebook(_notebook_cells(result))
    render.write_atomic(out / notebook, render.notebook_json(nb))
    _write_manifest(out, [script, notebook, "lesson.html", "lesson.md"]
                    + [f.file for f in result.figures])


# ------------------------------------------------------------------------------ proofs

def _proofs_directory() -> Path | None:
    """The shipped proofs: the ``refimpl.proofs`` package (the repository's ``proofs/``
    folder, mapped in pyproject.toml), or None if absent."""
    from importlib import resources

    try:
        folder = Path(str(resources.files("refimpl.proofs")))
    except ModuleNotFoundError:
        return None
    return folder if folder.is_dir() else None


def proof_titles(directory=None) -> dict[str, str]:
    """Each proof file's stem and its first heading."""
    directory = _proofs_directory() if directory is None else Path(directory)
    titles = {}
    for path in sorted(directory.glob("*.md")) if directory else []:
        first = next((ln[2:].strip() for ln in path.read_text(encoding="utf-8").splitlines()
                      if ln.startswith("# ")), path.stem)
        titles[path.stem] = first
    return titles


def write_api(out) -> list[Path]:
    """OUT/api: the API reference (:mod:`refimpl.apidoc`) when its optional generator,
    pdoc, is installed (``pip install 'refimpl[docs]'``); nothing otherwise, and the
    lessons then name the code they use without linking it."""
    from refimpl import apidoc

    try:
        return apidoc.write(Path(out) / "api", proofs=Path(out) / "proofs")
    except ModuleNotFoundError:
        return []


#: how tutorials refer to refimpl's modules: ``r.SGD``, ``theory.moments``, ``data.circles``
_CODE_NAME = re.compile(r"\b(r|theory|filters|golden|landscape|scaling|data)\.([A-Za-z_]\w*)\b")
_MODULE_OF = {"r": "", "data": "problems.data."}


def _code_section(result: Result) -> tuple[str, str]:
    """The lesson's "Code" section (HTML, Markdown): every refimpl name its code cells
    use, each linked to its entry in the API reference when OUT/api exists."""
    from refimpl import apidoc

    api = result.out.parent / "api"
    names = {}
    for cell in result.cells:
        if cell[0].kind != "code":
            continue
        for prefix, name in _CODE_NAME.findall(cell[0].source):
            if name.startswith("_"):
                continue
            qualified = _MODULE_OF.get(prefix, prefix + ".") + name
            target = apidoc.anchor(qualified)
            if target is not None:
                label = name if prefix == "r" else f"{prefix}.{name}"
                names.setdefault(label, target)
    if not names:
        return "", ""
    have_api = (api / "index.html").is_file()
    items_html, items_md = [], []
    for label, target in sorted(names.items(), key=lambda kv: kv[0].lower()):
        code = f"<code>{html.escape(label)}</code>"
        items_html.append(f'<a href="../api/{target}">{code}</a>' if have_api else code)
        items_md.append(f"[`{label}`](../api/{target})" if have_api else f"`{label}`")
    note = ("Each name links to its entry in the API reference (the docstring states the "
            "update in its order of operations)." if have_api else
            "The API reference is not in this folder: <code>pip install "
            "'refimpl[docs]'</code>, then <code>refimpl tutorials</code> or "
            "<code>refimpl api</code>.")
    body = (f'<h2 id="code">Code</h2>\n<p>refimpl names this lesson uses: '
            f'{", ".join(items_html)}.</p>\n<p>{note}</p>')
    md = ("## Code\n\nrefimpl names this lesson uses: " + ", ".join(items_md) + ".\n\n"
          + re.sub(r"</?code>", "`", note))
    return body, md


def write_proofs(out, directory=None) -> list[Path]:
    """OUT/proofs/NAME.html (rendered, math included) and NAME.md for every proof."""
    directory = _proofs_directory() if directory is None else Path(directory)
    if directory is None:
        return []
    target = Path(out) / "proofs"
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(directory.glob("*.md"))
    for path in sources:  # the Markdown first, so that links between proofs resolve
        render.write_atomic(target / path.name, path.read_text(encoding="utf-8"))
    titles = proof_titles(directory)
    written, link = [], _linker(target, Path(out))
    for path in sources:
        text = path.read_text(encoding="utf-8")
        rendered = render.markdown_to_html(_link_proof_mentions(text, ""), link)
        nav = ('<a href="../index.html">Course index</a><a href="README.html">All proofs</a>'
               '<span class="spacer"></span>' + f'<a href="{path.name}">Markdown</a>')
        body = rendered.html
        if len(rendered.headings) > 3:
            first_h2 = body.find("<h2")
            toc = render.toc(rendered.headings)
            body = body[:first_h2] + toc + body[first_h2:] if first_h2 >= 0 else toc + body
        render.write_atomic(target / f"{path.stem}.html",
                            render.page(titles[path.stem], body, nav))
        written.append(target / f"{path.stem}.html")
    _write_manifest(target, [p.name for p in sources] + [p.name for p in written])
    return written


# ------------------------------------------------------------------------------- index

def write_index(results: list[Result], out) -> tuple[Path, Path]:
    """OUT/index.html and OUT/index.md: per tutorial its idea, key figure and links, the
    proofs, then per tutorial its claim, numbers, checks and figures."""
    from refimpl import __version__

    out = Path(out)
    link = _linker(out, out)
    modes = sorted({_mode(r) for r in results})
    intro = (f"Course material generated by `refimpl tutorials` (refimpl {__version__}, "
             f"{' and '.join(modes)}). Each lesson teaches one idea: read its page, open "
             f"its notebook (`NN_name/NN_name.ipynb`, in Jupyter or VS Code) or run its "
             f"script (`python NN_name/NN_name.py` from this folder writes into the "
             f"lesson's folder). Every number and claim on these pages is checked by the "
             f"code that drew the figure: the checks are listed at the end of each lesson "
             f"and below.")
    md = ["# refimpl tutorials", "", intro, "", "## Lessons", ""]
    body = ["<h1>refimpl tutorials</h1>", render.markdown_to_html(intro).html,
            '<h2 id="lessons">Lessons</h2>']
    proofs = proof_titles() if (out / "proofs").is_dir() else {}
    for r in results:
        lesson, nb = f"{r.name}/lesson.html", f"{r.name}/{r.name}.ipynb"
        cls = "ok" if r.ok else "bad"
        body.append(f'<section class="box"><h3 id="lesson-{r.name}"><a href="{lesson}">'
                    f"{r.name[:2]}. {html.escape(r.title)}</a></h3>")
        md += [f"### {r.name[:2]}. [{r.title}]({r.name}/lesson.md)", ""]
        if r.idea:
            body.append(render.markdown_to_html(_link_proof_mentions(r.idea, "proofs/"),
                                                link).html)
            md += [r.idea, ""]
        if r.formula:
            body.append('<div class="math">' + render.math_to_mathml(r.formula, True)
                        + "</div>")
            md += [f"$$\n{r.formula}\n$$", ""]
        key = next((f for f in r.figures if f.file == r.key_figure), None)
        if key:
            body.append(_figure_html(key, f"{r.name}/"))
            md += [f"![{key.caption}]({r.name}/{key.file})", ""]
        body.append(f'<p><a href="{lesson}">Lesson</a> · <a href="{nb}">Notebook</a> · '
                    f'<a href="{r.name}/{r.path.name}">Script</a> · '
                    f'<a href="#checks-{r.name}">Checks</a>: <span class="{cls}">'
                    f"{html.escape(_status_text(r))}</span></p></section>")
        md += [f"[Lesson]({r.name}/lesson.md) · [Notebook]({nb}) · "
               f"[Script]({r.name}/{r.path.name}) · Result: {_status_text(r)}", ""]
    if proofs:
        body.append('<h2 id="proofs">Proofs</h2><ul>' + "".join(
            f'<li><a href="proofs/{stem}.html">{render.inline(title)}</a></li>'
            for stem, title in proofs.items()) + "</ul>")
        md += ["## Proofs", ""] + [f"- [{t}](proofs/{s}.md)" for s, t in proofs.items()] + [""]
    body.append('<h2 id="checks">Checks</h2><p>Per lesson: the claim as checked, every '
                "measured number, every check and every figure.</p>")
    md += ["## Checks", ""]
    for r in results:
        body.append(f'<h3 id="checks-{r.name}">{r.name[:2]}. {html.escape(r.title)}</h3>')
        body.append(_checks_html(r, "proofs/"))
        body.append('<div class="thumbs">' + "".join(
            f'<a href="{r.name}/lesson.html"><img src="{r.name}/{html.escape(f.file)}" '
            f'alt="{html.escape(f.caption)}" loading="lazy"></a>' for f in r.figures)
            + "</div>")
        md += ["", f'<a id="{r.name}"></a>', f"## {r.name[:2]}. {r.title}", ""]
        md += _checks_markdown(r)
        md += [""] + [f"![{f.caption}]({r.name}/{f.file})" for f in r.figures]
    md_path, html_path = out / "index.md", out / "index.html"
    render.write_atomic(md_path, "\n".join(md) + "\n")
    render.write_atomic(html_path, render.page("refimpl tutorials", "\n".join(body),
                                               nav='<a href="index.html">Course index</a>'
                                                   '<a href="#lessons">Lessons</a>'
                                                   '<a href="#proofs">Proofs</a>'
                                                   '<a href="#checks">Checks</a>'))
    return md_path, html_path


# --------------------------------------------------------------------------- solutions

def write_solutions(out, names=None) -> list[Path]:
    """OUT/solutions/tNN_name.py: the reference solutions of the selected tutorials'
    exercises (not linked from any page: a student asks for them)."""
    from refimpl import exercises

    selected = resolve(list(names or []), discover())
    target = Path(out) / "solutions"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in selected:
        try:
            module = exercises.solutions_for(name)
        except ModuleNotFoundError:
            continue
        path = target / f"t{name}.py"
        render.write_atomic(path, Path(module.__file__).read_text(encoding="utf-8"))
        written.append(path)
    return written


def _check_writable(out: Path) -> None:
    """Fail before any work when ``out`` cannot be created or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".refimpl-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {str(out)!r} cannot be written: {exc.strerror or exc}") from None


def main(fast: bool, out, names, solutions: bool = False) -> int:
    """The ``refimpl tutorials`` command: 0 if every tutorial holds, 1 if not, 2 on a
    usage error (an unknown tutorial name, no tutorials found, ``--out`` a file)."""
    try:
        available = discover()
        if not available:
            raise ValueError(f"no tutorials (NN_name.py files) in {_default_directory()}")
        selected = resolve(names, available)
        if Path(out).exists() and not Path(out).is_dir():
            raise ValueError(f"--out must be a folder (it is created if needed), got the "
                             f"file {str(out)!r}")
        if not str(out).strip():
            raise ValueError("--out must name a folder, got an empty string")
        _check_writable(Path(out))
    except ValueError as exc:
        print(f"refimpl tutorials: {exc}", file=sys.stderr)
        return 2
    out = Path(out)
    if solutions:
        written = write_solutions(out, names)
        for path in written:
            print(path)
        print(f"{len(written)} solution files in {out / 'solutions'}/ (try the exercises first)")
        return 0
    mode = "fast mode" if fast else "full mode"
    print(f"refimpl tutorials: {len(selected)} tutorials, {mode}, writing to {out}/", flush=True)
    total = time.perf_counter()
    results = run(names, fast=fast, out=out)
    bad = [r.name for r in results if not r.ok]
    print(f"{len(results) - len(bad)} of {len(results)} tutorials hold "
          f"({time.perf_counter() - total:.1f} s). Open {out / 'index.html'} "
          f"(or {out / 'index.md'}).")
    if bad:
        print(f"not holding: {', '.join(bad)}")
    return 1 if bad else 0
