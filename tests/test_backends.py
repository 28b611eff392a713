"""The same computations on NumPy, array-api-strict and (where a GPU is present) CuPy."""

from __future__ import annotations

from itertools import pairwise

import array_api_compat
import numpy as np
import pytest

import eaelib
from eaelib import EnergyAutoEncoder, constraint_violation

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

xps = pytest.importorskip("array_api_strict")

N_SAMPLES, N_FEATURES, N_ATOMS = 60, 9, 12
FIT = dict(n_atoms=N_ATOMS, max_outer=5, random_state=0)
# Relative agreement asked between backends, by dtype.
RTOL = {"float64": 1e-10, "float32": 1e-4}
DTYPES = ["float64", "float32"]


def _data(n_samples=N_SAMPLES, n_features=N_FEATURES, seed=0):
    return np.random.default_rng(seed).standard_normal((n_samples, n_features))


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    return np.from_dlpack(x)


def _is_strict(x):
    return array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(x))


def _close(actual, expected, dtype):
    actual, expected = _to_numpy(actual), _to_numpy(expected)
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


def _assert_valid_fit(model):
    history = model.objective_history_
    assert all(b <= a for a, b in pairwise(history))
    assert all(np.isfinite(history))
    assert constraint_violation(model.D_, model.E_) <= 1e-6


def _numpy_model(dtype):
    return EnergyAutoEncoder(**FIT, dtype=dtype).fit(_data())


# -- array-api-strict --------------------------------------------------------------


ROUTES = {
    # backend="array_api_strict" with NumPy data: converted on the way in.
    "backend=array_api_strict": lambda X: (dict(backend="array_api_strict"), X),
    # backend=None with array-api-strict data: the namespace follows the input.
    "strict input": lambda X: (dict(backend=None), xps.asarray(X)),
}


@SHORT_FIT
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
def test_strict_fit_matches_numpy(route, dtype):
    reference = _numpy_model(dtype)
    params, X = ROUTES[route](_data())
    model = EnergyAutoEncoder(**FIT, **params, dtype=dtype).fit(X)

    assert model.backend_ == "array_api_strict"
    for name in ("D_", "E_", "components_"):
        value = getattr(model, name)
        assert _is_strict(value), name
        assert value.dtype == getattr(xps, dtype), name
    assert model.D_.shape == (N_FEATURES, N_ATOMS)
    assert model.E_.shape == (N_ATOMS, N_FEATURES)
    _assert_valid_fit(model)

    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.objective_history_, reference.objective_history_, rtol=RTOL[dtype])
    _close(model.D_, reference.D_, dtype)
    _close(model.E_, reference.E_, dtype)

    Xn = _data()
    for method in ("exact", "encoder"):
        expected = reference.transform(Xn, method=method)
        for X_in in (Xn, xps.asarray(Xn)):  # NumPy data is converted to the model's namespace
            codes = model.transform(X_in, method=method)
            assert _is_strict(codes)
            assert codes.dtype == getattr(xps, dtype)
            assert codes.shape == (N_SAMPLES, N_ATOMS)
            _close(codes, expected, dtype)
    codes = reference.transform(Xn)
    for Z_in in (codes, xps.asarray(codes)):
        reconstruction = model.inverse_transform(Z_in)
        assert _is_strict(reconstruction)
        assert reconstruction.dtype == getattr(xps, dtype)
        _close(reconstruction, reference.inverse_transform(codes), dtype)

    terms = model.energy(xps.asarray(Xn))
    expected_terms = reference.energy(Xn)
    for key, value in expected_terms.items():
        assert terms[key] == pytest.approx(value, rel=RTOL[dtype], abs=RTOL[dtype])


@SHORT_FIT
def test_strict_input_keeps_its_device():
    """A fit on array-api-strict's second device computes there and keeps its attributes there."""
    device = xps.Device("device1")
    X = xps.asarray(_data(), device=device)
    model = EnergyAutoEncoder(**FIT).fit(X)
    assert model.D_.device == device
    assert model.E_.device == device
    assert model.transform(X).device == device
    assert model.transform(X, method="encoder").device == device
    _assert_valid_fit(model)


def _path_laplacian(n):
    adjacency = np.eye(n, k=1) + np.eye(n, k=-1)
    return np.diag(adjacency.sum(axis=1)) - adjacency


