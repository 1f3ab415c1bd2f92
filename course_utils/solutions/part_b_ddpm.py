"""Reference solutions of Part B's optional DDPM extension (notebook 19): the linear noise
schedule, the ε-prediction loss of one training step (Ho et al.'s L_simple), ancestral sampling
over all T steps and the same sampling with classifier-free guidance.

Each is written as a student would write it from its docstring alone, which is the contract the
notebook shows. The course's own (factored) versions are in ``part_b.ddpm``; the checks compare
a student's function with the math, not with these.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ddpm_schedule(T: int = 300, beta_start: float = 1e-4,
                  beta_end: float = 0.02) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DDPM's linear noise schedule (Ho et al., 2020): β_t, α_t and ᾱ_t for t = 0, 1, …, T − 1.

    T: the number of diffusion steps (300 here; Ho et al. use 1000).
    beta_start: β_0, the variance of the noise added at the first step t = 0.
    beta_end: β_{T−1}, the variance of the noise added at the last step t = T − 1.

    β is evenly spaced from beta_start to beta_end, both ends included (torch.linspace with T
    points); then
        α_t = 1 − β_t
        ᾱ_t = α_0 α_1 … α_t = Π_{s ≤ t} α_s      (the cumulative product, torch.cumprod)
    so ᾱ_0 = 1 − β_0 and ᾱ falls from about 1 (nearly clean) towards 0 (nearly pure noise).

    Returns (betas, alphas, alphas_cumprod), in that order: three float32 tensors of shape (T,),
    entry t holding β_t, α_t and ᾱ_t.
    """
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    alphas = 1 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    return betas, alphas, alphas_cumprod


