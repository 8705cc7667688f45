"""The Burgess networks, the VAE family's loss terms (recomputed independently), the registry,
configs and checkpoints of models."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from course_lib.models import (
    MODELS,
    VAE,
    Autoencoder,
    BetaVAE,
    BurgessDecoder,
    BurgessEncoder,
    CourseModel,
    build_model,
    register,
)
from course_lib.train import (
    History,
    atomic_save,
    checkpoint_state,
    load_checkpoint,
    load_into,
    load_model,
    with_checksum,
)


def images(n=4, channels=1, seed=0):
    return (torch.rand(n, channels, 64, 64, generator=torch.Generator().manual_seed(seed)) > 0.7).float()


def test_encoder_structure_and_shapes():
    enc = BurgessEncoder(out_features=12)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4
    for i, conv in enumerate(convs):
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.out_channels == 32
        assert conv.in_channels == (1 if i == 0 else 32)
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32 * 4 * 4, 256), (256, 256), (256, 12)]
    x = images(3)
    assert enc(x).shape == (3, 12)
    assert enc.features(x).shape == (3, 256)
    # the spatial sizes 64 → 32 → 16 → 8 → 4
    h, sizes = x, []
    for layer in enc.conv:
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(32, 32, 32), (32, 16, 16), (32, 8, 8), (32, 4, 4)]


def test_decoder_structure_and_shapes():
    dec = BurgessDecoder(num_latents=5, channels=3)
    linears = [m for m in dec.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 256), (256, 256), (256, 512)]
    deconvs = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 4
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in deconvs)
    assert [m.out_channels for m in deconvs] == [32, 32, 32, 3]
    assert dec(torch.zeros(2, 5)).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="N×5"):
        dec(torch.zeros(2, 4))


def test_vae_encode_decode_shapes():
    vae = VAE(num_latents=6)
    mu, logvar = vae.encode(images(5))
    assert mu.shape == logvar.shape == (5, 6)
    assert vae.decode(mu).shape == (5, 1, 64, 64)
    ae = Autoencoder(num_latents=3)
    z, nothing = ae.encode(images(2))
    assert z.shape == (2, 3) and nothing is None
    assert ae(images(2)).shape == (2, 1, 64, 64)


def reference_vae_terms(model, x, seed):
    """The negative ELBO computed with torch.distributions and the same noise."""
    torch.manual_seed(seed)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape)
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = model.decode(z)
    recon = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1).mean()
    kl_per_latent = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)
    return recon, kl_per_latent


@pytest.mark.parametrize("cls, kwargs, beta", [
    (VAE, {}, 1.0),
    (BetaVAE, {}, 4.0),
    (BetaVAE, {"beta": 10.0}, 10.0),
    (VAE, {"beta": 0.0}, 0.0),
])
def test_vae_family_loss_is_recon_plus_beta_kl(cls, kwargs, beta):
    torch.manual_seed(0)
    model = cls(num_latents=4, **kwargs)
    assert model.beta == beta
    x = images(6, seed=1)
    torch.manual_seed(123)
    terms = model.loss_terms(x)
    recon, kl_per_latent = reference_vae_terms(model, x, seed=123)
    assert set(terms) >= {"loss", "recon", "kl", "kl_per_latent"}
    assert terms["kl_per_latent"].shape == (4,)
    assert torch.allclose(terms["kl_per_latent"], kl_per_latent, rtol=1e-5, atol=1e-6)
    assert terms["kl"].item() == pytest.approx(kl_per_latent.sum().item(), rel=1e-5)
    assert terms["recon"].item() == pytest.approx(recon.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(recon.item() + beta * kl_per_latent.sum().item(), rel=1e-5)
    # a different noise draw gives a different loss (the sample z is random)
    torch.manual_seed(124)
    assert model.loss_terms(x)["recon"].item() != pytest.approx(recon.item(), rel=1e-7)


def test_vae_mean_reduction_divides_the_recon_by_the_pixels():
    torch.manual_seed(0)
    model = VAE(num_latents=3, reduction="mean")
    x = images(3)
    torch.manual_seed(5)
    terms = model.loss_terms(x)
    recon, kl = reference_vae_terms(model, x, seed=5)
    assert terms["recon"].item() == pytest.approx(recon.item() / 4096, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(recon.item() / 4096 + kl.sum().item(), rel=1e-5)


def test_autoencoder_loss_is_the_summed_squared_error():
    torch.manual_seed(0)
    ae = Autoencoder(num_latents=5)
    x = images(4, seed=2)
    terms = ae.loss_terms(x)
    sse = ((ae.decode(ae.encode(x)[0]) - x) ** 2).flatten(1).sum(1).mean()
    assert terms["loss"].item() == pytest.approx(sse.item(), rel=1e-5)
    assert torch.equal(ae.decode_pixels(ae.encode(x)[0]), ae(x).clamp(0, 1))
    assert terms["recon"].item() == terms["loss"].item()
    assert "kl" not in terms
    bern = Autoencoder(num_latents=5, recon="bernoulli")
    bern.load_state_dict(ae.state_dict())
    ref = -Bernoulli(logits=ae(x)).log_prob(x).flatten(1).sum(1).mean()
    assert bern.loss_terms(x)["loss"].item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.equal(bern.decode_pixels(bern.encode(x)[0]), torch.sigmoid(ae(x)))
    through_sigmoid = Autoencoder(num_latents=5, recon="gaussian")
    through_sigmoid.load_state_dict(ae.state_dict())
    sse_sigmoid = ((torch.sigmoid(ae(x)) - x) ** 2).flatten(1).sum(1).mean()
    assert through_sigmoid.loss_terms(x)["loss"].item() == pytest.approx(sse_sigmoid.item(), rel=1e-5)


def test_training_step_updates_and_detaches():
    torch.manual_seed(0)
    model = BetaVAE(num_latents=3)
    opts = model.configure_optimizers(lr=1e-3)
    assert set(opts) == {"model"} and isinstance(opts["model"], torch.optim.Adam)
    before = [p.detach().clone() for p in model.parameters()]
    terms = model.training_step(images(4), 0, opts)
    assert all(not v.requires_grad for v in terms.values())
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed == len(before)


@pytest.mark.parametrize("kwargs, message", [
    ({"beta": -1.0}, "beta must be >= 0 and finite, got -1.0"),
    ({"beta": float("inf")}, "beta must be >= 0 and finite, got inf"),
    ({"beta": float("nan")}, "beta must be >= 0"),
    ({"num_latents": 0}, "num_latents must be a positive integer, got 0"),
    ({"num_latents": 2.5}, "num_latents must be a positive integer"),
    ({"num_latents": True}, "num_latents must be a positive integer"),
    ({"recon": "l1"}, "unknown recon 'l1'.*mse.*bernoulli.*gaussian"),
    ({"reduction": "none"}, "unknown reduction 'none'"),
])
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BetaVAE(**kwargs)


@pytest.mark.parametrize("cls", [VAE, BetaVAE, Autoencoder])
@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 64, 64), (2, 4096), (1, 64, 64)])
def test_images_of_the_wrong_size(cls, shape):
    model = cls(num_latents=2)
    with pytest.raises(ValueError, match=r"expected images of shape N×1×64×64, got \(" + ", ".join(map(str, shape))):
        model.loss_terms(torch.zeros(shape))


def test_three_channel_models_accept_colour_images():
    model = VAE(num_latents=2, channels=3)
    assert model.loss_terms(images(2, channels=3))["recon"].shape == ()
    with pytest.raises(ValueError, match="N×3×64×64"):
        model.loss_terms(images(2, channels=1))


def test_registry_and_build_model():
    for name, cls in [("vae", VAE), ("beta_vae", BetaVAE), ("autoencoder", Autoencoder)]:
        assert MODELS[name] is cls and cls.model_name == name
    model = build_model("beta_vae", num_latents=3, beta=2.0)
    assert isinstance(model, BetaVAE) and model.beta == 2.0 and model.num_latents == 3
    with pytest.raises(ValueError, match=r"unknown model 'betavae'.*'autoencoder'.*'beta_vae'.*'vae'"):
        build_model("betavae")
    with pytest.raises(ValueError, match="already registered to VAE"):
        register("vae")(type("Other", (CourseModel,), {}))


@pytest.mark.parametrize("name, config", [
    ("vae", {"num_latents": 7}),
    ("beta_vae", {"num_latents": 2, "beta": 6.5, "recon": "gaussian", "reduction": "mean"}),
    ("autoencoder", {"num_latents": 3, "channels": 3}),
])
def test_config_round_trip(name, config):
    model = build_model(name, **config)
    cfg = model.config()
    assert json.loads(json.dumps(cfg)) == cfg
    for key, value in config.items():
        assert cfg[key] == value
    again = type(model)(**cfg)
    assert again.config() == cfg
    assert build_model(name, **cfg).config() == cfg
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]


def save_model(model, path):
    opts = model.configure_optimizers(1e-3)
    state = checkpoint_state(model, opts, 3, History(), torch.Generator(), {"steps": 3})
    return atomic_save(state, path)


def test_checkpoints_load_with_weights_only(tmp_path):
    torch.manual_seed(0)
    model = BetaVAE(num_latents=3, beta=2.0)
    path = save_model(model, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["model_name"] == "beta_vae" and raw["model_config"] == model.config()
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, BetaVAE) and not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = images(2)
    assert torch.equal(loaded.encode(x)[0], model.eval().encode(x)[0])
    assert isinstance(load_model(path, device="cpu", expected=VAE), BetaVAE)  # a β-VAE is a VAE


def test_loading_another_architecture_is_refused(tmp_path):
    path = save_model(VAE(num_latents=3), tmp_path / "vae3.pt")
    state = load_checkpoint(path)
    with pytest.raises(ValueError, match=r"holds vae\(.*num_latents=3.*but the model is vae\(.*num_latents=4"):
        load_into(VAE(num_latents=4), state)
    with pytest.raises(ValueError, match="holds vae.*but the model is beta_vae"):
        load_into(BetaVAE(num_latents=3), state)
    with pytest.raises(ValueError, match="holds vae.*but the model is autoencoder"):
        load_into(Autoencoder(num_latents=3), state)
    with pytest.raises(ValueError, match="holds a VAE, expected BetaVAE"):
        load_model(path, expected=BetaVAE)
    with pytest.raises(ValueError, match=r"expected \['Autoencoder', 'BetaVAE'\]"):
        load_model(path, expected=(Autoencoder, BetaVAE))
    state["model_name"] = "no_such_model"
    atomic_save(state, tmp_path / "edited.pt")  # an edit without a new checksum is corruption
    with pytest.raises(ValueError, match="edited.pt is corrupt"):
        load_model(tmp_path / "edited.pt")
    atomic_save(with_checksum(state), tmp_path / "unknown.pt")
    with pytest.raises(ValueError, match="unknown model 'no_such_model'"):
        load_model(tmp_path / "unknown.pt")


def test_he_initialisation_keeps_the_input_visible_at_the_output():
    from course_lib.models.nets import fan_in, he_init_

    # fan-in of a transposed convolution: in_channels·(kernel/stride)², counted by brute force
    deconv = torch.nn.ConvTranspose2d(8, 3, 4, 2, 1)
    x = torch.zeros(1, 8, 5, 5, requires_grad=True)
    out = deconv(x)
    out[0, 0, 4, 4].backward()
    assert fan_in(deconv) == int((x.grad != 0).sum()) == 8 * 2 * 2
    linear = torch.nn.Linear(1000, 2000)
    he_init_(torch.nn.Sequential(linear, torch.nn.ReLU(), torch.nn.Linear(2000, 1)))
    assert linear.weight.var().item() == pytest.approx(2 / 1000, rel=0.02)
    assert torch.all(linear.bias == 0)

    torch.manual_seed(0)
    x = images(32, seed=3)
    he_net = Autoencoder(num_latents=10)
    default_net = Autoencoder(num_latents=10)
    for m in default_net.modules():
        if m is not default_net and hasattr(m, "reset_parameters"):
            m.reset_parameters()  # PyTorch's default initialisation
    with torch.no_grad():
        he_spread = he_net(x).std(0).mean().item()
        default_spread = default_net(x).std(0).mean().item()
    # the default initialisation makes the output (nearly) the same for every image
    assert default_spread < 1e-4 < 1e-2 < he_spread
