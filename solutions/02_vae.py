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
# # 02 · The variational autoencoder: the ELBO, the Gaussian KL and the reparameterisation trick
#
# **What you will learn**
#
# - to derive the evidence lower bound (ELBO) twice: with Jensen's inequality, and as
#   $\log p(x)$ minus a KL divergence — and to check both numerically on a model where
#   everything is known;
# - to derive the KL divergence between a diagonal Gaussian and the standard normal;
# - why sampling $z \sim q_\phi(z\mid x)$ blocks gradients, and how the reparameterisation
#   $z = \mu + \sigma\,\varepsilon$ fixes it;
# - to write the VAE loss, train a VAE on dSprites, and read its KL per latent;
# - the **reduction pitfall**: averaging the reconstruction over pixels instead of summing
#   makes the same VAE collapse to the mean image;
# - why the VAE's prior samples are images while the autoencoder's (notebook 01) are not.
#
# Reproduces: the VAE part (§1.2, Eq. 2-4) of source paper `003_9cf833ed4120ca8c.txt` (F. Moga,
# *Learning disentangled representations with VAEs*) and the reduction mistake of source paper
# `001_00245305c4487d13.txt` (Li Donghao, *Summary and discussion of "Understanding
# disentangling in β-VAE"*, §2.2).

# %% [markdown]
# ## Parameters
#
# Papermill can override every name in the next cell
# (`papermill notebooks/02_vae.ipynb out.ipynb -p PROFILE quick -p STEPS 3000`); `None`
# means the profile's default.

# %% tags=["parameters"]
PROFILE = None        # "smoke", "quick" or "full"; None: $COURSE_PROFILE, else "quick"
SEED = 0
DEVICE = "auto"       # "auto", "cpu", "cuda", "mps"
NUM_LATENTS = None    # D, the size of z
STEPS = None          # training steps of each VAE
BATCH_SIZE = None
LR = None             # Adam learning rate
AE_STEPS = None       # training steps of the autoencoder we compare with
NUM_EVAL = None       # images used for the measurements

# %%
from course_lib import profiles

PROFILE = profiles.check_profile(PROFILE or profiles.default_profile())
param = profiles.settings(PROFILE)  # None: the profile's default; any other value is checked
NUM_LATENTS = param("NUM_LATENTS", NUM_LATENTS, 10, minimum=1)
STEPS = param("STEPS", STEPS, smoke=3, quick=1500, full=30_000, minimum=1)
BATCH_SIZE = param("BATCH_SIZE", BATCH_SIZE, smoke=8, quick=16, full=64, minimum=1)
LR = param("LR", LR, 1e-3, positive=True)
AE_STEPS = param("AE_STEPS", AE_STEPS, smoke=2, quick=500, full=10_000, minimum=1)
NUM_EVAL = param("NUM_EVAL", NUM_EVAL, smoke=64, quick=2000, full=10_000, minimum=1)
print(f"profile {PROFILE}: VAEs with D = {NUM_LATENTS}, {STEPS} steps of {BATCH_SIZE} images, "
      f"lr {LR}; autoencoder {AE_STEPS} steps")

# %% [markdown]
# ## Set-up

# %%
import math
from pathlib import Path

import numpy as np
import torch
from IPython.display import display
from matplotlib import colormaps
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from course_lib import exercises, viz
from course_lib.checkpoints import find_shipped, load_or_train, recipe
from course_lib.config import repo_root
from course_lib.data import DSprites
from course_lib.losses import bernoulli_recon, kl_normal
from course_lib.models import VAE, Autoencoder
from course_lib.notebook import setup
from course_lib.quality import best_match_iou, ink_blobs
from course_lib.report import headline
from course_lib.train import fit

device = setup(SEED, DEVICE, PROFILE)

# %% [markdown]
# ## 1. From an autoencoder to a generative model
#
# Notebook 01 ended with a decoder that cannot generate: we did not know which codes to feed
# it. A VAE starts from the other end, a **latent-variable model** with a prior we choose:
#
# $$p(z) = \mathcal N(0, I_D), \qquad p_\theta(x\mid z) = \prod_{i=1}^{4096} \operatorname{Bernoulli}\big(x_i;\ \operatorname{sigmoid}(\text{logits}_\theta(z))_i\big), \qquad p_\theta(x) = \int p_\theta(x\mid z)\, p(z)\, dz .$$
#
# Generating is easy (draw $z \sim p(z)$, decode). Learning $\theta$ by maximum likelihood is
# not: the integral over $z$ has no closed form, and neither has the posterior
# $p_\theta(z\mid x) = p_\theta(x\mid z)p(z)/p_\theta(x)$. The VAE introduces an **encoder**
# $q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ that
# approximates the posterior, and maximises a lower bound on $\log p_\theta(x)$.
#
# ## 2. The evidence lower bound, step by step
#
# **With Jensen's inequality.** Multiply and divide by $q_\phi(z\mid x)$ inside the integral,
# and use that $\log$ is concave, so $\log \mathbb E[Y] \ge \mathbb E[\log Y]$:
#
# $$\log p_\theta(x) = \log \int q_\phi(z\mid x)\,\frac{p_\theta(x, z)}{q_\phi(z\mid x)}\,dz
#   = \log \mathbb E_{q_\phi(z\mid x)}\!\left[\frac{p_\theta(x, z)}{q_\phi(z\mid x)}\right]
#   \;\ge\; \mathbb E_{q_\phi(z\mid x)}\!\left[\log \frac{p_\theta(x, z)}{q_\phi(z\mid x)}\right]
#   =: \operatorname{ELBO}(x).$$
#
# **The KL form** (the source paper's derivation, §1.2). Write
# $\log p_\theta(x) = \mathbb E_q[\log p_\theta(x)]$ (it does not depend on $z$) and
# $p_\theta(x) = p_\theta(x, z) / p_\theta(z\mid x)$, then multiply and divide by
# $q_\phi(z\mid x)$ inside the logarithm and split it into two terms:
#
# $$\log p_\theta(x) = \mathbb E_q\!\left[\log \frac{p_\theta(x, z)}{p_\theta(z\mid x)}\right]
#   = \mathbb E_q\!\left[\log \frac{p_\theta(x, z)\,q_\phi(z\mid x)}{p_\theta(z\mid x)\,q_\phi(z\mid x)}\right]
#   = \mathbb E_q\!\left[\log \frac{p_\theta(x, z)}{q_\phi(z\mid x)}\right]
#   + \mathbb E_q\!\left[\log \frac{q_\phi(z\mid x)}{p_\theta(z\mid x)}\right]
#   = \operatorname{ELBO}(x) + \operatorname{KL}\big(q_\phi(z\mid x)\,\|\,p_\theta(z\mid x)\big).$$
#
# So the gap in Jensen's inequality is exactly the KL divergence from the approximate to the
# true posterior: it is never negative, and it is zero when $q$ *is* the posterior. (The source
# paper's Eq. 2 defines the divergence with $p_\theta$ first, $D_{KL}(p_\theta\|q_\phi)$; the one
# its derivation arrives at, and the VAE uses, is the other direction,
# $\operatorname{KL}(q_\phi\|p_\theta)$, and the KL is not symmetric.)
#
# **The form we compute.** Split $p_\theta(x, z) = p_\theta(x\mid z)\,p(z)$:
#
# $$\operatorname{ELBO}(x) = \underbrace{\mathbb E_{q_\phi(z\mid x)}[\log p_\theta(x\mid z)]}_{-\text{reconstruction}}
#   \;-\; \underbrace{\operatorname{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{regulariser}} .$$
#
# The VAE loss is $-\operatorname{ELBO}$ (the source paper's Eq. 3, for one image), averaged
# over the images of a batch (its Eq. 4, PyTorch code that sums over the batch instead; the
# average only rescales the gradient).
#
# ### Checking the two identities on a model we can solve
#
# Take one latent and one observed number: $p(z) = \mathcal N(0, 1)$ and
# $p(x\mid z) = \mathcal N(x; z, s^2)$. Then $p(x) = \mathcal N(0, 1 + s^2)$ and the posterior
# is $\mathcal N\big(\tfrac{x}{1+s^2}, \tfrac{s^2}{1+s^2}\big)$. For a few choices of
# $q = \mathcal N(m, v)$ we estimate the ELBO by Monte Carlo and compare
# $\log p(x) - \operatorname{ELBO}$ with $\operatorname{KL}(q\,\|\,\text{posterior})$ computed
# by `torch.distributions`.

# %%
s2, x_obs = 0.5, 1.3
log_px = Normal(0.0, math.sqrt(1 + s2)).log_prob(torch.tensor(x_obs)).item()
posterior = Normal(x_obs / (1 + s2), math.sqrt(s2 / (1 + s2)))
mc_generator = torch.Generator().manual_seed(SEED)
print(f"log p(x) = {log_px:.4f} nats")
print(f"{'q = N(m, v)':<26} {'ELBO (Monte Carlo)':>18} {'log p(x) − ELBO':>16} {'KL(q ‖ posterior)':>18}")
for label, m, v in [("the true posterior", posterior.mean.item(), posterior.variance.item()),
                    ("the prior N(0, 1)", 0.0, 1.0),
                    ("N(1.5, 0.05)", 1.5, 0.05),
                    ("N(-1, 0.5)", -1.0, 0.5)]:
    q = Normal(m, math.sqrt(v))
    z = m + math.sqrt(v) * torch.randn(200_000, generator=mc_generator)
    log_joint = Normal(z, math.sqrt(s2)).log_prob(torch.tensor(x_obs)) + Normal(0.0, 1.0).log_prob(z)
    elbo = (log_joint - q.log_prob(z)).mean().item()
    gap_kl = torch_kl(q, posterior).item()
    print(f"{label:<26} {elbo:>18.4f} {log_px - elbo:>16.4f} {gap_kl:>18.4f}")

# %% [markdown]
# Every ELBO lies below $\log p(x)$ (Jensen), the gap matches the KL to the true posterior up
# to Monte Carlo noise (the KL form), and the bound is tight exactly when $q$ is the
# posterior. (That row's gap is exactly 0, not merely small: when $q$ is the posterior,
# $\log p(x, z) - \log q(z) = \log p(x)$ for every sample $z$, so the Monte Carlo average has
# no variance.) A VAE cannot reach the true posterior in general (its $q$ is a diagonal Gaussian
# produced by a network), so it maximises a bound and pays the gap.
#
# ## 3. The KL divergence between two Gaussians, derived
#
# With $q = \mathcal N(\mu, \sigma^2)$ and $p = \mathcal N(0, 1)$ in one dimension,
# $\log q(z) = -\tfrac12 \log(2\pi\sigma^2) - \tfrac{(z-\mu)^2}{2\sigma^2}$ and
# $\log p(z) = -\tfrac12 \log(2\pi) - \tfrac{z^2}{2}$, so
#
# $$\operatorname{KL}(q\,\|\,p) = \mathbb E_q[\log q(z) - \log p(z)]
#  = -\tfrac12\log\sigma^2 - \tfrac{\mathbb E_q[(z-\mu)^2]}{2\sigma^2} + \tfrac{\mathbb E_q[z^2]}{2}
#  = -\tfrac12\log\sigma^2 - \tfrac12 + \tfrac{\mu^2 + \sigma^2}{2},$$
#
# using $\mathbb E_q[(z-\mu)^2] = \sigma^2$ and $\mathbb E_q[z^2] = \mu^2 + \sigma^2$. Hence
#
# $$\operatorname{KL}\big(\mathcal N(\mu, \sigma^2)\,\|\,\mathcal N(0, 1)\big) = \tfrac12\left(\mu^2 + \sigma^2 - \log\sigma^2 - 1\right) \quad\text{nats}.$$
#
# For a diagonal Gaussian in $D$ dimensions the KL is the sum of the $D$ per-latent terms —
# the source paper's `KLD = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())`
# (Eq. 4). The encoder outputs $\log\sigma^2$ ("logvar"), which can be any real number.
#
# ### Exercise 1: the KL per latent
#
# Write `kl_divergence(mu, logvar)` returning the N×D tensor of per-latent KLs.

