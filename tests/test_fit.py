"""The one "load if finished, else train and save" helper, fit(), and its naming rule."""

import pytest
import torch

from course_lib.data import DSprites, RingOfGaussians
from course_lib.models import BetaVAE
from course_lib.train import data_key, fit, run_name


def small_model(beta=4.0):
    torch.manual_seed(0)
    return BetaVAE(num_latents=3, beta=beta)


def test_data_keys():
    ds = DSprites()
    assert data_key(ds) == "dsprites"
    assert data_key(ds.sampler()) == "dsprites"
    assert data_key(ds.sampler(class_ranges={"posX": (0, 16)})) == "dsprites:posX<16"
    assert data_key(ds.sampler(class_ranges={"scale": (2, 5), "posX": (0, 16)})) == "dsprites:posX<16,scale2-5"
    assert data_key(RingOfGaussians(num_modes=8, radius=2.0, std=0.1)) == "ring8-r2-s0.1"
    x = torch.zeros(5, 1, 4, 4)
    y = x.clone()
    y[3, 0, 1, 2] = 1.0
    assert data_key(x).startswith("tensor5x1x4x4-") and data_key(x) == data_key(x.clone())
    assert data_key(x) != data_key(y)  # one pixel changes the digest

    class Wrapper:
        def __init__(self, sampler):
            self.sampler = sampler
    assert data_key(Wrapper(ds.sampler())) == "Wrapper(dsprites)"


def test_run_name_changes_with_every_setting_and_only_then():
    ds = DSprites()
    base = dict(steps=10, batch_size=8, lr=1e-3, seed=0)
    name = run_name(small_model(), ds, **base)
    assert name.startswith("beta_vae-10steps-seed0-") and len(name.split("-")[-1]) == 10
    assert run_name(small_model(), ds, **base) == name
    others = [run_name(small_model(beta=5.0), ds, **base),
              run_name(small_model(), ds.sampler(class_ranges={"posX": (0, 16)}), **base),
              run_name(small_model(), ds, **{**base, "steps": 11}),
              run_name(small_model(), ds, **{**base, "batch_size": 9}),
              run_name(small_model(), ds, **{**base, "lr": 2e-3}),
              run_name(small_model(), ds, **{**base, "seed": 1})]
    assert len({name, *others}) == 7
    assert run_name(small_model(), ds, tag="03 sweep", **base) == "03_sweep-" + name


def test_run_name_tells_apart_runs_trained_by_other_exercise_code():
    from course_lib.exercises import beta_vae_loss_reference
    from course_lib.train import code_fingerprint

    ds = DSprites()
    base = dict(steps=10, batch_size=8, lr=1e-3, seed=0)

    def with_functions(*functions):
        model = small_model()
        model.exercise_functions = functions
        return run_name(model, ds, **base)

    def loss_a(logits, x, mu, logvar, beta):
        return (logits - x).pow(2).sum() + beta * mu.pow(2).sum()

    def loss_a_again(logits, x, mu, logvar, beta):   # the same code under another name
        return (logits - x).pow(2).sum() + beta * mu.pow(2).sum()

    def loss_b(logits, x, mu, logvar, beta):          # one constant differs
        return (logits - x).pow(2).sum() + 2 * beta * mu.pow(2).sum()

    library_only = run_name(small_model(), ds, **base)
    # the library's own function (a checker's fallback) leaves the name as it was
    assert with_functions(beta_vae_loss_reference) == library_only
    assert code_fingerprint([beta_vae_loss_reference]) is None
    a = with_functions(loss_a)
    assert a != library_only and a.split("-")[:3] == library_only.split("-")[:3]
    assert with_functions(loss_a_again) == a                      # the code, not the name, counts
    assert with_functions(loss_b) != a
    assert code_fingerprint([loss_a]) == code_fingerprint([loss_a_again]) and len(code_fingerprint([loss_a])) == 12


def test_fit_trains_once_then_loads(tmp_path):
    ds = DSprites()
    kw = dict(steps=3, batch_size=4, lr=1e-3, seed=0, folder=tmp_path, progress=False, device="cpu")
    first = fit(small_model(), ds, tag="t", **kw)
    assert not first.extra["loaded"] and first.resumed_from == 0
    assert [p.name for p in tmp_path.iterdir()] == [run_name(small_model(), ds, steps=3, batch_size=4, lr=1e-3,
                                                             seed=0, tag="t") + ".pt"]
    again = fit(small_model(), ds, tag="t", **kw)
    assert again.extra["loaded"] and again.checkpoint == first.checkpoint
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    other = fit(small_model(), ds, tag="t", **{**kw, "lr": 2e-3})   # another configuration: trained anew
    assert not other.extra["loaded"] and len(list(tmp_path.iterdir())) == 2
    with pytest.raises(TypeError, match="names the checkpoint itself"):
        fit(small_model(), ds, checkpoint=tmp_path / "x.pt", **kw)
