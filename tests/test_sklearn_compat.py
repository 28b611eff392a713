"""scikit-learn compatibility: the estimator checks, ``clone`` and pipelines."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from eaelib import EnergyAutoEncoder, solve_codes

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

# Small, so that the whole suite of checks runs in about a second.
PARAMS = dict(n_atoms=5, max_outer=5, random_state=0)

# Checks that cannot pass by design; everything else must pass. None at present.
EXPECTED_FAILED_CHECKS = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


# xfail_strict (scikit-learn >= 1.8) turns an unexpected pass into a failure, so the
# list above cannot go stale.
_strict = {"xfail_strict": True} if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters else {}


@SHORT_FIT
@parametrize_with_checks([EnergyAutoEncoder(**PARAMS)], expected_failed_checks=_expected_failed_checks, **_strict)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _subset_data():
    # The data of check_methods_subset_invariance.
    return 3 * np.random.RandomState(0).uniform(size=(20, 3))


@SHORT_FIT
def test_exact_transform_is_subset_invariant_and_accurate():
    """Each row is its own FISTA problem: its codes do not depend on the batch, and they solve the problem.

    Rows stop when their objective stops changing beyond rounding; a matrix-vector product rounds
    differently from a matrix product, so a row may stop an iteration apart: agreement is to 1e-7, not bits.
    """
    X = _subset_data()
    model = EnergyAutoEncoder(**PARAMS).fit(X)
    full = model.transform(X)
    by_row = np.vstack([model.transform(row[None, :]) for row in X])
    weights = {name: getattr(model, name) for name in ("lambda_d", "lambda_e", "lambda_s")}
    reference = solve_codes(X.T, model.D_, model.E_, **weights, rtol=-1, max_iter=5_000).x.T
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(full, by_row, rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(full, reference, rtol=0, atol=1e-6 * scale)


@SHORT_FIT
def test_encoder_transform_is_subset_invariant():
    X = _subset_data()
    model = EnergyAutoEncoder(**PARAMS).fit(X)
    full = model.transform(X, method="encoder")
    by_row = np.vstack([model.transform(row[None, :], method="encoder") for row in X])
    np.testing.assert_allclose(full, by_row, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_array_api_input_check():
    """sklearn's check_array_api_input, which needs SCIPY_ARRAY_API=1 before SciPy is imported: a subprocess.

    parametrize_with_checks skips it otherwise. 'device1' is array-api-strict's second, non-default device.
    """
    pytest.importorskip("array_api_strict")
    code = textwrap.dedent(
        """
        from sklearn.utils.estimator_checks import check_array_api_input
        from eaelib import EnergyAutoEncoder
        for namespace, device, dtype in [("numpy", None, None), ("array_api_strict", "CPU_DEVICE", "float64"),
                                         ("array_api_strict", "device1", "float32")]:
            estimator = EnergyAutoEncoder(n_atoms=5, max_outer=5, random_state=0)
            check_array_api_input("EnergyAutoEncoder", estimator, array_namespace=namespace,
                                  device_name=device, dtype_name=dtype)
        print("OK")
        """
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "OK"


@SHORT_FIT
def test_clone():
    model = EnergyAutoEncoder(n_atoms=7, lambda_s=0.5, max_outer=3, random_state=3, dtype="float32")
    fitted = clone(model).fit(np.random.default_rng(0).standard_normal((30, 4)))
    copy = clone(fitted)
    assert copy is not fitted
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "D_")
    # A clone learns the same model.
    X = np.random.default_rng(0).standard_normal((30, 4))
    refit = copy.fit(X)
    np.testing.assert_array_equal(refit.D_, fitted.D_)
    np.testing.assert_array_equal(refit.E_, fitted.E_)


@SHORT_FIT
def test_pipeline():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 6)) * rng.uniform(0.1, 10, size=6) + rng.uniform(-5, 5, size=6)
    pipe = make_pipeline(StandardScaler(), EnergyAutoEncoder(n_atoms=8, max_outer=5, random_state=0))
    codes = pipe.fit(X).transform(X)
    assert codes.shape == (50, 8)
    assert np.all(np.isfinite(codes))
    scaled = StandardScaler().fit_transform(X)
    alone = EnergyAutoEncoder(n_atoms=8, max_outer=5, random_state=0).fit(scaled)
    np.testing.assert_allclose(codes, alone.transform(scaled), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pipe.fit_transform(X), codes, rtol=1e-12, atol=1e-12)
    # Parameters reach the step through the pipeline.
    pipe.set_params(energyautoencoder__n_atoms=4)
    assert pipe.fit(X).transform(X).shape == (50, 4)
