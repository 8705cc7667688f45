"""Sweeps: every combination runs through papermill, failures are reported, reruns skip
what is complete; local and Ray backends give the same table."""

import csv
import json

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")

from course_lib.cli import main as cli  # noqa: E402 - after the importorskip above
from course_lib.cli import sweep  # noqa: E402 - after the importorskip above


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


def quiet(*args):
    pass


def test_rerun_under_another_profile_or_notebook_runs_again(tmp_path):
    nb = tiny_notebook(tmp_path)
    out = tmp_path / "sweeps"
    first = sweep.run_sweep(nb, {"BETA": [1]}, profile="smoke", out=out, log=quiet)
    assert first["rows"][0]["profile"] == "smoke"
    messages = []
    second = sweep.run_sweep(nb, {"BETA": [1]}, profile="quick", out=out, log=messages.append)
    assert second["skipped"] == [] and second["rows"][0]["profile"] == "quick"
    assert any("BETA-1" in m and "smoke" in m and "again" in m for m in messages)
    third = sweep.run_sweep(nb, {"BETA": [1]}, profile="quick", out=out, log=quiet)
    assert third["skipped"] == ["BETA-1"]
    edited = nbformat.read(nb, as_version=4)
    edited.cells.append(nbformat.v4.new_code_cell("headline('extra', 1)"))
    nbformat.write(edited, nb)
    fourth = sweep.run_sweep(nb, {"BETA": [1]}, profile="quick", out=out, log=quiet)
    assert fourth["skipped"] == [] and fourth["rows"][0]["extra"] == 1


def test_completion_key_tells_apart_runs_that_share_a_folder():
    assert sweep.run_id({"X": "a b"}) == sweep.run_id({"X": "a_b"})
    key = sweep.completion_key
    assert key("smoke", {"X": "a b"}, "h") != key("smoke", {"X": "a_b"}, "h")
    assert key("smoke", {"X": 1}, "h") != key("smoke", {"X": 1.0}, "h")
    assert key("smoke", {"X": 1}, "h") != key("quick", {"X": 1}, "h")
    assert key("smoke", {"X": 1}, "h") != key("smoke", {"X": 1}, "other notebook")
    assert key("smoke", {"X": 1, "Y": 2}, "h") == key("smoke", {"Y": 2, "X": 1}, "h")


def test_misspelled_parameter_is_an_error_before_anything_runs(tmp_path, capsys):
    nb = tiny_notebook(tmp_path)
    with pytest.raises(ValueError, match=r"'BETTA'.*parameters: PROFILE, BETA, SEED"):
        sweep.run_sweep(nb, {"BETTA": [1]}, profile="smoke", out=tmp_path / "s", log=quiet)
    assert cli(["sweep", str(nb), "-p", "BETTA", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "BETTA" in err and "Traceback" not in err
    assert not list((tmp_path / "s").glob("*/BETTA*"))


def named_notebook(folder):
    """A notebook whose headline names carry the value of BETA, as notebook 03's do."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("PROFILE = None\nBETA = 1\nSEED = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from course_lib.report import headline\n"
        "headline(f'MIG on 10 images (β={float(BETA):g}, |z|=3)', BETA / 10 + SEED)\n"
        "headline(f'recon (nats/image), β={BETA}', 100 - BETA)\n"
        "headline(f'score for beta {float(BETA)}', BETA)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "98_named.ipynb"
    nbformat.write(nb, path)
    return path


def test_headlines_named_with_the_parameter_give_one_column(tmp_path):
    nb = named_notebook(tmp_path)
    summary = sweep.run_sweep(nb, {"BETA": [1, 4], "SEED": [0, 1]}, profile="smoke",
                              out=tmp_path / "s", workers=2, log=quiet)
    with open(summary["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["run", "BETA", "SEED", "status", "seconds", "error",
                              "MIG on 10 images", "recon (nats/image)", "score for beta BETA"]
    assert len(table) == 4 and [float(r["MIG on 10 images"]) for r in table] == [0.1, 1.1, 0.4, 1.4]
    assert summary["plot"] is not None


def exit_status(argv):
    """The status of `python -m course_lib ARGV`, argparse's exits included."""
    try:
        return cli(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("args, message", [
    (["--out", "FILE"], "expected a folder"),
    (["--timeout", "1.5"], "positive whole number of seconds"),
    (["--timeout", "-3"], "positive whole number of seconds"),
    (["--timeout", "0"], "positive whole number of seconds"),
    (["--name", "../../x"], "single folder name"),
    (["--name", "ABS"], "single folder name"),
    (["--name", ".."], "single folder name"),
    (["--workers", "0"], "positive whole number"),
    (["--workers", "-2"], "positive whole number"),
    (["--gpus-per-run", "-1"], "number >= 0"),
])
def test_command_line_errors_are_one_line(tmp_path, capsys, args, message):
    nb = tiny_notebook(tmp_path)
    (tmp_path / "FILE").write_text("not a folder")
    paths = {"FILE": tmp_path / "FILE", "ABS": tmp_path / "x"}
    args = [str(paths[a]) if a in paths else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "a" / "s")]
    assert exit_status(["sweep", str(nb), "-p", "BETA", "1", *out, *args]) == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "a").exists()
