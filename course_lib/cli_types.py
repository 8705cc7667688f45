"""Argument types for the course's command line: numbers are checked, never silently coerced.

``argparse`` calls them on the text of an option; a bad value becomes one line
``error: argument --steps: expected a positive integer, got '0'`` (exit status 2).
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (``"2.5"`` and ``"0"`` are refused)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number ≥ 0."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text, float, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0."""
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def device_name(text: str) -> str:
    """A device that exists here: ``auto``, ``cpu``, ``cuda[:N]`` (with CUDA), ``mps`` (with MPS)."""
    from .train import choose_device

    try:
        choose_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text
