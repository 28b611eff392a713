"""eaelib.fista: the accelerated proximal gradient solver itself (its options, called directly)."""

import numpy as np
import pytest

import eaelib


def test_chunks_of_columns_give_the_same_codes_and_histories():
    """A separable problem solved a block of columns at a time: the same codes, monotone histories."""
    rng = np.random.default_rng(3)
    X, D = rng.standard_normal((10, 50)), eaelib.project_columns(rng.standard_normal((10, 16)))
    E = eaelib.project_columns(rng.standard_normal((16, 10)))
    f, g = eaelib.code_problem(X, D, E, lambda_d=2.0, lambda_e=0.5, lambda_s=0.4)
    whole = eaelib.fista(f, g, np.zeros((16, 50)), rtol=1e-10, max_iter=2000, chunk=0)
    chunked = eaelib.fista(f, g, np.zeros((16, 50)), rtol=1e-10, max_iter=2000, chunk=7)
    assert whole.converged and chunked.converged
    np.testing.assert_allclose(chunked.x, whole.x, rtol=1e-9, atol=1e-12)
    assert chunked.objective[-1] == pytest.approx(whole.objective[-1], rel=1e-12)
    assert chunked.objective[0] == pytest.approx(whole.objective[0], rel=1e-12)
    assert np.all(np.diff(chunked.objective) <= 0)
    assert len(chunked.objective) == len(chunked.certificate) == chunked.n_iter + 1
    # A shared atol: the blocks' certificates add up to at most it.
    loose = eaelib.fista(f, g, np.zeros((16, 50)), rtol=1e-12, max_iter=2000, chunk=7, atol=1e-3)
    assert loose.converged and loose.certificate[-1] <= 1e-3
