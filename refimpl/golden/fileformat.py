"""Reading, validating and writing golden-vector files (format version 2, FORMAT.md).

Reading never trusts the file. Before parsing: a regular file (no FIFO or device) of at
most :data:`MAX_FILE_BYTES`, UTF-8, nested at most :data:`MAX_DEPTH` deep (counted
without recursion). While parsing: JSON syntax, no duplicate keys, no NaN/Infinity, no
integer literal longer than :data:`MAX_INT_DIGITS` digits. Then the schema
(``schema.json``, interpreted by the small validator below, with JSON types compared
strictly: ``true`` is not ``1``, ``1.0`` is not an integer; numbers must fit a float64,
integers an int64), the float probe, the cross-field rules (lengths, steps, float32
exactness, the diverging step) and finally the tolerances: each one is recomputed from
the rule the file states (FORMAT.md section 5, :mod:`refimpl.golden.model`) and must be
that rule's value, and the expected values must pass their own tolerances when the
model of the formulas is run through the case. Every problem is reported as a
:class:`GoldenFormatError` naming the file, the case and the field; :func:`load` raises
nothing else, and one broken case does not hide the others: it returns the valid cases
and the list of errors.

Writing is deterministic: keys in a fixed order, numbers in Python's shortest
round-trip form (at most 17 significant digits; any correctly rounded decimal reader
gets the same double back), arrays of numbers on one line. Regenerating the shipped
vectors therefore gives the same bytes (the drift guard in tests/test_golden.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from refimpl import _validate
from refimpl.golden import bounds, model

SCHEMA_NAME = "refimpl-golden"
FORMAT_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("schema.json")

#: the largest golden file :func:`load` reads (the shipped ones are below 200 kB)
MAX_FILE_BYTES = 16 * 2 ** 20
#: the deepest nesting of JSON arrays and objects accepted (the format needs 6)
MAX_DEPTH = 32
#: the longest integer literal parsed (longer ones cannot fit any field's range)
MAX_INT_DIGITS = 400
#: the largest :func:`refimpl.golden.model.work` of a case whose tolerances are
#: recomputed (the largest shipped case needs 3.0e7); a larger case is refused
MAX_MODEL_WORK = 5e8
#: the range of a JSON integer field (int64) and of a JSON number (float64)
INT_RANGE = (-2 ** 63, 2 ** 63 - 1)


class GoldenFormatError(ValueError):
    """A malformed golden file: names the file, the case (if any) and the field."""

    def __init__(self, file, message, *, case=None, field=None):
        self.file, self.case, self.field, self.message = str(file), case, field, message
        where = [f"file {self.file}"]
        if case is not None:
            where.append(f"case {case!r}")
        if field:
            where.append(f"field {field}")
        super().__init__(": ".join(where) + ": " + message)


# -- the schema subset validator --------------------------------------------------------

_TYPES = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
}


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_errors(x, schema: dict, root: dict, path: str = "") -> list[tuple[str, str]]:
    """(path, message) pairs for the JSON Schema keywords this format uses: $ref, type,
    const, enum, required, properties, additionalProperties, items, minItems, minimum,
    maximum, exclusiveMinimum, exclusiveMaximum, pattern, oneOf (a branch is chosen by
    its ``kind`` constant or its type, so the message names the real problem)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return schema_errors(x, root["$defs"][name], root, path)
    if "oneOf" in schema:
        return _one_of(x, schema["oneOf"], root, path)
    here = path or "(top level)"
    if "type" in schema and not _TYPES[schema["type"]](x):
        return [(here, f"must be of type {schema['type']}, got {_json_type(x)}")]
    if "const" in schema and not _same(x, schema["const"]):
        return [(here, f"must be {schema['const']!r}, got {x!r}")]
    if "enum" in schema and not any(_same(x, option) for option in schema["enum"]):
        return [(here, f"must be one of {schema['enum']}, got {x!r}")]
    if _TYPES["number"](x):
        if isinstance(x, float) and not math.isfinite(x):
            return [(here, f"must be a finite number, got {x!r}")]
        if schema.get("type") == "integer" and not INT_RANGE[0] <= x <= INT_RANGE[1]:
            return [(here, f"must be an integer in the int64 range [-2^63, 2^63 - 1], got "
                           f"{_validate._short(x)}")]
        if isinstance(x, int) and abs(x) > _FLOAT_MAX:
            return [(here, f"must be a number within the float64 range (|x| <= "
                           f"{_FLOAT_MAX!r}), got {_validate._short(x)}")]
        for key, ok, text in (("minimum", lambda a, b: a >= b, ">="),
                              ("maximum", lambda a, b: a <= b, "<="),
                              ("exclusiveMinimum", lambda a, b: a > b, ">"),
                              ("exclusiveMaximum", lambda a, b: a < b, "<")):
            if key in schema and not ok(x, schema[key]):
                return [(here, f"must be {text} {schema[key]!r}, got {x!r}")]
    if isinstance(x, str) and "pattern" in schema and not re.search(schema["pattern"], x):
        return [(here, f"must match {schema['pattern']}, got {x!r}")]
    errors = []
    if isinstance(x, list):
        if len(x) < schema.get("minItems", 0):
            return [(here, f"must have at least {schema['minItems']} items, got {len(x)}")]
        if "items" in schema:
            for i, item in enumerate(x):
                errors += schema_errors(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(x, dict):
        for key in schema.get("required", ()):
            if key not in x:
                errors.append((_join(path, key), "is missing (required)"))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in x.items():
            if key in props:
                errors += schema_errors(value, props[key], root, _join(path, key))
            elif extra is False:
                errors.append((_join(path, key), "is not a field of this object"))
            elif isinstance(extra, dict):
                errors += schema_errors(value, extra, root, _join(path, key))
    return errors


def _one_of(x, branches, root, path):
    resolved = [root["$defs"][b["$ref"].rsplit("/", 1)[-1]] if "$ref" in b else b for b in branches]
    here = path or "(top level)"
    if isinstance(x, dict) and "kind" in x:
        kinds = []
        for b in resolved:
            k = b.get("properties", {}).get("kind", {})
            options = [k["const"]] if "const" in k else k.get("enum", [])
            kinds += options
            if x["kind"] in options:
                return schema_errors(x, b, root, path)
        return [(_join(path, "kind"), f"unknown kind {x['kind']!r} (this reader knows {kinds})")]
    passing = [b for b in resolved if not schema_errors(x, b, root, path)]
    if len(passing) == 1:
        return []
    typed = [b for b in resolved if "type" not in b or _TYPES[b["type"]](x)]
    if len(typed) == 1:
        return schema_errors(x, typed[0], root, path)
    allowed = sorted({b.get("type", "object") for b in resolved})
    return [(here, f"must be one of the types {allowed}, got {_json_type(x)}")]


_FLOAT_MAX = float(np.finfo(np.float64).max)


def _same(x, y) -> bool:
    """JSON equality: ``true`` is not ``1`` and ``1.0`` is not ``1`` (Python says they are)."""
    return type(x) is type(y) and x == y


def _join(path, key):
    return f"{path}.{key}" if path else key


def _json_type(x):
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](x):
            return name
    return type(x).__name__


