"""Worked solutions to the exercises in exercises/, one module per exercise, with the same names.

A teacher can remove this folder before handing the repository to a class; the checks still run
against the students' files, and `python -m pytest exercises/checks --solutions` checks these ones.
"""
