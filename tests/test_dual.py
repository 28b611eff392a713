"""eaelib.dual: the D- and E-subproblems solved exactly, checked on the conditioning of real patches.

The oracle is independent of eaelib's Newton iteration: SciPy's L-BFGS-B maximizes the same Lagrange
dual (tests/oracles.py), and the primal point it gives is compared with eaelib's; on
problems whose constraints are inactive, the closed form ``W = B G⁻¹`` (numpy.linalg.solve) is the
oracle. Every solution is also checked against the optimality (KKT) conditions directly. The
problems come from patches of Barbara, where ``G`` has condition numbers of 1e5 to 1e7 (asserted),
as in learning, not only from tiny well-conditioned random matrices.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import ball_least_squares as dual_oracle

import eaelib
from eaelib._base import ConvergenceWarning
from eaelib.dual import solve_ball_least_squares

examples = settings(max_examples=100, deadline=None)


def objective(W, G, B, c, weight):
    return 0.5 * weight * (c + np.sum((W @ G) * W) - 2 * np.sum(W * B))


def assert_kkt(W, G, B, weight, tol):
    """``0 = WG − B + W diag(μ)`` with ``μ ≥ 0``, ``μ_k = 0`` off the sphere, and every column in the ball."""
    grad = weight * (W @ G - B)
    norms = np.linalg.norm(W, axis=0)
    assert norms.max() <= 1 + 1e-12
    on = norms >= 1 - 1e-6  # a column with a multiplier > 0 is on the sphere, to the solver's accuracy
    mu = np.where(on, -np.sum(grad * W, axis=0), 0.0)  # the multiplier that best explains grad
    assert mu.min() >= -tol
    residual = np.linalg.norm(grad + mu * W, axis=0)
    assert residual.max() <= tol, (residual.max(), tol)
    return int(on.sum())


@pytest.fixture(scope="module")
def patches():
    """6 × 6 patches of Barbara at stride 3, as columns (n = 36, N ≈ 9000)."""
    return eaelib.extract_patches(eaelib.load_image("barbara"), size=6, stride=3).T.copy()


@pytest.fixture(scope="module")
def dictionary_problem(patches):
    """The D-subproblem of a fit's first outer iteration on real patches: ``G = ZZᵀ``, ``B = XZᵀ``."""
    X = patches
    _, D0, E0 = eaelib.initialize(X, 48, random_state=0, method="data")
    Z = eaelib.solve_codes(X, D0, E0, lambda_d=10.0, lambda_e=10.0, lambda_s=1.0, rtol=1e-8, max_iter=500).x
    G, B, c = eaelib.dictionary_statistics(X, Z)
    return G, B, c, D0


@pytest.mark.slow
def test_real_patches_are_as_ill_conditioned_as_learning_sees_them(patches, dictionary_problem):
    G = dictionary_problem[0]
    assert np.linalg.cond(patches @ patches.T) >= 1e5
    assert np.linalg.cond(G) >= 1e5


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
def test_dictionary_step_on_real_patches_matches_the_dual_oracle(dictionary_problem):
    G, B, c, D0 = dictionary_problem
    res = solve_ball_least_squares(G, B, c, D0, weight=10.0)
    assert res.converged and res.status == "converged"
    W_ref = dual_oracle(G, B, 10.0)
    value, reference = objective(res.x, G, B, c, 10.0), objective(W_ref, G, B, c, 10.0)
    # eaelib's point is at least as good as the oracle's, and its gap bounds the distance to the optimum.
    assert value <= reference * (1 + 1e-10)
    assert res.certificate[-1] <= 1e-9 * value
    active = assert_kkt(res.x, G, B, 10.0, tol=1e-6 * np.abs(10.0 * B).max())
    assert active >= 1  # the constraints matter here
    np.testing.assert_allclose(res.x, W_ref, atol=1e-5)


