"""Array-namespace helpers: one code path for NumPy, CuPy and array-api-strict.

The namespace always follows the arrays (``array_api_compat.array_namespace``);
the helpers here only resolve user-facing names and move data between
libraries at the edges (random initialization, fitted attributes, plots).
"""

from __future__ import annotations

import importlib
import math

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "cupy", "array_api_strict")
DTYPES = ("float32", "float64")

get_namespace = array_api_compat.array_namespace


def backend_namespace(name):
    """Return the array namespace called ``name`` (one of :data:`BACKENDS`)."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {name!r}")
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # CuPy without a GPU, or not installed
        raise ImportError(f"backend={name!r} needs the {name!r} package, which could not be imported: {exc}") from exc
    return get_namespace(module.asarray([0.0]))


def backend_name(xp):
    """Name of namespace ``xp`` as used in :data:`BACKENDS`."""
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    return xp.__name__.split(".")[-1]


def dtype_name(dtype):
    """``"float32"`` for any spelling of a dtype: NumPy class or instance, string, array-API object."""
    name = getattr(dtype, "__name__", None) or getattr(dtype, "name", None) or str(dtype)
    return str(name).rsplit(".", 1)[-1]


def resolve_dtype(xp, dtype, current=None):
    """Floating dtype of ``xp`` for the user-facing ``dtype`` parameter.

    ``None`` keeps a floating ``current`` dtype and otherwise picks float64.
    """
    if dtype is None:
        if current is not None and current in (xp.float32, xp.float64):
            return current
        return xp.float64
    name = dtype_name(dtype)
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} or None, got {dtype!r}")
    return getattr(xp, name)


def is_array(x):
    """Whether ``x`` is an array of an array library (NumPy, CuPy, array-api-strict, ...): not a list or scalar."""
    return array_api_compat.is_array_api_obj(x)


def to_numpy(x, dtype=None):
    """Copy-free where possible conversion of any supported array to NumPy (of ``dtype``, if given)."""
    if isinstance(x, np.ndarray):
        out = x
    elif array_api_compat.is_cupy_array(x):
        out = x.get()
    else:
        out = np.from_dlpack(x)
    return out if dtype is None else out.astype(dtype, copy=False)


def from_numpy(xp, x, dtype=None, device=None):
    """Array of namespace ``xp`` (on ``device``) holding the NumPy array ``x``."""
    x = np.asarray(x)
    if dtype is not None:
        x = x.astype(dtype_name(dtype), copy=False)
    if array_api_compat.is_numpy_namespace(xp):
        return x
    return xp.asarray(x, device=device)


def to_namespace(x, xp, *, dtype=None, device=None):
    """``x`` as an array of namespace ``xp``, of ``dtype`` and on ``device`` where given.

    The one conversion between array libraries: an array already in ``xp``
    (and on ``device``) is returned as is, or cast; any other goes through
    NumPy (``to_numpy``, then ``from_numpy``), the common ground of NumPy,
    CuPy and array-api-strict.
    """
    if array_api_compat.is_array_api_obj(x) and get_namespace(x) is xp:
        if device is not None and array_api_compat.device(x) != device:
            x = array_api_compat.to_device(x, device)
    else:
        x = from_numpy(xp, to_numpy(x), device=device)
    if dtype is not None and x.dtype != dtype:
        x = xp.astype(x, dtype)
    return x


def inner(xp, a, b):
    """Frobenius inner product ⟨a, b⟩ as a Python float (one BLAS dot on NumPy)."""
    return float(xp.reshape(a, (-1,)) @ xp.reshape(b, (-1,)))


def sq_norm(xp, a):
    """Squared Frobenius norm ‖a‖² as a Python float."""
    return inner(xp, a, a)


def extreme_eigenvalues(xp, gram):
    """Smallest and largest eigenvalues of the symmetric positive semi-definite matrix ``gram``."""
    if gram.shape[0] == 0:
        return 0.0, 0.0
    values = xp.linalg.eigvalsh(gram)
    low, high = float(xp.min(values)), float(xp.max(values))
    # eigvalsh can return slightly negative values for a singular matrix.
    return max(low, 0.0), (max(high, 0.0) if math.isfinite(high) else high)


def largest_eigenvalue(xp, gram):
    """Largest eigenvalue of the symmetric positive semi-definite matrix ``gram``."""
    if gram.shape[0] == 0:
        return 0.0
    value = float(xp.max(xp.linalg.eigvalsh(gram)))
    # eigvalsh can return a slightly negative value for a zero matrix.
    return max(value, 0.0) if math.isfinite(value) else value
