"""What every command of the command line shares: its options for the model, its usage errors, its files.

The command line only parses and prints. The model's options are generated from the estimator's parameter
table (:mod:`eaelib._parameters`), which knows nothing of argparse: :data:`OPTIONS` says which parameters
the command line offers, under which option, and where its default or help differs; their checks are the
estimator's own (``ParamSpec.check``, :func:`~eaelib._validation.check_scalar`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ._array import DTYPES
from ._optional import missing, missing_message
from ._validation import check_random_state, check_scalar, param_specs
from .estimator import EnergyAutoEncoder
from .model_io import load_model

MODEL_FILE = "model.npz"
CODES_FILE = "codes.npz"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C
#: ``Option.default`` when the command line's default is the estimator's.
AS_ESTIMATOR = "as the estimator"


@dataclass(frozen=True)
class Option:
    """How ``eaelib learn`` offers one of the estimator's parameters.

    Parameters
    ----------
    flag : str
        The option, e.g. ``"--n-atoms"``; a boolean whose flag starts ``--no-`` sets False.
    metavar : str, optional
    default : optional
        The command line's default where it differs from the estimator's (a fixed seed, a progress bar).
    help : str, optional
        ``--help`` text where it differs from the parameter's description.
    """

    flag: str
    metavar: str | None = None
    default: object = AS_ESTIMATOR
    help: str | None = None


#: The estimator's parameters that ``eaelib learn`` offers (the others keep the estimator's defaults).
OPTIONS = {
    "n_atoms": Option("--n-atoms", "M"),
    "lambda_d": Option("--lambda-d", "W"),
    "lambda_e": Option("--lambda-e", "W"),
    "lambda_s": Option("--lambda-s", "W"),
    "max_outer": Option("--max-outer", "K"),
    "max_inner": Option("--max-inner", "K"),
    "rtol": Option("--rtol", "TOL"),
    "inner_rtol": Option("--inner-rtol", "TOL"),
    "solver": Option("--solver"),
    "code_solver": Option("--code-solver"),
    "algorithm": Option("--algorithm"),
    "certify_every": Option("--certify-every", "K"),
    "batch_size": Option("--batch-size", "B"),
    "init": Option("--init"),
    # A fixed seed: the same command learns the same model.
    "random_state": Option("--seed", "SEED", 0, "seed of the random initialization of D, an integer ≥ 0"),
    "backend": Option("--backend", help="array library to compute with (default: numpy)"),
    "dtype": Option("--dtype", help="floating type to compute with (default: float64)"),
    "progress": Option(
        "--no-progress", default=True, help="do not show the progress bar over the outer iterations (needs tqdm)"
    ),
    "reinit_dead_atoms": Option("--reinit-dead-atoms"),
}


class Interrupted(Exception):
    """Ctrl-C stopped a command after it saved what it had, and said so."""


# -- options ---------------------------------------------------------------------------------------------


def _parse_number(text, kind):
    """``text`` as a float (``kind="real"``) or an int (otherwise), or argparse's error saying which."""
    try:
        return float(text) if kind == "real" else int(text)
    except ValueError:
        expected = "a number" if kind == "real" else "an integer"
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None


def number(kind, low, *, what="value"):
    """argparse ``type``: the text as an ``"int"`` or ``"real"`` at least ``low``, checked by check_scalar."""

    def parse(text):
        value = _parse_number(text, kind)
        try:
            return check_scalar(value, what, kind=kind, low=low)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{what} ")) from None

    return parse


