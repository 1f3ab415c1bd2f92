"""Part A: DeepFloyd IF's noise schedule (ᾱ_t) and the strided timesteps the sampling loops walk.

The scheduler is the `diffusers` one, built from IF stage I's configuration so that the offline
backend and the real model share ᾱ_t and the learned-range variance exactly.
"""
from __future__ import annotations

import operator

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


def _as_int(value, what: str, fix: str) -> int:
    """``value`` as an int (Python, NumPy or 0-d integer tensor); anything else is a clear error."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}; {fix}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r} ({type(value).__name__}); {fix}") from None


def check_timesteps(timesteps, num_train_timesteps: int = 1000) -> list[int]:
    """``timesteps`` as a list of ints: decreasing integer timesteps in 0..num_train_timesteps - 1."""
    fix = "use strided_timesteps(start, stride) (e.g. [990, 960, ..., 0]) or list(range(990, -1, -30))"
    try:
        items = list(timesteps)
    except TypeError:
        raise ValueError(f"timesteps must be a list of integer timesteps, got {timesteps!r}; {fix}") from None
    out = [_as_int(t, f"every timestep (timesteps[{i}])", fix) for i, t in enumerate(items)]
    if not out:
        raise ValueError(f"timesteps is empty; {fix}")
    bad = [t for t in out if not 0 <= t < num_train_timesteps]
    if bad:
        raise ValueError(f"timesteps must lie in 0..{num_train_timesteps - 1}, got {bad[:3]}; {fix}")
    if any(a <= b for a, b in zip(out, out[1:])):
        raise ValueError(f"timesteps must decrease (noisiest first, ending at 0), got {out[:5]}"
                         f"{' ...' if len(out) > 5 else ''}; {fix}")
    return out


def check_i_start(i_start, timesteps: list[int]) -> int:
    """``i_start`` as an int index into ``timesteps`` (0 is the noisiest, the last is t = 0)."""
    n = len(timesteps)
    where = (f"0..{n - 1} of the {n} strided timesteps: 0 is the noisiest (t = {timesteps[0]}), "
             f"{n - 1} is t = {timesteps[-1]}")
    i = _as_int(i_start, "i_start (an index into timesteps, not a timestep)",
                f"pick an index in {where}, e.g. int(i_start)")
    if not 0 <= i < n:
        hint = (f" ({i} is a timestep: its index is timesteps.index({i}) = {list(timesteps).index(i)})"
                if i in timesteps else "")
        raise ValueError(f"i_start must index the timesteps ({where}), got {i}{hint}; pick one in "
                         "range, or a smaller stride for more steps")
    return i


def check_timestep(t, num_train_timesteps: int = 1000) -> int:
    """One timestep ``t`` as an int in 0..num_train_timesteps - 1 (500.0 passes, 2.5 does not)."""
    try:
        ok = not isinstance(t, bool) and int(t) == t
    except (TypeError, ValueError, RuntimeError):
        ok = False
    if not ok or not 0 <= int(t) < num_train_timesteps:
        raise ValueError(f"t must be an integer timestep in 0..{num_train_timesteps - 1}, got {t!r} "
                         "(t = 0 is the clean image, larger t is noisier; the loops pass the entries "
                         "of timesteps, e.g. strided_timesteps())")
    return int(t)
