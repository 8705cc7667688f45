"""Checkers that notebooks call on a student's answer.

An exercise cell defines a function; the checker cell after it runs it on a few inputs, compares
with the reference implementation, says what is right or wrong, and returns the function to use
from then on: the student's when it is right, else the reference, so a student notebook always
runs top to bottom::

    reparameterise = exercises.check_function(
        "reparameterise", reparameterise, reference.reparameterise,
        cases=[exercises.case(mu, logvar), exercises.case(mu[:1], logvar[:1], label="one row")],
        atol=1e-6, seed=0)

    ✔ reparameterise: correct on all 2 test cases.

For a value rather than a function (an exercise cell that assigns ``answer = ...``)::

    answer = exercises.check_value("KL of the prior with itself (nats)", answer, 0.0, atol=1e-6)

A case is ``exercises.case(*args, label=None, **kwargs)``; a plain tuple is taken as positional
arguments, a dict as keyword arguments, anything else as the single argument. With ``seed`` set,
every call (student's and reference's) starts from the same torch and numpy random state, so
functions that draw noise can be compared; the global random state is restored afterwards.

Results are compared recursively: tensors and arrays (shape, then values within
``atol + rtol * |expected|``), numbers, tuples, lists and dicts. ``compare=`` replaces this (:func:`difference`)
with a function ``(expected, got) -> None or a message``. Topic checkers that wrap these with the
course's reference functions and standard inputs live below the generic machinery.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import sys
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

FALLBACK = "using the reference implementation so the notebook keeps running"


@dataclass(frozen=True)
class Case:
    """One set of inputs: ``fn(*args, **kwargs)``; ``label`` names it in messages."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str | None = None


def case(*args, label: str | None = None, **kwargs) -> Case:
    """``case(mu, logvar)`` is the test input ``fn(mu, logvar)``."""
    return Case(tuple(args), dict(kwargs), label)


def _as_case(item) -> Case:
    if isinstance(item, Case):
        return item
    if isinstance(item, tuple):
        return Case(item)
    if isinstance(item, dict):
        return Case((), dict(item))
    return Case((item,))


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``status`` is "correct", "wrong", "error" or "not attempted"."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"


# --------------------------------------------------------------------------- describing


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def describe(value) -> str:
    """A short description of a value for messages: ``tensor of shape (4, 2)``."""
    if _is_tensor(value):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    if isinstance(value, (numbers.Number, str, type(None))):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return type(value).__name__


def _describe_case(fn, c: Case) -> str:
    if c.label:
        return c.label
    try:
        bound = inspect.signature(fn).bind(*c.args, **c.kwargs)
        parts = [f"{k}={describe(v)}" for k, v in bound.arguments.items()]
    except (TypeError, ValueError):
        parts = [describe(a) for a in c.args] + [f"{k}={describe(v)}" for k, v in c.kwargs.items()]
    return ", ".join(parts) or "no arguments"


# --------------------------------------------------------------------------- comparing


def _to_numpy(value) -> np.ndarray:
    if _is_tensor(value):
        value = value.detach().cpu()
        return (value.double() if value.is_floating_point() else value).numpy()
    return np.asarray(value)


def _shape_hint(expected: tuple, got: tuple) -> str:
    if math.prod(expected) == math.prod(got):
        if len(expected) == len(got):
            return " (the same number of elements: check the order of the dimensions)"
        return " (a dimension of size 1 too many or missing: check keepdim, squeeze, unsqueeze)"
    if len(got) < len(expected):
        return " (a dimension is missing: did you sum or average over one too many?)"
    if len(got) > len(expected):
        return " (one dimension too many: is a sum or mean missing?)"
    return ""


