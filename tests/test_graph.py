"""k-nearest-neighbour graph Laplacians (knn_laplacian), the graph term they feed, and neighbour_code_distance."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import laplacian as csgraph_laplacian

import eaelib
from eaelib import (
    EnergyAutoEncoder,
    GraphLaplacian,
    code_problem,
    constraint_violation,
    energy_terms,
    knn_laplacian,
    learn,
    neighbour_code_distance,
    project_columns,
)
from eaelib.graph import _nearest_neighbors

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

WEIGHTS = {"lambda_d": 10.0, "lambda_e": 10.0, "lambda_s": 1.0}


def brute_force_weights(X, k, symmetrize="union"):
    """The symmetric k-NN weight matrix from the full dense similarity matrix: the oracle."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    unit = X / np.where(norms > 0, norms, 1.0)
    S = unit @ unit.T
    np.fill_diagonal(S, -np.inf)
    A = np.zeros_like(S)
    for i in range(len(X)):
        neighbours = np.argsort(-S[i], kind="stable")[:k]
        A[i, neighbours] = np.clip(S[i, neighbours], 0.0, 1.0)
    return np.maximum(A, A.T) if symmetrize == "union" else np.minimum(A, A.T)


def weights_of(L):
    """Edge weights of a combinatorial Laplacian: its off-diagonal entries, negated."""
    W = -L.toarray()
    np.fill_diagonal(W, 0.0)
    return W


def data(seed, N=40, n=6):
    return np.random.default_rng(seed).standard_normal((N, n))


# -- correctness of the graph ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 30),
    st.integers(2, 7),
    st.data(),
    st.booleans(),
    st.sampled_from(["union", "mutual"]),
    st.integers(0, 10_000),
)
def test_matches_a_brute_force_dense_computation(N, n, draw, normalized, symmetrize, seed):
    X = data(seed, N, n)
    k = draw.draw(st.integers(1, N - 1), label="n_neighbors")
    chunk_size = draw.draw(st.integers(1, N + 3), label="chunk_size")
    L = knn_laplacian(X, k, normalized=normalized, symmetrize=symmetrize, chunk_size=chunk_size)
    assert isinstance(L, sp.csr_array) and L.shape == (N, N) and L.dtype == np.float64
    W = brute_force_weights(X, k, symmetrize)
    # An independent Laplacian: SciPy's csgraph (isolated samples get a zero diagonal when normed, as documented).
    expected = csgraph_laplacian(W, normed=normalized)
    np.testing.assert_allclose(L.toarray(), expected, rtol=1e-12, atol=1e-12)
    assert not np.any(L.data == 0)  # no stored zeros


def test_each_sample_gets_its_k_most_similar_samples():
    """Union: every sample is joined to (at least) its k most similar ones; mutual: to at most k."""
    X = np.abs(data(1, N=60))  # non-negative: every cosine is ≥ 0, so no neighbour loses its edge to the clipping
    k = 5
    S = X @ X.T / np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(X, axis=1))
    np.fill_diagonal(S, -np.inf)
    union = weights_of(knn_laplacian(X, k))
    mutual = weights_of(knn_laplacian(X, k, symmetrize="mutual"))
    for i in range(len(X)):
        nearest = np.argsort(-S[i])[:k]
        assert np.all(union[i, nearest] > 0)
        np.testing.assert_allclose(union[i, nearest], S[i, nearest], rtol=1e-12)
    assert np.all(np.count_nonzero(union, axis=1) >= k)
    assert np.all(np.count_nonzero(mutual, axis=1) <= k)
    assert np.all((mutual > 0) <= (union > 0))  # mutual edges are union edges


def test_weights_are_cosine_similarities_clipped_at_zero():
    X = data(2, N=12, n=3)  # Gaussian: about half the cosines are negative
    W = weights_of(knn_laplacian(X, len(X) - 1))  # k = N − 1: the complete graph
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    expected = np.clip(unit @ unit.T, 0.0, 1.0)
    np.fill_diagonal(expected, 0.0)
    assert np.any(unit @ unit.T < 0)
    np.testing.assert_allclose(W, expected, rtol=1e-12, atol=1e-15)


def test_chunking_gives_the_same_graph():
    X = data(3, N=230, n=8)
    for normalized in (False, True):
        reference = knn_laplacian(X, 7, normalized=normalized, chunk_size=230)  # one chunk: no chunking
        for chunk_size in (1, 3, 64, 229, 10_000, None):
            L = knn_laplacian(X, 7, normalized=normalized, chunk_size=chunk_size)
            assert (L != 0).toarray().tolist() == (reference != 0).toarray().tolist()  # the same edges
            np.testing.assert_allclose(L.toarray(), reference.toarray(), rtol=1e-12, atol=1e-14)


