"""The training loop: exact resume, seeds, the NaN guard, atomic checkpoints, history."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.data import DSprites
from course_lib.models import BetaVAE, CourseModel
from course_lib.train import (
    NonFiniteLossError,
    TrainResult,
    atomic_save,
    choose_device,
    load_checkpoint,
    load_model,
    seed_everything,
    train,
)


class Tiny(CourseModel):
    """A linear map trained to reverse its input; noise from torch's global generator (like a
    VAE's sample), a vector term, and optionally a NaN loss from a given step on."""

    model_name = "tiny_test_model"  # not registered: the registry stays as the course has it

    def __init__(self, dim: int = 3, nan_at: int | None = None):
        super().__init__()
        self.dim, self.nan_at = dim, nan_at
        self.lin = nn.Linear(dim, dim)

    def config(self):
        return {"dim": self.dim, "nan_at": self.nan_at}

    def loss_terms(self, x, step=0):
        out = self.lin(x + 0.1 * torch.randn(x.shape))
        err = (out - x.flip(1)) ** 2
        loss = err.sum(1).mean()
        if self.nan_at is not None and step >= self.nan_at:
            loss = loss * float("nan")
        return {"loss": loss, "err_per_dim": err.mean(0), "out_mean": out.mean()}


DATA = torch.randn(256, 3, generator=torch.Generator().manual_seed(0))
FAST = dict(batch_size=8, lr=1e-2, device="cpu", progress=False)


def tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    return Tiny(**kwargs)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_continues_exactly(tmp_path):
    full = train(tiny(), DATA, steps=20, log_every=2, seed=3, **FAST)
    ckpt = tmp_path / "run.pt"
    first = train(tiny(), DATA, steps=10, log_every=2, seed=3, checkpoint=ckpt, **FAST)
    assert first.steps == 10 and load_checkpoint(ckpt)["step"] == 10
    # resume into a model with other initial weights: everything comes from the checkpoint
    resumed = train(tiny(seed=99), DATA, steps=20, log_every=2, seed=3, checkpoint=ckpt, **FAST)
    assert resumed.resumed_from == 10
    assert same_weights(resumed.model, full.model)
    assert dict(resumed.history) == dict(full.history)
    assert resumed.history["step"] == list(range(2, 21, 2))
    assert load_checkpoint(ckpt)["step"] == 20


def test_resume_from_a_checkpoint_between_logs_is_exact(tmp_path):
    # checkpoint_every (5) is not a multiple of log_every (3): the open log window is saved too
    full = train(tiny(), DATA, steps=15, log_every=3, seed=1, **FAST)
    ckpt = tmp_path / "run.pt"

    def stop_at_8(step, terms, model):
        if step >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), DATA, steps=15, log_every=3, seed=1, checkpoint=ckpt, checkpoint_every=5,
              callbacks=[stop_at_8], **FAST)
    assert load_checkpoint(ckpt)["step"] == 5
    resumed = train(tiny(), DATA, steps=15, log_every=3, seed=1, checkpoint=ckpt, checkpoint_every=5, **FAST)
    assert resumed.resumed_from == 5
    assert same_weights(resumed.model, full.model)
    assert resumed.history["step"] == full.history["step"] == [3, 6, 9, 12, 15]
    assert dict(resumed.history) == dict(full.history)  # bitwise: the same sums in the same order


