"""One training loop for the three Part B trainings, with resumable per-epoch checkpoints.

An *objective* maps (model, images, labels, generator) to a scalar loss; the loop owns the
rest: shuffling, mixed precision, the progress bar, NaN checks and checkpoints. All randomness
(shuffling, noise, t, class dropout) comes from two generators whose states are saved, so a
resumed run continues exactly where the uninterrupted one would have been.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..common.checkpoint import (LAST, CheckpointMismatch, check_writable, checkpoint_state,
                                 newest_resumable, nonfinite, restore, run_differences,
                                 save_checkpoint_state, save_weights, versions)
from ..common.data import check_training_data, iterate_batches
from ..common.progress import tqdm
from ..common.run_claim import NO_CLAIM, RunClaim, releasing
from .flow import drop_class, flow_matching_loss, sample_path
from .noising import denoiser_loss
from .unet import NUM_CLASSES, TimesPerImage, one_hot


# ---- objectives --------------------------------------------------------------------------

def denoiser_objective(sigma: float | None = 0.5, add_noise=None):
    """§1.2.1 (σ = 0.5) and §1.2.3 (``sigma=None``: denoise pure noise); ``add_noise`` replaces
    ``noising.add_noise`` (same signature): a notebook passes its own, the student's."""
    return lambda model, x, y, g: denoiser_loss(model, x, g, sigma, add_noise)


def time_flow_loss(model, x1: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm B.1, one step's loss: x_0 ~ N(0, I), t ~ U[0, 1], ||(x_1 − x_0) − u_θ(x_t, t)||²."""
    x0, t = sample_path(x1, generator)
    return flow_matching_loss(model, x1, x0, t)


def class_flow_loss(model, x1: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
                    p_uncond: float = 0.1) -> torch.Tensor:
    """Algorithm B.3, one step's loss: as B.1, with c = one-hot(y) zeroed with probability p_uncond."""
    x0, t = sample_path(x1, generator)
    c = drop_class(one_hot(y, getattr(model, "num_classes", NUM_CLASSES)).to(x1.dtype), p_uncond, generator)
    return flow_matching_loss(model, x1, x0, t, c)


def time_flow_objective(loss=time_flow_loss):
    """Algorithm B.1 as ``fit``'s objective (``loss``: a function with ``time_flow_loss``'s signature)."""
    return lambda model, x1, y, g: loss(TimesPerImage(model), x1, g)


def class_flow_objective(p_uncond: float = 0.1, loss=class_flow_loss):
    """Algorithm B.3 as ``fit``'s objective (``loss``: a function with ``class_flow_loss``'s signature)."""
    return lambda model, x1, y, g: loss(TimesPerImage(model), x1, y, g, p_uncond)


# ---- precision ---------------------------------------------------------------------------

def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        # Not torch.cuda.is_bf16_supported(): since torch 2.x it also counts bf16 that is only
        # emulated, and says True on a T4 (sm_75), where emulated bf16 is slower than fp16 with
        # a GradScaler. Native bf16 tensor cores start with Ampere (sm_80).
        return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device.type, dtype=dtype)


# ---- the loop ----------------------------------------------------------------------------

@dataclass
class History:
    losses: list = field(default_factory=list)   # one float per iteration, over all epochs
    epochs: int = 0
    iters_per_epoch: int = 0
    resumed_from: int = 0                         # epoch a resumed run started after (0: fresh)
    ckpt_dir: Path | None = None

    def snapshot(self, epoch: int) -> Path:
        """Path of the weights saved after ``epoch``."""
        return Path(self.ckpt_dir) / f"epoch_{epoch}.pt"


def run_settings(optimizer, scheduler, *, seed: int, epochs: int, batch_size: int,
                 images_per_epoch: int, ema_decay: float | None) -> dict:
    """What a checkpoint must match to be resumed by this call (see ``checkpoint.RUN_KEYS``)."""
    group = optimizer.param_groups[0]
    schedule = None
    if scheduler is not None:
        schedule = {"class": type(scheduler).__name__}
        schedule.update({k: v for k, v in scheduler.state_dict().items()
                         if not k.startswith("_") and k not in ("last_epoch", "base_lrs", "verbose")
                         and isinstance(v, (int, float, str, bool))})
    return {"seed": seed, "optimizer": type(optimizer).__name__,
            "lr": float(group.get("initial_lr", group["lr"])), "schedule": schedule, "epochs": epochs,
            "batch_size": batch_size, "images_per_epoch": images_per_epoch, "ema_decay": ema_decay}


