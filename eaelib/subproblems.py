"""The three convex subproblems of the energy auto-encoder, in the book's orientation.

``X`` is ``n × N`` (samples as columns), ``D`` is ``n × m``, ``E`` is ``m × n``
and ``Z`` is ``m × N``. Each ``*_problem`` function returns the pair
``(f, g)`` that :func:`eaelib.fista.fista` minimizes; the Gram products are
formed once per subproblem so that an iteration costs one ``m × m`` by
``m × N`` product for ``Z`` and only ``n × m``-sized products for ``D`` and ``E``.
"""

from __future__ import annotations

import math
import warnings

import array_api_compat
import numpy as np

from ._array import extreme_eigenvalues, from_numpy, get_namespace, inner, sq_norm, to_numpy
from ._base import ConvergenceWarning
from ._progress import chunks
from .dual import solve_ball_least_squares
from .fista import FistaResult, L1Penalty, Quadratic, UnitColumns, certificate, fista

#: Solvers of the D- and E-subproblems.
BALL_SOLVERS = ("dual", "fista")
#: Solvers of the Z-subproblem: ``"lars"`` is the compiled homotopy (:mod:`eaelib.homotopy`), exact;
#: ``"fista"`` is :func:`eaelib.fista.fista`; ``"auto"`` chooses by the problem (:func:`choose_code_solver`).
CODE_SOLVERS = ("auto", "lars", "fista")
# "auto" takes the homotopy when L/μ is at least _LARS_CONDITION, or _LARS_CONDITION_ACCURATE for a solve to
# rtol ≤ 1e-6 (transform). Measured by bench/zstep_solvers.py (Barbara, N = 2726, m = 200, a D after 15 outer
# iterations, one thread), homotopy against FISTA from the encoder's prediction to a gap of 1e-4 / 1e-6:
# L/μ = 32 (λ_e = 30, 115 non-zeros per code): 1.35 s against 0.41 / 0.56 s; L/μ = 94 (λ_e = 10, 92):
# 0.84 s against 0.57 / 0.94 s; L/μ = 311 (λ_e = 3, 75): 0.53 s against 1.12 / 1.78 s; L/μ = ∞ (λ_e = 0,
# 25): 0.16 s against 23 / 44 s (from zeros). Learning's Z-steps are inexact and warm-started from the last
# codes, which favours FISTA further: they take the homotopy from 200 on.
_LARS_CONDITION = 200.0
_LARS_CONDITION_ACCURATE = 60.0


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

    Returns
    -------
    f : Quadratic
        The smooth part; separable by columns (with its ``gram`` ``G``) when ``lambda_g`` is 0.
    g : L1Penalty
        ``λ_s‖Z‖₁``.

    Raises
    ------
    ValueError
        If ``lambda_g > 0`` and no ``laplacian`` is given.
    """
    xp = get_namespace(X, D, E)
    m = D.shape[1]
    dtd = D.mT @ D
    gram = lambda_d * dtd + lambda_e * xp.eye(m, dtype=D.dtype, device=D.device)
    ex = E @ X
    b = lambda_d * (D.mT @ X) + lambda_e * ex
    x_col_sq = xp.sum(X * X, axis=0) if x_col_sq is None else x_col_sq
    c = 0.5 * lambda_d * x_col_sq + 0.5 * lambda_e * xp.sum(ex * ex, axis=0)
    # DᵀD and DDᵀ share their non-zero spectrum: take the smaller one. DᵀD is singular when m > n.
    low, high = extreme_eigenvalues(xp, dtd if m <= D.shape[0] else D @ D.mT)
    lipschitz = lambda_d * high + lambda_e
    strong_convexity = lambda_e + (lambda_d * low if m <= D.shape[0] else 0.0)
    if lambda_g > 0:
        if laplacian is None:
            raise ValueError("lambda_g > 0 needs a laplacian")

        def apply(Z):
            return gram @ Z + lambda_g * laplacian.right_multiply(Z)

        lipschitz += lambda_g * laplacian.norm
        return Quadratic(apply, b, xp.sum(c), lipschitz, strong_convexity=strong_convexity), L1Penalty(lambda_s)

    def apply(Z):
        return gram @ Z

    f = Quadratic(apply, b, c, lipschitz, separable=True, strong_convexity=strong_convexity, gram=gram)
    return f, L1Penalty(lambda_s)


def dictionary_problem(X, Z, *, lambda_d, xzt=None, x_sq=None):
    """D-subproblem: ``λ_d/2‖X − DZ‖²`` s.t. every column of ``D`` in the unit ball.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes.
    lambda_d : float
        Weight of the data term.
    xzt : array, shape (n, m), optional
        ``XZᵀ`` if already known; it serves the E-subproblem too.
    x_sq : float, optional
        ``‖X‖²`` if already known.

    Returns
    -------
    f : Quadratic
        ``λ_d/2 (tr(D ZZᵀ Dᵀ) − 2 tr(D ZXᵀ) + ‖X‖²)``, acting on ``D``.
    g : UnitColumns
        The constraint.
    """
    return _ball_problem(*dictionary_statistics(X, Z, xzt=xzt, x_sq=x_sq), lambda_d)


def encoder_problem(X, Z, *, lambda_e, xxt=None, xxt_norm=None, xzt=None):
    """E-subproblem: ``λ_e/2‖Z − EX‖²`` s.t. every column of ``E`` in the unit ball.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes.
    lambda_e : float
        Weight of the encoder term.
    xxt : array, shape (n, n), optional
        ``XXᵀ``, which does not change across outer iterations: pass it to avoid recomputing it.
    xxt_norm : float, optional
        Accepted for compatibility and unused: the eigenvalues are computed with the smallest one,
        which the solvers need too.
    xzt : array, shape (n, m), optional
        ``XZᵀ`` if already known.

    Returns
    -------
    f : Quadratic
        ``λ_e/2 (tr(E XXᵀ Eᵀ) − 2 tr(E XZᵀ) + ‖Z‖²)``, acting on ``E``.
    g : UnitColumns
        The constraint.
    """
    return _ball_problem(*encoder_statistics(X, Z, xxt=xxt, xzt=xzt), lambda_e)


def dictionary_statistics(X, Z, *, xzt=None, x_sq=None):
    """``(G, B, c) = (ZZᵀ, XZᵀ, ‖X‖²)``: the D-subproblem is ``λ_d/2 (tr(DGDᵀ) − 2tr(DBᵀ) + c)``.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes.
    xzt : array, shape (n, m), optional
        ``XZᵀ`` if already known.
    x_sq : float, optional
        ``‖X‖²`` if already known.

    Returns
    -------
    G : array, shape (m, m)
        ``ZZᵀ``.
    B : array, shape (n, m)
        ``XZᵀ``.
    c : float
        ``‖X‖²``.
    """
    xp = get_namespace(X, Z)
    xzt = X @ Z.mT if xzt is None else xzt
    return Z @ Z.mT, xzt, sq_norm(xp, X) if x_sq is None else x_sq


def encoder_statistics(X, Z, *, xxt=None, xzt=None):
    """``(G, B, c) = (XXᵀ, ZXᵀ, ‖Z‖²)``: the E-subproblem is ``λ_e/2 (tr(EGEᵀ) − 2tr(EBᵀ) + c)``.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes.
    xxt : array, shape (n, n), optional
        ``XXᵀ`` if already known.
    xzt : array, shape (n, m), optional
        ``XZᵀ`` if already known.

    Returns
    -------
    G : array, shape (n, n)
        ``XXᵀ``.
    B : array, shape (m, n)
        ``ZXᵀ``.
    c : float
        ``‖Z‖²``.
    """
    xp = get_namespace(X, Z)
    xxt = X @ X.mT if xxt is None else xxt
    xzt = X @ Z.mT if xzt is None else xzt
    return xxt, xzt.mT, sq_norm(xp, Z)


def _ball_problem(gram, b, c, weight):
    """``weight/2 (tr(W G Wᵀ) − 2 tr(W Bᵀ) + c)`` with unit-ball columns, as FISTA's ``(f, g)``."""
    xp = get_namespace(gram, b)
    a = weight * gram
    low, high = extreme_eigenvalues(xp, a)

    def apply(W):
        return W @ a

    return Quadratic(apply, weight * b, 0.5 * weight * c, high, strong_convexity=low), UnitColumns()


