"""Patch extraction and reconstruction: shapes, order and exact round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eaelib import extract_patches, patch_grid, reconstruct_from_patches


@st.composite
def image_and_grid(draw, max_stride_factor=1.0):
    size = draw(st.integers(1, 6))
    stride = draw(st.integers(1, max(1, int(size * max_stride_factor))))
    height = draw(st.integers(size, size + 14))
    width = draw(st.integers(size, size + 14))
    return size, stride, (height, width)


@pytest.mark.filterwarnings("ignore:image has floating values:UserWarning")  # pixel values 0–34, readable
def test_patch_order_and_content():
    image = np.arange(5 * 7, dtype=float).reshape(5, 7)
    patches = extract_patches(image, size=2, stride=2)
    assert patch_grid(image.shape, 2, 2) == (2, 3)
    assert patches.shape == (6, 4)
    # Patch i·n_cols + j starts at (i·stride, j·stride), flattened row by row.
    np.testing.assert_array_equal(patches[4], image[2:4, 2:4].ravel())
    np.testing.assert_array_equal(patches[0], [0, 1, 7, 8])


def test_barbara_sized_grid_has_the_documented_number_of_patches():
    assert patch_grid((574, 702), 12) == (47, 58)  # N = 2726
    assert patch_grid((574, 702), 12, 4) == (141, 173)


# Pixel values 0–255 as floats, on purpose (their averages are exact): the note about values above 1 is expected.
@pytest.mark.filterwarnings("ignore:image has floating values:UserWarning")
@settings(max_examples=150, deadline=None)
@given(image_and_grid(), st.integers(0, 2**32 - 1))
def test_round_trip_is_exact_on_integer_images(grid, seed):
    size, stride, shape = grid
    image = np.random.default_rng(seed).integers(0, 256, size=shape).astype(float)
    patches = extract_patches(image, size, stride)
    rebuilt = reconstruct_from_patches(patches, shape, size, stride, fill=np.nan)
    covered = ~np.isnan(rebuilt)
    # Averages of identical integers are exact in floating point.
    np.testing.assert_array_equal(rebuilt[covered], image[covered])
    n_rows, n_cols = patch_grid(shape, size, stride)
    assert covered[: stride * (n_rows - 1) + size, : stride * (n_cols - 1) + size].all()
    assert not covered[stride * (n_rows - 1) + size :, :].any()


@settings(max_examples=100, deadline=None)
@given(image_and_grid(), st.integers(0, 2**32 - 1))
def test_round_trip_on_tiled_float_images(grid, seed):
    size, stride, _ = grid
    n_rows, n_cols = np.random.default_rng(seed).integers(1, 6, size=2)
    shape = (stride * (n_rows - 1) + size, stride * (n_cols - 1) + size)
    image = np.random.default_rng(seed).random(shape)
    rebuilt = reconstruct_from_patches(extract_patches(image, size, stride), shape, size, stride)
    # A mean of k equal floats is within a few ulps of the value.
    np.testing.assert_allclose(rebuilt, image, rtol=4 * np.finfo(float).eps, atol=0)


def test_reconstruction_averages_overlaps():
    image = np.zeros((4, 4))
    patches = np.ones((9, 4))
    patches[0] = 5.0  # the top-left patch disagrees with its neighbours
    rebuilt = reconstruct_from_patches(patches, image.shape, size=2, stride=1)
    assert rebuilt[0, 0] == 5.0  # covered by the top-left patch only
    assert rebuilt[1, 1] == (5.0 + 3.0) / 4  # covered by four patches


def test_uncovered_pixels_are_an_error_unless_filled():
    image = np.random.default_rng(0).random((7, 7))
    patches = extract_patches(image, 3, 3)
    with pytest.raises(ValueError, match="covered by no patch"):
        reconstruct_from_patches(patches, image.shape, 3, 3)
    rebuilt = reconstruct_from_patches(patches, image.shape, 3, 3, fill=0.0)
    assert (rebuilt[6, :] == 0).all() and (rebuilt[:, 6] == 0).all()
    np.testing.assert_array_equal(rebuilt[:6, :6], image[:6, :6])


def test_gaps_when_stride_exceeds_size_are_named():
    image = np.ones((8, 8))
    patches = extract_patches(image, 2, 3)
    with pytest.raises(ValueError, match="stride > size"):
        reconstruct_from_patches(patches, image.shape, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size must be an integer ≥ 1"),
        ({"size": 2.5}, "size must be an integer"),
        ({"size": 3, "stride": 0}, "stride must be an integer ≥ 1"),
        ({"size": 20}, "smaller than one patch"),
    ],
)
def test_bad_patch_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        extract_patches(np.zeros((10, 10)), **kwargs)


def test_wrong_patch_array_shape_is_explained():
    with pytest.raises(ValueError, match=r"patches must have shape \(4, 4\)"):
        reconstruct_from_patches(np.zeros((5, 4)), (4, 4), 2)
