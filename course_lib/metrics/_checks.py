"""Input checks and small helpers shared by the metrics.

Every metric takes *batch-first* arrays: ``codes`` of shape ``[N, D]`` (N samples, D code
dimensions, float) and ``factors`` of shape ``[N, K]`` (K ground-truth factors, integer class
indices). disentanglement_lib stores the same arrays transposed, ``[D, N]`` and ``[K, N]``:
transpose them (``mus.T``) before passing them here.

NumPy arrays and torch tensors (on any device) are both accepted; the maths runs in NumPy
unless a function says otherwise.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import torch


def to_numpy(x, name: str) -> np.ndarray:
    """``x`` (array-like or torch tensor, any device) as a NumPy array; a clear error otherwise."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}") from err


def check_codes(codes, name: str = "codes", min_samples: int = 2) -> np.ndarray:
    """Validate a representation and return it as a float64 array of shape ``[N, D]``.

    Raises ValueError when ``codes`` is not 2-D, is empty, holds NaN or infinity, or has fewer
    than ``min_samples`` rows.
    """
    arr = to_numpy(codes, name)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must hold numbers (float, shape [N, D]); got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = (
            f" For a single code dimension pass {name}.reshape(-1, 1)."
            if arr.ndim == 1
            else ""
        )
        raise ValueError(
            f"{name} must be 2-D with shape [N samples, D code dimensions]; got shape "
            f"{tuple(arr.shape)}.{hint} (disentanglement_lib's arrays are [D, N]: transpose them.)"
        )
    n, d = arr.shape
    if d == 0:
        raise ValueError(f"{name} has no code dimensions (shape {tuple(arr.shape)}); expected D >= 1")
    if n < min_samples:
        raise ValueError(f"{name} has {n} samples; this metric needs at least {min_samples}")
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise ValueError(
            f"{name} contains NaN or infinite values in {bad_rows.size} of {n} rows "
            f"(first at row {bad_rows[0]}); a representation must be finite - check the model "
            "for a diverged training run"
        )
    return arr


def check_factors(factors, name: str = "factors", min_samples: int = 2) -> np.ndarray:
    """Validate ground-truth factors and return them as an int64 array of shape ``[N, K]``.

    Factors are class indices (any integers; they need not start at 0). Float or other
    non-integer dtypes raise ValueError: convert with ``factors.astype(int)`` if the values are
    whole numbers, or discretise continuous factors first.
    """
    arr = to_numpy(factors, name)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must hold integer class indices (shape [N, K]); got dtype {arr.dtype}. "
            f"If the values are whole numbers use {name}.astype(int) (or .long() for a tensor); "
            "discretise continuous factors first"
        )
    if arr.ndim != 2:
        hint = f" For a single factor pass {name}.reshape(-1, 1)." if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D with shape [N samples, K factors]; got shape "
            f"{tuple(arr.shape)}.{hint}"
        )
    n, k = arr.shape
    if k == 0:
        raise ValueError(f"{name} has no factors (shape {tuple(arr.shape)}); expected K >= 1")
    if n < min_samples:
        raise ValueError(f"{name} has {n} samples; this metric needs at least {min_samples}")
    return arr.astype(np.int64, copy=False)


def check_pair(codes, factors, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``codes`` ``[N, D]`` and ``factors`` ``[N, K]`` together (same N)."""
    c = check_codes(codes, min_samples=min_samples)
    f = check_factors(factors, min_samples=min_samples)
    if c.shape[0] != f.shape[0]:
        raise ValueError(
            f"codes and factors must describe the same samples: codes has {c.shape[0]} rows, "
            f"factors has {f.shape[0]} (expected codes [N, D] and factors [N, K] with equal N)"
        )
    return c, f


def compact_labels(column: np.ndarray) -> tuple[np.ndarray, int]:
    """Map an integer column to labels ``0..V-1`` (V = number of distinct values)."""
    lo = int(column.min())
    hi = int(column.max())
    if hi - lo < 4 * column.size + 1024:
        # Dense range: a presence table is faster than sorting.
        shifted = column - lo
        present = np.bincount(shifted, minlength=hi - lo + 1) > 0
        lookup = np.cumsum(present) - 1
        return lookup[shifted], int(present.sum())
    values, labels = np.unique(column, return_inverse=True)
    return labels.reshape(-1), values.size


def check_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as a Python int, or a ValueError saying what was expected.

    Counts (numbers of samples, votes, bins, batch sizes...) must be integers: Python ints,
    NumPy integers or integer 0-d tensors. Floats are refused, even whole ones such as ``100.0``,
    and are never rounded or truncated (``2.7`` does not become 2); bools are refused too.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got the bool {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__}); "
            f"counts are not rounded - pass int({name}) if you mean a whole number"
        ) from None
    if count < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {count}")
    return count


def check_seed(seed, name: str = "seed") -> int:
    """A random seed as a Python int >= 0 (floats and bools are refused, never truncated)."""
    return check_count(seed, name, minimum=0)


def check_factor_sizes(factor_sizes: Sequence[int]) -> tuple[int, ...]:
    """Validate a sequence of factor sizes: each an integer >= 1 (floats are refused, not truncated)."""
    if isinstance(factor_sizes, (str, bytes)):
        raise ValueError(f"factor_sizes must be a sequence of ints, got {factor_sizes!r}")
    try:
        items = list(factor_sizes)
    except TypeError as err:
        raise ValueError(f"factor_sizes must be a sequence of ints, got {factor_sizes!r}") from err
    if not items:
        raise ValueError("factor_sizes must be a non-empty sequence of ints >= 1, got an empty one")
    return tuple(check_count(s, f"factor_sizes[{k}]", 1) for k, s in enumerate(items))


def make_generator(generator: torch.Generator | None, seed: int) -> torch.Generator:
    """``generator`` if given, else a CPU ``torch.Generator`` seeded with ``seed`` (an int >= 0)."""
    seed = check_seed(seed)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    return torch.Generator().manual_seed(seed)


def sample_classes(n: int, factor_sizes: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """``n`` uniform class tuples: a CPU LongTensor ``[n, K]`` with column k in ``0..sizes[k]-1``."""
    cols = [torch.randint(int(s), (n,), generator=generator) for s in factor_sizes]
    return torch.stack(cols, dim=1)


def call_codes_of(codes_of, classes: torch.Tensor, chunk: int = 65536) -> np.ndarray:
    """Evaluate ``codes_of(classes)`` in chunks of rows and return float64 ``[N, D]``."""
    parts = []
    for start in range(0, classes.shape[0], chunk):
        part = classes[start : start + chunk]
        out = to_numpy(codes_of(part), "codes_of(classes)")
        if out.ndim != 2 or out.shape[0] != part.shape[0]:
            raise ValueError(
                f"codes_of must return codes of shape [N, D] for classes of shape [N, K]; for "
                f"{part.shape[0]} class rows it returned shape {tuple(out.shape)}"
            )
        parts.append(out.astype(np.float64, copy=False))
    codes = np.concatenate(parts, axis=0)
    if not np.isfinite(codes).all():
        raise ValueError("codes_of returned NaN or infinite codes; a representation must be finite")
    return codes
