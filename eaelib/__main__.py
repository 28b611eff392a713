"""The command line, ``eaelib`` (also ``python -m eaelib``).

::

    eaelib learn IMAGE --out DIR              learn D and E from the patches of an image
    eaelib encode MODEL IMAGE --out DIR       codes of an image's patches, its reconstruction and PSNR
    eaelib reconstruct MODEL CODES --out DIR  the image back from the codes that encode wrote
    eaelib denoise MODEL IMAGE --out DIR      denoise an image (after adding noise of σ, with --sigma)

Every command prints a summary (``--quiet``: nothing; ``--json``: the summary as JSON) and writes it,
with its results, into ``DIR``. Exit codes: 0 done, 1 a failure while computing, 2 a usage error
(bad option, unreadable file, missing optional dependency: the message names the argument, or the
packages and their install line), 130 interrupted by Ctrl-C.

The command line only parses and prints: ``learn`` is in :mod:`eaelib._cli_learn`, what the commands share
(the model's options, generated from the estimator's parameter table; usage errors; files) in
:mod:`eaelib._cli`, and what they compute in the library.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ._cli import (
    CODES_FILE,
    EXIT_INTERRUPTED,
    MODEL_FILE,
    Interrupted,
    crop,
    make_out,
    number,
    output_options,
    read_image,
    read_model,
    show_progress,
    usage_error,
    write_summary,
)
from ._cli_learn import add_parser
from ._version import __version__
from .estimator import TRANSFORM_METHODS
from .learning import SourceError
from .patches import PatchLayout, patch_grid

# denoise's default stride: on a 512 × 512 photo at σ = 20 with the model its help suggests, stride 1 coded
# 251,001 patches in 21 s for 29.34 dB, stride 2 63,001 in 6.7 s for 29.30 dB, stride 4 15,876 in 1.3 s for
# 29.22 dB (2026-12-06, this machine, 2 threads); the default model's denser codes take about 5 times longer.
DENOISE_STRIDE = 2


def build_parser():
    """The argument parser of the ``eaelib`` command."""
    parser = argparse.ArgumentParser(
        prog="eaelib",
        description="Energy auto-encoder: sparse coding with a learned dictionary D and a learned linear encoder E.",
        epilog="Exit codes: 0 done, 1 failure while computing, 2 usage error, 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"eaelib {__version__}")
    output = output_options()
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser(commands, output)
    _add_encode_parser(commands, output)
    _add_reconstruct_parser(commands, output)
    _add_denoise_parser(commands, output)
    return parser


def _add_encode_parser(commands, output):
    encode = commands.add_parser(
        "encode",
        parents=[output],
        help="codes of an image's patches under a learned model, the reconstruction and its PSNR",
        description=(
            "Cut IMAGE into patches as the model's were cut (patch size, stride and centring from the model "
            f"file), code them, and rebuild the image from the codes; write {CODES_FILE} (for `eaelib "
            "reconstruct`), reconstruction.png and summary.json into DIR. Pixels that no patch covers (a border "
            "narrower than the stride) are left out of the reconstruction and of the PSNR."
        ),
    )
    encode.add_argument(
        "model", metavar="MODEL", type=Path, help=f"model file written by `eaelib learn` ({MODEL_FILE})"
    )
    encode.add_argument("image", metavar="IMAGE", help='image file or the name "barbara"')
    encode.add_argument(
        "--method",
        choices=TRANSFORM_METHODS,
        default="exact",
        help="exact: solve for the codes; encoder: E x, one product (default: %(default)s)",
    )
    encode.set_defaults(run=encode_command, command_parser=encode)


def _add_reconstruct_parser(commands, output):
    reconstruct = commands.add_parser(
        "reconstruct",
        parents=[output],
        help="the image back from codes written by encode",
        description=f"Rebuild the image from {CODES_FILE} and the model; write reconstruction.png and summary.json.",
    )
    reconstruct.add_argument("model", metavar="MODEL", type=Path, help="model file written by `eaelib learn`")
    reconstruct.add_argument(
        "codes", metavar="CODES", type=Path, help=f"codes file written by `eaelib encode` ({CODES_FILE})"
    )
    reconstruct.add_argument(
        "--reference", metavar="IMAGE", help="image to compare the reconstruction with (PSNR), e.g. the encoded one"
    )
    reconstruct.set_defaults(run=reconstruct_command, command_parser=reconstruct)


def _add_denoise_parser(commands, output):
    denoise = commands.add_parser(
        "denoise",
        parents=[output],
        help="denoise an image with a learned model",
        description=(
            "Code every patch of IMAGE (at every STRIDE pixels) with the model, rebuild each patch, and average "
            "the overlapping patches; write denoised.png and summary.json into DIR. With --sigma, Gaussian noise "
            "of that standard deviation is added to IMAGE first (written as noisy.png) and the PSNRs of the noisy "
            "and the denoised images against IMAGE are reported. A model for denoising is learned from centred "
            "patches with λ_s proportional to σ: `eaelib learn --center --lambda-d 1 --lambda-e 0.03 "
            "--lambda-s 0.12` for σ = 20 (λ_s = 1.5 σ/255, as in the book's chapter Denoising)."
        ),
    )
    denoise.add_argument("model", metavar="MODEL", type=Path, help="model file written by `eaelib learn`")
    denoise.add_argument("image", metavar="IMAGE", help='image file or the name "barbara"')
    denoise.add_argument(
        "--sigma",
        type=number("real", 0.0),
        default=None,
        metavar="σ",
        help="add Gaussian noise of standard deviation σ (on the 0–255 scale) to IMAGE first, and report PSNRs",
    )
    denoise.add_argument("--seed", type=number("int", 0), default=0, help="seed of the noise (default: 0)")
    denoise.add_argument(
        "--method",
        choices=TRANSFORM_METHODS,
        default="exact",
        help="exact: solve for the codes; encoder: E x, one product, faster (default: %(default)s)",
    )
    denoise.add_argument(
        "--stride",
        type=number("int", 1),
        default=DENOISE_STRIDE,
        metavar="S",
        help="step between the patches coded: 1 codes every overlapping patch, 4 times the patches of stride 2, "
        "for a few hundredths of a dB; larger is faster and coarser, and crops up to S − 1 pixels that no patch "
        "covers (default: %(default)s)",
    )
    denoise.set_defaults(run=denoise_command, command_parser=denoise)


# -- encode and reconstruct --------------------------------------------------------------------------------


def encode_command(args, out=None, err=None):
    """Run ``eaelib encode``: codes of IMAGE's patches, the reconstruction and its PSNR."""
    from .analysis import code_sparsity, psnr
    from .image import save_image
    from .model_io import ImageCodes, write_codes

    model = read_model(args, args.model)
    model.set_params(progress=show_progress(args))
    layout = model.patch_layout_
    image = read_image(args, args.image)
    try:
        X, means = layout.extract(image)
    except ValueError as exc:
        usage_error(args, f"argument IMAGE: {exc}")
    make_out(args)
    start = time.perf_counter()
    codes = model.transform(X, method=args.method)
    elapsed = time.perf_counter() - start
    shape = layout.covered_shape(image.shape)
    reconstruction = layout.rebuild(model.inverse_transform(codes), means, shape)
    write_codes(args.out / CODES_FILE, ImageCodes(codes, layout, shape, args.method, means))
    save_image(args.out / "reconstruction.png", reconstruction)
    sparsity = code_sparsity(codes)
    summary = {
        "model": str(args.model),
        "image": str(args.image),
        "image_shape": list(image.shape),
        "covered_shape": list(shape),
        "n_patches": int(X.shape[0]),
        "method": args.method,
        "psnr_db": psnr(crop(image, shape), reconstruction),
        "nonzero_fraction": sparsity.nonzero_fraction,
        "nonzero_per_sample": sparsity.mean_per_sample,
        "elapsed_s": elapsed,
        "files": [CODES_FILE, "reconstruction.png", "summary.json"],
    }
    lines = [
        f"image {args.image} {image.shape[0]}×{image.shape[1]}: {X.shape[0]} patches of {layout.size}×{layout.size} "
        f"(stride {layout.stride}{', centred' if layout.centered else ''}), covering {shape[0]}×{shape[1]}",
        f"codes ({args.method}): {100 * sparsity.nonzero_fraction:.3g} % non-zero ({sparsity.mean_per_sample:.3g} "
        f"of {model.n_atoms} atoms per patch), {elapsed:.2f} s",
        f"reconstruction: PSNR {summary['psnr_db']:.2f} dB",
        f"wrote {', '.join(summary['files'])} into {args.out}",
    ]
    write_summary(args, summary, lines, out)
    return summary


