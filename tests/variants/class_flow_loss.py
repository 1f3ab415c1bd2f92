"""Alternative implementations of notebook 17's `class_flow_loss` (algorithm B.3)."""
import torch
import torch.nn.functional as F

EXERCISE = "class_flow_loss"


def mask_first_bernoulli(model, x1, y, generator=None, p_uncond=0.1):
    # the dropout first, then t, then x0, all from the generator
    B = x1.shape[0]
    keep = torch.bernoulli(torch.full((B, 1), 1 - p_uncond), generator=generator)
    t = torch.rand(B, generator=generator)
    x0 = torch.randn(x1.shape, generator=generator)
    c = F.one_hot(y, num_classes=10).float() * keep
    tb = t.view(B, 1, 1, 1)
    return F.mse_loss(model((1 - tb) * x0 + tb * x1, t, c), x1 - x0)


def global_rng(model, x1, y, generator=None, p_uncond=0.1):
    # torch's global RNG; t of shape (B, 1, 1, 1) fed as it is
    x0 = torch.randn_like(x1)
    t = torch.rand_like(x1[:, :1, :1, :1])
    c = F.one_hot(y, 10).to(x1.dtype)
    c = torch.where(torch.rand(len(y), 1) < p_uncond, torch.zeros_like(c), c)
    x_t = t * x1 + (1 - t) * x0
    return ((model(x_t, t, c) - (x1 - x0)) ** 2).mean()


def rows_one_by_one(model, images, labels, generator=None, p_uncond=0.1):
    # other names; c built row by row with torch.stack; t as a (B, 1) column
    B = images.shape[0]
    noise = torch.randn(images.shape, generator=generator)
    times = torch.rand(B, 1, generator=generator)
    coins = torch.rand(B, generator=generator)
    rows = []
    for label, coin in zip(labels.tolist(), coins.tolist()):
        row = torch.zeros(10)
        if coin >= p_uncond:
            row[label] = 1.0
        rows.append(row)
    c = torch.stack(rows)
    x_t = (1 - times[:, :, None, None]) * noise + times[:, :, None, None] * images
    return F.mse_loss(model(x_t, times, c), images - noise)


CORRECT = [mask_first_bernoulli, global_rng, rows_one_by_one]


def loss_with(bug):
    def class_flow_loss(model, x1, y, generator=None, p_uncond=0.1):
        B = x1.shape[0]
        x0 = torch.randn(x1.shape, generator=generator)
        t = torch.rand(B, generator=generator)
        keep = torch.rand(1 if bug == "one coin" else B, generator=generator).expand(B) >= p_uncond
        if bug == "first rows":
            keep = torch.arange(B) >= round(p_uncond * B)
        if bug == "inverted":
            keep = ~keep
        if bug == "before one-hot":
            c = F.one_hot(y * keep, 10).float()
        elif bug == "labels":
            c = y * keep
        elif bug == "integers":
            c = F.one_hot(y, 10) * keep[:, None]
        else:
            c = F.one_hot(y, 10).float() * keep[:, None]
        tb = t[:, None, None, None]
        target = x0 - x1 if bug == "sign" else x1 - x0
        return F.mse_loss(model((1 - tb) * x0 + tb * x1, t, c), target)
    return class_flow_loss


WRONG = [
    (loss_with("before one-hot"), "dropped after one-hot encoding, not before"),
    (loss_with("labels"), "labels, not one-hot rows"),
    (loss_with("integers"), "one-hot rows are floats"),
    (loss_with("inverted"), "the probability of dropping the class, not of keeping it"),
    (loss_with("one coin"), "one coin for the whole batch"),
    (loss_with("first rows"), "drop at random"),
    (loss_with("sign"), "not x0 − x1"),
]
