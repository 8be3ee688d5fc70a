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

import pytest

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "refimpl" / "golden"
VECTORS = GOLDEN / "vectors"
CHECKER = GOLDEN / "examples" / "independent_checker.py"

# Cases the independent checker implements (all pass) and skips, per family.
EXPECTED_PASS = {
    "adam": 18, "averagers": 7, "divergence": 2, "ema": 16, "fame": 15, "mlp": 8,
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


@pytest.mark.parametrize("cid, field, value", [
    ("mlp/relu-sgd-momentum", "activation", "tanh"),
    ("mlp/relu-xent-adam", "activation", "tanh"),
    ("mlp/xent-sgd-momentum", "loss", "mse"),
    ("mlp/relu-xent-adam", "loss", "mse"),
])
def test_independent_checker_tells_relu_and_xent_apart(tmp_path, cid, field, value):
    """Teeth for the relu and cross-entropy cases: the independent checker, run on a copy
    whose problem says tanh instead of relu (or mse instead of softmax cross-entropy),
    fails that case at step 1, while the untouched case passes."""
    checker = load_checker()
    data = json.loads((VECTORS / "mlp.json").read_text())
    data["cases"] = [c for c in data["cases"] if c["id"] == cid]
    (tmp_path / "ok.json").write_text(json.dumps(data))
    assert [r.status for r in checker.check([str(tmp_path / "ok.json")])] == ["pass"]
    data["cases"][0]["problem"][field] = value
    (tmp_path / "wrong.json").write_text(json.dumps(data))
    (result,) = checker.check([str(tmp_path / "wrong.json")])
    assert result.status == "fail" and result.message.startswith("step 1:"), result.message
