"""Alternative implementations of notebook 17's `euler_sample_cfg` (algorithm B.4)."""
import torch

EXERCISE = "euler_sample_cfg"


def one_batched_pass(model, c, x0, num_steps, guidance):
    x, B = x0, x0.shape[0]
    both_c = torch.cat([c, torch.zeros_like(c)])
    for i in range(num_steps):
        t = torch.full((2 * B,), i / num_steps)
        u_cond, u_uncond = model(torch.cat([x, x]), t, both_c).chunk(2)
        x = x + (u_uncond + guidance * (u_cond - u_uncond)) / num_steps
    return x


def separate_passes_rearranged(model, c, x0, num_steps, guidance):
    # the unconditional pass first, t of shape (B, 1, 1, 1), γ's formula rearranged
    x, dt = x0, 1 / num_steps
    empty = c * 0
    for i in range(num_steps):
        t = torch.full((x.shape[0], 1, 1, 1), i * dt)
        uncond = model(x, t, empty)
        cond = model(x, t, c)
        x = x + dt * (guidance * cond + (1 - guidance) * uncond)
    return x


def unconditional_half_first(net, classes, noise, T, scale):
    # other names; one batched pass with the zero rows first, t a (2B, 1) column
    sample, n = noise, noise.shape[0]
    rows = torch.cat([torch.zeros_like(classes), classes])
    for t in torch.arange(T) / T:
        out = net(sample.repeat(2, 1, 1, 1), t.repeat(2 * n, 1), rows)
        u_uncond, u_cond = out[:n], out[n:]
        sample = sample + (u_uncond + scale * (u_cond - u_uncond)) / T
    return sample


CORRECT = [one_batched_pass, separate_passes_rearranged, unconditional_half_first]


def cfg_with(bug):
    def euler_sample_cfg(model, c, x0, num_steps, guidance):
        x, B = x0, x0.shape[0]
        uncond = torch.zeros_like(c)
        if bug == "class 0":
            uncond[:, 0] = 1.0
        for i in range(num_steps):
            t = torch.full((B,), i / num_steps)
            if bug == "no t":
                u_cond, u_uncond = model(x, c), model(x, uncond)
            elif bug == "None":
                u_cond, u_uncond = model(x, t, c), model(x, t)
            else:
                u_cond, u_uncond = model(x, t, c), model(x, t, uncond)
            u = {"from cond": u_cond + guidance * (u_cond - u_uncond),
                 "backwards": u_uncond + guidance * (u_uncond - u_cond),
                 "swapped": u_cond + guidance * (u_uncond - u_cond)}.get(bug, u_uncond + guidance * (u_cond - u_uncond))
            if bug == "in place":
                x += u / num_steps
            elif bug == "no dt":
                x = x + u
            else:
                x = x + u / num_steps
        return x
    return euler_sample_cfg


WRONG = [
    (cfg_with("from cond"), "start from the unconditional velocity"),
    (cfg_with("backwards"), "the difference points from the unconditional to the conditional velocity"),
    (cfg_with("swapped"), "u_cond and u_uncond are swapped"),
    (cfg_with("class 0"), "not class 0's one-hot row"),
    (cfg_with("no t"), "without t"),
    (cfg_with("None"), "called without c"),
    (cfg_with("in place"), "x0 was changed in place"),
    (cfg_with("no dt"), "multiply the velocity by the step size"),
]
