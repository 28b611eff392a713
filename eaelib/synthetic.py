"""Synthetic problems with a known answer, and a way to compare learned atoms with true ones.

The generators return NumPy arrays in the book's orientation (samples as
columns) and take a ``random_state`` (an integer seed, a
:class:`numpy.random.Generator` or None), so that the same seed always gives
the same problem:

- :func:`sparse_dataset`: data ``X = D Z (+ noise)`` from a dictionary of
  unit-norm atoms and codes with a fixed number of non-zeros per sample, for
  least squares (dense codes), sparse coding and dictionary learning;
- :func:`encoder_dataset`: data ``X`` and codes ``Z = E X`` from a feasible
  encoder, for encoder learning.

:func:`match_atoms` measures how well a learned dictionary recovers the true
one: atoms are only defined up to sign and order, so each true atom is paired
with a distinct learned atom and scored by the absolute cosine between them.
"""

from __future__ import annotations

import numpy as np

from ._array import to_numpy
from ._validation import check_random_state, check_scalar

MATCH_METHODS = ("hungarian", "greedy")


def _sizes(**sizes):
    return [check_scalar(value, name, kind="int", low=1) for name, value in sizes.items()]


def sparse_dataset(n, m, N, density=0.1, random_state=None, *, noise=0.0):
    """Data ``X = D_true Z_true + noise`` with unit-norm atoms and sparse codes.

    Parameters
    ----------
    n, m, N : int
        Dimension of a sample, number of atoms and number of samples.
    density : float, default=0.1
        Fraction of non-zero codes, in ``(0, 1]``: every sample combines
        exactly ``k = max(1, round(density · m))`` atoms, chosen at random.
        ``density=1`` gives dense codes (a least-squares problem).
    random_state : int, numpy.random.Generator or None
        Seed of the draw.
    noise : float, default=0.0
        Standard deviation of white Gaussian noise added to ``X``.

    Returns
    -------
    X : ndarray, shape (n, N)
        Data, samples as columns.
    D_true : ndarray, shape (n, m)
        Dictionary: Gaussian atoms scaled to unit ℓ2 norm (uniform directions).
    Z_true : ndarray, shape (m, N)
        Codes: ``k`` non-zeros per column, each of random sign and magnitude
        uniform in ``[0.5, 1.5]`` (bounded away from 0, so that every chosen
        atom matters).

    Examples
    --------
    >>> from eaelib.synthetic import sparse_dataset
    >>> X, D, Z = sparse_dataset(8, 12, 100, density=0.25, random_state=0)
    >>> X.shape, D.shape, Z.shape
    ((8, 100), (8, 12), (12, 100))
    >>> int((Z != 0).sum(axis=0).max())
    3
    """
    n, m, N = _sizes(n=n, m=m, N=N)
    density = check_scalar(density, "density", low=0.0, low_inclusive=False, high=1.0)
    noise = check_scalar(noise, "noise", low=0.0)
    rng = check_random_state(random_state)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    k = max(1, round(density * m))
    # The k atoms of each sample: the k smallest of m uniform keys, one draw for all samples.
    support = np.argsort(rng.random((m, N)), axis=0)[:k]
    values = rng.uniform(0.5, 1.5, (k, N)) * rng.choice([-1.0, 1.0], (k, N))
    Z = np.zeros((m, N))
    np.put_along_axis(Z, support, values, axis=0)
    X = D @ Z
    if noise > 0:
        X += noise * rng.standard_normal((n, N))
    return X, D, Z


def encoder_dataset(n, m, N, random_state=None, *, max_norm=0.9):
    """Data ``X`` and codes ``Z = E_true X`` from a feasible encoder ``E_true``.

    Parameters
    ----------
    n, m, N : int
        Dimension of a sample, number of codes (atoms) and number of samples.
    random_state : int, numpy.random.Generator or None
        Seed of the draw.
    max_norm : float, default=0.9
        Every column of ``E_true`` has an ℓ2 norm drawn uniformly in
        ``[max_norm / 2, max_norm]``; with ``max_norm ≤ 1`` the encoder
        satisfies the constraint ``‖e_k‖₂ ≤ 1``, and below 1 it lies strictly
        inside it, so that it is also the unconstrained minimizer.

    Returns
    -------
    X : ndarray, shape (n, N)
        Standard Gaussian data, samples as columns.
    E_true : ndarray, shape (m, n)
        The encoder.
    Z : ndarray, shape (m, N)
        Its codes ``E_true @ X``: with ``N ≥ n`` samples (``X`` then has full
        row rank), ``E_true`` is the only encoder that predicts them exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib.synthetic import encoder_dataset
    >>> X, E, Z = encoder_dataset(6, 10, 50, random_state=0)
    >>> bool(np.allclose(Z, E @ X)), bool(np.linalg.norm(E, axis=0).max() <= 0.9)
    (True, True)
    """
    n, m, N = _sizes(n=n, m=m, N=N)
    max_norm = check_scalar(max_norm, "max_norm", low=0.0, low_inclusive=False)
    rng = check_random_state(random_state)
    E = rng.standard_normal((m, n))
    E *= rng.uniform(max_norm / 2, max_norm, n) / np.linalg.norm(E, axis=0)
    X = rng.standard_normal((n, N))
    return X, E, E @ X


