"""FactorVAE's two updates against a hand-written reference step; β-TCVAE, CFactorVAE and the
32×32 networks of seed 004 (Table 2)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.models import BetaTCVAE, CFactorVAE, FactorVAE, Mnist32Decoder, Mnist32Encoder, build_model
from course_lib.models.tc import permute_dims
from course_lib.train import train


def small_factor_vae(**kw):
    torch.manual_seed(0)
    cfg = dict(num_latents=3, gamma=10.0, disc_hidden=8, disc_layers=2, arch="mnist32")
    cfg.update(kw)
    return FactorVAE(**cfg)


def images(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 32, 32, generator=g) > 0.7).float()


def test_permute_dims_keeps_each_column_and_breaks_rows():
    z = torch.arange(40.0).view(10, 4)
    p = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(4):
        assert sorted(p[:, j].tolist()) == z[:, j].tolist()
    assert not torch.equal(p, z)
    # rows of independent columns: dependence is destroyed (correlated input → ~uncorrelated output)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5000, 1, generator=g)
    zz = torch.cat([a, a + 0.1 * torch.randn(5000, 1, generator=g)], 1)
    pp = permute_dims(zz, torch.Generator().manual_seed(2))
    assert torch.corrcoef(zz.T)[0, 1] > 0.99
    assert abs(torch.corrcoef(pp.T)[0, 1]) < 0.05


def test_training_step_matches_hand_written_reference():
    model = small_factor_vae()
    ref = copy.deepcopy(model)
    x = images()
    opts = model.configure_optimizers(1e-3)
    torch.manual_seed(1)
    out = model.training_step(x, 0, opts, generator=torch.Generator().manual_seed(2))

    # --- reference, written out by hand ------------------------------------------------
    torch.manual_seed(1)
    mu, logvar = ref.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape)
    recon = F.binary_cross_entropy_with_logits(ref.decode(z), x, reduction="sum") / x.shape[0]
    kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)).sum(1).mean()
    tc = ref.discriminator(z).mean()
    vae_loss = recon + kl + 10.0 * tc
    vae_params = [p for n, p in ref.named_parameters() if not n.startswith("discriminator.")]
    disc_params = list(ref.discriminator.parameters())
    g_vae = torch.autograd.grad(vae_loss, vae_params)
    zd = z.detach()
    gen = torch.Generator().manual_seed(2)
    idx = torch.stack([torch.randperm(3, generator=gen) for _ in range(3)], 1)
    z_perm = torch.gather(zd[3:], 0, idx)
    d_loss = 0.5 * (F.softplus(-ref.discriminator(zd[:3])).mean()
                    + F.softplus(ref.discriminator(z_perm)).mean())
    g_disc = torch.autograd.grad(d_loss, disc_params)

    assert out["loss"].item() == pytest.approx(vae_loss.item(), rel=1e-5)
    assert out["disc_loss"].item() == pytest.approx(d_loss.item(), rel=1e-5)
    # the discriminator's update left the VAE's gradients as the VAE loss alone makes them
    for p, g in zip(model.vae_parameters(), g_vae):
        torch.testing.assert_close(p.grad, g)
    # the discriminator's gradients come from its own loss only (nothing from the VAE's)
    for p, g in zip(model.discriminator.parameters(), g_disc):
        torch.testing.assert_close(p.grad, g)
    # and each optimiser moved only its own network, by one Adam step on those gradients
    ref_opt_vae = torch.optim.Adam(vae_params, lr=1e-3)
    ref_opt_disc = torch.optim.Adam(disc_params, lr=model.disc_lr, betas=(0.5, 0.9))
    for p, g in zip(vae_params + disc_params, g_vae + g_disc):
        p.grad = g
    ref_opt_vae.step()
    ref_opt_disc.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, msg=f"parameter {name} differs from the reference step")


def test_vae_update_does_not_train_the_discriminator():
    model = small_factor_vae()
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    opts = model.configure_optimizers(1e-3)
    opts["discriminator"].param_groups[0]["lr"] = 0.0  # only the VAE can move anything now
    model.training_step(images(), 0, opts)
    for p, b in zip(model.discriminator.parameters(), before):
        assert torch.equal(p, b)
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_train_loop_runs_without_in_place_errors():
    model = small_factor_vae()
    data = images(32)
    with torch.autograd.set_detect_anomaly(True):
        res = train(model, data, steps=4, batch_size=8, lr=1e-3, progress=False, device="cpu")
    for key in ("tc", "disc_loss", "disc_acc", "recon", "kl"):
        assert len(res.history[key]) >= 1 and math.isfinite(res.history[key][-1])


def test_discriminator_learns_to_detect_correlation():
    # a fixed correlated "q(z)": the discriminator's TC estimate (mean logit) must become positive
    model = small_factor_vae(disc_hidden=32)
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    from course_lib.models.tc import tc_discriminator_loss
    for _ in range(150):
        a = torch.randn(128, 1, generator=g)
        z = torch.cat([a, a + 0.3 * torch.randn(128, 1, generator=g), torch.randn(128, 1, generator=g)], 1)
        opt.zero_grad()
        loss, acc = tc_discriminator_loss(model.discriminator, z[:64], permute_dims(z[64:], g))
        loss.backward()
        opt.step()
    true_tc = -0.5 * math.log(1 - 1 / 1.09)  # mutual information of the correlated pair (1.25 nats)
    # the estimate (mean logit) on 20,000 fresh samples of q(z), not on the last training batch
    gz = torch.Generator().manual_seed(9)
    a = torch.randn(20000, 1, generator=gz)
    fresh = torch.cat([a, a + 0.3 * torch.randn(20000, 1, generator=gz), torch.randn(20000, 1, generator=gz)], 1)
    est = model.total_correlation(fresh).item()
    assert acc > 0.7
    assert est == pytest.approx(true_tc, abs=0.3)


def test_the_bayes_optimal_critic_gives_the_true_tc_and_minimises_the_discriminator_loss():
    """With the exact log density ratio log q(z) − Σ_j log q(z_j) as the critic (no training), the
    model's TC estimate is the closed-form TC up to Monte Carlo error, and the discriminator's
    loss is at its minimum: scaling the exact logits by (1 + ε) raises it either way. A flipped
    label, a flipped sign of the estimate or a ratio the wrong way round fails both."""
    from torch.distributions import MultivariateNormal, Normal

    from course_lib.losses.tc import gaussian_total_correlation
    from course_lib.models.tc import tc_discriminator_loss

    cov = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.09, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    joint = MultivariateNormal(torch.zeros(3, dtype=torch.float64), cov)
    marginals = Normal(torch.zeros(3, dtype=torch.float64), cov.diagonal().sqrt())

    class ExactCritic(torch.nn.Module):
        def __init__(self, scale=1.0):
            super().__init__()
            self.scale = scale

        def forward(self, z):
            return self.scale * (joint.log_prob(z) - marginals.log_prob(z).sum(1))

    model = small_factor_vae()
    model.discriminator = ExactCritic()
    torch.manual_seed(0)
    z = joint.sample((200_000,))
    log_ratio = model.discriminator(z)
    true_tc = float(gaussian_total_correlation(cov))
    assert true_tc == pytest.approx(-0.5 * math.log(1 - 1 / 1.09))   # the pair's mutual information
    est = float(model.total_correlation(z))
    assert est == pytest.approx(true_tc, abs=4 * float(log_ratio.std()) / math.sqrt(len(z)))
    z_perm = permute_dims(joint.sample((200_000,)), torch.Generator().manual_seed(1))
    losses = {s: float(tc_discriminator_loss(ExactCritic(s), z, z_perm)[0]) for s in (0.9, 1.0, 1.1)}
    assert losses[1.0] < losses[0.9] and losses[1.0] < losses[1.1]


def test_factor_vae_bad_input():
    with pytest.raises(ValueError, match="gamma"):
        FactorVAE(gamma=-1.0)
    with pytest.raises(ValueError, match="disc_lr"):
        FactorVAE(disc_lr=0.0, disc_hidden=4, disc_layers=1)
    m = small_factor_vae()
    with pytest.raises(ValueError, match="at least 2"):
        m.training_step(images(1), 0, m.configure_optimizers(1e-3))


def test_config_rebuilds_and_registry():
    m = small_factor_vae()
    assert type(m)(**m.config()).config() == m.config()
    c = CFactorVAE(num_latents=2, disc_hidden=4, disc_layers=1, c_steps=10, arch="mnist32")
    assert build_model("cfactor_vae", **c.config()).config() == c.config()
    b = BetaTCVAE(num_latents=2, estimator="mws", dataset_size=100, arch="mnist32")
    assert build_model("beta_tcvae", **b.config()).config() == b.config()


def test_cfactor_vae_loss_is_eq_12():
    torch.manual_seed(0)
    m = CFactorVAE(num_latents=3, gamma=5.0, capacity_weight=2.0, c_start=1.0, c_max=11.0,
                   c_steps=10, disc_hidden=8, disc_layers=2, arch="mnist32")
    assert m.capacity(0) == pytest.approx(1.0) and m.capacity(5) == pytest.approx(6.0)
    assert m.capacity(50) == pytest.approx(11.0)
    x = images()
    torch.manual_seed(1)
    t = m.loss_terms(x, step=5)
    # eq. 12 term by term: the absolute value of every image's KL minus C, then the mean
    torch.manual_seed(1)
    mu, logvar = m.encode(x)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    kl_each = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1)
    expected = t["recon"] + 2.0 * (kl_each - 6.0).abs().mean() + 5.0 * t["tc"]
    assert t["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert t["capacity"].item() == pytest.approx(6.0)
    assert t["kl_spread"].item() == pytest.approx((kl_each - kl_each.mean()).abs().mean().item(), rel=1e-5)
    # the batch variant takes |mean KL - C|, which is never larger (Jensen)
    b = CFactorVAE(**{**m.config(), "capacity_mode": "batch"})
    b.load_state_dict(m.state_dict())
    torch.manual_seed(1)
    tb = b.loss_terms(x, step=5)
    expected_b = tb["recon"] + 2.0 * (kl_each.mean() - 6.0).abs() + 5.0 * tb["tc"]
    assert tb["loss"].item() == pytest.approx(expected_b.item(), rel=1e-5)
    assert tb["loss"].item() <= t["loss"].item() + 1e-6
    with pytest.raises(ValueError, match="capacity_mode must be one of"):
        CFactorVAE(capacity_mode="mean")
    with pytest.raises(ValueError):
        CFactorVAE(capacity_weight=-1.0)
    with pytest.raises(ValueError):
        CFactorVAE(c_start=5.0, c_max=1.0)


def _beta_tcvae_terms(alpha, beta, gamma):
    """A small β-TCVAE, its loss terms on 16 images, and the x, μ, log σ² and z of that step
    (the reparameterisation noise drawn again from the same seed)."""
    torch.manual_seed(0)
    m = BetaTCVAE(num_latents=3, alpha=alpha, beta=beta, gamma=gamma, dataset_size=1000, arch="mnist32")
    x = images(16)
    torch.manual_seed(3)
    t = m.loss_terms(x)
    torch.manual_seed(3)
    mu, logvar = m.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape)
    return m, t, x, mu, logvar, z


def test_beta_tcvae_with_unit_weights_is_the_monte_carlo_elbo():
    m, t, x, mu, logvar, z = _beta_tcvae_terms(1.0, 1.0, 1.0)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert (t["loss"] - t["recon"]).item() == pytest.approx((q - p).mean().item(), abs=1e-4)
    # β weighs the TC only
    m6 = copy.deepcopy(m)
    m6.beta = 6.0
    torch.manual_seed(3)
    t6 = m6.loss_terms(x)
    assert (t6["loss"] - t["loss"]).item() == pytest.approx(5.0 * t["tc"].item(), abs=1e-4)


def test_beta_tcvae_weighs_each_term_by_its_own_weight():
    """α, β and γ all different: loss − recon = α·MI + β·TC + γ·dimension-wise KL, the three terms
    from tc_decomposition on the same noise (swapping α and γ would fail)."""
    from course_lib.losses import tc_decomposition

    m, t, _, mu, logvar, z = _beta_tcvae_terms(0.3, 2.0, 5.0)
    mi, tc, dw = tc_decomposition(z, mu, logvar, 1000, m.estimator)
    expected = 0.3 * mi + 2.0 * tc + 5.0 * dw
    assert (t["loss"] - t["recon"]).item() == pytest.approx(expected.item(), abs=1e-4)
    # the two terms differ by far more than the tolerance over (γ − α), so swapping α and γ would show
    assert 4.7 * abs(mi.item() - dw.item()) > 100 * 1e-4


def test_beta_tcvae_bad_input():
    for kw in ({"alpha": -1.0}, {"beta": -0.5}, {"gamma": -2.0}):
        with pytest.raises(ValueError, match="weight"):
            BetaTCVAE(**kw)
    with pytest.raises(ValueError, match="estimator"):
        BetaTCVAE(estimator="exact")
    m = BetaTCVAE(num_latents=2, arch="mnist32")
    with pytest.raises(ValueError, match="at least 2"):
        m.loss_terms(images(1))


def test_mnist32_networks_shapes_and_errors():
    enc, dec = Mnist32Encoder(8), Mnist32Decoder(4)
    assert enc(torch.zeros(5, 1, 32, 32)).shape == (5, 8)
    assert dec(torch.zeros(5, 4)).shape == (5, 1, 32, 32)
    # Table 2: conv widths 32, 32, 64 and a 64·4·4 → 256 layer
    convs = [mod for mod in enc.conv if isinstance(mod, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64]
    assert enc.fc[1].in_features == 64 * 4 * 4 and enc.fc[1].out_features == 256
    with pytest.raises(ValueError, match="32×32"):
        enc(torch.zeros(2, 1, 64, 64))
    with pytest.raises(ValueError, match="arch"):
        FactorVAE(arch="mnist28")


def test_discriminator_accuracy_counts_a_zero_logit_as_a_coin_toss():
    from course_lib.models.tc import tc_discriminator_loss

    class Fixed(torch.nn.Module):
        def forward(self, z):
            return z[:, 0]  # the logit is the first coordinate

    joint = torch.tensor([[1.0], [0.0], [-1.0], [2.0]])  # right, tie, wrong, right
    perm = torch.tensor([[-3.0], [0.0], [0.0], [0.0]])   # right, tie, tie, tie
    loss, acc = tc_discriminator_loss(Fixed(), joint, perm)
    assert acc.item() == pytest.approx(0.5 * (2.5 / 4 + 2.5 / 4))
    _, acc0 = tc_discriminator_loss(Fixed(), torch.zeros(5, 1), torch.zeros(7, 1))
    assert acc0.item() == pytest.approx(0.5)  # a constant-0 critic is at chance, not at 0
    softplus = torch.nn.functional.softplus
    expected = 0.5 * (softplus(-joint[:, 0]).mean() + softplus(perm[:, 0]).mean())
    assert loss.item() == pytest.approx(expected.item())
