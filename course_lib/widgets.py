"""Interactive explorers (ipywidgets) for models with ``encode``/``decode``.

- :func:`latent_explorer`: one slider per latent → the decoded image, starting from the
  posterior mean μ(x) of a chosen data-set image; the sliders of switched-off ("dead") latents,
  σ_j(x) > :data:`DEAD_SIGMA`, are greyed and listed, as the factor explorer greys their bars.
- :func:`traversal_explorer`: choose a latent and a range → a strip of decoded images.
- :func:`factor_explorer`: one slider per dSprites factor → the rendered image, its
  encoding μ (bars) and its reconstruction.
- :func:`stage_explorer`: a slider over saved training stages → the traversal grid of the
  model at that stage ("watch the factors appear"); collect the stages with
  :func:`snapshot_callback`, which keeps one stage per period even when the training loop
  only calls it at logged steps that are not multiples of the period.

ipywidgets is imported inside the functions, so ``import course_lib.widgets`` works without it
(and course_lib never needs it); :func:`available` says whether the explorers can be built, and
the notebooks print :data:`MISSING` instead of an explorer when they cannot. Each explorer
draws into ONE ``widgets.Image`` whose PNG bytes are replaced in place (no new figure per
move; :meth:`Explorer.save` writes the current one to a file); images are quantised to 8 bits,
round(255·intensity) (intensity = sigmoid(logits), or the clipped output of an MSE
autoencoder). Every explorer keeps the duration of its updates in
``explorer.timings_ms`` and :meth:`Explorer.benchmark` measures them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from .metrics.encode import _EvalMode  # eval mode for one update, the training flag restored
from .viz import DEFAULT_TRAVERSAL, decode_pixels, make_grid

__all__ = [
    "available", "MISSING",
    "png_bytes", "decode_png", "to_uint8", "latent_explorer", "traversal_explorer",
    "factor_explorer", "stage_explorer", "snapshot_callback",
    "LatentExplorer", "TraversalExplorer", "FactorExplorer", "StageExplorer", "DEAD_SIGMA",
    "dead_latents", "decoder_effect", "PROBE", "PIXEL_CHANGE",
]

#: A latent whose posterior standard deviation σ_j(x) exceeds this is shown as switched off
#: ("dead"): its posterior is close to the prior N(0, 1), so it carries (almost) no
#: information about x, and a trained decoder has usually learnt to ignore it (an untrained
#: one has not: σ says what the encoder sends, not what the decoder does with the value).
DEAD_SIGMA = 0.8
#: what a notebook prints in place of an explorer when ipywidgets is missing
MISSING = ("no explorer here: the explorers need ipywidgets (pip install ipywidgets, or the course's "
           "notebook extra: pip install -e '.[notebooks]'); the figures show the same images still")
DEAD_COLOUR = "#bbbbbb"
#: what the decoder does with a latent is probed by moving it this far (in prior standard
#: deviations) either way from the start code ...
PROBE = 2.0
#: ... and counting the pixels that change by more than this (intensities in [0, 1])
PIXEL_CHANGE = 0.25


def dead_latents(logvar) -> list[bool]:
    """For a posterior log-variance (D values, or None for an autoencoder), which latents are
    switched off: σ_j = exp(½ log σ²_j) > :data:`DEAD_SIGMA`."""
    if logvar is None:
        return []
    sigma = torch.exp(0.5 * torch.as_tensor(logvar, dtype=torch.float32).flatten())
    return [bool(v > DEAD_SIGMA) for v in sigma.tolist()]


@torch.no_grad()
def decoder_effect(model, z, delta: float = PROBE, threshold: float = PIXEL_CHANGE) -> list[int]:
    """What the decoder does with each latent around the code ``z`` (D values): for each j, the
    number of pixel positions whose intensity (any channel) changes by more than ``threshold``
    when z_j alone is moved to z_j − ``delta`` or z_j + ``delta`` (the larger count of the two).

    σ_j (:func:`dead_latents`) says what the encoder sends; this count says whether the decoder
    listens: a switched-off latent of a trained model changes (almost) no pixel.
    """
    z = torch.as_tensor(z, dtype=torch.float32).flatten()
    if not (delta > 0 and math.isfinite(delta)) or not (0 <= threshold < 1):
        raise ValueError(f"expected delta > 0 and 0 <= threshold < 1, got delta={delta}, threshold={threshold}")
    d = z.numel()
    moved = z.repeat(2 * d + 1, 1)
    idx = torch.arange(d)
    moved[1 + idx, idx] -= delta
    moved[1 + d + idx, idx] += delta
    x = _decode(model, moved)                                   # (2D + 1)×C×H×W
    changed = ((x[1:] - x[:1]).abs() > threshold).any(dim=1)   # 2D×H×W
    counts = changed.flatten(1).sum(dim=1).view(2, d)
    return counts.max(dim=0).values.tolist()


def available() -> bool:
    """Whether ipywidgets can be imported, i.e. whether the explorers can be built here."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _widgets():
    try:
        import ipywidgets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the explorers need ipywidgets: pip install ipywidgets (or the course's notebook "
            "extra: pip install -e '.[notebooks]')"
        ) from exc
    return ipywidgets


