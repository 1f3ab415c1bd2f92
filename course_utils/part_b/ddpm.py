"""Part B's optional extension: DDPM (Ho et al., 2020) on the same UNets as flow matching.

As this project's first version asked: the UNet predicts the noise ε; T = 300 steps with β
linear from 1e-4 to 0.02; the UNet is fed t / T. DDPM works on digits scaled to [-1, 1]
(``to_model``: 2x − 1), as Ho et al. and Part A's DeepFloyd IF do; samples come back in [0, 1]
(``to_pixels``) to be judged like the flow's.

Indices run t = 0, …, T − 1 with ᾱ_t = Π_{s ≤ t} (1 − β_s), the numbers diffusers'
``DDPMScheduler(num_train_timesteps=300, beta_schedule="linear")`` holds; ᾱ_{−1} = 1 stands for
clean data, so the last step of every sampler lands on x̂_0 with no noise added.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .unet import NUM_CLASSES, one_hot

NUM_TIMESTEPS = 300

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]   # (x_t, t) -> ε̂


@dataclass(frozen=True)
class Schedule:
    """β_t for t = 0 … T − 1, and what follows from it."""
    betas: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> torch.Tensor:
        return 1 - self.betas

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, 0)

    def alpha_bar(self, t: int) -> torch.Tensor:
        """ᾱ_t, with ᾱ_{−1} = 1 (clean data)."""
        return self.alphas_cumprod[t] if t >= 0 else torch.ones((), dtype=self.betas.dtype)


def linear_schedule(T: int = NUM_TIMESTEPS, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """β evenly spaced from ``beta_start`` (t = 0) to ``beta_end`` (t = T − 1)."""
    return Schedule(torch.linspace(beta_start, beta_end, T, dtype=torch.float32))


def to_model(x: torch.Tensor) -> torch.Tensor:
    """Digits in [0, 1] to the [-1, 1] DDPM works on."""
    return 2 * x - 1


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """DDPM's [-1, 1] back to [0, 1] (not clamped: the judges see what the model made)."""
    return (x + 1) / 2


