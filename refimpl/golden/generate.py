"""Writing the golden vectors: expected values from refimpl, tolerances from the error
model, both checked against each other (FORMAT.md section 5).

For each case of :mod:`refimpl.golden.catalog`:

1. refimpl runs it through its own adapter and the checker's oracle, exactly as a user's
   implementation will (the plug-in protocol), giving the expected values and, for a
   diverging run, the step where it diverged;
2. the error model (:mod:`refimpl.golden.model`) runs it too, independently, giving the
   first-order rounding-error bounds E (for the implementation's unit roundoff and for
   refimpl's), and the tolerance ``2 (E_impl + E_ref)`` rounded UP to two significant
   digits;
3. refimpl's values must agree with the model's within ``2 E_ref`` at every step (two
   float64 implementations of the same formulas), else the case is not written;
4. a diverging case must overflow robustly: every finite value before the diverging
   step is below the float64 limit by a factor 2 or more, and the loss at that step is
   above it by a factor 2 or more (so a rounding difference cannot move the step).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import refimpl
from refimpl.golden import adapter, bounds, model
from refimpl.golden.catalog import FAMILIES, NOTES, CaseSpec, all_cases
from refimpl.golden.checker import run_case
from refimpl.golden.fileformat import FORMAT_VERSION, SCHEMA_NAME, dumps, parse_case
from refimpl.render import write_atomic

VECTORS = Path(__file__).with_name("vectors")
METHOD = ("first-order rounding-error bound along the case's trajectory, "
          "tol = margin * (E(u_impl) + E(u_ref)) rounded up to 2 significant digits "
          "(FORMAT.md section 5)")
FLOAT_PROBE = [0.1, 1.0 / 3.0, 1.0000000000000002, 5e-324, 2.2250738585072014e-308,
               1.7976931348623157e308, 0.9999999999999999, 123456789.12345679]


class GenerationError(RuntimeError):
    """A case that cannot be written (refimpl and the error model disagree, or its
    tolerance cannot be derived)."""


def round_up(x: float) -> float:
    """``x`` rounded UP to two significant decimal digits (a tolerance never shrinks);
    see :func:`refimpl.golden.model.round_up`, which the reader uses too."""
    try:
        return model.round_up(x)
    except bounds.IllConditioned as exc:
        raise GenerationError(str(exc)) from None


def _inputs(spec: CaseSpec, n_steps: int | None = None) -> dict:
    """The case's JSON object without expected values."""
    n = spec.n_steps if n_steps is None else n_steps
    spe = spec.steps_per_epoch
    steps = []
    for k in range(1, n + 1):
        s = {"step": k, "lr": spec.lr[k - 1], "epoch_end": spe is not None and k % spe == 0}
        if spec.step_data is not None:
            s.update(spec.step_data[k - 1])
        steps.append(s)
    u_impl = bounds.U64 if spec.dtype == "float64" else bounds.U32
    return {"id": spec.id, "comment": spec.comment, "flags": list(spec.flags),
            "dtype": spec.dtype, "optimizer": spec.optimizer, "problem": spec.problem,
            "w0": spec.w0, "steps_per_epoch": spe, "diverges_at": None,
            "tolerance": {"u_impl": u_impl, "u_ref": bounds.U64, "margin": model.MARGIN,
                          "method": METHOD},
            "steps": steps}


def _agree(name, k, ref, mod, E_ref, case_id):
    ref, mod = np.atleast_1d(ref), np.atleast_1d(mod)
    if not np.all(np.abs(ref - mod) <= 2.0 * E_ref):
        raise GenerationError(f"{case_id}: step {k}: refimpl's {name} {ref.tolist()} and the "
                              f"error model's {mod.tolist()} differ by more than 2 E_ref "
                              f"= {(2.0 * E_ref).tolist()}")


