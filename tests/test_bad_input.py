"""Every row of the README's bad-input table, as a test: what each case gets.

A case either raises (the exception type and a message that names the parameter)
or is handled (the documented conversion happens). ``test_readme_lists_every_case``
keeps the README table and this list in step.
"""

import re
import sys
import warnings
from pathlib import Path
from unittest import mock

import array_api_strict as xps
import numpy as np
import pytest
import scipy.sparse as sp

from eaelib import (
    EnergyAutoEncoder,
    GraphLaplacian,
    PatchStream,
    SourceError,
    as_gray,
    extract_patches,
    image_files,
    load_image,
    load_model,
    save_model,
)
from eaelib import reconstruct_from_patches as rebuild
from eaelib._base import ConvergenceWarning, DataConversionWarning, NotFittedError

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

README = Path(__file__).resolve().parent.parent / "README.md"
X = np.random.default_rng(0).random((60, 8))
X_BIG = np.random.default_rng(0).random((200, 8))
SMALL = {"n_atoms": 6, "max_outer": 2, "random_state": 0}


def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit, on purpose
        return EnergyAutoEncoder(**SMALL).fit(X)


def fit(X=X, laplacian=None, **params):
    return EnergyAutoEncoder(**{**SMALL, **params}).fit(X, laplacian=laplacian)


def with_nan(a, where=(0, 0)):
    a = np.array(a, dtype=float)
    a[where] = np.nan
    return a


def bad_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    return path


def folder_with(tmp_path, *names, colour=False):
    """A folder holding a 20 × 20 PNG (gray, or colour) per name starting "image", other names as text files."""
    folder = tmp_path / "images"
    folder.mkdir()
    from PIL import Image

    for name in names:
        if name.startswith("image"):
            Image.fromarray(np.zeros((20, 20, 3) if colour else (20, 20), dtype=np.uint8)).save(folder / name)
        else:
            (folder / name).write_text("not an image")
    return folder


def failing_dask_fit():
    """A fit whose chunks fail for good on the second batch: the error, and the model it keeps."""
    import dask
    import dask.array as da

    calls = {"n": 0}

    def flaky(block):
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError("disk on fire")
        return block

    X = da.from_array(X_BIG, chunks=(50, -1)).map_blocks(flaky, meta=X_BIG[:0])
    model = EnergyAutoEncoder(n_atoms=6, algorithm="online", batch_size=50, shuffle=False, random_state=0)
    with dask.config.set(scheduler="synchronous"):
        model.fit(X)


def without_dask():
    with mock.patch.dict(sys.modules, {"dask": None, "dask.array": None}):  # as if Dask were not installed
        PatchStream([np.zeros((20, 20))], 6).to_dask()


def colour_file(tmp_path):
    from PIL import Image

    path = tmp_path / "colour.png"
    rgb = np.stack([*np.meshgrid(np.arange(20), np.arange(20)), np.zeros((20, 20), int)], axis=-1)
    Image.fromarray((rgb * 12).astype(np.uint8)).save(path)
    return path


def model_file(tmp_path, format_version):
    """A model file as an eaelib 9.9 would write it in ``format_version`` (the arrays of the current format)."""
    path = tmp_path / "model.npz"
    save_model(fitted(), path)
    with np.load(path) as saved:
        arrays = dict(saved)
    if format_version < 3:
        arrays = {
            k: v
            for k, v in arrays.items()
            if k not in ("history_iterations_", "param_code_solver", "param_certify_every")
        }
    np.savez(path, **{**arrays, "format_version": np.array(format_version), "eaelib_version": np.array("9.9")})
    return path


def bad_model_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    return path