def _cosines(D, D_true):
    """|cos| between every true atom (rows) and every atom of ``D`` (columns); 0 for a zero atom."""
    D = to_numpy(D, dtype=np.float64)
    D_true = to_numpy(D_true, dtype=np.float64)
    if D.ndim != 2 or D_true.ndim != 2:
        raise ValueError(f"D and D_true must be 2-D (atoms as columns), got shapes {D.shape} and {D_true.shape}")
    if D.shape[0] != D_true.shape[0]:
        raise ValueError(f"D and D_true must have atoms of the same dimension, got {D.shape[0]} and {D_true.shape[0]}")
    if not (np.all(np.isfinite(D)) and np.all(np.isfinite(D_true))):
        raise ValueError("D and D_true must be finite")

    def unit(M):
        norms = np.linalg.norm(M, axis=0)
        return M / np.where(norms > 0, norms, 1.0)

    return np.abs(unit(D_true).T @ unit(D))


def _hungarian(cosines):
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as exc:
        raise ImportError(
            "match_atoms(method='hungarian') needs SciPy: pip install scipy, or use method='greedy' (NumPy only)"
        ) from exc
    rows, cols = linear_sum_assignment(cosines, maximize=True)
    return rows, cols


def _greedy(cosines):
    """Pair the most similar remaining (true, learned) atoms first."""
    remaining = cosines.copy()
    rows, cols = [], []
    for _ in range(min(remaining.shape)):
        i, j = np.unravel_index(np.argmax(remaining), remaining.shape)
        rows.append(i)
        cols.append(j)
        remaining[i, :] = -1.0
        remaining[:, j] = -1.0
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


def match_atoms(D, D_true, *, method="hungarian", return_index=False):
    """Similarity of each true atom to a distinct learned atom, up to sign and order.

    Atoms of a dictionary are defined only up to their order and sign (``D Z``
    is unchanged by permuting the atoms and their codes alike, or by flipping
    an atom and its codes). Each true atom is therefore paired with a
    different learned atom, so as to maximize the sum of the absolute cosines
    of the pairs, and scored by its pair's absolute cosine.

    Parameters
    ----------
    D : array, shape (n, m)
        Learned dictionary, atoms as columns (any supported array library).
    D_true : array, shape (n, m_true)
        True dictionary, atoms as columns.
    method : {"hungarian", "greedy"}, default="hungarian"
        ``"hungarian"``: the optimal pairing (Hungarian algorithm,
        :func:`scipy.optimize.linear_sum_assignment`; needs SciPy).
        ``"greedy"``: NumPy only; repeatedly pairs the most similar atoms
        still unpaired, which can score a little lower in total.
    return_index : bool, default=False
        Also return which learned atom each true atom is paired with.

    Returns
    -------
    similarity : ndarray, shape (m_true,)
        ``|cos|`` between each true atom and its learned atom, in ``[0, 1]``;
        1 means recovered exactly (up to sign and scale). It is 0 for a true
        atom left without a partner (``m < m_true``) and for zero atoms.
    index : ndarray of int, shape (m_true,)
        Only if ``return_index``: the column of ``D`` paired with each true
        atom, or -1 when none is.

    Raises
    ------
    ImportError
        If ``method="hungarian"`` and SciPy cannot be imported.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib.synthetic import match_atoms
    >>> D_true = np.eye(3)
    >>> D = -D_true[:, [2, 0, 1]]  # the same atoms, permuted and flipped
    >>> match_atoms(D, D_true, return_index=True)
    (array([1., 1., 1.]), array([1, 2, 0]))
    """
    if method not in MATCH_METHODS:
        raise ValueError(f"method must be one of {MATCH_METHODS}, got {method!r}")
    cosines = _cosines(D, D_true)
    similarity = np.zeros(cosines.shape[0])
    index = np.full(cosines.shape[0], -1, dtype=np.intp)
    if cosines.size:
        rows, cols = (_hungarian if method == "hungarian" else _greedy)(cosines)
        similarity[rows] = np.minimum(cosines[rows, cols], 1.0)
        index[rows] = cols
    return (similarity, index) if return_index else similarity
