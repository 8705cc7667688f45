"""Known-answer tests of the FactorVAE score, β-VAE score, DCI and SAP, and of the synthetic
representations they are tested on.

Representations (course_lib.metrics.synthetic) on factors of sizes (1, 5, 5, 6): the first
factor is constant (skipped by every metric), "mixed" rotates the two 5-valued factors by 45°.
Sample sizes are small to keep the file fast; tolerances are stated at each assertion and are
several standard errors of the estimate (e.g. an accuracy on 300 evaluation points has a
standard error below 0.03).
"""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from course_lib.metrics import beta_vae_score, dci, factor_vae_score, sap, synthetic_representation
from course_lib.metrics.dci import dci_from_importance
from course_lib.metrics.sap import adjusted_balanced_accuracy
from course_lib.metrics.synthetic import classes_to_index, grid_classes, hash_uniform

SIZES = (1, 5, 5, 6)
PAIR = (1, 2)
FAST = dict(n_train=400, n_eval=300, batch_size=32)


def rep(kind, **kw):
    return synthetic_representation(kind, SIZES, pair=PAIR, **kw)


def sample(kind, n=800, seed=0):
    f = np.random.default_rng(seed).integers(0, SIZES, size=(n, len(SIZES)))
    return rep(kind)(f), f


# --- synthetic representations -------------------------------------------------------------


def test_synthetic_representations_are_deterministic_functions_of_the_classes():
    f = grid_classes(SIZES)
    assert f.shape == (150, 4) and (classes_to_index(f, SIZES) == np.arange(150)).all()
    for kind, d in [("perfect", 4), ("rescaled", 4), ("mixed", 4), ("redundant", 5), ("missing", 3),
                    ("merged", 3), ("noise", 4), ("monotone", 4)]:
        a = rep(kind)(f)
        assert a.shape == (150, d)
        np.testing.assert_array_equal(a, rep(kind)(torch.as_tensor(f)))  # same codes every call
    perfect = rep("perfect")(f)
    np.testing.assert_allclose(perfect[:, 1:], f[:, 1:] / (np.array(SIZES[1:]) - 1))
    u = hash_uniform(np.arange(20000), 2, seed=3)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03
    with pytest.raises(ValueError, match="kind"):
        synthetic_representation("tilted", SIZES)
    # merged: code 1 holds factors 1 and 2 at once, one value per pair (both read back exactly),
    # code 2 is gone, factor 3 keeps its own code
    merged = rep("merged")(f)
    joint = np.rint(merged[:, 1] * (5 * 5 - 1)).astype(int)
    np.testing.assert_array_equal(joint, f[:, 1] * 5 + f[:, 2])
    np.testing.assert_allclose(merged[:, 2], f[:, 3] / 5)
    with pytest.raises(ValueError, match="two different factors"):
        synthetic_representation("merged", SIZES, pair=(1, 1))(f)


def test_mig_does_not_see_two_factors_merged_into_one_code_dci_and_sap_do():
    """MIG scores each factor's best code against its runner-up, never asking whether that code
    also carries another factor: a code holding two factors exactly keeps MIG near its perfect
    value, while DCI-D (importances spread over two factors) and SAP (one code cannot be the
    sole best for both with a small tree) drop."""
    from course_lib.metrics import mig

    f = np.random.default_rng(0).integers(0, SIZES, size=(3000, len(SIZES)))
    perfect, merged = rep("perfect")(f), rep("merged")(f)
    assert mig(merged, f).score >= 0.9 * mig(perfect, f).score
    assert dci(merged, f, method="lasso", seed=0).disentanglement <= 0.85 * dci(perfect, f, method="lasso",
                                                                                 seed=0).disentanglement
    assert sap(merged, f, seed=0).score <= 0.85 * sap(perfect, f, seed=0).score


# --- FactorVAE score -----------------------------------------------------------------------


def test_factor_vae_perfect_rescaled_monotone_score_one():
    perfect = factor_vae_score(rep("perfect"), SIZES, **FAST, n_variance=2000)
    assert perfect.score == 1.0 and perfect.train_accuracy == 1.0
    assert perfect.skipped == (0,) and perfect.votes.shape == (4, 4)
    assert perfect.votes.sum() == 400 and perfect.votes[:, 0].sum() == 0  # factor 0 never fixed
    assert not perfect.active[0]  # the constant code of the constant factor is pruned
    # Normalisation by the global std and a relative pruning threshold make every per-dimension
    # affine map and permutation irrelevant: identical votes up to the permutation.
    rescaled = factor_vae_score(rep("rescaled"), SIZES, **FAST, n_variance=2000)
    assert rescaled.score == 1.0 and rescaled.votes.sum() == 400
    assert factor_vae_score(rep("monotone"), SIZES, **FAST, n_variance=2000).score == 1.0


