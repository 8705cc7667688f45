"""Reading traversals with the factor classifier: curves, agreement, predicted factors.

Checked against brute-force loops in NumPy on a stub classifier with known logits; a trained
classifier on real dSprites traversals is in tests/test_hybrid.py.
"""

import numpy as np
import pytest
import torch

from course_lib.quality import predict_factors, traversal_agreement, traversal_factor_curves

SIZES = (3, 6, 40, 32, 32)


class StubClassifier(torch.nn.Module):
    """Fixed random linear logits from the pixels: one head per factor."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(sum(SIZES), 64 * 64, generator=g) * 0.05)

    def logits(self, x):
        return (x.flatten(1) @ self.weight.T).split(SIZES, dim=1)


def brute_curves(clf, images):
    """Expected class / number of classes, image by image, factor by factor."""
    flat = images.reshape(-1, 1, 64, 64)
    out = np.zeros((len(flat), len(SIZES)))
    with torch.no_grad():
        for n in range(len(flat)):
            for k, lg in enumerate(clf.logits(flat[n:n + 1])):
                p = np.exp(lg[0].double().numpy() - lg[0].double().numpy().max())
                p /= p.sum()
                out[n, k] = sum(c * p[c] for c in range(SIZES[k])) / SIZES[k]
    return out.reshape(*images.shape[:-3], len(SIZES))


def brute_agreement(ref, other):
    s, d, v, k = ref.shape
    out = np.zeros((d, d))
    for j in range(d):
        for i in range(d):
            total = 0.0
            for t in range(s):
                a = np.concatenate([other[t, j, :, f] - other[t, j, :, f].mean() for f in range(k)])
                b = np.concatenate([ref[t, i, :, f] - ref[t, i, :, f].mean() for f in range(k)])
                total += a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            out[j, i] = total / s
    return out


def test_curves_match_brute_force():
    clf = StubClassifier()
    images = torch.rand(2, 3, 4, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    curves = traversal_factor_curves(clf, images, batch_size=5)     # batches that split traversals
    assert curves.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(curves.numpy(), brute_curves(clf, images), rtol=1e-5, atol=1e-6)
    assert float(curves.min()) >= 0 and float(curves.max()) < 1


def test_agreement_matches_brute_force_and_its_extremes():
    g = torch.Generator().manual_seed(2)
    ref = torch.rand(3, 4, 6, 5, generator=g, dtype=torch.float64)
    other = torch.rand(3, 4, 6, 5, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(traversal_agreement(ref, other).numpy(), brute_agreement(ref.numpy(), other.numpy()),
                               rtol=1e-10, atol=1e-12)
    # the same traversals: 1 on the diagonal
    np.testing.assert_allclose(traversal_agreement(ref, ref).diagonal().numpy(), 1.0, rtol=1e-12)
    # a renderer whose every factor moves by the same amounts the other way: -1
    np.testing.assert_allclose(traversal_agreement(ref, 1 - ref).diagonal().numpy(), -1.0, rtol=1e-12)
    # an affine change of scale (a brighter or offset reading) does not change a correlation
    np.testing.assert_allclose(traversal_agreement(ref, 3 * ref + 0.2).numpy(),
                               traversal_agreement(ref, ref).numpy(), rtol=1e-10)
    # dimensions permuted in the other renderer: each row peaks at the permuted column
    perm = torch.tensor([2, 0, 3, 1])
    assert traversal_agreement(ref, ref[:, perm]).argmax(1).tolist() == perm.tolist()


def test_predict_factors_is_the_argmax_per_head():
    clf = StubClassifier(seed=3)
    images = torch.rand(7, 1, 64, 64, generator=torch.Generator().manual_seed(4))
    pred = predict_factors(clf, images, batch_size=3)
    assert pred.dtype == torch.int64 and pred.shape == (7, 5)
    with torch.no_grad():
        for k, lg in enumerate(clf.logits(images)):
            assert pred[:, k].tolist() == lg.argmax(1).tolist()
            assert int(pred[:, k].max()) < SIZES[k]


def test_bad_shapes_are_explained():
    clf = StubClassifier()
    with pytest.raises(ValueError, match=r"\[\.\.\., V, C, H, W\]"):
        traversal_factor_curves(clf, torch.rand(4, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 2 images"):
        traversal_factor_curves(clf, torch.rand(3, 1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"\[S, D, V, K\] of the same shape"):
        traversal_agreement(torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\[S, D, V, K\]"):
        traversal_agreement(torch.rand(3, 4, 5), torch.rand(3, 4, 5))


# ------------------------------------------------------------------ sprite rulers: grey share and named shapes

def test_grey_share_by_hand():
    from course_lib.quality import grey_share

    # one image, seven pixels: inked (p >= 0.1) are 0.1, 0.5, 0.89, 0.9 and 1.0; grey (p < 0.9) 0.1, 0.5, 0.89
    a = torch.tensor([0.0, 0.05, 0.1, 0.5, 0.89, 0.9, 1.0]).reshape(1, 1, 1, 7)
    assert grey_share(a) == pytest.approx(3 / 5)
    # pooled over the set, not averaged per image: 3 grey of 5 inked, then 0 grey of 1 inked → 3/6, not 0.3
    b = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).reshape(1, 1, 1, 7)
    assert grey_share(torch.cat([a, b])) == pytest.approx(3 / 6)
    # other bounds: inked p >= 0.05 (six pixels), grey p < 0.95 (0.05, 0.1, 0.5, 0.89, 0.9)
    assert grey_share(a, low=0.05, high=0.95) == pytest.approx(5 / 6)
    # a binary set is 0, a set with no ink is NaN
    assert grey_share(b) == 0.0
    assert np.isnan(grey_share(torch.zeros(2, 1, 4, 4)))


def _pieces_by_flood_fill(ink, min_pixels):
    """Independent count: breadth-first flood fill over the 8 neighbours, in plain Python."""
    h, w = len(ink), len(ink[0])
    seen, pieces = set(), 0
    for r in range(h):
        for c in range(w):
            if not ink[r][c] or (r, c) in seen:
                continue
            queue, size = [(r, c)], 0
            seen.add((r, c))
            while queue:
                y, x = queue.pop()
                size += 1
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = y + dy, x + dx
                        if 0 <= ny < h and 0 <= nx < w and ink[ny][nx] and (ny, nx) not in seen:
                            seen.add((ny, nx))
                            queue.append((ny, nx))
            pieces += size >= min_pixels
    return pieces


def test_ink_blobs_by_hand():
    from course_lib.quality import ink_blobs, one_sprite_share

    img = torch.zeros(5, 1, 8, 8)
    img[0, 0, 1:4, 1:4] = 1                      # one 3×3 square
    img[1, 0, 1:3, 1:3] = 1
    img[1, 0, 5:7, 5:7] = 1                      # two 2×2 squares apart
    img[2, 0, 1:3, 1:3] = 1
    img[2, 0, 3:5, 3:5] = 1                      # two squares touching at a corner: one piece (8 neighbours)
    img[3, 0, 0:4, 0:4] = 1
    img[3, 0, 7, 6:8] = 1                        # a square and a 2-pixel speckle
    # image 4 is blank
    assert ink_blobs(img).tolist() == [1, 2, 1, 1, 0]
    assert ink_blobs(img, min_pixels=1).tolist() == [1, 2, 1, 2, 0]
    assert one_sprite_share(img) == pytest.approx(3 / 5)
    # grey below the threshold is not ink
    assert ink_blobs(img * 0.4).tolist() == [0, 0, 0, 0, 0]
    assert ink_blobs(img * 0.4, threshold=0.3).tolist() == [1, 2, 1, 1, 0]
    # pieces never join across images: ink on the last row of one image and the first row of the next
    pair = torch.zeros(2, 1, 6, 6)
    pair[0, 0, 4:6, 1:5] = 1
    pair[1, 0, 0:2, 1:5] = 1
    assert ink_blobs(pair).tolist() == [1, 1]


def test_ink_blobs_against_a_flood_fill():
    from course_lib.quality import ink_blobs

    g = torch.Generator().manual_seed(0)
    images = (torch.rand(40, 1, 12, 12, generator=g) < 0.35).float()
    for min_pixels in (1, 3):
        expected = [_pieces_by_flood_fill(im[0].bool().tolist(), min_pixels) for im in images]
        assert ink_blobs(images, min_pixels=min_pixels).tolist() == expected
    assert max(expected) >= 3                     # the random images do have several pieces


def test_ink_blobs_of_real_sprites_and_of_two_sprites():
    from course_lib.data import DSprites
    from course_lib.quality import ink_blobs, one_sprite_share

    ds = DSprites()
    classes = ds.sample_classes(400, generator=torch.Generator().manual_seed(3))
    x = ds.images(classes)
    assert one_sprite_share(x) == 1.0
    # two sprites in one image: apart (posX in the left and the right third) they are two pieces
    left, right = classes[:50].clone(), classes[50:100].clone()
    left[:, 4], right[:, 4] = 2, 29
    left[:, 2] = right[:, 2] = 0                  # the smallest scale, so that they cannot touch
    both = (ds.images(left) + ds.images(right)).clamp(max=1)
    assert ink_blobs(both).tolist() == [2] * 50
    assert one_sprite_share(both) == 0.0


def test_ink_blobs_refuses_bad_input():
    from course_lib.quality import ink_blobs

    with pytest.raises(ValueError, match="N×C×H×W"):
        ink_blobs(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="threshold"):
        ink_blobs(torch.zeros(1, 1, 8, 8), threshold=0)
    with pytest.raises(ValueError, match="min_pixels"):
        ink_blobs(torch.zeros(1, 1, 8, 8), min_pixels=0)


def test_grey_share_of_real_and_blurred_sprites():
    from course_lib.data import DSprites
    from course_lib.quality import grey_share

    ds = DSprites()
    x = ds.images(ds.sample_classes(64, torch.Generator().manual_seed(0)))
    assert grey_share(x) == 0.0                       # dSprites pixels are exactly 0 or 1
    blurred = [grey_share(torch.nn.functional.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False))
               for k in (3, 5, 9)]
    assert 0.1 < blurred[0] < blurred[1] < blurred[2] <= 1.0


def test_grey_share_bad_inputs():
    from course_lib.quality import grey_share

    with pytest.raises(ValueError, match=r"intensities in \[0, 1\]"):
        grey_share(torch.tensor([[[[-2.0, 3.0]]]]))
    with pytest.raises(ValueError, match="low < high"):
        grey_share(torch.rand(1, 1, 2, 2), low=0.9, high=0.1)


class ShapeStub(torch.nn.Module):
    """Shape logits 10·(the first three pixels); the other heads are zeros."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def logits(self, x):
        flat = x.flatten(1)
        return (10 * flat[:, :3],) + tuple(torch.zeros(len(x), n) for n in SIZES[1:])


