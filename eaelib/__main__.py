"""The command line, ``eaelib`` (also ``python -m eaelib``).

::

    eaelib learn IMAGE --out DIR              learn D and E from the patches of an image
    eaelib encode MODEL IMAGE --out DIR       codes of an image's patches, its reconstruction and PSNR
    eaelib reconstruct MODEL CODES --out DIR  the image back from the codes that encode wrote
    eaelib denoise MODEL IMAGE --out DIR      denoise an image (after adding noise of σ, with --sigma)

Every command prints a summary (``--quiet``: nothing; ``--json``: the summary as JSON) and writes it,
with its results, into ``DIR``. Exit codes: 0 done, 1 a failure while computing, 2 a usage error
(bad option, unreadable file, missing optional dependency: the message names the argument), 130
interrupted by Ctrl-C.

The options of ``learn`` that set the model are generated from the estimator's parameters (their
declarations in :class:`~eaelib.EnergyAutoEncoder`): names, defaults, checks and help come from there.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import json
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from ._array import DTYPES, backend_namespace, to_numpy
from ._base import ConvergenceWarning
from ._optional import missing, missing_message
from ._validation import AS_ESTIMATOR, check_random_state, param_specs
from ._version import __version__
from .estimator import TRANSFORM_METHODS, EnergyAutoEncoder
from .model_io import load_model, save_model
from .online import SourceError
from .patches import PatchLayout, patch_grid

FIGURES = ("convergence.png", "inner.png", "atoms.png", "norms.png", "codes.png")
MODEL_FILE = "model.npz"
PATCH_SIZE = 12  # learn's default patch side, as extract_patches'
# denoise's default stride: on a 512 × 512 photo at σ = 20 with the model its help suggests, stride 1 coded
# 251,001 patches in 21 s for 29.34 dB, stride 2 63,001 in 6.7 s for 29.30 dB, stride 4 15,876 in 1.3 s for
# 29.22 dB (2026-12-06, this machine, 2 threads); the default model's denser codes take about 5 times longer.
DENOISE_STRIDE = 2
CODES_FILE = "codes.npz"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C
# The learn options that set the model's patches, checked against a model that --resume continues.
PATCH_OPTIONS = ("patch_size", "stride", "center")
CODES_SAMPLE = 4096  # patches coded for the summary and figures when learning from a stream
CLOSE_TIMEOUT = 10  # seconds that closing the Dask client, then its local cluster, may take


# -- options ---------------------------------------------------------------------------------------------


def _option_type(name, spec):
    """argparse ``type`` for parameter ``name``: parse the text, then check it as the estimator would."""

    def parse(text):
        try:
            value = float(text) if spec.kind == "real" else int(text)
        except ValueError:
            expected = "a number" if spec.kind == "real" else "an integer"
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        try:
            if spec.kind == "random_state":
                check_random_state(value, name)
                return value
            return spec.check(name, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _cli_default(default, spec):
    return default if spec.cli_default == AS_ESTIMATOR else spec.cli_default


def _add_model_options(parser):
    """One option per estimator parameter that declares one; unset options are absent from the namespace."""
    group = parser.add_argument_group("model (the parameters of eaelib.EnergyAutoEncoder)")
    for name, (default, spec) in param_specs(EnergyAutoEncoder).items():
        if spec.cli is None:
            continue
        help_text = (spec.cli_help or spec.help[0].lower() + spec.help[1:]).rstrip(".")
        options = {"dest": name, "default": argparse.SUPPRESS}
        if spec.kind == "bool":
            negated = spec.cli.startswith("--no-")
            group.add_argument(spec.cli, action="store_const", const=not negated, help=help_text, **options)
            continue
        if spec.kind in ("choice", "dtype"):
            options["choices"] = spec.choices if spec.kind == "choice" else DTYPES[::-1]
        else:
            options["type"] = _option_type(name, spec)
            options["metavar"] = spec.cli_metavar
        if spec.cli_help is None or "default" not in spec.cli_help:
            help_text += f" (default: {_cli_default(default, spec)})"
        group.add_argument(spec.cli, help=help_text, **options)


def _model_params(args):
    """``(params, given)``: the estimator's parameters for ``args``, and those given on the command line."""
    params, given = {}, {}
    for name, (_, spec) in param_specs(EnergyAutoEncoder).items():
        if spec.cli is None:
            continue
        if hasattr(args, name):
            params[name] = given[name] = getattr(args, name)
        elif spec.cli_default != AS_ESTIMATOR:
            params[name] = spec.cli_default
    return params, given


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
    if not (np.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {text!r}")
    return value


def _positive_int_or_zero(text):
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
        epilog="Exit codes: 0 done, 1 failure while computing, 2 usage error, 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"eaelib {__version__}")
    output = argparse.ArgumentParser(add_help=False)
    group = output.add_argument_group("output").add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (and no progress bar)")
    group.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    learn = commands.add_parser(
        "learn",
        parents=[output],
        help="learn D and E from the patches of an image",
        description=(
            "Learn a dictionary D and an encoder E from the square patches of a grayscale image by minimizing "
            "λ_d/2‖X − DZ‖² + λ_e/2‖Z − EX‖² + λ_s‖Z‖₁; print a summary and write "
            f"{MODEL_FILE} (with the patch size, stride and centring), the figures {', '.join(FIGURES)} and "
            "summary.json into DIR. Ctrl-C stops after the current outer iteration and saves the model so far "
            "(exit code 130); --resume continues it. With several images (or a folder, or a pattern), or on a Dask "
            "cluster (--workers, --scheduler), the patches are streamed from the images in shuffled batches and "
            "learned online; the codes and figures are then those of a random sample of "
            f"{CODES_SAMPLE} patches."
        ),
    )
    learn.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help='image file (any format Pillow reads), the name "barbara", a folder (its image files) or a glob pattern '
        "(quoted); several images, a folder or a pattern are learned online from a stream of their shuffled "
        "patches (--algorithm online), which never holds them all in memory",
    )
    learn.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder, created if needed")
    patches = learn.add_argument_group("patches")
    patches.add_argument(
        "--patch-size",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="P",
        help=f"side of the square patches (default: {PATCH_SIZE})",
    )
    patches.add_argument(
        "--stride",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="S",
        help="step between patches (default: the patch size, i.e. non-overlapping patches)",
    )
    patches.add_argument(
        "--center",
        action="store_true",
        default=argparse.SUPPRESS,
        help="remove each patch's mean before learning (as for denoising; the means are added back on use)",
    )
    _add_model_options(learn)
    cluster = learn.add_argument_group("Dask cluster (needs the dask extra; learns online, see eaelib.distributed)")
    where = cluster.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="learn on a local Dask cluster of N worker processes (one thread each)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="learn on the running Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.1:8786); its "
        "workers must have eaelib installed and read the image files at the same paths",
    )
    run = learn.add_argument_group("run")
    run.add_argument("--no-figures", action="store_true", help="write no figures (they need matplotlib)")
    run.add_argument(
        "--resume",
        action="store_true",
        help=f"continue the model in DIR/{MODEL_FILE} (saved by an interrupted run) from its D and E, with its "
        "parameters and patches; options given override its parameters",
    )
    learn.set_defaults(run=learn_command, command_parser=learn)

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
    encode.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder, created if needed")
    encode.add_argument(
        "--method",
        choices=TRANSFORM_METHODS,
        default="exact",
        help="exact: solve for the codes; encoder: E x, one product (default: %(default)s)",
    )
    encode.set_defaults(run=encode_command, command_parser=encode)

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
    reconstruct.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder, created if needed")
    reconstruct.add_argument(
        "--reference", metavar="IMAGE", help="image to compare the reconstruction with (PSNR), e.g. the encoded one"
    )
    reconstruct.set_defaults(run=reconstruct_command, command_parser=reconstruct)

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
            "--lambda-s 0.12` for σ = 20 (λ_s = 1.5 σ/255, as in the book's chapter 7)."
        ),
    )
    denoise.add_argument("model", metavar="MODEL", type=Path, help="model file written by `eaelib learn`")
    denoise.add_argument("image", metavar="IMAGE", help='image file or the name "barbara"')
    denoise.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder, created if needed")
    denoise.add_argument(
        "--sigma",
        type=_non_negative_float,
        default=None,
        metavar="σ",
        help="add Gaussian noise of standard deviation σ (on the 0–255 scale) to IMAGE first, and report PSNRs",
    )
    denoise.add_argument("--seed", type=_positive_int_or_zero, default=0, help="seed of the noise (default: 0)")
    denoise.add_argument(
        "--method",
        choices=TRANSFORM_METHODS,
        default="exact",
        help="exact: solve for the codes; encoder: E x, one product, faster (default: %(default)s)",
    )
    denoise.add_argument(
        "--stride",
        type=_positive_int,
        default=DENOISE_STRIDE,
        metavar="S",
        help="step between the patches coded: 1 codes every overlapping patch, 4 times the patches of stride 2, "
        "for a few hundredths of a dB; larger is faster and coarser, and crops up to S − 1 pixels that no patch "
        "covers (default: %(default)s)",
    )
    denoise.set_defaults(run=denoise_command, command_parser=denoise)
    return parser


