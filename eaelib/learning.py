"""Alternating minimization of the energy: the functional core behind the estimator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array import from_numpy, get_namespace, largest_eigenvalue, to_numpy
from ._validation import check_random_state
from .fista import fista, project_columns
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
    interrupted: bool = False
    n_reinitialized: int = 0


class DivergenceError(FloatingPointError):
    """A subproblem produced non-finite values; ``result`` holds the last finite iterate."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def initialize(X, n_atoms, random_state=None):
    """Starting point of :func:`learn` for data ``X`` (n × N), in ``X``'s namespace.

    ``D`` has Gaussian random atoms of unit norm, ``E`` is ``Dᵀ`` with its columns
    projected onto the unit ball, and ``Z`` is zero: the first Z-step solves for it.

    Parameters
    ----------
    X : array, shape (n, N)
    n_atoms : int
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    Z, D, E : arrays of shapes (m, N), (n, m) and (m, n)
    """
    xp = get_namespace(X)
    rng = check_random_state(random_state)
    D = from_numpy(xp, rng.standard_normal((X.shape[0], n_atoms)), dtype=X.dtype, device=X.device)
    D = project_columns(D / xp.linalg.vector_norm(D, axis=0, keepdims=True))
    Z = xp.zeros((n_atoms, X.shape[1]), dtype=X.dtype, device=X.device)
    return Z, D, project_columns(D.mT)


def dead_atoms(Z):
    """Boolean mask of the atoms (rows of ``Z``, m × N) that no sample uses."""
    xp = get_namespace(Z)
    return ~xp.any(Z != 0, axis=1)


def reinitialize_dead_atoms(X, Z, D):
    """Replace atoms that no code uses by the worst-reconstructed samples' residuals.

    A dead atom multiplies a zero row of ``Z``, so replacing it leaves ``DZ``,
    and hence the energy, unchanged: the next Z-step may then use it.

    Returns
    -------
    D : array
        The dictionary with its dead atoms replaced (unit norm).
    n_replaced : int
    """
    xp = get_namespace(X, Z, D)
    dead = to_numpy(dead_atoms(Z))
    n_dead = int(dead.sum())
    if n_dead == 0:
        return D, 0
    residual = X - D @ Z
    errors = to_numpy(xp.sum(residual * residual, axis=0))
    worst = np.argsort(errors)[::-1][:n_dead]
    if errors[worst[-1]] == 0:  # nothing left to explain
        return D, 0
    source = np.zeros(D.shape[1], dtype=np.int64)
    source[dead] = worst
    candidates = xp.take(residual, from_numpy(xp, source, device=X.device), axis=1)
    candidates = candidates / xp.linalg.vector_norm(candidates, axis=0, keepdims=True)
    mask = from_numpy(xp, dead, device=X.device)
    return xp.where(mask, candidates, D), n_dead


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
    reinit_dead_atoms=False,
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
        Starting codes (m × N), dictionary (n × m, feasible) and encoder (m × n,
        feasible); see :func:`initialize`.
    lambda_d, lambda_e, lambda_s, lambda_g : float
        Weights of the energy terms.
    laplacian : GraphLaplacian, optional
        Needed when ``lambda_g > 0``.
    max_outer, max_inner : int
        Most outer iterations, and most FISTA iterations per subproblem.
    rtol, inner_rtol : float
        Relative change of the energy (outer loop) and of a subproblem's
        objective (inner loop) under which the loop stops.
    reinit_dead_atoms : bool
        After each Z-step, replace the atoms no code uses (see
        :func:`reinitialize_dead_atoms`); the energy is unchanged by it.
    callback : callable, optional
        Called as ``callback(iteration, terms)`` after every outer iteration;
        returning ``True`` stops learning.

    Returns
    -------
    LearningResult
        With ``interrupted=True`` if a ``KeyboardInterrupt`` stopped learning:
        it then holds the last complete outer iterate.

    Raises
    ------
    DivergenceError
        If a subproblem produces non-finite values; its ``result`` holds the
        last finite iterate.
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
        try:
            res = fista(f, g, x0, rtol=inner_rtol, max_iter=max_inner)
        except FloatingPointError as exc:
            raise DivergenceError(f"the {name}-subproblem diverged at outer iteration {outer}: {exc}", result) from exc
        result.inner.append(InnerTrace(name, outer, res.smooth, res.penalty, res.converged))
        return res.x

    try:
        for k in range(1, max_outer + 1):
            Z = solve("Z", k, *code_problem(X, D, E, x_col_sq=x_col_sq, **weights), Z)
            if reinit_dead_atoms:
                D, n_replaced = reinitialize_dead_atoms(X, Z, D)
                result.n_reinitialized += n_replaced
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
    except KeyboardInterrupt:
        # Keep what the completed iterations learned; the caller decides what to say.
        result.interrupted, result.converged = True, False
    return result
