"""The checkers of notebooks 04 and 05 (course_lib.exercises): capacity_loss, permute_dims and
FactorVAE's training step refuse the answers that look right but are not."""

import math

import pytest
import torch

from course_lib import exercises as ex
from course_lib.losses import bernoulli_recon, kl_normal
from course_lib.models.tc import permute_dims as library_permute
from course_lib.models.tc import tc_discriminator_loss

# --------------------------------------------------------------------------- capacity_loss (04)


def capacity_right(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
    c = c_start + (c_max - c_start) * (min(step / c_steps, 1.0) if c_steps > 0 else 1.0)
    gap = kl - c
    return gamma * (gap.abs() if penalty == "abs" else gap.clamp(min=0.0))


def capacity_float(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
    """Right values, made from a Python number: no gradient."""
    return torch.tensor(float(capacity_right(kl.detach(), step, gamma, c_start, c_max, c_steps, penalty)))


def capacity_detached(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
    """Right values, a graph that gives the gradient 0."""
    return capacity_right(kl, step, gamma, c_start, c_max, c_steps, penalty).detach() + 0 * kl


def capacity_unclamped(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
    c = c_start + (c_max - c_start) * (step / c_steps if c_steps else 1.0)
    gap = kl - c
    return gamma * (gap.abs() if penalty == "abs" else gap.clamp(min=0.0))


def capacity_divides_by_zero(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
    """Right with a ramp; with c_steps = 0 (no ramp) it divides by zero."""
    c = c_start + (c_max - c_start) * min(step / c_steps, 1.0)
    gap = kl - c
    return gamma * (gap.abs() if penalty == "abs" else gap.clamp(min=0.0))


def capacity_swapped(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
    return capacity_right(kl, step, gamma, c_start, c_max, c_steps, "hinge" if penalty == "abs" else "abs")


def test_capacity_loss_right_answer_passes(capsys):
    assert ex.check_capacity_loss(capacity_right) is capacity_right
    out = capsys.readouterr().out
    assert out.startswith("✔ capacity_loss: correct values and gradients") and "used from here on" in out


@pytest.mark.parametrize("answer, words", [
    (capacity_float, "carries no gradient"),
    (capacity_detached, "d(penalty)/d(KL) is 0"),
    (capacity_unclamped, "min(step / c_steps, 1)"),
    (capacity_swapped, "swapped"),
    (capacity_divides_by_zero, "with c_steps = 0 there is no ramp"),
])
def test_capacity_loss_refuses(answer, words, capsys):
    assert ex.check_capacity_loss(answer) is ex.capacity_loss_reference
    out = capsys.readouterr().out
    assert out.startswith("✘ capacity_loss") and words in out and "reference implementation" in out


def test_capacity_loss_fallback_is_differentiable():
    kl = torch.tensor(2.0, requires_grad=True)
    ex.capacity_loss_reference(kl, 0, gamma=1000.0, penalty="abs").backward()
    assert float(kl.grad) == 1000.0


# --------------------------------------------------------------------------- permute_dims (05)


def permute_right(z, generator=None):
    m, d = z.shape
    return torch.stack([z[torch.randperm(m, generator=generator), j] for j in range(d)], dim=1)


def permute_in_place(z, generator=None):
    """Right output, but z is shuffled in place."""
    m, d = z.shape
    for j in range(d):
        z[:, j] = z[torch.randperm(m, generator=generator), j]
    return z


def permute_shared(z, generator=None):
    """Column 0 on its own, columns 1-4 with one shared permutation."""
    m, d = z.shape
    out = z.clone()
    out[:, 0] = z[torch.randperm(m, generator=generator), 0]
    out[:, 1:] = z[torch.randperm(m, generator=generator)][:, 1:]
    return out


def permute_rows(z, generator=None):
    return z[torch.randperm(z.shape[0], generator=generator)]


def permute_fixed(z, generator=None):
    """Every column rolled by a different fixed amount: independent-looking, but not random."""
    return torch.stack([z[:, j].roll(j + 1) for j in range(z.shape[1])], dim=1)


def test_permute_dims_right_answers_pass(capsys):
    assert ex.check_permute_dims(permute_right) is permute_right
    assert ex.check_permute_dims(library_permute) is library_permute
    out = capsys.readouterr().out.splitlines()
    assert all(line.startswith("✔ permute_dims") for line in out)


@pytest.mark.parametrize("answer, words", [
    (permute_in_place, "changed its input z"),
    (permute_shared, "were shuffled together"),
    (permute_rows, "you permuted the rows"),
    (lambda z, generator=None: z.clone(), "nothing was shuffled"),
    (permute_fixed, "different generators gave the same order"),
    (lambda z, generator=None: z[:, :2], "expected a tensor of shape (256, 5)"),
])
def test_permute_dims_refuses(answer, words, capsys):
    assert ex.check_permute_dims(answer) is ex.permute_dims_reference
    out = capsys.readouterr().out
    assert out.startswith("✘ permute_dims") and words in out


def test_permute_dims_not_attempted(capsys):
    def stub(z, generator=None):
        raise NotImplementedError

    assert ex.check_permute_dims(stub) is ex.permute_dims_reference
    assert "not attempted" in capsys.readouterr().out


def test_permute_dims_checker_keeps_the_global_random_state():
    before = torch.random.get_rng_state()
    ex.evaluate_function  # noqa: B018 - the module is imported
    ex.check_permute_dims(permute_right, file=open(__import__("os").devnull, "w"))
    assert torch.equal(torch.random.get_rng_state(), before)


# --------------------------------------------------------------------------- FactorVAE step (05)


def make_step(*, freeze=True, detach=True, halves="first", gamma=True, keys=None, returns_graph=False,
              permute=permute_right):
    """A FactorVAE step as a student writes it; the keyword arguments put one mistake in."""

    def step_fn(model, x, step, optimizers):
        opt_vae, opt_disc = optimizers["model"], optimizers["discriminator"]
        if freeze:
            model.discriminator.requires_grad_(False)
        opt_vae.zero_grad()
        logits, mu, logvar, z = model(x)
        recon = bernoulli_recon(logits, x)
        kl_per_latent = kl_normal(mu, logvar).mean(0)
        tc = model.discriminator(z).mean()
        loss = recon + kl_per_latent.sum() + (model.gamma if gamma else 1.0) * tc
        loss.backward(retain_graph=not detach)
        opt_vae.step()
        model.discriminator.requires_grad_(True)
        codes = z.detach() if detach else z
        half = codes.shape[0] // 2
        opt_disc.zero_grad()  # also clears what an unfrozen discriminator received above
        if halves == "first":
            joint, other = codes[:half], codes[half:2 * half]
        else:
            joint, other = codes[half:2 * half], codes[:half]
        d_loss, d_acc = tc_discriminator_loss(model.discriminator, joint, permute(other))
        d_loss.backward()
        opt_disc.step()
        terms = {"loss": loss, "recon": recon, "kl": kl_per_latent.sum(), "kl_per_latent": kl_per_latent,
                 "tc": tc, "disc_loss": d_loss, "disc_acc": d_acc}
        if keys is not None:
            terms = {k: terms[k] for k in keys}
        return terms if returns_graph else {k: v.detach() for k, v in terms.items()}

    return step_fn


def test_factorvae_step_right_answer_passes(capsys):
    right = make_step()
    assert ex.check_factorvae_step(right, permute=permute_right) is right
    out = capsys.readouterr().out
    assert out.startswith("✔ factorvae_step") and "trains the FactorVAE from here on" in out


def test_factorvae_step_reference_passes_and_is_the_library_step():
    assert ex.evaluate_function  # the module is imported
    ref = ex.factorvae_step_reference
    assert ex.check_factorvae_step(ref, file=open(__import__("os").devnull, "w")) is ref


def test_factorvae_step_uses_the_notebooks_permutation():
    """A valid permutation that draws its randomness differently from the library's still
    passes: the library's step is run with the same permutation function."""

    def other_permute(z, generator=None):
        order = torch.rand(z.shape, generator=generator).argsort(0)
        return torch.gather(z, 0, order)

    right = make_step(permute=other_permute)
    verdict_fn = ex.check_factorvae_step(right, permute=other_permute, file=open(__import__("os").devnull, "w"))
    assert verdict_fn is right
    # ... and the library's permute_dims is restored afterwards
    from course_lib.models import tc

    assert tc.permute_dims is library_permute


@pytest.mark.parametrize("answer, words", [
    (make_step(freeze=False), "the discriminator received a gradient from the VAE's loss"),
    (make_step(detach=False), "must use the detached codes, z.detach()"),
    (make_step(halves="second"), "you swapped the halves"),
    (make_step(gamma=False), "γ·TC"),
    (make_step(keys=("loss", "recon", "kl", "tc")), "lacks kl_per_latent, disc_loss, disc_acc"),
    (make_step(returns_graph=True), "still carry a gradient graph"),
])
def test_factorvae_step_refuses(answer, words, capsys):
    assert ex.check_factorvae_step(answer, permute=permute_right) is ex.factorvae_step_reference
    out = capsys.readouterr().out
    assert out.startswith("✘ factorvae_step") and words in out, out


def test_factorvae_step_not_attempted_and_errors(capsys):
    def stub(model, x, step, optimizers):
        raise NotImplementedError

    def crashes(model, x, step, optimizers):
        return model.discriminator(x)

    assert ex.check_factorvae_step(stub) is ex.factorvae_step_reference
    assert ex.check_factorvae_step(crashes) is ex.factorvae_step_reference
    out = capsys.readouterr().out.splitlines()
    assert "not attempted" in out[0]
    assert out[1].startswith("✘ factorvae_step: your code raised")


def test_factorvae_variant_with_default_choices_is_the_library_step():
    """The written-out step that names mistakes is, with its default choices, the library's."""
    from course_lib.models import FactorVAE

    torch.manual_seed(0)
    model = FactorVAE(num_latents=3, disc_hidden=8, disc_layers=1).double()
    x = (torch.rand(6, 1, 64, 64, dtype=torch.float64) < 0.2).double()
    batches = [x, x.flip(0)]
    def variant(m, xb, s, o):
        return ex._factorvae_step_variant(m, xb, s, o, permute=library_permute)
    a = ex._factorvae_outcome(ex.factorvae_step_reference, model, batches, 1e-3, 3)
    b = ex._factorvae_outcome(variant, model, batches, 1e-3, 3)
    for wa, wb in zip(a[1] + a[2], b[1] + b[2]):
        assert torch.allclose(wa, wb, atol=1e-12)
    assert math.isclose(float(a[0][1]["disc_loss"]), float(b[0][1]["disc_loss"]), rel_tol=1e-12)