@SHORT_FIT
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("laplacian_kind", ["strict", "numpy", "scipy.sparse"])
def test_strict_graph_term_matches_numpy(laplacian_kind, dtype):
    """lambda_g > 0 with array-api-strict data, whatever library holds the Laplacian."""
    X = _data()
    L = _path_laplacian(N_SAMPLES)
    params = dict(FIT, lambda_g=2.0, dtype=dtype)
    reference = EnergyAutoEncoder(**params).fit(X, laplacian=L)
    if laplacian_kind == "strict":
        L_in = xps.asarray(L)
    elif laplacian_kind == "numpy":
        L_in = L
    else:
        sparse = pytest.importorskip("scipy.sparse")
        L_in = sparse.csr_array(L)
    model = EnergyAutoEncoder(**params).fit(xps.asarray(X), laplacian=L_in)
    assert _is_strict(model.D_) and model.D_.dtype == getattr(xps, dtype)
    _assert_valid_fit(model)
    assert model.energy_history_[-1]["graph"] > 0
    np.testing.assert_allclose(model.objective_history_, reference.objective_history_, rtol=RTOL[dtype])
    _close(model.D_, reference.D_, dtype)
    terms = model.energy(xps.asarray(X), laplacian=L_in)
    assert terms["graph"] == pytest.approx(reference.energy(X, laplacian=L)["graph"], rel=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_strict_solvers_match_numpy(dtype):
    """The three subproblem solvers, book orientation: X n×N, D n×m, E m×n, Z m×N."""
    rng = np.random.default_rng(1)
    n, N, m = 9, 40, 12
    X = rng.standard_normal((n, N)).astype(dtype)
    D0 = rng.standard_normal((n, m))
    D0 = (D0 / np.linalg.norm(D0, axis=0)).astype(dtype)
    E0 = eaelib.project_columns(np.ascontiguousarray(D0.T))  # feasible: every column in the unit ball
    weights = dict(lambda_d=10.0, lambda_e=10.0, lambda_s=1.0)
    s = {name: xps.asarray(a) for name, a in dict(X=X, D0=D0, E0=E0).items()}

    codes = eaelib.solve_codes(s["X"], s["D0"], s["E0"], **weights)
    codes_np = eaelib.solve_codes(X, D0, E0, **weights)
    assert _is_strict(codes.x) and codes.x.dtype == getattr(xps, dtype)
    assert codes.x.shape == (m, N)
    assert codes.n_iter == codes_np.n_iter
    _close(codes.x, codes_np.x, dtype)
    np.testing.assert_allclose(codes.objective, codes_np.objective, rtol=RTOL[dtype])
    assert all(b <= a for a, b in pairwise(codes.objective))

    Z, Z_np = codes.x, codes_np.x
    dictionary = eaelib.solve_dictionary(s["X"], Z, s["D0"], lambda_d=weights["lambda_d"])
    dictionary_np = eaelib.solve_dictionary(X, Z_np, D0, lambda_d=weights["lambda_d"])
    encoder = eaelib.solve_encoder(s["X"], Z, s["E0"], lambda_e=weights["lambda_e"])
    encoder_np = eaelib.solve_encoder(X, Z_np, E0, lambda_e=weights["lambda_e"])
    for result, result_np, shape in ((dictionary, dictionary_np, (n, m)), (encoder, encoder_np, (m, n))):
        assert _is_strict(result.x) and result.x.dtype == getattr(xps, dtype)
        assert result.x.shape == shape
        _close(result.x, result_np.x, dtype)
        np.testing.assert_allclose(result.objective, result_np.objective, rtol=RTOL[dtype])
        assert all(b <= a for a, b in pairwise(result.objective))
    assert constraint_violation(dictionary.x, encoder.x) <= 1e-6

    terms = eaelib.energy_terms(s["X"], Z, dictionary.x, encoder.x, **weights)
    terms_np = eaelib.energy_terms(X, Z_np, dictionary_np.x, encoder_np.x, **weights)
    assert terms["total"] == pytest.approx(terms_np["total"], rel=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "size", "stride"), [((20, 18), 4, 2), ((16, 16), 4, None), ((9, 7), 3, 1)])
