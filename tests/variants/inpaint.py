"""inpaint (08): RePaint, the CFG loop from pure noise with the known pixels put back after every step."""
import torch

from course_utils.part_a.diffusion import add_jump_variance, forward

EXERCISE = "inpaint"


def inpaint_project_before_each_step(model, im, mask, cond, uncond, scale, timesteps, generator=None):
    """Projects the known pixels before each model call (t), and once more after the last step."""
    ac = model.alphas_cumprod
    x = torch.randn_like(im)   # global RNG
    for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
        x = mask * x + (1 - mask) * forward(im, t, ac)
        e_c, v_c = model(x, t, cond)
        e_u, _ = model(x, t, uncond)
        eps = e_u + scale * (e_c - e_u)
        x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        alpha = ac[t] / ac[t_prev]
        x = ac[t_prev].sqrt() * (1 - alpha) / (1 - ac[t]) * x0 + alpha.sqrt() * (1 - ac[t_prev]) / (1 - ac[t]) * x
        if t_prev > 0:
            x = add_jump_variance(ac, t, t_prev, v_c, x)
    return mask * x + (1 - mask) * im


def inpaint_torch_where(model, im, mask, cond, uncond, scale, timesteps, generator=None):
    """Blends with torch.where, draws the known part's noise before the step's noise."""
    ac = model.alphas_cumprod
    generate = mask.bool().expand_as(im)
    n = im.shape[0]
    x = torch.randn(im.shape, generator=generator)
    for i in range(len(timesteps) - 1):
        t, s = timesteps[i], timesteps[i + 1]
        known = im if s == 0 else forward(im, s, ac, generator=generator)
        eps, var = model(torch.cat([x, x]), t, torch.cat([cond.expand(n, *cond.shape[1:]),
                                                          uncond.expand(n, *uncond.shape[1:])]))
        eps = eps[n:] + scale * (eps[:n] - eps[n:])
        x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        a = ac[t] / ac[s]
        x = ac[s].sqrt() * (1 - a) / (1 - ac[t]) * x0 + a.sqrt() * (1 - ac[s]) / (1 - ac[t]) * x
        if s > 0:
            x = add_jump_variance(ac, t, s, None if var is None else var[:n], x, generator)
        x = torch.where(generate, x, known)
    return x


def inpaint_inline_noise(model, im, mask, cond, uncond, scale, timesteps, generator=None):
    """Writes the forward process and σ out by hand."""
    abar = model.alphas_cumprod
    x = torch.randn(im.shape, generator=generator)
    for t, tp in zip(timesteps, timesteps[1:]):
        ec, vc = model(x, t, cond)
        eu = model(x, t, uncond)[0]
        eps = (1 - scale) * eu + scale * ec
        beta = 1 - abar[t] / abar[tp]
        bt = beta * (1 - abar[tp]) / (1 - abar[t])
        x0 = (x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
        x = abar[tp].sqrt() * beta / (1 - abar[t]) * x0 + (1 - beta).sqrt() * (1 - abar[tp]) / (1 - abar[t]) * x
        if tp > 0:
            sigma = bt.sqrt() if vc is None else torch.exp(0.5 * ((vc + 1) / 2 * beta.log() + (1 - vc) / 2 * bt.log()))
            x = x + sigma * torch.randn(x.shape, generator=generator)
            known = abar[tp].sqrt() * im + (1 - abar[tp]).sqrt() * torch.randn(im.shape, generator=generator)
        else:
            known = im
        x = x * mask + known * (1 - mask)
    return x


def _inpaint(blend=lambda m, x, k: m * x + (1 - m) * k, known_at=lambda im, t, tp, ac, g: forward(im, tp, ac, generator=g),
             end=lambda im, ac, g: im, project=True):
    def inpaint(model, im, mask, cond, uncond, scale, timesteps, generator=None):
        ac = model.alphas_cumprod
        x = torch.randn(im.shape, generator=generator)
        for t, tp in zip(timesteps[:-1], timesteps[1:]):
            e_c, v_c = model(x, t, cond)
            e_u, _ = model(x, t, uncond)
            eps = e_u + scale * (e_c - e_u)
            x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
            a = ac[t] / ac[tp]
            x = ac[tp].sqrt() * (1 - a) / (1 - ac[t]) * x0 + a.sqrt() * (1 - ac[tp]) / (1 - ac[t]) * x
            if tp > 0:
                x = add_jump_variance(ac, t, tp, v_c, x, generator)
            if project:
                x = blend(mask, x, known_at(im, t, tp, ac, generator) if tp > 0 else end(im, ac, generator))
        return x
    return inpaint


WRONG = [
    (_inpaint(blend=lambda m, x, k: (1 - m) * x + m * k), "mask polarity swapped"),
    (_inpaint(known_at=lambda im, t, tp, ac, g: im), "the known part must be noised to t′"),
    (_inpaint(known_at=lambda im, t, tp, ac, g: forward(im, t, ac, generator=g)), "not t"),
    (_inpaint(end=lambda im, ac, g: forward(im, 0, ac, generator=g)), "not forward(im, 0)"),
    (_inpaint(project=False), "m·x_t′ + (1 − m)·forward(im, t′)"),
    (_inpaint(known_at=lambda im, t, tp, ac, g: forward(im, tp, generator=g)), "the model's schedule"),
]
CORRECT = [inpaint_project_before_each_step, inpaint_torch_where, inpaint_inline_noise]
