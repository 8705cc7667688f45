"""The leaderboard: every entry builds and is scored through the right code; tables sort and write."""

import json
import math
import re

import pytest
import torch

from course_lib import leaderboard
from course_lib.data import DSprites
from course_lib.models import build_model


def test_every_entry_builds_and_exposes_a_code():
    vae = build_model("beta_vae", num_latents=10)
    x = torch.zeros(2, 1, 64, 64)
    for name in leaderboard.ENTRIES:
        model = leaderboard.build_entry(name, steps=30, vae=vae).eval()
        with torch.no_grad():
            codes, _ = leaderboard.encoder_of(model).encode(x)
        assert codes.dim() == 2 and len(codes) == 2, name
        if leaderboard.ENTRIES[name].get("capacity"):
            assert model.c_steps == 20  # the capacity schedule fits into the budget
    # VAE-GAN starts from the β-VAE's encoder and decoder (notebook 07's recipe)
    vaegan = leaderboard.build_entry("VAE-GAN", steps=5, vae=vae)
    for mine, theirs in ((vaegan.encoder, vae.encoder), (vaegan.decoder, vae.decoder)):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    with pytest.raises(ValueError, match="starts from the weights"):
        leaderboard.build_entry("VAE-GAN", steps=5)
    # ID-GAN is scored through its β-VAE's code
    idgan = leaderboard.build_entry("ID-GAN (β-VAE code)", steps=5, vae=vae)
    assert leaderboard.encoder_of(idgan) is idgan.vae   # ID-GAN's own (frozen) copy of the β-VAE
    assert all(torch.equal(a, b) for a, b in zip(idgan.vae.state_dict().values(), vae.state_dict().values()))
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.build_entry("nope", steps=5)
    with pytest.raises(ValueError, match="step-1"):
        leaderboard.build_entry("ID-GAN (β-VAE code)", steps=5)


def test_every_shipped_recipe_of_an_entry_is_a_reference_model_of_the_same_kind():
    from course_lib import checkpoints

    shipped = {name: e["shipped"] for name, e in leaderboard.ENTRIES.items() if e.get("shipped")}
    assert {"β-VAE", "capacity", "hinge", "β-TCVAE", "FactorVAE"} <= set(shipped)
    for name, recipe_name in shipped.items():
        entry = leaderboard.ENTRIES[name]
        if entry["model"] == "vae" and checkpoints.RECIPES[recipe_name]["model"] == "beta_vae":
            # the VAE row takes shipped β-VAEs with β = 1: the same loss as the VAE's, term by term
            assert entry["require"] == {"beta": 1.0}
            torch.manual_seed(0)
            vae = build_model("vae", num_latents=4)
            beta1 = build_model("beta_vae", num_latents=4, beta=1.0)
            beta1.load_state_dict(vae.state_dict())
            x = torch.rand(6, 1, 64, 64).round()
            torch.manual_seed(1)
            a = vae.loss_terms(x)
            torch.manual_seed(1)
            b = beta1.loss_terms(x)
            assert a["loss"].item() == pytest.approx(b["loss"].item(), rel=1e-6)
            continue
        assert checkpoints.RECIPES[recipe_name]["model"] == entry["model"], name
        config = checkpoints.recipe(recipe_name, "full")["config"]
        for key in entry.get("match", ()):  # the keys a shipped model must share with the row
            assert key in config, (name, key)


