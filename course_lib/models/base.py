"""The contract every model of the course follows, the model registry, and what the models
need of the device they run on (:func:`amp_dtype`, :func:`deterministic`)."""

from __future__ import annotations

import contextlib
import math
import os

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


def build_model(name: str, **config) -> CourseModel:
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
    #: Submodules needed only to train the model (e.g. FactorVAE's discriminator): a shipped
    #: checkpoint may leave them out (``write_shipped(..., training_only=True)``) and a model
    #: loaded from it lists them in ``untrained_parts`` (freshly initialised, not trained).
    training_only: tuple[str, ...] = ()
    untrained_parts: tuple[str, ...] = ()
    #: Functions from outside the library that change how the model trains (a notebook's
    #: exercise solutions, e.g. ``exercise_functions = (beta_vae_loss,)`` in a subclass):
    #: :func:`course_lib.train.run_name` fingerprints their code, so a run trained by one
    #: version of them is never loaded in place of another's. The library's own are ignored.
    exercise_functions: tuple = ()

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
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= 1
    except (TypeError, ValueError, OverflowError):  # None, a string, NaN, infinity
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _number(name: str, value) -> float:
    """``value`` as a float; a bool or a string is refused (float() would take True and "0.1")."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def check_non_negative(name: str, value) -> float:
    value = _number(name, value)
    if not 0 <= value < math.inf:  # also catches NaN
        raise ValueError(f"{name} must be >= 0 and finite, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    value = _number(name, value)
    if not 0 < value < math.inf:  # also catches NaN
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return value


# -- the device ----------------------------------------------------------------------------
def amp_dtype(device, preferred: torch.dtype = torch.bfloat16) -> torch.dtype:
    """The dtype for ``torch.autocast`` on ``device``: ``preferred`` (bfloat16), except on a CUDA
    GPU that has no bfloat16 arithmetic (compute capability below 8.0, e.g. Colab's T4), where
    it is float16 (bfloat16 would be emulated there, slower than float32). On the CPU and on
    Ampere or newer GPUs bfloat16 is kept. float16 has bfloat16's speed but a narrower range:
    a training loop under it needs ``torch.amp.GradScaler`` against underflowing gradients."""
    device = torch.device(device)
    if preferred == torch.bfloat16 and device.type == "cuda" and torch.cuda.is_available() \
            and not torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.float16
    return preferred


def _tf32_settings() -> dict:
    """Where TensorFloat-32 may replace float32 (matmuls, cuDNN convolutions and RNNs)."""
    cudnn = torch.backends.cudnn
    if hasattr(cudnn, "conv") and hasattr(cudnn.conv, "fp32_precision"):  # torch >= 2.9
        return {"matmul": torch.backends.cuda.matmul.fp32_precision,
                "conv": cudnn.conv.fp32_precision, "rnn": cudnn.rnn.fp32_precision}
    return {"matmul_tf32": torch.backends.cuda.matmul.allow_tf32, "cudnn_tf32": cudnn.allow_tf32}


def _set_tf32(settings: dict) -> None:
    cudnn = torch.backends.cudnn
    if "matmul" in settings:
        torch.backends.cuda.matmul.fp32_precision = settings["matmul"]
        cudnn.conv.fp32_precision = settings["conv"]
        cudnn.rnn.fp32_precision = settings["rnn"]
    else:
        torch.backends.cuda.matmul.allow_tf32 = settings["matmul_tf32"]
        cudnn.allow_tf32 = settings["cudnn_tf32"]


def _no_tf32(settings: dict) -> dict:
    if "matmul" in settings:
        return {"matmul": "ieee", "conv": "ieee", "rnn": "ieee"}
    return {"matmul_tf32": False, "cudnn_tf32": False}


@contextlib.contextmanager
def deterministic(enabled: bool = True):
    """Opt-in reproducible GPU arithmetic, for the claims that compare runs bit for bit or
    nearly so (a resumed run against an uninterrupted one, several seeds trained at once
    against each alone)::

        with deterministic():
            result = train(model, data, steps=..., device="cuda")

    Inside the block: cuDNN picks deterministic algorithms and no benchmark, TensorFloat-32
    (10-bit mantissa in matmuls and convolutions, on by default for cuDNN on Ampere and newer
    GPUs) is off, ``torch.use_deterministic_algorithms(True, warn_only=True)`` warns about any
    operation without a deterministic version, and ``CUBLAS_WORKSPACE_CONFIG`` is set when it
    was not (it takes effect only if set before the process's first cuBLAS call). Everything
    is restored on exit. It costs speed (often 10-30 %), and on the CPU it changes nothing.

    What is reproducible, and what is not:

    - the same seed on the same device type, torch version and settings gives the same run;
      a checkpoint resumed on that device type continues its random streams exactly, and with
      ``deterministic()`` on a GPU the continued run matches an uninterrupted one to float
      rounding (without it, to TF32 rounding, about 1e-3 relative);
    - random streams differ between the CPU, CUDA and MPS (different generators): the same seed
      gives another run on another device type, and a checkpoint resumed there is reseeded
      (:func:`course_lib.train.restore_rng` warns). A seed's result carries over to another
      device only through its checkpoint (the shipped ones load anywhere);
    - dSprites renders the same images on every device (its tables are float64-made).
    """
    if not enabled:
        yield
        return
    saved = {"cudnn_deterministic": torch.backends.cudnn.deterministic,
             "cudnn_benchmark": torch.backends.cudnn.benchmark,
             "algorithms": torch.are_deterministic_algorithms_enabled(),
             "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
             "tf32": _tf32_settings(), "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    _set_tf32(_no_tf32(saved["tf32"]))
    torch.use_deterministic_algorithms(True, warn_only=True)
    if saved["cublas"] is None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
        torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
        _set_tf32(saved["tf32"])
        torch.use_deterministic_algorithms(saved["algorithms"], warn_only=saved["warn_only"])
        if saved["cublas"] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
