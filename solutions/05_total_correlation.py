# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Total correlation: β-TCVAE, FactorVAE and CFactorVAE
#
# **What you will learn**
#
# - the decomposition of the VAE's KL term into **index-code mutual information**, **total
#   correlation** (TC) and **dimension-wise KL**, derived step by step;
# - how to estimate $\log q(z)$, a sum over the whole data set, from one minibatch
#   (minibatch weighted and stratified sampling), and why such estimates are biased, can come
#   out **negative** on a small batch, or carry a large constant offset;
# - β-TCVAE, which puts the weight β on the TC alone;
# - FactorVAE's **density-ratio trick**: a discriminator that tells $q(z)$ from
#   $\prod_j q(z_j)$ estimates the TC, and the dimension-wise permutation that samples
#   $\prod_j q(z_j)$;
# - CFactorVAE, the controlled-capacity VAE plus FactorVAE's TC penalty;
# - experiments: β-VAE vs β-TCVAE vs FactorVAE on dSprites (MIG, reconstruction, traversals) and
#   the reconstruction table of the CFactorVAE paper on 32×32 MNIST (or, where torchvision's
#   MNIST cannot be loaded, on scikit-learn's 8×8 digits resized to 32×32).
#
# Reproduces: the TC decomposition and β-TCVAE of source paper `003_9cf833ed4120ca8c.txt` (§3.2,
# Eqs. 9-10) and FactorVAE, controlled VAE and CFactorVAE with the 32×32 architecture of source
# paper `004_3136eab60f344f36.txt` (Eqs. 9-12, Table 2). Its reconstruction table (Table 1) is
# reproduced on MNIST; on the fallback digits it is only compared with, and in both cases its
# ordering is stated as a check that the notebook prints (True or False).

# %% [markdown]
# ## Parameters
#
# Papermill can override every name in the next cell, e.g.
# `papermill notebooks/05_total_correlation.ipynb out.ipynb -p PROFILE full`.
# `None` means "the default of the profile": `smoke` (seconds, numbers meaningless), `quick`
# (a few minutes on a laptop CPU) or `full` (a GPU, closer to the papers' protocol).

# %% tags=["parameters"]
PROFILE = None        # "smoke", "quick" or "full"; None: $COURSE_PROFILE, else "quick"
SEED = 0
DEVICE = "auto"       # "auto", "cpu", "cuda", "mps"
NUM_LATENTS = None    # D on dSprites
STEPS = None          # training steps of each dSprites model (the same budget for all three)
BATCH_SIZE = None
LR = None             # Adam learning rate of the VAEs
BETA = None           # β of β-VAE and of β-TCVAE (the TC weight)
FACTOR_GAMMA = None   # γ of FactorVAE on dSprites
DISC_HIDDEN = None    # discriminator width (Kim & Mnih: 1000)
DISC_LAYERS = None    # discriminator depth (Kim & Mnih: 6)
NUM_EVAL = None       # dSprites images encoded for MIG and reconstruction
TC_BATCHES = None     # batch sizes of the estimator study
MNIST_STEPS = None    # training steps of each MNIST model
MNIST_LATENTS = None  # source paper 004: 20
MNIST_GAMMA = None    # γ of FactorVAE / CFactorVAE on MNIST
MNIST_C_MAX = None    # final capacity C (nats) of the controlled models
LONG_STEPS = None     # budget of the longer β-VAE / β-TCVAE pair (shipped for quick and full)

# %%
from course_lib import profiles

PROFILE = profiles.check_profile(PROFILE or profiles.default_profile())
param = profiles.settings(PROFILE)  # None: the profile's default; any other value is checked
NUM_LATENTS = param("NUM_LATENTS", NUM_LATENTS, 10, minimum=1)
STEPS = param("STEPS", STEPS, smoke=3, quick=200, full=60_000, minimum=1)
BATCH_SIZE = param("BATCH_SIZE", BATCH_SIZE, smoke=16, quick=64, full=256, minimum=1)
LR = param("LR", LR, smoke=1e-3, quick=1e-3, full=5e-4, positive=True)
BETA = param("BETA", BETA, 6.0, minimum=0)
FACTOR_GAMMA = param("FACTOR_GAMMA", FACTOR_GAMMA, 35.0, minimum=0)
DISC_HIDDEN = param("DISC_HIDDEN", DISC_HIDDEN, smoke=16, quick=128, full=1000, minimum=1)
DISC_LAYERS = param("DISC_LAYERS", DISC_LAYERS, smoke=2, quick=3, full=6, minimum=1)
NUM_EVAL = param("NUM_EVAL", NUM_EVAL, smoke=256, quick=2000, full=50_000, minimum=1)
TC_BATCHES = param("TC_BATCHES", TC_BATCHES, smoke=(8, 32), quick=(8, 32, 128, 512),
                   full=(8, 32, 128, 512, 2048, 4096), minimum=2)
MNIST_STEPS = param("MNIST_STEPS", MNIST_STEPS, smoke=3, quick=200, full=46_900, minimum=1)
MNIST_LATENTS = param("MNIST_LATENTS", MNIST_LATENTS, 20, minimum=1)
MNIST_GAMMA = param("MNIST_GAMMA", MNIST_GAMMA, 10.0, minimum=0)
MNIST_C_MAX = param("MNIST_C_MAX", MNIST_C_MAX, 25.0, minimum=0)
LONG_STEPS = param("LONG_STEPS", LONG_STEPS, smoke=3, quick=16_000, full=16_000, minimum=1)
print(f"profile {PROFILE}: dSprites {STEPS} steps × {BATCH_SIZE} images (lr {LR}), β = {BETA}, "
      f"FactorVAE γ = {FACTOR_GAMMA}, discriminator {DISC_LAYERS}×{DISC_HIDDEN}; "
      f"MNIST {MNIST_STEPS} steps, D = {MNIST_LATENTS}")

# %% [markdown]
# ## Set-up
#
# Imports, the seed, the device and the versions this notebook ran with. Trained models are
# saved under `runs/checkpoints/` and loaded instead of retrained when the same parameters
# come again; figures are saved under `runs/figures/`.

# %%
import math
import time

import numpy as np
import torch
from IPython.display import display

from course_lib import exercises, leaderboard, viz, widgets
from course_lib.checkpoints import BETA_VAE_SEED_SWEEP_MIG, describe_training, find_shipped, load_or_train, shipped_with
from course_lib.checkpoints import recipe as reference_recipe
from course_lib.data import DSprites, load_mnist
from course_lib.losses import bernoulli_recon, kl_normal, tc_decomposition
from course_lib.losses.tc import gaussian_total_correlation, log_qz, mws_tc_offset
from course_lib.metrics import encode_dataset, mig, mig_sampled
from course_lib.models import BetaTCVAE, BetaVAE, CFactorVAE, FactorVAE
from course_lib.models.tc import TCDiscriminator, tc_discriminator_loss
from course_lib.notebook import setup
from course_lib.report import headline
from course_lib.train import fit

device = setup(SEED, DEVICE, PROFILE)
CPU_START, WALL_START = time.process_time(), time.perf_counter()

# %% [markdown]
# ## 1. The KL term, taken apart
#
# Index the training set by $n \in \{1, \dots, N\}$ with $p(n) = 1/N$. The encoder gives
# $q(z \mid n)$, and together they define the joint $q(z, n) = q(z \mid n)\, p(n)$ and the
# **aggregate posterior** $q(z) = \frac1N \sum_n q(z \mid n)$, the distribution of codes of the
# whole data set. Averaged over the data, the VAE's KL term is
#
# $$\mathbb E_{p(n)}\big[\mathrm{KL}(q(z\mid n)\,\|\,p(z))\big]
#   = \mathbb E_{q(z,n)}\big[\log q(z \mid n) - \log p(z)\big].$$
#
# Insert $\log q(z) - \log q(z)$ and $\sum_j \log q(z_j) - \sum_j \log q(z_j)$, where
# $q(z_j)$ is the marginal of latent $j$, and use the factorised prior
# $p(z) = \prod_j p(z_j)$:
#
# $$\log q(z\mid n) - \log p(z)
#   = \underbrace{\log \frac{q(z\mid n)}{q(z)}}_{\text{(i)}}
#   + \underbrace{\log \frac{q(z)}{\prod_j q(z_j)}}_{\text{(ii)}}
#   + \underbrace{\sum_j \log \frac{q(z_j)}{p(z_j)}}_{\text{(iii)}} .$$
#
# Taking the expectation under $q(z, n)$ turns each ratio into a divergence
# (source paper 003, Eq. 9):
#
# - (i) $\mathbb E_{q(z,n)}\big[\log \tfrac{q(z\mid n)\,p(n)}{q(z)\,p(n)}\big] = \mathrm{KL}(q(z,n)\,\|\,q(z)p(n)) = I_q(z; n)$,
#   the **index-code mutual information**: how much the code says about which image it came from
#   (at most $\log N$);
# - (ii) $\mathrm{KL}\big(q(z)\,\|\,\prod_j q(z_j)\big)$, the **total correlation**: zero exactly
#   when the latents of the aggregate posterior are independent, the property we want;
# - (iii) $\sum_j \mathrm{KL}(q(z_j)\,\|\,p(z_j))$, the **dimension-wise KL**: each latent's
#   marginal against the prior.
#
# β-VAE multiplies all three by β. Penalising (i) harder throws away information about the
# image (blurry reconstructions), while (ii) is the term that asks for independent, hence
# hopefully disentangled, latents. **β-TCVAE** (source paper 003, Eq. 10) weighs them
# separately:
#
# $$\mathcal L_{\beta\text{-TC}} = \mathbb E_{q(z\mid n)p(n)}[\log p(n\mid z)]
#    - \alpha\, I_q(z;n) - \beta\, \mathrm{KL}\big(q(z)\,\|\,\textstyle\prod_j q(z_j)\big)
#    - \gamma \sum_j \mathrm{KL}(q(z_j)\,\|\,p(z_j)),$$
#
# with $\alpha = \gamma = 1$ and $\beta > 1$ in Chen et al.'s experiments. The first term is
# written as in source paper 003; $p(n\mid z)$ there is the decoder's likelihood
# $p(x_n \mid z)$ of image $x_n$, the reconstruction term of every VAE.
#
# ## 2. Estimating $\log q(z)$ from a minibatch
#
# Terms (i)-(iii) need $\log q(z)$ and $\log q(z_j)$ at a sample $z_i \sim q(z\mid x_i)$, and
# $q(z) = \frac1N\sum_n q(z\mid n)$ is a sum over all $N$ images (737,280 for dSprites). From a
# minibatch $\{x_1, \dots, x_M\}$, **minibatch weighted sampling** (MWS, Chen et al.) uses
#
# $$\log q(z_i) \approx \log \frac{1}{N M} \sum_{j=1}^{M} q(z_i \mid x_j),
#   \qquad \log q(z_{i,d}) \approx \log \frac{1}{N M} \sum_{j=1}^{M} q(z_{i,d} \mid x_j),$$
#
# where $q(z_{i,d} \mid x_j) = \mathcal N(z_{i,d};\, \mu_{j,d}, \sigma^2_{j,d})$ and the joint
# density is the product over $d$. Everything is computed as an $M\times M\times D$ tensor of
# Gaussian log-densities and a `logsumexp` over $j$ (never exponentiate, then take logs: the
# densities underflow).
#
# ### Exercise 1: $\log q(z)$ under minibatch weighted sampling
#
# Write `log_qz_mws(z, mu, logvar, dataset_size)` returning the pair
# `(log q(z_i)` of shape `[M]`, `log q(z_{i,d})` of shape `[M, D])`, in nats.

