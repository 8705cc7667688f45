"""Representations with a known answer, for testing metrics ("how not to measure").

Each representation is a deterministic function of the ground-truth classes,
``codes_of(classes [N, K] int) -> codes [N, D] float``, so it can be given to the metrics that
take a fixed sample (``mig(codes_of(f), f)``) and to those that generate their own batches
(:func:`~course_lib.metrics.factor_vae_score`, :func:`~course_lib.metrics.beta_vae_score`).
"Random" codes are a hash of the class tuple and a seed: the same classes always give the same
codes, with no global random state.

Kinds (see :func:`synthetic_representation`):

- ``"perfect"``: code k is factor k scaled to [0, 1] (one code per factor).
- ``"rescaled"``: ``perfect`` with its dimensions permuted and each rescaled by an affine map
  (random scale in ±[0.1, 10], random shift).
- ``"monotone"``: ``perfect`` passed through a different strictly increasing non-affine map
  per dimension (``exp(3z)``, ``z**3``, ``tanh``...).
- ``"mixed"``: ``perfect`` with two factors' codes rotated by ``angle`` (45° mixes them fully).
- ``"redundant"``: ``perfect`` plus a copy of one factor's code.
- ``"missing"``: ``perfect`` without one factor's code.
- ``"merged"``: one code holds two factors at once (``pair`` = (a, b): code a is the joint value
  ``(v_a · |v_b| + v_b)`` scaled to [0, 1], from which both can be read exactly) and code b is
  dropped: every factor is still carried, but not one per code.
- ``"noise"``: codes independent of the factors (a hash of the class tuple, uniform in [0, 1]).

``noise=σ`` adds hashed Gaussian noise of standard deviation σ to any kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._checks import check_count, check_factor_sizes, check_seed, to_numpy

KINDS = ("perfect", "rescaled", "monotone", "mixed", "redundant", "missing", "merged", "noise")

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def grid_classes(factor_sizes: Sequence[int]) -> np.ndarray:
    """Every combination of factor values, ``[prod(factor_sizes), K]`` int64, last factor fastest."""
    sizes = check_factor_sizes(factor_sizes)
    mesh = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.int64)


def classes_to_index(classes, factor_sizes: Sequence[int]) -> np.ndarray:
    """Mixed-radix index of each class tuple (``grid_classes(sizes)[i]`` has index ``i``)."""
    sizes = check_factor_sizes(factor_sizes)
    c = to_numpy(classes, "classes").astype(np.int64)
    if c.ndim != 2 or c.shape[1] != len(sizes):
        raise ValueError(f"classes must have shape [N, {len(sizes)}], got {tuple(c.shape)}")
    if (c < 0).any() or (c >= np.array(sizes)).any():
        raise ValueError(f"classes out of range for factor sizes {sizes}")
    index = np.zeros(c.shape[0], dtype=np.int64)
    for k, s in enumerate(sizes):
        index = index * s + c[:, k]
    return index


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_uniform(index, num: int, seed: int = 0) -> np.ndarray:
    """Deterministic pseudo-random numbers in (0, 1), ``[N, num]``, from integer keys ``[N]``.

    The same (index, column, seed) always gives the same number: a function of the data, not a
    draw from a global random state.
    """
    num = check_count(num, "num", 1)
    seed = check_seed(seed)
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        salt = _splitmix64(np.array([seed], dtype=np.int64))[0]
        keys = idx[:, None] * np.uint64(num) + np.arange(num, dtype=np.uint64)[None, :]
        h = _splitmix64(keys ^ salt)
    # 53 random bits -> a double in (0, 1)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)


def hash_normal(index, num: int, seed: int = 0) -> np.ndarray:
    """Deterministic standard normal numbers ``[N, num]`` (Box-Muller on :func:`hash_uniform`)."""
    num = check_count(num, "num", 1)
    u = hash_uniform(index, 2 * num, seed)
    return np.sqrt(-2.0 * np.log(u[:, :num])) * np.cos(2 * math.pi * u[:, num:])


class SyntheticRepresentation:
    """A callable ``classes [N, K] -> codes [N, D]`` (float64 NumPy); see the module docstring."""

    def __init__(
        self,
        kind: str,
        factor_sizes: Sequence[int],
        *,
        pair: tuple[int, int] | None = None,
        angle: float = math.pi / 4,
        noise: float = 0.0,
        seed: int = 0,
    ):
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind = kind
        self.factor_sizes = check_factor_sizes(factor_sizes)
        varying = [k for k, s in enumerate(self.factor_sizes) if s > 1]
        if pair is None:
            if len(varying) < 2 and kind in ("mixed", "merged"):
                raise ValueError(f"{kind!r} needs two factors with more than one value")
            pair = tuple(varying[:2]) if len(varying) >= 2 else (varying[0], varying[0])
        self.pair = tuple(check_count(p, "pair index", 0) for p in pair)
        if len(self.pair) != 2 or max(self.pair) >= len(self.factor_sizes):
            raise ValueError(f"pair must be two factor indices in 0..{len(self.factor_sizes) - 1}, got {pair!r}")
        if kind == "merged" and self.pair[0] == self.pair[1]:
            raise ValueError(f"'merged' needs two different factors in pair, got {pair!r}")
        self.angle = float(angle)
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)
        self.seed = check_seed(seed)
        k = len(self.factor_sizes)
        rng = np.random.default_rng(self.seed)
        self._perm = rng.permutation(k)
        self._scale = rng.uniform(0.1, 10.0, size=k) * rng.choice([-1.0, 1.0], size=k)
        self._shift = rng.normal(0.0, 5.0, size=k)

    @property
    def num_latents(self) -> int:
        k = len(self.factor_sizes)
        return {"redundant": k + 1, "missing": k - 1, "merged": k - 1}.get(self.kind, k)

    def __call__(self, classes) -> np.ndarray:
        index = classes_to_index(classes, self.factor_sizes)
        c = to_numpy(classes, "classes").astype(np.float64)
        span = np.maximum(np.array(self.factor_sizes, dtype=np.float64) - 1.0, 1.0)
        z = c / span  # perfect: [N, K] in [0, 1]
        a, b = self.pair
        if self.kind == "rescaled":
            z = z[:, self._perm] * self._scale + self._shift
        elif self.kind == "monotone":
            maps = (lambda x: np.exp(3 * x), lambda x: x**3, np.tanh, lambda x: np.log1p(9 * x),
                    lambda x: x + 0.3 * np.sin(2 * x))
            z = np.stack([maps[j % len(maps)](z[:, j]) for j in range(z.shape[1])], axis=1)
        elif self.kind == "mixed":
            ca, sa = math.cos(self.angle), math.sin(self.angle)
            za, zb = z[:, a].copy(), z[:, b].copy()
            z[:, a], z[:, b] = ca * za - sa * zb, sa * za + ca * zb
        elif self.kind == "redundant":
            z = np.concatenate([z, z[:, a : a + 1]], axis=1)
        elif self.kind == "missing":
            z = np.delete(z, a, axis=1)
        elif self.kind == "merged":
            size_b = self.factor_sizes[b]
            joint = c[:, a] * size_b + c[:, b]                       # one value per (v_a, v_b)
            z[:, a] = joint / max(self.factor_sizes[a] * size_b - 1, 1)
            z = np.delete(z, b, axis=1)
        elif self.kind == "noise":
            z = hash_uniform(index, z.shape[1], self.seed + 1)
        if self.noise > 0:
            z = z + self.noise * hash_normal(index, z.shape[1], self.seed + 2)
        return z

    def __repr__(self) -> str:
        return (f"SyntheticRepresentation({self.kind!r}, {self.factor_sizes}, pair={self.pair}, "
                f"noise={self.noise}, seed={self.seed})")


def synthetic_representation(kind: str, factor_sizes: Sequence[int], **kwargs) -> SyntheticRepresentation:
    """Build a representation with a known answer; ``kwargs``: ``pair``, ``angle``, ``noise``, ``seed``."""
    return SyntheticRepresentation(kind, factor_sizes, **kwargs)
