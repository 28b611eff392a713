"""Comparison 3: the Z-step's FLOP rate as a fraction of the machine's GEMM rate.

Every FISTA iteration of the Z-subproblem applies ``G = λ_d DᵀD + λ_e I``
once: an ``(m × m) @ (m × N)`` product of ``2 m² N`` flops; the rest of the
iteration (soft-thresholding, extrapolation, objectives) is memory-bound
overhead. The achieved rate is ``2 m² N · iterations / time`` of
:func:`eaelib.fista` on :func:`eaelib.code_problem` (setup excluded), run for a
fixed number of iterations (``rtol < 0``: no column stops early); the GEMM rate
is that product alone, as many times in a row, timed in the same run at the
same ``m``, ``N`` and dtype, in turn with the Z-step.
"""

from __future__ import annotations

import eaelib

from .measure import gemm_products, gemm_result, interleaved_medians
from .report import Row

TARGET_FRACTION = 0.70
TARGET_MIN_N = 24_000  # the target applies from N ≈ 24k on
DTYPES = ("float64", "float32")


def run_dtype(workload, config):
    """GEMM and Z-step rates on ``workload`` in its dtype.

    The GEMM loop (as many products as the Z-step runs iterations) and the
    Z-step are timed in turn, ``repeats`` times each, so that both see the
    same load on a shared machine.

    Returns
    -------
    dict
        ``gemm`` (rate of the products alone), ``zstep`` (``seconds``,
        ``n_iter``, ``gflops``), ``fraction``, and ``solve_codes``: the Z-step
        with its setup and eaelib's inner stopping rule (as in
        :func:`eaelib.learn`), for reference.
    """
    Z0, D0, E0 = workload.initial()
    m, N, dtype, count = workload.n_atoms, workload.N, workload.X.dtype, config.zstep_iters
    f, g = eaelib.code_problem(workload.X, D0, E0, **workload.lambdas)
    eaelib.fista(f, g, Z0, rtol=-1.0, max_iter=2)  # warm-up
    timed = interleaved_medians(
        {
            "gemm": gemm_products(m, N, dtype, count),
            "zstep": lambda: eaelib.fista(f, g, Z0, rtol=-1.0, max_iter=count),
            "solve_codes": lambda: eaelib.solve_codes(workload.X, D0, E0, **workload.lambdas, rtol=1e-4, max_iter=100),
        },
        config.repeats,
    )
    gemm = gemm_result(m, N, dtype, timed["gemm"][0] / count)
    flops = 2.0 * m * m * N
    zstep_seconds, zstep_runs, result = timed["zstep"]
    solve_seconds, _, solved = timed["solve_codes"]
    zstep = {"seconds": zstep_seconds, "runs": zstep_runs, "n_iter": result.n_iter}
    zstep["gflops"] = flops * result.n_iter / zstep_seconds / 1e9
    return {
        "gemm": gemm,
        "zstep": zstep,
        "fraction": zstep["gflops"] / gemm["gflops"],
        "solve_codes": {
            "seconds": solve_seconds,
            "n_iter": solved.n_iter,
            "gflops": flops * solved.n_iter / solve_seconds / 1e9,
        },
    }


def run_size(workload, config):
    """GEMM and Z-step rates in float64 and float32 on one workload."""
    result = {"size": workload.size.label, "N": workload.N, "m": workload.n_atoms}
    for dtype in DTYPES:
        result[dtype] = run_dtype(workload.astype(dtype), config)
    return result


def rows(results):
    """Table rows: one per size and dtype; the target applies from N ≈ 24k on."""
    table = []
    for r in results:
        for dtype in DTYPES:
            d = r[dtype]
            applies = r["N"] >= TARGET_MIN_N
            table.append(
                Row(
                    comparison=f"3. Z-step / GEMM rate ({dtype})",
                    size=f"{r['size']} ({r['N']})",
                    measured=(
                        f"Z-step {d['zstep']['gflops']:.3g} GFLOP/s ({d['zstep']['n_iter']} it), "
                        f"GEMM {d['gemm']['gflops']:.3g} GFLOP/s"
                    ),
                    ratio=d["fraction"],
                    ratio_format="percent",
                    target=f"≥ {TARGET_FRACTION:.0%}" if applies else f"(N ≥ {TARGET_MIN_N // 1000}k only)",
                    met=d["fraction"] >= TARGET_FRACTION if applies else None,
                )
            )
    return table


def gemm_table(results):
    """The machine's GEMM rates measured in this run: ``[(size, N, dtype, GFLOP/s)]``."""
    return [(r["size"], r["N"], dtype, r[dtype]["gemm"]["gflops"]) for r in results for dtype in DTYPES]
