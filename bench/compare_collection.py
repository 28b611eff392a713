"""Comparison 7: learning from many images, streamed, and on a 2-worker Dask cluster.

The collection is every image that the installed packages ship: the image
files of scikit-image's data folder that Pillow reads and that hold a patch,
Barbara, and the 200 faces of ``lfw_subset`` (shipped as an array, written as
PNG files), streamed with :class:`eaelib.PatchStream`: stride-1 12 × 12
patches, shuffled, in batches.
Each part runs in a fresh process (:mod:`bench.collection_worker`):

- **stream**: one pass of online learning over every patch (``partial_fit`` per
  batch): time at checkpoints of patches processed (the exponent ``b`` of
  ``time ∝ patches^b``: linear when ``b ≤ 1.1``), and the peak resident set
  above the process with its model, at 1M patches and at the end (goal: flat,
  ≤ 1 GiB);
- **dask**: the same fit (one certified epoch, the same batches) on a subset, in
  one process and on a ``LocalCluster`` of 2 worker processes;
- **paper estimate** for 10⁹ patches on 100 workers, from the measured time of
  one chunk's codes and sums (a worker's share of a batch), of the client's
  update, of the local cluster's overhead per batch, and the bytes that cross
  the network per batch.
"""

from __future__ import annotations

import tempfile

import numpy as np

from .measure import run_worker
from .report import Row

TARGET_EXPONENT = 1.1
TARGET_RSS_GIB = 1.0
#: The paper estimate's cluster: 10⁹ patches, 100 workers, 10 Gb/s at the client, chunks of 10⁴ patches.
ESTIMATE = {"patches": 1e9, "workers": 100, "bandwidth_bytes_per_s": 1.25e9, "chunk": 10_000}


def worker(mode, images, config, *options):
    return run_worker("bench.collection_worker", [mode, images, *options], config.threads)


def run_size(config):
    """Comparison 7: write the collection, stream it, fit it on Dask, and estimate 10⁹ patches."""
    c = config.collection
    common = ["--n-atoms", c["n_atoms"], "--patch-size", c["patch_size"]]
    faces = ["--faces", c["faces"]] if c.get("faces") else []
    with tempfile.TemporaryDirectory(prefix="eaelib-collection-") as folder:
        stream = worker(
            "stream",
            folder,
            config,
            *common,
            *faces,
            "--batch-size",
            c["batch_size"],
            "--chunk",
            ESTIMATE["chunk"] if not config.smoke else 512,
            "--first-checkpoint",
            c["first_checkpoint"],
            "--repeats",
            config.repeats,
        )
        on_dask = worker(
            "dask", folder, config, *common, *faces, "--dask-batch-size", c["dask_batch_size"], "--subset", c["subset"]
        )
    result = {"stream": stream, "dask": on_dask, "settings": dict(c)}
    result["exponent"] = exponent(stream["checkpoints"])
    result["seconds_per_million"] = 1e6 * stream["seconds"] / stream["n_patches"]
    rss = stream["rss_model_bytes"]
    result["rss_above_model_1m_gib"] = (
        None if stream["peak_rss_1m_bytes"] is None else (stream["peak_rss_1m_bytes"] - rss) / 2**30
    )
    result["rss_above_model_end_gib"] = (stream["peak_rss_end_bytes"] - rss) / 2**30
    result["dask_speedup"] = on_dask["single_seconds"] / on_dask["dask_seconds"]
    result["estimate"] = paper_estimate(stream, on_dask, n=c["patch_size"] ** 2, m=c["n_atoms"])
    return result


def exponent(checkpoints):
    """Exponent ``b`` of the fit ``time ∝ patches^b`` over the checkpoints (the first dropped: warm-up)."""
    points = [(p, t) for p, t in checkpoints[1:] if t > 0]
    if len(points) < 2:
        return None
    patches, seconds = np.log([p for p, _ in points]), np.log([t for _, t in points])
    return float(np.polyfit(patches, seconds, 1)[0])


