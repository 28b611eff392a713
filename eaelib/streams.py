"""Patches from many images, in shuffled batches, without ever holding all of them.

:class:`PatchStream` turns a list of images (files or arrays, grayscale or
colour, of any size at least one patch) into batches of ``size × size``
patches, as rows, every ``stride`` pixels, optionally centred. Its length is
known before any pixel is read (from the images' headers), and one pass over
it visits every patch of every image exactly once.

Memory is bounded by the batch and a pool of a few open images, never by the
number of patches: no array of all patch indices is made. The shuffle has two
levels, both bijections held in O(1) numbers:

- the images are visited in a random order, ``pool`` of them open at a time;
- within an image, patch ``j`` of the epoch is position ``(a·j + c) mod P``
  of its ``P`` positions, for a random ``c`` and a random ``a`` coprime with
  ``P`` (an affine permutation of ``[0, P)``);
- each batch draws its patches from the open images without replacement, as
  many from each as a multivariate hypergeometric draw says (so the open
  images are drained at the same rate, and a batch is a uniform sample of
  their remaining patches).

An epoch is described by its *plan*: per batch, a few segments ``(image,
first index, count)``; batches are cut from the plan, here or on Dask workers
(:meth:`PatchStream.to_dask`).
"""

from __future__ import annotations

import functools
import glob
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._array import is_array
from ._optional import require
from ._validation import check_array, check_random_state, check_scalar
from .image import COLOUR_MODES, NAMED_IMAGES, as_gray, colour_note, load_image
from .patches import PatchLayout, patch_grid

#: Images open at once while shuffling (at most; fewer when they are used up).
POOL = 8


def image_files(*specs):
    """The image files that ``specs`` name: files, folders (their image files) or glob patterns.

    A folder contributes, sorted, the files whose extension Pillow reads
    (``.png``, ``.jpg``, ``.tif``, …); its other files (a ``README``, notes)
    are left out. A file named explicitly, or matched by a pattern, is kept
    whatever its extension, and read (and checked) by :class:`PatchStream`.
    The named images of :func:`~eaelib.load_image` (``"barbara"``) pass
    through as names.

    Parameters
    ----------
    *specs : str or path-like
        Image files, folders, glob patterns (``"photos/*.jpg"``) or named images.

    Returns
    -------
    list of str or Path
        In the order given, each folder's and pattern's files sorted.

    Raises
    ------
    FileNotFoundError
        If a spec is neither a file, a folder nor a pattern that matches a file.
    ValueError
        If a folder holds no image file, or no spec is given.
    """
    if not specs:
        raise ValueError("images: give at least one image file, folder or pattern")
    found = []
    for spec in specs:
        if isinstance(spec, str) and spec in NAMED_IMAGES:
            found.append(spec)
            continue
        path = Path(spec)
        if path.is_dir():
            extensions = _image_extensions()
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
            if not files:
                raise ValueError(
                    f"images: the folder {str(path)!r} holds no image file (none with an extension Pillow reads, "
                    "such as .png, .jpg or .tif)"
                )
            found += files
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(str(spec)):
            files = sorted(Path(p) for p in glob.glob(str(spec)) if Path(p).is_file())
            if not files:
                raise FileNotFoundError(f"images: the pattern {str(spec)!r} matches no file")
            found += files
        else:
            raise FileNotFoundError(f"images: no file, folder or pattern at {str(path)!r}")
    return found


@functools.cache
def _image_extensions():
    Image = require("PIL.Image", "reading image files")
    return frozenset(ext.lower() for ext in Image.registered_extensions())


def _image_header(path):
    """``(height, width, mode)`` of an image file from its header, without decoding its pixels."""
    Image = require("PIL.Image", "reading image files")
    try:
        with Image.open(path) as img:
            width, height = img.size
            mode = img.mode
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not an image Pillow can read: {exc}") from exc
    return height, width, mode


@functools.lru_cache(maxsize=2 * POOL)
def _cached_image(path):
    """The gray image at ``path``: Dask workers cut many chunks from the same few open images."""
    return load_image(path, quiet=True)  # the stream said so once, when it read the headers


@dataclass(frozen=True)
class Segment:
    """Patches ``start … start + count − 1`` of image ``image`` in its epoch order ``(a·j + c) mod P``."""

    image: int
    a: int
    c: int
    start: int
    count: int