# -- the Case object adapters receive ---------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One layer of the optimizer (or the problem): its ``kind`` and its fields, with
    numeric lists as read-only float64 numpy arrays. ``spec["momentum"]`` reads a field."""

    kind: str
    fields: MappingProxyType

    def __getitem__(self, key):
        return self.fields[key]

    def get(self, key, default=None):
        """The field ``key`` of the spec, or ``default`` if the file does not set it."""
        return self.fields.get(key, default)


@dataclass(frozen=True)
class StepInput:
    """What the checker tells an adapter at each step (1-based ``step``)."""

    step: int
    lr: float
    epoch_end: bool


@dataclass(frozen=True, eq=False)
class Case:
    """A validated golden case, as the plug-in protocol hands it to an adapter.

    Inputs: ``id``, ``comment``, ``flags``, ``dtype`` ("float64"/"float32"), ``d``,
    ``n_steps`` (steps to run, the diverging one included), ``base`` / ``sam`` /
    ``average`` (:class:`Spec` or None), ``problem`` (:class:`Spec`), ``w0`` (d,),
    ``lr`` (n_steps,), ``epoch_end`` (n_steps,), ``steps_per_epoch``, ``diverges_at``.
    Expected outputs (rows = completed steps 1..n_done): ``params``, ``average_expected``,
    ``loss``, ``grad_evals`` and the tolerances ``tol_params``, ``tol_average``,
    ``tol_loss``. ``raw`` is the case's JSON object; ``file`` where it came from.
    """

    id: str
    comment: str
    flags: tuple
    dtype: str
    d: int
    n_steps: int
    base: Spec
    sam: Spec | None
    average: Spec | None
    problem: Spec
    w0: np.ndarray
    lr: np.ndarray
    epoch_end: np.ndarray
    steps_per_epoch: int | None
    diverges_at: int | None
    raw: dict
    file: str
    params: np.ndarray | None = None
    average_expected: np.ndarray | None = None
    loss: np.ndarray | None = None
    grad_evals: np.ndarray | None = None
    tol_params: np.ndarray | None = None
    tol_average: np.ndarray | None = None
    tol_loss: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    @property
    def numpy_dtype(self):
        """The case's precision as a numpy dtype (float64 or float32)."""
        return np.dtype(self.dtype)

    @property
    def n_done(self) -> int:
        """Steps with expected values (all but the diverging one)."""
        return self.n_steps - (1 if self.diverges_at is not None else 0)

    def step_input(self, k: int) -> StepInput:
        """The input of 1-based step ``k``."""
        return StepInput(k, float(self.lr[k - 1]), bool(self.epoch_end[k - 1]))

    def step_data(self, k: int) -> dict:
        """The raw JSON step object of 1-based step ``k``."""
        return self.raw["steps"][k - 1]

    def describe(self) -> str:
        """The optimizer's options in one line (for reports)."""
        parts = []
        for layer in (self.average, self.sam, self.base):
            if layer is not None:
                opts = ", ".join(f"{k}={_short(v)}" for k, v in layer.fields.items() if k != "kind")
                parts.append(f"{layer.kind}({opts})")
        return " o ".join(parts)


