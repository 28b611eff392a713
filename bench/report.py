"""The results of a run: the table (console and Markdown), the JSON file and the plots."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class Row:
    """One line of the results table: a measured ratio against its target.

    Parameters
    ----------
    comparison, size : str
        What is compared, and on which data.
    measured : str
        The measurements behind the ratio, in words.
    ratio : float or None
        The compared quantity: a speed-up, a fraction, an exponent.
    target : str
        The target, in words.
    met : bool or None
        Whether the target is met; None where it does not apply.
    ratio_is_upper_bound : bool
        The ratio is only an upper bound (eaelib did not reach the energy in the time it was given).
    ratio_format : {"speedup", "percent", "exponent", "times", "gib"}
        How to print the ratio.
    """

    comparison: str
    size: str
    measured: str
    ratio: float | None
    target: str
    met: bool | None
    ratio_is_upper_bound: bool = False
    ratio_format: str = "speedup"

    @property
    def ratio_text(self):
        """The ratio as printed: ``56.3×``, ``< 0.2×``, ``48%``, ``b = 0.93``."""
        if self.ratio is None:
            return "n/a"
        text = {
            "speedup": f"{self.ratio:.3g}×",
            "times": f"{self.ratio:.1f}×",
            "percent": f"{self.ratio:.0%}",
            "exponent": f"b = {self.ratio:.2f}",
            "gib": f"{self.ratio:.2f} GiB",
        }[self.ratio_format]
        return f"< {text}" if self.ratio_is_upper_bound else text

    @property
    def status(self):
        """``met``, ``NOT met`` or ``n/a``."""
        return {True: "met", False: "NOT met", None: "n/a"}[self.met]


def reach_text(reached, trace):
    """eaelib's way to an energy in words: ``7.44 s (14 outer)`` or why it did not get there."""
    if reached["seconds"] is not None:
        return f"{reached['seconds']:.3g} s ({reached['outer']} outer)"
    return (
        f"not reached in {trace['times'][-1]:.3g} s ({len(trace['times'])} outer, "
        f"best E = {min(trace['energies']):.6g})"
    )


HEADERS = ("comparison", "size (N)", "ratio", "target", "status", "measured")


def _row(fields):
    """A :class:`Row` from its JSON form (which adds ``ratio_text`` and ``status``)."""
    return Row(**{name: fields[name] for name in Row.__dataclass_fields__})


def _cells(row):
    return (row.comparison, row.size, row.ratio_text, row.target, row.status, row.measured)


def text_table(rows):
    """The table for the console, columns aligned."""
    lines = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS) - 1)]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1])
        if k == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * len(HEADERS[-1]))
    return "\n".join(out)


