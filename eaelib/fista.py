"""One accelerated proximal-gradient solver for the three subproblems.

Each subproblem of the energy auto-encoder is *a quadratic plus a simple
non-smooth term*::

    minimize  F(x) = ½⟨x, A x⟩ − ⟨b, x⟩ + c  +  g(x)

with ``A`` linear, symmetric and positive semi-definite. :func:`fista` solves
that with the monotone FISTA of Beck and Teboulle (2009). Because ``A`` is
linear, ``A y`` at the extrapolated point is the same combination of the
``A x`` already computed, so every iteration costs a single application of
``A`` and still yields the exact objective of each iterate.

When the problem is *separable by columns* (``A`` acts on each column alone,
as for the codes without the graph term), every column is its own problem:
it is accepted, extrapolated and stopped on its own objective, so a column's
solution does not depend on which other columns share the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._array import get_namespace

Array = Any


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
        separable problem, one constant per column (shape ``(N,)``).
    lipschitz : float
        Largest eigenvalue of ``A``: the Lipschitz constant of ``∇f = A x − b``.
    separable : bool
        Whether ``A`` acts on each column alone, making each column an
        independent problem.
    """

    apply: Callable[[Array], Array]
    b: Array
    c: Any
    lipschitz: float
    separable: bool = False

    def values(self, x, ax):
        """``f`` per independent block given ``ax = A x``: shape ``(N,)`` if separable, else ``(1,)``."""
        xp = get_namespace(x)
        w = 0.5 * ax
        w -= self.b
        w *= x
        return xp.reshape(xp.sum(w, axis=0 if self.separable else None) + self.c, (-1,))

    def value(self, x, ax):
        """``f(x)`` given ``ax = A x``, as a float."""
        xp = get_namespace(x)
        return float(xp.sum(self.values(x, ax)))

    def take(self, indices):
        """The problem restricted to the columns ``indices`` (separable problems only)."""
        if not self.separable:
            raise ValueError("only a separable problem splits into columns")
        xp = get_namespace(self.b)
        return Quadratic(self.apply, xp.take(self.b, indices, axis=1), xp.take(self.c, indices), self.lipschitz, True)


class L1Penalty:
    """``g(x) = weight ‖x‖₁``, whose prox is soft-thresholding."""

    def __init__(self, weight):
        self.weight = float(weight)

    def values(self, x, separable=False):
        """``g`` per block: per column if ``separable``, else one value."""
        xp = get_namespace(x)
        return xp.reshape(self.weight * xp.sum(xp.abs(x), axis=0 if separable else None), (-1,))

    def value(self, x):
        xp = get_namespace(x)
        return self.weight * float(xp.sum(xp.abs(x)))

    def prox(self, x, step):
        return soft_threshold(x, self.weight * step)


class UnitColumns:
    """Indicator of ``{x : ‖x[:, j]‖₂ ≤ 1 for every column j}``; prox is the projection."""

    def values(self, x, separable=False):
        xp = get_namespace(x)
        norms = xp.linalg.vector_norm(x, axis=0)
        slack = 100 * xp.finfo(x.dtype).eps
        outside = norms > 1 + slack
        if not separable:
            outside = xp.reshape(xp.any(outside), (1,))
        zero = xp.zeros(outside.shape, dtype=x.dtype, device=x.device)
        return xp.where(outside, xp.asarray(math.inf, dtype=x.dtype, device=x.device), zero)

    def value(self, x):
        xp = get_namespace(x)
        return float(xp.sum(self.values(x)))

    def prox(self, x, step):
        return project_columns(x)


def soft_threshold(x, threshold):
    """Prox of ``threshold ‖·‖₁``: shrink every entry towards zero by ``threshold``."""
    xp = get_namespace(x)
    return x - xp.clip(x, -threshold, threshold)


def project_columns(x):
    """Project every column of ``x`` onto the unit ℓ2 ball."""
    xp = get_namespace(x)
    norms = xp.linalg.vector_norm(x, axis=0, keepdims=True)
    return x / xp.maximum(norms, xp.asarray(1.0, dtype=x.dtype, device=x.device))


@dataclass
class FistaResult:
    """Outcome of :func:`fista`.

    ``smooth[k]`` and ``penalty[k]`` are ``f`` and ``g`` at the iterate kept
    after iteration ``k`` (``k = 0`` is the starting point). The objective of
    every block never increases; the totals, summed over blocks, never
    increase up to the rounding of that sum (a few ulps).
    """

    x: Array
    n_iter: int
    converged: bool
    smooth: list = field(default_factory=list)
    penalty: list = field(default_factory=list)

    @property
    def objective(self):
        return [s + p for s, p in zip(self.smooth, self.penalty, strict=True)]


def fista(f, g, x0, *, rtol=1e-6, max_iter=100, patience=3):
    """Minimize ``f(x) + g(x)`` by monotone FISTA, starting from ``x0``.

    Parameters
    ----------
    f : Quadratic
        Smooth part, with its Lipschitz constant.
    g : L1Penalty or UnitColumns
        Non-smooth part: any object with ``values(x, separable)`` and ``prox(x, step)``.
    x0 : array
        Warm start. The objective never rises above ``f(x0) + g(x0)``.
    rtol : float
        A block (a column of a separable problem, else the whole problem)
        stops when ``patience`` steps in a row each change its objective by at
        most ``rtol`` times its value plus its rounding error. ``rtol=0`` runs
        until the objective stops changing; a negative ``rtol`` never stops
        before ``max_iter``.
    max_iter : int
        Most iterations (applications of ``A``).
    patience : int
        How many small steps in a row mean convergence. FISTA's objective can
        stall for a step while the iterates still move, so one is not enough.
    Returns
    -------
    FistaResult
    """
    return _fista(f, g, x0, rtol=rtol, max_iter=max_iter, patience=patience)


