"""Reference solutions of Part B's algorithm exercises: the noising of §1.2 (notebook 13), the
flow-matching losses B.1 and B.3 and the Euler samplers B.2 and B.4 (notebooks 16 and 17).

Each is written as a student would write it from its docstring alone, which is the contract the
notebook shows. The course's own (factored) versions are in ``part_b.noising``, ``part_b.train``
and ``part_b.sampling``; the checks compare a student's function with the math, not with these.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def add_noise(x: torch.Tensor, sigma: float, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The noising process of §1.2 (B.2): z = x + σ ε, with ε ~ N(0, I).

    x: clean digits, a float tensor (B, 1, 28, 28) with values in [0, 1].
    sigma: the noise level σ ≥ 0, a Python float.
    noise: ε, a tensor of x's shape, or None: then draw ε ~ N(0, I) of x's shape (one independent
        standard normal number per pixel of every image, a fresh draw on every call), from
        `generator` if one is given, e.g. torch.randn(x.shape, generator=generator, device=x.device).
    generator: the torch.Generator to draw ε from, or None for torch's global random generator.

    Returns z, a new tensor of x's shape (x itself is left unchanged).
    """
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + sigma * noise


def time_flow_loss(model, x1: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm B.1: the flow-matching loss of one training step of the time-conditioned UNet.

    model: the UNet u_θ, called as model(x_t, t) with x_t of x1's shape and t a tensor of shape
        (B,) in [0, 1]; it returns the predicted velocity, of x1's shape.
    x1: a batch of training digits (the data, at t = 1), a float tensor (B, 1, 28, 28) in [0, 1].
    generator: the torch.Generator to draw x0 and t from, or None for torch's global random
        generator.

    Draw the noise x0 ~ N(0, I) of x1's shape and one time per image t ~ U[0, 1] (uniform, shape
    (B,)), then, with t reshaped to (B, 1, 1, 1) to scale each image by its own t:
        x_t  = (1 − t) x0 + t x1             a point on the straight path from noise to data
        loss = mean of ((x1 − x0) − u_θ(x_t, t))²   over every pixel of every image (F.mse_loss)
    The target x1 − x0 is the velocity d x_t / dt of that path.

    Returns the loss, a 0-dim tensor that carries the gradient (training calls loss.backward(),
    so no .item()).
    """
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
    tb = t.reshape(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * x1
    return F.mse_loss(model(x_t, t), x1 - x0)


def euler_sample(model, x0: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Algorithm B.2: carry the noise x0 (t = 0) to digits (t = 1) with num_steps Euler steps of
    the learned velocity.

    model: the time-conditioned UNet u_θ, called as model(x, t) with t a tensor of shape (B,)
        holding the step's time once per image; it returns the velocity, of x's shape.
    x0: the starting noise, a tensor (B, 1, 28, 28) drawn from N(0, I) by the caller.
    num_steps: T ≥ 1, the number of Euler steps.

    With x = x0, for i = 0, 1, …, T − 1:
        t = i / T                        (the time at the start of the step)
        x ← x + (1 / T) u_θ(x, t)
    Returns x after the T steps (digits, about in [0, 1]), a new tensor: x0 itself is left
    unchanged (write x = x + …, not x += …).
    """
    x = x0
    for i in range(num_steps):
        t = torch.full((x.shape[0],), i / num_steps, device=x.device, dtype=x.dtype)
        x = x + model(x, t) / num_steps
    return x


def class_flow_loss(model, x1: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
                    p_uncond: float = 0.1) -> torch.Tensor:
    """Algorithm B.3: the flow-matching loss of one training step of the class-conditioned UNet.

    model: the UNet u_θ, called as model(x_t, t, c) with t a tensor of shape (B,) in [0, 1] and c
        one-hot rows (B, 10) of floats; it returns the predicted velocity, of x1's shape.
    x1: a batch of training digits (the data, at t = 1), a float tensor (B, 1, 28, 28) in [0, 1].
    y: their labels, an integer tensor (B,) of classes 0 … 9.
    generator: the torch.Generator to draw x0, t and the dropout from, or None for torch's global
        random generator.
    p_uncond: the probability of dropping an image's class (0.1 in the handout).

    As in B.1: x0 ~ N(0, I) of x1's shape, one t ~ U[0, 1] per image, x_t = (1 − t) x0 + t x1,
    loss = mean of ((x1 − x0) − u_θ(x_t, t, c))² over every pixel of every image. The class:
    c = one-hot(y), float rows of length 10; then each row is replaced by all zeros ("no class")
    with probability p_uncond, independently for each image (e.g. a uniform draw per image, the
    row dropped where it is below p_uncond). So one network learns the conditional and the
    unconditional velocity.

    Returns the loss, a 0-dim tensor that carries the gradient.
    """
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
    c = F.one_hot(y, 10).to(x1.dtype)
    drop = torch.rand(x1.shape[0], generator=generator, device=x1.device) < p_uncond
    c[drop] = 0
    tb = t.reshape(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * x1
    return F.mse_loss(model(x_t, t, c), x1 - x0)


def euler_sample_cfg(model, c: torch.Tensor, x0: torch.Tensor, num_steps: int,
                     guidance: float) -> torch.Tensor:
    """Algorithm B.4: Euler sampling (B.2) with classifier-free guidance.

    model: the class-conditioned UNet u_θ, called as model(x, t, c) with t a tensor of shape (B,)
        and c one-hot float rows (B, 10); an all-zero row means "no class". It returns the
        velocity, of x's shape.
    c: the classes to draw, one-hot float rows (B, 10), one per image of x0.
    x0: the starting noise, a tensor (B, 1, 28, 28) drawn from N(0, I) by the caller.
    num_steps: T ≥ 1, the number of Euler steps.
    guidance: the guidance scale γ (5 in the handout).

    With x = x0, for i = 0, 1, …, T − 1, at t = i / T:
        u_cond   = u_θ(x, t, c)
        u_uncond = u_θ(x, t, 0)          (c = 0: all-zero rows of c's shape, torch.zeros_like(c))
        u        = u_uncond + γ (u_cond − u_uncond)
        x ← x + (1 / T) u
    Returns x after the T steps, a new tensor (x0 is left unchanged).
    """
    x = x0
    uncond = torch.zeros_like(c)
    for i in range(num_steps):
        t = torch.full((x.shape[0],), i / num_steps, device=x.device, dtype=x.dtype)
        u_cond = model(x, t, c)
        u_uncond = model(x, t, uncond)
        x = x + (u_uncond + guidance * (u_cond - u_uncond)) / num_steps
    return x