def test_encoder_step_with_inactive_constraints_is_the_closed_form(patches):
    # Codes a feasible encoder explains exactly, from real patches: E = Z Xᵀ (XXᵀ)⁻¹, cond(XXᵀ) ≥ 1e5.
    X = patches
    rng = np.random.default_rng(0)
    E_true = rng.standard_normal((20, X.shape[0]))
    E_true *= 0.5 / np.linalg.norm(E_true, axis=0)
    Z = E_true @ X + 1e-3 * rng.standard_normal((20, X.shape[1]))
    G, B, c = eaelib.encoder_statistics(X, Z)
    res = solve_ball_least_squares(G, B, c, np.zeros_like(E_true), weight=10.0)
    closed_form = np.linalg.solve(G, B.T).T
    assert np.linalg.norm(closed_form, axis=0).max() < 1  # the unconstrained minimizer is feasible
    assert res.converged and res.n_iter == 1  # one factorization: the multipliers stay 0
    np.testing.assert_allclose(res.x, closed_form, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(res.multipliers, 0.0)


def test_encoder_step_with_active_constraints(patches):
    X = patches
    rng = np.random.default_rng(1)
    E_true = rng.standard_normal((20, X.shape[0]))
    E_true *= rng.choice([0.3, 3.0], X.shape[0]) / np.linalg.norm(E_true, axis=0)  # some norms beyond 1
    Z = E_true @ X
    G, B, c = eaelib.encoder_statistics(X, Z)
    res = solve_ball_least_squares(G, B, c, np.zeros_like(E_true), weight=2.0)
    assert res.converged
    W_ref = dual_oracle(G, B, 2.0)
    assert objective(res.x, G, B, c, 2.0) <= objective(W_ref, G, B, c, 2.0) * (1 + 1e-10)
    active = assert_kkt(res.x, G, B, 2.0, tol=1e-6 * np.abs(2.0 * B).max())
    assert 0 < active < X.shape[0]


@examples
@given(
    seed=st.integers(0, 2**32 - 1),
    p=st.integers(1, 8),
    q=st.integers(1, 8),
    N=st.integers(1, 30),
    scale=st.floats(0.1, 10.0),
    weight=st.floats(0.1, 10.0),
)
def test_the_gap_bounds_the_distance_to_the_optimum(seed, p, q, N, scale, weight):
    """Random problems, singular ones included (N < q): the certificate is an upper bound, and small."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((q, N)) * np.exp(rng.uniform(-2, 2, (q, 1)))
    Y = scale * rng.standard_normal((p, q)) @ A + 0.1 * rng.standard_normal((p, N))
    G, B, c = A @ A.T, Y @ A.T, float(np.sum(Y * Y))
    W0 = np.zeros((p, q))
    res = solve_ball_least_squares(G, B, c, W0, weight=weight)
    assert res.converged
    value = objective(res.x, G, B, c, weight)
    W_ref = dual_oracle(G, B, weight)
    best = min(value, objective(W_ref, G, B, c, weight))
    # P(x) − P* ≤ gap, with P* no lower than the best point either solver found.
    assert value - best <= res.certificate[-1] + 1e-10 * abs(value) + 1e-12
    # ... and small: rtol = 1e-9 of P, or the floor of float64 and, for a singular G, of the ridge
    # (1e-10 of its largest eigenvalue, per column) that makes the dual's optimum attained.
    floor = weight * (1e-10 * q * np.linalg.eigvalsh(G).max() + 1e-12 * (c + np.trace(G)))
    assert res.certificate[-1] <= 1e-9 * abs(value) + floor
    assert np.linalg.norm(res.x, axis=0).max() <= 1 + 1e-12
    # Entry 0 is the warm start; the kept point is never worse than it.
    assert res.objective[0] == pytest.approx(objective(W0, G, B, c, weight), rel=1e-9, abs=1e-9)
    assert value <= res.objective[0] + 1e-9 * abs(res.objective[0])


def test_unused_columns_keep_their_start():
    """An atom no code uses (a zero row of Z): P does not depend on it, and it is left alone."""
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((5, 40))
    Z[2] = 0.0
    X = rng.standard_normal((4, 5)) @ Z
    G, B, c = eaelib.dictionary_statistics(X, Z)
    D0 = eaelib.project_columns(rng.standard_normal((4, 5)))
    res = solve_ball_least_squares(G, B, c, D0, weight=1.0)
    np.testing.assert_array_equal(res.x[:, 2], D0[:, 2])
    assert res.multipliers[2] == 0.0


def test_zero_statistics():
    res = solve_ball_least_squares(np.zeros((3, 3)), np.zeros((2, 3)), 0.0, np.zeros((2, 3)), weight=1.0)
    assert res.converged and res.n_iter == 0
    np.testing.assert_array_equal(res.x, 0.0)


def test_warm_multipliers_save_newton_steps(dictionary_problem):
    G, B, c, D0 = dictionary_problem
    cold = solve_ball_least_squares(G, B, c, D0, weight=10.0)
    warm = solve_ball_least_squares(G, B, c, cold.x, weight=10.0, multipliers=cold.multipliers)
    assert warm.n_iter < cold.n_iter
    assert warm.n_iter <= 2


def test_float32_statistics_give_a_feasible_float32_result(dictionary_problem):
    G, B, c, D0 = dictionary_problem
    res = solve_ball_least_squares(G.astype(np.float32), B.astype(np.float32), c, D0.astype(np.float32), weight=10.0)
    assert res.x.dtype == np.float32
    assert np.linalg.norm(res.x, axis=0).max() <= 1 + 4 * np.finfo(np.float32).eps
    reference = solve_ball_least_squares(G, B, c, D0, weight=10.0).x
    value, best = objective(res.x.astype(float), G, B, c, 10.0), objective(reference, G, B, c, 10.0)
    assert value <= best * (1 + 1e-5)  # float32 statistics and result: the objective to about 1e-6


def test_array_api_strict_matches_numpy(dictionary_problem):
    xps = pytest.importorskip("array_api_strict")
    G, B, c, D0 = dictionary_problem
    strict = solve_ball_least_squares(xps.asarray(G), xps.asarray(B), c, xps.asarray(D0), weight=10.0)
    reference = solve_ball_least_squares(G, B, c, D0, weight=10.0)
    assert isinstance(strict.x, type(xps.asarray(D0)))
    np.testing.assert_allclose(np.from_dlpack(strict.x), reference.x, atol=1e-8)


def test_the_fista_solver_is_kept_for_comparison_and_certified_too(dictionary_problem):
    G, B, c, D0 = dictionary_problem
    dual = eaelib.solve_ball(G, B, c, D0, weight=10.0)
    fista = eaelib.solve_ball(G, B, c, D0, weight=10.0, solver="fista", max_iter=100)
    # At cond(G) ≥ 1e5 a hundred FISTA iterations are far from the minimum, and its gap says so.
    gap_fista = fista.certificate[-1]
    assert not fista.converged and fista.status == "max_iter"
    true_gap = objective(fista.x, G, B, c, 10.0) - objective(dual.x, G, B, c, 10.0)
    assert 0 < true_gap <= gap_fista * (1 + 1e-9)
    with pytest.raises(ValueError, match="solver must be one of"):
        eaelib.solve_ball(G, B, c, D0, weight=10.0, solver="cg")


def test_no_exact_step_of_a_fit_runs_to_max_iter():
    """Where the gap's rounding exceeds its floor, Newton stops after a few idle steps ("stalled").

    On 1000 patches of Barbara with 100 atoms, a D-step's gap stops at about 2e-9 of its objective, above
    learn's tolerance of 1e-10: every further Newton step changes nothing beyond rounding. Without the
    idle rule such a solve ran its 200 iterations, each after a search of some 30 evaluations.
    """
    X = eaelib.extract_patches(eaelib.load_image("barbara"), 12)
    X = X[np.sort(np.random.default_rng(0).choice(X.shape[0], 1000, replace=False))]
    model = eaelib.EnergyAutoEncoder(n_atoms=100, lambda_e=5.0, random_state=0, max_outer=15)
    with pytest.warns(ConvergenceWarning):  # stopped at max_outer on purpose: a short fit
        model.fit(X)
    exact = [trace for trace in model.inner_history_ if trace.subproblem in ("D", "E")]
    assert exact and all(trace.status in ("converged", "stalled") for trace in exact)
    for trace in exact:
        assert trace.certificate[-1] <= 1e-8 * abs(trace.objective[-1])  # stalled at rounding, not far
        assert len(trace.objective) <= 40