# %%
def log_qz_mws(z, mu, logvar, dataset_size):
    """z, mu, logvar: M×D; dataset_size: N. Returns (M, M×D) log-densities (nats)."""
    ### BEGIN SOLUTION
    m = z.shape[0]
    # [i, j, d] = log N(z_{i,d}; mu_{j,d}, exp(logvar_{j,d}))
    log_dens = -0.5 * (math.log(2 * math.pi) + logvar.unsqueeze(0)
                       + (z.unsqueeze(1) - mu.unsqueeze(0)) ** 2 * torch.exp(-logvar.unsqueeze(0)))
    log_norm = math.log(dataset_size * m)
    log_joint = torch.logsumexp(log_dens.sum(dim=2), dim=1) - log_norm
    log_marginals = torch.logsumexp(log_dens, dim=1) - log_norm
    return log_joint, log_marginals
    ### END SOLUTION
    # HINT: build log N(z_i,d; mu_j,d, sigma²_j,d) as an M×M×D tensor with unsqueeze(1)/(0); sum over d for the joint, then torch.logsumexp over j and subtract log(N·M).


# %% [markdown]
# The checker compares your function with `course_lib.losses.tc.log_qz(..., estimator="mws")`
# on random batches (and falls back to it if yours is not right). The MWS column of the
# estimator study below is computed with the function it returns.

# %%
_g = torch.Generator().manual_seed(0)
_cases = [exercises.case(torch.randn(m, d, generator=_g), torch.randn(m, d, generator=_g),
                         torch.randn(m, d, generator=_g) - 1, n, label=f"M={m}, D={d}, N={n}")
          for m, d, n in ((4, 2, 100), (32, 5, 737_280))]
log_qz_mws = exercises.check_function(
    "log_qz_mws", log_qz_mws, lambda z, mu, lv, n: log_qz(z, mu, lv, n, estimator="mws"),
    _cases, atol=1e-4, rtol=1e-5)

# %% [markdown]
# ### Checking the estimators against a closed form
#
# We need a case where the answer is known. Draw the posterior means from
# $\mathcal N(0, \Sigma - s^2 I)$ and give every posterior the variance $s^2$: for an infinite
# data set the aggregate posterior is then exactly $q(z) = \mathcal N(0, \Sigma)$, whose
# total correlation is
#
# $$\mathrm{TC} = \tfrac12\Big(\sum_j \log \Sigma_{jj} - \log\det\Sigma\Big).$$
#
# **Minibatch stratified sampling** (MSS) treats the data set as two strata: the image $x_i$
# itself (probability $1/N$) and the $N-1$ others, stood for by the other $M-1$ images of the
# batch:
#
# $$\hat q(z_i) = \frac1N\, q(z_i\mid x_i) + \frac{N-1}{N(M-1)} \sum_{j\ne i} q(z_i\mid x_j),$$
#
# an unbiased estimate of $q(z_i)$. MWS as published, with its $\frac{1}{NM}$, is **not** a
# plug-in estimate of $\log q(z)$: compared with the batch average $\frac1M\sum_j$ it shifts
# every log-density by $-\log N$, once for the joint and $D$ times for the marginals, so its
# TC is too large by the constant
#
# $$(D-1)\log N \quad(\text{printed by the next cell for } D = 4,\ N = 10^6).$$
#
# The constant has no gradient, so it does not change training, but it is what shows up in the
# logs. (Once it is removed, MWS and MSS still differ in how they weigh the image's own term,
# $1/M$ against $1/N$, so their gradients are not the same. The MSS above is the course's
# symmetric form; Chen et al.'s published MSS weighs the batch slightly differently, with the
# same expectation: `course_lib.losses.tc` writes both. The shipped β-TCVAE trains with this MSS,
# where source paper 003 describes MWS.) Here $D = 4$ latents with correlation 0.5 and $s^2 = 0.25$; $N = 10^6$. The MSS
# estimate comes from `tc_decomposition(..., "mss")`; the MWS one from your `log_qz_mws`
# (exercise 1), as $\mathrm{TC} \approx \frac1M\sum_i \big[\log \hat q(z_i) - \sum_d \log \hat q(z_{i,d})\big]$.

# %%
def gaussian_batch(m, d=4, rho=0.5, s2=0.25, seed=0):
    """Posterior means from N(0, Σ − s²I), posterior variance s², samples z: q(z) = N(0, Σ)."""
    g = torch.Generator().manual_seed(seed)
    cov = torch.full((d, d), rho) + (1 - rho) * torch.eye(d)
    chol = torch.linalg.cholesky(cov - s2 * torch.eye(d))
    mu = torch.randn(m, d, generator=g) @ chol.T
    logvar = torch.full((m, d), math.log(s2))
    return mu + math.sqrt(s2) * torch.randn(m, d, generator=g), mu, logvar, cov


N_TOY, REPEATS = 10**6, 20   # 20 draws per cell: a 3-draw mean at M = 8 is mostly noise
cpu0 = time.process_time()
true_tc = {rho: float(gaussian_total_correlation(gaussian_batch(2, rho=rho)[3])) for rho in (0.0, 0.5)}
study = {}   # (rho, estimator, M) -> list of TC estimates
for rho in (0.0, 0.5):
    for m in TC_BATCHES:
        for seed in range(REPEATS):
            z, mu, logvar, _ = gaussian_batch(m, rho=rho, seed=seed)
            study.setdefault((rho, "mss", m), []).append(float(tc_decomposition(z, mu, logvar, N_TOY, "mss")[1]))
            log_joint, log_marginals = log_qz_mws(z, mu, logvar, N_TOY)  # your function (exercise 1)
            study.setdefault((rho, "mws", m), []).append(float((log_joint - log_marginals.sum(1)).mean()))
offset = mws_tc_offset(4, N_TOY)
print(f"closed-form TC: {true_tc[0.5]:.4f} nats (ρ = 0.5), 0 (independent); MWS offset (D−1)·log N = {offset:.2f}")
print(f"means of {REPEATS} draws ± their standard error")
print(f"{'M':>6} | {'MSS error, ρ=0.5':>17} | {'MSS, independent':>17} | {'MWS raw, ρ=0.5':>15} | {'MWS − offset − TC':>17}")


def mean_se(values):
    return np.mean(values), np.std(values, ddof=1) / math.sqrt(len(values))


for m in TC_BATCHES:
    mss, mss_se = mean_se(study[(0.5, "mss", m)])
    ind, ind_se = mean_se(study[(0.0, "mss", m)])
    raw = np.mean(study[(0.5, "mws", m)])
    print(f"{m:>6} | {mss - true_tc[0.5]:>+10.3f} ± {mss_se:.3f} | {ind:>+10.3f} ± {ind_se:.3f} | {raw:>15.2f} | "
          f"{raw - offset - true_tc[0.5]:>+17.3f}")
smallest, largest = TC_BATCHES[0], TC_BATCHES[-1]
headline(f"MSS TC error vs closed form at batch {largest} (nats, 4 latents, mean of {REPEATS})",
         float(np.mean(study[(0.5, 'mss', largest)]) - true_tc[0.5]), "+.3f")
raw_mws = np.mean(study[(0.5, "mws", largest)])
print(f"\nMWS as published at batch {largest}: {raw_mws:.2f} nats for a true TC of {true_tc[0.5]:.2f}; "
      f"{raw_mws - offset:+.2f} once the offset {offset:.2f} is removed")
for est, shift in (("mss", 0.0), ("mws", offset)):
    errors = [abs(np.mean(study[(0.5, est, m)]) - shift - true_tc[0.5]) for m in (smallest, largest)]
    print(f"{est.upper()}{' − offset' if shift else ''}: |error| {errors[0]:.3f} nats at batch {smallest}, "
          f"{errors[1]:.3f} at batch {largest} — "
          + ("closer to the closed form on the larger batch" if errors[1] < errors[0] else "NOT closer on the larger batch"))
for rho in (0.0, 0.5):
    small = np.mean(study[(rho, "mss", smallest)])
    verdict = ("negative" if small < 0 else "positive but below the truth" if small < true_tc[rho]
               else "not below the truth")
    print(f"MSS at batch {smallest}, ρ = {rho}: {small:+.3f} nats for a true TC of {true_tc[rho]:.3f}: {verdict}")
mws_bias = {m: np.mean(study[(0.0, "mws", m)]) - offset - true_tc[0.0] for m in (smallest, largest)}
print(f"MWS − offset at ρ = 0 (true TC 0): {mws_bias[smallest]:+.3f} nats at batch {smallest}, "
      f"{mws_bias[largest]:+.3f} at batch {largest}: the offset is constant, but a small batch adds a bias of its own")
# eq. 9 on one batch: the three estimated terms against the Monte-Carlo KL, computed apart with torch.distributions
z9, mu9, logvar9, cov9 = gaussian_batch(largest, rho=0.5, seed=SEED)
terms9 = [float(t) for t in tc_decomposition(z9, mu9, logvar9, N_TOY, "mss")]
posterior9 = torch.distributions.Normal(mu9, (0.5 * logvar9).exp())
prior9 = torch.distributions.Normal(0.0, 1.0)
mc_kl9 = float((posterior9.log_prob(z9) - prior9.log_prob(z9)).sum(1).mean())
eq9_gap = abs(sum(terms9) - mc_kl9)
print(f"eq. 9 bookkeeping on one batch of {largest}: index-code MI {terms9[0]:.3f} + TC {terms9[1]:.3f} + "
      f"dimension-wise KL {terms9[2]:.3f} = {sum(terms9):.4f} nats; Monte-Carlo KL {mc_kl9:.4f} "
      f"(|difference| {eq9_gap:.1e}: the three log-ratios telescope, whatever log q(z) and log q(z_j) are)")
# the dimension-wise KL against its true value: every marginal of N(0, Σ) (unit diagonal) is the prior N(0, 1)
dw_each = (log_qz(z9, mu9, logvar9, N_TOY, estimator="mss")[1] - prior9.log_prob(z9)).sum(1)  # per sample, nats
dw_se = float(dw_each.std() / math.sqrt(len(dw_each)))
dw_in_noise = abs(terms9[2]) <= 2 * dw_se
print(f"dimension-wise KL {terms9[2]:+.4f} nats for a true value of 0; standard error over the batch {dw_se:.4f}; "
      f"within 2 standard errors of 0: {dw_in_noise}")
# the other two against their closed forms: I(x; z) = H(z) − H(z|x) = ½(log det Σ − D log s²) for q(z) = N(0, Σ)
# and q(z|x) = N(μ_x, s²I); the expected KL is ½ Σ_d (s² + E μ_d² − 1 − log s²) = ½ D log(1/s²) (E μ_d² = 1 − s²)
s2_9, d9 = float(logvar9[0, 0].exp()), cov9.shape[0]
mi_true9 = 0.5 * (float(torch.logdet(cov9)) - d9 * math.log(s2_9))
kl_true9 = 0.5 * d9 * math.log(1 / s2_9)
print(f"index-code MI {terms9[0]:.3f} nats against its closed form {mi_true9:.3f}; the batch's Monte-Carlo KL "
      f"{mc_kl9:.3f} against the expected KL {kl_true9:.3f} (one batch of {largest}: mostly sampling noise, which "
      "the two share; the MI estimate also sits a little high on average, since log q̂(z), the log of a batch "
      "mean, is biased low)")
print(f"(CPU {time.process_time() - cpu0:.1f} s)")

