"""Shipped checkpoints: pretrain writes float16 files with a manifest; load_or_train loads them
only for the exact recipe, verifies sha256, and trains otherwise."""

import json

import numpy as np
import pytest
import torch

from course_lib import checkpoints as ck
from course_lib.cli import pretrain
from course_lib.models import BetaVAE
from course_lib.train import load_model

TINY = {"steps": 2, "batch_size": 4}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    entry = pretrain.pretrain_one("beta_vae", profile="smoke", metric_images=200, folder=folder,
                                  device="cpu", progress=False, log=lambda *a: None, **TINY)
    return folder, entry


def test_recipes_are_explicit_and_overridable():
    r = ck.recipe("beta_vae", "quick")  # notebook 03's quick profile
    assert r["steps"] == 2_000 and r["batch_size"] == 64 and r["seed"] == 0 and r["lr"] == 1e-3
    assert r["config"]["beta"] == 8.0 and r["config"]["num_latents"] == 10
    assert r["config"]["recon"] == "bernoulli"  # defaults made explicit
    r2 = ck.recipe("beta_vae", "quick", beta=16, seed=3)
    assert r2["config"]["beta"] == 16.0 and r2["seed"] == 3 and r2["steps"] == 2_000
    full = ck.recipe("beta_vae", "full")
    assert full["steps"] == 300_000 and full["lr"] == 1e-4
    cap = ck.recipe("capacity_vae", "quick")
    assert cap["config"]["c_steps"] == 4_000 and cap["steps"] == 5_000 and cap["config"]["gamma"] == 30.0
    assert ck.recipe("capacity_vae", "full")["config"]["gamma"] == 1000.0  # the seed's γ
    with pytest.raises(ValueError, match="unknown reference model"):
        ck.recipe("nope")
    with pytest.raises(ValueError, match="overrides"):
        ck.recipe("beta_vae", "smoke", not_a_keyword=1)


def test_manifest_records_recipe_metrics_and_sha256(shipped):
    folder, entry = shipped
    manifest = json.loads((folder / "manifest.json").read_text())
    assert list(manifest["checkpoints"]) == ["beta_vae-2steps-seed0-batch_size4"]
    recorded = manifest["checkpoints"]["beta_vae-2steps-seed0-batch_size4"]
    assert recorded == entry
    assert recorded["recipe"] == ck.recipe("beta_vae", "smoke", **TINY)
    path = folder / recorded["file"]
    assert recorded["sha256"] == ck.sha256(path) and recorded["bytes"] == path.stat().st_size
    assert recorded["bytes"] < 2_000_000
    assert 0 <= recorded["metrics"]["mig"] <= 1 and recorded["metrics"]["metric_images"] == 200
    # the recorded MIG, recomputed outside pretrain: the shipped weights' posterior means of the
    # recorded number of images drawn with the recorded seed, against those images' own factors
    from course_lib.data import DSprites
    from course_lib.metrics import mig

    ds = DSprites()
    classes = ds.sample_classes(200, torch.Generator().manual_seed(recorded["metrics"]["metric_seed"]))
    model = ck.load_shipped(ck.entry_key(recorded["recipe"]), folder=folder).float().eval()
    with torch.no_grad():
        codes = model.encode(ds.images(classes))[0]
    assert recorded["metrics"]["mig"] == pytest.approx(mig(codes, classes.numpy()).score, abs=1e-4)
    assert recorded["trained_on"]["torch"] == torch.__version__
    assert recorded["trained_on"]["device_type"] in ("cpu", "cuda", "mps")


def test_float16_round_trip(shipped):
    folder, entry = shipped
    state = torch.load(folder / entry["file"], weights_only=True)
    assert all(v.dtype == torch.float16 for v in state["model_state"].values()
               if v.is_floating_point())
    model = load_model(folder / entry["file"], device="cpu")
    assert isinstance(model, BetaVAE)
    assert next(model.parameters()).dtype == torch.float32
    # the same weights as a retrain of the recipe, rounded to float16
    again = ck.train_recipe(ck.recipe("beta_vae", "smoke", **TINY), device="cpu", progress=False).model
    for (name, p), q in zip(again.named_parameters(), model.parameters()):
        assert torch.equal(p.detach().half().float(), q.detach()), name
        assert (p.detach() - q.detach()).abs().max() <= 1e-3 * p.detach().abs().max() + 1e-7


def test_load_or_train_uses_the_shipped_model_only_for_its_recipe(shipped):
    folder, entry = shipped
    got = ck.load_or_train("beta_vae", profile="smoke", folder=folder, device="cpu", progress=False,
                           **TINY)
    assert got.extra["source"] == "shipped" and got.extra["metrics"] == entry["metrics"]
    reference = load_model(folder / entry["file"], device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(got.model.parameters(), reference.parameters()))
    other = ck.load_or_train("beta_vae", profile="smoke", folder=folder, device="cpu", progress=False,
                             steps=1, batch_size=4, beta=2.0)
    assert other.extra["source"] == "trained" and other.model.beta == 2.0
    assert not other.extra["loaded"]   # trained here: the tests' runs folder starts empty
    assert other.extra["recipe"]["steps"] == 1


