"""Bad input to the command line and the library gets one clear line, never a traceback or a
silent coercion (each case was a traceback or a silent change before)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from course_lib import checkpoints as ck
from course_lib.data import DSprites
from course_lib.models import build_model


@pytest.fixture
def cli(capsys):
    """``python -m course_lib ARGS`` in this process: (returncode, stderr)."""
    from course_lib.cli import main

    def run(*args):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)

    return run


@pytest.mark.parametrize("args, message", [
    (["bench", "train", "--repeats", "0"], "argument --repeats: expected a positive integer, got '0'"),
    (["bench", "train", "--steps", "2.5"], "argument --steps: expected a positive integer, got '2.5'"),
    (["bench", "render", "--seconds", "-1"], "argument --seconds: expected a positive number"),
    (["bench", "speed", "--repeats", "0"], "argument --repeats: expected a positive integer"),
    (["bench", "multiseed", "--copies", "0"], "argument --copies: expected a positive integer"),
    (["bench", "unroll", "--ks", "-1"], "argument --ks: expected an integer >= 0"),
    (["bench", "mig", "--batch-size", "0"], "argument --batch-size: expected a positive integer"),
    (["bench", "nope"], "choose from 'render', 'train', 'speed', 'multiseed', 'mig', 'unroll'"),
    (["build", "--check", "--root", "/nonexistent-folder"], "has no solutions/ folder"),
    (["pretrain", "beta_vae", "--steps", "0"], "argument --steps: expected a positive integer"),
])
def test_one_line_errors(cli, args, message):
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("what", ["mig", "unroll"])
def test_delegated_bench_usage_names_its_command(cli, what):
    done = cli("bench", what, "--no-such-option")
    assert done.returncode == 2 and f"usage: python -m course_lib bench {what} " in done.stderr


def test_make_bench_runs_only_benchmarks_that_exist(cli):
    """`make bench` loops over BENCHES: each must be a command of `bench` (it once named 'all')."""
    import re
    from pathlib import Path

    from course_lib.cli.bench import DELEGATED

    makefile = Path(__file__).resolve().parent.parent / "Makefile"
    line = re.search(r"^BENCHES\s*:=\s*(.+)$", makefile.read_text(), re.M)
    assert line, "the Makefile defines no BENCHES"
    benches = line.group(1).split()
    assert set(benches) == {"render", "train", *DELEGATED}, benches
    for what in benches:
        assert cli("bench", what, "--help").returncode == 0


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is present here")
def test_an_absent_mps_device_is_one_line(cli):
    done = cli("bench", "train", "--device", "mps")
    assert done.returncode == 2 and "MPS is not available here" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("kwargs", [{"channels": 0}, {"channels": 2.5}, {"channels": -1}])
def test_build_model_refuses_impossible_channels(kwargs):
    for name in ("beta_vae", "autoencoder", "capacity_vae", "factor_vae"):
        with pytest.raises(ValueError, match="channels must be a positive integer"):
            build_model(name, **kwargs)


def test_dsprites_counts_and_class_ranges_are_whole_numbers():
    ds = DSprites()
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="n must be a whole number >= 0"):
            ds.sample_classes(bad)
    assert ds.sample_classes(3.0).shape == (3, 6) and ds.sample_classes(0).shape == (0, 6)
    for bad in ({"posX": (0, 2.5)}, {"posX": (0.5, 3)}, {"posX": 5}, {"posX": (0, 1, 2)}):
        with pytest.raises(ValueError, match="must be two whole numbers"):
            ds.sample_classes(4, class_ranges=bad)
        with pytest.raises(ValueError, match="must be two whole numbers"):
            ds.sampler("cpu", class_ranges=bad)
    classes = ds.sample_classes(200, torch.Generator().manual_seed(0), class_ranges={"posX": (0.0, 4.0)})
    assert int(classes[:, 4].max()) < 4
    with pytest.raises(TypeError, match="indices must be integers"):
        ds.index_to_classes(torch.tensor([1.5]))


def _copy_manifest(tmp_path, change):
    folder = tmp_path / "ck"
    folder.mkdir()
    data = json.loads((ck.checkpoint_dir() / ck.MANIFEST).read_text())
    change(data)
    (folder / ck.MANIFEST).write_text(json.dumps(data) if not isinstance(data, str) else data)
    return folder


def test_a_corrupt_manifest_or_an_entry_without_keys_names_the_file(cli, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / ck.MANIFEST).write_text('{"format": "course_lib.checkpoints/1", "checkpoints": {')
    with pytest.raises(ValueError, match=r"broken/manifest.json is not readable JSON"):
        ck.read_manifest(folder)
    (folder / ck.MANIFEST).write_text('{"format": "someone-else/2", "checkpoints": {}}')
    with pytest.raises(ValueError, match=f"not a course checkpoint manifest.*{ck.MANIFEST_FORMAT}"):
        ck.read_manifest(folder)
    (folder / ck.MANIFEST).write_text(f'{{"format": "{ck.MANIFEST_FORMAT}", "checkpoints": []}}')
    with pytest.raises(ValueError, match="expected a 'checkpoints' object of entries"):
        ck.read_manifest(folder)
    key = "beta_vae-2000steps-seed0"
    no_sha = _copy_manifest(tmp_path, lambda d: d["checkpoints"][key].pop("sha256"))
    with pytest.raises(ValueError, match=f"manifest.json: entry '{key}' lacks sha256"):
        ck.read_manifest(no_sha)
    with pytest.raises(ValueError, match="lacks sha256"):
        ck.load_or_train("beta_vae", profile="quick", folder=no_sha, progress=False)
    (tmp_path / "ck").rename(tmp_path / "ck1")
    no_seed = _copy_manifest(tmp_path, lambda d: d["checkpoints"][key]["recipe"].pop("seed"))
    with pytest.raises(ValueError, match=f"the recipe of entry '{key}' lacks seed"):
        ck.read_manifest(no_seed)
    done = cli("pretrain", "--list", "--out", str(no_seed))
    assert done.returncode == 2 and "lacks seed" in done.stderr and "Traceback" not in done.stderr
