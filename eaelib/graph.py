"""Graph Laplacians over samples, for the ``λ_g/2 tr(Z L Zᵀ)`` term."""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from ._array import dtype_name, from_numpy, get_namespace, to_namespace
from ._validation import check_array, check_scalar


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
    xp : namespace, optional
        Array namespace of the codes it multiplies: a dense matrix is moved to it, and a sparse one
        whose values are of another library is made dense there.
    device : device, optional
        Device of the codes, where a matrix moved to ``xp`` goes.

    Raises
    ------
    ValueError
        If the matrix is not square, not ``n_samples × n_samples``, not finite, not symmetric, or has a
        negative diagonal entry.

    Notes
    -----
    ``norm`` is ``‖L‖₂``, the Laplacian's share of the Z-subproblem's Lipschitz
    constant. It is estimated from above, by Lanczos (SciPy's or CuPy's
    ``eigsh``) inflated by 0.1 % where available, else by power iteration
    inflated by 10 %, then capped by Gershgorin's bound (the largest absolute
    row sum), which can never underestimate it.
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
                matrix, self.sparse = to_namespace(matrix.toarray(), xp, device=device), False
            elif not self.sparse:
                matrix = to_namespace(matrix, xp, device=device)
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
        """``Z L``: what the graph term adds to the gradient of the Z-subproblem, over ``λ_g``.

        Parameters
        ----------
        Z : array, shape (m, N)
            Codes, one column per sample.

        Returns
        -------
        array, shape (m, N)
            ``Z L``, in the namespace of ``Z``.
        """
        if self.sparse:
            return (self.matrix @ Z.mT).mT
        return Z @ self.matrix

    def _estimate_norm(self, n_iter=100):
        """``‖L‖₂`` from above, capped by Gershgorin's bound.

        Lanczos (``eigsh`` of SciPy or CuPy) inflated by 0.1 % where available;
        otherwise power iteration, which can fall short when the top eigenvalues
        are close, inflated by 10 %.
        """
        n = self.matrix.shape[0]
        if n == 0:
            return 0.0
        xp = self._xp
        row_sums = abs(self.matrix).sum(axis=1) if self.sparse else xp.sum(xp.abs(self.matrix), axis=1)
        gershgorin = float(row_sums.max()) if self.sparse else float(xp.max(row_sums))
        largest = self._lanczos()
        if largest is not None:
            return min(1.001 * largest, gershgorin)
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
        return min(1.1 * estimate, gershgorin)

    def _lanczos(self):
        """Largest eigenvalue by ``eigsh`` for NumPy/SciPy or CuPy matrices, or None."""
        n = self.matrix.shape[0]
        values = self.matrix.data if self.sparse else self.matrix
        try:
            if isinstance(values, np.ndarray):
                if n <= 64 and not self.sparse:  # small: exact
                    return float(np.linalg.eigvalsh(self.matrix)[-1])
                from scipy.sparse.linalg import eigsh
            elif type(values).__module__.startswith("cupy"):
                from cupyx.scipy.sparse.linalg import eigsh
            else:
                return None
            if n < 3:
                return None
            return float(eigsh(self.matrix, k=1, which="LA", tol=1e-8, return_eigenvectors=False)[0])
        except (ImportError, ArithmeticError, RuntimeError, ValueError):
            return None


# -- k-nearest-neighbour graphs ----------------------------------------------------------------------------------

SYMMETRIZATIONS = ("union", "mutual")
_CHUNK_ENTRIES = 1 << 22  # similarities held at once by default: 4 Mi entries (32 MiB in float64)


def _sparse_library(xp):
    """``(array module, sparse module)`` for the namespace ``xp``: SciPy for NumPy, cupyx for CuPy."""
    if array_api_compat.is_numpy_namespace(xp):
        try:
            import scipy.sparse
        except ImportError as exc:
            raise ImportError(
                f"knn_laplacian needs SciPy for NumPy input (the Laplacian is a scipy.sparse matrix): "
                f"pip install scipy ({exc})"
            ) from exc
        return np, scipy.sparse
    if array_api_compat.is_cupy_namespace(xp):
        try:
            import cupy
            import cupyx.scipy.sparse
        except ImportError as exc:
            raise ImportError(f"knn_laplacian needs cupyx.scipy.sparse for CuPy input: {exc}") from exc
        return cupy, cupyx.scipy.sparse
    raise TypeError(
        f"knn_laplacian builds a sparse matrix, with scipy.sparse for NumPy input or cupyx.scipy.sparse for CuPy "
        f"input; {xp.__name__} has no sparse library: convert X to NumPy first (numpy.from_dlpack(X))"
    )