def reconstruct_command(args, out=None, err=None):
    """Run ``eaelib reconstruct``: the image from the codes that ``encode`` wrote."""
    from .analysis import psnr
    from .image import save_image
    from .model_io import read_codes

    model = read_model(args, args.model, need_layout=False)
    try:
        stored = read_codes(args.codes)
    except (FileNotFoundError, ValueError) as exc:
        usage_error(args, f"argument CODES: {exc}")
    layout, codes, shape = stored.layout, stored.codes, stored.image_shape
    if model.patch_layout_ is not None and model.patch_layout_ != layout:
        usage_error(args, f"argument CODES: cut as {layout}, but the model's patches were cut as {model.patch_layout_}")
    reference = None if args.reference is None else read_image(args, args.reference, "--reference")
    try:
        reconstruction = layout.rebuild(model.inverse_transform(codes), stored.means, shape)
    except ValueError as exc:
        usage_error(args, f"argument CODES: {exc}")
    make_out(args)
    save_image(args.out / "reconstruction.png", reconstruction)
    summary = {
        "model": str(args.model),
        "codes": str(args.codes),
        "image_shape": list(shape),
        "n_patches": int(codes.shape[0]),
        "method": stored.method,
        "psnr_db": None,
        "files": ["reconstruction.png", "summary.json"],
    }
    lines = [f"{codes.shape[0]} patch codes ({summary['method']}) → a {shape[0]}×{shape[1]} image"]
    if reference is not None:
        if reference.shape[0] < shape[0] or reference.shape[1] < shape[1]:
            usage_error(args, f"argument --reference: {reference.shape} is smaller than the reconstruction {shape}")
        summary["psnr_db"] = psnr(crop(reference, shape), reconstruction)
        lines.append(f"PSNR against {args.reference}: {summary['psnr_db']:.2f} dB")
    lines.append(f"wrote {', '.join(summary['files'])} into {args.out}")
    write_summary(args, summary, lines, out)
    return summary


