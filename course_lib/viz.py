"""Plots of the course: image grids, reconstructions, latent traversals, training curves,
KL per latent, mutual-information heat maps and 2-D latent scatters.

Every plotting function builds a new matplotlib Figure and returns it (no global state, no
``plt.show``): in a notebook the returned figure is displayed by the cell, and
:func:`save_figure` writes it under ``runs/figures/``. Images are tensors N×C×H×W with
pixel intensities in [0, 1]; decoders return logits, turned into intensities by
:func:`decode_pixels` (``torch.sigmoid``, the mean of the Bernoulli likelihood, source paper 003; an
autoencoder trained with the squared error outputs the image itself).

Functions that need a model (:func:`reconstruction_grid`, :func:`traversal_images`,
:func:`traversal_grid`) use ``model.encode(x) -> (μ, log σ²)`` and ``model.decode(z) -> logits``
and run without gradients on the model's own device.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .config import runs_dir  # notebooks save under viz.runs_dir()

#: The default traversal values of source paper 000: [-2, 2] in steps of 0.5 (9 values).
DEFAULT_TRAVERSAL = torch.arange(-2, 2.01, 0.5)


class CourseFigure(Figure):
    """A matplotlib Figure that Jupyter shows as a PNG whatever the backend (also with
    ``MPLBACKEND=Agg``, as in the tests). Made without pyplot, it is in no global registry of
    figures: nothing to close, and a cell that returns it shows it once."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def figure(figsize=(6.4, 4.8), **kwargs) -> CourseFigure:
    """A new empty :class:`CourseFigure` for a notebook's own plot: ``fig = viz.figure((9, 3))``,
    then ``fig.subplots(...)``; keywords as ``matplotlib.figure.Figure`` (``layout=...``). Use it
    instead of ``Figure``, which a cell shows only as the text ``<Figure size ...>`` when
    pyplot's inline backend is not active."""
    return CourseFigure(figsize=figsize, **kwargs)


def _figure(figsize) -> CourseFigure:
    return figure(figsize, layout="constrained")


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _check_images(images, name="images") -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape N×C×H×W, got {type(images).__name__}")
    if images.dim() == 3:  # one image C×H×W
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape N×C×H×W with C = 1 or 3, got {tuple(images.shape)}")
    return images.detach().float().cpu()


