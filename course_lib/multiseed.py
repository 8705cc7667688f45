"""Train several copies of a model at once: one process, one device, batched weights.

``train_many(models, data, seeds=[0, 1, 2, 3], steps=...)`` trains N models of the same
architecture (different initial weights and seeds, and optionally different float
hyperparameters such as β) as if each had been trained alone by :func:`course_lib.train.train`:

- the weights of the N copies are stacked along a new leading dimension
  (``torch.func.stack_module_state``) and one call of ``torch.func.vmap`` over
  ``torch.func.functional_call`` computes all N losses; the gradient of their sum is each
  copy's own gradient, and one Adam step on the stacked tensors is N independent Adam steps
  (Adam works element by element);
- copy i draws its batches from its own data generator seeded with ``seeds[i]`` and its
  reparameterisation noise from its own noise generator seeded with ``seeds[i]``: exactly the
  streams that ``train(model_i, data, seed=seeds[i])`` uses (its data generator, and torch's
  global generator after ``torch.manual_seed(seeds[i])``). So copy i's losses equal those of
  the same model trained alone, up to float rounding (``tests/test_multiseed.py``). On a GPU
  that holds inside :func:`course_lib.models.base.deterministic` (TF32 off, deterministic
  cuDNN); without it the batched and the single convolutions round differently, by about
  1e-3 relative where TF32 is on (Ampere and newer). A data sampler made on another device
  than ``device`` is moved to it (:func:`course_lib.data.sampler_on`);
- every copy has its own :class:`~course_lib.train.History` and its own checkpoint, in the
  format of ``train`` (``load_model`` reads it; ``train`` resumes it).

Hyperparameters that differ between the copies (``config()`` keys such as ``beta``) must be
float attributes of the model of the same name; inside the batched call each copy sees its own
value as a 0-d tensor. Supported: models that use the default ``training_step`` (one optimiser,
``loss_terms``) and draw no random numbers in ``loss_terms`` other than the
reparameterisation noise (the VAE family: VAE, β-VAE, capacity VAE, β-TCVAE). Models with
their own updates (GANs, FactorVAE) are refused with a clear error.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from .models.base import CourseModel
from .train import (
    History,
    LogWindow,
    NonFiniteLossError,
    RandomStateWarning,
    TrainResult,
    as_sampler,
    atomic_save,
    check_same_run,
    check_train_args,
    checkpoint_state,
    choose_device,
    defers_finite_check,
    load_checkpoint,
    load_into,
    restore_generator,
    run_steps,
    to_device,
)


class _LossTerms(nn.Module):
    """``model.loss_terms(x, step, eps=eps)`` with each copy's own noise ε and hyperparameters
    (for vmap): the hyperparameters that differ between the copies are set on the model for the
    call (as 0-d tensors) and restored after it."""

    def __init__(self, model: CourseModel):
        super().__init__()
        self.model = model

    def forward(self, x, eps, hyper: dict, step: int):
        model = self.model
        saved = {name: getattr(model, name) for name in hyper}
        try:
            for name, value in hyper.items():
                object.__setattr__(model, name, value)
            return model.loss_terms(x, step, eps=eps)
        finally:
            for name, value in saved.items():
                object.__setattr__(model, name, value)


def _check_models(models) -> dict[str, list[float]]:
    """Same class and architecture; returns the float hyperparameters that differ."""
    if not isinstance(models, (list, tuple)) or not models:
        raise ValueError("models must be a non-empty list of course models")
    first = models[0]
    for m in models:
        if not isinstance(m, CourseModel):
            raise TypeError(f"every model must be a CourseModel, got {type(m).__name__}")
        if type(m) is not type(first):
            raise ValueError(f"all models must be of one class; got {type(first).__name__} "
                             f"and {type(m).__name__}")
    if type(first).training_step is not CourseModel.training_step:
        raise ValueError(f"{type(first).__name__} has its own training_step (several updates per "
                         "step); train its copies one by one with course_lib.train.train")
    if not hasattr(first, "encode") or "eps" not in inspect.signature(first.loss_terms).parameters:
        raise ValueError(f"{type(first).__name__} is not a VAE-like model whose loss_terms(x, step, eps) "
                         "takes the noise ε; train_many supports the VAE family")
    configs = [m.config() for m in models]
    varying = {}
    for key in configs[0]:
        values = [c[key] for c in configs]
        if all(v == values[0] for v in values):
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) or \
                not all(isinstance(getattr(m, key, None), float) for m in models):
            raise ValueError(
                f"the models differ in {key!r} ({values}); only float hyperparameters stored as "
                "attributes (such as beta) may differ between the copies: the architecture "
                "must be the same")
        varying[key] = [float(v) for v in values]
    return varying


def _slice_optimizer_state(stacked_state: dict, index: int, count: int, template: dict) -> dict:
    """The state dict of copy ``index`` from the state dict of the optimiser on stacked weights."""
    state = {}
    for pid, entry in stacked_state["state"].items():
        state[pid] = {k: (v[index].clone() if isinstance(v, torch.Tensor) and v.dim() > 0
                          and v.shape[0] == count else
                          (v.clone() if isinstance(v, torch.Tensor) else v))
                      for k, v in entry.items()}
    return {"state": state, "param_groups": template["param_groups"]}


def _stack_optimizer_states(states: list[dict], stacked_template: dict) -> dict:
    """Inverse of :func:`_slice_optimizer_state`: per-copy state dicts → stacked state dict."""
    state = {}
    for pid in states[0]["state"]:
        entry = {}
        for key, value in states[0]["state"][pid].items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                entry[key] = torch.stack([s["state"][pid][key] for s in states])
            else:
                entry[key] = value
        state[pid] = entry
    return {"state": state, "param_groups": stacked_template["param_groups"]}


def train_many(models, data, *, seeds, steps: int, batch_size: int = 64, lr: float = 1e-4,
               device=None, log_every: int | None = None, checkpoints=None,
               checkpoint_every: int | None = None, resume: bool = True,
               progress: bool = True) -> list[TrainResult]:
    """Train N copies at once, each as ``train(models[i], data, seed=seeds[i], ...)`` would.

    Args:
        models: N course models of one class and architecture (built by the caller, e.g. with
            ``torch.manual_seed(seed)`` before each); their weights are updated in place.
        data: as for :func:`course_lib.train.train` (a DSprites, a tensor, or a sampler).
        seeds: N seeds (data and noise streams of each copy).
        steps, batch_size, lr, log_every, checkpoint_every, resume, progress: as for ``train``;
            every copy draws its own batch of ``batch_size`` images per step.
        checkpoints: None, or N paths (one ordinary course checkpoint per copy). If all exist
            they are resumed (they must be at the same step); some but not all → ValueError.
    Returns:
        N :class:`TrainResult` (model in train mode, history); ``images_per_second`` is the
        aggregate rate of all copies, ``extra["copies"]`` is N.
    """
    from torch.func import functional_call, stack_module_state, vmap

    check_train_args(steps, batch_size, lr)
    varying = _check_models(models)
    count = len(models)
    seeds = [int(s) for s in seeds]
    if len(seeds) != count:
        raise ValueError(f"got {count} models but {len(seeds)} seeds: give one seed per model")
    if checkpoints is not None:
        checkpoints = [Path(p) for p in checkpoints]
        if len(checkpoints) != count:
            raise ValueError(f"got {count} models but {len(checkpoints)} checkpoint paths")
    steps = int(steps)
    log_every = int(log_every or max(1, steps // 100))
    device = choose_device(device)
    for m in models:
        m.to(device)
    sampler = as_sampler(data, device)  # on the training device (train's sampler_on)
    sample_device = getattr(sampler, "device", device)
    data_gens = [torch.Generator(device=sample_device).manual_seed(s) for s in seeds]
    noise_gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    histories = [History() for _ in range(count)]
    start = 0

    # resume: every copy from its own checkpoint
    per_copy_opt_states, pending = None, None
    if checkpoints is not None and resume:
        exist = [p.exists() for p in checkpoints]
        if any(exist) and not all(exist):
            missing = [str(p) for p, e in zip(checkpoints, exist) if not e]
            raise ValueError(f"some checkpoints exist and some do not ({missing}); remove the "
                             "others or train the missing copies alone")
        if all(exist):
            states = [load_checkpoint(p, map_location=device) for p in checkpoints]
            done = {s["step"] for s in states}
            if len(done) != 1:
                raise ValueError(f"the checkpoints are at different steps {sorted(done)}; "
                                 "they can only be resumed together from one step")
            start = done.pop()
            for s, p, seed_i in zip(states, checkpoints, seeds):  # the settings each copy was trained with
                check_same_run(s.get("train", {}), {"batch_size": batch_size, "lr": lr, "seed": seed_i,
                                                    "log_every": log_every}, p)
            if start > steps:
                raise ValueError(f"the checkpoints are at step {start}, beyond the {steps} steps "
                                 "asked for")
            for m, s, p, h_i, dg, ng in zip(models, states, checkpoints, range(count),
                                             data_gens, noise_gens):
                load_into(m, s, source=str(p))
                histories[h_i] = History(s["history"])
                if start < steps:  # a finished run is only loaded: its random state is not needed
                    _restore_streams(s["rng"], dg, ng, device, seed=seeds[h_i], step=start, source=p)
            per_copy_opt_states = [s["optimizers"]["model"] for s in states]
            pending = [s.get("pending") or {} for s in states]

    template_opts = [m.configure_optimizers(lr) for m in models]
    if list(template_opts[0]) != ["model"]:
        raise ValueError(f"{type(models[0]).__name__} has optimisers {list(template_opts[0])}; "
                         "train_many supports models with one optimiser")
    template = template_opts[0]["model"]

    params, buffers = stack_module_state(list(models))
    names = [n for n, _ in models[0].named_parameters()]
    params = {n: params[n] for n in names}
    opt_params = [params[n] for n in names]
    defaults = dict(template.defaults)
    optimizer = type(template)(opt_params, **defaults)
    if per_copy_opt_states is not None:
        optimizer.load_state_dict(_stack_optimizer_states(per_copy_opt_states,
                                                          optimizer.state_dict()))

    base = copy.deepcopy(models[0])
    wrapper = _LossTerms(base).to(device)
    hyper = {k: torch.tensor(v, device=device) for k, v in varying.items()}
    num_latents = models[0].num_latents

    def loss_of(p, b, x, eps, h, step):
        p = {f"model.{k}": v for k, v in p.items()}
        b = {f"model.{k}": v for k, v in b.items()}
        return functional_call(wrapper, (p, b), (x, eps, h, step))

    batched = vmap(loss_of, in_dims=(0, 0, 0, 0, 0, None), randomness="error")

    window = LogWindow(start)
    if pending and any(pending):  # the log window open at the checkpoint, each copy's part stacked
        window = LogWindow.resume({"window_start": pending[0].get("window_start", start),
                                   "count": pending[0].get("count", 0),
                                   "sums": {k: torch.stack([p_["sums"][k] for p_ in pending])
                                            for k in pending[0].get("sums", {})}}, start, device)

    def non_finite(step, window_start, losses=None):
        losses = window.sums["loss"] if losses is None else losses
        _non_finite(losses, step, window_start)

    def save(step):
        if checkpoints is None:
            return
        if not window.finite():  # off the CPU the loss is checked only at logs: check before writing
            non_finite(step, window.start, window.sums["loss"])
        _write_back(models, params, buffers, names)
        stacked_state = optimizer.state_dict()
        for i, (m, path) in enumerate(zip(models, checkpoints)):
            # the layout of train()'s checkpoints: copy i's noise generator stands for the global
            # generator of the device (train() resumes it exactly), with the devices recorded
            rng = {"torch": noise_gens[i].get_state() if device.type == "cpu" else torch.get_rng_state(),
                   "data": data_gens[i].get_state(), "data_device": str(data_gens[i].device),
                   "model_device": str(device)}
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state_all()
                rng["cuda"][_cuda_index(device)] = noise_gens[i].get_state()
            elif device.type == "mps":
                rng["mps"] = noise_gens[i].get_state()
            opt_i = _slice_optimizer_state(stacked_state, i, count, template_opts[i]["model"].state_dict())
            config = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seeds[i],
                      "log_every": log_every, "trained_with": f"course_lib.multiseed ({count} copies)"}
            atomic_save(checkpoint_state(m, {"model": opt_i}, step, histories[i], None, config,
                                         window.state(i), rng=rng), path)

    def one_step(step):
        x = torch.stack([to_device(sampler.sample(batch_size, g), device) for g in data_gens])
        eps = torch.stack([torch.randn((batch_size, num_latents), generator=g, device=device)
                           for g in noise_gens])
        optimizer.zero_grad(set_to_none=True)
        terms = batched(params, buffers, x, eps, hyper, step - 1)
        terms["loss"].sum().backward()
        optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    def on_log(step, means):
        for i in range(count):
            histories[i].append(step, {k: v[i] if v.dim() > 0 else v for k, v in means.items()})

    if start < steps:
        for m in models:
            m.on_train_start(steps)
    for m in models:
        m.train()
    base.train()
    step, seconds = run_steps(one_step, start=start, steps=steps, end=steps, window=window, log_every=log_every,
                           on_log=on_log, save=save, non_finite=non_finite, checkpoint_every=checkpoint_every,
                           check_every_step=not defers_finite_check(device),
                           progress=f"{type(base).__name__} ×{count}" if progress else None)
    _write_back(models, params, buffers, names)
    done = step - start  # a stop requested mid-run (course_lib.train.request_stop) ends early
    rate = done * batch_size * count / seconds if done and seconds > 0 else float("nan")
    return [TrainResult(model=m, history=h, steps=step, seconds=seconds,
                        images_per_second=rate, device=str(device),
                        checkpoint=str(checkpoints[i]) if checkpoints else None,
                        resumed_from=start, extra={"copies": count, "seed": seeds[i]},
                        finished=step == steps)
            for i, (m, h) in enumerate(zip(models, histories))]


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _noise_state(rng: dict, device: torch.device):
    """The saved state of the reparameterisation noise on ``device`` (None if not saved)."""
    if device.type == "cpu":
        return rng["torch"]
    if device.type == "cuda":
        saved, index = rng.get("cuda") or [], _cuda_index(device)
        return saved[index] if index < len(saved) else None
    return rng.get(device.type)


def _restore_streams(rng, data_gen, noise_gen, device, *, seed, step, source):
    """Continue copy ``seed``'s data and noise streams; on another device type (see
    :func:`course_lib.train.restore_rng`) reseed both from ``(seed, step)`` with a warning."""
    noise = _noise_state(rng, device)
    saved_model_device = rng.get("model_device")
    same = saved_model_device is None or torch.device(saved_model_device).type == device.type
    ok = (same and noise is not None
          and restore_generator(data_gen, rng["data"], rng.get("data_device"))
          and restore_generator(noise_gen, noise, None))
    if ok:
        return True
    derived = (int(seed) * 1_000_003 + int(step)) % 2**63
    data_gen.manual_seed(derived)
    noise_gen.manual_seed(derived)
    warnings.warn(f"{source}: the random state of step {step} was written on "
                  f"{saved_model_device or 'another device type'} and cannot continue on {device}: "
                  f"copy {seed}'s data and noise generators were reseeded from its seed and step "
                  f"(reproducible, but not the run an uninterrupted training would have given)",
                  RandomStateWarning, stacklevel=3)
    return False


def _write_back(models, params, buffers, names):
    """Copy the stacked weights back into the N models."""
    with torch.no_grad():
        for i, m in enumerate(models):
            for n, p in m.named_parameters():
                p.copy_(params[n][i])
            for n, b in m.named_buffers():
                if n in buffers:
                    b.copy_(buffers[n][i])


def _non_finite(losses, step, window_start):
    bad = [i for i, v in enumerate(losses.reshape(-1).tolist()) if not math.isfinite(v)]
    raise NonFiniteLossError(
        f"the loss of copies {bad} became NaN or infinite between steps {window_start} and "
        f"{step}; training stopped. Try a smaller learning rate, or check the models' inputs.")


__all__ = ["train_many"]
