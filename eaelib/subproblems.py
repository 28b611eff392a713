"""The three convex subproblems of the energy auto-encoder, in the book's orientation.

``X`` is ``n × N`` (samples as columns), ``D`` is ``n × m``, ``E`` is ``m × n``
and ``Z`` is ``m × N``. Each ``*_problem`` function returns the pair
``(f, g)`` that :func:`eaelib.fista.fista` minimizes; the Gram products are
formed once per subproblem so that an iteration costs one ``m × m`` by
``m × N`` product for ``Z`` and only ``n × m``-sized products for ``D`` and ``E``.
"""

from __future__ import annotations

from ._array import get_namespace, inner, largest_eigenvalue, sq_norm
from .fista import L1Penalty, Quadratic, UnitColumns, fista


def code_problem(X, D, E, *, lambda_d, lambda_e, lambda_s, lambda_g=0.0, laplacian=None, x_col_sq=None):
    """Z-subproblem: ``λ_d/2‖X − DZ‖² + λ_e/2‖Z − EX‖² + λ_g/2 tr(Z L Zᵀ) + λ_s‖Z‖₁``.

    The smooth part is ``½⟨Z, GZ + λ_g Z L⟩ − ⟨B, Z⟩ + c`` with
    ``G = λ_d DᵀD + λ_e I`` and ``B = (λ_d Dᵀ + λ_e E) X``. Without the graph
    term every column (sample) is an independent problem, and FISTA treats it so.

    Parameters
    ----------
    X, D, E : arrays
        Data (n × N), dictionary (n × m) and encoder (m × n).
    lambda_d, lambda_e, lambda_s, lambda_g : float
        Weights of the energy terms.
    laplacian : GraphLaplacian, optional
        Needed when ``lambda_g > 0``.
    x_col_sq : array, optional
        Squared norm of every column of ``X``, shape (N,), if already known.
    """
    xp = get_namespace(X, D, E)
    m = D.shape[1]
    gram = lambda_d * (D.mT @ D) + lambda_e * xp.eye(m, dtype=D.dtype, device=D.device)
    ex = E @ X
    b = lambda_d * (D.mT @ X) + lambda_e * ex
    x_col_sq = xp.sum(X * X, axis=0) if x_col_sq is None else x_col_sq
    c = 0.5 * lambda_d * x_col_sq + 0.5 * lambda_e * xp.sum(ex * ex, axis=0)
    # DᵀD and DDᵀ share their non-zero spectrum: take the smaller one.
    small_gram = D.mT @ D if m <= D.shape[0] else D @ D.mT
    lipschitz = lambda_d * largest_eigenvalue(xp, small_gram) + lambda_e
    if lambda_g > 0:
        if laplacian is None:
            raise ValueError("lambda_g > 0 needs a laplacian")

        def apply(Z):
            return gram @ Z + lambda_g * laplacian.right_multiply(Z)

        lipschitz += lambda_g * laplacian.norm
        return Quadratic(apply, b, xp.sum(c), lipschitz), L1Penalty(lambda_s)

    def apply(Z):
        return gram @ Z

    return Quadratic(apply, b, c, lipschitz, separable=True), L1Penalty(lambda_s)


def dictionary_problem(X, Z, *, lambda_d, xzt=None, x_sq=None):
    """D-subproblem: ``λ_d/2‖X − DZ‖²`` s.t. every column of ``D`` in the unit ball.

    ``xzt`` is ``XZᵀ`` (n × m) if already known; it serves the E-subproblem too.
    """
    xp = get_namespace(X, Z)
    zzt = Z @ Z.mT
    xzt = X @ Z.mT if xzt is None else xzt
    x_sq = sq_norm(xp, X) if x_sq is None else x_sq
    a = lambda_d * zzt

    def apply(D):
        return D @ a

    return Quadratic(apply, lambda_d * xzt, 0.5 * lambda_d * x_sq, largest_eigenvalue(xp, a)), UnitColumns()


