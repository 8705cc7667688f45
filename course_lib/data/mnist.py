"""MNIST at 32×32 (seed 004 resizes its 28×28 digits to 32×32), with an offline fallback.

``images, labels = load_mnist()`` tries torchvision's MNIST (which downloads it once into
``root``); when torchvision cannot be imported or the download fails (no network, a broken
build), it falls back to the 1,797 8×8 digits that scikit-learn ships inside its package,
resized to 32×32. A printed line always says which one is in use, and the returned tuple
carries it as ``.source`` ("torchvision-mnist" or "sklearn-digits").

The fallback is a different, much smaller and blurrier data set: numbers obtained on it are
not comparable with the seed's MNIST numbers, and notebooks say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import data_dir

SOURCES = ("auto", "torchvision", "digits")
SIZE = 32
#: Seconds a connection of MNIST's download may stay silent before it counts as failed (a
#: network that drops packets would otherwise hang the notebook; "auto" then falls back).
DOWNLOAD_TIMEOUT = 20.0


class MnistData(tuple):
    """``(images, labels)``: images float N×1×32×32 in [0, 1], labels LongTensor N (0-9).

    Unpacks like a pair; ``.source`` names the data set actually loaded and ``.message`` the
    line that was printed.
    """

    def __new__(cls, images, labels, source, message):
        obj = super().__new__(cls, (images, labels))
        obj.source, obj.message = source, message
        return obj

    @property
    def images(self) -> torch.Tensor:
        return self[0]

    @property
    def labels(self) -> torch.Tensor:
        return self[1]


def default_root() -> Path:
    """``$COURSE_DATA/mnist`` if set, else ``~/.cache/course_lib/mnist``."""
    return data_dir() / "mnist"


def resize(images: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """N×1×h×w in [0, 1] → N×1×size×size in [0, 1] (bilinear, clamped)."""
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"expected grey images N×1×h×w, got shape {tuple(images.shape)}")
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return out.clamp_(0.0, 1.0)


def _torchvision_mnist(root: Path, train: bool, download: bool):
    import socket

    import torchvision  # may be missing or broken: the caller catches everything

    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)   # urllib's connections, during the download only
    try:
        ds = torchvision.datasets.MNIST(str(root), train=train, download=download)
    finally:
        socket.setdefaulttimeout(before)
    images = torch.as_tensor(ds.data).unsqueeze(1).float() / 255.0     # N×1×28×28
    labels = torch.as_tensor(ds.targets).long()
    return images, labels


def digits_split(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8×8 digits in [0, 1] (N×1×8×8) and labels; every 5th image (index % 5 == 0,
    360 images) is the test split, the other 1,437 the training split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(d.target, dtype=torch.long)
    keep = (torch.arange(len(labels)) % 5 != 0) if train else (torch.arange(len(labels)) % 5 == 0)
    return images[keep], labels[keep]


def load_mnist(train: bool = True, *, source: str = "auto", root: str | os.PathLike | None = None,
               download: bool = True, size: int = SIZE, verbose: bool = True) -> MnistData:
    """Hand-written digits as float images N×1×size×size in [0, 1] and their labels.

    Args:
        train: the training split (MNIST: 60,000 images; digits: 1,437) or the test split
            (10,000; 360).
        source: "auto" (torchvision's MNIST if it can be loaded, else scikit-learn's digits),
            "torchvision" (MNIST or a clear error) or "digits".
        root: folder of torchvision's download (default :func:`default_root`).
        download: let torchvision download MNIST when it is not in ``root``.
        size: side of the returned images in pixels (32 as in seed 004).
        verbose: print which data set is in use (the message is also in ``.message``).
    Returns:
        :class:`MnistData` ``(images, labels)`` with ``.source`` and ``.message``.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: expected one of {SOURCES}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8 (pixels), got {size!r}")
    split = "training" if train else "test"
    reason = None
    if source in ("auto", "torchvision"):
        root = Path(root) if root is not None else default_root()
        try:
            images, labels = _torchvision_mnist(root, train, download)
        except Exception as err:  # ImportError, download/network errors, broken builds
            reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            if "torchvision::" in reason:  # its compiled operators failed to register
                reason += ": this torchvision build does not match the installed torch"
            if source == "torchvision":
                raise RuntimeError(
                    f"torchvision's MNIST could not be loaded ({reason}); install a working torchvision "
                    "with network access, or use source='digits' (scikit-learn's 8×8 digits)") from err
        else:
            message = (f"MNIST: using torchvision's MNIST ({split} split, {len(labels)} images), "
                       f"resized 28×28 → {size}×{size}")
            if verbose:
                print(message)
            return MnistData(resize(images, size), labels, "torchvision-mnist", message)
    images, labels = digits_split(train)
    why = f" because torchvision's MNIST is unavailable ({reason})" if reason else ""
    message = (f"MNIST: using scikit-learn's 8×8 digits instead of MNIST{why}: {split} split, "
               f"{len(labels)} images, resized 8×8 → {size}×{size}. Numbers are not comparable "
               "with MNIST results.")
    if verbose:
        print(message)
    return MnistData(resize(images, size), labels, "sklearn-digits", message)
