"""Browser check of the rendered test-profile book (built by `make test-book`).

Serves _build/test-book/_build/html on 127.0.0.1, opens every page in headless Debian Chromium
(playwright, no browser download) and checks: every plotly figure drew, the expected number of
figures per page, a slider click changes the shown traces, no JavaScript errors, no request
leaves 127.0.0.1, nothing logged to the console as an error. A full-page screenshot of each
page goes to _build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "test-book" / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
_assets = load_script("_ext/book_assets.py")
#: old page -> where it forwards (the book's redirect pages)
REDIRECTS = _assets.REDIRECTS

#: page -> number of plotly figures it must show
PAGES = {
    "book/intro.html": 1,
    "book/01_testbed.html": 1,
    "book/02_scaling.html": 5,
    "book/03_noise_first.html": 3,
    "book/04_hidden_rule.html": 6,
    "book/05_frequency_filtration.html": 4,
    "book/06_partition.html": 3,
    "book/07_misspecification.html": 4,
    "book/09_transformer.html": 6,  # the shipped section's figure, then 5 trained now
    "book/10_noise_first_images.html": 3,  # the shipped section's figure, then 2 trained now
    "book/11_optimizers.html": 4,  # the shipped section's figure, then 3 trained now
    "book/12_grokking_phases.html": 4,  # the shipped section's figure, then 3 trained now
    "book/13_progress_measures.html": 4,  # the shipped section's figure, then 3 trained now
    "book/14_topology.html": 6,  # the shipped section's figure, then 5 trained now
    "book/15_heavy_tails.html": 5,  # the shipped section's figure, then 4 trained now
    "book/16_clustering.html": 4,  # the shipped section's figure, then 3 trained now
    "book/17_explorer.html": 2,
    "book/generated/04_hidden_rule_sub.html": 6,
    "book/generated/05_frequency_filtration_sub.html": 4,
    "book/generated/05_frequency_filtration_mul.html": 4,
    "book/generated/06_partition_mul.html": 3,
}
#: pages that judge claims (not the testbed, 01, nor the explorer, 17): their first verdict box
#: comes before any visible code input
VERDICT_FIRST = [p for p in PAGES if p.split("/")[-1][:2].isdigit() and p.split("/")[-1][:2] not in ("01", "17")]
VERDICT_BEFORE_CODE = """() => {
  const verdict = document.querySelector('div.admonition.verdict');
  if (!verdict) return 'no verdict box';
  const shown = [...document.querySelectorAll('div.cell_input')]
    .filter(e => e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}));
  if (!shown.length) return 'ok';
  return (verdict.compareDocumentPosition(shown[0]) & Node.DOCUMENT_POSITION_FOLLOWING) ? 'ok'
    : 'visible code before the verdict: ' + shown[0].innerText.slice(0, 80);
}"""
ALL_DRAWN = """() => {
  const divs = [...document.querySelectorAll('.plotly-graph-div')];
  return divs.length > 0 && divs.every(d => d._fullLayout && d.querySelector('svg.main-svg'));
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    if not (HTML / "index.html").exists():
        pytest.skip("the test book is not built: run `make test-book` first")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium not found: apt-get install chromium chromium-driver (CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def open_page(browser, base_url, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def console(m) -> None:
        if m.type == "error":
            errors.append(f"console.error: {m.text}")

    page.on("console", console)

    def route(r):
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{base_url}/{path}")
    page.wait_for_function(ALL_DRAWN, timeout=30_000)
    return page, errors, outside


def test_every_page_is_listed():
    built = {str(p.relative_to(HTML)) for p in (HTML / "book").rglob("*.html")} if HTML.exists() else set()
    if not built:
        pytest.skip("the test book is not built: run `make test-book` first")
    assert built == set(PAGES) | set(REDIRECTS)


@pytest.mark.parametrize("path", sorted(PAGES))
def test_page_figures_draw_without_errors_or_outside_requests(browser, base_url, path):
    page, errors, outside = open_page(browser, base_url, path)
    n = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (path.replace("/", "_") + ".png")), full_page=True)
    page.close()
    assert n == PAGES[path]
    assert errors == []
    assert outside == []


def test_slider_click_switches_traces(browser, base_url):
    page, _, _ = open_page(browser, base_url, "book/01_testbed.html")
    div = "document.querySelector('.plotly-graph-div')"
    before = page.evaluate(f"() => {div}.data.map(t => t.visible)")
    rail = page.locator(".plotly-graph-div .slider-rail-touch-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.99, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    after = page.evaluate(f"() => {div}.data.map(t => t.visible)")
    page.close()
    assert before != after
    assert after[-1] is True and before[-1] is False


@pytest.mark.parametrize("path", VERDICT_FIRST)
def test_verdict_box_comes_before_any_visible_code(browser, base_url, path):
    page, _, _ = open_page(browser, base_url, path)
    where = page.evaluate(VERDICT_BEFORE_CODE)
    page.close()
    assert where == "ok"


def test_math_is_typeset_from_the_books_own_mathjax(browser, base_url):
    """Dollar math becomes MathJax output, loaded from the book itself (no request leaves)."""
    page, errors, outside = open_page(browser, base_url, "book/01_testbed.html")
    page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=30_000)
    n = page.evaluate("() => document.querySelectorAll('mjx-container').length")
    page.close()
    assert n > 5 and errors == [] and outside == []


@pytest.mark.parametrize("path", sorted(PAGES))
def test_figures_fit_a_phone(browser, base_url, path):
    """At 390 px every figure fits the column (its legend below the plot, nothing cut off)."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base_url) else r.abort())
    page.goto(f"{base_url}/{path}")
    page.wait_for_function(ALL_DRAWN, timeout=30_000)
    widths = page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')].map("
                           "d => Math.ceil(d.getBoundingClientRect().right))")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / ("phone_" + path.replace("/", "_") + ".png")), full_page=True)
    page.close()
    assert widths and max(widths) <= 390


def test_findings_table_is_a_table_on_a_page_and_cards_on_a_phone(browser, base_url):
    """The introduction's claims table: table cells at 1280 px, one card per claim (full-width
    blocks, the verdict columns named) at 390 px (_ext/book_assets.py's CSS); its tally is set
    closer at 390 px."""
    page, errors, _ = open_page(browser, base_url, "book/intro.html")
    cell = "() => getComputedStyle(document.querySelector('.claims-table td')).display"
    # the tally's font against the page's text (the theme may size both by the screen)
    tally = ("() => parseFloat(getComputedStyle(document.querySelector('.tally-table td')).fontSize)"
             " / parseFloat(getComputedStyle(document.querySelector('article p')).fontSize)")
    assert page.evaluate(cell) == "table-cell"
    wide_font = page.evaluate(tally)
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate(cell) == "block" and page.evaluate(tally) < 0.9 * wide_font
    label = page.evaluate("() => getComputedStyle(document.querySelector('.claims-table td:nth-of-type(4)'),"
                          " '::before').content")
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    page.close()
    assert label == '"this build: "' and wide <= 390 and errors == []


def test_a_renamed_chapter_s_old_address_leads_to_its_page(browser, base_url):
    """The explorer was book/08_explorer.html; that address now forwards to its page (_ext/book_assets.py)."""
    assert REDIRECTS == {"book/08_explorer.html": "17_explorer.html"}
    toc = (ROOT / "_toc.yml").read_text()
    assert "08_explorer" not in toc and "17_explorer" in toc  # no chapter lives at the old address
    page = browser.new_page()
    page.goto(f"{base_url}/book/08_explorer.html#live-controls")
    page.wait_for_url("**/book/17_explorer.html#live-controls", timeout=10_000)
    page.wait_for_function(ALL_DRAWN, timeout=30_000)
    title = page.title()
    page.close()
    assert "xplorer" in title


def test_the_menu_buttons_open_the_contents_on_a_phone(browser, base_url):
    """On a phone the visible table-of-contents and page-contents buttons open their dialogs
    (pydata-sphinx-theme 0.17 wires only the hidden first one; _ext/book_assets.py's script passes
    the click on)."""
    page, errors, _ = open_page(browser, base_url, "book/02_scaling.html")
    page.set_viewport_size({"width": 390, "height": 844})
    for kind, dialog in (("primary", "#pst-primary-sidebar-modal"), ("secondary", "#pst-secondary-sidebar-modal")):
        visible = page.locator(f".{kind}-toggle:visible").first
        visible.click()
        page.wait_for_function(f"() => document.querySelector('{dialog}')?.open === true", timeout=5_000)
        page.keyboard.press("Escape")
        page.wait_for_function(f"() => !document.querySelector('{dialog}').open", timeout=5_000)
    page.close()
    assert errors == []
