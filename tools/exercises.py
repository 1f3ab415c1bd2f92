"""The hands-on edition: each exercise's solution lives once, in course_utils; both editions are generated.

    python tools/exercises.py sync             rewrite the exercise cells of notebooks/ from course_utils
    python tools/exercises.py sync --check     name the cells that differ (exit 1 if any)
    python tools/exercises.py student          write student/: every notebook, outputs cleared, bodies stubbed
    python tools/exercises.py student --check  name the student notebooks that differ (exit 1 if any)
    ... --only 01,04                           either command on these notebooks only

The exercises are ``course_utils.checks.EXERCISES``: a name, the reference ("module:qualname")
and the notebook that teaches it. In notebooks/ (the solution edition) each exercise is a code
cell made from the reference's source (``inspect.getsource``), preceded by the imports that source
needs and with nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` around each body the
student writes (a function's body after its docstring; for a class, the bodies of its listed
methods). The cell after it is the check, ``NAME = checks.NAME(NAME)``. In student/ each marked
body becomes nbgrader's stub, ``# YOUR CODE HERE`` + ``raise NotImplementedError()``. Cells are
found by their nbgrader ``grade_id`` (``exercise_NAME``, ``check_NAME``); a new exercise is
inserted before the cell named in PLACE (or, failing that, before the first cell that uses it).
Output is deterministic: the same inputs give the same bytes.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import copy
import importlib
import importlib.util
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
STUDENT = ROOT / "student"
PACKAGE = "course_utils"

# The exercises in teaching order (issue 17: what the handout asks a student to write). The
# registry course_utils.checks.EXERCISES is read at run time and wins; this table only orders
# them: an exercise that no check registers is not generated.
TABLE = [
    # name, reference, notebook, methods the student writes (classes)
    ("forward", "solutions.part_a:forward", "01", ()),
    ("one_step_denoise", "solutions.part_a:one_step_denoise", "03", ()),
    ("iterative_denoise", "solutions.part_a:iterative_denoise", "04", ()),
    ("iterative_denoise_cfg", "solutions.part_a:iterative_denoise_cfg", "06", ()),
    ("sdedit", "solutions.part_a:sdedit", "07", ()),
    ("inpaint", "solutions.part_a:inpaint", "08", ()),
    ("anagram_eps", "solutions.part_a:anagram_eps", "10", ()),
    ("hybrid_eps", "solutions.part_a:hybrid_eps", "11", ()),
    ("Flatten", "solutions.part_b_networks:Flatten", "12", ("__init__",)),
    ("Unflatten", "solutions.part_b_networks:Unflatten", "12", ("__init__",)),
    ("ConvBlock", "solutions.part_b_networks:ConvBlock", "12", ("__init__",)),
    ("DownBlock", "solutions.part_b_networks:DownBlock", "12", ("__init__",)),
    ("UpBlock", "solutions.part_b_networks:UpBlock", "12", ("__init__",)),
    ("UnconditionalUNet", "solutions.part_b_networks:UnconditionalUNet", "12", ("__init__", "forward")),
    ("add_noise", "solutions.part_b_flow:add_noise", "13", ()),
    ("FCBlock", "solutions.part_b_networks:FCBlock", "16", ("__init__",)),
    ("TimeConditionalUNet", "solutions.part_b_networks:TimeConditionalUNet", "16", ("__init__", "forward")),
    ("time_flow_loss", "solutions.part_b_flow:time_flow_loss", "16", ()),
    ("euler_sample", "solutions.part_b_flow:euler_sample", "16", ()),
    ("ClassConditionalUNet", "solutions.part_b_networks:ClassConditionalUNet", "17", ("__init__", "forward")),
    ("class_flow_loss", "solutions.part_b_flow:class_flow_loss", "17", ()),
    ("euler_sample_cfg", "solutions.part_b_flow:euler_sample_cfg", "17", ()),
    ("ddpm_schedule", "solutions.part_b_ddpm:ddpm_schedule", "19", ()),
    ("ddpm_loss", "solutions.part_b_ddpm:ddpm_loss", "19", ()),
    ("ddpm_sample", "solutions.part_b_ddpm:ddpm_sample", "19", ()),
    ("ddpm_sample_cfg", "solutions.part_b_ddpm:ddpm_sample_cfg", "19", ()),
]

# Where a new exercise goes the first time: before the first cell holding this text, i.e. where
# the notebook teaches it (the first cell that uses it, or the heading above that cell).
PLACE = {
    "forward": "noisy = {t: forward(",
    "one_step_denoise": "estimates = [",
    "iterative_denoise": "clean = iterative_denoise(",
    "iterative_denoise_cfg": "samples = sample(",
    "sdedit": "## The test image and two of your own",
    "inpaint": "results = inpaint(",
    "anagram_eps": "anagrams = [visual_anagram(",
    "hybrid_eps": "hybrids = [hybrid_image(",
    "Flatten": "print(DownBlock(16, 32))",
    "Unflatten": "print(DownBlock(16, 32))",
    "ConvBlock": "print(DownBlock(16, 32))",
    "DownBlock": "print(DownBlock(16, 32))",
    "UpBlock": "print(DownBlock(16, 32))",
    "UnconditionalUNet": "unet = UnconditionalUNet(",
    "add_noise": "noisy = [add_noise(",
    "FCBlock": "toy = TimeConditionalUNet(",
    "TimeConditionalUNet": "toy = TimeConditionalUNet(",
    "time_flow_loss": "model, history = train_flow(",
    "euler_sample": "samples = sample_time_conditioned(after_epoch(",
    "ClassConditionalUNet": "## §2.5 Training",
    "class_flow_loss": "model, history = train_flow(",
    "euler_sample_cfg": "samples = sample_class_conditioned(after_epoch(",
    "ddpm_schedule": "betas, alphas, alphas_cumprod = ddpm_schedule(",
    "ddpm_loss": "model, history = train_ddpm(",
    "ddpm_sample": "samples = sample_time_ddpm(",
    "ddpm_sample_cfg": "Four of each digit, one column per digit",
}

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
CHECKS_IMPORT = "from course_utils import checks"
SOLUTION_HEADER = ("# Exercise `{name}`: this is {where}, copied here by tools/exercises.py",
                   "# (edit it there, then run `make student`). The next cell checks it.")
STUDENT_HEADER = ("# Exercise `{name}`: replace each `raise NotImplementedError()` with your code (the",
                  "# docstring gives the formula), then run the next cell to check it.")
NBGRADER_EXERCISE = {"grade": False, "locked": False, "schema_version": 3, "solution": True, "task": False}
NBGRADER_CHECK = {"grade": True, "locked": True, "points": 1, "schema_version": 3, "solution": False,
                  "task": False}
LINE = 100


class Ex(NamedTuple):
    name: str
    reference: str   # "module:qualname" inside course_utils, e.g. "part_b.unet:UnconditionalUNet"
    notebook: str    # "01"
    methods: tuple   # for a class: the methods the student writes

    @property
    def module(self):
        return importlib.import_module(f"{PACKAGE}.{self.reference.split(':')[0]}")

    def load(self):
        obj = self.module
        for part in self.reference.split(":")[1].split("."):
            obj = getattr(obj, part)
        return obj

    @property
    def where(self) -> str:
        return f"{PACKAGE}.{self.reference.replace(':', '.')}"


def exercises() -> list[Ex]:
    """TABLE's exercises, updated and extended by the registry of course_utils.checks."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from course_utils.checks import EXERCISES

    found = {name: Ex(name, ref, nb, tuple(methods)) for name, ref, nb, methods in TABLE}
    for name, e in EXERCISES.items():
        found[name] = Ex(name, e.reference, e.notebook, tuple(e.methods))
    order = ([name for name, *_ in TABLE if name in EXERCISES]
             + [n for n in EXERCISES if n not in dict.fromkeys(n for n, *_ in TABLE)])
    return [found[n] for n in order]


