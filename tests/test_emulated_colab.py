"""A fresh Colab, emulated: a new venv with only Colab's torch and kernel, then exactly the
notebook's own install line (pointed at this checkout instead of GitHub), then the DeepFloyd
code path on tiny hub-shaped folders and a Part A notebook on the tiny backend; importing the
course and running that notebook print nothing on stderr.

Takes minutes (the venv is new each time), so it runs only with COURSE_COLAB_EMULATION=1:
`make test` sets it (see the Makefile's `colab` target).
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_A0_setup_and_prompts.ipynb"
# What a Colab runtime has before the notebook installs anything (torch as pinned here).
COLAB_PREINSTALLED = ["torch==2.14.1", "torchvision==0.29.1", "ipykernel", "nbclient", "nbformat"]

pytestmark = pytest.mark.skipif(os.environ.get("COURSE_COLAB_EMULATION") != "1",
                                reason="minutes long: run with COURSE_COLAB_EMULATION=1 (make colab)")


def install_line(notebook: Path) -> list[str]:
    """The arguments of the ``!pip install`` line in the notebook's Colab cell."""
    cells = json.loads(notebook.read_text())["cells"]
    colab = [c for c in cells if "colab" in c.get("metadata", {}).get("tags", [])]
    assert colab, f"{notebook.name} has no cell tagged 'colab'"
    lines = [ln.strip() for ln in "".join(colab[0]["source"]).splitlines() if ln.strip().startswith("!pip install")]
    assert len(lines) == 1, f"expected one !pip install line in the Colab cell, found {lines}"
    return shlex.split(lines[0])[2:]


def _source_tree(dest: Path) -> Path:
    """What pip would get from GitHub: the package's files, without this checkout's venv or builds."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "course_utils", dest / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _run(cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    command = " ".join(map(str, cmd))[:200]
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_fresh_colab_runs_deepfloyd_path_and_a_part_a_notebook(tmp_path):
    start = time.time()
    venv, src = tmp_path / "colab", _source_tree(tmp_path / "src")
    python, pip = venv / "bin" / "python", [venv / "bin" / "python", "-m", "pip", "install", "-q",
                                            "--disable-pip-version-check"]
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv])
    _run(pip + COLAB_PREINSTALLED)
    torch_file = Path(_run([python, "-c", "import torch; print(torch.__file__)"]).strip())
    before = torch_file.stat().st_mtime_ns

    # The notebook's line, with the GitHub URL replaced by this checkout
    args = [re.sub(r"git\+https://github\.com/\S+", src.as_uri(), a) for a in install_line(NOTEBOOK)]
    assert any(src.as_uri() in a for a in args), f"no git+https URL to replace in {args}"
    _run(pip + [a for a in args if a != "-q"])
    assert torch_file.stat().st_mtime_ns == before, "the install cell reinstalled torch (Colab's would be replaced)"
    assert "requirements" not in " ".join(args)

    env = {**os.environ, "PYTHONPATH": ""}  # only the venv's packages, not this checkout's
    env.pop("TQDM_DISABLE", None)           # as in Colab: the notebook keeps its bars
    # Importing the course on a CPU runtime prints nothing on stderr (issue 20: bitsandbytes,
    # imported by diffusers, logged "Failed to load CPU gemm_4bit_forward from kernels-community").
    imports = subprocess.run([str(python), str(ROOT / "tests" / "colab_emulation.py"), "imports"],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    assert imports.returncode == 0 and "imports ok" in imports.stdout, imports.stdout + imports.stderr
    assert imports.stderr == "", f"importing the course printed on stderr:\n{imports.stderr}"
    out = _run([python, ROOT / "tests" / "colab_emulation.py", "deepfloyd", tmp_path / "work"],
               env=env, cwd=tmp_path)
    assert "deepfloyd path ok" in out

    _run([python, "-m", "ipykernel", "install", "--prefix", venv, "--name", "colab-emulation"], env=env)
    out = _run([python, ROOT / "tests" / "colab_emulation.py", "notebook", NOTEBOOK,
                tmp_path / NOTEBOOK.name, "colab-emulation"], env=env, cwd=tmp_path)
    assert "ran on the tiny backend" in out
    print(f"emulated Colab: {time.time() - start:.0f} s")
