"""eaelib.analysis: PSNR, code sparsity, and the encoder against the dictionary (properties and errors)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eaelib import (
    CodeSparsity,
    EnergyAutoEncoder,
    atom_coherence,
    code_sparsity,
    encoder_dictionary_cosines,
    encoder_dictionary_distance,
    psnr,
)

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

xps = pytest.importorskip("array_api_strict")

fast = settings(max_examples=100, deadline=None)
finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=64)
shapes = st.tuples(st.integers(1, 6), st.integers(1, 7))


@st.composite
def pairs(draw, shape=shapes):
    """Two arrays of one shape."""
    shape = draw(shape)
    return draw(arrays(np.float64, shape, elements=finite)), draw(arrays(np.float64, shape, elements=finite))


# No subnormals: scaling one by 0.5 can round it to zero (5e-324 · 0.5 == 0), which is the arithmetic, not a
# change of sparsity. Normal values times any scale in [0.1, 10] stay non-zero and finite.
normal = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


@st.composite
def sparse_codes(draw, elements=finite):
    """Codes with exact zeros, as soft-thresholding makes them."""
    shape = draw(shapes)
    values = draw(arrays(np.float64, shape, elements=elements))
    mask = draw(arrays(np.bool_, shape))
    return np.where(mask, values, 0.0)


@st.composite
def dictionaries(draw, zero_rows=False):
    """A dictionary D (n × m) and an encoder E (m × n), with no zero atom or row unless ``zero_rows``."""
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    D, E = rng.standard_normal((n, m)), rng.standard_normal((m, n))
    if zero_rows:
        E[draw(st.integers(0, m - 1))] = 0.0
    return D, E


# -- psnr -------------------------------------------------------------------------------------------------------


@fast
@given(pairs(), st.floats(0.1, 1000.0))
def test_psnr_is_the_formula(pair, data_range):
    reference, estimate = pair
    mse = np.mean((reference - estimate) ** 2)
    expected = math.inf if mse == 0 else 20 * math.log10(data_range) - 10 * math.log10(mse)
    value = psnr(reference, estimate, data_range=data_range)
    assert isinstance(value, float)
    if math.isinf(expected):
        assert value == math.inf
    else:
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert psnr(estimate, reference, data_range=data_range) == value  # symmetric


@fast
@given(pairs(), st.floats(1e-3, 1e3))
def test_psnr_is_scale_invariant(pair, scale):
    reference, estimate = pair
    # Away from squared errors so small that they underflow differently once scaled.
    assume(np.mean((reference - estimate) ** 2) > 1e-100)
    assert psnr(scale * reference, scale * estimate, data_range=scale) == pytest.approx(
        psnr(reference, estimate), rel=1e-9, abs=1e-9
    )


@fast
@given(arrays(np.float64, shapes, elements=finite), st.floats(1e-4, 1.0))
def test_psnr_of_a_constant_error(reference, error):
    # MSE = error², so PSNR = 20 log10(1 / error): 20 dB per factor of ten.
    assert psnr(reference, reference + error) == pytest.approx(-20 * math.log10(error), abs=1e-6)
    assert psnr(reference, reference) == math.inf


def test_psnr_known_value_and_types():
    reference = np.zeros((4, 4))
    assert psnr(reference, reference + 0.1) == pytest.approx(20.0)
    assert psnr(reference.tolist(), (reference + 0.1).tolist()) == pytest.approx(20.0)  # array-likes
    assert psnr(np.zeros(3, dtype=np.uint8), np.full(3, 51, dtype=np.uint8), data_range=255) == pytest.approx(
        20 * math.log10(5)
    )
    # float32 inputs: the error is accumulated in float64.
    assert psnr(reference.astype(np.float32), (reference + 0.1).astype(np.float32)) == pytest.approx(20.0, abs=1e-5)


@pytest.mark.parametrize(
    ("reference", "estimate", "kwargs", "message"),
    [
        (np.zeros(3), np.zeros(4), {}, "same shape"),
        (np.zeros((0, 2)), np.zeros((0, 2)), {}, "empty"),
        (np.array([0.0, np.nan]), np.zeros(2), {}, "NaN"),
        (np.zeros(2), np.array([np.inf, 0.0]), {}, "NaN or infinite"),
        (np.zeros(2), np.ones(2), {"data_range": 0.0}, "data_range"),
        (np.zeros(2), np.ones(2), {"data_range": -1.0}, "data_range"),
        (np.zeros(2, dtype=complex), np.ones(2), {}, "real"),
    ],
)
def test_psnr_errors(reference, estimate, kwargs, message):
    with pytest.raises(ValueError, match=message):
        psnr(reference, estimate, **kwargs)


# -- code_sparsity ----------------------------------------------------------------------------------------------


@fast
@given(sparse_codes(), st.floats(0.0, 5.0))
def test_code_sparsity_counts(Z, tol):
    result = code_sparsity(Z, tol=tol)
    nonzero = np.abs(Z) > tol
    assert isinstance(result, CodeSparsity)
    assert (result.n_samples, result.n_atoms) == Z.shape
    np.testing.assert_array_equal(result.per_sample, nonzero.sum(axis=1))
    np.testing.assert_array_equal(result.per_atom, nonzero.sum(axis=0))
    assert result.nonzero_fraction == pytest.approx(nonzero.mean())
    assert 0.0 <= result.nonzero_fraction <= 1.0
    # Both marginals count the same non-zeros.
    assert result.per_sample.sum() == result.per_atom.sum() == nonzero.sum()
    assert result.mean_per_sample == pytest.approx(result.per_sample.mean())


@fast
@given(sparse_codes(), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5))
def test_atoms_used_decreases_with_the_threshold(Z, fractions):
    result = code_sparsity(Z)
    counts = [result.atoms_used(f) for f in sorted(fractions)]
    assert all(b <= a for a, b in itertools.pairwise(counts))
    assert result.atoms_used() == int(np.any(Z != 0, axis=0).sum())
    assert result.atoms_used(1.0) == 0  # no atom is used by more than all the samples
    assert 0 <= result.atoms_used() <= result.n_atoms


@fast
@given(sparse_codes(elements=normal), st.floats(0.1, 10.0))
def test_code_sparsity_ignores_scale_and_sign(Z, scale):
    a, b = code_sparsity(Z), code_sparsity(-scale * Z)
    assert a.nonzero_fraction == b.nonzero_fraction
    np.testing.assert_array_equal(a.per_atom, b.per_atom)


def test_code_sparsity_counts_what_is_stored():
    # The subnormal that hypothesis once drew: halving it rounds it to an exact zero, and code_sparsity
    # counts the zero (the reason the property above draws normal numbers only).
    Z = np.array([[5e-324]])
    assert code_sparsity(Z).nonzero_fraction == 1.0
    assert code_sparsity(0.5 * Z).nonzero_fraction == 0.0


def test_code_sparsity_example_and_errors():
    result = code_sparsity(np.array([[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]]))
    assert result.nonzero_fraction == 0.5
    assert result.per_sample.tolist() == [1, 2]
    assert result.per_atom.tolist() == [1, 2, 0]
    assert result.atoms_used() == 2
    assert result.atoms_used(0.5) == 1  # atom 1 is used by 2 of 2 samples, atom 0 by 1 of 2 (not more than half)
    assert code_sparsity(np.zeros((0, 3))).nonzero_fraction == 0.0
    with pytest.raises(ValueError, match="2-D"):
        code_sparsity(np.zeros(3))
    with pytest.raises(ValueError, match="tol"):
        code_sparsity(np.zeros((2, 2)), tol=-1.0)
    with pytest.raises(ValueError, match="min_fraction"):
        result.atoms_used(1.5)


# -- encoder against dictionary -----------------------------------------------------------------------------------


@fast
@given(dictionaries())
def test_cosines_are_the_formula(pair):
    D, E = pair
    cosines = encoder_dictionary_cosines(D, E)
    expected = [E[k] @ D[:, k] / (np.linalg.norm(E[k]) * np.linalg.norm(D[:, k])) for k in range(D.shape[1])]
    assert cosines.shape == (D.shape[1],)
    np.testing.assert_allclose(cosines, expected, rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(cosines) <= 1.0)


@fast
@given(dictionaries(), st.integers(0, 2**32 - 1))
def test_cosines_ignore_positive_scales_and_follow_permutations(pair, seed):
    D, E = pair
    rng = np.random.default_rng(seed)
    m = D.shape[1]
    atom_scales, row_scales = rng.uniform(0.1, 10.0, m), rng.uniform(0.1, 10.0, m)
    np.testing.assert_allclose(
        encoder_dictionary_cosines(D * atom_scales, E * row_scales[:, None]),
        encoder_dictionary_cosines(D, E),
        atol=1e-12,
    )
    order = rng.permutation(m)
    np.testing.assert_allclose(
        encoder_dictionary_cosines(D[:, order], E[order]), encoder_dictionary_cosines(D, E)[order], atol=1e-12
    )


@fast
@given(dictionaries())
def test_transposed_dictionary_is_the_perfect_encoder(pair):
    D, _ = pair
    np.testing.assert_allclose(encoder_dictionary_cosines(D, D.T), 1.0, rtol=1e-12)
    np.testing.assert_allclose(encoder_dictionary_cosines(D, -3.0 * D.T), -1.0, rtol=1e-12)
    assert encoder_dictionary_distance(D, D.T) == 0.0
    assert encoder_dictionary_distance(D, np.zeros_like(D.T)) == pytest.approx(1.0)
    assert encoder_dictionary_distance(D, -D.T) == pytest.approx(2.0)


@fast
@given(dictionaries(zero_rows=True))
def test_cosine_of_a_zero_row_is_nan(pair):
    D, E = pair
    cosines = encoder_dictionary_cosines(D, E)
    zero = np.all(E == 0, axis=1)
    assert np.all(np.isnan(cosines[zero]))
    assert np.all(np.isfinite(cosines[~zero]))


@fast
@given(dictionaries(), st.floats(1e-3, 1e3))
def test_distance_is_the_formula_and_scale_invariant(pair, scale):
    D, E = pair
    expected = np.linalg.norm(E - D.T) / np.linalg.norm(D)
    assert encoder_dictionary_distance(D, E) == pytest.approx(expected, rel=1e-12)
    assert encoder_dictionary_distance(scale * D, scale * E) == pytest.approx(expected, rel=1e-9)


def test_encoder_dictionary_errors():
    with pytest.raises(ValueError, match="shape of D transposed"):
        encoder_dictionary_cosines(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape of D transposed"):
        encoder_dictionary_distance(np.ones((3, 2)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        encoder_dictionary_cosines(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="D is zero"):
        encoder_dictionary_distance(np.zeros((3, 2)), np.ones((2, 3)))


@fast
@given(dictionaries(), st.integers(0, 2**32 - 1))
def test_atom_coherence_is_the_largest_cosine_with_another_atom(pair, seed):
    D, _ = pair
    m = D.shape[1]
    coherence = atom_coherence(D)
    assert coherence.shape == (m,)
    if m == 1:
        assert np.isnan(coherence).all()  # no other atom to compare with
        return
    unit = D / np.linalg.norm(D, axis=0)
    cosines = np.abs(unit.T @ unit)
    np.fill_diagonal(cosines, -1.0)
    np.testing.assert_allclose(coherence, cosines.max(axis=1), rtol=1e-12, atol=1e-12)
    assert np.all((coherence >= 0) & (coherence <= 1))
    # Invariant to the scale and sign of each atom; follows a permutation of the atoms.
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.1, 10.0, m) * rng.choice([-1.0, 1.0], m)
    np.testing.assert_allclose(atom_coherence(D * scales), coherence, atol=1e-12)
    order = rng.permutation(m)
    np.testing.assert_allclose(atom_coherence(D[:, order]), coherence[order], atol=1e-12)


@fast
@given(dictionaries())
def test_a_duplicated_atom_has_coherence_one(pair):
    D, _ = pair
    doubled = np.hstack([D, -2.0 * D[:, :1]])
    assert atom_coherence(doubled)[0] == pytest.approx(1.0)
    assert atom_coherence(doubled)[-1] == pytest.approx(1.0)


def test_atom_coherence_special_cases():
    np.testing.assert_allclose(atom_coherence(np.eye(4)), 0.0)  # orthonormal atoms
    coherence = atom_coherence(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # atom 1 is zero
    assert coherence[0] == 0.0 and coherence[2] == 0.0 and np.isnan(coherence[1])
    assert atom_coherence(np.ones((3, 0))).shape == (0,)
    with pytest.raises(ValueError, match="2-D"):
        atom_coherence(np.ones(3))


# -- backends and a fitted model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_array_api_strict_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    D, E = rng.standard_normal((9, 5)).astype(dtype), rng.standard_normal((5, 9)).astype(dtype)
    Z = np.where(rng.random((20, 5)) < 0.4, rng.standard_normal((20, 5)), 0.0).astype(dtype)
    sD, sE, sZ = xps.asarray(D), xps.asarray(E), xps.asarray(Z)
    rtol = 1e-12 if dtype == "float64" else 1e-5

    cosines = encoder_dictionary_cosines(sD, sE)
    assert isinstance(cosines, type(sD)) and cosines.dtype == getattr(xps, dtype)
    np.testing.assert_allclose(np.from_dlpack(cosines), encoder_dictionary_cosines(D, E), rtol=rtol)
    assert encoder_dictionary_distance(sD, sE) == pytest.approx(encoder_dictionary_distance(D, E), rel=rtol)
    np.testing.assert_allclose(np.from_dlpack(atom_coherence(sD)), atom_coherence(D), rtol=rtol)
    assert psnr(sZ, sZ + 0.1) == pytest.approx(psnr(Z, Z + 0.1), rel=rtol)

    strict, plain = code_sparsity(sZ), code_sparsity(Z)
    assert isinstance(strict.per_atom, type(sZ))
    assert strict.nonzero_fraction == plain.nonzero_fraction
    np.testing.assert_array_equal(np.from_dlpack(strict.per_sample), plain.per_sample)
    assert strict.atoms_used(0.3) == plain.atoms_used(0.3)


@SHORT_FIT
def test_on_a_fitted_model():
    X = np.random.default_rng(0).random((200, 16))
    model = EnergyAutoEncoder(n_atoms=20, max_outer=5, random_state=0).fit(X)
    Z = model.transform(X)
    result = code_sparsity(Z)
    assert 0.0 < result.nonzero_fraction < 1.0  # soft-thresholding leaves exact zeros, and not only zeros
    cosines = encoder_dictionary_cosines(model.D_, model.E_)
    assert cosines.shape == (20,)
    assert np.all(np.isnan(cosines) | (np.abs(cosines) <= 1.0))
    assert psnr(X, model.inverse_transform(Z)) > psnr(X, np.zeros_like(X))  # better than reconstructing nothing
