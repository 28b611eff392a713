"""Fixtures shared by the test modules."""

import pytest


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