def _nearest_neighbors(xp, X, n_neighbors, chunk_size):
    """Indices and cosine similarities of every sample's ``n_neighbors`` nearest neighbours.

    Array-API code on ``X``'s namespace, ``chunk_size`` rows of similarities at a time. Returns two arrays
    of shape (N, n_neighbors): the neighbours' indices, most similar first (ties: lower index first), and
    their cosine similarities. A sample is never its own neighbour; a zero sample has similarity 0 to all.
    """
    N, device = X.shape[0], array_api_compat.device(X)
    norms = xp.linalg.vector_norm(X, axis=1, keepdims=True)
    unit = X / xp.where(norms > 0, norms, xp.ones_like(norms))
    columns = xp.arange(N, device=device)
    indices, similarities = [], []
    for start in range(0, N, chunk_size):
        stop = min(start + chunk_size, N)
        S = unit[start:stop, :] @ unit.mT  # (chunk, N) cosine similarities
        rows = xp.arange(start, stop, device=device)
        S = xp.where(columns[None, :] == rows[:, None], -xp.inf, S)  # not its own neighbour
        order = xp.argsort(S, axis=1, descending=True, stable=True)[:, :n_neighbors]
        flat = order + xp.arange(stop - start, device=device)[:, None] * N
        picked = xp.take(xp.reshape(S, (-1,)), xp.reshape(flat, (-1,)))
        indices.append(order)
        similarities.append(xp.reshape(picked, (stop - start, n_neighbors)))
    return xp.concat(indices, axis=0), xp.concat(similarities, axis=0)


