"""Checkpoints that survive a dead Colab session: atomic writes, architecture checks, resume.

``last.pt`` holds everything needed to resume (model, optimizer, LR scheduler, loss history,
epoch, RNG states) and the settings of the run that wrote it; ``epoch_<k>.pt`` holds the model
weights after epoch k, for the "results after epoch k" figures, and (under ``"resume"``) the
same full state as ``last.pt`` had then, so that a damaged ``last.pt`` costs a few epochs, not
the run.
"""
from __future__ import annotations

import errno
import io
import math
import os
import re
from pathlib import Path

import torch
from torch import nn

LAST = "last.pt"
_ON_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


class CorruptCheckpoint(ValueError):
    """A file that is not a complete, finite checkpoint saved by course_utils."""

    def __init__(self, path: Path, reason: str, fix: str):
        super().__init__(f"checkpoint {'folder ' if Path(path).is_dir() else ''}{path} {reason}. {fix}")
        self.reason = reason


class CheckpointMismatch(ValueError):
    """A checkpoint of another run: other architecture or other training settings."""


def architecture(model: nn.Module) -> dict:
    return {"class": type(model).__name__, **getattr(model, "config", {})}


def versions() -> dict:
    from .. import __version__

    # str(): torch.__version__ is a TorchVersion, which torch.load(weights_only=True) refuses
    return {"torch": str(torch.__version__), "course_utils": __version__}


# ---- writing --------------------------------------------------------------------------------

def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not every file system (or OS) can open a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_error(err: OSError, path: Path) -> OSError:
    """``err`` rewritten as a message that names the path and the fix (same errno and type)."""
    if err.errno in _ON_DISK_FULL:
        why = (f"the disk holding {path.parent} is full. Free space there (on Google Drive, also "
               "empty the trash: deleted files count until it is emptied), or set COURSE_CKPT_DIR "
               "to a folder with room; then rerun: training resumes from the last saved epoch")
    elif err.errno in _NOT_ALLOWED or isinstance(err, PermissionError):
        why = (f"{path.parent} is not writable. Choose a folder you can write to with "
               "COURSE_CKPT_DIR (in Colab: mount Google Drive first, or use /content)")
    else:
        why = f"check that {path.parent} exists and is writable, or set COURSE_CKPT_DIR elsewhere"
    message = f"could not write {path} ({err.strerror or err}): {why}"
    return type(err)(err.errno, message) if err.errno is not None else OSError(message)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass     # the error that brought us here is the one to report


def save_atomic(obj, path: str | Path) -> Path:
    """Serialize, write a temporary file, fsync, rename: a crash at any moment leaves either the
    old or the new file, and a failed write leaves no ``.tmp`` behind."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)           # in memory first: a full disk then raises a plain OSError
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, buffer.getbuffer())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise write_error(err, path) from err
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def check_writable(folder: str | Path, need_bytes: int = 0) -> Path:
    """Fail before training rather than after an epoch: create ``folder``, write and fsync a
    probe file, check the free space, and remove ``.tmp`` files a killed save left behind."""
    folder = Path(folder)
    probe = folder / ".write_test"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, memoryview(b"x" * 4096))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise write_error(err, probe) from err
    finally:
        _remove(probe)
    for stale in folder.glob("*.pt.tmp"):
        _remove(stale)
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):   # no statvfs on Windows
        return folder
    free = stats.f_bavail * stats.f_frsize
    if free < need_bytes:
        raise write_error(OSError(errno.ENOSPC, f"{free / 1e6:.0f} MB free, checkpoints need about "
                                                f"{need_bytes / 1e6:.0f} MB"), folder / LAST)
    return folder


# ---- reading --------------------------------------------------------------------------------

_FIX = ("If the file is on Google Drive and was written from another session, Drive may still be "
        "syncing it: wait a minute and rerun. Otherwise delete it and rerun the notebook that trains "
        "it (a training resumes from the newest readable checkpoint in its folder).")


def _read(path: str | Path, map_location) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}. Run the notebook that trains this model first "
            "(with the same profile), or check COURSE_CKPT_DIR / your Google Drive folder.")
    size = path.stat().st_size
    if size == 0:
        raise CorruptCheckpoint(path, "is empty (0 bytes): its write never finished", _FIX)
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"
        what = ("is truncated or damaged (a PyTorch file whose end is missing or broken)" if zipped
                else "is not a PyTorch file (garbage or another format)")
        raise CorruptCheckpoint(path, f"({size} bytes) {what}: {type(err).__name__}", _FIX) from err
    if not isinstance(state, dict) or "arch" not in state or "model" not in state:
        raise CorruptCheckpoint(
            path, "is a PyTorch file but not a checkpoint saved by course_utils (no 'arch' and "
            "'model' entries: a bare state_dict, perhaps)", "Move it out of the checkpoint folder (or "
            "delete it); load a bare state_dict yourself with model.load_state_dict(torch.load(path)).")
    return state


def nonfinite(tensors: dict) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` (nested dicts too) with a NaN or inf."""
    bad = []
    for name, value in tensors.items():
        if isinstance(value, dict):
            bad += [f"{name}.{k}" for k in nonfinite(value)]
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad.append(str(name))
    return bad


