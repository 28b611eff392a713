"""The model file: a fitted model's hyper-parameters and fitted state in a ``.npz`` archive.

The one door of an :class:`~eaelib.EnergyAutoEncoder`'s files: :func:`save_model` hands the
parameters and the fitted attributes to :func:`write_model`, :func:`load_model` builds the estimator
from what :func:`read_model` returns; those two know the format and nothing of the estimator.
The file is a plain NumPy ``.npz`` archive written and read with ``allow_pickle=False``: loading one
never runs code from it. It holds

* ``D_``, ``E_`` (in their floating dtype), ``objective_history_`` and, per
  energy term, ``energy_<term>`` (float64 arrays, one entry per outer
  iteration, entry 0 being the initialization);
* ``history_iterations_`` (format 3, int64): the outer iteration (or epoch)
  of each entry of those histories, 0 first; an online fit certifies only
  every ``certify_every`` epochs, so its histories can be shorter than
  ``n_iter_ + 1``;
* ``n_iter_``, ``converged_``, ``n_features_in_``, ``n_dead_atoms_`` and
  ``n_reinitialized_atoms_`` (0-d arrays);
* every hyper-parameter as ``param_<name>``: numbers and booleans as 0-d
  arrays, strings and ``None`` (and a ``numpy.random.Generator``'s state) as a
  JSON string in a 0-d unicode array;
* optionally (format 2), how the samples were cut from an image
  (:class:`~eaelib.patches.PatchLayout`): ``patch_size``, ``patch_stride``
  and ``patch_centered``, all three or none;
* ``eaelib_version`` (the version that wrote it) and ``format_version``.

Format 1 (eaelib 0.1.0) is format 2 without the patch layout; format 2 is format 3 without
``history_iterations_`` (one history entry per outer iteration) and without the parameters
``code_solver`` and ``certify_every`` (read as their defaults). All three are read.
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from ._array import to_numpy
from ._validation import check_params
from ._version import __version__
from .estimator import EnergyAutoEncoder
from .patches import PatchLayout
from .subproblems import ENERGY_TERMS

#: Version of the file layout written by :func:`write_model`.
FORMAT_VERSION = 3
#: Versions :func:`read_model` reads.
READABLE_VERSIONS = (1, 2, 3)
#: Hyper-parameters that files before format 3 lack: they are read as the estimator's defaults.
PARAMS_SINCE_3 = ("code_solver", "certify_every")
#: Terms of ``energy_history_``, each stored as ``energy_<term>``.
PARAM_PREFIX = "param_"
_GENERATOR_TAG = "numpy.random.Generator"
# Bit generators a stored Generator may name: the file never picks an arbitrary attribute.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_INT64 = np.iinfo(np.int64)


# Fitted counts stored as 0-d int64 arrays.
COUNTS = ("n_dead_atoms_", "n_reinitialized_atoms_")
#: The fitted attributes a model file holds (``energy_history_`` as one array per term).
FITTED = (
    "D_",
    "E_",
    "objective_history_",
    "energy_history_",
    "history_iterations_",
    "n_iter_",
    "converged_",
    "n_features_in_",
    *COUNTS,
)
#: The patch layout's arrays (format 2, optional).
PATCH_KEYS = ("patch_size", "patch_stride", "patch_centered")


def _expected_keys(param_names, version=FORMAT_VERSION):
    fixed = ["D_", "E_", "objective_history_", "n_iter_", "converged_", "n_features_in_", *COUNTS]
    fixed += [f"energy_{term}" for term in ENERGY_TERMS]
    fixed += ["eaelib_version", "format_version"]
    if version >= 3:
        fixed.append("history_iterations_")
    else:
        param_names = [name for name in param_names if name not in PARAMS_SINCE_3]
    return set(fixed) | {PARAM_PREFIX + name for name in param_names}


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _encode_param(name, value):
    """A hyper-parameter as a 0-d array that loads without pickle."""
    if isinstance(value, (bool, np.bool_)):
        return np.array(bool(value))
    if isinstance(value, numbers.Integral) and _INT64.min <= int(value) <= _INT64.max:
        return np.array(int(value), dtype=np.int64)
    if isinstance(value, numbers.Integral):  # a seed too large for int64: JSON keeps it exact
        return np.array(json.dumps(int(value)))
    if isinstance(value, numbers.Real):
        return np.array(float(value), dtype=np.float64)
    if value is None or isinstance(value, str):
        return np.array(json.dumps(value))
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.array(json.dumps(np.dtype(value).name))  # np.float32 is stored as "float32"
    if isinstance(value, np.random.Generator):
        state = value.bit_generator.state
        return np.array(json.dumps({_GENERATOR_TAG: state}, default=_json_default))
    raise TypeError(
        f"cannot save parameter {name}={value!r} of type {type(value).__name__}: "
        "only numbers, booleans, strings, None, NumPy dtypes and numpy.random.Generator are supported"
    )


def _decode_param(name, array):
    if array.shape != ():
        raise ValueError(f"parameter {name} is not stored as a 0-d array (shape {array.shape})")
    if array.dtype.kind == "U":
        value = json.loads(str(array))
        if isinstance(value, dict):
            return _decode_generator(name, value)
        if value is None or isinstance(value, (str, int)):
            return value
        raise ValueError(f"parameter {name} holds an unexpected value {value!r}")
    if array.dtype.kind in "biuf":
        return array.item()
    raise ValueError(f"parameter {name} has an unexpected dtype {array.dtype}")


def _decode_generator(name, value):
    state = value.get(_GENERATOR_TAG) if len(value) == 1 else None
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(f"parameter {name} holds an unknown random generator {kind!r}")
    bit_generator = getattr(np.random, kind)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def write_model(path, params, fitted, patch_layout=None):
    """Write a fitted model to the ``.npz`` file ``path``.

    Parameters
    ----------
    path : str, path-like or binary file
        Where to write; the name is used as given (no ``.npz`` is appended).
    params : dict
        The hyper-parameters (``get_params(deep=False)``), of the types listed in the module's docstring.
    fitted : dict
        The fitted attributes named in :data:`FITTED`; arrays of any supported library (stored as NumPy).
    patch_layout : PatchLayout, optional
        How the samples were cut from an image.

    Raises
    ------
    TypeError
        If a hyper-parameter is of a type that cannot be stored without pickle.
    """
    arrays = {
        "D_": to_numpy(fitted["D_"]),
        "E_": to_numpy(fitted["E_"]),
        "objective_history_": np.asarray(fitted["objective_history_"], dtype=np.float64),
        "history_iterations_": np.asarray(fitted["history_iterations_"], dtype=np.int64),
        "n_iter_": np.array(int(fitted["n_iter_"]), dtype=np.int64),
        "converged_": np.array(bool(fitted["converged_"])),
        "n_features_in_": np.array(int(fitted["n_features_in_"]), dtype=np.int64),
        **{name: np.array(int(fitted[name]), dtype=np.int64) for name in COUNTS},
        "eaelib_version": np.array(str(__version__)),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
    }
    for term in ENERGY_TERMS:
        arrays[f"energy_{term}"] = np.array([terms[term] for terms in fitted["energy_history_"]], dtype=np.float64)
    for name, value in params.items():
        arrays[PARAM_PREFIX + name] = _encode_param(name, value)
    if patch_layout is not None:
        if not isinstance(patch_layout, PatchLayout):
            raise TypeError(f"patch_layout must be a PatchLayout or None, got {type(patch_layout).__name__}")
        arrays["patch_size"] = np.array(patch_layout.size, dtype=np.int64)
        arrays["patch_stride"] = np.array(patch_layout.stride, dtype=np.int64)
        arrays["patch_centered"] = np.array(patch_layout.centered)
    if hasattr(path, "write"):
        np.savez(path, **arrays)
    else:
        with open(os.fspath(path), "wb") as file:
            np.savez(file, **arrays)


def _label(path):
    name = getattr(path, "name", path)
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else repr(path)


def _read_arrays(path, not_ours):
    """Every array of the archive at ``path``, or ValueError if it is not a pickle-free ``.npz``."""
    if isinstance(path, (str, bytes, os.PathLike)):
        # np.load leaves the file it opened open when the archive is corrupt: open it here, so that it is closed.
        try:
            file = open(path, "rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise ValueError(f"{not_ours}: {exc}") from exc
        with file:
            return _read_arrays(file, not_ours)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except ValueError as exc:  # NumPy's last guess is a pickle, which allow_pickle=False refuses
        raise ValueError(f"{not_ours}: it is not an .npz archive (eaelib never loads pickled data)") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{not_ours}: {exc}") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{not_ours}: it holds a single array, not an .npz archive")
    arrays = {}
    with data:
        for key in data.files:
            try:
                arrays[key] = data[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise ValueError(
                        f"{not_ours}: array {key!r} holds Python objects, which eaelib never loads (no pickle)"
                    ) from exc
                raise ValueError(f"{not_ours}: cannot read array {key!r}: {exc}") from exc
            except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise ValueError(f"{not_ours}: cannot read array {key!r}: {exc}") from exc
    return arrays


def read_model(path, param_names):
    """Read a model file written by :func:`write_model`.

    Parameters
    ----------
    path : str, path-like or binary file
    param_names : iterable of str
        The hyper-parameters the file must hold, no more and no fewer.

    Returns
    -------
    params : dict
        The hyper-parameters.
    fitted : dict
        The fitted attributes named in :data:`FITTED`, as NumPy arrays and Python numbers.
    patch_layout : PatchLayout or None

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a pickle-free ``.npz`` archive (corrupt, truncated,
        or holding pickled objects), has a format_version other than
        :data:`READABLE_VERSIONS`, lacks arrays or holds unexpected ones, or if
        its contents are inconsistent; the message starts "… is not an eaelib
        model file" unless the version is the problem.
    """
    label = _label(path)
    not_ours = f"{label} is not an eaelib model file"
    arrays = _read_arrays(path, not_ours)
    version, writer = _format_version(arrays, label, not_ours)
    param_names = list(param_names)
    expected = _expected_keys(param_names, version)
    if version < 3:
        param_names = [name for name in param_names if name not in PARAMS_SINCE_3]
    optional = set(PATCH_KEYS) if version >= 2 else set()
    present = _check_keys(arrays, expected, optional, f"{not_ours} of format_version {version}")
    try:
        params = {name: _decode_param(name, arrays[PARAM_PREFIX + name]) for name in param_names}
        D, E = arrays["D_"], arrays["E_"]
        if version < 3:  # one history entry per outer iteration
            arrays["history_iterations_"] = np.arange(int(arrays["n_iter_"]) + 1, dtype=np.int64)
        _check_contents(arrays, D, E)
        patch_layout = _decode_patch_layout(arrays) if present else None
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{not_ours}: {exc}") from exc
    columns = [arrays[f"energy_{term}"] for term in ENERGY_TERMS]
    n_points = len(arrays["objective_history_"])
    fitted = {
        "D_": D,
        "E_": E,
        "objective_history_": [float(v) for v in arrays["objective_history_"]],
        "energy_history_": [
            {term: float(column[k]) for term, column in zip(ENERGY_TERMS, columns, strict=True)}
            for k in range(n_points)
        ],
        "history_iterations_": [int(k) for k in arrays["history_iterations_"]],
        "n_iter_": int(arrays["n_iter_"]),
        "converged_": bool(arrays["converged_"]),
        "n_features_in_": int(arrays["n_features_in_"]),
        **{name: int(arrays[name]) for name in COUNTS},
    }
    if version < FORMAT_VERSION:
        warnings.warn(
            f"{label} was written by {writer} in format_version {version}: converted to format_version "
            f"{FORMAT_VERSION} as it is read ({'; '.join(_conversions(version))}); save_model writes it anew",
            UserWarning,
            stacklevel=3,
        )
    return params, fitted, patch_layout


def _format_version(arrays, label, not_ours):
    """``(version, writer)`` of a model file's arrays; ValueError for a version this eaelib cannot read."""
    if "format_version" not in arrays:
        raise ValueError(f"{not_ours}: it has no format_version")
    found = arrays["format_version"]
    if found.shape != () or found.dtype.kind not in "iu":
        raise ValueError(f"{not_ours}: its format_version is not an integer")
    version, writer = int(found), _writer(arrays)
    if version not in READABLE_VERSIONS:
        older = " and ".join(str(v) for v in READABLE_VERSIONS if v != FORMAT_VERSION)
        advice = ": upgrade eaelib to read it" if version > FORMAT_VERSION else ""
        raise ValueError(
            f"cannot read {label}: written by {writer} in format_version {version}, but this eaelib "
            f"({__version__}) reads format_version {FORMAT_VERSION} (and {older}){advice}"
        )
    return version, writer