# (README row, call, exception or None, message pattern or a check of the result)
# fmt: off
RAISES = [
    ("image with 1 dimension", lambda: extract_patches(np.zeros(10), 3), ValueError, r"image must have shape"),
    ("image with 4 dimensions", lambda: extract_patches(np.zeros((9, 9, 3, 2)), 3), ValueError, r"image must have"),
    ("image with 5 channels", lambda: extract_patches(np.zeros((9, 9, 5)), 3), ValueError, r"1 to 4 channels"),
    ("NaN or infinity in an image", lambda: extract_patches(with_nan(np.zeros((9, 9))), 3), ValueError, r"image contains NaN"),
    ("NaN or infinity in X", lambda: fit(with_nan(X)), ValueError, r"X contains NaN or infinite"),
    ("NaN or infinity in a Laplacian", lambda: GraphLaplacian(with_nan(np.eye(3), (1, 1))), ValueError, r"laplacian contains NaN"),
    ("image smaller than the patch", lambda: extract_patches(np.zeros((5, 9)), 6), ValueError, r"smaller than one patch"),
    ("size ≤ 0", lambda: extract_patches(np.zeros((9, 9)), 0), ValueError, r"size must be an integer ≥ 1"),
    ("size not an integer", lambda: extract_patches(np.zeros((9, 9)), 2.5), ValueError, r"size must be an integer"),
    ("stride ≤ 0", lambda: extract_patches(np.zeros((9, 9)), 3, 0), ValueError, r"stride must be an integer ≥ 1"),
    ("stride not an integer", lambda: extract_patches(np.zeros((9, 9)), 3, 1.5), ValueError, r"stride must be an integer"),
    ("stride > size, then reconstruction", lambda: rebuild(extract_patches(np.ones((8, 8)), 2, 3), (8, 8), 2, 3), ValueError, r"covered by no patch.*stride > size"),
    ("patches that do not tile the image, then reconstruction", lambda: rebuild(extract_patches(np.ones((7, 7)), 3), (7, 7), 3), ValueError, r"pass fill="),
    ("n_atoms ≤ 0", lambda: fit(n_atoms=0), ValueError, r"n_atoms must be an integer ≥ 1"),
    ("n_atoms not an integer", lambda: fit(n_atoms=2.5), ValueError, r"n_atoms must be an integer"),
    ("negative λ", lambda: fit(lambda_d=-1.0), ValueError, r"lambda_d must be a finite real number ≥ 0"),
    ("non-finite λ", lambda: fit(lambda_s=float("nan")), ValueError, r"lambda_s must be a finite real number"),
    ("λ_d = λ_e = λ_s = 0", lambda: fit(lambda_d=0, lambda_e=0, lambda_s=0), ValueError, r"cannot all be 0"),
    ("X with zero samples", lambda: fit(np.zeros((0, 8))), ValueError, r"at least 1 sample"),
    ("X with zero features", lambda: fit(np.zeros((5, 0))), ValueError, r"0 feature\(s\)"),
    ("X not 2-D", lambda: fit(np.zeros(8)), ValueError, r"Reshape your data"),
    ("complex X", lambda: fit(X + 1j), ValueError, r"Complex data not supported"),
    ("sparse X", lambda: fit(sp.csr_array(X)), TypeError, r"Sparse input is not supported"),
    ("λ_g > 0 without a Laplacian", lambda: fit(lambda_g=1.0), ValueError, r"needs fit\(X, laplacian=L\)"),
    ("Laplacian of the wrong shape", lambda: fit(lambda_g=1.0, laplacian=np.eye(59)), ValueError, r"laplacian must be 60 × 60"),
    ("Laplacian not symmetric", lambda: GraphLaplacian(np.triu(np.ones((3, 3)))), ValueError, r"laplacian must be symmetric"),
    ("Laplacian with negative degrees", lambda: GraphLaplacian(-np.eye(3)), ValueError, r"negative degrees"),
    ("transform before fit", lambda: EnergyAutoEncoder().transform(X), NotFittedError, r"not fitted yet"),
    ("inverse_transform before fit", lambda: EnergyAutoEncoder().inverse_transform(X), NotFittedError, r"not fitted"),
    ("transform input with the wrong number of features", lambda: fitted().transform(X[:, :3]), ValueError, r"X has 3 features, but EnergyAutoEncoder is expecting 8"),
    ("codes with the wrong number of atoms", lambda: fitted().inverse_transform(np.zeros((4, 5))), ValueError, r"Z has 5 atoms, but EnergyAutoEncoder is expecting 6"),
    ("unknown transform method", lambda: fitted().transform(X, method="fast"), ValueError, r"method must be one of \('exact', 'encoder'\)"),
    ("unknown backend name", lambda: fit(backend="torch"), ValueError, r"backend must be one of"),
    ("unknown dtype name", lambda: fit(dtype="float16"), ValueError, r"dtype must be one of \('float32', 'float64'\)"),
    ("callback not callable", lambda: fit(callback=1), ValueError, r"callback must be callable"),
    ("unknown D/E solver", lambda: fit(solver="cg"), ValueError, r"solver must be one of \('dual', 'fista'\)"),
    ("unknown initialization", lambda: fit(init="kmeans"), ValueError, r"init must be one of \('random', 'data', 'svd'\)"),
    ("unknown algorithm", lambda: fit(algorithm="sgd"), ValueError, r"algorithm must be one of \('batch', 'online'\)"),
    ("batch_size ≤ 0", lambda: fit(batch_size=0), ValueError, r"batch_size must be an integer ≥ 1"),
    ("shuffle not a bool", lambda: fit(shuffle="yes"), ValueError, r"shuffle must be True or False"),
    ("online learning with the graph term", lambda: fit(algorithm="online", lambda_g=1.0, laplacian=np.eye(60)), ValueError, r"algorithm='online' cannot use the graph term"),
    ("warm start on data of another width", lambda: fitted().set_params(warm_start=True).fit(X[:, :4]), ValueError, r"warm_start needs X with 8 features"),
    ("image file that does not exist", lambda: load_image("/nonexistent/barbara.png"), FileNotFoundError, r"name_or_path must be an image file"),
    ("image in a stream smaller than the patch", lambda: PatchStream([np.zeros((20, 20)), np.zeros((5, 9))], 6), ValueError, r"images\[1\] \(array of shape \(5, 9\)\): the image \(5 × 9\) is smaller than one patch \(6 × 6\)"),
    ("glob pattern that matches no file", lambda: image_files("/nonexistent/*.png"), FileNotFoundError, r"images: the pattern '/nonexistent/\*.png' matches no file"),
    ("stream given to fit with algorithm='batch'", lambda: fit(PatchStream([np.zeros((20, 20))], 6)), ValueError, r"fit\(X\) with X a PatchStream learns online, batch by batch: set algorithm='online'"),
    ("dask.array or `--workers` without Dask installed", without_dask, ImportError, r'PatchStream.to_dask needs dask and distributed, which are not installed: pip install "eaelib\[dask\] @ git\+https://'),
    ("X with fewer samples than features (samples as columns?)", lambda: fit(X.T), ValueError, r"fewer samples than features: shape \(8, 60\).*pass X.T, of shape \(60, 8\); if they are rows, fit\(X, allow_few_samples=True\)"),
    ("Dask task that fails for good (after its retries)", failing_dask_fit, SourceError, r"a Dask task of the fit failed.*OSError: disk on fire; the model holds the update of mini-batch 1"),
]
RAISES_WITH_TMP = [
    ("file that is not an image", lambda tmp: load_image(bad_file(tmp)), ValueError, r"is not an image"),
    ("model file that is corrupt or truncated", lambda tmp: load_model(bad_model_file(tmp)), ValueError, r"is not an eaelib model file"),
    ("model file from a newer eaelib (a later format)", lambda tmp: load_model(model_file(tmp, format_version=99)), ValueError, r"written by eaelib 9.9 in format_version 99, but this eaelib \(.+\) reads format_version 3 \(and 1 and 2\): upgrade eaelib"),
    ("empty image folder", lambda tmp: image_files(folder_with(tmp)), ValueError, r"images: the folder '.*' holds no image file"),
    ("file in an image folder that is not an image", lambda tmp: PatchStream(image_files(folder_with(tmp, "image.png", "notes.png"))), ValueError, r"images\[1\]: '.*notes.png' is not an image Pillow can read"),
]
HANDLED = [
    ("RGB image", lambda: as_gray(np.full((4, 4, 3), 0.5)), lambda out: out.shape == (4, 4) and np.allclose(out, 0.5)),
    ("RGBA image", lambda: as_gray(np.dstack([np.full((4, 4, 3), 0.5), np.zeros((4, 4))])), lambda out: np.allclose(out, 0.5)),
    ("uint8 image", lambda: extract_patches(np.full((6, 6), 255, dtype=np.uint8), 3), lambda out: np.all(out == 1.0)),
    ("integer image", lambda: as_gray(np.full((4, 4), 1000)), lambda out: np.allclose(out, 1000 / 65535)),
    ("X with one sample", lambda: EnergyAutoEncoder(**SMALL).fit(X[:1], allow_few_samples=True), lambda model: np.isfinite(model.objective_history_).all()),
    ("X with zero variance (all zeros)", lambda: fit(np.zeros((10, 8))), lambda model: np.isfinite(model.D_).all() and model.objective_history_[-1] == 0),
    ("array of another library given to a fitted model", lambda: fitted().transform(xps.asarray(X)), lambda out: isinstance(out, np.ndarray) and out.shape == (60, 6)),

]
HANDLED_WITH_TMP = [
    ("other files in an image folder (notes, a README)", lambda tmp: image_files(folder_with(tmp, "image.png", "README.txt")), lambda out: [p.name for p in out] == ["image.png"]),
]
# (README row, call, warning, message pattern, check of the result): accepted, with a warning that says what to do
WARNS = [
    ("integer X", lambda: fit(np.arange(40).reshape(10, 4)), DataConversionWarning, r"X has integer dtype int64 and is used as it is, values in \[0, 39\].*X / 255", lambda model: model.D_.dtype == np.float64),
    ("uint8 patches (pixel values 0–255)", lambda: fit(np.random.default_rng(0).integers(0, 256, (30, 9), dtype=np.uint8)), DataConversionWarning, r"integer dtype uint8.*scale pixel values to \[0, 1\] first", lambda model: model.D_.dtype == np.float64),
    ("float image with values 0–255", lambda: extract_patches(np.full((6, 6), 200.0), 3), UserWarning, r"image has floating values up to 200, where eaelib expects images in \[0, 1\].*divide by 255", lambda out: out.shape == (4, 9)),
]
WARNS_WITH_TMP = [
    ("colour image file", lambda tmp: load_image(colour_file(tmp)), UserWarning, r"'.*colour.png' is a colour image \(RGB\): read as gray, its ITU-R BT.601 luma", lambda out: out.shape == (20, 20)),
    ("folder of colour images, streamed", lambda tmp: PatchStream(image_files(folder_with(tmp, "image1.png", "image2.png", "image3.png", colour=True)), 6), UserWarning, r"'.*image1.png' is a colour image \(RGB\): read as gray.*; so are 2 more of its 3 images", lambda stream: sum(1 for _ in stream) > 0),
    ("model file from an older eaelib (an earlier format)", lambda tmp: load_model(model_file(tmp, format_version=2)), UserWarning, r"written by eaelib 9.9 in format_version 2: converted to format_version 3 as it is read", lambda model: model.code_solver == "auto"),
]
# fmt: on


