"""Comparison 5: time per outer iteration and peak memory against N.

Every size runs in a fresh process (:mod:`bench.scaling_worker`), which times
``scaling_outer`` outer iterations, then measures the peak memory of one outer
iteration. Time is linear in N when the exponent ``b`` of the least-squares fit
``time ∝ N^b`` over the sizes is at most 1.1 (overheads independent of N make
it smaller at small N); memory is the peak allocated while learning over the
size of ``X``.
"""

from __future__ import annotations

import statistics

import numpy as np

from .measure import run_worker
from .report import Row

TARGET_EXPONENT = 1.1
TARGET_MEMORY = 3.0


def worker(size, config, backend="numpy", dtype="float64", algorithm="batch"):
    """Run :mod:`bench.scaling_worker` for ``size`` in a subprocess and return its JSON result."""
    arguments = ["--stride", size.stride, "--n-atoms", config.n_atoms, "--outer", config.scaling_outer]
    arguments += ["--backend", backend, "--dtype", dtype, "--algorithm", algorithm]
    if size.max_samples is not None:
        arguments += ["--max-samples", size.max_samples]
    return run_worker("bench.scaling_worker", arguments, config.threads)


def run_size(size, config, backend="numpy", dtype="float64", algorithm="batch"):
    """Time and memory of one size."""
    measured = worker(size, config, backend, dtype, algorithm)
    seconds = statistics.median(measured["outer_seconds"])
    return {
        "algorithm": algorithm,
        "certify_seconds": measured.get("certify_seconds"),
        "size": size.label,
        "stride": size.stride,
        "N": measured["N"],
        "backend": backend,
        "dtype": dtype,
        "x_bytes": measured["x_bytes"],
        "outer_seconds": measured["outer_seconds"],
        "seconds_per_outer": seconds,
        "microseconds_per_sample": 1e6 * seconds / measured["N"],
        "z_iterations": measured["z_iterations"],
        "energies": measured["energies"],
        "peak_bytes": measured["peak_bytes"],
        "peak_over_x": measured["peak_bytes"] / measured["x_bytes"],
        "memory_method": measured["memory_method"],
        "rss_before_bytes": measured["rss_before_bytes"],
        "peak_rss_bytes": measured["peak_rss_bytes"],
    }


def exponent(results, key="seconds_per_outer"):
    """Exponent ``b`` of the least-squares fit ``results[key] ∝ N^b``; None with fewer than two sizes."""
    if len(results) < 2:
        return None
    N = np.log([r["N"] for r in results])
    y = np.log([r[key] for r in results])
    return float(np.polyfit(N, y, 1)[0])


def summary(results):
    """The fitted exponents and the largest memory ratio."""
    return {
        "exponent": exponent(results),
        # Per Z-step FISTA iteration: the exponent without the change in iteration counts.
        "exponent_per_z_iteration": exponent(
            [r | {"per_it": r["seconds_per_outer"] / statistics.median(r["z_iterations"])} for r in results], "per_it"
        ),
        "max_peak_over_x": max(r["peak_over_x"] for r in results),
    }


def rows(results, online=()):
    """Table rows: the time exponent and the memory ratio, over every size; the same for online epochs."""
    table = _rows(results, "5. scaling: time per outer iteration", "5. scaling: peak memory")
    if online:
        table += _rows(online, "5. scaling, online: time per epoch", "5. scaling, online: peak memory")
    return table


def _rows(results, time_label, memory_label):
    s = summary(results)
    sizes = ", ".join(f"{r['N']}: {r['seconds_per_outer']:.3g} s" for r in results)
    memory = ", ".join(f"{r['N']}: {r['peak_bytes'] / 2**20:.0f} MiB = {r['peak_over_x']:.1f}× X" for r in results)
    span = f"N = {results[0]['N']}…{results[-1]['N']}"
    return [
        Row(
            comparison=time_label,
            size=span,
            measured=f"{sizes}; exponent per Z iteration {_fmt(s['exponent_per_z_iteration'])}",
            ratio=s["exponent"],
            ratio_format="exponent",
            target=f"∝ N^b, b ≤ {TARGET_EXPONENT:g}",
            met=None if s["exponent"] is None else s["exponent"] <= TARGET_EXPONENT,
        ),
        Row(
            comparison=memory_label,
            size=span,
            measured=memory,
            ratio=s["max_peak_over_x"],
            ratio_format="times",
            target=f"≤ {TARGET_MEMORY:g}× X",
            met=s["max_peak_over_x"] <= TARGET_MEMORY,
        ),
    ]


def _fmt(value):
    return "n/a" if value is None else f"{value:.2f}"
