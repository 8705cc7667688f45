"""Headline figures: the few numbers a notebook reports, collected by ``python -m course_lib run``.

In a notebook::

    from course_lib.report import headline
    headline("test reconstruction (nats/image)", recon, ".1f")
    headline("MIG", result.score, ".3f")

prints ``MIG: 0.412`` and, when the environment variable ``COURSE_HEADLINES`` names a file (the
runner sets it for each notebook), appends one JSON line ``{"name", "value", "text"}`` to that
file; the runner puts these figures in ``runs/<profile>/summary.md`` and ``summary.json``.

The recorded ``name`` is the figure's key in those summaries and in the sweep tables, so it must
not change with the parameters: :func:`headline_key` drops the settings that a printed name
carries (``MIG on 500 images (β=4, |z|=10)`` is recorded as ``MIG on 500 images``) and writes
the name of a papermill parameter in place of its value (the runner puts the parameters in
``COURSE_PARAMETERS``: ``score for beta 4`` with ``BETA = 4`` becomes ``score for beta BETA``).
The printed name is kept as ``label`` when it differs.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re

from .config import HEADLINES_VAR, PARAMETERS_VAR

ENV_VAR = HEADLINES_VAR

# a setting such as ``β=4``, ``|z| = 10`` or ``reduction=mean``, with the separator before it
_SETTING = re.compile(r"\s*[,;]?\s*[^\s=(),;:]+\s*=\s*[^\s(),;:]+")


def to_jsonable(value):
    """``value`` as plain Python: tensors and numpy arrays/scalars become floats, ints or
    (nested) lists (a one-element tensor or array becomes its number); tuples become lists.
    Raises TypeError for anything else that JSON can't hold."""
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


_NEGATIVE_ZERO = re.compile(r"-(?=0(?:\.0*)?(?:e[+-]?0+)?%?$)")


def _unsigned_zero(text: str) -> str:
    """``-0.000`` (a small negative number rounded to zero) as ``0.000``."""
    return _NEGATIVE_ZERO.sub("", text)


def format_value(value, fmt: str | None = None) -> str:
    """``value`` as text: ``fmt`` is a format spec (``".3f"``) or a template (``"{:.1%}"``);
    without one, floats get 4 significant digits. A value that rounds to zero has no sign.
    Lists and dicts are written element by element with the same rule (``{1: 105.1, 2: 77.36}``)."""
    if fmt and "{" in fmt:
        return fmt.format(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v, fmt)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v, fmt) for v in value) + "]"
    if fmt:
        return _unsigned_zero(format(value, fmt))
    if isinstance(value, float):
        return _unsigned_zero(f"{value:.4g}") if math.isfinite(value) else str(value)
    return str(value)


def _value_texts(value) -> list[str]:
    """How a parameter's value may read in a name: ``4``, ``4.0``; ``0.001``; ``cpu``."""
    if isinstance(value, (bool, str)):
        return [str(value)] if str(value).strip() else []
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return []
    texts = {str(value), format(value, "g")}
    if float(value).is_integer():
        texts |= {str(int(value)), str(float(value))}
    return sorted(texts, key=len, reverse=True)  # 4.0 before 4


def _tidy(text: str) -> str:
    """``text`` without the empty brackets and dangling separators that removals leave."""
    text = re.sub(r"\s*\(\s*[,;]?\s*\)", "", text)
    text = re.sub(r"\(\s*[,;]\s*", "(", text)
    text = re.sub(r"\s+([,;:)])", r"\1", text)
    text = re.sub(r"\s{2,}", " ", text)
    return text.strip(" ,;")


def headline_key(name: str, parameters: dict | None = None) -> str:
    """``name`` without the values that change from run to run (see the module docstring):
    its ``symbol=value`` settings are dropped, and each value of ``parameters`` that stands as
    a word of its own is replaced by the parameter's name. A name that would be left empty
    stays as it is."""
    key = _SETTING.sub("", name)
    for param, value in (parameters or {}).items():
        for text in _value_texts(value):
            key = re.sub(rf"(?<![\w.]){re.escape(text)}(?![\w.])", param, key)
    key = _tidy(key)
    return key or name


def _run_parameters() -> dict:
    try:
        parameters = json.loads(os.environ.get(PARAMETERS_VAR) or "{}")
    except ValueError:
        return {}
    return parameters if isinstance(parameters, dict) else {}


def _record_name(label: str, path) -> str:
    """The name to record for ``label``: its key, unless an earlier figure of this run with
    another label has that key (then the label itself, so that both figures are kept)."""
    key = headline_key(label, _run_parameters())
    taken = {r["name"]: r.get("label", r["name"]) for r in read_headlines(path)}
    return label if taken.get(key, label) != label else key


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
        record = {"name": _record_name(name, path), "value": value, "text": text}
        if record["name"] != name:
            record["label"] = name
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_headlines(path) -> list[dict]:
    """The records written by :func:`headline` to ``path`` (empty if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
