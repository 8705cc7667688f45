"""VAE–GAN hybrids on 64×64 images: VAE-GAN (Larsen et al., 2016), the VAE–InfoGAN hybrid
of source paper 002, and ID-GAN (Lee et al., 2020; source paper 000).

All three reuse the Burgess encoder (as encoder, discriminator trunk and Q network) and the
Burgess decoder (as decoder and generator). Their discriminators maximise the GAN value
log D(x) + log(1 − D(G(z))) (source paper 002 eq. 1, source paper 000 eq. 2), written as the
binary cross-entropy of real against fake; their generators use its **non-saturating** form,
−log D(G(z)) in place of log(1 − D(G(z))) (Goodfellow et al., 2014: the same fixed point,
stronger gradients while D rejects the samples). That is the one change to the sources'
adversarial terms; each class states the rest.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import kl_normal, reconstruction
from .base import CourseModel, check_non_negative, check_positive, check_positive_int, register
from .nets import BurgessDecoder, BurgessEncoder, check_images
from .vae import VAE

FEATURE_LAYERS = ("conv3", "conv4", "fc1", "fc2")
#: ID-GAN's default cap τ of the diversity term: real dSprites images that share position and
#: scale (shape and orientation redrawn) differ by about 0.02 per pixel, / E|s₁ − s₂| = 2/√π.
DIVERSITY_CAP = 0.0175


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = g


def r1_penalty(x, logits):
    """E_x[‖∇_x D(x)‖²] (Mescheder et al., 2018) for real images ``x`` (with requires_grad) and
    D's ``logits`` of them; differentiable (``create_graph``), so that D can be trained on it.

    It differentiates the sum of the batch's logits: each image's gradient is its own logit's
    when D reads one image at a time; with ``minibatch_std`` an image also moves the other
    images' logits through the batch statistic, and that (small) part is included."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


class FeatureDiscriminator(nn.Module):
    """Burgess-encoder trunk → one logit (real/fake), with access to its hidden layers.

    ``features(x, layer)`` returns the activations of ``layer`` ("conv3": 32×8×8,
    "conv4": 32×4×4, "fc1", "fc2": 256), flattened to N×F; VAE-GAN measures its
    reconstruction there (Larsen et al.'s Dis_l).

    ``minibatch_std=True`` gives the first fully connected layer one more input: the standard
    deviation of every conv4 feature across the batch, averaged over the features (Karras et
    al., 2018). D then sees how varied a whole batch is, so a generator that draws the same
    image for many inputs can be told apart from the data even when each image alone looks
    real. The logit of an image then depends on the rest of its batch.
    """

    def __init__(self, channels: int = 1, extra_outputs: int = 0, minibatch_std: bool = False):
        super().__init__()
        self.net = BurgessEncoder(1 + extra_outputs, channels)
        self.minibatch_std = bool(minibatch_std)
        if self.minibatch_std:
            old = self.net.fc[1]
            fc1 = nn.Linear(old.in_features + 1, old.out_features)
            with torch.no_grad():  # He initialisation, as the trunk's (fc1 feeds a ReLU)
                fc1.weight.normal_(0.0, (2.0 / fc1.in_features) ** 0.5)
                fc1.bias.zero_()
            self.net.fc[1] = fc1

    #: added to the variance under the square root: a feature that is 0 for every image of the
    #: batch (a dead ReLU) would otherwise give an infinite gradient
    STD_EPS = 1e-8

    @staticmethod
    def batch_std(h: torch.Tensor) -> torch.Tensor:
        """N×1: the standard deviation of each column of ``h`` (N×F) across the batch,
        √(variance + 1e-8), averaged over the columns and repeated for every row (0 for a batch
        of one)."""
        if len(h) < 2:
            return h.new_zeros(len(h), 1)
        std = (h.var(0, unbiased=False) + FeatureDiscriminator.STD_EPS).sqrt().mean()
        return std.expand(len(h), 1)

    def hidden(self, x) -> dict[str, torch.Tensor]:
        check_images(x, self.net.channels, 64)
        out, h = {}, x.contiguous(memory_format=torch.channels_last)
        convs = [m for m in self.net.conv if isinstance(m, nn.Conv2d)]
        for i, conv in enumerate(convs, 1):
            h = F.relu(conv(h))
            if i >= 3:
                out[f"conv{i}"] = h.flatten(1)
        fc1, fc2, last = (m for m in self.net.fc if isinstance(m, nn.Linear))
        into_fc1 = out["conv4"]
        if self.minibatch_std:
            into_fc1 = torch.cat([into_fc1, self.batch_std(into_fc1)], 1)
        out["fc1"] = F.relu(fc1(into_fc1))
        out["fc2"] = F.relu(fc2(out["fc1"]))
        out["out"] = last(out["fc2"])
        return out

    def features(self, x, layer: str = "conv4"):
        return self.hidden(x)[layer]

    def forward(self, x):
        return self.hidden(x)["out"] if self.minibatch_std else self.net(x)


