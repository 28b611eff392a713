"""Graph Laplacians over samples, for the ``λ_g/2 tr(Z L Zᵀ)`` term."""

from __future__ import annotations

import math

import numpy as np

from ._array import dtype_name, from_numpy, get_namespace, to_numpy


def _is_sparse(matrix):
    module = type(matrix).__module__
    return module.startswith(("scipy.sparse", "cupyx.scipy.sparse"))


class GraphLaplacian:
    """A symmetric positive semi-definite ``N × N`` matrix ``L`` and its spectral norm.

    Parameters
    ----------
    matrix : array or sparse matrix
        Dense array of any supported namespace, or a ``scipy.sparse`` /
        ``cupyx.scipy.sparse`` matrix or array.
    n_samples : int, optional
        Expected size ``N``; checked when given.
    dtype : dtype, optional
        Floating dtype to convert the matrix to (that of the codes).

    Notes
    -----
    ``norm`` is ``‖L‖₂``, the Laplacian's share of the Z-subproblem's Lipschitz
    constant. It is estimated by power iteration and inflated by 1 %, then
    capped by Gershgorin's bound (the largest absolute row sum), which can
    never underestimate it.
    """

    def __init__(self, matrix, n_samples=None, dtype=None, xp=None, device=None):
        shape = tuple(matrix.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"laplacian must be a square N × N matrix, got shape {shape}")
        if n_samples is not None and shape[0] != n_samples:
            raise ValueError(f"laplacian must be {n_samples} × {n_samples} (one row per sample), got shape {shape}")
        self.sparse = _is_sparse(matrix)
        if xp is not None:  # the namespace (and device) of the codes it multiplies
            if self.sparse and get_namespace(matrix.data) is not xp:
                matrix, self.sparse = from_numpy(xp, to_numpy(matrix.toarray()), device=device), False
            elif not self.sparse and get_namespace(matrix) is not xp:
                matrix = from_numpy(xp, to_numpy(matrix), device=device)
        if dtype is not None:
            matrix = matrix.astype(dtype_name(dtype)) if self.sparse else get_namespace(matrix).astype(matrix, dtype)
        self.matrix = matrix
        # The stored values: a NumPy or CuPy array for sparse matrices.
        values = matrix.data if self.sparse else matrix
        self._xp = get_namespace(values)
        if not bool(self._xp.all(self._xp.isfinite(values))):
            raise ValueError("laplacian contains NaN or infinite values")
        if self.sparse:
            asym, scale = abs(matrix - matrix.T).max(), abs(matrix).max()
        else:
            asym = self._xp.max(self._xp.abs(matrix - matrix.mT)) if shape[0] else 0.0
            scale = self._xp.max(self._xp.abs(matrix)) if shape[0] else 0.0
        if float(asym) > 1e-6 * max(float(scale), 1e-300):
            raise ValueError("laplacian must be symmetric")
        diagonal = matrix.diagonal() if self.sparse else self._xp.linalg.diagonal(matrix)
        if shape[0] and float(diagonal.min() if self.sparse else self._xp.min(diagonal)) < 0:
            raise ValueError("laplacian has negative degrees (diagonal entries): it must be positive semi-definite")
        self.norm = self._estimate_norm()

    def right_multiply(self, Z):
        """``Z L`` for ``Z`` of shape (m, N)."""
        if self.sparse:
            return (self.matrix @ Z.mT).mT
        return Z @ self.matrix

    def _estimate_norm(self, n_iter=100):
        n = self.matrix.shape[0]
        if n == 0:
            return 0.0
        xp = self._xp
        row_sums = abs(self.matrix).sum(axis=1) if self.sparse else xp.sum(xp.abs(self.matrix), axis=1)
        gershgorin = float(row_sums.max()) if self.sparse else float(xp.max(row_sums))
        device = None if self.sparse else self.matrix.device
        v = from_numpy(xp, np.random.default_rng(0).standard_normal(n), device=device)
        estimate = 0.0
        for _ in range(n_iter):
            w = self.matrix @ v
            w_norm = float(xp.linalg.vector_norm(w))
            if w_norm == 0 or not math.isfinite(w_norm):
                break
            estimate = w_norm / float(xp.linalg.vector_norm(v))
            v = w / w_norm
        return min(1.01 * estimate, gershgorin)
