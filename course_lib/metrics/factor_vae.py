"""FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", §4).

The metric must *generate* data: each training point is a batch of ``batch_size`` samples that
share one fixed value of one randomly chosen factor k. So it is a function of a data source,
not of a fixed sample: ``codes_of(classes [N, K] LongTensor) -> codes [N, D]`` plus
``factor_sizes``. Wrap a model and a data set with
:func:`course_lib.metrics.codes_of_model`; synthetic representations are plain functions of the
classes (:mod:`course_lib.metrics.synthetic`).

Procedure (following Kim & Mnih and disentanglement_lib):

1. Estimate each code dimension's global standard deviation ``s_d`` on ``n_variance`` random
   samples (two-pass, float64). A dimension is *constant* when its range is zero up to rounding,
   ``max - min <= 1e-12 * max|z_d|``, whatever its value (all-0 and all-3.7 codes are both
   constant); constant dimensions are always dropped. Then *prune* collapsed dimensions: keep
   dimension d when ``s_d >= prune_threshold * max_d s_d`` and ``s_d >= min_std``.
2. For each of ``n_train`` (then ``n_eval``) points: pick a factor k uniformly among the factors
   with more than one value, fix it to a random value, draw ``batch_size`` samples, normalise
   their codes with the global mean and std, ``u_d = (z_d - mean_d) / s_d``, and take
   ``d* = argmin_d Var(u_d)`` over the active dimensions (unbiased variance, ddof = 1; a
   dimension constant within the batch has exactly 0). The point is the vote ``(d*, k)``.
3. The majority-vote classifier maps each dimension d to the factor that won most training
   votes in d. The score is its accuracy on the evaluation votes.

Pruning threshold (a choice, stated): kept *relative*, ``prune_threshold=0.05`` of the largest
std by default, with ``min_std=0``. disentanglement_lib's ``prune_dims`` keeps a dimension when
its global std (the square root of the variance) is at least an *absolute* threshold: 0 by
default, 0.05 in its study configurations, which presumes VAE means on the scale of the N(0, 1)
prior, where an active dimension has a std near 1. For such codes the relative rule prunes
about the same dimensions and stays unchanged when all codes are rescaled together. Pruning
matters on real models: the shipped β-VAE (16,000 steps) has 3 active dimensions (std ≈ 1) and
7 collapsed ones (std 0.017-0.031, means that wiggle far below the posterior noise); with
1,000 / 500 votes it scores 0.38 with pruning (relative or disentanglement_lib's) but 0.50 when
the collapsed dimensions vote. A global std cannot tell a collapsed dimension from an
informative one in smaller units, so the price is that an informative dimension about 20x or
more smaller than the largest is pruned too (a perfect code on factors of sizes (1, 5, 5, 6)
with one dimension at scale 1/40 scores about 0.7; at exactly 1/20 the sampled stds decide,
and it scored between 0.64 and 1 depending on the dimension; at 1/10 it scores 1). For codes whose
dimensions have arbitrary units (synthetic codes, autoencoders) pass ``prune_threshold=0``:
only constant dimensions are dropped and the score is invariant to any affine map per
dimension. Pass ``prune_threshold=0, min_std=0.05`` to reproduce disentanglement_lib's study
setting exactly.

Chance level is about ``1 / K`` (not 0): every batch votes for *some* dimension.
Cost: ``(n_train + n_eval) * batch_size + n_variance`` codes (with the defaults of
disentanglement_lib, 970,000: use smaller numbers on a CPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import call_codes_of, check_count, check_factor_sizes, make_generator, sample_classes

#: a dimension whose range is at most this fraction of its largest |value| counts as constant
CONSTANT_RTOL = 1e-12


@dataclass(frozen=True)
class FactorVAEResult:
    """Result of :func:`factor_vae_score`.

    Attributes:
        score: evaluation accuracy of the majority-vote classifier, in [0, 1].
        train_accuracy: its accuracy on the training votes.
        votes: ``[D, K]`` training votes (how often dimension d had the least variance when
            factor k was fixed).
        active: ``[D]`` bool, dimensions kept (not constant, not pruned as collapsed).
        global_std: ``[D]`` global standard deviation of each code dimension (code units,
            ddof = 1; exactly 0 for a constant dimension).
        skipped: factors never fixed (a single value: fixing it changes nothing).
        notes: human-readable remarks.
    """

    score: float
    train_accuracy: float
    votes: np.ndarray
    active: np.ndarray
    global_std: np.ndarray
    skipped: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _check_count(value, name: str, minimum: int) -> int:
    """An integer count >= ``minimum`` (see :func:`._checks.check_count`)."""
    return check_count(value, name, minimum)


def varying_factors(sizes: tuple[int, ...], factor_names=None) -> tuple[list[int], list[int], list[str]]:
    """Split factor indices into those with more than one value and the skipped rest (+ notes)."""
    varying = [k for k, s in enumerate(sizes) if s > 1]
    skipped = [k for k, s in enumerate(sizes) if s <= 1]
    notes = []
    for k in skipped:
        label = f"factor {k}" + (f" ({factor_names[k]!r})" if factor_names is not None else "")
        notes.append(f"{label} skipped: it takes a single value, so it cannot be fixed")
    return varying, skipped, notes


def fixed_factor_classes(n: int, batch_size: int, sizes: tuple[int, ...], varying: Sequence[int],
                         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` batches of classes ``[n, batch_size, K]``, each sharing one fixed factor; and the factors ``[n]``."""
    k = len(sizes)
    ks = torch.as_tensor(varying)[torch.randint(len(varying), (n,), generator=generator)]
    classes = sample_classes(n * batch_size, sizes, generator).reshape(n, batch_size, k)
    size_of = torch.as_tensor(sizes, dtype=torch.float64)[ks]
    value = (torch.rand(n, generator=generator, dtype=torch.float64) * size_of).long()
    classes[torch.arange(n), :, ks] = value[:, None]
    return classes, ks


