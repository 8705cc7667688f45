"""Mutual Information Gap, the discrete (histogram) estimator of Locatello et al. (2019).

Source paper 003, eq. 7 (Chen et al. 2018)::

    MIG = 1/K  sum_k  ( I(z_{j(k)}; v_k) - max_{j != j(k)} I(z_j; v_k) ) / H(v_k)

where ``j(k) = argmax_j I(z_j; v_k)`` and ``H(v_k) = E_{p(v_k)}[-log p(v_k)]`` (eq. 6).

Locatello et al. estimate the mutual information with a histogram: each code dimension is cut
into ``num_bins`` (20) equal-width bins between its minimum and maximum, and ``I(z_j; v_k)`` is
the plug-in mutual information of the empirical joint histogram of (bin of z_j, v_k). All
quantities are in nats. Arrays are batch-first (``codes`` ``[N, D]``, ``factors`` ``[N, K]``);
disentanglement_lib's ``_compute_mig(mus, ys)`` takes them transposed, ``[D, N]`` and ``[K, N]``.

Memory is O(N) per column: the joint histogram of one (code, factor) pair is a single
``np.bincount`` of ``bin * V_k + value``, so all 737,280 dSprites images take well under a second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_codes, check_count, check_factors, check_pair, compact_labels


@dataclass(frozen=True)
class MIGResult:
    """Result of :func:`mig` (and :func:`course_lib.metrics.mig_sampled`).

    Attributes:
        score: MIG, the mean of ``per_factor`` over the factors that were not skipped (in [0, 1]).
        per_factor: ``[K]`` normalised gap per factor; ``nan`` for a skipped factor.
        mutual_info: ``[D, K]`` matrix ``I(z_j; v_k)`` in nats.
        factor_entropy: ``[K]`` entropies ``H(v_k)`` in nats.
        skipped: indices of the factors left out of the mean (a factor with a single value has
            ``H(v_k) = 0`` and no gap to normalise).
        factor_names: names of the K factors when they were given, else ``None``.
        notes: human-readable remarks (which factors were skipped and why).
        estimator: which estimator and protocol made the number (e.g. ``"discrete, 20 bins"``,
            ``"sampled (Chen et al.), chen2018: MI clamped at 0, shape left out"``), so that a
            printed score can say what it is comparable with.
    """

    score: float
    per_factor: np.ndarray
    mutual_info: np.ndarray
    factor_entropy: np.ndarray
    skipped: tuple[int, ...] = ()
    factor_names: tuple[str, ...] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    estimator: str = ""

    def __str__(self) -> str:  # pragma: no cover - formatting only
        names = self.factor_names or tuple(f"v{k}" for k in range(len(self.per_factor)))
        parts = ", ".join(
            f"{n}={p:.3f}" if np.isfinite(p) else f"{n}=skipped" for n, p in zip(names, self.per_factor)
        )
        text = f"MIG {self.score:.4f} ({parts})"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def discretize(codes, num_bins: int = 20) -> np.ndarray:
    """Cut each code dimension into ``num_bins`` equal-width bins between its min and max.

    Args:
        codes: ``[N, D]`` float codes (NumPy or torch).
        num_bins: number of bins per dimension (Locatello et al. use 20).

    Returns:
        ``[N, D]`` int64 bin indices in ``0 .. num_bins-1``. Bin ``b`` of dimension ``j`` is
        ``[lo + b*w, lo + (b+1)*w)`` with ``w = (max - min) / num_bins``; the maximum goes to the
        last bin (the same convention as ``np.histogram``). A constant dimension falls in bin 0.

    The bin of a value is computed as ``floor((z - min) * num_bins / (max - min))``, so integer
    codes that sit exactly on a bin edge are placed without rounding error.
    """
    z = check_codes(codes, min_samples=1)
    num_bins = _check_num_bins(num_bins)
    out = np.empty(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        out[:, j] = _bin_column(z[:, j], num_bins)
    return out


def _check_num_bins(num_bins) -> int:
    return check_count(num_bins, "num_bins", 2)


def _bin_column(col: np.ndarray, num_bins: int) -> np.ndarray:
    lo = col.min()
    with np.errstate(over="ignore", invalid="ignore"):
        width = col.max() - lo
        scaled = (col - lo) * num_bins / width if np.isfinite(width) and width > 0 else None
    if width == 0:
        return np.zeros(col.shape, dtype=np.int64)
    if scaled is None or not np.isfinite(scaled).all():
        raise ValueError(f"codes span {col.min():g} to {col.max():g}: too large a range to bin in float64 "
                         "(rescale the codes; MIG does not change under a positive scaling)")
    b = np.floor(scaled).astype(np.int64)
    np.clip(b, 0, num_bins - 1, out=b)
    return b


def _entropy_from_counts(counts: np.ndarray) -> float:
    """Plug-in entropy in nats of a histogram of counts."""
    c = counts[counts > 0].astype(np.float64)
    n = c.sum()
    return float(-(c / n * np.log(c / n)).sum())


def _mi_from_joint(joint: np.ndarray) -> float:
    """Plug-in mutual information in nats of a 2-D joint histogram of counts.

    ``I = sum_ab p(a,b) log( p(a,b) / (p(a) p(b)) )`` with ``p = counts / N``.
    """
    joint = joint.astype(np.float64)
    n = joint.sum()
    rows = joint.sum(axis=1, keepdims=True)
    cols = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    outer = (rows * cols)[nz]
    return float(max((joint[nz] * np.log(joint[nz] * n / outer)).sum() / n, 0.0))


def factor_entropy(factors) -> np.ndarray:
    """Empirical entropy ``H(v_k)`` in nats of each factor column (source paper 003, eq. 6).

    Args:
        factors: ``[N, K]`` integer factors.

    Returns:
        ``[K]`` float64 entropies; ``log V_k`` for a factor uniform over ``V_k`` values.
    """
    f = check_factors(factors, min_samples=1)
    out = np.empty(f.shape[1])
    for k in range(f.shape[1]):
        labels, nvals = compact_labels(f[:, k])
        out[k] = _entropy_from_counts(np.bincount(labels, minlength=nvals))
    return out


def mutual_info_matrix(codes, factors, num_bins: int = 20) -> np.ndarray:
    """Histogram mutual information ``I(z_j; v_k)`` in nats between every code and factor.

    Args:
        codes: ``[N, D]`` float codes; each dimension is discretised with :func:`discretize`.
        factors: ``[N, K]`` integer factors.
        num_bins: bins per code dimension.

    Returns:
        ``[D, K]`` float64 matrix of plug-in mutual informations (nats, >= 0). It equals
        ``sklearn.metrics.mutual_info_score(discretize(codes)[:, j], factors[:, k])``.
    """
    z, f = check_pair(codes, factors)
    return _mutual_info_matrix(z, f, _check_num_bins(num_bins))


def _mutual_info_matrix(z: np.ndarray, f: np.ndarray, num_bins: int) -> np.ndarray:
    labels = [compact_labels(f[:, k]) for k in range(f.shape[1])]
    mi = np.zeros((z.shape[1], f.shape[1]))
    for j in range(z.shape[1]):
        b = _bin_column(z[:, j], num_bins)
        for k, (lab, nvals) in enumerate(labels):
            if nvals < 2:
                continue  # I(z; v) = 0 when v is constant
            joint = np.bincount(b * nvals + lab, minlength=num_bins * nvals)
            mi[j, k] = _mi_from_joint(joint.reshape(num_bins, nvals))
    return mi


def gap_scores(
    mutual_info: np.ndarray, entropies: np.ndarray, factor_names: Sequence[str] | None = None
) -> MIGResult:
    """Turn a ``[D, K]`` mutual-information matrix and ``[K]`` entropies into a :class:`MIGResult`.

    Per factor: (largest - second largest MI over codes) / H(v_k) (source paper 003, eq. 7). Factors with
    ``H(v_k) = 0`` (a single value) are skipped and named in ``notes``.
    """
    mutual_info = np.asarray(mutual_info, dtype=np.float64)
    entropies = np.asarray(entropies, dtype=np.float64)
    d, k = mutual_info.shape
    if d < 2:
        raise ValueError(
            f"MIG needs at least 2 code dimensions (it is the gap between the two most "
            f"informative ones); got codes with D={d}"
        )
    names = tuple(str(n) for n in factor_names) if factor_names is not None else None
    if names is not None and len(names) != k:
        raise ValueError(f"factor_names has {len(names)} names but there are {k} factors")
    top2 = -np.sort(-mutual_info, axis=0)[:2]  # [2, K], largest first
    per_factor = np.full(k, np.nan)
    skipped = []
    notes = []
    for i in range(k):
        if entropies[i] <= 1e-12:
            skipped.append(i)
            label = f"factor {i}" + (f" ({names[i]!r})" if names else "")
            notes.append(f"{label} skipped: it takes a single value, so H(v_k) = 0")
            continue
        per_factor[i] = (top2[0, i] - top2[1, i]) / entropies[i]
    if len(skipped) == k:
        raise ValueError(
            "every factor takes a single value in these samples, so MIG is undefined; "
            "pass factors that vary (e.g. a random sample of the whole data set)"
        )
    score = float(np.nanmean(per_factor))
    return MIGResult(
        score=score,
        per_factor=per_factor,
        mutual_info=mutual_info,
        factor_entropy=entropies,
        skipped=tuple(skipped),
        factor_names=names,
        notes=tuple(notes),
    )


def mig(codes, factors, num_bins: int = 20, factor_names: Sequence[str] | None = None) -> MIGResult:
    """Discrete Mutual Information Gap (Locatello et al. 2019; source paper 003, eqs. 5-7).

    Args:
        codes: ``[N, D]`` representation (e.g. posterior means), float, NumPy or torch. Batch
            first: disentanglement_lib's ``[D, N]`` arrays must be transposed.
        factors: ``[N, K]`` ground-truth factors as integer class indices.
        num_bins: equal-width bins per code dimension (20 in Locatello et al.).
        factor_names: optional K names, used in ``notes``.

    Returns:
        :class:`MIGResult` with ``score`` (mean normalised gap over factors with more than one
        value), ``per_factor`` ``[K]``, ``mutual_info`` ``[D, K]`` (nats), ``factor_entropy``
        ``[K]`` (empirical, nats) and ``skipped`` (factors with a single value).

    Invariances: the bins depend on each dimension's min and max only, so permuting the code
    dimensions, or rescaling them by any affine map ``a*z + b`` (``a != 0``), leaves the score
    unchanged (exactly for codes with no value on a bin edge; up to float rounding of edges
    otherwise). A non-affine monotone map moves the bin edges and changes the score somewhat.

    Why the ground-truth factors themselves score below 1: a factor with more than
    ``num_bins`` values (dSprites' orientation has 40, position 32) shares bins, so the binned
    code keeps only ``H(bin) < H(v_k)`` nats; and with finite N, the plug-in estimate of the
    second-largest MI is slightly positive.

    Raises:
        ValueError: shapes differ, NaN in codes, non-integer factors, D < 2, N < 2, or every
            factor constant.
    """
    z, f = check_pair(codes, factors)
    nb = _check_num_bins(num_bins)
    mi = _mutual_info_matrix(z, f, nb)
    result = gap_scores(mi, factor_entropy(f), factor_names)
    return dataclasses.replace(result, estimator=f"discrete, {nb} bins, N = {len(f):,}")
