"""Accelerated proximal gradient for "quadratic + simple term" problems, stopped on a certificate.

Each subproblem of the energy auto-encoder is *a quadratic plus a simple
non-smooth term*::

    minimize  F(x) = ½⟨x, A x⟩ − ⟨b, x⟩ + c  +  g(x)

with ``A`` linear, symmetric and positive semi-definite. :func:`fista` solves
it by accelerated proximal gradient (Beck and Teboulle, 2009). Because ``A``
is linear, ``A y`` at the extrapolated point is the same combination of the
``A x`` already computed: every iteration costs a single application of ``A``.

Three things make its answers trustworthy:

* **A certificate stops it**, not an iteration count: a duality gap (an upper
  bound on ``F(x) − min F``) or the KKT residual (the distance from ``0`` to
  the subdifferential), each computed from the gradient ``A x − b`` it already
  has. Reaching ``max_iter`` first leaves ``converged`` False.
* **Changes are computed without cancellation**: ``f(z) − f(x) = ⟨z − x,
  ½(A z + A x) − b⟩`` never forms ``c``, which can be far larger than the
  change (in float32 the difference of two objectives is mostly rounding).
* **The monotone variants are monotone to the last bit**: the history adds the
  accepted changes, each ≤ 0, and rounded addition of a non-positive number
  never increases a sum.

When the problem is *separable by columns* (``A`` acts on each column alone,
as for the codes without the graph term), every column is its own problem,
with its own acceptance, momentum and stop: a column's solution does not
depend on which other columns share the batch, and converged columns leave
the working arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._array import get_namespace

Array = Any

#: Momentum schemes of :func:`fista`. ``"monotone"``: Beck and Teboulle's
#: MFISTA (a rejected step keeps ``x`` but keeps the momentum);
#: ``"restart"``: monotone, and a rejected step restarts the momentum of its
#: block (O'Donoghue and Candès, 2015); ``"strong"``: the constant momentum
#: ``(√L − √μ)/(√L + √μ)`` of a ``μ``-strongly convex problem, restarted on
#: rejection (``"restart"`` when ``μ = 0``); ``"fista"``: plain FISTA, which
#: is *not* monotone; ``"ista"``: no momentum (proximal gradient).
MOMENTA = ("monotone", "restart", "strong", "fista", "ista")
#: Certificates :func:`fista` can stop on.
CRITERIA = ("gap", "kkt")

# Rounding floor of a certificate, in units of eps times the size of what it is computed from (fista's
# docstring, rtol, states it: keep the two together). On
# Barbara's patches in float32 (m = 200), one gradient entry was off by at most 0.73 eps (L‖x‖₂ + ‖b‖∞)
# (median 0.31), and ⟨x, ∇f⟩ by at most 0.52 of that times ‖x‖₂: rounding errors add up like a random
# walk, not like the worst case (‖x‖₁ would overstate them 10-fold), hence ‖x‖₂ below.
_FLOOR = 2.0
# A block whose steps all fail to lower its objective this many times in a row has stalled at
# rounding. Only with restarts: after one, the next step is a proximal gradient step, which lowers
# the objective unless at its minimum; MFISTA can legitimately reject many steps in a row.
_STALL = 20


@dataclass(frozen=True)
class Quadratic:
    """Smooth part ``f(x) = ½⟨x, A x⟩ − ⟨b, x⟩ + c`` of a subproblem.

    Parameters
    ----------
    apply : callable
        ``x -> A x`` for a symmetric positive semi-definite linear map ``A``.
    b : array
        Linear term, same shape as ``x``.
    c : float or array
        Constant, so that ``f`` is the true value of the energy terms; for a
        separable problem, one constant per column (shape ``(N,)``). ``f``
        must be a sum of squares (``f ≥ 0``), as the energy terms are: the
        duality gap of the ℓ1 problems relies on it.
    lipschitz : float
        Largest eigenvalue of ``A``: the Lipschitz constant of ``∇f = A x − b``.
    separable : bool
        Whether ``A`` acts on each column alone, making each column an
        independent problem.
    strong_convexity : float
        A lower bound ``μ ≥ 0`` on the smallest eigenvalue of ``A``.
    gram : array, optional
        For a separable problem, the matrix ``G`` with ``A x = G x``, for
        solvers that need it explicitly.
    """

    apply: Callable[[Array], Array]
    b: Array
    c: Any
    lipschitz: float
    separable: bool = False
    strong_convexity: float = 0.0
    gram: Any = None

    def values(self, x, ax):
        """``f`` per independent block, given ``ax = A x``.

        Parameters
        ----------
        x : array
            The point, shaped like ``b``.
        ax : array
            ``A x``, already computed by the caller.

        Returns
        -------
        array, shape (N,) or (1,)
            ``f`` of every column if the problem is separable, else its one value.
        """
        w = 0.5 * ax
        w -= self.b
        w *= x
        return _per_block(get_namespace(x), w, self.separable) + self.c

    def value(self, x, ax):
        """``f(x)``, given ``ax = A x``: the values of :meth:`values` summed.

        Parameters
        ----------
        x : array
            The point, shaped like ``b``.
        ax : array
            ``A x``, already computed by the caller.

        Returns
        -------
        float
            ``f(x)``, summed in float64.
        """
        return _total(get_namespace(x), self.values(x, ax))

    def changes(self, x, ax, z, az):
        """``f(z) − f(x)`` per block, as ``⟨z − x, ½(A z + A x) − b⟩``: no cancellation against ``c``.

        Parameters
        ----------
        x : array
            The current point, shaped like ``b``.
        ax : array
            ``A x``.
        z : array
            The new point, shaped like ``b``.
        az : array
            ``A z``.

        Returns
        -------
        array, shape (N,) or (1,)
            The change of every column if the problem is separable, else of the whole.
        """
        w = az + ax
        w *= 0.5
        w -= self.b
        w *= z - x
        return _per_block(get_namespace(x), w, self.separable)

    def take(self, indices):
        """The problem restricted to some of its columns (separable problems only).

        Parameters
        ----------
        indices : array of int
            The columns to keep, in the order to keep them.

        Returns
        -------
        Quadratic
            The same ``A``, with the columns ``indices`` of ``b`` and the entries ``indices`` of ``c``.

        Raises
        ------
        ValueError
            If the problem is not separable.
        """
        if not self.separable:
            raise ValueError("only a separable problem splits into columns")
        xp = get_namespace(self.b)
        b, c = xp.take(self.b, indices, axis=1), xp.take(self.c, indices)
        return Quadratic(self.apply, b, c, self.lipschitz, True, self.strong_convexity, self.gram)


class L1Penalty:
    """``g(x) = weight ‖x‖₁``, whose prox is soft-thresholding.

    Parameters
    ----------
    weight : float
        The weight ``λ ≥ 0`` of the ℓ1 norm.
    """

    def __init__(self, weight):
        self.weight = float(weight)

    def values(self, x, separable=False):
        """``g`` per block: per column if ``separable``, else one value.

        Parameters
        ----------
        x : array
            The point.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            ``weight ‖x[:, j]‖₁`` for every column ``j``, or ``weight ‖x‖₁``.
        """
        xp = get_namespace(x)
        return self.weight * _per_block(xp, xp.abs(x), separable)

    def value(self, x):
        """``g(x) = weight ‖x‖₁``, as a float.

        Parameters
        ----------
        x : array
            The point.

        Returns
        -------
        float
            ``weight`` times the sum of the absolute values of ``x``.
        """
        xp = get_namespace(x)
        return self.weight * float(xp.sum(xp.abs(x)))

    def changes(self, x, z, separable=False):
        """``g(z) − g(x)`` per block, summed entry by entry: two ``λ‖·‖₁`` of similar size would cancel.

        Parameters
        ----------
        x, z : array
            The current and the new point.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            The change of every column, or of the whole.
        """
        xp = get_namespace(x)
        return self.weight * _per_block(xp, xp.abs(z) - xp.abs(x), separable)

    def prox(self, x, step):
        """Proximal operator of ``step · g``: soft-thresholding by ``step · weight``.

        Parameters
        ----------
        x : array
            The point.
        step : float
            The step size (``1/L`` in :func:`fista`).

        Returns
        -------
        array
            ``x`` with every entry shrunk towards zero by ``step · weight``.
        """
        return soft_threshold(x, self.weight * step)

    def kkt(self, x, grad, separable=False):
        """Largest entry of the least-norm element of ``∇f + ∂g`` per block (0 at the minimizer).

        Parameters
        ----------
        x : array
            The point.
        grad : array
            ``∇f(x) = A x − b``.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            The KKT residual of every column, or of the whole.
        """
        xp = get_namespace(x)
        # x_i = 0: |∇f_i| ≤ λ; x_i ≠ 0: ∇f_i = −λ sign(x_i).
        return _per_block(xp, xp.abs(self._least_norm_subgradient(x, grad)), separable, xp.max)

    def gap(self, x, grad, f_values, strong_convexity, separable=False):
        """Duality gap per block: an upper bound on ``F(x) − min F``, with no cancellation against ``c``.

        Writing ``f = ½‖Kx − y‖²`` (any sum of squares), the dual point
        ``θ = s (y − Kx)`` with ``s = min(1, λ/‖∇f‖_∞)`` is feasible, and
        ``F(x) − D(θ) = λ‖x‖₁ + s⟨x, ∇f⟩ + (1 − s)² f(x)``. The last term is
        the only one that depends on ``c``, and vanishes as ``s → 1``. When
        ``f`` is ``μ``-strongly convex, ``F(x) − min F ≤ ‖v‖²/(2μ)`` for the
        least-norm subgradient ``v``, which is far tighter when one entry of
        the gradient is far off (``s`` far below 1): the smaller bound is used.

        Parameters
        ----------
        x : array
            The point.
        grad : array
            ``∇f(x) = A x − b``.
        f_values : array, shape (N,) or (1,)
            ``f(x)`` per block (:meth:`Quadratic.values`).
        strong_convexity : float
            A lower bound ``μ ≥ 0`` on the smallest eigenvalue of ``A``; 0 if unknown.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            The duality gap of every column, or of the whole; never negative.
        """
        xp = get_namespace(x)
        lam = self.weight
        bounds = []
        if lam > 0 or strong_convexity == 0:
            x_grad = _per_block(xp, x * grad, separable)
            grad_max = _per_block(xp, xp.abs(grad), separable, xp.max)
            s = xp.where(grad_max > lam, lam / xp.where(grad_max > lam, grad_max, 1.0), 1.0)
            l1 = _per_block(xp, xp.abs(x), separable)
            # With λ = 0 (s = 0) this is loose by min f: only a bound.
            bounds.append(lam * l1 + s * x_grad + (1.0 - s) ** 2 * f_values)
        if strong_convexity > 0:
            v = self._least_norm_subgradient(x, grad)
            bounds.append(_per_block(xp, v * v, separable) / (2 * strong_convexity))
        gap = bounds[0] if len(bounds) == 1 else xp.minimum(*bounds)
        return xp.clip(gap, 0.0, None)

    def _least_norm_subgradient(self, x, grad):
        xp = get_namespace(x)
        lam = self.weight
        off = xp.sign(grad) * xp.clip(xp.abs(grad) - lam, 0.0, None)  # x_i = 0: the excess over λ
        return xp.where(x == 0, off, grad + lam * xp.sign(x))

    def dual_size(self, x, separable=False):
        """The ℓ2 size of what the gap pairs with ``∇f`` beside ``x``: none, so zero.

        The rounding floor of :func:`fista`'s certificate multiplies the error of the gradient by
        ``‖x‖₂`` plus this size; the ℓ1 gap pairs the gradient with ``x`` alone.

        Parameters
        ----------
        x : array
            The point.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            Zeros, in the dtype and on the device of ``x``.
        """
        xp = get_namespace(x)
        return xp.zeros(self.values(x, separable).shape, dtype=x.dtype, device=x.device)


class UnitColumns:
    """Indicator of ``{x : ‖x[:, j]‖₂ ≤ 1 for every column j}``; prox is the projection."""

    def values(self, x, separable=False):
        """The indicator per block: 0 where the columns are in the unit ball, ``inf`` where one is not.

        A column counts as inside up to a slack of 100 eps on its norm, the rounding of a projection.

        Parameters
        ----------
        x : array
            The point.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            0 or ``inf`` for every column, or for the whole.
        """
        xp = get_namespace(x)
        norms = xp.linalg.vector_norm(x, axis=0)
        slack = 100 * xp.finfo(x.dtype).eps
        outside = norms > 1 + slack
        if not separable:
            outside = xp.reshape(xp.any(outside), (1,))
        zero = xp.zeros(outside.shape, dtype=x.dtype, device=x.device)
        return xp.where(outside, xp.asarray(math.inf, dtype=x.dtype, device=x.device), zero)

    def value(self, x):
        """The indicator of the whole ``x``, as a float.

        Parameters
        ----------
        x : array
            The point.

        Returns
        -------
        float
            0 if every column of ``x`` is in the unit ball, else ``inf``.
        """
        xp = get_namespace(x)
        return float(xp.sum(self.values(x)))

    def changes(self, x, z, separable=False):
        """``g(z) − g(x)`` per block: 0 between feasible points, ``inf`` if ``z`` is not.

        Parameters
        ----------
        x, z : array
            The current and the new point.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            The change of every column, or of the whole.
        """
        return self.values(z, separable) - self.values(x, separable)

    def prox(self, x, step):
        """Proximal operator of the indicator: the projection of every column onto the unit ball.

        Parameters
        ----------
        x : array
            The point.
        step : float
            The step size, which the projection does not depend on.

        Returns
        -------
        array
            :func:`project_columns` of ``x``.
        """
        return project_columns(x)

    def kkt(self, x, grad, separable=False):
        """Largest column residual ``‖∇f_k + ν_k x_k‖`` with the best multiplier ``ν_k ≥ 0``.

        The multiplier of a column inside the ball is 0.

        Parameters
        ----------
        x : array
            The point.
        grad : array
            ``∇f(x) = A x − b``.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            The residual of every column, or the largest of them.
        """
        xp = get_namespace(x)
        sq = xp.sum(x * x, axis=0)
        on_sphere = sq >= 1 - 1e3 * xp.finfo(x.dtype).eps
        mu = xp.clip(-xp.sum(grad * x, axis=0), 0.0, None) / xp.where(on_sphere, sq, 1.0)
        residual = grad + xp.where(on_sphere, mu, 0.0) * x
        return _per_block(xp, xp.linalg.vector_norm(residual, axis=0), separable, xp.max)

    def gap(self, x, grad, f_values, strong_convexity, separable=False):
        """Frank–Wolfe gap ``⟨∇f, x⟩ + Σ_k ‖∇f_k‖ = max over feasible v of ⟨∇f, x − v⟩ ≥ F(x) − min F``.

        Parameters
        ----------
        x : array
            The point, feasible.
        grad : array
            ``∇f(x) = A x − b``.
        f_values : array, shape (N,) or (1,)
            ``f(x)`` per block; unused, here for the same signature as :meth:`L1Penalty.gap`.
        strong_convexity : float
            Unused, here for the same signature as :meth:`L1Penalty.gap`.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            The gap of every column, or of the whole; never negative.
        """
        xp = get_namespace(x)
        per_column = xp.sum(grad * x, axis=0) + xp.linalg.vector_norm(grad, axis=0)
        return xp.clip(_per_block(xp, per_column, separable), 0.0, None)

    def dual_size(self, x, separable=False):
        """The ℓ2 size of the unit vectors ``∇f_k/‖∇f_k‖`` the gap pairs with ``∇f``: ``√columns``.

        Parameters
        ----------
        x : array
            The point.
        separable : bool
            Whether every column is its own block.

        Returns
        -------
        array, shape (N,) or (1,)
            1 for every column of a separable problem, else the square root of the number of columns.
        """
        xp = get_namespace(x)
        size = math.sqrt(float(x.shape[1] if not separable else 1))
        shape = (x.shape[1],) if separable else (1,)
        return xp.full(shape, size, dtype=x.dtype, device=x.device)


def soft_threshold(x, threshold):
    """Prox of ``threshold ‖·‖₁``: shrink every entry towards zero by ``threshold``.

    Parameters
    ----------
    x : array
        Any shape.
    threshold : float or array
        How far to shrink, ``≥ 0``; an array broadcasts against ``x``.

    Returns
    -------
    array
        ``sign(x) max(|x| − threshold, 0)``, shaped like ``x``.
    """
    xp = get_namespace(x)
    return x - xp.clip(x, -threshold, threshold)


def project_columns(x):
    """Project every column of ``x`` onto the unit ℓ2 ball.

    Parameters
    ----------
    x : array, shape (n, m)
        The columns to project.

    Returns
    -------
    array, shape (n, m)
        Columns of norm above 1 divided by their norm; the others unchanged.
    """
    xp = get_namespace(x)
    norms = xp.linalg.vector_norm(x, axis=0, keepdims=True)
    return x / xp.maximum(norms, xp.asarray(1.0, dtype=x.dtype, device=x.device))


@dataclass
class FistaResult:
    """Outcome of :func:`fista`.

    ``smooth[k]``, ``penalty[k]`` and ``objective[k]`` are ``f``, ``g`` and
    ``f + g`` at the iterate kept after iteration ``k`` (``k = 0`` is the
    start); ``certificate[k]`` is the stopping certificate there. For the
    monotone momenta ``objective`` never increases, to the last bit;
    ``smooth`` and ``penalty`` alone may.

    Parameters
    ----------
    x : array
        The solution: the last iterate kept.
    n_iter : int
        Iterations run (applications of ``A``): proximal steps, and the Newton
        steps on the support of ``polish``.
    converged : bool
        Whether ``status`` is ``"converged"``.
    smooth, penalty, objective : list of float
        ``f``, ``g`` and ``f + g`` after every iteration, the start first.
    certificate : list of float
        The certificate after every iteration: the duality gap summed over
        blocks (``criterion="gap"``) or the largest KKT residual (``"kkt"``).
    criterion : {"gap", "kkt"}
        The certificate it stopped on.
    status : {"converged", "max_iter", "stalled"}
        Why it stopped: every block's certificate met its tolerance (or the
        rounding floor of its arithmetic), ``max_iter`` was reached, or some
        block could make no step at all while its certificate stayed above
        tolerance (rounding decides there).
    solver : {"fista", "lars"}
        ``"lars"`` when :func:`eaelib.subproblems.code_step` solved by the
        homotopy first (then entry 1 of the histories is the homotopy's point).
    """

    x: Array
    n_iter: int
    converged: bool
    smooth: list = field(default_factory=list)
    penalty: list = field(default_factory=list)
    objective: list = field(default_factory=list)
    certificate: list = field(default_factory=list)
    criterion: str = "gap"
    status: str = "max_iter"
    solver: str = "fista"


def fista(f, g, x0, *, rtol=1e-6, max_iter=100, criterion="gap", momentum="restart", atol=None, polish=0, chunk=None):
    """Minimize ``f(x) + g(x)`` by accelerated proximal gradient from ``x0``, to a certificate.

    Parameters
    ----------
    f : Quadratic
        Smooth part, with its Lipschitz constant.
    g : L1Penalty or UnitColumns
        Non-smooth part: any object with ``values``, ``changes``, ``prox``, ``gap``, ``kkt`` and
        ``dual_size``.
    x0 : array
        Warm start. With a monotone momentum the objective never rises above ``F(x0)``.
    rtol : float
        A block (a column of a separable problem, else the whole problem)
        stops when its certificate is at most ``rtol`` times its scale: its
        objective ``F`` for the duality gap, ``λ`` (or ``‖b‖_∞`` when ``λ = 0``
        or ``g`` is a constraint) for the KKT residual. A certificate can
        never be computed below the rounding error of its arithmetic; that
        floor also stops a block, so ``rtol=0`` means "as accurate as this
        precision allows". The floor: one entry of the gradient ``A x − b``
        is off by at most ``ε_∇ = 2 eps (L‖x‖₂ + ‖b‖_∞)`` (eps of the working
        dtype); the gap's floor is ``ε_∇ (‖x‖₂ + s) + 2 eps g(x)``, with ``s``
        0 for the ℓ1 term and, for the unit-ball constraint, 1 per column
        (separable) or the square root of the number of columns; the KKT
        residual's is ``ε_∇ + 2 eps λ``. The factor 2 is
        tuned: on Barbara's patches in float32 (m = 200) the worst gradient
        entry was off by 0.73 eps (L‖x‖₂ + ‖b‖_∞), the median one by 0.31,
        and rounding errors add up like a random walk, hence ``‖x‖₂`` (not
        ``‖x‖₁``). A negative ``rtol`` never stops before ``max_iter``.
    max_iter : int
        Most iterations (applications of ``A``), Newton steps on the support
        (``polish``) included.
    criterion : {"gap", "kkt"}
        The certificate: the duality gap bounds ``F(x) − min F`` (what the
        energy can still gain), the KKT residual measures stationarity entry
        by entry.
    momentum : {"monotone", "restart", "strong", "fista", "ista"}
        See :data:`MOMENTA`.
    atol : float, optional
        Also stop, converged, as soon as the certificate of the whole
        problem (the gaps summed over blocks, or the largest KKT residual) is
        at most ``atol``: what a caller needs of a subproblem is often a
        total, which the slowest blocks need not hold up.
    polish : int
        Every ``polish``-th step (0: never) is a Newton step on the support
        (:func:`eaelib.active_set.newton_on_support`) instead of a proximal
        one. From ``x``, the proximal gradient point ``v = x − ∇f(x)/L`` gives
        the support ``S = {i : |v_i| > λ/L}`` and the signs ``σ = sign(v_S)``,
        and the step solves ``G_SS z_S = b_S − λσ_S`` (0 off ``S``): exact once
        the support and signs are right. Columns whose support has more than
        ``(3m²)^{1/3}`` entries are left as they are. The step is kept only
        where it lowers the objective, and restarts the momentum there; it
        counts as an iteration. :func:`eaelib.subproblems.newton_every`
        chooses the value for the Z-subproblem. Needs a separable ``f`` with
        its ``gram`` and an ``L1Penalty``.
    chunk : int, optional
        For a separable problem, solve ``chunk`` columns at a time, one block
        after the other (by default :data:`CHUNK` columns; 0: all at once).
        A block's working arrays then stay in the processor's cache through
        all its iterations, instead of streaming from memory at every one,
        and the solver's memory is a few blocks, not a few times ``x``. The
        result does not depend on the chunk: every column is its own problem.

    Returns
    -------
    FistaResult
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if momentum not in MOMENTA:
        raise ValueError(f"momentum must be one of {MOMENTA}, got {momentum!r}")
    if polish and not (f.separable and f.gram is not None and isinstance(g, L1Penalty)):
        raise ValueError("polish needs a separable quadratic with its gram matrix and an L1Penalty")
    options = dict(rtol=rtol, criterion=criterion, momentum=momentum, max_iter=max_iter, polish=polish)
    n_columns = x0.shape[1] if x0.ndim == 2 else 1
    chunk = CHUNK if chunk is None else chunk
    if not f.separable or chunk <= 0 or n_columns <= chunk:
        return _Solver(f, g, x0, rtol, criterion, momentum).run(max_iter, atol, polish)
    return _in_chunks(f, g, x0, chunk, atol, options)


#: Columns of a separable problem that :func:`fista` solves at a time (measured on Barbara: see chunk).
CHUNK = 1024


def _in_chunks(f, g, x0, chunk, atol, options):
    """:func:`fista` on blocks of ``chunk`` columns, merged into one :class:`FistaResult`.

    The histories add the blocks' values iteration by iteration (a block that
    stopped keeps its last values); an ``atol`` is shared out in proportion to
    the blocks' sizes, so the sum of their certificates stays within it.
    """
    xp = get_namespace(x0)
    N = x0.shape[1]
    parts = []
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        block = Quadratic(f.apply, f.b[:, start:stop], f.c[start:stop], f.lipschitz, True, f.strong_convexity, f.gram)
        share = None if atol is None else atol * (stop - start) / N
        solver = _Solver(block, g, x0[:, start:stop], options["rtol"], options["criterion"], options["momentum"])
        parts.append(solver.run(options["max_iter"], share, options["polish"]))
    length = max(len(p.objective) for p in parts)

    def merged(name, combine):
        return [combine(p.__dict__[name][min(k, len(p.objective) - 1)] for p in parts) for k in range(length)]

    statuses = {p.status for p in parts}
    status = next(s for s in ("max_iter", "stalled", "converged") if s in statuses)
    kkt = options["criterion"] == "kkt"
    return FistaResult(
        xp.concat([p.x for p in parts], axis=1),
        max(p.n_iter for p in parts),
        status == "converged",
        merged("smooth", math.fsum),
        merged("penalty", math.fsum),
        merged("objective", math.fsum),
        merged("certificate", max if kkt else math.fsum),
        options["criterion"],
        status,
    )


class _Solver:
    """The state of one :func:`fista` run, as named steps."""

    def __init__(self, f, g, x0, rtol, criterion, momentum):
        xp = self.xp = get_namespace(x0)
        self.f, self.g, self.rtol, self.criterion = f, g, rtol, criterion
        self.eps = float(xp.finfo(x0.dtype).eps)
        self.step = 1.0 / f.lipschitz if f.lipschitz > 0 else 1.0
        mu, lipschitz = f.strong_convexity, f.lipschitz
        if momentum == "strong" and not 0 < mu < lipschitz:
            momentum = "restart"
        self.momentum = momentum
        if momentum == "strong":
            self.beta_strong = (math.sqrt(lipschitz) - math.sqrt(mu)) / (math.sqrt(lipschitz) + math.sqrt(mu))
        self.monotone = momentum in ("monotone", "restart", "strong")
        self.stalled = False
        self.x, self.ax = x0, f.apply(x0)
        self.fx, self.gx = f.values(self.x, self.ax), g.values(self.x, f.separable)
        self.y, self.ay = self.x, self.ax
        blocks = self.fx.shape
        # Per block: momentum parameter, rejections in a row, and whether still iterating.
        self.t = xp.ones(blocks, dtype=xp.float64, device=x0.device)
        self.rejected = xp.zeros(blocks, dtype=xp.int32, device=x0.device)
        self.active = xp.ones(blocks, dtype=xp.bool, device=x0.device)
        self.b_max = _per_block(xp, xp.abs(f.b), f.separable, xp.max)
        self.done = _Retired(xp, x0.shape[1] if f.separable else 0, x0.device, criterion)
        self.cert, self.tol = self.certify()
        objective = _total(xp, self.fx) + _total(xp, self.gx)
        if not math.isfinite(objective):
            raise FloatingPointError(f"FISTA started from a point of objective {objective}")
        self.result = FistaResult(
            x0, 0, False, [_total(xp, self.fx)], [_total(xp, self.gx)], [objective], [self.aggregate()], criterion
        )

    # -- certificates -----------------------------------------------------------------

    def certify(self):
        """Certificate and its tolerance, per block, at the current iterate."""
        xp, f, g, sep = self.xp, self.f, self.g, self.f.separable
        grad = self.ax - f.b
        # Rounding error of one gradient entry: |(A x)_i| is at most L‖x‖₂, and b is subtracted.
        x_norm = xp.sqrt(_per_block(xp, self.x * self.x, sep))
        grad_error = _FLOOR * self.eps * (f.lipschitz * x_norm + self.b_max)
        if self.criterion == "kkt":
            cert = g.kkt(self.x, grad, sep)
            weight = getattr(g, "weight", 0.0)
            scale = xp.full(cert.shape, weight, dtype=cert.dtype, device=cert.device) if weight > 0 else self.b_max
            floor = grad_error + _FLOOR * self.eps * weight
        else:
            cert = g.gap(self.x, grad, self.fx, f.strong_convexity, sep)
            scale = xp.abs(self.fx + self.gx)
            floor = grad_error * (x_norm + g.dual_size(self.x, sep)) + _FLOOR * self.eps * self.gx
        if self.rtol < 0:
            return cert, xp.full(cert.shape, -1.0, dtype=cert.dtype, device=cert.device)
        return cert, xp.maximum(self.rtol * scale, floor)

    def aggregate(self):
        xp = self.xp
        if self.criterion == "kkt":
            return max(self.done.cert, float(xp.max(self.cert)) if self.cert.shape[0] else 0.0)
        return self.done.cert + _total(xp, self.cert)

    # -- one iteration ----------------------------------------------------------------

    def proximal_step(self):
        """``z = prox(y − ∇f(y)/L)`` and ``A z``."""
        v = self.ay - self.f.b
        v *= -self.step
        v += self.y
        z = self.g.prox(v, self.step)
        return z, self.f.apply(z)

    def combination_step(self, z, az, accept):
        """The next iterate ``x`` and extrapolated point ``y`` of every block."""
        xp, dtype = self.xp, self.x.dtype
        t_next = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * self.t * self.t))
        if self.momentum == "ista":
            beta = xp.zeros_like(self.t)
        elif self.momentum == "strong":
            beta = xp.full(self.t.shape, self.beta_strong, dtype=xp.float64, device=self.t.device)
        else:
            beta = (self.t - 1.0) / t_next
        if bool(xp.all(accept)):  # the usual step: y = z + β(z − x)
            beta = xp.astype(beta, dtype)
            self.y, self.ay = _extrapolate(z, self.x, beta), _extrapolate(az, self.ax, beta)
            self.x, self.ax, self.t = z, az, t_next
            return
        # Per block, y = x + coef·(z − x): accepted blocks extrapolate (coef = 1 + β); a rejected
        # block keeps x and, with "monotone", moves towards z (coef = θ = t/t_next, MFISTA), else
        # restarts its momentum (coef = 0); frozen blocks stay put.
        accepted = xp.astype(accept, xp.float64)
        rejected_coef = self.t / t_next if self.momentum == "monotone" else xp.zeros_like(self.t)
        coef = xp.where(self.active, accepted * (1.0 + beta) + (1.0 - accepted) * rejected_coef, 0.0)
        coef = xp.astype(coef, dtype)
        self.y, self.ay = self.x + coef * (z - self.x), self.ax + coef * (az - self.ax)
        self.x, self.ax = xp.where(accept, z, self.x), xp.where(accept, az, self.ax)
        if self.momentum == "monotone":
            self.t = t_next
        else:
            self.t = xp.where(accept | ~self.active, t_next, 1.0)

    def newton_step(self):
        """A Newton step on the support (see ``polish``), and its ``A z``."""
        from .active_set import newton_on_support

        f = self.f
        z = newton_on_support(f.gram, f.b, self.x, self.ax, self.g.weight, f.lipschitz, columns=self.active)
        return z, f.apply(z)

    def restart_where(self, z, az, accept):
        """Move accepted blocks to ``z`` with no momentum; the others keep their state."""
        xp = self.xp
        self.x, self.ax = xp.where(accept, z, self.x), xp.where(accept, az, self.ax)
        self.y, self.ay = xp.where(accept, z, self.y), xp.where(accept, az, self.ay)
        self.t = xp.where(accept, 1.0, self.t)

    def run(self, max_iter, atol=None, polish=0):
        xp, g, result = self.xp, self.g, self.result
        smooth, penalty, objective = result.smooth[0], result.penalty[0], result.objective[0]
        if self.rtol >= 0:
            self.active = self.cert > self.tol
        met_atol = atol is not None and result.certificate[0] <= atol
        if met_atol:
            self.active = xp.zeros_like(self.active)
        for k in range(1, max_iter + 1):
            if not bool(xp.any(self.active)):
                break
            newton = polish > 0 and k % polish == 0
            z, az = self.newton_step() if newton else self.proximal_step()
            df = self.f.changes(self.x, self.ax, z, az)
            dg = g.changes(self.x, z, self.f.separable)
            delta = df + dg
            if not bool(xp.all(xp.isfinite(delta))):
                raise FloatingPointError(f"FISTA produced a non-finite objective at iteration {k}")
            if newton:  # kept only where it lowers the objective; it says nothing about a stall
                accept = self.active & (delta < 0)
                self.restart_where(z, az, accept)
            else:
                accept = self.active & (delta <= 0) if self.monotone else self.active
                self.combination_step(z, az, accept)
            zero = xp.zeros_like(delta)
            df, dg, delta = (xp.where(accept, d, zero) for d in (df, dg, delta))
            self.fx, self.gx = self.fx + df, self.gx + dg
            # Rounded addition of a number ≤ 0 never increases: the monotone history is exactly so.
            smooth += _total(xp, df)
            penalty += _total(xp, dg)
            objective += _total(xp, delta)
            # Blocks that made no progress (rejected, or exactly no change) count towards a stall.
            progress = (accept & (delta < 0)) | ~self.active
            if not newton:
                self.rejected = xp.where(progress, 0, self.rejected + 1)
            self.cert, self.tol = self.certify()
            result.smooth.append(smooth)
            result.penalty.append(penalty)
            result.objective.append(objective)
            result.certificate.append(self.aggregate())
            result.n_iter = k
            if atol is not None and result.certificate[-1] <= atol:
                met_atol, self.active = True, xp.zeros_like(self.active)
                break
            if self.rtol >= 0:
                met = self.cert <= self.tol
                restarting = self.momentum in ("restart", "strong")
                stalled = (self.rejected >= _STALL) if restarting else xp.zeros_like(met)
                self.stalled = self.stalled or bool(xp.any(stalled & ~met))
                self.active = self.active & ~met & ~stalled
            self.retire_converged()
        if met_atol:
            result.status = "converged"
        elif bool(xp.any(self.active)):
            result.status = "max_iter"
        else:
            result.status = "stalled" if self.stalled else "converged"
        result.converged = result.status == "converged"
        result.x = self.done.assemble(self.x) if self.f.separable else self.x
        return result

    def retire_converged(self):
        """Columns of a separable problem that have stopped leave the working arrays."""
        xp = self.xp
        n_active = int(xp.sum(xp.astype(self.active, xp.int32)))
        if not self.f.separable or n_active > self.active.shape[0] // 2 or n_active == 0:
            return
        keep = self.done.retire(self.active, self.x, self.cert)
        self.f = self.f.take(keep)
        self.x, self.ax, self.y, self.ay = (xp.take(a, keep, axis=1) for a in (self.x, self.ax, self.y, self.ay))
        for name in ("fx", "gx", "t", "rejected", "cert", "tol", "b_max"):
            setattr(self, name, xp.take(getattr(self, name), keep))
        self.active = xp.ones(self.fx.shape, dtype=xp.bool, device=self.x.device)


