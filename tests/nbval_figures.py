"""pytest plugin (loaded with ``-p tests.nbval_figures``, see pyproject.toml): a notebook cell run
by nbval fails when one of its outputs is a matplotlib figure shown only as text.

A figure left as a cell's value renders as an image only if some formatter turns it into a PNG;
a bare ``matplotlib.figure.Figure`` made without pyplot's inline backend (JupyterLab with
``MPLBACKEND=Agg``, papermill, nbval) shows the text ``<Figure size 900x300 with 2 Axes>``.
"""

from __future__ import annotations

import re

import pytest

_FIGURE_TEXT = re.compile(r"^<(matplotlib\.figure\.)?\w*Figure size [\d.]+x[\d.]+ with \d+ Axes>")


def figures_shown_as_text(outputs) -> list[str]:
    """The text of every output that is a figure without an image next to it."""
    found = []
    for out in outputs or []:
        data = out.get("data") or {}
        text = data.get("text/plain", "")
        if isinstance(text, list):
            text = "".join(text)
        if _FIGURE_TEXT.match(text.strip()) and not any(k.startswith("image/") for k in data):
            found.append(text.strip())
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.passed:
        return
    shown = figures_shown_as_text(getattr(item, "test_outputs", None))
    if shown:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid}: a figure is shown as text, not as an image: {shown[0]} "
                           f"(build it with course_lib.viz.figure(), which renders in any backend)")
