"""Online learning (eaelib.online, EnergyAutoEncoder(algorithm="online"), partial_fit)."""

import itertools
import math
import warnings

import numpy as np
import oracles
import pytest

import eaelib
from eaelib import EnergyAutoEncoder
from eaelib._base import ConvergenceWarning
from eaelib.online import Statistics, forgetting, learn_online, minibatches, start
from eaelib.synthetic import match_atoms, sparse_dataset


@pytest.fixture(scope="module")
def patches():
    """6 × 6 non-overlapping patches of Barbara, samples as rows (1000 of them)."""
    return eaelib.extract_patches(eaelib.load_image("barbara"), size=6, stride=6)[:1000]


def online(**params):
    settings = dict(n_atoms=24, algorithm="online", batch_size=100, random_state=0)
    return EnergyAutoEncoder(**{**settings, **params})


def test_statistics_are_the_weighted_sums():
    rng = np.random.default_rng(0)
    X1, Z1, X2, Z2 = (rng.standard_normal(shape) for shape in ((4, 5), (3, 5), (4, 7), (3, 7)))
    stats = Statistics.zeros(np, 4, 3, np.float64)
    stats.update(X1, Z1, 1.0)
    stats.update(X2, Z2, 0.5)
    np.testing.assert_allclose(stats.zz, 0.5 * Z1 @ Z1.T + Z2 @ Z2.T)
    np.testing.assert_allclose(stats.xz, 0.5 * X1 @ Z1.T + X2 @ Z2.T)
    np.testing.assert_allclose(stats.xx, 0.5 * X1 @ X1.T + X2 @ X2.T)
    assert stats.x_sq == pytest.approx(0.5 * np.sum(X1**2) + np.sum(X2**2))
    assert stats.z_sq == pytest.approx(0.5 * np.sum(Z1**2) + np.sum(Z2**2))
    assert stats.weight == 0.5 * 5 + 7


def test_mairal_forgetting_weighs_early_batches_less_and_tends_to_one():
    factors = [forgetting(step, 64, "mairal") for step in range(5000)]
    assert factors[0] == pytest.approx(1 / 65)  # the first batch is almost forgotten
    assert all(0 < f < 1 for f in factors)
    assert all(b >= a for a, b in itertools.pairwise(factors))
    assert factors[-1] > 0.99


def test_recent_forgetting_remembers_a_sixteenth_of_the_samples_seen():
    b = 64
    factors = [forgetting(step, b) for step in range(100_000)]
    assert factors[0] == pytest.approx((b + 1) / (2 * b + 1))  # two batches' worth at first
    assert all(0 < f < 1 for f in factors)
    assert all(y >= x for x, y in itertools.pairwise(factors))
    # The sums behave as a sum over the last θ samples, θ/(θ + 1 − b) … : after t batches θ = t·b/16.
    for t in (1000, 10_000, 99_999):
        theta = (t + 1) * b // 16
        assert factors[t] == pytest.approx((theta + 1 - b) / (theta + 1))
    assert factors[-1] > 0.99
    # The weight left to the first epoch of N = 10 * b samples after 20 epochs is negligible with this
    # schedule; Mairal's keeps a far larger share (what slowed online learning, measured in the bench).
    recent = np.prod(factors[10:200])
    mairal = np.prod([forgetting(step, b, "mairal") for step in range(10, 200)])
    assert recent < 1e-3 < mairal
    with pytest.raises(ValueError, match="forgetting must be one of"):
        forgetting(0, b, "never")


def test_minibatches_visit_every_sample_once_per_epoch():
    rng = np.random.default_rng(0)
    batches = minibatches(1003, 100, rng)
    assert [len(b) for b in batches] == [100] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1003))
    assert not np.array_equal(np.concatenate(batches), np.arange(1003))


def test_partial_fit_over_the_batches_is_fit(patches):
    with pytest.warns(ConvergenceWarning):
        fitted = online(shuffle=False, max_outer=2).fit(patches)
    stepped = online(shuffle=False)
    for _, start_ in itertools.product(range(2), range(0, 1000, 100)):
        stepped.partial_fit(patches[start_ : start_ + 100])
    assert stepped.n_steps_ == fitted.n_steps_ == 20
    np.testing.assert_array_equal(stepped.D_, fitted.D_)
    np.testing.assert_array_equal(stepped.E_, fitted.E_)


def test_the_energy_falls_every_epoch_and_the_fit_is_certified(patches):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = online(max_outer=100).fit(patches)
    history = model.objective_history_
    assert all(b < a for a, b in itertools.pairwise(history)), history
    assert model.converged_ and model.stop_reason_ == "converged"
    gaps = model.certificate_history_[-1]
    assert max(gaps.values()) <= model.rtol * history[-1]
    # The certificate is honest: no block lowers the energy by more than it says (independent solvers).
    X, D, E = patches.T, model.D_, model.E_
    lambdas = (model.lambda_d, model.lambda_e, model.lambda_s)
    Z = oracles.codes(X, D, E, *lambdas, n_iter=3000)
    energy = oracles.energy(X, Z, D, E, *lambdas)
    assert energy == pytest.approx(history[-1], rel=1e-3)  # the epoch's codes were solved to 1e-4
    best_D = oracles.ball_least_squares(Z @ Z.T, X @ Z.T, lambdas[0])
    assert energy - oracles.energy(X, Z, best_D, E, *lambdas) <= gaps["D"] + model.rtol * energy


def surrogate(W, gram, b, c, weight):
    """The D- or E-subproblem on running sums: weight/2 (c + tr(W G Wᵀ) − 2 tr(W Bᵀ))."""
    return 0.5 * weight * (c + np.sum((W @ gram) * W) - 2 * np.sum(W * b))


