"""The original notebook's solver, as a faithful and corrected reference.

The 2015 notebook "Energy auto-encoder: learn from an image" alternates three
pyunlocbox solves per outer iteration: forward-backward with FISTA acceleration,
step ``1/L`` with a Frobenius-norm bound ``L``, ``rtol=1e-3`` on the objective,
pyunlocbox's default ``maxit=200``, 20 outer iterations, and the energy after
each outer iteration evaluated by pyunlocbox's functions. This module keeps all
of that and only makes the corrections it needs to run and to be correct:

- the smooth terms are plain ``functions.func()`` objects with ``_eval`` and
  ``_grad`` that compute what ``functions.norm_l2`` computed (pyunlocbox 0.6's
  ``solve`` rejects a non-tight ``norm_l2`` over a 2-D variable);
- the constraint is on every *column* of ``D`` and ``E`` (the notebook's
  ``proj_b2`` projected the whole matrix onto the unit Frobenius ball);
- ``D`` and ``E`` are learned separately (the notebook overwrote ``E = Dᵀ``
  and ``D = Eᵀ`` between the solves);
- the patches are right (the notebook stored patch ``(x, y)`` in column
  ``x·y``): the data are :func:`eaelib.extract_patches`' patches, and the
  start ``(Z0, D0, E0)`` is eaelib's, so both methods solve the same problem
  from the same point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from pyunlocbox import acceleration, functions, solvers

#: The notebook's solver settings.
N_OUTER = 20
RTOL = 1e-3
MAXIT = 200  # pyunlocbox's default, which the notebook used


def smooth_function(value, gradient):
    """A pyunlocbox smooth function from its value and gradient callables."""
    f = functions.func()
    f._eval = value
    f._grad = gradient
    return f


def unit_columns_indicator():
    """Indicator of ``{x : ‖x[:, j]‖₂ ≤ 1 for every column j}``, as a pyunlocbox function."""
    g = functions.func()
    g._eval = lambda x: 0.0
    g._prox = lambda x, step: x / np.maximum(np.sqrt(np.sum(x * x, axis=0)), 1.0)
    return g


def code_smooth(X, D, E, lambda_d, lambda_e):
    """``λ_d/2‖X − DZ‖² + λ_e/2‖Z − EX‖²`` and its Lipschitz bound ``λ_e + λ_d‖DᵀD‖_F``."""
    EX = E @ X
    value = lambda Z: 0.5 * lambda_d * np.sum((D @ Z - X) ** 2) + 0.5 * lambda_e * np.sum((Z - EX) ** 2)
    gradient = lambda Z: lambda_d * (D.T @ (D @ Z - X)) + lambda_e * (Z - EX)
    return smooth_function(value, gradient), lambda_e + lambda_d * np.linalg.norm(D.T @ D)


def dictionary_smooth(X, Z, lambda_d):
    """``λ_d/2‖X − DZ‖²`` over ``D`` and its Lipschitz bound ``λ_d‖ZZᵀ‖_F``."""
    value = lambda D: 0.5 * lambda_d * np.sum((D @ Z - X) ** 2)
    gradient = lambda D: lambda_d * ((D @ Z - X) @ Z.T)
    return smooth_function(value, gradient), lambda_d * np.linalg.norm(Z @ Z.T)


def encoder_smooth(X, Z, lambda_e):
    """``λ_e/2‖Z − EX‖²`` over ``E`` and its Lipschitz bound ``λ_e‖XXᵀ‖_F``."""
    value = lambda E: 0.5 * lambda_e * np.sum((E @ X - Z) ** 2)
    gradient = lambda E: lambda_e * ((E @ X - Z) @ X.T)
    return smooth_function(value, gradient), lambda_e * np.linalg.norm(X @ X.T)


def forward_backward(smooth, non_smooth, x0, lipschitz, *, rtol=RTOL, maxit=MAXIT):
    """pyunlocbox's forward-backward with FISTA acceleration and step ``1/L``.

    Returns
    -------
    solution : numpy.ndarray
    n_iter : int
    """
    step = 1.0 / lipschitz if lipschitz > 0 else 1.0  # L = 0: f is constant, any step is exact
    solver = solvers.forward_backward(step=step, accel=acceleration.fista())
    ret = solvers.solve([smooth, non_smooth], x0, solver, rtol=rtol, maxit=maxit, verbosity="NONE")
    return ret["sol"], ret["niter"]


@dataclass
class OriginalResult:
    """Outcome of :func:`learn_original`.

    ``times[k]`` and ``energies[k]`` are the seconds since the start and the
    energy after outer iteration ``k`` (``k = 0``: the start, at time 0).
    ``inner_iterations[k - 1]`` holds the pyunlocbox iterations of the Z, D
    and E solves of outer iteration ``k``.
    """

    Z: np.ndarray
    D: np.ndarray
    E: np.ndarray
    times: list = field(default_factory=list)
    energies: list = field(default_factory=list)
    inner_iterations: list = field(default_factory=list)
    stopped_by_budget: bool = False

    @property
    def n_outer(self):
        """Outer iterations performed."""
        return len(self.energies) - 1


def learn_original(
    X, Z0, D0, E0, *, lambda_d, lambda_e, lambda_s, n_outer=N_OUTER, rtol=RTOL, maxit=MAXIT, time_budget=None
):
    """Alternate the notebook's three pyunlocbox solves for ``n_outer`` outer iterations.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, N)
        Patches as columns.
    Z0, D0, E0 : numpy.ndarray
        Starting codes (m × N), dictionary (n × m) and encoder (m × n).
    lambda_d, lambda_e, lambda_s : float
        Weights of the energy.
    n_outer : int
        Outer iterations (the notebook's ``N_outer = 20``).
    rtol, maxit : float, int
        pyunlocbox's stopping rule for every subproblem.
    time_budget : float, optional
        Stop after the first outer iteration that ends past this many seconds:
        the caller then compares at the energy reached so far.

    Returns
    -------
    OriginalResult
    """
    g_z = functions.norm_l1(lambda_=lambda_s)
    g_de = unit_columns_indicator()
    Z, D, E = Z0.copy(), D0.copy(), E0.copy()
    f_z, _ = code_smooth(X, D, E, lambda_d, lambda_e)
    f_d, _ = dictionary_smooth(X, Z, lambda_d)
    f_e, _ = encoder_smooth(X, Z, lambda_e)
    result = OriginalResult(Z, D, E, times=[0.0], energies=[g_z.eval(Z) + f_d.eval(D) + f_e.eval(E)])
    start = time.perf_counter()
    for _ in range(n_outer):
        f_z, lipschitz = code_smooth(X, D, E, lambda_d, lambda_e)
        Z, it_z = forward_backward(f_z, g_z, Z, lipschitz, rtol=rtol, maxit=maxit)
        f_d, lipschitz = dictionary_smooth(X, Z, lambda_d)
        D, it_d = forward_backward(f_d, g_de, D, lipschitz, rtol=rtol, maxit=maxit)
        f_e, lipschitz = encoder_smooth(X, Z, lambda_e)
        E, it_e = forward_backward(f_e, g_de, E, lipschitz, rtol=rtol, maxit=maxit)
        # The notebook's global objective: the indicators are 0 at the feasible D and E.
        energy = g_z.eval(Z) + f_d.eval(D) + f_e.eval(E)
        result.times.append(time.perf_counter() - start)
        result.energies.append(float(energy))
        result.inner_iterations.append((it_z, it_d, it_e))
        if time_budget is not None and result.times[-1] > time_budget:
            result.stopped_by_budget = len(result.energies) - 1 < n_outer
            break
    result.Z, result.D, result.E = Z, D, E
    return result