def vaegan_losses(kl, llike, d_real, d_recon, d_prior, beta: float = 1.0, gamma: float = 1e-2):
    """The three VAE-GAN objectives of Larsen et al. (2016) from their ingredients.

    Args:
        kl: KL(q(z|x) ‖ p(z)) summed over latents, batch mean (nats).
        llike: the feature-wise reconstruction term L_llike^{Dis_l}.
        d_real, d_recon, d_prior: discriminator logits N×1 of the data x, of the
            reconstructions x̃ = Dec(z ~ q(z|x)) and of the prior samples x_p = Dec(z ~ p(z)).
    Returns:
        (encoder loss, decoder loss, discriminator loss), with L_GAN = log D(x) + log(1 − D(x̃))
        + log(1 − D(x_p)), the value that D maximises:

        * encoder: β·KL + L_llike;
        * decoder: γ·L_llike + L_GAN in the minimax form, here in the non-saturating form
          γ·L_llike − log D(x̃) − log D(x_p) (the decoder wants x̃ and x_p called real);
        * discriminator: −L_GAN (x real, x̃ and x_p fake).

        Each network is updated with the gradient of its own loss only.
    """
    encoder = beta * kl + llike
    decoder = gamma * llike + _bce(d_recon, 1.0) + _bce(d_prior, 1.0)
    discriminator = _bce(d_real, 1.0) + _bce(d_recon, 0.0) + _bce(d_prior, 0.0)
    return encoder, decoder, discriminator


