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


def test_setting_keeps_zero_and_refuses_what_is_not_legal():
    assert profiles.setting("BETA", None, 4.0, minimum=0) == 4.0
    assert profiles.setting("BETA", 0, 4.0, minimum=0) == 0.0  # 0 is a value, not "default"
    assert isinstance(profiles.setting("BETA", 0, 4.0), float)
    assert profiles.setting("STEPS", 300.0, 2_000, minimum=1) == 300
    assert isinstance(profiles.setting("STEPS", 300.0, 2_000), int)
    assert profiles.setting("KS", [0, 5], (5, 10), minimum=0) == (0, 5)
    assert profiles.setting("Q_WITH", "discriminator", "generator") == "discriminator"
    for name, value, default, bounds, message in [
        ("STEPS", 0, 2_000, {"minimum": 1}, "STEPS must be at least 1, got 0"),
        ("STEPS", 2.5, 2_000, {}, "STEPS must be a whole number, got 2.5"),
        ("STEPS", "10", 2_000, {}, "STEPS must be a whole number, got '10'"),
        ("STEPS", True, 2_000, {}, "STEPS must be a whole number"),
        ("LR", 0, 1e-3, {"positive": True}, "LR must be > 0, got 0.0"),
        ("LR", float("nan"), 1e-3, {"positive": True}, "LR must be a finite number"),
        ("BETA", -1, 4.0, {"minimum": 0}, "BETA must be at least 0"),
        ("POSX_THRESHOLD", 33, 16, {"minimum": 1, "maximum": 32}, "at most 32"),
        ("KS", [], (5, 10), {}, "KS must hold at least one value"),
        ("KS", 5, (5, 10), {}, "KS must be a list of values"),
        ("KS", [5, -1], (5, 10), {"minimum": 0}, r"KS\[1\] must be at least 0"),
        ("Q_WITH", 1, "generator", {}, "Q_WITH must be a string"),
    ]:
        with pytest.raises(ValueError, match=message):
            profiles.setting(name, value, default, **bounds)


def test_settings_picks_the_profiles_default():
    param = profiles.settings("smoke")
    assert param("STEPS", None, smoke=3, quick=2_000, full=300_000) == 3
    assert param("STEPS", 0, smoke=3, quick=2_000, full=300_000) == 0
    assert profiles.settings("full")("STEPS", None, smoke=3, quick=2_000, full=300_000) == 300_000
    with pytest.raises(TypeError, match="either a default"):
        param("STEPS", None, 5, smoke=3, quick=2_000, full=300_000)
    with pytest.raises(TypeError, match="give a default"):
        param("STEPS", None, smoke=3)
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.settings("fast")


def _resolution_code(source: str) -> tuple[dict, str]:
    """The parameters cell of a notebook source (as a dict) and its resolution lines."""
    import ast
    import re

    cell = source.split('# %% tags=["parameters"]\n', 1)[1].split("\n# %%", 1)[0]
    values = {}
    for node in ast.parse(cell).body:
        values[node.targets[0].id] = ast.literal_eval(node.value)
    lines = source.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("PROFILE = profiles.check_profile("))
    stop = next(i for i in range(start, len(lines)) if re.match(r"^(print\(|$|# %%)", lines[i]))
    return values, "from course_lib import profiles\n" + "\n".join(lines[start:stop])


@pytest.mark.parametrize("notebook", sorted(p.name for p in __import__("pathlib").Path(
    __file__).resolve().parent.parent.joinpath("solutions").glob("0*.py")))
def test_every_notebook_parameter_left_at_none_is_resolved_and_zero_is_kept(notebook):
    from pathlib import Path

    source = (Path(__file__).resolve().parent.parent / "solutions" / notebook).read_text()
    values, code = _resolution_code(source)
    defaults = dict(values)
    exec(code, defaults)
    none_is_a_choice = {"PROFILE", "MODELS", "THREADS"}  # None documented as "every model", "1 thread"
    for name, value in values.items():
        if value is None and name not in none_is_a_choice:
            assert f'{name} = param("{name}", {name},' in code, (
                f"{notebook}: {name} defaults to None but is not resolved by param(...)")
            assert defaults[name] is not None
    for name in ("BETA", "GAMMA", "FACTOR_GAMMA", "LAMBDA", "LAMBDA_CAT", "C_START"):
        if name in values and values[name] is None:
            given = dict(values, **{name: 0})
            exec(code, given)
            assert given[name] == 0.0, f"{notebook}: {name} = 0 became {given[name]}"
    for name in ("STEPS", "NUM_LATENTS", "BATCH_SIZE", "POSX_THRESHOLD"):
        if name in values and values[name] is None:
            with pytest.raises(ValueError, match=f"{name} must be at least 1, got 0"):
                exec(code, dict(values, **{name: 0}))
