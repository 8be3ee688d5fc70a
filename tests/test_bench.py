"""The benchmark command (refimpl.bench): record format, timing arithmetic, the byte
model, and that every baseline computes the same update as the kernel it is compared
with. No test here asserts a speed: timings are measured by ``refimpl bench`` only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

import refimpl as r
from refimpl import bench
from refimpl.bench import EPS, STEP_CASES, Record, agrees, meets, record, traced_bytes

CASES = {case.name: case for case in STEP_CASES}


# ------------------------------------------------------------------------- records


def test_record_computes_ratio_and_met():
    """ratio = value / baseline; the target's bound is inclusive in both directions."""
    rec = record("x", 2.0, "GB/s", baseline=4.0, target="ratio >= 0.7")
    assert rec.ratio == 0.5 and rec.met is False  # 2 / 4 = 0.5 < 0.7
    assert record("x", 2.0, "GB/s", baseline=4.0, target="ratio <= 0.5").met is True
    assert record("x", 180.0, "s", target="value <= 180").met is True
    assert record("x", 180.5, "s", target="value <= 180").met is False
    assert record("x", 3.0, "s", target="value >= 2.5e0").met is True
    assert record("x", 3.0, "s").met is None  # no target
    assert record("x", None, "s", target="value <= 90").met is None  # not measured
    assert record("x", 1.0, "s", baseline=0.0).ratio is None  # no division by zero


def test_why_missed_is_added_only_when_the_target_is_missed():
    missed = record("x", 1.0, "GB/s", baseline=2.0, target="ratio >= 0.7", note="a",
                    why_missed="because")
    met = record("x", 2.0, "GB/s", baseline=2.0, target="ratio >= 0.7", note="a",
                 why_missed="because")
    assert missed.note == "a. because" and met.note == "a"
    assert record("x", 1.0, "s", target="value <= 0", why_missed="because").note == "because"


@pytest.mark.parametrize("target", ["ratio > 1", "speed >= 1", "ratio >= x", "ratio>=1", ""])
def test_a_malformed_target_is_rejected(target):
    with pytest.raises(ValueError, match="target must look like"):
        meets(target, 1.0, 1.0)


def test_gbps_and_scientific_sizes():
    # 24 B x 1e7 elements in 0.5 s = 4.8e8 B/s = 0.48 GB/s (every step exact or correctly
    # rounded once, so equality holds)
    assert bench.gbps(24, 10**7, 0.5) == 0.48
    assert [bench._sci(d) for d in (1000, 10**5, 10**7, 64)] == ["1e3", "1e5", "1e7", "64"]


# -------------------------------------------------------------------------- timing


class FakeClock:
    """Advances by 0.25 s (exact in binary) at every call of ``work``."""

    def __init__(self):
        self.now = 0.0
        self.calls = 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += 0.25
        self.calls += 1


def test_time_call_calibrates_number_and_reports_best_median_spread():
    """Warm-up f (0.25 s, also the calibration), number = ceil(1.0 / 0.25) = 4 calls per
    sample, 3 samples: 1 + 12 calls; every sample is 0.25 s per call, spread 0."""
    clock = FakeClock()
    t = bench.time_call(clock.work, repeat=3, min_time=1.0, clock=clock)
    assert (t.best, t.median, t.samples, t.number, t.spread) == (0.25, 0.25, 3, 4, 0.0)
    assert clock.calls == 13


def test_time_call_with_a_separate_warmup_and_a_fixed_number():
    """A separate warm-up runs once and f once more to calibrate (1 + 1 + 2 * 4 calls);
    with number given there is no calibration call (1 + 2 * 1)."""
    clock, warmups = FakeClock(), []
    t = bench.time_call(clock.work, repeat=2, min_time=1.0, warmup=lambda: warmups.append(1),
                        clock=clock)
    assert warmups == [1] and clock.calls == 1 + 2 * 4 and t.number == 4
    clock = FakeClock()
    t = bench.time_call(clock.work, repeat=2, number=1, clock=clock)
    assert clock.calls == 1 + 2 and t.best == 0.25


