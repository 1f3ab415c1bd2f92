"""Alternative implementations of notebook 19's `ddpm_loss` (Ho et al.'s L_simple, ε-prediction)."""
import torch
import torch.nn.functional as F

EXERCISE = "ddpm_loss"


def noise_first_global_rng_image_shaped_t(model, x0, alphas_cumprod, generator=None):
    # ε before t, torch's global RNG, t drawn as (B, 1, 1, 1) and fed to the model so
    T = alphas_cumprod.shape[0]
    eps = torch.randn_like(x0)
    t = torch.randint(0, T, (x0.shape[0], 1, 1, 1), device=x0.device)
    abar = alphas_cumprod[t]
    noisy = torch.sqrt(abar) * x0 + torch.sqrt(1 - abar) * eps
    return ((model(noisy, t.float() / T) - eps) ** 2).mean()


def floor_of_uniform_column_t(model, images, schedule, generator=None):
    # other names; t = ⌊T u⌋ with u ~ U[0, 1) (uniform integers too), fed as a (B, 1) column
    T = len(schedule)
    B = images.shape[0]
    u = torch.rand(B, generator=generator, device=images.device)
    steps = (u * T).long().clamp(max=T - 1)
    noise = torch.randn(images.shape, generator=generator, device=images.device)
    signal = schedule.index_select(0, steps).view(B, 1, 1, 1)
    x_t = signal.sqrt() * images + (1 - signal).sqrt() * noise
    predicted = model(x_t, (steps.to(images.dtype) / T).unsqueeze(1))
    return F.mse_loss(noise, predicted)


def per_image_stack(model, x0, alphas_cumprod, generator=None):
    # the noisy images built one by one, the loss as a sum divided by the count
    T = len(alphas_cumprod)
    t = torch.randint(T, (len(x0),), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device)
    xt = torch.stack([alphas_cumprod[k].sqrt() * img + (1 - alphas_cumprod[k]).sqrt() * e
                      for k, img, e in zip(t.tolist(), x0, eps)])
    diff = eps - model(xt, t / T)
    return (diff * diff).sum() / diff.numel()


CORRECT = [noise_first_global_rng_image_shaped_t, floor_of_uniform_column_t, per_image_stack]


def loss_with(bug):
    def ddpm_loss(model, x0, alphas_cumprod, generator=None):
        T, B = len(alphas_cumprod), x0.shape[0]
        if bug == "one t":
            t = torch.randint(0, T, (1,), generator=generator).expand(B)
        elif bug == "1..T":
            t = torch.randint(1, T + 1, (B,), generator=generator)
        else:
            t = torch.randint(0, T, (B,), generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        alphas = alphas_cumprod / torch.cat([torch.ones(1), alphas_cumprod[:-1]])
        if bug == "1..T":
            a = alphas_cumprod[t - 1]
        elif bug == "alpha":
            a = alphas[t]
        elif bug == "beta":
            a = (1 - alphas)[t]
        else:
            a = alphas_cumprod[t]
        a = a.reshape(-1, 1, 1, 1)
        if bug == "no sqrt":
            x_t = a * x0 + (1 - a) * eps
        else:
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        s = {"integer t": t.float(), "300": t / 300}.get(bug, t / T)
        if bug == "continuous":
            s = t / T + torch.rand(B, generator=generator) / T
        pred = model(x_t, s)
        loss = F.mse_loss(pred, x0 if bug == "target x0" else eps)
        return loss.item() if bug == "item" else loss
    return ddpm_loss


WRONG = [
    (loss_with("integer t"), "not the integer step t"),
    (loss_with("no sqrt"), "√ is missing on ᾱ_t and on 1 − ᾱ_t"),
    (loss_with("alpha"), "not this step's α_t"),
    (loss_with("beta"), "not β_t"),
    (loss_with("target x0"), "not the clean x0"),
    (loss_with("1..T"), "not 1 … T"),
    (loss_with("continuous"), "not a continuous time"),
    (loss_with("one t"), "not one for the whole batch"),
    (loss_with("item"), "not .item()"),
    (loss_with("300"), "not 300"),
]
