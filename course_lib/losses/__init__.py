"""Loss terms of the course, each in nats and documented with shapes.

Reconstruction terms are summed over pixels and averaged over the batch (``reduction="sum"``);
``reduction="mean"`` averages over pixels instead: the reduction mistake of source paper 001, kept as an
option so that notebooks can show what it does.
"""

from .capacity import capacity_penalty, capacity_schedule
from .kl import kl_normal
from .recon import bernoulli_recon, gaussian_recon, reconstruction
from .tc import tc_decomposition

__all__ = ["bernoulli_recon", "gaussian_recon", "reconstruction", "kl_normal",
           "capacity_penalty", "capacity_schedule", "tc_decomposition"]
