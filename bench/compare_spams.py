"""Comparison 6: eaelib's batch and online learners against SPAMS, the field's reference.

SPAMS (Mairal et al.'s online dictionary learning, C++; the ``spams-bin``
wheel) minimizes ``½‖x − Dα‖² + λ₁‖α‖₁`` with ``‖d_k‖ ≤ 1``: with ``λ_e = 0``
and ``λ₁ = λ_s/λ_d`` that is eaelib's energy divided by ``λ_d``. SPAMS runs
``trainDL`` for 100, 300 and 3000 iterations of batches of 256 from eaelib's
``D0``, then ``lasso`` for the codes of all the samples; its time counts
both, and its energy is eaelib's energy of those codes and that dictionary.
eaelib's online learner (:func:`eaelib.online.learn_online`, batches of 256,
its energy known at every epoch's end from the certifying pass, whose time is
counted) and its batch learner (:func:`eaelib.learn`) then run from the same
``D0`` until they reach each SPAMS energy or give up.

Targets (issue "Online learning as fast as the fastest dictionary learner"):
reach the energy of SPAMS's 100 iterations in no more time than SPAMS
(ratio ≥ 1), and end no worse than SPAMS's 3000 iterations.
"""

from __future__ import annotations

import numpy as np

import eaelib
from eaelib.online import learn_online

from .measure import EnergyTrace, eaelib_time_to_energy, median_time, time_to_energy
from .report import Row

TARGET_RATIO = 1.0
BATCH_SIZE = 256


def spams_fit(workload, alpha, iterations, threads):
    """SPAMS ``trainDL`` (``iterations`` batches of 256) from D0, then ``lasso``: ``(D, codes)``."""
    import spams

    _, D0, _ = workload.initial()
    X = np.asfortranarray(workload.X)
    D = spams.trainDL(
        X,
        D=np.asfortranarray(D0),
        lambda1=alpha,
        iter=iterations,
        batchsize=BATCH_SIZE,
        mode=2,
        numThreads=threads,
        verbose=False,
    )
    codes = spams.lasso(X, D=np.asfortranarray(D), lambda1=alpha, mode=2, numThreads=threads)
    return D, codes.toarray()


def spams_energy(workload, lambdas, D, codes):
    return eaelib.energy_terms(workload.X, codes, D, np.zeros(D.T.shape), **lambdas)["total"]


def online_time_to_energy(workload, lambdas, targets, *, max_epochs, time_budget):
    """eaelib's online learner from D0 until every target is reached (or the budget runs out)."""
    _, D0, E0 = workload.initial()
    trace = EnergyTrace(target=min(targets.values()), time_budget=time_budget).start()
    learn_online(
        workload.X,
        D0,
        E0,
        **lambdas,
        batch_size=BATCH_SIZE,
        max_epochs=max_epochs,
        rtol=0.0,
        random_state=workload.seed,
        callback=trace,
    )
    result = {"trace": {"times": trace.times, "energies": trace.energies}}
    for name, energy in targets.items():
        seconds = time_to_energy(trace.times, trace.energies, energy)
        result[name] = {"energy": energy, "seconds": seconds, "epochs": _count_to(trace.energies, energy)}
    return result


def _count_to(energies, energy):
    return next((k + 1 for k, e in enumerate(energies) if e <= energy), None)


def run_size(workload, config):
    """SPAMS at each iteration count, then eaelib (online and batch) to its energies."""
    lambdas = dict(workload.lambdas, lambda_e=0.0)
    alpha = lambdas["lambda_s"] / lambdas["lambda_d"]
    threads = config.threads or 1
    spams_runs = {}
    for iterations in config.spams_iterations:
        seconds, times, (D, codes) = median_time(
            lambda it=iterations: spams_fit(workload, alpha, it, threads), config.reference_repeats
        )
        spams_runs[str(iterations)] = {
            "iterations": iterations,
            "seconds": seconds,
            "runs": times,
            "energy": spams_energy(workload, lambdas, D, codes),
            "nonzero_fraction": float(np.mean(codes != 0)),
        }
    targets = {name: run["energy"] for name, run in spams_runs.items()}
    slowest = max(run["seconds"] for run in spams_runs.values())
    budget = config.eaelib_patience * slowest
    online = online_time_to_energy(workload, lambdas, targets, max_epochs=config.online_max_epochs, time_budget=budget)
    batch = eaelib_time_to_energy(
        workload, targets, lambdas=lambdas, repeats=1, max_outer=config.eaelib_max_outer, time_budget=budget
    )
    result = {"size": workload.size.label, "N": workload.N, "alpha": alpha, "spams": spams_runs}
    for name, learner in (("online", online), ("batch", batch)):
        trace = learner["trace"]
        result[name] = {
            "trace": trace,
            "best_energy": min(trace["energies"]) if trace["energies"] else None,
            "elapsed": trace["times"][-1] if trace["times"] else None,
            "reached": {key: learner[key] for key in targets},
        }
    return result


def rows(results):
    """Per size: online and batch against SPAMS's 100 iterations (time), and against its 3000 (energy)."""
    table = []
    for r in results:
        its = sorted(r["spams"], key=int)
        first, last = r["spams"][its[0]], r["spams"][its[-1]]
        for learner in ("online", "batch"):
            eae = r[learner]
            reached = eae["reached"][its[0]]["seconds"]
            ratio = first["seconds"] / (reached or eae["elapsed"] or float("inf"))
            reach = f"{reached:.3g} s" if reached is not None else f"not reached in {eae['elapsed']:.3g} s"
            table.append(
                Row(
                    comparison=f"6. {learner} vs SPAMS {its[0]} iter (time)",
                    size=f"{r['size']} ({r['N']})",
                    measured=f"SPAMS {first['seconds']:.3g} s to E = {first['energy']:.6g}; eaelib {reach}",
                    ratio=ratio,
                    ratio_is_upper_bound=reached is None,
                    target=f"≥ {TARGET_RATIO:g}×",
                    met=reached is not None and ratio >= TARGET_RATIO,
                )
            )
            best = eae["best_energy"]
            table.append(
                Row(
                    comparison=f"6. {learner} vs SPAMS {its[-1]} iter (energy)",
                    size=f"{r['size']} ({r['N']})",
                    measured=f"SPAMS E = {last['energy']:.6g} in {last['seconds']:.3g} s; eaelib best "
                    f"E = {best:.6g} in {eae['elapsed']:.3g} s",
                    ratio=last["energy"] / best if best else None,
                    ratio_is_upper_bound=False,
                    target="E ≤ SPAMS's",
                    met=best is not None and best <= last["energy"],
                )
            )
    return table
