"""Reconstruction terms −log p(x | z), in nats per image."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

REDUCTIONS = ("sum", "mean")


def _reduce(per_pixel: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: expected 'sum' (over pixels, the "
                         "correct ELBO) or 'mean' (over pixels, the mistake shown in source paper 001)")
    flat = per_pixel.flatten(1)
    per_image = flat.sum(1) if reduction == "sum" else flat.mean(1)
    return per_image.mean()


def _check_pair(a: torch.Tensor, x: torch.Tensor, what: str):
    if a.shape != x.shape:
        raise ValueError(f"{what} has shape {tuple(a.shape)} but the images have shape "
                         f"{tuple(x.shape)}: they must match (N×C×H×W)")


def bernoulli_recon(logits: torch.Tensor, x: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Bernoulli negative log-likelihood −Σ_pixels [x log p + (1−x) log(1−p)], p = sigmoid(logits).

    Args:
        logits: decoder outputs N×C×H×W (before the sigmoid).
        x: target images N×C×H×W with values in [0, 1].
        reduction: "sum" over pixels (default) or "mean" over pixels; always averaged over the batch.
    Returns:
        scalar, nats per image.
    """
    _check_pair(logits, x, "logits")
    return _reduce(F.binary_cross_entropy_with_logits(logits, x, reduction="none"), reduction)


def gaussian_recon(x_hat: torch.Tensor, x: torch.Tensor, sigma: float = 1.0,
                   reduction: str = "sum", constant: bool = False) -> torch.Tensor:
    """Gaussian negative log-likelihood −log N(x; x_hat, σ²I) = Σ (x − x_hat)²/(2σ²) [+ ½log(2πσ²)].

    With σ = 1/√2 and no constant this is the sum of squared errors (the autoencoder's MSE
    summed over pixels, source paper 003 eq. 1 times the number of pixels).

    Args:
        x_hat: reconstruction means N×C×H×W.
        x: targets N×C×H×W.
        constant: include the normalising constant ½log(2πσ²) per pixel (a true log-density).
    Returns:
        scalar, nats per image (up to the constant when ``constant`` is False).
    """
    _check_pair(x_hat, x, "x_hat")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    per_pixel = (x - x_hat) ** 2 / (2 * sigma**2)
    if constant:
        per_pixel = per_pixel + 0.5 * math.log(2 * math.pi * sigma**2)
    return _reduce(per_pixel, reduction)


def reconstruction(kind: str, logits: torch.Tensor, x: torch.Tensor, reduction: str = "sum"):
    """The reconstruction term of a decoder output ``logits`` (N×C×H×W) for images ``x``.

    ``kind="mse"``: the sum of squared errors of the raw output (a Gaussian decoder with an
    identity output and σ² = ½: the autoencoder loss of source paper 003, Eq. 1, summed over pixels);
    ``"bernoulli"``: :func:`bernoulli_recon` on logits; ``"gaussian"``: sum of squared errors
    of sigmoid(logits) (σ² = ½).
    """
    if kind == "bernoulli":
        return bernoulli_recon(logits, x, reduction)
    if kind == "mse":
        return gaussian_recon(logits, x, sigma=math.sqrt(0.5), reduction=reduction)
    if kind == "gaussian":
        return gaussian_recon(torch.sigmoid(logits), x, sigma=math.sqrt(0.5), reduction=reduction)
    raise ValueError(f"unknown reconstruction {kind!r}: expected 'mse', 'bernoulli' or 'gaussian'")


def output_to_pixels(kind: str, out: torch.Tensor) -> torch.Tensor:
    """Pixel intensities in [0, 1] from a decoder output trained with reconstruction ``kind``:
    the output clipped to [0, 1] for ``"mse"`` (the output is the image), sigmoid(out) for
    ``"bernoulli"`` and ``"gaussian"`` (the output is a logit)."""
    if kind == "mse":
        return out.clamp(0.0, 1.0)
    if kind in ("bernoulli", "gaussian"):
        return torch.sigmoid(out)
    raise ValueError(f"unknown reconstruction {kind!r}: expected 'mse', 'bernoulli' or 'gaussian'")