# ----------------------------------------------------------------------------- images
def to_uint8(images, pad: int = 0) -> np.ndarray:
    """Intensities in [0, 1] (C×H×W, H×W, or an N×C×H×W strip, its images ``pad`` pixels apart
    on a white gap) → uint8 H×W (C = 1) or H×W×3, quantised as round(255·x)."""
    x = torch.as_tensor(images).detach().float().cpu()
    if x.dim() == 4:
        arr = make_grid(x, nrow=x.shape[0], pad=pad)
    elif x.dim() == 3:
        arr = x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()
    elif x.dim() == 2:
        arr = x.numpy()
    else:
        raise ValueError(f"expected an image C×H×W, H×W or N×C×H×W, got shape {tuple(x.shape)}")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def png_bytes(images, pad: int = 0) -> bytes:
    """Encode intensities in [0, 1] (see :func:`to_uint8`) as PNG bytes for ``widgets.Image``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8(images, pad=pad)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes → uint8 array (H×W or H×W×3): the inverse of :func:`png_bytes`."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _dtype(model) -> torch.dtype:
    try:
        return next(model.parameters()).dtype
    except StopIteration:
        return torch.float32


def _as_image(image) -> torch.Tensor:
    x = torch.as_tensor(image).float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image C×H×W (or 1×C×H×W), got shape {tuple(x.shape)}")
    return x


@torch.no_grad()
def _posterior(model, image) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(μ(x), log σ²(x) or None for an autoencoder), D values each, on the CPU (the model in
    eval mode, the image in the model's dtype)."""
    x = _as_image(image).to(_device(model), _dtype(model))
    with _EvalMode(model):
        mu, logvar = model.encode(x)
    return mu[0].float().cpu(), None if logvar is None else logvar[0].float().cpu()


def _posterior_mean(model, image) -> torch.Tensor:
    return _posterior(model, image)[0]


@torch.no_grad()
def _decode(model, z: torch.Tensor) -> torch.Tensor:
    """z N×D → intensities N×C×H×W on the CPU (the model in eval mode, z in its dtype)."""
    with _EvalMode(model):
        return decode_pixels(model, z.to(_device(model), _dtype(model))).float().cpu()


