"""Part B §2.3 and §2.5: integrate the learned velocity from noise (t = 0) to data (t = 1)."""
from __future__ import annotations

import operator
from typing import Callable

import torch

from ..common.batching import Chunked
from .unet import NUM_CLASSES, TimesPerImage, one_hot

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


def check_count(value, name: str = "num_steps") -> int:
    """A positive integer count (Euler steps, samples); 2.5, "16" or 0 are clear errors."""
    try:
        ok = not isinstance(value, bool) and operator.index(value) >= 1
    except TypeError:
        ok = False
    if not ok:
        what = "the number of Euler steps from t = 0 to t = 1" if name == "num_steps" else "a count"
        raise ValueError(f"{name} must be a positive integer ({what}), got {value!r}"
                         + (f"; use int({value!r})" if isinstance(value, float) else ""))
    return operator.index(value)


def euler_integrate(velocity: Velocity, x0: torch.Tensor, num_steps: int,
                    return_trajectory: bool = False):
    """Algorithm B.2: x ← x + (1/T) u(x, t) at t = 0, 1/T, ..., (T-1)/T.

    With ``return_trajectory`` also returns the list of the T + 1 states, for the GIF.
    """
    num_steps = check_count(num_steps)
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
        both = torch.cat([x, x])
        u_cond, u_uncond = model(both, _times(t, both), torch.cat([c, uncond])).chunk(2)
        return u_uncond + guidance * (u_cond - u_uncond)

    return velocity


def _times(t, x: torch.Tensor) -> torch.Tensor:
    """The step's time as a (B,) tensor, the shape every UNet of the course is called with."""
    return torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)


def euler_sample(model, x0: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Algorithm B.2 with a time-conditioned UNet, ``model(x, t)`` with t of shape (B,): the
    signature of notebook 16's exercise, which ``sample_time_conditioned(sampler=)`` takes."""
    return euler_integrate(lambda x, t: model(x, _times(t, x)), x0, num_steps)


def euler_sample_cfg(model, c: torch.Tensor, x0: torch.Tensor, num_steps: int, guidance: float) -> torch.Tensor:
    """Algorithm B.4: Euler with classifier-free guidance, both velocities from one batched pass:
    the signature of notebook 17's exercise, which ``sample_class_conditioned(sampler=)`` takes."""
    return euler_integrate(cfg_velocity(model, c, guidance), x0, num_steps)


class _Recording:
    """The network a sampler is handed when a trajectory is asked for: it keeps the first ``n``
    rows of every new x it is fed (one per Euler step, whether the sampler makes one batched pass
    or two separate ones), so the GIF does not depend on the sampler's own contract."""

    def __init__(self, net, n: int):
        self.net, self.n, self.states = net, n, []

    def __call__(self, x, *args):
        state = x[:self.n]
        if not self.states or not torch.equal(self.states[-1], state):
            self.states.append(state.clone())
        return self.net(x, *args)

    def __getattr__(self, name):
        return getattr(self.net, name)


def _run_sampler(sampler, net, n: int, return_trajectory: bool, *args):
    """``sampler(net, *args)``; with ``return_trajectory`` also the T + 1 states: the x fed at each
    step, then the result. The sampler may call the network with t of any shape holding one time
    per image (its check accepts all): the network gets t as (B,)."""
    net = TimesPerImage(net)
    if not return_trajectory:
        return sampler(net, *args)
    recording = _Recording(net, n)
    x = sampler(recording, *args)
    return x, recording.states + [x]


def _noise(n, model, generator, device):
    shape = (n, getattr(model, "in_channels", 1), 28, 28)
    return torch.randn(shape, generator=generator).to(device)


@torch.inference_mode()
def sample_time_conditioned(model, n: int, num_steps: int, generator: torch.Generator | None = None,
                            return_trajectory: bool = False, sampler=None):
    """Algorithm B.2 with a time-conditioned UNet; noise comes from a CPU generator.

    ``sampler`` replaces ``euler_sample`` (same signature, ``sampler(model, x0, num_steps) -> x1``):
    a notebook passes its own, the student's. ``return_trajectory`` also returns the T + 1 states
    (for the GIF): the x the model is fed at each step, then the result.
    """
    n, num_steps = check_count(n, "n"), check_count(num_steps)
    model.eval()
    device = next(model.parameters()).device
    sampler = euler_sample if sampler is None else sampler
    return _run_sampler(sampler, Chunked(model), n, return_trajectory,
                        _noise(n, model, generator, device), num_steps)


@torch.inference_mode()
def sample_class_conditioned(model, labels, num_steps: int, guidance: float = 5.0,
                             generator: torch.Generator | None = None,
                             return_trajectory: bool = False, sampler=None):
    """Algorithm B.4: Euler with classifier-free guidance for each label in ``labels``.

    ``sampler`` replaces ``euler_sample_cfg`` (same signature,
    ``sampler(model, c, x0, num_steps, guidance) -> x1``): a notebook passes its own, the
    student's. ``return_trajectory`` as in ``sample_time_conditioned``.
    """
    num_steps = check_count(num_steps)
    model.eval()
    device = next(model.parameters()).device
    sampler = euler_sample_cfg if sampler is None else sampler
    c = one_hot(torch.as_tensor(labels), getattr(model, "num_classes", NUM_CLASSES)).to(device)
    return _run_sampler(sampler, Chunked(model), len(c), return_trajectory,
                        c, _noise(len(c), model, generator, device), num_steps, guidance)