def test_shape_named_share_by_hand():
    from course_lib.quality import shape_named_share, shape_probabilities

    x = torch.zeros(4, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0          # logits (10, 0, 0): p = e¹⁰ / (e¹⁰ + 2) ≈ 0.99991 → named
    x[1, 0, 0, 1] = 0.3          # logits (0, 3, 0):  p = e³ / (e³ + 2) ≈ 0.909 → named
    x[2, 0, 1, 0] = 0.25         # logits (0, 0, 2.5): p = e^2.5 / (e^2.5 + 2) ≈ 0.859 → not named
    # image 3: logits (0, 0, 0), p = 1/3 → not named
    p = shape_probabilities(ShapeStub(), x, batch_size=3)
    np.testing.assert_allclose(p.max(1).values.numpy(),
                               [np.exp(10) / (np.exp(10) + 2), np.exp(3) / (np.exp(3) + 2),
                                np.exp(2.5) / (np.exp(2.5) + 2), 1 / 3], rtol=1e-5)
    assert shape_named_share(ShapeStub(), x) == pytest.approx(0.5)
    assert shape_named_share(ShapeStub(), x, threshold=0.85) == pytest.approx(0.75)
    assert shape_named_share(ShapeStub(), x, threshold=0.3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        shape_named_share(ShapeStub(), x, threshold=0.0)


def test_named_shape_shares_split_the_named_share_by_shape():
    from course_lib.quality import named_shape_shares, shape_named_share

    x = torch.zeros(5, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0          # a square, p ≈ 0.9999
    x[1, 0, 0, 0] = 0.5          # a square, p = e⁵ / (e⁵ + 2) ≈ 0.987
    x[2, 0, 1, 0] = 1.0          # a heart
    x[3, 0, 0, 1] = 0.2          # an ellipse at p = e² / (e² + 2) ≈ 0.787: not named at 0.9
    shares = named_shape_shares(ShapeStub(), x)
    np.testing.assert_allclose(shares.numpy(), [2 / 5, 0, 1 / 5])
    assert shares.sum() == pytest.approx(shape_named_share(ShapeStub(), x))
    np.testing.assert_allclose(named_shape_shares(ShapeStub(), x, threshold=0.75).numpy(), [2 / 5, 1 / 5, 1 / 5])


def test_shape_kept_shares_by_hand():
    from course_lib.quality import shape_kept_shares

    x = torch.zeros(5, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0          # read as a square
    x[1, 0, 0, 0] = 1.0          # a square
    x[2, 0, 1, 0] = 1.0          # a heart
    x[3, 0, 0, 1] = 0.2          # an ellipse (argmax; how sure does not matter here)
    x[4, 0, 0, 0] = 1.0          # a square
    shapes = torch.tensor([0, 1, 2, 1, 0])   # right, wrong (an ellipse drawn as a square), right, right, right
    np.testing.assert_allclose(shape_kept_shares(ShapeStub(), x, shapes).numpy(), [4 / 5, 1, 1 / 2, 1])
    only_squares = shape_kept_shares(ShapeStub(), x[[0, 1]], torch.tensor([0, 0]))
    assert only_squares[:2].tolist() == [1.0, 1.0] and torch.isnan(only_squares[2:]).all()
    with pytest.raises(ValueError, match="one shape class per image"):
        shape_kept_shares(ShapeStub(), x, shapes[:4])
    with pytest.raises(ValueError, match="0, 1, 2"):
        shape_kept_shares(ShapeStub(), x, torch.tensor([0, 1, 2, 3, 0]))


def test_ink_centres_by_hand():
    from course_lib.quality import ink_centres

    x = torch.zeros(3, 1, 4, 5)
    x[0, 0, 1, 2] = 1.0                               # one pixel: row 1, column 2
    x[1, 0, 0, 0], x[1, 0, 3, 4] = 1.0, 3.0           # weights 1 at (0, 0), 3 at (3, 4): (9/4, 12/4)
    c = ink_centres(x)
    np.testing.assert_allclose(c[:2].numpy(), [[1.0, 2.0], [2.25, 3.0]])
    assert torch.isnan(c[2]).all()                    # a blank image has no centre
    from course_lib.data import DSprites

    ds = DSprites()
    classes = ds.sample_classes(20, torch.Generator().manual_seed(0))
    shifted = classes.clone()
    shifted[:, 4] = (shifted[:, 4] + 3).clamp(max=31)   # posX three classes to the right
    moved = ink_centres(ds.images(shifted))[:, 1] - ink_centres(ds.images(classes))[:, 1]
    # 32 posX classes span about 32 pixels: three classes move the centre about three pixels
    np.testing.assert_allclose(moved[classes[:, 4] < 29].numpy(), 3.0, atol=0.3)


def test_best_match_iou_by_hand():
    from course_lib.quality import best_match_iou

    bank = torch.zeros(2, 1, 4, 4)
    bank[0, 0, :2, :2] = 1          # 4 pixels
    bank[1, 0, 2:, :] = 1           # 8 pixels
    half = torch.zeros(1, 1, 4, 4)
    half[0, 0, :2, :2] = 0.5        # Σs = 2, overlap with bank[0] = 2: 2 / (2 + 4 − 2) = 0.5
    samples = torch.cat([bank[:1], torch.zeros(1, 1, 4, 4), half])
    got = best_match_iou(samples, bank, batch_size=2)
    assert torch.allclose(got, torch.tensor([1.0, 0.0, 0.5]))


def test_frechet_distance_with_covariances_that_do_not_commute_matches_scipy():
    # Tr((Σ1 Σ2)^½) by scipy's general matrix square root, on covariances that do not commute
    # (the diagonal closed forms cannot tell it from the wrong Tr(Σ1^½ Σ2^½))
    linalg = pytest.importorskip("scipy.linalg")
    from course_lib.quality import frechet_distance

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    cov1, cov2 = a @ a.T + 0.1 * torch.eye(6, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(6, dtype=torch.float64)
    assert not torch.allclose(cov1 @ cov2, cov2 @ cov1)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    cross = linalg.sqrtm(cov1.numpy() @ cov2.numpy())
    expected = float(((mu1 - mu2) ** 2).sum() + cov1.trace() + cov2.trace() - 2 * np.trace(cross).real)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-8)
    s1, s2 = (torch.from_numpy(linalg.sqrtm(c.numpy()).real) for c in (cov1, cov2))
    wrong = float(((mu1 - mu2) ** 2).sum() + cov1.trace() + cov2.trace() - 2 * (s1 @ s2).trace())
    assert abs(wrong - expected) > 0.1  # the test can tell the two formulas apart
    assert frechet_distance(mu1, cov1, mu1, cov1) == 0.0  # never a small negative number