def test_vae_on_dsprites_resumes_exactly(tmp_path):
    kwargs = dict(batch_size=4, lr=1e-3, device="cpu", progress=False, log_every=1, seed=5)
    torch.manual_seed(0)
    full = train(BetaVAE(num_latents=3), DSprites(), steps=4, **kwargs)
    ckpt = tmp_path / "vae.pt"
    torch.manual_seed(0)
    train(BetaVAE(num_latents=3), DSprites(), steps=2, checkpoint=ckpt, **kwargs)
    resumed = train(BetaVAE(num_latents=3), DSprites(), steps=4, checkpoint=ckpt, **kwargs)
    assert same_weights(resumed.model, full.model)
    assert dict(resumed.history) == dict(full.history)
    # every logged term, with the per-latent KL as vectors
    assert set(full.history) == {"step", "loss", "recon", "kl", "kl_per_latent"}
    assert full.history["step"] == [1, 2, 3, 4]
    kl = full.history.array("kl_per_latent")
    assert kl.shape == (4, 3) and (kl >= 0).all()
    assert full.history.array("kl") == pytest.approx(kl.sum(1), rel=1e-5)
    assert full.history.array("loss") == pytest.approx(full.history.array("recon") + 4 * kl.sum(1), rel=1e-5)
    loaded = load_model(ckpt, device="cpu")
    assert same_weights(loaded, resumed.model)


def test_same_seed_same_result_and_another_seed_differs():
    a = train(tiny(), DATA, steps=12, seed=7, **FAST)
    b = train(tiny(), DATA, steps=12, seed=7, **FAST)
    c = train(tiny(), DATA, steps=12, seed=8, **FAST)
    assert same_weights(a.model, b.model) and dict(a.history) == dict(b.history)
    assert not same_weights(a.model, c.model)
    assert a.history["loss"] != c.history["loss"]


def test_history_holds_the_mean_of_every_term_over_each_log_window():
    model = tiny()
    seen = []
    step_fn = model.training_step

    def recording_step(x, step, optimizers):
        terms = step_fn(x, step, optimizers)
        seen.append({k: v.clone() for k, v in terms.items()})
        return terms

    model.training_step = recording_step
    calls = []
    result = train(model, DATA, steps=10, log_every=4, seed=0,
                   callbacks=[lambda step, terms, m: calls.append(step)], **FAST)
    history = result.history
    assert isinstance(result, TrainResult) and result.images_per_second > 0
    assert history["step"] == [4, 8, 10] and calls == [4, 8, 10]
    assert set(history) == {"step", "loss", "err_per_dim", "out_mean"}
    windows = [seen[0:4], seen[4:8], seen[8:10]]
    for i, window in enumerate(windows):
        assert history["loss"][i] == pytest.approx(sum(float(t["loss"]) for t in window) / len(window), rel=1e-6)
        mean_vec = torch.stack([t["err_per_dim"] for t in window]).mean(0)
        assert history["err_per_dim"][i] == pytest.approx(mean_vec.tolist(), rel=1e-6)
    assert history.array("err_per_dim").shape == (3, 3)
    assert history.last("step") == 10
    with pytest.raises(KeyError, match="'kl' was not logged.*'loss'"):
        history.array("kl")


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = tmp_path / "nan.pt"
    with pytest.raises(NonFiniteLossError,
                       match=r"NaN or infinite between steps 6 and 8.*last good checkpoint .*nan\.pt was kept"):
        # training_step gets the 0-based step: nan_at=7 is the 8th update
        train(tiny(nan_at=7), DATA, steps=20, log_every=2, checkpoint=ckpt, checkpoint_every=5, **FAST)
    state = load_checkpoint(ckpt)
    assert state["step"] == 5
    model = Tiny(nan_at=7)
    model.load_state_dict(state["model_state"])
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(math.isfinite(v) for v in state["history"]["loss"])
    assert not [p for p in tmp_path.iterdir() if p.name != "nan.pt"]
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written"):
        train(tiny(nan_at=0), DATA, steps=5, **FAST)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    ckpt = tmp_path / "run.pt"
    train(tiny(), DATA, steps=6, checkpoint=ckpt, checkpoint_every=2, **FAST)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary files left
    before = ckpt.read_bytes()

    def crash(obj, fh, *args, **kwargs):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        train(tiny(), DATA, steps=12, checkpoint=ckpt, checkpoint_every=2, **FAST)
    monkeypatch.undo()
    assert ckpt.read_bytes() == before  # the old checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
    assert load_checkpoint(ckpt)["step"] == 6
    atomic_save({"x": torch.ones(2)}, tmp_path / "new" / "deep" / "file.pt")  # makes folders
    assert torch.load(tmp_path / "new" / "deep" / "file.pt", weights_only=True)["x"].sum() == 2


