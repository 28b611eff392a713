"""A fresh process's first online fits: what numba's compilation costs a user (comparison 6).

``python -m bench.jit_worker --stride S [--max-samples N] [--threads K]`` imports eaelib, then runs
:func:`eaelib.online.learn_online` twice from the workload's start (λ_e = 0, one epoch, the bench's
online batch size), timing each. The first fit pays for numba: compiling the homotopy and the
coordinate pass when its cache (``NUMBA_CACHE_DIR``) is empty, loading them when it is not; the
second fit is warm. The runner calls it twice with the same empty cache folder: cold, then cached.

The result is one JSON line on standard output.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stride", type=int, required=True)
    parser.add_argument("--max-samples", type=int)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    import eaelib
    from eaelib.online import learn_online

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    imported = time.perf_counter() - start
    from .workload import LAMBDAS, N_ATOMS, SEED, Size, load_patches

    X = load_patches(Size("jit", args.stride, args.max_samples))
    lambdas = dict(LAMBDAS, lambda_e=0.0)
    fits = []
    for _ in range(2):
        _, D0, E0 = eaelib.initialize(X, N_ATOMS, SEED, method=eaelib.EnergyAutoEncoder().init)
        start = time.perf_counter()
        result, _ = learn_online(X, D0, E0, **lambdas, batch_size=args.batch_size, max_epochs=1, random_state=SEED)
        fits.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "import_seconds": imported,
                "first_fit_seconds": fits[0],
                "warm_fit_seconds": fits[1],
                "energy": float(result.energy[-1]["total"]),
            }
        )
    )


if __name__ == "__main__":
    main()
