"""A real nbgrader round trip (issue 17, item 5): nbgrader itself, not our generator, makes the
assignment from notebooks/ and grades three submissions with `nbgrader autograde`.

For each notebook with exercises, in a temporary course directory (nbgrader_config.py,
source/nbNN/ holding a copy of notebooks/NN_*.ipynb):

- `nbgrader generate_assignment` releases a notebook that is student/NN_*.ipynb cell by cell.
  Normalised, and only this, because it is what our generator adds or nbgrader stamps on purpose:
    * student/'s note cell ("**Student edition.**", id ``student-edition-note``) is dropped;
    * the Colab badge of the first cell: student/ points at ``student/``, the release at
      ``notebooks/`` (the URL ``tools/repo_url.badge_url`` builds for each; nothing else differs);
    * an exercise cell's first lines are the generator's header comment, SOLUTION_HEADER in
      notebooks/ (kept by nbgrader) and STUDENT_HEADER in student/; each is checked to be that
      header, then the rest of the cell is compared;
    * metadata nbgrader stamps: ``deletable`` / ``editable`` (locked cells) and nbgrader's
      ``checksum`` / ``cell_type``; and what `make student` drops (``papermill``, ``execution`` on
      cells, ``widgets`` / ``papermill`` on the notebook).
  Everything else (cell order, types, ids, sources, nbgrader's grade ids and points, cleared
  outputs and execution counts, notebook metadata) must be equal.
- `nbgrader autograde` (the notebook under NBGRADER_EXECUTION=autograde, smoke profile, offline,
  a fresh checkpoint folder per submission) grades
    * ``solution``: notebooks/NN as it is, full marks and no error anywhere;
    * ``blank``: student/NN as it is, zero on every check cell, whose error names the exercise,
      and every other cell runs without error (the check put the course's version in place);
    * ``variants``: student/NN with each exercise cell followed by ``CORRECT[0]`` of
      tests/variants/NAME.py (renamed to NAME, after the variant file's imports): full marks.
      An exercise with no variants file stays blank there (zero, as for ``blank``) and the test
      is skipped at its end with a message naming it.

`make test` grades the notebooks of QUICK (they hold every kind of exercise: a Part A function,
Part B modules, a loss, a sampler; `test_the_quick_set_covers_every_kind_of_exercise` checks it);
`make grade` (COURSE_GRADE=all) grades every notebook with exercises, COURSE_GRADE=rest those
outside QUICK, COURSE_GRADE=01,04 these (.ci/run runs `make test` with COURSE_GRADE=all).
Exercise names are read at run time from tools/exercises.py (course_utils.checks.EXERCISES).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = Path(__file__).resolve().parent / "variants"
_spec = importlib.util.spec_from_file_location("exercises", ROOT / "tools" / "exercises.py")
exercises = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercises)

EXERCISES = exercises.exercises()
BY_NOTEBOOK = exercises.by_notebook(EXERCISES)
# Notebook numbers (not exercise names): a Part A function, Part B modules, a loss and a sampler.
QUICK = ("01", "12", "16")
SCOPE = os.environ.get("COURSE_GRADE", "quick").strip()
if SCOPE == "all":
    NUMBERS = sorted(BY_NOTEBOOK)
elif SCOPE == "quick":
    NUMBERS = [n for n in QUICK if n in BY_NOTEBOOK]
elif SCOPE == "rest":       # what `make test` leaves out (CI: `make grade GRADE=rest` after `make test`)
    NUMBERS = sorted(set(BY_NOTEBOOK) - set(QUICK))
else:
    NUMBERS = sorted(n.strip() for n in SCOPE.split(",") if n.strip())
SUBMISSIONS = ("solution", "blank", "variants")
CELL_TIMEOUT = 900          # seconds per cell (nbgrader's default, 30, is too short for a training cell)
RUN_TIMEOUT = 3600          # seconds per nbgrader command
COURSE_ID = "course"
NOTE_ID = "student-edition-note"


def assignment(number: str) -> str:
    return f"nb{number}"


def nbgrader(course: Path, *args: str) -> str:
    """``python -m nbgrader ARGS`` in ``course``; its bin folder first on PATH (nbgrader runs alembic)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("NBGRADER_EXECUTION", None)
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                            capture_output=True, text=True, timeout=RUN_TIMEOUT)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "| ERROR]" not in out, f"nbgrader {' '.join(args)} failed:\n{out[-6000:]}"
    return out


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """number -> a course directory in which nbgrader generated assignment nbNN (made once)."""
    made = {}

    def make(number: str) -> Path:
        if number not in made:
            course = tmp_path_factory.mktemp(f"course{number}")
            (course / "nbgrader_config.py").write_text(
                "c = get_config()\n"
                f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
                f"c.Execute.timeout = {CELL_TIMEOUT}\n")
            source = course / "source" / assignment(number)
            source.mkdir(parents=True)
            shutil.copy(exercises.notebook_path(number), source)
            nbgrader(course, "generate_assignment", assignment(number), "--create", "--force")
            made[number] = course
        return made[number]

    return make


