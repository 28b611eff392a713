"""Alternating minimization of the energy: the functional core behind the estimator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._array import from_numpy, get_namespace, sq_norm, to_numpy
from ._validation import check_random_state
from .fista import certificate, project_columns
from .subproblems import (
    code_problem,
    code_step,
    dictionary_statistics,
    encoder_statistics,
    energy_terms,
    newton_every,
    solve_ball,
)

Array = Any


@dataclass
class InnerTrace:
    """One subproblem solve, per inner iteration (entry 0: the warm start).

    Parameters
    ----------
    subproblem : {"Z", "D", "E"}
        The block solved.
    outer : int
        The outer iteration (or epoch) it belongs to.
    smooth : list of float
        The subproblem's quadratic part (its energy terms).
    penalty : list of float
        Its non-smooth part: λ_s‖Z‖₁ for Z, 0 for the constraints of D and E.
    converged : bool
        Whether the solver met its tolerance.
    objective : list of float
        ``smooth + penalty``, monotone to the last bit.
    certificate : list of float
        The solver's duality gap, an upper bound on what the subproblem can still gain.
    status : {"converged", "max_iter", "stalled"}
        Why the solve stopped (:class:`FistaResult`, :class:`DualResult`).
    """

    subproblem: str
    outer: int
    smooth: list
    penalty: list
    converged: bool
    objective: list = field(default_factory=list)
    certificate: list = field(default_factory=list)
    status: str = ""


@dataclass
class LearningResult:
    """Outcome of :func:`learn`.

    Parameters
    ----------
    Z, D, E : array
        The learned codes (m × N), dictionary (n × m) and encoder (m × n).
    energy : list of dict
        ``energy[k]`` holds the terms of :func:`~eaelib.subproblems.energy_terms`
        after outer iteration ``k``; ``energy[0]`` is the initialization.
    inner : list of InnerTrace
        Every subproblem solve, in order.
    n_iter : int
        Outer iterations (or epochs) run.
    converged : bool
        True when every block's gap is at most ``rtol`` times the energy: the
        iterate is block-stationary to that tolerance.
    stopped_by_callback : bool
        Whether the callback stopped learning.
    interrupted : bool
        Whether a ``KeyboardInterrupt`` stopped learning.
    n_reinitialized : int
        Dead atoms replaced along the way (``reinit_dead_atoms``).
    certificates : list of dict
        ``certificates[k − 1]`` holds, for the iterate after outer iteration
        ``k``, each block's duality gap: how much the energy could still fall
        by re-solving that block alone (keys ``"Z"``, ``"D"``, ``"E"``).
    status : {"converged", "max_outer", "stalled", "callback", "interrupted"}
        Why learning stopped; ``"stalled"``: an outer iteration could not lower
        the energy beyond the rounding of its evaluation.
    multipliers : dict
        The dual solver's last Lagrange multipliers of the D- and E-steps
        (keys ``"D"``, ``"E"``), to warm-start a later run.
    iterations : list of int
        The outer iteration (or epoch) of each entry of ``certificates`` (and
        of ``energy`` past its first): every one for :func:`learn`, the
        certified epochs for :func:`eaelib.online.learn_online`.
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
    certificates: list = field(default_factory=list)
    status: str = "max_outer"
    multipliers: dict = field(default_factory=dict)
    iterations: list = field(default_factory=list)

    def record(self, iteration, terms, gaps, rtol, callback):
        """Append an outer iteration's energy and block gaps; True when learning should stop.

        It stops when every gap is at most ``rtol`` times the energy (then
        ``converged``), or when ``callback(iteration, terms)`` returns True.

        Parameters
        ----------
        iteration : int
            The outer iteration (or epoch) just run.
        terms : dict
            Its energy terms (:func:`~eaelib.subproblems.energy_terms`), with ``"total"``.
        gaps : dict
            Each block's duality gap at the new iterate.
        rtol : float
            Tolerance on the gaps, relative to the energy.
        callback : callable or None
            ``callback(iteration, terms)``; True stops learning.

        Returns
        -------
        bool
            Whether learning should stop: converged, or stopped by the callback.
        """
        self.n_iter = iteration
        self.iterations.append(iteration)
        self.energy.append(terms)
        self.certificates.append(gaps)
        self.converged = max(gaps.values()) <= rtol * abs(terms["total"])
        if callback is not None and callback(iteration, terms):
            self.stopped_by_callback, self.status = True, "callback"
            return True
        if self.converged:
            self.status = "converged"
        return self.converged