def test_evaluate_columns_and_recon_only_where_it_applies():
    ds = DSprites()
    classes = ds.sample_classes(200, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    vae = build_model("vae", num_latents=4).eval()
    row = leaderboard.evaluate(vae, ds, classes, n_votes=4)
    assert set(row) == set(leaderboard.METRIC_COLUMNS) | {leaderboard.ACTIVE_DIMS}
    x = ds.images(classes)
    with torch.no_grad():
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            vae.decode(vae.encode(x)[0]), x, reduction="sum") / len(x)
    assert row["recon"] == pytest.approx(float(expected), rel=1e-5)
    # every score column, recomputed here from the model's own posterior means
    from course_lib.metrics import beta_vae_score, dci, factor_vae_score, mig, sap

    with torch.no_grad():
        codes = vae.encode(x)[0].numpy()
    factors = classes.numpy()

    def codes_of(c):
        with torch.no_grad():
            return vae.encode(ds.images(torch.as_tensor(c).long()))[0].numpy()

    votes = dict(n_train=4, n_eval=2, seed=0)
    assert row["MIG"] == pytest.approx(mig(codes, factors).score, abs=1e-6)
    assert row["DCI-D"] == pytest.approx(dci(codes, factors, method="lasso", seed=0).disentanglement, abs=1e-6)
    assert row["SAP"] == pytest.approx(sap(codes, factors, seed=0).score, abs=1e-6)
    assert row["FactorVAE"] == pytest.approx(
        factor_vae_score(codes_of, ds.factor_sizes, n_variance=200, **votes).score, abs=1e-6)
    assert row["β-VAE score"] == pytest.approx(beta_vae_score(codes_of, ds.factor_sizes, **votes).score, abs=1e-6)
    gan = leaderboard.build_entry("InfoGAN (Q)", steps=5).eval()
    assert math.isnan(leaderboard.evaluate(gan, ds, classes, scores=False)["recon"])


def test_evaluate_counts_the_dimensions_that_the_factorvae_score_keeps():
    """A code with two informative dimensions, one constant and one collapsed (std far below 5 %
    of the largest): the FactorVAE score keeps 2 of 4, and `evaluate` reports that m."""
    ds = DSprites()
    classes = ds.sample_classes(200, torch.Generator().manual_seed(2))

    class Fixed(torch.nn.Module):
        model_name = "fixed"

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))   # gives evaluate a device

        def encode(self, x):
            rows, cols = x.sum(dim=(1, 3)), x.sum(dim=(1, 2))          # [N, 64] ink per row / column
            pos = torch.arange(64, dtype=x.dtype)
            y = (rows * pos).sum(1) / rows.sum(1).clamp_min(1)         # centre of the ink: posY
            x_ = (cols * pos).sum(1) / cols.sum(1).clamp_min(1)        # and posX
            z = torch.stack([y, x_, torch.full_like(y, 3.0), 1e-4 * x_], dim=1)
            return z + self.anchor, None

    row = leaderboard.evaluate(Fixed(), ds, classes, n_votes=8)
    assert row[leaderboard.ACTIVE_DIMS] == 2
    assert math.isnan(row["recon"])   # no decoder: nothing reconstructed
    assert leaderboard.ACTIVE_DIMS not in leaderboard.table_row("fixed", 1, "here", row, seed=0, chosen="x")


def test_recon_of_a_squared_error_autoencoder_scores_its_intensities_not_logits():
    """An autoencoder trained with MSE outputs intensities: the column scores them as Bernoulli
    means, by a brute-force sum over pixels, not as logits (which would give ~4096·log 2)."""
    ds = DSprites()
    x = ds.images(ds.sample_classes(6, torch.Generator().manual_seed(1)))
    ae = build_model("autoencoder", num_latents=4).eval()
    assert ae.recon == "mse"
    # a decoder that returns the input itself, up to a known blur: intensities 0.9 / 0.1 exactly
    ae.decode = lambda z, x=x: 0.1 + 0.8 * x
    p = 0.1 + 0.8 * x
    brute = -sum(float(torch.where(x[i] > 0.5, p[i].log(), (1 - p[i]).log()).sum()) for i in range(len(x))) / len(x)
    assert leaderboard.reconstruction_error(ae, x) == pytest.approx(brute, rel=1e-5)
    assert brute < 0.2 * 4096 * math.log(2)   # far below the ~2,839 nats of reading 0.1 as a logit


