"""Every chapter runs on Google Colab after its first cell, and the repository is named once.

The first code cell of each chapter (hidden in the book) installs, on Colab only, eaelib from a clone of
the repository with its ``full`` extra and the extras (pyproject.toml) named in its ``EXTRAS``
dictionary (module -> extra); elsewhere it checks that they are installed and says how to install them
if not. These tests parse every chapter's imports and check that each one is installed there: by the
standard library, by the Jupyter kernel itself (IPython), or by the extras the cell installs; that the
cell is the same in every chapter but for its ``EXTRAS``; and that the ``notebooks`` extra (what Binder
installs) is the union of what the cells install. They run the cell itself in a fresh virtual
environment, as on Colab: with a repository that cannot be cloned it must say so and what to do, and
with one that can, eaelib must import after it. The repository's URL is written once, as
``repository.url`` in _config.yml (the launch buttons use it); the Colab cells and the README must name
the same one.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [p.relative_to(BOOK).as_posix() for p in NOTEBOOKS]
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
# The project's extras as the repository defines them (what a clone installs), not as the metadata of
# an eaelib installed earlier has them.
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
KERNEL = {"IPython"}  # every Jupyter kernel, Colab's included, runs on IPython
# Handlers that make an import optional: the chapter runs without the module (e.g. CuPy, GPU only).
OPTIONAL = {"ImportError", "ModuleNotFoundError", "Exception"}
# The chapter whose first cell the installation tests run: the one on Dask, whose unpinned packages
# once installed a dask and a distributed that do not go together.
DASK_CHAPTER = BOOK / "09_learning_from_many_images.ipynb"


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
    """The first code cell's ``REPOSITORY`` and ``EXTRAS``, its tags and its source."""
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


def _extras_of(extras):
    """The extras of eaelib that ``eaelib[extras]`` installs, those it names in turn included."""
    seen, pending = set(), [_canonical(e) for e in extras]
    defined = {_canonical(name): requirements for name, requirements in PROJECT["optional-dependencies"].items()}
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        assert extra in defined, f"pyproject.toml defines no extra {extra!r}"
        seen.add(extra)
        for requirement in defined[extra]:
            named = re.fullmatch(r"eaelib\[(.*)\]", requirement.strip())
            pending += [_canonical(e) for e in named.group(1).split(",")] if named else []
    return seen, defined


def _installed_by(extras):
    """The distributions (normalized names) that ``pip install eaelib[extras]`` asks for directly."""
    seen, defined = _extras_of(extras)
    requirements = [*PROJECT["dependencies"], *(r for extra in seen for r in defined[extra])]
    return {_requirement_name(r) for r in requirements} - {"eaelib"}


def test_there_are_chapters():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_cell_installs_on_colab(path):
    values, tags, source = _setup(path)
    assert values.get("REPOSITORY") == REPOSITORY, f"{path.name}: REPOSITORY is not _config.yml's {REPOSITORY}"
    assert isinstance(values.get("EXTRAS"), dict), f"{path.name}: the first cell defines no EXTRAS dictionary"
    assert "hide-input" in tags, f"{path.name}: the set-up cell should be hidden in the book"
    assert "google.colab" in source and "pip" in source and "EXTRAS" in source.split("EXTRAS =", 1)[1]
    _extras_of(values["EXTRAS"].values())  # each one an extra that pyproject.toml defines


def test_first_cells_differ_only_in_their_extras():
    # One cell to read, fix and test: what differs between chapters is the EXTRAS line alone.
    def template(path):
        return re.sub(r"(?m)^EXTRAS = .*$", "EXTRAS = ...", _setup(path)[2])

    reference = template(NOTEBOOKS[0])
    differ = [path.name for path in NOTEBOOKS if template(path) != reference]
    assert not differ, f"first cells differ from {NOTEBOOKS[0].name}'s beyond EXTRAS: {differ}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_imports_are_installed_by_its_first_cell(path):
    values, _, _ = _setup(path)
    extras = values["EXTRAS"]
    imported = set()
    for cell in _code_cells(path)[1:]:
        imported |= set(_required_imports(_parse(cell)))
    full = _modules_of(_installed_by(["full"]))
    available = set(sys.stdlib_module_names) | KERNEL | {"eaelib"} | full
    missing = sorted(imported - available - set(extras))
    assert not missing, f"{path.name} imports {missing}: add them to EXTRAS in its first cell"
    unused = sorted(set(extras) - imported)
    assert not unused, f"{path.name}: EXTRAS installs {unused}, which the chapter does not import"
    redundant = sorted(set(extras) & available)
    assert not redundant, f"{path.name}: {redundant} come with eaelib[full] already"
    for module, extra in extras.items():
        provided = _modules_of(_installed_by([extra]))
        assert module in provided, f"{path.name}: pip install 'eaelib[{extra}]' does not provide {module!r}"


def test_the_notebooks_extra_is_what_the_first_cells_install():
    # Binder installs eaelib[notebooks] (requirements.txt); Colab, what each chapter's first cell names.
    named = {"full"} | {extra for path in NOTEBOOKS for extra in _setup(path)[0]["EXTRAS"].values()}
    notebooks = _extras_of(["notebooks"])[0] - {"notebooks"}
    assert notebooks == _extras_of(named)[0], f"notebooks installs the extras {notebooks}, the chapters {named}"


