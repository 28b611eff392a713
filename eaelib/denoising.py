"""Image denoising with a patch dictionary: noise, a fixed DCT dictionary, and coding every overlapping patch.

The method is the classic one of Elad and Aharon (2006) and of scikit-learn's example "Image denoising using
dictionary learning": cut the noisy image into overlapping patches, remove each patch's mean, code the patches
sparsely over a dictionary (learned from the noisy patches themselves, or fixed), rebuild each patch from its
code, add its mean back and average the overlapping patches into an image. The noise, spread over all the atoms,
is mostly left out of a sparse code; the averaging removes more of it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._array import from_numpy, get_namespace, resolve_dtype, to_namespace
from ._validation import check_array, check_random_state, check_scalar
from .patches import PatchLayout, reconstruct_from_patches


def add_noise(image, sigma, random_state=None):
    """``image`` plus additive white Gaussian noise of standard deviation ``sigma``.

    The noise is drawn with NumPy (so a seed gives the same noise on every array library) and added in the
    image's own library and floating dtype; values are not clipped, so they may leave the image's range.

    Parameters
    ----------
    image : array
        Any shape (a gray image is (height, width)); integer images are converted to float64 first, without
        rescaling, so give ``sigma`` on the image's own scale (``σ/255`` for an image in [0, 1]).
    sigma : float
        Standard deviation of the noise, ≥ 0.
    random_state : int, numpy.random.Generator or None
        Seed or generator of the noise.

    Returns
    -------
    array
        Same shape, library and (floating) dtype as ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import add_noise
    >>> noisy = add_noise(np.zeros((200, 200)), 0.1, random_state=0)
    >>> round(float(noisy.std()), 2)
    0.1
    """
    sigma = check_scalar(sigma, "sigma", low=0.0)
    ndim = getattr(image, "ndim", None)
    ndim = np.ndim(image) if ndim is None else ndim
    if ndim == 0:
        raise ValueError("image must be an array with at least one dimension, got a scalar")
    xp, image = check_array(image, name="image", ndim=ndim, min_samples=0, shape_hint="(height, width)")
    noise = check_random_state(random_state).standard_normal(tuple(image.shape))
    return image + sigma * from_numpy(xp, noise, dtype=image.dtype, device=image.device)


def dct_dictionary(patch_size, n_atoms, dtype="float64"):
    r"""Overcomplete 2-D DCT dictionary for square patches: unit-norm atoms as columns.

    With ``k = √n_atoms`` frequencies per axis, the 1-D atoms are the cosines

    .. math:: v_j(t) = \cos\!\left(\frac{\pi j (2t + 1)}{2k}\right), \quad t = 0, \dots, p - 1,\ j = 0, \dots, k - 1,

    each but the constant one (``j = 0``) made zero-mean, all normalized; the 2-D atoms are their products
    ``v_i(row) v_j(column)`` (Kronecker products), of unit norm. For ``k = p`` this is the orthonormal 2-D
    DCT-II basis; for ``k > p`` it is the overcomplete DCT frame used as the fixed dictionary in the K-SVD
    denoising literature (Elad and Aharon 2006, with 16 × 16 = 256 atoms for 8 × 8 patches).

    Parameters
    ----------
    patch_size : int
        Side ``p`` of the square patches: atoms have ``p²`` entries, flattened row by row as
        :func:`~eaelib.patches.extract_patches` flattens patches.
    n_atoms : int
        Number of atoms; must be a perfect square ``k²``.
    dtype : {"float64", "float32"}

    Returns
    -------
    numpy.ndarray, shape (patch_size², n_atoms)
        Atom ``i · k + j`` has vertical frequency ``i`` and horizontal frequency ``j``; atom 0 is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import dct_dictionary
    >>> D = dct_dictionary(4, 16)  # k = p: the orthonormal 2-D DCT
    >>> D.shape, bool(np.allclose(D.T @ D, np.eye(16)))
    ((16, 16), True)
    """
    patch_size = check_scalar(patch_size, "patch_size", kind="int", low=1)
    n_atoms = check_scalar(n_atoms, "n_atoms", kind="int", low=1)
    k = math.isqrt(n_atoms)
    if k * k != n_atoms:
        raise ValueError(f"n_atoms must be a perfect square k² (k frequencies per axis), got {n_atoms}")
    dtype = resolve_dtype(get_namespace(np.empty(0)), dtype)
    t = np.arange(patch_size)[:, None]
    j = np.arange(k)[None, :]
    atoms = np.cos(np.pi * j * (2 * t + 1) / (2 * k))
    atoms[:, 1:] -= atoms[:, 1:].mean(axis=0)
    norms = np.linalg.norm(atoms, axis=0)
    # With fewer pixels than frequencies, a zero-mean cosine can vanish (p = 1): keep it zero, not NaN.
    atoms = atoms / np.where(norms > 1e-12, norms, np.inf)
    return np.kron(atoms, atoms).astype(dtype)


def centered_patches(image, patch_size=8, stride=1):
    """Cut ``image`` into patches as rows, each with its mean removed, and return those means too.

    The mean (the patch's DC component) carries the local brightness, which a dictionary of zero-mean
    atoms need not learn; denoising codes the centred patches and adds the means back.

    Parameters
    ----------
    image : array, shape (height, width)
        Gray image (colour images are converted to luma, as by :func:`~eaelib.patches.extract_patches`).
    patch_size : int, default=8
        Side of the square patches.
    stride : int, default=1
        Step between patches, as for :func:`~eaelib.patches.extract_patches`.

    Returns
    -------
    patches : array, shape (n_patches, patch_size²)
        Every row sums to zero (up to rounding).
    means : array, shape (n_patches, 1)
        The mean of every patch: ``patches + means`` are the patches of ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import centered_patches
    >>> image = np.arange(16.0).reshape(4, 4) / 16
    >>> X, means = centered_patches(image, patch_size=2, stride=2)
    >>> (16 * X[0]).tolist(), (16 * means.ravel()).tolist()
    ([-2.5, -1.5, 1.5, 2.5], [2.5, 4.5, 10.5, 12.5])
    """
    return PatchLayout(patch_size, stride, centered=True).extract(image)


def denoise(
    image,
    model,
    patch_size=8,
    stride=1,
    *,
    method=None,
    center=True,
    timings=None,
    return_codes=False,
    **transform_params,
):
    """Denoise ``image`` by coding every patch with ``model`` and averaging the overlapping patches.

    Every ``patch_size × patch_size`` patch at a multiple of ``stride`` is taken and its mean removed
    (:func:`centered_patches`), coded by ``model.transform`` and rebuilt by ``model.inverse_transform``, the
    means added back; each pixel is the average of its patches (on a clean image: the model's reconstruction).

    Parameters
    ----------
    image : array, shape (height, width)
        Gray image (colour images are converted to luma, as by :func:`~eaelib.patches.extract_patches`).
    model : fitted estimator
        Anything with ``transform(X)`` (codes, samples as rows) and ``inverse_transform(Z)``, trained on mean-removed
        patches of ``patch_size²`` pixels: an :class:`~eaelib.EnergyAutoEncoder` (with ``progress=True``, a bar over
        the codes), scikit-learn's ``MiniBatchDictionaryLearning`` or ``SparseCoder``, a :class:`LinearPatchFilter`.
    patch_size : int, default=8
        Side of the square patches, that of the model's atoms.
    stride : int, default=1
        Step between patches; 1 codes every overlapping patch. The patches must cover the image
        (``height − patch_size`` and ``width − patch_size`` multiples of ``stride``).
    method : str, optional
        Passed as ``transform(X, method=method)`` when given: ``"exact"`` or ``"encoder"`` for an EnergyAutoEncoder.
    center : bool, default=True
        Remove each patch's mean before coding, and add it back after; False for a model of uncentred patches.
    timings : dict, optional
        Receives the seconds (:func:`time.perf_counter`) of ``"coding"`` (``transform``) and ``"reconstruction"``.
    return_codes : bool, default=False
        Also return the codes of the centred patches, as ``transform`` gave them.
    **transform_params
        Further keyword arguments of ``transform`` (for instance ``rtol`` and ``max_iter``).

    Returns
    -------
    image : array, shape (height, width)
        The denoised image, in the library and dtype of the model's reconstructions; not clipped.
    codes : array, shape (n_patches, n_atoms)
        Only with ``return_codes=True``: one row per patch, in the order of :func:`~eaelib.patches.extract_patches`.

    Raises
    ------
    ValueError
        If the patches do not cover the image (see :func:`~eaelib.patches.reconstruct_from_patches`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import SparseCoder
    >>> from eaelib import dct_dictionary, denoise
    >>> image = np.add.outer(np.linspace(0, 1, 16), np.linspace(0, 1, 16)) / 2
    >>> basis = dct_dictionary(4, 16).T  # orthonormal: no threshold gives the image back
    >>> coder = SparseCoder(basis, transform_algorithm="threshold", transform_alpha=0.0)
    >>> bool(np.allclose(denoise(image, coder, patch_size=4), image))
    True
    """
    patch_size = check_scalar(patch_size, "patch_size", kind="int", low=1)
    stride = check_scalar(stride, "stride", kind="int", low=1)
    patches, means = PatchLayout(patch_size, stride, centered=bool(center)).extract(image)
    image_shape = tuple(int(s) for s in getattr(image, "shape", np.shape(image)))[:2]
    transform_params |= {} if method is None else {"method": method}
    start = time.perf_counter()
    codes = model.transform(patches, **transform_params)
    middle = time.perf_counter()
    rebuilt = model.inverse_transform(codes)
    if means is not None:  # the model may compute on another array library (a CuPy model, a NumPy image)
        rebuilt = rebuilt + to_namespace(means, get_namespace(rebuilt), dtype=rebuilt.dtype, device=rebuilt.device)
    result = reconstruct_from_patches(rebuilt, image_shape, patch_size, stride)
    if timings is not None:
        timings.update(coding=middle - start, reconstruction=time.perf_counter() - middle)
    return (result, codes) if return_codes else result


class LinearPatchFilter:
    """The least-squares linear map from patches ``X`` to targets ``Y``, usable as a model by :func:`denoise`.

    Fitted on noisy patches ``X`` and the matching clean patches ``Y`` (both centred by the *noisy* patches'
    means, as :func:`denoise` centres them), it is the best *linear* patch denoiser for that image in the least
    squares sense: an oracle, since it needs the clean image, and a bound on what any linear coding (such as
    the encoder's ``Z ≈ X Eᵀ`` followed by ``D``) can do on it. ``transform`` applies the filter, and
    ``inverse_transform`` is the identity: the "codes" are the filtered patches.

    Attributes
    ----------
    weights_ : array, shape (n_features, n_targets)
        ``W`` minimizing ``‖Y − X W‖²`` (minimum-norm solution if ``X`` is rank deficient).

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import LinearPatchFilter
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> W = np.array([[1.0, 0.0], [2.0, 1.0], [0.0, -1.0]])
    >>> bool(np.allclose(LinearPatchFilter().fit(X, X @ W).weights_, W))
    True
    """

    def fit(self, X, Y):
        """Solve the least-squares problem ``min_W ‖Y − X W‖²``; ``X`` and ``Y`` have one sample per row.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
            Input patches (the noisy ones), centred.
        Y : array, shape (n_samples, n_targets)
            Target patches (the clean ones), centred by the same means.

        Returns
        -------
        LinearPatchFilter
            The filter itself, with ``weights_`` set.

        Raises
        ------
        ValueError
            If ``X`` and ``Y`` do not have the same number of rows.
        """
        xp, X = check_array(X, name="X")
        _, Y = check_array(Y, name="Y", xp=xp, dtype=X.dtype)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}")
        self.weights_ = xp.linalg.pinv(X) @ Y
        return self

    def transform(self, X):
        """The filtered patches ``X @ weights_``.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
            Patches, one per row.

        Returns
        -------
        array, shape (n_samples, n_targets)
            The filtered patches.

        Raises
        ------
        ValueError
            If the filter is not fitted, or ``X`` has another number of features than it was fitted on.
        """
        if not hasattr(self, "weights_"):
            raise ValueError("this LinearPatchFilter is not fitted yet: call fit(X, Y) first")
        xp = get_namespace(self.weights_)
        _, X = check_array(X, name="X", xp=xp, dtype=self.weights_.dtype)
        if X.shape[1] != self.weights_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, but the filter expects {self.weights_.shape[0]}")
        return X @ self.weights_

    def inverse_transform(self, Z):
        """``Z`` unchanged: the filtered patches are their own reconstruction.

        Parameters
        ----------
        Z : array, shape (n_samples, n_targets)
            Filtered patches, as :meth:`transform` returns them.

        Returns
        -------
        array, shape (n_samples, n_targets)
            ``Z`` itself.
        """
        return Z