def _fista(f, g, x0, *, rtol, max_iter, patience):
    xp = get_namespace(x0)
    step = 1.0 / f.lipschitz if f.lipschitz > 0 else 1.0
    x, ax = x0, f.apply(x0)
    fx_smooth, fx_penalty = f.values(x, ax), g.values(x, f.separable)
    result = FistaResult(x, 0, False, [_total(xp, fx_smooth)], [_total(xp, fx_penalty)])
    if not math.isfinite(result.smooth[0] + result.penalty[0]):
        raise FloatingPointError(f"FISTA started from a point of objective {result.objective[0]}")
    y, ay, t = x, ax, 1.0
    # Rounding error of a block's computed objective, relative to its size
    # (the constant c and the quadratic nearly cancel): changes below it are noise.
    # Measured on image patches: at most about 5 eps of |f| + |c|.
    noise = -math.inf if rtol < 0 else 8 * float(xp.finfo(x.dtype).eps)
    small_steps = xp.zeros(fx_smooth.shape, dtype=x.dtype, device=x.device)
    active = xp.ones(fx_smooth.shape, dtype=xp.bool, device=x.device)
    # Columns of a separable problem that have converged leave the working arrays.
    done = _Retired(xp, x.shape[1] if f.separable else 0, x.device)
    for k in range(1, max_iter + 1):
        v = ay - f.b
        v *= -step
        v += y
        z = g.prox(v, step)
        az = f.apply(z)
        fz_smooth, fz_penalty = f.values(z, az), g.values(z, f.separable)
        fx, fz = fx_smooth + fx_penalty, fz_smooth + fz_penalty
        if not bool(xp.all(xp.isfinite(fz))):
            raise FloatingPointError(f"FISTA produced a non-finite objective at iteration {k}")
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta, theta = (t - 1.0) / t_next, t / t_next
        c_size = xp.abs(xp.asarray(f.c, dtype=x.dtype, device=x.device))
        small = active & (xp.abs(fz - fx) <= rtol * xp.abs(fx) + noise * (xp.abs(fx) + c_size))
        accept = active & (fz <= fx)
        if bool(xp.all(accept)):  # the usual step: plain FISTA, y = z + β(z − x)
            y, ay = _extrapolate(z, x, beta), _extrapolate(az, ax, beta)
            x, ax, fx_smooth, fx_penalty = z, az, fz_smooth, fz_penalty
        else:
            # Rejected blocks keep x but extrapolate towards z, y = x + θ(z − x),
            # so the momentum survives (Beck and Teboulle's MFISTA); frozen
            # blocks stay put. All three are y = x + coef·(z − x).
            coef = theta * xp.astype(active, x.dtype) + (1.0 + beta - theta) * xp.astype(accept, x.dtype)
            y, ay = x + coef * (z - x), ax + coef * (az - ax)
            x, ax = xp.where(accept, z, x), xp.where(accept, az, ax)
            fx_smooth, fx_penalty = xp.where(accept, fz_smooth, fx_smooth), xp.where(accept, fz_penalty, fx_penalty)
        t = t_next
        result.smooth.append(done.smooth + _total(xp, fx_smooth))
        result.penalty.append(done.penalty + _total(xp, fx_penalty))
        result.n_iter = k
        small_steps = xp.where(small, small_steps + 1, 0.0)
        active = active & (small_steps < patience)
        n_active = int(xp.sum(xp.astype(active, xp.int32)))
        if n_active == 0:
            result.converged = True
            break
        if f.separable and n_active <= active.shape[0] // 2:
            keep = done.retire(active, x, fx_smooth, fx_penalty)
            f = f.take(keep)
            x, ax, y, ay = (xp.take(a, keep, axis=1) for a in (x, ax, y, ay))
            fx_smooth, fx_penalty, small_steps = (xp.take(a, keep) for a in (fx_smooth, fx_penalty, small_steps))
            active = xp.ones(fx_smooth.shape, dtype=xp.bool, device=x.device)
    result.x = done.assemble(x) if f.separable else x
    return result


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
    """The converged columns of a separable problem, set aside until the end."""

    def __init__(self, xp, n_columns, device):
        self.xp = xp
        self.columns = xp.arange(n_columns, device=device)  # original index of each working column
        self.parts, self.part_columns = [], []
        self.smooth = self.penalty = 0.0

    def retire(self, active, x, fx_smooth, fx_penalty):
        """Set aside the inactive columns of ``x``; return the indices of the columns kept."""
        xp = self.xp
        (keep,), (leave,) = xp.nonzero(active), xp.nonzero(~active)
        self.parts.append(xp.take(x, leave, axis=1))
        self.part_columns.append(xp.take(self.columns, leave))
        self.smooth += _total(xp, xp.take(fx_smooth, leave))
        self.penalty += _total(xp, xp.take(fx_penalty, leave))
        self.columns = xp.take(self.columns, keep)
        return keep

    def assemble(self, x):
        """All columns, retired and working, in their original order."""
        if not self.parts:
            return x
        xp = self.xp
        order = xp.argsort(xp.concat([*self.part_columns, self.columns]))
        return xp.take(xp.concat([*self.parts, x], axis=1), order, axis=1)
