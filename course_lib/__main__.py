"""``python -m course_lib COMMAND``: the course's command line (:mod:`course_lib.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
