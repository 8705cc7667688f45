"""course_lib: the tested library behind the disentangled representation learning course.

Modules (one job each): ``data`` (procedural dSprites, toys, MNIST), ``models``,
``losses``, ``train`` (one loop for every model), ``metrics``, ``viz``, ``widgets``
(imported lazily: needs ipywidgets), ``exercises`` (checkers for notebook exercises),
``profiles`` (smoke / quick / full) and a command line, ``python -m course_lib``.

Importing ``course_lib`` is cheap and has no side effects.
"""

__version__ = "0.1.0"

#: Where the course lives; the notebooks' Colab cell installs it from here.
REPO_URL = "https://github.com/disentanglement-course/disentanglement-course"
