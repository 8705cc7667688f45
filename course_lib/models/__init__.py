"""Models of the course. Every model is a :class:`CourseModel`: it owns its loss terms and its
optimisers, so one training loop (``course_lib.train``) trains them all.

``build_model(name, **config)`` makes any registered model; ``MODELS`` lists them.
"""

from .base import MODELS, CourseModel, build_model, register
from .nets import BurgessDecoder, BurgessEncoder
from .vae import VAE, Autoencoder, BetaVAE
from .nets32 import Mnist32Decoder, Mnist32Encoder
from .tc import BetaTCVAE, CFactorVAE, FactorVAE
from .hybrid import IDGAN, VAEGAN, VAEInfoGAN
from .classifier import FactorClassifier
from .capacity import CapacityVAE
from .gan import GAN, InfoGAN, UnrolledGAN, UnrolledInfoGAN, parse_codes

__all__ = ["MODELS", "CourseModel", "build_model", "register", "BurgessEncoder",
           "BurgessDecoder", "Autoencoder", "VAE", "BetaVAE", "CapacityVAE", "GAN", "UnrolledGAN", "InfoGAN",
           "UnrolledInfoGAN", "parse_codes", "VAEGAN", "VAEInfoGAN", "IDGAN", "FactorClassifier",
           "Mnist32Encoder", "Mnist32Decoder", "BetaTCVAE", "FactorVAE", "CFactorVAE"]