def test_a_changed_file_is_refused(shipped, tmp_path):
    folder, entry = shipped
    copy = tmp_path / "ck"
    copy.mkdir()
    (copy / "manifest.json").write_text((folder / "manifest.json").read_text())
    data = bytearray((folder / entry["file"]).read_bytes())
    data[-100] ^= 0xFF
    (copy / entry["file"]).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        ck.load_or_train("beta_vae", profile="smoke", folder=copy, progress=False, **TINY)
    (copy / entry["file"]).unlink()
    with pytest.raises(FileNotFoundError, match="pretrain beta_vae"):
        ck.verify("beta_vae-2steps-seed0-batch_size4", copy)
    with pytest.raises(FileNotFoundError, match="no shipped"):
        ck.verify("beta_tcvae-2steps-seed0", copy)


def test_shipped_checkpoints_of_the_repository_verify():
    """Every file that the repository ships matches its manifest and stays small (float16
    weights: about 1 MB for a Burgess VAE, 3.4 MB for the 32×32 InfoGAN, at most 4 MB each;
    32 MB in all: room for the long-trained GANs of notebook 07 and the capacity runs beside the
    other VAE references, small enough for a pip install on Colab)."""
    manifest = ck.read_manifest()["checkpoints"]
    for key, entry in manifest.items():
        path = ck.verify(key)
        assert key == ck.entry_key(entry["recipe"]) and path.name == f"{key}.pt"
        assert entry["bytes"] == path.stat().st_size < 4_000_000
        step1 = {"step1": entry["recipe"]["step1"]} if "step1" in entry["recipe"] else {}
        assert entry["recipe"] == ck.recipe(entry["recipe"]["name"], None, **{
            k: entry["recipe"][k] for k in ck.TRAIN_KEYS}, **entry["recipe"]["config"], **step1)
    assert sum(entry["bytes"] for entry in manifest.values()) < 32_000_000


def test_recipe_data_can_hold_out_a_class_range():
    r = ck.recipe("heldout_beta_vae", "quick")  # notebook 07's step 1
    assert r["data"] == "dsprites:posX<16" and r["config"]["num_latents"] == 3 and r["config"]["beta"] == 0.5
    assert ck.data_ranges(r["data"]) == {"posX": (0, 16)} and ck.data_ranges("dsprites") is None
    assert ck.recipe("heldout_beta_vae", "quick", data="dsprites:posX<5")["data"] == "dsprites:posX<5"
    sampler = ck.make_data("dsprites:posX<5", "cpu")
    _, classes = sampler.sample_with_classes(500, torch.Generator().manual_seed(0))
    assert int(classes[:, 4].max()) < 5 and int(classes[:, 4].min()) == 0
    for bad in ("dsprites:posZ<4", "dsprites:posX<40", "dsprites:posX<x", "mnist"):
        with pytest.raises(ValueError, match="data"):
            ck.recipe("heldout_beta_vae", "quick", data=bad)



# -- long runs: --resume ------------------------------------------------------------------
def _quiet(**kwargs):
    return dict(profile="smoke", metric_images=100, device="cpu", progress=False, log=lambda *a: None,
                **kwargs)


def test_an_interrupted_and_resumed_run_ships_the_same_model(tmp_path):
    overrides = dict(steps=9, batch_size=4, beta=2.0)
    straight = pretrain.pretrain_one("beta_vae", folder=tmp_path / "a", checkpoint_every=2,
                                     **_quiet(**overrides))
    assert straight["trained_on"]["resumptions"] == 0
    b = tmp_path / "b"
    assert pretrain.pretrain_one("beta_vae", folder=b, checkpoint_every=2, stop_at=5,
                                 **_quiet(**overrides)) is None
    unfinished = pretrain.run_path(ck.recipe("beta_vae", "smoke", **overrides), b)
    assert unfinished.exists() and torch.load(unfinished, weights_only=True)["step"] == 5
    with pytest.raises(ValueError, match="unfinished run.*--resume"):
        pretrain.pretrain_one("beta_vae", folder=b, **_quiet(**overrides))
    resumed = pretrain.pretrain_one("beta_vae", folder=b, resume=True, checkpoint_every=2,
                                    **_quiet(**overrides))
    assert not unfinished.exists()  # shipped: the resumable state is removed
    a_state = torch.load(tmp_path / "a" / straight["file"], weights_only=True)
    b_state = torch.load(b / resumed["file"], weights_only=True)
    assert resumed["file"] == straight["file"]
    assert all(torch.equal(a_state["model_state"][k], v) for k, v in b_state["model_state"].items())
    assert a_state["history"] == b_state["history"]
    assert resumed["metrics"] == straight["metrics"]
    run = resumed["trained_on"]
    assert run["total_steps"] == 9 and run["resumptions"] == 1 and len(run["machines"]) == 1
    assert [(s["from_step"], s["to_step"]) for s in run["segments"]] == [(0, 5), (5, 9)]
    assert run["seconds"] == pytest.approx(sum(s["seconds"] for s in run["segments"]))