def test_factor_vae_invariant_to_permutation_and_affine_rescaling():
    base = rep("mixed", noise=0.05)  # a representation with a non-trivial score
    perm, scale, shift = np.array([3, 0, 2, 1]), np.array([0.01, -3.0, 40.0, 1.0]), np.arange(4.0)

    def moved(classes):
        return base(classes)[:, perm] * scale + shift

    # Without pruning the normalised variances are unchanged, so the votes are identical up to
    # the permutation. (Pruning compares each std with the largest: a per-dimension rescaling
    # can change which dimensions count as collapsed; a common scale cannot.)
    a = factor_vae_score(base, SIZES, **FAST, n_variance=2000, seed=5, prune_threshold=0.0)
    b = factor_vae_score(moved, SIZES, **FAST, n_variance=2000, seed=5, prune_threshold=0.0)
    assert 0.5 < a.score < 0.9
    assert b.score == a.score
    np.testing.assert_array_equal(b.votes, a.votes[perm])
    c = factor_vae_score(lambda cl: -7.0 * base(cl)[:, perm] + 2.0, SIZES, **FAST, n_variance=2000, seed=5)
    assert c.score == a.score
    beta_a = beta_vae_score(base, SIZES, **FAST, seed=5)
    beta_b = beta_vae_score(moved, SIZES, **FAST, seed=5)
    assert beta_b.score == pytest.approx(beta_a.score, abs=0.01)  # standardised features


def test_factor_vae_mixed_is_two_thirds_and_noise_near_chance():
    # Fixing either mixed factor leaves both rotated codes equally variable, so all their votes
    # land on one dimension and only one of the two factors is classified right: 2/3 overall.
    mixed = factor_vae_score(rep("mixed"), SIZES, **FAST, n_variance=2000)
    assert mixed.score == pytest.approx(2 / 3, abs=0.08)
    noise = factor_vae_score(rep("noise"), SIZES, **FAST, n_variance=2000)
    assert noise.score < 1 / 3 + 0.15  # chance is 1/3 (three factors can be fixed), not 0
    missing = factor_vae_score(rep("missing"), SIZES, **FAST, n_variance=2000)
    assert missing.score < 0.85


def test_factor_vae_prunes_collapsed_dimension_and_is_reproducible():
    base = rep("perfect")

    def with_collapsed(classes):
        z = base(classes)
        tiny = 1e-4 * np.sin(classes_to_index(classes, SIZES).astype(float))[:, None]
        return np.concatenate([z, tiny], axis=1)

    r = factor_vae_score(with_collapsed, SIZES, **FAST, n_variance=2000)
    assert r.active.tolist() == [False, True, True, True, False]
    assert r.score == 1.0 and any("pruned" in n for n in r.notes)
    a = factor_vae_score(rep("noise"), SIZES, **FAST, n_variance=500, generator=torch.Generator().manual_seed(7))
    b = factor_vae_score(rep("noise"), SIZES, **FAST, n_variance=500, seed=7)
    assert a.score == b.score and (a.votes == b.votes).all()


def test_factor_vae_bad_input():
    with pytest.raises(ValueError, match="single value"):
        factor_vae_score(rep("perfect"), (1, 1))
    with pytest.raises(ValueError, match="batch_size"):
        factor_vae_score(rep("perfect"), SIZES, batch_size=1)
    with pytest.raises(ValueError, match=r"shape \[N, D\]"):
        factor_vae_score(lambda c: np.zeros(len(c)), SIZES, **FAST)
    with pytest.raises(ValueError, match="NaN"):
        factor_vae_score(lambda c: np.full((len(c), 2), np.nan), SIZES, **FAST)


# --- β-VAE score ---------------------------------------------------------------------------


