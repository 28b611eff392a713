"""The hyper-parameters of :class:`~eaelib.EnergyAutoEncoder`, each declared once.

Every parameter is a dataclass field, with its default, what it accepts and what it means
(:func:`eaelib._validation.param`): the one table behind the estimator's ``__init__``, ``get_params``, the
validation in ``fit``, the "Parameters" section of its docstring and, through the command line's own table
of options, the options of ``eaelib learn``. A new parameter is one more field.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from ._array import BACKENDS, DTYPES
from ._validation import check_params, check_scalar, param
from .learning import CERTIFY_EVERY, INITIALIZATIONS
from .subproblems import BALL_SOLVERS, CODE_SOLVERS

ALGORITHMS = ("batch", "online")
WEIGHTS = ("lambda_d", "lambda_e", "lambda_s", "lambda_g")


@dataclass(eq=False, repr=False)
class Parameters:
    """The hyper-parameters of :class:`~eaelib.EnergyAutoEncoder` (its base class), and their checks."""

    n_atoms: int = param(200, "int", "Number of atoms m (columns of D).", "int", low=1)
    _: KW_ONLY
    lambda_d: float = param(10.0, "real", "Weight λ_d of the reconstruction term.", "float", low=0.0)
    lambda_e: float = param(10.0, "real", "Weight λ_e of the encoder term.", "float", low=0.0)
    lambda_s: float = param(1.0, "real", "Weight λ_s of the sparsity term.", "float", low=0.0)
    lambda_g: float = param(
        0.0, "real", "Weight λ_g of the graph term; > 0 needs fit(X, laplacian=L).", "float", low=0.0
    )
    max_outer: int = param(
        200,
        "int",
        "Most outer iterations (algorithm='batch') or epochs ('online'); stopping there before convergence "
        "warns (ConvergenceWarning).",
        "int",
        low=1,
    )
    max_inner: int = param(
        100,
        "int",
        "Most iterations per Z-step, Newton steps on the support included (and per D- or E-step with solver='fista').",
        "int",
        low=1,
    )
    rtol: float = param(
        1e-3,
        "real",
        "Block-stationarity tolerance: the fit has converged when no block (Z, D or E) can lower the energy by "
        "more than rtol times its value, as certified by each block's duality gap.",
        "float",
        low=0.0,
    )
    inner_rtol: float = param(
        1e-4,
        "real",
        "A Z-step stops when its duality gap, summed over the samples, is at most min(inner_rtol, rtol/10) times "
        "the energy or a tenth of the gap it started from, whichever is larger; each sample also stops once its "
        "own gap is at most min(inner_rtol, rtol/10) times its part of the energy.",
        "float",
        low=0.0,
    )
    solver: str = param(
        "dual",
        "choice",
        "Solver of the D- and E-steps: Newton's method on the Lagrange dual (exact, in a few to a few dozen "
        "iterations) or FISTA (at most max_inner iterations), kept for comparison.",
        f"{{{', '.join(repr(s) for s in BALL_SOLVERS)}}}",
        choices=BALL_SOLVERS,
    )
    code_solver: str = param(
        "auto",
        "choice",
        "Solver of the codes (Z-steps and transform): 'lars', the compiled homotopy, exact in a few dozen "
        "steps per sample; 'fista', accelerated proximal gradient, on every array library; 'auto' takes the "
        "homotopy where the problem is ill-conditioned (L/μ ≥ 200, or ≥ 60 for transform's accurate solves; "
        "e.g. lambda_e small: sparse codes, where FISTA crawls), for NumPy arrays with numba installed, and FISTA "
        "elsewhere (see eaelib.subproblems.choose_code_solver).",
        f"{{{', '.join(repr(s) for s in CODE_SOLVERS)}}}",
        choices=CODE_SOLVERS,
    )
    algorithm: str = param(
        "batch",
        "choice",
        "'batch': alternate block solves over all the samples, certified at every outer iteration; 'online': "
        "epochs of mini-batches of batch_size samples, exact codes, D and E updated on running sums over the "
        "samples (eaelib.online), memory independent of the number of samples, certified every certify_every "
        "epochs. Measured on Barbara (one thread): with the default weights 'batch' is certified first (9.6 s "
        "against 12.5 s); without the encoder term (lambda_e=0) 'online' is (1.8 s, where 'batch' is not "
        "certified after 200 outer iterations, 33 s).",
        f"{{{', '.join(repr(a) for a in ALGORITHMS)}}}",
        choices=ALGORITHMS,
    )
    certify_every: int = param(
        CERTIFY_EVERY,
        "int",
        "With algorithm='online', certify the model (a pass over the data: exact codes, the energy and each block's "
        "duality gap) every certify_every epochs and after the last; convergence is checked there.",
        "int",
        low=1,
    )
    batch_size: int = param(
        256,
        "int",
        "Samples per mini-batch (algorithm='online' and partial_fit).",
        "int",
        low=1,
    )
    shuffle: bool = param(
        True,
        "bool",
        "Shuffle the samples before every epoch (algorithm='online'); a dask.array's batches are groups of its "
        "chunks, and only their order is shuffled (a PatchStream shuffles by its own random_state).",
        "bool",
    )
    init: str = param(
        "data",
        "choice",
        "Initial dictionary: samples drawn at random ('data'), Gaussian atoms ('random') or the principal "
        "directions of the data ('svd'); see eaelib.initialize.",
        f"{{{', '.join(repr(s) for s in INITIALIZATIONS)}}}",
        choices=INITIALIZATIONS,
    )
    random_state: int | np.random.Generator | None = param(
        None,
        "random_state",
        "Seed of the dictionary's random initialization: None (fresh entropy), an integer ≥ 0 or a Generator.",
        "int, numpy.random.Generator or None",
    )
    backend: str | None = param(
        None,
        "choice",
        "Array library to compute with; None follows the input.",
        f"{{{', '.join(repr(b) for b in BACKENDS)}}} or None",
        choices=BACKENDS,
    )
    dtype: str | None = param(
        None,
        "dtype",
        "Floating type to compute with; None keeps a floating input's and uses float64 otherwise.",
        f"{{{', '.join(repr(d) for d in DTYPES)}}} or None",
    )
    progress: bool = param(
        False,
        "bool",
        "Show a progress bar over the outer iterations (or epochs) of fit, and over the samples of transform's "
        "exact codes (needs tqdm).",
        "bool",
    )
    warm_start: bool = param(
        False,
        "bool",
        "Start fit from the fitted ``D_`` and ``E_`` (and, for data of the same shape, the last codes) instead of "
        "a new initialization; the histories then continue where they stopped when the data are the same.",
        "bool",
    )
    reinit_dead_atoms: bool = param(
        False,
        "bool",
        "After each Z-step, replace atoms that no code uses by the residuals of the worst-reconstructed samples "
        "(this does not change the energy).",
        "bool",
    )
    callback: object = param(
        None,
        "callable",
        "Called as callback(iteration, terms) after each outer iteration (terms as in energy); returning True "
        "stops the fit.",
        "callable or None",
    )

    # -- parameters ---------------------------------------------------------

    def _weights(self):
        weights = {name: check_scalar(getattr(self, name), name, low=0.0) for name in WEIGHTS}
        if weights["lambda_d"] == weights["lambda_e"] == weights["lambda_s"] == 0:
            raise ValueError("lambda_d, lambda_e and lambda_s cannot all be 0: the energy would not depend on Z")
        return weights

    @staticmethod
    def _lambdas(weights):
        """The weights of the terms that online learning and the codes use: λ_d, λ_e and λ_s (no graph)."""
        return {name: weights[name] for name in WEIGHTS[:3]}

    def _check_params(self):
        """Check every parameter against its declaration; returns the weights as floats."""
        check_params(self)
        return self._weights()