def _check_keys(arrays, expected, optional, not_ours):
    """The patch-layout keys present (all or none); ValueError naming missing and unexpected arrays."""
    missing, extra = sorted(expected - arrays.keys()), sorted(arrays.keys() - expected - optional)
    present = [key for key in PATCH_KEYS if key in arrays]
    if present and len(present) < len(PATCH_KEYS):
        missing += sorted(set(PATCH_KEYS) - set(present))
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing arrays: {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected arrays: {', '.join(extra)}")
        raise ValueError(f"{not_ours}: {'; '.join(problems)}")
    return present


def _writer(arrays):
    """ "eaelib <version>" that wrote the file, as it says, or "an unknown eaelib"."""
    try:
        return f"eaelib {arrays['eaelib_version']!s}"
    except (KeyError, TypeError, ValueError):
        return "an unknown eaelib"


def _conversions(version):
    """What reading a file of format ``version`` supplies that the file lacks."""
    done = []
    if version < 2:
        done.append("no patch layout: the samples' patch size and stride are unknown")
    if version < 3:
        done.append(f"{' and '.join(PARAMS_SINCE_3)} take their defaults, and its history one entry per iteration")
    return done


def _decode_patch_layout(arrays):
    size, stride, centered = (arrays[key] for key in PATCH_KEYS)
    for name, value, kinds in (
        ("patch_size", size, "iu"),
        ("patch_stride", stride, "iu"),
        ("patch_centered", centered, "b"),
    ):
        if value.shape != () or value.dtype.kind not in kinds:
            raise ValueError(f"{name} must be a 0-d array of kind {kinds!r}, got {value.dtype} of shape {value.shape}")
    n_features = arrays["D_"].shape[0]
    if int(size) ** 2 != n_features:
        raise ValueError(f"patch_size {int(size)} makes {int(size) ** 2} features, but D_ has {n_features} rows")
    return PatchLayout(int(size), int(stride), centered=bool(centered))


def _check_contents(arrays, D, E):
    if D.ndim != 2 or D.dtype.kind != "f":
        raise ValueError(f"D_ must be a 2-D floating array, got shape {D.shape} and dtype {D.dtype}")
    if E.shape != D.shape[::-1] or E.dtype != D.dtype:
        raise ValueError(f"E_ must have shape {D.shape[::-1]} and dtype {D.dtype}, got {E.shape} and {E.dtype}")
    checks = [("n_iter_", "iu"), ("n_features_in_", "iu"), ("converged_", "b")] + [(n, "iu") for n in COUNTS]
    for name, kinds in checks:
        if arrays[name].shape != () or arrays[name].dtype.kind not in kinds:
            raise ValueError(f"{name} must be a 0-d array of kind {kinds!r}, got {arrays[name].dtype}")
    if int(arrays["n_features_in_"]) != D.shape[0]:
        raise ValueError(f"n_features_in_ is {int(arrays['n_features_in_'])} but D_ has {D.shape[0]} rows")
    iterations = arrays["history_iterations_"]
    n_iter = int(arrays["n_iter_"])
    if (
        iterations.ndim != 1
        or iterations.dtype.kind not in "iu"
        or iterations.size == 0
        or iterations[0] != 0
        or np.any(np.diff(iterations) <= 0)
        or iterations[-1] > n_iter
    ):
        raise ValueError(
            f"history_iterations_ must be increasing integers from 0 to at most n_iter_ = {n_iter}, got {iterations}"
        )
    n_points = iterations.size
    for name in ["objective_history_"] + [f"energy_{term}" for term in ENERGY_TERMS]:
        if arrays[name].shape != (n_points,) or arrays[name].dtype != np.float64:
            raise ValueError(
                f"{name} must be a float64 array of one entry per history_iterations_ ({n_points}), "
                f"got shape {arrays[name].shape} and dtype {arrays[name].dtype}"
            )


def save_model(model, path, *, patch_layout=None):
    """Write the fitted ``model`` to the ``.npz`` file ``path``.

    The format is described in :mod:`eaelib.model_io`: NumPy arrays only, read back without pickle.

    Parameters
    ----------
    model : EnergyAutoEncoder
        A fitted model, of any array library: the arrays are stored as NumPy.
    path : str, path-like or binary file
        Where to write; the name is used as given (no ``.npz`` is appended).
    patch_layout : PatchLayout, optional
        How the training samples were cut from an image (patch size, stride,
        centring), stored so that the model can be applied to other images the
        same way (``eaelib encode``, ``denoise``); by default the model's own
        ``patch_layout_`` if it was loaded with one.

    Raises
    ------
    NotFittedError
        If ``model`` is not fitted.
    TypeError
        If a hyper-parameter is of a type that cannot be stored without pickle.

    Notes
    -----
    ``inner_history_`` (the per-iteration traces of the subproblems) is not
    stored, and the ``callback`` hook is saved as None; see :func:`load_model`.
    """
    if not isinstance(model, EnergyAutoEncoder):
        raise TypeError(f"model must be an EnergyAutoEncoder, got {type(model).__name__}")
    model._check_fitted()
    params = model.get_params(deep=False)
    params["callback"] = None  # a run-time hook, not part of the model
    fitted = {name: getattr(model, name) for name in FITTED}
    if patch_layout is None:
        patch_layout = getattr(model, "patch_layout_", None)
    write_model(path, params, fitted, patch_layout)


def load_model(path):
    """Read a model written by :func:`save_model`.

    Parameters
    ----------
    path : str, path-like or binary file
        The model file.

    Returns
    -------
    EnergyAutoEncoder
        With its hyper-parameters and fitted attributes (``D_``, ``E_``,
        ``objective_history_``, ``energy_history_``, ``n_iter_``,
        ``converged_``, ``n_features_in_``) as saved, and ``patch_layout_``;
        the arrays are NumPy (``backend_`` is ``"numpy"``). ``inner_history_``
        is not stored, so it is an empty list.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a pickle-free ``.npz`` archive (corrupt, truncated,
        or holding pickled objects), has a ``format_version`` newer than this
        eaelib reads, lacks arrays or holds unexpected ones, or if its contents
        are inconsistent.

    Warns
    -----
    UserWarning
        When the file has an older ``format_version``: it is converted as it
        is read, and the warning names what the conversion supplies.
    """
    params, fitted, patch_layout = read_model(path, EnergyAutoEncoder().get_params(deep=False))
    model = EnergyAutoEncoder(**params)
    try:
        check_params(model)
    except ValueError as exc:
        raise ValueError(f"{_label(path)} is not an eaelib model file: {exc}") from exc
    for name, value in fitted.items():
        setattr(model, name, value)
    model.inner_history_ = []  # not stored
    model.backend_ = "numpy"
    model.patch_layout_ = patch_layout
    return model


# -- the codes of an image (``eaelib encode``'s codes.npz) -----------------------------------------------


@dataclass(frozen=True)
class ImageCodes:
    """The codes of an image's patches, as :func:`write_codes` stores them.

    Parameters
    ----------
    codes : numpy.ndarray, shape (n_patches, n_atoms)
        One row per patch, in the order of :func:`~eaelib.extract_patches`.
    layout : PatchLayout
        How the patches were cut.
    image_shape : tuple of int
        ``(height, width)`` of the part of the image the patches cover.
    method : str
        How the codes were computed (``transform``'s ``method``).
    means : numpy.ndarray or None
        The patches' means, for centred patches (added back on reconstruction).
    """

    codes: np.ndarray
    layout: PatchLayout
    image_shape: tuple
    method: str
    means: np.ndarray | None = None


def write_codes(path, image_codes):
    """Write :class:`ImageCodes` to the ``.npz`` file ``path`` (NumPy arrays only, read without pickle).

    Parameters
    ----------
    path : str, path-like or binary file
        Where to write.
    image_codes : ImageCodes
        The codes, with what is needed to rebuild the image from them.
    """
    layout = image_codes.layout
    arrays = {
        "codes": to_numpy(image_codes.codes),
        "image_shape": np.array(image_codes.image_shape, dtype=np.int64),
        "patch_size": np.array(layout.size, dtype=np.int64),
        "patch_stride": np.array(layout.stride, dtype=np.int64),
        "patch_centered": np.array(layout.centered),
        "method": np.array(image_codes.method),
    }
    if image_codes.means is not None:
        arrays["means"] = to_numpy(image_codes.means)
    np.savez(path, **arrays)


def read_codes(path):
    """Read the codes that :func:`write_codes` wrote.

    Parameters
    ----------
    path : str, path-like or binary file
        The codes file.

    Returns
    -------
    ImageCodes

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a codes file: not a pickle-free ``.npz`` archive, arrays missing, or centred
        patches without their means (or means of patches that are not centred).
    """
    not_ours = f"{_label(path)} is not a codes file written by `eaelib encode`"
    arrays = _read_arrays(path, not_ours)
    lacking = {"codes", "image_shape", "patch_size", "patch_stride", "patch_centered", "method"} - arrays.keys()
    if lacking:
        raise ValueError(f"{not_ours}: it lacks {', '.join(sorted(lacking))}")
    centered = bool(arrays["patch_centered"])
    if centered != ("means" in arrays):
        raise ValueError(
            f"{not_ours}: its patches are {'' if centered else 'not '}centred but it "
            f"{'lacks' if centered else 'has'} their means"
        )
    layout = PatchLayout(int(arrays["patch_size"]), int(arrays["patch_stride"]), centered)
    shape = tuple(int(s) for s in arrays["image_shape"])
    return ImageCodes(arrays["codes"], layout, shape, str(arrays["method"]), arrays.get("means"))
