"""Shared set-up of the exercise checks: which folder the answers are imported from.

    python -m pytest exercises/checks                  # check your answers in exercises/
    python -m pytest exercises/checks --solutions      # check the worked answers in solutions/

Both folders hold modules with the same names (ex1_target, ex2_eta_limits, ...). A check asks for
its module through the `exercise` fixture, at test time rather than when the file is collected: an
unfinished or broken exercise then fails its own tests with the error it raised (for an untouched
starter, NotImplementedError("exercise N: ...")) and the other checks still run. Each function of
the module comes wrapped so that an answer that edits the check's tensors in place fails with that
mistake's name (compare.unchanged_inputs).
"""
import importlib
import sys
from pathlib import Path

import pytest

from compare import unchanged_inputs

# The repository root, so that `lad_loss`, `bandit`, `exercises` and `solutions` import from
# wherever pytest is started (pyproject.toml's pythonpath covers runs from the root only).
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
    from solutions/, its functions guarded against in-place edits of their arguments."""
    folder = "solutions" if request.config.getoption("--solutions") else "exercises"

    def load(module_name: str):
        return unchanged_inputs(importlib.import_module(f"{folder}.{module_name}"))

    return load


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Put the line that names the mistake first, instead of inside a page of traceback.

    - a stub still untouched: `not written yet: exercise N: ...`, one line;
    - a check that failed: its message (which says what is wrong, and names the mistake when the
      check knows it), then the line of the check that raised it;
    - an error raised inside an answer: its type and message, then a short traceback down to the
      line of the answer that raised it.
    `--tb=long` (or any other explicit --tb style) shows pytest's own report instead.
    """
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if excinfo is None or not report.failed:
        return
    if excinfo.errisinstance(NotImplementedError) and str(excinfo.value).startswith("exercise "):
        report.longrepr = f"not written yet: {excinfo.value}"
    elif item.config.getoption("tbstyle") != "auto":
        return
    elif excinfo.errisinstance(AssertionError):
        # pytest appends its own "assert ..." explanation to a message; the message says it better.
        message = str(excinfo.value).split("\nassert ")[0]
        report.longrepr = f"{message}\n(check: {_check_line(excinfo)})"
    else:
        frames = excinfo.traceback.cut(path=item.path)  # from the check down; pytest's own left out
        trace = "\n".join(f"{_relative(entry.path)}:{entry.lineno + 1}: in {entry.name}\n"
                          f"    {str(entry.statement).strip()}" for entry in frames)
        report.longrepr = f"{excinfo.typename}: {excinfo.value}\n{trace}"


def _check_line(excinfo) -> str:
    """path:line of the deepest frame in a check file, exercises/checks/test_*.py."""
    here = Path(__file__).resolve().parent
    for entry in reversed(excinfo.traceback):
        path = Path(str(entry.path)).resolve()
        if path.parent == here and path.name.startswith("test_"):
            return f"{_relative(path)}:{entry.lineno + 1}"
    return "?"


def _relative(path) -> str:
    path = Path(str(path)).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
