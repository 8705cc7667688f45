"""The generic exercise checkers (course_lib.exercises)."""

import numpy as np
import pytest
import torch

from course_lib import exercises as ex


def reference(mu, logvar):
    """Reparameterisation: mu + sigma * eps, eps ~ N(0, I) (draws noise: needs the seed)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def right(mu, logvar):
    eps = torch.randn(mu.shape)
    return mu + eps * logvar.mul(0.5).exp()


def wrong_scale(mu, logvar):
    return mu + torch.exp(logvar) * torch.randn_like(mu)  # variance instead of std


def summed(mu, logvar):
    return reference(mu, logvar).sum(dim=1)


def not_attempted(mu, logvar):
    # TODO: write your code here.
    raise NotImplementedError("Exercise not done yet: replace this line with your code")


def crashes(mu, logvar):
    return mu @ logvar


def _cases():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    return [ex.case(mu, logvar), ex.case(mu[:1], logvar[:1], label="one row")]


def test_right_answer_passes_and_is_returned(capsys):
    assert ex.check_function("reparameterise", right, reference, _cases()) is right
    assert capsys.readouterr().out == (
        "✔ reparameterise: correct on all 2 test cases; your function is used from here on.\n")


def test_wrong_answer_fails_and_falls_back(capsys):
    assert ex.check_function("reparameterise", wrong_scale, reference, _cases()) is reference
    out = capsys.readouterr().out
    assert out.startswith("✘ reparameterise: wrong on test case 1 of 2")
    assert "mu=tensor of shape (5, 3), logvar=tensor of shape (5, 3)" in out
    assert "differs from the expected values" in out and "largest difference" in out
    assert "using the reference implementation" in out


def test_wrong_shape_is_explained():
    verdict = ex.evaluate_function("reparameterise", summed, reference, _cases())
    assert verdict.status == "wrong" and not verdict.passed
    assert "has shape (5,), expected (5, 3)" in verdict.message
    assert "a dimension is missing" in verdict.message


def test_not_attempted_falls_back_quietly(capsys):
    assert ex.check_function("reparameterise", not_attempted, reference, _cases()) is reference
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "keeps running" in out and "✘" not in out
    assert ex.evaluate_function("f", None, reference, _cases()).status == "not attempted"


def test_student_exception_is_reported_with_its_line():
    verdict = ex.evaluate_function("reparameterise", crashes, reference, _cases())
    assert verdict.status == "error"
    assert "raised RuntimeError" in verdict.message
    assert "`return mu @ logvar`" in verdict.message and "test case 1 of 2" in verdict.message


def test_seed_makes_noise_comparable_and_global_state_is_restored():
    before = torch.random.get_rng_state()
    np_before = np.random.get_state()[1].copy()
    assert ex.evaluate_function("r", right, reference, _cases(), seed=3).passed
    assert torch.equal(torch.random.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_before)
    # without a common seed the same right answer cannot be compared
    assert not ex.evaluate_function("r", right, reference, _cases(), seed=None).passed


def test_inputs_are_copied_for_each_call():
    def in_place(x):
        x.mul_(2)
        return x

    x = torch.ones(3)
    # the student doubles the tensor in place: the value is right, but the caller's data would
    # change, so it is refused; the case's own tensor is never touched
    verdict = ex.evaluate_function("double", in_place, lambda x: x * 2, [(x,)])
    assert not verdict.passed and "changed its input `x` in place" in verdict.message
    assert torch.equal(x, torch.ones(3))


def test_tolerance_is_respected():
    cases = [(torch.tensor([1.0, 2.0]),)]
    def near(x):
        return x + 1e-4
    assert not ex.evaluate_function("f", near, lambda x: x, cases, atol=1e-6).passed
    assert ex.evaluate_function("f", near, lambda x: x, cases, atol=1e-3).passed


@pytest.mark.parametrize("expected, got, words", [
    (torch.zeros(2, 3), torch.zeros(3, 2), "same number of elements"),
    (torch.zeros(2), torch.zeros(2, 1), "size 1 too many or missing"),
    (torch.zeros(2, 3), torch.zeros(2, 3, 4), "one dimension too many"),
    (torch.zeros(2), np.zeros(2), "should be a torch tensor"),
    (torch.zeros(2), torch.zeros(2, dtype=torch.long), "floating-point"),
    (torch.zeros(2), torch.tensor([0.0, float("nan")]), "NaN"),
    (np.arange(3), np.array([0, 1, 3]), "1 of 3 entries"),
    (1.5, 1.6, "is 1.6, expected 1.5"),
    (1.5, torch.ones(2), "single number"),
    ((1.0, 2.0), (1.0,), "has 1 elements, expected 2"),
    ((1.0, torch.ones(2)), (1.0, torch.zeros(2)), "the result[1]"),
    ({"loss": 1.0}, {"los": 1.0}, "missing: ['loss']"),
    ("bernoulli", "gaussian", "expected 'bernoulli'"),
])
def test_difference_says_what_differs(expected, got, words):
    message = ex.difference(expected, got)
    assert message is not None and words in message


@pytest.mark.parametrize("expected, got", [
    (torch.ones(2, 3), torch.ones(2, 3, dtype=torch.float64)),
    (2.0, torch.tensor(2.0)), (2.0, np.float32(2.0)), (3, 3.0),
    ((1.0, [torch.ones(1)]), [1.0, (torch.ones(1),)]),
    ({"a": np.ones(2)}, {"a": np.ones(2)}), (float("nan"), float("nan")), (None, None),
])
def test_difference_accepts_equal_results(expected, got):
    assert ex.difference(expected, got) is None


def test_custom_compare_and_case_forms():
    seen = []

    def compare(expected, got):
        seen.append((expected, got))
        return None if abs(expected) == abs(got) else "the magnitudes differ"

    cases = [(-2,), {"x": 3}, 4]
    assert ex.evaluate_function("neg", lambda x: -x, lambda x: x, cases, compare=compare).passed
    assert seen == [(-2, 2), (3, -3), (4, -4)]
    verdict = ex.evaluate_function("inc", lambda x: x + 1, lambda x: x, cases, compare=compare)
    assert "the magnitudes differ" in verdict.message


def test_check_value(capsys):
    assert ex.check_value("KL of the prior with itself", 0.0, 0.0) == 0.0
    assert ex.check_value("KL of the prior with itself", 0.5, 0.0) == 0.0
    assert ex.check_value("KL of the prior with itself", None, 0.0) == 0.0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✔") and lines[1].startswith("✘") and "your answer is 0.5" in lines[1]
    assert "not attempted" in lines[-1]


def test_bad_checker_setup_is_an_error():
    with pytest.raises(ValueError, match="at least one test case"):
        ex.evaluate_function("f", right, reference, [])
    with pytest.raises(TypeError, match="must be a function"):
        ex.evaluate_function("f", right, 3.0, _cases())
    assert "expected a function" in ex.evaluate_function("f", 3.0, reference, _cases()).message