def encoder_problem(X, Z, *, lambda_e, xxt=None, xxt_norm=None, xzt=None):
    """E-subproblem: ``λ_e/2‖Z − EX‖²`` s.t. every column of ``E`` in the unit ball.

    ``xxt`` (``XXᵀ``) and its largest eigenvalue ``xxt_norm`` do not change
    across outer iterations; pass them to avoid recomputing them.
    """
    xp = get_namespace(X, Z)
    xxt = X @ X.mT if xxt is None else xxt
    xxt_norm = largest_eigenvalue(xp, xxt) if xxt_norm is None else xxt_norm
    xzt = X @ Z.mT if xzt is None else xzt
    a = lambda_e * xxt

    def apply(E):
        return E @ a

    f = Quadratic(apply, lambda_e * xzt.mT, 0.5 * lambda_e * sq_norm(xp, Z), lambda_e * xxt_norm)
    return f, UnitColumns()


def solve_codes(
    X, D, E, Z0=None, *, lambda_d, lambda_e, lambda_s, lambda_g=0.0, laplacian=None, rtol=1e-6, max_iter=100
):
    """Solve the Z-subproblem with FISTA from ``Z0`` (zeros by default)."""
    xp = get_namespace(X, D, E)
    if Z0 is None:
        Z0 = xp.zeros((D.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
    f, g = code_problem(
        X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, lambda_g=lambda_g, laplacian=laplacian
    )
    return fista(f, g, Z0, rtol=rtol, max_iter=max_iter)


def solve_dictionary(X, Z, D0, *, lambda_d, rtol=1e-6, max_iter=100):
    """Solve the D-subproblem with FISTA from the feasible ``D0``."""
    f, g = dictionary_problem(X, Z, lambda_d=lambda_d)
    return fista(f, g, D0, rtol=rtol, max_iter=max_iter)


def solve_encoder(X, Z, E0, *, lambda_e, rtol=1e-6, max_iter=100):
    """Solve the E-subproblem with FISTA from the feasible ``E0``."""
    f, g = encoder_problem(X, Z, lambda_e=lambda_e)
    return fista(f, g, E0, rtol=rtol, max_iter=max_iter)


def energy_terms(X, Z, D, E, *, lambda_d, lambda_e, lambda_s, lambda_g=0.0, laplacian=None):
    """The energy and each of its terms, evaluated directly (not from Gram products).

    Returns
    -------
    dict
        ``data`` (λ_d/2‖X − DZ‖²), ``encoder`` (λ_e/2‖Z − EX‖²), ``sparsity``
        (λ_s‖Z‖₁), ``graph`` (λ_g/2 tr(Z L Zᵀ)) and their sum ``total``. The
        constraints are not part of it: see :func:`constraint_violation`.
    """
    xp = get_namespace(X, Z, D, E)
    terms = {
        "data": 0.5 * lambda_d * sq_norm(xp, X - D @ Z),
        "encoder": 0.5 * lambda_e * sq_norm(xp, Z - E @ X),
        "sparsity": lambda_s * float(xp.sum(xp.abs(Z))),
        "graph": 0.0,
    }
    if lambda_g > 0:
        if laplacian is None:
            raise ValueError("lambda_g > 0 needs a laplacian")
        terms["graph"] = 0.5 * lambda_g * inner(xp, Z, laplacian.right_multiply(Z))
    terms["total"] = terms["data"] + terms["encoder"] + terms["sparsity"] + terms["graph"]
    return terms


def constraint_violation(D, E):
    """Largest excess of a column norm of ``D`` or ``E`` over 1 (≤ 0 when feasible)."""
    xp = get_namespace(D, E)
    norms = [xp.max(xp.linalg.vector_norm(M, axis=0)) for M in (D, E) if M.shape[1] > 0]
    return max((float(v) for v in norms), default=0.0) - 1.0
