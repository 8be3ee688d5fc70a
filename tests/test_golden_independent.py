"""The golden vectors' documentation is enough to write a checker: an independent one.

refimpl/golden/examples/independent_checker.py was written from FORMAT.md, schema.json
and the JSON vectors alone (stdlib + numpy, no refimpl import).  These tests pin what
that independent reading achieves, so a change to the vectors or to the documentation
that breaks it fails here.  The checker is loaded by file path, without importing refimpl.
"""

import importlib.util
import json
import pathlib
import sys

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "refimpl" / "golden"
VECTORS = GOLDEN / "vectors"
CHECKER = GOLDEN / "examples" / "independent_checker.py"

# Cases the independent checker implements (all pass) and skips, per family.
EXPECTED_PASS = {
    "adam": 18, "averagers": 7, "divergence": 2, "ema": 16, "fame": 14, "mlp": 5,
    "sam": 14, "sgd": 19, "stable_sam": 13, "switch_ema": 11,
}
EXPECTED_SKIPPED = 0


def load_checker():
    spec = importlib.util.spec_from_file_location("independent_checker", CHECKER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module         # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_independent_checker_passes_every_shipped_case(capsys):
    checker = load_checker()
    assert checker.main([str(VECTORS)]) == 0, capsys.readouterr().out
    results = checker.check([str(VECTORS)])
    counts = checker.summarize(results)
    bad = [f"{r.status} {r.case_id}: {r.message}"
           for r in results if r.status in ("fail", "malformed")]
    assert not bad, "\n".join(bad)
    assert {family: c["pass"] for family, c in counts.items()} == EXPECTED_PASS
    skipped = [f"{r.case_id}: {r.message}" for r in results if r.status == "skip"]
    assert len(skipped) == EXPECTED_SKIPPED, skipped


def test_independent_checker_is_not_vacuous(tmp_path):
    """A parameter moved by ten times its tolerance fails that case at that step."""
    checker = load_checker()
    data = json.loads((VECTORS / "sgd.json").read_text())
    step = data["cases"][0]["steps"][4]
    step["params"][0] += 10 * step["tol_params"][0]
    (tmp_path / "sgd.json").write_text(json.dumps(data))
    results = checker.check([str(tmp_path)])
    failed = [r for r in results if r.status == "fail"]
    assert [r.case_id for r in failed] == [data["cases"][0]["id"]]
    assert failed[0].message.startswith("step 5: params")
    assert checker.main([str(tmp_path)]) == 1


def test_independent_checker_refuses_an_unknown_optional_field(tmp_path):
    """FORMAT.md section 10: a reader never ignores a field it does not know. An Adam
    case with an invented field is malformed (not silently run as plain Adam), and the
    other cases of the file are still checked."""
    checker = load_checker()
    data = json.loads((VECTORS / "adam.json").read_text())
    data["cases"][0]["optimizer"]["base"]["nadam"] = True
    (tmp_path / "adam.json").write_text(json.dumps(data))
    results = checker.check([str(tmp_path)])
    bad = [r for r in results if r.status == "malformed"]
    assert [r.case_id for r in bad] == [data["cases"][0]["id"]] and "nadam" in bad[0].message
    assert sum(r.status == "pass" for r in results) == len(data["cases"]) - 1