def _per_block(xp, a, separable, reduce=None):
    """Reduce ``a`` per column if ``separable``, else to one value; shape ``(N,)`` or ``(1,)``."""
    reduce = xp.sum if reduce is None else reduce
    if separable:
        return reduce(a, axis=0)
    if a.size == 0:
        return xp.zeros((1,), dtype=a.dtype, device=a.device)
    return xp.reshape(reduce(a), (1,))


def _total(xp, values):
    """Sum of per-block values in float64, so that regrouping blocks cannot make a history wobble."""
    return float(xp.sum(values, dtype=xp.float64))


def _extrapolate(new, old, beta):
    """``new + β(new − old)`` with one temporary."""
    out = new - old
    out *= beta
    out += new
    return out


class _Retired:
    """The stopped columns of a separable problem, set aside until the end."""

    def __init__(self, xp, n_columns, device, criterion):
        self.xp, self.criterion = xp, criterion
        self.columns = xp.arange(n_columns, device=device)  # original index of each working column
        self.parts, self.part_columns = [], []
        self.cert = 0.0

    def retire(self, active, x, cert):
        """Set aside the inactive columns of ``x``; return the indices of the columns kept."""
        xp = self.xp
        (keep,), (leave,) = xp.nonzero(active), xp.nonzero(~active)
        self.parts.append(xp.take(x, leave, axis=1))
        self.part_columns.append(xp.take(self.columns, leave))
        left = xp.take(cert, leave)
        if self.criterion == "kkt":
            self.cert = max(self.cert, float(xp.max(left)))
        else:
            self.cert += _total(xp, left)
        self.columns = xp.take(self.columns, keep)
        return keep

    def assemble(self, x):
        """All columns, retired and working, in their original order."""
        if not self.parts:
            return x
        xp = self.xp
        order = xp.argsort(xp.concat([*self.part_columns, self.columns]))
        return xp.take(xp.concat([*self.parts, x], axis=1), order, axis=1)


def certificate(f, g, x, criterion="gap"):
    """The stopping certificate of :func:`fista` at ``x``, without iterating.

    Parameters
    ----------
    f : Quadratic
        Smooth part.
    g : L1Penalty or UnitColumns
        Non-smooth part.
    x : array
        The point, shaped like ``f.b``.
    criterion : {"gap", "kkt"}
        Which certificate.

    Returns
    -------
    float
        The duality gap summed over blocks (``criterion="gap"``: an upper
        bound on ``F(x) − min F``) or the largest KKT residual (``"kkt"``).

    Raises
    ------
    ValueError
        If ``criterion`` is neither.
    FloatingPointError
        If the objective at ``x`` is not finite.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    return _Solver(f, g, x, -1.0, criterion, "monotone").aggregate()
