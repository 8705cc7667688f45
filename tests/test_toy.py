import math

import pytest
import torch

from course_lib.data import RingOfGaussians
from course_lib.data.toy import Coverage


def test_centres_lie_evenly_on_the_ring():
    toy = RingOfGaussians(num_modes=6, radius=3.0, std=0.1)
    c = toy.centres.double()
    assert c.shape == (6, 2)
    assert torch.allclose(c.norm(dim=1), torch.full((6,), 3.0, dtype=torch.float64), atol=1e-5)
    angles = torch.atan2(c[:, 1], c[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(6, dtype=torch.float64) * math.pi / 3, atol=1e-5)


def test_samples_have_the_right_modes_and_spread_and_are_seeded():
    toy = RingOfGaussians(num_modes=8, radius=2.0, std=0.05)
    x, modes = toy.sample(16000, generator=torch.Generator().manual_seed(0), return_modes=True)
    assert x.shape == (16000, 2) and modes.shape == (16000,)
    counts = torch.bincount(modes, minlength=8).double() / 16000
    assert torch.allclose(counts, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.015)
    resid = x - toy.centres[modes]
    assert abs(resid.std().item() - 0.05) < 0.002
    assert resid.mean(0).abs().max() < 0.003
    again = toy.sample(16000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


def test_log_prob_matches_torch_distributions():
    toy = RingOfGaussians(num_modes=5, radius=1.5, std=0.3)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(5)),
        torch.distributions.Independent(torch.distributions.Normal(toy.centres, 0.3), 1))
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1)) * 2
    assert torch.allclose(toy.log_prob(x), mix.log_prob(x), atol=1e-4)


def test_coverage_counts_modes_and_high_quality_share():
    toy = RingOfGaussians(num_modes=8, radius=2.0, std=0.02)
    # 30 points on each of modes 0, 1, 2 (inside 3 std) and 10 far away points
    near = toy.centres[[0, 1, 2]].repeat_interleave(30, 0) + 0.04 * torch.tensor([0.6, 0.8])
    far = torch.zeros(10, 2)
    cov = toy.coverage(torch.cat([near, far]))
    assert isinstance(cov, Coverage)
    assert cov.modes_covered == 3
    assert cov.high_quality == pytest.approx(90 / 100)
    assert cov.counts == (30, 30, 30, 0, 0, 0, 0, 0)
    assert "3/8 modes" in str(cov)
    # just outside 3 std: not high quality
    out = toy.centres[:1] + torch.tensor([[0.061, 0.0]])
    assert toy.coverage(out).high_quality == 0.0


def test_coverage_threshold_and_real_data():
    toy = RingOfGaussians()
    x = toy.sample(4000, generator=torch.Generator().manual_seed(2))
    cov = toy.coverage(x)
    assert cov.modes_covered == 8 and cov.high_quality > 0.98  # 3 std holds 1 - exp(-4.5) = 98.9% in 2-D
    # one mode with 5 of 1000 samples: covered only when min_share allows it
    pts = torch.cat([toy.centres[:1].repeat(995, 1), toy.centres[1:2].repeat(5, 1)])
    assert toy.coverage(pts, min_share=0.2).modes_covered == 1  # needs 25
    assert toy.coverage(pts, min_share=0.0).modes_covered == 2  # needs 1
    nan = torch.full((4, 2), float("nan"))
    assert toy.coverage(nan).high_quality == 0.0


@pytest.mark.parametrize("kwargs", [dict(num_modes=0), dict(num_modes=2.5), dict(radius=0.0),
                                    dict(std=-1.0), dict(std=float("nan"))])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        RingOfGaussians(**kwargs)


def test_bad_samples():
    toy = RingOfGaussians()
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        toy.coverage(torch.zeros(10, 3))
    with pytest.raises(ValueError):
        toy.coverage(torch.zeros(0, 2))


def test_sampler_feeds_the_training_loop():
    from course_lib.train import as_sampler

    toy = RingOfGaussians().sampler("cpu")
    assert as_sampler(toy, torch.device("cpu")) is toy
    assert toy.sample(7, torch.Generator().manual_seed(0)).shape == (7, 2)
