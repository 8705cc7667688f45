"""The thin layer between models and metrics: encode a data set, or wrap a model as ``codes_of``.

Any course model with ``encode(x) -> (mu, logvar)`` works (an autoencoder returns
``(z, None)``). The data set needs the ground-truth interface of
:class:`course_lib.data.DSprites`: ``len(ds)``, ``ds.index_to_classes(index)``,
``ds.sample_classes(n, generator=...)`` and ``ds.images(classes)`` (images on the classes'
device). Encoding runs in chunks under ``torch.inference_mode()`` with the model in eval mode
(its previous mode is restored afterwards).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ._checks import check_count, make_generator


class Encoded(NamedTuple):
    """Output of :func:`encode_dataset` (unpacks as ``mu, logvar, classes``).

    ``mu``: ``[N, D]`` float32 posterior means (the codes); ``logvar``: ``[N, D]`` float32
    log-variances, or ``None`` for a model without a posterior variance; ``classes``: ``[N, K]``
    int64 ground-truth class indices of the encoded images.
    """

    mu: np.ndarray
    logvar: np.ndarray | None
    classes: np.ndarray


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_model(model) -> None:
    if not callable(getattr(model, "encode", None)):
        raise TypeError(
            f"{type(model).__name__} has no encode(x) method; the metrics need a model whose "
            "encode(x) returns (mu, logvar) (or (z, None) for an autoencoder)"
        )


def _encode_batch(model, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    out = model.encode(images)
    if isinstance(out, torch.Tensor):
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            f"{type(model).__name__}.encode(x) must return (mu, logvar) or (z, None); got "
            f"{type(out).__name__}"
        )
    mu, logvar = out
    if mu.ndim != 2:
        raise ValueError(f"encode(x) returned codes of shape {tuple(mu.shape)}; expected [N, D]")
    return mu, logvar


class _EvalMode:
    """Context manager: model.eval() inside, the previous training flag restored on exit."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        return self.model

    def __exit__(self, *exc):
        if hasattr(self.model, "train"):
            self.model.train(self.was_training)
        return False


def encode_dataset(
    model,
    dataset,
    n: int | None = None,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    autocast: torch.dtype | None = None,
    progress: bool = False,
) -> Encoded:
    """Encode ``n`` random images of ``dataset`` (or all of them, in order) with ``model``.

    Args:
        model: a course model with ``encode(x) -> (mu, logvar)`` (``(z, None)`` allowed).
        dataset: ground-truth data set (e.g. ``DSprites()``), see the module docstring.
        n: number of random images (uniform class tuples drawn with ``generator``); ``None``
            encodes the whole grid in index order (737,280 images for dSprites).
        batch_size: images rendered and encoded at once (bounds memory).
        generator: a ``torch.Generator`` for the random draw (default: one seeded with ``seed``).
        device: where images are rendered and encoded (default: the model's device).
        seed: used when ``generator`` is None.
        autocast: e.g. ``torch.bfloat16``: run the encoder under ``torch.autocast`` with this
            dtype (about 2x faster on a CPU with AVX-512 BF16; codes change by ~1e-3 relative,
            which can move a few samples across a MIG bin edge). Default: full float32.
        progress: show a tqdm progress bar over the batches.

    Returns:
        :class:`Encoded` ``(mu [N, D], logvar [N, D] or None, classes [N, K])``, NumPy arrays
        on the CPU, ready for :func:`course_lib.metrics.mig` (``mig(mu, classes)``) and
        :func:`course_lib.metrics.mig_sampled`.
    """
    _check_model(model)
    batch_size = check_count(batch_size, "batch_size", 1)
    device = torch.device(device) if device is not None else _model_device(model)
    if n is None:
        total = len(dataset)
        classes_all = None
    else:
        try:
            total = check_count(n, "n", 1)
        except ValueError as err:
            raise ValueError(f"{err} (or None to encode the whole data set)") from None
        gen = make_generator(generator, seed)
        classes_all = dataset.sample_classes(total, generator=gen)
    mus, logvars, classes_out = [], [], []
    amp = (torch.autocast(device.type, dtype=autocast) if autocast is not None
           else contextlib.nullcontext())
    with _EvalMode(model), torch.inference_mode(), amp:
        starts = range(0, total, batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding", unit="batch")
        for start in starts:
            stop = min(start + batch_size, total)
            if classes_all is None:
                classes = dataset.index_to_classes(torch.arange(start, stop, device=device))
            else:
                classes = classes_all[start:stop]
            classes = torch.as_tensor(classes).to(device)
            mu, logvar = _encode_batch(model, dataset.images(classes))
            mus.append(mu.float().cpu())
            if logvar is not None:
                logvars.append(logvar.float().cpu())
            classes_out.append(classes.cpu())
    mu = torch.cat(mus).numpy()
    logvar = torch.cat(logvars).numpy() if len(logvars) == len(mus) else None
    return Encoded(mu, logvar, torch.cat(classes_out).long().numpy())


def encode_images(model, images: torch.Tensor,
                  batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode a tensor of images ``[N, C, H, W]`` in chunks of ``batch_size``; returns ``(mu, logvar)``.

    ``batch_size`` defaults to 128 for images on the CPU (whose caches favour small chunks) and
    1,024 on an accelerator.

    The same codes as ``model.encode(images)`` in eval mode, without holding the activations of
    all N images at once: for 10,000 dSprites images the first convolution of the Burgess encoder
    alone would take 1.3 GB, and the CPU then spends its time moving memory (``python -m
    course_lib bench mig --chunks`` prints the time of one pass against chunks of several
    sizes). ``logvar`` is ``None`` for a model whose ``encode`` returns ``(z, None)``. The
    tensors stay on the images' device, in the encoder's dtype.
    """
    _check_model(model)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [N, C, H, W]; got {shape}")
    if batch_size is None:
        batch_size = 128 if images.device.type == "cpu" else 1024
    batch_size = check_count(batch_size, "batch_size", 1)
    mus, logvars = [], []
    with _EvalMode(model), torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            mu, logvar = _encode_batch(model, images[start:start + batch_size])
            mus.append(mu)
            if logvar is not None:
                logvars.append(logvar)
    mu = torch.cat(mus)
    return mu, (torch.cat(logvars) if len(logvars) == len(mus) else None)


def codes_of_model(model, dataset, device: str | torch.device | None = None,
                   batch_size: int = 1024) -> Callable[[torch.Tensor], np.ndarray]:
    """Wrap ``model`` and ``dataset`` as ``codes_of(classes [N, K]) -> mu [N, D]`` (NumPy).

    For :func:`course_lib.metrics.factor_vae_score` and :func:`course_lib.metrics.beta_vae_score`,
    which choose the classes themselves: ``factor_vae_score(codes_of_model(m, ds), ds.factor_sizes)``.
    Images are rendered with ``dataset.images`` on ``device`` (default: the model's).
    """
    _check_model(model)
    batch_size = check_count(batch_size, "batch_size", 1)
    dev = torch.device(device) if device is not None else _model_device(model)

    def codes_of(classes) -> np.ndarray:
        classes = torch.as_tensor(classes).long()
        out = []
        with _EvalMode(model), torch.inference_mode():
            for start in range(0, classes.shape[0], batch_size):
                chunk = classes[start : start + batch_size].to(dev)
                mu, _ = _encode_batch(model, dataset.images(chunk))
                out.append(mu.float().cpu())
        return torch.cat(out).numpy()

    return codes_of
