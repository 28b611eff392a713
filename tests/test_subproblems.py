"""Each subproblem of eaelib against an independent oracle, in float64.

Oracles: pyunlocbox's forward-backward solver with FISTA acceleration (the same problems, written
again with NumPy), scikit-learn's coordinate-descent Lasso (the Z-subproblem is a Lasso per
sample), the optimality (KKT) conditions, and the dense matrices of the quadratic parts.

Two eaelib settings are used:

* ``EXACT`` (``rtol < 0``: never stop before ``max_iter``) for the codes' agreement with the
  oracles: it reaches the minimizer to rounding (within 6e-9 of the oracles over 1200 random
  problems), far inside the 1e-6 asked for;
* ``TIGHT`` (``rtol = 0``: stop once the objective no longer changes beyond rounding), the
  tightest stopping test. An objective-based stop resolves the minimizer only to about √eps of
  the energy's scale: over 1000 random problems the codes were within 5e-7 of the oracle (too
  close to 1e-6 to test against it), the objective within 1e-13; ``test_tight_stop_*`` pins
  that down. The D- and E-problems here are well conditioned, and ``TIGHT`` is within 9e-8.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import normalized, with_singular_values
from pyunlocbox import acceleration, functions, solvers

import eaelib

# The pyunlocbox adapter of the benchmarks (the original notebook's solver), one for both.
from bench.original_approach import smooth_function, unit_columns_indicator
from eaelib._base import HAVE_SKLEARN

EXACT = {"rtol": -1.0, "max_iter": 300}
TIGHT = {"rtol": 0.0, "max_iter": 5000}
ORACLE_MAXIT = 3000  # pyunlocbox
AGREE = 1e-6  # relative agreement with the oracles, minimizer and objective

# scikit-learn is optional (eaelib._base): without it only the tests marked needs_sklearn skip.
needs_sklearn = pytest.mark.skipif(
    not HAVE_SKLEARN, reason="compares with scikit-learn's Lasso: scikit-learn is not installed"
)

examples = settings(max_examples=20, deadline=None)

seeds = st.integers(0, 2**32 - 2)
dims = st.integers(1, 6)
lambdas = st.floats(0.5, 2.0)


# ---------------------------------------------------------------------------- helpers


def rel(a, b, scale=0.0):
    """‖a − b‖ / max(‖b‖, scale) (absolute when both are zero)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.linalg.norm(b), scale)
    return np.linalg.norm(a - b) / (scale if scale > 0 else 1.0)


def code_scale(X, D, E, lambda_d, lambda_e):
    """Natural size of the codes: one gradient step from Z = 0, ‖B‖/L with B = (λ_d Dᵀ + λ_e E) X.

    A large λ_s can make the minimizer much smaller than that; errors are measured against at least
    this size, as a minimizer's accuracy is relative to the energy's scale, not to its own.
    """
    lipschitz = lambda_d * np.linalg.norm(D, 2) ** 2 + lambda_e
    return np.linalg.norm(lambda_d * D.T @ X + lambda_e * E @ X) / lipschitz


def unit_columns(x):
    """Projection of every column onto the unit ℓ2 ball (NumPy, independent of eaelib)."""
    return x / np.maximum(np.sqrt(np.sum(x * x, axis=0)), 1.0)


