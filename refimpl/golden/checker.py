"""The golden checker: drive an implementation through every case through the plug-in
protocol, compare each step with the expected values, and report (FORMAT.md sections 6
and 7).

The protocol (like array-api-tests: the user's module adapts, the checker drives)::

    def make(case):                       # the FACTORY of --impl MODULE:FACTORY
        ...                               # raise refimpl.golden.Unsupported("why") to skip
        return stepper

    stepper.step(grad_fn, inputs) -> (params, average)   # or params alone
        # inputs.step (1-based), inputs.lr, inputs.epoch_end; call grad_fn(w) -> (loss, g)
        # as often as the algorithm needs (SAM: twice); average is None without an EMA

The checker never lets an adapter crash it: an exception in the factory or in a step
becomes a failure of that case naming the step (an ``ArithmeticError`` such as
``FloatingPointError`` is read as the implementation reporting divergence), and a
malformed file or case is reported with the file, the case and the field.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl.golden.fileformat import golden_files, load
from refimpl.golden.oracle import Oracle


class Unsupported(Exception):
    """Raised by an adapter's factory for a case its implementation cannot express
    (say why); the case is reported as skipped, not failed."""


class UsageError(ValueError):
    """A bad ``--impl`` (module or factory not found) or an empty selection."""


# -- running one case --------------------------------------------------------------------

@dataclass
class Observed:
    """What the implementation did at one step."""

    step: int
    params: np.ndarray | None
    average: np.ndarray | None
    loss: float | None
    grad_evals: int


@dataclass
class Trajectory:
    """The implementation's run of a case: its steps, where it diverged (1-based), an
    error (step, message) that stopped it, or why it skipped the case."""

    steps: list = field(default_factory=list)
    diverged_at: int | None = None
    divergence_reason: str = ""
    error: tuple | None = None
    skipped: str | None = None


def _vector(x, d, what):
    a = np.array(x, dtype=np.float64).reshape(-1)
    if a.shape[0] != d:
        raise ValueError(f"{what} must have {d} entries, got shape {np.shape(x)}")
    return a


def _outputs(result, case):
    """(params, average) from what ``step`` returned: a 2-tuple, a mapping, or params."""
    if isinstance(result, dict):
        params, average = result.get("params"), result.get("average")
    elif isinstance(result, tuple) and len(result) == 2:
        params, average = result
    else:
        params, average = result, None
    if params is None:
        raise ValueError("step returned no parameters")
    params = _vector(params, case.d, "params")
    if average is not None:
        average = _vector(average, case.d, "average")
    return params, average


def _describe_exception(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_case(case, factory) -> Trajectory:
    """Run ``case`` through ``factory``; stops at the first divergence or error."""
    traj = Trajectory()
    try:
        stepper = factory(case)
    except Unsupported as exc:
        traj.skipped = str(exc) or "unsupported by the adapter"
        return traj
    except Exception as exc:  # noqa: BLE001 - an adapter bug is a reported failure
        traj.error = (0, f"the factory raised {_describe_exception(exc)}")
        return traj
    step_fn = getattr(stepper, "step", None)
    if step_fn is None and callable(stepper):
        step_fn = stepper
    if step_fn is None:
        traj.error = (0, (f"the factory returned a {type(stepper).__name__}, which has no "
                          "step(grad_fn, inputs) method and is not callable"))
        return traj
    for k in range(1, case.n_steps + 1):
        oracle = Oracle(case, k)
        try:
            with np.errstate(all="ignore"):
                result = step_fn(oracle, case.step_input(k))
            params, average = _outputs(result, case)
        except ArithmeticError as exc:
            _record(traj, k, oracle, None, None)
            traj.diverged_at = k
            traj.divergence_reason = f"it raised {_describe_exception(exc)}"
            return traj
        except Exception as exc:  # noqa: BLE001
            _record(traj, k, oracle, None, None)
            if oracle.saw_non_finite:  # the adapter choked on a diverged oracle value
                traj.diverged_at = k
                traj.divergence_reason = ("the oracle returned a non-finite loss or gradient, "
                                          f"then it raised {_describe_exception(exc)}")
            else:
                traj.error = (k, f"step {k} raised {_describe_exception(exc)}")
            return traj
        _record(traj, k, oracle, params, average)
        reasons = []
        if oracle.saw_non_finite:
            reasons.append("the loss or gradient it asked for is not finite")
        if not np.all(np.isfinite(params)) or (average is not None and not np.all(np.isfinite(average))):
            reasons.append("its parameters are not finite")
        if reasons:
            traj.diverged_at = k
            traj.divergence_reason = " and ".join(reasons)
            return traj
    return traj


def _record(traj, k, oracle, params, average):
    loss = oracle.calls[0][1] if oracle.calls else None
    traj.steps.append(Observed(k, params, average, loss, len(oracle.calls)))


# -- comparing ------------------------------------------------------------------------------------

@dataclass
class CaseResult:
    """``status`` is "pass", "fail" or "skip"; ``step`` the first failing step (0 =
    before the first step); ``message`` says what differed; ``report`` is the full text."""

    case_id: str
    file: str
    status: str
    step: int | None = None
    message: str = ""
    report: str = ""


def _fmt(a) -> str:
    if a is None:
        return "None"
    if np.ndim(a) == 0:
        return f"{float(a):.17g}"
    return "[" + ", ".join(f"{float(x):.17g}" for x in a) + "]"


def _mismatches(case, k, obs) -> list[str]:
    """What differs at completed step k (1-based) beyond its tolerance."""
    i = k - 1
    out = []
    if obs.grad_evals != case.grad_evals[i]:
        out.append(f"grad evals = {obs.grad_evals}, expected {int(case.grad_evals[i])}")
    if obs.loss is None or not abs(obs.loss - case.loss[i]) <= case.tol_loss[i]:
        got = "none (grad_fn was not called)" if obs.loss is None else _fmt(obs.loss)
        diff = "" if obs.loss is None else f" (|diff| {abs(obs.loss - case.loss[i]):.3g} > tol {case.tol_loss[i]:.3g})"
        out.append(f"loss = {got}, expected {_fmt(case.loss[i])}{diff}")
    for name, got, want, tol in (("params", obs.params, case.params, case.tol_params),
                                 ("average", obs.average, case.average_expected, case.tol_average)):
        if want is None:
            continue
        if got is None:
            out.append(f"{name}: the adapter returned none, expected {_fmt(want[i])}")
            continue
        diff = np.abs(got - want[i])
        bad = ~(diff <= tol[i])
        for j in np.flatnonzero(bad):
            out.append(f"{name}[{j}] = {got[j]:.17g}, expected {want[i][j]:.17g} "
                       f"(|diff| {diff[j]:.3g} > tol {tol[i][j]:.3g})")
    return out


def compare(case, traj: Trajectory) -> CaseResult:
    """Judge a trajectory against the case's expected values and tolerances."""
    if traj.skipped is not None:
        return CaseResult(case.id, case.file, "skip", message=traj.skipped)
    if traj.error is not None and traj.error[0] == 0:
        return _fail(case, traj, 0, traj.error[1])
    for k in range(1, case.n_done + 1):
        if traj.error is not None and traj.error[0] == k:
            return _fail(case, traj, k, traj.error[1])
        if traj.diverged_at == k:
            return _fail(case, traj, k, f"the implementation diverged at step {k} "
                                        f"({traj.divergence_reason}); expected finite values")
        problems = _mismatches(case, k, traj.steps[k - 1])
        if problems:
            return _fail(case, traj, k, "; ".join(problems))
    K = case.diverges_at
    if K is not None:
        if traj.error is not None and traj.error[0] == K:
            return _fail(case, traj, K, traj.error[1])
        if traj.diverged_at != K:
            return _fail(case, traj, K, f"expected the run to diverge at step {K} (a non-finite "
                                        "loss, gradient or parameter, or an ArithmeticError), "
                                        "but the implementation's step was finite")
    return CaseResult(case.id, case.file, "pass")


