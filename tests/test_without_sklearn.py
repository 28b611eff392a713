"""The library's tests without scikit-learn: eaelib works without it (eaelib._base), and so must its tests.

A fresh interpreter in which ``import sklearn`` fails (as tests/test_without_numba.py hides numba) runs
``MODULES`` under pytest. They must pass, and the only tests skipped must be single tests whose reason
names scikit-learn: a module skipped as a whole (``pytest.importorskip("sklearn")`` at module level)
would hide dozens of tests that never needed it.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Test modules of the code that runs without scikit-learn, and which compare with it in a few tests only.
MODULES = [
    "tests/test_estimator.py",
    "tests/test_online.py",
    "tests/test_robustness.py",
    "tests/test_dual.py",
    "tests/test_denoising.py",
    "tests/test_subproblems_synthetic.py",
    "tests/test_homotopy.py",
]

RUNNER = textwrap.dedent(
    """
    import json
    import sys

    sys.modules["sklearn"] = None  # import sklearn (and any sklearn.*) now raises ImportError

    import pytest


    class Record:
        # Every skip, with its reason; collection skips are whole modules.
        def __init__(self):
            self.module_skips, self.skipped, self.passed = [], [], []

        def pytest_collectreport(self, report):
            if report.skipped:
                self.module_skips.append([report.nodeid, str(report.longrepr)])

        def pytest_runtest_logreport(self, report):
            if report.skipped:
                self.skipped.append([report.nodeid, report.longrepr[2]])
            elif report.when == "call" and report.passed:
                self.passed.append(report.nodeid)


    out, args = sys.argv[1], sys.argv[2:]
    record = Record()
    status = pytest.main(args, plugins=[record])

    import eaelib._base

    with open(out, "w") as file:
        json.dump(dict(status=int(status), have_sklearn=eaelib._base.HAVE_SKLEARN, **vars(record)), file)
    """
)


def names_scikit_learn(reason):
    return "scikit-learn" in reason or "sklearn" in reason


@pytest.mark.slow
def test_the_library_tests_pass_without_scikit_learn_and_skip_only_what_needs_it(tmp_path):
    out = tmp_path / "record.json"
    args = [*MODULES, "-m", "not slow", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["have_sklearn"] is False  # the stand-ins of eaelib._base were in use
    assert record["status"] == 0, result.stdout[-6000:]
    assert record["module_skips"] == []
    wrong = [(test, reason) for test, reason in record["skipped"] if not names_scikit_learn(reason)]
    assert not wrong, wrong
    # Every module ran tests, and far more passed than skipped.
    for module in MODULES:
        assert any(test.startswith(module + "::") for test in record["passed"]), module
    assert len(record["passed"]) > 10 * len(record["skipped"]), record["skipped"]
