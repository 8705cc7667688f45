"""Data sets of the course: procedural dSprites (and the original npz), toys, MNIST."""

from .dsprites import (DSprites, DSpritesSampler, SamplerDeviceWarning, TensorSampler, export_npz,
                       sampler_on)
from .toy import Coverage, RingOfGaussians
from .mnist import load_mnist

__all__ = ["DSprites", "DSpritesSampler", "TensorSampler", "export_npz", "sampler_on",
           "SamplerDeviceWarning", "RingOfGaussians", "Coverage",
           "load_mnist"]
