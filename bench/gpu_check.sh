#!/usr/bin/env bash
# Comparison 8 of bench/README.md, for a machine with a GPU, in under five minutes:
#   1. the CuPy tests (pytest tests/test_backends.py -k cupy);
#   2. python -m bench.gpu_check: the scaling comparison and the stride-1 fit on CuPy against NumPy,
#      written to bench/results/gpu_check.json.
# Installs nothing from the internet: CuPy must be importable already, or its wheels (and those of its
# dependencies) must lie in .whl/ to be installed offline. Without CuPy or a GPU it says so and exits 0.
# Usage: bash bench/gpu_check.sh [options of python -m bench.gpu_check]; PYTHON=... picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if ! "$PYTHON" -c "import cupy" 2>/dev/null && compgen -G ".whl/cupy*.whl" >/dev/null; then
    echo "gpu_check: installing CuPy from the wheels in .whl/ (offline)"
    "$PYTHON" -m pip install --quiet --no-index --find-links .whl .whl/cupy*.whl || true
fi

if ! reason=$("$PYTHON" - 2>&1 <<'PY'
import sys
try:
    import cupy
    count = cupy.cuda.runtime.getDeviceCount()
except Exception as exc:  # ImportError, CUDARuntimeError
    sys.exit(f"{type(exc).__name__}: {exc}")
if count < 1:
    sys.exit("no CUDA device")
PY
); then
    echo "gpu_check: skipped: no usable CuPy and GPU here (${reason##*$'\n'}); nothing to check."
    exit 0
fi

echo "gpu_check: CuPy tests"
tests_rc=0
timeout 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_backends.py -k cupy || tests_rc=$?

echo "gpu_check: scaling and the stride-1 fit, CuPy against NumPy"
timeout 270 "$PYTHON" -m bench.gpu_check --tests-rc "$tests_rc" "$@"
exit "$tests_rc"
