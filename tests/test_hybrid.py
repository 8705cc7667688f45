"""VAE-GAN, the VAE–InfoGAN hybrid, ID-GAN and the factor Fréchet distance."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.data import DSprites
from course_lib.models import IDGAN, VAEGAN, VAEInfoGAN, build_model
from course_lib.quality import (
    FactorClassifier,
    LabelledSampler,
    factor_frechet_distance,
    frechet_distance,
    gaussian_stats,
    traversal_agreement,
    traversal_factor_curves,
)
from course_lib.train import atomic_save, checkpoint_state, load_model, train


@pytest.fixture(scope="module")
def batch():
    ds = DSprites()
    g = torch.Generator().manual_seed(0)
    return ds.images(ds.sample_classes(8, g))


def _sgd(model, names):
    return {n: torch.optim.SGD(getattr(model, n).parameters(), lr=1.0) for n in names}


def _reference_vaegan_grads(ref, batch, pixel_weight):
    """Each network's gradient from its own loss only (Larsen et al.), written out term by term."""
    torch.manual_seed(1)
    terms = ref.losses(batch)
    d_real, d_recon, d_prior = terms["logits"]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    gan_gen = bce(d_recon, torch.ones_like(d_recon)) + bce(d_prior, torch.ones_like(d_prior))
    gan_dis = (bce(d_real, torch.ones_like(d_real)) + bce(d_recon, torch.zeros_like(d_recon))
               + bce(d_prior, torch.zeros_like(d_prior)))
    pixel = terms["pixel_recon"]
    expected = {}
    for name, loss in (("encoder", ref.beta * terms["kl"] + terms["llike"] + pixel_weight * pixel),
                       ("decoder", ref.gamma * terms["llike"] + gan_gen + pixel_weight * pixel),
                       ("discriminator", gan_dis)):
        params = list(getattr(ref, name).parameters())
        expected[name] = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return expected


@pytest.mark.parametrize("pixel_weight", [0.0, 0.5])
def test_vaegan_three_separate_updates(batch, pixel_weight):
    torch.manual_seed(0)
    model = VAEGAN(num_latents=4, beta=2.0, gamma=0.5, pixel_weight=pixel_weight)
    ref = copy.deepcopy(model)
    expected = _reference_vaegan_grads(ref, batch, pixel_weight)
    before = {n: [p.detach().clone() for p in getattr(model, n).parameters()] for n in expected}
    torch.manual_seed(1)
    terms = model.training_step(batch, 0, _sgd(model, expected))
    for name, grads in expected.items():
        for p0, p1, g in zip(before[name], getattr(model, name).parameters(), grads):
            torch.testing.assert_close(p0 - p1.detach(), g, rtol=1e-4, atol=1e-6)
    # the pixel term is logged either way; it enters the losses only when α > 0
    gan = terms["decoder"] - model.gamma * terms["llike"] - pixel_weight * terms["pixel_recon"]
    assert terms["pixel_recon"] > 0 and 0 < gan < 10


def test_vaegan_r1_penalty_enters_the_discriminators_update_only(batch):
    """r1 = γ > 0 adds γ/2 · E‖∇_x D(x)‖² to D's loss (brute force per image); the encoder's and
    the decoder's updates stay those of the plain model; off, the config is the old one."""
    torch.manual_seed(0)
    model = VAEGAN(num_latents=4, beta=2.0, gamma=0.5, r1=10.0)
    assert model.config()["r1"] == 10.0 and "r1" not in VAEGAN(num_latents=4).config()
    plain = copy.deepcopy(model)
    plain.r1 = 0.0
    expected = _reference_vaegan_grads(copy.deepcopy(plain), batch, 0.0)
    norms = []
    for i in range(len(batch)):
        xi = batch[i:i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model.discriminator(xi).sum(), xi, create_graph=True)
        norms.append(g.pow(2).sum())
    penalty = torch.stack(norms).mean()
    grads_r1 = torch.autograd.grad(0.5 * 10.0 * penalty, list(model.discriminator.parameters()),
                                   allow_unused=True)  # the last bias does not move ∇_x D
    assert sum(float(g.abs().max()) for g in grads_r1 if g is not None) > 1e-3  # a step worth testing
    expected["discriminator"] = [g0 if g1 is None else g0 + g1
                                 for g0, g1 in zip(expected["discriminator"], grads_r1)]
    before = {n: [p.detach().clone() for p in getattr(model, n).parameters()] for n in expected}
    torch.manual_seed(1)
    terms = model.training_step(batch, 0, _sgd(model, expected))
    torch.testing.assert_close(terms["r1"], penalty.detach())
    for name, grads in expected.items():
        for p0, p1, g in zip(before[name], getattr(model, name).parameters(), grads):
            torch.testing.assert_close(p0 - p1.detach(), g, rtol=1e-4, atol=1e-6)
    assert build_model("vae_gan", **model.config()).r1 == 10.0
    with pytest.raises(ValueError, match="r1 must be >= 0"):
        VAEGAN(r1=-1.0)


