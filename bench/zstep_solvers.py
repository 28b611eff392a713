"""Where the homotopy beats FISTA on the Z-step: the measurement behind ``code_solver="auto"``.

``python -m bench.zstep_solvers [--threads 1]`` fits the default model on Barbara's 2726 patches for 15
outer iterations (a learned dictionary, as the late Z-steps of a fit see it), then for λ_e from 0 to 30
solves the Z-step of all the patches with :func:`eaelib.homotopy.lasso_gram` (exact) and with FISTA
(``momentum="strong"``, to a duality gap of 1e-4 and 1e-6 of each sample's energy, from zero codes and
from the encoder's prediction EX), and prints the times, iterations and non-zeros per code with the
condition number κ = L/μ of each problem. ``eaelib.subproblems._LARS_CONDITION`` (κ ≥ 200 takes the
homotopy) is read off this table.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import eaelib
from eaelib.homotopy import lasso_gram
from eaelib.subproblems import code_problem


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    X = eaelib.extract_patches(eaelib.load_image("barbara"), 12).T.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stopped at max_outer on purpose
        model = eaelib.EnergyAutoEncoder(random_state=0, max_outer=15).fit(X.T)
    D, E = model.D_, model.E_
    lasso_gram(np.eye(3), np.ones((3, 2)), 0.1)  # compile first
    print("lambda_e  kappa     nnz   homotopy  FISTA 1e-4 (0 / EX)        FISTA 1e-6 (0 / EX)")
    for lambda_e in (0.0, 0.3, 1.0, 3.0, 10.0, 30.0):
        f, g = code_problem(X, D, E, lambda_d=10.0, lambda_e=lambda_e, lambda_s=1.0)
        start = time.perf_counter()
        exact = lasso_gram(f.gram, f.b, 1.0, const=f.c, strong_convexity=f.strong_convexity)
        seconds = time.perf_counter() - start
        kappa = f.lipschitz / f.strong_convexity if f.strong_convexity > 0 else float("inf")
        cells = []
        for rtol in (1e-4, 1e-6):
            for Z0 in (np.zeros_like(exact.Z), E @ X):
                if lambda_e == 0 and Z0 is not None and np.any(Z0):
                    cells.append("   -   ")  # E is not learned without the encoder term
                    continue
                start = time.perf_counter()
                res = eaelib.fista(f, g, Z0, rtol=rtol, max_iter=20000, momentum="strong")
                cells.append(f"{time.perf_counter() - start:6.2f} s {res.n_iter:5d} it")
        nnz = np.mean(np.sum(exact.Z != 0, axis=0))
        print(f"{lambda_e:8g}  {kappa:8.3g}  {nnz:5.1f}  {seconds:6.2f} s  {' '.join(cells)}")


if __name__ == "__main__":
    main()
