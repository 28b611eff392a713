"""Timing, energy traces, the machine's GEMM rate and a description of the machine."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import eaelib

REPO = Path(__file__).resolve().parent.parent


def run_worker(module, arguments, threads):
    """Run ``python -m module arguments`` in a fresh process from the repository; its last stdout line, as JSON.

    Each worker measures in a process of its own (peak memory, a cold start); ``threads`` is passed on as
    ``--threads`` when set. A worker that fails raises with the tail of its stderr.
    """
    command = [sys.executable, "-m", module, *map(str, arguments)]
    if threads is not None:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


#: Batches of eaelib's online learner in the comparisons (measured faster than 256 to every SPAMS energy).
ONLINE_BATCH_SIZE = 128
#: Epoch counts of eaelib's online runs (:func:`online_time_to_energy`), each a fresh run certified at its end.
EPOCH_SCHEDULE = (0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256)

#: Packages whose versions every result records.
PACKAGES = ("eaelib", "numpy", "scipy", "scikit-learn", "pyunlocbox", "threadpoolctl", "matplotlib", "cupy")
#: Environment variables that change which BLAS kernel runs or how many threads it uses.
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def median_time(fn, repeats):
    """Median wall time of ``repeats`` calls of ``fn()``.

    Returns
    -------
    median : float
        Seconds.
    times : list of float
        Every call's seconds.
    result
        What the last call returned.
    """
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


@dataclass
class EnergyTrace:
    """Callback for :func:`eaelib.learn` recording the time and energy of every outer iteration.

    Parameters
    ----------
    target : float, optional
        Stop learning as soon as the energy is at most ``target``.
    time_budget : float, optional
        Stop learning after the first outer iteration that ends past this many seconds.

    Attributes
    ----------
    times, energies : list of float
        Seconds since :meth:`start` and total energy after each outer iteration.
    """

    target: float | None = None
    time_budget: float | None = None
    times: list = field(default_factory=list)
    energies: list = field(default_factory=list)
    _start: float = 0.0

    def start(self):
        """Start the clock: call just before :func:`eaelib.learn`."""
        self._start = time.perf_counter()
        return self

    def __call__(self, iteration, terms):
        self.times.append(time.perf_counter() - self._start)
        self.energies.append(float(terms["total"]))
        reached = self.target is not None and self.energies[-1] <= self.target
        over = self.time_budget is not None and self.times[-1] > self.time_budget
        return reached or over

    def time_to(self, energy):
        """Seconds until the energy first was at most ``energy``; None if never."""
        return time_to_energy(self.times, self.energies, energy)


def time_to_energy(times, energies, energy):
    """First time in ``times`` whose energy is at most ``energy``; None if never."""
    return next((t for t, e in zip(times, energies, strict=True) if e <= energy), None)


def eaelib_time_to_energy(workload, targets, *, lambdas=None, repeats=1, max_outer=200, time_budget=None):
    """Run :func:`eaelib.learn` from the workload's start until its energy is at most every target.

    The outer relative tolerance is 0, so that only reaching the lowest target
    (or ``max_outer``, or the time budget) stops it.

    Parameters
    ----------
    workload : Workload
    targets : dict
        Name to energy: the energies to reach.
    lambdas : dict, optional
        Weights; the workload's by default.
    repeats : int
        Runs; each time reported is their median.
    max_outer : int
    time_budget : float, optional
        Give up after an outer iteration that ends past this many seconds.

    Returns
    -------
    dict
        Per target name: ``seconds`` (median time to reach it, None if not
        reached), ``runs`` (each run's time) and ``outer`` (outer iterations
        needed); and ``trace`` (times and energies of the first run, which
        ran until every target was reached or it gave up). Later runs only
        go to the energies the first one reached.
    """
    lambdas = workload.lambdas if lambdas is None else lambdas
    Z0, D0, E0 = workload.initial()
    runs, first, pending = {name: [] for name in targets}, None, dict(targets)
    for _ in range(max(1, repeats)):
        trace = EnergyTrace(target=min(pending.values()), time_budget=time_budget).start()
        eaelib.learn(workload.X, Z0, D0, E0, **lambdas, max_outer=max_outer, rtol=0.0, callback=trace)
        first = trace if first is None else first
        for name, energy in pending.items():
            runs[name].append(trace.time_to(energy))
        # Repeat only for the energies reached: the same arithmetic would not reach the others either.
        pending = {name: energy for name, energy in pending.items() if runs[name][-1] is not None}
        if not pending:
            break
    result = {"trace": {"times": first.times, "energies": first.energies}}
    for name, energy in targets.items():
        reached = all(t is not None for t in runs[name])
        result[name] = {
            "energy": energy,
            "seconds": statistics.median(runs[name]) if reached else None,
            "runs": runs[name],
            "outer": next((k + 1 for k, e in enumerate(first.energies) if e <= energy), None),
        }
    return result


def interleaved_medians(functions, repeats):
    """Median wall time of each of ``functions``, called in turn ``repeats`` times.

    Interleaving the calls exposes every function to the same share of a busy
    machine, which matters when their times are compared.

    Parameters
    ----------
    functions : dict
        Name to a callable without arguments.
    repeats : int

    Returns
    -------
    dict
        Name to ``(median seconds, every call's seconds, what the last call returned)``.
    """
    times = {name: [] for name in functions}
    results = {}
    for _ in range(max(1, repeats)):
        for name, fn in functions.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), times[name], results[name]) for name in functions}


def gemm_products(m, N, dtype, count, xp=np):
    """A callable that computes ``count`` products ``(m × m) @ (m × N)`` in ``dtype``: the Z-step's product.

    On NumPy the output is preallocated, so that only the products are timed;
    on CuPy the callable waits for the GPU to finish. One call is made here to
    warm up (threads started, pages touched).
    """
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, m)).astype(dtype)
    B = rng.standard_normal((m, N)).astype(dtype)
    if xp is np:
        out = np.empty((m, N), dtype=dtype)
        product = lambda: np.matmul(A, B, out=out)
        done = lambda: None
    else:
        A, B = xp.asarray(A), xp.asarray(B)
        product = lambda: A @ B
        done = xp.cuda.get_current_stream().synchronize

    def products():
        for _ in range(count):
            product()
        done()

    product()
    done()
    return products


def gemm_rate(m, N, dtype, count=30, repeats=5, xp=np):
    """GFLOP/s of ``count`` back-to-back ``(m × m) @ (m × N)`` products, median of ``repeats``.

    Returns
    -------
    dict
        ``m``, ``N``, ``dtype``, ``seconds`` (median per product) and ``gflops``.
    """
    seconds, _, _ = median_time(gemm_products(m, N, dtype, count, xp), repeats)
    return gemm_result(m, N, dtype, seconds / count)


def gemm_result(m, N, dtype, seconds):
    """The GEMM record: ``m``, ``N``, ``dtype``, ``seconds`` per product and ``gflops`` (2 m² N / seconds)."""
    return {"m": m, "N": N, "dtype": np.dtype(dtype).name, "seconds": seconds, "gflops": 2 * m * m * N / seconds / 1e9}


def cpu_model():
    """CPU model name from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_gib():
    """Total memory in GiB from /proc/meminfo, or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def package_versions():
    """Installed version of every package of :data:`PACKAGES` (None if absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def blas_info():
    """The BLAS libraries loaded, as threadpoolctl reports them, and the environment that steers them."""
    from threadpoolctl import threadpool_info

    libraries = [
        {key: info.get(key) for key in ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads")}
        # The package that loaded it: "numpy.libs/libscipy_openblas64_….so" is NumPy's BLAS, the one eaelib uses.
        | {
            "filepath": info.get("filepath"),
            "package": Path(info.get("filepath", "")).parent.name.removesuffix(".libs"),
        }
        for info in threadpool_info()
    ]
    return {"libraries": libraries, "env": {name: os.environ.get(name) for name in BLAS_ENV}}


def blas_summary(info):
    """One line for the report: ``numpy: openblas 0.3.31 (SkylakeX kernel, 1 thread); scipy: …``."""
    summaries = []
    for lib in sorted(info["libraries"], key=lambda lib: lib.get("package") != "numpy"):  # NumPy's: eaelib's
        if lib["user_api"] == "blas":
            kernel = lib.get("architecture") or "unknown"
            threads = lib.get("num_threads")
            summaries.append(
                f"{lib['package']}: {lib['internal_api']} {lib['version']} "
                f"({kernel} kernel, {threads} thread{'s' * (threads != 1)})"
            )
    return "; ".join(summaries) or "unknown BLAS"


def git_state():
    """Commit of the repository and a digest of ``eaelib/`` as it is on disk (it may be uncommitted work)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "eaelib").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    state = {"commit": None, "eaelib_modified": None, "eaelib_sha256": digest.hexdigest()[:16]}
    try:
        run = lambda *args: subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        state["commit"] = run("git", "rev-parse", "--short", "HEAD")
        state["eaelib_modified"] = bool(run("git", "status", "--porcelain", "--", "eaelib"))
    except (OSError, subprocess.CalledProcessError):
        pass
    return state


def machine_info():
    """Date, machine, library versions, BLAS kernel and load: what every result is stamped with."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_total_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "blas": blas_info(),
        "git": git_state(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def online_time_to_energy(workload, lambdas, targets, *, max_epochs, time_budget, batch_size=None):
    """eaelib's online learner from D0, a fresh run per epoch count of :data:`EPOCH_SCHEDULE`, to every target.

    Each run is :func:`eaelib.online.learn_online` with its defaults (batches of ``batch_size``,
    :data:`ONLINE_BATCH_SIZE` by default) for that many epochs, certified once at its end, timed whole: what
    a user who asks for that many epochs waits. The time to a target is that of the first run that reaches
    it. Stops when every target is reached, at ``max_epochs``, or after a run that took longer than
    ``time_budget``.
    """
    batch_size = ONLINE_BATCH_SIZE if batch_size is None else batch_size
    _, D0, E0 = workload.initial()
    times, energies, counts = [], [], []
    for epochs in EPOCH_SCHEDULE:
        if epochs > max_epochs:
            break
        start = time.perf_counter()
        result, _ = eaelib.online.learn_online(
            workload.X,
            D0.copy(),
            E0.copy(),
            **lambdas,
            batch_size=batch_size,
            max_epochs=epochs,
            certify_every=math.ceil(epochs),
            rtol=0.0,
            random_state=workload.seed,
        )
        seconds = time.perf_counter() - start
        times.append(seconds)
        energies.append(float(result.energy[-1]["total"]))
        counts.append(epochs)
        # Like the batch learner, eaelib gives up once a run takes longer than the budget.
        if energies[-1] <= min(targets.values()) or seconds > time_budget:
            break
    result = {"trace": {"times": times, "energies": energies, "epochs": counts}}
    for name, energy in targets.items():
        reached = next((k for k, e in enumerate(energies) if e <= energy), None)
        result[name] = {
            "energy": energy,
            "seconds": None if reached is None else times[reached],
            "epochs": None if reached is None else counts[reached],
        }
    return result
