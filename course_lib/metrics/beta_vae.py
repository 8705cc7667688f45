"""β-VAE disentanglement score (Higgins et al. 2017, "β-VAE", §3 and Appendix A.4).

Each training point is built from ``batch_size`` *pairs* of samples that share the value of one
randomly chosen factor k (all other factors drawn independently). Its feature is the mean
absolute difference of the pairs' codes, ``mean_b |z(x1_b) - z(x2_b)|`` (a ``[D]`` vector), and
its label is k. A linear classifier (scikit-learn ``LogisticRegression``) learns to predict k
from the feature; the score is its accuracy on fresh evaluation points.

Like :func:`course_lib.metrics.factor_vae_score` it takes a data source,
``codes_of(classes [N, K] LongTensor) -> codes [N, D]`` and ``factor_sizes``.

Choice stated: the features are standardised (scikit-learn ``StandardScaler``) before the
logistic regression, so the score does not depend on the units of each code dimension;
disentanglement_lib feeds the raw features to ``LogisticRegression``.

Chance level is ``1 / K`` (not 0). The metric is known to be lenient: a rotation that mixes two
factors of the same size makes them indistinguishable (≈ 50 % on those two), but a
representation where every factor is linearly readable from the feature scores 1 even when it
is not axis-aligned in the sense of MIG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import call_codes_of, check_factor_sizes, make_generator, sample_classes
from .factor_vae import _check_count, varying_factors


@dataclass(frozen=True)
class BetaVAEResult:
    """Result of :func:`beta_vae_score`: ``score`` (evaluation accuracy), ``train_accuracy``,
    ``skipped`` factors (a single value) and ``notes``."""

    score: float
    train_accuracy: float
    skipped: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def pair_features(codes_of: Callable, sizes: tuple[int, ...], varying: Sequence[int], n: int,
                  batch_size: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` features ``[n, D]`` (mean |z1 - z2| over ``batch_size`` pairs) and labels ``[n]``."""
    k = len(sizes)
    ks = torch.as_tensor(varying)[torch.randint(len(varying), (n,), generator=generator)]
    first = sample_classes(n * batch_size, sizes, generator).reshape(n, batch_size, k)
    second = sample_classes(n * batch_size, sizes, generator).reshape(n, batch_size, k)
    rows = torch.arange(n)
    second[rows, :, ks] = first[rows, :, ks]  # the pair shares factor k
    z1 = call_codes_of(codes_of, first.reshape(-1, k))
    z2 = call_codes_of(codes_of, second.reshape(-1, k))
    if z1.shape != z2.shape:
        raise ValueError(f"codes_of returned shapes {z1.shape} and {z2.shape} for equal inputs")
    feats = np.abs(z1 - z2).reshape(n, batch_size, -1).mean(axis=1)
    return feats, ks.numpy()


def beta_vae_score(
    codes_of: Callable,
    factor_sizes: Sequence[int],
    *,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    batch_size: int = 64,
    seed: int = 0,
    generator: torch.Generator | None = None,
    factor_names: Sequence[str] | None = None,
    max_iter: int = 1000,
) -> BetaVAEResult:
    """β-VAE score of the representation ``codes_of`` (Higgins et al. 2017).

    Args:
        codes_of: ``classes`` (LongTensor ``[N, K]``) -> codes ``[N, D]``.
        factor_sizes: number of values of each of the K factors.
        n_train, n_eval: number of points (each from ``batch_size`` pairs) to train and evaluate.
        batch_size: pairs per point (64 in disentanglement_lib).
        seed, generator: randomness (``generator`` wins when given).
        factor_names: optional names used in the notes.
        max_iter: iterations of the logistic regression's solver.

    Returns:
        :class:`BetaVAEResult`; ``score`` is the evaluation accuracy (chance = 1/K).

    Raises:
        ValueError: fewer than 2 factors with more than one value, counts too small, or the
            training points cover a single label.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sizes = check_factor_sizes(factor_sizes)
    n_train = _check_count(n_train, "n_train", 2)
    n_eval = _check_count(n_eval, "n_eval", 1)
    batch_size = _check_count(batch_size, "batch_size", 1)
    max_iter = _check_count(max_iter, "max_iter", 1)
    varying, skipped, notes = varying_factors(sizes, factor_names)
    if len(varying) < 2:
        raise ValueError(
            f"the β-VAE score classifies which factor was fixed, so it needs at least 2 factors "
            f"with more than one value; factor_sizes={sizes}"
        )
    gen = make_generator(generator, seed)
    x_train, y_train = pair_features(codes_of, sizes, varying, n_train, batch_size, gen)
    x_eval, y_eval = pair_features(codes_of, sizes, varying, n_eval, batch_size, gen)
    if np.unique(y_train).size < 2:
        raise ValueError(f"n_train={n_train} points drew a single factor; use more training points")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    model.fit(x_train, y_train)
    train_acc = float(model.score(x_train, y_train))
    eval_acc = float(model.score(x_eval, y_eval))
    return BetaVAEResult(eval_acc, train_acc, tuple(skipped), tuple(notes))