def test_vaegan_trains_with_the_losses_fn_it_is_given(batch):
    """A notebook passes the student's function: the updates follow it, not the library's."""
    from course_lib.models.hybrid import vaegan_losses

    calls = []

    def mine(kl, llike, d_real, d_recon, d_prior, beta, gamma):
        calls.append((float(kl.detach()), float(llike.detach()), beta, gamma))
        enc, dec, dis = vaegan_losses(kl, llike, d_real, d_recon, d_prior, beta, gamma)
        return 3 * enc, 0 * dec, dis          # a decoder that never learns, an encoder at 3×

    torch.manual_seed(0)
    model = VAEGAN(num_latents=4, beta=2.0, gamma=0.5, losses_fn=mine)
    plain = copy.deepcopy(model)
    plain.losses_fn = vaegan_losses
    expected = _reference_vaegan_grads(copy.deepcopy(plain), batch, 0.0)
    dec_before = [p.detach().clone() for p in model.decoder.parameters()]
    enc_before = [p.detach().clone() for p in model.encoder.parameters()]
    torch.manual_seed(1)
    model.training_step(batch, 0, _sgd(model, ("encoder", "decoder", "discriminator")))
    assert len(calls) == 1 and calls[0][2:] == (2.0, 0.5)
    assert all(torch.equal(p0, p1) for p0, p1 in zip(dec_before, model.decoder.parameters()))
    for p0, p1, g in zip(enc_before, model.encoder.parameters(), expected["encoder"]):
        torch.testing.assert_close(p0 - p1.detach(), 3 * g, rtol=1e-4, atol=1e-6)
    # the function is not configuration: a checkpoint rebuilds the model with the library's
    assert "losses_fn" not in model.config()
    assert build_model("vae_gan", **model.config()).losses_fn is vaegan_losses


def test_vaegan_init_from_a_vae(batch):
    torch.manual_seed(0)
    vae = build_model("beta_vae", num_latents=3, beta=0.5).eval()
    model = VAEGAN(num_latents=3).init_from(vae).eval()
    with torch.no_grad():
        torch.testing.assert_close(model.encode(batch)[0], vae.encode(batch)[0])
        z = torch.randn(5, 3)
        torch.testing.assert_close(model.decode(z), vae.decode(z))
    # a copy, not a shared module: training the VAE-GAN leaves the VAE as it was
    frozen = {k: v.clone() for k, v in vae.state_dict().items()}
    train(model, batch, steps=2, batch_size=4, lr=1e-3, device="cpu", progress=False)
    assert all(torch.equal(frozen[k], v) for k, v in vae.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(model.decoder.state_dict().values(),
                                                     vae.decoder.state_dict().values()))
    with pytest.raises(ValueError, match="build the VAE-GAN with the VAE's num_latents"):
        VAEGAN(num_latents=4).init_from(vae)
    with pytest.raises(ValueError, match="Burgess 64×64 encoder and decoder"):
        VAEGAN(num_latents=3).init_from(build_model("vae", num_latents=3, arch="mnist32"))


def test_vaegan_options_and_round_trip(tmp_path, batch):
    model = VAEGAN(num_latents=3, beta=0.1, gamma=1.0, feature_layer="conv3", pixel_weight=0.2, adam_beta1=0.5)
    opts = model.configure_optimizers(2e-4)
    assert set(opts) == {"encoder", "decoder", "discriminator"}
    for opt in opts.values():
        assert opt.param_groups[0]["lr"] == 2e-4 and opt.param_groups[0]["betas"] == (0.5, 0.999)
    result = train(model, batch, steps=2, batch_size=4, checkpoint=tmp_path / "vaegan.pt", device="cpu",
                   progress=False)
    loaded = load_model(result.checkpoint, device="cpu")
    assert loaded.config() == model.config()
    assert (loaded.feature_layer, loaded.pixel_weight, loaded.adam_beta1) == ("conv3", 0.2, 0.5)
    z = torch.randn(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(z), model.eval().decode(z))
    with pytest.raises(ValueError, match=r"adam_beta1 must be in \[0, 1\)"):
        VAEGAN(adam_beta1=1.0)
    with pytest.raises(ValueError, match="pixel_weight must be >= 0"):
        VAEGAN(pixel_weight=-1.0)
    with pytest.raises(TypeError, match="losses_fn must be a function"):
        VAEGAN(losses_fn="vaegan_losses")