def test_sort_and_write(tmp_path):
    rows = [{"model": "a", "MIG": 0.1, "recon": 5.0}, {"model": "b", "MIG": float("nan"), "recon": 1.0},
            {"model": "c", "MIG": 0.3, "recon": 9.0}]
    assert [r["model"] for r in leaderboard.sort_rows(rows)] == ["c", "a", "b"]
    assert [r["model"] for r in leaderboard.sort_rows(rows, "recon", descending=False)] == ["b", "a", "c"]
    paths = leaderboard.write_table(rows, tmp_path)
    assert json.loads(paths["json"].read_text())[2]["model"] == "c"
    md = paths["md"].read_text().splitlines()
    assert md[0] == "| model | MIG | recon |" and "—" in md[3]
    assert paths["csv"].read_text().splitlines()[0] == "model,MIG,recon"


def test_figure_puts_each_rows_budget_beside_its_name_best_on_top():
    rows = [{"model": "VAE", "steps": 200, "MIG": 0.01}, {"model": "hinge", "steps": 120_000, "MIG": 0.26},
            {"model": "no budget", "MIG": 0.1}]
    ax = leaderboard.leaderboard_figure(rows).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["VAE · 200 steps", "no budget", "hinge · 120,000 steps"]  # barh draws bottom-up
    assert [round(p.get_width(), 2) for p in ax.patches] == [0.01, 0.1, 0.26]
    assert ax.get_legend() is None and "not a ranking" in ax.get_title()
    # a row whose seed was picked with the true factors is hatched, and the legend says why
    rows[1]["chosen"], rows[0]["chosen"] = "best MIG of 20 seeds", leaderboard.NOT_SELECTED
    ax = leaderboard.leaderboard_figure(rows).axes[0]
    assert [bool(p.get_hatch()) for p in ax.patches] == [False, False, True]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seed chosen with the true factors"]
    # rows trained here are drawn in a second colour, and the legend says which is which
    rows[0]["source"], rows[1]["source"] = "cached", "shipped (120000 steps; ...)"
    ax = leaderboard.leaderboard_figure(rows).axes[0]
    colours = [tuple(p.get_facecolor()) for p in ax.patches]
    assert colours[0] != colours[2] and colours[1] == colours[2]   # VAE (here) vs no budget, hinge
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "seed chosen with the true factors", "shipped checkpoint", "trained here, on this budget"]
    # ID-GAN's row is the β-VAE row's code and scores: not drawn again, and the title says so
    rows += [{"model": "β-VAE", "steps": 12_000, "MIG": 0.2}, {"model": "ID-GAN (β-VAE code)", "steps": 12_000,
                                                                "MIG": 0.2}]
    ax = leaderboard.leaderboard_figure(rows).axes[0]
    assert len(ax.patches) == 4 and not any("ID-GAN" in t.get_text() for t in ax.get_yticklabels())
    assert "ID-GAN (β-VAE code) = the β-VAE row: not drawn again" in ax.get_title()


def _best_shipped(recipe_name, budget, match=None, above=None):
    """The manifest entry with the highest MIG (then most steps) of a recipe, found by hand."""
    from course_lib.checkpoints import read_manifest

    found = [(e["metrics"].get("mig", -1), e["recipe"]["steps"], k, e)
             for k, e in read_manifest()["checkpoints"].items()
             if e["recipe"]["name"] == recipe_name and e["recipe"]["steps"] >= budget
             and all(e["recipe"]["config"].get(key) == value for key, value in (match or {}).items())
             and all(e["recipe"]["config"][key] > bound for key, bound in (above or {}).items())]
    return max(found, key=lambda t: (t[0], t[1])) if found else None


