"""Tests of the discrete MIG (course_lib.metrics.mig) on cases with a known answer.

Tolerances: exact closed forms are checked to 1e-9 (float64 sums); invariances to 1e-12;
"about zero" scores of random codes to 0.01 (plug-in MI bias ~ (bins-1)(V-1)/(2N) nats).
"""

import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from course_lib.metrics import MIGResult, discretize, factor_entropy, mig, mutual_info_matrix


def grid(sizes):
    """Every combination of factor values, [prod(sizes), K] int64."""
    return np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int64)


def brute_force_bin(x, lo, hi, num_bins):
    """Bin index by walking the edges with exact rational arithmetic."""
    if hi == lo:
        return 0
    x, lo, hi = Fraction(x), Fraction(lo), Fraction(hi)
    w = (hi - lo) / num_bins
    for b in range(num_bins):
        if lo + b * w <= x < lo + (b + 1) * w:
            return b
    return num_bins - 1  # the maximum


def brute_force_mi(a, b):
    """Plug-in mutual information (nats) by counting pairs in a double loop."""
    n = len(a)
    pa, pb, pab = Counter(a), Counter(b), Counter(zip(a, b))
    total = 0.0
    for va in pa:
        for vb in pb:
            c = pab.get((va, vb), 0)
            if c:
                total += c / n * math.log(c * n / (pa[va] * pb[vb]))
    return total


def test_discretize_matches_exact_edges():
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(size=(300, 2)), np.arange(300)[:, None] % 7], axis=1)
    bins = discretize(codes, num_bins=20)
    for j in range(codes.shape[1]):
        lo, hi = codes[:, j].min(), codes[:, j].max()
        expected = [brute_force_bin(x, lo, hi, 20) for x in codes[:, j]]
        assert bins[:, j].tolist() == expected
    assert bins.min() == 0 and bins.max() == 19
    assert (discretize(np.ones((5, 2))) == 0).all()  # constant dimension -> bin 0


def test_mutual_info_matches_brute_force_and_sklearn():
    rng = np.random.default_rng(1)
    factors = rng.integers(0, 4, size=(400, 2))
    codes = np.stack(
        [factors[:, 0] + 0.7 * rng.normal(size=400), rng.normal(size=400), factors[:, 1] * 2.0],
        axis=1,
    )
    mi = mutual_info_matrix(codes, factors, num_bins=10)
    bins = discretize(codes, num_bins=10)
    for j in range(3):
        for k in range(2):
            bf = brute_force_mi(bins[:, j].tolist(), factors[:, k].tolist())
            assert mi[j, k] == pytest.approx(bf, abs=1e-12)
            assert mi[j, k] == pytest.approx(mutual_info_score(bins[:, j], factors[:, k]), abs=1e-12)
    assert mi[0, 0] > 0.3 and mi[2, 1] > 1.0  # the informative pairs are clearly informative


def test_factor_entropy_matches_brute_force():
    f = np.array([[0, 5], [0, 5], [1, 5], [2, 7]])
    h = factor_entropy(f)
    assert h[0] == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), abs=1e-12)
    assert h[1] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), abs=1e-12)
    assert factor_entropy(grid((3, 40)))[1] == pytest.approx(math.log(40), abs=1e-12)


def expected_binned_ratio(v, num_bins=20):
    """H(bin(v)) / H(v) for v uniform over 0..v-1: the MIG of a perfect code on a full grid."""
    counts = Counter(brute_force_bin(x, 0, v - 1, num_bins) for x in range(v))
    h_bin = -sum(c / v * math.log(c / v) for c in counts.values())
    return h_bin / math.log(v)


def test_ground_truth_on_full_grid_has_closed_form():
    sizes = (2, 6, 40, 32)
    f = grid(sizes)
    r = mig(f.astype(float), f)
    assert isinstance(r, MIGResult)
    # On the full grid the factors are exactly independent, so the second-largest MI is 0 and
    # each factor's MIG is the fraction of its entropy that survives 20 equal-width bins.
    expected = [expected_binned_ratio(v) for v in sizes]
    np.testing.assert_allclose(expected[:2], [1.0, 1.0], atol=1e-12)
    assert expected[2] == pytest.approx(math.log(20) / math.log(40))
    np.testing.assert_allclose(r.per_factor, expected, atol=1e-9)
    assert r.score == pytest.approx(np.mean(expected), abs=1e-9)
    np.testing.assert_allclose(r.factor_entropy, np.log(sizes), atol=1e-12)
    assert r.mutual_info.shape == (4, 4)
    off_diagonal = r.mutual_info[~np.eye(4, dtype=bool)]
    assert np.abs(off_diagonal).max() < 1e-12
    assert r.skipped == ()


