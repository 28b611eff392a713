"""The synthetic problems of the original formulation notebook, on tiny seeded matrices, in float64.

Least squares (over-, exactly and under-determined dictionaries), sparse coding (under-, exactly
and over-complete dictionaries), dictionary learning from X = D_true Z_true with sparse codes, and
encoder learning from Z = E_true X. Every reference is computed here with NumPy, SciPy or
scikit-learn, independently of eaelib (including of ``eaelib.synthetic``).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import normalized, with_singular_values
from scipy.optimize import linear_sum_assignment

import eaelib
from eaelib._base import HAVE_SKLEARN

# rtol = 0: stop once the objective no longer changes beyond rounding, which resolves the minimizer
# to about κ√eps. Over 300 seeds: least squares within 1.6e-7 of lstsq, encoders within 7e-8.
TIGHT = {"rtol": 0.0, "max_iter": 5000}

examples = settings(max_examples=10, deadline=None)
seeds = st.integers(0, 2**32 - 1)

# scikit-learn is optional (eaelib._base): without it only the tests marked needs_sklearn skip.
needs_sklearn = pytest.mark.skipif(
    not HAVE_SKLEARN, reason="compares with scikit-learn's Lasso: scikit-learn is not installed"
)


def sparse_codes(rng, m, N, k):
    """m × N codes with exactly k non-zeros per column, of magnitude in [0.5, 1.5] and random sign."""
    Z = np.zeros((m, N))
    for j in range(N):
        rows = rng.choice(m, size=k, replace=False)
        Z[rows, j] = rng.choice([-1.0, 1.0], size=k) * rng.uniform(0.5, 1.5, size=k)
    return Z


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ------------------------------------------------------------------- least squares

SHAPES = {"overdetermined": (8, 4), "determined": (5, 5), "underdetermined": (4, 8)}


def least_squares(X, D, Z0=None):
    """min_Z ½‖X − DZ‖² with solve_codes: λ_s = 0 (an ℓ1 weight of zero) and λ_e = 0."""
    m, n = D.shape[1], D.shape[0]
    return eaelib.solve_codes(X, D, np.zeros((m, n)), Z0, lambda_d=1.0, lambda_e=0.0, lambda_s=0.0, **TIGHT)


@pytest.mark.parametrize("kind", SHAPES)
@examples
@given(seed=seeds)
def test_least_squares_matches_lstsq(kind, seed):
    n, m = SHAPES[kind]
    rng = np.random.default_rng(seed)
    D = with_singular_values(rng, n, m, 0.5, 1.0)  # condition number at most 2
    X = rng.standard_normal((n, 3))
    res = least_squares(X, D)
    assert res.converged
    reference = np.linalg.lstsq(D, X, rcond=None)[0]  # the minimum-norm solution when n < m
    # From Z0 = 0 FISTA stays in the row space of D, so it finds the minimum-norm solution too.
    assert rel(res.x, reference) <= 1e-6
    residual = np.linalg.norm(X - D @ res.x)
    if n <= m:  # D is onto: X is reproduced
        assert residual <= 1e-6 * np.linalg.norm(X)
    else:  # the residual is orthogonal to the columns of D
        assert np.linalg.norm(D.T @ (X - D @ res.x)) <= 1e-6 * np.linalg.norm(D.T @ X)
        assert residual == pytest.approx(np.linalg.norm(X - D @ reference), rel=1e-10)


@examples
@given(seed=seeds)
def test_underdetermined_least_squares_keeps_the_null_space_part_of_its_start(seed):
    n, m = SHAPES["underdetermined"]
    rng = np.random.default_rng(seed)
    D = with_singular_values(rng, n, m, 0.5, 1.0)
    X = rng.standard_normal((n, 3))
    Z0 = rng.standard_normal((m, 3))
    null = np.eye(m) - np.linalg.pinv(D) @ D  # projector onto the null space of D
    res = least_squares(X, D, Z0)
    minimum_norm = np.linalg.pinv(D) @ X
    # Every step moves along the row space: the null-space part of Z0 is never touched.
    assert rel(res.x, minimum_norm + null @ Z0) <= 1e-6
    assert np.linalg.norm(X - D @ res.x) <= 1e-6 * np.linalg.norm(X)
    zero_start = least_squares(X, D)
    assert np.linalg.norm(null @ zero_start.x) <= 1e-12 * np.linalg.norm(zero_start.x)


# ------------------------------------------------------------------- sparse coding

# (n, m, max_iter): with λ_e = 0 the Z-problem is only as well conditioned as D restricted to the
# support, so the overcomplete case needs more iterations to reach its minimizer to 1e-7.
DICTIONARIES = {"undercomplete": (8, 4, 300), "complete": (6, 6, 300), "overcomplete": (5, 8, 1000)}
FRACTIONS = (0.05, 0.1, 0.2, 0.4, 0.7, 1.0)  # of λ_max = λ_d max|DᵀX|, from which Z = 0


def lasso(D, X, lambda_d, lambda_s):
    """Per sample: λ_d/2‖x − Dz‖² + λ_s‖z‖₁ = λ_d n (1/(2n)‖x − Dz‖² + α‖z‖₁), α = λ_s/(λ_d n)."""
    from sklearn.linear_model import Lasso

    n = D.shape[0]
    codes = np.empty((D.shape[1], X.shape[1]))
    for j in range(X.shape[1]):
        model = Lasso(alpha=lambda_s / (lambda_d * n), fit_intercept=False, tol=1e-12, max_iter=100_000)
        codes[:, j] = model.fit(D, X[:, j]).coef_
    return codes


@needs_sklearn
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", DICTIONARIES)
def test_sparse_coding_matches_lasso_and_sparsifies(kind, seed):
    n, m, max_iter = DICTIONARIES[kind]
    rng = np.random.default_rng(seed)
    if kind == "complete":  # a random square matrix can be nearly singular: bound its conditioning
        D = normalized(with_singular_values(rng, n, m, 0.7, 1.0))
    else:
        D = normalized(rng.standard_normal((n, m)))
    X = D @ sparse_codes(rng, m, 10, 2) + 0.05 * rng.standard_normal((n, 10))
    lambda_d = 1.0
    lambda_max = lambda_d * np.abs(D.T @ X).max()
    scale = np.linalg.norm(D.T @ X) / np.linalg.norm(D, 2) ** 2  # one gradient step from Z = 0
    nonzeros = []
    for fraction in FRACTIONS:
        lambda_s = fraction * lambda_max
        Z = eaelib.solve_codes(
            X, D, np.zeros((m, n)), lambda_d=lambda_d, lambda_e=0.0, lambda_s=lambda_s, rtol=-1.0, max_iter=max_iter
        ).x
        reference = lasso(D, X, lambda_d, lambda_s)
        assert np.linalg.norm(Z - reference) <= 1e-6 * max(np.linalg.norm(reference), scale), fraction
        nonzeros.append(int(np.count_nonzero(Z)))
        # A unique Lasso minimizer uses at most n atoms per sample, even from an overcomplete D.
        assert np.count_nonzero(Z, axis=0).max() <= n
    assert nonzeros[-1] == 0  # λ_s ≥ λ_max: Z = 0
    assert all(b <= a for a, b in itertools.pairwise(nonzeros)), nonzeros
    assert nonzeros[0] > nonzeros[-2] > 0  # large λ_s: sparse, but not empty, codes
    assert nonzeros[-2] <= 0.5 * m * X.shape[1]


# --------------------------------------------------------------- dictionary learning


def match(D, D_true):
    """|cosine| between each true atom and its learned atom, under the best one-to-one pairing."""
    cosines = np.abs(normalized(D).T @ D_true)
    rows, cols = linear_sum_assignment(cosines, maximize=True)
    return cosines[rows, cols]


@pytest.mark.parametrize("seed", [0, 7, 10])
def test_dictionary_learning_recovers_the_atoms(seed):
    # 6 atoms in dimension 10, 2 per sample, 200 samples, random start: with these settings 11 of
    # seeds 0-11 recover at least 5 atoms to |cos| ≥ 0.95, 10 all six to 0.99 (0, 7 and 10 among them).
    n, m, N, k = 10, 6, 200, 2
    weights = {"lambda_d": 1.0, "lambda_e": 0.0, "lambda_s": 0.2}
    rng = np.random.default_rng(seed)
    D_true = normalized(rng.standard_normal((n, m)))
    X = D_true @ sparse_codes(rng, m, N, k)
    D0 = normalized(rng.standard_normal((n, m)))
    E = np.zeros((m, n))
    result = eaelib.learn(X, np.zeros((m, N)), D0, E, **weights, max_outer=60, max_inner=50, rtol=1e-6, inner_rtol=1e-6)
    totals = [terms["total"] for terms in result.energy]
    assert all(b <= a for a, b in itertools.pairwise(totals)), totals  # monotone
    assert eaelib.constraint_violation(result.D, result.E) <= 1e-12
    np.testing.assert_array_equal(result.E, E)  # λ_e = 0: E is not learned
    cosines = match(result.D, D_true)
    assert np.sum(cosines >= 0.95) >= m - 1, cosines
    assert np.sum(match(D0, D_true) >= 0.95) == 0  # the start did not have them
    # The learned energy is at most that of the true dictionary with its best codes.
    Z_true_best = eaelib.solve_codes(X, D_true, E, **weights, rtol=0.0, max_iter=5000).x
    assert totals[-1] <= 1.001 * eaelib.energy_terms(X, Z_true_best, D_true, E, **weights)["total"]
    # ... and it is the directly computed energy of the returned parameters.
    assert eaelib.energy_terms(X, result.Z, result.D, result.E, **weights)["total"] == pytest.approx(totals[-1])


# ----------------------------------------------------------------- encoder learning


@examples
@given(seed=seeds, n=st.integers(1, 6), m=st.integers(1, 6), lambda_e=st.floats(0.1, 10.0))
def test_encoder_learning_recovers_a_feasible_encoder(seed, n, m, lambda_e):
    rng = np.random.default_rng(seed)
    N = 10 * n
    X = np.sqrt(N) * with_singular_values(rng, n, N, 0.5, 1.0)  # XXᵀ/N has eigenvalues in [0.25, 1]
    E_true = normalized(rng.standard_normal((m, n))) * rng.uniform(0.3, 0.9, n)  # column norms < 1
    Z = E_true @ X
    res = eaelib.solve_encoder(X, Z, np.zeros((m, n)), lambda_e=lambda_e, **TIGHT)
    assert res.converged
    assert rel(res.x, E_true) <= 1e-6
    assert res.objective[-1] <= 1e-10 * res.objective[0]  # Z = EX is met: the energy vanishes
