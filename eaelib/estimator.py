"""``EnergyAutoEncoder``: the scikit-learn-style estimator (samples are rows), and its model files."""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace

import numpy as np

from ._array import backend_name, get_namespace
from ._base import BaseEstimator, ConvergenceWarning, DataConversionWarning, NotFittedError, TransformerMixin
from ._optional import require
from ._parameters import Parameters
from ._validation import (
    check_array,
    check_random_state,
    check_scalar,
    model_namespace,
    numpydoc_parameters,
)
from .learning import (
    DivergenceError,
    EnergyIncreaseError,
    dead_atoms,
    initialize,
    learn,
)
from .subproblems import energy_terms, solve_codes

TRANSFORM_METHODS = ("exact", "encoder")
# Exact codes: KKT residual ≤ 1e-6 λ_s, from the encoder's prediction EX (measured in bench/: fewer
# iterations than from zeros), with restarted momentum.
_TRANSFORM_RTOL = 1e-6
_TRANSFORM_START = "encoder"
_TRANSFORM_MOMENTUM = "strong"
# With progress=True, transform's exact codes are solved this many samples at a time, so that its bar moves
# (a photo's overlapping patches take minutes); a multiple of the 1024 columns the solvers take at a time.
_TRANSFORM_CHUNK = 8192