def random_problem(seed, n, m, N):
    """Data, and a feasible dictionary and encoder."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N))
    D = unit_columns(rng.standard_normal((n, m)))
    E = unit_columns(rng.standard_normal((m, n)))
    return X, D, E


def code_gradient(Z, X, D, E, lambda_d, lambda_e):
    """∇ of λ_d/2‖X − DZ‖² + λ_e/2‖Z − EX‖², computed directly."""
    return lambda_d * D.T @ (D @ Z - X) + lambda_e * (Z - E @ X)


def code_energy(Z, X, D, E, lambda_d, lambda_e, lambda_s):
    return (
        0.5 * lambda_d * np.sum((X - D @ Z) ** 2)
        + 0.5 * lambda_e * np.sum((Z - E @ X) ** 2)
        + lambda_s * np.abs(Z).sum()
    )


def pyunlocbox_solve(value, gradient, non_smooth, x0, lipschitz):
    """Forward-backward with FISTA acceleration and step 1/L; returns (solution, objective)."""
    solver = solvers.forward_backward(step=1.0 / lipschitz, accel=acceleration.fista())
    # rtol=0 never fires; xtol stops once an iteration no longer moves the iterate.
    problem = [smooth_function(value, gradient), non_smooth]
    ret = solvers.solve(problem, x0, solver, rtol=0.0, xtol=1e-16, maxit=ORACLE_MAXIT, verbosity="NONE")
    x = ret["sol"]
    return x, value(x) + non_smooth.eval(x)


def at_rounding_floor(res):
    """A tight (rtol=0) solve ends converged, or stalled with a gap at rounding level: no step improves it.

    Which of the two depends on the BLAS kernel's last bits (OPENBLAS_CORETYPE=Haswell stalled one at a gap
    of 1.1e-10 of the objective); the KKT conditions and the oracle check the solution either way.
    """
    return res.converged or (res.status == "stalled" and res.certificate[-1] <= 1e-9 * abs(res.objective[-1]))


def code_kkt_residual(Z, grad, lambda_s):
    """Largest violation of 0 ∈ ∇f(Z) + λ_s ∂‖Z‖₁, entry by entry."""
    on = Z != 0
    violation = np.where(on, np.abs(grad + lambda_s * np.sign(Z)), np.maximum(np.abs(grad) - lambda_s, 0.0))
    return float(violation.max(initial=0.0))


def ball_kkt(M, grad, tol):
    """Check the KKT conditions of min f(M) s.t. ‖M[:, i]‖ ≤ 1; return (n_active, n_inactive)."""
    active = inactive = 0
    for i in range(M.shape[1]):
        d, g = M[:, i], grad[:, i]
        if np.linalg.norm(d) < 1 - 1e-8:
            inactive += 1
            assert np.linalg.norm(g) <= tol, (i, np.linalg.norm(g), tol)
        else:
            active += 1
            assert np.linalg.norm(d) <= 1 + 1e-12
            mu = -float(g @ d)  # the multiplier: g = −μ d
            assert mu >= -tol, (i, mu, tol)
            assert np.linalg.norm(g + mu * d) <= tol, (i, np.linalg.norm(g + mu * d), tol)
    return active, inactive


# ------------------------------------------------------------------- Z vs pyunlocbox


@examples
@given(seed=seeds, n=dims, m=dims, N=st.integers(1, 5), lambda_d=lambdas, lambda_e=lambdas, frac=st.floats(0.02, 0.5))
def test_codes_match_pyunlocbox(seed, n, m, N, lambda_d, lambda_e, frac):
    X, D, E = random_problem(seed, n, m, N)
    lambda_s = frac * (lambda_d + lambda_e)
    res = eaelib.solve_codes(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, **EXACT)
    EX = E @ X
    value = lambda Z: 0.5 * lambda_d * np.sum((X - D @ Z) ** 2) + 0.5 * lambda_e * np.sum((Z - EX) ** 2)
    gradient = lambda Z: code_gradient(Z, X, D, E, lambda_d, lambda_e)
    lipschitz = lambda_d * np.linalg.norm(D, 2) ** 2 + lambda_e
    Z, objective = pyunlocbox_solve(value, gradient, functions.norm_l1(lambda_=lambda_s), np.zeros((m, N)), lipschitz)
    assert code_kkt_residual(Z, gradient(Z), lambda_s) <= 1e-10 * (lambda_s + lipschitz)  # the oracle converged
    assert rel(res.x, Z, code_scale(X, D, E, lambda_d, lambda_e)) <= AGREE
    assert abs(res.objective[-1] - objective) <= AGREE * objective
    # FistaResult's objective is the energy of its iterate.
    direct = code_energy(res.x, X, D, E, lambda_d, lambda_e, lambda_s)
    assert abs(res.objective[-1] - direct) <= 1e-12 * direct


# ------------------------------------------------------------- Z vs scikit-learn Lasso


def lasso_columns(design, targets, alpha):
    """One scikit-learn Lasso per column of ``targets``: min 1/(2 rows)‖t − design z‖² + α‖z‖₁."""
    from sklearn.linear_model import Lasso

    codes = np.empty((design.shape[1], targets.shape[1]))
    for j in range(targets.shape[1]):
        lasso = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000)
        codes[:, j] = lasso.fit(design, targets[:, j]).coef_
    return codes


@needs_sklearn
@examples
@given(
    seed=seeds,
    m=st.integers(1, 5),
    extra=st.integers(0, 4),
    N=st.integers(1, 4),
    lambda_d=lambdas,
    frac=st.floats(0.02, 0.8),
)
def test_codes_without_encoder_match_lasso(seed, m, extra, N, lambda_d, frac):
    # λ_e = 0: a well-conditioned D (n ≥ m, singular values in [0.4, 1], so feasible) keeps the Lasso
    # strongly convex and its minimizer well defined to 1e-6.
    n = m + extra
    rng = np.random.default_rng(seed)
    D = with_singular_values(rng, n, m, 0.4, 1.0)
    X = rng.standard_normal((n, N))
    E = unit_columns(rng.standard_normal((m, n)))  # has no effect with λ_e = 0
    lambda_s = frac * lambda_d * np.abs(D.T @ X).max()  # Z = 0 from λ_s ≥ λ_d max|DᵀX|
    res = eaelib.solve_codes(X, D, E, lambda_d=lambda_d, lambda_e=0.0, lambda_s=lambda_s, **EXACT)
    # λ_d/2‖x − Dz‖² + λ_s‖z‖₁ = λ_d n (1/(2n)‖x − Dz‖² + λ_s/(λ_d n)‖z‖₁)
    Z = lasso_columns(D, X, lambda_s / (lambda_d * n))
    assert rel(res.x, Z, code_scale(X, D, E, lambda_d, 0.0)) <= AGREE
    objective = code_energy(Z, X, D, E, lambda_d, 0.0, lambda_s)
    assert abs(res.objective[-1] - objective) <= AGREE * objective


@needs_sklearn
@examples
@given(seed=seeds, n=dims, m=dims, N=st.integers(1, 4), lambda_d=lambdas, lambda_e=lambdas, frac=st.floats(0.02, 0.5))
def test_codes_with_encoder_match_stacked_lasso(seed, n, m, N, lambda_d, lambda_e, frac):
    X, D, E = random_problem(seed, n, m, N)
    lambda_s = frac * (lambda_d + lambda_e)
    res = eaelib.solve_codes(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, **EXACT)
    # λ_d/2‖x − Dz‖² + λ_e/2‖z − Ex‖² = ½‖[√λ_d x; √λ_e Ex] − [√λ_d D; √λ_e I] z‖², n + m rows
    design = np.vstack([np.sqrt(lambda_d) * D, np.sqrt(lambda_e) * np.eye(m)])
    targets = np.vstack([np.sqrt(lambda_d) * X, np.sqrt(lambda_e) * (E @ X)])
    Z = lasso_columns(design, targets, lambda_s / (n + m))
    assert rel(res.x, Z, code_scale(X, D, E, lambda_d, lambda_e)) <= AGREE
    objective = code_energy(Z, X, D, E, lambda_d, lambda_e, lambda_s)
    assert abs(res.objective[-1] - objective) <= AGREE * objective


# ------------------------------------------------------------------------- Z: KKT


@examples
@given(
    seed=seeds,
    n=dims,
    m=st.integers(1, 8),
    N=st.integers(1, 5),
    lambda_d=lambdas,
    lambda_e=st.floats(0.25, 2.0),
    frac=st.floats(0.01, 1.0),
)
def test_codes_satisfy_kkt(seed, n, m, N, lambda_d, lambda_e, frac):
    """At the tightest stopping test (not a fixed iteration count): within 9e-8 over 500 draws."""
    X, D, E = random_problem(seed, n, m, N)
    lambda_s = frac * (lambda_d + lambda_e)
    res = eaelib.solve_codes(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, **TIGHT)
    assert at_rounding_floor(res)
    grad = code_gradient(res.x, X, D, E, lambda_d, lambda_e)
    scale = lambda_s + np.abs(lambda_d * D.T @ X + lambda_e * E @ X).max()  # λ_s + |∇f(0)|
    assert code_kkt_residual(res.x, grad, lambda_s) <= 1e-6 * scale


def test_codes_kkt_zero_and_nonzero_entries():
    """Both branches of the subdifferential occur, and each holds."""
    X, D, E = random_problem(7, 6, 10, 8)
    lambda_d, lambda_e, lambda_s = 1.0, 0.5, 0.4
    Z = eaelib.solve_codes(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, **EXACT).x
    grad = code_gradient(Z, X, D, E, lambda_d, lambda_e)
    on = Z != 0
    assert 0 < on.sum() < Z.size
    np.testing.assert_allclose(grad[on], -lambda_s * np.sign(Z[on]), rtol=0, atol=1e-10 * lambda_s)
    assert np.all(np.abs(grad[~on]) <= lambda_s * (1 + 1e-10))
    # ... strictly inside for most zeros: a generic problem has few borderline entries
    assert np.mean(np.abs(grad[~on]) < lambda_s * (1 - 1e-3)) > 0.5


@examples
@given(seed=seeds, n=dims, m=dims, N=st.integers(1, 5), lambda_d=lambdas, lambda_e=lambdas, frac=st.floats(0.02, 0.5))
def test_tight_stop_is_near_the_minimizer(seed, n, m, N, lambda_d, lambda_e, frac):
    """``rtol=0`` stops with the objective at rounding level and the codes within ~√eps."""
    X, D, E = random_problem(seed, n, m, N)
    lambda_s = frac * (lambda_d + lambda_e)
    weights = {"lambda_d": lambda_d, "lambda_e": lambda_e, "lambda_s": lambda_s}
    tight = eaelib.solve_codes(X, D, E, **weights, **TIGHT)
    exact = eaelib.solve_codes(X, D, E, **weights, **EXACT)
    assert tight.converged
    assert tight.n_iter < TIGHT["max_iter"]
    assert abs(tight.objective[-1] - exact.objective[-1]) <= 1e-12 * exact.objective[-1]
    assert rel(tight.x, exact.x, code_scale(X, D, E, lambda_d, lambda_e)) <= 1e-5


def test_negative_rtol_runs_to_max_iter_and_reaches_rounding_level():
    """``rtol < 0`` never stops early; the monotone iterates then solve the problem to rounding."""
    X, D, E = random_problem(2, 6, 2, 3)
    lambda_d, lambda_e, lambda_s = 1.7, 0.6, 0.6
    res = eaelib.solve_codes(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, rtol=-1.0, max_iter=300)
    assert res.n_iter == 300
    assert not res.converged
    grad = code_gradient(res.x, X, D, E, lambda_d, lambda_e)
    assert code_kkt_residual(res.x, grad, lambda_s) <= 1e-12 * (lambda_s + np.abs(grad).max())
    # Monotone, up to the rounding of summing per-column histories.
    objective = np.asarray(res.objective)
    assert np.all(np.diff(objective) <= 4 * np.spacing(objective[:-1]))


# ---------------------------------------------------------------------- D and E


def dictionary_data(seed, n, m, N):
    """X = D_true Z + noise with D_true's column norms alternating 0.2 and 1.5.

    With N = 20 m, ZZᵀ/N is close to I, so the constrained minimizer keeps the short atoms well
    inside the ball (largest norm 0.46 over 3000 draws) and puts the long ones on its boundary.
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((m, N))
    D_true = normalized(rng.standard_normal((n, m))) * np.where(np.arange(m) % 2 == 0, 0.2, 1.5)
    return D_true @ Z + 0.01 * rng.standard_normal((n, N)), Z


