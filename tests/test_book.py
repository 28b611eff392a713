"""The book: its notebooks as committed, and the built site (``make book``) rendered offline in Chromium.

The notebooks themselves are executed by ``make book``, which fails when a cell raises.
The site tests read ``_build/html``, which ``make test`` builds first; they open every page in headless
Chromium, served from 127.0.0.1, with every other host unresolvable. Where Chromium or the built site is
missing these tests skip locally and fail in CI (``CI=true``), where ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
SITE = ROOT / "_build" / "html"
RUNS = ROOT / "_build" / "jupyter_execute" / "book"  # the chapters as the build executed them, and their glue
SCREENSHOTS = ROOT / "_build" / "screenshots"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

sys.path.insert(0, str(BOOK / "_ext"))
import portable_chapters as portable  # noqa: E402  (the chapters' portable form: book/_ext)

NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
# The HTML pages of the built site, as paths relative to SITE (empty when the book is not built).
PAGES = sorted(
    p.relative_to(SITE).as_posix()
    for p in SITE.rglob("*.html")
    if not p.relative_to(SITE).parts[0].startswith(("_static", "_sources", "_images"))
)
INTRODUCTION = "book/00_introduction.html"
SCREENSHOT_PAGES = {"book/intro.html": "intro.png", INTRODUCTION: "00_introduction.png"}

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    # Nothing but the local server resolves: a page that reaches for a CDN fails loudly.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,1000",
]
TIMEOUT = 60  # seconds for a page to load and typeset


def _unavailable(reason):
    """Fail in CI, where everything must be there; skip elsewhere."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------------------
# The notebooks as committed


