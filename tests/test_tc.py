"""Total-correlation estimators against the closed form of a Gaussian aggregate posterior.

If the posterior means are drawn from N(0, Σ − s²I) and every posterior is N(μ_n, s²I), the
aggregate posterior of an infinite data set is q(z) = N(0, Σ), so
    TC   = ½ (Σ_j log Σ_jj − log det Σ)
    MI   = H(q(z)) − H(q(z|n)) = ½ log det Σ − ½ D log s²
    DWKL = Σ_j ½ (Σ_jj − 1 − log Σ_jj).
Tolerances reached (4 latents, correlation 0.5, s² = 0.25, N = 10⁶): MSS TC within 0.08 nats
at batch 1024 (seen: 0.03) and within 0.05 nats at batch 4096 (seen: 0.003, slow test).
"""

import math

import pytest
import torch

from course_lib.losses import tc_decomposition
from course_lib.losses.tc import gaussian_log_density_matrix, gaussian_total_correlation, log_qz, mws_tc_offset

N_DATA = 10**6


def gaussian_batch(m, d=4, rho=0.5, s2=0.25, seed=0):
    g = torch.Generator().manual_seed(seed)
    cov = torch.full((d, d), rho) + (1 - rho) * torch.eye(d)
    chol = torch.linalg.cholesky(cov - s2 * torch.eye(d))
    mu = torch.randn(m, d, generator=g) @ chol.T
    logvar = torch.full((m, d), math.log(s2))
    z = mu + math.sqrt(s2) * torch.randn(m, d, generator=g)
    return z, mu, logvar, cov


def closed_forms(cov, s2):
    d = cov.shape[0]
    tc = gaussian_total_correlation(cov).item()
    mi = 0.5 * torch.logdet(cov).item() - 0.5 * d * math.log(s2)
    diag = torch.diagonal(cov)
    dwkl = (0.5 * (diag - 1 - torch.log(diag))).sum().item()
    return mi, tc, dwkl


def test_closed_form_tc_matches_mutual_information_of_two_gaussians():
    # for D = 2 the TC is the mutual information −½ log(1 − ρ²)
    rho = 0.6
    cov = torch.tensor([[1.0, rho], [rho, 1.0]])
    assert gaussian_total_correlation(cov).item() == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-6)


def test_log_density_matrix_matches_torch_distributions():
    z, mu, logvar, _ = gaussian_batch(5, d=3, seed=1)
    logvar = logvar + torch.linspace(-0.5, 0.5, 15).view(5, 3)
    got = gaussian_log_density_matrix(z, mu, logvar)
    ref = torch.distributions.Normal(mu.unsqueeze(0), torch.exp(0.5 * logvar).unsqueeze(0)).log_prob(z.unsqueeze(1))
    torch.testing.assert_close(got, ref)


def test_log_qz_brute_force_on_a_tiny_batch():
    z, mu, logvar, _ = gaussian_batch(4, d=2, seed=2)
    n = 100
    dist = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    joint_mws, marg_mws = log_qz(z, mu, logvar, n, "mws")
    joint_mss, marg_mss = log_qz(z, mu, logvar, n, "mss")
    for i in range(4):
        dens = torch.stack([dist.log_prob(z[i])[j].sum().exp() for j in range(4)])
        dens_d = torch.stack([dist.log_prob(z[i])[j].exp() for j in range(4)])  # 4×D
        assert joint_mws[i].item() == pytest.approx(math.log(dens.sum().item() / (n * 4)), abs=1e-5)
        w = torch.full((4,), (n - 1) / (n * 3))
        w[i] = 1 / n
        assert joint_mss[i].item() == pytest.approx(math.log((w * dens).sum().item()), abs=1e-5)
        torch.testing.assert_close(marg_mss[i], torch.log((w.unsqueeze(1) * dens_d).sum(0)))
        torch.testing.assert_close(marg_mws[i], torch.log(dens_d.sum(0) / (n * 4)))


