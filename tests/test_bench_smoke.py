"""The benchmark suite (bench/, ``make bench``): its smoke run and the checks behind its comparisons."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eaelib

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

pytest.importorskip("pyunlocbox")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("threadpoolctl")

from bench.workload import SMOKE_SIZES, make_workload  # noqa: E402 (after the skips)

# The smoke run of the whole suite takes about a minute (its fixture), the other tests seconds each.
pytestmark = pytest.mark.slow

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

COMPARISONS = ("1. ", "2. ", "3. ", "4. ", "5. ", "7. ")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run ``python -m bench --smoke`` once into a temporary folder."""
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done.stdout, json.loads((out / "latest.json").read_text())


def test_smoke_run_writes_table_json_markdown_and_plots(smoke):
    out, stdout, results = smoke
    assert stdout.startswith("comparison")
    for name in ("latest.md", "energy_vs_time.png", "zstep_rate.png", "scaling.png"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "latest.md").read_text()
    assert "## Targets" in markdown and results["meta"]["cpu"] in markdown


def test_smoke_results_record_the_machine(smoke):
    meta = smoke[2]["meta"]
    assert meta["date"] and meta["cpu"] and meta["cores"] >= 1
    assert meta["versions"]["numpy"] and meta["versions"]["pyunlocbox"]
    assert any(lib["user_api"] == "blas" for lib in meta["blas"]["libraries"])
    assert "OPENBLAS_CORETYPE" in meta["blas"]["env"]


def test_smoke_results_have_every_comparison_with_a_status(smoke):
    rows = smoke[2]["rows"]
    for prefix in COMPARISONS:
        assert any(r["comparison"].startswith(prefix) for r in rows), prefix
    assert {r["status"] for r in rows} <= {"met", "NOT met", "n/a"}
    assert all(r["ratio"] is None or np.isfinite(r["ratio"]) for r in rows)


def test_smoke_references_solve_the_same_problem(smoke):
    comparisons = smoke[2]["comparisons"]
    for r in comparisons["original"]["sizes"]:
        # The original approach's own (pyunlocbox) energy is eaelib's energy of its result, which is feasible.
        assert r["original"]["energy_check_rel"] <= 1e-10
        assert r["original"]["constraint_violation"] <= 1e-12
    for r in comparisons["sklearn"]["sizes"]:
        # scikit-learn's cost times λ_d is eaelib's energy with λ_e = 0.
        assert r["dictionary_learning"]["objective_scaling_check_rel"] <= 1e-10


def test_smoke_collection_streams_every_patch_and_dask_matches(smoke):
    c = smoke[2]["comparisons"]["collection"]
    stream = c["stream"]
    assert stream["n_patches"] == 10 * 14 * 14 and stream["checkpoints"][-1][0] == stream["n_patches"]
    assert c["dask"]["max_difference_D"] < 1e-8  # the same batches: the same model on the cluster
    assert c["estimate"]["rounds"] == 1e9 / (100 * 10_000) and c["estimate"]["epoch_seconds"] > 0


@SHORT_FIT
def test_workload_start_is_the_estimators():
    """bench's start is EnergyAutoEncoder's: the same first outer iteration from it."""
    workload = make_workload(SMOKE_SIZES[0])
    model = eaelib.EnergyAutoEncoder(workload.n_atoms, **workload.lambdas, max_outer=1, random_state=workload.seed).fit(
        workload.X.T
    )
    Z0, D0, E0 = workload.initial()
    result = eaelib.learn(workload.X, Z0, D0, E0, **workload.lambdas, max_outer=1)
    np.testing.assert_array_equal(model.D_, result.D)
    np.testing.assert_array_equal(model.E_, result.E)
    assert model.objective_history_ == [terms["total"] for terms in result.energy]


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy present: the GPU check would run")
def test_gpu_check_exits_cleanly_without_a_gpu():
    done = subprocess.run(
        ["bash", "bench/gpu_check.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout
