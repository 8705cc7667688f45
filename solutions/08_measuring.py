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
# # 08 · Measuring disentanglement: MIG and its peers, and one leaderboard
#
# **What you will learn**
#
# - the Mutual Information Gap (MIG) from mutual information and entropy, and its discrete
#   estimator (20 equal-width bins per code dimension);
# - why even the ground-truth factors do not score MIG = 1 with that estimator;
# - how MIG depends on the number of bins and of samples, and how the sampled estimator of
#   Chen et al. differs;
# - the other metrics of the field (FactorVAE score, β-VAE score, DCI, SAP) on synthetic
#   representations whose answer we know: which keep the two properties that "How to Not
#   Measure Disentanglement" asks for — high exactly on disentangled representations, low on
#   all others;
# - one leaderboard for every model of the course, on the same data and the same metrics.
#
# Reproduces: MIG's definition (eq. 5–7), the argument of "How to Not Measure
# Disentanglement" and the MIG-per-model comparison (Fig. 5) of the seed
# `003_9cf833ed4120ca8c.txt`.

# %% [markdown]
# In Colab, the next cell installs the course library; elsewhere it does nothing.

# %%
import sys

if "google.colab" in sys.modules:  # install the course only inside Colab
    get_ipython().run_line_magic(  # noqa: F821 - defined by IPython
        "pip", 'install -q "git+https://github.com/disentanglement-course/disentanglement-course"')

# %% [markdown]
# ## Parameters
#
# `MODELS = None` puts every model of the course on the leaderboard; a list of names
# (see `course_lib.leaderboard.ENTRIES`) restricts it.

# %% tags=["parameters"]
PROFILE = None        # "smoke", "quick" or "full"; None: $COURSE_PROFILE, else "quick"
SEED = 0
DEVICE = "auto"
NUM_EVAL = None       # evaluation images (10,000 in quick and full)
NUM_BINS = 20         # bins per code dimension of the discrete MIG
STEPS = None          # training budget of each leaderboard model without a shipped checkpoint
BATCH_SIZE = None
LR = None
N_VOTES = None        # votes of the FactorVAE and β-VAE scores
MODELS = None         # None: every entry of course_lib.leaderboard.ENTRIES

# %%
from course_lib import profiles

PROFILE = profiles.check_profile(PROFILE or profiles.default_profile())
param = profiles.settings(PROFILE)  # None: the profile's default; any other value is checked
NUM_EVAL = param("NUM_EVAL", NUM_EVAL, smoke=300, quick=10_000, full=10_000, minimum=1)
STEPS = param("STEPS", STEPS, smoke=2, quick=200, full=30_000, minimum=1)
BATCH_SIZE = param("BATCH_SIZE", BATCH_SIZE, smoke=8, quick=32, full=64, minimum=1)
LR = param("LR", LR, smoke=1e-3, quick=1e-3, full=1e-4, positive=True)
N_VOTES = param("N_VOTES", N_VOTES, smoke=4, quick=100, full=5_000, minimum=1)
print(f"profile {PROFILE}: {NUM_EVAL} evaluation images, {NUM_BINS} bins, leaderboard budget "
      f"{STEPS} steps of {BATCH_SIZE}, {N_VOTES} votes per score")

# %% [markdown]
# ## Set-up

# %%
import math
import time

import numpy as np
import torch
from IPython.display import HTML, Markdown, display
from matplotlib.figure import Figure

import course_lib
from course_lib import exercises, leaderboard, viz
from course_lib.data import DSprites
from course_lib.metrics import (beta_vae_score, dci, factor_entropy, factor_vae_score, mig, mig_sampled,
                                mutual_info_matrix, sap, synthetic_representation)
from course_lib.report import headline
from course_lib.train import choose_device, seed_everything

seed_everything(SEED)
device = choose_device(DEVICE)
print(f"torch {torch.__version__}, course_lib {course_lib.__version__}, device {device}, "
      f"profile {PROFILE}, seed {SEED}")

ds = DSprites()
eval_classes = ds.sample_classes(NUM_EVAL, torch.Generator().manual_seed(SEED + 1000))
factors = eval_classes.numpy()
print(f"{NUM_EVAL} evaluation images; factors {ds.factor_names} with sizes {ds.factor_sizes}")