# -- shared steps ----------------------------------------------------------------------------------------


def _error(args, message):
    """A usage error: the command's usage and ``message`` on stderr, exit code 2."""
    args.command_parser.error(message)


def _require(args, purpose, *needs, extra="full"):
    """Exit 2 if optional modules are missing, naming every missing package and the install line at once.

    ``needs`` are ``(module, option)`` pairs: ``option`` does without the module (e.g. ``--no-figures``), or is
    None. The message leads with what to install; the options come last, as the way to do without.
    """
    absent = [(module, option) for module, option in needs if missing(module)]
    if absent:
        message = missing_message(purpose, missing(*(module for module, _ in absent)), extra)
        options = [option for _, option in absent if option]
        _error(args, message + (f"; or pass {' '.join(options)}" if options else ""))


def _progress(args):
    """Whether encode and denoise show a bar over the codes: unless --quiet, where tqdm is installed.

    Unlike learn's (--no-progress), this bar is not asked for, so its absence is no error.
    """
    return not args.quiet and not missing("tqdm")


def _load_image(args, name, argument="IMAGE"):
    from .image import load_image

    _require(args, f"reading {argument}", ("PIL", None))
    try:
        return load_image(name)
    except (FileNotFoundError, ValueError) as exc:
        _error(args, f"argument {argument}: {exc}")


