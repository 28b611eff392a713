"""One block-coordinate pass of a D- or E-step on its sufficient statistics.

The D-subproblem on running sums ``A = Σ z zᵀ`` and ``B = Σ x zᵀ`` is ::

    minimize  ½ tr(D A Dᵀ) − tr(D Bᵀ)   s.t.  ‖d_j‖₂ ≤ 1 for every column j.

Fixing every column but ``d_j``, it is a quadratic in ``d_j`` with Hessian
``A_jj I``, whose constrained minimizer is the projection of the unconstrained
one onto the ball: ``d_j ← Π(d_j + (b_j − D a_j)/A_jj)`` (Mairal, Bach, Ponce
and Sapiro, 2010, Algorithm 2). One pass over the columns in order costs
``O(n m²)``, about one product ``DA``, and never raises the objective. Online
learning takes one pass per batch, as SPAMS does, warm-started from the last
dictionary: the sums change little from batch to batch. The pass is compiled
with numba where it imports, and written with array-API operations otherwise
(one small product per column: slower, the same arithmetic).
"""

from __future__ import annotations

import math

import numpy as np

from ._array import get_namespace, to_numpy
from .homotopy import AVAILABLE, numba


def coordinate_pass(W, gram, b):
    """One pass of block-coordinate descent over the columns of ``W`` on ``½tr(W G Wᵀ) − tr(W Bᵀ)``.

    Parameters
    ----------
    W : array, shape (n, m)
        Feasible start (columns in the unit ball); not modified.
    gram : array, shape (m, m)
        ``G``, symmetric positive semi-definite (``A = Σ z zᵀ`` for the dictionary).
    b : array, shape (n, m)
        ``B`` (``Σ x zᵀ`` for the dictionary).

    Returns
    -------
    array, shape (n, m)
        ``W`` after the pass, in its namespace and dtype; columns ``j`` with
        ``G_jj = 0`` (unused atoms) are left as they are.
    """
    xp = get_namespace(W, gram, b)
    if AVAILABLE and isinstance(W, np.ndarray):
        out = np.array(W, dtype=np.float64, order="C")
        _pass(out, np.ascontiguousarray(to_numpy(gram), dtype=np.float64), np.asarray(b, dtype=np.float64))
        return out.astype(W.dtype, copy=False)
    return _pass_array_api(xp, W, gram, b)


def _pass(W, G, B):
    n, m = W.shape
    u = np.empty(n)
    for j in range(m):
        gjj = G[j, j]
        if gjj <= 0.0:
            continue
        norm_sq = 0.0
        for i in range(n):
            s = 0.0
            for k in range(m):
                s += W[i, k] * G[j, k]
            u[i] = W[i, j] + (B[i, j] - s) / gjj
            norm_sq += u[i] * u[i]
        scale = 1.0 / max(math.sqrt(norm_sq), 1.0)
        for i in range(n):
            W[i, j] = u[i] * scale


if AVAILABLE:
    # fastmath lets the inner products use SIMD (their summation order is then the compiler's).
    _pass = numba.njit(cache=True, nogil=True, fastmath=True)(_pass)


def _pass_array_api(xp, W, gram, b):
    """The same pass with array-API operations (CuPy, array-api-strict, or no numba)."""
    m = W.shape[1]
    columns = [W[:, j] for j in range(m)]
    diagonal = xp.linalg.diagonal(gram)
    for j in range(m):
        gjj = float(diagonal[j])
        if gjj <= 0:
            continue
        current = xp.stack(columns, axis=1)
        u = columns[j] + (b[:, j] - current @ gram[:, j]) / gjj
        columns[j] = u / max(float(xp.linalg.vector_norm(u)), 1.0)
    return xp.stack(columns, axis=1)