# The hyper-parameters are declared once, as the fields of eaelib._parameters.Parameters.
class EnergyAutoEncoder(Parameters, TransformerMixin, BaseEstimator):
    """Sparse coding with a learned dictionary ``D`` and a learned linear encoder ``E``.

    Minimizes, over codes ``Z``, dictionary ``D`` and encoder ``E``, the energy ::

        λ_d/2 ‖X − DZ‖² + λ_e/2 ‖Z − EX‖² + λ_s ‖Z‖₁ + λ_g/2 tr(Z L Zᵀ)

    subject to unit-norm-bounded columns of ``D`` and ``E``, by alternating
    certified solves of the three convex subproblems: for the codes, the
    compiled homotopy (exact) where they are sparse and FISTA elsewhere
    (``code_solver``), Newton's method on the Lagrange dual for ``D`` and ``E``
    (online: one coordinate pass on ``D`` per batch). The fit stops
    when no block can lower the energy by more than ``rtol`` times its value
    (each block's duality gap), or warns at ``max_outer``. The formula is in
    the book's orientation (samples as columns); the methods take and return
    samples as rows, like scikit-learn.

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

    Raises
    ------
    ValueError
        When :meth:`fit` gets fewer samples than features: most likely the
        samples are columns (the book's orientation) where rows are expected;
        ``fit(X, allow_few_samples=True)`` learns from them as rows anyway.

    Warns
    -----
    DataConversionWarning
        When :meth:`fit` gets integer data: its values are used as they are,
        and pixel values are usually meant to be scaled to [0, 1] first.

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
        eaelib.online.SourceError
            If a Dask task fails for good (after its retries): the model then
            holds the last completed mini-batch update, its histories the last
            completed epoch, and ``warm_start=True`` continues.
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
            xp = model_namespace(self.backend, X)
            X_in = X
            xp, X = check_array(X, xp=xp, dtype=self.dtype)
            _check_likely_mistakes(X_in, X, allow_few_samples)
        if (source is not None or self.algorithm == "online") and weights["lambda_g"] > 0:
            raise ValueError("algorithm='online' cannot use the graph term (lambda_g > 0): it couples all samples")
        if source is not None:
            return self._fit_online(source, source.first_batch, source.xp, source.n_features, weights)
        Xb = X.mT  # the book's orientation: samples as columns
        if self.algorithm == "online":
            first = (lambda: Xb[:, : min(self.batch_size, Xb.shape[1])]) if not self.shuffle else (lambda: Xb)
            return self._fit_online(Xb, first, xp, X.shape[1], weights)
        graph = None
        if weights["lambda_g"] > 0:
            if laplacian is None:
                raise ValueError("lambda_g > 0 needs fit(X, laplacian=L) with L of shape (n_samples, n_samples)")
            graph = _graph_laplacian(laplacian, X)
        Z0, D0, E0 = self._starting_point(Xb)
        options = dict(max_outer=self.max_outer, max_inner=self.max_inner, rtol=self.rtol, inner_rtol=self.inner_rtol)
        options |= dict(solver=self.solver, code_solver=self.code_solver, reinit_dead_atoms=self.reinit_dead_atoms)

        def run(callback):
            warm = self._warm_multipliers()
            return learn(Xb, Z0, D0, E0, **weights, laplacian=graph, **options, callback=callback, multipliers=warm)

        try:
            result = self._with_progress(run)
        except (DivergenceError, EnergyIncreaseError) as exc:
            self._store(exc.result, xp, X.shape[1])
            raise
        self._store(result, xp, X.shape[1])
        self._say_how_it_stopped(result, "outer iterations")
        return result.Z

    def _batch_source(self, X):
        """The batch source of a PatchStream or a dask.array (:mod:`eaelib.online`), else None."""
        stream = _patch_stream(X)
        dask = X if stream is None and _is_dask_array(X) else None
        if stream is None and dask is None:
            return None
        if self.algorithm != "online":
            what = "a PatchStream" if stream is not None else "a dask.array"
            raise ValueError(f"fit(X) with X {what} learns online, batch by batch: set algorithm='online'")
        if stream is not None:
            from .online import StreamSource

            return StreamSource.for_model(stream, self.backend, self.dtype)
        from .distributed import DaskSource

        return DaskSource.for_model(dask, self.batch_size, self.shuffle, self.backend, self.dtype)

    def _fit_online(self, data, first, xp, n_features, weights):
        """``fit`` with ``algorithm="online"``: epochs of mini-batches, certified every ``certify_every`` epochs.

        ``data`` is the samples as columns (an array) or a batch source (:mod:`eaelib.online`);
        ``first()`` the samples the start is drawn from.
        """
        from .online import SourceError, learn_online, start_like  # only here: the core copied alone works without it

        state = getattr(self, "_online", None) if self.warm_start and hasattr(self, "D_") else None
        if state is None:
            rng = check_random_state(self.random_state)
            # A loaded model continues from its D and E, with statistics that start anew.
            warm = self._warm_parameters(n_features, xp, getattr(data, "device", None), data.dtype)
            state = start_like(*(warm or initialize(first(), self.n_atoms, rng, method=self.init)[1:]))
        else:
            rng = self._online_rng
        lambdas = {k: weights[k] for k in ("lambda_d", "lambda_e", "lambda_s")}
        options = dict(batch_size=self.batch_size, max_epochs=self.max_outer, rtol=self.rtol, shuffle=self.shuffle)
        options |= dict(inner_rtol=self.inner_rtol, max_inner=self.max_inner, code_solver=self.code_solver)
        options |= dict(certify_every=self.certify_every, random_state=rng, state=state)

        def run(callback):
            return learn_online(data, state.D, state.E, **lambdas, **options, callback=callback)

        try:
            result, state = self._with_progress(run)
        except SourceError as exc:
            self._online, self._online_rng = state, rng
            if exc.result is not None:
                self._store(exc.result, xp, n_features)
                self.D_, self.E_ = state.D, state.E  # the last completed mini-batch update
                exc.args = (
                    f"{exc.args[0]}; the model holds the update of mini-batch {state.step} ({self.n_iter_} complete "
                    "epochs in its histories): fit again with warm_start=True to continue",
                )
            raise
        self._online, self._online_rng = state, rng
        self._store(result, xp, n_features)
        self._say_how_it_stopped(result, "epochs")
        return None

    def _with_progress(self, run):
        """``run(callback)`` under the progress bar, joined to the user's callback; the bar closes on any exit."""
        progress, bar = self._progress_callback()

        def callback(iteration, terms):
            stop = progress is not None and progress(iteration, terms)
            return bool(self.callback is not None and self.callback(iteration, terms)) or stop

        try:
            return run(callback)
        finally:
            if bar is not None:
                bar.close()

    def _say_how_it_stopped(self, result, unit):
        """Warn when a fit stopped before block-stationarity: interrupted (Ctrl-C), at max_outer or stalled."""
        if result.interrupted:
            message = (
                f"fit was interrupted after {self.n_iter_} {unit}: the model holds the last complete one and is not "
                "converged; fit again with warm_start=True to continue"
            )
        elif result.status in ("max_outer", "stalled"):
            message = self._not_converged_message(result)
        else:
            return
        warnings.warn(message, ConvergenceWarning, stacklevel=4)

    def partial_fit(self, X, y=None):
        """Update the model with one mini-batch ``X`` of shape (n_samples, n_features).

        The batch is coded, added to the running sums of the online algorithm
        (:mod:`eaelib.online`) and D and E are solved on them. The first call
        initializes the model from the batch. Calling it on the batches that
        ``fit`` with ``algorithm="online"`` and ``shuffle=False`` visits, in
        order, gives the same model. ``X`` may also be a
        :class:`~eaelib.PatchStream`: every batch of its next epoch, in turn.

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
        stream = _patch_stream(X)
        if stream is not None:  # one pass: every batch of the stream's next epoch
            for batch in stream:
                self.partial_fit(batch)
            return self
        state = getattr(self, "_online", None)
        if state is None:
            xp = model_namespace(self.backend, X)
            X_in = X
            xp, X = check_array(X, xp=xp, dtype=self.dtype)
            _check_likely_mistakes(X_in, X, allow_few_samples=True)  # a mini-batch may well be small
            rng = check_random_state(self.random_state)
            _, D0, E0 = initialize(X.mT, self.n_atoms, rng, method=self.init)
            state = start(X.mT, D0, E0)
            self._online, self._online_rng = state, rng
            self.n_features_in_, self.backend_ = X.shape[1], backend_name(xp)
        else:
            xp, X = self._check_input(X)
        online_step(
            state,
            X.mT,
            **{k: weights[k] for k in ("lambda_d", "lambda_e", "lambda_s")},
            inner_rtol=self.inner_rtol,
            max_inner=self.max_inner,
            rng=self._online_rng,
            code_solver=self.code_solver,
        )
        self.D_, self.E_ = state.D, state.E
        self.n_steps_ = state.step
        self.n_reinitialized_atoms_ = state.n_resampled
        return self

    def _not_converged_message(self, result):
        """What a fit that stopped before block-stationarity says, with the largest block gap."""
        gaps = result.certificates[-1] if result.certificates else {}
        energy = self.objective_history_[-1]
        if gaps and energy:
            worst = max(gaps, key=gaps.get)
            reached = (
                f"the {worst}-block can still lower the energy by up to {gaps[worst]:.3g} "
                f"({gaps[worst] / energy:.2g} of it; rtol={self.rtol:g})"
            )
        else:
            reached = "no certificate was computed"
        if result.status == "max_outer":
            cause = f"stopped at max_outer={self.max_outer}"
        else:
            cause = "stopped: the energy no longer falls beyond the rounding of its evaluation"
        return f"fit {cause} before block-stationarity: {reached}; raise max_outer (warm_start=True continues)"

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

    def _warm_multipliers(self):
        """The dual solver's multipliers of the last fit, when warm starting from it."""
        if self.warm_start and hasattr(self, "D_"):
            return getattr(self, "_multipliers", None)
        return None

    def _store(self, result, xp, n_features):
        """Set the fitted attributes from a :class:`LearningResult`, continuing a warm start's history."""
        energy, inner, n_iter = result.energy, result.inner, result.n_iter
        certificates, iterations = result.certificates, [0, *result.iterations]
        previous = getattr(self, "objective_history_", None)
        if self.warm_start and previous and energy[0]["total"] == previous[-1]:
            # The same data from where the last fit stopped: one history.
            offset = self.n_iter_
            energy = self.energy_history_ + energy[1:]
            inner = self.inner_history_ + [replace(trace, outer=trace.outer + offset) for trace in inner]
            certificates = self.certificate_history_ + certificates
            iterations = self.history_iterations_ + [k + offset for k in iterations[1:]]
            n_iter += offset
        self.D_, self.E_, self._codes = result.D, result.E, result.Z
        self.energy_history_ = energy
        self.objective_history_ = [terms["total"] for terms in energy]
        self.inner_history_ = inner
        self.certificate_history_ = certificates
        self.history_iterations_ = iterations
        self.n_iter_ = n_iter
        self.converged_ = result.converged
        self.stop_reason_ = result.status
        self._multipliers = result.multipliers
        self.n_features_in_ = n_features
        self.backend_ = backend_name(xp)
        if result.Z is not None:
            self.n_dead_atoms_ = int(xp.sum(xp.astype(dead_atoms(result.Z), xp.int32)))
        else:  # online: the atoms no sample's code has used, from the running sums
            used = xp.linalg.diagonal(self._online.statistics.zz) > 0
            self.n_dead_atoms_ = int(xp.sum(xp.astype(~used, xp.int32)))
            self.n_steps_ = self._online.step
        self.n_reinitialized_atoms_ = result.n_reinitialized

    def _bar(self, total, desc, unit):
        """A tqdm bar if ``progress``, else None."""
        if not self.progress:
            return None
        tqdm = require("tqdm.auto", "progress=True (or set progress=False)").tqdm
        return tqdm(total=total, desc=desc, unit=unit)

    def _progress_callback(self):
        """``(callback, bar)`` of fit's progress bar, or ``(None, None)``.

        The bar has no total: a fit stops when its certificate says so, which no count of iterations
        predicts (``max_outer`` is a cap, mostly far from the stop), so it shows the iterations done, their
        rate and the energy, without an estimated time left.
        """
        online = self.algorithm == "online"
        bar = self._bar(None, "epochs" if online else "outer iterations", "it")
        if bar is None:
            return None, None

        def callback(iteration, terms):
            bar.update(iteration - bar.n)  # online: certified epochs only, so steps of certify_every
            bar.set_postfix(energy=f"{terms['total']:.6g}")
            return False

        return callback, bar

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
            Most FISTA iterations of the exact solve; ``10 * max_inner`` by
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
        weights = self._weights()
        rtol = check_scalar(_TRANSFORM_RTOL if rtol is None else rtol, "rtol", low=0.0)
        max_iter = check_scalar(10 * self.max_inner if max_iter is None else max_iter, "max_iter", kind="int", low=1)
        xp, n_samples = get_namespace(X), X.shape[0]
        bar = self._bar(n_samples, "exact codes", "sample") if n_samples > _TRANSFORM_CHUNK else None
        step = _TRANSFORM_CHUNK if bar is not None else n_samples
        codes, unconverged = [], []
        try:
            for start in range(0, n_samples, step):
                result = solve_codes(
                    X[start : start + step, :].mT,
                    self.D_,
                    self.E_,
                    _TRANSFORM_START,
                    lambda_d=weights["lambda_d"],
                    lambda_e=weights["lambda_e"],
                    lambda_s=weights["lambda_s"],
                    rtol=rtol,
                    max_iter=max_iter,
                    criterion="kkt",
                    momentum=_TRANSFORM_MOMENTUM,
                    solver=self.code_solver,
                )
                codes.append(result.x.mT)
                if not result.converged:
                    unconverged.append(result)
                if bar is not None:
                    bar.update(codes[-1].shape[0])
        finally:
            if bar is not None:
                bar.close()
        if unconverged:
            worst = max(unconverged, key=lambda r: r.certificate[-1])
            warnings.warn(
                f"transform stopped ({worst.status}) after {worst.n_iter} iterations with a KKT residual of "
                f"{worst.certificate[-1]:.3g} (tolerance {rtol:g} × lambda_s); raise max_iter or rtol",
                ConvergenceWarning,
                stacklevel=2,
            )
        return codes[0] if len(codes) == 1 else xp.concat(codes, axis=0)

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
        graph = None
        if weights["lambda_g"] > 0 and laplacian is not None:
            graph = _graph_laplacian(laplacian, X)
        elif weights["lambda_g"] > 0:
            weights["lambda_g"] = 0.0  # no graph over these samples: the term is absent
        return energy_terms(X.mT, Z.mT, self.D_, self.E_, **weights, laplacian=graph)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


