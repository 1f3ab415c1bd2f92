"""Alternative implementations of notebook 19's `ddpm_sample_cfg` (DDPM sampling with CFG on ε)."""
import torch

EXERCISE = "ddpm_sample_cfg"


def one_batched_pass_unconditional_first(model, c, x_T, alphas_cumprod, guidance, generator=None):
    # both estimates from one pass, the zero rows first, t as (2B,)
    T, B = len(alphas_cumprod), x_T.shape[0]
    rows = torch.cat([torch.zeros_like(c), c])
    x = x_T
    for t in range(T - 1, -1, -1):
        out = model(torch.cat([x, x]), torch.full((2 * B,), t / T, device=x.device), rows)
        eps_u, eps_c = out[:B], out[B:]
        eps = eps_u + guidance * (eps_c - eps_u)
        a = alphas_cumprod[t]
        a_prev = alphas_cumprod[t - 1] if t else torch.ones(())
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        alpha = a / a_prev
        mean = (a_prev.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - a_prev) * x) / (1 - a)
        if t:
            z = torch.randn(x.shape, generator=generator).to(x.device)
            mean = mean + ((1 - alpha) * (1 - a_prev) / (1 - a)).sqrt() * z
        x = mean
    return x


def separate_passes_rearranged_global_rng(model, c, x_T, alphas_cumprod, guidance, generator=None):
    # the unconditional pass first, γ ε_c + (1 − γ) ε_u, Ho et al.'s mean on ε̂, torch's global RNG
    T = len(alphas_cumprod)
    empty = c * 0
    x = x_T
    for t in reversed(range(T)):
        s = torch.full((x.shape[0], 1, 1, 1), t / T, device=x.device)
        e_u = model(x, s, empty)
        e_c = model(x, s, c)
        eps = guidance * e_c + (1 - guidance) * e_u
        abar = alphas_cumprod[t]
        abar_prev = alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
        alpha = abar / abar_prev
        x_new = (x - (1 - alpha) / (1 - abar).sqrt() * eps) / alpha.sqrt()
        if t > 0:
            x_new = x_new + ((1 - alpha) * (1 - abar_prev) / (1 - abar)).sqrt() * torch.randn_like(x)
        x = x_new
    return x


def batched_column_t_float64(net, classes, noise, abar, scale, generator=None):
    # other names, one pass with t as a (2B, 1) column, the arithmetic in float64
    T, n = abar.numel(), noise.shape[0]
    ab = torch.cat([abar.double(), torch.ones(1, dtype=torch.float64, device=abar.device)])
    rows = torch.cat([classes, torch.zeros_like(classes)])
    x = noise.double()
    for t in range(T - 1, -1, -1):
        both = net(x.float().repeat(2, 1, 1, 1), torch.full((2 * n, 1), t / T, device=x.device), rows).double()
        cond, uncond = both.chunk(2)
        e = uncond + scale * (cond - uncond)
        a, ap = ab[t], ab[t - 1]
        x0 = (x - (1 - a).sqrt() * e) / a.sqrt()
        x = ap.sqrt() * (1 - a / ap) / (1 - a) * x0 + (a / ap).sqrt() * (1 - ap) / (1 - a) * x
        if t > 0:
            x = x + ((1 - a / ap) * (1 - ap) / (1 - a)).sqrt() * torch.randn(x.shape, generator=generator,
                                                                           dtype=torch.float64).to(x.device)
    return x.float()


CORRECT = [one_batched_pass_unconditional_first, separate_passes_rearranged_global_rng, batched_column_t_float64]


def cfg_with(bug):
    def ddpm_sample_cfg(model, c, x_T, alphas_cumprod, guidance, generator=None):
        T = len(alphas_cumprod)
        uncond = torch.zeros_like(c)
        if bug == "class 0":
            uncond[:, 0] = 1.0
        if bug == "not zeroed":
            uncond = c
        x = x_T
        for t in range(T - 1, 0 if bug == "stops at 1" else -1, -1):
            s = torch.full((x.shape[0],), float(t) if bug == "integer t" else t / T)
            e_c, e_u = model(x, s, c), model(x, s, uncond)
            eps = {"from cond": e_c + guidance * (e_c - e_u),
                   "swapped": e_c + guidance * (e_u - e_c),
                   "gamma on eps_c": e_u + guidance * e_c}.get(bug, e_u + guidance * (e_c - e_u))
            a_t = alphas_cumprod[t]
            a_prev = alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
            alpha = a_t / a_prev
            beta = 1 - alpha
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
            if bug == "no noise" or (t == 0 and bug != "beta at last"):
                x = mean
            else:
                var = beta if bug == "beta at last" else beta * (1 - a_prev) / (1 - a_t)
                x = mean + var.sqrt() * torch.randn(x.shape, generator=generator)
        return x
    return ddpm_sample_cfg


WRONG = [
    (cfg_with("from cond"), "start from the unconditional estimate"),
    (cfg_with("swapped"), "guidance the wrong way round"),
    (cfg_with("gamma on eps_c"), "not ε̂_c alone"),
    (cfg_with("not zeroed"), "not c itself"),
    (cfg_with("class 0"), "not class 0's one-hot row"),
    (cfg_with("no noise"), "the noise is missing"),
    (cfg_with("beta at last"), "no noise at the last step"),
    (cfg_with("stops at 1"), "stops before t = 0"),
    (cfg_with("integer t"), "not the integer step t"),
]
