"""Sample quality without downloads: a Fréchet distance in the feature space of a dSprites
factor classifier that the course trains itself.

The Fréchet Inception Distance (Heusel et al., 2017) compares Gaussians fitted to Inception
features of real and generated images. Inception's weights cannot be downloaded here, and
they were never meant for binary sprites anyway, so the course uses the same distance in the
256-d penultimate layer of a small classifier trained to predict the dSprites factors
(shape, scale, orientation, posX, posY) from an image. We call it the **factor Fréchet
distance** (FFD); its values are comparable only between runs that use the same classifier
and the same number of images: estimated from N images per set it is biased upwards, by
roughly 1/N (two samples of one 32-d Gaussian: about 10 at N = 64, 2.2 at N = 256, 0.6 at
N = 1,000), which is why the notebooks print the distance between two sets of real images of
the same size as the floor.

Three simpler rulers read what a Fréchet distance mixes together:

* :func:`shape_named_share`: the share of images whose shape (square, ellipse, heart) the
  classifier names with probability at least 0.9. Real sprites score near 1; a blob that could
  be any of the three, or a dot, scores low.
* :func:`grey_share`: the share of a set's *inked* pixels (intensity ≥ 0.1) that are grey
  (intensity < 0.9). dSprites pixels are exactly 0 or 1, so real images score 0; a blurred
  sprite has a grey rim, and a smear is grey all over.
* :func:`one_sprite_share`: the share of images whose ink (intensity ≥ 0.5) is one connected
  piece. Every real image is one sprite; a renderer that sometimes draws two sprites, or a
  sprite and a fragment, scores lower, which neither of the other rulers sees.

The same classifier reads generated images: :func:`predict_factors` labels them, and
:func:`traversal_factor_curves` with :func:`traversal_agreement` ask whether two renderers of
one code (a β-VAE decoder and ID-GAN's generator, say) move the same factors along each code
dimension.
"""

from __future__ import annotations

import numpy as np
import torch

from .models.classifier import CLASSIFIED_FACTORS, FactorClassifier, LabelledSampler

__all__ = ["CLASSIFIED_FACTORS", "FactorClassifier", "LabelledSampler", "best_match_iou", "gaussian_stats",
           "frechet_distance", "feature_stats", "factor_frechet_distance", "predict_factors",
           "shape_probabilities", "named_shape_shares", "shape_named_share", "shape_kept_shares", "grey_share",
           "ink_blobs", "one_sprite_share", "ink_centres",
           "sprite_rulers",
           "traversal_factor_curves", "traversal_agreement"]


def gaussian_stats(features: torch.Tensor):
    """Mean (F) and covariance (F×F, unbiased) of N×F features, in float64."""
    f = features.detach().double().flatten(1)
    if len(f) < 2:
        raise ValueError(f"need at least 2 samples to fit a Gaussian, got {len(f)}")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (len(f) - 1)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein) distance² between N(μ1, Σ1) and N(μ2, Σ2):
    ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^{½} Σ2 Σ1^{½})^{½}).
    """
    s1 = _sqrtm_psd(cov1)
    cross = _sqrtm_psd(s1 @ cov2 @ s1)
    d = float((mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * torch.trace(cross))
    return max(0.0, d)  # a distance: rounding can leave about -1e-6 for identical sets


@torch.no_grad()
def _per_batch(classifier, images: torch.Tensor, read, batch_size: int) -> torch.Tensor:
    """``read(batch)`` for batches of ``images`` on the classifier's device (in eval mode),
    concatenated on the CPU."""
    classifier.eval()
    device = next(classifier.parameters()).device
    return torch.cat([read(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)])


def feature_stats(classifier: FactorClassifier, images: torch.Tensor, batch_size: int = 1024):
    """Gaussian statistics of the classifier's features over ``images`` (N×C×64×64)."""
    return gaussian_stats(_per_batch(classifier, images, classifier.features, batch_size))


