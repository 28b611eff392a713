"""The alternating core: histories, the safeguard, the callback and the graph term."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from eaelib import (
    GraphLaplacian,
    code_problem,
    constraint_violation,
    energy_terms,
    learn,
    project_columns,
)


def problem(seed, n=6, m=9, N=40, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N)).astype(dtype)
    D = project_columns(rng.standard_normal((n, m))).astype(dtype)
    E = project_columns(D.T.copy())
    return X, np.zeros((m, N), dtype=dtype), D, E


def path_laplacian(N, normalized=False):
    """Laplacian of a path graph over the samples, as a sparse matrix."""
    adjacency = sp.diags([np.ones(N - 1), np.ones(N - 1)], [-1, 1], format="csr")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    if normalized:
        scale = sp.diags(1 / np.sqrt(degree))
        return sp.eye(N, format="csr") - scale @ adjacency @ scale
    return sp.diags(degree) - adjacency


WEIGHTS = {"lambda_d": 10.0, "lambda_e": 10.0, "lambda_s": 1.0}


def test_histories_have_one_entry_per_iteration():
    X, Z, D, E = problem(0)
    result = learn(X, Z, D, E, **WEIGHTS, max_outer=4, max_inner=20, rtol=0)
    assert result.n_iter == 4 and len(result.energy) == 5 and len(result.certificates) == 4
    assert [t.subproblem for t in result.inner] == ["Z", "D", "E"] * 4
    assert [t.outer for t in result.inner[::3]] == [1, 2, 3, 4]
    for trace in result.inner:
        assert len(trace.objective) == len(trace.certificate) == len(trace.smooth) == len(trace.penalty)
        assert min(trace.certificate) >= 0
    for k, z_trace in enumerate(result.inner[::3], 1):
        # FISTA's objective is monotone to the last bit: it adds changes that are each ≤ 0.
        assert np.all(np.diff(z_trace.objective) <= 0)
        # A Z-step starts at the energy of the previous iterate; D and E lower it further.
        start, end = result.energy[k - 1]["total"], result.energy[k]["total"]
        assert z_trace.objective[0] == pytest.approx(start, rel=1e-12)
        assert z_trace.objective[-1] >= end - 1e-12 * start
    for trace in result.inner[1::3] + result.inner[2::3]:
        # The dual solver's primal iterates need not be monotone; it ends certified.
        assert trace.converged and trace.certificate[-1] <= 1e-9 * trace.objective[-1] + 1e-12


def test_energy_terms_match_the_returned_parameters():
    X, Z, D, E = problem(1)
    result = learn(X, Z, D, E, **WEIGHTS, max_outer=3, max_inner=30)
    direct = energy_terms(X, result.Z, result.D, result.E, **WEIGHTS)
    assert direct == pytest.approx(result.energy[-1], rel=1e-12)
    assert constraint_violation(result.D, result.E) <= 1e-12


def test_callback_can_stop_learning():
    X, Z, D, E = problem(2)
    seen = []

    def callback(iteration, terms):
        seen.append((iteration, terms["total"]))
        return iteration == 2

    result = learn(X, Z, D, E, **WEIGHTS, max_outer=10, rtol=0, callback=callback)
    assert result.stopped_by_callback and result.n_iter == 2
    assert [s[1] for s in seen] == [e["total"] for e in result.energy[1:]]


def test_converges_on_rtol():
    X, Z, D, E = problem(3)
    result = learn(X, Z, D, E, **WEIGHTS, max_outer=200, max_inner=200, rtol=1e-3)
    assert result.converged and result.n_iter < 200
    last, before = result.energy[-1]["total"], result.energy[-2]["total"]
    assert before - last <= 1e-3 * last


@pytest.mark.parametrize("normalized", [False, True])
def test_graph_gradient_matches_finite_differences(normalized):
    X, _, D, E = problem(4, N=12)
    L = GraphLaplacian(path_laplacian(12, normalized))
    weights = {**WEIGHTS, "lambda_g": 3.0}
    f, _ = code_problem(X, D, E, **weights, laplacian=L)
    rng = np.random.default_rng(5)
    Z, V = rng.standard_normal((2, D.shape[1], 12))

    def smooth(Z):
        return f.value(Z, f.apply(Z))

    h = 1e-6
    numeric = (smooth(Z + h * V) - smooth(Z - h * V)) / (2 * h)
    analytic = np.sum((f.apply(Z) - f.b) * V)
    assert numeric == pytest.approx(analytic, rel=1e-6)
    # and the smooth part is the energy's data, encoder and graph terms
    terms = energy_terms(X, Z, D, E, **weights, laplacian=L)
    assert smooth(Z) == pytest.approx(terms["data"] + terms["encoder"] + terms["graph"], rel=1e-10)


def test_laplacian_norm_is_an_upper_estimate():
    for normalized in (False, True):
        matrix = path_laplacian(50, normalized)
        exact = np.linalg.eigvalsh(matrix.toarray()).max()
        norm = GraphLaplacian(matrix).norm
        assert exact <= norm <= 1.02 * exact
    dense = path_laplacian(20).toarray()
    assert GraphLaplacian(dense).norm == pytest.approx(np.linalg.eigvalsh(dense).max(), rel=0.02)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 50.0), st.sampled_from([np.float32, np.float64]))
def test_energy_with_graph_term_never_increases(seed, lambda_g, dtype):
    X, Z, D, E = problem(seed, N=30, dtype=dtype)
    L = GraphLaplacian(path_laplacian(30), dtype=dtype)
    result = learn(X, Z, D, E, **WEIGHTS, lambda_g=lambda_g, laplacian=L, max_outer=5, max_inner=30, rtol=0)
    totals = [e["total"] for e in result.energy]
    assert all(b <= a for a, b in itertools.pairwise(totals))
    assert result.Z.dtype == dtype and constraint_violation(result.D, result.E) <= 1e-6


def test_graph_term_makes_neighbouring_codes_alike():
    X, Z, D, E = problem(6, N=30)
    L = path_laplacian(30)

    def neighbour_distance(lambda_g):
        graph = GraphLaplacian(L)
        result = learn(X, Z, D, E, **WEIGHTS, lambda_g=lambda_g, laplacian=graph, max_outer=5, max_inner=100)
        return np.mean(np.linalg.norm(np.diff(result.Z, axis=1), axis=0))

    assert neighbour_distance(20.0) < 0.5 * neighbour_distance(0.0)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.zeros((3, 4)), "square"),
        (np.array([[1.0, -1.0], [0.0, 1.0]]), "symmetric"),
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), "NaN"),
    ],
)
def test_bad_laplacians_are_explained(matrix, message):
    with pytest.raises(ValueError, match=message):
        GraphLaplacian(matrix)


def test_laplacian_size_must_match_the_samples():
    with pytest.raises(ValueError, match="one row per sample"):
        GraphLaplacian(np.eye(3), n_samples=4)
