"""Nothing crashes on a GPU, and the same seed tells the same story on any device.

Every mechanism is tested here on the CPU (a checkpoint with a GPU-sized random state, a strict
stand-in for CUDA's generator-device check, counted host reads, float64-made tables, faked
CUDA random states); the tests marked ``cuda`` run the real thing when a GPU is present.
"""

import contextlib
import sys
import warnings

import pytest
import torch

from course_lib import exercises, leaderboard
from course_lib.data import DSprites, RingOfGaussians, SamplerDeviceWarning, TensorSampler, sampler_on
from course_lib.data import dsprites as dsp
from course_lib.models import VAE, BetaVAE, CapacityVAE, UnrolledGAN
from course_lib.models.base import amp_dtype, deterministic
from course_lib.train import RandomStateWarning, atomic_save, load_checkpoint, restore_generator, train, with_checksum

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DS = DSprites()
#: the state of a CUDA (Philox) generator: seed and offset, 16 bytes (a CPU one has 5,056)
CUDA_STATE_BYTES = 16


def tiny(seed=0):
    torch.manual_seed(seed)
    return BetaVAE(num_latents=2, beta=2.0)


def quiet(**kw):
    return dict(batch_size=4, lr=1e-3, seed=3, progress=False, **kw)


# -- resuming a checkpoint written on another device type ------------------------------------
def as_if_written_on_cuda(path, record_devices=True):
    """Rewrite a CPU checkpoint's random state as a CUDA run's would be."""
    state = load_checkpoint(path)
    rng = state["rng"]
    rng["data"] = torch.arange(CUDA_STATE_BYTES, dtype=torch.uint8)
    rng["cuda"] = [torch.arange(CUDA_STATE_BYTES, dtype=torch.uint8)]
    if record_devices:
        rng.update(data_device="cuda:0", model_device="cuda:0")
    else:  # a checkpoint written before the devices were recorded
        rng.pop("data_device", None)
        rng.pop("model_device", None)
    state.pop("checksum")
    atomic_save(with_checksum(state), path)


def test_checkpoints_record_the_devices_of_their_random_streams(tmp_path):
    path = tmp_path / "run.pt"
    train(tiny(), DS, steps=1, checkpoint=path, device="cpu", **quiet())
    rng = load_checkpoint(path)["rng"]
    assert rng["data_device"] == "cpu" and rng["model_device"] == "cpu"
    assert rng["data"].numel() == torch.Generator().get_state().numel() != CUDA_STATE_BYTES


