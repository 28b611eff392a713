"""eaelib: the energy auto-encoder, sparse coding with a learned dictionary and encoder.

The energy of codes ``Z`` (m × N), dictionary ``D`` (n × m) and encoder
``E`` (m × n) for data ``X`` (n × N, samples as columns) is ::

    λ_d/2 ‖X − DZ‖² + λ_e/2 ‖Z − EX‖² + λ_s ‖Z‖₁ + λ_g/2 tr(Z L Zᵀ)

with the columns of ``D`` and ``E`` in the unit ℓ2 ball. The estimator
:class:`EnergyAutoEncoder` takes samples as rows, like scikit-learn.
"""

import importlib
import importlib.util

from ._version import __version__ as __version__

# The function fista shares its name with the module eaelib.fista, and importing a submodule binds its
# name in the package the first time: bound here, eagerly, the name is the function for good.
from .fista import fista as fista

# Every public name and the module that defines it. They are imported on first use (PEP 562), so that
# `import eaelib` stays light and a copy of part of the package (the core: fista, subproblems, learning,
# estimator, patches) works without the modules it leaves out.
_EXPORTS = {
    # analysis.py
    "CodeSparsity": "analysis",
    "atom_coherence": "analysis",
    "code_sparsity": "analysis",
    "encoder_dictionary_cosines": "analysis",
    "encoder_dictionary_distance": "analysis",
    "psnr": "analysis",
    # denoising.py
    "LinearPatchFilter": "denoising",
    "add_noise": "denoising",
    "centered_patches": "denoising",
    "dct_dictionary": "denoising",
    "denoise": "denoising",
    # dual.py
    "DualResult": "dual",
    "solve_ball_least_squares": "dual",
    # encoders.py
    "LISTA": "encoders",
    "ShrinkageEncoder": "encoders",
    "ista_weights": "encoders",
    # estimator.py
    "EnergyAutoEncoder": "estimator",
    "load_model": "model_io",
    "save_model": "model_io",
    # fista.py
    "FistaResult": "fista",
    "L1Penalty": "fista",
    "Quadratic": "fista",
    "UnitColumns": "fista",
    "certificate": "fista",
    "project_columns": "fista",
    "soft_threshold": "fista",
    # graph.py
    "GraphLaplacian": "graph",
    "knn_laplacian": "graph",
    "neighbour_code_distance": "graph",
    # image.py
    "as_gray": "image",
    "load_image": "image",
    "save_image": "image",
    # learning.py
    "DivergenceError": "learning",
    "SourceError": "learning",
    "EnergyIncreaseError": "learning",
    "InnerTrace": "learning",
    "LearningResult": "learning",
    "dead_atoms": "learning",
    "initialize": "learning",
    "learn": "learning",
    "reinitialize_dead_atoms": "learning",
    # patches.py
    "PatchLayout": "patches",
    "extract_patches": "patches",
    "patch_grid": "patches",
    "reconstruct_from_patches": "patches",
    # streams.py
    "PatchStream": "streams",
    "image_files": "streams",
    # subproblems.py
    "code_problem": "subproblems",
    "constraint_violation": "subproblems",
    "dictionary_problem": "subproblems",
    "dictionary_statistics": "subproblems",
    "encoder_problem": "subproblems",
    "encoder_statistics": "subproblems",
    "energy_terms": "subproblems",
    "solve_ball": "subproblems",
    "solve_codes": "subproblems",
    "solve_dictionary": "subproblems",
    "solve_encoder": "subproblems",
    # synthetic.py
    "encoder_dataset": "synthetic",
    "match_atoms": "synthetic",
    "sparse_dataset": "synthetic",
}
# Submodules that are public names themselves.
# original: the 2015 notebook's procedures, defects included (errata); online: learning from running sums
# (Statistics, the forgetting schedule, learn_online); distributed: the Dask fit (needs dask); homotopy: exact
# codes compiled with numba (lasso_gram); coordinate: the online D-step's coordinate pass.
_SUBMODULES = ("original", "online", "distributed", "homotopy", "coordinate")


def __getattr__(name):
    if name in _EXPORTS:
        module_name = _EXPORTS[name]
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        module_name = name  # a submodule: eaelib.image, eaelib.plot, … as after an eager import
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module_name}":
            raise
        raise ImportError(
            f"{__name__}.{name} is defined in {module_name}.py, which this copy of {__name__} lacks: "
            f"copy {module_name}.py into {__path__[0]} too"
        ) from exc
    value = module if module_name == name else getattr(module, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = sorted(["fista", *_EXPORTS, *_SUBMODULES])
