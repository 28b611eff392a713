"""eaelib's folder alone works with NumPy and array-api-compat, and nothing else.

A subprocess runs ``python -S`` (no site-packages) on a path holding only a copy
of the ``eaelib`` folder and links to the installed ``numpy`` (with its
``numpy.libs``) and ``array_api_compat``, so that scikit-learn, SciPy, tqdm,
Pillow and matplotlib cannot be imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import array_api_compat
import numpy as np

import eaelib

SCRIPT = textwrap.dedent(
    """
    import importlib.util
    import sys

    sys.path[:0] = [TMPDIR]

    import numpy as np

    import eaelib
    import eaelib._base

    assert eaelib.__file__.startswith(TMPDIR), eaelib.__file__
    assert np.__file__.startswith(TMPDIR), np.__file__
    OPTIONAL = ("sklearn", "scipy", "matplotlib", "tqdm", "cupy", "PIL")
    loaded = sorted(name for name in OPTIONAL if name in sys.modules)
    assert not loaded, loaded
    assert not eaelib._base.HAVE_SKLEARN

    from eaelib import EnergyAutoEncoder
    from eaelib._base import NotFittedError

    # The fallback base class: parameters, repr, cloning by hand.
    model = EnergyAutoEncoder(n_atoms=6, max_outer=4, random_state=0)
    params = model.get_params()
    assert params["n_atoms"] == 6 and params["max_outer"] == 4 and params["random_state"] == 0, params
    assert set(params) == {"n_atoms", "lambda_d", "lambda_e", "lambda_s", "lambda_g", "max_outer", "max_inner",
                           "rtol", "inner_rtol", "solver", "code_solver", "algorithm", "certify_every",
                           "batch_size", "shuffle", "init",
                           "random_state", "backend", "dtype", "progress",
                           "warm_start", "reinit_dead_atoms", "callback"}, params
    assert model.set_params(lambda_s=0.5, n_atoms=5) is model
    assert model.n_atoms == 5 and model.lambda_s == 0.5
    try:
        model.set_params(bogus=1)
    except ValueError as exc:
        assert "bogus" in str(exc), exc
    else:
        raise AssertionError("set_params(bogus=1) did not raise")
    text = repr(model)
    assert text.startswith("EnergyAutoEncoder(") and "n_atoms=5" in text and "lambda_s=0.5" in text, text
    twin = EnergyAutoEncoder(**model.get_params())

    # Transform before fit: the fallback NotFittedError.
    X = np.random.default_rng(0).standard_normal((30, 4))
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    try:
        model.transform(X)
    except NotFittedError as exc:
        assert "not fitted" in str(exc), exc
    else:
        raise AssertionError("transform before fit did not raise")

    # Fit and transform.
    assert model.fit(X) is model
    assert model.D_.shape == (4, 5) and model.E_.shape == (5, 4)
    history = model.objective_history_
    assert all(b <= a for a, b in zip(history, history[1:])), history
    for method in ("exact", "encoder"):
        codes = model.transform(X, method=method)
        assert codes.shape == (30, 5) and np.all(np.isfinite(codes)), method
    assert model.inverse_transform(codes).shape == (30, 4)
    np.testing.assert_array_equal(twin.fit(X).D_, model.D_)
    np.testing.assert_array_equal(model.fit_transform(X), model.transform(X))

    # Optional dependencies: a clear ImportError naming what to install.
    try:
        EnergyAutoEncoder(n_atoms=3, max_outer=2, progress=True).fit(X)
    except ImportError as exc:
        assert "tqdm" in str(exc), exc
    else:
        raise AssertionError("progress=True did not raise ImportError without tqdm")
    try:
        eaelib.load_image("barbara")
    except ImportError as exc:
        assert "pillow" in str(exc).lower(), exc
    else:
        raise AssertionError("load_image did not raise ImportError without Pillow")

    # eaelib.plot may not exist yet; where it does, it must import without matplotlib.
    if importlib.util.find_spec("eaelib.plot") is not None:
        import eaelib.plot

        errors = []
        for argument in (model.D_, model):  # plot_atoms(D): 4 features make 2 × 2 patches
            try:
                eaelib.plot.plot_atoms(argument)
            except ImportError as exc:
                assert "matplotlib" in str(exc), exc
                break
            except Exception as exc:  # another argument form, perhaps
                errors.append(repr(exc))
        else:
            raise AssertionError(f"plot_atoms did not raise ImportError without matplotlib: {errors}")
        print("plot checked")

    loaded = sorted(name for name in OPTIONAL if name in sys.modules)
    assert not loaded, loaded
    print("OK")
    """
)


def _link(target_dir, source):
    (target_dir / source.name).symlink_to(source, target_is_directory=source.is_dir())


def test_eaelib_alone_with_numpy_and_array_api_compat(tmp_path):
    shutil.copytree(Path(eaelib.__file__).parent, tmp_path / "eaelib", ignore=shutil.ignore_patterns("__pycache__"))
    numpy_dir = Path(np.__file__).resolve().parent
    _link(tmp_path, numpy_dir)
    numpy_libs = numpy_dir.parent / "numpy.libs"  # the wheel's bundled BLAS, where present
    if numpy_libs.is_dir():
        _link(tmp_path, numpy_libs)
    _link(tmp_path, Path(array_api_compat.__file__).resolve().parent)

    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    code = f"TMPDIR = {str(tmp_path)!r}\n{SCRIPT}"
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.stdout.strip().splitlines()[-1] == "OK", result.stdout
    if (Path(eaelib.__file__).parent / "plot.py").is_file():
        assert "plot checked" in result.stdout