def _load_model(args, path, argument="MODEL", need_layout=True):
    try:
        model = load_model(path)
    except (FileNotFoundError, ValueError) as exc:
        _error(args, f"argument {argument}: {exc}")
    if need_layout and model.patch_layout_ is None:
        _error(
            args,
            f"argument {argument}: {path} does not say how its patches were cut (no patch size, stride and "
            "centring): it was not written by `eaelib learn`; save it with eaelib.save_model(model, path, "
            "patch_layout=eaelib.PatchLayout(size, stride, centered))",
        )
    return model


def _make_out(args):
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _error(args, f"argument --out: cannot create {str(args.out)!r}: {exc}")


def _write_png(path, image):
    from PIL import Image

    pixels = np.clip(np.asarray(to_numpy(image), dtype=np.float64), 0.0, 1.0)
    Image.fromarray(np.round(255 * pixels).astype(np.uint8)).save(path)


def _write_summary(args, summary, lines, out=None):
    """summary.json into DIR, and the summary on ``out``: as text, as JSON (--json), or not (--quiet)."""
    out = sys.stdout if out is None else out
    with open(args.out / "summary.json", "w", encoding="utf-8") as file:
        json.dump(summary, file, indent=2, ensure_ascii=False)
        file.write("\n")
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False), file=out)
    elif not args.quiet:
        print("\n".join(lines), file=out)


def _psnr(reference, estimate):
    from .analysis import psnr

    return psnr(reference, estimate)


def _nonzero(codes):
    nonzero = np.asarray(to_numpy(codes)) != 0
    return float(nonzero.mean()), float(nonzero.sum(axis=1).mean())


def _crop(image, shape):
    return image[: shape[0], : shape[1]]


# -- learn -------------------------------------------------------------------------------------------------


