"""data/README.md names every dataset the book and the benchmarks read, with the files as they are."""

import hashlib
import re
from pathlib import Path

import pytest

import eaelib

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "data" / "README.md").read_text(encoding="utf-8")


def _listed_files():
    """The file names in the page's tables' first column (backquoted)."""
    rows = re.findall(r"^\| ([^|]+) \|", PAGE, flags=re.MULTILINE)
    return {name for row in rows for name in re.findall(r"`([^`/]+\.[a-z]+)`", row)}


def test_barbara_is_the_file_the_page_describes():
    digest = hashlib.sha256((ROOT / "eaelib" / "data" / "barbara.png").read_bytes()).hexdigest()
    assert f"`{digest}`" in PAGE
    assert f"`{digest}`" in (ROOT / "eaelib" / "data" / "README.md").read_text(encoding="utf-8")


def test_every_scikit_image_file_read_is_listed():
    skimage_data = pytest.importorskip("skimage.data", reason="the listed files are scikit-image's")
    import skimage

    described = re.search(r"scikit-image (\d+\.\d+\.\d+)'s data folder", PAGE).group(1)
    if skimage.__version__ != described:
        pytest.skip(f"data/README.md describes scikit-image {described}'s data folder; {skimage.__version__} is here")
    streamed = {path.name for path in eaelib.image_files(skimage_data.data_dir)}
    listed = _listed_files()
    assert streamed <= listed, f"data/README.md lacks {sorted(streamed - listed)}"
    assert f"{len(streamed)} files in scikit-image {described}" in PAGE
    on_disk = {p.name for p in Path(skimage_data.data_dir).iterdir()}
    assert listed - {"barbara.png"} <= on_disk, f"listed but not in the folder: {sorted(listed - on_disk)}"


def test_the_files_the_chapters_name_are_listed():
    named = set()
    for chapter in (ROOT / "book").glob("*.ipynb"):
        text = chapter.read_text(encoding="utf-8")
        named |= {f"{name}.png" for name in re.findall(r"skimage\.data\.(camera|moon|coins|astronaut)\(\)", text)}
        named |= set(re.findall(r"data_dir\}/(\w+\.npy)", text))
    assert named and named <= _listed_files(), sorted(named - _listed_files())