def test_there_are_chapters():
    assert NOTEBOOKS, f"no notebook under {BOOK}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(BOOK).as_posix() for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [
        i
        for i, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs or execution counts; run `make strip-notebooks`"
    assert notebook["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel is not python3"


def _toc_files(entry):
    """Every ``file`` (and the ``root``) named in a _toc.yml entry, recursively."""
    if isinstance(entry, dict):
        for key, value in entry.items():
            if key in ("root", "file"):
                yield value
            else:
                yield from _toc_files(value)
    elif isinstance(entry, list):
        for item in entry:
            yield from _toc_files(item)


def test_table_of_contents_lists_every_notebook():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = {str(Path(f).with_suffix("")) for f in _toc_files(toc)}
    for name in listed:
        assert any((ROOT / name).with_suffix(s).is_file() for s in (".ipynb", ".md")), f"_toc.yml names {name}"
    # only_build_toc_files: a notebook missing from _toc.yml would silently be left out of the book.
    missing = [p.relative_to(ROOT).with_suffix("").as_posix() for p in NOTEBOOKS]
    missing = [name for name in missing if name not in listed]
    assert not missing, f"add to _toc.yml: {missing}"


# ---------------------------------------------------------------------------------------------------------
# The built site, statically


def test_site_is_built():
    if not (SITE / "index.html").is_file():
        _unavailable(f"no book at {SITE}: run `make book` (make test builds it first)")
    assert INTRODUCTION in PAGES
    assert len(PAGES) >= 2 + len(NOTEBOOKS)  # the chapters, the root page, index.html (and search, genindex)


class _Resources(HTMLParser):
    """The URLs that a page loads by itself: scripts, stylesheets, preloads, icons, images, frames."""

    LOADING_LINKS = frozenset(
        {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch", "icon"}
    )

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "embed", "video", "audio") and attrs.get("src"):
            self.urls.append((tag, attrs["src"]))
        elif tag == "link" and self.LOADING_LINKS & set((attrs.get("rel") or "").lower().split()):
            self.urls.append((tag, attrs.get("href") or ""))


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_nothing_from_outside(page):
    parser = _Resources()
    parser.feed((SITE / page).read_text(encoding="utf-8"))
    external = [(tag, url) for tag, url in parser.urls if url.startswith(("http:", "https:", "//"))]
    assert not external, f"{page} loads from outside the site: {external}"
    for tag, url in parser.urls:
        if not url.startswith("data:"):
            target = (SITE / page).parent / url.split("#")[0].split("?")[0]
            assert target.resolve().is_file(), f"{page}: <{tag}> {url} is not in the site"
    if page == INTRODUCTION:
        mathjax = [url.split("?")[0] for tag, url in parser.urls if tag == "script" and "/mathjax/" in url]
        assert mathjax == ["../_static/mathjax/tex-chtml.js"], mathjax


# ---------------------------------------------------------------------------------------------------------
# The built site, in Chromium


class _Handler(SimpleHTTPRequestHandler):
    errors: list[str]

    def log_request(self, code="-", size="-"):
        if isinstance(code, int) and code >= 400:
            self.errors.append(f"{code} {self.path}")

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """The site over http on 127.0.0.1, on a free port, from a thread."""
    if not (SITE / "index.html").is_file():
        _unavailable(f"no book at {SITE}: run `make book` (make test builds it first)")
    errors = []
    handler = partial(type("Handler", (_Handler,), {"errors": errors}), directory=str(SITE))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", errors
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _find(*names):
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Selenium through the system's chromedriver (no download, no network)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed: make setup")
    chromium = _find("chromium", "chromium-browser", "google-chrome")
    chromedriver = _find("chromedriver")
    if not (chromium and chromedriver):
        _unavailable("Chromium or chromedriver is missing: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="eaelib-book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    driver.set_script_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


_WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
(async () => {
  for (const img of document.images) {
    img.loading = "eager";
    img.scrollIntoView();
  }
  await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => null)));
  window.scrollTo(0, 0);
  // MathJax is a deferred script: on a loaded machine it can still be starting when the page has
  // loaded. Give it up to 30 s to define itself on a page with math before calling it absent.
  const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  const hasMath = document.querySelector(".math") !== null;
  for (let waited = 0; hasMath && !ready() && waited < 30000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  let mathjax = "absent";
  if (ready()) {
    await MathJax.startup.promise;
    mathjax = MathJax.version;
  }
  return {
    mathjax,
    containers: document.querySelectorAll("mjx-container").length,
    mathErrors: document.querySelectorAll("mjx-merror").length,
    unrendered: Array.from(document.querySelectorAll(".math"), (el) => el.querySelector("mjx-container") === null)
      .filter(Boolean).length,
    images: Array.from(document.images, (img) => ({src: img.src, ok: img.complete && img.naturalWidth > 0})),
    title: document.title,
  };
})().then(done, (error) => done({error: String(error)}));
"""


# Everything that scrolls sideways inside the chapter's column, once every collapsed block (hidden
# cells, solutions, dropdowns) is opened: code blocks and outputs (<pre>), display equations, tables.
# scrollWidth counts content that sticks out even where overflow is visible; 1 px allows for rounding.
_OVERFLOWS = """
document.querySelectorAll("main details").forEach((details) => { details.open = true; });
const wide = [];
const check = (kind, element, box) => {
  if (box.scrollWidth > box.clientWidth + 1) {
    const text = (element.textContent || "").replace(/\\s+/g, " ").trim().slice(0, 80);
    wide.push(`${kind} ${box.scrollWidth} px in ${box.clientWidth} px: ${text}`);
  }
};
document.querySelectorAll("main article pre").forEach((pre) => check("code", pre, pre));
document.querySelectorAll("main article mjx-container[display='true']")
  .forEach((math) => check("equation", math, math));
document.querySelectorAll("main article table")
  .forEach((table) => check("table", table, table.parentElement));