# ---- the solution cell: the reference's source, its imports, the markers ------------------------

def _bodies(tree: ast.Module, ex: Ex) -> list[ast.FunctionDef]:
    top = tree.body[0]
    if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if ex.methods:
            raise SystemExit(f"exercise {ex.name}: {ex.where} is a function, yet methods {ex.methods} are listed")
        return [top]
    defs = {n.name: n for n in top.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    missing = [m for m in ex.methods if m not in defs]
    if missing or not ex.methods:
        raise SystemExit(f"exercise {ex.name}: class {ex.where} " + (f"defines no {missing}" if missing else
                         "needs the methods the student writes (Exercise.methods)"))
    return [defs[m] for m in ex.methods]


def _body_lines(node: ast.FunctionDef, lines: list[str]) -> tuple[int, int]:
    """(first, last) line, 0-based and inclusive, of what the student writes: after the docstring."""
    body = node.body
    has_doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
               and isinstance(body[0].value.value, str))
    if has_doc and len(body) == 1:
        raise SystemExit(f"{node.name} has a docstring and no body to write")
    if has_doc:
        first = body[0].end_lineno            # the line after the docstring (0-based = end_lineno)
    else:
        first = body[0].lineno - 1
        while first - 1 > node.lineno - 1 and lines[first - 1].strip().startswith("#"):
            first -= 1                        # comments above the first statement belong to it
    while not lines[first].strip():
        first += 1
    if first <= node.lineno - 1:
        raise SystemExit(f"{node.name}: a body on the def line cannot be marked; put it on its own line")
    return first, node.end_lineno - 1


