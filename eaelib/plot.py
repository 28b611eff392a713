"""Figures of a fitted energy auto-encoder: energy, inner convergence, atoms, norms and codes.

Every function returns a :class:`matplotlib.figure.Figure` built directly,
without pyplot's global state, so it works headless, in scripts and in
notebooks (where a returned figure is displayed). Save one with
``fig.savefig("name.png")``. Arrays of any supported library are accepted.

matplotlib is imported only when a figure is made: ``pip install matplotlib``.
"""

from __future__ import annotations

import math

import numpy as np

from ._array import to_numpy
from ._optional import require
from .subproblems import ENERGY_TERMS

#: Terms of the energy, in the order and colours they are drawn.
TERMS = ENERGY_TERMS[:-1]  # the total is plotted on its own
TERM_LABELS = {
    "data": "data  λ_d/2‖X − DZ‖²",
    "encoder": "encoder  λ_e/2‖Z − EX‖²",
    "sparsity": "sparsity  λ_s‖Z‖₁",
    "graph": "graph  λ_g/2 tr(ZLZᵀ)",
}
TERM_COLORS = {"data": "C0", "encoder": "C1", "sparsity": "C2", "graph": "C3"}
SUBPROBLEMS = {
    "Z": ("Z-subproblem (codes)", "lambda_d, lambda_e and lambda_s"),
    "D": ("D-subproblem (dictionary)", "lambda_d"),
    "E": ("E-subproblem (encoder)", "lambda_e"),
}


def _figure(**kwargs):
    """A new :class:`matplotlib.figure.Figure` (constrained layout), importing matplotlib on first use."""
    Figure = require("matplotlib.figure", "eaelib.plot").Figure
    kwargs.setdefault("layout", "constrained")
    return Figure(**kwargs)


def _check_fitted(model, *attributes):
    missing = [name for name in attributes if not hasattr(model, name)]
    if missing:
        raise ValueError(
            f"model must be a fitted EnergyAutoEncoder (missing {', '.join(missing)}): call fit or load_model first"
        )