def test_spread_is_median_over_best_minus_one():
    assert bench.Timing(best=2.0, median=3.0, samples=3, number=1).spread == 0.5


# ------------------------------------------------------------------ the byte model

# Hand count (benchmarks/README.md): 8 bytes per element for every array read and every
# array written, once per pass over it.
HAND_COUNT = {
    "sgd": 8 * (3 + 2),  # read w, buf, g; write w, buf
    "ema": 8 * (2 + 1),  # read ema, w; write ema
    "stable_sam": 8 * (3 + 1),  # read g, g_adv (two norms), g_adv again; write out
    "adam": 8 * (4 + 3),  # read w, m, v, g; write w, m, v
    "fame": 8 * (6 + 5),  # read w, m1, m2, m3, v, g; write w, m1, m2, m3, v
    "fame_full": 8 * (8 + 7),  # read w, m1..m3, v1..v3, g; write w, m1..m3, v1..v3
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_byte_model_is_counted_from_the_kernel(name):
    """The documented bytes per element equal the hand count and the count traced from
    the kernel's own element accesses (StableSAM: the norms inside its inner kernels)."""
    case = CASES[name]
    args = case.make(5, np.random.default_rng(0))
    assert case.bytes_per_element == HAND_COUNT[name] == traced_bytes(case.kernel, args)


def _two_pass(x, out):
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    for i in range(x.shape[0]):
        out[i] = x[i] * total


def _reread(w, g):
    for i in range(w.shape[0]):
        w[i] = w[i] + g[i] * w[i]


def _partial(w, g):
    w[0] = g[0]


def test_byte_model_counts_passes_not_accesses():
    """A second pass over x costs 8 more bytes (x twice + out once = 24); reading w[i]
    twice in one iteration costs nothing extra (w, g read, w written = 24); a kernel that
    touches only part of an array is not a streaming update and is refused."""
    x = np.arange(1.0, 6.0)
    assert traced_bytes(_two_pass, (x, np.empty(5))) == 24
    assert traced_bytes(_reread, (x, x.copy())) == 24
    with pytest.raises(ValueError, match="only in part"):
        traced_bytes(_partial, (x, x.copy()))
    with pytest.raises(ValueError, match="d >= 2"):
        traced_bytes(_reread, (x[:1], x[:1].copy()))


# ---------------------------------------------- the NumPy baselines: the same update


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", sorted(CASES))
def test_numpy_baseline_computes_the_kernels_update(name, seed):
    """Bit for bit, except StableSAM (np.linalg.norm sums in another order: within
    (d + 5) eps relative, see bench._stable_rounding); inputs are left unmodified."""
    case = CASES[name]
    rng = np.random.default_rng(seed)
    for d in (1, 2, 64):
        assert agrees(case, case.make(d, rng))
    assert (case.rounding(64) == 0.0) == (name != "stable_sam")


def _adam_square_first(w, m, v, v_max, g, lr, beta1, beta2, eps, weight_decay, maximize, t,
                       decoupled, amsgrad):
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * (g * g)  # rounds differently from ((1 - b2) g) g
    denom = np.sqrt(v) / math.sqrt(1.0 - beta2 ** t) + eps
    return (w - (lr / (1.0 - beta1 ** t)) * (m / denom), m, v), None


def _ema_rewritten(ema, w, decay):
    return (ema + (1.0 - decay) * (w - ema),), None  # equal in exact arithmetic only


def _stable_without_eps(w, w_adv, g, g_adv, eps, adaptive, out):
    return (g_adv * (np.linalg.norm(g) / np.linalg.norm(g_adv)),), None


def _fame_wrong_chain(w, m1, m2, m3, v, response, g, lr, b1, b2, b3, b4, eps, weight_decay,
                      maximize, exact_debias, t):
    m1 = b1 * m1 + (1.0 - b1) * g
    m2 = b3 * m2 + (1.0 - b3) * m1
    m3 = b4 * m3 + (1.0 - b4) * m1  # bug: the third EMA must smooth m2
    v = b2 * v + (1.0 - b2) * g * g
    denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t) + eps
    tema = 3.0 * m1 - 3.0 * m2 + m3
    return (w - (lr / (1.0 - b1 ** t)) * (tema / denom), m1, m2, m3, v, response.copy()), None


