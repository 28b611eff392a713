"""The compiled homotopy (eaelib.homotopy) against independent oracles, on real patches and made-up conditioning.

Oracles: the optimality (KKT) conditions, scikit-learn's LARS–Lasso path on the same Gram matrix
(``lars_path_gram``), its coordinate-descent ``Lasso`` on the patches themselves, eaelib's FISTA and
the duality gap as :class:`eaelib.fista.L1Penalty` computes it.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import with_singular_values

import eaelib
from eaelib import homotopy
from eaelib.fista import certificate
from eaelib.subproblems import choose_code_solver, code_problem, code_step

# numba is a dependency of eaelib; tests/test_without_numba.py covers a copy that lacks it.
pytestmark = pytest.mark.skipif(not homotopy.AVAILABLE, reason="the homotopy needs numba")

lasso_gram = homotopy.lasso_gram


def kkt(G, B, Z, lam):
    """Largest entry of the least-norm subgradient of ½zᵀGz − bᵀz + λ‖z‖₁, over all columns."""
    grad = G @ Z - B
    off = np.maximum(np.abs(grad) - lam, 0.0)
    on = np.abs(grad + lam * np.sign(Z))
    return float(np.max(np.where(Z != 0, on, off)))


@pytest.fixture(scope="module")
def barbara():
    """Barbara's 12×12 patches (n = 144, N = 2726) and 200 of them as atoms: coherent, G singular."""
    X = eaelib.extract_patches(eaelib.load_image("barbara"), 12).T.astype(np.float64)
    _, D, E = eaelib.initialize(X, 200, 0, method="data")
    return X, D, E


def test_exact_codes_of_real_patches_meet_kkt_and_the_lars_path(barbara):
    X, D, E = barbara
    X = X[:, ::7]
    f, _g = code_problem(X, D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0)
    res = lasso_gram(f.gram, f.b, 1.0, const=f.c)
    # cond(G) is infinite (m = 200 > n = 144) and atoms are samples: coherent. Still exact to rounding.
    assert kkt(f.gram, f.b, res.Z, 1.0) <= 1e-9
    assert np.all(res.steps > 0)
    assert np.median(np.sum(res.Z != 0, axis=0)) < 40  # sparse codes: the regime the homotopy is for
    lars_path_gram = pytest.importorskip(
        "sklearn.linear_model", reason="compares with scikit-learn's lars_path_gram: scikit-learn is not installed"
    ).lars_path_gram

    for j in range(0, X.shape[1], 40):
        alphas, _, coefs = lars_path_gram(f.b[:, j], f.gram, n_samples=1, alpha_min=1.0, method="lasso")
        assert alphas[-1] == pytest.approx(1.0)
        np.testing.assert_allclose(res.Z[:, j], coefs[:, -1], atol=1e-7 * max(1.0, np.abs(coefs[:, -1]).max()))


def test_the_kernel_certificate_is_the_duality_gap_of_the_library(barbara):
    X, D, E = barbara
    f, g = code_problem(X[:, :300], D, E, lambda_d=10.0, lambda_e=0.5, lambda_s=1.0)
    res = lasso_gram(f.gram, f.b, 1.0, const=f.c, strong_convexity=f.strong_convexity)
    assert np.sum(res.gap) == pytest.approx(certificate(f, g, res.Z), rel=1e-6, abs=1e-9)
    # Far from the minimizer (a path stopped after 3 steps) the two still agree.
    shifted = lasso_gram(f.gram, f.b, 1.0, const=f.c, strong_convexity=f.strong_convexity, max_steps=3)
    assert np.sum(shifted.gap) == pytest.approx(certificate(f, g, shifted.Z), rel=1e-9)
    assert np.sum(shifted.gap) > 1e3 * np.sum(res.gap)
    assert np.all(shifted.steps[np.abs(shifted.steps) >= 3] < 0)  # a capped path says so


def test_equals_sklearn_lasso_on_the_patches(barbara):
    Lasso = pytest.importorskip(
        "sklearn.linear_model", reason="compares with scikit-learn's Lasso: scikit-learn is not installed"
    ).Lasso

    X, D, E = barbara
    x = X[:, 5]
    f, _ = code_problem(x[:, None], D, E, lambda_d=1.0, lambda_e=0.0, lambda_s=0.1)
    z = lasso_gram(f.gram, f.b, 0.1).Z[:, 0]
    # ½‖x − Dz‖² + 0.1‖z‖₁ = n·((1/2n)‖x − Dz‖² + (0.1/n)‖z‖₁)
    oracle = Lasso(alpha=0.1 / len(x), fit_intercept=False, tol=1e-12, max_iter=200_000).fit(D, x).coef_

    def objective(v):
        return 0.5 * np.sum((x - D @ v) ** 2) + 0.1 * np.abs(v).sum()

    # G is singular: the minimizer need not be unique, its value is.
    assert objective(z) <= objective(oracle) + 1e-9 * objective(oracle)


