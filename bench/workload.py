"""The benchmark workload: Barbara's 12×12 patches, m = 200 atoms, λ_d = λ_e = 10, λ_s = 1.

Everything here is in the book's orientation (``X`` is n × N, samples as
columns), the orientation of :func:`eaelib.learn`; the estimator's orientation
(samples as rows) is ``X.T``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import eaelib

PATCH_SIZE = 12
N_ATOMS = 200
SEED = 0
LAMBDAS = {"lambda_d": 10.0, "lambda_e": 10.0, "lambda_s": 1.0}


@dataclass(frozen=True)
class Size:
    """One problem size: patches at ``stride``, optionally only the first ``max_samples``.

    Parameters
    ----------
    label : str
        Short name used in the tables (``"N≈2.7k"``).
    stride : int
        Step between patches: 12 gives non-overlapping patches (N = 2726),
        4 gives N = 24 393 and 1 gives N = 389 033.
    max_samples : int, optional
        Keep only the first patches (for the smoke run's tiny sizes).
    """

    label: str
    stride: int
    max_samples: int | None = None

    def describe(self):
        """``"stride 4"`` or ``"stride 12, first 300"``."""
        text = f"stride {self.stride}"
        return text if self.max_samples is None else f"{text}, first {self.max_samples}"


#: The issue's three sizes; stride 1 is opt-in (``--stride1``): hundreds of MB per array.
FULL_SIZES = (Size("N≈2.7k", 12), Size("N≈24k", 4))
STRIDE1_SIZE = Size("N≈390k", 1)
#: Tiny sizes of the smoke run (seconds): the first patches of the non-overlapping set.
SMOKE_SIZES = (Size("N=256", 12, 256), Size("N=768", 12, 768))


@dataclass
class Workload:
    """Data of one size with the starting point shared by every method.

    Attributes
    ----------
    size : Size
    X : numpy.ndarray, shape (n, N)
        Patches as columns, float64 unless converted with :meth:`astype`.
    n_atoms : int
    seed : int
    lambdas : dict
        ``lambda_d``, ``lambda_e`` and ``lambda_s``.
    """

    size: Size
    X: np.ndarray
    n_atoms: int = N_ATOMS
    seed: int = SEED
    lambdas: dict = field(default_factory=lambda: dict(LAMBDAS))

    @property
    def n(self):
        """Patch dimension (144)."""
        return self.X.shape[0]

    @property
    def N(self):
        """Number of patches."""
        return self.X.shape[1]

    def initial(self):
        """Starting codes, dictionary and encoder ``(Z0, D0, E0)`` in ``X``'s dtype.

        :func:`eaelib.initialize` with the estimator's default ``init``, the start
        of :class:`eaelib.EnergyAutoEncoder` for ``random_state=seed``: ``E0``
        the column projection of ``D0ᵀ``, and ``Z0 = 0``.
        """
        return eaelib.initialize(self.X, self.n_atoms, self.seed, method=eaelib.EnergyAutoEncoder().init)

    def astype(self, dtype):
        """The same workload with ``X`` converted to ``dtype``."""
        return Workload(self.size, np.ascontiguousarray(self.X, dtype=dtype), self.n_atoms, self.seed, self.lambdas)


def load_patches(size):
    """Patches of Barbara in grayscale for ``size``, as columns (n × N, float64)."""
    image = eaelib.load_image("barbara")
    rows = eaelib.extract_patches(image, PATCH_SIZE, size.stride)
    if size.max_samples is not None:
        rows = rows[: size.max_samples]
    return np.ascontiguousarray(rows.T)


def make_workload(size, n_atoms=N_ATOMS, seed=SEED):
    """The :class:`Workload` of ``size``."""
    return Workload(size, load_patches(size), n_atoms, seed)
