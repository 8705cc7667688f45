"""Headline figures (course_lib.report)."""

import json
import math

import numpy as np
import pytest
import torch

from course_lib import report


def test_headline_prints_and_appends_json_lines(tmp_path, monkeypatch, capsys):
    path = tmp_path / "h.jsonl"
    monkeypatch.setenv(report.ENV_VAR, str(path))
    report.headline("MIG", torch.tensor(0.41234), ".3f")
    report.headline("steps", np.int64(300))
    report.headline("KL per latent (nats)", torch.tensor([1.5, 0.25]), ".2f")
    assert capsys.readouterr().out.splitlines() == [
        "MIG: 0.412", "steps: 300", "KL per latent (nats): [1.50, 0.25]"]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in records] == ["MIG", "steps", "KL per latent (nats)"]
    assert math.isclose(records[0]["value"], 0.41234, rel_tol=1e-6)  # full precision kept
    assert records[1]["value"] == 300 and isinstance(records[1]["value"], int)
    assert records[2]["value"] == [1.5, 0.25]
    assert report.read_headlines(path) == records


def test_headline_without_the_variable_only_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(report.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    report.headline("accuracy", 0.91734, "{:.1%}")
    assert capsys.readouterr().out == "accuracy: 91.7%\n"
    assert list(tmp_path.iterdir()) == []
    assert report.read_headlines(tmp_path / "none.jsonl") == []


def test_to_jsonable():
    assert report.to_jsonable(np.array([[2.5]])) == 2.5
    assert report.to_jsonable((1, np.float32(0.5))) == [1, 0.5]
    assert report.to_jsonable({"a": torch.arange(3)}) == {"a": [0, 1, 2]}
    assert report.format_value(1 / 3) == "0.3333"


@pytest.mark.parametrize("name, value, error", [
    ("", 1.0, ValueError), (None, 1.0, ValueError), ("x", object(), TypeError)])
def test_headline_bad_input(name, value, error):
    with pytest.raises(error):
        report.headline(name, value)


@pytest.mark.parametrize("label, key", [
    ("MIG on 500 images (β=4, |z|=10)", "MIG on 500 images"),
    ("β-VAE reconstruction (nats/image), β=0.5", "β-VAE reconstruction (nats/image)"),
    ("AE reconstruction error, D=10 (squared pixels/image)",
     "AE reconstruction error (squared pixels/image)"),
    ("InfoGAN K=2: categorical code accuracy", "InfoGAN: categorical code accuracy"),
    ("β-TCVAE (β = 6) MIG after 300 steps", "β-TCVAE MIG after 300 steps"),
    ("MIG (β=4, 500 images)", "MIG (500 images)"),
    ("notebook 03 time (s)", "notebook 03 time (s)"),
    ("β=4", "β=4"),  # nothing would be left: the name stays
])
def test_headline_key_drops_settings(label, key):
    assert report.headline_key(label) == key


def test_headline_key_names_the_parameters_instead_of_their_values():
    params = {"BETA": 4, "SEED": 0, "LR": 1e-3, "DEVICE": "cpu", "PROFILE": "smoke"}
    assert report.headline_key("MIG at beta 4.0, seed 0 on cpu", params) == \
        "MIG at beta BETA, seed SEED on DEVICE"
    assert report.headline_key("loss with lr 0.001 (smoke)", params) == "loss with lr LR (PROFILE)"
    assert report.headline_key("notebook 03 time, 40 s", params) == "notebook 03 time, 40 s"


def test_headline_records_a_name_without_parameter_values(tmp_path, monkeypatch, capsys):
    path = tmp_path / "h.jsonl"
    monkeypatch.setenv(report.ENV_VAR, str(path))
    monkeypatch.setenv(report.PARAMETERS_VAR, json.dumps({"PROFILE": "smoke", "BETA": 4}))
    report.headline("MIG on 500 images (β=4, |z|=10)", 0.25, ".2f")
    report.headline("score for beta 4", 1)
    report.headline("steps", 3)
    report.headline("MIG, β=1", 0.5)
    report.headline("MIG, β=16", 0.1)  # "MIG" is taken by another figure: the name stays whole
    assert capsys.readouterr().out.splitlines() == [
        "MIG on 500 images (β=4, |z|=10): 0.25", "score for beta 4: 1", "steps: 3",
        "MIG, β=1: 0.5", "MIG, β=16: 0.1"]
    records = report.read_headlines(path)
    assert [(r["name"], r.get("label")) for r in records] == [
        ("MIG on 500 images", "MIG on 500 images (β=4, |z|=10)"),
        ("score for beta BETA", "score for beta 4"), ("steps", None), ("MIG", "MIG, β=1"),
        ("MIG, β=16", None)]


def test_a_value_that_rounds_to_zero_has_no_sign():
    from course_lib.report import format_value

    assert format_value(-1e-5, ".3f") == "0.000"
    assert format_value(-0.0) == "0"
    assert format_value([-1e-6, -0.5], ".2f") == "[0.00, -0.50]"
    # dicts and lists element by element: 4 significant digits, or the format given
    assert format_value({"1": 105.12610626220703, "10": 44.09546947479248}) == "{1: 105.1, 10: 44.1}"
    assert format_value({"a": [0.123456, 2]}, ".2f") == "{a: [0.12, 2.00]}"
    assert format_value(-0.0004, ".1%") == "0.0%"
    assert format_value(-0.01, ".3f") == "-0.010"   # a real negative number keeps its sign
    assert format_value(-1e-9, ".2e") == "-1.00e-09"
