"""Real-browser test of the course's website (``make test-site``, or ``-m browser``; not in ``make test``).

Uses the site in ``runs/site/html/`` (``make site``; ``$COURSE_SITE_HTML`` names another one);
when there is none it builds one first with ``python -m course_lib site --profile smoke``
(minutes: it runs the smoke notebooks that have no fresh executed copy). Serves it on a free
local port and drives Debian's Chromium (``apt-get install chromium``) with Playwright for
Python (``pip install -e '.[browser]'``). Every page must load with no console error, no failed
or off-site request, no missing image and no broken internal link, and its math must be
typeset; a slider of every embedded explorer must change the image shown. A screenshot of each
page, and of each explorer before and after its slider moved, goes to ``runs/browser/site/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("COURSE_SITE_HTML", ROOT / "runs" / "site" / "html"))
SHOTS = ROOT / "runs" / "browser" / "site"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BUILD_TIMEOUT_S = 1800


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """(base URL, site.json) of a built site served on 127.0.0.1."""
    pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]' (Playwright for Python)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if not (SITE / "site.json").is_file():
        if "COURSE_SITE_HTML" in os.environ:
            pytest.fail(f"{SITE} holds no built site (site.json)")
        pytest.importorskip("myst_nb", reason="pip install -e '.[site]' (Sphinx, MyST-NB, MathJax) or make site")
        done = subprocess.run([sys.executable, "-m", "course_lib", "site", "--profile", "smoke"], cwd=ROOT,
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
                              env={**os.environ, "MPLBACKEND": "Agg"})
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((SITE / "site.json").read_text(encoding="utf-8"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", manifest
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url: str):
    """A page that records console errors, page errors, failed, off-site and 4xx/5xx requests."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.problems = []
    host = urlsplit(url).netloc

    def on_console(msg):
        if msg.type == "error":
            page.problems.append(f"console error: {msg.text} ({msg.location.get('url')})")

    def on_request(request):
        if urlsplit(request.url).scheme in ("http", "https") and urlsplit(request.url).netloc != host:
            page.problems.append(f"off-site request: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("request", on_request)
    page.on("response", lambda r: page.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    return page


MATH_DONE = """() => !window.MathJax || !window.MathJax.startup ||
    window.MathJax.startup.promise.then(() => true)"""

IMAGES = """() => Array.from(document.images).map(img => ({src: img.getAttribute('src'),
    ok: img.complete && img.naturalWidth > 0}))"""


def test_every_page_loads_with_its_images_links_and_math_and_nothing_from_elsewhere(site, browser):
    base, manifest = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = manifest["pages"]
    assert pages[0] == "index.html" and len(pages) == 1 + len(manifest["notebooks"])
    page = _open(browser, base)
    internal: set[str] = set()
    try:
        for name in pages:
            page.goto(base + name, wait_until="load")
            page.wait_for_load_state("networkidle")
            page.evaluate(MATH_DONE)
            # images that load lazily or were added by the explorers' script: scroll through the page
            page.evaluate("() => new Promise(done => { let y = 0; const step = () => { window.scrollTo(0, y);"
                          " y += 800; if (y < document.body.scrollHeight + 800) setTimeout(step, 10);"
                          " else { window.scrollTo(0, 0); done(); } }; step(); })")
            page.wait_for_load_state("networkidle")
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=30_000)
            broken = [i["src"] for i in page.evaluate(IMAGES) if not i["ok"]]
            assert not broken, f"{name}: images that did not load: {broken}"
            if name != "index.html":
                assert page.locator("article img").count() > 0 or page.locator(".course-explorer").count() > 0, \
                    f"{name}: no figure at all"
                assert page.locator("mjx-container").count() > 0, f"{name}: no typeset math"
                assert page.locator("text=Math input error").count() == 0, f"{name}: a formula failed"
                assert page.locator("div.admonition.course-page-info").count() == 1, f"{name}: no page header"
            hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href], link[href]'))"
                                  ".map(a => a.href)")
            internal |= {h.split("#")[0] for h in hrefs if h.startswith(base)}
            page.screenshot(path=str(SHOTS / f"{Path(name).stem}.png"))
        page.goto(base + "search.html?q=capacity")  # the search works offline too
        page.wait_for_selector("#search-results >> text=/Search finished, found [1-9]/", timeout=60_000)
        page.screenshot(path=str(SHOTS / "search.png"))
        for url in sorted(internal):  # every internal link and file the pages point to answers
            response = page.request.get(url)
            assert response.status == 200, f"broken internal link: {url} ({response.status})"
        assert not page.problems, "\n".join(page.problems)
    finally:
        page.close()
    unlinked = [name for name in pages[1:] if base + name not in internal]
    assert not unlinked, f"pages that no page links to: {unlinked}"


