"""The package as users get it: the wheel, installed in a fresh environment, and what Binder installs.

The wheel test builds eaelib's wheel from a copy of the sources, installs it into a new virtual
environment outside the repository (its dependencies come from this environment's site-packages,
added by a ``.pth`` file, so that nothing is downloaded and this checkout's editable eaelib stays
out of sight), and there runs the README's "Use" example and ``eaelib learn barbara``.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def readme_python_block(heading):
    """The first ```python block under the README's ``## heading``."""
    section = README.split(f"\n## {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "eaelib", source / "eaelib", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist]
    result = subprocess.run([*command, source], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecated" not in result.stdout + result.stderr  # e.g. project.license as a TOML table
    (path,) = dist.glob("eaelib-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_its_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_text = next(archive.read(n) for n in names if n.endswith(".dist-info/METADATA")).decode()
    assert {"eaelib/__init__.py", "eaelib/estimator.py", "eaelib/data/barbara.png", "eaelib/data/README.md"} <= names
    assert not any(name.startswith(("tests/", "book/", "bench/")) for name in names)
    assert "License-Expression: BSD-3-Clause" in metadata_text


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory):
    """A new virtual environment, outside the repository, with the wheel installed."""
    home = tmp_path_factory.mktemp("fresh")
    venv.create(home / "venv", with_pip=False)
    python = home / "venv" / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    paths = json.loads(
        subprocess.check_output([python, "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"])
    )
    # The dependencies: this environment's site-packages as a plain path (its .pth files, among them the
    # editable eaelib's, are not processed from there).
    Path(paths["purelib"], "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel]
    result = subprocess.run(install, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return home, python, Path(paths["scripts"])


def run(command, cwd):
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False, timeout=600)


@pytest.mark.slow
def test_the_readme_example_runs_from_the_installed_wheel(fresh_env):
    home, python, _ = fresh_env
    check = (
        "import eaelib, pathlib\n"
        f"assert pathlib.Path(eaelib.__file__).is_relative_to({str(home)!r}), eaelib.__file__\n"
        f"assert eaelib.__version__ == {metadata.version('eaelib')!r}, eaelib.__version__\n"
    )
    example = readme_python_block("Use")
    result = run([python, "-c", check + example + "\nprint('OK', model.n_iter_)"], cwd=home)
    assert result.returncode == 0 and result.stdout.startswith("OK"), result.stderr[-3000:]


@pytest.mark.slow
def test_eaelib_learn_barbara_runs_from_the_installed_wheel(fresh_env):
    home, _, scripts = fresh_env
    eaelib_script = scripts / "eaelib"
    version = run([eaelib_script, "--version"], cwd=home)
    assert version.returncode == 0 and version.stdout.strip() == f"eaelib {metadata.version('eaelib')}"
    result = run([eaelib_script, "learn", "barbara", "--out", "out", "--max-outer", "2", "--json"], cwd=home)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["image_shape"] == [574, 702] and summary["n_samples"] == 2726 and summary["n_iter"] == 2
    assert all((home / "out" / name).is_file() for name in summary["files"])


# -- what Binder installs: requirements.txt holds what the chapters import -------------------------------


def _chapter_imports():
    """``(required, optional)`` top-level modules the chapters import; optional: inside a ``try``."""
    required, optional = set(), set()
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            lines = [line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))]
            tree = ast.parse("\n".join(lines))
            guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for b in t.body for n in ast.walk(b)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                (optional if id(node) in guarded else required).update(n.split(".")[0] for n in names)
    return required - set(sys.stdlib_module_names), optional


def _eaelib_requires():
    """eaelib's requirements as its metadata lists them, from this checkout's pyproject.toml.

    Not from the installed eaelib's metadata, which is as old as its last install; the other
    distributions' requirements are read from this environment.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requires = list(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        for text in requirements:
            requirement = Requirement(text)
            marker = f"({requirement.marker}) and " if requirement.marker else ""
            requirement.marker = None
            requires.append(f'{requirement}; {marker}extra == "{extra}"')
    return requires


def _requires(name):
    return _eaelib_requires() if name == "eaelib" else metadata.requires(name) or []


def _requirements_closure(requirement_lines):
    """Every distribution (normalized name) that installing ``requirement_lines`` brings in."""
    pending = []
    for line in requirement_lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("-e "):
            line = line[3:].strip()
        if line.startswith("."):  # this repository: eaelib with the extras named
            extras = re.search(r"\[(.*)\]", line)
            pending.append(Requirement(f"eaelib[{extras.group(1)}]" if extras else "eaelib"))
        elif line:
            pending.append(Requirement(line))
    seen = set()
    while pending:
        requirement = pending.pop()
        key = (re.sub(r"[-_.]+", "-", requirement.name).lower(), tuple(sorted(requirement.extras)))
        if key in seen:
            continue
        seen.add(key)
        for text in _requires(requirement.name):
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                pending.append(dependency)
    return {name for name, _ in seen}


def test_requirements_txt_installs_what_every_chapter_imports():
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    installed = _requirements_closure(lines)
    providers = metadata.packages_distributions()
    required, optional = _chapter_imports()
    assert {"eaelib", "numpy", "matplotlib", "pyunlocbox", "array_api_strict"} <= required
    assert "cupy" in optional  # chapter 6 tries it, and runs without it
    missing = {
        module: providers.get(module)
        for module in required
        if not {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [module])} & installed
    }
    assert not missing, f"chapters import modules that requirements.txt does not install: {missing}"


def test_requirements_txt_leaves_out_the_tooling():
    # What requirements.txt asks for, through eaelib's extras; not what those packages need in turn
    # (pyunlocbox 0.6 itself requires pytest-cov, and so pytest).
    asked, pending = set(), ["eaelib[notebooks]"]
    assert "-e .[notebooks]" in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    while pending:
        requirement = Requirement(pending.pop())
        for text in _eaelib_requires():
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in requirement.extras):
                if dependency.name == "eaelib":
                    pending.append(text.split(";")[0])
                else:
                    asked.add(dependency.name)
    tooling = {"pytest", "hypothesis", "ruff", "nbval", "selenium", "jupyter-book", "setuptools", "pyyaml", "myst-nb"}
    assert {"numpy", "matplotlib", "pyunlocbox", "array-api-strict", "dask", "distributed", "ipykernel"} <= asked
    assert not tooling & asked, tooling & asked


def test_requirements_txt_brings_no_book_building():
    # The chapters glue their numbers with myst_nb only where it is installed (the book's build):
    # what Binder installs, dependencies included, holds neither myst-nb nor what it would bring.
    installed = _requirements_closure((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert {"eaelib", "numpy", "pyunlocbox", "dask", "distributed", "ipykernel", "ipython"} <= installed
    building = {"myst-nb", "jupyter-book", "sphinx", "jupyter-cache", "sqlalchemy", "nbclient", "docutils"}
    assert not building & installed, building & installed