@SHORT_FIT
@pytest.mark.parametrize(("case", "call", "error", "message"), RAISES, ids=[row[0] for row in RAISES])
def test_bad_input_raises_a_clear_error(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(("case", "call", "error", "message"), RAISES_WITH_TMP, ids=[r[0] for r in RAISES_WITH_TMP])
def test_bad_files_raise_a_clear_error(case, call, error, message, tmp_path):
    with pytest.raises(error, match=message):
        call(tmp_path)


@SHORT_FIT
@pytest.mark.parametrize(("case", "call", "check"), HANDLED, ids=[row[0] for row in HANDLED])
def test_handled_input_is_converted(case, call, check):
    assert check(call())


@pytest.mark.parametrize(("case", "call", "check"), HANDLED_WITH_TMP, ids=[row[0] for row in HANDLED_WITH_TMP])
def test_handled_files_are_handled(case, call, check, tmp_path):
    assert check(call(tmp_path))


@SHORT_FIT
@pytest.mark.parametrize(("case", "call", "warning", "message", "check"), WARNS, ids=[row[0] for row in WARNS])
def test_likely_mistakes_are_accepted_with_a_warning(case, call, warning, message, check):
    with pytest.warns(warning, match=message):
        assert check(call())


@pytest.mark.parametrize(
    ("case", "call", "warning", "message", "check"), WARNS_WITH_TMP, ids=[r[0] for r in WARNS_WITH_TMP]
)
def test_files_that_are_likely_mistakes_are_read_with_a_warning(case, call, warning, message, check, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check(call(tmp_path))
    said = [str(w.message) for w in caught if w.category is warning]  # not its subclasses (ConvergenceWarning)
    assert len(said) == 1 and re.search(message, said[0]), f"one {warning.__name__} matching {message!r}, got {said}"


def test_well_formed_input_gets_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # 60 float samples of 8 features, learned to convergence (14 outer iterations): not even a
        # ConvergenceWarning
        assert fit(X, max_outer=200).converged_


def test_readme_lists_every_case():
    rows = re.findall(r"^\| ([^|]+?) \|", README.read_text(), flags=re.MULTILINE)
    cases = [row[0] for row in RAISES + RAISES_WITH_TMP + HANDLED + HANDLED_WITH_TMP + WARNS + WARNS_WITH_TMP]
    missing = [case for case in cases if case not in rows]
    assert not missing, f"README's bad-input table lacks: {missing}"
