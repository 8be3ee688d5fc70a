"""refimpl: exact reference optimizers, their course material, golden vectors and benchmarks.

The same command runs as python -m refimpl.

Commands:
  refimpl tutorials [--fast] [--out DIR] [--solutions] [NAME ...]
      run the tutorials and write a folder of course material (default
      refimpl-tutorials/): per tutorial a lesson page, an executed notebook, its
      figures and script; the proofs as pages; an index. --solutions writes the
      exercises' solutions instead.
  refimpl golden list [PATH]
  refimpl golden write DIR
  refimpl golden check [PATH] [--impl MODULE:FACTORY | FILE.py:FACTORY] [-k PATTERN] [-v]
                       [--json FILE] [--junit FILE]
      list, regenerate or check the golden vectors (refimpl/golden/FORMAT.md); PATH is
      a folder of golden files or one file (default: the vectors shipped with refimpl).
  refimpl bench [--quick] [--json FILE]
      speed and memory as ratios against baselines measured in the same run.
  refimpl cache [--clear]
      where the compiled kernels are cached, and their size; --clear removes them.
  refimpl api [--out DIR]
      write the API reference (every public module's docstrings, math as MathML) into
      DIR (default refimpl-tutorials/api); needs the optional extra refimpl[docs].

Exit codes:
  0  success: every tutorial's checks hold, every golden case passes (skipped cases
     allowed), the files were written
  1  a failed check: a tutorial's check or a golden case fails, a golden file is
     malformed, or a tutorial raises an error
  2  a usage error: an unknown command, option or tutorial name, a missing PATH, an
     --out that is a file, an --impl that cannot be imported, no case selected
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from refimpl._version import __version__

DEFAULT_IMPL = "refimpl.golden.adapter:make"


class _UsageError(Exception):
    """A command line that names something that does not exist (exit code 2)."""


def _tutorials(args) -> int:
    from refimpl import course

    if args.list_only:
        for name, path in course.discover().items():
            print(f"{name:28s} {path}")
        return 0
    return course.main(args.fast, args.out, args.names, solutions=args.solutions)


def _existing(path):
    """The PATH argument of ``golden list`` and ``golden check``: it must exist."""
    if path is not None and not os.path.exists(path):
        raise _UsageError(f"no such file or folder: {path!r}")
    return path


def _golden(args) -> int:
    from refimpl import golden

    if args.golden_command == "write":
        for path in golden.write(args.dir):
            print(path)
        return 0
    target = _existing(args.dir)
    target = target if target is not None else golden.VECTORS
    if args.golden_command == "list":
        problems = 0
        by_family: dict[str, int] = {}
        for path in golden.golden_files(target):
            loaded = golden.load(path)
            for error in loaded.errors:
                print(f"MALFORMED {error}")
            problems += len(loaded.errors)
            for case in loaded.cases:
                family = case.id.split("/", 1)[0]
                by_family[family] = by_family.get(family, 0) + 1
                flags = f" [{', '.join(case.flags)}]" if case.flags else ""
                print(f"{case.id:44s} {case.dtype:7s} {case.n_steps:3d} steps{flags}")
        print(", ".join(f"{k} {v}" for k, v in by_family.items())
              + f"; {sum(by_family.values())} cases")
        return 1 if problems else 0
    # Only an adapter the user names may come from the current folder: the default one is
    # refimpl's own, and putting the current folder first on sys.path would let any
    # file there shadow a module that numba or the standard library imports later.
    # A file adapter (path/to/file.py:FACTORY) is loaded from its path: no folder is added.
    if (args.impl != DEFAULT_IMPL and not golden.checker.is_file_spec(args.impl)
            and os.getcwd() not in sys.path):
        sys.path.insert(0, os.getcwd())
    for option, path in (("--json", args.json), ("--junit", args.junit)):
        if path is not None:
            _check_output_file(option, path)
    try:
        report = golden.check(target, args.impl, select=args.select or None)
    except golden.UsageError as exc:
        raise _UsageError(str(exc)) from None
    print(report.text(verbose=args.verbose))
    from refimpl.render import write_atomic

    if args.json is not None:
        write_atomic(args.json, report.to_json(args.impl))
    if args.junit is not None:
        write_atomic(args.junit, report.to_junit(args.impl))
    return 0 if report.ok else 1


def _check_output_file(option: str, path: str) -> None:
    """Refuse, before any work, an output file that cannot be written (a folder, a
    missing or unwritable folder): a usage error naming the option."""
    import tempfile

    target = Path(path)
    if target.is_dir():
        raise _UsageError(f"{option} {path!r} is a folder; give a file name")
    folder = target.parent
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".refimpl-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _UsageError(f"{option} {path!r} cannot be written: {exc.strerror or exc}") from None


def _api(args) -> int:
    from refimpl import apidoc

    if not args.out:
        raise _UsageError("--out must name a folder, got an empty string")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {args.out!r} is a file; give a folder")
    try:
        paths = apidoc.write(out)
    except ModuleNotFoundError as exc:
        raise _UsageError(str(exc)) from None
    except OSError as exc:
        raise _UsageError(f"--out {args.out!r} cannot be written: {exc.strerror or exc}") from None
    print(f"{len(paths)} API pages written; open {out / 'index.html'}")
    return 0


def _cache(args) -> int:
    from refimpl import _jit

    if args.clear:
        removed = _jit.clear_cache()
        for folder in removed:
            print(f"removed {folder}")
        print(f"{len(removed)} cache folder(s) removed")
        return 0
    print(_jit.describe_cache())
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the help text kept as written (the layout above is the help)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The parser, and each (sub)command's own parser by its words (for its usage)."""
    top, rest = __doc__.split("\n\n", 1)
    parser = _Parser(prog="refimpl", description=top, epilog=rest)
    parser.add_argument("--version", action="version", version=f"refimpl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    tut = sub.add_parser("tutorials", help="run the tutorials and write the course folder")
    tut.add_argument("--fast", action="store_true",
                     help="fewer steps and runs (the same claims are checked)")
    tut.add_argument("--out", default="refimpl-tutorials", metavar="DIR",
                     help="output folder (default: refimpl-tutorials)")
    tut.add_argument("--list", action="store_true", dest="list_only",
                     help="list the tutorials and exit")
    tut.add_argument("--solutions", action="store_true",
                     help="write the exercises' reference solutions to DIR/solutions/ "
                          "(runs no tutorial; try the exercises first)")
    tut.add_argument("names", nargs="*", metavar="NAME",
                     help="tutorials to run: 03_ema_scaling_rule, ema_scaling_rule or 03 "
                          "(default: all)")
    gold = sub.add_parser("golden", help="list, write or check the golden vectors")
    gsub = gold.add_subparsers(dest="golden_command", required=True, metavar="ACTION",
                               parser_class=_Parser)
    glist = gsub.add_parser("list", help="list the cases (default: the shipped vectors)")
    glist.add_argument("dir", nargs="?", default=None, metavar="PATH",
                       help="a folder of golden files or one file")
    gwrite = gsub.add_parser("write", help="regenerate the vectors into DIR")
    gwrite.add_argument("dir", metavar="DIR", help="output folder (created if needed)")
    gcheck = gsub.add_parser(
        "check", help="check an implementation against the vectors",
        description="Check an implementation against the golden vectors. Exit 0 when "
                    "every case passes, 1 when one fails or a file is malformed, 2 on a "
                    "usage error. The current folder is put on sys.path only when --impl "
                    "names an adapter module other than refimpl's own (MODULE:FACTORY); "
                    "an adapter file (path/to/file.py:FACTORY) is loaded from its path "
                    "and adds no folder.")
    gcheck.add_argument("dir", nargs="?", default=None, metavar="PATH",
                        help="a folder of golden files or one file (default: the shipped "
                             "vectors)")
    gcheck.add_argument("--impl", default=DEFAULT_IMPL, metavar="MODULE:FACTORY",
                        help="the adapter's factory: MODULE:FACTORY, importable from the current "
                             "folder, or path/to/file.py:FACTORY (default: refimpl's own "
                             "adapter)")
    gcheck.add_argument("-k", dest="select", action="append", metavar="PATTERN",
                        help="check only case ids matching this glob (repeatable)")
    gcheck.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    gcheck.add_argument("--json", metavar="FILE", default=None,
                        help="also write the result of every case as JSON (schema "
                             "refimpl-golden-check/1), atomically")
    gcheck.add_argument("--junit", metavar="FILE", default=None,
                        help="also write the result as JUnit XML for CI test reporters, "
                             "atomically")
    bench_parser = sub.add_parser("bench", help="speed and memory against baselines measured "
                                                "in the same run")
    from refimpl import bench

    bench.add_arguments(bench_parser)
    cache = sub.add_parser("cache", help="where the compiled kernels are cached; --clear "
                                         "removes them")
    cache.add_argument("--clear", action="store_true",
                       help="remove every cache folder refimpl made (marked REFIMPL_CACHE)")
    api = sub.add_parser("api", help="write the API reference pages (needs refimpl[docs])")
    api.add_argument("--out", default="refimpl-tutorials/api", metavar="DIR",
                     help="output folder (default: refimpl-tutorials/api, beside the course)")
    parsers = {(): parser, ("tutorials",): tut, ("golden",): gold, ("golden", "list"): glist,
               ("golden", "write"): gwrite, ("golden", "check"): gcheck,
               ("bench",): bench_parser, ("cache",): cache, ("api",): api}
    return parser, parsers


def drop_current_folder(path: list, cwd: str, safe_path: bool) -> None:
    """Remove the entry ``python -m`` put first on ``path`` (``""`` or ``cwd`` itself);
    with ``-P`` (``safe_path``) Python put none there. Used by ``python -m refimpl``
    (``refimpl/__main__.py`` says why)."""
    if not safe_path and path and path[0] in ("", cwd):
        del path[0]


def main(argv=None) -> int:
    parser, parsers = build_parser()
    args, extra = parser.parse_known_args(argv)
    words = tuple(w for w in (args.command, getattr(args, "golden_command", None)) if w)
    if extra:  # an unknown option belongs to the subcommand: show that one's usage
        parsers[words].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "bench":
            from refimpl import bench

            return bench.run(args)
        if args.command == "tutorials":
            return _tutorials(args)
        if args.command == "golden":
            return _golden(args)
        if args.command == "cache":
            return _cache(args)
        if args.command == "api":
            return _api(args)
    except _UsageError as exc:
        parsers[words].print_usage(sys.stderr)
        print(f"refimpl {' '.join(words)}: error: {exc}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
