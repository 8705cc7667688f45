"""Autoencoder, VAE and β-VAE on the Burgess et al. architecture.

The VAE family shares one structure (disentanglement_lib's habit): the loss is
reconstruction + :meth:`VAE.regularizer`, and variants (β-VAE, capacity, β-TCVAE) override
only the regulariser.
"""

from __future__ import annotations

import torch

from ..losses import kl_normal, reconstruction
from ..losses.recon import REDUCTIONS, output_to_pixels
from .base import CourseModel, check_non_negative, check_positive_int, register
from .nets import BurgessDecoder, BurgessEncoder
from .nets32 import build_nets, check_arch

RECON_KINDS = ("mse", "bernoulli", "gaussian")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: expected one of {choices}")
    return value


@register("autoencoder")
class Autoencoder(CourseModel):
    """Deterministic autoencoder (source paper 003, §1.1): z = enc(x), x_hat = dec(z).

    Loss (``recon``): ``"mse"`` (default), the squared error of the decoder's output summed
    over pixels and averaged over the batch (source paper 003, Eq. 1, times the number of pixels);
    ``"bernoulli"``, the cross-entropy of sigmoid(dec(z)); ``"gaussian"``, the squared error of
    sigmoid(dec(z)), which stalls at the empty image (notebook 01 shows why).
    :meth:`decode_pixels` gives images in [0, 1] for every choice.
    """

    def __init__(self, num_latents: int = 10, channels: int = 1, recon: str = "mse"):
        super().__init__()
        self.num_latents = check_positive_int("num_latents", num_latents)
        self.channels = check_positive_int("channels", channels)
        self.recon = _check_choice("recon", recon, RECON_KINDS)
        self.encoder = BurgessEncoder(self.num_latents, channels)
        self.decoder = BurgessDecoder(self.num_latents, channels)

    def config(self):
        return {"num_latents": self.num_latents, "channels": self.channels, "recon": self.recon}

    def encode(self, x):
        """x N×C×64×64 → (z N×D, None): an autoencoder has no posterior variance."""
        return self.encoder(x), None

    def decode(self, z):
        """z N×D → decoder outputs N×C×64×64: the image itself for ``recon="mse"``, logits
        otherwise; :meth:`decode_pixels` turns either into intensities in [0, 1]."""
        return self.decoder(z)

    def decode_pixels(self, z):
        """z N×D → images N×C×64×64 with intensities in [0, 1]."""
        return output_to_pixels(self.recon, self.decode(z))

    def forward(self, x):
        return self.decode(self.encode(x)[0])

    def loss_terms(self, x, step=0):
        recon = reconstruction(self.recon, self.forward(x), x)
        return {"loss": recon, "recon": recon}


@register("vae")
class VAE(CourseModel):
    """Variational autoencoder: q(z|x) = N(μ(x), diag σ²(x)), p(z) = N(0, I), p(x|z) Bernoulli.

    Loss (negative ELBO, source paper 003): E_q[−log p(x|z)] + β·KL(q(z|x) ‖ p(z)), with β = 1.

    Args:
        num_latents: D, the size of z.
        beta: weight of the KL term (β = 1: the VAE; β > 1: β-VAE).
        recon: "bernoulli" (default, binary images), "gaussian" (squared error of the sigmoid)
            or "mse" (squared error of the raw output).
        reduction: "sum" over pixels (correct) or "mean" (the mistake of source paper 001).
        arch: "burgess64" (64×64 images, Burgess et al.) or "mnist32" (32×32, source paper 004 Table 2).
    """

    default_beta = 1.0

    def __init__(self, num_latents: int = 10, beta: float | None = None, channels: int = 1,
                 recon: str = "bernoulli", reduction: str = "sum", arch: str = "burgess64"):
        super().__init__()
        self.num_latents = check_positive_int("num_latents", num_latents)
        self.beta = check_non_negative("beta", self.default_beta if beta is None else beta)
        self.channels = check_positive_int("channels", channels)
        self.recon = _check_choice("recon", recon, RECON_KINDS)
        self.reduction = _check_choice("reduction", reduction, REDUCTIONS)
        self.arch = check_arch(arch)
        self.encoder, self.decoder = build_nets(arch, 2 * self.num_latents, self.num_latents, channels)

    def config(self):
        return {"num_latents": self.num_latents, "beta": self.beta, "channels": self.channels,
                "recon": self.recon, "reduction": self.reduction, "arch": self.arch}

    def init_from(self, vae) -> VAE:
        """Copy the encoder and decoder of a trained VAE of the course with the same ``num_latents``,
        ``channels`` and ``arch`` (a run that continues another's weights under a new objective or
        budget). Returns ``self``."""
        mine = (self.num_latents, self.channels, self.arch)
        theirs = tuple(getattr(vae, k, None) for k in ("num_latents", "channels", "arch"))
        if not isinstance(vae, VAE) or theirs != mine:
            raise ValueError(f"init_from needs a VAE of the course with (num_latents, channels, arch) = {mine}, "
                             f"got {type(vae).__name__} with {theirs}")
        self.encoder.load_state_dict(vae.encoder.state_dict())
        self.decoder.load_state_dict(vae.decoder.state_dict())
        return self

    def encode(self, x):
        """x N×C×S×S (S = 64, or 32 for arch="mnist32") → (μ, log σ²), each N×D."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z):
        """z N×D → logits N×C×S×S (the image itself for ``recon="mse"``)."""
        return self.decoder(z)

    def decode_pixels(self, z):
        """z N×D → images N×C×S×S with intensities in [0, 1]."""
        return output_to_pixels(self.recon, self.decode(z))

    @staticmethod
    def reparameterize(mu, logvar, generator: torch.Generator | None = None):
        """z = μ + σ·ε, ε ~ N(0, I): a sample of q(z|x) that is differentiable in μ and σ.

        ε is drawn on ``generator``'s device when one is given (then moved to μ's), else from
        the global generator of μ's device."""
        draw = generator.device if generator is not None else mu.device
        eps = torch.randn(mu.shape, generator=generator, device=draw, dtype=mu.dtype).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x, eps=None):
        """Returns (logits, μ, log σ², z). ``eps``: the noise ε of z = μ + σ·ε (N×D) when it is
        given (:mod:`course_lib.multiseed` draws each copy's own), else drawn here."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if eps is None else mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar, z

    def regularizer(self, kl_per_latent, mu, logvar, z, step):
        """The term added to the reconstruction; β·Σ_j KL_j for the (β-)VAE.

        Args:
            kl_per_latent: D, the batch-mean KL of each latent (nats).
            mu, logvar, z: N×D posterior parameters and the sample.
        Returns:
            (scalar, dict of extra terms to log)
        """
        return self.beta * kl_per_latent.sum(), {}

    def loss_terms(self, x, step=0, eps=None):
        logits, mu, logvar, z = self.forward(x, eps)
        recon = reconstruction(self.recon, logits, x, self.reduction)
        kl_per_latent = kl_normal(mu, logvar).mean(0)
        reg, extra = self.regularizer(kl_per_latent, mu, logvar, z, step)
        return {"loss": recon + reg, "recon": recon, "kl": kl_per_latent.sum(),
                "kl_per_latent": kl_per_latent, **extra}


@register("beta_vae")
class BetaVAE(VAE):
    """β-VAE (Higgins et al., 2017): the VAE loss with β > 1 on the KL term (default β = 4)."""

    default_beta = 4.0