class _StopOnInterrupt:
    """Ctrl-C during a fit: the first stops it after the current outer iteration, a second at once.

    Used as the fit's callback, so that the model holds complete outer iterations either way.
    """

    def __init__(self, err):
        self.requested, self._err, self._previous = False, err, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this outer iteration (Ctrl-C again to stop at once)", file=self._err)

    def __call__(self, iteration, terms):
        return self.requested


def _check_learn_args(args, params, given):
    """The checks of ``learn`` that need more than one option, the model, or an import: usage errors."""
    try:
        EnergyAutoEncoder(**params)._check_params()
    except ValueError as exc:
        name = next((n for n in params if str(exc).startswith(n)), None)
        option = param_specs(EnergyAutoEncoder)[name][1].cli if name else "options"
        _error(args, f"argument {option}: {exc}")
    if "backend" in params:
        try:
            backend_namespace(params["backend"])
        except ImportError as exc:
            _error(args, f"argument --backend: {exc}")
    _require(
        args,
        "eaelib learn",
        ("PIL", None),
        *([("tqdm", "--no-progress")] if params.get("progress") else []),
        *([("matplotlib", "--no-figures")] if not args.no_figures else []),
    )


def _resume(args, given, layout_given):
    """The model in DIR that --resume continues, with the options given applied."""
    path = args.out / MODEL_FILE
    if not path.is_file():
        _error(args, f"argument --resume: there is no model to resume at {path}")
    model = _load_model(args, path, argument="--resume")
    layout = model.patch_layout_
    saved = {"patch_size": layout.size, "stride": layout.stride, "center": layout.centered, "n_atoms": model.n_atoms}
    for name, value in {**layout_given, **given}.items():
        if name in saved and value != saved[name]:
            option = "--" + name.replace("_", "-")
            _error(
                args,
                f"argument {option}: the model in {path} has {name}={saved[name]!r}; --resume continues it as it is",
            )
    return model.set_params(**given, warm_start=True), layout


def _is_collection(spec):
    """Whether an IMAGE argument names several images: a folder or a glob pattern."""
    return Path(spec).is_dir() or (not Path(spec).exists() and glob.has_magic(spec))


def _stream(args, layout, model, files, batch_size=None):
    """The images' patches as a :class:`~eaelib.PatchStream`; a bad image is a usage error."""
    from .streams import PatchStream

    try:
        return PatchStream(
            files,
            layout.size,
            layout.stride,
            center=layout.centered,
            batch_size=model.batch_size if batch_size is None else batch_size,
            random_state=model.random_state,
        )
    except (FileNotFoundError, ValueError) as exc:
        _error(args, f"argument IMAGE: {exc}")