const article = document.querySelector("main article");
if (article && !wide.length) check("page", article, article);
return wide;
"""


def _requested_urls(driver):
    """The URLs the page asked for since the last call, from Chromium's performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(page, server, browser):
    base, http_errors = server
    browser.get_log("browser")  # forget the previous page's logs
    browser.get_log("performance")
    del http_errors[:]
    browser.get(base + page)
    state = browser.execute_async_script(_WAIT_FOR_PAGE)
    assert "error" not in state, state
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"{page}: JavaScript errors {severe}"
    network = [u for u in _requested_urls(browser) if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:"))]
    outside = [u for u in network if not u.startswith(base)]
    assert not outside, f"{page} requested {outside}"
    assert not http_errors, f"{page}: the server answered {http_errors}"
    broken = [img["src"] for img in state["images"] if not img["ok"]]
    assert not broken, f"{page}: images not loaded {broken}"
    assert state["mathErrors"] == 0 and state["unrendered"] == 0, f"{page}: math not typeset: {state}"

    if page == INTRODUCTION:
        assert state["mathjax"].startswith("3."), state["mathjax"]
        assert state["containers"] >= 10, f"MathJax typeset only {state['containers']} formulas"
        assert any("/_images/" in img["src"] for img in state["images"]), "no figure from the notebook"
        assert "Introduction" in state["title"]
    if page in SCREENSHOT_PAGES:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, min(max(height, 800), 8000))
        try:
            assert browser.save_screenshot(str(SCREENSHOTS / SCREENSHOT_PAGES[page]))
        finally:
            browser.set_window_size(1280, 1000)

    # Last, since it opens every collapsed block: at 1280 pixels nothing scrolls sideways (the chapters'
    # code is formatted at 88 columns for this, book/ruff.toml).
    wide = browser.execute_script(_OVERFLOWS)
    assert not wide, f"{page}: wider than the column (" + "; ".join(wide) + ")"


# ---------------------------------------------------------------------------------------------------------
# The numbers the chapters quote, against the build's run

# A literal agrees with the run's value when it is the same text, or the same text but for its numbers, each
# within 2 % or one unit of its last digit of the run's: another OpenBLAS kernel (OPENBLAS_CORETYPE, see
# .ci/run) rounds differently, which can move a last digit or an iteration count by one. Beyond that, the
# literal is stale: Colab and Jupyter readers would read another number than the book's.
RTOL = 0.02
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:[eE][-+]?\d+)?")


def _unit(number):
    """One unit of the last digit of a formatted number: 1e-06 for 4.9e-05, 0.01 for 0.30, 1 for 126,110."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def literal_agrees(shown, run, rtol=RTOL):
    if shown == run:
        return True
    if _NUMBER.split(shown) != _NUMBER.split(run):
        return False
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(run), strict=True):
        x, y = float(a.replace(",", "")), float(b.replace(",", ""))
        if abs(x - y) > max(rtol * max(abs(x), abs(y)), _unit(b) * (1 + 1e-9)):
            return False
    return True


@pytest.mark.parametrize(
    "shown, run, agree",
    [
        ("4.9e-05", "4.9e-05", True),
        ("4.9e-05", "5.0e-05", True),  # one unit of the last digit
        ("4.9e-05", "5.1e-05", False),
        ("42", "43", True),
        ("42", "44", False),
        ("271%", "275%", True),  # within 2 %
        ("271%", "281%", False),
        ("2 to 7", "2 to 8", True),
        ("2 to 7", "2 or 7", False),
        ("126,110", "126,111", True),
        ("online", "batch", False),
    ],
)
def test_literal_agrees(shown, run, agree):
    assert literal_agrees(shown, run) is agree


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(BOOK).as_posix() for p in NOTEBOOKS])
def test_quoted_numbers_are_the_runs(path):
    """What Colab and Jupyter show of a quoted number is what the book shows, from this build's run."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    spans = portable.notebook_spans(notebook)
    page = SITE / path.relative_to(ROOT).with_suffix(".html")
    if not page.is_file():
        _unavailable(f"no book at {SITE}: run `make book` (make test builds it first)")
    stale = portable.stale_run(notebook, path.stem, RUNS)
    assert not stale, stale
    # The book shows the run's values: the spans reached myst-nb as glue roles, one pasted value each.
    html = page.read_text(encoding="utf-8")
    assert 'class="glue' not in html and "<details><summary>" not in html, f"{page}: portable HTML left as is"
    assert html.count('class="pasted-text"') == len(spans), page
    values = portable.glue_data(path.stem, RUNS)
    stale = []
    for spec, shown, measured in spans:
        key = portable.spec_key(spec)
        assert key in values, f"{path.name} quotes {spec!r}, which its run does not glue"
        run = portable.glued_text(values[key], spec)
        if not measured and not literal_agrees(shown, run):
            stale.append(f"{spec}: {shown} against {run}")
    assert not stale, (
        f"{path.name} shows numbers of another run outside the book; run `make numbers` (if a value changes from "
        f'run to run or machine to machine, as a time or a rounding error does, `make numbers NUMBERS_ARGS="'
        f'--measured KEY"` marks its span class="glue measured"): ' + "; ".join(stale)
    )


