"""``eaelib learn``: learn D and E from an image's patches, or from a stream of many images' patches."""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from ._array import backend_namespace
from ._base import ConvergenceWarning
from ._cli import (
    MODEL_FILE,
    OPTIONS,
    Interrupted,
    add_model_options,
    make_out,
    model_params,
    number,
    read_image,
    read_model,
    require,
    usage_error,
    write_summary,
)
from .estimator import EnergyAutoEncoder
from .learning import SourceError
from .model_io import save_model
from .patches import PatchLayout
from .subproblems import ENERGY_TERMS

FIGURES = ("convergence.png", "inner.png", "atoms.png", "norms.png", "codes.png")
PATCH_SIZE = 12  # learn's default patch side, as extract_patches'
# The learn options that set the model's patches, checked against a model that --resume continues.
PATCH_OPTIONS = ("patch_size", "stride", "center")
CODES_SAMPLE = 4096  # patches coded for the summary and figures when learning from a stream


def add_parser(commands, output):
    """``learn``'s parser among ``commands``, with the output options of ``output``."""
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
    patches = learn.add_argument_group("patches")
    side, step = f"side of the square patches (default: {PATCH_SIZE})", "step between patches (default: the patch size)"
    patches.add_argument("--patch-size", type=number("int", 1), default=argparse.SUPPRESS, metavar="P", help=side)
    patches.add_argument("--stride", type=number("int", 1), default=argparse.SUPPRESS, metavar="S", help=step)
    patches.add_argument(
        "--center",
        action="store_true",
        default=argparse.SUPPRESS,
        help="remove each patch's mean before learning (as for denoising; the means are added back on use)",
    )
    add_model_options(learn)
    cluster = learn.add_argument_group("Dask cluster (needs the dask extra; learns online, see eaelib.distributed)")
    where = cluster.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=number("int", 1),
        metavar="N",
        help="learn on a local Dask cluster of N worker processes (one thread each); on one machine this is "
        "slower than one process (the README's Dask section says when a cluster pays)",
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
    return learn


class StopOnInterrupt:
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


# -- the run ---------------------------------------------------------------------------------------------


