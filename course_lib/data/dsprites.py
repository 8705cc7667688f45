"""dSprites (Matthey et al., 2017), rendered procedurally from its factor grid.

The grid, its C-order indexing and the geometry follow ``shared/docs/dsprites.md``:

====  ===========  ====  =========================================
 #    name         size  values
====  ===========  ====  =========================================
 0    color        1     1 (white)
 1    shape        3     1 = square, 2 = ellipse, 3 = heart
 2    scale        6     linspace(0.5, 1, 6)
 3    orientation  40    linspace(0, 2π, 40) radians
 4    posX         32    linspace(0, 1, 32)
 5    posY         32    linspace(0, 1, 32)
====  ===========  ====  =========================================

Image coordinates: column = x, row = y, row 0 at the top; a pixel (row r, column c) has
its centre at (x, y) = (c + 0.5, r + 0.5). The sprite's centre is (16 + 32·posX, 16 + 32·posY)
pixels. At scale s a square has side 20·s, an ellipse semi-axes 13·s (along x at orientation 0)
and 7·s, a heart is 20·s wide and 17·s tall, upright (lobes up, point down) at orientation 0.
Orientation θ turns the sprite about its centre **counter-clockwise as seen on the screen**.
Pixels are hard 0/1 (a pixel is on when its centre lies inside the shape), so a rotated
sprite keeps its area up to pixelation: a square at 45° and s = 1 lights about 400 pixels
(the published file's renderer, which drops partly covered edge pixels, about 365). The
heart turns about the centre of its bounding box (its centre of mass sits about 1.3 px above
it at s = 1). The per-pixel tests always run in float32, so every output dtype gets the same
pixels.

Rendering is vectorised over the batch and runs on whatever device the class indices live
on, so a GPU renders its own training batches, the same pixels as the CPU (the per-class tables
are made in float64 on the CPU, then cast and moved). The sampler's path reads nothing back
from the device: its classes are drawn in range (no range check), the factor sizes are made
once per device, and off the CPU the images are not grouped by shape (which would need the
per-shape counts on the host).
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
NUM_IMAGES = 737_280
IMAGE_SIZE = 64
# C order over the factors, posY fastest: index = sum(class_k * base_k).



def _bases(sizes):
    bases, acc = [], 1
    for size in reversed(sizes):
        bases.append(acc)
        acc *= size
    return tuple(reversed(bases))


FACTOR_BASES = _bases(FACTOR_SIZES)

NPZ_KEYS = {
    "imgs": ((NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
    "latents_classes": ((NUM_IMAGES, len(FACTOR_SIZES)), np.int64),
    "latents_values": ((NUM_IMAGES, len(FACTOR_SIZES)), np.float64),
}

# Shape geometry in pixels at scale 1 (see the module docstring).
SQUARE_HALF_SIDE = 10.0
ELLIPSE_SEMI_AXES = (13.0, 7.0)
HEART_SIZE = (20.0, 17.0)  # width, height
# The heart is the region (x² + y² − 1)³ − x²·y³ ≤ 0 (y up), whose bounding box is
# x ∈ [−1.139, 1.139], y ∈ [−1.000, 1.236]; it is stretched to HEART_SIZE and centred.
_HEART_BOX_X = 1.139
_HEART_BOX_Y = (-1.0, 1.236)


def factor_values_table() -> list[torch.Tensor]:
    """The value of every class of every factor (float64 tensors, as in the original file)."""
    return [
        torch.ones(1, dtype=torch.float64),
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
        torch.linspace(0.5, 1.0, 6, dtype=torch.float64),
        torch.linspace(0.0, 2 * math.pi, 40, dtype=torch.float64),
        torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
        torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
    ]


_CONSTANTS: dict = {}


def _constant(name: str, device) -> torch.Tensor:
    """``FACTOR_SIZES`` or ``FACTOR_BASES`` as a LongTensor on ``device``, made once per device
    (building it at every call would copy it from the host each time: a GPU synchronisation)."""
    key = (name, str(device))
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor({"sizes": FACTOR_SIZES, "bases": FACTOR_BASES}[name],
                                       device=device)
    return _CONSTANTS[key]


def _check_classes(classes: torch.Tensor) -> torch.Tensor:
    """Shape, dtype and range checks of class indices given by a caller (the range check reads
    one flag back from the device; the sampler's own draws skip it: they are in range)."""
    if not isinstance(classes, torch.Tensor):
        try:
            classes = torch.as_tensor(classes)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"expected class indices as an N×{len(FACTOR_SIZES)} integer tensor or array, "
                            f"got {type(classes).__name__} ({err})") from None
    if classes.dim() == 1 and classes.numel() == len(FACTOR_SIZES):
        classes = classes.unsqueeze(0)
    if classes.dim() != 2 or classes.shape[1] != len(FACTOR_SIZES):
        raise ValueError(
            f"expected class indices of shape N×{len(FACTOR_SIZES)} (one column per factor "
            f"{FACTOR_NAMES}), got shape {tuple(classes.shape)}"
        )
    if classes.dtype.is_floating_point or classes.dtype.is_complex or classes.dtype == torch.bool:
        raise TypeError(f"class indices must be integers, got dtype {classes.dtype}")
    classes = classes.long()
    if classes.numel():
        bad = (classes < 0) | (classes >= _constant("sizes", classes.device))
        if bool(bad.any()):
            row, col = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"class index out of range: factor {FACTOR_NAMES[col]!r} has classes "
                f"0..{FACTOR_SIZES[col] - 1}, got {int(classes[row, col])} (row {row})"
            )
    return classes


