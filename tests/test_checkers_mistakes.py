"""Checkers against the mistakes students actually make: each wrong answer is refused with a
message that names the mistake, and the correct variants are accepted."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises as ex


def run(check, fn):
    buf = io.StringIO()
    returned = check(fn, file=buf)
    return buf.getvalue(), returned is fn


def cap(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs", hinge=None):
    c = c_start + (c_max - c_start) * (min(step / c_steps, 1.0) if c_steps > 0 else 1.0)
    gap = kl - c
    return gamma * (gap.abs() if penalty == "abs" else hinge(gap))


@pytest.mark.parametrize("hinge", [lambda g: g.clamp(min=0), torch.relu, F.relu,
                                   lambda g: torch.where(g > 0, g, torch.zeros_like(g))],
                         ids=["clamp", "torch.relu", "F.relu", "where"])
def test_every_correct_form_of_the_hinge_passes(hinge):
    text, accepted = run(ex.check_capacity_loss, lambda *a, **k: cap(*a, hinge=hinge, **k))
    assert accepted, text


def test_a_function_that_changes_its_input_in_place_is_refused():
    def kl_inplace(mu, logvar):
        return 0.5 * (mu.pow_(2) + logvar.exp() - logvar - 1)

    text, accepted = run(ex.check_kl_normal, kl_inplace)
    assert not accepted and "changed its input `mu` in place" in text


def test_an_error_is_located_in_the_students_code_not_in_the_library():
    def bad(mu, logvar):
        return mu.view(3, -1, 7)  # the line the message must quote

    text, _ = run(ex.check_kl_normal, bad)
    assert "`return mu.view(3, -1, 7)" in text


@pytest.mark.parametrize("fn, words", [
    (lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape[0], 1), "noise of different latents is correlated"),
    (lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=torch.Generator().manual_seed(0)),
     "two calls in a row gave the same z"),
    (lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape[1]), "every image got the same noise"),
    (lambda mu, lv: -mu + torch.exp(0.5 * lv) * torch.randn_like(mu), "with a plus sign"),
], ids=["shared-by-latents", "reseeded", "shared-by-images", "minus-mu"])
def test_reparameterisation_mistakes_are_named(fn, words):
    text, accepted = run(ex.check_reparameterize, fn)
    assert not accepted and words in text, text


def test_permutations_must_come_from_the_generator_passed_in():
    def global_rng(z, generator=None):
        return torch.stack([z[torch.randperm(z.shape[0]), j] for j in range(z.shape[1])], 1)

    text, accepted = run(ex.check_permute_dims, global_rng)
    assert not accepted and "same generator gave different orders" in text


def test_a_reconstruction_clipped_only_below_is_refused():
    text, accepted = run(ex.check_autoencoder_reconstruct, lambda m, x: m(x).clamp(min=0))
    assert not accepted and "above 1" in text
    _, accepted = run(ex.check_autoencoder_reconstruct, ex.autoencoder_reconstruct_reference)
    assert accepted


def test_gradient_check_catches_a_detach_with_the_right_value():
    from course_lib.models.hybrid import vaegan_losses

    g = torch.Generator().manual_seed(0)
    args = [t.requires_grad_(True) for t in (torch.tensor(3.2), torch.tensor(40.0), torch.randn(6, 1, generator=g),
                                             torch.randn(6, 1, generator=g), torch.randn(6, 1, generator=g))]
    cases = [ex.case(*args, 2.0, 0.01)]

    def bce(logits, target):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def detached(kl, llike, d_real, d_recon, d_prior, beta, gamma):
        return (beta * kl + llike, gamma * llike + bce(d_recon.detach(), 1.0) + bce(d_prior, 1.0),
                bce(d_real, 1.0) + bce(d_recon, 0.0) + bce(d_prior, 0.0))

    v = ex.evaluate_function("vaegan_objectives", detached, vaegan_losses, cases, atol=1e-5, gradients=True)
    assert v.status == "wrong" and "output 2 with respect to `d_recon`" in v.message
    assert ex.evaluate_function("vaegan_objectives", detached, vaegan_losses, cases, atol=1e-5).passed  # values alone
    assert ex.evaluate_function("vaegan_objectives", vaegan_losses, vaegan_losses, cases, gradients=True).passed


def test_flat_features_hint_names_both_ways_to_128():
    buf = io.StringIO()
    ex.check_flat_features(128, file=buf)
    assert "not squared" in buf.getvalue() and "padding" in buf.getvalue()


def test_histogram_mi_with_default_bins_is_refused_on_many_values():
    from sklearn.metrics import mutual_info_score

    def hist_mi(a, b):
        p, _, _ = np.histogram2d(a, b)
        p = p / p.sum()
        px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
        nz = p > 0
        return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())

    b40 = np.random.default_rng(0).integers(0, 40, 2000)
    v = ex.evaluate_function("mi", hist_mi, lambda a, b: float(mutual_info_score(a, b)),
                             [ex.case(b40 // 2, b40)], atol=1e-9)
    assert v.status == "wrong"