def _compare_arrays(expected, got, atol: float, rtol: float, path: str) -> str | None:
    kind = "tensor" if _is_tensor(expected) else "array"
    if kind == "tensor" and not _is_tensor(got):
        return f"{path} should be a torch tensor, got {describe(got)}"
    if kind == "array" and not isinstance(got, (np.ndarray, np.generic)) and not _is_tensor(got):
        return f"{path} should be a numpy array, got {describe(got)}"
    exp, out = _to_numpy(expected), _to_numpy(got)
    if exp.shape != out.shape:
        return (f"{path} has shape {tuple(out.shape)}, expected {tuple(exp.shape)}"
                + _shape_hint(tuple(exp.shape), tuple(out.shape)))
    if np.issubdtype(exp.dtype, np.floating) and not np.issubdtype(out.dtype, np.floating):
        return f"{path} has dtype {got.dtype}, expected a floating-point {kind} ({expected.dtype})"
    if exp.size == 0:
        return None
    bad_out = ~np.isfinite(out) if np.issubdtype(out.dtype, np.number) else None
    if bad_out is not None and (bad_out & np.isfinite(exp)).any():
        return f"{path} contains NaN or infinite values where finite ones were expected"
    if np.issubdtype(exp.dtype, np.floating) or np.issubdtype(out.dtype, np.floating):
        close = np.isclose(out, exp, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = out == exp
    if close.all():
        return None
    diff = np.where(close, 0.0, np.abs(out.astype(np.float64) - exp.astype(np.float64)))
    where = np.unravel_index(int(np.argmax(diff)), diff.shape)
    index = tuple(int(i) for i in where)
    return (f"{path} differs from the expected values in {int((~close).sum())} of {close.size} "
            f"entries; the largest difference is {float(diff[where]):.4g} at index {index} "
            f"(expected {exp[where].item():.6g}, got {out[where].item():.6g}; "
            f"tolerance atol={atol:g}, rtol={rtol:g})")


def difference(expected, got, *, atol: float = 1e-6, rtol: float = 1e-5,
               path: str = "the result") -> str | None:
    """``None`` if ``got`` matches ``expected``, else a sentence saying what differs.

    Tensors and arrays must have the same shape and values within ``atol + rtol * |expected|``;
    numbers likewise (a 0-d tensor or array counts as a number); tuples, lists and dicts are
    compared element by element; anything else with ``==``."""
    if _is_tensor(expected) or isinstance(expected, np.ndarray):
        return _compare_arrays(expected, got, atol, rtol, path)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return None if got == expected and type(got) is type(expected) else (
            f"{path} is {describe(got)}, expected {describe(expected)}")
    if isinstance(expected, numbers.Number):
        if _is_tensor(got) or isinstance(got, (np.ndarray, np.generic)):
            if _to_numpy(got).size != 1:
                return f"{path} should be a single number, got {describe(got)}"
            got = _to_numpy(got).reshape(()).item()
        if not isinstance(got, numbers.Number) or isinstance(got, bool):
            return f"{path} should be a number, got {describe(got)}"
        if isinstance(expected, complex) or isinstance(got, complex):
            ok = abs(got - expected) <= atol + rtol * abs(expected)
        elif math.isnan(expected):
            ok = math.isnan(got)
        else:
            ok = abs(got - expected) <= atol + rtol * abs(expected)
        return None if ok else (f"{path} is {got:.6g}, expected {expected:.6g} "
                                f"(tolerance atol={atol:g}, rtol={rtol:g})")
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{path} should be a {type(expected).__name__} of {len(expected)}, got {describe(got)}"
        if len(got) != len(expected):
            return f"{path} has {len(got)} elements, expected {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = difference(e, g, atol=atol, rtol=rtol, path=f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path} should be a dict, got {describe(got)}"
        if set(got) != set(expected):
            missing, extra = sorted(map(str, set(expected) - set(got))), sorted(map(str, set(got) - set(expected)))
            return f"{path} has the wrong keys (missing: {missing or 'none'}, unexpected: {extra or 'none'})"
        for key in expected:
            problem = difference(expected[key], got[key], atol=atol, rtol=rtol, path=f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    try:
        equal = bool(got == expected)
    except Exception:  # noqa: BLE001 - an exotic == is just "not equal"
        equal = False
    return None if equal else f"{path} is {describe(got)}, expected {describe(expected)}"


# --------------------------------------------------------------------------- calling


def _fresh(value):
    """A copy of an input, so that a function that changes its arguments in place cannot
    change the next call's inputs."""
    if _is_tensor(value):
        return value.detach().clone().requires_grad_(value.requires_grad)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Generator):
        clone = torch.Generator(device=value.device)
        clone.set_state(value.get_state())
        return clone
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_fresh(v) for v in value) if not hasattr(value, "_fields") else value
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - not copyable: pass the object itself
        return value


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Start from torch's and numpy's global random state for ``seed``; restore both after."""
    if seed is None:
        yield
        return
    torch = sys.modules.get("torch")
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        if torch is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        np.random.set_state(state)


def _call(fn, c: Case, seed):
    with _seeded(seed):
        return fn(*[_fresh(a) for a in c.args], **{k: _fresh(v) for k, v in c.kwargs.items()})


def _where(exc: BaseException) -> str:
    """Where the student's code failed: the innermost frame outside this module."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename != __file__:
            return f" at line {frame.lineno}: `{frame.line.strip()}`" if frame.line else ""
    return ""


