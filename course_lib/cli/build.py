"""Build the notebooks from their single source: ``solutions/NN_topic.py`` (jupytext py:percent).

For each source this writes two notebooks, with no outputs and deterministic bytes:

- ``solutions/NN_topic.ipynb``: the full notebook, solutions included;
- ``notebooks/NN_topic.ipynb``: the student notebook, where every solution region ::

      ### BEGIN SOLUTION
      # HINT: sample eps from N(0, I) and shift and scale it
      eps = torch.randn_like(mu)
      return mu + torch.exp(0.5 * logvar) * eps
      ### END SOLUTION

  is replaced, at the indentation of its ``BEGIN`` line, by ::

      # TODO: sample eps from N(0, I) and shift and scale it
      raise NotImplementedError("Exercise not done yet: ...")

  A hint may run over several lines: the comment lines that directly follow a ``# HINT:``
  line are its continuation lines, kept whole and in order under the ``# TODO:`` line (their
  text unchanged, so ``#       more`` stays aligned under the hint's first word, since
  ``# TODO: `` is as long as ``# HINT: ``). The hint ends at the first line that is not a
  comment: code, a blank line, a ``# STUB:`` or another ``# HINT:`` line (which starts a hint
  of its own, shown on the following lines). So a comment meant for the solution only must not
  sit directly under a hint: put a code line or a blank line in between. ::

      ### BEGIN SOLUTION
      # HINT: encoder = β·kl + llike; decoder = γ·llike + BCE(d_recon → 1);
      #       discriminator = BCE(d_real → 1) + BCE(d_recon → 0)
      ...
      ### END SOLUTION

  becomes ::

      # TODO: encoder = β·kl + llike; decoder = γ·llike + BCE(d_recon → 1);
      #       discriminator = BCE(d_real → 1) + BCE(d_recon → 0)
      raise NotImplementedError("Exercise not done yet: ...")

  A region may carry ``# STUB: <code>`` lines; their code then replaces the ``raise`` line.
  A region at the top level of a cell must have one (``# STUB: answer = None``), because a
  top-level ``raise`` would stop the student notebook, which must run top to bottom (the
  checker cell that follows an exercise falls back to the reference answer).

Command line::

    python -m course_lib build                 # every solutions/NN_*.py
    python -m course_lib build solutions/01_autoencoders.py
    python -m course_lib build --check         # exit 1 if a generated file is stale, missing
                                               # or has no source (orphan); writes nothing

Both modes also verify that each student notebook differs from its solution notebook only
inside the solution regions.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..config import repo_root

SOURCE_DIR = "solutions"
STUDENT_DIR = "notebooks"
#: Sources are ``NN_topic.py``: two digits, an underscore, lower-case words.
SOURCE_PATTERN = re.compile(r"^\d\d_[a-z0-9_]+\.py$")
NOTEBOOK_PATTERN = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)###\s*BEGIN SOLUTION\b")
END_RE = re.compile(r"^[ \t]*###\s*END SOLUTION\b")
HINT_RE = re.compile(r"^[ \t]*#\s*HINT:\s?(?P<text>.*)$")
STUB_RE = re.compile(r"^[ \t]*#\s*STUB:\s?(?P<code>.*)$")
#: A line that is only a comment (a hint's continuation when it directly follows a hint line).
COMMENT_RE = re.compile(r"^[ \t]*#")
CELL_MARKER_RE = re.compile(r"^# %%")

GENERIC_HINT = "write your code here."
STUB_MESSAGE = "Exercise not done yet: replace this line with your code"

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: Cell metadata that only matters to jupytext's text round trip.
_JUPYTEXT_CELL_KEYS = ("cell_marker", "lines_to_next_cell", "lines_to_end_of_cell_marker",
                      "skipline", "noskipline")


class SolutionRegionError(ValueError):
    """A ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region is malformed."""


def _require_notebook_tools():
    try:
        import jupytext
        import nbformat
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            f"building notebooks needs jupytext and nbformat ({exc}); install the notebook "
            "extra: pip install -e '.[notebooks]'"
        ) from exc
    return jupytext, nbformat


# --------------------------------------------------------------------------- regions


def check_regions(text: str, filename: str = "<source>") -> None:
    """Raise :class:`SolutionRegionError` (naming file and line) unless every solution region
    in the py:percent ``text`` is closed, not nested, and stays inside one cell."""
    open_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if BEGIN_RE.match(line):
            if open_line is not None:
                raise SolutionRegionError(
                    f"{filename}:{number}: nested '### BEGIN SOLUTION' (the region opened at "
                    f"line {open_line} is not closed yet); close it with '### END SOLUTION' "
                    "before opening another"
                )
            open_line = number
        elif END_RE.match(line):
            if open_line is None:
                raise SolutionRegionError(
                    f"{filename}:{number}: '### END SOLUTION' without a matching "
                    "'### BEGIN SOLUTION' above it"
                )
            open_line = None
        elif CELL_MARKER_RE.match(line) and open_line is not None:
            raise SolutionRegionError(
                f"{filename}:{number}: a new cell starts inside the solution region opened at "
                f"line {open_line}; a region must end with '### END SOLUTION' in its own cell"
            )
    if open_line is not None:
        raise SolutionRegionError(
            f"{filename}:{open_line}: unterminated '### BEGIN SOLUTION': no "
            "'### END SOLUTION' follows it"
        )


def hint_lines(body: list[str]) -> list[str]:
    """The hint of a solution region's ``body`` (its lines between the markers), one string
    per line: each ``# HINT:`` line gives its text, and each comment line directly below a hint
    line (not a ``# STUB:`` line) is a continuation, kept as the comment it is, without its
    indentation (see the module docstring)."""
    lines: list[str] = []
    in_hint = False
    for line in body:
        hint = HINT_RE.match(line)
        if hint:
            lines.append(hint.group("text").strip())
            in_hint = True
        elif in_hint and COMMENT_RE.match(line) and not STUB_RE.match(line):
            lines.append(line.strip())
            in_hint = True
        else:
            in_hint = False
    return lines


def _stub(indent: str, body: list[str], where: str) -> list[str]:
    hints = hint_lines(body)
    stubs = [m.group("code").rstrip() for m in map(STUB_RE.match, body) if m]
    if not any(h.lstrip("#").strip() for h in hints):
        hints = [GENERIC_HINT]
    lines = [f"{indent}# TODO: {hints[0]}"]
    for text in hints[1:]:
        # a continuation keeps its own '#…' layout; the first line of a later '# HINT:' is
        # aligned under the text of the TODO line
        lines.append(f"{indent}{text}" if text.startswith("#") else f"{indent}#       {text}")
    if stubs:
        lines += [f"{indent}{code}" for code in stubs]
    elif indent == "":
        raise SolutionRegionError(
            f"{where}: a solution region at the top level of a cell needs a '# STUB: <code>' "
            "line (for example '# STUB: answer = None'), because a top-level raise would stop "
            "the student notebook"
        )
    else:
        lines.append(f'{indent}raise NotImplementedError("{STUB_MESSAGE}")')
    return lines


def strip_solutions(source: str, where: str = "<cell>") -> str:
    """Replace each solution region of one code cell's ``source`` by its stub (see the module
    docstring). ``where`` names the cell in error messages."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for number, line in enumerate(source.split("\n"), start=1):
        begin = BEGIN_RE.match(line)
        if begin:
            if region is not None:
                raise SolutionRegionError(f"{where}, line {number}: nested '### BEGIN SOLUTION'")
            region, indent = [], begin.group("indent")
        elif END_RE.match(line):
            if region is None:
                raise SolutionRegionError(
                    f"{where}, line {number}: '### END SOLUTION' without '### BEGIN SOLUTION'"
                )
            out += _stub(indent, region, f"{where}, line {number}")
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise SolutionRegionError(f"{where}: unterminated '### BEGIN SOLUTION'")
    return "\n".join(out)


