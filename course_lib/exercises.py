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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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


def step_verdict(name: str, problem: str | None, hint: str | None, success: str) -> Verdict:
    """The verdict of a checker that compares a student's whole step or function with the
    library's: wrong (the problem, an optional hint, and the fallback) or correct (``success``)."""
    if problem:
        hint_line = f"\n  Hint: {hint}." if hint else ""
        return Verdict(name, "wrong", f"✘ {name}: wrong: {problem}.{hint_line}\n  Fix it and rerun "
                                      f"the exercise cell and this one; meanwhile {FALLBACK}.")
    return Verdict(name, "correct", f"✔ {name}: {success}")


def not_attempted(name: str) -> Verdict:
    """The verdict on an exercise left as it was (``None``, ``...`` or ``NotImplementedError``)."""
    return Verdict(name, "not attempted", f"○ {name}: not attempted yet — {FALLBACK}.")


def raised(name: str, exc: BaseException, context: str, hints: dict | None = None) -> Verdict:
    """The verdict on a student's function that raised ``exc``: its type, last message line and
    the line of the student's code, then ``context`` (on which input), a hint and the fallback.
    ``hints``: ``{(fragment, ...): hint}``; the first hint one of whose fragments is in the
    exception's text is given."""
    text = str(exc).strip()
    message = text.splitlines()[-1] if text else ""
    hint = next((h for fragments, h in (hints or {}).items() if any(f in text for f in fragments)), "")
    hint_line = f"\n  Hint: {hint}" if hint else ""
    return Verdict(name, "error", f"✘ {name}: your code raised {type(exc).__name__}"
                                  f"{': ' + message if message else ''}{_where(exc)}\n"
                                  f"  {context}.{hint_line}\n"
                                  f"  Fix it and rerun the exercise cell and this one; meanwhile {FALLBACK}.")


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
def preserved_random_state():
    """Restore, on exit, every torch random state that ``torch.manual_seed`` touches: the CPU
    generator's, every CUDA device's and Apple's MPS device's (``torch.random.fork_rng(devices=[])``
    would keep only the CPU's: a checker's seed would then change the GPU's random stream of
    the student's notebook). A no-op if torch was never imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    mps_backend = getattr(torch.backends, "mps", None)
    mps = (torch.mps.get_rng_state()
           if mps_backend is not None and mps_backend.is_available() else None)
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        if mps is not None:
            torch.mps.set_rng_state(mps)


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
            with preserved_random_state():
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        np.random.set_state(state)


def _call(fn, c: Case, seed, inputs=None):
    args, kwargs = inputs if inputs is not None else _inputs(c)
    with _seeded(seed):
        return fn(*args, **kwargs)


def _inputs(c: Case):
    """Fresh copies of a case's arguments (see :func:`_fresh`)."""
    return [_fresh(a) for a in c.args], {k: _fresh(v) for k, v in c.kwargs.items()}


def _same_array(a, b) -> bool:
    if _is_tensor(a):
        a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    try:
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    except TypeError:  # arrays of objects: no in-place check
        return True


def _changed_inputs(reference_fn, c: Case, inputs) -> list[str]:
    """The names of the case's tensor or array arguments that the call changed in place."""
    try:
        names = list(inspect.signature(reference_fn).parameters)
    except (TypeError, ValueError):
        names = []
    args, kwargs = inputs
    changed = []
    for i, (given, original) in enumerate(zip(args, c.args)):
        if (_is_tensor(original) or isinstance(original, np.ndarray)) and not _same_array(given, original):
            changed.append(names[i] if i < len(names) else f"argument {i + 1}")
    for k, original in c.kwargs.items():
        if (_is_tensor(original) or isinstance(original, np.ndarray)) and not _same_array(kwargs[k], original):
            changed.append(k)
    return changed


_LIBRARY_DIR = str(Path(__file__).resolve().parent)


def _is_library_frame(filename: str) -> bool:
    """A frame of course_lib, an installed package (torch, numpy, ...) or Python itself."""
    if filename.startswith("<frozen") or "site-packages" in filename or "dist-packages" in filename:
        return True
    try:
        return str(Path(filename).resolve()).startswith(_LIBRARY_DIR)
    except (OSError, ValueError):
        return False


def _where(exc: BaseException) -> str:
    """Where the student's code failed: the innermost frame of the student's own code (a
    notebook cell or their file), else the innermost frame outside this module."""
    frames = list(reversed(traceback.extract_tb(exc.__traceback__)))
    mine = [f for f in frames if not _is_library_frame(f.filename)]
    inside = [f for f in frames if f.filename != __file__]
    for frame in (mine or inside)[:1]:
        return f" at line {frame.lineno}: `{frame.line.strip()}`" if frame.line else ""
    return ""


def _input_names(reference_fn, c: Case) -> list[tuple[str, object]]:
    """(name, value) of a case's arguments, named after the reference's parameters."""
    try:
        names = list(inspect.signature(reference_fn).parameters)
    except (TypeError, ValueError):
        names = []
    return ([(names[i] if i < len(names) else f"argument {i + 1}", a) for i, a in enumerate(c.args)]
            + list(c.kwargs.items()))


def _gradients(out, leaves):
    """d(sum of each output)/d(each leaf): one list per output, zeros where no gradient flows."""
    import torch

    outs = out if isinstance(out, (tuple, list)) else (out,)
    result = []
    for o in outs:
        if not (_is_tensor(o) and o.requires_grad):
            result.append([torch.zeros_like(leaf) for leaf in leaves])
            continue
        gs = torch.autograd.grad(o.sum(), leaves, allow_unused=True, retain_graph=True)
        result.append([torch.zeros_like(leaf) if g is None else g for g, leaf in zip(gs, leaves)])
    return result


def _gradient_problem(reference_fn, c: Case, expected, got, ref_inputs, got_inputs, atol, rtol) -> str | None:
    """Whether the student's outputs have the reference's gradients with respect to every input
    that requires one (a .detach() in the wrong place has the right value but no gradient)."""
    import torch

    def leaves(inputs):
        args, kwargs = inputs
        values = list(args) + [kwargs[k] for k in c.kwargs]
        return [v for v in values if _is_tensor(v) and v.requires_grad]

    named = [n for n, v in _input_names(reference_fn, c) if _is_tensor(v) and v.requires_grad]
    want, have = _gradients(expected, leaves(ref_inputs)), _gradients(got, leaves(got_inputs))
    for i, (w_out, h_out) in enumerate(zip(want, have)):
        for name, w, h in zip(named, w_out, h_out):
            if not torch.allclose(h.detach().double(), w.detach().double(), atol=atol, rtol=rtol):
                which = f"output {i + 1}" if len(want) > 1 else "the output"
                flows = bool(w.abs().sum() > 0)
                return (f"right values, but the gradient of {which} with respect to `{name}` is wrong: "
                        + ("it should flow and "
                           + ("none does (a .detach(), .item() or torch.tensor(...) cuts it)"
                              if not bool(h.abs().sum() > 0) else "it has the wrong size or sign")
                           if flows else "none should flow, but some does (a .detach() is missing)"))
    return None