def _fame_full_zero_guard(*args):
    (w, m1, m2, m3, v1, v2, v3, r), _ = bench.numpy_fame_full(*args)
    return (w, m1, m2, m3, v1, v2, v3, r), 0  # reports no clipping


def _sgd_in_place(w, buf, g, lr, momentum, dampening, weight_decay, nesterov, maximize, first,
                  convention):
    buf *= momentum  # modifies the caller's state
    buf += g
    return (w - lr * buf, buf.copy()), None


@pytest.mark.parametrize("name, wrong", [
    ("adam", _adam_square_first), ("ema", _ema_rewritten), ("stable_sam", _stable_without_eps),
    ("fame", _fame_wrong_chain), ("fame_full", _fame_full_zero_guard), ("sgd", _sgd_in_place)])
def test_the_agreement_check_rejects_a_different_update(name, wrong):
    """Teeth: rounding-level rewrites (Adam's g * g first, the EMA as ema + a (w - ema)),
    dropping StableSAM's eps (1e-12 against norms ~1: far above (d + 5) eps), a wrong
    TEMA chain, a wrong clip count, and an in-place update are all caught."""
    case = CASES[name]
    args = case.make(64, np.random.default_rng(0))
    assert agrees(case, args) and not agrees(case, args, wrong)


# ------------------------------------------------------ whole-run baselines: the same run


def test_numpy_quadratic_loop_is_the_jitted_loop():
    """With a diagonal H, ``H @ r`` adds exact zeros to one product, so the gradients, the
    momentum buffer and w agree bit for bit with the jitted loop; the loss (BLAS dot of
    d non-negative terms h_i r_i^2) and the gradient norm are sums in another order:
    within (d + 1) eps relative."""
    d, steps = 6, 40
    h = np.linspace(0.2, 1.0, d)
    problem = r.Quadratic(np.diag(h), np.arange(d, dtype=float))
    opt = r.SGD(lr=0.3, momentum=0.9)
    w0 = np.zeros(d)
    rec = r.train(problem, opt, w0=w0, steps=steps)
    w, losses, norms = bench.numpy_quadratic_sgd(problem.H, problem.w_star, w0, 0.3, 0.9, steps)
    assert np.array_equal(w, rec.w)
    assert np.all(np.abs(losses - rec.losses) <= (d + 1) * EPS * rec.losses)
    assert np.all(np.abs(norms - rec.grad_norms) <= (d + 1) * EPS * rec.grad_norms)
    # teeth: the bitwise comparison sees a different momentum
    w_wrong, _, _ = bench.numpy_quadratic_sgd(problem.H, problem.w_star, w0, 0.3, 0.45, steps)
    assert not np.array_equal(w_wrong, rec.w)


def test_the_bench_quadratic_is_symmetric_positive_definite():
    """Q diag(logspace(-4, 0)) Q^T: its eigenvalues are the logspace to rounding (the
    largest is 1, so an absolute 16 d eps covers the products and the QR's error)."""
    problem = bench.quadratic_problem(10)
    assert np.array_equal(problem.H, problem.H.T)
    assert np.allclose(np.linalg.eigvalsh(problem.H), np.logspace(-4, 0, 10), rtol=0,
                       atol=16 * 10 * EPS)


def _mlp_case(seed, activation="tanh"):
    problem, w0 = bench.mlp_problem((2, 5, 4, 1), 20, 7, seed, activation=activation)
    w = w0 + np.random.default_rng(seed).standard_normal(w0.size) * 0.5
    idx = problem.draw_noise(1, seed)[0]
    return problem, w, idx


