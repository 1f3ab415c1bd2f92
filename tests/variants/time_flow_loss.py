"""Alternative implementations of notebook 16's `time_flow_loss` (algorithm B.1)."""
import torch
import torch.nn.functional as F

EXERCISE = "time_flow_loss"


def t_before_x0(model, x1, generator=None):
    B = x1.shape[0]
    t = torch.rand(B, generator=generator)
    x0 = torch.randn(x1.shape, generator=generator)
    tt = t[:, None, None, None]
    return F.mse_loss(model(tt * x1 + (1 - tt) * x0, t), x1 - x0)


def global_rng_t_as_image_shape(model, x1, generator=None):
    # torch's global RNG; t of shape (B, 1, 1, 1), fed to the model as it is
    x0 = torch.randn_like(x1)
    t = torch.rand(x1.shape[0], 1, 1, 1)
    x_t = x0 + t * (x1 - x0)
    velocity = x1 - x0
    return ((model(x_t, t) - velocity) ** 2).mean()


def column_t_and_stack(model, data, generator=None):
    # other names, t as a (B, 1) column, the path built image by image
    noise = torch.randn(data.shape, generator=generator)
    times = torch.rand(data.shape[0], 1, generator=generator)
    path = torch.stack([(1 - times[i]) * noise[i] + times[i] * data[i] for i in range(data.shape[0])])
    predicted = model(path, times)
    return F.mse_loss(data - noise, predicted, reduction="mean")


CORRECT = [t_before_x0, global_rng_t_as_image_shape, column_t_and_stack]


def loss_with(bug):
    def time_flow_loss(model, x1, generator=None):
        B = x1.shape[0]
        x0 = (torch.rand if bug == "uniform x0" else torch.randn)(x1.shape, generator=generator)
        if bug == "normal t":
            t = torch.randn(B, generator=generator)
        else:
            t = torch.rand(1 if bug == "one t" else B, generator=generator)
        tb = t if bug == "not reshaped" else t.reshape(-1, 1, 1, 1)
        xt = (1 - tb) * x1 + tb * x0 if bug == "swapped" else (1 - tb) * x0 + tb * x1
        if bug == "fed x1":
            xt = x1
        target = {"sign": x0 - x1, "data": x1}.get(bug, x1 - x0)
        u = model(xt, t)
        if bug == "sum":
            return ((u - target) ** 2).sum()
        loss = F.mse_loss(u, target)
        return loss.item() if bug == "item" else loss
    return time_flow_loss


WRONG = [
    (loss_with("sign"), "not x0 − x1"),
    (loss_with("data"), "not the data x1"),
    (loss_with("swapped"), "x0 and x1 swapped"),
    (loss_with("normal t"), "not a normal one (torch.randn)"),
    (loss_with("one t"), "draw one t per image"),
    (loss_with("not reshaped"), "it needs shape (B, 1, 1, 1)"),
    (loss_with("uniform x0"), "not a uniform one (torch.rand)"),
    (loss_with("fed x1"), "not the data x1"),
    (loss_with("sum"), "do not sum it"),
    (loss_with("item"), "not .item()"),
]
