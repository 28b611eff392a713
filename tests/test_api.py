"""The API reference (book/api.md) is complete, and every docstring on it passes numpydoc's validation.

What this enforces:

* every name of ``eaelib.__all__`` is documented on the page by an autodoc directive (``autofunction``,
  ``autoclass``, ``autoexception``), and every public submodule of ``__all__`` by at least one of its names;
  a name the page documents without a module is one of ``__all__``; every name the page documents, in
  ``eaelib`` or in a submodule, exists; every name of an ``autosummary`` table has its directive on the page;
* a class documented with ``:members:`` lists all its public methods (properties may be left to the
  class's Attributes section);
* numpydoc's validation (``numpydoc.validate.validate``) finds none of the errors enforced below in the
  docstring of: every name of ``__all__``, the public methods and properties of its classes, and every
  name the page documents from a submodule (and the members it lists). Among others: a Parameters section
  that documents every parameter of the signature, in order, each with a type and a description; a Returns
  (or Yields) section, with descriptions, where the code returns (or yields) something; a one-line summary
  in the imperative that starts with a capital and ends with a period; sections in numpydoc's order,
  with valid underlines.

The book is built with ``--warningiserror``, so what Sphinx itself rejects (a bad section underline, an
unknown directive) fails ``make book``; these tests catch the gaps Sphinx does not see.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

# A test dependency (pyproject.toml's test extra), imported outright: a skip would hide failing docstrings.
from numpydoc.validate import validate

import eaelib

API_PAGE = Path(__file__).resolve().parents[1] / "book" / "api.md"

# numpydoc's checks that are not enforced, and why:
# GL01, GL02: the summary starts on the line of the opening quotes, eaelib's style (and the formatter's).
# ES01: an extended summary is optional: many functions say all they need in the summary and sections.
# SA01: "See Also" sections are optional: the text cross-references what is related where it matters.
# EX01: examples are optional: the book's chapters are the worked examples of the API.
# Unlike scikit-learn, RT02 (a single return value gives its type, not a name) and SS03 (the summary ends
# with a period) are enforced: every docstring already keeps them, and napoleon renders either way.
IGNORED = {"GL01", "GL02", "ES01", "SA01", "EX01"}

_DIRECTIVE = re.compile(r"^\.\. (auto\w+):: (\S+)\s*$")
_MEMBERS = re.compile(r"^\s+:members: (.+)$")
_CURRENT = re.compile(r"^\.\. currentmodule:: (\S+)\s*$")


def _rst_blocks(text):
    """The contents of the page's ```{eval-rst} fences, in order."""
    return re.findall(r"^```\{eval-rst\}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def parse_api_page(text):
    """What the page documents: ``(directives, autosummary)``.

    ``directives`` maps each fully qualified name an ``auto*`` directive documents to ``(directive,
    members)``, members being the names of its ``:members:`` option (empty if none); ``autosummary`` lists
    the fully qualified names of the autosummary tables. Unqualified names are in the current module.
    """
    directives, autosummary = {}, []
    module = ""
    for block in _rst_blocks(text):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if match := _CURRENT.match(line):
                module = match.group(1)
            elif line.startswith(".. autosummary::"):
                i += 1
                while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                    entry = lines[i].strip()
                    if entry and not entry.startswith(":"):
                        autosummary.append(_qualified(module, entry))
                    i += 1
                continue
            elif match := _DIRECTIVE.match(line):
                kind, target = match.groups()
                members = []
                while i + 1 < len(lines) and lines[i + 1].startswith(" "):
                    i += 1
                    if option := _MEMBERS.match(lines[i]):
                        members = [m.strip() for m in option.group(1).split(",")]
                name = target if kind == "automodule" else _qualified(module, target)
                if name in directives:
                    raise AssertionError(f"{name} is documented twice on {API_PAGE.name}")
                directives[name] = (kind, members)
            i += 1
    return directives, autosummary


def _qualified(module, name):
    return name if name.startswith("eaelib.") or not module else f"{module}.{name}"


def _resolve(qualified):
    """The object that ``eaelib.a.b`` names: the longest importable module, then attributes."""
    parts = qualified.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(qualified)


DIRECTIVES, AUTOSUMMARY = parse_api_page(API_PAGE.read_text(encoding="utf-8"))
PUBLIC = {name: getattr(eaelib, name) for name in eaelib.__all__}
SUBMODULES = sorted(name for name, obj in PUBLIC.items() if inspect.ismodule(obj))


def _public_members(cls, properties=True):
    """The public methods (and properties) that ``cls`` itself defines, in source order."""
    kinds = (classmethod, staticmethod, property) if properties else (classmethod, staticmethod)
    return [
        name
        for name, value in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, kinds))
    ]


def _documented_objects():
    """Every name whose docstring the API reference is made of, fully qualified."""
    names = []
    for name, obj in PUBLIC.items():
        if inspect.ismodule(obj):
            continue
        names.append(f"eaelib.{name}")
        if inspect.isclass(obj):
            names += [f"eaelib.{name}.{member}" for member in _public_members(obj)]
    for target, (kind, members) in DIRECTIVES.items():
        names += [target] if kind != "automodule" else []  # a module's docstring is prose, not an API entry
        names += [f"{target}.{member}" for member in members]
    return sorted(set(names))