@contextlib.contextmanager
def _one_thread():
    """Run one update on a single torch thread, then restore the previous setting.

    Decoding one 64×64 image is too small a job to share between threads: on a busy 2-core
    machine, two threads waiting for each other made an update ~30 times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- base
class Explorer:
    """Common parts: the root widget (``.widget``), timing of updates, notebook display."""

    widget = None

    def __init__(self):
        self.timings_ms: list[float] = []
        self.cpu_ms: list[float] = []

    def _timed(self, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        with _one_thread():
            fn()
        self.timings_ms.append(1000.0 * (time.perf_counter() - t0))
        self.cpu_ms.append(1000.0 * (time.process_time() - c0))

    def _ipython_display_(self):  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        display(self.widget)

    def _move(self, generator: torch.Generator):  # pragma: no cover - overridden
        raise NotImplementedError

    def redraw(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def benchmark(self, n: int = 20, seed: int = 0) -> dict:
        """Move the controls ``n`` times (random values from ``seed``) and time each update.

        Returns:
            {"median_ms", "max_ms", "median_cpu_ms", "n"}: wall-clock milliseconds per update on
            this machine, and the CPU time of the process per update (all threads; on a busy
            shared machine it is the better measure of the work one update needs).
        """
        g = torch.Generator().manual_seed(seed)
        start = len(self.timings_ms)
        saved = [(c, c.value) for c in self._controls()]
        try:
            for _ in range(n):
                before = len(self.timings_ms)
                self._move(g)
                if len(self.timings_ms) == before:  # the random move left the value unchanged
                    self._timed(self.redraw)
            ms = np.asarray(self.timings_ms[start:], dtype=float)
            cpu = np.asarray(self.cpu_ms[start:], dtype=float)
        finally:  # the controls back where they were, so the explorer shows what it showed
            for control, value in saved:
                control.value = value
            self._timed(self.redraw)
        return {"median_ms": float(np.median(ms)), "max_ms": float(ms.max()),
                "median_cpu_ms": float(np.median(cpu)), "n": int(ms.size)}

    def _controls(self) -> list:  # pragma: no cover - overridden
        """The widgets whose values :meth:`benchmark` moves (and puts back)."""
        return []

    _quiet = False  # True while several controls are set at once: one redraw afterwards

    def _changed(self, _change=None) -> None:
        """A control moved: redraw (unless several are being set at once)."""
        if not self._quiet:
            self._timed(self.redraw)

    def _reset_button(self, description: str = "reset"):
        """A button that puts every control back where it is now (the start), in one redraw."""
        self._start_values = [(c, c.value) for c in self._controls()]
        button = _widgets().Button(description=description,
                                   tooltip="every control back to where the explorer started")
        button.on_click(lambda _: self.reset())
        return button

    def reset(self) -> None:
        """Every control back to its start value (see :meth:`_reset_button`); one redraw."""
        self._quiet = True
        try:
            for control, value in getattr(self, "_start_values", ()):
                control.value = value
        finally:
            self._quiet = False
        self._timed(self.redraw)

    def save(self, path) -> None:
        """Write the image the explorer shows now to ``path`` (PNG)."""
        with open(path, "wb") as fh:
            fh.write(self.image.value)


# ----------------------------------------------------------------------------- latent explorer
class LatentExplorer(Explorer):
    """One slider per latent; the decoded image is redrawn in place.

    The sliders of the latents that are switched off for the start image (σ_j(x) >
    :data:`DEAD_SIGMA`: posterior ≈ prior) are greyed, carry the CSS class ``dead-latent`` and
    a tooltip with σ_j, and are listed under the images with what the decoder does with them
    (:func:`decoder_effect`: the pixels that change when the latent is moved by ±:data:`PROBE`).

    Attributes:
        sliders: list of D ``FloatSlider`` (z_j).
        dead: list of D bools, True for a switched-off latent (all False for an autoencoder).
        sigma: D posterior standard deviations σ_j(x) of the start image (None without one,
            or for an autoencoder).
        effect: D pixel counts, :func:`decoder_effect` at the start code (None without a
            start image): what the decoder does with each latent, in the tooltips and, for the
            greyed ones, under the images.
        status: the ``widgets.HTML`` that lists the switched-off latents.
        image: the ``widgets.Image`` with the decoded image (PNG).
        original: the ``widgets.Image`` with the data-set image whose μ is the start.
        index: ``IntText`` choosing the data-set image (when a data set was given).
    """

    def __init__(self, model, image=None, dataset=None, index: int = 0, limit: float = 3.0,
                 step: float = 0.05, width: int = 192):
        super().__init__()
        w = _widgets()
        self.model, self.dataset = model, dataset
        d = int(model.num_latents)
        self.sliders = [
            w.FloatSlider(value=0.0, min=-limit, max=limit, step=step, description=f"z{j}",
                          continuous_update=True, readout_format=".2f",
                          layout=w.Layout(width="320px"))
            for j in range(d)
        ]
        self.image = w.Image(format="png", width=width, height=width)
        self.original = w.Image(format="png", width=width, height=width)
        self.status = w.HTML()
        self.notice = w.HTML()
        self.dead, self.sigma, self.effect = [False] * d, None, None
        self.index = None
        controls = list(self.sliders)
        if dataset is not None:
            self.index = w.BoundedIntText(value=int(index), min=0, max=len(dataset) - 1,
                                          description="image #")
            self.index.observe(lambda change: self.start_from(self.dataset[change["new"]][0]), names="value")
            controls.insert(0, self.index)
        self.reset_button = w.Button(description="back to μ(x)")
        self.reset_button.on_click(lambda _: self.reset())
        controls.append(self.reset_button)
        for s in self.sliders:
            s.observe(self._changed, names="value")
        labels = w.HBox([w.VBox([w.HTML("<b>input x</b>"), self.original]),
                         w.VBox([w.HTML("<b>decoded z</b>"), self.image])])
        self.widget = w.HBox([w.VBox(controls), w.VBox([labels, self.status, self.notice])])
        if image is None and dataset is not None:
            image = dataset[int(index)][0]
        if image is not None:
            self.start_from(image)
        else:
            self.start = torch.zeros(d)
            self.set_code(self.start)

    @property
    def code(self) -> torch.Tensor:
        """The current code z (D floats) read from the sliders."""
        return torch.tensor([s.value for s in self.sliders], dtype=torch.float32)

    def start_from(self, image) -> None:
        """Show ``image`` (C×H×W) and set the sliders to its posterior mean μ(x)."""
        self.original.value = png_bytes(_as_image(image)[0])
        self.start, logvar = _posterior(self.model, image)
        for s, m in zip(self.sliders, self.start.tolist()):  # μ(x) beyond a slider's range widens it
            reach = math.ceil(abs(m) * 2) / 2
            if reach > s.max:
                s.max, s.min = reach, -reach
        self.effect = decoder_effect(self.model, self.start)
        self.mark_dead(logvar)
        self.set_code(self.start)

    def mark_dead(self, logvar) -> None:
        """Grey the sliders of the switched-off latents of ``logvar`` (D values; None: an
        autoencoder, nothing is greyed) and list them in :attr:`status`."""
        self.dead = dead_latents(logvar) or [False] * len(self.sliders)
        self.sigma = None if logvar is None else torch.exp(0.5 * torch.as_tensor(logvar).float())
        effect = self.effect if self.effect is not None and len(self.effect) == len(self.sliders) else None
        moved = f"moved by ±{PROBE:g}, it changes {{}} pixels by more than {PIXEL_CHANGE:g}"
        for j, (s, off) in enumerate(zip(self.sliders, self.dead)):
            s.style.handle_color = DEAD_COLOUR if off else None
            parts = [f"σ = {float(self.sigma[j]):.2f} > {DEAD_SIGMA}: posterior ≈ prior, probably unused"
                     if off else None, None if effect is None else moved.format(f"{effect[j]:,}")]
            tip = "; ".join(p for p in parts if p) or None
            # ipywidgets 8 calls it tooltip; 7 (still on some Colab images) description_tooltip
            setattr(s, "tooltip" if s.has_trait("tooltip") else "description_tooltip", tip)
            (s.add_class if off else s.remove_class)("dead-latent")
        off_j = [j for j, off in enumerate(self.dead) if off]
        listens = ""
        if off_j and effect is not None:
            on_j = [j for j in range(len(self.dead)) if j not in off_j]
            listens = (f". What the decoder does with them: moved by ±{PROBE:g}, each changes this "
                       f"many pixels by more than {PIXEL_CHANGE:g}: "
                       + ", ".join(f"z{j} {effect[j]:,}" for j in off_j)
                       + (f" (the active latents: {min(effect[j] for j in on_j):,}–"
                          f"{max(effect[j] for j in on_j):,})" if on_j else ""))
        self.status.value = (
            f"<span style='color:#888'>greyed: {', '.join(f'z{j}' for j in off_j)} — σ &gt; "
            f"{DEAD_SIGMA} for this image: the posterior is close to the prior, so the code carries "
            f"almost nothing about the image there{listens}</span>" if off_j else
            ("" if logvar is None else f"<span style='color:#888'>every latent is active "
                                       f"(σ ≤ {DEAD_SIGMA}) for this image</span>"))

    def set_code(self, z) -> None:
        """Set every slider (clipped to its range; :attr:`notice` names the clipped ones) and
        redraw once."""
        z = torch.as_tensor(z, dtype=torch.float32).flatten()
        if z.numel() != len(self.sliders):
            raise ValueError(f"expected a code of {len(self.sliders)} values, got {z.numel()}")
        self._quiet = True
        clipped = []
        try:
            for j, (s, v) in enumerate(zip(self.sliders, z.tolist())):
                s.value = min(max(v, s.min), s.max)
                if s.value != v and abs(s.value - v) > s.step / 2:
                    clipped.append(f"z{j} = {v:+.2f} shown as {s.value:+.2f}")
        finally:
            self._quiet = False
        self.notice.value = ("<span style='color:#b55'>beyond the sliders' range, clipped: "
                             + "; ".join(clipped) + "</span>") if clipped else ""
        self._timed(self.redraw)

    def redraw(self) -> None:
        self.image.value = png_bytes(_decode(self.model, self.code[None])[0])

    def reset(self) -> None:
        """Every slider back to the start code (μ(x) of the image shown, or 0); one redraw."""
        self.set_code(self.start)

    def _move(self, g):
        s = self.sliders[int(torch.randint(len(self.sliders), (1,), generator=g))]
        s.value = float(s.min + (s.max - s.min) * torch.rand((), generator=g))

    def _controls(self):
        return list(self.sliders)


def latent_explorer(model, image=None, *, dataset=None, index: int = 0, limit: float = 3.0,
                    step: float = 0.05, width: int = 192) -> LatentExplorer:
    """Sliders z_0..z_{D-1} → the decoded image, starting from μ(x) of ``image`` (C×H×W) or of
    ``dataset[index]`` (a box lets one choose another image). Display the returned explorer
    (last line of a cell) or its ``.widget``."""
    return LatentExplorer(model, image=image, dataset=dataset, index=index, limit=limit,
                          step=step, width=width)


# ----------------------------------------------------------------------------- traversal explorer
class TraversalExplorer(Explorer):
    """A latent chooser, a value range and a number of steps → one strip of decoded images.

    Attributes: ``latent`` (Dropdown), ``range`` (FloatRangeSlider), ``steps`` (IntSlider),
    ``image`` (the strip, PNG), ``reset_button`` (every control back to its start).
    """

    def __init__(self, model, z0=None, image=None, limit: float = 4.0, width_per_image: int = 80):
        super().__init__()
        w = _widgets()
        self.model = model
        d = int(model.num_latents)
        self._held = ("μ(x) of the image given" if image is not None and z0 is None else
                      "0" if z0 is None else "the z0 given")
        if z0 is None:
            z0 = _posterior_mean(model, image) if image is not None else torch.zeros(d)
        self.z0 = torch.as_tensor(z0, dtype=torch.float32).flatten()
        if self.z0.numel() != d:
            raise ValueError(f"z0 must hold {d} values (one per latent), got {self.z0.numel()}")
        self.width_per_image = width_per_image
        self.latent = w.Dropdown(options=[(f"z{j}", j) for j in range(d)], value=0, description="latent")
        self.range = w.FloatRangeSlider(value=(-2.0, 2.0), min=-limit, max=limit, step=0.25,
                                        description="range", continuous_update=True)
        self.steps = w.IntSlider(value=9, min=2, max=15, description="steps")
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        for c in (self.latent, self.range, self.steps):
            c.observe(self._changed, names="value")
        self.reset_button = self._reset_button()
        self.widget = w.VBox([w.HBox([self.latent, self.range, self.steps, self.reset_button]),
                              self.image, self.caption])
        self._timed(self.redraw)

    @property
    def values(self) -> torch.Tensor:
        low, high = self.range.value
        return torch.linspace(float(low), float(high), int(self.steps.value))

    def images(self) -> torch.Tensor:
        """The strip's images, V×C×H×W: z0 with the chosen latent set to each value."""
        z = self.z0.repeat(len(self.values), 1)
        z[:, self.latent.value] = self.values
        return _decode(self.model, z)

    PAD = 2  # pixels of white between the strip's images

    def redraw(self) -> None:
        images = self.images()
        self.image.value = png_bytes(images, pad=self.PAD)
        self.image.width = self.width_per_image * images.shape[0]
        values = self.values.tolist()
        others = ", ".join(f"z{j} = {v:+.2f}" for j, v in enumerate(self.z0.tolist()) if j != self.latent.value)
        self.caption.value = (f"<span style='font-size:11px'>left to right: z{self.latent.value} = "
                              + ", ".join(f"{v:+.2f}" for v in values)
                              + f"; the other latents held at {self._held}: {others}</span>")

    def _controls(self):
        return [self.latent, self.range, self.steps]

    def _move(self, g):
        if torch.rand((), generator=g) < 0.5:
            self.latent.value = int(torch.randint(len(self.latent.options), (1,), generator=g))
        else:
            low = float(torch.randint(-8, 0, (1,), generator=g)) / 4
            self.range.value = (low, -low)