@releasing
def fit(model, objective, images: torch.Tensor, labels: torch.Tensor | None = None, *,
        epochs: int, batch_size: int, optimizer, scheduler=None, ckpt_dir: str | Path | None = None,
        keep_epochs=(), seed: int = 0, images_per_epoch: int | None = None,
        precision: str = "fp32", ema_decay: float | None = None, desc: str = "training",
        check_every: int = 20, on_mismatch: str = "error") -> History:
    """Train ``model`` for ``epochs`` epochs; resume from ``ckpt_dir`` if it holds a checkpoint.

    The scheduler (if any) steps once per epoch, as the handout asks. After every epoch the
    weights are checked for NaN/inf, then, for epochs in ``keep_epochs``, written to
    ``epoch_<k>.pt`` and last the full state to ``last.pt``. With ``ema_decay`` the snapshots
    (and ``model`` at the end) hold an exponential moving average of the weights, which smooths
    out the noise of a constant, large learning rate.

    A checkpoint written with other settings (seed, lr, schedule, epochs, ...) is not resumed:
    ``on_mismatch="error"`` says what differs; ``"keep"`` resumes it anyway with its saved state
    (optimizer and lr included) and records this call's settings from then on.
    An unreadable ``last.pt`` falls back to the newest readable ``epoch_<k>.pt``.

    One session trains a folder at a time (``common.run_claim``): a folder another live session
    trains raises ``RunInUse`` before anything is written, and so does a save after another
    session got in.
    """
    if on_mismatch not in ("error", "keep"):
        raise ValueError(f'on_mismatch must be "error" or "keep", got {on_mismatch!r}')
    check_training_data(images, labels)
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device)
    images = images.to(device)
    labels = labels.to(device) if labels is not None else torch.zeros(len(images), dtype=torch.long, device=device)
    data_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    generators = {"data": data_gen, "noise": noise_gen}
    n = min(len(images), images_per_epoch or len(images))
    iters = math.ceil(n / batch_size)
    history = History(epochs=epochs, iters_per_epoch=iters,
                      ckpt_dir=Path(ckpt_dir) if ckpt_dir is not None else None)
    run = run_settings(optimizer, scheduler, seed=seed, epochs=epochs, batch_size=batch_size,
                       images_per_epoch=n, ema_decay=ema_decay)
    keep_epochs = set(keep_epochs)

    # Only the parameters are averaged: batch-norm statistics of a weight average are recomputed
    # for it (settle_ema) before it is saved or returned.
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=False)
           if ema_decay else None)

    def settle_ema():
        recompute_batchnorm(ema.module, objective, images, labels, batch_size, seed=seed)
        return ema.module

    last = history.ckpt_dir / LAST if history.ckpt_dir is not None else None
    # One writer per run: another session's live claim stops this one before it reads or writes.
    claim = RunClaim(history.ckpt_dir) if last is not None else NO_CLAIM
    if last is not None:
        claim.check_free()
        found = newest_resumable(history.ckpt_dir, model, map_location=device)
        if found is not None:
            path, state = found
            _check_run(state, run, path, on_mismatch)
            restore(state, model, optimizer, scheduler, generators)
            history.losses, history.resumed_from = list(state["losses"]), state["epoch"]
            if ema is not None:
                ema.load_state_dict(state["ema"])
            if state["epoch"] >= epochs:
                print(f"Already trained for {state['epoch']} epochs: loaded {_short(path)} "
                      "(delete its folder to retrain).")
                return _finish(model, settle_ema() if ema is not None else None, history)
            print(f"Resuming from the checkpoint after epoch {state['epoch']} ({_short(path)}).")
        future_snapshots = len([k for k in keep_epochs if history.resumed_from < k <= epochs])
        check_writable(history.ckpt_dir, need_bytes=_checkpoint_bytes(model, ema) * (2 + future_snapshots))
        claim.acquire()

    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    step = len(history.losses)
    advice = _nan_advice(history.ckpt_dir)
    bar = tqdm(total=(epochs - history.resumed_from) * iters, desc=desc, unit="batch")
    for epoch in range(history.resumed_from + 1, epochs + 1):
        model.train()
        pending = []
        for idx in iterate_batches(len(images), batch_size, data_gen, limit=n):
            idx = idx.to(device)
            with autocast(precision, device):
                loss = objective(model, images[idx], labels[idx], noise_gen)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            pending.append(loss.detach())
            bar.update(1)
            claim.beat()
            if len(pending) == check_every:
                step = _record(history.losses, pending, step, epoch, advice)
                bar.set_postfix(epoch=epoch, loss=f"{history.losses[-1]:.4f}")
        step = _record(history.losses, pending, step, epoch, advice)
        if scheduler is not None:
            scheduler.step()
        _check_weights(model, optimizer, ema, epoch, step, advice)
        if history.ckpt_dir is not None:
            claim.before_save(epoch)   # still our run, and last.pt still the one we wrote?
            state = checkpoint_state(model, optimizer, scheduler, epoch=epoch, losses=history.losses,
                                     generators=generators, ema=None, run=run, writer=claim.session)
            if epoch in keep_epochs:
                # Snapshot first: a kill before last.pt then just repeats this epoch, identically.
                weights = settle_ema() if ema is not None else model
                state["ema"] = ema.state_dict() if ema is not None else None
                save_weights(history.snapshot(epoch), weights, epoch=epoch, run=run, resume=state)
            state["ema"] = ema.state_dict() if ema is not None else None
            save_checkpoint_state(state, last)
            claim.saved()
    bar.close()
    return _finish(model, settle_ema() if ema is not None else None, history)


