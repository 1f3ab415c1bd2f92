"""The hands-on edition (issue 11): one solution per exercise, two generated editions of the course.

- notebooks/ (solutions): each exercise cell is its course_utils reference's source, as
  tools/exercises.py writes it, and passes its check when run on its own;
- student/: exactly what the generator writes, each exercise a stub that its check reports as
  "not written yet", and every notebook runs headless on the smoke profile on the references
  the check cells fall back to.
"""
import ast
import importlib.util
import inspect
import json
import textwrap
from pathlib import Path

import nbformat
import papermill
import pytest
import torch

from course_utils import checks

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("exercises", ROOT / "tools" / "exercises.py")
exercises = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercises)

EXERCISES = exercises.exercises()
BY_NOTEBOOK = exercises.by_notebook(EXERCISES)
STUDENT = sorted((ROOT / "student").glob("*.ipynb"))
FALLBACK = "→ the cells below use the course's {name} "


def cells_of(path: Path, kind: str) -> list[tuple[str, str]]:
    """(exercise name, source) of the notebook's ``kind`` cells ("exercise" or "check"), in order."""
    nb = json.loads(path.read_text())
    return [(exercises.grade_id(c)[len(kind) + 1:], exercises.text(c)) for c in nb["cells"]
            if (exercises.grade_id(c) or "").startswith(kind + "_")]


# ---- one source -------------------------------------------------------------------------------

def test_the_exercise_cells_of_notebooks_are_generated_from_course_utils():
    problems = exercises.sync_notebooks(write=False)
    assert problems == [], "run: python tools/exercises.py sync\n" + "\n".join(problems)


def test_student_edition_is_a_fresh_generation():
    problems = exercises.write_student(write=False)
    assert problems == [], "run: make student\n" + "\n".join(problems)
    assert [p.name for p in STUDENT] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_the_generator_is_deterministic():
    assert exercises.student_edition(EXERCISES) == exercises.student_edition(EXERCISES)


def test_every_registered_exercise_is_taught_once_with_nbgrader_cells():
    assert set(checks.EXERCISES) <= {ex.name for ex in EXERCISES}
    for ex in EXERCISES:
        nb = json.loads(exercises.notebook_path(ex.notebook).read_text())
        ids = [exercises.grade_id(c) for c in nb["cells"]]
        assert ids.count(f"exercise_{ex.name}") == ids.count(f"check_{ex.name}") == 1, ex.name
        i = ids.index(f"exercise_{ex.name}")
        assert ids[i + 1] == f"check_{ex.name}", f"{ex.name}: its check must follow it"
        assert nb["cells"][i]["metadata"]["nbgrader"] == {
            "grade": False, "grade_id": f"exercise_{ex.name}", "locked": False, "schema_version": 3,
            "solution": True, "task": False}
        assert nb["cells"][i + 1]["metadata"]["nbgrader"] == {
            "grade": True, "grade_id": f"check_{ex.name}", "locked": True, "points": 1,
            "schema_version": 3, "solution": False, "task": False}
        assert exercises.text(nb["cells"][i + 1]) == f"{ex.name} = checks.{ex.name}({ex.name})"


def test_a_changed_reference_is_drift(monkeypatch):
    """Edit the solution in course_utils and the committed cell no longer matches."""
    ex = next(e for e in EXERCISES if e.name == "forward")
    real = inspect.getsource
    monkeypatch.setattr(exercises.inspect, "getsource",
                        lambda obj: real(obj).replace("(1 - a).sqrt()", "(1 - a)") if obj is ex.load() else real(obj))
    nb = json.loads(exercises.notebook_path(ex.notebook).read_text())
    _, changes = exercises.sync_notebook(nb, BY_NOTEBOOK[ex.notebook])
    assert changes == ["rewrote exercise_forward"]


# ---- the two editions of each exercise --------------------------------------------------------

@pytest.mark.parametrize("number", sorted(BY_NOTEBOOK))
def test_solution_cells_pass_their_checks(number):
    """Each exercise cell of notebooks/, run in a fresh namespace (after the exercises above it in
    the same notebook, as in the notebook), is graded as passing."""
    namespace = {}
    for name, source in cells_of(exercises.notebook_path(number), "exercise"):
        exec(compile(source, f"<{number}: exercise_{name}>", "exec"), namespace)
        result = checks.run(name, namespace[name])
        assert result.passed, result.message