def evaluate_function(name: str, student_fn, reference_fn: Callable, cases, *,
                      atol: float = 1e-6, rtol: float = 1e-5, seed: int | None = 0,
                      compare: Callable | None = None, gradients: bool = False) -> Verdict:
    """Run ``student_fn`` and ``reference_fn`` on every case and judge the student's results
    (see the module docstring); nothing is printed. With ``gradients``, the outputs must also
    have the reference's gradients with respect to every input tensor that requires one."""
    if not callable(reference_fn):
        raise TypeError(f"the reference for {name!r} must be a function, got {describe(reference_fn)}")
    cases = [_as_case(c) for c in cases]
    if not cases:
        raise ValueError(f"the check of {name!r} needs at least one test case")
    if student_fn is None or student_fn is Ellipsis:
        return not_attempted(name)
    if not callable(student_fn):
        return Verdict(name, "wrong", f"✘ {name}: expected a function, got {describe(student_fn)} "
                                      f"— {FALLBACK}.")
    judge = compare or (lambda e, g: difference(e, g, atol=atol, rtol=rtol))
    for number, c in enumerate(cases, start=1):
        ref_inputs = _inputs(c)
        expected = _call(reference_fn, c, seed, ref_inputs)
        inputs = _describe_case(reference_fn, c)
        given = _inputs(c)
        try:
            got = _call(student_fn, c, seed, given)
        except NotImplementedError:
            return not_attempted(name)
        except Exception as exc:  # noqa: BLE001 - the student's error is reported, not raised
            return raised(name, exc, f"on test case {number} of {len(cases)} ({inputs})")
        changed = _changed_inputs(reference_fn, c, given)
        if changed:
            return Verdict(
                name, "wrong",
                f"✘ {name}: on test case {number} of {len(cases)} ({inputs}) your function changed its "
                f"input{'s' if len(changed) > 1 else ''} {', '.join(f'`{n}`' for n in changed)} in place "
                f"(an in-place operation such as .sort(), pow_() or += on an argument): the caller's "
                f"data would change too. Work on a copy or use the out-of-place form.\n"
                f"  Fix it and rerun the exercise cell and this one; meanwhile {FALLBACK}.")
        problem = judge(expected, got)
        if not problem and gradients:
            problem = _gradient_problem(reference_fn, c, expected, got, ref_inputs, given, atol, rtol)
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
                   compare: Callable | None = None, gradients: bool = False, file=None):
    """Check ``student_fn`` against ``reference_fn`` on ``cases``, print a ✔/✘ message, and
    return the student's function when it is right, else the reference (see the module
    docstring). ``seed=None`` calls the functions without reseeding; ``gradients=True`` also
    compares the gradients with respect to the inputs that require them."""
    verdict = evaluate_function(name, student_fn, reference_fn, cases, atol=atol, rtol=rtol,
                                seed=seed, compare=compare, gradients=gradients)
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
    """Notebook 01, exercise 3: ``reconstruct(model, x) -> x_hat`` in [0, 1]."""
    import torch

    from .models import Autoencoder

    with preserved_random_state():
        torch.manual_seed(0)
        small = Autoencoder(num_latents=3).eval()
        x = (torch.rand(3, 1, 64, 64) < 0.1).float()
        bright, dark = copy.deepcopy(small), copy.deepcopy(small)
        with torch.no_grad():   # decoders whose outputs leave [0, 1] above and below
            list(bright.parameters())[-1].add_(1.0)
            list(dark.parameters())[-1].sub_(1.0)
    cases = [case(small, x, label="an untrained Autoencoder(num_latents=3) and 3 images"),
             case(small, x[:1], label="the same model and 1 image"),
             case(bright, x, label="a decoder whose outputs go above 1"),
             case(dark, x, label="a decoder whose outputs go below 0")]
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
    """Notebook 01, exercise 4: ``sse_loss(x_hat, x) -> scalar``."""
    import torch

    g = torch.Generator().manual_seed(1)
    cases = [case(torch.rand(4, 1, 8, 8, generator=g), (torch.rand(4, 1, 8, 8, generator=g) < .5).float()),
             case(torch.rand(1, 1, 64, 64, generator=g), torch.zeros(1, 1, 64, 64), label="one 64×64 image"),
             case(torch.rand(3, 2, 5, 5, generator=g), torch.rand(3, 2, 5, 5, generator=g),
                  label="3 images with 2 channels")]
    verdict = evaluate_function("sse_loss", student_fn, sse_loss_reference, cases, atol=1e-5)
    if verdict.status == "wrong":
        if _matches(student_fn, lambda a, b: ((a - b) ** 2).mean(), cases, atol=1e-5):
            verdict = _with_hint(verdict, "you averaged over the pixels too (Eq. 1 of source paper 003); "
                                          "sum over the pixels of each image, average over images")
        elif _matches(student_fn, lambda a, b: ((a - b) ** 2).sum(), cases, atol=1e-5):
            verdict = _with_hint(verdict, "you summed over the batch too; average over the images")
    return _report(verdict, student_fn, sse_loss_reference, file)


def flat_features_reference(side: int = 64, channels: int = 32, convolutions: int = 4) -> int:
    """Number of values the encoder's first Linear layer receives: ``channels`` feature maps
    of the side left after ``convolutions`` convolutions (kernel 4, stride 2, padding 1) of a
    side×side image, measured by running them (32 × 4 × 4 = 512 for the course's encoder)."""
    import torch

    convs = [torch.nn.Conv2d(1 if i == 0 else channels, channels, 4, 2, 1) for i in range(convolutions)]
    with torch.no_grad():
        return int(torch.nn.Sequential(*convs, torch.nn.Flatten())(torch.zeros(1, 1, side, side)).shape[1])


def check_flat_features(student_value, file=None):
    """Notebook 01, exercise 2: the ``in_features`` of the encoder's first Linear layer (an int:
    the values that ``nn.Flatten`` makes of the last convolution's output). Returns the value
    to build the network with: the student's when right, else the reference (512)."""
    name = "flat_features"
    expected = flat_features_reference()
    value = student_value
    if _is_tensor(value) or isinstance(value, np.generic):
        value = _to_numpy(value).reshape(-1)[0].item() if _to_numpy(value).size == 1 else value
    if value is None or value is Ellipsis:
        verdict = Verdict(name, "not attempted", f"○ {name}: not attempted yet — using the "
                                                 f"reference value ({expected}) so the notebook keeps running.")
    elif isinstance(value, bool) or not isinstance(value, numbers.Integral) and not (
            isinstance(value, float) and value.is_integer()):
        verdict = Verdict(name, "wrong", f"✘ {name}: expected a whole number of features, got "
                                         f"{describe(student_value)}; meanwhile the notebook uses "
                                         f"{expected}.")
    elif int(value) == expected:
        verdict = Verdict(name, "correct", f"✔ {name}: correct ({expected}); your value builds the "
                                           "network below.")
    else:
        value = int(value)
        hints = {4 * 4: "that is one feature map; the last convolution has 32 channels",
                 32 * 4: "either the side is not squared (32 × 4; a feature map is side × side) or "
                         "no convolution has its padding (32 × 2 × 2; each has padding 1)",
                 32 * 64 * 64: "64 is the side of the input; use the side after the four "
                               "convolutions (your conv_output_size, applied four times)",
                 32 * 8 * 8: "that is the side after three convolutions; the encoder has four",
                 32 * 31 * 31: "forgot the padding: each convolution has padding 1"}
        hint = hints.get(value, "channels × side × side, with the side after four convolutions")
        verdict = Verdict(name, "wrong", f"✘ {name}: wrong: {value}, expected another number.\n"
                                         f"  Hint: {hint}.\n  Meanwhile the notebook builds the "
                                         f"network with the reference value.")
    print(verdict.message, file=file or sys.stdout)
    return int(value) if verdict.passed else expected


def autoencoder_train_step_reference(model, x, optimizer):
    """One update of an autoencoder: the library's own step (``CourseModel.training_step``:
    zero the gradients, the loss of ``model.loss_terms`` — the squared error of ``model(x)``
    summed over pixels, averaged over the batch — backward, one optimiser step). Returns the
    batch's loss before the update (a detached scalar tensor).

    It calls ``CourseModel.training_step`` itself, not ``model.training_step``: notebook 01's
    ``YourStepAutoencoder`` overrides the latter with the student's step, which may be this
    function (the fallback), and must not call itself back."""
    from .models.base import CourseModel

    return CourseModel.training_step(model, x, 0, {"model": optimizer})["loss"]


def _train_step_outcome(fn, model, batches, lr: float):
    """Run ``fn(model, x, optimizer)`` on each batch, from a copy of ``model`` and a fresh SGD
    optimiser; return (the returned losses, the weights after the last call, the copy)."""
    import torch

    work = copy.deepcopy(model)
    optimizer = torch.optim.SGD(work.parameters(), lr=lr)
    losses = [fn(work, xb.clone(), optimizer) for xb in batches]
    return losses, [p.detach().clone() for p in work.parameters()], work


