"""The ``refimpl`` command.

``refimpl tutorials [--fast] [--out DIR] [NAME ...]`` runs the tutorials (tutorials/,
shipped as refimpl.tutorials) headless, one progress line per tutorial, and writes a
folder of course material: per tutorial its figures, script and lesson page, plus an
index (index.html and index.md) with each tutorial's claim, measured numbers, checks and
figures (refimpl/course.py). It exits 0 when every tutorial's checks hold, 1 when one
fails or errors, 2 on an unknown tutorial name or an ``--out`` that is a file.

``refimpl golden list [DIR]``, ``refimpl golden write DIR`` and
``refimpl golden check [DIR] [--impl MODULE:FACTORY]`` list, regenerate and check the
golden vectors (refimpl/golden/FORMAT.md). ``check`` exits 0 when every case passes
(skipped cases allowed), 1 when a case fails or an input file is malformed, 2 on a
usage error (``--impl`` not importable, no case selected).

``refimpl bench [--quick] [--json FILE]`` measures speed and memory as ratios against
baselines run in the same process (refimpl/bench.py, benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys


def _tutorials(args) -> int:
    from refimpl import course

    if args.list_only:
        for name, path in course.discover().items():
            print(f"{name:28s} {path}")
        return 0
    return course.main(args.fast, args.out, args.names)


def _golden(args) -> int:
    import os

    from refimpl import golden

    if args.golden_command == "write":
        for path in golden.write(args.dir):
            print(path)
        return 0
    target = args.dir if args.dir is not None else golden.VECTORS
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
    if os.getcwd() not in sys.path:  # so that --impl finds a module in the current directory
        sys.path.insert(0, os.getcwd())
    try:
        report = golden.check(target, args.impl, select=args.select or None)
    except golden.UsageError as exc:
        print(f"refimpl golden check: {exc}", file=sys.stderr)
        return 2
    print(report.text(verbose=args.verbose))
    return 0 if report.ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="refimpl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tut = sub.add_parser("tutorials", help="run the tutorials and write the course folder")
    tut.add_argument("--fast", action="store_true",
                     help="fewer steps and runs (the same claims are checked)")
    tut.add_argument("--out", default="refimpl-tutorials", metavar="DIR",
                     help="output folder (default: refimpl-tutorials)")
    tut.add_argument("--list", action="store_true", dest="list_only",
                     help="list the tutorials and exit")
    tut.add_argument("names", nargs="*", metavar="NAME",
                     help="tutorials to run: 03_ema_scaling_rule, ema_scaling_rule or 03 "
                          "(default: all)")
    gold = sub.add_parser("golden", help="list, write or check the golden vectors")
    gsub = gold.add_subparsers(dest="golden_command", required=True)
    glist = gsub.add_parser("list", help="list the cases (default: the shipped vectors)")
    glist.add_argument("dir", nargs="?", default=None, help="a directory or a golden file")
    gwrite = gsub.add_parser("write", help="regenerate the vectors into DIR")
    gwrite.add_argument("dir", help="output directory (created if needed)")
    gcheck = gsub.add_parser("check", help="check an implementation against the vectors")
    gcheck.add_argument("dir", nargs="?", default=None,
                        help="a directory or a golden file (default: the shipped vectors)")
    gcheck.add_argument("--impl", default="refimpl.golden.adapter:make", metavar="MODULE:FACTORY",
                        help="the adapter's factory (default: refimpl's own adapter)")
    gcheck.add_argument("-k", dest="select", action="append", metavar="PATTERN",
                        help="check only case ids matching this glob (repeatable)")
    gcheck.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    bench_parser = sub.add_parser("bench", help="speed and memory against baselines measured "
                                                "in the same run")
    from refimpl import bench

    bench.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench.run(args)
    if args.command == "tutorials":
        return _tutorials(args)
    if args.command == "golden":
        return _golden(args)
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
