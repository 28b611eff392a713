# Entry points, each self-installing into .venv:
#   make book    execute every chapter (book/*.ipynb) and build the book into _build/html;
#                any Sphinx warning fails the build
#   make numbers write the chapters' quoted numbers and solutions in the form Colab and Jupyter show
#                (book/_ext/portable_chapters.py): every {glue:text} role and :::{dropdown} left becomes a
#                <span class="glue"> or <details> block, and every span shows the value of the last
#                make book's run; run it after make book whenever a chapter's numbers change;
#                NUMBERS_ARGS="--measured KEY" marks a value that changes from run to run
#   make learn   learn from the bundled Barbara image with the defaults, writing out/barbara
#   make test    lint, format check, the book (executing every chapter: a failing cell fails the
#                build), then every test: the library's and the built book opened in headless Chromium
#   make test-library   the library's tests alone (tests/, without the built book's)
#   make test-fast      the library's tests without those marked slow (pytest -m "not slow"): about a
#                       minute, for while you work; make test and make test-library still run every test
#   make explore        the library's tests with fresh hypothesis examples (see tests/conftest.py)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# --all: re-read every chapter, so that a build always executes them against the current eaelib.
BOOK_FLAGS ?= --all

.PHONY: setup book numbers learn test test-library test-fast explore lint format strip-notebooks clean

setup: $(STAMP)

# eaelib (editable) with its test extra: everything the book, the notebooks and the tests use, and the
# tools (pytest, ruff, setuptools for the wheel test). Binder installs requirements.txt instead: what
# readers need to run the chapters, no tooling.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

book: setup
	$(BIN)/jupyter-book build . --path-output . --warningiserror --keep-going $(BOOK_FLAGS)

numbers: setup
	$(BIN)/python book/_ext/portable_chapters.py $(NUMBERS_ARGS)

learn: setup
	$(BIN)/python -m eaelib learn barbara --out out/barbara

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint book
	$(BIN)/python -m pytest

test-library: setup
	$(BIN)/python -m pytest tests --ignore=tests/test_book.py

# The slow marker (pyproject.toml) is on the tests that take seconds each: fresh environments, the benchmark
# smoke run, long property tests.
test-fast: setup
	$(BIN)/python -m pytest tests --ignore=tests/test_book.py -m "not slow" $(PYTEST_ARGS)

# Property tests with fresh random examples, unlike the repeatable default; a failure is saved in
# .hypothesis/ and replayed by the next `make explore` until it passes.
explore: setup
	$(BIN)/python -m pytest tests --ignore=tests/test_book.py --hypothesis-profile=explore $(PYTEST_ARGS)

# make bench        the benchmark suite (bench/README.md): table, bench/results/latest.{json,md} and plots;
#                   options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--stride1 --threads 1"
# make bench-smoke  the same at tiny sizes in under a minute, into bench/results/smoke
.PHONY: bench bench-smoke
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: setup
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Chapters are committed without outputs: clear them after working on a notebook in Jupyter.
define STRIP_NOTEBOOKS
import sys, nbformat
for path in sys.argv[1:]:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, path)
endef
export STRIP_NOTEBOOKS

strip-notebooks: setup
	$(BIN)/python -c "$$STRIP_NOTEBOOKS" $(wildcard book/*.ipynb book/**/*.ipynb)

clean:
	rm -rf $(VENV) out _build .pytest_cache .ruff_cache .hypothesis
