"""Every figure a notebook draws is shown: a figure returned by a ``viz`` call that is neither the
cell's last expression nor passed to ``display`` is silently dropped by Jupyter, while the text
around it still asks the reader to look at it."""

import ast
from pathlib import Path

import pytest

SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.py"))
#: viz functions that return a figure (or widget) instead of displaying it
NOT_DRAWING = {"viz.save_figure", "viz.figure", "viz.runs_dir", "viz.figures_dir"}


def dropped_figures(source: str) -> list[tuple[int, str]]:
    """(line, call) of each bare ``viz.*(...)`` expression, or bare ``fig``, that is not its cell's
    last statement."""
    lines = source.split("\n")
    starts = [0] + [i + 1 for i, line in enumerate(lines) if line.startswith("# %%")]
    found = []
    for k, start in enumerate(starts):
        end = starts[k + 1] - 1 if k + 1 < len(starts) else len(lines)
        try:
            tree = ast.parse("\n".join(lines[start:end]))
        except SyntaxError:  # a markdown cell's text
            continue
        last = tree.body[-1] if tree.body else None
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Name) and node.value.id == "fig" \
                    and node is not last:
                found.append((start + node.lineno, "fig"))
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                name = ast.unparse(node.value.func)
                if name.startswith("viz.") and name not in NOT_DRAWING and node is not last:
                    found.append((start + node.lineno, name))
    return found


def test_the_scan_finds_a_dropped_figure_and_accepts_shown_ones():
    cell = ("# %%\nviz.plot_history(h)\nx = 1\n# %%\ndisplay(viz.plot_history(h))\nx = 2\n# %%\n"
            "viz.show_images(x)\n# %%\nfig\ny = 3\n# %%\nfig\n")
    assert dropped_figures(cell) == [(2, "viz.plot_history"), (10, "fig")]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_viz_figure_is_shown(path):
    assert dropped_figures(path.read_text(encoding="utf-8")) == []
