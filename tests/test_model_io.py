"""save_model / load_model: exact round trips, and clear refusals of files that are not models."""

import ast
import io
import pathlib
import warnings
from pathlib import Path

import numpy as np
import pytest

import eaelib
from eaelib import EnergyAutoEncoder, extract_patches, load_model, save_model
from eaelib._base import ConvergenceWarning, NotFittedError
from eaelib.model_io import ENERGY_TERMS, FORMAT_VERSION
from eaelib.patches import PatchLayout

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")


@pytest.fixture(scope="module")
def X():
    image = np.random.default_rng(0).random((48, 48))
    return extract_patches(image, 8, 4)


@pytest.fixture(scope="module")
def model(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit, on purpose
        return EnergyAutoEncoder(16, lambda_s=0.5, max_outer=3, max_inner=20, random_state=3).fit(X)


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.npz"
    save_model(model, path)
    return path


def read(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def assert_same_model(loaded, model, X):
    assert type(loaded) is EnergyAutoEncoder
    assert loaded.get_params() == model.get_params()
    for name in ("D_", "E_"):
        original, restored = np.asarray(getattr(model, name)), getattr(loaded, name)
        assert isinstance(restored, np.ndarray)
        assert restored.dtype == original.dtype
        np.testing.assert_array_equal(restored, original)
    assert loaded.objective_history_ == model.objective_history_
    assert loaded.energy_history_ == model.energy_history_
    assert (loaded.n_iter_, loaded.converged_, loaded.n_features_in_) == (
        model.n_iter_,
        model.converged_,
        model.n_features_in_,
    )
    assert loaded.inner_history_ == []
    for method in ("exact", "encoder"):
        np.testing.assert_array_equal(loaded.transform(X, method=method), np.asarray(model.transform(X, method=method)))


@SHORT_FIT
def test_round_trip_is_exact(model, saved, X):
    loaded = load_model(saved)
    assert_same_model(loaded, model, X)
    assert loaded.energy(X) == model.energy(X)
    assert type(loaded.objective_history_[0]) is float
    assert loaded.backend_ == "numpy"


def test_file_contents(saved, model):
    arrays = read(saved)
    assert int(arrays["format_version"]) == FORMAT_VERSION
    assert str(arrays["eaelib_version"]) == eaelib.__version__
    for term in ENERGY_TERMS:
        assert arrays[f"energy_{term}"].dtype == np.float64
    assert arrays["objective_history_"].dtype == np.float64
    assert arrays["param_lambda_s"].shape == () and arrays["param_lambda_s"].dtype == np.float64
    assert arrays["param_n_atoms"].dtype == np.int64
    assert arrays["param_backend"].dtype.kind == "U"  # None, as JSON "null"


@SHORT_FIT
def test_round_trip_of_other_parameters(X, tmp_path):
    model = EnergyAutoEncoder(
        8, max_outer=2, max_inner=10, dtype="float32", backend="numpy", random_state=np.random.default_rng(5)
    ).fit(X)
    save_model(model, tmp_path / "m")  # the name is kept as given: no ".npz" added
    assert (tmp_path / "m").is_file()
    loaded = load_model(tmp_path / "m")
    assert loaded.D_.dtype == np.float32
    generator = loaded.random_state
    assert isinstance(generator, np.random.Generator)
    assert generator.bit_generator.state == model.random_state.bit_generator.state
    params, original = loaded.get_params(), model.get_params()
    params.pop("random_state"), original.pop("random_state")
    assert params == original
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    # A refit starts from the same random state: the same model.
    twin = EnergyAutoEncoder(**model.get_params()).set_params(random_state=load_model(tmp_path / "m").random_state)
    np.testing.assert_array_equal(loaded.fit(X).D_, twin.fit(X).D_)


def test_round_trip_through_a_file_object(model, X):
    buffer = io.BytesIO()
    save_model(model, buffer)
    buffer.seek(0)
    assert_same_model(load_model(buffer), model, X)


@SHORT_FIT
def test_model_of_another_array_library(X, tmp_path):
    xp = pytest.importorskip("array_api_strict")
    model = EnergyAutoEncoder(8, max_outer=2, max_inner=10, random_state=0, backend="array_api_strict").fit(X)
    save_model(model, tmp_path / "strict.npz")
    loaded = load_model(tmp_path / "strict.npz")
    np.testing.assert_array_equal(loaded.D_, np.from_dlpack(model.D_))
    assert loaded.backend == "array_api_strict"
    np.testing.assert_array_equal(
        loaded.transform(X, method="encoder"), np.from_dlpack(model.transform(xp.asarray(X), method="encoder"))
    )


def test_unfitted_or_unsavable_models(tmp_path, model):
    with pytest.raises(NotFittedError):
        save_model(EnergyAutoEncoder(), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="EnergyAutoEncoder"):
        save_model(object(), tmp_path / "x.npz")
    odd = EnergyAutoEncoder(**model.get_params())
    odd.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    odd.random_state = np.random.RandomState(0)
    with pytest.raises(TypeError, match="random_state"):
        save_model(odd, tmp_path / "x.npz")


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not a model", b"PK\x03\x04 broken zip", b"\x80\x04\x95 pickle-like bytes"],
    ids=["empty", "text", "broken-zip", "pickle-header"],
)
def test_corrupt_files(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not an eaelib model file"):
        load_model(path)


def test_truncated_file(saved):
    data = saved.read_bytes()
    for size in (len(data) // 2, len(data) - 10):
        saved.write_bytes(data[:size])
        with pytest.raises(ValueError, match="is not an eaelib model file"):
            load_model(saved)


def test_single_npy_array(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match=r"is not an eaelib model file.*single array"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing.npz")


def test_wrong_format_version(saved):
    arrays = read(saved)
    arrays["format_version"] = np.array(FORMAT_VERSION + 1)
    arrays["eaelib_version"] = np.array("9.0.0")
    write(saved, arrays)
    newer = rf"written by eaelib 9.0.0 in format_version {FORMAT_VERSION + 1}, but this eaelib \(.*\) reads "
    with pytest.raises(ValueError, match=newer + rf"format_version {FORMAT_VERSION} .*: upgrade eaelib to read it"):
        load_model(saved)
    del arrays["format_version"]
    write(saved, arrays)
    with pytest.raises(ValueError, match="no format_version"):
        load_model(saved)


def test_missing_and_extra_arrays(saved):
    arrays = read(saved)
    write(saved, {k: v for k, v in arrays.items() if k not in ("D_", "param_rtol")})
    with pytest.raises(ValueError, match="missing arrays: D_, param_rtol"):
        load_model(saved)
    write(saved, {**arrays, "surprise": np.zeros(2)})
    with pytest.raises(ValueError, match="unexpected arrays: surprise"):
        load_model(saved)


def test_inconsistent_contents(saved):
    arrays = read(saved)
    write(saved, {**arrays, "E_": arrays["E_"][:, :-1]})
    with pytest.raises(ValueError, match="E_ must have shape"):
        load_model(saved)
    write(saved, {**arrays, "energy_total": arrays["energy_total"][:-1]})
    with pytest.raises(ValueError, match="energy_total"):
        load_model(saved)
    write(saved, {**arrays, "param_backend": np.array("{not json")})
    with pytest.raises(ValueError, match="is not an eaelib model file"):
        load_model(saved)
    write(saved, {**arrays, "param_random_state": np.array('{"numpy.random.Generator": {"bit_generator": "os"}}')})
    with pytest.raises(ValueError, match="unknown random generator"):
        load_model(saved)


class Payload:
    """Unpickling this creates a file: proof that code from the model file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_objects_are_refused_not_run(saved, tmp_path):
    marker = tmp_path / "code-ran"
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    arrays = read(saved)
    with open(saved, "wb") as file:
        np.savez(file, **{**arrays, "D_": payload})  # allow_pickle is True when saving
    with pytest.raises(ValueError, match="is not an eaelib model file"):
        load_model(saved)
    assert not marker.exists()
    # A plain pickle file, too.
    import pickle

    saved.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match="is not an eaelib model file"):
        load_model(saved)
    assert not marker.exists()


# -- the patch layout (format 2) and format 1 files --------------------------------------------------------


def test_patch_layout_round_trip(model, X, tmp_path):
    path = tmp_path / "patches.npz"
    save_model(model, path, patch_layout=PatchLayout(8, 4, centered=True))
    loaded = load_model(path)
    assert loaded.patch_layout_ == PatchLayout(8, 4, centered=True)
    assert_same_model(loaded, model, X)
    save_model(loaded, tmp_path / "again.npz")  # a loaded model keeps its layout
    assert load_model(tmp_path / "again.npz").patch_layout_ == PatchLayout(8, 4, centered=True)
    arrays = read(path)
    assert (int(arrays["patch_size"]), int(arrays["patch_stride"]), bool(arrays["patch_centered"])) == (8, 4, True)
    assert load_model(save_and_return(model, tmp_path / "none.npz")).patch_layout_ is None
    with pytest.raises(TypeError, match="patch_layout must be a PatchLayout"):
        save_model(model, tmp_path / "bad.npz", patch_layout=(8, 4))


def save_and_return(model, path):
    save_model(model, path)
    return path


def older(arrays):
    """The arrays of a file written before format 3: no history_iterations_, code_solver or certify_every."""
    since_3 = ("history_iterations_", "param_code_solver", "param_certify_every")
    return {key: value for key, value in arrays.items() if key not in since_3}


def test_format_2_files_are_read_with_the_new_parameters_at_their_defaults(saved, model, X):
    arrays = read(saved)
    write(saved, {**arrays, "format_version": np.array(2)})
    with pytest.raises(ValueError, match="unexpected arrays: history_iterations_, param_certify_every"):
        load_model(saved)
    write(saved, {**older(arrays), "format_version": np.array(2), "eaelib_version": np.array("0.0.9")})
    converted = r"written by eaelib 0.0.9 in format_version 2: converted to format_version 3 as it is read \("
    with pytest.warns(UserWarning, match=converted + r"code_solver and certify_every take their defaults"):
        loaded = load_model(saved)
    assert loaded.code_solver == "auto" and loaded.certify_every == eaelib.EnergyAutoEncoder().certify_every
    assert loaded.history_iterations_ == list(range(model.n_iter_ + 1))
    assert_same_model(loaded, model, X)


def test_the_history_iterations_are_checked(saved):
    arrays = read(saved)
    n = len(arrays["objective_history_"])
    for iterations in (np.arange(1, n + 1), np.zeros(n, dtype=np.int64), np.arange(n) * 10**6):
        write(saved, {**arrays, "history_iterations_": iterations})
        with pytest.raises(ValueError, match="history_iterations_ must be increasing integers from 0"):
            load_model(saved)
    write(saved, {**arrays, "history_iterations_": arrays["history_iterations_"][:-1]})
    with pytest.raises(ValueError, match="objective_history_ must be a float64 array of one entry per"):
        load_model(saved)


def test_format_1_files_are_read(saved, model, X):
    arrays = older(read(saved))
    assert "patch_size" not in arrays
    write(saved, {**arrays, "format_version": np.array(1)})
    with pytest.warns(UserWarning, match=r"format_version 1: converted .*\(no patch layout: .*; code_solver"):
        loaded = load_model(saved)
    assert loaded.patch_layout_ is None
    assert_same_model(loaded, model, X)
    layout = {"patch_size": np.array(8), "patch_stride": np.array(4), "patch_centered": np.array(False)}
    write(saved, {**arrays, **layout, "format_version": np.array(1)})
    with pytest.raises(ValueError, match="unexpected arrays: patch_centered, patch_size, patch_stride"):
        load_model(saved)


def test_inconsistent_patch_layouts(model, tmp_path):
    path = save_and_return(model, tmp_path / "m.npz")
    save_model(model, path, patch_layout=PatchLayout(8, 4))
    arrays = read(path)
    write(path, {k: v for k, v in arrays.items() if k != "patch_stride"})
    with pytest.raises(ValueError, match="missing arrays: patch_stride"):
        load_model(path)
    write(path, {**arrays, "patch_size": np.array(6)})
    with pytest.raises(ValueError, match="patch_size 6 makes 36 features, but D_ has 64 rows"):
        load_model(path)
    write(path, {**arrays, "patch_centered": np.array(1)})
    with pytest.raises(ValueError, match="patch_centered must be a 0-d array of kind 'b'"):
        load_model(path)
    write(path, {**arrays, "param_n_atoms": np.array(-3)})
    with pytest.raises(ValueError, match="is not an eaelib model file: n_atoms must be an integer ≥ 1"):
        load_model(path)


def test_only_the_doors_know_the_estimator_and_the_estimator_knows_no_file():
    package = Path(eaelib.__file__).parent
    assert "model_io" not in (package / "estimator.py").read_text(encoding="utf-8")  # a copied core fits without it
    tree = ast.parse((package / "model_io.py").read_text(encoding="utf-8"))
    knowing = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(n, ast.Name) and n.id == "EnergyAutoEncoder" for n in ast.walk(node))
    }
    assert knowing == {"save_model", "load_model"}, knowing


def test_a_file_of_the_current_format_from_another_version_is_read_as_it_is(saved, model, X):
    write(saved, {**read(saved), "eaelib_version": np.array("0.0.9")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same format: nothing to convert, nothing to say
        assert_same_model(load_model(saved), model, X)