# %%
def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) ‖ N(0, 1)) per latent: mu, logvar N×D → N×D (nats)."""
    ### BEGIN SOLUTION
    # HINT: sigma² = exp(logvar); do not sum over the latents
    return 0.5 * (mu ** 2 + torch.exp(logvar) - logvar - 1)
    ### END SOLUTION


# %%
kl_divergence = exercises.check_kl_normal(kl_divergence)

# %% [markdown]
# An independent check: `torch.distributions` knows the KL between two normals, and a Monte
# Carlo average of $\log q(z) - \log p(z)$ over samples of $q$ estimates it too.

# %%
g = torch.Generator().manual_seed(SEED)
mu_t, logvar_t = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
q_t = Normal(mu_t, torch.exp(0.5 * logvar_t))
exact = torch_kl(q_t, Normal(torch.zeros_like(mu_t), torch.ones_like(mu_t)))
z_t = mu_t + torch.exp(0.5 * logvar_t) * torch.randn(100_000, 3, 4, generator=g)
monte_carlo = (q_t.log_prob(z_t) - Normal(0.0, 1.0).log_prob(z_t)).mean(0)
print("largest |ours − torch.distributions|:", f"{(kl_divergence(mu_t, logvar_t) - exact).abs().max():.2e}")
print("largest |ours − Monte Carlo (100,000 samples)|:",
      f"{(kl_divergence(mu_t, logvar_t) - monte_carlo).abs().max():.3f} nats")

# %% [markdown]
# ## 4. The reparameterisation trick, and why it is needed
#
# Training needs the gradient of $\mathbb E_{q_\phi(z\mid x)}[\log p_\theta(x\mid z)]$ with respect
# to the **encoder's** parameters $\phi$, which sit in the distribution we average over. A
# sample $z \sim q_\phi$ drawn by a random-number generator is just a number to autograd: it
# has no path back to $\mu$ and $\sigma$. Reparameterise instead: draw the noise from a fixed
# distribution and *build* $z$ from it,
#
# $$\varepsilon \sim \mathcal N(0, I), \qquad z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon, \qquad \sigma = \exp(\tfrac12 \log\sigma^2),$$
#
# so that $\mathbb E_{q_\phi}[f(z)] = \mathbb E_{\varepsilon}[f(\mu + \sigma\varepsilon)]$ and the
# gradient moves inside the expectation: $\partial z/\partial\mu = 1$,
# $\partial z/\partial \log\sigma^2 = \tfrac12\sigma\varepsilon$. `torch.distributions` makes the
# same distinction: `sample()` is cut from the graph, `rsample()` is reparameterised.
#
# Two details where the source paper slips (§1.2): it writes $z = \varepsilon\,\sigma^2 + \mu$,
# and it is inconsistent about $\varepsilon$: the same sentence writes $\epsilon \sim N(0, 1)$
# and says that this layer "samples from a standard uniform distribution". The scale is the
# standard deviation $\sigma$, not the variance, and $\varepsilon$ must be standard *normal*
# (its $N(0, 1)$, not the uniform); with either slip $z$ does not follow
# $\mathcal N(\mu, \sigma^2)$.

# %%
mu_demo = torch.tensor([1.0], requires_grad=True)
sigma_demo = torch.tensor([0.5], requires_grad=True)
q_demo = Normal(mu_demo, sigma_demo)
print("sample():  requires_grad =", q_demo.sample().requires_grad)
print("rsample(): requires_grad =", q_demo.rsample().requires_grad)

# %% [markdown]
# Without the trick one can still estimate the gradient with the score-function (REINFORCE)
# identity $\nabla_\mu \mathbb E_q[f(z)] = \mathbb E_q[f(z)\,\nabla_\mu \log q(z)]$, which needs
# no gradient of $f$ — but its variance is much larger. For $f(z) = z^2$, $\mu = 1$,
# $\sigma = 0.5$ the true gradient is $\partial_\mu(\mu^2 + \sigma^2) = 2$; here are both
# single-sample estimators over 10,000 draws.

# %%
eps = torch.randn(10_000, generator=torch.Generator().manual_seed(SEED))
z_demo = 1.0 + 0.5 * eps
reparam_grads = 2 * z_demo                                  # d/dmu (mu + sigma*eps)^2
score_grads = z_demo ** 2 * (z_demo - 1.0) / 0.5 ** 2       # f(z) * d/dmu log q(z)
for name, grads in [("reparameterised", reparam_grads), ("score function", score_grads)]:
    print(f"{name:<16} mean {grads.mean():6.3f}   standard deviation {grads.std():6.3f}")
print(f"the score-function estimator is {score_grads.std() / reparam_grads.std():.1f} times noisier")

# %% [markdown]
# Both are unbiased (their means are close to 2), but the reparameterised estimator is less
# noisy by the factor printed above, and it uses the gradient of the decoder. A VAE takes one sample per image and step,
# so this noise matters.
#
# ### Exercise 2: reparameterise
#
# Write `reparameterize(mu, logvar)` returning $z = \mu + \sigma\varepsilon$ with
# $\varepsilon \sim \mathcal N(0, I)$ of the shape of `mu`. The checker does not compare random
# numbers: it checks the shape, the gradients $\partial z/\partial\mu = 1$ and
# $\partial z/\partial\log\sigma^2 = \tfrac12(z - \mu)$, and that the implied $\varepsilon$ has
# mean 0 and standard deviation 1, differs from image to image and is uncorrelated across
# latents (which catches `torch.rand`, the uniform; a rescaled uniform would pass).

# %%
def reparameterize(mu, logvar):
    """A differentiable sample z ~ N(mu, exp(logvar)): mu, logvar N×D → z N×D."""
    ### BEGIN SOLUTION
    # HINT: torch.randn_like(mu) draws eps (standard normal, not torch.rand: uniform);
    #       sigma = exp(0.5 * logvar) is the standard deviation, not the variance; build z
    #       from mu, sigma and eps with torch operations (torch.normal or .sample() give no gradient)
    eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


# %%
reparameterize = exercises.check_reparameterize(reparameterize)

# %% [markdown]
# The checker returns the function that the rest of the notebook uses: the VAE that section 5
# trains draws its $z$ with it (yours when it is right, the reference otherwise).

# %% [markdown]
# ### Exercise 3: the VAE loss
#
# Put it together: for decoder logits, images $x$ (N×1×64×64), and the encoder's $\mu$,
# $\log\sigma^2$ (N×D), return the negative ELBO **per image**, averaged over the batch: the
# Bernoulli cross-entropy **summed over the pixels** plus the KL **summed over the latents**
# (the source paper's Eq. 4 sums over the batch too; we divide by N so that the loss does not
# depend on the batch size). `torch.nn.functional.binary_cross_entropy_with_logits` works on
# logits, which is more accurate than a sigmoid followed by `binary_cross_entropy`.

# %%
def negative_elbo(logits, x, mu, logvar):
    """−ELBO in nats per image, averaged over the batch (a scalar)."""
    ### BEGIN SOLUTION
    # HINT: reduction="none", then sum over the pixels (flatten(1).sum(1), not a mean: source paper
    #       001's pitfall) and average over the images; pass the logits themselves (the function
    #       applies the sigmoid: no second one); the loss is −ELBO = reconstruction + KL, so the
    #       KL (≥ 0) is added, not subtracted
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    recon = recon.flatten(1).sum(1)
    kl = kl_divergence(mu, logvar).sum(1)
    return (recon + kl).mean()
    ### END SOLUTION


# %%
negative_elbo = exercises.check_negative_elbo(negative_elbo)

# %% [markdown]
# The checker also names the usual slips when it recognises one: the mean over the pixels
# (section 6 shows what it does to a VAE), the sign (returning the ELBO, or subtracting the
# KL) and a double sigmoid.

# %% [markdown]
# ## 5. Training a VAE on dSprites
#
# The library's `VAE` (the Burgess et al. encoder now outputs $2 \times D$ numbers, $\mu$ and
# $\log\sigma^2$) computes exactly this loss in `loss_terms`, with `VAE.reparameterize`, and
# logs the reconstruction, the KL and the KL of every latent. First we confirm that your loss
# equals the library's on a batch, with the same $z$.

# %%
ds = DSprites()
x_eval = ds.images(ds.sample_classes(NUM_EVAL, generator=torch.Generator().manual_seed(SEED + 1000)))
vae_check = VAE(num_latents=NUM_LATENTS)
with torch.no_grad():
    mu_b, logvar_b = vae_check.encode(x_eval[:8])
    torch.manual_seed(SEED)
    library = vae_check.loss_terms(x_eval[:8])["loss"]
    torch.manual_seed(SEED)
    z_b = vae_check.reparameterize(mu_b, logvar_b)
    yours = negative_elbo(vae_check.decode(z_b), x_eval[:8], mu_b, logvar_b)
print(f"library loss {library:.3f} nats/image, yours {yours:.3f}")

# %% [markdown]
# The VAE we train is the library's network with **your** two functions inside: the
# subclass below overrides `loss_terms`, the method that `course_lib.train` calls on every
# batch, so that $z$ comes from your `reparameterize` and the loss that is minimised is your
# `negative_elbo` (the functions the checkers returned: yours when they are right, else the
# reference). For the plots it also logs the KL of each latent (the library's `kl_normal`)
# and the reconstruction term, your loss minus the KL.

# %%
class YourVAE(VAE):
    """The library's VAE (sum over pixels) trained with ``reparameterize`` and ``negative_elbo``."""

    exercise_functions = (reparameterize, negative_elbo)   # fit names the run after their code

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return self.decode(z), mu, logvar, z

    def loss_terms(self, x, step=0):
        logits, mu, logvar, z = self.forward(x)
        loss = negative_elbo(logits, x, mu, logvar)
        kl_per_latent = kl_normal(mu, logvar).detach().mean(0)   # logged, not trained on
        kl = kl_per_latent.sum()
        return {"loss": loss, "recon": loss.detach() - kl, "kl": kl, "kl_per_latent": kl_per_latent}

