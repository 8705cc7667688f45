"""Several copies trained at once behave like the same copies trained alone."""

import warnings

import pytest
import torch

from course_lib.data import DSprites
from course_lib.models import VAE, Autoencoder, BetaVAE, CapacityVAE, build_model
from course_lib.multiseed import train_many
from course_lib.train import load_checkpoint, load_model, train

STEPS, BATCH = 2, 4


@pytest.fixture(scope="module")
def data():
    return DSprites()


def make(seed, beta=4.0, cls=BetaVAE):
    torch.manual_seed(1000 + seed)
    return cls(num_latents=4, beta=beta)


def max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.fixture(scope="module")
def pair(data, tmp_path_factory):
    """Two copies, different seeds and β, trained alone and together (with checkpoints)."""
    folder = tmp_path_factory.mktemp("multi")
    seeds, betas = [3, 7], [4.0, 1.0]
    alone = [train(make(s, b), data, steps=STEPS, batch_size=BATCH, seed=s, log_every=1,
                   device="cpu", progress=False) for s, b in zip(seeds, betas)]
    paths = [folder / f"copy{s}.pt" for s in seeds]
    together = train_many([make(s, b) for s, b in zip(seeds, betas)], data, seeds=seeds,
                          steps=STEPS, batch_size=BATCH, log_every=1, checkpoints=paths,
                          device="cpu", progress=False)
    return seeds, betas, alone, together, paths


def test_each_copy_logs_the_losses_of_its_single_run(pair):
    _, _, alone, together, _ = pair
    for single, multi in zip(alone, together):
        assert multi.history["step"] == single.history["step"] == [1, 2]
        for key in ("loss", "recon", "kl"):
            assert multi.history[key] == pytest.approx(single.history[key], rel=1e-5, abs=1e-4)
        assert torch.allclose(torch.tensor(multi.history["kl_per_latent"]),
                              torch.tensor(single.history["kl_per_latent"]), rtol=1e-4, atol=1e-5)
    # the two copies really differ (different data, noise and β)
    assert together[0].history["loss"] != pytest.approx(together[1].history["loss"], rel=1e-3)


def test_each_copy_ends_with_the_weights_of_its_single_run(pair):
    _, _, alone, together, _ = pair
    for single, multi in zip(alone, together):
        # Adam moves each weight by about lr = 1e-4 per step; rounding differences in
        # near-zero gradients can flip a few of those moves, never more than steps * lr
        assert max_diff(single.model, multi.model) <= STEPS * 1e-4 + 1e-6
        start = make(multi.extra["seed"], multi.model.beta)
        assert max_diff(start, multi.model) > 1e-5  # it did train


def test_copies_are_ordinary_checkpoints(pair):
    seeds, betas, _, together, paths = pair
    for seed, beta, multi, path in zip(seeds, betas, together, paths):
        loaded = load_model(path, device="cpu")
        assert type(loaded) is BetaVAE and loaded.beta == beta
        assert max_diff(loaded, multi.model) == 0
        state = load_checkpoint(path)
        assert state["step"] == STEPS and state["train"]["seed"] == seed
        assert state["history"]["loss"] == multi.history["loss"]


def test_train_resumes_a_copy_like_an_uninterrupted_single_run(pair, data, tmp_path):
    """``train`` continues a copy's checkpoint (data and noise streams included) exactly as a
    single run of STEPS + 1 steps would have gone on."""
    seeds, betas, _, _, paths = pair
    seed, beta = seeds[0], betas[0]
    copy = tmp_path / "copy.pt"
    copy.write_bytes(paths[0].read_bytes())
    resumed = train(make(seed, beta), data, steps=STEPS + 1, batch_size=BATCH, seed=seed,
                    log_every=1, checkpoint=copy, device="cpu", progress=False)
    straight = train(make(seed, beta), data, steps=STEPS + 1, batch_size=BATCH, seed=seed,
                     log_every=1, device="cpu", progress=False)
    assert resumed.resumed_from == STEPS
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-5, abs=1e-4)


