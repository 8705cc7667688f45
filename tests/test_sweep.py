"""Sweeps: every combination runs through papermill, failures are reported, reruns skip
what is complete; local and Ray backends give the same table."""

import csv
import json

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")

from course_lib import sweep  # noqa: E402


def tiny_notebook(folder):
    """A notebook whose headline is 10·BETA + SEED, and which fails for BETA == 16."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("PROFILE = None\nBETA = 1\nSEED = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "from course_lib.report import headline\n"
            "if BETA == 16:\n"
            "    raise ValueError('beta too large for this test')\n"
            "headline('score', 10 * BETA + SEED)\n"
            "headline('profile', PROFILE)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "99_tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_grid_and_run_ids():
    combos = sweep.grid({"beta": [1, 4], "seed": [0, 1, 2]})
    assert len(combos) == 6 and combos[0] == {"beta": 1, "seed": 0}
    assert combos[-1] == {"beta": 4, "seed": 2}
    assert sweep.run_id({"beta": 1e-3, "seed": 0}) == "beta-0.001_seed-0"
    assert sweep.run_id({"name": "a b"}) == "name-a_b"
    with pytest.raises(ValueError, match="identifier"):
        sweep.grid({"1x": [1]})
    with pytest.raises(ValueError, match="profile"):
        sweep.grid({"PROFILE": ["smoke"]})
    with pytest.raises(ValueError, match="repeats"):
        sweep.grid({"beta": [1, 1]})


def check_results(summary, folder):
    rows = {r["run"]: r for r in summary["rows"]}
    assert set(rows) == {"BETA-1_SEED-0", "BETA-1_SEED-2", "BETA-16_SEED-0", "BETA-16_SEED-2"}
    assert rows["BETA-1_SEED-2"]["score"] == 12 and rows["BETA-1_SEED-0"]["score"] == 10
    assert rows["BETA-1_SEED-0"]["profile"] == "smoke"
    failed = rows["BETA-16_SEED-0"]
    assert failed["status"] == "failed" and "beta too large" in failed["error"]
    assert len(summary["failed"]) == 2
    # each run: the executed notebook and its result
    assert (folder / "BETA-1_SEED-2" / "99_tiny.ipynb").exists()
    record = json.loads((folder / "BETA-1_SEED-2" / "result.json").read_text())
    assert record["status"] == "ok" and record["parameters"] == {"BETA": 1, "SEED": 2}
    # the gathered table and plot
    with open(summary["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4 and {"BETA", "SEED", "status", "score", "error"} <= set(table[0])
    data = json.loads(summary["json"].read_text())
    assert data["failed"] == 2 and len(data["rows"]) == 4
    assert summary["plot"] is not None and summary["plot"].stat().st_size > 0


def test_local_sweep_reports_failures_and_skips_complete_runs(tmp_path):
    nb = tiny_notebook(tmp_path)
    params = {"BETA": [1, 16], "SEED": [0, 2]}
    summary = sweep.run_sweep(nb, params, profile="smoke", out=tmp_path / "sweeps",
                              workers=2, log=lambda *a: None)
    check_results(summary, tmp_path / "sweeps" / "99_tiny")
    assert summary["skipped"] == []
    again = sweep.run_sweep(nb, params, profile="smoke", out=tmp_path / "sweeps",
                            log=lambda *a: None)
    assert sorted(again["skipped"]) == ["BETA-1_SEED-0", "BETA-1_SEED-2"]
    check_results(again, tmp_path / "sweeps" / "99_tiny")


def test_command_line(tmp_path, capsys):
    nb = tiny_notebook(tmp_path)
    status = sweep.main([str(nb), "-p", "BETA", "1", "-p", "SEED", "3", "--profile", "smoke",
                         "--out", str(tmp_path / "s"), "--name", "cli"])
    assert status == 0
    out = capsys.readouterr().out
    assert "1 runs, 0 failed" in out and "BETA-1_SEED-3" in out
    assert (tmp_path / "s" / "cli" / "results.csv").exists()
    with pytest.raises(ValueError, match="at least one value"):
        sweep.main([str(nb), "-p", "BETA"])


@pytest.mark.slow  # starting Ray takes tens of seconds on a busy 2-core machine
def test_ray_sweep_gives_the_same_table(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is not installed (optional extra: "
                                            "pip install -e '.[ray]'); the ray backend is untested here")
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "300")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    nb = tiny_notebook(tmp_path)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        summary = sweep.run_sweep(nb, {"BETA": [1, 16], "SEED": [0, 2]}, profile="smoke",
                                  out=tmp_path / "sweeps", backend="ray", log=lambda *a: None)
    finally:
        ray.shutdown()
    check_results(summary, tmp_path / "sweeps" / "99_tiny")