class DivergenceError(FloatingPointError):
    """A subproblem produced non-finite values; ``result`` holds the last finite iterate.

    Parameters
    ----------
    message : str
        What diverged, and where.
    result : LearningResult
        Learning so far, up to the last finite iterate.
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


class SourceError(RuntimeError):
    """A batch source failed for good (e.g. a Dask task after its retries); ``result`` holds what was learned.

    Parameters
    ----------
    message : str
        What failed.
    result : LearningResult, optional
        Learning up to the last completed epoch.
    """

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class EnergyIncreaseError(ArithmeticError):
    """The energy rose beyond the rounding error of its evaluation: a block solver is wrong.

    Every block step is monotone, so this never happens with eaelib's solvers;
    ``result`` holds the last iterate before the rise.

    Parameters
    ----------
    message : str
        The energies before and after, and the rounding error they were compared with.
    result : LearningResult
        Learning so far, up to the last iterate before the rise.
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


#: Epochs between two certifying passes of online learning (:func:`eaelib.online.learn_online`), and
#: after the last epoch, always: a pass costs about an epoch.
CERTIFY_EVERY = 5

#: Initializations of :func:`initialize`.
INITIALIZATIONS = ("random", "data", "svd")


def initialize(X, n_atoms, random_state=None, method="random"):
    """Starting point of :func:`learn` for data ``X`` (n × N), in ``X``'s namespace.

    ``E`` is ``Dᵀ`` with its columns projected onto the unit ball, and ``Z`` is
    zero: the first Z-step solves for it. ``D`` depends on ``method``:

    - ``"random"``: Gaussian atoms of unit norm;
    - ``"data"``: ``n_atoms`` samples drawn without replacement (with, if
      there are fewer samples than atoms), scaled to unit norm; an all-zero
      sample is replaced by a Gaussian atom;
    - ``"svd"``: the leading left singular vectors of ``X`` (the principal
      directions, as scikit-learn's ``DictionaryLearning`` starts), then, past
      the rank of ``X``, samples as for ``"data"``.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    n_atoms : int
        Number of atoms ``m``.
    random_state : int, numpy.random.Generator or None
        Seed of the Gaussian atoms and of the samples drawn; None draws fresh entropy.
    method : {"random", "data", "svd"}
        How to choose ``D``, as above.

    Returns
    -------
    Z : array, shape (m, N)
        Zeros.
    D : array, shape (n, m)
        Atoms of unit norm.
    E : array, shape (m, n)
        ``Dᵀ`` with its columns projected onto the unit ball.

    Raises
    ------
    ValueError
        If ``method`` is none of the above.
    """
    if method not in INITIALIZATIONS:
        raise ValueError(f"init must be one of {INITIALIZATIONS}, got {method!r}")
    xp = get_namespace(X)
    rng = check_random_state(random_state)
    n, N = X.shape
    gaussian = rng.standard_normal((n, n_atoms))
    if method == "random":
        atoms = gaussian
    else:
        X_np = to_numpy(X).astype(np.float64)
        picked = rng.choice(N, size=n_atoms, replace=n_atoms > N)
        atoms = X_np[:, picked]
        if method == "svd":
            u, s, _ = np.linalg.svd(X_np, full_matrices=False)
            rank = int(np.sum(s > s[0] * max(n, N) * np.finfo(np.float64).eps)) if s.size and s[0] > 0 else 0
            k = min(rank, n_atoms)
            atoms = np.concatenate([u[:, :k], atoms[:, : n_atoms - k]], axis=1)
        norms = np.linalg.norm(atoms, axis=0)
        atoms = np.where(norms > 0, atoms, gaussian)
    atoms = atoms / np.linalg.norm(atoms, axis=0)
    D = project_columns(from_numpy(xp, atoms, dtype=X.dtype, device=X.device))
    Z = xp.zeros((n_atoms, N), dtype=X.dtype, device=X.device)
    return Z, D, project_columns(D.mT)


