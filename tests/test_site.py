"""The built book as a reader sees it: every page opened in headless Chromium (Debian's
package, driven by Playwright's Python API; no browser is downloaded).

Runs only when given the built site: `pytest tests/test_site.py --site _build/html`
(`make site-check`). Each page's full screenshot is saved under _build/site-check/.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def _files(entries: list[dict]) -> list[str]:
    return [f for e in entries for f in (e["file"], *_files(e.get("sections", [])))]


PAGES = [TOC["root"], *_files([c for part in TOC["parts"] for c in part["chapters"]])]
NUMBERED = [c["file"] for part in TOC["parts"] if part.get("numbered") for c in part["chapters"]]
# The chapters are the numbered parts' notebooks; the studies at the paper's protocol are
# notebooks of an unnumbered part; the Reference part's pages (API, status) are Markdown.
CHAPTERS = [p for p in NUMBERED if (ROOT / f"{p}.ipynb").exists()]
STUDIES = [p for p in PAGES[1:] if p not in NUMBERED and (ROOT / f"{p}.ipynb").exists()]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Flags for a closed network and a root user (see the machine notes): no sandbox, no
# background connections to Google's services.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PIPES = re.compile(r"\|\s*-{3,}\s*\|")
# A heading numbered by hand under Jupyter Book's own numbers: "3.2. 1. A trained model".
TWO_NUMBERS = re.compile(r"^\s*(\d+\.)+\s+\d+[.)]\s")
# What a reader scrolls through: a chapter's main line is read in one sitting (issue 25).
SCREEN = {"width": 1280, "height": 800}
MAX_SCREENS = 20
BAR = re.compile(r"\d+%\|[^|\n]*\|\s*\d+/\d+|\d+/\d+ \[\d\d:\d\d<|it/s\]")


@pytest.fixture(scope="module")
def site(request) -> Path:
    folder = request.config.getoption("--site")
    if folder is None:
        pytest.skip("no --site given: build the book, then run `make site-check`")
    folder = Path(folder).resolve()
    if not (folder / "index.html").is_file():
        raise ValueError(f"--site must be a built book folder holding index.html, got {str(folder)!r}")
    return folder


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"no Chromium at {CHROMIUM}: install Debian's chromium package (.ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@functools.cache
def _shots(site: Path) -> Path:
    out = site.parent / "site-check"
    out.mkdir(exist_ok=True)
    return out


def _open(browser, server, page_path: str, viewport: dict | None = None):
    """The page, with every request that leaves this machine refused and recorded."""
    page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{server}/{page_path}.html", wait_until="load")
    if page.locator('script[src*="mathjax"]').count():  # pages without math do not load MathJax
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
    page.evaluate("() => Promise.all([...document.images].map("
                  "i => i.complete ? 0 : new Promise(r => i.onload = i.onerror = r)))")
    return page, outside


def page_problems(page, outside: list[str], math: bool = True) -> list[str]:
    """What a reader would see wrong on an opened page: Markdown table pipes, progress bars,
    tracebacks, errors or warnings in outputs, images that did not load, untypeset TeX or
    MathJax fetched from the network, results tables that are not tables or overflow."""
    problems = []
    main = page.inner_text("main")
    if PIPES.search(main):
        problems.append("raw Markdown table pipes on the page")
    outputs = "\n".join(page.locator(".cell_output").all_inner_texts())
    if BAR.search(outputs):
        problems.append(f"progress-bar text: {BAR.search(outputs).group(0)!r}")
    for word in ("Traceback", "Error", "Warning"):
        if re.search(rf"\b\w*{word}\b", outputs):
            problems.append(f"{word!r} in an output")
    if page.locator(".output.stderr").count():
        problems.append("stderr output on the page")
    broken = page.evaluate("() => [...document.images].filter(i => !i.naturalWidth).map(i => i.src)")
    if broken:
        problems.append(f"images that did not load: {broken}")
    if "\\(" in main or "\\[" in page.inner_text("body"):
        problems.append("raw TeX on the page")
    if math and page.locator("mjx-container").count() == 0:
        problems.append("no typeset math")
    if [u for u in outside if "mathjax" in u.lower()]:
        problems.append("MathJax from the network")
    if outside:
        problems.append(f"requests that leave this machine (the book must read offline): {sorted(set(outside))}")
    state = page.evaluate("() => [...document.querySelectorAll('script')].map(s => s.textContent).join()")
    if "ProgressModel" in state:
        problems.append("a progress-bar widget embedded in the page")
    wide = page.evaluate("""() => [...document.querySelectorAll('main pre')]
        .filter(p => p.offsetParent !== null && p.scrollWidth > p.clientWidth + 1)
        .map(p => [p.closest('.cell_output') ? 'output' : 'code', p.scrollWidth, p.clientWidth,
                   p.innerText.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '')])""")
    for kind, width, room, line in wide:
        problems.append(f"a {kind} block wider than its box ({width} > {room} px): {line[:60]!r}")
    for h in page.locator("main h1, main h2, main h3, main h4").all_inner_texts():
        if TWO_NUMBERS.match(h):
            problems.append(f"a heading with two numbers: {h.strip()[:60]!r}")
    for t in page.locator("table.mi-table").all():
        if t.locator("th").count() < 2 or t.locator("td").count() < 2:
            problems.append("a results table without header or cells")
        width, room = t.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
        if width > room + 1:
            problems.append(f"a results table is wider than the page ({width} > {room} px)")
    return problems


@pytest.mark.parametrize("page_path", PAGES)
def test_page_reads_right_offline(site, server, browser, page_path):
    page, outside = _open(browser, server, page_path)
    try:
        name = page_path.split("/")[-1]
        page.screenshot(path=str(_shots(site) / f"{name}.png"), full_page=True)
        # Close-ups for people to look at: the first results table and the first displayed formula.
        for what, selector in (("table", "table.mi-table"), ("math", "mjx-container[display='true']")):
            if page.locator(selector).count():
                page.locator(selector).first.screenshot(path=str(_shots(site) / f"{name}-{what}.png"))
        # Every figure at the size a reader sees it, for people to look at (issue 25).
        for k, img in enumerate(page.locator("main .cell_output img").all()):
            img.screenshot(path=str(_shots(site) / f"{name}-figure-{k:02d}.png"))
        assert page_problems(page, outside, math=page_path in [TOC["root"], *CHAPTERS]) == [], name
    finally:
        page.close()


def test_page_problems_catches_each_defect(site, server, browser, tmp_path):
    """The checks themselves: a copy of a built chapter page, spoiled the ways pages were
    spoiled before (pipes, progress bars, a warning, a broken image, raw TeX, a CDN)."""
    page, outside = _open(browser, server, "book/diffusion")
    try:
        assert page_problems(page, outside) == []
        page.evaluate("""() => {
            const out = document.querySelector('.cell_output');
            out.insertAdjacentHTML('beforeend', '<p>| a | b |\\n| --- | --- |</p>'
                + '<pre>sampling: 100%|##########| 8000/8000 [01:13<00:00, 108.2it/s]</pre>'
                + '<pre>UserWarning: something</pre><img src="missing.png">'
                + '<p>raw \\\\(\\\\sigma\\\\) left</p>');
            document.querySelectorAll('mjx-container').forEach(m => m.remove());
            const code = document.querySelector('.cell_input pre');
            code.textContent += '\\n# ' + 'a comment that runs on '.repeat(8);
            document.querySelector('main h2').textContent = '1.2. 3. A heading numbered twice';
        }""")
        page.wait_for_timeout(500)
        page.evaluate("""() => document.body.insertAdjacentHTML('beforeend', '<script type='
            + '"application/vnd.jupyter.widget-state+json">{"_model_name": "FloatProgressModel"}</script>')""")
        found = " | ".join(page_problems(page, outside + ["https://cdn.example/mathjax/tex-chtml.js"]))
        for defect in ("pipes", "progress-bar text", "'Warning'", "did not load", "raw TeX", "no typeset math",
                       "MathJax from the network", "leave this machine", "progress-bar widget",
                       "code block wider than its box", "heading with two numbers"):
            assert defect in found, (defect, found)
    finally:
        page.close()


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_chapter_has_its_colab_link_and_exercises(site, server, browser, page_path):
    page, _ = _open(browser, server, page_path)
    try:
        colab = page.locator('a[href*="colab.research.google.com"]')
        assert colab.count() >= 1, f"{page_path}: no Colab launch link"
        assert page_path.split("/")[-1] + ".ipynb" in colab.first.get_attribute("href")
        assert page.locator(".exercise").count() >= 2, f"{page_path}: fewer than two exercises"
        dropdowns = page.locator(".solution.dropdown")
        assert dropdowns.count() == page.locator(".exercise").count(), f"{page_path}: an exercise without its solution"
        # A solution's dropdown is closed until clicked, then shows its text.
        first = dropdowns.first
        assert not first.locator(".admonition-title ~ *").first.is_visible()
        first.locator(".admonition-title").click()
        page.wait_for_timeout(300)
        assert first.locator(".admonition-title ~ *").first.is_visible()
        name = page_path.split("/")[-1]
        page.locator(".exercise").first.screenshot(path=str(_shots(site) / f"{name}-exercise.png"))
        first.screenshot(path=str(_shots(site) / f"{name}-solution.png"))
    finally:
        page.close()


def test_sidebar_lists_every_chapter_in_toc_order(site, server, browser):
    page, _ = _open(browser, server, TOC["root"])
    try:
        hrefs = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "els => els.map(e => e.href)")
        pages = [re.sub(r"^.*?/(book/[^#]+?)\.html.*$", r"\1", h) for h in hrefs]
        assert [p for p in pages if p in PAGES[1:]] == PAGES[1:]
        numbers = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "els => els.map(e => e.innerText)")
        numbered = [n for p, n in zip(pages, numbers, strict=True) if p in NUMBERED]
        assert len(numbered) == len(CHAPTERS) and NUMBERED == CHAPTERS
        assert all(re.match(rf"{i}\. ", n) for i, n in enumerate(numbered, start=1)), numbered
    finally:
        page.close()


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_chapter_is_read_in_one_sitting(site, server, browser, page_path):
    """A chapter's main line fits MAX_SCREENS screens of 1280 x 800; its studies are pages of
    their own (the part "Studies at the paper's protocol")."""
    page, _ = _open(browser, server, page_path, SCREEN)
    try:
        screens = page.evaluate("() => document.documentElement.scrollHeight") / SCREEN["height"]
        assert screens <= MAX_SCREENS, f"{page_path}: {screens:.1f} screens of 1280 x 800"
    finally:
        page.close()