def test_equals_fista_where_the_minimizer_is_unique(barbara):
    X, D, E = barbara
    f, g = code_problem(X[:, :200], D, E, lambda_d=10.0, lambda_e=3.0, lambda_s=1.0)
    z = lasso_gram(f.gram, f.b, 1.0).Z
    oracle = eaelib.fista(f, g, np.zeros_like(z), rtol=0.0, max_iter=20_000, momentum="strong").x
    np.testing.assert_allclose(z, oracle, atol=1e-6 * np.abs(oracle).max())


def test_duplicate_zero_and_coherent_atoms():
    rng = np.random.default_rng(3)
    n = 10
    D = rng.standard_normal((n, 12))
    D[:, 3] = D[:, 2]  # a duplicate
    D[:, 5] = 0.0  # a zero atom
    D[:, 7] = D[:, 6] + 1e-7 * rng.standard_normal(n)  # coherent to 1e-7
    D /= np.maximum(np.linalg.norm(D, axis=0), 1e-300)
    X = rng.standard_normal((n, 50))
    f, g = code_problem(X, D, np.zeros((12, n)), lambda_d=1.0, lambda_e=0.0, lambda_s=0.5)
    res = lasso_gram(f.gram, f.b, 0.5, const=f.c)
    assert np.all(res.Z[5] == 0)
    assert not np.any((res.Z[2] != 0) & (res.Z[3] != 0))  # never both twins
    assert kkt(f.gram, f.b, res.Z, 0.5) <= 1e-9
    # With a small λ the active set spans the 10 dimensions before the end of the path: the atoms that would
    # join then are dependent and refused, the path is no longer exact there, and the kernel's gap says so.
    f, g = code_problem(X, D, np.zeros((12, n)), lambda_d=1.0, lambda_e=0.0, lambda_s=0.05)
    res = lasso_gram(f.gram, f.b, 0.05, const=f.c)
    violation = np.max(np.abs(np.clip(np.abs(f.gram @ res.Z - f.b) - 0.05, 0, None)), axis=0)
    assert np.all(res.gap[violation > 1e-6] > 1e-9)
    # code_step sees that gap and lets FISTA finish those columns from the homotopy's point.
    step = code_step(f, g, None, solver="lars", rtol=1e-6, max_iter=50_000, momentum="restart")
    assert step.converged
    assert step.certificate[-1] <= min(1e-6 * step.objective[-1], res.gap.sum() * (1 + 1e-12))  # sums round


def test_lambda_above_every_correlation_gives_zero_and_tiny_lambda_least_squares():
    rng = np.random.default_rng(1)
    D = rng.standard_normal((20, 8))
    X = rng.standard_normal((20, 30))
    G, B = D.T @ D + 0.1 * np.eye(8), D.T @ X
    assert np.all(lasso_gram(G, B, np.abs(B).max() * 1.0001).Z == 0)
    dense = lasso_gram(G, B, 1e-10).Z
    np.testing.assert_allclose(dense, np.linalg.solve(G, B), atol=1e-8)
    assert np.all(dense != 0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    log_condition=st.floats(0.0, 8.0),
    m=st.integers(1, 30),
    lam_fraction=st.floats(0.01, 0.99),
)
def test_kkt_whatever_the_conditioning(seed, log_condition, m, lam_fraction):
    rng = np.random.default_rng(seed)
    D = with_singular_values(rng, m + 5, m, 10 ** (-log_condition / 2), 1.0)  # cond(G) up to 1e8
    G = D.T @ D
    B = D.T @ rng.standard_normal((m + 5, 6))
    lam = lam_fraction * np.abs(B).max()
    res = lasso_gram(G, B, lam)
    scale = np.abs(B).max()
    assert kkt(G, B, res.Z, lam) <= 1e-8 * scale


