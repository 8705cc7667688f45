"""Argument types for the course's command line: numbers are checked, never silently coerced.

``argparse`` calls them on the text of an option; a bad value becomes one line
``error: argument --steps: expected a positive integer, got '0'`` (exit status 2).
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind, what: str, low, strict: bool):
    """``text`` as a ``kind`` (int or float) that is finite and ≥ ``low`` (> ``low`` if strict)."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if (isinstance(value, float) and not math.isfinite(value)) or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (``"2.5"`` and ``"0"`` are refused)."""
    return _number(text, int, "a positive integer", 1, strict=False)


def non_negative_int(text: str) -> int:
    """A whole number ≥ 0."""
    return _number(text, int, "an integer >= 0", 0, strict=False)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, "a positive number", 0.0, strict=True)


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0."""
    return _number(text, float, "a number >= 0", 0.0, strict=False)


def device_name(text: str) -> str:
    """A device that exists here: ``auto``, ``cpu``, ``cuda[:N]`` (with CUDA), ``mps`` (with MPS)."""
    from ..train import choose_device

    try:
        choose_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text
