"""Models that penalise the total correlation of q(z): β-TCVAE, FactorVAE and CFactorVAE.

- :class:`BetaTCVAE` (Chen et al., 2018; source paper 003 eq. 10): the KL term is replaced by
  α·MI + β·TC + γ·dimension-wise KL, each estimated from the minibatch
  (:func:`course_lib.losses.tc_decomposition`).
- :class:`FactorVAE` (Kim & Mnih, 2018; source paper 004 eqs. 10-11): the VAE loss plus γ·TC, with the
  TC estimated by a discriminator D that tells codes z ~ q(z) from codes whose dimensions were
  shuffled independently across the batch (samples of Π_j q(z_j)):
  TC ≈ E_q(z)[log D(z) / (1 − D(z))] = E_q(z)[logit of D]. The discriminator has its own
  optimiser; :meth:`FactorVAE.training_step` does the two updates.
- :class:`CFactorVAE` (source paper 004 eq. 12): reconstruction + |KL − C| + γ·TC, with C raised
  during training (:func:`course_lib.losses.capacity_schedule`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import kl_normal, reconstruction
from ..losses.capacity import capacity_penalty, capacity_schedule, check_capacity_options
from ..losses.tc import ESTIMATORS, tc_decomposition
from .base import check_non_negative, check_positive, check_positive_int, register
from .vae import VAE

#: Number of images of dSprites, the default data set size of the β-TCVAE estimators.
DSPRITES_SIZE = 737_280


def _weight(name: str, value) -> float:
    try:
        return check_non_negative(name, value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the weight {name} must be a number >= 0 (it multiplies a divergence, "
                         f"which is >= 0), got {value!r}") from err


@register("beta_tcvae")
class BetaTCVAE(VAE):
    """β-TCVAE: reconstruction + α·MI + β·TC + γ·dimension-wise KL (source paper 003, eq. 10).

    Args:
        alpha, beta, gamma: weights (≥ 0) of the index-code MI, the total correlation and the
            dimension-wise KL; α = γ = 1, β > 1 is the setting of Chen et al. (β = 6 here).
        dataset_size: N, the number of training images (737280 for dSprites).
        estimator: "mss" (minibatch stratified sampling) or "mws" (minibatch weighted sampling).
        other arguments: as :class:`VAE` (``arch="mnist32"`` for 32×32 images).
    Logs "mi", "tc", "dw_kl" (nats; MWS values carry the constant offsets of
    :mod:`course_lib.losses.tc`, and so does the logged "loss": (α + β(D − 1) − γD)·log N,
    about 608 nats for α = γ = 1, β = 6, D = 10 on dSprites; gradients are unaffected).
    """

    default_beta = 6.0

    def __init__(self, num_latents: int = 10, alpha: float = 1.0, beta: float | None = None,
                 gamma: float = 1.0, dataset_size: int = DSPRITES_SIZE, estimator: str = "mss",
                 channels: int = 1, recon: str = "bernoulli", reduction: str = "sum",
                 arch: str = "burgess64"):
        beta = _weight("beta", self.default_beta if beta is None else beta)
        super().__init__(num_latents, beta, channels, recon, reduction, arch)
        self.alpha = _weight("alpha", alpha)
        self.gamma = _weight("gamma", gamma)
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}: expected one of {ESTIMATORS}")
        self.estimator = estimator
        self.dataset_size = check_positive_int("dataset_size", dataset_size)

    def config(self):
        return {**super().config(), "alpha": self.alpha, "gamma": self.gamma,
                "dataset_size": self.dataset_size, "estimator": self.estimator}

    def regularizer(self, kl_per_latent, mu, logvar, z, step):
        mi, tc, dw_kl = tc_decomposition(z, mu, logvar, self.dataset_size, self.estimator)
        reg = self.alpha * mi + self.beta * tc + self.gamma * dw_kl
        return reg, {"mi": mi, "tc": tc, "dw_kl": dw_kl}


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle every column of z independently across the batch (Kim & Mnih, Alg. 1).

    If the rows of z are samples of q(z), the rows of the result are (approximately) samples of
    Π_j q(z_j): each dimension keeps its marginal, the dependence between dimensions is broken.

    Args:
        z: M×D codes.
        generator: optional torch.Generator (on z's device) for the permutations.
    Returns:
        M×D tensor (a new tensor; z is not modified).
    """
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"permute_dims expects codes of shape M×D, got {getattr(z, 'shape', type(z))}")
    m, d = z.shape
    idx = torch.stack([torch.randperm(m, generator=generator, device=z.device) for _ in range(d)], dim=1)
    return torch.gather(z, 0, idx)


