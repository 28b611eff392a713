"""Optional dependencies: imported where they are used, or an error naming the package and the install line.

``pip install eaelib`` brings the numerical core only (NumPy, array-api-compat, numba). Reading images
(Pillow), progress bars (tqdm), figures (matplotlib), SciPy's sparse graphs and assignment, and Dask come
with the extras; a missing one stops with a message that names the package and the one line that installs
everything the README's examples use, whatever flag or parameter happened to need it.
"""

from __future__ import annotations

import importlib
import importlib.util

# The repository, as _config.yml's repository.url (tests/test_optional.py keeps them equal): eaelib is not
# published on PyPI, so its extras install from there.
REPOSITORY = "https://github.com/eaelib/energy-autoencoder"

# What pip installs to provide each optional module, where the names differ.
PACKAGES = {"PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image"}


def install_line(extra="full"):
    """The shell command that installs eaelib with ``extra`` (``"full"``: everything the README uses)."""
    return f'pip install "eaelib[{extra}] @ git+{REPOSITORY}"'


def missing(*modules):
    """The pip names of those of ``modules`` that cannot be imported, in the order given."""
    return [PACKAGES.get(m, m) for m in modules if importlib.util.find_spec(m) is None]


def missing_message(purpose, packages, extra="full"):
    """``"<purpose> needs <packages>, which ... not installed: <install line> (or pip install <packages>)"``."""
    names = " and ".join([", ".join(packages[:-1]), packages[-1]] if len(packages) > 1 else packages)
    verb = "are" if len(packages) > 1 else "is"
    alone = " ".join(packages)
    return f"{purpose} needs {names}, which {verb} not installed: {install_line(extra)} (or pip install {alone})"


def require(module, purpose, extra="full"):
    """Import and return ``module``, or raise ImportError naming its package and the install line.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"PIL.Image"``.
    purpose : str
        What needs it, the subject of the message, e.g. ``"load_image"``.
    extra : str, default "full"
        The eaelib extra whose install line the message gives.

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(missing_message(purpose, [PACKAGES.get(top, top)], extra)) from exc


def import_dask(purpose):
    """``(dask, dask.array)``, or an ImportError naming Dask and distributed and the ``dask`` extra's install line.

    Parameters
    ----------
    purpose : str
        What needs them, the subject of the message, e.g. ``"PatchStream.to_dask"``.

    Returns
    -------
    tuple of modules
    """
    if missing("dask"):
        raise ImportError(missing_message(purpose, ["dask", "distributed"], extra="dask"))
    import dask
    import dask.array

    return dask, dask.array
