"""The handout's trainings, sized by a run profile, checkpointed under checkpoint_dir(profile).

Each ``train_*`` returns the trained model and its History. Calling it again loads the
finished checkpoint instead of training (or resumes an interrupted run), which is how later
notebooks reuse the models of earlier ones.
"""
from __future__ import annotations

import copy

import torch

from ..common.checkpoint import load_weights
from ..common.env import checkpoint_dir
from ..common.profiles import Profile
from .train import (History, class_flow_loss, class_flow_objective, denoiser_objective, fit, time_flow_loss,
                    time_flow_objective)
from .unet import ClassConditionalUNet, TimeConditionalUNet, TimesPerImage, UnconditionalUNet


def _seed_suffix(seed: int) -> str:
    """Another seed is another model: it gets its own folder instead of a settings mismatch."""
    return f"_seed{seed}" if seed else ""


def train_denoiser(images: torch.Tensor, profile: Profile, device, sigma: float | None = 0.5,
                   seed: int = 0, name: str | None = None, on_mismatch: str = "error", add_noise=None):
    """§1.2.1 (σ = 0.5) or §1.2.3 (``sigma=None``): Adam, no scheduler, fresh noise per batch.

    ``add_noise`` replaces ``noising.add_noise`` (same signature): a notebook passes its own, the
    student's. The run keeps its name, so a finished run is loaded whichever code trained it.
    """
    name = name or ("denoiser_pure_noise" if sigma is None else f"denoiser_sigma{sigma:g}") + _seed_suffix(seed)
    torch.manual_seed(seed)
    model = UnconditionalUNet(num_hiddens=profile.denoiser_D).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.denoiser_lr)
    history = fit(model, denoiser_objective(sigma, add_noise), images, epochs=profile.denoiser_epochs,
                  batch_size=profile.denoiser_batch, optimizer=optimizer,
                  ckpt_dir=checkpoint_dir(profile.name) / name, keep_epochs=profile.keep_epochs,
                  seed=seed, images_per_epoch=profile.images_per_epoch,
                  precision=profile.precision, desc=name, on_mismatch=on_mismatch)
    return model.eval(), history


def train_flow(images: torch.Tensor, labels: torch.Tensor | None, profile: Profile, device,
               class_conditioned: bool = False, lr_schedule: bool = True, lr: float | None = None,
               ema_decay: float | None = None, seed: int = 0, name: str | None = None,
               on_mismatch: str = "error", net=None, loss=None):
    """§2.2 (time only) or §2.5 (time and class): Adam, ExponentialLR(0.1^(1/epochs)) per epoch.

    ``lr_schedule=False`` keeps the learning rate constant (§2.6's variant); ``ema_decay``
    evaluates an exponential moving average of the weights instead of the last weights.
    ``net`` and ``loss`` replace the UNet class and the loss (``train.time_flow_loss`` or
    ``train.class_flow_loss``, same signatures): a notebook passes its own, the student's. The run
    keeps its name, so a finished run is loaded whichever code trained it; delete its folder to
    retrain with yours.
    """
    kind = "class" if class_conditioned else "time"
    name = name or (f"flow_{kind}" + ("" if lr_schedule else "_no_scheduler")
                    + (f"_ema{ema_decay:g}" if ema_decay else "") + _seed_suffix(seed))
    objective = (class_flow_objective(0.1, loss or class_flow_loss) if class_conditioned
                 else time_flow_objective(loss or time_flow_loss))
    return _train_conditioned(net, class_conditioned, objective, images, labels, profile, device, name,
                              lr=lr or profile.flow_lr, epochs=profile.flow_epochs, batch=profile.flow_batch,
                              lr_schedule=lr_schedule, ema_decay=ema_decay, seed=seed, on_mismatch=on_mismatch)


def train_ddpm(images: torch.Tensor, labels: torch.Tensor | None, profile: Profile, device,
               class_conditioned: bool = False, seed: int = 0, name: str | None = None,
               on_mismatch: str = "error", net=None, loss=None):
    """The optional extension: DDPM (ε-prediction, T = 300, linear β) on §2's UNets and trainer.

    Adam with ExponentialLR(0.1^(1/epochs)) as ``train_flow``, with the profile's ``ddpm_*``
    sizes (the full profile: this project's first version, batch 128, lr 1e-3, 20 epochs). The
    UNet sees digits as 2x − 1 and t / T. ``loss`` replaces ``ddpm.time_ddpm_loss`` or
    ``ddpm.class_ddpm_loss`` (same signatures): a notebook passes its own, the student's.
    """
    kind = "class" if class_conditioned else "time"
    name = name or f"ddpm_{kind}" + _seed_suffix(seed)
    objective = ddpm_objective(class_conditioned, device, loss)
    return _train_conditioned(net, class_conditioned, objective, images, labels, profile, device, name,
                              lr=profile.ddpm_lr, epochs=profile.ddpm_epochs, batch=profile.ddpm_batch,
                              seed=seed, on_mismatch=on_mismatch)


