"""One leaderboard for every model of the course: the same dSprites data, the same metrics.

:data:`ENTRIES` names each model with its recipe. :func:`get_model` loads the course's shipped
checkpoint when one exists for that entry (``course_lib.checkpoints``) and otherwise trains
it on the given budget (kept under ``runs/checkpoints`` so a rerun just loads it).
:func:`evaluate` scores any model on a fixed evaluation set: reconstruction where the model
reconstructs, discrete MIG, FactorVAE score, β-VAE score, DCI disentanglement (from a Lasso,
not disentanglement_lib's boosted trees) and SAP (chance-adjusted: each factor's gap is the
published SAP's times C/(C − 1) for a factor of C classes; see :mod:`course_lib.metrics.sap`). Models
without an encoder are scored through the code they use: InfoGAN through Q's continuous
means, ID-GAN through its step-1 β-VAE.
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import beta_vae_score, codes_of_model, dci, encode_images, factor_vae_score, mig, sap
from .models import build_model

#: name → recipe. ``shipped``: the reference recipe (data/checkpoints) whose shipped checkpoints
#: are preferred (:func:`reference_checkpoint`); ``match``: model keywords a shipped checkpoint
#: must share with the entry (the capacity rows differ only in their penalty); ``above``: model
#: keywords a shipped checkpoint must exceed (the β-VAE row takes no β = 1 model: that is the VAE);
#: ``require``: model keywords a shipped checkpoint must have with these values (the VAE row takes
#: the shipped β-VAEs with β = 1, which are VAEs);
#: ``code_of``: the entry whose encoder provides the code (ID-GAN uses its β-VAE's);
#: ``init_from``: the entry whose encoder and decoder it starts from (VAE-GAN, as in notebook 07);
#: ``lr``: a learning rate of its own instead of the leaderboard's; ``slow``: one training step
#: costs several of a VAE's (a discriminator and more), so the quick profile leaves the entry out
#: unless a checkpoint is shipped (:func:`default_names`).
ENTRIES: dict[str, dict] = {
    "AE": {"model": "autoencoder", "config": {"num_latents": 10}, "shipped": "autoencoder"},
    "VAE": {"model": "vae", "config": {"num_latents": 10}, "shipped": "beta_vae", "require": {"beta": 1.0}},
    "β-VAE": {"model": "beta_vae", "config": {"num_latents": 10, "beta": 4.0}, "shipped": "beta_vae",
              "above": {"beta": 1.0}},
    "capacity": {"model": "capacity_vae", "config": {"num_latents": 10, "penalty": "abs"},
                 "capacity": True, "shipped": "capacity_vae", "match": ("penalty",)},
    "hinge": {"model": "capacity_vae", "config": {"num_latents": 10, "penalty": "hinge"}, "capacity": True,
              "shipped": "capacity_vae", "match": ("penalty",)},
    "β-TCVAE": {"model": "beta_tcvae", "config": {"num_latents": 10, "beta": 6.0}, "shipped": "beta_tcvae"},
    "FactorVAE": {"model": "factor_vae", "config": {"num_latents": 10}, "shipped": "factor_vae"},
    "CFactorVAE": {"model": "cfactor_vae", "config": {"num_latents": 10}, "capacity": True},
    # notebook 06's dSprites recipe (infogan_dsprites): InfoGAN-CR's modifications
    "InfoGAN (Q)": {"model": "infogan", "config": {"codes": "cont4", "noise_dim": 5, "arch": "conv64",
                                                   "width": 32, "lam": 1.0, "q_std": 1.0, "spectral_norm": True,
                                                   "d_lr_ratio": 2.0},
                    "shipped": "infogan_dsprites", "match": ("codes",), "slow": True},
    # notebook 07's recipe: β 0.1, γ 1, Dis_l = conv3, Adam β₁ 0.5, lr 5e-4, R1 on D, here from the
    # β-VAE row's weights (the shipped long VAE-GAN starts from a plain VAE, β = 1)
    "VAE-GAN": {"model": "vae_gan", "config": {"num_latents": 10, "beta": 0.1, "gamma": 1.0, "feature_layer": "conv3",
                                               "adam_beta1": 0.5, "r1": 10.0}, "init_from": "β-VAE", "lr": 5e-4,
                "shipped": "vae_gan", "slow": True},
    "ID-GAN (β-VAE code)": {"model": "idgan", "config": {"noise_dim": 16}, "code_of": "β-VAE"},
}

METRIC_COLUMNS = ("recon", "MIG", "FactorVAE", "β-VAE score", "DCI-D", "SAP")
#: A leaderboard row, in order: the entry, its training budget in steps (:func:`training_steps`),
#: the seed of its model and how that seed was chosen (:func:`provenance`), where the model came
#: from (:func:`get_model`'s source), then the scores.
TABLE_COLUMNS = ("model", "steps", "seed", "chosen", "source") + METRIC_COLUMNS
#: :func:`evaluate`'s count of the code dimensions that the FactorVAE score keeps (not constant,
#: not pruned as collapsed): a model with m of them wins the votes of at most m factors. Not a
#: table column.
ACTIVE_DIMS = "active dims"

#: The ``chosen`` of a model whose seed was not picked among others (one seed shipped, or trained here).
NOT_SELECTED = "not selected"

#: How the seed of a shipped checkpoint was chosen, where it was chosen by hand: key → (the short
#: ``chosen`` of the table, the long text of the source). Other shipped checkpoints: "best MIG of
#: n seeds" when the candidates of :func:`reference_checkpoint` with the chosen one's budget hold
#: n > 1 seeds, else
#: :data:`NOT_SELECTED`. A hand choice that was not by MIG ("least turned") names the row only
#: while its seed is the only one shipped: once other seeds compete, the row's model is the best
#: MIG of them, and the hand choice is kept in the long text as the reason its seed was trained.
#: Choosing a seed by its MIG, or by its latents' alignment with the factors, uses the true
#: factors: the leaderboard says so.
SEED_CHOICE = {
    "beta_vae-12000steps-seed13": ("best MIG of 20 seeds",
                                   "seed 13: the best MIG of seeds 0-19 at 2,000 steps, chosen with "
                                   "the true factors (notebook 03), then trained on"),
    "beta_vae-12000steps-seed13-beta1": ("the β-VAE row's seed",
                                         "seed 13: the β-VAE row's seed (the best MIG of seeds 0-19 at "
                                         "β = 8, chosen with the true factors), trained at β = 1 to compare "
                                         "the two at one seed"),
    "capacity_vae-120000steps-seed2-full": ("least turned of 4 seeds",
                                            "seed 2: of seeds 1-3 after 4,000 steps, the one whose position latents "
                                            "were least turned from posX and posY (chosen with the true factors; "
                                            "seed 0's were turned by 35°), then trained on"),
}


def reference_checkpoint(name: str, steps: int) -> tuple[str, dict, str] | None:
    """The shipped checkpoint that entry ``name`` uses with budget ``steps``, as ``(key, manifest
    entry, note)``, or None (the entry is then trained here).

    Candidates: the shipped checkpoints of the entry's reference recipe that share the entry's
    ``match`` keywords, exceed its ``above`` bounds and were trained for at least ``steps``. The
    one with the highest MIG in the manifest (on 10,000 images) is used, then the one with the most
    steps. The note says which one and why: steps, seed, how the seed was chosen, and keywords
    that differ from the entry's.
    """
    found = _reference(name, steps)
    return None if found is None else found[:3]


def _reference(name: str, steps: int) -> tuple[str, dict, str, str] | None:
    """:func:`reference_checkpoint`'s ``(key, manifest entry, note)`` and the short ``chosen``."""
    if name not in ENTRIES:
        raise ValueError(f"unknown leaderboard entry {name!r}: expected one of {list(ENTRIES)}")
    entry = ENTRIES[name]
    if not entry.get("shipped"):
        return None
    from .checkpoints import read_manifest

    candidates = []
    for key, shipped in read_manifest()["checkpoints"].items():
        recipe = shipped["recipe"]
        if recipe["name"] != entry["shipped"] or recipe["steps"] < steps:
            continue
        if any(recipe["config"].get(k) != entry["config"].get(k) for k in entry.get("match", ())):
            continue
        if any(not recipe["config"].get(k, bound) > bound for k, bound in entry.get("above", {}).items()):
            continue
        if any(recipe["config"].get(k) != value for k, value in entry.get("require", {}).items()):
            continue
        mig = shipped.get("metrics", {}).get("mig")
        candidates.append((float("-inf") if mig is None else float(mig), recipe["steps"], key, shipped))
    if not candidates:
        return None
    mig, n, key, shipped = max(candidates, key=lambda c: (c[0], c[1]))
    recipe = shipped["recipe"]
    differs = [k for k in entry["config"] if k in recipe["config"] and recipe["config"][k] != entry["config"][k]]
    notes = "".join(f", {k}={recipe['config'][k]:g}" if isinstance(recipe["config"][k], (int, float))
                    else f", {k}={recipe['config'][k]}" for k in differs)
    notes += "".join(f", {k}={v:g}" if isinstance(v, (int, float)) else f", {k}={v}"
                     for k, v in entry.get("require", {}).items())   # a β-VAE with β = 1 as the VAE
    # the seeds that competed: candidates of the chosen one's budget (a choice between budgets
    # is "best MIG of n shipped", below, not a choice of seed)
    seeds = sorted({c[3]["recipe"]["seed"] for c in candidates if c[1] == n})
    if key in SEED_CHOICE and (len(seeds) == 1 or SEED_CHOICE[key][0].startswith("best MIG")):
        chosen, seed = SEED_CHOICE[key]   # the hand choice, or a choice by MIG among more seeds
    elif len(seeds) > 1:
        chosen = f"best MIG of {len(seeds)} seeds"
        seed = f"seed {recipe['seed']}: the best MIG of the shipped seeds {', '.join(map(str, seeds))}"
        if key in SEED_CHOICE:   # the hand choice's text, without its leading "seed N: "
            why = SEED_CHOICE[key][1].removeprefix(f"seed {recipe['seed']}: ")
            seed += f" (why it was trained: {why})"
    else:
        chosen, seed = NOT_SELECTED, f"seed {recipe['seed']}, not selected"
    best = f"best MIG of {len(candidates)} shipped" if len(candidates) > 1 else "the only one shipped"
    start = recipe.get("step1")   # a model trained on top of another: its budget and seed too
    if start is not None:   # its β too: the β = 1 VAE under a VAE-GAN is not the β-VAE row's model
        beta = start.get("config", {}).get("beta")
        best += (f"; trained on top of {start['name']} ({'' if beta is None else f'β = {beta:g}, '}"
                 f"{start['steps']:,} steps, seed {start['seed']}), {start['steps'] + n:,} steps in all "
                 f"(the steps column counts its own {n:,})")
    return key, shipped, f"shipped ({n} steps{notes}; {seed}; {best})", chosen


