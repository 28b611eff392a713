"""Independent solvers of the three subproblems, for the tests: NumPy and SciPy only, no eaelib code.

* :func:`codes` minimizes the Z-subproblem by plain FISTA with adaptive restart, for a fixed, large
  number of iterations (no stopping rule to trust);
* :func:`ball_least_squares` maximizes the Lagrange dual of the D- or E-subproblem with SciPy's
  L-BFGS-B (eaelib uses its own Newton iteration);
* :func:`energy` evaluates the energy directly;
* :func:`with_singular_values` and :func:`normalized` build test matrices of known conditioning and norms.
"""

import numpy as np
from scipy.optimize import minimize


def energy(X, Z, D, E, lambda_d, lambda_e, lambda_s):
    return (
        0.5 * lambda_d * np.sum((X - D @ Z) ** 2)
        + 0.5 * lambda_e * np.sum((Z - E @ X) ** 2)
        + lambda_s * np.abs(Z).sum()
    )


def codes(X, D, E, lambda_d, lambda_e, lambda_s, Z0=None, n_iter=3000):
    """The minimizer of the Z-subproblem by FISTA (restarted when the objective rises), in float64."""
    X, D, E = (np.asarray(a, dtype=np.float64) for a in (X, D, E))
    G = lambda_d * D.T @ D + lambda_e * np.eye(D.shape[1])
    B = lambda_d * D.T @ X + lambda_e * E @ X
    step = 1.0 / np.linalg.eigvalsh(G).max()

    def F(Z):
        return 0.5 * np.sum(Z * (G @ Z)) - np.sum(B * Z) + lambda_s * np.abs(Z).sum()

    x = np.zeros((D.shape[1], X.shape[1])) if Z0 is None else np.array(Z0, dtype=np.float64)
    y, t, f_x = x, 1.0, F(x)
    for _ in range(n_iter):
        v = y - step * (G @ y - B)
        z = np.sign(v) * np.maximum(np.abs(v) - lambda_s * step, 0.0)
        f_z = F(z)
        if f_z > f_x:  # restart from x
            y, t = x, 1.0
            continue
        t_next = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        y = z + (t - 1) / t_next * (z - x)
        x, t, f_x = z, t_next, f_z
    return x


def ball_least_squares(G, B, weight):
    """``argmin weight/2 (tr(WGWᵀ) − 2tr(WBᵀ))`` over unit-ball columns, from the dual by L-BFGS-B."""
    G, B = np.asarray(G, dtype=np.float64), np.asarray(B, dtype=np.float64)
    q = G.shape[0]
    # A column that P does not depend on (G_kk = 0) is left at 0.
    used = np.diag(G) > 0
    Gu, Bu = G[np.ix_(used, used)], B[:, used]

    # L-BFGS-B may try μ = 0, where G alone can be singular (fewer samples than columns): a ridge of
    # 1e-12 of its trace keeps the solves defined, and moves the optimum by about as little.
    ridge = 1e-12 * max(np.trace(Gu), 1e-300) * np.eye(Gu.shape[0])

    def negative_dual(mu):
        W = np.linalg.solve(Gu + ridge + np.diag(mu), Bu.T).T
        value = 0.5 * np.sum(W * Bu) + 0.5 * np.sum(mu)
        gradient = 0.5 * (1.0 - np.sum(W * W, axis=0))  # −∂φ/∂μ_k = ½(1 − ‖w_k‖²)
        return weight * value, weight * gradient

    res = minimize(
        negative_dual,
        np.ones(int(used.sum())),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0, None)] * int(used.sum()),
        options={"maxiter": 20_000, "ftol": 1e-15, "gtol": 1e-12},
    )
    Wu = np.linalg.solve(Gu + ridge + np.diag(res.x), Bu.T).T
    W = np.zeros((B.shape[0], q))
    W[:, used] = Wu / np.maximum(np.linalg.norm(Wu, axis=0), 1.0)
    return W


def with_singular_values(rng, rows, cols, low, high):
    """Random ``rows × cols`` matrix whose singular values lie in ``[low, high]``."""
    u, _ = np.linalg.qr(rng.standard_normal((rows, rows)))
    v, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
    s = np.zeros((rows, cols))
    k = min(rows, cols)
    s[np.arange(k), np.arange(k)] = rng.uniform(low, high, k)
    return u @ s @ v.T


def normalized(x):
    """Every column scaled to unit ℓ2 norm."""
    return x / np.linalg.norm(x, axis=0)