def test_exercises_are_solved_marked_and_link_to_the_student_version(site, browser):
    base, manifest = site
    with_exercises = [n for n in manifest["notebooks"] if n["exercises"]]
    assert with_exercises
    page = _open(browser, base)
    try:
        for nb in with_exercises:
            page.goto(base + nb["stem"] + ".html")
            cells = page.locator("div.cell.tag_exercise")
            assert cells.count() == nb["exercises"], nb["stem"]
            if nb["unsolved_exercises"] == 0:
                assert "### BEGIN SOLUTION" in cells.first.inner_text()
            notes = page.locator("div.admonition.course-exercise")
            assert notes.count() == nb["exercises"]
            assert notes.first.locator("a[href^='https://colab.research.google.com/']").count() == 1
            download = notes.first.locator("a.download").first.get_attribute("href")
            response = page.request.get(urljoin(page.url, download))
            assert response.status == 200 and b'"variant": "student"' in response.body()
        assert not page.problems, "\n".join(page.problems)
    finally:
        page.close()


def _decoded_view(explorer, index=1):
    return explorer.locator(".cx-viewport").nth(index)


def test_a_slider_of_every_embedded_explorer_changes_the_image(site, browser):
    base, manifest = site
    explorers = manifest["explorers"]
    assert not manifest["explorer_problems"], manifest["explorer_problems"]
    on_the_site = {n["stem"] for n in manifest["notebooks"]}
    from course_lib.cli.site import EXPLORERS

    assert {e["notebook"] for e in explorers} == set(EXPLORERS) & on_the_site
    assert all(e["images"] >= 1 and e["bytes"] > 0 for e in explorers)
    page = _open(browser, base)
    try:
        for e in explorers:
            page.goto(f"{base}{e['notebook']}.html")
            root = page.locator(f"#explorer-{e['key']}")
            root.scroll_into_view_if_needed()
            page.wait_for_selector(f"#explorer-{e['key']}[data-ready='1']")
            kind = json.loads(root.locator("script[type='application/json']").text_content())["kind"]
            if kind == "traversal":
                # the first latent that is switched on for the start image, moved to the end of its range
                row = root.locator(".cx-slider:not(.cx-dead)").first
                slider, view = row.locator("input[type=range]"), _decoded_view(root)
                page.wait_for_function("el => el.querySelector('img').complete", arg=view.element_handle())
                before, frame_before = view.screenshot(), view.get_attribute("data-frame")
                root.screenshot(path=str(SHOTS / f"explorer-{e['key']}-before.png"))
                slider.focus()
                page.keyboard.press("End")
                page.wait_for_function("([el, f]) => el.getAttribute('data-frame') !== f && "
                                       "el.querySelector('img').complete",
                                       arg=[view.element_handle(), frame_before])
                after, frame_after = view.screenshot(), view.get_attribute("data-frame")
                assert row.locator("output").inner_text().strip() == "+3.00"
            else:
                slider, img = root.locator("input[type=range]"), root.locator("img.cx-grid")
                page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
                before, frame_before = img.screenshot(), img.get_attribute("src")
                root.screenshot(path=str(SHOTS / f"explorer-{e['key']}-before.png"))
                slider.focus()
                page.keyboard.press("Home")
                page.wait_for_function("([el, s]) => el.getAttribute('src') !== s && el.complete && "
                                       "el.naturalWidth > 0", arg=[img.element_handle(), frame_before])
                after, frame_after = img.screenshot(), img.get_attribute("src")
                assert root.get_attribute("data-state") == "0"
            root.screenshot(path=str(SHOTS / f"explorer-{e['key']}-after.png"))
            assert frame_after != frame_before, e["key"]
            assert after != before, f"{e['key']}: the slider moved but the pixels shown did not change"
        assert not page.problems, "\n".join(page.problems)
    finally:
        page.close()


def test_the_site_is_small_offline_and_checked(site):
    _, manifest = site
    assert manifest["bytes"] < 50_000_000, f"{manifest['bytes'] / 1e6:.1f} MB"
    assert manifest["broken"] == [] and manifest["external"] == []
    from course_lib.cli.site import check_site

    check = check_site(SITE)
    assert check.ok, check.broken[:10] + check.external[:10]
