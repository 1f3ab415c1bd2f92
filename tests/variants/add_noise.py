"""Alternative implementations of notebook 13's `add_noise` (z = x + σ ε, §1.2)."""
import torch

EXERCISE = "add_noise"


def add_noise_randn_like(x, sigma, noise=None, generator=None):
    # torch's global RNG (randn_like ignores the generator): the noise is still N(0, I)
    if noise is None:
        noise = torch.randn_like(x)
    return x + sigma * noise


def add_noise_torch_add(x, sigma, noise=None, generator=None):
    eps = noise
    if eps is None:
        eps = torch.normal(0.0, 1.0, size=tuple(x.shape), generator=generator)
    return torch.add(x, eps, alpha=sigma)


def add_noise_other_names(images, noise_level, noise=None, generator=None):
    if noise is not None:
        epsilon = noise
    else:
        epsilon = torch.empty_like(images).normal_(generator=generator)
    noisy = images.clone()
    noisy += noise_level * epsilon          # in place, but on a copy
    return noisy


def add_noise_per_image(x, sigma, noise=None, generator=None):
    # one image at a time, stacked back
    if noise is None:
        noise = torch.stack([torch.randn(x.shape[1:], generator=generator) for _ in range(x.shape[0])])
    return torch.stack([x[i] + sigma * noise[i] for i in range(x.shape[0])])


CORRECT = [add_noise_randn_like, add_noise_torch_add, add_noise_other_names, add_noise_per_image]


def sigma_squared(x, sigma, noise=None, generator=None):
    noise = torch.randn(x.shape, generator=generator) if noise is None else noise
    return x + sigma ** 2 * noise


def uniform_noise(x, sigma, noise=None, generator=None):
    noise = torch.rand(x.shape, generator=generator) if noise is None else noise
    return x + sigma * noise


def uniform_noise_always(x, sigma, noise=None, generator=None):
    return x + sigma * torch.rand(x.shape, generator=generator)


def same_noise_every_image(x, sigma, noise=None, generator=None):
    noise = torch.randn(x.shape[1:], generator=generator) if noise is None else noise
    return x + sigma * noise


def one_number_per_image(x, sigma, noise=None, generator=None):
    noise = torch.randn(x.shape[0], 1, 1, 1, generator=generator) if noise is None else noise
    return x + sigma * noise


def ignores_the_noise_passed_in(x, sigma, noise=None, generator=None):
    return x + sigma * torch.randn(x.shape, generator=generator)


def in_place(x, sigma, noise=None, generator=None):
    noise = torch.randn(x.shape, generator=generator) if noise is None else noise
    x += sigma * noise
    return x


def scales_the_image(x, sigma, noise=None, generator=None):
    noise = torch.randn(x.shape, generator=generator) if noise is None else noise
    return sigma * x + noise


def reseeds(x, sigma, noise=None, generator=None):
    if noise is None:
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    return x + sigma * noise


WRONG = [
    (sigma_squared, "not σ²"),
    (uniform_noise, "not a uniform one (torch.rand)"),
    (uniform_noise_always, "when noise is given, use it"),
    (same_noise_every_image, "an independent noise image for every digit"),
    (one_number_per_image, "one independent normal number per pixel"),
    (ignores_the_noise_passed_in, "when noise is given, use it"),
    (in_place, "x was changed in place"),
    (scales_the_image, "σ scales the noise, not the image"),
    (reseeds, "draw a fresh ε on every call"),
]
