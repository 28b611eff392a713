"""Online learning (eaelib.online, EnergyAutoEncoder(algorithm="online"), partial_fit)."""

import itertools
import warnings

import numpy as np
import oracles
import pytest

import eaelib
from eaelib import EnergyAutoEncoder
from eaelib.online import Statistics, forgetting, learn_online, minibatches, start
from eaelib.synthetic import match_atoms, sparse_dataset

ConvergenceWarning = pytest.importorskip("sklearn.exceptions").ConvergenceWarning


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


def test_forgetting_weighs_early_batches_less_and_tends_to_one():
    factors = [forgetting(step, 64) for step in range(5000)]
    assert factors[0] == pytest.approx(1 / 65)  # the first batch is almost forgotten
    assert all(0 < f < 1 for f in factors)
    assert all(b >= a for a, b in itertools.pairwise(factors))
    assert factors[-1] > 0.99


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


def test_the_model_is_block_stationary_on_its_statistics(patches):
    """After every batch D and E minimize the surrogate built from the running sums."""
    model = online()
    for start_ in range(0, 600, 100):
        model.partial_fit(patches[start_ : start_ + 100])
    stats = model._online.statistics

    def surrogate(W, gram, b, c, weight):
        return 0.5 * weight * (c + np.sum((W @ gram) * W) - 2 * np.sum(W * b))

    for W, gram, b, c, weight in (
        (model.D_, stats.zz, stats.xz, stats.x_sq, model.lambda_d),
        (model.E_, stats.xx, stats.xz.T, stats.z_sq, model.lambda_e),
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