class _Renderer:
    """Caches the pixel grid and per-class values per (device, dtype).

    Every sprite fits in a 32×32 window around its centre (the farthest shape point is the
    corner of a 45°-rotated square, 10·√2 ≈ 14.2 px away), so the shape tests run on that
    window only and the window is then written into a zero 64×64 image: 4× fewer pixels to
    test than the whole frame, with the same arithmetic per pixel. On the CPU the batch is
    processed in chunks whose temporaries stay in the cache.
    """

    WINDOW = 32
    CPU_CHUNK = 128
    #: Images per pass off the CPU (bounds the temporaries: about 40 kB per image).
    DEVICE_CHUNK = 16_384
    #: Device types on which the images are grouped by shape, so that each shape test runs on
    #: its own images only. Grouping needs the per-shape counts on the host: cheap on the CPU,
    #: a synchronisation on a GPU, where every image instead gets all three tests (elementwise,
    #: same arithmetic, same result) and ``torch.where`` keeps its own shape's.
    GROUP_BY_SHAPE_ON = ("cpu",)

    def __init__(self):
        self._cache: dict = {}

    def tables(self, device, dtype):
        """The per-class tables on ``device`` in ``dtype``.

        They are computed once in float64 on the CPU, then cast and moved: cos and sin of the
        40 orientations (and 1/scale, the pixel offsets) are then the same numbers on every
        device, whereas float32 cos/sin computed on a GPU differ from the CPU's in the last bit
        at several angles, enough to flip edge pixels. The per-pixel arithmetic that follows
        is plain IEEE multiplication, addition and comparison, so images match across devices.
        """
        key = (str(device), dtype)
        if key not in self._cache:
            self._cache[key] = {k: (v.to(device=device, dtype=dtype) if v.is_floating_point()
                                    else v.to(device)) for k, v in self._tables64().items()}
        return self._cache[key]

    def _tables64(self) -> dict:
        """The tables in float64 (integer ones in int64), on the CPU."""
        f64 = torch.float64
        centres = torch.arange(IMAGE_SIZE, dtype=f64) + 0.5
        values = factor_values_table()  # float64, CPU
        theta = values[3]
        pos = values[4] * 32.0 + 16.0  # sprite centre of each position class, pixels
        w = self.WINDOW
        steps = torch.arange(w)
        # first row/column of the window of each position class: every pixel centre within
        # 14.5 px of the sprite centre lies inside it (centres sweep 16..48: 0 <= first <= 32)
        first = (pos.floor().long() - w // 2).clamp(0, IMAGE_SIZE - w)
        window = centres[first.view(-1, 1) + steps]  # 32 classes × 32 pixel centres
        return {
            "inv_scale": 1.0 / values[2],
            "cos": torch.cos(theta),
            "sin": torch.sin(theta),
            # offsets of the window's pixel centres from the sprite centre, per position
            # class: x to the right, y up (rows grow downwards)
            "dx": window - pos.view(-1, 1),
            "dy_up": pos.view(-1, 1) - window,
            "first_col": first,
            "first_row_flat": first * IMAGE_SIZE,
            # flat offsets of the window's pixels inside a 64×64 image
            "window_offsets": (steps.view(w, 1) * IMAGE_SIZE + steps.view(1, w)).view(1, w * w),
        }

    def __call__(self, classes: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        n = classes.shape[0]
        out = torch.zeros(n, 1, IMAGE_SIZE, IMAGE_SIZE, dtype=dtype, device=classes.device)
        if n == 0:
            return out
        # the shape tests always run in float32 (a half-precision test moves edge pixels), so the
        # same classes give the same pixels in every output dtype
        t = self.tables(classes.device, torch.float32)
        chunk = self.CPU_CHUNK if classes.device.type == "cpu" else self.DEVICE_CHUNK
        render = (self._render_into if classes.device.type in self.GROUP_BY_SHAPE_ON
                  else self._render_into_without_sync)
        for start in range(0, n, chunk):
            render(classes[start:start + chunk], out[start:start + chunk], t)
        return out

    def _render_into_without_sync(self, classes, out, t):
        """Every shape test on every image, the image's own kept: no value is read back."""
        n, w = classes.shape[0], self.WINDOW
        u, v = self._local(classes, t)
        shape = classes[:, 1].view(n, 1, 1)
        inside = torch.where(shape == 0, _in_square(u, v),
                             torch.where(shape == 1, _in_ellipse(u, v), _in_heart(u, v)))
        flat = (t["first_row_flat"][classes[:, 5]] + t["first_col"][classes[:, 4]]).view(n, 1)
        out.view(n, IMAGE_SIZE * IMAGE_SIZE).scatter_(1, flat + t["window_offsets"],
                                                      inside.view(n, w * w).to(out.dtype))

    def _render_into(self, classes, out, t):
        n, w = classes.shape[0], self.WINDOW
        shape = classes[:, 1]
        counts = torch.bincount(shape, minlength=3).tolist()
        if max(counts) == n:  # one shape: no reordering
            order, sorted_classes = None, classes
        else:  # group the images by shape so that every shape test runs on a slice
            order = torch.argsort(shape, stable=True)
            sorted_classes = classes[order]
        insides, start = [], 0
        for count, test in zip(counts, (_in_square, _in_ellipse, _in_heart)):
            if count:
                insides.append(self._window(sorted_classes[start:start + count], t, test))
                start += count
        inside = insides[0] if len(insides) == 1 else torch.cat(insides)
        flat = (t["first_row_flat"][sorted_classes[:, 5]] + t["first_col"][sorted_classes[:, 4]]).view(n, 1)
        flat = flat + t["window_offsets"]
        inside = inside.view(n, w * w).to(out.dtype)
        if order is None:
            out.view(n, IMAGE_SIZE * IMAGE_SIZE).scatter_(1, flat, inside)
        else:
            flat = flat + (order * (IMAGE_SIZE * IMAGE_SIZE)).view(n, 1)
            out.view(-1).scatter_(0, flat.view(-1), inside.view(-1))

    def _window(self, classes, t, test):
        """The shape test on the 32×32 window of each image (N×32×32 bool)."""
        return test(*self._local(classes, t))

    def _local(self, classes, t):
        """(u, v), each N×32×32: the window's pixel centres in the sprite's own axes."""
        n, w = classes.shape[0], self.WINDOW
        inv_scale = t["inv_scale"][classes[:, 2]].view(n, 1, 1)
        cos = t["cos"][classes[:, 3]].view(n, 1, 1)
        sin = t["sin"][classes[:, 3]].view(n, 1, 1)
        # offsets of every window pixel centre from the sprite centre, in sprite units
        # (pixels at scale 1), x to the right and y up
        dx = t["dx"][classes[:, 4]].view(n, 1, w) * inv_scale
        dy_up = t["dy_up"][classes[:, 5]].view(n, w, 1) * inv_scale
        # undo a counter-clockwise rotation by θ (y up): local = R(−θ) · offset
        u = cos * dx + sin * dy_up  # N×32×32, along the sprite's own x axis
        v = cos * dy_up - sin * dx  # along the sprite's own y axis (up)
        return u, v


def _in_square(u, v):
    return torch.maximum(u.abs(), v.abs()) <= SQUARE_HALF_SIDE


def _in_ellipse(u, v):
    a, b = ELLIPSE_SEMI_AXES
    # multiplications by 1/a and 1/b, not divisions: CUDA divides a tensor by a number as a
    # multiplication by its reciprocal, the CPU does not, and the two differ in the last bit
    return (u * (1.0 / a)) ** 2 + (v * (1.0 / b)) ** 2 <= 1.0


def _in_heart(u, v):
    x = u * (2 * _HEART_BOX_X / HEART_SIZE[0])
    y = v * ((_HEART_BOX_Y[1] - _HEART_BOX_Y[0]) / HEART_SIZE[1]) + 0.5 * sum(_HEART_BOX_Y)
    x2 = x * x
    r = x2 + y * y - 1.0
    return r * r * r <= x2 * y * y * y


_RENDER = _Renderer()


def render(classes: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Render dSprites images from class indices.

    Args:
        classes: integer tensor N×6 of class indices (see the module table), on any device.
        dtype: floating dtype of the result.
    Returns:
        N×1×64×64 tensor of 0/1 values on ``classes.device``.
    """
    return _RENDER(_check_classes(classes), dtype)


class DSprites(torch.utils.data.Dataset):
    """The dSprites grid: procedural by default, or read from the original npz file.

    Follows the ground-truth-data interface: ``factor_names``, ``factor_sizes``,
    ``sample_classes(n, generator)``, ``images(classes)``. As a torch ``Dataset``,
    ``ds[i]`` is ``(image 1×64×64 float, classes LongTensor of 6)`` in the original order.

    Args:
        npz_path: the original ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (or a file
            written by :func:`export_npz`). It is read with ``allow_pickle=False``.
        allow_subset: accept an npz that holds only part of the grid (as written by
            ``export_npz(..., classes=...)``); asking for an image it lacks raises KeyError.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    factor_bases = FACTOR_BASES

    def __init__(self, npz_path: str | os.PathLike | None = None, *, allow_subset: bool = False):
        self.npz_path = None if npz_path is None else Path(npz_path)
        self._imgs = None
        self._row_of_index = None
        if self.npz_path is not None:
            self._imgs, self._row_of_index = _read_npz(self.npz_path, allow_subset)

    @property
    def procedural(self) -> bool:
        return self._imgs is None

    @property
    def key(self) -> str:
        """What the training data is, for run names: ``dsprites`` (procedural) or the npz's name."""
        return "dsprites" if self.procedural else f"dsprites-npz:{self.npz_path.name}"

    def __len__(self) -> int:
        return NUM_IMAGES

    def __getitem__(self, index: int):
        try:
            if isinstance(index, bool):
                raise TypeError
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"a dSprites index must be an integer, got {index!r}") from None
        if not -NUM_IMAGES <= int(index) < NUM_IMAGES:
            raise IndexError(f"dSprites index {index} out of range 0..{NUM_IMAGES - 1}")
        classes = self.index_to_classes(torch.tensor([int(index) % NUM_IMAGES]))
        return self.images(classes)[0], classes[0]

    def __repr__(self) -> str:
        source = "procedural" if self.procedural else f"npz={str(self.npz_path)!r}"
        return f"DSprites({source}, {NUM_IMAGES} images, factors={dict(zip(FACTOR_NAMES, FACTOR_SIZES))})"

    # -- indexing -------------------------------------------------------------------------
    def classes_to_index(self, classes) -> torch.Tensor:
        """N×6 class indices → N flat indices into the grid (C order, posY fastest)."""
        classes = _check_classes(classes)
        return (classes * _constant("bases", classes.device)).sum(1)

    def index_to_classes(self, index) -> torch.Tensor:
        """N flat indices → N×6 class indices (inverse of :meth:`classes_to_index`)."""
        index = torch.as_tensor(index)
        if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
            raise TypeError(f"indices must be integers, got dtype {index.dtype}")
        index = index.long().reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= NUM_IMAGES):
            raise ValueError(f"dSprites indices must lie in 0..{NUM_IMAGES - 1}")
        return (index.unsqueeze(1) // _constant("bases", index.device)) % _constant("sizes", index.device)

    def factor_values(self, classes) -> torch.Tensor:
        """N×6 class indices → N×6 factor values (float64), as ``latents_values`` of the npz."""
        classes = _check_classes(classes)
        table = factor_values_table()
        return torch.stack([table[k].to(classes.device)[classes[:, k]] for k in range(6)], 1)

    def sample_classes(self, n: int, generator: torch.Generator | None = None, device=None,
                       class_ranges: dict | None = None) -> torch.Tensor:
        """Draw n class vectors uniformly from the grid (or from ``class_ranges``).

        Args:
            generator: controls the draw, which happens on its device (the classes are then
                moved to ``device``); its device is used when ``device`` is None.
            class_ranges: optional ``{factor_name: (low, high)}``, classes low..high−1 only
                (e.g. ``{"posX": (0, 16)}`` for the held-out experiment of seed 000).
        Returns:
            LongTensor n×6.
        """
        n = _count(n, "n")
        draw = generator.device if generator is not None else torch.device(device or "cpu")
        device = draw if device is None else torch.device(device)
        lows, highs = _class_bounds(class_ranges)
        # a generator draws only on its own device: draw there, then move
        cols = [
            torch.randint(lo, hi, (n,), generator=generator, device=draw)
            for lo, hi in zip(lows, highs)
        ]
        return torch.stack(cols, 1).to(device)

    # -- images ---------------------------------------------------------------------------
    def images(self, classes, dtype=torch.float32) -> torch.Tensor:
        """N×6 class indices → N×1×64×64 images in {0, 1} on the classes' device."""
        return self._images(_check_classes(classes), dtype)

    def _images(self, classes: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """:meth:`images` of checked (or drawn in range) N×6 LongTensor class indices."""
        if self.procedural:
            return _RENDER(classes, dtype)
        index = self.classes_to_index(classes).cpu().numpy()
        rows = self._row_of_index[index]
        if (rows < 0).any():
            missing = index[rows < 0][0]
            raise KeyError(f"image {int(missing)} is not in the subset file {self.npz_path}")
        imgs = torch.from_numpy(self._imgs[rows])
        return imgs.to(device=classes.device, dtype=dtype).unsqueeze(1)

    def sampler(self, device=None, class_ranges: dict | None = None) -> DSpritesSampler:
        """A training-loop data source that renders random batches on ``device``."""
        return DSpritesSampler(self, device=device, class_ranges=class_ranges)


def _count(n, name: str) -> int:
    """``n`` as an int if it is a whole number >= 0 (2.0 is taken, 2.5 and -1 are refused)."""
    if isinstance(n, torch.Tensor) and n.numel() == 1:
        n = n.item()
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or n < 0 or int(n) != n:
        raise ValueError(f"{name} must be a whole number >= 0, got {n!r}")
    return int(n)


def _class_bounds(class_ranges):
    lows, highs = [0] * 6, list(FACTOR_SIZES)
    for name, bounds in (class_ranges or {}).items():
        if name not in FACTOR_NAMES:
            raise ValueError(f"unknown factor {name!r}: expected one of {FACTOR_NAMES}")
        k = FACTOR_NAMES.index(name)
        if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
                or any(isinstance(b, bool) or not isinstance(b, numbers.Real) or int(b) != b
                       for b in bounds)):
            raise ValueError(f"class range for {name!r} must be two whole numbers (low, high), "
                             f"got {bounds!r}")
        lo, hi = bounds
        if not 0 <= lo < hi <= FACTOR_SIZES[k]:
            raise ValueError(
                f"class range for {name!r} must satisfy 0 <= low < high <= {FACTOR_SIZES[k]}, "
                f"got ({lo}, {hi})"
            )
        lows[k], highs[k] = int(lo), int(hi)
    return lows, highs


class DSpritesSampler:
    """Random dSprites batches rendered on ``device``: ``sample(n, generator) -> N×1×64×64``."""

    def __init__(self, dataset: DSprites, device=None, class_ranges: dict | None = None):
        self.dataset = dataset
        self.device = torch.device(device or "cpu")
        self.class_ranges = dict(class_ranges or {})
        _class_bounds(self.class_ranges)  # validate now, not mid-training

    @property
    def key(self) -> str:
        """The dataset's key and the class ranges, e.g. ``dsprites:posX<16`` (not the device)."""
        ranges = ",".join(f"{name}{low}-{high}" if low else f"{name}<{high}"
                          for name, (low, high) in sorted(self.class_ranges.items()))
        return self.dataset.key + (f":{ranges}" if ranges else "")

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        classes = self.dataset.sample_classes(n, generator, self.device, self.class_ranges)
        return self.dataset._images(classes)  # drawn in range: no range check to read back

    def sample_with_classes(self, n: int, generator: torch.Generator | None = None):
        classes = self.dataset.sample_classes(n, generator, self.device, self.class_ranges)
        return self.dataset._images(classes), classes

    def to(self, device) -> DSpritesSampler:
        """The same sampler rendering on ``device``."""
        return DSpritesSampler(self.dataset, device=device, class_ranges=self.class_ranges)


class TensorSampler:
    """Random rows of a tensor held on ``device``: ``sample(n, generator)``."""

    def __init__(self, data: torch.Tensor, device=None):
        if not isinstance(data, torch.Tensor) or data.dim() < 1 or len(data) == 0:
            raise ValueError("TensorSampler expects a non-empty tensor with the samples along dim 0")
        self.device = torch.device(device) if device is not None else data.device
        self.data = data.to(self.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        draw = generator.device if generator is not None else self.device
        idx = torch.randint(len(self.data), (int(n),), generator=generator, device=draw)
        return self.data[idx.to(self.device)]

    def to(self, device) -> TensorSampler:
        """The same samples held on ``device``."""
        return TensorSampler(self.data, device)


class SamplerDeviceWarning(UserWarning):
    """A sampler draws its batches on another device than the one that trains."""


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def sampler_on(sampler, device):
    """``sampler`` drawing its batches on ``device`` (the training device).

    A sampler whose ``device`` is another one (e.g. ``DSprites().sampler()``, made on the CPU,
    for a model trained on a GPU) is replaced by its ``to(device)`` copy, so that batches are
    rendered where they are used instead of crossing from the host at every step; one without
    ``to`` is kept, with a :class:`SamplerDeviceWarning`. Samplers without a ``device`` are
    returned as they are.
    """
    want = torch.device(device)
    have = getattr(sampler, "device", None)
    if have is None or _same_device(torch.device(have), want):
        return sampler
    mover = getattr(sampler, "to", None)
    if callable(mover):
        return mover(want)
    warnings.warn(f"the {type(sampler).__name__} draws its batches on {have} but the model trains "
                  f"on {want}: every batch is copied over (slow on a GPU). Make the sampler on "
                  f"{want}, or give it a to(device) method.", SamplerDeviceWarning, stacklevel=2)
    return sampler


# -- the original file ----------------------------------------------------------------------
def _read_npz(path: Path, allow_subset: bool):
    if not path.exists():
        raise FileNotFoundError(
            f"dSprites file {path} not found: pass the path of "
            "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, or use DSprites() for the procedural set"
        )
    unreadable = (
        f"{path} could not be read as an npz archive (expected a zip of .npy arrays as written by "
        "np.savez, holding imgs, latents_classes and latents_values; is it truncated or corrupt?)"
    )
    hint = "Download it again, or use DSprites() for the procedural set."
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        # ValueError: numpy took a non-zip file for a pickle and refused to unpickle it
        raise ValueError(f"{unreadable}: {err}. {hint}") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array; expected an npz archive with {sorted(NPZ_KEYS)}")
    with npz:
        missing = [k for k in NPZ_KEYS if k not in npz.files]
        if missing:
            raise ValueError(
                f"{path} is not a dSprites npz: missing array(s) {missing}; expected "
                f"{sorted(NPZ_KEYS)} (found {sorted(npz.files)})"
            )
        arrays = {}
        for key, (_, dtype) in NPZ_KEYS.items():
            try:
                arrays[key] = npz[key]
            except ValueError as err:  # an object array (reading it would unpickle), or a bad header
                pickled = "allow_pickle" in str(err) or "pickle" in str(err).lower()
                raise ValueError(
                    f"{path}: array {key!r} holds pickled Python objects, which are never loaded; "
                    f"expected a plain {np.dtype(dtype)} array" if pickled else
                    f"{path}: array {key!r} could not be read ({err}); expected a plain "
                    f"{np.dtype(dtype)} array. {hint}"
                ) from err
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
                raise ValueError(f"{unreadable}: {err}. {hint}") from err
    n = len(arrays["imgs"])
    for key, (shape, dtype) in NPZ_KEYS.items():
        arr = arrays[key]
        want = (n,) + shape[1:] if allow_subset else shape
        if arr.shape != want or arr.dtype != dtype:
            raise ValueError(
                f"{path}: array {key!r} has shape {arr.shape} and dtype {arr.dtype}; "
                f"expected shape {want} and dtype {np.dtype(dtype)}"
            )
    classes = arrays["latents_classes"]
    if n and ((classes < 0).any() or (classes >= np.array(FACTOR_SIZES)).any()):
        raise ValueError(
            f"{path}: latents_classes out of range: expected 0 <= class < size for the factor "
            f"sizes {dict(zip(FACTOR_NAMES, FACTOR_SIZES))}"
        )
    if arrays["imgs"].max(initial=0) > 1:
        raise ValueError(f"{path}: imgs must hold 0/1 values, found {arrays['imgs'].max()}")
    index = classes @ np.array(FACTOR_BASES)
    if not allow_subset and not np.array_equal(index, np.arange(NUM_IMAGES)):
        raise ValueError(f"{path}: latents_classes are not in the original C order of the grid")
    row_of_index = np.full(NUM_IMAGES, -1, dtype=np.int64)
    row_of_index[index] = np.arange(n)
    return arrays["imgs"], row_of_index


def export_npz(path, classes=None, batch_size: int = 8192, compress: bool = True) -> Path:
    """Write the procedural set in the original npz layout (``imgs`` uint8, ``latents_classes``,
    ``latents_values``, and ``metadata`` as a JSON string, which loads without pickle).

    Args:
        classes: optional N×6 subset of the grid (read it back with ``allow_subset=True``);
            the whole grid, in its original order, when None.
    The file is written to a temporary name and renamed, so a crash leaves no partial file.
    """
    path = Path(path)
    ds = DSprites()
    if classes is None:
        classes = ds.index_to_classes(torch.arange(NUM_IMAGES))
    classes = _check_classes(classes).cpu()
    imgs = np.empty((len(classes), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, len(classes), batch_size):
        chunk = classes[start:start + batch_size]
        imgs[start:start + len(chunk)] = ds.images(chunk, dtype=torch.uint8)[:, 0].numpy()
    metadata = {
        "latents_names": list(FACTOR_NAMES),
        "latents_sizes": list(FACTOR_SIZES),
        "latents_possible_values": {n: v.tolist() for n, v in zip(FACTOR_NAMES, factor_values_table())},
        "description": "procedural dSprites rendered by course_lib.data",
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    saver = np.savez_compressed if compress else np.savez
    saver(
        tmp,
        imgs=imgs,
        latents_classes=classes.numpy().astype(np.int64),
        latents_values=ds.factor_values(classes).numpy(),
        metadata=np.array(json.dumps(metadata)),
    )
    os.replace(tmp, path)
    return path
