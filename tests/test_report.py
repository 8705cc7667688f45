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
