"""Notebook 07 loads the course's long-trained ID-GAN when its parameters are that model's
recipe: with its own defaults the notebook must ask for exactly the recipe that
``pretrain idgan --profile full`` trains (else the shipped model is never found and the quick
profile trains a short one instead)."""

from course_lib import checkpoints as ck
from tests.solution_source import plain_default, quick_default, solution_source

SOURCE = solution_source("07_vaegan_idgan")


def notebook_step1_recipe():
    """The step-1 β-VAE recipe that the notebook's quick defaults ask ``load_or_train`` for."""
    return ck.recipe("heldout_beta_vae", "quick", num_latents=plain_default(SOURCE, "NUM_LATENTS"),
                     beta=plain_default(SOURCE, "BETA"),
                     data=f"dsprites:posX<{plain_default(SOURCE, 'POSX_THRESHOLD')}",
                     steps=int(quick_default(SOURCE, "VAE_STEPS")),
                     batch_size=int(quick_default(SOURCE, "BATCH_SIZE")),
                     lr=quick_default(SOURCE, "LR"), seed=plain_default(SOURCE, "SEED"))


def test_step1_defaults_are_the_shipped_heldout_beta_vae():
    assert notebook_step1_recipe() == ck.recipe("heldout_beta_vae", "quick")
    assert ck.find_shipped(notebook_step1_recipe()) is not None


def test_idgan_defaults_ask_for_the_long_run_recipe():
    settings = dict(noise_dim=plain_default(SOURCE, "NOISE_DIM"), lam=plain_default(SOURCE, "LAMBDA"),
                    r1=plain_default(SOURCE, "R1"), init=plain_default(SOURCE, "IDGAN_INIT"),
                    lr=plain_default(SOURCE, "IDGAN_LR"), seed=plain_default(SOURCE, "SEED"),
                    batch_size=int(quick_default(SOURCE, "BATCH_SIZE")), step1=notebook_step1_recipe())
    assert "idgan_settings = dict(noise_dim=NOISE_DIM, lam=LAMBDA, r1=R1, init=IDGAN_INIT, lr=IDGAN_LR" in SOURCE
    wanted = ck.recipe("idgan", "full", **settings)
    assert wanted == ck.recipe("idgan", "full")
    # another λ is another model: the notebook would train it instead of loading the long run
    assert ck.recipe("idgan", "full", **{**settings, "lam": 1.0}) != wanted