def test_the_readme_names_the_repository_of_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert REPOSITORY in readme, f"README.md should name the repository, {REPOSITORY}, as _config.yml does"
    assert "repository.url" in readme, "README.md should say where the repository's URL is set"


# -- the first cell, run as on Colab in a fresh environment ----------------------------------------------


@pytest.fixture
def fresh_python(tmp_path):
    """A fresh virtual environment's Python that sees this environment's packages but not its eaelib.

    Its site-packages names this environment's as a plain path in a ``.pth`` file: the dependencies
    are found there without any download (pip itself too), while the ``.pth`` files of that directory,
    among them the one of the editable eaelib installed there, are not processed.
    """
    venv.create(tmp_path / "venv", with_pip=False)
    python = tmp_path / "venv" / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    purelib = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(purelib.decode().strip(), "dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return python


def _run_cell(python, repository, cwd, *, colab=True, then=""):
    """Run the Dask chapter's first cell, its REPOSITORY set to ``repository``, in ``python``."""
    source = _setup(DASK_CHAPTER)[2]
    assignment = f'REPOSITORY = "{REPOSITORY}"'
    assert source.count(assignment) == 1, f"{DASK_CHAPTER.name}: no single line {assignment}"
    source = source.replace(assignment, f"REPOSITORY = {repository!r}") + "\n" + then
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "COLAB_RELEASE_TAG")}
    # pip reads its options from the environment, as the cell's pip inherits them: install from what is
    # installed already (no index), and build eaelib with the setuptools found there, not one downloaded
    # into an isolated build environment (PIP_NO_BUILD_ISOLATION=0 turns --no-build-isolation on).
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(PIP_CONFIG_FILE=os.devnull, GIT_TERMINAL_PROMPT="0")
    if colab:
        env["COLAB_RELEASE_TAG"] = "release-colab-test"  # what Colab's runtime sets
    cwd.mkdir(exist_ok=True)
    command = [python, "-c", source]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)


def _eaelib_is_missing(python, cwd):
    return subprocess.run([python, "-c", "import eaelib"], cwd=cwd, capture_output=True, check=False).returncode != 0


def _repository_copy(directory):
    """A git repository at ``directory`` holding what installing eaelib reads of this checkout."""
    directory.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, directory / name)
    shutil.copytree(ROOT / "eaelib", directory / "eaelib", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", directory, "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for arguments in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "eaelib"]):
        subprocess.run([*git, *arguments], check=True, capture_output=True)
    return directory


def test_outside_colab_the_first_cell_says_how_to_install(fresh_python, tmp_path):
    tmp_path = tmp_path.resolve()  # as the cell's os.path.abspath sees it
    content = tmp_path / "content"
    assert _eaelib_is_missing(fresh_python, content.parent)
    result = _run_cell(fresh_python, REPOSITORY, content, colab=False)
    assert result.returncode != 0 and "ModuleNotFoundError: This chapter needs eaelib," in result.stderr
    line = shlex.join([str(fresh_python), "-m", "pip", "install", f"eaelib[full,dask] @ git+{REPOSITORY}"])
    assert line in result.stderr, result.stderr  # the line to run, for this kernel's Python
    assert "make book" in result.stderr and not (content / "energy-autoencoder").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="the cell clones with git")
def test_on_colab_an_unreachable_repository_is_explained(fresh_python, tmp_path):
    tmp_path = tmp_path.resolve()  # as the cell's os.path.abspath sees it
    unreachable = (tmp_path / "nowhere" / "energy-autoencoder").as_uri()
    content = tmp_path / "content"
    result = _run_cell(fresh_python, unreachable, content)
    assert result.returncode != 0
    assert "CalledProcessError" not in result.stderr, result.stderr
    message = result.stderr.split("RuntimeError: ", 1)[-1]
    clone = content / "energy-autoencoder"
    assert message.startswith(f"git clone --quiet --depth 1 {unreachable} {clone}\nfailed: fatal: "), message
    advice = f"set REPOSITORY above to the repository's address, or upload a copy of the repository to {clone}"
    assert advice in " ".join(message.split()), message
    assert _eaelib_is_missing(fresh_python, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="the cell clones with git")
def test_on_colab_the_first_cell_installs_eaelib_from_the_repository(fresh_python, tmp_path):
    tmp_path = tmp_path.resolve()  # as the cell's os.path.abspath sees it
    repository = _repository_copy(tmp_path / "remote" / "energy-autoencoder").as_uri()
    content = tmp_path / "content"
    clone = content / "energy-autoencoder"
    assert _eaelib_is_missing(fresh_python, tmp_path)
    # In the same process (a notebook's kernel), eaelib imports right after the cell.
    then = "import eaelib\nprint('eaelib from', eaelib.__file__)"
    result = _run_cell(fresh_python, repository, content, then=then)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"eaelib from {clone / 'eaelib' / '__init__.py'}" in result.stdout, result.stdout
    # In a new process (the kernel restarted), from the editable install; the cell then does nothing.
    check = [fresh_python, "-c", "import eaelib; print(eaelib.__file__)"]
    installed = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert installed.stdout.strip() == str(clone / "eaelib" / "__init__.py"), installed.stdout + installed.stderr
    again = _run_cell(fresh_python, repository, content)
    assert again.returncode == 0 and not again.stdout and not again.stderr, again.stdout + again.stderr