# %% [markdown]
# As in notebook 01, every network starts from He initialisation (weights with variance
# 2/fan-in, zero biases; the library does it): with PyTorch's default initialisation the
# 14-layer network's output hardly depends on its input, and training would first sit on a
# long plateau.
#
# ⚠️ **Heavy cell**: the VAE trains for `STEPS` steps (a minute or two on a laptop CPU in the
# quick profile); when a checkpoint with the same parameters exists (a second run), it is
# loaded instead, and the line under the cell says which happened. The code of your two
# functions counts among the parameters (`exercise_functions` above; `fit` names the run
# after it): after you solve or edit an exercise, the rerun trains anew.

# %%
torch.manual_seed(SEED)  # the initial weights
vae_run = fit(YourVAE(num_latents=NUM_LATENTS), ds, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, seed=SEED,
              device=device, tag="02")
vae = vae_run.model.eval()
checkpoint = Path(vae_run.checkpoint).resolve()   # printed relative to the repository
if checkpoint.is_relative_to(repo_root()):
    checkpoint = checkpoint.relative_to(repo_root())
print(f"loaded the finished run {checkpoint}" if vae_run.extra["loaded"] else
      f"trained in {vae_run.seconds:.0f} s ({vae_run.images_per_second:.0f} images/s)")
display(viz.plot_history(vae_run.history, keys=("recon", "kl"), logy=True,
                         title="VAE (sum over pixels): reconstruction and KL (nats/image)"))