def evaluate_function(name: str, student_fn, reference_fn: Callable, cases, *,
                      atol: float = 1e-6, rtol: float = 1e-5, seed: int | None = 0,
                      compare: Callable | None = None) -> Verdict:
    """Run ``student_fn`` and ``reference_fn`` on every case and judge the student's results
    (see the module docstring); nothing is printed."""
    if not callable(reference_fn):
        raise TypeError(f"the reference for {name!r} must be a function, got {describe(reference_fn)}")
    cases = [_as_case(c) for c in cases]
    if not cases:
        raise ValueError(f"the check of {name!r} needs at least one test case")
    if student_fn is None or student_fn is Ellipsis:
        return Verdict(name, "not attempted", f"○ {name}: not attempted yet — {FALLBACK}.")
    if not callable(student_fn):
        return Verdict(name, "wrong", f"✘ {name}: expected a function, got {describe(student_fn)} "
                                      f"— {FALLBACK}.")
    judge = compare or (lambda e, g: difference(e, g, atol=atol, rtol=rtol))
    for number, c in enumerate(cases, start=1):
        expected = _call(reference_fn, c, seed)
        inputs = _describe_case(reference_fn, c)
        try:
            got = _call(student_fn, c, seed)
        except NotImplementedError:
            return Verdict(name, "not attempted", f"○ {name}: not attempted yet — {FALLBACK}.")
        except Exception as exc:  # noqa: BLE001 - the student's error is reported, not raised
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
            return Verdict(
                name, "error",
                f"✘ {name}: your code raised {type(exc).__name__}"
                f"{': ' + message if message else ''}{_where(exc)}\n"
                f"  on test case {number} of {len(cases)} ({inputs}).\n"
                f"  Fix it and rerun the exercise cell and this one; meanwhile {FALLBACK}.")
        problem = judge(expected, got)
        if problem:
            return Verdict(
                name, "wrong",
                f"✘ {name}: wrong on test case {number} of {len(cases)} ({inputs}):\n"
                f"  {problem}.\n"
                f"  Fix it and rerun the exercise cell and this one; meanwhile {FALLBACK}.")
    cases_text = "the test case" if len(cases) == 1 else f"all {len(cases)} test cases"
    return Verdict(name, "correct", f"✔ {name}: correct on {cases_text}; your function is "
                                    "used from here on.")


def check_function(name: str, student_fn, reference_fn: Callable, cases, *,
                   atol: float = 1e-6, rtol: float = 1e-5, seed: int | None = 0,
                   compare: Callable | None = None, file=None):
    """Check ``student_fn`` against ``reference_fn`` on ``cases``, print a ✔/✘ message, and
    return the student's function when it is right, else the reference (see the module
    docstring). ``seed=None`` calls the functions without reseeding."""
    verdict = evaluate_function(name, student_fn, reference_fn, cases, atol=atol, rtol=rtol,
                                seed=seed, compare=compare)
    print(verdict.message, file=file or sys.stdout)
    return student_fn if verdict.passed else reference_fn


def evaluate_value(name: str, student_value, reference_value, *, atol: float = 1e-6,
                   rtol: float = 1e-5, compare: Callable | None = None) -> Verdict:
    """Judge a value (not a function): ``None`` or ``...`` counts as not attempted."""
    if (student_value is None or student_value is Ellipsis) and reference_value is not None:
        return Verdict(name, "not attempted", f"○ {name}: not attempted yet — using the "
                                              "reference value so the notebook keeps running.")
    problem = (compare(reference_value, student_value) if compare else
               difference(reference_value, student_value, atol=atol, rtol=rtol,
                          path="your answer"))
    if problem:
        return Verdict(name, "wrong", f"✘ {name}: wrong: {problem}.\n  Meanwhile the notebook "
                                      "goes on with the reference value.")
    return Verdict(name, "correct", f"✔ {name}: correct.")


