"""load_image: the shipped Barbara file and conversions of generated files."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import eaelib
from eaelib import load_image
from eaelib.image import DATA_DIR

BARBARA_SHA256 = "61ce3bead097f17d7359b5466975b91938f5ba03822c3771707e42891576842b"


def test_barbara_is_the_documented_file():
    data = (DATA_DIR / "barbara.png").read_bytes()
    assert hashlib.sha256(data).hexdigest() == BARBARA_SHA256
    assert BARBARA_SHA256 in (Path(DATA_DIR) / "README.md").read_text()


def test_barbara_is_grayscale_in_unit_interval():
    image = load_image("barbara")
    assert image.shape == (574, 702)
    assert image.dtype == np.float64
    assert 0.0 <= image.min() < image.max() <= 1.0


def test_colour_files_become_bt601_luma(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    expected = rgb.astype(float) @ [0.299, 0.587, 0.114] / 255
    with pytest.warns(UserWarning, match=r"rgb.png' is a colour image \(RGB\): read as gray"):
        np.testing.assert_allclose(load_image(tmp_path / "rgb.png"), expected, rtol=1e-12)
    np.testing.assert_array_equal(
        load_image(tmp_path / "rgb.png", quiet=True), load_image(tmp_path / "rgb.png", quiet=True)
    )


def test_alpha_is_dropped_and_gray_is_scaled(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, size=(4, 4, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    gray = load_image(tmp_path / "rgba.png", quiet=True)
    np.testing.assert_allclose(gray, rgba[..., :3] @ [0.299, 0.587, 0.114] / 255)
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(load_image(tmp_path / "gray.png"), gray / 255)


def test_sixteen_bit_files_use_their_full_range(tmp_path):
    gray = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "gray16.png")
    np.testing.assert_allclose(load_image(tmp_path / "gray16.png"), gray / 65535)


def test_missing_and_non_image_files_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="name_or_path"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(tmp_path / "text.png")


def test_save_image_writes_8_bit_gray_clipped_to_the_unit_range(tmp_path):
    image = np.linspace(-0.5, 1.5, 64).reshape(8, 8)
    eaelib.save_image(tmp_path / "out.png", image)
    back = eaelib.load_image(tmp_path / "out.png")
    np.testing.assert_array_equal(back, np.round(255 * np.clip(image, 0, 1)) / 255)
    with pytest.raises(ValueError, match=r"image must have shape \(height, width\), got shape \(8, 8, 3\)"):
        eaelib.save_image(tmp_path / "rgb.png", np.zeros((8, 8, 3)))