def test_finished_checkpoints_are_just_loaded(pair, data):
    seeds, betas, _, together, paths = pair
    again = train_many([make(s, b) for s, b in zip(seeds, betas)], data, seeds=seeds,
                       steps=STEPS, batch_size=BATCH, checkpoints=paths, device="cpu", progress=False)
    for first, second in zip(together, again):
        assert second.resumed_from == STEPS
        assert max_diff(first.model, second.model) == 0


@pytest.mark.parametrize("build, data_kind", [
    (lambda: BetaVAE(num_latents=3, beta=2.0, arch="mnist32"), "images32"),  # channels_last in vmap
    (lambda: CapacityVAE(num_latents=3, gamma=10.0, c_steps=STEPS - 1), "dsprites"),  # C made per step
], ids=["mnist32", "capacity"])
def test_other_architectures_and_models_train_as_copies(build, data_kind, data):
    if data_kind == "images32":
        data = (torch.rand(64, 1, 32, 32, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    seeds = [1, 2]

    def fresh(seed):
        torch.manual_seed(1000 + seed)
        return build()

    alone = [train(fresh(s), data, steps=STEPS, batch_size=BATCH, seed=s, log_every=1, device="cpu",
                   progress=False) for s in seeds]
    together = train_many([fresh(s) for s in seeds], data, seeds=seeds, steps=STEPS,
                          batch_size=BATCH, log_every=1, device="cpu", progress=False)
    for single, multi in zip(alone, together):
        assert multi.history["loss"] == pytest.approx(single.history["loss"], rel=1e-5, abs=1e-4)
        assert max_diff(single.model, multi.model) <= STEPS * 1e-4 + 1e-6


def test_copies_written_on_another_device_type_are_reseeded_with_a_warning(pair, tmp_path):
    """A copy's checkpoint with a GPU-sized random state (as a CUDA run writes it) continues on
    the CPU from reseeded streams, with a warning; a finished one just loads."""
    from course_lib.train import RandomStateWarning, with_checksum

    seeds, betas, _, _, paths = pair
    copies = []
    for i, path in enumerate(paths):
        state = load_checkpoint(path)
        state["rng"].update(data=torch.zeros(16, dtype=torch.uint8), data_device="cuda:0",
                            model_device="cuda:0", cuda=[torch.zeros(16, dtype=torch.uint8)])
        state.pop("checksum", None)
        copies.append(tmp_path / f"copy{i}.pt")
        torch.save(with_checksum(state), copies[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomStateWarning)
        again = train_many([make(s, b) for s, b in zip(seeds, betas)], data=DSprites(), seeds=seeds,
                           steps=STEPS, batch_size=BATCH, checkpoints=copies, device="cpu", progress=False)
    assert all(r.resumed_from == STEPS for r in again)
    with pytest.warns(RandomStateWarning, match="reseeded"):
        more = train_many([make(s, b) for s, b in zip(seeds, betas)], DSprites(), seeds=seeds,
                          steps=STEPS + 1, batch_size=BATCH, checkpoints=copies, device="cpu",
                          progress=False)
    assert all(r.resumed_from == STEPS and r.history["step"][-1] == STEPS + 1 for r in more)
    assert load_checkpoint(copies[0])["rng"]["data_device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["burgess64", "mnist32"])
def test_cuda_copies_match_single_runs_in_deterministic_mode(arch, data):
    """On a GPU, with TF32 off and deterministic cuDNN, the copies trained at once match their
    single runs to float rounding, as on the CPU (without deterministic(), to TF32 rounding)."""
    from course_lib.models.base import deterministic

    if arch == "mnist32":
        data = (torch.rand(64, 1, 32, 32, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    seeds, betas = [3, 7], [4.0, 1.0]

    def fresh(seed, beta):
        torch.manual_seed(1000 + seed)
        return BetaVAE(num_latents=4, beta=beta, arch=arch)

    with deterministic():
        alone = [train(fresh(s, b), data, steps=STEPS, batch_size=BATCH, seed=s, log_every=1,
                       device="cuda", progress=False) for s, b in zip(seeds, betas)]
        together = train_many([fresh(s, b) for s, b in zip(seeds, betas)], data, seeds=seeds,
                              steps=STEPS, batch_size=BATCH, log_every=1, device="cuda", progress=False)
    for single, multi in zip(alone, together):
        assert multi.history["loss"] == pytest.approx(single.history["loss"], rel=1e-5, abs=1e-4)
        assert max_diff(single.model, multi.model) <= STEPS * 1e-4 + 1e-6


def test_refuses_what_it_cannot_batch(data):
    with pytest.raises(ValueError, match="seeds"):
        train_many([make(0), make(1)], data, seeds=[0], steps=1, progress=False)
    with pytest.raises(ValueError, match="architecture"):
        train_many([make(0), BetaVAE(num_latents=5)], data, seeds=[0, 1], steps=1,
                   progress=False)
    with pytest.raises(ValueError, match="one class"):
        train_many([make(0), make(1, cls=VAE)], data, seeds=[0, 1], steps=1, progress=False)
    with pytest.raises(ValueError, match="VAE"):
        train_many([Autoencoder(4), Autoencoder(4)], data, seeds=[0, 1], steps=1,
                   progress=False)
    with pytest.raises(ValueError, match="training_step"):
        gan = build_model("factor_vae")
        train_many([gan, build_model("factor_vae")], data, seeds=[0, 1], steps=1,
                   progress=False)


def test_benchmark_commands_print_their_figures(capsys):
    from course_lib.cli import bench, bench_train
    from course_lib.models import nets

    assert bench.main(["multiseed", "--copies", "2", "--steps", "1", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "one run of train()" in out and "N =  2 at once" in out and "speed-up" in out
    model = make(0)
    original = nets.channels_last
    with bench_train.channels_last(False, model):
        assert nets.channels_last is not original
        assert model.encoder.conv[0].weight.is_contiguous()
    assert nets.channels_last is original
    assert model.encoder.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    ips, _ = bench_train.bare_loop(model, 2, 1, repeats=1, warmup=1)
    assert ips > 0


def test_train_many_runs_the_one_loop_with_public_helpers_only():
    """One loop for one model and for N copies: multiseed calls train.run_steps, imports no
    private name from course_lib.train and replaces no method on a model instance."""
    import inspect
    import re

    from course_lib import multiseed

    source = inspect.getsource(multiseed)
    assert "run_steps(" in source and "LogWindow" in source
    imported = re.search(r"from \.train import \((.*?)\)", source, re.S).group(1)
    assert [n.strip() for n in imported.split(",") if n.strip().startswith("_")] == []
    assert not re.search(r"model\.\w+ = ", source)  # no attribute or method assigned on a model


def test_resuming_copies_with_other_settings_is_an_error(pair, data, tmp_path):
    seeds, betas, _, _, paths = pair
    copies = [tmp_path / p.name for p in paths]
    for src, dst in zip(paths, copies):
        dst.write_bytes(src.read_bytes())
    models = [make(s, b) for s, b in zip(seeds, betas)]
    with pytest.raises(ValueError, match="was trained with lr="):
        train_many(models, data, seeds=seeds, steps=STEPS + 1, batch_size=BATCH, lr=5e-2, log_every=1,
                   checkpoints=copies, device="cpu", progress=False)
    with pytest.raises(ValueError, match="was trained with seed=3 \\(asked for 7\\)"):
        train_many(models, data, seeds=seeds[::-1], steps=STEPS + 1, batch_size=BATCH, log_every=1,
                   checkpoints=copies, device="cpu", progress=False)
    assert all(load_checkpoint(p)["step"] == STEPS for p in copies)  # nothing was written