def test_a_finished_gpu_run_is_loaded_without_touching_random_state(tmp_path):
    """"Load if present": a finished run's random state is not needed, so a GPU-sized one
    neither raises nor warns on the CPU."""
    path = tmp_path / "run.pt"
    first = train(tiny(), DS, steps=2, checkpoint=path, device="cpu", **quiet())
    as_if_written_on_cuda(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = train(tiny(1), DS, steps=2, checkpoint=path, device="cpu", **quiet())
    assert again.resumed_from == 2 and again.finished
    assert all(torch.equal(p, q) for p, q in zip(first.model.parameters(), again.model.parameters()))


@pytest.mark.parametrize("record_devices", [True, False], ids=["recorded", "older-checkpoint"])
def test_continuing_a_gpu_run_on_the_cpu_reseeds_with_a_warning(tmp_path, record_devices):
    path = tmp_path / "run.pt"
    assert not train(tiny(), DS, steps=4, stop_at=2, checkpoint=path, device="cpu", **quiet()).finished
    as_if_written_on_cuda(path, record_devices)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    with pytest.warns(RandomStateWarning, match="reseeded from seed 3 and step 2"):
        done = train(tiny(), DS, steps=4, checkpoint=path, device="cpu", log_every=1, **quiet())
    assert done.finished and done.resumed_from == 2 and done.history["step"] == [1, 2, 3, 4]
    with pytest.warns(RandomStateWarning):  # the reseeded continuation is reproducible
        twice = train(tiny(), DS, steps=4, checkpoint=copy, device="cpu", log_every=1, **quiet())
    assert twice.history == done.history
    # the new checkpoint is the CPU's: it continues without a warning
    state = load_checkpoint(path)
    assert state["rng"]["data_device"] == "cpu" and state["rng"]["data"].numel() > CUDA_STATE_BYTES


def test_restore_generator_refuses_a_state_of_another_device_type():
    g = torch.Generator().manual_seed(1)
    before = g.get_state()
    assert not restore_generator(g, torch.zeros(CUDA_STATE_BYTES, dtype=torch.uint8))
    assert not restore_generator(g, before, saved_device="cuda:0")
    assert torch.equal(g.get_state(), before)
    other = torch.Generator().manual_seed(2).get_state()
    assert restore_generator(g, other, saved_device="cpu") and torch.equal(g.get_state(), other)


# -- random numbers are drawn on the generator's device ---------------------------------------
def _strict(fn):
    """``fn`` with CUDA's rule, which the CPU and the meta device do not check: a generator
    draws only on its own device type."""
    def draw(*args, generator=None, device=None, **kwargs):
        where = torch.device(device if device is not None else "cpu")
        if generator is not None and where.type != generator.device.type:
            raise RuntimeError(f"Expected a '{where.type}' device type for generator but found "
                               f"'{generator.device.type}'")
        return fn(*args, generator=generator, device=device, **kwargs)
    return draw


@pytest.fixture
def strict_generators(monkeypatch):
    for name in ("randn", "rand", "randint"):
        monkeypatch.setattr(torch, name, _strict(getattr(torch, name)))


def test_sampling_draws_on_the_generators_device(strict_generators):
    """Notebook 06's crash (a CUDA generator, a model still on the CPU), with the meta device
    standing in for the other device: each draw happens on the generator's device, then
    moves to where it is used."""
    g = torch.Generator().manual_seed(0)
    gan = UnrolledGAN(arch="mlp", noise_dim=4, hidden=8, layers=1, replicas=2)
    on_cpu = gan.sample(5, torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="device type for generator"):  # the stand-in bites
        torch.randn(3, generator=g, device="meta")
    assert gan.to("meta").sample(5, g).device.type == "meta"
    assert on_cpu.shape == (2, 5, 2)
    mu = torch.zeros(3, 2, device="meta")
    assert VAE.reparameterize(mu, mu, g).device.type == "meta"
    assert RingOfGaussians(device="meta").sample(7, g).device.type == "meta"
    assert TensorSampler(torch.rand(10, 2), "meta").sample(4, g).device.type == "meta"
    classes = DS.sample_classes(6, g, device="meta")
    assert classes.device.type == "meta" and classes.shape == (6, 6)


def test_a_seed_gives_the_same_latents_whatever_device_the_model_is_on():
    gan = UnrolledGAN(arch="mlp", noise_dim=4, hidden=8, layers=1, replicas=2)
    first = gan.sample_latent(5, torch.Generator().manual_seed(0))
    again = gan.sample_latent(5, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(first, again))


# -- no needless host round-trips ------------------------------------------------------------
HOST_READS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy",
              "nonzero")


@contextlib.contextmanager
def counted_host_reads(monkeypatch):
    """Count what would synchronise a GPU when called from course_lib: reading a tensor's value
    on the host (``.item()``, ``bool()``, ``.tolist()``, ...) and making a tensor from host
    data (``torch.tensor``). Calls from torch itself (e.g. Adam reading its step counter, a
    CPU tensor even on a GPU) are not counted."""
    calls = []

    def from_course_lib():
        frame = sys._getframe(2)
        return frame.f_globals.get("__name__", "").startswith("course_lib")

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            if from_course_lib():
                calls.append(name)
            return fn(*args, **kwargs)
        return wrapped

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    for name in ("tensor", "as_tensor"):
        monkeypatch.setattr(torch, name, counting(f"torch.{name}", getattr(torch, name)))
    yield calls


