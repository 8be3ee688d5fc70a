"""Golden vectors for refimpl's optimizers, and a checker that tests other
implementations against them (FORMAT.md beside this file documents everything a user
needs, in any language).

* ``refimpl golden list [DIR]`` - the cases (default: the vectors shipped here);
* ``refimpl golden write DIR`` - regenerate the vectors into DIR;
* ``refimpl golden check [DIR] --impl MODULE:FACTORY`` - run an implementation through
  every case via the plug-in protocol (:mod:`refimpl.golden.checker`) and report the
  first mismatching step of each failing case.

From Python::

    from refimpl import golden
    report = golden.check(golden.VECTORS, "my_module:make")
    print(report.text()); assert report.ok
"""

from pathlib import Path

from refimpl.golden.checker import (CaseResult, Report, Trajectory, Unsupported, UsageError,
                                    check, compare, load_factory, run_case)
from refimpl.golden.fileformat import (FORMAT_VERSION, SCHEMA_NAME, Case, GoldenFile,
                                       GoldenFormatError, Spec, StepInput, golden_files, load,
                                       load_data)

#: the shipped vectors (one JSON file per optimizer family)
VECTORS = Path(__file__).with_name("vectors")
#: the format documentation and the JSON Schema of a golden file
FORMAT = Path(__file__).with_name("FORMAT.md")
SCHEMA = Path(__file__).with_name("schema.json")


def cases(*patterns, vectors=None) -> list:
    """The golden cases whose id matches one of the glob ``patterns`` (all cases if none
    is given), from ``vectors`` (a folder or a file; default: the shipped vectors), in
    file and case order: for ``pytest.mark.parametrize`` over your own test. Raises
    :class:`GoldenFormatError` listing the problems if a file is malformed, and
    ValueError if a pattern matches no case."""
    import fnmatch

    found, problems = [], []
    for path in golden_files(VECTORS if vectors is None else vectors):
        loaded = load(path)
        problems += [str(e) for e in loaded.errors]
        found += loaded.cases
    if problems:
        raise GoldenFormatError(vectors or VECTORS, "; ".join(problems))
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"patterns must be strings (globs on case ids), got {pattern!r}")
        if not any(fnmatch.fnmatchcase(c.id, pattern) for c in found):
            raise ValueError(f"no golden case matches {pattern!r}")
    if not patterns:
        return found
    return [c for c in found if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def write(directory):
    """Regenerate every golden file into ``directory``; returns the paths written."""
    from refimpl.golden.generate import write as _write
    return _write(directory)


__all__ = ["VECTORS", "FORMAT", "SCHEMA", "FORMAT_VERSION", "SCHEMA_NAME", "Case", "Spec",
           "StepInput", "GoldenFile", "GoldenFormatError", "Unsupported", "UsageError",
           "Report", "CaseResult", "Trajectory", "check", "compare", "run_case",
           "load", "load_data", "load_factory", "golden_files", "write", "cases"]
