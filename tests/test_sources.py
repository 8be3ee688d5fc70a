"""proofs/sources.md is the project's one document of sources, and every reference to it
resolves.

- No text file of the repository cites the team's private planning notes, which readers
  cannot open, by their old name (the all-capitals word that this file spells in pieces
  so that it does not match itself): cite ``proofs/sources.md`` or the paper instead.
- Every link ``sources.md#<anchor>`` used anywhere (docstrings, comments, tests, tutorials,
  proofs, README, the golden vectors' comments) names a heading of proofs/sources.md,
  with GitHub's anchor slugs; so do the document's own ``(#<anchor>)`` links. The course
  renders the document too, and its heading ids are the same slugs.
- The document has a section for every algorithm and convention the docstrings cite, and
  lists every claim label declared in proofs/.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "proofs" / "sources.md"

#: the old name of the private notes, as a whole word (joined at run time, so that neither
#: this file nor its compiled form contains the word: see the docstring)
PRIVATE_NOTES = re.compile(r"\b" + "".join(("S", "P", "E", "C")) + r"\b")
#: what is scanned: the top-level documents and these folders, recursively
SCANNED_DIRS = ("proofs", "refimpl", "tests", "tutorials", "benchmarks", ".ci")
TEXT_SUFFIXES = {".py", ".md", ".json", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml",
                 ".html", ".css", ".sh", ""}
SKIPPED_DIRS = {"__pycache__", ".git", ".pytest_cache", ".hypothesis", "build", "dist",
                "refimpl-tutorials"}
LINK = re.compile(r"sources\.md#([\w-]+)")
LOCAL_LINK = re.compile(r"\]\(#([\w-]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
CLAIM_HEADING = re.compile(r"^## Claim ([A-Z]+-[A-Za-z0-9-]+): ", re.M)

#: sections the code, tests and tutorials rely on
REQUIRED_ANCHORS = {"sgd", "the-lr-change-witness", "adam", "model-ema", "start-conventions",
                    "warm-ups", "naming-decay-versus-momentum", "switch-ema",
                    "sam-usam-and-asam", "stablesam", "fame", "exact-debiasing",
                    "ema-scaling-rule", "problems", "theoretical-claims",
                    "what-was-not-checked"}


def text_files():
    """(path, text) of every scanned text file."""
    candidates = [p for p in ROOT.iterdir() if p.is_file()]
    for name in SCANNED_DIRS:
        folder = ROOT / name
        if folder.is_dir():
            candidates += [p for p in folder.rglob("*") if p.is_file()]
    for path in sorted(candidates):
        rel = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.suffix not in TEXT_SUFFIXES:
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue


def github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped (letters,
    digits, '_', '-' and spaces kept), each space a hyphen."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)              # code spans: their text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)     # links: their text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """The headings of a Markdown document, outside fenced code blocks."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            out.append(m.group(2))
    return out


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a document's headings (a repeated slug gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in headings(markdown):
        slug = github_slug(heading)
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        found.add(slug)
    return found


def test_no_file_cites_the_private_notes():
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
            for path, text in text_files()
            for number, line in enumerate(text.splitlines(), 1)
            if PRIVATE_NOTES.search(line)]
    assert not hits, ("cite proofs/sources.md or the paper instead of the private notes:\n"
                      + "\n".join(hits))


def test_the_scan_sees_the_files_that_cite_the_sources():
    """Guard the scan itself: it reaches code, tests, tutorials, proofs, README and the
    golden vectors, and finds links in each."""
    linked = {path.relative_to(ROOT).parts[0] for path, text in text_files() if LINK.search(text)}
    assert {"README.md", "proofs", "refimpl", "tests", "tutorials"} <= linked, linked
    vectors = [p for p, t in text_files() if p.suffix == ".json" and LINK.search(t)]
    assert any(p.parent.name == "vectors" for p in vectors), "golden vectors not scanned"


def test_every_link_to_the_sources_names_a_heading():
    known = anchors(SOURCES.read_text(encoding="utf-8"))
    broken = [f"{path.relative_to(ROOT)}:{number}: sources.md#{anchor}"
              for path, text in text_files()
              for number, line in enumerate(text.splitlines(), 1)
              for anchor in LINK.findall(line) if anchor not in known]
    assert not broken, ("links to headings proofs/sources.md does not have:\n"
                        + "\n".join(broken) + f"\nits anchors: {sorted(known)}")


def test_the_document_links_only_its_own_headings():
    text = SOURCES.read_text(encoding="utf-8")
    known = anchors(text)
    broken = [a for a in LOCAL_LINK.findall(text) if a not in known]
    assert not broken, broken


def test_the_sections_the_project_cites_exist():
    missing = REQUIRED_ANCHORS - anchors(SOURCES.read_text(encoding="utf-8"))
    assert not missing, sorted(missing)


def test_the_course_renders_the_same_anchors():
    """The course (refimpl.render) gives headings ids; a link that works on GitHub must
    work in the rendered proof page too."""
    import pytest

    render = pytest.importorskip("refimpl.render")
    slugify = getattr(render, "_slugify", None)
    if slugify is None:
        pytest.skip("refimpl.render has no _slugify")
    for heading in headings(SOURCES.read_text(encoding="utf-8")):
        plain = github_slug(heading)
        assert slugify(re.sub(r"`([^`]*)`", r"\1", heading)) == plain, heading


def test_every_claim_label_is_listed():
    labels = set()
    for path in (ROOT / "proofs").glob("*.md"):
        labels |= set(CLAIM_HEADING.findall(path.read_text(encoding="utf-8")))
    text = SOURCES.read_text(encoding="utf-8")
    assert labels, "no claims found in proofs/"
    missing = sorted(label for label in labels if f"`{label}`" not in text)
    assert not missing, f"proofs/sources.md does not list the claims {missing}"
    assert not CLAIM_HEADING.search(text), "sources.md must not declare claims itself"