# Each gradient entry sums B = 7 products whose factors come through L = 3 layers of
# sums of <= 5 terms, computed in another order (BLAS) and with NumPy's tanh (a few ulps
# from libm's): the difference stays within (B + 5) L eps of the largest entry.
MLP_TOL = (7 + 5) * 3 * EPS


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("seed", range(3))
def test_numpy_mlp_computes_refimpls_loss_and_gradient(seed, activation):
    problem, w, idx = _mlp_case(seed, activation)
    loss, g = problem.loss_and_grad(w, idx)
    X, Y = np.array(problem.X)[idx], np.array(problem.Y)[idx]
    loss_np, g_np = bench.numpy_mlp_loss_grad(problem.mlp, w, X, Y)
    assert abs(loss_np - loss) <= MLP_TOL * loss
    assert np.max(np.abs(g_np - g)) <= MLP_TOL * np.max(np.abs(g))


def _mlp_without_tanh_slope(mlp, w, X, Y):
    """Back-propagates as if the hidden layers were linear (a classic bug)."""
    blocks = mlp.blocks()
    layers = [(w[sw].reshape(s), w[sb]) for (sw, sb), (s, _) in zip(blocks, mlp.shapes())]
    acts = [X]
    for l, (W, b) in enumerate(layers):
        z = acts[-1] @ W.T + b
        acts.append(np.tanh(z) if l < len(layers) - 1 else z)
    delta = (2.0 / acts[-1].size) * (acts[-1] - Y)
    g = np.empty_like(w)
    for l in range(len(layers) - 1, -1, -1):
        g[blocks[l][0]] = (delta.T @ acts[l]).ravel()
        g[blocks[l][1]] = delta.sum(axis=0)
        delta = delta @ layers[l][0]
    return g


def test_the_mlp_check_rejects_a_wrong_backward_pass():
    problem, w, idx = _mlp_case(0)
    _, g = problem.loss_and_grad(w, idx)
    g_bad = _mlp_without_tanh_slope(problem.mlp, w, np.array(problem.X)[idx],
                                    np.array(problem.Y)[idx])
    assert np.max(np.abs(g_bad - g)) > MLP_TOL * np.max(np.abs(g))


def test_numpy_mlp_sgd_follows_the_jitted_run():
    """Five SGD momentum steps on the loop's own mini-batches: the weights stay within
    5 steps x MLP_TOL of the largest weight (each step adds lr x a gradient error)."""
    problem, w0 = bench.mlp_problem((2, 5, 4, 1), 21, 7, 1)
    rec = r.train(problem, r.SGD(lr=0.1, momentum=0.9), w0=w0, steps=5)
    batches = problem.draw_noise(5, 0)
    w, losses = bench.numpy_mlp_sgd(problem.mlp, np.array(problem.X), np.array(problem.Y),
                                    batches, w0, 0.1, 0.9)
    assert np.max(np.abs(w - rec.w)) <= 5 * MLP_TOL * np.max(np.abs(rec.w))
    assert np.all(np.abs(losses - rec.losses) <= MLP_TOL * rec.losses)


def test_the_relu_baseline_is_not_the_tanh_one():
    """Teeth for the relu rows: the NumPy relu gradient differs from the tanh network's."""
    problem, w, idx = _mlp_case(1, "relu")
    X, Y = np.array(problem.X)[idx], np.array(problem.Y)[idx]
    _, g_relu = bench.numpy_mlp_loss_grad(problem.mlp, w, X, Y)
    _, g_tanh = bench.numpy_mlp_loss_grad(r.MLP((2, 5, 4, 1)), w, X, Y)
    assert np.max(np.abs(g_relu - g_tanh)) > MLP_TOL * np.max(np.abs(g_relu))


def test_numpy_mlp_refuses_what_it_does_not_implement():
    problem, w, _ = _mlp_case(0)
    xent = r.MLP((2, 5, 4, 2), loss="xent")
    with pytest.raises(ValueError, match="mse"):
        bench.numpy_mlp_loss_grad(xent, np.zeros(xent.n_params), np.array(problem.X),
                                  np.zeros((20, 2)))
    with pytest.raises(ValueError, match="benchmark's configuration"):
        bench.numpy_adam(*CASES["adam"].make(4, np.random.default_rng(0))[:9], 0.1, False, 1.0,
                         False, 0)


