"""iterative_denoise_cfg (06): the §1.4 loop with ε̂ = ε_u + γ(ε_c − ε_u), variance from the conditional pass."""
import torch

from course_utils.part_a.diffusion import add_jump_variance

EXERCISE = "iterative_denoise_cfg"


def iterative_denoise_cfg_two_passes(model, im_noisy, i_start, cond, uncond, scale, timesteps, generator=None):
    """Two separate model calls per step (unconditional first), torch's global RNG."""
    ac = model.alphas_cumprod
    x = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, t_prev = timesteps[i], timesteps[i + 1]
        eps_u, _ = model(x, t, uncond)
        eps_c, var_c = model(x, t, cond)
        eps = eps_u + scale * (eps_c - eps_u)
        x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        alpha = ac[t] / ac[t_prev]
        x = ac[t_prev].sqrt() * (1 - alpha) / (1 - ac[t]) * x0 + alpha.sqrt() * (1 - ac[t_prev]) / (1 - ac[t]) * x
        if t_prev > 0:
            x = add_jump_variance(ac, t, t_prev, var_c, x)
    return x


def iterative_denoise_cfg_batched_uncond_first(model, im_noisy, i_start, cond, uncond, scale, timesteps,
                                               generator=None):
    """One pass on cat([x, x]) with the empty prompt in the first half; zip over the timesteps."""
    abar = model.alphas_cumprod
    b = im_noisy.shape[0]
    both = torch.cat([uncond.expand(b, *uncond.shape[1:]), cond.expand(b, *cond.shape[1:])])
    x = im_noisy
    for t, s in zip(timesteps[i_start:-1], timesteps[i_start + 1:]):
        out, v = model(torch.cat([x, x]), t, both)
        e_u, e_c = out[:b], out[b:]
        guided = e_u + scale * (e_c - e_u)
        x0 = (x - torch.sqrt(1 - abar[t]) * guided) / torch.sqrt(abar[t])
        a = abar[t] / abar[s]
        mean = torch.sqrt(abar[s]) * (1 - a) / (1 - abar[t]) * x0 + torch.sqrt(a) * (1 - abar[s]) / (1 - abar[t]) * x
        x = add_jump_variance(abar, t, s, None if v is None else v[b:], mean, generator) if s > 0 else mean
    return x


def iterative_denoise_cfg_noise_first(model, im_noisy, i_start, cond, uncond, scale, timesteps, generator=None):
    """Draws z first, computes σ itself, and writes CFG as (1 − γ) ε_u + γ ε_c."""
    ac = model.alphas_cumprod
    x = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, tp = timesteps[i], timesteps[i + 1]
        z = torch.randn(x.shape, generator=generator)
        (ec, vc), (eu, vu) = model(x, t, cond), model(x, t, uncond)
        eps = (1 - scale) * eu + scale * ec
        beta = 1 - ac[t] / ac[tp]
        bt = beta * (1 - ac[tp]) / (1 - ac[t])
        x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        x = ac[tp].sqrt() * beta / (1 - ac[t]) * x0 + (1 - beta).sqrt() * (1 - ac[tp]) / (1 - ac[t]) * x
        if tp > 0:
            log_var = bt.log() if vc is None else (vc + 1) / 2 * beta.log() + (1 - vc) / 2 * bt.log()
            x = x + (0.5 * log_var).exp() * z
    return x


def _loop(guide=lambda c, u, s: u + s * (c - u), variance="cond", expand=True, noise=True):
    def iterative_denoise_cfg(model, im_noisy, i_start, cond, uncond, scale, timesteps, generator=None):
        ac = model.alphas_cumprod
        x, n = im_noisy, im_noisy.shape[0]
        for t, t_prev in zip(timesteps[i_start:-1], timesteps[i_start + 1:]):
            conds = (torch.cat([cond.expand(n, *cond.shape[1:]), uncond.expand(n, *uncond.shape[1:])]) if expand
                     else torch.cat([cond, uncond]))
            eps, var = model(torch.cat([x, x]), t, conds)
            (e_c, e_u), (v_c, v_u) = eps.chunk(2), (var.chunk(2) if var is not None else (None, None))
            eps = guide(e_c, e_u, scale)
            v = {"cond": v_c, "uncond": v_u, "guided": None if var is None else guide(v_c, v_u, scale)}[variance]
            a_t, a_p = ac[t], ac[t_prev]
            alpha = a_t / a_p
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_p.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x
            if t_prev > 0 and noise:
                x = add_jump_variance(ac, t, t_prev, v, x, generator)
        return x
    return iterative_denoise_cfg


WRONG = [
    (_loop(guide=lambda c, u, s: c + s * (u - c)), "guidance the wrong way round"),
    (_loop(guide=lambda c, u, s: c), "classifier-free guidance ε_u + γ(ε_c − ε_u) is missing"),
    (_loop(variance="uncond"), "take the variance from the conditional pass"),
    (_loop(variance="guided"), "guidance applies to ε̂ only"),
    (_loop(expand=False), "expand both conditions to the batch of x_t"),
    (_loop(noise=False), "the noise v_σ is missing"),
]
CORRECT = [iterative_denoise_cfg_two_passes, iterative_denoise_cfg_batched_uncond_first,
           iterative_denoise_cfg_noise_first]