def test_a_kept_run_extended_to_more_steps_equals_the_longer_run(tmp_path):
    """--keep-state keeps a finished run's full state; --extend-from continues it to more steps,
    and the result is the uninterrupted longer run: its weights, and, since both runs log at the
    same interval here (the extension keeps the shorter run's, recorded in trained_on), its
    history and metrics."""
    kw = dict(batch_size=4, beta=2.0)
    straight = pretrain.pretrain_one("beta_vae", folder=tmp_path / "a", log_every=1, **_quiet(steps=9, **kw))
    b = tmp_path / "b"
    short = pretrain.pretrain_one("beta_vae", folder=b, log_every=1, keep_state=True, **_quiet(steps=5, **kw))
    kept = pretrain.kept_path(ck.recipe("beta_vae", "smoke", steps=5, **kw), b)
    assert kept.exists() and torch.load(kept, weights_only=True)["step"] == 5
    assert (b / short["file"]).exists()  # the 5-step model ships as usual
    with pytest.raises(FileNotFoundError, match="--keep-state"):
        pretrain.pretrain_one("beta_vae", folder=b, extend_from=4, **_quiet(steps=9, **kw))
    with pytest.raises(ValueError, match="between 0 and"):
        pretrain.pretrain_one("beta_vae", folder=b, extend_from=9, **_quiet(steps=9, **kw))
    longer = pretrain.pretrain_one("beta_vae", folder=b, extend_from=5, **_quiet(steps=9, **kw))
    assert kept.exists()  # kept, to be extended again to another length
    assert not pretrain.run_path(ck.recipe("beta_vae", "smoke", steps=9, **kw), b).exists()
    a_state = torch.load(tmp_path / "a" / straight["file"], weights_only=True)
    b_state = torch.load(b / longer["file"], weights_only=True)
    assert longer["file"] == straight["file"]
    assert all(torch.equal(a_state["model_state"][k], v) for k, v in b_state["model_state"].items())
    assert a_state["history"] == b_state["history"] and longer["metrics"] == straight["metrics"]
    run = longer["trained_on"]
    assert [(s["from_step"], s["to_step"]) for s in run["segments"]] == [(0, 5), (5, 9)]
    assert run["total_steps"] == 9 and run["resumptions"] == 1 and run["log_every"] == 1


def test_the_guards_that_keep_saved_runs_safe(tmp_path):
    """--extend-from never overwrites a half-finished longer run, a resume with another
    --log-every is refused before it trains, and a kept state that is not at the end of its run
    is not taken for a finished one."""
    import shutil

    kw = dict(batch_size=4, beta=2.0)
    b = tmp_path / "b"
    pretrain.pretrain_one("beta_vae", folder=b, log_every=1, keep_state=True, **_quiet(steps=5, **kw))
    assert pretrain.pretrain_one("beta_vae", folder=b, log_every=1, stop_at=7, **_quiet(steps=9, **kw)) is None
    unfinished = pretrain.run_path(ck.recipe("beta_vae", "smoke", steps=9, **kw), b)
    before = unfinished.read_bytes()
    with pytest.raises(ValueError, match="already saved.*--resume instead of --extend-from"):
        pretrain.pretrain_one("beta_vae", folder=b, extend_from=5, **_quiet(steps=9, **kw))
    assert unfinished.read_bytes() == before   # the half-finished 9-step run is untouched
    with pytest.raises(ValueError, match="logs every 1 steps, not 2"):
        pretrain.pretrain_one("beta_vae", folder=b, resume=True, log_every=2, **_quiet(steps=9, **kw))
    assert unfinished.read_bytes() == before
    c = tmp_path / "c"
    posing = pretrain.kept_path(ck.recipe("beta_vae", "smoke", steps=8, **kw), c)
    posing.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(unfinished, posing)   # the 9-step run's state at step 7, posing as a finished 8-step run
    with pytest.raises(ValueError, match="at step 7, not at the end of its 8-step run"):
        pretrain.pretrain_one("beta_vae", folder=c, extend_from=8, **_quiet(steps=9, **kw))
    assert not pretrain.run_path(ck.recipe("beta_vae", "smoke", steps=9, **kw), c).exists()