def solve_codes(
    X,
    D,
    E,
    Z0=None,
    *,
    lambda_d,
    lambda_e,
    lambda_s,
    lambda_g=0.0,
    laplacian=None,
    rtol=1e-6,
    max_iter=100,
    criterion="gap",
    momentum="restart",
    polish=None,
    solver="auto",
):
    """Solve the Z-subproblem from ``Z0`` (zeros by default) to a certificate.

    ``solver`` is one of :data:`CODE_SOLVERS` (see :func:`code_step`).
    ``criterion``, ``rtol``, ``momentum`` and ``polish`` are those of
    :func:`eaelib.fista.fista`: by default each sample's duality gap is at most
    ``rtol`` times its energy, and Newton steps on the support are taken when
    the problem is barely strongly convex (:func:`newton_every`).
    ``Z0="encoder"`` starts from the encoder's prediction ``EX``.

    Parameters
    ----------
    X, D, E : array
        Data (n × N), dictionary (n × m) and encoder (m × n).
    Z0 : array of shape (m, N), "encoder" or None
        The start: given codes, the encoder's prediction ``EX``, or zeros.
    lambda_d, lambda_e, lambda_s, lambda_g : float
        Weights of the energy terms.
    laplacian : GraphLaplacian, optional
        Needed when ``lambda_g > 0``.
    rtol : float
        Tolerance of the certificate, relative to each block's objective.
    max_iter : int
        Most iterations (FISTA's, Newton steps on the support included).
    criterion : {"gap", "kkt"}
        The certificate.
    momentum : {"monotone", "restart", "strong", "fista", "ista"}
        FISTA's momentum.
    polish : int, optional
        Every ``polish``-th FISTA step is a Newton step on the support; by default
        :func:`newton_every` decides.
    solver : {"auto", "lars", "fista"}
        The Z-solver.

    Returns
    -------
    FistaResult
        The codes ``x`` (m × N) and the solve's histories; ``solver`` says which solver ran.

    Raises
    ------
    ValueError
        If ``Z0`` is a string other than ``"encoder"``, or ``solver="lars"`` cannot solve the problem.
    """
    xp = get_namespace(X, D, E)
    if Z0 is None:
        Z0 = xp.zeros((D.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
    elif isinstance(Z0, str):
        if Z0 != "encoder":
            raise ValueError(f"Z0 must be an array, None or 'encoder', got {Z0!r}")
        Z0 = E @ X
    f, g = code_problem(
        X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s, lambda_g=lambda_g, laplacian=laplacian
    )
    polish = newton_every(f) if polish is None else polish
    return code_step(
        f, g, Z0, solver=solver, rtol=rtol, max_iter=max_iter, criterion=criterion, momentum=momentum, polish=polish
    )


def choose_code_solver(f, g, solver="auto", rtol=None):
    """The Z-solver that ``solver`` (one of :data:`CODE_SOLVERS`) means for the problem ``(f, g)``.

    ``"auto"`` takes the homotopy (``"lars"``) where it is measured faster
    and can run: NumPy arrays, numba importable, a separable problem (no
    graph term) with ``λ_s > 0``, and a condition number ``L/μ`` of at least
    200 (barely strongly convex: ``λ_e`` small against ``λ_d ‖D‖²``, where
    the codes are sparse and FISTA crawls), or of at least 60 for a solve to
    ``rtol ≤ 1e-6`` (such as ``transform``'s, where FISTA needs more
    iterations). Elsewhere it takes FISTA, which
    is also the path of CuPy, array-api-strict and a copy of eaelib without
    numba. An explicit ``"lars"`` that cannot run raises an error saying why.

    Parameters
    ----------
    f : Quadratic
        The smooth part of the Z-subproblem (:func:`code_problem`).
    g : L1Penalty
        Its ℓ1 term.
    solver : {"auto", "lars", "fista"}
        The solver asked for.
    rtol : float, optional
        The accuracy the solve is asked for; None for an inexact solve (learning's Z-steps).

    Returns
    -------
    {"lars", "fista"}
        The solver to run.

    Raises
    ------
    ValueError
        If ``solver`` is none of :data:`CODE_SOLVERS`, or is ``"lars"`` and the homotopy cannot run.
    """
    if solver not in CODE_SOLVERS:
        raise ValueError(f"code_solver must be one of {CODE_SOLVERS}, got {solver!r}")
    if solver == "fista":
        return "fista"
    reason = _homotopy_unsupported(f, g)
    if solver == "lars":
        if reason:
            raise ValueError(f"code_solver='lars' cannot solve this problem: {reason}")
        return "lars"
    if reason or g.weight == 0:
        return "fista"
    accurate = rtol is not None and 0 <= rtol <= 1e-6
    condition = _LARS_CONDITION_ACCURATE if accurate else _LARS_CONDITION
    return "lars" if f.lipschitz >= condition * f.strong_convexity else "fista"


def _homotopy_unsupported(f, g):
    """Why the homotopy cannot solve ``(f, g)``, or ``None``."""
    try:  # imports numba: only when codes are solved
        from .homotopy import AVAILABLE, UNAVAILABLE_REASON
    except ModuleNotFoundError as exc:  # a copy of eaelib's core without homotopy.py
        if exc.name != f"{__package__}.homotopy":
            raise
        return "it is in eaelib/homotopy.py, which this copy of eaelib lacks (and it needs numba)"
    if not AVAILABLE:
        return UNAVAILABLE_REASON
    if not (f.separable and f.gram is not None and isinstance(g, L1Penalty)):
        return "it needs separable codes (no graph term) with an l1 penalty"
    if not array_api_compat.is_numpy_array(f.b):
        return f"it runs on NumPy arrays, and these are {type(f.b).__module__}'s (FISTA runs on every backend)"
    return None


def code_step(f, g, x0, *, solver="auto", rtol=1e-6, max_iter=100, criterion="gap", momentum="restart", **options):
    """Solve the Z-subproblem ``(f, g)`` from ``x0`` with ``solver`` (see :func:`choose_code_solver`).

    With the homotopy (:func:`eaelib.homotopy.lasso_gram`) every column is
    solved exactly and certified in the kernel by its duality gap (in
    float64). A column where the result would not lower the objective below
    ``x0``'s keeps ``x0``, so the step is monotone to the last bit; ``x0`` may
    be None when there is no start to improve on (a new batch's codes). Where a
    column's gap is above ``rtol`` times its objective (rounding on dependent
    atoms; never seen on image patches), in float32 (whose certificate must
    be computed in float32), or with ``criterion="kkt"``, FISTA continues from
    the homotopy's point: it certifies every column and refines those that
    need it. The history then reads: ``x0``, the homotopy's point, FISTA's
    iterations.

    Parameters
    ----------
    f : Quadratic
        The smooth part of the Z-subproblem (:func:`code_problem`).
    g : L1Penalty
        Its ℓ1 term.
    x0 : array of shape (m, N), or None
        The start, or None for none.
    solver : {"auto", "lars", "fista"}
        The solver (:func:`choose_code_solver`).
    rtol : float
        Tolerance of the certificate, relative to each column's objective.
    max_iter : int
        Most FISTA iterations.
    criterion : {"gap", "kkt"}
        The certificate.
    momentum : {"monotone", "restart", "strong", "fista", "ista"}
        FISTA's momentum.
    **options
        ``atol``, ``polish`` and ``chunk``, passed to :func:`eaelib.fista.fista`.

    Returns
    -------
    FistaResult
        ``solver`` says which solver ran.
    """
    fista_options = dict(rtol=rtol, max_iter=max_iter, criterion=criterion, momentum=momentum, **options)
    xp = get_namespace(f.b)
    # An atol makes the step as inexact as the caller needs (learning's Z-steps): rtol is then no accuracy asked.
    accuracy = rtol if options.get("atol") is None else None
    if choose_code_solver(f, g, solver, accuracy) == "fista":
        x0 = xp.zeros(f.b.shape, dtype=f.b.dtype, device=f.b.device) if x0 is None else x0
        return fista(f, g, x0, **fista_options)
    from .homotopy import lasso_gram

    exact = lasso_gram(
        to_numpy(f.gram), to_numpy(f.b), g.weight, const=to_numpy(f.c), strong_convexity=f.strong_convexity
    )
    z = from_numpy(xp, exact.Z, dtype=f.b.dtype, device=f.b.device)
    gap = math.fsum(exact.gap)
    if x0 is None:  # nothing to improve on: the kernel's values
        objective = math.fsum(exact.objective)
        history, kept_all = None, True
        at_z = (objective - g.value(z), g.value(z), objective)
    else:
        ax0, az = f.apply(x0), f.apply(z)
        df, dg = f.changes(x0, ax0, z, az), g.changes(x0, z, True)
        better = (df + dg) <= 0
        z = xp.where(better[None, :], z, x0)
        zero = xp.zeros_like(df)
        df, dg = xp.where(better, df, zero), xp.where(better, dg, zero)
        smooth, penalty = f.value(x0, ax0), g.value(x0)
        history = (smooth, penalty, smooth + penalty, certificate(f, g, x0, criterion))
        # The homotopy's point as reached by these changes, each ≤ 0: monotone to the last bit.
        total = lambda a: float(xp.sum(a, dtype=xp.float64))
        at_z = (smooth + total(df), penalty + total(dg), history[2] + total(df + dg))
        kept_all = bool(xp.all(better))
    tolerance = max(rtol, 1e-12) * np.abs(exact.objective)
    certified = (
        criterion == "gap"
        and f.b.dtype == xp.float64
        and kept_all
        and (bool(np.all(exact.gap <= tolerance)) or (options.get("atol") is not None and gap <= options["atol"]))
    )
    if certified:
        result = FistaResult(z, 1, True, [at_z[0]], [at_z[1]], [at_z[2]], [gap], criterion, "converged")
    else:
        result = fista(f, g, z, **fista_options)
        result.n_iter += 1
        # FISTA's history from z, moved to start where the changes above put it: rounding is monotone, so
        # a shift keeps the order, and an offset rounded down keeps the first entry at most there.
        for values, value in zip((result.smooth, result.penalty, result.objective), at_z, strict=True):
            offset = value - values[0]
            while values[0] + offset > value:
                offset = math.nextafter(offset, -math.inf)
            values[:] = [v + offset for v in values]
    if history is not None:
        for values, value in zip(
            (result.smooth, result.penalty, result.objective, result.certificate), history, strict=True
        ):
            values.insert(0, value)
    result.solver = "lars"
    return result


def newton_every(f):
    """How often a Z-step takes a Newton step on the support (``polish`` of :func:`~eaelib.fista.fista`).

    Every 20th step when the problem is barely strongly convex (``μ < L/100``,
    e.g. ``λ_e = 0``), never otherwise: two tuned constants. Measured on
    Barbara (m = 200, N = 2726), solving to a KKT residual of 1e-6 λ_s, the
    Newton steps cut the iterations four-fold where ``μ < L/100`` (519 → 140
    from the previous codes, 566 → 220 from zeros); with ``λ_e = 10`` (L/μ
    about 90) FISTA needs ~75 iterations and the codes are too dense for the
    small systems to pay. :func:`solve_codes` (and so ``transform``) takes
    this value by default; :func:`eaelib.learn` only in the endgame, once a
    Z-step's target is within ``rtol`` of the energy: from warm starts, its
    looser Z-steps took as many iterations with them as without.

    Parameters
    ----------
    f : Quadratic
        The smooth part of the Z-subproblem (:func:`code_problem`).

    Returns
    -------
    int
        20, or 0 (never) when ``f`` is not separable with its Gram matrix or ``μ ≥ L/100``.
    """
    weak = f.separable and f.gram is not None and f.strong_convexity < 1e-2 * f.lipschitz
    return 20 if weak else 0


def solve_dictionary(X, Z, D0, *, lambda_d, rtol=1e-9, max_iter=None, solver="dual", multipliers=None):
    """Solve the D-subproblem from the feasible ``D0`` to a duality gap of ``rtol`` times its value.

    ``solver="dual"`` (default) is Newton's method on the Lagrange dual
    (:func:`eaelib.dual.solve_ball_least_squares`; ``max_iter`` 200 by
    default, ``multipliers`` its warm start), ``"fista"`` is
    :func:`eaelib.fista.fista` stopped on the Frank–Wolfe gap (``max_iter``
    100 by default), for comparison.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes.
    D0 : array, shape (n, m)
        Feasible start: every column in the unit ball.
    lambda_d : float
        Weight of the data term.
    rtol : float
        Tolerance on the duality gap, relative to the objective.
    max_iter : int, optional
        Most iterations; 200 for ``"dual"``, 100 for ``"fista"`` by default.
    solver : {"dual", "fista"}
        The solver.
    multipliers : array, shape (m,), optional
        Starting Lagrange multipliers of ``"dual"`` (``DualResult.multipliers`` of a previous solve).

    Returns
    -------
    DualResult or FistaResult
        The dictionary ``x`` and the solve's histories.
    """
    statistics = dictionary_statistics(X, Z)
    return solve_ball(
        *statistics, D0, weight=lambda_d, rtol=rtol, max_iter=max_iter, solver=solver, multipliers=multipliers
    )


def solve_encoder(X, Z, E0, *, lambda_e, rtol=1e-9, max_iter=None, solver="dual", multipliers=None):
    """Solve the E-subproblem from the feasible ``E0``; the options are those of :func:`solve_dictionary`.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z : array, shape (m, N)
        Codes.
    E0 : array, shape (m, n)
        Feasible start: every column in the unit ball.
    lambda_e : float
        Weight of the encoder term.
    rtol : float
        Tolerance on the duality gap, relative to the objective.
    max_iter : int, optional
        Most iterations; 200 for ``"dual"``, 100 for ``"fista"`` by default.
    solver : {"dual", "fista"}
        The solver.
    multipliers : array, shape (n,), optional
        Starting Lagrange multipliers of ``"dual"`` (``DualResult.multipliers`` of a previous solve).

    Returns
    -------
    DualResult or FistaResult
        The encoder ``x`` and the solve's histories.
    """
    statistics = encoder_statistics(X, Z)
    return solve_ball(
        *statistics, E0, weight=lambda_e, rtol=rtol, max_iter=max_iter, solver=solver, multipliers=multipliers
    )


def solve_ball(gram, b, c, W0, *, weight, rtol=1e-9, max_iter=None, solver="dual", multipliers=None):
    """Minimize ``weight/2 (tr(W G Wᵀ) − 2tr(W Bᵀ) + c)`` over unit-ball columns with ``solver``.

    Parameters
    ----------
    gram : array, shape (q, q)
        ``G``, symmetric positive semi-definite.
    b : array, shape (p, q)
        ``B``.
    c : float
        The constant that makes the objective the energy term.
    W0 : array, shape (p, q)
        Feasible start: every column in the unit ball.
    weight : float
        ``λ_d`` or ``λ_e``.
    rtol : float
        Tolerance on the duality gap, relative to the objective.
    max_iter : int, optional
        Most iterations; 200 for ``"dual"``, 100 for ``"fista"`` by default.
    solver : {"dual", "fista"}
        Newton's method on the Lagrange dual (:func:`eaelib.dual.solve_ball_least_squares`), or
        :func:`eaelib.fista.fista` on the Frank–Wolfe gap.
    multipliers : array, shape (q,), optional
        Starting Lagrange multipliers of ``"dual"``.

    Returns
    -------
    DualResult or FistaResult
        The solution ``x`` and the solve's histories.

    Raises
    ------
    ValueError
        If ``solver`` is neither.
    """
    if solver == "dual":
        max_iter = 200 if max_iter is None else max_iter
        return solve_ball_least_squares(
            gram, b, c, W0, weight=weight, multipliers=multipliers, rtol=rtol, max_iter=max_iter
        )
    if solver == "fista":
        f, g = _ball_problem(gram, b, c, weight)
        return fista(f, g, W0, rtol=rtol, max_iter=100 if max_iter is None else max_iter, momentum="restart")
    raise ValueError(f"solver must be one of {BALL_SOLVERS}, got {solver!r}")


#: The energy's terms, as :func:`energy_terms` names them, and their sum.
ENERGY_TERMS = ("data", "encoder", "sparsity", "graph", "total")


def energy_terms(X, Z, D, E, *, lambda_d, lambda_e, lambda_s, lambda_g=0.0, laplacian=None):
    """The energy and each of its terms, evaluated directly (not from Gram products).

    Parameters
    ----------
    X, Z, D, E : array
        Data (n × N), codes (m × N), dictionary (n × m) and encoder (m × n).
    lambda_d, lambda_e, lambda_s, lambda_g : float
        Weights of the energy terms.
    laplacian : GraphLaplacian, optional
        Needed when ``lambda_g > 0``.

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
    """Largest excess of a column norm of ``D`` or ``E`` over 1 (≤ 0 when feasible).

    Parameters
    ----------
    D : array, shape (n, m)
        Dictionary.
    E : array, shape (m, n)
        Encoder.

    Returns
    -------
    float
        The largest column norm of either, minus 1; −1 when both have no columns.
    """
    xp = get_namespace(D, E)
    norms = [xp.max(xp.linalg.vector_norm(M, axis=0)) for M in (D, E) if M.shape[1] > 0]
    return max((float(v) for v in norms), default=0.0) - 1.0


# Exact codes: KKT residual ≤ 1e-6 λ_s, from the encoder's prediction EX (measured in bench/: fewer
# iterations than from zeros), with restarted momentum.
EXACT_RTOL = 1e-6
_EXACT_START = "encoder"
_EXACT_MOMENTUM = "strong"
# Under a progress bar, exact codes are solved this many samples at a time, so that the bar moves (a photo's
# overlapping patches take minutes); a multiple of the 1024 columns the solvers take at a time.
EXACT_CHUNK = 8192


def exact_codes(
    X,
    D,
    E,
    *,
    lambda_d,
    lambda_e,
    lambda_s,
    rtol=EXACT_RTOL,
    max_iter,
    solver="auto",
    progress=False,
    caller="exact_codes",
):
    """The codes of ``X`` (samples as columns) that solve the Z-subproblem, each certified by its KKT residual.

    Parameters
    ----------
    X : array, shape (n_features, n_samples)
        Samples as columns.
    D, E : arrays
        Dictionary (n_features × n_atoms) and encoder (n_atoms × n_features).
    lambda_d, lambda_e, lambda_s : float
        The weights of the energy's terms.
    rtol : float, default=EXACT_RTOL
        Every sample's KKT residual at most ``rtol`` times ``lambda_s``; 0 as accurately as the arithmetic
        allows.
    max_iter : int
        Most FISTA iterations (with the homotopy, FISTA only certifies the exact codes).
    solver : {"auto", "lars", "fista"}, default="auto"
        See :func:`code_step`.
    progress : bool, default=False
        Solve :data:`EXACT_CHUNK` samples at a time under a progress bar (needs tqdm), when there are more.
    caller : str, default="exact_codes"
        Who asked, as the warning names it (the estimator's ``transform``).

    Returns
    -------
    array, shape (n_atoms, n_samples)
        The codes, started from the encoder's prediction ``EX``.

    Warns
    -----
    ConvergenceWarning
        When a solve stops at ``max_iter`` before its tolerance: the largest residual left, and what to raise.
    """
    options = dict(rtol=rtol, max_iter=max_iter, criterion="kkt", momentum=_EXACT_MOMENTUM, solver=solver)
    lambdas = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    columns = chunks(X.shape[1], EXACT_CHUNK, show=progress, desc="exact codes", unit="sample")
    results = [solve_codes(X[:, part], D, E, _EXACT_START, **lambdas, **options) for part in columns]
    unconverged = [result for result in results if not result.converged]
    if unconverged:
        worst = max(unconverged, key=lambda r: r.certificate[-1])
        warnings.warn(
            f"{caller} stopped ({worst.status}) after {worst.n_iter} iterations with a KKT residual of "
            f"{worst.certificate[-1]:.3g} (tolerance {rtol:g} × lambda_s); raise max_iter or rtol",
            ConvergenceWarning,
            stacklevel=3,
        )
    codes = [result.x for result in results]
    return codes[0] if len(codes) == 1 else get_namespace(X).concat(codes, axis=1)
