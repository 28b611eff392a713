"""Learning on Dask (eaelib.distributed): the same model as in memory, on any scheduler, through failures."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import eaelib
from eaelib import EnergyAutoEncoder, PatchStream, SourceError
from eaelib.distributed import batch_groups

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

N, CHUNK, BATCH = 600, 100, 200  # 3 batches of 2 chunks each
# Exact codes (the homotopy), certified at every epoch. With FISTA's inexact codes the chunked sums' rounding
# can flip a column's stopping test, and the models then differ by about FISTA's tolerance (3e-6 measured),
# not by rounding.
PARAMS = dict(
    n_atoms=12, algorithm="online", batch_size=BATCH, shuffle=False, random_state=0, code_solver="lars", certify_every=1
)


@pytest.fixture(scope="module")
def patches():
    """6 × 6 non-overlapping patches of Barbara, samples as rows."""
    return eaelib.extract_patches(eaelib.load_image("barbara"), size=6, stride=6)[:N]


def fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_outer reached: a ConvergenceWarning
        return EnergyAutoEncoder(**{**PARAMS, "max_outer": 2, **params}).fit(X)


def assert_same_model(model, reference):
    """The same model up to the rounding of sums taken chunk by chunk."""
    np.testing.assert_allclose(model.D_, reference.D_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.E_, reference.E_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.objective_history_, reference.objective_history_, rtol=1e-9)
    assert model.n_steps_ == reference.n_steps_ and model.n_iter_ == reference.n_iter_


def test_batches_are_groups_of_consecutive_chunks():
    assert batch_groups((100,) * 6, 200) == [[0, 1], [2, 3], [4, 5]]
    assert batch_groups((100,) * 5, 200) == [[0, 1], [2, 3], [4]]
    assert batch_groups((50, 170, 30, 300, 10), 200) == [[0, 1], [2, 3], [4]]
    assert batch_groups((100,) * 3, 50) == [[0], [1], [2]]


def test_the_dask_fit_is_the_in_memory_fit_on_the_same_batches(patches):
    # The reference: the in-memory online fit, whose batches (shuffle=False) are the consecutive spans of
    # batch_size samples: here exactly the Dask array's pairs of chunks. Same seed: same start.
    reference = fit(patches)
    with dask.config.set(scheduler="synchronous"):
        model = fit(da.from_array(patches, chunks=(CHUNK, -1)))
    assert_same_model(model, reference)
    for gaps, expected in zip(model.certificate_history_, reference.certificate_history_, strict=True):
        for block in "ZDE":
            assert gaps[block] == pytest.approx(expected[block], rel=1e-6, abs=1e-9)


def test_chunked_features_and_float32_and_the_threaded_scheduler(patches):
    reference = fit(patches.astype(np.float32))
    with dask.config.set(scheduler="threads"):
        model = fit(da.from_array(patches.astype(np.float32), chunks=(CHUNK, 12)))  # features in 3 chunks
    assert model.D_.dtype == np.float32
    # float32 sums added chunk by chunk round differently, and the D-step's ill-conditioning amplifies it
    np.testing.assert_allclose(model.D_, reference.D_, atol=2e-3)
    np.testing.assert_allclose(model.objective_history_, reference.objective_history_, rtol=1e-4)


def test_unused_atoms_are_resampled_from_the_workers_samples(patches):
    # A large λ_s leaves atoms unused at first: they are replaced by samples fetched from the chunks.
    params = dict(lambda_s=30.0, lambda_e=0.0, n_atoms=20, max_outer=2)
    reference = fit(patches, **params)
    assert reference.n_reinitialized_atoms_ > 0
    with dask.config.set(scheduler="synchronous"):
        model = fit(da.from_array(patches, chunks=(CHUNK, -1)), **params)
    assert model.n_reinitialized_atoms_ == reference.n_reinitialized_atoms_
    assert_same_model(model, reference)


def test_a_failing_task_is_a_clear_error_and_the_model_keeps_what_was_learned(patches):
    armed = {"calls": None}

    def flaky(block):
        # After epoch 1 (armed by the callback), the 3rd chunk fails: epoch 2's second batch, after one
        # completed update of epoch 2.
        if armed["calls"] is not None:
            armed["calls"] += 1
            if armed["calls"] == 3:
                raise OSError("disk on fire")
        return block

    def arm(epoch, terms):
        armed["calls"] = 0

    X = da.from_array(patches, chunks=(CHUNK, -1)).map_blocks(flaky, dtype=patches.dtype)
    model = EnergyAutoEncoder(**PARAMS, max_outer=5, callback=arm)
    with dask.config.set(scheduler="synchronous"), pytest.raises(SourceError, match="OSError: disk on fire") as info:
        model.fit(X)
    assert "warm_start=True to continue" in str(info.value)
    # What was learned: one complete epoch in the histories, and D, E after the 4th update (3 + 1).
    assert model.n_iter_ == 1 and len(model.objective_history_) == 2 and model.n_steps_ == 4
    by_hand = EnergyAutoEncoder(**PARAMS)
    for start in [0, 200, 400, 0]:
        by_hand.partial_fit(patches[start : start + BATCH])
    np.testing.assert_allclose(model.D_, by_hand.D_, rtol=1e-7, atol=1e-9)
    # ... and warm_start continues from there.
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.set_params(warm_start=True, max_outer=1, callback=None).fit(da.from_array(patches, chunks=(CHUNK, -1)))
    assert model.n_steps_ == 7


def test_a_stream_as_a_dask_array(patches):
    images = [eaelib.load_image("barbara")[:90, :120], eaelib.load_image("barbara")[200:260, 300:400]]
    stream = PatchStream(images, 6, 3, batch_size=64, random_state=0)
    X = stream.to_dask(chunks_per_batch=3)  # each batch of the stream in 3 chunks (21, 21 and 22 patches)
    assert X.shape == (stream.n_patches, 36) and X.numblocks[0] == 3 * len(stream)
    assert X.chunks[0][:3] == (22, 21, 21)
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(X.compute(), np.concatenate(list(stream.batches(0))))
        # One epoch: the stream's epoch 0 in its batches, or the Dask array of that epoch's chunks.
        from_dask = fit(X, batch_size=64, max_outer=1)
    from_stream = fit(stream, max_outer=1)
    assert_same_model(from_dask, from_stream)


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    stream = PatchStream([np.zeros((20, 20))], 4)
    with pytest.raises(
        ImportError, match=r'needs dask and distributed, .*: pip install "eaelib\[dask\] @ git\+https://'
    ):
        stream.to_dask()


# -- a real cluster: 2 worker processes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, env={"OPENBLAS_NUM_THREADS": "1"}
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _exit_at(block, folder, call):
    """Kill the worker process that makes the ``call``-th chunk computation of the fit (counted in a file)."""
    with open(os.path.join(folder, "calls"), "a") as file:
        file.write("x")  # appends of one byte: atomic, so the two workers count together
    if os.path.getsize(os.path.join(folder, "calls")) == call:
        with open(os.path.join(folder, "killed"), "w") as file:
            file.write(str(os.getpid()))
        os._exit(1)
    return block


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
def test_a_local_cluster_of_two_workers_fits_the_in_memory_model(client, patches):
    reference = fit(patches)
    model = fit(da.from_array(patches, chunks=(CHUNK, -1)))
    assert_same_model(model, reference)
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
def test_a_worker_that_dies_mid_fit_is_replaced_and_the_fit_completes(client, patches, tmp_path):
    # Chunk computations: 2 for the start (the first batch), 6 for the initial energy, then epoch 1's
    # batches: the 12th is the second chunk of its second batch, mid-epoch.
    # meta: Dask would otherwise call _exit_at here, on an empty array, to learn what it returns.
    X = da.from_array(patches, chunks=(CHUNK, -1)).map_blocks(_exit_at, str(tmp_path), 12, meta=patches[:0])
    reference = fit(patches)
    model = fit(X)
    assert (tmp_path / "killed").exists()  # a worker did die, in the middle of epoch 1
    assert (tmp_path / "calls").stat().st_size > 12  # ... and its task ran again, on a worker alive
    assert_same_model(model, reference)  # nothing lost: the model is the in-memory one


def _ignores_sigint():
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


@pytest.mark.slow  # a cluster, a subprocess or real patches: seconds
def test_local_cluster_workers_ignore_ctrl_c_and_so_do_restarted_ones():
    # A terminal's Ctrl-C reaches every process of its group: the workers must leave it to the client.
    # The first workers are started with SIGINT ignored; restarted ones (after a worker died) by its preload.
    distributed = pytest.importorskip("distributed")
    from eaelib.distributed import local_cluster

    handler = signal.getsignal(signal.SIGINT)
    with local_cluster(2, dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        assert signal.getsignal(signal.SIGINT) is handler  # this process's Ctrl-C is back as it was
        assert len(cluster.workers) == 2 and all(client.run(_ignores_sigint).values())
        client.restart()  # new worker processes, started by the nannies while this process handles SIGINT
        assert len(client.run(_ignores_sigint)) == 2 and all(client.run(_ignores_sigint).values())


# -- the README's Dask example, as a script -------------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_dask_script(folder, dask_fit):
    """The README's Dask example with small sizes, and its images: a folder of 2 crops of Barbara.

    ``dask_fit`` replaces the Dask fit's ``max_outer=1`` (the one-process fit keeps it).
    """
    Image = pytest.importorskip("PIL.Image")
    pytest.importorskip("distributed")
    block = README.read_text(encoding="utf-8").split("**Many images, and Dask.**", 1)[1]
    block = block.split("```python\n", 1)[1].split("```", 1)[0]
    (folder / "photos").mkdir(parents=True)
    image = eaelib.load_image("barbara")
    for i in range(2):  # 2 × 25 × 25 patches of 8 × 8 at stride 1
        crop = image[100 * i : 100 * i + 32, 300:332]
        Image.fromarray(np.uint8(np.round(255 * crop))).save(folder / "photos" / f"{i}.png")
    small = {
        '"photos/"': repr(str(folder / "photos")),
        "local_cluster(4)": "local_cluster(2)",
        "chunks_per_batch=4": "chunks_per_batch=2",
        'EnergyAutoEncoder(64, algorithm="online"': 'EnergyAutoEncoder(16, algorithm="online", max_outer=1',
    }
    for text, replacement in small.items():
        assert text in block, f"the README's Dask example no longer has {text}: update this test"
        block = block.replace(text, replacement)
    first, dask_part = block.split("local_cluster(2)", 1)
    assert first.count("max_outer=1") == 1 and dask_part.count("max_outer=1") == 1
    script = folder / "example.py"
    script.write_text(first + "local_cluster(2)" + dask_part.replace("max_outer=1", dask_fit), encoding="utf-8")
    # The eaelib that these tests import, wherever it is (a checkout, an installed copy).
    env = {**os.environ, "PYTHONPATH": str(Path(eaelib.__file__).parent.parent), "PYTHONUNBUFFERED": "1"}
    return [sys.executable, str(script)], env


@pytest.mark.slow
def test_the_readme_dask_example_runs_as_a_script(tmp_path):
    command, env = _readme_dask_script(tmp_path, "max_outer=1")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    # Both fits show their progress bar (tqdm draws each at 0 first; no total: a certificate stops a fit), and
    # each counts its one epoch.
    assert result.stderr.count("epochs: 0it ") == 2 and result.stderr.count("epochs: 1it ") >= 2, result.stderr
    model = eaelib.load_model(tmp_path / "model.npz")
    assert model.D_.shape == (64, 16) and model.n_iter_ == 1


@pytest.mark.slow
def test_ctrl_c_stops_the_readme_dask_example_which_keeps_its_model(tmp_path):
    # As a terminal does: SIGINT to the whole process group (the cluster's workers too), during the Dask fit.
    command, env = _readme_dask_script(tmp_path, "max_outer=100000, rtol=0")
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, start_new_session=True)
    seen = bytearray()

    def read():
        while chunk := process.stderr.read1(256):
            seen.extend(chunk)
        process.stderr.close()  # the end of the stream: the script exited (the test ends it either way)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while seen.count(b"epochs: 0it") < 2 and time.monotonic() < deadline:  # the Dask fit's bar, the second
            time.sleep(0.05)
        assert seen.count(b"epochs: 0it") == 2, seen.decode(errors="replace")
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0  # the fit stopped; the script went on and saved its model
        reader.join(timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    err = seen.decode(errors="replace")
    assert "Traceback" not in err and "fit was interrupted after" in err, err
    model = eaelib.load_model(tmp_path / "model.npz")
    assert model.n_iter_ >= 1 and not model.converged_
