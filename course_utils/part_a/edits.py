"""Part A §1.7–1.9: editing with a diffusion model — SDEdit, inpainting, visual anagrams, hybrids.

Each edit is either a different starting point for the denoising loop (SDEdit), a projection after
every step (inpainting) or a different noise estimate (anagrams, hybrids); the loop itself is
``diffusion.denoise_loop``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torchvision.transforms.functional import gaussian_blur

from ..common.progress import tqdm
from .diffusion import EpsFn, cfg_eps, check_images, denoise_loop, expand_cond, forward, pure_noise
from .noise_models import NoiseModel
from .schedule import check_i_start, check_timesteps, strided_timesteps

I_STARTS = (1, 3, 5, 7, 10, 20)  # §1.7: how far into the strided schedule the edit starts


# ---- §1.7 SDEdit (and §1.7.3, the same with a prompt of your own)

@torch.inference_mode()
def sdedit(model: NoiseModel, im: torch.Tensor, i_start: int, cond: torch.Tensor, uncond: torch.Tensor,
           scale: float = 7.0, timesteps: list[int] | None = None,
           generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """Noise ``im`` to t = timesteps[i_start], then denoise it with CFG back to t = 0.

    Small i_start: much noise, a new image that keeps only the layout. Large i_start: little
    noise, nearly the input. An i_start past the schedule is an error, as in ``iterative_denoise``.
    """
    timesteps = timesteps or strided_timesteps()
    check_images(im, clean=True)
    i_start = _check_i_start(i_start, timesteps)
    x = forward(im, timesteps[i_start], model.alphas_cumprod, generator=generator)
    return denoise_loop(cfg_eps(model, cond, uncond, scale), x, i_start, model.scheduler, timesteps,
                        generator, progress=progress)


def sdedit_series(model: NoiseModel, im: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor,
                  i_starts=I_STARTS, scale: float = 7.0, timesteps: list[int] | None = None,
                  generator: torch.Generator | None = None, edit=None) -> list[torch.Tensor]:
    """``sdedit`` at every i_start of the list (§1.7's row of edits), one progress bar.

    ``edit`` replaces the course's ``sdedit``: a notebook passes its own (the student's), called as
    ``edit(model, im, i_start, cond, uncond, scale, timesteps, generator)``.
    """
    timesteps = timesteps or strided_timesteps()
    n = len(timesteps)
    past = [i for i in i_starts if i >= n]
    if past:   # a short (smoke) schedule with the course's i_starts: show them, but say so
        print(f"i_start {past} is past the end of the {n} strided timesteps: shown unedited.")

    def one(i):
        if i >= n:
            return im.clone()
        if edit is None:
            return sdedit(model, im, i, cond, uncond, scale, timesteps, generator, progress=False)
        return edit(model, im, i, cond, uncond, scale, timesteps, generator)
    return [one(i) for i in tqdm(i_starts, desc="SDEdit", leave=False)]


def _check_i_start(i_start: int, timesteps: list[int]) -> int:
    return check_i_start(i_start, check_timesteps(timesteps))


# ---- §1.7.2 inpainting

def box_mask(top: int, left: int, height: int, width: int, size: int = 64) -> torch.Tensor:
    """A (1, 1, size, size) mask: 1 inside the box (to be generated), 0 outside (kept)."""
    mask = torch.zeros(1, 1, size, size)
    mask[..., top:top + height, left:left + width] = 1
    return mask


def check_mask(mask: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """A mask that broadcasts over ``im`` without changing its batch, with values in [0, 1]."""
    size = im.shape[-1]
    make = f"make one with box_mask(top, left, height, width, size={size})"
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a (1 or B, 1, H, W) tensor, got {shape}; {make}"
                         + (" or add the dims with mask[None, None]" if shape and len(shape) == 2 else ""))
    if mask.shape[-2:] != im.shape[-2:]:
        raise ValueError(f"mask is {tuple(mask.shape[-2:])} but the image is {tuple(im.shape[-2:])}; {make}")
    if mask.shape[0] not in (1, im.shape[0]) or mask.shape[1] not in (1, im.shape[1]):
        raise ValueError(f"mask has shape {tuple(mask.shape)} for images of shape {tuple(im.shape)}: "
                         f"use one mask (batch 1) for all images or one per image (batch {im.shape[0]})")
    lo, hi = mask.min().item(), mask.max().item()
    if lo < 0 or hi > 1:
        raise ValueError(f"mask values must lie in [0, 1] (1: generate, 0: keep), got [{lo:g}, {hi:g}]"
                         + ("; divide a 0..255 mask by 255" if hi > 1.5 else ""))
    return mask


@torch.inference_mode()
def inpaint(model: NoiseModel, im: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor,
            uncond: torch.Tensor, scale: float = 7.0, timesteps: list[int] | None = None,
            generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """RePaint-style: after every step x_t ← m·x_t + (1 − m)·forward(im, t).

    Where m = 1 the model invents; where m = 0 the image is the original, noised to the level
    the loop is at. The last step puts back the clean original, so the kept pixels are exact.
    """
    timesteps = timesteps or strided_timesteps()
    check_images(im, clean=True)
    mask = check_mask(mask, im).to(im.device, im.dtype)

    def after_step(x, t):
        return keep_known(x, t, im, mask, model.alphas_cumprod, generator)

    x = pure_noise(im.shape[0], generator, tuple(im.shape[1:]), im.device)
    return denoise_loop(cfg_eps(model, cond, uncond, scale), x, 0, model.scheduler, timesteps,
                        generator, after_step=after_step, progress=progress)


def keep_known(x_t: torch.Tensor, t: int, im: torch.Tensor, mask: torch.Tensor,
               alphas_cumprod: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One inpainting step: x_t ← m·x_t + (1 − m)·forward(im, t), and the clean im itself at t = 0."""
    known = im if t == 0 else forward(im, t, alphas_cumprod, generator=generator)
    return mask * x_t + (1 - mask) * known


