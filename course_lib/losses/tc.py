"""The total-correlation decomposition of the KL term, estimated from one minibatch.

Source paper 003, eq. 9 (Chen et al., 2018): with n the index of a data point (p(n) = 1/N) and
q(z) = (1/N) Σ_n q(z|n) the aggregate posterior,

    E_p(n)[KL(q(z|n) ‖ p(z))] = KL(q(z, n) ‖ q(z) p(n))        (i)   index-code MI
                              + KL(q(z) ‖ Π_j q(z_j))          (ii)  total correlation (TC)
                              + Σ_j KL(q(z_j) ‖ p(z_j))        (iii) dimension-wise KL

Every term needs log q(z) and log q(z_j), sums over the whole data set. From a minibatch
{x_1..x_M} with samples z_i ~ q(z|x_i) they are estimated in two ways:

- minibatch weighted sampling (MWS, Chen et al. eq. S5 as published, the estimator of their
  main text): log q(z_i) ≈ log Σ_j q(z_i|x_j) − log(N·M). Compared with the plain batch
  average log (1/M) Σ_j q(z_i|x_j) every log-density is shifted by −log N, so the TC comes
  out (D − 1)·log N larger than the batch average's, the MI log N larger and the
  dimension-wise KL D·log N smaller (the sum is unchanged; so are the gradients, since the
  shifts are constants: :func:`mws_tc_offset`). The batch average itself is biased beyond
  these constants: it weights the sample's own posterior q(z_i|x_i) by 1/M where q(z) gives
  it 1/N. Where the posteriors are wide against the spread of the codes the own term is one
  of many comparable terms and the bias is small; where they are narrow (a trained dSprites
  model's are) the own term dominates, log q(z_i) is overstated by up to log(N/M), the MI
  is capped near log M and the TC comes out too large (tests/test_tc.py measures both cases).
- minibatch stratified sampling (MSS): the data set is split into two strata, the point x_i
  itself (probability 1/N) and the N − 1 others, represented by the other M − 1 points of the
  batch: q(z_i) ≈ (1/N) q(z_i|x_i) + (N − 1)/(N (M − 1)) Σ_{j≠i} q(z_i|x_j). This is an
  unbiased estimate of q(z_i) (a test enumerates every batch of a small data set). Chen et
  al.'s published weights differ, with the same expectation: with M′ = M − 1, the own term
  1/N, M′ − 1 of the others 1/M′ and one other (N − M′)/(N M′); the course gives the M − 1
  others one weight, so that no point of the batch is singled out. The log of an unbiased
  estimate is biased low (Jensen); for wide posteriors more so for the D-dimensional joint
  than for the 1-D marginals, which is why the TC comes out *negative* on a small batch, but
  for narrow ones the bias of the marginals can win and the TC comes out too large (the sign
  depends on the posteriors' width: tests/test_tc.py shows both).

The course's default is MSS (its logs carry no log N offsets), where Chen et al.'s main text
trains with MWS.

All densities are in nats. Memory: an M×M×D tensor (M = 4096, D = 10 is 670 MB in float32).
"""

from __future__ import annotations

import math
import numbers

import torch

ESTIMATORS = ("mss", "mws")
_LOG_2PI = math.log(2.0 * math.pi)


