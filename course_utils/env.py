"""Where the notebook runs: device, Colab, Google Drive, and the folders it writes to."""
from __future__ import annotations

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
