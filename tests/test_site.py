"""The pure parts of the site builder (``course_lib/site.py``): the freshness rule, the README's
course map, page preparation (exercises, widgets, explorers), the link and offline checks, and
the explorers' sizes. No Sphinx, no model, no browser: a few seconds. The built site itself is
checked in a real browser by ``tests/test_site_browser.py`` (``-m browser``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from course_lib.cli import site

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------- freshness rule

OK_ROW = {"name": "01_x", "status": "ok", "parameters": {"PROFILE": "quick"}}


def test_a_fresh_copy_is_newer_than_its_source_ok_and_run_without_parameters():
    assert site.stale_reason(OK_ROW, executed_mtime=200.0, source_mtime=100.0, profile="quick") is None


@pytest.mark.parametrize("row, executed, source, words", [
    (OK_ROW, None, 100.0, "no executed copy"),
    (None, 200.0, 100.0, "not in the folder's summary.json"),
    ({**OK_ROW, "status": "failed", "error": "ValueError: x"}, 200.0, 100.0, "failed (ValueError: x)"),
    ({**OK_ROW, "parameters": {"PROFILE": "quick", "SEED": 1}}, 200.0, 100.0, "extra parameters (SEED=1)"),
    ({**OK_ROW, "parameters": {"PROFILE": "smoke"}}, 200.0, 100.0, "profile 'smoke'"),
    (OK_ROW, 100.0, 100.0, "older than its source"),
    (OK_ROW, 50.0, 100.0, "older than its source"),
])
def test_every_reason_for_not_reusing_an_executed_copy(row, executed, source, words):
    reason = site.stale_reason(row, executed, source, "quick")
    assert reason is not None and words in reason


SOURCE = '''# %% [markdown]
# # 01 · A tiny notebook

# %% tags=["parameters"]
PROFILE = None

# %%
STEPS = {"smoke": 2, "quick": 20}[PROFILE or "quick"]

# %% [markdown]
# ### Exercise 1

# %%
def double(x):
    ### BEGIN SOLUTION
    # HINT: multiply by two
    return 2 * x
    ### END SOLUTION

# %%
print(double(21))
'''


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "01_tiny.py").write_text(SOURCE, encoding="utf-8")
    return root


def _executed(root: Path, runs: Path, variant: str, profile="quick", row=None, edit=None) -> Path:
    """Write runs/<profile>/01_tiny.ipynb (the given variant, with an output) and summary.json."""
    from course_lib.cli.build import convert

    solution, student = convert(root / "solutions" / "01_tiny.py", root)
    nb = json.loads((solution if variant == "solution" else student).decode())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "print(" in "".join(cell["source"]):
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    if edit:
        edit(nb)
    folder = runs / profile
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "01_tiny.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    summary = {"profile": profile, "notebooks": [row or {"name": "01_tiny", "status": "ok", "seconds": 1.5,
                                                           "parameters": {"PROFILE": profile},
                                                           "started": "2026-01-01 10:00:00 UTC"}]}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    later = time.time() + 10
    os.utime(path, (later, later))
    return path


@pytest.mark.parametrize("variant", ["student", "solution"])
def test_find_executions_reuses_a_fresh_copy_of_either_variant(tmp_path, variant):
    root = _repo(tmp_path)
    _executed(root, tmp_path / "runs", variant)
    (ex,) = site.find_executions(root, tmp_path / "runs", "quick")
    assert ex.fresh and ex.reason == "" and ex.variant == variant
    assert ex.seconds == 1.5 and ex.started.startswith("2026-01-01")


def test_a_copy_older_than_its_source_or_of_another_version_of_it_is_stale(tmp_path):
    root = _repo(tmp_path)
    path = _executed(root, tmp_path / "runs", "student")
    os.utime(path, (1_000, 1_000))
    (ex,) = site.find_executions(root, tmp_path / "runs", "quick")
    assert not ex.fresh and ex.reason == "older than its source"

    def older_version(nb):  # executed from a notebook built before the source changed
        nb["cells"][-1]["source"] = "print(double(20))"
    _executed(root, tmp_path / "runs", "student", edit=older_version)
    (ex,) = site.find_executions(root, tmp_path / "runs", "quick")
    assert not ex.fresh and "another version of its source (1 code cells differ)" in ex.reason


def test_a_missing_copy_or_one_of_another_profile_is_not_reused(tmp_path):
    root = _repo(tmp_path)
    (ex,) = site.find_executions(root, tmp_path / "runs", "quick")
    assert not ex.fresh and ex.reason == "no executed copy"
    _executed(root, tmp_path / "runs", "student", profile="smoke")
    (ex,) = site.find_executions(root, tmp_path / "runs", "smoke")
    assert ex.fresh
    (ex,) = site.find_executions(root, tmp_path / "runs", "quick")
    assert not ex.fresh


# ------------------------------------------------------------------------- README

def test_the_readme_course_map_gives_every_notebook_its_page_seeds_and_colab_link():
    course_map = site.parse_readme((ROOT / "README.md").read_text(encoding="utf-8"))
    stems = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.py"))
    assert [r["stem"] for r in course_map.rows] == stems
    assert course_map.title and course_map.intro
    for row in course_map.rows:
        assert row["colab"].startswith("https://colab.research.google.com/github/")
        assert row["colab"].endswith(f"notebooks/{row['stem']}.ipynb")
        cited = site.seed_ids(row["seeds"])
        assert cited and all(s in course_map.seeds for s in cited), (row["stem"], row["seeds"])
    assert set(course_map.seeds) == {"000", "001", "002", "003", "004"}
    assert all(s["file"].endswith(".txt") and s["about"] for s in course_map.seeds.values())
    assert site.repository_url(course_map).startswith("https://github.com/")


def test_a_readme_without_a_course_map_still_gives_a_home_page():
    course_map = site.parse_readme("# A title\n\nSome words.\n\n## Other\n\ntext\n")
    assert course_map.title == "A title" and course_map.intro == "Some words."
    assert course_map.rows == [] and course_map.seeds == {}
    assert site.colab_url(course_map, "01_x").endswith("/notebooks/01_x.ipynb")
    assert site.seed_ids("003 (§1.1), 000") == ["003", "000"]


# ------------------------------------------------------------------------- pages

def _info(variant="student"):
    return site.PageInfo(stem="01_tiny", profile="quick", variant=variant, started="2026-01-01 10:00 UTC",
                         seconds=12.0, fresh=True, reason="", seeds=[{"id": "003", "file": "003_ab.txt",
                                                                       "about": "AE, VAE"}],
                         seed_note="003 (§1.1)", colab="https://colab.research.google.com/x.ipynb",
                         download="downloads/01_tiny.ipynb")


def _pair(root):
    from course_lib.cli.build import convert

    solution, student = convert(root / "solutions" / "01_tiny.py", root)
    return json.loads(solution.decode()), json.loads(student.decode())


def _widget_output(model_id):
    return {"output_type": "display_data", "metadata": {},
            "data": {site.WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0},
                     "text/plain": "HBox(children=...)"}}


def _with_widgets(nb):
    nb["metadata"]["widgets"] = {site.WIDGET_STATE: {"state": {
        "explorer": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_slider"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {}},
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_progress"]}},
        "progress": {"model_name": "FloatProgressModel", "state": {}}}}}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[-1]["outputs"] = [_widget_output("explorer"), _widget_output("bar"), _widget_output("closed"),
                           {"output_type": "stream", "name": "stdout", "text": "42\n"}]
    return nb


def _explorer(anchor=r"print\(double"):
    return site.ExplorerSpec(key="01-demo", notebook="01_tiny", anchor=anchor, title="demo",
                             caption="**Demo explorer**", spec={"kind": "stages", "note": "</script>"},
                             files=[], images=0, frames=0, bytes=0, model="m")


def _text(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_a_student_run_becomes_a_page_with_solved_marked_exercises_and_no_widgets(tmp_path):
    root = _repo(tmp_path)
    solution, student = _pair(root)
    executed = _with_widgets(json.loads(json.dumps(student)))
    page, report = site.prepare_page(executed, solution, student, _info("student"), [_explorer()])
    texts = [_text(c) for c in page["cells"]]
    # the header follows the title, cites the seed and links to the student version
    assert texts[0].startswith("# 01 · A tiny notebook")
    assert "**003** `003_ab.txt` (AE, VAE)" in texts[1] and "Colab" in texts[1]
    assert "{download}`download it <downloads/01_tiny.ipynb>`" in texts[1]
    assert "student notebook executed headless in the `quick` profile" in texts[1]
    # the exercise is solved, tagged and introduced by a note that explains the checker's output
    (exercise,) = [c for c in page["cells"] if "exercise" in c.get("metadata", {}).get("tags", [])]
    assert "return 2 * x" in _text(exercise) and "NotImplementedError" not in _text(exercise)
    note = texts[page["cells"].index(exercise) - 1]
    assert "Exercise 1, shown solved" in note and "not attempted" in note
    assert report["exercises"] == 1 and report["unsolved_exercises"] == 0 and report["mismatched_cells"] == 0
    # widgets: the explorer becomes a note, the progress bar and the closed widget disappear
    outputs = [c for c in page["cells"] if c["cell_type"] == "code"][-1]["outputs"]
    assert [list(o.get("data", {"stream": 1})) for o in outputs] == [["text/html"], ["stream"]]
    assert "needs a running Python kernel" in outputs[0]["data"]["text/html"]
    assert "A precomputed version of it follows" in outputs[0]["data"]["text/html"]
    assert report["widgets_replaced"] == 1 and report["progress_bars_dropped"] == 2
    # the explorer follows its anchor cell, as raw HTML whose JSON cannot close its script
    explorer_cell = texts[-1]
    assert "```{raw} html" in explorer_cell and 'data-explorer="01-demo"' in explorer_cell
    assert "<\\/script>" in explorer_cell and report["explorers"] == ["01-demo"]
    assert "widgets" not in page["metadata"] and all(c.get("id") for c in page["cells"])


def test_a_solution_run_needs_no_checker_note_and_an_unplaced_explorer_goes_last(tmp_path):
    root = _repo(tmp_path)
    solution, student = _pair(root)
    page, report = site.prepare_page(json.loads(json.dumps(solution)), solution, student, _info("solution"),
                                     [_explorer(anchor="no such code")])
    texts = [_text(c) for c in page["cells"]]
    (exercise,) = [c for c in page["cells"] if "exercise" in c.get("metadata", {}).get("tags", [])]
    note = texts[page["cells"].index(exercise) - 1]
    assert "shown solved" in note and "not attempted" not in note
    assert "solution notebook executed" in texts[1]
    assert texts[-1].startswith("## Explorer: demo") and report["explorers"] == ["01-demo"]


def test_a_stub_from_another_version_of_the_source_is_shown_as_it_ran(tmp_path):
    root = _repo(tmp_path)
    solution, student = _pair(root)
    executed = json.loads(json.dumps(student))
    (cell,) = [c for c in executed["cells"] if "NotImplementedError" in _text(c)]
    cell["source"] = _text(cell).replace("multiply by two", "times two")
    page, report = site.prepare_page(executed, solution, student, _info(), [])
    assert report["unsolved_exercises"] == 1 and report["mismatched_cells"] == 1
    assert any("older version of the notebook" in _text(c) for c in page["cells"])


def test_the_home_page_has_the_course_map_seeds_explorers_and_a_toctree():
    course_map = site.parse_readme((ROOT / "README.md").read_text(encoding="utf-8"))
    pages = [{"stem": r["stem"], "title": r["topic"], "colab": r["colab"],
              "download": f"downloads/{r['stem']}.ipynb"} for r in course_map.rows]
    spec = _explorer()
    spec.bytes, spec.images, spec.frames = 123_456, 2, 390
    text = site.home_markdown(course_map, pages, "quick", [spec], "2026-01-01 10:00 UTC", "https://github.com/x/y")
    assert text.startswith(f"# {course_map.title}")
    assert "## The course map" in text and "## Seed documents" in text
    for page in pages:
        assert f"]({page['stem']}.ipynb)" in text and f"\n{page['stem']}\n" in text
    assert "| 2 | 390 | 123 kB |" in text and "```{toctree}" in text
    assert "http" not in text.replace("https://colab.research.google.com", "").replace("https://github.com/x/y", "")


# ------------------------------------------------------------------------- explorers' settings

@pytest.mark.parametrize("stem, names", [
    ("04_capacity", ["SEED", "NUM_LATENTS", "GAMMA", "C_START", "C_MAX", "C_STEPS", "STEPS", "BATCH_SIZE", "LR"]),
    ("07_vaegan_idgan", ["SEED", "NUM_LATENTS", "BETA", "NOISE_DIM", "LAMBDA", "R1", "IDGAN_INIT", "IDGAN_STEPS",
                         "IDGAN_LR", "BATCH_SIZE"]),
])
def test_the_notebooks_still_define_the_settings_their_explorers_read(stem, names):
    from course_lib.cli.build import convert

    solution, _ = convert(ROOT / "solutions" / f"{stem}.py", ROOT)
    for profile in ("smoke", "quick"):
        settings = site.notebook_settings(json.loads(solution.decode()), profile)
        missing = [n for n in names if n not in settings]
        assert not missing, f"{stem} ({profile}) no longer defines {missing}: update course_lib/site.py"
        assert settings["PROFILE"] == profile


def test_the_explorers_anchor_cells_exist_in_their_notebooks():
    import inspect
    import re

    sources = {stem: (ROOT / "solutions" / f"{stem}.py").read_text(encoding="utf-8") for stem in site.EXPLORERS}
    anchors = re.findall(r'r"((?:widgets|07_)[^"]+)"', inspect.getsource(site))
    assert len(anchors) >= 4
    for anchor in anchors:
        assert any(re.search(anchor, text) for text in sources.values()), f"no cell matches {anchor!r}"


def test_explorer_sizes_are_measured_from_the_files(tmp_path):
    (tmp_path / "_static" / "explorers").mkdir(parents=True)
    for name, size in (("a.png", 1000), ("b.png", 2500)):
        (tmp_path / "_static" / "explorers" / name).write_bytes(b"x" * size)
    spec = _explorer()
    spec.files = ["_static/explorers/a.png", "_static/explorers/b.png"]
    spec.frames = 12
    (row,) = site.explorer_sizes([spec], tmp_path)
    assert row["images"] == 2 and row["bytes"] == 3500 and row["kB"] == 3.5 and row["frames"] == 12
    assert site.MAX_SITE_BYTES == 50_000_000


def test_the_sphinx_settings_load_nothing_from_the_network():
    conf = site.sphinx_conf("T", "https://github.com/x/y")
    assert not conf["mathjax_path"].startswith(("http", "//")) and conf["nb_ipywidgets_js"] == {}
    assert conf["nb_execution_mode"] == "off"
    assert conf["mathjax3_config"]["options"]["enableMenu"] is False


# ------------------------------------------------------------------------- link and offline checks

def _page(path: Path, body: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><head></head><body>{body}</body></html>", encoding="utf-8")


def test_check_site_finds_broken_links_missing_images_and_anchors(tmp_path):
    _page(tmp_path / "index.html", '<a href="a.html#sec">a</a> <a href="gone.html">x</a> <img src="_images/no.png">'
                                   '<a href="a.html#nope">y</a> <a href="#top" id="top">t</a> <a href="sub/">s</a>')
    _page(tmp_path / "a.html", '<h2 id="sec">S</h2><a href="index.html">home</a><img src="_images/ok.png">')
    _page(tmp_path / "sub" / "index.html", '<a href="../a.html">a</a>')
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "ok.png").write_bytes(b"png")
    check = site.check_site(tmp_path)
    assert check.pages == 3 and check.external == []
    assert len(check.broken) == 3, check.broken
    assert any("gone.html" in b for b in check.broken) and any("no.png" in b for b in check.broken)
    assert any("no id 'nope'" in b for b in check.broken)
    assert not check.ok


def test_check_site_allows_hyperlinks_but_no_resource_from_another_host(tmp_path):
    _page(tmp_path / "index.html",
          '<a href="https://colab.research.google.com/x">Colab</a>'
          '<script src="https://cdn.jsdelivr.net/npm/require.js"></script>'
          '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=x">'
          '<img src="http://example.org/i.png"><div style="background: url(https://example.org/b.png)"></div>')
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex.js").write_text(
        'a="https://cdn.jsdelivr.net/npm/speech-rule-engine@4"; b="http://www.w3.org/2000/svg"')
    (tmp_path / "_static" / "x.js").write_text('load("https://unpkg.com/thing.js")')
    (tmp_path / "_static" / "s.css").write_text('@import "https://fonts.googleapis.com/x"; a{b:url(missing.woff)}')
    check = site.check_site(tmp_path)
    text = "\n".join(check.external)
    assert "colab" not in text
    for bad in ("require.js", "fonts.googleapis.com/css", "example.org/i.png", "example.org/b.png",
                "unpkg.com/thing.js", "fonts.googleapis.com/x"):
        assert bad in text, (bad, text)
    assert "speech-rule-engine" not in text and "w3.org" not in text
    assert any("missing.woff" in b for b in check.broken)