def test_the_prose_links_to_chapters_by_title_never_by_number():
    # The build numbers the chapters (_toc.yml): "chapter 3" in the prose goes stale when a chapter is added.
    numbered = []
    for path in NOTEBOOKS:
        text = "".join(_markdown(path))
        numbered += [f"{path.name}: {m}" for m in re.findall(r"\[[Cc]hapter \d+\w*\]\([^)]*\)", text)]
    assert not numbered, numbered


# ---------------------------------------------------------------------------------------------------------
# How the chapters teach: the same frame in every chapter


def _markdown(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


CHAPTERS = [p for p in NOTEBOOKS if re.match(r"\d", p.name)]
EXERCISE = re.compile(r"^\*\*(\d+)\. [^\n]*?\*\*( \*\((easy|medium|hard|investigate)\)\*)?", re.MULTILINE)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_each_chapter_opens_with_what_the_reader_will_learn(path):
    opening = _markdown(path)[:3]
    assert any("**What you will learn**" in text for text in opening), f"{path.name}: no 'What you will learn' list"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_every_exercise_says_its_difficulty_and_one_is_an_investigation(path):
    exercises = [m for text in _markdown(path) for m in EXERCISE.finditer(text)]
    assert exercises, f"{path.name}: no exercises"
    untagged = [m.group(0) for m in exercises if not m.group(2)]
    assert not untagged, f"{path.name}: exercises without *(easy|medium|hard|investigate)*: {untagged}"
    numbers = [int(m.group(1)) for m in exercises]
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: exercises numbered {numbers}"
    assert "investigate" in {m.group(3) for m in exercises}, f"{path.name}: no *(investigate)* exercise"


def _sentences(text):
    """The prose sentences of a markdown cell: maths, code and tables reduced or left out."""
    text = re.sub(r"\$\$.*?\$\$|```.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"\$[^$]+\$", "x", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    for paragraph in re.split(r"\n\s*\n|\n\s*- |\n\d+\. ", text):
        yield from re.split(r"(?<=[.!?:;])\s+(?=[A-Z(*`\[])", " ".join(paragraph.split()))


def test_no_sentence_runs_to_a_hundred_words():
    long = [
        f"{path.name}: {len(s.split())} words: {s[:80]}…"
        for path in NOTEBOOKS
        for text in _markdown(path)
        for s in _sentences(text)
        if len(s.split()) >= 100
    ]
    assert not long, "split these sentences:\n" + "\n".join(long)


def _reference_titles(text):
    """The titles (the first *italic* run) of the entries of a '## References' list."""
    body = text.split("## References", 1)[1]
    return [re.search(r"\*(.+?)\*", " ".join(item.split())).group(1) for item in re.split(r"\n(?=- )", body)[1:]]


def test_the_bibliography_gathers_what_the_chapters_cite():
    bibliography = (BOOK / "bibliography.md").read_text(encoding="utf-8")
    gathered = " ".join(bibliography.split("## Every work the chapters cite", 1)[1].split())
    cited = {t for p in NOTEBOOKS for text in _markdown(p) if "## References" in text for t in _reference_titles(text)}
    assert len(cited) >= 30, cited
    missing = sorted(t for t in cited if f"*{t}*" not in gathered)
    assert not missing, f"book/bibliography.md lacks {missing}"
    stale = sorted(t for t in re.findall(r"^- [^*]*\*(.+?)\*", gathered.replace(" - ", "\n- "), re.M) if t not in cited)
    assert not stale, f"book/bibliography.md lists works no chapter cites: {stale}"
    reading = " ".join(bibliography.split("## Where to start", 1)[1].split("##", 1)[0].split())
    classics = [
        "Sparse and Redundant Representations",  # Elad 2010
        "Sparse modeling for image and vision processing",  # Mairal, Bach, Ponce 2014
        "K-SVD",  # Aharon, Elad, Bruckstein 2006
        "An interior-point method for large-scale",  # Kim et al. 2007
        "A fast iterative shrinkage-thresholding algorithm",  # Beck and Teboulle 2009
        "Learning fast approximations of sparse coding",  # Gregor and LeCun 2010
        "Fast inference in sparse coding algorithms",  # Kavukcuoglu, Ranzato and LeCun 2008
        "Online learning for matrix factorization and sparse coding",  # Mairal et al. 2010
    ]
    assert not [c for c in classics if c not in reading], "the reading list lacks a classic"


def _maths(path):
    text = "\n".join(_markdown(path))
    return re.findall(r"\$\$.*?\$\$|\$[^$]+\$", text, flags=re.DOTALL)


def test_one_symbol_one_meaning():
    # book/notation.md: L is a Lipschitz constant, the Laplacian is \mathcal{L}; mu a strong-convexity
    # modulus, the constraints' multipliers nu; the degrees delta_j; the basis vectors \mathbf{1}_k.
    clashes = []
    for path in NOTEBOOKS:
        for formula in _maths(path):
            if re.search(r"Z\s*L\s*Z|z\s*L\s*z|L\s*=\s*\\operatorname\{diag\}|L_\{\\text\{n\}\}", formula):
                clashes.append(f"{path.name}: the Laplacian as L in {formula[:60]}")
            if re.search(r"\\mu_[{a-z]|\\operatorname\{diag\}\s*\\mu", formula):
                clashes.append(f"{path.name}: a multiplier as mu in {formula[:60]}")
            if re.search(r"e_k\s*e_k\^\\top|\\sqrt\{d_[ij]\}|d_j\s*=\s*\\sum", formula):
                clashes.append(f"{path.name}: a basis vector or a degree in {formula[:60]}")
    assert not clashes, "\n".join(clashes)
    notation = (BOOK / "notation.md").read_text(encoding="utf-8")
    for symbol in (r"$\mathcal{L}", r"$L$", r"$\mu$", r"$\nu_i$", r"$\delta_j", r"$\mathbf{1}_k$"):
        assert symbol in notation, f"book/notation.md does not define {symbol}"


@pytest.mark.slow
def test_the_quickstart_runs_as_printed(tmp_path):
    intro = (BOOK / "intro.md").read_text(encoding="utf-8")
    code = re.search(r"## Quickstart.*?```python\n(.*?)```", intro, flags=re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 20, "the quickstart is no longer twenty lines"
    script = tmp_path / "quickstart.py"
    script.write_text("import matplotlib\nmatplotlib.use('Agg')\n" + code, encoding="utf-8")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "certified: True" in done.stdout, done.stdout
    assert re.findall(r"exact codes: PSNR \d+\.\d dB", done.stdout), done.stdout
    # The prose under it: "no block ... by more than 10^-3 of its value", the default tolerance.
    import eaelib

    assert eaelib.EnergyAutoEncoder().rtol == 1e-3 and r"$10^{-3}$" in intro
