"""eaelib: the energy auto-encoder, sparse coding with a learned dictionary and encoder.

The energy of codes ``Z`` (m × N), dictionary ``D`` (n × m) and encoder
``E`` (m × n) for data ``X`` (n × N, samples as columns) is ::

    λ_d/2 ‖X − DZ‖² + λ_e/2 ‖Z − EX‖² + λ_s ‖Z‖₁ + λ_g/2 tr(Z L Zᵀ)

with the columns of ``D`` and ``E`` in the unit ℓ2 ball. The estimator
:class:`EnergyAutoEncoder` takes samples as rows, like scikit-learn.
"""

from . import original  # the 2015 notebook's procedures, defects included (errata)
from .analysis import (
    CodeSparsity,
    atom_coherence,
    code_sparsity,
    encoder_dictionary_cosines,
    encoder_dictionary_distance,
    psnr,
)
from .denoising import LinearPatchFilter, add_noise, centered_patches, dct_dictionary, denoise
from .estimator import EnergyAutoEncoder
from .fista import FistaResult, L1Penalty, Quadratic, UnitColumns, fista, project_columns, soft_threshold
from .graph import GraphLaplacian, knn_laplacian, neighbour_code_distance
from .image import as_gray, load_image
from .learning import (
    DivergenceError,
    InnerTrace,
    LearningResult,
    dead_atoms,
    initialize,
    learn,
    reinitialize_dead_atoms,
)
from .model_io import load_model, save_model
from .patches import extract_patches, patch_grid, reconstruct_from_patches
from .subproblems import (
    code_problem,
    constraint_violation,
    dictionary_problem,
    encoder_problem,
    energy_terms,
    solve_codes,
    solve_dictionary,
    solve_encoder,
)
from .synthetic import encoder_dataset, match_atoms, sparse_dataset

__version__ = "0.1.0"

__all__ = [
    "CodeSparsity",
    "DivergenceError",
    "EnergyAutoEncoder",
    "FistaResult",
    "GraphLaplacian",
    "InnerTrace",
    "L1Penalty",
    "LearningResult",
    "LinearPatchFilter",
    "Quadratic",
    "UnitColumns",
    "add_noise",
    "as_gray",
    "atom_coherence",
    "centered_patches",
    "code_problem",
    "code_sparsity",
    "constraint_violation",
    "dct_dictionary",
    "dead_atoms",
    "denoise",
    "dictionary_problem",
    "encoder_dataset",
    "encoder_dictionary_cosines",
    "encoder_dictionary_distance",
    "encoder_problem",
    "energy_terms",
    "extract_patches",
    "fista",
    "initialize",
    "knn_laplacian",
    "learn",
    "load_image",
    "load_model",
    "match_atoms",
    "neighbour_code_distance",
    "original",
    "patch_grid",
    "project_columns",
    "psnr",
    "reconstruct_from_patches",
    "reinitialize_dead_atoms",
    "save_model",
    "soft_threshold",
    "solve_codes",
    "solve_dictionary",
    "solve_encoder",
    "sparse_dataset",
]