def markdown_table(headers, lines):
    """A GitHub Markdown table."""
    escape = lambda cell: str(cell).replace("|", "\\|")
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(escape(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def header_lines(meta, config):
    """Date, machine, versions, BLAS and settings, as Markdown bullet points."""
    from .measure import blas_summary

    versions = ", ".join(f"{name} {v}" for name, v in meta["versions"].items() if v)
    env = ", ".join(f"{k}={v}" for k, v in meta["blas"]["env"].items() if v is not None) or "none set"
    git = meta["git"]
    modified = " (eaelib/ has uncommitted changes)" if git.get("eaelib_modified") else ""
    load = meta.get("load_average")
    load_end = meta.get("load_average_end")
    lines = [
        f"- **Date**: {meta['date']}; run took {meta.get('elapsed_seconds', float('nan')):.0f} s"
        + (" (smoke run: tiny sizes, not the benchmark)" if config["smoke"] else ""),
        f"- **Machine**: {meta['cpu']}, {meta['cores']} cores ({meta['cores_usable']} usable), "
        f"{meta['memory_gib']} GiB; {meta['platform']}",
        f"- **BLAS**: {blas_summary(meta['blas'])}; BLAS environment: {env}",
        f"- **Threads**: {config['threads'] or 'library default'}; load average at start "
        f"{_load(load)}, at end {_load(load_end)} (a busy machine makes timings noisy)",
        f"- **Versions**: Python {meta['python']}, {versions}",
        f"- **Code**: commit {git.get('commit')}{modified}, eaelib/ digest {git.get('eaelib_sha256')}",
        f"- **Repeats**: eaelib and GEMM timings are medians of {config['repeats']} runs; the slow references "
        f"(original approach, scikit-learn, exact transform) of {config['reference_repeats']}",
    ]
    return lines


def _load(load):
    return "n/a" if not load else "/".join(f"{x:.1f}" for x in load)


def markdown(results):
    """The Markdown report: header, targets table, GEMM rates and per-comparison details."""
    meta, config, rows = results["meta"], results["config"], [_row(r) for r in results["rows"]]
    parts = ["# Benchmark results", "", *header_lines(meta, config), "", "## Targets", ""]
    parts.append(markdown_table(HEADERS, [_cells(r) for r in rows]))
    gemm = results["comparisons"].get("hardware", {}).get("gemm")
    if gemm:
        parts += ["", "## GEMM rate of this machine, measured in this run", ""]
        parts.append(
            markdown_table(
                ("size", "N", "dtype", "(m×m)@(m×N), m = " + str(config["n_atoms"])),
                [(s, n, d, f"{g:.3g} GFLOP/s") for s, n, d, g in gemm],
            )
        )
    details = results["comparisons"]
    if "inference" in details:
        parts += ["", "## Inference (comparison 4)", ""]
        parts.append(
            markdown_table(
                ("size", "encoder patches/s", "exact patches/s", "speed-up", "code error", "PSNR enc", "PSNR exact"),
                [
                    (
                        f"{r['size']} ({r['N']})",
                        f"{r['encoder']['patches_per_second']:.3g}",
                        f"{r['exact']['patches_per_second']:.3g}",
                        f"{r['ratio']:.3g}×",
                        f"{r['code_error_rel']:.3f}",
                        f"{r['encoder']['psnr_db']:.2f} dB",
                        f"{r['exact']['psnr_db']:.2f} dB",
                    )
                    for r in details["inference"]["sizes"]
                ],
            )
        )
    if "scaling" in details:
        parts += ["", "## Scaling (comparison 5)", ""]
        parts.append(
            markdown_table(
                ("size", "N", "s / outer it.", "µs / sample", "Z iterations", "peak alloc.", "peak / X", "peak RSS"),
                [
                    (
                        r["size"],
                        r["N"],
                        f"{r['seconds_per_outer']:.3g}",
                        f"{r['microseconds_per_sample']:.3g}",
                        ", ".join(map(str, r["z_iterations"])),
                        f"{r['peak_bytes'] / 2**20:.0f} MiB",
                        f"{r['peak_over_x']:.1f}×",
                        f"{r['peak_rss_bytes'] / 2**20:.0f} MiB",
                    )
                    for r in details["scaling"]["sizes"]
                ],
            )
        )
    if "collection" in details:
        c = details["collection"]
        parts += ["", "## Many images (comparison 7)", ""]
        parts.append(
            markdown_table(
                ("patches processed", "seconds", "s per million"),
                [(f"{p:,}", f"{t:.3g}", f"{1e6 * t / p:.3g}") for p, t in c["stream"]["checkpoints"]],
            )
        )
        e = c["estimate"]
        parts += [
            "",
            f"Paper estimate, 10⁹ patches on {e['workers']} workers, chunks of {e['chunk']:,} patches (batches of "
            f"{e['batch']:,}): {e['rounds']:.0f} batches per epoch, each {e['round_seconds']:.3g} s = chunk "
            f"{e['chunk_seconds']:.3g} s + client update {e['client_seconds']:.3g} s + network "
            f"{e['network_seconds']:.3g} s ({e['workers']} × ({e['model_bytes'] / 1e3:.0f} kB model down + "
            f"{e['sums_bytes'] / 1e3:.0f} kB sums up) at 10 Gb/s) + scheduler {e['overhead_seconds']:.3g} s; "
            f"{e['training_seconds'] / 3600:.3g} h of training and {e['epoch_seconds'] / 3600:.3g} h with the "
            f"certifying pass, against {e['single_process_seconds'] / 3600:.3g} h per pass in one process.",
        ]
    notes = results.get("notes") or []
    if notes:
        parts += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    plots = results.get("plots") or []
    if plots:
        parts += ["", "## Plots", "", *(f"![{Path(p).stem}]({Path(p).name})" for p in plots)]
    return "\n".join(parts) + "\n"


def _jsonable(value):
    """NumPy scalars and arrays, tuples and dataclasses as plain JSON values; NaN and ∞ as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return value


def write(results, out_dir):
    """Write ``latest.json`` and ``latest.md`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    json_path.write_text(json.dumps(_jsonable(results), indent=1, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path