def dead_atoms(Z):
    """Boolean mask of the atoms that no sample uses.

    Parameters
    ----------
    Z : array, shape (m, N)
        Codes, one row per atom and one column per sample.

    Returns
    -------
    array of bool, shape (m,)
        True for the atoms whose row of ``Z`` is all zero.
    """
    xp = get_namespace(Z)
    return ~xp.any(Z != 0, axis=1)


def reinitialize_dead_atoms(X, Z, D):
    """Replace atoms that no code uses by the worst-reconstructed samples' residuals.

    A dead atom multiplies a zero row of ``Z``, so replacing it leaves ``DZ``,
    and hence the energy, unchanged: the next Z-step may then use it.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes; its zero rows mark the dead atoms.
    D : array, shape (n, m)
        Dictionary.

    Returns
    -------
    D : array, shape (n, m)
        The dictionary with its dead atoms replaced by residuals ``X − DZ`` of unit norm, the worst first;
        when fewer samples than dead atoms have a residual, the remaining dead atoms stay.
    n_replaced : int
        The number of atoms replaced.
    """
    xp = get_namespace(X, Z, D)
    dead = np.array(to_numpy(dead_atoms(Z)))  # a copy: it may be trimmed below
    n_dead = int(dead.sum())
    if n_dead == 0:
        return D, 0
    residual = X - D @ Z
    errors = to_numpy(xp.sum(residual * residual, axis=0))
    worst = np.argsort(errors)[::-1][:n_dead]
    worst = worst[errors[worst] > 0]  # nothing left to explain in the others
    if worst.size == 0:
        return D, 0
    # With fewer samples left to explain than dead atoms, the first dead atoms take them; the rest stay.
    dead[np.flatnonzero(dead)[worst.size :]] = False
    n_dead = worst.size
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
    max_outer=200,
    max_inner=100,
    rtol=1e-3,
    inner_rtol=1e-4,
    solver="dual",
    code_solver="auto",
    reinit_dead_atoms=False,
    callback=None,
    multipliers=None,
):
    """Learn ``Z``, ``D`` and ``E`` from ``X`` (n × N) by alternating certified block solves.

    The blocks are updated in the order Z, D, E, each from its current value
    by a monotone solver, so the energy cannot increase; it is then evaluated
    directly. After every outer iteration each block's duality gap at the new
    iterate is computed; learning stops when all are at most ``rtol`` times
    the energy (block-stationarity), not when the energy merely changes little.

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
    max_outer : int
        Most outer iterations.
    max_inner : int
        Most iterations of a Z-step, Newton steps on the support included
        (and of a D- or E-step with ``solver="fista"``). A Z-step may stop at
        it before its tolerance, with no warning: the outer certificate, not
        the inner one, decides convergence.
    rtol : float
        Block-stationarity tolerance, relative to the energy.
    inner_rtol : float
        With ``τ = min(inner_rtol, rtol/10)``: a Z-step stops when its duality
        gap, summed over the samples, is at most ``τ`` times the energy or a
        tenth of the gap it started from, whichever is larger; each sample
        also stops once its own gap is at most ``τ`` times its part of the
        energy. Once that target is within ``rtol`` of the energy (the
        endgame), every :func:`~eaelib.subproblems.newton_every`-th iteration
        is a Newton step on the support.
    solver : {"dual", "fista"}
        Solver of the D- and E-steps: Newton on the Lagrange dual (exact,
        see :mod:`eaelib.dual`) or FISTA with at most ``max_inner`` iterations.
    code_solver : {"auto", "lars", "fista"}
        Solver of the Z-steps (:func:`~eaelib.subproblems.choose_code_solver`):
        the compiled homotopy, exact, where the problem is barely strongly
        convex (then a Z-step is exact, whatever ``inner_rtol``), FISTA
        elsewhere.
    reinit_dead_atoms : bool
        After each Z-step, replace the atoms no code uses (see
        :func:`reinitialize_dead_atoms`); the energy is unchanged by it.
    callback : callable, optional
        Called as ``callback(iteration, terms)`` after every outer iteration;
        returning ``True`` stops learning.
    multipliers : dict, optional
        Lagrange multipliers ``{"D": ν_D, "E": ν_E}`` to warm-start the dual
        solver (``LearningResult.multipliers`` of a previous run).

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
    EnergyIncreaseError
        If the energy rises beyond the rounding error of its evaluation,
        which only a wrong block solver can cause.
    """
    from .subproblems import BALL_SOLVERS, CODE_SOLVERS

    if solver not in BALL_SOLVERS:
        raise ValueError(f"solver must be one of {BALL_SOLVERS}, got {solver!r}")
    if code_solver not in CODE_SOLVERS:
        raise ValueError(f"code_solver must be one of {CODE_SOLVERS}, got {code_solver!r}")
    xp = get_namespace(X, Z, D, E)
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, lambda_g=lambda_g, laplacian=laplacian)
    eps = float(xp.finfo(X.dtype).eps)
    # Constant over the whole run: the squared norms of X and its columns, and XXᵀ.
    x_col_sq = xp.sum(X * X, axis=0)
    x_sq = float(xp.sum(x_col_sq))
    xxt = X @ X.mT if lambda_e > 0 else None
    result = LearningResult(Z, D, E, energy=[energy_terms(X, Z, D, E, **weights)])
    result.multipliers = dict(multipliers or {})

    def check(name, outer, solve, *args, **options):
        try:
            res = solve(*args, **options)
        except FloatingPointError as exc:
            raise DivergenceError(f"the {name}-subproblem diverged at outer iteration {outer}: {exc}", result) from exc
        result.inner.append(
            InnerTrace(name, outer, res.smooth, res.penalty, res.converged, res.objective, res.certificate, res.status)
        )
        return res

    def ball_step(name, outer, statistics, W, weight):
        """A D- or E-step from ``W``; both solvers return a point no worse than ``W``, and its gap."""
        res = check(
            name,
            outer,
            solve_ball,
            *statistics,
            W,
            weight=weight,
            rtol=_BALL_RTOL if solver == "dual" else inner_rtol,
            max_iter=None if solver == "dual" else max_inner,
            solver=solver,
            multipliers=result.multipliers.get(name),
        )
        if solver == "dual":
            result.multipliers[name] = res.multipliers
        # The kept point is the last one or, if no better, W: either way within the last gap.
        return res.x, res.certificate[-1]

    # The iterate is result.Z, result.D, result.E; its Z-problem, Z-gap and certificate are carried here.
    current = {"problem": code_problem(X, D, E, x_col_sq=x_col_sq, **weights)}
    current["gap_z"] = certificate(*current["problem"], Z)

    def advance(k):
        """One outer iteration: the Z-, D- and E-steps; False when it cannot lower the energy."""
        Z, D, E, problem = result.Z, result.D, result.E, current["problem"]
        # Inexact Z-steps: a tenth of the gap they start from is enough, and inner_rtol of the
        # energy always is, but never more than a tenth of the outer tolerance (with inner_rtol ≥
        # rtol a Z-step would otherwise stop at once, short of what convergence needs); the
        # outer certificate, not this one, decides convergence.
        z_rtol = min(inner_rtol, 0.1 * rtol)
        atol = max(z_rtol * result.energy[-1]["total"], 0.1 * current["gap_z"])
        res = check(
            "Z",
            k,
            code_step,
            *problem,
            Z,
            solver=code_solver,
            rtol=z_rtol,
            max_iter=max_inner,
            momentum=_Z_MOMENTUM,
            atol=atol,
            # Newton steps on the support pay once the Z-step must be accurate (the endgame).
            polish=newton_every(problem[0]) if atol <= rtol * result.energy[-1]["total"] else 0,
        )
        Z_new = res.x
        D_new, E_new, gap_d, gap_e = D, E, 0.0, 0.0
        if reinit_dead_atoms:
            D_new, n_replaced = reinitialize_dead_atoms(X, Z_new, D_new)
            result.n_reinitialized += n_replaced
        xzt = X @ Z_new.mT  # serves both the D and the E subproblems
        if lambda_d > 0:
            D_new, gap_d = ball_step("D", k, dictionary_statistics(X, Z_new, xzt=xzt, x_sq=x_sq), D_new, lambda_d)
        if lambda_e > 0:
            E_new, gap_e = ball_step("E", k, encoder_statistics(X, Z_new, xxt=xxt, xzt=xzt), E_new, lambda_e)
        terms = energy_terms(X, Z_new, D_new, E_new, **weights)
        previous = result.energy[-1]["total"]
        if terms["total"] >= previous:
            rounding = energy_rounding(x_sq, sq_norm(xp, Z_new), terms, weights, eps)
            if terms["total"] - previous > rounding:
                raise EnergyIncreaseError(
                    f"the energy rose from {previous!r} to {terms['total']!r} at outer iteration {k}, "
                    f"beyond the rounding error of its evaluation ({rounding:.3g}): a block solver is wrong",
                    result,
                )
            # No progress this precision can measure (every block already at its minimum to its
            # solver's accuracy, or a rise within rounding): keep the last iterate, and say so.
            result.status = "stalled"
            return False
        current["problem"] = problem = code_problem(X, D_new, E_new, x_col_sq=x_col_sq, **weights)
        current["gap_z"] = certificate(*problem, Z_new)
        current.update(terms=terms, gaps={"Z": current["gap_z"], "D": gap_d, "E": gap_e})
        result.Z, result.D, result.E = Z_new, D_new, E_new
        return True

    # Every outer iteration is certified: its block gaps come with its steps.
    return drive(
        result, advance, lambda: (current["terms"], current["gaps"]), max_iter=max_outer, rtol=rtol, callback=callback
    )


