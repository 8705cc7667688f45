"""One training loop for every model of the course.

``train(model, data, steps=...)`` picks the device, seeds everything, draws batches from
``data`` on the device, calls ``model.training_step`` (which owns the losses and the
optimiser steps), keeps a history of every logged term, writes atomic checkpoints, resumes
exactly where a checkpoint stopped, and stops with a clear message when a loss turns NaN/inf
(the last good checkpoint is kept).

A checkpoint that already reached ``steps`` is simply loaded: calling ``train`` again with the
same ``checkpoint`` path is "load if present, else train". :func:`fit` adds the one naming rule
that every notebook uses: the checkpoint's name is derived from the run's configuration, so
the same configuration finds its finished run under ``runs/checkpoints/`` and any other trains.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import NO_PROGRESS_VAR  # set by `course_lib run` (headless): no progress bars
from .models.base import MODELS, CourseModel, build_model

CHECKPOINT_FORMAT = "course_lib.checkpoint/1"


class NonFiniteLossError(RuntimeError):
    """A logged loss became NaN or infinite."""


class TrainingStopped(RuntimeError):
    """A run that another one needs (a step-1 model) stopped before its end: it is saved, and
    nothing is built on its unfinished weights."""


def choose_device(name: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA if available, then Apple's MPS, then the CPU; else the named device."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {name!r}: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here; use 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} was asked for but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                     and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} was asked for but Apple's MPS is not available here; "
                         f"use 'cpu' or 'auto'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class History(dict):
    """Logged terms: ``history["step"]`` (list of ints) and one list per term.

    Scalar terms are floats, vector terms (e.g. ``kl_per_latent``) lists of floats; each value
    is the mean over the steps since the previous log.
    """

    def append(self, step: int, terms: dict) -> None:
        self.setdefault("step", []).append(int(step))
        for key, value in terms.items():
            value = value.tolist() if isinstance(value, torch.Tensor) else value
            self.setdefault(key, []).append(value)

    def array(self, key: str) -> np.ndarray:
        """The logged values of ``key`` as an array (steps × ... )."""
        if key not in self:
            raise KeyError(f"{key!r} was not logged; logged terms: {sorted(self)}")
        return np.asarray(self[key], dtype=float)

    def last(self, key: str):
        return self[key][-1]


@dataclass
class TrainResult:
    model: CourseModel
    history: History
    steps: int
    seconds: float = 0.0
    images_per_second: float = float("nan")
    device: str = "cpu"
    checkpoint: str | None = None
    resumed_from: int = 0
    extra: dict = field(default_factory=dict)
    finished: bool = True
    """False when the run stopped early (``stop_at`` or ``time_limit``) and can be resumed."""


# -- checkpoints ---------------------------------------------------------------------------
def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (where the system allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(fh)`` on a temporary file of this process in ``path``'s folder, flush it to
    disk, then rename it over ``path``: a crash or a full disk leaves the old file whole, and
    two processes writing the same path never share a temporary file. The temporary file is
    removed if anything fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never a partial file."""
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a course checkpoint safely (``weights_only=True``: no code runs) and check its format."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated zip, foreign objects
        raise ValueError(f"{path} is not a readable course checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a course_lib checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    if "checksum" in state and state_digest(state) != state["checksum"]:
        raise ValueError(f"{path} is corrupt: its contents do not match the checksum written with "
                         f"them (a changed byte inside a tensor?); delete it and train again, or "
                         f"restore it from a copy")
    return state


def state_digest(state: dict) -> str:
    """sha256 of everything in a checkpoint but its ``"checksum"``: every tensor's dtype, shape
    and bytes, and every other value's repr, walked in key order. Written with each checkpoint
    and checked on load, so that a flipped byte inside a tensor is an error, not a silent change
    (``torch.load`` itself does not notice)."""
    h = hashlib.sha256()

    def walk(obj):
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            h.update(b"{")
            for key in sorted(obj, key=repr):
                if obj is state and key == "checksum":
                    continue
                h.update(repr(key).encode())
                walk(obj[key])
            h.update(b"}")
        elif isinstance(obj, (list, tuple)):
            h.update(b"[")
            for item in obj:
                walk(item)
            h.update(b"]")
        else:
            h.update(repr(obj).encode())

    walk(state)
    return h.hexdigest()


def with_checksum(state: dict) -> dict:
    """``state`` with its :func:`state_digest` under ``"checksum"``."""
    state["checksum"] = state_digest(state)
    return state


def checkpoint_state(model, optimizers, step, history, generator, train_config, pending=None,
                     extra=None, rng=None) -> dict:
    """Everything needed to continue a run exactly: weights, optimiser states (optimisers or
    their state dicts), step, history, random states, ``pending`` (the sums of the log window
    still open at ``step``) and ``extra`` (the caller's own record, e.g. the wall time of every
    segment of a long run). ``rng``: the random states to record, when they are not the global
    generators and ``generator`` (the data's)."""
    model_device = _device_of(model)
    if rng is None:
        # the devices are recorded: a random state continues only on the device type it was drawn on
        rng = {"torch": torch.get_rng_state(), "data": generator.get_state(),
               "data_device": str(generator.device), "model_device": str(model_device)}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        if model_device.type == "mps":
            rng["mps"] = torch.mps.get_rng_state()
    state = {
        "format": CHECKPOINT_FORMAT,
        "model_name": model.model_name,
        "model_config": model.config(),
        "model_state": model.state_dict(),
        "optimizers": {k: opt if isinstance(opt, dict) else opt.state_dict() for k, opt in optimizers.items()},
        "step": int(step),
        "history": {k: list(v) for k, v in history.items()},
        "rng": rng,
        "train": dict(train_config),
        "pending": dict(pending or {}),
        "extra": dict(extra or {}),
    }
    return with_checksum(state)


def _device_of(model) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class RandomStateWarning(UserWarning):
    """A checkpoint's random state cannot continue here (it was drawn on another device type):
    the run goes on from reseeded generators."""


def restore_generator(generator: torch.Generator, state: torch.Tensor, saved_device=None) -> bool:
    """Set ``generator`` to a saved ``state``; False, leaving it unchanged, when the state was
    drawn on another device type (``saved_device``, when recorded) or does not fit it (a CUDA
    generator's state is 16 bytes, a CPU generator's 5,056: the size tells them apart in
    checkpoints that did not record the device)."""
    if saved_device is not None and torch.device(saved_device).type != generator.device.type:
        return False
    state = state.detach().cpu()
    if state.dtype != torch.uint8 or state.numel() != generator.get_state().numel():
        return False
    try:
        generator.set_state(state)
    except RuntimeError:
        return False
    return True


def restore_rng(rng: dict, generator: torch.Generator, device, *, seed: int, step: int,
                source) -> bool:
    """Continue the random streams of a checkpoint at ``step``: the data ``generator``, torch's
    global CPU generator and, on a GPU, the global generator of the device (the
    reparameterisation noise). Called only when a run continues (a finished run is just loaded).

    Random streams are not portable across device types (CPU, CUDA and MPS generators are
    different algorithms). When the checkpoint was written on another device type, or lacks
    the state of this device, every generator is reseeded from ``(seed, step)`` instead, with
    a :class:`RandomStateWarning`: the continued run is reproducible, but it is not the run an
    uninterrupted training on the first device would have given. Returns True when the
    streams continue exactly.
    """
    device = torch.device(device)
    problems = []
    model_device = rng.get("model_device")
    if model_device is not None and torch.device(model_device).type != device.type:
        problems.append(f"its model trained on {model_device}, this run on {device}")
    if not restore_generator(generator, rng["data"], rng.get("data_device")):
        problems.append(f"its data generator drew on {rng.get('data_device') or 'another device type'}, "
                        f"this one draws on {generator.device}")
    if not problems:
        try:
            torch.set_rng_state(rng["torch"].detach().cpu())
        except RuntimeError:
            problems.append("its CPU random state does not fit this version of torch")
    if not problems and device.type == "cuda":
        saved = rng.get("cuda") or []
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index < len(saved):
            for i, s in enumerate(saved[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s.detach().cpu(), i)
        else:
            problems.append(f"it holds no random state of {device}")
    if not problems and device.type == "mps":
        if "mps" in rng:
            torch.mps.set_rng_state(rng["mps"].detach().cpu())
        else:
            problems.append("it holds no random state of the MPS device")
    if not problems:
        return True
    derived = (int(seed) * 1_000_003 + int(step)) % 2**63
    seed_everything(derived)
    generator.manual_seed(derived)
    warnings.warn(
        f"{source}: the random state of step {step} cannot continue here ({'; '.join(problems)}): "
        f"random streams differ between device types, so the generators were reseeded from "
        f"seed {seed} and step {step}. The continued run is reproducible on this device, but it "
        f"is not the run an uninterrupted training would have given.", RandomStateWarning,
        stacklevel=3)
    return False


def _describe(name, config):
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in sorted(config.items())) + ")"


def in_parts(key: str, parts) -> bool:
    """Whether state-dict ``key`` belongs to one of the submodules named in ``parts``."""
    return any(key.startswith(part + ".") for part in parts)


def load_into(model: CourseModel, state: dict, source="checkpoint") -> CourseModel:
    """Load a checkpoint's weights into ``model``, with a clear error on another architecture.

    A shipped checkpoint may leave out the parts that the model needs only to train (its
    ``"omitted"`` list, e.g. ``["discriminator"]``): those keep their fresh initialisation and
    are named in ``model.untrained_parts``; every other weight must be present.
    """
    name, config = state["model_name"], state["model_config"]
    if name != model.model_name or config != model.config():
        raise ValueError(
            f"{source} holds {_describe(name, config)} but the model is "
            f"{_describe(model.model_name, model.config())}: build the same model, or use load_model()"
        )
    omitted = tuple(state.get("omitted", ()))
    unknown = [part for part in omitted if part not in getattr(model, "training_only", ())]
    if unknown:
        raise ValueError(f"{source} leaves out {unknown}, which {type(model).__name__} needs "
                         f"beyond training (it may leave out only {list(model.training_only)})")
    missing, unexpected = model.load_state_dict(state["model_state"], strict=not omitted)
    missing = [k for k in missing if not in_parts(k, omitted)]
    if missing or unexpected:
        raise RuntimeError(f"{source} does not fit {type(model).__name__}: missing weights "
                           f"{missing[:5]}, unexpected weights {unexpected[:5]}")
    model.untrained_parts = omitted
    return model


def load_model(path: str | os.PathLike, device=None, expected: type | tuple | None = None) -> CourseModel:
    """Rebuild the model stored in a checkpoint (in eval mode, on ``device``).

    Args:
        expected: optional class (or tuple) the model must be an instance of, e.g. ``VAE``.
    """
    state = load_checkpoint(path)
    if state["model_name"] not in MODELS:
        raise ValueError(f"{path} holds an unknown model {state['model_name']!r}; known: {sorted(MODELS)}")
    model = build_model(state["model_name"], **state["model_config"])
    if expected is not None and not isinstance(model, expected):
        names = expected.__name__ if isinstance(expected, type) else [c.__name__ for c in expected]
        raise ValueError(f"{path} holds a {type(model).__name__}, expected {names}")
    load_into(model, state, source=str(path))
    return model.to(choose_device(device)).eval()


# -- the loop ------------------------------------------------------------------------------
def as_sampler(data, device):
    """A sampler with ``sample(n, generator)`` on ``device`` for ``data`` (a ``DSprites``, a tensor
    of samples, or a sampler, moved to ``device`` when it can be)."""
    from .data import DSprites, TensorSampler, sampler_on

    if isinstance(data, DSprites):
        return data.sampler(device)
    if isinstance(data, torch.Tensor):
        return TensorSampler(data, device)
    if not hasattr(data, "sample"):
        raise TypeError(
            "data must be a DSprites, a tensor of samples, or a sampler with .sample(n, generator); "
            f"got {type(data).__name__}"
        )
    return sampler_on(data, device)  # moved to the training device (or a warning)


def to_device(batch, device):
    """A batch (a tensor or a tuple of tensors) on ``device``, copied only when needed."""
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    return type(batch)(to_device(b, device) for b in batch)


def check_train_args(steps, batch_size, lr) -> None:
    """Clear errors for a step count, batch size or learning rate that cannot train."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Real) or steps < 0 or int(steps) != steps:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Real) or batch_size < 1
            or int(batch_size) != batch_size):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")


def defers_finite_check(device: torch.device) -> bool:
    """True where reading the loss back every step would stall the device (CUDA, MPS): there
    the loss is checked at each log and before each checkpoint, on the summed window."""
    return torch.device(device).type != "cpu"


class LogWindow:
    """The sums of every logged term since the last log; the history records their means.

    ``state()`` is what a checkpoint keeps of an open window (so a run resumed between two logs
    logs the same means as an uninterrupted one); ``LogWindow.resume(state, start, device)``
    reopens it."""

    def __init__(self, start: int, sums: dict | None = None, count: int = 0):
        self.start, self.sums, self.count = int(start), dict(sums or {}), int(count)

    @classmethod
    def resume(cls, pending: dict | None, start: int, device) -> LogWindow:
        pending = pending or {}
        return cls(int(pending.get("window_start", start)),
                   {k: v.to(device) for k, v in pending.get("sums", {}).items()}, int(pending.get("count", 0)))

    def add(self, terms: dict) -> None:
        for key, value in terms.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1

    def finite(self) -> bool:
        """Whether the summed loss of the window is finite (True for an empty window)."""
        return not self.count or bool(torch.isfinite(self.sums["loss"]).all())

    def close(self, step: int) -> dict:
        """The means of the window (detached, on the CPU), and a new window from ``step``."""
        means = {k: (v / self.count).detach().cpu() for k, v in self.sums.items()}
        self.start, self.sums, self.count = int(step), {}, 0
        return means

    def state(self, index: int | None = None) -> dict:
        """What a checkpoint keeps; ``index``: the part of copy ``index`` of stacked sums."""
        sums = self.sums if index is None else {k: v[index] if v.dim() > 0 else v for k, v in self.sums.items()}
        return {"sums": sums, "count": self.count, "window_start": self.start}


#: Set by :func:`request_stop`: the running loop stops after its current step and saves.
_STOP = {"requested": False}


def request_stop(signum=None, frame=None) -> None:
    """Ask the training loop that is running to stop after its current step, save its state
    and return an unfinished result (resumable). Usable as a signal handler: see
    :func:`stop_on_signals`."""
    _STOP["requested"] = True


@contextlib.contextmanager
def stop_on_signals(*signums):
    """Within the block, SIGTERM and SIGINT (or ``signums``) stop training gracefully
    (:func:`request_stop`) instead of killing the process between two checkpoints; the old
    handlers and a clear flag are restored on exit. Only in the main thread (signal handlers
    can only be installed there); elsewhere the block runs unchanged."""
    import signal
    import threading

    signums = signums or (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, request_stop) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _STOP["requested"] = False


def run_steps(step_fn, *, start: int, steps: int, end: int, window: LogWindow, log_every: int,
              on_log, save, non_finite, checkpoint_every: int | None = None, time_limit: float | None = None,
              check_every_step: bool = True, progress: str | None = None) -> tuple[int, float]:
    """The one training loop, for :func:`train` and :func:`course_lib.multiseed.train_many`.

    For ``step`` = start + 1 … end: ``terms = step_fn(step)`` (one update; ``terms["loss"]`` a
    tensor, one value per copy where several are trained at once), the loss checked (every step
    where ``check_every_step``, else at every log and before every save), the terms summed in
    ``window``; every ``log_every`` steps and at ``steps`` ``on_log(step, means)``; every
    ``checkpoint_every`` steps (but the last) ``save(step)``; a stop after the first step past
    ``time_limit`` seconds, or after a :func:`request_stop` (a signal in :func:`stop_on_signals`).
    ``non_finite(step, window_start, losses)`` raises (``losses``: the
    loss, or the window's summed loss, that is not finite). ``progress``: the label of
    a progress bar, or None. Returns (the last step done, the seconds it took).
    """
    bar = None
    if os.environ.get(NO_PROGRESS_VAR, "") not in ("", "0"):
        progress = None
    if progress is not None and start < steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=progress, leave=False, mininterval=0.5)
    t0 = time.perf_counter()
    step = start
    try:
        for step in range(start + 1, end + 1):
            terms = step_fn(step)
            if check_every_step and not bool(torch.isfinite(terms["loss"]).all()):
                non_finite(step, window.start, terms["loss"])
            window.add(terms)
            if step % log_every == 0 or step == steps:
                if not window.finite():
                    non_finite(step, window.start, window.sums["loss"])
                means = window.close(step)
                on_log(step, means)
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{float(means['loss'].float().mean()):.4g}", refresh=False)
            if checkpoint_every and step % checkpoint_every == 0 and step != steps:
                save(step)
            if step < steps and (_STOP["requested"] or
                                 (time_limit is not None and time.perf_counter() - t0 > time_limit)):
                break
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if step > start and not (checkpoint_every and step % checkpoint_every == 0 and step != steps):
        save(step)
    return step, seconds


#: Settings that change a run's result: resuming a checkpoint with other values is an error.
RESULT_KEYS = ("batch_size", "lr", "seed", "log_every")


def check_same_run(saved: dict, wanted: dict, source) -> None:
    """ValueError if a checkpoint's training settings differ from the run asked for.

    ``steps`` may differ (a run may be continued to more steps); batch size, learning rate,
    seed and the log interval may not: the checkpoint would record values that the continued
    run did not use, or a history whose entries average different numbers of steps. (A key
    that the checkpoint does not hold, as ``log_every`` in files written before it was saved,
    is not compared.)
    """
    diff = [f"{k}={saved[k]!r} (asked for {wanted[k]!r})" for k in RESULT_KEYS
            if k in saved and saved[k] != wanted[k]]
    if diff:
        raise ValueError(f"{source} was trained with {', '.join(diff)}: continue it with the same "
                         f"settings (the log interval too: it defaults to steps // 100, so a run "
                         f"continued to more steps passes log_every explicitly), or pass "
                         f"resume=False (or another checkpoint path) to start anew")


def train(model: CourseModel, data, *, steps: int, batch_size: int = 64, lr: float = 1e-4,
          seed: int = 0, device=None, log_every: int | None = None,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
          resume: bool = True, progress: bool = True, callbacks=(), stop_at: int | None = None,
          time_limit: float | None = None, checkpoint_extra=None) -> TrainResult:
    """Train ``model`` for ``steps`` updates on batches drawn from ``data``.

    Args:
        model: any :class:`CourseModel`.
        data: a ``DSprites``, a tensor (random rows are drawn), or a sampler with
            ``sample(n, generator)``; batches are moved to the device if needed.
        steps: total number of updates (also when resuming: the run ends at ``steps``).
        seed: seeds torch's global generator (reparameterisation noise) and the data generator.
        device: "auto"/None (CUDA, then MPS, then CPU), or a device name.
        log_every: log the mean of every term over this many steps (default: about 100 logs).
        checkpoint: path of the checkpoint; with ``resume`` an existing one is continued (or
            just loaded if it already reached ``steps``).
        checkpoint_every: also save every this many steps (default: only at the end).
        callbacks: functions ``f(step, terms, model)`` called at every log (terms: means).
        stop_at: stop (and save) after this step although the run has ``steps``: resuming the
            checkpoint later continues exactly as if the run had not stopped.
        time_limit: stop (and save) after the first step that ends past this many seconds.
        checkpoint_extra: optional function ``f(step, seconds) -> dict`` whose result is saved
            in every checkpoint as ``"extra"`` (``seconds``: this call's training time so far);
            the extra of the checkpoint resumed from is in ``result.extra["resumed_extra"]``.
    Returns:
        :class:`TrainResult` with the model (in train mode), its history and timings;
        ``finished`` is False when ``stop_at`` or ``time_limit`` ended the run early.

    A checkpoint is only ever written from weights whose loss was finite at every step since
    the last check, on every device.
    """
    check_train_args(steps, batch_size, lr)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    steps, batch_size, seed = int(steps), int(batch_size), int(seed)
    if stop_at is not None and (int(stop_at) != stop_at or stop_at < 0):
        raise ValueError(f"stop_at must be a non-negative integer step, got {stop_at!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    if checkpoint_every is not None and (int(checkpoint_every) != checkpoint_every or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if log_every is not None and (int(log_every) != log_every or log_every < 1):
        raise ValueError(f"log_every must be a positive integer, got {log_every!r}")
    if (stop_at is not None or time_limit is not None) and checkpoint is None:
        raise ValueError("stop_at and time_limit need a checkpoint path to save the unfinished run to")
    log_every = int(log_every or max(1, steps // 100))
    device = choose_device(device)
    model.to(device)
    sampler = as_sampler(data, device)
    sample_device = getattr(sampler, "device", device)
    seed_everything(seed)
    generator = torch.Generator(device=sample_device).manual_seed(seed)
    optimizers = model.configure_optimizers(lr)
    history, start = History(), 0
    train_config = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "log_every": log_every}

    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    resumed_extra = {}
    if ckpt_path is not None and resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        check_same_run(state.get("train", {}), train_config, ckpt_path)
        start = state["step"]
        if start > steps:  # refused before anything is loaded into the caller's model
            raise ValueError(f"checkpoint {ckpt_path} is at step {start}, beyond the {steps} steps asked for")
        load_into(model, state, source=str(ckpt_path))
        resumed_extra = dict(state.get("extra") or {})
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        history = History(state["history"])
        if start < steps:  # only a run that continues needs its random state (any device: see restore_rng)
            restore_rng(state["rng"], generator, device, seed=seed, step=start, source=ckpt_path)

    window = LogWindow(start)
    if start:  # the log window that was open when the checkpoint was written
        window = LogWindow.resume(state.get("pending"), start, device)
    t0 = time.perf_counter()

    def non_finite(step, window_start, losses=None):
        _non_finite(step, window_start, ckpt_path, history)

    def save(step):
        if ckpt_path is None:
            return
        if not window.finite():  # on every device, before writing
            non_finite(step, window.start, window.sums["loss"])
        extra = checkpoint_extra(step, time.perf_counter() - t0) if checkpoint_extra else None
        atomic_save(checkpoint_state(model, optimizers, step, history, generator, train_config,
                                     window.state(), extra), ckpt_path)

    def one_step(step):
        x = to_device(sampler.sample(batch_size, generator), device)
        return model.training_step(x, step - 1, optimizers)

    def on_log(step, means):
        history.append(step, means)
        for fn in callbacks:
            fn(step, means, model)

    if start < steps:
        model.on_train_start(steps)
    model.train()
    end = steps if stop_at is None else max(start, min(steps, int(stop_at)))
    step, seconds = run_steps(one_step, start=start, steps=steps, end=end, window=window, log_every=log_every,
                              on_log=on_log, save=save, non_finite=non_finite, checkpoint_every=checkpoint_every,
                              time_limit=time_limit, check_every_step=not defers_finite_check(device),
                              progress=type(model).__name__ if progress else None)
    done = step - start
    return TrainResult(
        model=model, history=history, steps=step, seconds=seconds,
        images_per_second=done * batch_size / seconds if done and seconds > 0 else float("nan"),
        device=str(device), checkpoint=str(ckpt_path) if ckpt_path else None, resumed_from=start,
        extra={"resumed_extra": resumed_extra} if resumed_extra else {}, finished=step == steps,
    )


def data_key(data) -> str:
    """What the training data is, in a few characters, for run names: the data's own ``key``
    (``dsprites``, ``dsprites:posX<16``, ``ring8-r2-s0.1``, ...), a tensor's shape and a digest
    of its values, or, for a wrapper without a key, its class name around the key of what it
    wraps (its ``sampler``, ``dataset`` or ``data`` attribute)."""
    key = getattr(data, "key", None)
    if isinstance(key, str):
        return key
    if isinstance(data, torch.Tensor):
        values = data.detach().cpu().contiguous()
        digest = hashlib.sha1(values.view(torch.uint8).numpy().tobytes()).hexdigest()[:8]
        return f"tensor{'x'.join(map(str, values.shape))}-{digest}"
    for inner in ("sampler", "dataset", "data"):
        if hasattr(data, inner):
            return f"{type(data).__name__}({data_key(getattr(data, inner))})"
    return type(data).__name__


def _code_bytes(code) -> bytes:
    """The parts of a code object that say what it computes (nested functions included, without
    the memory addresses that their repr would carry)."""
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if hasattr(const, "co_code") else repr(const).encode())
    return b"\x00".join(parts)


def code_fingerprint(functions) -> str | None:
    """12 hex digits over the code of the ``functions`` that are not the library's own (a
    notebook's exercise solutions), or None when there are none: the same source gives the same
    fingerprint in every session (of one Python version), an edited function another."""
    h, outside = hashlib.sha1(), False
    for fn in functions:
        if str(getattr(fn, "__module__", "") or "").split(".")[0] == "course_lib":
            continue
        outside = True
        code = getattr(fn, "__code__", None)
        h.update(_code_bytes(code) if code is not None else repr(getattr(fn, "__qualname__", fn)).encode())
    return h.hexdigest()[:12] if outside else None


def run_name(model: CourseModel, data, *, steps: int, batch_size: int, lr: float, seed: int,
             tag: str | None = None) -> str:
    """The one naming rule of training runs: ``[tag-]<model>-<steps>steps-seed<seed>-<digest>``,
    the digest (10 hex digits) taken over everything else that defines the run: the model's
    config, the data (:func:`data_key`), the batch size, the learning rate and, when the model
    trains with functions from outside the library (``model.exercise_functions``: a
    notebook's exercise solutions), their code (:func:`code_fingerprint`). Two runs share a name
    exactly when they share all of these."""
    described = {"model": model.model_name, "config": model.config(), "data": data_key(data),
                 "steps": int(steps), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed)}
    fingerprint = code_fingerprint(getattr(model, "exercise_functions", ()) or ())
    if fingerprint is not None:  # absent otherwise: the names of library-only runs do not change
        described["code"] = fingerprint
    digest = hashlib.sha1(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:10]
    name = f"{model.model_name}-{int(steps)}steps-seed{int(seed)}-{digest}"
    if tag is not None:
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(tag)).strip("_")
        name = f"{slug}-{name}" if slug else name
    return name


def fit(model: CourseModel, data, *, steps: int, batch_size: int = 64, lr: float = 1e-4, seed: int = 0,
        tag: str | None = None, folder: str | os.PathLike | None = None, **train_options) -> TrainResult:
    """Load the finished run of this configuration if there is one, else train it and save it.

    The checkpoint is ``<folder>/<run_name(...)>.pt`` (:func:`run_name`; ``folder`` defaults to
    ``runs/checkpoints``, see :mod:`course_lib.config`); an unfinished one is continued.
    ``train_options`` go to :func:`train` (``device``, ``log_every``, ``callbacks``,
    ``progress``, ...). ``result.extra["loaded"]`` says whether the run was loaded finished
    (nothing trained in this call); ``result.checkpoint`` is the path.
    """
    from .config import runs_dir

    if "checkpoint" in train_options:
        raise TypeError("fit() names the checkpoint itself (run_name); use train() for a path of your own")
    check_train_args(steps, batch_size, lr)
    name = run_name(model, data, steps=steps, batch_size=batch_size, lr=lr, seed=seed, tag=tag)
    path = Path(folder) if folder is not None else runs_dir() / "checkpoints"
    result = train(model, data, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                   checkpoint=path / f"{name}.pt", **train_options)
    result.extra["loaded"] = result.resumed_from >= int(steps)
    return result


def _non_finite(step, window_start, ckpt_path, history):
    kept = (f"the last good checkpoint {ckpt_path} was kept (to inspect: resuming it with the same "
            f"settings repeats the same steps and the same NaN)" if ckpt_path and ckpt_path.exists()
            else "no checkpoint was written")
    raise NonFiniteLossError(
        f"the loss became NaN or infinite between steps {window_start} and {step}; training stopped "
        f"and {kept}. Start a new run with a smaller learning rate (resume=False; with pretrain, "
        f"-p lr ... makes a run of its own), or check the model's inputs."
    )
