"""The synthetic problems of eaelib.synthetic, and the four problems of the original notebook on tiny matrices.

The generators are checked for what they promise (shapes, norms, sparsity, reproducibility); then each
synthetic problem is solved by eaelib and checked against its known answer: least squares against
numpy.linalg.lstsq (including the minimum-norm solution of an underdetermined system), sparse coding
(the ℓ1 norm of the codes falls as λ_s grows), dictionary learning (the atoms are recovered up to sign
and order) and encoder learning (the encoder is recovered).
"""

import itertools
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eaelib
from eaelib.synthetic import encoder_dataset, match_atoms, sparse_dataset

fast = settings(max_examples=25, deadline=None)


# ------------------------------------------------------------------------------ generators


@fast
@given(
    n=st.integers(1, 12),
    m=st.integers(1, 12),
    N=st.integers(1, 30),
    density=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_sparse_dataset_keeps_its_promises(n, m, N, density, seed):
    X, D, Z = sparse_dataset(n, m, N, density=density, random_state=seed)
    assert X.shape == (n, N) and D.shape == (n, m) and Z.shape == (m, N)
    assert X.dtype == D.dtype == Z.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, rtol=1e-12)
    k = max(1, round(density * m))
    assert np.all((Z != 0).sum(axis=0) == k)
    magnitudes = np.abs(Z[Z != 0])
    assert np.all((magnitudes >= 0.5) & (magnitudes <= 1.5))
    np.testing.assert_array_equal(X, D @ Z)


def test_sparse_dataset_is_reproducible_and_seeds_differ():
    first = sparse_dataset(5, 7, 20, density=0.3, random_state=3)
    again = sparse_dataset(5, 7, 20, density=0.3, random_state=3)
    other = sparse_dataset(5, 7, 20, density=0.3, random_state=4)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    # A Generator is used as given (and advanced).
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(sparse_dataset(5, 7, 20, density=0.3, random_state=rng)[0], first[0])
    assert not np.array_equal(sparse_dataset(5, 7, 20, density=0.3, random_state=rng)[0], first[0])


