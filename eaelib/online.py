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

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array import from_numpy, get_namespace, resolve_dtype, sq_norm, to_namespace, to_numpy
from ._validation import check_random_state, model_namespace
from .coordinate import coordinate_pass
from .fista import fista, project_columns
from .learning import CERTIFY_EVERY, LearningResult, SourceError, drive
from .subproblems import (
    ENERGY_TERMS,
    choose_code_solver,
    code_problem,
    code_step,
    energy_terms,
    newton_every,
    solve_ball,
)

Array = Any

#: Samples coded at a time by a certifying pass (:func:`evaluate` over an array or a stream): more than a
#: training batch, so that the per-call costs (forming G, its spectrum) are not paid once per batch of 128
#: (a quarter of an epoch's time at N = 24393, λ_e = 0, measured), and few enough that FISTA's working arrays
#: and Newton polish stay a few MB (an epoch's peak at N = 2726, λ_e = 10: 21 MiB with 256, 29 with 1024).
EVALUATION_COLUMNS = 1024
# Momentum of the batch Z-steps; the codes of a batch are solved to a duality gap of inner_rtol of
# their energy (each sample), from the encoder's prediction EX when λ_e > 0.
_MOMENTUM = "strong"


@dataclass
class Statistics:
    """Weighted sums over the samples seen: all the D- and E-subproblems need of them.

    ``zz = Σ w z zᵀ`` (m × m), ``xz = Σ w x zᵀ`` (n × m), ``xx = Σ w x xᵀ``
    (n × n), ``x_sq = Σ w ‖x‖²``, ``z_sq = Σ w ‖z‖²`` and ``weight = Σ w``,
    where older samples weigh less (:func:`forgetting`).

    Parameters
    ----------
    zz : array, shape (m, m)
        ``Σ w z zᵀ``.
    xz : array, shape (n, m)
        ``Σ w x zᵀ``.
    xx : array, shape (n, n)
        ``Σ w x xᵀ``.
    x_sq : float
        ``Σ w ‖x‖²``.
    z_sq : float
        ``Σ w ‖z‖²``.
    weight : float
        ``Σ w``.
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

    @classmethod
    def of(cls, X, Z):
        """The sums over the batch ``X`` (n × b) with its codes ``Z`` (m × b), each sample of weight 1.

        Parameters
        ----------
        X : array, shape (n, b)
            The batch, samples as columns.
        Z : array, shape (m, b)
            Its codes.

        Returns
        -------
        Statistics
            The batch's sums; ``weight`` is ``b``.
        """
        xp = get_namespace(X, Z)
        return cls(Z @ Z.mT, X @ Z.mT, X @ X.mT, sq_norm(xp, X), sq_norm(xp, Z), X.shape[1])

    def update(self, X, Z, beta):
        """Scale the sums by ``beta`` and add the batch ``X`` (n × b) with its codes ``Z`` (m × b)."""
        self.merge(Statistics.of(X, Z), beta)

    def merge(self, other, beta=1.0):
        """Scale the sums by ``beta`` and add ``other``'s: the sums of a batch, or of a part of one.

        Parameters
        ----------
        other : Statistics
            The sums to add.
        beta : float, default=1.0
            The factor applied to these sums first (:func:`forgetting`).

        Returns
        -------
        Statistics
            These sums, updated in place.
        """
        self.zz = beta * self.zz + other.zz
        self.xz = beta * self.xz + other.xz
        self.xx = beta * self.xx + other.xx
        self.x_sq = beta * self.x_sq + other.x_sq
        self.z_sq = beta * self.z_sq + other.z_sq
        self.weight = beta * self.weight + other.weight
        return self

    def to(self, xp, device=None):
        """The same sums as arrays of namespace ``xp`` (on ``device``): worker results on the client."""
        move = lambda a: to_namespace(a, xp, device=device)
        return Statistics(move(self.zz), move(self.xz), move(self.xx), self.x_sq, self.z_sq, self.weight)


#: Forgetting schedules of online learning (:func:`forgetting`).
FORGETTING = ("recent", "mairal")
# "recent": the sums behave as a sum over the last max(2b, t/_MEMORY) samples after t samples. Measured
# on Barbara (λ_e = 0, m = 200, batches of 256, one thread): after 8 epochs of N = 2726 the energy is
# 16,989 with _MEMORY = 16, 17,276 with 8, 17,563 with 4, and 17,795 with Mairal's schedule; a window
# fixed at 2 batches does as well early (16,974) but stalls later (17,768 after 12 epochs of 1 batch).
_MEMORY = 16


def forgetting(step, batch_size, schedule="recent"):
    """The factor that scales the statistics before batch number ``step`` (from 0) is added.

    Both schedules make the statistics behave as a sum over the last ``θ``
    samples, by scaling them by ``(θ + 1 − b)/(θ + 1)`` before a batch of
    ``b`` is added (Mairal et al., 2010, §3.4):

    - ``"mairal"``: ``θ = (step + 1)·b`` while ``step < b − 1``, then
      ``b² + step + 1 − b`` (the schedule of SPAMS and scikit-learn's
      ``MiniBatchDictionaryLearning``): everything seen is remembered at
      first, and for batches of 256 the window reaches 65,536 samples;
    - ``"recent"`` (eaelib's default): ``θ = max(2b, (step + 1)·b/16)``, a
      sixteenth of the samples seen, at least two batches. Codes computed
      with an early, poor dictionary fade out within a few batches, and the
      window still grows without bound, so the sums average ever more
      samples as the dictionary settles. Measured faster to every energy of
      the benchmark (see ``_MEMORY``).

    Parameters
    ----------
    step : int
        Number of the batch about to be added, from 0.
    batch_size : int
        Samples in the batch, ``b``.
    schedule : {"recent", "mairal"}
        The schedule.

    Returns
    -------
    float
        The factor ``(θ + 1 − b)/(θ + 1)``, in [0, 1).

    Raises
    ------
    ValueError
        If ``schedule`` is neither.
    """
    b = batch_size
    if schedule == "mairal":
        theta = (step + 1) * b if step < b - 1 else b * b + step + 1 - b
    elif schedule == "recent":
        theta = max(2 * b, (step + 1) * b // _MEMORY)
    else:
        raise ValueError(f"forgetting must be one of {FORGETTING}, got {schedule!r}")
    return max(theta + 1 - b, 0) / (theta + 1)


#: D-steps of online learning: one block-coordinate pass on the sums (:mod:`eaelib.coordinate`) or the
#: exact dual solve (:mod:`eaelib.dual`).
DICTIONARY_STEPS = ("pass", "exact")


@dataclass
class OnlineState:
    """The model and what online learning carries from one batch to the next.

    ``forgetting`` is the schedule of :func:`forgetting` and
    ``dictionary_step`` the D-step on the sums, one of :data:`DICTIONARY_STEPS`.
    """

    D: Array
    E: Array
    statistics: Statistics
    step: int = 0
    multipliers: dict = field(default_factory=dict)
    n_resampled: int = 0
    forgetting: str = "recent"
    dictionary_step: str = "pass"


def start(X, D, E):
    """The :class:`OnlineState` at ``(D, E)`` with empty statistics, in ``X``'s namespace and dtype."""
    xp = get_namespace(X, D, E)
    return OnlineState(D, E, Statistics.zeros(xp, D.shape[0], D.shape[1], X.dtype, X.device))


def start_like(D, E):
    """The :class:`OnlineState` at ``(D, E)`` with empty statistics, in ``D``'s namespace, dtype and device."""
    xp = get_namespace(D, E)
    return OnlineState(D, E, Statistics.zeros(xp, D.shape[0], D.shape[1], D.dtype, D.device))


def minibatches(n_samples, batch_size, rng):
    """One epoch: the sample indices shuffled by ``rng`` and cut into batches (the last may be smaller)."""
    order = rng.permutation(n_samples)
    return [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]


def batch_codes(X, D, E, *, lambda_d, lambda_e, lambda_s, rtol, max_iter, code_solver="auto"):
    """Codes of the batch ``X`` (n × b): the Z-subproblem to a duality gap of ``rtol`` of each sample's energy.

    With the homotopy (``code_solver``, see :func:`~eaelib.subproblems.choose_code_solver`) they are exact.
    """
    xp = get_namespace(X, D, E)
    f, g = code_problem(X, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    if choose_code_solver(f, g, code_solver) == "lars":  # exact: no start to improve on
        return code_step(f, g, None, solver="lars", rtol=rtol, max_iter=max_iter, momentum=_MOMENTUM)
    # The encoder's prediction is the natural start (predictive sparse decomposition); without the
    # encoder term, E is not learned and zeros are the start.
    Z0 = E @ X if lambda_e > 0 else xp.zeros((D.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
    # Cold starts gain from Newton steps on the support where the problem is barely strongly convex.
    return fista(f, g, Z0, rtol=rtol, max_iter=max_iter, momentum=_MOMENTUM, polish=newton_every(f))


def online_step(state, X, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner, rng, code_solver="auto"):
    """One mini-batch ``X`` (n × b): code it, add it to the statistics, solve D and E on them.

    Atoms that no sample has used yet (a zero diagonal entry of ``Σ z zᵀ``)
    are replaced by samples of the batch, scaled to unit norm: they multiply
    zero codes, so the statistics stay valid.

    The three stages are :func:`batch_codes` with :meth:`Statistics.of`
    (what a worker does with its part of a batch), :func:`absorb` and
    :func:`resample_unused` (what the client does with the sums), so that
    :mod:`eaelib.distributed` runs the same arithmetic across machines.

    Parameters
    ----------
    state : OnlineState
        The model and the running sums.
    X : array, shape (n, b)
        The batch, samples as columns.
    lambda_d, lambda_e, lambda_s : float
        Weights of the energy terms.
    inner_rtol : float
        Tolerance of the batch's Z-step: each sample's duality gap relative to its energy.
    max_inner : int
        Most iterations of the Z-step's FISTA.
    rng : numpy.random.Generator
        Draws the samples that replace unused atoms.
    code_solver : {"auto", "lars", "fista"}
        The Z-solver (:func:`~eaelib.subproblems.choose_code_solver`).

    Returns
    -------
    state : OnlineState
        Updated in place and returned.
    codes : FistaResult
        The batch's Z-step (its codes before D and E moved).
    """
    xp = get_namespace(X)
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    codes = batch_codes(X, state.D, state.E, **weights, rtol=inner_rtol, max_iter=max_inner, code_solver=code_solver)
    absorb(state, Statistics.of(X, codes.x), lambda_d=lambda_d, lambda_e=lambda_e)
    norms = lambda: to_numpy(xp.linalg.vector_norm(X, axis=0))
    columns = lambda picked: xp.take(X, from_numpy(xp, picked, device=X.device), axis=1)
    resample_unused(state, norms, columns, lambda_d=lambda_d, rng=rng)
    return state, codes


def absorb(state, batch, *, lambda_d, lambda_e):
    """Add a batch's sums to the statistics with the forgetting factor, then update D and E on them.

    ``batch`` is :meth:`Statistics.of` the batch (or the sum of its parts').
    D takes ``state.dictionary_step``: one block-coordinate pass
    (:func:`eaelib.coordinate.coordinate_pass`, as SPAMS) or the exact dual
    solve; E is always solved exactly (coordinate passes crawl on it: the
    columns of ``XXᵀ`` on image patches are nearly parallel, cond ≈ 1e6).
    """
    stats = state.statistics
    stats.merge(batch, forgetting(state.step, int(batch.weight), state.forgetting))
    state.step += 1
    if lambda_d > 0 and state.dictionary_step == "pass":
        state.D = coordinate_pass(state.D, stats.zz, stats.xz)
    elif lambda_d > 0:
        res = solve_ball(
            stats.zz, stats.xz, stats.x_sq, state.D, weight=lambda_d, multipliers=state.multipliers.get("D")
        )
        state.D, state.multipliers["D"] = res.x, res.multipliers
    if lambda_e > 0:
        res = solve_ball(
            stats.xx, stats.xz.mT, stats.z_sq, state.E, weight=lambda_e, multipliers=state.multipliers.get("E")
        )
        state.E, state.multipliers["E"] = res.x, res.multipliers
    return state


def resample_unused(state, norms, columns, *, lambda_d, rng):
    """Replace the atoms that no sample has used yet by samples of the last batch, of unit norm.

    ``norms()`` gives the batch's column norms (NumPy) and ``columns(picked)``
    its columns ``picked`` (n × m, in the model's namespace): both are only
    called when some atom is unused, so a distributed batch is fetched then.
    """
    xp = get_namespace(state.D)
    unused = to_numpy(xp.linalg.diagonal(state.statistics.zz)) == 0
    if not (unused.any() and lambda_d > 0):
        return state
    candidates = np.flatnonzero(norms() > 0)
    if candidates.size == 0:
        return state
    picked = np.zeros(state.D.shape[1], dtype=np.int64)
    picked[unused] = rng.choice(candidates, size=int(unused.sum()), replace=candidates.size < unused.sum())
    fresh = columns(picked)
    fresh = fresh / xp.linalg.vector_norm(fresh, axis=0, keepdims=True)
    mask = from_numpy(xp, unused, device=state.D.device)
    state.D = project_columns(xp.where(mask, fresh, state.D))
    state.n_resampled += int(unused.sum())
    return state


def evaluate(batches, D, E, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner, code_solver="auto"):
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
    total = None
    inner = dict(inner_rtol=inner_rtol, max_inner=max_inner, code_solver=code_solver)
    for X in batches:
        part = evaluation_sums(X, D, E, **weights, **inner)
        total = part if total is None else total.merge(part)
    return certify(total, D, E, lambda_d=lambda_d, lambda_e=lambda_e)


@dataclass
class EvaluationSums:
    """What a pass of :func:`evaluate` adds up over the batches: energy terms, Z-gap and statistics."""

    terms: dict
    gap_z: float
    statistics: Statistics

    def merge(self, other):
        """Add ``other``'s sums (a later batch's) to these."""
        for key, value in other.terms.items():
            self.terms[key] += value
        self.gap_z += other.gap_z
        self.statistics.merge(other.statistics)
        return self


def evaluation_sums(X, D, E, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner, code_solver="auto"):
    """One batch ``X`` (n × b) of :func:`evaluate`: its codes solved, its energy terms, Z-gap and sums."""
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    res = batch_codes(X, D, E, **weights, rtol=inner_rtol, max_iter=max_inner, code_solver=code_solver)
    terms = dict.fromkeys(ENERGY_TERMS, 0.0)
    for key, value in energy_terms(X, res.x, D, E, **weights).items():
        terms[key] += value
    gap_z = float(res.certificate[-1])  # the Z-step's duality gap at its codes, summed over the samples
    stats = Statistics.zeros(get_namespace(X), D.shape[0], D.shape[1], X.dtype, X.device)
    return EvaluationSums(terms, gap_z, stats.merge(Statistics.of(X, res.x)))


def certify(sums, D, E, *, lambda_d, lambda_e):
    """``(terms, certificates)`` of :func:`evaluate` from the pass's :class:`EvaluationSums`.

    The D and E gaps come from solving their subproblems exactly on the pass's
    statistics: ``gap(D) ≤ P(D) − P(D*) + gap(D*)``.
    """
    xp = get_namespace(D, E)
    stats = sums.statistics
    gaps = {"Z": sums.gap_z, "D": 0.0, "E": 0.0}
    for name, weight, gram, b, c, W in (
        ("D", lambda_d, stats.zz, stats.xz, stats.x_sq, D),
        ("E", lambda_e, stats.xx, stats.xz.mT, stats.z_sq, E),
    ):
        if weight > 0:
            best = solve_ball(gram, b, c, W, weight=weight)
            half_sum = 0.5 * (W + best.x)
            loss = weight * float(xp.sum((W - best.x) * (half_sum @ gram - b)))  # P(W) − P(W*)
            gaps[name] = max(loss, 0.0) + best.certificate[-1]
    return sums.terms, gaps


def zero_code_energy(batches, D, E, *, lambda_d, lambda_e, lambda_s):
    """The energy at ``(D, E)`` with zero codes, summed over ``batches``: where learning starts."""
    terms = dict.fromkeys(ENERGY_TERMS, 0.0)
    for X in batches:
        zeros = get_namespace(X).zeros((D.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
        for key, value in energy_terms(X, zeros, D, E, lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s).items():
            terms[key] += value
    return terms


class ArraySource:
    """The batches of an in-memory ``X`` (n × N): :func:`learn_online`'s source for an array.

    A *batch source* is what :func:`learn_online` learns from: an object with

    - ``xp``, ``dtype``, ``device``: where the model computes; ``n_features``;
    - ``first_batch()``: samples as columns, where a new model's start is drawn from;
    - ``initial_energy(D, E, **weights)``: the energy at ``(D, E)`` with zero codes;
    - ``train_epoch(state, rng, fraction=1.0, **options)``: one epoch of
      :func:`online_step` (or of its stages) on ``state``, or its first
      ``fraction`` of batches;
    - ``evaluate(D, E, **options)``: ``(terms, certificates)``, as :func:`evaluate`.

    :class:`StreamSource` (a :class:`~eaelib.PatchStream`) and
    :class:`eaelib.distributed.DaskSource` are the others; :func:`eaelib.sources.batch_source` picks one.
    """

    def __init__(self, X, batch_size, shuffle=True):
        self.X, self.batch_size, self.shuffle = X, batch_size, shuffle
        self.xp, self.dtype, self.device, self.n_features = get_namespace(X), X.dtype, X.device, X.shape[0]

    def first_batch(self):
        """The first batch in order, or, shuffled, every sample (any batch could come first)."""
        return self.X if self.shuffle else self.X[:, : min(self.batch_size, self.X.shape[1])]

    def _spans(self, size=None):
        N, size = self.X.shape[1], size or self.batch_size
        return [(i, min(i + size, N)) for i in range(0, N, size)]

    def initial_energy(self, D, E, **weights):
        X = self.X
        zeros = get_namespace(X).zeros((D.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
        return energy_terms(X, zeros, D, E, **weights)

    def train_epoch(self, state, rng, fraction=1.0, **options):
        xp, X = get_namespace(self.X), self.X
        if self.shuffle:
            batches = minibatches(X.shape[1], self.batch_size, rng)
            for index in batches[: batches_in(len(batches), fraction)]:
                online_step(state, xp.take(X, from_numpy(xp, index, device=X.device), axis=1), **options, rng=rng)
        else:
            spans = self._spans()
            for a, b in spans[: batches_in(len(spans), fraction)]:
                online_step(state, X[:, a:b], **options, rng=rng)

    def evaluate(self, D, E, **options):
        spans = self._spans(max(self.batch_size, EVALUATION_COLUMNS))
        return evaluate((self.X[:, a:b] for a, b in spans), D, E, **options)


class StreamSource:
    """A :class:`~eaelib.PatchStream` as a batch source: its shuffled epochs, and passes in order.

    The stream yields patches as rows in NumPy; ``xp`` (and ``device``,
    ``dtype``) say where the model computes, and every batch is moved there.
    """

    def __init__(self, stream, xp, dtype, device=None):
        self.stream, self.xp, self.dtype, self.device = stream, xp, dtype, device
        self.n_features = stream.n_features

    @classmethod
    def for_model(cls, stream, backend, dtype):
        """The source of an estimator with parameters ``backend`` and ``dtype`` (None: the stream's)."""
        xp = model_namespace(backend, np.empty(0))
        default = xp.float64 if stream.dtype == np.float64 else xp.float32
        return cls(stream, xp, resolve_dtype(xp, dtype, default))

    def first_batch(self):
        """The stream's next batch (samples as columns), without moving it on: what a start is drawn from."""
        return next(self._columns(self.stream.batches(self.stream.epoch)))

    def _columns(self, batches):
        for rows in batches:
            yield to_namespace(rows, self.xp, dtype=self.dtype, device=self.device).mT

    def initial_energy(self, D, E, **weights):
        return zero_code_energy(self._columns(self.stream.in_order()), D, E, **weights)

    def train_epoch(self, state, rng, fraction=1.0, **options):
        for X in itertools.islice(self._columns(self.stream), batches_in(len(self.stream), fraction)):
            online_step(state, X, **options, rng=rng)

    def evaluate(self, D, E, **options):
        batches = self.stream.in_order(max(self.stream.batch_size, EVALUATION_COLUMNS))
        return evaluate(self._columns(batches), D, E, **options)


def batches_in(n_batches, fraction):
    """How many of an epoch's ``n_batches`` its first ``fraction`` holds: at least one, all for ``fraction = 1``.

    What every batch source's ``train_epoch`` runs for a fractional ``max_epochs``.
    """
    return max(1, math.ceil(fraction * n_batches))


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
    code_solver="auto",
    certify_every=CERTIFY_EVERY,
    dictionary_step="pass",
    forgetting="recent",
):
    """Learn ``D`` and ``E`` from ``X`` (n × N) by epochs of mini-batches, certified at the end.

    Parameters
    ----------
    X : array, shape (n, N), or batch source
        Data, samples as columns; or a batch source (see :class:`ArraySource`:
        :class:`StreamSource`, :class:`eaelib.distributed.DaskSource`), which
        then says what the batches are (``batch_size`` and ``shuffle`` are
        those of an array's).
    D, E : arrays
        Starting dictionary (n × m) and encoder (m × n), feasible.
    lambda_d, lambda_e, lambda_s : float
        Weights of the energy terms (no graph term: it couples all samples).
    batch_size : int
        Samples per mini-batch.
    max_epochs : int or float
        Most passes over the data; a fraction ends the last pass part-way
        (``0.25``: a quarter of the first epoch's batches), as SPAMS's
        ``iter`` counts batches.
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
        Called as ``callback(epoch, terms)`` after every certified epoch; ``True`` stops.
    code_solver : {"auto", "lars", "fista"}
        Solver of each batch's codes (:func:`~eaelib.subproblems.choose_code_solver`).
    certify_every : int
        Certify (a pass over the data: exact codes, the energy and each
        block's gap) every ``certify_every`` epochs, and always after the
        last one. A pass costs about an epoch; convergence (``rtol``) is
        only checked there.
    dictionary_step : {"pass", "exact"}
        The D-step on the sums after each batch: one block-coordinate pass
        (as SPAMS; the default, measured faster to every energy in the
        benchmark) or the exact dual solve.
    forgetting : {"recent", "mairal"}
        How the running sums forget old samples (:func:`forgetting`).

    Returns
    -------
    result : LearningResult
        ``energy``: the energy at ``(D, E)`` with zero codes (as in
        :func:`eaelib.learn`), then after each certified epoch
        (``result.iterations`` says which); ``certificates`` the block gaps
        there; ``Z`` is None (codes are not kept).
    state : OnlineState
        To continue learning (:meth:`EnergyAutoEncoder.partial_fit`).
    """
    if forgetting not in FORGETTING:
        raise ValueError(f"forgetting must be one of {FORGETTING}, got {forgetting!r}")
    if dictionary_step not in DICTIONARY_STEPS:
        raise ValueError(f"dictionary_step must be one of {DICTIONARY_STEPS}, got {dictionary_step!r}")
    if not (isinstance(certify_every, int) and certify_every >= 1):
        raise ValueError(f"certify_every must be an integer ≥ 1, got {certify_every!r}")
    if not (isinstance(max_epochs, (int, float)) and max_epochs > 0):
        raise ValueError(f"max_epochs must be a number > 0, got {max_epochs!r}")
    weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
    inner = dict(inner_rtol=inner_rtol, max_inner=max_inner, code_solver=code_solver)
    rng = check_random_state(random_state)
    source = X if hasattr(X, "train_epoch") else ArraySource(X, batch_size, shuffle)
    state = start_like(D, E) if state is None else state
    state.forgetting, state.dictionary_step = forgetting, dictionary_step
    result = LearningResult(None, state.D, state.E, energy=[source.initial_energy(state.D, state.E, **weights)])

    def advance(epoch):
        """One epoch of mini-batches (part of one, for a fractional ``max_epochs``)."""
        source.train_epoch(state, rng, fraction=min(1.0, max_epochs - epoch + 1), **weights, **inner)
        result.D, result.E, result.n_reinitialized = state.D, state.E, state.n_resampled
        result.n_iter = epoch
        return True

    def certify():
        return source.evaluate(state.D, state.E, **weights, **inner)

    try:
        drive(result, advance, certify, max_iter=max_epochs, rtol=rtol, callback=callback, certify_every=certify_every)
    except SourceError as exc:
        result.converged, result.status = False, "failed"
        result.multipliers = dict(state.multipliers)
        exc.result = result
        exc.args = (
            f"{exc.args[0]}; the model holds the update of mini-batch {state.step} ({result.n_iter} complete epochs "
            "in its histories)",
        )
        raise
    result.multipliers = dict(state.multipliers)
    return result, state