@pytest.mark.parametrize("argv, message", [
    (["--extend-from", "5"], "needs --steps larger than it"),
    (["--extend-from", "5", "--steps", "5"], "needs --steps larger than it"),
    (["--extend-from", "5", "--steps", "9", "--resume"], "use --resume without --extend-from"),
])
def test_extend_from_needs_a_longer_run_and_no_resume(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        pretrain.main(["beta_vae", "--profile", "smoke", "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_two_recipes_of_one_name_never_share_a_file():
    abs_, hinge = (ck.recipe("capacity_vae", "full", steps=120_000, penalty=p) for p in ("abs", "hinge"))
    keys = {ck.entry_key(abs_), ck.entry_key(hinge)}
    assert keys == {"capacity_vae-120000steps-seed0-full", "capacity_vae-120000steps-seed0-full-penalty_hinge"}
    quick_like = ck.recipe("capacity_vae", "full", steps=5_000)  # the quick model's step count
    assert ck.entry_key(quick_like) != ck.entry_key(ck.recipe("capacity_vae", "quick"))
    assert ck.entry_key(ck.recipe("beta_vae", "quick", seed=13, steps=12_000)) == "beta_vae-12000steps-seed13"
    assert ck.entry_key(ck.recipe("beta_vae", "quick", beta=4)) == "beta_vae-2000steps-seed0-beta4"


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps: expected a positive integer"),
    (["--steps", "1.5"], "--steps: expected a positive integer"),
    (["--metric-images", "-1"], "--metric-images: expected an integer >= 0"),
    (["--minutes", "0"], "--minutes: expected a positive number"),
    (["-p", "nope", "1"], "cannot build beta_vae"),
    (["--device", "nope"], "unknown device"),
])
def test_pretrain_refuses_bad_options_before_training(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        pretrain.main(["beta_vae", "--profile", "smoke", "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing was trained or written


def test_pretrain_refuses_an_out_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(SystemExit):
        pretrain.main(["beta_vae", "--profile", "smoke", "--out", str(afile)])
    assert "is a file" in capsys.readouterr().err


def test_resuming_without_progress_adds_no_segment(tmp_path):
    overrides = dict(steps=9, batch_size=4, beta=2.0)
    kw = _quiet(**overrides)
    assert pretrain.pretrain_one("beta_vae", folder=tmp_path, stop_at=4, **kw) is None
    path = pretrain.run_path(ck.recipe("beta_vae", "smoke", **overrides), tmp_path)
    before = torch.load(path, weights_only=True)
    assert pretrain.pretrain_one("beta_vae", folder=tmp_path, resume=True, stop_at=4, **kw) is None
    after = torch.load(path, weights_only=True)
    assert after["extra"]["segments"] == before["extra"]["segments"] and after["step"] == 4


def test_the_digits_recipe_trains_on_the_digits_and_is_scored_by_matched_accuracy():
    from course_lib.data.mnist import load_mnist

    images = ck.make_data(ck.DIGITS)
    expected = load_mnist(source="digits", verbose=False).images
    assert images.shape == expected.shape and torch.equal(images, expected)
    assert ck.recipe("infogan_digits", "quick")["config"]["noise_dim"] == 8

    class Relabel(torch.nn.Module):
        """Predicts category (label + 3) mod 10: matched accuracy 1 on both splits."""
        def predict_codes(self, x):
            labels = {len(d.images): d.labels for d in (load_mnist(source="digits", verbose=False),
                                                         load_mnist(train=False, source="digits", verbose=False))}
            return ((labels[len(x)] + 3) % 10)[:, None], None

    scores = pretrain.score_digits(Relabel())
    assert scores == {"matched_accuracy_train": 1.0, "matched_accuracy_test": 1.0}


def test_factor_vae_ships_without_its_discriminator(tmp_path):
    """The discriminator is needed only to train: the shipped file leaves it out (the 6×1000
    discriminator would be 10 MB in float16), the loaded model encodes and decodes with the
    trained weights and names the discriminator as untrained."""
    small = dict(TINY, disc_hidden=16, disc_layers=2)
    entry = pretrain.pretrain_one("factor_vae", profile="smoke", metric_images=200, folder=tmp_path,
                                  device="cpu", progress=False, log=lambda *a: None, **small)
    assert entry["omitted"] == ["discriminator"]
    state = torch.load(tmp_path / entry["file"], weights_only=True)
    assert state["omitted"] == ["discriminator"]
    assert not any(k.startswith("discriminator.") for k in state["model_state"])
    assert any(k.startswith("encoder.") for k in state["model_state"])
    model = load_model(tmp_path / entry["file"], device="cpu")
    assert model.untrained_parts == ("discriminator",)
    again = ck.train_recipe(ck.recipe("factor_vae", "smoke", **small), device="cpu",
                            progress=False).model
    for name, p in again.state_dict().items():
        q = model.state_dict()[name]
        if name.startswith("discriminator."):
            continue
        assert torch.equal(p.half().float(), q), name
    got = ck.load_or_train("factor_vae", profile="smoke", folder=tmp_path, device="cpu",
                           progress=False, **small)
    assert got.extra["source"] == "shipped" and got.model.untrained_parts == ("discriminator",)
    # a file that leaves out a part the model needs beyond training is refused
    state["omitted"] = ["encoder"]
    state["model_state"] = {k: v for k, v in state["model_state"].items()
                            if not k.startswith("encoder.")}
    with pytest.raises(ValueError, match="needs beyond training"):
        from course_lib.train import load_into
        load_into(type(model)(**model.config()), state)
    # a file that misses a weight that is not listed as omitted is refused
    state["omitted"] = ["discriminator"]
    with pytest.raises(RuntimeError, match="missing weights"):
        load_into(type(model)(**model.config()), state)


def test_idgan_is_trained_on_its_step1_model_and_scored_with_the_sprite_rulers(tmp_path):
    """ID-GAN's recipe names its step-1 recipe; pretrain builds step 2 on that model's weights
    (G starts as its decoder), ships G and the frozen β-VAE without the discriminator, and
    scores the samples and the β-VAE's decodes with the sprite rulers."""
    r = ck.recipe("idgan", "smoke")
    assert r["step1"] == ck.recipe("heldout_beta_vae", "smoke")
    assert ck.recipe("idgan", "full")["step1"] == ck.recipe("heldout_beta_vae", "quick")
    assert r["config"]["vae"] == {"name": "beta_vae", "config": r["step1"]["config"]}
    step1 = ck.load_or_train("heldout_beta_vae", profile="smoke", device="cpu", progress=False).model
    built = ck.build_from_recipe(r)
    for (name, p), q in zip(built.vae.state_dict().items(), step1.state_dict().values()):
        assert torch.equal(p, q), name
    for name, p in step1.decoder.state_dict().items():  # G = the decoder at step 0 (but the s columns)
        g = built.generator.state_dict()[name]
        assert torch.equal(g if g.shape == p.shape else g[:, built.noise_dim:], p), name
    entry = pretrain.pretrain_one("idgan", profile="smoke", metric_images=64, folder=tmp_path,
                                  device="cpu", progress=False, log=lambda *a: None)
    assert entry["omitted"] == ["discriminator"]
    for who in ("samples", "vae_decodes", "real"):
        m = entry["metrics"]
        assert m[f"{who}_ffd"] >= 0 and 0 <= m[f"{who}_shape_named"] <= 1 and 0 <= m[f"{who}_grey"] <= 1
    assert entry["metrics"]["real_grey"] == 0.0  # dSprites pixels are 0 or 1
    assert entry["metrics"]["real_one_sprite"] == 1.0  # one sprite in every real image
    model = load_model(tmp_path / entry["file"], device="cpu")
    for (name, p), q in zip(model.vae.state_dict().items(), step1.state_dict().values()):
        assert torch.equal(p, q.half().float()), name  # the frozen step 1 ships with step 2


def test_a_record_only_recipe_ships_its_history_and_scores_without_weights(tmp_path):
    """The unrolled InfoGANs of the Q-loss table ship as records: recipe, metrics (the final Q
    losses, the categorical code's accuracy), where they trained and the logged history."""
    entry = pretrain.pretrain_one("unrolled_infogan_digits", profile="smoke", folder=tmp_path,
                                  device="cpu", progress=False, log=lambda *a: None, unroll_steps=2,
                                  log_every=1)
    assert not list(tmp_path.glob("*.pt")) and not (tmp_path / "manifest.json").exists()
    assert not list((tmp_path / pretrain.UNFINISHED).glob("*.pt"))
    rec = ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, unroll_steps=2)
    assert rec["recipe"] == entry["recipe"] and rec["recipe"]["config"]["unroll_steps"] == 2
    again = ck.train_recipe(rec["recipe"], device="cpu", progress=False, log_every=1)
    assert rec["history"]["step"] == [1, 2, 3]
    assert np.allclose(rec["history"].array("q_cat"), again.history.array("q_cat"))
    assert rec["metrics"]["final_q_cat"] == round(float(again.history.last("q_cat")), 5)
    assert 0 <= rec["metrics"]["matched_accuracy_test"] <= 1
    assert rec["trained_on"]["total_steps"] == 3
    assert ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, unroll_steps=3) is None
    assert ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, unroll_steps=2, steps=5) is None
    # a longer run of the same recipe: found with longest=True, and only then
    pretrain.pretrain_one("unrolled_infogan_digits", profile="smoke", folder=tmp_path, device="cpu",
                          progress=False, log=lambda *a: None, unroll_steps=2, log_every=1, steps=5)
    assert ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, unroll_steps=2)["recipe"]["steps"] == 3
    longer = ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, unroll_steps=2, longest=True)
    assert longer["recipe"]["steps"] == 5 and longer["history"]["step"] == [1, 2, 3, 4, 5]
    assert ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, unroll_steps=3, longest=True) is None
    with pytest.raises(ValueError, match="not both"):
        ck.load_record("unrolled_infogan_digits", "smoke", folder=tmp_path, longest=True, steps=5)
    (tmp_path / ck.RECORDS).write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="record file"):
        ck.read_records(tmp_path)


