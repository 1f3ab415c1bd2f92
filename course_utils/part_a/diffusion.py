"""Part A §1.1–1.6: the forward process, denoising in one step or many, sampling and CFG.

Everything takes a ``NoiseModel`` (see ``noise_models``); the loops go through an ``eps_fn(x, t)
-> (eps, variance)``, so guidance (CFG here, anagrams and hybrids in ``edits``) is just another
``eps_fn``. Images are (B, C, H, W) in [-1, 1] (C = 3 for IF, 1 for the MNIST backend); random draws come from a CPU ``torch.Generator``
and are moved to the images' device, so a seed gives the same noise on every machine.
"""
from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms.functional import gaussian_blur
from tqdm.auto import tqdm

from .noise_models import NoiseModel
from .schedule import if_scheduler, strided_timesteps, use_timesteps

EpsFn = Callable[[torch.Tensor, int], tuple]  # (x_t, t) -> (eps, variance or None)
AfterStep = Callable[[torch.Tensor, int], torch.Tensor]  # (x_t', t') -> x_t'

_DEFAULT_ALPHAS = None


def default_alphas_cumprod() -> torch.Tensor:
    """ᾱ_t of IF's schedule (``scheduler.alphas_cumprod``), for 1000 training steps.

    A copy each time: an in-place edit by a caller (a student's exercise, say) must not change
    the schedule for the rest of the session.
    """
    global _DEFAULT_ALPHAS
    if _DEFAULT_ALPHAS is None:
        _DEFAULT_ALPHAS = if_scheduler().alphas_cumprod
    return _DEFAULT_ALPHAS.clone()


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)


def check_images(im: torch.Tensor, name: str = "image") -> torch.Tensor:
    if not isinstance(im, torch.Tensor) or im.ndim != 4 or im.shape[1] not in (1, 3):
        shape = tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__
        raise ValueError(f"{name} must be a (B, C, H, W) tensor in [-1, 1] with C = 3 (or 1 for MNIST), "
                         f"got {shape}; load one with backend.image(...) or course_utils.part_a.images.load_image")
    return im


def expand_cond(cond: torch.Tensor, n: int) -> torch.Tensor:
    """A condition of batch 1 repeated n times: (1, 77, 4096) prompt embeddings or (1, 10) one-hots."""
    return cond.expand(n, *cond.shape[1:])


# ---- §1.1 forward process

