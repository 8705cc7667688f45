"""Disentanglement metrics: pure functions of (representation, factors), plus a thin encoding layer.

Conventions (all metrics):

- ``codes`` is ``[N, D]`` float (N samples, D code dimensions), ``factors`` is ``[N, K]``
  integer class indices. This is batch-first; disentanglement_lib passes ``[D, N]`` and
  ``[K, N]`` - transpose its arrays before calling these functions.
- NumPy arrays and torch tensors are accepted; results are NumPy / Python floats.
- Mutual informations and entropies are in nats.
- Metrics that must *generate* data with a factor held fixed (FactorVAE score, β-VAE score) take
  ``codes_of(classes) -> codes`` and ``factor_sizes`` instead of a fixed sample; see
  :func:`codes_of_model` to wrap a model and a data set, and :mod:`.synthetic` for
  representations with a known answer.
- Bad input (different lengths, NaN, non-integer factors, too few samples, counts or seeds
  that are not integers - never rounded or truncated -, inputs that overflow the computation)
  raises ValueError with what was expected; a factor with a single value is skipped and named
  in the result.

Modules: :mod:`.mig` (discrete MIG), :mod:`.mig_sampled` (Chen et al.'s sampled MIG),
:mod:`.factor_vae`, :mod:`.beta_vae`, :mod:`.dci`, :mod:`.sap`, :mod:`.encode`, :mod:`.synthetic`.
"""

from .beta_vae import BetaVAEResult, beta_vae_score
from .dci import DCIResult, dci
from .encode import Encoded, codes_of_model, encode_dataset, encode_images
from .factor_vae import FactorVAEResult, factor_vae_score
from .mig import MIGResult, discretize, factor_entropy, mig, mutual_info_matrix
from .mig_sampled import mig_sampled, sampled_mutual_info
from .sap import SAPResult, sap
from .synthetic import SyntheticRepresentation, grid_classes, synthetic_representation

__all__ = [
    "BetaVAEResult",
    "DCIResult",
    "Encoded",
    "FactorVAEResult",
    "MIGResult",
    "SAPResult",
    "SyntheticRepresentation",
    "beta_vae_score",
    "codes_of_model",
    "dci",
    "discretize",
    "encode_dataset",
    "encode_images",
    "factor_vae_score",
    "factor_entropy",
    "grid_classes",
    "mig",
    "mig_sampled",
    "mutual_info_matrix",
    "sampled_mutual_info",
    "sap",
    "synthetic_representation",
]
