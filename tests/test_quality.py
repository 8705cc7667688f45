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