@register("vae_gan")
class VAEGAN(CourseModel):
    """VAE-GAN (Larsen et al., 2016): the decoder is also the GAN's generator, and the
    reconstruction is measured in a discriminator layer Dis_l instead of in pixels.

    Three losses, three separate updates (Larsen et al., Alg. 1):

    * encoder: β·KL(q(z|x) ‖ p(z)) + L_llike, with L_llike = ½‖Dis_l(x) − Dis_l(x̃)‖² summed
      over the layer's features, x̃ = Dec(z), z ~ q(z|x);
    * decoder: γ·L_llike + L_GAN, with L_GAN = log D(x) + log(1 − D(x̃)) + log(1 − D(x_p)),
      x_p = Dec(z_p), z_p ~ p(z); its GAN part in the non-saturating form −log D(x̃) − log D(x_p)
      (it wants D to call both real);
    * discriminator: maximises L_GAN, x real against x̃ and x_p fake.

    Source paper 002 describes the model in words (one network as decoder and generator, the
    reconstruction measured in a discriminator layer, β usable on the KL); the losses above are
    Larsen et al.'s, with the course's β on the KL (β = 1 in Larsen et al.).

    ``losses_fn`` computes these three from their ingredients (default :func:`vaegan_losses`;
    notebook 07 passes the student's checked function). It is not part of :meth:`config`: a
    checkpoint rebuilds the model with the library's function.

    What makes it train on a small budget (notebook 07 shows the first and explains the others):

    * :meth:`init_from` starts the encoder and decoder from a trained pixel VAE. From random
      weights D tells the decoder's noise from sprites within a few dozen steps; its features
      of x and x̃ then drift thousands of nats apart, the encoder drops its code (KL → 0) and
      the decoder draws one picture for every code.
    * the weights: Larsen et al.'s γ = 10⁻² was set for their network; here Dis_l has a few
      thousand features and L_llike is a few nats once D is balanced, so γ·L_llike is
      negligible against the GAN term and the decoder stops reconstructing. γ ≈ 1 and a small
      β (≈ 0.1) keep the code and the reconstruction; ``feature_layer="conv3"`` (32×8×8)
      keeps more of where things are than ``"conv4"`` (32×4×4).
    * ``adam_beta1`` = 0.5 (Radford et al., 2016, the usual choice for GANs; Adam's default is 0.9).

    D learns only to tell real from fake, so its features need not keep where a sprite is or
    which shape it has: over long runs D wins and the reconstructions drift (sharp sprites in
    the wrong places, or of the wrong shape). The R1 option below keeps D balanced and is what
    the course's long recipe uses; the pixel variant ties the decoder to the pixels instead.

    A declared variant, off by default: ``pixel_weight = α > 0`` adds α·L_pixel, the Bernoulli
    negative log-likelihood of x under Dec(z) summed over pixels (a VAE's reconstruction term),
    to the encoder's and the decoder's losses. It ties the decoder to the pixels, at the price
    of the pixel loss's blur (with the GAN term: a dithered rim).

    A stabiliser that leaves the objective unchanged, off by default: ``r1 = γ_R1 > 0`` adds
    the R1 penalty γ_R1/2 · E_x[‖∇_x D(x)‖²] on real images to the discriminator's loss
    (Mescheder et al., 2018; ID-GAN below uses it too). It keeps D smooth on the data, so that
    D cannot win outright and its features stay a useful ruler for L_llike over a long run.
    """

    def __init__(self, num_latents: int = 10, beta: float = 1.0, gamma: float = 1e-2,
                 feature_layer: str = "conv4", channels: int = 1, pixel_weight: float = 0.0,
                 adam_beta1: float = 0.9, r1: float = 0.0, losses_fn=None):
        super().__init__()
        self.num_latents = check_positive_int("num_latents", num_latents)
        self.r1 = check_non_negative("r1", r1)
        self.beta = check_non_negative("beta", beta)
        self.gamma = check_non_negative("gamma", gamma)
        if feature_layer not in FEATURE_LAYERS:
            raise ValueError(f"unknown feature_layer {feature_layer!r}: expected one of {FEATURE_LAYERS}")
        self.feature_layer = feature_layer
        self.channels = check_positive_int("channels", channels)
        self.pixel_weight = check_non_negative("pixel_weight", pixel_weight)
        if isinstance(adam_beta1, bool) or not 0 <= float(adam_beta1) < 1:
            raise ValueError(f"adam_beta1 must be in [0, 1), got {adam_beta1!r}")
        self.adam_beta1 = float(adam_beta1)
        if losses_fn is not None and not callable(losses_fn):
            raise TypeError(f"losses_fn must be a function like vaegan_losses(kl, llike, d_real, d_recon, "
                            f"d_prior, beta, gamma), got {type(losses_fn).__name__}")
        self.losses_fn = losses_fn or vaegan_losses
        self.exercise_functions = (self.losses_fn,)   # a notebook's own objectives name the run apart
        self.encoder = BurgessEncoder(2 * self.num_latents, channels)
        self.decoder = BurgessDecoder(self.num_latents, channels)
        self.discriminator = FeatureDiscriminator(channels)

    def config(self):
        return {"num_latents": self.num_latents, "beta": self.beta, "gamma": self.gamma,
                "feature_layer": self.feature_layer, "channels": self.channels,
                "pixel_weight": self.pixel_weight, "adam_beta1": self.adam_beta1,
                # listed only when on, so that checkpoints saved before the option still match
                **({"r1": self.r1} if self.r1 else {})}

    encode = VAE.encode
    decode = VAE.decode

    @torch.no_grad()
    def init_from(self, vae) -> VAEGAN:
        """Copy the encoder and decoder of a trained pixel VAE of the course (Burgess nets, the
        same ``num_latents`` and ``channels``); the discriminator keeps its initialisation.
        Returns ``self``, so ``VAEGAN(...).init_from(vae)`` reads as one step."""
        encoder, decoder = getattr(vae, "encoder", None), getattr(vae, "decoder", None)
        if not (isinstance(encoder, BurgessEncoder) and isinstance(decoder, BurgessDecoder)):
            raise ValueError(f"init_from needs a VAE of the course with the Burgess 64×64 encoder and decoder, "
                             f"got {type(vae).__name__}")
        if (getattr(vae, "num_latents", None), getattr(vae, "channels", None)) != (self.num_latents, self.channels):
            raise ValueError(f"init_from: the VAE has {getattr(vae, 'num_latents', '?')} latents and "
                             f"{getattr(vae, 'channels', '?')} channel(s), this VAE-GAN {self.num_latents} and "
                             f"{self.channels}; build the VAE-GAN with the VAE's num_latents")
        self.encoder.load_state_dict(encoder.state_dict())
        self.decoder.load_state_dict(decoder.state_dict())
        return self

    def configure_optimizers(self, lr):
        return {name: torch.optim.Adam(getattr(self, name).parameters(), lr=lr, betas=(self.adam_beta1, 0.999))
                for name in ("encoder", "decoder", "discriminator")}

    def losses(self, x):
        """The three losses of one batch (scalars) and logged terms; used by training_step and tests."""
        mu, logvar = self.encode(x)
        z = VAE.reparameterize(mu, logvar)
        logits_tilde = self.decode(z)
        x_tilde = torch.sigmoid(logits_tilde)
        x_p = torch.sigmoid(self.decode(torch.randn_like(z)))
        kl_per_latent = kl_normal(mu, logvar).mean(0)
        x_real = x.detach().requires_grad_(self.r1 > 0 and torch.is_grad_enabled())
        real = self.discriminator.hidden(x_real)
        fake = self.discriminator.hidden(x_tilde)
        llike = 0.5 * (real[self.feature_layer] - fake[self.feature_layer]).pow(2).sum(1).mean()
        logits = (real["out"], fake["out"], self.discriminator(x_p))
        enc, dec, dis = self.losses_fn(kl_per_latent.sum(), llike, *logits, self.beta, self.gamma)
        extra = {}
        if x_real.requires_grad:  # the stabiliser: + γ_R1/2 · E‖∇_x D(x)‖² for D only
            extra["r1"] = r1_penalty(x_real, real["out"])
            dis = dis + 0.5 * self.r1 * extra["r1"]
        pixel = reconstruction("bernoulli", logits_tilde, x)
        if self.pixel_weight > 0:  # the declared variant: + α·L_pixel for the encoder and the decoder
            enc = enc + self.pixel_weight * pixel
            dec = dec + self.pixel_weight * pixel
        return {
            "logits": logits, "encoder": enc, "decoder": dec, "discriminator": dis,
            "llike": llike, "kl": kl_per_latent.sum(), "kl_per_latent": kl_per_latent,
            "pixel_recon": pixel, **extra,
        }

    def training_step(self, x, step, optimizers):
        terms = self.losses(x)
        enc = list(self.encoder.parameters())
        dec = list(self.decoder.parameters())
        dis = list(self.discriminator.parameters())
        g_enc = torch.autograd.grad(terms["encoder"], enc, retain_graph=True)
        g_dec = torch.autograd.grad(terms["decoder"], dec, retain_graph=True)
        g_dis = torch.autograd.grad(terms["discriminator"], dis)
        for params, grads, name in ((enc, g_enc, "encoder"), (dec, g_dec, "decoder"),
                                    (dis, g_dis, "discriminator")):
            _set_grads(params, grads)
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
        out = {k: v.detach() for k, v in terms.items() if k != "logits"}
        out["loss"] = out["encoder"] + out["decoder"]
        return out