def test_vaegan_feature_layers_are_the_discriminators(batch):
    """Dis_l is a layer of the discriminator that classifies: its last output is D's logit."""
    torch.manual_seed(0)
    d = VAEGAN(num_latents=3).discriminator
    hidden = d.hidden(batch)
    torch.testing.assert_close(hidden["out"], d(batch))
    assert hidden["conv3"].shape == (8, 32 * 8 * 8) and hidden["conv4"].shape == (8, 32 * 4 * 4)
    assert hidden["fc1"].shape == hidden["fc2"].shape == (8, 256)


def test_vaegan_bad_feature_layer():
    with pytest.raises(ValueError, match="feature_layer"):
        VAEGAN(feature_layer="conv9")


def test_vae_infogan_logs_kl_groups(batch):
    torch.manual_seed(0)
    model = VAEInfoGAN(num_latents=6, num_informative=2)
    before = copy.deepcopy(model)   # the terms are those of the weights before the update
    terms = model.training_step(batch, 0, model.configure_optimizers(1e-4))
    with torch.no_grad():   # each latent's KL to N(0, 1) from torch.distributions, batch-averaged
        mu, logvar = before.encode(batch)
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                               torch.distributions.Normal(0.0, 1.0)).mean(0)
    torch.testing.assert_close(terms["kl_per_latent"], kl, rtol=1e-4, atol=1e-5)
    # the source's Fig. 15 compares the groups' mean KL per latent (informative: the first 2)
    torch.testing.assert_close(terms["kl_informative"], kl[:2].mean(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(terms["kl_incompressible"], kl[2:].mean(), rtol=1e-4, atol=1e-5)
    assert not torch.isclose(kl[:2].mean(), kl[:2].sum())   # a sum would not pass
    with pytest.raises(ValueError, match="num_informative"):
        VAEInfoGAN(num_latents=3, num_informative=3)


def test_idgan_never_updates_the_vae(batch):
    torch.manual_seed(0)
    vae = build_model("beta_vae", num_latents=3, beta=5.0)
    frozen = {k: v.clone() for k, v in vae.state_dict().items()}
    model = IDGAN(vae, noise_dim=4, lam=1.0)
    assert not model.vae.training  # in eval mode from the start, not only once train() is called
    opt_params = {id(p) for o in model.configure_optimizers(1e-3).values()
                  for g in o.param_groups for p in g["params"]}
    assert not opt_params & {id(p) for p in model.vae.parameters()}
    train(model, batch, steps=3, batch_size=4, lr=1e-3, device="cpu", progress=False)
    assert all(torch.equal(frozen[k], v) for k, v in model.vae.state_dict().items())
    model.train()
    assert not model.vae.training and model.generator.training
    # the caller's VAE is copied, not frozen in place: it can still be trained
    assert model.vae is not vae and all(p.requires_grad for p in vae.parameters()) and vae.training
    train(vae, batch, steps=1, batch_size=4, lr=1e-3, device="cpu", progress=False)


def _conv_features(discriminator, x, convs=4):
    """Dis_l of the Burgess trunk recomputed with F.conv2d (kernel 4, stride 2, padding 1, ReLU)."""
    layers = [m for m in discriminator.net.conv if isinstance(m, torch.nn.Conv2d)][:convs]
    h = x
    for conv in layers:
        h = F.relu(F.conv2d(h, conv.weight, conv.bias, stride=2, padding=1))
    return h.flatten(1)


@pytest.mark.parametrize("layer, convs", [("conv4", 4), ("conv3", 3)])
def test_vaegan_llike_and_kl_against_an_independent_computation(batch, layer, convs):
    """L_llike = ½‖Dis_l(x) − Dis_l(x̃)‖² (features by F.conv2d) and KL by torch.distributions,
    with the reparameterisation noise drawn again from the same seed."""
    torch.manual_seed(0)
    model = VAEGAN(num_latents=4, feature_layer=layer)
    torch.manual_seed(1)
    terms = model.losses(batch)
    torch.manual_seed(1)
    mu, logvar = model.encoder(batch).chunk(2, 1)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    x_tilde = torch.sigmoid(model.decoder(z))
    d = model.discriminator
    llike = 0.5 * (_conv_features(d, batch, convs) - _conv_features(d, x_tilde, convs)).pow(2).sum(1).mean()
    normal = torch.distributions.Normal
    kl = torch.distributions.kl_divergence(normal(mu, (0.5 * logvar).exp()), normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(terms["llike"], llike, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-4, atol=1e-5)
    assert float(llike.detach()) > 0


def test_vae_infogan_updates_against_an_independent_computation(batch):
    """One step of plain SGD (lr 1) moves every parameter by the gradient of its own network's
    loss, rebuilt here from torch.distributions and logsigmoid: the VAE part by reconstruction
    + β·KL + w·(−log D(x_p)) + λ·NLL, D and Q by −log D(x) − log(1 − D(x_p)) + λ·NLL."""
    torch.manual_seed(0)
    model = VAEInfoGAN(num_latents=5, num_informative=2, beta=2.0, lam=0.7, adv_weight=0.3)
    ref = copy.deepcopy(model)
    vae_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    optimizers = {"vae": torch.optim.SGD(vae_params, lr=1.0),
                  "discriminator": torch.optim.SGD(model.discriminator.parameters(), lr=1.0)}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(3)
    model.training_step(batch, 0, optimizers)

    torch.manual_seed(3)
    normal = torch.distributions.Normal
    mu, logvar = ref.encoder(batch).chunk(2, 1)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(ref.decoder(z), batch, reduction="sum") / len(batch)
    kl = torch.distributions.kl_divergence(normal(mu, (0.5 * logvar).exp()), normal(0.0, 1.0)).sum(1).mean()
    z_p = torch.randn_like(z)
    x_p = torch.sigmoid(ref.decoder(z_p))

    def nll(out):  # Q's Gaussian NLL of the 2 informative latents, without ½·log 2π per latent
        return -(normal(out[:, 1:3], (0.5 * out[:, 3:5]).exp()).log_prob(z_p[:, :2]).sum(1).mean()
                 - math.log(2 * math.pi))

    out_fake = ref.discriminator(x_p)
    vae_loss = recon + 2.0 * kl + 0.3 * -F.logsigmoid(out_fake[:, 0]).mean() + 0.7 * nll(out_fake)
    out_held, out_real = ref.discriminator(x_p.detach()), ref.discriminator(batch)
    d_loss = (-F.logsigmoid(out_real[:, 0]).mean() - F.logsigmoid(-out_held[:, 0]).mean()
              + 0.7 * nll(out_held))
    names = {"vae": [n for n, _ in ref.named_parameters() if not n.startswith("discriminator")],
             "discriminator": [n for n, _ in ref.named_parameters() if n.startswith("discriminator")]}
    params = dict(ref.named_parameters())
    for part, loss in (("vae", vae_loss), ("discriminator", d_loss)):
        grads = torch.autograd.grad(loss, [params[n] for n in names[part]], retain_graph=True)
        for name, grad in zip(names[part], grads):
            moved = before[name] - dict(model.named_parameters())[name].detach()
            torch.testing.assert_close(moved, grad, rtol=1e-3, atol=1e-6, msg=name)


@pytest.mark.parametrize("minibatch_std", [False, True])
def test_idgan_step_against_an_independent_computation(batch, minibatch_std):
    """In float64: D descends BCE(real) + BCE(fake) + γ/2·R1 (R1 from the gradient of the batch's
    logit sum), then G descends −log D(G(s, c)) + λ·NLL of c under the frozen posterior, against
    the D just updated; the VAE gets no gradient."""
    torch.manual_seed(0)
    lr, lam, gamma_r1 = 1e-2, 0.3, 2.0
    model = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=4, lam=lam, r1=gamma_r1,
                  minibatch_std=minibatch_std).double()
    x = batch[:6].double()
    ref = copy.deepcopy(model)
    optimizers = {n: torch.optim.SGD(getattr(model, n).parameters(), lr=lr) for n in ("generator", "discriminator")}
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    torch.manual_seed(5)
    model.train().training_step(x, 0, optimizers)
    assert all(p.grad is None for p in model.vae.parameters())

    ref.train()
    torch.manual_seed(5)
    with torch.no_grad():
        mu, logvar = ref.vae.encoder(x).chunk(2, 1)
        c = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    s = torch.randn(len(x), 4, dtype=torch.float64)
    x_gen = torch.sigmoid(ref.generator(torch.cat([s, c], 1)))
    d = ref.discriminator
    x_real = x.clone().requires_grad_(True)
    d_real = d(x_real)
    (grad_x,) = torch.autograd.grad(d_real.sum(), x_real, create_graph=True)
    d_loss = (-F.logsigmoid(d_real).mean() - F.logsigmoid(-d(x_gen.detach())).mean()
              + 0.5 * gamma_r1 * grad_x.pow(2).flatten(1).sum(1).mean())
    d_grads = torch.autograd.grad(d_loss, list(d.parameters()))
    with torch.no_grad():
        for p, g in zip(d.parameters(), d_grads):
            p -= lr * g
    mu_g, logvar_g = ref.vae.encoder(x_gen).chunk(2, 1)
    normal = torch.distributions.Normal
    nll = -normal(mu_g, (0.5 * logvar_g).exp()).log_prob(c).sum(1).mean()
    g_loss = -F.logsigmoid(d(x_gen)).mean() + lam * nll   # the constant ½·log 2π per latent moves nothing
    g_grads = torch.autograd.grad(g_loss, list(ref.generator.parameters()))
    for before, after, grad in zip(d_before, model.discriminator.parameters(), d_grads):
        torch.testing.assert_close(before - after.detach(), lr * grad, rtol=1e-7, atol=1e-12)
    for before, after, grad in zip(g_before, model.generator.parameters(), g_grads):
        torch.testing.assert_close(before - after.detach(), lr * grad, rtol=1e-7, atol=1e-12)


def test_idgan_refuses_a_mismatched_step_one_model_and_noise():
    vae = build_model("vae", num_latents=3)
    with pytest.raises(ValueError, match="channels=3 does not match"):
        IDGAN(vae, channels=3)
    with pytest.raises(ValueError, match="arch='burgess64'"):
        IDGAN(build_model("vae", num_latents=3, arch="mnist32"))
    with pytest.raises(ValueError, match="lam must be >= 0 and finite"):
        IDGAN(vae, lam=float("inf"))
    model = IDGAN(vae, noise_dim=4)
    for s in (torch.randn(2, 5), torch.randn(3, 4), torch.randn(2, 4, 1)):
        with pytest.raises(ValueError, match="expected noise of shape 2×4"):
            model.generate(torch.randn(2, 3), s)
    assert model.generate(torch.randn(2, 3), torch.randn(2, 4)).shape == (2, 1, 64, 64)


def test_idgan_r_id_is_the_posterior_nll(batch):
    torch.manual_seed(0)
    model = IDGAN(build_model("vae", num_latents=3), noise_dim=2)
    c = torch.randn(8, 3)
    x_gen = model.generate(c)
    mu, logvar = model.vae.encode(x_gen)
    nll = -torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(c).sum(1).mean()
    const = 0.5 * math.log(2 * math.pi) * 3
    torch.testing.assert_close(model.r_id(c, x_gen), nll - const)


def test_idgan_r1_penalty_matches_per_image_gradients(batch):
    torch.manual_seed(0)
    model = IDGAN(build_model("vae", num_latents=3), noise_dim=2, r1=10.0)
    x = batch[:4].clone().requires_grad_(True)
    got = model.r1_penalty(x, model.discriminator(x))
    # brute force: the gradient of D's logit for each image on its own
    norms = []
    for i in range(4):
        xi = batch[i:i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model.discriminator(xi).sum(), xi)
        norms.append(g.pow(2).sum())
    torch.testing.assert_close(got, torch.stack(norms).mean())
    assert got > 0
    # the penalty enters the discriminator's loss with weight γ/2, and only when γ > 0
    terms = model.training_step(batch, 0, model.configure_optimizers(1e-4))
    assert "r1" in terms and terms["r1"] > 0
    plain = IDGAN(build_model("vae", num_latents=3), noise_dim=2)
    assert "r1" not in plain.training_step(batch, 0, plain.configure_optimizers(1e-4))


def test_idgan_decoder_init_starts_as_the_step1_decoder(batch):
    torch.manual_seed(0)
    vae = build_model("beta_vae", num_latents=3)
    model = IDGAN(vae, noise_dim=5, init="decoder").eval()
    c, s = torch.randn(6, 3), 3 * torch.randn(6, 5)
    with torch.no_grad():
        torch.testing.assert_close(model.generate(c, s), torch.sigmoid(vae.decode(c)))
        # a random start does not render the decoder's images
        other = IDGAN(vae, noise_dim=5).eval()
        assert (other.generate(c, s) - torch.sigmoid(vae.decode(c))).abs().max() > 1e-2
    # the noise columns are trainable: one step moves them away from zero
    model.train()
    train(model, batch, steps=1, batch_size=8, lr=1e-3, device="cpu", progress=False)
    assert model.generator.fc[0].weight[:, :5].abs().max() > 0
    # "decoder+noise": the code's columns and every other layer are the decoder's, the noise's
    # columns keep a random start, so G(0, c) is the decoder's image and s changes it
    torch.manual_seed(1)
    noisy = IDGAN(vae, noise_dim=5, init="decoder+noise").eval()
    first, dec_first = noisy.generator.fc[0].weight, vae.decoder.fc[0].weight
    assert torch.equal(first[:, 5:], dec_first) and first[:, :5].abs().min() > 0
    with torch.no_grad():
        torch.testing.assert_close(noisy.generate(c, torch.zeros(6, 5)), torch.sigmoid(vae.decode(c)))
        assert (noisy.generate(c, s) - torch.sigmoid(vae.decode(c))).abs().max() > 1e-2


def test_idgan_bad_inputs(tmp_path):
    vae = build_model("vae", num_latents=3)
    with pytest.raises(ValueError, match="code_size 5 does not match"):
        IDGAN(vae, code_size=5)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        IDGAN(vae, lam=-1.0)
    with pytest.raises(ValueError, match="r1 must be >= 0"):
        IDGAN(vae, r1=-0.5)
    with pytest.raises(ValueError, match=r"init must be one of \('random', 'decoder', 'decoder\+noise'\)"):
        IDGAN(vae, init="encoder")
    with pytest.raises(ValueError, match="Burgess 64×64 networks"):
        IDGAN(build_model("vae", num_latents=3, arch="mnist32"), init="decoder")
    clf = FactorClassifier()
    path = tmp_path / "clf.pt"
    atomic_save(checkpoint_state(clf, {}, 0, {}, torch.Generator(), {}), path)
    with pytest.raises(ValueError, match="must be a VAE of the course"):
        IDGAN(str(path))


def test_idgan_checkpoint_round_trip(tmp_path, batch):
    torch.manual_seed(0)
    model = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2, r1=1.0, init="decoder")
    result = train(model, batch, steps=2, batch_size=4, checkpoint=tmp_path / "idgan.pt", device="cpu",
                   progress=False)
    loaded = load_model(result.checkpoint, device="cpu")
    assert (loaded.r1, loaded.init) == (1.0, "decoder")
    c = torch.randn(2, 3)
    s = torch.randn(2, 2)
    torch.testing.assert_close(loaded.generate(c, s), model.eval().generate(c, s))


def test_idgan_spectral_norm_bounds_every_discriminator_weight(tmp_path, batch):
    """With spectral_norm, every weight of D has largest singular value 1 after a few training
    passes (power iterations; checked with torch.linalg.matrix_norm); the option is in the
    configuration only when on, trains with the R1 penalty, and survives a checkpoint."""
    torch.manual_seed(0)
    model = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2, r1=1.0, spectral_norm=True)
    for _ in range(30):
        model.discriminator(batch[:4])
    layers = [m for m in model.discriminator.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) == 4 + 3
    for layer in layers:
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        assert float(torch.linalg.matrix_norm(w, ord=2)) == pytest.approx(1.0, rel=1e-2)
    plain = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2)
    w = plain.discriminator.net.fc[-1].weight.detach()
    assert float(torch.linalg.matrix_norm(w, ord=2)) != pytest.approx(1.0, rel=1e-2)
    assert model.config()["spectral_norm"] is True and "spectral_norm" not in plain.config()
    result = train(model, batch, steps=2, batch_size=4, checkpoint=tmp_path / "sn.pt", device="cpu",
                   progress=False)
    assert np.isfinite(result.history.array("r1")).all()
    loaded = load_model(result.checkpoint, device="cpu")
    assert loaded.spectral_norm
    c, s = torch.randn(2, 3), torch.randn(2, 2)
    torch.testing.assert_close(loaded.generate(c, s), model.eval().generate(c, s))


