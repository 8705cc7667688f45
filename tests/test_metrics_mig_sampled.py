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


def test_overflowing_input_raises_instead_of_nan():
    mu, lv, f = posterior("perfect")
    # exp(±logvar / 2) overflows float32 beyond |logvar| ~ 177: a clear error, not NaN
    for bad_lv in (np.full_like(lv, 500.0), np.full_like(lv, -500.0)):
        with pytest.raises(ValueError, match=r"logvar spans .*\|logvar\| < 177"):
            mig_sampled(mu, bad_lv, f, n_samples=200)
    with pytest.raises(ValueError, match=r"mu spans .*float32 can hold"):
        mig_sampled(mu * 1e39, lv, f, n_samples=200)
    # within the bounds but z = mu + std * eps overflows float32
    with pytest.raises(ValueError, match=r"samples z = mu .* overflowed in float32"):
        mig_sampled(mu * 3.4e38, np.full_like(lv, 170.0), f, n_samples=200)
    with pytest.raises(ValueError, match="NaN or infinite"):
        mig_sampled(mu, np.where(f[:, :1] == 0, np.inf, lv), f, n_samples=200)
    # the same inputs are fine in float64, with the right answers (MI 0 and MIG 1)
    wide = mig_sampled(mu, np.full_like(lv, 500.0), f, n_samples=200, dtype=torch.float64)
    assert np.isfinite(wide.mutual_info).all() and abs(wide.score) < 1e-6
    sharp = mig_sampled(mu, np.full_like(lv, -500.0), f, n_samples=200, dtype=torch.float64)
    assert sharp.score == pytest.approx(1.0, abs=1e-6)


def test_very_sharp_posteriors_with_small_chunks_stay_finite():
    # Blocks where every density underflows (log -inf) used to give NaN in float32.
    mu, _, f = posterior("perfect")
    for logvar in (-100.0, -170.0):
        r = mig_sampled(mu, np.full_like(mu, logvar), f, n_samples=300, chunk_size=64)
        assert r.score == pytest.approx(1.0, abs=1e-4), logvar


def test_counts_are_refused_not_truncated():
    mu, lv, f = posterior("perfect")
    for kw, name in [({"n_samples": 2.7}, "n_samples"), ({"n_samples": -5}, "n_samples"),
                     ({"chunk_size": 1000.5}, "chunk_size"), ({"seed": 0.5}, "seed")]:
        with pytest.raises(ValueError, match=name):
            mig_sampled(mu, lv, f, **kw)
        with pytest.raises(ValueError, match=name):
            sampled_mutual_info(mu, lv, f, **kw)


def test_chen2018_variant_clamps_and_leaves_shape_out():
    import math

    import numpy as np

    from course_lib.metrics import mig_sampled

    rng = np.random.default_rng(0)
    names = ("color", "shape", "scale", "posX")
    n = 600
    factors = np.stack([np.zeros(n, int), rng.integers(0, 3, n), rng.integers(0, 6, n),
                        rng.integers(0, 8, n)], 1)
    # z0 reads shape sharply, z1 scale, z2 posX; z3 is noise-only (its MI is ~0, maybe < 0)
    mu = np.stack([factors[:, 1] * 3.0, factors[:, 2] * 2.0, factors[:, 3] * 2.0, np.zeros(n)], 1)
    logvar = np.full_like(mu, math.log(0.05 ** 2))
    logvar[:, 3] = 0.0
    full = mig_sampled(mu, logvar, factors, n_samples=400, seed=0, factor_names=names)
    chen = mig_sampled(mu, logvar, factors, n_samples=400, seed=0, factor_names=names, variant="chen2018")
    assert full.estimator == f"sampled (Chen et al.), all factors, N = {n:,}, S = 400"
    assert chen.estimator.startswith("sampled (Chen et al.), chen2018") and "(2 factors)" in chen.estimator
    assert chen.estimator.endswith(f"N = {n:,}, S = 400")
    assert (chen.mutual_info >= 0).all() and np.allclose(chen.mutual_info, np.maximum(full.mutual_info, 0))
    assert np.isnan(chen.per_factor[:2]).all() and set(chen.skipped) == {0, 1}
    # the chen2018 score is the mean over scale and posX only, computed by hand from its matrix
    expected = []
    for k in (2, 3):
        top = np.sort(chen.mutual_info[:, k])[::-1]
        expected.append((top[0] - top[1]) / math.log(len(np.unique(factors[:, k]))))
    assert chen.score == pytest.approx(np.mean(expected), rel=1e-9)
    assert full.score == pytest.approx(np.nanmean(full.per_factor[1:]), rel=1e-9)  # shape counted
    with pytest.raises(ValueError, match="pass factor_names"):
        mig_sampled(mu, logvar, factors, n_samples=10, variant="chen2018")
    with pytest.raises(ValueError, match="variant must be one of"):
        mig_sampled(mu, logvar, factors, n_samples=10, variant="chen")


def test_discrete_mig_says_which_estimator_it_is():
    import numpy as np

    from course_lib.metrics import mig

    f = np.stack([np.arange(40) % 4, np.arange(40) % 5], 1)
    assert mig(f.astype(float), f, num_bins=10).estimator == "discrete, 10 bins, N = 40"


def test_empirical_entropy_option_divides_by_the_plug_in_entropy():
    # Uneven factor counts: the 'empirical' option divides each gap by the plug-in H(v_k),
    # 'log_num_values' by log |V_k|; the MI matrix (same seed) is the same.
    f = np.concatenate([grid_classes((4, 3))] + [grid_classes((1, 3))] * 6)  # value 0 of factor 0: 7x
    mu = synthetic_representation("perfect", (4, 3))(f)
    lv = np.full_like(mu, SHARP)
    emp = mig_sampled(mu, lv, f, n_samples=4000, seed=2, entropy="empirical")
    log_v = mig_sampled(mu, lv, f, n_samples=4000, seed=2)
    np.testing.assert_allclose(emp.mutual_info, log_v.mutual_info)
    p = np.bincount(f[:, 0]) / len(f)
    h0 = float(-(p * np.log(p)).sum())
    assert h0 < 0.85 * math.log(4)
    assert emp.factor_entropy[0] == pytest.approx(h0, abs=1e-12)
    assert log_v.factor_entropy[0] == pytest.approx(math.log(4))
    # a sharp exact code carries all of H(v_k): the empirical option scores it 1
    assert emp.per_factor[0] == pytest.approx(1.0, abs=2e-3)
    assert log_v.per_factor[0] == pytest.approx(h0 / math.log(4), abs=2e-3)
