"""Shared pytest set-up: tests marked ``slow`` or ``browser`` run only when asked for with
``-m`` (``make test-all`` passes ``-m "not browser"``; ``make test-browser`` ``-m browser``)."""

import pytest

OPT_IN_MARKERS = ("slow", "browser")


def pytest_collection_modifyitems(config, items):
    if config.getoption("markexpr", ""):
        return  # an explicit -m expression decides
    for item in items:
        for name in OPT_IN_MARKERS:
            if item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(
                    reason=f"{name} test: run with -m {name} (or make test-all)"))
                break
