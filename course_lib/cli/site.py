"""The course as a website: every notebook executed, readable and explorable without installing
anything (``make site``; ``python -m course_lib site``).

Command line::

    python -m course_lib site                      # profile quick: runs/quick/ -> runs/site/html/
    python -m course_lib site --profile smoke      # CI-speed check of the same pipeline
    python -m course_lib site --no-run             # never execute: fail if a copy is missing or stale
    python -m course_lib site --allow-stale        # use stale executed copies (marked as such)
    python -m course_lib site --runs DIR           # executed copies in DIR/<profile>/ (default runs/)

What it does, in order:

1. **Executed notebooks.** For each ``solutions/NN_topic.py`` it takes the executed copy
   ``runs/<profile>/NN_topic.ipynb`` when it is *fresh* (:func:`stale_reason`: the run is in
   ``summary.json`` with status ok, was run with no parameter but ``PROFILE``, and the copy is
   newer than its source ``solutions/NN_topic.py``). The others are executed with
   :func:`course_lib.cli.run.run_notebooks`, in their solution form (the site shows solutions), into
   the same folder, which merges their rows into its ``summary.json``.
2. **Explorers.** The ipywidgets explorers need a Python kernel; a static site has none. For the
   explorers that matter most, the builder decodes the images of a grid of slider values with
   the course's models and writes them as small grayscale PNG sprites (64×64 frames tiled); a
   short script (``site_assets/course-explorers.js``) shows the frame of the slider's value:

   - notebook 03, the latent explorer of the shipped β-VAE (``beta_vae-12000steps-seed13``):
     every latent over [−3, 3] in steps of 0.5, one latent at a time, from the posterior
     mean μ(x) of three start images;
   - notebook 04, "watch the factors appear": the traversal grid of the capacity models (absolute
     and hinge penalties) at every training stage that the notebook itself saved during its run
     in the chosen profile (``runs/checkpoints/04-capacity_vae-*.stages.pt``; the shipped
     ``capacity_vae`` has final weights and a history but no stage weights);
   - notebook 07, the same codes rendered by the two renderers, the β-VAE's decoder and ID-GAN's
     generator (the notebook's run's ID-GAN, whose frozen β-VAE is the shipped
     ``heldout_beta_vae-1500steps-seed0`` in the quick profile), every code dimension over
     [−3, 3], from three seen and one held-out start image.

   The other widget outputs become a note with a link to run the notebook.
3. **Pages.** Each executed notebook becomes one page: its prose, code, printed results and
   figures; a header that cites its seed documents (from the README's course map), says which
   run produced the page and links to the student version (Colab, or a download for JupyterLab);
   exercise cells in their solved form, marked as exercises. The home page is built from the
   README's title, introduction and course map.
4. **Sphinx + MyST-NB** (``pip install -e '.[site]'``) render the pages with the book theme, with
   no network: MathJax 3 comes from a Python package (``django-static-mathjax``) and is copied
   into the site, widget JavaScript from CDNs is switched off.
5. **Checks.** Every internal link and image of the built site must exist, no page may load a
   script, style sheet, font or image from another host (:func:`check_site`), and the site must
   stay under :data:`MAX_SITE_BYTES`. ``site.json`` in the site records what was built.

The pure parts (freshness rule, README parsing, page preparation, link checks, sizes) need
neither torch nor Sphinx and are tested in ``tests/test_site.py``; the real-browser test is
``tests/test_site_browser.py`` (``-m browser``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import html
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ASSETS = Path(__file__).resolve().parent / "site_assets"
#: The whole built site must stay below this many bytes (the issue asks for under 50 MB).
MAX_SITE_BYTES = 50 * 1000 * 1000
#: Where the site goes, under the runs folder: ``source/`` (generated Sphinx project),
#: ``html/`` (the site: open ``html/index.html``), ``doctrees/``, ``_execute/``.
SITE_DIR = "site"
#: MathJax 3, from the ``django-static-mathjax`` package: the single-file build with every TeX
#: extension, so nothing is fetched at view time.
MATHJAX_FILE = "tex-svg-full.js"
DEFAULT_REPOSITORY = "https://github.com/disentanglement-course/disentanglement-course"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
EXTRA = "site"


def _log(message: str) -> None:
    print(message, flush=True)


# =============================================================================== freshness


@dataclass
class Execution:
    """The executed copy of one notebook that the site uses (or would use)."""

    stem: str
    path: Path
    source: Path
    fresh: bool
    reason: str = ""              # why the copy is not fresh ("" when it is)
    variant: str | None = None    # "solution" or "student": which notebook was executed
    started: str | None = None
    seconds: float | None = None
    ran_now: bool = False         # executed by this build


def stale_reason(row: dict | None, executed_mtime: float | None, source_mtime: float,
                 profile: str) -> str | None:
    """Why an executed copy cannot be reused (None: it is fresh).

    Fresh means: the copy exists, its row in ``summary.json`` says ``ok``, it was run in
    ``profile`` with no other parameter, and the copy is newer than its source
    ``solutions/NN_topic.py`` (``*_mtime``: seconds since the epoch)."""
    if executed_mtime is None:
        return "no executed copy"
    if row is None:
        return "not in the folder's summary.json"
    if row.get("status") != "ok":
        return f"its run failed ({row.get('error') or 'no error recorded'})"
    parameters = dict(row.get("parameters") or {})
    ran_in = parameters.pop("PROFILE", profile)
    if ran_in != profile:
        return f"run in profile {ran_in!r}, not {profile!r}"
    if parameters:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(parameters.items()))
        return f"run with extra parameters ({shown})"
    if executed_mtime <= source_mtime:
        return "older than its source"
    return None


def summary_rows(folder: Path, profile: str) -> dict[str, dict]:
    """The rows of ``folder/summary.json`` by notebook name (empty when there is none, or it is
    of another profile)."""
    path = Path(folder) / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("profile") != profile:
        return {}
    defaults = {"parameters": data.get("parameters") or {}, "started": data.get("started")}
    return {row["name"]: {**defaults, **row} for row in data.get("notebooks", []) if "name" in row}


def _variant(path: Path) -> str | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (data.get("metadata", {}).get("course") or {}).get("variant")


def find_executions(root: Path, runs: Path, profile: str, stems=None) -> list[Execution]:
    """One :class:`Execution` per notebook source (or per stem of ``stems``), fresh or not."""
    from .build import convert, sources

    folder = Path(runs) / profile
    rows = summary_rows(folder, profile)
    found = []
    for source in sources(root):
        if stems and source.stem not in stems:
            continue
        path = folder / f"{source.stem}.ipynb"
        row = rows.get(source.stem)
        mtime = path.stat().st_mtime if path.is_file() else None
        reason = stale_reason(row, mtime, source.stat().st_mtime, profile)
        if reason is None:  # newer than its source, but was it executed from this version of it?
            different = code_mismatches(*_notebooks(path, *convert(source, root)))
            if different:
                reason = f"executed from another version of its source ({different} code cells differ)"
        found.append(Execution(
            stem=source.stem, path=path, source=source, fresh=reason is None, reason=reason or "",
            variant=_variant(path) if mtime is not None else None,
            started=(row or {}).get("started"), seconds=(row or {}).get("seconds")))
    return found


def _notebooks(executed: Path, solution: bytes, student: bytes) -> tuple[dict, dict, dict]:
    return (json.loads(Path(executed).read_text(encoding="utf-8")), json.loads(solution.decode("utf-8")),
            json.loads(student.decode("utf-8")))


def execute(root: Path, runs: Path, profile: str, stale: list[Execution], work: Path,
            log=_log) -> list[Execution]:
    """Run the solution notebooks of ``stale`` (generated from their sources into ``work``)
    with :func:`course_lib.cli.run.run_notebooks`; return them updated."""
    from . import run as runner
    from .build import convert

    work.mkdir(parents=True, exist_ok=True)
    paths = []
    for ex in stale:
        solution, _ = convert(ex.source, root)
        path = work / f"{ex.stem}.ipynb"
        path.write_bytes(solution)
        paths.append(path)
    # papermill warns about every parameter line that is not a plain literal (as `run` does, hush it)
    logging.getLogger("papermill.translators").setLevel(logging.ERROR)
    log(f"executing {len(paths)} notebook(s) in profile {profile}: "
        f"{', '.join(ex.stem for ex in stale)}")
    summary = runner.run_notebooks(paths, profile, out=runs, root=root, progress=False, log=log)
    by_name = {r.name: r for r in summary.results}
    for ex in stale:
        result = by_name.get(ex.stem)
        ex.ran_now = True
        if result is not None and result.status == "ok":
            ex.fresh, ex.reason = True, ""
            ex.variant, ex.started, ex.seconds = "solution", result.started, result.seconds
        else:
            ex.reason = f"its run failed ({result.error if result else 'not run'})"
    return stale


# =============================================================================== README


@dataclass
class CourseMap:
    """What the home page takes from the README."""

    title: str
    intro: str                      # Markdown between the title and the first section
    rows: list[dict]                # per notebook: number, stem, topic, seeds, colab, smoke, quick
    seeds: dict[str, dict]          # "003" -> {"file": "003_....txt", "about": "..."}
    seeds_text: str = ""            # the README's paragraph on the seed documents


_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)\)")
_SEED = re.compile(r"`(?P<file>(?P<id>\d{3})_[0-9a-f]+\.txt)`\s*\((?P<about>[^)]*)\)")


def _sections(text: str) -> dict[str, str]:
    """Level-2 sections of a Markdown text by title (the part before the first one: '')."""
    parts, title, lines = {}, "", []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            parts[title] = "\n".join(lines)
            title, lines = line[3:].strip(), []
        else:
            lines.append(line)
    parts[title] = "\n".join(lines)
    return parts


def parse_readme(text: str) -> CourseMap:
    """The title, introduction, course map (the table of ``## The notebooks``) and seed
    documents of the README. Missing parts are empty, never an error."""
    sections = _sections(text)
    head = sections.get("", "").strip().splitlines()
    title = next((line[2:].strip() for line in head if line.startswith("# ")), "The course")
    intro = "\n".join(line for line in head if not line.startswith("# ")).strip()
    notebooks = next((body for name, body in sections.items() if name.lower().startswith("the notebooks")), "")
    rows = []
    for line in notebooks.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"\d\d", cells[0]):
            continue
        topic = _LINK.search(cells[1])
        colab = None
        for cell in cells[2:]:
            links = re.findall(r"\]\((https://colab\.research\.google\.com/[^)\s]+)\)", cell)
            if links:
                colab = links[-1]
        stem = Path(topic.group("url")).stem if topic else None
        times = [c for c in cells[2:] if re.fullmatch(r"[\d.]+\s*s", c)]
        rows.append({"number": cells[0], "stem": stem,
                     "topic": topic.group("text") if topic else cells[1],
                     "seeds": cells[2] if len(cells) > 2 else "", "colab": colab,
                     "smoke": times[0] if times else "", "quick": times[1] if len(times) > 1 else ""})
    paragraph = ""
    for block in re.split(r"\n\s*\n", notebooks):
        if block.strip().startswith("Seed documents"):
            paragraph = " ".join(block.split())
    seeds = {m["id"]: {"file": m["file"], "about": m["about"]} for m in _SEED.finditer(paragraph)}
    return CourseMap(title=title, intro=intro, rows=rows, seeds=seeds, seeds_text=paragraph)


def seed_ids(text: str) -> list[str]:
    """The three-digit seed ids cited in a course-map cell such as ``'003 (§1.1)'``."""
    return re.findall(r"\b(\d{3})\b", text or "")


def repository_url(course_map: CourseMap) -> str:
    """The GitHub repository, read from a Colab link of the README (else the default)."""
    for row in course_map.rows:
        m = re.match(r"https://colab\.research\.google\.com/github/([^/]+/[^/]+)/", row.get("colab") or "")
        if m:
            return f"https://github.com/{m.group(1)}"
    return DEFAULT_REPOSITORY


def colab_url(course_map: CourseMap, stem: str) -> str:
    for row in course_map.rows:
        if row.get("stem") == stem and row.get("colab"):
            return row["colab"]
    repo = repository_url(course_map).replace("https://github.com/", "")
    return f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{stem}.ipynb"


# =============================================================================== pages


@dataclass
class PageInfo:
    """What the page header says about one notebook."""

    stem: str
    profile: str
    variant: str | None
    started: str | None
    seconds: float | None
    fresh: bool
    reason: str
    seeds: list[dict]           # [{"id", "file", "about"}]
    seed_note: str              # the course map's cell, e.g. "003 (§1.1)"
    colab: str
    download: str               # path of the student notebook, relative to the page


@dataclass
class ExplorerSpec:
    """One precomputed explorer: where it goes, its markup, and what it costs."""

    key: str
    notebook: str
    anchor: str                 # regular expression matched against code cells' source
    title: str
    caption: str                # Markdown above the explorer
    spec: dict                  # the JSON the script reads
    files: list[str]            # image files, relative to the site's root
    images: int                 # number of image files
    frames: int                 # number of 64×64 frames in them
    bytes: int
    model: str
    replaces_widget: bool = True
    source: str = ""            # the checkpoint(s) the images come from

    def markup(self) -> str:
        data = json.dumps(self.spec, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
        return (f'<div class="course-explorer" id="explorer-{self.key}" data-explorer="{self.key}">\n'
                f'<script type="application/json">{data}</script>\n'
                '<noscript>This explorer needs JavaScript.</noscript>\n</div>')


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _markdown_cell(text: str, cid: str) -> dict:
    return {"cell_type": "markdown", "id": cid, "metadata": {}, "source": text}


def _widget_kinds(nb) -> dict[str, str]:
    """model id -> 'progress' (a tqdm bar) or 'widget', for the widgets saved in the notebook."""
    state = ((nb.get("metadata", {}).get("widgets") or {}).get(WIDGET_STATE) or {}).get("state", {})
    kinds = {}
    progress = {mid for mid, m in state.items() if m.get("model_name") in ("FloatProgressModel", "IntProgressModel")}
    for mid, model in state.items():
        children = [str(c).replace("IPY_MODEL_", "") for c in (model.get("state") or {}).get("children", [])]
        kinds[mid] = "progress" if mid in progress or any(c in progress for c in children) else "widget"
    return kinds


def header_markdown(info: PageInfo) -> str:
    """The note under a page's title: seeds, the run that produced the page, the student version."""
    lines = [":::{admonition} About this page", ":class: course-page-info", ""]
    if info.seeds:
        cited = "; ".join(f"**{s['id']}** `{s['file']}` ({s['about']})" if s.get("file") else f"**{s['id']}**"
                          for s in info.seeds)
        lines.append(f"**Seed documents reproduced** ({info.seed_note}): {cited}.")
        lines.append("")
    which = {"solution": "solution notebook", "student": "student notebook"}.get(info.variant or "", "notebook")
    when = f" on {info.started}" if info.started else ""
    took = f" ({info.seconds:.0f} s)" if info.seconds is not None else ""
    lines.append(f"**Outputs:** every printed result and figure below comes from the {which} executed "
                 f"headless in the `{info.profile}` profile{when}{took}; the page itself runs no code.")
    if not info.fresh:
        lines.append(f"*This executed copy is stale: {info.reason}.*")
    lines += ["", (f"**Run it yourself**, with the exercises to fill in: [open the student notebook in "
                   f"Colab]({info.colab}), or {{download}}`download it <{info.download}>` for JupyterLab "
                   "(in a clone of the repository: `make lab`)."), ":::"]
    return "\n".join(lines)


def exercise_markdown(info: PageInfo, number: int, solved: bool = True) -> str:
    if not solved:
        return "\n".join([
            f":::{{admonition}} Exercise {number}", ":class: course-exercise", "",
            ("This page comes from a run of an older version of the notebook, so the exercise is shown "
             "as the student stub that ran. "
             f"[Try it in Colab]({info.colab}) or {{download}}`download the student notebook <{info.download}>`."),
            ":::"])
    lines = [f":::{{admonition}} Exercise {number}, shown solved", ":class: course-exercise", "",
             ("In the student notebook this cell is a stub (`# TODO:` and a hint); the lines between "
              "`### BEGIN SOLUTION` and `### END SOLUTION` are what you write, and the checker that "
              "follows says what is right or wrong. "
              f"[Try it in Colab]({info.colab}) or {{download}}`download the student notebook <{info.download}>`.")]
    if info.variant == "student":
        lines += ["", ("The outputs on this page come from the student notebook, in which this exercise "
                       "is still a stub: the checker reports it as not attempted and goes on with the "
                       "course's reference implementation, which computes what the solution shows.")]
    lines.append(":::")
    return "\n".join(lines)


WIDGET_NOTE = ('<div class="course-widget-note">An interactive explorer (ipywidgets) was here: it needs '
               'a running Python kernel. Run the notebook to use it ({links}).{extra}</div>')


def exercise_pairs(solution: dict, student: dict) -> dict[str, str]:
    """Student source -> solution source of every exercise cell (the cells whose two generated
    versions differ; both notebooks come from one source, so their cells correspond in order)."""
    pairs = {}
    for sol, stu in zip(solution.get("cells", []), student.get("cells", [])):
        if sol.get("cell_type") == "code" and _source(sol) != _source(stu):
            pairs[_source(stu)] = _source(sol)
    return pairs


def _has_region(src: str) -> bool:
    from .build import BEGIN_RE

    return any(BEGIN_RE.match(line) for line in src.split("\n"))


def _is_stub(src: str) -> bool:
    from .build import STUB_MESSAGE

    return STUB_MESSAGE in src or bool(re.search(r"^[ \t]*# TODO: ", src, re.MULTILINE))


def code_mismatches(executed: dict, solution: dict, student: dict) -> int:
    """How many code cells of ``executed`` (papermill's injected parameters aside) are in neither
    generated version of the current source, plus the difference in the number of code cells:
    0 when the copy was executed from the current source."""
    known = {_source(c) for c in solution.get("cells", []) + student.get("cells", []) if c.get("cell_type") == "code"}
    ran = [_source(c) for c in executed.get("cells", []) if c.get("cell_type") == "code"
           and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    expected = sum(c.get("cell_type") == "code" for c in solution.get("cells", []))
    return sum(src not in known for src in ran) + abs(len(ran) - expected)


def prepare_page(executed: dict, solution: dict, student: dict, info: PageInfo,
                 explorers: list[ExplorerSpec] = ()) -> tuple[dict, dict]:
    """The notebook a page is rendered from, and a report of what was changed.

    ``executed`` is the executed copy (solution or student form), ``solution`` and ``student``
    the two generated notebooks of the same source (no outputs), all as nbformat dicts. Exercise
    cells (those whose solution and student sources differ, matched by content) get the
    solution's source, the tag ``exercise`` and a note before them; widget outputs are replaced by
    a note, or followed by a
    precomputed explorer whose ``anchor`` matches the cell; a header cell follows the title.
    """
    nb = copy.deepcopy(executed)
    meta = nb.setdefault("metadata", {})
    meta.pop("widgets", None)
    meta.pop("papermill", None)
    solved = exercise_pairs(solution, student)
    known = {_source(c) for c in solution.get("cells", []) + student.get("cells", []) if c.get("cell_type") == "code"}
    kinds = _widget_kinds(executed)
    links = f'<a href="{html.escape(info.colab)}">Colab</a>, or JupyterLab with <code>make lab</code>'
    report = {"exercises": 0, "unsolved_exercises": 0, "widgets_replaced": 0, "progress_bars_dropped": 0,
              "explorers": [], "mismatched_cells": 0}
    placed: set[str] = set()
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            src = _source(cell)
            injected = "injected-parameters" in cell.get("metadata", {}).get("tags", [])
            if not injected and src not in known:
                report["mismatched_cells"] += 1
            if src in solved or _has_region(src) or _is_stub(src):
                report["exercises"] += 1
                shown_solved = src in solved or _has_region(src)
                if src in solved:
                    cell["source"] = solved[src]
                elif not shown_solved:  # a stub of another version of the source: shown as it ran
                    report["unsolved_exercises"] += 1
                cells.append(_markdown_cell(exercise_markdown(info, report["exercises"], shown_solved),
                                            f"site-exercise-{report['exercises']}"))
                tags = cell.setdefault("metadata", {}).setdefault("tags", [])
                if "exercise" not in tags:
                    tags.append("exercise")
            mine = [e for e in explorers if e.key not in placed and re.search(e.anchor, src)]
            outputs = []
            for out in cell.get("outputs", []):
                data = out.get("data") or {}
                if WIDGET_VIEW not in data:
                    outputs.append(out)
                    continue
                model_id = data[WIDGET_VIEW].get("model_id")
                if kinds.get(model_id) != "widget":  # a progress bar, or a widget closed before saving
                    report["progress_bars_dropped"] += 1
                    continue
                report["widgets_replaced"] += 1
                extra = (" A precomputed version of it follows, which works in this page."
                         if any(e.replaces_widget for e in mine) else "")
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": WIDGET_NOTE.format(links=links, extra=extra)}})
            if "outputs" in cell:
                cell["outputs"] = outputs
            cells.append(cell)
            for e in mine:
                placed.add(e.key)
                report["explorers"].append(e.key)
                cells.append(_markdown_cell(f"{e.caption}\n\n```{{raw}} html\n{e.markup()}\n```\n",
                                            f"site-{e.key}"))
        else:
            cells.append(cell)
        if index == 0 and cell.get("cell_type") == "markdown":
            cells.append(_markdown_cell(header_markdown(info), "site-header"))
    for e in explorers:  # an anchor that matched no cell: the explorer goes at the end
        if e.key not in placed:
            report["explorers"].append(e.key)
            cells.append(_markdown_cell(f"## Explorer: {e.title}\n\n{e.caption}\n\n```{{raw}} html\n"
                                        f"{e.markup()}\n```\n", f"site-{e.key}"))
    nb["cells"] = cells
    return nb, report


def home_markdown(course_map: CourseMap, pages: list[dict], profile: str, explorers: list[ExplorerSpec],
                  built: str, repository: str) -> str:
    """The home page (index.md): the README's title, introduction and course map, the seed
    documents, and how the site was made."""
    lines = [f"# {course_map.title}", "", course_map.intro, "", "## The course map", "",
             "| # | notebook | seed documents | quick profile (2-core CPU) | run it |",
             "|---|---|---|---|---|"]
    rows = {r["stem"]: r for r in course_map.rows if r.get("stem")}
    for page in pages:
        row = rows.get(page["stem"], {})
        topic = row.get("topic") or page["title"]
        lines.append(f"| {row.get('number', page['stem'][:2])} | [{topic}]({page['stem']}.ipynb) | "
                     f"{row.get('seeds', '')} | {row.get('quick', '')} | "
                     f"[Colab]({page['colab']}) · {{download}}`student notebook <{page['download']}>` |")
    lines += [""]
    if course_map.seeds:
        lines += ["## Seed documents", "",
                  ("Each notebook cites the seed documents whose methods and numbers it reproduces "
                   "(summarised and cited, not reproduced):"), ""]
        lines += [f"- **{sid}** `{s['file']}`: {s['about']}" for sid, s in sorted(course_map.seeds.items())]
        lines.append("")
    lines += ["## About this site", "",
              (f"Every page is a notebook of the course executed headless in the `{profile}` profile "
               "(`python -m course_lib run`), with all its outputs and figures; nothing runs in your browser except "
               "the explorers below, which show images precomputed by the course's models when the "
               f"site was built ({built}). Exercises appear solved and marked; each page links to its "
               "student version."), "",
              "| explorer | models | images | frames (64×64) | size |", "|---|---|---:|---:|---:|"]
    for e in explorers:
        lines.append(f"| [{e.notebook[:2]}: {e.title}]({e.notebook}.ipynb) | {e.model} | {e.images} | "
                     f"{e.frames} | {e.bytes / 1000:.0f} kB |")
    lines += ["", (f"Build it yourself from a clone of [the repository]({repository}): `make site` "
                   "(profile quick; `make site PROFILE=smoke` for a quick check), then open "
                   "`runs/site/html/index.html`."), "",
              "```{toctree}", ":hidden:", ":maxdepth: 1", ""]
    lines += [p["stem"] for p in pages]
    lines += ["```", ""]
    return "\n".join(lines)


# =============================================================================== explorers

# The explorers read the notebooks' own settings (the cell tagged parameters and the cell that
# resolves it for a profile), so that they show the models of the run the page comes from.


def notebook_settings(nb: dict, profile: str) -> dict:
    """The upper-case names that the notebook's parameters cell and the next code cell (which
    resolves them for the profile) define, for ``profile``."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    index = next((i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None or index + 1 >= len(code):
        raise ValueError("the notebook has no cell tagged parameters followed by a code cell")
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(_source(code[index]), "<parameters>", "exec"), namespace)
        namespace["PROFILE"] = profile
        exec(compile(_source(code[index + 1]), "<settings>", "exec"), namespace)
    return {k: v for k, v in namespace.items() if k.isupper() and not k.startswith("_")}


def _close(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)), abs(float(b)))
    return a == b


def find_run_checkpoint(folder: Path, pattern: str, model_name: str, config: dict, train: dict):
    """The newest ``folder/pattern`` course checkpoint of ``model_name`` whose model config
    contains ``config`` (nested dicts: their items) and whose training settings are ``train``;
    (path, checkpoint dict) or None."""
    from ..train import load_checkpoint

    def contains(have, want):
        if isinstance(want, dict):
            return isinstance(have, dict) and all(k in have and contains(have[k], v) for k, v in want.items())
        return _close(have, want)

    candidates = sorted((p for p in Path(folder).glob(pattern) if not p.name.endswith(STAGES_SUFFIX)),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            state = load_checkpoint(path)
        except Exception:  # noqa: BLE001 - an unreadable candidate is not the run's checkpoint
            continue
        if state.get("model_name") == model_name and contains(state.get("model_config", {}), config) \
                and contains(state.get("train", {}), train):
            return path, state
    return None


def _png(array, path: Path) -> int:
    """Write a [0, 1] float array (H×W) as an 8-bit grayscale PNG; return its size in bytes."""
    import numpy as np
    from PIL import Image

    pixels = np.round(np.clip(np.asarray(array, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="L").save(path, format="PNG", optimize=True)
    return path.stat().st_size


def _tile(frames):
    """Frames R×C×1×H×W (a tensor) → one H·R × W·C numpy array, no padding (a sprite)."""
    rows, cols, _, h, w = frames.shape
    return frames[:, :, 0].permute(0, 2, 1, 3).reshape(rows * h, cols * w).numpy()


def _traversal_explorer(key, notebook, anchor, title, caption, model_label, renderers, starts, labels,
                        codes, sigmas, values, static: Path, dim_name="z",
                        replaces_widget=True, source="") -> ExplorerSpec:
    """A traversal explorer: ``renderers`` [(name, fn codes N×D → images N×1×64×64 in [0, 1])]
    draw the codes of every start image (``starts`` S×1×64×64, named by ``labels``; ``codes``
    S×D their posterior means, ``sigmas`` S×D their posterior standard deviations) with one
    latent set to each of ``values``. Writes the base sprite (row 0: the start images; row 1 + r:
    renderer r at μ) and one sprite per renderer (row s·D + j: start s, latent j; column: value)."""
    import torch

    from ..viz import traversal_codes
    from ..widgets import DEAD_SIGMA

    S, D, V = codes.shape[0], codes.shape[1], len(values)
    files, total, sprites = [], 0, []
    base_rows = [starts.float().cpu()]
    with torch.no_grad():
        for r, (name, render) in enumerate(renderers):
            base_rows.append(render(codes).float().cpu())
            frames = torch.stack([render(traversal_codes(codes[s], values=values).flatten(0, 1)).float().cpu()
                                  .reshape(D, V, 1, 64, 64) for s in range(S)])
            path = static / f"{key}_{r}.png"
            total += _png(_tile(frames.reshape(S * D, V, 1, 64, 64)), path)
            files.append(path)
            sprites.append({"name": name, "src": f"_static/explorers/{path.name}", "rows": S * D, "cols": V})
    base_path = static / f"{key}_base.png"
    total += _png(_tile(torch.stack(base_rows)), base_path)
    files.insert(0, base_path)
    spec = {"kind": "traversal", "frame": 64, "scale": 3, "dims": D, "dimName": dim_name,
            "values": [round(float(v), 4) for v in values], "deadSigma": DEAD_SIGMA,
            "base": {"src": f"_static/explorers/{base_path.name}", "rows": 1 + len(renderers), "cols": S},
            "renderers": sprites,
            "starts": [{"label": labels[s], "mu": [round(float(m), 4) for m in codes[s]],
                        "sigma": [round(float(v), 4) for v in sigmas[s]]} for s in range(S)]}
    return ExplorerSpec(key=key, notebook=notebook, anchor=anchor, title=title, caption=caption, spec=spec,
                        files=[f"_static/explorers/{p.name}" for p in files], images=len(files),
                        frames=S * (1 + len(renderers)) + S * D * V * len(renderers), bytes=total,
                        model=model_label, replaces_widget=replaces_widget, source=source)


#: dSprites start images of the explorers, as class indices (color, shape, scale, orientation,
#: posX, posY); shape 0 = square, 1 = ellipse, 2 = heart.
START_IMAGES_03 = [((0, 0, 5, 0, 8, 22), "square, lower left"),
                   ((0, 1, 3, 10, 22, 10), "ellipse, upper right"),
                   ((0, 2, 5, 0, 16, 16), "heart, centre")]
#: notebook 07: three positions its models saw (posX < 16) and one they never saw
START_IMAGES_07 = [((0, 0, 5, 0, 4, 10), "square, left (seen)"),
                   ((0, 1, 4, 0, 10, 22), "ellipse, lower left (seen)"),
                   ((0, 2, 5, 0, 14, 16), "heart, centre-left (seen)"),
                   ((0, 0, 5, 0, 26, 16), "square, right (held out)")]
TRAVERSAL_VALUES = [x / 2 for x in range(-6, 7)]  # −3 … 3 in steps of 0.5
SHIPPED_03 = "beta_vae-12000steps-seed13"
SHIPPED_07_VAE = "heldout_beta_vae-1500steps-seed0"
#: The explorer's stages saved beside a run's checkpoint by notebooks 03 and 04 (``<run>.stages.pt``).
STAGES_SUFFIX = ".stages.pt"


def _starts(ds, chosen):
    import torch

    classes = torch.tensor([c for c, _ in chosen], dtype=torch.long)
    return ds.images(classes), [label for _, label in chosen]


def _posterior(model, x):
    import torch

    with torch.no_grad():
        mu, logvar = model.encode(x)
    return mu.float().cpu(), torch.exp(0.5 * logvar.float().cpu())


def explorer_03(static: Path, **_) -> ExplorerSpec:
    """Notebook 03: the latent explorer of the shipped β-VAE (seed 13, 12,000 steps)."""
    from ..checkpoints import load_shipped, read_manifest
    from ..data import DSprites
    from ..viz import decode_pixels

    model = load_shipped(SHIPPED_03, device="cpu").eval()
    entry = read_manifest()["checkpoints"][SHIPPED_03]
    mig = (entry.get("metrics") or {}).get("mig")
    x, labels = _starts(DSprites(), START_IMAGES_03)
    mu, sigma = _posterior(model, x)
    caption = (f"**Latent explorer, in the page** (precomputed for this site): the shipped β-VAE "
               f"`{SHIPPED_03}` of section 6 (β = 8, |z| = 10, 12,000 steps"
               + (f", MIG {mig:.3f} in its manifest" if isinstance(mig, (int, float)) else "") +
               "). Pick a start image, then move one latent's slider: the image is the decoder's output "
               "for μ(x) with that latent set to the slider's value (−3 to 3 in steps of 0.5); the other "
               "latents stay at μ(x), as in a traversal. Greyed sliders belong to latents that are "
               "switched off for this image (σ > 0.8).")
    return _traversal_explorer(
        "03-latent", "03_beta_vae", r"widgets\.latent_explorer\(", "latent explorer of the shipped β-VAE",
        caption, f"shipped `{SHIPPED_03}`", [("decoded z", lambda z: decode_pixels(model, z))],
        x, labels, mu, sigma, TRAVERSAL_VALUES, static, source=f"data/checkpoints/{entry['file']}")


def _stage_explorer(key, anchor, title, caption, ckpt_path, stages_path, probe, static: Path) -> ExplorerSpec:
    import torch

    from ..data import DSprites
    from ..losses import capacity_schedule, kl_normal
    from ..train import load_model
    from ..viz import DEFAULT_TRAVERSAL, make_grid, traversal_images

    model = load_model(ckpt_path, device="cpu").eval()
    stages = torch.load(stages_path, map_location="cpu", weights_only=True)
    ds = DSprites()
    x_kl = ds.images(ds.sample_classes(512, generator=torch.Generator().manual_seed(12345)))
    pad, total, out, files = 2, 0, [], []
    for i, (step, state) in enumerate(stages):
        model.load_state_dict(state)
        with torch.no_grad():
            z0 = model.encode(probe[None])[0][0]
            grid = traversal_images(model, z0, None, DEFAULT_TRAVERSAL)  # D×V×1×64×64
            mu, logvar = model.encode(x_kl)
            kl = kl_normal(mu, logvar).mean(0)
        arr = make_grid(grid.reshape(-1, *grid.shape[2:]), nrow=grid.shape[1], pad=pad)
        path = static / f"{key}_{i:02d}.png"
        total += _png(arr, path)
        files.append(path)
        c = capacity_schedule(max(int(step) - 1, 0), model.c_start, model.c_max, model.c_steps)
        out.append({"step": int(step), "src": f"_static/explorers/{path.name}", "width": arr.shape[1],
                    "height": arr.shape[0], "kl": [round(float(v), 3) for v in kl],
                    "text": f" \u2014 C = {c:.1f} nats, total KL {float(kl.sum()):.1f} nats"})
    D, V = grid.shape[0], grid.shape[1]
    spec = {"kind": "stages", "dims": D, "frame": 64, "rowTop": pad, "rowHeight": 64 + pad,
            "height": out[-1]["height"], "onNats": 0.5, "stages": out,
            "legend": (f"Rows z0 to z{D - 1}: each latent moved over {float(DEFAULT_TRAVERSAL[0]):g} … "
                       f"{float(DEFAULT_TRAVERSAL[-1]):g} around μ(x) of one image, the others fixed; beside "
                       "each row, that latent's KL at this stage (mean over 512 images; bold above 0.5 nats).")}
    return ExplorerSpec(key=key, notebook="04_capacity", anchor=anchor, title=title, caption=caption, spec=spec,
                        files=[f"_static/explorers/{p.name}" for p in files], images=len(files),
                        frames=len(files) * D * V, bytes=total,
                        model=f"the run's saved stages ({model.penalty})", source=str(stages_path))


def explorers_04(static: Path, settings: dict, checkpoints: Path, **_) -> list[ExplorerSpec]:
    """Notebook 04: the stage explorers of the capacity models that the notebook trained in the
    run the page comes from (their saved stages), absolute and hinge penalty."""
    import torch

    from ..data import DSprites

    s = settings
    ds = DSprites()
    probe = ds.images(ds.sample_classes(1, generator=torch.Generator().manual_seed(s["SEED"] + 7)))[0]
    found = []
    for penalty, anchor, words in (
            ("abs", r"widgets\.stage_explorer\(cap_abs", "absolute penalty |KL − C|"),
            ("hinge", r"widgets\.stage_explorer\(cap_hinge", "hinge penalty max(0, KL − C)")):
        config = {"num_latents": s["NUM_LATENTS"], "gamma": s["GAMMA"], "c_start": s["C_START"],
                  "c_max": s["C_MAX"], "c_steps": s["C_STEPS"], "penalty": penalty, "reduction": "sum"}
        train = {"steps": s["STEPS"], "batch_size": s["BATCH_SIZE"], "lr": s["LR"], "seed": s["SEED"]}
        hit = find_run_checkpoint(checkpoints, "04-capacity_vae-*.pt", "capacity_vae", config, train)
        stages_path = hit and hit[0].with_suffix(STAGES_SUFFIX)
        if not hit or not stages_path.is_file():
            raise FileNotFoundError(
                f"notebook 04's capacity model ({penalty}) of this profile has no saved stages in "
                f"{checkpoints} (04-capacity_vae-*{STAGES_SUFFIX}, {penalty}, with {train}); run the notebook "
                "in this profile first")
        caption = (f"**Watch the factors appear, in the page** (precomputed for this site): the capacity "
                   f"model with the {words} that this notebook trained in the run above, at each of the "
                   f"stages it saved ({s['STEPS']} steps in all). Slide from the first stage to the last; "
                   "the numbers beside each row are that latent's KL at that stage.")
        found.append(_stage_explorer(f"04-stages-{penalty}", anchor, f"watch the factors appear ({penalty})",
                                     caption, hit[0], stages_path, probe, static))
    return found


def explorer_07(static: Path, settings: dict, checkpoints: Path, profile: str, **_) -> ExplorerSpec:
    """Notebook 07: the same codes rendered by the β-VAE's decoder and ID-GAN's generator."""
    import torch

    from ..checkpoints import load_shipped
    from ..data import DSprites
    from ..train import load_model

    s = settings
    config = {"noise_dim": s["NOISE_DIM"], "lam": s["LAMBDA"], "r1": s["R1"], "init": s["IDGAN_INIT"],
              "vae": {"config": {"num_latents": s["NUM_LATENTS"], "beta": s["BETA"]}}}
    train = {"steps": s["IDGAN_STEPS"], "batch_size": s["BATCH_SIZE"], "lr": s["IDGAN_LR"], "seed": s["SEED"]}
    hit = find_run_checkpoint(checkpoints, "07-idgan-*.pt", "idgan", config, train)
    if hit is None:
        raise FileNotFoundError(f"notebook 07's ID-GAN of this profile is not in {checkpoints} "
                                f"(07-idgan-*.pt with {train}); run the notebook first")
    idgan = load_model(hit[0], device="cpu").eval()
    vae = idgan.vae.eval()
    shipped = ""
    try:
        ref = load_shipped(SHIPPED_07_VAE, device="cpu").state_dict()
        mine = vae.state_dict()
        if ref.keys() == mine.keys() and all(torch.equal(ref[k].float(), mine[k].float()) for k in ref):
            shipped = f", the shipped `{SHIPPED_07_VAE}`"
    except (FileNotFoundError, ValueError, RuntimeError):
        pass
    # the notebook's first s: row 0 of its NUM_EVAL × NOISE_DIM draw (torch.randn(1, D) gives the
    # same numbers only for some D, so draw the whole matrix)
    noise = torch.randn(s["NUM_EVAL"], s["NOISE_DIM"], generator=torch.Generator().manual_seed(s["SEED"]))[:1]
    x, labels = _starts(DSprites(), START_IMAGES_07)
    mu, sigma = _posterior(vae, x)
    caption = (f"**The two renderers, in the page** (precomputed for this site): the same code c rendered by "
               f"the step-1 β-VAE's decoder (|z| = {s['NUM_LATENTS']}, β = {s['BETA']}{shipped}) and by ID-GAN's "
               f"generator trained on top of it in this run ({s['IDGAN_STEPS']} steps; noise s fixed, the "
               "notebook's first s). Pick a start image (the last one lies in the held-out right half), then "
               "move one code dimension from −3 to 3: does it change the same factor in both renderers? "
               "The other dimensions stay at the posterior mean μ(x).")
    return _traversal_explorer(
        "07-renderers", "07_vaegan_idgan", r"07_traversal_idgan", "the same codes, two renderers", caption,
        "the run's ID-GAN and its β-VAE",
        [("β-VAE decoder", lambda c: torch.sigmoid(vae.decode(c))),
         ("ID-GAN generator", lambda c: idgan.generate(c, noise.expand(len(c), -1)))],
        x, labels, mu, sigma, TRAVERSAL_VALUES, static, dim_name="c", replaces_widget=False, source=str(hit[0]))


#: notebook stem -> function(static=, settings=, checkpoints=, profile=) -> spec or list of specs
EXPLORERS = {"03_beta_vae": explorer_03, "04_capacity": explorers_04, "07_vaegan_idgan": explorer_07}


def make_explorers(root: Path, profile: str, static: Path, stems, checkpoints: Path,
                   log=_log) -> tuple[list[ExplorerSpec], list[str]]:
    """Every explorer of :data:`EXPLORERS` whose notebook is in ``stems``; (specs, problems)."""
    import nbformat

    from .build import convert

    specs, problems = [], []
    static.mkdir(parents=True, exist_ok=True)
    for stem, maker in EXPLORERS.items():
        if stem not in stems:
            continue
        t0 = time.perf_counter()
        try:
            solution, _ = convert(root / "solutions" / f"{stem}.py", root)
            settings = notebook_settings(nbformat.reads(solution.decode("utf-8"), as_version=4), profile)
            made = maker(static=static, settings=settings, checkpoints=checkpoints, profile=profile)
        except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:
            problems.append(f"explorer of {stem}: {exc}")
            log(f"  explorer of {stem} skipped: {exc}")
            continue
        for spec in made if isinstance(made, list) else [made]:
            specs.append(spec)
            log(f"  explorer {spec.key}: {spec.images} images ({spec.frames} frames), "
                f"{spec.bytes / 1000:.0f} kB, {time.perf_counter() - t0:.1f} s")
    return specs, problems


# =============================================================================== Sphinx


def mathjax_source() -> Path:
    """MathJax 3's single-file TeX → SVG build, from the ``django-static-mathjax`` package."""
    try:
        import mathjax
    except ImportError as exc:
        raise ImportError(f"the site needs the '{EXTRA}' extra (MathJax, Sphinx, MyST-NB): "
                          f"pip install -e '.[{EXTRA}]'") from exc
    path = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5" / MATHJAX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall django-static-mathjax")
    return path


def sphinx_conf(title: str, repository: str) -> dict:
    """The settings of the generated ``conf.py``."""
    return {
        "project": title,
        "author": "the course's authors",
        "copyright": "the course's authors (code: MIT)",
        "extensions": ["myst_nb"],
        "exclude_patterns": ["downloads/**", "_build", "**.ipynb_checkpoints"],
        "html_theme": "sphinx_book_theme",
        "html_title": title,
        "html_static_path": ["_static"],
        "html_css_files": ["course-site.css"],
        "html_favicon": "_static/favicon.svg",
        "html_context": {"default_mode": "light"},
        "html_js_files": ["course-explorers.js"],
        "html_copy_source": False,
        "html_show_sourcelink": False,
        "html_last_updated_fmt": None,
        "html_theme_options": {
            "home_page_in_toc": True, "show_navbar_depth": 1, "show_toc_level": 2,
            "use_download_button": False, "use_fullscreen_button": True,
            "use_repository_button": False, "use_issues_button": False, "use_edit_page_button": False,
            "navigation_with_keys": False, "search_bar_text": "Search the course…",
            "repository_url": repository,
        },
        # MathJax 3 from the site itself (a path relative to _static), no menu (its accessibility
        # tools would fetch the speech-rule engine from a CDN)
        "mathjax_path": f"mathjax/{MATHJAX_FILE}",
        "mathjax3_config": {"options": {"enableMenu": False}},
        "myst_enable_extensions": ["dollarmath", "amsmath", "colon_fence"],
        "myst_heading_anchors": 3,
        "nb_execution_mode": "off",
        "nb_ipywidgets_js": {},          # no require.js / widget manager from a CDN
        "nb_merge_streams": True,
        "nb_output_stderr": "show",
        "suppress_warnings": ["mystnb.unknown_mime_type", "myst.header"],
        "language": "en",
    }


def write_project(source: Path, pages: list[tuple[str, dict]], home: str, downloads: dict[str, bytes],
                  conf: dict) -> None:
    """Write the Sphinx project: conf.py, index.md, one notebook per page, downloads, assets."""
    import nbformat

    if source.exists():
        shutil.rmtree(source)
    (source / "_static" / "explorers").mkdir(parents=True)
    (source / "downloads").mkdir()
    lines = ['"""Generated by `python -m course_lib site`; edit course_lib/site.py instead."""', ""]
    lines += [f"{name} = {value!r}" for name, value in conf.items()]
    (source / "conf.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (source / "index.md").write_text(home, encoding="utf-8")
    for stem, nb in pages:
        nbformat.write(nbformat.from_dict(nb), str(source / f"{stem}.ipynb"))
    for name, data in downloads.items():
        (source / "downloads" / name).write_bytes(data)
    for asset in ("course-site.css", "course-explorers.js", "favicon.svg"):
        shutil.copy2(ASSETS / asset, source / "_static" / asset)
    (source / "_static" / "mathjax").mkdir()
    shutil.copy2(mathjax_source(), source / "_static" / "mathjax" / MATHJAX_FILE)


def run_sphinx(source: Path, html_dir: Path, doctrees: Path, log=_log) -> list[str]:
    """Build the HTML with Sphinx in a subprocess; return its warnings (it raises on failure)."""
    try:
        import myst_nb  # noqa: F401 - imported only to check that the site extra is installed
        import sphinx  # noqa: F401 - (the build runs in a subprocess)
        import sphinx_book_theme  # noqa: F401 - idem
    except ImportError as exc:
        raise ImportError(f"the site needs the '{EXTRA}' extra: pip install -e '.[{EXTRA}]' ({exc})") from exc
    if html_dir.exists():
        shutil.rmtree(html_dir)
    warnings_file = doctrees.parent / "sphinx-warnings.txt"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-d", str(doctrees),
           "-w", str(warnings_file), "-j", "1", str(source), str(html_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sphinx-build failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")
    text = warnings_file.read_text(encoding="utf-8") if warnings_file.exists() else ""
    return [line for line in text.splitlines() if line.strip()]


# =============================================================================== checks


class _Refs(HTMLParser):
    """Collects the references and ids of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []   # (tag, attribute, value)
        self.ids: set[str] = set()
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        rel = (attrs.get("rel") or "").lower()
        if tag == "a" and attrs.get("href") is not None:
            self.refs.append(("a", "href", attrs["href"]))
        elif tag == "link" and attrs.get("href") is not None:
            self.refs.append((f"link[{rel}]", "href", attrs["href"]))
        for key in ("src", "poster", "data-src"):
            if attrs.get(key):
                self.refs.append((tag, key, attrs[key]))
        if attrs.get("srcset"):
            for part in attrs["srcset"].split(","):
                if part.strip():
                    self.refs.append((tag, "srcset", part.split()[0]))
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")
#: Hosts from which a page must never load anything (CDNs that Sphinx themes and notebook tools use).
CDN_HOSTS = re.compile(r"https?://(?:cdn[a-z0-9-]*\.[a-z0-9.-]+|(?:[a-z0-9-]+\.)*(?:jsdelivr\.net|unpkg\.com|"
                       r"googleapis\.com|gstatic\.com|bootstrapcdn\.com|code\.jquery\.com|"
                       r"cdnjs\.cloudflare\.com))[^\s'\"`)]*", re.IGNORECASE)
#: CDN addresses inside vendored files that no page can reach: MathJax's speech-rule engine and
#: XPath polyfill, loaded only by its accessibility menu, which the site switches off.
ALLOWED_CDN = [("_static/mathjax/", "https://cdn.jsdelivr.net/npm/speech-rule-engine@"),
               ("_static/mathjax/", "https://cdn.jsdelivr.net/npm/sre-mathmaps-ie@"),
               ("_static/mathjax/", "https://cdn.jsdelivr.net/npm/wicked-good-xpath@")]


def _external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme) or url.startswith("//")


@dataclass
class SiteCheck:
    pages: int = 0
    files: int = 0
    bytes: int = 0
    broken: list[str] = field(default_factory=list)     # internal links and images that do not exist
    external: list[str] = field(default_factory=list)   # resources loaded from other hosts

    @property
    def ok(self) -> bool:
        return not self.broken and not self.external


def check_site(html_dir: Path, check_anchors: bool = True) -> SiteCheck:
    """Every internal link, image, script and style sheet of every page must exist (and a
    ``#fragment`` to another page must name an id there); no page, style sheet or script may
    load anything from another host (ordinary ``<a href>`` hyperlinks to other sites are fine).
    """
    html_dir = Path(html_dir)
    result = SiteCheck()
    pages: dict[Path, _Refs] = {}
    for path in sorted(html_dir.rglob("*")):
        if path.is_file():
            result.files += 1
            result.bytes += path.stat().st_size
        if path.suffix == ".html" and "_static" not in path.relative_to(html_dir).parts:
            parser = _Refs()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            pages[path.resolve()] = parser
    result.pages = len(pages)
    for page, refs in pages.items():
        rel_page = page.relative_to(html_dir.resolve()).as_posix()
        for tag, attr, value in refs.refs:
            value = value.strip()
            if not value or value.startswith(("mailto:", "javascript:", "data:", "tel:")):
                continue
            if _external(value):
                if tag != "a":
                    result.external.append(f"{rel_page}: <{tag} {attr}={value!r}> loads from another host")
                continue
            parts = urlsplit(value)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                result.broken.append(f"{rel_page}: <{tag} {attr}={value!r}> -> missing {unquote(parts.path)}")
                continue
            if check_anchors and parts.fragment and target.suffix == ".html" and target in pages \
                    and unquote(parts.fragment) not in pages[target].ids:
                    result.broken.append(f"{rel_page}: <{tag} {attr}={value!r}> -> no id "
                                         f"{parts.fragment!r} in {target.name}")
        for style in refs.styles:
            for m in _CSS_URL.finditer(style):
                url = m.group(1) or m.group(2)
                if _external(url) and not url.startswith("data:"):
                    result.external.append(f"{rel_page}: inline style loads {url}")
    for path in sorted(html_dir.rglob("*")):
        if path.suffix not in (".css", ".js", ".mjs", ".html") or not path.is_file():
            continue
        rel = path.relative_to(html_dir).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".css":
            for m in _CSS_URL.finditer(text):
                url = (m.group(1) or m.group(2)).strip()
                if url.startswith("data:"):
                    continue
                if _external(url):
                    result.external.append(f"{rel}: loads {url}")
                elif not (path.parent / unquote(urlsplit(url).path)).exists() and not url.startswith("#"):
                    result.broken.append(f"{rel}: url({url}) -> missing")
        for m in CDN_HOSTS.finditer(text):
            url = m.group(0)
            if not any(rel.startswith(prefix) and url.startswith(allowed) for prefix, allowed in ALLOWED_CDN):
                result.external.append(f"{rel}: refers to {url}")
    return result


def explorer_sizes(specs: list[ExplorerSpec], static_dir: Path) -> list[dict]:
    """Per explorer: images, frames and bytes, measured from its files in the built site."""
    rows = []
    for spec in specs:
        sizes = [(Path(static_dir) / f).stat().st_size for f in spec.files]
        rows.append({"key": spec.key, "notebook": spec.notebook, "title": spec.title, "model": spec.model,
                     "source": spec.source,
                     "images": len(sizes), "frames": spec.frames, "bytes": sum(sizes),
                     "kB": round(sum(sizes) / 1000, 1)})
    return rows


# =============================================================================== build


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def build_site(profile: str = "quick", runs: Path | None = None, out: Path | None = None,
               root: Path | None = None, run_missing: bool = True, allow_stale: bool = False,
               notebooks=None, log=_log) -> dict:
    """Build the site (see the module docstring) of every notebook, or of the stems in
    ``notebooks`` only; return the manifest written to ``site.json``."""
    import nbformat

    from .. import profiles
    from ..config import repo_root, runs_dir
    from .build import convert

    t_start = time.perf_counter()
    profile = profiles.check_profile(profile)
    root = Path(root) if root is not None else repo_root()
    runs = Path(runs) if runs is not None else runs_dir(root)
    out = Path(out) if out is not None else runs_dir(root) / SITE_DIR
    source_dir, html_dir, doctrees = out / "source", out / "html", out / "doctrees"
    mathjax_source()  # fail early when the extra is missing

    # 1. executed notebooks
    stems = {Path(n).stem for n in notebooks} if notebooks else None
    executions = find_executions(root, runs, profile, stems)
    if not executions:
        raise FileNotFoundError(f"no notebook sources solutions/NN_topic.py under {root}"
                                + (f" named {', '.join(sorted(stems))}" if stems else ""))
    stale = [ex for ex in executions if not ex.fresh]
    for ex in executions:
        log(f"{ex.stem}: " + ("fresh executed copy" if ex.fresh else f"not reusable: {ex.reason}"))
    if stale and allow_stale:
        stale = [ex for ex in stale if not ex.path.is_file() or _variant(ex.path) is None]
    if stale:
        if not run_missing:
            raise ValueError("no fresh executed copy of " + "; ".join(f"{ex.stem} ({ex.reason})" for ex in stale)
                             + f" in {runs / profile}; run them (drop --no-run) or pass --allow-stale")
        t0 = time.perf_counter()
        execute(root, runs, profile, stale, out / "_execute", log=log)
        log(f"executed in {time.perf_counter() - t0:.0f} s")
        failed = [ex for ex in stale if not ex.fresh]
        if failed:
            raise RuntimeError("these notebooks failed: " + "; ".join(f"{ex.stem}: {ex.reason}" for ex in failed))
    t_pages = time.perf_counter()

    # 2. explorers (into the project's _static, written after the project is laid out)
    readme = root / "README.md"
    course_map = parse_readme(readme.read_text(encoding="utf-8") if readme.is_file() else "")
    repository = repository_url(course_map)
    staging = out / "explorers"
    if staging.exists():
        shutil.rmtree(staging)
    checkpoints = runs_dir(root) / "checkpoints"
    specs, problems = make_explorers(root, profile, staging, {ex.stem for ex in executions}, checkpoints, log=log)
    t_explorers = time.perf_counter()

    # 3. pages
    rows = {r["stem"]: r for r in course_map.rows if r.get("stem")}
    pages, infos, downloads = [], [], {}
    for ex in executions:
        solution_bytes, student_bytes = convert(ex.source, root)
        solution = nbformat.reads(solution_bytes.decode("utf-8"), as_version=4)
        student = nbformat.reads(student_bytes.decode("utf-8"), as_version=4)
        executed = nbformat.read(str(ex.path), as_version=4)
        row = rows.get(ex.stem, {})
        seeds = [{"id": sid, **course_map.seeds.get(sid, {})} for sid in seed_ids(row.get("seeds", ""))]
        download = f"downloads/{ex.stem}.ipynb"
        info = PageInfo(stem=ex.stem, profile=profile, variant=_variant(ex.path), started=ex.started,
                        seconds=ex.seconds, fresh=ex.fresh, reason=ex.reason, seeds=seeds,
                        seed_note=row.get("seeds", ""), colab=colab_url(course_map, ex.stem), download=download)
        page, report = prepare_page(executed, solution, student, info,
                                    [s for s in specs if s.notebook == ex.stem])
        if report["mismatched_cells"]:
            log(f"  warning: {ex.stem}: {report['mismatched_cells']} executed cell(s) differ from the source")
        pages.append((ex.stem, page))
        downloads[f"{ex.stem}.ipynb"] = student_bytes
        title = next((_source(c).lstrip("# ").splitlines()[0] for c in solution.cells
                      if c.cell_type == "markdown" and _source(c).startswith("# ")), ex.stem)
        infos.append({"stem": ex.stem, "title": title, "colab": info.colab, "download": download,
                      "variant": info.variant, "fresh": ex.fresh, "reason": ex.reason, "ran_now": ex.ran_now,
                      "started": ex.started, "seconds": ex.seconds, "executed": str(ex.path), **report})
    built = _now()
    home = home_markdown(course_map, infos, profile, specs, built, repository)
    write_project(source_dir, pages, home, downloads, sphinx_conf(course_map.title, repository))
    shutil.copytree(staging, source_dir / "_static" / "explorers", dirs_exist_ok=True)

    # 4. Sphinx
    t0 = time.perf_counter()
    log("rendering the pages with Sphinx + MyST-NB …")
    warnings = run_sphinx(source_dir, html_dir, doctrees, log=log)
    t_sphinx = time.perf_counter() - t0

    # 5. checks
    check = check_site(html_dir)
    sizes = explorer_sizes(specs, html_dir)
    manifest = {
        "profile": profile, "built": built, "runs": str(runs / profile), "html": str(html_dir),
        "seconds": {"total": round(time.perf_counter() - t_start, 1),
                    "executing": round(t_pages - t_start, 1),
                    "explorers": round(t_explorers - t_pages, 1), "sphinx": round(t_sphinx, 1)},
        "pages": ["index.html"] + [f"{stem}.html" for stem, _ in pages],
        "notebooks": infos, "explorers": sizes, "explorer_problems": problems,
        "files": check.files, "bytes": check.bytes, "html_pages": check.pages,
        "broken": check.broken, "external": check.external, "sphinx_warnings": warnings,
    }
    (html_dir / "site.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    errors = []
    if check.bytes > MAX_SITE_BYTES:
        errors.append(f"the site is {check.bytes / 1e6:.1f} MB, over the {MAX_SITE_BYTES / 1e6:.0f} MB budget")
    errors += [f"broken: {b}" for b in check.broken[:20]]
    errors += [f"external: {e}" for e in check.external[:20]]
    if errors:
        raise RuntimeError("the built site fails its checks:\n  " + "\n  ".join(errors))
    return manifest


def describe(manifest: dict, html_dir: Path) -> str:
    s = manifest["seconds"]
    lines = [(f"site of profile {manifest['profile']}: {len(manifest['pages'])} pages, {manifest['files']} files, "
              f"{manifest['bytes'] / 1e6:.1f} MB, built in {s['total']:.0f} s (executing {s['executing']:.0f} s, "
              f"explorers {s['explorers']:.0f} s, Sphinx {s['sphinx']:.0f} s)")]
    for e in manifest["explorers"]:
        lines.append(f"  explorer {e['key']}: {e['images']} images, {e['frames']} frames, {e['kB']:.0f} kB")
    for p in manifest["explorer_problems"]:
        lines.append(f"  explorer problem: {p}")
    stale = [n for n in manifest["notebooks"] if not n["fresh"]]
    for n in stale:
        lines.append(f"  stale page (--allow-stale): {n['stem']}: {n['reason']}")
    if manifest["sphinx_warnings"]:
        lines.append(f"  {len(manifest['sphinx_warnings'])} Sphinx warning(s): see site.json")
    lines.append(f"open {html_dir / 'index.html'}")
    return "\n".join(lines)


def main(argv=None, prog: str | None = None) -> int:
    """``python -m course_lib site [--profile P] [--runs DIR] [--out DIR] [--no-run] [--allow-stale]``."""
    from .. import profiles

    parser = argparse.ArgumentParser(
        prog=prog, description="Build the course's static website from the executed notebooks "
        "(runs/<profile>/, running what is missing) into runs/site/html/.")
    parser.add_argument("notebooks", nargs="*", help="only these notebooks (names such as 03_beta_vae); "
                        "default: all")
    parser.add_argument("--profile", default="quick", help=f"one of {', '.join(profiles.PROFILES)} (default quick)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="folder holding <profile>/ with the executed notebooks (default runs/)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/site/)")
    parser.add_argument("--no-run", action="store_true", help="never execute a notebook: fail when one is "
                        "missing or stale")
    parser.add_argument("--allow-stale", action="store_true", help="use executed copies that are older than "
                        "their source or were run with other parameters (the page says so)")
    args = parser.parse_args(argv)
    try:
        manifest = build_site(args.profile, runs=args.runs, out=args.out, run_missing=not args.no_run,
                              allow_stale=args.allow_stale, notebooks=args.notebooks)
    except RuntimeError as exc:  # a notebook failed, or the built site failed its checks
        print(f"{prog or 'site'}: error: {exc}", file=sys.stderr)
        return 1
    print(describe(manifest, Path(manifest["html"])))
    return 0
