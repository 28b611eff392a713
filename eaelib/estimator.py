"""``EnergyAutoEncoder``: the scikit-learn-style estimator (samples are rows)."""

from __future__ import annotations

import warnings
from dataclasses import replace

from ._array import backend_name, get_namespace
from ._base import BaseEstimator, ConvergenceWarning, NotFittedError, TransformerMixin
from ._validation import check_array, check_scalar, model_namespace
from .graph import GraphLaplacian
from .learning import DivergenceError, dead_atoms, initialize, learn
from .subproblems import energy_terms, solve_codes

TRANSFORM_METHODS = ("exact", "encoder")


class EnergyAutoEncoder(TransformerMixin, BaseEstimator):
    """Sparse coding with a learned dictionary ``D`` and a learned linear encoder ``E``.

    Minimizes, over codes ``Z``, dictionary ``D`` and encoder ``E``, the energy ::

        λ_d/2 ‖X − DZ‖² + λ_e/2 ‖Z − EX‖² + λ_s ‖Z‖₁ + λ_g/2 tr(Z L Zᵀ)

    subject to unit-norm-bounded columns of ``D`` and ``E``, by alternating
    FISTA solves of the three convex subproblems. The formula is in the
    book's orientation (samples as columns); the methods take and return
    samples as rows, like scikit-learn.

    Parameters
    ----------
    n_atoms : int, default=200
        Number of atoms ``m`` (columns of ``D``).
    lambda_d, lambda_e, lambda_s, lambda_g : float, default=10, 10, 1, 0
        Weights of the reconstruction, encoder, sparsity and graph terms.
    max_outer : int, default=20
        Most alternating (outer) iterations.
    max_inner : int, default=100
        Most FISTA iterations per subproblem.
    rtol : float, default=1e-3
        Stop when an outer iteration lowers the energy by less than ``rtol`` times its value.
    inner_rtol : float, default=1e-4
        Same, for the objective of each subproblem within FISTA.
    random_state : int, numpy.random.Generator or None
        Seed of the dictionary's random initialization.
    backend : {"numpy", "cupy", "array_api_strict"} or None
        Array library to compute with; ``None`` follows the input.
    dtype : {"float32", "float64"} or None
        Floating type to compute with; ``None`` keeps a floating input's and
        uses float64 otherwise.
    progress : bool, default=False
        Show a progress bar over outer iterations (needs tqdm).
    warm_start : bool, default=False
        Start :meth:`fit` from the fitted ``D_`` and ``E_`` (and, for data of
        the same shape, the last codes) instead of a random initialization;
        the histories then continue where they stopped when the data are the same.
    reinit_dead_atoms : bool, default=False
        After each Z-step, replace atoms that no code uses by the residuals of
        the worst-reconstructed samples (this does not change the energy).
    callback : callable, optional
        Called as ``callback(iteration, terms)`` after each outer iteration
        (``terms`` as in :meth:`energy`); returning ``True`` stops the fit.

    Attributes
    ----------
    D_ : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns (the book's ``D``).
    E_ : array, shape (n_atoms, n_features)
        Encoder (the book's ``E``): codes are approximated by ``X @ E_.T``.
    components_ : array, shape (n_atoms, n_features)
        ``D_.T``, scikit-learn's name for the atoms as rows.
    objective_history_ : list of float
        Total energy at initialization and after each outer iteration; never increases.
    energy_history_ : list of dict
        Every term of the energy at the same points (see :meth:`energy`).
    inner_history_ : list of InnerTrace
        Per subproblem solve, the objective after each FISTA iteration.
    n_iter_ : int
        Outer iterations performed.
    converged_ : bool
        Whether the relative tolerance was reached within ``max_outer``.
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    backend_ : str
        Name of the array library the model computes with.
    n_dead_atoms_ : int
        Atoms that no training sample's code uses at the end of the fit.
    n_reinitialized_atoms_ : int
        Atoms replaced during the fit (``reinit_dead_atoms=True``).

    Notes
    -----
    A ``KeyboardInterrupt`` during :meth:`fit` ends it early: the model keeps
    the last complete outer iteration, ``converged_`` is False and a
    :class:`ConvergenceWarning` says so; ``warm_start=True`` then continues.
    If a subproblem diverges, :meth:`fit` raises ``FloatingPointError`` naming
    the subproblem and the outer iteration, and keeps the last finite parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import EnergyAutoEncoder
    >>> X = np.random.default_rng(0).random((300, 16))
    >>> model = EnergyAutoEncoder(n_atoms=24, random_state=0).fit(X)
    >>> model.D_.shape, model.E_.shape
    ((16, 24), (24, 16))
    >>> codes = model.transform(X, method="encoder")
    >>> all(b <= a for a, b in zip(model.objective_history_, model.objective_history_[1:]))
    True
    """

    def __init__(
        self,
        n_atoms=200,
        *,
        lambda_d=10.0,
        lambda_e=10.0,
        lambda_s=1.0,
        lambda_g=0.0,
        max_outer=20,
        max_inner=100,
        rtol=1e-3,
        inner_rtol=1e-4,
        random_state=None,
        backend=None,
        dtype=None,
        progress=False,
        warm_start=False,
        reinit_dead_atoms=False,
        callback=None,
    ):
        self.n_atoms = n_atoms
        self.lambda_d = lambda_d
        self.lambda_e = lambda_e
        self.lambda_s = lambda_s
        self.lambda_g = lambda_g
        self.max_outer = max_outer
        self.max_inner = max_inner
        self.rtol = rtol
        self.inner_rtol = inner_rtol
        self.random_state = random_state
        self.backend = backend
        self.dtype = dtype
        self.progress = progress
        self.warm_start = warm_start
        self.reinit_dead_atoms = reinit_dead_atoms
        self.callback = callback

    # -- parameters ---------------------------------------------------------

    def _weights(self):
        weights = {
            name: check_scalar(getattr(self, name), name, low=0.0)
            for name in ("lambda_d", "lambda_e", "lambda_s", "lambda_g")
        }
        if weights["lambda_d"] == weights["lambda_e"] == weights["lambda_s"] == 0:
            raise ValueError("lambda_d, lambda_e and lambda_s cannot all be 0: the energy would not depend on Z")
        return weights

    def _check_params(self):
        weights = self._weights()
        check_scalar(self.n_atoms, "n_atoms", kind="int", low=1)
        check_scalar(self.max_outer, "max_outer", kind="int", low=1)
        check_scalar(self.max_inner, "max_inner", kind="int", low=1)
        check_scalar(self.rtol, "rtol", low=0.0)
        check_scalar(self.inner_rtol, "inner_rtol", low=0.0)
        return weights

    # -- fitting --------------------------------------------------------------

    def fit(self, X, y=None, *, laplacian=None):
        """Learn ``D_`` and ``E_`` from ``X`` of shape (n_samples, n_features).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Training samples as rows.
        y : ignored
        laplacian : array or sparse matrix, shape (n_samples, n_samples), optional
            Graph Laplacian over the samples; used when ``lambda_g > 0``.

        Returns
        -------
        self
        """
        self._fit(X, laplacian)
        return self

    def fit_transform(self, X, y=None, *, laplacian=None):
        """Fit, then return the exact codes of ``X`` for the learned model."""
        return self.fit(X, laplacian=laplacian).transform(X)

    def _fit(self, X, laplacian):
        weights = self._check_params()
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback must be callable or None, got {self.callback!r}")
        xp = model_namespace(self.backend, X)
        xp, X = check_array(X, xp=xp, dtype=self.dtype)
        n_samples, n_features = X.shape
        graph = None
        if weights["lambda_g"] > 0:
            if laplacian is None:
                raise ValueError("lambda_g > 0 needs fit(X, laplacian=L) with L of shape (n_samples, n_samples)")
            graph = GraphLaplacian(laplacian, n_samples=n_samples, dtype=X.dtype, xp=xp, device=X.device)
        Xb = X.mT  # the book's orientation: samples as columns
        Z0, D0, E0 = self._starting_point(Xb)

        progress, bar = self._progress_callback()

        def callback(iteration, terms):
            stop = progress is not None and progress(iteration, terms)
            return bool(self.callback is not None and self.callback(iteration, terms)) or stop

        try:
            result = learn(
                Xb,
                Z0,
                D0,
                E0,
                **weights,
                laplacian=graph,
                max_outer=self.max_outer,
                max_inner=self.max_inner,
                rtol=self.rtol,
                inner_rtol=self.inner_rtol,
                reinit_dead_atoms=self.reinit_dead_atoms,
                callback=callback,
            )
        except DivergenceError as exc:
            self._store(exc.result, xp, n_features)
            raise
        finally:
            if bar is not None:
                bar.close()
        self._store(result, xp, n_features)
        if result.interrupted:
            warnings.warn(
                f"fit was interrupted after {self.n_iter_} outer iterations: the model holds the last complete "
                "one and is not converged; fit again with warm_start=True to continue",
                ConvergenceWarning,
                stacklevel=3,
            )
        return result.Z

    def _starting_point(self, Xb):
        """``(Z, D, E)`` to start from: random, or the fitted state when warm starting."""
        n_features, n_samples = Xb.shape
        if not (self.warm_start and hasattr(self, "D_")):
            return initialize(Xb, self.n_atoms, self.random_state)
        xp = get_namespace(Xb)
        _, D = check_array(self.D_, name="D_", xp=xp, dtype=Xb.dtype)
        _, E = check_array(self.E_, name="E_", xp=xp, dtype=Xb.dtype)
        if D.shape != (n_features, self.n_atoms):
            raise ValueError(
                f"warm_start needs X with {D.shape[0]} features and n_atoms={D.shape[1]} as fitted, "
                f"got {n_features} features and n_atoms={self.n_atoms}"
            )
        codes = getattr(self, "_codes", None)
        if codes is not None and tuple(codes.shape) == (self.n_atoms, n_samples):
            _, Z = check_array(codes, name="codes", xp=xp, dtype=Xb.dtype)
        else:
            Z = xp.zeros((self.n_atoms, n_samples), dtype=Xb.dtype, device=Xb.device)
        return Z, D, E

    def _store(self, result, xp, n_features):
        """Set the fitted attributes from a :class:`LearningResult`, continuing a warm start's history."""
        energy, inner, n_iter = result.energy, result.inner, result.n_iter
        previous = getattr(self, "objective_history_", None)
        if self.warm_start and previous and energy[0]["total"] == previous[-1]:
            # The same data from where the last fit stopped: one history.
            offset = self.n_iter_
            energy = self.energy_history_ + energy[1:]
            inner = self.inner_history_ + [replace(trace, outer=trace.outer + offset) for trace in inner]
            n_iter += offset
        self.D_, self.E_, self._codes = result.D, result.E, result.Z
        self.energy_history_ = energy
        self.objective_history_ = [terms["total"] for terms in energy]
        self.inner_history_ = inner
        self.n_iter_ = n_iter
        self.converged_ = result.converged
        self.n_features_in_ = n_features
        self.backend_ = backend_name(xp)
        self.n_dead_atoms_ = int(xp.sum(xp.astype(dead_atoms(result.Z), xp.int32)))
        self.n_reinitialized_atoms_ = result.n_reinitialized

    def _progress_callback(self):
        if not self.progress:
            return None, None
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise ImportError("progress=True needs tqdm: pip install tqdm (or set progress=False)") from exc
        bar = tqdm(total=self.max_outer, desc="outer iterations", unit="it")

        def callback(iteration, terms):
            bar.update(1)
            bar.set_postfix(energy=f"{terms['total']:.6g}")
            return False

        return callback, bar

    # -- using the model --------------------------------------------------------

    @property
    def components_(self):
        self._check_fitted()
        return self.D_.mT

    def _check_fitted(self):
        if not hasattr(self, "D_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments first."
            )

    def _check_input(self, X, name="X", n_columns=None, what="features"):
        self._check_fitted()
        xp = get_namespace(self.D_)
        _, X = check_array(X, name=name, xp=xp, dtype=self.D_.dtype)
        n_expected = self.n_features_in_ if n_columns is None else n_columns
        if X.shape[1] != n_expected:
            raise ValueError(
                f"{name} has {X.shape[1]} {what}, but {type(self).__name__} is expecting {n_expected} {what} as input"
            )
        return xp, X

    def transform(self, X, method="exact", *, rtol=None, max_iter=None):
        """Codes of ``X``, shape (n_samples, n_atoms).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        method : {"exact", "encoder"}
            ``"exact"`` solves the Z-subproblem for the learned ``D_`` and
            ``E_``; ``"encoder"`` is the fast approximation ``X @ E_.T`` (one
            matrix product), the reason the encoder is learned.
        rtol : float, optional
            Relative tolerance of the exact solve; by default 0: until the
            objective of every sample stops changing beyond rounding.
        max_iter : int, optional
            Most FISTA iterations of the exact solve; ``10 * max_inner`` by default.
        """
        if method not in TRANSFORM_METHODS:
            raise ValueError(f"method must be one of {TRANSFORM_METHODS}, got {method!r}")
        _, X = self._check_input(X)
        if method == "encoder":
            return X @ self.E_.mT
        weights = self._weights()
        rtol = check_scalar(0.0 if rtol is None else rtol, "rtol", low=0.0)
        max_iter = check_scalar(10 * self.max_inner if max_iter is None else max_iter, "max_iter", kind="int", low=1)
        result = solve_codes(
            X.mT,
            self.D_,
            self.E_,
            lambda_d=weights["lambda_d"],
            lambda_e=weights["lambda_e"],
            lambda_s=weights["lambda_s"],
            rtol=rtol,
            max_iter=max_iter,
        )
        return result.x.mT

    def inverse_transform(self, Z):
        """Reconstructions ``Z @ D_.T`` (the book's ``DZ``), shape (n_samples, n_features)."""
        self._check_fitted()
        _, Z = self._check_input(Z, name="Z", n_columns=self.D_.shape[1], what="atoms")
        return Z @ self.D_.mT

    def energy(self, X, Z=None, *, laplacian=None):
        """The energy of ``X`` under the fitted model, term by term.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        Z : array-like, shape (n_samples, n_atoms), optional
            Codes; by default the exact codes ``transform(X)``.
        laplacian : optional
            Graph Laplacian over the samples of ``X``, for the graph term.

        Returns
        -------
        dict
            ``data``, ``encoder``, ``sparsity``, ``graph`` and ``total``.
        """
        weights = self._weights()
        xp, X = self._check_input(X)
        if Z is None:
            Z = self.transform(X)
        else:
            _, Z = self._check_input(Z, name="Z", n_columns=self.D_.shape[1], what="atoms")
            if Z.shape[0] != X.shape[0]:
                raise ValueError(f"Z must have one row per sample of X ({X.shape[0]}), got {Z.shape[0]}")
        graph = None
        if weights["lambda_g"] > 0 and laplacian is not None:
            graph = GraphLaplacian(laplacian, n_samples=X.shape[0], dtype=X.dtype, xp=xp, device=X.device)
        elif weights["lambda_g"] > 0:
            weights["lambda_g"] = 0.0  # no graph over these samples: the term is absent
        return energy_terms(X.mT, Z.mT, self.D_, self.E_, **weights, laplacian=graph)

    def save(self, path):
        """Write the fitted model to ``path`` (``.npz``, no pickle); see :func:`eaelib.save_model`."""
        from .model_io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; see :func:`eaelib.load_model`."""
        from .model_io import load_model

        return load_model(path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
