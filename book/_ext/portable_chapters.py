"""The chapters readable everywhere: in the book, on Colab and in plain Jupyter.

A chapter's markdown quotes the numbers of its run and folds its solutions in HTML that
any notebook viewer renders, and which this module turns into myst-nb's syntax for the
book:

- a quoted number is ``<span class="glue" title="KEY:FORMAT">LITERAL</span>``: Colab and
  Jupyter show LITERAL, the value of the last run written out; the book shows
  ``{glue:text}`KEY:FORMAT```, the value glued by the build's own run. A span of class
  ``"glue measured"`` quotes a measurement that changes from run to run or from machine
  to machine (a time, a speed-up, a float32 rounding error, which moves with the BLAS
  kernel): its literal is a past run's, and the tests do not compare it.
- a solution is ``<details><summary>TITLE</summary>``, a blank line, its markdown
  (maths, code), a blank line and ``</details>``, which Colab and Jupyter show folded;
  the book shows ``:::{dropdown} TITLE``. A solution in code is a code cell tagged
  ``hide-cell``, which the book folds; JupyterLab and Notebook 7 fold it by its metadata
  ``"jupyter": {"source_hidden": true, "outputs_hidden": true}``, and Colab by its
  ``"cellView": "form"`` under a first line ``# @title Solution``.

Two uses:

- a Sphinx extension (``_config.yml``, ``sphinx.local_extensions``) that rewrites the
  markdown cells of every notebook into MyST when Sphinx reads it (the ``source-read``
  event): what myst-nb parses, and executes, is that text;
- a script, ``python book/_ext/portable_chapters.py`` (``make numbers``), which writes
  any ``{glue:text}`` role and ``:::{dropdown}`` block left in ``book/*.ipynb`` in the
  form above, folds the ``hide-cell`` cells, and sets every literal to the value of the
  last ``make book`` (``_build/jupyter_execute/book/NAME.glue.json``), formatted as the
  role formats it. It refuses a run of other code than the chapter's. Running it twice
  changes nothing.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
RUNS = ROOT / "_build" / "jupyter_execute" / "book"

# {glue:text}`KEY:FORMAT` (KEY alone means FORMAT "s", as for the role).
ROLE = re.compile(r"\{glue:text\}`([^`\n]+)`")
SPAN = re.compile(r'<span class="glue( measured)?" title="([^"<>\n]+)">(.*?)</span>')
# A dropdown: three or more colons open it, the same colons alone on a line close it.
DROPDOWN = re.compile(
    r"^(?P<fence>:{3,})\{dropdown\}[ \t]*(?P<title>[^\n]*)\n"
    r"(?P<body>.*?)\n(?P=fence)[ \t]*$",
    re.M | re.S,
)
DETAILS = re.compile(
    r"<details(?P<open> open)?><summary>(?P<title>[^\n]*?)</summary>\n\n"
    r"(?P<body>.*?)\n\n</details>",
    re.S,
)
# A directive option opening a dropdown's body; only :open: has an HTML equivalent.
OPTION = re.compile(r"\A:([\w-]+):[^\n]*(\n|\Z)")
# The metadata folding a code cell tagged hide-cell (a solution in code) in Jupyter.
FOLDED = {"source_hidden": True, "outputs_hidden": True}
# Colab ignores that metadata and folds a code cell shown as a form instead ("cellView":
# "form"), under the title of its first line, a comment the book shows as it is.
TITLE = "# @title Solution"
# The characters that markdown or the maths would read in a literal: escaped.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]$|~])")


class PortableError(ValueError):
    """A chapter that cannot be written in (or read back from) the portable form."""


# ------------------------------------------------------------------------------------
# Literals


def encode_literal(text: str) -> str:
    """The content of a span showing ``text``: HTML, markdown and maths escaped."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(text, quote=False))