kl_curve, kl_steps = np.asarray(vae_run.history["kl"]), vae_run.history["step"]
kl_low, kl_high = int(np.argmin(kl_curve)), int(np.argmax(kl_curve))
print(f"KL: {kl_curve[0]:.2f} nats at the first log (step {kl_steps[0]}), lowest {kl_curve[kl_low]:.2f} "
      f"(step {kl_steps[kl_low]}), highest {kl_curve[kl_high]:.2f} (step {kl_steps[kl_high]}), {kl_curve[-1]:.2f} at the "
      f"end; reconstruction: {vae_run.history['recon'][0]:.0f} → {vae_run.history['recon'][-1]:.0f} nats")
print("the KL first falls below its first logged value, then rises:", bool(0 < kl_low < kl_high))

# %% [markdown]
# The reconstruction term falls while the KL, after a dip, *rises* (the lines above give its
# first, lowest, highest and last values). In the first steps, when the last line says `True`,
# the KL falls further: the untrained encoder's codes differ from image to image at random,
# which costs KL and buys nothing from a decoder that cannot read them yet, so the cheapest
# start is KL ≈ 0 and the average image. Then latents switch on one by one (notebook 03 shows
# which factor each one takes; usually the position comes first, since it explains the most
# pixels). In the loss above the KL and the reconstruction have equal weights, so a nat of KL
# is worth keeping only if it buys at least a nat of reconstruction (notebook 03 weighs the KL
# by a factor β; here β = 1).

# %%
fig = viz.plot_kl_per_latent(vae_run.history, title="KL of each latent during training (nats)")
ax = fig.axes[0]
ranked = ax.get_lines()                  # drawn from the largest final KL to the smallest
for rank, line in enumerate(ranked):
    line.set_color(colormaps["viridis"](0.9 * rank / max(1, len(ranked) - 1)))
    line.set_linestyle(("-", "--", ":")[rank % 3])
ax.legend(fontsize="small", ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0),
          title="by final KL, largest\nfirst (down each column)", title_fontsize="small")
display(fig)
final_kl = np.asarray(vae_run.history["kl_per_latent"][-1])
print(f"latents with KL > 0.1 nat at the end of training: {int((final_kl > 0.1).sum())} of "
      f"{NUM_LATENTS} (smallest KL {final_kl.min():.2f} nats)")

# %% [markdown]
# Each curve is one latent's KL, averaged over the batch: the price the ELBO pays for what that
# latent says about the image, and an upper bound on the information it carries (source paper
# 001: "the KL term is an upper bound of the amount of transmitted information"). The bound
# need not be tight. Call $q(z) = \frac1N \sum_{n=1}^N q_\phi(z\mid x_n)$ the **aggregate
# posterior**: the distribution of the codes of all $N$ images together (the Gaussians of
# all images, mixed with equal weights). Call $I(x; z)$ the **mutual information** between an
# image $x$ drawn from the data and its code $z \sim q_\phi(z\mid x)$: how many nats the code
# tells, on average, about which image it came from,
# $I(x; z) = \mathbb E_x\big[\operatorname{KL}(q_\phi(z\mid x)\,\|\,q(z))\big]$. Averaged over
# the images, the KL then splits into two terms,
#
# $$\mathbb E_x\big[\operatorname{KL}(q_\phi(z\mid x)\,\|\,p(z))\big]
#   = I(x; z) + \operatorname{KL}\big(q(z)\,\|\,p(z)\big),$$
#
# the information, plus how far the codes of all images together lie from the prior
# (notebook 05 splits this further). dSprites has 737,280 images, so no code can carry more
# than $\log 737{,}280 \approx 13.5$ nats about which image it saw, and a total KL above that
# is at least partly the second term. A latent whose KL stays at 0
# is unused — its posterior equal to the prior. The line above counts the active latents of
# this run; with the KL at weight 1 a VAE often keeps more of them than the five factors need,
# and a larger weight (β > 1, notebook 03) switches more of them off.
#
# ## 6. The reduction pitfall (source paper 001)
#
# Source paper 001 reports a mistake made while reproducing β-VAE: the reconstruction term was
# **averaged** over the image's pixels instead of summed. That only rescales the
# reconstruction, but relative to the KL it is a different objective:
#
# $$\frac{1}{4096}\sum_i \text{BCE}_i + \operatorname{KL}
#   = \frac{1}{4096}\Big(\sum_i \text{BCE}_i + 4096 \cdot \operatorname{KL}\Big),$$
#
# a β-VAE with $\beta = 4096$ (the number of pixels; $64\cdot64\cdot3$ for the source paper's
# colour images). One nat of KL now has to buy 4096 nats of reconstruction. The source paper's
# conclusion: the model outputs a mean image, with a posterior mean that is always zero.
#
# We train the same network — same architecture, seed, steps and data — with the mean, as the
# library's `VAE(reduction="mean")`. It is the library's VAE, not `YourVAE`: only the
# reduction of the reconstruction term differs from the model of section 5, whose loss
# section 5 checked to be the library's sum-reduction loss. We measure both with the same
# yardstick.
#
# ⚠️ **Heavy cell**: a second VAE training run.

# %%
torch.manual_seed(SEED)
mean_run = fit(VAE(num_latents=NUM_LATENTS, reduction="mean"), ds, steps=STEPS, batch_size=BATCH_SIZE, lr=LR,
               seed=SEED, device=device, tag="02")
vae_mean = mean_run.model.eval()


@torch.no_grad()
def measure(model, x, batch_size=500):
    """Posterior statistics and reconstruction of images x, measured the same way for any
    VAE: reconstruction from z = mu, Bernoulli NLL summed over pixels (nats/image)."""
    mus, logvars, recons, x_hats = [], [], [], []
    for xb in x.split(batch_size):
        xb = xb.to(device)
        mu, logvar = model.encode(xb)
        logits = model.decode(mu)
        mus.append(mu.cpu()), logvars.append(logvar.cpu())
        recons.append(bernoulli_recon(logits, xb).cpu() * len(xb))
        x_hats.append(torch.sigmoid(logits).cpu())
    mu, logvar, x_hat = torch.cat(mus), torch.cat(logvars), torch.cat(x_hats)
    kl = kl_normal(mu, logvar).mean(0)
    return {"recon": float(sum(recons) / len(x)), "kl": float(kl.sum()), "kl_per_latent": kl,
            "active": int((kl > 0.1).sum()), "mean_abs_mu": float(mu.abs().mean()),
            "mean_logvar": float(logvar.mean()),
            "spread": float(x_hat.std(0).mean())}


