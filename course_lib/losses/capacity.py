"""Controlled capacity increase (Burgess et al., 2018; source paper 001 §1.3.3) and its hinge variant.

Source paper 001 writes the capacity objective (§1.3.3) as

    L(θ, φ; C, x) = E_{q_φ(z|x)}[log p_θ(x|z)] − γ |D_KL(q_φ(z|x) ‖ p(z)) − C|

(the source paper's typesetting drops the bars of the absolute value, which Burgess et al., eq. 8, have),
with C raised linearly from a small value (0.5 nats) to 25 nats during training and γ = 1000.
Source paper 001 §2.3 replaces the absolute value by a "hinge loss like penalty", which the
course reads as γ·max(0, D_KL − C) (the source gives no formula): a KL *below* the target
capacity is no longer penalised.

The course minimises the negative of L, so the penalty added to the reconstruction term is
``capacity_penalty(kl, capacity_schedule(step))``.

A variant, stated: the equation is written for one image x, so taken literally each image's
own KL is held at C (a batch pays the mean of γ|KL_i − C|). :class:`~course_lib.models.CapacityVAE`,
like disentanglement_lib's ``AnnealedVAE``, passes the KL *averaged over the batch*, γ|mean_i KL_i − C|,
which is never larger (|mean − C| ≤ mean |· − C|) and asks only the average image to carry C
nats. ``capacity_penalty`` is elementwise, so ``capacity_penalty(kl_i, C).mean()`` over per-image
KLs is the literal form; notebook 04 measures how far apart the two are on the shipped models.
"""

from __future__ import annotations

import math

import torch

PENALTIES = ("abs", "hinge")

#: Defaults from source paper 001 §1.3.3 (0.5 → 25 nats, γ = 1000) and Burgess et al. for dSprites
#: (C reaches its maximum after 100,000 iterations).
C_START = 0.5
C_MAX = 25.0
C_STEPS = 100_000
GAMMA = 1000.0


def _finite(name: str, value) -> float:
    if isinstance(value, (str, bytes, bool)):   # float("25") would pass a string through
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from err
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def check_capacity_options(c_start: float = C_START, c_max: float = C_MAX,
                           c_steps: int = C_STEPS, gamma: float | None = None,
                           penalty: str | None = None) -> None:
    """Raise ValueError/TypeError with a message for the student on impossible options.

    C_start ≥ 0 (a KL is never negative), C_max ≥ C_start (capacity is *raised*), c_steps a
    non-negative integer, γ ≥ 0, penalty "abs" or "hinge".
    """
    c_start, c_max = _finite("c_start", c_start), _finite("c_max", c_max)
    if c_start < 0:
        raise ValueError(f"c_start must be >= 0 nats (a KL divergence is never negative), got {c_start}")
    if c_max < c_start:
        raise ValueError(f"c_max ({c_max} nats) must be >= c_start ({c_start} nats): the capacity "
                         "C is raised from c_start to c_max during training")
    if isinstance(c_steps, bool) or not isinstance(c_steps, (int, float)) or int(c_steps) != c_steps:
        raise TypeError(f"c_steps must be a whole number of training steps, got {c_steps!r}")
    if c_steps < 0:
        raise ValueError(f"c_steps must be >= 0 (0 means C = c_max from the first step), got {c_steps}")
    if gamma is not None:
        gamma = _finite("gamma", gamma)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0 (it weighs a penalty; source paper 001 uses 1000), got {gamma}")
    if penalty is not None and penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}: expected 'abs' (γ·|KL − C|, Burgess et al.) "
                         "or 'hinge' (γ·max(0, KL − C), source paper 001 §2.3)")


def capacity_schedule(step, c_start: float = C_START, c_max: float = C_MAX,
                      c_steps: int = C_STEPS):
    """The target capacity C (nats) at a training step: linear from ``c_start`` to ``c_max``.

    C(step) = c_start + (c_max − c_start) · min(step / c_steps, 1)   (source paper 001 §1.3.3)

    Step 0 gives ``c_start``; from step ``c_steps`` on, C stays at ``c_max``. With
    ``c_steps = 0`` C is ``c_max`` from the start.

    Args:
        step: training step (0-based), an int (→ float) or an integer tensor of any shape
            (→ float tensor of the same shape).
    Returns:
        C in nats.
    """
    check_capacity_options(c_start, c_max, c_steps)
    c_start, c_max = float(c_start), float(c_max)
    if isinstance(step, torch.Tensor):
        if bool((step < 0).any()):
            raise ValueError("step must be >= 0 (training steps count from 0)")
        s = step.to(torch.float64)
        frac = torch.ones_like(s) if c_steps == 0 else (s / c_steps).clamp(max=1.0)
        return (c_start + (c_max - c_start) * frac).to(torch.get_default_dtype())
    if isinstance(step, bool) or not isinstance(step, (int, float)) or int(step) != step:
        raise TypeError(f"step must be a whole number (the training step), got {step!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0 (training steps count from 0), got {step}")
    frac = 1.0 if c_steps == 0 else min(step / c_steps, 1.0)
    return c_start + (c_max - c_start) * frac


def capacity_penalty(kl: torch.Tensor, capacity, gamma: float = GAMMA,
                     penalty: str = "abs") -> torch.Tensor:
    """The capacity penalty added to the reconstruction loss, in nats.

    - ``penalty="abs"``:   γ · |KL − C|        (source paper 001 §1.3.3; Burgess et al. eq. 8)
    - ``penalty="hinge"``: γ · max(0, KL − C)  (source paper 001 §2.3)

    Args:
        kl: the KL term D_KL(q(z|x) ‖ p(z)) summed over latents and averaged over the batch
            (a scalar tensor, nats), or any tensor of such values (the penalty is elementwise).
        capacity: C in nats (a number or a tensor broadcastable to ``kl``).
        gamma: γ ≥ 0, the weight of the penalty (source paper 001: 1000).
        penalty: "abs" or "hinge".
    Returns:
        a tensor of ``kl``'s shape (a scalar for a scalar KL), nats.
    """
    check_capacity_options(gamma=gamma, penalty=penalty)
    if not isinstance(kl, torch.Tensor):
        raise TypeError(f"kl must be a tensor (the batch-mean total KL in nats), got {type(kl).__name__}")
    gap = kl - capacity
    if penalty == "abs":
        return float(gamma) * gap.abs()
    return float(gamma) * gap.clamp(min=0.0)