class PatchStream:
    """Shuffled batches of patches from many images: an iterable source for online learning.

    Parameters
    ----------
    images : sequence of str, path-like or array
        Image files (read with :func:`~eaelib.load_image`, one at a time, when
        first needed), the named images (``"barbara"``), or arrays of shape
        ``(height, width)`` or ``(height, width, channels)`` (colour becomes
        luma, as :func:`~eaelib.as_gray` does). Use :func:`image_files` to
        expand folders and glob patterns.
    size : int, default=12
        Side of the square patches; every image must be at least that large.
    stride : int, optional
        Step between patches; ``size`` (non-overlapping) by default.
    center : bool, default=False
        Remove each patch's mean (as denoising needs).
    batch_size : int, default=256
        Patches per batch (the last batch of an epoch may be smaller).
    shuffle : bool, default=True
        Shuffle the patches every epoch; else every image in order, its
        patches in the order of :func:`~eaelib.extract_patches`.
    random_state : int, numpy.random.Generator or None
        Seed of the shuffles: epoch ``k`` of two streams with the same seed
        visits the same patches in the same batches.
    pool : int, default=8
        Images open at once while shuffling: more mixes better, and holds
        more images in memory.
    dtype : {"float64", "float32"}, default="float64"
        Floating dtype of the batches.

    Attributes
    ----------
    n_patches : int
        Patches per epoch, over all the images.
    n_features : int
        ``size²``.
    shapes : list of (int, int)
        Each image's ``(height, width)``.
    patch_counts : list of int
        Each image's number of patches.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import PatchStream
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.random((20, 30)), rng.random((16, 16, 3))]  # gray, colour
    >>> stream = PatchStream(images, size=8, stride=4, random_state=0)
    >>> stream.n_patches, len(stream)  # 4 × 6 + 3 × 3 patches
    (33, 1)
    >>> batch = next(iter(stream))
    >>> batch.shape
    (33, 64)
    """

    def __init__(
        self,
        images,
        size=12,
        stride=None,
        *,
        center=False,
        batch_size=256,
        shuffle=True,
        random_state=None,
        pool=POOL,
        dtype="float64",
    ):
        self.layout = PatchLayout(size, size if stride is None else stride, center)
        self.size, self.stride, self.center = self.layout.size, self.layout.stride, self.layout.centered
        self.batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
        self.pool = check_scalar(pool, "pool", kind="int", low=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        self.shuffle = bool(shuffle)
        if str(dtype) not in ("float32", "float64"):
            raise ValueError(f"dtype must be one of ('float32', 'float64'), got {dtype!r}")
        self.dtype = np.dtype(str(dtype))
        # One integer seeds every epoch: epoch k is shuffled by SeedSequence((seed, k)).
        self.seed = int(check_random_state(random_state).integers(2**63))
        if isinstance(images, (str, os.PathLike)) or is_array(images):
            images = [images]
        self.images, self.shapes, colour = [], [], []
        for k, image in enumerate(images):
            source, shape, mode = self._check_image(k, image)
            self.images.append(source)
            self.shapes.append(shape)
            if mode in COLOUR_MODES:
                colour.append((source, mode))
        if not self.images:
            raise ValueError("images must hold at least one image, got none")
        if colour:  # once for the stream, not once per file and epoch
            first = colour_note(*colour[0])
            others = f"; so are {len(colour) - 1} more of its {len(self.images)} images" if len(colour) > 1 else ""
            warnings.warn(first + others, UserWarning, stacklevel=2)
        self.patch_counts = []
        for k, shape in enumerate(self.shapes):
            try:
                rows, cols = patch_grid(shape, self.size, self.stride)
            except ValueError as exc:
                raise ValueError(f"images[{k}] ({self._name(k)}): {exc}") from exc
            self.patch_counts.append(rows * cols)
        self.n_patches = sum(self.patch_counts)
        self.n_features = self.size * self.size
        self._epoch = 0
        self._spec = {
            "size": self.size,
            "stride": self.stride,
            "center": self.center,
            "dtype": self.dtype.name,
            "shapes": self.shapes,
            "counts": self.patch_counts,
        }

    def _check_image(self, k, image):
        if isinstance(image, (str, os.PathLike)):
            if str(image) in NAMED_IMAGES:
                pixels = load_image(str(image))
                return str(image), pixels.shape, "L"  # documented as converted: no word
            path = Path(image)
            if not path.is_file():
                raise FileNotFoundError(f"images[{k}]: no image file at {str(path)!r}")
            try:
                height, width, mode = _image_header(path)
                return path, (height, width), mode
            except ValueError as exc:
                raise ValueError(f"images[{k}]: {exc}") from exc
        try:
            _, gray = check_array(as_gray(image), name=f"images[{k}]", shape_hint="(height, width)", min_samples=0)
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith("images[") else f"images[{k}]: {message}") from exc
        return np.asarray(gray, dtype=np.float64), tuple(gray.shape), "L"  # an array: the caller's choice

    def _name(self, k):
        source = self.images[k] if k < len(self.images) else None
        return str(source) if isinstance(source, (str, Path)) else f"array of shape {self.shapes[k]}"

    def __len__(self):
        """Batches per epoch."""
        return math.ceil(self.n_patches / self.batch_size)

    def __repr__(self):
        return (
            f"PatchStream({len(self.images)} images, size={self.size}, stride={self.stride}, center={self.center}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}: {self.n_patches} patches)"
        )

    # -- the plan of an epoch ----------------------------------------------------------------------------

    def plan(self, epoch, *, shuffle=None, batch_size=None):
        """The batches of epoch ``epoch`` as lists of :class:`Segment`, one list per batch (a generator).

        Every patch of every image is in exactly one segment of one batch.

        Parameters
        ----------
        epoch : int
            The epoch: with the stream's seed, it decides the shuffle.
        shuffle : bool, optional
            Whether to shuffle; the stream's ``shuffle`` by default.
        batch_size : int, optional
            Patches per batch; the stream's ``batch_size`` by default.

        Yields
        ------
        list of Segment
            The segments ``(image, a, c, start, count)`` of one batch.
        """
        shuffle = self.shuffle if shuffle is None else shuffle
        batch_size = self.batch_size if batch_size is None else batch_size
        rng = np.random.default_rng(np.random.SeedSequence((self.seed, epoch)))
        order = rng.permutation(len(self.images)) if shuffle else range(len(self.images))
        queue = iter(order)
        pool_size = self.pool if shuffle else 1
        open_images = []  # [image, a, c, next index]
        left = self.n_patches
        while left:
            need, batch = min(batch_size, left), []
            while need:
                for image in queue if len(open_images) < pool_size else ():
                    P = self.patch_counts[image]
                    a, c = (_coprime(P, rng), int(rng.integers(P))) if shuffle else (1, 0)
                    open_images.append([image, a, c, 0])
                    if len(open_images) == pool_size:
                        break
                remaining = np.array([self.patch_counts[o[0]] - o[3] for o in open_images], dtype=np.int64)
                if remaining.sum() <= need:
                    counts = remaining
                elif len(open_images) == 1:
                    counts = np.array([need])
                else:
                    counts = rng.multivariate_hypergeometric(remaining, need)
                for entry, count in zip(open_images, counts.tolist(), strict=True):
                    if count:
                        batch.append(Segment(entry[0], entry[1], entry[2], entry[3], count))
                        entry[3] += count
                need -= int(counts.sum())
                open_images = [o for o in open_images if o[3] < self.patch_counts[o[0]]]
            left -= sum(s.count for s in batch)
            yield batch

    def positions(self, segment):
        """``(rows, cols)`` of the top-left pixels of the patches of ``segment``.

        Parameters
        ----------
        segment : Segment
            A segment of :meth:`plan`.

        Returns
        -------
        rows : numpy.ndarray of int, shape (segment.count,)
            Row of each patch's top-left pixel in the segment's image, in the order of the segment's patches.
        cols : numpy.ndarray of int, shape (segment.count,)
            Column of the same pixels.
        """
        return _positions(self._cutting_spec(), segment)

    # -- batches -----------------------------------------------------------------------------------------

    def batches(self, epoch, *, shuffle=None):
        """The batches of epoch ``epoch``, patches as rows.

        Parameters
        ----------
        epoch : int
            The epoch: with the stream's seed, it decides the shuffle.
        shuffle : bool, optional
            Whether to shuffle; the stream's ``shuffle`` by default.

        Yields
        ------
        numpy.ndarray, shape (batch, size²)
            One batch, centred if ``center``, in the stream's dtype.
        """
        yield from self._cut_along(self.plan(epoch, shuffle=shuffle))

    @property
    def epoch(self):
        """The epoch that the next ``iter(stream)`` visits: 0, then one more per call."""
        return self._epoch

    def __iter__(self):
        """The next epoch's batches: every call shuffles anew (epoch 0, 1, 2, …)."""
        epoch, self._epoch = self._epoch, self._epoch + 1
        return self.batches(epoch)

    def in_order(self, batch_size=None):
        """Every patch once, image after image, in the order of :func:`~eaelib.extract_patches` (evaluation).

        Parameters
        ----------
        batch_size : int, optional
            Patches per batch; the stream's ``batch_size`` by default.

        Yields
        ------
        numpy.ndarray, shape (batch, size²)
            One batch, centred if ``center``, in the stream's dtype.
        """
        yield from self._cut_along(self.plan(0, shuffle=False, batch_size=batch_size))

    def _cut_along(self, plan):
        """The batches of ``plan`` (lists of segments), each image loaded once while its patches are cut."""
        loaded = {}
        for segments in plan:
            yield self._cut(segments, lambda k: self._load(k, loaded))
            for s in segments:  # an image used up leaves memory
                if s.start + s.count == self.patch_counts[s.image]:
                    loaded.pop(s.image, None)

    def _load(self, k, loaded):
        if k not in loaded:
            source = self.images[k]
            loaded[k] = source if isinstance(source, np.ndarray) else load_image(source, quiet=True)
        return loaded[k]

    def _cut(self, segments, image_of):
        return _cut_chunk(self._cutting_spec(), [image_of(s.image) for s in segments], segments)

    # -- Dask ----------------------------------------------------------------------------------------------

    def to_dask(self, chunks_per_batch=1, *, epoch=0):
        """The patches of epoch ``epoch`` as a ``dask.array`` of shape (n_patches, size²).

        Each batch of the epoch's plan becomes ``chunks_per_batch`` consecutive
        chunks (one per worker, so that they are coded together): fitted with
        ``batch_size`` the stream's, the Dask fit's batches are the stream's
        (:mod:`eaelib.distributed`). A chunk is cut on the worker that
        computes it: image files are read there (each worker keeps the last
        few it read), arrays travel once per worker. Nothing is computed
        until the chunks are used.

        Parameters
        ----------
        chunks_per_batch : int, default=1
            Chunks each batch is split into, as equal in size as can be.
        epoch : int, default=0
            The epoch whose plan to follow.

        Returns
        -------
        dask.array.Array, shape (n_patches, size²)
            The epoch's patches as rows, batch after batch, in the stream's dtype.

        Raises
        ------
        ImportError
            If Dask is not installed (the ``dask`` extra).
        """
        from ._optional import import_dask

        dask, da = import_dask("PatchStream.to_dask")
        k = check_scalar(chunks_per_batch, "chunks_per_batch", kind="int", low=1)
        sources = [dask.delayed(s) if isinstance(s, np.ndarray) else s for s in self.images]
        spec = self._cutting_spec()
        blocks = []
        for batch in self.plan(epoch):
            for segments in _split(batch, k):
                block = dask.delayed(_cut_chunk, pure=True)(spec, [sources[s.image] for s in segments], segments)
                rows = sum(s.count for s in segments)
                blocks.append(da.from_delayed(block, shape=(rows, self.n_features), dtype=self.dtype))
        return da.concatenate(blocks, axis=0)

    def _cutting_spec(self):
        """What cutting a chunk needs besides its images and segments (small: it travels with every chunk)."""
        return self._spec