def test_terms_sum_to_monte_carlo_kl_for_both_estimators():
    z, mu, logvar, _ = gaussian_batch(64, seed=3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    for est in ("mss", "mws"):
        total = sum(t.item() for t in tc_decomposition(z, mu, logvar, 1000, est))
        assert total == pytest.approx((q - p).mean().item(), abs=1e-4)


def test_mss_matches_closed_form_at_batch_1024():
    z, mu, logvar, cov = gaussian_batch(1024, seed=0)
    mi, tc, dwkl = (t.item() for t in tc_decomposition(z, mu, logvar, N_DATA, "mss"))
    mi_true, tc_true, dwkl_true = closed_forms(cov, 0.25)
    assert tc_true == pytest.approx(0.5823, abs=1e-3)
    assert tc == pytest.approx(tc_true, abs=0.08)
    assert mi == pytest.approx(mi_true, abs=0.15)
    assert dwkl == pytest.approx(dwkl_true, abs=0.15)


def test_mss_error_shrinks_with_batch():
    errs = []
    for m in (16, 1024):
        e = [abs(tc_decomposition(*gaussian_batch(m, seed=s)[:3], N_DATA, "mss")[1].item() - 0.5823)
             for s in range(4)]
        errs.append(sum(e) / 4)
    assert errs[1] < errs[0] / 2


@pytest.mark.slow
def test_mss_within_005_nats_at_batch_4096():
    z, mu, logvar, cov = gaussian_batch(4096, seed=0)
    tc = tc_decomposition(z, mu, logvar, N_DATA, "mss")[1].item()
    assert tc == pytest.approx(gaussian_total_correlation(cov).item(), abs=0.05)


def test_mss_is_about_zero_for_independent_latents():
    z, mu, logvar, _ = gaussian_batch(1024, rho=0.0, s2=0.5, seed=4)
    tc = tc_decomposition(z, mu, logvar, N_DATA, "mss")[1].item()
    assert abs(tc) < 0.03


def test_mss_is_negative_on_a_small_batch():
    # Jensen: log of an unbiased density estimate is biased low, the 4-D joint more than the marginals
    tcs = [tc_decomposition(*gaussian_batch(16, rho=0.0, s2=0.25, seed=s)[:3], N_DATA, "mss")[1].item()
           for s in range(5)]
    assert sum(tcs) / 5 < -0.1


def test_mws_carries_the_published_offset():
    z, mu, logvar, cov = gaussian_batch(1024, seed=0)
    d = z.shape[1]
    tc_a = tc_decomposition(z, mu, logvar, N_DATA, "mws")[1].item()
    tc_b = tc_decomposition(z, mu, logvar, 10 * N_DATA, "mws")[1].item()
    # the offset is exactly (D − 1)·log N: changing N by ×10 moves TC by (D − 1)·log 10
    assert tc_b - tc_a == pytest.approx((d - 1) * math.log(10), abs=1e-3)
    assert mws_tc_offset(d, N_DATA) == pytest.approx(3 * math.log(N_DATA))
    # and, once removed, MWS agrees with the closed form too
    assert tc_a - mws_tc_offset(d, N_DATA) == pytest.approx(gaussian_total_correlation(cov).item(), abs=0.08)
    assert tc_a > 40  # what shows in a log: ≈ 41.4 nats for a true TC of 0.58


def test_mws_mi_and_dwkl_offsets():
    z, mu, logvar, _ = gaussian_batch(256, seed=5)
    mi1, _, dw1 = tc_decomposition(z, mu, logvar, 1000, "mws")
    mi2, _, dw2 = tc_decomposition(z, mu, logvar, 1000 * math.e ** 2 // 1, "mws")
    shift = math.log((1000 * math.e ** 2 // 1) / 1000)
    assert (mi2 - mi1).item() == pytest.approx(shift, abs=1e-4)
    assert (dw2 - dw1).item() == pytest.approx(-4 * shift, abs=1e-4)


def test_gradients_flow_and_mws_offset_has_no_gradient():
    z, mu, logvar, _ = gaussian_batch(32, seed=6)
    mu = mu.clone().requires_grad_(True)
    g1 = torch.autograd.grad(tc_decomposition(z, mu, logvar, 1000, "mws")[1], mu)[0]
    g2 = torch.autograd.grad(tc_decomposition(z, mu, logvar, 10**6, "mws")[1], mu)[0]
    assert g1.abs().sum() > 0
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("est", ["mss", "mws"])
def test_batch_too_small(est):
    z, mu, logvar, _ = gaussian_batch(1, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        tc_decomposition(z, mu, logvar, 100, est)


def test_dataset_size_missing_or_wrong():
    z, mu, logvar, _ = gaussian_batch(8, seed=0)
    with pytest.raises(ValueError, match="dataset_size"):
        tc_decomposition(z, mu, logvar, None, "mss")
    with pytest.raises(ValueError, match="smaller than the batch"):
        tc_decomposition(z, mu, logvar, 4, "mss")
    for bad in (10.5, float("nan"), float("inf")):
        with pytest.raises(TypeError, match="whole, finite number"):
            tc_decomposition(z, mu, logvar, bad, "mss")
    import numpy as np  # a NumPy integer is a whole number too

    tc_decomposition(z, mu, logvar, np.int64(1000), "mss")
    with pytest.raises(ValueError, match="unknown estimator"):
        tc_decomposition(z, mu, logvar, 100, "mc")
    with pytest.raises(ValueError, match="M×D"):
        tc_decomposition(z, mu[:4], logvar, 100, "mss")


# ------------------------------------------------------------------ a finite data set, exactly
def _finite_population(n, d=4, rho=0.5, s2=0.25, seed=0):
    """n posteriors N(μ_n, s2·I) with correlated means and one sample z_n of each (gaussian_batch),
    in float64."""
    z, mu, logvar, _ = gaussian_batch(n, d=d, rho=rho, s2=s2, seed=seed)
    return z.double(), mu.double(), logvar.double()


def _exact_log_q(z, mu, logvar):
    """log q(z) and log q(z_d) of the aggregate posterior of the whole data set (μ, logvar),
    at the points z, by torch.distributions and a log-sum-exp over every data point."""
    posteriors = torch.distributions.Normal(mu.unsqueeze(0), (0.5 * logvar).exp().unsqueeze(0))
    per_point = posteriors.log_prob(z.unsqueeze(1))                  # points × N × D
    log_n = math.log(len(mu))
    return torch.logsumexp(per_point.sum(2), 1) - log_n, torch.logsumexp(per_point, 1) - log_n


def test_mss_is_an_unbiased_estimate_of_q_over_every_batch():
    """Enumerate every batch {i, j, k} (i the sample's own point, j < k two others of N = 7): the
    mean of the MSS estimate of q(z_i), and of each q(z_i,d), is the data set's exact value."""
    import itertools

    n, i = 7, 0
    z, mu, logvar = _finite_population(n, d=2, s2=0.3, seed=3)
    exact_joint, exact_marg = _exact_log_q(z[i:i + 1], mu, logvar)
    estimates, marginals = [], []
    for j, k in itertools.combinations([p for p in range(n) if p != i], 2):
        rows = [i, j, k]
        log_joint, log_marg = log_qz(z[rows], mu[rows], logvar[rows], n, "mss")
        estimates.append(log_joint[0].exp())
        marginals.append(log_marg[0].exp())
    torch.testing.assert_close(torch.stack(estimates).mean(), exact_joint[0].exp(), rtol=1e-10, atol=0)
    torch.testing.assert_close(torch.stack(marginals).mean(0), exact_marg[0].exp(), rtol=1e-10, atol=0)


def test_mss_is_exact_when_the_batch_is_the_whole_data_set():
    z, mu, logvar = _finite_population(50, seed=1)
    log_joint, log_marg = log_qz(z, mu, logvar, 50, "mss")
    exact_joint, exact_marg = _exact_log_q(z, mu, logvar)
    torch.testing.assert_close(log_joint, exact_joint, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_marg, exact_marg, rtol=1e-10, atol=1e-10)


def test_narrow_posteriors_cap_the_batch_mi_near_log_m_and_inflate_the_tc():
    """Posteriors narrow against the codes' spread (σ = 0.05, as a trained model's): MWS less its
    constant offsets caps the index-code MI at about log M and overstates the TC by nats; MSS
    keeps the MI but its TC comes out too large on a small batch (too small for wide ones)."""
    n, m, d = 4000, 64, 4
    z, mu, logvar = _finite_population(n, d=d, s2=0.0025)
    exact_joint, exact_marg = _exact_log_q(z[:500], mu, logvar)
    log_cond = torch.distributions.Normal(mu[:500], (0.5 * logvar[:500]).exp()).log_prob(z[:500]).sum(1)
    exact_mi = float((log_cond - exact_joint).mean())
    exact_tc = float((exact_joint - exact_marg.sum(1)).mean())
    g = torch.Generator().manual_seed(1)
    got = {"mss": [], "mws": []}
    for _ in range(6):
        rows = torch.randperm(n, generator=g)[:m]
        for estimator in got:
            mi, tc, _ = tc_decomposition(z[rows], mu[rows], logvar[rows], n, estimator)
            if estimator == "mws":
                mi, tc = mi - math.log(n), tc - mws_tc_offset(d, n)
            got[estimator].append((float(mi), float(tc)))
    mws_mi, mws_tc = (sum(v) / len(v) for v in zip(*got["mws"]))
    mss_mi, mss_tc = (sum(v) / len(v) for v in zip(*got["mss"]))
    assert exact_mi > math.log(m) + 3                    # the setting: more information than log M
    assert mws_mi == pytest.approx(math.log(m), abs=0.05)
    assert mws_tc > exact_tc + 2
    assert mss_mi == pytest.approx(exact_mi, abs=0.3)
    assert mss_tc > exact_tc + 0.5