@pytest.fixture
def like_a_gpu(monkeypatch):
    """The CPU taking the GPU's code paths: no grouping of the renders by shape (it needs the
    per-shape counts on the host) and the loss checked only at logs and saves."""
    import course_lib.train as train_module

    monkeypatch.setattr(dsp._Renderer, "GROUP_BY_SHAPE_ON", ())
    monkeypatch.setattr(train_module, "defers_finite_check", lambda device: True)


def test_the_data_path_reads_nothing_back(monkeypatch, like_a_gpu):
    sampler = DS.sampler("cpu")
    g = torch.Generator().manual_seed(0)
    sampler.sample(8, g)  # the first call builds the cached tables
    with counted_host_reads(monkeypatch) as calls:
        x, classes = sampler.sample_with_classes(300, g)
        sampler.sample(64, g)
    assert calls == [], calls
    assert x.shape == (300, 1, 64, 64) and classes.shape == (300, 6)
    # a student's class indices are still checked (one read back per call)
    DS.images(classes[:1])  # the first call makes the factor sizes on the device
    with counted_host_reads(monkeypatch) as calls:
        DS.images(classes[:5])
    assert calls == ["__bool__"]
    with pytest.raises(ValueError, match="out of range"):
        DS.images(torch.tensor([[0, 3, 0, 0, 0, 0]]))


def test_rendering_without_grouping_by_shape_gives_the_same_images(monkeypatch):
    classes = DS.sample_classes(600, torch.Generator().manual_seed(1))
    grouped = DS.images(classes)
    monkeypatch.setattr(dsp._Renderer, "GROUP_BY_SHAPE_ON", ())
    monkeypatch.setattr(dsp._Renderer, "DEVICE_CHUNK", 256)  # several chunks
    assert torch.equal(DS.images(classes), grouped)
    assert torch.equal(DS.images(classes, dtype=torch.uint8), grouped.to(torch.uint8))


@pytest.mark.filterwarnings("ignore:the capacity schedule ramps C up")  # the 2-step run stops mid-ramp on purpose
def test_training_steps_read_nothing_back_between_logs(monkeypatch, like_a_gpu):
    """The capacity model (C made on the device) trained on dSprites: the host reads of a run
    are those of its logs, whatever its length."""
    def reads(steps):
        model = CapacityVAE(num_latents=2, gamma=10.0, c_steps=4)
        with counted_host_reads(monkeypatch) as calls:
            train(model, DS, steps=steps, log_every=steps, device="cpu", batch_size=4, progress=False)
        return list(calls)

    reads(1)  # a first run does one-time set-up (its host reads are not per-step ones)
    short, long = reads(2), reads(7)
    assert short == long, (short, long)


def test_capacity_is_made_on_the_device(monkeypatch):
    model = CapacityVAE(num_latents=2, gamma=10.0, c_steps=4)
    kl = torch.tensor([0.5, 1.0])
    with counted_host_reads(monkeypatch) as calls:
        reg, extra = model.regularizer(kl, None, None, None, step=2)
    assert calls == []
    assert extra["capacity"].item() == pytest.approx(model.capacity(2))
    assert reg.item() == pytest.approx(10.0 * abs(1.5 - model.capacity(2)))


def test_a_sampler_follows_the_training_device():
    moved = sampler_on(DS.sampler(), "meta")
    assert moved.device == torch.device("meta") and moved.class_ranges == {}
    toy = RingOfGaussians()
    assert sampler_on(toy, "cpu") is toy
    assert sampler_on(toy, "meta").device == torch.device("meta")

    class Fixed:
        device = torch.device("cpu")

        def sample(self, n, generator=None):
            return torch.zeros(n, 2)

    fixed = Fixed()
    with pytest.warns(SamplerDeviceWarning, match="every batch is copied"):
        assert sampler_on(fixed, "meta") is fixed


# -- same seed, same images on every device ---------------------------------------------------
def test_render_tables_are_made_in_float64_then_cast():
    table = dsp._Renderer().tables(torch.device("cpu"), torch.float32)
    theta = dsp.factor_values_table()[3]
    assert torch.equal(table["cos"], torch.cos(theta).float())
    assert torch.equal(table["sin"], torch.sin(theta).float())
    # what float32 arithmetic gives instead, differently on each device type (the reason)
    assert (torch.cos(theta.float()) != torch.cos(theta).float()).any()
    pos = dsp.factor_values_table()[4] * 32 + 16
    assert torch.equal(table["dx"][:, 0], ((table["dx"][:, 0].double() + pos) - pos).float())