def check_value(name: str, student_value, reference_value, *, atol: float = 1e-6,
                rtol: float = 1e-5, compare: Callable | None = None, file=None):
    """Print whether ``student_value`` matches ``reference_value``; return the student's value
    when it does, else the reference value."""
    verdict = evaluate_value(name, student_value, reference_value, atol=atol, rtol=rtol,
                             compare=compare)
    print(verdict.message, file=file or sys.stdout)
    return student_value if verdict.passed else reference_value


# --------------------------------------------------------------------------- notebooks 01-02
# Topic checkers: each runs the student's function on the course's standard inputs, compares
# it with an independent reference (a real nn.Conv2d, the library's losses, autograd) and
# returns the function to use from then on (the student's if right, else the reference).


def _report(verdict: Verdict, student_fn, reference_fn, file=None):
    print(verdict.message, file=file or sys.stdout)
    return student_fn if verdict.passed else reference_fn


def _with_hint(verdict: Verdict, hint: str) -> Verdict:
    head, sep, tail = verdict.message.partition("\n  Fix it")
    return Verdict(verdict.name, verdict.status, f"{head}\n  Hint: {hint}{sep}{tail}")


def _matches(fn, reference_fn, cases, **tol) -> bool:
    return evaluate_function("alternative", fn, reference_fn, cases, **tol).passed


def conv_output_size_reference(n: int, kernel: int = 4, stride: int = 2, padding: int = 1) -> int:
    """Side of the output of ``nn.Conv2d(kernel, stride, padding)`` on an n×n input, measured
    by running a real convolution (so it checks the formula independently)."""
    import torch

    conv = torch.nn.Conv2d(1, 1, kernel, stride, padding, bias=False)
    with torch.no_grad():
        return int(conv(torch.zeros(1, 1, n, n)).shape[-1])


def check_conv_output_size(student_fn, file=None):
    """Notebook 01, exercise 1: ``conv_output_size(n, kernel, stride, padding) -> int``."""
    cases = [case(64, 4, 2, 1), case(32, 4, 2, 1), case(4, 4, 2, 1), case(5, 3, 1, 0),
             case(28, 5, 1, 2), case(9, 4, 3, 0), case(7, 3, 2, 1)]
    verdict = evaluate_function("conv_output_size", student_fn, conv_output_size_reference, cases)
    if verdict.status == "wrong":
        verdict = _with_hint(verdict, "the formula is floor((n + 2·padding − kernel) / stride) + 1; "
                                      "use // so that the result is an integer")
    return _report(verdict, student_fn, conv_output_size_reference, file)


def autoencoder_reconstruct_reference(model, x):
    """model(x) clipped to [0, 1]: the forward pass of an autoencoder trained with the squared
    error returns the image itself (N×C×64×64), which may stray outside [0, 1]."""
    return model(x).clamp(0, 1)


def check_autoencoder_reconstruct(student_fn, file=None):
    """Notebook 01, exercise 2: ``reconstruct(model, x) -> x_hat`` in [0, 1]."""
    import torch

    from .models import Autoencoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        small = Autoencoder(num_latents=3).eval()
        x = (torch.rand(3, 1, 64, 64) < 0.1).float()
    cases = [case(small, x, label="an untrained Autoencoder(num_latents=3) and 3 images"),
             case(small, x[:1], label="the same model and 1 image")]
    with torch.no_grad():
        verdict = evaluate_function("reconstruct", student_fn, autoencoder_reconstruct_reference,
                                    cases, atol=1e-5)
        if verdict.status == "wrong" and _matches(student_fn, lambda m, xx: m(xx), cases, atol=1e-5):
            verdict = _with_hint(verdict, "the decoder's output can leave [0, 1]; clip it with "
                                          ".clamp(0, 1)")
        elif verdict.status == "wrong" and _matches(student_fn, lambda m, xx: torch.sigmoid(m(xx)),
                                                    cases, atol=1e-5):
            verdict = _with_hint(verdict, "this autoencoder's decoder outputs the image itself, "
                                          "not logits: no sigmoid, just clip to [0, 1]")
    return _report(verdict, student_fn, autoencoder_reconstruct_reference, file)


