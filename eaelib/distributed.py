"""Online learning on Dask: the batch's codes and sums on the workers, D and E on the client.

The D- and E-subproblems see the samples only through sums (``Σ z zᵀ``,
``Σ x zᵀ``, ``Σ x xᵀ``, ``Σ ‖x‖²``, ``Σ ‖z‖²``: :class:`eaelib.online.Statistics`),
and the codes of a batch depend only on its samples and the model. So a
batch made of several chunks of a ``dask.array`` of patches is learned as:

1. the model ``(D, E)`` (small: 2 n m numbers) goes to the workers;
2. each worker codes its chunk against it (:func:`eaelib.online.batch_codes`)
   and returns the chunk's sums (:meth:`Statistics.of`: m² + n m + n²
   numbers, whatever the chunk's size);
3. the client adds the chunks' sums in chunk order, folds them into the running
   statistics with the forgetting factor and solves D and E exactly on them
   (:func:`eaelib.online.absorb`); atoms still unused are replaced by samples
   of the batch, fetched from the workers only then
   (:func:`eaelib.online.resample_unused`).

This is :func:`eaelib.online.online_step` with the batch's products split by
chunks, so the same batches give the same model as learning in memory, up to
the rounding of the sums' order. The epoch-end certificate (:func:`eaelib.online.evaluate`)
is split the same way. Dask runs the tasks on whatever scheduler is active: a
``distributed.Client`` (tasks retried on another worker when one dies), or
Dask's local schedulers. Chunks are computed when a batch needs them and are
not kept, so memory is bounded by the chunks in flight, not by the data.

Dask (``dask`` and ``distributed``) is an optional dependency, eaelib's ``dask`` extra
(``pip install "eaelib[full,dask] @ git+<repository>"``); nothing else in eaelib imports it.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np

from ._array import backend_name, dtype_name, get_namespace, resolve_dtype, to_namespace, to_numpy
from ._optional import import_dask, missing, missing_message
from ._validation import model_namespace
from .learning import SourceError
from .online import Statistics, absorb, batches_in, certify, evaluation_sums, resample_unused

#: Retries of a task on the distributed scheduler (another worker takes it when one dies).
RETRIES = 3


def batch_groups(chunk_sizes, batch_size):
    """Consecutive chunks grouped into batches: each group gathers chunks until it holds ≥ ``batch_size`` samples.

    The last group may hold fewer. With chunks of ``c`` samples and
    ``batch_size = k c``, every batch is ``k`` chunks: the batches of the
    in-memory fit with ``shuffle=False`` and the same ``batch_size``.
    """
    groups, current, count = [], [], 0
    for i, size in enumerate(chunk_sizes):
        current.append(i)
        count += size
        if count >= batch_size:
            groups.append(current)
            current, count = [], 0
    if current:
        groups.append(current)
    return groups


def local_cluster(n_workers, **kwargs):
    """A ``distributed.LocalCluster`` of ``n_workers`` processes whose workers ignore Ctrl-C.

    A terminal's Ctrl-C sends SIGINT to its whole foreground process group, and a local cluster's worker
    processes are in it: each would die printing its traceback, and the client would wait for a batch that
    no worker computes any more. The workers of this cluster ignore SIGINT, so Ctrl-C reaches the client
    alone: a fit there stops (:class:`~eaelib.EnergyAutoEncoder` keeps its last complete epoch) and the
    cluster then closes normally. They are started while this process ignores SIGINT (an ignored signal
    stays ignored in a child, across ``exec``, and Python then installs no KeyboardInterrupt handler), and
    a worker that the cluster restarts (after one died) ignores it from its start-up on (a preload). Two
    consequences: a Ctrl-C while the workers start is lost; and called outside the main thread (where
    Python cannot change signal handlers), the first workers ignore SIGINT only once their preload ran.

    Parameters
    ----------
    n_workers : int
        Worker processes.
    **kwargs
        Other arguments of ``distributed.LocalCluster``; by default ``processes=True`` and
        ``threads_per_worker=1``, as ``eaelib learn --workers N`` runs it.

    Returns
    -------
    distributed.LocalCluster
        Close it when done (``with local_cluster(4) as cluster, Client(cluster): ...``).
    """
    if missing("dask", "distributed"):
        raise ImportError(missing_message("eaelib.distributed.local_cluster", missing("dask", "distributed"), "dask"))
    import dask
    import distributed

    kwargs = {"processes": True, "threads_per_worker": 1, **kwargs}
    preload = kwargs.get("preload")
    if preload is None:  # the workers' preloads from Dask's configuration, as LocalCluster would take them
        preload = dask.config.get("distributed.worker.preload", None) or []
    kwargs["preload"] = [*([preload] if isinstance(preload, str) else preload), "eaelib._dask_worker"]
    with _sigint_ignored():
        return distributed.LocalCluster(n_workers=n_workers, **kwargs)


#: Seconds that closing a client, then its local cluster, may take: a run that is over (the model saved, or
#: a failure) cannot hang on a scheduler that stops answering; after a Ctrl-C closing took about a second.
CLOSE_TIMEOUT = 10


@contextlib.contextmanager
def connect(workers=None, scheduler=None, *, close_timeout=CLOSE_TIMEOUT):
    """A ``distributed.Client`` of a new local cluster or of a running one, closed on exit.

    Parameters
    ----------
    workers : int, optional
        Start a :func:`local_cluster` of this many worker processes (one thread each, ignoring Ctrl-C), as
        ``eaelib learn --workers N`` does.
    scheduler : str, optional
        Or connect to the running cluster whose scheduler is at this address (``tcp://host:8786``), within
        10 s.
    close_timeout : float, default=CLOSE_TIMEOUT
        Seconds that closing the client, then the local cluster, may take each.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ImportError
        If Dask or distributed is not installed.
    OSError, ValueError, TypeError
        If ``scheduler`` cannot be reached or is not an address, as ``distributed.Client`` raises them.
    """
    if (workers is None) == (scheduler is None):
        raise ValueError(f"give workers or scheduler, one of them: got workers={workers!r}, scheduler={scheduler!r}")
    if missing("dask", "distributed"):
        raise ImportError(missing_message("eaelib.distributed.connect", missing("dask", "distributed"), "dask"))
    import distributed

    cluster = None if workers is None else local_cluster(workers, dashboard_address=None)
    try:
        client = distributed.Client(scheduler if cluster is None else cluster, timeout="10s")
    except BaseException:
        if cluster is not None:
            cluster.close(timeout=close_timeout)
        raise
    try:
        yield client
    finally:
        with contextlib.suppress(TimeoutError):
            client.close(timeout=close_timeout)
        if cluster is not None:
            with contextlib.suppress(TimeoutError):
                cluster.close(timeout=close_timeout)


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored in this process meanwhile (only the main thread may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        # None: a handler set outside Python, which cannot be put back; the default is Python's own
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


class DaskSource:
    """A ``dask.array`` of samples as rows, as a batch source of :func:`eaelib.online.learn_online`.

    Parameters
    ----------
    X : dask.array.Array, shape (n_samples, n_features)
        Chunked along the samples (a chunked feature axis is rechunked to one
        chunk); its chunks may be NumPy or CuPy arrays.
    batch_size : int
        Batches are consecutive chunks holding at least this many samples
        (:func:`batch_groups`): the chunks of a batch are coded in parallel.
    shuffle : bool
        Visit the batches in a new random order every epoch (their chunks
        stay together); else in order.
    xp : namespace
        Array namespace of the client's model and statistics.
    dtype : dtype
        Their floating dtype.
    device : device, optional
        Their device.
    retries : int
        Retries of each task on a ``distributed`` scheduler.
    """

    def __init__(self, X, batch_size, shuffle, xp, dtype, device=None, retries=RETRIES):
        dask, _ = import_dask("the Dask fit")
        self._dask = dask
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array of shape (n_samples, n_features), got shape {X.shape}")
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        self.X, self.sizes, self.n_features = X, X.chunks[0], int(X.shape[1])
        self.blocks = _own_graphs(list(X.to_delayed()[:, 0]))
        self.groups = batch_groups(self.sizes, batch_size)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.shuffle, self.xp, self.dtype, self.device, self.retries = shuffle, xp, dtype, device, retries

    @classmethod
    def for_model(cls, X, batch_size, shuffle, backend, dtype):
        """The source of an estimator with parameters ``backend`` and ``dtype``.

        The model computes with the library of ``X``'s chunks (``backend=None``) and in their floating
        type (``dtype=None``; float64 for integer chunks); a ``backend`` other than the chunks' library is
        refused, since every chunk would be converted on the client.
        """
        meta = X._meta  # an empty chunk: Dask's record of the chunks' library and dtype
        xp = model_namespace(backend, meta)
        if xp is not get_namespace(meta) and backend is not None:
            raise ValueError(
                f"backend={backend!r} differs from the library of the dask.array's chunks "
                f"({backend_name(get_namespace(meta))}): convert the chunks (X.map_blocks) or set backend=None"
            )
        floating = np.dtype(str(meta.dtype).rsplit(".", 1)[-1]).kind == "f"
        default = getattr(xp, dtype_name(meta.dtype)) if floating else None
        return cls(X, batch_size, shuffle, xp, resolve_dtype(xp, dtype, default))

    # -- running tasks -----------------------------------------------------------------------------------

    def _compute(self, tasks):
        """Results of ``tasks`` (Dask delayed) on the active scheduler; a task that fails for good is a SourceError."""
        dask = self._dask
        try:
            if dask.config.get("scheduler", None) == "dask.distributed":
                from distributed import default_client, wait

                client = default_client()
                futures = client.compute(list(tasks), retries=self.retries)
                # Wait for every task, then gather: a gather that Ctrl-C interrupts leaves a waiter per task, which
                # fail when the client closes and which asyncio then reports with a traceback each ("Task
                # exception was never retrieved"); wait's waiters end quietly.
                wait(futures)
                return client.gather(futures)
            return list(dask.compute(*tasks))
        except (KeyboardInterrupt, SourceError):
            raise
        except Exception as exc:
            retried = (
                f" after {self.retries} retries" if dask.config.get("scheduler", None) == "dask.distributed" else ""
            )
            raise SourceError(f"a Dask task of the fit failed{retried}: {type(exc).__name__}: {exc}") from exc

    def _model(self, D, E):
        """``D`` and ``E`` as two graph keys, sent once to each worker that needs them."""
        delayed = self._dask.delayed
        return delayed(to_numpy(D), pure=True), delayed(to_numpy(E), pure=True)

    def _location(self, i):
        return f"samples {self.offsets[i]}–{self.offsets[i + 1] - 1}"

    def _sums(self, parts):
        """The parts' sums added in chunk order, in the client's namespace."""
        total = None
        for part in parts:
            part = part.to(self.xp, self.device)
            total = part if total is None else total.merge(part)
        return total

    # -- the batch source protocol -------------------------------------------------------------------------

    def first_batch(self):
        """The first batch (its chunks in order) as columns (n × b), where the model's start is drawn from."""
        rows = self._compute(
            [
                self._dask.delayed(_rows)(self.blocks[i], dtype_name(self.dtype), self._location(i))
                for i in self.groups[0]
            ]
        )
        X = np.concatenate([to_numpy(r) for r in rows], axis=0)
        return to_namespace(X, self.xp, dtype=self.dtype, device=self.device).mT

    def initial_energy(self, D, E, **weights):
        D_, E_ = self._model(D, E)
        task = self._dask.delayed(_zero_code_terms)
        parts = self._compute(
            [task(b, D_, E_, weights, dtype_name(self.dtype), self._location(i)) for i, b in enumerate(self.blocks)]
        )
        terms = dict.fromkeys(parts[0], 0.0)
        for part in parts:
            for key, value in part.items():
                terms[key] += value
        return terms

    def train_epoch(
        self, state, rng, fraction=1.0, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner, code_solver="auto"
    ):
        weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
        inner = dict(rtol=inner_rtol, max_iter=max_inner, code_solver=code_solver)
        order = rng.permutation(len(self.groups)) if self.shuffle else np.arange(len(self.groups))
        order = order[: batches_in(len(order), fraction)]
        delayed = self._dask.delayed
        for g in order:
            group = self.groups[g]
            D_, E_ = self._model(state.D, state.E)
            parts = self._compute(
                [
                    delayed(_chunk_sums)(
                        self.blocks[i], D_, E_, weights, inner, dtype_name(self.dtype), self._location(i)
                    )
                    for i in group
                ]
            )
            absorb(state, self._sums(parts), lambda_d=lambda_d, lambda_e=lambda_e)
            resample_unused(
                state,
                lambda group=group: self._norms(group),
                lambda picked, group=group: self._columns(group, picked),
                lambda_d=lambda_d,
                rng=rng,
            )

    def evaluate(self, D, E, *, lambda_d, lambda_e, lambda_s, inner_rtol, max_inner, code_solver="auto"):
        weights = dict(lambda_d=lambda_d, lambda_e=lambda_e, lambda_s=lambda_s)
        inner = dict(inner_rtol=inner_rtol, max_inner=max_inner, code_solver=code_solver)
        D_, E_ = self._model(D, E)
        task = self._dask.delayed(_evaluation_sums)
        parts = self._compute(
            [
                task(b, D_, E_, weights, inner, dtype_name(self.dtype), self._location(i))
                for i, b in enumerate(self.blocks)
            ]
        )
        total = None
        for part in parts:
            part.statistics = part.statistics.to(self.xp, self.device)
            total = part if total is None else total.merge(part)
        return certify(total, D, E, lambda_d=lambda_d, lambda_e=lambda_e)

    # -- fetching a batch's samples (only to replace unused atoms) -------------------------------------------

    def _norms(self, group):
        task = self._dask.delayed(_norms)
        parts = self._compute([task(self.blocks[i], dtype_name(self.dtype), self._location(i)) for i in group])
        return np.concatenate([to_numpy(p) for p in parts])

    def _columns(self, group, picked):
        """Columns ``picked`` (indices into the batch's samples, its chunks in order) as an n × len(picked) array."""
        bounds = np.cumsum([0, *(self.sizes[i] for i in group)])
        owner = np.searchsorted(bounds, picked, side="right") - 1
        wanted = [(k, picked[owner == k] - bounds[k]) for k in range(len(group)) if np.any(owner == k)]
        task = self._dask.delayed(_take_rows)
        parts = self._compute(
            [task(self.blocks[group[k]], rows, dtype_name(self.dtype), self._location(group[k])) for k, rows in wanted]
        )
        out = np.empty((len(picked), int(self.X.shape[1])), dtype=np.dtype(dtype_name(self.dtype)))
        for (k, _), rows in zip(wanted, parts, strict=True):
            out[owner == k] = to_numpy(rows)
        return to_namespace(out, self.xp, dtype=self.dtype, device=self.device).mT


def _own_graphs(blocks):
    """Each block as a Delayed whose graph holds only what computing it needs.

    ``to_delayed`` gives every block the whole array's graph: each batch's
    ``compute`` would then cull it again (or, on a distributed scheduler,
    ship it: every chunk of an in-memory array), for a cost that grows with
    the number of chunks. Culled once here, a batch costs its own chunks.
    """
    from dask.delayed import Delayed
    from dask.optimization import cull

    if not blocks:
        return blocks
    graph = dict(blocks[0].__dask_graph__())
    return [Delayed(block.key, cull(graph, [block.key])[0]) for block in blocks]


# -- what the workers run (module-level functions: they travel by reference) ---------------------------------


def _rows(block, dtype, where):
    """A chunk of samples as rows, checked finite and cast to ``dtype``, in the chunk's namespace."""
    xp = get_namespace(block)
    X = xp.astype(block, getattr(xp, dtype))
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"X contains NaN or infinite values ({where})")
    return X


