"""Alternative implementations of notebook 19's `ddpm_schedule` (DDPM's linear β schedule)."""
import torch

EXERCISE = "ddpm_schedule"


def arange_and_exp_log(T=300, beta_start=1e-4, beta_end=0.02):
    # β from an arange, ᾱ as exp(Σ log α)
    steps = torch.arange(T, dtype=torch.float32) / (T - 1)
    betas = beta_start + (beta_end - beta_start) * steps
    alphas = 1.0 - betas
    return betas, alphas, torch.exp(torch.cumsum(torch.log(alphas), dim=0))


def python_loop_as_list(T=300, beta_start=1e-4, beta_end=0.02):
    # plain Python floats, a running product, a list returned
    step = (beta_end - beta_start) / (T - 1)
    b, a, ab, prod = [], [], [], 1.0
    for t in range(T):
        beta = beta_start + t * step
        prod *= 1 - beta
        b.append(beta)
        a.append(1 - beta)
        ab.append(prod)
    return [torch.tensor(b), torch.tensor(a), torch.tensor(ab)]


def float64_then_float32(T=300, beta_start=1e-4, beta_end=0.02):
    # computed in float64 from the end points, cast back at the end
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    alphas_cumprod = torch.ones(T, dtype=torch.float64)
    alphas_cumprod[0] = 1 - betas[0]
    for t in range(1, T):
        alphas_cumprod[t] = alphas_cumprod[t - 1] * (1 - betas[t])
    return betas.float(), (1 - betas).float(), alphas_cumprod.float()


CORRECT = [arange_and_exp_log, python_loop_as_list, float64_then_float32]


def schedule_with(bug):
    def ddpm_schedule(T=300, beta_start=1e-4, beta_end=0.02):
        if bug == "defaults":
            T, beta_start, beta_end = 300, 1e-4, 0.02
        betas = torch.linspace(beta_start, beta_end, T + 1 if bug == "T + 1" else T)
        alphas = 1 - betas
        if bug == "cumsum":
            alphas_cumprod = torch.cumsum(alphas, 0)
        elif bug == "1 - beta":
            alphas_cumprod = 1 - betas
        elif bug == "shifted":
            alphas_cumprod = torch.cat([torch.ones(1), torch.cumprod(alphas, 0)[:-1]])
        elif bug == "cumprod betas":
            alphas_cumprod = torch.cumprod(betas, 0)
        else:
            alphas_cumprod = torch.cumprod(alphas, 0)
        if bug == "alpha swapped":
            return betas, alphas_cumprod, alphas
        if bug == "order":
            return alphas_cumprod, alphas, betas
        return betas, alphas, alphas_cumprod
    return ddpm_schedule


WRONG = [
    (schedule_with("T + 1"), "T + 1 values"),
    (schedule_with("cumsum"), "not the sum (torch.cumsum)"),
    (schedule_with("1 - beta"), "not α_t = 1 − β_t itself"),
    (schedule_with("alpha swapped"), "α and ᾱ swapped"),
    (schedule_with("order"), "returned in another order"),
    (schedule_with("shifted"), "ᾱ_0 = α_0 = 1 − β_0, not 1"),
    (schedule_with("cumprod betas"), "not of β_t"),
    (schedule_with("defaults"), "use the arguments"),
]
