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

from ..common.pixels import check_noisy_range, check_signed_range
from ..common.progress import tqdm
from .noise_models import NoiseModel
from .schedule import check_i_start, check_timesteps, if_scheduler, strided_timesteps, use_timesteps

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


def check_images(im: torch.Tensor, name: str = "image", clean: bool = False) -> torch.Tensor:
    """A (B, C, H, W) image batch in [-1, 1]; ``clean``: a clean image (range checked, see
    ``common.pixels``), else a noisy x_t or pure noise (only [0, 255] pixels are caught)."""
    if not isinstance(im, torch.Tensor) or im.ndim != 4 or im.shape[1] not in (1, 3):
        shape = tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__
        raise ValueError(f"{name} must be a (B, C, H, W) tensor in [-1, 1] with C = 3 (or 1 for MNIST), "
                         f"got {shape}; load one with backend.image(...) or course_utils.part_a.images.load_image")
    return check_signed_range(im, name) if clean else check_noisy_range(im, name)


def expand_cond(cond: torch.Tensor, n: int) -> torch.Tensor:
    """A condition of batch 1 repeated n times: (1, 77, 4096) prompt embeddings or (1, 10) one-hots."""
    return cond.expand(n, *cond.shape[1:])


# ---- §1.1 forward process

def forward(im: torch.Tensor, t: int, alphas_cumprod: torch.Tensor | None = None,
            noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, with ε ~ N(0, I) unless ``noise`` is given."""
    check_images(im, clean=True)
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


def add_jump_variance(alphas_cumprod, t: int, t_prev: int, variance: torch.Tensor | None,
                      image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """image + σ z, z ~ N(0, I): the noise v_σ of one step t → t' of the strided loop (§1.4).

    ``alphas_cumprod`` is ᾱ (``model.alphas_cumprod``; the model itself is accepted too),
    ``t > t_prev`` the two timesteps of the jump, ``variance`` what the model returned with ε̂ (or
    None), ``image`` the posterior mean. With β = 1 − ᾱ_t/ᾱ_t' and β̃ = β (1 − ᾱ_t')/(1 − ᾱ_t):

    - ``variance`` None (a model that predicts none): σ² = β̃, the fixed posterior variance;
    - ``variance`` v, one value per pixel in about [-1, 1] (IF's "learned range"):
      log σ² = f log β + (1 − f) log β̃ with f = (v + 1)/2, between the smallest (β̃) and the
      largest (β) sensible variance, as diffusers' DDPMScheduler computes it.

    z is drawn in float32 from ``generator`` (torch's global RNG if None) and moved to the image's
    device, so a seed gives the same noise on every machine. It keeps no state: the jump is
    whatever (t, t_prev) you pass. Do not call it for the step that lands on t' = 0.
    """
    alphas = getattr(alphas_cumprod, "alphas_cumprod", alphas_cumprod)
    if variance is None:
        std = posterior_variance(alphas, t, t_prev).sqrt()
        return image + std.to(image.device, image.dtype) * randn_like(image, generator)
    # diffusers' DDPMScheduler._get_variance, learned_range, in its order of operations
    a_t, a_prev = alphas[int(t)], alphas[int(t_prev)]
    beta = 1 - a_t / a_prev
    beta_tilde = torch.clamp((1 - a_prev) / (1 - a_t) * beta, min=1e-20)
    frac = (variance + 1) / 2
    log_variance = frac * torch.log(beta) + (1 - frac) * torch.log(beta_tilde)
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
                 keep_every: int | None = None, progress: bool = True):
    """Walk ``timesteps[i_start:]`` from x (noisy at ``timesteps[i_start]``) down to t = 0.

    ``after_step(x_t', t')`` may rewrite each new state (inpainting). With ``keep_every`` also
    returns the states at every ``keep_every``-th step, as (t, x_t) pairs.
    """
    check_images(x, "im_noisy")
    timesteps = check_timesteps(timesteps, len(scheduler.alphas_cumprod))
    i_start = check_i_start(i_start, timesteps)
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
        x = denoise_step(x, t, t_prev, eps, alphas)
        if t_prev > 0:  # the last step returns the posterior mean, as in DDPM (no noise on x_0)
            x = add_jump_variance(alphas, t, t_prev, variance, x, generator)
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
                          generator: torch.Generator | None = None, **kwargs):
    """§1.6: ``iterative_denoise`` with classifier-free guidance of strength γ = ``scale``."""
    timesteps = timesteps or strided_timesteps()
    return denoise_loop(cfg_eps(model, cond, uncond, scale), im_noisy, i_start, model.scheduler,
                        timesteps, generator, **kwargs)


def pure_noise(n: int, generator: torch.Generator | None = None, shape: tuple = (3, 64, 64),
               device: torch.device | str = "cpu") -> torch.Tensor:
    """x_T ~ N(0, I) of shape (n, *shape): where sampling starts (t = 990 is as good as pure noise)."""
    return torch.randn((n, *shape), generator=generator).to(device)


def sample(model: NoiseModel, cond: torch.Tensor, n: int = 1, uncond: torch.Tensor | None = None,
           scale: float | None = None, timesteps: list[int] | None = None,
           generator: torch.Generator | None = None, device: torch.device | str = "cpu", loop=None,
           progress: bool = True, **kwargs):
    """§1.5/1.6: n images from pure noise; with ``uncond`` and ``scale``, guided by CFG.

    ``loop`` replaces the course's loop: a notebook passes its own (the student's)
    ``iterative_denoise(model, im_noisy, i_start, cond, timesteps, generator)`` or, with ``uncond``,
    ``iterative_denoise_cfg(model, im_noisy, i_start, cond, uncond, scale, timesteps, generator)``;
    it gets the model wrapped in ``watch`` (a progress bar). ``kwargs`` go to the course's
    ``iterative_denoise(_cfg)`` and ``denoise_loop`` (e.g. ``keep_every=``).
    """
    x = pure_noise(n, generator, model.image_shape, device)
    scale = scale if scale is not None else 7.0
    if loop is not None:
        if kwargs:
            raise TypeError(f"sample(loop=...) takes no loop options, got {sorted(kwargs)}")
        timesteps = timesteps or strided_timesteps()
        watched = watch(model, total=len(timesteps) - 1, desc="sampling", progress=progress)
        if uncond is None:
            return loop(watched, x, 0, cond, timesteps, generator)
        return loop(watched, x, 0, cond, uncond, scale, timesteps, generator)
    if uncond is None:
        return iterative_denoise(model, x, 0, cond, timesteps, generator, progress=progress, **kwargs)
    return iterative_denoise_cfg(model, x, 0, cond, uncond, scale, timesteps, generator, progress=progress,
                                 **kwargs)


class Watched(NoiseModel):
    """``model`` itself to whoever calls it, plus a record: ``states`` holds (t, x_t) for each
    new timestep it is called at (the loop's states, whatever the loop), and a progress bar ticks
    once per new timestep. Made by ``watch``."""

    def __init__(self, model: NoiseModel, total: int | None = None, desc: str = "denoising",
                 progress: bool = True):
        self.model, self.states = model, []
        self.scheduler = getattr(model, "scheduler", None)
        self.image_shape = getattr(model, "image_shape", NoiseModel.image_shape)
        self._bar = tqdm(total=total, desc=desc, leave=False, disable=not progress)

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.model.alphas_cumprod

    def __call__(self, x_t, t, cond):
        t_int = int(torch.as_tensor(t).flatten()[0]) if isinstance(t, torch.Tensor) else int(t)
        if not self.states or self.states[-1][0] != t_int:
            self.states.append((t_int, x_t.detach().clone()))
            self._bar.update(1)
            if self._bar.total is not None and self._bar.n >= self._bar.total:
                self._bar.close()
        return self.model(x_t, t, cond)

    def close(self):
        self._bar.close()


def watch(model: NoiseModel, total: int | None = None, desc: str = "denoising",
          progress: bool = True) -> Watched:
    """``model`` wrapped to record what a loop feeds it, for any loop (yours included).

    ``watched = watch(model, total=steps)``; ``x = your_loop(watched, ...)``; then
    ``watched.states`` lists (t, x_t) for each timestep the loop visited, in order (with CFG in one
    batched pass, x_t is the whole batch fed: slice the first half). ``total`` sizes the bar.
    """
    return Watched(model, total, desc, progress)
