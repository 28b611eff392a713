"""The figures of a run, written as PNG files next to the tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter, LogLocator


def _plain_log_ticks(ax, which="xy"):
    """Log axes labelled in plain numbers at 1, 2 and 5 times the powers of ten (no overlapping labels)."""
    for axis in [ax.xaxis] * ("x" in which) + [ax.yaxis] * ("y" in which):
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_formatter(FormatStrFormatter("%g"))


def energy_vs_time(comparisons, path):
    """Energy against time of every learner, one panel per comparison and size.

    Returns
    -------
    Path or None
        ``path``, or None when neither learning comparison ran.
    """
    panels = []
    for r in comparisons.get("original", {}).get("sizes", []):
        original, trace = r["original"], r["eaelib"]["trace"]
        curves = [
            ("original (pyunlocbox)", original["times"], original["energies"], "o-"),
            ("eaelib", [0.0, *trace["times"]], [original["energies"][0], *trace["energies"]], "s-"),
        ]
        panels.append((f"1. vs original, {r['size']} ({r['N']})", curves, r["target_energy"], []))
    for r in comparisons.get("sklearn", {}).get("sizes", []):
        dl, mb, eae = r["dictionary_learning"], r["minibatch"], r["eaelib"]
        curves = [
            ("sklearn DictionaryLearning", dl["times"], dl["energies"], "o-"),
            ("eaelib (λ_e = 0)", [0.0, *eae["trace"]["times"]], [dl["energies"][0], *eae["trace"]["energies"]], "s-"),
        ]
        points = [("sklearn MiniBatch", mb["seconds"], mb["energy"])]
        panels.append((f"2. vs scikit-learn, {r['size']} ({r['N']})", curves, dl["energy"], points))
    if not panels:
        return None
    columns = min(len(panels), 2)
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4 * rows), squeeze=False)
    for ax, (title, curves, target, points) in zip(axes.flat, panels, strict=False):
        for label, times, energies, style in curves:
            ax.plot(times[1:], energies[1:], style, ms=3, label=label)  # from the first iteration: log axes
        for label, t, e in points:
            ax.plot([t], [e], "D", ms=7, label=label)
        ax.axhline(target, color="gray", lw=0.8, ls="--", label="target energy")
        ax.set(xscale="log", yscale="log", xlabel="time (s)", ylabel="energy", title=title)
        _plain_log_ticks(ax)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def zstep_rate(results, path):
    """Achieved Z-step rate and GEMM rate per size and dtype (bars), with the fraction on top."""
    if not results:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    width, labels = 0.2, [f"{r['size']}\n({r['N']})" for r in results]
    bars = [
        ("float64 Z-step", "float64", "zstep"),
        ("float64 GEMM", "float64", "gemm"),
        ("float32 Z-step", "float32", "zstep"),
        ("float32 GEMM", "float32", "gemm"),
    ]
    for k, (label, dtype, part) in enumerate(bars):
        x = [i + (k - 1.5) * width for i in range(len(results))]
        heights = [r[dtype][part]["gflops"] for r in results]
        drawn = ax.bar(x, heights, width, label=label)
        if part == "zstep":
            ax.bar_label(drawn, [f"{r[dtype]['fraction']:.0%}" for r in results], fontsize=8)
    ax.set_xticks(range(len(results)), labels)
    ax.set(ylabel="GFLOP/s", title="Z-step FLOP rate against the GEMM rate (label: fraction)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def scaling(results, path):
    """Time per outer iteration and peak memory over the size of X, against N."""
    if not results:
        return None
    N = [r["N"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    seconds = [r["seconds_per_outer"] for r in results]
    left.loglog(N, seconds, "o-", label="eaelib")
    left.loglog(N, [seconds[-1] * n / N[-1] for n in N], "k--", lw=0.8, label="∝ N")
    left.set(xlabel="N (patches)", ylabel="seconds per outer iteration", title="Time per outer iteration")
    _plain_log_ticks(left)
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    right.semilogx(N, [r["peak_over_x"] for r in results], "o-", label="peak allocated / size of X")
    right.axhline(3.0, color="gray", ls="--", lw=0.8, label="target 3×")
    right.set(xlabel="N (patches)", ylabel="× size of X", title="Peak memory while learning", ylim=(0, None))
    _plain_log_ticks(right, "x")
    right.grid(True, which="both", alpha=0.3)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_all(results, out_dir):
    """Every figure that the comparisons run allow; returns the paths written."""
    out_dir = Path(out_dir)
    comparisons = results["comparisons"]
    written = [
        energy_vs_time(comparisons, out_dir / "energy_vs_time.png"),
        zstep_rate(comparisons.get("hardware", {}).get("sizes", []), out_dir / "zstep_rate.png"),
        scaling(comparisons.get("scaling", {}).get("sizes", []), out_dir / "scaling.png"),
    ]
    return [p for p in written if p is not None]
