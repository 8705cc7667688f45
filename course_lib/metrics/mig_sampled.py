"""Mutual Information Gap, the sampled estimator of Chen et al. (2018, β-TCVAE paper).

Chen et al. do not bin the posterior means: they use the whole encoder distribution
``q(z|x) = N(mu(x), diag exp(logvar(x)))`` over the data set ``{x_n}`` (n = 1..N), with the
aggregate posterior ``q(z_j) = 1/N sum_n q(z_j | x_n)`` and, for a factor value v,
``q(z_j | v_k = v) = 1/N_v sum_{n: v_k(n) = v} q(z_j | x_n)`` (source paper 003, eq. 5). Then

    I(z_j; v_k) = H(z_j) - H(z_j | v_k),
    H(z_j)       = -E_{x ~ data, z ~ q(z|x)} [ log q(z_j) ],
    H(z_j | v_k) = -E_{x ~ data, z ~ q(z|x)} [ log q(z_j | v_k(x)) ],

both expectations estimated with the same S Monte-Carlo samples (common random numbers, so the
difference has low variance), and every ``log q`` a log-sum-exp over all N data points. The
factor entropies are ``H(v_k) = log |V_k|`` (exact for a full grid such as dSprites); MIG is then
the mean normalised gap of source paper 003's eq. 7.

Why it differs from the discrete estimator (:func:`course_lib.metrics.mig`):

- **Noise counts.** The histogram looks at posterior *means* only and is blind to scale: a
  latent whose means move by 1e-3 while its posterior standard deviation is 1 is stretched
  over all 20 bins and can look fully informative. The sampled MI sees that q(z_j|x) barely
  moves relative to its noise and gives it almost no information. Collapsed (prior-like)
  latents therefore score near zero here but not necessarily in the histogram.
- **No binning ceiling.** A sharp code for a factor with more values than bins (orientation
  has 40, position 32) can reach ``log |V_k|`` here, but only ``log 20`` (or less) with bins.
- **Different biases.** The plug-in histogram MI is biased upward by about
  ``(bins - 1)(|V_k| - 1) / (2N)`` nats; the sampled one has Monte-Carlo noise of order
  ``1/sqrt(S)`` and, with sharp posteriors, treats each data point as identifiable (a code that
  is an injective function of x carries information about every factor even if it is "random").

Cost: ``S × N × D`` Gaussian log-densities (for S = 10,000 samples on all 737,280 dSprites images
with D = 10, 7e10 of them: seconds on a GPU, many minutes on a CPU). Work is done in blocks of
at most ``chunk_size`` (sample, data point) pairs, so memory stays bounded (no N×N matrix).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ._checks import check_codes, check_count, check_factors, compact_labels, make_generator
from .mig import MIGResult, factor_entropy, gap_scores

_LOG_2PI = math.log(2 * math.pi)
VARIANTS = ("all_factors", "chen2018")


def _as_tensor(x, device, dtype) -> torch.Tensor:
    return torch.as_tensor(x, dtype=dtype, device=device)


def _span(x) -> str:
    return f"[{float(x.min()):.4g}, {float(x.max()):.4g}]"


def check_posterior_range(mu: np.ndarray, logvar: np.ndarray, dtype: torch.dtype) -> None:
    """Raise ValueError when ``mu`` or ``exp(±logvar / 2)`` ``[N, D]`` cannot be held in ``dtype``.

    The estimator needs the means, the standard deviations ``exp(logvar / 2)`` and their inverses
    as finite numbers of the compute dtype: ``|mu| <= finfo(dtype).max`` and
    ``|logvar| < 2 * log(finfo(dtype).max)`` (about 177 for float32, 1419 for float64).
    """
    finfo = torch.finfo(dtype)
    name = str(dtype).replace("torch.", "")
    if np.abs(mu).max() > finfo.max:
        raise ValueError(
            f"mu spans {_span(mu)}, beyond what {name} can hold (|mu| <= {finfo.max:.3g}); "
            "expected posterior means of a moderate size: rescale them or pass dtype=torch.float64"
        )
    limit = 2 * math.log(finfo.max)
    if np.abs(logvar).max() >= limit:
        raise ValueError(
            f"logvar spans {_span(logvar)}; in {name}, exp(logvar / 2) or its inverse overflows "
            f"unless |logvar| < {limit:.1f}: expected log-variances (not variances or "
            "precisions) of a moderate size, or pass dtype=torch.float64"
        )


def _check_finite(x: torch.Tensor, what: str, mu: np.ndarray, logvar: np.ndarray,
                  dtype: torch.dtype) -> None:
    """ValueError naming ``what`` when ``x`` holds NaN or infinity (an overflow in ``dtype``)."""
    if not bool(torch.isfinite(x).all()):
        name = str(dtype).replace("torch.", "")
        raise ValueError(
            f"{what} overflowed in {name} (mu spans {_span(mu)}, logvar spans {_span(logvar)}); "
            "expected means and log-variances on a moderate scale: rescale the codes, or pass "
            "dtype=torch.float64"
        )


def sampled_mutual_info(
    mu,
    logvar,
    factors,
    *,
    n_samples: int = 10_000,
    chunk_size: int = 2**21,
    seed: int = 0,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Sampled ``I(z_j; v_k)`` ``[D, K]`` and ``H(z_j)`` ``[D]`` in nats (see the module docstring).

    Args:
        mu, logvar: ``[N, D]`` posterior means and log-variances over the whole data set.
        factors: ``[N, K]`` integer factors of the same N data points.
        n_samples: S, number of Monte-Carlo samples, one ``z ~ q(z|x)`` each; the data points
            are drawn stratified (each point ``S // N`` times, the rest without replacement).
        chunk_size: most (sample, data point) pairs held in memory at once.
        seed, generator: randomness (a CPU ``torch.Generator``; ``seed`` is used when it is None).
        device: where to compute (default: ``mu``'s device when it is a tensor, else CPU).
        dtype: compute dtype; log-sum-exps are stabilised per block, float32 is accurate to ~1e-6.

    Raises:
        ValueError: bad shapes, NaN or infinite inputs, counts that are not integers (2.5 is
            refused, never truncated), or inputs that overflow the compute dtype (huge means,
            ``|logvar|`` above about 177 in float32): the message gives the ranges found and
            what is expected, instead of a NaN result.
    """
    m = check_codes(mu, "mu")
    lv = check_codes(logvar, "logvar")
    f = check_factors(factors)
    if m.shape != lv.shape or m.shape[0] != f.shape[0]:
        raise ValueError(
            f"mu {m.shape}, logvar {lv.shape} and factors {f.shape} must have the same number of "
            "rows N, and mu and logvar the same shape [N, D]"
        )
    n_samples = check_count(n_samples, "n_samples", 2)
    chunk_size = check_count(chunk_size, "chunk_size", 1)
    check_posterior_range(m, lv, dtype)
    if device is None:
        device = mu.device if isinstance(mu, torch.Tensor) else "cpu"
    gen = make_generator(generator, seed)
    n, d = m.shape
    k = f.shape[1]
    labels = np.stack([compact_labels(f[:, i])[0] for i in range(k)], axis=1)

    # Stratified draw of S data points: every point S // N times, the remainder without
    # replacement (S < N: a random subset).
    reps, rest = divmod(n_samples, n)
    sample_idx = torch.cat([torch.arange(n).repeat(reps), torch.randperm(n, generator=gen)[:rest]])
    s_total = sample_idx.numel()
    eps = torch.randn(s_total, d, generator=gen, dtype=torch.float64)

    mu_t = _as_tensor(m, device, dtype)
    lv_t = _as_tensor(lv, device, dtype)
    inv_std = torch.exp(-0.5 * lv_t)  # [N, D]
    log_norm = -0.5 * lv_t - 0.5 * _LOG_2PI  # [N, D]
    lab_t = torch.as_tensor(labels, device=device)
    # group sizes N_v for each factor value, gathered per sample below
    counts = [torch.bincount(lab_t[:, i]) for i in range(k)]

    idx_dev = sample_idx.to(device)
    z = (mu_t[idx_dev].double() + torch.exp(0.5 * lv_t[idx_dev].double()) * eps.to(device)).to(dtype)
    _check_finite(z, "the samples z = mu + exp(logvar / 2) * eps", m, lv, dtype)
    s_lab = lab_t[idx_dev]  # [S, K]

    # Blocks of at most chunk_size (sample, data point) pairs: long along the data for large N,
    # long along the samples for a small data set.
    n_block = max(1, min(n, chunk_size // 256))
    s_block = max(1, min(s_total, chunk_size // n_block))
    sum_log_q = torch.zeros(d, dtype=torch.float64, device=device)  # sum_s log q(z_sj)
    sum_log_qv = torch.zeros(d, k, dtype=torch.float64, device=device)  # sum_s log q(z_sj | v_k(s))
    for s0 in range(0, s_total, s_block):
        zs = z[s0 : s0 + s_block]  # [s, D]
        ls = s_lab[s0 : s0 + s_block]  # [s, K]
        acc = torch.full((zs.shape[0], d, k + 1), -math.inf, dtype=dtype, device=device)
        for n0 in range(0, n, n_block):
            sl = slice(n0, n0 + n_block)
            # log N(z_sj; mu_nj, var_nj): [s, n, D]
            logp = log_norm[sl][None] - 0.5 * ((zs[:, None, :] - mu_t[sl][None]) * inv_std[sl][None]) ** 2
            top = logp.amax(dim=1, keepdim=True)  # [s, 1, D]
            # a block where every density underflows to 0 (log -inf) adds nothing, not NaN
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
            w = torch.ones(zs.shape[0], logp.shape[1], k + 1, dtype=dtype, device=device)
            w[:, :, 1:] = (ls[:, None, :] == lab_t[sl][None]).to(dtype)  # same value of v_k
            sums = torch.bmm(torch.exp(logp - top).transpose(1, 2), w)  # [s, D, K+1]
            acc = torch.logaddexp(acc, torch.log(sums) + top.transpose(1, 2))
        acc = acc.double()
        sum_log_q += (acc[:, :, 0] - math.log(n)).sum(0)
        group = torch.stack([counts[i][ls[:, i]] for i in range(k)], dim=1).double()  # [s, K]
        sum_log_qv += (acc[:, :, 1:] - torch.log(group)[:, None, :]).sum(0)
    h_z = -sum_log_q / s_total  # [D]
    h_z_given_v = -sum_log_qv / s_total  # [D, K]
    mi = h_z[:, None] - h_z_given_v
    _check_finite(mi, "the sampled mutual information", m, lv, dtype)
    return mi.cpu().numpy(), h_z.cpu().numpy()


def mig_sampled(
    mu,
    logvar,
    factors,
    *,
    n_samples: int = 10_000,
    entropy: str = "log_num_values",
    chunk_size: int = 2**21,
    seed: int = 0,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    factor_names: Sequence[str] | None = None,
    variant: str = "all_factors",
) -> MIGResult:
    """Sampled MIG of Chen et al. (2018) from posterior means and log-variances.

    Two variants (``result.estimator`` says which one made the number, on how many data
    points N and with how many Monte-Carlo samples S):

    - ``"all_factors"`` (default): the estimator as defined, every factor with more than one
      value, Monte-Carlo noise kept (an MI may come out slightly negative).
    - ``"chen2018"``: the protocol of Chen et al.'s published dSprites figures, for comparing
      with them: every mutual information is clamped at 0 and the factor named ``shape`` is
      left out, so the mean is over scale, orientation, posX and posY (4 factors; color is
      constant and skipped in both). Needs ``factor_names`` to find ``shape``.

    Args:
        mu, logvar: ``[N, D]`` posterior parameters of ``q(z|x)`` over the *whole* data set
            (e.g. ``encode_dataset(model, ds)`` with ``n=None``: all 737,280 dSprites images).
            Batch first (disentanglement_lib uses ``[D, N]``).
        factors: ``[N, K]`` integer factors of those data points.
        n_samples: Monte-Carlo samples S (Chen et al. use 10,000).
        entropy: ``"log_num_values"`` (Chen et al.: ``H(v_k) = log |V_k|``, exact when the data
            are a full grid with uniform factors) or ``"empirical"`` (plug-in entropy of the
            observed factor values, for non-uniform samples).
        chunk_size, seed, generator, device, dtype: see :func:`sampled_mutual_info`.
        factor_names: optional K names, used in the notes (required by ``"chen2018"``).
        variant: ``"all_factors"`` or ``"chen2018"`` (above).

    Returns:
        :class:`~course_lib.metrics.MIGResult`: ``mutual_info`` is the sampled ``[D, K]`` matrix
        (nats; it can be slightly negative through Monte-Carlo noise), factors with a single
        value are skipped. See the module docstring for why it differs from :func:`mig`.
    """
    if entropy not in ("log_num_values", "empirical"):
        raise ValueError(f"entropy must be 'log_num_values' or 'empirical', got {entropy!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS} ('chen2018': MI clamped at 0 and "
                         f"shape left out, as in Chen et al.'s dSprites figures), got {variant!r}")
    if variant == "chen2018" and (factor_names is None or "shape" not in list(factor_names)):
        raise ValueError("variant='chen2018' leaves the factor named 'shape' out: pass "
                         "factor_names (e.g. DSprites().factor_names) that include 'shape'")
    n_samples = check_count(n_samples, "n_samples", 2)
    f = check_factors(factors)
    mi, _ = sampled_mutual_info(
        mu, logvar, f, n_samples=n_samples, chunk_size=chunk_size, seed=seed,
        generator=generator, device=device, dtype=dtype,
    )
    if entropy == "log_num_values":
        ent = np.array([math.log(compact_labels(f[:, i])[1]) for i in range(f.shape[1])])
    else:
        ent = factor_entropy(f)
    size = f"N = {len(f):,}, S = {n_samples:,}"   # data points and Monte-Carlo samples: part of the label
    label = f"sampled (Chen et al.), all factors, {size}"
    if variant == "chen2018":
        mi = np.maximum(mi, 0.0)
        left_out = list(factor_names).index("shape")
        kept = [i for i in range(f.shape[1]) if i != left_out]
        part = gap_scores(mi[:, kept], ent[kept], [factor_names[i] for i in kept])
        full = gap_scores(mi, ent, factor_names)
        per_factor = full.per_factor.copy()
        per_factor[left_out] = np.nan
        result = MIGResult(score=part.score, per_factor=per_factor, mutual_info=mi,
                           factor_entropy=ent, skipped=tuple(sorted({*full.skipped, left_out})),
                           factor_names=full.factor_names,
                           notes=full.notes + ("'shape' left out (chen2018 protocol)",))
        label = ("sampled (Chen et al.), chen2018: MI clamped at 0, shape left out "
                 f"({int(np.isfinite(per_factor).sum())} factors), {size}")
    else:
        result = gap_scores(mi, ent, factor_names)
    note = f"sampled estimator (Chen et al.): {n_samples} samples of q(z|x), " \
           f"H(v_k) by {entropy}"
    return MIGResult(
        score=result.score, per_factor=result.per_factor, mutual_info=result.mutual_info,
        factor_entropy=result.factor_entropy, skipped=result.skipped,
        factor_names=result.factor_names, notes=result.notes + (note,), estimator=label,
    )
