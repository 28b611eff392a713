"""eaelib.denoising: noise, the DCT dictionary, centred patches, patch-averaging denoising and the linear filter."""

import doctest
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eaelib.denoising
from eaelib import (
    EnergyAutoEncoder,
    LinearPatchFilter,
    add_noise,
    centered_patches,
    dct_dictionary,
    denoise,
    extract_patches,
    psnr,
    reconstruct_from_patches,
)
from eaelib._base import HAVE_SKLEARN

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

xps = pytest.importorskip("array_api_strict")
# scikit-learn is optional (eaelib._base): without it only the tests marked needs_sklearn skip.
needs_sklearn = pytest.mark.skipif(
    not HAVE_SKLEARN, reason="codes with scikit-learn's SparseCoder: scikit-learn is not installed"
)


def smooth_image(shape=(24, 24)):
    """A smooth test image in [0, 1]: a few low-frequency cosines."""
    rows, cols = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    return 0.5 + 0.2 * np.cos(3 * rows) * np.cos(2 * cols) + 0.1 * np.sin(4 * cols)


# -- add_noise ----------------------------------------------------------------------------------------------------


def test_add_noise_has_the_requested_standard_deviation_and_zero_mean():
    noisy = add_noise(np.zeros((300, 300)), 0.1, random_state=0)
    assert noisy.shape == (300, 300) and noisy.dtype == np.float64
    assert abs(noisy.std() - 0.1) < 0.002
    assert abs(noisy.mean()) < 0.002


def test_add_noise_is_reproducible_and_seeded():
    image = smooth_image()
    a, b = add_noise(image, 0.05, random_state=3), add_noise(image, 0.05, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, add_noise(image, 0.05, random_state=4))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(add_noise(image, 0.05, random_state=rng), a)


def test_add_noise_keeps_the_image_and_its_dtype():
    image = smooth_image().astype(np.float32)
    noisy = add_noise(image, 0.0, random_state=0)
    assert noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy, image)
    assert add_noise(image, 0.1, random_state=0).dtype == np.float32
    assert add_noise(np.zeros((4, 4), dtype=np.uint8), 1.0, random_state=0).dtype == np.float64


def test_add_noise_follows_the_array_library():
    image = smooth_image()
    strict = add_noise(xps.asarray(image), 0.1, random_state=1)
    assert isinstance(strict, type(xps.asarray(0.0)))
    np.testing.assert_array_equal(np.from_dlpack(strict), add_noise(image, 0.1, random_state=1))


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf"), "0.1"])
def test_add_noise_rejects_a_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        add_noise(np.zeros((3, 3)), sigma)


def test_add_noise_rejects_non_finite_images():
    with pytest.raises(ValueError, match="NaN or infinite"):
        add_noise(np.array([[0.0, np.nan]]), 0.1)
    with pytest.raises(ValueError, match="scalar"):
        add_noise(0.5, 0.1)
    assert add_noise(np.zeros((0, 3)), 0.1).shape == (0, 3)
    assert add_noise([0.0, 1.0, 2.0], 0.0).tolist() == [0.0, 1.0, 2.0]


# -- dct_dictionary ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("patch_size", [1, 2, 4, 8])
def test_dct_with_as_many_atoms_as_pixels_is_the_orthonormal_dct(patch_size):
    scipy_fft = pytest.importorskip("scipy.fft")
    D = dct_dictionary(patch_size, patch_size**2)
    np.testing.assert_allclose(D.T @ D, np.eye(patch_size**2), atol=1e-12)
    # The oracle: SciPy's orthonormal DCT-II basis, whose 2-D atoms are Kronecker products of 1-D ones.
    basis_1d = scipy_fft.idct(np.eye(patch_size), norm="ortho", axis=0)
    np.testing.assert_allclose(D, np.kron(basis_1d, basis_1d), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10), st.integers(1, 16))
def test_dct_atoms_have_unit_norm_and_zero_mean_except_the_first(patch_size, k):
    D = dct_dictionary(patch_size, k * k)
    assert D.shape == (patch_size**2, k * k)
    norms = np.linalg.norm(D, axis=0)
    assert np.all(np.isfinite(D))
    # A zero-mean cosine vanishes on a single pixel: such atoms are left at zero, every other has norm 1.
    assert np.all(np.isclose(norms, 1.0) | (norms == 0.0))
    assert np.isclose(norms[0], 1.0)
    np.testing.assert_allclose(D[:, 0], D[0, 0])  # atom 0 is constant
    np.testing.assert_allclose(D[:, 1:].sum(axis=0), 0.0, atol=1e-10)