def test_get_model_uses_the_best_trained_shipped_model_then_the_cache(tmp_path, monkeypatch):
    from course_lib.checkpoints import MissingCheckpointsWarning

    ds = DSprites()
    kw = dict(batch_size=4, lr=1e-3, seed=0, device="cpu", cache_dir=tmp_path)
    best = _best_shipped("beta_vae", 1, above={"beta": 1.0})
    if best:  # the β-VAE row: the highest-MIG shipped β-VAE, with its seed choice and its β
        mig, steps, key, entry = best
        model, source = leaderboard.get_model("β-VAE", ds.sampler(), steps=1, **kw)
        assert source.startswith(f"shipped ({steps} steps, beta={entry['recipe']['config']['beta']:g}; ")
        if key == "beta_vae-12000steps-seed13":
            assert "seed 13: the best MIG of seeds 0-19" in source and "chosen with the true factors" in source
        assert leaderboard.training_steps("β-VAE", 1) == steps
    best_tc = _best_shipped("beta_tcvae", 1)
    if best_tc:
        model, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
        assert source.startswith(f"shipped ({best_tc[1]} steps; seed {best_tc[3]['recipe']['seed']}, not selected")
        assert model.model_name == "beta_tcvae"
    # the hinge row never takes the absolute penalty's checkpoint, nor the other way round
    for name, penalty in (("hinge", "hinge"), ("capacity", "abs")):
        found = leaderboard.reference_checkpoint(name, 1)
        expected = _best_shipped("capacity_vae", 1, {"penalty": penalty})
        assert (found is None) == (expected is None)
        if found:
            assert found[0] == expected[2] and found[1]["recipe"]["config"]["penalty"] == penalty
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.warns(MissingCheckpointsWarning, match="COURSE_CHECKPOINTS"):
        model, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
    assert source.startswith("trained 1 steps")
    with pytest.warns(MissingCheckpointsWarning):
        _, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
    assert source == "cached"


def test_reference_checkpoint_prefers_the_highest_mig_then_the_most_steps(tmp_path, monkeypatch):
    import shutil

    from course_lib import checkpoints as ck

    folder = tmp_path / "ck"
    folder.mkdir()
    manifest, shipped_dir = ck.read_manifest(), ck.checkpoint_dir()
    entries = {k: e for k, e in manifest["checkpoints"].items() if e["recipe"]["name"] == "beta_tcvae"}
    if len(entries) < 2:
        pytest.skip("needs two shipped beta_tcvae checkpoints")
    (a, ea), (b, eb) = sorted(entries.items(), key=lambda kv: kv[1]["recipe"]["steps"])
    ea = dict(ea, metrics=dict(ea["metrics"], mig=0.9))  # the shorter run, given the better MIG
    (folder / ck.MANIFEST).write_text(__import__("json").dumps(
        {"format": manifest["format"], "checkpoints": {a: ea, b: eb}}))
    for key in (a, b):
        shutil.copy(shipped_dir / entries[key]["file"], folder)
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(folder))
    key, _, note = leaderboard.reference_checkpoint("β-TCVAE", 1)
    assert key == a and "best MIG of 2 shipped" in note
    # a budget above the shorter run leaves only the longer one
    key, _, note = leaderboard.reference_checkpoint("β-TCVAE", ea["recipe"]["steps"] + 1)
    assert key == b and "the only one shipped" in note
    assert leaderboard.reference_checkpoint("VAE", 1) is None
    # a shipped β-VAE with β = 1 is the VAE: the β-VAE row never takes it, whatever its MIG
    vae_like = {k: e for k, e in manifest["checkpoints"].items()
                if e["recipe"]["name"] == "beta_vae" and e["recipe"]["config"]["beta"] == 1.0}
    proper = {k: e for k, e in manifest["checkpoints"].items()
              if e["recipe"]["name"] == "beta_vae" and e["recipe"]["config"]["beta"] > 1.0}
    if vae_like and proper:
        (v, ev), (p, ep) = next(iter(vae_like.items())), next(iter(proper.items()))
        (folder / ck.MANIFEST).write_text(__import__("json").dumps({"format": manifest["format"], "checkpoints": {
            v: dict(ev, metrics=dict(ev["metrics"], mig=0.99)), p: ep}}))
        for e in (ev, ep):
            shutil.copy(shipped_dir / e["file"], folder)
        budget = min(ev["recipe"]["steps"], ep["recipe"]["steps"])
        key, _, note = leaderboard.reference_checkpoint("β-VAE", budget)
        assert key == p and "the only one shipped" in note
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.reference_checkpoint("nope", 1)