def test_oracle_on_a_random_dsprites_sample_is_below_one():
    # The ground-truth classes of 10,000 random dSprites images as codes: colour is skipped
    # (one value), and orientation (40 values) and position (32) lose entropy in 20 bins.
    sizes = (1, 3, 6, 40, 32, 32)
    f = np.random.default_rng(9).integers(0, sizes, size=(10_000, 6))
    r = mig(f.astype(float), f)
    expected = [expected_binned_ratio(v) for v in sizes[1:]]
    assert r.skipped == (0,)
    np.testing.assert_allclose(r.per_factor[1:], expected, atol=0.02)  # finite-sample MI bias
    assert r.score == pytest.approx(np.mean(expected), abs=0.01) and r.score < 0.92


def noisy_codes(seed=2, n=5000):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, [5, 8, 10], size=(n, 3))
    codes = factors + 0.2 * rng.normal(size=(n, 3))
    return codes, factors


def test_permutation_and_affine_rescaling_leave_mig_unchanged():
    codes, factors = noisy_codes()
    base = mig(codes, factors)
    perm = np.array([2, 0, 1])
    scale = np.array([3.7, -0.02, 250.0])  # includes a sign flip
    shift = np.array([-5.0, 11.0, 0.3])
    moved = mig(codes[:, perm] * scale + shift, factors)
    assert moved.score == pytest.approx(base.score, abs=1e-12)
    np.testing.assert_allclose(moved.mutual_info, base.mutual_info[perm], atol=1e-12)
    np.testing.assert_allclose(moved.per_factor, base.per_factor, atol=1e-12)
    assert base.score > 0.6


def test_rotation_mixing_two_factors_lowers_mig():
    codes, factors = noisy_codes(3)
    codes = codes / np.array([5.0, 8.0, 10.0])  # comparable ranges before mixing
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    mixed = codes.copy()
    mixed[:, 0], mixed[:, 1] = c * codes[:, 0] - s * codes[:, 1], s * codes[:, 0] + c * codes[:, 1]
    base, rot = mig(codes, factors), mig(mixed, factors)
    assert rot.score < base.score - 0.25
    assert rot.per_factor[2] == pytest.approx(base.per_factor[2], abs=0.01)  # untouched factor


def test_random_codes_score_about_zero():
    rng = np.random.default_rng(4)
    factors = rng.integers(0, [4, 5, 10], size=(20000, 3))
    r = mig(rng.normal(size=(20000, 5)), factors)
    assert 0 <= r.score < 0.01
    assert r.mutual_info.max() < 0.02


def test_duplicated_code_gives_zero_for_that_factor():
    codes, factors = noisy_codes(5)
    dup = np.concatenate([codes, codes[:, :1]], axis=1)
    r = mig(dup, factors)
    assert r.per_factor[0] == 0.0  # two identical codes share the top MI: no gap at all
    assert r.per_factor[1] > 0.6 and r.per_factor[2] > 0.6


def test_constant_factor_is_skipped_and_named():
    codes, factors = noisy_codes(6, n=2000)
    with_const = np.concatenate([np.zeros((2000, 1), dtype=np.int64), factors], axis=1)
    r = mig(np.concatenate([np.zeros((2000, 1)), codes], axis=1), with_const,
            factor_names=["color", "a", "b", "c"])
    plain = mig(codes, factors)
    assert r.skipped == (0,)
    assert np.isnan(r.per_factor[0])
    assert r.score == pytest.approx(plain.score, abs=1e-12)
    assert any("color" in note and "single value" in note for note in r.notes)


def test_torch_input_matches_numpy():
    codes, factors = noisy_codes(7, n=1000)
    a = mig(codes, factors)
    b = mig(torch.tensor(codes, dtype=torch.float64), torch.tensor(factors))
    assert a.score == b.score


