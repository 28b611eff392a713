"""Exact ℓ1 codes by the homotopy (LARS–Lasso) method, compiled with numba.

For one sample the Z-subproblem in its Gram form is ::

    minimize  F(z) = ½ zᵀ G z − bᵀ z + λ ‖z‖₁,    G = λ_d DᵀD + λ_e I,  b = λ_d Dᵀx + λ_e E x.

Its minimizer is piecewise linear in ``λ`` (Osborne, Presnell and Turlach,
2000; Efron, Hastie, Johnstone and Tibshirani, 2004): for ``λ ≥ ‖b‖_∞`` it is
0, and as ``λ`` decreases the active set ``A`` (with signs ``s``) changes only
at isolated values, between which ``z_A = G_AA⁻¹ (b_A − λ s_A)``. The
homotopy follows this path from ``‖b‖_∞`` down to the wanted ``λ``, one atom
in or out per step: on Barbara's patches with ``λ_e = 0`` it needs a few dozen
steps per sample, where proximal gradient methods need thousands (the atoms are
coherent and ``G`` is singular). This is the method behind SPAMS's ``lasso``
(Mairal, Bach, Ponce and Sapiro, 2010); this implementation is written from
the papers.

Each step costs ``O(mk + k²)`` for ``k`` active atoms: the direction
``w = G_AA⁻¹ s_A`` is a product with the inverse ``H = G_AA⁻¹``, kept up to
date, never refactored: an atom joining extends it by its Schur complement
``G_jj − G_jA H G_Aj`` (a bordered inverse), an atom leaving removes its row
and column by the inverse's own Schur complement (as SPAMS keeps its inverse;
a Cholesky factor, updated by a forward substitution and Givens rotations,
was measured 1.3× slower on dense codes, 635 against 480 µs a sample: its
triangular solves read a column at a time). Guards:

* an atom whose column of ``G`` is (numerically) in the span of the active
  ones (a duplicate, or a coherent atom once the active set spans the data) is
  refused: its Schur complement is below ``1e-10`` of its diagonal entry. For
  a duplicate the refusal is exact (its correlation follows its twin's); for
  other dependent atoms the result is checked like every other;
* an atom with ``G_jj ≤ 0`` (a zero atom without the encoder term) never joins;
* an atom that has just left (its coefficient reached 0) may rejoin at the
  next step only with the opposite sign: its correlation sits on the boundary
  it left from.

At the end the codes are recomputed from the final support and signs,
``z_A = H (b_A − λ s_A)``, with one step of iterative refinement against
``G_AA`` itself, so that neither the path's accumulated rounding nor the
inverse's remains in them. Each column is then certified in the kernel by its
duality gap (the bound of :meth:`eaelib.fista.L1Penalty.gap`), and the caller
(:func:`eaelib.subproblems.code_step`) lets FISTA finish any column whose gap
is above its tolerance.

The kernel works in float64 whatever the data's precision (``G`` is ``m × m``:
the conversion is cheap) and runs columns in parallel on threads, as many as
the BLAS is allowed (threadpoolctl) when that is known. Without numba,
:data:`AVAILABLE` is False and eaelib codes with FISTA.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - exercised by the test that hides numba
    numba = None

#: Whether the compiled homotopy can run (numba imports).
AVAILABLE = numba is not None
#: Why it cannot, when it cannot: what to install.
UNAVAILABLE_REASON = (
    None
    if AVAILABLE
    else "the homotopy solver needs numba, which is not installed: pip install numba (a dependency of eaelib)"
)

# A joining atom is refused when its Schur complement is below this fraction of its diagonal entry:
# its column of G is in the span of the active ones to about 1e-5 in angle.
_DEPENDENT = 1e-10
# Columns per task of the thread pool: enough to make a task's overhead (tens of microseconds)
# negligible against its work (tens of microseconds per column).
_COLUMNS_PER_TASK = 64


def _column(G, b, lam, z, status, sign, active, H, w, u, v, a, c, max_steps):
    """Follow the path of one sample from ``λ = ‖b‖_∞`` down to ``lam``; the codes go into ``z``.

    ``status[j]`` is 0 (inactive), 1 (active) or −1 (refused); ``H`` holds
    ``G_AA⁻¹`` for the active atoms in the order of ``active``. Returns the
    number of steps, negative when ``max_steps`` stopped the path first.
    """
    m = G.shape[0]
    lam_now = 0.0
    first = -1
    for j in range(m):
        z[j] = 0.0
        sign[j] = 0.0
        c[j] = b[j]
        status[j] = 0 if G[j, j] > 0.0 else -1
        if status[j] == 0 and abs(c[j]) > lam_now:
            lam_now = abs(c[j])
            first = j
    if first < 0 or lam_now <= lam:
        return 0
    k = _add(G, first, c, status, sign, active, H, u, v, 0)
    steps = 0
    dropped = -1
    dropped_side = 0.0
    while True:
        if steps >= max_steps:
            steps = -steps
            break
        steps += 1
        # Direction of z_A as λ decreases: w = G_AA⁻¹ s_A; and a = G[:, A] w, how it moves every correlation.
        for t in range(k):
            u[t] = sign[active[t]]
        _multiply(H, k, u, w)
        first_row = active[0]
        w0 = w[0]
        for j in range(m):
            a[j] = w0 * G[first_row, j]
        for t in range(1, k):
            wt = w[t]
            row = active[t]
            for j in range(m):
                a[j] += wt * G[row, j]
        # The next event: the end (λ reaches lam), an atom joining, or an active coefficient reaching 0.
        gamma = lam_now - lam
        event = 0
        who = -1
        for j in range(m):
            if status[j] != 0:
                continue
            # |c_j − γ a_j| = λ − γ, on the side of either sign; γ < gamma compared without dividing. An
            # atom that has just left may come back only on the other side: it sits on the one it left from.
            aj = a[j]
            cj = c[j]
            if j != dropped or dropped_side != 1.0:
                denominator = 1.0 - aj
                if denominator > 1e-12:
                    numerator = max(lam_now - cj, 0.0)
                    if numerator < gamma * denominator:
                        gamma, event, who = numerator / denominator, 1, j
            if j != dropped or dropped_side != -1.0:
                denominator = 1.0 + aj
                if denominator > 1e-12:
                    numerator = max(lam_now + cj, 0.0)
                    if numerator < gamma * denominator:
                        gamma, event, who = numerator / denominator, 1, j
        for t in range(k):
            if w[t] != 0.0:
                g = -z[active[t]] / w[t]
                if 0.0 < g < gamma:
                    gamma, event, who = g, 2, t
        for t in range(k):
            z[active[t]] += gamma * w[t]
        for j in range(m):
            c[j] -= gamma * a[j]
        lam_now -= gamma
        dropped = -1
        if event == 0:
            break
        if event == 1:
            k = _add(G, who, c, status, sign, active, H, u, v, k)
        else:
            dropped = active[who]
            dropped_side = sign[dropped]
            k = _remove(who, z, status, sign, active, H, k)
    # The exact codes of the final support and signs, z_A = G_AA⁻¹ (b_A − λ s_A), with one step of
    # iterative refinement: the inverse has been updated step by step, and carries their rounding.
    for t in range(k):
        u[t] = b[active[t]] - lam * sign[active[t]]
    _multiply(H, k, u, w)
    for t in range(k):
        s = u[t]
        row = active[t]
        for r in range(k):
            s -= G[row, active[r]] * w[r]
        v[t] = s
    _multiply(H, k, v, u)
    for t in range(k):
        z[active[t]] = w[t] + u[t]
    return steps


def _add(G, j, c, status, sign, active, H, u, v, k):
    """Append atom ``j`` to the active set and update ``H = G_AA⁻¹`` by its Schur complement.

    Refuses (``status[j] = −1``) an atom whose Schur complement
    ``G_jj − G_jA G_AA⁻¹ G_Aj`` shows it dependent on the active ones. Returns the new size.
    """
    for t in range(k):
        v[t] = G[active[t], j]
    _multiply(H, k, v, u)
    schur = G[j, j]
    for t in range(k):
        schur -= v[t] * u[t]
    if schur <= _DEPENDENT * G[j, j]:
        status[j] = -1
        return k
    inverse = 1.0 / schur
    for t in range(k):
        scaled = u[t] * inverse
        for r in range(k):
            H[t, r] += scaled * u[r]
        H[t, k] = -scaled
        H[k, t] = -scaled
    H[k, k] = inverse
    active[k] = j
    status[j] = 1
    sign[j] = 1.0 if c[j] > 0.0 else -1.0
    return k + 1


def _remove(p, z, status, sign, active, H, k):
    """Drop the ``p``-th active atom: move it last, then remove it from ``H`` by its Schur complement."""
    j = active[p]
    z[j] = 0.0
    status[j] = 0
    sign[j] = 0.0
    last = k - 1
    if p != last:
        active[p] = active[last]
        for r in range(k):
            H[p, r], H[last, r] = H[last, r], H[p, r]
        for r in range(k):
            H[r, p], H[r, last] = H[r, last], H[r, p]
    # (G_A'A')⁻¹ = H_A'A' − H_A'j H_jA' / H_jj for the remaining atoms A'.
    pivot = H[last, last]
    for t in range(last):
        scaled = H[t, last] / pivot
        for r in range(last):
            H[t, r] -= scaled * H[last, r]
    return last


def _multiply(H, k, x, out):
    """``out = H x`` for the leading ``k × k`` block of ``H``."""
    for t in range(k):
        s = 0.0
        for r in range(k):
            s += H[t, r] * x[r]
        out[t] = s


def _certify(G, b, const, lam, mu, z, grad):
    """Objective ``F(z)`` and duality gap of one column, as :meth:`eaelib.fista.L1Penalty.gap` computes them.

    ``const`` is the column's constant (so that ``f`` is a sum of squares); ``mu`` a lower bound on the
    smallest eigenvalue of ``G``. Returns ``(F, gap)``.
    """
    m = G.shape[0]
    for j in range(m):
        grad[j] = -b[j]
    for i in range(m):
        if z[i] != 0.0:
            zi = z[i]
            for j in range(m):
                grad[j] += zi * G[i, j]
    z_grad = 0.0
    b_z = 0.0
    l1 = 0.0
    grad_max = 0.0
    v_sq = 0.0
    for j in range(m):
        z_grad += z[j] * grad[j]
        b_z += b[j] * z[j]
        l1 += abs(z[j])
        grad_max = max(grad_max, abs(grad[j]))
        # The least-norm subgradient: ∇_j + λ sign(z_j) on the support, the excess of |∇_j| over λ off it.
        v = grad[j] + (lam if z[j] > 0.0 else -lam) if z[j] != 0.0 else max(abs(grad[j]) - lam, 0.0)
        v_sq += v * v
    f = 0.5 * z_grad - 0.5 * b_z + const  # ½zᵀGz − bᵀz + c
    s = lam / grad_max if grad_max > lam else 1.0
    gap = lam * l1 + s * z_grad + (1.0 - s) ** 2 * f
    if mu > 0.0:
        gap = min(gap, v_sq / (2.0 * mu))
    return f + lam * l1, max(gap, 0.0)


def _columns(G, Bt, const, lam, mu, Zt, steps, objective, gap, start, stop, max_steps):
    """Columns ``start..stop`` of the batch (rows of ``Bt`` and ``Zt``), with one workspace, each certified."""
    m = G.shape[0]
    status = np.empty(m, dtype=np.int8)
    sign = np.empty(m)
    active = np.empty(m, dtype=np.int64)
    H = np.empty((m, m))
    w = np.empty(m)
    u = np.empty(m)
    v = np.empty(m)
    a = np.empty(m)
    c = np.empty(m)
    for j in range(start, stop):
        steps[j] = _column(G, Bt[j], lam, Zt[j], status, sign, active, H, w, u, v, a, c, max_steps)
        objective[j], gap[j] = _certify(G, Bt[j], const[j], lam, mu, Zt[j], a)


if AVAILABLE:
    # nogil: the thread pool below runs chunks of columns side by side, from any thread (a Dask worker's too).
    _jit = numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
    _column = _jit(_column)
    _add = _jit(_add)
    _remove = _jit(_remove)
    _multiply = _jit(_multiply)
    _certify = _jit(_certify)
    _columns = _jit(_columns)


def lasso_gram(gram, B, lam, *, const=None, strong_convexity=0.0, max_steps=None, threads=None):
    """Exact solutions of ``min ½zᵀGz − bᵀz + c + λ‖z‖₁`` for every column ``b`` of ``B``, by the homotopy.

    Parameters
    ----------
    gram : array_like, shape (m, m)
        ``G``, symmetric positive semi-definite.
    B : array_like, shape (m, N)
        One linear term per column.
    lam : float
        ``λ ≥ 0``.
    const : array_like, shape (N,), optional
        The constant ``c`` of each column (0 by default), such that the smooth
        part is a sum of squares: it enters the objective and the duality gap.
    strong_convexity : float
        A lower bound ``μ ≥ 0`` on the smallest eigenvalue of ``G``, for the
        tighter gap bound of a strongly convex problem.
    max_steps : int, optional
        Most steps per column (by default ``10 m + 100``); a column stopped
        there is only approximate (its step count is negative, and its gap says how far).
    threads : int, optional
        Threads to run columns on; by default the BLAS's limit
        (threadpoolctl) or the number of processors.

    Returns
    -------
    HomotopyResult
        Codes ``Z`` (m × N, float64), and per column the ``steps`` taken,
        the ``objective`` ``F(z)`` and the duality ``gap`` (as
        :meth:`eaelib.fista.L1Penalty.gap`), computed in float64.
    """
    if not AVAILABLE:
        raise ImportError(UNAVAILABLE_REASON)
    G = np.ascontiguousarray(gram, dtype=np.float64)
    Bt = np.ascontiguousarray(np.asarray(B, dtype=np.float64).T)
    m, N = G.shape[0], Bt.shape[0]
    if G.shape != (m, m) or Bt.shape[1] != m:
        raise ValueError(f"gram must be (m, m) and B (m, N) with the same m, got {G.shape} and {np.shape(B)}")
    lam = float(lam)
    if not lam >= 0:
        raise ValueError(f"lam must be ≥ 0, got {lam}")
    const = np.zeros(N) if const is None else np.ascontiguousarray(const, dtype=np.float64)
    mu = float(strong_convexity)
    max_steps = 10 * m + 100 if max_steps is None else int(max_steps)
    Zt = np.zeros((N, m))
    steps = np.zeros(N, dtype=np.int64)
    objective, gap = np.zeros(N), np.zeros(N)
    threads = default_threads() if threads is None else max(1, int(threads))
    arrays = (G, Bt, const, lam, mu, Zt, steps, objective, gap)
    tasks = [(a, min(a + _COLUMNS_PER_TASK, N)) for a in range(0, N, _COLUMNS_PER_TASK)]
    if threads == 1 or len(tasks) <= 1:
        _columns(*arrays, 0, N, max_steps)
    else:
        list(_pool(threads).map(lambda span: _columns(*arrays, span[0], span[1], max_steps), tasks))
    return HomotopyResult(Zt.T, steps, objective, gap)


@dataclass
class HomotopyResult:
    """Outcome of :func:`lasso_gram`: codes ``Z`` (m × N) and, per column, ``steps``, ``objective`` and ``gap``.

    Parameters
    ----------
    Z : numpy.ndarray, shape (m, N)
        The codes.
    steps : numpy.ndarray of int, shape (N,)
        Homotopy steps (breakpoints of the path) of each column.
    objective : numpy.ndarray, shape (N,)
        Each column's objective at its codes.
    gap : numpy.ndarray, shape (N,)
        Each column's duality gap, which certifies its codes.
    """

    Z: np.ndarray
    steps: np.ndarray
    objective: np.ndarray
    gap: np.ndarray


def default_threads():
    """Threads for :func:`lasso_gram`: the BLAS's current limit where threadpoolctl tells it, else the CPUs.

    So that ``threadpoolctl.threadpool_limits(1)`` (or ``OPENBLAS_NUM_THREADS=1``) makes every part of a
    fit use one core, as the benchmarks require.
    """
    controller = _controller()
    if controller is not None:
        counts = [lib.num_threads for lib in controller.select(user_api="blas").lib_controllers]
        if counts:
            return max(1, min(counts))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


_pools: dict = {}
_pools_lock = threading.Lock()


def _pool(threads):
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="eaelib-homotopy")
        return _pools[threads]
