"""Part B §2.3 and §2.5: integrate the learned velocity from noise (t = 0) to data (t = 1)."""
from __future__ import annotations

from typing import Callable

import torch

from ..common.batching import Chunked
from .unet import one_hot

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


def euler_integrate(velocity: Velocity, x0: torch.Tensor, num_steps: int,
                    return_trajectory: bool = False):
    """Algorithm B.2: x ← x + (1/T) u(x, t) at t = 0, 1/T, ..., (T-1)/T.

    With ``return_trajectory`` also returns the list of the T + 1 states, for the GIF.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    x, dt = x0, 1.0 / num_steps
    trajectory = [x0]
    for i in range(num_steps):
        x = x + dt * velocity(x, i * dt)
        if return_trajectory:
            trajectory.append(x)
    return (x, trajectory) if return_trajectory else x


def cfg_velocity(model, c: torch.Tensor, guidance: float) -> Velocity:
    """u = u_uncond + γ (u_cond - u_uncond), both from one batched forward pass."""
    uncond = torch.zeros_like(c)

    def velocity(x, t):
        u_cond, u_uncond = model(torch.cat([x, x]), t, torch.cat([c, uncond])).chunk(2)
        return u_uncond + guidance * (u_cond - u_uncond)

    return velocity


def _noise(n, model, generator, device):
    shape = (n, model.in_channels, 28, 28)
    return torch.randn(shape, generator=generator).to(device)


@torch.inference_mode()
def sample_time_conditioned(model, n: int, num_steps: int, generator: torch.Generator | None = None,
                            return_trajectory: bool = False, integrate=None):
    """Algorithm B.2 with a time-conditioned UNet; noise comes from a CPU generator.

    ``integrate`` replaces ``euler_integrate`` (same signature): a notebook passes its own.
    """
    model.eval()
    device = next(model.parameters()).device
    integrate = euler_integrate if integrate is None else integrate
    net = Chunked(model)
    return integrate(lambda x, t: net(x, t), _noise(n, model, generator, device),
                     num_steps, return_trajectory)


@torch.inference_mode()
def sample_class_conditioned(model, labels, num_steps: int, guidance: float = 5.0,
                             generator: torch.Generator | None = None,
                             return_trajectory: bool = False, guide=None, integrate=None):
    """Algorithm B.4: Euler with classifier-free guidance for each label in ``labels``.

    ``guide`` and ``integrate`` replace ``cfg_velocity`` and ``euler_integrate`` (same
    signatures): a notebook passes its own, the student's.
    """
    model.eval()
    device = next(model.parameters()).device
    guide = cfg_velocity if guide is None else guide
    integrate = euler_integrate if integrate is None else integrate
    c = one_hot(torch.as_tensor(labels), model.num_classes).to(device)
    return integrate(guide(Chunked(model), c, guidance),
                     _noise(len(c), model, generator, device), num_steps, return_trajectory)