class _Cluster:
    """The Dask client of ``--workers N`` (a local cluster) or ``--scheduler ADDRESS``, closed on exit."""

    def __init__(self, args):
        self.args, self.client, self.cluster = args, None, None

    def __enter__(self):
        args = self.args
        option = "--workers" if args.workers else "--scheduler"
        _require(args, f"argument {option}", ("dask", None), ("distributed", None), extra="dask")
        import distributed

        if args.workers:
            from .distributed import local_cluster

            # Its workers ignore Ctrl-C: _StopOnInterrupt alone gets it, the fit stops as in one process, the
            # model is saved and the cluster closes (the workers would otherwise die, and the fit wait for them).
            self.cluster = local_cluster(args.workers, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(args.scheduler, timeout="10s")
            except (OSError, ValueError, TypeError) as exc:
                _error(args, f"argument --scheduler: cannot connect to {args.scheduler!r}: {exc}")
        return self

    @property
    def n_workers(self):
        return max(1, len(self.client.scheduler_info()["workers"]))

    @property
    def address(self):
        return self.client.scheduler.address

    def __exit__(self, *exc_info):
        # Bounded, so that a run that is over (the model saved, or a failure) cannot hang on a scheduler that
        # stops answering; exiting after a Ctrl-C, even a second one mid-batch, took about a second here.
        with contextlib.suppress(TimeoutError):
            self.client.close(timeout=CLOSE_TIMEOUT)
        if self.cluster is not None:
            with contextlib.suppress(TimeoutError):
                self.cluster.close(timeout=CLOSE_TIMEOUT)


def learn_command(args, out=None, err=None):
    """Run ``eaelib learn`` with parsed ``args``; returns the summary as a dict."""
    from .subproblems import constraint_violation

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    params, given = _model_params(args)
    if args.quiet:
        params["progress"] = False
    layout_given = {name: getattr(args, name) for name in PATCH_OPTIONS if hasattr(args, name)}
    _check_learn_args(args, params, given)
    distributed = bool(args.workers or args.scheduler)
    streamed = distributed or len(args.images) > 1 or _is_collection(args.images[0])
    if streamed:
        if given.get("algorithm") == "batch":
            _error(
                args,
                "argument --algorithm: several images, a folder, a pattern or a Dask cluster are learned online, "
                "from a stream of patches: drop --algorithm batch",
            )
        files = _image_files(args)
    else:
        image = _load_image(args, args.images[0])
    if args.resume:
        model, layout = _resume(args, given, layout_given)
        model.set_params(progress=params["progress"])
        history = [float(v) for v in model.objective_history_]
        previous = {
            "n_iter": model.n_iter_,
            "initial_energy": history[0],
            "final_energy": history[-1],
            "history": history,
        }
    else:
        size = layout_given.get("patch_size", PATCH_SIZE)
        try:
            layout = PatchLayout(size, layout_given.get("stride", size), layout_given.get("center", False))
        except ValueError as exc:
            _error(args, f"argument --patch-size/--stride: {exc}")
        model, previous = EnergyAutoEncoder(**params), None
    if streamed:
        model.set_params(algorithm="online")
        stream = _stream(args, layout, model, files)
        n_samples = stream.n_patches
    else:
        try:
            X, _ = layout.extract(image)
        except ValueError as exc:
            _error(args, f"argument --patch-size/--stride: {exc}")
        n_samples = X.shape[0]
    _make_out(args)

    stop = _StopOnInterrupt(err)
    model.set_params(callback=stop)
    cluster = _Cluster(args) if distributed else contextlib.nullcontext()
    start = time.perf_counter()
    try:
        with stop, cluster, warnings.catch_warnings():
            # An interrupted fit warns to fit again with warm_start=True: here, --resume says it.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if distributed:
                # A batch is one chunk per worker: they code it together.
                data = stream.to_dask(chunks_per_batch=cluster.n_workers)
                where = {"scheduler": cluster.address, "n_workers": cluster.n_workers}
            else:
                data = stream if streamed else X
            model.fit(data)
    except KeyboardInterrupt:  # before the first outer iteration completed: nothing to save
        print("interrupted before the first outer iteration: nothing saved", file=err)
        raise
    except SourceError:  # a Dask task failed for good: keep what was learned (main says why, exit code 1)
        if hasattr(model, "D_"):
            save_model(model, args.out / MODEL_FILE, patch_layout=layout)
            print(f"saved the model so far to {args.out / MODEL_FILE}; continue it with --resume", file=err)
        raise
    finally:  # the saved model neither calls back nor warm-starts a later fit by surprise
        model.set_params(callback=None, warm_start=False)
    elapsed = time.perf_counter() - start
    interrupted = stop.requested

    summary = {"image": " ".join(map(str, args.images)) if streamed else str(args.images[0])}
    if streamed:
        summary |= {"images": [str(f) for f in files], "n_images": len(files)}
        summary |= where if distributed else {"scheduler": None, "n_workers": None}
    else:
        summary["image_shape"] = list(image.shape)
    summary |= {
        "patch_size": layout.size,
        "stride": layout.stride,
        "centered": layout.centered,
        "n_samples": int(n_samples),
        "n_features": layout.size**2,
        "params": model.get_params(),
        "backend": model.backend_,
        "dtype": str(model.D_.dtype),
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "interrupted": interrupted,
        "resumed": previous,
        "energy": dict(model.energy_history_[-1]),
        "initial_energy": model.objective_history_[0],
        "final_energy": model.objective_history_[-1],
        "monotone": all(b <= a for a, b in itertools.pairwise(model.objective_history_)),
        "constraint_violation": constraint_violation(model.D_, model.E_),
        "elapsed_s": elapsed,
    }
    summary["params"]["callback"] = None
    save_model(model, args.out / MODEL_FILE, patch_layout=layout)
    if interrupted:
        summary["files"] = [MODEL_FILE, "summary.json"]
        _write_summary(args, summary, _learn_lines(summary), out)
        command = f"eaelib learn {' '.join(map(str, args.images))} --out {args.out} --resume"
        print(
            f"interrupted after {model.n_iter_} outer iterations: saved the model so far to "
            f"{args.out / MODEL_FILE}; continue it with\n  {command}",
            file=err,
        )
        raise _Interrupted
    if streamed:  # the codes of a random sample of the patches, not of all of them
        sample = _stream(args, layout, model, files, batch_size=min(n_samples, CODES_SAMPLE))
        X = next(iter(sample))
        summary["codes_sample"] = int(X.shape[0])
    start = time.perf_counter()
    codes = model.transform(X)
    summary["transform_elapsed_s"] = time.perf_counter() - start
    summary["nonzero_fraction"], summary["nonzero_per_sample"] = _nonzero(codes)
    figures = () if args.no_figures else FIGURES
    summary["files"] = [MODEL_FILE, *figures, "summary.json"]
    if figures:
        _write_figures(args.out, model, codes, layout.size)
    _write_summary(args, summary, _learn_lines(summary), out)
    if not (args.quiet or args.json):
        print(f"wrote {', '.join(summary['files'])} into {args.out}", file=out)
    return summary


def _image_files(args):
    """The image files that the IMAGE arguments name (folders and patterns expanded); usage errors otherwise."""
    from .streams import image_files

    _require(args, "reading IMAGE", ("PIL", None))
    try:
        return image_files(*args.images)
    except (FileNotFoundError, ValueError) as exc:
        _error(args, f"argument IMAGE: {str(exc).removeprefix('images: ')}")


def _write_figures(folder, model, codes, patch_size):
    from .plot import plot_atoms, plot_code_sparsity, plot_energy, plot_inner_convergence, plot_norms

    figures = {
        "convergence.png": lambda: plot_energy(model),
        "inner.png": lambda: plot_inner_convergence(model),
        "atoms.png": lambda: plot_atoms(model.D_, patch_size),
        "norms.png": lambda: plot_norms(model),
        "codes.png": lambda: plot_code_sparsity(codes),
    }
    for name, make in figures.items():
        make().savefig(folder / name, dpi=120)


def _learn_lines(s):
    p = s["params"]
    if "images" in s:
        names = ", ".join(s["images"][:3]) + (", …" if s["n_images"] > 3 else "")
        where = f" on {s['n_workers']} Dask workers ({s['scheduler']})" if s["scheduler"] else ""
        source = f"{s['n_images']} images ({names}), streamed{where}"
    else:
        source = f"image {s['image']} {s['image_shape'][0]}×{s['image_shape'][1]}"
    lines = [
        f"{source}: {s['n_samples']} patches "
        f"of {s['patch_size']}×{s['patch_size']} (stride {s['stride']}{', centred' if s['centered'] else ''}), "
        f"{s['n_features']} features",
        f"model: {p['n_atoms']} atoms, λ_d={p['lambda_d']:g} λ_e={p['lambda_e']:g} λ_s={p['lambda_s']:g}, "
        f"{s['dtype']} on {s['backend']}",
    ]
    state = "interrupted" if s["interrupted"] else "converged" if s["converged"] else "not converged"
    if s["resumed"]:
        saved = s["resumed"]
        energy = [
            f"energy: {saved['initial_energy']:.6g} at initialization → {saved['final_energy']:.6g} after the "
            f"saved model's {saved['n_iter']} outer iterations;",
            f"  resumed with its codes from zero: {s['initial_energy']:.6g} → {s['final_energy']:.6g}",
        ]
        more = " more"
    else:
        energy, more = [f"energy: {s['initial_energy']:.6g} at initialization → {s['final_energy']:.6g}"], ""
    lines += [
        f"outer iterations: {s['n_iter']}{more} ({state}, rtol={p['rtol']:g}, max_outer={p['max_outer']})",
        *energy,
        *(f"  {term:<9} {s['energy'][term]:.6g}" for term in ("data", "encoder", "sparsity")),
        f"energy history monotone: {'yes' if s['monotone'] else 'NO'}",
        f"largest constraint violation (max column norm − 1): {s['constraint_violation']:.3g}",
    ]
    if "nonzero_fraction" in s:
        sample = f", a random sample of {s['codes_sample']} patches" if "codes_sample" in s else ""
        lines.append(
            f"non-zero codes: {100 * s['nonzero_fraction']:.3g} % ({s['nonzero_per_sample']:.3g} of "
            f"{p['n_atoms']} atoms per patch, exact codes{sample})"
        )
        lines.append(f"elapsed: {s['elapsed_s']:.2f} s learning, {s['transform_elapsed_s']:.2f} s exact codes")
    else:
        lines.append(f"elapsed: {s['elapsed_s']:.2f} s learning")
    return lines


# -- encode and reconstruct --------------------------------------------------------------------------------


def encode_command(args, out=None, err=None):
    """Run ``eaelib encode``: codes of IMAGE's patches, the reconstruction and its PSNR."""
    model = _load_model(args, args.model)
    model.set_params(progress=_progress(args))
    layout = model.patch_layout_
    image = _load_image(args, args.image)
    try:
        X, means = layout.extract(image)
    except ValueError as exc:
        _error(args, f"argument IMAGE: {exc}")
    _make_out(args)
    start = time.perf_counter()
    codes = model.transform(X, method=args.method)
    elapsed = time.perf_counter() - start
    shape = layout.covered_shape(image.shape)
    reconstruction = layout.rebuild(model.inverse_transform(codes), means, shape)
    arrays = {
        "codes": np.asarray(to_numpy(codes)),
        "image_shape": np.array(shape, dtype=np.int64),
        "patch_size": np.array(layout.size, dtype=np.int64),
        "patch_stride": np.array(layout.stride, dtype=np.int64),
        "patch_centered": np.array(layout.centered),
        "method": np.array(args.method),
    }
    if means is not None:
        arrays["means"] = np.asarray(to_numpy(means))
    with open(args.out / CODES_FILE, "wb") as file:
        np.savez(file, **arrays)
    _write_png(args.out / "reconstruction.png", reconstruction)
    nonzero, per_sample = _nonzero(codes)
    summary = {
        "model": str(args.model),
        "image": str(args.image),
        "image_shape": list(image.shape),
        "covered_shape": list(shape),
        "n_patches": int(X.shape[0]),
        "method": args.method,
        "psnr_db": _psnr(_crop(image, shape), reconstruction),
        "nonzero_fraction": nonzero,
        "nonzero_per_sample": per_sample,
        "elapsed_s": elapsed,
        "files": [CODES_FILE, "reconstruction.png", "summary.json"],
    }
    lines = [
        f"image {args.image} {image.shape[0]}×{image.shape[1]}: {X.shape[0]} patches of {layout.size}×{layout.size} "
        f"(stride {layout.stride}{', centred' if layout.centered else ''}), covering {shape[0]}×{shape[1]}",
        f"codes ({args.method}): {100 * nonzero:.3g} % non-zero ({per_sample:.3g} of {model.n_atoms} atoms per "
        f"patch), {elapsed:.2f} s",
        f"reconstruction: PSNR {summary['psnr_db']:.2f} dB",
        f"wrote {', '.join(summary['files'])} into {args.out}",
    ]
    _write_summary(args, summary, lines, out)
    return summary


def _read_codes(args):
    not_ours = f"argument CODES: {args.codes} is not a codes file written by `eaelib encode`"
    try:
        with np.load(args.codes, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        _error(args, f"argument CODES: {exc}")
    except Exception as exc:  # whatever np.load refuses (not an archive, pickled objects, truncated)
        _error(args, f"{not_ours}: {exc}")
    missing = {"codes", "image_shape", "patch_size", "patch_stride", "patch_centered", "method"} - arrays.keys()
    if missing:
        _error(args, f"{not_ours}: it lacks {', '.join(sorted(missing))}")
    if bool(arrays["patch_centered"]) != ("means" in arrays):
        _error(
            args,
            f"{not_ours}: its patches are {'' if arrays['patch_centered'] else 'not '}centred but it "
            f"{'lacks' if arrays['patch_centered'] else 'has'} their means",
        )
    return arrays


def reconstruct_command(args, out=None, err=None):
    """Run ``eaelib reconstruct``: the image from the codes that ``encode`` wrote."""
    model = _load_model(args, args.model, need_layout=False)
    arrays = _read_codes(args)
    layout = PatchLayout(int(arrays["patch_size"]), int(arrays["patch_stride"]), bool(arrays["patch_centered"]))
    if model.patch_layout_ is not None and model.patch_layout_ != layout:
        _error(args, f"argument CODES: cut as {layout}, but the model's patches were cut as {model.patch_layout_}")
    codes, shape = arrays["codes"], tuple(int(s) for s in arrays["image_shape"])
    reference = None if args.reference is None else _load_image(args, args.reference, "--reference")
    try:
        reconstruction = layout.rebuild(model.inverse_transform(codes), arrays.get("means"), shape)
    except ValueError as exc:
        _error(args, f"argument CODES: {exc}")
    _make_out(args)
    _write_png(args.out / "reconstruction.png", reconstruction)
    summary = {
        "model": str(args.model),
        "codes": str(args.codes),
        "image_shape": list(shape),
        "n_patches": int(codes.shape[0]),
        "method": str(arrays["method"]),
        "psnr_db": None,
        "files": ["reconstruction.png", "summary.json"],
    }
    lines = [f"{codes.shape[0]} patch codes ({summary['method']}) → a {shape[0]}×{shape[1]} image"]
    if reference is not None:
        if reference.shape[0] < shape[0] or reference.shape[1] < shape[1]:
            _error(args, f"argument --reference: {reference.shape} is smaller than the reconstruction {shape}")
        summary["psnr_db"] = _psnr(_crop(reference, shape), reconstruction)
        lines.append(f"PSNR against {args.reference}: {summary['psnr_db']:.2f} dB")
    lines.append(f"wrote {', '.join(summary['files'])} into {args.out}")
    _write_summary(args, summary, lines, out)
    return summary


# -- denoise -----------------------------------------------------------------------------------------------


def denoise_command(args, out=None, err=None):
    """Run ``eaelib denoise``: code every overlapping patch and average them back into an image."""
    from .denoising import add_noise, denoise

    model = _load_model(args, args.model)
    model.set_params(progress=_progress(args))
    layout = model.patch_layout_
    clean = _load_image(args, args.image)
    try:
        coded = PatchLayout(layout.size, args.stride)  # every patch coded: the model's size, this stride
        shape = coded.covered_shape(clean.shape)
        n_rows, n_cols = patch_grid(shape, layout.size, args.stride)
    except ValueError as exc:
        _error(args, f"argument IMAGE: {exc}")
    _make_out(args)
    clean = _crop(clean, shape)
    noisy = clean if args.sigma is None else add_noise(clean, args.sigma / 255, random_state=args.seed)
    start = time.perf_counter()
    denoised = denoise(noisy, model, layout.size, args.stride, method=args.method, center=layout.centered)
    elapsed = time.perf_counter() - start
    _write_png(args.out / "denoised.png", denoised)
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
        _write_png(args.out / "noisy.png", noisy)
        files.insert(0, "noisy.png")
        summary["psnr_noisy_db"], summary["psnr_denoised_db"] = _psnr(clean, noisy), _psnr(clean, denoised)
        lines.append(
            f"σ = {args.sigma:g}: noisy {summary['psnr_noisy_db']:.2f} dB → denoised "
            f"{summary['psnr_denoised_db']:.2f} dB"
        )
    summary["files"] = files
    lines.append(f"wrote {', '.join(files)} into {args.out}")
    _write_summary(args, summary, lines, out)
    return summary


# -- entry point -------------------------------------------------------------------------------------------


class _Interrupted(Exception):
    """Ctrl-C stopped a command after it saved what it had."""


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
    except _Interrupted:  # the command saved what it had, and said so
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
