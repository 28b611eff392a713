"""Input checks shared by the public functions: clear errors that name the parameter."""

from __future__ import annotations

import numbers
import textwrap
import warnings
from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from ._array import DTYPES, backend_namespace, dtype_name, get_namespace, is_array, resolve_dtype, to_namespace
from ._base import DataConversionWarning

#: Key of a parameter's :class:`ParamSpec` in its dataclass field's metadata.
PARAM_SPEC = "eaelib"


def check_random_state(random_state, name="random_state"):
    """The ``numpy.random.Generator`` for ``random_state``: None, a seed or a Generator.

    ``None`` draws fresh entropy from the operating system; an integer ≥ 0
    seeds a new generator, so the same seed always gives the same numbers; a
    Generator is returned as is (and advanced by its use).
    """
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return np.random.default_rng(int(random_state))
    raise ValueError(f"{name} must be None, an integer ≥ 0 or a numpy.random.Generator, got {random_state!r}")


def check_array(
    x,
    *,
    name="X",
    ndim=2,
    xp=None,
    device=None,
    dtype=None,
    min_samples=1,
    min_features=1,
    shape_hint="(n_samples, n_features)",
):
    """Return ``(xp, array)``: ``x`` as a finite floating array of namespace ``xp``.

    ``x`` may be any supported array, or anything NumPy turns into a numeric
    array (lists, pandas frames), of ``ndim`` dimensions (None: any; then
    ``min_samples`` is not checked). ``xp=None`` keeps the namespace of ``x``,
    and an ``x`` of another namespace is converted to ``xp`` (on ``device``
    where given: that of a fitted model); ``dtype=None`` keeps a floating
    dtype and turns others into float64.
    """
    if type(x).__module__.startswith(("scipy.sparse", "cupyx.scipy.sparse")):
        raise TypeError(
            f"Sparse input is not supported: {name} must be a dense array of shape {shape_hint}; "
            f"densify it with {name}.toarray() first"
        )
    if is_array(x) and not isinstance(x, np.ndarray):
        source_xp = get_namespace(x)
    else:
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array of shape {shape_hint}: {exc}") from exc
        if x.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} must be real, got dtype {x.dtype}")
        if x.dtype.kind not in "biuf":
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError) as exc:  # keep the type: sklearn expects TypeError for objects
                raise type(exc)(f"{name} must be numeric, got dtype {x.dtype}: {exc}") from exc
        source_xp = get_namespace(x)
    if xp is None:
        xp = source_xp
    if xp is not source_xp or device is not None:
        x = to_namespace(x, xp, device=device)
    if ndim is not None and x.ndim != ndim:
        hint = ""
        if ndim == 2 and x.ndim == 1 and "n_features" in shape_hint:
            hint = (
                f". Reshape your data: {name}.reshape(-1, 1) if it has a single feature, "
                f"{name}.reshape(1, -1) if it is a single sample"
            )
        raise ValueError(
            f"{name} must be a {ndim}-D array of shape {shape_hint}, got an array of shape {tuple(x.shape)}{hint}"
        )
    if xp.isdtype(x.dtype, "complex floating"):
        raise ValueError(f"Complex data not supported: {name} must be real, got dtype {x.dtype}")
    target = resolve_dtype(xp, dtype, x.dtype)
    if x.dtype != target:
        x = xp.astype(x, target)
    if ndim is not None and x.shape[0] < min_samples:
        raise ValueError(f"{name} must have at least {min_samples} sample(s) (rows), got shape {tuple(x.shape)}")
    if ndim == 2 and x.shape[1] < min_features:
        raise ValueError(
            f"{name} must have at least 1 feature (column): found 0 feature(s) (shape={tuple(x.shape)}) "
            "while a minimum of 1 is required."
        )
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} contains NaN or infinite values")
    return xp, x


def model_namespace(backend, x):
    """Namespace for a fit: the one called ``backend``, or that of ``x`` when None."""
    if backend is not None:
        return backend_namespace(backend)
    if is_array(x) and not isinstance(x, np.ndarray):
        return get_namespace(x)
    return get_namespace(np.empty(0))


def check_scalar(value, name, *, kind="real", low=None, low_inclusive=True, high=None):
    """Validate a numeric hyper-parameter and return it as ``int`` or ``float``."""
    if kind == "int":
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        expected = "an integer"
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
        expected = "a finite real number"
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = ""
        if low is not None:
            bounds += f" {'≥' if low_inclusive else '>'} {low}"
        if high is not None:
            bounds += f"{' and' if bounds else ''} ≤ {high}"
        raise ValueError(f"{name} must be {expected}{bounds}, got {value!r}")
    return int(value) if kind == "int" else float(value)


