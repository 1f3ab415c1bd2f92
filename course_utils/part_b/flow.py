"""Part B §2: the flow-matching path, its target velocity, and the training loss.

Convention of the handout: x_0 ~ N(0, I) is noise at t = 0 and x_1 is data at t = 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t x_1 (B.3), with one t per image."""
    t = _bcast(t, x0)
    return (1 - t) * x0 + t * x1


def target_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """u(x_t, t) = d x_t / dt = x_1 - x_0 (B.4)."""
    return x1 - x0


def drop_class(c: torch.Tensor, p_uncond: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each one-hot row with probability p_uncond so one model also learns p(x) (§2.4)."""
    keep = torch.rand(c.shape[0], generator=generator, device=c.device) >= p_uncond
    return c * keep[:, None].to(c.dtype)


def flow_matching_loss(model, x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor,
                       c: torch.Tensor | None = None) -> torch.Tensor:
    """||(x_1 - x_0) - u_θ(x_t, t[, c])||² averaged over pixels (B.5)."""
    xt = interpolate(x0, x1, t)
    pred = model(xt, t) if c is None else model(xt, t, c)
    return F.mse_loss(pred, target_velocity(x0, x1))


def sample_path(x1: torch.Tensor, generator: torch.Generator | None = None):
    """Draw the noise x_0 and a time t ~ U[0, 1] for each data image x_1."""
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
    return x0, t
