"""Execute the course's notebooks headless with papermill and summarise the run.

Command line (``make course`` calls the first form)::

    python -m course_lib run --profile quick          # every notebooks/NN_*.ipynb
    python -m course_lib run --profile smoke notebooks/01_autoencoders.ipynb
    python -m course_lib run -p SEED 1 -p STEPS 500 01_autoencoders   # more parameters

For each notebook the runner

- injects the papermill parameters ``PROFILE`` (and any ``-p NAME VALUE``) after the cell
  tagged ``parameters``; the environment variable ``COURSE_PROFILE`` is set to the profile too;
- runs it with the ``python3`` kernel, the notebook's own folder as working directory (as in
  Jupyter and nbval; notebooks find data and checkpoints through course_lib, never through
  relative paths);
- writes the executed copy to ``runs/<profile>/NN_topic.ipynb`` and collects the headline
  figures that the notebook reports with :func:`course_lib.report.headline`.

Then it writes ``runs/<profile>/summary.md`` and ``summary.json`` (per notebook: seconds,
status ``ok`` or ``failed`` with the error's last line, headline figures). A failing notebook
does not stop the others; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import json
import logging
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import profiles
from .build import NOTEBOOK_PATTERN, STUDENT_DIR, repo_root
from .report import ENV_VAR as HEADLINES_VAR
from .report import read_headlines

KERNEL = "python3"


@dataclass
class NotebookResult:
    """One executed notebook. ``seconds``: wall-clock time of the execution."""

    name: str
    input: str
    output: str
    status: str  # "ok" or "failed"
    seconds: float
    error: str | None = None
    headlines: list[dict] = field(default_factory=list)


@dataclass
class RunSummary:
    """Every notebook of one run, and where the summary files are."""

    profile: str
    out_dir: Path
    results: list[NotebookResult]
    parameters: dict
    started: str

    @property
    def failed(self) -> list[NotebookResult]:
        return [r for r in self.results if r.status != "ok"]

    @property
    def ok(self) -> bool:
        return not self.failed


def find_notebooks(names=None, root: Path | None = None) -> list[Path]:
    """Notebook paths from paths or stems (``01_autoencoders``); default: every
    ``notebooks/NN_*.ipynb`` under ``root``, sorted."""
    root = Path(root) if root is not None else repo_root()
    folder = root / STUDENT_DIR
    if not names:
        found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
        if not found:
            raise FileNotFoundError(
                f"no notebooks NN_topic.ipynb in {folder}; build them first with "
                "`python -m course_lib build`")
        return found
    paths = []
    for name in names:
        path = Path(name)
        for candidate in (path, folder / path.name, folder / f"{path.stem}.ipynb"):
            if candidate.suffix == ".ipynb" and candidate.is_file():
                paths.append(candidate)
                break
        else:
            raise FileNotFoundError(f"no notebook {str(name)!r} (looked in {folder} too)")
    stems = [p.stem for p in paths]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ValueError(f"two notebooks share the name {duplicates[0]!r}; their executed "
                         "copies would overwrite each other: run them separately")
    return paths


def parse_value(text: str):
    """A ``-p NAME VALUE`` value: a Python literal (``100``, ``1e-4``, ``True``, ``[1, 2]``)
    or else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@contextlib.contextmanager