def paper_estimate(stream, on_dask, *, n, m):
    """Time of one epoch (a training pass and the certifying pass) over 10⁹ patches on 100 workers.

    A round (one batch) is: the model to every worker, each worker codes its
    chunk and returns its sums, the client adds them and solves D and E. So a
    round takes the slowest worker's chunk time, plus the client's update, plus
    the bytes through the client's link, plus the scheduler's overhead per round
    (measured on the local cluster: its time less the work, spread over its batches).
    The certifying pass is one round over all the chunks, without client updates.
    """
    chunk = stream["chunk"]
    per_patch = chunk["worker_seconds"] / chunk["patches"]
    c, W, P = ESTIMATE["chunk"], ESTIMATE["workers"], ESTIMATE["patches"]
    chunk_seconds = per_patch * c
    model_bytes = 2 * n * m * 8  # D and E, float64
    sums_bytes = (m * m + n * m + n * n + 3) * 8  # Σzzᵀ, Σxzᵀ, Σxxᵀ and three scalars
    network_seconds = W * (model_bytes + sums_bytes) / ESTIMATE["bandwidth_bytes_per_s"]
    # The local cluster's overhead per batch: its time less the work the single process did, per batch (a bound:
    # it also counts the two workers competing for the machine's cores with the client and scheduler).
    overhead = max(
        0.0, (on_dask["dask_seconds"] - on_dask["single_seconds"] / on_dask["workers"]) / on_dask["n_batches"]
    )
    rounds = P / (W * c)
    round_seconds = chunk_seconds + chunk["client_seconds"] + network_seconds + overhead
    training = rounds * round_seconds
    certifying = rounds * chunk_seconds  # each worker codes its P / W patches once more
    return {
        "patches": P,
        "workers": W,
        "chunk": c,
        "batch": W * c,
        "rounds": rounds,
        "chunk_seconds": chunk_seconds,
        "client_seconds": chunk["client_seconds"],
        "model_bytes": model_bytes,
        "sums_bytes": sums_bytes,
        "network_seconds": network_seconds,
        "overhead_seconds": overhead,
        "round_seconds": round_seconds,
        "training_seconds": training,
        "epoch_seconds": training + certifying,
        "single_process_seconds": P * stream["seconds"] / stream["n_patches"],
    }


def rows(result):
    """Table rows: time exponent, memory, the 2-worker cluster, the paper estimate."""
    s, d, e = result["stream"], result["dask"], result["estimate"]
    size = f"{s['n_patches']:,} patches, {s['n_images']} images"
    rss_1m = result["rss_above_model_1m_gib"]
    rss_text = "n/a (< 1M patches)" if rss_1m is None else f"{1024 * rss_1m:.0f} MiB"
    rss_end = result["rss_above_model_end_gib"]
    flat = rss_1m is None or rss_end <= rss_1m + 0.1
    b = result["exponent"]
    return [
        Row(
            comparison="7. many images: time per patch (stream)",
            size=size,
            measured=(
                f"{result['seconds_per_million']:.3g} s per million patches ({s['seconds']:.0f} s for one pass, "
                f"m = {result['settings']['n_atoms']}, batches of {result['settings']['batch_size']})"
            ),
            ratio=b,
            ratio_format="exponent",
            target=f"∝ patches^b, b ≤ {TARGET_EXPONENT:g}",
            met=None if b is None else b <= TARGET_EXPONENT,
        ),
        Row(
            comparison="7. many images: peak RSS above the model",
            size=size,
            measured=(
                f"at 1M patches {rss_text}, at the end {1024 * rss_end:.0f} MiB (process with its model: "
                f"{s['rss_model_bytes'] / 2**20:.0f} MiB)"
            ),
            ratio=rss_end,
            ratio_format="gib",
            target=f"flat, ≤ {TARGET_RSS_GIB:g} GiB",
            met=flat and rss_end <= TARGET_RSS_GIB,
        ),
        Row(
            comparison="7. many images: 2-worker LocalCluster vs one process",
            size=f"{d['n_patches']:,} patches, {d['n_images']} images",
            measured=(
                f"one process {d['single_seconds']:.3g} s, cluster {d['dask_seconds']:.3g} s (one certified epoch, "
                f"{d['n_batches']} batches of {d['batch_size']}); models differ by {d['max_difference_D']:.1e}"
            ),
            ratio=result["dask_speedup"],
            target="(reported)",
            met=None,
        ),
        Row(
            comparison="7. many images: 10⁹ patches on 100 workers (paper estimate)",
            size="10⁹ patches",
            measured=(
                f"{e['epoch_seconds'] / 3600:.2g} h per certified epoch ({e['rounds']:.0f} batches of {e['batch']:,}: "
                f"chunk {e['chunk_seconds']:.2g} s + client {e['client_seconds']:.2g} s + network "
                f"{e['network_seconds']:.2g} s + scheduler {e['overhead_seconds']:.2g} s per batch); one process: "
                f"{e['single_process_seconds'] / 3600:.3g} h per pass"
            ),
            ratio=e["single_process_seconds"] / e["training_seconds"],
            target="(estimate)",
            met=None,
        ),
    ]