def test_table_rows_show_the_training_budget(tmp_path, monkeypatch):
    """Every row says how many steps its model was trained for, next to its scores: the shipped
    checkpoint's steps when get_model uses one, else the budget asked for."""
    from course_lib.checkpoints import read_manifest

    ds = DSprites()
    kw = dict(batch_size=4, lr=1e-3, seed=0, device="cpu", cache_dir=tmp_path)
    shipped = [e["recipe"]["steps"] for e in read_manifest()["checkpoints"].values()
               if e["recipe"]["name"] == "beta_tcvae"]
    if shipped:
        best = _best_shipped("beta_tcvae", 1)
        _, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
        assert leaderboard.training_steps("β-TCVAE", 1) == best[1]
        assert source.startswith(f"shipped ({best[1]} steps")
        # a budget above every shipped checkpoint: trained here, on that budget
        assert leaderboard.training_steps("β-TCVAE", max(shipped) + 1) == max(shipped) + 1
    assert leaderboard.training_steps("β-TCVAE", 1, use_shipped=False) == 1
    assert leaderboard.training_steps("CFactorVAE", 7) == 7  # no shipped recipe
    # a shipped model trained on top of another (VAE-GAN on a VAE) gives that start's budget and seed too
    found = leaderboard.reference_checkpoint("VAE-GAN", 1)
    if found is not None and "step1" in found[1]["recipe"]:
        start, n = found[1]["recipe"]["step1"], found[1]["recipe"]["steps"]
        assert start["config"]["beta"] == 1.0   # the VAE-GAN starts from a plain VAE, and says so
        assert (f"trained on top of {start['name']} (β = 1, {start['steps']:,} steps, seed {start['seed']}), "
                f"{start['steps'] + n:,} steps in all (the steps column counts its own {n:,})") in found[2]
    # the VAE row takes only shipped β-VAEs with β = 1 (``require``), the β-VAE row only β > 1
    for name, is_vae in (("VAE", True), ("β-VAE", False)):
        found = leaderboard.reference_checkpoint(name, 1)
        if found is not None:
            assert (found[1]["recipe"]["config"]["beta"] == 1.0) == is_vae, (name, found[0])
            assert bool(re.search(r"beta=1[;,)]", found[2])) == is_vae, found[2]
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.training_steps("nope", 5)

    row = leaderboard.table_row("VAE", 7, "cached", {"MIG": 0.1, "recon": 50.0}, seed=3,
                                chosen=leaderboard.NOT_SELECTED)
    assert tuple(row) == leaderboard.TABLE_COLUMNS
    assert row["steps"] == 7 and row["seed"] == 3 and row["MIG"] == 0.1 and math.isnan(row["SAP"])
    header = leaderboard.markdown_table([row]).splitlines()[0]
    assert header.startswith("| model | steps | seed | chosen | source | recon | MIG |")
    assert "| VAE | 7 | 3 | not selected | cached |" in leaderboard.markdown_table([row])
    # the steps column sorts like any score
    short = leaderboard.table_row("AE", 200, "cached", {}, seed=0, chosen=leaderboard.NOT_SELECTED)
    assert [r["model"] for r in leaderboard.sort_rows([row, short], "steps")] == ["AE", "VAE"]


