"""Part A's exercises (§1.1–1.9), as a student writes them.

The model interface throughout: ``model(x_t, t, cond) -> (eps, variance)`` with x_t a (B, C, H, W)
batch, t an integer timestep, cond a condition of batch 1 (shared by all images) or B;
``variance`` is the model's learned-range output or None; ``model.alphas_cumprod`` is ᾱ.
"""
from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms.functional import gaussian_blur

from ..part_a.diffusion import add_jump_variance, default_alphas_cumprod


def forward(im: torch.Tensor, t: int, alphas_cumprod: torch.Tensor | None = None,
            noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The forward process (§1.1): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε.

    Args:
        im: the clean images x_0, a (B, C, H, W) tensor in [-1, 1].
        t: an integer timestep in 0..999 (0: clean, 999: pure noise).
        alphas_cumprod: ᾱ, a 1-D tensor indexed by t; None: IF's, ``default_alphas_cumprod()``.
        noise: ε, a tensor of im's shape; None: draw ε ~ N(0, I) in im's shape, e.g.
            ``torch.randn(im.shape, generator=generator)`` (torch's global RNG when generator is
            None), moved to im's device and dtype.
        generator: a ``torch.Generator`` for that draw, or None.
    Returns:
        x_t, of im's shape, device and dtype.
    """
    alphas = default_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
    a = alphas[t]
    if noise is None:
        noise = torch.randn(im.shape, generator=generator).to(im.device, im.dtype)
    return a.sqrt() * im + (1 - a).sqrt() * noise


def one_step_denoise(model, x_t: torch.Tensor, t: int, cond: torch.Tensor) -> torch.Tensor:
    """One-step denoising (§1.3): x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t.

    Args:
        model: the noise model; ``eps, variance = model(x_t, t, cond)`` gives its estimate ε̂ of
            the noise in x_t (ignore the variance here); ``model.alphas_cumprod`` is ᾱ.
        x_t: noisy images, a (B, C, H, W) tensor, noisy at timestep t.
        t: the integer timestep of x_t.
        cond: the condition (prompt embedding) passed on to the model, batch 1 or B.
    Returns:
        x̂_0, the estimate of the clean images, of x_t's shape.
    """
    eps, _ = model(x_t, t, cond)
    a = model.alphas_cumprod[t]
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def iterative_denoise(model, im_noisy: torch.Tensor, i_start: int, cond: torch.Tensor, timesteps: list[int],
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Iterative denoising (§1.4): walk the strided timesteps from timesteps[i_start] down to 0.

    Args:
        model: the noise model; ``eps, variance = model(x_t, t, cond)``; ``model.alphas_cumprod``
            is ᾱ.
        im_noisy: (B, C, H, W) images, noisy at t = timesteps[i_start]: the loop starts from them
            as they are.
        i_start: an index into timesteps (not a timestep).
        cond: the condition passed on to the model, batch 1 or B.
        timesteps: decreasing integer timesteps ending at 0, e.g. [990, 960, ..., 30, 0].
        generator: a ``torch.Generator`` for the noise, or None (torch's global RNG).
    Returns:
        x_0, the denoised images, of im_noisy's shape.

    For i = i_start, ..., len(timesteps) − 2, with t = timesteps[i] and t′ = timesteps[i + 1]:

        ε̂, v = model(x_t, t, cond)
        x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t
        x_t′ = √ᾱ_t′ β_t/(1 − ᾱ_t) · x̂_0 + √α_t (1 − ᾱ_t′)/(1 − ᾱ_t) · x_t + v_σ,
        with α_t = ᾱ_t/ᾱ_t′ and β_t = 1 − α_t (the jump t → t′, not one step of 1000).

    The noise v_σ is ``add_jump_variance(model.alphas_cumprod, t, t′, v, mean, generator)``: it
    returns mean + σ z with σ from ᾱ and the model's variance v. Add it on every step but the last:
    the step that lands on t′ = 0 returns the mean itself. The model is called once per step, at
    t = timesteps[i_start], ..., timesteps[-2] (never at t = 0).
    """
    alphas = model.alphas_cumprod
    x = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, t_prev = timesteps[i], timesteps[i + 1]
        eps, variance = model(x, t, cond)
        a_t, a_prev = alphas[t], alphas[t_prev]
        alpha = a_t / a_prev
        beta = 1 - alpha
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
        if t_prev > 0:
            x = add_jump_variance(alphas, t, t_prev, variance, x, generator)
    return x


def iterative_denoise_cfg(model, im_noisy: torch.Tensor, i_start: int, cond: torch.Tensor, uncond: torch.Tensor,
                          scale: float, timesteps: list[int], generator: torch.Generator | None = None) -> torch.Tensor:
    """Iterative denoising with classifier-free guidance (§1.6).

    Args:
        model: the noise model; ``eps, variance = model(x_t, t, cond)``; ``model.alphas_cumprod``
            is ᾱ. It broadcasts a condition of batch 1 to x_t's batch, but a condition of any
            other batch must match x_t's.
        im_noisy: (B, C, H, W) images, noisy at t = timesteps[i_start]; the loop starts from them.
        i_start: an index into timesteps (not a timestep).
        cond: the prompt's condition, batch 1 or B.
        uncond: the empty prompt's condition (""), batch 1 or B.
        scale: the guidance strength γ.
        timesteps: decreasing integer timesteps ending at 0, e.g. [990, 960, ..., 30, 0].
        generator: a ``torch.Generator`` for the noise, or None (torch's global RNG).
    Returns:
        x_0, the denoised images, of im_noisy's shape.

    The loop of ``iterative_denoise`` (x̂_0, posterior mean, ``add_jump_variance`` on every step
    but the last), with ε̂ replaced at every step by

        ε̂ = ε_u + γ (ε_c − ε_u),   ε_c, v_c = model(x_t, t, cond),   ε_u, _ = model(x_t, t, uncond),

    and the variance v_c of the conditional pass. Either call the model twice, or once on
    ``torch.cat([x_t, x_t])`` with both conditions expanded to B (``c.expand(B, *c.shape[1:])``)
    and concatenated, then split the output in halves.
    """
    alphas = model.alphas_cumprod
    x = im_noisy
    n = x.shape[0]
    conds = torch.cat([cond.expand(n, *cond.shape[1:]), uncond.expand(n, *uncond.shape[1:])])
    for i in range(i_start, len(timesteps) - 1):
        t, t_prev = timesteps[i], timesteps[i + 1]
        eps, variance = model(torch.cat([x, x]), t, conds)
        eps_c, eps_u = eps.chunk(2)
        eps = eps_u + scale * (eps_c - eps_u)
        variance = None if variance is None else variance[:n]
        a_t, a_prev = alphas[t], alphas[t_prev]
        alpha = a_t / a_prev
        beta = 1 - alpha
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
        if t_prev > 0:
            x = add_jump_variance(alphas, t, t_prev, variance, x, generator)
    return x


def sdedit(model, im: torch.Tensor, i_start: int, cond: torch.Tensor, uncond: torch.Tensor, scale: float,
           timesteps: list[int], generator: torch.Generator | None = None) -> torch.Tensor:
    """SDEdit (§1.7): noise the clean images to t = timesteps[i_start], then denoise them with CFG.

    Args:
        model: the noise model; ``model.alphas_cumprod`` is ᾱ.
        im: clean (B, C, H, W) images in [-1, 1].
        i_start: an index into timesteps: small, much noise (a new image with im's layout);
            large, little noise (nearly im).
        cond, uncond: the prompt's and the empty prompt's conditions, batch 1 or B.
        scale: the guidance strength γ.
        timesteps: decreasing integer timesteps ending at 0, e.g. [990, 960, ..., 30, 0].
        generator: a ``torch.Generator`` for all the noise (the forward process's and the
            loop's), or None (torch's global RNG).
    Returns:
        the edited images, of im's shape.

    Use ``forward(im, t, model.alphas_cumprod, generator=generator)`` (§1.1) to noise, then
    ``iterative_denoise_cfg(model, x_t, i_start, cond, uncond, scale, timesteps, generator)``
    (§1.6) to denoise from index i_start (the cell imports the course's own versions of both).
    """
    x = forward(im, timesteps[i_start], model.alphas_cumprod, generator=generator)
    return iterative_denoise_cfg(model, x, i_start, cond, uncond, scale, timesteps, generator)


def inpaint(model, im: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, scale: float,
            timesteps: list[int], generator: torch.Generator | None = None) -> torch.Tensor:
    """Inpainting (§1.7.2, RePaint): sample with CFG from pure noise, keeping the known pixels.

    Args:
        model: the noise model; ``eps, variance = model(x_t, t, cond)``; ``model.alphas_cumprod``
            is ᾱ.
        im: the original (B, C, H, W) images in [-1, 1].
        mask: (1 or B, 1, H, W) on im's device: 1 where new content is generated, 0 where im is
            kept.
        cond, uncond: the prompt's and the empty prompt's conditions, batch 1 or B.
        scale: the guidance strength γ.
        timesteps: decreasing integer timesteps ending at 0, e.g. [990, 960, ..., 30, 0].
        generator: a ``torch.Generator`` for all the noise, or None (torch's global RNG).
    Returns:
        the inpainted images, of im's shape: exactly im where mask = 0.

    Start from x ~ N(0, I) in im's shape and run the loop of ``iterative_denoise_cfg`` over all
    of timesteps (CFG ε̂, x̂_0, posterior mean, ``add_jump_variance`` on every step but the last).
    After every step t → t′ force the known pixels back to the original, noised to t′:

        x_t′ ← m · x_t′ + (1 − m) · forward(im, t′, model.alphas_cumprod, generator=generator),

    and after the last step (t′ = 0) to the clean im itself, so that they end exact.
    """
    alphas = model.alphas_cumprod
    n = im.shape[0]
    conds = torch.cat([cond.expand(n, *cond.shape[1:]), uncond.expand(n, *uncond.shape[1:])])
    x = torch.randn(im.shape, generator=generator).to(im.device, im.dtype)
    for i in range(len(timesteps) - 1):
        t, t_prev = timesteps[i], timesteps[i + 1]
        eps, variance = model(torch.cat([x, x]), t, conds)
        eps_c, eps_u = eps.chunk(2)
        eps = eps_u + scale * (eps_c - eps_u)
        variance = None if variance is None else variance[:n]
        a_t, a_prev = alphas[t], alphas[t_prev]
        alpha = a_t / a_prev
        beta = 1 - alpha
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
        if t_prev > 0:
            x = add_jump_variance(alphas, t, t_prev, variance, x, generator)
            known = forward(im, t_prev, alphas, generator=generator)
        else:
            known = im
        x = mask * x + (1 - mask) * known
    return x


def anagram_eps(model, cond1: torch.Tensor, cond2: torch.Tensor, uncond: torch.Tensor, scale: float,
                view) -> Callable:
    """Visual anagrams (§1.8): the noise estimate of an image that shows prompt 1, and prompt 2
    once ``view`` is applied.

    Args:
        model: the noise model; ``eps, variance = model(x_t, t, cond)`` (variance may be None).
        cond1, cond2: the conditions of prompt 1 and prompt 2, batch 1 or B.
        uncond: the empty prompt's condition, batch 1 or B.
        scale: the guidance strength γ of each CFG estimate.
        view: an invertible image transform with ``view.apply(x)`` and ``view.invert(x)``
            (e.g. a flip upside down).
    Returns:
        ``eps_fn(x_t, t) -> (eps, variance)``: for x_t of shape (B, C, H, W) at timestep t,

            ε_1, v_1 = CFG(x_t, t, cond1)
            ε_2, v_2 = CFG(view.apply(x_t), t, cond2)
            ε = (ε_1 + view.invert(ε_2)) / 2,   variance = (v_1 + view.invert(v_2)) / 2

        with CFG(x, t, c) = (ε_u + γ (ε_c − ε_u), v_c) as in §1.6 (variance None when the model
        gives None). The course's sampling loop (that of ``iterative_denoise``, from pure noise
        at timesteps[0]) calls eps_fn(x_t, t) at every step in place of the model.
    """
    def cfg(x, t, cond):
        eps_c, var_c = model(x, t, cond)
        eps_u, _ = model(x, t, uncond)
        return eps_u + scale * (eps_c - eps_u), var_c

    def eps_fn(x, t):
        eps1, var1 = cfg(x, t, cond1)
        eps2, var2 = cfg(view.apply(x), t, cond2)
        eps = (eps1 + view.invert(eps2)) / 2
        return eps, None if var1 is None else (var1 + view.invert(var2)) / 2
    return eps_fn


def hybrid_eps(model, cond_far: torch.Tensor, cond_near: torch.Tensor, uncond: torch.Tensor, scale: float,
               kernel_size: int = 33, sigma: float = 2.0) -> Callable:
    """Hybrid images (§1.9): the noise estimate of an image that shows ``cond_far`` from afar
    (its low frequencies) and ``cond_near`` up close (its high frequencies).

    Args:
        model: the noise model; ``eps, variance = model(x_t, t, cond)`` (variance may be None).
        cond_far, cond_near: the two prompts' conditions, batch 1 or B.
        uncond: the empty prompt's condition, batch 1 or B.
        scale: the guidance strength γ of each CFG estimate.
        kernel_size, sigma: the Gaussian low-pass filter,
            lowpass(x) = ``gaussian_blur(x, [kernel_size, kernel_size], [sigma, sigma])``
            (torchvision.transforms.functional), and highpass(x) = x − lowpass(x).
    Returns:
        ``eps_fn(x_t, t) -> (eps, variance)``: for x_t of shape (B, C, H, W) at timestep t,

            ε_1, v_1 = CFG(x_t, t, cond_far),   ε_2, v_2 = CFG(x_t, t, cond_near)
            ε = lowpass(ε_1) + highpass(ε_2),   variance = lowpass(v_1) + highpass(v_2)

        with CFG(x, t, c) = (ε_u + γ (ε_c − ε_u), v_c) as in §1.6 (variance None when the model
        gives None). The course's sampling loop (that of ``iterative_denoise``, from pure noise
        at timesteps[0]) calls eps_fn(x_t, t) at every step in place of the model.
    """
    def lowpass(x):
        return gaussian_blur(x, [kernel_size, kernel_size], [sigma, sigma])

    def cfg(x, t, cond):
        eps_c, var_c = model(x, t, cond)
        eps_u, _ = model(x, t, uncond)
        return eps_u + scale * (eps_c - eps_u), var_c

    def eps_fn(x, t):
        eps1, var1 = cfg(x, t, cond_far)
        eps2, var2 = cfg(x, t, cond_near)
        eps = lowpass(eps1) + eps2 - lowpass(eps2)
        return eps, None if var1 is None else lowpass(var1) + var2 - lowpass(var2)
    return eps_fn
