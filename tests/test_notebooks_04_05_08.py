"""Notebooks 04, 05 and 08: what a checker promises ("your function is used from here on") is
true in the notebook's source, the student writes FactorVAE's step, and figures are course figures."""

import re
from pathlib import Path

import pytest

from tests.solution_source import quick_default

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("04_capacity", "05_total_correlation", "08_measuring")
CHECKED = re.compile(r"^(\w+) = exercises\.check_\w+\(\s*(?:\"\w+\",\s*)?(\w+)", re.M)


def code_cells(name):
    """The code of every code cell of solutions/<name>.py, in order (Markdown cells dropped)."""
    text = (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8")
    cells = re.split(r"^# %%.*$", text, flags=re.M)
    headers = re.findall(r"^# %%.*$", text, flags=re.M)
    return [body for header, body in zip(headers, cells[1:]) if "[markdown]" not in header]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_checked_function_is_used_after_its_check(name):
    """A checker says "your function is used from here on": the name it returns must be used in
    a later code cell (not only in the checker's own cell)."""
    cells = code_cells(name)
    found = 0
    for i, cell in enumerate(cells):
        for returned, given in CHECKED.findall(cell):
            assert returned == given, f"{name}: the checker of {given} is assigned to {returned}"
            later = "\n".join(cells[i + 1:])
            uses = re.findall(rf"\b{re.escape(returned)}\(", later)
            assert uses, f"{name}: {returned} is checked but never called after its check"
            found += 1
    assert found, f"{name}: no checked exercise found"


def test_factorvae_step_is_written_by_the_student_and_trains_the_factorvae():
    source = (ROOT / "solutions" / "05_total_correlation.py").read_text(encoding="utf-8")
    exercise = source[source.index("def factorvae_step("):]
    body = exercise[:exercise.index("### END SOLUTION")]
    assert "### BEGIN SOLUTION" in body
    for piece in ("requires_grad_(False)", "z.detach()", "permute_dims(", "tc_discriminator_loss("):
        assert piece in body, piece
    assert "exercises.check_factorvae_step(factorvae_step, permute=permute_dims)" in source
    assert re.search(r"def training_step\(self, x, step, optimizers.*\):\n\s+return factorvae_step\(self", source)
    assert '"FactorVAE": YourFactorVAE(' in source
    student = (ROOT / "notebooks" / "05_total_correlation.ipynb").read_text(encoding="utf-8")
    assert "loss = recon + kl_per_latent.sum() + model.gamma * tc" not in student  # the solution is hidden


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_figures_are_course_figures(name):
    source = (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8")
    assert "matplotlib.figure import Figure" not in source and " Figure(" not in source


def test_no_quoted_run_numbers_in_the_prose():
    """Phrases that quoted one run's numbers must stay out of the Markdown."""
    banned = ("our quick run", "in our run", "in our runs", "≈ 40.5", "around 41 nats", "0.181", "≈ 0.24")
    for name in NOTEBOOKS:
        text = (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8").lower()
        prose = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        for phrase in banned:
            assert phrase not in prose, f"{name}: {phrase!r}"


def test_notebook_04_loads_shipped_vae_and_beta_vae_with_its_quick_defaults():
    """Section 8 compares the capacity models with a VAE and a β-VAE of the same budget; with the
    quick defaults both must be shipped (else the notebook trains them and exceeds its time)."""
    from course_lib import checkpoints as ck

    source = (ROOT / "solutions" / "04_capacity.py").read_text(encoding="utf-8")
    seed = int(re.search(r"^SEED = (\d+)$", source, re.M).group(1))
    budget = dict(steps=int(quick_default(source, "STEPS")), batch_size=int(quick_default(source, "BATCH_SIZE")),
                  lr=quick_default(source, "LR"), seed=seed, num_latents=int(quick_default(source, "NUM_LATENTS")))
    for beta in (1.0, quick_default(source, "BETA")):
        wanted = ck.recipe("beta_vae", "quick", beta=beta, **budget)
        found = ck.find_shipped(wanted)
        assert found is not None, f"no shipped β-VAE with β = {beta} for notebook 04's quick budget {budget}"
        assert found[1]["recipe"]["config"]["beta"] == beta and found[1]["recipe"]["steps"] == budget["steps"]
    # another budget is not shipped: the notebook trains it
    assert ck.find_shipped(ck.recipe("beta_vae", "quick", beta=1.0, **{**budget, "steps": budget["steps"] + 1})) is None
