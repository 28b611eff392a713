"""Figures of eaelib.plot: the right axes, holding the model's numbers."""

import copy
import sys
import warnings

import numpy as np
import pytest

from eaelib import EnergyAutoEncoder, extract_patches
from eaelib._base import ConvergenceWarning
from eaelib.plot import plot_atoms, plot_code_sparsity, plot_energy, plot_inner_convergence, plot_norms

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

Figure = pytest.importorskip("matplotlib.figure").Figure

PATCH = 8
N_ATOMS = 16


def patches(seed=0):
    image = np.random.default_rng(seed).random((48, 48))
    return extract_patches(image, PATCH, 4)


@pytest.fixture(scope="module")
def X():
    return patches()


@pytest.fixture(scope="module")
def model(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit, on purpose
        return EnergyAutoEncoder(N_ATOMS, max_outer=3, max_inner=20, random_state=0).fit(X)


@pytest.fixture(scope="module")
def codes(model, X):
    return model.transform(X)


@SHORT_FIT
def test_plot_energy_draws_the_history(model, tmp_path):
    fig = plot_energy(model)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "outer iteration"
    total = ax.lines[0]
    np.testing.assert_array_equal(total.get_xdata(), np.arange(model.n_iter_ + 1))  # batch: every iteration
    np.testing.assert_array_equal(total.get_xdata(), model.history_iterations_)
    np.testing.assert_array_equal(total.get_ydata(), model.objective_history_)
    labels = [line.get_label() for line in ax.lines]
    assert [label.split()[0] for label in labels[1:4]] == ["data", "encoder", "sparsity"]
    assert not any(label.startswith("graph") for label in labels)  # lambda_g = 0: the term is left out
    sparsity = np.array([terms["sparsity"] for terms in model.energy_history_])
    drawn = ax.lines[3].get_ydata()
    assert sparsity[0] == 0 and np.isnan(drawn[0])  # Z = 0 at initialization: no point on a log axis
    np.testing.assert_array_equal(drawn[1:], sparsity[1:])
    assert any("initialization" in text.get_text() for text in ax.texts)
    fig.savefig(tmp_path / "energy.png")
    assert (tmp_path / "energy.png").stat().st_size > 0


def test_plot_inner_convergence_concatenates_the_traces(model):
    fig = plot_inner_convergence(model)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    for ax, name in zip(fig.axes, "ZDE", strict=True):
        assert ax.get_title().startswith(f"{name}-subproblem")
        assert ax.get_yscale() == "log"
        traces = [t for t in model.inner_history_ if t.subproblem == name]
        assert len(traces) == model.n_iter_
        gaps = np.concatenate([t.certificate for t in traces])
        # The gap, where positive (a log scale cannot show 0).
        shown = ax.lines[0].get_ydata()
        np.testing.assert_allclose(shown[gaps > 0], gaps[gaps > 0], rtol=0)
        (boundaries,) = ax.collections  # one faint line where each later outer iteration starts
        assert len(boundaries.get_segments()) == len(traces) - 1
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 1]


@SHORT_FIT
def test_plot_inner_convergence_without_a_subproblem_or_history(X):
    no_encoder = EnergyAutoEncoder(N_ATOMS, lambda_e=0.0, max_outer=2, max_inner=10, random_state=0).fit(X)
    fig = plot_inner_convergence(no_encoder)
    assert len(fig.axes) == 3
    assert not fig.axes[2].lines
    assert "lambda_e = 0" in fig.axes[2].texts[0].get_text()
    loaded_like = copy.copy(no_encoder)
    loaded_like.inner_history_ = []
    fig = plot_inner_convergence(loaded_like)
    assert all("no inner history" in ax.texts[0].get_text() for ax in fig.axes)


def test_plot_atoms_tiles_every_atom_with_its_own_scale(model):
    fig = plot_atoms(model.D_)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert not ax.get_xticks().size and not ax.get_yticks().size
    mosaic = np.ma.getdata(ax.images[0].get_array())
    n_cols = 4  # 16 atoms: a 4 × 4 grid, tiles separated by one blank (NaN) pixel
    assert mosaic.shape == (4 * (PATCH + 1) + 1, 4 * (PATCH + 1) + 1)
    D = np.asarray(model.D_)
    for j in range(N_ATOMS):
        r, c = divmod(j, n_cols)
        tile = mosaic[1 + r * (PATCH + 1) : (r + 1) * (PATCH + 1), 1 + c * (PATCH + 1) : (c + 1) * (PATCH + 1)]
        atom = D[:, j].reshape(PATCH, PATCH)
        np.testing.assert_allclose(tile, (atom - atom.min()) / (atom.max() - atom.min()))
    assert np.isnan(mosaic[0]).all() and np.isnan(mosaic[:, 0]).all()