#: The histories of a fit (the estimator's fitted attributes), which a warm start continues.
HISTORIES = ("energy_history_", "inner_history_", "certificate_history_", "history_iterations_", "n_iter_")


def histories(result, previous=None):
    """The histories of ``result``, continuing ``previous`` when ``result`` starts where it stopped.

    Parameters
    ----------
    result : LearningResult
        A fit's result.
    previous : dict, optional
        The histories (names of :data:`HISTORIES`) of the fit that this one warm-started from. When
        ``result``'s first energy is that fit's last (the same data, from where it stopped), the two make
        one history, with iterations counted on; otherwise ``result``'s alone are returned.

    Returns
    -------
    dict
        :data:`HISTORIES`, and ``objective_history_`` (the total energies).
    """
    energy, inner, n_iter = result.energy, result.inner, result.n_iter
    certificates, iterations = result.certificates, [0, *result.iterations]
    if previous and energy[0]["total"] == previous["energy_history_"][-1]["total"]:
        offset = previous["n_iter_"]
        energy = previous["energy_history_"] + energy[1:]
        inner = previous["inner_history_"] + [replace(trace, outer=trace.outer + offset) for trace in inner]
        certificates = previous["certificate_history_"] + certificates
        iterations = previous["history_iterations_"] + [k + offset for k in iterations[1:]]
        n_iter += offset
    values = (energy, inner, certificates, iterations, n_iter)
    return {**dict(zip(HISTORIES, values, strict=True)), "objective_history_": [t["total"] for t in energy]}


