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


@pytest.fixture(autouse=True, scope="session")
def _runs_in_a_temporary_folder(tmp_path_factory):
    """Runs trained by the tests (fit, load_or_train) go to a fresh folder, not the repository's
    runs/: a run cached there by an earlier session would be loaded instead of trained, and a
    regression in training would pass. (Tests that need their own folder still set COURSE_RUNS.)"""
    from course_lib.config import RUNS_VAR

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNS_VAR, str(tmp_path_factory.mktemp("runs")))
        yield
