"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018).

One predictor per factor k learns ``v_k`` from all codes; its importances give column k of an
importance matrix ``R`` (``[D, K]``, non-negative). Then, with ``P_dk = R_dk / sum_k R_dk``:

- disentanglement of code d: ``D_d = 1 - H_K(P_d.)`` (entropy with log base K, the number of
  factors scored); overall ``D = sum_d rho_d D_d`` with ``rho_d = sum_k R_dk / sum_dk R_dk``;
- completeness of factor k: ``C_k = 1 - H_D(P~_.k)`` with ``P~_dk = R_dk / sum_d R_dk`` (log base
  D); overall ``C = sum_k w_k C_k`` with ``w_k = sum_d R_dk / sum_dk R_dk`` (as disentanglement_lib;
  for the tree methods every column sums to 1, so this is the plain mean);
- informativeness: how well the predictors do on held-out data.

Predictors (``method``), stated in the result:

- ``"gbt"`` (default, as disentanglement_lib): scikit-learn ``GradientBoostingClassifier``;
  importance = impurity-based ``feature_importances_``; informativeness = test accuracy.
  Slow for factors with many values (one tree per class and stage): reduce ``n_estimators``
  or the number of samples on a CPU.
- ``"random_forest"``: ``RandomForestClassifier(max_features=None)``, the fast alternative (trees
  fit in one pass for all classes); same importance and informativeness definitions.
- ``"lasso"``: Eastwood & Williams' linear variant: ``Lasso`` regression of the standardised
  factor value on standardised codes (factors treated as ordinal numbers); importance = ``|w|``;
  informativeness = test R² (1 - normalised mean squared error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_count, check_pair, check_seed, compact_labels

METHODS = ("gbt", "random_forest", "lasso")


@dataclass(frozen=True)
class DCIResult:
    """Result of :func:`dci`.

    Attributes:
        disentanglement, completeness, informativeness: the three DCI scores (see the module
            docstring; informativeness is test accuracy for trees, test R² for lasso).
        importance: ``[D, K]`` importance matrix (``nan`` columns for skipped factors).
        informativeness_train: the same measure on the training data.
        per_code: ``[D]`` disentanglement of each code dimension.
        per_factor_completeness, per_factor_informativeness: ``[K]`` (``nan`` when skipped).
        method: the predictor used.
        skipped, notes: factors with a single value in the training data, and remarks.
    """

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray
    informativeness_train: float
    per_code: np.ndarray
    per_factor_completeness: np.ndarray
    per_factor_informativeness: np.ndarray
    method: str
    skipped: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _normalised_entropy(p: np.ndarray, axis: int, base: int) -> np.ndarray:
    """Entropy of the distributions along ``axis`` with log base ``base`` (0 when base == 1)."""
    if base <= 1:
        return np.zeros(np.delete(p.shape, axis))
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log(safe)).sum(axis=axis) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Disentanglement, completeness, per-code D_d ``[D]`` and per-factor C_k ``[K]`` of a
    non-negative ``[D, K]`` importance matrix (Eastwood & Williams, as in the module docstring)."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    d, k = r.shape
    total = r.sum()
    if total <= 0:
        return 0.0, 0.0, np.zeros(d), np.zeros(k)
    code_sum = r.sum(axis=1)
    p_code = r / np.where(code_sum > 0, code_sum, 1.0)[:, None]
    per_code = 1.0 - _normalised_entropy(p_code, axis=1, base=k)
    per_code[code_sum <= 0] = 0.0
    disent = float((code_sum / total * per_code).sum())
    factor_sum = r.sum(axis=0)
    p_factor = r / np.where(factor_sum > 0, factor_sum, 1.0)[None, :]
    per_factor = 1.0 - _normalised_entropy(p_factor, axis=0, base=d)
    per_factor[factor_sum <= 0] = 0.0
    complete = float((factor_sum / total * per_factor).sum())
    return disent, complete, per_code, per_factor


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return perm[n_test:], perm[:n_test]


def train_test(codes, factors, codes_test, factors_test, test_fraction: float, seed: int,
               min_train: int, min_test: int = 2):
    """Validated (train codes, train factors, test codes, test factors): the given test set, or a
    random split of ``codes`` with ``test_fraction`` held out.

    Raises ValueError when there are fewer than ``min_train`` training rows or fewer than
    ``min_test`` test rows (one held-out sample cannot measure informativeness: an R² needs
    two, and an accuracy on one sample is 0 or 1).
    """
    z, f = check_pair(codes, factors, min_samples=2)
    if (codes_test is None) != (factors_test is None):
        raise ValueError("pass both codes_test and factors_test, or neither (then a split is used)")
    if codes_test is None:
        tr, te = _split(z.shape[0], test_fraction, seed)
        z, f, zt, ft = z[tr], f[tr], z[te], f[te]
        if zt.shape[0] < min_test:
            raise ValueError(
                f"the held-out split has {zt.shape[0]} sample(s) (test_fraction={test_fraction} of "
                f"{z.shape[0] + zt.shape[0]}); this metric needs at least {min_test} test samples: "
                "pass more samples, a larger test_fraction, or codes_test and factors_test"
            )
    else:
        zt, ft = check_pair(codes_test, factors_test, min_samples=1)
        if zt.shape[1] != z.shape[1] or ft.shape[1] != f.shape[1]:
            raise ValueError(
                f"test data must have the same D and K as the training data: codes {z.shape} vs "
                f"{zt.shape}, factors {f.shape} vs {ft.shape}"
            )
        if zt.shape[0] < min_test:
            raise ValueError(
                f"codes_test has {zt.shape[0]} row(s); this metric needs at least {min_test} test "
                f"samples (codes_test [N_test, D] and factors_test [N_test, K] with N_test >= {min_test})"
            )
    if z.shape[0] < min_train:
        raise ValueError(
            f"only {z.shape[0]} training samples; this metric needs at least {min_train} "
            "(pass more samples)"
        )
    return z, f, zt, ft


