"""Checkpoints that survive a dead Colab session: atomic writes, architecture checks, resume.

``last.pt`` holds everything needed to resume (model, optimizer, LR scheduler, loss history,
epoch, RNG states); ``epoch_<k>.pt`` holds the model weights after epoch k, for the
"results after epoch k" figures.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

LAST = "last.pt"


def architecture(model: nn.Module) -> dict:
    return {"class": type(model).__name__, **getattr(model, "config", {})}


def save_atomic(obj, path: str | Path) -> Path:
    """Write to a temporary file, then rename: a crash mid-write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def _check_architecture(saved: dict, model: nn.Module, path: Path) -> None:
    expected = architecture(model)
    if saved != expected:
        raise ValueError(
            f"checkpoint {path} was saved for {saved} but the model is {expected}. "
            "Build the model with the checkpoint's settings (same profile), or delete the "
            "checkpoint folder to train from scratch.")


def _read(path: str | Path, map_location) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}. Run the notebook that trains this model first "
            "(with the same profile), or check COURSE_CKPT_DIR / your Google Drive folder.")
    return torch.load(path, map_location=map_location, weights_only=False)


def save_weights(path: str | Path, model: nn.Module, **extra) -> Path:
    return save_atomic({"arch": architecture(model), "model": model.state_dict(), **extra}, path)


def load_weights(path: str | Path, model: nn.Module, map_location="cpu") -> dict:
    """Load model weights from a weights file or a full checkpoint; returns the file's dict."""
    state = _read(path, map_location)
    _check_architecture(state["arch"], model, Path(path))
    model.load_state_dict(state["model"])
    return state


def save_checkpoint(path: str | Path, model, optimizer, scheduler, *, epoch: int, losses: list,
                    generators: dict[str, torch.Generator], **extra) -> Path:
    state = {
        "arch": architecture(model),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "losses": list(losses),
        "generators": {k: g.get_state() for k, g in generators.items()},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        **extra,
    }
    return save_atomic(state, path)


def load_checkpoint(path: str | Path, model, optimizer=None, scheduler=None,
                    generators: dict[str, torch.Generator] | None = None,
                    map_location="cpu") -> dict:
    """Restore everything ``save_checkpoint`` wrote into the given objects; returns the dict."""
    state = load_weights(path, model, map_location)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    for key, g in (generators or {}).items():
        g.set_state(state["generators"][key])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state
