"""The ``refimpl`` command.

``refimpl tutorials`` will run the tutorials (a later issue); until they land it runs a
short demo of what exists: every optimizer on the same noisy quadratic model, printed
as a table, plus the SGD-convention witness of SPEC 1.

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

import numpy as np


def _demo(fast: bool) -> int:
    import refimpl as r
    from refimpl.scaling import scale_optimizer

    steps = 200 if fast else 2000
    h = np.array([10.0, 3.0, 1.0, 0.3, 0.1])
    problem = r.NoisyQuadratic(h, batch_size=8)
    w0 = np.ones(5)
    print(f"refimpl {r.__version__}: demo on the noisy quadratic model, h = {h.tolist()}, "
          f"batch 8, {steps} steps, seed 0; loss = population loss of the final iterate")
    print("(the tutorials replace this demo when they land)\n")
    sgd = r.SGD(lr=0.05, momentum=0.9)
    runs = {
        "SGD(lr=0.05, momentum=0.9)": sgd,
        "SGD nesterov": r.SGD(lr=0.05, momentum=0.9, nesterov=True),
        "Adam(lr=0.01)": r.Adam(lr=0.01),
        "FAME official (lr=0.01)": r.FAME(lr=0.01),
        "FAME full (lr=0.01)": r.FAME(lr=0.01, variant="full"),
        "SAM(SGD, rho=0.05)": r.SAM(sgd, rho=0.05),
        "StableSAM(SGD, rho=0.05)": r.StableSAM(sgd, rho=0.05),
        "EMA(SGD, decay=0.99)": r.EMA(sgd, decay=0.99),
        "SwitchEMA(SGD, 0.99, every 100 steps)": r.SwitchEMA(sgd, decay=0.99, switch_every=100,
                                                             switch_unit="step"),
    }
    print(f"{'optimizer':40s} {'loss(w)':>10s} {'loss(EMA)':>10s} {'grad evals':>11s}")
    for name, opt in runs.items():
        rec = r.train(problem, opt, w0=w0, steps=steps, seed=0)
        avg = "" if rec.average is None else f"{problem.loss(rec.average):.3e}"
        print(f"{name:40s} {problem.loss(rec.w):10.3e} {avg:>10s} {rec.grad_evals:11d}")

    kappa = 4
    scaled = scale_optimizer(r.EMA(sgd, decay=0.99), kappa)
    print(f"\nEMA Scaling Rule, kappa = {kappa}: lr {sgd.lr!r} -> {scaled.inner.lr!r}, "
          f"decay 0.99 -> {scaled.decay:.6f} (= 0.99 ** {kappa})")

    # SPEC 1 witness: g = 1 always, momentum 0.9, w0 = 0, lr 0.1 then 0.01.
    lr = np.array([0.1, 0.01])
    one = lambda w: (0.0, np.ones(1))  # noqa: E731
    print("\nSGD conventions, g = 1, momentum 0.9, lr 0.1 then 0.01, w0 = 0:")
    for convention in ("pytorch", "optax", "keras"):
        opt = r.SGD(lr=lr, momentum=0.9, convention=convention)
        w, state = np.zeros(1), opt.init(np.zeros(1))
        for _ in range(2):
            w, state, _ = opt.step(w, state, one)
        print(f"  {convention:8s} w2 = {w[0]:+.3f}")
    return 0


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
    tut = sub.add_parser("tutorials", help="run the tutorials (for now: a short demo)")
    tut.add_argument("--fast", action="store_true", help="fewer steps")
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
        return _demo(args.fast)
    if args.command == "golden":
        return _golden(args)
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