def test_minibatch_std_lets_the_discriminator_see_the_whole_batch(batch):
    """With minibatch_std, D's fc1 reads one more input, the batch's mean feature standard
    deviation (checked against a direct computation; 0 for identical images), so changing one
    image changes the other images' logits; without it, it does not."""
    from course_lib.models.hybrid import FeatureDiscriminator

    torch.manual_seed(0)
    x = batch[:6]
    other = x.clone()
    other[0] = torch.rand_like(other[0])
    plain = FeatureDiscriminator()
    torch.testing.assert_close(plain(x)[1:], plain(other)[1:])
    torch.testing.assert_close(plain(x), plain.hidden(x)["out"])
    d = FeatureDiscriminator(minibatch_std=True)
    assert d.net.fc[1].in_features == 32 * 4 * 4 + 1
    assert not torch.allclose(d(x)[1:], d(other)[1:])
    h = d.hidden(x)["conv4"]
    expected = torch.stack([(h[:, f].var(unbiased=False) + 1e-8).sqrt() for f in range(h.shape[1])]).mean()
    torch.testing.assert_close(d.batch_std(h), expected.expand(6, 1))
    same = x[:1].expand(4, -1, -1, -1)
    with torch.no_grad():
        assert float(d.batch_std(d.hidden(same)["conv4"]).abs().max()) < 2e-4  # √1e-8 per feature
    assert float(d.batch_std(h[:1])) == 0.0
    model = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2, r1=10.0, minibatch_std=True)
    # dead features (0 for every image) must not give NaN gradients, R1's included
    result = train(model, batch, steps=3, batch_size=4, lr=5e-4, device="cpu", progress=False)
    assert np.isfinite(result.history.array("loss")).all() and np.isfinite(result.history.array("r1")).all()
    assert model.discriminator.minibatch_std and model.config()["minibatch_std"] is True
    assert "minibatch_std" not in IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2).config()
    assert build_model("idgan", **model.config()).discriminator.minibatch_std