def dci(
    codes,
    factors,
    codes_test=None,
    factors_test=None,
    *,
    method: str = "gbt",
    test_fraction: float = 0.25,
    n_estimators: int | None = None,
    alpha: float = 0.01,
    seed: int = 0,
    factor_names: Sequence[str] | None = None,
) -> DCIResult:
    """DCI scores of ``codes`` ``[N, D]`` for integer ``factors`` ``[N, K]`` (Eastwood & Williams).

    Args:
        codes, factors: training data (batch first; disentanglement_lib uses ``[D, N]``).
        codes_test, factors_test: held-out data; when omitted, ``test_fraction`` of the given
            samples is held out at random (``seed``).
        method: ``"gbt"`` (GradientBoostingClassifier, disentanglement_lib's choice),
            ``"random_forest"`` (faster) or ``"lasso"`` (linear, factors as ordinal values).
        n_estimators: trees per predictor for the tree methods (default 100).
        alpha: L1 weight for ``"lasso"`` (on standardised codes and factors).
        seed: seeds the split and the predictors.
        factor_names: optional names used in the notes.

    Returns:
        :class:`DCIResult`. Factors with a single value in the training data are skipped.

    Raises:
        ValueError: bad shapes or NaN, fewer than 10 training or 2 test samples (a split too
            small to measure informativeness), a factor constant in the test data for
            ``"lasso"`` (R² undefined), every factor constant, or counts and seeds that are
            not integers.

    Invariances: tree importances depend only on the order of each code's values, so any
    per-dimension strictly monotone map and any permutation of the dimensions leave D and C
    unchanged up to tie-breaking between equally good splits; lasso is invariant to affine maps
    (the codes are standardised) and permutations.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    seed = check_seed(seed)
    if n_estimators is not None:
        n_estimators = check_count(n_estimators, "n_estimators", 1)
    z, f, zt, ft = train_test(codes, factors, codes_test, factors_test, test_fraction, seed, 10)
    d, k = z.shape[1], f.shape[1]
    importance = np.full((d, k), np.nan)
    info_test = np.full(k, np.nan)
    info_train = np.full(k, np.nan)
    skipped, notes = [], []
    for i in range(k):
        if compact_labels(f[:, i])[1] < 2:
            skipped.append(i)
            label = f"factor {i}" + (f" ({factor_names[i]!r})" if factor_names is not None else "")
            notes.append(f"{label} skipped: it takes a single value in the training data")
            continue
        if method == "lasso" and compact_labels(ft[:, i])[1] < 2:
            label = f"factor {i}" + (f" ({factor_names[i]!r})" if factor_names is not None else "")
            raise ValueError(
                f"{label} takes a single value in the {ft.shape[0]} test samples, so the test R² "
                "of the lasso is undefined; expected test data in which every scored factor "
                "varies: pass more test samples (or a larger test_fraction)"
            )
        importance[:, i], info_train[i], info_test[i] = _fit_one(
            method, z, f[:, i], zt, ft[:, i], n_estimators, alpha, seed
        )
    scored = [i for i in range(k) if i not in skipped]
    if not scored:
        raise ValueError("every factor takes a single value in the training data; DCI is undefined")
    if len(scored) == 1:
        notes.append("only one factor is scored: disentanglement is 1 by definition")
    dis, comp, per_code, per_factor_c = dci_from_importance(importance[:, scored])
    completeness = np.full(k, np.nan)
    completeness[scored] = per_factor_c
    notes.append(f"importances from {method}")
    return DCIResult(
        disentanglement=dis,
        completeness=comp,
        informativeness=float(np.nanmean(info_test)),
        importance=importance,
        informativeness_train=float(np.nanmean(info_train)),
        per_code=per_code,
        per_factor_completeness=completeness,
        per_factor_informativeness=info_test,
        method=method,
        skipped=tuple(skipped),
        notes=tuple(notes),
    )


def _fit_one(method, z, y, zt, yt, n_estimators, alpha, seed):
    """Fit the predictor for one factor; return (importance [D], train score, test score)."""
    if method == "lasso":
        from sklearn.linear_model import Lasso

        mean, std = z.mean(0), z.std(0)
        std = np.where(std > 0, std, 1.0)
        y_mean, y_std = y.mean(), y.std()
        model = Lasso(alpha=alpha, random_state=seed)
        model.fit((z - mean) / std, (y - y_mean) / y_std)
        train = model.score((z - mean) / std, (y - y_mean) / y_std)
        test = model.score((zt - mean) / std, (yt - y_mean) / y_std)
        return np.abs(model.coef_), train, test
    if method == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=n_estimators or 100, random_state=seed)
    else:
        from sklearn.ensemble import RandomForestClassifier

        # every split may use every code (max_features=None): with sklearn's default of
        # sqrt(D) random candidates, uninformative codes are forced into trees and dilute R.
        model = RandomForestClassifier(n_estimators=n_estimators or 100, max_features=None,
                                       random_state=seed)
    model.fit(z, y)
    return np.abs(model.feature_importances_), model.score(z, y), model.score(zt, yt)