def seed_groups(min_seeds: int = 2) -> dict[str, list[tuple[int, float]]]:
    """The shipped checkpoints whose recipes differ only in their seed, for a spread over seeds
    (source paper 003's Fig. 5): group name (a member's manifest key with its seed written
    ``seed*``) → ``[(seed, MIG in the manifest)]`` sorted by seed, for the groups with at least
    ``min_seeds`` seeds scored. The manifest's MIG is the discrete one on 10,000 images."""
    from .checkpoints import read_manifest

    groups: dict[str, list] = {}
    for key, entry in read_manifest()["checkpoints"].items():
        mig = entry.get("metrics", {}).get("mig")
        if mig is None:
            continue
        rest = {k: v for k, v in entry["recipe"].items() if k != "seed"}
        signature = json.dumps(rest, sort_keys=True, default=str)
        groups.setdefault(signature, []).append((key, int(entry["recipe"]["seed"]), float(mig)))
    out = {}
    for members in groups.values():
        if len({seed for _, seed, _ in members}) >= min_seeds:
            key, seed, _ = min(members, key=lambda m: m[1])
            out[key.replace(f"-seed{seed}", "-seed*", 1)] = sorted((sd, mig) for _, sd, mig in members)
    return dict(sorted(out.items()))


def provenance(name: str, steps: int, seed: int, use_shipped: bool = True) -> tuple[int, str]:
    """``(seed, chosen)`` of the model that :func:`get_model` gives for entry ``name`` with budget
    ``steps`` and ``seed``: the shipped checkpoint's seed and how it was chosen
    (:data:`SEED_CHOICE`; "best MIG of n seeds" when shipped seeds competed; else
    :data:`NOT_SELECTED`), or ``(seed, NOT_SELECTED)`` for a model trained here. An entry scored
    through another entry's code (``code_of``) has that entry's."""
    if name not in ENTRIES:
        raise ValueError(f"unknown leaderboard entry {name!r}: expected one of {list(ENTRIES)}")
    base = ENTRIES[name].get("code_of")
    if base is not None:
        return provenance(base, steps, seed, use_shipped)
    found = _reference(name, steps) if use_shipped else None
    if found is None:
        return int(seed), NOT_SELECTED
    return int(found[1]["recipe"]["seed"]), found[3]