def test_default_chunks_keep_memory_below_n_squared(monkeypatch):
    """Without chunk_size, the similarity block never holds all N² entries when N² is large."""
    import eaelib.graph

    monkeypatch.setattr(eaelib.graph, "_CHUNK_ENTRIES", 1000)  # a small budget to see the chunks at test size
    seen = []
    original = eaelib.graph._nearest_neighbors

    def spy(xp, X, k, chunk_size):
        seen.append(chunk_size)
        return original(xp, X, k, chunk_size)

    monkeypatch.setattr(eaelib.graph, "_nearest_neighbors", spy)
    X = data(4, N=100)
    L = knn_laplacian(X, 5)
    assert seen == [10]  # 1000 entries // 100 samples
    np.testing.assert_allclose(L.toarray(), knn_laplacian(X, 5, chunk_size=100).toarray(), rtol=1e-12, atol=1e-14)


# -- the Laplacians' properties -------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60), st.sampled_from(["union", "mutual"]))
def test_combinatorial_laplacian_is_symmetric_psd_with_zero_row_sums(seed, N, symmetrize):
    X = data(seed, N, 5)
    L = knn_laplacian(X, min(6, N - 1), symmetrize=symmetrize)
    dense = L.toarray()
    assert np.array_equal(dense, dense.T)  # exactly symmetric
    assert np.all(dense - np.diag(np.diag(dense)) <= 0)  # non-positive off-diagonal: non-negative weights
    np.testing.assert_allclose(dense.sum(axis=1), 0.0, atol=1e-12)
    eigenvalues = np.linalg.eigvalsh(dense)
    assert eigenvalues.min() >= -1e-10 * max(eigenvalues.max(), 1.0)
    GraphLaplacian(L)  # passes the Laplacian checks


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60), st.sampled_from(["union", "mutual"]))
def test_normalized_laplacian_has_eigenvalues_in_0_2(seed, N, symmetrize):
    X = data(seed, N, 5)
    L = knn_laplacian(X, min(6, N - 1), normalized=True, symmetrize=symmetrize)
    dense = L.toarray()
    assert np.array_equal(dense, dense.T)
    eigenvalues = np.linalg.eigvalsh(dense)
    assert eigenvalues.min() >= -1e-10 and eigenvalues.max() <= 2 + 1e-10
    diagonal = np.diag(dense)
    assert set(np.unique(diagonal)) <= {0.0, 1.0}  # 1, or 0 for an isolated sample
    # D^{1/2} 1 is in the kernel.
    degrees = weights_of(knn_laplacian(X, min(6, N - 1), symmetrize=symmetrize)).sum(axis=1)
    np.testing.assert_allclose(dense @ np.sqrt(degrees), 0.0, atol=1e-12)


def test_graph_term_is_half_the_weighted_squared_code_differences():
    X = data(5, N=30)
    L = knn_laplacian(X, 4)
    W = weights_of(L)
    Z = np.random.default_rng(6).standard_normal((30, 7))  # samples as rows
    expected = 0.5 * sum(W[i, j] * np.sum((Z[i] - Z[j]) ** 2) for i in range(30) for j in range(30))
    assert np.trace(Z.T @ (L @ Z)) == pytest.approx(expected, rel=1e-12)


def test_zero_sample_is_isolated_and_dtype_follows_the_input():
    X = data(7, N=10).astype(np.float32)
    X[3] = 0.0
    for normalized in (False, True):
        L = knn_laplacian(X, 3, normalized=normalized)
        assert L.dtype == np.float32
        assert L[[3], :].nnz == 0 and L[:, [3]].nnz == 0  # no edge, and no stored diagonal zero
    assert knn_laplacian(np.arange(12).reshape(6, 2), 2).dtype == np.float64  # integers: float64


def test_laplacian_norm_is_estimated_not_bounded_by_frobenius():
    for normalized in (False, True):
        L = knn_laplacian(np.abs(data(8, N=300, n=10)), 10, normalized=normalized)
        exact = np.linalg.eigvalsh(L.toarray()).max()
        norm = GraphLaplacian(L).norm
        assert exact <= norm <= 1.02 * exact
        assert sp.linalg.norm(L) > 3 * exact  # the Frobenius norm would be a poor bound


def test_norm_estimate_bounds_barbaras_normalized_laplacian():
    X = eaelib.extract_patches(eaelib.load_image("barbara"), size=12)
    L = knn_laplacian(X, 10, normalized=True)
    exact = sp.linalg.eigsh(L, k=1, which="LA", return_eigenvectors=False)[0]
    # The top eigenvalues are close here: plain power iteration fell short (1.5095 < 1.5205).
    assert exact <= GraphLaplacian(L).norm <= 1.01 * exact