def test_rendering_never_divides_a_tensor_by_a_number(monkeypatch):
    """CUDA divides a tensor by a number as a multiplication by its reciprocal and the CPU
    does not (one bit apart, enough to flip an edge pixel): the shape tests multiply."""
    divisions = []
    true_div = torch.Tensor.__truediv__

    def watched(self, other):
        if isinstance(other, (int, float)):
            divisions.append(other)
        return true_div(self, other)

    monkeypatch.setattr(torch.Tensor, "__truediv__", watched)
    classes = DS.sample_classes(300, torch.Generator().manual_seed(2))
    DS.images(classes)
    monkeypatch.setattr(dsp._Renderer, "GROUP_BY_SHAPE_ON", ())
    DS.images(classes)
    assert divisions == []


# -- checkers, leaderboard, precision, deterministic mode --------------------------------------
def test_checkers_restore_the_gpu_random_state(monkeypatch):
    """A checker seeds torch (CPU and GPU); it puts back the CUDA random state it found."""
    saved_states = [torch.arange(CUDA_STATE_BYTES, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in saved_states])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.append(states))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: None)
    cpu_before = torch.get_rng_state()
    verdict = exercises.evaluate_function("noise", lambda n: torch.randn(n), lambda n: torch.randn(n),
                                          [exercises.case(3)])
    assert verdict.status == "correct", verdict
    assert restored and all(torch.equal(s, saved_states[0]) for states in restored for s in states)
    assert torch.equal(torch.get_rng_state(), cpu_before)


def test_the_leaderboard_seeds_before_it_builds_a_model(tmp_path, monkeypatch):
    import course_lib.train as train_module

    built = []

    def no_training(model, data, **kwargs):
        built.append({k: v.clone() for k, v in model.state_dict().items()})
        return train_module.TrainResult(model=model, history=train_module.History(), steps=0)

    monkeypatch.setattr(train_module, "train", no_training)
    for noise in (1, 2):
        torch.manual_seed(noise)  # whatever ran before must not change the initial weights
        leaderboard.get_model("VAE", DS.sampler(), steps=1, batch_size=4, lr=1e-3, seed=5, device="cpu",
                              cache_dir=tmp_path / str(noise), use_shipped=False)
    assert all(torch.equal(built[0][k], built[1][k]) for k in built[0])


def test_bf16_falls_back_to_float16_where_the_gpu_has_none(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert amp_dtype("cuda") == torch.float16  # a T4 (compute capability 7.5)
    assert amp_dtype("cpu") == torch.bfloat16
    assert amp_dtype("cuda", torch.float16) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert amp_dtype("cuda:0") == torch.bfloat16  # Ampere and newer


def test_deterministic_mode_sets_and_restores_the_backends():
    from course_lib.models.base import _tf32_settings

    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, _tf32_settings(),
              torch.are_deterministic_algorithms_enabled())
    with deterministic():
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()
        assert set(_tf32_settings().values()) <= {"ieee", False}
        a = train(tiny(), DS, steps=2, device="cpu", **quiet())
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, _tf32_settings(),
            torch.are_deterministic_algorithms_enabled()) == before
    b = train(tiny(), DS, steps=2, device="cpu", **quiet())
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


# -- on a GPU ---------------------------------------------------------------------------------
@cuda
def test_cuda_renders_every_grid_point_as_the_cpu_does():
    index = torch.arange(0, len(DS), 7)  # a seventh of the grid: every shape, scale, angle, position
    for chunk in index.split(32_768):
        classes = DS.index_to_classes(chunk)
        assert torch.equal(DS.images(classes.cuda()).cpu(), DS.images(classes))