def stop_message(result, *, n_iter, rtol, max_outer, unit="outer iterations"):
    """What a fit that stopped before block-stationarity says, or None if it is block-stationary.

    Parameters
    ----------
    result : LearningResult
        The fit's result: interrupted (Ctrl-C), stopped at ``max_outer`` or stalled (no progress beyond the
        rounding of the energy), or converged.
    n_iter : int
        The iterations (or epochs) the model holds, a warm start's included.
    rtol : float
        The fit's tolerance, quoted beside the largest block gap.
    max_outer : int
        The fit's cap on iterations, quoted when it stopped there.
    unit : str, default="outer iterations"
        What ``n_iter`` counts ("epochs" online).

    Returns
    -------
    str or None
    """
    if result.interrupted:
        return (
            f"fit was interrupted after {n_iter} {unit}: the model holds the last complete one and is not "
            "converged; fit again with warm_start=True to continue"
        )
    if result.status not in ("max_outer", "stalled"):
        return None
    gaps = result.certificates[-1] if result.certificates else {}
    energy = result.energy[-1]["total"]
    if gaps and energy:
        worst = max(gaps, key=gaps.get)
        reached = (
            f"the {worst}-block can still lower the energy by up to {gaps[worst]:.3g} "
            f"({gaps[worst] / energy:.2g} of it; rtol={rtol:g})"
        )
    else:
        reached = "no certificate was computed"
    if result.status == "max_outer":
        cause = f"stopped at max_outer={max_outer}"
    else:
        cause = "stopped: the energy no longer falls beyond the rounding of its evaluation"
    return f"fit {cause} before block-stationarity: {reached}; raise max_outer (warm_start=True continues)"