def marked_source(ex: Ex) -> str:
    """The reference's source with BEGIN/END SOLUTION around each body the student writes."""
    source = textwrap.dedent(inspect.getsource(ex.load()))
    lines = source.rstrip("\n").split("\n")
    regions = [_body_lines(node, lines) for node in _bodies(ast.parse(source), ex)]
    for first, last in sorted(regions, reverse=True):
        indent = re.match(r"\s*", lines[first]).group(0)
        lines[first:last + 1] = [indent + BEGIN, *lines[first:last + 1], indent + END]
    return "\n".join(lines)


def _module_imports(module) -> dict[str, str]:
    """name -> the import statement that binds it at the top of ``module`` (relative ones resolved)."""
    tree = ast.parse(Path(module.__file__).read_text())
    package = module.__name__.rsplit(".", 1)[0] if not module.__file__.endswith("__init__.py") else module.__name__
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    found[a.asname] = f"import {a.name} as {a.asname}"
                else:
                    found[a.name.split(".")[0]] = f"import {a.name.split('.')[0]}"
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                found[a.asname or a.name] = ("from", base, a.name, a.asname)
    return found


def _free_names(tree: ast.AST) -> list[str]:
    """Names the source reads but never binds, in order of first use."""
    bound, used = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                used.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return list(dict.fromkeys(n for n in used if n not in bound))


def import_lines(ex: Ex, defined_here: dict[str, object]) -> list[str]:
    """The imports the reference's source needs, from its module's own globals and imports.

    ``defined_here`` maps the names of exercises defined earlier in the same notebook to their
    references: those come from the notebook (the student's, if it passed), not from course_utils.
    """
    module = ex.module
    source = textwrap.dedent(inspect.getsource(ex.load()))
    imports = _module_imports(module)
    plain, froms = set(), {}
    for name in _free_names(ast.parse(source)):
        if name not in vars(module) or (hasattr(builtins, name) and name not in imports):
            continue
        if name in defined_here and defined_here[name] is vars(module)[name]:
            continue
        how = imports.get(name)
        if isinstance(how, str):
            plain.add(how)
        elif how is not None:
            _, base, original, asname = how
            froms.setdefault(base, set()).add(original + (f" as {asname}" if asname else ""))
        else:   # defined in the module itself: a solution the cell calls comes from the course's engine
            froms.setdefault(_engine_home(name) or module.__name__, set()).add(name)
    ours = lambda m: m == PACKAGE or m.startswith(PACKAGE + ".")
    third = sorted(plain, key=lambda s: s.split()[1]) + [_from(m, froms[m]) for m in sorted(froms) if not ours(m)]
    third.sort(key=lambda s: s.split()[1])
    local = [_from(m, froms[m]) for m in sorted(froms) if ours(m)]
    return third + ([""] if third and local else []) + local


# The course's own modules, where a solution that calls another exercise's solution (SDEdit calls
# forward and iterative_denoise_cfg) finds it: a student cell never imports from course_utils.solutions.
ENGINE = ("part_a.diffusion", "part_a.edits", "part_b.blocks", "part_b.noising", "part_b.sampling",
          "part_b.unet")


def _engine_home(name: str) -> str | None:
    for m in ENGINE:
        module = importlib.import_module(f"{PACKAGE}.{m}")
        obj = vars(module).get(name)
        if obj is not None and getattr(obj, "__module__", None) == module.__name__:
            return module.__name__
    return None


def _from(module: str, names: set[str]) -> str:
    names = sorted(names)
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= LINE:
        return line
    head, rows, row = f"from {module} import (", [], ""
    for n in names:
        piece = n + ", "
        if row and len(" " * len(head) + row + piece) > LINE:
            rows.append(row.rstrip())
            row = ""
        row += piece
    rows.append(row.rstrip(", ") + ")")
    return head + ("\n" + " " * len(head)).join(rows)


