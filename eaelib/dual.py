"""Exact solver of the D- and E-subproblems: Newton's method on their Lagrange dual.

Both subproblems are least squares in a matrix ``W`` whose columns must lie
in the unit ball::

    minimize  P(W) = λ/2 (tr(W G Wᵀ) − 2 tr(W Bᵀ) + c)   s.t.  ‖w_k‖₂ ≤ 1 for every column k

with ``G = ZZᵀ, B = XZᵀ, c = ‖X‖²`` for the dictionary (``W = D``) and
``G = XXᵀ, B = ZXᵀ, c = ‖Z‖²`` for the encoder (``W = E``). On image
patches ``G`` has condition numbers around 1e6, where gradient methods crawl.
The dual does not care: with one multiplier ``ν_k ≥ 0`` per column, the
Lagrangian is minimized by ``W(ν) = B (G + diag ν)⁻¹``, and the dual function
``φ(ν) = −λ/2 (tr(B (G + diag ν)⁻¹ Bᵀ) + Σ ν_k) + λc/2`` is concave and
smooth, of dimension the number of columns (Lee, Battle, Raina and Ng,
"Efficient sparse coding algorithms", NIPS 2007). Projected Newton steps on
it (Bertsekas, 1982) converge quadratically near the solution, each a
factorization of a matrix the size of ``G``: a handful from the last
multipliers, a few dozen at most from scratch on an ill-conditioned ``G``.
Each step pins at 0 the multipliers whose gradient points below 0 (within
``ε = min(1e-6 (1 + max ν), ‖ν − [ν + ∇φ]₊‖)``), solves the Newton system
``λ (W(ν)ᵀW(ν)) ∘ (G + diag ν)⁻¹ d = ∇φ`` on the others, and halves the step
from 1 until ``φ([ν + αd]₊) ≥ φ(ν) + 10⁻⁴⟨∇φ, [ν + αd]₊ − ν⟩`` (Armijo along
the projection arc).

The stop is a **duality gap**, ``P(W) − φ(ν) ≥ P(W) − min P`` at the feasible
point ``W = Π(W(ν))`` (the columns of ``W(ν)`` projected onto the ball), written
so that nothing cancels against ``c``: with ``Δ = W − W(ν)``,
``P(W) − φ(ν) = λ/2 tr(Δ G Δᵀ) − λ Σ ν_k ⟨δ_k, w_k(ν)⟩ + λ/2 Σ ν_k (1 − ‖w_k(ν)‖²)``,
the cost of the projection plus complementary slackness. The solver adds
``λ/2 tr(R H⁻¹ Rᵀ)`` with ``R = W(ν) H − B`` (zero up to the rounding of the
solve) and the ridge it may add to ``H``. All of it is computed in float64,
whatever the working precision: ``G`` is small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._array import get_namespace
from .fista import project_columns

Array = Any

# Rounding floor of the gap, in units of eps times the size of the dual objective's terms (documented under rtol).
_FLOOR = 64.0
_ARMIJO = 1e-4
_IDLE = 3  # Newton steps that change nothing beyond rounding before the solve stops ("stalled") ...
_IDLE_GAP = 1e-6  # ... once the gap is at most this fraction of the objective


@dataclass
class DualResult:
    """Outcome of :func:`solve_ball_least_squares`.

    The fields shared with :class:`~eaelib.fista.FistaResult` let either
    solver serve the same caller.

    Parameters
    ----------
    x : array
        The solution: the last iterate, or ``W0`` if that is no worse (Newton's
        iterates are not monotone in ``P``).
    multipliers : array, shape (q,)
        The final ``ν`` (one per column; 0 for unused ones), to warm-start the next solve.
    n_iter : int
        Newton iterations run.
    converged : bool
        Whether ``status`` is ``"converged"``.
    certificate, objective : list of float
        Entry 0: the duality gap (an upper bound on ``P − min P``) and the
        objective ``P`` of the warm start ``W0``; entry ``k ≥ 1``: those of the
        feasible point of the ``k``-th dual iterate (the first at the starting
        multipliers).
    status : {"converged", "max_iter", "stalled"}
        Why it stopped; ``"stalled"``: while the gap is above tolerance, no
        Newton step improves the dual beyond rounding, or, with the gap below
        1e-6 of the objective, three in a row change neither the dual beyond
        rounding nor the gap by a tenth (the gap left is rounding in its own
        terms, as on ill-conditioned ``G``).
    criterion : str
        Always ``"gap"``.
    """

    x: Array
    multipliers: Array
    n_iter: int
    converged: bool
    certificate: list = field(default_factory=list)
    objective: list = field(default_factory=list)
    status: str = "max_iter"
    criterion: str = "gap"

    @property
    def smooth(self):
        """The objective (the whole of it is smooth; the constraint adds nothing when met)."""
        return self.objective

    @property
    def penalty(self):
        """Zeros, one per entry of ``objective``: the constraint adds nothing when met."""
        return [0.0] * len(self.objective)


def solve_ball_least_squares(G, B, c, W0, *, weight=1.0, multipliers=None, rtol=1e-9, max_iter=200):
    """Minimize ``weight/2 (tr(W G Wᵀ) − 2 tr(W Bᵀ) + c)`` over ``W`` with columns in the unit ball.

    Parameters
    ----------
    G : array, shape (q, q)
        Symmetric positive semi-definite.
    B : array, shape (p, q)
        The linear term: ``XZᵀ`` for the dictionary, ``ZXᵀ`` for the encoder.
    c : float
        The constant that makes ``P`` the energy term (``‖X‖²`` or ``‖Z‖²``).
    W0 : array, shape (p, q)
        Feasible start. Columns that ``P`` does not depend on (``G_kk = 0``,
        an atom no code uses) keep their value.
    weight : float
        ``λ_d`` or ``λ_e``.
    multipliers : array, shape (q,), optional
        Starting multipliers ``ν`` (from the previous solve); zeros by default.
    rtol : float
        Stop when the duality gap is at most ``rtol`` times ``P``, or at the
        rounding floor of float64 arithmetic,
        ``λ/2 (64 eps (|tr(W(ν) Bᵀ)| + Σ ν_k + c) + ridge · q)``: the rounding of
        the dual objective's terms, with a factor 64 tuned so that a gap the
        arithmetic cannot resolve stops the solve instead of repeating steps.
    max_iter : int
        Most Newton iterations. From a cold start far from the optimum the
        first ones are damped (about 20 on Barbara's first D-step); warm
        started from the last multipliers, a handful.

    Returns
    -------
    DualResult
        ``x`` in the dtype and namespace of ``W0``, every column of norm ≤ 1.
    """
    xp = get_namespace(G, B, W0)
    dtype, device = W0.dtype, W0.device
    q = G.shape[0]
    G64, B64 = xp.astype(G, xp.float64), xp.astype(B, xp.float64)
    used = xp.linalg.diagonal(G64) > 0
    (index,) = xp.nonzero(used)
    n_used = int(index.shape[0])
    mu_all = xp.zeros((q,), dtype=xp.float64, device=device)
    if n_used == 0:  # P does not depend on W
        value = 0.5 * weight * float(c)
        return DualResult(W0, mu_all, 0, True, certificate=[0.0], objective=[value], status="converged")
    Gu = xp.take(xp.take(G64, index, axis=0), index, axis=1)
    Bu = xp.take(B64, index, axis=1)
    mu = xp.zeros((n_used,), dtype=xp.float64, device=device)
    if multipliers is not None:
        mu = xp.clip(xp.take(xp.astype(multipliers, xp.float64), index), 0.0, None)
    problem = _Dual(xp, Gu, Bu, float(c), weight)
    state = problem.evaluate(mu)
    restarted = False
    if multipliers is None and state.gap > max(rtol * abs(state.objective), state.floor):
        # A cold start at ν = 0 settles the case where no constraint is active (W(0) = B G⁻¹ is
        # feasible) in one factorization; otherwise Newton starts from the safe side, see restart().
        state, restarted = problem.restart(state), True
    # Entry 0 is the warm start W0: its objective and gap follow from the first dual point's by the
    # change P(W0) − P(W), computed without cancellation against c.
    W0u = xp.take(xp.astype(W0, xp.float64), index, axis=1)
    start = state.objective + problem.change(state.W, W0u)
    result = DualResult(
        W0,
        mu_all,
        1,
        False,
        certificate=[state.gap + start - state.objective, state.gap],
        objective=[start, state.objective],
    )
    idle = 0
    for k in range(2, max_iter + 1):
        if state.gap <= max(rtol * abs(state.objective), state.floor):
            break
        new = problem.newton_step(state)
        if new is None and not restarted:  # stuck: once, start again from the safe side
            new, restarted = problem.restart(state), True
        if new is None:  # no step improves φ beyond rounding
            break
        # Steps that move neither φ beyond its rounding nor a gap already small: the multipliers are
        # optimal to working precision and what is left of the gap is rounding in its terms (seen at
        # 2e-9 of the objective). Newton would repeat such steps until max_iter, each after a long
        # search. (A large gap with φ at a standstill is another matter: a singular G, where the
        # steps crawl, then restart; there the rule does not apply.)
        small = new.gap <= _IDLE_GAP * abs(new.objective)
        still = new.phi - state.phi <= state.floor and new.gap >= 0.9 * state.gap
        idle = idle + 1 if small and still else 0
        if idle >= _IDLE:
            break
        state = new
        result.certificate.append(state.gap)
        result.objective.append(state.objective)
        result.n_iter = k
    if state.gap <= max(rtol * abs(state.objective), state.floor):
        result.status = "converged"
    elif result.n_iter < max_iter:
        result.status = "stalled"
    result.converged = result.status == "converged"
    if problem.change(W0u, state.W) < 0:
        W = _scatter_columns(xp, xp.astype(W0, xp.float64), state.W, index, used)
        # Casting to a narrower type can push a unit column a rounding error outside: project again.
        result.x = project_columns(xp.astype(W, dtype))
    # else W0 is at least as good as the dual's point (it was optimal already): keep it.
    result.multipliers = _scatter(xp, mu_all, state.mu, used)
    return result


@dataclass
class _State:
    """The dual at one ``ν``: the Lagrangian's minimizer, the feasible point and the certificate."""

    mu: Array
    H_inv: Array
    W_free: Array  # B (G + diag ν)⁻¹, not necessarily feasible
    W: Array  # its columns projected into the ball
    phi: float  # the dual objective without its constant λc/2
    gap: float
    objective: float
    floor: float
    ridge: float


class _Dual:
    def __init__(self, xp, G, B, c, weight):
        self.xp, self.G, self.B, self.c, self.weight = xp, G, B, c, weight
        self.q = G.shape[0]
        self.eye = xp.eye(self.q, dtype=xp.float64, device=G.device)
        self.trace = float(xp.sum(xp.linalg.diagonal(G)))
        # A singular G (fewer samples than columns, dependent codes) makes the dual's supremum
        # unattained at the boundary ν = 0, where Newton crawls. A ridge of 1e-10 of its largest
        # eigenvalue makes it attained; the certificate counts the ridge (at most ridge·q/2·λ).
        values = xp.linalg.eigvalsh(G) if self.q else xp.zeros((1,), dtype=G.dtype, device=G.device)
        high = float(xp.max(values))
        self.base_ridge = 1e-10 * high if float(xp.min(values)) <= 1e-10 * high else 0.0

    def factor(self, mu):
        """``(H⁻¹, W(ν), ridge)`` for ``H = G + diag ν + ridge I`` and ``W(ν) = B H⁻¹``.

        The ridge is 0 unless ``G + diag ν`` is singular to working precision
        (fewer samples than columns, an unused direction): then the smallest
        ridge of the form ``1e-14 · 100^k · tr G`` whose factorization and solve
        succeed. The certificate accounts for it.
        """
        xp = self.xp
        H0 = self.G + mu * self.eye
        ridge = self.base_ridge
        while True:
            H = H0 + ridge * self.eye if ridge else H0
            try:
                factor = xp.linalg.cholesky(H)
                # A pivot at rounding level passes Cholesky but fails the solve: ask for a margin.
                pivots = xp.linalg.diagonal(factor)
                ok = bool(xp.all(xp.isfinite(factor))) and float(xp.min(pivots)) ** 2 > 1e-15 * max(
                    float(xp.max(xp.linalg.diagonal(H))), 1e-300
                )
                if ok:
                    # Solve rather than multiply by H⁻¹: with cond(H) ~ 1e6 the explicit inverse loses
                    # digits that the solve keeps (H⁻¹ only serves the Newton direction and a
                    # rounding-level term of the certificate).
                    W = xp.linalg.solve(H, self.B.mT).mT
                    H_inv = xp.linalg.inv(H)
                    ok = bool(xp.all(xp.isfinite(W))) and bool(xp.all(xp.isfinite(H_inv)))
            except Exception:  # NumPy raises on a matrix that is not positive definite; CuPy returns NaN
                ok = False
            if ok:
                return 0.5 * (H_inv + H_inv.mT), W, ridge
            ridge = max(ridge * 100.0, 1e-14 * max(self.trace, 1e-300))
        # (The loop ends: a ridge beyond the largest eigenvalue makes H positive definite.)

    def restart(self, state):
        """The dual evaluated at large multipliers: ``max(ν̂, tr G / 10q)``, per column.

        ``ν̂_k = −⟨(WG − B)_k, w_k⟩`` is the multiplier that best explains the
        gradient at the projected point ``W``. Near ``ν = 0`` a singular ``G``
        makes the dual behave like ``1/ν``, not like a quadratic, and Newton's
        steps crawl; from large multipliers ``G + diag ν`` is well conditioned
        and Newton lowers the multipliers of inactive columns to 0 on its own.
        """
        xp, W = self.xp, state.W
        estimate = xp.clip(-xp.sum((W @ self.G - self.B) * W, axis=0), 0.0, None)
        return self.evaluate(xp.maximum(estimate, 0.1 * self.trace / max(self.q, 1)))

    def change(self, W0, W1):
        """``P(W1) − P(W0) = λ⟨W1 − W0, ½(W1 + W0)G − B⟩``, free of the cancellation against ``c``."""
        xp = self.xp
        return self.weight * float(xp.sum((W1 - W0) * (0.5 * (W1 + W0) @ self.G - self.B)))

    def evaluate(self, mu):
        xp, G, B, lam = self.xp, self.G, self.B, self.weight
        H_inv, W_free, ridge = self.factor(mu)
        sq = xp.sum(W_free * W_free, axis=0)
        W_B = float(xp.sum(W_free * B))
        sum_mu = float(xp.sum(mu))
        phi = -0.5 * lam * (W_B + sum_mu)
        # The certificate (module docstring), with the projection of infeasible columns and the ridge.
        R = W_free @ G + mu * W_free + ridge * W_free - B
        W = project_columns(W_free)
        delta = W - W_free
        gap = float(xp.sum((R @ H_inv) * R)) + float(xp.sum(mu * (1.0 - sq)))
        grad = R - mu * W_free - ridge * W_free  # ∇ of ½tr(WGWᵀ) − tr(WBᵀ) at W_free
        gap += 2.0 * float(xp.sum(grad * delta)) + float(xp.sum((delta @ G) * delta))
        gap += ridge * (self.q - float(xp.sum(sq)))
        gap = max(0.5 * lam * gap, 0.0)
        objective = 0.5 * lam * (self.c + float(xp.sum((W @ G) * W)) - 2.0 * float(xp.sum(W * B)))
        # What float64 cannot resolve: the rounding of the dual objective's terms, and the ridge.
        floor = 0.5 * lam * (_FLOOR * 2.2e-16 * (abs(W_B) + sum_mu + self.c) + ridge * self.q)
        return _State(mu, H_inv, W_free, W, phi, gap, objective, floor, ridge)

    def newton_step(self, state):
        """One projected Newton step on ``φ`` with an Armijo search; None if none improves ``φ``."""
        xp = self.xp
        mu, W = state.mu, state.W_free
        grad = 0.5 * self.weight * (xp.sum(W * W, axis=0) - 1.0)  # ∇φ
        # −∇²φ = λ (WᵀW) ∘ H⁻¹, positive semi-definite.
        hess = self.weight * ((W.mT @ W) * state.H_inv)
        # Bertsekas: multipliers at (or within ε of) 0 whose gradient pushes them below 0 are fixed at 0.
        eps = min(1e-6 * (1.0 + float(xp.max(mu))), float(xp.linalg.vector_norm(mu - xp.clip(mu + grad, 0.0, None))))
        binding = (mu <= eps) & (grad < 0)
        free = ~binding
        (free_index,) = xp.nonzero(free)
        direction = xp.where(binding, -mu, 0.0)
        if int(free_index.shape[0]):
            h = xp.take(xp.take(hess, free_index, axis=0), free_index, axis=1)
            g = xp.take(grad, free_index)
            damping = 1e-12 * (float(xp.max(xp.linalg.diagonal(h))) + 1e-300)
            d = xp.linalg.solve(h + damping * xp.eye(h.shape[0], dtype=h.dtype, device=h.device), g[:, None])[:, 0]
            direction = _scatter(xp, direction, d, free)
        if not bool(xp.any(direction != 0)):  # the multipliers are optimal: nothing left to gain
            return None
        alpha = 1.0
        while alpha > 1e-10:
            trial = xp.clip(mu + alpha * direction, 0.0, None)
            new = self.evaluate(trial)
            gain = float(xp.sum(grad * (trial - mu)))
            if new.phi >= state.phi + _ARMIJO * gain:
                return new
            alpha *= 0.5
        return None


def _scatter(xp, base, values, mask):
    """``base`` with the entries where ``mask`` is True replaced by ``values`` (in order)."""
    position = xp.cumulative_sum(xp.astype(mask, xp.int64)) - 1
    position = xp.clip(position, 0, max(int(values.shape[0]) - 1, 0))
    return xp.where(mask, xp.take(values, position), base) if values.shape[0] else base


def _scatter_columns(xp, base, values, index, mask):
    """``base`` with the columns where ``mask`` is True replaced by the columns of ``values``."""
    position = xp.clip(xp.cumulative_sum(xp.astype(mask, xp.int64)) - 1, 0, max(int(index.shape[0]) - 1, 0))
    return xp.where(mask, xp.take(values, position, axis=1), base)
