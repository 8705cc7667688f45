"""β-VAE with controlled capacity increase (Burgess et al., 2018; source paper 001) and its hinge variant."""

from __future__ import annotations

import warnings

from ..losses.capacity import (
    C_MAX,
    C_START,
    C_STEPS,
    GAMMA,
    capacity_penalty,
    capacity_schedule,
    check_capacity_options,
)
from .base import register
from .vae import VAE


class CapacityScheduleWarning(UserWarning):
    """The capacity schedule does not fit in the training run."""


@register("capacity_vae")
class CapacityVAE(VAE):
    """VAE whose KL is pulled towards a growing target capacity C (source paper 001 §1.3.3, §2.3).

    Loss per batch (nats): recon + γ·|KL − C(step)|  (``penalty="abs"``)
    or recon + γ·max(0, KL − C(step))  (``penalty="hinge"``), where KL = Σ_j KL_j is the total
    KL of the code averaged over the batch and C(step) rises linearly from ``c_start`` to
    ``c_max`` over ``c_steps`` steps, then stays (:func:`course_lib.losses.capacity_schedule`).
    The penalty is on the batch's mean KL, as in disentanglement_lib's ``AnnealedVAE``, not on
    each image's KL as eq. 8 reads for a single x (a variant; see :mod:`course_lib.losses.capacity`).

    Only :meth:`regularizer` differs from the VAE. Besides the VAE's terms it logs
    ``"capacity"`` (C at the step) and ``"kl_minus_c"`` (KL − C, nats).

    Args:
        num_latents: D.
        gamma: γ ≥ 0 (seed: 1000).
        c_start, c_max: C at step 0 and at the end of the ramp, nats (seed: 0.5 and 25).
        c_steps: length of the ramp in training steps (Burgess et al. on dSprites: 100,000).
        penalty: "abs" or "hinge".
        channels, recon, reduction: as for :class:`VAE` (``reduction="mean"`` is the mistake
            of source paper 001 §2.2).
    """

    def __init__(self, num_latents: int = 10, gamma: float = GAMMA, c_start: float = C_START,
                 c_max: float = C_MAX, c_steps: int = C_STEPS, penalty: str = "abs",
                 channels: int = 1, recon: str = "bernoulli", reduction: str = "sum"):
        check_capacity_options(c_start, c_max, c_steps, gamma, penalty)
        super().__init__(num_latents=num_latents, beta=None, channels=channels, recon=recon,
                         reduction=reduction)
        self.gamma = float(gamma)
        self.c_start, self.c_max = float(c_start), float(c_max)
        self.c_steps = int(c_steps)
        self.penalty = penalty

    def config(self):
        return {"num_latents": self.num_latents, "gamma": self.gamma, "c_start": self.c_start,
                "c_max": self.c_max, "c_steps": self.c_steps, "penalty": self.penalty,
                "channels": self.channels, "recon": self.recon, "reduction": self.reduction}

    def capacity(self, step: int) -> float:
        """C (nats) at a training step (0-based)."""
        return capacity_schedule(step, self.c_start, self.c_max, self.c_steps)

    def regularizer(self, kl_per_latent, mu, logvar, z, step):
        """γ·|KL − C| or γ·max(0, KL − C) with KL = Σ_j kl_per_latent[j] (nats).

        Returns (penalty, {"capacity": C, "kl_minus_c": KL − C}), all scalars on KL's device.
        """
        kl = kl_per_latent.sum()
        # filled on the device (torch.tensor would copy C from the host: a GPU synchronisation)
        c = kl.detach().new_full((), self.capacity(step))
        reg = capacity_penalty(kl, c, self.gamma, self.penalty)
        return reg, {"capacity": c, "kl_minus_c": (kl - c).detach()}

    def check_schedule(self, steps: int) -> bool:
        """Warn (:class:`CapacityScheduleWarning`) if the ramp is longer than a run of ``steps``.

        Steps run from 0 to ``steps − 1`` and C reaches ``c_max`` at step ``c_steps``, so the ramp
        fits when ``c_steps < steps`` (True); otherwise False, after warning.
        """
        if self.c_steps < steps:
            return True
        reached = self.capacity(max(int(steps) - 1, 0))
        warnings.warn(
            f"the capacity schedule ramps C up over c_steps={self.c_steps} steps but the run has "
            f"only {steps} steps: C will stop at {reached:.2f} nats instead of c_max={self.c_max:g}. "
            f"Lower c_steps (e.g. to {int(0.8 * steps)}) or train longer.",
            CapacityScheduleWarning, stacklevel=3)
        return False

    def on_train_start(self, steps: int) -> None:
        """Called by ``course_lib.train.train``: checks the schedule against the run length."""
        self.check_schedule(steps)
