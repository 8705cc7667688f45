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
# # 01 · Autoencoders on dSprites, and why an autoencoder is not a generative model
#
# **What you will learn**
#
# - how a convolutional autoencoder compresses a 64×64 image $x$ into a code $z = f_\phi(x)$
#   with a few numbers and decodes it back, $\hat x = g_\theta(z)$;
# - the reconstruction loss: the squared error **summed over pixels and averaged over the
#   batch**, and what its value means in pixels;
# - how the size of the bottleneck trades code length for reconstruction error;
# - what a 2-D code space looks like when we colour it by the true position of the sprite;
# - interpolation between two codes;
# - why decoding *random* codes gives images that are not sprites (blobs, fragments, two pieces
#   at once; a printed score measures how well they match real sprites): the code distribution
#   of a plain autoencoder is not one we can sample from. That is the motivation for the VAE of
#   notebook 02.
#
# Reproduces: the autoencoder part (§1.1, Eq. 1) of the source paper
# `003_9cf833ed4120ca8c.txt` (F. Moga, *Learning disentangled representations with
# Variational Autoencoders*).

# %% [markdown]
# ## Parameters
#
# Papermill can override every name in the next cell, e.g.
# `papermill notebooks/01_autoencoders.ipynb out.ipynb -p PROFILE quick -p NUM_LATENTS 6`.
# `None` means "the default of the profile": `smoke` (seconds, numbers meaningless), `quick`
# (a few minutes on a laptop CPU) or `full` (a GPU).

# %% tags=["parameters"]
PROFILE = None        # "smoke", "quick" or "full"; None: $COURSE_PROFILE, else "quick"
SEED = 0
DEVICE = "auto"       # "auto", "cpu", "cuda", "mps"
NUM_LATENTS = None    # code size of the main autoencoder
STEPS = None          # training steps of the main autoencoder (quick: the shipped model's)
BATCH_SIZE = None     # batch size of the main autoencoder
LR = None             # Adam learning rate of every autoencoder
SWEEP_STEPS = None    # training steps of each autoencoder of the bottleneck experiment
SWEEP_BATCH_SIZE = None  # batch size of the bottleneck experiment and of the sigmoid demo
MSE_STEPS = None      # steps of the autoencoder with a sigmoid output (the saturation demo)
BOTTLENECKS = None    # code sizes compared in the bottleneck experiment
NUM_EVAL = None       # images used to measure reconstruction error and to plot codes

# %%
from course_lib import profiles

PROFILE = profiles.check_profile(PROFILE or profiles.default_profile())
param = profiles.settings(PROFILE)  # None: the profile's default; any other value is checked
NUM_LATENTS = param("NUM_LATENTS", NUM_LATENTS, 10, minimum=1)
STEPS = param("STEPS", STEPS, smoke=3, quick=10_000, full=30_000, minimum=1)
BATCH_SIZE = param("BATCH_SIZE", BATCH_SIZE, smoke=8, quick=64, full=64, minimum=1)
LR = param("LR", LR, 1e-3, positive=True)
SWEEP_STEPS = param("SWEEP_STEPS", SWEEP_STEPS, smoke=2, quick=500, full=10_000, minimum=1)
SWEEP_BATCH_SIZE = param("SWEEP_BATCH_SIZE", SWEEP_BATCH_SIZE, smoke=8, quick=16, full=64, minimum=1)
MSE_STEPS = param("MSE_STEPS", MSE_STEPS, smoke=2, quick=200, full=2000, minimum=1)
BOTTLENECKS = param("BOTTLENECKS", BOTTLENECKS, smoke=(1, 2), quick=(1, 2, 4, 10),
                    full=(1, 2, 3, 4, 6, 10, 20), minimum=1)
NUM_EVAL = param("NUM_EVAL", NUM_EVAL, smoke=64, quick=2000, full=10_000, minimum=1)
print(f"profile {PROFILE}: main autoencoder {STEPS} steps of {BATCH_SIZE} images, lr {LR}, code "
      f"size {NUM_LATENTS}; bottlenecks {BOTTLENECKS} with {SWEEP_STEPS} steps of "
      f"{SWEEP_BATCH_SIZE} images each")

# %% [markdown]
# ## Set-up
#
# Imports, the seed, the device, and the versions this notebook ran with. Figures are also
# saved under `runs/figures/`, and trained models under `runs/checkpoints/` (a second run with
# the same parameters loads them instead of training again).

# %%
import math
from pathlib import Path

import numpy as np
import torch
from IPython.display import display

from course_lib import exercises, viz
from course_lib.checkpoints import describe_training, load_or_train
from course_lib.config import repo_root
from course_lib.data import DSprites
from course_lib.models import Autoencoder
from course_lib.notebook import setup
from course_lib.quality import best_match_iou, ink_centres
from course_lib.report import headline
from course_lib.train import fit

device = setup(SEED, DEVICE, PROFILE)

# %% [markdown]
# ## The data
#
# dSprites images are 64×64 binary pictures of one white sprite (square, ellipse or heart) with
# six factors: colour (always white), shape, scale, orientation, posX and posY. The course
# renders any of its 737,280 images from the factor classes. We draw a fixed set of images
# (its own generator, so it does not depend on training) to measure errors and plot codes.

# %%
ds = DSprites()
eval_generator = torch.Generator().manual_seed(SEED + 1000)
eval_classes = ds.sample_classes(NUM_EVAL, generator=eval_generator)
x_eval = ds.images(eval_classes)
print(ds.factor_names, ds.factor_sizes, f"{len(ds):,} images")
on_pixels = x_eval.sum(dim=(1, 2, 3))
print(f"a sprite covers {on_pixels.mean():.0f} pixels on average "
      f"(from {on_pixels.min():.0f} to {on_pixels.max():.0f}) of 4096: "
      f"{1 - on_pixels.mean().item() / 4096:.1%} of the pixels are black")
viz.show_images(x_eval[:16], nrow=16, title="16 dSprites images")

# %% [markdown]
# Most of each image is black: a sprite covers only a few percent of the pixels. Remember the
# number of "on" pixels: an autoencoder that outputs an empty black image makes exactly that
# squared error, so it is the baseline every reconstruction must beat.
#
# ## 1. The autoencoder
#
# An autoencoder is two networks trained together (source paper 003, §1.1):
#
# $$z = f_\phi(x) \in \mathbb{R}^D, \qquad \hat x = g_\theta(z) \in \mathbb{R}^{64\times 64}.$$
#
# The decoder's last layer is linear: $\hat x$ is the image itself, a real number per pixel
# that training pulls towards 0 (black) or 1 (white). To look at it we clip it to $[0, 1]$.
#
# We use the convolutional architecture of Burgess et al. (2018) that the whole course shares:
# four convolutions with 32 channels, kernel 4, stride 2 and padding 1, then two fully
# connected layers of 256 units and a linear layer to the $D$ code values; the decoder
# mirrors it with transposed convolutions.
#
# A convolution with kernel $k$, stride $s$ and padding $p$ turns an $n\times n$ input into an
# $n_{\text{out}}\times n_{\text{out}}$ output with
#
# $$n_{\text{out}} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .$$
#
# ### Exercise 1: output shapes
#
# Write `conv_output_size(n, kernel, stride, padding)`; Exercise 2 uses it to size the
# encoder's first fully connected layer.

