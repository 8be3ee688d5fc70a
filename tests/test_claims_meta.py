"""The claims of proofs/ and the tests that check them stay in step.

A claim is declared in a proofs/*.md file by a heading line ``## Claim LABEL: statement``.
A test checks it when it is marked ``@pytest.mark.claim("LABEL")``. This file fails if
a claim has no test, if a marker names no claim, if a claim has no test "with teeth" (a
test whose name contains ``teeth``: the same check applied to a deliberately wrong
variant, which must reject it), or if proofs/README.md's index misses a claim or points
to the wrong file. The markers are read statically (ast), so the check does not depend
on which tests were selected in a run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
TESTS = ROOT / "tests"
HEADING = re.compile(r"^## Claim ([A-Z]+-[A-Za-z0-9-]+): (.+)$", re.M)

#: the labels the project promised (proofs/sources.md#theoretical-claims); proofs/ may add more
REQUIRED = {"EMA-compose", "EMA-scale", "EMA-debias", "SSAM-norm", "SSAM-1d", "SAM-quadratic",
            "SAM-saddle", "TEMA-poly", "TEMA-lag", "TEMA-noise", "FAME-adam", "FAME-debias",
            "SEMA-switch", "SEMA-nqm", "SGD-quadratic"}


def claims() -> dict[str, Path]:
    """label -> the proofs/*.md file that declares it (each label declared once)."""
    found: dict[str, Path] = {}
    for path in sorted(PROOFS.glob("*.md")):
        for label, _ in HEADING.findall(path.read_text()):
            assert label not in found, f"claim {label} declared in {found[label].name} and {path.name}"
            found[label] = path
    return found


def _claim_label(decorator) -> str | None:
    """The label of a ``pytest.mark.claim("LABEL")`` decorator, else None."""
    if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "claim" and decorator.args
            and isinstance(decorator.args[0], ast.Constant)):
        return decorator.args[0].value
    return None


def markers() -> dict[str, list[str]]:
    """label -> ["file::test", ...] over every test function in tests/."""
    out: dict[str, list[str]] = {}
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_labels = []
        for node in tree.body:  # pytestmark = pytest.mark.claim("X") or a list of marks
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
                values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
                module_labels += [lab for v in values if (lab := _claim_label(v))]
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                labels = [lab for d in node.decorator_list if (lab := _claim_label(d))]
                for label in labels + module_labels:
                    out.setdefault(label, []).append(f"{path.name}::{node.name}")
    return out


def test_the_promised_claims_are_declared():
    missing = REQUIRED - set(claims())
    assert not missing, f"no '## Claim LABEL: ...' heading in proofs/ for {sorted(missing)}"


def test_every_claim_has_a_test_and_every_marker_a_claim():
    declared, tested = set(claims()), markers()
    untested = declared - set(tested)
    assert not untested, f"claims without a @pytest.mark.claim test: {sorted(untested)}"
    unknown = set(tested) - declared
    assert not unknown, f"markers naming no claim of proofs/: {sorted(unknown)}"


def test_every_claim_has_a_test_with_teeth():
    tested = markers()
    toothless = [label for label in claims() if not any("teeth" in t for t in tested.get(label, []))]
    assert not toothless, f"claims without a 'teeth' test (a wrong variant rejected): {toothless}"


def test_index_lists_every_claim_with_its_file():
    index = (PROOFS / "README.md").read_text()
    for label, path in claims().items():
        rows = [line for line in index.splitlines() if line.startswith("|") and f"`{label}`" in line]
        assert rows, f"proofs/README.md does not list {label}"
        assert f"({path.name}" in rows[0], f"proofs/README.md's row for {label} must link {path.name}"


def test_claim_option_selects_exactly_the_marked_tests():
    """``pytest --claim LABEL`` (tests/conftest.py) collects the tests marked with LABEL."""
    import subprocess
    import sys

    label = "SAM-bounce"
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                          "no:cacheprovider", "--claim", label, str(TESTS)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    collected = {line.split("[")[0] for line in out.stdout.splitlines() if "::" in line}
    expected = {f"tests/{name}" for name in markers()[label]}
    assert collected == expected, out.stdout + out.stderr


def test_readme_counts_the_claims():
    readme = (ROOT / "README.md").read_text()
    assert f"indexes {len(claims())} labelled claims" in readme
