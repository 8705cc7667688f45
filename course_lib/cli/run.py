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
status ``ok`` or ``failed`` with the error's last line, headline figures, parameters, start
time). A failing notebook does not stop the others; the exit status is 1 if any failed.

A run of some notebooks only (named on the command line) merges its rows into the profile's
existing summary: the rows of the notebooks that ran are replaced, the others are kept (and
marked as coming from earlier runs), as are their executed copies.

Every ``-p NAME`` must be a parameter of the notebooks, i.e. assigned in their cell tagged
``parameters`` (papermill itself only warns about a misspelled name and runs the notebook with
its defaults): a name that none of the notebooks has is an error that lists their parameters,
one that only some have is a warning.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import json
import logging
import math
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import profiles
from ..config import NO_PROGRESS_VAR, repo_root, runs_dir
from ..report import ENV_VAR as HEADLINES_VAR
from ..report import PARAMETERS_VAR, read_headlines
from .build import NOTEBOOK_PATTERN, STUDENT_DIR

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
    parameters: dict = field(default_factory=dict)
    started: str | None = None


@dataclass
class RunSummary:
    """Every notebook of one run, and where the summary files are. ``rows``: the summary's
    rows when this run was merged into an earlier summary (see the module docstring)."""

    profile: str
    out_dir: Path
    results: list[NotebookResult]
    parameters: dict
    started: str
    rows: list[NotebookResult] | None = None

    @property
    def table(self) -> list[NotebookResult]:
        """Every row of the summary: this run's results and the rows kept from earlier runs."""
        return self.rows if self.rows is not None else self.results

    @property
    def kept(self) -> list[NotebookResult]:
        """The rows kept from earlier runs."""
        ran = {id(r) for r in self.results}
        return [r for r in self.table if id(r) not in ran]

    @property
    def failed(self) -> list[NotebookResult]:
        """This run's failures (they decide the exit status)."""
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


def notebook_parameters(path: Path) -> list[str] | None:
    """The names assigned in the notebook's cell tagged ``parameters``, in order (None: the
    notebook has no such cell)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return None
    try:
        tree = ast.parse(cells[0].source)
    except SyntaxError:  # e.g. an IPython magic: read the assignments line by line
        names = re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)", cells[0].source,
                           re.MULTILINE)
        return list(dict.fromkeys(names))
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for item in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(item, ast.Name) and item.id not in names:
                    names.append(item.id)
    return names


def _declared(stem: str, names: list[str] | None) -> str:
    return f"{stem} (parameters: {', '.join(names)})" if names else \
        f"{stem} (no cell tagged parameters)"


def check_parameters(paths, parameters: dict, log=print) -> None:
    """Check the ``-p`` names against the notebooks' parameters cells before anything runs:
    ValueError for a name that none of ``paths`` has (it lists their parameters), a warning
    through ``log`` for one that only some have."""
    declared = {Path(p).stem: notebook_parameters(p) for p in paths}
    unknown = [n for n in parameters if not any(n in (d or []) for d in declared.values())]
    if unknown:
        where = "; ".join(_declared(stem, names) for stem, names in declared.items())
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))}: not in the cell "
                         f"tagged parameters of {where}")
    for name in parameters:
        lacking = [stem for stem, names in declared.items() if name not in (names or [])]
        if lacking:
            log(f"warning: {', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no "
                f"parameter {name!r}: papermill adds it there, but the notebook does not read it")


def check_folder(path, what: str = "results") -> Path:
    """``path`` if it is a folder or can be made one; ValueError naming the file in its way."""
    path = Path(path)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise ValueError(f"expected a folder for the {what}, but {place} is a file")
            break
    return path


def check_timeout(value) -> int | None:
    """``value`` (None, a number or its text) as papermill's timeout, a positive whole number of
    seconds per cell; ValueError otherwise."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not number.is_integer() \
            or number < 1:
        raise ValueError(f"expected a positive whole number of seconds per cell, got {value!r}")
    return int(number)


def argument(check):
    """An argparse ``type`` made of ``check`` (a function that raises ValueError): argparse
    then prints the check's message as its one-line error (exit status 2)."""
    def convert(text):
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__
    return convert


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
    env = {HEADLINES_VAR: str(headlines_file.resolve()),
           PARAMETERS_VAR: json.dumps(parameters, default=repr),
           NO_PROGRESS_VAR: "1"}   # a saved notebook would keep a training bar as first drawn
    if "PROFILE" in parameters:
        env[profiles.ENV_VAR] = parameters["PROFILE"]
    error = None
    started = _now()
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
                          error=error, headlines=headlines, parameters=dict(parameters),
                          started=started)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_notebooks(notebooks=None, profile: str | None = None, out: Path | str | None = None,
                  root: Path | str | None = None, parameters: dict | None = None, *,
                  timeout=None, progress=True, log=print) -> RunSummary:
    """Execute ``notebooks`` (default: all of ``notebooks/``) in ``profile`` (default:
    ``$COURSE_PROFILE``, else quick); write the executed copies and the summaries to
    ``out/<profile>/`` (default ``runs/``), merged into the earlier summary when ``notebooks``
    names some notebooks only; return the :class:`RunSummary`."""
    profile = profiles.check_profile(profile) if profile else profiles.default_profile()
    root = Path(root) if root is not None else repo_root()
    timeout = check_timeout(timeout)
    paths = find_notebooks(notebooks, root)
    out_dir = check_folder((Path(out) if out is not None else runs_dir(root)) / profile)
    check_parameters(paths, parameters or {}, log=log)
    params = {"PROFILE": profile, **(parameters or {})}
    started = _now()
    results = []
    for number, path in enumerate(paths, start=1):
        log(f"[{number}/{len(paths)}] {path.name} (profile {profile})")
        try:
            result = execute_notebook(path, out_dir / path.name, params, timeout=timeout,
                                      progress=progress)
        except KeyboardInterrupt:
            results.append(NotebookResult(path.stem, str(path), str(out_dir / path.name),
                                          "failed", 0.0, "KeyboardInterrupt: run interrupted",
                                          parameters=dict(params), started=started))
            break
        results.append(result)
        if result.status == "ok":
            log(f"    ok in {result.seconds:.1f} s")
        else:
            log(f"    FAILED after {result.seconds:.1f} s: {result.error}")
    summary = RunSummary(profile, out_dir, results, params, started)
    if notebooks:
        summary.rows = merge_rows(read_summary(out_dir, profile, log), results)
    write_summary(summary)
    if summary.kept:
        log(f"merged into {out_dir / 'summary.md'}: replaced the rows of "
            f"{', '.join(r.name for r in results)}; kept {', '.join(r.name for r in summary.kept)} "
            "from earlier runs")
    return summary


