"""The notebook build: solutions/NN_topic.py -> solutions/NN_topic.ipynb + notebooks/NN_topic.ipynb."""

import json

import pytest

from course_lib.cli import build as b
from course_lib.cli import main as cli
from course_lib.notebook import colab_cell

SOURCE = '''\
# %% [markdown]
# # A tiny notebook
# The answer squares its input.

# %% tags=["parameters"]
PROFILE = "quick"
X = 3

# %%
def square(x):
    """x squared."""
    ### BEGIN SOLUTION
    # HINT: multiply x by itself
    result = x * x
    return result
    ### END SOLUTION


# %%
### BEGIN SOLUTION
# STUB: answer = None
answer = square(X) + 1000
### END SOLUTION
print(answer)

# %%
def cube(x):
    ### BEGIN SOLUTION
    return x * x * x
    ### END SOLUTION
'''


def _repo(tmp_path, text=SOURCE, name="01_tiny.py"):
    (tmp_path / "solutions").mkdir(parents=True, exist_ok=True)
    (tmp_path / "solutions" / name).write_text(text)
    return tmp_path


def _load(path):
    return json.loads(path.read_text())


def _code(nb):
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_build_writes_student_stub_and_full_solution(tmp_path):
    root = _repo(tmp_path)
    report = b.build(root)
    assert report.ok, report.problems
    student = _load(root / "notebooks" / "01_tiny.ipynb")
    solution = _load(root / "solutions" / "01_tiny.ipynb")

    code = "\n".join(_code(student))
    assert "result = x * x" not in code and "x * x * x" not in code and "+ 1000" not in code
    assert "BEGIN SOLUTION" not in code and "END SOLUTION" not in code
    # the function-body region: indented TODO with the hint, then the raise
    assert '    # TODO: multiply x by itself\n    raise NotImplementedError("' in code
    # no hint: a generic TODO; a STUB line replaces the raise at the top level
    assert f"    # TODO: {b.GENERIC_HINT}\n    raise NotImplementedError(" in code
    assert f"# TODO: {b.GENERIC_HINT}\nanswer = None\nprint(answer)" in code
    assert code.count("NotImplementedError") == 2

    full = "\n".join(_code(solution))
    assert "result = x * x" in full and "answer = square(X) + 1000" in full

    for nb in (student, solution):
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        # the title, the shared Colab note and cell (added by the build), then the source's cells
        assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "markdown", "code", "code", "code", "code",
                                                         "code"]
        assert "".join(nb["cells"][2]["source"]) == colab_cell()
        assert nb["cells"][3]["metadata"]["tags"] == ["parameters"]
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
            assert "lines_to_next_cell" not in cell["metadata"]


def test_student_stub_runs_and_raises_only_inside_functions(tmp_path):
    root = _repo(tmp_path)
    b.build(root)
    namespace = {}
    for source in _code(_load(root / "notebooks" / "01_tiny.ipynb")):
        exec(source, namespace)  # the student notebook runs top to bottom
    assert namespace["answer"] is None
    with pytest.raises(NotImplementedError, match="Exercise not done yet"):
        namespace["square"](2)
    solved = {}
    for source in _code(_load(root / "solutions" / "01_tiny.ipynb")):
        exec(source, solved)
    assert solved["square"](4) == 16 and solved["answer"] == 1009


def test_build_is_deterministic_and_check_passes(tmp_path):
    first = _repo(tmp_path / "a")
    second = _repo(tmp_path / "b")
    b.build(first)
    b.build(second)
    for rel in ("notebooks/01_tiny.ipynb", "solutions/01_tiny.ipynb"):
        assert (first / rel).read_bytes() == (second / rel).read_bytes()
    report = b.build(first)
    assert not report.written and len(report.unchanged) == 2
    assert b.build(first, check=True).ok
    assert cli(["build", "--check", "--root", str(first)]) == 0


