"""The contract every model of the course follows, and the model registry."""

from __future__ import annotations

import torch
from torch import nn

#: name → class of every registered model (see :func:`register`).
MODELS: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a model buildable by name (``build_model(name, **config)``)."""

    def deco(cls):
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {MODELS[name].__name__}")
        MODELS[name] = cls
        cls.model_name = name
        return cls

    return deco


def build_model(name: str, **config) -> "CourseModel":
    """Build a registered model: ``build_model("beta_vae", num_latents=10, beta=4)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {sorted(MODELS)}")
    return MODELS[name](**config)


class CourseModel(nn.Module):
    """Base class: a model owns its loss terms and its optimisers.

    Subclasses implement :meth:`loss_terms` (a dict with the scalar ``"loss"`` to minimise and
    any other terms to log, scalars or 1-D tensors) and :meth:`config` (the keyword arguments
    that rebuild the model). Models with several networks and updates (GANs, FactorVAE)
    override :meth:`configure_optimizers` and :meth:`training_step`.
    """

    model_name = "course_model"

    def config(self) -> dict:
        raise NotImplementedError

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=lr)}

    def loss_terms(self, x: torch.Tensor, step: int = 0) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_train_start(self, steps: int) -> None:
        """Called by ``train`` before the first update with the run's total number of steps.

        Does nothing by default; a model whose schedule depends on the run length (e.g. the
        capacity schedule of ``CapacityVAE``) checks it here and warns.
        """

    def training_step(self, x, step: int, optimizers: dict) -> dict[str, torch.Tensor]:
        """One update: gradients of ``loss_terms(x)["loss"]`` and one step of every optimiser.

        Returns the terms, detached (the training loop logs them).
        """
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        terms = self.loss_terms(x, step)
        terms["loss"].backward()
        for opt in optimizers.values():
            opt.step()
        return {k: v.detach() for k, v in terms.items()}


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative(name: str, value) -> float:
    value = float(value)
    if not value >= 0:  # also catches NaN
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value