def test_frechet_distance_closed_forms():
    mu1, mu2 = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([2.0, -1.0], dtype=torch.float64)
    c1 = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    c2 = torch.diag(torch.tensor([9.0, 1.0], dtype=torch.float64))
    # diagonal covariances: ‖μ1 − μ2‖² + Σ (σ1 − σ2)²
    expected = (4 + 4) + ((1 - 3) ** 2 + (2 - 1) ** 2)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)
    a = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) @ torch.randn(3, 3)
    assert frechet_distance(*gaussian_stats(a), *gaussian_stats(a)) == pytest.approx(0.0, abs=1e-7)


@pytest.fixture(scope="module")
def trained_classifier():
    torch.manual_seed(0)
    ds = DSprites()
    result = train(FactorClassifier(), LabelledSampler(ds.sampler()), steps=100, batch_size=32, lr=1e-3,
                   seed=0, device="cpu", progress=False)
    return result.model.eval()


def test_factor_frechet_distance_real_vs_blurred(trained_classifier):
    """Two samples of real images sit near 0 (the sampling noise floor), blur moves away."""
    ds = DSprites()
    g = torch.Generator().manual_seed(1)
    real_a = ds.images(ds.sample_classes(3000, g))
    real_b = ds.images(ds.sample_classes(3000, g))

    def blur(x, k):
        return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)

    same = factor_frechet_distance(trained_classifier, real_a, real_b)
    blurred = [factor_frechet_distance(trained_classifier, real_a, blur(real_b, k)) for k in (5, 9, 15)]
    assert same < 0.5 * blurred[0]
    assert same < 0.1 * blurred[2]
    assert blurred[0] < blurred[1] < blurred[2]


