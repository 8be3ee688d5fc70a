"""``refimpl tutorials``: run the tutorials headless and write a folder of course material.

The tutorials are the percent-format scripts in the repository's ``tutorials/`` folder
(``NN_name.py``; they ship in the package as ``refimpl.tutorials``). For each selected
tutorial the runner

1. parses the script into cells (``# %% [markdown]`` prose, ``# %%`` code),
2. runs the code cells in order in one fresh namespace, with matplotlib's Agg backend,
   capturing each cell's printed output and the figures it saves through
   :class:`refimpl.tutorial.Tutorial`,
3. writes ``OUT/NAME/``: the figures, the script itself, and a lesson page
   (``lesson.md`` and ``lesson.html``: prose, code, output and figures in order).

Then it writes ``OUT/index.md`` and ``OUT/index.html``: per tutorial its claim, its
measured numbers, its checks and its figures. A tutorial *fails* when one of its checks
(or any ``assert``) fails, and is an *error* when it raises anything else or does not
record a title, a figure, a number and, in its last code cell, a check. ``run`` returns
one :class:`Result` per tutorial; the command exits 1 if any is not ok.

Nothing here changes what a tutorial computes: a tutorial run by ``python
tutorials/NN_name.py`` prints the same numbers and saves the same figures.
"""

from __future__ import annotations

import contextlib
import html
import io
import os
import re
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from refimpl import tutorial as _tutorial

__all__ = [
    "Cell",
    "Result",
    "discover",
    "markdown_to_html",
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
    cells: list = field(default_factory=list)     # (Cell, output text, [Figure]) per cell run

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

def run_one(name: str, path, out_root, fast: bool = False) -> Result:
    """Run one tutorial script; write its figures, script and lesson page to OUT/NAME."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    path, out = Path(path), Path(out_root) / name
    if out.exists():  # a previous run's figures must not survive into this one
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result = Result(name=name, path=path, out=out, fast=fast)
    ctx = _tutorial._Context(name=name, out=out, fast=fast)
    text = path.read_text(encoding="utf-8")
    shutil.copyfile(path, out / path.name)
    namespace = {"__name__": "__main__", "__file__": str(path)}
    # what a tutorial may change for itself is put back afterwards
    printoptions, sys_path, cwd = np.get_printoptions(), list(sys.path), os.getcwd()
    start = time.perf_counter()
    _tutorial._ACTIVE = ctx
    try:
        cells = parse(text)
        code_cells = [c for c in cells if c.kind == "code"]
        for cell in cells:
            if cell.kind == "markdown":
                result.cells.append((cell, "", []))
                continue
            n_figures, n_checks = len(ctx.figures), len(ctx.checks)
            buffer = io.StringIO()
            # line numbers in tracebacks are the script's own
            code = compile("\n" * (cell.line - 1) + cell.source, str(path), "exec")
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(code, namespace)  # noqa: S102 (running the tutorial is the point)
            finally:
                result.cells.append((cell, buffer.getvalue(), ctx.figures[n_figures:]))
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
    result.seconds = time.perf_counter() - start
    result.title, result.claim = ctx.title or name, ctx.claim
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
    selected = resolve(list(names or []), discover(directory))
    if progress is None:
        def progress(line):
            print(line, flush=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
    write_index(results, out)
    return results


# ---------------------------------------------------------------------------- rendering

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #1a1a1a; }
pre { background: #f5f5f5; padding: 0.6rem; overflow-x: auto; font-size: 0.9rem; }
pre.output { background: #fbfbf0; border-left: 3px solid #c9c28a; }
code { font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; font-size: 0.92rem; }
.ok { color: #1a7f37; } .bad { color: #cf222e; font-weight: bold; }
""".strip()


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def _inline(text: str) -> str:
    """Inline Markdown to HTML: `code`, **bold**, *italic*, [text](url); escapes HTML."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                      lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', part)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
        out.append(part)
    return "".join(out)


def _table_row(line: str) -> list[str]:
    """The cells of a pipe-table row; ``\\|`` is a literal bar inside a cell."""
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def _cell(text: str) -> str:
    """Text made safe for a Markdown table cell (a bar would end the cell)."""
    return text.replace("|", "\\|")


def markdown_to_html(text: str) -> str:
    """The Markdown subset the tutorials use, as HTML.

    Supported: ``#``-``####`` headings, paragraphs, ``- `` and ``1. `` lists (one level;
    an indented line continues the item), fenced code blocks, pipe tables with a
    ``|---|`` separator row, and inline `code`, **bold**, *italic* and [links](url).
    Anything else is shown as text (HTML in the source is escaped, never interpreted).
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j])) + "</code></pre>")
            i = j + 1
        elif m := re.match(r"^(#{1,4})\s+(.*)$", line):
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2).strip())}</h{level}>")
            i += 1
        elif (line.lstrip().startswith("|") and i + 1 < len(lines)
              and re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1])):
            head = _table_row(line)
            rows, j = [], i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                rows.append(_table_row(lines[j]))
                j += 1
            cells = "".join(f"<th>{_inline(c)}</th>" for c in head)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                           for r in rows)
            out.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>")
            i = j
        elif re.match(r"^([-*]|\d+\.)\s+", line):
            ordered = bool(re.match(r"^\d+\.", line))
            items, j = [], i
            while j < len(lines):
                m = re.match(r"^([-*]|\d+\.)\s+(.*)$", lines[j])
                if m and bool(re.match(r"^\d+\.", lines[j])) == ordered:
                    items.append(m.group(2))
                elif items and lines[j].startswith((" ", "\t")) and lines[j].strip():
                    items[-1] += " " + lines[j].strip()
                else:
                    break
                j += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(t)}</li>" for t in items) + f"</{tag}>")
            i = j
        else:
            para, j = [], i
            while (j < len(lines) and lines[j].strip() and not lines[j].startswith("```")
                   and not re.match(r"^(#{1,4}\s|([-*]|\d+\.)\s+|\s*\|)", lines[j])):
                para.append(lines[j].strip())
                j += 1
            if not para:  # a line no rule claims (e.g. "#hashtag"): plain text
                para, j = [line.strip()], i + 1
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
            i = j
    return "\n".join(out)


