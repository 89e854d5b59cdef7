"""cli/outputs.py at its edges: a folder that can be written but not entered, and a path whose
name only begins like the repository's."""
import os

import pytest

import cli.outputs
from cli.outputs import REPOSITORY, output_path_problem, repository_path


def test_a_folder_that_cannot_be_entered_is_a_problem_even_when_it_can_be_written(tmp_path,
                                                                               monkeypatch):
    """Creating or writing anything inside a folder needs its search (x) permission as well as
    its write (w) one: a folder with w but not x cannot take a metrics file or a figure. A check
    of W_OK alone would pass it and the run would fail at the end. Simulated with os.access (a
    root user may enter anything, so chmod alone cannot show it)."""
    folder = tmp_path / "no_entry"
    folder.mkdir()
    (folder / "old.json").write_text("{}")

    def access(path, mode):
        return not (os.path.realpath(path) == os.path.realpath(folder) and mode & os.X_OK)

    monkeypatch.setattr(cli.outputs.os, "access", access)
    assert "may not" in output_path_problem(folder / "new.json")
    assert "may not" in output_path_problem(folder / "deeper" / "figure.png", "figure")
    assert "may not" in output_path_problem(folder, "dir")
    assert output_path_problem(tmp_path / "elsewhere.json") is None
    assert output_path_problem(tmp_path, "dir") is None


@pytest.mark.parametrize("suffix", ["-scratch", "2", "_old"])
def test_a_path_that_only_shares_a_prefix_with_the_repository_is_recorded_absolute(suffix):
    """A sibling folder whose name starts with the repository's (/x/repo-scratch beside /x/repo)
    is outside it: a metrics file must record it whole, not as a path relative to the repository
    ("-scratch/m.json", "../repo-scratch/m.json") that names nothing on another clone. A string
    prefix test would take it for a path inside."""
    sibling = REPOSITORY.parent / (REPOSITORY.name + suffix) / "m.json"
    assert repository_path(sibling) == str(sibling)
    assert repository_path(str(sibling)) == str(sibling)
    assert repository_path(REPOSITORY / "m.json") == "m.json"
