"""Settings of one benchmark run: the full run, the smoke run, and the command-line overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .workload import FULL_SIZES, N_ATOMS, SMOKE_SIZES, STRIDE1_SIZE

COMPARISONS = ("original", "sklearn", "hardware", "inference", "scaling", "spams", "collection")
#: Comparison 7 (bench/compare_collection.py): the model, the batches of the streamed pass and of the Dask fit,
#: and about how many patches the Dask fit learns from; "faces": only that many faces (the smoke run).
COLLECTION = {
    "faces": None,
    "patch_size": 12,
    "n_atoms": 100,
    "batch_size": 1024,
    "first_checkpoint": 65_536,
    "dask_batch_size": 8192,
    "subset": 250_000,
}
SMOKE_COLLECTION = COLLECTION | {
    "faces": 10,  # 10 faces of 25 × 25: 1960 patches
    "n_atoms": 16,
    "batch_size": 128,
    "first_checkpoint": 256,
    "dask_batch_size": 256,
    "subset": 1000,
}


@dataclass(frozen=True)
class Config:
    """Everything that sizes a run; recorded in the results.

    Parameters
    ----------
    sizes : tuple of Size
        Problem sizes of the comparisons 1, 2 and 4.
    hardware_sizes : tuple of Size
        Sizes of the Z-step comparison (3).
    scaling_sizes : tuple of Size
        Sizes of the scaling comparison (5), each run in its own process.
    comparisons : tuple of str
        Which of :data:`COMPARISONS` to run.
    n_atoms : int
        Atoms ``m``.
    repeats : int
        Runs behind every median of eaelib and of the GEMM.
    reference_repeats : int
        Runs behind the medians of the slow references (the original
        approach, scikit-learn, the exact transform).
    threads : int, optional
        BLAS/OpenMP threads (threadpoolctl); None leaves the libraries' default.
    original_outer, original_maxit : int
        The original approach's outer iterations (the notebook's 20) and pyunlocbox ``maxit``.
    sklearn_max_iter : int
        DictionaryLearning iterations (at most: its own tolerance may stop it first).
    large_n, original_outer_large, sklearn_max_iter_large : int
        From ``large_n`` samples on, the original approach and DictionaryLearning
        run only this many iterations (each takes about a minute at N ≈ 24k on
        2 cores). A fixed count, not a time, so that the energy compared at is
        the same on every machine.
    original_budget, sklearn_budget : float, optional
        Safety nets: seconds after which the original approach (or
        DictionaryLearning) stops at the end of its current iteration; the
        comparison is then at the energy it reached. None: no limit.
    minibatch_max_iter : int
        MiniBatchDictionaryLearning epochs (scikit-learn's early stopping usually ends it sooner).
    eaelib_patience : float
        eaelib gives up on an energy after this many times the reference's time
        (the ratio is then reported as an upper bound).
    eaelib_max_outer : int
        Most outer iterations of eaelib while it runs to an energy.
    zstep_iters : int
        FISTA iterations timed per Z-step measurement.
    inference_fit_outer : int
        Outer iterations of the model fitted for the inference comparison.
    scaling_outer : int
        Outer iterations timed per size in the scaling comparison.
    spams_iterations : tuple of int
        SPAMS ``trainDL`` iteration counts (batches of 256) of comparison 6.
    online_max_epochs : int
        Most epochs of eaelib's online learner while it runs to an energy.
    collection : dict
        Settings of comparison 7 (:data:`COLLECTION`).
    """

    sizes: tuple = FULL_SIZES
    hardware_sizes: tuple = FULL_SIZES
    scaling_sizes: tuple = FULL_SIZES
    comparisons: tuple = COMPARISONS
    n_atoms: int = N_ATOMS
    repeats: int = 3
    reference_repeats: int = 1
    threads: int | None = None
    original_outer: int = 20
    original_maxit: int = 200
    sklearn_max_iter: int = 20
    large_n: int = 10_000
    original_outer_large: int = 3
    sklearn_max_iter_large: int = 3
    original_budget: float | None = None
    sklearn_budget: float | None = None
    minibatch_max_iter: int = 1000
    eaelib_patience: float = 2.0
    eaelib_max_outer: int = 1000
    zstep_iters: int = 30
    inference_fit_outer: int = 20
    scaling_outer: int = 3
    spams_iterations: tuple = (100, 300, 3000)
    online_max_epochs: int = 200
    collection: dict = field(default_factory=lambda: dict(COLLECTION))
    smoke: bool = False

    def original_outer_for(self, n_samples):
        """Outer iterations of the original approach for ``n_samples`` samples."""
        large = n_samples >= self.large_n
        return min(self.original_outer, self.original_outer_large) if large else self.original_outer

    def sklearn_max_iter_for(self, n_samples):
        """DictionaryLearning iterations for ``n_samples`` samples."""
        large = n_samples >= self.large_n
        return min(self.sklearn_max_iter, self.sklearn_max_iter_large) if large else self.sklearn_max_iter

    def as_dict(self):
        """JSON-ready settings (sizes as their labels and strides)."""
        settings = asdict(self)
        for key in ("sizes", "hardware_sizes", "scaling_sizes"):
            settings[key] = [asdict(size) for size in getattr(self, key)]
        return settings


#: The smoke run: tiny sizes and few iterations, so that every code path runs in well under a minute.
SMOKE = Config(
    sizes=SMOKE_SIZES,
    hardware_sizes=SMOKE_SIZES,
    scaling_sizes=SMOKE_SIZES,
    repeats=2,
    reference_repeats=1,
    original_outer=3,
    original_maxit=50,
    sklearn_max_iter=2,
    minibatch_max_iter=1,
    eaelib_patience=2.0,
    eaelib_max_outer=100,
    zstep_iters=5,
    threads=1,  # tiny products gain nothing from threads, and one thread keeps a shared machine from stalling it
    inference_fit_outer=3,
    scaling_outer=2,
    spams_iterations=(5, 10),
    online_max_epochs=3,
    collection=SMOKE_COLLECTION,
    smoke=True,
)


def make_config(smoke=False, stride1=False, **overrides):
    """The full or smoke configuration, with stride 1 added to comparisons 3 and 5 and overrides applied."""
    config = SMOKE if smoke else Config()
    if stride1:
        config = replace(
            config,
            hardware_sizes=(*config.hardware_sizes, STRIDE1_SIZE),
            scaling_sizes=(*config.scaling_sizes, STRIDE1_SIZE),
        )
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})
