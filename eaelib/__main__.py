"""Command line: ``python -m eaelib learn IMAGE --out DIR`` (also installed as ``eaelib``).

Learns a dictionary and an encoder from the patches of an image, prints a
summary and writes the model, its figures and ``summary.json`` into ``DIR``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ._array import BACKENDS, DTYPES, backend_namespace, to_numpy

FIGURES = ("convergence.png", "inner.png", "atoms.png", "norms.png", "codes.png")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {text!r}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def build_parser():
    """The argument parser of the ``eaelib`` command."""
    parser = argparse.ArgumentParser(
        prog="eaelib",
        description="Energy auto-encoder: sparse coding with a learned dictionary D and a learned linear encoder E.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    learn = commands.add_parser(
        "learn",
        help="learn D and E from the patches of an image",
        description=(
            "Learn a dictionary D and an encoder E from the square patches of a grayscale image by minimizing "
            "λ_d/2‖X − DZ‖² + λ_e/2‖Z − EX‖² + λ_s‖Z‖₁; print a summary and write model.npz, the figures "
            f"{', '.join(FIGURES)} and summary.json into DIR."
        ),
    )
    learn.add_argument("image", metavar="IMAGE", help='image file (any format Pillow reads) or the name "barbara"')
    learn.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        type=Path,
        help="output folder, created if needed; files in it are overwritten",
    )
    learn.add_argument(
        "--patch-size",
        type=_positive_int,
        default=12,
        metavar="P",
        help="side of the square patches (default: %(default)s)",
    )
    learn.add_argument(
        "--stride",
        type=_positive_int,
        default=None,
        metavar="S",
        help="step between patches (default: the patch size, i.e. non-overlapping patches)",
    )
    learn.add_argument(
        "--n-atoms",
        type=_positive_int,
        default=200,
        metavar="M",
        help="number of atoms (columns of D) (default: %(default)s)",
    )
    learn.add_argument(
        "--lambda-d",
        type=_non_negative_float,
        default=10.0,
        metavar="W",
        help="weight λ_d of the reconstruction term (default: %(default)s)",
    )
    learn.add_argument(
        "--lambda-e",
        type=_non_negative_float,
        default=10.0,
        metavar="W",
        help="weight λ_e of the encoder term (default: %(default)s)",
    )
    learn.add_argument(
        "--lambda-s",
        type=_non_negative_float,
        default=1.0,
        metavar="W",
        help="weight λ_s of the sparsity term (default: %(default)s)",
    )
    learn.add_argument(
        "--max-outer", type=_positive_int, default=20, metavar="K", help="most outer iterations (default: %(default)s)"
    )
    learn.add_argument(
        "--max-inner",
        type=_positive_int,
        default=100,
        metavar="K",
        help="most FISTA iterations per subproblem (default: %(default)s)",
    )
    learn.add_argument(
        "--rtol",
        type=_non_negative_float,
        default=1e-3,
        metavar="TOL",
        help="stop when an outer iteration lowers the energy by less than this fraction (default: %(default)s)",
    )
    learn.add_argument(
        "--seed", type=_seed, default=0, help="seed of the random initialization of D (default: %(default)s)"
    )
    learn.add_argument(
        "--dtype", choices=DTYPES[::-1], default="float64", help="floating type to compute with (default: %(default)s)"
    )
    learn.add_argument(
        "--backend", choices=BACKENDS, default="numpy", help="array library to compute with (default: %(default)s)"
    )
    learn.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    learn.set_defaults(run=learn_command, command_parser=learn)
    return parser


def _check_args(args):
    """Checks that need more than one option, or an import: usage errors (exit code 2)."""
    learn = args.command_parser
    if args.lambda_d == args.lambda_e == args.lambda_s == 0:
        learn.error("--lambda-d, --lambda-e and --lambda-s cannot all be 0")
    try:
        backend_namespace(args.backend)
    except ImportError as exc:
        learn.error(f"argument --backend: {exc}")
    try:
        from .plot import _figure

        _figure()  # fail now, not after learning, when matplotlib is missing
    except ImportError as exc:
        learn.error(str(exc))


def learn_command(args, out=None):
    """Run ``eaelib learn`` with parsed ``args``, printing to ``out`` (stdout); returns the summary as a dict."""
    from . import EnergyAutoEncoder, constraint_violation, extract_patches, load_image
    from .model_io import save_model
    from .plot import plot_atoms, plot_code_sparsity, plot_energy, plot_inner_convergence, plot_norms

    out = sys.stdout if out is None else out
    learn_parser = args.command_parser

    try:
        image = load_image(args.image)
    except (FileNotFoundError, ValueError) as exc:
        learn_parser.error(f"argument IMAGE: {exc}")
    stride = args.patch_size if args.stride is None else args.stride
    try:
        X = extract_patches(image, args.patch_size, stride)
    except ValueError as exc:
        learn_parser.error(f"argument --patch-size/--stride: {exc}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        learn_parser.error(f"argument --out: cannot create {str(args.out)!r}: {exc}")

    model = EnergyAutoEncoder(
        args.n_atoms,
        lambda_d=args.lambda_d,
        lambda_e=args.lambda_e,
        lambda_s=args.lambda_s,
        max_outer=args.max_outer,
        max_inner=args.max_inner,
        rtol=args.rtol,
        random_state=args.seed,
        backend=args.backend,
        dtype=args.dtype,
        progress=not args.no_progress,
    )
    start = time.perf_counter()
    model.fit(X)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    codes = model.transform(X)
    transform_elapsed = time.perf_counter() - start
    history = model.objective_history_
    nonzero = np.asarray(to_numpy(codes)) != 0
    summary = {
        "image": str(args.image),
        "image_shape": list(image.shape),
        "patch_size": args.patch_size,
        "stride": stride,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "params": model.get_params(),
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "energy": dict(model.energy_history_[-1]),
        "initial_energy": history[0],
        "final_energy": history[-1],
        "monotone": all(b <= a for a, b in itertools.pairwise(history)),
        "constraint_violation": constraint_violation(model.D_, model.E_),
        "nonzero_fraction": float(nonzero.mean()),
        "nonzero_per_sample": float(nonzero.sum(axis=1).mean()),
        "elapsed_s": elapsed,
        "transform_elapsed_s": transform_elapsed,
        "files": ["model.npz", *FIGURES, "summary.json"],
    }
    _print_summary(summary, out)

    save_model(model, args.out / "model.npz")
    figures = {
        "convergence.png": plot_energy(model),
        "inner.png": plot_inner_convergence(model),
        "atoms.png": plot_atoms(model.D_, args.patch_size),
        "norms.png": plot_norms(model),
        "codes.png": plot_code_sparsity(codes),
    }
    for name, fig in figures.items():
        fig.savefig(args.out / name, dpi=120)
    with open(args.out / "summary.json", "w", encoding="utf-8") as file:
        json.dump(summary, file, indent=2, ensure_ascii=False)
        file.write("\n")
    print(f"wrote {', '.join(summary['files'])} into {args.out}", file=out)
    return summary


def _print_summary(s, out):
    p = s["params"]
    lines = [
        f"image {s['image']} {s['image_shape'][0]}×{s['image_shape'][1]}: {s['n_samples']} patches "
        f"of {s['patch_size']}×{s['patch_size']} (stride {s['stride']}), {s['n_features']} features",
        f"model: {p['n_atoms']} atoms, λ_d={p['lambda_d']:g} λ_e={p['lambda_e']:g} λ_s={p['lambda_s']:g}, "
        f"{p['dtype']} on {p['backend']}",
        f"outer iterations: {s['n_iter']} ({'converged' if s['converged'] else 'not converged'}, "
        f"rtol={p['rtol']:g}, max_outer={p['max_outer']})",
        f"energy: {s['initial_energy']:.6g} at initialization → {s['final_energy']:.6g}",
        *(f"  {term:<9} {s['energy'][term]:.6g}" for term in ("data", "encoder", "sparsity")),
        f"energy history monotone: {'yes' if s['monotone'] else 'NO'}",
        f"largest constraint violation (max column norm − 1): {s['constraint_violation']:.3g}",
        f"non-zero codes: {100 * s['nonzero_fraction']:.3g} % ({s['nonzero_per_sample']:.3g} of {p['n_atoms']} "
        "atoms per patch, exact codes)",
        f"elapsed: {s['elapsed_s']:.2f} s learning, {s['transform_elapsed_s']:.2f} s exact codes",
    ]
    print("\n".join(lines), file=out)


def main(argv=None):
    """Entry point of ``python -m eaelib`` and of the ``eaelib`` script; returns the exit code.

    ``argv`` defaults to ``sys.argv[1:]``. Bad arguments, including a missing
    or unreadable image, print a usage error naming the option and give exit
    code 2; a failure while learning gives exit code 1.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_args(args)
        args.run(args)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except FloatingPointError as exc:
        print(f"eaelib {args.command}: error: learning failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
