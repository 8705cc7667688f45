"""pyproject.toml and environment.yml list the same packages with the same lower bounds."""

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")
NOT_PACKAGES = {"python", "pip"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(text: str) -> tuple[str, str]:
    """('numpy', '>=1.24') from 'numpy>=1.24' (pip) or 'numpy >=1.24' (conda)."""
    match = REQUIREMENT.match(text.split(";")[0])
    assert match, f"cannot read the requirement {text!r}"
    return normalise(match.group(1)), match.group(2).replace(" ", "")


def lower_bound(spec: str) -> Version | None:
    """The least version ``spec`` allows: '>=1.2' and '==1.2' give 1.2; conda's '=1.2' too."""
    for part in filter(None, spec.split(",")):
        match = re.match(r"^(>=|==|=)([0-9][^,]*)$", part)
        if match:
            return Version(match.group(2).rstrip(".*"))
    return None


def parse_environment_yml(text: str) -> tuple[list[str], list[str]]:
    """(conda dependencies, pip dependencies) of an environment.yml: just enough YAML for the
    ``dependencies:`` list with its nested ``- pip:`` list; comments ignored."""
    conda, pip = [], []
    in_deps, pip_indent = False, None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_deps = line.strip() == "dependencies:"
            pip_indent = None
            continue
        if not in_deps:
            continue
        item = line.strip()
        assert item.startswith("- "), f"environment.yml: unexpected line {raw!r}"
        item = item[2:].strip()
        if pip_indent is not None and indent > pip_indent:
            pip.append(item)
            continue
        pip_indent = None
        if item == "pip:":
            pip_indent = indent
        else:
            conda.append(item)
    return conda, pip


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def environment():
    return parse_environment_yml((ROOT / "environment.yml").read_text())


def pyproject_requirements(pyproject) -> dict[str, str]:
    project = pyproject["project"]
    texts = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    return dict(split_requirement(t) for t in texts)


def environment_requirements(environment) -> dict[str, str]:
    conda, pip = environment
    texts = [t for t in conda + pip if t not in ("-e .", "-e.")]
    found = dict(split_requirement(t) for t in texts)
    return {k: v for k, v in found.items() if k not in NOT_PACKAGES}


def test_parser_reads_a_known_environment():
    text = ("name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n"
            "  - numpy >=1.24  # comment\n  - pip\n  - pip:\n      - torch>=2.2\n      - -e .\n"
            "  - tqdm\nvariables:\n  A: 1\n")
    assert parse_environment_yml(text) == (
        ["python=3.11", "numpy >=1.24", "pip", "tqdm"], ["torch>=2.2", "-e ."])
    assert split_requirement("numpy >=1.24") == ("numpy", ">=1.24")
    assert split_requirement("scikit_learn[all]>=1.3; python_version>'3'") == ("scikit-learn", ">=1.3")
    assert lower_bound(">=2.2,<3") == Version("2.2") and lower_bound("=3.11") == Version("3.11")
    assert lower_bound("") is None


def test_same_packages_in_both_files(pyproject, environment):
    ours, theirs = pyproject_requirements(pyproject), environment_requirements(environment)
    assert set(ours) == set(theirs), (
        f"only in pyproject.toml: {sorted(set(ours) - set(theirs))}; "
        f"only in environment.yml: {sorted(set(theirs) - set(ours))}")


def test_same_lower_bounds(pyproject, environment):
    ours, theirs = pyproject_requirements(pyproject), environment_requirements(environment)
    for name, spec in ours.items():
        assert lower_bound(spec) is not None, f"pyproject.toml: {name} needs a lower bound (>=)"
        assert lower_bound(spec) == lower_bound(theirs.get(name, "")), (
            f"{name}: pyproject.toml says {spec!r}, environment.yml {theirs.get(name)!r}")


def test_environment_installs_torch_through_pip_and_the_course_itself(environment):
    conda, pip = environment
    pip_names = {split_requirement(t)[0] for t in pip if not t.startswith("-e")}
    conda_names = {split_requirement(t)[0] for t in conda}
    assert {"torch", "torchvision"} <= pip_names and not {"torch", "torchvision"} & conda_names
    assert "-e ." in pip and "pip" in conda_names


def test_python_versions_agree(pyproject, environment):
    conda, _ = environment
    python = dict(split_requirement(t) for t in conda)["python"]
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    assert lower_bound(python) in requires, (
        f"environment.yml pins python {python}, pyproject.toml requires {requires}")


def test_notebook_tools_are_in_the_extras(pyproject):
    extras = {k: {split_requirement(t)[0] for t in v}
              for k, v in pyproject["project"]["optional-dependencies"].items()}
    assert {"papermill", "jupytext", "nbformat", "ipykernel"} <= extras["notebooks"]
    assert {"pytest", "nbval"} <= extras["dev"]


def test_makefile_torch_pin_satisfies_pyproject(pyproject):
    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"^TORCH_SPEC\s*\?=\s*torch==(\S+)", makefile, re.M)
    if pin is None:
        pytest.skip("the Makefile does not pin torch")
    spec = pyproject_requirements(pyproject)["torch"]
    assert Version(pin.group(1)) in SpecifierSet(spec), f"Makefile pins torch {pin.group(1)}, pyproject says {spec}"


def test_installed_versions_meet_the_lower_bounds(pyproject):
    """What this environment actually has is allowed by the declared ranges."""
    checked = 0
    for name, spec in pyproject_requirements(pyproject).items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # an extra that this environment does not install (e.g. torchvision)
        assert installed.release >= lower_bound(spec).release, (
            f"{name} {installed} is installed, but pyproject.toml asks for {spec}")
        checked += 1
    assert checked >= 5
