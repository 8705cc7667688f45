"""The convolutional encoder and decoder of Burgess et al. (2018) for 64×64 images.

Encoder: 4 convolutions (32 channels, 4×4, stride 2) 64→32→16→8→4, two fully connected
layers of 256 units, then a linear layer to 2·D outputs (μ and log σ² of a diagonal
Gaussian). The decoder mirrors it with transposed convolutions and returns logits.
Both use the channels_last memory format, which roughly doubles their speed on a CPU.

Both start from He initialisation (:func:`he_init_`). With PyTorch's default initialisation
the 14 layers of encoder + decoder shrink the input's influence so much that the untrained
decoder draws the same picture for every image (notebook 01 measures the spread of the
untrained output across images for both), and training first sits on a long plateau.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import check_positive_int


def fan_in(layer: nn.Module) -> int:
    """The number of inputs that reach one output of a linear, convolution or transposed
    convolution layer. For a transposed convolution with kernel k and stride s this is
    in_channels·(k/s)², not what ``torch.nn.init`` assumes (out_channels·k²)."""
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.ConvTranspose2d):
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        return layer.in_channels // layer.groups * max(1, kh // sh) * max(1, kw // sw)
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        return layer.in_channels // layer.groups * kh * kw
    raise TypeError(f"expected nn.Linear, nn.Conv2d or nn.ConvTranspose2d, got {type(layer).__name__}")


def he_init_(module: nn.Module) -> nn.Module:
    """He (Kaiming) initialisation in place, for networks of ReLU layers.

    Every linear / convolution / transposed convolution layer gets normal weights of variance
    2/fan_in (He et al., 2015: keeps the second moment of the activations constant through
    ReLU layers) and zero biases, except the last such layer, which feeds no ReLU and gets
    variance 1/fan_in. Returns ``module``.
    """
    layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            gain = 1.0 if i == len(layers) - 1 else 2.0
            layer.weight.normal_(0.0, math.sqrt(gain / fan_in(layer)))
            if layer.bias is not None:
                layer.bias.zero_()
    return module


def check_images(x: torch.Tensor, channels: int, size: int):
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1:] != (channels, size, size):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected images of shape N×{channels}×{size}×{size}, got {shape}")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N×C×H×W) in the channels_last memory format.

    Inside ``torch.func.vmap`` (several models trained at once, :mod:`course_lib.multiseed`)
    memory formats cannot be changed, and ``x`` is returned as it is.
    """
    try:
        return x.contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # a batched tensor of torch.func.vmap
        return x


class BurgessEncoder(nn.Module):
    """x N×C×64×64 → N×out_features (for a VAE, out_features = 2·num_latents)."""

    def __init__(self, out_features: int, channels: int = 1, hidden: int = 32, fc: int = 256):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.conv = nn.Sequential(
            nn.Conv2d(channels, hidden, 4, 2, 1), nn.ReLU(),  # 64×64 → 32×32
            nn.Conv2d(hidden, hidden, 4, 2, 1), nn.ReLU(),    # 32×32 → 16×16
            nn.Conv2d(hidden, hidden, 4, 2, 1), nn.ReLU(),    # 16×16 → 8×8
            nn.Conv2d(hidden, hidden, 4, 2, 1), nn.ReLU(),    # 8×8 → 4×4
        )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(hidden * 4 * 4, fc), nn.ReLU(),
            nn.Linear(fc, fc), nn.ReLU(),
            nn.Linear(fc, out_features),
        )
        he_init_(self)
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (N×fc), e.g. for a discriminator's feature-wise loss."""
        check_images(x, self.channels, 64)
        h = self.conv(channels_last(x))
        return self.fc[:-1](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc[-1](self.features(x))


class BurgessDecoder(nn.Module):
    """z N×D → logits N×C×64×64."""

    def __init__(self, num_latents: int, channels: int = 1, hidden: int = 32, fc: int = 256):
        super().__init__()
        self.num_latents = num_latents
        self.hidden = hidden
        self.fc = nn.Sequential(
            nn.Linear(num_latents, fc), nn.ReLU(),
            nn.Linear(fc, fc), nn.ReLU(),
            nn.Linear(fc, hidden * 4 * 4), nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU(),    # 4×4 → 8×8
            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU(),    # 8×8 → 16×16
            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU(),    # 16×16 → 32×32
            nn.ConvTranspose2d(hidden, channels, 4, 2, 1),             # 32×32 → 64×64
        )
        he_init_(self)
        self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.num_latents:
            raise ValueError(f"expected codes of shape N×{self.num_latents}, got {tuple(z.shape)}")
        h = channels_last(self.fc(z).view(-1, self.hidden, 4, 4))
        return self.deconv(h)