def test_vae_gan_starts_from_the_weights_of_its_step1_vae():
    """VAE-GAN's recipe copies the encoder and decoder of its step-1 VAE (init_from); the long
    recipe names a shipped plain 10-latent VAE (β = 1, seed 13, 12,000 steps) and puts the R1
    penalty on D."""
    full = ck.recipe("vae_gan", "full")
    assert full["step1"] == ck.recipe("beta_vae", "quick", seed=13, steps=12_000, beta=1.0)
    assert ck.find_shipped(full["step1"]) is not None
    assert full["step1_as"] == "init_from" and "vae" not in full["config"] and full["config"]["r1"] == 10.0
    r = ck.recipe("vae_gan", "smoke")
    step1 = ck.load_or_train("beta_vae", profile="smoke", device="cpu", progress=False, seed=0, steps=3,
                             beta=1.0).model
    built = ck.build_from_recipe(r)
    for part in ("encoder", "decoder"):
        for (name, p), q in zip(getattr(built, part).state_dict().items(),
                                getattr(step1, part).state_dict().values()):
            assert torch.equal(p, q), f"{part}.{name}"


def test_vae_continued_starts_from_the_vae_gans_start_and_differs_only_in_objective():
    """The long VAE-GAN's same-budget control: the same step-1 VAE, trained on as a VAE (β = 1)
    for the VAE-GAN's number of steps, its weights copied exactly by VAE.init_from; a VAE of
    another shape is refused with the shapes it expected."""
    control, gan = ck.recipe("vae_continued", "full"), ck.recipe("vae_gan", "full")
    assert control["step1"] == gan["step1"] and control["step1_as"] == "init_from"
    assert control["steps"] == gan["steps"] and control["batch_size"] == gan["batch_size"]
    assert control["config"]["beta"] == 1.0 and control["lr"] == gan["step1"]["lr"]
    step1 = ck.load_or_train("beta_vae", profile="smoke", device="cpu", progress=False, seed=0, steps=3,
                             beta=1.0).model
    built = ck.build_from_recipe(ck.recipe("vae_continued", "smoke"))
    for (name, p), q in zip(built.state_dict().items(), step1.state_dict().values()):
        assert torch.equal(p, q), name
    from course_lib.models import build_model
    with pytest.raises(ValueError, match=r"\(num_latents, channels, arch\) = \(4, 1, 'burgess64'\)"):
        build_model("vae", num_latents=4).init_from(step1)
    with pytest.raises(ValueError, match="mnist32"):
        build_model("vae", num_latents=10).init_from(build_model("vae", num_latents=10, arch="mnist32"))