# ---- generate_assignment gives student/ ---------------------------------------------------------

def _header(template: tuple, name: str) -> list[str]:
    return [line.format(name=name, where="{where}") for line in template]


def normalised(nb: dict, number: str, edition: str) -> dict:
    """``nb`` (the release or student/'s) with only the documented differences taken out."""
    repo_url = exercises._repo_url()
    url, branch = repo_url.setting()
    nb = json.loads(json.dumps(nb))
    nb["metadata"] = {k: v for k, v in nb["metadata"].items() if k not in ("widgets", "papermill")}
    cells = []
    for k, cell in enumerate(nb["cells"]):
        if cell.get("id") == NOTE_ID:
            assert edition == "student" and k == 1 and cell["cell_type"] == "markdown", f"{NOTE_ID} at {k}"
            continue
        meta = {key: v for key, v in cell["metadata"].items()
                if key not in ("deletable", "editable", "papermill", "execution")}
        if "nbgrader" in meta:
            meta["nbgrader"] = {key: v for key, v in meta["nbgrader"].items() if key not in ("checksum", "cell_type")}
        cell["metadata"] = meta
        source = exercises.text(cell)
        if k == 0:
            name = exercises.notebook_path(number).name
            mine = repo_url.badge_url(name, url, branch, folder="student" if edition == "student" else "notebooks")
            assert source.count(mine) == 1, f"{edition}: the first cell has no badge {mine}"
            source = source.replace(mine, "<the Colab badge of this edition>")
        gid = exercises.grade_id(cell) or ""
        if gid.startswith("exercise_"):
            name = gid[len("exercise_"):]
            template = exercises.STUDENT_HEADER if edition == "student" else exercises.SOLUTION_HEADER
            lines = source.split("\n")
            head = lines[:len(template)]
            if edition == "student":
                assert head == _header(template, name), f"{gid}: not the student header: {head}"
            else:   # the solution header names where the reference lives
                assert head[0].startswith(template[0].split("{where}")[0].format(name=name)), head
            source = "\n".join(["<the generator's header>"] + lines[len(template):])
        cell["source"] = source
        cells.append(cell)
    nb["cells"] = cells
    return nb


@pytest.mark.parametrize("number", NUMBERS)
def test_nbgrader_releases_the_student_edition(number, released):
    course = released(number)
    name = exercises.notebook_path(number).name
    release = json.loads((course / "release" / assignment(number) / name).read_text())
    student = json.loads((ROOT / "student" / name).read_text())
    got, want = normalised(release, number, "release"), normalised(student, number, "student")
    assert got["metadata"] == want["metadata"]
    assert len(got["cells"]) == len(want["cells"]), (
        f"{len(got['cells'])} cells released, {len(want['cells'])} in student/{name}")
    for k, (a, b) in enumerate(zip(got["cells"], want["cells"])):
        assert a == b, f"cell {k} ({b.get('id')}) differs:\nnbgrader: {json.dumps(a)[:1500]}\nstudent/: {json.dumps(b)[:1500]}"
    assert got == want


# ---- autograde: three submissions -----------------------------------------------------------

def _top_level(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
    return None


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node):
        if node.id == self.old:
            node.id = self.new
        return node


def variant_source(name: str) -> str | None:
    """CORRECT[0] of tests/variants/NAME.py as a student would paste it: the file's top-level
    imports, then its def or class renamed to NAME (also where it names itself). None: no file."""
    path = VARIANTS / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"variants_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.EXERCISE == name, f"{path.name}: EXERCISE = {module.EXERCISE!r}"
    first = module.CORRECT[0]
    text = path.read_text()
    tree = ast.parse(text)
    node = _top_level(tree, getattr(first, "__name__", ""))
    assert node is not None, (f"{path.name}: CORRECT[0] ({first!r}) must be a top-level def or class "
                              "(tests/variants/README.md)")
    imports = [ast.get_source_segment(text, n) for n in tree.body
               if isinstance(n, (ast.Import, ast.ImportFrom)) and getattr(n, "module", None) != "__future__"]
    old = node.name
    node = _Rename(old, name).visit(node)
    node.name = name
    return "\n".join([f"# A correct alternative: CORRECT[0] of tests/variants/{name}.py ({old}), renamed.",
                      *imports, "", ast.unparse(node)])