# -- the graph term in the energy auto-encoder ---------------------------------------------------------------


@pytest.mark.parametrize("normalized", [False, True])
def test_graph_gradient_matches_finite_differences(normalized):
    rng = np.random.default_rng(9)
    n, m, N = 6, 9, 25
    samples = rng.standard_normal((N, n))  # samples as rows, as knn_laplacian takes them
    X = samples.T  # the book's orientation
    D = project_columns(rng.standard_normal((n, m)))
    E = project_columns(D.T.copy())
    L = GraphLaplacian(knn_laplacian(samples, 4, normalized=normalized))
    weights = {**WEIGHTS, "lambda_g": 3.0}
    f, _ = code_problem(X, D, E, **weights, laplacian=L)
    Z, V = rng.standard_normal((2, m, N))

    def smooth(Z):
        return f.value(Z, f.apply(Z))

    h = 1e-6
    numeric = (smooth(Z + h * V) - smooth(Z - h * V)) / (2 * h)
    analytic = np.sum((f.apply(Z) - f.b) * V)  # ⟨∇f(Z), V⟩
    assert numeric == pytest.approx(analytic, rel=1e-6)
    # The graph part of the gradient alone: λ_g Z L.
    f0, _ = code_problem(X, D, E, **WEIGHTS)
    graph_gradient = (f.apply(Z) - f.b) - (f0.apply(Z) - f0.b)
    np.testing.assert_allclose(graph_gradient, 3.0 * Z @ L.matrix.toarray(), rtol=1e-10, atol=1e-10)
    terms = energy_terms(X, Z, D, E, **weights, laplacian=L)
    assert smooth(Z) == pytest.approx(terms["data"] + terms["encoder"] + terms["graph"], rel=1e-10)


@SHORT_FIT
@settings(max_examples=10, deadline=None)
@given(
    st.integers(0, 10_000),
    st.floats(0.1, 100.0),
    st.booleans(),
    st.sampled_from(["float32", "float64"]),
)
def test_estimator_energy_never_increases_with_a_knn_graph(seed, lambda_g, normalized, dtype):
    X = np.abs(data(seed, N=50, n=8))
    L = knn_laplacian(X, 5, normalized=normalized)
    model = EnergyAutoEncoder(n_atoms=10, lambda_g=lambda_g, max_outer=6, rtol=0, random_state=seed, dtype=dtype)
    model.fit(X, laplacian=L)
    history = model.objective_history_
    assert all(b <= a for a, b in itertools.pairwise(history))
    assert model.energy_history_[-1]["graph"] > 0
    assert constraint_violation(model.D_, model.E_) <= 1e-6


def test_graph_term_makes_the_codes_of_neighbours_alike():
    samples = np.abs(data(10, N=80, n=8))
    X = samples.T
    L = knn_laplacian(samples, 5)
    distances = []
    for lambda_g in (0.0, 1.0, 10.0):
        Z0, D0, E0 = eaelib.initialize(X, 12, random_state=0)
        graph = GraphLaplacian(L) if lambda_g else None
        result = learn(X, Z0, D0, E0, **WEIGHTS, lambda_g=lambda_g, laplacian=graph, max_outer=5)
        distances.append(neighbour_code_distance(result.Z.T, L))
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.5 * distances[0]


# -- neighbour_code_distance ----------------------------------------------------------------------------------


def test_neighbour_code_distance_by_hand():
    # A path 0 — 1 — 2 with weights 1 and 3.
    W = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.0, 3.0, 0.0]])
    L = np.diag(W.sum(axis=1)) - W
    Z = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]])  # ‖z0 − z1‖ = 5, z1 = z2; norms 0, 5, 5
    expected = (1 * 5 + 3 * 0) / 4 / (10 / 3)
    assert neighbour_code_distance(Z, L) == pytest.approx(expected, rel=1e-14)
    assert neighbour_code_distance(Z, sp.csr_array(L)) == pytest.approx(expected, rel=1e-14)
    assert neighbour_code_distance(np.ones((3, 2)), L) == 0.0  # equal codes
    assert neighbour_code_distance(np.zeros((3, 2)), L) == 0.0  # no codes at all


def test_neighbour_code_distance_is_scale_free_and_takes_any_laplacian():
    X = data(11, N=50)
    Z = np.random.default_rng(12).standard_normal((50, 6))
    L = knn_laplacian(X, 4)
    value = neighbour_code_distance(Z, L)
    assert neighbour_code_distance(10 * Z, L) == pytest.approx(value, rel=1e-12)
    assert neighbour_code_distance(Z, L.toarray()) == pytest.approx(value, rel=1e-12)
    assert neighbour_code_distance(Z.astype(np.float32), L) == pytest.approx(value, rel=1e-5)
    # Random codes: neighbours are as far apart as any two samples, about √2 times the mean norm.
    assert 1.0 < value < 1.6


