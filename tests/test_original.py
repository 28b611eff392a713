"""eaelib.original: the 2015 notebook's procedures, defects included, reproduced exactly."""

from __future__ import annotations

import doctest
import itertools
from itertools import pairwise

import numpy as np
import pytest

import eaelib
from eaelib.original import frobenius_lipschitz, original_learn, original_patch_positions, original_patches

WEIGHTS = dict(lambda_d=10.0, lambda_e=10.0, lambda_s=1.0)


def test_doctests():
    failures, tried = doctest.testmod(eaelib.original, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


# -- patches -------------------------------------------------------------------------


def _notebook_loop(image, size):
    """The notebook's cell, verbatim except for Python 2's integer division written as //."""
    Nx, Ny = np.shape(image)
    X = np.zeros((size**2, Nx * Ny // size**2))
    for x in np.arange(Nx // size):
        for y in np.arange(Ny // size):
            X[:, x * y] = image[x : x + size, y : y + size].reshape((size**2,))
    return X


@pytest.mark.parametrize(("shape", "size"), [((36, 36), 12), ((50, 41), 5), ((20, 30), 4), ((7, 9), 3), ((5, 5), 5)])
def test_patches_are_the_notebooks(shape, size):
    image = np.random.default_rng(0).random(shape) + 0.5  # no zero pixel: written columns are non-zero
    X = original_patches(image, size)
    np.testing.assert_array_equal(X, _notebook_loop(image, size))
    n_x, n_y = shape[0] // size, shape[1] // size
    assert X.shape == (size * size, shape[0] * shape[1] // size**2)

    positions, writes = original_patch_positions(shape, size)
    products = {x * y for x in range(n_x) for y in range(n_y)}
    assert set(np.flatnonzero(writes)) == products
    assert writes.sum() == n_x * n_y
    assert writes[0] == n_x + n_y - 1  # every pair with x = 0 or y = 0
    for column, (x, y) in enumerate(positions.tolist()):
        if x < 0:
            assert writes[column] == 0
            assert not X[:, column].any()
        else:
            assert x * y == column
            np.testing.assert_array_equal(X[:, column], image[x : x + size, y : y + size].ravel())
            # The last writer in the loop order wins: the largest x among the pairs.
            assert x == max(a for a in range(n_x) for b in range(n_y) if a * b == column)


def test_patches_on_barbara_collide():
    """The figures the errata chapter states: 944 of 2798 columns written, 0.8 % of the image read."""
    image = eaelib.load_image("barbara")
    X = original_patches(image, 12)
    positions, writes = original_patch_positions(image.shape, 12)
    assert X.shape == (144, 574 * 702 // 144)
    assert np.count_nonzero(writes) == 944
    assert np.count_nonzero(np.any(X != 0, axis=0)) == 944
    covered = np.zeros(image.shape, dtype=bool)
    for x, y in positions[writes > 0]:
        covered[x : x + 12, y : y + 12] = True
    assert covered.sum() == 3204
    assert not covered[58:, :].any() and not covered[:, 69:].any()  # all in the top-left corner


def test_patches_keep_library_and_dtype():
    xps = pytest.importorskip("array_api_strict")
    image = np.random.default_rng(1).random((20, 24)).astype(np.float32)
    X = original_patches(xps.asarray(image), 4)
    assert X.dtype == xps.float32
    np.testing.assert_array_equal(np.from_dlpack(X), original_patches(image, 4))


def test_patches_errors():
    with pytest.raises(ValueError, match="smaller than one patch"):
        original_patches(np.zeros((5, 20)), 6)
    with pytest.raises(ValueError, match="size"):
        original_patch_positions((20, 20), 0)
    with pytest.raises(ValueError, match="2-D"):
        original_patches(np.zeros((4, 4, 3)), 2)


# -- step size -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(30, 8), (8, 30), (12, 12)])
def test_frobenius_lipschitz(shape):
    A = np.random.default_rng(2).standard_normal(shape)
    expected = 3.0 * np.linalg.norm(A.T @ A, "fro") + 0.5
    assert frobenius_lipschitz(A, 3.0, 0.5) == pytest.approx(expected, rel=1e-12)
    spectral = 3.0 * np.linalg.norm(A, 2) ** 2 + 0.5
    assert frobenius_lipschitz(A, 3.0, 0.5) > spectral  # a valid but larger bound for rank > 1
    assert frobenius_lipschitz(A) == pytest.approx(np.sqrt(np.sum(np.linalg.svd(A, compute_uv=False) ** 4)))


def test_frobenius_lipschitz_is_the_spectral_norm_for_rank_one():
    a = np.random.default_rng(3).standard_normal((7, 1))
    A = a @ np.random.default_rng(4).standard_normal((1, 5))
    assert frobenius_lipschitz(A, 2.0) == pytest.approx(2.0 * np.linalg.norm(A, 2) ** 2, rel=1e-12)


def test_frobenius_lipschitz_matches_the_code_problem():
    rng = np.random.default_rng(5)
    X, D = rng.standard_normal((9, 40)), rng.standard_normal((9, 12))
    E = rng.standard_normal((12, 9))
    f, _ = eaelib.code_problem(X, D, E, **WEIGHTS)
    frobenius = frobenius_lipschitz(D, WEIGHTS["lambda_d"], WEIGHTS["lambda_e"])
    assert frobenius > f.lipschitz
    assert f.lipschitz == pytest.approx(WEIGHTS["lambda_d"] * np.linalg.norm(D, 2) ** 2 + WEIGHTS["lambda_e"])


# -- the alternating loop with its overwrites ----------------------------------------------


def _start(seed, n_samples=100, n_atoms=24, patch_size=4):
    """Image patches (book orientation) and the estimator's kind of start: unit atoms, E = proj(Dᵀ), Z = 0."""
    rng = np.random.default_rng(seed)
    patches = eaelib.extract_patches(eaelib.load_image("barbara"), patch_size)
    X = np.ascontiguousarray(patches[rng.choice(len(patches), n_samples, replace=False)].T)
    D = rng.standard_normal((X.shape[0], n_atoms))
    D /= np.linalg.norm(D, axis=0)
    return X, np.zeros((n_atoms, n_samples)), D, eaelib.project_columns(np.ascontiguousarray(D.T))


def test_overwrite_makes_the_energy_rise():
    X, Z0, D0, E0 = _start(6)
    result = original_learn(X, Z0, D0, E0, **WEIGHTS, max_outer=15)
    energy = [terms["total"] for terms in result.energy]
    assert result.n_iter == 15 and len(energy) == 16  # no outer stop, as in the notebook
    assert any(b > a for a, b in pairwise(energy))
    # D is Eᵀ (projected), not learned.
    np.testing.assert_array_equal(result.D, eaelib.project_columns(result.E.T))
    assert eaelib.constraint_violation(result.D, result.E) <= 1e-12
    assert result.energy[-1] == eaelib.energy_terms(X, result.Z, result.D, result.E, **WEIGHTS)
    # The corrected loop from the same start never rises, and ends lower.
    corrected = eaelib.learn(X, Z0, D0, E0, **WEIGHTS, max_outer=15, rtol=0.0)
    corrected_energy = [terms["total"] for terms in corrected.energy]
    assert all(b <= a for a, b in pairwise(corrected_energy))
    assert corrected_energy[-1] < energy[-1]


def test_without_overwrite_it_is_alternating_minimization():
    # Every block is then a minimization from the current point: the energy never rises, and it lands
    # near where eaelib.learn lands (same blocks, learn's Z-steps being more inexact early on, so the
    # two paths differ a little: 0.3 % here).
    X, Z0, D0, E0 = _start(1, n_samples=60, n_atoms=16)
    plain = original_learn(X, Z0, D0, E0, **WEIGHTS, max_outer=30, overwrite=False)
    totals = [t["total"] for t in plain.energy]
    assert all(b <= a for a, b in itertools.pairwise(totals)), totals
    corrected = eaelib.learn(X, Z0, D0, E0, **WEIGHTS, max_outer=30, rtol=0.0)
    assert totals[-1] == pytest.approx(corrected.energy[-1]["total"], rel=1e-2)


def test_original_learn_follows_the_input_library():
    xps = pytest.importorskip("array_api_strict")
    X, Z0, D0, E0 = _start(2, n_samples=40, n_atoms=12)
    reference = original_learn(X, Z0, D0, E0, **WEIGHTS, max_outer=3)
    strict = original_learn(*(xps.asarray(a) for a in (X, Z0, D0, E0)), **WEIGHTS, max_outer=3)
    assert isinstance(strict.D, type(xps.asarray(D0)))
    np.testing.assert_allclose(np.from_dlpack(strict.D), reference.D, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([t["total"] for t in strict.energy], [t["total"] for t in reference.energy], rtol=1e-10)


def test_original_learn_checks_max_outer():
    X, Z0, D0, E0 = _start(0, n_samples=20, n_atoms=8)
    with pytest.raises(ValueError, match="max_outer"):
        original_learn(X, Z0, D0, E0, **WEIGHTS, max_outer=0)
