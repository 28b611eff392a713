"""Reading images as grayscale float arrays in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Images known by name, in the repository's ``data`` folder.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
NAMED_IMAGES = {"barbara": "barbara.png"}

# ITU-R BT.601 luma weights for R, G and B.
BT601 = np.array([0.299, 0.587, 0.114])


def load_image(name_or_path):
    """Load an image file as a 2-D float64 NumPy array with values in [0, 1].

    Parameters
    ----------
    name_or_path : str or path-like
        A name from ``NAMED_IMAGES`` (``"barbara"``) or the path of an image
        file Pillow can read. Colour images become their ITU-R BT.601 luma
        ``0.299 R + 0.587 G + 0.114 B``; an alpha channel is dropped.

    Returns
    -------
    numpy.ndarray, shape (height, width)
    """
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("load_image needs Pillow: pip install pillow") from exc
    path = Path(name_or_path)
    if str(name_or_path) in NAMED_IMAGES:
        path = DATA_DIR / NAMED_IMAGES[str(name_or_path)]
    if not path.is_file():
        known = ", ".join(repr(n) for n in NAMED_IMAGES)
        raise FileNotFoundError(f"name_or_path must be an image file or one of {known}; no file at {path}")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            pixels = np.asarray(img.convert("RGBA") if mode == "P" else img)
            if mode == "P":
                mode = "RGBA"
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"name_or_path {str(path)!r} is not an image Pillow can read: {exc}") from exc
    return _to_gray(pixels, mode)


def _to_gray(pixels, mode):
    if pixels.dtype == np.bool_:
        values = pixels.astype(np.float64)
    elif pixels.dtype.kind in "ui":
        # Pillow stores 16-bit images ("I;16") in a wider integer type.
        top = 65535.0 if mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        values = pixels.astype(np.float64) / top
    else:
        values = pixels.astype(np.float64)
    if values.ndim == 3:
        channels = values.shape[2]
        if channels in (1, 2):  # gray, gray + alpha
            values = values[:, :, 0]
        elif channels in (3, 4):  # RGB, RGBA
            values = values[:, :, :3] @ BT601
        else:
            raise ValueError(f"images with {channels} channels are not supported")
    return np.clip(values, 0.0, 1.0)
