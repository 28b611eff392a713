"""The alternating core: histories, the safeguard, the callback and the graph term."""

import itertools

import numpy as np
import oracles
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import eaelib
from eaelib import (
    EnergyIncreaseError,
    GraphLaplacian,
    code_problem,
    constraint_violation,
    energy_terms,
    extract_patches,
    initialize,
    learn,
    load_image,
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
    assert result.converged and result.status == "converged" and result.n_iter < 200
    # Converged means every block's certificate is within rtol of the energy; the last outer
    # iteration still gained less than the three blocks together could.
    assert max(result.certificates[-1].values()) <= 1e-3 * result.energy[-1]["total"]
    last, before = result.energy[-1]["total"], result.energy[-2]["total"]
    assert before - last <= 3e-3 * last


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


# ------------------------------------------------------------------- honest convergence


def patch_problem(n_samples=600, size=6, n_atoms=24, seed=0):
    """Real patches of Barbara (n = size², samples as columns) and a start drawn from them."""
    X = extract_patches(load_image("barbara"), size=size, stride=size)[:n_samples].T.copy()
    return (X, *initialize(X, n_atoms, random_state=seed, method="data"))


def test_a_broken_block_solver_raises_instead_of_hiding(monkeypatch):
    """A D-step that makes things worse is an error, not a silent rollback that calls itself converged."""
    X, Z, D, E = problem(7)
    real = eaelib.learning.solve_ball
    calls = []

    def broken(gram, b, c, W0, **options):
        calls.append(1)
        res = real(gram, b, c, W0, **options)
        if len(calls) == 3:  # the D-step of the second outer iteration returns a shrunken dictionary
            res.x = 0.5 * res.x
        return res

    monkeypatch.setattr(eaelib.learning, "solve_ball", broken)
    with pytest.raises(EnergyIncreaseError, match=r"energy rose .* at outer iteration 2") as caught:
        learn(X, Z, D, E, **WEIGHTS, max_outer=5, rtol=0)
    # The result holds the last iterate before the rise.
    assert caught.value.result.n_iter == 1
    monkeypatch.undo()
    assert learn(X, Z, D, E, **WEIGHTS, max_outer=5, rtol=0).n_iter == 5  # unbroken, it runs


def test_a_converged_fit_is_block_stationary_by_independent_solvers():
    """converged means: no block can lower the energy by more than rtol of it. Checked by re-solving
    each block with the independent solvers of tests/oracles.py, on real patches (cond(XXᵀ) ≥ 1e4)."""
    X, Z0, D0, E0 = patch_problem()
    assert np.linalg.cond(X @ X.T) >= 1e4
    rtol = 1e-3
    result = learn(X, Z0, D0, E0, **WEIGHTS, max_outer=300, rtol=rtol)
    assert result.converged and result.status == "converged"
    Z, D, E = result.Z, result.D, result.E
    lambdas = (WEIGHTS["lambda_d"], WEIGHTS["lambda_e"], WEIGHTS["lambda_s"])
    energy = oracles.energy(X, Z, D, E, *lambdas)
    assert energy == pytest.approx(result.energy[-1]["total"], rel=1e-12)
    gains = {
        "Z": energy - oracles.energy(X, oracles.codes(X, D, E, *lambdas, Z0=Z), D, E, *lambdas),
        "D": energy - oracles.energy(X, Z, oracles.ball_least_squares(Z @ Z.T, X @ Z.T, lambdas[0]), E, *lambdas),
        "E": energy - oracles.energy(X, Z, D, oracles.ball_least_squares(X @ X.T, Z @ X.T, lambdas[1]), *lambdas),
    }
    certificates = result.certificates[-1]
    for block, gain in gains.items():
        assert gain <= rtol * energy, (block, gain, energy)
        # ... and each certificate bounds what its block can gain (up to the oracles' own accuracy).
        assert gain <= certificates[block] + 1e-9 * energy, (block, gain, certificates[block])


@pytest.mark.slow
def test_without_encoder_the_energy_beats_scikit_learns_dictionary_learning():
    """λ_e = 0 is scikit-learn's problem (α = λ_s/λ_d); a converged fit reaches a lower energy than
    DictionaryLearning's 20 iterations from the same patches (its cost × λ_d is this energy)."""
    sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
    X, Z0, D0, E0 = patch_problem(n_samples=400, n_atoms=16)
    weights = {"lambda_d": 10.0, "lambda_e": 0.0, "lambda_s": 1.0}
    reference = sklearn_decomposition.DictionaryLearning(
        n_components=16, alpha=0.1, max_iter=20, random_state=0, transform_algorithm="lasso_lars"
    )
    codes = reference.fit_transform(X.T)
    atoms = reference.components_.T
    assert np.linalg.norm(atoms, axis=0).max() <= 1 + 1e-9  # feasible for the unit-ball constraint
    theirs = oracles.energy(X, codes.T, atoms, np.zeros_like(atoms.T), 10.0, 0.0, 1.0)
    result = learn(X, Z0, D0, E0, **weights, max_outer=500, rtol=1e-3)
    assert result.converged
    assert result.energy[-1]["total"] <= theirs
