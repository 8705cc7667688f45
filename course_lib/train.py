"""One training loop for every model of the course.

``train(model, data, steps=...)`` picks the device, seeds everything, draws batches from
``data`` on the device, calls ``model.training_step`` (which owns the losses and the
optimiser steps), keeps a history of every logged term, writes atomic checkpoints, resumes
exactly where a checkpoint stopped, and stops with a clear message when a loss turns NaN/inf
(the last good checkpoint is kept).

A checkpoint that already reached ``steps`` is simply loaded: calling ``train`` again with the
same ``checkpoint`` path is "load if present, else train".
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .models.base import MODELS, CourseModel, build_model

CHECKPOINT_FORMAT = "course_lib.checkpoint/1"


class NonFiniteLossError(RuntimeError):
    """A logged loss became NaN or infinite."""


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


# -- checkpoints ---------------------------------------------------------------------------
def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


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
    return state


def checkpoint_state(model, optimizers, step, history, generator, train_config, pending=None) -> dict:
    """Everything needed to continue a run exactly: weights, optimiser states, step, history,
    random states, and ``pending`` (the sums of the log window still open at ``step``)."""
    rng = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "format": CHECKPOINT_FORMAT,
        "model_name": model.model_name,
        "model_config": model.config(),
        "model_state": model.state_dict(),
        "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
        "step": int(step),
        "history": {k: list(v) for k, v in history.items()},
        "rng": rng,
        "train": dict(train_config),
        "pending": dict(pending or {}),
    }


def _describe(name, config):
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in sorted(config.items())) + ")"


def load_into(model: CourseModel, state: dict, source="checkpoint") -> CourseModel:
    """Load a checkpoint's weights into ``model``, with a clear error on another architecture."""
    name, config = state["model_name"], state["model_config"]
    if name != model.model_name or config != model.config():
        raise ValueError(
            f"{source} holds {_describe(name, config)} but the model is "
            f"{_describe(model.model_name, model.config())}: build the same model, or use load_model()"
        )
    model.load_state_dict(state["model_state"])
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
def _as_sampler(data, device):
    from .data import DSprites, TensorSampler

    if isinstance(data, DSprites):
        return data.sampler(device)
    if isinstance(data, torch.Tensor):
        return TensorSampler(data, device)
    if not hasattr(data, "sample"):
        raise TypeError(
            "data must be a DSprites, a tensor of samples, or a sampler with .sample(n, generator); "
            f"got {type(data).__name__}"
        )
    return data


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    return type(batch)(_to_device(b, device) for b in batch)


def check_train_args(steps, batch_size, lr) -> None:
    """Clear errors for a step count, batch size or learning rate that cannot train."""
    if steps < 0 or int(steps) != steps:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")


def train(model: CourseModel, data, *, steps: int, batch_size: int = 64, lr: float = 1e-4,
          seed: int = 0, device=None, log_every: int | None = None,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
          resume: bool = True, progress: bool = True, callbacks=()) -> TrainResult:
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
    Returns:
        :class:`TrainResult` with the model (in train mode), its history and timings.
    """
    check_train_args(steps, batch_size, lr)
    steps = int(steps)
    log_every = int(log_every or max(1, steps // 100))
    device = choose_device(device)
    model.to(device)
    sampler = _as_sampler(data, device)
    sample_device = getattr(sampler, "device", device)
    seed_everything(seed)
    generator = torch.Generator(device=sample_device).manual_seed(seed)
    optimizers = model.configure_optimizers(lr)
    history, start = History(), 0
    train_config = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}

    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        load_into(model, state, source=str(ckpt_path))
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        history = History(state["history"])
        start = state["step"]
        torch.set_rng_state(state["rng"]["torch"].cpu())
        generator.set_state(state["rng"]["data"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        if start > steps:
            raise ValueError(f"checkpoint {ckpt_path} is at step {start}, beyond the {steps} steps asked for")

    def save(step):
        if ckpt_path is not None:
            pending = {"sums": sums, "count": count, "window_start": window_start}
            atomic_save(checkpoint_state(model, optimizers, step, history, generator, train_config, pending),
                        ckpt_path)

    if start < steps:
        model.on_train_start(steps)
    model.train()
    sums: dict = {}
    count, window_start = 0, start
    if start:  # the log window that was open when the checkpoint was written
        pending = state.get("pending") or {}
        sums = {k: v.to(device) for k, v in pending.get("sums", {}).items()}
        count, window_start = int(pending.get("count", 0)), int(pending.get("window_start", start))
    check_every_step = device.type == "cpu"
    bar = None
    if progress and start < steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=type(model).__name__, leave=False, mininterval=0.5)
    t0 = time.perf_counter()
    step = start
    try:
        for step in range(start + 1, steps + 1):
            x = _to_device(sampler.sample(batch_size, generator), device)
            terms = model.training_step(x, step - 1, optimizers)
            loss = terms["loss"]
            if check_every_step and not math.isfinite(float(loss)):
                _non_finite(step, window_start, ckpt_path, history)
            for key, value in terms.items():
                sums[key] = sums[key] + value if key in sums else value.clone()
            count += 1
            if step % log_every == 0 or step == steps:
                means = {k: (v / count).detach().cpu() for k, v in sums.items()}
                if not torch.isfinite(means["loss"]).all():
                    _non_finite(step, window_start, ckpt_path, history)
                history.append(step, means)
                for fn in callbacks:
                    fn(step, means, model)
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{float(means['loss']):.4g}", refresh=False)
                sums, count, window_start = {}, 0, step
            if checkpoint_every and step % checkpoint_every == 0 and step != steps:
                save(step)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if start < steps:
        save(steps)
    done = steps - start
    return TrainResult(
        model=model, history=history, steps=steps, seconds=seconds,
        images_per_second=done * batch_size / seconds if done and seconds > 0 else float("nan"),
        device=str(device), checkpoint=str(ckpt_path) if ckpt_path else None, resumed_from=start,
    )


def _non_finite(step, window_start, ckpt_path, history):
    kept = (f"the last good checkpoint {ckpt_path} was kept" if ckpt_path and ckpt_path.exists()
            else "no checkpoint was written")
    raise NonFiniteLossError(
        f"the loss became NaN or infinite between steps {window_start} and {step}; training stopped "
        f"and {kept}. Try a smaller learning rate, or check the model's inputs."
    )
