"""The opening that every notebook shares, written once.

``python -m course_lib build`` puts the Colab cell (:data:`COLAB_MARKDOWN`, :func:`colab_cell`)
after each notebook's title, and each notebook's set-up cell calls :func:`setup`, which says
what it set::

    device = setup(SEED, DEVICE, PROFILE)
    torch 2.13.0+cpu, course_lib 0.1.0, device cpu, profile quick, seed 0, 2 CPU threads;
    figures in runs/figures, trained models in runs/checkpoints
"""

from __future__ import annotations

import torch

from . import REPO_URL, __version__, viz
from .config import repo_root, runs_dir
from .train import choose_device, seed_everything

COLAB_MARKDOWN = "In Colab, the next cell installs the course library; elsewhere it does nothing."


def colab_cell() -> str:
    """The source of the Colab install cell (a no-op outside Colab)."""
    return ("import sys\n\n"
            'if "google.colab" in sys.modules:  # install the course only inside Colab\n'
            "    get_ipython().run_line_magic(  # noqa: F821 - defined by IPython\n"
            f"        \"pip\", 'install -q \"git+{REPO_URL}\"')")


def setup(seed: int, device="auto", profile: str | None = None, *, threads: int | None = None) -> torch.device:
    """Seed every generator with ``seed``, choose the device (``"auto"``: CUDA, then MPS, then
    the CPU), on the CPU use ``threads`` torch threads when given, create ``runs/figures`` (its
    ``smoke`` subfolder in the smoke profile, see :func:`course_lib.viz.figures_dir`) and
    ``runs/checkpoints``, print what was set, and return the device."""
    seed_everything(seed)
    chosen = choose_device(device)
    if threads is not None and chosen.type == "cpu":
        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
        torch.set_num_threads(int(threads))
    runs = runs_dir()
    viz.FIGURES_SUBFOLDER = "smoke" if profile == "smoke" else ""
    for folder in (viz.figures_dir(), runs / "checkpoints"):
        folder.mkdir(parents=True, exist_ok=True)
    shown = "runs" if runs == repo_root() / "runs" else str(runs)
    figures = f"{shown}/figures" + (f"/{viz.FIGURES_SUBFOLDER}" if viz.FIGURES_SUBFOLDER else "")
    print(f"torch {torch.__version__}, course_lib {__version__}, device {chosen}, profile {profile}, "
          f"seed {seed}, {torch.get_num_threads()} CPU threads;\nfigures in {figures}, trained models in "
          f"{shown}/checkpoints")
    return chosen
