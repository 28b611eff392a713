"""The command line ``eaelib`` (learn, encode, reconstruct, denoise), mostly run in-process through ``main``."""

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import eaelib
from eaelib import (
    EnergyAutoEncoder,
    add_noise,
    centered_patches,
    constraint_violation,
    denoise,
    extract_patches,
    load_image,
    load_model,
    psnr,
    reconstruct_from_patches,
    save_model,
)
from eaelib.__main__ import build_parser, main
from eaelib._cli_learn import FIGURES
from eaelib.patches import PatchLayout

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

# The command line says that a colour file is read as gray ('eaelib <command>: warning: …'), as users see it:
# the tests that read colour files let it be shown ("default"), and some assert what it says.
COLOUR_NOTE_SHOWN = pytest.mark.filterwarnings("default:.* is a colour image:UserWarning")

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


# -- the other commands, output modes, model files ---------------------------------------------------------


@pytest.fixture(scope="module")
def learned(image_path, tmp_path_factory):
    """A model learned from centred 8 × 8 patches at stride 4, in its output folder."""
    out = tmp_path_factory.mktemp("learned")
    argv = ["learn", str(image_path), "--out", str(out), *SMALL, "--center", "--no-progress", "--no-figures", "-q"]
    assert main(argv) == 0
    return out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"eaelib {eaelib.__version__}"


