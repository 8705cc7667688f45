"""Run profiles: smoke / quick / full."""

from __future__ import annotations

import pytest

from course_lib import profiles


def test_profiles_and_pick():
    assert profiles.PROFILES == ("smoke", "quick", "full")
    values = {"smoke": 1, "quick": 20, "full": 300}
    for name, value in values.items():
        assert profiles.pick(name, **values) == value
    assert profiles.pick("full", smoke=None, quick=[1], full=(2, 3)) == (2, 3)
    with pytest.raises(TypeError):
        profiles.pick("quick", smoke=1, quick=2)  # every profile needs its value


def test_unknown_profile_lists_the_profiles():
    for bad in ("fast", "Quick", ""):
        with pytest.raises(ValueError, match=r"unknown profile .*smoke, quick, full.*COURSE_PROFILE"):
            profiles.check_profile(bad)
    with pytest.raises(ValueError, match="smoke, quick, full"):
        profiles.pick("medium", smoke=1, quick=2, full=3)


def test_default_profile_reads_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert profiles.default_profile() == "quick"
    monkeypatch.setenv("COURSE_PROFILE", "")
    assert profiles.default_profile() == "quick"
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert profiles.default_profile() == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert profiles.default_profile() == "full"
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="unknown profile 'turbo'"):
        profiles.default_profile()
