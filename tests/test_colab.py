"""Every chapter runs on Google Colab after its first cell, and the repository is named once.

The first code cell of each chapter (hidden in the book) installs, on Colab only, eaelib from a clone of
the repository with its ``full`` extra, and the packages in its ``EXTRAS`` dictionary (module -> what pip
installs). These tests parse every chapter's imports and check that each one is installed there: by the
standard library, by the Jupyter kernel itself (IPython), by ``eaelib[full]`` (pyproject.toml), or by
``EXTRAS``. The repository's URL is written once, as ``repository.url`` in _config.yml (the launch
buttons use it); the Colab cells and the README must name the same one.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [p.relative_to(BOOK).as_posix() for p in NOTEBOOKS]
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
KERNEL = {"IPython"}  # every Jupyter kernel, Colab's included, runs on IPython
# Handlers that make an import optional: the chapter runs without the module (e.g. CuPy, GPU only).
OPTIONAL = {"ImportError", "ModuleNotFoundError", "Exception"}


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement):
    return _canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def _code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _parse(cell):
    # IPython's magics and shell escapes are not Python.
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in "".join(cell["source"]).splitlines()]
    return ast.parse("\n".join(lines))


def _required_imports(tree):
    """Top-level names of the modules imported in ``tree``, less those imported under an optional guard."""
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = set()
            for handler in node.handlers:
                types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                caught |= {t.id for t in types if isinstance(t, ast.Name)}
            if caught & OPTIONAL:
                optional |= {id(n) for statement in node.body for n in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def _setup(path):
    """The first code cell's ``REPOSITORY`` and ``EXTRAS``, and its tags."""
    cell = _code_cells(path)[0]
    values = {}
    for node in _parse(cell).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in ("REPOSITORY", "EXTRAS"):
            values[target.id] = ast.literal_eval(node.value)
    return values, cell.get("metadata", {}).get("tags", []), "".join(cell["source"])


def _modules_of(distributions):
    """The importable top-level modules that the given distributions provide, in this environment."""
    wanted = {_canonical(d) for d in distributions}
    return {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if wanted & {_canonical(owner) for owner in owners}
    }


def _eaelib_full():
    """What ``pip install eaelib[full]`` brings: the requirements of the installed eaelib's metadata."""
    requirements = importlib.metadata.requires("eaelib") or []
    full = [r for r in requirements if ";" not in r or re.search(r"extra\s*==\s*['\"]full['\"]", r)]
    assert full, "eaelib's metadata lists no requirements: install it (make setup)"
    return _modules_of(_requirement_name(r.split(";")[0]) for r in full)


def test_there_are_chapters():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_cell_installs_on_colab(path):
    values, tags, source = _setup(path)
    assert values.get("REPOSITORY") == REPOSITORY, f"{path.name}: REPOSITORY is not _config.yml's {REPOSITORY}"
    assert isinstance(values.get("EXTRAS"), dict), f"{path.name}: the first cell defines no EXTRAS dictionary"
    assert "hide-input" in tags, f"{path.name}: the set-up cell should be hidden in the book"
    assert "google.colab" in source and "pip" in source and "EXTRAS" in source.split("EXTRAS =", 1)[1]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_imports_are_installed_by_its_first_cell(path):
    values, _, _ = _setup(path)
    extras = values["EXTRAS"]
    imported = set()
    for cell in _code_cells(path)[1:]:
        imported |= set(_required_imports(_parse(cell)))
    available = set(sys.stdlib_module_names) | KERNEL | {"eaelib"} | _eaelib_full()
    missing = sorted(imported - available - set(extras))
    assert not missing, f"{path.name} imports {missing}: add them to EXTRAS in its first cell"
    unused = sorted(set(extras) - imported)
    assert not unused, f"{path.name}: EXTRAS installs {unused}, which the chapter does not import"
    redundant = sorted(set(extras) & available)
    assert not redundant, f"{path.name}: {redundant} come with eaelib[full] already"
    for module, requirement in extras.items():
        provided = _modules_of([_requirement_name(requirement)])
        assert module in provided, f"{path.name}: pip install {requirement!r} does not provide {module!r}"


def test_the_readme_names_the_repository_of_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert REPOSITORY in readme, f"README.md should name the repository, {REPOSITORY}, as _config.yml does"
    assert "repository.url" in readme, "README.md should say where the repository's URL is set"