@pytest.mark.parametrize(
    "codes, factors, match",
    [
        (np.zeros((10, 2)), np.zeros((9, 1), dtype=int), "same samples"),
        (np.array([[0.0, np.nan], [1.0, 2.0], [0.5, 1.0]]), np.array([[0], [1], [1]]), "NaN"),
        (np.zeros((10, 2)), np.zeros((10, 1)), "integer"),
        (np.zeros(10), np.zeros((10, 1), dtype=int), "reshape"),
        (np.zeros((10, 2)), np.zeros(10, dtype=int), "reshape"),
        (np.zeros((1, 2)), np.zeros((1, 1), dtype=int), "at least 2"),
        (np.random.default_rng(0).normal(size=(10, 1)), np.arange(10)[:, None] % 2, "2 code"),
        (np.random.default_rng(0).normal(size=(10, 2)), np.zeros((10, 2), dtype=int), "single value"),
    ],
)
def test_bad_input_raises_clear_errors(codes, factors, match):
    with pytest.raises(ValueError, match=match):
        mig(codes, factors)


def test_bad_num_bins():
    codes, factors = noisy_codes(8, n=100)
    with pytest.raises(ValueError, match="num_bins"):
        mig(codes, factors, num_bins=1)


@pytest.mark.slow
def test_full_dsprites_sized_grid():
    """All 737,280 factor combinations at once (the speed is measured by `bench mig`, not here)."""
    f = grid((1, 3, 6, 40, 32, 32))
    rng = np.random.default_rng(0)
    codes = np.concatenate([f[:, 1:] + 0.1 * rng.normal(size=(len(f), 5)), rng.normal(size=(len(f), 5))], 1)
    r = mig(codes.astype(np.float32), f)
    assert r.skipped == (0,) and r.score > 0.7


def test_skewed_factor_is_normalised_by_its_empirical_entropy():
    # A factor whose values are far from uniform: H(v) (plug-in) is well below log |V|, and the
    # gap is divided by H(v), as in disentanglement_lib, not by log |V|.
    rng = np.random.default_rng(5)
    v = rng.choice(4, size=4000, p=[0.7, 0.1, 0.1, 0.1])
    w = rng.integers(0, 3, size=4000)
    codes = np.stack([v + 0.0, w + 0.0, rng.normal(size=4000)], 1)
    r = mig(codes, np.stack([v, w], 1), num_bins=4)
    counts = np.bincount(v) / len(v)
    h_v = float(-(counts * np.log(counts)).sum())
    assert h_v < 0.9 * math.log(4)  # skewed enough for the two normalisations to differ by > 10 %
    mi = r.mutual_info[:, 0]
    top2 = np.sort(mi)[::-1][:2]
    assert r.factor_entropy[0] == pytest.approx(h_v, abs=1e-12)
    assert r.per_factor[0] == pytest.approx((top2[0] - top2[1]) / h_v, abs=1e-12)
    assert top2[0] == pytest.approx(h_v, abs=1e-12)  # the code holds v exactly: I = H(v)
    assert r.per_factor[0] > (top2[0] - top2[1]) / math.log(4) + 0.05  # not divided by log |V|


def test_codes_too_spread_to_bin_raise_instead_of_scoring_zero():
    f = np.repeat(np.arange(5), 20)[:, None]
    codes = np.stack([f[:, 0] * 1.0, np.random.default_rng(0).permutation(100) / 99.0], 1)
    good = mig(codes, f, num_bins=5).score
    assert good > 0.9
    assert mig(codes * 1e300, f, num_bins=5).score == pytest.approx(good)
    with pytest.raises(ValueError, match="too large a range"):
        mig(codes * 1e307, f, num_bins=5)


def test_widely_spaced_factor_values_give_the_same_answers_as_dense_ones():
    """Factor values far apart (the sparse path of the label compaction: a sort, not a
    presence table) are only names: the entropies and MIG equal those of the values 0..V-1."""
    from course_lib.metrics._checks import compact_labels

    rng = np.random.default_rng(3)
    dense = rng.integers(0, 3, size=(500, 2))
    sparse = np.stack([np.array([0, 10**9, 3 * 10**12])[dense[:, 0]], dense[:, 1] * 7], 1)
    labels, count = compact_labels(sparse[:, 0])
    assert count == 3 and np.array_equal(labels, dense[:, 0])   # the order of the values is kept
    codes = np.concatenate([dense + 0.2 * rng.normal(size=dense.shape), rng.normal(size=(500, 2))], 1)
    np.testing.assert_allclose(factor_entropy(sparse), factor_entropy(dense))
    a, b = mig(codes, sparse), mig(codes, dense)
    assert a.score == pytest.approx(b.score) and np.allclose(a.mutual_info, b.mutual_info)