def encoder_data(seed, n, m, N):
    """Z = E_true X + noise with E_true's column norms alternating 0.2 and 1.5."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N))
    E_true = normalized(rng.standard_normal((m, n))) * np.where(np.arange(n) % 2 == 0, 0.2, 1.5)
    return X, E_true @ X + 0.01 * rng.standard_normal((m, N))


@examples
@given(seed=seeds, n=dims, m=st.integers(2, 6), lambda_d=lambdas)
def test_dictionary_kkt_and_pyunlocbox(seed, n, m, lambda_d):
    X, Z = dictionary_data(seed, n, m, 20 * m)
    D0 = np.zeros((n, m))
    value = lambda M: 0.5 * lambda_d * np.sum((X - M @ Z) ** 2)
    gradient = lambda M: lambda_d * (M @ Z - X) @ Z.T  # = M A − B with A = λ_d ZZᵀ, B = λ_d XZᵀ
    tol = 1e-6 * np.linalg.norm(lambda_d * X @ Z.T)
    res = eaelib.solve_dictionary(X, Z, D0, lambda_d=lambda_d, **TIGHT)
    assert at_rounding_floor(res)
    active, inactive = ball_kkt(res.x, gradient(res.x), tol)
    assert active >= 1
    assert inactive >= 1
    lipschitz = lambda_d * np.linalg.eigvalsh(Z @ Z.T).max()
    D_ref, objective = pyunlocbox_solve(value, gradient, unit_columns_indicator(), D0, lipschitz)
    ball_kkt(D_ref, gradient(D_ref), 1e-3 * tol)  # the oracle converged
    assert rel(res.x, D_ref) <= AGREE
    assert abs(res.objective[-1] - objective) <= AGREE * objective


@examples
@given(seed=seeds, n=st.integers(2, 6), m=dims, lambda_e=lambdas)
def test_encoder_kkt_and_pyunlocbox(seed, n, m, lambda_e):
    X, Z = encoder_data(seed, n, m, 20 * n)
    E0 = np.zeros((m, n))
    value = lambda M: 0.5 * lambda_e * np.sum((Z - M @ X) ** 2)
    gradient = lambda M: lambda_e * (M @ X - Z) @ X.T  # = M A − B with A = λ_e XXᵀ, B = λ_e ZXᵀ
    tol = 1e-6 * np.linalg.norm(lambda_e * Z @ X.T)
    res = eaelib.solve_encoder(X, Z, E0, lambda_e=lambda_e, **TIGHT)
    assert at_rounding_floor(res)
    active, inactive = ball_kkt(res.x, gradient(res.x), tol)
    assert active >= 1
    assert inactive >= 1
    lipschitz = lambda_e * np.linalg.eigvalsh(X @ X.T).max()
    E_ref, objective = pyunlocbox_solve(value, gradient, unit_columns_indicator(), E0, lipschitz)
    ball_kkt(E_ref, gradient(E_ref), 1e-3 * tol)  # the oracle converged
    assert rel(res.x, E_ref) <= AGREE
    assert abs(res.objective[-1] - objective) <= AGREE * objective


# ------------------------------------------------------- the quadratics themselves


def problems(seed, n, m, N, lambda_d, lambda_e):
    """(name, f, direct energy, point) for the three subproblems at random, not necessarily feasible, points."""
    rng = np.random.default_rng(seed)
    X, D, E, Z = (rng.standard_normal(shape) for shape in ((n, N), (n, m), (m, n), (m, N)))
    f_z, _ = eaelib.code_problem(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=1.0)
    f_d, _ = eaelib.dictionary_problem(X, Z, lambda_d=lambda_d)
    f_e, _ = eaelib.encoder_problem(X, Z, lambda_e=lambda_e)
    data = lambda D_, Z_: 0.5 * lambda_d * np.sum((X - D_ @ Z_) ** 2)
    enc = lambda E_, Z_: 0.5 * lambda_e * np.sum((Z_ - E_ @ X) ** 2)
    return [
        ("Z", f_z, lambda Z_: data(D, Z_) + enc(E, Z_), Z),
        ("D", f_d, lambda D_: data(D_, Z), D),
        ("E", f_e, lambda E_: enc(E_, Z), E),
    ]


big_lambdas = st.floats(0.01, 100.0)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=dims, m=dims, N=st.integers(1, 8), lambda_d=big_lambdas, lambda_e=big_lambdas)
def test_quadratic_value_is_the_energy(seed, n, m, N, lambda_d, lambda_e):
    rng = np.random.default_rng(seed + 1)
    for name, f, energy, x in problems(seed, n, m, N, lambda_d, lambda_e):
        direct = energy(x)
        assert np.isclose(f.value(x, f.apply(x)), direct, rtol=1e-10, atol=0), name
        # ∇f = A x − b is the gradient of the energy (central differences are exact on a quadratic)
        for _ in range(3):
            v, h = rng.standard_normal(x.shape), 1e-3
            fd = (energy(x + h * v) - energy(x - h * v)) / (2 * h)
            assert np.isclose(np.sum((f.apply(x) - f.b) * v), fd, rtol=1e-7, atol=1e-9 * direct), name


@settings(max_examples=30, deadline=None)
@given(
    seed=seeds,
    n=st.integers(1, 4),
    m=st.integers(1, 4),
    N=st.integers(1, 4),
    lambda_d=big_lambdas,
    lambda_e=big_lambdas,
)
def test_lipschitz_is_the_largest_eigenvalue(seed, n, m, N, lambda_d, lambda_e):
    for name, f, _, x in problems(seed, n, m, N, lambda_d, lambda_e):
        basis = np.eye(x.size).reshape(x.size, *x.shape)
        A = np.stack([f.apply(e).ravel() for e in basis], axis=1)  # dense matrix of x ↦ A x
        np.testing.assert_allclose(A, A.T, rtol=0, atol=1e-12 * np.abs(A).max(), err_msg=name)
        eigenvalues = np.linalg.eigvalsh(A)
        assert eigenvalues.min() >= -1e-12 * eigenvalues.max(), name  # positive semi-definite
        assert f.lipschitz == pytest.approx(eigenvalues.max(), rel=1e-10), name