@cuda
def test_cuda_data_path_and_capacity_loss_do_not_synchronise():
    sampler = DS.sampler("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    model = CapacityVAE(num_latents=3, gamma=10.0, c_steps=10).cuda()
    model.loss_terms(sampler.sample(64, g), step=0)  # warm-up: tables, cuDNN, allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(3):
            x = sampler.sample(64, g)
            terms = model.loss_terms(x, step=step)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert terms["capacity"].device.type == "cuda"


@cuda
def test_cuda_training_synchronises_only_at_logs():
    def syncs(steps):
        torch.manual_seed(0)
        model = CapacityVAE(num_latents=3, gamma=10.0, c_steps=10)
        train(model, DS, steps=1, batch_size=8, device="cuda", progress=False)  # warm-up
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train(model, DS, steps=steps, log_every=steps, batch_size=8, device="cuda", progress=False)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in caught)

    assert syncs(3) == syncs(9)


@cuda
def test_cuda_sampling_with_a_generator_of_either_device():
    torch.manual_seed(0)
    gan = UnrolledGAN(arch="mlp", noise_dim=4, hidden=8, layers=1, replicas=2)
    from_cuda_gen = gan.sample(5, torch.Generator(device="cuda").manual_seed(0))  # notebook 06
    assert from_cuda_gen.device.type == "cpu"
    cpu_latents = gan.sample_latent(5, torch.Generator().manual_seed(0))
    gan.cuda()
    cuda_latents = gan.sample_latent(5, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu_latents, cuda_latents))


@cuda
def test_checkpoints_move_between_cpu_and_cuda(tmp_path):
    cpu_run, cuda_run = tmp_path / "cpu.pt", tmp_path / "cuda.pt"
    train(tiny(), DS, steps=3, stop_at=1, checkpoint=cpu_run, device="cpu", **quiet())
    with pytest.warns(RandomStateWarning):
        done = train(tiny(), DS, steps=3, checkpoint=cpu_run, device="cuda", **quiet())
    assert done.finished and done.device.startswith("cuda")
    train(tiny(), DS, steps=3, stop_at=1, checkpoint=cuda_run, device="cuda", **quiet())
    assert load_checkpoint(cuda_run)["rng"]["data"].numel() == CUDA_STATE_BYTES
    with pytest.warns(RandomStateWarning):
        train(tiny(), DS, steps=3, checkpoint=cuda_run, device="cpu", **quiet())
    with warnings.catch_warnings():  # finished runs load anywhere, silently
        warnings.simplefilter("error", RandomStateWarning)
        train(tiny(), DS, steps=3, checkpoint=cuda_run, device="cuda", **quiet())
        train(tiny(), DS, steps=3, checkpoint=cpu_run, device="cpu", **quiet())


@cuda
def test_cuda_resume_matches_an_uninterrupted_run_in_deterministic_mode(tmp_path):
    path = tmp_path / "run.pt"
    with deterministic():
        straight = train(tiny(), DS, steps=4, log_every=1, device="cuda", **quiet())
        train(tiny(), DS, steps=4, stop_at=2, log_every=1, checkpoint=path, device="cuda", **quiet())
        resumed = train(tiny(), DS, steps=4, log_every=1, checkpoint=path, device="cuda", **quiet())
    assert resumed.resumed_from == 2
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-6, abs=1e-5)
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert (p - q).abs().max().item() <= 1e-6


@cuda
def test_cuda_checkers_leave_the_cuda_random_state_alone():
    torch.cuda.manual_seed_all(123)
    before = torch.cuda.get_rng_state_all()
    verdict = exercises.evaluate_function("noise", lambda n: torch.randn(n, device="cuda"),
                                          lambda n: torch.randn(n, device="cuda"), [exercises.case(3)])
    assert verdict.status == "correct", verdict
    assert all(torch.equal(a, b) for a, b in zip(before, torch.cuda.get_rng_state_all()))


@cuda
def test_cuda_amp_dtype_matches_the_gpu():
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    assert amp_dtype("cuda") == expected


@cuda
def test_cuda_train_moves_a_cpu_sampler():
    assert sampler_on(DS.sampler("cpu"), "cuda").device.type == "cuda"
