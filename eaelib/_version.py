"""The version of eaelib: the installed package's metadata (pyproject.toml's ``version``).

A copied ``eaelib`` folder has no metadata of its own, and must not borrow that of an eaelib
installed elsewhere on the path: its version is ``"0+unknown"``.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

#: The version of a copied folder, which no installation describes.
UNKNOWN = "0+unknown"


def _installed_version(package_dir):
    """The version of the installed distribution whose package is ``package_dir``, or None."""
    try:
        dist = metadata.distribution("eaelib")
    except metadata.PackageNotFoundError:
        return None
    if Path(dist.locate_file("eaelib")).resolve() == package_dir:  # a regular installation (wheel)
        return dist.version
    try:  # an editable installation records the source folder it points to (PEP 610)
        url = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return None
    if url.get("dir_info", {}).get("editable") and url.get("url", "").startswith("file:"):
        source = Path(url2pathname(urlparse(url["url"]).path))
        if (source / "eaelib").resolve() == package_dir:
            return dist.version
    return None


__version__ = _installed_version(Path(__file__).resolve().parent) or UNKNOWN
