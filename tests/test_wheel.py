"""The shipped checkpoints travel with an install: build the wheel, install it into a fresh
folder, and find every shipped model from there (what a Colab user gets from
``pip install git+...``). Without the checkpoints, the course says so loudly.

The wheel is built from a copy of the files it is made of (pyproject.toml, README.md,
course_lib/, data/checkpoints/), with no build isolation and no dependencies (nothing is
downloaded; torch comes from this environment). About 15 s.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import course_lib.checkpoints as ck

ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = [p for p in sys.path if p.endswith("site-packages")]


def _copy_source(dest: Path) -> Path:
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "course_lib", dest / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "_shipped"))
    shipped = dest / "data" / "checkpoints"
    shipped.mkdir(parents=True)
    for path in ck.REPOSITORY_DIR.iterdir():
        if path.is_file() and (path.suffix == ".pt" or path.name == ck.MANIFEST):
            shutil.copy2(path, shipped / path.name)
    # a run in progress (pretrain --resume) must not travel with the wheel
    (shipped / "unfinished").mkdir()
    (shipped / "unfinished" / "half-done.pt").write_bytes(b"not shipped")
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, folder the wheel was installed into)."""
    pytest.importorskip("pip")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_source(tmp / "src")
    dist, target = tmp / "dist", tmp / "site"
    quiet = dict(capture_output=True, text=True, timeout=300)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                            "--no-build-isolation", "--no-index", "-q", "-w", str(dist)], **quiet)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("course_lib-*.whl")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                           "--target", str(target), str(wheel)], **quiet)
    assert done.returncode == 0, done.stdout + done.stderr
    return wheel, target


def test_the_wheel_holds_every_subpackage_and_the_shipped_checkpoints(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    subpackages = {str(p.parent.relative_to(ROOT)).replace(os.sep, "/")
                   for p in (ROOT / "course_lib").rglob("__init__.py") if "__pycache__" not in p.parts}
    missing = [pkg for pkg in subpackages if f"{pkg}/__init__.py" not in names]
    assert not missing, f"list these in [tool.setuptools] packages of pyproject.toml: {missing}"
    manifest = ck.read_manifest(ck.REPOSITORY_DIR)["checkpoints"]
    assert manifest, "the repository ships no checkpoint"
    shipped = {n for n in names if n.startswith("course_lib/_shipped/")}
    assert shipped == {f"course_lib/_shipped/{e['file']}" for e in manifest.values()} | {
        f"course_lib/_shipped/{ck.MANIFEST}"}
    assert not any("unfinished" in n for n in names)


INSTALLED_CHECK = r"""
import json, sys, warnings
warnings.simplefilter("error", UserWarning)   # a MissingCheckpointsWarning fails the check
import course_lib, course_lib.checkpoints as ck
found = {"course_lib": course_lib.__file__, "folder": str(ck.checkpoint_dir()), "models": {}}
for key, entry in ck.read_manifest()["checkpoints"].items():
    model = ck.load_shipped(key, device="cpu")           # sha256 checked against the manifest
    hit = ck.find_shipped(entry["recipe"])                # the recipe look-up of load_or_train
    found["models"][key] = {"class": type(model).__name__, "found": hit is not None and hit[0] == key}
result = ck.load_or_train("beta_vae", profile="quick", device="cpu", progress=False)
found["load_or_train"] = result.extra["source"]
print(json.dumps(found))
"""


def test_every_shipped_model_is_found_from_the_installed_wheel(installed, tmp_path):
    """A fresh interpreter that sees only the installed wheel (and torch & co. from this
    environment; no editable install, not the repository) loads every shipped model."""
    _, target = installed
    env = {k: v for k, v in os.environ.items() if k not in (ck.ENV_VAR, "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), *SITE_PACKAGES])
    # -S: no site-packages .pth files, so the repository's editable install is not on the path
    run = subprocess.run([sys.executable, "-S", "-c", INSTALLED_CHECK], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(found["course_lib"]).is_relative_to(target)
    assert Path(found["folder"]) == target / "course_lib" / "_shipped"
    expected = ck.read_manifest(ck.REPOSITORY_DIR)["checkpoints"]
    assert set(found["models"]) == set(expected)
    assert all(m["found"] for m in found["models"].values()), found["models"]
    assert found["load_or_train"] == "shipped"
    print(f"\ninstalled wheel: {len(found['models'])} shipped models found in {found['folder']}: "
          f"{', '.join(sorted(found['models']))}")


def test_a_missing_checkpoint_folder_is_a_loud_warning(tmp_path, monkeypatch):
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.setattr(ck, "INSTALLED_DIR", tmp_path / "site" / "course_lib" / "_shipped")
    monkeypatch.setattr(ck, "REPOSITORY_DIR", tmp_path / "repo" / "data" / "checkpoints")
    with pytest.warns(ck.MissingCheckpointsWarning, match="trained from scratch"):
        assert ck.read_manifest()["checkpoints"] == {}
    monkeypatch.setenv(ck.ENV_VAR, str(tmp_path / "typo"))
    with pytest.warns(ck.MissingCheckpointsWarning, match="COURSE_CHECKPOINTS"):
        assert ck.read_manifest()["checkpoints"] == {}
    # the installed copy is used when there is no repository folder
    monkeypatch.delenv(ck.ENV_VAR)
    ck.INSTALLED_DIR.mkdir(parents=True)
    assert ck.checkpoint_dir() == ck.INSTALLED_DIR


def test_the_repository_folder_is_the_default_in_a_checkout(monkeypatch):
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    assert not ck.INSTALLED_DIR.exists()  # course_lib/_shipped exists only in a wheel
    assert ck.checkpoint_dir() == ROOT / "data" / "checkpoints" == ck.REPOSITORY_DIR