def test_a_finished_checkpoint_is_loaded_not_retrained(tmp_path):
    ckpt = tmp_path / "done.pt"
    first = train(tiny(), DATA, steps=8, checkpoint=ckpt, **FAST)
    model = tiny(seed=42)

    def no_training(*args, **kwargs):
        raise AssertionError("training_step must not run")

    model.training_step = no_training
    again = train(model, DATA, steps=8, checkpoint=ckpt, **FAST)
    assert again.resumed_from == 8 and same_weights(again.model, first.model)
    assert dict(again.history) == dict(first.history)
    with pytest.raises(ValueError, match="at step 8, beyond the 5 steps"):
        train(tiny(), DATA, steps=5, checkpoint=ckpt, **FAST)
    with pytest.raises(ValueError, match="holds tiny_test_model.*dim=3.*but the model is tiny_test_model.*dim=4"):
        train(Tiny(dim=4), torch.randn(10, 4), steps=8, checkpoint=ckpt, **FAST)
    # resume=False trains from scratch and overwrites
    fresh = train(tiny(seed=1), DATA, steps=3, checkpoint=ckpt, resume=False, **FAST)
    assert fresh.resumed_from == 0 and load_checkpoint(ckpt)["step"] == 3


def test_unsafe_or_foreign_files_are_refused(tmp_path):
    marker = tmp_path / "ran.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"format": "course_lib.checkpoint/1", "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable course checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a course_lib checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable course checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    auto = choose_device("auto")
    assert choose_device(None) == auto
    if expected:
        assert auto.type == expected
    elif not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        assert auto == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'nonsense'.*'auto', 'cpu', 'cuda'"):
        choose_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda:0")
    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        with pytest.raises(ValueError, match="MPS is not available"):
            choose_device("mps")
    with pytest.raises(ValueError, match="unsupported device 'meta'"):
        choose_device("meta")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"steps": -1}, ValueError, "steps must be a non-negative integer"),
    ({"steps": 2.5}, ValueError, "steps must be a non-negative integer"),
    ({"steps": 2, "batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
    ({"steps": 2, "batch_size": 2.5}, ValueError, "batch_size must be an integer >= 1, got 2.5"),
    ({"steps": 2, "lr": 0.0}, ValueError, "lr must be a positive number"),
    ({"steps": 2, "lr": float("nan")}, ValueError, "lr must be a positive number"),
    ({"steps": 2, "seed": 1.5}, ValueError, "seed must be an integer >= 0"),
    ({"steps": 2, "seed": -1}, ValueError, "seed must be an integer >= 0"),
])
def test_bad_training_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        train(tiny(), DATA, progress=False, **kwargs)


def test_data_of_the_wrong_kind():
    with pytest.raises(TypeError, match="DSprites, a tensor of samples, or a sampler.*list"):
        train(tiny(), [[1.0, 2.0, 3.0]], steps=1, device="cpu", progress=False)