def make_grid(images, nrow: int = 8, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images N×C×H×W into one H'×W' (C = 1) or H'×W'×3 array, ``nrow`` images per row.

    Args:
        images: N×C×H×W, values in [0, 1] (clipped).
        nrow: images per row of the grid.
        pad: pixels between images, filled with ``pad_value``.
    """
    images = _check_images(images).clamp(0, 1)
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    grid = torch.full((c, rows * (h + pad) + pad, ncol * (w + pad) + pad), float(pad_value))
    for i in range(n):
        r, k = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top:top + h, left:left + w] = images[i]
    arr = grid.numpy()
    return arr[0] if c == 1 else arr.transpose(1, 2, 0)


def _imshow(ax, arr, title=None):
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


#: Characters of a title per inch of figure width at the default font size (a safe estimate:
#: a longer title is wrapped onto more lines instead of being cut at the figure's edges).
TITLE_CHARS_PER_INCH = 11


def wrap_title(title: str, width_inches: float) -> str:
    """``title`` broken into lines that fit a figure ``width_inches`` wide."""
    return textwrap.fill(title, width=max(16, int(width_inches * TITLE_CHARS_PER_INCH)), break_long_words=False)


def show_images(images, nrow: int = 8, title: str | None = None, scale: float = 1.0):
    """A grid of images N×C×H×W (values in [0, 1]), ``nrow`` per row. Returns the Figure.

    A title longer than the figure is wide is wrapped onto several lines (the figure grows to
    hold them) rather than cut at its edges."""
    arr = make_grid(images, nrow=nrow)
    h, w = arr.shape[:2]
    width = scale * max(2.0, w / 60)
    if title:
        title = wrap_title(title, width)
    title_height = 0.4 + 0.2 * title.count("\n") if title else 0.0   # inches: the first line, then each more
    fig = _figure((width, scale * max(1.2, h / 60 + title_height)))
    _imshow(fig.add_subplot(), arr, title)
    return fig


def decode_pixels(model, z: torch.Tensor) -> torch.Tensor:
    """Intensities in [0, 1] of the images a model decodes from codes z (N×D), on the model's
    device: ``model.decode_pixels(z)`` where the model has it (e.g. an autoencoder trained
    with the squared error outputs the image itself), else sigmoid(decode(z))."""
    if hasattr(model, "decode_pixels"):
        return model.decode_pixels(z)
    return torch.sigmoid(model.decode(z))


@torch.no_grad()
def reconstruct(model, x) -> torch.Tensor:
    """Reconstructions decode(μ(x)) of images x N×C×H×W as intensities, using the posterior
    mean (see :func:`decode_pixels`)."""
    x = _check_images(x, "x").to(_model_device(model))
    mu = model.encode(x)[0]
    return decode_pixels(model, mu).cpu()


def reconstruction_grid(model, x, title: str | None = "originals (top) and reconstructions (bottom)"):
    """Originals (top row) over reconstructions from the posterior mean (bottom row).

    Args:
        model: a model with ``encode``/``decode``.
        x: images N×C×H×W in [0, 1] (keep N ≤ 16 for a readable figure).
    Returns:
        the Figure.
    """
    x = _check_images(x, "x")
    recon = reconstruct(model, x)
    n = x.shape[0]
    return show_images(torch.cat([x, recon]), nrow=n, title=title)


def _as_code(model, z0) -> torch.Tensor:
    z0 = torch.as_tensor(z0, dtype=torch.float32).detach().cpu()
    if z0.dim() == 2 and z0.shape[0] == 1:
        z0 = z0[0]
    d = getattr(model, "num_latents", None)
    if z0.dim() != 1 or (d is not None and z0.shape[0] != d):
        size = f" with D = {d} latents" if d is not None else ""
        raise ValueError(
            f"z0 must be one code of shape [D] (or 1×D){size}, got {tuple(z0.shape)}; "
            "take it from model.encode(x)[0][0] for an image x"
        )
    return z0


def _check_dims(dims, d: int) -> list[int]:
    dims = list(range(d)) if dims is None else [int(k) for k in dims]
    bad = [k for k in dims if not 0 <= k < d]
    if bad:
        raise ValueError(f"latent indices {bad} out of range: the model has {d} latents (0..{d - 1})")
    return dims


@torch.no_grad()
def traversal_images(model, z0, dims: Sequence[int] | None = None, values=DEFAULT_TRAVERSAL) -> torch.Tensor:
    """Decode traversals: latent ``dims[i]`` set to each of ``values``, the others kept at ``z0``.

    Args:
        model: a model with ``decode(z) -> logits`` and ``num_latents`` D.
        z0: the base code, shape [D] (e.g. a posterior mean μ(x)).
        dims: the latents to traverse (default: all D).
        values: the V values each traversed latent takes (default [-2, 2] in steps of 0.5).
    Returns:
        intensities (:func:`decode_pixels`) of shape len(dims)×V×C×H×W, on the CPU.
    """
    codes = traversal_codes(_as_code(model, z0), dims, values)
    images = decode_pixels(model, codes.flatten(0, 1).to(_model_device(model))).cpu()
    return images.reshape(*codes.shape[:2], *images.shape[1:])


def traversal_codes(z0, dims: Sequence[int] | None = None, values=DEFAULT_TRAVERSAL) -> torch.Tensor:
    """The codes of a traversal: row i is ``z0`` with latent ``dims[i]`` set to each of
    ``values``; a float32 CPU tensor len(dims)×V×D. :func:`traversal_images` decodes them; any
    other renderer of codes (a GAN's generator, say) can draw the same traversal from them."""
    z0 = _as_code(None, z0)
    dims = _check_dims(dims, z0.shape[0])
    values = torch.as_tensor(values, dtype=torch.float32).flatten()
    codes = z0.repeat(len(dims), len(values), 1)  # len(dims)×V×D
    for i, k in enumerate(dims):
        codes[i, :, k] = values
    return codes


#: :func:`traversal_row_changes`: a sprite whose spread along its long axis is at least this many
#: times its spread across it has a measurable direction (an ellipse or a bar, not a disc).
ELONGATED = 1.3
#: ... and an image needs at least this many pixels (summed intensity) for its shape to be measured.
MIN_SHAPE_AREA = 8.0


def traversal_row_changes(images) -> list[dict]:
    """What each row of a traversal draws, measured on its images (rows × V × 1 × H × W, as
    :func:`traversal_images` returns them; intensities in [0, 1], measured as they are: the
    course's decoders leave the background at about 0 — a hazy background would pull every
    centre towards the middle of the frame and add to every area, so subtract it first).

    Per row, a dict of:
        ``dx``, ``dy``: the move of the sprite's centre of mass (intensity-weighted, pixels; x to
            the right, y down) from the first image to the last (nan when either is almost empty);
        ``x_range``, ``y_range``: the range of that centre over the row's visible images (area
            at least one pixel; a row that moves and comes back has a small ``dx`` and a large
            ``x_range``);
        ``area_ratio``: the last image's area (summed intensity) over the first's;
        ``area_range``: the largest area over the smallest;
        ``changed``: Σ|last − first| over pixels, divided by the row's mean area;
        ``faded``: True when some image of the row is almost empty (area below one pixel), so
            that its centre means little;
        ``faded_end``: for a faded row whose empty images are all at its ends, with at least
            three visible images between them: ``"left"``, ``"right"`` or ``"both"`` (the
            sprite vanishes towards that end of the traversal), else None;
        ``visible``: for such a row, this same dict measured on its visible images only (what
            the row does where there is a sprite to measure), else None;
        ``centres``, ``areas``: per image of the row, its centre (x, y; nan for an almost empty
            image, whose centre is not defined) and its area, for
            measures of one's own (a jump between two neighbouring values, a dip in the middle);
        ``angles``, ``elongations``: per image, the direction of the sprite's long axis (degrees
            in [0, 180), from the intensity-weighted second moments; 0 along x) and the ratio of
            its spread along that axis to its spread across it (1 for a disc or a square);
        ``turn``: how far the long axis turns from the first image to the last (degrees, 0 to
            90), where both are elongated enough for an axis to mean something (elongation at
            least :data:`ELONGATED` and area at least :data:`MIN_SHAPE_AREA` pixels), else 0.
            An axis has no sign, so a half turn (180°) reads as 0 and a turn of 120° as 60°:
            the measure sees orientation rows that turn by less than a quarter turn;
        ``elongation_ratio``: the larger of the first and last image's elongation over the
            smaller (1 where either is too small to measure).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 5 or images.shape[2] != 1 or images.shape[1] < 2:
        raise ValueError("images: expected a tensor rows × V × 1 × H × W (V ≥ 2 values, one channel), as "
                         f"traversal_images returns, got {getattr(images, 'shape', type(images).__name__)}")
    rows = images[:, :, 0].detach().double().cpu()
    mass = rows.sum((2, 3))
    safe = mass.clamp_min(1e-6)
    xs = torch.arange(rows.shape[-1], dtype=torch.float64) + 0.5
    ys = torch.arange(rows.shape[-2], dtype=torch.float64) + 0.5
    cx = (rows.sum(2) * xs).sum(2) / safe
    cy = (rows.sum(3) * ys).sum(2) / safe
    visible = mass >= 1.0
    # second moments about each image's centre: the long axis and the elongation
    dx_ = xs.view(1, 1, 1, -1) - cx[..., None, None]
    dy_ = ys.view(1, 1, -1, 1) - cy[..., None, None]
    sxx, syy = (rows * dx_ ** 2).sum((2, 3)) / safe, (rows * dy_ ** 2).sum((2, 3)) / safe
    sxy = (rows * dx_ * dy_).sum((2, 3)) / safe
    half = torch.sqrt(((sxx - syy) / 2) ** 2 + sxy ** 2)
    major, minor = (sxx + syy) / 2 + half, ((sxx + syy) / 2 - half).clamp_min(1e-6)
    angles = torch.rad2deg(0.5 * torch.atan2(2 * sxy, sxx - syy)) % 180.0
    elongations = torch.sqrt(major / minor)
    measurable = (elongations >= ELONGATED) & (mass >= MIN_SHAPE_AREA)
    sized = mass >= MIN_SHAPE_AREA
    out = []
    nan = torch.full_like(cx, float("nan"))
    cx_seen, cy_seen = torch.where(visible, cx, nan), torch.where(visible, cy, nan)

    def seen_range(values, r):
        v = values[r][visible[r]]
        return float(v.max() - v.min()) if v.numel() else 0.0

    for r in range(rows.shape[0]):
        turn = float(abs(angles[r, -1] - angles[r, 0]))
        turn = min(turn, 180.0 - turn) if bool(measurable[r, 0] and measurable[r, -1]) else 0.0
        ends = elongations[r, [0, -1]]
        elongation_ratio = float(ends.max() / ends.min()) if bool(sized[r, 0] and sized[r, -1]) else 1.0
        out.append({"dx": float(cx_seen[r, -1] - cx_seen[r, 0]), "dy": float(cy_seen[r, -1] - cy_seen[r, 0]),
                    "x_range": seen_range(cx, r), "y_range": seen_range(cy, r),
                    "area_ratio": float(safe[r, -1] / safe[r, 0]), "area_range": float(safe[r].max() / safe[r].min()),
                    "changed": float((rows[r, -1] - rows[r, 0]).abs().sum() / safe[r].mean()),
                    "faded": bool(mass[r].min() < 1.0), "faded_end": None, "visible": None,
                    "centres": torch.stack([cx_seen[r], cy_seen[r]], 1), "areas": mass[r],
                    "angles": angles[r], "elongations": elongations[r], "turn": turn,
                    "elongation_ratio": elongation_ratio})
        seen = torch.nonzero(visible[r]).flatten()
        if out[-1]["faded"] and len(seen) >= 3 and int(seen[-1] - seen[0]) + 1 == len(seen):
            lo, hi = int(seen[0]), int(seen[-1]) + 1   # one visible run, the empty images at its ends
            out[-1]["faded_end"] = "both" if lo > 0 and hi < rows.shape[1] else "left" if lo > 0 else "right"
            out[-1]["visible"] = traversal_row_changes(images[r:r + 1, lo:hi])[0]
    return out


def describe_row_change(change: dict, move_px: float = 3.0, resize: float = 1.25, changed: float = 0.5,
                        turn_deg: float = 20.0, reshape: float = 1.5) -> str:
    """A few words for one :func:`traversal_row_changes` entry: "fades out" (followed, for a row
    that fades out only towards its left, right or both ends, by what its visible images do:
    "fades out at the left end, grows"), "moves along x / y /
    a diagonal" (the centre's range reaches ``move_px`` pixels; along an axis when its range is
    at least twice the other's), "grows" / "shrinks" / "changes size and back" (the largest area
    over the smallest reaches ``resize``; "and back" when the row's smallest or largest image is
    an inner one and the size changes from it towards both ends, the smaller of the two changes
    by at least ``resize`` and by at least half the larger (in log ratio), or when the last and
    the first area are within 10 % of each other; else the direction from the last area over the
    first), "turns" (the long axis turns by at least ``turn_deg`` degrees from the first image
    to the last), "changes shape" (the elongation of the last image and the first differ by a
    factor of at least ``reshape``), "changes shape or orientation only" (none of these, but at
    least ``changed`` of the area differs between the first and the last image), else "changes
    nothing measurable". A square or a disc has no long axis: its turn is seen only as "changes
    shape or orientation only", and only when nothing else changes."""
    if change["faded"]:
        if change.get("visible") is None:
            return "fades out"
        where = "at both ends" if change["faded_end"] == "both" else f"at the {change['faded_end']} end"
        return f"fades out {where}, " + describe_row_change(change["visible"], move_px, resize, changed,
                                                             turn_deg, reshape)
    what = []
    xr, yr = change["x_range"], change["y_range"]
    if max(xr, yr) >= move_px:
        what.append("moves along x" if xr >= 2 * yr else "moves along y" if yr >= 2 * xr else "moves along a diagonal")
    if change["area_range"] >= resize:
        ratio = change["area_ratio"]   # last over first: the direction, where there is one
        areas = change.get("areas")
        turns = False                  # the size goes out to an inner extreme and comes back
        if areas is not None and len(areas) > 2:
            log_a = torch.as_tensor(areas, dtype=torch.float64).clamp_min(1e-6).log()
            for k in (int(log_a.argmin()), int(log_a.argmax())):
                if 0 < k < len(log_a) - 1:
                    legs = sorted(float((log_a[k] - log_a[end]).abs()) for end in (0, -1))
                    turns |= legs[0] >= max(math.log(resize), 0.5 * legs[1])
        what.append("changes size and back" if turns or 1 / 1.1 < ratio < 1.1
                    else "grows" if ratio >= 1.1 else "shrinks")
    if change.get("turn", 0.0) >= turn_deg:
        what.append("turns")
    if change.get("elongation_ratio", 1.0) >= reshape:
        what.append("changes shape")
    if not what:
        what.append("changes shape or orientation only" if change["changed"] >= changed
                    else "changes nothing measurable")
    return ", ".join(what)


#: What a traversal row of each dSprites factor does, in the words of :func:`describe_row_change`:
#: a row labelled with the factor shows its action when its words include one of these.
FACTOR_ACTIONS: dict[str, tuple[str, ...]] = {
    "posX": ("moves along x",), "posY": ("moves along y",), "scale": ("grows", "shrinks"),
    "shape": ("changes shape", "changes shape or orientation only"),
    "orientation": ("turns", "changes shape or orientation only"),
}


def row_measures(change: dict) -> str:
    """The measurements behind :func:`describe_row_change` for one :func:`traversal_row_changes`
    entry, as printed under the course's traversals: "centre over the row: x 12.0 px, y 0.0 px;
    area ×1.00" (the range of the sprite's centre in x and y over the row, and its largest area
    over its smallest; for a row that fades out towards its ends, the same over its visible images,
    followed by "where visible"; "area —" for any other faded row, whose areas mean little)."""
    if change["faded"] and change.get("visible") is not None:   # measured where the sprite is visible
        return row_measures(change["visible"]) + " where visible"
    area = "—" if change["faded"] else f"×{change['area_range']:.2f}"
    return f"centre over the row: x {change['x_range']:4.1f} px, y {change['y_range']:4.1f} px; area {area}"


def row_shows(words: str, factors: str | Sequence[str]) -> tuple[bool, list[str]]:
    """Whether a row described by ``words`` (:func:`describe_row_change`, possibly followed by
    notes in parentheses) shows the action of every factor in ``factors`` (:data:`FACTOR_ACTIONS`),
    and the actions it shows besides: ``(shows, others)``. A posX row that "moves along x,
    shrinks" shows posX and also "shrinks"."""
    names = [factors] if isinstance(factors, str) else list(factors)
    unknown = [n for n in names if n not in FACTOR_ACTIONS]
    if unknown:
        raise ValueError(f"unknown factor {unknown[0]!r}: expected one of {list(FACTOR_ACTIONS)}")
    actions = [a.split(" (")[0].strip() for a in words.split(", ")]
    wanted = [FACTOR_ACTIONS[n] for n in names]
    shows = all(any(a in actions for a in w) for w in wanted)
    others = [a for a in actions if not any(a in w for w in wanted)]
    return shows, others


def traversal_grid(model, z0, dims: Sequence[int] | None = None, values=DEFAULT_TRAVERSAL,
                   labels: Sequence[str] | None = None, title: str | None = None, scale: float = 1.0):
    """One row per traversed latent, one column per value (see :func:`traversal_images`).

    Args:
        labels: optional row labels (default ``z0``, ``z1``, … and, for the figure's user,
            e.g. the factor a latent encodes).
    Returns:
        the Figure.
    """
    images = traversal_images(model, z0, dims, values)
    dims = _check_dims(dims, _as_code(model, z0).shape[0])
    values = torch.as_tensor(values, dtype=torch.float32).flatten()
    rows, cols, _, h, w = images.shape
    labels = list(labels) if labels is not None else [f"z{k}" for k in dims]
    if len(labels) != rows:
        raise ValueError(f"got {len(labels)} labels for {rows} traversed latents")
    pad = 2
    arr = make_grid(images.reshape(rows * cols, *images.shape[2:]), nrow=cols, pad=pad)
    title = wrap_title(title, scale * 0.7 * cols) if title else title   # fits above the images, not the labels
    extra_lines = title.count("\n") if title else 0
    label_width = 0.075 * max(0, max(len(str(label)) for label in labels) - 4)   # inches beyond "z10"'s
    fig = _figure((scale * 0.7 * cols + 0.8 + label_width, scale * 0.7 * rows + 0.6 + 0.25 * extra_lines))
    ax = fig.add_subplot()
    _imshow(ax, arr)
    ax.set_yticks([pad + i * (h + pad) + h / 2 for i in range(rows)], labels)
    ax.set_xticks([pad + j * (w + pad) + w / 2 for j in range(cols)], [f"{float(v):g}" for v in values])
    ax.tick_params(length=0)
    ax.set_xlabel("value of the traversed latent")
    if title:
        ax.set_title(title)
    return fig


def _series(history, key) -> tuple[np.ndarray, np.ndarray]:
    if key not in history:
        raise KeyError(f"{key!r} was not logged; logged terms: {sorted(history)}")
    values = np.asarray(history[key], dtype=float)
    steps = np.asarray(history["step"], dtype=float) if "step" in history else np.arange(1, len(values) + 1)
    return steps, values


def plot_history(history, keys: Sequence[str] = ("loss",), logy: bool = False, title: str | None = None):
    """Logged scalar terms (e.g. ``"loss"``, ``"recon"``, ``"kl"`` in nats) against the step,
    one panel per key. ``history`` is a :class:`course_lib.train.History` (or a dict of lists
    with ``"step"``). Returns the Figure."""
    if isinstance(keys, str):
        keys = [keys]
    fig = _figure((3.6 * len(keys), 2.8))
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        steps, values = _series(history, key)
        if values.ndim != 1:
            raise ValueError(f"{key!r} is a vector per step; plot it with plot_kl_per_latent")
        ax.plot(steps, values)
        ax.set_xlabel("step")
        ax.set_title(key)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(wrap_title(title, fig.get_figwidth()))
    return fig


def plot_kl_per_latent(history, key: str = "kl_per_latent", title: str | None = "KL per latent (nats)"):
    """KL(q(z_j|x) ‖ p(z_j)) of every latent j against the step (a ``history`` logging
    ``kl_per_latent``, steps × D). Latents that carry information rise above 0; with capacity
    control one sees them appear one after the other. Returns the Figure."""
    steps, values = _series(history, key)
    if values.ndim != 2:
        raise ValueError(f"{key!r} should be logged as one vector of D values per step, got shape {values.shape}")
    fig = _figure((5.5, 3.2))
    ax = fig.add_subplot()
    order = np.argsort(-values[-1])
    for j in order:
        ax.plot(steps, values[:, j], label=f"z{j}")
    ax.set_xlabel("step")
    ax.set_ylabel("KL (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return fig


def kl_bar(kl_per_latent, title: str | None = "KL per latent (nats)"):
    """Bar chart of the KL of each latent (D values, nats). Returns the Figure."""
    kl = np.asarray(torch.as_tensor(kl_per_latent, dtype=torch.float64).cpu(), dtype=float).ravel()
    fig = _figure((max(3.0, 0.45 * len(kl) + 1), 2.6))
    ax = fig.add_subplot()
    ax.bar(np.arange(len(kl)), kl, color="tab:blue")
    ax.set_xticks(np.arange(len(kl)), [f"z{j}" for j in range(len(kl))])
    ax.set_ylabel("KL (nats)")
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def _mi_matrix(mutual_info, factor_names):
    mi = np.asarray(mutual_info, dtype=float)
    if mi.ndim != 2:
        raise ValueError(f"mutual_info must be a D×K matrix, got shape {mi.shape}")
    k = mi.shape[1]
    names = list(factor_names) if factor_names is not None else [f"v{j}" for j in range(k)]
    if len(names) != k:
        raise ValueError(f"got {len(names)} factor names for {k} columns of mutual_info")
    return mi, names


def _off_rows(off, d) -> set:
    """The latent indices in ``off`` (None, any iterable, or an index array) as a checked set."""
    if isinstance(off, (np.ndarray, torch.Tensor)):
        off = np.asarray(off).ravel().tolist()
    rows = {int(j) for j in (off or ())}
    if any(not 0 <= j < d for j in rows):
        raise ValueError(f"off rows {sorted(rows)} out of range for {d} latents")
    return rows


def _draw_mi(fig, ax, mi, names, title, annotate, latent_name, fontsize=None, vmax=None, off=()):
    d, k = mi.shape
    im = ax.imshow(mi, cmap="viridis", aspect="auto", vmin=0, vmax=vmax)
    ax.set_xticks(np.arange(k), names, rotation=30, ha="right", fontsize=fontsize)
    off = _off_rows(off, d)
    rows = [f"{latent_name}{j}" for j in range(d)] if isinstance(latent_name, str) else [str(n) for n in latent_name]
    if len(rows) != d:
        raise ValueError(f"latent_name: a prefix, or one row name per latent ({d}), got {len(rows)} names")
    ax.set_yticks(np.arange(d), [name + (" (off)" if j in off else "") for j, name in enumerate(rows)],
                  fontsize=fontsize)
    for j, tick in enumerate(ax.get_yticklabels()):
        if j in off:
            tick.set_color("0.55")
    if annotate:
        top = mi.max() if mi.size else 0
        for i in range(d):
            for j in range(k):
                ax.text(j, i, f"{mi[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if mi[i, j] > 0.6 * top else "white")
    fig.colorbar(im, ax=ax, label="nats")
    if title:
        ax.set_title(title, fontsize=fontsize)


def mi_heatmap(mutual_info, factor_names: Sequence[str] | None = None, title: str | None = "I(z_j; v_k) in nats",
               annotate: bool = True, latent_name: str = "z", off: Sequence[int] | None = None):
    """Heat map of a D×K mutual-information matrix (rows: latents, columns: factors; nats),
    e.g. ``mig(codes, factors).mutual_info``. A disentangled code has one bright cell per
    factor column, each in a different row. Rows are labelled ``{latent_name}0``,
    ``{latent_name}1``, ... (or, when ``latent_name`` is a list, by its names); the rows in
    ``off`` (latent indices, e.g. switched-off latents) get " (off)" in grey. Returns the Figure."""
    mi, names = _mi_matrix(mutual_info, factor_names)
    d, k = mi.shape
    fig = _figure((1.0 * k + 2.0, 0.38 * d + 1.2))
    _draw_mi(fig, fig.add_subplot(), mi, names, title, annotate, latent_name, off=off)
    return fig


def mi_heatmaps(matrices: dict, factor_names: Sequence[str] | None = None, annotate: bool = False,
                latent_name: str = "z", vmax: float | None = None, off: dict | None = None):
    """Several mutual-information heat maps side by side, one per entry of ``matrices``
    (panel title → D×K matrix, as :func:`mi_heatmap`), to compare models. Each panel has its
    own colour scale (0 to its largest value) unless ``vmax`` (nats) is given: then all share
    the scale 0 to ``vmax``, so that colours compare across panels. ``off``: panel title →
    latent indices labelled " (off)" in grey, as in :func:`mi_heatmap`. Returns the Figure."""
    if vmax is not None and not vmax > 0:
        raise ValueError(f"vmax must be a positive number of nats (the top of the shared colour scale), got {vmax!r}")
    if not matrices:
        raise ValueError("matrices is empty: expected {title: D×K mutual-information matrix}")
    panels = [(title, *_mi_matrix(mi, factor_names)) for title, mi in matrices.items()]
    d = max(mi.shape[0] for _, mi, _ in panels)
    fig = _figure((4.2 * len(panels), 0.25 * d + 1.8))
    off = dict(off or {})
    if set(off) - set(matrices):
        raise ValueError(f"off names panels {sorted(set(off) - set(matrices))} that are not in matrices")
    for ax, (title, mi, names) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        _draw_mi(fig, ax, mi, names, title, annotate, latent_name, fontsize=8, vmax=vmax, off=off.get(title))
    return fig


def latent_scatter(codes, colour_by=None, dims: Sequence[int] = (0, 1), label: str | None = None,
                   title: str | None = None, cmap: str = "viridis", s: float = 4.0):
    """Scatter of two code dimensions (codes N×D), coloured by ``colour_by`` (N values, e.g.
    a factor's class indices). Returns the Figure."""
    codes = np.asarray(torch.as_tensor(codes).detach().cpu(), dtype=float)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"codes must be N×D with D >= 2, got shape {codes.shape}")
    i, j = (int(k) for k in dims)
    if not (0 <= i < codes.shape[1] and 0 <= j < codes.shape[1]):
        raise ValueError(f"dims {tuple(dims)} out of range for codes with {codes.shape[1]} dimensions")
    fig = _figure((4.2, 3.6))
    ax = fig.add_subplot()
    if colour_by is None:
        ax.scatter(codes[:, i], codes[:, j], s=s)
    else:
        c = np.asarray(torch.as_tensor(colour_by).detach().cpu(), dtype=float).ravel()
        if len(c) != len(codes):
            raise ValueError(f"colour_by has {len(c)} values for {len(codes)} codes")
        sc = ax.scatter(codes[:, i], codes[:, j], c=c, s=s, cmap=cmap)
        fig.colorbar(sc, ax=ax, label=label or "")
    ax.set_xlabel(f"z{i}")
    ax.set_ylabel(f"z{j}")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


#: Set by :func:`course_lib.notebook.setup`: a smoke-profile notebook (the test run) saves its
#: figures in ``runs/figures/smoke``, so that ``make test`` does not overwrite the figures of a
#: quick or full run.
FIGURES_SUBFOLDER = ""


def figures_dir() -> Path:
    """Where :func:`save_figure` writes: ``runs/figures``, or ``runs/figures/smoke`` after a
    smoke-profile :func:`course_lib.notebook.setup`."""
    folder = runs_dir() / "figures"
    return folder / FIGURES_SUBFOLDER if FIGURES_SUBFOLDER else folder


def save_figure(fig, name: str, directory: str | os.PathLike | None = None, dpi: int = 120) -> Path:
    """Save ``fig`` as ``<figures_dir()>/<name>`` (``.png`` added when ``name`` has no suffix),
    creating the folder. Returns the path written."""
    if not name or Path(name).name != name:
        raise ValueError(f"name must be a plain file name such as '03_traversal.png', got {name!r}")
    folder = Path(directory) if directory is not None else figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if Path(name).suffix else f"{name}.png")
    fig.savefig(path, dpi=dpi)
    return path