@register("vae_infogan")
class VAEInfoGAN(CourseModel):
    """The VAE–InfoGAN hybrid of source paper 002: a VAE whose first ``num_informative`` latents must
    also be recoverable by a network Q from images generated from the prior.

    Loss of the VAE part (encoder and decoder): reconstruction (Bernoulli, summed over pixels)
    + β·KL + adv_weight·(−log D(Dec(z_p))) + λ·(Gaussian NLL of the informative latents of z_p
    under Q(Dec(z_p)), without the constant ½·log 2π per latent), z_p ~ p(z). Loss of D and Q:
    −log D(x) − log(1 − D(Dec(z_p))) + λ·(the same NLL, with Dec(z_p) held fixed). Q shares the
    discriminator's trunk (InfoGAN). The KL of the "informative" and the "incompressible"
    latents is logged separately (source paper 002, Fig. 15).

    What differs from the source: the adversarial term is non-saturating (see the module's
    docstring); the source unrolls the GAN, this class does not (notebook 06 covers unrolling);
    both optimisers are Adam with PyTorch's default β = (0.9, 0.999), where VAE-GAN's and
    ID-GAN's recipes use β₁ = 0.5 (the source states none).
    """

    training_only = ("discriminator",)  # D and Q: encoding and decoding do not use them

    def __init__(self, num_latents: int = 10, num_informative: int = 3, beta: float = 1.0,
                 lam: float = 1.0, adv_weight: float = 1.0, channels: int = 1):
        super().__init__()
        self.num_latents = check_positive_int("num_latents", num_latents)
        self.num_informative = check_positive_int("num_informative", num_informative)
        if self.num_informative >= self.num_latents:
            raise ValueError(f"num_informative ({num_informative}) must be smaller than num_latents ({num_latents})")
        self.beta = check_non_negative("beta", beta)
        self.lam = check_non_negative("lam", lam)
        self.adv_weight = check_non_negative("adv_weight", adv_weight)
        self.channels = check_positive_int("channels", channels)
        self.encoder = BurgessEncoder(2 * self.num_latents, channels)
        self.decoder = BurgessDecoder(self.num_latents, channels)
        # one logit for D, then μ and log σ² of Q for each informative latent
        self.discriminator = FeatureDiscriminator(channels, extra_outputs=2 * self.num_informative)

    def config(self):
        return {"num_latents": self.num_latents, "num_informative": self.num_informative,
                "beta": self.beta, "lam": self.lam, "adv_weight": self.adv_weight,
                "channels": self.channels}

    encode = VAE.encode
    decode = VAE.decode

    def configure_optimizers(self, lr):
        vae = list(self.encoder.parameters()) + list(self.decoder.parameters())
        return {"vae": torch.optim.Adam(vae, lr=lr),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr)}

    def _d_and_q(self, x):
        out = self.discriminator(x)
        q_mu, q_logvar = out[:, 1:].chunk(2, dim=1)
        return out[:, :1], q_mu, q_logvar

    def training_step(self, x, step, optimizers):
        k = self.num_informative
        mu, logvar = self.encode(x)
        z = VAE.reparameterize(mu, logvar)
        recon = reconstruction("bernoulli", self.decode(z), x)
        kl_per_latent = kl_normal(mu, logvar).mean(0)
        z_p = torch.randn_like(z)
        x_p = torch.sigmoid(self.decode(z_p))
        d_fake, q_mu, q_logvar = self._d_and_q(x_p)
        info = 0.5 * (q_logvar + (z_p[:, :k] - q_mu) ** 2 / q_logvar.exp()).sum(1).mean()
        vae_loss = recon + self.beta * kl_per_latent.sum() + self.adv_weight * _bce(d_fake, 1.0) + self.lam * info
        d_real, _, _ = self._d_and_q(x)
        d_fake_det, q_mu_d, q_logvar_d = self._d_and_q(x_p.detach())
        info_d = 0.5 * (q_logvar_d + (z_p[:, :k] - q_mu_d) ** 2 / q_logvar_d.exp()).sum(1).mean()
        d_loss = _bce(d_real, 1.0) + _bce(d_fake_det, 0.0) + self.lam * info_d
        vae_params = [p for g in optimizers["vae"].param_groups for p in g["params"]]
        dis_params = list(self.discriminator.parameters())
        g_vae = torch.autograd.grad(vae_loss, vae_params)
        g_dis = torch.autograd.grad(d_loss, dis_params)
        for params, grads, name in ((vae_params, g_vae, "vae"), (dis_params, g_dis, "discriminator")):
            _set_grads(params, grads)
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
        return {"loss": vae_loss.detach(), "recon": recon.detach(), "kl": kl_per_latent.sum().detach(),
                "kl_per_latent": kl_per_latent.detach(), "info": info.detach(),
                "discriminator": d_loss.detach(),
                "kl_informative": kl_per_latent[:k].mean().detach(),
                "kl_incompressible": kl_per_latent[k:].mean().detach()}