def test_plot_atoms_options_and_errors():
    D = np.random.default_rng(1).standard_normal((64, 10))
    fig = plot_atoms(D, max_atoms=4)
    assert np.ma.getdata(fig.axes[0].images[0].get_array()).shape == (2 * 9 + 1, 2 * 9 + 1)
    assert fig.axes[0].get_title() == "4 of 10 atoms"
    fig = plot_atoms(D, patch_size=(4, 16))
    assert np.ma.getdata(fig.axes[0].images[0].get_array()).shape == (3 * 5 + 1, 4 * 17 + 1)  # 10 atoms: 3 rows of 4
    with pytest.raises(ValueError, match="patch_size"):
        plot_atoms(D, patch_size=7)
    with pytest.raises(ValueError, match="patch_size"):
        plot_atoms(D[:60])  # 60 pixels: not a square patch
    with pytest.raises(ValueError, match="patch_size"):
        plot_atoms(D, patch_size=8.0)
    with pytest.raises(ValueError, match="max_atoms"):
        plot_atoms(D, max_atoms=0)
    constant = plot_atoms(np.ones((4, 1)))  # no range: mid-gray rather than a division by zero
    assert np.nanmax(np.ma.getdata(constant.axes[0].images[0].get_array())) == 0.5


def test_plot_norms(model):
    fig = plot_norms(model)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    for ax, matrix in zip(fig.axes, (model.D_, model.E_), strict=True):
        norms, bound = ax.lines
        np.testing.assert_allclose(norms.get_ydata(), np.linalg.norm(matrix, axis=0))
        assert bound.get_linestyle() == "--"
        np.testing.assert_array_equal(bound.get_ydata(), [1.0, 1.0])
    assert len(fig.axes[0].lines[0].get_ydata()) == N_ATOMS
    assert len(fig.axes[1].lines[0].get_ydata()) == PATCH * PATCH


def test_plot_code_sparsity(codes):
    fig = plot_code_sparsity(codes)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    pattern, per_sample, per_atom = fig.axes
    nonzero = codes != 0
    assert 0 < nonzero.mean() < 1
    np.testing.assert_array_equal(np.ma.getdata(pattern.images[0].get_array()), nonzero.T)
    assert sum(p.get_height() for p in per_sample.patches) == codes.shape[0]
    np.testing.assert_array_equal([p.get_height() for p in per_atom.patches], nonzero.sum(axis=0))


@SHORT_FIT
def test_plots_accept_other_array_libraries(X):
    xp = pytest.importorskip("array_api_strict")
    model = EnergyAutoEncoder(N_ATOMS, max_outer=2, max_inner=10, random_state=0, backend="array_api_strict").fit(X)
    assert not isinstance(model.D_, np.ndarray)
    assert len(plot_norms(model).axes) == 2
    assert len(plot_atoms(model.D_).axes) == 1
    codes = model.transform(xp.asarray(X))
    fig = plot_code_sparsity(codes)
    np.testing.assert_array_equal(np.ma.getdata(fig.axes[0].images[0].get_array()), (np.from_dlpack(codes) != 0).T)
    assert len(plot_energy(model).axes) == 1
    assert len(plot_inner_convergence(model).axes) == 3


def test_unfitted_model_and_bad_shapes():
    with pytest.raises(ValueError, match="fitted"):
        plot_energy(EnergyAutoEncoder())
    with pytest.raises(ValueError, match="fitted"):
        plot_norms(EnergyAutoEncoder())
    with pytest.raises(ValueError, match="2-D"):
        plot_code_sparsity(np.zeros(5))
    with pytest.raises(ValueError, match="2-D"):
        plot_atoms(np.zeros(16))


def test_missing_matplotlib_is_a_clear_import_error(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        plot_energy(model)