def drive(result, advance, certify, *, max_iter, rtol, callback=None, certify_every=1):
    """The loop of every learner: advance, certify, record, until converged, stopped or interrupted.

    :func:`learn` and :func:`eaelib.online.learn_online` differ only in their named steps:

    - ``advance(k)`` runs outer iteration (or epoch) ``k`` on the learner's state and returns False
      when learning cannot go on (it sets ``result.status``, e.g. ``"stalled"``);
    - ``certify()`` returns ``(terms, gaps)`` at the current iterate: the energy's terms and each
      block's duality gap, after every ``certify_every`` iterations and the last.

    ``result.record`` then decides convergence (every gap at most ``rtol`` times the energy) and calls
    ``callback(k, terms)``. A ``KeyboardInterrupt`` ends the loop with what the completed
    iterations learned (``result.interrupted``); other errors propagate to the learner.

    Parameters
    ----------
    result : LearningResult
        With ``energy[0]``, the energy at the start; updated in place and returned.
    advance, certify : callable
    max_iter : int or float
        Most iterations; a fraction makes the last one partial (the learner's ``advance`` reads it).
    rtol : float
    callback : callable, optional
    certify_every : int

    Returns
    -------
    LearningResult
    """
    last = math.ceil(max_iter)
    try:
        for k in range(1, last + 1):
            if not advance(k):
                break
            if k % certify_every and k < last:
                continue
            terms, gaps = certify()
            if result.record(k, terms, gaps, rtol, callback):
                break
    except KeyboardInterrupt:
        # Keep what the completed iterations learned; the caller decides what to say.
        result.interrupted, result.converged, result.status = True, False, "interrupted"
    return result


# The D- and E-steps are solved exactly (Newton converges quadratically): to a gap of 1e-10 of
# their value, or float64's rounding floor.
_BALL_RTOL = 1e-10
# Momentum of the Z-steps (measured: fastest to a certified gap on Barbara). Newton steps on the
# support (polish: every newton_every(f)-th iteration, where μ < L/100) only in the endgame: from
# warm starts, stopping at a tenth of their gap, the Z-steps of a fit with λ_e = 0 took as many
# iterations with them as without (3738 against 3732 over 20 outer iterations on Barbara) and 1.8
# times the time; once a Z-step must be certified within rtol, they are what reaches the
# certificate (a loose gap without strong convexity otherwise stalls).
_Z_MOMENTUM = "strong"


def energy_rounding(x_sq, z_sq, terms, weights, eps):
    """An upper estimate of the rounding error of :func:`~eaelib.subproblems.energy_terms`.

    ``λ/2‖a − b‖²`` is a sum of squares of residuals ``r = a − b``, each
    computed with an error of a few eps times ``|a| + |b|``: the sum is off
    by about ``λ eps ‖r‖ (‖a‖ + ‖b‖) ≤ λ eps ‖r‖ (2‖a‖ + ‖r‖)``, with
    ``a = X`` for the data term and ``a = Z`` for the encoder term. A generous
    factor covers the products and the summations.
    """
    total = terms["sparsity"] + terms["graph"]
    for term, weight, norm_sq in (("data", weights["lambda_d"], x_sq), ("encoder", weights["lambda_e"], z_sq)):
        if weight > 0:
            r = math.sqrt(2 * terms[term] / weight)
            total += weight * r * (2 * math.sqrt(norm_sq) + r)
    return 64 * eps * total
