"""The package itself: lazy public names, its import graph, its version, and copies of part of it."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import eaelib

PACKAGE = Path(eaelib.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))
# The core, as the README's "Copying eaelib" describes it: the solver, the subproblems, learning, the
# estimator and the patches, with the private helpers they use (and image.py, for extract_patches' as_gray).
CORE = (
    "__init__",
    "_version",
    "_array",
    "_base",
    "_validation",
    "_optional",
    "_parameters",
    "_progress",
    "fista",
    "dual",
    "subproblems",
    "learning",
)
CORE += ("estimator", "sources")
CORE += ("patches", "image")


def _imports(module):
    """The eaelib modules that ``module`` imports anywhere in its source (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            found |= {"__init__"} if node.module is None else {node.module.split(".")[0]}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "eaelib":
            found.add(node.module.split(".")[1] if "." in node.module else "__init__")
        elif isinstance(node, ast.Import):
            found |= {"__init__" for alias in node.names if alias.name.split(".")[0] == "eaelib"}
    return found


def test_no_module_imports_the_package_root():
    upward = [m for m in MODULES if m not in ("__init__", "__main__") and "__init__" in _imports(m)]
    assert not upward, f"modules importing eaelib itself (an upward import): {upward}"


def test_the_import_graph_has_no_cycle():
    graph = {m: _imports(m) - {"__init__"} for m in MODULES}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        if state.get(module) == "open":
            raise AssertionError(f"import cycle: {' → '.join([*path, module])}")
        state[module] = "open"
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        state[module] = "done"

    for module in MODULES:
        visit(module, [])


def test_public_names_are_imported_on_first_use():
    code = textwrap.dedent(
        """
        import sys
        import eaelib
        before = sorted(m for m in sys.modules if m.startswith("eaelib"))
        assert before == ["eaelib", "eaelib._array", "eaelib._version", "eaelib.fista"], before
        assert "eaelib.graph" not in sys.modules and "eaelib.analysis" not in sys.modules
        eaelib.EnergyAutoEncoder  # the estimator and what it needs, not the rest
        assert "eaelib.estimator" in sys.modules and "eaelib.analysis" not in sys.modules
        assert "eaelib.graph" not in sys.modules and "eaelib.model_io" not in sys.modules
        import eaelib.learning
        assert callable(eaelib.fista), eaelib.fista  # the function, not the module of the same name
        print("OK")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr


@pytest.mark.parametrize("name", eaelib.__all__)
def test_every_public_name_resolves(name):
    value = getattr(eaelib, name)
    assert value is not None
    assert name in dir(eaelib)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        eaelib.nothing_here  # noqa: B018


def test_the_version_comes_from_the_package_metadata():
    assert eaelib.__version__ == metadata.version("eaelib")


def _site_packages():
    return sysconfig.get_paths()["purelib"]


def _copy(modules, target):
    package = target / "eaelib"
    package.mkdir(parents=True)
    for module in modules:
        shutil.copy2(PACKAGE / f"{module}.py", package / f"{module}.py")
    return package


CORE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [TMPDIR, SITE]  # the copy first; site-packages without its .pth files (no editable eaelib)
    import numpy as np
    import eaelib
    from eaelib import EnergyAutoEncoder, extract_patches

    assert eaelib.__file__.startswith(TMPDIR), eaelib.__file__
    assert eaelib.__version__ == "0+unknown", eaelib.__version__  # no metadata: a copied folder
    image = np.random.default_rng(0).random((48, 48))
    X = extract_patches(image, 8, 4)
    model = EnergyAutoEncoder(n_atoms=12, max_outer=3, random_state=0).fit(X)
    history = model.objective_history_
    assert all(b <= a for a, b in zip(history, history[1:])), history
    assert model.transform(X, method="encoder").shape == (X.shape[0], 12)
    try:
        eaelib.psnr
    except ImportError as exc:  # analysis.py was not copied: the message says so
        assert "analysis.py" in str(exc), exc
    else:
        raise AssertionError("eaelib.psnr resolved without analysis.py")
    print("OK")
    """
)


@pytest.mark.slow
def test_the_core_copied_alone_fits(tmp_path):
    _copy(CORE, tmp_path)
    code = f"TMPDIR, SITE = {str(tmp_path)!r}, {_site_packages()!r}\n{CORE_SCRIPT}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr[-3000:]


def test_a_copied_folder_finds_barbara(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "eaelib", ignore=shutil.ignore_patterns("__pycache__"))
    code = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {_site_packages()!r}]
        import eaelib
        assert eaelib.__file__.startswith({str(tmp_path)!r}), eaelib.__file__
        assert eaelib.load_image("barbara").shape == (574, 702)
        print("OK")
        """
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr[-3000:]


def test_submodules_are_attributes_as_after_an_eager_import():
    code = "import eaelib\nprint(eaelib.image.DATA_DIR.name, eaelib.plot.__name__, eaelib.original.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.split() == ["data", "eaelib.plot", "eaelib.original"], result.stderr


# The layers of eaelib, bottom first: a module imports from its own layer and the layers below, never above.
LAYERS = (
    ("foundation", {"_version", "_base", "_optional", "_array", "_dask_worker"}),
    ("checks", {"_validation", "_progress"}),
    ("images and data", {"image", "patches", "synthetic", "graph", "analysis", "denoising"}),
    ("solvers", {"homotopy", "active_set", "coordinate", "fista", "dual"}),
    ("subproblems", {"subproblems"}),
    ("learning", {"learning", "original", "encoders"}),
    ("online and sources", {"online", "streams", "distributed", "sources"}),
    ("estimator", {"_parameters", "estimator"}),
    ("files and figures", {"model_io", "plot"}),
    ("command line", {"_cli", "_cli_learn", "__main__"}),
)
# Where a function may be long: the numerical algorithms, written out step by step.
SOLVERS = {"homotopy", "active_set", "coordinate", "fista", "dual", "subproblems", "learning", "online"}
MAX_FUNCTION_LINES = 80


def test_every_module_imports_only_its_layer_and_the_layers_below():
    rank = {module: k for k, (_, modules) in enumerate(LAYERS) for module in modules}
    unplaced = sorted(set(MODULES) - set(rank) - {"__init__"})
    assert not unplaced, f"modules in no layer (place them in LAYERS): {unplaced}"
    upward = [
        f"{module} ({LAYERS[rank[module]][0]}) imports {target} ({LAYERS[rank[target]][0]})"
        for module in MODULES
        if module != "__init__"
        for target in sorted(_imports(module) - {"__init__"})
        if rank[target] > rank[module]
    ]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_no_function_outside_the_solvers_is_longer_than_80_lines():
    long = []
    for module in sorted(set(MODULES) - SOLVERS):
        tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # docstring included
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them): {long}"


def test_no_private_name_is_imported_from_another_module():
    private = []
    for module in MODULES:
        for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
                private += [f"{module} imports {node.module}.{name}" for name in names]
    assert not private, private