def _status_text(result: Result) -> str:
    held = sum(c.passed for c in result.checks)
    if result.ok:
        return f"all {held} checks hold"
    if result.status == "failed":
        return f"FAILED: {result.message.splitlines()[-1] if result.message else 'assertion'}"
    return "ERROR: " + (result.message.splitlines()[-1] if result.message else "")


def _mode(result: Result) -> str:
    return "fast mode" if result.fast else "full mode"


def _write_lesson(result: Result) -> None:
    """OUT/NAME/lesson.md and lesson.html: the script's cells with their outputs."""
    md, body = [], []
    for cell, output, figures in result.cells:
        if cell.kind == "markdown":
            md.append(cell.source)
            body.append(markdown_to_html(cell.source))
            continue
        md.append("```python\n" + cell.source + "\n```")
        body.append("<pre><code>" + html.escape(cell.source) + "</code></pre>")
        if output.strip():
            md.append("```text\n" + output.rstrip() + "\n```")
            body.append('<pre class="output">' + html.escape(output.rstrip()) + "</pre>")
        for fig in figures:
            md.append(f"![{fig.caption}]({fig.file})\n\n*{fig.caption}*")
            body.append(f'<figure><img src="{html.escape(fig.file)}" alt="{html.escape(fig.caption)}">'
                        f"<figcaption>{_inline(fig.caption)}</figcaption></figure>")
    footer = (f"Run by `refimpl tutorials` in {_mode(result)}: {_status_text(result)} "
              f"({result.seconds:.1f} s). Script: [{result.path.name}]({result.path.name}); "
              f"index: [../index.md](../index.md).")
    if not result.ok:
        md.append("## This run did not complete\n\n```text\n" + result.message + "\n```")
        body.append("<h2>This run did not complete</h2><pre class=\"output\">"
                    + html.escape(result.message) + "</pre>")
    md.append("---\n\n" + footer)
    body.append("<hr>\n<p>" + _inline(footer.replace("../index.md", "../index.html")) + "</p>")
    (result.out / "lesson.md").write_text("\n\n".join(md) + "\n", encoding="utf-8")
    (result.out / "lesson.html").write_text(_page(result.title, "\n".join(body)), encoding="utf-8")