def _check_run(state: dict, run: dict, path: Path, on_mismatch: str) -> None:
    """Never continue silently with other settings: say what differs and what to do."""
    diffs = run_differences(state.get("run"), run)
    if state.get("run") is None:
        print(f"Note: {_short(path)} was written before checkpoints recorded their settings; "
              "resuming it without checking them.")
    elif diffs and on_mismatch == "keep":
        print(f"Resuming {_short(path)} with its saved state although settings differ "
              f"({'; '.join(diffs)}).")
    elif diffs:
        raise CheckpointMismatch(
            f"{path} was trained with other settings: {'; '.join(diffs)}. To keep going with the "
            "saved run, set these back to the saved values (or pass on_mismatch=\"keep\" to "
            "train_flow / train_denoiser / fit: it resumes the saved state). To train with the new settings, start a fresh "
            f"folder: delete or rename {path.parent}, or give the run another name.")
    saved = state.get("versions") or {}
    if saved and saved != versions():
        print(f"Note: {_short(path)} was written with {saved}, this is {versions()}; resuming "
              "anyway, but the numbers may differ slightly from an uninterrupted run.")


def _checkpoint_bytes(model, ema) -> int:
    """About one last.pt: weights, Adam's two moments, and the average."""
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return size * (4 if ema is not None else 3)


def _nan_advice(ckpt_dir: Path | None) -> str:
    if ckpt_dir is None:
        return "Lower the learning rate, or check that the inputs are finite and in [0, 1]."
    return (f"Nothing of this epoch was saved: the newest checkpoint in {ckpt_dir} is still the "
            "last good epoch. Rerunning would repeat the same steps and fail again: lower the "
            "learning rate (or check that the inputs are finite and in [0, 1]) and train into a "
            f"fresh folder (delete or rename {ckpt_dir}).")


def _check_weights(model, optimizer, ema, epoch: int, step: int, advice: str) -> None:
    """The loss of the last step is computed before its update: a diverging update shows only here."""
    bad = nonfinite(model.state_dict())
    bad += [f"optimizer state {k}" for k in nonfinite({str(i): s for i, s in enumerate(optimizer.state.values())})]
    if ema is not None:
        bad += [f"average {k}" for k in nonfinite(ema.state_dict())]
    if bad:
        raise FloatingPointError(
            f"the weights became NaN or inf in epoch {epoch} (by step {step}; first: {bad[0]}), "
            f"though the losses were finite: the updates diverged. {advice}")


def _short(path: Path) -> str:
    """profile/run/file: enough to find it, without the machine's absolute path."""
    return "/".join(path.parts[-3:])


def _finish(model, averaged, history: History) -> History:
    """With EMA, leave the averaged weights in ``model``: they are what gets evaluated."""
    if averaged is not None:
        model.load_state_dict(averaged.state_dict())
    return history


@torch.no_grad()
def recompute_batchnorm(model, objective, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                        num_batches: int = 16, seed: int = 0) -> None:
    """Set every batch norm's running statistics to the average of its batch statistics over
    ``num_batches`` training batches, fed to ``model`` by the objective.

    An average of weights (EMA) needs statistics of its own: averaging the live model's running
    statistics along with the weights gives ones that fit neither (measured on the cpu profile's
    class-conditioned model: 10% class accuracy instead of 99%). Own generators, so training's
    random streams (and resume == uninterrupted) are untouched.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = images.device
    data_gen = torch.Generator().manual_seed(seed + 2)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 3)
    was_training, momenta = model.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # None: an equal-weight average over the batches, not a decaying one
    model.train()
    for idx in iterate_batches(len(images), batch_size, data_gen, limit=num_batches * batch_size):
        idx = idx.to(device)
        objective(model, images[idx], labels[idx], noise_gen)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def _record(losses: list, pending: list, step: int, epoch: int, advice: str = "") -> int:
    """Move pending losses to the history (one device sync per call); stop on NaN or inf."""
    if not pending:
        return step
    values = torch.stack(pending).float().cpu().tolist()
    pending.clear()
    for v in values:
        step += 1
        if not math.isfinite(v):
            raise FloatingPointError(f"the loss became {v} at step {step} (epoch {epoch}); training "
                                     f"stopped. {advice or _nan_advice(None)}")
        losses.append(v)
    return step