def _nonfinite_reason(state: dict) -> str | None:
    bad = nonfinite(state["model"]) + nonfinite({"ema": state.get("ema") or {}})
    if bad:
        return f"holds NaN/inf weights ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})"
    return None


def _check_finite(state: dict, path: Path) -> None:
    """Never write weights that can only ever give NaN: they would replace the last good ones."""
    reason = _nonfinite_reason(state)
    if reason:
        raise FloatingPointError(f"refusing to save {path}: the state {reason}. Nothing was "
                                 "written; retrain with a lower learning rate.")


def _check_loadable(state: dict, path: Path) -> None:
    reason = _nonfinite_reason(state)
    if reason:
        raise CorruptCheckpoint(path, reason, "Delete it and retrain with a lower learning rate.")


def _check_architecture(saved: dict, model: nn.Module, path: Path, weights: dict | None = None) -> None:
    """The checkpoint's network is the model's: same class and, where both record it, the same
    config. A class without ``config`` (a student's UNet) records only its name, so a checkpoint
    the course's class wrote loads into it, and the other way round, as long as the weights have
    the same names and shapes (``weights``: the saved state_dict, when there is one)."""
    expected = architecture(model)
    differs = any(saved[k] != expected[k] for k in saved.keys() & expected.keys())
    if not differs and weights is not None and saved != expected:
        own = model.state_dict()
        differs = own.keys() != weights.keys() or any(own[k].shape != weights[k].shape for k in own)
    if differs:
        raise CheckpointMismatch(
            f"checkpoint {path} was saved for {saved} but the model is {expected}. "
            "Build the model with the checkpoint's settings (same profile), or delete the "
            "checkpoint folder to train from scratch.")


def save_weights(path: str | Path, model: nn.Module, **extra) -> Path:
    state = {"arch": architecture(model), "model": model.state_dict(), "versions": versions(), **extra}
    _check_finite(state, Path(path))
    return save_atomic(state, path)


def load_weights(path: str | Path, model: nn.Module, map_location="cpu") -> dict:
    """Load model weights from a weights file or a full checkpoint; returns the file's dict."""
    state = _read(path, map_location)
    _check_architecture(state["arch"], model, Path(path), state.get("model"))
    _check_loadable(state, Path(path))
    model.load_state_dict(state["model"])
    return state


# ---- full training state --------------------------------------------------------------------

def checkpoint_state(model, optimizer, scheduler, *, epoch: int, losses: list,
                     generators: dict[str, torch.Generator], **extra) -> dict:
    return {
        "arch": architecture(model),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "losses": list(losses),
        "generators": {k: g.get_state() for k, g in generators.items()},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "versions": versions(),
        **extra,
    }


