"""The leaderboard: every entry builds and is scored through the right code; tables sort and write."""

import json
import math

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
    # ID-GAN is scored through its β-VAE's code
    idgan = leaderboard.build_entry("ID-GAN (β-VAE code)", steps=5, vae=vae)
    assert leaderboard.encoder_of(idgan) is vae
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.build_entry("nope", steps=5)
    with pytest.raises(ValueError, match="step-1"):
        leaderboard.build_entry("ID-GAN (β-VAE code)", steps=5)


def test_evaluate_columns_and_recon_only_where_it_applies():
    ds = DSprites()
    classes = ds.sample_classes(200, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    vae = build_model("vae", num_latents=4).eval()
    row = leaderboard.evaluate(vae, ds, classes, n_votes=4)
    assert set(row) == set(leaderboard.METRIC_COLUMNS)
    x = ds.images(classes)
    with torch.no_grad():
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            vae.decode(vae.encode(x)[0]), x, reduction="sum") / len(x)
    assert row["recon"] == pytest.approx(float(expected), rel=1e-5)
    gan = leaderboard.build_entry("InfoGAN (Q)", steps=5).eval()
    assert math.isnan(leaderboard.evaluate(gan, ds, classes, scores=False)["recon"])


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


def test_get_model_prefers_shipped_then_cache(tmp_path, monkeypatch):
    from course_lib.checkpoints import MissingCheckpointsWarning, read_manifest

    ds = DSprites()
    kw = dict(batch_size=4, lr=1e-3, seed=0, device="cpu", cache_dir=tmp_path, profile="smoke")
    shipped = [e["recipe"]["steps"] for e in read_manifest()["checkpoints"].values()
               if e["recipe"]["name"] == "beta_tcvae"]
    if shipped:  # the repository ships a β-TCVAE: it is used when it has at least the budget
        model, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
        assert source == f"shipped ({max(shipped)} steps)" and model.model_name == "beta_tcvae"
    longest_bvae = max(((e["recipe"]["steps"], e["recipe"]["config"]) for e in read_manifest()["checkpoints"].values()
                        if e["recipe"]["name"] == "beta_vae"), default=None, key=lambda t: t[0])
    if longest_bvae:  # a shipped recipe with another β than the entry's says so
        _, source = leaderboard.get_model("β-VAE", ds.sampler(), steps=1, **kw)
        steps, config = longest_bvae
        beta_note = "" if config["beta"] == leaderboard.ENTRIES["β-VAE"]["config"]["beta"] else f", beta={config['beta']:g}"
        assert source == f"shipped ({steps} steps{beta_note})"
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.warns(MissingCheckpointsWarning, match="COURSE_CHECKPOINTS"):
        model, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
    assert source.startswith("trained 1 steps")
    with pytest.warns(MissingCheckpointsWarning):
        _, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
    assert source == "cached"


def test_table_rows_show_the_training_budget(tmp_path, monkeypatch):
    """Every row says how many steps its model was trained for, next to its scores: the shipped
    checkpoint's steps when get_model uses one, else the budget asked for."""
    from course_lib.checkpoints import read_manifest

    ds = DSprites()
    kw = dict(batch_size=4, lr=1e-3, seed=0, device="cpu", cache_dir=tmp_path, profile="smoke")
    shipped = [e["recipe"]["steps"] for e in read_manifest()["checkpoints"].values()
               if e["recipe"]["name"] == "beta_tcvae"]
    if shipped:
        _, source = leaderboard.get_model("β-TCVAE", ds.sampler(), steps=1, **kw)
        assert leaderboard.training_steps("β-TCVAE", 1) == max(shipped)
        assert source.startswith(f"shipped ({max(shipped)} steps")
        # a budget above every shipped checkpoint: trained here, on that budget
        assert leaderboard.training_steps("β-TCVAE", max(shipped) + 1) == max(shipped) + 1
    assert leaderboard.training_steps("β-TCVAE", 1, use_shipped=False) == 1
    assert leaderboard.training_steps("VAE", 7) == 7  # no shipped recipe
    with pytest.raises(ValueError, match="unknown leaderboard entry"):
        leaderboard.training_steps("nope", 5)

    row = leaderboard.table_row("VAE", 7, "cached", {"MIG": 0.1, "recon": 50.0})
    assert tuple(row) == leaderboard.TABLE_COLUMNS
    assert row["steps"] == 7 and row["MIG"] == 0.1 and math.isnan(row["SAP"])
    header = leaderboard.markdown_table([row]).splitlines()[0]
    assert header.startswith("| model | steps | source | recon | MIG |")
    assert "| VAE | 7 | cached |" in leaderboard.markdown_table([row])
