"""The notebook runner (python -m course_lib run): papermill, headline figures, summaries."""

import json
import os

import nbformat
import pytest

from course_lib.cli import main as cli
from course_lib.cli import run as r
from course_lib.config import repo_root


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


def quiet(*args):
    pass


def test_misspelled_parameter_is_an_error(two_notebooks, capsys):
    root, good, _ = two_notebooks
    out = root / "runs"
    with pytest.raises(ValueError, match=r"'XX'.*01_good.*parameters: PROFILE, X"):
        r.run_notebooks([good], "smoke", out, root, {"XX": 1}, progress=False, log=quiet)
    assert cli(["run", str(good), "--out", str(out), "-p", "XX", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'XX'" in err and "Traceback" not in err
    assert not out.exists()  # nothing ran


def test_parameter_that_some_notebooks_lack_is_a_warning(two_notebooks):
    _, good, bad = two_notebooks
    messages = []
    r.check_parameters([good, bad], {"X": 1}, log=messages.append)
    assert len(messages) == 1 and "02_bad" in messages[0] and "'X'" in messages[0]
    assert r.notebook_parameters(good) == ["PROFILE", "X"]


def test_notebook_parameters(tmp_path):
    path = _notebook(tmp_path / "a.ipynb", "A = 1\nB: int = 2\nC, D = 3, 4\nfor i in []:\n    pass",
                     "print(A)")
    assert r.notebook_parameters(path) == ["A", "B", "C", "D"]
    magic = _notebook(tmp_path / "b.ipynb", "%matplotlib inline\nA = 1\nB: int = 2\nA == 3", "")
    assert r.notebook_parameters(magic) == ["A", "B"]
    plain = nbformat.v4.new_notebook()
    plain.cells = [nbformat.v4.new_code_cell("A = 1")]
    nbformat.write(plain, str(tmp_path / "c.ipynb"))
    assert r.notebook_parameters(tmp_path / "c.ipynb") is None
    with pytest.raises(ValueError, match="no cell tagged parameters"):
        r.check_parameters([tmp_path / "c.ipynb"], {"A": 1})


def test_subset_run_merges_into_the_summary(two_notebooks):
    root, _, _ = two_notebooks
    out = root / "runs"
    r.run_notebooks(None, "smoke", out, root, {"X": 21}, progress=False, log=quiet)
    messages = []
    summary = r.run_notebooks(["01_good"], "smoke", out, root, {"X": 5}, progress=False,
                              log=messages.append)
    assert summary.ok and [res.name for res in summary.results] == ["01_good"]
    assert any("merged" in m and "02_bad" in m for m in messages)
    data = json.loads((out / "smoke" / "summary.json").read_text())
    rows = {n["name"]: n for n in data["notebooks"]}
    assert list(rows) == ["01_good", "02_bad"] and data["failed"] == 1
    assert rows["01_good"]["headlines"][0]["value"] == 10
    assert rows["01_good"]["parameters"]["X"] == 5
    assert rows["02_bad"]["status"] == "failed" and rows["02_bad"]["parameters"]["X"] == 21
    assert (out / "smoke" / "02_bad.ipynb").exists()
    md = (out / "smoke" / "summary.md").read_text()
    assert "| 01_good | ok |" in md and "X times two: 10" in md and "| 02_bad | failed |" in md
    assert "earlier" in md and "`X = 21`" in md


def exit_status(argv):
    """The status of `python -m course_lib ARGV`, argparse's exits included."""
    try:
        return cli(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("args, message", [
    (["--out", "FILE"], "expected a folder"),
    (["--out", "FILE/sub"], "expected a folder"),
    (["--timeout", "2.5"], "positive whole number of seconds"),
    (["--timeout", "-1"], "positive whole number of seconds"),
    (["--timeout", "nan"], "positive whole number of seconds"),
])
def test_command_line_errors_are_one_line(two_notebooks, capsys, args, message):
    root, good, _ = two_notebooks
    (root / "FILE").write_text("not a folder")
    args = [str(root / a) if a.startswith("FILE") else a for a in args]
    out = [] if "--out" in args else ["--out", str(root / "runs")]
    assert exit_status(["run", str(good), "--profile", "smoke", *out, *args]) == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not (root / "runs").exists()


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
