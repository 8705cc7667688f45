"""Shipped checkpoints: load the course's pretrained model when it fits, else train.

``python -m course_lib pretrain`` trains the reference models of the course with the recipes of
:data:`RECIPES` and writes each as ``data/checkpoints/<name>-<steps>steps-seed<seed>.pt`` (weights in float16, about
0.9 MB for a Burgess VAE) with an entry in ``data/checkpoints/manifest.json``: the exact recipe,
the metrics (MIG on 10,000 images, final loss terms), the file's sha256 and size, and where it
was trained (device, torch version, time).

In a notebook::

    from course_lib.checkpoints import load_or_train
    result = load_or_train("beta_vae", profile=PROFILE, seed=SEED, beta=BETA, device=device)
    model = result.model            # result.extra["source"] is "shipped" or "trained"

returns the shipped model when the recipe asked for (the profile's recipe with the given
overrides) is exactly the one in the manifest, after checking the file's sha256 (a mismatch is
a ValueError: the file was changed or corrupted). Otherwise it trains the model with
:func:`course_lib.train.fit` on that recipe, which saves the run under ``runs/checkpoints``: the
next call with the same recipe just loads it.

A shipped file is an ordinary course checkpoint without optimiser state:
:func:`course_lib.train.load_model` reads it (float16 weights are cast back to float32).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import os
import warnings
from pathlib import Path

import torch

from . import profiles
from .config import CHECKPOINTS_VAR, INSTALLED_CHECKPOINTS, REPOSITORY_CHECKPOINTS
from .train import (
    CHECKPOINT_FORMAT,
    History,
    TrainingStopped,
    TrainResult,
    atomic_save,
    atomic_write_text,
    choose_device,
    fit,
    in_parts,
    load_model,
    train,
    with_checksum,
)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "course_lib.checkpoints/1"
#: Runs whose record (history, metrics, where and how long it trained) ships without weights.
RECORDS = "records.json"
RECORDS_FORMAT = "course_lib.records/1"
#: Lock file of a checkpoint folder (see :func:`folder_lock`; not part of what ships).
LOCK = ".lock"
ENV_VAR = CHECKPOINTS_VAR

#: Recipe data: scikit-learn's handwritten digits (the training split of ``load_mnist(source="digits")``).
DIGITS = "digits"

#: The start of the long VAE-GAN and of its same-budget control (``vae_gan``, ``vae_continued``):
#: the weights of a plain 10-latent VAE (β = 1; notebook 03's architecture, seed 13, 12,000 steps).
_VAEGAN_START = {"name": "beta_vae", "as": "init_from",
                 "profile": {"smoke": "smoke", "quick": "quick", "full": "quick"},
                 "overrides": {"seed": {"smoke": 0, "quick": 13, "full": 13},
                               "steps": {"smoke": 3, "quick": 12_000, "full": 12_000}, "beta": 1.0}}

#: The reference models, with the recipes of the notebooks that use them. A value given as
#: ``{"smoke": ..., "quick": ..., "full": ...}`` depends on the profile.
RECIPES: dict[str, dict] = {
    # notebook 01 (solutions/01_autoencoders.py): autoencoder, squared error, z = 10
    "autoencoder": {
        "model": "autoencoder", "config": {"num_latents": 10, "recon": "mse"}, "data": "dsprites",
        "steps": {"smoke": 3, "quick": 10_000, "full": 30_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-3}, "seed": 0,
    },
    # notebook 03 (solutions/03_beta_vae.py): β-VAE, Burgess architecture, z = 10, β = 8
    "beta_vae": {
        "model": "beta_vae", "config": {"num_latents": 10, "beta": 8.0}, "data": "dsprites",
        "steps": {"smoke": 3, "quick": 2_000, "full": 300_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-4}, "seed": 0,
    },
    # notebook 04 (solutions/04_capacity.py): controlled capacity increase (source paper 001 §1.3.3).
    # full: the source paper's schedule (γ = 1000, C from 0.5 to 25 nats over 100,000 steps), then
    # 20,000 steps at C = 25 so that the KL settles; quick: a slow ramp that a CPU trains in minutes
    "capacity_vae": {
        "model": "capacity_vae",
        "config": {"num_latents": 10, "gamma": {"smoke": 30.0, "quick": 30.0, "full": 1000.0},
                   "c_start": 0.5, "c_max": 25.0, "penalty": "abs",
                   "c_steps": {"smoke": 3, "quick": 4_000, "full": 100_000}},
        "data": "dsprites",
        "steps": {"smoke": 4, "quick": 5_000, "full": 120_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 5e-4}, "seed": 0,
    },
    # notebook 07 (solutions/07_vaegan_idgan.py): ID-GAN's step 1, source paper 000's β-VAE (|z| = 3,
    # β = 0.5) trained on the left-hand positions only (posX class < 16)
    "heldout_beta_vae": {
        "model": "beta_vae", "config": {"num_latents": 3, "beta": 0.5}, "data": "dsprites:posX<16",
        "steps": {"smoke": 2, "quick": 1_500, "full": 100_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-4}, "seed": 0,
    },
    # notebook 07 (solutions/07_vaegan_idgan.py): the dSprites factor classifier whose features and
    # predictions are the rulers of sample quality (course_lib.quality); trained on images with
    # labels. 5,000 steps in quick too: after 1,500 it named the shape of only 93 % of real sprites
    # with probability ≥ 0.9 (right at argmax for 99 %), an under-confident ruler
    "factor_classifier": {
        "model": "factor_classifier", "config": {}, "data": "dsprites+classes",
        "steps": {"smoke": 2, "quick": 5_000, "full": 5_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-3}, "seed": 0,
    },
    # notebook 06 (solutions/06_infogan_unrolled.py): InfoGAN on scikit-learn's 8×8 digits at 32×32
    # (the offline stand-in for MNIST): 10 categories and 2 continuous codes as in the InfoGAN paper,
    # but 8 noise dimensions instead of 62 (on 1,437 small images a large noise lets the generator
    # draw the digit classes from the noise instead of the categorical code), the categorical
    # cross-entropy weighted 2 and Q's head stepped with the generator. Seed 5 was chosen with
    # notebook 06's own measurement of the continuous codes: of seeds 0-10 after 4,000 steps, six
    # had two codes that each changed one different property and three had a categorical code that
    # matched ≥ 80 % of the training digits, none both; seed 5 was the one of the six nearest 80 %
    # (79 %) and was trained on to 8,000 steps
    "infogan_digits": {
        "model": "infogan", "config": {"codes": "cat10,cont2", "lam": 0.1, "lam_cat": 2.0, "q_with": "generator",
                                       "noise_dim": 8, "arch": "conv32", "width": {"smoke": 8, "quick": 32,
                                                                                   "full": 32}},
        "data": DIGITS,
        "steps": {"smoke": 3, "quick": 8_000, "full": 8_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-3}, "seed": 5,
    },
    # notebooks 06 and 08: InfoGAN on dSprites with the modifications that Lin et al. (InfoGAN-CR,
    # 2020) found an InfoGAN needs there (5 noise dimensions, Q's standard deviation fixed at 1,
    # spectral normalisation of D and Q, the discriminator's learning rate twice the generator's
    # 1e-3), λ = 1 on the codes' Gaussian NLL, and 4 continuous codes with no categorical one (a
    # categorical code of 3 values beside them, meant for the 3 shapes, took position instead and
    # left MIG at 0.092 after the same 30,000 steps; the 4 continuous codes alone reached 0.114)
    "infogan_dsprites": {
        "model": "infogan",
        "config": {"codes": "cont4", "noise_dim": 5, "arch": "conv64", "lam": 1.0, "q_std": 1.0,
                   "spectral_norm": True, "d_lr_ratio": 2.0,
                   "width": {"smoke": 8, "quick": 32, "full": 32}},
        "data": "dsprites",
        "steps": {"smoke": 2, "quick": 30_000, "full": 30_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-3}, "seed": 0,
    },
    # notebooks 05 and 08: FactorVAE with Kim & Mnih's dSprites recipe (source paper 004 implements
    # their FactorVAE and gives no dSprites setting of its own): γ = 35, a 6 × 1000 discriminator,
    # Adam lr 1e-4 for the VAE and 1e-4 (β 0.5, 0.9) for the discriminator, batches of 64
    "factor_vae": {
        "model": "factor_vae",
        "config": {"num_latents": 10, "gamma": 35.0, "disc_lr": 1e-4,
                   "disc_hidden": {"smoke": 16, "quick": 1000, "full": 1000},
                   "disc_layers": {"smoke": 2, "quick": 6, "full": 6}},
        "data": "dsprites",
        "steps": {"smoke": 3, "quick": 100_000, "full": 100_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-4, "full": 1e-4}, "seed": 0,
    },
    # notebook 05 (solutions/05_total_correlation.py): β-TCVAE (Chen et al.), β = 6 on the TC
    "beta_tcvae": {
        "model": "beta_tcvae", "config": {"num_latents": 10, "beta": 6.0}, "data": "dsprites",
        "steps": {"smoke": 3, "quick": 200, "full": 60_000},
        "batch_size": {"smoke": 16, "quick": 64, "full": 256},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 5e-4}, "seed": 0,
    },
    # notebook 06: the source paper's Q-loss table. Unrolled InfoGANs with the digits recipe above
    # and K = unroll_steps (0, 5, 7, 10 by -p unroll_steps K); only their records ship (the loss
    # curves, the final Q losses and the categorical code's accuracy), not their weights
    "unrolled_infogan_digits": {
        "model": "unrolled_infogan", "ship": "record",
        "config": {"codes": "cat10,cont2", "lam": 0.1, "lam_cat": 2.0, "q_with": "generator",
                   "noise_dim": 8, "arch": "conv32", "width": {"smoke": 8, "quick": 32, "full": 32},
                   "unroll_steps": {"smoke": 1, "quick": 5, "full": 5}},
        "data": DIGITS,
        "steps": {"smoke": 3, "quick": 4_000, "full": 4_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-3}, "seed": 0,
    },
    # notebook 07 (and the leaderboard's VAE-GAN row): VAE-GAN trained long, with notebook 07's
    # weights (β 0.1, γ 1, Dis_l = conv3, Adam β₁ 0.5, lr 5e-4) and the R1 penalty (γ_R1 = 10) on
    # D, started from the weights of a plain 10-latent VAE (β = 1; notebook 03's architecture,
    # seed 13, 12,000 steps). From the β = 8 β-VAE, whose code keeps little of the shape, and
    # without R1, D won over a long run and the reconstructions drifted to ellipses
    "vae_gan": {
        "model": "vae_gan", "step1": _VAEGAN_START,
        "config": {"num_latents": 10, "beta": 0.1, "gamma": 1.0, "feature_layer": "conv3", "adam_beta1": 0.5,
                   "r1": 10.0},
        "data": "dsprites",
        "steps": {"smoke": 2, "quick": 320, "full": 20_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 5e-4, "quick": 5e-4, "full": 5e-4}, "seed": 0,
    },
    # notebook 07: the same-budget control of the long VAE-GAN: its start (the β = 1 VAE above)
    # trained on as a VAE, the VAE's own loss, lr and batch, for the VAE-GAN's number of steps
    "vae_continued": {
        "model": "beta_vae", "step1": _VAEGAN_START,
        "config": {"num_latents": 10, "beta": 1.0},
        "data": "dsprites",
        "steps": {"smoke": 2, "quick": 320, "full": 20_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-3}, "seed": 0,
    },
    # notebook 07: source paper 002's VAE-InfoGAN hybrid trained long (Fig. 15: the KL of the
    # informative and of the incompressible latents); 10 latents of which 3 informative
    "vae_infogan": {
        "model": "vae_infogan", "config": {"num_latents": 10, "num_informative": 3},
        "data": "dsprites",
        "steps": {"smoke": 2, "quick": 320, "full": 20_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 1e-3, "quick": 1e-3, "full": 1e-4}, "seed": 0,
    },
    # notebook 07: ID-GAN's step 2 (source paper 000, eq. 5-7) on top of the shipped step-1 β-VAE
    # above (its quick recipe, in every profile but smoke), with notebook 07's settings: noise s of
    # 16 dimensions, λ = 1e-4 (the weight of Lee et al.'s dSprites configuration; λ = 1 made G
    # draw dithered images), the R1 penalty γ = 10, G started from the β-VAE's decoder (its
    # weights on the noise random), lr 5e-4; trained on the left-hand positions like step 1
    "idgan": {
        "model": "idgan", "step1": {"name": "heldout_beta_vae",
                                    "profile": {"smoke": "smoke", "quick": "quick", "full": "quick"}},
        "config": {"noise_dim": 16, "lam": 1e-4, "r1": 10.0, "init": "decoder+noise"},
        "data": "dsprites:posX<16",
        "steps": {"smoke": 2, "quick": 600, "full": 30_000},
        "batch_size": {"smoke": 8, "quick": 64, "full": 64},
        "lr": {"smoke": 5e-4, "quick": 5e-4, "full": 5e-4}, "seed": 0,
    },
}
TRAIN_KEYS = ("steps", "batch_size", "lr", "seed")
#: What every manifest entry holds.
ENTRY_KEYS = ("recipe", "file", "sha256", "bytes", "metrics", "trained_on")


#: The shipped checkpoints in a source checkout (or an editable install): the writable default.
REPOSITORY_DIR = REPOSITORY_CHECKPOINTS
#: The same files inside an installed wheel (``pip install git+...``, e.g. on Colab):
#: pyproject.toml ships ``data/checkpoints/*.pt`` and the manifest as ``course_lib._shipped``.
INSTALLED_DIR = INSTALLED_CHECKPOINTS


class MissingCheckpointsWarning(UserWarning):
    """The folder of the shipped checkpoints does not exist: every model will be trained."""


def checkpoint_dir(folder: str | os.PathLike | None = None) -> Path:
    """Where the shipped checkpoints and their manifest live.

    ``folder``, else ``$COURSE_CHECKPOINTS``, else ``data/checkpoints`` of the repository when
    course_lib runs from a checkout (an editable install included; ``pretrain`` writes there),
    or the copy installed with the package (``course_lib/_shipped`` of a wheel). When the
    folder of ``$COURSE_CHECKPOINTS`` or both default folders are missing, a
    :class:`MissingCheckpointsWarning` says so: the manifest then reads as empty and every
    notebook trains what it would have loaded.
    """
    if folder is not None:
        return Path(folder)
    if os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
        if not path.is_dir():
            warnings.warn(f"${ENV_VAR} is {str(path)!r}, which is not a folder: no shipped "
                          f"checkpoint will be found, so every model will be trained from scratch. "
                          f"Point {ENV_VAR} at the data/checkpoints folder of the course's "
                          f"repository, or unset it to use the checkpoints installed with "
                          f"course_lib.", MissingCheckpointsWarning, stacklevel=2)
        return path
    if INSTALLED_DIR.is_dir():  # only in an installed wheel: never in the source tree
        return INSTALLED_DIR
    if REPOSITORY_DIR.is_dir():
        return REPOSITORY_DIR
    warnings.warn(f"the shipped checkpoints are missing (neither {REPOSITORY_DIR} nor "
                  f"{INSTALLED_DIR} exists): every model will be trained from scratch instead of "
                  f"loaded. Reinstall the course from its repository (pip install git+...; the "
                  f"wheel carries data/checkpoints), or clone the repository and set "
                  f"{ENV_VAR}=<clone>/data/checkpoints.", MissingCheckpointsWarning, stacklevel=2)
    return REPOSITORY_DIR


def recipe(name: str, profile: str | None = None, **overrides) -> dict:
    """The full recipe of reference model ``name`` in ``profile``, with ``overrides``.

    Overrides: ``steps``, ``batch_size``, ``lr``, ``seed``, ``data`` (``"dsprites"``, or
    ``"dsprites:posX<16"`` for the posX classes below 16 only, see :func:`make_data`),
    ``step1`` (the step-1 recipe of a two-step model), or any keyword of the model's
    constructor (``beta=16``). The returned dict has every model keyword
    made explicit::

        {"name", "model", "config", "data", "steps", "batch_size", "lr", "seed"}

    A model trained on top of another reference model (ID-GAN's step 2 on its step-1 β-VAE)
    also has ``"step1"``: that model's full recipe, whose shipped (or trained) weights
    :func:`build_from_recipe` gives it (ID-GAN as its ``vae`` argument; with ``"step1_as":
    "init_from"``, VAE-GAN copies them with ``model.init_from``).
    """
    from .models import build_model

    if name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}: expected one of {sorted(RECIPES)}")
    base = copy.deepcopy(RECIPES[name])
    profile = profiles.check_profile(profile) if profile else profiles.default_profile()
    out = {"name": name, "model": base["model"], "data": base["data"],
           **{k: _pick(base[k], profile) for k in TRAIN_KEYS}}
    config = {k: _pick(v, profile) for k, v in base["config"].items()}
    if "step1" in base:
        step1 = overrides.pop("step1", None) or recipe(
            base["step1"]["name"], _pick(base["step1"]["profile"], profile),
            **{k: _pick(v, profile) for k, v in base["step1"].get("overrides", {}).items()})
        out["step1"] = step1
        if base["step1"].get("as", "vae") == "vae":  # a constructor argument (ID-GAN)
            config["vae"] = {"name": step1["model"], "config": step1["config"]}
        else:  # weights copied by model.init_from(step1) (VAE-GAN)
            out["step1_as"] = "init_from"
    for key, value in overrides.items():
        if key in TRAIN_KEYS or key == "data":
            out[key] = value
        else:
            config[key] = value
    data_ranges(out["data"])  # a clear error now rather than when training starts
    try:
        model = build_model(base["model"], **config)
    except TypeError as err:
        allowed = ", ".join(TRAIN_KEYS)
        raise ValueError(f"{name}: cannot build {base['model']} with {config} ({err}); overrides "
                         f"are {allowed} or the model's own keywords") from err
    out["config"] = model.config()
    out["steps"], out["batch_size"], out["seed"] = (int(out["steps"]), int(out["batch_size"]),
                                                    int(out["seed"]))
    out["lr"] = float(out["lr"])
    return out


def _pick(value, profile):
    if isinstance(value, dict) and set(value) == set(profiles.PROFILES):
        return value[profile]
    return value


def read_manifest(folder=None) -> dict:
    """The manifest as a dict ``{"format", "checkpoints": {name: entry}}`` (empty if absent)."""
    path = checkpoint_dir(folder) / MANIFEST
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "checkpoints": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}); restore it from git or run "
                         f"`python -m course_lib pretrain` to write it again") from err
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a course checkpoint manifest "
                         f"(expected format {MANIFEST_FORMAT!r})")
    entries = data.get("checkpoints")
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a 'checkpoints' object of entries")
    for key, entry in entries.items():
        missing = [k for k in ENTRY_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"{path}: entry {key!r} lacks {', '.join(missing)} (every entry has "
                             f"{', '.join(ENTRY_KEYS)}); restore the file from git")
        recipe_missing = [k for k in ("name", "model", "config", "data", *TRAIN_KEYS)
                          if not isinstance(entry["recipe"], dict) or k not in entry["recipe"]]
        if recipe_missing:
            raise ValueError(f"{path}: the recipe of entry {key!r} lacks "
                             f"{', '.join(recipe_missing)}; restore the file from git")
    return data


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _same(a, b) -> bool:
    """Recipes compared after a JSON round trip (tuples and lists, ints and floats alike)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def entry_key(recipe_: dict) -> str:
    """Manifest key and file stem of a recipe: ``beta_vae-3000steps-seed0``.

    A recipe is compared with its name's recipe in every profile; the closest one (quick first
    on a tie) names it: when that is not ``quick`` the profile is appended, then every setting
    that differs from it, so that two different recipes never share a file:
    ``capacity_vae-120000steps-seed0-full-penalty_hinge``.
    """
    key = f"{recipe_['name']}-{recipe_['steps']}steps-seed{recipe_['seed']}"
    if recipe_["name"] not in RECIPES:
        return key
    best = None
    for profile in ("quick", "smoke", "full"):
        base = recipe(recipe_["name"], profile)
        parts = [f"{k}_{v}" if isinstance(v, str) else f"{k}{_short(v)}"
                 for k, v in recipe_["config"].items() if not _same(v, base["config"].get(k))]
        parts += [f"{k}_{recipe_[k]}" if k == "data" else f"{k}{_short(recipe_[k])}"
                  for k in ("data", "batch_size", "lr") if not _same(recipe_[k], base[k])]
        if best is None or len(parts) < len(best):
            best = parts if profile == "quick" else [profile, *parts]
    return "-".join([key, *best]).replace(":", "_").replace("<", "lt").replace(" ", "")


def _short(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_shipped(model, recipe_: dict, *, history=None, metrics=None, trained_on=None,
                  folder=None) -> dict:
    """Write ``model`` in float16 as ``<folder>/<key>.pt`` (:func:`entry_key`) and record it
    in the manifest (an entry of the same key is replaced).

    The parts that the model needs only to train (``model.training_only``, e.g. FactorVAE's
    5M-weight discriminator) are left out and listed under ``"omitted"`` in the file and the
    manifest; :func:`course_lib.train.load_into` then keeps them freshly initialised and names
    them in ``model.untrained_parts``.

    Returns the manifest entry (recipe, file, sha256, bytes, metrics, trained_on, omitted).
    """
    folder = checkpoint_dir(folder)
    key = entry_key(recipe_)
    path = folder / f"{key}.pt"
    omitted = list(getattr(model, "training_only", ()))
    state = {
        "format": CHECKPOINT_FORMAT,
        "model_name": model.model_name,
        "model_config": model.config(),
        "model_state": {k: (v.detach().cpu().half() if v.is_floating_point() else v.cpu())
                        for k, v in model.state_dict().items()
                        if not in_parts(k, omitted)},
        "omitted": omitted,
        "step": recipe_["steps"],
        "history": {k: list(v) for k, v in (history or {}).items()},
        "train": {k: recipe_[k] for k in TRAIN_KEYS},
        "recipe": recipe_,
    }
    atomic_save(with_checksum(state), path)
    entry = {"recipe": recipe_, "file": path.name, "sha256": sha256(path),
             "bytes": path.stat().st_size, "dtype": "float16", "metrics": metrics or {},
             "trained_on": trained_on or {}, "omitted": omitted}
    with folder_lock(folder):
        manifest = read_manifest(folder)
        manifest["checkpoints"][key] = entry
        _write_manifest(manifest, folder)
    return entry


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically: a crash leaves the old file whole."""
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


@contextlib.contextmanager
def folder_lock(folder=None):
    """Hold an exclusive lock on the checkpoint folder's ``.lock`` file for a read-modify-write
    of its manifest, records or the README table: two runs that finish at once then update
    them one after the other, and neither loses the other's entry. (Where ``fcntl`` does not
    exist, on Windows, the lock is a no-op: run one pretrain at a time there.)"""
    folder = checkpoint_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / LOCK, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_manifest(manifest: dict, folder: Path) -> None:
    """Write the manifest atomically, its entries sorted by key."""
    manifest["checkpoints"] = dict(sorted(manifest["checkpoints"].items()))
    _write_json(folder / MANIFEST, manifest)


def update_metrics(key: str, metrics: dict, folder=None) -> dict:
    """Replace the given ``metrics`` of the shipped entry ``key`` (the others, such as the final
    training loss, stay) and date the change under ``"rescored"``; the weights are untouched.
    Returns the updated entry."""
    folder = checkpoint_dir(folder)
    with folder_lock(folder):
        manifest = read_manifest(folder)
        entry = manifest["checkpoints"].get(key)
        if entry is None:
            raise KeyError(f"no shipped checkpoint {key!r} in {folder / MANIFEST}")
        entry["metrics"] = {**entry.get("metrics", {}), **metrics}
        entry["rescored"] = now()
        _write_manifest(manifest, folder)
    return entry


def read_records(folder=None) -> dict:
    """The shipped run records ``{key: {"recipe", "metrics", "trained_on", "history"}}`` (runs
    whose weights are not shipped, see ``"ship": "record"`` in :data:`RECIPES`)."""
    path = checkpoint_dir(folder) / RECORDS
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}); restore it from git") from err
    if not isinstance(data, dict) or data.get("format") != RECORDS_FORMAT \
            or not isinstance(data.get("records"), dict):
        raise ValueError(f"{path} is not a course record file (expected format {RECORDS_FORMAT!r} "
                         f"and a 'records' object); restore it from git")
    return data["records"]


def write_record(recipe_: dict, *, history, metrics=None, trained_on=None, folder=None) -> dict:
    """Record a finished run without its weights (an entry of the same key is replaced):
    its recipe, metrics, where and how long it trained, and its logged history."""
    folder = checkpoint_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"recipe": recipe_, "metrics": metrics or {}, "trained_on": trained_on or {},
             "history": {k: list(v) for k, v in (history or {}).items()}}
    with folder_lock(folder):
        records = read_records(folder)
        records[entry_key(recipe_)] = entry
        _write_json(folder / RECORDS, {"format": RECORDS_FORMAT, "records": dict(sorted(records.items()))})
    return entry


def load_record(name: str, profile: str | None = None, folder=None, *, longest: bool = False,
                **overrides) -> dict | None:
    """The shipped record of ``recipe(name, profile, **overrides)`` with its ``history`` as a
    :class:`~course_lib.train.History`, or None when no such run is recorded.

    With ``longest=True`` the number of steps is not compared: of the records that differ from
    the recipe only in their steps, the one that trained longest (a run continued past the
    profile's length with ``pretrain --steps``)."""
    wanted = recipe(name, profile, **overrides)
    if longest and "steps" in overrides:
        raise ValueError("load_record: give either steps or longest=True, not both")
    matches = [entry for entry in read_records(folder).values()
               if _same({**entry["recipe"], "steps": wanted["steps"]} if longest else entry["recipe"], wanted)]
    found = max(matches, key=lambda entry: entry["recipe"]["steps"], default=None)
    return None if found is None else {**found, "history": History(found["history"])}


def verify(key: str, folder=None) -> Path:
    """Check that the shipped file of manifest entry ``key`` exists and has its sha256."""
    folder = checkpoint_dir(folder)
    entry = read_manifest(folder)["checkpoints"].get(key)
    if entry is None:
        raise FileNotFoundError(f"no shipped checkpoint {key!r} in {folder / MANIFEST}")
    name = entry["recipe"]["name"]
    path = folder / entry["file"]
    if not path.exists():
        raise FileNotFoundError(f"the manifest lists {path} but the file is missing; run "
                                f"`python -m course_lib pretrain {name}` to make it again")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"{path} does not match the manifest: sha256 {digest[:12]}… instead of "
                         f"{entry['sha256'][:12]}… (the file was changed or is corrupt); restore "
                         f"it from git or run `python -m course_lib pretrain {name}`")
    return path


def load_shipped(key: str, device=None, folder=None):
    """The shipped model of manifest entry ``key`` (sha256 verified), in eval mode on ``device``."""
    return load_model(verify(key, folder), device=device)


def find_shipped(recipe_: dict, folder=None) -> tuple[str, dict] | None:
    """(key, manifest entry) of the shipped checkpoint whose recipe equals ``recipe_``, or None."""
    for key, entry in read_manifest(folder)["checkpoints"].items():
        if _same(entry["recipe"], recipe_):
            return key, entry
    return None


def shipped_with(model: str, data: str = "dsprites", folder=None, **config) -> list[dict]:
    """The manifest entries of ``model`` trained on ``data`` whose config has every value of
    ``config`` (``beta=8.0``) and that carry a MIG, fewest steps first: e.g. every shipped β-VAE
    of one β, whatever its seed and length."""
    entries = [e for e in read_manifest(folder)["checkpoints"].values()
               if e["recipe"]["model"] == model and e["recipe"].get("data") == data
               and all(e["recipe"]["config"].get(k) == v for k, v in config.items())
               and "mig" in e.get("metrics", {})]
    return sorted(entries, key=lambda e: (e["recipe"]["steps"], e["recipe"]["seed"]))


#: MIG on 10,000 images of the β-VAE's quick recipe (2,000 steps, β = 8) for seeds 0-19, as printed
#: by ``pretrain beta_vae --profile quick --seed S``: measured once, on one machine, with the code of
#: that time (notebook 03 shows the spread; 05 and 08 weigh one seed against it).
BETA_VAE_SEED_SWEEP_MIG = (0.140, 0.055, 0.057, 0.156, 0.017, 0.043, 0.161, 0.147, 0.016, 0.034,
                           0.075, 0.088, 0.059, 0.177, 0.066, 0.138, 0.006, 0.105, 0.013, 0.062)

#: Recipe data: every dSprites image with its class indices (what the factor classifier learns from).
LABELLED = "dsprites+classes"


def data_ranges(kind: str) -> dict | None:
    """The class ranges of a recipe's data: ``"dsprites"`` and ``LABELLED`` → None (all images),
    ``"dsprites:posX<16"`` → ``{"posX": (0, 16)}`` (any factor name and bound)."""
    from .data.dsprites import _class_bounds

    if kind in ("dsprites", LABELLED, DIGITS):
        return None
    expected = "expected 'dsprites' or 'dsprites:<factor><<bound>' such as 'dsprites:posX<16'"
    if not isinstance(kind, str) or not kind.startswith("dsprites:") or "<" not in kind:
        raise ValueError(f"unknown data {kind!r} in a recipe: {expected}")
    factor, _, bound = kind[len("dsprites:"):].partition("<")
    if not bound.isdigit():
        raise ValueError(f"unknown data {kind!r} in a recipe: {expected}")
    ranges = {factor: (0, int(bound))}
    try:
        _class_bounds(ranges)  # the sampler's own check of the factor name and the bound
    except ValueError as err:
        raise ValueError(f"data {kind!r} in a recipe: {err}") from err
    return ranges


def make_data(kind: str, device=None):
    """The training data of a recipe: all of dSprites, a class range of it, or (``LABELLED``)
    all of it as (images, classes) batches."""
    from .data import DSprites

    if kind == DIGITS:
        from .data.mnist import load_mnist

        return load_mnist(source="digits", verbose=False).images
    if kind == LABELLED:
        from .models.classifier import LabelledSampler

        return LabelledSampler(DSprites().sampler(choose_device(device)))
    ranges = data_ranges(kind)
    return DSprites() if ranges is None else DSprites().sampler(choose_device(device), class_ranges=ranges)


def build_from_recipe(recipe_: dict, device=None, progress=False):
    """The recipe's untrained model, initialised with ``torch.manual_seed(seed)``; a model with a
    ``"step1"`` recipe is built on that model's weights (the shipped ones, else trained now)."""
    from .models import build_model

    config, step1 = dict(recipe_["config"]), None
    if recipe_.get("step1"):
        step1 = _load_or_train_recipe(recipe_["step1"], device=device, progress=progress).model.cpu()
        if recipe_.get("step1_as") != "init_from":
            config["vae"] = step1
    torch.manual_seed(recipe_["seed"])
    model = build_model(recipe_["model"], **config)
    if step1 is not None and recipe_.get("step1_as") == "init_from":
        model.init_from(step1)
    if not _same(model.config(), recipe_["config"]):
        raise ValueError(f"{recipe_['name']}: the model built from its recipe has the configuration "
                         f"{model.config()}, not the recipe's {recipe_['config']}")
    return model


def train_recipe(recipe_: dict, *, device=None, progress=True, checkpoint=None,
                 **train_options) -> TrainResult:
    """Build the recipe's model (:func:`build_from_recipe`) and train it.

    ``train_options`` go to :func:`course_lib.train.train` (``checkpoint_every``, ``stop_at``,
    ``time_limit``, ``log_every``, ``checkpoint_extra``, ``resume``).
    """
    model = build_from_recipe(recipe_, device)
    return train(model, make_data(recipe_["data"], device), steps=recipe_["steps"],
                 batch_size=recipe_["batch_size"], lr=recipe_["lr"], seed=recipe_["seed"],
                 device=device, checkpoint=checkpoint, progress=progress, **train_options)


def load_or_train(name: str, *, profile: str | None = None, device=None, progress=True, folder=None,
                  **overrides) -> TrainResult:
    """The shipped model when its recipe is the one asked for, else a freshly trained one.

    Args:
        name: a reference model of :data:`RECIPES` (``"beta_vae"``, ...).
        profile: chooses the recipe's number of steps (default: ``$COURSE_PROFILE``/quick).
        overrides: ``seed=1``, ``beta=16``, ``steps=500``, ... (see :func:`recipe`).
        folder: where the shipped checkpoints are (default: :func:`checkpoint_dir`).

    A recipe that is not shipped is trained with :func:`course_lib.train.fit` (tagged with the
    recipe's name), so the next call with the same recipe loads that run from ``runs/checkpoints``.
    Returns:
        :class:`~course_lib.train.TrainResult`; ``extra["source"]`` is ``"shipped"`` or
        ``"trained"``, ``extra["recipe"]`` the recipe and, for a shipped model,
        ``extra["metrics"]`` and ``extra["trained_on"]`` from the manifest.
    """
    return _load_or_train_recipe(recipe(name, profile, **overrides), device=device,
                                 progress=progress, folder=folder)


def _load_or_train_recipe(wanted: dict, *, device=None, progress=True, folder=None) -> TrainResult:
    """:func:`load_or_train` for a full recipe."""
    name = wanted["name"]
    found = find_shipped(wanted, folder)
    if found is not None:
        key, entry = found
        path = verify(key, folder)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = load_model(path, device=device).train()
        return TrainResult(model=model, history=History(state.get("history", {})),
                           steps=wanted["steps"], device=str(next(model.parameters()).device),
                           checkpoint=str(path),
                           extra={"source": "shipped", "recipe": wanted,
                                  "metrics": entry.get("metrics", {}),
                                  "trained_on": entry.get("trained_on", {})})
    model = build_from_recipe(wanted, device, progress)
    result = fit(model, make_data(wanted["data"], device), steps=wanted["steps"],
                 batch_size=wanted["batch_size"], lr=wanted["lr"], seed=wanted["seed"], tag=name,
                 device=device, progress=progress)
    if not result.finished:  # a stop was requested (SIGTERM, Ctrl-C in pretrain) while it trained
        raise TrainingStopped(f"{name}: training stopped at step {result.steps:,} of {wanted['steps']:,}; "
                              f"the run is saved in {result.checkpoint}, and the same call continues it")
    result.extra.update(source="trained", recipe=wanted)
    return result


def describe_device(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU ({threads} thread{'s' if threads != 1 else ''})"


def describe_training(trained_on: dict) -> str:
    """Where and how long a shipped model trained, from its manifest ``trained_on`` record: the
    wall time, the number of segments and every machine with its share of the segments, e.g.
    ``"8.20 h in 5 segments: 4 on x86_64 CPU (1 thread), 1 on x86_64 CPU (2 threads)"``.

    Records of a single run without ``segments`` give their one device; an empty record gives
    ``"training not recorded"``.
    """
    if not trained_on:
        return "training not recorded"
    seconds = trained_on.get("seconds")
    hours = trained_on.get("hours", seconds / 3600 if seconds is not None else None)
    when = ("wall time not recorded" if hours is None else f"{hours:.2f} h" if hours >= 1
            else f"{hours * 60:.0f} min" if hours * 60 >= 1 else f"{hours * 3600:.0f} s")
    segments = trained_on.get("segments") or []
    if not segments:  # older records: the machines and the number of resumptions, if any
        devices = list(dict.fromkeys(_thread_word(m.get("device", "?")) for m in trained_on.get("machines", [])))
        where = "; ".join(devices) or _thread_word(trained_on.get("device", "?"))
        if "resumptions" not in trained_on:
            return f"{when} on {where}"
        n = int(trained_on["resumptions"]) + 1
        return f"{when} in {n} segment{'s' if n != 1 else ''} on {where}"
    counts: dict[str, int] = {}
    for segment in segments:
        device = _thread_word(segment.get("device", "?"))
        counts[device] = counts.get(device, 0) + 1
    n = len(segments)
    if len(counts) == 1:
        return f"{when} in {n} segment{'s' if n != 1 else ''} on {next(iter(counts))}"
    return f"{when} in {n} segments: " + ", ".join(f"{c} on {d}" for d, c in counts.items())


def _thread_word(device: str) -> str:
    # records written before describe_device said "1 thread" read "(1 threads)"
    return device.replace("(1 threads)", "(1 thread)")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