def test_dct_atom_order_is_vertical_then_horizontal_frequency():
    D = dct_dictionary(8, 16 * 16)
    atom = D[:, 1].reshape(8, 8)  # i = 0, j = 1: varies along the columns only
    np.testing.assert_allclose(atom, atom[:1, :].repeat(8, axis=0))
    atom = D[:, 16].reshape(8, 8)  # i = 1, j = 0: varies along the rows only
    np.testing.assert_allclose(atom, atom[:, :1].repeat(8, axis=1))


def test_dct_dictionary_dtype_and_errors():
    assert dct_dictionary(4, 9, dtype="float32").dtype == np.float32
    with pytest.raises(ValueError, match="perfect square"):
        dct_dictionary(8, 100 + 1)
    with pytest.raises(ValueError, match="n_atoms"):
        dct_dictionary(8, 0)
    with pytest.raises(ValueError, match="patch_size"):
        dct_dictionary(0, 4)


# -- centered_patches --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_centered_patches_have_zero_mean_and_rebuild_the_patches(size, stride, seed):
    image = np.random.default_rng(seed).random((size + 9, size + 6))
    X, means = centered_patches(image, size, stride)
    patches = extract_patches(image, size, stride)
    assert means.shape == (patches.shape[0], 1)
    np.testing.assert_allclose(X.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(X + means, patches, atol=1e-12)


# -- denoise ------------------------------------------------------------------------------------------------------


def sparse_coder(dictionary, alpha):
    """scikit-learn's SparseCoder by thresholding: a coder that is not an EnergyAutoEncoder."""
    from sklearn.decomposition import SparseCoder

    return SparseCoder(dictionary, transform_algorithm="threshold", transform_alpha=alpha)


@needs_sklearn
def test_denoise_with_an_orthonormal_basis_and_no_threshold_is_the_identity():
    image = np.random.default_rng(0).random((13, 16))
    coder = sparse_coder(dct_dictionary(4, 16).T, 0.0)
    for stride in (1, 3):
        timings = {}
        np.testing.assert_allclose(denoise(image, coder, 4, stride=stride, timings=timings), image, atol=1e-12)
        assert set(timings) == {"coding", "reconstruction"} and all(t >= 0 for t in timings.values())


@needs_sklearn
def test_denoise_removes_noise_from_a_smooth_image():
    clean = smooth_image((32, 32))
    noisy = add_noise(clean, 0.1, random_state=0)
    sigma = 0.1
    coder = sparse_coder(dct_dictionary(8, 64).T, 3 * sigma)
    denoised = denoise(noisy, coder, 8, stride=1)
    assert psnr(clean, denoised) > psnr(clean, noisy) + 6  # measured about 15 dB better


@SHORT_FIT
def test_denoise_is_the_documented_pipeline_for_both_methods_of_the_estimator():
    image = np.random.default_rng(1).random((14, 14))
    X, means = centered_patches(image, 4, 2)
    model = EnergyAutoEncoder(n_atoms=10, lambda_e=1.0, max_outer=3, random_state=0).fit(X)
    for method in ("exact", "encoder"):
        expected = reconstruct_from_patches(
            model.inverse_transform(model.transform(X, method=method)) + means, (14, 14), 4, 2
        )
        np.testing.assert_allclose(denoise(image, model, 4, stride=2, method=method), expected, atol=1e-12)
    # the codes on request: those of transform, one row per patch
    image_out, codes = denoise(image, model, 4, stride=2, method="encoder", return_codes=True)
    np.testing.assert_allclose(codes, model.transform(X, method="encoder"), atol=1e-12)
    np.testing.assert_allclose(image_out, denoise(image, model, 4, stride=2, method="encoder"), atol=1e-12)
    # transform's own options are passed on
    loose = denoise(image, model, 4, stride=2, method="exact", max_iter=1)
    assert not np.allclose(loose, denoise(image, model, 4, stride=2, method="exact"))


@SHORT_FIT
def test_denoise_with_a_float32_model_returns_float32():
    image = np.random.default_rng(2).random((12, 12))
    X, _ = centered_patches(image, 4, 2)  # 25 patches of 16 pixels
    model = EnergyAutoEncoder(n_atoms=6, max_outer=2, dtype="float32", random_state=0).fit(X)
    assert denoise(image, model, 4, stride=4, method="encoder").dtype == np.float32


@SHORT_FIT
def test_denoise_on_array_api_strict():
    image = np.random.default_rng(3).random((12, 12))
    X, _ = centered_patches(image, 4, 2)
    reference = EnergyAutoEncoder(n_atoms=6, max_outer=2, random_state=0).fit(X)
    strict = EnergyAutoEncoder(n_atoms=6, max_outer=2, random_state=0, backend="array_api_strict").fit(X)
    out = denoise(xps.asarray(image), strict, 4, stride=2, method="encoder")
    assert isinstance(out, type(xps.asarray(0.0)))
    np.testing.assert_allclose(
        np.from_dlpack(out), denoise(image, reference, 4, stride=2, method="encoder"), atol=1e-12
    )
    # a NumPy image given to a model on another library: the means follow the model
    out = denoise(image, strict, 4, stride=2, method="encoder")
    assert isinstance(out, type(xps.asarray(0.0)))


@needs_sklearn
def test_denoise_errors():
    image = np.zeros((10, 10))
    coder = sparse_coder(dct_dictionary(4, 16).T, 0.0)
    with pytest.raises(ValueError, match="covered by no patch"):
        denoise(image, coder, 4, stride=4)  # 10 − 4 is not a multiple of 4
    with pytest.raises(ValueError, match="stride"):
        denoise(image, coder, 4, stride=0)
    with pytest.raises(ValueError, match="smaller than one patch"):
        denoise(np.zeros((3, 3)), coder, 4)


# -- LinearPatchFilter -----------------------------------------------------------------------------------------


def test_linear_patch_filter_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((40, 5)), rng.standard_normal((5, 3))
    fitted = LinearPatchFilter().fit(X, X @ W)
    np.testing.assert_allclose(fitted.weights_, W, atol=1e-10)
    np.testing.assert_allclose(fitted.transform(X), X @ W, atol=1e-10)
    Z = rng.standard_normal((2, 3))
    assert fitted.inverse_transform(Z) is Z


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_linear_patch_filter_is_the_best_linear_map(seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    best = np.linalg.norm(Y - LinearPatchFilter().fit(X, Y).transform(X))
    other = np.linalg.norm(Y - X @ (np.linalg.lstsq(X, Y, rcond=None)[0] + 0.01 * rng.standard_normal((4, 4))))
    assert best <= other + 1e-9


@SHORT_FIT
def test_linear_patch_filter_is_an_upper_bound_for_the_encoder_on_its_own_patches():
    clean = smooth_image((20, 20))
    noisy = add_noise(clean, 0.05, random_state=0)
    X, means = centered_patches(noisy, 4, 1)
    model = EnergyAutoEncoder(n_atoms=12, lambda_d=1.0, lambda_e=0.1, lambda_s=0.05, max_outer=5, random_state=0)
    model.fit(X)
    oracle = LinearPatchFilter().fit(X, extract_patches(clean, 4, 1) - means)
    target = extract_patches(clean, 4, 1) - means
    encoder_error = np.linalg.norm(target - model.inverse_transform(model.transform(X, method="encoder")))
    assert np.linalg.norm(target - oracle.transform(X)) <= encoder_error + 1e-9


def test_linear_patch_filter_errors():
    with pytest.raises(ValueError, match="not fitted"):
        LinearPatchFilter().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="same number of rows"):
        LinearPatchFilter().fit(np.zeros((3, 2)), np.zeros((4, 2)))
    fitted = LinearPatchFilter().fit(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="features"):
        fitted.transform(np.zeros((2, 4)))
    strict = LinearPatchFilter().fit(xps.asarray(np.eye(3)), xps.asarray(np.eye(3)))
    assert isinstance(strict.transform(np.eye(3)), type(xps.asarray(0.0)))


@needs_sklearn  # denoise's example codes with SparseCoder
def test_doctests():
    with warnings.catch_warnings():
        # Doctests see warnings as exceptions under pytest's filter; an example shows a result, not its notes.
        warnings.simplefilter("ignore", UserWarning)
        failures, tried = doctest.testmod(eaelib.denoising)
    assert tried >= 5 and failures == 0