def test_sparse_dataset_noise_and_dense_codes():
    _, D, Z = sparse_dataset(6, 4, 2000, density=1.0, random_state=0)
    X, D1, Z1 = sparse_dataset(6, 4, 2000, density=1.0, random_state=0, noise=0.1)
    np.testing.assert_array_equal(D, D1)
    np.testing.assert_array_equal(Z, Z1)
    assert np.all(Z != 0)  # density=1: every atom in every sample
    residual = X - D @ Z
    assert 0.09 < residual.std() < 0.11


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be an integer ≥ 1"),
        ({"m": 2.5}, "m must be an integer"),
        ({"N": True}, "N must be an integer"),
        ({"density": 0.0}, "density must be a finite real number > 0"),
        ({"density": 1.5}, "≤ 1"),
        ({"noise": -1.0}, "noise must be"),
    ],
)
def test_sparse_dataset_rejects_bad_arguments(kwargs, match):
    arguments = {"n": 4, "m": 5, "N": 6, "density": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        sparse_dataset(**arguments)


@fast
@given(n=st.integers(1, 10), m=st.integers(1, 10), N=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_encoder_dataset_is_feasible_and_exact(n, m, N, seed):
    X, E, Z = encoder_dataset(n, m, N, random_state=seed)
    assert X.shape == (n, N) and E.shape == (m, n) and Z.shape == (m, N)
    norms = np.linalg.norm(E, axis=0)
    assert np.all((norms >= 0.45 - 1e-12) & (norms <= 0.9 + 1e-12))
    np.testing.assert_array_equal(Z, E @ X)
    assert eaelib.constraint_violation(np.zeros((n, 0)), E) < 0


def test_encoder_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_norm"):
        encoder_dataset(3, 4, 5, max_norm=0.0)
    with pytest.raises(ValueError, match="N must be"):
        encoder_dataset(3, 4, 0)


# ----------------------------------------------------------------------------- match_atoms


@pytest.mark.parametrize("method", ["hungarian", "greedy"])
def test_match_atoms_sees_through_sign_order_and_scale(method):
    _, D_true, _ = sparse_dataset(8, 6, 1, random_state=0)
    order = np.array([3, 0, 5, 1, 4, 2])
    signs = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
    D = D_true[:, order] * signs * 0.3  # scale does not matter: cosines
    similarity, index = match_atoms(D, D_true, method=method, return_index=True)
    np.testing.assert_allclose(similarity, 1.0, rtol=1e-12)
    np.testing.assert_array_equal(order[index], np.arange(6))
    np.testing.assert_allclose(match_atoms(D, D_true, method=method), similarity)


def test_hungarian_is_optimal_where_greedy_is_not():
    # |cos| of true atoms e1, e2 (rows) with learned atoms a, b (columns): [[0.6, 0.5], [0.45, 0.05]].
    # Greedy pairs (e1, a) first, the largest, and is left with (e2, b): 0.65 in all; the optimum is
    # crosswise, (e1, b) and (e2, a): 0.95.
    D_true = np.eye(3)[:, :2]
    D = np.array([[0.6, 0.45, np.sqrt(1 - 0.6**2 - 0.45**2)], [0.5, 0.05, np.sqrt(1 - 0.5**2 - 0.05**2)]]).T
    greedy, g_index = match_atoms(D, D_true, method="greedy", return_index=True)
    best, b_index = match_atoms(D, D_true, method="hungarian", return_index=True)
    np.testing.assert_allclose(greedy, [0.6, 0.05])
    np.testing.assert_array_equal(g_index, [0, 1])
    np.testing.assert_allclose(best, [0.5, 0.45])
    np.testing.assert_array_equal(b_index, [1, 0])


@fast
@given(n=st.integers(2, 6), m=st.integers(1, 6), m_true=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_match_atoms_against_brute_force(n, m, m_true, seed):
    rng = np.random.default_rng(seed)
    D, D_true = rng.standard_normal((n, m)), rng.standard_normal((n, m_true))
    similarity, index = match_atoms(D, D_true, return_index=True)
    greedy = match_atoms(D, D_true, method="greedy")
    cos = np.abs((D_true / np.linalg.norm(D_true, axis=0)).T @ (D / np.linalg.norm(D, axis=0)))
    # Each true atom gets a distinct learned atom while any is left; the rest score 0 and index -1.
    matched = index >= 0
    assert matched.sum() == min(m, m_true)
    assert len(set(index[matched])) == matched.sum()
    assert np.all(similarity[~matched] == 0)
    np.testing.assert_allclose(similarity[matched], cos[matched, index[matched]], rtol=1e-12)
    assert np.all((similarity >= 0) & (similarity <= 1))
    if m_true <= m:
        brute = max(sum(cos[i, p[i]] for i in range(m_true)) for p in itertools.permutations(range(m), m_true))
    else:
        brute = max(sum(cos[p[j], j] for j in range(m)) for p in itertools.permutations(range(m_true), m))
    assert similarity.sum() == pytest.approx(brute, rel=1e-12)
    assert greedy.sum() <= similarity.sum() + 1e-12


def test_match_atoms_zero_atoms_score_zero():
    D_true = np.eye(3)
    D = np.eye(3)
    D[:, 1] = 0.0
    similarity = match_atoms(D, D_true)
    np.testing.assert_allclose(similarity, [1.0, 0.0, 1.0])


def test_match_atoms_rejects_bad_input():
    with pytest.raises(ValueError, match="method must be one of"):
        match_atoms(np.eye(2), np.eye(2), method="best")
    with pytest.raises(ValueError, match="same dimension"):
        match_atoms(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="2-D"):
        match_atoms(np.ones(2), np.eye(2))
    with pytest.raises(ValueError, match="finite"):
        match_atoms(np.full((2, 2), np.nan), np.eye(2))


def test_hungarian_without_scipy_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # makes `import scipy...` raise ImportError
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match=r"needs SciPy: pip install scipy, or use method='greedy'"):
        match_atoms(np.eye(2), np.eye(2))
    np.testing.assert_allclose(match_atoms(np.eye(2), np.eye(2), method="greedy"), 1.0)


# ------------------------------------------------------------- the four synthetic problems


def _no_encoder(m, n):
    return np.zeros((m, n))


@pytest.mark.parametrize(("n", "m"), [(10, 5), (7, 7), (5, 10)], ids=["overdetermined", "determined", "under"])
def test_least_squares_matches_lstsq(n, m):
    # Seed 0 draws well-conditioned dictionaries (condition numbers below 5): rtol=0 stops once the
    # objective stops changing beyond rounding, which leaves an error of about κ(D)·√ε in the codes.
    X, D, _ = sparse_dataset(n, m, 8, density=1.0, random_state=0, noise=0.1)
    result = eaelib.solve_codes(
        X, D, _no_encoder(m, n), lambda_d=1.0, lambda_e=0.0, lambda_s=0.0, rtol=0.0, max_iter=20_000
    )
    reference = np.linalg.lstsq(D, X, rcond=None)[0]  # the minimum-norm solution when n < m
    # From Z0 = 0 every iterate stays in the row space of D: FISTA finds the minimum-norm solution too.
    assert np.linalg.norm(result.x - reference) <= 1e-5 * np.linalg.norm(reference)
    if n <= m:
        assert np.linalg.norm(X - D @ result.x) <= 1e-5 * np.linalg.norm(X)


def test_sparse_coding_shrinks_with_lambda_s():
    X, D, _ = sparse_dataset(8, 12, 30, density=0.2, random_state=0, noise=0.05)
    l1, nonzeros = [], []
    for lambda_s in np.geomspace(0.01, 3.0, 6):
        Z = eaelib.solve_codes(
            X, D, _no_encoder(12, 8), lambda_d=1.0, lambda_e=0.0, lambda_s=lambda_s, rtol=1e-10, max_iter=5000
        ).x
        l1.append(np.abs(Z).sum())
        nonzeros.append(int(np.count_nonzero(Z)))
    # ‖Z‖₁ at the minimizer cannot increase with its weight; the number of non-zeros follows here.
    assert all(b <= a * (1 + 1e-8) for a, b in itertools.pairwise(l1))
    assert all(b <= a for a, b in itertools.pairwise(nonzeros))
    assert nonzeros[-1] < nonzeros[0]


def test_dictionary_learning_recovers_atoms():
    n, m, N = 8, 12, 300
    X, D_true, _ = sparse_dataset(n, m, N, density=0.15, random_state=0)
    D0 = eaelib.project_columns(np.random.default_rng(1).standard_normal((n, m)) * 10)
    result = eaelib.learn(
        X,
        np.zeros((m, N)),
        D0,
        _no_encoder(m, n),
        lambda_d=1.0,
        lambda_e=0.0,
        lambda_s=0.1,
        max_outer=60,
        rtol=1e-6,
        inner_rtol=1e-6,
    )
    totals = [terms["total"] for terms in result.energy]
    assert all(b <= a for a, b in itertools.pairwise(totals))
    assert np.mean(match_atoms(result.D, D_true) >= 0.9) >= 0.8
    assert np.mean(match_atoms(D0, D_true) >= 0.9) < 0.2  # the start did not have them
    assert eaelib.constraint_violation(result.D, result.E) <= 1e-12


def test_encoder_learning_recovers_the_encoder():
    X, E_true, Z = encoder_dataset(6, 9, 100, random_state=0)
    result = eaelib.solve_encoder(X, Z, np.zeros((9, 6)), lambda_e=1.0, rtol=0.0, max_iter=2000)
    assert np.linalg.norm(result.x - E_true) <= 1e-6 * np.linalg.norm(E_true)