def _parameter_type(name, spec):
    """argparse ``type`` for parameter ``name``: parse the text, then check it as the estimator would."""

    def parse(text):
        value = _parse_number(text, spec.kind)
        try:
            if spec.kind == "random_state":
                check_random_state(value, name)
                return value
            return spec.check(name, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def default_of(name):
    """The command line's default of parameter ``name``."""
    option = OPTIONS[name]
    return param_specs(EnergyAutoEncoder)[name][0] if option.default == AS_ESTIMATOR else option.default


def add_model_options(parser):
    """One option per parameter in :data:`OPTIONS`; unset options are absent from the namespace."""
    group = parser.add_argument_group("model (the parameters of eaelib.EnergyAutoEncoder)")
    specs = param_specs(EnergyAutoEncoder)
    for name, option in OPTIONS.items():
        spec = specs[name][1]
        help_text = (option.help or spec.help[0].lower() + spec.help[1:]).rstrip(".")
        kwargs = {"dest": name, "default": argparse.SUPPRESS}
        if spec.kind == "bool":
            negated = option.flag.startswith("--no-")
            group.add_argument(option.flag, action="store_const", const=not negated, help=help_text, **kwargs)
            continue
        if spec.kind in ("choice", "dtype"):
            kwargs["choices"] = spec.choices if spec.kind == "choice" else DTYPES[::-1]
        else:
            kwargs["type"] = _parameter_type(name, spec)
            kwargs["metavar"] = option.metavar
        if option.help is None or "default" not in option.help:
            help_text += f" (default: {default_of(name)})"
        group.add_argument(option.flag, help=help_text, **kwargs)


def model_params(args):
    """``(params, given)``: the estimator's parameters for ``args``, and those given on the command line."""
    params, given = {}, {}
    for name, option in OPTIONS.items():
        if hasattr(args, name):
            params[name] = given[name] = getattr(args, name)
        elif option.default != AS_ESTIMATOR:
            params[name] = option.default
    return params, given


def output_options():
    """The parent parser of every command's output: the folder ``--out``, and ``--quiet`` or ``--json``."""
    output = argparse.ArgumentParser(add_help=False)
    group = output.add_argument_group("output")
    group.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder, created if needed")
    printed = group.add_mutually_exclusive_group()
    printed.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (and no progress bar)")
    printed.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    return output


# -- usage errors and files --------------------------------------------------------------------------------


def usage_error(args, message):
    """A usage error: the command's usage and ``message`` on stderr, exit code 2."""
    args.command_parser.error(message)


def require(args, purpose, *needs, extra="full"):
    """Exit 2 if optional modules are missing, naming every missing package and the install line at once.

    ``needs`` are ``(module, option)`` pairs: ``option`` does without the module (e.g. ``--no-figures``), or is
    None. The message leads with what to install; the options come last, as the way to do without.
    """
    absent = [(module, option) for module, option in needs if missing(module)]
    if absent:
        message = missing_message(purpose, missing(*(module for module, _ in absent)), extra)
        options = [option for _, option in absent if option]
        usage_error(args, message + (f"; or pass {' '.join(options)}" if options else ""))


def show_progress(args):
    """Whether encode and denoise show a bar over the codes: unless --quiet, where tqdm is installed.

    Unlike learn's (--no-progress), this bar is not asked for, so its absence is no error.
    """
    return not args.quiet and not missing("tqdm")


def read_image(args, name, argument="IMAGE"):
    """The image that argument ``argument`` names (:func:`~eaelib.load_image`); usage errors otherwise."""
    from .image import load_image

    require(args, f"reading {argument}", ("PIL", None))
    try:
        return load_image(name)
    except (FileNotFoundError, ValueError) as exc:
        usage_error(args, f"argument {argument}: {exc}")


def read_model(args, path, argument="MODEL", need_layout=True):
    """The model file that argument ``argument`` names; usage errors otherwise, or if it has no patch layout."""
    try:
        model = load_model(path)
    except (FileNotFoundError, ValueError) as exc:
        usage_error(args, f"argument {argument}: {exc}")
    if need_layout and model.patch_layout_ is None:
        usage_error(
            args,
            f"argument {argument}: {path} does not say how its patches were cut (no patch size, stride and "
            "centring): it was not written by `eaelib learn`; save it with eaelib.save_model(model, path, "
            "patch_layout=eaelib.PatchLayout(size, stride, centered))",
        )
    return model


def make_out(args):
    """Create the output folder ``--out``; a usage error if it cannot be."""
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        usage_error(args, f"argument --out: cannot create {str(args.out)!r}: {exc}")


def write_summary(args, summary, lines, out=None):
    """summary.json into DIR, and the summary on ``out``: as text, as JSON (--json), or not (--quiet)."""
    out = sys.stdout if out is None else out
    with open(args.out / "summary.json", "w", encoding="utf-8") as file:
        json.dump(summary, file, indent=2, ensure_ascii=False)
        file.write("\n")
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False), file=out)
    elif not args.quiet:
        print("\n".join(lines), file=out)


def crop(image, shape):
    """The top-left ``shape`` of ``image``: the part that patches cover."""
    return image[: shape[0], : shape[1]]
