"""Shared set-up of the exercise checks: which folder the answers are imported from.

    python -m pytest exercises/checks                  # check your answers in exercises/
    python -m pytest exercises/checks --solutions      # check the worked answers in solutions/

Both folders hold modules with the same names (ex1_target, ex2_eta_limits, ...). A check asks for
its module through the `exercise` fixture, at test time rather than when the file is collected: an
unfinished or broken exercise then fails its own tests with the error it raised (for an untouched
starter, NotImplementedError("exercise N: ...")) and the other checks still run.
"""
import importlib
import sys
from pathlib import Path

import pytest

# The repository root, so that `lad_loss`, `bandit`, `exercises` and `solutions` import from wherever
# pytest is started (pyproject.toml's pythonpath covers runs from the root only).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser):
    parser.addoption(
        "--solutions",
        action="store_true",
        help="check the worked solutions in solutions/ instead of the starter files in exercises/",
    )


@pytest.fixture
def exercise(request):
    """A function: exercise("ex1_target") imports that module from exercises/ or, with --solutions,
    from solutions/."""
    folder = "solutions" if request.config.getoption("--solutions") else "exercises"

    def load(module_name: str):
        return importlib.import_module(f"{folder}.{module_name}")

    return load


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Report a stub that is still untouched in one line, instead of a page of traceback."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        message = str(call.excinfo.value)
        if message.startswith("exercise "):
            report.longrepr = f"not written yet: {message}"
