"""The exercise checkers of notebooks 01 (autoencoders) and 02 (VAE): each passes the right
answer and the library's reference, and fails typical wrong answers (falling back to the
reference), with a message that names the mistake."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises as ex
from course_lib.losses import kl_normal


def verdict_of(checker, fn, capsys):
    used = checker(fn)
    return used, capsys.readouterr().out


# ----------------------------------------------------------------------------- notebook 01
def test_conv_output_size_reference_matches_the_formula():
    for n, k, s, p in [(64, 4, 2, 1), (5, 3, 1, 0), (9, 4, 3, 0), (28, 5, 1, 2)]:
        assert ex.conv_output_size_reference(n, k, s, p) == (n + 2 * p - k) // s + 1


def test_conv_output_size_checker(capsys):
    def right(n, kernel=4, stride=2, padding=1):
        return (n + 2 * padding - kernel) // stride + 1

    def no_padding(n, kernel=4, stride=2, padding=1):
        return (n - kernel) // stride + 1

    def true_division(n, kernel=4, stride=2, padding=1):
        return (n + 2 * padding - kernel) / stride + 1

    used, out = verdict_of(ex.check_conv_output_size, right, capsys)
    assert used is right and out.startswith("✔ conv_output_size")
    for wrong in (no_padding, true_division):
        used, out = verdict_of(ex.check_conv_output_size, wrong, capsys)
        assert used is ex.conv_output_size_reference
        assert out.startswith("✘ conv_output_size: wrong") and "floor((n + 2·padding" in out


def test_reconstruct_checker(capsys):
    def right(model, x):
        z, _ = model.encode(x)
        return model.decode(z).clamp(0, 1)

    def not_clipped(model, x):
        return model.decode(model.encode(x)[0])

    def through_sigmoid(model, x):
        return torch.sigmoid(model.decode(model.encode(x)[0]))

    def tuple_passed(model, x):
        return model.decode(model.encode(x)).clamp(0, 1)

    used, out = verdict_of(ex.check_autoencoder_reconstruct, right, capsys)
    assert used is right and out.startswith("✔ reconstruct")
    used, out = verdict_of(ex.check_autoencoder_reconstruct, not_clipped, capsys)
    assert used is ex.autoencoder_reconstruct_reference and ".clamp(0, 1)" in out
    used, out = verdict_of(ex.check_autoencoder_reconstruct, through_sigmoid, capsys)
    assert used is ex.autoencoder_reconstruct_reference and "no sigmoid" in out
    used, out = verdict_of(ex.check_autoencoder_reconstruct, tuple_passed, capsys)
    assert used is ex.autoencoder_reconstruct_reference and "raised" in out


def test_sse_loss_checker(capsys):
    def right(x_hat, x):
        return ((x_hat - x) ** 2).sum(dim=(1, 2, 3)).mean()

    used, out = verdict_of(ex.check_sse_loss, right, capsys)
    assert used is right and out.startswith("✔ sse_loss")
    used, out = verdict_of(ex.check_sse_loss, lambda a, b: F.mse_loss(a, b), capsys)
    assert used is ex.sse_loss_reference and "averaged over the pixels" in out
    used, out = verdict_of(ex.check_sse_loss, lambda a, b: ((a - b) ** 2).sum(), capsys)
    assert used is ex.sse_loss_reference and "summed over the batch" in out


def test_sse_reference_is_the_sum_of_squares_per_image():
    x_hat, x = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    by_hand = sum(float(((x_hat[i] - x[i]) ** 2).sum()) for i in range(3)) / 3
    assert float(ex.sse_loss_reference(x_hat, x)) == pytest.approx(by_hand, rel=1e-6)


# ----------------------------------------------------------------------------- notebook 02
def test_reparameterize_checker_accepts_right_answers(capsys):
    def right(mu, logvar):
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def rsample(mu, logvar):
        return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()

    for fn in (right, rsample):
        used, out = verdict_of(ex.check_reparameterize, fn, capsys)
        assert used is fn and out.startswith("✔ reparameterize"), out


@pytest.mark.parametrize("wrong, words", [
    (lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu), "not the variance"),
    (lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.rand_like(mu), "torch.rand"),
    (lambda mu, logvar: torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample(), "no gradient"),
    (lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar)), "torch.normal"),
    (lambda mu, logvar: (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).sum(1), "shape"),
    (lambda mu, logvar: mu, "logvar"),
])
def test_reparameterize_checker_rejects_wrong_answers(wrong, words, capsys):
    used, out = verdict_of(ex.check_reparameterize, wrong, capsys)
    assert used is not wrong and out.startswith("✘ reparameterize"), out
    assert words in out


def test_reparameterize_reference_has_the_right_distribution():
    mu, logvar = torch.full((50_000, 1), 1.5), torch.full((50_000, 1), math.log(9.0))
    z = ex._reparameterize_reference(mu, logvar)
    assert float(z.mean()) == pytest.approx(1.5, abs=0.05)
    assert float(z.std()) == pytest.approx(3.0, abs=0.05)


def test_kl_checker(capsys):
    def right(mu, logvar):
        return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1)

    def std_not_variance(mu, logvar):
        return 0.5 * (mu ** 2 + (0.5 * logvar).exp() - logvar - 1)

    def summed(mu, logvar):
        return right(mu, logvar).sum(1)

    used, out = verdict_of(ex.check_kl_normal, right, capsys)
    assert used is right and out.startswith("✔ kl_divergence")
    for wrong in (std_not_variance, summed):
        used, out = verdict_of(ex.check_kl_normal, wrong, capsys)
        assert used is kl_normal and out.startswith("✘ kl_divergence")


def test_kl_reference_agrees_with_torch_distributions():
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(6, 5), torch.ones(6, 5))
    torch.testing.assert_close(kl_normal(mu, logvar), torch.distributions.kl_divergence(q, p))


def test_negative_elbo_checker(capsys):
    def right(logits, x, mu, logvar):
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)  # seed 003, Eq. 4
        return recon + kl

    def pixel_mean(logits, x, mu, logvar):
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1).mean()
        return recon + kl_normal(mu, logvar).sum(1).mean()

    def kl_forgotten(logits, x, mu, logvar):
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)

    used, out = verdict_of(ex.check_negative_elbo, right, capsys)
    assert used is right and out.startswith("✔ negative_elbo")
    used, out = verdict_of(ex.check_negative_elbo, pixel_mean, capsys)
    assert used is ex.negative_elbo_reference and "source paper 001" in out
    used, out = verdict_of(ex.check_negative_elbo, kl_forgotten, capsys)
    assert used is ex.negative_elbo_reference and out.startswith("✘ negative_elbo")


def test_negative_elbo_reference_matches_the_vae_loss_terms():
    from course_lib.models import VAE

    torch.manual_seed(0)
    model = VAE(num_latents=4)
    x = (torch.rand(3, 1, 64, 64) < 0.1).float()
    mu, logvar = model.encode(x)
    torch.manual_seed(5)
    terms = model.loss_terms(x)
    torch.manual_seed(5)
    z = model.reparameterize(mu, logvar)
    value = ex.negative_elbo_reference(model.decode(z), x, mu, logvar)
    torch.testing.assert_close(value, terms["loss"])


def test_not_attempted_falls_back(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise not done yet")

    for checker, reference in [(ex.check_sse_loss, ex.sse_loss_reference),
                               (ex.check_reparameterize, ex._reparameterize_reference),
                               (ex.check_kl_normal, kl_normal)]:
        used, out = verdict_of(checker, stub, capsys)
        assert used is reference and out.startswith("○")


# ----------------------------------------------------------------------------- notebook 01: network, step
def test_flat_features_reference_is_the_course_encoders():
    from course_lib.models import Autoencoder

    assert ex.flat_features_reference() == 512
    assert Autoencoder(num_latents=2).encoder.fc[1].in_features == ex.flat_features_reference()


@pytest.mark.parametrize("value, words", [
    (16, "one feature map"), (128, "the side is not squared"), (128, "no convolution has its padding"),
    (131072, "side of the input"),
    (2048, "three convolutions"), (4.5, "whole number"), ("512", "whole number"),
])
def test_flat_features_checker_names_the_mistake(value, words, capsys):
    used = ex.check_flat_features(value)
    out = capsys.readouterr().out
    assert used == 512 and out.startswith("✘ flat_features") and words in out, out


def test_flat_features_checker_accepts_the_value(capsys):
    assert ex.check_flat_features(512) == 512
    assert capsys.readouterr().out.startswith("✔ flat_features")
    assert ex.check_flat_features(torch.tensor(512)) == 512
    assert ex.check_flat_features(None) == 512 and capsys.readouterr().out.count("○") == 1


def _sse(x_hat, x):
    return ((x_hat - x) ** 2).flatten(1).sum(1).mean()


def _step_right(model, x, optimizer):
    optimizer.zero_grad()
    loss = _sse(model(x), x)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _step_item(model, x, optimizer):
    model.zero_grad()
    loss = ((model(x) - x) ** 2).sum(dim=(1, 2, 3)).mean()
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_no_zero_grad(model, x, optimizer):
    loss = _sse(model(x), x)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _step_no_step(model, x, optimizer):
    optimizer.zero_grad()
    loss = _sse(model(x), x)
    loss.backward()
    return loss.detach()


def _step_no_backward(model, x, optimizer):
    optimizer.zero_grad()
    loss = _sse(model(x), x)
    optimizer.step()
    return loss.detach()


def _step_zero_grad_late(model, x, optimizer):
    loss = _sse(model(x), x)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.detach()


def _step_clipped(model, x, optimizer):
    optimizer.zero_grad()
    loss = _sse(model(x).clamp(0, 1), x)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _step_pixel_mean(model, x, optimizer):
    optimizer.zero_grad()
    loss = F.mse_loss(model(x), x)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _step_loss_after(model, x, optimizer):
    _step_right(model, x, optimizer)
    with torch.no_grad():
        return _sse(model(x), x)


def _step_returns_none(model, x, optimizer):
    _step_right(model, x, optimizer)


def test_train_step_checker_accepts_right_answers(capsys):
    for fn in (_step_right, _step_item):
        used, out = verdict_of(ex.check_train_step, fn, capsys)
        assert used is fn and out.startswith("✔ train_step") and "trains" in out, out


@pytest.mark.parametrize("wrong, words", [
    (_step_no_zero_grad, "zero_grad() at the start"),
    (_step_no_step, "call optimizer.step()"),
    (_step_no_backward, "was backward() called"),
    (_step_zero_grad_late, "was backward() called, and before step()"),
    (_step_clipped, "not the clipped reconstruction"),
    (_step_pixel_mean, "averaged over the pixels"),
    (_step_loss_after, "before the update"),
    (_step_returns_none, "returned None"),
])
def test_train_step_checker_names_the_mistake(wrong, words, capsys):
    used, out = verdict_of(ex.check_train_step, wrong, capsys)
    assert used is ex.autoencoder_train_step_reference, out
    assert out.startswith("✘ train_step") and words in out, out


def test_train_step_checker_reports_errors_and_stubs(capsys):
    def broken(model, x, optimizer):
        return model.encode(x).sum()

    def stub(model, x, optimizer):
        raise NotImplementedError

    used, out = verdict_of(ex.check_train_step, broken, capsys)
    assert used is ex.autoencoder_train_step_reference and "raised AttributeError" in out
    used, out = verdict_of(ex.check_train_step, stub, capsys)
    assert used is ex.autoencoder_train_step_reference and out.startswith("○")


def test_train_step_reference_is_one_library_update():
    import copy

    from course_lib.models import Autoencoder

    torch.manual_seed(0)
    model = Autoencoder(num_latents=2)
    untouched = copy.deepcopy(model)
    x = (torch.rand(3, 1, 64, 64) < 0.1).float()
    loss = ex.autoencoder_train_step_reference(model, x, torch.optim.SGD(model.parameters(), lr=1e-3))
    with torch.no_grad():
        before = ex.sse_loss_reference(untouched(x), x)
    assert not loss.requires_grad and float(loss) == pytest.approx(float(before), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(untouched.parameters(), model.parameters()))


# ----------------------------------------------------------------------------- notebook 02: named mistakes
def _elbo_parts(logits, x, mu, logvar):
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1)
    return recon, kl_normal(mu, logvar).sum(1)


@pytest.mark.parametrize("wrong, words", [
    (lambda lg, x, m, v: (_elbo_parts(lg, x, m, v)[0].mean(1) + _elbo_parts(lg, x, m, v)[1]).mean(),
     "source paper 001"),
    (lambda lg, x, m, v: -(_elbo_parts(lg, x, m, v)[0].sum(1) + _elbo_parts(lg, x, m, v)[1]).mean(),
     "you returned the ELBO"),
    (lambda lg, x, m, v: (_elbo_parts(lg, x, m, v)[0].sum(1) - _elbo_parts(lg, x, m, v)[1]).mean(),
     "sign of the KL"),
    (lambda lg, x, m, v: (_elbo_parts(torch.sigmoid(lg), x, m, v)[0].sum(1) + _elbo_parts(lg, x, m, v)[1]).mean(),
     "double sigmoid"),
])
def test_negative_elbo_checker_names_each_mistake(wrong, words, capsys):
    used, out = verdict_of(ex.check_negative_elbo, wrong, capsys)
    assert used is ex.negative_elbo_reference and out.startswith("✘ negative_elbo"), out
    assert "Hint:" in out and words in out, out