def sse_loss_reference(x_hat, x):
    """Squared error summed over pixels, averaged over the batch (the library's
    ``gaussian_recon`` with σ² = ½): x_hat, x N×C×H×W → scalar."""
    from .losses import gaussian_recon

    return gaussian_recon(x_hat, x, sigma=math.sqrt(0.5))


def check_sse_loss(student_fn, file=None):
    """Notebook 01, exercise 3: ``sse_loss(x_hat, x) -> scalar``."""
    import torch

    g = torch.Generator().manual_seed(1)
    cases = [case(torch.rand(4, 1, 8, 8, generator=g), (torch.rand(4, 1, 8, 8, generator=g) < .5).float()),
             case(torch.rand(1, 1, 64, 64, generator=g), torch.zeros(1, 1, 64, 64), label="one 64×64 image"),
             case(torch.rand(3, 2, 5, 5, generator=g), torch.rand(3, 2, 5, 5, generator=g),
                  label="3 images with 2 channels")]
    verdict = evaluate_function("sse_loss", student_fn, sse_loss_reference, cases, atol=1e-5)
    if verdict.status == "wrong":
        if _matches(student_fn, lambda a, b: ((a - b) ** 2).mean(), cases, atol=1e-5):
            verdict = _with_hint(verdict, "you averaged over the pixels too (Eq. 1 of the seed); "
                                          "sum over the pixels of each image, average over images")
        elif _matches(student_fn, lambda a, b: ((a - b) ** 2).sum(), cases, atol=1e-5):
            verdict = _with_hint(verdict, "you summed over the batch too; average over the images")
    return _report(verdict, student_fn, sse_loss_reference, file)


def _reparameterize_reference(mu, logvar):
    from .models.vae import VAE

    return VAE.reparameterize(mu, logvar)


def _reparameterize_problem(mu, logvar, z) -> str | None:
    """What is wrong with a sample z of N(mu, exp(logvar)) that should be reparameterised."""
    import torch

    if not _is_tensor(z):
        return f"z should be a tensor, got {describe(z)}"
    if z.shape != mu.shape:
        return f"z has shape {tuple(z.shape)}, expected {tuple(mu.shape)} (the shape of mu)"
    if not z.requires_grad:
        return ("z carries no gradient: it must be computed from mu and logvar with torch "
                "operations (z = mu + sigma * eps), not drawn by a sampler")
    grads = torch.autograd.grad(z.sum(), [mu, logvar], allow_unused=True)
    sigma = torch.exp(0.5 * logvar.detach())
    zd = z.detach()
    if grads[0] is None or not torch.allclose(grads[0], torch.ones_like(mu), atol=1e-5):
        return ("∂z/∂mu should be 1 for every element; "
                + ("z does not depend on mu" if grads[0] is None else
                   "a sampler such as torch.normal has no useful gradient: add mu to sigma * eps"))
    if grads[1] is None or not torch.allclose(grads[1], 0.5 * (zd - mu.detach()), atol=1e-4):
        return ("∂z/∂logvar should be ½·sigma·eps = ½·(z − mu); check the scale: "
                "sigma = exp(½·logvar), the standard deviation, not the variance exp(logvar)")
    eps = (zd - mu.detach()) / sigma
    mean, std = float(eps.mean()), float(eps.std())
    if abs(mean) > 0.05 or abs(std - 1) > 0.05:
        return (f"the noise eps = (z − mu)/sigma has mean {mean:.3f} and standard deviation "
                f"{std:.3f}; expected a standard normal (0 and 1): use torch.randn_like, "
                "not torch.rand (uniform)")
    return None


