"""Separated Attribute Predictability, SAP (Kumar et al. 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", §3).

A ``[D, K]`` score matrix ``S_dk`` says how well code dimension d *alone* predicts factor k; for
each factor, SAP takes the gap between the best and the second-best dimension, and averages the
gaps over factors:  ``SAP = 1/K sum_k (S_(1)k - S_(2)k)``.

Two variants (``method``), stated in the result:

- ``"discrete"`` (default; factors are class indices): a classifier that thresholds the single
  code ``z_d`` - a decision tree with at most ``|V_k|`` leaves, i.e. ``|V_k| - 1``
  thresholds, so an ordinal factor encoded monotonically is fully predictable - trained on one
  part of the data; ``S_dk`` is its *balanced accuracy adjusted for chance* on the held-out part,
  ``(bacc - 1/C) / (1 - 1/C)`` with C the number of classes in the test data, so chance is 0
  and perfect is 1. Kumar et al. and disentanglement_lib use plain balanced accuracy, whose
  chance level is 1/C: our gap of a factor is theirs times ``C / (C - 1)`` (x2 for a binary
  factor, x1.5 for dSprites' three shapes, x1.03 for 32 positions), so the score is *not* on
  the scale of published SAP values. disentanglement_lib also uses a linear SVM on ``z_d``,
  which can cut a line only into classes ordered along it; with more than three classes it
  usually misses the middle ones of an ordinal factor (the tree does not).
- ``"r2"`` (Kumar et al.'s continuous-factor version): ``S_dk = corr(z_d, v_k)^2``, the R² of a
  linear regression of the factor value on the single code; uses all the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_pair, check_seed, compact_labels
from .dci import train_test

METHODS = ("discrete", "r2")


@dataclass(frozen=True)
class SAPResult:
    """Result of :func:`sap`: ``score``, ``per_factor`` gaps ``[K]`` (``nan`` if skipped), the
    ``matrix`` ``[D, K]`` of single-code predictabilities, ``method``, ``skipped``, ``notes``."""

    score: float
    per_factor: np.ndarray
    matrix: np.ndarray
    method: str
    skipped: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def adjusted_balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true``, rescaled so that chance
    (1/C) is 0 and perfect is 1; 1.0 when ``y_true`` holds a single class that is always hit."""
    classes = np.unique(y_true)
    recall = np.array([(y_pred[y_true == c] == c).mean() for c in classes])
    bacc = recall.mean()
    if classes.size == 1:
        return float(bacc)
    chance = 1.0 / classes.size
    return float((bacc - chance) / (1.0 - chance))


def _r2_matrix(z: np.ndarray, f: np.ndarray) -> np.ndarray:
    zc = z - z.mean(0)
    fc = f - f.mean(0)
    cov = zc.T @ fc / z.shape[0]  # [D, K]
    var = np.outer((zc**2).mean(0), (fc**2).mean(0))
    out = np.zeros_like(cov)
    ok = var > 0
    out[ok] = cov[ok] ** 2 / var[ok]
    return out


def sap(
    codes,
    factors,
    codes_test=None,
    factors_test=None,
    *,
    method: str = "discrete",
    test_fraction: float = 0.25,
    seed: int = 0,
    factor_names: Sequence[str] | None = None,
) -> SAPResult:
    """SAP score of ``codes`` ``[N, D]`` for integer ``factors`` ``[N, K]`` (Kumar et al.).

    Args:
        codes, factors: the representation and factors (batch first).
        codes_test, factors_test: held-out data for ``"discrete"``; when omitted,
            ``test_fraction`` of the samples is held out at random (``seed``).
        method: ``"discrete"`` (threshold classifier, chance-adjusted balanced accuracy) or
            ``"r2"`` (squared correlation; ignores the test arguments).
        seed: seeds the split and the trees.
        factor_names: optional names used in the notes.

    Returns:
        :class:`SAPResult`.

    Invariances: ``"discrete"`` depends only on the order of each code's values (any strictly
    monotone map per dimension, and permutations, leave it unchanged up to ties); ``"r2"`` is
    invariant to affine maps per dimension and permutations.

    Raises:
        ValueError: D < 2 (there is no second-best code), bad shapes, NaN, too few samples
            (10 training and 2 test samples for ``"discrete"``), a seed that is not an integer.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    seed = check_seed(seed)
    if method == "r2":
        z, f = check_pair(codes, factors, min_samples=3)
        zt = ft = None
    else:
        z, f, zt, ft = train_test(codes, factors, codes_test, factors_test, test_fraction, seed, 10)
    d, k = z.shape[1], f.shape[1]
    if d < 2:
        raise ValueError(f"SAP is a gap between the two most predictive codes: it needs D >= 2, got D={d}")
    matrix = np.full((d, k), np.nan)
    skipped, notes = [], []
    for i in range(k):
        if compact_labels(f[:, i])[1] < 2:
            skipped.append(i)
            label = f"factor {i}" + (f" ({factor_names[i]!r})" if factor_names is not None else "")
            notes.append(f"{label} skipped: it takes a single value")
    scored = [i for i in range(k) if i not in skipped]
    if not scored:
        raise ValueError("every factor takes a single value; SAP is undefined")
    if method == "r2":
        matrix[:, scored] = _r2_matrix(z, f[:, scored].astype(np.float64))
    else:
        from sklearn.tree import DecisionTreeClassifier

        for i in scored:
            n_values = compact_labels(f[:, i])[1]
            for j in range(d):
                tree = DecisionTreeClassifier(max_leaf_nodes=max(2, n_values), random_state=seed)
                tree.fit(z[:, j : j + 1], f[:, i])
                matrix[j, i] = adjusted_balanced_accuracy(ft[:, i], tree.predict(zt[:, j : j + 1]))
    top2 = -np.sort(-matrix[:, scored], axis=0)[:2]
    per_factor = np.full(k, np.nan)
    per_factor[scored] = top2[0] - top2[1]
    notes.append(f"SAP variant: {method}")
    return SAPResult(float(per_factor[scored].mean()), per_factor, matrix, method,
                     tuple(skipped), tuple(notes))
