"""GANs of notebook 06: GAN, unrolled GAN, InfoGAN and unrolled InfoGAN (source paper 002).

All four are :class:`~course_lib.models.base.CourseModel` s trained by the one training loop:
they own two Adam optimisers (``"generator"`` and ``"discriminator"``) and override
:meth:`training_step`, which makes one generator update and then one discriminator update.

Objective (source paper eq. 1), with ``D(x) = σ(logit(x))``::

    f(θ_G, θ_D) = E_x[log D(x)] + E_z[log(1 − D(G(z)))]

The discriminator minimises ``−f`` (binary cross-entropy, nats per sample); the generator
minimises the usual non-saturating loss ``−E_z[log D(G(z))]`` (``generator_form=
"non_saturating"``, the default) or the fake half of ``f`` itself, ``E_z[log(1 − D(G(z)))]``
(``generator_form="minimax"``).

**Unrolling** (source paper eq. 8–11). With ``unroll_steps = K > 0`` the generator's loss is taken
against the discriminator after K differentiable steps of *its own optimiser* (Adam, from its
current moments), written as a pure function of (params, state, grads)::

    θ_D^{k+1} = Adam(θ_D^k, state^k, ∂(−f)/∂θ_D^k)     (eq. 8, gradient descent on −f)
    f_K(θ_G, θ_D) = f(θ_G, θ_D^K(θ_G, θ_D))            (eq. 10)

The generator minimises, term by term (:meth:`_AdversarialModel.unrolled_generator_terms`)::

    E_x[log D_K(x)]  +  fake term through D_K         (D_K: the discriminator at θ_D^K)

with the fake term ``E_z[log(1 − D_K(G(z)))]`` (``generator_form="minimax"``: the sum is f_K
exactly) or ``−E_z[log D_K(G(z))]`` (non-saturating, the default). The real-data term depends
on θ_G only through θ_D^K, which has seen G(z) in the unrolled steps. The gradients inside the
unroll are taken with ``create_graph=True``, so back-propagating gives both terms of eq. 11,
``∂f/∂θ_G + ∂f/∂θ_D^K · dθ_D^K/dθ_G``; the real term's gradient is all in the second.
``first_order=True`` drops that second term (the unrolled parameters are treated as constants
of θ_G, and the real term then gives no gradient). The unrolled copies are then discarded and
the real discriminator makes one normal step.

**InfoGAN** (source paper eq. 2–3). The generator also gets latent codes ``c`` (categorical codes,
one-hot, and continuous codes, uniform on [−1, 1]); Q shares the discriminator's trunk and
predicts ``c`` from ``G(z, c)``. The source's L_I = E[log Q(c | G(z, c))] + H(c) is a lower bound
on ``I(c; G(z, c))`` that G and Q maximise; the code minimises the weighted loss::

    info = λ_cat · Σ_categorical CE(Q_logits, c) + λ · Σ_continuous NLL_Gaussian(c | μ_Q, σ_Q)   (nats)

which is −L_I + H(c) when λ_cat = λ = 1 (H(c) is a constant of G and Q, left out), so
minimising it maximises L_I. Generator and Q minimise it (the generator with its adversarial
loss, Q with the discriminator's step; ``q_with`` moves Q's head to the generator's step).
**Unrolled InfoGAN** (source paper eq. 12–13): ``g_K = f_K − λ L_I``: the
adversarial term goes through the unrolled discriminator, the information term through the
current one.

Architectures (``arch``): ``"mlp"`` for 2-D toys (``replicas`` independent GANs trained side by
side, e.g. several seeds at once), ``"conv32"`` (32×32 images, MNIST) and ``"conv64"``
(64×64 images, dSprites). Images are in [0, 1]; the generator ends with a sigmoid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .base import CourseModel, check_non_negative, check_positive_int, register

ARCHS = ("mlp", "conv32", "conv64")
Q_WITH = ("discriminator", "generator")
GENERATOR_FORMS = ("non_saturating", "minimax")


# -- latent codes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeSpec:
    """The latent codes of an InfoGAN: ``categorical`` sizes and the number of continuous codes.

    The code vector fed to the generator is the one-hot categorical codes, in order, followed
    by the continuous codes: ``dim = sum(categorical) + continuous``.
    """

    categorical: tuple = ()
    continuous: int = 0

    @property
    def dim(self) -> int:
        return sum(self.categorical) + self.continuous

    @property
    def q_outputs(self) -> int:
        """Q's outputs: one logit per category, a mean and a log-std per continuous code."""
        return sum(self.categorical) + 2 * self.continuous

    def __str__(self) -> str:
        parts = [f"cat{k}" for k in self.categorical]
        if self.continuous:
            parts.append(f"cont{self.continuous}")
        return ",".join(parts)


_TOKEN = re.compile(r"^(cat|categorical|cont|continuous)(\d*)$")
_SPEC_HELP = ('expected a string such as "cat10,cont2" (one categorical code of 10 values and '
              'two continuous codes), "" for none, or a list of dicts such as '
              '[{"type": "categorical", "size": 10}, {"type": "continuous", "size": 2}]')