def check_train_step(student_fn, file=None):
    """Notebook 01, exercise 5: ``train_step(model, x, optimizer) -> loss``, one update of an
    autoencoder (forward, squared-error loss, backward, optimiser step).

    Compared with the library's own step (:func:`autoencoder_train_step_reference`) on fixed
    batches: two calls in a row, from the same weights (an untrained ``Autoencoder``, float64),
    each with its own plain-SGD optimiser, so that every weight after the update and each
    returned loss can be compared tightly; the second call catches gradients that were not
    zeroed. Typical mistakes are named."""
    import torch
    import torch.nn.functional as F

    from .models import Autoencoder

    name = "train_step"
    with preserved_random_state():
        torch.manual_seed(0)
        model = Autoencoder(num_latents=3).double().train()
        g = torch.Generator().manual_seed(5)
        batches = [(torch.rand(4, 1, 64, 64, generator=g, dtype=torch.float64) < 0.1).double()
                   for _ in range(2)]
    lr = 1e-4
    start = [p.detach().clone() for p in model.parameters()]
    if student_fn is None or student_fn is Ellipsis:
        return _report(not_attempted(name),
                       student_fn, autoencoder_train_step_reference, file)
    expected_losses, expected_weights, _ = _train_step_outcome(
        autoencoder_train_step_reference, model, batches, lr)
    try:
        got_losses, got_weights, work = _train_step_outcome(student_fn, model, batches, lr)
    except NotImplementedError:
        return _report(not_attempted(name),
                       student_fn, autoencoder_train_step_reference, file)
    except Exception as exc:  # noqa: BLE001 - reported to the student
        verdict = raised(name, exc, "on an untrained Autoencoder and a batch of 4 images")
        return _report(verdict, student_fn, autoencoder_train_step_reference, file)

    def close(a, b):
        return difference(a, b, atol=1e-10, rtol=1e-7) is None

    weights_ok = all(close(e, w) for e, w in zip(expected_weights, got_weights))
    problem, hint = None, None
    if not weights_ok:
        def first(fn):  # the weights after one call of fn
            return _train_step_outcome(fn, model, batches[:1], lr)[1]

        def no_zero_grad(m, x, opt):
            loss = ((m(x) - x) ** 2).flatten(1).sum(1).mean()
            loss.backward()
            opt.step()
            return loss.detach()

        def clipped(m, x, opt):
            opt.zero_grad()
            loss = ((m(x).clamp(0, 1) - x) ** 2).flatten(1).sum(1).mean()
            loss.backward()
            opt.step()
            return loss.detach()

        def pixel_mean(m, x, opt):
            opt.zero_grad()
            loss = F.mse_loss(m(x), x)
            loss.backward()
            opt.step()
            return loss.detach()

        def batch_sum(m, x, opt):
            opt.zero_grad()
            loss = ((m(x) - x) ** 2).sum()
            loss.backward()
            opt.step()
            return loss.detach()

        unchanged = all(close(s, w) for s, w in zip(start, got_weights))
        no_grads = all(p.grad is None or not bool(p.grad.abs().sum()) for p in work.parameters())
        if unchanged and no_grads:
            problem = "the weights did not change and no gradient is left in the model"
            hint = ("the order is optimizer.zero_grad() → forward → loss → loss.backward() → "
                    "optimizer.step(); was backward() called, and before step()?")
        elif unchanged:
            problem = "the weights did not change although gradients were computed"
            hint = "call optimizer.step() after loss.backward(): it is what moves the weights"
        elif all(close(e, w) for e, w in zip(first(autoencoder_train_step_reference), first(student_fn))):
            problem = "the first update is right, the second is not"
            hint = ("call optimizer.zero_grad() at the start of every step: backward() adds the "
                    "new gradients to the old ones")
        else:
            mistakes = [(no_zero_grad, "call optimizer.zero_grad() at the start of every step: "
                                       "backward() adds the new gradients to the old ones"),
                        (clipped, "train on the raw output model(x), not the clipped reconstruction: "
                                  "clamp has no gradient outside [0, 1]"),
                        (pixel_mean, "you averaged over the pixels (F.mse_loss): use the loss of "
                                     "Exercise 4, summed over the pixels of each image"),
                        (batch_sum, "you summed over the batch too: average over the images")]
            problem = "the weights after the update differ from the library's step"
            for alternative, words in mistakes:
                outcome = _train_step_outcome(alternative, model, batches, lr)[1]
                if all(close(a, w) for a, w in zip(outcome, got_weights)):
                    hint = words
                    break
            hint = hint or ("the loss is sse_loss(model(x), x) (Exercise 4); the steps are "
                            "zero_grad, forward, loss, backward, step")
    else:
        if any(v is None for v in got_losses):
            problem = "the function returned None"
            hint = "return the batch's loss (loss.detach() or loss.item())"
        else:
            for number, (e, g_) in enumerate(zip(expected_losses, got_losses), start=1):
                diff = difference(float(e), g_, atol=1e-6, rtol=1e-6, path="the returned loss")
                if diff:
                    problem = f"{diff} (call {number})"
                    hint = ("return the loss of the batch computed before the update, as a number "
                            "or a detached scalar tensor: loss.detach()")
                    break
    verdict = step_verdict(name, problem, hint, "same loss and same weights as the library's step "
                                                "after two updates; your function trains the "
                                                "autoencoders from here on.")
    return _report(verdict, student_fn, autoencoder_train_step_reference, file)


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
                   "it is −1: z = mu + sigma * eps, with a plus sign"
                   if torch.allclose(grads[0], -torch.ones_like(mu), atol=1e-5) else
                   "a sampler such as torch.normal has no useful gradient: add mu to sigma * eps"))
    if grads[1] is None or not torch.allclose(grads[1], 0.5 * (zd - mu.detach()), atol=1e-4):
        return ("∂z/∂logvar should be ½·sigma·eps = ½·(z − mu); check the scale: "
                "sigma = exp(½·logvar), the standard deviation, not the variance exp(logvar)")
    eps = (zd - mu.detach()) / sigma
    if eps.shape[0] > 1 and bool((eps.std(0) < 1e-6).any()):
        return ("every image got the same noise (eps drawn once, of shape D?): draw one eps per "
                "image and latent, torch.randn_like(mu)")
    if eps.shape[1] > 1 and eps.shape[0] > 100:
        corr = torch.corrcoef(eps.T.double())
        off = (corr - torch.eye(eps.shape[1], dtype=corr.dtype)).abs().max()
        if float(off) > 0.1:
            return (f"the noise of different latents is correlated (up to {float(off):.2f}; eps of "
                    "shape N×1 shared by every latent?): each latent needs its own draw, "
                    "torch.randn_like(mu)")
    mean, std = float(eps.mean()), float(eps.std())
    if abs(mean) > 0.05 or abs(std - 1) > 0.05:
        return (f"the noise eps = (z − mu)/sigma has mean {mean:.3f} and standard deviation "
                f"{std:.3f}; expected a standard normal (0 and 1): use torch.randn_like(mu) "
                "(torch.rand is uniform, and a scaled draw is not standard)")
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
        return _report(not_attempted(name),
                       student_fn, _reparameterize_reference, file)
    for number, (m, lv, label) in enumerate(inputs, start=1):
        m, lv = m.clone().requires_grad_(True), lv.clone().requires_grad_(True)
        try:
            with _seeded(number):
                z = student_fn(m, lv)
        except NotImplementedError:
            verdict = not_attempted(name)
            return _report(verdict, student_fn, _reparameterize_reference, file)
        except Exception as exc:  # noqa: BLE001 - reported to the student
            return _report(raised(name, exc, f"on test case {number} ({label})"), student_fn,
                           _reparameterize_reference, file)
        problem = _reparameterize_problem(m, lv, z) if number == 1 else (
            _reparameterize_problem(m, lv, z) if not _is_tensor(z) or z.shape != m.shape else None)
        if problem is None and number == 1:   # two calls in a row must draw different noise
            with _seeded(number):
                first, second = student_fn(m, lv), student_fn(m, lv)
            if torch.equal(first.detach(), second.detach()):
                problem = ("two calls in a row gave the same z: the function reseeds (torch.manual_seed "
                           "or a new Generator inside it), so training would see the same noise at every "
                           "step; draw from torch's random stream with torch.randn_like(mu)")
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
    over pixels + KL summed over latents (source paper 003, Eq. 3-4, divided by the batch size)."""
    from .losses import bernoulli_recon, kl_normal

    return bernoulli_recon(logits, x) + kl_normal(mu, logvar).sum(1).mean()


def check_negative_elbo(student_fn, file=None):
    """Notebook 02: ``negative_elbo(logits, x, mu, logvar) -> scalar`` (nats per image); names
    the mistakes of :data:`ELBO_MISTAKES` (the mean over the pixels, the signs, a double
    sigmoid)."""
    import torch

    g = torch.Generator().manual_seed(4)
    cases = [case(torch.randn(4, 1, 8, 8, generator=g), (torch.rand(4, 1, 8, 8, generator=g) < .3).float(),
                  torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g),
                  label="4 images of 8×8, 3 latents"),
             case(torch.randn(1, 1, 64, 64, generator=g), (torch.rand(1, 1, 64, 64, generator=g) < .1).float(),
                  torch.randn(1, 10, generator=g), torch.randn(1, 10, generator=g),
                  label="1 image of 64×64, 10 latents")]
    verdict = evaluate_function("negative_elbo", student_fn, negative_elbo_reference, cases, atol=1e-4)
    if verdict.status == "wrong":
        hint = _elbo_mistake(student_fn, cases, lambda logits, x, mu, logvar, **kw:
                             _elbo_variant(logits, x, mu, logvar, 1.0, **kw), atol=1e-4)
        if hint:
            verdict = _with_hint(verdict, hint)
    return _report(verdict, student_fn, negative_elbo_reference, file)


def _elbo_variant(logits, x, mu, logvar, beta=1.0, *, pixels="sum", sign=1.0, kl_sign=1.0,
                  double_sigmoid=False, beta_on="kl"):
    """A (wrong) variant of the negative (β-)ELBO, to name a student's mistake: ``pixels``
    "mean" (source paper 001's reduction pitfall), ``sign`` −1 (the ELBO itself), ``kl_sign`` −1 (the
    KL subtracted), ``double_sigmoid`` (sigmoid of logits fed to a loss that applies its own),
    ``beta_on`` "none" (β forgotten) or "recon" (β on the wrong term)."""
    import torch
    import torch.nn.functional as F

    from .losses import kl_normal

    inputs = torch.sigmoid(logits) if double_sigmoid else logits
    per_pixel = F.binary_cross_entropy_with_logits(inputs, x, reduction="none").flatten(1)
    recon = (per_pixel.sum(1) if pixels == "sum" else per_pixel.mean(1)).mean()
    kl = kl_normal(mu, logvar).sum(1).mean()
    if beta_on == "kl":
        total = recon + kl_sign * beta * kl
    elif beta_on == "recon":
        total = beta * recon + kl_sign * kl
    else:
        total = recon + kl_sign * kl
    return sign * total


#: The mistakes of a negative (β-)ELBO that the checkers of notebooks 02 and 03 name: keyword
#: arguments of :func:`_elbo_variant` and the hint shown when a student's function matches.
ELBO_MISTAKES = [
    (dict(pixels="mean"), "you averaged the reconstruction over the pixels: the reduction "
                          "pitfall of source paper 001 (it acts like a KL weight 4096 times larger); sum "
                          "over the pixels and the latents, average over the images"),
    (dict(sign=-1.0), "the sign: you returned the ELBO, which training maximises; the loss to "
                      "minimise is its negative, reconstruction + KL"),
    (dict(kl_sign=-1.0), "the sign of the KL: it is added to the reconstruction (KL ≥ 0 is a "
                         "cost); with the source paper's formula keep its leading minus, "
                         "−½ Σ (1 + log σ² − μ² − σ²)"),
    (dict(double_sigmoid=True), "a double sigmoid: binary_cross_entropy_with_logits applies the "
                                "sigmoid itself, so pass the logits, not sigmoid(logits)"),
    (dict(pixels="mean", double_sigmoid=True), "two mistakes: a double sigmoid (pass the logits "
                                               "to binary_cross_entropy_with_logits) and the mean "
                                               "over the pixels (sum them)"),
]


def _elbo_mistake(student_fn, cases, variant, atol, extra=()) -> str | None:
    """The hint of the first mistake (:data:`ELBO_MISTAKES` + ``extra``) whose variant the
    student's function matches on ``cases``, else None."""
    for kwargs, hint in [*ELBO_MISTAKES, *extra]:
        if _matches(student_fn, lambda *a, kw=kwargs: variant(*a, **kw), cases, atol=atol):
            return hint
    return None


