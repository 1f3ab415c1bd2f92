"""sdedit (07): forward(im, timesteps[i_start]), then the CFG loop from index i_start."""
import torch

from course_utils.part_a.diffusion import add_jump_variance, forward, iterative_denoise_cfg

EXERCISE = "sdedit"


def sdedit_course_loop(model, im, i_start, cond, uncond, scale, timesteps, generator=None):
    """The course's own forward and iterative_denoise_cfg (public, from §1.1 and §1.6)."""
    x_t = forward(im, timesteps[i_start], model.alphas_cumprod, generator=generator)
    return iterative_denoise_cfg(model, x_t, i_start, cond, uncond, scale, timesteps, generator, progress=False)


def sdedit_inline_global_rng(model, im, i_start, cond, uncond, scale, timesteps, generator=None):
    """Everything written out, two passes per step, torch's global RNG throughout."""
    ac = model.alphas_cumprod
    t0 = timesteps[i_start]
    x = ac[t0].sqrt() * im + (1 - ac[t0]).sqrt() * torch.randn_like(im)
    for t, t_prev in zip(timesteps[i_start:-1], timesteps[i_start + 1:]):
        e_c, v_c = model(x, t, cond)
        e_u, _ = model(x, t, uncond)
        eps = e_u + scale * (e_c - e_u)
        x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        alpha = ac[t] / ac[t_prev]
        x = ac[t_prev].sqrt() * (1 - alpha) / (1 - ac[t]) * x0 + alpha.sqrt() * (1 - ac[t_prev]) / (1 - ac[t]) * x
        if t_prev:
            x = add_jump_variance(ac, t, t_prev, v_c, x)
    return x


def sdedit_all_noise_first(model, im, i_start, cond, uncond, scale, timesteps, generator=None):
    """Draws every z up front (the loop's first, the forward process's last) from the generator."""
    ac = model.alphas_cumprod
    steps = list(range(i_start, len(timesteps) - 1))
    zs = [torch.randn(im.shape, generator=generator) for _ in steps]
    start_noise = torch.randn(im.shape, generator=generator)
    x = forward(im, timesteps[i_start], ac, noise=start_noise)
    n = im.shape[0]
    conds = torch.cat([cond.expand(n, *cond.shape[1:]), uncond.expand(n, *uncond.shape[1:])])
    for i, z in zip(steps, zs):
        t, tp = timesteps[i], timesteps[i + 1]
        eps, var = model(torch.cat([x, x]), t, conds)
        eps = eps[n:] + scale * (eps[:n] - eps[n:])
        beta = 1 - ac[t] / ac[tp]
        bt = beta * (1 - ac[tp]) / (1 - ac[t])
        x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        x = ac[tp].sqrt() * beta / (1 - ac[t]) * x0 + (1 - beta).sqrt() * (1 - ac[tp]) / (1 - ac[t]) * x
        if tp > 0:
            f = None if var is None else (var[:n] + 1) / 2
            sigma = bt.sqrt() if f is None else torch.exp(0.5 * (f * beta.log() + (1 - f) * bt.log()))
            x = x + sigma * z
    return x


def _sdedit(start, guided=True, loop_from=lambda i: i):
    def sdedit(model, im, i_start, cond, uncond, scale, timesteps, generator=None):
        x = start(model, im, i_start, timesteps, generator)
        if not guided:
            scale, uncond = 1.0, cond
        return iterative_denoise_cfg(model, x, loop_from(i_start), cond, uncond, scale, timesteps, generator,
                                     progress=False)
    return sdedit


WRONG = [
    (_sdedit(lambda m, im, i, ts, g: im), "SDEdit starts from the clean image"),
    (_sdedit(lambda m, im, i, ts, g: forward(im, i, m.alphas_cumprod, generator=g)), "index into timesteps"),
    (_sdedit(lambda m, im, i, ts, g: forward(im, ts[i], m.alphas_cumprod, generator=g), guided=False),
     "classifier-free guidance ε_u + γ(ε_c − ε_u) is missing"),
    (_sdedit(lambda m, im, i, ts, g: forward(im, ts[i], m.alphas_cumprod, generator=g), loop_from=lambda i: 0),
     "start at index i_start"),
    (_sdedit(lambda m, im, i, ts, g: forward(im, ts[i], generator=g)), "the model's schedule"),
    (_sdedit(lambda m, im, i, ts, g: torch.randn_like(im)), "not to timesteps[0] or pure noise"),
]
CORRECT = [sdedit_course_loop, sdedit_inline_global_rng, sdedit_all_noise_first]