def test_after_every_batch_e_minimizes_its_surrogate_and_d_lowers_its_own(patches):
    """E is solved exactly on the running sums; D takes one coordinate pass from where it was."""
    model = online()
    for start_ in range(0, 600, 100):
        D_before = None if not hasattr(model, "D_") else model.D_.copy()
        model.partial_fit(patches[start_ : start_ + 100])
    stats = model._online.statistics
    best = oracles.ball_least_squares(stats.xx, stats.xz.T, model.lambda_e)
    E_args = (stats.xx, stats.xz.T, stats.z_sq, model.lambda_e)
    assert surrogate(model.E_, *E_args) <= surrogate(best, *E_args) + 1e-9 * abs(stats.z_sq * model.lambda_e)
    D_args = (stats.zz, stats.xz, stats.x_sq, model.lambda_d)
    assert surrogate(model.D_, *D_args) <= surrogate(D_before, *D_args)
    best = oracles.ball_least_squares(stats.zz, stats.xz, model.lambda_d)
    assert surrogate(model.D_, *D_args) >= surrogate(best, *D_args) - 1e-9 * abs(stats.x_sq * model.lambda_d)


def test_the_exact_dictionary_step_is_block_stationary_on_its_statistics(patches):
    X = patches[:600].T
    _, D0, E0 = eaelib.initialize(X, 24, 0)
    weights = dict(lambda_d=10.0, lambda_e=10.0, lambda_s=1.0)
    _, state = learn_online(X, D0, E0, **weights, batch_size=100, max_epochs=1, dictionary_step="exact")
    stats = state.statistics
    for W, gram, b, c, weight in (
        (state.D, stats.zz, stats.xz, stats.x_sq, weights["lambda_d"]),
        (state.E, stats.xx, stats.xz.T, stats.z_sq, weights["lambda_e"]),
    ):
        best = oracles.ball_least_squares(gram, b, weight)
        assert surrogate(W, gram, b, c, weight) <= surrogate(best, gram, b, c, weight) + 1e-9 * abs(c * weight)


def test_online_learning_recovers_a_known_dictionary():
    X, D_true, _ = sparse_dataset(12, 8, 3000, density=0.25, random_state=0, noise=0.01)
    model = EnergyAutoEncoder(
        n_atoms=8, lambda_d=1.0, lambda_e=0.0, lambda_s=0.2, algorithm="online", batch_size=64, random_state=0
    )
    model.set_params(max_outer=30, rtol=1e-4).fit(X.T)
    assert model.converged_
    cosines = match_atoms(model.D_, D_true)
    assert np.all(cosines >= 0.99), cosines


def test_unused_atoms_are_resampled_from_the_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    state = start(X.T, eaelib.project_columns(rng.standard_normal((6, 10))), np.zeros((10, 6)))
    D0 = np.array(state.D)
    # A huge sparsity weight: no code is used, so every atom is replaced by a sample of the batch.
    eaelib.online.online_step(
        state, X.T[:, :50], lambda_d=1.0, lambda_e=0.0, lambda_s=1e6, inner_rtol=1e-4, max_inner=50, rng=rng
    )
    assert state.n_resampled == 10
    assert not np.allclose(state.D, D0)
    norms = np.linalg.norm(state.D, axis=0)
    np.testing.assert_allclose(norms, 1.0)
    cosines = np.abs(state.D.T @ (X.T[:, :50] / np.linalg.norm(X.T[:, :50], axis=0)))
    assert np.all(cosines.max(axis=1) > 1 - 1e-12)  # each atom is one of the batch's samples


def test_array_api_strict_matches_numpy(patches):
    pytest.importorskip("array_api_strict")
    X = patches[:300]
    with pytest.warns(ConvergenceWarning):
        reference = online(max_outer=1).fit(X)
    with pytest.warns(ConvergenceWarning):
        strict = online(max_outer=1, backend="array_api_strict").fit(X)
    assert strict.backend_ == "array_api_strict"
    np.testing.assert_allclose(np.from_dlpack(strict.D_), reference.D_, rtol=1e-8, atol=1e-10)


def test_the_graph_term_is_refused():
    with pytest.raises(ValueError, match="algorithm='online' cannot use the graph term"):
        online(lambda_g=1.0).fit(np.ones((10, 3)), laplacian=np.eye(10))


def test_learn_online_keeps_no_codes(patches):
    X = patches[:300].T
    _, D, E = eaelib.initialize(X, 12, random_state=0, method="data")
    result, state = learn_online(X, D, E, lambda_d=10.0, lambda_e=10.0, lambda_s=1.0, batch_size=50, max_epochs=1)
    assert result.Z is None and result.n_iter == 1 and state.step == 6
    assert len(result.energy) == 2 and len(result.certificates) == 1


def test_a_fractional_epoch_runs_that_share_of_the_batches(patches):
    X = patches[:1000].T
    _, D0, E0 = eaelib.initialize(X, 24, 0)
    weights = dict(lambda_d=10.0, lambda_e=10.0, lambda_s=1.0)
    for max_epochs, steps in ((0.25, 3), (1.5, 15), (0.01, 1)):  # batches of 100: 10 an epoch, at least 1
        result, state = learn_online(X, D0, E0, **weights, batch_size=100, max_epochs=max_epochs)
        assert state.step == steps and result.n_iter == math.ceil(max_epochs)
        assert result.iterations == [result.n_iter]  # certified once, at the end
    with pytest.raises(ValueError, match="max_epochs must be a number > 0"):
        learn_online(X, D0, E0, **weights, max_epochs=0)