def test_traversal_agreement_on_real_position_traversals(trained_classifier):
    """Real sprites moved along posX (dimension 0) and posY (dimension 1) from four starts.
    A second "renderer" draws the same positions with another shape: the classifier's curves
    agree dimension by dimension, and swapping its two dimensions is detected."""
    ds = DSprites()
    starts = ds.sample_classes(4, torch.Generator().manual_seed(3))
    steps = torch.linspace(0, 31, 8).round().long()

    def render(shape_shift):
        out = torch.empty(4, 2, len(steps), 1, 64, 64)
        for s, start in enumerate(starts):
            for d, column in enumerate((4, 5)):              # posX, posY
                classes = start.repeat(len(steps), 1)
                classes[:, column] = steps
                classes[:, 1] = (classes[:, 1] + shape_shift) % 3
                out[s, d] = ds.images(classes)
        return out

    curves_a = traversal_factor_curves(trained_classifier, render(0))
    curves_b = traversal_factor_curves(trained_classifier, render(1))
    agree = traversal_agreement(curves_a, curves_b)
    assert agree.diagonal().min() > 0.6
    assert agree[0, 1] < 0.3 and agree[1, 0] < 0.3
    swapped = traversal_agreement(curves_a, curves_b[:, [1, 0]])
    assert swapped.argmax(1).tolist() == [1, 0]


