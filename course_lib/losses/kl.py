"""KL divergence of a diagonal Gaussian posterior from the standard normal prior."""

from __future__ import annotations

import torch


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, exp(logvar)) ‖ N(0, 1)) per latent, in nats.

    Closed form (Kingma & Welling, appendix B; source paper 003):
    ``½ (μ² + σ² − log σ² − 1)`` with σ² = exp(logvar).

    Args:
        mu, logvar: N×D.
    Returns:
        N×D tensor (sum over D for the KL of the whole code, mean over N for a batch).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape (N×D)")
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
