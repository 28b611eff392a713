"""One size of the scaling comparison, in a process of its own: ``python -m bench.scaling_worker``.

A fresh process per size keeps the sizes' memory apart and makes the
resident-set peak (``VmHWM``) that of one size. It measures, in order:

time
    :func:`eaelib.learn` for ``--outer`` outer iterations (outer tolerance 0),
    the time of each from a callback, the FISTA iterations of each Z-step, and
    the resident set before learning and at its peak.
memory
    One more outer iteration from the same start under :mod:`tracemalloc`,
    which sees every NumPy allocation: the peak of the memory allocated while
    learning, beyond ``X`` and the starting ``Z0``, ``D0``, ``E0`` (allocated
    before). On CuPy, the bytes the memory pool holds after the iteration
    beyond those it held before (the pool keeps freed blocks: its peak).

With ``--algorithm online`` the same two measurements concern one epoch of
:func:`eaelib.online.learn_online` (batches of 256): the time of its pass of
mini-batches (per sample), the time of its certifying pass, and the peak
memory of the whole epoch beyond ``X`` and the start.

The result is one JSON line on standard output.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import eaelib
from eaelib.online import evaluate, learn_online, minibatches, online_step, start

from .measure import EnergyTrace
from .workload import LAMBDAS, SEED, Size, load_patches


def proc_status_bytes(field):
    """A memory field of /proc/self/status (``VmRSS``, ``VmHWM``) in bytes (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_rss_bytes():
    """Resident set size of this process now."""
    return proc_status_bytes("VmRSS")


def peak_rss_bytes():
    """Peak resident set size of this process so far.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over from
    the parent across fork and exec, so a worker started by a large benchmark
    process would report the parent's peak.
    """
    peak = proc_status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def prepare(args):
    """Data and starting point on the requested backend and dtype."""
    X = load_patches(Size(f"stride {args.stride}", args.stride, args.max_samples)).astype(args.dtype)
    if args.backend == "cupy":
        import cupy

        X = cupy.asarray(X)
    return (X, *eaelib.initialize(X, args.n_atoms, SEED, method=eaelib.EnergyAutoEncoder().init))


def describe(X):
    """Shape and size of the data, for every result."""
    n, N = X.shape
    return {"n": int(n), "N": int(N), "x_bytes": int(n * N * X.dtype.itemsize)}


def run_time(X, Z0, D0, E0, args):
    """Time each outer iteration of :func:`eaelib.learn`."""
    rss_before = current_rss_bytes()
    trace = EnergyTrace().start()
    result = eaelib.learn(X, Z0, D0, E0, **LAMBDAS, max_outer=args.outer, rtol=0.0, callback=trace)
    outer_seconds = np.diff([0.0, *trace.times]).tolist()
    return {
        "outer_seconds": outer_seconds,
        "energies": trace.energies,
        "z_iterations": [len(t.smooth) - 1 for t in result.inner if t.subproblem == "Z"],
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def run_online_time(X, Z0, D0, E0, args):
    """Time one epoch of online steps, then one certifying pass, from the start."""
    rss_before = current_rss_bytes()
    weights = {**LAMBDAS}
    state, rng = start(X, D0, E0), np.random.default_rng(SEED)
    begin = time.perf_counter()
    for index in minibatches(X.shape[1], 256, rng):
        online_step(state, X[:, index], **weights, inner_rtol=1e-4, max_inner=100, rng=rng)
    epoch = time.perf_counter() - begin
    begin = time.perf_counter()
    spans = [(i, min(i + 256, X.shape[1])) for i in range(0, X.shape[1], 256)]
    terms, _ = evaluate((X[:, a:b] for a, b in spans), state.D, state.E, **weights, inner_rtol=1e-4, max_inner=100)
    certify = time.perf_counter() - begin
    return {
        "outer_seconds": [epoch],
        "certify_seconds": certify,
        "energies": [terms["total"]],
        "z_iterations": [1],
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def run_online_memory(X, Z0, D0, E0, args):
    """Peak memory allocated by one epoch of :func:`eaelib.online.learn_online`, certifying pass included."""
    tracemalloc.start()
    learn_online(X, D0, E0, **LAMBDAS, max_epochs=1, random_state=SEED)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_bytes": peak, "memory_method": "tracemalloc"}


def run_memory(X, Z0, D0, E0, args):
    """Peak memory allocated by one outer iteration of :func:`eaelib.learn`."""
    if args.backend == "cupy":
        import cupy

        pool = cupy.get_default_memory_pool()
        held = pool.total_bytes()  # X and the start
        eaelib.learn(X, Z0, D0, E0, **LAMBDAS, max_outer=1, rtol=0.0)
        cupy.cuda.get_current_stream().synchronize()
        return {"peak_bytes": pool.total_bytes() - held, "memory_method": "cupy memory pool"}
    tracemalloc.start()
    eaelib.learn(X, Z0, D0, E0, **LAMBDAS, max_outer=1, rtol=0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_bytes": peak, "memory_method": "tracemalloc"}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.scaling_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, required=True)
    parser.add_argument("--max-samples", type=int)
    parser.add_argument("--n-atoms", type=int, default=200)
    parser.add_argument("--outer", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--algorithm", choices=("batch", "online"), default="batch")
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    X, Z0, D0, E0 = prepare(args)
    result = describe(X) | {"backend": args.backend, "dtype": args.dtype, "algorithm": args.algorithm}
    if args.algorithm == "online":
        result |= run_online_time(X, Z0, D0, E0, args)
        result |= run_online_memory(X, Z0, D0, E0, args)
    else:
        result |= run_time(X, Z0, D0, E0, args)
        result |= run_memory(X, Z0, D0, E0, args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
