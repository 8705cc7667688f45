"""The convolutional encoder and decoder of Burgess et al. (2018) for 64×64 images.

Encoder: 4 convolutions (32 channels, 4×4, stride 2) 64→32→16→8→4, two fully connected
layers of 256 units, then a linear layer to 2·D outputs (μ and log σ² of a diagonal
Gaussian). The decoder mirrors it with transposed convolutions and returns logits.
Both use the channels_last memory format, which roughly doubles their speed on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn


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
        self.channels = channels
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
        self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.num_latents:
            raise ValueError(f"expected codes of shape N×{self.num_latents}, got {tuple(z.shape)}")
        h = channels_last(self.fc(z).view(-1, self.hidden, 4, 4))
        return self.deconv(h)