def _fail(case, traj, k, message) -> CaseResult:
    lines = [f"FAIL {case.id}  [{case.file}]", f"  {case.comment}",
             f"  optimizer: {case.describe()}  (dtype {case.dtype})"]
    if k == 0:
        lines.append(f"  before step 1: {message}")
    else:
        lines.append(f"  first mismatch at step {k} of {case.n_steps}: {message}")
        for j, label in ((k - 1, "before"), (k, "at")):
            if j < 1:
                lines.append(f"  step 0 ({label}): w0 = {_fmt(case.w0)}")
                continue
            obs = traj.steps[j - 1] if j <= len(traj.steps) else None
            lines.append(f"  step {j} ({label}), lr {case.lr[j - 1]:.17g}"
                         + (", epoch end" if case.epoch_end[j - 1] else "") + ":")
            if j <= case.n_done:
                lines.append(f"    expected params  {_fmt(case.params[j - 1])}")
                if obs is not None:
                    lines.append(f"    got      params  {_fmt(obs.params)}")
                if case.average_expected is not None:
                    lines.append(f"    expected average {_fmt(case.average_expected[j - 1])}")
                    if obs is not None:
                        lines.append(f"    got      average {_fmt(obs.average)}")
                lines.append(f"    expected loss {_fmt(case.loss[j - 1])}, grad evals "
                             f"{int(case.grad_evals[j - 1])}" + (
                                 "" if obs is None else f"; got loss {_fmt(obs.loss)}, grad evals {obs.grad_evals}"))
            else:
                lines.append("    expected: divergence (no finite values)")
                if obs is not None:
                    lines.append(f"    got      params  {_fmt(obs.params)}, loss {_fmt(obs.loss)}")
    if case.flags:
        lines.append("  flags of this case that may explain it:")
        for flag in case.flags:
            lines.append(f"    {flag}: {case.notes.get(flag, '')}")
    return CaseResult(case.id, case.file, "fail", k, message, "\n".join(lines))


# -- the whole check -------------------------------------------------------------------------------

