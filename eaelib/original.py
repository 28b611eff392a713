"""The 2015 notebook's procedures, reproduced faithfully, defects included.

The notebook *Energy auto-encoder: learn from an image* (2015) is the origin of
eaelib. The errata chapter of the book (``book/05_errata.ipynb``) and the
benchmarks measure its defects next to eaelib's corrected code, and need those
defects reproduced exactly: this module does that, and nothing else in eaelib
uses it. **Do not learn models with it.**

- :func:`original_patches` builds the data matrix with the notebook's patch
  indexing (patch ``(x, y)`` stored in column ``x·y``, offsets in patch units),
  and :func:`original_patch_positions` says where each of its columns comes
  from; the correct patches are :func:`eaelib.extract_patches`.
- :func:`frobenius_lipschitz` is the notebook's step-size bound
  ``λ‖AᵀA‖_F + μ``; eaelib uses the spectral norm ``λ‖A‖₂² + μ``.
- :func:`original_learn` is the notebook's alternating loop with its
  overwrites ``E = Dᵀ`` (before the E-subproblem) and ``D = Eᵀ`` (after it),
  built on eaelib's correct solvers so that the overwrite is the only defect;
  the corrected loop is :func:`eaelib.learn`.

Everything is in the book's orientation: ``X`` is n × N (samples as columns),
``D`` n × m, ``E`` m × n, ``Z`` m × N.
"""

from __future__ import annotations

import numpy as np

from ._array import get_namespace
from ._validation import check_array, check_scalar
from .fista import project_columns
from .learning import LearningResult
from .subproblems import energy_terms, solve_codes, solve_dictionary, solve_encoder

__all__ = ["frobenius_lipschitz", "original_learn", "original_patch_positions", "original_patches"]


def _original_grid(image_shape, size):
    size = check_scalar(size, "size", kind="int", low=1)
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (height, width), got {tuple(image_shape)}")
    height, width = (check_scalar(s, "image_shape", kind="int", low=0) for s in image_shape)
    if height < size or width < size:
        raise ValueError(f"the image ({height} × {width}) is smaller than one patch ({size} × {size})")
    # Python 2 integer division, as when the notebook ran: Nx/Np, Ny/Np and Nx*Ny/Np**2 are floors.
    return height // size, width // size, height * width // (size * size), size


def original_patch_positions(image_shape, size=12):
    """Where each column of the original notebook's data matrix comes from.

    The notebook filled ``X`` (n × N with ``N = Nx·Ny // Np²``) by ::

        for x in range(Nx // Np):
            for y in range(Ny // Np):
                X[:, x * y] = image[x : x + Np, y : y + Np].reshape(Np**2)

    so a column is written by every pair ``(x, y)`` with ``x·y`` equal to its
    index, the last write wins, and a patch starts at pixel ``(x, y)``, not
    ``(x·Np, y·Np)``.

    Parameters
    ----------
    image_shape : (int, int)
        ``(Nx, Ny)``: height and width of the image.
    size : int, default=12
        ``Np``, the side of the square patches.

    Returns
    -------
    positions : numpy.ndarray of int, shape (N, 2)
        Top-left pixel ``(row, column)`` of the patch left in each column of
        ``X``; ``(-1, -1)`` for a column that is never written (it stays zero).
    writes : numpy.ndarray of int, shape (N,)
        How many ``(x, y)`` pairs wrote each column.

    Examples
    --------
    >>> positions, writes = original_patch_positions((36, 36), size=12)
    >>> # 3 × 3 pairs, 9 columns: five pairs write column 0, none writes 3 or 5 to 8
    >>> positions.tolist()
    [[2, 0], [1, 1], [2, 1], [-1, -1], [2, 2], [-1, -1], [-1, -1], [-1, -1], [-1, -1]]
    >>> writes.tolist()
    [5, 1, 2, 0, 1, 0, 0, 0, 0]
    """
    n_x, n_y, n_columns, _ = _original_grid(image_shape, size)
    positions = np.full((n_columns, 2), -1, dtype=np.int64)
    writes = np.zeros(n_columns, dtype=np.int64)
    for x in range(n_x):
        for y in range(n_y):
            positions[x * y] = (x, y)
            writes[x * y] += 1
    return positions, writes


def original_patches(image, size=12):
    """The original notebook's data matrix ``X``, with its patch indexing.

    Column ``x·y`` of ``X`` holds ``image[x:x+size, y:y+size]`` flattened,
    for ``x < height // size`` and ``y < width // size`` in the notebook's
    loop order (see :func:`original_patch_positions`); columns that no pair
    writes stay zero. The division is Python 2's floor division, as when the
    notebook ran (under Python 3 its ``Nx*Ny/Np**2`` is a float and
    ``np.zeros`` refuses it). The correct patches are
    :func:`eaelib.extract_patches`, whose transpose is the book's ``X``.

    Parameters
    ----------
    image : array, shape (height, width)
        Grayscale image (NumPy or any supported array library).
    size : int, default=12
        Side of the square patches.

    Returns
    -------
    array, shape (size², height·width // size²)
        ``X`` in the book's orientation (samples as columns), of the image's
        array library and floating dtype.
    """
    xp, image = check_array(image, name="image", shape_hint="(height, width)", min_samples=0)
    positions, _ = original_patch_positions(image.shape, size)
    size = int(size)
    n = size * size
    zero = xp.zeros((n,), dtype=image.dtype, device=image.device)
    columns = [zero if x < 0 else xp.reshape(image[x : x + size, y : y + size], (n,)) for x, y in positions.tolist()]
    return xp.stack(columns, axis=1)