def solution_cell_source(ex: Ex, defined_here: dict[str, object]) -> str:
    imports = import_lines(ex, defined_here)
    parts = ["\n".join(SOLUTION_HEADER).format(name=ex.name, where=ex.where)]
    if imports:
        parts.append("\n".join(imports))
    return "\n".join(parts) + "\n\n" + marked_source(ex)


def check_cell_source(ex: Ex) -> str:
    return f"{ex.name} = checks.{ex.name}({ex.name})"


def stub(source: str, name: str) -> str:
    """nbgrader's release version of a solution cell: each marked region becomes the stub."""
    out, skipping = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN:
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + STUB[0], indent + STUB[1]]
            skipping = True
        elif stripped == END:
            skipping = False
        elif not skipping:
            out.append(line)
    if skipping:
        raise SystemExit(f"exercise {name}: {BEGIN} without {END}")
    if not out or not out[0].startswith(f"# Exercise `{name}`"):
        raise SystemExit(f"exercise {name}: its cell does not start with the generated header")
    out[:len(SOLUTION_HEADER)] = [line.format(name=name) for line in STUDENT_HEADER]
    return "\n".join(out)


# ---- notebooks as JSON (bytes as nbformat writes them, so an untouched notebook stays identical) --

def read(path: Path) -> dict:
    return json.loads(path.read_text())


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def as_lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def new_cell(kind: str, source: str, cell_id: str, metadata: dict | None = None) -> dict:
    cell = {"cell_type": kind, "id": cell_id, "metadata": metadata or {}, "source": as_lines(source)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
        cell = {k: cell[k] for k in ("cell_type", "execution_count", "id", "metadata", "outputs", "source")}
    return cell


def exercise_metadata(name: str) -> dict:
    return {"nbgrader": dict(sorted({**NBGRADER_EXERCISE, "grade_id": f"exercise_{name}"}.items()))}


def check_metadata(name: str) -> dict:
    return {"nbgrader": dict(sorted({**NBGRADER_CHECK, "grade_id": f"check_{name}"}.items()))}


def _sorted_meta(meta: dict) -> dict:
    return {k: (dict(sorted(v.items())) if k == "nbgrader" else v) for k, v in sorted(meta.items())}


def by_notebook(exs: list[Ex]) -> dict[str, list[Ex]]:
    out = {}
    for ex in exs:
        out.setdefault(ex.notebook, []).append(ex)
    return out


def notebook_path(number: str, folder: Path = NOTEBOOKS) -> Path:
    found = sorted(folder.glob(f"{number}_*.ipynb"))
    if len(found) != 1:
        raise SystemExit(f"exercise notebook {number}: expected one {folder.name}/{number}_*.ipynb, found {found}")
    return found[0]


def _uses(cell: dict, name: str) -> bool:
    return cell["cell_type"] == "code" and re.search(rf"\b{re.escape(name)}\b", text(cell)) is not None


def _anchor(cells: list[dict], ex: Ex) -> int:
    """Index before which a new exercise goes: PLACE's cell, else the first code cell using it."""
    start = next((i + 1 for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), 0)
    marker = PLACE.get(ex.name)
    for i in range(start, len(cells)):
        if grade_id(cells[i]):
            continue
        if (marker and marker in text(cells[i])) or (not marker and i > start and _uses(cells[i], ex.name)):
            return i
    return len(cells)


def _ensure_checks_import(cells: list[dict], before: int) -> bool:
    """Add ``from course_utils import checks`` to the imports cell if no cell before ``before`` has it."""
    if any(CHECKS_IMPORT in text(c).split("\n") for c in cells[:before] if c["cell_type"] == "code"):
        return False
    for c in cells[:before]:
        tags = c.get("metadata", {}).get("tags", [])
        if c["cell_type"] != "code" or "colab" in tags or "parameters" in tags or "import" not in text(c):
            continue
        lines = text(c).split("\n")
        at = next((k for k, line in enumerate(lines) if line.startswith("from course_utils")), None)
        if at is None:
            at = max(k for k, line in enumerate(lines) if line.startswith(("import ", "from "))) + 1
        lines.insert(at, CHECKS_IMPORT)
        c["source"] = as_lines("\n".join(lines))
        return True
    raise SystemExit("no imports cell found to add `from course_utils import checks` to")


def sync_notebook(nb: dict, exs: list[Ex]) -> tuple[dict, list[str]]:
    """``nb`` with its exercise and check cells as generated; also a list of what changed."""
    nb = copy.deepcopy(nb)
    cells, changes = nb["cells"], []
    names = {ex.name for ex in exs}
    # stale cells of exercises that no longer exist
    for cell in list(cells):
        gid = grade_id(cell) or ""
        kind, _, name = gid.partition("_")
        if kind in ("exercise", "check") and name not in names:
            cells.remove(cell)
            changes.append(f"removed {gid} (no such exercise)")
    # 1. every exercise has its two cells, the check right after the exercise
    for ex in exs:
        ids = [grade_id(c) for c in cells]
        if f"exercise_{ex.name}" not in ids:
            at = _anchor(cells, ex)
            cells.insert(at, new_cell("code", "", f"exercise-{ex.name}", exercise_metadata(ex.name)))
            changes.append(f"inserted exercise_{ex.name} before cell {at}")
        ids = [grade_id(c) for c in cells]
        i = ids.index(f"exercise_{ex.name}")
        if f"check_{ex.name}" in ids:
            j = ids.index(f"check_{ex.name}")
            if j != i + 1:
                check = cells.pop(j)
                cells.insert(ids.index(f"exercise_{ex.name}") + (0 if j < i else 1), check)
                changes.append(f"moved check_{ex.name} right after its exercise")
        else:
            cells.insert(i + 1, new_cell("code", "", f"check-{ex.name}", check_metadata(ex.name)))
            changes.append(f"inserted check_{ex.name}")
    # 2. their sources, in notebook order (an exercise defined above is the notebook's own)
    position = {grade_id(c): k for k, c in enumerate(cells)}
    for ex in sorted(exs, key=lambda e: position[f"exercise_{e.name}"]):
        defined_here = {e.name: e.load() for e in exs
                        if position[f"exercise_{e.name}"] < position[f"exercise_{ex.name}"]}
        for gid, source, meta in [(f"exercise_{ex.name}", solution_cell_source(ex, defined_here),
                                   exercise_metadata(ex.name)),
                                  (f"check_{ex.name}", check_cell_source(ex), check_metadata(ex.name))]:
            cell = cells[position[gid]]
            if cell["cell_type"] != "code":
                raise SystemExit(f"cell {gid} is a {cell['cell_type']} cell, not code")
            if text(cell) != source:
                cell["source"] = as_lines(source)
                changes.append(f"rewrote {gid}")
            wanted = _sorted_meta({**{k: v for k, v in cell["metadata"].items() if k != "tags" or v}, **meta})
            if json.dumps(cell["metadata"]) != json.dumps(wanted):
                cell["metadata"] = wanted
                changes.append(f"set the nbgrader metadata of {gid}")
    # 3. the notebook imports the checks before the first check cell
    if exs:
        first = min(position[f"check_{ex.name}"] for ex in exs)
        if _ensure_checks_import(cells, first):
            changes.append(f"added `{CHECKS_IMPORT}` to the imports")
    return nb, changes


def reimports(nb: dict, exs: list[Ex]) -> list[str]:
    """Cells outside the exercises that import an exercise's name from course_utils: they would
    hide the notebook's own (the student's) version. Nothing else in the notebook may do so."""
    names, problems = {ex.name for ex in exs}, []
    for k, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or grade_id(cell):
            continue
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text(cell).split("\n"))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                hidden = [a.name for a in node.names if (a.asname or a.name) in names]
                if hidden:
                    problems.append(f"cell {k} imports {', '.join(hidden)} from {node.module}: "
                                    "the notebook's exercise cell defines it; drop the import")
    return problems


