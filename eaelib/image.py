"""Reading images as grayscale float arrays in [0, 1]."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from importlib import resources
from pathlib import Path

import numpy as np

from ._array import get_namespace, is_array, to_numpy
from ._optional import require

#: The package's data folder (package data: it ships in the wheel and travels with a copied
#: ``eaelib`` folder); provenance and checksums are in its README.md.
DATA_DIR = resources.files(__package__) / "data"
#: Images known by name, in ``DATA_DIR``.
NAMED_IMAGES = {"barbara": "barbara.png"}

# ITU-R BT.601 luma weights for R, G and B.
BT601 = np.array([0.299, 0.587, 0.114])
#: Above this, a floating image is most likely in 0–255 rather than [0, 1] (noise on a [0, 1] image
#: with σ = 0.2 stays well below it).
FLOAT_IMAGE_MAX = 2.0


def load_image(name_or_path, *, quiet=False):
    """Load an image file as a 2-D float64 NumPy array with values in [0, 1].

    Parameters
    ----------
    name_or_path : str or path-like
        A name from ``NAMED_IMAGES`` (``"barbara"``, shipped with the package
        in ``eaelib/data``) or the path of an image file Pillow can read.
        Colour images become their ITU-R BT.601 luma ``0.299 R + 0.587 G +
        0.114 B``; an alpha channel is dropped.
    quiet : bool, default False
        Convert a colour file to gray without the warning that says so. The
        named images are documented as converted and never warn.

    Returns
    -------
    numpy.ndarray, shape (height, width)
        The gray image, float64, in [0, 1] (8- and 16-bit files are divided by 255 and 65535).

    Raises
    ------
    FileNotFoundError
        If ``name_or_path`` is neither a named image nor a file.
    ValueError
        If Pillow cannot read the file.

    Warns
    -----
    UserWarning
        When a colour file (not a named image) is converted to gray, unless
        ``quiet``: eaelib learns from gray images only.
    """
    Image = require("PIL.Image", "load_image")
    named = str(name_or_path) in NAMED_IMAGES
    path = DATA_DIR / NAMED_IMAGES[str(name_or_path)] if named else Path(name_or_path)
    if not path.is_file():
        known = ", ".join(repr(n) for n in NAMED_IMAGES)
        raise FileNotFoundError(f"name_or_path must be an image file or one of {known}; no file at {path}")
    # as_file: a real path even where the package is imported from a zip file.
    with resources.as_file(path) if named else nullcontext(path) as file:
        try:
            with Image.open(file) as img:
                img.load()
                mode = img.mode
                pixels = np.asarray(img.convert("RGBA") if mode == "P" else img)
                if mode == "P":
                    mode = "RGBA"
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"name_or_path {str(path)!r} is not an image Pillow can read: {exc}") from exc
    if mode in COLOUR_MODES and not (named or quiet):
        warnings.warn(colour_note(path, mode), UserWarning, stacklevel=2)
    return _to_gray(pixels, mode)


#: Pillow's modes of colour images (a palette is read as RGBA); "L", "LA", "I", "F" and "1" are gray.
COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"})


def colour_note(path, mode):
    """What :func:`load_image` says when it converts the colour file ``path`` (Pillow mode ``mode``)."""
    return f"{str(path)!r} is a colour image ({mode}): read as gray, its ITU-R BT.601 luma (eaelib learns from gray)"


def _to_gray(pixels, mode):
    """Pillow's pixels as a gray float image; its 32-bit "I" mode holds 8- or 16-bit data."""
    if mode == "I" or mode.startswith("I;16"):
        top = 255 if pixels.max(initial=0) <= 255 and not mode.startswith("I;16") else 65535
        if pixels.min(initial=0) < 0 or pixels.max(initial=0) > top:
            raise ValueError(f"integer image values outside [0, {top}] are not supported")
        return pixels.astype(np.float64) / top
    # Floating pixels are checked before as_gray, whose warning about a 0–255 scale would come first.
    floating = pixels.dtype.kind == "f" and pixels.size
    if floating and not (np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0):
        raise ValueError(
            f"floating-point image values must lie in [0, 1], got [{pixels.min():g}, {pixels.max():g}]: "
            "rescale the file, or read it yourself and use as_gray"
        )
    return np.asarray(as_gray(pixels), dtype=np.float64)


def as_gray(image):
    """A 2-D floating image from a gray, gray + alpha, RGB or RGBA array of any supported library.

    Parameters
    ----------
    image : array, shape (height, width) or (height, width, channels)
        ``channels`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
        Integer images are scaled to [0, 1]: uint8 by 255, uint16 by 65535,
        other integer types by 255 or 65535, whichever holds their values;
        boolean images become 0 and 1; floating images keep their values.

    Returns
    -------
    array, shape (height, width)
        Colour becomes ITU-R BT.601 luma; alpha is dropped.

    Warns
    -----
    UserWarning
        When a floating image has values above ``FLOAT_IMAGE_MAX`` (2): most
        likely 8-bit pixel values (0–255) stored as floats, where eaelib's
        images, noise levels and weights assume [0, 1].
    """
    if not is_array(image):
        image = np.asarray(image)
    xp = get_namespace(image)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image must have shape (height, width) or (height, width, channels), got shape {tuple(image.shape)}"
        )
    if xp.isdtype(image.dtype, "bool"):
        image = xp.astype(image, xp.float64)
    elif xp.isdtype(image.dtype, "integral"):
        image = xp.astype(image, xp.float64) / _integer_range(xp, image)
    elif not xp.isdtype(image.dtype, "real floating"):
        raise ValueError(f"image must hold real numbers, got dtype {image.dtype}")
    elif image.size and float(xp.max(image)) > FLOAT_IMAGE_MAX:
        high = float(xp.max(image))
        warnings.warn(
            f"image has floating values up to {high:g}, where eaelib expects images in [0, 1] (as load_image "
            "reads them; integer images are scaled): divide by 255 for 8-bit pixel values, or by the image's "
            "full scale",
            UserWarning,
            stacklevel=2,
        )
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return image[:, :, 0]
    if channels in (3, 4):  # RGB, RGBA
        weights = xp.asarray(BT601, dtype=image.dtype, device=image.device)
        return image[:, :, :3] @ weights
    raise ValueError(f"image must have 1 to 4 channels (gray, gray + alpha, RGB, RGBA), got {channels}")


def _integer_range(xp, image):
    """255 or 65535: the full scale of an integer image."""
    if image.dtype == xp.uint8:
        return 255.0
    if image.dtype == xp.uint16:
        return 65535.0
    low, high = (float(v) for v in (xp.min(image), xp.max(image))) if image.size else (0.0, 0.0)
    for top in (255.0, 65535.0):
        if low >= 0 and high <= top:
            return top
    raise ValueError(f"integer image values must lie in [0, 65535] to be scaled to [0, 1], got [{low:g}, {high:g}]")


def save_image(path, image):
    """Write a gray image with values in [0, 1] as an 8-bit file (PNG, or as ``path``'s extension says).

    Parameters
    ----------
    path : str or path-like
        The file to write; Pillow chooses the format from its extension.
    image : array, shape (height, width)
        Gray values, of any supported array library; values outside [0, 1]
        (a reconstruction may overshoot) are clipped, then rounded to 0–255.
    """
    Image = require("PIL.Image", "save_image")
    pixels = np.clip(to_numpy(image, dtype=np.float64), 0.0, 1.0)
    if pixels.ndim != 2:
        raise ValueError(f"image must have shape (height, width), got shape {pixels.shape}")
    Image.fromarray(np.round(255 * pixels).astype(np.uint8)).save(path)