def forward(im: torch.Tensor, t: int, alphas_cumprod: torch.Tensor | None = None,
            noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, with ε ~ N(0, I) unless ``noise`` is given."""
    check_images(im)
    alphas = default_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
    if int(t) != t or not 0 <= int(t) < len(alphas):
        raise ValueError(f"t must be an integer timestep in 0..{len(alphas) - 1}, got {t} "
                         "(t = 0 is the clean image, larger t is noisier)")
    a = alphas[int(t)]
    eps = randn_like(im, generator) if noise is None else noise
    return a.sqrt() * im + (1 - a).sqrt() * eps


# ---- §1.2 classical denoising

def blur_denoise(im: torch.Tensor, kernel_size: int = 5, sigma: float = 2.0) -> torch.Tensor:
    """The classical baseline: a Gaussian low-pass filter removes noise and detail alike."""
    return gaussian_blur(check_images(im), kernel_size=[kernel_size, kernel_size], sigma=[sigma, sigma])


# ---- §1.3 one-step denoising

def estimate_x0(x_t: torch.Tensor, t: int, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t: the forward process solved for x_0."""
    a = alphas_cumprod[int(t)]
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def one_step_denoise(model: NoiseModel, x_t: torch.Tensor, t: int, cond: torch.Tensor) -> torch.Tensor:
    """x̂_0 from a single noise estimate of the model at timestep t."""
    eps, _ = model(check_images(x_t), t, cond)
    return estimate_x0(x_t, t, eps, model.alphas_cumprod)


# ---- §1.4 iterative denoising

def posterior_variance(alphas_cumprod: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
    """β̃_t = β_t (1 − ᾱ_t')/(1 − ᾱ_t) with β_t = 1 − ᾱ_t/ᾱ_t': the variance of x_t' given x_t
    and the true x_0 (Ho et al., eq. 7), for a jump t → t' of the strided schedule."""
    a_t, a_prev = alphas_cumprod[int(t)], alphas_cumprod[int(t_prev)]
    return (1 - a_t / a_prev) * (1 - a_prev) / (1 - a_t)


def add_variance(scheduler, t: int, predicted_variance: torch.Tensor | None, image: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """image + v_σ, v_σ ~ N(0, σ_t²), for the jump t → t' (t' = ``scheduler.previous_timestep(t)``).

    With a predicted variance (IF's ``variance_type="learned_range"``), ``scheduler._get_variance``
    gives log σ² = f log β_t + (1 − f) log β̃_t with f = (v + 1)/2: the model's interpolation between
    the largest (β_t) and smallest (β̃_t) sensible variances. A model that predicts none (the MNIST
    backend, the oracle) gets the fixed posterior variance σ² = β̃_t. Call ``use_timesteps`` first
    so that t' is the strided one.
    """
    if predicted_variance is None:
        t_prev = int(scheduler.previous_timestep(int(t)))
        std = posterior_variance(scheduler.alphas_cumprod, t, max(t_prev, 0)).sqrt()
        return image + std.to(image.device, image.dtype) * randn_like(image, generator)
    log_variance = scheduler._get_variance(int(t), predicted_variance)
    return image + torch.exp(0.5 * log_variance).to(image.device) * randn_like(image, generator)


def denoise_step(x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor,
                 alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Mean of x_t' given x_t and x̂_0 (DDPM posterior, eq. 7 of Ho et al.), for a jump t → t':

    x_t' = √ᾱ_t' β_t/(1 − ᾱ_t) · x̂_0 + √α_t (1 − ᾱ_t')/(1 − ᾱ_t) · x_t, α_t = ᾱ_t/ᾱ_t', β_t = 1 − α_t.
    """
    a_t, a_prev = alphas_cumprod[int(t)], alphas_cumprod[int(t_prev)]
    alpha = a_t / a_prev
    beta = 1 - alpha
    x0 = estimate_x0(x_t, t, eps, alphas_cumprod)
    return a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x_t


def denoise_loop(eps_fn: EpsFn, x: torch.Tensor, i_start: int, scheduler, timesteps: list[int],
                 generator: torch.Generator | None = None, after_step: AfterStep | None = None,
                 keep_every: int | None = None, progress: bool = True, step=None):
    """Walk ``timesteps[i_start:]`` from x (noisy at ``timesteps[i_start]``) down to t = 0.

    ``after_step(x_t', t')`` may rewrite each new state (inpainting). With ``keep_every`` also
    returns the states at every ``keep_every``-th step, as (t, x_t) pairs. ``step`` replaces
    ``denoise_step`` (same signature): a notebook passes its own, the student's.
    """
    step = denoise_step if step is None else step
    check_images(x, "im_noisy")
    if not 0 <= i_start < len(timesteps):
        raise ValueError(f"i_start must index timesteps (0..{len(timesteps) - 1}), got {i_start}")
    use_timesteps(scheduler, timesteps)
    alphas = scheduler.alphas_cumprod
    kept = []
    steps = range(i_start, len(timesteps) - 1)
    for k, i in enumerate(tqdm(steps, desc=f"denoise from t={timesteps[i_start]}", leave=False,
                               disable=not progress or not len(steps))):
        t, t_prev = timesteps[i], timesteps[i + 1]
        if keep_every and k % keep_every == 0:
            kept.append((t, x))
        eps, variance = eps_fn(x, t)
        x = step(x, t, t_prev, eps, alphas)
        if t_prev > 0:  # the last step returns the posterior mean, as in DDPM (no noise on x_0)
            x = add_variance(scheduler, t, variance, x, generator)
        if after_step is not None:
            x = after_step(x, t_prev)
    return (x, kept) if keep_every else x


def conditional_eps(model: NoiseModel, cond: torch.Tensor) -> EpsFn:
    return lambda x, t: model(x, t, cond)


def cfg_eps(model: NoiseModel, cond: torch.Tensor, uncond: torch.Tensor, scale: float = 7.0) -> EpsFn:
    """ε = ε_u + γ (ε_c − ε_u); one batched forward pass, variance from the conditional half."""
    def eps_fn(x, t):
        n = x.shape[0]
        conds = torch.cat([expand_cond(cond, n), expand_cond(uncond, n)])
        eps, variance = model(torch.cat([x, x]), t, conds)
        eps_c, eps_u = eps.chunk(2)
        return eps_u + scale * (eps_c - eps_u), None if variance is None else variance[:n]
    return eps_fn


@torch.inference_mode()
def iterative_denoise(model: NoiseModel, im_noisy: torch.Tensor, i_start: int, cond: torch.Tensor,
                      timesteps: list[int] | None = None, generator: torch.Generator | None = None,
                      **kwargs):
    """§1.4: denoise ``im_noisy`` (noisy at ``timesteps[i_start]``) with the conditional ε̂."""
    timesteps = timesteps or strided_timesteps()
    return denoise_loop(conditional_eps(model, cond), im_noisy, i_start, model.scheduler, timesteps,
                        generator, **kwargs)


@torch.inference_mode()
def iterative_denoise_cfg(model: NoiseModel, im_noisy: torch.Tensor, i_start: int, cond: torch.Tensor,
                          uncond: torch.Tensor, scale: float = 7.0, timesteps: list[int] | None = None,
                          generator: torch.Generator | None = None, guide=None, **kwargs):
    """§1.6: ``iterative_denoise`` with classifier-free guidance of strength γ = ``scale``.

    ``guide`` replaces ``cfg_eps`` (same signature): a notebook passes its own, the student's.
    """
    timesteps = timesteps or strided_timesteps()
    guide = cfg_eps if guide is None else guide
    return denoise_loop(guide(model, cond, uncond, scale), im_noisy, i_start, model.scheduler,
                        timesteps, generator, **kwargs)


def pure_noise(n: int, generator: torch.Generator | None = None, shape: tuple = (3, 64, 64),
               device: torch.device | str = "cpu") -> torch.Tensor:
    """x_T ~ N(0, I) of shape (n, *shape): where sampling starts (t = 990 is as good as pure noise)."""
    return torch.randn((n, *shape), generator=generator).to(device)


def sample(model: NoiseModel, cond: torch.Tensor, n: int = 1, uncond: torch.Tensor | None = None,
           scale: float | None = None, timesteps: list[int] | None = None,
           generator: torch.Generator | None = None, device: torch.device | str = "cpu", **kwargs):
    """§1.5/1.6: n images from pure noise; with ``uncond`` and ``scale``, guided by CFG.

    ``kwargs`` go to ``iterative_denoise(_cfg)`` and ``denoise_loop`` (e.g. ``guide=``, ``step=``).
    """
    x = pure_noise(n, generator, model.image_shape, device)
    if uncond is None:
        return iterative_denoise(model, x, 0, cond, timesteps, generator, **kwargs)
    return iterative_denoise_cfg(model, x, 0, cond, uncond, scale if scale is not None else 7.0,
                                 timesteps, generator, **kwargs)