EnergyAutoEncoder.__doc__ = EnergyAutoEncoder.__doc__.replace(
    "    {parameters}", numpydoc_parameters(EnergyAutoEncoder)
)


def _patch_stream(X):
    """``X`` if it is a :class:`~eaelib.PatchStream`, else None (streams.py need not be part of a copy)."""
    streams = sys.modules.get(f"{__package__}.streams")
    return X if streams is not None and isinstance(X, streams.PatchStream) else None


def _is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array``, without importing Dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks") and hasattr(X, "to_delayed")


def _graph_laplacian(laplacian, X):
    """The graph term's Laplacian over the samples of ``X``, in ``X``'s namespace, device and dtype."""
    from .graph import GraphLaplacian  # only for lambda_g > 0: the core works without graph.py

    return GraphLaplacian(laplacian, n_samples=X.shape[0], dtype=X.dtype, xp=get_namespace(X), device=X.device)


def _is_integer(x):
    """Whether ``x`` (any array, or what NumPy makes an array of) holds integers."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (TypeError, ValueError):
            return False
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype).kind in "iu"
    try:
        return bool(get_namespace(x).isdtype(dtype, "integral"))
    except TypeError:
        return False


def _check_likely_mistakes(X_in, X, allow_few_samples):
    """Refuse or warn about data that are most likely not what the user meant."""
    if _is_integer(X_in):
        xp = get_namespace(X)
        low, high = float(xp.min(X)), float(xp.max(X))
        warnings.warn(
            f"X has integer dtype {X_in.dtype if hasattr(X_in, 'dtype') else 'int'} and is used as it is, values "
            f"in [{low:g}, {high:g}], converted to {X.dtype}: scale pixel values to [0, 1] first (X / 255 for "
            "8-bit data; extract_patches scales integer images), or convert X to floats yourself to silence this",
            DataConversionWarning,
            stacklevel=4,
        )
    n_samples, n_features = X.shape
    if n_features > n_samples and not allow_few_samples:
        raise ValueError(
            f"X has fewer samples than features: shape {tuple(X.shape)}, {n_samples} samples (rows) of "
            f"{n_features} features (columns). EnergyAutoEncoder takes samples as rows; if yours are columns "
            f"(the book's orientation), pass X.T, of shape {(n_features, n_samples)}; if they are rows, "
            "fit(X, allow_few_samples=True)"
        )