def test_seed_and_chosen_say_how_each_rows_model_was_picked(tmp_path, monkeypatch):
    """The seed column is the shipped checkpoint's seed (or the notebook's, for a model trained
    here) and `chosen` says whether that seed was picked among others with the true factors."""
    import shutil

    from course_lib import checkpoints as ck

    assert leaderboard.provenance("CFactorVAE", 7, seed=5) == (5, leaderboard.NOT_SELECTED)   # trained here
    assert leaderboard.provenance("β-TCVAE", 1, seed=5, use_shipped=False) == (5, leaderboard.NOT_SELECTED)
    found = leaderboard.reference_checkpoint("β-VAE", 1)
    if found:
        seed, chosen = leaderboard.provenance("β-VAE", 1, seed=5)
        assert seed == found[1]["recipe"]["seed"]
        if found[0] in leaderboard.SEED_CHOICE:
            assert leaderboard.SEED_CHOICE[found[0]][1] in found[2]
        if found[0] == "beta_vae-12000steps-seed13":
            assert (seed, chosen) == (13, "best MIG of 20 seeds")
    found = leaderboard.reference_checkpoint("VAE", 1)
    if found and found[0] == "beta_vae-12000steps-seed13-beta1":   # chosen over a 600-step VAE of seed 0
        assert leaderboard.provenance("VAE", 1, seed=5) == (13, "the β-VAE row's seed")
        # ID-GAN is scored through the β-VAE row's code: its seed and choice are that row's
        assert leaderboard.provenance("ID-GAN (β-VAE code)", 1, seed=5) == (seed, chosen)
    # shipped checkpoints of two seeds compete on MIG: the row says so; one seed: not selected
    manifest, shipped_dir = ck.read_manifest(), ck.checkpoint_dir()
    entries = {k: e for k, e in manifest["checkpoints"].items() if e["recipe"]["name"] == "beta_tcvae"}
    if len(entries) < 2:
        pytest.skip("needs two shipped beta_tcvae checkpoints")
    (a, ea), (b, eb) = sorted(entries.items(), key=lambda kv: kv[1]["recipe"]["steps"])
    folder = tmp_path / "ck"
    folder.mkdir()
    for key in (a, b):
        shutil.copy(shipped_dir / entries[key]["file"], folder)
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(folder))
    same_seed = {a: dict(ea, recipe=dict(ea["recipe"], seed=4)), b: dict(eb, recipe=dict(eb["recipe"], seed=4))}
    (folder / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": same_seed}))
    assert leaderboard.provenance("β-TCVAE", 1, seed=0) == (4, leaderboard.NOT_SELECTED)
    # two seeds on two budgets: a choice between budgets, not between seeds
    two_budgets = {a: dict(ea, recipe=dict(ea["recipe"], seed=4), metrics=dict(ea["metrics"], mig=0.9)),
                   b: dict(eb, recipe=dict(eb["recipe"], seed=7), metrics=dict(eb["metrics"], mig=0.1))}
    (folder / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": two_budgets}))
    assert leaderboard.provenance("β-TCVAE", 1, seed=0) == (4, leaderboard.NOT_SELECTED)
    assert "best MIG of 2 shipped" in leaderboard.reference_checkpoint("β-TCVAE", 1)[2]
    # two seeds on one budget compete on MIG
    n_a = ea["recipe"]["steps"]
    two_seeds = {a: dict(ea, recipe=dict(ea["recipe"], seed=4), metrics=dict(ea["metrics"], mig=0.9)),
                 b: dict(eb, recipe=dict(eb["recipe"], seed=7, steps=n_a), metrics=dict(eb["metrics"], mig=0.1))}
    (folder / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": two_seeds}))
    assert leaderboard.provenance("β-TCVAE", 1, seed=0) == (4, "best MIG of 2 seeds")
    assert "seed 4: the best MIG of the shipped seeds 4, 7" in leaderboard.reference_checkpoint("β-TCVAE", 1)[2]
    # a hand choice not by MIG names the row only while its seed is shipped alone; with more seeds
    # the row is the best MIG of them, and the hand choice stays in the long text
    monkeypatch.setitem(leaderboard.SEED_CHOICE, a, ("least turned of 3 seeds", "seed 4: the least turned"))
    assert leaderboard.provenance("β-TCVAE", 1, seed=0) == (4, "best MIG of 2 seeds")
    assert "(why it was trained: the least turned)" in leaderboard.reference_checkpoint("β-TCVAE", 1)[2]
    only = {a: dict(ea, recipe=dict(ea["recipe"], seed=4))}
    (folder / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": only}))
    assert leaderboard.provenance("β-TCVAE", 1, seed=0) == (4, "least turned of 3 seeds")
    # a choice by MIG among more seeds than are shipped keeps its label
    monkeypatch.setitem(leaderboard.SEED_CHOICE, a, ("best MIG of 20 seeds", "seed 4: the best of 20"))
    (folder / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": two_seeds}))
    assert leaderboard.provenance("β-TCVAE", 1, seed=0) == (4, "best MIG of 20 seeds")
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.provenance("nope", 1, seed=0)


def test_printed_rows_shorten_the_source_and_keep_the_rest():
    long = ("shipped (12000 steps, beta=8; seed 13: the best MIG of seeds 0-19 at 2,000 steps, chosen with "
            "the true factors (notebook 03), then trained on; best MIG of 4 shipped)")
    assert leaderboard.short_source(long) == "shipped (12000 steps, beta=8)"
    assert leaderboard.short_source("cached") == "cached"
    assert leaderboard.short_source("x" * 100, width=10) == "x" * 9 + "…"
    row = leaderboard.table_row("β-VAE", 12000, long, {"MIG": 0.2}, seed=13, chosen="best MIG of 20 seeds")
    printed = leaderboard.printed_rows([row])[0]
    assert printed["source"] == "shipped (12000 steps, beta=8)" and row["source"] == long   # a copy
    assert {k: v for k, v in printed.items() if k != "source"} == {k: v for k, v in row.items() if k != "source"}


def test_html_table_has_the_markdown_tables_cells_escaped():
    """The sortable table's HTML: one header row and one row per model, the same formatted
    cells as the Markdown table, in the rows' order, with markup in a cell escaped."""
    import html.parser

    rows = [leaderboard.table_row("VAE <β=1>", 7, "cached", {"MIG": 0.1, "recon": 50.0}, seed=0, chosen="a <b>"),
            leaderboard.table_row("AE", 9, "trained", {"MIG": 0.02}, seed=1, chosen="c")]

    class Cells(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.tags = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "tr":
                self.rows.append([])

        def handle_data(self, data):
            if self.tags and self.tags[-1] in ("td", "th"):
                self.rows[-1].append(data)

        def handle_endtag(self, tag):
            self.tags.pop()

    parser = Cells()
    parser.feed(leaderboard.html_table(rows))
    md_cells = [[c.strip() for c in line.strip("|").split(" | ")]
                for line in leaderboard.markdown_table(rows).splitlines() if not line.startswith("|---")]
    assert parser.rows == md_cells and len(parser.rows) == 3
    assert parser.rows[1][:5] == ["VAE <β=1>", "7", "0", "a <b>", "cached"] and parser.rows[2][6] == "0.020"
    assert "<β=1>" not in leaderboard.html_table(rows) and leaderboard.html_table([]) == ""


def test_id_gan_row_is_its_beta_vae_row_whatever_the_generator_learned():
    """ID-GAN is scored through its frozen β-VAE's code, so scoring the ID-GAN model itself gives
    the β-VAE's numbers; `inherited_scores` copies them instead of training the generator."""
    ds = DSprites()
    classes = ds.sample_classes(300, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    vae = build_model("beta_vae", num_latents=10).eval()
    idgan = leaderboard.build_entry("ID-GAN (β-VAE code)", steps=5, vae=vae).eval()
    with torch.no_grad():  # a generator that has learned something else than at its start
        for p in idgan.generator.parameters():
            p.add_(torch.randn_like(p))
    by_vae = leaderboard.evaluate(vae, ds, classes, n_votes=8, seed=3)
    by_idgan = leaderboard.evaluate(idgan, ds, classes, n_votes=8, seed=3)
    copied = leaderboard.inherited_scores("ID-GAN (β-VAE code)", {"β-VAE": by_vae})
    assert set(copied) == set(by_idgan) == set(leaderboard.METRIC_COLUMNS) | {leaderboard.ACTIVE_DIMS}
    for column in (*leaderboard.METRIC_COLUMNS, leaderboard.ACTIVE_DIMS):
        if column == "recon":
            assert math.isnan(copied[column]) and math.isnan(by_idgan[column]) and not math.isnan(by_vae[column])
        else:
            assert copied[column] == by_idgan[column] == by_vae[column], column
    # nothing to inherit: the base row is not scored yet, or the entry has its own code
    assert leaderboard.inherited_scores("ID-GAN (β-VAE code)", {}) is None
    assert leaderboard.inherited_scores("β-VAE", {"β-VAE": by_vae}) is None
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.inherited_scores("nope", {})


def test_quick_leaves_out_only_slow_entries_without_a_shipped_checkpoint(tmp_path, monkeypatch):
    from course_lib import checkpoints as ck

    names, left_out = leaderboard.default_names("full", 200)
    assert names == list(leaderboard.ENTRIES) and left_out == {}
    assert leaderboard.default_names("smoke", 2) == (list(leaderboard.ENTRIES), {})
    # with no checkpoint shipped at all, quick leaves out exactly the slow entries
    empty = tmp_path / "none"
    empty.mkdir()
    manifest = ck.read_manifest()
    (empty / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": {}}))
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(empty))
    slow = [n for n, e in leaderboard.ENTRIES.items() if e.get("slow")]
    assert {"VAE-GAN", "InfoGAN (Q)"} <= set(slow)
    names, left_out = leaderboard.default_names("quick", 200)
    assert list(left_out) == slow and names == [n for n in leaderboard.ENTRIES if n not in slow]
    assert all("name it in MODELS" in why for why in left_out.values())
    # a shipped checkpoint of a slow entry's recipe puts it back
    vaegan = [(k, e) for k, e in manifest["checkpoints"].items() if e["recipe"]["name"] == "beta_vae"][0]
    fake = dict(vaegan[1], recipe=dict(vaegan[1]["recipe"], name="vae_gan", steps=1000))
    (empty / ck.MANIFEST).write_text(json.dumps({"format": manifest["format"], "checkpoints": {"fake": fake}}))
    names, left_out = leaderboard.default_names("quick", 200)
    assert "VAE-GAN" in names and "VAE-GAN" not in left_out
    # ... but only when it has at least the budget asked for
    assert "VAE-GAN" in leaderboard.default_names("quick", 2000)[1]
    with pytest.raises(ValueError, match="unknown profile"):
        leaderboard.default_names("fast", 200)


def test_seed_groups_gather_shipped_recipes_that_differ_only_in_their_seed(tmp_path, monkeypatch):
    def entry(name, seed, mig, steps=100, **config):
        return {"recipe": {"name": name, "model": name, "data": "dsprites", "steps": steps, "batch_size": 64,
                           "lr": 1e-4, "seed": seed, "config": {"num_latents": 10, **config}},
                "metrics": {"mig": mig} if mig is not None else {},
                "file": f"{name}-{seed}.pt", "sha256": "0" * 64, "bytes": 1, "trained_on": {}}

    checkpoints = {"a-100steps-seed0": entry("a", 0, 0.1), "a-100steps-seed3": entry("a", 3, 0.3),
                   "a-100steps-seed1": entry("a", 1, 0.2),
                   "a-200steps-seed5": entry("a", 5, 0.9, steps=200),            # another budget: alone
                   "a-100steps-seed7-beta2": entry("a", 7, 0.5, beta=2.0),       # another setting: alone
                   "b-100steps-seed0": entry("b", 0, 0.4), "b-100steps-seed1": entry("b", 1, None)}  # unscored
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "course_lib.checkpoints/1",
                                                        "checkpoints": checkpoints}))
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path))
    assert leaderboard.seed_groups() == {"a-100steps-seed*": [(0, 0.1), (1, 0.2), (3, 0.3)]}
    assert set(leaderboard.seed_groups(min_seeds=1)) == {"a-100steps-seed*", "a-200steps-seed*",
                                                          "a-100steps-seed*-beta2", "b-100steps-seed*"}
