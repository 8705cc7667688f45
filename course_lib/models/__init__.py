"""Models of the course. Every model is a :class:`CourseModel`: it owns its loss terms and its
optimisers, so one training loop (``course_lib.train``) trains them all.

``build_model(name, **config)`` makes any registered model; ``MODELS`` lists them.
"""

from .base import MODELS, CourseModel, build_model, register
from .capacity import CapacityVAE
from .classifier import FactorClassifier
from .gan import GAN, InfoGAN, UnrolledGAN, UnrolledInfoGAN, parse_codes
from .hybrid import IDGAN, VAEGAN, VAEInfoGAN
from .nets import BurgessDecoder, BurgessEncoder
from .nets32 import Mnist32Decoder, Mnist32Encoder
from .tc import BetaTCVAE, CFactorVAE, FactorVAE
from .vae import VAE, Autoencoder, BetaVAE

__all__ = ["MODELS", "CourseModel", "build_model", "register", "BurgessEncoder",
           "BurgessDecoder", "Autoencoder", "VAE", "BetaVAE", "CapacityVAE", "GAN", "UnrolledGAN", "InfoGAN",
           "UnrolledInfoGAN", "parse_codes", "VAEGAN", "VAEInfoGAN", "IDGAN", "FactorClassifier",
           "Mnist32Encoder", "Mnist32Decoder", "BetaTCVAE", "FactorVAE", "CFactorVAE"]
