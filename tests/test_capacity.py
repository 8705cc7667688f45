"""Capacity schedule, capacity/hinge penalties and CapacityVAE, against hand computations."""

import warnings

import pytest
import torch

from course_lib.data import DSprites
from course_lib.losses import capacity_penalty, capacity_schedule, kl_normal
from course_lib.losses.recon import bernoulli_recon
from course_lib.models import MODELS, CapacityVAE, build_model
from course_lib.models.capacity import CapacityScheduleWarning
from course_lib.train import train


# -- schedule ------------------------------------------------------------------------------
@pytest.mark.parametrize("step, expected", [
    (0, 0.5),                        # C_start
    (25, 0.5 + 24.5 * 25 / 100),     # a quarter of the ramp: 6.625
    (50, 12.75),                     # half way: (0.5 + 25) / 2
    (100, 25.0),                     # end of the ramp
    (1000, 25.0),                    # held at C_max afterwards
])
def test_schedule_by_hand(step, expected):
    assert capacity_schedule(step, c_start=0.5, c_max=25.0, c_steps=100) == pytest.approx(expected)


def test_schedule_on_tensor_matches_scalar_and_zero_length_ramp():
    steps = torch.tensor([0, 3, 7, 10, 20])
    got = capacity_schedule(steps, c_start=1.0, c_max=6.0, c_steps=10)
    assert torch.allclose(got, torch.tensor([1.0, 2.5, 4.5, 6.0, 6.0]))
    assert capacity_schedule(0, c_start=1.0, c_max=6.0, c_steps=0) == 6.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(c_start=5.0, c_max=2.0), "c_max"),
    (dict(c_start=-1.0, c_max=2.0), "c_start"),
    (dict(c_steps=-5), "c_steps"),
    (dict(c_max=float("nan")), "finite"),
])
def test_schedule_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        capacity_schedule(0, **kwargs)


def test_schedule_bad_step():
    with pytest.raises(ValueError, match="step"):
        capacity_schedule(-1)
    with pytest.raises(TypeError, match="whole number"):
        capacity_schedule(1.5)
    with pytest.raises(ValueError, match="step must be >= 0"):   # a tensor of steps, one negative
        capacity_schedule(torch.tensor([3, -1]))
    with pytest.raises(TypeError, match="c_steps must be a whole number"):   # not silently truncated
        capacity_schedule(0, c_steps=2.5)
    with pytest.raises(TypeError, match="c_max must be a number"):
        capacity_schedule(0, c_max="25")


def test_penalty_needs_a_tensor():
    with pytest.raises(TypeError, match="kl must be a tensor"):
        capacity_penalty(1.0, 0.5)


# -- penalty -------------------------------------------------------------------------------
def test_penalty_by_hand():
    kl = torch.tensor([3.0, 7.5, 10.0])
    c = 7.5
    assert torch.allclose(capacity_penalty(kl, c, gamma=2.0, penalty="abs"), torch.tensor([9.0, 0.0, 5.0]))
    assert torch.allclose(capacity_penalty(kl, c, gamma=2.0, penalty="hinge"), torch.tensor([0.0, 0.0, 5.0]))


def test_penalty_gradients_differ_below_capacity():
    # below C, |KL − C| pushes KL up (d/dKL = −γ) while the hinge is flat (0); above C both are +γ
    for kl_value, abs_grad, hinge_grad in [(2.0, -1000.0, 0.0), (9.0, 1000.0, 1000.0)]:
        grads = []
        for penalty in ("abs", "hinge"):
            kl = torch.tensor(kl_value, requires_grad=True)
            capacity_penalty(kl, 5.0, penalty=penalty).backward()
            grads.append(float(kl.grad))
        assert grads == [abs_grad, hinge_grad]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(gamma=-1.0), ValueError, "gamma"),
    (dict(penalty="l2"), ValueError, "penalty"),
])
def test_penalty_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        capacity_penalty(torch.tensor(1.0), 0.5, **kwargs)


# -- model ---------------------------------------------------------------------------------
def test_registered_and_rebuilds_from_config():
    assert MODELS["capacity_vae"] is CapacityVAE
    m = build_model("capacity_vae", num_latents=4, gamma=10.0, c_start=1.0, c_max=5.0,
                    c_steps=40, penalty="hinge")
    again = type(m)(**m.config())
    assert again.config() == m.config()


@pytest.mark.parametrize("kwargs, match", [
    (dict(c_start=3.0, c_max=1.0), "c_max"),
    (dict(gamma=-0.5), "gamma"),
    (dict(penalty="square"), "penalty"),
])
def test_model_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CapacityVAE(num_latents=2, **kwargs)


@pytest.mark.parametrize("penalty", ["abs", "hinge"])
def test_loss_terms_match_independent_computation(penalty):
    torch.manual_seed(0)
    m = CapacityVAE(num_latents=3, gamma=7.0, c_start=0.5, c_max=4.5, c_steps=8, penalty=penalty).eval()
    x = (torch.rand(5, 1, 64, 64) > 0.7).float()
    step = 2  # C = 0.5 + 4 * 2/8 = 1.5 nats
    torch.manual_seed(1)
    terms = m.loss_terms(x, step)
    # the same forward pass by hand, with torch.distributions for the KL
    torch.manual_seed(1)
    with torch.no_grad():
        terms = {k: v.detach() for k, v in terms.items()}
        mu, logvar = m.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = bernoulli_recon(m.decode(z), x)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl_per_latent = torch.distributions.kl_divergence(q, p).mean(0)
    kl = kl_per_latent.sum()
    gap = float(kl) - 1.5
    expected_pen = 7.0 * (abs(gap) if penalty == "abs" else max(gap, 0.0))
    assert float(terms["capacity"]) == pytest.approx(1.5)
    assert float(terms["kl_minus_c"]) == pytest.approx(gap, abs=1e-5)
    assert torch.allclose(terms["kl_per_latent"], kl_per_latent, atol=1e-6)
    assert float(terms["loss"]) == pytest.approx(float(recon) + expected_pen, rel=1e-5)
    assert torch.allclose(kl_normal(mu, logvar).mean(0), kl_per_latent, atol=1e-6)


def test_schedule_longer_than_run_warns_and_train_calls_the_hook():
    m = CapacityVAE(num_latents=2, c_steps=100)
    with pytest.warns(CapacityScheduleWarning, match="c_steps=100.*only 10 steps"):
        assert m.check_schedule(10) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.check_schedule(101) is True  # steps 0..100: C reaches c_max at step 100
    with pytest.warns(CapacityScheduleWarning, match=r"C will stop at 24\.7[56] nats"):
        assert m.check_schedule(100) is False  # steps 0..99: one step short of c_max
    data = (torch.rand(16, 1, 64, 64) > 0.8).float()
    with pytest.warns(CapacityScheduleWarning):
        train(m, data, steps=3, batch_size=4, progress=False, device="cpu")


def test_history_logs_capacity_and_kl_per_latent():
    m = CapacityVAE(num_latents=3, c_start=0.5, c_max=2.5, c_steps=4)
    ds = DSprites()
    with pytest.warns(CapacityScheduleWarning, match="C will stop at 2.00 nats"):  # the ramp is as long as the run
        result = train(m, ds, steps=4, batch_size=4, log_every=1, progress=False, device="cpu")
    h = result.history
    # step s (1-based in the history) used C at 0-based step s − 1: 0.5, 1.0, 1.5, 2.0
    assert h["capacity"] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert h.array("kl_per_latent").shape == (4, 3)
    assert h.array("kl_minus_c") == pytest.approx(h.array("kl") - h.array("capacity"), abs=1e-5)