def global_spread(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global mean ``[D]``, std ``[D]`` (ddof = 1, code units) and constant mask ``[D]`` of codes ``[N, D]``.

    A dimension is constant when ``max - min <= CONSTANT_RTOL * max|z|`` (zero range up to
    rounding, at any offset); its std is reported as exactly 0. The std is computed in float64
    after subtracting the mean, so an offset such as ``1000 + 50 * v`` does not change it.
    """
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    constant = (hi - lo) <= CONSTANT_RTOL * np.maximum(np.abs(lo), np.abs(hi))
    mean = codes.mean(axis=0)
    std = np.sqrt(((codes - mean) ** 2).sum(axis=0) / (codes.shape[0] - 1))
    std[constant] = 0.0
    return mean, std, constant


def active_dimensions(std: np.ndarray, constant: np.ndarray, prune_threshold: float,
                      min_std: float) -> np.ndarray:
    """``[D]`` bool: not constant, ``std >= prune_threshold * max std`` and ``std >= min_std``."""
    active = ~constant
    if active.any():
        active &= std >= prune_threshold * std[active].max()
    return active & (std >= min_std)


def batch_variances(z: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Unbiased variance ``[n, D]`` of the normalised codes ``(z - mean) / std`` of each batch.

    ``z`` is ``[n, batch_size, D]``. Each batch is shifted by its first sample before the
    variance is taken, so a dimension that is constant within a batch gets exactly 0 (no
    rounding residue that would break ties at random).
    """
    u = (z - mean) / std
    return (u - u[:, :1]).var(axis=1, ddof=1)


def factor_vae_score(
    codes_of: Callable,
    factor_sizes: Sequence[int],
    *,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    batch_size: int = 64,
    n_variance: int = 10_000,
    prune_threshold: float = 0.05,
    min_std: float = 0.0,
    seed: int = 0,
    generator: torch.Generator | None = None,
    factor_names: Sequence[str] | None = None,
) -> FactorVAEResult:
    """FactorVAE score of the representation ``codes_of`` (Kim & Mnih 2018).

    Args:
        codes_of: ``classes`` (LongTensor ``[N, K]`` of class indices) -> codes ``[N, D]``
            (NumPy or torch). It is called in chunks of at most 65,536 rows.
        factor_sizes: number of values of each of the K factors.
        n_train, n_eval: number of votes (batches) to train and evaluate the classifier.
        batch_size: samples per vote (64 in Kim & Mnih and disentanglement_lib).
        n_variance: samples used to estimate the global standard deviations.
        prune_threshold: relative std below which a dimension counts as collapsed: d is pruned
            when ``s_d < prune_threshold * max s`` (default 0.05; see the module docstring;
            0 keeps every dimension that is not constant).
        min_std: absolute std (code units) below which a dimension is pruned, as
            disentanglement_lib's ``prune_dims.threshold`` (0.05 in its studies); default 0.
        seed, generator: randomness (``generator`` wins when given).
        factor_names: optional names used in the notes.

    Returns:
        :class:`FactorVAEResult`; ``score`` is the evaluation accuracy (chance ≈ 1/K).

    Invariances (same seed): permuting the code dimensions, and shifting and rescaling all of
    them by one common non-zero factor, leave the score unchanged. Shifting and rescaling each
    dimension by its own factor (``a_d * z_d + b_d``, any offset ``b_d``) leaves the normalised
    variances unchanged too, up to rounding; it changes which dimensions are pruned only when
    the scales differ by more than ``1 / prune_threshold`` (never with ``prune_threshold=0``
    and ``min_std=0``). A constant dimension is dropped whatever its value.

    Raises:
        ValueError: no factor with more than one value, batch_size < 2, counts < 1 or not
            integers (2.5 is refused, never truncated), thresholds out of range, or codes_of
            returning the wrong shape or NaN.
    """
    sizes = check_factor_sizes(factor_sizes)
    n_train = _check_count(n_train, "n_train", 1)
    n_eval = _check_count(n_eval, "n_eval", 1)
    batch_size = _check_count(batch_size, "batch_size", 2)
    n_variance = _check_count(n_variance, "n_variance", 2)
    if not 0 <= prune_threshold < 1:
        raise ValueError(f"prune_threshold must be a number in [0, 1), got {prune_threshold!r}")
    if not 0 <= min_std < math.inf:
        raise ValueError(f"min_std must be a finite number >= 0 (code units), got {min_std!r}")
    varying, skipped, notes = varying_factors(sizes, factor_names)
    if not varying:
        raise ValueError(f"every factor has a single value (factor_sizes={sizes}); nothing to fix")
    gen = make_generator(generator, seed)

    codes = call_codes_of(codes_of, sample_classes(n_variance, sizes, gen))
    mean, std, constant = global_spread(codes)
    d = std.size
    active = active_dimensions(std, constant, prune_threshold, min_std)
    if not active.any():
        what = "constant" if constant.all() else "constant or pruned"
        notes.append(f"every code dimension is {what}: score 0")
        return FactorVAEResult(0.0, 0.0, np.zeros((d, len(sizes)), dtype=np.int64), active, std,
                               tuple(skipped), tuple(notes))
    if constant.any():
        notes.append(f"dropped constant dimensions {np.flatnonzero(constant).tolist()}")
    pruned = ~active & ~constant
    if pruned.any():
        notes.append(f"pruned collapsed dimensions {np.flatnonzero(pruned).tolist()} "
                     f"(std < {prune_threshold} x the largest, or < min_std={min_std})")
    safe_std = np.where(active, std, 1.0)

    def votes(n: int) -> np.ndarray:
        classes, ks = fixed_factor_classes(n, batch_size, sizes, varying, gen)
        z = call_codes_of(codes_of, classes.reshape(n * batch_size, len(sizes)))
        if z.shape[1] != d:
            raise ValueError(f"codes_of returned {z.shape[1]} dimensions, earlier {d}")
        var = batch_variances(z.reshape(n, batch_size, d), mean, safe_std)
        var[:, ~active] = np.inf
        dims = var.argmin(axis=1)
        return np.bincount(dims * len(sizes) + ks.numpy(), minlength=d * len(sizes)).reshape(d, len(sizes))

    train_votes = votes(n_train)
    eval_votes = votes(n_eval)
    classifier = train_votes.argmax(axis=1)  # [D] factor predicted for each dimension
    train_acc = train_votes.max(axis=1).sum() / n_train
    eval_acc = eval_votes[np.arange(d), classifier].sum() / n_eval
    return FactorVAEResult(float(eval_acc), float(train_acc), train_votes, active, std,
                           tuple(skipped), tuple(notes))