def _vae_from(spec):
    """A frozen step-1 model from a VAE instance, a checkpoint path or a {"name", "config"} dict."""
    from ..train import load_checkpoint, load_into
    from .base import MODELS

    if isinstance(spec, VAE):
        return copy.deepcopy(spec)  # frozen below: the caller's model stays as it was
    if isinstance(spec, dict):
        if spec.get("name") not in MODELS:
            raise ValueError(f"unknown step-1 model {spec.get('name')!r}")
        model = MODELS[spec["name"]](**spec["config"])
        if not isinstance(model, VAE):
            raise ValueError(f"ID-GAN's step 1 must be a VAE of the course, got {type(model).__name__}")
        return model
    if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__"):
        state = load_checkpoint(spec)
        cls = MODELS.get(state["model_name"])
        if cls is None or not issubclass(cls, VAE):
            raise ValueError(
                f"{spec} holds a {state['model_name']!r} model; ID-GAN's step 1 must be a VAE of the "
                "course (vae, beta_vae, capacity_vae, beta_tcvae, ...)"
            )
        return load_into(cls(**state["model_config"]), state, source=str(spec))
    raise TypeError(f"step-1 model must be a VAE, a checkpoint path or a spec dict, got {type(spec).__name__}")


@register("idgan")
class IDGAN(CourseModel):
    """ID-GAN (Lee et al., 2020; source paper 000 eq. 5–7), step 2.

    Step 1 is any trained 64×64 VAE of the course (frozen here: never updated, kept in eval
    mode; an instance passed in is copied, so the caller's model stays trainable). Step 2 trains
    a generator G(s, c) on [s, c], with c ~ q(c|x) of real images x and noise s ~ N(0, I), and
    a discriminator D. D maximises eq. 2's log D(x) + log(1 − D(G(s, c))); the generator
    minimises the non-saturating −log D(G(s, c)) in place of log(1 − D(G(s, c))), plus λ·R_ID,
    where R_ID = E[−log q(c | G(s, c))] is the negative log-likelihood of c under the frozen
    encoder's posterior of the generated image: eq. 7's KL(q(c) ‖ q(c|G(s, c))) up to the
    entropy of q(c), which does not depend on G. Each step updates D first, then G against the
    updated D.

    Four options make step 2 affordable on a small budget; all leave the objective unchanged:

    * ``r1 = γ > 0`` adds the R1 penalty of Mescheder et al. (2018) to the discriminator's loss,
      γ/2 · E_x[‖∇_x D(x)‖²] on real images (D's logit): it keeps D smooth on the data, a
      standard stabiliser of GAN training.
    * ``init="decoder"`` starts G from the step-1 decoder: the weights that read c are copied,
      those that read s are zero, so G(s, c) = Dec(c) at the start and the GAN loss then
      sharpens a renderer that already respects the code. ``"decoder+noise"`` leaves the
      weights that read s at their random initialisation, so that G uses s from the start.
      ``"random"`` (He initialisation) trains G from scratch, as in Lee et al. (2020); it needs a much longer run.
    * ``spectral_norm=True`` divides every weight of D by its largest singular value (Miyato et
      al., 2018; one power iteration per training forward pass), which bounds D's Lipschitz
      constant, as the dSprites InfoGAN of notebook 06 does.
    * ``minibatch_std=True`` lets D see how varied each batch is
      (:class:`FeatureDiscriminator`), so that a G that ignores s and draws one image per code
      pays for it.

    One option **adds a term** to G's objective (a declared variant, off by default):

    * ``diversity = λ_div > 0`` (the diversity-sensitive term of Yang et al., 2019): G also
      maximises λ_div · E[min(r, τ)] with r = mean|G(s₁, c) − G(s₂, c)| / mean|s₁ − s₂| (per
      image: mean over pixels, over noise dimensions), two noise draws for the same code.
      A G that ignores s has r = 0; the cap τ = ``diversity_cap`` stops the push once two
      draws differ as much as real sprites that share a code's position and scale (their
      shape and orientation redrawn: about 0.02 per pixel on dSprites, r ≈ 0.018).

    Args:
        vae: the step-1 model: a trained VAE, a checkpoint path, or {"name", "config"} (a spec
            builds the VAE *untrained*: that is how a checkpoint rebuilds the model before
            loading its weights, not a way to train step 2).
        noise_dim: size of s.
        code_size: must equal the VAE's num_latents (checked) when given.
        lam: λ ≥ 0.
        r1: γ ≥ 0 of the R1 penalty (0: none).
        init: "random", "decoder" or "decoder+noise" (the last two need a step-1 model with the
            Burgess 64×64 decoder).
        spectral_norm: spectrally normalise D's weights.
        minibatch_std: give D the batch's feature standard deviation.
        diversity: λ_div ≥ 0 of the diversity term (0: none, the source's objective).
        diversity_cap: τ > 0, the ratio r above which the term stops growing.
    """

    INITS = ("random", "decoder", "decoder+noise")
    training_only = ("discriminator",)  # sampling needs G and the step-1 model only

    def __init__(self, vae, noise_dim: int = 16, lam: float = 1.0, code_size: int | None = None,
                 channels: int | None = None, r1: float = 0.0, init: str = "random",
                 spectral_norm: bool = False, minibatch_std: bool = False, diversity: float = 0.0,
                 diversity_cap: float = DIVERSITY_CAP):
        super().__init__()
        vae = _vae_from(vae)
        self.diversity = check_non_negative("diversity", diversity)
        self.diversity_cap = check_positive("diversity_cap", diversity_cap)
        self.noise_dim = check_positive_int("noise_dim", noise_dim)
        self.lam = check_non_negative("lam", lam)
        self.r1 = check_non_negative("r1", r1)
        if init not in self.INITS:
            raise ValueError(f"init must be one of {self.INITS}, got {init!r}")
        self.init = init
        if code_size is not None and code_size != vae.num_latents:
            raise ValueError(f"code_size {code_size} does not match the step-1 model's {vae.num_latents} latents")
        self.code_size = vae.num_latents
        if getattr(vae, "arch", "burgess64") != "burgess64":
            raise ValueError(f"ID-GAN draws 64×64 images: its step-1 model must have the Burgess 64×64 "
                             f"networks (arch='burgess64'), got arch={vae.arch!r}")
        if channels is not None and channels != vae.channels:
            raise ValueError(f"channels={channels} does not match the step-1 model's {vae.channels} channel(s): "
                             "the frozen encoder reads G's images")
        self.channels = vae.channels
        self.vae = vae
        self.vae.requires_grad_(False)
        self.vae.eval()
        self.generator = BurgessDecoder(self.noise_dim + self.code_size, self.channels)
        self.minibatch_std = bool(minibatch_std)
        self.discriminator = FeatureDiscriminator(self.channels, minibatch_std=self.minibatch_std)
        self.spectral_norm = bool(spectral_norm)
        if self.spectral_norm:
            for layer in self.discriminator.modules():
                if isinstance(layer, (nn.Linear, nn.Conv2d)):
                    nn.utils.parametrizations.spectral_norm(layer)
        if init in ("decoder", "decoder+noise"):
            self._copy_decoder(keep_noise=init == "decoder+noise")

    def _copy_decoder(self, keep_noise: bool = False):
        """G's weights from the step-1 decoder: c's input columns copied, s's set to zero (or,
        with ``keep_noise``, left at their fresh random initialisation)."""
        decoder = getattr(self.vae, "decoder", None)
        if not isinstance(decoder, BurgessDecoder):  # (the channels are the step-1 model's, checked in __init__)
            raise ValueError("init='decoder' needs a step-1 model with the Burgess 64×64 decoder; got "
                             f"{type(decoder).__name__}")
        state = self.generator.state_dict()
        for key, value in decoder.state_dict().items():
            if state[key].shape == value.shape:
                state[key] = value.detach().clone()
            else:  # the first linear layer reads [s, c]: N×(noise_dim + code_size)
                weight = state[key].clone() if keep_noise else torch.zeros_like(state[key])
                weight[:, self.noise_dim:] = value
                state[key] = weight
        self.generator.load_state_dict(state)

    def config(self):
        return {"vae": {"name": self.vae.model_name, "config": self.vae.config()},
                "noise_dim": self.noise_dim, "lam": self.lam, "code_size": self.code_size,
                "channels": self.channels, "r1": self.r1, "init": self.init,
                # listed only when on, so that checkpoints saved before the option still match
                **({"spectral_norm": True} if self.spectral_norm else {}),
                **({"minibatch_std": True} if self.minibatch_std else {}),
                **({"diversity": self.diversity, "diversity_cap": self.diversity_cap} if self.diversity else {})}

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # the step-1 model stays frozen, also in train mode
        return self

    def configure_optimizers(self, lr):
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))}

    @torch.no_grad()
    def sample_codes(self, x):
        """c ~ q(c|x) of the frozen encoder, N×code_size."""
        mu, logvar = self.vae.encode(x)
        return VAE.reparameterize(mu, logvar)

    def generate(self, c, s=None):
        """Images (probabilities, N×C×64×64) G(s, c); s ~ N(0, I) when None."""
        if c.dim() != 2 or c.shape[1] != self.code_size:
            raise ValueError(f"expected codes of shape N×{self.code_size}, got {tuple(c.shape)}")
        if s is None:
            s = torch.randn(len(c), self.noise_dim, device=c.device, dtype=c.dtype)
        elif s.dim() != 2 or s.shape != (len(c), self.noise_dim):
            raise ValueError(f"expected noise of shape {len(c)}×{self.noise_dim} (one row per code), "
                             f"got {tuple(s.shape)}")
        return torch.sigmoid(self.generator(torch.cat([s, c], 1)))

    def r_id(self, c, x_gen):
        """R_ID = E[−log q(c | x_gen)] (nats, without the constant ½·log 2π per latent)."""
        mu, logvar = self.vae.encode(x_gen)
        return 0.5 * (logvar + (c - mu) ** 2 / logvar.exp()).sum(1).mean()

    @staticmethod
    def noise_ratio(x1, x2, s1, s2):
        """Per image, mean|x1 − x2| over pixels divided by mean|s1 − s2| over noise dimensions:
        how much the images change per unit change of the noise (N values)."""
        return (x1 - x2).abs().flatten(1).mean(1) / (s1 - s2).abs().mean(1).clamp_min(1e-8)

    r1_penalty = staticmethod(r1_penalty)

    def training_step(self, x, step, optimizers):
        c = self.sample_codes(x)
        s = torch.randn(len(c), self.noise_dim, device=c.device, dtype=c.dtype)
        x_gen = self.generate(c, s)
        x_real = x.detach().requires_grad_(self.r1 > 0)
        d_real = self.discriminator(x_real)
        d_loss = _bce(d_real, 1.0) + _bce(self.discriminator(x_gen.detach()), 0.0)
        out = {}
        if self.r1 > 0:
            penalty = self.r1_penalty(x_real, d_real)
            d_loss = d_loss + 0.5 * self.r1 * penalty
            out["r1"] = penalty.detach()
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()
        adv = _bce(self.discriminator(x_gen), 1.0)
        r_id = self.r_id(c, x_gen)
        g_loss = adv + self.lam * r_id
        if self.diversity > 0:  # the declared variant: a second noise draw for the same codes
            s2 = torch.randn_like(s)
            ratio = self.noise_ratio(x_gen, self.generate(c, s2), s, s2)
            g_loss = g_loss - self.diversity * ratio.clamp(max=self.diversity_cap).mean()
            out["noise_ratio"] = ratio.mean().detach()
        optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        optimizers["generator"].step()
        self.discriminator.zero_grad(set_to_none=True)
        return {"loss": g_loss.detach(), "gan_gen": adv.detach(), "r_id": r_id.detach(),
                "discriminator": d_loss.detach(), **out}