def test_strict_patches_round_trip(shape, size, stride, dtype):
    image = np.random.default_rng(2).random(shape).astype(dtype)
    patches_np = eaelib.extract_patches(image, size, stride)
    patches = eaelib.extract_patches(xps.asarray(image), size, stride)
    assert _is_strict(patches) and patches.dtype == getattr(xps, dtype)
    np.testing.assert_array_equal(_to_numpy(patches), patches_np)
    back = eaelib.reconstruct_from_patches(patches, shape, size, stride)
    assert _is_strict(back) and back.dtype == getattr(xps, dtype)
    assert tuple(back.shape) == shape
    _close(back, image, dtype)


def test_strict_patches_fill():
    image = np.random.default_rng(3).random((10, 11))
    patches = eaelib.extract_patches(xps.asarray(image), 4, 3)  # reaches row 10 of 10, column 10 of 11
    back = _to_numpy(eaelib.reconstruct_from_patches(patches, (10, 11), 4, 3, fill=-1.0))
    np.testing.assert_allclose(back[:, :10], image[:, :10], rtol=1e-12)
    np.testing.assert_array_equal(back[:, 10], -1.0)
    with pytest.raises(ValueError, match="covered by no patch"):
        eaelib.reconstruct_from_patches(patches, (10, 11), 4, 3)


# -- CuPy (only where a CUDA device is present) ----------------------------------


# GPU reductions sum in another order than NumPy: rounding differs, so the tolerance is looser.
CUPY_RTOL = {"float64": 1e-7, "float32": 1e-3}


class TestCuPy:
    @SHORT_FIT
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("as_cupy_input", [False, True], ids=["backend=cupy", "cupy input"])
    def test_fit_matches_numpy(self, cupy, dtype, as_cupy_input):
        reference = _numpy_model(dtype)
        X = _data()
        if as_cupy_input:
            model = EnergyAutoEncoder(**FIT, dtype=dtype).fit(cupy.asarray(X))
        else:
            model = EnergyAutoEncoder(**FIT, backend="cupy", dtype=dtype).fit(X)
        rtol = CUPY_RTOL[dtype]
        assert model.backend_ == "cupy"
        for value in (model.D_, model.E_):
            assert isinstance(value, cupy.ndarray)
            assert value.dtype == np.dtype(dtype)
        _assert_valid_fit(model)
        np.testing.assert_allclose(model.objective_history_, reference.objective_history_, rtol=rtol)
        np.testing.assert_allclose(model.D_.get(), reference.D_, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(model.E_.get(), reference.E_, rtol=rtol, atol=rtol)
        for method in ("exact", "encoder"):
            codes = model.transform(X, method=method)
            assert isinstance(codes, cupy.ndarray) and codes.dtype == np.dtype(dtype)
            scale = float(np.max(np.abs(reference.transform(X, method=method))))
            np.testing.assert_allclose(
                codes.get(), reference.transform(X, method=method), rtol=10 * rtol, atol=10 * rtol * scale
            )
        reconstruction = model.inverse_transform(model.transform(X))
        assert isinstance(reconstruction, cupy.ndarray) and reconstruction.dtype == np.dtype(dtype)

    def test_solvers_and_patches(self, cupy):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((9, 40))
        D0 = rng.standard_normal((9, 12))
        D0 /= np.linalg.norm(D0, axis=0)
        E0 = eaelib.project_columns(D0.T)
        weights = dict(lambda_d=10.0, lambda_e=10.0, lambda_s=1.0)
        codes = eaelib.solve_codes(cupy.asarray(X), cupy.asarray(D0), cupy.asarray(E0), **weights)
        codes_np = eaelib.solve_codes(X, D0, E0, **weights)
        assert isinstance(codes.x, cupy.ndarray)
        np.testing.assert_allclose(codes.x.get(), codes_np.x, rtol=1e-6, atol=1e-6)
        image = rng.random((20, 18))
        patches = eaelib.extract_patches(cupy.asarray(image), 4, 2)
        assert isinstance(patches, cupy.ndarray)
        np.testing.assert_array_equal(patches.get(), eaelib.extract_patches(image, 4, 2))
        np.testing.assert_allclose(eaelib.reconstruct_from_patches(patches, (20, 18), 4, 2).get(), image, rtol=1e-12)