@dataclass(frozen=True)
class ParamSpec:
    """What a hyper-parameter accepts and what it means.

    Attached to the estimator's parameters by :func:`param`, it drives the
    estimator's validation (:meth:`check`) and its docstring; the command line
    (``eaelib._cli.OPTIONS``) reuses both for the options it offers.

    Parameters
    ----------
    kind : {"int", "real", "bool", "choice", "dtype", "random_state", "callable"}
    help : str
        One sentence, for the docstring and ``--help``.
    type_doc : str
        The type as numpydoc writes it, e.g. ``"int"`` or ``"{'numpy', 'cupy'} or None"``.
    low, high, low_inclusive
        Bounds of an ``"int"`` or ``"real"`` parameter.
    choices : tuple
        The values of a ``"choice"`` parameter (None is accepted too when it is the default).
    """

    kind: str
    help: str
    type_doc: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: tuple = ()

    def check(self, name, value, default=MISSING):
        """``value`` if valid for parameter ``name``, normalized (ints and floats); ValueError otherwise."""
        if self.kind in ("int", "real"):
            return check_scalar(
                value, name, kind=self.kind, low=self.low, low_inclusive=self.low_inclusive, high=self.high
            )
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise ValueError(f"{name} must be True or False, got {value!r}")
        if self.kind == "choice":
            none_ok = default is None
            if (value is None and none_ok) or (isinstance(value, str) and value in self.choices):
                return value
            raise ValueError(f"{name} must be one of {self.choices}{' or None' if none_ok else ''}, got {value!r}")
        if self.kind == "dtype":
            if value is not None and dtype_name(value) not in DTYPES:
                raise ValueError(f"{name} must be one of {DTYPES} or None, got {value!r}")
            return value
        if self.kind == "random_state":
            check_random_state(value, name)
            return value
        if self.kind == "callable":
            if value is None or callable(value):
                return value
            raise ValueError(f"{name} must be callable or None, got {value!r}")
        raise AssertionError(f"unknown parameter kind {self.kind!r}")


def param(default, kind, help, type_doc, **spec):
    """A dataclass field for an estimator parameter: its ``default`` and its :class:`ParamSpec`."""
    return field(default=default, metadata={PARAM_SPEC: ParamSpec(kind, help, type_doc, **spec)})


def param_specs(cls):
    """``{name: (default, spec)}`` for the parameters of the dataclass estimator ``cls``, in declaration order."""
    return {f.name: (f.default, f.metadata[PARAM_SPEC]) for f in fields(cls) if PARAM_SPEC in f.metadata}


def check_params(estimator):
    """Every parameter of ``estimator`` checked against its spec; returns ``{name: normalized value}``."""
    return {
        name: spec.check(name, getattr(estimator, name), default)
        for name, (default, spec) in param_specs(type(estimator)).items()
    }


def numpydoc_parameters(cls, indent="    "):
    """The "Parameters" entries of ``cls``'s docstring, from its parameter specs."""
    lines = []
    for name, (default, spec) in param_specs(cls).items():
        lines.append(f"{indent}{name} : {spec.type_doc}, default={default!r}")
        lines.extend(f"{indent}    {line}" for line in textwrap.wrap(spec.help, 80))
    return "\n".join(lines)


def _is_integer(x):
    """Whether ``x`` (any array, or what NumPy makes an array of) holds integers."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (TypeError, ValueError):
            return False
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype).kind in "iu"
    try:
        return bool(get_namespace(x).isdtype(dtype, "integral"))
    except TypeError:
        return False


def check_likely_mistakes(X_in, X, allow_few_samples):
    """Refuse or warn about an estimator's training data that are most likely not what the user meant.

    Integer data warn (:class:`DataConversionWarning`: pixel values are meant to be scaled to [0, 1]); fewer
    samples than features are refused unless ``allow_few_samples``: most likely samples as columns, the
    book's orientation, where the estimator takes rows.

    Parameters
    ----------
    X_in : array-like
        The data as given (its dtype says whether they were integers).
    X : array, shape (n_samples, n_features)
        The data as :func:`check_array` made them.
    allow_few_samples : bool
        Accept fewer samples than features.
    """
    if _is_integer(X_in):
        xp = get_namespace(X)
        low, high = float(xp.min(X)), float(xp.max(X))
        warnings.warn(
            f"X has integer dtype {X_in.dtype if hasattr(X_in, 'dtype') else 'int'} and is used as it is, values "
            f"in [{low:g}, {high:g}], converted to {X.dtype}: scale pixel values to [0, 1] first (X / 255 for "
            "8-bit data; extract_patches scales integer images), or convert X to floats yourself to silence this",
            DataConversionWarning,
            stacklevel=4,
        )
    n_samples, n_features = X.shape
    if n_features > n_samples and not allow_few_samples:
        raise ValueError(
            f"X has fewer samples than features: shape {tuple(X.shape)}, {n_samples} samples (rows) of "
            f"{n_features} features (columns). EnergyAutoEncoder takes samples as rows; if yours are columns "
            f"(the book's orientation), pass X.T, of shape {(n_features, n_samples)}; if they are rows, "
            "fit(X, allow_few_samples=True)"
        )