def save_checkpoint(path: str | Path, model, optimizer, scheduler, *, epoch: int, losses: list,
                    generators: dict[str, torch.Generator], **extra) -> Path:
    return save_checkpoint_state(checkpoint_state(model, optimizer, scheduler, epoch=epoch,
                                                  losses=losses, generators=generators, **extra), path)


def save_checkpoint_state(state: dict, path: str | Path) -> Path:
    _check_finite(state, Path(path))
    return save_atomic(state, path)


def restore(state: dict, model, optimizer=None, scheduler=None,
            generators: dict[str, torch.Generator] | None = None) -> dict:
    """Put a full state (``checkpoint_state``'s dict) back into the given objects."""
    model.load_state_dict(state["model"])
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


def load_checkpoint(path: str | Path, model, optimizer=None, scheduler=None,
                    generators: dict[str, torch.Generator] | None = None,
                    map_location="cpu") -> dict:
    """Restore everything ``save_checkpoint`` wrote into the given objects; returns the dict."""
    state = _read(path, map_location)
    _check_architecture(state["arch"], model, Path(path), state.get("resume", state).get("model"))
    state = state.get("resume", state)
    _check_loadable(state, Path(path))
    return restore(state, model, optimizer, scheduler, generators)


def _snapshot_epoch(path: Path) -> int:
    match = re.fullmatch(r"epoch_(\d+)\.pt", path.name)
    return int(match.group(1)) if match else -1


def newest_resumable(folder: str | Path, model: nn.Module, map_location="cpu"):
    """(path, full state) of the newest usable checkpoint in ``folder``: ``last.pt``, or else the
    newest ``epoch_<k>.pt`` that holds a full state; None for a folder without checkpoints.

    Files that cannot be read or hold NaN/inf are skipped, and each skip is printed. A file of
    another architecture raises ``CheckpointMismatch``: every older file would be of it too.
    """
    folder = Path(folder)
    snapshots = sorted(folder.glob("epoch_*.pt"), key=_snapshot_epoch, reverse=True)
    candidates = [p for p in [folder / LAST, *snapshots] if p.exists()]
    skipped = []
    for path in candidates:
        try:
            state = _read(path, map_location)
        except CorruptCheckpoint as err:
            skipped.append(f"{path.name} {err.reason}")
            continue
        _check_architecture(state["arch"], model, path,
                            (state if path.name == LAST else state.get("resume") or {}).get("model"))
        state = state if path.name == LAST else state.get("resume")
        if state is None:
            skipped.append(f"{path.name} holds weights only (an older snapshot): no state to resume")
            continue
        reason = _nonfinite_reason(state)
        if reason:
            skipped.append(f"{path.name} {reason}")
            continue
        if skipped:
            print("Skipped unusable checkpoints: " + "; ".join(skipped) +
                  f". Resuming from {path.name} (epoch {state['epoch']}) instead.")
        elif path.name != LAST:
            print(f"No {LAST} in {folder.name}: resuming from {path.name} (epoch {state['epoch']}). "
                  "To train from scratch, delete the whole folder.")
        return path, state
    if skipped:
        raise CorruptCheckpoint(
            folder, "holds no usable checkpoint: " + "; ".join(skipped),
            "If Drive may still be syncing these files, wait a minute and rerun; otherwise delete "
            "the folder to train from scratch.")
    return None


# ---- the settings of a run --------------------------------------------------------------------

# Settings that change what a resumed run computes; a difference stops the resume.
RUN_KEYS = ("seed", "optimizer", "lr", "schedule", "epochs", "batch_size", "images_per_epoch",
            "ema_decay")


def run_differences(saved: dict | None, current: dict) -> list[str]:
    """'name: saved X, now Y' for every setting of ``RUN_KEYS`` that differs."""
    if saved is None:
        return []   # written before runs recorded their settings: nothing to compare
    out = []
    for key in RUN_KEYS:
        a, b = saved.get(key), current.get(key)
        same = (math.isclose(a, b, rel_tol=1e-12)
                if isinstance(a, float) and isinstance(b, float) else a == b)
        if not same:
            out.append(f"{key}: saved {a}, now {b}")
    return out
