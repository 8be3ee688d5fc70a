"""Markdown with mathematics to HTML pages, and Python cells to notebooks, offline.

The course folder that ``refimpl tutorials`` writes is read in a browser with no network,
projected in a lecture and opened as notebooks, so everything is produced at build time:

* Markdown is parsed by markdown-it-py (CommonMark, plus tables) with the dollarmath
  plugin of mdit-py-plugins: ``$...$`` is inline math, ``$$...$$`` display math.
* Each formula is converted to MathML by latex2mathml; browsers render MathML natively
  (no script, no font download). ``\\begin{aligned}`` is rewritten to the equivalent
  right/left ``array`` first (latex2mathml does not align it). A formula that does not
  convert is shown as its source in a ``math-error`` span and counted in
  :data:`MATH_ERRORS`, which the tests require to stay empty.
* Code is highlighted by pygments.
* Headings get stable ``id`` slugs, from which a lesson's table of contents is built.
* Links are rewritten by a caller's function (for example ``../proofs/sgd.md`` to the
  rendered ``../proofs/sgd.html``); a link whose target is not in the folder becomes
  plain text, so no link in the folder is broken.

:func:`notebook` builds an nbformat 4 notebook (a plain JSON dict) from cells and the
outputs a run recorded; :func:`write_atomic` writes any output through a temporary file
and a rename, so an interrupted run never leaves a half-written page.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["Rendered", "markdown_to_html", "math_to_mathml", "highlight", "page",
           "notebook", "write_atomic", "MATH_ERRORS"]

#: Formulas that failed to convert in this process: (formula, error) pairs.
MATH_ERRORS: list[tuple[str, str]] = []


def write_atomic(path, data) -> None:
    """Write ``data`` (str or bytes) to ``path`` through a temporary file in the same
    folder and a rename: readers see the old file or the new one, never a part."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a page is for everyone
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


# ------------------------------------------------------------------------------ maths

def _aligned_to_array(latex: str) -> str:
    """``\\begin{aligned}`` (and ``align*``) as the ``array`` latex2mathml aligns."""
    def repl(m):
        body = m.group(2)
        columns = max(row.count("&") for row in re.split(r"\\\\", body)) + 1
        spec = ("rl" * columns)[:columns]
        return rf"\begin{{array}}{{{spec}}}{body}\end{{array}}"

    return re.sub(r"\\begin\{(aligned|align\*?)\}(.*?)\\end\{\1\}", repl, latex, flags=re.S)


def math_to_mathml(latex: str, display: bool) -> str:
    """One formula as MathML (``display`` for a block), or a visible error span."""
    from latex2mathml.converter import convert

    source = _aligned_to_array(latex.strip())
    try:
        mathml = convert(source, display="block" if display else "inline")
    except Exception as exc:  # noqa: BLE001 (any failure is shown and counted)
        MATH_ERRORS.append((latex, f"{type(exc).__name__}: {exc}"))
        return f'<code class="math-error">{html.escape(latex)}</code>'
    if "<mi>&</mi>" in mathml or "<merror" in mathml:
        MATH_ERRORS.append((latex, "unsupported construct"))
        return f'<code class="math-error">{html.escape(latex)}</code>'
    return mathml


# ------------------------------------------------------------------------- highlighting

def highlight(code: str, language: str = "python") -> str:
    """``code`` as highlighted HTML (``<div class="highlight"><pre>...``)."""
    from pygments import highlight as _highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language or "text")
    except ClassNotFound:
        lexer = TextLexer()
    return _highlight(code, lexer, HtmlFormatter(cssclass="highlight"))


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


# ---------------------------------------------------------------------------- markdown

def _slugify(text: str) -> str:
    slug = re.sub(r"[^\w\s-]", "", text.lower()).strip()
    return re.sub(r"[\s]+", "-", slug) or "section"


@dataclass
class Rendered:
    """HTML and the headings found in it: (level, id, text)."""

    html: str
    headings: list = field(default_factory=list)


def _parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.use(dollarmath_plugin, double_inline=True)
    return md