# %%
def conv_output_size(n, kernel=4, stride=2, padding=1):
    """Side length of a convolution's output for an n×n input (an int)."""
    ### BEGIN SOLUTION
    # HINT: floor division // implements the floor of the formula above
    return (n + 2 * padding - kernel) // stride + 1
    ### END SOLUTION


# %% [markdown]
# The checker compares your function with a real `torch.nn.Conv2d` on a few inputs and falls
# back to the reference if something is wrong.

# %%
conv_output_size = exercises.check_conv_output_size(conv_output_size)

# %% [markdown]
# ### Exercise 2: the size where the convolutions meet the fully connected layers
#
# After the four convolutions, `nn.Flatten()` turns the 32 feature maps of the last one into a
# single vector per image, and the first `nn.Linear` must be told its length, its
# `in_features`. Compute that number, `flat_features`, with your `conv_output_size`: follow
# the side of a 64×64 image through the four convolutions (kernel 4, stride 2, padding 1),
# then count the values of 32 maps of that side.

# %%
### BEGIN SOLUTION
# HINT: apply conv_output_size(side, 4, 2, 1) four times, starting from side = 64;
#       Flatten then gives channels × side × side values (32 channels)
# STUB: flat_features = None
side = 64
for _ in range(4):
    side = conv_output_size(side, 4, 2, 1)
flat_features = 32 * side * side
### END SOLUTION

# %% [markdown]
# The checker compares your number with what `nn.Flatten` really returns after four real
# convolutions, names the usual slips, and falls back to the right value if needed.

# %%
flat_features = exercises.check_flat_features(flat_features)

# %% [markdown]
# ### The network, written out
#
# Here is the whole autoencoder as two `nn.Sequential` stacks, with your `flat_features`
# where the convolutions meet the fully connected layers. The decoder mirrors the encoder:
# fully connected layers up to `flat_features` values, `nn.Unflatten` back to 32 maps, and
# transposed convolutions (kernel 4, stride 2, padding 1) that double the side each time.
# The code $z$ and the output $\hat x$ come from linear layers, without a ReLU: a code value
# may be negative, and the decoder's output is the image itself.

# %%
from torch import nn

HIDDEN, FC = 32, 256   # channels of every convolution; units of the fully connected layers


def make_encoder(num_latents, flat_features):
    """x N×1×64×64 → z N×num_latents."""
    return nn.Sequential(
        nn.Conv2d(1, HIDDEN, 4, 2, 1), nn.ReLU(),        # 64×64 → 32×32
        nn.Conv2d(HIDDEN, HIDDEN, 4, 2, 1), nn.ReLU(),   # 32×32 → 16×16
        nn.Conv2d(HIDDEN, HIDDEN, 4, 2, 1), nn.ReLU(),   # 16×16 → 8×8
        nn.Conv2d(HIDDEN, HIDDEN, 4, 2, 1), nn.ReLU(),   # 8×8 → 4×4
        nn.Flatten(),                                    # 32 maps of 4×4 → flat_features
        nn.Linear(flat_features, FC), nn.ReLU(),
        nn.Linear(FC, FC), nn.ReLU(),
        nn.Linear(FC, num_latents),                      # the code z: no ReLU
    )