def ddpm_objective(class_conditioned: bool, device, loss=None):
    """``train_ddpm``'s objective for ``fit``, ``objective(model, x, y, generator)``: digits x in
    [0, 1] scaled to 2x − 1, the linear T = 300 schedule, ``loss`` (default ``ddpm.time_ddpm_loss``
    or ``ddpm.class_ddpm_loss``, the class dropped with p = 0.1)."""
    from .ddpm import class_ddpm_loss, linear_schedule, time_ddpm_loss, to_model

    alphas_cumprod = linear_schedule().alphas_cumprod.to(device)
    if class_conditioned:
        ddpm_loss = loss or class_ddpm_loss
        return lambda model, x, y, g: ddpm_loss(TimesPerImage(model), to_model(x), y, alphas_cumprod, g, 0.1)
    ddpm_loss = loss or time_ddpm_loss
    return lambda model, x, y, g: ddpm_loss(TimesPerImage(model), to_model(x), alphas_cumprod, g)


def _train_conditioned(net, class_conditioned: bool, objective, images, labels, profile: Profile, device,
                       name: str, *, lr: float, epochs: int, batch: int, lr_schedule: bool = True,
                       ema_decay: float | None = None, seed: int = 0, on_mismatch: str = "error"):
    """§2's UNet (``net`` or the course's) of width ``profile.flow_D`` trained with Adam on ``objective``."""
    torch.manual_seed(seed)
    net = net or (ClassConditionalUNet if class_conditioned else TimeConditionalUNet)
    model = net(num_hiddens=profile.flow_D).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = (torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.1 ** (1 / epochs))
                 if lr_schedule else None)
    history = fit(model, objective, images, labels, epochs=epochs,
                  batch_size=batch, optimizer=optimizer, scheduler=scheduler,
                  ckpt_dir=checkpoint_dir(profile.name) / name, keep_epochs=profile.keep_epochs,
                  seed=seed, images_per_epoch=profile.images_per_epoch,
                  precision=profile.precision, ema_decay=ema_decay, desc=name, on_mismatch=on_mismatch)
    return model.eval(), history


def after_epoch(model: torch.nn.Module, history: History, epoch: int) -> torch.nn.Module:
    """A copy of ``model`` with the weights saved after ``epoch`` (for 'results after epoch k')."""
    path = history.snapshot(epoch)
    if not path.exists():
        kept = sorted(int(p.stem.split("_")[1]) for p in path.parent.glob("epoch_*.pt"))
        raise FileNotFoundError(
            f"no weights were kept after epoch {epoch} in {path.parent}; kept: epochs {kept}. "
            "Only the profile's keep_epochs are saved: ask for one of those, or train into a fresh "
            f"folder with {epoch} in keep_epochs.")
    snapshot = copy.deepcopy(model)
    load_weights(path, snapshot, map_location=next(model.parameters()).device)
    return snapshot.eval()


def live_weights(model: torch.nn.Module, history: History, epoch: int | None = None) -> torch.nn.Module:
    """For a run trained with ``ema_decay``: a copy of ``model`` with the weights the optimizer was
    updating (not their average) after ``epoch`` (default: the last).

    The average never feeds back into training, so these are exactly the weights of the same run
    without EMA: one training gives both models (§2.6's constant-lr run and its EMA).
    """
    from pathlib import Path

    from ..common.checkpoint import _read

    path = history.snapshot(epoch) if epoch is not None else Path(history.ckpt_dir) / "last.pt"
    state = _read(path, map_location=next(model.parameters()).device)
    state = state.get("resume", state)
    if "optimizer" not in state:
        raise ValueError(f"{path} holds no training state: was this run trained with ema_decay?")
    live = copy.deepcopy(model)
    live.load_state_dict(state["model"])
    return live.eval()