def default_names(profile: str, steps: int) -> tuple[list[str], dict[str, str]]:
    """The entries that a leaderboard of ``profile`` with budget ``steps`` scores when the caller
    names none, and the ones it leaves out, each with the reason.

    Every entry, except in the quick profile the ``slow`` ones without a shipped checkpoint
    (:func:`reference_checkpoint`): training them here would take minutes of the profile's few.
    """
    from .profiles import check_profile

    profile = check_profile(profile)
    names, left_out = [], {}
    for name, entry in ENTRIES.items():
        if profile == "quick" and entry.get("slow") and reference_checkpoint(name, steps) is None:
            left_out[name] = (f"no shipped checkpoint, and training it here ({steps} steps, each several of a "
                              f"VAE's) would take minutes: name it in MODELS, or use the full profile")
        else:
            names.append(name)
    return names, left_out


def inherited_scores(name: str, scored: dict[str, dict]) -> dict | None:
    """The scores of entry ``name`` when they are another row's by construction, else None.

    An entry scored through another entry's code (``code_of``: ID-GAN through its frozen β-VAE)
    gets exactly that entry's scores, whatever its generator learned, once that entry is in
    ``scored`` (name → :func:`evaluate` row); it reconstructs nothing, so its ``recon`` is NaN.
    """
    if name not in ENTRIES:
        raise ValueError(f"unknown leaderboard entry {name!r}: expected one of {list(ENTRIES)}")
    base = ENTRIES[name].get("code_of")
    if base is None or base not in scored:
        return None
    return {**scored[base], "recon": float("nan")}


