"""Part B §1.2: the one-step denoiser's noising process z = x + σε (B.2) and its loss (B.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def add_noise(x: torch.Tensor, sigma: float, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """z = x + σ ε with ε = ``noise``, or, if None, ε ~ N(0, I) drawn fresh on every call (from
    ``generator``): the signature of notebook 13's exercise."""
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if noise is None else noise
    return x + sigma * eps


def denoiser_loss(model, x: torch.Tensor, generator: torch.Generator | None = None,
                  sigma: float | None = 0.5, noiser=None) -> torch.Tensor:
    """L = ||D(z) - x||² averaged over pixels; ``sigma=None`` denoises pure noise z = ε (§1.2.3).

    ``noiser`` replaces ``add_noise`` (same signature): a notebook passes its own, the student's.
    """
    if sigma is None:
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    else:
        z = (noiser or add_noise)(x, sigma, generator=generator)
    return F.mse_loss(model(z), x)


@torch.inference_mode()
def denoise(model, z: torch.Tensor) -> torch.Tensor:
    """D(z) in eval mode (BatchNorm uses its running statistics)."""
    model.eval()
    return model(z.to(next(model.parameters()).device))


@torch.inference_mode()
def denoising_error(model, x: torch.Tensor, sigmas, generator: torch.Generator | None = None):
    """Mean squared error to the clean x of the noisy input and of D(z), for each σ."""
    rows = []
    for sigma in sigmas:
        z = add_noise(x, sigma, generator=generator)
        rows.append((sigma, F.mse_loss(z, x).item(), F.mse_loss(denoise(model, z).cpu(), x.cpu()).item()))
    return rows
