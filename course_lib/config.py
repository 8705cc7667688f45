"""Where the course keeps its files, and every ``COURSE_*`` environment variable.

One rule finds the repository: the folder that holds ``pyproject.toml`` and ``course_lib/``,
first the one this package was loaded from (a checkout or an editable install, as the course
uses), else the first such folder upwards from the current directory; with neither (a wheel
installed on Colab, run from anywhere) the current directory stands in for it.

=========================  ===================================================================
variable                   meaning
=========================  ===================================================================
``COURSE_PROFILE``         the default profile: ``smoke``, ``quick`` or ``full`` (else quick)
``COURSE_RUNS``            the results folder (else ``<repository>/runs``)
``COURSE_CHECKPOINTS``     the folder of the shipped checkpoints (else ``data/checkpoints``)
``COURSE_DATA``            downloaded data such as MNIST (else ``~/.cache/course_lib``)
``COURSE_HEADLINES``       a JSON-lines file that :func:`course_lib.report.headline` appends to
``COURSE_PARAMETERS``      JSON ``{name: value}``: the parameters of the notebook being run
``COURSE_NO_PROGRESS``     set (not "" or "0") by ``course_lib run``: training draws no progress
                           bar (a saved notebook would keep it as first drawn, e.g. at 0 %)
=========================  ===================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILE_VAR = "COURSE_PROFILE"
RUNS_VAR = "COURSE_RUNS"
CHECKPOINTS_VAR = "COURSE_CHECKPOINTS"
DATA_VAR = "COURSE_DATA"
HEADLINES_VAR = "COURSE_HEADLINES"
PARAMETERS_VAR = "COURSE_PARAMETERS"
NO_PROGRESS_VAR = "COURSE_NO_PROGRESS"
#: Every variable the course reads.
VARIABLES = (PROFILE_VAR, RUNS_VAR, CHECKPOINTS_VAR, DATA_VAR, HEADLINES_VAR, PARAMETERS_VAR, NO_PROGRESS_VAR)

#: The folder this package was loaded from, one level up: the repository in a checkout.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def _is_repository(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "course_lib").is_dir()


def repo_root() -> Path:
    """The course repository (see the module docstring for the rule)."""
    if _is_repository(PACKAGE_PARENT):
        return PACKAGE_PARENT
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if _is_repository(folder):
            return folder
    return here


def env_path(variable: str) -> Path | None:
    """The path in ``$variable``, or None when it is unset or empty."""
    value = os.environ.get(variable)
    return Path(value) if value else None


def runs_dir(root: str | os.PathLike | None = None) -> Path:
    """``$COURSE_RUNS``, else ``runs/`` of ``root`` (default: the repository)."""
    return env_path(RUNS_VAR) or Path(root if root is not None else repo_root()) / "runs"


def data_dir() -> Path:
    """``$COURSE_DATA``, else ``~/.cache/course_lib``: data that is downloaded, not generated."""
    return env_path(DATA_VAR) or Path.home() / ".cache" / "course_lib"


#: The shipped checkpoints in a source checkout (or an editable install).
REPOSITORY_CHECKPOINTS = PACKAGE_PARENT / "data" / "checkpoints"
#: The same files inside an installed wheel (``course_lib._shipped``, see pyproject.toml).
INSTALLED_CHECKPOINTS = Path(__file__).resolve().parent / "_shipped"
