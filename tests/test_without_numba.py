"""eaelib without numba: FISTA and the array-API coordinate pass take over, with the same results.

numba is a dependency of ``pip install eaelib``, but a copied ``eaelib/`` (coursework) or a platform
without numba wheels must still work. Each test runs a fresh interpreter in which ``import numba``
fails, and compares what it computes with this process (where numba imports).
"""

import itertools
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import eaelib
from eaelib import homotopy
from eaelib.coordinate import _pass_array_api, coordinate_pass

HIDE_NUMBA = "import sys; sys.modules['numba'] = None\n"


def run_without_numba(code):
    """Run ``code`` where numba cannot be imported; it prints one JSON document, returned parsed."""
    out = subprocess.run(
        [sys.executable, "-c", HIDE_NUMBA + textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBLEM = """
import json, numpy as np, eaelib
from eaelib.synthetic import sparse_dataset
X = sparse_dataset(16, 24, 300, random_state=0, noise=0.01)[0].T
"""


def test_without_numba_auto_is_fista_and_lars_says_what_to_install():
    result = run_without_numba(
        """
        import json, numpy as np
        from eaelib import homotopy
        from eaelib.subproblems import choose_code_solver, code_problem
        rng = np.random.default_rng(0)
        D = rng.standard_normal((8, 12)); X = rng.standard_normal((8, 5))
        f, g = code_problem(X, D, D.T, lambda_d=1.0, lambda_e=0.0, lambda_s=0.1)
        try:
            choose_code_solver(f, g, "lars")
            message = None
        except ValueError as exc:
            message = str(exc)
        print(json.dumps({"available": homotopy.AVAILABLE, "auto": choose_code_solver(f, g), "lars": message}))
        """
    )
    assert result["available"] is False
    assert result["auto"] == "fista"
    assert "numba" in result["lars"] and "pip install" in result["lars"]


@pytest.mark.slow
@pytest.mark.skipif(not homotopy.AVAILABLE, reason="compares with the numba path")
def test_the_same_codes_and_a_fit_of_the_same_quality_without_numba():
    namespace = {}
    exec(PROBLEM, namespace)
    X = namespace["X"]
    options = dict(n_atoms=24, lambda_e=0.0, lambda_d=10.0, random_state=0, max_outer=300)
    model = eaelib.EnergyAutoEncoder(**options).fit(X)
    without = run_without_numba(
        PROBLEM
        + f"""
model = eaelib.EnergyAutoEncoder(**{options!r}).fit(X)
D, E = np.array({model.D_.tolist()!r}), np.array({model.E_.tolist()!r})
codes = eaelib.solve_codes(X[:20].T, D, E, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0, rtol=1e-9, max_iter=100000)
print(json.dumps({{"energy": model.objective_history_[-1], "converged": bool(model.converged_),
                  "solver": codes.solver, "codes": codes.x.tolist()}}))
"""
    )
    assert without["solver"] == "fista"
    # The same model's codes by each path. λ_e = 0 and m > n: the minimizer need not be unique; its
    # energy is, and the homotopy's is the exact one.
    exact = eaelib.solve_codes(X[:20].T, model.D_, model.E_, lambda_d=10.0, lambda_e=0.0, lambda_s=1.0, rtol=1e-9)
    assert exact.solver == "lars"
    e = lambda Z: model.energy(X[:20], np.asarray(Z).T)["total"]
    assert e(exact.x) <= e(without["codes"]) * (1 + 1e-12)
    assert e(without["codes"]) <= e(exact.x) * (1 + 1e-6)
    # Both fits certified to rtol = 1e-3: stationary points of the same quality (not the same one).
    assert model.converged_ and without["converged"]
    assert model.objective_history_[-1] == pytest.approx(without["energy"], rel=0.02)


def test_the_coordinate_pass_is_the_same_with_and_without_numba():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((12, 200)) * (rng.random((12, 200)) < 0.3)
    X = rng.standard_normal((8, 200))
    A, B = Z @ Z.T, X @ Z.T
    A[3, :] = A[:, 3] = 0.0  # an unused atom: left as it is
    D0 = eaelib.project_columns(rng.standard_normal((8, 12)))
    one = coordinate_pass(D0, A, B)
    np.testing.assert_allclose(one, _pass_array_api(np, D0, A, B), atol=1e-12)
    np.testing.assert_array_equal(one[:, 3], D0[:, 3])
    assert np.all(np.linalg.norm(one, axis=0) <= 1 + 1e-12)

    def objective(D):
        return 0.5 * np.trace(D @ A @ D.T) - np.trace(D @ B.T)

    # Each pass lowers the objective, and passes converge to the exact D-step (the dual solver's).
    D, values = D0, [objective(D0)]
    for _ in range(300):
        D = coordinate_pass(D, A, B)
        values.append(objective(D))
    assert all(b <= a + 1e-12 * abs(a) for a, b in itertools.pairwise(values))
    exact = eaelib.solve_ball_least_squares(A, B, 0.0, D0, weight=1.0, rtol=1e-12).x
    assert objective(D) == pytest.approx(objective(exact), rel=1e-9)
