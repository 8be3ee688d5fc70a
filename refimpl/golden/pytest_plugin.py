"""A pytest plugin that runs refimpl's golden cases inside another project's test suite.

Installed with refimpl (the ``pytest11`` entry point ``refimpl-golden``) and inactive
unless asked for: with ``--refimpl-impl`` the session gets one test item per golden
case, beside the project's own tests::

    pytest --refimpl-impl mymodule:make            # an adapter module on sys.path
    pytest --refimpl-impl tests/adapter.py:make    # or an adapter file
    pytest --refimpl-impl mymodule:make -k "sam and not f32"
    pytest --refimpl-impl mymodule:make --refimpl-vectors my_vectors/

Each item is named ``refimpl-golden/<file>::<case id>`` (``-k`` matches the case id,
its family and its flags, e.g. ``-k nesterov``). A case the adapter declares
:class:`refimpl.golden.Unsupported` is skipped with its reason; a failing case shows
the checker's report (the first diverging step, expected against got, the case's
flags and their notes); a malformed golden file is one failing item. The adapter
protocol is the CLI's (FORMAT.md section 7).

To parametrize a test of your own instead::

    import pytest
    from refimpl import golden

    @pytest.mark.parametrize("case", golden.cases("sgd/*"), ids=lambda c: c.id)
    def test_my_sgd(case):
        result = golden.compare(case, golden.run_case(case, my_factory))
        assert result.status != "fail", result.report

pytest loads the plugin in every run of an environment where refimpl is installed,
which imports refimpl (numba included: about half a second); without ``--refimpl-impl``
it only adds its two options. ``pytest -p no:refimpl-golden`` turns it off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("refimpl-golden", "refimpl golden vectors")
    group.addoption("--refimpl-impl", metavar="MODULE:FACTORY", default=None,
                    help="run every refimpl golden case as a test item with this adapter "
                         "factory (MODULE:FACTORY importable from the current folder, or "
                         "path/to/file.py:FACTORY)")
    group.addoption("--refimpl-vectors", metavar="PATH", default=None,
                    help="a folder of golden files or one file (default: the vectors "
                         "shipped with refimpl)")


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k / -m selection, which then applies
def pytest_collection_modifyitems(session, config, items):
    spec = config.getoption("refimpl_impl")
    if spec is None:
        return
    from refimpl import golden
    from refimpl.golden import checker

    if not checker.is_file_spec(spec) and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the user named a module: search where they are
    try:
        factory = golden.load_factory(spec)
    except golden.UsageError as exc:
        raise pytest.UsageError(f"--refimpl-impl: {exc}") from None
    target = config.getoption("refimpl_vectors") or golden.VECTORS
    paths = golden.golden_files(target)
    if not paths:
        raise pytest.UsageError(f"--refimpl-vectors: no golden files (*.json) in {target}")
    selected = []
    for path in paths:
        name = f"refimpl-golden/{path.name}"
        collector = GoldenFile.from_parent(session, name=name, nodeid=name)
        collector.golden_path, collector.factory = path, factory
        selected += collector.collect()
    items.extend(selected)


class GoldenFile(pytest.Collector):
    """One golden file: an item per valid case, and one failing item if the file is
    malformed (its problems as the failure text)."""

    golden_path: Path
    factory: object

    def collect(self):
        from refimpl import golden

        loaded = golden.load(self.golden_path)
        items = []
        if loaded.errors:
            item = MalformedFile.from_parent(self, name="MALFORMED")
            item.errors = [str(e) for e in loaded.errors]
            items.append(item)
        for case in loaded.cases:
            item = GoldenCase.from_parent(self, name=case.id)
            item.case, item.factory = case, self.factory
            item.extra_keyword_matches.update(case.flags)
            item.extra_keyword_matches.add(case.id.split("/", 1)[0])
            items.append(item)
        return items


class GoldenCaseFailure(Exception):
    """A golden case failed; its report is the failure text."""


class _ReportItem(pytest.Item):
    """An item whose failure is shown as the checker's own text, without a traceback."""

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GoldenCaseFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class GoldenCase(_ReportItem):
    """One golden case run through the adapter."""

    def runtest(self):
        from refimpl import golden

        result = golden.compare(self.case, golden.run_case(self.case, self.factory))
        if result.status == "skip":
            pytest.skip(f"unsupported by the adapter: {result.message}")
        if result.status == "fail":
            raise GoldenCaseFailure(result.report)

    def reportinfo(self):
        return self.case.file, None, f"golden case {self.case.id}"


class MalformedFile(_ReportItem):
    """A golden file with problems: fails with every problem listed."""

    errors: list

    def runtest(self):
        raise GoldenCaseFailure("\n".join(f"MALFORMED {e}" for e in self.errors))

    def reportinfo(self):
        return str(self.parent.golden_path), None, "malformed golden file"
