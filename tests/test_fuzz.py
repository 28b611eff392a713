"""Fuzzing with hypothesis: only the documented exceptions, never a crash or a non-finite result.

The budget is the ``max_examples`` of each test (together 240 generated cases per run). The estimator on
random problems is tests/test_estimator.py::test_fit_properties.
"""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from eaelib import as_gray, extract_patches, load_image
from eaelib import reconstruct_from_patches as rebuild

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=120)

dtypes = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_])


@st.composite
def images(draw):
    shape = draw(st.tuples(st.integers(0, 12), st.integers(0, 12)))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    if channels is not None:
        shape += (channels,)
    dtype = draw(dtypes)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        top = min(np.iinfo(dtype).max, 70000)
        return rng.integers(0, top, size=shape).astype(dtype)
    values = rng.standard_normal(shape).astype(dtype)
    if draw(st.booleans()) and values.size:
        values.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return values


# Any values, on purpose: those outside [0, 1] are accepted with a note (tested in test_bad_input.py).
@pytest.mark.filterwarnings("ignore:image has floating values:UserWarning")
@FUZZ
@given(images(), st.integers(-1, 6), st.one_of(st.none(), st.integers(-1, 7)))
def test_patches_of_anything(image, size, stride):
    try:
        patches = extract_patches(image, size, stride)
    except ValueError as exc:
        assert any(word in str(exc) for word in ("image", "size", "stride", "channels", "integer image")), exc
        return
    assert patches.ndim == 2 and patches.shape[1] == size * size
    assert np.all(np.isfinite(patches))
    gray = as_gray(image)
    try:
        rebuilt = rebuild(patches, gray.shape, size, stride)
    except ValueError as exc:
        assert "covered by no patch" in str(exc)
        rebuilt = rebuild(patches, gray.shape, size, stride, fill=np.nan)
    covered = ~np.isnan(rebuilt)
    np.testing.assert_allclose(rebuilt[covered], gray[covered], rtol=1e-12, atol=0)


@st.composite
def image_files(draw):
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "1", "I;16", "I", "F"]))
    size = draw(st.tuples(st.integers(1, 9), st.integers(1, 9)))
    fmt = draw(st.sampled_from(["PNG", "TIFF", "BMP"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    image = Image.frombytes("L", size, rng.integers(0, 256, size=size[0] * size[1], dtype=np.uint8).tobytes())
    image = (
        image.convert(mode)
        if mode not in ("I;16",)
        else Image.fromarray(rng.integers(0, 65536, size=size[::-1], dtype=np.uint16))
    )
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # this format cannot store this mode: an ordinary file instead
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue(), size


# Colour files are read as gray with a note (asserted in test_image.py), and Pillow warns about the truncated
# TIFF files this test makes on purpose.
@pytest.mark.filterwarnings("ignore:.* is a colour image:UserWarning")
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
@settings(deadline=None, max_examples=120)
@given(image_files(), st.integers(0, 3))
def test_load_image_on_generated_files(tmp_path_factory, file, truncate):
    data, (width, height) = file
    path = tmp_path_factory.mktemp("img") / "image"
    path.write_bytes(data[: len(data) - truncate * len(data) // 4])
    try:
        image = load_image(path)
    except ValueError as exc:  # truncated files
        assert (truncate > 0 and "is not an image" in str(exc)) or "must lie in [0, 1]" in str(exc), exc
        return
    assert image.shape == (height, width) and image.dtype == np.float64
    assert np.all(np.isfinite(image)) and image.min() >= 0 and image.max() <= 1
