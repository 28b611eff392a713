"""Measures of a learned model: reconstruction quality, sparsity of the codes, encoder against dictionary.

Every function accepts arrays of any supported library (NumPy, CuPy, array-api-strict) and computes in
that library; scalars come back as Python floats, per-sample or per-atom results as arrays of the input's
library. Orientations follow the estimator: codes ``Z`` have samples as rows (``model.transform``),
``D`` is ``n × m`` (atoms as columns, ``model.D_``) and ``E`` is ``m × n`` (``model.E_``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._array import get_namespace
from ._validation import check_array, check_scalar

Array = Any


def psnr(reference, estimate, data_range=1.0):
    r"""Peak signal-to-noise ratio of ``estimate`` against ``reference``, in decibels.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{r^2}{\mathrm{MSE}}, \qquad
              \mathrm{MSE} = \frac{1}{K} \sum_{i=1}^K (\mathrm{reference}_i - \mathrm{estimate}_i)^2

    with ``r = data_range`` and ``K`` the number of entries. A gain of 20 dB is an error ten times smaller.

    Parameters
    ----------
    reference, estimate : array, same shape
        Images, patches (one per row) or any arrays of values; NaN and infinite values are an error.
    data_range : float, default=1.0
        Peak value ``r``: 1 for images in [0, 1], 255 for 8-bit images.

    Returns
    -------
    float
        The PSNR in dB; ``inf`` when ``estimate`` equals ``reference``.

    Raises
    ------
    ValueError
        If the shapes differ, the arrays are empty or not finite, or ``data_range`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import psnr
    >>> reference = np.zeros((4, 4))
    >>> round(psnr(reference, reference + 0.1), 6)  # MSE = 0.01
    20.0
    """
    data_range = check_scalar(data_range, "data_range", low=0.0, low_inclusive=False)
    xp, reference = check_array(reference, name="reference", ndim=None)
    _, estimate = check_array(estimate, name="estimate", ndim=None)
    if tuple(reference.shape) != tuple(estimate.shape):
        raise ValueError(
            f"reference and estimate must have the same shape, got {tuple(reference.shape)} and {tuple(estimate.shape)}"
        )
    if math.prod(reference.shape) == 0:
        raise ValueError("reference and estimate are empty: the PSNR is undefined")
    get_namespace(reference, estimate)  # the two must come from the same library
    for name, x in (("reference", reference), ("estimate", estimate)):
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{name} contains NaN or infinite values; crop or mask them first")
    error = xp.astype(reference, xp.float64) - xp.astype(estimate, xp.float64)
    mse = float(xp.mean(error * error))
    if mse == 0.0:
        return math.inf
    # As a difference of logarithms: r²/MSE overflows for a tiny MSE.
    return 20.0 * math.log10(data_range) - 10.0 * math.log10(mse)


@dataclass(frozen=True)
class CodeSparsity:
    """How sparse codes are: the outcome of :func:`code_sparsity`.

    Parameters
    ----------
    nonzero_fraction : float
        Fraction of the entries of ``Z`` that are non-zero.
    per_sample : array of int, shape (n_samples,)
        Number of non-zero codes (atoms used) of each sample.
    per_atom : array of int, shape (n_atoms,)
        Number of samples that use each atom (have a non-zero code for it).
    n_samples, n_atoms : int
        Shape of ``Z``.
    """

    nonzero_fraction: float
    per_sample: Array
    per_atom: Array
    n_samples: int
    n_atoms: int

    @property
    def mean_per_sample(self):
        """Mean number of non-zero codes per sample: ``nonzero_fraction · n_atoms``."""
        return self.nonzero_fraction * self.n_atoms

    def atoms_used(self, min_fraction=0.0):
        """Number of atoms used by more than ``min_fraction`` of the samples.

        ``atoms_used()`` counts the atoms used at all; ``atoms_used(0.01)`` those used by more than 1 % of
        the samples.

        Parameters
        ----------
        min_fraction : float, default=0.0
            Fraction of the samples, in [0, 1], that an atom must be used by more than.

        Returns
        -------
        int
            The number of such atoms.
        """
        min_fraction = check_scalar(min_fraction, "min_fraction", low=0.0, high=1.0)
        xp = get_namespace(self.per_atom)
        # For whole counts, "more than f·N" is "more than floor(f·N)": an integer comparison, as array APIs want.
        threshold = math.floor(min_fraction * self.n_samples)
        return int(xp.sum(xp.astype(self.per_atom > threshold, xp.int64)))


def code_sparsity(Z, tol=0.0):
    """Sparsity of codes: non-zero fraction, non-zeros per sample and usage of every atom.

    Parameters
    ----------
    Z : array, shape (n_samples, n_atoms)
        Codes with samples as rows, as returned by ``EnergyAutoEncoder.transform`` (the book's ``Zᵀ``).
    tol : float, default=0.0
        An entry counts as non-zero when its magnitude exceeds ``tol``. The exact codes are
        soft-thresholded, so their zeros are exact and the default suits them.

    Returns
    -------
    CodeSparsity
        The non-zero fraction of ``Z``, the non-zeros of every sample and the samples using every atom.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import code_sparsity
    >>> Z = np.array([[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]])
    >>> s = code_sparsity(Z)
    >>> s.nonzero_fraction, s.per_sample.tolist(), s.per_atom.tolist(), s.atoms_used()
    (0.5, [1, 2], [1, 2, 0], 2)
    """
    tol = check_scalar(tol, "tol", low=0.0)
    xp, Z = check_array(Z, name="Z", shape_hint="(n_samples, n_atoms)", min_samples=0, min_features=0)
    n_samples, n_atoms = (int(s) for s in Z.shape)
    nonzero = xp.astype(xp.abs(Z) > tol, xp.int64)
    per_sample = xp.sum(nonzero, axis=1)
    per_atom = xp.sum(nonzero, axis=0)
    size = n_samples * n_atoms
    fraction = float(xp.sum(per_sample)) / size if size else 0.0
    return CodeSparsity(fraction, per_sample, per_atom, n_samples, n_atoms)


def _check_pair(D, E):
    xp, D = check_array(D, name="D", shape_hint="(n_features, n_atoms)", min_samples=0, min_features=0)
    _, E = check_array(E, name="E", shape_hint="(n_atoms, n_features)", min_samples=0, min_features=0)
    get_namespace(D, E)
    if tuple(E.shape) != (D.shape[1], D.shape[0]):
        raise ValueError(
            f"E must have the shape of D transposed: D is {tuple(D.shape)} (n_features, n_atoms), "
            f"so E must be {(D.shape[1], D.shape[0])}, got {tuple(E.shape)}"
        )
    dtype = xp.result_type(D.dtype, E.dtype)
    return xp, xp.astype(D, dtype), xp.astype(E, dtype)


def encoder_dictionary_cosines(D, E):
    r"""Cosine between each row of the encoder ``E`` and the matching atom (column) of ``D``.

    Row ``k`` of ``E`` computes the ``k``-th code ``(EX)_k``; it plays the role of atom ``d_k``. The cosine

    .. math:: \cos_k = \frac{\langle E_{k,:}, d_k \rangle}{\|E_{k,:}\|_2 \, \|d_k\|_2}

    is 1 when the row is a positive multiple of the atom, as for ``E = Dᵀ``. It ignores the norms: see
    :func:`encoder_dictionary_distance` for a measure that does not.

    Parameters
    ----------
    D : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns (``model.D_``).
    E : array, shape (n_atoms, n_features)
        Encoder (``model.E_``).

    Returns
    -------
    array, shape (n_atoms,)
        The cosines, in [-1, 1]; NaN for an atom or a row of ``E`` that is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import encoder_dictionary_cosines
    >>> D = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> E = np.array([[2.0, 0.0], [1.0, 1.0]])
    >>> encoder_dictionary_cosines(D, E).round(4).tolist()
    [1.0, 0.7071]
    """
    xp, D, E = _check_pair(D, E)
    dot = xp.sum(E * D.mT, axis=1)
    norms = xp.linalg.vector_norm(E, axis=1) * xp.linalg.vector_norm(D, axis=0)
    positive = norms > 0
    cosines = dot / xp.where(positive, norms, xp.ones_like(norms))
    nan = xp.asarray(math.nan, dtype=cosines.dtype, device=cosines.device)
    return xp.where(positive, xp.clip(cosines, -1.0, 1.0), nan)


def encoder_dictionary_distance(D, E):
    """Relative Frobenius distance between the encoder and the transposed dictionary, ``‖E − Dᵀ‖ / ‖Dᵀ‖``.

    It is 0 when ``E = Dᵀ``, and it is 1 for ``E = 0`` or for an ``E`` orthogonal to ``Dᵀ`` of the same
    norm: a value near 1 or above means ``E`` is not close to ``Dᵀ``. Unlike
    :func:`encoder_dictionary_cosines`, it also counts differences of scale.

    Parameters
    ----------
    D : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns (``model.D_``).
    E : array, shape (n_atoms, n_features)
        Encoder (``model.E_``).

    Returns
    -------
    float
        ``‖E − Dᵀ‖_F / ‖D‖_F``, at least 0.

    Raises
    ------
    ValueError
        If ``D`` is zero (the relative distance is undefined) or the shapes do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import encoder_dictionary_distance
    >>> D = np.eye(3)
    >>> encoder_dictionary_distance(D, D.T), encoder_dictionary_distance(D, np.zeros((3, 3)))
    (0.0, 1.0)
    """
    xp, D, E = _check_pair(D, E)
    scale = float(xp.linalg.vector_norm(xp.reshape(D, (-1,))))
    if scale == 0.0:
        raise ValueError("D is zero: the distance relative to ‖Dᵀ‖ is undefined")
    return float(xp.linalg.vector_norm(xp.reshape(E - D.mT, (-1,)))) / scale


def atom_coherence(D):
    r"""Each atom's largest absolute cosine with another atom of the dictionary.

    .. math:: \mu_i = \max_{k \ne i} \frac{|\langle d_i, d_k \rangle|}{\|d_i\|_2 \, \|d_k\|_2}

    A value near 1 means atom ``i`` has a near-duplicate (up to sign and scale); the largest value is the
    *mutual coherence* of the dictionary. Random atoms in dimension ``n`` have cosines of order ``1/√n``.

    Parameters
    ----------
    D : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns (``model.D_``).

    Returns
    -------
    array, shape (n_atoms,)
        The coherence of every atom, in [0, 1]. Zero atoms are left out of every comparison; an atom that
        is zero, or has no non-zero other atom to compare with, gets NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import atom_coherence
    >>> D = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    >>> atom_coherence(D).round(4).tolist()
    [0.7071, 0.7071, 0.7071]
    """
    xp, D = check_array(D, name="D", shape_hint="(n_features, n_atoms)", min_samples=0, min_features=0)
    m = D.shape[1]
    norms = xp.linalg.vector_norm(D, axis=0)
    nonzero = norms > 0
    unit = D / xp.where(nonzero, norms, xp.ones_like(norms))
    cosines = xp.abs(unit.mT @ unit)
    # Leave out the diagonal and every pair with a zero atom: -inf never wins the max.
    excluded = xp.eye(m, dtype=xp.bool, device=D.device) | ~(nonzero[:, None] & nonzero[None, :])
    minus_inf = xp.asarray(-math.inf, dtype=D.dtype, device=D.device)
    best = xp.max(xp.where(excluded, minus_inf, cosines), axis=1) if m > 0 else norms
    nan = xp.asarray(math.nan, dtype=D.dtype, device=D.device)
    return xp.where(best == -math.inf, nan, xp.clip(best, 0.0, 1.0))