def test_check_fails_after_editing_the_source(tmp_path, capsys):
    root = _repo(tmp_path)
    b.build(root)
    source = root / "solutions" / "01_tiny.py"
    source.write_text(source.read_text().replace("X = 3", "X = 4"))
    report = b.build(root, check=True)
    assert not report.ok
    assert any("notebooks/01_tiny.ipynb: stale" in p for p in report.problems)
    assert any("solutions/01_tiny.ipynb: stale" in p for p in report.problems)
    assert cli(["build", "--check", "--root", str(root)]) == 1
    assert "stale" in capsys.readouterr().err
    # --check writes nothing; a build makes it pass again
    assert '"X = 3"' in (root / "notebooks" / "01_tiny.ipynb").read_text()
    assert cli(["build", "--root", str(root)]) == 0
    assert b.build(root, check=True).ok


def test_check_reports_missing_and_orphan_notebooks(tmp_path):
    root = _repo(tmp_path)
    b.build(root)
    (root / "notebooks" / "01_tiny.ipynb").unlink()
    (root / "notebooks" / "07_gone.ipynb").write_text("{}")
    problems = b.build(root, check=True).problems
    assert any("notebooks/01_tiny.ipynb: missing" in p for p in problems)
    assert any("notebooks/07_gone.ipynb: orphan" in p for p in problems)
    report = b.build(root)  # a full build regenerates and removes the orphan
    assert not (root / "notebooks" / "07_gone.ipynb").exists()
    assert (root / "notebooks" / "01_tiny.ipynb").exists() and report.ok


