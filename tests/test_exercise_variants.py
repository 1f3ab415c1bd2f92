"""Every exercise accepts correct implementations written unlike the course's, and names each
typical mistake: the variants of tests/variants/ (see its README) run through the real checks."""
import importlib.util
from pathlib import Path

import pytest

from course_utils import checks

VARIANTS = Path(__file__).resolve().parent / "variants"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"variants_{name}", VARIANTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.EXERCISE == name
    return module


def cases(kind: str):
    out = []
    for name in sorted(checks.EXERCISES):
        if not (VARIANTS / f"{name}.py").exists():
            continue
        module = load(name)
        entries = module.CORRECT if kind == "ok" else module.WRONG
        for k, entry in enumerate(entries):
            label = (entry if kind == "ok" else entry[0])
            out.append(pytest.param(name, k, id=f"{name}-{getattr(label, '__name__', k)}"))
    return out


def test_every_exercise_has_three_correct_and_three_wrong_variants():
    missing = []
    for name in sorted(checks.EXERCISES):
        if not (VARIANTS / f"{name}.py").exists():
            missing.append(f"{name}: no tests/variants/{name}.py")
            continue
        module = load(name)
        if len(module.CORRECT) < 3 or len(module.WRONG) < 3:
            missing.append(f"{name}: {len(module.CORRECT)} correct, {len(module.WRONG)} wrong")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("name,k", cases("ok"))
def test_a_correct_variant_passes(name, k):
    variant = load(name).CORRECT[k]
    result = checks.run(name, variant)
    assert result.passed, result.message


@pytest.mark.parametrize("name,k", cases("bad"))
def test_a_wrong_variant_fails_with_its_hint(name, k):
    variant, hint = load(name).WRONG[k]
    result = checks.run(name, variant)
    assert not result.passed, f"{name}: a wrong variant passed"
    assert hint in result.message, result.message