def test_beta_vae_known_answers():
    perfect = beta_vae_score(rep("perfect"), SIZES, **FAST)
    assert perfect.score >= 0.99 and perfect.skipped == (0,)
    rescaled = beta_vae_score(rep("rescaled"), SIZES, **FAST)
    assert rescaled.score == pytest.approx(perfect.score, abs=0.02)  # standardised features
    # 45° mixing of two equal-sized factors makes them indistinguishable: ~ (1 + 1/2 + 1/2) / 3
    mixed = beta_vae_score(rep("mixed"), SIZES, **FAST)
    assert mixed.score == pytest.approx(2 / 3, abs=0.1)
    noise = beta_vae_score(rep("noise"), SIZES, **FAST)
    assert noise.score == pytest.approx(1 / 3, abs=0.12)  # chance = 1/3, not 0


def test_beta_vae_bad_input():
    with pytest.raises(ValueError, match="at least 2 factors"):
        beta_vae_score(rep("perfect"), (1, 5))
    with pytest.raises(ValueError, match="n_train"):
        beta_vae_score(rep("perfect"), SIZES, n_train=1)


# --- DCI -----------------------------------------------------------------------------------


def test_dci_from_importance_hand_computed():
    assert dci_from_importance(np.eye(3))[:2] == (1.0, 1.0)
    d, c, _, _ = dci_from_importance(np.ones((3, 3)))
    assert d == pytest.approx(0.0, abs=1e-12) and c == pytest.approx(0.0, abs=1e-12)
    d, c, per_code, per_factor = dci_from_importance(np.array([[0.5, 0.5], [0.0, 1.0]]))
    h = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(2)
    assert per_code.tolist() == pytest.approx([0.0, 1.0])
    assert d == pytest.approx(0.5)
    assert per_factor.tolist() == pytest.approx([1.0, 1 - h])
    assert c == pytest.approx(0.25 * 1 + 0.75 * (1 - h))


def test_dci_from_importance_on_a_non_square_matrix_by_loops():
    """D = 4 codes, K = 3 factors, unequal row sums: the code entropies take log base K, the
    factor entropies log base D, and each is weighted by its share of the total importance
    (a base or weight mixed up changes the numbers below)."""
    r = [[0.9, 0.1, 0.0], [0.2, 0.2, 0.6], [0.0, 0.05, 0.0], [0.3, 0.3, 0.3]]
    D, K = 4, 3
    total = sum(map(sum, r))

    def entropy(ps, base):
        s = sum(ps)
        return -sum(p / s * math.log(p / s) for p in ps if p > 0) / math.log(base)

    per_code = [1 - entropy(row, K) for row in r]
    cols = [[r[i][k] for i in range(D)] for k in range(K)]
    per_factor = [1 - entropy(col, D) for col in cols]
    expected_d = sum(sum(r[i]) / total * per_code[i] for i in range(D))
    expected_c = sum(sum(cols[k]) / total * per_factor[k] for k in range(K))
    d, c, got_code, got_factor = dci_from_importance(np.array(r))
    assert got_code.tolist() == pytest.approx(per_code) and got_factor.tolist() == pytest.approx(per_factor)
    assert d == pytest.approx(expected_d) and c == pytest.approx(expected_c)
    assert per_code[2] == pytest.approx(1.0) and 0 < c < 1 and 0 < d < 1


def test_dci_known_answers_random_forest():
    kw = dict(method="random_forest", n_estimators=10)
    z, f = sample("perfect")
    perfect = dci(z, f, **kw)
    assert perfect.disentanglement > 0.98 and perfect.completeness > 0.98
    assert perfect.informativeness == 1.0 and perfect.skipped == (0,)
    assert np.isnan(perfect.importance[:, 0]).all()
    for kind in ("rescaled", "monotone"):  # trees see only the order of each code's values
        other = dci(*sample(kind), **kw)
        assert other.disentanglement == pytest.approx(perfect.disentanglement, abs=0.02), kind
        assert other.completeness == pytest.approx(perfect.completeness, abs=0.02), kind
    mixed = dci(*sample("mixed"), **kw)
    assert mixed.disentanglement < perfect.disentanglement - 0.2
    redundant = dci(*sample("redundant"), **kw)
    assert redundant.completeness < 0.95 and redundant.disentanglement > 0.95
    rng = np.random.default_rng(1)
    noise = dci(rng.normal(size=(800, 4)), f, **kw)
    assert 0 <= noise.disentanglement < 0.1 and 0 <= noise.completeness < 0.1


