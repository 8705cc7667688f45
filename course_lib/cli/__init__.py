"""The course's command line, ``python -m course_lib COMMAND [options]``, and the maintainer's
tools behind it: building and running the notebooks, sweeps, the reference models
(``pretrain``), the website and the benchmarks. The library's other modules import nothing
from here (notebook 06 runs one benchmark, :func:`course_lib.cli.bench_gan.run`).

Each command lives in its own module, imported only when it runs, and exposes::

    def main(argv: list[str] | None = None, prog: str | None = None) -> int

which parses its own arguments (``argv`` is what follows the command name) and returns the exit
status. A command whose module is not in the package yet is simply not listed. Errors that a
command raises as ``ValueError`` or ``FileNotFoundError`` are printed as one line (exit status 2);
a missing optional dependency (``ImportError``) says which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

#: command name -> (module, one-line help)
COMMANDS = {
    "run": ("course_lib.cli.run", "execute the notebooks headless with papermill; results in runs/"),
    "build": ("course_lib.cli.build", "build notebooks/ and solutions/*.ipynb from solutions/*.py"),
    "bench": ("course_lib.cli.bench", "benchmarks that print their speed figures"),
    "pretrain": ("course_lib.cli.pretrain", "train the checkpoints that the notebooks load"),
    "sweep": ("course_lib.cli.sweep", "train a model over a grid of parameters"),
    "site": ("course_lib.cli.site", "build the course's static website from the executed notebooks"),
}


def available_commands() -> dict[str, tuple[str, str]]:
    """The commands whose modules exist in this installation."""
    found = {}
    for name, (module, help_text) in COMMANDS.items():
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec is not None:
            found[name] = (module, help_text)
    return found


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = available_commands()
    parser = argparse.ArgumentParser(
        prog="python -m course_lib",
        description="Command line of the disentangled representation learning course.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module_name = commands[args.command][0]
    prog = f"python -m course_lib {args.command}"
    try:
        module = importlib.import_module(module_name)
        return int(module.main(rest, prog=prog) or 0)
    except ImportError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        print("Install the course with its extras: pip install -e '.[notebooks,dev]'",
              file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2