def training_steps(name: str, steps: int, use_shipped: bool = True) -> int:
    """The training budget (steps) of the model that :func:`get_model` gives for entry ``name``
    with budget ``steps``: the shipped checkpoint's steps when it uses one
    (:func:`reference_checkpoint`), else ``steps``."""
    found = reference_checkpoint(name, steps) if use_shipped else None
    if found is None and name not in ENTRIES:
        raise ValueError(f"unknown leaderboard entry {name!r}: expected one of {list(ENTRIES)}")
    return int(found[1]["recipe"]["steps"]) if found else int(steps)


def table_row(name: str, steps: int, source: str, scores: dict, *, seed: int, chosen: str) -> dict:
    """One leaderboard row with the columns of :data:`TABLE_COLUMNS` (scores it lacks are NaN;
    keys of ``scores`` that are not columns, such as :data:`ACTIVE_DIMS`, are left out)."""
    row = {"model": name, "steps": int(steps), "seed": int(seed), "chosen": str(chosen), "source": source}
    row.update({c: scores.get(c, float("nan")) for c in METRIC_COLUMNS})
    return row


def short_source(source: str, width: int = 72) -> str:
    """``source`` for a printed table: a shipped checkpoint's note cut to its first part
    ("shipped (12000 steps, beta=8)": its seed and how it was chosen are the ``seed`` and
    ``chosen`` columns), any other text cut to ``width`` characters with "…"."""
    if source.startswith("shipped (") and ";" in source:
        return source[:source.index(";")] + ")"
    return source if len(source) <= width else source[:width - 1].rstrip() + "…"


def printed_rows(rows: list[dict]) -> list[dict]:
    """Copies of ``rows`` with :func:`short_source` sources, for the tables shown in a notebook
    (:func:`write_table` keeps the full sources)."""
    return [{**r, "source": short_source(r["source"])} if "source" in r else dict(r) for r in rows]


class QEncoder(torch.nn.Module):
    """InfoGAN seen as an encoder: ``encode(x) = (Q's reading, None)``, the most likely category
    of each categorical code and the continuous means (``representation``)."""

    def __init__(self, gan):
        super().__init__()
        self.gan = gan

    def encode(self, x):
        return self.gan.representation(x), None


