"""One accelerated proximal-gradient solver for the three subproblems.

Each subproblem of the energy auto-encoder is *a quadratic plus a simple
non-smooth term*::

    minimize  F(x) = ½⟨x, A x⟩ − ⟨b, x⟩ + c  +  g(x)

with ``A`` linear, symmetric and positive semi-definite. :func:`fista` solves
that with the monotone FISTA of Beck and Teboulle (2009). Because ``A`` is
linear, ``A y`` at the extrapolated point is the same combination of the
``A x`` already computed, so every iteration costs a single application of
``A`` and still yields the exact objective of each iterate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._array import get_namespace, inner

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
    c : float
        Constant, so that ``f`` is the true value of the energy terms.
    lipschitz : float
        Largest eigenvalue of ``A``: the Lipschitz constant of ``∇f = A x − b``.
    """

    apply: Callable[[Array], Array]
    b: Array
    c: float
    lipschitz: float

    def value(self, x, ax):
        """``f(x)`` given ``ax = A x``."""
        xp = get_namespace(x)
        return 0.5 * inner(xp, x, ax) - inner(xp, self.b, x) + self.c


class L1Penalty:
    """``g(x) = weight ‖x‖₁``, whose prox is soft-thresholding."""

    def __init__(self, weight):
        self.weight = float(weight)

    def value(self, x):
        xp = get_namespace(x)
        return self.weight * float(xp.sum(xp.abs(x)))

    def prox(self, x, step):
        return soft_threshold(x, self.weight * step)


class UnitColumns:
    """Indicator of ``{x : ‖x[:, j]‖₂ ≤ 1 for every column j}``; prox is the projection."""

    def value(self, x):
        xp = get_namespace(x)
        norms = xp.linalg.vector_norm(x, axis=0)
        slack = 100 * xp.finfo(x.dtype).eps
        return 0.0 if x.shape[1] == 0 or float(xp.max(norms)) <= 1 + slack else math.inf

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
    return x / xp.maximum(norms, xp.asarray(1.0, dtype=x.dtype))


@dataclass
class FistaResult:
    """Outcome of :func:`fista`.

    ``smooth[k]`` and ``penalty[k]`` are ``f`` and ``g`` at the iterate kept
    after iteration ``k`` (``k = 0`` is the starting point), so
    ``smooth[k] + penalty[k]`` never increases.
    """

    x: Array
    n_iter: int
    converged: bool
    smooth: list = field(default_factory=list)
    penalty: list = field(default_factory=list)

    @property
    def objective(self):
        return [s + p for s, p in zip(self.smooth, self.penalty, strict=True)]


def fista(f, g, x0, *, rtol=1e-6, max_iter=100):
    """Minimize ``f(x) + g(x)`` by monotone FISTA, starting from ``x0``.

    Parameters
    ----------
    f : Quadratic
        Smooth part, with its Lipschitz constant.
    g : L1Penalty or UnitColumns
        Non-smooth part: any object with ``value(x)`` and ``prox(x, step)``.
    x0 : array
        Warm start. The objective never rises above ``f(x0) + g(x0)``.
    rtol : float
        Stop when a step changes the objective by at most ``rtol`` times its value.
    max_iter : int
        Most iterations (applications of ``A``).

    Returns
    -------
    FistaResult
    """
    step = 1.0 / f.lipschitz if f.lipschitz > 0 else 1.0
    x, ax = x0, f.apply(x0)
    fx_smooth, fx_penalty = f.value(x, ax), g.value(x)
    fx = fx_smooth + fx_penalty
    result = FistaResult(x, 0, False, [fx_smooth], [fx_penalty])
    if not math.isfinite(fx):
        raise FloatingPointError(f"FISTA started from a point of objective {fx}")
    y, ay, t = x, ax, 1.0
    for k in range(1, max_iter + 1):
        z = g.prox(y - step * (ay - f.b), step)
        az = f.apply(z)
        fz_smooth, fz_penalty = f.value(z, az), g.value(z)
        fz = fz_smooth + fz_penalty
        if not math.isfinite(fz):
            raise FloatingPointError(f"FISTA produced a non-finite objective at iteration {k}")
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        change = abs(fz - fx)
        if fz <= fx:  # accept z: the plain FISTA extrapolation
            beta = (t - 1.0) / t_next
            y, ay = z + beta * (z - x), az + beta * (az - ax)
            x, ax, fx, fx_smooth, fx_penalty = z, az, fz, fz_smooth, fz_penalty
        else:  # keep x, but extrapolate towards z so the momentum survives
            theta = t / t_next
            y, ay = x + theta * (z - x), ax + theta * (az - ax)
        t = t_next
        result.smooth.append(fx_smooth)
        result.penalty.append(fx_penalty)
        result.n_iter = k
        if change <= rtol * abs(fx):
            result.converged = True
            break
    result.x = x
    return result
