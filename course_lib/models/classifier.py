"""A classifier of dSprites factors: the feature space of the factor Fréchet distance
(``course_lib.quality``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import CourseModel, check_positive_int, register
from .nets import BurgessEncoder

#: factors the classifier predicts (colour has one value, so it is left out)
CLASSIFIED_FACTORS = ("shape", "scale", "orientation", "posX", "posY")


@register("factor_classifier")
class FactorClassifier(CourseModel):
    """Burgess-encoder trunk with one softmax head per dSprites factor.

    Trained on the training loop with a sampler that yields ``(images, classes)``
    (``DSprites.sampler(...)`` wrapped by :class:`LabelledSampler`).
    """

    def __init__(self, factor_sizes=(3, 6, 40, 32, 32), channels: int = 1):
        super().__init__()
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.channels = check_positive_int("channels", channels)
        self.net = BurgessEncoder(sum(self.factor_sizes), channels)

    def config(self):
        return {"factor_sizes": list(self.factor_sizes), "channels": self.channels}

    def features(self, x):
        """x N×C×64×64 → N×256 features (the layer the Fréchet distance uses)."""
        return self.net.features(x)

    def logits(self, x):
        return self.net(x).split(self.factor_sizes, dim=1)

    def loss_terms(self, batch, step=0):
        x, classes = batch
        targets = classes[:, -len(self.factor_sizes):]
        losses = [F.cross_entropy(lg, targets[:, k]) for k, lg in enumerate(self.logits(x))]
        loss = torch.stack(losses).sum()
        return {"loss": loss, **{f"ce_{n}": ce for n, ce in zip(CLASSIFIED_FACTORS, losses)}}

    @torch.no_grad()
    def accuracy(self, x, classes) -> dict[str, float]:
        """Per-factor accuracy on a labelled batch."""
        targets = classes[:, -len(self.factor_sizes):]
        return {n: float((lg.argmax(1) == targets[:, k]).float().mean())
                for k, (n, lg) in enumerate(zip(CLASSIFIED_FACTORS, self.logits(x)))}


class LabelledSampler:
    """Wraps a DSprites sampler so that ``sample`` returns ``(images, classes)``."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.device = sampler.device

    def sample(self, n, generator=None):
        return self.sampler.sample_with_classes(n, generator)

    def to(self, device) -> LabelledSampler:
        """The same labelled batches drawn on ``device``."""
        from ..data import sampler_on

        return LabelledSampler(sampler_on(self.sampler, device))