def _split(segments, k):
    """The patches of ``segments``, in order, as ``k`` lists of segments of sizes as equal as can be (none empty)."""
    total = sum(s.count for s in segments)
    k = min(k, total)
    sizes = [total // k + (i < total % k) for i in range(k)]
    parts, current, room = [], [], sizes[0]
    for s in segments:
        start, count = s.start, s.count
        while count:
            take = min(count, room)
            current.append(Segment(s.image, s.a, s.c, start, take))
            start, count, room = start + take, count - take, room - take
            if room == 0:
                parts.append(current)
                current = []
                room = sizes[len(parts)] if len(parts) < k else 0
    return parts


def _cut_chunk(spec, images, segments):
    """One chunk of :meth:`PatchStream.to_dask`, on a worker: ``images[i]`` holds ``segments[i]``."""
    parts = []
    for image, s in zip(images, segments, strict=True):
        pixels = image if isinstance(image, np.ndarray) else _cached_image(image)
        parts.append(cut_patches(pixels, *_positions(spec, s), spec["size"]))
    X = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    if spec["center"]:
        X = X - X.mean(axis=1, keepdims=True)
    return X.astype(spec["dtype"], copy=False)


def _positions(spec, s):
    """``(rows, cols)`` of the top-left pixels of segment ``s``'s patches: positions ``(a·j + c) mod P``."""
    P = spec["counts"][s.image]
    _, n_cols = patch_grid(spec["shapes"][s.image], spec["size"], spec["stride"])
    position = (s.a * np.arange(s.start, s.start + s.count, dtype=np.int64) + s.c) % P
    return spec["stride"] * (position // n_cols), spec["stride"] * (position % n_cols)


def cut_patches(image, rows, cols, size):
    """The ``size × size`` patches of ``image`` whose top-left pixels are ``(rows[i], cols[i])``, as rows."""
    offsets = np.arange(size)
    r = (rows[:, None] + offsets[None, :])[:, :, None]
    c = (cols[:, None] + offsets[None, :])[:, None, :]
    return image[r, c].reshape(len(rows), size * size)


def _coprime(P, rng):
    """A random ``a`` in ``[1, P)`` with ``gcd(a, P) = 1`` (1 when ``P ≤ 2``)."""
    if P <= 2:
        return 1
    while True:
        a = int(rng.integers(1, P))
        if math.gcd(a, P) == 1:
            return a