def decode_literal(literal: str) -> str:
    """The text a span's content shows (the inverse of :func:`encode_literal`)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", literal))


def glued_text(data: dict, spec: str) -> str:
    """What ``{glue:text}`spec``` shows for the glued output ``data`` (myst-nb's)."""
    from myst_nb.core.variables import format_plain_text

    fmt = spec.rpartition(":")[2] if ":" in spec else "s"
    if "text/plain" not in data:
        raise PortableError(f"the value glued as {spec_key(spec)!r} has no text/plain")
    return format_plain_text(data["text/plain"], fmt)


def spec_key(spec: str) -> str:
    """The glue key of ``KEY:FORMAT`` (or ``KEY``)."""
    return spec.rsplit(":", 1)[0] if ":" in spec else spec


# ------------------------------------------------------------------------------------
# Markdown: portable form <-> MyST


def _span(title: str, shown: str, measured: bool) -> str:
    """The span quoting ``shown``; ``title`` is the glue spec, HTML-escaped."""
    cls = "glue measured" if measured else "glue"
    return f'<span class="{cls}" title="{title}">{encode_literal(shown)}</span>'


def _outside_code(text: str, replace: Callable[[str], str]) -> str:
    """``replace`` applied to ``text`` except inside fenced code blocks (``` or ~~~)."""
    parts = re.split(
        r"(^[ \t]*(?:`{3,}|~{3,})[^\n]*\n.*?^[ \t]*(?:`{3,}|~{3,})[ \t]*$)",
        text,
        flags=re.M | re.S,
    )
    return "".join(part if i % 2 else replace(part) for i, part in enumerate(parts))


def to_myst(markdown: str) -> str:
    """The MyST of a markdown cell: spans become glue roles, <details> dropdowns."""

    def dropdown(match):
        body = match["body"]
        if "<details" in body:
            raise PortableError("a <details> block inside another is not supported")
        fences = re.findall(r"^(:{3,})", body, re.M)
        fence = ":" * max([3, *(len(f) + 1 for f in fences)])
        title = html.unescape(match["title"])
        opened = ":open:\n" if match["open"] else ""
        return f"{fence}{{dropdown}} {title}\n{opened}{body}\n{fence}"

    def spans(text):
        return SPAN.sub(lambda m: f"{{glue:text}}`{html.unescape(m[2])}`", text)

    return DETAILS.sub(dropdown, _outside_code(markdown, spans))


def to_portable(
    markdown: str, literal: Callable[[str], str], measured: Callable[[str], bool]
) -> str:
    """The portable form of a markdown cell: glue roles become spans, dropdowns
    <details> blocks.

    ``literal(spec)`` is what a role ``{glue:text}`spec``` shows; ``measured(key)`` says
    whether its span is of class "glue measured". Spans and <details> blocks are kept.
    """

    def details(match):
        body, opened = match["body"], ""
        option = OPTION.match(body)
        while option:
            if option[1] != "open":
                raise PortableError(
                    f"dropdown option :{option[1]}: has no <details> equivalent"
                )
            opened, body = " open", body[option.end() :]
            option = OPTION.match(body)
        if not body.strip():
            raise PortableError(f"empty dropdown {match['title']!r}")
        title = html.escape(match["title"].strip(), quote=False)
        return f"<details{opened}><summary>{title}</summary>\n\n{body}\n\n</details>"

    def roles(text):
        def span(m):
            spec = m[1]
            if "::" in spec:
                raise PortableError(
                    f"{{glue:text}}`{spec}` pastes from another notebook: not supported"
                )
            return _span(html.escape(spec), literal(spec), measured(spec_key(spec)))

        return ROLE.sub(span, text)

    return _outside_code(DROPDOWN.sub(details, markdown), roles)


def refresh(
    markdown: str, literal: Callable[[str], str], measured: Callable[[str], bool]
) -> str:
    """The cell with every span's literal set to ``literal(spec)``; a span is of class
    "glue measured" if it was or if ``measured(key)``."""

    def span(m):
        spec = html.unescape(m[2])
        return _span(m[2], literal(spec), bool(m[1]) or measured(spec_key(spec)))

    return _outside_code(markdown, lambda text: SPAN.sub(span, text))


def spans(markdown: str) -> list[tuple[str, str, bool]]:
    """Every span of a cell, as (spec, the text it shows, measured)."""
    found = []
    _outside_code(markdown, lambda text: found.extend(SPAN.findall(text)) or text)
    return [
        (html.unescape(spec), decode_literal(lit), bool(cls))
        for cls, spec, lit in found
    ]


# ------------------------------------------------------------------------------------
# Notebooks


def _source(cell) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _set_source(cell, text: str) -> None:
    # As Jupyter writes it: one string per line, each with its newline but the last.
    cell["source"] = text.splitlines(keepends=True)


def markdown_cells(notebook: dict):
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "markdown"]


def notebook_spans(notebook: dict) -> list[tuple[str, str, bool]]:
    return [span for cell in markdown_cells(notebook) for span in spans(_source(cell))]


def myst_notebook(text: str) -> str:
    """The JSON notebook ``text``, its markdown cells in MyST: what the book reads."""
    notebook = json.loads(text)
    for cell in markdown_cells(notebook):
        _set_source(cell, to_myst(_source(cell)))
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def glue_data(name: str, runs: Path = RUNS) -> dict[str, dict]:
    """Every value glued by the last run of chapter ``name``: key -> output's data."""
    glue = runs / f"{name}.glue.json"
    if glue.is_file():
        return {
            key: output["data"]
            for key, output in json.loads(glue.read_text(encoding="utf-8")).items()
        }
    # A notebook executed outside the book (nbconvert --execute) keeps its glue outputs.
    executed = runs / f"{name}.ipynb"
    data = {}
    if executed.is_file():
        for cell in json.loads(executed.read_text(encoding="utf-8"))["cells"]:
            for output in cell.get("outputs", []):
                scrapbook = output.get("metadata", {}).get("scrapbook")
                if scrapbook:
                    prefix = scrapbook.get("mime_prefix", "")
                    data[scrapbook["name"]] = {
                        k[len(prefix) :]: v for k, v in output["data"].items()
                    }
    return data


