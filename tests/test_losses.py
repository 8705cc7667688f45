"""Loss terms against torch.distributions (an independent computation of the same densities)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from course_lib.losses import bernoulli_recon, gaussian_recon, kl_normal, reconstruction


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_kl_normal_matches_torch_distributions_per_latent():
    mu = torch.randn(7, 5, generator=_gen(1), dtype=torch.float64) * 2
    logvar = torch.randn(7, 5, generator=_gen(2), dtype=torch.float64) * 1.5
    ours = kl_normal(mu, logvar)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    assert ours.shape == (7, 5)
    assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-12)
    assert (ours >= 0).all()
    # zero exactly at the prior, and growing with |mu|
    assert torch.equal(kl_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2, 3))
    assert kl_normal(torch.tensor([[3.0]]), torch.tensor([[0.0]])).item() == pytest.approx(4.5)


def test_kl_normal_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        kl_normal(torch.zeros(4, 3), torch.zeros(4, 2))


def test_bernoulli_recon_matches_log_prob_summed_over_pixels():
    logits = torch.randn(6, 1, 8, 8, generator=_gen(3), dtype=torch.float64) * 3
    x = (torch.rand(6, 1, 8, 8, generator=_gen(4), dtype=torch.float64) > 0.5).double()
    ref = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1).mean()
    assert bernoulli_recon(logits, x).item() == pytest.approx(ref.item(), rel=1e-10)
    # reduction="mean" is the same per-image sum divided by the number of pixels (64)
    assert bernoulli_recon(logits, x, reduction="mean").item() == pytest.approx(ref.item() / 64, rel=1e-10)
    # soft targets are the cross-entropy −[x log p + (1−x) log(1−p)]
    soft = torch.rand(6, 1, 8, 8, generator=_gen(5), dtype=torch.float64)
    p = torch.sigmoid(logits)
    ce = -(soft * p.log() + (1 - soft) * (1 - p).log()).flatten(1).sum(1).mean()
    assert bernoulli_recon(logits, soft).item() == pytest.approx(ce.item(), rel=1e-8)


@pytest.mark.parametrize("sigma", [1.0, math.sqrt(0.5), 0.1])
def test_gaussian_recon_matches_normal_log_prob(sigma):
    x_hat = torch.rand(5, 2, 4, 4, generator=_gen(6), dtype=torch.float64)
    x = torch.rand(5, 2, 4, 4, generator=_gen(7), dtype=torch.float64)
    ref = -Normal(x_hat, sigma).log_prob(x).flatten(1).sum(1).mean()
    ours = gaussian_recon(x_hat, x, sigma=sigma, constant=True)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    # without the constant: the ½log(2πσ²) per pixel (32 pixels) is dropped
    without = gaussian_recon(x_hat, x, sigma=sigma)
    assert without.item() == pytest.approx(ref.item() - 32 * 0.5 * math.log(2 * math.pi * sigma**2), rel=1e-10)
    assert gaussian_recon(x_hat, x, sigma=sigma, constant=True, reduction="mean").item() == \
        pytest.approx(ref.item() / 32, rel=1e-10)


def test_gaussian_with_sigma_squared_half_is_the_summed_squared_error():
    x_hat = torch.rand(3, 1, 5, 5, generator=_gen(8))
    x = torch.rand(3, 1, 5, 5, generator=_gen(9))
    sse = ((x - x_hat) ** 2).sum(dim=(1, 2, 3)).mean()
    assert gaussian_recon(x_hat, x, sigma=math.sqrt(0.5)).item() == pytest.approx(sse.item(), rel=1e-5)
    logits = torch.randn(3, 1, 5, 5, generator=_gen(10))
    sse = ((x - torch.sigmoid(logits)) ** 2).sum(dim=(1, 2, 3)).mean()
    assert reconstruction("gaussian", logits, x).item() == pytest.approx(sse.item(), rel=1e-5)
    sse_raw = ((x - logits) ** 2).sum(dim=(1, 2, 3)).mean()
    assert reconstruction("mse", logits, x).item() == pytest.approx(sse_raw.item(), rel=1e-5)
    assert reconstruction("bernoulli", logits, x).item() == pytest.approx(bernoulli_recon(logits, x).item())


def test_losses_are_differentiable():
    logits = torch.zeros(2, 1, 3, 3, requires_grad=True)
    x = torch.ones(2, 1, 3, 3)
    bernoulli_recon(logits, x).backward()
    # d/dlogit of −log sigmoid(logit) at 0 is −½, averaged over a batch of 2
    assert torch.allclose(logits.grad, torch.full_like(logits, -0.25))


@pytest.mark.parametrize("fn", [bernoulli_recon, gaussian_recon])
def test_wrong_shapes_and_options(fn):
    with pytest.raises(ValueError, match=r"shape \(4, 1, 8, 8\).*\(4, 1, 8, 9\).*N×C×H×W"):
        fn(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 9))
    with pytest.raises(ValueError, match="reduction 'avg'.*'sum'.*'mean'"):
        fn(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), reduction="avg")


def test_bad_sigma_and_kind():
    with pytest.raises(ValueError, match="sigma must be positive"):
        gaussian_recon(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), sigma=0)
    with pytest.raises(ValueError, match="'poisson'.*'bernoulli' or 'gaussian'"):
        reconstruction("poisson", torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
