"""Where the notebook runs: device, Colab, Google Drive, and the folders it writes to."""
from __future__ import annotations

import ast
import difflib
import os
import platform
import sys
from pathlib import Path

import torch

DRIVE_ROOT = Path("/content/drive")
DRIVE_FOLDER = "MyDrive/diffusion-course"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def get_device(prefer: str | None = None) -> torch.device:
    """``prefer`` (or ``COURSE_DEVICE``) if given, else CUDA, then Apple MPS, then CPU."""
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def machine_description(device: torch.device | None = None) -> str:
    device = device or get_device()
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    return f"{_cpu_name()} CPU, {os.cpu_count()} cores"


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _base_dir(env_var: str, local_default: str) -> Path:
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    drive = DRIVE_ROOT / DRIVE_FOLDER
    if in_colab() and (DRIVE_ROOT / "MyDrive").exists():
        return drive / local_default
    return Path(local_default)


def checkpoint_dir(profile_name: str) -> Path:
    """Per-profile checkpoint folder: on Drive in Colab (sessions die), else ./checkpoints.

    ``COURSE_CKPT_DIR`` overrides the base folder. Profiles never share a folder because
    their models have different widths.
    """
    path = _base_dir("COURSE_CKPT_DIR", "checkpoints") / profile_name
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir() -> Path:
    """Where every figure is also saved as a PNG (``COURSE_FIGURE_DIR`` overrides)."""
    path = _base_dir("COURSE_FIGURE_DIR", "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG and return a generator for the caller's own draws."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _assigned_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)]


def check_parameters(history: list[str] | None = None) -> None:
    """Papermill assigns every ``-p NAME VALUE`` it is given, declared or not, so a misspelt
    name (``EPOCHS``, ``D``) would change nothing without a word. Compare the names of papermill's
    injected cell with those of the parameters cell executed just before it; raise on strangers.

    ``history`` is the kernel's list of executed cells (IPython's ``In``); outside IPython, or
    when papermill injected nothing, there is nothing to check.
    """
    if history is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        history = shell.user_ns.get("_ih", []) if shell is not None else []
    for i in range(len(history) - 1, 0, -1):
        if history[i].startswith("# Parameters\n"):        # papermill's injected cell
            declared = _assigned_names(history[i - 1])
            unknown = [n for n in _assigned_names(history[i]) if n not in declared]
            if unknown:
                hints = [f"{n} -> did you mean {close[0]}?" for n in unknown
                         if (close := difflib.get_close_matches(n, declared, 1, 0.6))]
                raise ValueError(
                    f"unknown notebook parameter(s) {', '.join(unknown)}: this notebook's parameters "
                    f"are {', '.join(declared)}. {' '.join(hints)} Sizes such as epochs and widths come "
                    "from the run profile (PROFILE = smoke, cpu or full), not from parameters.")
            return