# -- denoise -----------------------------------------------------------------------------------------------


def denoise_command(args, out=None, err=None):
    """Run ``eaelib denoise``: code every overlapping patch and average them back into an image."""
    from .analysis import psnr
    from .denoising import add_noise, denoise
    from .image import save_image

    model = read_model(args, args.model)
    model.set_params(progress=show_progress(args))
    layout = model.patch_layout_
    clean = read_image(args, args.image)
    try:
        coded = PatchLayout(layout.size, args.stride)  # every patch coded: the model's size, this stride
        shape = coded.covered_shape(clean.shape)
        n_rows, n_cols = patch_grid(shape, layout.size, args.stride)
    except ValueError as exc:
        usage_error(args, f"argument IMAGE: {exc}")
    make_out(args)
    clean = crop(clean, shape)
    noisy = clean if args.sigma is None else add_noise(clean, args.sigma / 255, random_state=args.seed)
    start = time.perf_counter()
    denoised = denoise(noisy, model, layout.size, args.stride, method=args.method, center=layout.centered)
    elapsed = time.perf_counter() - start
    save_image(args.out / "denoised.png", denoised)
    files = ["denoised.png", "summary.json"]
    summary = {
        "model": str(args.model),
        "image": str(args.image),
        "image_shape": list(shape),
        "sigma": args.sigma,
        "method": args.method,
        "stride": args.stride,
        "n_patches": n_rows * n_cols,
        "psnr_noisy_db": None,
        "psnr_denoised_db": None,
        "elapsed_s": elapsed,
    }
    lines = [
        f"image {args.image}: {shape[0]}×{shape[1]}, {summary['n_patches']} patches of {layout.size}×{layout.size} "
        f"(stride {args.stride}{', centred' if layout.centered else ''}), {args.method} codes, {elapsed:.2f} s"
    ]
    if args.sigma is not None:
        save_image(args.out / "noisy.png", noisy)
        files.insert(0, "noisy.png")
        summary["psnr_noisy_db"], summary["psnr_denoised_db"] = psnr(clean, noisy), psnr(clean, denoised)
        lines.append(
            f"σ = {args.sigma:g}: noisy {summary['psnr_noisy_db']:.2f} dB → denoised "
            f"{summary['psnr_denoised_db']:.2f} dB"
        )
    summary["files"] = files
    lines.append(f"wrote {', '.join(files)} into {args.out}")
    write_summary(args, summary, lines, out)
    return summary


# -- entry point -------------------------------------------------------------------------------------------


def main(argv=None):
    """Entry point of ``python -m eaelib`` and of the ``eaelib`` script; returns the exit code.

    ``argv`` defaults to ``sys.argv[1:]``. Bad arguments, including a missing or unreadable file or a
    missing optional dependency, print a usage error naming the argument and give exit code 2; a
    failure while computing (a diverging subproblem, a Dask task that failed for good) gives 1; Ctrl-C gives 130
    (after ``learn`` saved the model so far).
    """
    parser = build_parser()
    command = "eaelib"

    def show(message, category, filename, lineno, file=None, line=None):
        # A warning is a message to the user of the command, not to a developer: no source line.
        print(f"{command}: warning: {message}", file=sys.stderr if file is None else file)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            args = parser.parse_args(argv)
            command = f"eaelib {args.command}"
            args.run(args)
    except SystemExit as exc:  # argparse: --help or --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Interrupted:  # the command saved what it had, and said so
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FloatingPointError, SourceError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