def test_dci_gbt_and_lasso_on_perfect_codes():
    z, f = sample("perfect", n=400)
    gbt = dci(z, f, method="gbt", n_estimators=10)
    assert gbt.disentanglement > 0.98 and gbt.completeness > 0.98 and gbt.informativeness == 1.0
    lasso = dci(z, f, method="lasso")
    assert lasso.disentanglement > 0.98 and lasso.informativeness > 0.95
    moved = dci(*sample("rescaled", n=400), method="lasso")  # affine-invariant (standardised)
    assert moved.disentanglement == pytest.approx(lasso.disentanglement, abs=1e-6)


def test_dci_bad_input():
    z, f = sample("perfect", n=40)
    with pytest.raises(ValueError, match="at least 10"):
        dci(z[:8], f[:8])
    with pytest.raises(ValueError, match="method"):
        dci(z, f, method="svm")
    with pytest.raises(ValueError, match="both"):
        dci(z, f, codes_test=z)
    with pytest.raises(ValueError, match="single value"):
        dci(z, np.zeros_like(f))


# --- SAP -----------------------------------------------------------------------------------


def test_adjusted_balanced_accuracy_matches_sklearn():
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    p[:150] = y[:150]
    assert adjusted_balanced_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p, adjusted=True))


@pytest.mark.parametrize("method", ["discrete", "r2"])
def test_sap_known_answers(method):
    z, f = sample("perfect")
    perfect = sap(z, f, method=method)
    assert perfect.score > 0.9 and perfect.skipped == (0,) and perfect.matrix.shape == (4, 4)
    mixed = sap(*sample("mixed"), method=method)
    assert mixed.score < perfect.score - 0.2
    redundant = sap(*sample("redundant"), method=method)
    assert redundant.per_factor[PAIR[0]] == 0.0  # two identical codes: no gap
    rng = np.random.default_rng(3)
    assert abs(sap(rng.normal(size=(800, 4)), f, method=method).score) < 0.1


def test_sap_invariances():
    z, f = sample("perfect")
    r2 = sap(z, f, method="r2")
    moved = sap(*sample("rescaled"), method="r2")  # affine maps and permutations: exact
    assert moved.score == pytest.approx(r2.score, abs=1e-12)
    disc = sap(z, f)
    mono = sap(*sample("monotone"))  # order-based thresholds: unchanged
    assert mono.score == pytest.approx(disc.score, abs=0.02)


def test_sap_bad_input():
    z, f = sample("perfect", n=100)
    with pytest.raises(ValueError, match="D >= 2"):
        sap(z[:, :1], f)
    with pytest.raises(ValueError, match="same samples"):
        sap(z, f[:50])
    with pytest.raises(ValueError, match="method"):
        sap(z, f, method="linear")


# --- robustness: constant dimensions, offsets, scales, counts, small test sets --------------


def test_factor_vae_constant_dimension_is_constant_whatever_its_value():
    # A constant code is constant at 0 and at 3.7 alike (a float std of 3.7s is ~1e-16, not 0):
    # no dimension is active and the score is 0, with a note.
    for value in (0.0, 3.7, -1e6 / 3):
        r = factor_vae_score(lambda c, v=value: np.full((len(c), 4), v), SIZES, **FAST, n_variance=2000)
        assert r.score == 0.0 and not r.active.any(), value
        assert (r.global_std == 0).all() and any("constant" in n for n in r.notes)
    # A perfect code with a large offset: the constant code of factor 0 (the offset alone) must
    # not take the votes, even with pruning switched off (it used to score about 0.35).
    base = rep("perfect")
    for offset in (1000.0, 1e6 / 3):
        for threshold in (0.0, 0.05):
            for seed in range(3):
                r = factor_vae_score(lambda c, o=offset: o + 50.0 * base(c), SIZES, **FAST,
                                     n_variance=10_000, seed=seed, prune_threshold=threshold)
                assert r.score == 1.0, (offset, threshold, seed)
                assert r.active.tolist() == [False, True, True, True]
    ints = factor_vae_score(lambda c: 1000 + 50 * np.asarray(c, dtype=float), SIZES, **FAST, n_variance=2000)
    assert ints.score == 1.0


