"""The exercise checker of notebook 03 (β-VAE loss): it passes right answers, names typical
mistakes (the reduction pitfall, the signs, a double sigmoid, β forgotten or misplaced) and falls
back to the reference; and the model notebook 03 trains really calls the loss it is given."""

import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises as ex
from course_lib.losses import kl_normal


def _parts(logits, x, mu, logvar):
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1)
    return recon, kl_normal(mu, logvar).sum(1)


def right(logits, x, mu, logvar, beta):
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)  # seed 003, Eq. 4
    return recon + beta * kl


def test_right_answer_passes(capsys):
    used = ex.check_beta_vae_loss(right)
    out = capsys.readouterr().out
    assert used is right and out.startswith("✔ beta_vae_loss") and "used from here on" in out


@pytest.mark.parametrize("wrong, words", [
    (lambda lg, x, m, v, b: (_parts(lg, x, m, v)[0].mean(1) + b * _parts(lg, x, m, v)[1]).mean(),
     "averaged the reconstruction over the pixels"),
    (lambda lg, x, m, v, b: -(_parts(lg, x, m, v)[0].sum(1) + b * _parts(lg, x, m, v)[1]).mean(),
     "you returned the ELBO"),
    (lambda lg, x, m, v, b: (_parts(lg, x, m, v)[0].sum(1) - b * _parts(lg, x, m, v)[1]).mean(),
     "sign of the KL"),
    (lambda lg, x, m, v, b: (_parts(torch.sigmoid(lg), x, m, v)[0].sum(1) + b * _parts(lg, x, m, v)[1]).mean(),
     "double sigmoid"),
    (lambda lg, x, m, v, b: (_parts(lg, x, m, v)[0].sum(1) + _parts(lg, x, m, v)[1]).mean(), "β is missing"),
    (lambda lg, x, m, v, b: (b * _parts(lg, x, m, v)[0].sum(1) + _parts(lg, x, m, v)[1]).mean(),
     "not the reconstruction"),
])
def test_mistakes_are_named_and_fall_back(wrong, words, capsys):
    used = ex.check_beta_vae_loss(wrong)
    out = capsys.readouterr().out
    assert used is ex.beta_vae_loss_reference and out.startswith("✘ beta_vae_loss"), out
    assert "Hint:" in out and words in out, out


def test_unnamed_mistake_and_stub_fall_back(capsys):
    used = ex.check_beta_vae_loss(lambda lg, x, m, v, b: right(lg, x, m, v, b) + 1.0)
    out = capsys.readouterr().out
    assert used is ex.beta_vae_loss_reference and out.startswith("✘") and "Hint:" not in out

    def stub(*args):
        raise NotImplementedError

    assert ex.check_beta_vae_loss(stub) is ex.beta_vae_loss_reference
    assert capsys.readouterr().out.startswith("○")


def test_reference_matches_the_library_beta_vae():
    from course_lib.models import BetaVAE

    torch.manual_seed(0)
    model = BetaVAE(num_latents=4, beta=6.0)
    x = (torch.rand(3, 1, 64, 64) < 0.1).float()
    mu, logvar = model.encode(x)
    torch.manual_seed(5)
    terms = model.loss_terms(x)
    torch.manual_seed(5)
    z = model.reparameterize(mu, logvar)
    torch.testing.assert_close(ex.beta_vae_loss_reference(model.decode(z), x, mu, logvar, 6.0),
                               terms["loss"])