def traversal_explorer(model, z0=None, *, image=None, limit: float = 4.0) -> TraversalExplorer:
    """Choose a latent and a range → the traversal strip around ``z0`` (D values; default
    μ(image), or zeros)."""
    return TraversalExplorer(model, z0=z0, image=image, limit=limit)


# ----------------------------------------------------------------------------- factor explorer
def _mu_bars(mu: torch.Tensor, sigma: torch.Tensor, limit: float = 3.0) -> str:
    """An HTML table of μ_j as centred bars, with σ_j as text (cheap to redraw)."""
    rows = []
    for j, (m, s) in enumerate(zip(mu.tolist(), sigma.tolist())):
        frac = min(abs(m) / limit, 1.0) * 50
        left = 50 - frac if m < 0 else 50
        colour = "#d62728" if m < 0 else "#1f77b4"
        bar = (f'<div style="position:relative;width:160px;height:10px;background:#eee">'
               f'<div style="position:absolute;left:{left:.1f}%;width:{frac:.1f}%;height:10px;'
               f'background:{colour}"></div></div>')
        faded = ' style="color:#999"' if s > DEAD_SIGMA else ""
        rows.append(f"<tr{faded}><td>z{j}</td><td>{bar}</td><td>μ={m:+.2f}</td><td>σ={s:.2f}</td></tr>")
    return "<table style='font-family:monospace;font-size:11px'>" + "".join(rows) + "</table>"


