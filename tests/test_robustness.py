"""Interrupts, warm starts, divergence, dead atoms and the callback hook."""

import itertools

import numpy as np
import pytest

import eaelib
from eaelib import EnergyAutoEncoder, constraint_violation
from eaelib._base import ConvergenceWarning  # scikit-learn's where it is installed

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")


def data(seed=0, n_samples=60, n_features=8):
    return np.random.default_rng(seed).standard_normal((n_samples, n_features))


def monotone(history):
    return all(b <= a for a, b in itertools.pairwise(history))


def test_callback_sees_every_iteration_and_can_stop():
    seen = []

    def callback(iteration, terms):
        seen.append((iteration, terms["total"]))
        return iteration == 3

    model = EnergyAutoEncoder(n_atoms=10, max_outer=10, rtol=0, random_state=0, callback=callback).fit(data())
    assert model.n_iter_ == 3 and [s[0] for s in seen] == [1, 2, 3]
    assert [s[1] for s in seen] == model.objective_history_[1:]


@SHORT_FIT
def test_keyboard_interrupt_keeps_the_last_complete_iteration_and_warm_start_continues():
    X = data(1)

    def interrupt(iteration, terms):
        if iteration == 3:
            raise KeyboardInterrupt

    model = EnergyAutoEncoder(n_atoms=10, max_outer=6, rtol=0, random_state=0, callback=interrupt)
    with pytest.warns(ConvergenceWarning, match="interrupted after 3 outer iterations"):
        model.fit(X)
    assert model.n_iter_ == 3 and not model.converged_
    # The callback ran after iteration 3 was recorded: the model is that iterate.
    uninterrupted = EnergyAutoEncoder(n_atoms=10, max_outer=3, rtol=0, random_state=0).fit(X)
    np.testing.assert_array_equal(model.D_, uninterrupted.D_)
    assert model.objective_history_ == uninterrupted.objective_history_

    model.set_params(callback=None, warm_start=True, max_outer=3)
    model.fit(X)
    straight = EnergyAutoEncoder(n_atoms=10, max_outer=6, rtol=0, random_state=0).fit(X)
    assert model.n_iter_ == 6 and len(model.objective_history_) == 7
    assert monotone(model.objective_history_)
    np.testing.assert_allclose(model.objective_history_, straight.objective_history_, rtol=1e-12)
    np.testing.assert_allclose(model.D_, straight.D_, rtol=1e-10, atol=1e-12)
    assert [t.outer for t in model.inner_history_[::3]] == [1, 2, 3, 4, 5, 6]


@SHORT_FIT
def test_warm_start_on_other_data_starts_a_new_history():
    model = EnergyAutoEncoder(n_atoms=10, max_outer=3, random_state=0, warm_start=True).fit(data(2))
    D_first = model.D_.copy()
    model.fit(data(3))
    assert model.n_iter_ <= 3 and monotone(model.objective_history_)
    assert not np.array_equal(model.D_, D_first)
    with pytest.raises(ValueError, match="warm_start needs X with 8 features"):
        model.fit(data(3, n_features=5))


@SHORT_FIT
def test_divergence_names_the_subproblem_and_keeps_finite_parameters(monkeypatch):
    X = data(4)
    calls = []
    real_solve_ball = eaelib.learning.solve_ball

    def failing_solve_ball(*args, **options):
        calls.append(1)
        if len(calls) == 3:  # D, E, then the D-step of the second outer iteration
            raise FloatingPointError("the dual solver produced a non-finite objective at iteration 3")
        return real_solve_ball(*args, **options)

    monkeypatch.setattr(eaelib.learning, "solve_ball", failing_solve_ball)
    model = EnergyAutoEncoder(n_atoms=10, max_outer=5, rtol=0, random_state=0)
    with pytest.raises(FloatingPointError, match="D-subproblem diverged at outer iteration 2"):
        model.fit(X)
    monkeypatch.undo()
    one = EnergyAutoEncoder(n_atoms=10, max_outer=1, rtol=0, random_state=0).fit(X)
    assert model.n_iter_ == 1
    np.testing.assert_array_equal(model.D_, one.D_)
    assert np.all(np.isfinite(model.D_)) and np.all(np.isfinite(model.E_))


def test_dead_atoms_are_counted_and_can_be_reinitialized():
    # Few samples and many random atoms with a strong sparsity weight and no encoder term (which pulls
    # the codes towards the dense EX): many atoms go unused. (Atoms drawn from the data all get used.)
    X = data(5, n_samples=12, n_features=6)
    settings = dict(n_atoms=40, lambda_s=5.0, lambda_e=0.0, max_outer=8, random_state=0, init="random")
    plain = EnergyAutoEncoder(**settings).fit(X)
    assert 0 < plain.n_dead_atoms_ < plain.n_atoms and plain.n_reinitialized_atoms_ == 0
    revived = EnergyAutoEncoder(**settings, reinit_dead_atoms=True).fit(X)
    assert revived.n_reinitialized_atoms_ > 0
    assert monotone(revived.objective_history_)
    assert constraint_violation(revived.D_, revived.E_) <= 1e-6
    # Different paths from the same start: replacing unused atoms is no guarantee of a lower energy,
    # and costs nothing measurable here.
    assert revived.objective_history_[-1] <= plain.objective_history_[-1] * (1 + 1e-4)


def test_reinitialization_leaves_the_energy_unchanged():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((5, 30))
    Z, D, E = eaelib.initialize(X, 9, random_state=0)
    Z = rng.standard_normal(Z.shape) * (rng.random((9, 1)) < 0.5)  # about half the atoms unused
    dead = eaelib.dead_atoms(Z)
    assert 0 < dead.sum() < 9
    weights = dict(lambda_d=10.0, lambda_e=10.0, lambda_s=1.0)
    D_new, n_replaced = eaelib.reinitialize_dead_atoms(X, Z, D)
    assert n_replaced == dead.sum()
    np.testing.assert_array_equal(D_new[:, ~dead], D[:, ~dead])
    np.testing.assert_allclose(np.linalg.norm(D_new[:, dead], axis=0), 1.0)
    before = eaelib.energy_terms(X, Z, D, E, **weights)["total"]
    after = eaelib.energy_terms(X, Z, D_new, E, **weights)["total"]
    assert after == pytest.approx(before, rel=1e-12)


def test_callback_must_be_callable():
    with pytest.raises(ValueError, match="callback must be callable"):
        EnergyAutoEncoder(callback=3).fit(data())


@SHORT_FIT
def test_saved_model_keeps_counts_and_drops_the_callback(tmp_path):
    model = EnergyAutoEncoder(n_atoms=10, max_outer=2, random_state=0, callback=lambda i, t: False).fit(data())
    eaelib.save_model(model, tmp_path / "m.npz")
    loaded = eaelib.load_model(tmp_path / "m.npz")
    assert loaded.callback is None
    assert loaded.n_dead_atoms_ == model.n_dead_atoms_ and loaded.n_reinitialized_atoms_ == 0