@pytest.mark.parametrize("number", sorted(BY_NOTEBOOK))
def test_student_cells_are_not_written_yet(number):
    namespace = {}
    for name, source in cells_of(exercises.notebook_path(number, ROOT / "student"), "exercise"):
        assert exercises.BEGIN not in source and "raise NotImplementedError()" in source
        exec(compile(source, f"<student {number}: exercise_{name}>", "exec"), namespace)
        result = checks.run(name, namespace[name])
        assert not result.passed and "not written yet" in result.message, result.message
        namespace[name] = checks.EXERCISES[name].load_reference()   # what the check cell falls back to


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.name)
def test_a_stub_keeps_the_signature_and_docstring(ex):
    """Student and solution cells define the same names with the same signatures and docstrings;
    only the written bodies differ, and there each is nbgrader's stub."""
    solution = dict(cells_of(exercises.notebook_path(ex.notebook), "exercise"))[ex.name]
    student = dict(cells_of(exercises.notebook_path(ex.notebook, ROOT / "student"), "exercise"))[ex.name]
    unmarked = "\n".join(line for line in solution.split("\n") if line.strip() not in (exercises.BEGIN, exercises.END))
    assert unmarked.endswith(textwrap.dedent(inspect.getsource(ex.load())).rstrip("\n")), "not the reference's source"

    def defs(source):
        top = next(n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
        nodes = [top] + [n for n in top.body if isinstance(n, ast.FunctionDef)] * isinstance(top, ast.ClassDef)
        return {n.name: n for n in nodes}

    sol, stu = defs(solution), defs(student)
    assert sol.keys() == stu.keys()
    written = set(ex.methods) or {ex.name}
    for name, node in sol.items():
        assert ast.get_docstring(node) == ast.get_docstring(stu[name]), name
        if isinstance(node, ast.FunctionDef):
            assert ast.dump(node.args) == ast.dump(stu[name].args), name
            if name in written:
                body = stu[name].body[1:] if ast.get_docstring(stu[name]) else stu[name].body
                assert [ast.unparse(s) for s in body] == ["raise NotImplementedError()"], name
            elif name != ex.name:
                assert ast.dump(node) == ast.dump(stu[name]), f"{name} is given, not written: unchanged"


def test_under_nbgrader_a_failed_check_raises_and_the_reference_takes_over(monkeypatch):
    """nbgrader scores a test cell by whether it raises; the later cells still get a working name."""
    name, source = cells_of(exercises.notebook_path("01", ROOT / "student"), "exercise")[0]
    namespace = {}
    exec(compile(source, "<student exercise>", "exec"), namespace)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="not written yet"):
        exec(f"from course_utils import checks\n{name} = checks.{name}({name})", namespace)
    assert namespace[name] is checks.EXERCISES[name].load_reference()
    monkeypatch.delenv("NBGRADER_EXECUTION")
    exec(f"{name} = checks.{name}({name})", namespace)   # outside nbgrader: no exception


def test_student_notebooks_say_what_they_are_and_carry_no_outputs():
    for path in STUDENT:
        nb = json.loads(path.read_text())
        assert "**Student edition.**" in exercises.text(nb["cells"][1]), path.name
        assert f"/student/{path.name}" in exercises.text(nb["cells"][0]), f"{path.name}: badge"
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), path.name
        assert not any(exercises.BEGIN in exercises.text(c) for c in code), path.name


# ---- the student edition runs --------------------------------------------------------------

# A student notebook with no exercise is its notebooks/ twin with a note and no outputs: the same
# code, which tests/test_notebooks.py and nbval run already (asserted below), so only the notebooks
# with exercises run here again (each run costs ~10 s of `make test`).
RUN = [p for p in STUDENT if p.name.split("_")[0] in BY_NOTEBOOK]


def test_a_student_notebook_without_exercises_runs_the_solution_editions_code():
    for path in STUDENT:
        if path in RUN:
            continue
        code = [[(c.get("metadata", {}).get("tags", []), exercises.text(c)) for c in
                 json.loads(p.read_text())["cells"] if c["cell_type"] == "code"]
                for p in (path, ROOT / "notebooks" / path.name)]
        assert code[0] == code[1], f"student/{path.name} has no exercise, yet its code differs from notebooks/"


@pytest.mark.parametrize("path", RUN, ids=[p.stem for p in RUN])
def test_student_notebook_runs_on_the_references(path, tmp_path):
    """Headless, smoke profile, every exercise blank: each check cell says it falls back to the
    course's version, and every later cell runs on it."""
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters={"PROFILE": "smoke"},
                               cwd=str(path.parent), kernel_name="python3", progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.startswith("check_"):
            name = gid[len("check_"):]
            said = "".join(o.get("text", "") for o in cell.get("outputs", []))
            assert f"✗ {name}: not written yet" in said and FALLBACK.format(name=name) in said, said


# ---- the later cells use the notebook's own version -----------------------------------------