def test_quiet_prints_nothing_and_json_prints_the_summary(image_path, tmp_path, capsys):
    argv = ["learn", str(image_path), *SMALL, "--no-figures"]
    assert main([*argv, "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")  # no summary, no progress bar
    assert main([*argv, "--out", str(tmp_path / "j"), "--json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "j" / "summary.json").read_text(encoding="utf-8"))
    assert printed["files"] == ["model.npz", "summary.json"]  # --no-figures
    assert main([*argv, "--out", str(tmp_path / "both"), "--json", "--quiet"]) == 2  # one or the other


def test_the_model_file_stores_how_the_patches_were_cut(learned):
    model = load_model(learned / "model.npz")
    assert model.patch_layout_ == PatchLayout(8, 4, centered=True)
    summary = json.loads((learned / "summary.json").read_text(encoding="utf-8"))
    assert (summary["patch_size"], summary["stride"], summary["centered"]) == (8, 4, True)


@pytest.mark.parametrize("method", ["exact", "encoder"])
def test_encode_then_reconstruct(learned, image_path, tmp_path, capsys, method):
    encoded, rebuilt = tmp_path / "encoded", tmp_path / "rebuilt"
    assert main(["encode", str(learned / "model.npz"), str(image_path), "--out", str(encoded), "--method", method]) == 0
    assert "PSNR" in capsys.readouterr().out
    summary = json.loads((encoded / "summary.json").read_text(encoding="utf-8"))

    # What encode computed, done by hand with the library.
    model, image = load_model(learned / "model.npz"), load_image(image_path)
    X, means = centered_patches(image, 8, 4)
    codes = model.transform(X, method=method)
    with np.load(encoded / "codes.npz") as data:
        np.testing.assert_array_equal(data["codes"], codes)
        np.testing.assert_array_equal(data["means"], means)
    expected = reconstruct_from_patches(model.inverse_transform(codes) + means, (40, 40), 8, 4)
    assert summary["covered_shape"] == [40, 40] and summary["n_patches"] == 81
    assert summary["psnr_db"] == pytest.approx(psnr(image, expected), rel=1e-12)
    assert summary["nonzero_fraction"] == float(np.mean(codes != 0))

    argv = ["reconstruct", str(learned / "model.npz"), str(encoded / "codes.npz"), "--out", str(rebuilt)]
    assert main([*argv, "--reference", str(image_path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["psnr_db"] == summary["psnr_db"] and again["method"] == method
    with Image.open(encoded / "reconstruction.png") as a, Image.open(rebuilt / "reconstruction.png") as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(a), np.round(255 * np.clip(expected, 0, 1)).astype(np.uint8))


def test_denoise_with_added_noise(learned, image_path, tmp_path, capsys):
    out = tmp_path / "denoised"
    argv = ["denoise", str(learned / "model.npz"), str(image_path), "--out", str(out), "--sigma", "25", "--json"]
    assert main([*argv, "--stride", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == ["noisy.png", "denoised.png", "summary.json"]
    assert summary["n_patches"] == 33 * 33 and summary["image_shape"] == [40, 40]  # every 8 × 8 patch, stride 1
    # The same computation through the library.
    model, image = load_model(learned / "model.npz"), load_image(image_path)
    noisy = add_noise(image, 25 / 255, random_state=0)
    assert summary["psnr_noisy_db"] == pytest.approx(psnr(image, noisy), rel=1e-12)
    assert summary["psnr_denoised_db"] == pytest.approx(psnr(image, denoise(noisy, model, 8, 1)), rel=1e-12)
    assert summary["psnr_denoised_db"] > summary["psnr_noisy_db"]
    # Without --sigma, the image is taken as the noisy one: no PSNR, no noisy.png.
    assert main(["denoise", str(learned / "model.npz"), str(image_path), "--out", str(out / "as_is"), "-q"]) == 0
    summary = json.loads((out / "as_is" / "summary.json").read_text(encoding="utf-8"))
    assert summary["psnr_denoised_db"] is None and summary["files"] == ["denoised.png", "summary.json"]


def test_denoise_codes_every_other_patch_by_default_with_a_bar_over_the_codes(learned, image_path, tmp_path, capsys):
    import eaelib.subproblems

    eaelib.subproblems.EXACT_CHUNK, chunk = 100, eaelib.subproblems.EXACT_CHUNK  # a bar for 289 patches
    try:
        argv = ["denoise", str(learned / "model.npz"), str(image_path), "--sigma", "25"]
        assert main([*argv, "--out", str(tmp_path / "a"), "--json"]) == 0
        printed = capsys.readouterr()
        assert main([*argv, "--out", str(tmp_path / "b"), "-q"]) == 0
        quiet = capsys.readouterr()
    finally:
        eaelib.subproblems.EXACT_CHUNK = chunk
    summary = json.loads(printed.out)
    assert summary["stride"] == 2 and summary["n_patches"] == 17 * 17  # 8 × 8 patches of a 40 × 40 image
    assert "exact codes: 100%" in printed.err and "289/289" in printed.err
    assert quiet == ("", "")


def test_commands_refuse_bad_models_and_codes(learned, image_path, tmp_path, capsys):
    X = extract_patches(load_image(image_path), 8, 4)
    bare = tmp_path / "bare.npz"  # saved from Python without a patch layout
    save_model(load_model(learned / "model.npz"), bare, patch_layout=None)
    no_layout = load_model(learned / "model.npz")
    del no_layout.patch_layout_
    save_model(no_layout, bare)
    assert load_model(bare).patch_layout_ is None and X.shape[1] == 64
    assert main(["encode", str(bare), str(image_path), "--out", str(tmp_path / "o")]) == 2
    assert "patch_layout=eaelib.PatchLayout" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "none.npz"), str(image_path), "--out", str(tmp_path / "o")]) == 2
    assert "argument MODEL" in capsys.readouterr().err
    text = tmp_path / "codes.npz"
    text.write_text("not codes")
    assert main(["reconstruct", str(learned / "model.npz"), str(text), "--out", str(tmp_path / "o")]) == 2
    assert "argument CODES" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_optional_dependencies_are_named_at_once_with_the_install_line(
    image_path, tmp_path, capsys, monkeypatch
):
    argv = ["learn", str(image_path), "--out", str(tmp_path / "o"), *SMALL]
    install = 'pip install "eaelib[full] @ git+https://'
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"eaelib learn needs tqdm, which is not installed: {install}" in err and "Traceback" not in err
    assert err.rstrip().endswith("(or pip install tqdm); or pass --no-progress")
    assert main([*argv, "--no-progress", "--no-figures", "-q"]) == 0
    for module in ("matplotlib", "PIL"):
        monkeypatch.setitem(sys.modules, module, None)
    assert main(argv) == 2  # one message names all three, not one per run
    err = capsys.readouterr().err
    assert "eaelib learn needs pillow, tqdm and matplotlib, which are not installed: " + install in err
    assert "(or pip install pillow tqdm matplotlib); or pass --no-progress --no-figures" in err


def test_resume_checks_what_it_continues(learned, image_path, tmp_path, capsys):
    assert main(["learn", str(image_path), "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "no model to resume" in capsys.readouterr().err
    argv = ["learn", str(image_path), "--out", str(learned), "--resume", "--no-progress", "--no-figures"]
    assert main([*argv, "--patch-size", "6"]) == 2
    assert "argument --patch-size" in capsys.readouterr().err
    assert main([*argv, "--n-atoms", "5"]) == 2
    assert "argument --n-atoms" in capsys.readouterr().err


def _read_until(stream, marker, timeout):
    """Bytes of ``stream`` until ``marker`` appears (True) or ``timeout`` seconds pass (False)."""
    seen, found = bytearray(), threading.Event()

    def read():
        while chunk := stream.read1(256):
            seen.extend(chunk)
            if marker in seen:
                found.set()
        stream.close()  # the end of the stream: the process exited (the test ends it either way)
        found.set()

    threading.Thread(target=read, daemon=True).start()
    return found.wait(timeout) and marker in seen, seen


def test_resume_reports_the_saved_history_then_the_restart(learned, image_path, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(learned, out)
    saved = load_model(out / "model.npz")
    argv = ["learn", str(image_path), "--out", str(out), "--resume", "--max-outer", "1", "--no-progress"]
    assert main([*argv, "--no-figures"]) == 0
    text = capsys.readouterr().out
    first, last = saved.objective_history_[0], saved.objective_history_[-1]
    said = (
        f"energy: {first:.6g} at initialization → {last:.6g} after the saved model's {saved.n_iter_} outer iterations;"
    )
    assert said in text, text
    restart = load_model(out / "model.npz").objective_history_
    assert f"resumed with its codes from zero: {restart[0]:.6g} → {restart[-1]:.6g}" in text
    assert "outer iterations: 1 more" in text


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
def test_ctrl_c_saves_the_model_exits_130_and_resume_continues(image_path, tmp_path):
    out = tmp_path / "interrupted"
    argv = ["learn", str(image_path), "--out", str(out), *SMALL[:6], "--max-outer", "100000", "--rtol", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "eaelib", *argv], stderr=subprocess.PIPE, env=env)
    try:
        started, seen = _read_until(process.stderr, b"outer iterations:", timeout=60)  # tqdm's bar is drawn
        assert started, seen.decode(errors="replace")
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        process.kill()
    err = seen.decode(errors="replace")
    assert "saved the model so far" in err and f"eaelib learn {image_path} --out {out} --resume" in err
    assert "warm_start" not in err and "Traceback" not in err
    model = load_model(out / "model.npz")
    assert model.n_iter_ >= 1 and not model.converged_ and model.patch_layout_ == PatchLayout(8, 4)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True and summary["n_iter"] == model.n_iter_

    resumed = [*argv[:4], "--resume", "--max-outer", "2", "--no-progress", "--no-figures", "--json"]
    result = subprocess.run([sys.executable, "-m", "eaelib", *resumed], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["resumed"]["n_iter"] == model.n_iter_ and summary["n_iter"] == 2
    assert summary["params"]["max_outer"] == 2 and summary["params"]["lambda_s"] == model.lambda_s
    continued = load_model(out / "model.npz")
    assert continued.E_.shape == model.E_.shape and continued.n_iter_ == 2
    assert continued.warm_start is False  # resuming does not make the saved model warm-start later fits


def test_the_readme_commands_parse():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Command line", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("eaelib ")]
    assert {command[1] for command in commands} == {"learn", "encode", "reconstruct", "denoise"}
    for command in commands:
        build_parser().parse_args(command[1:])  # exits (SystemExit) on an unknown or malformed option


# -- many images, folders, patterns and Dask ---------------------------------------------------------------


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, image_path):
    """A folder of two images (gray and colour, of different sizes) and a text file, which is left out."""
    folder = tmp_path_factory.mktemp("collection")
    rng = np.random.default_rng(1)
    Image.fromarray(np.asarray(Image.open(image_path))).save(folder / "a.png")
    Image.fromarray(np.uint8(255 * rng.random((30, 52, 3)))).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
@COLOUR_NOTE_SHOWN
def test_learn_streams_a_folder_and_more_images(image_folder, image_path, tmp_path, capsys):
    out = tmp_path / "many"
    argv = ["learn", str(image_folder), str(image_path), "--out", str(out), *SMALL, "--no-progress", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_images"] == 3 and [Path(p).name for p in summary["images"]] == ["a.png", "b.png", "small.png"]
    # 9 × 9 patches in each 40 × 40 image and 6 × 12 in the 30 × 52 one, at stride 4
    assert summary["n_samples"] == 81 + 72 + 81 and summary["params"]["algorithm"] == "online"
    assert summary["codes_sample"] == summary["n_samples"] and summary["monotone"]
    model = load_model(out / "model.npz")
    assert model.patch_layout_ == PatchLayout(8, 4) and model.n_iter_ == summary["n_iter"]
    # A glob pattern names the same files as the folder.
    assert (
        main(["learn", str(image_folder / "*.png"), "--out", str(tmp_path / "g"), *SMALL, "--no-progress", "-q"]) == 0
    )


def test_learn_from_many_images_refuses_bad_input(image_folder, tmp_path, capsys):
    argv = ["--out", str(tmp_path / "o"), *SMALL, "--no-progress"]
    (tmp_path / "empty").mkdir()
    assert main(["learn", str(tmp_path / "empty"), *argv]) == 2
    assert "holds no image file" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(bad / "ok.png")
    (bad / "broken.png").write_text("not an image")
    assert main(["learn", str(bad), *argv]) == 2
    assert "broken.png' is not an image Pillow can read" in capsys.readouterr().err
    (bad / "broken.png").unlink()
    Image.fromarray(np.zeros((5, 30), dtype=np.uint8)).save(bad / "thin.png")
    assert main(["learn", str(bad), *argv]) == 2
    assert "thin.png): the image (5 × 30) is smaller than one patch (8 × 8)" in capsys.readouterr().err
    assert main(["learn", str(image_folder), *argv, "--algorithm", "batch"]) == 2
    assert "learned online" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the input is known to be good


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
@COLOUR_NOTE_SHOWN
def test_learn_on_a_local_dask_cluster(image_folder, tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["learn", str(image_folder), "--out", str(tmp_path / "d"), *SMALL, "--no-progress", "--no-figures"]
    assert main([*argv, "--workers", "2", "--batch-size", "64", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_workers"] == 2 and summary["scheduler"].startswith("tcp://") and summary["monotone"]
    assert summary["n_samples"] == 81 + 72


@pytest.mark.slow
def test_ctrl_c_on_a_local_dask_cluster_stops_once_saves_and_closes_the_cluster(image_folder, tmp_path):
    # As a terminal does: SIGINT to the whole process group, the local cluster's workers included.
    pytest.importorskip("distributed")
    out = tmp_path / "interrupted"
    argv = ["learn", str(image_folder), "--out", str(out), *SMALL[:6], "--max-outer", "100000", "--rtol", "0"]
    argv += ["--workers", "2", "--batch-size", "64", "--no-figures"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "eaelib", *argv], stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    try:
        started, seen = _read_until(
            process.stderr, b"epochs:", timeout=60
        )  # the cluster is up, fitting (online: epochs)
        assert started, seen.decode(errors="replace")
        time.sleep(0.5)
        sent = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # once
        assert process.wait(timeout=30) == 130
        took = time.monotonic() - sent
        for _ in range(50):  # the workers are gone too: the cluster was closed (or is closing its last one)
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("processes of the command's group outlived it: the local cluster was not closed")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    time.sleep(0.2)  # the reader thread's last bytes
    err = seen.decode(errors="replace")
    assert took < 20, f"exited {took:.1f} s after Ctrl-C"  # at the next certified epoch: about 2 s here
    assert "Traceback" not in err and "Nanny" not in err, err
    assert "Ctrl-C: stopping" in err and "interrupted after" in err and "saved the model so far" in err, err
    model = load_model(out / "model.npz")
    assert model.n_iter_ >= 1 and not model.converged_ and model.patch_layout_ == PatchLayout(8, 4)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True and summary["n_workers"] == 2 and summary["n_iter"] == model.n_iter_


@COLOUR_NOTE_SHOWN
def test_dask_options_without_dask_are_a_usage_error(image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    argv = ["learn", str(image_folder), "--out", str(tmp_path / "o"), *SMALL, "--no-progress", "--workers", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert 'argument --workers needs distributed, which is not installed: pip install "eaelib[dask] @ git+' in err


def test_every_choice_option_offers_its_own_choices(image_path, tmp_path, capsys):
    argv = ["learn", str(image_path), "--out", str(tmp_path / "o"), *SMALL, "--no-progress", "--no-figures", "-q"]
    assert main([*argv, "--algorithm", "online", "--init", "svd", "--solver", "dual"]) == 0
    assert main([*argv, "--algorithm", "numpy"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # not the usage lines, which list --backend's
    assert "argument --algorithm: invalid choice: 'numpy'" in error and "online" in error and "cupy" not in error


@COLOUR_NOTE_SHOWN
def test_a_fit_that_fails_for_good_saves_what_it_learned_and_exits_1(image_folder, tmp_path, capsys, monkeypatch):
    from eaelib import SourceError

    fit = EnergyAutoEncoder.fit

    def fit_then_fail(self, X, *args, **kwargs):  # as a Dask fit whose task failed after its retries
        fit(self.set_params(max_outer=1), X, *args, **kwargs)
        raise SourceError("a Dask task of the fit failed after 3 retries: OSError: disk on fire")

    monkeypatch.setattr(EnergyAutoEncoder, "fit", fit_then_fail)
    out = tmp_path / "failed"
    assert main(["learn", str(image_folder), "--out", str(out), *SMALL, "--no-progress", "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert "saved the model so far" in err and "eaelib learn: error: a Dask task of the fit failed" in err
    assert load_model(out / "model.npz").n_iter_ == 1


@COLOUR_NOTE_SHOWN
def test_a_colour_image_is_read_as_gray_and_the_command_says_so(learned, image_path, tmp_path, capsys):
    gray = np.asarray(Image.open(image_path))
    colour = tmp_path / "colour.png"
    Image.fromarray(np.stack([gray, gray[::-1], gray[:, ::-1]], axis=-1)).save(colour)
    argv = ["denoise", str(learned / "model.npz"), str(colour), "--out", str(tmp_path / "o"), "--json"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    expected = f"eaelib denoise: warning: {str(colour)!r} is a colour image (RGB): read as gray, its ITU-R BT.601 luma"
    assert expected in err and err.count("warning:") == 1 and "UserWarning" not in err