def read_summary(out_dir: Path, profile: str, log=print) -> list[NotebookResult]:
    """The rows of the summary.json in ``out_dir`` (none if there is none, or it is unreadable
    or of another profile: then a warning through ``log``). Rows written before the rows had
    their own parameters and start time get the summary's."""
    path = Path(out_dir) / "summary.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("profile") != profile:
            raise ValueError(f"it is of profile {data.get('profile')!r}")
        known = {f.name for f in fields(NotebookResult)}
        defaults = {"parameters": data.get("parameters") or {}, "started": data.get("started")}
        return [NotebookResult(**{**defaults, **{k: v for k, v in row.items() if k in known}})
                for row in data["notebooks"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log(f"warning: {path} cannot be merged ({exc}); it is replaced by this run's summary")
        return []


def merge_rows(earlier: list[NotebookResult], results: list[NotebookResult]):
    """``earlier``'s rows with the rows of the notebooks in ``results`` replaced (in place),
    then ``results``' other notebooks."""
    new = {r.name: r for r in results}
    rows = [new.pop(r.name, r) for r in earlier]
    return rows + [r for r in results if r.name in new]

def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _settings(parameters: dict) -> str:
    extra = {k: v for k, v in parameters.items() if k != "PROFILE"}
    return ", ".join(f"`{k} = {v!r}`" for k, v in extra.items())


def _kept_lines(summary: RunSummary) -> list[str]:
    """The sentences on the rows kept from earlier runs (none if there are none)."""
    kept = summary.kept
    if not kept:
        return []
    ran, earlier = (", ".join(r.name for r in rows) for rows in (summary.results, kept))
    lines = [(f"Merged: this run replaced the rows of {ran}; the rows of {earlier} come from "
              "earlier runs of this profile (summary.json has each row's start time and "
              "parameters).")]
    other = [r for r in kept if _settings(r.parameters) != _settings(summary.parameters)]
    if other:
        lines.append("Rows from earlier runs with other parameters: " + "; ".join(
            f"`{r.name}`: {_settings(r.parameters) or 'none'}" for r in other) + ".")
    return lines


def summary_markdown(summary: RunSummary) -> str:
    """The text of ``summary.md``."""
    rows = summary.table
    failed = [r for r in rows if r.status != "ok"]
    total = sum(r.seconds for r in rows)
    lines = [
        f"# Course run: profile `{summary.profile}`",
        "",
        f"Started {summary.started}; Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}; {_plural(len(rows), 'notebook')}, "
        f"{len(failed)} failed, {total:.1f} s in all.",
    ]
    if _settings(summary.parameters):
        lines.append(f"Parameters: {_settings(summary.parameters)}.")
    lines += _kept_lines(summary)
    lines += [
        "Executed notebooks (every output, plots included) are next to this file.",
        "",
        "| notebook | status | time (s) | headline figures |",
        "|---|---|---:|---|",
    ]
    for r in rows:
        figures = "; ".join(f"{h.get('label', h['name'])}: {h.get('text', h['value'])}"
                            for h in r.headlines)
        lines.append(f"| {_cell(r.name)} | {r.status} | {r.seconds:.1f} | {_cell(figures)} |")
    if failed:
        lines += ["", "## Failures", ""]
        lines += [f"- `{r.name}`: {_cell(r.error)} (see `{Path(r.output).name}`)"
                  for r in failed]
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
        "failed": sum(r.status != "ok" for r in summary.table),
        "kept_from_earlier_runs": [r.name for r in summary.kept],
        "notebooks": [asdict(r) for r in summary.table],
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
    parser.add_argument("--out", type=argument(check_folder), default=None,
                        help="results folder (default: runs/ in the repository)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="another papermill parameter, e.g. -p SEED 1 (a Python literal)")
    parser.add_argument("--timeout", type=argument(check_timeout), default=None,
                        help="whole seconds allowed per cell (default: no limit)")
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
    merged = f", merged with {_plural(len(summary.kept), 'row')} of earlier runs" \
        if summary.kept else ""
    print(f"Summary: {where / 'summary.md'} (and summary.json{merged}); executed notebooks in "
          f"{where}/")
    return 0 if summary.ok else 1