def _check_overflow(spec, traj, K):
    """Step K's loss must exceed the float64 limit robustly, earlier values stay far below."""
    big = np.finfo(np.float64).max
    for obs in traj.steps[:K - 1]:
        if not (abs(obs.loss) < big / 2 and np.all(np.abs(obs.params) < big / 2)):
            raise GenerationError(f"{spec.id}: a value before step {K} is within a factor 2 "
                                  "of overflow")
    w = traj.steps[K - 2].params if K >= 2 else np.asarray(spec.w0)
    p = spec.problem
    if p["kind"] != "quadratic":
        raise GenerationError(f"{spec.id}: divergence cases use a quadratic problem")
    H, w_star = np.asarray(p["H"]), np.asarray(p["w_star"])
    r = (w - w_star) * 2.0 ** -600  # exact scaling; log2 of the true loss below
    log2_loss = math.log2(0.5 * float(r @ H @ r)) + 1200.0
    if not log2_loss > math.log2(big) + 1.0:
        raise GenerationError(f"{spec.id}: the loss at step {K} is not safely beyond overflow")


def build_case(spec: CaseSpec) -> dict:
    """The complete JSON object of one case (expected values and tolerances)."""
    obj = _inputs(spec)
    probe = parse_case(obj, "<generator>")
    traj = run_case(probe, adapter.make)
    if traj.error is not None or traj.skipped is not None:
        raise GenerationError(f"{spec.id}: refimpl's own run failed: {traj.error}")
    K = traj.diverged_at
    if (K is not None) != ("divergence" in spec.flags):
        raise GenerationError(f"{spec.id}: diverged at {K}, but the divergence flag says "
                              f"{'divergence' in spec.flags}")
    if K is not None:
        obj = _inputs(spec, K)
        obj["diverges_at"] = K
        _check_overflow(spec, traj, K)
    n_done = len(obj["steps"]) - (1 if K is not None else 0)
    u_impl = obj["tolerance"]["u_impl"]
    try:
        bounded = model.run(obj, u_impl, steps=n_done)
    except bounds.IllConditioned as exc:
        raise GenerationError(f"{spec.id}: {exc}") from exc
    has_average = spec.optimizer["average"] is not None
    for k in range(1, n_done + 1):
        obs, m = traj.steps[k - 1], bounded[k - 1]
        _agree("params", k, obs.params, m["params"], m["E_params"][1], spec.id)
        _agree("loss", k, obs.loss, m["loss"], m["E_loss"][1], spec.id)
        step = obj["steps"][k - 1]
        step["loss"] = obs.loss
        step["grad_evals"] = obs.grad_evals
        step["params"] = obs.params.tolist()
        step["average"] = None
        step["tol_loss"] = round_up(float(model.tolerance(m["E_loss"])[0]))
        step["tol_params"] = [round_up(float(x)) for x in model.tolerance(m["E_params"])]
        step["tol_average"] = None
        if has_average:
            _agree("average", k, obs.average, m["average"], m["E_average"][1], spec.id)
            step["average"] = obs.average.tolist()
            step["tol_average"] = [round_up(float(x)) for x in model.tolerance(m["E_average"])]
    return obj


def build_files(specs=None) -> dict[str, str]:
    """{file name: text} of every family's golden file."""
    specs = all_cases() if specs is None else specs
    families: dict[str, list] = {}
    for spec in specs:
        families.setdefault(spec.family, []).append(spec)
    files = {}
    for family, members in families.items():
        used = sorted({f for s in members for f in s.flags})
        data = {
            "schema": SCHEMA_NAME,
            "format_version": FORMAT_VERSION,
            "generator": f"refimpl {refimpl.__version__} (refimpl.golden)",
            "family": family,
            "description": FAMILIES[family],
            "notes": {f: NOTES[f] for f in used},
            "float_probe": [{"hex": float.hex(x), "decimal": x} for x in FLOAT_PROBE],
            "cases": [build_case(s) for s in members],
        }
        files[f"{family}.json"] = dumps(data) + "\n"
    return files


def write(directory, specs=None) -> list[Path]:
    """Write every family's file into ``directory`` (created if needed).

    Every file is built in memory first and then written atomically (a temporary file
    in the same folder, then ``os.replace``): an interrupted or failing run leaves each
    file either as it was or complete, never half written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in build_files(specs).items():
        path = directory / name
        write_atomic(path, text)
        out.append(path)
    return out
