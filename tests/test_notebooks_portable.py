"""The chapters as Colab and plain Jupyter show them, without Jupyter Book: their numbers and folded solutions.

Each chapter's markdown is rendered by nbconvert (what Jupyter's own HTML export does, no execution) and read
for MyST that would show raw; its quoted numbers (``<span class="glue">``) must show a literal and its
solutions must sit in ``<details>``. ``book/_ext/portable_chapters.py`` turns the same cells into MyST for the
book; its two directions must be each other's inverse on every chapter. That the literals agree with the
build's run is checked after the build, in tests/test_book.py.
"""

from __future__ import annotations

import io
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))
import portable_chapters as portable  # noqa: E402

NOTEBOOKS = sorted(p for p in BOOK.glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]
RUN = "run `make book`, then `make numbers` (book/_ext/portable_chapters.py)"

# MyST that a notebook viewer shows as text, in the text of the rendered markdown (outside code and maths).
RAW_MYST = {
    "a role or a directive's name": re.compile(r"\{[A-Za-z][\w:.+-]*\}"),
    "a colon fence": re.compile(r"^[ \t]*:{3,}", re.M),
    "a target": re.compile(r"^[ \t]*\([\w.:-]+\)=[ \t]*$", re.M),
    "a substitution": re.compile(r"\{\{"),
    "a comment": re.compile(r"^[ \t]*%", re.M),
    "a block break": re.compile(r"^[ \t]*\+\+\+", re.M),
}
MATHS = re.compile(r"\$\$.*?\$\$|(?<!\\)\$[^$]+?(?<!\\)\$|\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S)
EXERCISE = re.compile(r"^\*\*\d+\. ", re.M)


class _Rendered(HTMLParser):
    """What a rendered page shows: its text outside code, its code blocks' languages, its <details> and
    glue spans."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.code_classes, self.details, self.spans = [], [], [], []
        self._code = 0
        self._stack = []  # open <details> and glue <span>s: [tag, attrs, text, children]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("code", "pre", "script", "style"):
            self._code += 1
            self.code_classes.append(attrs.get("class") or "")
        for element in self._stack:
            element[3].append(tag)
        if tag == "details" or (tag == "span" and "glue" in (attrs.get("class") or "").split()):
            self._stack.append([tag, attrs, [], []])

    def handle_endtag(self, tag):
        if tag in ("code", "pre", "script", "style"):
            self._code -= 1
        if self._stack and self._stack[-1][0] == tag:
            tag, attrs, text, children = self._stack.pop()
            (self.details if tag == "details" else self.spans).append((attrs, "".join(text), children))

    def handle_data(self, data):
        for element in self._stack:
            element[2].append(data)
        if not self._code:
            self.text.append(data)


def _notebook(path):
    return json.loads(path.read_text(encoding="utf-8"))


def render(markdown_cells):
    """The markdown cells rendered as Jupyter's HTML export renders them (nbconvert, mistune).

    The maths is set aside first, as JupyterLab does before it renders markdown (and MathJax typesets it).
    """
    cells = [portable._outside_code(s, lambda text: MATHS.sub("(maths)", text)) for s in markdown_cells]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) for s in cells])
    body, _ = HTMLExporter().from_notebook_node(notebook)
    page = _Rendered()
    page.feed(body)
    return page


def raw_myst(page):
    """Every piece of MyST that the rendered page shows as text: (what it is, the text)."""
    text = "".join(page.text)  # as shown: "<span>82</span>% of" reads "82% of", and starts no comment
    found = [(what, m[0]) for what, pattern in RAW_MYST.items() for m in pattern.finditer(text)]
    found += [("a directive fence", c) for c in page.code_classes if "{" in c]  # ```{name} ... ```
    return found


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=IDS)
def chapter(request):
    notebook = _notebook(request.param)
    cells = [portable._source(cell) for cell in portable.markdown_cells(notebook)]
    return request.param.name, notebook, cells, render(cells)


def test_there_are_chapters():
    assert NOTEBOOKS


def test_no_myst_shows_raw(chapter):
    name, _, _, page = chapter
    found = raw_myst(page)
    assert not found, f"{name} shows MyST as text outside the book ({RUN} to convert glue and dropdowns): {found}"


def test_solutions_are_folded(chapter):
    name, notebook, cells, page = chapter
    # A markdown solution sits in a <details> block, which the viewer renders folded, its markdown rendered.
    blocks = sum(cell.count("<details") for cell in cells)
    assert len(page.details) == blocks, f"{name}: {blocks} <details> in the source, {len(page.details)} rendered"
    for attrs, shown, children in page.details:
        assert "open" not in attrs, f"{name}: a solution shown open: {shown[:80]!r}"
        assert children[:1] == ["summary"], f"{name}: <details> without a <summary> first: {shown[:80]!r}"
        assert set(children) & {"p", "pre", "ul", "ol", "table", "div"}, (
            f"{name}: the markdown of this <details> block is not rendered (a blank line after <summary> and "
            f"before </details>?): {shown[:80]!r}"
        )
    # A code solution is tagged hide-cell, which the book folds, and folded in Jupyter too (source_hidden).
    for cell in notebook["cells"]:
        if "hide-cell" in cell["metadata"].get("tags", []):
            assert cell["metadata"].get("jupyter") == portable.FOLDED, (
                f"{name}: a hide-cell cell that Jupyter shows unfolded: {RUN}: {portable._source(cell)[:80]!r}"
            )
            assert cell["metadata"].get("cellView") == "form" and portable._source(cell).startswith(portable.TITLE), (
                f"{name}: a hide-cell cell that Colab shows unfolded: {RUN}: {portable._source(cell)[:80]!r}"
            )
    # Every exercise is followed by its solution, folded, before the next exercise.
    exercise = None
    for cell in [*notebook["cells"], None]:
        source = portable._source(cell) if cell else ""
        folded = cell is not None and ("<details" in source or "hide-cell" in cell["metadata"].get("tags", []))
        starts = cell is None or (cell["cell_type"] == "markdown" and EXERCISE.search(source))
        if starts:
            assert exercise is None, f"{name}: no folded solution after {exercise[:80]!r}"
            exercise = None if cell is None or folded else source[EXERCISE.search(source).start() :]
        elif folded:
            exercise = None
    # And no solution shows openly.
    unfolded = [
        m[0] for cell in cells for m in re.finditer(r"^\W*Solutions?\b.*", portable.DETAILS.sub("", cell), re.M)
    ]
    assert not unfolded, f"{name}: solutions outside <details>: {unfolded}"


def test_quoted_numbers_show(chapter):
    name, _, cells, page = chapter
    sources = [s for cell in cells for s in portable.spans(cell)]
    assert len(page.spans) == len(sources), f"{name}: {len(sources)} glue spans, {len(page.spans)} rendered"
    for (attrs, shown, _), (spec, literal, _) in zip(page.spans, sources, strict=True):
        assert attrs.get("title") == spec
        assert shown.strip() and shown == literal, f"{name}: the span of {spec!r} shows {shown!r}: {RUN}"
        # A value glued as a NumPy scalar or an array reads as its repr, np.int64(2), in the book too.
        assert not re.search(r"\b(np|numpy)\.\w+\(|\barray\(", shown), (
            f"{name}: the span of {spec!r} shows a repr, {shown!r}: glue a Python int, float or str"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_myst_and_back_is_the_identity(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    shown = {spec: text for spec, text, _ in portable.notebook_spans(notebook)}
    measured = {portable.spec_key(spec) for spec, _, m in portable.notebook_spans(notebook) if m}
    for cell in portable.markdown_cells(notebook):
        source = portable._source(cell)
        assert not portable.ROLE.search(source) and not portable.DROPDOWN.search(source), f"{path.name}: {RUN}"
        myst = portable.to_myst(source)
        assert '<span class="glue' not in myst and "<details" not in myst, f"{path.name}: not converted: {myst}"
        assert portable.to_portable(myst, shown.__getitem__, measured.__contains__) == source, path.name
    # What the book reads: the same notebook, but for the markdown cells.
    book = json.loads(portable.myst_notebook(path.read_text(encoding="utf-8")))
    assert [c["source"] for c in book["cells"] if c["cell_type"] == "code"] == [
        c["source"] for c in notebook["cells"] if c["cell_type"] == "code"
    ]


# ---------------------------------------------------------------------------------------------------------
# The conversion on examples

MYST = """Within {glue:text}`gap:.1e` of the optimum in {glue:text}`iterations` steps, {glue:text}`secs:.1f` s.

```python
print("{glue:text}`kept` in code")
```

:::{dropdown} Solution
The bound is $a < b$, and

```python
x = 1
```
:::

::::{dropdown} What it shows
:open:
:::{note}
nested
:::
::::"""

PORTABLE = """Within <span class="glue" title="gap:.1e">4.9e-05</span> of the optimum in \
<span class="glue" title="iterations">42</span> steps, <span class="glue measured" title="secs:.1f">1.5</span> s.

```python
print("{glue:text}`kept` in code")
```

<details><summary>Solution</summary>

The bound is $a < b$, and

```python
x = 1
```

</details>

<details open><summary>What it shows</summary>

:::{note}
nested
:::

</details>"""

VALUES = {"gap": {"text/plain": "4.87e-05"}, "iterations": {"text/plain": "42"}, "secs": {"text/plain": "1.5"}}


def test_conversion_on_an_example():
    literal = lambda spec: portable.glued_text(VALUES[portable.spec_key(spec)], spec)
    assert portable.to_portable(MYST, literal, {"secs"}.__contains__) == PORTABLE
    assert portable.to_myst(PORTABLE) == MYST
    # Idempotent: spans and <details> already there are kept, and refreshed.
    assert portable.to_portable(PORTABLE, literal, {"secs"}.__contains__) == PORTABLE
    assert portable.refresh(PORTABLE, lambda spec: "7", lambda key: False) == re.sub(
        r'(title="[^"]*">)[^<]*', r"\g<1>7", PORTABLE
    )
    remeasured = portable.refresh(PORTABLE, literal, {"gap"}.__contains__)
    assert [m for _, _, m in portable.spans(remeasured)] == [True, False, True]
    assert portable.spans(PORTABLE) == [
        ("gap:.1e", "4.9e-05", False),
        ("iterations", "42", False),
        ("secs:.1f", "1.5", True),
    ]


@pytest.mark.parametrize("text", ["a*b_c", "<x> & $5", r"back\slash [1]", "`tick`"])
def test_a_literal_shows_its_text(text):
    literal = portable.encode_literal(text)
    assert portable.decode_literal(literal) == text
    page = render([f'<span class="glue" title="k">{literal}</span>'])
    assert [shown for _, shown, _ in page.spans] == [text]


@pytest.mark.parametrize(
    "myst, error",
    [
        (":::{dropdown} Solution\n:class-container: x\nbody\n:::", "option :class-container:"),
        ("{glue:text}`other.ipynb::key`", "another notebook"),
    ],
)
def test_what_has_no_portable_form_is_an_error(myst, error):
    with pytest.raises(portable.PortableError, match=error):
        portable.to_portable(myst, lambda spec: "1", lambda key: False)


def test_raw_myst_is_found():
    # The test above can fail: MyST left in a chapter shows.
    page = render(["In {glue:text}`n` steps.\n\n:::{dropdown} Solution\nx\n:::\n\n(label)=\n\n```{note}\nx\n```"])
    found = {what for what, _ in raw_myst(page)}
    assert found == {"a role or a directive's name", "a colon fence", "a target", "a directive fence"}, found
    assert not raw_myst(render(['A <span class="glue" title="k:.0f">82</span> % of the patches.']))
    assert not raw_myst(render([r"Maths $\mathbf{x}_{ij}$ and $$\begin{cases} 1 \end{cases}$$, code `f'{x}'`."]))


def test_unrendered_details_are_found():
    # Without the blank lines, the viewer shows the markdown of a solution as raw text.
    page = render(["<details><summary>Solution</summary>\nThe **bound**.\n</details>"])
    assert not {"p", "pre"} & set(page.details[0][2])


# ---------------------------------------------------------------------------------------------------------
# The extension, in a Sphinx build of one notebook (already executed: nothing runs)


def _build_one(tmp_path, markdown):
    from sphinx.application import Sphinx

    glued = nbformat.v4.new_output(
        "display_data",
        data={"application/papermill.record/text/plain": "42"},
        metadata={"scrapbook": {"name": "n", "mime_prefix": "application/papermill.record/"}},
    )
    code = nbformat.v4.new_code_cell('glue("n", 42, display=False)', outputs=[glued], execution_count=1)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown), code])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "src"
    source.mkdir()
    nbformat.write(notebook, source / "index.ipynb")
    (source / "conf.py").write_text(
        'extensions = ["myst_nb", "sphinx_design", "portable_chapters"]\n'
        'myst_enable_extensions = ["colon_fence", "dollarmath"]\n'
        'nb_execution_mode = "off"\n',
        encoding="utf-8",
    )
    out, warnings = tmp_path / "html", io.StringIO()
    Sphinx(source, source, out, tmp_path / "doctrees", "html", status=None, warning=warnings).build()
    # Sphinx warns that a second build in the same process registers its nodes again.
    warnings = [w for w in warnings.getvalue().splitlines() if "already registered" not in w]
    return (out / "index.html").read_text(encoding="utf-8"), warnings


def test_the_book_shows_the_runs_value_and_a_dropdown(tmp_path):
    page, warnings = _build_one(
        tmp_path,
        'In <span class="glue" title="n:d">7</span> steps.\n\n'
        "<details><summary>Solution</summary>\n\nThe **answer**.\n\n</details>",
    )
    assert '<span class="pasted-text">42</span>' in page and ">7<" not in page  # the run's, not the literal
    assert "sd-dropdown" in page and "<strong>answer</strong>" in page and "<details><summary>" not in page
    assert not warnings, warnings


def test_the_book_warns_of_a_portable_form_gone_wrong(tmp_path):
    # make book fails on any warning (--warningiserror).
    _, warnings = _build_one(tmp_path, "<details><summary>Solution</summary>\nNo blank line.\n</details>")
    assert len(warnings) == 1 and "<details> is not in the form" in warnings[0], warnings


def test_make_numbers_converts_refreshes_and_refuses_another_run(tmp_path, capsys):
    chapter, runs = tmp_path / "book" / "01_x.ipynb", tmp_path / "runs"
    chapter.parent.mkdir()
    runs.mkdir()
    code = nbformat.v4.new_code_cell('glue("n", 42, display=False)\nglue("t", 1.5, display=False)')
    solution = nbformat.v4.new_code_cell("print(42)", metadata={"tags": ["hide-cell"]})
    markdown = "**1. Steps.** In {glue:text}`n:d` steps, {glue:text}`t:.1f` s.\n\n:::{dropdown} Solution\nIt is.\n:::"
    notebook = nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell(markdown), solution])
    nbformat.write(notebook, chapter)
    nbformat.write(notebook, runs / "01_x.ipynb")  # the run: the same code
    glue = {k: {"data": {"text/plain": v}} for k, v in {"n": "42", "t": "1.5"}.items()}
    (runs / "01_x.glue.json").write_text(json.dumps(glue), encoding="utf-8")

    assert portable.main([str(chapter), "--runs", str(runs), "--measured", "t"]) == 0
    cells = _notebook(chapter)["cells"]
    assert portable._source(cells[1]) == (
        '**1. Steps.** In <span class="glue" title="n:d">42</span> steps, '
        '<span class="glue measured" title="t:.1f">1.5</span> s.\n\n'
        "<details><summary>Solution</summary>\n\nIt is.\n\n</details>"
    )
    assert cells[2]["metadata"]["jupyter"] == portable.FOLDED
    assert cells[2]["metadata"]["cellView"] == "form"
    assert portable._source(cells[2]) == f"{portable.TITLE}\nprint(42)"
    assert "1 of 1 chapters rewritten" in capsys.readouterr().out
    # Idempotent; a new value is written, and said; the measured class stays.
    glue["n"]["data"]["text/plain"] = "43"
    glue["t"]["data"]["text/plain"] = "2.5"
    (runs / "01_x.glue.json").write_text(json.dumps(glue), encoding="utf-8")
    assert portable.main([str(chapter), "--runs", str(runs)]) == 0
    assert "01_x.ipynb: n:d was 42, now 43\n1 of 1" in capsys.readouterr().out
    assert [s[1:] for s in portable.notebook_spans(_notebook(chapter))] == [("43", False), ("2.5", True)]
    assert portable.main([str(chapter), "--runs", str(runs)]) == 0
    assert "0 of 1 chapters rewritten" in capsys.readouterr().out
    # A run of other code is refused, and nothing is written.
    ran = _notebook(runs / "01_x.ipynb")
    ran["cells"][0]["source"] = 'glue("n", 7, display=False)'
    (runs / "01_x.ipynb").write_text(json.dumps(ran), encoding="utf-8")
    before = chapter.read_text(encoding="utf-8")
    assert portable.main([str(chapter), "--runs", str(runs)]) == 1
    assert "ran other code" in capsys.readouterr().err
    assert chapter.read_text(encoding="utf-8") == before
