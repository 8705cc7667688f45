"""Data sets of the course: procedural dSprites (and the original npz), toys, MNIST."""

from .dsprites import DSprites, DSpritesSampler, SamplerDeviceWarning, TensorSampler, export_npz, sampler_on
from .mnist import load_mnist
from .toy import Coverage, RingOfGaussians

__all__ = ["DSprites", "DSpritesSampler", "TensorSampler", "export_npz", "sampler_on",
           "SamplerDeviceWarning", "RingOfGaussians", "Coverage",
           "load_mnist"]