def beta_vae_loss_reference(logits, x, mu, logvar, beta):
    """Negative β-ELBO per image, averaged over the batch (nats): Bernoulli cross-entropy summed
    over pixels + β · KL summed over latents (source paper 000, Eq. 1; source paper 003, Eq. 8)."""
    from .losses import bernoulli_recon, kl_normal

    return bernoulli_recon(logits, x) + beta * kl_normal(mu, logvar).sum(1).mean()


def check_beta_vae_loss(student_fn, file=None):
    """Notebook 03, exercise 1: ``beta_vae_loss(logits, x, mu, logvar, beta) -> scalar``, against
    the library's pieces for β = 1, 4 and 100 (and a 1-image batch); names the mistakes of
    :data:`ELBO_MISTAKES`, a forgotten β and β on the wrong term."""
    import torch

    g = torch.Generator().manual_seed(3)
    cases = [case(torch.randn(4, 1, 64, 64, generator=g), (torch.rand(4, 1, 64, 64, generator=g) < 0.2).float(),
                  torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g), beta,
                  label=f"4 images, 10 latents, β = {beta:g}")
             for beta in (1.0, 4.0, 100.0)]
    cases.append(case(torch.randn(1, 1, 64, 64, generator=g), (torch.rand(1, 1, 64, 64, generator=g) < 0.1).float(),
                      torch.randn(1, 3, generator=g), torch.randn(1, 3, generator=g), 8.0,
                      label="1 image, 3 latents, β = 8"))
    verdict = evaluate_function("beta_vae_loss", student_fn, beta_vae_loss_reference, cases,
                                atol=1e-3, rtol=1e-5)
    if verdict.status == "wrong":
        hint = _elbo_mistake(student_fn, cases, _elbo_variant, atol=1e-3, extra=[
            (dict(beta_on="none"), "β is missing: the KL term is multiplied by beta"),
            (dict(beta_on="recon"), "β multiplies the KL term, not the reconstruction")])
        if hint:
            verdict = _with_hint(verdict, hint)
    return _report(verdict, student_fn, beta_vae_loss_reference, file)


# --------------------------------------------------------------------------- notebooks 04, 05, 08
# Capacity penalty (04), the dimension-wise permutation and FactorVAE's training step (05).


def capacity_loss_reference(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000,
                            penalty="abs"):
    """γ·|KL − C(step)| or γ·max(0, KL − C(step)) (nats), from the library's
    :func:`~course_lib.losses.capacity_schedule` and :func:`~course_lib.losses.capacity_penalty`
    (source paper 001 §1.3.3 and §2.3); differentiable in ``kl``."""
    from .losses import capacity_penalty, capacity_schedule

    return capacity_penalty(kl, capacity_schedule(step, c_start, c_max, c_steps), gamma, penalty)


