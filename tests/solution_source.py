"""Reading a notebook's defaults from its solution source (solutions/<name>.py), so that a test
checks the notebook's own values instead of a second copy of them."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def solution_source(name):
    return (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8")


def quick_default(source, name):
    """The quick-profile default of parameter ``name`` in a solution's ``param(...)`` line."""
    line = re.search(rf"^{name} = param\(\"{name}\", {name}, (.*)\)$", source, re.M).group(1)
    quick = re.search(r"quick=([^,]+)", line)
    value = quick.group(1) if quick else line.split(",")[0]
    return float(value.replace("_", ""))


def plain_default(source, name):
    """The value of a plain ``NAME = literal  # comment`` line of the parameters cell."""
    match = re.search(rf"^{name} = (.+?)(?:\s+#.*)?$", source, re.M)
    if match is None:
        raise AssertionError(f"no line '{name} = ...' in the solution")
    return ast.literal_eval(match.group(1))