class TCDiscriminator(nn.Module):
    """MLP z N×D → one logit per code, log D(z)/(1 − D(z)) (Kim & Mnih: 6 layers of 1000 units,
    LeakyReLU 0.2). D(z) is the probability that z came from q(z) rather than Π_j q(z_j)."""

    def __init__(self, num_latents: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        hidden = check_positive_int("disc_hidden", hidden)
        layers = check_positive_int("disc_layers", layers)
        mods, width = [], num_latents
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        mods.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns logits of shape N."""
        return self.net(z).squeeze(1)


def tc_discriminator_loss(disc: nn.Module, z_joint: torch.Tensor, z_perm: torch.Tensor):
    """Binary cross-entropy of the discriminator: label 1 for codes of q(z), 0 for permuted codes.

    Returns (loss, accuracy), scalars; the loss is in nats (mean of the two halves).
    """
    logit_joint, logit_perm = disc(z_joint), disc(z_perm)
    loss = 0.5 * (F.softplus(-logit_joint).mean() + F.softplus(logit_perm).mean())
    # a logit of exactly 0 is a coin toss: half right (a constant-0 critic scores 0.5, not 0)
    acc = 0.5 * (((logit_joint > 0).float() + 0.5 * (logit_joint == 0).float()).mean()
                 + ((logit_perm < 0).float() + 0.5 * (logit_perm == 0).float()).mean())
    return loss, acc


@register("factor_vae")
class FactorVAE(VAE):
    """FactorVAE: reconstruction + KL + γ·TC, TC from a density-ratio discriminator
    (source paper 004 eqs. 10-11; Kim & Mnih, 2018).

    Args:
        gamma: weight (≥ 0) of the TC term (Kim & Mnih use 10-100 on dSprites; default 35).
        disc_hidden, disc_layers: size of the discriminator MLP (paper: 1000 × 6).
        disc_lr: learning rate of the discriminator's Adam (β₁ = 0.5, β₂ = 0.9 as in the paper).
        other arguments: as :class:`VAE`; the KL weight is 1 (the ELBO).

    ``training_step`` does two updates per batch of M images: (1) the VAE on the whole batch,
    with the discriminator frozen (its weights get no gradient); (2) the discriminator on the
    *detached* codes, the first M//2 as samples of q(z) and the dimension-wise permuted other
    half as samples of Π_j q(z_j). Logs "tc" (the discriminator's estimate, nats),
    "disc_loss" and "disc_acc".

    A variant, stated: Kim & Mnih's Algorithm 2 gives the discriminator the whole batch as
    samples of q(z) and permutes the codes of a *second*, freshly drawn batch. Splitting one
    batch in two costs no second encoder pass and gives each class samples from the same
    distributions as the algorithm does, but only M/2 of them, and the permutation mixes only
    M/2 codes: two dimensions of a permuted row come from the same image with probability 2/M
    instead of 1/M, which leaves a little dependence in the "product" class and pulls the
    discriminator's TC estimate down slightly (disentanglement_lib also reuses the VAE's
    batch, whole). The generator passed to ``training_step`` draws the permutation; the
    reparameterisation noise comes from torch's global generator, which ``train`` seeds, as
    for every VAE of the course.
    """

    default_beta = 1.0
    default_gamma = 35.0
    training_only = ("discriminator",)  # 5M weights; encoding and decoding do not use it

    def __init__(self, num_latents: int = 10, gamma: float | None = None, disc_hidden: int = 1000,
                 disc_layers: int = 6, disc_lr: float = 1e-4, channels: int = 1,
                 recon: str = "bernoulli", reduction: str = "sum", arch: str = "burgess64"):
        super().__init__(num_latents, 1.0, channels, recon, reduction, arch)
        self.gamma = _weight("gamma", self.default_gamma if gamma is None else gamma)
        self.disc_hidden = check_positive_int("disc_hidden", disc_hidden)
        self.disc_layers = check_positive_int("disc_layers", disc_layers)
        self.disc_lr = check_positive("disc_lr", disc_lr)
        self.discriminator = TCDiscriminator(self.num_latents, self.disc_hidden, self.disc_layers)

    def config(self):
        cfg = super().config()
        cfg.pop("beta")
        return {**cfg, "gamma": self.gamma, "disc_hidden": self.disc_hidden,
                "disc_layers": self.disc_layers, "disc_lr": self.disc_lr}

    def vae_parameters(self):
        """Parameters of the encoder and decoder (everything but the discriminator)."""
        return [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]

    def configure_optimizers(self, lr: float):
        return {"model": torch.optim.Adam(self.vae_parameters(), lr=lr),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr,
                                                  betas=(0.5, 0.9))}

    def total_correlation(self, z: torch.Tensor) -> torch.Tensor:
        """TC ≈ mean over the batch of log D(z)/(1 − D(z)), the discriminator's logit (eq. 11), nats."""
        return self.discriminator(z).mean()

    def kl_regularizer(self, kl_per_latent, step, mu, logvar):
        """The KL part of the loss: Σ_j KL_j for FactorVAE (eq. 10); ``mu``, ``logvar`` (N×D)
        for subclasses whose KL term is taken per image."""
        return kl_per_latent.sum(), {}

    def regularizer(self, kl_per_latent, mu, logvar, z, step):
        kl_part, extra = self.kl_regularizer(kl_per_latent, step, mu, logvar)
        tc = self.total_correlation(z)
        return kl_part + self.gamma * tc, {**extra, "tc": tc}

    def _vae_terms(self, x, step):
        logits, mu, logvar, z = self.forward(x)
        recon = reconstruction(self.recon, logits, x, self.reduction)
        kl_per_latent = kl_normal(mu, logvar).mean(0)
        reg, extra = self.regularizer(kl_per_latent, mu, logvar, z, step)
        terms = {"loss": recon + reg, "recon": recon, "kl": kl_per_latent.sum(),
                 "kl_per_latent": kl_per_latent, **extra}
        return terms, z

    def loss_terms(self, x, step=0):
        return self._vae_terms(x, step)[0]

    def training_step(self, x, step, optimizers, generator: torch.Generator | None = None):
        if x.shape[0] < 2:
            raise ValueError(f"FactorVAE needs batches of at least 2 images (half of the codes are "
                             f"permuted for the discriminator), got {x.shape[0]}")
        opt_vae, opt_disc = optimizers["model"], optimizers["discriminator"]
        # (1) the VAE's update: the discriminator is a fixed critic, it receives no gradient
        self.discriminator.requires_grad_(False)
        try:
            opt_vae.zero_grad(set_to_none=True)
            terms, z = self._vae_terms(x, step)
            terms["loss"].backward()
            opt_vae.step()
        finally:
            self.discriminator.requires_grad_(True)
        # (2) the discriminator's update on detached codes: no gradient reaches the VAE
        z = z.detach()
        half = z.shape[0] // 2
        opt_disc.zero_grad(set_to_none=True)
        d_loss, d_acc = tc_discriminator_loss(self.discriminator, z[:half],
                                           permute_dims(z[half:2 * half], generator))
        d_loss.backward()
        opt_disc.step()
        out = {k: v.detach() for k, v in terms.items()}
        out["disc_loss"], out["disc_acc"] = d_loss.detach(), d_acc.detach()
        return out


CAPACITY_MODES = ("per_sample", "batch")


@register("cfactor_vae")
class CFactorVAE(FactorVAE):
    """CFactorVAE (source paper 004, eq. 12): reconstruction + w·(1/N) Σ_i |KL_i − C| + γ·TC, with
    KL_i = KL(q(z|x_i) ‖ p(z)) of each image, C raised linearly from ``c_start`` to ``c_max``
    nats over ``c_steps`` steps, TC from the FactorVAE discriminator. Eq. 12 has w = 1
    (``capacity_weight``); with γ = 0 it is the controlled (capacity) VAE of eq. 9 with β = w,
    per image (the course's :class:`~course_lib.models.CapacityVAE` is the ``"batch"`` form below).

    ``capacity_mode="per_sample"`` (default) is eq. 12 term by term: the absolute value is taken
    for every image, then averaged. ``"batch"`` is the variant w·|(1/N) Σ_i KL_i − C| (the form
    of the capacity VAE of notebook 04): since |mean − C| ≤ mean |· − C|, it is never larger,
    and it only asks the *average* image to carry C nats, where eq. 12 asks every image to.
    Logs "capacity" (C, nats), "kl_spread" (mean |KL_i − mean KL|, nats) and "tc".
    """

    default_gamma = 35.0

    def __init__(self, num_latents: int = 10, gamma: float | None = None,
                 capacity_weight: float = 1.0, c_start: float = 0.5, c_max: float = 25.0,
                 c_steps: int = 100_000, disc_hidden: int = 1000, disc_layers: int = 6,
                 disc_lr: float = 1e-4, channels: int = 1, recon: str = "bernoulli",
                 reduction: str = "sum", arch: str = "burgess64", capacity_mode: str = "per_sample"):
        super().__init__(num_latents, gamma, disc_hidden, disc_layers, disc_lr, channels, recon,
                         reduction, arch)
        self.capacity_weight = _weight("capacity_weight", capacity_weight)
        check_capacity_options(c_start, c_max, c_steps)
        self.c_start, self.c_max, self.c_steps = float(c_start), float(c_max), int(c_steps)
        if capacity_mode not in CAPACITY_MODES:
            raise ValueError(f"capacity_mode must be one of {CAPACITY_MODES} ('per_sample': source paper "
                             f"004 eq. 12, mean of |KL_i - C|; 'batch': |mean KL - C|), got "
                             f"{capacity_mode!r}")
        self.capacity_mode = capacity_mode

    def config(self):
        return {**super().config(), "capacity_weight": self.capacity_weight,
                "c_start": self.c_start, "c_max": self.c_max, "c_steps": self.c_steps,
                "capacity_mode": self.capacity_mode}

    def capacity(self, step: int) -> float:
        """C at a training step (nats)."""
        return capacity_schedule(step, self.c_start, self.c_max, self.c_steps)

    def kl_regularizer(self, kl_per_latent, step, mu, logvar):
        """w·mean_i |KL_i − C| (eq. 12) or w·|mean KL − C| (``capacity_mode="batch"``), nats."""
        kl_each = kl_normal(mu, logvar).sum(1)  # N: KL_i of every image
        c = kl_each.new_full((), self.capacity(step))  # made on the device: no host copy
        if self.capacity_mode == "per_sample":
            penalty = self.capacity_weight * (kl_each - c).abs().mean()
        else:
            penalty = capacity_penalty(kl_per_latent.sum(), c, gamma=self.capacity_weight, penalty="abs")
        spread = (kl_each - kl_each.mean()).abs().mean().detach()
        return penalty, {"capacity": c, "kl_spread": spread}
