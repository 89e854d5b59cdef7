"""Classroom exercises on LAD: one starter file per exercise (see EXERCISES.md at the repository
root).

Each file explains its exercise in its docstring and holds function stubs to fill in. Check an
answer with the command in EXERCISES.md, e.g. `python -m pytest
exercises/checks/test_ex1_target.py`.
"""