# ---- §1.8 visual anagrams

class View(NamedTuple):
    """An invertible image transform: the anagram shows prompt 2 when seen through ``apply``."""
    name: str
    apply: Callable[[torch.Tensor], torch.Tensor]
    invert: Callable[[torch.Tensor], torch.Tensor]


def flip_upside_down(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=[-2])


IDENTITY = View("identity", lambda x: x, lambda x: x)
FLIP = View("upside down", flip_upside_down, flip_upside_down)
ROTATE_90 = View("rotated 90°", lambda x: torch.rot90(x, 1, dims=(-2, -1)),
                 lambda x: torch.rot90(x, -1, dims=(-2, -1)))
ROTATE_180 = View("rotated 180°", lambda x: torch.rot90(x, 2, dims=(-2, -1)),
                  lambda x: torch.rot90(x, 2, dims=(-2, -1)))   # 6 ↔ 9: a mirror flip would not do
NEGATIVE = View("negative", lambda x: -x, lambda x: -x)
VIEWS = {"flip": FLIP, "rotate180": ROTATE_180, "rotate90": ROTATE_90, "negative": NEGATIVE,
         "identity": IDENTITY}


def _two_prompt_cfg(model: NoiseModel, x1, x2, cond1, cond2, uncond, scale, t):
    """CFG estimates for (x1, prompt 1) and (x2, prompt 2) from ONE forward pass of 4 × batch."""
    n = x1.shape[0]
    conds = torch.cat([expand_cond(cond1, n), expand_cond(cond2, n)])
    eps, variance = cfg_eps(model, conds, uncond, scale)(torch.cat([x1, x2]), t)
    eps1, eps2 = eps.chunk(2)
    var1, var2 = variance.chunk(2) if variance is not None else (None, None)
    return eps1, var1, eps2, var2


def anagram_eps(model: NoiseModel, cond1: torch.Tensor, cond2: torch.Tensor, uncond: torch.Tensor,
                scale: float = 7.0, view: View = FLIP) -> EpsFn:
    """ε = (ε_1(x_t) + view⁻¹(ε_2(view(x_t))))/2, each ε with CFG; the variance is averaged alike."""
    def eps_fn(x, t):
        eps1, var1, eps2, var2 = _two_prompt_cfg(model, x, view.apply(x), cond1, cond2, uncond, scale, t)
        eps = (eps1 + view.invert(eps2)) / 2
        return eps, None if var1 is None else (var1 + view.invert(var2)) / 2
    return eps_fn


@torch.inference_mode()
def visual_anagram(model: NoiseModel, cond1: torch.Tensor, cond2: torch.Tensor, uncond: torch.Tensor,
                   scale: float = 7.0, view: View = FLIP, n: int = 1, timesteps: list[int] | None = None,
                   generator: torch.Generator | None = None, device="cpu", progress: bool = True,
                   guide=None):
    """An image that shows prompt 1, and prompt 2 once ``view`` is applied (default upside down).

    ``guide`` replaces ``anagram_eps`` (same signature): a notebook passes its own, the student's.
    """
    timesteps = timesteps or strided_timesteps()
    guide = anagram_eps if guide is None else guide
    x = pure_noise(n, generator, model.image_shape, device)
    return denoise_loop(guide(model, cond1, cond2, uncond, scale, view), x, 0, model.scheduler,
                        timesteps, generator, progress=progress)


# ---- §1.9 hybrid images

def lowpass(x: torch.Tensor, kernel_size: int = 33, sigma: float = 2.0) -> torch.Tensor:
    return gaussian_blur(x, kernel_size=[kernel_size, kernel_size], sigma=[sigma, sigma])


def highpass(x: torch.Tensor, kernel_size: int = 33, sigma: float = 2.0) -> torch.Tensor:
    """x − lowpass(x), so that lowpass + highpass is exactly the identity."""
    return x - lowpass(x, kernel_size, sigma)


def hybrid_eps(model: NoiseModel, cond_far: torch.Tensor, cond_near: torch.Tensor, uncond: torch.Tensor,
               scale: float = 7.0, kernel_size: int = 33, sigma: float = 2.0) -> EpsFn:
    """ε = lowpass(ε_1) + highpass(ε_2): prompt 1 seen from afar, prompt 2 up close."""
    def combine(a, b):
        return lowpass(a, kernel_size, sigma) + highpass(b, kernel_size, sigma)

    def eps_fn(x, t):
        eps1, var1, eps2, var2 = _two_prompt_cfg(model, x, x, cond_far, cond_near, uncond, scale, t)
        return combine(eps1, eps2), None if var1 is None else combine(var1, var2)
    return eps_fn


@torch.inference_mode()
def hybrid_image(model: NoiseModel, cond_far: torch.Tensor, cond_near: torch.Tensor, uncond: torch.Tensor,
                 scale: float = 7.0, kernel_size: int = 33, sigma: float = 2.0, n: int = 1,
                 timesteps: list[int] | None = None, generator: torch.Generator | None = None,
                 device="cpu", progress: bool = True, guide=None):
    """A factorized-diffusion hybrid: low frequencies from ``cond_far``, high from ``cond_near``.

    ``guide`` replaces ``hybrid_eps`` (same signature): a notebook passes its own, the student's.
    """
    timesteps = timesteps or strided_timesteps()
    guide = hybrid_eps if guide is None else guide
    x = pure_noise(n, generator, model.image_shape, device)
    return denoise_loop(guide(model, cond_far, cond_near, uncond, scale, kernel_size, sigma), x, 0,
                        model.scheduler, timesteps, generator, progress=progress)