def _bcast(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return a.to(x.device, x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


# ---- training --------------------------------------------------------------------------

def q_sample(x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: a draw of q(x_t | x_0), one integer t per image."""
    a = _bcast(alphas_cumprod.to(x0.device)[t], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def eps_loss(model, x0: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
             c: torch.Tensor | None = None) -> torch.Tensor:
    """||ε − ε_θ(x_t, t / T[, c])||² averaged over pixels (Ho et al.'s L_simple)."""
    T = len(alphas_cumprod)
    xt = q_sample(x0, t, eps, alphas_cumprod)
    s = t.to(x0.dtype) / T
    pred = model(xt, s) if c is None else model(xt, s, c)
    return F.mse_loss(pred, eps)


def _draws(x0: torch.Tensor, T: int, generator):
    t = torch.randint(0, T, (x0.shape[0],), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return t, eps


def time_ddpm_loss(model, x0: torch.Tensor, alphas_cumprod: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """One training step's loss for ``model(x_t, t/T)``: t ~ U{0, …, T − 1}, ε ~ N(0, I)."""
    t, eps = _draws(x0, len(alphas_cumprod), generator)
    return eps_loss(model, x0, alphas_cumprod, t, eps)


def class_ddpm_loss(model, x0: torch.Tensor, y: torch.Tensor, alphas_cumprod: torch.Tensor,
                    generator: torch.Generator | None = None, p_uncond: float = 0.1) -> torch.Tensor:
    """As ``time_ddpm_loss`` for ``model(x_t, t/T, c)``, c = one-hot(y) dropped with p_uncond."""
    from .flow import drop_class

    t, eps = _draws(x0, len(alphas_cumprod), generator)
    c = drop_class(one_hot(y, getattr(model, "num_classes", NUM_CLASSES)).to(x0.device, x0.dtype),
                   p_uncond, generator)
    return eps_loss(model, x0, alphas_cumprod, t, eps, c)


# ---- sampling --------------------------------------------------------------------------

def estimate_x0(x_t: torch.Tensor, eps: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t."""
    return (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()


def ancestral_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, schedule: Schedule,
                   z: torch.Tensor | None) -> torch.Tensor:
    """x_{t'} ~ q(x_{t'} | x_t, x̂_0) for a jump t → t' < t (t' = t − 1 is DDPM's step; any
    t' is the strided step of Part A §1.4): mean √ᾱ_{t'} β/(1 − ᾱ_t) x̂_0 + √α (1 − ᾱ_{t'})/(1 − ᾱ_t) x_t
    with α = ᾱ_t/ᾱ_{t'}, β = 1 − α, plus √β̃ z, β̃ = β (1 − ᾱ_{t'})/(1 − ᾱ_t); β̃ = 0 when t' = −1."""
    a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    alpha = a_t / a_prev
    beta = 1 - alpha
    x0 = estimate_x0(x_t, eps, a_t)
    mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x_t
    if t_prev < 0 or z is None:
        return mean
    return mean + (beta * (1 - a_prev) / (1 - a_t)).sqrt() * z


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, schedule: Schedule) -> torch.Tensor:
    """DDIM with η = 0 (Song et al., 2021): x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'}) ε̂, no noise."""
    a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    return a_prev.sqrt() * estimate_x0(x_t, eps, a_t) + (1 - a_prev).sqrt() * eps


def strided_timesteps(num_steps: int, T: int = NUM_TIMESTEPS) -> list[int]:
    """``num_steps`` timesteps from T − 1 down to 0, evenly spaced (all T of them when num_steps = T)."""
    from .sampling import check_count

    num_steps = check_count(num_steps)
    if num_steps > T:
        raise ValueError(f"num_steps must be at most T = {T}, got {num_steps}")
    if num_steps == 1:
        return [T - 1]
    return sorted({round(i * (T - 1) / (num_steps - 1)) for i in range(num_steps)}, reverse=True)


def denoise(eps_fn: EpsFn, x_T: torch.Tensor, schedule: Schedule, timesteps: list[int] | None = None,
            deterministic: bool = False, generator: torch.Generator | None = None,
            return_trajectory: bool = False):
    """From x_T ~ N(0, I) through ``timesteps`` (default all T, i.e. ancestral DDPM) to x̂_0.

    Ancestral steps (``ancestral_step``) or, with ``deterministic``, DDIM steps; fresh noise z
    from ``generator`` (CPU, so a seed gives the same samples on every device) except at the
    last step. ``return_trajectory`` also returns every state, x_T first, x̂_0 last.
    """
    timesteps = list(range(schedule.T - 1, -1, -1)) if timesteps is None else [int(t) for t in timesteps]
    x, states = x_T, [x_T]
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        eps = eps_fn(x, t)
        if deterministic:
            x = ddim_step(x, eps, t, t_prev, schedule)
        else:
            z = None if t_prev < 0 else torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
            x = ancestral_step(x, eps, t, t_prev, schedule, z)
        if return_trajectory:
            states.append(x)
    return (x, states) if return_trajectory else x


def time_eps(model, T: int) -> EpsFn:
    """ε̂(x, t) of a time-conditioned UNet fed t / T, one time per image."""
    return lambda x, t: model(x, torch.full((x.shape[0],), t / T, device=x.device, dtype=x.dtype))


def cfg_eps(model, c: torch.Tensor, guidance: float, T: int) -> EpsFn:
    """ε̂ = ε̂_u + γ (ε̂_c − ε̂_u), both halves from one batched pass; c = 0 is "no class"."""
    def eps_fn(x, t):
        both = torch.cat([x, x])
        s = torch.full((both.shape[0],), t / T, device=x.device, dtype=x.dtype)
        e_c, e_u = model(both, s, torch.cat([c, torch.zeros_like(c)])).chunk(2)
        return e_u + guidance * (e_c - e_u)
    return eps_fn


# ---- the notebooks' entry points ---------------------------------------------------------

@torch.inference_mode()
def sample_time_ddpm(model, n: int, schedule: Schedule | None = None, timesteps: list[int] | None = None,
                     deterministic: bool = False, generator: torch.Generator | None = None,
                     return_trajectory: bool = False, sampler=None):
    """n digits in [0, 1] from a time-conditioned ε-UNet; noise from a CPU ``generator``.

    ``sampler`` replaces the course's loop over all T steps (notebook 19's exercise,
    ``sampler(model, x_T, alphas_cumprod, generator) -> x_0`` in [-1, 1]); it cannot be combined
    with ``timesteps`` or ``deterministic``, which choose the course's strided or DDIM loop.
    """
    from .sampling import _run_sampler, check_count
    from ..common.batching import Chunked

    schedule = schedule or linear_schedule()
    n = check_count(n, "n")
    model.eval()
    device = next(model.parameters()).device
    x_T = torch.randn((n, getattr(model, "in_channels", 1), 28, 28), generator=generator).to(device)
    net = Chunked(model)
    if sampler is not None:
        if timesteps is not None or deterministic:
            raise TypeError("sampler= runs your own loop over all T steps: drop timesteps= / deterministic=")
        out = _run_sampler(sampler, net, n, return_trajectory, x_T, schedule.alphas_cumprod.to(device), generator)
    else:
        out = denoise(time_eps(net, schedule.T), x_T, schedule, timesteps, deterministic, generator,
                      return_trajectory)
    return (to_pixels(out[0]), [to_pixels(s) for s in out[1]]) if return_trajectory else to_pixels(out)


@torch.inference_mode()
def sample_class_ddpm(model, labels, guidance: float = 5.0, schedule: Schedule | None = None,
                      timesteps: list[int] | None = None, deterministic: bool = False,
                      generator: torch.Generator | None = None, return_trajectory: bool = False,
                      sampler=None):
    """One digit in [0, 1] per label, CFG on ε with scale ``guidance``.

    ``sampler`` replaces the course's loop (notebook 19's exercise,
    ``sampler(model, c, x_T, alphas_cumprod, guidance, generator) -> x_0`` in [-1, 1]).
    """
    from .sampling import _run_sampler
    from ..common.batching import Chunked

    schedule = schedule or linear_schedule()
    model.eval()
    device = next(model.parameters()).device
    c = one_hot(torch.as_tensor(labels), getattr(model, "num_classes", NUM_CLASSES)).to(device)
    x_T = torch.randn((len(c), getattr(model, "in_channels", 1), 28, 28), generator=generator).to(device)
    net = Chunked(model)
    if sampler is not None:
        if timesteps is not None or deterministic:
            raise TypeError("sampler= runs your own loop over all T steps: drop timesteps= / deterministic=")
        out = _run_sampler(sampler, net, len(c), return_trajectory, c, x_T,
                           schedule.alphas_cumprod.to(device), guidance, generator)
    else:
        out = denoise(cfg_eps(net, c, guidance, schedule.T), x_T, schedule, timesteps, deterministic,
                      generator, return_trajectory)
    return (to_pixels(out[0]), [to_pixels(s) for s in out[1]]) if return_trajectory else to_pixels(out)