def _capacity_cases():
    import torch

    return [
        case(torch.tensor(0.2), 0, penalty="abs", label="step 0, KL below C_start"),
        case(torch.tensor(3.0), 250, c_steps=1000, penalty="abs", label="a quarter of the ramp"),
        case(torch.tensor(3.0), 250, c_steps=1000, penalty="hinge", label="hinge, KL below C"),
        case(torch.tensor(30.0), 5000, c_steps=1000, penalty="hinge", label="after the ramp, KL above C_max"),
        case(torch.tensor(26.0), 2000, gamma=10.0, c_start=1.0, c_max=20.0, c_steps=500, penalty="abs",
             label="other γ and schedule"),
        case(torch.tensor(8.0), 400, gamma=3.0, c_start=2.0, c_max=12.0, c_steps=800, penalty="hinge",
             label="hinge, KL above C in the ramp"),
        case(torch.tensor(20.0), 0, c_steps=0, penalty="abs", label="no ramp (c_steps = 0): C = C_max at once"),
    ]


def _capacity_gradient_problem(student_fn, c: Case) -> str | None:
    """What is wrong with d(penalty)/d(KL) of the student's answer on one case, or None."""
    import torch

    kl = c.args[0].detach().clone().double().requires_grad_(True)
    expected_kl = c.args[0].detach().clone().double().requires_grad_(True)
    args, kwargs = (kl, *c.args[1:]), c.kwargs
    with _seeded(0):
        out = student_fn(*args, **kwargs)
    if not _is_tensor(out):
        return (f"it returned {describe(out)}, not a tensor: the penalty must be a torch tensor "
                "computed from kl, so that the loss can be differentiated")
    if out.grad_fn is None and not out.requires_grad:
        return ("the penalty carries no gradient with respect to kl (it was made from a Python "
                "number, e.g. float(kl) or torch.tensor(...), or computed under no_grad): the "
                "training loop could not learn from it. Compute it with torch operations on kl "
                "itself: (kl - C).abs() or (kl - C).clamp(min=0)")
    (grad,) = torch.autograd.grad(out.sum(), kl, allow_unused=True)
    (want,) = torch.autograd.grad(capacity_loss_reference(expected_kl, *c.args[1:], **kwargs), expected_kl)
    if grad is None:
        return "the penalty does not depend on kl: its gradient with respect to kl is missing"
    if not torch.allclose(grad.double(), want, atol=1e-6, rtol=1e-5):
        return (f"d(penalty)/d(KL) is {float(grad):g}, expected {float(want):g} (γ·sign(KL − C) for "
                "'abs', γ when KL > C and 0 otherwise for 'hinge')")
    return None