# %% [markdown]
# ## MIG from mutual information
#
# For a code $z = (z_1, \dots, z_D)$ and ground-truth factors $v = (v_1, \dots, v_K)$, the
# mutual information between one code dimension and one factor is
#
# $$I(z_j; v_k) = \sum_{z_j, v_k} p(z_j, v_k)\,\log\frac{p(z_j, v_k)}{p(z_j)\,p(v_k)}
#   = H(v_k) - H(v_k \mid z_j) \qquad\text{(seed 003, eq. 5–6).}$$
#
# A factor is captured *disentangled* when one code dimension knows much about it and no other
# dimension knows nearly as much. MIG measures the gap between the two most informative
# dimensions, normalised by the factor's entropy so that it lies in $[0, 1]$:
#
# $$\mathrm{MIG} = \frac1K \sum_{k=1}^K \frac{1}{H(v_k)}\Big(I(z_{j^{(k)}}; v_k) - \max_{j \ne j^{(k)}} I(z_j; v_k)\Big),
#   \qquad j^{(k)} = \arg\max_j I(z_j; v_k) \qquad\text{(eq. 7).}$$
#
# A factor with one value has $H(v_k) = 0$ and is skipped (dSprites' colour). The **discrete
# estimator** (Locatello et al.) bins each code dimension into 20 equal-width bins between its
# minimum and maximum and computes every $I$ from the joint histogram, in nats.
#
# ### Exercise 1: mutual information from a joint histogram
#
# Given two integer arrays of the same length (a binned code and a factor), return $I$ in
# nats. Build the joint counts, normalise to $p(a, b)$, and sum
# $p(a,b)\log\frac{p(a,b)}{p(a)p(b)}$ over the cells where $p(a, b) > 0$.

# %%
def discrete_mutual_info(a, b):
    """I(a; b) in nats for integer arrays a, b of shape [N]."""
    ### BEGIN SOLUTION
    # HINT: np.unique(..., return_inverse=True) relabels values 0..n-1; np.add.at or
    #       np.bincount on a * n_b + b builds the joint counts.
    a = np.unique(np.asarray(a), return_inverse=True)[1]
    b = np.unique(np.asarray(b), return_inverse=True)[1]
    n_b = b.max() + 1
    joint = np.bincount(a * n_b + b, minlength=(a.max() + 1) * n_b).reshape(-1, n_b).astype(float)
    p = joint / joint.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())
    ### END SOLUTION


# %% [markdown]
# The checker compares your function with scikit-learn's `mutual_info_score` (an independent
# implementation, also in nats).

# %%
from sklearn.metrics import mutual_info_score  # noqa: E402


def _reference_mi(a, b):
    return float(mutual_info_score(a, b))


_rng = np.random.default_rng(0)
_a = _rng.integers(0, 5, 300)
discrete_mutual_info = exercises.check_function(
    "discrete_mutual_info", discrete_mutual_info, _reference_mi,
    cases=[exercises.case(_a, (_a + _rng.integers(0, 2, 300)) % 5, label="dependent"),
           exercises.case(_a, _rng.integers(0, 3, 300), label="independent"),
           exercises.case(_a, _a, label="identical: I = H(a)")], atol=1e-9)

# %% [markdown]
# ## The oracle: MIG of the ground-truth factors themselves
#
# If the code *is* the factors ($z = v$), every factor is perfectly captured by one dimension
# and not at all by the others. Does MIG give 1?

# %%
oracle = mig(factors.astype(float), factors, num_bins=NUM_BINS, factor_names=ds.factor_names)
headline("oracle MIG (ground-truth factors, discrete estimator)", oracle.score, ".3f")
for name, size, score in zip(ds.factor_names, ds.factor_sizes, oracle.per_factor):
    print(f"  {name:12s} {size:3d} values   per-factor gap/H = {score:.3f}")
print("skipped:", oracle.skipped)

