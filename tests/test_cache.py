"""Where refimpl caches its compiled kernels (refimpl/_jit.py), and that the cache never
serves stale machine code, never writes into the package and never fails an import.

The three faults this guards against: numba's own ``cache=True`` writes into the
installed package (``site-packages/refimpl/**/__pycache__``, which survives ``pip
uninstall`` and then shadows a later install), keys a kernel on its own file only (an
edited callee in another module kept running its old code), and raises at import when
nothing beside the sources is writable. Each test runs a copy of the package in a
subprocess with its own cache root, with the JIT on (also in the suite's
``NUMBA_DISABLE_JIT=1`` pass: the cache only exists when kernels compile).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refimpl import _jit

# The normalized SAM ascent of g = (3, 4) with rho = 5, eps = 0: e = 5 g / ||g|| = (3, 4)
# exactly (a 3-4-5 triangle, every intermediate exact in binary). The kernel lives in optimizers/sam.py; the norm it calls, l2_norm,
# lives in _kernels.py: the "callee in another module".
PROBE = """
import json
import numpy as np
from refimpl._jit import CACHE_DIR
from refimpl.optimizers.sam import NORMALIZED, ascent_kernel
e = np.zeros(2)
ascent_kernel(np.array([1.0, 1.0]), np.array([3.0, 4.0]), 5.0, 0.0, NORMALIZED, e)
stats = ascent_kernel.stats
print(json.dumps({"e": e.tolist(), "cache": None if CACHE_DIR is None else str(CACHE_DIR),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def _copy_package(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(_jit.PACKAGE_DIR, site / "refimpl",
                    ignore=shutil.ignore_patterns("__pycache__", "tutorials", "*.nbi", "*.nbc"))
    return site


def _probe(site: Path, cache_root: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_DISABLE_JIT", "NUMBA_CACHE_DIR", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), REFIMPL_CACHE_DIR=cache_root, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=site, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine_code_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


@pytest.mark.slow
def test_cache_is_reused_keyed_on_every_source_and_kept_out_of_the_package(tmp_path):
    site, root = _copy_package(tmp_path), tmp_path / "cache"
    cold = _probe(site, str(root))
    assert cold["e"] == [3.0, 4.0] and cold["misses"] == 1 and cold["hits"] == 0
    assert Path(cold["cache"]).parent == root and _machine_code_in(root)
    warm = _probe(site, str(root))
    assert warm == dict(cold, hits=1, misses=0)  # the same folder, loaded, not compiled
    # Edit the CALLEE in another module (numba's own cache would not notice): the norm is
    # doubled, so the ascent halves: e = (1.5, 2).
    kernels = site / "refimpl" / "_kernels.py"
    text = kernels.read_text()
    line = "    return math.sqrt(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)))\n"
    assert text.count(line) >= 1  # l2_norm's is the first
    kernels.write_text(text.replace(line, line.replace("return ", "return 2.0 * "), 1))
    edited = _probe(site, str(root))
    assert edited["e"] == [1.5, 2.0] and edited["misses"] == 1 and edited["hits"] == 0
    assert edited["cache"] != cold["cache"]
    assert _machine_code_in(site) == []  # nothing beside the sources, ever


def test_unwritable_cache_root_compiles_in_memory_and_the_import_works(tmp_path):
    site = _copy_package(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # a cache root below a regular file cannot be created, even by root
    result = _probe(site, str(blocker / "cache"))
    assert result["e"] == [3.0, 4.0] and result["cache"] is None
    assert result["hits"] == 0
    assert _machine_code_in(site) == [] and _machine_code_in(tmp_path) == []
    off = _probe(site, "off")
    assert off["cache"] is None and off["e"] == [3.0, 4.0]


def test_source_hash_changes_with_any_source_file_and_ignores_tutorials_and_proofs(tmp_path):
    pkg = tmp_path / "refimpl"
    (pkg / "optimizers").mkdir(parents=True)
    (pkg / "tutorials").mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "optimizers" / "b.py").write_text("y = 2\n")
    before = _jit.source_hash(pkg)
    (pkg / "tutorials" / "01_t.py").write_text("print(1)\n")
    (pkg / "proofs").mkdir()
    (pkg / "proofs" / "__init__.py").write_text('"""The proofs."""\n')
    assert _jit.source_hash(pkg) == before  # a wheel's extra folders: the same key
    (pkg / "optimizers" / "b.py").write_text("y = 3\n")
    assert _jit.source_hash(pkg) != before
    (pkg / "optimizers" / "b.py").write_text("y = 2\n")
    assert _jit.source_hash(pkg) == before
    (pkg / "optimizers" / "b.py").rename(pkg / "b.py")  # same text, another module
    assert _jit.source_hash(pkg) != before


def test_clear_removes_only_the_folders_refimpl_marked(tmp_path):
    mine = tmp_path / "0.1.0-0123456789abcdef"
    (mine / "optimizers").mkdir(parents=True)
    (mine / _jit.MARKER).write_text("")
    (mine / "optimizers" / "k.nbi").write_bytes(b"x")
    theirs = tmp_path / "someone-elses"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    loose = tmp_path / "loose.nbi"
    loose.write_bytes(b"y")
    assert _jit.clear_cache(tmp_path) == [mine]
    assert not mine.exists() and (theirs / "notes.txt").read_text() == "keep me"
    assert loose.exists()
    assert _jit.clear_cache(tmp_path / "missing") == []


BOUNDS_PROBE = """
import json
import numpy as np
from refimpl._jit import CACHE_DIR
from refimpl.optimizers.ema import ema_update_kernel
try:
    ema_update_kernel(np.zeros(3), np.zeros(2), 0.5)  # w shorter than ema: reads w[2]
    outcome = "no error"
except IndexError as err:
    outcome = "IndexError"
print(json.dumps({"cache": str(CACHE_DIR), "outcome": outcome}))
"""


@pytest.mark.skipif(_jit.JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: no machine code, no cache")
def test_a_bounds_checked_run_has_its_own_cache_and_raises_index_error(tmp_path):
    """CI runs the kernels' tests once with NUMBA_BOUNDSCHECK=1, so an out-of-bounds read
    is an IndexError there instead of garbage or a segfault for a user. That needs the
    checked machine code: numba's cache index does not key on the setting, so refimpl's
    cache folder does (-boundscheck). Run first without checks, then with, in one cache
    root: the checked run must not load the unchecked kernel (it raises IndexError),
    and the unchecked run must not have raised (teeth: the probe's read is really out
    of bounds only for the checker to see)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", "NUMBA_BOUNDSCHECK")}
    env.update(REFIMPL_CACHE_DIR=str(tmp_path / "cache"))
    runs = {}
    for flag in ("0", "1"):
        proc = subprocess.run([sys.executable, "-c", BOUNDS_PROBE], env=dict(env, NUMBA_BOUNDSCHECK=flag),
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[flag] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs["1"]["outcome"] == "IndexError"
    assert runs["0"]["outcome"] == "no error"
    assert runs["1"]["cache"].endswith("-boundscheck")
    assert runs["1"]["cache"] == runs["0"]["cache"] + "-boundscheck"
