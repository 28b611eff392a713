"""Comparison 8, the GPU part of ``bench/gpu_check.sh``: scaling and the stride-1 fit on CuPy against NumPy.

For every size (strides 12, 4 and 1), :mod:`bench.scaling_worker` runs
``--outer`` outer iterations of :func:`eaelib.learn` and one more for the
peak memory, then one epoch of the online learner (:mod:`eaelib.online`,
batches of 256) and its certifying pass, in a fresh process per backend:
NumPy (float64) and CuPy (float64 and float32). Target of the online
learner: ≥ 20× the same epoch on the CPU. The stride-1 rows are the stride-1 fit on either
backend (the first outer iterations of it: a whole 20-iteration NumPy fit at
N ≈ 390k would not fit the script's five minutes). The GPU's GEMM rate is
measured as well. Writes ``bench/results/gpu_check.json``; prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import compare_scaling
from .config import Config
from .measure import REPO, gemm_rate, machine_info
from .workload import FULL_SIZES, SMOKE_SIZES, STRIDE1_SIZE

RUNS = (("numpy", "float64"), ("cupy", "float64"), ("cupy", "float32"))


def device_info(cupy):
    """Name, memory and CUDA versions of GPU 0."""
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
        "compute_capability": f"{props['major']}.{props['minor']}",
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
        "cupy": cupy.__version__,
        "device_count": cupy.cuda.runtime.getDeviceCount(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--outer", type=int, default=3, help="outer iterations timed per size and backend")
    parser.add_argument("--tests-rc", type=int, help="exit status of the CuPy tests, to record")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a test of the script, not a measurement")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_check.json")
    args = parser.parse_args(argv)
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as exc:  # ImportError, CUDARuntimeError: no GPU here, nothing to check
        print(f"gpu_check: skipped: no usable CuPy and GPU ({type(exc).__name__}: {exc})")
        return 0

    start = time.perf_counter()
    config = replace(Config(), scaling_outer=args.outer)
    results = {"meta": machine_info(), "device": device_info(cupy), "cupy_tests_rc": args.tests_rc}
    # The Z-step's product on the GPU, at the sizes of strides 4 and 1.
    sizes = SMOKE_SIZES if args.smoke else (*FULL_SIZES, STRIDE1_SIZE)
    results["gemm_gpu"] = [
        gemm_rate(config.n_atoms, N, dtype, xp=cupy)
        for N in ((768,) if args.smoke else (24_393, 389_033))
        for dtype in ("float64", "float32")
    ]
    rows = []
    for size in sizes:
        for algorithm in ("batch", "online"):
            for backend, dtype in RUNS:
                print(f"[gpu_check] {size.label}: {algorithm} {backend} {dtype}", file=sys.stderr, flush=True)
                rows.append(compare_scaling.run_size(size, config, backend=backend, dtype=dtype, algorithm=algorithm))
    results["scaling"] = rows
    results["speedup"] = speedups(rows)
    results["meta"]["elapsed_seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(table(rows, results["speedup"]))
    print(f"\nwritten: {args.out}")
    return 0


def speedups(rows):
    """Per size and algorithm: NumPy's time per outer iteration (or epoch) over CuPy's, and the energy difference."""
    out = []
    by_key = {(r["size"], r["algorithm"], r["backend"], r["dtype"]): r for r in rows}
    for size, algorithm in dict.fromkeys((r["size"], r["algorithm"]) for r in rows):
        cpu = by_key.get((size, algorithm, "numpy", "float64"))
        for dtype in ("float64", "float32"):
            gpu = by_key.get((size, algorithm, "cupy", dtype))
            if cpu and gpu:
                out.append(
                    {
                        "size": size,
                        "algorithm": algorithm,
                        "dtype": dtype,
                        "speedup": cpu["seconds_per_outer"] / gpu["seconds_per_outer"],
                        "energy_rel_diff": abs(gpu["energies"][-1] - cpu["energies"][-1]) / abs(cpu["energies"][-1]),
                    }
                )
    return out


def table(rows, speedup):
    """A plain-text table of the runs and the speed-ups."""
    lines = [f"{'size':10} {'learner':7} {'backend':7} {'dtype':8} {'N':>7} {'s/outer':>9} {'peak/X':>7}"]
    for r in rows:
        lines.append(
            f"{r['size']:10} {r['algorithm']:7} {r['backend']:7} {r['dtype']:8} {r['N']:7d} "
            f"{r['seconds_per_outer']:9.3g} {r['peak_over_x']:7.1f}"
        )
    lines.append("")
    for s in speedup:
        unit = "epoch" if s["algorithm"] == "online" else "outer iteration"
        lines.append(
            f"{s['size']:10} {s['algorithm']} CuPy {s['dtype']} vs NumPy float64: {s['speedup']:.3g}× faster per "
            f"{unit}, energy after the same iterations differs by {s['energy_rel_diff']:.1e}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