def markdown_to_html(text: str, link: Callable[[str], str | None] | None = None,
                     seen_ids: set | None = None) -> Rendered:
    """Render Markdown with ``$`` math to HTML.

    ``link(href)`` returns the href to use, or None to show the link's text without a
    link (default: keep every href). ``seen_ids`` collects heading ids across the calls
    that make one page, so ids stay unique on it.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    md = _parser()
    tokens = md.parse(text)
    seen = set() if seen_ids is None else seen_ids
    headings = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            inline = tokens[i + 1]
            plain = "".join(c.content for c in (inline.children or [])
                            if c.type in ("text", "code_inline", "math_inline"))
            slug, k = _slugify(plain), 2
            base = slug
            while slug in seen:
                slug, k = f"{base}-{k}", k + 1
            seen.add(slug)
            token.attrSet("id", slug)
            headings.append((int(token.tag[1]), slug, inline.content))
        if token.type == "inline" and link is not None:
            _rewrite_links(token.children or [], link)
    renderer = md.renderer

    def math_inline(tokens_, idx, options, env):
        return math_to_mathml(tokens_[idx].content, display=False)

    def math_block(tokens_, idx, options, env):
        return f'<div class="math">{math_to_mathml(tokens_[idx].content, display=True)}</div>\n'

    def fence(tokens_, idx, options, env):
        token = tokens_[idx]
        language = token.info.strip().split()[0] if token.info.strip() else "text"
        return highlight(token.content, language)

    renderer.rules["math_inline"] = math_inline
    renderer.rules["math_inline_double"] = math_block
    renderer.rules["math_block"] = math_block
    renderer.rules["math_block_label"] = math_block
    renderer.rules["fence"] = fence
    renderer.rules["code_block"] = fence
    body = renderer.render(tokens, md.options, {})
    # a wide table scrolls inside its own box, never the page
    body = body.replace("<table>", '<div class="table"><table>').replace("</table>",
                                                                          "</table></div>")
    return Rendered(body, headings)


def _rewrite_links(children, link) -> None:
    depth_drop = []
    for child in children:
        if child.type == "link_open":
            new = link(child.attrGet("href") or "")
            if new is None:
                child.type, child.tag = "span_open", "span"
                child.attrs = {"class": "ref"}
                depth_drop.append(True)
            else:
                child.attrSet("href", new)
                depth_drop.append(False)
        elif child.type == "link_close" and depth_drop:
            if depth_drop.pop():
                child.type, child.tag = "span_close", "span"


# ------------------------------------------------------------------------------- pages

CSS = """
:root { --column: 1000px; }
html { font-size: 18px; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.55;
       color: #1a1a1a; margin: 0; }
main, nav.top, footer { max-width: var(--column); margin: 0 auto; padding: 0 1.2rem; }
nav.top { display: flex; gap: 1.2rem; flex-wrap: wrap; padding-top: 0.8rem;
          padding-bottom: 0.8rem; border-bottom: 1px solid #ddd; font-size: 0.95rem; }
nav.top .spacer { flex: 1; }
footer { border-top: 1px solid #ddd; margin-top: 2rem; padding-top: 0.8rem;
         padding-bottom: 2rem; display: flex; justify-content: space-between; gap: 1rem; }
h1 { font-size: 2rem; line-height: 1.2; } h2 { margin-top: 2rem; }
p, li, td, th, figcaption { overflow-wrap: anywhere; }
a { color: #0b5cad; }
code { font-size: 0.92em; background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }
.highlight, pre { font-size: 0.9rem; }
.highlight pre, pre { padding: 0.7rem 0.9rem; overflow-x: auto; background: #f6f8fa;
                      border-radius: 4px; }
pre.output { background: #fbfbf0; border-left: 4px solid #c9c28a; white-space: pre-wrap;
             overflow-wrap: anywhere; }
div.math { overflow-x: auto; overflow-y: hidden; padding: 0.3rem 0; }
math { font-size: 1.1em; font-family: "Latin Modern Math", "STIX Two Math", "Cambria Math",
                                   math; }
math[display="block"] { margin: 0.4rem 0; }
div.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-style: italic; font-size: 0.95rem; color: #333; }
.box { border: 1px solid #c8d7e8; background: #f3f8fd; border-radius: 6px;
       padding: 0.6rem 1.1rem; margin: 1.2rem 0; }
.box.exercise { border-color: #d8cfa8; background: #fdfbf2; }
.toc { font-size: 0.95rem; } .toc ul { margin: 0.2rem 0; list-style: none; padding-left: 1.2rem; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #cf222e; font-weight: bold; }
.math-error { color: #cf222e; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.thumbs img { width: 300px; border: 1px solid #ddd; }
@media print {
  html { font-size: 11pt; } nav.top, footer { display: none; }
  main { max-width: none; padding: 0; }
  pre, .highlight pre, pre.output { white-space: pre-wrap; overflow-wrap: anywhere;
                                    overflow: visible; }
  figure, .box, pre, table { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  h2, h3 { break-after: avoid; }
}
"""


def page(title: str, body: str, nav: str = "", footer: str = "") -> str:
    """A complete HTML page: the course stylesheet, pygments' styles, the nav and body."""
    css = CSS.strip() + "\n" + _pygments_css()
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>\n{css}\n</style>\n</head>\n<body>\n"
            f'{f"<nav class=top>{nav}</nav>" if nav else ""}\n<main>\n{body}\n</main>\n'
            f'{f"<footer>{footer}</footer>" if footer else ""}\n</body>\n</html>\n')


def toc(headings, min_level: int = 2, max_level: int = 3) -> str:
    """A nested table of contents of ``headings`` (level, id, text) as HTML."""
    items, current = [], None
    for level, slug, text in headings:
        if not min_level <= level <= max_level:
            continue
        entry = f'<a href="#{slug}">{_inline_text(text)}</a>'
        if level == min_level:
            current = [entry, []]
            items.append(current)
        elif current is not None:
            current[1].append(entry)
        else:
            items.append([entry, []])
    if not items:
        return ""
    parts = []
    for entry, subs in items:
        sub = "<ul>" + "".join(f"<li>{s}</li>" for s in subs) + "</ul>" if subs else ""
        parts.append(f"<li>{entry}{sub}</li>")
    return '<nav class="toc box"><strong>Contents</strong><ul>' + "".join(parts) + "</ul></nav>"


def _inline_text(markdown: str) -> str:
    """One line of Markdown (a heading's text) as inline HTML, math included."""
    rendered = markdown_to_html(markdown).html.strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.S)


def inline(markdown: str) -> str:
    """A short Markdown text (a caption, a label) as inline HTML without the <p>."""
    return _inline_text(markdown)


# --------------------------------------------------------------------------- notebooks

def notebook(cells) -> dict:
    """An nbformat 4.5 notebook from ``cells``: dicts with ``kind`` ("markdown" or
    "code"), ``source`` and, for code, ``outputs`` (a list of ``("stream", text)``,
    ``("image", png_path)`` or ``("result", text)``) and ``executed`` (bool)."""
    import platform

    nb_cells, count = [], 0
    for i, cell in enumerate(cells):
        source = cell["source"]
        lines = source.splitlines(keepends=True)
        if cell["kind"] == "markdown":
            nb_cells.append({"cell_type": "markdown", "id": f"cell-{i}", "metadata": {},
                             "source": lines})
            continue
        outputs = []
        executed = cell.get("executed", True)
        if executed:
            count += 1
        for kind, value in cell.get("outputs", []):
            if kind == "stream" and value:
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": value.splitlines(keepends=True)})
            elif kind == "image":
                data = base64.b64encode(Path(value).read_bytes()).decode("ascii")
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": data,
                                         "text/plain": [f"<Figure {Path(value).name}>"]}})
            elif kind == "result":
                outputs.append({"output_type": "execute_result", "execution_count": count,
                                "metadata": {}, "data": {"text/plain": value.splitlines(True)}})
        nb_cells.append({"cell_type": "code", "id": f"cell-{i}", "metadata": {},
                         "execution_count": count if executed else None,
                         "source": lines, "outputs": outputs})
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"},
                         "language_info": {"name": "python",
                                           "version": platform.python_version(),
                                           "mimetype": "text/x-python",
                                           "file_extension": ".py"}},
            "cells": nb_cells}


def notebook_json(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