# --------------------------------------------------------------------------- notebooks


def add_opening(nb):
    """Put the shared opening after the title cell: a note and the Colab install cell
    (:mod:`course_lib.notebook`), written once for every notebook. A source that already has
    a Colab cell is an error: the build adds it."""
    _, nbformat = _require_notebook_tools()
    from ..notebook import COLAB_MARKDOWN, colab_cell

    if any("google.colab" in "".join(cell["source"]) for cell in nb.cells):
        raise ValueError("the source has its own Colab cell: remove it, the build adds the shared one "
                         "(course_lib.notebook.colab_cell)")
    at = 1 if nb.cells and nb.cells[0]["cell_type"] == "markdown" else 0
    nb.cells[at:at] = [nbformat.v4.new_markdown_cell(COLAB_MARKDOWN), nbformat.v4.new_code_cell(colab_cell())]
    return nb


def _normalise(nb, source_rel: str, variant: str):
    """Deterministic metadata, ids and no outputs."""
    metadata = {k: v for k, v in nb.metadata.items() if k != "jupytext"}
    metadata["kernelspec"] = dict(KERNELSPEC)
    metadata["language_info"] = {"name": "python"}
    metadata["course"] = {"generated_from": source_rel, "variant": variant,
                          "note": "generated by `python -m course_lib build`; edit the source"}
    nb.metadata = metadata
    nb.nbformat, nb.nbformat_minor = 4, 5
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items()
                            if k not in _JUPYTEXT_CELL_KEYS}
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def _dumps(nb) -> bytes:
    _, nbformat = _require_notebook_tools()
    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def convert(source: Path, root: Path | None = None) -> tuple[bytes, bytes]:
    """Read the py:percent ``source`` and return the bytes of (solution, student) notebooks."""
    jupytext, _ = _require_notebook_tools()
    source = Path(source)
    rel = _relative(source, root)
    text = source.read_text(encoding="utf-8")
    check_regions(text, rel)
    solution = _normalise(add_opening(jupytext.reads(text, fmt="py:percent")), rel, "solution")
    student = _normalise(add_opening(jupytext.reads(text, fmt="py:percent")), rel, "student")
    for index, cell in enumerate(student.cells):
        if cell["cell_type"] == "code":
            cell["source"] = strip_solutions(cell["source"], f"{rel}, cell {index}")
    return _dumps(solution), _dumps(student)


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def verify_pair(solution_nb, student_nb, name: str = "notebook") -> list[str]:
    """Problems (empty when none) where ``student_nb`` differs from ``solution_nb`` outside the
    solution regions, or still shows a region marker. Both are nbformat notebooks or dicts."""
    problems = []
    sol_cells, stu_cells = solution_nb["cells"], student_nb["cells"]
    if len(sol_cells) != len(stu_cells):
        return [f"{name}: the student notebook has {len(stu_cells)} cells, the solution "
                f"notebook {len(sol_cells)}"]
    for index, (sol, stu) in enumerate(zip(sol_cells, stu_cells)):
        where = f"{name}, cell {index}"
        if sol["cell_type"] != stu["cell_type"]:
            problems.append(f"{where}: cell types differ ({sol['cell_type']} vs {stu['cell_type']})")
            continue
        if sol.get("metadata", {}) != stu.get("metadata", {}):
            problems.append(f"{where}: cell metadata differ")
        sol_lines, stu_lines = _lines(sol["source"]), _lines(stu["source"])
        if any(BEGIN_RE.match(line) or END_RE.match(line) for line in stu_lines):
            problems.append(f"{where}: the student cell still contains a solution region marker")
        if sol["cell_type"] != "code":
            if sol_lines != stu_lines:
                problems.append(f"{where}: {sol['cell_type']} cells differ")
            continue
        inside = _inside_regions(sol_lines)
        matcher = difflib.SequenceMatcher(a=sol_lines, b=stu_lines, autojunk=False)
        for tag, i1, i2, _, _ in matcher.get_opcodes():
            if tag == "equal":
                continue
            if i1 == i2:  # pure insertion: must sit next to a region
                ok = (i1 > 0 and inside[i1 - 1]) or (i1 < len(inside) and inside[i1])
            else:
                ok = all(inside[i1:i2])
            if not ok:
                problems.append(f"{where}: student and solution differ outside a solution "
                                f"region (solution lines {i1 + 1}-{max(i2, i1 + 1)})")
    return problems