stats = {"sum over pixels": measure(vae, x_eval), "mean over pixels": measure(vae_mean, x_eval)}
rows = [("reconstruction −log p(x|z=μ) (nats/image)", "recon", "{:.1f}"),
        ("KL total (nats/image)", "kl", "{:.2f}"),
        ("latents with KL > 0.1 nat", "active", "{:d}"),
        ("mean |μ|", "mean_abs_mu", "{:.3f}"),
        ("mean log σ²", "mean_logvar", "{:.3f}"),
        ("pixel std of reconstructions across images", "spread", "{:.4f}")]


def no_minus_zero(fmt, value):
    """``fmt.format(value)``, with a value that rounds to zero printed without a minus sign."""
    text = fmt.format(value)
    return text[1:] if text.startswith("-") and float(text) == 0 else text


print(f"{'':<44} {'sum over pixels':>16} {'mean over pixels':>17}")
for label, key, fmt in rows:
    print(f"{label:<44} {no_minus_zero(fmt, stats['sum over pixels'][key]):>16} "
          f"{no_minus_zero(fmt, stats['mean over pixels'][key]):>17}")
print("KL per latent (nats), sum: ", " ".join(no_minus_zero("{:.2f}", v) for v in stats["sum over pixels"]["kl_per_latent"]))
print("KL per latent (nats), mean:", " ".join(no_minus_zero("{:.2f}", v) for v in stats["mean over pixels"]["kl_per_latent"]))
collapsed = bool((stats["mean over pixels"]["kl_per_latent"] < 0.1).all())
print("the mean-over-pixels VAE has collapsed (every latent's KL below 0.1 nat):", collapsed)
print("its reconstructions vary across images less than a tenth as much as the summed VAE's:",
      stats["mean over pixels"]["spread"] < 0.1 * stats["sum over pixels"]["spread"])
for tag, st in stats.items():
    headline(f"VAE ({tag}) reconstruction −log p(x|z=μ) (nats/image)", st["recon"], ".1f")
    headline(f"VAE ({tag}) KL (nats/image)", st["kl"], ".2f")
    headline(f"VAE ({tag}) mean |mu|", st["mean_abs_mu"], ".3f")

# %% [markdown]
# Read the table column by column. With the sum, the latents carry information: the posterior
# means spread out, the posterior variances shrink below the prior's 1 (a negative mean log σ²)
# and the reconstructions differ from image to image. When the two lines above say `True`, the
# mean has done what source paper 001 describes: the KL of every latent is close to zero, the
# posterior of every image is (almost) the prior, $\mu \approx 0$ for all of them, so $z$ says
# nothing about $x$ and the decoder can only draw one picture — the pixel-wise average of
# dSprites, a faint grey square over the region where sprites appear. The reconstruction error
# of that mean image is what the summed model would pay if it ignored $z$.
#
# One detail differs from the source paper's account: it reports the log-variance going to
# $-\infty$. With a pure KL pressure the optimum of
# $\tfrac12(\mu^2 + \sigma^2 - \log\sigma^2 - 1)$ for an unused latent is $\mu = 0$,
# $\log\sigma^2 = 0$; compare the mean |μ| and mean log σ² of the collapsed model in the table
# with 0. A log-variance running to $-\infty$ would make the KL grow without bound. (Source
# paper 001 does not name, in §2.2, the objective of the run that made the mistake. Its §2.3
# says that before finding the mistake it "tried to rethink the constraints on the
# KL-divergence" of Burgess et al., whose objective "uses absolute value",
# $\gamma\,|\operatorname{KL} - C|$ (a weight γ on the distance of the KL from a target $C$ that
# grows during training: notebook 04), and that a hinge penalty in its place "helps the training
# process of the mistake setting" (for the correctly implemented model, a later paragraph adds,
# it "helps to prevent log variance goes to negative infinity"). We infer that the mistaken run trained this capacity-controlled objective, which
# pulls the KL *up* to $C$ — shrinking $\sigma$ is one way to buy that KL without using
# $\mu$; see notebook 04.)

# %%
pick = x_eval[:10]
mean_recon = viz.reconstruct(vae_mean, pick)
print(f"brightest pixel of the mean-over-pixels reconstructions: {mean_recon.max():.2f} (white is 1)")
fig = viz.show_images(torch.cat([pick, viz.reconstruct(vae, pick), mean_recon,
                                 mean_recon / mean_recon.max().clamp_min(1e-6)]),
                      nrow=10, title="originals; VAE with the sum over pixels; VAE with the mean over pixels "
                                     "(faint: its mean image is faint); the same, contrast-stretched "
                                     "(divided by its brightest pixel)")
viz.save_figure(fig, "02_reconstructions_sum_vs_mean.png")
fig

# %% [markdown]
# The second row should follow each sprite (position and size; fine shape takes longer
# training). When the check above found the mean model collapsed, the third row is the same
# blurry average for every input, drawn on the same scale as the others: it is faint because
# the mean image is (its brightest pixel is printed above). The fourth row shows the same
# images contrast-stretched, so that their shape can be seen: posterior collapse caused by a
# single `mean` where a `sum` belonged.
#
# ## 7. The KL of each latent

# %%
fig = viz.kl_bar(stats["sum over pixels"]["kl_per_latent"],
                 title="VAE (sum): KL per latent (nats)")
viz.save_figure(fig, "02_kl_per_latent.png")
fig

