"""Alternating minimization of the energy: the functional core behind the estimator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._array import get_namespace, largest_eigenvalue
from .fista import fista
from .subproblems import code_problem, dictionary_problem, encoder_problem, energy_terms

Array = Any


@dataclass
class InnerTrace:
    """Objective of one subproblem solve, per inner iteration (entry 0: warm start).

    ``smooth`` is the subproblem's quadratic part (its energy terms), ``penalty``
    its non-smooth part (λ_s‖Z‖₁ for Z, 0 for the constraints of D and E).
    """

    subproblem: str
    outer: int
    smooth: list
    penalty: list
    converged: bool


@dataclass
class LearningResult:
    """Outcome of :func:`learn`.

    ``energy[k]`` holds the terms of :func:`~eaelib.subproblems.energy_terms`
    after outer iteration ``k``; ``energy[0]`` is the initialization.
    """

    Z: Array
    D: Array
    E: Array
    energy: list = field(default_factory=list)
    inner: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    stopped_by_callback: bool = False


def learn(
    X,
    Z,
    D,
    E,
    *,
    lambda_d,
    lambda_e,
    lambda_s,
    lambda_g=0.0,
    laplacian=None,
    max_outer=20,
    max_inner=100,
    rtol=1e-3,
    inner_rtol=1e-4,
    callback=None,
):
    """Learn ``Z``, ``D`` and ``E`` from ``X`` (n × N) by alternating FISTA solves.

    The blocks are updated in the order Z, D, E, each from its current value by
    a monotone solver, so the energy cannot increase. The energy is then
    evaluated directly; should rounding make it rise all the same, the previous
    iterate is kept and learning stops.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z, D, E : arrays
        Starting codes (m × N), dictionary (n × m, feasible) and encoder (m × n, feasible).
    lambda_d, lambda_e, lambda_s, lambda_g : float
        Weights of the energy terms.
    laplacian : GraphLaplacian, optional
        Needed when ``lambda_g > 0``.
    max_outer, max_inner : int
        Most outer iterations, and most FISTA iterations per subproblem.
    rtol, inner_rtol : float
        Relative change of the energy (outer loop) and of a subproblem's
        objective (inner loop) under which the loop stops.
    callback : callable, optional
        Called as ``callback(iteration, terms)`` after every outer iteration;
        returning ``True`` stops learning.

    Returns
    -------
    LearningResult
    """
    xp = get_namespace(X, Z, D, E)
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, lambda_g=lambda_g, laplacian=laplacian)
    # Constant over the whole run: the squared norms of X and its columns, XXᵀ and its largest eigenvalue.
    x_col_sq = xp.sum(X * X, axis=0)
    x_sq = float(xp.sum(x_col_sq))
    xxt = X @ X.mT
    xxt_norm = largest_eigenvalue(xp, xxt)
    result = LearningResult(Z, D, E, energy=[energy_terms(X, Z, D, E, **weights)])

    def solve(name, outer, f, g, x0):
        res = fista(f, g, x0, rtol=inner_rtol, max_iter=max_inner)
        result.inner.append(InnerTrace(name, outer, res.smooth, res.penalty, res.converged))
        return res.x

    for k in range(1, max_outer + 1):
        Z = solve("Z", k, *code_problem(X, D, E, x_col_sq=x_col_sq, **weights), Z)
        xzt = X @ Z.mT  # serves both the D and the E subproblems
        if lambda_d > 0:
            D = solve("D", k, *dictionary_problem(X, Z, lambda_d=lambda_d, xzt=xzt, x_sq=x_sq), D)
        if lambda_e > 0:
            E = solve("E", k, *encoder_problem(X, Z, lambda_e=lambda_e, xxt=xxt, xxt_norm=xxt_norm, xzt=xzt), E)
        terms = energy_terms(X, Z, D, E, **weights)
        previous = result.energy[-1]["total"]
        if terms["total"] > previous:  # only rounding can do this: keep the last iterate
            result.converged = True
            break
        result.Z, result.D, result.E, result.n_iter = Z, D, E, k
        result.energy.append(terms)
        if previous - terms["total"] <= rtol * abs(terms["total"]):
            result.converged = True
        if callback is not None and callback(k, terms):
            result.stopped_by_callback = True
            break
        if result.converged:
            break
    return result