# ----------------------------------------------------------------- memory accounting


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_probe_counts_each_steps_arrays():
    """The arrays' bytes the peak is compared with: 8 d per (d,) array plus the small
    response arrays (3 and 6 floats); 5 arrays (w, m, v, v_max, g) for Adam, 3 (w, buf, g)
    for the loop."""
    d = 1000
    rows = {row["name"]: row for row in bench.memory_probe(d)}
    expected = {"sgd": 3 * 8 * d, "ema": 2 * 8 * d, "stable_sam": 5 * 8 * d,
                "adam": 5 * 8 * d, "fame": 6 * 8 * d + 24, "fame_full": 8 * 8 * d + 48,
                "adam_update_api": 5 * 8 * d, "train_loop_sgd": 3 * 8 * d}
    assert {name: row["arrays"] for name, row in rows.items()} == expected
    assert all(isinstance(row["peak"], int) for row in rows.values())


# ----------------------------------------------------------------- table, JSON, CLI


def test_table_has_one_row_per_record_and_numbered_notes():
    records = [record("a", 27.25, "GB/s", note="limit"),
               record("b", 13.5, "GB/s", baseline=27.0, target="ratio >= 0.7", note="slow"),
               record("c", None, "s", target="value <= 90")]
    lines = bench.format_table(records).splitlines()
    assert lines[2] == "| a [1] | 27.2 | GB/s | - | - | - | - | - |"  # 27.25 rounds to even
    assert lines[3] == "| b [2] | 13.5 | GB/s | 27.0 | 0.5 | ratio >= 0.7 | **NO** | - |"
    assert lines[4] == "| c | - | s | - | - | value <= 90 | - | - |"
    assert lines[6:] == ["- [1] limit", "- [2] slow"]


def test_targets_only_table_keeps_the_rows_with_a_target_and_their_notes():
    records = [record("a", 27.25, "GB/s", note="limit"),
               record("b", 13.5, "GB/s", baseline=27.0, target="ratio >= 0.7", note="slow"),
               record("c", None, "s", target="value <= 90")]
    lines = bench.format_table(records, targets_only=True).splitlines()
    assert lines[2] == "| b [1] | 13.5 | GB/s | 27.0 | 0.5 | ratio >= 0.7 | **NO** | - |"
    assert lines[3] == "| c | - | s | - | - | value <= 90 | - | - |"
    assert lines[5:] == ["- [1] slow"]


