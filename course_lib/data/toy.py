"""The 2-D mixture of Gaussians used to show mode collapse (Metz et al., 2017; seed 002, Fig. 3).

``num_modes`` isotropic Gaussians with standard deviation ``std`` whose centres sit evenly on a
circle of radius ``radius`` (8 modes, radius 2, std 0.02 in the unrolled-GAN paper)::

    toy = RingOfGaussians()                      # 8 modes on a ring
    x = toy.sample(512, generator=g)             # [512, 2]
    cov = toy.coverage(generated)                # modes covered, share of high-quality samples

A generated point is of *high quality* when it lies within ``3·std`` of some mode centre; a
mode is *covered* when at least ``min_share`` of its fair share (``n / num_modes``) of the
samples are high-quality points of that mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Coverage:
    """Mode coverage of a set of generated points.

    Attributes:
        modes_covered: number of modes with enough high-quality samples (0 … num_modes).
        high_quality: share of the samples within ``3·std`` of a mode centre (0 … 1).
        counts: high-quality samples per mode (``num_modes`` ints).
        num_modes: number of modes of the toy.
    """

    modes_covered: int
    high_quality: float
    counts: tuple
    num_modes: int

    def __str__(self) -> str:
        return (f"{self.modes_covered}/{self.num_modes} modes covered, "
                f"{self.high_quality:.1%} high-quality samples")


class RingOfGaussians:
    """A mixture of ``num_modes`` 2-D Gaussians on a ring, and the sampler the training loop uses.

    Args:
        num_modes: number of mixture components (≥ 1), with equal weights.
        radius: distance of every centre from the origin (> 0, data units).
        std: standard deviation of each component along each axis (> 0, data units).
        device: where samples are drawn.
    """

    def __init__(self, num_modes: int = 8, radius: float = 2.0, std: float = 0.02, device=None):
        if isinstance(num_modes, bool) or int(num_modes) != num_modes or num_modes < 1:
            raise ValueError(f"num_modes must be a positive integer, got {num_modes!r}")
        if not float(radius) > 0:
            raise ValueError(f"radius must be > 0, got {radius!r}")
        if not float(std) > 0:
            raise ValueError(f"std must be > 0, got {std!r}")
        self.num_modes = int(num_modes)
        self.radius = float(radius)
        self.std = float(std)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        angles = 2 * math.pi * torch.arange(self.num_modes, dtype=torch.float64) / self.num_modes
        self.centres = (self.radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float().to(self.device)

    def __repr__(self) -> str:
        return f"RingOfGaussians(num_modes={self.num_modes}, radius={self.radius}, std={self.std})"

    @property
    def key(self) -> str:
        """The data's name in run names, e.g. ``ring8-r2-s0.1``."""
        return f"ring{self.num_modes}-r{self.radius:g}-s{self.std:g}"

    def sample(self, n: int, generator: torch.Generator | None = None, return_modes: bool = False):
        """``n`` points ``[n, 2]`` (and their mode indices ``[n]`` with ``return_modes``) on this
        toy's device; the numbers are drawn on ``generator``'s device when one is given."""
        n = int(n)
        # a generator draws only on its own device: draw there, then move to this sampler's
        draw = generator.device if generator is not None else self.device
        modes = torch.randint(self.num_modes, (n,), generator=generator, device=draw).to(self.device)
        noise = torch.randn(n, 2, generator=generator, device=draw).to(self.device)
        x = self.centres[modes] + self.std * noise
        return (x, modes) if return_modes else x

    def sampler(self, device=None) -> RingOfGaussians:
        """The same toy drawing on ``device`` (for ``course_lib.train.train``)."""
        return RingOfGaussians(self.num_modes, self.radius, self.std, device=device)

    def to(self, device) -> RingOfGaussians:
        """The same toy drawing on ``device``."""
        return self.sampler(device)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of the mixture at ``x`` ``[..., 2]`` → ``[...]`` (nats)."""
        x = torch.as_tensor(x)
        centres = self.centres.to(device=x.device, dtype=x.dtype)
        d2 = ((x.unsqueeze(-2) - centres) ** 2).sum(-1)
        comp = -d2 / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(comp, dim=-1) - math.log(self.num_modes)

    def coverage(self, samples: torch.Tensor, min_share: float = 0.2) -> Coverage:
        """How many modes ``samples`` ``[n, 2]`` cover, and how many samples are high quality.

        Args:
            samples: generated points, ``[n, 2]`` (any device; NaN counts as low quality).
            min_share: a mode is covered when it holds at least ``min_share · n / num_modes``
                high-quality samples (and at least one).
        """
        samples = torch.as_tensor(samples)
        if samples.dim() != 2 or samples.shape[1] != 2 or len(samples) == 0:
            raise ValueError(f"samples must have shape [n, 2] with n >= 1, got {tuple(samples.shape)}")
        if not 0 <= float(min_share) <= self.num_modes:
            raise ValueError(f"min_share must be in [0, num_modes], got {min_share!r}")
        x = samples.detach().to("cpu", torch.float64)
        d = torch.cdist(x, self.centres.cpu().double())  # [n, modes]
        dist, nearest = d.min(dim=1)
        good = dist <= 3 * self.std  # False for NaN
        counts = torch.bincount(nearest[good], minlength=self.num_modes)
        need = max(1.0, float(min_share) * len(x) / self.num_modes)
        return Coverage(
            modes_covered=int((counts >= need).sum()),
            high_quality=float(good.double().mean()),
            counts=tuple(int(c) for c in counts),
            num_modes=self.num_modes,
        )
