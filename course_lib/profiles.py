"""Run profiles: ``smoke`` (CI, seconds), ``quick`` (a laptop CPU, minutes), ``full`` (a GPU,
the papers' protocol).

A notebook reads its profile once, in its parameters cell::

    PROFILE = profiles.default_profile()          # $COURSE_PROFILE, else "quick"
    STEPS = profiles.pick(PROFILE, smoke=20, quick=3_000, full=300_000)
"""

from __future__ import annotations

import os

PROFILES = ("smoke", "quick", "full")
DEFAULT_PROFILE = "quick"
ENV_VAR = "COURSE_PROFILE"


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
