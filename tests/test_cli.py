"""The command line ``python -m eaelib learn``, run in-process through ``main``."""

import json
import subprocess
import sys

import numpy as np
import pytest

from eaelib import constraint_violation, extract_patches, load_image
from eaelib.__main__ import FIGURES, main
from eaelib.model_io import load_model

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

SMALL = ["--patch-size", "8", "--stride", "4", "--n-atoms", "16", "--max-outer", "3", "--max-inner", "20"]


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.standard_normal((40, 40)), axis=0), axis=1)  # some structure, not pure noise
    pixels = np.uint8(255 * (smooth - smooth.min()) / (smooth.max() - smooth.min()))
    path = tmp_path_factory.mktemp("images") / "small.png"
    Image.fromarray(pixels).save(path)
    return path


def test_learn_writes_everything_consistently(image_path, tmp_path, capsys):
    out = tmp_path / "run" / "nested"  # created with its parents
    assert main(["learn", str(image_path), "--out", str(out), *SMALL, "--seed", "1", "--no-progress"]) == 0
    printed = capsys.readouterr()
    for expected in (
        "patches",
        "energy",
        "data",
        "encoder",
        "sparsity",
        "monotone",
        "constraint",
        "non-zero",
        "elapsed",
    ):
        assert expected in printed.out
    assert "outer iterations:" in printed.out and printed.err == ""  # --no-progress: no bar on stderr

    for name in ("model.npz", *FIGURES, "summary.json"):
        assert (out / name).is_file(), name
    for name in FIGURES:
        with Image.open(out / name) as png:
            assert png.format == "PNG" and min(png.size) > 100

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    model = load_model(out / "model.npz")
    X = extract_patches(load_image(image_path), 8, 4)
    assert summary["n_samples"] == X.shape[0] == 81
    assert summary["n_features"] == model.n_features_in_ == 64
    assert summary["params"] == model.get_params()
    assert model.get_params()["random_state"] == 1 and model.D_.shape == (64, 16)
    assert summary["n_iter"] == model.n_iter_ and summary["converged"] == model.converged_
    assert summary["final_energy"] == model.objective_history_[-1]
    assert summary["initial_energy"] == model.objective_history_[0]
    assert summary["energy"] == model.energy_history_[-1]
    assert summary["monotone"] is True
    assert summary["constraint_violation"] == constraint_violation(model.D_, model.E_)
    nonzero = model.transform(X) != 0
    assert summary["nonzero_fraction"] == float(nonzero.mean())
    assert summary["nonzero_per_sample"] == float(nonzero.sum(axis=1).mean())
    assert summary["elapsed_s"] > 0
    assert summary["files"] == ["model.npz", *FIGURES, "summary.json"]
    assert f"{summary['final_energy']:.6g}" in printed.out


def test_learn_in_float32(image_path, tmp_path, capsys):
    out = tmp_path / "f32"
    assert main(["learn", str(image_path), "--out", str(out), *SMALL, "--dtype", "float32", "--no-progress"]) == 0
    assert load_model(out / "model.npz").D_.dtype == np.float32
    assert "float32" in capsys.readouterr().out


def test_missing_image_is_a_clear_usage_error(tmp_path, capsys):
    missing = tmp_path / "nowhere.png"
    out = tmp_path / "out"
    assert main(["learn", str(missing), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "IMAGE" in err and "nowhere.png" in err and "usage:" in err
    assert not out.exists()  # nothing written before the inputs are known to be good


def test_unreadable_image(tmp_path, capsys):
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    assert main(["learn", str(fake), "--out", str(tmp_path / "out")]) == 2
    assert "Pillow" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--patch-size", "0"], "--patch-size"),
        (["--patch-size", "eight"], "--patch-size"),
        (["--patch-size", "64"], "--patch-size"),  # larger than the 40 × 40 image
        (["--stride", "-1"], "--stride"),
        (["--n-atoms", "1.5"], "--n-atoms"),
        (["--lambda-d", "-1"], "--lambda-d"),
        (["--lambda-s", "nan"], "--lambda-s"),
        (["--lambda-d", "0", "--lambda-e", "0", "--lambda-s", "0"], "--lambda-d"),
        (["--max-outer", "0"], "--max-outer"),
        (["--rtol", "x"], "--rtol"),
        (["--seed", "-3"], "--seed"),
        (["--dtype", "float16"], "--dtype"),
        (["--backend", "torch"], "--backend"),
    ],
)
def test_bad_options_are_usage_errors(image_path, tmp_path, capsys, options, named):
    assert main(["learn", str(image_path), "--out", str(tmp_path / "out"), *options]) == 2
    assert named in capsys.readouterr().err


def test_missing_out_and_command(capsys):
    assert main(["learn", "barbara"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main([]) == 2


def test_help(capsys):
    assert main(["learn", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--patch-size", "--stride", "--n-atoms", "--lambda-d", "--max-inner", "--no-progress"):
        assert option in text


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "eaelib", "learn", str(tmp_path / "none.png"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "argument IMAGE" in result.stderr
