"""Optional dependencies: a missing one names its package and the install line, and that line is right."""

import re
import sys
from pathlib import Path

import pytest
import yaml

from eaelib import _optional

ROOT = Path(__file__).resolve().parent.parent


def test_the_install_line_names_the_repository_of_config():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == _optional.REPOSITORY


def test_the_readme_gives_the_install_line():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```sh\n{_optional.install_line()}\n```" in readme


def test_the_full_extra_brings_every_optional_module_the_messages_name():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    full = re.search(r"^full = \[(.*)\]$", pyproject, flags=re.MULTILINE).group(1)
    packages = {re.match(r'"([A-Za-z0-9_-]+)', item.strip()).group(1).lower() for item in full.split(",")}
    for module in ("PIL", "tqdm", "matplotlib", "scipy", "sklearn", "skimage"):
        assert _optional.PACKAGES.get(module, module) in packages, module


@pytest.mark.parametrize(
    ("call", "package"),
    [
        ("eaelib.load_image('barbara')", "pillow"),
        ("eaelib.image_files('.')", "pillow"),
        ("eaelib.EnergyAutoEncoder(progress=True, max_outer=1).fit(np.ones((20, 4)))", "tqdm"),
        ("eaelib.plot.plot_atoms(np.eye(4))", "matplotlib"),
    ],
)
def test_a_missing_package_is_named_with_the_install_line(call, package, monkeypatch):
    import numpy as np

    import eaelib
    import eaelib.streams

    eaelib.streams._image_extensions.cache_clear()  # an earlier test's call would answer without Pillow
    for module in {"pillow": ["PIL", "PIL.Image"], "tqdm": ["tqdm", "tqdm.auto"]}.get(package, [package]):
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    if package == "matplotlib":
        monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    expected = f"needs {package}, which is not installed: {_optional.install_line()} (or pip install {package})"
    with pytest.raises(ImportError, match=re.escape(expected)):
        eval(call, {"eaelib": eaelib, "np": np})