# %% [markdown]
# **Why the oracle is below 1.** Shape (3 values) and scale (6 values) fit into 20 bins one
# value per bin, so their gap/entropy is close to 1 (the small shortfall is the histogram's
# upward bias: with finite samples the *other* dimensions show a little spurious information,
# which narrows the gap). Orientation (40 values) and the two positions (32
# values) do not: 20 equal-width bins merge neighbouring values, so the binned code keeps at
# most $\log 20$ nats of a factor whose entropy is $\log 32$ or $\log 40$. The estimator, not
# the representation, caps the score: the oracle's MIG is close to the best any representation can
# reach on dSprites with 20 bins. (Orientation has another, physical, reason why no model gets
# it fully: squares repeat every 90° and ellipses every 180°, so its values are not
# distinguishable from images — an encoder *cannot* recover it.)
#
# ## How MIG depends on the number of bins and of samples
#
# More bins let the oracle keep more of the 32- and 40-valued factors. But the histogram
# estimate of $I$ is biased upwards by roughly $(\#\text{cells})/(2N)$: with many bins and few
# samples, *noise* looks informative. We measure both effects on the oracle and on pure noise.

# %%
bins_grid = profiles.pick(PROFILE, smoke=(5, 20), quick=(5, 10, 20, 40, 100), full=(5, 10, 20, 40, 100, 200))
n_grid = [n for n in profiles.pick(PROFILE, smoke=(100, 400), quick=(300, 1000, 3000, 10_000),
                                   full=(300, 1000, 3000, 10_000)) if n <= NUM_EVAL]