class Spy:
    """A stand-in for the student's function: the reference, counting its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def _part_a_cases():
    from course_utils.part_a import diffusion, edits
    from course_utils.part_a.noise_models import tiny_noise_model
    from course_utils.solutions import part_a as solutions

    model = tiny_noise_model(seed=0)
    c = torch.randn(1, 77, 4096, generator=torch.Generator().manual_seed(1)) * 0.1
    u = torch.zeros_like(c)
    im = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    ts = [990, 660, 330, 0]
    g = lambda: torch.Generator().manual_seed(3)   # noqa: E731
    return {   # the notebook's call, with the keyword it passes: (call, keyword, reference)
        "04 sample(loop=)": (lambda **kw: diffusion.sample(
            model, c, 1, timesteps=ts, generator=g(), progress=False, **kw), "loop", solutions.iterative_denoise),
        "06 sample(loop=)": (lambda **kw: diffusion.sample(
            model, c, 1, uncond=u, scale=7.0, timesteps=ts, generator=g(), progress=False, **kw),
            "loop", solutions.iterative_denoise_cfg),
        "07 sdedit_series(edit=)": (lambda **kw: edits.sdedit_series(
            model, im, c, u, (1,), timesteps=ts, generator=g(), **kw)[0], "edit", solutions.sdedit),
        "10 visual_anagram(guide=)": (lambda **kw: edits.visual_anagram(
            model, c, c, u, 7.0, edits.FLIP, 1, ts, g(), progress=False, **kw), "guide", edits.anagram_eps),
        "11 hybrid_image(guide=)": (lambda **kw: edits.hybrid_image(
            model, c, c, u, 7.0, 33, 2.0, 1, ts, g(), progress=False, **kw), "guide", edits.hybrid_eps),
    }


def _part_b_cases():
    from course_utils.part_b import noising, sampling, train
    from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet

    torch.manual_seed(0)
    time_net, class_net = TimeConditionalUNet(num_hiddens=4), ClassConditionalUNet(num_hiddens=4)
    denoiser = UnconditionalUNet(num_hiddens=4)
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    g = lambda: torch.Generator().manual_seed(3)   # noqa: E731
    return {   # the trajectory too: the GIF's states are what the sampler fed the model
        "13 train_denoiser's objective(add_noise=)": (lambda **kw: train.denoiser_objective(0.5, **kw)(
            denoiser, x, None, g()), "add_noise", noising.add_noise),
        "16 sample_time_conditioned(sampler=)": (lambda **kw: sampling.sample_time_conditioned(
            time_net, 2, 3, g(), return_trajectory=True, **kw), "sampler", sampling.euler_sample),
        "17 sample_class_conditioned(sampler=)": (lambda **kw: sampling.sample_class_conditioned(
            class_net, [0, 1], 3, 5.0, g(), return_trajectory=True, **kw), "sampler", sampling.euler_sample_cfg),
    }


@pytest.mark.parametrize("case", ["04 sample(loop=)", "06 sample(loop=)", "07 sdedit_series(edit=)",
                                  "10 visual_anagram(guide=)", "11 hybrid_image(guide=)",
                                  "13 train_denoiser's objective(add_noise=)", "16 sample_time_conditioned(sampler=)",
                                  "17 sample_class_conditioned(sampler=)"])
def test_a_helper_uses_the_version_the_notebook_passes(case):
    """The course's loops take the notebook's function (the student's once it passed) and give
    what they give by default when it is the reference."""
    call, keyword, reference = (_part_b_cases() if case[:2] in ("13", "16", "17") else _part_a_cases())[case]
    spy = Spy(reference)
    torch.testing.assert_close(call(**{keyword: spy}), call(), rtol=0, atol=0)
    assert spy.calls > 0


@pytest.mark.parametrize("class_conditioned", [False, True], ids=["time (16)", "class (17)"])
def test_train_flow_trains_the_notebooks_class_with_its_loss(class_conditioned, fake_mnist, monkeypatch, tmp_path):
    from course_utils.common.profiles import get_profile
    from course_utils.part_b import train
    from course_utils.part_b.recipes import train_flow
    from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet

    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    X, Y = fake_mnist
    reference = ClassConditionalUNet if class_conditioned else TimeConditionalUNet

    class Student(reference):   # the notebook's own class (same name, so the same checkpoints)
        pass
    Student.__name__ = reference.__name__
    loss = Spy(train.class_flow_loss if class_conditioned else train.time_flow_loss)
    profile = get_profile("smoke")
    model, history = train_flow(X, Y, profile, "cpu", class_conditioned=class_conditioned, net=Student, loss=loss,
                                name="spy")
    assert type(model) is Student and loss.calls > 0
    default, default_history = train_flow(X, Y, profile, "cpu", class_conditioned=class_conditioned, name="ref")
    assert history.losses == default_history.losses   # the reference loss, passed in, trains the same