def stale_run(notebook: dict, name: str, runs: Path = RUNS) -> str | None:
    """Why the run under ``runs`` is not a run of ``notebook``'s code; None if it is."""
    executed = runs / f"{name}.ipynb"
    if not executed.is_file():
        return f"no run of {name} in {runs}: make book"
    ran = json.loads(executed.read_text(encoding="utf-8"))
    code = [_code(c) for c in notebook["cells"] if c["cell_type"] == "code"]
    if [_code(c) for c in ran["cells"] if c["cell_type"] == "code"] != code:
        return f"{executed} ran other code than book/{name}.ipynb: make book"
    return None


def _code(cell) -> str:
    """A code cell's source, less the Colab title that folding adds (a comment)."""
    source = _source(cell).strip()
    return source[len(TITLE) :].strip() if source.startswith(TITLE) else source


def fold(cell) -> None:
    """Fold a code solution (a cell tagged hide-cell) in Jupyter and on Colab."""
    cell["metadata"]["jupyter"] = dict(FOLDED)
    cell["metadata"]["cellView"] = "form"
    if not _source(cell).startswith(TITLE):
        _set_source(cell, f"{TITLE}\n{_source(cell)}")


def portable_notebook(
    notebook: dict, values: dict[str, dict], measured: frozenset[str] = frozenset()
) -> dict:
    """``notebook``, edited in place, in the portable form, its literals from ``values``
    (the glue of its run: key -> output data); the keys ``measured``, and those of
    spans already so, are quoted in spans of class "glue measured"."""
    measured_keys = measured | {
        spec_key(spec) for spec, _, was in notebook_spans(notebook) if was
    }

    def literal(spec):
        key = spec_key(spec)
        if key not in values:
            raise PortableError(f"the run glued no value {key!r}")
        return glued_text(values[key], spec)

    for cell in notebook["cells"]:
        if "hide-cell" in cell["metadata"].get("tags", []):
            fold(cell)
    for cell in markdown_cells(notebook):
        text = to_portable(_source(cell), literal, measured_keys.__contains__)
        _set_source(cell, refresh(text, literal, measured_keys.__contains__))
    return notebook


def convert(
    paths: list[Path], runs: Path = RUNS, measured: frozenset[str] = frozenset()
) -> list[str]:
    """Write the chapters ``paths`` in the portable form with the values of their last
    runs under ``runs``; the names of those changed."""
    changed, problems = [], []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        notebook = json.loads(text)
        needs = any(
            ROLE.search(_source(c)) or SPAN.search(_source(c))
            for c in markdown_cells(notebook)
        )
        stale = stale_run(notebook, path.stem, runs) if needs else None
        if stale:
            problems.append(stale)
            continue
        before = notebook_spans(notebook)
        try:
            values = glue_data(path.stem, runs) if needs else {}
            portable_notebook(notebook, values, measured)
        except PortableError as error:
            problems.append(f"{path.name}: {error}")
            continue
        new = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path.name)
        # The quoted numbers that moved: the prose around them may need a look.
        was = {spec: shown for spec, shown, _ in before}
        moved = {
            f"{path.name}: {spec} was {was[spec]}, now {shown}"
            for spec, shown, timed in notebook_spans(notebook)
            if spec in was and was[spec] != shown and not timed
        }
        print(*sorted(moved), sep="\n", end="\n" if moved else "")
    if problems:
        raise PortableError("\n".join(problems))
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: book/*.ipynb")
    parser.add_argument(
        "--runs",
        type=Path,
        default=RUNS,
        help=f"the executed chapters (default {RUNS})",
    )
    parser.add_argument(
        "--measured",
        action="append",
        default=[],
        metavar="KEY",
        help='quote the glued KEY in spans of class "glue measured": a value that '
        "changes from run to run or machine to machine, such as a time (repeat for "
        "more keys)",
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(p for p in BOOK.glob("*.ipynb"))
    try:
        changed = convert(paths, args.runs, frozenset(args.measured))
    except PortableError as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"{len(changed)} of {len(paths)} chapters rewritten"
        + (f": {', '.join(changed)}" if changed else "")
    )
    return 0


# ------------------------------------------------------------------------------------
# The Sphinx extension


def _source_read(app, docname, source):
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    source[0] = myst_notebook(source[0])
    # A span or a <details> block left is not in the form above: the book would show its
    # literal, or its markdown raw, not the run's value or a dropdown. A warning fails
    # the build.
    from sphinx.util import logging

    for cell in markdown_cells(json.loads(source[0])):
        for left in re.findall(
            r"<span class=\"glue[^>]*>|<details[^>]*>", _source(cell)
        ):
            logging.getLogger(__name__).warning(
                f"{left} is not in the form of book/_ext/portable_chapters.py "
                f"(make numbers writes it): {_source(cell)[:80]!r}",
                location=docname,
            )


def setup(app):
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    sys.exit(main())
