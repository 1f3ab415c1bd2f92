"""forward (01): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
import math

import torch

from course_utils.part_a.diffusion import default_alphas_cumprod

EXERCISE = "forward"


def forward_global_rng(im, t, alphas_cumprod=None, noise=None, generator=None):
    ac = alphas_cumprod if alphas_cumprod is not None else default_alphas_cumprod()
    eps = torch.randn_like(im) if noise is None else noise     # torch's global RNG, generator ignored
    return ac[t].sqrt() * im + (1 - ac[t]).sqrt() * eps


def forward_python_floats(im, t, alphas_cumprod=None, noise=None, generator=None):
    abar = float((default_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod)[int(t)])
    if noise is None:
        noise = torch.empty_like(im).normal_(generator=generator)
    return math.sqrt(abar) * im + math.sqrt(1.0 - abar) * noise


def forward_torch_normal(im, t, alphas_cumprod=None, noise=None, generator=None):
    if alphas_cumprod is None:
        alphas_cumprod = default_alphas_cumprod()
    signal = alphas_cumprod[t] ** 0.5
    spread = (1 - alphas_cumprod[t]) ** 0.5
    eps = noise
    if eps is None:
        eps = torch.normal(torch.zeros(im.shape), torch.ones(im.shape), generator=generator).to(im)
    return torch.lerp(torch.zeros_like(im), im, 1.0) * signal + spread * eps


def _forward_with(mix, draw=lambda im: torch.randn_like(im), shift=0):
    def forward(im, t, alphas_cumprod=None, noise=None, generator=None):
        a = (default_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod)[t + shift]
        return mix(a, im, draw(im) if noise is None else noise)
    return forward


WRONG = [
    (_forward_with(lambda a, x, e: a * x + (1 - a) * e), "√ is missing on ᾱ_t and on 1 − ᾱ_t"),
    (_forward_with(lambda a, x, e: (1 - a).sqrt() * x + a.sqrt() * e), "swapped"),
    (_forward_with(lambda a, x, e: a.sqrt() * x + (1 - a).sqrt() * e, shift=-1), "alphas_cumprod[t - 1]"),
    (_forward_with(lambda a, x, e: a.sqrt() * x + (1 - a).sqrt() * e, draw=torch.rand_like),
     "torch.randn (normal), not torch.rand"),
    (_forward_with(lambda a, x, e: a.sqrt() * x + (1 - a).sqrt() * e, draw=lambda im: torch.zeros_like(im)),
     "draw ε ~ N(0, I) yourself"),
    (lambda im, t, alphas_cumprod=None, noise=None, generator=None:
     _forward_with(lambda a, x, e: a.sqrt() * x + (1 - a).sqrt() * e)(im, t, None, noise, generator),
     "alphas_cumprod is ignored"),
]
CORRECT = [forward_global_rng, forward_python_floats, forward_torch_normal]
