"""course_lib.config: one rule for the repository, the folders, and every COURSE_* variable."""

import re
from pathlib import Path

import course_lib
from course_lib import config


def test_repository_is_the_checkout_this_package_came_from():
    root = config.repo_root()
    assert (root / "pyproject.toml").is_file() and (root / "course_lib" / "__init__.py").is_file()
    assert Path(course_lib.__file__).resolve().parent.parent == root


def test_without_a_checkout_the_repository_is_found_upwards_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "PACKAGE_PARENT", tmp_path / "site-packages")
    repo = tmp_path / "course"
    (repo / "course_lib").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\n")
    (repo / "notebooks").mkdir()
    monkeypatch.chdir(repo / "notebooks")
    assert config.repo_root() == repo.resolve()
    monkeypatch.chdir(tmp_path)  # no repository above: the working directory stands in
    assert config.repo_root() == tmp_path.resolve()


def test_folders_and_their_variables(tmp_path, monkeypatch):
    monkeypatch.delenv(config.RUNS_VAR, raising=False)
    monkeypatch.delenv(config.DATA_VAR, raising=False)
    assert config.runs_dir() == config.repo_root() / "runs"
    assert config.runs_dir(tmp_path) == tmp_path / "runs"
    assert config.data_dir() == Path.home() / ".cache" / "course_lib"
    monkeypatch.setenv(config.RUNS_VAR, str(tmp_path / "elsewhere"))
    monkeypatch.setenv(config.DATA_VAR, str(tmp_path / "data"))
    assert config.runs_dir() == config.runs_dir(tmp_path) == tmp_path / "elsewhere"
    assert config.data_dir() == tmp_path / "data"
    monkeypatch.setenv(config.RUNS_VAR, "")  # empty counts as unset
    assert config.runs_dir(tmp_path) == tmp_path / "runs"


def test_no_other_module_names_a_course_variable():
    """Every COURSE_* variable is spelled once, in course_lib/config.py."""
    package = Path(course_lib.__file__).resolve().parent
    spelled = re.compile(r"[\"']COURSE_[A-Z_]+[\"']")
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if p.name != "config.py" and spelled.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    assert set(config.VARIABLES) == {"COURSE_PROFILE", "COURSE_RUNS", "COURSE_CHECKPOINTS", "COURSE_DATA",
                                     "COURSE_HEADLINES", "COURSE_PARAMETERS", "COURSE_NO_PROGRESS"}