def test_peek_scores_an_unfinished_run_without_stopping_it(tmp_path, capsys):
    """--peek reads the last saved state of a long run and prints its metrics; the run then
    continues untouched."""
    assert pretrain.peek("beta_vae", profile="smoke", folder=tmp_path, **TINY) is None
    pretrain.pretrain_one("beta_vae", profile="smoke", metric_images=0, folder=tmp_path, device="cpu",
                          progress=False, log=lambda *a: None, stop_at=1, checkpoint_every=1, **TINY)
    path = pretrain.run_path(ck.recipe("beta_vae", "smoke", **TINY), tmp_path)
    before = path.read_bytes()
    found = pretrain.peek("beta_vae", profile="smoke", metric_images=200, folder=tmp_path, **TINY)
    assert found["step"] == 1 and 0 <= found["mig"] <= 1 and found["metric_images"] == 200
    assert path.read_bytes() == before
    assert pretrain.main(["beta_vae", "--profile", "smoke", "--steps", "2", "-p", "batch_size", "4",
                          "--out", str(tmp_path), "--peek", "--metric-images", "100"]) == 0
    out = capsys.readouterr().out
    assert "beta_vae: step 1, mig" in out and "metric_images 100" in out


def test_the_exit_status_says_whether_the_run_finished(tmp_path, capsys):
    """3 when a run stops before its last step (saved, resumable), 0 when it ships."""
    argv = ["beta_vae", "--profile", "smoke", "--steps", "3", "-p", "batch_size", "4", "--out", str(tmp_path),
            "--no-progress", "--metric-images", "0"]
    assert pretrain.main([*argv, "--stop-at", "1"]) == pretrain.EXIT_STOPPED == 3
    assert pretrain.run_path(ck.recipe("beta_vae", "smoke", steps=3, batch_size=4), tmp_path).exists()
    assert pretrain.main([*argv, "--resume"]) == 0
    key = ck.entry_key(ck.recipe("beta_vae", "smoke", steps=3, batch_size=4))
    assert key in ck.read_manifest(tmp_path)["checkpoints"]


def test_peek_uses_3000_images_unless_told(tmp_path, monkeypatch):
    """--peek scores 3,000 images by default, and exactly --metric-images when given (10,000
    included)."""
    asked = []
    monkeypatch.setattr(pretrain, "peek", lambda name, metric_images, **kw: asked.append(metric_images))
    for extra, expected in (([], 3_000), (["--metric-images", "10000"], 10_000), (["--metric-images", "0"], 0)):
        assert pretrain.main(["beta_vae", "--profile", "smoke", "--out", str(tmp_path), "--peek", *extra]) == 0
        assert asked.pop() == expected


def test_describe_entry_names_steps_hours_segments_and_mig_per_factor():
    """`pretrain --list` says how long a shipped model trained, where, and what it scores."""
    entry = {"recipe": {"steps": 500}, "bytes": 1234, "dtype": "float16",
             "metrics": {"mig": 0.25, "mig_per_factor": [None, 0.1, 0.2, 0.0, 0.5, 0.45], "metric_seed": 1,
                         "metric_images": 10000},
             "trained_on": {"total_steps": 120000, "hours": 7.5, "resumptions": 3,
                            "machines": [{"device": "cpu A"}, {"device": "cpu A"}]}}
    line = pretrain.describe_entry("m-key", entry)
    assert line.startswith("shipped m-key: 1,234 bytes (float16), 120,000 steps, 7.50 h in 4 segments on cpu A;")
    assert "MIG 0.250 (shape 0.10, scale 0.20, orientation 0.00, posX 0.50, posY 0.45)" in line
    assert "metric_images 10000" in line and "metric_seed" not in line
    bare = pretrain.describe_entry("old", {"recipe": {"steps": 300}, "bytes": 10, "metrics": {},
                                           "trained_on": {"device": "cpu B"}})
    assert "300 steps, wall time not recorded on cpu B; no metrics" in bare and "rescored" not in line
    rescored = pretrain.describe_entry("m-key", {**entry, "rescored": "2026-01-02 03:04 UTC"})
    assert rescored.endswith("; metrics rescored 2026-01-02 03:04 UTC")