def write_index(results: list[Result], out) -> tuple[Path, Path]:
    """OUT/index.md and OUT/index.html: per tutorial its claim, numbers, checks, figures."""
    from refimpl import __version__

    out = Path(out)
    modes = sorted({_mode(r) for r in results})
    intro = (f"Generated by `refimpl tutorials` (refimpl {__version__}, "
             f"{' and '.join(modes)}). Each tutorial is a script you can read, run "
             f"(`python NAME/NN_name.py`) or open as a notebook; its lesson page shows the "
             f"prose, code, printed output and figures in order.")
    md = ["# refimpl tutorials", "", intro, "",
          "| # | tutorial | result | figures | time |", "|---|---|---|---:|---:|"]
    body = ["<h1>refimpl tutorials</h1>", markdown_to_html(intro),
            ("<table><thead><tr><th>#</th><th>tutorial</th><th>result</th><th>figures</th>"
            "<th>time</th></tr></thead><tbody>")]
    for r in results:
        number = r.name[:2]
        md.append(f"| {number} | [{r.title}](#{r.name}) | {_status_text(r)} | "
                  f"{len(r.figures)} | {r.seconds:.1f} s |")
        cls = "ok" if r.ok else "bad"
        body.append(f'<tr><td>{number}</td><td><a href="#{r.name}">{html.escape(r.title)}</a></td>'
                    f'<td class="{cls}">{html.escape(_status_text(r))}</td>'
                    f"<td>{len(r.figures)}</td><td>{r.seconds:.1f} s</td></tr>")
    body.append("</tbody></table>")
    for r in results:
        link = f"{r.name}/lesson"
        md += ["", f'<a id="{r.name}"></a>', f"## {r.name[:2]}. {r.title}", "",
               f"**Claim.** {r.claim}", "", (f"**Result:** {_status_text(r)} "
               f"({r.seconds:.1f} s, {_mode(r)}). Lesson: [{link}.md]({link}.md); "
               f"script: [{r.path.name}]({r.name}/{r.path.name}).")]
        body += [f'<h2 id="{r.name}">{r.name[:2]}. {html.escape(r.title)}</h2>',
                 f"<p><strong>Claim.</strong> {_inline(r.claim)}</p>",
                 (f'<p><strong>Result:</strong> <span class="{"ok" if r.ok else "bad"}">'
                 f"{html.escape(_status_text(r))}</span> ({r.seconds:.1f} s, {_mode(r)}). "
                 f'Lesson: <a href="{link}.html">{link}.html</a>; script: '
                 f'<a href="{r.name}/{r.path.name}">{r.path.name}</a>.</p>')]
        if r.numbers:
            md += ["", "| measured | value |", "|---|---:|"]
            md += [f"| {_cell(n.label)} | {_cell(n.text)} |" for n in r.numbers]
            body.append("<table><thead><tr><th>measured</th><th>value</th></tr></thead><tbody>"
                        + "".join(f"<tr><td>{_inline(n.label)}</td><td>{html.escape(n.text)}</td>"
                                  f"</tr>" for n in r.numbers) + "</tbody></table>")
        if r.checks:
            md += ["", "Checks:", ""]
            md += [f"- {'holds' if c.passed else '**FAILS**'}: {c.statement}" for c in r.checks]
            body.append("<p>Checks:</p><ul>" + "".join(
                f'<li><span class="{"ok" if c.passed else "bad"}">'
                f'{"holds" if c.passed else "FAILS"}</span>: {_inline(c.statement)}</li>'
                for c in r.checks) + "</ul>")
        if not r.ok:
            md += ["", "```text", r.message, "```"]
            body.append(f'<pre class="output">{html.escape(r.message)}</pre>')
        for fig in r.figures:
            md += ["", f"![{fig.caption}]({r.name}/{fig.file})", "", f"*{fig.caption}*"]
            body.append(f'<figure><img src="{r.name}/{html.escape(fig.file)}" '
                        f'alt="{html.escape(fig.caption)}"><figcaption>{_inline(fig.caption)}'
                        f"</figcaption></figure>")
    md_path, html_path = out / "index.md", out / "index.html"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    html_path.write_text(_page("refimpl tutorials", "\n".join(body)), encoding="utf-8")
    return md_path, html_path


def main(fast: bool, out, names) -> int:
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
    except ValueError as exc:
        print(f"refimpl tutorials: {exc}", file=sys.stderr)
        return 2
    out = Path(out)
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