# %% [markdown]
# The lines under the table read it: MWS as published reports a TC of tens of nats for a true
# value below one — the offset, not the latents — and each estimator's error at the smallest
# and the largest batch says whether it approaches the closed form as the batch grows (the
# unit tests require MSS within 0.05 nats at $M = 4096$; the quick profile stops at 512).
#
# The "eq. 9 bookkeeping" line adds the three estimated terms. That they sum to the Monte-Carlo
# KL checks the code's bookkeeping only, not Eq. 9 or the estimators: $\log q(z\mid n) - \log
# p(z)$ splits into the three log-ratios of section 1 exactly, for *any* value put in for
# $\log q(z)$ and $\log q(z_j)$, good or bad. What can fail is the comparison of each term with
# its true value: the TC with the closed form (the table above), the index-code MI with
# $\frac12(\log\det\Sigma - D\log s^2)$ (the line after the bookkeeping, with the batch's KL
# against its expectation), and the dimension-wise KL with 0, its value here, since every marginal of $\mathcal N(0, \Sigma)$ with a unit diagonal
# is the prior $\mathcal N(0, 1)$. A KL is never negative, but an *estimate* of one can be: a
# dimension-wise KL printed below zero is estimator noise around a true 0 (plus the downward
# Jensen bias of $\log \hat q(z_j)$ explained next); the line after the bookkeeping line says
# whether it lies within two standard errors of 0.
#
# ### Why the estimate can be negative on a small batch
#
# A TC is a KL divergence, never negative, yet the last lines above can report a *negative* MSS
# estimate at the smallest batch, even for independent latents (true TC = 0). Why an estimate
# falls below the truth on a small batch: $\hat q(z_i)$ is unbiased, but its logarithm is not:
# by Jensen, $\mathbb E[\log \hat q] \le \log \mathbb E[\hat q]$. The bias is worst where the
# estimate is poorest, and a handful of points covers a 4-D space far worse than each 1-D
# marginal: the joint density at $z_i$ is underestimated much more than the product of the
# marginals, so $\log \hat q(z) - \sum_j \log \hat q(z_j)$ comes out below zero.
#
# MWS errs the other way on a small batch, beyond its constant offset (the line "MWS − offset
# at ρ = 0" above). What matters is the share of the point's own term $q(z_i \mid x_i)$ in the
# mixture that stands for $q(z_i)$. In the true $q(z_i)$ it is one of $N$ images, a share
# $\frac1N$, and MSS keeps that share (weight $\frac1N$ for the own term, the other $M-1$
# terms together $\frac{N-1}{N}$, in `course_lib/losses/tc.py`). MWS gives every term the same
# weight $\frac{1}{NM}$; the common factor $\frac1N$ is the constant offset, and what is left
# is the batch average, in which the own term has the share $\frac1M$: large on a small batch.
# The own term is large, since $z_i$ was drawn from it, and in 4-D the other images' densities
# at $z_i$ are small, while in 1-D they overlap; so the own term inflates the joint density
# far more than the marginals, the joint comes out too *high* next to them, and the TC too
# large. On the smallest batch this bias can be as large as the whole TC of ρ = 0.5
# (compare the printed line with the closed form; in the right panel the ρ = 0 curve then starts
# near the ρ = 0.5 line), and such a batch cannot tell the two apart.
#
# Both stories are about *wide* posteriors, this experiment's $s^2 = 0.25$, where the other
# images' densities at $z_i$ are comparable to the own term. A trained dSprites model's
# posteriors are much narrower (section 6's table prints the median σ of each model's active
# latents): then the own
# term dominates the joint *and* the marginals, the batch average (MWS less its offset)
# caps the index-code MI near $\log M$ and overstates the TC by nats, and MSS keeps the MI
# but its TC on a small batch comes out too large rather than too small. The sign of MSS's
# bias depends on the posteriors' width; `tests/test_tc.py` measures a narrow case
# ($\sigma = 0.05$, $N = 4{,}000$, $M = 64$) against the exact finite-data-set values.
# %%
fig = viz.figure(figsize=(9, 3.4))
ax1, ax2 = fig.subplots(1, 2)
ms = np.array(TC_BATCHES)
for rho, colour in ((0.0, "C0"), (0.5, "C1")):
    vals = np.array([study[(rho, "mss", m)] for m in TC_BATCHES])
    ax1.errorbar(ms, vals.mean(1), yerr=vals.std(1), marker="o", color=colour, label=f"MSS, ρ = {rho}")
    ax1.axhline(true_tc[rho], color=colour, ls="--", lw=1)
    raw = np.array([study[(rho, "mws", m)] for m in TC_BATCHES]).mean(1)
    ax2.plot(ms, raw, marker="s", color=colour, label=f"MWS as published, ρ = {rho}")
ax2.axhline(offset, color="k", ls=":", lw=1, label="(D − 1)·log N")
ax2.axhline(offset + true_tc[0.5], color="C1", ls="--", lw=1, label="(D − 1)·log N + true TC, ρ = 0.5")
for ax in (ax1, ax2):
    ax.set_xscale("log")
    ax.set_xlabel("batch size M")
    ax.legend(fontsize=8)
ax1.set_ylabel("TC estimate (nats)")
ax2.set_ylabel("TC estimate (nats)")
ax1.set_title("MSS vs closed form (dashed)")
ax2.set_title("MWS: constant offset + small-batch bias")
fig.tight_layout()
viz.save_figure(fig, "05_tc_estimators.png")
fig

# %% [markdown]
# Left: MSS estimates (mean ± sd over seeds) against the dashed closed forms; the lines printed
# under the table say, for the smallest batch, whether they fall below the truth or below
# zero. Right: MWS as published, from your `log_qz_mws`, against the dotted $(D-1)\log N$
# (independent latents) and the dashed offset plus the true TC (ρ = 0.5); only its small
# differences from those lines carry information. When your training log shows a
# TC of tens of nats, or a negative one, check the estimator before you check the model.
#
# ## 3. FactorVAE: the density-ratio trick
#
# FactorVAE (source paper 004, Eqs. 10-11) adds $\gamma\,\mathrm{TC}$ to the plain VAE loss and
# estimates the TC with a classifier instead of a density estimate. (From here on γ is the
# weight of the TC, as in FactorVAE and CFactorVAE; in section 1's β-TCVAE loss the same letter
# weighted the dimension-wise KL. The two papers chose their letters independently.) Let a discriminator
# $D(z) \in (0, 1)$ tell samples of $q(z)$ (label 1) from samples of $\bar q(z) = \prod_j q(z_j)$
# (label 0), trained with the cross-entropy
#
# $$\mathcal L_D = -\mathbb E_{q(z)}[\log D(z)] - \mathbb E_{\bar q(z)}[\log(1 - D(z))].$$
#
# For a fixed $z$ the loss per point is $-q(z)\log D - \bar q(z) \log (1 - D)$; setting its
# derivative in $D$ to zero gives the optimal discriminator
#
# $$D^*(z) = \frac{q(z)}{q(z) + \bar q(z)} \quad\Longrightarrow\quad
#   \log\frac{D^*(z)}{1 - D^*(z)} = \log \frac{q(z)}{\bar q(z)} .$$
#
# Hence $\mathrm{TC} = \mathbb E_{q(z)}\big[\log \tfrac{q(z)}{\bar q(z)}\big] \approx
# \mathbb E_{q(z)}\big[\log \tfrac{D(z)}{1 - D(z)}\big]$ (Eq. 11): the mean **logit** of the
# discriminator on codes of real images. The course's discriminator outputs that logit directly.
#
# Samples of $\bar q(z)$ come for free: take a batch of codes and **shuffle each dimension
# independently across the batch**. Every column keeps its marginal $q(z_j)$, but a row now
# combines values of different images, so the dependence between dimensions is gone.
#
# ### Exercise 2: the dimension-wise permutation
#
# Write `permute_dims(z, generator)`: a new $M\times D$ tensor whose column $j$ is column $j$ of
# `z` in an independent random order (do not modify `z`).

# %%
def permute_dims(z, generator=None):
    """z: M×D codes → M×D codes with every column shuffled independently across the batch."""
    ### BEGIN SOLUTION
    m, d = z.shape
    columns = [z[torch.randperm(m, generator=generator), j] for j in range(d)]
    return torch.stack(columns, dim=1)
    ### END SOLUTION
    # HINT: one torch.randperm(M, generator=generator) per column j; index z[perm, j] and torch.stack the columns.


# %% [markdown]
# A permutation is random, so the checker does not compare with a reference output. On codes
# whose values name their row and column it checks that `z` itself is unchanged after the call
# (no in-place shuffle), that each column holds the same values as before, that rows were broken
# up (one permutation of whole rows keeps the dependence), that every pair of columns was
# shuffled by *different* permutations, and that another generator gives another order. Your
# function is then the one that shuffles the codes of the toy discriminator below and of your
# FactorVAE step (exercise 3).

# %%
permute_dims = exercises.check_permute_dims(permute_dims)

# %% [markdown]
# ### The trick at work on the Gaussian toy
#
# Train a small discriminator on codes of the correlated Gaussian above (its closed-form TC is printed above), with
# permuted codes as the other class, and read the TC off its mean logit.

# %%
cpu0 = time.process_time()
torch.manual_seed(SEED)
toy_disc = TCDiscriminator(4, hidden=64, layers=2)
toy_opt = torch.optim.Adam(toy_disc.parameters(), lr=2e-3)
toy_gen = torch.Generator().manual_seed(SEED)
toy_steps = profiles.pick(PROFILE, smoke=5, quick=200, full=2000)
estimates, z_eval = [], gaussian_batch(2048, seed=10**6)[0]
for step in range(toy_steps):
    z = gaussian_batch(512, seed=10_000 + step)[0]
    toy_opt.zero_grad()
    d_loss, d_acc = tc_discriminator_loss(toy_disc, z[:256], permute_dims(z[256:], toy_gen))
    d_loss.backward()
    toy_opt.step()
    if step % 5 == 0 or step == toy_steps - 1:
        with torch.no_grad():
            estimates.append((step, float(toy_disc(z_eval).mean())))