def test_threads_do_not_change_the_result(barbara):
    X, D, E = barbara
    f, _ = code_problem(X[:, :500], D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0)
    one = lasso_gram(f.gram, f.b, 1.0, threads=1)
    two = lasso_gram(f.gram, f.b, 1.0, threads=2)
    assert np.array_equal(one.Z, two.Z) and np.array_equal(one.steps, two.steps)


def test_code_step_is_monotone_certified_and_reports_its_solver(barbara):
    X, D, E = barbara
    f, g = code_problem(X[:, :400], D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0)
    res = code_step(f, g, np.zeros((200, 400)), solver="auto", rtol=1e-6)
    assert res.solver == "lars" and res.converged
    assert res.objective[-1] <= res.objective[0]
    assert res.certificate[-1] <= 1e-6 * res.objective[-1]
    # From the exact codes themselves: nothing to gain, and every column keeps its start or ties it.
    again = code_step(f, g, res.x, solver="lars", rtol=1e-6)
    assert again.objective[-1] <= again.objective[0]
    # float32: certified in float32 by FISTA from the homotopy's point.
    f32, g32 = code_problem(
        *(a.astype(np.float32) for a in (X[:, :400], D, E)), lambda_d=10.0, lambda_e=0.0, lambda_s=1.0
    )
    res32 = code_step(f32, g32, None, solver="lars", rtol=1e-4, criterion="kkt", max_iter=500)
    assert res32.x.dtype == np.float32 and res32.converged
    assert kkt(f.gram, f.b, res32.x.astype(np.float64), 1.0) <= 1e-3


def test_auto_takes_the_homotopy_only_where_it_pays(barbara):
    X, D, E = barbara
    weak, g = code_problem(X[:, :10], D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0)
    strong, _ = code_problem(X[:, :10], D, E, lambda_d=1.0, lambda_e=10.0, lambda_s=1.0)
    assert choose_code_solver(weak, g) == "lars"
    assert choose_code_solver(strong, g) == "fista"
    norm_sq = strong.lipschitz - 10.0  # ‖D‖²: L = λ_d‖D‖² + λ_e, and κ = 1 + λ_d‖D‖²/λ_e
    middle, _ = code_problem(X[:, :10], D, E, lambda_d=1.0, lambda_e=norm_sq / 99.0, lambda_s=1.0)
    assert 60 < middle.lipschitz / middle.strong_convexity < 200
    # An accurate solve (transform's) takes the homotopy sooner: FISTA needs more iterations there.
    assert choose_code_solver(middle, g, rtol=1e-4) == "fista"
    assert choose_code_solver(middle, g, rtol=1e-6) == "lars"
    assert choose_code_solver(weak, eaelib.L1Penalty(0.0)) == "fista"
    with pytest.raises(ValueError, match="code_solver must be one of"):
        choose_code_solver(weak, g, "homotopy")


@pytest.mark.slow
def test_a_capped_path_is_finished_by_fista(barbara):
    X, D, E = barbara
    f, g = code_problem(X[:, :100], D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0)
    original = homotopy.lasso_gram
    try:
        homotopy.lasso_gram = lambda *a, **k: original(*a, **{**k, "max_steps": 2})
        res = code_step(f, g, None, solver="lars", rtol=1e-6, max_iter=20_000)
    finally:
        homotopy.lasso_gram = original
    assert res.converged and res.solver == "lars" and res.n_iter > 1
    assert res.certificate[-1] <= 1e-6 * res.objective[-1] * 100


def test_lasso_gram_refuses_bad_input():
    with pytest.raises(ValueError, match="gram must be"):
        lasso_gram(np.eye(3), np.ones((4, 2)), 0.1)
    with pytest.raises(ValueError, match="lam must be"):
        lasso_gram(np.eye(3), np.ones((3, 2)), -1.0)


@pytest.mark.parametrize("criterion", ["gap", "kkt"])  # kkt: FISTA certifies after the homotopy
def test_code_step_histories_are_monotone_to_the_last_bit(barbara, criterion):
    X, D, E = barbara
    f, g = code_problem(X[:, :300], D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0)
    exact = code_step(f, g, None, solver="lars", rtol=1e-9).x
    rng = np.random.default_rng(0)
    for x0 in (exact, exact + 1e-3 * rng.standard_normal(exact.shape), np.zeros_like(exact)):
        res = code_step(f, g, x0, solver="lars", rtol=1e-9, criterion=criterion, momentum="restart")
        assert res.objective[0] == f.value(x0, f.apply(x0)) + g.value(x0)
        assert all(b <= a for a, b in itertools.pairwise(res.objective)), res.objective