def submission(number: str, kind: str) -> tuple[dict, list[str]]:
    """The notebook handed in, and the exercises it leaves blank though it should not."""
    name = exercises.notebook_path(number).name
    if kind == "solution":
        return json.loads((ROOT / "notebooks" / name).read_text()), []
    nb = json.loads((ROOT / "student" / name).read_text())
    missing = []
    if kind == "variants":
        for cell in nb["cells"]:
            gid = exercises.grade_id(cell) or ""
            if gid.startswith("exercise_"):
                source = variant_source(gid[len("exercise_"):])
                if source is None:
                    missing.append(gid[len("exercise_"):])
                else:
                    cell["source"] = exercises.as_lines(exercises.text(cell) + "\n\n\n" + source)
    return nb, missing


def grades(course: Path, number: str, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    name = exercises.notebook_path(number).stem
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        notebook = gb.find_submission_notebook(name, assignment(number), student)
        return {g.name: (g.score, g.max_score) for g in notebook.grades}


def _errors(cell: dict) -> str:
    return "\n".join(f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
                     if o.get("output_type") == "error")


@pytest.mark.parametrize("kind", SUBMISSIONS)
@pytest.mark.parametrize("number", NUMBERS)
def test_nbgrader_autogrades(number, kind, released, tmp_path, monkeypatch):
    names = [ex.name for ex in BY_NOTEBOOK[number]]
    nb, blank = submission(number, kind)
    if kind == "variants" and len(blank) == len(names):
        pytest.skip(f"notebook {number}: no tests/variants/ file for any of its exercises {names}; "
                    "nothing but the blank edition to grade")
    course = tmp_path / "course"
    shutil.copytree(released(number), course)
    folder = course / "submitted" / kind / assignment(number)
    folder.mkdir(parents=True)
    (folder / exercises.notebook_path(number).name).write_text(exercises.dumps(nb))
    # A grader's machine: nothing trained yet (a student's network must not load the course's weights).
    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path / "checkpoints"))
    start = time.time()
    nbgrader(course, "autograde", assignment(number), "--student", kind, "--create", "--force")
    print(f"autograde {number} {kind}: {time.time() - start:.0f} s")

    graded = json.loads((course / "autograded" / kind / assignment(number)
                         / exercises.notebook_path(number).name).read_text())
    code = [c for c in graded["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") is not None for c in code), "a cell was not run"
    failed = {exercises.grade_id(c)[len("check_"):]: _errors(c) for c in code
              if (exercises.grade_id(c) or "").startswith("check_") and _errors(c)}
    others = [(k, exercises.grade_id(c), _errors(c)) for k, c in enumerate(graded["cells"])
              if c["cell_type"] == "code" and not (exercises.grade_id(c) or "").startswith("check_") and _errors(c)]
    assert not others, f"cells other than the checks raised (every cell must run on a working notebook): {others}"

    got = grades(course, number, kind)
    assert set(got) == {f"check_{n}" for n in names}, f"graded cells {sorted(got)}, exercises {names}"
    zero = set(names) if kind == "blank" else set(blank)
    for name in names:
        score, top = got[f"check_{name}"]
        if name in zero:
            assert score == 0, f"{kind}: {name} scored {score}/{top} though it is blank"
            assert f"✗ {name}:" in failed.get(name, ""), f"{name}: the check cell's error does not name it: {failed}"
        else:
            assert score == top > 0, f"{kind}: {name} scored {score}/{top}: {failed.get(name, '')}"
    if blank:
        pytest.skip(f"notebook {number}: graded, but no tests/variants/ file for {blank} (left blank, scored 0)")


def test_the_quick_set_covers_every_kind_of_exercise():
    """`make test` grades QUICK only: it must hold each kind of exercise the course has."""
    def kinds(exs):
        out = set()
        for ex in exs:
            obj = ex.load()
            if isinstance(obj, type):
                out.add("Part B module" if int(ex.notebook) >= 12 else "Part A class")
            elif int(ex.notebook) < 12:
                out.add("Part A function")
            if "loss" in ex.name:
                out.add("loss")
            if "sample" in ex.name:
                out.add("sampler")
        return out

    quick = [ex for ex in EXERCISES if ex.notebook in QUICK]
    assert kinds(EXERCISES) <= kinds(quick), f"QUICK = {QUICK} misses {kinds(EXERCISES) - kinds(quick)}"