# %% [markdown]
# The KL of a latent (in nats, averaged over images) bounds from above the information that it
# carries about the image; the total is the price the ELBO pays for the code. Count how many latents are
# active (KL above about 0.1 nat): the five factors of dSprites that vary could be described by
# five numbers, but nothing in the plain VAE's loss asks for one factor per latent, so the
# information is usually spread over more of them. Which factor each active latent encodes, and
# whether one latent holds one factor, is the subject of notebook 03 (β-VAE), with traversals
# and the MIG score.
#
# ## 8. Samples from the prior, next to the autoencoder's
#
# Now the VAE's promise: decode $z \sim \mathcal N(0, I)$. We compare with a plain autoencoder
# of the same architecture (the D = 10 model of notebook 01's bottleneck experiment, trained
# here again with its settings; a second run of this notebook loads it from `runs/checkpoints`)
# decoding the same codes, and measure
# each sample's soft intersection over union with the best-matching of many real dSprites
# images (1: a copy of a real image, 0: an empty image; see notebook 01). (Like notebook
# 01's, this autoencoder is trained with the squared error.) A second ruler counts the pieces
# of ink in each decoded image (pixels of intensity ≥ 0.5, joined through their 8 neighbours,
# pieces of fewer than 4 pixels dropped; `course_lib.quality.ink_blobs`): a real dSprites image
# is exactly one piece, a faint or specked sample has none, a doubled or broken one has two or
# more. The median IoU is taken over the 16 samples shown, the pieces over all the draws.
#
# This comparison is **not at equal training budget**: the VAE trains for `STEPS` steps, the
# autoencoder for `AE_STEPS` (the table prints both budgets), so part of a difference may be
# training length. A third decoder separates the two when it is available without training:
# notebook 01's main autoencoder, shipped with the course and trained on many more images
# than this VAE.
#
# ⚠️ **Heavy cell** when no autoencoder checkpoint exists yet.

# %%
torch.manual_seed(SEED)
ae = fit(Autoencoder(num_latents=NUM_LATENTS, recon="mse"), ds, steps=AE_STEPS, batch_size=BATCH_SIZE, lr=LR,
         seed=SEED, device=device, tag="02").model.eval()
decoders = {"VAE (sum)": (vae, STEPS, BATCH_SIZE), "VAE (mean)": (vae_mean, STEPS, BATCH_SIZE),
            "autoencoder": (ae, AE_STEPS, BATCH_SIZE)}
# notebook 01's main autoencoder, when its recipe is shipped (nothing to train)
long_recipe = recipe("autoencoder", PROFILE, num_latents=NUM_LATENTS, seed=SEED)
if PROFILE == "smoke" or find_shipped(long_recipe) is not None:
    long_ae = load_or_train("autoencoder", profile=PROFILE, device=device, num_latents=NUM_LATENTS, seed=SEED,
                            progress=False).model.eval()
    decoders["autoencoder of notebook 01"] = (long_ae, long_recipe["steps"], long_recipe["batch_size"])
else:
    print("notebook 01's autoencoder is not shipped for these parameters: it is left out")

bank = ds.images(ds.sample_classes(profiles.pick(PROFILE, smoke=256, quick=20_000, full=100_000),
                                   generator=torch.Generator().manual_seed(SEED + 2000)))
z_prior = torch.randn(16, NUM_LATENTS, generator=torch.Generator().manual_seed(SEED + 3000))
NUM_DRAWS = profiles.pick(PROFILE, smoke=64, quick=1000, full=1000)    # draws for the ink-piece ruler
z_many = torch.randn(NUM_DRAWS, NUM_LATENTS, generator=torch.Generator().manual_seed(SEED + 3001))
samples, distance, pieces = {}, {}, {}
print(f"{'decoder fed z ~ N(0, I)':<27} {'trained on':>26} {'median IoU':>11}   pieces of ink "
      f"in {NUM_DRAWS} draws: one / none / two or more")
for name, (model, steps, batch) in decoders.items():
    with torch.no_grad():
        samples[name] = model.decode_pixels(z_prior.to(device)).cpu()
        many = torch.cat([model.decode_pixels(z.to(device)).cpu() for z in z_many.split(500)])
    distance[name] = best_match_iou(samples[name], bank).median().item()
    blobs = ink_blobs(many)
    pieces[name] = [(blobs == 1).double().mean().item(), (blobs == 0).double().mean().item(),
                    (blobs >= 2).double().mean().item()]
    print(f"{name:<27} {f'{steps:,} steps × {batch} images':>26} {distance[name]:>11.2f}   "
          + " / ".join(f"{share:.0%}" for share in pieces[name]))
headline("prior samples, VAE: median IoU with the best-matching real image", distance["VAE (sum)"], ".2f")
headline("prior samples, AE: median IoU with the best-matching real image", distance["autoencoder"], ".2f")
shown_rows = [name for name in decoders if name != "VAE (mean)"]
for name in shown_rows:
    print(f"pieces of ink in the 16 shown samples, {name + ':':<28}",
          " ".join(str(int(k)) for k in ink_blobs(samples[name])))
log_images = math.log(len(ds))
mismatch = max(0.0, stats["sum over pixels"]["kl"] - log_images)
print(f"the VAE's total KL, {stats['sum over pixels']['kl']:.1f} nats (section 6), minus the most a code can "
      f"carry, log {len(ds):,} = {log_images:.1f} nats: its codes' mismatch with N(0, I) is at least "
      f"{mismatch:.1f} nats")
vae_samples_better = distance["VAE (sum)"] > distance["autoencoder"]
print(f"the VAE's prior samples match real sprites better than the autoencoder's (median IoU of 16 samples; trained on "
      f"{STEPS / AE_STEPS:.3g}× fewer images than the VAE):", vae_samples_better)
if "autoencoder of notebook 01" in decoders:
    _, long_steps, long_batch = decoders["autoencoder of notebook 01"]
    print(f"... and better than notebook 01's autoencoder's (trained on "
          f"{long_steps * long_batch / (STEPS * BATCH_SIZE):.3g}× more images than the VAE):",
          distance["VAE (sum)"] > distance["autoencoder of notebook 01"])