def _short(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return repr(v)


def _ro(a):
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


_INTEGER_LISTS = ("sizes",)  # the MLP's layer widths stay a tuple of ints


def _spec(obj: dict) -> Spec:
    fields = {k: (tuple(v) if k in _INTEGER_LISTS else _ro(v) if isinstance(v, list) else v)
              for k, v in obj.items()}
    return Spec(obj["kind"], MappingProxyType(fields))


# -- cross-field checks -------------------------------------------------------------------------

def _flat(x) -> list:
    """The numbers of a number, vector or (possibly ragged) matrix, in order."""
    if not isinstance(x, list):
        return [x]
    return [y for item in x for y in (item if isinstance(item, list) else [item])]


def _f32_exact(x) -> bool:
    a = np.array(_flat(x), dtype=np.float64)
    with np.errstate(over="ignore"):
        return bool(np.all(a.astype(np.float32).astype(np.float64) == a))


def _semantic_errors(c: dict) -> list[tuple[str, str]]:
    """(field, message) for the rules a schema cannot state (FORMAT.md section 2)."""
    errs = []
    d = len(c["w0"])
    prob = c["problem"]
    kind = prob["kind"]
    if kind == "quadratic":
        H = prob["H"]
        if len(H) != d or any(len(row) != d for row in H):
            errs.append(("problem.H", f"must be {d} x {d} (d = len(w0))"))
        elif any(H[i][j] != H[j][i] for i in range(d) for j in range(d)):
            errs.append(("problem.H", "must be exactly symmetric"))
    for name in ("w_star", "h", "noise_scale"):
        if name in prob and len(prob[name]) != d:
            errs.append((f"problem.{name}", f"must have length {d} (d = len(w0)), got {len(prob[name])}"))
    if kind == "noisy_quadratic" and any(x < 0 for x in prob["noise_scale"]):
        errs.append(("problem.noise_scale", "must be >= 0"))
    if kind == "mlp":
        errs += _mlp_errors(prob, d)
    opt = c["optimizer"]
    base, av = opt["base"], opt["average"]
    if base["kind"] == "fame" and base.get("amsgrad", False) and base["variant"] != "official":
        errs.append(("optimizer.base.amsgrad", "is an option of the official variant only"))
    if base["kind"] == "sgd":
        if base["nesterov"] and (base["momentum"] <= 0 or base["dampening"] != 0):
            errs.append(("optimizer.base.nesterov", "needs momentum > 0 and dampening == 0"))
        if base["convention"] != "pytorch" and base["dampening"] != 0:
            errs.append(("optimizer.base.dampening", "must be 0 unless convention is 'pytorch'"))
    if av is not None and av["kind"] == "swa":
        if av["swa_unit"] == "epoch" and c["steps_per_epoch"] is None:
            errs.append(("steps_per_epoch", "is needed by an SWA that takes its snapshots at epoch ends"))
    elif av is not None and av["kind"] in ("ema", "switch_ema"):
        if av["min_decay"] > av["decay"]:
            errs.append(("optimizer.average.min_decay", "must be <= decay"))
        if av["warmup"] in ("constant", "linear", "exp") and av["warmup_steps"] < 1:
            errs.append(("optimizer.average.warmup_steps", "must be >= 1 with this warm-up"))
        if av["kind"] == "switch_ema" and av["switch_unit"] == "epoch" and c["steps_per_epoch"] is None:
            errs.append(("steps_per_epoch", "is needed by a Switch EMA that switches at epoch ends"))
    steps = c["steps"]
    K = c["diverges_at"]
    if K is not None and K != len(steps):
        errs.append(("diverges_at", f"must equal the number of steps ({len(steps)}): the diverging step is the last one"))
    spe = c["steps_per_epoch"]
    for k, s in enumerate(steps, start=1):
        at = f"steps[{k - 1}]"
        if s["step"] != k:
            errs.append((f"{at}.step", f"must be {k} (steps are numbered 1, 2, ...), got {s['step']}"))
        want_end = spe is not None and k % spe == 0
        if s["epoch_end"] != want_end:
            errs.append((f"{at}.epoch_end", f"must be {str(want_end).lower()} (steps_per_epoch = {spe})"))
        for name, needed in (("noise", kind == "noisy_quadratic"), ("gradient", kind == "replay"),
                             ("batch", kind == "mlp")):
            if needed and name not in s:
                errs.append((f"{at}.{name}", f"is missing (required by problem kind {kind!r})"))
            elif not needed and name in s:
                errs.append((f"{at}.{name}", f"is not used by problem kind {kind!r}"))
            elif needed and name != "batch" and len(s[name]) != d:
                errs.append((f"{at}.{name}", f"must have length {d}, got {len(s[name])}"))
            elif needed and name == "batch":
                if len(s["batch"]) != prob["batch_size"]:
                    errs.append((f"{at}.batch", f"must have batch_size = {prob['batch_size']} indices"))
                if any(i >= len(prob["X"]) for i in s["batch"]):
                    errs.append((f"{at}.batch", f"indices must be < {len(prob['X'])} (rows of X)"))
        outputs = ("loss", "grad_evals", "params", "average", "tol_loss", "tol_params", "tol_average")
        if K is not None and k == K:
            for name in outputs:
                if name in s:
                    errs.append((f"{at}.{name}", "must be absent on the diverging step"))
            continue
        for name in outputs:
            if name not in s:
                errs.append((f"{at}.{name}", "is missing (required on a completed step)"))
        for name in ("params", "tol_params"):
            if name in s and len(s[name]) != d:
                errs.append((f"{at}.{name}", f"must have length {d}, got {len(s[name])}"))
        for name in ("average", "tol_average"):
            if name not in s:
                continue
            if av is None and s[name] is not None:
                errs.append((f"{at}.{name}", "must be null: the case has no averager"))
            elif av is not None and (s[name] is None or len(s[name]) != d):
                errs.append((f"{at}.{name}", f"must be a vector of length {d} (the case has an averager)"))
    tol = c["tolerance"]
    if c["dtype"] == "float32":
        inputs = [("w0", c["w0"])] + [(f"problem.{k}", v) for k, v in prob.items()
                                      if not isinstance(v, str)]
        for layer in ("base", "sam", "average"):
            if opt[layer] is not None:
                inputs += [(f"optimizer.{layer}.{k}", v) for k, v in opt[layer].items()
                           if isinstance(v, float)]
        for k, s in enumerate(steps):
            inputs += [(f"steps[{k}].{n}", s[n]) for n in ("lr", "noise", "gradient") if n in s]
        for name, value in inputs:
            if not _f32_exact(value):
                errs.append((name, "must be exactly representable in float32 (dtype is float32)"))
    u_impl = bounds.U64 if c["dtype"] == "float64" else bounds.U32
    if tol["u_impl"] != u_impl or tol["u_ref"] != bounds.U64:
        errs.append(("tolerance", f"u_impl must be {u_impl!r} for {c['dtype']} and u_ref 2^-53"))
    if tol["margin"] != model.MARGIN:
        errs.append(("tolerance.margin", f"must be {model.MARGIN!r} (the margin of the "
                                         f"tolerance rule, FORMAT.md section 5), got {tol['margin']!r}"))
    return errs


# -- the tolerances, recomputed ---------------------------------------------------------------

#: sha256 of a case object -> True, for the cases whose tolerances were verified in this
#: process (the shipped vectors are read by many commands; the model runs once per case)
_VERIFIED: dict[str, bool] = {}

#: relative slack on the recomputed bound before rounding: another machine's numpy may
#: compute the model's sums in another order, which can only move the bound by a few
#: ulps, i.e. change the 2-digit rounding at most by one step at a digit boundary
_PLATFORM_SLACK = 1e-9


def _tolerance_errors(c: dict) -> list[tuple[str, str]]:
    """(field, message) for every tolerance that is not the value of the file's own rule.

    The rule (FORMAT.md section 5): ``tol = round_up(margin * (E(u_impl) + E(u_ref)))``,
    with E the first-order rounding-error bound of the error model
    (:mod:`refimpl.golden.model`) along the case's trajectory. It is recomputed here from
    the case's inputs; a written tolerance must equal it (up to one step of the 2-digit
    rounding at a digit boundary, for another platform's rounding of the model), so an
    inflated tolerance that would let any implementation pass, or a deflated one that
    would fail a correct one, is malformed. The expected values must then pass their own
    tolerances with the model as the implementation (a file whose expected values
    contradict the formulas of section 4 cannot be passed by a correct implementation)."""
    key = hashlib.sha256(json.dumps(c, sort_keys=True).encode("utf-8")).hexdigest()
    if key in _VERIFIED:
        return []
    if model.work(c) > MAX_MODEL_WORK:
        return [("steps", f"the case is too large to verify its tolerances (model work "
                          f"{model.work(c):.3g} > {MAX_MODEL_WORK:.3g}: fewer steps or a "
                          "smaller state)")]
    n_done = len(c["steps"]) - (1 if c["diverges_at"] is not None else 0)
    try:
        with np.errstate(all="ignore"):
            bounded = model.run(c, c["tolerance"]["u_impl"], steps=n_done)
    except Exception as exc:  # noqa: BLE001 - any failure of the model on hostile data
        return [("tolerance", f"cannot be recomputed by the rule of FORMAT.md section 5: "
                              f"{type(exc).__name__}: {exc}")]
    errs = []
    for k in range(1, n_done + 1):
        s, m = c["steps"][k - 1], bounded[k - 1]
        at = f"steps[{k - 1}]"
        for name, expected, E in (("loss", m["loss"], m["E_loss"]),
                                  ("params", m["params"], m["E_params"]),
                                  ("average", m.get("average"), m.get("E_average"))):
            if E is None:
                continue
            written = [float(t) for t in np.atleast_1d(s[f"tol_{name}"])]
            exact = model.tolerance(E)
            for j, (t, x) in enumerate(zip(written, exact)):
                lo = model.round_up(float(x) * (1 - _PLATFORM_SLACK)) if math.isfinite(x) else None
                hi = model.round_up(float(x) * (1 + _PLATFORM_SLACK)) if math.isfinite(x) else None
                if lo is None or not lo <= t <= hi:
                    index = "" if name == "loss" else f"[{j}]"
                    errs.append((f"{at}.tol_{name}{index}",
                                 f"is {t!r}, but the file's tolerance rule gives "
                                 f"{model.round_up(float(x)) if hi is not None else x!r} "
                                 "(margin * (E(u_impl) + E(u_ref)) rounded up to 2 digits, "
                                 "FORMAT.md section 5)"))
            if any(f"{at}.tol_{name}" in e[0] for e in errs):
                continue
            got = np.atleast_1d(np.array(s[name], dtype=np.float64))
            bad = np.flatnonzero(~(np.abs(got - np.atleast_1d(expected)) <= np.array(written)))
            for j in bad:
                index = "" if name == "loss" else f"[{j}]"
                errs.append((f"{at}.{name}{index}",
                             f"is {float(got[j])!r}, but the formulas of FORMAT.md section 4 give "
                             f"{float(np.atleast_1d(expected)[j])!r}, more than its tolerance "
                             f"{written[j]!r} away"))
    if not errs:
        if len(_VERIFIED) > 10_000:
            _VERIFIED.clear()
        _VERIFIED[key] = True
    return errs


def _mlp_errors(prob: dict, d: int) -> list[tuple[str, str]]:
    sizes = prob["sizes"]
    errs = []
    n_params = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    if d != n_params:
        errs.append(("w0", f"must have {n_params} entries (the parameters of an MLP {sizes}), got {d}"))
    X, Y = prob["X"], prob["Y"]
    if any(len(row) != sizes[0] for row in X):
        errs.append(("problem.X", f"rows must have sizes[0] = {sizes[0]} entries"))
    if len(Y) != len(X) or any(len(row) != sizes[-1] for row in Y):
        errs.append(("problem.Y", f"must be {len(X)} x {sizes[-1]} (a row per row of X, sizes[-1] columns)"))
    if prob["batch_size"] > len(X):
        errs.append(("problem.batch_size", f"must be <= {len(X)} (the rows of X)"))
    if prob["loss"] == "xent":
        if sizes[-1] < 2:
            errs.append(("problem.sizes", "needs at least 2 outputs (classes) with loss 'xent'"))
        if any(y < 0 for row in Y for y in row):
            errs.append(("problem.Y", "must be >= 0 with loss 'xent' (one-hot rows or class weights)"))
    return errs


def parse_case(c: dict, file: str, notes: dict | None = None) -> Case:
    """Build a :class:`Case` from a case object that passed validation."""
    steps = c["steps"]
    opt = c["optimizer"]
    K = c["diverges_at"]
    done = [s for s in steps if "params" in s]
    kw = {}
    if done:
        kw = dict(
            params=_ro([s["params"] for s in done]),
            loss=_ro([s["loss"] for s in done]),
            grad_evals=np.array([s["grad_evals"] for s in done], dtype=np.int64),
            tol_params=_ro([s["tol_params"] for s in done]),
            tol_loss=_ro([s["tol_loss"] for s in done]),
        )
        if opt["average"] is not None:
            kw["average_expected"] = _ro([s["average"] for s in done])
            kw["tol_average"] = _ro([s["tol_average"] for s in done])
    return Case(
        id=c["id"], comment=c["comment"], flags=tuple(c["flags"]), dtype=c["dtype"],
        d=len(c["w0"]), n_steps=len(steps), base=_spec(opt["base"]),
        sam=None if opt["sam"] is None else _spec(opt["sam"]),
        average=None if opt["average"] is None else _spec(opt["average"]),
        problem=_spec(c["problem"]), w0=_ro(c["w0"]), lr=_ro([s["lr"] for s in steps]),
        epoch_end=np.array([s["epoch_end"] for s in steps], dtype=bool),
        steps_per_epoch=c["steps_per_epoch"], diverges_at=K, raw=c, file=str(file),
        notes=dict(notes or {}), **kw)


# -- reading ------------------------------------------------------------------------------------------

@dataclass
class GoldenFile:
    """What :func:`load` read: the header, the valid cases and the errors found."""

    path: str
    header: dict
    cases: list
    errors: list


class _Refused(ValueError):
    """Raised by the JSON parser's hooks for input the format never contains."""


def _reject_constant(name):
    raise _Refused(f"{name} is not a JSON number (golden files store finite numbers only)")


def _parse_int(text):
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"holds an integer literal of {len(text.lstrip('-'))} digits "
                       f"(more than {MAX_INT_DIGITS}: outside every field's range)")
    return int(text)


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _Refused(f"has the key {key!r} twice in one JSON object (a reader would keep "
                           "one of the two silently)")
        obj[key] = value
    return obj


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside JSON strings, counted without
    recursion (a running sum), so a hostile file nested a million deep is measured
    before any recursive parser sees it."""
    skeleton = _STRING.sub("", text).encode("utf-8", "replace")
    chars = np.frombuffer(skeleton, dtype=np.uint8)
    steps = (np.isin(chars, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(chars, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(steps).max(initial=0))


def load(path) -> GoldenFile:
    """Read and validate one golden file. Never raises for a bad file: every problem is
    a :class:`GoldenFormatError` in the result's ``errors`` (the module docstring and
    FORMAT.md section 7 list what is checked, with the limits :data:`MAX_FILE_BYTES`,
    :data:`MAX_DEPTH`, :data:`MAX_INT_DIGITS` and :data:`MAX_MODEL_WORK`)."""
    path = Path(path)

    def failed(message):
        return GoldenFile(str(path), {}, [], [GoldenFormatError(path, message)])

    try:
        raw = _validate.regular_file_bytes("a golden file", path, MAX_FILE_BYTES)
        text = raw.decode("utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return failed(f"cannot be read: {exc}")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        return failed(f"is nested {depth} levels deep (at most {MAX_DEPTH} allowed; the "
                      "format needs 6)")
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        hint = "" if text.rstrip().endswith("}") else " (the file looks truncated: it does not end with '}')"
        msg = f"is not valid JSON{hint}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        return failed(msg)
    except _Refused as exc:
        return failed(str(exc))
    except (ValueError, RecursionError, MemoryError) as exc:  # a backstop for the parser
        return failed(f"cannot be parsed: {type(exc).__name__}: {exc}")
    return load_data(data, path)


def load_data(data, path) -> GoldenFile:
    """Validate an already parsed file object (see :func:`load`)."""
    try:
        return _load_data(data, path)
    except RecursionError as exc:  # only reachable by data built in Python, not by load()
        return GoldenFile(str(path), {}, [], [GoldenFormatError(
            path, f"is nested too deeply to validate: {exc}")])


def _load_data(data, path) -> GoldenFile:
    errors = []
    if not isinstance(data, dict):
        return GoldenFile(str(path), {}, [], [GoldenFormatError(path, "must hold a JSON object at the top level")])
    if data.get("schema") != SCHEMA_NAME:
        return GoldenFile(str(path), {}, [], [GoldenFormatError(
            path, f"is not a refimpl golden file (field schema is {data.get('schema')!r}, "
                  f"expected {SCHEMA_NAME!r})", field="schema")])
    version = data.get("format_version")
    if not _same(version, FORMAT_VERSION):
        return GoldenFile(str(path), {}, [], [GoldenFormatError(
            path, f"has format_version {version!r}; this reader knows version {FORMAT_VERSION} "
                  "only (upgrade refimpl, or regenerate the file)", field="format_version")])
    schema = load_schema()
    header_schema = dict(schema, properties=dict(schema["properties"], cases={"type": "array"}))
    for where, msg in schema_errors(data, header_schema, schema):
        errors.append(GoldenFormatError(path, msg, field=where))
    if errors:
        return GoldenFile(str(path), {}, [], errors)
    for i, probe in enumerate(data["float_probe"]):
        try:
            exact = float.fromhex(probe["hex"])
        except OverflowError:
            errors.append(GoldenFormatError(
                path, f"{probe['hex']} is outside the float64 range", field=f"float_probe[{i}].hex"))
            continue
        if exact != probe["decimal"]:
            errors.append(GoldenFormatError(
                path, f"decimal {probe['decimal']!r} does not read back as {probe['hex']}: "
                      "the number parser is not exact", field=f"float_probe[{i}]"))
    notes = data["notes"]
    cases, seen = [], set()
    for i, c in enumerate(data["cases"]):
        name = c.get("id") if isinstance(c, dict) and isinstance(c.get("id"), str) else f"#{i}"
        try:
            errs = _case_errors(c, schema, notes, seen)
        except Exception as exc:  # noqa: BLE001 - a check that failed is a malformed case
            errs = [("(case)", f"cannot be validated: {type(exc).__name__}: {exc}")]
        if errs:
            errors += [GoldenFormatError(path, msg, case=name, field=where) for where, msg in errs]
            continue
        seen.add(c["id"])
        cases.append(parse_case(c, str(path), {f: notes[f] for f in c["flags"]}))
    header = {k: v for k, v in data.items() if k != "cases"}
    return GoldenFile(str(path), header, cases, errors)


def _case_errors(c, schema, notes, seen) -> list[tuple[str, str]]:
    """(field, message) for one case: schema, cross-field rules, then tolerances."""
    errs = schema_errors(c, schema["$defs"]["case"], schema)
    if errs:
        return errs
    errs = _semantic_errors(c)
    for flag in c["flags"]:
        if flag not in notes:
            errs.append(("flags", f"flag {flag!r} is not explained in the file's notes"))
    if c["id"] in seen:
        errs.append(("id", "is used by an earlier case of this file"))
    return errs or _tolerance_errors(c)


def golden_files(target) -> list[Path]:
    """The golden files of a directory (``*.json``, sorted) or the one file given."""
    target = Path(target)
    if target.is_dir():
        return sorted(p for p in target.glob("*.json"))
    return [target]


# -- writing -----------------------------------------------------------------------------------------

def _number(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"golden files store finite numbers only, got {x!r}")
    return repr(x)  # shortest string that reads back to the same double


def _scalar(x) -> bool:
    return x is None or isinstance(x, (bool, int, float, str, np.floating, np.integer, np.bool_))


def dumps(obj, indent: int = 0) -> str:
    """Deterministic JSON: dict keys in insertion order, numeric arrays on one line."""
    pad = "  " * indent
    if obj is None:
        return "null"
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if _scalar(obj):
        return _number(obj)
    if isinstance(obj, (list, tuple)):
        if all(_scalar(x) for x in obj):
            return "[" + ", ".join(dumps(x) for x in obj) + "]"
        inner = ",\n".join(pad + "  " + dumps(x, indent + 1) for x in obj)
        return "[\n" + inner + "\n" + pad + "]"
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        inner = ",\n".join(pad + "  " + json.dumps(k) + ": " + dumps(v, indent + 1) for k, v in obj.items())
        return "{\n" + inner + "\n" + pad + "}"
    raise TypeError(f"cannot write {type(obj).__name__} to a golden file")