def frobenius_lipschitz(A, weight=1.0, shift=0.0):
    """The original notebook's Lipschitz bound ``weight·‖AᵀA‖_F + shift``.

    The gradient of ``weight/2 ‖A x − y‖² + shift/2 ‖x − c‖²`` is Lipschitz
    with constant ``weight·‖AᵀA‖₂ + shift`` (the spectral norm, the largest
    eigenvalue of ``AᵀA``), which eaelib uses. The notebook used the Frobenius
    norm ``‖AᵀA‖_F = (Σ σᵢ⁴)^{1/2} ≥ ‖AᵀA‖₂``: a valid but larger bound, hence
    a smaller step ``1/L`` and slower convergence. Its three bounds were
    ``frobenius_lipschitz(D, λ_d, λ_e)`` for the codes, ``frobenius_lipschitz(Zᵀ, λ_d)``
    for the dictionary and ``frobenius_lipschitz(Xᵀ, λ_e)`` for the encoder.

    Parameters
    ----------
    A : array, shape (p, q)
        The matrix of the least-squares term.
    weight, shift : float
        ``λ`` and ``μ`` in ``λ‖AᵀA‖_F + μ``.

    Returns
    -------
    float
        ``weight·‖AᵀA‖_F + shift``.
    """
    xp = get_namespace(A)
    gram = A.mT @ A if A.shape[1] <= A.shape[0] else A @ A.mT  # same Frobenius norm, smaller product
    return float(weight) * float(xp.linalg.matrix_norm(gram, ord="fro")) + float(shift)


def original_learn(
    X,
    Z,
    D,
    E,
    *,
    lambda_d,
    lambda_e,
    lambda_s,
    max_outer=20,
    max_inner=100,
    inner_rtol=1e-4,
    overwrite=True,
):
    """The original notebook's alternating loop, with its ``E = Dᵀ`` and ``D = Eᵀ`` overwrites.

    Each outer iteration solves the Z-, D- and E-subproblems in turn, as the
    notebook did, but between them it did ::

        D = solve_dictionary(...)
        E = D.T  # the encoder restarts from the dictionary...
        E = solve_encoder(..., E)
        D = E.T  # ...and the dictionary learned above is thrown away

    so the energy is evaluated at ``D = Eᵀ``, not at the dictionary that
    minimized it, and nothing guarantees it decreases. Here every solve is
    eaelib's (correct constraints and step sizes), so the overwrite is the
    only defect reproduced. eaelib's solvers start from a feasible point, so
    the overwritten matrix is projected onto the constraint set
    (:func:`eaelib.project_columns`): ``E = proj(Dᵀ)`` and ``D = proj(Eᵀ)``.
    As in the notebook, every outer iteration runs: there is no outer stop.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    Z, D, E : arrays
        Starting codes (m × N), dictionary (n × m, feasible) and encoder (m × n, feasible).
    lambda_d, lambda_e, lambda_s : float
        Weights of the energy terms (no graph term: the notebook had λ_g = 0).
    max_outer : int, default=20
        Outer iterations (the notebook's ``N_outer``).
    max_inner : int
        Most FISTA iterations of the Z-subproblem.
    inner_rtol : float
        Tolerance of the Z-subproblem: each sample's duality gap relative to
        its energy. The D- and E-subproblems are solved exactly
        (:func:`eaelib.solve_dictionary`).
    overwrite : bool, default=True
        ``False`` drops the two overwrites: the loop is then plain
        alternating minimization, like :func:`eaelib.learn` without its
        certificates and outer stopping rule.

    Returns
    -------
    LearningResult
        ``energy[k]``: the terms of :func:`eaelib.energy_terms` after outer
        iteration ``k`` (``energy[0]``: the start), evaluated like the
        notebook's ``objective_g``, at the overwritten ``D``. ``inner`` is empty.
    """
    max_outer = check_scalar(max_outer, "max_outer", kind="int", low=1)
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    result = LearningResult(Z, D, E, energy=[energy_terms(X, Z, D, E, **weights)])
    for k in range(1, max_outer + 1):
        Z = solve_codes(X, D, E, Z, **weights, rtol=inner_rtol, max_iter=max_inner).x
        D = solve_dictionary(X, Z, D, lambda_d=lambda_d).x
        if overwrite:
            E = project_columns(D.mT)  # E = D.T
        E = solve_encoder(X, Z, E, lambda_e=lambda_e).x
        if overwrite:
            D = project_columns(E.mT)  # D = E.T
        result.Z, result.D, result.E, result.n_iter = Z, D, E, k
        result.energy.append(energy_terms(X, Z, D, E, **weights))
    return result