def test_json_round_trip_and_table_from_a_stored_run(tmp_path, capsys):
    records = [record("a", 27.25, "GB/s", note="limit"),
               record("b", 13.5, "GB/s", baseline=27.0, target="ratio >= 0.7", note="slow")]
    meta = {"processor": "cpu", "cpus": 2, "numpy": "x", "numba": "y", "quick": False,
            "date": "today", "seconds": 3.0}
    path = tmp_path / "run.json"
    bench.write_json(path, records, meta)
    assert bench.read_json(path) == (records, meta)
    assert bench.main(["--table", str(path), "--targets-only"]) == 0
    out = capsys.readouterr().out
    assert "| b [1] | 13.5 | GB/s | 27.0 | 0.5 | ratio >= 0.7 | **NO** | - |" in out
    assert "| a" not in out and "0 of 1 targets met" in out
    (tmp_path / "bad.json").write_text("{}")
    assert bench.main(["--table", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: not a refimpl bench JSON file" in capsys.readouterr().err


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        bench.write_json(tmp_path / "nan.json", [record("x", float("nan"), "s")], {})
    assert list(tmp_path.iterdir()) == []


_STANDARD_PLAN = bench.plan


def _tiny_plan(quick, torch_python=None, torch_threads=1):
    return dataclasses.replace(
        _STANDARD_PLAN(True), bandwidth_d=64, step_sizes=(16, 64), target_d=64, check_d=16,
        quad_d=3, quad_steps=50, quad_python_steps=20, mlp_sizes=(2, 3, 1), mlp_wide=(2, 5, 1), mlp_batch=4,
        mlp_n=16, mlp_steps=4, repeat=1, min_time=0.0, torch_python=None)


def test_json_file_holds_valid_records(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "plan", _tiny_plan)
    monkeypatch.setattr(bench, "JIT_DISABLED", False)  # tiny sizes run as plain Python too
    path = tmp_path / "bench.json"
    assert bench.main(["--quick", "--json", str(path), "--sections", "steps,runs"]) == 0
    payload = json.loads(path.read_text())
    assert payload["schema"] == "refimpl-bench/1" and payload["meta"]["quick"] is True
    fields = [f.name for f in dataclasses.fields(Record)]
    rows = payload["records"]
    # bandwidth comes with steps (their limit): 4 rows; 6 cases x 2 sizes x 2 comparisons;
    # runs: quadratic, the copy of w at two sizes, then for three networks (the target one,
    # its relu twin, the wide one) MLP vs NumPy and MLP vs torch
    assert len(rows) == 4 + 6 * 2 * 2 + 3 + 3 * 2
    for row in rows:
        assert list(row) == fields
        assert isinstance(row["name"], str) and isinstance(row["unit"], str)
        for key in ("value", "baseline", "ratio", "spread"):
            assert row[key] is None or isinstance(row[key], float)
        if row["value"] is not None and row["baseline"] is not None:
            assert row["ratio"] == row["value"] / row["baseline"]
        assert row["met"] == meets(row["target"], row["value"], row["ratio"])
    torch_rows = [row for row in rows if "torch" in row["name"]]
    assert len(torch_rows) == 3
    assert all(row["value"] is None and "skipped" in row["note"] for row in torch_rows)
    # the targets sit on the target network only: NumPy >= 2, torch >= 4
    mlp_targets = [row["target"] for row in rows if row["name"].startswith("MLP")]
    assert mlp_targets == ["ratio >= 2", "ratio >= 4", None, None, None, None]
    out = capsys.readouterr().out
    assert sum(line.startswith("| ") for line in out.splitlines()) == len(rows) + 1  # + header


@pytest.mark.parametrize("argv, complaint", [
    (["--bogus"], "unrecognized arguments"),
    (["--json"], "expected one argument"),
    (["--json", "/no/such/directory/out.json"], "does not exist"),
    (["--json", "."], "is a directory"),
    (["--sections", "steps,nope"], "sections must be"),
    (["--sections", ""], "sections must be"),
    (["--torch-python", "/no/such/python"], "not an executable file"),
    (["--torch-threads", "0"], "integer >= 1"),
])
def test_bad_arguments_exit_with_code_2(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "usage: refimpl bench" in captured.err and complaint in captured.err
    assert captured.out == ""


def test_refuses_to_time_python_kernels(monkeypatch, capsys):
    """Under NUMBA_DISABLE_JIT=1 the kernels are plain Python: nothing to benchmark."""
    monkeypatch.setattr(bench, "JIT_DISABLED", True)
    assert bench.main(["--quick"]) == 2
    captured = capsys.readouterr()
    assert "NUMBA_DISABLE_JIT" in captured.err and captured.out == ""


def test_source_root_is_this_checkout():
    assert bench.source_root() == Path(__file__).resolve().parent.parent


def test_an_unwritable_json_target_is_a_usage_error_before_any_benchmark(capsys):
    """The reproduction: --json into an unwritable directory ran the whole benchmark and
    then died with a traceback. /proc refuses new files even to root, so the check is
    real here; the command stops at argument parsing (exit 2) with the reason."""
    from refimpl.cli import main

    with pytest.raises(SystemExit) as info:
        main(["bench", "--quick", "--json", "/proc/refimpl-bench.json"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "cannot write into the directory of '/proc/refimpl-bench.json'" in err


def test_the_json_file_is_written_atomically(tmp_path, monkeypatch):
    """A failing write leaves the previous file as it was and no temporary behind."""
    from refimpl import render

    path = tmp_path / "run.json"
    path.write_text("previous run\n")
    real_replace = render.os.replace

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render.os, "replace", failing_replace)
    with pytest.raises(OSError):
        bench.write_json(path, [], {"quick": True})
    monkeypatch.setattr(render.os, "replace", real_replace)
    assert path.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
