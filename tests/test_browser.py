"""Real-browser test of notebook 03's latent explorer (``make test-browser``; not in ``make test``).

Starts JupyterLab (token-less, on a free local port, in a temporary folder holding a copy of
``notebooks/03_beta_vae.ipynb``, with ``COURSE_PROFILE=smoke``), drives Debian's Chromium
(``apt-get install chromium``) with Playwright for Python (``pip install -e '.[browser]'``; no
browser download: the system Chromium is used), runs every cell, drags a latent slider and
checks that the decoded image changed. Screenshots go to ``runs/browser/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03_beta_vae.ipynb"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_S = 900  # the smoke profile runs in seconds on an idle machine; CI machines are shared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode} before it answered:\n{tail}")
        try:
            with urllib.request.urlopen(url + "api/status", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


def _lab_settings(folder: Path) -> None:
    """Render every cell (no windowing) and ask nothing about news, so the page is predictable."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    }
    for rel, value in settings.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture
def lab(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]' (Playwright for Python)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if not NOTEBOOK.exists():
        pytest.skip(f"{NOTEBOOK} is missing: build it with python -m course_lib build")
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    _lab_settings(tmp_path / "settings")
    port = _free_port()
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_RUNS": str(tmp_path / "runs"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("MPLBACKEND", None)
    log_path = tmp_path / "jupyterlab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={work}", "--LabApp.news_url=", "--ServerApp.open_browser=False"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_server(url, proc, log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _explorer_output(page):
    """The output area of the latent explorer: the one with the 'back to μ(x)' button."""
    return page.locator(".jp-OutputArea-output").filter(has=page.locator("button", has_text="back to μ(x)")).first


def test_latent_slider_changes_the_image_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright

    shots = ROOT / "runs" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab + "lab/tree/" + NOTEBOOK.name, timeout=180_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=180_000)
            page.wait_for_selector("#jp-main-statusbar >> text=/Idle/", timeout=180_000)
            page.screenshot(path=str(shots / "03_opened.png"))

            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            # the last code cell prints the notebook's total time
            page.wait_for_selector("text=/whole notebook \\d+ s/", timeout=RUN_TIMEOUT_S * 1000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] "
                                  ":text('Traceback')")
            assert errors.count() == 0, "a cell raised an error; see runs/browser/03_after_run.png"

            out = _explorer_output(page)
            out.scroll_into_view_if_needed()
            images = out.locator("img")
            images.nth(1).wait_for(timeout=60_000)  # [0]: the input x, [1]: the decoded z
            decoded = images.nth(1)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=decoded.element_handle())
            page.screenshot(path=str(shots / "03_after_run.png"))
            src_before = decoded.get_attribute("src")
            pixels_before = decoded.screenshot(path=str(shots / "03_decoded_before.png"))

            # drag the handle of the first latent's slider to the right end of its track
            handle = out.locator(".widget-slider .noUi-handle").first
            track = out.locator(".widget-slider .noUi-target").first
            hb, tb = handle.bounding_box(), track.bounding_box()
            page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
            page.mouse.down()
            page.mouse.move(tb["x"] + tb["width"] + 20, hb["y"] + hb["height"] / 2, steps=10)
            page.mouse.up()
            page.wait_for_function(
                "([img, before]) => img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0",
                arg=[decoded.element_handle(), src_before], timeout=60_000)
            src_after = decoded.get_attribute("src")
            pixels_after = decoded.screenshot(path=str(shots / "03_decoded_after.png"))
            page.screenshot(path=str(shots / "03_after_slider.png"))
            readout = out.locator(".widget-readout").first.inner_text()
        finally:
            browser.close()
    assert src_after != src_before
    assert pixels_after != pixels_before, "the image source changed but the pixels shown did not"
    assert float(readout) > 2.9, f"the slider should sit at its right end (3.00), it reads {readout}"
