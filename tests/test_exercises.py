"""The exercise checks against the worked solutions: a broken check or solution turns the suite red.

The checks live in exercises/checks/ and normally run against a student's files; with --solutions
they run against solutions/. They run here in a pytest process of their own, since they bring their
own conftest.py and command-line option. Exercise 8's check is left out: it runs the GPT pipeline
once (about 25 s, as long as all the others together), a pipeline tests/test_train_reasoning.py
already runs. Check it with
`python -m pytest exercises/checks/test_ex8_single_answer.py --solutions`.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW = "exercises/checks/test_ex8_single_answer.py"


def test_every_exercise_check_passes_on_the_worked_solutions():
    """Catches a check that rejects a correct answer (a tolerance too tight for float32, a renamed
    function of the library that a check or a solution calls, a statement and its check that
    disagree on a signature) and a solution that no longer solves its exercise."""
    command = [sys.executable, "-m", "pytest", "exercises/checks", "--solutions",
               f"--ignore={SLOW}", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, (
        f"the exercise checks failed on solutions/ ({' '.join(command[1:])}):\n"
        f"{result.stdout[-4000:]}{result.stderr[-2000:]}")