def test_sprite_rulers_on_real_and_blurred_sprites(trained_classifier):
    """The rulers of notebook 07's table: real images score 0 grey, one sprite each and the FFD
    noise floor; a blurred copy of the same images is further and greyer (and still one piece)."""
    from course_lib.quality import sprite_rulers

    ds = DSprites()
    g = torch.Generator().manual_seed(4)
    real_a = ds.images(ds.sample_classes(1000, g))
    real_b = ds.images(ds.sample_classes(1000, g))
    blurred = F.avg_pool2d(real_b, 9, stride=1, padding=4, count_include_pad=False)
    real, blur = sprite_rulers(trained_classifier, real_a, real_b), sprite_rulers(trained_classifier, real_a, blurred)
    assert set(real) == {"ffd", "shape_named", "grey", "one_sprite"}
    assert real["grey"] == 0.0 and blur["grey"] > 0.5
    assert real["one_sprite"] == 1.0
    assert real["ffd"] < 0.5 * blur["ffd"]
    assert 0.0 <= blur["shape_named"] <= 1.0 and 0.0 <= real["shape_named"] <= 1.0


def test_idgan_diversity_term_is_the_capped_noise_ratio(batch):
    """The declared variant: with diversity = λ_div, G's SGD step differs from the source's
    objective by exactly λ_div · ∇ mean(min(r, τ)), r recomputed by hand from the same two noise
    draws; with a cap below every r the term has no gradient and the step is the source's."""
    torch.manual_seed(0)
    base = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=4, r1=1.0, init="decoder+noise").double()
    x = batch[:6].double()

    def g_after(diversity, cap=0.5):
        m = copy.deepcopy(base)
        m.diversity, m.diversity_cap = diversity, cap
        torch.manual_seed(7)
        out = m.training_step(x, 0, _sgd(m, ("generator", "discriminator")))
        return [p.detach() for p in m.generator.parameters()], out

    plain, out0 = g_after(0.0)
    assert "noise_ratio" not in out0
    lam_div = 3.0
    varied, out = g_after(lam_div)
    # the same draws by hand: c ~ q(c|x), then s, then s₂
    torch.manual_seed(7)
    c = base.sample_codes(x)
    s = torch.randn(len(c), base.noise_dim, dtype=c.dtype)
    s2 = torch.randn_like(s)
    x1, x2 = base.generate(c, s), base.generate(c, s2)
    per_image = [(x1[i] - x2[i]).abs().mean() / (s[i] - s2[i]).abs().mean() for i in range(len(c))]
    ratio = torch.stack(per_image)
    torch.testing.assert_close(base.noise_ratio(x1, x2, s, s2), ratio)
    torch.testing.assert_close(out["noise_ratio"], ratio.mean().detach())
    assert float(ratio.detach().max()) < 0.5  # the cap 0.5 is not reached: the term is the plain ratio
    grads = torch.autograd.grad(ratio.mean(), list(base.generator.parameters()))
    for p0, p1, g in zip(plain, varied, grads):  # SGD lr 1: p ← p − ∇(loss − λ_div·term)
        torch.testing.assert_close(p1 - p0, lam_div * g)
    assert any(float(g.abs().max()) > 1e-4 for g in grads)
    capped, _ = g_after(lam_div, cap=float(ratio.detach().min()) / 2)
    for p0, p1 in zip(plain, capped):
        torch.testing.assert_close(p1, p0)
    model = IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2, diversity=2.0, diversity_cap=0.03)
    assert model.config()["diversity"] == 2.0 and model.config()["diversity_cap"] == 0.03
    assert build_model("idgan", **model.config()).diversity == 2.0
    assert "diversity" not in IDGAN(build_model("beta_vae", num_latents=3), noise_dim=2).config()
    with pytest.raises(ValueError, match="diversity"):
        IDGAN(build_model("beta_vae", num_latents=3), diversity=-1.0)
    with pytest.raises(ValueError, match="diversity_cap"):
        IDGAN(build_model("beta_vae", num_latents=3), diversity=1.0, diversity_cap=0.0)


def test_factor_classifier_accuracy_counts_each_factor_against_its_own_column():
    """Logits set by hand for 4 images of 6-column classes (colour first): each factor's accuracy
    is the share of images whose argmax equals that factor's class."""
    clf = FactorClassifier()
    classes = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5], [0, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]])
    predicted = classes[:, 1:].clone()
    predicted[0, 0] = 2      # shape wrong for image 0
    predicted[1:3, 3] = 9    # posX wrong for images 1 and 2
    logits = [torch.nn.functional.one_hot(predicted[:, k], size).float()
              for k, size in enumerate(clf.factor_sizes)]
    clf.logits = lambda x: logits
    acc = clf.accuracy(torch.zeros(4, 1, 64, 64), classes)
    assert acc == {"shape": 0.75, "scale": 1.0, "orientation": 1.0, "posX": 0.5, "posY": 1.0}