def build_entry(name: str, steps: int, vae=None):
    """A fresh model for leaderboard entry ``name`` (capacity schedules fit into ``steps``)."""
    if name not in ENTRIES:
        raise ValueError(f"unknown leaderboard entry {name!r}: expected one of {list(ENTRIES)}")
    entry = ENTRIES[name]
    config = dict(entry["config"])
    if entry.get("capacity"):
        config["c_steps"] = max(1, int(steps * 2 / 3))
    if entry["model"] == "idgan":
        if vae is None:
            raise ValueError("ID-GAN needs its step-1 β-VAE: pass vae=")
        config["vae"] = vae
    model = build_model(entry["model"], **config)
    if entry.get("init_from"):
        if vae is None:
            raise ValueError(f"{name} starts from the weights of the {entry['init_from']} row: pass vae=")
        model.init_from(vae)
    return model


def get_model(name: str, data, *, steps: int, batch_size: int, lr: float, seed: int, device,
              cache_dir=None, vae=None, use_shipped: bool = True):
    """(model, source) for entry ``name``: the shipped checkpoint if it fits, else trained here
    with :func:`course_lib.train.fit` (saved in ``cache_dir``, default ``runs/checkpoints``, and
    loaded from there next time)."""
    from .train import fit

    found = reference_checkpoint(name, steps) if use_shipped else None
    if found is not None:
        from .checkpoints import load_shipped

        key, _, note = found
        return load_shipped(key, device=device), note
    torch.manual_seed(seed)  # before building: the initial weights are the seed's, as in train_recipe
    model = build_entry(name, steps, vae=vae)
    entry = ENTRIES[name]
    lr = entry.get("lr", lr)
    result = fit(model, data, steps=steps, batch_size=batch_size, lr=lr, seed=seed, tag="08", folder=cache_dir,
                 device=device, progress=False)
    source = "cached" if result.extra["loaded"] else f"trained {steps} steps ({result.seconds:.0f} s)"
    if entry.get("init_from"):
        source += f", from the {entry['init_from']} row's weights, lr {lr:g}"
    return result.model.eval(), source


def encoder_of(model):
    """The module whose ``encode`` gives the representation that a model's row is scored on."""
    if hasattr(model, "predict_codes"):
        return QEncoder(model)
    if model.model_name == "idgan":
        return model.vae
    return model


@torch.no_grad()
def reconstruction_error(model, x, batch_size: int = 1000) -> float:
    """Bernoulli reconstruction error (nats per image) of the posterior mean; NaN for models that
    do not reconstruct (GANs).

    The decoder's logits are scored directly. A model trained with the squared error
    (``recon="mse"``, the autoencoder's default) outputs intensities, not logits: its
    ``decode_pixels`` are clipped to [1e-6, 1 − 1e-6] and scored by the same cross-entropy, so
    that every row is in the same unit (reading its intensities as logits would put every
    background pixel at 0.5 and cost about 4096·log 2 nats per image)."""
    if not hasattr(model, "decode") or model.model_name == "idgan":
        return float("nan")
    pixels = getattr(model, "recon", "bernoulli") == "mse"
    total = 0.0
    for xb in x.split(batch_size):
        mu, _ = model.encode(xb)
        if pixels:
            p = model.decode_pixels(mu).clamp(1e-6, 1 - 1e-6)
            total += float(F.binary_cross_entropy(p, xb, reduction="sum"))
        else:
            total += float(F.binary_cross_entropy_with_logits(model.decode(mu), xb, reduction="sum"))
    return total / len(x)


def evaluate(model, dataset, classes: torch.Tensor, *, device=None, scores: bool = True,
             n_votes: int = 800, seed: int = 0, n_recon: int = 2000) -> dict:
    """All leaderboard columns for ``model`` on the evaluation ``classes`` (N×6), and (with
    ``scores``) :data:`ACTIVE_DIMS`, the number of code dimensions the FactorVAE score kept.

    ``n_votes``: training and evaluation votes of the FactorVAE and β-VAE scores (the papers
    use 10,000 / 5,000; fewer keep the notebook fast, with more sampling noise).
    ``n_recon``: the reconstruction error is averaged over the first ``n_recon`` images (an
    average: 2,000 images pin it down to a fraction of a nat; every image for the MIG).
    """
    device = device or next(model.parameters()).device
    encoder = encoder_of(model)
    x = dataset.images(classes.to(device))
    mu, _ = encode_images(encoder, x)
    codes = mu.float().cpu().numpy()
    factors = classes.cpu().numpy()
    row = {"recon": reconstruction_error(model, x[:n_recon]), "MIG": mig(codes, factors).score}
    if scores:
        codes_of = codes_of_model(encoder, dataset, device=device)
        sizes = dataset.factor_sizes
        factor_vae = factor_vae_score(codes_of, sizes, n_train=n_votes, n_eval=n_votes // 2,
                                      n_variance=min(10_000, 50 * n_votes), seed=seed)
        row["FactorVAE"] = factor_vae.score
        row[ACTIVE_DIMS] = int(factor_vae.active.sum())
        row["β-VAE score"] = beta_vae_score(codes_of, sizes, n_train=n_votes, n_eval=n_votes // 2,
                                            seed=seed).score
        row["DCI-D"] = dci(codes, factors, method="lasso", seed=seed).disentanglement
        row["SAP"] = sap(codes, factors, seed=seed).score
    return row


