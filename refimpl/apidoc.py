"""The API reference: every public module's docstrings as HTML pages, math rendered offline.

``refimpl api --out DIR`` (and ``refimpl tutorials``, into ``OUT/api``, when pdoc is
installed) writes one page per module of :data:`MODULES`, laid out as pdoc lays them
out (``refimpl.html``, ``refimpl/theory.html``, ...), plus ``index.html``.

Why pdoc: it is a maintained generator that reads the live objects (signatures with
defaults, dataclass fields, inherited members) and understands the numpydoc sections
refimpl's docstrings use (``Parameters`` / ``Returns`` become definition lists), with
one dependency of its own (Jinja2) and no configuration project: about 2 MB installed
with Jinja2 and MarkupSafe, against tens of MB for Sphinx. It is an optional extra
(``pip install 'refimpl[docs]'``, also in ``[test]``), never a runtime dependency.

What refimpl adds: pdoc leaves ``$...$`` and ``$$...$$`` in the page for MathJax, which
it loads from a CDN; here each formula is converted to MathML by the same offline
converter as the course pages (:func:`refimpl.render.math_to_mathml`) and the MathJax
scripts are removed, so the pages need no network. Pages are written atomically.
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
from pathlib import Path

from refimpl import render
from refimpl._version import __version__

#: the modules with a page, in the order of the index
MODULES = ("refimpl", "refimpl.optimizers", "refimpl.optimizers.base", "refimpl.optimizers.sgd",
           "refimpl.optimizers.adam",
           "refimpl.optimizers.fame", "refimpl.optimizers.sam", "refimpl.optimizers.ema",
           "refimpl.problems", "refimpl.problems.quadratic", "refimpl.problems.mlp",
           "refimpl.problems.data",
           "refimpl.train", "refimpl.theory", "refimpl.landscape", "refimpl.filters",
           "refimpl.scaling", "refimpl.schedules", "refimpl.golden", "refimpl.tutorial")

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?![\w$])")
_CODE = re.compile(r"(<(pre|code)\b.*?</\2>)", re.S)


def _pdoc():
    try:
        import pdoc.doc
        import pdoc.render
    except ImportError:
        raise ModuleNotFoundError("the API reference needs pdoc, an optional extra: pip install "
                                  "'refimpl[docs]'") from None
    return pdoc


def offline_math(page: str) -> str:
    """``page`` with its MathJax scripts removed and every ``$$...$$`` / ``$...$``
    outside ``<pre>`` and ``<code>`` replaced by MathML."""
    page = _SCRIPT.sub(lambda m: "" if "mathjax" in m.group(0).lower() else m.group(0), page)
    parts = _CODE.split(page)
    out = []
    i = 0
    while i < len(parts):
        text = parts[i]
        text = _DISPLAY.sub(lambda m: render.math_to_mathml(html.unescape(m.group(1)), True), text)
        text = _INLINE.sub(lambda m: render.math_to_mathml(html.unescape(m.group(1)), False), text)
        out.append(text)
        if i + 1 < len(parts):
            out.append(parts[i + 1])  # a <pre> or <code> element, untouched
        i += 3
    return "".join(out)


def page_path(module: str) -> str:
    """A module's page, relative to the API folder: ``refimpl/theory.html``."""
    return module.replace(".", "/") + ".html"


_PROOF = re.compile(r"(?<![\w/\"'=#-])proofs/([a-z_]+)\.md(#[\w-]+)?")
_SKIP = re.compile(r"(<pre\b.*?</pre>|<a\b.*?</a>|<[^>]*>)", re.S)


def link_proofs(page: str, prefix: str, proofs: Path) -> str:
    """Each ``proofs/NAME.md`` cited in the text of ``page`` (outside tags, links and
    ``<pre>``) as a link to ``PREFIX + NAME.html``, where that rendered proof exists."""
    def link(m):
        name, fragment = m.group(1), m.group(2) or ""
        if not (proofs / f"{name}.html").is_file():
            return m.group(0)
        return f'<a href="{prefix}{name}.html{fragment}">{m.group(0)}</a>'

    parts = _SKIP.split(page)
    return "".join(part if i % 2 else _PROOF.sub(link, part) for i, part in enumerate(parts))


def write(out, proofs=None) -> list[Path]:
    """Write the API reference into the folder ``out``; returns the pages written.
    ``proofs``: a folder of rendered proofs (the course's ``OUT/proofs``) that the pages'
    citations of ``proofs/NAME.md`` then link to. Raises ModuleNotFoundError (naming the
    extra to install) without pdoc."""
    pdoc = _pdoc()
    out = Path(out)
    pdoc.render.configure(docformat="numpy", math=True, search=False, show_source=False,
                          footer_text=f"refimpl {__version__}")
    import warnings

    with warnings.catch_warnings():  # pdoc warns about string annotations it cannot resolve
        warnings.simplefilter("ignore")
        modules = {name: pdoc.doc.Module(importlib.import_module(name)) for name in MODULES}
        pages = {name: pdoc.render.html_module(module=mod, all_modules=modules)
                 for name, mod in modules.items()}
        index = pdoc.render.html_index(modules)
    written = []
    for name, text in pages.items():
        path = out / page_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = offline_math(text)
        if proofs is not None:
            up = "../" * (page_path(name).count("/") + 1)  # from the page up to OUT
            text = link_proofs(text, f"{up}{Path(proofs).name}/", Path(proofs))
        render.write_atomic(path, text)
        written.append(path)
    render.write_atomic(out / "index.html", offline_math(index))
    written.append(out / "index.html")
    return written


def anchor(qualified: str) -> str | None:
    """The page and anchor of a public name, ``"theory.moments"`` or ``"SGD"``
    (relative to the API folder), or None if it is not documented there."""
    module, _, name = ("refimpl." + qualified).rpartition(".")
    if module not in MODULES or name.startswith("_"):
        return None
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return None
    public = getattr(obj, "__all__", None)
    if not hasattr(obj, name) or inspect.ismodule(getattr(obj, name)) or (
            public is not None and name not in public):
        return None  # pdoc documents a module's __all__ (or its public names), not submodules
    return f"{page_path(module)}#{name}"
