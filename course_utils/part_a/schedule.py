"""Part A: DeepFloyd IF's noise schedule (ᾱ_t) and the strided timesteps the sampling loops walk.

The scheduler is the `diffusers` one, built from IF stage I's configuration so that the offline
backend and the real model share ᾱ_t and the learned-range variance exactly.
"""
from __future__ import annotations

from diffusers import DDPMScheduler

# DeepFloyd/IF-I-XL-v1.0 scheduler/scheduler_config.json, as written by diffusers'
# scripts/convert_if.py (convert_stage_1_pipeline: learned_range, squaredcos_cap_v2, epsilon,
# thresholding, dynamic_thresholding_ratio 0.95, sample_max_value 1.5; the rest are DDPMScheduler
# defaults) and mirrored by tests/pipelines/deepfloyd_if/__init__.py. Not checked against the hub
# file itself (gated; unreachable from here).
IF_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_schedule="squaredcos_cap_v2",
    beta_start=0.0001,   # unused by squaredcos_cap_v2
    beta_end=0.02,       # unused by squaredcos_cap_v2
    variance_type="learned_range",
    prediction_type="epsilon",
    thresholding=True,
    dynamic_thresholding_ratio=0.95,
    sample_max_value=1.5,
    clip_sample=True,
    clip_sample_range=1.0,
)


def if_scheduler(**overrides) -> DDPMScheduler:
    """A fresh DDPMScheduler with IF stage I's configuration (``variance_type="fixed_small"`` for
    a model that predicts no variance, such as the MNIST backend's)."""
    return DDPMScheduler(**{**IF_SCHEDULER_CONFIG, **overrides})


def strided_timesteps(start: int = 990, stride: int = 30) -> list[int]:
    """[start, start - stride, ..., 0]: the timesteps of §1.4 (990, 960, ..., 0 by default).

    ``start`` must be a multiple of ``stride`` so that the walk ends exactly at t = 0.
    """
    if stride < 1 or start % stride:
        raise ValueError(f"start ({start}) must be a positive multiple of stride ({stride})")
    return list(range(start, -1, -stride))


def use_timesteps(scheduler: DDPMScheduler, timesteps: list[int]) -> DDPMScheduler:
    """Make ``scheduler.previous_timestep(t)`` return the next entry of ``timesteps``.

    ``scheduler._get_variance(t, ...)`` computes the variance of the jump t → t'; without this
    it would assume t' = t - 1 and give the variance of a single 1000-step-schedule step.
    """
    if list(scheduler.timesteps.tolist()) != list(timesteps):
        scheduler.set_timesteps(timesteps=list(timesteps))
    return scheduler