def _lines(source) -> list[str]:
    return ("".join(source) if isinstance(source, list) else source).split("\n")


def _inside_regions(lines: list[str]) -> list[bool]:
    inside, flags = False, []
    for line in lines:
        if BEGIN_RE.match(line):
            inside = True
            flags.append(True)
        elif END_RE.match(line):
            flags.append(True)
            inside = False
        else:
            flags.append(inside)
    return flags


# --------------------------------------------------------------------------- build / check


@dataclass
class BuildReport:
    """What :func:`build` did (or, with ``check=True``, found)."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def sources(root: Path) -> list[Path]:
    """Every ``solutions/NN_topic.py`` under ``root``, sorted."""
    folder = Path(root) / SOURCE_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if SOURCE_PATTERN.match(p.name))


def targets(source: Path, root: Path) -> tuple[Path, Path]:
    """(solution notebook, student notebook) generated from ``source``."""
    stem = Path(source).stem
    return Path(root) / SOURCE_DIR / f"{stem}.ipynb", Path(root) / STUDENT_DIR / f"{stem}.ipynb"


def _resolve_source(name: str | Path, root: Path) -> Path:
    """A source path from a .py path, a generated .ipynb path, or a stem such as ``01_ae``."""
    path = Path(name)
    candidates = [path] if path.suffix == ".py" else []
    candidates.append(Path(root) / SOURCE_DIR / f"{path.stem}.py")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no notebook source for {str(name)!r}: expected {SOURCE_DIR}/{path.stem}.py "
        "(a jupytext py:percent file)"
    )


def _orphans(root: Path, stems: set[str]) -> list[Path]:
    found = []
    for folder in (Path(root) / SOURCE_DIR, Path(root) / STUDENT_DIR):
        if folder.is_dir():
            found += [p for p in sorted(folder.iterdir())
                      if NOTEBOOK_PATTERN.match(p.name) and p.stem not in stems]
    return found


def build(root: Path | str | None = None, files=None, check: bool = False) -> BuildReport:
    """Generate (or, with ``check=True``, compare against) the notebooks of ``files`` (sources,
    generated notebooks or stems; default: every source, and then orphan notebooks, those
    without a source, are removed or reported)."""
    _, nbformat = _require_notebook_tools()
    root = Path(root) if root is not None else repo_root()
    if not (root / SOURCE_DIR).is_dir():
        raise FileNotFoundError(f"{root} has no {SOURCE_DIR}/ folder: expected the course's "
                                f"repository root (the folder that holds {SOURCE_DIR}/ and "
                                f"{STUDENT_DIR}/)")
    report = BuildReport()
    if files:
        chosen = [_resolve_source(f, root) for f in files]
    else:
        chosen = sources(root)
    for source in chosen:
        rel = _relative(source, root)
        try:
            solution_bytes, student_bytes = convert(source, root)
        except SolutionRegionError as exc:
            report.problems.append(str(exc))
            continue
        problems = verify_pair(nbformat.reads(solution_bytes.decode(), as_version=4),
                               nbformat.reads(student_bytes.decode(), as_version=4), rel)
        report.problems += problems
        for target, data in zip(targets(source, root), (solution_bytes, student_bytes)):
            current = target.read_bytes() if target.is_file() else None
            if current == data:
                report.unchanged.append(target)
            elif check:
                state = "missing" if current is None else "stale (differs from its source)"
                report.problems.append(f"{_relative(target, root)}: {state}; source {rel}")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".ipynb.tmp")
                tmp.write_bytes(data)
                tmp.replace(target)
                report.written.append(target)
    if not files:
        for orphan in _orphans(root, {s.stem for s in chosen}):
            if check:
                report.problems.append(
                    f"{_relative(orphan, root)}: orphan (no source {SOURCE_DIR}/{orphan.stem}.py)")
            else:
                orphan.unlink()
                report.removed.append(orphan)
    return report


def main(argv=None, prog: str | None = None) -> int:
    """``python -m course_lib build [--check] [--root DIR] [files...]``."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Build solutions/NN_topic.ipynb and the student "
        "notebooks/NN_topic.ipynb from solutions/NN_topic.py.")
    parser.add_argument("files", nargs="*",
                        help="sources (solutions/NN_topic.py), notebooks or stems; default: all")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated notebook is stale, missing "
                             "or an orphan")
    parser.add_argument("--root", type=Path, default=None,
                        help="course repository (default: the one holding course_lib)")
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else repo_root()
    report = build(root, args.files, check=args.check)
    for path in report.written:
        print(f"wrote   {_relative(path, root)}")
    for path in report.removed:
        print(f"removed {_relative(path, root)} (no source)")
    if report.problems:
        for problem in report.problems:
            print(f"error: {problem}", file=sys.stderr)
        if args.check:
            print("Run `python -m course_lib build` to regenerate the notebooks "
                  "(never edit them by hand).", file=sys.stderr)
        return 1
    count = len(report.written) + len(report.unchanged)
    if args.check:
        print(f"ok: {count} generated notebooks are up to date")
    elif not report.written:
        print(f"ok: {count} generated notebooks were already up to date")
    return 0