class FactorExplorer(Explorer):
    """Sliders for the dSprites factors → the image, its encoding μ (bars, σ as text; latents
    with σ near 1 carry no information and are greyed) and its reconstruction.

    Attributes: ``sliders`` (dict factor name → IntSlider of class indices), ``image`` (the
    rendered dSprite), ``recon`` (the decoded μ), ``encoding`` (HTML), ``mu`` (the last μ),
    ``reset_button`` (every slider back to its start).
    """

    def __init__(self, model, dataset, start=None, width: int = 160):
        super().__init__()
        w = _widgets()
        self.model, self.dataset = model, dataset
        names, sizes = list(dataset.factor_names), list(dataset.factor_sizes)
        start = [s // 2 for s in sizes] if start is None else [int(c) for c in start]
        if len(start) != len(sizes):
            raise ValueError(f"start must give one class index per factor ({len(sizes)}), got {len(start)}")
        self._fixed = torch.tensor(start, dtype=torch.long)
        self.sliders = {
            name: w.IntSlider(value=start[k], min=0, max=size - 1, description=name, continuous_update=True)
            for k, (name, size) in enumerate(zip(names, sizes)) if size > 1
        }
        self._names = names
        self.image = w.Image(format="png", width=width, height=width)
        self.recon = w.Image(format="png", width=width, height=width)
        self.encoding = w.HTML()
        self.readout = w.HTML()
        for s in self.sliders.values():
            s.observe(self._changed, names="value")
        self.reset_button = self._reset_button()
        pictures = w.HBox([w.VBox([w.HTML("<b>image x</b>"), self.image]),
                           w.VBox([w.HTML("<b>decode(μ(x))</b>"), self.recon])])
        self.widget = w.HBox([w.VBox(list(self.sliders.values()) + [self.reset_button, self.readout]), pictures,
                              w.VBox([w.HTML("<b>encoding μ(x)</b>"), self.encoding])])
        self._timed(self.redraw)

    @property
    def classes(self) -> torch.Tensor:
        """The chosen class indices, 1×K (LongTensor)."""
        c = self._fixed.clone()
        for k, name in enumerate(self._names):
            if name in self.sliders:
                c[k] = self.sliders[name].value
        return c[None]

    @torch.no_grad()
    def redraw(self) -> None:
        x = self.dataset.images(self.classes)
        with _EvalMode(self.model):
            mu, logvar = self.model.encode(x.to(_device(self.model), _dtype(self.model)))
        self.mu = mu[0].float().cpu()
        sigma = torch.exp(0.5 * logvar[0].float().cpu()) if logvar is not None else torch.zeros_like(self.mu)
        self.image.value = png_bytes(x[0])
        self.recon.value = png_bytes(_decode(self.model, mu)[0])
        self.encoding.value = _mu_bars(self.mu, sigma)
        self.readout.value = self.describe()

    SHAPES = ("square", "ellipse", "heart")

    def describe(self) -> str:
        """The chosen factors in their own units (the sliders give class indices)."""
        if not hasattr(self.dataset, "factor_values"):
            return ""
        values = dict(zip(self._names, self.dataset.factor_values(self.classes)[0].tolist()))
        parts = []
        for name in self.sliders:
            v = values[name]
            if name == "shape":
                parts.append(f"shape: {self.SHAPES[int(v) - 1] if 1 <= v <= 3 else v}")
            elif name == "orientation":
                parts.append(f"orientation: {math.degrees(v):.0f}°")
            elif name == "scale":
                parts.append(f"scale: {v:.2f}")
            else:
                parts.append(f"{name}: {v:.2f} (of 0…1)")
        return "<span style='font-size:11px'>" + "<br>".join(parts) + "</span>"

    def _move(self, g):
        sliders = list(self.sliders.values())
        s = sliders[int(torch.randint(len(sliders), (1,), generator=g))]
        s.value = int(torch.randint(s.min, s.max + 1, (1,), generator=g))

    def _controls(self):
        return list(self.sliders.values())


def factor_explorer(model, dataset, start: Sequence[int] | None = None) -> FactorExplorer:
    """Sliders over the factors of ``dataset`` (e.g. ``DSprites()``; classes start at ``start``,
    default the middle of each factor) → image, μ and reconstruction."""
    return FactorExplorer(model, dataset, start=start)


# ----------------------------------------------------------------------------- stage explorer
def snapshot_callback(snapshots: list, every: int):
    """A ``train(..., callbacks=[...])`` callback that appends ``(step, state_dict copy)`` to
    ``snapshots`` at the first logged step at or after each multiple of ``every``.

    ``train`` calls its callbacks only at logged steps (multiples of ``log_every``, and the
    last step), so with ``every = 333`` and ``log_every = 20`` the stages are taken at steps
    340, 680, 1000, ... rather than never: one stage per period of ``every`` steps whatever
    ``log_every`` is (when ``log_every`` divides ``every`` they fall exactly on the multiples).
    The copies live on the CPU."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    taken = {"period": None}

    def callback(step, terms, model):
        period = int(step) // every
        if period >= 1 and (taken["period"] is None or period > taken["period"]):
            taken["period"] = period
            snapshots.append((int(step), {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}))

    return callback


class StageExplorer(Explorer):
    """A slider over saved training stages → the traversal grid (rows: latents, columns:
    values) of the model at that stage. All grids are decoded once, at construction, so a
    move only swaps PNG bytes.

    Attributes: ``stage`` (IntSlider over stage indices), ``label`` (HTML: step and KL),
    ``image``, ``steps`` (the step of each stage), ``grids`` (per stage, D×V×C×H×W).
    """

    def __init__(self, model, snapshots, image=None, z0=None, dims=None, values=DEFAULT_TRAVERSAL,
                 width_per_image: int = 56):
        super().__init__()
        w = _widgets()
        if not snapshots:
            raise ValueError("snapshots is empty: pass a list of (step, state_dict or model) pairs, "
                             "e.g. collected with snapshot_callback during training")
        from .viz import traversal_images

        work = copy.deepcopy(model).cpu().eval()
        self.steps, self.grids, self.codes = [], [], []
        for item in snapshots:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise TypeError("each snapshot must be a pair (step, state_dict or model)")
            step, state = item
            state = state.state_dict() if isinstance(state, torch.nn.Module) else state
            try:
                work.load_state_dict(state)
            except RuntimeError as exc:
                raise ValueError(f"the snapshot of step {step} does not fit this model's architecture: {exc}") from exc
            code = _posterior_mean(work, image) if image is not None else (
                torch.zeros(work.num_latents) if z0 is None else torch.as_tensor(z0, dtype=torch.float32))
            self.steps.append(int(step))
            self.codes.append(code)
            self.grids.append(traversal_images(work, code, dims, values))
        self._png = [None] * len(self.grids)
        shown = list(range(self.grids[0].shape[0])) if dims is None else [int(j) for j in dims]
        self.row_names = ", ".join(f"z{j}" for j in shown)
        vals = torch.as_tensor(values, dtype=torch.float32).tolist()
        self.values_text = ", ".join(f"{v:+g}" for v in vals)
        self._held = ("μ(x) of the image at that stage" if image is not None else
                      "0" if z0 is None else "the z0 given")
        self.width_per_image = width_per_image
        self.stage = w.IntSlider(value=len(self.steps) - 1, min=0, max=len(self.steps) - 1,
                                 description="stage", continuous_update=True)
        self.label = w.HTML()
        self.image = w.Image(format="png")
        self.stage.observe(lambda _: self._timed(self.redraw), names="value")
        self.widget = w.VBox([w.HBox([self.stage, self.label]), self.image])
        self._timed(self.redraw)

    def png(self, i: int) -> bytes:
        if self._png[i] is None:
            g = self.grids[i]
            rows, cols = g.shape[:2]
            arr = make_grid(g.reshape(rows * cols, *g.shape[2:]), nrow=cols, pad=2)
            self._png[i] = png_bytes(torch.from_numpy(arr)[None] if arr.ndim == 2
                                     else torch.from_numpy(arr).permute(2, 0, 1))
        return self._png[i]

    def redraw(self) -> None:
        i = int(self.stage.value)
        g = self.grids[i]
        self.image.value = self.png(i)
        self.image.width = self.width_per_image * g.shape[1]
        self.label.value = (f"step <b>{self.steps[i]}</b> — rows: {self.row_names}; columns: the row's latent "
                            f"= {self.values_text}, the others held at {self._held}")

    def _controls(self):
        return [self.stage]

    def _move(self, g):
        self.stage.value = int(torch.randint(len(self.steps), (1,), generator=g))


def stage_explorer(model, snapshots, *, image=None, z0=None, dims=None,
                   values=DEFAULT_TRAVERSAL) -> StageExplorer:
    """A slider over ``snapshots`` (a list of ``(step, state_dict or model)``, loaded into a
    copy of ``model``) → the traversal grid at that stage, around μ(image) of that stage's
    encoder (or ``z0``, default zeros)."""
    return StageExplorer(model, snapshots, image=image, z0=z0, dims=dims, values=values)

