"""``EnergyAutoEncoder``: the scikit-learn-style estimator (samples are rows)."""

from __future__ import annotations

import warnings

from ._array import backend_name, get_namespace
from ._base import BaseEstimator, ConvergenceWarning, NotFittedError, TransformerMixin
from ._parameters import Parameters
from ._progress import with_progress
from ._validation import (
    check_array,
    check_likely_mistakes,
    check_random_state,
    check_scalar,
    model_namespace,
    numpydoc_parameters,
)
from .learning import (
    HISTORIES,
    DivergenceError,
    EnergyIncreaseError,
    SourceError,
    dead_atoms,
    histories,
    initialize,
    learn,
    stop_message,
)
from .sources import batch_source, is_dask_array, is_patch_stream
from .subproblems import EXACT_RTOL, energy_terms, exact_codes

TRANSFORM_METHODS = ("exact", "encoder")


class EnergyAutoEncoder(Parameters, TransformerMixin, BaseEstimator):
    """Sparse coding with a learned dictionary ``D`` and a learned linear encoder ``E``.

    Minimizes, over codes ``Z``, dictionary ``D`` and encoder ``E``, the energy ::

        λ_d/2 ‖X − DZ‖² + λ_e/2 ‖Z − EX‖² + λ_s ‖Z‖₁ + λ_g/2 tr(Z L Zᵀ)

    subject to unit-norm-bounded columns of ``D`` and ``E``, by alternating certified solves of the
    three convex subproblems: for the codes, the compiled homotopy (exact) where they are sparse and
    FISTA elsewhere (``code_solver``), Newton's method on the Lagrange dual for ``D`` and ``E`` (online:
    one coordinate pass on ``D`` per batch). The fit stops when no block can lower the energy by more
    than ``rtol`` times its value (each block's duality gap), or warns at ``max_outer``. The formula is
    in the book's orientation (samples as columns); the methods take and return samples as rows, like
    scikit-learn.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    D_ : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns (the book's ``D``).
    E_ : array, shape (n_atoms, n_features)
        Encoder (the book's ``E``): codes are approximated by ``X @ E_.T``.
    components_ : array, shape (n_atoms, n_features)
        ``D_.T``, scikit-learn's name for the atoms as rows.
    objective_history_ : list of float
        Total energy at initialization and after each outer iteration (or each certified epoch of
        algorithm='online', see ``history_iterations_``); never increases.
    energy_history_ : list of dict
        Every term of the energy at the same points (see :meth:`energy`).
    inner_history_ : list of InnerTrace
        Per subproblem solve, the objective and the certificate (duality gap) after each inner iteration.
    history_iterations_ : list of int
        The outer iteration (or epoch) of each entry of ``objective_history_`` and
        ``energy_history_``, 0 first (the initialization); ``certificate_history_``
        holds the entries after the first.
    certificate_history_ : list of dict
        After each outer iteration, each block's duality gap (``"Z"``, ``"D"``,
        ``"E"``): how much re-solving that block alone could still lower the energy.
    n_iter_ : int
        Outer iterations performed.
    converged_ : bool
        Whether the fit is block-stationary to ``rtol``: every block's duality
        gap is at most ``rtol`` times the energy.
    stop_reason_ : str
        Why the fit stopped: ``"converged"``, ``"max_outer"``, ``"stalled"``
        (no progress beyond the rounding of the energy), ``"callback"`` or
        ``"interrupted"``.
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    backend_ : str
        Name of the array library the model computes with.
    n_dead_atoms_ : int
        Atoms that no training sample's code uses at the end of the fit.
    n_reinitialized_atoms_ : int
        Atoms replaced during the fit (``reinit_dead_atoms=True``).
    patch_layout_ : PatchLayout or None
        Only on a model read by :func:`load_model`: how its samples were cut
        from an image, as stored in the file (None if the file has none).

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

    # -- fitting --------------------------------------------------------------

    def fit(self, X, y=None, *, laplacian=None, allow_few_samples=False):
        """Learn ``D_`` and ``E_`` from ``X`` of shape (n_samples, n_features).

        Parameters
        ----------
        X : array-like, PatchStream or dask.array, shape (n_samples, n_features)
            Training samples as rows. A :class:`~eaelib.PatchStream` (patches
            streamed from many images) or a ``dask.array`` chunked along the
            samples (learned on the active Dask scheduler, see
            :mod:`eaelib.distributed`) needs ``algorithm="online"``: the
            stream's own batches are the mini-batches; a Dask array's batches
            are its consecutive chunks, grouped to hold at least
            ``batch_size`` samples each. Both start from their first batch.
        y : None
            Ignored: there for scikit-learn's API.
        laplacian : array or sparse matrix, shape (n_samples, n_samples), optional
            Graph Laplacian over the samples; used when ``lambda_g > 0``.
        allow_few_samples : bool, default False
            Learn from an array ``X`` with fewer samples (rows) than features.
            Such an ``X`` is refused by default: it is most likely transposed
            (samples as columns, the book's orientation), and learning from it
            as it is would take minutes to produce a meaningless model.

        Returns
        -------
        EnergyAutoEncoder
            The model itself, fitted.

        Raises
        ------
        ValueError
            If ``X`` has fewer samples than features (most likely samples as
            columns, the book's orientation), unless ``allow_few_samples``.
        FloatingPointError
            If a subproblem diverges (naming it and the outer iteration); the
            model keeps the last finite parameters.
        SourceError
            If a Dask task fails for good (after its retries): the model then
            holds the last completed mini-batch update, its histories the last
            completed epoch, and ``warm_start=True`` continues.

        Warns
        -----
        DataConversionWarning
            If ``X`` holds integers: pixel values are meant to be in [0, 1].
        ConvergenceWarning
            If the fit stops before block-stationarity: at ``max_outer``, or
            interrupted by Ctrl-C (the model keeps the last complete outer
            iteration, and ``warm_start=True`` continues).
        """
        self._fit(X, laplacian, allow_few_samples)
        return self

    def fit_transform(self, X, y=None, *, laplacian=None, allow_few_samples=False):
        """Fit, then return the exact codes of ``X`` for the learned model.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Training samples as rows; as for :meth:`fit`.
        y : None
            Ignored: there for scikit-learn's API.
        laplacian : array or sparse matrix, shape (n_samples, n_samples), optional
            Graph Laplacian over the samples; used when ``lambda_g > 0``.
        allow_few_samples : bool, default False
            Learn from fewer samples than features (see :meth:`fit`).

        Returns
        -------
        array, shape (n_samples, n_atoms)
            ``transform(X)`` for the fitted model.
        """
        return self.fit(X, laplacian=laplacian, allow_few_samples=allow_few_samples).transform(X)

    def _fit(self, X, laplacian, allow_few_samples=False):
        weights = self._check_params()
        source = self._batch_source(X)
        if source is None:
            xp, X = self._training_data(X, allow_few_samples)
            if self.algorithm == "online":
                from .online import ArraySource

                source = ArraySource(X.mT, self.batch_size, self.shuffle)
        if source is None:
            return self._fit_batch(xp, X, laplacian, weights)
        if weights["lambda_g"] > 0:
            raise ValueError("algorithm='online' cannot use the graph term (lambda_g > 0): it couples all samples")
        return self._fit_online(source, weights)

    def _fit_batch(self, xp, X, laplacian, weights):
        """``fit`` with ``algorithm="batch"``: alternating minimization over all of ``X`` (samples as rows)."""
        Xb = X.mT  # the book's orientation: samples as columns
        graph = None
        if weights["lambda_g"] > 0:
            if laplacian is None:
                raise ValueError("lambda_g > 0 needs fit(X, laplacian=L) with L of shape (n_samples, n_samples)")
            graph = _graph_laplacian(laplacian, X)
        Z0, D0, E0 = self._starting_point(Xb)
        options = dict(max_outer=self.max_outer, max_inner=self.max_inner, rtol=self.rtol, inner_rtol=self.inner_rtol)
        options |= dict(solver=self.solver, code_solver=self.code_solver, reinit_dead_atoms=self.reinit_dead_atoms)

        def run(callback):
            # The dual solver's multipliers of the last fit, when warm starting from it.
            warm = getattr(self, "_multipliers", None) if self.warm_start and hasattr(self, "D_") else None
            return learn(Xb, Z0, D0, E0, **weights, laplacian=graph, **options, callback=callback, multipliers=warm)

        try:
            result = with_progress(run, show=self.progress, desc="outer iterations", callback=self.callback)
        except (DivergenceError, EnergyIncreaseError) as exc:
            self._store(exc.result, xp, X.shape[1])
            raise
        self._store(result, xp, X.shape[1])
        self._warn_if_not_converged(result, "outer iterations")
        return result.Z

    def _batch_source(self, X):
        """The batch source of a PatchStream or a dask.array (:mod:`eaelib.sources`), else None."""
        if not (is_patch_stream(X) or is_dask_array(X)):
            return None
        if self.algorithm != "online":
            what = "a PatchStream" if is_patch_stream(X) else "a dask.array"
            raise ValueError(f"fit(X) with X {what} learns online, batch by batch: set algorithm='online'")
        options = dict(batch_size=self.batch_size, shuffle=self.shuffle, backend=self.backend, dtype=self.dtype)
        return batch_source(X, **options)

    def _fit_online(self, source, weights):
        """``fit`` with ``algorithm="online"``: epochs of the batch ``source``'s mini-batches (:mod:`eaelib.sources`),
        certified every ``certify_every`` epochs."""
        from .online import learn_online, start_like  # only here: the core copied alone works without it

        state = getattr(self, "_online", None) if self.warm_start and hasattr(self, "D_") else None
        if state is None:
            rng = check_random_state(self.random_state)
            # A loaded model continues from its D and E, with statistics that start anew.
            warm = self._warm_parameters(source.n_features, source.xp, source.device, source.dtype)
            state = start_like(*(warm or initialize(source.first_batch(), self.n_atoms, rng, method=self.init)[1:]))
        else:
            rng = self._online_rng
        lambdas = self._lambdas(weights)
        options = dict(batch_size=self.batch_size, max_epochs=self.max_outer, rtol=self.rtol, shuffle=self.shuffle)
        options |= dict(inner_rtol=self.inner_rtol, max_inner=self.max_inner, code_solver=self.code_solver)
        options |= dict(certify_every=self.certify_every, random_state=rng, state=state)

        def run(callback):
            return learn_online(source, state.D, state.E, **lambdas, **options, callback=callback)

        try:
            result, state = with_progress(run, show=self.progress, desc="epochs", callback=self.callback)
        except SourceError as exc:
            self._online, self._online_rng = state, rng
            if exc.result is not None:
                self._store(exc.result, source.xp, source.n_features)
                self.D_, self.E_ = state.D, state.E  # the last completed mini-batch update
                exc.args = (f"{exc.args[0]}: fit again with warm_start=True to continue",)
            raise
        self._online, self._online_rng = state, rng
        self._store(result, source.xp, source.n_features)
        self._warn_if_not_converged(result, "epochs")

    def _warn_if_not_converged(self, result, unit):
        message = stop_message(result, n_iter=self.n_iter_, rtol=self.rtol, max_outer=self.max_outer, unit=unit)
        if message is not None:
            warnings.warn(message, ConvergenceWarning, stacklevel=4)

    def partial_fit(self, X, y=None):
        """Update the model with one mini-batch ``X`` of shape (n_samples, n_features).

        The batch is coded, added to the running sums of the online algorithm (:mod:`eaelib.online`)
        and D and E are solved on them. The first call initializes the model from the batch. Calling it
        on the batches that ``fit`` with ``algorithm="online"`` and ``shuffle=False`` visits, in order,
        gives the same model. ``X`` may also be a :class:`~eaelib.PatchStream`: every batch of its next
        epoch, in turn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or PatchStream
            The mini-batch, samples as rows.
        y : None
            Ignored: there for scikit-learn's API.

        Returns
        -------
        EnergyAutoEncoder
            The model itself, updated.
        """
        from .online import online_step, start

        weights = self._check_params()
        if weights["lambda_g"] > 0:
            raise ValueError("partial_fit cannot use the graph term (lambda_g > 0): it couples all samples")
        if is_patch_stream(X):  # one pass: every batch of the stream's next epoch
            for batch in X:
                self.partial_fit(batch)
            return self
        state = getattr(self, "_online", None)
        if state is None:
            xp, X = self._training_data(X, allow_few_samples=True)  # a mini-batch may well be small
            self._online_rng = check_random_state(self.random_state)
            D0, E0 = initialize(X.mT, self.n_atoms, self._online_rng, method=self.init)[1:]
            self._online = state = start(X.mT, D0, E0)
            self.n_features_in_, self.backend_ = X.shape[1], backend_name(xp)
        else:
            _, X = self._check_input(X)
        options = dict(inner_rtol=self.inner_rtol, max_inner=self.max_inner, code_solver=self.code_solver)
        online_step(state, X.mT, **self._lambdas(weights), **options, rng=self._online_rng)
        self.D_, self.E_ = state.D, state.E
        self.n_steps_ = state.step
        self.n_reinitialized_atoms_ = state.n_resampled
        return self

    def _training_data(self, X, allow_few_samples):
        """``(xp, X)``: ``X`` checked as training data, in the model's array library and dtype."""
        X_in, xp = X, model_namespace(self.backend, X)
        xp, X = check_array(X, xp=xp, dtype=self.dtype)
        check_likely_mistakes(X_in, X, allow_few_samples)
        return xp, X

    def _starting_point(self, Xb):
        """``(Z, D, E)`` to start from: random, or the fitted state when warm starting."""
        n_features, n_samples = Xb.shape
        xp, device = get_namespace(Xb), Xb.device
        warm = self._warm_parameters(n_features, xp, device, Xb.dtype)
        if warm is None:
            return initialize(Xb, self.n_atoms, self.random_state, method=self.init)
        codes = getattr(self, "_codes", None)
        if codes is not None and tuple(codes.shape) == (self.n_atoms, n_samples):
            _, Z = check_array(codes, name="codes", xp=xp, device=device, dtype=Xb.dtype)
        else:
            Z = xp.zeros((self.n_atoms, n_samples), dtype=Xb.dtype, device=device)
        return (Z, *warm)

    def _warm_parameters(self, n_features, xp, device, dtype):
        """The fitted ``(D, E)`` a warm start continues from, checked against the data; None to start anew."""
        if not (self.warm_start and hasattr(self, "D_")):
            return None
        _, D = check_array(self.D_, name="D_", xp=xp, device=device, dtype=dtype)
        _, E = check_array(self.E_, name="E_", xp=xp, device=device, dtype=dtype)
        if D.shape != (n_features, self.n_atoms):
            raise ValueError(
                f"warm_start needs X with {D.shape[0]} features and n_atoms={D.shape[1]} as fitted, "
                f"got {n_features} features and n_atoms={self.n_atoms}"
            )
        return D, E

    def _store(self, result, xp, n_features):
        """Set the fitted attributes from a :class:`LearningResult`, continuing a warm start's history."""
        warm = self.warm_start and hasattr(self, "objective_history_")
        previous = {name: getattr(self, name, []) for name in HISTORIES} if warm else None  # a file has no gaps
        for name, value in histories(result, previous).items():
            setattr(self, name, value)
        self.D_, self.E_, self._codes = result.D, result.E, result.Z
        self.converged_, self.stop_reason_, self._multipliers = result.converged, result.status, result.multipliers
        self.n_features_in_, self.backend_ = n_features, backend_name(xp)
        if result.Z is not None:
            self.n_dead_atoms_ = int(xp.sum(xp.astype(dead_atoms(result.Z), xp.int32)))
        else:  # online: the atoms no sample's code has used, from the running sums
            used = xp.linalg.diagonal(self._online.statistics.zz) > 0
            self.n_dead_atoms_ = int(xp.sum(xp.astype(~used, xp.int32)))
            self.n_steps_ = self._online.step
        self.n_reinitialized_atoms_ = result.n_reinitialized

    # -- using the model --------------------------------------------------------

    @property
    def components_(self):
        """The atoms as rows: ``D_.T``, shape (n_atoms, n_features), scikit-learn's name for them."""
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
        _, X = check_array(X, name=name, xp=xp, device=self.D_.device, dtype=self.D_.dtype)
        n_expected = self.n_features_in_ if n_columns is None else n_columns
        if X.shape[1] != n_expected:
            raise ValueError(
                f"{name} has {X.shape[1]} {what}, but {type(self).__name__} is expecting {n_expected} {what} as input"
            )
        return xp, X

    def transform(self, X, method="exact", *, rtol=None, max_iter=None):
        """Compute the codes of ``X``, shape (n_samples, n_atoms).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Samples as rows.
        method : {"exact", "encoder"}
            ``"exact"`` solves the Z-subproblem for the learned ``D_`` and
            ``E_``, starting from the encoder's prediction; ``"encoder"`` is
            that prediction alone, ``X @ E_.T`` (one matrix product), the
            reason the encoder is learned.
        rtol : float, optional
            Tolerance of the exact solve: every sample's KKT residual (the
            largest entry of the least-norm subgradient) at most ``rtol``
            times ``lambda_s``; 1e-6 by default. 0 solves as accurately as
            the arithmetic allows.
        max_iter : int, optional
            Most iterations of the exact solve (Newton steps on the support
            included); ``10 * max_inner`` by
            default. Stopping there warns (``ConvergenceWarning``). With the
            homotopy (``code_solver``), the codes are exact and FISTA only
            certifies them.

        Returns
        -------
        array, shape (n_samples, n_atoms)
            The codes, samples as rows, in the model's array library and dtype.
        """
        if method not in TRANSFORM_METHODS:
            raise ValueError(f"method must be one of {TRANSFORM_METHODS}, got {method!r}")
        _, X = self._check_input(X)
        if method == "encoder":
            return X @ self.E_.mT
        rtol = check_scalar(EXACT_RTOL if rtol is None else rtol, "rtol", low=0.0)
        max_iter = check_scalar(10 * self.max_inner if max_iter is None else max_iter, "max_iter", kind="int", low=1)
        options = dict(rtol=rtol, max_iter=max_iter, solver=self.code_solver, progress=self.progress)
        return exact_codes(X.mT, self.D_, self.E_, **self._lambdas(self._weights()), **options, caller="transform").mT

    def inverse_transform(self, Z):
        """Reconstruct samples from their codes: ``Z @ D_.T`` (the book's ``DZ``).

        Parameters
        ----------
        Z : array-like, shape (n_samples, n_atoms)
            Codes, samples as rows (as :meth:`transform` returns them).

        Returns
        -------
        array, shape (n_samples, n_features)
            The reconstructions.
        """
        self._check_fitted()
        _, Z = self._check_input(Z, name="Z", n_columns=self.D_.shape[1], what="atoms")
        return Z @ self.D_.mT

    def energy(self, X, Z=None, *, laplacian=None):
        """The energy of ``X`` under the fitted model, term by term.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Samples as rows.
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
        _, X = self._check_input(X)
        if Z is None:
            Z = self.transform(X)
        else:
            _, Z = self._check_input(Z, name="Z", n_columns=self.D_.shape[1], what="atoms")
            if Z.shape[0] != X.shape[0]:
                raise ValueError(f"Z must have one row per sample of X ({X.shape[0]}), got {Z.shape[0]}")
        if laplacian is None:
            weights["lambda_g"] = 0.0  # no graph over these samples: the term is absent
        graph = _graph_laplacian(laplacian, X) if weights["lambda_g"] > 0 else None
        return energy_terms(X.mT, Z.mT, self.D_, self.E_, **weights, laplacian=graph)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


EnergyAutoEncoder.__doc__ = EnergyAutoEncoder.__doc__.replace(
    "    {parameters}", numpydoc_parameters(EnergyAutoEncoder)
)


def _graph_laplacian(laplacian, X):
    """The graph term's Laplacian over the samples of ``X``, in ``X``'s namespace, device and dtype."""
    from .graph import GraphLaplacian  # only for lambda_g > 0: the core works without graph.py

    return GraphLaplacian(laplacian, n_samples=X.shape[0], dtype=X.dtype, xp=get_namespace(X), device=X.device)
