"""Comparison 4: fast inference, ``transform(method="encoder")`` against ``method="exact"``.

One model is fitted on the smallest size (the estimator's defaults, from the
same seed). For every size, both transforms code all the patches: patches per
second each, the relative code error ``‖Z_enc − Z_exact‖ / ‖Z_exact‖``, and the
PSNR of the patches against ``inverse_transform`` of either code (data range 1).
The exact transform is the estimator's default solve (``rtol=0``: until no
sample's objective changes beyond rounding, at most ``10 · max_inner`` iterations).
"""

from __future__ import annotations

import numpy as np

import eaelib

from .measure import median_time
from .report import Row

TARGET_RATIO = 100.0


def fit_model(workload, config):
    """The estimator fitted on ``workload`` with the benchmark's weights and seed."""
    model = eaelib.EnergyAutoEncoder(
        workload.n_atoms, **workload.lambdas, max_outer=config.inference_fit_outer, random_state=workload.seed
    )
    return model.fit(workload.X.T)


def run_size(model, workload, config):
    """Both transforms of ``workload``'s patches with the fitted ``model``."""
    X = workload.X.T  # samples as rows, as the estimator takes them
    model.transform(X[:10], method="encoder")  # warm-up
    enc_seconds, enc_runs, Z_enc = median_time(lambda: model.transform(X, method="encoder"), config.repeats)
    exact_seconds, exact_runs, Z_exact = median_time(
        lambda: model.transform(X, method="exact"), config.reference_repeats
    )
    return {
        "size": workload.size.label,
        "N": workload.N,
        "encoder": {
            "seconds": enc_seconds,
            "runs": enc_runs,
            "patches_per_second": workload.N / enc_seconds,
            "psnr_db": eaelib.psnr(X, model.inverse_transform(Z_enc)),
        },
        "exact": {
            "seconds": exact_seconds,
            "runs": exact_runs,
            "patches_per_second": workload.N / exact_seconds,
            "psnr_db": eaelib.psnr(X, model.inverse_transform(Z_exact)),
        },
        "code_error_rel": float(np.linalg.norm(Z_enc - Z_exact) / np.linalg.norm(Z_exact)),
        "ratio": exact_seconds / enc_seconds,
    }


def rows(results):
    """Table rows: one per size."""
    return [
        Row(
            comparison="4. encoder vs exact transform",
            size=f"{r['size']} ({r['N']})",
            measured=(
                f"{r['encoder']['patches_per_second']:.3g} vs {r['exact']['patches_per_second']:.3g} patches/s; "
                f"code error {r['code_error_rel']:.2f}; PSNR {r['encoder']['psnr_db']:.1f} vs "
                f"{r['exact']['psnr_db']:.1f} dB"
            ),
            ratio=r["ratio"],
            target=f"≥ {TARGET_RATIO:g}×",
            met=r["ratio"] >= TARGET_RATIO,
        )
        for r in results
    ]
