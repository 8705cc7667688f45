"""The checker of notebook 06's unrolled-objective exercise: a right answer passes and is
returned, the typical mistakes are refused with a hint that names them."""

import io

import pytest
import torch

from course_lib import exercises as ex


def variant(**choice):
    """The checker's own write-up of the objective (two discriminator calls per inner step, where
    the library concatenates real and fake), with one choice changed."""
    return lambda *a: ex._unrolled_variant(*a, **choice)


def right(model, x_real, fake, d_optimizer, K):
    return ex._unrolled_variant(model, x_real, fake, d_optimizer, K)


def run(answer):
    out = io.StringIO()
    returned = ex.check_unrolled_terms(answer, file=out)
    return returned, out.getvalue()


def test_right_answer_passes_and_is_returned():
    returned, text = run(right)
    assert returned is right
    assert text.startswith("✔ unrolled_terms") and "trains the unrolled toy GANs" in text


def test_reference_passes():
    returned, _ = run(ex.unrolled_terms_reference)
    assert returned is ex.unrolled_terms_reference


def test_the_problem_has_a_second_order_part():
    """The checker's toy must tell first from second order (else the first mistake would pass)."""
    _, g2, _, _, _ = ex._unrolled_outcome(ex.unrolled_terms_reference, 3)
    _, g1, _, _, _ = ex._unrolled_outcome(variant(create_graph=False), 3)
    assert (g2 - g1).norm() > 1e-3 * g2.norm()


@pytest.mark.parametrize("answer, words", [
    (variant(create_graph=False), "create_graph=True"),
    (variant(detach_fake=True), "not fake.detach()"),
    (variant(real=False), "real term E_x log D_K(x) is missing"),
    (variant(form="minimax"), "wrong form"),
    (variant(optimiser="sgd"), "optimiser is Adam"),
    (lambda m, x, f, o, K: right(m, x, f, o, K + 1), "took 2 discriminator steps instead of K = 1"),
    (lambda m, x, f, o, K: right(m, x, f, o, K - 1), "took 0 discriminator steps instead of K = 1"),
    (lambda m, x, f, o, K: (o.step(), right(m, x, f, o, K))[1], "weights changed"),
    (lambda m, x, f, o, K: {"fake": right(m, x, f, o, K)["fake"]}, "keys 'fake' and 'real'"),
    (lambda m, x, f, o, K: 1 / 0, "ZeroDivisionError"),
])
def test_mistakes_are_refused_and_named(answer, words):
    returned, text = run(answer)
    assert returned is ex.unrolled_terms_reference
    assert text.startswith("✘ unrolled_terms") and words in text, text


def test_not_attempted():
    def todo(*a):
        raise NotImplementedError
    for answer in (None, todo):
        returned, text = run(answer)
        assert returned is ex.unrolled_terms_reference and text.startswith("○")


def test_reference_in_a_subclass_that_overrides_the_method_does_not_recurse():
    from course_lib.models import UnrolledGAN

    class Yours(UnrolledGAN):
        def unrolled_generator_terms(self, x_real, fake, d_optimizer, steps=None, first_order=None):
            return ex.unrolled_terms_reference(self, x_real, fake, d_optimizer, self.unroll_steps)

    model = Yours(unroll_steps=2, arch="mlp", noise_dim=2, hidden=4, layers=1)
    opts = model.configure_optimizers(1e-2)
    terms = model.training_step(torch.randn(8, 2), 0, opts)
    assert torch.isfinite(terms["g_real"])


def test_an_error_that_names_a_known_mistake_gets_its_hint():
    def detached(m, x, f, o, K):
        raise RuntimeError("One of the differentiated Tensors does not require grad")
    returned, text = run(detached)
    assert returned is ex.unrolled_terms_reference
    assert "Hint: differentiate with respect to copies that require gradients" in text
    _, plain = run(lambda m, x, f, o, K: 1 / 0)
    assert "Hint:" not in plain