def test_hand_edited_student_notebook_is_stale(tmp_path):
    root = _repo(tmp_path)
    b.build(root)
    path = root / "notebooks" / "01_tiny.ipynb"
    nb = _load(path)
    nb["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    path.write_text(json.dumps(nb))
    assert any("stale" in p for p in b.build(root, check=True).problems)


@pytest.mark.parametrize("text, line, words", [
    ("# %%\ndef f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n",
     4, "nested"),
    ("# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n", 3, "unterminated"),
    ("# %%\ndef f():\n    return 1\n    ### END SOLUTION\n", 4, "without a matching"),
    ("# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n# %%\n    ### END SOLUTION\n",
     5, "new cell starts inside"),
])
def test_malformed_regions_name_file_and_line(tmp_path, text, line, words):
    root = _repo(tmp_path, text, "02_bad.py")
    with pytest.raises(b.SolutionRegionError, match=f"solutions/02_bad.py:{line}: .*{words}"):
        b.convert(root / "solutions" / "02_bad.py", root)
    report = b.build(root)
    assert not report.ok and "02_bad.py" in report.problems[0]
    assert not (root / "notebooks" / "02_bad.ipynb").exists()


def test_top_level_region_needs_a_stub(tmp_path):
    root = _repo(tmp_path, "# %%\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n", "03_x.py")
    with pytest.raises(b.SolutionRegionError, match="STUB"):
        b.convert(root / "solutions" / "03_x.py", root)


def test_verify_pair_finds_differences_outside_regions(tmp_path):
    root = _repo(tmp_path)
    b.build(root)
    solution = _load(root / "solutions" / "01_tiny.ipynb")
    student = _load(root / "notebooks" / "01_tiny.ipynb")
    assert b.verify_pair(solution, student) == []
    student["cells"][2]["source"] = ["def square(x):\n", '    """x cubed."""\n',
                                     "    raise NotImplementedError\n"]
    problems = b.verify_pair(solution, student, "tiny")
    assert problems and "outside a solution region" in problems[0]
    student = _load(root / "notebooks" / "01_tiny.ipynb")
    student["cells"][0]["source"] = ["# Another title"]
    assert "markdown cells differ" in b.verify_pair(solution, student)[0]
    student = _load(root / "notebooks" / "01_tiny.ipynb")
    student["cells"][4]["source"] = solution["cells"][4]["source"]
    assert "region marker" in " ".join(b.verify_pair(solution, student))


def test_build_named_files_and_unknown_name(tmp_path):
    root = _repo(tmp_path)
    _repo(root, SOURCE, "02_other.py")
    report = b.build(root, ["01_tiny"])
    assert {p.name for p in report.written} == {"01_tiny.ipynb"}
    assert not (root / "notebooks" / "02_other.ipynb").exists()
    with pytest.raises(FileNotFoundError, match="solutions/99_nope.py"):
        b.build(root, ["99_nope"])


def test_repository_notebooks_are_up_to_date():
    """The generated notebooks in this repository match their sources
    (fix with `python -m course_lib build`)."""
    report = b.build(b.repo_root(), check=True)
    assert report.ok, "\n".join(report.problems)


MULTILINE_HINT = '''\
# %%
def loss(a, b):
    ### BEGIN SOLUTION
    # HINT: encoder = β·kl + llike; decoder = γ·llike + BCE(d_recon → 1);
    #       discriminator = BCE(d_real → 1) + BCE(d_recon → 0)
    # and np.add.at or
    #   np.bincount builds the counts.
    total = a + b

    # a solution comment after a blank line stays hidden
    # HINT: a second hint
    return total
    ### END SOLUTION


# %%
### BEGIN SOLUTION
# HINT: first line
# STUB: answer = None
# not a continuation: a STUB line ended the hint
answer = 1
### END SOLUTION
'''


def test_multi_line_hint_is_kept_whole(tmp_path):
    """Every comment line directly below a '# HINT:' line continues the hint; the hint ends at
    code, a blank line or a '# STUB:' line (course_lib/build.py, module docstring)."""
    root = _repo(tmp_path, MULTILINE_HINT, "09_hints.py")
    assert b.build(root).ok
    cells = _code(_load(root / "notebooks" / "09_hints.ipynb"))[1:]  # after the shared Colab cell
    assert cells[0] == (
        "def loss(a, b):\n"
        "    # TODO: encoder = β·kl + llike; decoder = γ·llike + BCE(d_recon → 1);\n"
        "    #       discriminator = BCE(d_real → 1) + BCE(d_recon → 0)\n"
        "    # and np.add.at or\n"
        "    #   np.bincount builds the counts.\n"
        "    #       a second hint\n"
        '    raise NotImplementedError("' + b.STUB_MESSAGE + '")')
    assert "solution comment" not in cells[0] and "total" not in cells[0]
    assert cells[1] == "# TODO: first line\nanswer = None"
    assert b.hint_lines(["# HINT: a", "# b", "x = 1", "# c"]) == ["a", "# b"]
    assert b.hint_lines(["x = 1  # HINT: not at the start of a line"]) == []


def test_repository_hints_keep_their_continuation_lines():
    """The two multi-line hints of the course (notebooks 07 and 08) reach the student whole."""
    root = b.repo_root()
    for name, words in [("07_vaegan_idgan", "discriminator = BCE(d_real → 1)"),
                        ("08_measuring", "np.bincount on a * n_b + b")]:
        source = root / "solutions" / f"{name}.py"
        if not source.exists() or words not in source.read_text():
            continue  # the notebook changed; the rule itself is tested above
        _, student = b.convert(source, root)
        assert f"#       {words}" in student.decode(), name


def test_a_source_with_its_own_colab_cell_is_refused(tmp_path):
    own_cell = "# %%\nimport sys\nif 'google.colab' in sys.modules:\n    pass\n\n"
    text = SOURCE.replace("# %% tags=[\"parameters\"]", own_cell + "# %% tags=[\"parameters\"]")
    with pytest.raises(ValueError, match="the build adds the shared one"):
        b.build(_repo(tmp_path, text))


def test_every_repository_notebook_opens_with_the_shared_colab_cell():
    root = b.repo_root()
    for source in b.sources(root):
        assert "google.colab" not in source.read_text(), source  # written once, in course_lib.notebook
        for path in b.targets(source, root):
            cells = _load(path)["cells"]
            assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
            assert "".join(cells[2]["source"]) == colab_cell(), path