@dataclass
class Report:
    """The outcome of :func:`check`: one result per case, plus malformed-input errors."""

    results: list = field(default_factory=list)
    format_errors: list = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many cases ended with ``status`` ("pass", "fail" or "skip")."""
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        """True when no case failed and no input file was malformed (skips allowed)."""
        return not self.format_errors and self.count("fail") == 0

    def to_json(self, impl: str) -> str:
        """The report as JSON (schema ``refimpl-golden-check/1``): the summary, one
        object per case (id, file, status, first failing step, message, full report)
        and the malformed-input errors; keys in a fixed order."""
        import json

        cases = [{"id": r.case_id, "file": r.file, "status": r.status, "step": r.step,
                  "message": r.message, "report": r.report} for r in self.results]
        payload = {"schema": "refimpl-golden-check/1", "impl": impl, "ok": self.ok,
                   "passed": self.count("pass"), "failed": self.count("fail"),
                   "skipped": self.count("skip"), "malformed": list(self.format_errors),
                   "cases": cases}
        return json.dumps(payload, indent=1) + "\n"

    def to_junit(self, impl: str) -> str:
        """The report as JUnit XML (one ``testsuite`` named refimpl-golden, a
        ``testcase`` per case with ``classname`` its family, ``failure`` with the
        report, ``skipped`` with the reason; malformed files as failing testcases), the
        format Jenkins, GitLab and GitHub test reporters read."""
        import xml.etree.ElementTree as ET

        suite = ET.Element("testsuite", name="refimpl-golden",
                           tests=str(len(self.results) + len(self.format_errors)),
                           failures=str(self.count("fail") + len(self.format_errors)),
                           skipped=str(self.count("skip")), errors="0")
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="impl", value=impl)
        for i, error in enumerate(self.format_errors):
            case = ET.SubElement(suite, "testcase", classname="malformed", name=f"input-{i}")
            ET.SubElement(case, "failure", message="malformed golden file").text = error
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname=r.case_id.split("/", 1)[0],
                                 name=r.case_id, file=r.file)
            if r.status == "fail":
                ET.SubElement(case, "failure", message=r.message).text = r.report
            elif r.status == "skip":
                ET.SubElement(case, "skipped", message=r.message)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def text(self, *, verbose: bool = False) -> str:
        """The report as the CLI prints it: each failure's report, each skip, then a summary line (``verbose``: each pass too)."""
        lines = [f"MALFORMED {e}" for e in self.format_errors]
        for r in self.results:
            if r.status == "fail":
                lines.append(r.report)
            elif r.status == "skip":
                lines.append(f"SKIP {r.case_id}: {r.message}")
            elif verbose:
                lines.append(f"PASS {r.case_id}")
        summary = (f"golden: {self.count('pass')} passed, {self.count('fail')} failed, "
                   f"{self.count('skip')} skipped")
        if self.format_errors:
            summary += f"; {len(self.format_errors)} problems in the input files"
        lines.append(summary)
        return "\n".join(lines)


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names its adapter by file (``path/to/file.py:FACTORY``)."""
    return isinstance(spec, str) and spec.rpartition(":")[0].endswith(".py")


def load_factory(spec: str):
    """Return the adapter factory named by ``MODULE:FACTORY`` (imported through
    ``sys.path``) or ``path/to/file.py:FACTORY`` (that one file is executed as a module;
    its folder is not put on ``sys.path``). FACTORY may be dotted."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UsageError(f"--impl must look like MODULE:FACTORY or path/to/file.py:FACTORY, "
                         f"got {spec!r}")
    module_name, _, attr = spec.rpartition(":")
    try:
        if is_file_spec(spec):
            obj = _module_from_file(module_name)
        else:
            obj = importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - ImportError or an error while importing
        raise UsageError(f"cannot import module {module_name!r} for --impl: "
                         f"{type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"module {module_name!r} has no attribute {attr!r} (--impl {spec})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--impl {spec} is not callable")
    return obj


def _module_from_file(filename: str):
    """Execute one adapter file as a fresh module (named after its resolved path, so two
    files called ``adapter.py`` do not collide) and return it."""
    path = Path(filename)
    if not path.is_file():
        raise UsageError(f"--impl names the file {filename!r}, which does not exist or is not "
                         "a regular file")
    resolved = path.resolve()
    name = "_refimpl_adapter_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def check(targets, factory, *, select=None) -> Report:
    """Check every case of the golden files ``targets`` (files or directories) with the
    adapter ``factory`` (a callable or a ``"MODULE:FACTORY"`` string). ``select``:
    glob patterns on case ids (``"sam/*"``); None checks everything."""
    if isinstance(factory, str):
        factory = load_factory(factory)
    if isinstance(targets, (str, bytes)) or not hasattr(targets, "__iter__"):
        targets = [targets]
    report = Report()
    for target in targets:
        paths = golden_files(target)
        if not paths:
            report.format_errors.append(f"file {target}: no golden files (*.json) there")
        for path in paths:
            golden = load(path)
            report.format_errors += [str(e) for e in golden.errors]
            for case in golden.cases:
                if select and not any(fnmatch.fnmatchcase(case.id, p) for p in select):
                    continue
                report.results.append(compare(case, run_case(case, factory)))
    if select and not report.results and not report.format_errors:
        raise UsageError(f"no case matches {list(select)}")
    return report
