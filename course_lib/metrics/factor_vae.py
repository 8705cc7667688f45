"""FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", §4).

The metric must *generate* data: each training point is a batch of ``batch_size`` samples that
share one fixed value of one randomly chosen factor k. So it is a function of a data source,
not of a fixed sample: ``codes_of(classes [N, K] LongTensor) -> codes [N, D]`` plus
``factor_sizes``. Wrap a model and a data set with
:func:`course_lib.metrics.codes_of_model`; synthetic representations are plain functions of the
classes (:mod:`course_lib.metrics.synthetic`).

Procedure (following Kim & Mnih and disentanglement_lib):

1. Estimate each code dimension's global standard deviation ``s_d`` on ``n_variance`` random
   samples, and *prune* collapsed dimensions: keep dimension d when
   ``s_d >= prune_threshold * max_d s_d`` (a relative threshold, so that rescaling the whole
   representation changes nothing; disentanglement_lib's ``prune_dims`` uses an absolute
   threshold, 0 by default).
2. For each of ``n_train`` (then ``n_eval``) points: pick a factor k uniformly among the factors
   with more than one value, fix it to a random value, draw ``batch_size`` samples, normalise
   their codes by ``s``, and take ``d* = argmin_d Var(z_d / s_d)`` over the active dimensions
   (unbiased variance, ddof = 1). The point is the vote ``(d*, k)``.
3. The majority-vote classifier maps each dimension d to the factor that won most training
   votes in d. The score is its accuracy on the evaluation votes.

Chance level is about ``1 / K`` (not 0): every batch votes for *some* dimension.
Cost: ``(n_train + n_eval) * batch_size + n_variance`` codes (with the defaults of
disentanglement_lib, 970,000: use smaller numbers on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ._checks import call_codes_of, check_factor_sizes, make_generator, sample_classes


@dataclass(frozen=True)
class FactorVAEResult:
    """Result of :func:`factor_vae_score`.

    Attributes:
        score: evaluation accuracy of the majority-vote classifier, in [0, 1].
        train_accuracy: its accuracy on the training votes.
        votes: ``[D, K]`` training votes (how often dimension d had the least variance when
            factor k was fixed).
        active: ``[D]`` bool, dimensions kept after pruning collapsed ones.
        global_std: ``[D]`` global standard deviation of each code dimension.
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
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


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


def factor_vae_score(
    codes_of: Callable,
    factor_sizes: Sequence[int],
    *,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    batch_size: int = 64,
    n_variance: int = 10_000,
    prune_threshold: float = 0.05,
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
        prune_threshold: relative std below which a dimension counts as collapsed.
        seed, generator: randomness (``generator`` wins when given).
        factor_names: optional names used in the notes.

    Returns:
        :class:`FactorVAEResult`; ``score`` is the evaluation accuracy (chance ≈ 1/K).

    Invariances (same seed): permuting the code dimensions, and shifting and rescaling all of
    them by one common non-zero factor, leave the score unchanged. Rescaling each dimension by
    its own factor leaves the normalised variances unchanged too, but may change which
    dimensions the relative pruning threshold drops (with ``prune_threshold=0`` it cannot).

    Raises:
        ValueError: no factor with more than one value, batch_size < 2, counts < 1, or codes_of
            returning the wrong shape or NaN.
    """
    sizes = check_factor_sizes(factor_sizes)
    n_train = _check_count(n_train, "n_train", 1)
    n_eval = _check_count(n_eval, "n_eval", 1)
    batch_size = _check_count(batch_size, "batch_size", 2)
    n_variance = _check_count(n_variance, "n_variance", 2)
    if not 0 <= prune_threshold < 1:
        raise ValueError(f"prune_threshold must be in [0, 1), got {prune_threshold}")
    varying, skipped, notes = varying_factors(sizes, factor_names)
    if not varying:
        raise ValueError(f"every factor has a single value (factor_sizes={sizes}); nothing to fix")
    gen = make_generator(generator, seed)

    codes = call_codes_of(codes_of, sample_classes(n_variance, sizes, gen))
    std = codes.std(axis=0, ddof=1)
    d = std.size
    active = std >= prune_threshold * std.max()
    active &= std > 0
    if not active.any():
        notes.append("every code dimension is constant: score 0")
        return FactorVAEResult(0.0, 0.0, np.zeros((d, len(sizes)), dtype=np.int64), active, std,
                               tuple(skipped), tuple(notes))
    if (~active).any():
        notes.append(f"pruned collapsed dimensions {np.flatnonzero(~active).tolist()} "
                     f"(std < {prune_threshold} x the largest)")
    safe_std = np.where(active, std, 1.0)

    def votes(n: int) -> np.ndarray:
        classes, ks = fixed_factor_classes(n, batch_size, sizes, varying, gen)
        z = call_codes_of(codes_of, classes.reshape(n * batch_size, len(sizes)))
        if z.shape[1] != d:
            raise ValueError(f"codes_of returned {z.shape[1]} dimensions, earlier {d}")
        var = (z / safe_std).reshape(n, batch_size, d).var(axis=1, ddof=1)
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
