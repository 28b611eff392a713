"""Comparison 7 in a process of its own: ``python -m bench.collection_worker {stream,dask} FOLDER``.

The collection (:func:`collection`) is every image that the installed packages ship: the image files
of scikit-image's data folder, Barbara, and the 200 faces of ``lfw_subset`` (written into FOLDER).

``stream``
    One pass of online learning over every stride-1 patch of the collection, from a
    :class:`eaelib.PatchStream` over the files (``partial_fit`` on each batch): the
    cumulative time at checkpoints of patches processed, and the peak resident set
    (``VmHWM``) before learning (imports, model), after the first million patches and at
    the end. Then, for the paper estimate, the median time of one chunk's share of a
    batch (codes and sums, what a worker does) and of the client's update (D and E
    solved on the statistics).
``dask``
    The same fit (one epoch, certified) on a subset of the collection, once in this
    process from the stream and once on a ``LocalCluster`` of 2 worker processes from
    the stream's Dask array (a batch = one chunk per worker): both times, and the
    largest difference between the two models.

The result is one JSON line on standard output.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from copy import deepcopy
from pathlib import Path

import numpy as np

import eaelib
from eaelib.online import Statistics, absorb, batch_codes

from .scaling_worker import current_rss_bytes, peak_rss_bytes
from .workload import LAMBDAS


def collection(folder, patch_size, n_faces=None):
    """The collection's image files: every image the installed packages ship, at least one patch large.

    The files of scikit-image's data folder that Pillow reads (two do not: a TIFF that needs tifffile, and
    one smaller than a patch), Barbara, and the 200 faces of ``lfw_subset`` (shipped as one ``.npy``
    array), written as PNG files into ``folder`` (the first ``n_faces`` only, if given: ``n_faces`` alone).
    """
    import skimage.data
    from PIL import Image

    files = []
    if n_faces is None:
        for path in eaelib.image_files(skimage.data.data_dir):
            try:
                eaelib.PatchStream([path], patch_size)
            except ValueError:  # unreadable, or smaller than a patch
                continue
            files.append(path)
        files.append("barbara")
    faces = np.load(Path(skimage.data.data_dir) / "lfw_subset.npy")
    for k, face in enumerate(faces[:n_faces]):
        path = Path(folder) / f"lfw_subset_{k:03d}.png"
        Image.fromarray(np.uint8(np.round(255 * face))).save(path)
        files.append(path)
    return files


def make_stream(files, args, batch_size=None):
    return eaelib.PatchStream(
        files, args.patch_size, 1, batch_size=batch_size or args.batch_size, random_state=0, pool=args.pool
    )


def model(args, **params):
    params = {"batch_size": args.batch_size, **params}
    return eaelib.EnergyAutoEncoder(args.n_atoms, **LAMBDAS, algorithm="online", random_state=0, **params)


def stream_pass(files, args):
    stream = make_stream(files, args)
    learner = model(args)
    batches = stream.batches(0)
    first = next(batches)
    learner.partial_fit(first)  # the model starts from the first batch, and learns from it
    rss_model = current_rss_bytes()  # imports, the stream (its headers read), the model and its statistics
    checkpoints, processed, next_mark = [], first.shape[0], args.first_checkpoint
    rss_at_million = None
    start = time.perf_counter()
    for batch in batches:
        learner.partial_fit(batch)
        processed += batch.shape[0]
        if processed >= next_mark or processed == stream.n_patches:
            checkpoints.append((processed, time.perf_counter() - start))
            next_mark *= 2
        if rss_at_million is None and processed >= 1_000_000:
            rss_at_million = peak_rss_bytes()
    total = time.perf_counter() - start
    return {
        "n_images": len(stream.images),
        "n_patches": stream.n_patches,
        "n_batches": len(stream),
        "seconds": total,
        "checkpoints": checkpoints,
        "rss_model_bytes": rss_model,
        "peak_rss_1m_bytes": rss_at_million,
        "peak_rss_end_bytes": peak_rss_bytes(),
        "model_bytes": int(learner.D_.nbytes + learner.E_.nbytes),
        "statistics_bytes": int(sum(getattr(learner._online.statistics, k).nbytes for k in ("zz", "xz", "xx"))),
        "chunk": chunk_timings(stream, learner, args),
    }


def chunk_timings(stream, learner, args):
    """Median seconds of a worker's share of a batch (codes and sums of a chunk) and of the client's update."""
    X = next(iter(make_stream(stream.images, args, batch_size=min(args.chunk, stream.n_patches)))).T
    state = learner._online
    weights = {k: LAMBDAS[k] for k in ("lambda_d", "lambda_e", "lambda_s")}

    def worker():
        codes = batch_codes(X, state.D, state.E, **weights, rtol=learner.inner_rtol, max_iter=learner.max_inner)
        return Statistics.of(X, codes.x)

    worker_times, client_times = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        sums = worker()
        worker_times.append(time.perf_counter() - t)
        copy = deepcopy(state)  # the client's update, on the statistics as they are
        t = time.perf_counter()
        absorb(copy, sums, lambda_d=weights["lambda_d"], lambda_e=weights["lambda_e"])
        client_times.append(time.perf_counter() - t)
    return {
        "patches": int(X.shape[1]),
        "worker_seconds": statistics.median(worker_times),
        "client_seconds": statistics.median(client_times),
        "worker_runs": worker_times,
        "client_runs": client_times,
    }


def dask_comparison(files, args):
    import dask
    import distributed

    # The subset: the first images (in name order) until about args.subset patches.
    subset, count = [], 0
    for f in files:
        if count >= args.subset:
            break
        subset.append(f)
        count += eaelib.PatchStream([f], args.patch_size, 1).n_patches
    stream = eaelib.PatchStream(
        subset, args.patch_size, 1, batch_size=args.dask_batch_size, random_state=0, pool=args.pool
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: not converged
        start = time.perf_counter()
        single = model(args, max_outer=1).fit(stream)
        single_seconds = time.perf_counter() - start
        with (
            distributed.LocalCluster(
                n_workers=2,
                processes=True,
                threads_per_worker=1,
                dashboard_address=None,
                env={"OPENBLAS_NUM_THREADS": "1"},
                silence_logs=logging.CRITICAL,  # the workers' complaints as the cluster closes
            ) as cluster,
            distributed.Client(cluster),
        ):
            X = stream.to_dask(chunks_per_batch=2)  # a batch: one chunk per worker
            start = time.perf_counter()
            on_dask = model(args, max_outer=1, batch_size=args.dask_batch_size, shuffle=False).fit(X)
            dask_seconds = time.perf_counter() - start
    return {
        "n_images": len(subset),
        "n_patches": stream.n_patches,
        "single_seconds": single_seconds,
        "dask_seconds": dask_seconds,
        "workers": 2,
        "batch_size": args.dask_batch_size,
        "n_batches": len(stream),
        "dask_version": dask.__version__,
        "max_difference_D": float(np.max(np.abs(single.D_ - on_dask.D_))),
        "energy_single": single.objective_history_[-1],
        "energy_dask": on_dask.objective_history_[-1],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.collection_worker", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("stream", "dask"))
    parser.add_argument("folder", type=Path, help="a folder for the faces, written as PNG files")
    parser.add_argument("--faces", type=int, help="only the first FACES faces (the smoke run)")
    parser.add_argument("--patch-size", type=int, default=12)
    parser.add_argument("--n-atoms", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=10_000, help="patches of the chunk timed for the estimate")
    parser.add_argument("--first-checkpoint", type=int, default=65_536)
    parser.add_argument("--subset", type=int, default=250_000, help="patches of the Dask comparison (about)")
    parser.add_argument("--dask-batch-size", type=int, default=8192, help="batch of the Dask comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    warnings.simplefilter("ignore", UserWarning)  # a first batch of fewer patches than features (smoke)
    files = collection(args.folder, args.patch_size, args.faces)
    run = {"stream": stream_pass, "dask": dask_comparison}[args.mode]
    json.dump(run(files, args), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