def learn_command(args, out=None, err=None):
    """Run ``eaelib learn`` with parsed ``args``; returns the summary as a dict."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    job = _prepare(args)
    make_out(args)
    start = time.perf_counter()
    interrupted, where = _fit(args, job, err)
    summary = _summary(args, job, time.perf_counter() - start, interrupted, where)
    save_model(job["model"], args.out / MODEL_FILE, patch_layout=job["layout"])
    if interrupted:
        summary["files"] = [MODEL_FILE, "summary.json"]
        write_summary(args, summary, _learn_lines(summary), out)
        command = f"eaelib learn {' '.join(map(str, args.images))} --out {args.out} --resume"
        print(
            f"interrupted after {job['model'].n_iter_} outer iterations: saved the model so far to "
            f"{args.out / MODEL_FILE}; continue it with\n  {command}",
            file=err,
        )
        raise Interrupted
    _describe_codes(args, job, summary)
    write_summary(args, summary, _learn_lines(summary), out)
    if not (args.quiet or args.json):
        print(f"wrote {', '.join(summary['files'])} into {args.out}", file=out)
    return summary


def _prepare(args):
    """What ``learn`` fits: the model (new, or resumed), the patch layout and the data; usage errors first."""
    params, given = model_params(args)
    if args.quiet:
        params["progress"] = False
    layout_given = {name: getattr(args, name) for name in PATCH_OPTIONS if hasattr(args, name)}
    _check_learn_args(args, params)
    distributed = bool(args.workers or args.scheduler)
    streamed = distributed or len(args.images) > 1 or _is_collection(args.images[0])
    if streamed and given.get("algorithm") == "batch":
        usage_error(
            args,
            "argument --algorithm: several images, a folder, a pattern or a Dask cluster are learned online, "
            "from a stream of patches: drop --algorithm batch",
        )
    job = {"distributed": distributed, "streamed": streamed, "previous": None}
    job["files" if streamed else "image"] = _image_files(args) if streamed else read_image(args, args.images[0])
    if args.resume:
        model, layout = _resume(args, given, layout_given)
        model.set_params(progress=params["progress"])
        history = [float(v) for v in model.objective_history_]
        job["previous"] = {"n_iter": model.n_iter_, "initial_energy": history[0], "final_energy": history[-1]}
        job["previous"]["history"] = history
    else:
        size = layout_given.get("patch_size", PATCH_SIZE)
        try:
            layout = PatchLayout(size, layout_given.get("stride", size), layout_given.get("center", False))
        except ValueError as exc:
            usage_error(args, f"argument --patch-size/--stride: {exc}")
        model = EnergyAutoEncoder(**params)
    job |= {"model": model, "layout": layout}
    if streamed:
        model.set_params(algorithm="online")
        job["stream"] = _stream(args, layout, model, job["files"])
        job["n_samples"] = job["stream"].n_patches
    else:
        try:
            job["X"], _ = layout.extract(job["image"])
        except ValueError as exc:
            usage_error(args, f"argument --patch-size/--stride: {exc}")
        job["n_samples"] = job["X"].shape[0]
    return job


def _fit(args, job, err):
    """Fit the job's model; ``(interrupted, where)``, where is the Dask cluster's address and size, if any."""
    model, where = job["model"], {}
    stop = StopOnInterrupt(err)
    model.set_params(callback=stop)
    cluster = _connect(args) if job["distributed"] else contextlib.nullcontext()
    try:
        with stop, cluster as client, warnings.catch_warnings():
            # An interrupted fit warns to fit again with warm_start=True: here, --resume says it.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if client is not None:
                n_workers = max(1, len(client.scheduler_info()["workers"]))
                where = {"scheduler": client.scheduler.address, "n_workers": n_workers}
                # A batch is one chunk per worker: they code it together.
                model.fit(job["stream"].to_dask(chunks_per_batch=n_workers))
            else:
                model.fit(job["stream"] if job["streamed"] else job["X"])
    except KeyboardInterrupt:  # before the first outer iteration completed: nothing to save
        print("interrupted before the first outer iteration: nothing saved", file=err)
        raise
    except SourceError:  # a Dask task failed for good: keep what was learned (main says why, exit code 1)
        if hasattr(model, "D_"):
            save_model(model, args.out / MODEL_FILE, patch_layout=job["layout"])
            print(f"saved the model so far to {args.out / MODEL_FILE}; continue it with --resume", file=err)
        raise
    finally:  # the saved model neither calls back nor warm-starts a later fit by surprise
        model.set_params(callback=None, warm_start=False)
    return stop.requested, where


@contextlib.contextmanager
def _connect(args):
    """The Dask client of ``--workers N`` or ``--scheduler ADDRESS`` (eaelib.distributed.connect)."""
    option = "--workers" if args.workers else "--scheduler"
    require(args, f"argument {option}", ("dask", None), ("distributed", None), extra="dask")
    from .distributed import connect

    stack = contextlib.ExitStack()
    try:
        # The local cluster's workers ignore Ctrl-C: StopOnInterrupt alone gets it, the fit stops as in one
        # process, the model is saved and the cluster closes.
        client = stack.enter_context(connect(workers=args.workers, scheduler=args.scheduler))
    except (OSError, ValueError, TypeError) as exc:
        usage_error(args, f"argument --scheduler: cannot connect to {args.scheduler!r}: {exc}")
    with stack:
        yield client


def _summary(args, job, elapsed, interrupted, where):
    """What ``learn`` reports of its fit (summary.json and the printed lines)."""
    from .subproblems import constraint_violation

    model, layout, streamed = job["model"], job["layout"], job["streamed"]
    summary = {"image": " ".join(map(str, args.images)) if streamed else str(args.images[0])}
    if streamed:
        summary |= {"images": [str(f) for f in job["files"]], "n_images": len(job["files"])}
        summary |= where or {"scheduler": None, "n_workers": None}
    else:
        summary["image_shape"] = list(job["image"].shape)
    history = model.objective_history_
    summary |= {
        "patch_size": layout.size,
        "stride": layout.stride,
        "centered": layout.centered,
        "n_samples": int(job["n_samples"]),
        "n_features": layout.size**2,
        "params": {**model.get_params(), "callback": None},
        "backend": model.backend_,
        "dtype": str(model.D_.dtype),
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "interrupted": interrupted,
        "resumed": job["previous"],
        "energy": dict(model.energy_history_[-1]),
        "initial_energy": history[0],
        "final_energy": history[-1],
        "monotone": all(b <= a for a, b in itertools.pairwise(history)),
        "constraint_violation": constraint_violation(model.D_, model.E_),
        "elapsed_s": elapsed,
    }
    return summary


def _describe_codes(args, job, summary):
    """The exact codes of the patches (a random sample of a stream's): their sparsity, and the figures."""
    from .analysis import code_sparsity

    model, X = job["model"], job.get("X")
    if job["streamed"]:  # the codes of a random sample of the patches, not of all of them
        sample = _stream(args, job["layout"], model, job["files"], batch_size=min(job["n_samples"], CODES_SAMPLE))
        X = next(iter(sample))
        summary["codes_sample"] = int(X.shape[0])
    start = time.perf_counter()
    codes = model.transform(X)
    summary["transform_elapsed_s"] = time.perf_counter() - start
    sparsity = code_sparsity(codes)
    summary["nonzero_fraction"], summary["nonzero_per_sample"] = sparsity.nonzero_fraction, sparsity.mean_per_sample
    figures = () if args.no_figures else FIGURES
    summary["files"] = [MODEL_FILE, *figures, "summary.json"]
    if figures:
        _write_figures(args.out, model, codes, job["layout"].size)


def _check_learn_args(args, params):
    """The checks of ``learn`` that need more than one option, the model, or an import: usage errors."""
    try:
        EnergyAutoEncoder(**params)._check_params()
    except ValueError as exc:
        name = next((n for n in params if str(exc).startswith(n)), None)
        usage_error(args, f"argument {OPTIONS[name].flag if name in OPTIONS else 'options'}: {exc}")
    if "backend" in params:
        try:
            backend_namespace(params["backend"])
        except ImportError as exc:
            usage_error(args, f"argument --backend: {exc}")
    require(
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
        usage_error(args, f"argument --resume: there is no model to resume at {path}")
    model = read_model(args, path, argument="--resume")
    layout = model.patch_layout_
    saved = {"patch_size": layout.size, "stride": layout.stride, "center": layout.centered, "n_atoms": model.n_atoms}
    for name, value in {**layout_given, **given}.items():
        if name in saved and value != saved[name]:
            option = "--" + name.replace("_", "-")
            usage_error(
                args,
                f"argument {option}: the model in {path} has {name}={saved[name]!r}; --resume continues it as it is",
            )
    return model.set_params(**given, warm_start=True), layout


def _is_collection(spec):
    """Whether an IMAGE argument names several images: a folder or a glob pattern."""
    return Path(spec).is_dir() or (not Path(spec).exists() and glob.has_magic(spec))


def _image_files(args):
    """The image files that the IMAGE arguments name (folders and patterns expanded); usage errors otherwise."""
    from .streams import image_files

    require(args, "reading IMAGE", ("PIL", None))
    try:
        return image_files(*args.images)
    except (FileNotFoundError, ValueError) as exc:
        usage_error(args, f"argument IMAGE: {str(exc).removeprefix('images: ')}")


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
        usage_error(args, f"argument IMAGE: {exc}")


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
    """The printed summary of ``learn``."""
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
        *(f"  {term:<9} {s['energy'][term]:.6g}" for term in ENERGY_TERMS[:3]),
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