@pytest.mark.parametrize(
    ("Z", "L", "message"),
    [
        (np.ones((3, 2)), np.eye(4), "must be 3 × 3"),
        (np.ones((3, 2)), np.eye(3), "no edge"),
        (np.ones((2, 2)), np.array([[1.0, 1.0], [1.0, 1.0]]), "positive off-diagonal"),
        (np.ones(3), np.eye(3), "2-D"),
    ],
)
def test_neighbour_code_distance_bad_input(Z, L, message):
    with pytest.raises(ValueError, match=message):
        neighbour_code_distance(Z, L)


# -- bad input and other array libraries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "kwargs", "error", "message"),
    [
        (np.ones((5, 2)), {"n_neighbors": 0}, ValueError, r"n_neighbors must be an integer ≥ 1 and ≤ 4, got 0"),
        (np.ones((5, 2)), {"n_neighbors": 5}, ValueError, r"n_neighbors must be an integer ≥ 1 and ≤ 4, got 5"),
        (np.ones((5, 2)), {"n_neighbors": 2.5}, ValueError, r"n_neighbors must be an integer"),
        (np.ones((5, 2)), {"n_neighbors": 2, "symmetrize": "both"}, ValueError, r"symmetrize must be one of"),
        (np.ones((5, 2)), {"n_neighbors": 2, "chunk_size": 0}, ValueError, r"chunk_size must be an integer ≥ 1"),
        (np.ones((1, 2)), {}, ValueError, r"at least 2 samples"),
        (np.ones(5), {}, ValueError, r"must be a 2-D array"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), {"n_neighbors": 1}, ValueError, r"NaN or infinite"),
        (sp.csr_array(np.eye(3)), {}, TypeError, r"Sparse input is not supported"),
    ],
)
def test_bad_input_is_explained(X, kwargs, error, message):
    with pytest.raises(error, match=message):
        knn_laplacian(X, **kwargs)


def test_namespace_without_sparse_matrices_is_refused_clearly():
    xps = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"array_api_strict has no sparse library: convert X to NumPy first"):
        knn_laplacian(xps.asarray(data(13, N=10)), 3)


@pytest.mark.parametrize("chunk_size", [1, 4, 50])
def test_neighbour_search_runs_on_array_api_strict(chunk_size):
    """The similarity and top-k step is array-API code: on array-api-strict it matches NumPy."""
    xps = pytest.importorskip("array_api_strict")
    import array_api_compat.numpy as xnp

    X = data(14, N=50)
    indices, similarities = _nearest_neighbors(xps, xps.asarray(X), 6, chunk_size)
    expected_indices, expected_similarities = _nearest_neighbors(xnp, X, 6, 50)
    assert np.array_equal(np.from_dlpack(indices), expected_indices)
    np.testing.assert_allclose(np.from_dlpack(similarities), expected_similarities, rtol=1e-12)


def test_neighbour_code_distance_on_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    L = knn_laplacian(data(17, N=40), 5)
    Z = np.random.default_rng(18).standard_normal((40, 6))
    expected = neighbour_code_distance(Z, L)
    assert neighbour_code_distance(xps.asarray(Z), L) == pytest.approx(expected, rel=1e-12)  # scipy graph
    assert neighbour_code_distance(xps.asarray(Z), xps.asarray(L.toarray())) == pytest.approx(expected, rel=1e-12)


@SHORT_FIT
@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("symmetrize", ["union", "mutual"])
def test_cupy_input_gives_a_cupyx_laplacian_equal_to_numpy(cupy, normalized, symmetrize):
    import cupyx.scipy.sparse

    X = data(15, N=120)
    expected = knn_laplacian(X, 6, normalized=normalized, symmetrize=symmetrize)
    L = knn_laplacian(cupy.asarray(X), 6, normalized=normalized, symmetrize=symmetrize, chunk_size=32)
    assert cupyx.scipy.sparse.isspmatrix_csr(L)
    np.testing.assert_allclose(L.get().toarray(), expected.toarray(), rtol=1e-10, atol=1e-12)
    graph = GraphLaplacian(L)
    assert graph.norm == pytest.approx(GraphLaplacian(expected).norm, rel=1e-6)
    Z = cupy.asarray(np.random.default_rng(16).standard_normal((120, 5)))
    assert neighbour_code_distance(Z, L) == pytest.approx(neighbour_code_distance(Z.get(), expected), rel=1e-10)
    model = EnergyAutoEncoder(n_atoms=8, lambda_g=1.0, max_outer=3, random_state=0).fit(cupy.asarray(X), laplacian=L)
    assert all(b <= a for a, b in itertools.pairwise(model.objective_history_))
