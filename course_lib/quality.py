"""Sample quality without downloads: a Fréchet distance in the feature space of a dSprites
factor classifier that the course trains itself.

The Fréchet Inception Distance (Heusel et al., 2017) compares Gaussians fitted to Inception
features of real and generated images. Inception's weights cannot be downloaded here, and
they were never meant for binary sprites anyway, so the course uses the same distance in the
256-d penultimate layer of a small classifier trained to predict the dSprites factors
(shape, scale, orientation, posX, posY) from an image. We call it the **factor Fréchet
distance** (FFD); its values are comparable only between runs that use the same classifier.
"""

from __future__ import annotations

import torch

from .models.classifier import CLASSIFIED_FACTORS, FactorClassifier, LabelledSampler

__all__ = ["CLASSIFIED_FACTORS", "FactorClassifier", "LabelledSampler", "gaussian_stats",
           "frechet_distance", "feature_stats", "factor_frechet_distance"]

def gaussian_stats(features: torch.Tensor):
    """Mean (F) and covariance (F×F, unbiased) of N×F features, in float64."""
    f = features.detach().double().flatten(1)
    if len(f) < 2:
        raise ValueError(f"need at least 2 samples to fit a Gaussian, got {len(f)}")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (len(f) - 1)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein) distance² between N(μ1, Σ1) and N(μ2, Σ2):
    ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^{½} Σ2 Σ1^{½})^{½}).
    """
    s1 = _sqrtm_psd(cov1)
    cross = _sqrtm_psd(s1 @ cov2 @ s1)
    return float((mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * torch.trace(cross))


@torch.no_grad()
def feature_stats(classifier: FactorClassifier, images: torch.Tensor, batch_size: int = 1024):
    """Gaussian statistics of the classifier's features over ``images`` (N×C×64×64)."""
    classifier.eval()
    device = next(classifier.parameters()).device
    feats = [classifier.features(images[i:i + batch_size].to(device)).cpu()
             for i in range(0, len(images), batch_size)]
    return gaussian_stats(torch.cat(feats))


def factor_frechet_distance(classifier: FactorClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The factor Fréchet distance between two image sets (N×C×64×64, values in [0, 1])."""
    return frechet_distance(*feature_stats(classifier, real), *feature_stats(classifier, fake))
