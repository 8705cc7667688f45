"""Headline figures: the few numbers a notebook reports, collected by ``python -m course_lib run``.

In a notebook::

    from course_lib.report import headline
    headline("test reconstruction (nats/image)", recon, ".1f")
    headline("MIG", result.score, ".3f")

prints ``MIG: 0.412`` and, when the environment variable ``COURSE_HEADLINES`` names a file (the
runner sets it for each notebook), appends one JSON line ``{"name", "value", "text"}`` to that
file; the runner puts these figures in ``runs/<profile>/summary.md`` and ``summary.json``.
"""

from __future__ import annotations

import json
import math
import numbers
import os

ENV_VAR = "COURSE_HEADLINES"


def to_jsonable(value):
    """``value`` as plain Python: tensors and numpy arrays/scalars become floats, ints or
    (nested) lists (a one-element tensor or array becomes its number); tuples become lists. Raises TypeError for anything else that JSON can't hold."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # torch.Tensor, numpy array/scalar
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        plain = value.tolist()
        while isinstance(plain, list) and len(plain) == 1:  # one element: its number
            plain = plain[0]
        return to_jsonable(plain)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    raise TypeError(
        f"a headline value must be a number, string, tensor, array or a list of these, "
        f"got {type(value).__name__}"
    )


def format_value(value, fmt: str | None = None) -> str:
    """``value`` as text: ``fmt`` is a format spec (``".3f"``) or a template (``"{:.1%}"``);
    without one, floats get 4 significant digits."""
    if fmt:
        if "{" in fmt:
            return fmt.format(value)
        if isinstance(value, list):
            return "[" + ", ".join(format(v, fmt) for v in value) + "]"
        return format(value, fmt)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def headline(name: str, value, fmt: str | None = None) -> None:
    """Print ``name: value`` and record it for the run summary (see the module docstring).

    ``value``: a number, a one-element tensor or array, or a list of numbers; ``fmt``: how to
    show it (``".3f"``, ``"{:.1%}"``); the stored value keeps full precision.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a headline needs a non-empty name (a string), got {name!r}")
    value = to_jsonable(value)
    text = format_value(value, fmt)
    print(f"{name}: {text}")
    path = os.environ.get(ENV_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": name, "value": value, "text": text}) + "\n")


def read_headlines(path) -> list[dict]:
    """The records written by :func:`headline` to ``path`` (empty if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