# ---- the student edition --------------------------------------------------------------------

def _repo_url():
    spec = importlib.util.spec_from_file_location("repo_url", ROOT / "tools" / "repo_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def student_note(exs: list[Ex]) -> str:
    head = ("**Student edition.** This is the hands-on copy of `notebooks/{name}`, generated from the "
            "course's source by `make student`.")
    if not exs:
        return head + (" It has no exercise of its own: run it as it is. (The exercises are in the "
                       "notebooks that teach them; each notebook trains or loads what it needs.)")
    listed = ", ".join(f"`{ex.name}`" for ex in exs)
    return head + (
        f" Its exercises: {listed}.\n\n"
        "Each exercise is a code cell with a signature and a docstring that gives the formula; its "
        "body says `# YOUR CODE HERE`. Replace `raise NotImplementedError()` with your code and run the "
        "cell, then the check cell right after it (`NAME = checks.NAME(NAME)`). The check runs "
        "offline in seconds, on a CPU, and prints ✓ or the first mismatch with its inputs and a hint. "
        "Until your code passes, the cells below use the course's own version and say so in one "
        "line, so the rest of the notebook still runs: fix yours and rerun the check to use it.")


def student_notebook(nb: dict, path: Path, exs: list[Ex], url: str, branch: str, repo_url) -> dict:
    synced, _ = sync_notebook(nb, exs)
    out = copy.deepcopy(synced)
    out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in ("widgets", "papermill")}
    for cell in out["cells"]:
        cell["metadata"] = {k: v for k, v in cell["metadata"].items() if k not in ("papermill", "execution")}
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if (grade_id(cell) or "").startswith("exercise_"):
            cell["source"] = as_lines(stub(text(cell), grade_id(cell)[len("exercise_"):]))
    title = out["cells"][0]
    badge = repo_url.badge_url(path.name, url, branch, folder=STUDENT.name)
    new_title, n = repo_url.BADGE.subn(badge, text(title))
    if not n:
        raise SystemExit(f"{path.name}: no Colab badge in its first cell")
    title["source"] = as_lines(new_title)
    note = "\n\n".join(textwrap.fill(par, LINE, break_long_words=False, break_on_hyphens=False)
                       for par in student_note(exs).format(name=path.name).split("\n\n"))
    out["cells"].insert(1, new_cell("markdown", note, "student-edition-note"))
    return out