def parse_codes(spec) -> CodeSpec:
    """Read a code specification: ``"cat10,cont2"``, ``[{"type": "cat", "size": 10}, ...]``,
    a :class:`CodeSpec`, or ``None``/``""`` for no codes.

    ``catN`` is one categorical code with N ≥ 2 values; ``contN`` is N continuous codes (``cont``
    alone is one). Raises ValueError (TypeError for a wrong type) saying what was expected.
    """
    if spec is None:
        return CodeSpec()
    if isinstance(spec, CodeSpec):
        return spec
    if isinstance(spec, str):
        items = [t.strip().lower() for t in spec.split(",")] if spec.strip() else []
        entries = []
        for tok in items:
            m = _TOKEN.match(tok)
            if not m:
                raise ValueError(f"cannot read the code {tok!r} in {spec!r}: {_SPEC_HELP}")
            entries.append({"type": m.group(1), "size": int(m.group(2)) if m.group(2) else None})
    elif isinstance(spec, (list, tuple)):
        entries = []
        for item in spec:
            if not isinstance(item, dict) or "type" not in item:
                raise ValueError(f"cannot read the code {item!r} in {spec!r}: {_SPEC_HELP}")
            unknown = set(item) - {"type", "size"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)} in the code {item!r}: {_SPEC_HELP}")
            entries.append({"type": str(item["type"]).lower(), "size": item.get("size")})
    else:
        raise TypeError(f"codes must be a string or a list of dicts, got {type(spec).__name__}: {_SPEC_HELP}")
    cats, conts = [], 0
    for e in entries:
        kind, size = e["type"], e["size"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
            raise ValueError(f"the size of a code must be an integer, got {size!r}: {_SPEC_HELP}")
        if kind in ("cat", "categorical"):
            if size is None or size < 2:
                raise ValueError(f"a categorical code needs at least 2 values, got {size!r}: {_SPEC_HELP}")
            cats.append(size)
        elif kind in ("cont", "continuous"):
            size = 1 if size is None else size
            if size < 1:
                raise ValueError(f"the number of continuous codes must be >= 1, got {size}: {_SPEC_HELP}")
            conts += size
        else:
            raise ValueError(f"unknown code type {kind!r}: {_SPEC_HELP}")
    return CodeSpec(tuple(cats), conts)


def info_loss(cat_logits, mu, log_std, cat, cont):
    """The two parts of InfoGAN's information loss (source paper eq. 3), in nats: the
    categorical cross-entropy and the continuous Gaussian NLL, i.e. −E log Q(c | x) split by code
    type (−L_I + H(c); minimised; the weights λ_cat and λ are applied by the caller).

    Args:
        cat_logits: list of Q's logits ``[..., n, k_i]``, one per categorical code.
        mu, log_std: Q's Gaussian for the continuous codes, ``[..., n, #continuous]``.
        cat: the sampled categories ``[..., n, #categorical]`` (long); cont: the sampled
            continuous codes ``[..., n, #continuous]``.
    Returns:
        ``(q_cat, q_cont)``: cross-entropy ``−log Q(c_i|x)`` summed over categorical codes, and
        the Gaussian NLL ``½log 2π + log σ + (c − μ)²/2σ²`` summed over continuous codes; both
        averaged over the ``n`` samples and summed over leading dims.
    """
    q_cat = mu.new_zeros(())
    for i, lg in enumerate(cat_logits):
        logp = torch.log_softmax(lg, dim=-1).gather(-1, cat[..., i:i + 1]).squeeze(-1)
        q_cat = q_cat - logp.mean(-1).sum()
    nll = 0.5 * math.log(2 * math.pi) + log_std + 0.5 * ((cont - mu) * torch.exp(-log_std)) ** 2
    q_cont = nll.sum(-1).mean(-1).sum() if cont.shape[-1] else mu.new_zeros(())
    return q_cat, q_cont


def matched_accuracy(pred, labels) -> tuple[float, dict]:
    """Accuracy of cluster indices ``pred`` [N] against ``labels`` [N] under the best one-to-one
    matching of clusters to labels (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).

    Returns ``(accuracy in [0, 1], {cluster: label})``.
    """
    from scipy.optimize import linear_sum_assignment

    pred = torch.as_tensor(pred).long().cpu().reshape(-1)
    labels = torch.as_tensor(labels).long().cpu().reshape(-1)
    if len(pred) != len(labels) or len(pred) == 0:
        raise ValueError(f"pred and labels must be non-empty and of the same length, got {len(pred)} and {len(labels)}")
    if pred.min() < 0 or labels.min() < 0:
        raise ValueError("cluster indices and labels must be >= 0")
    k = int(max(pred.max(), labels.max())) + 1
    counts = torch.zeros(k, k, dtype=torch.long)
    counts.index_put_((pred, labels), torch.ones_like(pred), accumulate=True)
    rows, cols = linear_sum_assignment(-counts.numpy())
    matched = int(counts[rows, cols].sum())
    return matched / len(pred), {int(r): int(c) for r, c in zip(rows, cols)}


# -- networks -------------------------------------------------------------------------------
class ReplicaLinear(nn.Module):
    """``replicas`` independent linear layers applied to ``[replicas, N, in]`` → ``[replicas, N, out]``."""

    def __init__(self, replicas: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1 / math.sqrt(d_in)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(replicas, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(replicas, 1, d_out).uniform_(-bound, bound))

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


def _mlp(replicas, sizes, act, last_act=False):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(ReplicaLinear(replicas, sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(act())
    return nn.Sequential(*layers)


class GANDiscriminator(nn.Module):
    """A trunk (shared with Q) and a one-logit head: ``forward(x)`` → logits ``[..., N]``."""

    def __init__(self, trunk: nn.Module, head: nn.Module):
        super().__init__()
        self.trunk, self.head = trunk, head

    def forward(self, x):
        return self.head(self.trunk(x)).squeeze(-1)


def _conv_generator(in_dim, channels, image_size, width):
    n_up = int(math.log2(image_size // 8))
    chans = [2 * width] + [width] * (n_up - 1) + [channels]
    layers = [nn.Linear(in_dim, 256), nn.BatchNorm1d(256), nn.ReLU(),
              nn.Linear(256, chans[0] * 64), nn.BatchNorm1d(chans[0] * 64), nn.ReLU(),
              nn.Unflatten(1, (chans[0], 8, 8))]
    for i in range(n_up):
        layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1))
        if i < n_up - 1:
            layers += [nn.BatchNorm2d(chans[i + 1]), nn.ReLU()]
    layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def _conv_trunk(channels, image_size, width, features):
    n_down = int(math.log2(image_size // 8))
    chans = [channels] + [width] * (n_down - 1) + [2 * width]
    layers = []
    for i in range(n_down):
        layers += [nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.LeakyReLU(0.2)]
    layers += [nn.Flatten(), nn.Linear(chans[-1] * 64, features), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


# -- the functional optimiser ---------------------------------------------------------------
def adam_step(params: dict, state: dict, grads: dict, *, lr: float, betas=(0.9, 0.999), eps=1e-8):
    """One Adam step as a pure function (what ``torch.optim.Adam`` does, without weight decay).

    Args:
        params: name → tensor. state: ``{"step": int, "exp_avg": {name: m}, "exp_avg_sq": {name: v}}``.
        grads: name → gradient (may carry a graph: the result is then differentiable).
    Returns:
        ``(new_params, new_state)``; nothing is modified in place.
    """
    b1, b2 = betas
    t = state["step"] + 1
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    new_p, m_new, v_new = {}, {}, {}
    for name, p in params.items():
        g = grads[name]
        m = b1 * state["exp_avg"][name] + (1 - b1) * g
        v = b2 * state["exp_avg_sq"][name] + (1 - b2) * g * g
        # clamp: sqrt'(0) is infinite, which would turn second-order gradients into NaN
        denom = v.clamp_min(1e-30).sqrt() / math.sqrt(bc2) + eps
        new_p[name] = p - (lr / bc1) * m / denom
        m_new[name], v_new[name] = m, v
    return new_p, {"step": t, "exp_avg": m_new, "exp_avg_sq": v_new}


def adam_state_of(optimizer: torch.optim.Adam, named_params: dict) -> tuple[dict, dict]:
    """The Adam moments of ``named_params`` held by ``optimizer`` (zeros before its first step),
    detached, and its hyper-parameters ``{"lr", "betas", "eps"}``."""
    hyper = None
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        if any(id(p) in ids for p in named_params.values()):
            if group.get("weight_decay", 0) or group.get("amsgrad", False):
                raise ValueError("unrolling supports Adam without weight decay or amsgrad")
            hyper = {"lr": group["lr"], "betas": tuple(group["betas"]), "eps": group["eps"]}
            break
    if hyper is None:
        raise ValueError("the discriminator optimiser does not hold the discriminator's parameters")
    state = {"step": 0, "exp_avg": {}, "exp_avg_sq": {}}
    for name, p in named_params.items():
        s = optimizer.state.get(p, {})
        if "exp_avg" in s:
            state["step"] = int(s["step"])
            state["exp_avg"][name] = s["exp_avg"].detach()
            state["exp_avg_sq"][name] = s["exp_avg_sq"].detach()
        else:
            state["exp_avg"][name] = torch.zeros_like(p)
            state["exp_avg_sq"][name] = torch.zeros_like(p)
    return state, hyper


def gan_discriminator_loss(real_logits, fake_logits):
    """``−f`` of eq. 1 per replica: BCE on real (label 1) and fake (label 0), mean over the batch
    (last dim), summed over any leading replica dims → scalar (nats)."""
    return (F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)).sum()


def generator_loss(fake_logits, form: str = "non_saturating"):
    """The generator's term on fake samples, mean over the batch, summed over replicas (nats):
    ``form="non_saturating"``: ``−E_z log D(G(z))`` (the usual choice: strong gradients when D
    rejects the fakes); ``form="minimax"``: ``E_z log(1 − D(G(z)))``, the fake half of eq. 1
    that the generator minimises in the source paper's minimax game."""
    if form == "minimax":
        return -F.softplus(fake_logits).mean(-1).sum()
    if form != "non_saturating":
        raise ValueError(f"generator_form must be one of {GENERATOR_FORMS}, got {form!r}")
    return F.softplus(-fake_logits).mean(-1).sum()


def real_data_term(real_logits):
    """``E_x log D(x)``, the real half of eq. 1, mean over the batch, summed over replicas (nats).
    Constant in θ_G for the current D; through an unrolled θ_D^K(θ_G) it is not (eq. 10)."""
    return -F.softplus(-real_logits).mean(-1).sum()


# -- the models -----------------------------------------------------------------------------
class _AdversarialModel(CourseModel):
    """Shared machinery of the four GANs (see the module docstring)."""

    def __init__(self, *, noise_dim=62, arch="conv32", channels=1, width=64, hidden=128,
                 layers=2, d_layers=None, data_dim=2, replicas=1, codes=None, lam=0.1, lam_cat=1.0,
                 unroll_steps=0, first_order=False, betas=(0.5, 0.999), d_lr_ratio=1.0, q_with="discriminator",
                 generator_form="non_saturating", q_std=None, spectral_norm=False):
        super().__init__()
        if generator_form not in GENERATOR_FORMS:
            raise ValueError(f"generator_form must be one of {GENERATOR_FORMS} ('minimax': E log(1 - D(G(z))) "
                             f"as in eq. 1; 'non_saturating': -E log D(G(z))), got {generator_form!r}")
        self.generator_form = generator_form
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
        if isinstance(unroll_steps, bool) or int(unroll_steps) != unroll_steps or unroll_steps < 0:
            raise ValueError(f"unroll_steps K must be an integer >= 0 (0 = no unrolling), got {unroll_steps!r}")
        self.noise_dim = check_positive_int("noise_dim", noise_dim)
        self.arch = arch
        self.channels = check_positive_int("channels", channels)
        self.width = check_positive_int("width", width)
        self.hidden = check_positive_int("hidden", hidden)
        self.layers = check_positive_int("layers", layers)
        self.d_layers = check_positive_int("d_layers", layers if d_layers is None else d_layers)
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.replicas = check_positive_int("replicas", replicas)
        if arch != "mlp" and self.replicas != 1:
            raise ValueError("replicas > 1 is only supported with arch='mlp'")
        self.code_spec = parse_codes(codes)
        self.lam = check_non_negative("lam (λ, the weight of the continuous codes' NLL)", lam)
        self.lam_cat = check_non_negative("lam_cat (the weight of the categorical codes' cross-entropy)", lam_cat)
        if isinstance(d_lr_ratio, bool) or not isinstance(d_lr_ratio, (int, float)) or not float(d_lr_ratio) > 0 \
                or math.isinf(d_lr_ratio):
            raise ValueError(f"d_lr_ratio (discriminator lr / generator lr) must be a finite number > 0, "
                             f"got {d_lr_ratio!r}")
        self.d_lr_ratio = float(d_lr_ratio)
        if q_with not in Q_WITH:
            raise ValueError(f"q_with must be one of {Q_WITH} (the optimiser that updates Q's head), got {q_with!r}")
        self.q_with = q_with
        self.unroll_steps = int(unroll_steps)
        self.first_order = bool(first_order)
        self.betas = tuple(float(b) for b in betas)
        if q_std is not None and (isinstance(q_std, bool) or not isinstance(q_std, (int, float))
                                  or not 0 < float(q_std) < math.inf):
            raise ValueError(f"q_std (Q's fixed standard deviation of the continuous codes) must be None "
                             f"(Q learns it) or a finite number > 0, got {q_std!r}")
        self.q_std = None if q_std is None else float(q_std)
        self.spectral_norm = bool(spectral_norm)
        if self.spectral_norm and self.unroll_steps:
            raise ValueError("spectral_norm=True is not supported with unrolling (unroll_steps > 0): the "
                             "unrolled copies of the discriminator would skip its power iteration")
        in_dim = self.noise_dim + self.code_spec.dim
        q_out = self.code_spec.q_outputs - (self.code_spec.continuous if self.q_std is not None else 0)
        if arch == "mlp":
            R, h = self.replicas, self.hidden
            self.generator = _mlp(R, [in_dim] + [h] * self.layers + [self.data_dim], nn.ReLU)
            trunk = _mlp(R, [self.data_dim] + [h] * self.d_layers, nn.ReLU, last_act=True)
            self.discriminator = GANDiscriminator(trunk, ReplicaLinear(R, h, 1))
            self.q_head = _mlp(R, [h, h, q_out], nn.ReLU) if q_out else None
        else:
            size = 32 if arch == "conv32" else 64
            self.image_size = size
            feats = 4 * self.width
            self.generator = _conv_generator(in_dim, self.channels, size, self.width)
            trunk = _conv_trunk(self.channels, size, self.width, feats)
            self.discriminator = GANDiscriminator(trunk, nn.Linear(feats, 1))
            self.q_head = (nn.Sequential(nn.Linear(feats, 128), nn.LeakyReLU(0.2), nn.Linear(128, q_out))
                           if q_out else None)
        if self.spectral_norm:
            # Miyato et al. (2018): every weight of D divided by its largest singular value (one
            # power iteration per training forward pass), which bounds D's Lipschitz constant.
            # Q's head is normalised too, a choice of the course (Miyato et al. normalise D only):
            # it bounds how far Q's outputs can move per unit of the trunk's features, so Q sharpens
            # its reading through the (shared, normalised) trunk rather than through large head weights
            for module in [self.discriminator, self.q_head]:
                for layer in (module.modules() if module is not None else ()):
                    if isinstance(layer, (nn.Linear, nn.Conv2d)):
                        nn.utils.parametrizations.spectral_norm(layer)

    # -- configuration ------------------------------------------------------------------
    def config(self) -> dict:
        cfg = {"noise_dim": self.noise_dim, "arch": self.arch, "channels": self.channels,
               "width": self.width, "hidden": self.hidden, "layers": self.layers, "d_layers": self.d_layers,
               "data_dim": self.data_dim, "replicas": self.replicas, "betas": list(self.betas)}
        # options added later are listed only when they differ from their defaults, so that
        # checkpoints saved before they existed still match the model they describe
        if self.d_lr_ratio != 1.0:
            cfg["d_lr_ratio"] = self.d_lr_ratio
        if self.generator_form != "non_saturating":
            cfg["generator_form"] = self.generator_form
        if self.q_std is not None:
            cfg["q_std"] = self.q_std
        if self.spectral_norm:
            cfg["spectral_norm"] = True
        return cfg

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """Adam for the generator (learning rate ``lr``) and Adam for the discriminator's trunk and
        head (``lr · d_lr_ratio``). Q's head goes with the discriminator (``q_with="discriminator"``)
        or with the generator (``q_with="generator"``: then Q's head is also stepped by the
        generator's update, at the generator's learning rate, as G and Q minimise L_I together)."""
        g_params = list(self.generator.parameters())
        d_params = list(self.discriminator.parameters())
        if self.q_head is not None:
            (g_params if self.q_with == "generator" else d_params).extend(self.q_head.parameters())
        return {"generator": torch.optim.Adam(g_params, lr=lr, betas=self.betas),
                "discriminator": torch.optim.Adam(d_params, lr=lr * self.d_lr_ratio, betas=self.betas)}

    # -- sampling -----------------------------------------------------------------------
    @property
    def _lead(self) -> tuple:
        return (self.replicas,) if self.arch == "mlp" else ()

    def _split(self, x):
        """A training batch ``[R·B, ...]`` → ``[R, B, ...]`` for replicated MLPs."""
        if self.arch == "mlp":
            if x.dim() != 2 or x.shape[1] != self.data_dim or x.shape[0] % self.replicas:
                raise ValueError(f"expected a batch [replicas·B, {self.data_dim}] with replicas={self.replicas}, "
                                 f"got {tuple(x.shape)}")
            return x.view(self.replicas, -1, self.data_dim)
        return x

    def sample_latent(self, n: int, generator: torch.Generator | None = None):
        """Noise and codes for ``n`` samples (per replica), on the model's device.

        ``generator`` may live on another device than the model (e.g. a CPU generator for a
        model on the GPU): the numbers are drawn on the generator's device, then moved, so a
        seed gives the same latents on any device the model is on.

        Returns ``(z, c, cat, cont)``: z ``[*lead, n, noise_dim]`` ~ N(0, I); c ``[*lead, n, code dim]``
        the code vector; cat ``[*lead, n, #categorical]`` (long) category indices; cont
        ``[*lead, n, #continuous]`` ~ U[−1, 1].
        """
        ref = next(self.parameters())
        dev, dtype = ref.device, ref.dtype
        # a generator draws only on its own device: draw there, then move to the model's
        draw = generator.device if generator is not None else dev
        shape = self._lead + (int(n),)
        z = torch.randn(*shape, self.noise_dim, generator=generator, device=draw, dtype=dtype).to(dev)
        cats = [torch.randint(k, shape, generator=generator, device=draw).to(dev)
                for k in self.code_spec.categorical]
        cat = torch.stack(cats, -1) if cats else torch.zeros(*shape, 0, dtype=torch.long, device=dev)
        cont = torch.rand(*shape, self.code_spec.continuous, generator=generator, device=draw,
                          dtype=dtype).to(dev) * 2 - 1
        return z, self.code_vector(cat, cont), cat, cont

    def code_vector(self, cat, cont):
        """One-hot categorical codes followed by the continuous codes: ``[..., code dim]``."""
        parts = [F.one_hot(cat[..., i], k).to(cont.dtype) for i, k in enumerate(self.code_spec.categorical)]
        return torch.cat(parts + [cont], dim=-1)

    def generate(self, z, c=None):
        """``G(z, c)``: noise ``[*lead, n, noise_dim]`` (and codes) → samples."""
        inp = z if c is None or c.shape[-1] == 0 else torch.cat([z, c], dim=-1)
        return self.generator(inp)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None):
        """``n`` generated samples (per replica) in eval mode: ``[*lead, n, ...]``."""
        was = self.training
        self.eval()
        try:
            z, c, _, _ = self.sample_latent(n, generator)
            return self.generate(z, c)
        finally:
            self.train(was)

    # -- Q ----------------------------------------------------------------------------------
    def q_outputs(self, x=None, features=None):
        """Q's prediction of the codes from samples (or the trunk's features).

        Returns ``(cat_logits, mu, log_std)``: a list of ``[..., n, k]`` logits per categorical
        code, and ``[..., n, #continuous]`` mean and log-standard-deviation (``log q_std``
        everywhere when the standard deviation is fixed).
        """
        if self.q_head is None:
            raise ValueError("this model has no latent codes, so no Q network (pass codes='cat10,cont2')")
        if features is None:
            features = self.discriminator.trunk(x)
        out = self.q_head(features)
        logits, start = [], 0
        for k in self.code_spec.categorical:
            logits.append(out[..., start:start + k])
            start += k
        n = self.code_spec.continuous
        mu = out[..., start:start + n]
        if self.q_std is not None:
            return logits, mu, torch.full_like(mu, math.log(self.q_std))
        # log σ is clamped to [−5, 5] (σ from 0.0067 to 148): a hard clamp, so an output
        # beyond it gets no gradient for σ (a Q that far out has lost the code anyway)
        return logits, mu, out[..., start + n:start + 2 * n].clamp(-5, 5)

    def info_terms(self, features, cat, cont) -> dict:
        """The information loss (source paper eq. 3, ``L_I`` as a loss to minimise, nats).

        ``q_cat``: cross-entropy summed over categorical codes; ``q_cont``: Gaussian NLL summed
        over continuous codes; ``info = lam_cat·q_cat + λ·q_cont``. Means over the batch, summed over
        replicas. ``q_cont_mse``: the squared error of Q's mean, for reference.
        """
        logits, mu, log_std = self.q_outputs(features=features)
        q_cat, q_cont = info_loss(logits, mu, log_std, cat, cont)
        mse = ((cont - mu) ** 2).mean(-1).mean(-1).sum() if self.code_spec.continuous else q_cont
        return {"info": self.lam_cat * q_cat + self.lam * q_cont, "q_cat": q_cat, "q_cont": q_cont,
                "q_cont_mse": mse}

    @torch.no_grad()
    def predict_codes(self, x, batch_size: int = 512):
        """Q's reading of images ``x`` ``[N, ...]``: ``(categories [N, #categorical] long,
        continuous means [N, #continuous])``, in eval mode, in batches."""
        if self.q_head is None:
            raise ValueError("this model has no latent codes, so no Q network")
        was = self.training
        self.eval()
        cats, mus = [], []
        try:
            for i in range(0, len(x), batch_size):
                logits, mu, _ = self.q_outputs(x[i:i + batch_size])
                cats.append(torch.stack([lg.argmax(-1) for lg in logits], -1) if logits
                            else torch.zeros(len(mu), 0, dtype=torch.long, device=mu.device))
                mus.append(mu)
        finally:
            self.train(was)
        return torch.cat(cats), torch.cat(mus)

    @torch.no_grad()
    def representation(self, x, batch_size: int = 512):
        """Q's reading of images ``x`` as one code vector each, what the disentanglement metrics
        score: every categorical code's most likely category (as a number), then the continuous
        means, ``[N, #categorical + #continuous]``."""
        cats, mus = self.predict_codes(x, batch_size)
        return torch.cat([cats.to(mus.dtype), mus], dim=1)

    @torch.no_grad()
    def traversal(self, cont_index: int, values, generator=None, cat_code: int = 0):
        """Images for one continuous code varied left to right (``values``) and the categories of
        categorical code ``cat_code`` top to bottom; noise and the other codes fixed (other
        continuous codes at 0). Returns ``[k · len(values), C, H, W]`` (row-major)."""
        spec = self.code_spec
        if not 0 <= cont_index < spec.continuous:
            raise ValueError(f"cont_index must be in [0, {spec.continuous}), got {cont_index}")
        if not 0 <= cat_code < max(1, len(spec.categorical)) or isinstance(cat_code, bool):
            raise ValueError(f"cat_code must name one of the {len(spec.categorical)} categorical code(s) "
                             f"(0 … {max(0, len(spec.categorical) - 1)}), got {cat_code!r}")
        if self.arch == "mlp":
            raise ValueError("traversals are drawn for image models (arch conv32/conv64)")
        values = torch.as_tensor(values, dtype=torch.float32)
        k = spec.categorical[cat_code] if spec.categorical else 1
        n = k * len(values)
        z, _, cat, cont = self.sample_latent(1, generator)
        z = z.expand(n, -1)
        cat = cat.expand(n, -1).clone()
        if spec.categorical:
            cat[:, cat_code] = torch.arange(k, device=cat.device).repeat_interleave(len(values))
        cont = torch.zeros(n, spec.continuous, device=z.device, dtype=z.dtype)
        cont[:, cont_index] = values.to(z).repeat(k)
        was = self.training
        self.eval()
        try:
            return self.generate(z, self.code_vector(cat, cont))
        finally:
            self.train(was)

    # -- unrolling ----------------------------------------------------------------------------
    def unrolled_generator_terms(self, x_real, fake, d_optimizer, steps=None, first_order=None) -> dict:
        """The generator's objective against the discriminator unrolled K steps (source paper eq. 10),
        term by term (nats, summed over replicas)::

            "fake": generator_loss(D_K(G(z)))   (−E log D_K(G(z)), or E log(1 − D_K(G(z))) with
                                                generator_form="minimax")
            "real": E_x log D_K(x)              (the real half of eq. 1 through θ_D^K(θ_G))

        The generator minimises ``fake + real``; with ``generator_form="minimax"`` that sum is
        exactly the source paper's f_K(θ_G, θ_D) = f(θ_G, θ_D^K(θ_G, θ_D)) of eq. 10, and its gradient
        is eq. 11: ∂f/∂θ_G + ∂f/∂θ_D^K · dθ_D^K/dθ_G. The second part reaches θ_G through the
        unrolled steps, which see G(z); it carries the real term's whole gradient (the real
        term has no other path to θ_G). ``first_order=True`` treats θ_D^K as a constant of θ_G:
        the second part vanishes and the real term is logged but gives no gradient. K = 0 is
        the plain GAN: θ_D^0 = θ_D, so "real" is constant in θ_G (it is then not computed: 0).
        The unrolled steps descend D's adversarial loss only, as eq. 8 unrolls f: an InfoGAN's
        λ·L_I, which the real D step adds to its shared trunk, is left out of them.
        """
        K = self.unroll_steps if steps is None else int(steps)
        first = self.first_order if first_order is None else bool(first_order)
        disc = self.discriminator
        if K == 0:
            return {"fake": generator_loss(disc(fake), self.generator_form),
                    "real": fake.new_zeros(())}
        named = dict(disc.named_parameters())
        state, hyper = adam_state_of(d_optimizer, named)
        params = {k: v.detach().requires_grad_(True) for k, v in named.items()}
        fake_in = fake.detach() if first else fake
        n_real = x_real.shape[-2] if self.arch == "mlp" else x_real.shape[0]
        for _ in range(K):
            # eq. 8: one functional Adam step of D on −f, on [real; fake] (dim 1 for replicated MLPs)
            both = torch.cat([x_real, fake_in], dim=1 if self.arch == "mlp" else 0)
            logits = functional_call(disc, params, (both,))
            loss = gan_discriminator_loss(logits[..., :n_real], logits[..., n_real:])
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first)
            params, state = adam_step(params, state, dict(zip(params, grads)), **hyper)
            if first:
                params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        if first:
            params = {k: v.detach() for k, v in params.items()}
        fake_term = generator_loss(functional_call(disc, params, (fake,)), self.generator_form)
        if first:
            with torch.no_grad():
                real_term = real_data_term(functional_call(disc, params, (x_real,)))
        else:
            real_term = real_data_term(functional_call(disc, params, (x_real,)))
        return {"fake": fake_term, "real": real_term}

    def unrolled_generator_loss(self, x_real, fake, d_optimizer, steps=None, first_order=None):
        """The generator's unrolled objective ``fake + real`` (:meth:`unrolled_generator_terms`)."""
        terms = self.unrolled_generator_terms(x_real, fake, d_optimizer, steps, first_order)
        return terms["fake"] + terms["real"]

    # -- the training step ----------------------------------------------------------------------
    def loss_terms(self, x, step: int = 0) -> dict:
        """Terms on one batch without updating anything (no unrolling): ``loss = d_loss + g_loss``."""
        x = self._split(x)
        n = x.shape[-2] if self.arch == "mlp" else x.shape[0]
        z, c, cat, cont = self.sample_latent(n)
        fake = self.generate(z, c)
        feats_fake = self.discriminator.trunk(fake)
        fake_logits = self.discriminator.head(feats_fake).squeeze(-1)
        real_logits = self.discriminator(x)
        R = self.replicas
        terms = {"d_loss": gan_discriminator_loss(real_logits, fake_logits) / R,
                 "g_loss": generator_loss(fake_logits, self.generator_form) / R}
        if self.q_head is not None:
            terms.update({k: v / R for k, v in self.info_terms(feats_fake, cat, cont).items()})
        terms["loss"] = terms["d_loss"] + terms["g_loss"]
        return terms

    def generator_objective(self, x_real, fake, cat, cont, d_optimizer):
        """The generator's objective (source paper eq. 12–13): ``(terms, total)`` with ``terms`` from
        :meth:`unrolled_generator_terms` (the adversarial part, through the unrolled
        discriminator) and ``total = fake + real (+ L_I)``, the information term (if any)
        through the current discriminator."""
        if self.unroll_steps == 0 and self.q_head is not None:
            # K = 0: the adversarial and the information term read the same features of G(z)
            # (inline rather than through unrolled_generator_terms, whose signature the
            # notebook's exercise overrides)
            feats = self.discriminator.trunk(fake)
            terms = {"fake": generator_loss(self.discriminator.head(feats).squeeze(-1), self.generator_form),
                     "real": fake.new_zeros(())}
            return terms, terms["fake"] + self.info_terms(feats, cat, cont)["info"]
        terms = self.unrolled_generator_terms(x_real, fake, d_optimizer)
        adv = terms["fake"] + terms["real"]
        if self.q_head is None:
            return terms, adv
        return terms, adv + self.info_terms(self.discriminator.trunk(fake), cat, cont)["info"]

    def training_step(self, x, step: int, optimizers: dict) -> dict:
        """One generator update (against the unrolled discriminator when K > 0, plus the
        information loss through the current one), then one discriminator (and Q) update."""
        g_opt, d_opt = optimizers["generator"], optimizers["discriminator"]
        x = self._split(x)
        n = x.shape[-2] if self.arch == "mlp" else x.shape[0]
        R = self.replicas
        z, c, cat, cont = self.sample_latent(n)
        # generator step: f_K (eq. 10) + λ-weighted information term through the current D (eq. 13)
        g_opt.zero_grad(set_to_none=True)
        fake = self.generate(z, c)
        g_terms, g_total = self.generator_objective(x, fake, cat, cont, d_opt)
        g_total.backward()
        g_opt.step()
        # discriminator (and Q) step on the same real batch and the detached fakes
        d_opt.zero_grad(set_to_none=True)
        fake = fake.detach()
        if self.arch == "mlp":
            feats_fake = self.discriminator.trunk(fake)
            fake_logits = self.discriminator.head(feats_fake).squeeze(-1)
            real_logits = self.discriminator(x)
        else:  # one pass over [real; fake] (D has no batch statistics, so this is the same function)
            feats = self.discriminator.trunk(torch.cat([x, fake]))
            logits = self.discriminator.head(feats).squeeze(-1)
            real_logits, fake_logits, feats_fake = logits[:n], logits[n:], feats[n:]
        d_loss = gan_discriminator_loss(real_logits, fake_logits)
        d_total = d_loss
        terms = {}
        if self.q_head is not None:
            info = self.info_terms(feats_fake, cat, cont)
            d_total = d_total + info["info"]
            terms.update({k: v.detach() / R for k, v in info.items()})
        d_total.backward()
        d_opt.step()
        with torch.no_grad():
            terms.update({
                "d_loss": d_loss.detach() / R, "g_loss": g_terms["fake"].detach() / R,
                "d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean(),
            })
            if self.unroll_steps:
                terms["g_real"] = g_terms["real"].detach() / R  # E_x log D_K(x), eq. 10's real half
            terms["loss"] = terms["d_loss"] + terms["g_loss"]
        return terms


@register("gan")
class GAN(_AdversarialModel):
    """The plain GAN of source paper eq. 1 (non-saturating generator loss).

    Args:
        noise_dim: size of z ~ N(0, I). arch: ``"mlp"`` (2-D toys), ``"conv32"``, ``"conv64"``.
        channels: image channels (conv). width: conv channels. hidden, layers: MLP width/depth.
        data_dim: MLP data dimension. replicas: independent MLP GANs trained side by side
            (the batch ``[R·B, d]`` is split into R batches of B).
        betas: Adam's (β1, β2) for both optimisers.
        d_lr_ratio: the discriminator's learning rate divided by the generator's (> 0; 1: the same
            ``lr`` for both, as ``train(lr=...)`` gives it).
        spectral_norm: divide every weight of the discriminator (and Q) by its largest singular
            value (Miyato et al. 2018); not with unrolling.
    """

    def __init__(self, noise_dim=62, arch="conv32", channels=1, width=64, hidden=128, layers=2,
                 d_layers=None, data_dim=2, replicas=1, betas=(0.5, 0.999), d_lr_ratio=1.0,
                 generator_form="non_saturating", spectral_norm=False):
        super().__init__(noise_dim=noise_dim, arch=arch, channels=channels, width=width, hidden=hidden,
                         layers=layers, d_layers=d_layers, data_dim=data_dim, replicas=replicas, betas=betas,
                         d_lr_ratio=d_lr_ratio, generator_form=generator_form, spectral_norm=spectral_norm)


@register("unrolled_gan")
class UnrolledGAN(_AdversarialModel):
    """Unrolled GAN (Metz et al.; source paper eq. 10–11): ``unroll_steps`` = K ≥ 0 functional Adam
    steps of the discriminator inside the generator's loss; ``first_order=True`` drops the
    ``dθ_D^K/dθ_G`` term. Other arguments as :class:`GAN`."""

    def __init__(self, unroll_steps=5, first_order=False, noise_dim=62, arch="conv32", channels=1,
                 width=64, hidden=128, layers=2, d_layers=None, data_dim=2, replicas=1, betas=(0.5, 0.999),
                 d_lr_ratio=1.0, generator_form="non_saturating"):
        super().__init__(noise_dim=noise_dim, arch=arch, channels=channels, width=width, hidden=hidden,
                         layers=layers, d_layers=d_layers, data_dim=data_dim, replicas=replicas, betas=betas,
                         unroll_steps=unroll_steps, first_order=first_order, d_lr_ratio=d_lr_ratio,
                         generator_form=generator_form)

    def config(self) -> dict:
        return {**super().config(), "unroll_steps": self.unroll_steps, "first_order": self.first_order}


@register("infogan")
class InfoGAN(_AdversarialModel):
    """InfoGAN (source paper eq. 3): ``codes`` (e.g. ``"cat10,cont2"``, the MNIST set-up, with 62 noise
    dimensions; the noise is N(0, I) as for the course's other GANs, where the released InfoGAN
    MNIST code draws it uniformly on [−1, 1]), ``lam`` = λ ≥ 0 weighting the continuous codes'
    Gaussian NLL, ``lam_cat`` ≥ 0 weighting the categorical codes' cross-entropy (1 in the
    InfoGAN paper), ``q_with``: which optimiser steps Q's head (``"discriminator"`` or
    ``"generator"``), ``q_std``: None (Q learns the standard deviation of each continuous code:
    the InfoGAN paper's "factored Gaussian" with a learned σ; its released MNIST code fixes
    σ = 1, which is ``q_std=1``) or a fixed σ (then λ·NLL is λ·(c − μ)²/2σ² plus a constant:
    every code gets the same pull, however well Q reads it). Other arguments as :class:`GAN`."""

    def __init__(self, codes="cat10,cont2", lam=0.1, noise_dim=62, arch="conv32", channels=1,
                 width=64, hidden=128, layers=2, d_layers=None, data_dim=2, replicas=1, betas=(0.5, 0.999),
                 d_lr_ratio=1.0, lam_cat=1.0, q_with="discriminator", generator_form="non_saturating",
                 q_std=None, spectral_norm=False):
        super().__init__(noise_dim=noise_dim, arch=arch, channels=channels, width=width, hidden=hidden,
                         layers=layers, d_layers=d_layers, data_dim=data_dim, replicas=replicas, betas=betas,
                         codes=codes, lam=lam, d_lr_ratio=d_lr_ratio, lam_cat=lam_cat, q_with=q_with,
                         generator_form=generator_form, q_std=q_std, spectral_norm=spectral_norm)
        if self.code_spec.dim == 0:
            raise ValueError(f"InfoGAN needs at least one latent code, got codes={codes!r}: {_SPEC_HELP}")

    def config(self) -> dict:
        cfg = {**super().config(), "codes": str(self.code_spec), "lam": self.lam}
        if self.lam_cat != 1.0:
            cfg["lam_cat"] = self.lam_cat
        if self.q_with != "discriminator":
            cfg["q_with"] = self.q_with
        return cfg


@register("unrolled_infogan")
class UnrolledInfoGAN(InfoGAN):
    """Unrolled InfoGAN (source paper eq. 12–13): the adversarial term through the discriminator
    unrolled ``unroll_steps`` = K times, the information term through the current one."""

    def __init__(self, unroll_steps=5, first_order=False, codes="cat10,cont2", lam=0.1, noise_dim=62,
                 arch="conv32", channels=1, width=64, hidden=128, layers=2, d_layers=None, data_dim=2,
                 replicas=1, betas=(0.5, 0.999), d_lr_ratio=1.0, lam_cat=1.0, q_with="discriminator",
                 generator_form="non_saturating", q_std=None, spectral_norm=False):
        _AdversarialModel.__init__(self, noise_dim=noise_dim, arch=arch, channels=channels, width=width,
                                   hidden=hidden, layers=layers, d_layers=d_layers, data_dim=data_dim,
                                   replicas=replicas,
                                   betas=betas, codes=codes, lam=lam, unroll_steps=unroll_steps,
                                   first_order=first_order, d_lr_ratio=d_lr_ratio, lam_cat=lam_cat, q_with=q_with,
                                   generator_form=generator_form, q_std=q_std, spectral_norm=spectral_norm)
        if self.code_spec.dim == 0:
            raise ValueError(f"InfoGAN needs at least one latent code, got codes={codes!r}: {_SPEC_HELP}")

    def config(self) -> dict:
        return {**super().config(), "unroll_steps": self.unroll_steps, "first_order": self.first_order}
