"""iterative_denoise (04): the strided loop, x̂_0, posterior mean, v_σ on every step but the last."""
import torch

from course_utils.part_a.diffusion import add_jump_variance

EXERCISE = "iterative_denoise"


def iterative_denoise_zip_global_rng(model, im_noisy, i_start, cond, timesteps, generator=None):
    ac = model.alphas_cumprod
    x = im_noisy
    for t, t_next in zip(timesteps[i_start:], timesteps[i_start + 1:]):
        eps_hat, predicted_var = model(x, t, cond)
        alpha_t = ac[t] / ac[t_next]
        x0_hat = (x - torch.sqrt(1 - ac[t]) * eps_hat) / torch.sqrt(ac[t])
        x = (torch.sqrt(ac[t_next]) * (1 - alpha_t) * x0_hat
             + torch.sqrt(alpha_t) * (1 - ac[t_next]) * x) / (1 - ac[t])
        if t_next != 0:
            x = add_jump_variance(model, t, t_next, predicted_var, x)   # global RNG, the model for ᾱ
    return x


def iterative_denoise_noise_first_inline_sigma(model, im_noisy, i_start, cond, timesteps, generator=None):
    """Draws z before calling the model, computes σ itself (learned range) and passes t as a tensor."""
    abar = model.alphas_cumprod
    x = im_noisy.clone()
    i = i_start
    while timesteps[i] != 0:
        t, tp = timesteps[i], timesteps[i + 1]
        z = torch.randn(x.shape, generator=generator)
        eps, v = model(x, torch.tensor(t), cond)
        beta = 1 - abar[t] / abar[tp]
        beta_tilde = beta * (1 - abar[tp]) / (1 - abar[t])
        mean_coef_x0 = abar[tp].sqrt() * beta / (1 - abar[t])
        mean_coef_xt = (1 - beta).sqrt() * (1 - abar[tp]) / (1 - abar[t])
        x0 = (x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
        x = mean_coef_x0 * x0 + mean_coef_xt * x
        if tp > 0:
            if v is None:
                sigma = beta_tilde.sqrt()
            else:
                f = (v + 1) / 2
                sigma = torch.exp(0.5 * (f * torch.log(beta) + (1 - f) * torch.log(beta_tilde)))
            x = x + sigma * z
        i += 1
    return x


def iterative_denoise_eps_coefficients(model, im_noisy, i_start, cond, timesteps, generator=None):
    """The mean written on x_t and ε̂ directly, in float64, the loop over indices."""
    ac = model.alphas_cumprod.double()
    x = im_noisy.double()
    for i in range(i_start, len(timesteps) - 1):
        t, s = timesteps[i], timesteps[i + 1]
        eps, var = model(x.float(), t, cond)
        c_x = (ac[s] / ac[t]).sqrt()
        c_eps = c_x * (1 - ac[t]).sqrt() - (ac[t] / ac[s]).sqrt() * (1 - ac[s]) / (1 - ac[t]).sqrt()
        x = c_x * x - c_eps * eps.double()
        if s:
            x = add_jump_variance(model.alphas_cumprod, t, s, var, x.float(), generator).double()
    return x.float()


def _loop(noise="jump", alpha_prev="jump", x0=None, visit="strided", last_noise=False, returns_x0=False):
    def iterative_denoise(model, im_noisy, i_start, cond, timesteps, generator=None):
        ac = model.alphas_cumprod
        x = im_noisy
        if visit == "strided":
            pairs = list(zip(timesteps[i_start:-1], timesteps[i_start + 1:]))
        elif visit == "i_start_as_t":
            pairs = [(i_start, 0)]
        elif visit == "from_zero":
            pairs = list(zip(timesteps[:-1], timesteps[1:]))
        else:   # every t
            pairs = [(t, t - 1) for t in range(timesteps[i_start], 0, -1)]
        for t, t_prev in pairs:
            eps, var = model(x, t, cond)
            a_t, a_p = ac[t], ac[t_prev]
            alpha = a_t / (ac[t - 1] if alpha_prev == "t-1" else a_p)
            x0_hat = x0(x, eps, a_t) if x0 else (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_p.sqrt() * (1 - alpha) / (1 - a_t) * x0_hat + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x
            if t_prev > 0 or last_noise:
                if noise == "jump":
                    x = add_jump_variance(ac, t, t_prev, var, x)
                elif noise == "fixed":
                    x = add_jump_variance(ac, t, t_prev, None, x)
                elif noise == "single":
                    x = add_jump_variance(ac, t, t - 1, var, x)
                elif noise == "reuse":   # the same z at every step
                    x = add_jump_variance(ac, t, t_prev, var, x, torch.Generator().manual_seed(0))
        return x0_hat if returns_x0 else x
    return iterative_denoise


WRONG = [
    (_loop(noise="none"), "the noise v_σ is missing"),
    (_loop(last_noise=True), "no noise on the last step"),
    (_loop(noise="fixed"), "the model predicts a variance"),
    (_loop(noise="single"), "whole jump t → t′"),
    (_loop(noise="reuse"), "fresh noise"),
    (_loop(alpha_prev="t-1"), "whole jump t → t′"),
    (_loop(x0=lambda x, e, a: (x - (1 - a) * e) / a.sqrt()), "√ is missing on 1 − ᾱ_t"),
    (_loop(returns_x0=True), "this is x̂_0"),
    (_loop(visit="i_start_as_t"), "i_start is an index into timesteps"),
    (_loop(visit="from_zero"), "start at index i_start"),
    (_loop(visit="every_t"), "walk the strided timesteps"),
]
CORRECT = [iterative_denoise_zip_global_rng, iterative_denoise_noise_first_inline_sigma,
           iterative_denoise_eps_coefficients]
