"""The API reference: every public name documented, pages written offline with rendered math."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from refimpl import apidoc, render
from refimpl.cli import main


def _public(module_name):
    """(qualified name, object) of a module's public functions and classes (its
    ``__all__``, else what it defines without a leading underscore), and of each public
    class's own public methods and properties."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [
        n for n, o in vars(module).items() if not n.startswith("_")
        and (inspect.isfunction(o) or inspect.isclass(o)) and o.__module__ == module_name]
    for name in names:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants (VECTORS, FORMAT_VERSION) are described by their module
        yield f"{module_name}.{name}", obj
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_"):
                    continue
                if isinstance(value, property):
                    yield f"{module_name}.{name}.{member}", value.fget
                elif isinstance(value, (classmethod, staticmethod)):
                    yield f"{module_name}.{name}.{member}", value.__func__
                elif inspect.isfunction(value):
                    yield f"{module_name}.{name}.{member}", value


def test_every_public_name_has_a_docstring():
    missing = sorted({q for m in apidoc.MODULES for q, obj in _public(m)
                      if not (inspect.getdoc(obj) or "").strip()})
    assert missing == []


def test_the_check_sees_an_undocumented_name():
    """Teeth: a public function without a docstring in a listed module is reported."""
    import types

    module = types.ModuleType("refimpl_fake_module")

    def exposed(x):
        return x

    exposed.__module__ = "refimpl_fake_module"
    module.exposed = exposed
    import sys

    sys.modules["refimpl_fake_module"] = module
    try:
        assert [q for q, o in _public("refimpl_fake_module") if not inspect.getdoc(o)] == [
            "refimpl_fake_module.exposed"]
    finally:
        del sys.modules["refimpl_fake_module"]


def test_offline_math_renders_formulas_outside_code_and_drops_mathjax():
    page = ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
            '<script>window.MathJax = {}</script><script>keep()</script>'
            "<p>a $x^2$ and</p><p>$$\\sum_i h_i$$</p><code>$not math$</code>"
            "<pre>cost: $5 and $6</pre>")
    out = apidoc.offline_math(page)
    assert "mathjax" not in out.lower() and "<script>keep()</script>" in out
    assert out.count("<math") == 2 and 'display="block"' in out
    assert "<code>$not math$</code>" in out and "<pre>cost: $5 and $6</pre>" in out


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    pytest.importorskip("pdoc")
    out = tmp_path_factory.mktemp("api")
    errors_before = len(render.MATH_ERRORS)
    paths = apidoc.write(out)
    return out, paths, render.MATH_ERRORS[errors_before:]


def test_a_page_per_module_offline_with_its_math_rendered(api):
    out, paths, math_errors = api
    assert sorted(p.relative_to(out).as_posix() for p in paths) == sorted(
        [apidoc.page_path(m) for m in apidoc.MODULES] + ["index.html"])
    assert math_errors == []
    for path in paths:
        text = path.read_text()
        assert not re.search(r"<script[^>]*\bsrc=", text), path  # nothing fetched
        scripts = " ".join(re.findall(r"<script\b.*?</script>", text, re.S)).lower()
        assert "mathjax" not in scripts, path
        prose = re.sub(r"<(pre|code)\b.*?</\1>", "", text, flags=re.S)
        assert "$$" not in prose, path  # every display formula was converted
    sgd = (out / "refimpl/optimizers/sgd.html").read_text()
    assert sgd.count("<math") >= 4  # the update rule, and the notation line
    assert 'id="SGD"' in sgd and "Parameters" in (out / "refimpl/train.html").read_text()


def test_every_code_name_of_a_lesson_has_an_anchor(api):
    """What the lessons link to: ``r.SGD`` -> refimpl.html#SGD, ``theory.moments`` ->
    refimpl/theory.html#moments; each target page has the anchor."""
    out, _, _ = api
    for name in ("SGD", "SwitchEMA", "train", "theory.moments", "filters.tema",
                 "landscape.top_eigenvalue", "problems.data.two_spirals", "golden.check"):
        target = apidoc.anchor(name)
        assert target is not None, name
        page, _, fragment = target.partition("#")
        assert f'id="{fragment}"' in (out / page).read_text(), name
    assert apidoc.anchor("theory._linear") is None and apidoc.anchor("nope.x") is None
    assert apidoc.anchor("golden.adapter") is None  # a submodule has no entry on the page


def test_refimpl_api_command(tmp_path, capsys):
    pytest.importorskip("pdoc")
    assert main(["api", "--out", str(tmp_path / "api")]) == 0
    assert (tmp_path / "api" / "index.html").is_file()
    assert main(["api", "--out", ""]) == 2
    (tmp_path / "file").write_text("x")
    assert main(["api", "--out", str(tmp_path / "file")]) == 2


def test_without_pdoc_the_command_names_the_extra(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_pdoc(name, *args, **kwargs):
        if name == "pdoc" or name.startswith("pdoc."):
            raise ImportError("No module named 'pdoc'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pdoc)
    assert main(["api", "--out", str(tmp_path / "api")]) == 2
    assert "pip install 'refimpl[docs]'" in capsys.readouterr().err
    assert not (tmp_path / "api").exists()
