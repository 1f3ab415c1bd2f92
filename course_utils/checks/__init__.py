"""Offline checks for the student edition.

In a student notebook, after writing ``forward``::

    forward = checks.forward(forward)

runs the formula-pinning cases of the unit tests on the student's function (fixed seeds,
hand-computed values, closed-form flows, shapes and parameter counts), prints a pass or the
first mismatch with its inputs and a hint, and returns the student's function if it passed,
else the course's own (so one failed exercise does not block the rest of the notebook).
``checks.run(name, fn)`` grades without printing; ``EXERCISES`` lists every exercise.
"""
from ._core import EXERCISES, Mismatch, Result, run, use
from . import part_a, part_b_networks, part_b_flow, part_b_ddpm  # noqa: F401  (they register the exercises)


def __getattr__(name: str):
    if name in EXERCISES:
        return lambda student: use(name, student)
    raise AttributeError(f"course_utils.checks has no exercise {name!r}; the exercises are {sorted(EXERCISES)}")


def __dir__():
    return sorted(list(globals()) + list(EXERCISES))
