"""Tests of Chen et al.'s sampled MIG (course_lib.metrics.mig_sampled).

Independent check: the mutual information of a small Gaussian-mixture "data set" computed by
numerical quadrature (trapezoid rule on 40,001 points), against the Monte-Carlo estimate with
100,000 samples (tolerance 0.01 nats, ~5 standard errors). Known-answer cases on full grids use
sharp posteriors (σ = 0.01), where the exact MIG is 1 for the perfect code (tolerance 1e-3).
"""

import math

import numpy as np
import pytest
import torch

from course_lib.metrics import mig
from course_lib.metrics.mig_sampled import mig_sampled, sampled_mutual_info
from course_lib.metrics.synthetic import grid_classes, synthetic_representation

SIZES = (4, 5, 6)
SHARP = math.log(0.01**2)


def posterior(kind, sizes=SIZES, logvar=SHARP):
    f = grid_classes(sizes)
    mu = synthetic_representation(kind, sizes)(f)
    return mu, np.full_like(mu, logvar), f


def quadrature_mi(mu, sigma, labels):
    """I(z; v) for z ~ 1/N sum_n N(mu_n, sigma_n^2) (1-D), v = labels, by the trapezoid rule."""
    grid = np.linspace(mu.min() - 8 * sigma.max(), mu.max() + 8 * sigma.max(), 40001)
    dens = np.exp(-0.5 * ((grid[None] - mu[:, None]) / sigma[:, None]) ** 2) / (
        sigma[:, None] * math.sqrt(2 * math.pi)
    )  # [N, G]

    def entropy(p):
        integrand = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        return np.trapezoid(integrand, grid)

    h = entropy(dens.mean(0))
    h_cond = sum((labels == v).mean() * entropy(dens[labels == v].mean(0)) for v in np.unique(labels))
    return h - h_cond


def test_sampled_mi_matches_quadrature():
    rng = np.random.default_rng(0)
    f = grid_classes((3, 4))  # 12 data points
    mu = np.stack([f[:, 0] * 0.5 + 0.1 * rng.normal(size=12), f[:, 1] * 0.3 + 0.2 * f[:, 0]], 1)
    sigma = rng.uniform(0.15, 0.4, size=(12, 2))
    mi, _ = sampled_mutual_info(mu, 2 * np.log(sigma), f, n_samples=100_000, seed=1, dtype=torch.float64)
    for j in range(2):
        for k in range(2):
            exact = quadrature_mi(mu[:, j], sigma[:, j], f[:, k])
            assert mi[j, k] == pytest.approx(exact, abs=0.01), (j, k)
    assert mi[0, 0] > 0.3  # a clearly informative pair, so the check is not trivially 0 == 0


def test_perfect_code_on_full_grid_scores_one():
    mu, lv, f = posterior("perfect")
    r = mig_sampled(mu, lv, f, n_samples=3000, seed=0)
    # Sharp, separated components: I(z_k; v_k) = log |V_k|, and on a full grid q(z_j | v_k) is
    # exactly q(z_j) for j != k, so the cross terms vanish.
    np.testing.assert_allclose(np.diag(r.mutual_info), np.log(SIZES), atol=1e-3)
    assert np.abs(r.mutual_info[~np.eye(3, dtype=bool)]).max() < 1e-3
    assert r.score == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(r.factor_entropy, np.log(SIZES))


@pytest.mark.parametrize("kind", ["perfect", "rescaled", "mixed", "redundant"])
def test_agrees_with_discrete_mig_on_clean_cases(kind):
    mu, lv, f = posterior(kind)
    sampled = mig_sampled(mu, lv, f, n_samples=2000, seed=0).score
    discrete = mig(mu, f).score
    assert sampled == pytest.approx(discrete, abs=0.05)


def test_ranking_matches_discrete_mig():
    kinds = ["perfect", "redundant", "mixed"]
    sampled = [mig_sampled(*posterior(k), n_samples=2000, seed=0).score for k in kinds]
    discrete = [mig(*posterior(k)[::2]).score for k in kinds]
    assert sampled == sorted(sampled, reverse=True) and discrete == sorted(discrete, reverse=True)
    assert sampled[0] - sampled[2] > 0.5


def test_collapsed_latent_is_uninformative_only_for_the_sampled_estimator():
    # Means that move by 1e-3 under posterior noise of σ = 1: no information about the factors.
    mu, _, f = posterior("perfect")
    mu = 1e-3 * mu
    sampled = mig_sampled(mu, np.zeros_like(mu), f, n_samples=2000, seed=0)
    assert abs(sampled.score) < 0.01
    assert mig(mu, f).score == pytest.approx(1.0)  # the histogram is blind to scale


def test_prior_like_random_codes_score_about_zero():
    f = grid_classes(SIZES)
    mu = 0.1 * np.random.default_rng(3).normal(size=(len(f), 3))
    r = mig_sampled(mu, np.zeros_like(mu), f, n_samples=2000, seed=0)
    assert abs(r.score) < 0.01


def test_chunking_does_not_change_the_estimate():
    mu, lv, f = posterior("mixed", logvar=math.log(0.2**2))
    a, _ = sampled_mutual_info(mu, lv, f, n_samples=500, seed=4, dtype=torch.float64)
    b, _ = sampled_mutual_info(mu, lv, f, n_samples=500, seed=4, dtype=torch.float64, chunk_size=64)
    np.testing.assert_allclose(a, b, atol=1e-10)
    c, _ = sampled_mutual_info(torch.tensor(mu), torch.tensor(lv), torch.tensor(f), n_samples=500, seed=4)
    np.testing.assert_allclose(a, c, atol=1e-4)  # float32 on tensors


def test_constant_factor_skipped_and_bad_input():
    mu, lv, f = posterior("perfect", sizes=(1, 4, 5))
    r = mig_sampled(mu, lv, f, n_samples=500, factor_names=["color", "a", "b"])
    assert r.skipped == (0,) and np.isnan(r.per_factor[0])
    assert any("color" in n for n in r.notes)
    with pytest.raises(ValueError, match="same shape"):
        mig_sampled(mu, lv[:, :2], f)
    with pytest.raises(ValueError, match="same number of rows"):
        mig_sampled(mu, lv, f[:-1])
    bad = mu.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mig_sampled(bad, lv, f)
    with pytest.raises(ValueError, match="integer"):
        mig_sampled(mu, lv, f.astype(float))
    with pytest.raises(ValueError, match="entropy"):
        mig_sampled(mu, lv, f, entropy="bits")
