"""The machinery of the offline checks: a registry of exercises, cases that raise ``Mismatch``,
and ``use``, which grades a student's function and hands back the one later cells should use.

A case computes the expected value with the course's own function on fixed inputs, and, where
a typical mistake has a recognisable result, the value that mistake would give: if the student's
output equals one of those, the hint names the mistake. Nothing here prints source code.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch


class Mismatch(Exception):
    """The first case that failed: what was checked, on which inputs, and a hint."""

    def __init__(self, what: str, inputs: str = "", hint: str = "", detail: str = ""):
        super().__init__(what)
        self.what, self.inputs, self.hint, self.detail = what, inputs, hint, detail

    def report(self, name: str) -> str:
        lines = [f"✗ {name}: {self.what}"]
        if self.inputs:
            lines.append(f"  inputs: {self.inputs}")
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Exercise:
    name: str
    reference: str            # "part_a.diffusion:forward": module:qualname in course_utils, the one solution
    notebook: str             # the notebook (its number) where it is taught
    cases: Callable = field(repr=False, default=None)   # cases(student) raises Mismatch
    methods: tuple = ()       # for a class: the methods the student writes (others are given)

    def load_reference(self):
        module, qualname = self.reference.split(":")
        obj = importlib.import_module(f"course_utils.{module}")
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj


EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, reference: str, notebook: str, methods: Iterable[str] = ()):
    """Register the decorated ``cases(student)`` function as the check of exercise ``name``."""
    def register(cases):
        if name in EXERCISES:
            raise ValueError(f"exercise {name!r} registered twice")
        EXERCISES[name] = Exercise(name, reference, notebook, cases, tuple(methods))
        return cases
    return register


@dataclass(frozen=True)
class Result:
    name: str
    passed: bool
    message: str


def run(name: str, student) -> Result:
    """Grade ``student`` (a function or class) on exercise ``name``'s cases; never raises."""
    ex = _get(name)
    try:
        ex.cases(student)
    except Mismatch as m:
        return Result(name, False, m.report(name))
    except NotImplementedError:
        return Result(name, False, f"✗ {name}: not written yet (its body still raises NotImplementedError)")
    except Exception as e:   # a bug in the student's code that ``call`` did not catch (e.g. in __init__)
        return Result(name, False, f"✗ {name}: raised {type(e).__name__}: {e}")
    return Result(name, True, f"✓ {name}: every check passed")


def use(name: str, student):
    """Print the grade; return ``student`` if it passed, else the course's reference.

    Under nbgrader (``NBGRADER_EXECUTION`` is "autograde" or "validate") a failed check also
    raises AssertionError, so that its test cell loses its point; the cell's ``name`` is set to
    the reference first, so the later cells are graded on a working notebook all the same.
    """
    result = run(name, student)
    print(result.message)
    if result.passed:
        return student
    ex = _get(name)
    reference = ex.load_reference()
    if os.environ.get("NBGRADER_EXECUTION", "").lower() in ("autograde", "validate"):
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(__package__):
            frame = frame.f_back   # out of course_utils.checks (its __getattr__'s lambda) to the cell
        frame.f_globals[name] = reference
        raise AssertionError(result.message)
    print(f"→ the cells below use the course's {name} (course_utils.{ex.reference.replace(':', '.')}) "
          "so the rest of the notebook still runs; fix yours and rerun this cell to use it.")
    return reference


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are {sorted(EXERCISES)}")
    return EXERCISES[name]


# ---- helpers for writing cases ------------------------------------------------------------

def describe(x) -> str:
    """A short description of an input: a tensor's shape and a few values, else repr."""
    if isinstance(x, torch.Tensor):
        flat = x.detach().flatten().float()
        head = ", ".join(f"{v:.4g}" for v in flat[:3].tolist())
        more = ", …" if flat.numel() > 3 else ""
        return f"tensor of shape {tuple(x.shape)} [{head}{more}]" if x.ndim else f"{x.item():.6g}"
    return repr(x)


def call(fn, *args, inputs: str = "", **kwargs):
    """``fn(*args, **kwargs)``; an exception inside it becomes a Mismatch naming the inputs."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Mismatch:
        raise
    except Exception as e:
        raise Mismatch(f"raised {type(e).__name__}: {e}", inputs) from e


def expect_close(got, expected: torch.Tensor, what: str, inputs: str = "",
                 wrong: Iterable[tuple] = (), atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise a Mismatch unless ``got`` ≈ ``expected``.

    ``wrong`` holds (value or zero-argument callable, hint) pairs: the results of typical
    mistakes. If ``got`` matches one of them, its hint is given.
    """
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"{what} should be a torch.Tensor, got {type(got).__name__}", inputs)
    if tuple(got.shape) != tuple(expected.shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}", inputs,
                       _matching_hint(got, wrong))
    got_ = got.detach().to("cpu", torch.float64)
    exp_ = expected.detach().to("cpu", torch.float64)
    if not torch.isfinite(got_).all():
        raise Mismatch(f"{what} holds NaN or inf", inputs, _matching_hint(got, wrong)
                       or "look for a division by zero or the square root of a negative number")
    if torch.allclose(got_, exp_, atol=atol, rtol=rtol):
        return
    err = (got_ - exp_).abs()
    i = int(err.flatten().argmax())
    raise Mismatch(f"{what} is wrong", inputs, _matching_hint(got, wrong),
                   f"largest difference {err.max().item():.4g} at flat index {i}: "
                   f"expected {exp_.flatten()[i].item():.6g}, got {got_.flatten()[i].item():.6g}")


def _matching_hint(got: torch.Tensor, wrong: Iterable[tuple]) -> str:
    for value, hint in wrong:
        try:
            value = value() if callable(value) else value
        except Exception:
            continue
        if (isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(got.shape)
                and torch.allclose(got.detach().double().cpu(), value.detach().double().cpu(),
                                   atol=1e-5, rtol=1e-4)):
            return hint
    return ""


def expect_equal(got, expected, what: str, inputs: str = "", hint: str = "") -> None:
    if got != expected:
        raise Mismatch(f"{what} is {got!r}, expected {expected!r}", inputs, hint)


def z_stats(z: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of z, in float64."""
    z = z.detach().double().flatten()
    return z.mean().item(), z.std().item()


def standard(z: torch.Tensor, tol: float = 0.08) -> bool:
    """Whether z looks like N(0, 1) draws (≥ 1000 values: about 6 standard errors of slack)."""
    if not torch.isfinite(z).all():
        return False
    mean, std = z_stats(z)
    return abs(mean) < tol and abs(std - 1) < tol