def _environment(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _last_line(text) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _error_line(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    if ename:  # papermill.exceptions.PapermillExecutionError
        evalue = _last_line(getattr(exc, "evalue", ""))
        cell = getattr(exc, "exec_count", None)
        where = f" (cell [{cell}])" if cell is not None else ""
        return f"{ename}: {evalue}{where}" if evalue else f"{ename}{where}"
    return f"{type(exc).__name__}: {_last_line(exc)}"


def execute_notebook(path: Path, output: Path, parameters: dict, *, timeout=None,
                     progress=True) -> NotebookResult:
    """Run one notebook with papermill (see the module docstring); never raises for a failure
    inside the notebook, which is reported in the result instead."""
    import papermill

    path, output = Path(path), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    headlines_file = output.parent / f".{output.stem}.headlines.jsonl"
    headlines_file.unlink(missing_ok=True)
    env = {HEADLINES_VAR: str(headlines_file.resolve())}
    if "PROFILE" in parameters:
        env[profiles.ENV_VAR] = parameters["PROFILE"]
    error = None
    start = time.perf_counter()
    try:
        with _environment(**env):
            papermill.execute_notebook(
                str(path), str(output), parameters=parameters, kernel_name=KERNEL,
                cwd=str(path.parent.resolve()), progress_bar=progress,
                execution_timeout=timeout)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure is reported, the run goes on
        error = _error_line(exc)
    seconds = time.perf_counter() - start
    headlines = read_headlines(headlines_file)
    headlines_file.unlink(missing_ok=True)
    return NotebookResult(name=path.stem, input=str(path), output=str(output),
                          status="failed" if error else "ok", seconds=round(seconds, 2),
                          error=error, headlines=headlines)


def run_notebooks(notebooks=None, profile: str | None = None, out: Path | str | None = None,
                  root: Path | str | None = None, parameters: dict | None = None, *,
                  timeout=None, progress=True, log=print) -> RunSummary:
    """Execute ``notebooks`` (default: all of ``notebooks/``) in ``profile`` (default:
    ``$COURSE_PROFILE``, else quick); write the executed copies and the summaries to
    ``out/<profile>/`` (default ``runs/``); return the :class:`RunSummary`."""
    profile = profiles.check_profile(profile) if profile else profiles.default_profile()
    root = Path(root) if root is not None else repo_root()
    paths = find_notebooks(notebooks, root)
    out_dir = (Path(out) if out is not None else root / "runs") / profile
    params = {"PROFILE": profile, **(parameters or {})}
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    results = []
    for number, path in enumerate(paths, start=1):
        log(f"[{number}/{len(paths)}] {path.name} (profile {profile})")
        try:
            result = execute_notebook(path, out_dir / path.name, params, timeout=timeout,
                                      progress=progress)
        except KeyboardInterrupt:
            results.append(NotebookResult(path.stem, str(path), str(out_dir / path.name),
                                          "failed", 0.0, "KeyboardInterrupt: run interrupted"))
            break
        results.append(result)
        if result.status == "ok":
            log(f"    ok in {result.seconds:.1f} s")
        else:
            log(f"    FAILED after {result.seconds:.1f} s: {result.error}")
    summary = RunSummary(profile, out_dir, results, params, started)
    write_summary(summary)
    return summary


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def summary_markdown(summary: RunSummary) -> str:
    """The text of ``summary.md``."""
    total = sum(r.seconds for r in summary.results)
    extra = {k: v for k, v in summary.parameters.items() if k != "PROFILE"}
    lines = [
        f"# Course run: profile `{summary.profile}`",
        "",
        f"Started {summary.started}; Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}; {_plural(len(summary.results), 'notebook')}, "
        f"{len(summary.failed)} failed, {total:.1f} s in all.",
    ]
    if extra:
        lines.append("Parameters: " + ", ".join(f"`{k} = {v!r}`" for k, v in extra.items()) + ".")
    lines += [
        "Executed notebooks (every output, plots included) are next to this file.",
        "",
        "| notebook | status | time (s) | headline figures |",
        "|---|---|---:|---|",
    ]
    for r in summary.results:
        figures = "; ".join(f"{h['name']}: {h.get('text', h['value'])}" for h in r.headlines)
        lines.append(f"| {_cell(r.name)} | {r.status} | {r.seconds:.1f} | {_cell(figures)} |")
    if summary.failed:
        lines += ["", "## Failures", ""]
        lines += [f"- `{r.name}`: {_cell(r.error)} (see `{Path(r.output).name}`)"
                  for r in summary.failed]
    return "\n".join(lines) + "\n"


def write_summary(summary: RunSummary) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.json`` into ``summary.out_dir``."""
    summary.out_dir.mkdir(parents=True, exist_ok=True)
    md = summary.out_dir / "summary.md"
    js = summary.out_dir / "summary.json"
    md.write_text(summary_markdown(summary), encoding="utf-8")
    data = {
        "profile": summary.profile,
        "started": summary.started,
        "python": platform.python_version(),
        "parameters": summary.parameters,
        "failed": len(summary.failed),
        "notebooks": [asdict(r) for r in summary.results],
    }
    js.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return md, js


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def main(argv=None, prog: str | None = None) -> int:
    """``python -m course_lib run [--profile P] [--out runs/] [-p NAME VALUE] [notebooks...]``."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Execute the notebooks headless with papermill; write the "
        "executed copies and a summary to runs/<profile>/.")
    parser.add_argument("notebooks", nargs="*",
                        help="notebooks (paths or names such as 01_autoencoders); default: all "
                             "of notebooks/")
    parser.add_argument("--profile", default=None,
                        help=f"one of {', '.join(profiles.PROFILES)} (default: "
                             f"${profiles.ENV_VAR}, else {profiles.DEFAULT_PROFILE})")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder (default: runs/ in the repository)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="another papermill parameter, e.g. -p SEED 1 (a Python literal)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per cell (default: no limit)")
    parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    args = parser.parse_args(argv)
    # papermill guesses the parameter types from the parameters cell and warns about every
    # line that is not a plain literal, such as `STEPS = profiles.pick(PROFILE, ...)`: noise here
    logging.getLogger("papermill.translators").setLevel(logging.ERROR)
    parameters = {}
    for name, value in args.parameter:
        if not _NAME_RE.match(name):
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
        if name == "PROFILE":
            raise ValueError("set the profile with --profile, not -p PROFILE")
        parameters[name] = parse_value(value)
    summary = run_notebooks(args.notebooks, args.profile, args.out, parameters=parameters,
                            timeout=args.timeout, progress=not args.no_progress)
    where = summary.out_dir
    with contextlib.suppress(ValueError):
        where = where.resolve().relative_to(Path.cwd().resolve())
    print()
    print(summary_markdown(summary))
    print(f"Summary: {where / 'summary.md'} (and summary.json); executed notebooks in {where}/")
    return 0 if summary.ok else 1