def _check_inputs(z, mu, logvar):
    for name, t in (("z", z), ("mu", mu), ("logvar", logvar)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape M×D, got {type(t).__name__}")
    if z.dim() != 2 or mu.shape != z.shape or logvar.shape != z.shape:
        raise ValueError(
            "z, mu and logvar must all have shape M×D (batch × latents); got "
            f"z {tuple(z.shape)}, mu {tuple(mu.shape)}, logvar {tuple(logvar.shape)}")


def check_estimator_inputs(batch_size: int, dataset_size, estimator: str) -> int:
    """Validate the estimator's options; returns N as an int. Raises ValueError/TypeError."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}: expected 'mss' (minibatch stratified "
                         "sampling) or 'mws' (minibatch weighted sampling)")
    if batch_size < 2:
        raise ValueError(
            f"the {estimator.upper()} estimator of q(z) needs a batch of at least 2 samples (it "
            f"estimates q(z_i) from the *other* points of the batch), got a batch of {batch_size}; "
            "use a larger batch (64 or more gives usable estimates)")
    if dataset_size is None:
        raise ValueError(
            f"the {estimator.upper()} estimator needs dataset_size, the number N of training "
            "images (e.g. len(DSprites()) == 737280): q(z) = (1/N) Σ_n q(z|n) is a mixture over "
            "the whole data set")
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, numbers.Real) \
            or not math.isfinite(dataset_size) or int(dataset_size) != dataset_size:
        raise TypeError(f"dataset_size must be a whole, finite number of images, got {dataset_size!r}")
    if dataset_size < batch_size:
        raise ValueError(
            f"dataset_size ({int(dataset_size)}) is smaller than the batch ({batch_size}): a "
            "batch is drawn from the data set, so N >= M; pass the size of the training set")
    return int(dataset_size)


def gaussian_log_density_matrix(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z_i,d | x_j) = log N(z_i,d; μ_j,d, σ²_j,d) for every pair (i, j) and latent d.

    Args:
        z, mu, logvar: M×D.
    Returns:
        M×M×D tensor (nats): entry [i, j, d] is the density of sample i under posterior j.
    """
    _check_inputs(z, mu, logvar)
    diff = z.unsqueeze(1) - mu.unsqueeze(0)                     # M×M×D
    inv_var = torch.exp(-logvar).unsqueeze(0)
    return -0.5 * (_LOG_2PI + logvar.unsqueeze(0) + diff.pow(2) * inv_var)


def _log_weights(m: int, n: int, estimator: str, like: torch.Tensor) -> torch.Tensor:
    """M×M matrix of log w_ij with q(z_i) ≈ Σ_j w_ij q(z_i|x_j)."""
    if estimator == "mws":
        return torch.full((m, m), -math.log(n * m), dtype=like.dtype, device=like.device)
    # MSS: the point itself stands for 1 of the N data points, the other M − 1 for the N − 1 rest.
    w_self = -math.log(n)
    w_other = math.log(n - 1) - math.log(n) - math.log(m - 1) if n > 1 else -math.inf
    w = torch.full((m, m), w_other, dtype=like.dtype, device=like.device)
    w.fill_diagonal_(w_self)
    return w


def log_qz(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
           estimator: str = "mss") -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch estimates of the aggregate posterior's log-density at each sample.

    Args:
        z: M×D samples, z_i ~ q(z|x_i).
        mu, logvar: M×D parameters of the M posteriors.
        dataset_size: N, the number of training points.
        estimator: "mss" or "mws" (see the module docstring).
    Returns:
        (log q(z_i), shape M; log q(z_i,d), shape M×D), nats.
    """
    _check_inputs(z, mu, logvar)
    m = z.shape[0]
    n = check_estimator_inputs(m, dataset_size, estimator)
    log_mat = gaussian_log_density_matrix(z, mu, logvar)        # M×M×D
    log_w = _log_weights(m, n, estimator, z)                    # M×M
    log_joint = torch.logsumexp(log_w + log_mat.sum(2), dim=1)              # M
    log_marginals = torch.logsumexp(log_w.unsqueeze(2) + log_mat, dim=1)    # M×D
    return log_joint, log_marginals


def tc_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                     estimator: str = "mss") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three terms of source paper 003's eq. 9, estimated from one minibatch.

    - index-code MI  ≈ mean_i [log q(z_i|x_i) − log q(z_i)]
    - TC             ≈ mean_i [log q(z_i) − Σ_d log q(z_i,d)]
    - dimension-wise KL ≈ mean_i Σ_d [log q(z_i,d) − log p(z_i,d)],  p = N(0, 1)

    Their sum is the Monte-Carlo estimate mean_i [log q(z_i|x_i) − log p(z_i)] of the KL term,
    whatever the estimator. Differentiable (use them in a loss).

    Args:
        z: M×D samples, z_i ~ q(z|x_i) (reparameterised).
        mu, logvar: M×D posterior parameters.
        dataset_size: N, the number of training points (e.g. 737280 for dSprites).
        estimator: "mss" (minibatch stratified sampling, default) or "mws" (minibatch weighted
            sampling as published: its TC carries a constant +(D − 1)·log N).
    Returns:
        (mi, tc, dw_kl): three scalar tensors, nats.
    """
    log_joint, log_marginals = log_qz(z, mu, logvar, dataset_size, estimator)
    log_q_cond = (-0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))).sum(1)
    log_prior = (-0.5 * (_LOG_2PI + z.pow(2))).sum(1)
    mi = (log_q_cond - log_joint).mean()
    tc = (log_joint - log_marginals.sum(1)).mean()
    dw_kl = (log_marginals.sum(1) - log_prior).mean()
    return mi, tc, dw_kl


def mws_tc_offset(num_latents: int, dataset_size: int) -> float:
    """The constant (D − 1)·log N (nats) between published MWS's TC and the plain batch
    average's (which is itself biased where the posteriors are narrow: see the module)."""
    return (num_latents - 1) * math.log(dataset_size)


def gaussian_total_correlation(cov: torch.Tensor) -> torch.Tensor:
    """Closed-form TC of N(0, Σ): ½ (Σ_j log Σ_jj − log det Σ), nats. ``cov``: D×D."""
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square D×D matrix, got shape {tuple(cov.shape)}")
    return 0.5 * (torch.log(torch.diagonal(cov)).sum() - torch.logdet(cov))