def _positive(values):
    """``values`` as float64 with non-positive entries as NaN: a log axis leaves them out."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, values, np.nan)


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_energy(model):
    """Energy of a fitted model per outer iteration, in total and term by term.

    Parameters
    ----------
    model : EnergyAutoEncoder
        Fitted (or loaded) model, with ``energy_history_``.

    Returns
    -------
    matplotlib.figure.Figure
        One log-scale axes: the total (first line, black), then every term that
        is non-zero somewhere in the history. Iteration 0 is the
        initialization; values that are 0 there (e.g. sparsity with ``Z = 0``)
        are left out of the log scale.
    """
    _check_fitted(model, "energy_history_")
    history = model.energy_history_
    # An online fit certifies every certify_every epochs: its history says which (older models: every one).
    iterations = np.asarray(getattr(model, "history_iterations_", range(len(history))))
    fig = _figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    total = np.array([terms["total"] for terms in history], dtype=np.float64)
    ax.semilogy(iterations, _positive(total), "k-o", ms=4, lw=2, label="total energy")
    for name in TERMS:
        values = np.array([terms.get(name, 0.0) for terms in history], dtype=np.float64)
        if np.any(values != 0):
            ax.semilogy(
                iterations, _positive(values), "-", marker=".", color=TERM_COLORS[name], label=TERM_LABELS[name]
            )
    ax.axvline(0, color="0.6", ls=":", lw=1)
    ax.annotate(
        "initialization",
        xy=(0, 1),
        xycoords=("data", "axes fraction"),
        xytext=(3, -3),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize="small",
        color="0.4",
    )
    _integer_ticks(ax)
    ax.set_xlim(-0.3, max(len(history) - 1, 1) + 0.3)
    ax.set_xlabel("outer iteration")
    ax.set_ylabel("energy")
    status = "converged" if getattr(model, "converged_", False) else "not converged"
    ax.set_title(f"Energy: {total[-1]:.6g} after {len(history) - 1} outer iterations ({status})", fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="upper right")
    return fig


def plot_inner_convergence(model):
    """Each subproblem's duality gap along its inner iterations, concatenated over outer iterations.

    The codes are solved by FISTA, D and E by Newton's method on their
    Lagrange dual; every inner iteration records its certificate, the
    duality gap: an upper bound on what that subproblem could still gain.
    Every solve starts at the previous solution, where the gap is what the
    other blocks' moves opened again: the sawtooth.

    Parameters
    ----------
    model : EnergyAutoEncoder
        Fitted model, with ``inner_history_`` (a loaded model has none: its
        panels say so).

    Returns
    -------
    matplotlib.figure.Figure
        Three log-scale axes, for the Z, D and E subproblems, in that order,
        each with one line, the duality gap. Faint vertical lines mark where a
        new outer iteration starts, with a warm start from the previous solution.
    """
    _check_fitted(model, "inner_history_")
    fig = _figure(figsize=(6.4, 8.0))
    axes = fig.subplots(3, 1)
    for ax, name in zip(axes, SUBPROBLEMS, strict=True):
        title, weight = SUBPROBLEMS[name]
        traces = [trace for trace in model.inner_history_ if trace.subproblem == name]
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel("duality gap")
        if not traces:
            why = (
                "no inner history (loaded models have none)"
                if not model.inner_history_
                else f"not solved ({weight} = 0)"
            )
            ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        gaps = np.concatenate([np.asarray(trace.certificate, dtype=np.float64) for trace in traces])
        starts = np.cumsum([0] + [len(trace.certificate) for trace in traces[:-1]])
        steps = np.arange(gaps.size)
        ax.semilogy(steps, _positive(gaps), "k-", lw=1.2, label="duality gap")
        if starts.size > 1:
            ax.vlines(starts[1:], 0, 1, transform=ax.get_xaxis_transform(), colors="0.8", lw=0.8, zorder=0)
        ax.set_xlim(0, max(gaps.size - 1, 1))
        ax.grid(True, axis="y", which="major", alpha=0.3)
    axes[-1].set_xlabel("inner iteration (FISTA for Z, Newton on the dual for D and E), concatenated")
    return fig


def _patch_shape(n_features, patch_size):
    if patch_size is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"patch_size must be given: D has {n_features} rows, which is not a square number of pixels"
            )
        return side, side
    shape = (patch_size, patch_size) if np.ndim(patch_size) == 0 else tuple(patch_size)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise ValueError(f"patch_size must be an integer or a pair (height, width) of integers, got {patch_size!r}")
    if shape[0] < 1 or shape[1] < 1 or shape[0] * shape[1] != n_features:
        raise ValueError(
            f"patch_size {patch_size!r} does not fit D: atoms have {n_features} pixels, "
            f"not {shape[0]} × {shape[1]} = {shape[0] * shape[1]}"
        )
    return shape


def _atom_mosaic(D, patch_size=None, max_atoms=None):
    """The atoms of ``D`` tiled into one image, each rescaled to [0, 1]; NaN between tiles.

    Returns ``(mosaic, (n_rows, n_cols))``. See :func:`plot_atoms` for the parameters.
    """
    D = to_numpy(D)
    if D.ndim != 2:
        raise ValueError(f"D must be a 2-D array of shape (n_features, n_atoms), got shape {D.shape}")
    height, width = _patch_shape(D.shape[0], patch_size)
    n_atoms = D.shape[1]
    if max_atoms is not None:
        if isinstance(max_atoms, bool) or not isinstance(max_atoms, (int, np.integer)) or max_atoms < 1:
            raise ValueError(f"max_atoms must be a positive integer or None, got {max_atoms!r}")
        n_atoms = min(n_atoms, int(max_atoms))
    n_cols = max(math.ceil(math.sqrt(n_atoms)), 1)
    n_rows = max(math.ceil(n_atoms / n_cols), 1)
    mosaic = np.full((n_rows * (height + 1) + 1, n_cols * (width + 1) + 1), np.nan)
    for j in range(n_atoms):
        atom = D[:, j].astype(np.float64).reshape(height, width)  # rows of pixels, as extract_patches flattens
        low, high = atom.min(), atom.max()
        atom = (atom - low) / (high - low) if high > low else np.full_like(atom, 0.5)
        r, c = divmod(j, n_cols)
        mosaic[1 + r * (height + 1) : (r + 1) * (height + 1), 1 + c * (width + 1) : (c + 1) * (width + 1)] = atom
    return mosaic, (n_rows, n_cols)


def plot_atoms(D, patch_size=None, max_atoms=None):
    """The atoms (columns of ``D``) as a grid of small grayscale images.

    Parameters
    ----------
    D : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns (``model.D_``).
    patch_size : int or (int, int), optional
        Side (or height and width) of the patches; ``sqrt(n_features)`` by
        default, which must then be an integer.
    max_atoms : int, optional
        Show only the first ``max_atoms`` atoms.

    Returns
    -------
    matplotlib.figure.Figure
        One axes showing a single mosaic image, row-major in atom order. Each
        atom has its own colour scale: its minimum is black and its maximum
        white (a constant atom is mid-gray).

    Raises
    ------
    ValueError
        If ``patch_size`` does not match the number of rows of ``D``.
    """
    D = to_numpy(D)
    mosaic, (n_rows, n_cols) = _atom_mosaic(D, patch_size, max_atoms)
    n_shown = min(D.shape[1], max_atoms) if max_atoms is not None else D.shape[1]
    size = min(9.0, max(3.0, 0.45 * max(n_rows, n_cols)))
    fig = _figure(figsize=(size, size * n_rows / n_cols + 0.4))
    ax = fig.add_subplot()
    from matplotlib import colormaps

    ax.imshow(mosaic, cmap=colormaps["gray"].with_extremes(bad="white"), vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    total = D.shape[1]
    ax.set_title(f"{n_shown} of {total} atoms" if n_shown < total else f"{total} atoms", fontsize="medium")
    return fig


def plot_norms(model):
    """Column norms of the dictionary ``D_`` and of the encoder ``E_``, against their bound 1.

    Parameters
    ----------
    model : EnergyAutoEncoder
        Fitted (or loaded) model.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the norms of the atoms (columns of ``D_``, one per atom) and
        of the columns of ``E_`` (one per feature); in each, the first line
        holds the norms and the second, dashed, the constraint ‖·‖₂ ≤ 1.
    """
    _check_fitted(model, "D_", "E_")
    fig = _figure(figsize=(6.4, 5.6))
    axes = fig.subplots(2, 1)
    for ax, matrix, what, index in (
        (axes[0], model.D_, "atoms: columns of D", "atom"),
        (axes[1], model.E_, "encoder: columns of E", "feature (pixel)"),
    ):
        norms = np.linalg.norm(to_numpy(matrix, dtype=np.float64), axis=0)
        ax.plot(np.arange(norms.size), norms, "o", ms=3, color="C0", label="‖column‖₂")
        ax.axhline(1.0, color="C3", ls="--", lw=1, label="bound 1")
        ax.set_ylim(0, max(1.0, float(norms.max(initial=0.0))) * 1.08)
        ax.set_xlabel(index)
        ax.set_ylabel("ℓ2 norm")
        ax.set_title(f"{what} (max {norms.max(initial=0.0):.4g})", fontsize="medium")
        _integer_ticks(ax)
        ax.legend(fontsize="small", loc="lower right")
    return fig


def plot_code_sparsity(Z):
    """Which codes are non-zero: pattern, non-zeros per sample and usage of every atom.

    Parameters
    ----------
    Z : array, shape (n_samples, n_atoms)
        Codes with samples as rows, as returned by ``model.transform``.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes: the non-zero pattern as an image (atoms × samples, black
        where non-zero), a histogram of the number of non-zeros per sample,
        and a bar chart of how many samples use each atom.
    """
    Z = to_numpy(Z)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-D array of shape (n_samples, n_atoms), got shape {Z.shape}")
    nonzero = Z != 0
    n_samples, n_atoms = nonzero.shape
    per_sample = nonzero.sum(axis=1)
    per_atom = nonzero.sum(axis=0)
    fraction = float(nonzero.mean()) if nonzero.size else 0.0
    fig = _figure(figsize=(8.0, 7.0))
    axes = fig.subplot_mosaic([["pattern", "pattern"], ["per_sample", "per_atom"]], height_ratios=[1.2, 1])
    ax = axes["pattern"]
    # Antialiased: where samples outnumber pixels, a pixel's gray is the density of non-zeros it covers.
    ax.imshow(nonzero.T, aspect="auto", interpolation="antialiased", cmap="gray_r", vmin=0, vmax=1)
    ax.set_xlabel("sample")
    ax.set_ylabel("atom")
    ax.set_title(f"non-zero codes: {100 * fraction:.3g} % of {n_atoms} × {n_samples}", fontsize="medium")
    ax = axes["per_sample"]
    top = int(per_sample.max(initial=0))
    width = max(1, math.ceil((top + 1) / 60))  # whole numbers per bin: no aliasing of the integer counts
    ax.hist(per_sample, bins=np.arange(0, top + width + 1, width) - 0.5, color="C0")
    ax.set_xlabel("non-zeros per sample")
    ax.set_ylabel("samples")
    ax.set_title(f"mean {per_sample.mean() if n_samples else 0.0:.3g} per sample", fontsize="medium")
    ax = axes["per_atom"]
    ax.bar(np.arange(n_atoms), per_atom, width=1.0, color="C1")
    ax.set_xlabel("atom")
    ax.set_ylabel("samples using it")
    ax.set_title(f"{int(np.sum(per_atom == 0))} atoms never used", fontsize="medium")
    _integer_ticks(ax)
    return fig
