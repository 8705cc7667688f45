"""The notebook runner (python -m course_lib run): papermill, headline figures, summaries."""

import json
import os

import nbformat
import pytest

from course_lib import run as r
from course_lib.__main__ import main as cli
from course_lib.build import repo_root


def _notebook(path, parameters, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _stdout(nb):
    return "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.fixture
def two_notebooks(tmp_path):
    good = _notebook(
        tmp_path / "notebooks" / "01_good.ipynb", 'PROFILE = "quick"\nX = 1',
        "import os\nfrom course_lib.report import headline\n"
        'print(f"X is {X}; profile {PROFILE}; env {os.environ[\'COURSE_PROFILE\']}")\n'
        'headline("X times two", X * 2)\nheadline("a third", 1 / 3, ".2f")')
    bad = _notebook(tmp_path / "notebooks" / "02_bad.ipynb", 'PROFILE = "quick"',
                    'raise ValueError("broken on purpose\\nsecond line of the error")')
    return tmp_path, good, bad


def test_run_changed_parameter_reaches_output_and_failures_are_summarised(two_notebooks):
    root, good, bad = two_notebooks
    out = root / "runs"
    summary = r.run_notebooks(None, "smoke", out, root, {"X": 21}, progress=False,
                              log=lambda *a: None)
    assert [res.name for res in summary.results] == ["01_good", "02_bad"]  # one failure, run goes on
    assert not summary.ok and [f.name for f in summary.failed] == ["02_bad"]

    executed = nbformat.read(str(out / "smoke" / "01_good.ipynb"), as_version=4)
    assert "X is 21; profile smoke; env smoke" in _stdout(executed)  # papermill parameters won
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)

    data = json.loads((out / "smoke" / "summary.json").read_text())
    assert data["profile"] == "smoke" and data["failed"] == 1
    assert data["parameters"] == {"PROFILE": "smoke", "X": 21}
    first, second = data["notebooks"]
    assert first["status"] == "ok" and first["error"] is None and first["seconds"] > 0
    assert first["headlines"][0] == {"name": "X times two", "value": 42, "text": "42"}
    assert first["headlines"][1]["text"] == "0.33"
    assert second["status"] == "failed"
    assert second["error"].startswith("ValueError: second line of the error")
    assert (out / "smoke" / "02_bad.ipynb").exists()  # the failed run is kept to inspect

    md = (out / "smoke" / "summary.md").read_text()
    assert "| 01_good | ok |" in md and "X times two: 42; a third: 0.33" in md
    assert "| 02_bad | failed |" in md and "## Failures" in md and "`X = 21`" in md
    assert not list((out / "smoke").glob(".*headlines*"))  # scratch files cleaned up
    assert "COURSE_HEADLINES" not in os.environ


def test_unknown_profile_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown profile 'fast'.*smoke, quick, full"):
        r.run_notebooks(None, "fast", tmp_path / "runs", tmp_path)
    assert cli(["run", "--profile", "fast"]) == 2
    assert "unknown profile 'fast'" in capsys.readouterr().err


def test_no_notebooks_and_unknown_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="course_lib build"):
        r.find_notebooks(None, tmp_path)
    with pytest.raises(FileNotFoundError, match="no notebook '07_nope'"):
        r.find_notebooks(["07_nope"], tmp_path)


def test_find_notebooks_by_name_and_path(two_notebooks):
    root, good, bad = two_notebooks
    assert r.find_notebooks(None, root) == [good, bad]
    assert r.find_notebooks(["02_bad", str(good)], root) == [bad, good]


def test_parse_value():
    assert r.parse_value("100") == 100
    assert r.parse_value("1e-4") == 1e-4
    assert r.parse_value("[1, 2]") == [1, 2]
    assert r.parse_value("cpu") == "cpu"


@pytest.mark.slow
def test_real_first_notebook_runs_in_smoke_with_a_changed_seed(tmp_path):
    notebooks = sorted((repo_root() / "notebooks").glob("01_*.ipynb"))
    if not notebooks:
        pytest.skip("notebooks/01_*.ipynb is not built yet")
    summary = r.run_notebooks([notebooks[0]], "smoke", tmp_path, parameters={"SEED": 7},
                              progress=False, log=lambda *a: None)
    assert summary.ok, summary.failed
    executed = nbformat.read(str(tmp_path / "smoke" / notebooks[0].name), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "SEED = 7" in injected[0].source
