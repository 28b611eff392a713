"""Online (mini-batch) learning of the energy, from its sufficient statistics.

For fixed codes, the D- and E-subproblems see the data only through sums over
the samples (Mairal, Bach, Ponce and Sapiro, "Online learning for matrix
factorization and sparse coding", JMLR 2010)::

    λ_d/2 ‖X − DZ‖² = λ_d/2 (tr(D A Dᵀ) − 2 tr(D Bᵀ) + Σ‖x‖²),   A = Σ z zᵀ, B = Σ x zᵀ
    λ_e/2 ‖Z − EX‖² = λ_e/2 (tr(E C Eᵀ) − 2 tr(E Bᵀᵀ) + Σ‖z‖²),  C = Σ x xᵀ

so one pass over a mini-batch codes its samples (a certified Z-step, warm
started from the encoder's prediction ``EX``), adds them to the statistics
with a forgetting factor, and solves D and E exactly on the statistics (the
Lagrange dual of :mod:`eaelib.dual`, warm-started from the last
multipliers). Memory is the model and one batch, whatever the number of
samples. At the end of every epoch, :func:`evaluate` passes over the data
once more, in batches, for the energy and each block's duality gap at the
current model: the same certificates as :func:`eaelib.learn`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array import from_numpy, get_namespace, sq_norm, to_numpy
from ._validation import check_random_state
from .fista import certificate, fista, project_columns
from .learning import LearningResult
from .subproblems import code_problem, energy_terms, newton_every, solve_ball

Array = Any

# Momentum of the batch Z-steps; the codes of a batch are solved to a duality gap of inner_rtol of
# their energy (each sample), from the encoder's prediction EX when λ_e > 0.
_MOMENTUM = "strong"


@dataclass
class Statistics:
    """Weighted sums over the samples seen: all the D- and E-subproblems need of them.

    ``zz = Σ w z zᵀ`` (m × m), ``xz = Σ w x zᵀ`` (n × m), ``xx = Σ w x xᵀ``
    (n × n), ``x_sq = Σ w ‖x‖²``, ``z_sq = Σ w ‖z‖²`` and ``weight = Σ w``,
    where older samples weigh less (:func:`forgetting`).
    """

    zz: Array
    xz: Array
    xx: Array
    x_sq: float = 0.0
    z_sq: float = 0.0
    weight: float = 0.0

    @classmethod
    def zeros(cls, xp, n_features, n_atoms, dtype, device=None):
        zeros = lambda *shape: xp.zeros(shape, dtype=dtype, device=device)
        return cls(zeros(n_atoms, n_atoms), zeros(n_features, n_atoms), zeros(n_features, n_features))

    def update(self, X, Z, beta):
        """Scale the sums by ``beta`` and add the batch ``X`` (n × b) with its codes ``Z`` (m × b)."""
        xp = get_namespace(X, Z)
        self.zz = beta * self.zz + Z @ Z.mT
        self.xz = beta * self.xz + X @ Z.mT
        self.xx = beta * self.xx + X @ X.mT
        self.x_sq = beta * self.x_sq + sq_norm(xp, X)
        self.z_sq = beta * self.z_sq + sq_norm(xp, Z)
        self.weight = beta * self.weight + X.shape[1]


def forgetting(step, batch_size):
    """The factor that scales the statistics before batch number ``step`` (from 0) is added.

    Mairal et al. (2010, §3.4) down-weight the first batches, coded with a
    poor dictionary: the statistics behave as a sum over the last ``θ``
    samples with ``θ = (step + 1)·b`` while ``step < b − 1``, and
    ``θ = b² + step + 1 − b`` after, and are scaled by ``(θ + 1 − b)/(θ + 1)``
    (the schedule scikit-learn's ``MiniBatchDictionaryLearning`` uses).
    """
    b = batch_size
    theta = (step + 1) * b if step < b - 1 else b * b + step + 1 - b
    return (theta + 1 - b) / (theta + 1)


@dataclass
class OnlineState:
    """The model and what online learning carries from one batch to the next."""

    D: Array
    E: Array
    statistics: Statistics
    step: int = 0
    multipliers: dict = field(default_factory=dict)
    n_resampled: int = 0


def start(X, D, E):
    """The :class:`OnlineState` at ``(D, E)`` with empty statistics, in ``X``'s namespace and dtype."""
    xp = get_namespace(X, D, E)
    return OnlineState(D, E, Statistics.zeros(xp, D.shape[0], D.shape[1], X.dtype, X.device))


def minibatches(n_samples, batch_size, rng):
    """One epoch: the sample indices shuffled by ``rng`` and cut into batches (the last may be smaller)."""
    order = rng.permutation(n_samples)
    return [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]


def batch_codes(X, D, E, *, lambda_d, lambda_e, lambda_s, rtol, max_iter):
    """Codes of the batch ``X`` (n × b): the Z-subproblem to a duality gap of ``rtol`` of each sample's energy."""
    xp = get_namespace(X, D, E)
    f, g = code_problem(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    # The encoder's prediction is the natural start (predictive sparse decomposition); without the
    # encoder term, E is not learned and zeros are the start.
    Z0 = E @ X if lambda_e > 0 else xp.zeros((D.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
    # Cold starts gain from Newton steps on the support where the problem is barely strongly convex.
    return fista(f, g, Z0, rtol=rtol, max_iter=max_iter, momentum=_MOMENTUM, polish=newton_every(f))


def online_step(state, X, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner, rng):
    """One mini-batch ``X`` (n × b): code it, add it to the statistics, solve D and E on them.

    Atoms that no sample has used yet (a zero diagonal entry of ``Σ z zᵀ``)
    are replaced by samples of the batch, scaled to unit norm: they multiply
    zero codes, so the statistics stay valid.

    Returns
    -------
    state : OnlineState
        Updated in place and returned.
    codes : FistaResult
        The batch's Z-step (its codes before D and E moved).
    """
    xp = get_namespace(X)
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    codes = batch_codes(X, state.D, state.E, **weights, rtol=inner_rtol, max_iter=max_inner)
    stats = state.statistics
    stats.update(X, codes.x, forgetting(state.step, X.shape[1]))
    state.step += 1
    if lambda_d > 0:
        res = solve_ball(
            stats.zz, stats.xz, stats.x_sq, state.D, weight=lambda_d, multipliers=state.multipliers.get("D")
        )
        state.D, state.multipliers["D"] = res.x, res.multipliers
    if lambda_e > 0:
        res = solve_ball(
            stats.xx, stats.xz.mT, stats.z_sq, state.E, weight=lambda_e, multipliers=state.multipliers.get("E")
        )
        state.E, state.multipliers["E"] = res.x, res.multipliers
    unused = to_numpy(xp.linalg.diagonal(stats.zz)) == 0
    if unused.any() and lambda_d > 0:
        state.D = _resample(state.D, X, unused, rng)
        state.n_resampled += int(unused.sum())
    return state, codes


def _resample(D, X, unused, rng):
    """``D`` with its ``unused`` atoms replaced by random non-zero columns of ``X`` of unit norm."""
    xp = get_namespace(D, X)
    norms = to_numpy(xp.linalg.vector_norm(X, axis=0))
    candidates = np.flatnonzero(norms > 0)
    if candidates.size == 0:
        return D
    picked = np.zeros(D.shape[1], dtype=np.int64)
    picked[unused] = rng.choice(candidates, size=int(unused.sum()), replace=candidates.size < unused.sum())
    fresh = xp.take(X, from_numpy(xp, picked, device=X.device), axis=1)
    fresh = fresh / xp.linalg.vector_norm(fresh, axis=0, keepdims=True)
    mask = from_numpy(xp, unused, device=X.device)
    return project_columns(xp.where(mask, fresh, D))


def evaluate(batches, D, E, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner):
    """One pass over ``batches`` (each n × b): the energy and every block's duality gap at ``(D, E)``.

    The codes of each batch are solved to ``inner_rtol`` (as in learning)
    and discarded once counted, so memory does not grow with the data. The
    D and E gaps come from solving their subproblems exactly on the pass's
    statistics: ``gap(D) ≤ P(D) − P(D*) + gap(D*)``.

    Returns
    -------
    terms : dict
        As :func:`eaelib.energy_terms`, summed over the batches.
    certificates : dict
        ``{"Z": …, "D": …, "E": …}``, as ``LearningResult.certificates``.
    """
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    terms = dict.fromkeys(("data", "encoder", "sparsity", "graph", "total"), 0.0)
    stats, gap_z = None, 0.0
    for X in batches:
        xp = get_namespace(X, D, E)
        res = batch_codes(X, D, E, **weights, rtol=inner_rtol, max_iter=max_inner)
        for key, value in energy_terms(X, res.x, D, E, **weights).items():
            terms[key] += value
        gap_z += certificate(*code_problem(X, D, E, **weights), res.x)
        if stats is None:
            stats = Statistics.zeros(xp, D.shape[0], D.shape[1], X.dtype, X.device)
        stats.update(X, res.x, 1.0)
    gaps = {"Z": gap_z, "D": 0.0, "E": 0.0}
    for name, weight, gram, b, c, W in (
        ("D", lambda_d, stats.zz, stats.xz, stats.x_sq, D),
        ("E", lambda_e, stats.xx, stats.xz.mT, stats.z_sq, E),
    ):
        if weight > 0:
            best = solve_ball(gram, b, c, W, weight=weight)
            half_sum = 0.5 * (W + best.x)
            loss = weight * float(xp.sum((W - best.x) * (half_sum @ gram - b)))  # P(W) − P(W*)
            gaps[name] = max(loss, 0.0) + best.certificate[-1]
    return terms, gaps


def learn_online(
    X,
    D,
    E,
    *,
    lambda_d,
    lambda_e,
    lambda_s,
    batch_size=256,
    max_epochs=20,
    rtol=1e-3,
    inner_rtol=1e-4,
    max_inner=100,
    random_state=None,
    state=None,
    shuffle=True,
    callback=None,
):
    """Learn ``D`` and ``E`` from ``X`` (n × N) by epochs of mini-batches, certified at every epoch's end.

    Parameters
    ----------
    X : array, shape (n, N)
        Data, samples as columns.
    D, E : arrays
        Starting dictionary (n × m) and encoder (m × n), feasible.
    lambda_d, lambda_e, lambda_s : float
        Weights of the energy terms (no graph term: it couples all samples).
    batch_size : int
        Samples per mini-batch.
    max_epochs : int
        Most passes over the data.
    rtol : float
        Stop when every block's duality gap over the data is at most
        ``rtol`` times the energy, as :func:`eaelib.learn` does.
    inner_rtol, max_inner : float, int
        Tolerance and most iterations of each batch's Z-step.
    random_state : int, numpy.random.Generator or None
        Shuffles the samples of every epoch.
    state : OnlineState, optional
        Continue from this state (its statistics and step count); by default
        a fresh one at ``(D, E)``.
    shuffle : bool
        Visit the samples in a new random order every epoch; else in order.
    callback : callable, optional
        Called as ``callback(epoch, terms)`` after every epoch; ``True`` stops.

    Returns
    -------
    result : LearningResult
        ``energy[k]``: the energy after epoch ``k`` (``energy[0]``: at ``(D, E)``
        with zero codes, as in :func:`eaelib.learn`); ``certificates[k − 1]``
        the block gaps there; ``Z`` is None (codes are not kept).
    state : OnlineState
        To continue learning (:meth:`EnergyAutoEncoder.partial_fit`).
    """
    xp = get_namespace(X, D, E)
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    inner = dict(inner_rtol=inner_rtol, max_inner=max_inner)
    rng = check_random_state(random_state)
    N = X.shape[1]
    state = start(X, D, E) if state is None else state
    zeros = xp.zeros((D.shape[1], N), dtype=X.dtype, device=X.device)
    result = LearningResult(None, state.D, state.E, energy=[energy_terms(X, zeros, state.D, state.E, **weights)])
    try:
        for epoch in range(1, max_epochs + 1):
            spans = [(i, min(i + batch_size, N)) for i in range(0, N, batch_size)]
            if shuffle:
                for index in minibatches(N, batch_size, rng):
                    batch = xp.take(X, from_numpy(xp, index, device=X.device), axis=1)
                    online_step(state, batch, **weights, **inner, rng=rng)
            else:
                for a, b in spans:
                    online_step(state, X[:, a:b], **weights, **inner, rng=rng)
            terms, gaps = evaluate((X[:, a:b] for a, b in spans), state.D, state.E, **weights, **inner)
            result.D, result.E, result.n_reinitialized = state.D, state.E, state.n_resampled
            if result.record(epoch, terms, gaps, rtol, callback):
                break
    except KeyboardInterrupt:
        result.interrupted, result.converged, result.status = True, False, "interrupted"
    result.multipliers = dict(state.multipliers)
    return result, state
