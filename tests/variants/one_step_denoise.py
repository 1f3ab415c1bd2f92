"""one_step_denoise (03): x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t."""
import math

import torch

from course_utils.part_a.diffusion import default_alphas_cumprod

EXERCISE = "one_step_denoise"


def one_step_denoise_indexing(model, x_t, t, cond):
    noise_estimate = model(x_t, t, cond)[0]
    abar = model.alphas_cumprod[t]
    return x_t * abar.rsqrt() - noise_estimate * ((1 - abar) / abar).sqrt()


def one_step_denoise_floats(model, x_t, t, cond):
    eps, variance = model(x_t, int(t), cond)
    a = model.alphas_cumprod[int(t)].item()
    return (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)


def one_step_denoise_tensor_t(model, x_t, t, cond):
    timestep = torch.tensor(t)
    out = model(x_t, timestep, cond)
    alphas = model.alphas_cumprod.double()
    x0 = (x_t.double() - (1 - alphas[timestep]).sqrt() * out[0].double()) / alphas[timestep].sqrt()
    return x0.to(x_t.dtype)


def _with(formula, alphas=lambda model: model.alphas_cumprod, pair=False, shift=0):
    def one_step_denoise(model, x_t, t, cond):
        eps, variance = model(x_t, t, cond)
        out = formula(alphas(model)[t + shift], x_t, eps)
        return (out, variance) if pair else out
    return one_step_denoise


_right = lambda a, x, e: (x - (1 - a).sqrt() * e) / a.sqrt()   # noqa: E731
WRONG = [
    (_with(lambda a, x, e: (x - (1 - a) * e) / a.sqrt()), "√ is missing on 1 − ᾱ_t"),
    (_with(lambda a, x, e: a.sqrt() * (x - (1 - a).sqrt() * e)), "don't multiply"),
    (_with(_right, shift=-1), "off by one"),
    (_with(_right, alphas=lambda model: default_alphas_cumprod()), "model.alphas_cumprod"),
    (_with(_right, pair=True), "return x̂_0 alone"),
    (_with(lambda a, x, e: (x + (1 - a).sqrt() * e) / a.sqrt()), "the noise is subtracted"),
]
CORRECT = [one_step_denoise_indexing, one_step_denoise_floats, one_step_denoise_tensor_t]