def test_shipped_table_rows_and_the_readme_copy_is_current(tmp_path):
    """`pretrain --list --markdown` writes one row per shipped model, and the README's table is
    that output for the manifest in the repository (regenerate it when a model ships)."""
    from pathlib import Path

    entry = {"recipe": {"steps": 500, "batch_size": 64, "seed": 3}, "bytes": 1_048_576, "dtype": "float16",
             "metrics": {"mig": 0.25, "mig_per_factor": [None, 0.1, 0.2, 0.0, 0.5, 0.45]},
             "trained_on": {"total_steps": 120000, "hours": 7.5, "resumptions": 3,
                            "machines": [{"device": "cpu A"}]}}
    digits = {"recipe": {"steps": 40, "batch_size": 32, "seed": 0}, "bytes": 2_000_000,
              "metrics": {"matched_accuracy_test": 0.8028, "matched_accuracy_train": 0.8246},
              "trained_on": {"device": "cpu B", "seconds": 90}}
    lines = pretrain.shipped_table({"z-key": entry, "a-digits": digits}).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| model (manifest key) |")
    assert lines[2] == ("| `a-digits` | 40 × 32 | 0 | 2 min on cpu B | 2.0 MB | categorical code ↔ digit, matched "
                        "accuracy 0.803 held out (0.825 on the training images) |")
    assert lines[3] == ("| `z-key` | 120,000 × 64 | 3 | 7.50 h in 4 segments on cpu A | 1.0 MB | MIG 0.250 "
                        "(shape 0.10, scale 0.20, orientation 0.00, posX 0.50, posY 0.45) |")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert pretrain.TABLE_BEGIN in readme and pretrain.TABLE_END in readme
    copy = readme.split(pretrain.TABLE_BEGIN)[1].split(pretrain.TABLE_END)[0].strip()
    shipped = ck.read_manifest(ck.REPOSITORY_CHECKPOINTS)["checkpoints"]
    assert copy == pretrain.shipped_table(shipped), \
        "README's table of shipped models is stale: paste `python -m course_lib pretrain --list --markdown`"
    with pytest.raises(SystemExit):
        pretrain.main(["--markdown", "--out", str(tmp_path)])


def test_refresh_readme_table_rewrites_only_the_table_of_the_repository_folder(tmp_path, monkeypatch):
    """After a model ships into the repository's folder, pretrain rewrites the README's table
    (and nothing else); another folder, or a README without the table, is left alone."""
    from course_lib import config

    folder = tmp_path / "checkpoints"
    recipe = ck.recipe("beta_vae", "smoke")
    ck.write_shipped(BetaVAE(num_latents=2), recipe, metrics={"mig": 0.5}, folder=folder)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{pretrain.TABLE_BEGIN}\nold table\n{pretrain.TABLE_END}\nafter\n",
                      encoding="utf-8")
    assert not pretrain.refresh_readme_table(folder, readme)          # not the repository's folder
    assert "old table" in readme.read_text(encoding="utf-8")
    monkeypatch.setattr(config, "REPOSITORY_CHECKPOINTS", folder)
    assert pretrain.refresh_readme_table(folder, readme)
    text = readme.read_text(encoding="utf-8")
    table = pretrain.shipped_table(ck.read_manifest(folder)["checkpoints"])
    assert text == f"# Title\n\nbefore\n{pretrain.TABLE_BEGIN}\n{table}\n{pretrain.TABLE_END}\nafter\n"
    assert f"`{ck.entry_key(recipe)}`" in table and "MIG 0.500" in table
    assert not pretrain.refresh_readme_table(folder, readme)          # already current: unchanged
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no table here\n", encoding="utf-8")
    assert not pretrain.refresh_readme_table(folder, plain) and plain.read_text() == "no table here\n"


def test_describe_training_counts_the_segments_of_every_machine():
    """The line every notebook prints under a shipped model names each machine with its share of
    the segments, not only the last segment's machine."""
    from course_lib.checkpoints import describe_training

    segment = {"device": "x86_64 CPU (1 threads)", "seconds": 100.0}
    record = {"hours": 8.2, "device": "x86_64 CPU (2 threads)", "resumptions": 4,
              "segments": [segment] * 4 + [{"device": "x86_64 CPU (2 threads)", "seconds": 50.0}]}
    assert describe_training(record) == ("8.20 h in 5 segments: 4 on x86_64 CPU (1 thread), "
                                         "1 on x86_64 CPU (2 threads)")
    assert describe_training({"hours": 1.25, "segments": [segment]}) == "1.25 h in 1 segment on x86_64 CPU (1 thread)"
    assert describe_training({"seconds": 1200.0, "device": "gpu"}) == "20 min on gpu"
    assert describe_training({"seconds": 46.0, "device": "gpu"}) == "46 s on gpu"
    assert describe_training({}) == "training not recorded"