def test_seed_everything_is_repeatable():
    seed_everything(4)
    a = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    seed_everything(4)
    b = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_train_benchmark_prints_both_speeds_and_their_ratio(capsys):
    from course_lib.cli import bench

    threads = torch.get_num_threads()
    try:
        assert bench.main(["train", "--steps", "1", "--batch-size", "2", "--repeats", "1", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "bare loop" in out and "course_lib.train" in out and "ratio train / bare" in out


# -- long runs: stop, resume elsewhere, settings that must not change ------------------------
def test_stop_at_then_resume_equals_an_uninterrupted_run(tmp_path):
    full = train(tiny(), DATA, steps=12, log_every=3, seed=2, **FAST)
    ckpt = tmp_path / "long.pt"
    seen = []
    part = train(tiny(), DATA, steps=12, log_every=3, seed=2, checkpoint=ckpt, stop_at=7,
                 checkpoint_extra=lambda step, seconds: {"step": step, "ok": seconds >= 0}, **FAST)
    assert not part.finished and part.steps == 7 and load_checkpoint(ckpt)["step"] == 7
    assert load_checkpoint(ckpt)["extra"] == {"step": 7, "ok": True}
    rest = train(tiny(seed=5), DATA, steps=12, log_every=3, seed=2, checkpoint=ckpt,
                 callbacks=[lambda step, terms, model: seen.append(step)], **FAST)
    assert rest.finished and rest.resumed_from == 7 and rest.extra["resumed_extra"]["step"] == 7
    assert same_weights(rest.model, full.model)
    assert dict(rest.history) == dict(full.history) and seen == [9, 12]


def test_time_limit_stops_and_saves(tmp_path):
    ckpt = tmp_path / "timed.pt"
    part = train(tiny(), DATA, steps=10_000, checkpoint=ckpt, time_limit=1e-9, **FAST)
    assert not part.finished and part.steps == 1 and load_checkpoint(ckpt)["step"] == 1
    with pytest.raises(ValueError, match="need a checkpoint path"):
        train(tiny(), DATA, steps=5, stop_at=2, **FAST)
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        train(tiny(), DATA, steps=5, checkpoint=ckpt, time_limit=0, **FAST)
    for bad in ({"stop_at": -1}, {"stop_at": 2.5}, {"checkpoint_every": 0},
                {"checkpoint_every": 1.5}, {"log_every": -2}):
        with pytest.raises(ValueError, match="must be a"):
            train(tiny(), DATA, steps=5, checkpoint=ckpt, **bad, **FAST)


def test_sigterm_in_stop_on_signals_saves_the_current_step_and_resumes_exactly(tmp_path):
    """`pretrain` runs inside stop_on_signals: a SIGTERM (or Ctrl-C) mid-run saves the state at
    the step it reached, between two periodic checkpoints, and the run resumes from there."""
    import os
    import signal

    from course_lib.train import stop_on_signals

    full = train(tiny(), DATA, steps=12, log_every=1, seed=4, **FAST)
    ckpt = tmp_path / "signalled.pt"

    def terminate_at_5(step, terms, model):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        part = train(tiny(), DATA, steps=12, log_every=1, seed=4, checkpoint=ckpt, checkpoint_every=10,
                     callbacks=[terminate_at_5], **FAST)
    assert not part.finished and part.steps == 5 and load_checkpoint(ckpt)["step"] == 5
    assert signal.getsignal(signal.SIGTERM) is before  # the old handler is back
    rest = train(tiny(), DATA, steps=12, log_every=1, seed=4, checkpoint=ckpt, **FAST)  # the flag is clear
    assert rest.finished and rest.resumed_from == 5
    assert same_weights(rest.model, full.model) and dict(rest.history) == dict(full.history)


@pytest.mark.parametrize("change", [{"lr": 5e-3}, {"seed": 1}, {"batch_size": 4}])
def test_resuming_with_other_settings_is_an_error(tmp_path, change):
    ckpt = tmp_path / "run.pt"
    settings = dict(FAST, seed=0)
    train(tiny(), DATA, steps=6, checkpoint=ckpt, stop_at=3, **settings)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"was trained with {name}="):
        train(tiny(), DATA, steps=6, checkpoint=ckpt, **{**settings, **change})
    train(tiny(), DATA, steps=6, checkpoint=ckpt, **settings)  # finished with the same settings
    with pytest.raises(ValueError, match=f"was trained with {name}="):  # and loading it too
        train(tiny(), DATA, steps=6, checkpoint=ckpt, **{**settings, **change})
    more = train(tiny(), DATA, steps=9, checkpoint=ckpt, **settings)  # more steps are allowed
    assert more.resumed_from == 6 and more.steps == 9


def test_nan_guard_on_the_deferred_device_path_never_saves_nan_weights(tmp_path, monkeypatch):
    # CUDA and MPS check the loss only at logs; checkpoints between logs must still be finite
    import course_lib.train as train_module

    monkeypatch.setattr(train_module, "defers_finite_check", lambda device: True)
    ckpt = tmp_path / "nan.pt"
    with pytest.raises(NonFiniteLossError, match="between steps 0 and 4.*last good checkpoint .*was kept"):
        train(tiny(nan_at=3), DATA, steps=40, log_every=10, checkpoint=ckpt, checkpoint_every=2, **FAST)
    state = load_checkpoint(ckpt)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model_state"].values())


def _flip_a_byte_inside_the_largest_tensor(path):
    """Flip one byte in the data of the largest tensor record of a torch.save zip file."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_a_flipped_byte_inside_a_tensor_is_detected(tmp_path):
    ckpt = tmp_path / "run.pt"
    train(tiny(dim=16), torch.randn(64, 16), steps=4, checkpoint=ckpt, **FAST)
    before = load_checkpoint(ckpt)
    assert len(before["checksum"]) == 64
    _flip_a_byte_inside_the_largest_tensor(ckpt)
    raw = torch.load(ckpt, weights_only=True)  # torch itself reads the changed file silently

    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            return [obj]
        if isinstance(obj, dict):
            return [t for k in sorted(obj, key=repr) for t in tensors(obj[k])]
        if isinstance(obj, (list, tuple)):
            return [t for item in obj for t in tensors(item)]
        return []

    assert sum(not torch.equal(a, b) for a, b in zip(tensors(raw), tensors(before))) == 1
    with pytest.raises(ValueError, match="is corrupt.*checksum"):
        load_checkpoint(ckpt)
    with pytest.raises(ValueError, match="is corrupt"):
        train(tiny(dim=16), torch.randn(64, 16), steps=8, checkpoint=ckpt, **FAST)


def test_resuming_with_another_log_interval_is_an_error(tmp_path):
    ckpt = tmp_path / "run.pt"
    train(tiny(), DATA, steps=12, log_every=3, checkpoint=ckpt, stop_at=5, seed=0, **FAST)
    with pytest.raises(ValueError, match="log_every=3 \\(asked for 4\\).*passes log_every explicitly"):
        train(tiny(), DATA, steps=12, log_every=4, checkpoint=ckpt, seed=0, **FAST)
    rest = train(tiny(), DATA, steps=12, log_every=3, checkpoint=ckpt, seed=0, **FAST)
    assert rest.history["step"] == [3, 6, 9, 12]


def test_atomic_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    from course_lib.train import atomic_write, atomic_write_text

    path = tmp_path / "notes.json"
    atomic_write_text(path, "old\n")

    def fails_half_way(fh):
        fh.write(b"new, half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fails_half_way)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]


def test_headless_runs_draw_no_progress_bar(monkeypatch, capsys):
    """`course_lib run` sets COURSE_NO_PROGRESS: a saved notebook would keep a bar as first drawn."""
    from course_lib.config import NO_PROGRESS_VAR

    opts = {**FAST, "progress": True}
    for value, drawn in ((None, True), ("0", True), ("1", False)):
        if value is None:
            monkeypatch.delenv(NO_PROGRESS_VAR, raising=False)
        else:
            monkeypatch.setenv(NO_PROGRESS_VAR, value)
        train(tiny(), DATA, steps=20, **opts)
        err = capsys.readouterr().err
        assert ("Tiny" in err) == drawn, (value, err)   # tqdm writes the bar, labelled Tiny, to stderr
