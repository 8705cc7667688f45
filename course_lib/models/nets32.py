"""The 32×32 convolutional encoder and decoder of source paper 004 (Table 2, MNIST resized to 32×32),
and :func:`build_nets`, which picks an architecture by name for the VAE family.

Encoder (source paper 004, Table 2): three convolutions 4×4, stride 2, padding 1 with 32, 32, 64
channels (32→16→8→4), then Linear 64·4·4 → 256 and Linear 256 → out_features (2·D for a VAE:
μ and log σ²). Decoder: Linear D → 256, Linear 256 → 64·4·4, then three transposed
convolutions 4×4, stride 2, padding 1 (4→8→16→32). Table 2 lists their widths as 64, 32, 32;
the course reads it as the mirror of the encoder, 64 → 32 → 32 → C channels, so the last layer
returns C logit maps. ReLU between layers (the source paper does not name the nonlinearity); He
initialisation as in :mod:`.nets`.
"""

from __future__ import annotations

import torch
from torch import nn

from . import nets
from .base import check_positive_int
from .nets import BurgessDecoder, BurgessEncoder, check_images, he_init_


class Mnist32Encoder(nn.Module):
    """x N×C×32×32 → N×out_features (source paper 004, Table 2)."""

    def __init__(self, out_features: int, channels: int = 1, fc: int = 256):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),  # 32×32 → 16×16
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),        # 16×16 → 8×8
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),        # 8×8 → 4×4
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, fc), nn.ReLU(),
                                nn.Linear(fc, out_features))
        he_init_(self)
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (N×fc)."""
        check_images(x, self.channels, 32)
        return self.fc[:-1](self.conv(nets.channels_last(x)))  # as is inside vmap (multiseed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc[-1](self.features(x))


class Mnist32Decoder(nn.Module):
    """z N×D → logits N×C×32×32 (source paper 004, Table 2)."""

    def __init__(self, num_latents: int, channels: int = 1, fc: int = 256):
        super().__init__()
        self.num_latents = num_latents
        self.fc = nn.Sequential(nn.Linear(num_latents, fc), nn.ReLU(),
                                nn.Linear(fc, 64 * 4 * 4), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),        # 4×4 → 8×8
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),        # 8×8 → 16×16
            nn.ConvTranspose2d(32, channels, 4, 2, 1),             # 16×16 → 32×32
        )
        he_init_(self)
        self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.num_latents:
            raise ValueError(f"expected codes of shape N×{self.num_latents}, got {tuple(z.shape)}")
        h = nets.channels_last(self.fc(z).view(-1, 64, 4, 4))
        return self.deconv(h)


#: name → (encoder class, decoder class, image size in pixels)
ARCHS = {
    "burgess64": (BurgessEncoder, BurgessDecoder, 64),
    "mnist32": (Mnist32Encoder, Mnist32Decoder, 32),
}


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: expected one of {tuple(ARCHS)} "
                         "('burgess64' for 64×64 dSprites, 'mnist32' for 32×32 MNIST)")
    return arch


def build_nets(arch: str, encoder_out: int, num_latents: int, channels: int = 1):
    """(encoder, decoder) of the named architecture: the encoder maps N×C×S×S images to
    N×encoder_out, the decoder N×num_latents codes to N×C×S×S logits (S = 64 or 32)."""
    enc_cls, dec_cls, _ = ARCHS[check_arch(arch)]
    return enc_cls(encoder_out, channels), dec_cls(num_latents, channels)


def image_size(arch: str) -> int:
    """Side of the square images the architecture takes, in pixels."""
    return ARCHS[check_arch(arch)][2]