def test_factor_vae_pruning_threshold_is_relative_to_the_largest_std():
    # Choice stated in factor_vae's docstring: a dimension below 1/20 of the largest std is
    # pruned as collapsed even if it carries a factor; prune_threshold=0 keeps it.
    base = rep("perfect")
    shift = np.array([0.0, 1000.0, -7.0, 3.7])
    for ratio, kept in [(1 / 10, True), (1 / 40, False)]:
        scale = np.array([1.0, 1.0, 1.0, ratio])

        def scaled(c, scale=scale):
            return base(c) * scale + shift

        for seed in range(3):
            r = factor_vae_score(scaled, SIZES, **FAST, n_variance=2000, seed=seed)
            assert r.active.tolist() == [False, True, True, kept], (ratio, seed)
            assert (r.score == 1.0) == kept and r.score > 0.6, (ratio, seed)
            r0 = factor_vae_score(scaled, SIZES, **FAST, n_variance=2000, seed=seed, prune_threshold=0.0)
            assert r0.score == 1.0 and r0.active.tolist() == [False, True, True, True]
    # Per-dimension affine maps (any offsets) leave the votes unchanged up to the permutation:
    # with the default pruning when no std falls below 1/20 of the largest, always without.
    noisy = rep("mixed", noise=0.05)  # stds 0.05 (noise only), 0.35, 0.35, 0.34
    perm = np.array([3, 0, 2, 1])
    offsets = np.array([1e6 / 3, 1000.0, -7.0, 3.7])
    for scales, threshold in [(np.array([2.0, 4.0, 3.0, -1 / 2]), 0.05),  # stds 0.68, 0.2, 1.05, 0.18
                              (np.array([50.0, 1e-3, -3.0, 1.0]), 0.0)]:
        a = factor_vae_score(noisy, SIZES, **FAST, n_variance=2000, seed=5, prune_threshold=threshold)
        def moved(c, s=scales):
            return noisy(c)[:, perm] * s + offsets
        b = factor_vae_score(moved, SIZES, **FAST, n_variance=2000, seed=5, prune_threshold=threshold)
        assert 0.5 < a.score < 0.9 and b.score == a.score
        np.testing.assert_array_equal(b.votes, a.votes[perm])
        np.testing.assert_array_equal(b.active, a.active[perm])
    # disentanglement_lib's absolute threshold on the std (0.05 in its studies) is available;
    # it prunes an informative dimension with std 0.35 / 10 < 0.05 that the default keeps.
    lib = factor_vae_score(lambda c: base(c) * np.array([1.0, 1.0, 1.0, 0.1]), SIZES, **FAST,
                           n_variance=2000, prune_threshold=0.0, min_std=0.05)
    assert lib.active.tolist() == [False, True, True, False] and lib.score < 0.8
    with pytest.raises(ValueError, match="min_std"):
        factor_vae_score(base, SIZES, **FAST, min_std=-1.0)


