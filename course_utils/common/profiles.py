"""Run profiles: one switch that sizes every notebook.

``smoke`` is for CI (tiny models, a few batches), ``cpu`` gives recognisable digits on a
laptop in minutes, ``full`` is the handout's hyperparameters. Notebooks take the profile as a
papermill parameter; nbval cannot pass parameters, so ``COURSE_PROFILE`` overrides it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from .env import check_parameters, get_device, machine_description

PROFILES = ("smoke", "cpu", "full")


@dataclass(frozen=True)
class Profile:
    name: str
    # ---- Part B §1.2: the one-step denoiser (handout defaults)
    denoiser_D: int = 128
    denoiser_batch: int = 256
    denoiser_lr: float = 1e-4
    denoiser_epochs: int = 5
    # ---- Part B §2: flow matching (handout defaults)
    flow_D: int = 64
    flow_batch: int = 64
    flow_lr: float = 1e-2
    flow_epochs: int = 10
    num_steps: int = 50                  # Euler steps when sampling
    # ---- Part B's optional extension: DDPM on the same UNet (this project's first version)
    ddpm_batch: int = 128
    ddpm_lr: float = 1e-3
    ddpm_epochs: int = 20
    images_per_epoch: int | None = None  # None: the whole training split
    keep_epochs: tuple = (1, 5, 10)      # epochs whose weights are kept for figures
    precision: str = "auto"              # fp32, bf16, fp16 or auto (see train.resolve_precision)
    quality_samples: int = 1000          # samples per quality measurement (FD needs ≥ 500 to mean much)
    # ---- Part A (DeepFloyd IF and its offline stand-ins)
    # (fields for Part A go here)
    if_backend: str | None = None        # forces a backend ("mnist", "tiny"); None: the notebook's BACKEND
    if_stride: int = 30                  # strided timesteps 990, 990 - stride, ..., 0
    if_num_samples: int = 5              # §1.5/1.6 samples
    if_inference_steps: tuple = (20, 100)  # section 0: stage I's num_inference_steps
    if_tiny_widths: tuple = (16, 16, 32)   # the offline model's block widths
    if_rate_seeds: int = 100             # MNIST illusions: seeds per pair for the success rates
    if_lesson_per_class: int = 10        # MNIST lessons: held-out inputs per digit class (10 → 100)


# Part B sizes per profile. cpu: D = 16 and 9,000 images per epoch, so each training takes a
# few minutes on two cores; measured: 10 such epochs (1,410 steps of 64) of the class-conditioned
# UNet give clearly readable digits with γ = 5, where D = 32 for a third of the steps did not.
_PART_B = {
    "smoke": dict(denoiser_D=4, denoiser_batch=16, flow_D=4, flow_batch=16, num_steps=4,
                  ddpm_batch=16, ddpm_epochs=10,
                  images_per_epoch=32, precision="fp32", quality_samples=16),
    "cpu": dict(denoiser_D=16, denoiser_batch=128, denoiser_lr=1e-3, flow_D=16, flow_batch=64,
                flow_lr=5e-3, num_steps=16, images_per_epoch=9000, quality_samples=500,
                ddpm_batch=64, ddpm_lr=5e-3, ddpm_epochs=10),
    "full": dict(),
}

# Part A settings per profile.
_PART_A = {
    "smoke": dict(if_stride=90, if_num_samples=2, if_inference_steps=(2, 4), if_rate_seeds=2,
                  if_lesson_per_class=1),
    "cpu": dict(if_inference_steps=(10, 40)),
    "full": dict(),
}

_PROFILES = {name: Profile(name, **_PART_B[name], **_PART_A[name]) for name in PROFILES}


def default_profile_name() -> str:
    return "full" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named by ``COURSE_PROFILE`` if set, else ``name``, else the device default.

    Every notebook calls this first, so it is also where papermill parameters that the notebook
    does not declare are caught (``env.check_parameters``).
    """
    check_parameters()
    chosen = os.environ.get("COURSE_PROFILE") or name or "auto"
    if chosen == "auto":
        chosen = default_profile_name()
    if chosen not in _PROFILES:
        raise ValueError(f"unknown profile {chosen!r}; choose one of {PROFILES} or 'auto'")
    return replace(_PROFILES[chosen], **overrides)


def describe_run(profile: Profile, device: torch.device | None = None) -> str:
    """One line for the top of a notebook: which profile and machine made its outputs."""
    device = device or get_device()
    return (f"profile '{profile.name}' on {machine_description(device)} "
            f"(device {device.type}), torch {torch.__version__}")
