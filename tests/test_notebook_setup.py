"""course_lib.notebook.setup: the set-up call that every notebook makes."""

import matplotlib.pyplot as plt
import pytest
import torch

from course_lib import viz
from course_lib.notebook import setup


def test_setup_seeds_chooses_the_device_makes_folders_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path / "out"))
    threads = torch.get_num_threads()
    try:
        device = setup(7, "cpu", "quick", threads=1)
        first = torch.rand(3)
        assert device == torch.device("cpu") and torch.get_num_threads() == 1
        setup(7, "cpu", "quick")
        assert torch.equal(torch.rand(3), first)  # the same seed, the same draws
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "out" / "figures").is_dir() and (tmp_path / "out" / "checkpoints").is_dir()
    out = capsys.readouterr().out
    assert "device cpu, profile quick, seed 7, 1 CPU threads" in out and str(tmp_path / "out") in out
    assert viz.save_figure(plt.figure(), "t.png") == tmp_path / "out" / "figures" / "t.png"


def test_a_smoke_run_saves_its_figures_apart(tmp_path, monkeypatch, capsys):
    """make test runs every notebook in the smoke profile: its figures must not replace those of
    a quick or full run."""
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))
    try:
        setup(0, "cpu", "smoke")
        assert "figures in " + str(tmp_path / "figures" / "smoke") in capsys.readouterr().out
        assert viz.save_figure(plt.figure(), "t.png") == tmp_path / "figures" / "smoke" / "t.png"
        setup(0, "cpu", "quick")
        assert viz.save_figure(plt.figure(), "t.png") == tmp_path / "figures" / "t.png"
    finally:
        viz.FIGURES_SUBFOLDER = ""


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_setup_refuses_a_bad_thread_count(threads):
    with pytest.raises(ValueError, match="threads must be a whole number >= 1"):
        setup(0, "cpu", threads=threads)
