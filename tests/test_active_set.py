"""eaelib.active_set: Newton steps on the support, and FISTA's polish with them."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eaelib
from eaelib.active_set import newton_on_support, solve_on_support


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12), N=st.integers(1, 9), density=st.floats(0.0, 1.0))
def test_solve_on_support_is_the_small_systems(seed, m, N, density):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m + 3, m))
    G, b = A.T @ A + 0.1 * np.eye(m), rng.standard_normal((m, N))
    support = rng.random((m, N)) < density
    sign = np.where(rng.random((m, N)) < 0.5, -1.0, 1.0)
    z = solve_on_support(G, b, support, sign, 0.7)
    for j in range(N):
        S = np.flatnonzero(support[:, j])
        expected = np.zeros(m)
        if S.size:
            expected[S] = np.linalg.solve(G[np.ix_(S, S)], b[S, j] - 0.7 * sign[S, j])
        np.testing.assert_allclose(z[:, j], expected, rtol=1e-8, atol=1e-10)


def test_the_newton_point_is_the_minimizer_once_the_support_is_right():
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((8, 30)), eaelib.project_columns(rng.standard_normal((8, 12)))
    f, g = eaelib.code_problem(X, D, np.zeros((12, 8)), lambda_d=1.0, lambda_e=0.2, lambda_s=0.5)
    exact = eaelib.fista(f, g, np.zeros((12, 30)), rtol=0.0, max_iter=5000, criterion="kkt").x
    z = newton_on_support(f.gram, f.b, exact, f.apply(exact), 0.5, f.lipschitz)
    np.testing.assert_allclose(z, exact, atol=1e-9)


def test_array_api_strict_matches_numpy():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(1)
    A = rng.standard_normal((9, 6))
    G, b = A.T @ A, rng.standard_normal((6, 7))
    x = rng.standard_normal((6, 7)) * (rng.random((6, 7)) < 0.5)
    expected = newton_on_support(G, b, x, G @ x, 0.3, np.linalg.eigvalsh(G).max())
    strict = newton_on_support(*(xps.asarray(a) for a in (G, b, x, G @ x)), 0.3, np.linalg.eigvalsh(G).max())
    np.testing.assert_allclose(np.from_dlpack(strict), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lambda_e", [0.0, 1.0])
def test_polish_keeps_fista_monotone_and_lands_on_the_same_codes(lambda_e):
    rng = np.random.default_rng(2)
    X, D = rng.standard_normal((10, 40)), eaelib.project_columns(rng.standard_normal((10, 16)))
    E = eaelib.project_columns(rng.standard_normal((16, 10)))
    f, g = eaelib.code_problem(X, D, E, lambda_d=2.0, lambda_e=lambda_e, lambda_s=0.4)
    plain = eaelib.fista(f, g, np.zeros((16, 40)), rtol=1e-9, max_iter=5000, criterion="kkt")
    polished = eaelib.fista(f, g, np.zeros((16, 40)), rtol=1e-9, max_iter=5000, criterion="kkt", polish=5)
    assert plain.converged and polished.converged
    assert np.all(np.diff(polished.objective) <= 0)
    np.testing.assert_allclose(polished.x, plain.x, atol=1e-7)
    with pytest.raises(ValueError, match="polish needs"):
        eaelib.fista(*eaelib.dictionary_problem(X, plain.x, lambda_d=1.0), D, polish=5)