def check_reparameterize(student_fn, file=None):
    """Notebook 02: ``reparameterize(mu, logvar) -> z`` N×D, differentiable in mu and logvar.

    Judged without relying on the random stream: z has the shape of mu, ∂z/∂mu = 1,
    ∂z/∂logvar = ½(z − mu) (true for z = mu + exp(½ logvar)·eps whatever eps), and the implied
    eps = (z − mu)/sigma has mean 0 and standard deviation 1 over 40,000 draws."""
    import torch

    g = torch.Generator().manual_seed(2)
    mu = torch.randn(10_000, 4, generator=g) * 2
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.25), -3.0]).expand(10_000, 4).clone()
    inputs = [(mu, logvar, "mu, logvar of shape (10000, 4)"),
              (torch.zeros(1, 3), torch.zeros(1, 3), "one row of zeros")]
    name = "reparameterize"
    if student_fn is None or student_fn is Ellipsis:
        return _report(Verdict(name, "not attempted", f"○ {name}: not attempted yet — {FALLBACK}."),
                       student_fn, _reparameterize_reference, file)
    for number, (m, lv, label) in enumerate(inputs, start=1):
        m, lv = m.clone().requires_grad_(True), lv.clone().requires_grad_(True)
        try:
            with _seeded(number):
                z = student_fn(m, lv)
        except NotImplementedError:
            verdict = Verdict(name, "not attempted", f"○ {name}: not attempted yet — {FALLBACK}.")
            return _report(verdict, student_fn, _reparameterize_reference, file)
        except Exception as exc:  # noqa: BLE001 - reported to the student
            verdict = Verdict(name, "error", f"✘ {name}: your code raised {type(exc).__name__}: "
                                             f"{exc}{_where(exc)}\n  on test case {number} ({label}); "
                                             f"meanwhile {FALLBACK}.")
            return _report(verdict, student_fn, _reparameterize_reference, file)
        problem = _reparameterize_problem(m, lv, z) if number == 1 else (
            _reparameterize_problem(m, lv, z) if not _is_tensor(z) or z.shape != m.shape else None)
        if problem:
            verdict = Verdict(name, "wrong", f"✘ {name}: wrong on test case {number} ({label}):\n"
                                             f"  {problem}.\n  Fix it and rerun the exercise cell "
                                             f"and this one; meanwhile {FALLBACK}.")
            return _report(verdict, student_fn, _reparameterize_reference, file)
    verdict = Verdict(name, "correct", f"✔ {name}: correct (shape, gradients and noise "
                                       "statistics); your function is used from here on.")
    return _report(verdict, student_fn, _reparameterize_reference, file)


def check_kl_normal(student_fn, file=None):
    """Notebook 02: ``kl_divergence(mu, logvar) -> N×D`` KL per latent, against
    :func:`course_lib.losses.kl_normal` (itself tested against torch.distributions)."""
    import torch

    from .losses import kl_normal

    g = torch.Generator().manual_seed(3)
    cases = [case(torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)),
             case(torch.zeros(2, 4), torch.zeros(2, 4), label="the prior itself (KL = 0)"),
             case(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]]),
                  label="mu = (1, 0), sigma² = (1, 4)")]
    verdict = evaluate_function("kl_divergence", student_fn, kl_normal, cases, atol=1e-5)
    return _report(verdict, student_fn, kl_normal, file)


def negative_elbo_reference(logits, x, mu, logvar):
    """Negative ELBO per image, averaged over the batch (nats): Bernoulli cross-entropy summed
    over pixels + KL summed over latents (seed 003, Eq. 3-4, divided by the batch size)."""
    from .losses import bernoulli_recon, kl_normal

    return bernoulli_recon(logits, x) + kl_normal(mu, logvar).sum(1).mean()


def check_negative_elbo(student_fn, file=None):
    """Notebook 02: ``negative_elbo(logits, x, mu, logvar) -> scalar`` (nats per image)."""
    import torch
    import torch.nn.functional as F

    from .losses import kl_normal

    g = torch.Generator().manual_seed(4)
    cases = [case(torch.randn(4, 1, 8, 8, generator=g), (torch.rand(4, 1, 8, 8, generator=g) < .3).float(),
                  torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g),
                  label="4 images of 8×8, 3 latents"),
             case(torch.randn(1, 1, 64, 64, generator=g), (torch.rand(1, 1, 64, 64, generator=g) < .1).float(),
                  torch.randn(1, 10, generator=g), torch.randn(1, 10, generator=g),
                  label="1 image of 64×64, 10 latents")]
    verdict = evaluate_function("negative_elbo", student_fn, negative_elbo_reference, cases, atol=1e-4)
    if verdict.status == "wrong":
        def pixel_mean(logits, x, mu, logvar):
            return (F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1).mean()
                    + kl_normal(mu, logvar).sum(1).mean())
        if _matches(student_fn, pixel_mean, cases, atol=1e-4):
            verdict = _with_hint(verdict, "you averaged the reconstruction over the pixels: the "
                                          "reduction pitfall of seed 001; sum over pixels and "
                                          "latents, average over images")
    return _report(verdict, student_fn, negative_elbo_reference, file)