def check_capacity_loss(student_fn, file=None):
    """Notebook 04: ``capacity_loss(kl, step, gamma, c_start, c_max, c_steps, penalty)``.

    Compared with :func:`capacity_loss_reference` before, during and after the ramp, below and
    above C, for both penalties; then the gradient with respect to ``kl`` must be the
    reference's (γ·sign(KL − C), or γ·1[KL > C] for the hinge): an answer that is right in
    value but not differentiable (``torch.tensor(float(...))``) is refused, because the
    training loop needs its gradient."""
    name = "capacity_loss"
    cases = _capacity_cases()
    verdict = evaluate_function(name, student_fn, capacity_loss_reference, cases, atol=1e-4, rtol=1e-5)
    if not verdict.passed:   # a wrong value or an exception: look for the usual slips
        from .losses import capacity_penalty

        def unclamped(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
            return capacity_penalty(kl, c_start + (c_max - c_start) * (step / c_steps if c_steps else 1.0),
                                    gamma, penalty)

        def swapped(kl, step, gamma=1000.0, c_start=0.5, c_max=25.0, c_steps=100_000, penalty="abs"):
            return capacity_loss_reference(kl, step, gamma, c_start, c_max, c_steps,
                                           "hinge" if penalty == "abs" else "abs")

        with_ramp = [c for c in cases if c.kwargs.get("c_steps", 1) != 0]
        if len(with_ramp) < len(cases) and _matches(student_fn, capacity_loss_reference, with_ramp, atol=1e-4):
            verdict = _with_hint(verdict, "with c_steps = 0 there is no ramp: C = c_max from step 0 "
                                          "(do not divide by c_steps then)")
        elif _matches(student_fn, unclamped, cases, atol=1e-4):
            verdict = _with_hint(verdict, "C stops growing at c_max: use min(step / c_steps, 1)")
        elif _matches(student_fn, swapped, cases, atol=1e-4):
            verdict = _with_hint(verdict, "'abs' is γ·|KL − C| and 'hinge' is γ·max(0, KL − C): "
                                          "the two are swapped")
    if verdict.passed:
        for number, c in enumerate(cases, start=1):
            try:
                problem = _capacity_gradient_problem(student_fn, c)
            except Exception as exc:  # noqa: BLE001 - reported to the student
                problem = f"differentiating it raised {type(exc).__name__}: {exc}"
            if problem:
                verdict = Verdict(name, "wrong",
                                  f"✘ {name}: right values, but wrong gradient on test case {number} of "
                                  f"{len(cases)} ({c.label}):\n  {problem}.\n"
                                  f"  Fix it and rerun the exercise cell and this one; meanwhile {FALLBACK}.")
                break
        else:
            verdict = Verdict(name, "correct", f"✔ {name}: correct values and gradients on all "
                                               f"{len(cases)} test cases; your function is used "
                                               "from here on.")
    return _report(verdict, student_fn, capacity_loss_reference, file)


def permute_dims_reference(z, generator=None):
    """The library's :func:`course_lib.models.tc.permute_dims`: every column of the M×D codes
    shuffled independently across the batch (a new tensor)."""
    from .models.tc import permute_dims

    return permute_dims(z, generator)


def _labelled_codes(m: int, d: int):
    """z[i, j] = i + 1000·j: every value says which row (i) and column (j) it came from."""
    import torch

    return (torch.arange(m).unsqueeze(1) + 1000 * torch.arange(d)).double()


def _permutation_problem(z, out, label: str, independence: bool) -> str | None:
    """What is wrong with ``out`` as a dimension-wise permutation of the labelled codes ``z``."""
    import torch

    if not _is_tensor(out) or tuple(out.shape) != tuple(z.shape):
        return f"expected a tensor of shape {tuple(z.shape)}, got {describe(out)} ({label})"
    m, d = z.shape
    out = out.detach().double()
    for j in range(d):
        if not torch.equal(out[:, j].sort().values, z[:, j].sort().values):
            return (f"column {j} does not hold the same values as column {j} of z ({label}): each "
                    "column must be a reordering of the same column of z")
    rows = (out - 1000 * torch.arange(d)).long()  # the row of z that each entry came from
    if bool((rows == rows[:, :1]).all()):
        if bool((rows[:, 0] == torch.arange(m)).all()):
            return f"the codes come back in their original order ({label}): nothing was shuffled"
        return (f"every row is still a whole row of z ({label}): you permuted the rows, which keeps "
                "the dependence between dimensions; shuffle each column with its own permutation")
    if independence:
        limit = max(4, m // 8)
        for j in range(d):
            for k in range(j + 1, d):
                same = int((rows[:, j] == rows[:, k]).sum())
                if same > limit:
                    return (f"columns {j} and {k} were shuffled together: in {same} of {m} rows they "
                            f"still come from the same row of z ({label}; independent permutations "
                            f"share about 1 row). Draw a new permutation for every column")
    return None


def check_permute_dims(student_fn, file=None):
    """Notebook 05: ``permute_dims(z, generator=None)``, samples of Π_j q(z_j) from codes of q(z).

    A permutation is random, so nothing is compared with a reference output. On codes whose
    values name their row and column (``z[i, j] = i + 1000·j``; 256×5 and 8×3) the checker
    requires: a new tensor of the same shape, ``z`` itself unchanged after the call (no in-place
    shuffle), every column a reordering of the same column of ``z``, rows broken up, and — on
    256 codes — every pair of columns shuffled by *different* permutations (independent
    permutations leave about one row of a pair together; a shared one leaves all); two calls with
    different generators must give different orders."""
    import torch

    name = "permute_dims"
    if student_fn is None or student_fn is Ellipsis:
        return _report(not_attempted(name),
                       student_fn, permute_dims_reference, file)
    inputs = [(_labelled_codes(256, 5), "256 codes, 5 dims", True), (_labelled_codes(8, 3), "8 codes, 3 dims", False)]
    problem = None
    try:
        with preserved_random_state():
            torch.manual_seed(0)
            for z, label, independence in inputs:
                given = z.clone()
                out = student_fn(given, torch.Generator().manual_seed(1))
                if not torch.equal(given, z):
                    problem = (f"your function changed its input z ({label}): shuffle into a new tensor "
                               "(index z with a permutation, z[perm, j]) and leave z as it was; the "
                               "caller still needs the codes of q(z)")
                    break
                problem = _permutation_problem(z, out, label, independence)
                if problem:
                    break
                if independence:
                    again = student_fn(z.clone(), torch.Generator().manual_seed(2))
                    if _is_tensor(again) and torch.equal(again.detach().double(), out.detach().double()):
                        problem = (f"two calls with different generators gave the same order ({label}): "
                                   "draw the permutations at random, torch.randperm(M, generator=generator)")
                        break
                    torch.manual_seed(12345)   # another global random state, the same generator
                    same = student_fn(z.clone(), torch.Generator().manual_seed(1))
                    if _is_tensor(same) and not torch.equal(same.detach().double(), out.detach().double()):
                        problem = (f"two calls with the same generator gave different orders ({label}): "
                                   "the permutations must come from the generator passed in "
                                   "(torch.randperm(M, generator=generator)), not from the global random "
                                   "state, so that a seeded run can be repeated")
                        break
    except NotImplementedError:
        return _report(not_attempted(name),
                       student_fn, permute_dims_reference, file)
    except Exception as exc:  # noqa: BLE001 - reported to the student
        return _report(raised(name, exc, "on a batch of labelled codes"), student_fn, permute_dims_reference, file)
    verdict = step_verdict(name, problem, None, "z unchanged, every column a shuffle of its own, "
                                                "independent of the others; your function is used "
                                                "from here on.")
    return _report(verdict, student_fn, permute_dims_reference, file)


#: The terms that a FactorVAE training step returns (and the training loop logs).
FACTORVAE_STEP_TERMS = ("loss", "recon", "kl", "kl_per_latent", "tc", "disc_loss", "disc_acc")


def factorvae_step_reference(model, x, step, optimizers):
    """The library's FactorVAE step, :meth:`course_lib.models.FactorVAE.training_step` (source paper 004
    eqs. 10-11; Kim & Mnih, Alg. 2): the VAE update on recon + KL + γ·TC with the discriminator
    frozen, then the discriminator's update on the detached codes, the first half as samples of
    q(z) and the dimension-wise permuted second half as samples of Π_j q(z_j)."""
    from .models import FactorVAE

    return FactorVAE.training_step(model, x, step, optimizers)


def _factorvae_step_variant(model, x, step, optimizers, *, permute, order="vae_first",
                            halves="first_joint", tc_codes="z", gamma=True, detach=True):
    """A FactorVAE step written out, with one choice changed: used to name a student's mistake
    (the default choices are the library's step)."""
    from .losses import kl_normal as _kl
    from .losses import reconstruction
    from .models.tc import tc_discriminator_loss

    opt_vae, opt_disc = optimizers["model"], optimizers["discriminator"]
    disc = model.discriminator

    def vae_update():
        disc.requires_grad_(False)
        opt_vae.zero_grad(set_to_none=True)
        logits, mu, logvar, z = model(x)
        recon = reconstruction(model.recon, logits, x, model.reduction)
        kl_per_latent = _kl(mu, logvar).mean(0)
        tc = disc(z if tc_codes == "z" else mu).mean()
        loss = recon + kl_per_latent.sum() + (model.gamma if gamma else 1.0) * tc
        loss.backward()
        opt_vae.step()
        disc.requires_grad_(True)
        return {"loss": loss, "recon": recon, "kl": kl_per_latent.sum(), "kl_per_latent": kl_per_latent,
                "tc": tc}, z

    def disc_update(z):
        z = z.detach() if detach else z
        half = z.shape[0] // 2
        opt_disc.zero_grad(set_to_none=True)
        if halves == "first_joint":
            joint, other = z[:half], z[half:2 * half]
        elif halves == "second_joint":
            joint, other = z[half:2 * half], z[:half]
        else:  # the whole batch for both classes
            joint, other = z, z
        d_loss, d_acc = tc_discriminator_loss(disc, joint, permute(other))
        d_loss.backward()
        opt_disc.step()
        return d_loss, d_acc

    if order == "vae_first":
        terms, z = vae_update()
        d_loss, d_acc = disc_update(z)
    else:  # the discriminator first, on codes of a forward pass without gradient
        import torch

        with torch.no_grad():
            z_before = model(x)[3]
        d_loss, d_acc = disc_update(z_before)
        terms, _ = vae_update()
    terms = {**terms, "disc_loss": d_loss, "disc_acc": d_acc}
    return {k: v.detach() for k, v in terms.items()}


def _factorvae_outcome(fn, model, batches, lr: float, seed: int, permute=None, count=False):
    """Run ``fn(model, x, step, optimizers)`` on each batch from a copy of ``model`` with fresh
    SGD optimisers (momentum 0.5, so the second step depends on the first), each call from the
    same random state; with ``permute``, the library's step uses that permutation function.
    Returns (returned terms per call, VAE weights, discriminator weights, gradient counts, copy)."""
    import torch

    from .models import tc as tc_module

    work = copy.deepcopy(model)
    optimizers = {"model": torch.optim.SGD(work.vae_parameters(), lr=lr, momentum=0.5),
                  "discriminator": torch.optim.SGD(work.discriminator.parameters(), lr=lr, momentum=0.5)}
    counts, handles = {"disc": 0, "encoder": 0}, []
    if count:  # how many times a gradient reaches the discriminator / the encoder in one call
        disc_param = next(work.discriminator.parameters())
        enc_param = next(p for n, p in work.named_parameters() if n.startswith("encoder"))
        handles.append(disc_param.register_hook(lambda g: counts.__setitem__("disc", counts["disc"] + 1)))
        handles.append(enc_param.register_hook(lambda g: counts.__setitem__("encoder", counts["encoder"] + 1)))
    saved = tc_module.permute_dims
    returned = []
    try:
        if permute is not None and permute not in (saved, permute_dims_reference):
            tc_module.permute_dims = permute  # the library's step then uses the same permutation
        for step, xb in enumerate(batches):
            with _seeded(seed + step):
                returned.append(fn(work, xb.clone(), step, optimizers))
    finally:
        tc_module.permute_dims = saved
        for h in handles:
            h.remove()
    vae = [p.detach().clone() for p in work.vae_parameters()]
    disc = [p.detach().clone() for p in work.discriminator.parameters()]
    return returned, vae, disc, counts, work


def check_factorvae_step(student_fn, permute=None, file=None):
    """Notebook 05, exercise 3: ``factorvae_step(model, x, step, optimizers) -> dict``.

    Compared with the library's ``FactorVAE.training_step`` (:func:`factorvae_step_reference`)
    on a small FactorVAE (float64, 4 latents, a 2×16 discriminator), a fixed batch of 8 images
    and a fixed random state, for two steps in a row with SGD and momentum: the returned terms
    (:data:`FACTORVAE_STEP_TERMS`, detached) and every weight of the VAE and of the
    discriminator after each call must match. ``permute``: the notebook's ``permute_dims`` (the
    student's if it passed); the library's step uses it too, so both draw the same permutation.
    Also refused: a discriminator that receives a gradient from the VAE's loss (it must be
    frozen during the VAE update) and an encoder that receives one from the discriminator's loss
    (the codes must be detached), even where the weights come out right. Typical mistakes are
    named."""
    import torch

    from .models import FactorVAE

    name = "factorvae_step"
    permute = permute or permute_dims_reference
    if student_fn is None or student_fn is Ellipsis:
        return _report(not_attempted(name),
                       student_fn, factorvae_step_reference, file)
    with preserved_random_state():
        torch.manual_seed(0)
        model = FactorVAE(num_latents=4, gamma=10.0, disc_hidden=16, disc_layers=2).double().train()
        g = torch.Generator().manual_seed(6)
        batches = [(torch.rand(8, 1, 64, 64, generator=g, dtype=torch.float64) < 0.15).double()
                   for _ in range(2)]
    lr, seed = 1e-3, 11
    expected = _factorvae_outcome(factorvae_step_reference, model, batches, lr, seed, permute, count=True)
    try:
        got = _factorvae_outcome(student_fn, model, batches, lr, seed, permute, count=True)
    except NotImplementedError:
        return _report(not_attempted(name),
                       student_fn, factorvae_step_reference, file)
    except Exception as exc:  # noqa: BLE001 - reported to the student
        verdict = raised(name, exc, "on a small FactorVAE and a batch of 8 images", {
            ("backward through the graph a second time", "modified by an inplace"):
                "the discriminator's loss must use the detached codes, z.detach(): no gradient of it "
                "may reach the encoder, whose weights have just been updated",
            ("does not require grad", "does not have a grad_fn"):
                "the discriminator is still frozen when its own loss is computed: unfreeze it "
                "(model.discriminator.requires_grad_(True)) after the VAE's update, before its step"})
        return _report(verdict, student_fn, factorvae_step_reference, file)

    def close(a, b):
        return difference(a, b, atol=1e-9, rtol=1e-7) is None

    exp_terms, exp_vae, exp_disc, exp_counts, _ = expected
    got_terms, got_vae, got_disc, got_counts, work = got
    vae_ok = all(close(e, w) for e, w in zip(exp_vae, got_vae))
    disc_ok = all(close(e, w) for e, w in zip(exp_disc, got_disc))
    problem, hint = None, None
    if not all(p.requires_grad for p in work.discriminator.parameters()):
        problem = "the discriminator is still frozen after the step"
        hint = ("unfreeze it after the VAE's update, model.discriminator.requires_grad_(True), "
                "before its own update")
    elif not (vae_ok and disc_ok):
        def outcome(**choice):
            def fn(m, xb, s, o):
                return _factorvae_step_variant(m, xb, s, o, permute=permute, **choice)
            return _factorvae_outcome(fn, model, batches, lr, seed)
        mistakes = [
            (dict(order="disc_first"), "update the VAE first (with the discriminator frozen), then the "
                                       "discriminator on the codes of that same forward pass"),
            (dict(halves="second_joint"), "the first half of the batch, z[:M//2], is the sample of q(z) "
                                          "(label 1) and the permuted second half, permute_dims(z[M//2:]), "
                                          "the sample of Π_j q(z_j); you swapped the halves"),
            (dict(halves="whole"), "split the batch: the first half as codes of q(z), the permuted second "
                                   "half as codes of Π_j q(z_j); the same codes must not be in both classes"),
            (dict(gamma=False), "the TC term is weighted: loss = recon + KL + γ·TC, γ = model.gamma"),
            (dict(tc_codes="mu"), "the TC term is the discriminator's mean logit on the sampled codes z, "
                                  "not on the means μ"),
        ]
        if vae_ok:
            problem = "the VAE's weights are right, but the discriminator's differ from the library's step"
        elif disc_ok:
            problem = "the discriminator's weights are right, but the VAE's differ from the library's step"
        else:
            problem = "the weights after two steps differ from the library's step"
        for choice, words in mistakes:
            _, vae_w, disc_w, _, _ = outcome(**choice)
            if all(close(a, b) for a, b in zip(vae_w, got_vae)) and all(close(a, b) for a, b in zip(disc_w, got_disc)):
                hint = words
                break
        hint = hint or ("(1) freeze the discriminator, zero the VAE's gradients, one forward pass "
                        "logits, mu, logvar, z = model(x), loss = recon + KL + γ·mean logit of D on z, "
                        "backward, step, unfreeze; (2) zero the discriminator's gradients, "
                        "tc_discriminator_loss(model.discriminator, z[:M//2], permute_dims(z[M//2:])) on "
                        "z.detach(), backward, step")
    elif got_counts["disc"] > exp_counts["disc"]:
        problem = "the discriminator received a gradient from the VAE's loss"
        hint = ("freeze it during the VAE's update, model.discriminator.requires_grad_(False), and "
                "unfreeze it (requires_grad_(True)) before its own update; the VAE's loss must not "
                "train the critic that judges it")
    elif got_counts["encoder"] > exp_counts["encoder"]:
        problem = "a gradient of the discriminator's loss reached the encoder"
        hint = "train the discriminator on the detached codes, z.detach()"
    else:
        for number, (e, g_) in enumerate(zip(exp_terms, got_terms), start=1):
            if not isinstance(g_, dict):
                problem, hint = (f"call {number} returned {describe(g_)}",
                                 f"return a dict with the terms {', '.join(FACTORVAE_STEP_TERMS)}")
                break
            missing = [k for k in FACTORVAE_STEP_TERMS if k not in g_]
            if missing:
                problem, hint = (f"the returned dict lacks {', '.join(missing)}",
                                 f"return the terms {', '.join(FACTORVAE_STEP_TERMS)}; the training "
                                 "loop logs them")
                break
            attached = [k for k in FACTORVAE_STEP_TERMS if _is_tensor(g_[k]) and g_[k].requires_grad]
            if attached:
                problem, hint = (f"the returned {', '.join(attached)} still carry a gradient graph",
                                 "return detached values, v.detach(): the training loop keeps them")
                break
            for key in FACTORVAE_STEP_TERMS:
                diff = difference(e[key], g_[key], atol=1e-9, rtol=1e-7, path=f"the returned {key!r}")
                if diff:
                    problem = f"{diff} (call {number})"
                    hint = ("return the terms of the batch before the updates: loss, recon, kl (summed "
                            "over latents), kl_per_latent (averaged over the batch), tc, and "
                            "tc_discriminator_loss's (loss, accuracy)")
                    break
            if problem:
                break
    verdict = step_verdict(name, problem, hint, "same terms and same weights (VAE and discriminator) "
                                                "as FactorVAE.training_step after two steps; your "
                                                "function trains the FactorVAE from here on.")
    return _report(verdict, student_fn, factorvae_step_reference, file)


# --------------------------------------------------------------------------- notebook 06


def unrolled_terms_reference(model, x_real, fake, d_optimizer, K):
    """The library's unrolled generator objective, term by term (source paper eq. 10, second order):
    :meth:`course_lib.models.UnrolledGAN.unrolled_generator_terms` with ``steps=K``. Called on the
    base class: a notebook's subclass that overrides the method with this function must not
    recurse into itself."""
    from .models.gan import _AdversarialModel

    return _AdversarialModel.unrolled_generator_terms(model, x_real, fake, d_optimizer, steps=K, first_order=False)


def _unrolled_variant(model, x_real, fake, d_optimizer, K, *, create_graph=True, detach_fake=False,
                      form=None, real=True, optimiser="adam"):
    """The unrolled objective written out with one choice changed, to name a student's mistake
    (the defaults are the library's computation; the discriminator sees real and fake images
    in two calls, where the library concatenates them)."""
    import torch
    from torch.func import functional_call

    from .models.gan import adam_state_of, adam_step, gan_discriminator_loss, generator_loss, real_data_term

    disc = model.discriminator
    named = dict(disc.named_parameters())
    state, hyper = adam_state_of(d_optimizer, named)
    params = {k: v.detach().requires_grad_(True) for k, v in named.items()}
    inner_fake = fake.detach() if detach_fake else fake
    for _ in range(K):
        loss = gan_discriminator_loss(functional_call(disc, params, (x_real,)),
                                  functional_call(disc, params, (inner_fake,)))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        if optimiser == "sgd":
            params = {k: p - hyper["lr"] * g for (k, p), g in zip(params.items(), grads)}
        else:
            params, state = adam_step(params, state, dict(zip(params, grads)), **hyper)
    out = {"fake": generator_loss(functional_call(disc, params, (fake,)), form or model.generator_form)}
    out["real"] = real_data_term(functional_call(disc, params, (x_real,))) if real else fake.new_zeros(())
    return out


def _unrolled_problem():
    """A small replicated toy GAN in float64 whose discriminator's Adam has a history of three
    steps, a batch of real points and a noise batch (the same every call)."""
    import torch

    from .models import UnrolledGAN

    with preserved_random_state():
        torch.manual_seed(3)
        model = UnrolledGAN(unroll_steps=2, arch="mlp", noise_dim=2, hidden=5, layers=1, replicas=2).double()
        optimizers = model.configure_optimizers(1e-2)
        g = torch.Generator().manual_seed(4)
        x = torch.randn(2 * 6, 2, dtype=torch.float64, generator=g) + 1
        for step in range(3):
            model.training_step(x, step, optimizers)
        z = torch.randn(2, 6, 2, dtype=torch.float64, generator=g)
    return model, optimizers["discriminator"], model._split(x), z


def _unrolled_outcome(fn, K):
    """Call ``fn(model, x_real, G(z), d_optimizer, K)`` on a fresh copy of the small problem:
    (the two terms as floats, the generator's gradient of fake + real, whether the
    discriminator's weights and its optimiser's moments are unchanged, the returned value)."""
    import torch

    model, d_opt, x, z = _unrolled_problem()
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    moments = [s["exp_avg"].clone() for s in d_opt.state.values()]
    terms = fn(model, x, model.generate(z), d_opt, K)
    if not isinstance(terms, dict) or not {"fake", "real"} <= set(terms):
        return None, None, True, True, terms
    params = list(model.generator.parameters())
    total = terms["fake"] + terms["real"]
    if not (torch.is_tensor(total) and total.requires_grad):
        grad = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    else:
        grads = torch.autograd.grad(total, params, allow_unused=True)
        grad = torch.cat([(torch.zeros_like(p) if g_ is None else g_).reshape(-1) for g_, p in zip(grads, params)])
    values = {k: float(torch.as_tensor(terms[k]).detach()) for k in ("fake", "real")}
    same_d = all(torch.equal(a, b.detach()) for a, b in zip(before, model.discriminator.parameters()))
    same_state = all(torch.equal(a, s["exp_avg"]) for a, s in zip(moments, d_opt.state.values()))
    return values, grad, same_d, same_state, terms


def check_unrolled_terms(student_fn, file=None):
    """Notebook 06: ``unrolled_terms(model, x_real, fake, d_optimizer, K) -> {"fake", "real"}``.

    Compared with the library's :meth:`UnrolledGAN.unrolled_generator_terms` (second order) on
    a small replicated toy GAN in float64 whose discriminator's Adam has a history, for K = 1
    and 3: both terms' values and the generator's gradient of their sum (which reaches θ_G
    through the K unrolled steps) must match, and neither the discriminator's weights nor its
    optimiser may change. Typical mistakes are named: a first-order unroll (no
    ``create_graph=True``), the inner steps on ``fake.detach()``, the real term left out, the
    other form of the fake term, plain gradient steps instead of Adam, K − 1 or K + 1 steps."""
    import torch

    name = "unrolled_terms"
    if student_fn is None or student_fn is Ellipsis:
        return _report(not_attempted(name),
                       student_fn, unrolled_terms_reference, file)
    problem, hint = None, None
    for K in (1, 3):
        expected = _unrolled_outcome(unrolled_terms_reference, K)
        try:
            got = _unrolled_outcome(student_fn, K)
        except NotImplementedError:
            return _report(not_attempted(name),
                           student_fn, unrolled_terms_reference, file)
        except Exception as exc:  # noqa: BLE001 - reported to the student
            verdict = raised(name, exc, f"on a small toy GAN with K = {K}", {
                ("does not require grad", "One of the differentiated Tensors"):
                    "differentiate with respect to copies that require gradients: "
                    "params = {k: v.detach().requires_grad_(True) for k, v in named.items()}"})
            return _report(verdict, student_fn, unrolled_terms_reference, file)
        exp_values, exp_grad, _, _, _ = expected
        values, grad, same_d, same_state, returned = got
        if values is None:
            problem = (f"expected a dict with the keys 'fake' and 'real', got {describe(returned)}"
                       + (f" with keys {sorted(returned)}" if isinstance(returned, dict) else ""))
            hint = 'return {"fake": generator_loss(...), "real": real_data_term(...)}'
            break
        if not same_d or not same_state:
            problem = (f"with K = {K} the discriminator's "
                       + ("weights" if not same_d else "optimiser state") + " changed")
            hint = ("unroll on copies: params = {k: v.detach().requires_grad_(True) ...} and the state "
                    "from adam_state_of, which returns detached moments; never step d_optimizer here")
            break
        values_ok = all(abs(values[k] - exp_values[k]) <= 1e-9 + 1e-7 * abs(exp_values[k]) for k in values)
        grad_ok = bool(torch.allclose(grad, exp_grad, rtol=1e-6, atol=1e-10))
        if values_ok and grad_ok:
            continue
        where = (f"with K = {K}, " + ("the values of the terms differ" if not values_ok
                                      else "the values are right but the generator's gradient differs")
                 + f" from the library's (fake {exp_values['fake']:.6f}, real {exp_values['real']:.6f}; "
                   f"yours {values['fake']:.6f}, {values['real']:.6f})")
        problem = where
        other_form = "minimax" if _unrolled_problem()[0].generator_form == "non_saturating" else "non_saturating"
        mistakes = [
            (dict(create_graph=False), "the gradient is the first-order one: in your code θ_D^K does not "
                                       "depend on θ_G. Two things carry that dependence, and both are needed: "
                                       "the inner loss sees fake itself (not fake.detach()), and its gradients "
                                       "are taken with torch.autograd.grad(..., create_graph=True), so that "
                                       "backpropagation goes through the K steps (eq. 11's second part)"),
            (dict(real=False), "the real term E_x log D_K(x) is missing: unrolled, it depends on θ_G through "
                               "θ_D^K; add real_data_term(functional_call(disc, params, (x_real,)))"),
            (dict(form=other_form), f"the fake term has the wrong form: use generator_loss(logits, "
                                    f"model.generator_form) (here {other_form!r} was used)"),
            (dict(optimiser="sgd"), "the discriminator's optimiser is Adam: step with adam_step(params, state, "
                                    "grads, **hyper), starting from the moments that adam_state_of returns"),
        ]
        for choice, words in mistakes:
            v, g_, _, _, _ = _unrolled_outcome(lambda *a, c=choice: _unrolled_variant(*a, **c), K)
            same_values = all(abs(v[k] - values[k]) <= 1e-9 + 1e-7 * abs(v[k]) for k in v)
            if same_values and torch.allclose(g_, grad, rtol=1e-6, atol=1e-10):
                hint = words
                break
        else:
            for other in (K - 1, K + 1):
                v, g_, _, _, _ = _unrolled_outcome(unrolled_terms_reference if other else
                                                   (lambda *a: _unrolled_variant(*a[:4], 0)), other)
                if all(abs(v[k] - values[k]) <= 1e-9 + 1e-7 * abs(v[k]) for k in v):
                    hint = f"your function took {other} discriminator steps instead of K = {K}"
                    break
        hint = hint or ("copy θ_D; K times: the discriminator's loss on real and fake at the copy, its gradient "
                        "with create_graph=True, one adam_step; then the fake and real terms at θ_D^K")
        break
    verdict = step_verdict(name, problem, hint,
                           "the terms and the generator's gradient through K = 1 and 3 unrolled steps match "
                           "the library's; your function trains the unrolled toy GANs from here on.")
    return _report(verdict, student_fn, unrolled_terms_reference, file)
