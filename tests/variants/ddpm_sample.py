"""Alternative implementations of notebook 19's `ddpm_sample` (DDPM's ancestral sampling)."""
import torch

EXERCISE = "ddpm_sample"


def precomputed_coefficients_global_rng(model, x_T, alphas_cumprod, generator=None):
    # every coefficient computed up front (as diffusers does), torch's global RNG, t fed as (B, 1, 1, 1)
    T = len(alphas_cumprod)
    prev = torch.cat([torch.ones(1, dtype=alphas_cumprod.dtype, device=alphas_cumprod.device), alphas_cumprod[:-1]])
    alphas = alphas_cumprod / prev
    betas = 1 - alphas
    coef_x0 = prev.sqrt() * betas / (1 - alphas_cumprod)
    coef_xt = alphas.sqrt() * (1 - prev) / (1 - alphas_cumprod)
    variance = betas * (1 - prev) / (1 - alphas_cumprod)
    x = x_T.clone()
    for t in reversed(range(T)):
        eps = model(x, torch.full((x.shape[0], 1, 1, 1), t / T, device=x.device))
        x0_hat = (x - (1 - alphas_cumprod[t]).sqrt() * eps) / alphas_cumprod[t].sqrt()
        x = coef_x0[t] * x0_hat + coef_xt[t] * x
        if t > 0:
            x = x + variance[t].sqrt() * torch.randn_like(x)
    return x


def hos_algorithm_2_noise_first(model, x_T, alphas_cumprod, generator=None):
    # the mean written on ε̂ (Ho et al.'s Algorithm 2): (x − β/√(1 − ᾱ_t) ε̂)/√α; z drawn before the model call
    T = len(alphas_cumprod)
    x = x_T
    for t in range(T - 1, -1, -1):
        z = torch.randn(x.shape, generator=generator).to(x.device) if t > 0 else torch.zeros_like(x)
        abar = alphas_cumprod[t]
        abar_prev = alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
        alpha = abar / abar_prev
        eps = model(x, torch.tensor([t / T] * x.shape[0], device=x.device))
        mean = (x - (1 - alpha) / (1 - abar).sqrt() * eps) / alpha.sqrt()
        sigma = ((1 - alpha) * (1 - abar_prev) / (1 - abar)).sqrt()
        x = mean + sigma * z
    return x


def while_loop_float64_column_t(net, noise, abar, generator=None):
    # other names, a while loop, the arithmetic in float64, t as a (B, 1) column
    T = abar.numel()
    abar = torch.cat([abar.double(), torch.ones(1, dtype=torch.float64, device=abar.device)])   # abar[-1] = ᾱ_(−1) = 1
    x = noise.double()
    t = T - 1
    while t >= 0:
        e = net(x.float(), torch.full((x.shape[0], 1), t / T, device=x.device)).double()
        a, ap = abar[t], abar[t - 1]
        x0 = (x - torch.sqrt(1 - a) * e) / torch.sqrt(a)
        mu = (torch.sqrt(ap) * (1 - a / ap) * x0 + torch.sqrt(a / ap) * (1 - ap) * x) / (1 - a)
        if t == 0:
            x = mu
        else:
            var = (1 - a / ap) * (1 - ap) / (1 - a)
            x = mu + torch.sqrt(var) * torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.device)
        t -= 1
    return x.float()


CORRECT = [precomputed_coefficients_global_rng, hos_algorithm_2_noise_first, while_loop_float64_column_t]


def sampler_with(bug):
    def ddpm_sample(model, x_T, alphas_cumprod, generator=None):
        T = len(alphas_cumprod)
        x = x_T
        steps = {"from T": range(T, 0, -1), "stops at 1": range(T - 1, 0, -1)}.get(bug, range(T - 1, -1, -1))
        for t in steps:
            k = t - 1 if bug == "from T" else t      # the index into alphas_cumprod
            a_t = alphas_cumprod[k]
            if bug == "wraps":
                a_prev = alphas_cumprod[k - 1]
            else:
                a_prev = alphas_cumprod[k - 1] if k > 0 else torch.tensor(1.0)
            eps = model(x, torch.full((x.shape[0],), float(t) if bug == "integer t" else t / T))
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            alpha = a_t if bug == "confused" else a_t / a_prev
            beta = 1 - alpha
            mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x
            if bug == "x0 hat":
                mean = x0
            var = beta if bug in ("beta", "beta at last") else beta * (1 - a_prev) / (1 - a_t)
            noise = torch.randn(x.shape, generator=generator)
            if bug == "no noise" or (k == 0 and bug != "beta at last"):
                x = mean
            else:
                x = mean + var.sqrt() * noise
            if bug == "in place":
                x_T.copy_(x)
                x = x_T
        return x
    return ddpm_sample


WRONG = [
    (sampler_with("integer t"), "not the integer step t"),
    (sampler_with("no noise"), "the noise is missing"),
    (sampler_with("beta at last"), "no noise at the last step"),
    (sampler_with("beta"), "Ho et al.'s other choice"),
    (sampler_with("confused"), "β and ᾱ confused"),
    (sampler_with("from T"), "it fed t = T first"),
    (sampler_with("stops at 1"), "stops before t = 0"),
    (sampler_with("x0 hat"), "x̂0 at every step"),
    (sampler_with("wraps"), "not alphas_cumprod[−1]"),
    (sampler_with("in place"), "changes the caller's tensor"),
]
