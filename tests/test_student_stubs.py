"""Every student cell is written from its stub and docstring alone (issue 17): it imports only
torch, the standard library pieces a formula needs and public course functions the notebook has
introduced, never a private name or a course function that already computes its answer."""
import ast
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("exercises", ROOT / "tools" / "exercises.py")
exercises = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercises)

EXERCISES = exercises.exercises()
ALLOWED_MODULES = {"torch", "torch.nn", "torch.nn.functional", "math", "typing", "__future__",
                   "torchvision.transforms.functional"}
# The course's engine: each computes (part of) some exercise's answer, so no stub may import it.
ANSWERS = {
    "denoise_loop", "denoise_step", "estimate_x0", "cfg_eps", "conditional_eps", "keep_known", "sample",
    "visual_anagram", "hybrid_image", "sdedit_series", "posterior_variance",
    "interpolate", "target_velocity", "drop_class", "flow_matching_loss", "sample_path", "denoiser_loss",
    "euler_integrate", "cfg_velocity", "sample_time_conditioned", "sample_class_conditioned",
    "time_flow_objective", "class_flow_objective", "UnconditionalUNet", "TimeConditionalUNet",
    "ClassConditionalUNet",
    # part_b.ddpm (notebook 19)
    "Schedule", "linear_schedule", "q_sample", "eps_loss", "time_ddpm_loss", "class_ddpm_loss", "ancestral_step",
    "ddim_step", "denoise", "time_eps", "sample_time_ddpm", "sample_class_ddpm",
}


def student_cells():
    out = []
    for ex in EXERCISES:
        nb = json.loads(exercises.notebook_path(ex.notebook, ROOT / "student").read_text())
        cell = next(c for c in nb["cells"] if exercises.grade_id(c) == f"exercise_{ex.name}")
        out.append(pytest.param(ex, exercises.text(cell), id=ex.name))
    return out


def imports(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                yield node.module or "", a.name


@pytest.mark.parametrize("ex,source", student_cells())
def test_a_stub_imports_nothing_private_or_answer_giving(ex, source):
    order = [e.name for e in EXERCISES]
    later = {e.name for e in EXERCISES if e.notebook >= ex.notebook}   # taught here or after
    for module, name in imports(source):
        assert not any(part.startswith("_") for part in module.split(".")), f"{ex.name}: private module {module}"
        if name is None:
            assert module in ALLOWED_MODULES, f"{ex.name}: import {module}"
            continue
        assert not name.startswith("_"), f"{ex.name}: imports the private {module}.{name}"
        assert not module.startswith("course_utils.solutions"), f"{ex.name}: imports a solution ({module}.{name})"
        if module.split(".")[0] == "course_utils":
            assert name not in ANSWERS, f"{ex.name}: imports {name}, which computes (part of) an answer"
            assert name not in later, f"{ex.name}: imports the course's {name}, an exercise of notebook ≥ {ex.notebook}"
        else:
            assert module in ALLOWED_MODULES, f"{ex.name}: from {module} import {name}"
    assert order  # the table is not empty


@pytest.mark.parametrize("ex,source", student_cells())
def test_a_stub_states_its_contract(ex, source):
    """The docstring the student works from names its inputs and what comes back."""
    tree = ast.parse(source)
    top = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == ex.name)
    doc = ast.get_docstring(top) or ""
    if isinstance(top, ast.ClassDef) and "forward" in ex.methods:
        forward = next(n for n in top.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
        doc += "\n" + (ast.get_docstring(forward) or "")
    assert len(doc) > 80, f"{ex.name}: its docstring is too short to work from:\n{doc}"
    if isinstance(top, ast.FunctionDef):
        for arg in [a.arg for a in top.args.args]:
            if arg not in ("self",):
                assert arg in doc, f"{ex.name}: the docstring never mentions the argument {arg!r}"