noise_codes = synthetic_representation("noise", ds.factor_sizes)(eval_classes)
fig = Figure(figsize=(10, 3.5), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
for label, codes in (("ground truth", factors.astype(float)), ("noise", noise_codes)):
    ax1.plot(bins_grid, [mig(codes, factors, num_bins=b).score for b in bins_grid], "o-", label=label)
    ax2.plot(n_grid, [mig(codes[:n], factors[:n], num_bins=NUM_BINS).score for n in n_grid], "o-", label=label)
ax1.set(xscale="log", xlabel="bins per code dimension", ylabel="MIG", title=f"N = {NUM_EVAL}")
ax2.set(xscale="log", xlabel="samples N", title=f"{NUM_BINS} bins")
ax1.legend()
viz.save_figure(fig, "08_mig_sensitivity")
fig

# %% [markdown]
# The oracle's MIG rises with the number of bins until each factor value has its own bin; the
# noise codes' MIG stays near 0 because the *gap* cancels the upward bias shared by all
# dimensions — MI values themselves are inflated, which you can check with
# `mutual_info_matrix(noise_codes, factors, num_bins=100)` on few samples. With fewer samples
# everything gets noisier. Compare MIG values only at the same bins and sample size.
#
# ## Discrete and sampled MIG
#
# Chen et al. (β-TCVAE) estimate MIG differently: $H(z_j)$ and $H(z_j \mid v_k)$ come from
# samples of the posterior $q(z \mid x)$ over the **whole** data set (a Monte-Carlo estimate of
# $\log q(z_j) = \log \frac1N\sum_n q(z_j \mid x_n)$), and $H(v_k) = \log |V_k|$. The two differ:
# the sampled one sees the posterior's *noise* (a latent with large variance carries little
# information even if its mean moves), the discrete one only the means; the discrete one is
# capped by its bins (above), the sampled one is not. A β-VAE's informative latents have small
# variance, so the two usually rank models alike but give different numbers.
# We compute both on one model; the sampled estimator here uses our evaluation sample instead
# of the whole grid (for all 737,280 images, pass `encode_dataset(model, ds)`).

# %%
t0 = time.perf_counter()
lb_data = ds.sampler(device)
cache = viz.runs_dir() / "checkpoints"
bvae, bvae_source = leaderboard.get_model("β-VAE", lb_data, steps=STEPS, batch_size=BATCH_SIZE, lr=LR,
                                          seed=SEED, device=device, cache_dir=cache, profile=PROFILE)
with torch.no_grad():
    mu, logvar = bvae.encode(ds.images(eval_classes.to(device)))
discrete = mig(mu.cpu().numpy(), factors, num_bins=NUM_BINS)
sampled = mig_sampled(mu.cpu(), logvar.cpu(), factors, n_samples=min(NUM_EVAL, 2000), seed=SEED)
print(f"β-VAE ({bvae_source}): discrete MIG {discrete.score:.3f}, sampled MIG {sampled.score:.3f} "
      f"({time.perf_counter() - t0:.0f} s)")
viz.mi_heatmap(discrete.mutual_info, ds.factor_names, title="β-VAE: I(z_j; v_k), nats (discrete)")

# %% [markdown]
# ## How not to measure: synthetic representations with a known answer
#
# Seed 003's argument: a metric is useful only if it is **high for disentangled
# representations** (including those that are disentangled but rescaled or reordered) and **low
# for all others** (mixed, redundant, incomplete, noise). Each row below is a deterministic
# function of the true factors (`course_lib.metrics.synthetic_representation`).

# %%
kinds = ("perfect", "rescaled", "monotone", "mixed", "redundant", "missing", "noise")
sizes = ds.factor_sizes
synthetic_rows = []
for kind in kinds:
    rep = synthetic_representation(kind, sizes, pair=(4, 5), seed=SEED)
    codes = rep(eval_classes)
    synthetic_rows.append({
        "representation": kind,
        "MIG": mig(codes, factors, num_bins=NUM_BINS).score,
        "FactorVAE": factor_vae_score(rep, sizes, n_train=N_VOTES, n_eval=N_VOTES // 2,
                                      n_variance=min(10_000, 50 * N_VOTES), seed=SEED).score,
        "β-VAE score": beta_vae_score(rep, sizes, n_train=N_VOTES, n_eval=N_VOTES // 2, seed=SEED).score,
        "DCI-D": dci(codes, factors, method="lasso", seed=SEED).disentanglement,
        "SAP": sap(codes, factors, seed=SEED).score,
    })
display(Markdown(leaderboard.markdown_table(synthetic_rows)))

# %% [markdown]
# Reading the table (the *mixed* row rotates posX and posY by 45°; *redundant* copies posX into
# a second code; *missing* drops posX):
#
# - MIG is high for perfect, rescaled and monotone codes and drops for mixed, redundant (the
#   copied factor's gap is 0) and missing; it is near 0 for noise. It has both properties.
# - The β-VAE score is high for anything from which a *linear classifier* can tell which factor
#   was fixed — including the mixed and redundant codes: it rewards informativeness, not
#   disentanglement.
# - The FactorVAE score needs one dimension per factor with the lowest variance; mixing two
#   factors costs it, but redundancy does not (the copy is still a low-variance dimension).
# - DCI's disentanglement penalises mixing (each code explains two factors) but not
#   redundancy; SAP, like MIG, is a gap and drops for redundancy.
#
# ## The leaderboard
#
# Every model of the course on the same data and the same metrics. A model uses the course's
# shipped checkpoint when there is one with at least this budget (`data/checkpoints`, trained by
# `python -m course_lib pretrain`) and is otherwise trained here on the budget above (and
# cached in `runs/checkpoints`); the source column says which, and names any setting where the
# shipped recipe differs from the entry's own (the shipped β-VAE was trained with β = 8, the
# entry trains β = 4). InfoGAN is scored through Q's continuous means, ID-GAN
# through its β-VAE's code.
#
# ⚠ Heavy cell: 11 models in the quick profile take a few minutes on a CPU.

# %%
names = list(leaderboard.ENTRIES) if MODELS is None else list(MODELS)
rows, trained = [], {"β-VAE": bvae}
t0 = time.perf_counter()
for name in names:
    t = time.perf_counter()
    if name in trained:
        model, source = trained[name], bvae_source
    else:
        model, source = leaderboard.get_model(name, lb_data, steps=STEPS, batch_size=BATCH_SIZE, lr=LR,
                                              seed=SEED, device=device, cache_dir=cache, profile=PROFILE,
                                              vae=bvae)
    scores = leaderboard.evaluate(model, ds, eval_classes, device=device, n_votes=N_VOTES, seed=SEED)
    rows.append({"model": name, "source": source, **scores})
    print(f"{name:22s} {source:28s} MIG {scores['MIG']:.3f}  ({time.perf_counter() - t:.0f} s)")
print(f"leaderboard: {time.perf_counter() - t0:.0f} s")
paths = leaderboard.write_table(leaderboard.sort_rows(rows), viz.runs_dir() / "leaderboard")
print("written:", ", ".join(str(p) for p in paths.values()))
best = leaderboard.sort_rows(rows)[0]
headline("best MIG on the leaderboard", f"{best['model']} {best['MIG']:.3f}")

# %% [markdown]
# Sort the table by any column (a widget; the static table below is sorted by MIG):

# %%
def sortable_table(rows):
    import ipywidgets as widgets

    columns = [c for c in rows[0] if c not in ("model", "source")]
    choice = widgets.Dropdown(options=columns, value="MIG", description="sort by")
    out = widgets.Output()

    def show(_=None):
        out.clear_output(wait=True)
        with out:
            lower_better = choice.value == "recon"
            display(Markdown(leaderboard.markdown_table(
                leaderboard.sort_rows(rows, choice.value, descending=not lower_better))))

    choice.observe(show, names="value")
    show()
    return widgets.VBox([choice, out])


display(Markdown(leaderboard.markdown_table(leaderboard.sort_rows(rows))))
sortable_table(rows)

# %%
fig = leaderboard.leaderboard_figure(rows)
viz.save_figure(fig, "08_leaderboard")
fig

# %% [markdown]
# ## Seed 003's Figure 5 in our numbers: MIG over seeds
#
# One run per model says little: Locatello et al. showed that the random seed moves MIG as
# much as the choice of model. The sweep command trains several seeds per model, e.g.
#
# ```bash
# python -m course_lib sweep notebooks/08_measuring.ipynb -p SEED 0 1 2 3 4 --profile quick
# ```
#
# and this cell draws the distribution of MIG per model from the leaderboards it wrote
# (`runs/sweeps/*/**/leaderboard.json`, or `runs/leaderboard*` of earlier runs).

# %%
import json  # noqa: E402

found = {}
for path in sorted(viz.runs_dir().glob("**/leaderboard.json")):
    for row in json.loads(path.read_text()):
        found.setdefault(row["model"], {})[str(path)] = row["MIG"]
per_model = {m: list(v.values()) for m, v in found.items()}
if per_model and max(len(v) for v in per_model.values()) > 1:
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.add_subplot()
    labels = sorted(per_model, key=lambda m: -np.median(per_model[m]))
    ax.boxplot([per_model[m] for m in labels], labels=labels)
    ax.tick_params(axis="x", rotation=60)
    ax.set(ylabel="MIG", title="MIG per model over seeds")
    viz.save_figure(fig, "08_mig_over_seeds")
    display(fig)
else:
    print("only one run per model so far: run the sweep above to see the spread over seeds")

# %% [markdown]
# ## Summary
#
# | statement | seed 003 | ours |
# |---|---|---|
# | MIG is eq. 7: the normalised gap of the two most informative codes | eq. 5–7 | implemented and checked against scikit-learn (exercise 1) |
# | a metric must be high exactly for disentangled representations | "How to Not Measure" | the synthetic table: MIG and SAP keep both properties, the β-VAE score does not |
# | the ground truth is the best possible code | — | its discrete MIG is below 1 (printed), because 20 bins cannot hold 32 or 40 values |
# | MIG varies across models and seeds | Fig. 5 | the leaderboard above; the spread over seeds after a sweep |
#
# In `smoke` nothing is trained: the numbers are meaningless. In `quick` the leaderboard's
# budget is tiny (a few hundred steps per model) unless shipped checkpoints are there; use
# `full` on a GPU for the papers' protocol.
#
# **Exercises for the reader.** (1) Change `NUM_BINS` to 40 and rerun: which models gain?
# (2) Add noise to the perfect code (`synthetic_representation("perfect", sizes, noise=0.1)`) and
# watch each metric fall. (3) Put a model you trained in another notebook on the leaderboard
# (`leaderboard.evaluate(model, ds, eval_classes)`).
#
# **References.** Chen et al., *Isolating sources of disentanglement in VAEs* (2018);
# Locatello et al., *Challenging common assumptions in the unsupervised learning of
# disentangled representations* (2019); Kim & Mnih, *Disentangling by factorising* (2018);
# Higgins et al., *β-VAE* (2017); Eastwood & Williams, *A framework for the quantitative
# evaluation of disentangled representations* (2018); Kumar et al., *Variational inference of
# disentangled latent concepts from unlabeled observations* (2018).