def _columns_of(block, dtype, where, D, E):
    X = _rows(block, dtype, where).mT
    xp = get_namespace(X)
    move = lambda a: to_namespace(a, xp, dtype=X.dtype, device=X.device)
    return X, move(D), move(E)


def _chunk_sums(block, D, E, weights, inner, dtype, where):
    """A worker's share of :func:`eaelib.online.online_step`: its chunk's codes, returned as their sums."""
    from .online import batch_codes

    X, D, E = _columns_of(block, dtype, where, D, E)
    codes = batch_codes(X, D, E, **weights, **inner)
    return Statistics.of(X, codes.x)


def _evaluation_sums(block, D, E, weights, inner, dtype, where):
    X, D, E = _columns_of(block, dtype, where, D, E)
    return evaluation_sums(X, D, E, **weights, **inner)


def _zero_code_terms(block, D, E, weights, dtype, where):
    from .online import zero_code_energy

    X, D, E = _columns_of(block, dtype, where, D, E)
    return zero_code_energy([X], D, E, **weights)


def _norms(block, dtype, where):
    X = _rows(block, dtype, where)
    return get_namespace(X).linalg.vector_norm(X, axis=1)


def _take_rows(block, rows, dtype, where):
    X = _rows(block, dtype, where)
    xp = get_namespace(X)
    return xp.take(X, xp.asarray(rows, device=X.device), axis=0)