def test_rescore_recomputes_the_metrics_of_a_shipped_model_and_keeps_its_weights(tmp_path, capsys):
    """After a change of the rulers, `pretrain NAME --rescore` scores the shipped weights again:
    the manifest's metrics become today's score of those weights (computed here independently
    with pretrain.score), the training metrics and the file stay, and the change is dated."""
    entry = pretrain.pretrain_one("beta_vae", profile="smoke", metric_images=200, folder=tmp_path, device="cpu",
                                  progress=False, log=lambda *a: None, **TINY)
    key = ck.entry_key(entry["recipe"])
    before = (tmp_path / entry["file"]).read_bytes()
    ck.update_metrics(key, {"mig": 9.0, "metric_images": 7}, tmp_path)  # a stale score
    stale = ck.read_manifest(tmp_path)["checkpoints"][key]
    assert stale["metrics"]["mig"] == 9.0 and stale["metrics"]["final_loss"] == entry["metrics"]["final_loss"]
    assert pretrain.main(["beta_vae", "--profile", "smoke", "--steps", "2", "-p", "batch_size", "4",
                          "--out", str(tmp_path), "--rescore", "--metric-images", "300"]) == 0
    assert "beta_vae: rescored, mig" in capsys.readouterr().out
    new = ck.read_manifest(tmp_path)["checkpoints"][key]
    expected = pretrain.score(ck.load_shipped(key, folder=tmp_path), 300)
    assert new["metrics"]["mig"] == expected["mig"] != 9.0
    assert new["metrics"]["metric_images"] == 300 and new["metrics"]["final_loss"] == entry["metrics"]["final_loss"]
    assert new["rescored"] and new["sha256"] == entry["sha256"]
    assert (tmp_path / entry["file"]).read_bytes() == before
    with pytest.raises(SystemExit) as exit_:  # nothing shipped for this recipe
        pretrain.main(["beta_vae", "--profile", "smoke", "--steps", "3", "--out", str(tmp_path), "--rescore"])
    assert exit_.value.code == 2 and "no shipped model of recipe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pretrain.main(["--profile", "smoke", "--out", str(tmp_path), "--rescore"])
    assert "--rescore needs the names" in capsys.readouterr().err
    with pytest.raises(KeyError, match="no shipped checkpoint"):
        ck.update_metrics("nope", {}, tmp_path)


def test_manifest_and_record_updates_wait_for_the_folder_lock(tmp_path):
    """Two runs that finish at once update the manifest one after the other: a write waits while
    another process holds the folder's lock, and both entries survive."""
    import subprocess
    import sys
    import time

    recipe_a = ck.recipe("beta_vae", "smoke", seed=1)
    writer = (
        "import sys; from course_lib import checkpoints as ck; print('ready', flush=True); "
        f"ck.write_record(ck.recipe('beta_vae', 'smoke', seed=2), history={{}}, folder={str(tmp_path)!r}); "
        "print('written')"
    )
    probe = ("import fcntl, sys\nfh = open(sys.argv[1], 'a')\ntry:\n"
             "    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('free')\n"
             "except BlockingIOError:\n    print('held')")

    def lock_state():   # another process asks for the lock without waiting: no timing involved
        return subprocess.run([sys.executable, "-c", probe, str(tmp_path / ck.LOCK)], capture_output=True,
                              text=True, timeout=60).stdout.strip()

    with ck.folder_lock(tmp_path):
        assert lock_state() == "held"
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"  # course_lib imported: it goes for the lock
        time.sleep(1.5)
        assert proc.poll() is None, "the other process wrote while the lock was held"
        assert not (tmp_path / ck.RECORDS).exists()
        # this process writes its own record while holding the lock (the lock is per process,
        # so taking it again here would wait for ourselves: write the file as write_record does)
        records = ck.read_records(tmp_path)
        records[ck.entry_key(recipe_a)] = {"recipe": recipe_a, "metrics": {}, "trained_on": {}, "history": {}}
        ck._write_json(tmp_path / ck.RECORDS, {"format": ck.RECORDS_FORMAT, "records": records})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "written" in out
    assert lock_state() == "free"
    keys = set(ck.read_records(tmp_path))
    assert keys == {ck.entry_key(recipe_a), ck.entry_key(ck.recipe("beta_vae", "smoke", seed=2))}


def test_a_step1_run_that_stops_is_never_built_upon(monkeypatch):
    """A stop requested while a step-1 model trains (pretrain of ID-GAN or VAE-GAN with no
    shipped start) raises TrainingStopped instead of building on its unfinished weights."""
    from course_lib.train import TrainingStopped, TrainResult

    def stopped_fit(model, data, *, steps, **kw):
        return TrainResult(model=model, history={}, steps=1, seconds=0.1, images_per_second=1.0,
                           device="cpu", checkpoint="runs/checkpoints/x.pt", finished=False)

    monkeypatch.setattr(ck, "fit", stopped_fit)
    monkeypatch.setattr(ck, "find_shipped", lambda wanted, folder=None: None)
    with pytest.raises(TrainingStopped, match="stopped at step 1 of 3.*same call continues it"):
        ck.load_or_train("beta_vae", profile="smoke", steps=3, device="cpu", progress=False)


def test_shipped_with_lists_a_models_shipped_checkpoints_of_one_config():
    entries = ck.read_manifest()["checkpoints"].values()
    expected = [e for e in entries if e["recipe"]["model"] == "beta_vae" and e["recipe"]["data"] == "dsprites"
                and e["recipe"]["config"]["beta"] == 8.0 and "mig" in e["metrics"]]
    got = ck.shipped_with("beta_vae", beta=8.0)
    assert len(got) == len(expected) >= 2
    assert [e["recipe"]["steps"] for e in got] == sorted(e["recipe"]["steps"] for e in expected)
    assert all(e["recipe"]["config"]["beta"] == 8.0 for e in got)
    assert ck.shipped_with("beta_vae", beta=123.0) == [] and ck.shipped_with("beta_vae", data="mnist") == []
    assert len(ck.BETA_VAE_SEED_SWEEP_MIG) == 20 and all(0 <= m <= 1 for m in ck.BETA_VAE_SEED_SWEEP_MIG)