def student_edition(exs: list[Ex]) -> dict[str, str]:
    """file name -> text of every student notebook."""
    repo_url = _repo_url()
    url, branch = repo_url.setting()
    per = by_notebook(exs)
    return {path.name: dumps(student_notebook(read(path), path, per.get(path.name.split("_")[0], []),
                                              url, branch, repo_url))
            for path in sorted(NOTEBOOKS.glob("*.ipynb"))}


# ---- commands -------------------------------------------------------------------------------

def sync_notebooks(write: bool, only: set[str] | None = None) -> list[str]:
    """What differs between the exercise cells of notebooks/ and course_utils (written if ``write``),
    and imports that would hide a notebook's own exercise. ``only``: these notebook numbers."""
    exs, problems = exercises(), []
    for number, group in by_notebook(exs).items():
        if only and number not in only:
            continue
        path = notebook_path(number)
        new, changes = sync_notebook(read(path), group)
        if write and changes:
            path.write_text(dumps(new))
            print(f"{path.name}: " + "; ".join(changes))
        elif changes:
            problems += [f"{path.name}: {c}" for c in changes]
        problems += [f"{path.name}: {p}" for p in reimports(new, group)]
    numbers = set(by_notebook(exs))
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if only and path.name.split("_")[0] not in only:
            continue
        if path.name.split("_")[0] not in numbers:
            stale = [gid for gid in map(grade_id, read(path)["cells"]) if gid]
            problems += [f"{path.name}: {gid} belongs to no exercise" for gid in stale]
    return problems


def write_student(write: bool, only: set[str] | None = None) -> list[str]:
    """What differs between student/ and a fresh generation (written if ``write``)."""
    wanted = student_edition(exercises())
    if only:
        wanted = {n: v for n, v in wanted.items() if n.split("_")[0] in only}
    have = {p.name: p.read_text() for p in sorted(STUDENT.glob("*.ipynb"))} if STUDENT.exists() else {}
    differ = sorted(n for n in wanted if have.get(n) != wanted[n])
    extra = [] if only else sorted(set(have) - set(wanted))
    if not write:
        return ([f"student/{n} differs from a fresh generation" for n in differ]
                + [f"student/{n} has no notebook of that name in notebooks/" for n in extra])
    STUDENT.mkdir(exist_ok=True)
    for n in differ:
        (STUDENT / n).write_text(wanted[n])
    for n in extra:
        (STUDENT / n).unlink()
    print(f"student/: {len(differ)} of {len(wanted)} notebooks written" + (f", {len(extra)} removed" if extra else ""))
    return []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["sync", "student"])
    parser.add_argument("--check", action="store_true", help="only report what differs (exit 1 if anything)")
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,04 (default: all)")
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()} or None
    problems = (sync_notebooks if args.command == "sync" else write_student)(write=not args.check, only=only)
    if args.check or problems:
        fix = "python tools/exercises.py sync" if args.command == "sync" else "make student"
        print("\n".join(problems + [f"(to regenerate: {fix})"]) if problems else
              f"{'notebooks/' if args.command == 'sync' else 'student/'} is as generated")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