def write_table(rows: list[dict], folder) -> dict[str, Path]:
    """Write the leaderboard as CSV, JSON and Markdown under ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0]) if rows else []
    paths = {"csv": folder / "leaderboard.csv", "json": folder / "leaderboard.json",
             "md": folder / "leaderboard.md"}
    with open(paths["csv"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    paths["json"].write_text(json.dumps(rows, indent=1, default=float), encoding="utf-8")
    paths["md"].write_text(markdown_table(rows), encoding="utf-8")
    return paths


def _fmt(value) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else (f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}")
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict]) -> str:
    """The rows as an HTML table (the same cells as :func:`markdown_table`, escaped), for a
    ``widgets.HTML`` whose value is replaced in place: no Output widget, whose cleared-and-redrawn
    output can leave a headless run (papermill, nbclient) waiting on the cell for ever."""
    if not rows:
        return ""
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def sort_rows(rows: list[dict], key: str = "MIG", descending: bool = True) -> list[dict]:
    """Rows sorted by ``key`` (NaN last)."""
    def k(r):
        v = r.get(key, float("nan"))
        return (isinstance(v, float) and math.isnan(v), -v if descending else v)
    return sorted(rows, key=k)


def leaderboard_figure(rows: list[dict], key: str = "MIG"):
    """A horizontal bar chart of ``key`` per model (a matplotlib Figure). A row with ``steps``
    is labelled with them ("hinge · 120,000 steps"): the rows' budgets differ by orders of
    magnitude, and a bar without its budget invites the wrong comparison. A row whose seed was
    picked among others with the true factors (``chosen`` other than :data:`NOT_SELECTED`) is
    hatched, with a legend saying so; the title says that the chart is not a ranking of methods.
    A row scored through another row's code (``code_of``: ID-GAN) would repeat that row's bar:
    it is left out, and the title names it. A row with a ``source`` other than a shipped
    checkpoint (trained here on the notebook's budget) is drawn in a second colour."""
    from matplotlib.patches import Patch

    from .viz import figure

    copies = [r["model"] for r in rows if ENTRIES.get(r["model"], {}).get("code_of")]
    rows = sort_rows([r for r in rows if r["model"] not in copies], key)[::-1]   # barh: the best on top
    fig = figure((6.5, 0.35 * len(rows) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    names = [f"{r['model']} · {r['steps']:,} steps" if r.get("steps") else r["model"] for r in rows]
    picked = [r.get("chosen", NOT_SELECTED) != NOT_SELECTED for r in rows]
    # a row trained here on the notebook's budget (source "cached" or "trained ...") in another colour
    here = [bool(r.get("source")) and not str(r["source"]).startswith("shipped") for r in rows]
    bars = ax.barh(names, np.nan_to_num([r[key] for r in rows]), color=["C1" if h else "C0" for h in here])
    for bar, hatched in zip(bars, picked):
        if hatched:
            bar.set_hatch("//")
            bar.set_edgecolor("white")
    handles = [Patch(facecolor="C0", hatch="//", edgecolor="white", label="seed chosen with the true factors")
               ] if any(picked) else []
    if any(here):
        handles += [Patch(facecolor="C0", label="shipped checkpoint"),
                    Patch(facecolor="C1", label="trained here, on this budget")]
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_xlabel(key)
    left_out = "".join(f"\n{name} = the {ENTRIES[name]['code_of']} row: not drawn again"
                       for name in copies)
    ax.set_title(f"{key} on dSprites, per model\n(not a ranking of methods: budgets and seeds differ){left_out}",
                 fontsize=9)
    return fig