def factor_frechet_distance(classifier: FactorClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The factor Fréchet distance between two image sets (N×C×64×64, values in [0, 1])."""
    return frechet_distance(*feature_stats(classifier, real), *feature_stats(classifier, fake))


def predict_factors(classifier: FactorClassifier, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The classifier's most likely class of every factor: a CPU int64 tensor N×K (K = 5,
    in the order of ``CLASSIFIED_FACTORS``), ready for :func:`course_lib.metrics.mig`."""
    return _per_batch(classifier, images,
                      lambda x: torch.stack([lg.argmax(1) for lg in classifier.logits(x)], 1), batch_size)


def shape_probabilities(classifier: FactorClassifier, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The classifier's probability of each shape for every image: CPU float tensor N×3
    (square, ellipse, heart; rows sum to 1)."""
    return _per_batch(classifier, images, lambda x: classifier.logits(x)[0].softmax(1), batch_size)


def named_shape_shares(classifier: FactorClassifier, images: torch.Tensor, threshold: float = 0.9) -> torch.Tensor:
    """The share of ``images`` that the classifier names a square, an ellipse and a heart with
    probability ≥ ``threshold``: a CPU float64 tensor of 3 values, summing to
    :func:`shape_named_share` (real dSprites: about a third each). A set of blobs that the
    classifier confidently calls one shape shows up here as one large share."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if len(images) == 0:
        raise ValueError("the shape rulers need at least one image")
    best = shape_probabilities(classifier, images).max(1)
    named = best.indices[best.values >= threshold]
    return torch.bincount(named, minlength=3).double() / len(images)


def shape_named_share(classifier: FactorClassifier, images: torch.Tensor, threshold: float = 0.9) -> float:
    """The share of ``images`` (N×C×64×64) whose most likely shape has probability ≥ ``threshold``
    under the classifier: 1 when every image is a clear square, ellipse or heart for it, 0 when
    it hesitates on every image. Higher is better (real dSprites: close to 1). A classifier
    can be sure of images unlike any sprite (a blob it calls a heart): read it with
    :func:`named_shape_shares` and the Fréchet distance."""
    return float(named_shape_shares(classifier, images, threshold).sum())


def shape_kept_shares(classifier: FactorClassifier, images: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """How often the classifier's most likely shape of each image is ``shapes`` (the shape
    class, 0 square, 1 ellipse, 2 heart, of the image each one renders: a reconstruction's input,
    a rendering of an image's code). A CPU float64 tensor of 4 values: the share over all images,
    then over the images of each true shape (NaN for a shape with none). Chance is 1/3; a renderer
    that draws one shape for everything keeps 1 for that shape and 0 for the others."""
    shapes = torch.as_tensor(shapes).cpu().long()
    if shapes.shape != (len(images),):
        raise ValueError(f"shapes must hold one shape class per image: expected shape ({len(images)},), "
                         f"got {tuple(shapes.shape)}")
    if len(images) == 0:
        raise ValueError("the shape rulers need at least one image")
    if shapes.min() < 0 or shapes.max() > 2:
        raise ValueError(f"shape classes are 0, 1, 2 (square, ellipse, heart); got values from "
                         f"{int(shapes.min())} to {int(shapes.max())}")
    kept = (shape_probabilities(classifier, images).argmax(1) == shapes).double()
    per_shape = [kept[shapes == k].mean() if (shapes == k).any() else torch.tensor(float("nan"), dtype=kept.dtype)
                 for k in range(3)]
    return torch.stack([kept.mean(), *per_shape])


@torch.no_grad()
def best_match_iou(samples: torch.Tensor, bank: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """For each sample (N×1×64×64, intensities in [0, 1]) its soft intersection over union
    with the best-matching binary image of ``bank`` (M×1×64×64):
    max_j Σ s·x_j / (Σ s + Σ x_j − Σ s·x_j). 1: a copy of a real image; 0: nothing in common
    (an empty image scores 0). Returns N values."""
    bank = bank.flatten(1)
    bank_area = bank.sum(1)
    out = []
    for s in samples.flatten(1).split(batch_size):
        overlap = s @ bank.T
        union = s.sum(1, keepdim=True) + bank_area - overlap
        out.append((overlap / union.clamp_min(1e-6)).max(1).values)
    return torch.cat(out)


def grey_share(images: torch.Tensor, low: float = 0.1, high: float = 0.9) -> float:
    """The share of inked pixels that are grey, over a whole set of images.

    A pixel is *inked* when its intensity p ≥ ``low`` and *grey* when ``low`` ≤ p < ``high``;
    the result is (number of grey pixels) / (number of inked pixels), all images pooled, in
    [0, 1]. 0 for binary images such as real dSprites; a blurred sprite's grey rim raises it,
    and a smear that never reaches ``high`` gives 1. Lower is better. NaN when no pixel of
    the set is inked (blank images have no sprite to judge).

    Args:
        images: N×C×H×W intensities in [0, 1] (probabilities, not logits).
    """
    if not 0 < low < high <= 1:
        raise ValueError(f"expected 0 < low < high <= 1, got low={low!r}, high={high!r}")
    p = torch.as_tensor(images).detach()
    if p.numel() and (float(p.min()) < 0 or float(p.max()) > 1):
        raise ValueError("grey_share expects intensities in [0, 1] (apply a sigmoid to logits first)")
    inked = int((p >= low).sum())
    grey = int(((p >= low) & (p < high)).sum())
    return grey / inked if inked else float("nan")


def ink_blobs(images: torch.Tensor, threshold: float = 0.5, min_pixels: int = 4) -> torch.Tensor:
    """The number of separate pieces of ink in every image: N int64 on the CPU.

    A pixel is ink when its intensity (channels summed) is at least ``threshold``; two ink
    pixels belong to one piece when a path of ink pixels joins them, each step to one of the
    8 neighbours. Pieces of fewer than ``min_pixels`` pixels (speckles) are not counted. A real
    dSprites image has exactly one piece (the smallest sprite has more than 50 ink pixels); a
    blank image has 0, and an image with two sprites, or a sprite and a fragment, has 2 or more.

    Uses :func:`scipy.ndimage.label` on the whole stack at once, with a structuring element
    that joins the 8 neighbours within an image and nothing across images.
    """
    from scipy import ndimage

    if not 0 < threshold <= 1:
        raise ValueError(f"expected 0 < threshold <= 1, got {threshold!r}")
    if int(min_pixels) != min_pixels or min_pixels < 1:
        raise ValueError(f"min_pixels must be a positive whole number, got {min_pixels!r}")
    p = torch.as_tensor(images).detach().float().cpu()
    if p.dim() != 4:
        raise ValueError(f"expected N×C×H×W images, got shape {tuple(p.shape)}")
    ink = (p.sum(1) >= threshold).numpy()                                     # N×H×W
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True                                                      # 8 neighbours, same image
    labels, count = ndimage.label(ink, structure=structure)
    if count == 0:
        return torch.zeros(len(ink), dtype=torch.int64)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    first = ndimage.find_objects(labels)                                     # one slice tuple per piece
    image_of = np.array([sl[0].start for sl in first])
    kept = image_of[sizes >= min_pixels]
    return torch.from_numpy(np.bincount(kept, minlength=len(ink)).astype(np.int64))


def one_sprite_share(images: torch.Tensor, threshold: float = 0.5, min_pixels: int = 4) -> float:
    """The share of images with exactly one piece of ink (:func:`ink_blobs`): 1 for real
    dSprites; lower when a renderer draws two sprites, fragments, or nothing."""
    return float((ink_blobs(images, threshold, min_pixels) == 1).double().mean())


def ink_centres(images: torch.Tensor) -> torch.Tensor:
    """The intensity-weighted centre (row, column), in pixels from the top-left pixel's centre,
    of every image: N×2 float64 on the CPU; NaN for a blank image. Comparing the centres of
    images and of their reconstructions says whether a model puts the sprite where it was."""
    p = torch.as_tensor(images).detach().double().cpu().sum(1)          # N×H×W (channels summed)
    rows = torch.arange(p.shape[1], dtype=p.dtype)
    cols = torch.arange(p.shape[2], dtype=p.dtype)
    mass = p.sum((1, 2))
    centre = torch.stack([(p.sum(2) * rows).sum(1), (p.sum(1) * cols).sum(1)], 1) / mass[:, None]
    return torch.where(mass[:, None] > 0, centre, torch.full_like(centre, float("nan")))


def sprite_rulers(classifier: FactorClassifier, real: torch.Tensor, images: torch.Tensor,
                  threshold: float = 0.9) -> dict[str, float]:
    """The rulers of a set of ``images`` against ``real`` images: ``{"ffd", "shape_named",
    "grey", "one_sprite"}`` (:func:`factor_frechet_distance`, :func:`shape_named_share`,
    :func:`grey_share`, :func:`one_sprite_share`)."""
    return {"ffd": factor_frechet_distance(classifier, real, images),
            "shape_named": shape_named_share(classifier, images, threshold),
            "grey": grey_share(images), "one_sprite": one_sprite_share(images)}


def traversal_factor_curves(classifier: FactorClassifier, traversals: torch.Tensor,
                            batch_size: int = 1024) -> torch.Tensor:
    """The factors of every image of a set of traversals, as the classifier reads them.

    Args:
        classifier: a trained factor classifier (anything with ``logits(x)`` returning one
            ``N×classes_k`` tensor per factor, and parameters).
        traversals: ``[..., V, C, 64, 64]``: any number of traversals of V >= 2 images each
            (for example starts × code dimensions × values).

    Returns:
        ``[..., V, K]`` float tensor on the CPU: for every image and factor k the expected
        predicted class ``Σ_c c · p(c | x)`` divided by the number of classes of factor k, so
        that factors with 3 and with 40 classes share one scale in [0, 1). A choice, stated:
        the expected class reads every factor as ordered, which shape (a category) and
        orientation (a circle) are not: an image the classifier finds half square, half heart
        reads like a sure ellipse, and an orientation that wraps from class 39 to 0 reads as a
        jump. :func:`traversal_agreement` compares two renderers through the same reading, so
        the distortion is shared; it is not a measure of the factors themselves.
    """
    if traversals.dim() < 5:
        raise ValueError(f"traversals must have shape [..., V, C, H, W] (at least one traversal of "
                         f"V >= 2 images); got shape {tuple(traversals.shape)}")
    if traversals.shape[-4] < 2:
        raise ValueError(f"each traversal needs at least 2 images (V >= 2), got V = {traversals.shape[-4]}")

    def expected_classes(x):
        return torch.stack([(lg.softmax(1) @ torch.arange(lg.shape[1], device=lg.device, dtype=lg.dtype))
                            / lg.shape[1] for lg in classifier.logits(x)], 1)

    flat = traversals.reshape(-1, *traversals.shape[-3:])
    return _per_batch(classifier, flat, expected_classes, batch_size).reshape(*traversals.shape[:-3], -1)


def traversal_agreement(reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """How alike two renderers' traversals of the same codes are, dimension by dimension.

    Args:
        reference, other: factor curves ``[S, D, V, K]`` from :func:`traversal_factor_curves`
            of two renderers (say a β-VAE decoder and a GAN generator) for the same S start
            codes, each of the D code dimensions moved over the same V values.

    Returns:
        ``[D, D]`` float64 matrix whose entry ``[j, i]`` is the correlation between ``other``'s
        traversal of dimension j and ``reference``'s traversal of dimension i, averaged over the
        S starts. A traversal is summarised by its K factor curves, each centred over the V
        values and all K concatenated, so the correlation is 1 when the same factors move in
        the same direction and proportion, 0 when the changes are unrelated (or one traversal
        moves nothing), and −1 when they are reversed. Dimension j keeps its meaning in ``other``
        when ``[j, j]`` is the largest entry of row j.
    """
    reference = torch.as_tensor(reference, dtype=torch.float64)
    other = torch.as_tensor(other, dtype=torch.float64)
    if reference.dim() != 4 or reference.shape != other.shape:
        raise ValueError(f"expected two factor-curve tensors [S, D, V, K] of the same shape, got "
                         f"{tuple(reference.shape)} and {tuple(other.shape)}")

    def summary(curves):
        centred = curves - curves.mean(2, keepdim=True)
        return torch.nn.functional.normalize(centred.transpose(2, 3).flatten(2), dim=2)  # S×D×(K·V)

    return (summary(other) @ summary(reference).transpose(1, 2)).mean(0)