def make_decoder(num_latents, flat_features):
    """z N×num_latents → x_hat N×1×64×64 (the image itself: the last layer is linear)."""
    side = math.isqrt(flat_features // HIDDEN)
    return nn.Sequential(
        nn.Linear(num_latents, FC), nn.ReLU(),
        nn.Linear(FC, FC), nn.ReLU(),
        nn.Linear(FC, flat_features), nn.ReLU(),
        nn.Unflatten(1, (HIDDEN, side, side)),                    # flat_features → 32 maps of 4×4
        nn.ConvTranspose2d(HIDDEN, HIDDEN, 4, 2, 1), nn.ReLU(),   # 4×4 → 8×8
        nn.ConvTranspose2d(HIDDEN, HIDDEN, 4, 2, 1), nn.ReLU(),   # 8×8 → 16×16
        nn.ConvTranspose2d(HIDDEN, HIDDEN, 4, 2, 1), nn.ReLU(),   # 16×16 → 32×32
        nn.ConvTranspose2d(HIDDEN, 1, 4, 2, 1),                   # 32×32 → 64×64
    )


encoder = make_encoder(NUM_LATENTS, flat_features)
decoder = make_decoder(NUM_LATENTS, flat_features)
h = x_eval[:2]
print(f"{'input':<16} {tuple(h.shape)}")
with torch.no_grad():
    for layer in [*encoder, *decoder]:
        h = layer(h)
        if not isinstance(layer, nn.ReLU):
            print(f"{type(layer).__name__:<16} {tuple(h.shape)}")
print(f"the fully connected part squeezes {flat_features} numbers into D = {NUM_LATENTS}: "
      f"the 4096 pixels are compressed {4096 / NUM_LATENTS:.0f}-fold")

# %% [markdown]
# This is the convolutional architecture of Burgess et al. (2018) that the whole course
# shares, and the library's `Autoencoder` (in `course_lib/models/nets.py`) is written with
# exactly these layers: from now on we use it, as every later notebook does ("from scratch,
# then concise"). To check that it is the same network, copy its weights into ours, tensor by
# tensor, and compare the two outputs on the same images.

# %%
model = Autoencoder(num_latents=NUM_LATENTS)
ours = [*encoder.parameters(), *decoder.parameters()]
library = [*model.encoder.parameters(), *model.decoder.parameters()]
same_shapes = len(ours) == len(library) and all(a.shape == b.shape for a, b in zip(ours, library))
print(f"weight tensors: ours {len(ours)}, the library's {len(library)}, same shapes: {same_shapes}")
with torch.no_grad():
    for a, b in zip(ours, library):
        a.copy_(b)
    gap = (decoder(encoder(x_eval[:8])) - model(x_eval[:8])).abs().max().item()
print(f"largest difference between the outputs of the two networks: {gap:.1e} "
      f"(float32 rounding: {'yes' if gap < 1e-4 else 'no'})")

# %% [markdown]
# ### Exercise 3: encode, then decode
#
# The library's `Autoencoder` has `encode(x) -> (z, None)` (the `None` stands for the variance
# a VAE will add) and `decode(z)`, which returns the image. Write `reconstruct(model, x)`
# returning $\hat x = \text{decode}(\text{encode}(x))$ clipped to $[0, 1]$, with shape
# N×1×64×64.

# %%
def reconstruct(model, x):
    """Images x N×1×64×64 → reconstructions x_hat N×1×64×64 in [0, 1]."""
    ### BEGIN SOLUTION
    # HINT: encode returns a pair; Tensor.clamp(0, 1) clips the decoded image to [0, 1]
    z, _ = model.encode(x)
    return model.decode(z).clamp(0, 1)
    ### END SOLUTION


# %%
reconstruct = exercises.check_autoencoder_reconstruct(reconstruct)

# %% [markdown]
# ### Exercise 4: the reconstruction loss
#
# The source paper writes the autoencoder's loss as the mean squared error,
# $\frac1n \sum_{i=1}^n (x_i - \hat x_i)^2$ (its Eq. 1). We use the **sum over the pixels of an
# image, averaged over the images of a batch**:
#
# $$\mathcal L(x, \hat x) = \frac1N \sum_{n=1}^{N} \sum_{i=1}^{4096} (x_{n,i} - \hat x_{n,i})^2 .$$
#
# For an autoencoder alone the two differ by the constant factor 4096 and have the same
# minimiser (a larger loss scale only acts like a larger learning rate in SGD; Adam hardly
# notices). The sum is the one that stays right when we add a KL term in notebook 02 (which
# switches to a Bernoulli likelihood, also summed over pixels): it is
# $-\log p(x\mid z)$ of a Gaussian decoder with variance ½, up to a constant. Its unit is
# "squared pixels per image": a value of 10 is ten pixels entirely wrong (white drawn black),
# or forty pixels wrong by half (a grey 0.5 costs $0.5^2 = 0.25$), or many pixels of a grey
# edge that are each a little wrong.
#
# Write `sse_loss(x_hat, x)` returning this scalar.

# %%
def sse_loss(x_hat, x):
    """Squared error summed over pixels, averaged over the batch: x_hat, x N×C×H×W → scalar."""
    ### BEGIN SOLUTION
    # HINT: square the difference, sum over every dimension but the first, then average
    return ((x_hat - x) ** 2).flatten(1).sum(1).mean()
    ### END SOLUTION


# %%
sse_loss = exercises.check_sse_loss(sse_loss)
print("loss of the untrained model on 64 images:",
      f"{sse_loss(reconstruct(model, x_eval[:64]).detach(), x_eval[:64]):.1f} squared pixels per image")

# %% [markdown]
# The untrained decoder outputs small random values around 0: after clipping, a nearly black
# image with some noise, so it already pays about the empty-image error.
#
# ### Initialisation matters
#
# One more look at the untrained network: does its output depend on its input? PyTorch
# initialises the weights of a layer with fan-in $n$ uniformly with variance $1/(3n)$. After a
# ReLU, such a layer passes on about $1/6$ of the second moment of its input, and our
# autoencoder stacks 14 layers (7 in the encoder, 7 in the decoder): the input's influence on
# the output shrinks by a factor of order $6^{14}$ in variance. The decoder then draws the
# same picture for every image, and training starts from a network that ignores its input
# (the usual result is a long plateau: it learns the average, black, image first and only
# slowly discovers that the code carries information; below we measure only the first part,
# the spread at the start). He (Kaiming)
# initialisation, weights with variance $2/n$ and zero biases (the last layer, with no ReLU
# after it, $1/n$), keeps the second moment constant through ReLU layers (He et al., 2015). The course's networks start from it
# (`course_lib.models.nets.he_init_`); calling `reset_parameters()` on every layer brings back
# PyTorch's default. We measure the spread of the output across images for both.

# %%
def pytorch_default_init_(net):
    """Re-initialise every layer of ``net`` in place with PyTorch's default; returns net."""
    for layer in net.modules():
        if layer is not net and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return net


output_spread = {}
for label, net in [("PyTorch default", pytorch_default_init_(Autoencoder(num_latents=NUM_LATENTS))),
                   ("He (the course's)", Autoencoder(num_latents=NUM_LATENTS))]:
    with torch.no_grad():
        z0 = net.encode(x_eval[:64])[0]
        out0 = net.decode(z0)
    output_spread[label] = out0.std(0).mean().item()
    print(f"{label:<18} spread of the codes across images {z0.std(0).mean():.2e}, "
          f"of the decoder's output {output_spread[label]:.2e}")
ratio = output_spread["He (the course's)"] / max(output_spread["PyTorch default"], 1e-30)
print(f"with He initialisation the output varies {ratio:.0f} times more from image to image")

# %% [markdown]
# The spread of the output across images measures how much the untrained network's output
# depends on its input. With the default initialisation it is tiny, by the factor printed
# above: the untrained network all but ignores its input. With He initialisation the input
# reaches the output.
#
# ## 2. Training
#
# `course_lib.train` is the one training loop of the course: it draws batches of freshly
# rendered dSprites, calls the model's loss, logs it and saves a checkpoint. With a checkpoint
# already on disk for the same parameters, it just loads it.
#
# The library's `Autoencoder()` minimises the loss of Exercise 4 on its output, with Adam.
# Each of its updates is one *training step*, and that is the last piece you write.
#
# ### Exercise 5: one training step
#
# Write `train_step(model, x, optimizer)`: one update of the autoencoder on the batch `x`.
# Forward pass $\hat x$ = `model(x)` (the raw output: clipping it to $[0, 1]$ would leave
# no gradient for pixels outside that range), the loss with your `sse_loss`, the gradients
# (`loss.backward()`, after clearing the previous ones with `optimizer.zero_grad()`: PyTorch
# *adds* new gradients to the old), and the update (`optimizer.step()`). Return the loss of
# the batch (`loss.detach()`, a number without its graph).

# %%
def train_step(model, x, optimizer):
    """One update of the autoencoder ``model`` on the batch x (N×1×64×64); returns its loss."""
    ### BEGIN SOLUTION
    # HINT: zero the old gradients, compute the loss of the raw output model(x),
    #       backpropagate it, step the optimiser, and return the loss detached
    optimizer.zero_grad()
    loss = sse_loss(model(x), x)
    loss.backward()
    optimizer.step()
    return loss.detach()
    ### END SOLUTION


# %% [markdown]
# The checker runs your step and the library's on the same untrained network and the same
# two batches, with the same optimiser (plain SGD in double precision, so that every weight
# can be compared), and compares the losses and every weight after the updates.

# %%
train_step = exercises.check_train_step(train_step)

# %% [markdown]
# `course_lib.train` calls a model's `training_step(x, step, optimizers)` once per batch. The
# small subclass below hands that call to your `train_step`, so every autoencoder with a
# linear output that this notebook trains (the linear-output run of section 2 and the
# bottleneck experiment of section 4) is trained by your code — or by the library's step, if
# the checker had to fall back to it. `fit` names a run after the code of the functions in
# `exercise_functions` too, so a run trained by the fallback is never loaded in place of one of
# yours: after you solve the exercise (or edit your step), a rerun trains them again. The one exception is the sigmoid-output model of
# section 2: its squared error is taken *after* a sigmoid, which your `train_step` (the
# squared error of the raw output `model(x)`) does not apply, so it trains with the
# library's step.

# %%
class YourStepAutoencoder(Autoencoder):
    """The library's Autoencoder, updated by ``train_step`` (the function the checker returned)."""

    exercise_functions = (train_step,)   # fit names the runs after this code: yours, or the fallback

    def training_step(self, x, step, optimizers):
        loss = torch.as_tensor(train_step(self, x, optimizers["model"])).detach()
        return {"loss": loss, "recon": loss}


# %% [markdown]
# ### The main autoencoder: shipped
#
# A short run already gets the sprite's place and size about right (section 4 checks it for
# one short run, its largest code after a few hundred steps); the details of its *shape* (the corners of a square, the
# notch of a heart: a handful of pixels) come much more slowly. The main
# autoencoder of the quick profile trains for 10,000 steps of 64 images, many minutes on a
# laptop CPU (the cell below prints how long the shipped model took), and its loss is still
# falling at the end (the cell checks it); even then its reconstructions in section 3 are
# not perfect copies — look at the corners of the squares and the notches of the hearts.
# So this model is **shipped** with the
# course: `load_or_train("autoencoder", ...)` loads
# `data/checkpoints/autoencoder-10000steps-seed0.pt`, trained by the course's own command
# `python -m course_lib pretrain autoencoder` with exactly the recipe printed below (and the
# library's training step), and trains it (same recipe) when you change a parameter. The other
# linear-output autoencoders of this notebook are trained here, briefly, with your step.
#
# ⚠️ **Heavy cell** when the recipe differs from the shipped one (e.g. another `NUM_LATENTS`).

# %%
@torch.no_grad()
def reconstruction_error(model, x, batch_size=500):
    """Mean over the images x of the squared error summed over pixels (squared pixels/image),
    with the reconstructions as intensities in [0, 1]: your ``reconstruct`` and ``sse_loss``
    for the squared-error autoencoders, ``viz.reconstruct`` (``model.decode_pixels``, which
    knows the sigmoid) for the sigmoid model below."""
    model.eval()
    recon = reconstruct if model.recon == "mse" else viz.reconstruct
    errors = []
    for xb in x.split(batch_size):
        xb = xb.to(device)
        errors.append(float(sse_loss(recon(model, xb).to(device), xb)) * len(xb))
    return sum(errors) / len(x)


def fit_autoencoder(num_latents, steps, recon="mse"):
    """Train (or load) an autoencoder with a code of num_latents values for ``steps`` steps of
    SWEEP_BATCH_SIZE images with the reconstruction loss ``recon``; returns the TrainResult.
    ``fit`` loads the run from runs/checkpoints/ when this configuration was trained before."""
    torch.manual_seed(SEED)
    # the linear-output autoencoders train with your train_step; the sigmoid one with the library's
    ae = (YourStepAutoencoder if recon == "mse" else Autoencoder)(num_latents=num_latents, recon=recon)
    return fit(ae, ds, steps=steps, batch_size=SWEEP_BATCH_SIZE, lr=LR, seed=SEED, device=device, tag="01")


main_run = load_or_train("autoencoder", profile=PROFILE, device=device, num_latents=NUM_LATENTS,
                         steps=STEPS, batch_size=BATCH_SIZE, lr=LR, seed=SEED)
ae = main_run.model.eval()
recipe = main_run.extra["recipe"]
print("recipe:", {k: recipe[k] for k in ("model", "config", "steps", "batch_size", "lr", "seed")})
if main_run.extra["source"] == "shipped":
    trained_on = main_run.extra["trained_on"]
    checkpoint = Path(main_run.checkpoint).resolve()   # printed relative to the repository
    if checkpoint.is_relative_to(repo_root()):
        checkpoint = checkpoint.relative_to(repo_root())
    print(f"loaded the shipped model {checkpoint}: trained by `python -m course_lib "
          f"pretrain autoencoder`, {describe_training(trained_on)}")
else:
    print(f"trained in {main_run.seconds:.0f} s ({main_run.images_per_second:.0f} images/s on {device})")
main_loss = np.asarray(main_run.history["loss"])
tenth = max(1, len(main_loss) // 10)
print(f"first logged loss {main_loss[0]:.1f} (step {main_run.history['step'][0]}), last {main_loss[-1]:.1f}; "
      f"below the empty image from the first logged step on: {bool(main_loss.max() < on_pixels.mean())}")
print("the loss still fell over the last tenth of training:",
      bool(main_loss[-tenth:].mean() < main_loss[-2 * tenth:-tenth].mean()))
fig = viz.plot_history(main_run.history, keys=("loss",), logy=True,
                       title=f"autoencoder, D = {NUM_LATENTS}: squared error per image")
fig.axes[0].axhline(on_pixels.mean().item(), color="grey", ls="--", label="empty image")
fig.axes[0].set_ylabel("squared pixels per image")
fig.axes[0].legend(fontsize=8)
fig

# %% [markdown]
# When the lines above say `True`, the loss is below the empty-image level (the dashed line)
# from the first logged step on, and is still falling at the end. One loss curve cannot say
# *what* the network learns when: a fall of the error may be position, size, orientation or
# shape. The evidence for an order comes from elsewhere: section 4 checks whether one run of only
# a few hundred steps already put the sprite at about the right place and size, and section
# 3's reconstructions show that the fine shape is what even the long run has not finished.
#
# ### Why not squash the output with a sigmoid?
#
# Pixels lie in $[0, 1]$, so it is tempting to end the decoder with a sigmoid,
# $\hat x = \operatorname{sigmoid}(\text{logits})$, and keep the same squared error
# (`Autoencoder(recon="gaussian")`: the library's name for "squared error after a sigmoid",
# the Gaussian log-likelihood of notebook 02 with the mean squashed into $[0, 1]$; the linear
# output of Exercise 4 is `recon="mse"`). We train it briefly, and next to it the same network with
# its usual linear output, with the same budget (`MSE_STEPS` steps of `SWEEP_BATCH_SIZE`
# images each, far fewer than the main model's), and compare both with the empty-image
# baseline.

# %%
sigmoid_run = fit_autoencoder(NUM_LATENTS, MSE_STEPS, recon="gaussian")
sigmoid_ae = sigmoid_run.model.eval()
linear_run = fit_autoencoder(NUM_LATENTS, MSE_STEPS)            # linear output, the same budget
sigmoid_error = reconstruction_error(sigmoid_ae, x_eval)
linear_error = reconstruction_error(linear_run.model, x_eval)
print(f"budget of both: {MSE_STEPS} steps of {SWEEP_BATCH_SIZE} images")
print(f"squared error per image: through a sigmoid {sigmoid_error:.1f}, linear output "
      f"{linear_error:.1f}, empty image {on_pixels.mean():.1f}")
with torch.no_grad():
    xb = x_eval[:500].to(device)
    logits = sigmoid_ae.decode(sigmoid_ae.encode(xb)[0])
    x_hat = torch.sigmoid(logits)
    grad_logit = (2 * (x_hat - xb) * x_hat * (1 - x_hat)).abs()   # |∂ squared error / ∂ logit|
    sprite = xb > 0.5
brightest = x_hat.max().item()
print(f"sigmoid model: brightest output pixel {brightest:.2e}; median logit at sprite pixels "
      f"{logits[sprite].median():.0f}, at black pixels {logits[~sprite].median():.0f}")
sprite_share = (grad_logit[sprite].sum() / grad_logit.sum().clamp_min(torch.finfo(torch.float32).tiny)).item()
print(f"share of the summed |∂loss/∂logit| that comes from the sprite pixels: {sprite_share:.1e} "
      f"(below one millionth: {sprite_share < 1e-6})")
sigmoid_stuck = sigmoid_error > 0.95 * on_pixels.mean().item() and brightest < 0.5
print("the sigmoid model is stuck at the empty image (error within 5 % of the empty image's, no "
      f"pixel brighter than 0.5): {sigmoid_stuck}")
print("the linear output, with the same budget, ends below half the empty-image error:",
      linear_error < 0.5 * on_pixels.mean().item())
print(f"first logged loss through the sigmoid: {sigmoid_run.history['loss'][0]:.0f} "
      f"(step {sigmoid_run.history['step'][0]}); an output of 0.5 everywhere costs 4096 × 0.5² = 1024")
fig = viz.plot_history(sigmoid_run.history, keys=("loss",), logy=True,
                       title=f"squared error per image, {MSE_STEPS} steps of {SWEEP_BATCH_SIZE} images")
ax = fig.axes[0]
ax.lines[0].set_label("sigmoid output")
ax.plot(linear_run.history["step"], linear_run.history["loss"], label="linear output")
ax.axhline(on_pixels.mean().item(), color="grey", ls="--", label="empty image")
ax.axhline(4096 * 0.5 ** 2, color="grey", ls=":", label="output 0.5 everywhere")
ax.set_ylabel("squared pixels per image")
ax.legend(fontsize=7)
fig

# %% [markdown]
# When the check above says `True`, the sigmoid network has learned to output a black image
# for every input and stays there: its error is the empty-image baseline, and even its
# brightest output pixel is dark. Its loss curve starts near $4096 \times 0.5^2 = 1024$ (the
# dotted line): the untrained decoder's logits are close to 0 and $\operatorname{sigmoid}(0) = 0.5$,
# so every pixel, black or white, costs $0.5^2$. It then drops to the empty image (dashed)
# and stays there, while the linear output, trained with the same budget, goes on down (a
# line above says whether it ends below half the empty-image error).
#
# Why? The gradient of the squared error with respect to a logit is
# $2(\hat x - x)\,\hat x(1-\hat x)$. Most pixels are black (the share is printed in the data
# section), so the first steps follow them and push the logits down everywhere, the sprite's
# pixels included. As a logit goes far below 0, $\hat x(1 - \hat x) \approx \hat x$ goes to 0:
# the sigmoid is *saturated*, and a white sprite pixel drawn black, which should pull hardest,
# hardly pulls at all (in PyTorch's float32 sigmoid a logit below about −88.7 gives exactly 0,
# where exp overflows, and so does its gradient). The printed lines show how far this run went: the median logit of
# the sprite pixels, and their share of the gradient (when it is below one millionth, the
# sprite has in effect no say in the update). What is left of the gradient comes from the
# black pixels that are still slightly grey, and it says "darker". Adam divides each parameter's step by the typical size of that parameter's
# gradient, so even this tiny gradient moves the weights by full-size steps — but in the
# direction it points, "darker still", never "brighter where the sprite is". With a linear
# output the gradient is $2(\hat x - x)$: a white pixel drawn black pulls with full strength.
#
# A sigmoid output does work with the Bernoulli cross-entropy
# $-\sum_i [x_i \log\hat x_i + (1-x_i)\log(1-\hat x_i)]$, whose gradient with respect to the
# logit is $\hat x - x$, again without the saturating factor. That is the loss of the VAE's
# decoder in notebook 02.
#
# ## 3. Reconstructions

# %%
recon_error = reconstruction_error(ae, x_eval)
headline(f"AE reconstruction error, D={NUM_LATENTS} (squared pixels/image)", recon_error, ".1f")
print(f"empty-image baseline: {on_pixels.mean():.1f} squared pixels/image")
fig = viz.reconstruction_grid(ae, x_eval[:12])
viz.save_figure(fig, "01_reconstructions.png")
fig

# %% [markdown]
# Top row: images the model was evaluated on; bottom row: their reconstructions. The error
# above is in squared pixels per image (whole wrong pixels, or many partly wrong grey edge
# pixels): compare it with the empty-image baseline. Look at what comes back: position and
# size match; the shape is where the reconstructions still differ (the corners of a square,
# the elongation of an ellipse); the hearts are the hardest, since their notch is a handful
# of pixels, and they tend to come out rounded. The bottleneck experiment below shows what a
# short run gives.
#
# ## 4. How small can the bottleneck be?
#
# The source paper warns that a code that is too small loses information (§1.1). dSprites has
# five varying factors (shape, scale, orientation, posX, posY), so five numbers *could*
# describe an image — but only if the network found such a perfect code (and a smooth code
# needs two numbers for the orientation alone, which comes back to where it started after a
# turn: the argument about smooth codes below). We train the same
# autoencoder with several code sizes and the same (much shorter) budget, `SWEEP_STEPS` steps
# of `SWEEP_BATCH_SIZE` images each.
#
# ⚠️ **Heavy cell**: one training run per code size.

# %%
results = {d: fit_autoencoder(d, SWEEP_STEPS) for d in BOTTLENECKS}
sweep = {d: reconstruction_error(results[d].model, x_eval) for d in BOTTLENECKS}
print(f"{'D':>4} {'recon error (squared pixels/image)':>36}")
for d, err in sweep.items():
    print(f"{d:>4} {err:>36.1f}")
print(f"{'':>4} {on_pixels.mean().item():>36.1f}  (empty image)")
sizes = sorted(sweep)
print("the error falls at every larger code size:",
      all(sweep[a] > sweep[b] for a, b in zip(sizes, sizes[1:])))
for small, large in zip(sizes, sizes[1:]):
    print(f"D = {large} instead of D = {small} removes {1 - sweep[large] / sweep[small]:.0%} of the error")
headline(f"AE reconstruction error per code size D, {SWEEP_STEPS} steps of {SWEEP_BATCH_SIZE} (squared pixels/image)",
         {str(d): err for d, err in sweep.items()}, ".1f")
if NUM_LATENTS in sweep:  # the same network and code size as the main model, a far smaller budget
    print(f"D = {NUM_LATENTS} here: {sweep[NUM_LATENTS]:.1f} after {SWEEP_STEPS * SWEEP_BATCH_SIZE:,} images "
          f"({SWEEP_STEPS} steps of {SWEEP_BATCH_SIZE}); the main model, the same network and code size: "
          f"{recon_error:.1f} after {STEPS * BATCH_SIZE:,} images ({STEPS} steps of {BATCH_SIZE}): "
          f"the gap is the training budget")

fig = viz.figure(figsize=(4.5, 3.2), layout="constrained")
ax = fig.subplots()
ax.plot(list(sweep), list(sweep.values()), "o-", label=f"autoencoder, {SWEEP_STEPS} steps of {SWEEP_BATCH_SIZE}")
ax.plot([NUM_LATENTS], [recon_error], "*", ms=11, color="C3", label=f"main model, {STEPS} steps of {BATCH_SIZE}")
ax.axhline(on_pixels.mean().item(), color="grey", ls="--", label="empty image")
ax.set_xscale("log", base=2)
ax.set_xticks(list(sweep), [str(d) for d in sweep])
ax.set_xlabel("code size D")
ax.set_ylabel("squared pixels per image")
ax.set_title("reconstruction error against bottleneck size")
ax.legend(loc="center right", fontsize="small")
viz.save_figure(fig, "01_bottleneck.png")
fig

# %% [markdown]
# One real number *could* hold both coordinates: the 32 × 32 = 1024 positions fit on a line,
# numbered row by row. But such a code is not smooth: positions that are neighbours on the
# screen (one row apart) get code values far apart, and the decoder would have to jump
# between very different images for nearby code values. A network of smooth layers trained
# by small gradient steps does not find such a code, and with D = 1 the error stays well
# above that of D = 2. Two numbers can hold the position smoothly; larger codes add room for
# scale, shape and orientation. Every code size here had the same short budget
# (`SWEEP_STEPS` steps, printed in the parameters), D = 1 included, so part of each error is
# the budget. The printed shares say what each larger code buys: when the last one is small,
# the largest code hardly beats the next smaller one, and the short training budget, not the
# code size, is what limits it.
#
# How far did these short runs get? For the largest code of the sweep and the main model, we
# compare 500 of the evaluation images with their reconstructions: the distance between the
# centres of their ink (in pixels) and the ratio of their numbers of inked pixels (intensity
# ≥ 0.5). We call place and size "about right" when the median distance is below 2 pixels and
# the median ratio between 0.75 and 1.25; what such a model still gets wrong is mostly the
# outline: shape, orientation and blurred edges.

# %%
with torch.no_grad():
    for label, net in ((f"D = {max(BOTTLENECKS)}, {SWEEP_STEPS} steps of {SWEEP_BATCH_SIZE}",
                        results[max(BOTTLENECKS)].model.eval()),
                       (f"main model, {STEPS} steps of {BATCH_SIZE}", ae)):
        recon_pixels = reconstruct(net, x_eval[:500].to(device)).cpu()
        centre_gap = (ink_centres(recon_pixels) - ink_centres(x_eval[:500])).norm(dim=1)
        area_ratio = (recon_pixels >= 0.5).flatten(1).sum(1) / on_pixels[:500]
        about_right = bool(centre_gap.nanmedian() < 2 and 0.75 < area_ratio.median() < 1.25)
        print(f"{label:<32} median distance of the ink centres {centre_gap.nanmedian():.2f} px, "
              f"median ratio of inked pixels {area_ratio.median():.2f}; about right: {about_right}")

# %% [markdown]
# ## 5. A 2-D code, coloured by the true position
#
# With D = 2 we can draw the code of every evaluation image. Colouring the points by the
# sprite's true posX and posY shows what the two code values learned. The model is the D = 2
# run of the bottleneck sweep, trained for only `SWEEP_STEPS` steps: what it shows is how an
# autoencoder's code starts out; nothing in the loss asks for a regular code, so training
# longer need not make it one.

# %%
ae2 = (results[2] if 2 in results else fit_autoencoder(2, SWEEP_STEPS)).model.eval()
with torch.no_grad():
    codes2 = ae2.encode(x_eval.to(device))[0].cpu()
pos_x, pos_y = eval_classes[:, 4], eval_classes[:, 5]
fig = viz.figure(figsize=(9, 3.8), layout="constrained")
axes = fig.subplots(1, 2, sharex=True, sharey=True)
for ax, colour, label in zip(axes, (pos_x, pos_y), ("posX class", "posY class")):
    sc = ax.scatter(codes2[:, 0], codes2[:, 1], c=colour, s=4, cmap="viridis")
    fig.colorbar(sc, ax=ax, label=label)
    ax.set_xlabel("$z_0$")
    ax.set_ylabel("$z_1$")
    ax.set_title(f"2-D codes coloured by {label.split()[0]}")
viz.save_figure(fig, "01_latent_2d.png")
display(fig)

correlation = np.corrcoef(np.column_stack([codes2.numpy(), pos_x.numpy(), pos_y.numpy()]).T)[:2, 2:]
print("correlation of the code values with the true position:")
print(f"        posX   posY\nz_0   {correlation[0, 0]:+.2f}  {correlation[0, 1]:+.2f}\n"
      f"z_1   {correlation[1, 0]:+.2f}  {correlation[1, 1]:+.2f}")
strength = np.abs(correlation)
axis_aligned = bool(any((strength[0, a] > 0.9 and strength[0, 1 - a] < 0.3
                         and strength[1, 1 - a] > 0.9 and strength[1, a] < 0.3) for a in (0, 1)))
print("each code axis follows one coordinate (|corr| > 0.9 with it, < 0.3 with the other):",
      axis_aligned)

# %% [markdown]
# If the colours change smoothly across the cloud, the two code values hold the position. But
# nothing in the loss asks for *one* code value per factor: the position may be stored in any
# rotated or bent coordinate system, and the shape, scale and orientation are squeezed in
# wherever they fit. The last line says whether this run's code axes happen to follow posX
# and posY (the correlations only measure the straight-line part of the relation; two codes
# that each correlate about equally with posX and posY, with opposite signs for one of them,
# are the position plane turned by about 45°). Nothing in the loss ties the cloud's location
# or extent to anything either — remember that for section 7, which asks where the main
# model's codes lie.
#
# ## 6. Interpolating between two codes
#
# Take two images $x_a, x_b$, their codes $z_a, z_b$, and decode the points
# $z_t = (1-t)\, z_a + t\, z_b$ in between. For comparison, the bottom row blends the *pixels*
# $(1-t)\, x_a + t\, x_b$.

# %%
a = int(torch.argmin(eval_classes[:, 4] + eval_classes[:, 5]))      # sprite near the top left
b = int(torch.argmax(eval_classes[:, 4] + eval_classes[:, 5]))      # sprite near the bottom right
t = torch.linspace(0, 1, 9).view(-1, 1)
with torch.no_grad():
    z_ab = ae.encode(x_eval[[a, b]].to(device))[0].cpu()
    z_t = (1 - t) * z_ab[0] + t * z_ab[1]
    latent_path = ae.decode_pixels(z_t.to(device)).cpu()
pixel_path = (1 - t.view(-1, 1, 1, 1)) * x_eval[a] + t.view(-1, 1, 1, 1) * x_eval[b]
for label, path in (("decoded codes", latent_path), ("blended pixels", pixel_path)):
    brightness = path.sum(dim=(1, 2, 3))
    brightness = brightness / (0.5 * (brightness[0] + brightness[-1]))
    print(f"brightness of each frame relative to the mean of the two ends, {label + ':':<15}",
          " ".join(f"{v:.2f}" for v in brightness))
fig = viz.show_images(torch.cat([latent_path, pixel_path]), nrow=9,
                      title="top: decoded codes on the segment z_a → z_b; bottom: blended pixels")
viz.save_figure(fig, "01_interpolation.png")
fig

# %% [markdown]
# Blending pixels gives two fading ghosts at once. Along the code segment the decoder mostly
# draws *one* sprite at a time, but look at how it gets from one place to the other: rather
# than gliding, an autoencoder often keeps the first sprite for part of the way and then
# switches to the second, or lets the first shrink and fade before the second appears. The printed brightness tells whether the frames in between fade: the
# blended pixels change linearly from one end to the other, while a decoded frame much darker
# than both ends is a code that decodes to (almost) nothing. The straight
# segment between two codes leaves the region where the training codes lie, and nothing in
# the autoencoder's loss makes straight lines between codes meaningful.
#
# ## 7. Can we sample new images? Not from a plain autoencoder
#
# A generative model lets us draw new images. The decoder alone maps a code to an image, so it
# is tempting to draw random codes and decode them. But which distribution? Nothing in the
# autoencoder's loss says where the codes should lie. First look at the codes the encoder
# actually produces for the evaluation images.

# %%
with torch.no_grad():
    codes = torch.cat([ae.encode(xb.to(device))[0].cpu() for xb in x_eval.split(500)])
print(f"codes of {len(codes)} images, D = {codes.shape[1]}")
print("dimension:", " ".join(f"{j:>6d}" for j in range(codes.shape[1])))
print("mean:     ", " ".join(f"{m:>6.2f}" for m in codes.mean(0)))
print("std:      ", " ".join(f"{s:>6.2f}" for s in codes.std(0)))
off = ((codes.mean(0).abs() > 0.5) | ((codes.std(0) - 1).abs() > 0.5)).sum().item()
print(f"dimensions whose mean is further than 0.5 from 0 or whose std is outside [0.5, 1.5]: "
      f"{off} of {codes.shape[1]}")
prior_draws = torch.randn(len(codes), codes.shape[1], generator=torch.Generator().manual_seed(SEED + 4000))
print(f"median distance from the origin: the codes {codes.norm(dim=1).median():.2f}, N(0, I) draws "
      f"{prior_draws.norm(dim=1).median():.2f} (about √D = {math.sqrt(codes.shape[1]):.2f})")

fig = viz.figure(figsize=(11, 3.2), layout="constrained")
axes = fig.subplots(1, 3)
grid = np.linspace(-4, 4, 200)
for j, ax in enumerate(axes[:2]):
    ax.hist(codes[:, j].numpy(), bins=50, density=True, alpha=0.7, label=f"codes $z_{j}$")
    ax.plot(grid, np.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), "k--", label="N(0, 1)")
    ax.set_xlabel(f"$z_{j}$")
    ax.set_ylabel("density")
    ax.set_title(f"code value {j}")
    ax.legend(fontsize=8)
prior_draws = torch.randn(len(codes), 2, generator=torch.Generator().manual_seed(SEED + 7))
axes[2].scatter(prior_draws[:, 0], prior_draws[:, 1], s=3, alpha=0.3, color="grey", label="N(0, I)")
axes[2].scatter(codes[:, 0], codes[:, 1], s=3, alpha=0.5, label="codes of images")
axes[2].set_xlabel("$z_0$")
axes[2].set_ylabel("$z_1$")
axes[2].set_title("two code dimensions")
axes[2].legend(fontsize=8, markerscale=3)
viz.save_figure(fig, "01_code_distribution.png")
fig

# %% [markdown]
# The lines count the code dimensions that are visibly not standard normal (off centre,
# or with a spread far from 1) and compare the typical distance from the origin of the codes
# and of draws of $\mathcal N(0, I)$; the scatter plot shows the region the codes fill next to
# those draws. Nothing in the loss pulls the codes towards the prior: whether the codes sit off
# centre, or, as often, in a cloud narrower than the prior's, a standard normal draw lands
# where the decoder was not trained.
#
# Now decode three kinds of codes, 16 of each:
#
# 1. $z \sim \mathcal N(0, I)$, the obvious "prior";
# 2. $z$ uniform in the bounding box of the actual codes (each dimension between its minimum
#    and maximum over the evaluation images): at least the right range;
# 3. the codes of real images (the control: these are just reconstructions).
#
# To judge the results with a number, we compare each decoded image with the **best-matching
# real dSprites image** in a bank of rendered images, by their soft intersection over union
# (IoU): 1 for a copy of a real image, 0 for an empty one (the bank holds only some of the
# images, so even a real image often finds no exact copy: a line prints that ceiling). (A plain squared distance would be
# fooled: an all-black image is only as far from the smallest sprite as that sprite's number
# of pixels, printed in the data section.) A
# good sample overlaps some real image well; garbage overlaps none. `course_lib.quality.best_match_iou`
# computes, for each decoded image $s$ (intensities in [0, 1]) and the bank's binary images $x_j$,
# $\max_j \sum s\,x_j \,/\, \big(\sum s + \sum x_j - \sum s\,x_j\big)$ (sums over the pixels).

# %%
bank = ds.images(ds.sample_classes(profiles.pick(PROFILE, smoke=256, quick=20_000, full=100_000),
                                   generator=torch.Generator().manual_seed(SEED + 2000)))
gen = torch.Generator().manual_seed(SEED + 3000)
low, high = codes.min(0).values, codes.max(0).values
sources = {
    "N(0, I)": torch.randn(16, ae.num_latents, generator=gen),
    "uniform in the codes' box": low + (high - low) * torch.rand(16, ae.num_latents, generator=gen),
    "codes of real images": codes[:16],
}
decoded = {}
with torch.no_grad():
    for name, z in sources.items():
        decoded[name] = ae.decode_pixels(z.to(device)).cpu()
distances = {name: best_match_iou(img, bank) for name, img in decoded.items()}
print(f"{'codes':<28} {'median IoU with the best-matching real image':>45}")
for name, dist in distances.items():
    print(f"{name:<28} {dist.median():>45.2f}")
# the ceiling: real images themselves rarely have an exact copy among the bank's images
real_iou = best_match_iou(x_eval[:16], bank)
print(f"{'(real images, no decoder)':<28} {real_iou.median():>45.2f}   ← the ceiling with a bank of {len(bank):,} "
      f"of the {len(ds):,} images")
headline("AE: decoded N(0,I) samples, median IoU with the best-matching real image",
         distances["N(0, I)"].median(), ".2f")
headline("AE: decoded real codes, median IoU with the best-matching real image",
         distances["codes of real images"].median(), ".2f")
prior_worse = bool(distances["N(0, I)"].median() < distances["codes of real images"].median())
print(f"decoded N(0, I) codes match real sprites worse than decoded real codes: {prior_worse}")

fig = viz.show_images(torch.cat(list(decoded.values())), nrow=16,
                      title="decoded codes — rows: N(0, I); uniform in the box; codes of real images")
viz.save_figure(fig, "01_ae_samples.png")
np.savez_compressed(viz.figures_dir() / "01_ae_samples.npz",
                    **{name.replace(" ", "_"): img.numpy() for name, img in decoded.items()})
fig

# %% [markdown]
# The first two rows are what "sampling an autoencoder" gives: look for twisted blobs,
# fragments, sometimes two pieces at once — shapes that are not in dSprites. When the last
# line printed `True`, the median IoU of the N(0, I) row is also below the control's (the box
# row's median is in the table above) (the IoU is generous to
# any blob of the right size, so the pictures say more than the numbers). Only the third row,
# codes that the encoder produced, decodes to sprites. The decoder is only trained
# where the training codes lie, and that set is a thin, irregular region of $\mathbb R^D$ that
# we have no formula for. (The decoded samples are also saved to
# `runs/figures/01_ae_samples.npz`; notebook 02 trains its own autoencoder for the same
# comparison, so it does not need this file.)
#
# The variational autoencoder fixes exactly this: it *asks* the codes to follow a known prior
# $p(z) = \mathcal N(0, I)$ through a KL term, and makes each code a small cloud instead of a
# point, so the decoder learns to decode a whole region. Then $z \sim \mathcal N(0, I)$ is a
# valid way to generate. That is notebook 02.
#
# ## Summary: the source paper's statements and our numbers

# %%
summary = [
    ("AEs use an MSE loss (Eq. 1)",
     f"{recon_error:.1f} squared pixels/image at D={NUM_LATENTS} after {STEPS:,} steps of {BATCH_SIZE} "
     f"(empty image {on_pixels.mean():.1f}); with {MSE_STEPS} steps of {SWEEP_BATCH_SIZE}: "
     f"{linear_error:.1f} with a linear output, {sigmoid_error:.1f} through a sigmoid"),
    ("too small a latent space loses information",
     "; ".join(f"D={d}: {e:.1f}" for d, e in sweep.items())
     + f" after {SWEEP_STEPS:,} steps of {SWEEP_BATCH_SIZE} (empty image: {on_pixels.mean():.1f})"),
    ("the latent space is unregularised and not interpretable",
     f"2-D code axes {'follow' if axis_aligned else 'do not follow'} posX/posY one to one "
     f"(|corr| z_0: {abs(correlation[0, 0]):.2f}/{abs(correlation[0, 1]):.2f}, "
     f"z_1: {abs(correlation[1, 0]):.2f}/{abs(correlation[1, 1]):.2f})"),
    ("(implied) the decoder alone is no generator",
     f"median IoU with the best-matching real image: decoded N(0, I) codes "
     f"{distances['N(0, I)'].median():.2f}, decoded real codes "
     f"{distances['codes of real images'].median():.2f}"),
]
print(f"{'source paper 003 says':<58} | ours ({PROFILE} profile)")
print("-" * 140)
for claim, ours in summary:
    print(f"{claim:<58} | {ours}")

# %% [markdown]
# In the smoke profile the numbers are meaningless (a few training steps); run the quick
# profile to see the effects described in the text.
#
# ## Exercises for the reader
#
# 1. Train with the source paper's Eq. 1 literally, the squared error *averaged* over pixels
#    (`gaussian_recon(..., reduction="mean")` in a small subclass of `Autoencoder`). Does the
#    result change with Adam? Why would it with plain SGD at the same learning rate?
# 2. Replace the squared error by the Bernoulli cross-entropy (`Autoencoder(recon="bernoulli")`).
#    Which one learns the sprite's shape faster, and why might a loss on logits help for
#    binary images?
# 3. Fit a Gaussian to the codes (their mean and covariance) and sample from it. Are the
#    decoded images better than with $\mathcal N(0, I)$? What does this say about the shape of
#    the region the codes fill?
# 4. Make the 2-D experiment harder: fix the sprite's position (`ds.sampler(class_ranges=...)`)
#    so that only shape, scale and orientation vary. What do the two code values learn now?
#
# ## References
#
# - F. Moga, *Learning disentangled representations with Variational Autoencoders* (source paper
#   `003_9cf833ed4120ca8c.txt`), §1.1.
# - G. E. Hinton and R. R. Salakhutdinov, *Reducing the Dimensionality of Data with Neural
#   Networks*, Science 313, 2006.
# - C. P. Burgess et al., *Understanding disentangling in β-VAE*, 2018 (the architecture).
# - L. Matthey, I. Higgins, D. Hassabis and A. Lerchner, *dSprites: Disentanglement testing
#   Sprites dataset*, 2017.
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers*, ICCV 2015 (He
#   initialisation).
# - D. P. Kingma and M. Welling, *Auto-Encoding Variational Bayes*, ICLR 2014 (next notebook).