def ddpm_loss(model, x0: torch.Tensor, alphas_cumprod: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The DDPM loss of one training step (Ho et al.'s L_simple): the UNet predicts the noise ε.

    model: the time-conditioned UNet ε_θ, called as model(x_t, t / T) with x_t of x0's shape and
        t / T a float tensor of shape (B,), one time in [0, 1) per image; it returns the
        predicted noise, of x0's shape.
    x0: a batch of clean training digits, a float tensor (B, 1, 28, 28) already scaled to [-1, 1].
    alphas_cumprod: ᾱ, a float tensor of shape (T,) (from ddpm_schedule): ᾱ_t = alphas_cumprod[t].
        T = len(alphas_cumprod).
    generator: the torch.Generator to draw t and ε from, or None for torch's global random
        generator.

    Draw one integer step per image, t ~ U{0, 1, …, T − 1} (torch.randint(0, T, (B,)): its upper
    end is excluded), and the noise ε ~ N(0, I) of x0's shape. Then, with ᾱ_t reshaped to
    (B, 1, 1, 1) to scale each image by its own ᾱ_t:
        x_t  = √ᾱ_t x0 + √(1 − ᾱ_t) ε              a draw of q(x_t | x0)
        loss = mean of (ε − ε_θ(x_t, t / T))²      over every pixel of every image (F.mse_loss)
    The model sees the step as the float t / T, not the integer t.

    Returns the loss, a 0-dim tensor that carries the gradient (training calls loss.backward(),
    so no .item()).
    """
    T = len(alphas_cumprod)
    B = x0.shape[0]
    t = torch.randint(0, T, (B,), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    a = alphas_cumprod[t].reshape(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    return F.mse_loss(model(x_t, t / T), eps)


def ddpm_sample(model, x_T: torch.Tensor, alphas_cumprod: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """DDPM's ancestral sampling (Ho et al., Algorithm 2): from pure noise x_T through all T steps.

    model: the time-conditioned UNet ε_θ, called as model(x_t, t / T) with t / T a float tensor
        of shape (B,) holding the step's t / T once per image; it returns the predicted noise ε̂,
        of x_t's shape.
    x_T: the starting noise, a tensor (B, 1, 28, 28) drawn from N(0, I) by the caller.
    alphas_cumprod: ᾱ, a float tensor of shape (T,) (from ddpm_schedule): ᾱ_t = alphas_cumprod[t].
        T = len(alphas_cumprod).
    generator: a torch.Generator on the CPU to draw the noise z from, or None for torch's global
        random generator: z = torch.randn(x.shape, generator=generator), then moved to x's
        device and dtype (.to(x.device, x.dtype)).

    With x = x_T, for t = T − 1, T − 2, …, 0 (T steps, one model call each):
        ε̂      = ε_θ(x, t / T)
        ᾱ_t    = alphas_cumprod[t],  ᾱ_{t−1} = alphas_cumprod[t − 1], and ᾱ_{t−1} = 1 when t = 0
                 (clean data; not alphas_cumprod[−1], which Python reads as the last entry)
        x̂0     = (x − √(1 − ᾱ_t) ε̂) / √ᾱ_t                         the estimate of the clean image
        α = ᾱ_t / ᾱ_{t−1},  β = 1 − α                              this step's α_t and β_t
        mean   = √ᾱ_{t−1} β / (1 − ᾱ_t) · x̂0 + √α (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x
        β̃      = β (1 − ᾱ_{t−1}) / (1 − ᾱ_t)                      the variance of q(x_{t−1} | x_t, x0)
        x ← mean + √β̃ z,  with fresh noise z ~ N(0, I) of x's shape at every step,
    except at the last step (t = 0), which adds no noise: x ← mean (there mean = x̂0).
    Returns x after the T steps (digits, about in [-1, 1]), a new tensor: x_T itself is left
    unchanged (write x = …, not x += …).
    """
    T = len(alphas_cumprod)
    x = x_T
    for t in range(T - 1, -1, -1):
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[t - 1] if t > 0 else torch.ones_like(a_t)
        eps = model(x, torch.full((x.shape[0],), t / T, device=x.device, dtype=x.dtype))
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        alpha = a_t / a_prev
        beta = 1 - alpha
        mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
        if t > 0:
            z = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
            x = mean + (beta * (1 - a_prev) / (1 - a_t)).sqrt() * z
        else:
            x = mean
    return x


def ddpm_sample_cfg(model, c: torch.Tensor, x_T: torch.Tensor, alphas_cumprod: torch.Tensor, guidance: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """DDPM's ancestral sampling (as ddpm_sample) with classifier-free guidance on the noise.

    model: the class-conditioned UNet ε_θ, called as model(x_t, t / T, c) with t / T a float
        tensor of shape (B,) holding the step's t / T once per image and c one-hot float rows
        (B, 10); an all-zero row means "no class". It returns the predicted noise, of x_t's shape.
    c: the classes to draw, one-hot float rows (B, 10), one per image of x_T.
    x_T: the starting noise, a tensor (B, 1, 28, 28) drawn from N(0, I) by the caller.
    alphas_cumprod: ᾱ, a float tensor of shape (T,) (from ddpm_schedule): ᾱ_t = alphas_cumprod[t].
        T = len(alphas_cumprod).
    guidance: the guidance scale γ (1: the conditional model alone, 0: the unconditional one).
    generator: a torch.Generator on the CPU to draw the noise z from, or None for torch's global
        random generator: z = torch.randn(x.shape, generator=generator), then moved to x's
        device and dtype (.to(x.device, x.dtype)).

    With x = x_T, for t = T − 1, T − 2, …, 0, the step of ddpm_sample with ε̂ guided:
        ε̂_c = ε_θ(x, t / T, c)
        ε̂_u = ε_θ(x, t / T, 0)          (c = 0: all-zero rows of c's shape, torch.zeros_like(c))
        ε̂   = ε̂_u + γ (ε̂_c − ε̂_u)
        ᾱ_t = alphas_cumprod[t],  ᾱ_{t−1} = alphas_cumprod[t − 1], and ᾱ_{t−1} = 1 when t = 0
        x̂0  = (x − √(1 − ᾱ_t) ε̂) / √ᾱ_t
        α = ᾱ_t / ᾱ_{t−1},  β = 1 − α
        mean = √ᾱ_{t−1} β / (1 − ᾱ_t) · x̂0 + √α (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x
        β̃   = β (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
        x ← mean + √β̃ z,  fresh z ~ N(0, I) of x's shape, except at the last step (t = 0): x ← mean.
    The two passes may be one: model(torch.cat([x, x]), …, torch.cat([c, zeros])), output split
    in halves. Returns x after the T steps, a new tensor (x_T is left unchanged).
    """
    T = len(alphas_cumprod)
    x = x_T
    uncond = torch.zeros_like(c)
    for t in range(T - 1, -1, -1):
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[t - 1] if t > 0 else torch.ones_like(a_t)
        s = torch.full((x.shape[0],), t / T, device=x.device, dtype=x.dtype)
        eps_c = model(x, s, c)
        eps_u = model(x, s, uncond)
        eps = eps_u + guidance * (eps_c - eps_u)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        alpha = a_t / a_prev
        beta = 1 - alpha
        mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
        if t > 0:
            z = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
            x = mean + (beta * (1 - a_prev) / (1 - a_t)).sqrt() * z
        else:
            x = mean
    return x