def knn_laplacian(X, n_neighbors=10, *, normalized=False, symmetrize="union", chunk_size=None):
    r"""Laplacian of the k-nearest-neighbour graph of the samples, by cosine similarity, as a sparse matrix.

    Each sample (row of ``X``) is joined to the ``n_neighbors`` other samples most similar to it by cosine
    similarity :math:`s_{ij} = x_i^\top x_j / (\|x_i\| \|x_j\|)`. The edge's weight is the similarity clipped
    at 0, :math:`w_{ij} = \max(s_{ij}, 0)`: neighbours that point away from a sample get no edge (a zero
    sample is similar to nothing and has no edge). The directed k-NN relation is made symmetric by
    ``symmetrize``, and the Laplacian of the weighted graph is returned:

    - combinatorial (``normalized=False``): :math:`L = \mathrm{diag}(d) - W`, with degrees
      :math:`d_i = \sum_j w_{ij}`; symmetric positive semi-definite, every row sums to 0, and
      :math:`\operatorname{tr}(Z L Z^\top) = \tfrac12 \sum_{ij} w_{ij} \|z_i - z_j\|^2`;
    - normalized (``normalized=True``): :math:`L = I - \mathrm{diag}(d)^{-1/2} W \mathrm{diag}(d)^{-1/2}`,
      with eigenvalues in :math:`[0, 2]`; an isolated sample (:math:`d_i = 0`) gets a zero row and column,
      as in ``scipy.sparse.csgraph.laplacian(W, normed=True)``.

    Parameters
    ----------
    X : array, shape (n_samples, n_features)
        Samples as rows (the estimator's orientation), NumPy or CuPy. The similarities and the neighbour
        search run on ``X``'s array namespace (array API: ``argsort``, ``take``); the Laplacian is a
        ``scipy.sparse.csr_array`` for NumPy input and a ``cupyx.scipy.sparse.csr_matrix`` for CuPy input.
    n_neighbors : int, default=10
        Neighbours ``k`` of each sample, from 1 to ``n_samples - 1``.
    normalized : bool, default=False
        Return the normalized Laplacian instead of the combinatorial one.
    symmetrize : {"union", "mutual"}, default="union"
        ``"union"`` joins ``i`` and ``j`` when either is among the other's k nearest neighbours (every
        sample has at least ``k`` neighbours, some more); ``"mutual"`` only when each is among the other's
        (at most ``k`` neighbours each, and some samples may be left isolated).
    chunk_size : int, optional
        Rows of the ``n_samples × n_samples`` similarity matrix computed at a time, so that memory is
        O(n_samples · n_neighbors + chunk_size · n_samples), never O(n_samples²). By default, as many rows
        as fit in about 4 million entries. The result does not depend on it.

    Returns
    -------
    scipy.sparse.csr_array or cupyx.scipy.sparse.csr_matrix, shape (n_samples, n_samples)
        The Laplacian, in ``X``'s floating dtype (float64 for integer input); pass it to
        ``EnergyAutoEncoder.fit(X, laplacian=L)`` or to :class:`GraphLaplacian`.

    Raises
    ------
    TypeError
        For arrays of a library without a sparse matrix type (array-api-strict, ...).
    ImportError
        If SciPy (NumPy input) or cupyx (CuPy input) cannot be imported.
    ValueError
        For a bad ``X`` (not 2-D, not finite, complex), ``n_neighbors`` out of range, an unknown
        ``symmetrize`` or a bad ``chunk_size``.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import knn_laplacian
    >>> X = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> L = knn_laplacian(X, n_neighbors=1)
    >>> L.shape, L.nnz  # two pairs of neighbours: 4 degrees and 4 off-diagonal weights
    ((4, 4), 8)
    >>> bool(np.allclose(L.sum(axis=1), 0))
    True
    """
    xp, X, n_neighbors, chunk_size = _check_knn(X, n_neighbors, symmetrize, chunk_size)
    N = X.shape[0]
    array, sparse = _sparse_library(xp)  # fail before the work for namespaces without sparse matrices

    indices, similarities = _nearest_neighbors(xp, X, n_neighbors, min(chunk_size, N))
    weights = xp.reshape(xp.clip(similarities, 0.0, 1.0), (-1,))  # |cosine| ≤ 1 but for rounding
    sources = xp.arange(N, device=array_api_compat.device(X))[:, None]
    rows = xp.reshape(xp.broadcast_to(sources, (N, n_neighbors)), (-1,))
    csr = sparse.csr_array if hasattr(sparse, "csr_array") else sparse.csr_matrix
    directed = csr((weights, (rows, xp.reshape(indices, (-1,)))), shape=(N, N))
    transposed = directed.T.tocsr()
    W = directed.maximum(transposed) if symmetrize == "union" else directed.minimum(transposed)
    W.eliminate_zeros()
    return _laplacian(array, csr, W, normalized)