disc_tc = float(np.mean([e for _, e in estimates[-max(1, len(estimates) // 10):]]))
print(f"discriminator TC estimate after {toy_steps} steps: {disc_tc:.3f} nats "
      f"(closed form {true_tc[0.5]:.3f}); accuracy {float(d_acc):.2f}; CPU {time.process_time() - cpu0:.1f} s")
print(f"mean logit at step 0: {estimates[0][1]:+.3f} nats; at the end: {disc_tc:+.3f}, "
      + ("below the closed form: the classifier underestimates the TC"
         if disc_tc < true_tc[0.5] else "at or above the closed form"))
fig = viz.figure(figsize=(5, 3))
ax = fig.subplots()
ax.plot(*zip(*estimates), lw=1, label="mean logit on q(z) samples")
ax.axhline(true_tc[0.5], color="k", ls="--", label="closed-form TC")
ax.set_xlabel("discriminator step")
ax.set_ylabel("nats")
ax.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# An untrained discriminator cannot tell the two classes apart (its logits are near 0); the
# line printed above the figure says where its estimate ended against the closed form. It is an
# estimate by a classifier: it lags behind, and it underestimates a TC that the network is too
# small or too briefly trained to see. In FactorVAE the codes move while the discriminator
# learns, so the two are trained in alternation.
#
# ### Exercise 3: FactorVAE's training step
#
# Write `factorvae_step(model, x, step, optimizers)`, one training step of a `FactorVAE` on a
# batch `x` of $M$ images, with `optimizers = {"model": …, "discriminator": …}` (what
# `model.configure_optimizers(lr)` returns: one Adam for the encoder and decoder, one for the
# discriminator):
#
# 1. **the VAE's update, with the discriminator frozen**: `model.discriminator.requires_grad_(False)`
#    (the critic must not learn from the loss of what it judges); one forward pass
#    `logits, mu, logvar, z = model(x)`; the loss
#    $\text{recon} + \mathrm{KL} + \gamma\,\mathrm{TC}$ with `bernoulli_recon(logits, x)`,
#    $\mathrm{KL} = \sum_j$ `kl_normal(mu, logvar).mean(0)` and TC the mean logit of
#    `model.discriminator` on `z` (Eq. 11), $\gamma$ = `model.gamma`; zero the VAE's gradients,
#    backward, step; then unfreeze the discriminator;
# 2. **the discriminator's update on the detached codes**: `z = z.detach()` (no gradient may reach
#    the encoder), the first half `z[:M//2]` as samples of $q(z)$, the second half shuffled by
#    your `permute_dims(z[M//2:])` as samples of $\prod_j q(z_j)$, the loss
#    `tc_discriminator_loss(model.discriminator, joint, permuted)` (it returns the loss and the
#    accuracy); zero the discriminator's gradients, backward, step.
#
# (A variant, stated: Kim & Mnih's Algorithm 2 gives the discriminator the *whole* batch as
# samples of $q(z)$ and permutes the codes of a *second*, freshly drawn batch. Splitting one
# batch saves a second encoder pass per step and gives each class samples of the same
# distributions, but only $M/2$ of them, and the permutation mixes only $M/2$ codes: two
# dimensions of a permuted row come from the same image with probability $2/M$ instead of
# $1/M$, a little dependence left in the "product" class that pulls the discriminator's TC
# estimate down slightly. The shipped FactorVAEs were trained this way.)
#
# Return the detached terms `{"loss", "recon", "kl", "kl_per_latent", "tc", "disc_loss",
# "disc_acc"}` (the training loop logs them; `kl_per_latent` is the vector of $D$ KLs).

# %%
def factorvae_step(model, x, step, optimizers):
    """One FactorVAE step on x (M×1×64×64): VAE update (discriminator frozen), then the
    discriminator's update on detached codes. Returns the detached logged terms (nats)."""
    ### BEGIN SOLUTION
    # HINT: (1) model.discriminator.requires_grad_(False); optimizers["model"].zero_grad();
    #   logits, mu, logvar, z = model(x); loss = recon + KL + model.gamma * model.discriminator(z).mean();
    #   backward, step, requires_grad_(True). (2) z = z.detach(); half = len(z) // 2;
    #   tc_discriminator_loss(model.discriminator, z[:half], permute_dims(z[half:2 * half])); zero_grad, backward, step.
    opt_vae, opt_disc = optimizers["model"], optimizers["discriminator"]
    # (1) the VAE: recon + KL + γ·TC, with the discriminator as a fixed critic
    model.discriminator.requires_grad_(False)
    opt_vae.zero_grad()
    logits, mu, logvar, z = model(x)
    recon = bernoulli_recon(logits, x)
    kl_per_latent = kl_normal(mu, logvar).mean(0)
    tc = model.discriminator(z).mean()
    loss = recon + kl_per_latent.sum() + model.gamma * tc
    loss.backward()
    opt_vae.step()
    model.discriminator.requires_grad_(True)
    # (2) the discriminator: codes of q(z) against permuted codes, on detached codes
    z = z.detach()
    half = z.shape[0] // 2
    opt_disc.zero_grad()
    d_loss, d_acc = tc_discriminator_loss(model.discriminator, z[:half], permute_dims(z[half:2 * half]))
    d_loss.backward()
    opt_disc.step()
    terms = {"loss": loss, "recon": recon, "kl": kl_per_latent.sum(), "kl_per_latent": kl_per_latent,
             "tc": tc, "disc_loss": d_loss, "disc_acc": d_acc}
    return {k: v.detach() for k, v in terms.items()}
    ### END SOLUTION


# %% [markdown]
# The checker runs your step and the library's `FactorVAE.training_step` on the same small
# FactorVAE, the same batch and the same random state, twice in a row, and compares the
# returned terms and every weight of the VAE and of the discriminator after each step (with
# your `permute_dims` in both, so both draw the same permutation). It also refuses a
# discriminator that receives a gradient from the VAE's loss, even where the weights come out
# right. The FactorVAE of section 5 is then trained by the function it returns.

# %%
factorvae_step = exercises.check_factorvae_step(factorvae_step, permute=permute_dims)

# %% [markdown]
# ## 4. CFactorVAE (source paper 004, Eq. 12)
#
# The controlled-capacity VAE (Burgess et al.; source paper 004, Eq. 9) replaces
# $\beta\,\mathrm{KL}$ by $\beta\,|\mathrm{KL} - C|$ with a capacity $C$ raised during
# training, so the code may carry more and more information. (This β is notebook 04's γ.
# Source paper 004's Eq. 12 gives the capacity term weight 1 (its Eq. 9 leaves β free), far
# below notebook 04's γ = 1000, so here the penalty does
# not hold the KL at $C$: the MNIST section below says on which side it ends.) CFactorVAE adds
# FactorVAE's TC penalty to it:
#
# $$\mathcal L(\phi, \theta) = \frac1M \sum_{i=1}^{M} \Big[\mathbb E_{q_\phi(z\mid x_i)}[\log p_\theta(x_i\mid z)]
#   - \big|D_{KL}(q_\phi(z\mid x_i)\,\|\,p(z)) - C\big|\Big] - \gamma\, D_{KL}\big(q(z)\,\|\,\textstyle\prod_j q(z_j)\big)$$
#
# over a batch of $M$ images (the source writes $\frac1N$; in this notebook $N$ is the size of
# the data set).
#
# In the course, `CFactorVAE(gamma=γ, capacity_weight=1, c_start, c_max, c_steps)` minimises
# `recon + mean_i |KL_i − C(step)| + γ·TC`, Eq. 12 term by term: the absolute value is taken
# for every image $x_i$ (its own $D_{KL}(q_\phi(z\mid x_i)\,\|\,p(z))$), then averaged, with
# $C$ from `capacity_schedule` of notebook 04. With $\gamma = 0$ it is the controlled VAE of
# Eq. 9 with β = 1, which the course takes for the "CVAE" row of the source paper's table below
# (the source does not spell out that row's settings).
#
# A variant, `capacity_mode="batch"`, takes $|\tfrac1M\sum_i \mathrm{KL}_i - C|$ over a batch of $M$ images instead, the form
# that notebook 04's capacity VAE uses. Since $|\text{mean} - C| \le \text{mean}\,|\cdot - C|$, the
# batch form is never larger: it asks only the *average* image to carry $C$ nats, while Eq. 12
# asks every image to. Eq. 12 thus also penalises the spread of the KL across images, but only
# the part of it that crosses $C$: the two forms differ by twice the mean over *all* images of
# how far each lies past $C$ on the other side from the mean KL (0 for an image on the mean's
# side), and they are equal when every
# $\mathrm{KL}_i$ lies on one side (the spread itself is logged as `kl_spread`). The cell after
# the MNIST table prints both terms for the trained model's test images, and that difference.
#
# ## 5. dSprites: β-VAE vs β-TCVAE vs FactorVAE on the same budget
#
# Three models, the same architecture (Burgess et al.), data, batch size, learning rate, seed
# and number of steps: β-VAE and β-TCVAE with the same β, FactorVAE with γ = `FACTOR_GAMMA`.
# The FactorVAE is trained by your `factorvae_step` (exercise 3): `YourFactorVAE` is the
# library's `FactorVAE` whose `training_step` calls it (when your step did not pass the check,
# the library's own step trains it). A model found in `runs/checkpoints/` is loaded, not trained.
# **Heavy cell**: one to two minutes of CPU in the quick profile on an idle 2-core machine; the full profile is meant for a GPU.

# %%
TIMES = {}


def fit_timed(tag, model, data, steps, batch):
    """Train (or load) ``model`` with the course's ``fit``; prints where it came from and the
    wall/CPU time used."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = fit(model, data, steps=steps, batch_size=batch, lr=LR, seed=SEED, tag="05", device=device,
                 progress=PROFILE != "smoke")
    TIMES[tag] = (time.perf_counter() - wall0, time.process_time() - cpu0)
    how = "loaded from its checkpoint" if result.extra["loaded"] else "trained"
    print(f"{tag:<10} {steps} steps: {how}; wall {TIMES[tag][0]:.1f} s, CPU {TIMES[tag][1]:.1f} s")
    return result


class YourFactorVAE(FactorVAE):
    """The library's FactorVAE, trained by the factorvae_step of exercise 3."""

    exercise_functions = (factorvae_step,)   # fit names the runs after this code: yours, or the fallback

    def training_step(self, x, step, optimizers, generator=None):
        return factorvae_step(self, x, step, optimizers)


ds = DSprites()
torch.manual_seed(SEED)
dsprites_models = {
    "β-VAE": BetaVAE(num_latents=NUM_LATENTS, beta=BETA),
    "β-TCVAE": BetaTCVAE(num_latents=NUM_LATENTS, beta=BETA, dataset_size=len(ds)),
    "FactorVAE": YourFactorVAE(num_latents=NUM_LATENTS, gamma=FACTOR_GAMMA, disc_hidden=DISC_HIDDEN,
                               disc_layers=DISC_LAYERS),
}
print("FactorVAE's step:", "yours (exercise 3)" if factorvae_step is not exercises.factorvae_step_reference
      else "the library's (exercise 3 not passed yet)")
dsprites_runs = {tag: fit_timed(tag, m, ds, STEPS, BATCH_SIZE) for tag, m in dsprites_models.items()}

# %% [markdown]
# ### Scores
#
# On `NUM_EVAL` fresh images: the reconstruction error (Bernoulli, nats per image), MIG of the
# posterior means (`course_lib.metrics.mig`, 20 bins), and the TC of the aggregate posterior
# estimated by MSS on batches of 1024 codes (the same estimator and batch for every model).
# Section 2 showed MSS *under*estimating the TC of wide posteriors (σ = 0.5) on a small batch,
# and argued (the unit tests check it) that for narrow ones it overestimates; which way, and by
# how much, depends on the width, so the table also gives the median posterior σ of each model's
# active latents (KL above 0.5 nats): compare the TCs of models whose σ differ a lot with care,
# and read none of them as exact.

# %%
@torch.no_grad()
def evaluate_dsprites(model):
    model.eval()
    enc = encode_dataset(model, ds, n=NUM_EVAL, seed=SEED + 1, device=device)
    mu, logvar = torch.from_numpy(enc.mu).to(device), torch.from_numpy(enc.logvar).to(device)
    gen = torch.Generator(device=device).manual_seed(SEED + 2)
    recon, tcs = 0.0, []
    for start in range(0, NUM_EVAL, 512):
        part = slice(start, min(start + 512, NUM_EVAL))
        x = ds.images(torch.from_numpy(enc.classes[part]).to(device))
        z = model.reparameterize(mu[part], logvar[part], gen)
        recon += float(bernoulli_recon(model.decode(z), x)) * x.shape[0]
    for start in range(0, NUM_EVAL - 1, 1024):
        part = slice(start, min(start + 1024, NUM_EVAL))
        if part.stop - part.start >= 2:
            z = model.reparameterize(mu[part], logvar[part], gen)
            tcs.append(float(tc_decomposition(z, mu[part], logvar[part], len(ds), "mss")[1]))
    scores = mig(enc.mu, enc.classes, factor_names=ds.factor_names)
    kl_j = kl_normal(mu, logvar).mean(0)
    active = kl_j > 0.5
    sigma = float(torch.exp(0.5 * logvar[:, active]).median()) if bool(active.any()) else float("nan")
    model.train()
    return {"recon": recon / NUM_EVAL, "mig": float(scores.score), "tc": float(np.mean(tcs)), "sigma": sigma,
            "per_factor": scores.per_factor, "mi": scores.mutual_info,
            "kl": float(kl_normal(mu, logvar).sum(1).mean())}


cpu0 = time.process_time()
dsprites_scores = {tag: evaluate_dsprites(r.model) for tag, r in dsprites_runs.items()}
print(f"{'model':<10} | {'recon (nats)':>12} | {'KL (nats)':>9} | {'TC, MSS (nats)':>14} | {'MIG':>6} | "
      f"{'median σ, active':>16}")
for tag, s in dsprites_scores.items():
    print(f"{tag:<10} | {s['recon']:>12.1f} | {s['kl']:>9.2f} | {s['tc']:>14.3f} | {s['mig']:>6.3f} | "
          f"{s['sigma']:>16.3f}")
    headline(f"{tag} MIG on dSprites ({PROFILE}, {STEPS} steps)", s["mig"], ".3f")
    headline(f"{tag} reconstruction on dSprites (nats/image)", s["recon"], ".1f")
print(f"(evaluation CPU {time.process_time() - cpu0:.1f} s)")
def late_mean(history, key):
    """The mean of a logged term over the last tenth of the run."""
    steps = history.array("step")
    return float(history.array(key)[steps > 0.9 * steps[-1]].mean())


fv_hist = dsprites_runs["FactorVAE"].history
print(f"FactorVAE's discriminator over the last tenth of its run: accuracy {late_mean(fv_hist, 'disc_acc'):.2f} "
      f"(0.5: it cannot tell q(z) from the permuted codes), its TC estimate {late_mean(fv_hist, 'tc'):.3f} "
      f"nats, against the table's MSS estimate {dsprites_scores['FactorVAE']['tc']:.3f}")

# %% [markdown]
# On the quick budget (`STEPS` steps, printed above) read these numbers as a check of the
# pipeline, not as the comparison of the papers: the longer runs below and the full profile
# are the ones to compare. One thing to expect here: a FactorVAE's TC can be the *highest* of
# the three after a few hundred steps. Its penalty is only as good as its discriminator's
# estimate, and after a few hundred steps at learning rate $10^{-4}$ (Kim & Mnih's) the
# discriminator's TC estimate can be far below the MSS estimate of the same model (the line
# under the table gives both, with the discriminator's accuracy), so the penalty it applies is
# weak; and the rest of its objective is a plain VAE's:
# weight 1 on the KL, which by Eq. 9 is weight 1 on the TC, where the β-VAE and the β-TCVAE put
# weight β on it. β-TCVAE's penalty needs no second network and acts at once.
#
# ### A longer budget: the shipped 16,000-step pair
#
# Chen et al. report that β-TCVAE disentangles dSprites better than β-VAE (their MIG is
# measured with *their* protocol: the sampled estimator over the posteriors of all 737,280
# images with 10,000 samples, each mutual information clamped at 0, shape left out; the course's
# version of it encodes 10,000 images and draws 2,000 samples, so its numbers are not theirs; notebook 08 explains the difference, and the cell
# prints that variant beside the course's discrete MIG so that the two can be compared). To see it without a GPU, the course ships a β-TCVAE (β = 6, MSS)
# and a β-VAE (β = 8, notebook 03's recipe) trained for `LONG_STEPS` = 16,000 steps of 64
# images, both from seed 0, by its own command
#
#     python -m course_lib pretrain beta_tcvae --steps 16000
#     python -m course_lib pretrain beta_vae --steps 16000
#
# `load_or_train` loads them when the recipe asked for is exactly the shipped one and checks
# their sha256; with another `SEED` it trains them. The cell prints each recipe, the passes
# over dSprites it makes and the training time that the manifest records. The MIG is computed
# on 10,000 images, as in the manifest (which scored other images).
#
# ⚠️ **Heavy cell** when the recipe differs from the shipped one (another `SEED`): it then
# trains both models, for as long as the manifest's times say.

# %%
mig_tc, mig_beta = dsprites_scores["β-TCVAE"]["mig"], dsprites_scores["β-VAE"]["mig"]
long_runs, long_scores, long_kl, long_chen, long_recipes, long_recon = {}, {}, {}, {}, {}, {}
N_LONG_EVAL = 10_000 if PROFILE != "smoke" else 256


def score_long(tag, model):
    """MIG (and KL per latent, nats) of a long-trained model's means on N_LONG_EVAL images (the
    same images for every model), kept in long_scores and long_kl; its reconstruction error
    (nats per image) on the first 1,000 of them in long_recon."""
    enc = encode_dataset(model, ds, n=N_LONG_EVAL, seed=SEED + 4, device=device)
    with torch.no_grad():
        first = ds.images(torch.as_tensor(enc.classes[:1000])).to(device)
        long_recon[tag] = float(model.loss_terms(first)["recon"])
    long_scores[tag] = mig(enc.mu, enc.classes, factor_names=ds.factor_names)
    long_kl[tag] = kl_normal(torch.from_numpy(enc.mu), torch.from_numpy(enc.logvar)).mean(0).numpy()
    # Chen et al.'s protocol (sampled MI clamped at 0, shape left out), on 2,000 of the images
    long_chen[tag] = mig_sampled(enc.mu, enc.logvar, enc.classes, n_samples=min(N_LONG_EVAL, 2000), seed=SEED,
                                 factor_names=ds.factor_names, variant="chen2018")
    return long_scores[tag]


for tag, name in (("β-VAE", "beta_vae"), ("β-TCVAE", "beta_tcvae")):
    run = load_or_train(name, profile="smoke" if PROFILE == "smoke" else "quick", steps=LONG_STEPS,
                        seed=SEED, device=device, progress=False)
    recipe = long_recipes[tag] = run.extra["recipe"]
    long_runs[tag] = run.model.eval()
    score_long(tag, long_runs[tag])
    print(f"{tag:<8} {run.extra['source']:<8} β = {recipe['config']['beta']:g}, {recipe['steps']} steps of "
          f"{recipe['batch_size']}, lr {recipe['lr']:g}, seed {recipe['seed']}: MIG {long_scores[tag].score:.3f}  "
          "per factor " + ", ".join(f"{n} {v:.2f}" for n, v in zip(ds.factor_names, long_scores[tag].per_factor)
                                    if np.isfinite(v))
          + f"; Chen et al.'s protocol {long_chen[tag].score:.3f}")
    if run.extra["source"] == "shipped":
        shipped_mig, trained_on = run.extra["metrics"].get("mig"), run.extra["trained_on"]
        print(f"{'':<8} manifest: MIG {shipped_mig:.3f} on {run.extra['metrics'].get('metric_images')} other "
              f"images; trained {describe_training(trained_on)}; "
              f"{recipe['steps'] * recipe['batch_size'] / len(ds):.1f} passes over dSprites")
mig_tc_long, mig_beta_long = long_scores["β-TCVAE"].score, long_scores["β-VAE"].score
headline(f"β-TCVAE (β=6) MIG after {LONG_STEPS} steps", mig_tc_long, ".3f")
headline(f"β-VAE (β=8) MIG after {LONG_STEPS} steps", mig_beta_long, ".3f")
print(f"β-TCVAE above β-VAE on the same budget (discrete MIG): {mig_tc_long > mig_beta_long} (one seed each, "
      "β 6 against 8; how much one seed can move a β-VAE's MIG: the next line)")
print(f"  the β-VAE's MIG with the seed: notebook 03's twenty seeds of its 2,000-step recipe ranged from "
      f"{min(BETA_VAE_SEED_SWEEP_MIG):.3f} to {max(BETA_VAE_SEED_SWEEP_MIG):.3f}; the shipped models of the β = 8 "
      "recipe: " + ", ".join(f"{e['recipe']['steps']:,} steps, seed {e['recipe']['seed']}: {e['metrics']['mig']:.3f}"
                             for e in shipped_with("beta_vae", beta=8.0)))
print(f"β-TCVAE by the course's version of Chen et al.'s protocol [{long_chen['β-TCVAE'].estimator}]: "
      f"{long_chen['β-TCVAE'].score:.3f} (not comparable with their published figures: fewer images and samples)")
print(f"the β-TCVAE's discrete MIG ({mig_tc_long:.3f}, shape counted) is "
      + ("higher" if mig_tc_long > long_chen["β-TCVAE"].score else "lower")
      + f" than by Chen et al.'s protocol ({long_chen['β-TCVAE'].score:.3f}, shape left out, MI clamped at 0)")

OWN_LATENT, SPREAD = 0.2, 0.05   # per-factor gap/H: one latent clearly ahead above, spread out below


def factor_reading(result):
    """Per factor: its gap/H, its most informative latent and the number of latents with at
    least half of its largest MI."""
    out = []
    for k, (name, gap) in enumerate(zip(ds.factor_names, result.per_factor)):
        if not np.isfinite(gap):
            continue
        column = result.mutual_info[:, k]
        out.append((name, float(gap), int(column.argmax()),
                    int((column >= 0.5 * column.max()).sum()) if column.max() > 0 else 0))
    return out


for tag, result in long_scores.items():
    reading = factor_reading(result)
    ahead = [(n, g, j) for n, g, j, _ in reading if g >= OWN_LATENT]
    spread = [f"{n} (gap {g:.2f}, {c} latents)" for n, g, _, c in reading if g < SPREAD]
    shared = sorted({j for _, _, j in ahead if sum(jj == j for _, _, jj in ahead) > 1})
    print(f"{tag}: one latent clearly ahead (gap ≥ {OWN_LATENT}): "
          + (", ".join(f"{n} (z{j}, {g:.2f})" for n, g, j in ahead) or "no factor")
          + "".join(f" — {' and '.join(n for n, _, jj in ahead if jj == j)} share z{j}" for j in shared)
          + f"; spread over several latents or not learned (gap < {SPREAD}): {', '.join(spread) or 'none'}")
from course_lib.checkpoints import read_manifest

_manifest = read_manifest()["checkpoints"]
_short, _long = f"beta_vae-2000steps-seed{SEED}", f"beta_vae-{LONG_STEPS}steps-seed{SEED}"
if _short in _manifest and _long in _manifest and LONG_STEPS > 2000:
    m_short, m_long = _manifest[_short]["metrics"]["mig"], _manifest[_long]["metrics"]["mig"]
    print(f"β-VAE (β = 8) in the manifest: MIG {m_short:.3f} after 2,000 steps (notebook 03), {m_long:.3f} after "
          f"{LONG_STEPS:,}: " + ("the longer run scores LOWER" if m_long < m_short else "the longer run scores higher"))


def mi_panels(matrices, filename):
    """The heat maps of I(z_j; v_k) of several models side by side (title → D×K), on one shared
    colour scale (so that cells can be compared across panels), saved."""
    vmax = max(float(np.nanmax(m)) for m in matrices.values())
    fig = viz.mi_heatmaps(matrices, ds.factor_names, vmax=vmax if vmax > 0 else None)
    viz.save_figure(fig, filename)
    return fig


def latent_labels(result, dims):
    """Row labels: each latent with the factor it shares the most information with (argmax of
    its row of I(z_j; v_k), however small) and that MI in nats."""
    return [f"z{j} ({ds.factor_names[int(np.argmax(result.mutual_info[j]))]} "
            f"{float(np.max(result.mutual_info[j])):.2f})" for j in dims]


def traversal_changes(model, z0, dims, labels):
    """Measure what each traversal row draws (viz.traversal_row_changes: how far the sprite's
    centre moves over the row, in pixels, x to the right and y down, and the ratio of its largest
    to its smallest area) and print one line per row with whether the row does what its label's
    factor would (viz.row_shows — posX: moves along x, posY: along y, scale: grows or shrinks,
    orientation: turns, shape: changes shape; either also when the outline changes without
    moving or resizing) and what else it does."""
    for label, c in zip(labels, viz.traversal_row_changes(viz.traversal_images(model, z0, dims))):
        what = viz.describe_row_change(c)
        shows, others = viz.row_shows(what, label.split("(")[1].split()[0])
        print(f"  {label:<22} {viz.row_measures(c)}: {what}; does what its label's factor would: {shows}"
              + (f" (also {', '.join(others)})" if shows and others else ""))


display(mi_panels({f"{tag}, {LONG_STEPS} steps: MIG {r.score:.2f}": r.mutual_info for tag, r in long_scores.items()},
                  "05_long_mutual_info.png"))
long_tc = long_runs["β-TCVAE"]
with torch.no_grad():
    x_show = ds.images(ds.sample_classes(1, generator=torch.Generator().manual_seed(SEED + 3))).to(device)
    mu_show = long_tc.encode(x_show)[0]
    top = np.argsort(-long_kl["β-TCVAE"])[:6].tolist()
    top_labels = latent_labels(long_scores["β-TCVAE"], top)
    fig = viz.traversal_grid(long_tc, mu_show[0], dims=top, scale=0.8, labels=top_labels,
                             title=f"β-TCVAE, {LONG_STEPS} steps: six latents of largest KL")
    print(f"β-TCVAE traversal rows, from {float(viz.DEFAULT_TRAVERSAL[0]):g} to "
          f"{float(viz.DEFAULT_TRAVERSAL[-1]):g} (viz.describe_row_change's thresholds: a move of 3 px, an area "
          "ratio of 1.25, half the area changed):")
    traversal_changes(long_tc, mu_show[0], top, top_labels)
viz.save_figure(fig, "05_long_traversal_beta_tcvae.png")
fig

# %% [markdown]
# How to read the lines above. Chen et al. report that β-TCVAE disentangles dSprites better
# than β-VAE: the first check says whether our pair agrees on this budget (one seed each: the
# line under it shows how far the seed alone moves a β-VAE), the next gives the β-TCVAE's score
# by the course's version of their protocol (the two protocols
# give different numbers for one model: theirs leaves shape out and clamps each MI at 0, ours
# counts shape and bins the means; a line printed above the heat maps says which is higher here and by
# how much, and a comparison with a published number must use the publication's). The
# per-factor lines say where the
# score comes from: a factor with a large gap has one latent that knows it far better than any
# other (MIG does not ask that latent to know nothing else: two factors can share it, and the
# line says so); a position factor with a small gap is spread over several latents, each of
# which knows part of it. The heat maps share one colour scale, so their cells compare across
# panels. Each traversal row (the latent set to each value, the other latents kept at one
# image's code) is labelled with the factor that its latent shares the most information with,
# and that MI in nats: an argmax, taken however small the MI and however many latents share
# the factor, so it need not be what the row draws. A latent that holds part of a position can
# move the sprite along a diagonal, or, traversed alone from this one code, hardly move it.
# The lines printed above the traversal measure what each row does (how far the sprite's centre
# moves in x and y, how its area changes) and check it against the label. In principle the TC
# term rejects mixtures of positions (a rotated square of positions is not a product of its
# marginals), but the dependence is weak and,
# with 64 codes per batch out of 737,280 images, the minibatch estimate of $\log q(z)$ that
# carries it is coarse (section 2); whether a larger batch helps at the same number of images
# is exercise 6 below. The line after the per-factor lines compares the shipped β-VAE with notebook 03's shorter run
# of the same recipe: when the longer run scores lower, the extra steps made the code *less*
# disentangled, not more: the β-VAE objective keeps improving the reconstruction and the KL
# without rewarding one factor per latent, so training longer can mix factors that a shorter
# run had kept apart. One seed each, so this is one draw of a spread that Locatello et al.
# (2019) show to be wide.
#
# A gap can also come from a latent that carries *another* factor correlated with this one in
# the pixels: the three shapes of one scale class cover different areas, so a latent of size
# alone tells shape apart somewhat. When shape and scale share a latent, look at its row of
# the traversal: if the sprite only grows, the shape "information" is size.

# %% [markdown]
# ### FactorVAE at its paper's recipe (shipped)
#
# Source paper 004 implements Kim & Mnih's FactorVAE and gives no dSprites setting of its own,
# so the course ships a FactorVAE with Kim & Mnih's dSprites recipe: γ = 35 (their best
# dSprites model), a 6 × 1000 discriminator, Adam with learning rate 10⁻⁴ for the VAE and 10⁻⁴
# (β₁ = 0.5, β₂ = 0.9) for the discriminator, batches of 64, trained by
#
#     python -m course_lib pretrain factor_vae --profile full --resume
#
# for the number of steps the cell prints, on a CPU, stopped and continued with `--resume` (the manifest
# records the hours, segments and machines). With learning rate 10⁻⁴ a FactorVAE needs many
# more steps than the 16,000 of the pair above. Where several seeds are shipped, the cell loads
# the one that notebook 08's leaderboard uses (the highest MIG on 10,000 images, a choice made
# with the true factors) and prints which; `SEED` does not change it. When none is shipped, the
# quick profile says how to train one instead of training it here, which would take hours; the
# smoke profile trains its few-step recipe.

# %%
FV_PROFILE = "smoke" if PROFILE == "smoke" else "full"
fv_seed, fv_chosen = SEED, leaderboard.NOT_SELECTED
if FV_PROFILE == "full":
    fv_seed, fv_chosen = leaderboard.provenance("FactorVAE", 1, SEED)
fv_shipped = find_shipped(reference_recipe("factor_vae", FV_PROFILE, seed=fv_seed)) is not None
factor_long = None
if fv_shipped or PROFILE != "quick":
    fv_run = load_or_train("factor_vae", profile=FV_PROFILE, seed=fv_seed, device=device, progress=False)
    factor_long = fv_run.model.eval()
    fv_recipe, fv_trained = fv_run.extra["recipe"], fv_run.extra.get("trained_on", {})
    long_recipes["FactorVAE"] = fv_recipe
    score_long("FactorVAE", factor_long)
    print(f"FactorVAE {fv_run.extra['source']}: γ = {fv_recipe['config']['gamma']:g}, discriminator "
          f"{fv_recipe['config']['disc_layers']}×{fv_recipe['config']['disc_hidden']}, {fv_recipe['steps']:,} steps of "
          f"{fv_recipe['batch_size']}, lr {fv_recipe['lr']:g}, seed {fv_recipe['seed']} ("
          + ("the only seed shipped" if fv_chosen == leaderboard.NOT_SELECTED and fv_run.extra["source"] == "shipped"
             else fv_chosen) + ")")
    if fv_run.extra["source"] == "shipped":
        print(f"trained {describe_training(fv_trained)}; "
              f"{fv_recipe['steps'] * fv_recipe['batch_size'] / len(ds):.1f} passes over dSprites")
    result = long_scores["FactorVAE"]
    print(f"MIG {result.score:.3f} on {N_LONG_EVAL:,} images; per factor "
          + ", ".join(f"{n} {v:.2f}" for n, v in zip(ds.factor_names, result.per_factor) if np.isfinite(v)))
    print(f"FactorVAE against the {LONG_STEPS:,}-step β-VAE: MIG {result.score:.3f} vs "
          f"{long_scores['β-VAE'].score:.3f}, reconstruction {long_recon['FactorVAE']:.1f} vs "
          f"{long_recon['β-VAE']:.1f} nats/image")
    print(f"FactorVAE above the {LONG_STEPS:,}-step β-TCVAE: {result.score > mig_tc_long} (discrete MIG); "
          f"by Chen et al.'s protocol {long_chen['FactorVAE'].score:.3f} against {long_chen['β-TCVAE'].score:.3f}")
    fv_key = find_shipped(fv_recipe)[0] if fv_run.extra["source"] == "shipped" else None
    fv_group = leaderboard.seed_groups().get(fv_key.replace(f"-seed{fv_recipe['seed']}", "-seed*", 1)) if fv_key else None
    fv_others = [(sd, v) for sd, v in (fv_group or []) if sd != fv_recipe["seed"]]
    if fv_others:   # the comparison above uses the best of the shipped seeds: the others, for fairness
        print(f"this seed is the best MIG of {len(fv_others) + 1} shipped seeds, a choice made with the true factors "
              f"(the β-TCVAE has one seed); the other seed{'s' if len(fv_others) > 1 else ''}, by the manifest's MIG: "
              + ", ".join(f"seed {sd} {v:.3f} (above the β-TCVAE's {mig_tc_long:.3f}: {v > mig_tc_long})"
                          for sd, v in fv_others))
    headline(f"FactorVAE (γ=35, shipped recipe) MIG on {N_LONG_EVAL} images", result.score, ".3f")
    display(mi_panels({f"{tag}, {long_recipes[tag]['steps']:,} steps: MIG {r.score:.2f}": r.mutual_info
                       for tag, r in long_scores.items()},
                      "05_long_mutual_info_with_factorvae.png"))
    with torch.no_grad():
        mu_fv = factor_long.encode(x_show)[0]
        top_fv = np.argsort(-long_kl["FactorVAE"])[:6].tolist()
        fv_labels = latent_labels(result, top_fv)
        fig = viz.traversal_grid(factor_long, mu_fv[0], dims=top_fv, scale=0.8, labels=fv_labels,
                                 title="FactorVAE, shipped recipe: six latents of largest KL")
        print("FactorVAE traversal rows (measured as for the β-TCVAE's):")
        traversal_changes(factor_long, mu_fv[0], top_fv, fv_labels)
    viz.save_figure(fig, "05_long_traversal_factorvae.png")
    display(fig)
else:
    print(f"No FactorVAE with this recipe is shipped. Train it (hours on a CPU) with\n"
          f"    python -m course_lib pretrain factor_vae --profile full --seed {SEED} --resume\n"
          "and rerun this cell; the rest of the notebook does not need it.")

# %% [markdown]
# Read the FactorVAE lines like the pair's: the per-factor gaps say which factors have a latent
# of their own, the heat map (one colour scale for the three panels) shows where each factor
# went, and the measured traversal rows say what its six most used latents draw, and whether
# that agrees with the factor each is labelled with. Kim & Mnih report that FactorVAE gives a
# better trade-off than β-VAE: more disentanglement at the same reconstruction. The lines above
# compare this one with the 16,000-step β-VAE (a different budget, so only a hint) and say whether it beats the shorter β-TCVAE, by
# the course's discrete MIG (the leaderboard's) and by Chen et al.'s protocol. The two can
# disagree, since they weigh the factors differently (shape counts in one, not in the other);
# where they do, which model is ahead depends on the protocol, and neither can be called the
# better one from these numbers.

# %% [markdown]
# Mutual information between each latent and each factor shows *how* each model spreads the
# factors over its latents (one bright cell per column is the disentangled ideal), here for the
# three short runs, on one colour scale. The lines under the heat maps say, for every model of
# this notebook, where its MIG comes from: MIG is the mean of the per-factor gaps, so each
# factor contributes its gap divided by the number of factors.

# %%
def mig_sources(tag, per_factor, mutual_info):
    """Print which factors give most of a model's MIG (with the latent that knows each best)
    and whether posX, posY and scale each have a latent of their own (three different latents
    lead them, each with a gap of at least SPREAD, the level below which section 5 calls a
    factor spread out)."""
    gaps = {n: (float(g), int(np.argmax(mutual_info[:, k])))
            for k, (n, g) in enumerate(zip(ds.factor_names, per_factor)) if np.isfinite(g)}
    total = sum(max(g, 0.0) for g, _ in gaps.values())
    ranked = sorted(gaps, key=lambda n: -gaps[n][0])
    top, share = [], 0.0
    for n in ranked:   # the fewest factors that give at least two thirds of the MIG
        if share >= 2 / 3 or total <= 0:
            break
        top.append(n)
        share += max(gaps[n][0], 0.0) / total
    own = [gaps[n][1] for n in ("posX", "posY", "scale") if n in gaps and gaps[n][0] >= SPREAD]
    print(f"{tag:<30} MIG {total / len(gaps):.3f}: " + ", ".join(f"{n} {gaps[n][0]:.2f} (z{gaps[n][1]})" for n in ranked)
          + f"; {' + '.join(top) or 'no factor'} {'gives' if len(top) == 1 else 'give'} {share:.0%} of it; "
          f"posX, posY and scale each led by a latent of its own (gap ≥ {SPREAD}): {len(own) == 3 and len(set(own)) == 3}")


display(mi_panels({f"{tag}: MIG {sc['mig']:.2f}": sc["mi"] for tag, sc in dsprites_scores.items()},
                  "05_dsprites_mutual_info.png"))
print("per-factor gap/H (the latent that knows the factor best), largest first:")
for tag, sc in dsprites_scores.items():
    mig_sources(f"{tag}, {STEPS} steps", sc["per_factor"], sc["mi"])
for tag, r in long_scores.items():
    mig_sources(f"{tag}, {long_recipes[tag]['steps']:,} steps", r.per_factor, r.mutual_info)

# %% [markdown]
# Each title carries the model's MIG; the three panels share one colour scale, so a cell as
# bright as another in a neighbouring panel holds as many nats. A column with one bright cell is
# a factor with a latent of its own; a column lit in several rows is a factor shared between
# latents, and a dark column a factor the model has not learned (colour is constant in dSprites:
# its column is always dark).
# A faint, even column lit in *every* latent is the estimator's bias, not information: with
# $B$ bins, $V$ values and $N$ images the plug-in MI of unrelated variables is about
# $(B-1)(V-1)/(2N)$ nats, which for orientation (40 values, 20 bins) on the quick profile's 2,000 images is about 0.19.
#
# Chen et al. and Kim & Mnih report that, with the papers' budgets, β-TCVAE and FactorVAE put
# each position and the scale in a latent of its own, which is what raises their MIG. The lines
# under the heat maps say where each of our models' MIG comes from, and whether it has that
# structure (the last check of each line). A MIG can be raised in other ways: by one latent of
# size that counts for both scale and shape (the same latent named after both factors), while
# the positions give next to nothing; two models with about the same MIG can then differ in
# what they separate, and the per-factor gaps, not the mean, say which model does what the
# papers describe.
#
# ### Traversals
#
# Each row sets one latent (the five with the largest KL) to each value from −2 to 2 in turn,
# the other latents kept at the posterior mean of one image, for each model. The values are set
# outright, not added to that latent's mean, so no column need be the image's reconstruction
# (the one at 0 is, only for a latent whose mean is 0).

# %%
x_probe = ds.images(ds.sample_classes(1, generator=torch.Generator().manual_seed(SEED + 3))).to(device)
for tag, r in dsprites_runs.items():
    model = r.model.eval()
    with torch.no_grad():
        mu0 = model.encode(x_probe)[0][0]
        kl_order = np.argsort(-np.asarray(r.history["kl_per_latent"][-1]))[:5].tolist()
        fig = viz.traversal_grid(model, mu0, dims=kl_order, title=f"{tag}, {STEPS} steps: traversals", scale=0.8)
    viz.save_figure(fig, f"05_traversal_{tag.replace('β', 'beta')}.png")
    display(fig)
    model.train()

# %% [markdown]
# A latent that changes one thing only (x position, y position, scale) along its row is the
# behaviour MIG rewards; rows that change several things at once, or nothing, are entangled
# or unused latents.
#
# An interactive explorer (needs ipywidgets): one slider per latent of the β-TCVAE.

# %%
try:
    explorer = widgets.latent_explorer(dsprites_runs["β-TCVAE"].model.eval(), image=x_probe[0].cpu())
    display(explorer.widget)
except ImportError as err:
    print(f"no explorer here ({err}); install ipywidgets to use it")

# %% [markdown]
# ## 6. Digits at 32×32: the reconstruction table of source paper 004
#
# Source paper 004 trains a controlled VAE (CVAE), FactorVAE (FVAE) and its CFactorVAE (CFVAE)
# on MNIST resized to 32×32, with the encoder/decoder of its Table 2 (`arch="mnist32"`; the
# table's last transposed convolution has 32 channels, the course's 1, the image's) and 20
# latents, for 50 epochs, and compares reconstruction (Table 1). Here the three share
# everything but the loss: CVAE is `CFactorVAE(gamma=0)` (Eq. 9), FVAE is `FactorVAE(gamma=γ)`
# and CFVAE is `CFactorVAE(gamma=γ)`. The source paper states none of the weights or the
# schedule, so these are the course's choices: β = 1 in the CVAE's Eq. 9 (Eq. 12's weight on
# $|\mathrm{KL} - C|$ is 1, and the CVAE row is Eq. 12 without the TC), γ = `MNIST_GAMMA` for
# FVAE and CFVAE, and C raised linearly from 0.5 to `MNIST_C_MAX` nats over the first half of
# the `MNIST_STEPS` steps, in every profile (the source says only that C "is gradually
# increased"); the batch of 64 and the learning rate are the course's too. The cell that trains
# them prints these values. The loader says which data set is in use: on a machine without
# torchvision or network it is scikit-learn's 8×8 digits, resized (a much smaller, blurrier set
# whose numbers are not comparable with the source paper's); the labels of the results name
# it, and there the table is compared with, not reproduced.

# %%
train_set = load_mnist(train=True)
test_set = load_mnist(train=False, verbose=False)
x_train, x_test = train_set.images, test_set.images[:2000]
DIGITS = {"torchvision-mnist": "MNIST", "sklearn-digits": "sklearn 8×8 digits"}.get(train_set.source, train_set.source)
viz.show_images(x_train[:16], nrow=16, title=f"16 training images ({train_set.source})")

# %% [markdown]
# The images are gray levels in [0, 1]; the Bernoulli reconstruction term accepts such targets
# (it is then a cross-entropy, not a log-likelihood of binary data). Next, the three models.
# **Heavy cell**: under a minute of CPU in the quick profile.

# %%
def mnist_model(kind):
    common = dict(num_latents=MNIST_LATENTS, arch="mnist32", disc_hidden=DISC_HIDDEN,
                  disc_layers=DISC_LAYERS)
    capacity = dict(c_start=0.5, c_max=MNIST_C_MAX, c_steps=max(1, MNIST_STEPS // 2))
    if kind == "CVAE":
        return CFactorVAE(gamma=0.0, **capacity, **common)
    if kind == "FVAE":
        return FactorVAE(gamma=MNIST_GAMMA, **common)
    return CFactorVAE(gamma=MNIST_GAMMA, **capacity, **common)


print(f"the course's settings (source paper 004 states none of them): β = 1 (CVAE), γ = {MNIST_GAMMA:g} (FVAE, "
      f"CFVAE), C from 0.5 to {MNIST_C_MAX:g} nats over the first {max(1, MNIST_STEPS // 2)} of {MNIST_STEPS} steps, "
      f"batch 64, lr {LR:g}; data: {DIGITS}")
torch.manual_seed(SEED)
mnist_runs = {kind: fit_timed(f"mnist_{kind}", mnist_model(kind), x_train, MNIST_STEPS, 64)
              for kind in ("CVAE", "FVAE", "CFVAE")}

# %% [markdown]
# "Train loss" and "train recon" are the training loop's averages over the last logging window;
# "test" numbers are the same terms on the first 2,000 test images, or all of them when there are
# fewer (the cell prints how many; posterior samples, the
# discriminator's TC, C at the end of training), all in nats per image (sums over 32×32 pixels).

# %%
SEED_TABLE = {"CVAE": (125.75, 124.89, 21.13, 21.0), "FVAE": (141.12, 121.14, 23.73, 20.48),
              "CFVAE": (118.69, 118.02, 20.01, 19.92)}


@torch.no_grad()
def test_terms(model, steps):
    model.eval()
    torch.manual_seed(SEED + 5)
    loss = recon = 0.0
    for start in range(0, len(x_test), 500):
        x = x_test[start:start + 500].to(device)
        t = model.loss_terms(x, steps)
        loss += float(t["loss"]) * len(x)
        recon += float(t["recon"]) * len(x)
    model.train()
    return loss / len(x_test), recon / len(x_test)


mnist_table = {}
for kind, r in mnist_runs.items():
    test_loss, test_recon = test_terms(r.model, MNIST_STEPS)
    mnist_table[kind] = (r.history["loss"][-1], r.history["recon"][-1], test_loss, test_recon)
print(f"test terms on {len(x_test):,} test images of {test_set.source}")
print(f"{'model':<6} | {'source paper 004 (MNIST, 50 ep)':^31} | ours: {train_set.source}, {MNIST_STEPS} steps × 64")
print(f"{'':<6} | {'train loss/recon':>16} {'test loss/recon':>14} | {'train loss/recon':>16} {'test loss/recon':>16}")
for kind in ("CVAE", "FVAE", "CFVAE"):
    s, o = SEED_TABLE[kind], mnist_table[kind]
    print(f"{kind:<6} | {s[0]:>7.2f}/{s[1]:<8.2f} {s[2]:>6.2f}/{s[3]:<7.2f} | "
          f"{o[0]:>7.2f}/{o[1]:<8.2f} {o[2]:>7.2f}/{o[3]:<8.2f}")
    headline(f"{DIGITS} {kind} test reconstruction (nats/image)", o[3], ".2f")
recon_order = sorted(mnist_table, key=lambda k: mnist_table[k][3])
cfvae_best = recon_order[0] == "CFVAE"
print(f"test reconstruction on {DIGITS}, best first:", " < ".join(f"{k} {mnist_table[k][3]:.2f}" for k in recon_order),
      "| CFVAE best, as in source paper 004 on MNIST:", cfvae_best)
for kind in ("FVAE", "CFVAE"):   # how much the TC term weighs in the objective these runs trained
    h = mnist_runs[kind].history
    tc_end, acc_end = late_mean(h, "tc"), late_mean(h, "disc_acc")
    print(f"{kind}: the discriminator's TC estimate over the last tenth of training {tc_end:.3f} nats (accuracy "
          f"{acc_end:.2f}), so γ·TC = {MNIST_GAMMA * tc_end:.2f} nats of a train loss of {mnist_table[kind][0]:.1f}")

# %% [markdown]
# Eq. 12's capacity term is taken per image. For the trained CFactorVAE, on the first 500 test
# images (all of them when there are fewer; the line says how many) at the end of training,
# here it is beside the batch variant $|\text{mean KL} - C|$:

# %%
cfvae = mnist_runs["CFVAE"].model.eval()
with torch.no_grad():
    mu, logvar = cfvae.encode(x_test[:500].to(device))
    kl_each = kl_normal(mu, logvar).sum(1).cpu()  # KL_i of every image, nats
cfvae.train()
c_end = cfvae.capacity(MNIST_STEPS)
per_image = float((kl_each - c_end).abs().mean())
batch_form = float(abs(kl_each.mean() - c_end))
print(f"{len(kl_each)} test images; C = {c_end:.2f} nats; KL per image: mean {float(kl_each.mean()):.2f}, "
      f"std {float(kl_each.std()):.2f}, range {float(kl_each.min()):.2f} to {float(kl_each.max()):.2f}")
print(f"Eq. 12, per image: mean |KL_i - C| = {per_image:.2f} nats;  batch variant: |mean KL - C| = {batch_form:.2f} nats")
assert batch_form <= per_image + 1e-6  # Jensen: the batch form never exceeds the per-image one
gap_c = float(kl_each.mean()) - c_end
side = 1.0 if gap_c >= 0 else -1.0
past = (-side * (kl_each - c_end)).clamp_min(0)   # how far each image lies past C, on the far side from the mean
n_other = int((past > 0).sum())
print(f"mean KL − C = {gap_c:+.2f} nats, {abs(gap_c) / max(float(kl_each.std()), 1e-9):.1f} standard deviations of "
      f"KL_i; {n_other} of {len(kl_each)} images lie on the other side of C")
print(f"per-image − batch form = {per_image - batch_form:.3f} nats = 2 × the mean over all images of the distance "
      f"past C on the far side (0 on the near side) "
      f"({2 * float(past.mean()):.3f}): {math.isclose(per_image - batch_form, 2 * float(past.mean()), abs_tol=1e-3)}")
print("the KL ends " + ("ABOVE C: there the term costs one nat per nat of KL (weight 1), as a plain VAE's KL does, "
                        "so C does not hold the KL down to C" if gap_c > 0 else
                        "at or BELOW C: there the term rewards every extra nat of KL, pushing it up towards C"))

# %% [markdown]
# Reading these lines. The absolute value of Eq. 12 has two sides: below $C$ each nat of KL
# lowers the loss by one, above $C$ it raises it by one, exactly as a plain VAE's KL (β = 1)
# does. The KL is pulled up to $C$, but above it the term holds it back no more than a plain
# VAE's KL would, so $C$ is not a cap; the last line says on which side the KL ended. The two
# forms of the term differ only through the images on the other side of $C$ from the mean, by
# twice the mean over all images of how far each lies past $C$ (the line "per-image − batch
# form" checks this identity on the printed
# numbers). When the mean KL lies several standard deviations from
# $C$, few images cross it, and the two forms, with their gradients, nearly coincide: Eq. 12
# then penalises almost none of the spread that section 4 speaks of. Its difference from the
# batch form matters when the KL of the images straddles $C$.

# %% [markdown]
# How to read the comparison. The source paper's *training* numbers (about 118-141 nats) are
# the usual scale of a summed Bernoulli loss on MNIST, so ours can be compared with them when
# the real MNIST is loaded and trained for 50 epochs (the full profile: 46,900 steps of 64).
# The source paper's *test* numbers (about 20) measure something else: its §5.2 computes them
# "during the evaluation stage in which we generate unseen samples based on randomly generated
# latent representations", while our test columns reconstruct real held-out images from their
# posterior samples; the scale is also unexplained, so we do not try to match them. The
# source paper's claim is the **ordering**: CFactorVAE reconstructs better than FactorVAE and
# the controlled VAE; FactorVAE's loss is the highest (it pays the whole KL, where the other two
# pay |KL − C| instead, and it adds γ·TC, as CFactorVAE does). The line under the
# table gives our ordering and whether it agrees (True or False), and the two lines after it how
# much γ·TC weighs in the FVAE's and CFVAE's losses: where it is a small part, CFVAE trains
# nearly the CVAE's objective and their order says little about the TC term. On MNIST that line is the
# reproduction of the claim; on the fallback digits (named in the table's header and in the
# line) it only says whether the ordering carries over to another, much smaller data set.
# Either way, one seed of a short run on the quick budget cannot settle it.
#
# Traversals of the CFactorVAE on the digits in use (the six latents with the largest KL):

# %%
model = mnist_runs["CFVAE"].model.eval()
with torch.no_grad():
    mu0 = model.encode(x_test[:1].to(device))[0][0]
    order = np.argsort(-np.asarray(mnist_runs["CFVAE"].history["kl_per_latent"][-1]))[:6].tolist()
    fig = viz.traversal_grid(model, mu0, dims=order, values=torch.linspace(-3, 3, 9),
                             title="CFactorVAE on 32×32 digits: traversals", scale=0.8)
model.train()
viz.save_figure(fig, "05_mnist_cfactorvae_traversal.png")
fig

# %% [markdown]
# The source paper traverses each latent over (−3, 3) and expects a disentangled latent to
# change "only one salient factor of variation" (§5.1); it shows such traversals for FactorVAE
# on celebA (background colour, hair colour, azimuth) and calls CFactorVAE's on MNIST and 3D
# chairs "also disentangled", without naming their factors. Look at what each row of ours
# changes: one aspect of the digit, several at once (a morph between digit classes), or nothing.
#
# ## Summary: the source papers' statements and our numbers

# %%
cpu_total, wall_total = time.process_time() - CPU_START, time.perf_counter() - WALL_START
tc_errors = {m: float(np.mean(study[(0.5, "mss", m)]) - true_tc[0.5]) for m in (smallest, largest)}
tc_recipe, bv_recipe = long_recipes["β-TCVAE"], long_recipes["β-VAE"]
if factor_long is not None:
    fv_line = (f"FactorVAE {long_scores['FactorVAE'].score:.3f} ({fv_recipe['steps']:,} steps, lr {fv_recipe['lr']:g}, "
               f"seed {fv_recipe['seed']}: {fv_chosen}"
               + (", other seeds " + ", ".join(f"{sd}: {v:.3f}" for sd, v in fv_others) if fv_others else "") + "; "
               f"γ = {fv_recipe['config']['gamma']:g}) vs β-TCVAE {mig_tc_long:.3f} ({tc_recipe['steps']:,} steps, "
               f"lr {tc_recipe['lr']:g}, β = {tc_recipe['config']['beta']:g}): different budgets and objectives")
else:
    fv_line = f"no FactorVAE with the shipped recipe for seed {SEED} (section 5 says how to train one)"
gaps = {tag: dict(zip(ds.factor_names, long_scores[tag].per_factor)) for tag in ("β-TCVAE", "β-VAE")}
MARGIN = 0.01   # per-factor gaps closer than this are a tie, not a lead
ahead = [f for f, v in gaps["β-TCVAE"].items() if np.isfinite(v) and v > gaps["β-VAE"][f] + MARGIN]
behind = [f for f, v in gaps["β-TCVAE"].items() if np.isfinite(v) and v < gaps["β-VAE"][f] - MARGIN]
summary = [
    ("source paper 003 Eq. 9: KL = index-code MI + TC + dim-wise KL",
     f"MSS TC vs closed form {true_tc[0.5]:.3f}: error {tc_errors[smallest]:+.3f} nats at batch {smallest}, "
     f"{tc_errors[largest]:+.3f} at {largest}, smaller on the larger batch: "
     f"{abs(tc_errors[largest]) < abs(tc_errors[smallest])}; dim-wise KL {terms9[2]:+.3f} vs true 0, within 2 s.e.: "
     f"{dw_in_noise} (the terms' sum = Monte-Carlo KL, |diff| {eq9_gap:.0e}: bookkeeping only)"),
    ("MWS estimator (Chen et al.)", f"TC offset (D−1)·log N = {offset:.1f} nats shown and removed"),
    ("source paper 004 Eq. 11: TC ≈ E[log D/(1−D)]",
     f"toy discriminator: {disc_tc:.3f} vs closed form {true_tc[0.5]:.3f} nats"),
    ("β-TCVAE beats β-VAE on MIG (source paper 003 Fig. 5)",
     f"MIG β-TCVAE {mig_tc:.3f}, β-VAE {mig_beta:.3f}, FactorVAE "
     f"{dsprites_scores['FactorVAE']['mig']:.3f} ({STEPS} steps); β-TCVAE {mig_tc_long:.3f} (β = "
     f"{tc_recipe['config']['beta']:g}), β-VAE {mig_beta_long:.3f} (β = {bv_recipe['config']['beta']:g}) "
     f"({LONG_STEPS} steps; per factor, β-TCVAE ahead on {', '.join(ahead) or 'none'}, behind on "
     f"{', '.join(behind) or 'none'})"),
    ("FactorVAE disentangles dSprites (Kim & Mnih)", fv_line),
    ("source paper 004 Table 1 (MNIST): CFVAE reconstructs best",
     "test recon " + ", ".join(f"{k} {v[3]:.1f}" for k, v in mnist_table.items())
     + f" ({DIGITS}, {MNIST_STEPS} steps); CFVAE best: {cfvae_best}"),
]
print(f"{'source papers say':<61} | ours ({PROFILE} profile)")
print("-" * 140)
for claim, ours in summary:
    print(f"{claim:<61} | {ours}")
print(f"\nthis notebook: wall {wall_total:.0f} s, CPU {cpu_total:.0f} s (process time of the kernel)")
headline("notebook 05 CPU seconds", cpu_total, ".0f")

# %% [markdown]
# In the smoke profile all numbers are meaningless (a few steps); the quick profile shows the
# estimator study fully and the training pipeline with short runs; the full profile (GPU) is the
# one to compare with the papers.
#
# ## Exercises for the reader
#
# 1. Implement Chen et al.'s original stratified weights (one importance weight for the last
#    batch element) and compare its TC error with the symmetric version of section 2.
# 2. Train β-TCVAE with the MWS estimator and with MSS: are the learned models different, even
#    though the logged TC values differ by $(D-1)\log N$?
# 3. Set α = 0 in β-TCVAE (no penalty on the index-code MI). What happens to the
#    reconstruction, and to the KL per latent?
# 4. FactorVAE with γ = 0 still trains its discriminator: use its TC estimate to measure the
#    total correlation of a plain VAE as training goes on.
# 5. In CFactorVAE, raise C faster or slower. Does the TC term still keep the latents
#    independent once C is large?
# 6. Is the batch the bottleneck of β-TCVAE's position latents? Train it with
#    `python -m course_lib pretrain beta_tcvae -p batch_size 256 --steps 4000` (as many images
#    as the shipped 16,000 steps of 64) and compare its per-factor MIG with the lines of section 5.
#
# ## References
#
# - F. Moga, *Learning disentangled representations with Variational Autoencoders* (source paper
#   `003_9cf833ed4120ca8c.txt`), §3.2.
# - P. Z. Wang, *Disentangling latent representations with CFactorized variational
#   autoencoder* (source paper `004_3136eab60f344f36.txt`).
# - R. T. Q. Chen, X. Li, R. Grosse and D. Duvenaud, *Isolating Sources of Disentanglement in
#   Variational Autoencoders*, NeurIPS 2018.
# - H. Kim and A. Mnih, *Disentangling by Factorising*, ICML 2018.
# - C. P. Burgess et al., *Understanding disentangling in β-VAE*, 2018.
# - F. Locatello et al., *Challenging Common Assumptions in the Unsupervised Learning of
#   Disentangled Representations*, ICML 2019 (the discrete MIG).
