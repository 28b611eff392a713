"""Run the comparisons, print the table and write the results: ``python -m bench``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from . import (
    compare_collection,
    compare_hardware,
    compare_inference,
    compare_original,
    compare_scaling,
    compare_sklearn,
    compare_spams,
    plots,
    report,
)
from .config import COMPARISONS, make_config
from .measure import REPO, machine_info
from .workload import make_workload

DEFAULT_OUT = REPO / "bench" / "results"


def log(message):
    """Progress on standard error, so that standard output carries only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def each(sizes, title):
    """``sizes``, logging ``title`` and the size before each."""
    for size in sizes:
        log(f"{title}, {size.label}")
        yield size


def run_original(config, workload):
    results = [compare_original.run_size(workload(s), config) for s in each(config.sizes, "1. original vs eaelib")]
    return {"sizes": results}, compare_original.rows(results)


def run_sklearn(config, workload):
    results = []
    for size in each(config.sizes, "2. scikit-learn vs eaelib (λ_e = 0)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # MiniBatch's remarks on its settings
            results.append(compare_sklearn.run_size(workload(size), config))
    return {"sizes": results}, compare_sklearn.rows(results)


def run_hardware(config, workload):
    results = [
        compare_hardware.run_size(workload(s), config) for s in each(config.hardware_sizes, "3. Z-step and GEMM rates")
    ]
    return {"sizes": results, "gemm": compare_hardware.gemm_table(results)}, compare_hardware.rows(results)


def run_inference(config, workload):
    log(f"4. inference: fitting the model on {config.sizes[0].label}")
    model = compare_inference.fit_model(workload(config.sizes[0]), config)
    results = [
        compare_inference.run_size(model, workload(s), config)
        for s in each(config.sizes, "4. inference: encoder vs exact transform")
    ]
    fit = {"size": config.sizes[0].label, "n_iter": model.n_iter_}
    return {"sizes": results, "fit": fit}, compare_inference.rows(results)


def run_scaling(config, workload):
    results = [compare_scaling.run_size(s, config) for s in each(config.scaling_sizes, "5. scaling (own process)")]
    online = [
        compare_scaling.run_size(s, config, algorithm="online")
        for s in each(config.scaling_sizes, "5. scaling, online epoch (own process)")
    ]
    details = {
        "sizes": results,
        "summary": compare_scaling.summary(results),
        "online": online,
        "online_summary": compare_scaling.summary(online),
    }
    return details, compare_scaling.rows(results, online)


def run_spams(config, workload):
    try:
        import spams  # noqa: F401  (the spams-bin wheel)
    except ImportError as exc:
        log(f"6. SPAMS: skipped, spams cannot be imported ({exc}); pip install spams-bin")
        return {"skipped": str(exc)}, []
    results = [compare_spams.run_size(workload(s), config) for s in each(config.sizes, "6. SPAMS vs eaelib (λ_e = 0)")]
    log("6. numba's compilation: a fresh process's first fit, cold and cached")
    jit = compare_spams.jit_cost(config.sizes[0], config.threads)
    return {"sizes": results, "jit": jit}, compare_spams.rows(results) + compare_spams.jit_rows(jit, config.sizes[0])


def run_collection(config, workload):
    log("7. many images: the collection streamed, and on a 2-worker LocalCluster (own processes)")
    result = compare_collection.run_size(config)
    return result, compare_collection.rows(result)


RUNNERS = {
    "original": run_original,
    "sklearn": run_sklearn,
    "hardware": run_hardware,
    "inference": run_inference,
    "scaling": run_scaling,
    "spams": run_spams,
    "collection": run_collection,
}


def run_comparisons(config):
    """Every comparison of ``config``, in the order of :data:`COMPARISONS`.

    Returns
    -------
    details : dict
        Per comparison, everything measured.
    rows : list of Row
        The targets table.
    """
    workloads = {}

    def workload(size):
        """The workload of ``size``, loaded once; stride 1 is not kept (hundreds of MB)."""
        if size in workloads:
            return workloads[size]
        loaded = make_workload(size, n_atoms=config.n_atoms)
        if size.stride != 1:
            workloads[size] = loaded
        return loaded

    details, rows = {}, []
    for name in COMPARISONS:
        if name in config.comparisons:
            details[name], new_rows = RUNNERS[name](config, workload)
            rows += new_rows
    return details, rows


def _sizes(details, name):
    return details.get(name, {}).get("sizes", [])


def notes(config, details):
    """Caveats that the table alone does not say."""
    out = []
    for r in _sizes(details, "original"):
        o = r["original"]
        if o["n_outer"] < config.original_outer:
            why = (
                f"its {config.original_budget:g} s budget"
                if o["stopped_by_budget"]
                else f"the cap at N ≥ {config.large_n}"
            )
            out.append(
                f"Comparison 1, {r['size']}: the original approach ran {o['n_outer']} of the notebook's "
                f"{config.original_outer} outer iterations ({why}); the comparison is at the energy it reached then "
                "(measured, not extrapolated)."
            )
    for r in _sizes(details, "sklearn"):
        dl = r["dictionary_learning"]
        if dl["n_iter"] < config.sklearn_max_iter:
            out.append(
                f"Comparison 2, {r['size']}: DictionaryLearning ran {dl['n_iter']} iterations (the cap at "
                f"N ≥ {config.large_n}, its tolerance or a budget); the comparison is at its energy then."
            )
    chases = [("1", r, "the original approach", r["eaelib"]) for r in _sizes(details, "original")]
    chases += [
        ("2", r, name.replace("_", " "), r["eaelib"][name])
        for r in _sizes(details, "sklearn")
        for name in ("dictionary_learning", "minibatch")
    ]
    for number, r, whose, reached in chases:
        trace = r["eaelib"]["trace"]
        if reached["seconds"] is None:
            out.append(
                f"Comparison {number}, {r['size']}: eaelib did not reach the energy of {whose}, "
                f"{reached['energy']:.6g} ({len(trace['times'])} outer iterations in {trace['times'][-1]:.3g} s, "
                f"best {min(trace['energies']):.6g}; "
                f"it gives up at {config.eaelib_patience:g}× the reference's time or {config.eaelib_max_outer} outer "
                "iterations): the ratio shown is an upper bound."
            )
    if not config.smoke and all(s.stride != 1 for s in config.scaling_sizes):
        out.append("Stride 1 (N ≈ 390k) was not run: pass --stride1 (comparisons 3 and 5 only).")
    out.append(
        "Comparisons 1, 2 and 4 do not run at stride 1: the original approach, scikit-learn and the exact "
        "transform would take hours there on a few cores."
    )
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description="eaelib's benchmark suite (bench/README.md)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few iterations (< 60 s)")
    parser.add_argument("--stride1", action="store_true", help="add N ≈ 390k (stride 1) to comparisons 3 and 5")
    parser.add_argument("--only", nargs="+", choices=COMPARISONS, help="run only these comparisons")
    parser.add_argument("--repeats", type=int, help="runs behind each eaelib/GEMM median (default 3)")
    parser.add_argument("--reference-repeats", type=int, help="runs behind each slow reference's median (default 1)")
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP threads (default: the libraries' own)")
    parser.add_argument("--original-budget", type=float, help="seconds after which the original approach stops (none)")
    parser.add_argument("--sklearn-budget", type=float, help="seconds after which DictionaryLearning stops (none)")
    parser.add_argument("--out", type=Path, help="output folder (bench/results, or bench/results/smoke with --smoke)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    config = make_config(
        smoke=args.smoke,
        stride1=args.stride1,
        comparisons=tuple(args.only) if args.only else None,
        repeats=args.repeats,
        reference_repeats=args.reference_repeats,
        threads=args.threads,
        original_budget=args.original_budget,
        sklearn_budget=args.sklearn_budget,
    )
    out_dir = args.out or (DEFAULT_OUT / "smoke" if config.smoke else DEFAULT_OUT)
    limits = contextlib.nullcontext()
    if config.threads is not None:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(config.threads)
    start = time.perf_counter()
    with limits:
        meta = machine_info()  # inside the limits: the thread counts recorded are those used
        details, rows = run_comparisons(config)
    meta["elapsed_seconds"] = time.perf_counter() - start
    meta["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results = {
        "meta": meta,
        "config": config.as_dict(),
        "rows": [asdict(r) | {"ratio_text": r.ratio_text, "status": r.status} for r in rows],
        "comparisons": details,
        "notes": notes(config, details),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    results["plots"] = [p.name for p in plots.write_all(results, out_dir)]
    json_path, md_path = report.write(results, out_dir)
    print(report.text_table(rows))
    print(f"\nwritten: {json_path}, {md_path}, " + ", ".join(results["plots"]))
    return results