# -- the page is complete ------------------------------------------------------------------------------


def test_the_page_documents_names():
    # A parser that finds nothing would make every test below pass vacuously.
    assert len(DIRECTIVES) > 50 and len(AUTOSUMMARY) > 40, (len(DIRECTIVES), len(AUTOSUMMARY))


def test_every_public_name_is_documented():
    documented = {name for name, (kind, _) in DIRECTIVES.items() if kind != "automodule"}
    missing = [name for name in eaelib.__all__ if name not in SUBMODULES and f"eaelib.{name}" not in documented]
    assert not missing, f"names of eaelib.__all__ missing from {API_PAGE.name}: {missing}"


def test_every_public_submodule_is_documented():
    # By an automodule directive, or by a directive on one of its names.
    missing = [
        module
        for module in SUBMODULES
        if not any(name == f"eaelib.{module}" or name.startswith(f"eaelib.{module}.") for name in DIRECTIVES)
    ]
    assert not missing, f"public submodules (eaelib.__all__) with nothing on {API_PAGE.name}: {missing}"


def test_the_page_documents_only_public_names():
    # A function or class documented as eaelib.<name> must be exported; a name in a submodule must exist
    # there (next test). A module (automodule) need not be in __all__: every submodule is an attribute of
    # eaelib, imported on first use (tests/test_package.py), and eaelib.plot is documented without being in it.
    top_level = [name for name, (kind, _) in DIRECTIVES.items() if kind != "automodule"] + AUTOSUMMARY
    extra = sorted(
        name for name in top_level if name.count(".") == 1 and name.removeprefix("eaelib.") not in eaelib.__all__
    )
    assert not extra, f"names on {API_PAGE.name} that are not in eaelib.__all__: {extra}"
    private = sorted(name for name in [*DIRECTIVES, *AUTOSUMMARY] if any(p.startswith("_") for p in name.split(".")))
    assert not private, f"private names on {API_PAGE.name}: {private}"


def test_every_documented_name_exists():
    names = [*DIRECTIVES, *(f"{t}.{m}" for t, (_, members) in DIRECTIVES.items() for m in members)]
    unknown = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            unknown.append(name)
    assert not unknown, f"names on {API_PAGE.name} that eaelib does not define: {unknown}"


def test_every_autosummary_entry_has_its_directive():
    orphans = [name for name in AUTOSUMMARY if name not in DIRECTIVES]
    assert not orphans, f"autosummary entries of {API_PAGE.name} documented by no directive: {orphans}"


def test_classes_list_all_their_methods():
    incomplete = {}
    for name, (kind, members) in DIRECTIVES.items():
        obj = _resolve(name)
        if kind == "autoclass" and members and name.count(".") == 1:
            left_out = [m for m in _public_members(obj, properties=False) if m not in members]
            if left_out:
                incomplete[name] = left_out
    assert not incomplete, f"public methods left out of the :members: of {API_PAGE.name}: {incomplete}"


# -- every docstring on it passes numpydoc's validation -----------------------------------------------


def numpydoc_errors(name):
    """The enforced errors of ``name``'s docstring, as ``[(code, message), ...]``."""
    return [(code, message) for code, message in validate(name)["errors"] if code not in IGNORED]


def test_the_validation_covers_the_api():
    objects = _documented_objects()
    # Methods and the page's submodule names are included, not only the names of __all__.
    assert {"eaelib.EnergyAutoEncoder.fit", "eaelib.homotopy.lasso_gram", "eaelib.plot.plot_energy"} <= set(objects)
    assert len(objects) > len(eaelib.__all__) + 50, len(objects)


def test_every_docstring_passes_numpydoc_validation():
    failures = {}
    for name in _documented_objects():
        errors = numpydoc_errors(name)
        if errors:
            failures[name] = errors
    report = "\n".join(f"{name}: {code} {message}" for name, errors in failures.items() for code, message in errors)
    assert not failures, f"{len(failures)} docstrings fail numpydoc's validation:\n{report}"


# Modules whose examples need an optional package (a test skips them by name where it is missing).
EXAMPLE_NEEDS = {"denoising": "sklearn"}


@pytest.mark.parametrize("module", sorted(p.stem for p in Path(eaelib.__file__).parent.glob("*.py")))
def test_every_docstring_example_runs(module):
    """The examples are what a reader copies: each runs, shows what it says, and warns of nothing."""
    import doctest
    import importlib

    if module == "__main__":
        pytest.skip("the entry point's docstring is its usage, not an example")
    if module in EXAMPLE_NEEDS:
        pytest.importorskip(EXAMPLE_NEEDS[module], reason=f"eaelib.{module}'s examples use {EXAMPLE_NEEDS[module]}")
    failures, _ = doctest.testmod(importlib.import_module(f"eaelib.{module}"), optionflags=doctest.ELLIPSIS)
    assert failures == 0, f"eaelib.{module}: {failures} example(s) failed (doctest's report above)"