def test_counts_and_seeds_are_refused_not_truncated():
    perfect = rep("perfect")
    for kw, name in [({"n_train": 2.7}, "n_train"), ({"n_eval": 300.0}, "n_eval"),
                     ({"batch_size": 31.5}, "batch_size"), ({"n_variance": -5}, "n_variance"),
                     ({"seed": 1.5}, "seed"), ({"seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=name):
            factor_vae_score(perfect, SIZES, **{**FAST, **kw})
    with pytest.raises(ValueError, match=r"factor_sizes\[1\].*integer"):
        factor_vae_score(perfect, (1, 5.5, 5, 6), **FAST)  # used to become 5 silently
    with pytest.raises(ValueError, match="factor_sizes"):
        factor_vae_score(perfect, (1, -5, 5, 6), **FAST)
    with pytest.raises(ValueError, match="max_iter"):
        beta_vae_score(perfect, SIZES, **FAST, max_iter=10.5)
    with pytest.raises(ValueError, match="n_estimators"):
        dci(*sample("perfect"), method="random_forest", n_estimators=2.5)
    with pytest.raises(ValueError, match="seed"):
        sap(*sample("perfect", n=100), seed=0.5)
    with pytest.raises(ValueError, match="pair"):
        synthetic_representation("mixed", SIZES, pair=(1.5, 2))
    with pytest.raises(ValueError, match="seed"):
        synthetic_representation("noise", SIZES, seed=2.7)
    # integer types other than int are fine: NumPy integers and integer tensors
    ok = factor_vae_score(perfect, tuple(np.array(SIZES)), n_train=np.int64(100), n_eval=50,
                          batch_size=torch.tensor(16), n_variance=500, seed=np.int32(1))
    assert ok.score == 1.0


def test_dci_too_small_test_set_raises_instead_of_nan():
    z, f = sample("perfect", n=200)
    for method in ("lasso", "random_forest", "gbt"):
        with pytest.raises(ValueError, match="at least 2 test samples"):
            dci(z, f, z[:1], f[:1], method=method, n_estimators=5)
    with pytest.raises(ValueError, match=r"held-out split has 1 sample.*at least 2 test"):
        dci(z[:12], f[:12], method="lasso", test_fraction=0.05)
    # lasso: R² is undefined on test data where a scored factor is constant
    same = np.array([0, 0])  # two identical test rows: every factor constant
    with pytest.raises(ValueError, match="single value in the 2 test samples"):
        dci(z, f, z[same], f[same], method="lasso")
    with pytest.raises(ValueError, match="at least 2 test samples"):
        sap(z, f, z[:1], f[:1])
    two = dci(z, f, z[:40], f[:40], method="lasso")  # enough test data: finite scores
    assert np.isfinite(two.informativeness) and np.isfinite(two.per_factor_informativeness[1:]).all()


def test_sap_r2_matrix_is_the_squared_correlation_of_each_pair():
    z, f = sample("mixed")
    r = sap(z, f, method="r2")
    for d in range(z.shape[1]):
        for k in range(f.shape[1]):
            if k in r.skipped:
                continue
            if z[:, d].std() == 0:  # a constant code predicts nothing
                assert r.matrix[d, k] == 0.0
                continue
            corr = np.corrcoef(z[:, d], f[:, k].astype(float))[0, 1]
            assert r.matrix[d, k] == pytest.approx(corr**2, abs=1e-9), (d, k)
    # a code anti-correlated with its factor scores like a correlated one (R², not corr)
    flipped = z.copy()
    flipped[:, 0] *= -1
    np.testing.assert_allclose(sap(flipped, f, method="r2").matrix, r.matrix, atol=1e-12)


def test_every_score_is_measured_on_held_out_data():
    """Scores that fit a classifier report its accuracy on data it did not see: test codes that
    no longer match their factors score low while the training fit is perfect (a score read on
    the training data would be high)."""
    z, f = sample("perfect", n=800)
    rng = np.random.default_rng(5)
    zt, ft = z[:200], f[rng.permutation(200)]   # the test codes' factors shuffled
    d = dci(z, f, zt, ft, method="random_forest", n_estimators=10)
    assert d.informativeness_train == 1.0 and d.informativeness < 0.5
    assert sap(z, f, zt, ft).score < 0.1
    # the vote-based scores: a handful of training votes is fitted perfectly, evaluation is near chance
    fv = factor_vae_score(rep("noise"), SIZES, n_train=3, n_eval=600, batch_size=32, n_variance=2000)
    assert fv.train_accuracy == 1.0 and fv.score < 0.5
    bv = beta_vae_score(rep("noise"), SIZES, n_train=6, n_eval=600, batch_size=32)
    assert bv.train_accuracy == 1.0 and bv.score < 0.5


def test_dci_importance_puts_each_factor_on_its_own_code():
    """Perfect codes: code k is the one that predicts factor k (a reversed importance matrix
    has the same D and C, so D and C alone cannot tell)."""
    z, f = sample("perfect")
    d = dci(z, f, method="random_forest", n_estimators=10)
    for k in range(1, len(SIZES)):   # factor 0 is constant, skipped
        assert int(np.nanargmax(d.importance[:, k])) == k


def test_more_bad_inputs_name_what_was_expected():
    from course_lib.losses.tc import gaussian_total_correlation
    from course_lib.metrics.mig import gap_scores
    from course_lib.models.tc import permute_dims

    z, f = sample("perfect", n=200)
    for fraction in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
            dci(z, f, method="lasso", test_fraction=fraction)
    with pytest.raises(ValueError, match="same D and K as the training data"):
        dci(z, f, z[:, :-1], f, method="lasso")
    for threshold in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"prune_threshold must be a number in \[0, 1\)"):
            factor_vae_score(lambda c: c.double(), SIZES, n_train=10, n_eval=10, prune_threshold=threshold)
    with pytest.raises(ValueError, match="factor_names has 1 names but there are 2 factors"):
        gap_scores(np.ones((3, 2)), np.ones(2), factor_names=["a"])
    with pytest.raises(ValueError, match="square D×D"):
        gaussian_total_correlation(torch.ones(2, 3))
    with pytest.raises(ValueError, match="M×D"):
        permute_dims(torch.ones(4, 2, 2))
