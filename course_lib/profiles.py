"""Run profiles: ``smoke`` (CI, seconds), ``quick`` (a laptop CPU, minutes), ``full`` (a GPU,
the papers' protocol).

A notebook reads its profile once, in its parameters cell, and resolves every parameter left
at ``None`` to the profile's default with :func:`setting` (a value that is given, 0 included,
is kept and checked)::

    PROFILE = profiles.check_profile(PROFILE or profiles.default_profile())
    STEPS = profiles.setting("STEPS", STEPS, profiles.pick(PROFILE, smoke=20, quick=3_000, full=300_000), minimum=1)
"""

from __future__ import annotations

import math
import numbers
import os

from .config import PROFILE_VAR

PROFILES = ("smoke", "quick", "full")
DEFAULT_PROFILE = "quick"
ENV_VAR = PROFILE_VAR


def check_profile(name: str) -> str:
    """Return ``name`` if it is a known profile, else raise a ValueError that lists them."""
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: expected one of {', '.join(PROFILES)} "
            f"(set it with PROFILE=... or the {ENV_VAR} environment variable)"
        )
    return name


def default_profile() -> str:
    """The profile named by ``$COURSE_PROFILE``, or ``quick`` when it is unset or empty."""
    return check_profile(os.environ.get(ENV_VAR) or DEFAULT_PROFILE)


def pick(profile: str, *, smoke, quick, full):
    """Choose the value that belongs to ``profile``: ``pick("quick", smoke=1, quick=2, full=3) == 2``."""
    return {"smoke": smoke, "quick": quick, "full": full}[check_profile(profile)]


def setting(name: str, value, default, *, minimum=None, maximum=None, positive: bool = False):
    """A notebook parameter: ``default`` when ``value`` is None, else ``value``, checked.

    None is the only value that means "the profile's default": 0, 0.0 and empty tuples are
    kept (and refused by the bounds where they are not legal). The type follows ``default``:
    an int default needs a whole number (2.0 is taken as 2, 2.5 is refused), a float default
    any finite real number, a tuple default a non-empty sequence of such numbers, each checked.

    Args:
        name: the parameter's name, for the error message.
        minimum, maximum: inclusive bounds; ``positive``: the value must be > 0.
    Raises:
        ValueError: saying which parameter, what it got and what was expected.
    """
    if value is None:
        return default
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{name} must be a list of values like {list(default)}, got {value!r}")
        items = tuple(value)
        if not items:
            raise ValueError(f"{name} must hold at least one value, got {value!r}")
        return tuple(setting(f"{name}[{i}]", v, default[0], minimum=minimum, maximum=maximum,
                             positive=positive) for i, v in enumerate(items))
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string like {default!r}, got {value!r}")
        return value
    whole = isinstance(default, int) and not isinstance(default, bool)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        kind = "a whole number" if whole else "a finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if whole:
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
    return value


_UNSET = object()


def settings(profile: str):
    """The parameter resolver of a notebook in ``profile``::

        param = profiles.settings(PROFILE)
        NUM_LATENTS = param("NUM_LATENTS", NUM_LATENTS, 10, minimum=1)
        STEPS = param("STEPS", STEPS, smoke=3, quick=2_000, full=300_000, minimum=1)

    ``param(name, value, default, **bounds)`` is :func:`setting`; with ``smoke=``, ``quick=``,
    ``full=`` instead of ``default`` the default is the profile's (:func:`pick`).
    """
    check_profile(profile)

    def param(name, value, default=_UNSET, *, smoke=_UNSET, quick=_UNSET, full=_UNSET, **bounds):
        per_profile = (smoke, quick, full)
        if default is _UNSET:
            if _UNSET in per_profile:
                raise TypeError(f"{name}: give a default, or smoke=, quick= and full=")
            default = pick(profile, smoke=smoke, quick=quick, full=full)
        elif any(v is not _UNSET for v in per_profile):
            raise TypeError(f"{name}: give either a default or smoke=/quick=/full=, not both")
        return setting(name, value, default, **bounds)

    return param
