"""Square patches of an image as samples, and images back from patches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._array import get_namespace
from ._validation import check_array, check_scalar
from .image import as_gray


def patch_grid(image_shape, size, stride=None):
    """Number of patch positions ``(rows, columns)`` of an image of ``image_shape``.

    Patches start at multiples of ``stride`` and lie wholly inside the image,
    so a border narrower than ``stride`` may be covered by no patch.

    Parameters
    ----------
    image_shape : (int, int)
        ``(height, width)`` of the image.
    size : int
        Side of the square patches.
    stride : int, optional
        Step between patches; ``size`` by default.

    Returns
    -------
    rows : int
        Number of patch positions down the image.
    columns : int
        Number of patch positions across it.

    Raises
    ------
    ValueError
        If ``image_shape`` is not two non-negative integers or the image is smaller than one patch.
    """
    size = check_scalar(size, "size", kind="int", low=1)
    stride = size if stride is None else check_scalar(stride, "stride", kind="int", low=1)
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (height, width), got {tuple(image_shape)}")
    height, width = (check_scalar(s, "image_shape", kind="int", low=0) for s in image_shape)
    if height < size or width < size:
        raise ValueError(f"the image ({height} × {width}) is smaller than one patch ({size} × {size})")
    return (height - size) // stride + 1, (width - size) // stride + 1


def _offsets(size):
    return [(a, b) for a in range(size) for b in range(size)]


def extract_patches(image, size=12, stride=None):
    """Cut ``image`` into square patches, one per row: an array of shape (n_patches, size²).

    Parameters
    ----------
    image : array, shape (height, width) or (height, width, channels)
        Image of any supported array library; colour and integer images are
        converted by :func:`~eaelib.image.as_gray`.
    size : int, default=12
        Side of the square patches.
    stride : int, optional
        Step between patches; ``size`` (non-overlapping patches) by default.

    Returns
    -------
    array, shape (n_rows · n_cols, size²)
        Patch ``i · n_cols + j`` starts at pixel ``(i · stride, j · stride)``
        (see :func:`patch_grid`); each row is the patch flattened row by row.
    """
    xp, image = check_array(as_gray(image), name="image", shape_hint="(height, width)", min_samples=0)
    stride = size if stride is None else stride
    n_rows, n_cols = patch_grid(image.shape, size, stride)
    # One strided slice per pixel offset within the patch: size² vectorized
    # copies, the same code for every array library.
    span_r, span_c = stride * (n_rows - 1) + 1, stride * (n_cols - 1) + 1
    columns = [image[a : a + span_r : stride, b : b + span_c : stride] for a, b in _offsets(size)]
    return xp.reshape(xp.stack(columns, axis=-1), (n_rows * n_cols, size * size))


def reconstruct_from_patches(patches, image_shape, size=12, stride=None, *, fill=None):
    """Image of ``image_shape`` from its patches, averaging where they overlap.

    The inverse of :func:`extract_patches`: for ``stride ≤ size`` and an image
    that the patches tile, ``reconstruct_from_patches(extract_patches(im, s, t),
    im.shape, s, t)`` returns ``im``.

    Parameters
    ----------
    patches : array, shape (n_patches, size²)
        One flattened patch per row, in the order of :func:`extract_patches`.
    image_shape : (int, int)
        ``(height, width)`` of the image to rebuild.
    size, stride : int
        As given to :func:`extract_patches`; ``stride`` is ``size`` by default.
    fill : float, optional
        Value of the pixels that no patch covers (a border narrower than the
        stride, or gaps when ``stride > size``). If None, such pixels are an error.

    Returns
    -------
    array, shape image_shape
        Every pixel the mean of the patch entries that cover it, in the namespace and dtype of ``patches``.

    Raises
    ------
    ValueError
        If ``patches`` does not have the shape the grid needs, or some pixel is covered by no patch and
        ``fill`` is None.
    """
    xp, patches = check_array(patches, name="patches", shape_hint="(n_patches, size²)", min_samples=0)
    stride = size if stride is None else stride
    n_rows, n_cols = patch_grid(image_shape, size, stride)
    if tuple(patches.shape) != (n_rows * n_cols, size * size):
        raise ValueError(
            f"patches must have shape ({n_rows * n_cols}, {size * size}) for a {tuple(image_shape)} image "
            f"with size={size} and stride={stride}, got {tuple(patches.shape)}"
        )
    height, width = image_shape
    total = xp.zeros((height, width), dtype=patches.dtype, device=patches.device)
    count = xp.zeros((height, width), dtype=patches.dtype, device=patches.device)
    grid = xp.reshape(patches, (n_rows, n_cols, size * size))
    span_r, span_c = stride * (n_rows - 1) + 1, stride * (n_cols - 1) + 1
    for k, (a, b) in enumerate(_offsets(size)):
        window = (slice(a, a + span_r, stride), slice(b, b + span_c, stride))
        total[window] += grid[:, :, k]
        count[window] += 1.0
    covered = count > 0
    n_uncovered = int(xp.sum(xp.astype(~covered, xp.int64)))
    if n_uncovered and fill is None:
        last_row, last_col = stride * (n_rows - 1) + size, stride * (n_cols - 1) + size
        raise ValueError(
            f"{n_uncovered} pixels are covered by no patch (patches reach row {last_row} of {height} and column "
            f"{last_col} of {width}{', and leave gaps since stride > size' if stride > size else ''}); "
            "pass fill=<value> to accept them, or choose a size and stride that tile the image"
        )
    image = total / xp.where(covered, count, xp.ones_like(count))
    if n_uncovered:
        image = xp.where(covered, image, xp.asarray(fill, dtype=image.dtype, device=image.device))
    return image


@dataclass(frozen=True)
class PatchLayout:
    """How samples are cut from an image: ``size × size`` patches every ``stride`` pixels, centred or not.

    A model learned from an image's patches only makes sense on patches cut the same way: the command
    line stores the layout in the model file (see :func:`~eaelib.save_model`) and cuts every later
    image with it.

    Parameters
    ----------
    size : int
        Side of the square patches.
    stride : int
        Step between patches.
    centered : bool, default=False
        Whether each patch has its mean removed (and added back on reconstruction), as for denoising.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import PatchLayout
    >>> layout = PatchLayout(2, 2, centered=True)
    >>> image = np.arange(16.0).reshape(4, 4) / 16  # gray values in [0, 1]
    >>> X, means = layout.extract(image)
    >>> bool(np.allclose(layout.rebuild(X, means, image.shape), image))
    True
    """

    size: int
    stride: int
    centered: bool = False

    def __post_init__(self):
        object.__setattr__(self, "size", check_scalar(self.size, "size", kind="int", low=1))
        object.__setattr__(self, "stride", check_scalar(self.stride, "stride", kind="int", low=1))
        if not isinstance(self.centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False, got {self.centered!r}")
        object.__setattr__(self, "centered", bool(self.centered))

    def covered_shape(self, image_shape):
        """``(height, width)`` of the top-left part of an image of ``image_shape`` that the patches cover.

        Parameters
        ----------
        image_shape : (int, int)
            ``(height, width)`` of the image.

        Returns
        -------
        height : int
            Rows covered: the rows below are in no patch.
        width : int
            Columns covered: the columns to the right are in no patch.
        """
        n_rows, n_cols = patch_grid(image_shape, self.size, self.stride)
        return self.stride * (n_rows - 1) + self.size, self.stride * (n_cols - 1) + self.size

    def extract(self, image):
        """``(X, means)``: the patches of ``image`` as rows and, if ``centered``, their means (else None).

        Parameters
        ----------
        image : array, shape (height, width) or (height, width, channels)
            As for :func:`extract_patches`.

        Returns
        -------
        X : array, shape (n_patches, size²)
            The patches as rows, centred if ``centered``.
        means : array of shape (n_patches, 1), or None
            Their means, such that ``X + means`` are the patches; None unless ``centered``.
        """
        X = extract_patches(image, self.size, self.stride)
        if not self.centered:
            return X, None
        means = get_namespace(X).mean(X, axis=1, keepdims=True)
        return X - means, means

    def rebuild(self, X, means, image_shape, *, fill=None):
        """The image of ``image_shape`` from patches ``X`` and ``means`` as :meth:`extract` returns them.

        Parameters
        ----------
        X : array, shape (n_patches, size²)
            The patches as rows (centred if ``means`` is given).
        means : array of shape (n_patches, 1), or None
            Means to add back to the patches.
        image_shape : (int, int)
            ``(height, width)`` of the image.
        fill : float, optional
            Value of the pixels no patch covers, as for :func:`reconstruct_from_patches`.

        Returns
        -------
        array, shape image_shape
            The patches put back, averaged where they overlap.
        """
        if means is not None:
            X = X + means
        return reconstruct_from_patches(X, image_shape, self.size, self.stride, fill=fill)