fig = viz.show_images(torch.cat([samples[name] for name in shown_rows]), nrow=16,
                      title="the same 16 codes z ~ N(0, I), decoded by (rows from the top): " + "; ".join(shown_rows))
viz.save_figure(fig, "02_prior_samples_vae_vs_ae.png")
fig

# %% [markdown]
# Look at the top row with the piece counts printed for it: most of the VAE's prior samples
# are single sprites — blurry ones after a short training — at plausible positions and sizes,
# but not all of them: some come out in two pieces, or too faint to count (no piece), and the
# shares over many draws say how often (among 16 samples a faint one may not be drawn at all). The KL term pulls the codes of the training images
# *towards* $\mathcal N(0, I)$, and the noise of the reparameterisation taught the decoder a
# whole neighbourhood of each code. The pull is not complete: as section 5 argued, a total KL
# above the information a code can carry is a mismatch between the codes of all images and the
# prior, and a line above puts a floor under it for this VAE. Prior draws that land where few
# training codes lie are a likely source of the faint and doubled samples. The autoencoder was
# never pulled towards the prior at all, and decodes the same codes into smears, doubled
# sprites or shapes that dSprites does not contain.
#
# The table prints each decoder's budget: with the default parameters the VAE trained on more
# images than the autoencoder beside it, so that comparison mixes the prior's effect with
# training length. Notebook 01's autoencoder, when it is in the table, trained on many more
# images than the VAE: when the last line says `True`, even that much longer training does not
# give an autoencoder prior samples that match real sprites as well as the VAE's, so training
# length alone does not explain the difference. A collapsed VAE (not shown) decodes every
# code into the same faint mean image, which matches no real sprite.
#
# ## Summary: the source papers' statements and our numbers

# %%
s_sum, s_mean = stats["sum over pixels"], stats["mean over pixels"]
summary = [
    ("003: log p(x) = ELBO + KL(q ‖ p(z|x)), so ELBO ≤ log p(x)",
     "checked on a 1-D Gaussian model: gap = KL(q ‖ posterior) up to Monte Carlo noise"),
    ("003: KLD = -0.5 Σ(1 + log σ² − μ² − σ²)",
     "derived; equals torch.distributions' KL to float precision"),
    ("003: z = ε·σ² + μ, ε ~ N(0, 1) and 'standard uniform'",
     "z = μ + σ·ε with ε ~ N(0, I): σ, not σ²; normal, not uniform; the checker rejects both slips "
     "(its unit tests check it)"),
    ("003: loss = BCE summed + KLD",
     f"VAE after {STEPS} steps: recon −log p(x|z=μ) {s_sum['recon']:.1f} nats, KL {s_sum['kl']:.1f} nats, "
     f"{s_sum['active']} latents with KL > 0.1"),
    ("001: pixel-mean recon → mean image",
     f"mean: KL {s_mean['kl']:.2f} nats, recon {s_mean['recon']:.1f} nats, reconstruction spread "
     f"{s_mean['spread']:.4f} (sum: {s_sum['spread']:.4f})"),
    ("001: posterior mean always zero",
     f"mean |μ| = {s_mean['mean_abs_mu']:.3f} (sum: {s_sum['mean_abs_mu']:.3f})"),
    ("001: log-variance goes to −∞",
     f"{'not' if s_mean['mean_logvar'] > -1 else 'yes'} with the plain VAE: mean log σ² = "
     f"{no_minus_zero('{:.3f}', s_mean['mean_logvar'])} (the prior's 0)"),
    ("003: VAE can generate from N(0, I)",
     f"prior samples' median IoU with the best-matching real image: VAE "
     f"{distance['VAE (sum)']:.2f} ({STEPS:,} steps), autoencoder {distance['autoencoder']:.2f} "
     f"({AE_STEPS:,} steps), collapsed VAE {distance['VAE (mean)']:.2f}; one piece of ink: VAE "
     f"{pieces['VAE (sum)'][0]:.0%}, autoencoder {pieces['autoencoder'][0]:.0%}"),
]
print(f"{'source papers say':<58} | ours ({PROFILE} profile)")
print("-" * 150)
for claim, ours in summary:
    print(f"{claim:<58} | {ours}")

# %% [markdown]
# In the smoke profile the numbers are meaningless (a few training steps); run the quick
# profile to see the effects.
#
# ## Exercises for the reader
#
# 1. Train `VAE(reduction="mean", beta=1/4096)`. Show on paper that its loss is the summed
#    VAE's divided by 4096, and check that it learns (Adam is almost invariant to the loss
#    scale).
# 2. Use two samples of $\varepsilon$ per image in the loss. Does the training curve get
#    smoother? What does it cost?
# 3. Replace the reparameterised gradient by the score-function estimator in the VAE's
#    encoder (hint: `Normal(mu, sigma).sample()` and `log_prob`). How does training behave?
# 4. Estimate $\log p(x)$ of a dSprites image by importance sampling with $q$ as the proposal,
#    $\log \frac1K\sum_k p(x, z_k)/q(z_k\mid x)$, for K = 1, 10, 100. How far below it is the
#    ELBO?
#
# ## References
#
# - D. P. Kingma and M. Welling, *Auto-Encoding Variational Bayes*, ICLR 2014 (the ELBO, the
#   reparameterisation trick, the Gaussian KL in appendix B).
# - D. J. Rezende, S. Mohamed and D. Wierstra, *Stochastic Backpropagation and Approximate
#   Inference in Deep Generative Models*, ICML 2014.
# - F. Moga, *Learning disentangled representations with Variational Autoencoders* (source paper
#   `003_9cf833ed4120ca8c.txt`), §1.2.
# - Li Donghao, *Summary and discussion of "Understanding disentangling in β-VAE"* (source paper
#   `001_00245305c4487d13.txt`), §2.2.
# - C. P. Burgess et al., *Understanding disentangling in β-VAE*, 2018.
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers*, ICCV 2015 (He
#   initialisation).
# - R. J. Williams, *Simple statistical gradient-following algorithms for connectionist
#   reinforcement learning*, Machine Learning 8, 1992 (the score-function estimator).
