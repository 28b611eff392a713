"""Fixtures shared by the test modules, and the hypothesis profiles.

Two hypothesis profiles:

* ``repeatable`` (the default, used by ``make test`` and CI): every property test draws the same
  examples on every run and machine (``derandomize=True``) and no example database is read or
  written, so a failure reproduces exactly and no example saved by an earlier run is replayed.
* ``explore``: fresh random examples on every run, and failures saved in ``.hypothesis/`` and
  replayed until they pass; run it with ``make explore`` (``pytest tests --hypothesis-profile=explore``).

The default is loaded here, before the test modules create their ``settings(...)`` objects (which
inherit what they do not set); ``--hypothesis-profile`` on the command line overrides it.
"""

import os

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile(
    "explore", derandomize=False, database=DirectoryBasedExampleDatabase(".hypothesis/examples"), print_blob=True
)
settings.load_profile("repeatable")


def pytest_report_header(config):
    """The BLAS kernel in use: results differ in the last bits between kernels, and tests must not care."""
    try:
        import numpy  # noqa: F401  (loads its BLAS, which threadpoolctl then reports)
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} kernel)" for i in threadpool_info()]
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return f"BLAS: {', '.join(blas) or 'unknown'}; OPENBLAS_CORETYPE={coretype}"


@pytest.fixture(scope="module")
def cupy():
    try:
        import cupy
    except Exception as exc:  # not installed, or its CUDA libraries are missing
        pytest.skip(f"CuPy tests need CuPy and a CUDA device: cannot import cupy ({exc!r})")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        pytest.skip(f"CuPy tests need a CUDA device: cupy.cuda.runtime.getDeviceCount() failed ({exc!r})")
    if count == 0:
        pytest.skip("CuPy tests need a CUDA device: cupy.cuda.runtime.getDeviceCount() == 0")
    return cupy