def _check_knn(X, n_neighbors, symmetrize, chunk_size):
    """``(xp, X, n_neighbors, chunk_size)`` of :func:`knn_laplacian`, checked."""
    xp, X = check_array(X, name="X")
    N = X.shape[0]
    if N < 2:
        raise ValueError(f"X must have at least 2 samples to join them in a graph, got shape {tuple(X.shape)}")
    n_neighbors = check_scalar(n_neighbors, "n_neighbors", kind="int", low=1, high=N - 1)
    if symmetrize not in SYMMETRIZATIONS:
        raise ValueError(f"symmetrize must be one of {SYMMETRIZATIONS}, got {symmetrize!r}")
    if chunk_size is None:
        chunk_size = max(1, min(N, _CHUNK_ENTRIES // N))
    return xp, X, n_neighbors, check_scalar(chunk_size, "chunk_size", kind="int", low=1)


def _laplacian(array, csr, W, normalized):
    """The Laplacian of the symmetric sparse weights ``W``, in ``csr`` format, ``array`` its dense library."""
    N = W.shape[0]
    degree = array.reshape(array.asarray(W.sum(axis=1)), (-1,))
    W = W.tocoo()
    w_rows, w_cols, w = W.row, W.col, W.data
    diagonal = array.arange(N, dtype=w_rows.dtype)
    if normalized:
        connected = degree > 0
        scale = array.where(connected, 1.0 / array.sqrt(array.where(connected, degree, 1.0)), 0.0).astype(w.dtype)
        off = -w * (scale[w_rows] * scale[w_cols])  # the product first: exactly symmetric
        diag_values = connected.astype(w.dtype)
    else:
        off, diag_values = -w, degree
    keep = diag_values != 0  # isolated samples: no stored zeros
    data = array.concatenate([off, diag_values[keep]])
    return csr(
        (data, (array.concatenate([w_rows, diagonal[keep]]), array.concatenate([w_cols, diagonal[keep]]))),
        shape=(N, N),
    )


def neighbour_code_distance(Z, laplacian):
    r"""How far apart the codes of neighbouring samples are, relative to the size of the codes.

    For a graph with weights :math:`w_{ij} \ge 0` (the off-diagonal entries of ``laplacian``, negated),

    .. math:: \frac{\sum_{i<j} w_{ij} \|z_i - z_j\|_2 \,/\, \sum_{i<j} w_{ij}}
                   {\frac{1}{N} \sum_i \|z_i\|_2}

    the weighted mean distance between the codes of the graph's neighbours, divided by the mean code norm:
    0 when neighbours share their codes, about :math:`\sqrt 2` for codes of equal norm that are orthogonal.
    Dividing by the mean norm keeps codes that merely shrink from looking alike.

    Parameters
    ----------
    Z : array, shape (n_samples, n_codes)
        Codes with samples as rows (the estimator's orientation; the book's ``Zᵀ``).
    laplacian : array or sparse matrix, shape (n_samples, n_samples)
        A graph Laplacian over the samples (combinatorial or normalized, as from :func:`knn_laplacian`),
        dense or ``scipy.sparse`` / ``cupyx.scipy.sparse``.

    Returns
    -------
    float
        The ratio; 0.0 when every code is zero.

    Raises
    ------
    ValueError
        If the shapes do not match, the graph has no edge, or an off-diagonal entry is positive (a
        negative weight).

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import neighbour_code_distance
    >>> # one edge, 0 — 1, whose ends have orthogonal codes
    >>> L = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    >>> Z = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    >>> round(neighbour_code_distance(Z, L), 6)  # √2 / mean(1, 1, √50)
    0.467711
    """
    xp, Z = check_array(Z, name="Z", shape_hint="(n_samples, n_codes)")
    N = Z.shape[0]
    if tuple(laplacian.shape) != (N, N):
        raise ValueError(f"laplacian must be {N} × {N} (one row per sample of Z), got shape {tuple(laplacian.shape)}")
    if _is_sparse(laplacian):
        upper = laplacian.tocoo()
        rows, cols, values = upper.row, upper.col, upper.data
        keep = (rows < cols) & (values != 0)
        rows, cols, values = rows[keep], cols[keep], values[keep]
    else:
        lxp = get_namespace(laplacian)
        index = lxp.arange(N, device=array_api_compat.device(laplacian))
        mask = (index[:, None] < index[None, :]) & (laplacian != 0)
        rows, cols = lxp.nonzero(mask)
        values = lxp.take(lxp.reshape(laplacian, (-1,)), rows * N + cols)
    # The graph's library may differ from the codes': bring the edges to the codes'.
    device = array_api_compat.device(Z)
    rows, cols, values = (to_namespace(a, xp, device=device) for a in (rows, cols, values))
    if values.shape[0] == 0:
        raise ValueError("the graph has no edge: laplacian has no non-zero off-diagonal entry")
    if bool(xp.any(values > 0)):
        raise ValueError("laplacian has positive off-diagonal entries (negative edge weights)")
    weights = xp.astype(-values, Z.dtype)
    distances = xp.linalg.vector_norm(xp.take(Z, rows, axis=0) - xp.take(Z, cols, axis=0), axis=1)
    mean_norm = float(xp.mean(xp.linalg.vector_norm(Z, axis=1)))
    if mean_norm == 0.0:
        return 0.0
    return float(xp.sum(weights * distances) / xp.sum(weights)) / mean_norm
