"""Checks of the Part B algorithms: one step's flow-matching loss (B.1, notebook 16; B.3 with class
dropout, 17), Euler sampling (B.2, 16) and the classifier-free guided velocity (B.4, 17).

The losses get a stand-in model that records what it is fed, and a fresh generator of a fixed seed:
drawn in the course's order (x0, then t), the student's draws are the course's, so x_t, t and the
loss are compared exactly; the class dropout, drawn after them, is judged by the rows it zeroes.
Euler is checked on velocity fields whose Euler solution has a closed form, CFG on a stub model
whose velocity says which class it was given.
"""
from __future__ import annotations

import torch
from torch import nn

from ..part_b import sampling, train
from ..part_b.flow import interpolate, sample_path
from ..part_b.unet import ClassConditionalUNet, one_hot
from ._core import Mismatch, call, describe, exercise, expect_close, expect_equal
from .part_b_networks import gen, hint_if_none, own_rng, spice

# ---- the losses (B.1, B.3) ----------------------------------------------------------------

_DRAWS = ("the check replays the same generator, so it needs the course's draws in the course's order: x0 "
          "(normal, x1's shape) first, then t (uniform, one per image), both from the generator passed in "
          "(torch.randn_like and rand_like ignore it), and only then (B.3) the dropout mask")


class _Recorder(nn.Module):
    """Stands in for the UNet: u(x_t, t[, c]) = a x_t + 1/4 with a = 1/2 a parameter (so the loss
    has a gradient); keeps what it was fed."""

    in_channels = 1
    num_classes = 10

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.fed = []

    def forward(self, x, t=None, c=None):
        self.fed.append(tuple(v.detach().clone() if isinstance(v, torch.Tensor) else v for v in (x, t, c)))
        return self.a * x + 0.25


def _loss_case(student, reference, seed: int, B: int, p_uncond: float | None = None):
    """One call of the loss; ``p_uncond`` None for B.1, a probability for B.3 (then it returns
    which classes were kept)."""
    x1 = torch.rand(B, 1, 28, 28, generator=gen(100 + seed))
    y = torch.arange(B) % 9 + 1       # no 0: a class dropped before one-hot shows as class 0
    head, tail = ((), ()) if p_uncond is None else ((y,), (p_uncond,))
    inputs = (f"x1 {describe(x1)}" + (f", y {describe(y)}, p_uncond = {p_uncond}" if tail else "")
              + f", generator = torch.Generator().manual_seed({seed}), a stand-in model "
                f"u(x_t, t{', c' if tail else ''}) = x_t / 2 + 1/4")
    ref_model, model = _Recorder(), _Recorder()
    expected = reference(ref_model, x1, *head, gen(seed), *tail)
    try:
        got = call(student, model, x1, *head, gen(seed), *tail, inputs=inputs)
    except Mismatch as m:
        if "must match the size" in m.what:
            m.hint = ("t holds one number per image, shape (B,); to scale images of shape (B, 1, 28, 28) "
                      "it needs shape (B, 1, 1, 1)")
        raise
    if not model.fed:
        raise Mismatch("the model was never called", inputs,
                       "the loss compares the model's velocity u_θ(x_t, t) with the target x1 − x0")
    xt, t, c = model.fed[-1]
    rxt, rt, _ = ref_model.fed[-1]
    x0, t_ref = sample_path(x1, gen(seed))
    _check_t(t, rt, B, seed, inputs)
    with hint_if_none(lambda: f"x_t = (1 − t) x0 + t x1 with one t per image; {_DRAWS}"):
        expect_close(xt, rxt, "the x_t fed to the model", inputs, wrong=[
            (lambda: interpolate(x1, x0, t_ref), "x0 and x1 swapped: x_t = (1 − t) x0 + t x1 runs from the "
                                                 "noise x0 at t = 0 to the data x1 at t = 1"),
            (x1, "the model sees x_t, a point on the path from x0 to x1, not the data x1"),
            (x0, "the model sees x_t, a point on the path from x0 to x1, not the noise x0")])
    kept = _check_c(c, y, model.num_classes, p_uncond, inputs) if tail else None
    _check_value(got, expected, x1, x0, rxt, inputs)
    return kept


def _check_t(t, rt, B: int, seed: int, inputs: str) -> None:
    if t is None:
        raise Mismatch("the model was called without t", inputs,
                       "the velocity depends on the time: call the model with x_t and t")
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)   # any shape holding one t per image will do
    n = t.numel()
    if n != B:
        raise Mismatch(f"the t fed to the model holds {n} value{'s' * (n != 1)}, expected one per image ({B})",
                       inputs, "draw one t per image, t ~ U[0, 1] of shape (B,)" if n == 1 else "")
    hint = ("t ~ U[0, 1] (uniform), not a normal draw" if t.min() < 0 or t.max() > 1
            else f"t is not the course's draw: {_DRAWS}")
    with hint_if_none(lambda: hint):
        expect_close(t, rt.reshape(-1), "the t fed to the model", inputs, wrong=[
            (torch.rand(B, generator=gen(seed)), f"t is the generator's first draw, so x0 was drawn after it "
                                                 f"or from elsewhere: {_DRAWS}")])


def _check_c(c, y, K: int, p_uncond: float, inputs: str) -> torch.Tensor:
    """c must be y's one-hot rows, each zeroed with probability p_uncond; returns which were kept.

    The stand-in model ignores c, so the mask need not be the course's draw: p_uncond = 0 and 1
    pin it, and in between the share of dropped rows is compared with p_uncond.
    """
    B = len(y)
    if c is None:
        raise Mismatch("the model was called without c", inputs,
                       "call the class-conditioned model with x_t, t and the one-hot rows c")
    if not isinstance(c, torch.Tensor):
        raise Mismatch(f"the c fed to the model is a {type(c).__name__}", inputs, "c is a tensor of one-hot rows")
    if c.ndim == 1:
        raise Mismatch(f"the c fed to the model has shape {tuple(c.shape)}: labels, not one-hot rows", inputs,
                       "feed the model one-hot rows of shape (B, num_classes), with the rows of dropped classes "
                       "all zero (a zeroed label is class 0, not 'no class')")
    if tuple(c.shape) != (B, K):
        raise Mismatch(f"the c fed to the model has shape {tuple(c.shape)}, expected {(B, K)}", inputs,
                       "one one-hot row per image, of length num_classes")
    if not c.is_floating_point():
        raise Mismatch(f"the c fed to the model holds {c.dtype} values", inputs,
                       "one-hot rows are floats: the UNet's Linear layers need them (.float())")
    c = c.float()
    onehot = one_hot(y, K)
    kept, dropped = (c == onehot).all(dim=1), (c == 0).all(dim=1)
    if not (kept | dropped).all():
        i = int((~(kept | dropped)).nonzero()[0])
        class0 = (c[i] == one_hot(torch.tensor([0]), K)[0]).all()
        raise Mismatch(f"row {i} of the c fed to the model is neither the one-hot row of its label "
                       f"{int(y[i])} nor all zeros", inputs,
                       "the class is dropped after one-hot encoding, not before: a dropped row must be all "
                       "zeros ('no class'), not class 0's one-hot row" if class0 else
                       "each row is its label's one-hot row, or all zeros where the class is dropped (a whole "
                       "row, one coin per image)")
    n = int(dropped.sum())
    what = f"{n} of the {B} images had their class dropped, with p_uncond = {p_uncond}"
    inverted = "p_uncond is the probability of dropping the class, not of keeping it"
    if p_uncond in (0.0, 1.0):
        if n != round(p_uncond * B):
            raise Mismatch(what, inputs, inverted if n == round((1 - p_uncond) * B) else
                           "p_uncond is the probability of dropping each image's class (zeroing its row)")
        return kept
    spread = 4 * (B * p_uncond * (1 - p_uncond)) ** 0.5      # 4 binomial standard deviations
    if n in (0, B):
        raise Mismatch(what, inputs, "one coin for the whole batch: drop each image's class independently")
    if abs(n - (1 - p_uncond) * B) < spread:
        raise Mismatch(what, inputs, inverted)
    if abs(n - p_uncond * B) > spread:
        raise Mismatch(what, inputs, f"drop each image's class with probability p_uncond: about "
                                     f"{p_uncond * B:.0f} of {B} here")
    return kept


def _check_value(got, expected, x1, x0, xt, inputs: str) -> None:
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"the loss should be a torch.Tensor, got {type(got).__name__}", inputs,
                       "training calls loss.backward(): return the tensor, not .item()")
    u = 0.5 * xt + 0.25          # the stand-in's velocity on the course's x_t
    err2 = (x1 - x0 - u) ** 2
    expect_close(got, expected, "the loss", inputs, wrong=[
        (lambda: ((x0 - x1 - u) ** 2).mean(), "the target velocity is x1 − x0 (from the noise x0 to the data "
                                              "x1), not x0 − x1"),
        (lambda: ((x1 - u) ** 2).mean(), "the target is the velocity x1 − x0, not the data x1"),
        (lambda: ((x0 - u) ** 2).mean(), "the target is the velocity x1 − x0, not the noise x0"),
        (lambda: err2.sum(), "average the squared error over pixels and images (as F.mse_loss does); do not sum it"),
        (lambda: err2.flatten(1).sum(1).mean(), "average over the pixels too (as F.mse_loss does), not the sum "
                                                "over each image's pixels"),
        (lambda: err2.flatten(1).mean(1), "the loss is one number: average over the images too"),
        (lambda: (x1 - x0 - u).abs().mean(), "square the error (mean squared error), not its absolute value")])
    if not got.requires_grad:
        raise Mismatch("the loss carries no gradient", inputs,
                       "training calls loss.backward(): compute it from the model's output, without .item(), "
                       ".detach() or torch.no_grad()")


@exercise("time_flow_loss", "part_b.train:time_flow_loss", "16")
@own_rng
def _time_flow_loss(student):
    for seed, B in [(0, 3), (1, 2)]:
        _loss_case(student, train.time_flow_loss, seed, B)


@exercise("class_flow_loss", "part_b.train:class_flow_loss", "17")
@own_rng
def _class_flow_loss(student):
    for seed, B, p in [(0, 4, 0.0), (1, 4, 1.0)]:
        _loss_case(student, train.class_flow_loss, seed, B, p)
    masks = [_loss_case(student, train.class_flow_loss, seed, 400, 0.25) for seed in (2, 3)]
    if torch.equal(*masks):
        raise Mismatch("the same classes are dropped with two different generators", "p_uncond = 0.25, 400 images",
                       "drop at random: one coin per image, drawn from the generator passed in")


# ---- Euler (B.2) --------------------------------------------------------------------------

def _x0():
    return torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)


def _time_of(t) -> float:
    """A step's time: a float, or a tensor holding it once or once per image."""
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    if t.numel() == 0 or not (t == t[0]).all():
        raise Mismatch(f"the velocity was called with t = {describe(t)}", "",
                       "all images of the batch share one time per step")
    return float(t[0])


def _euler(student, u, x0, T: int, inputs: str, *more):
    x0_before = x0.clone()
    out = call(student, u, x0, T, *more, inputs=inputs)
    if not torch.equal(x0, x0_before):
        raise Mismatch("x0 was changed in place", inputs,
                       "x += … (or add_) changes the caller's tensor and every state already kept: "
                       "write x = x + … so that each step makes a new tensor")
    return out


@exercise("euler_integrate", "part_b.sampling:euler_integrate", "16")
@own_rng
def _euler_integrate(student):
    for T in (3, 1, 8):
        x0 = _x0()
        v = torch.full_like(x0, 0.75)
        inputs = f"u(x, t) = 0.75 everywhere, x0 {describe(x0)}, num_steps = {T}"
        out = _euler(student, lambda x, t: v, x0, T, inputs)
        if isinstance(out, (tuple, list)):
            raise Mismatch(f"it returned a {type(out).__name__}", inputs,
                           "with return_trajectory=False return the final x alone")
        expect_close(out, x0 + 0.75, "x after num_steps steps", inputs, wrong=[
            (x0 + 0.75 * T, "each step moves by (1/T) u: multiply the velocity by the step size dt = 1/T"),
            (x0 + 0.75 * (T - 1) / T, "it takes T − 1 steps: take exactly num_steps steps"),
            (x0 + 0.75 * (T + 1) / T, "it takes T + 1 steps: take exactly num_steps steps"),
            (x0 - 0.75, "the velocity is added, x ← x + (1/T) u: it carries the noise (t = 0) to the data (t = 1)"),
            (x0, "x never changes: each step adds (1/T) u(x, t) to it")])

    seen = []
    x0 = _x0()
    inputs = f"u(x, t) = 0 recording t, x0 {describe(x0)}, num_steps = 4"
    _euler(student, lambda x, t: seen.append(_time_of(t)) or torch.zeros_like(x), x0, 4, inputs)
    expect_close(torch.tensor(seen, dtype=torch.float64), torch.tensor([0.0, 0.25, 0.5, 0.75], dtype=torch.float64),
                 "the list of times t at which u is called", inputs, wrong=[
        (torch.tensor([0.25, 0.5, 0.75, 1.0]), "evaluate u at the start of each step, t = i/T for i = 0 … T − 1, "
                                               "not at its end"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), "t is the time in [0, 1], i/T, not the step number i"),
        (torch.tensor([1.0, 0.75, 0.5, 0.25]), "integrate forward in time, from t = 0 (noise) to t = 1 (data)"),
        (torch.tensor([0.75, 0.5, 0.25, 0.0]), "integrate forward in time, from t = 0 (noise) to t = 1 (data)")])

    for T in (1, 2, 5):
        x0 = _x0()
        inputs = f"u(x, t) = x (exact solution x0 e^t; Euler gives x0 (1 + 1/T)^T), x0 {describe(x0)}, num_steps = {T}"
        out = _euler(student, lambda x, t: x, x0, T, inputs)
        expect_close(out, x0 * (1 + 1 / T) ** T, "x after num_steps steps", inputs, wrong=[
            (x0 * 2, "evaluate u at the current x (after the steps so far), not at x0")])

    x0 = _x0()
    ones = torch.ones_like(x0)
    inputs = f"u(x, t) = 1 everywhere, x0 {describe(x0)}, num_steps = 4, return_trajectory=True"
    res = _euler(student, lambda x, t: ones, x0, 4, inputs, True)
    if not (isinstance(res, tuple) and len(res) == 2):
        raise Mismatch("with return_trajectory=True it should return a pair (x, trajectory)", inputs,
                       "return the final x and the list of the states")
    out, trajectory = res[0], list(res[1])
    expect_equal(len(trajectory), 5, "the number of states in the trajectory", inputs,
                 "T + 1 states: x0 first, then the state after each of the T steps")
    for k, state in enumerate(trajectory):
        expect_close(state, x0 + k / 4, f"trajectory[{k}]", inputs, wrong=[
            (x0 + 1.0, "every state is the final x: an in-place update (x += …) changes each state already kept; "
                       "write x = x + … so that each step makes a new tensor")])
    expect_close(out, x0 + 1.0, "the final x", inputs)


# ---- classifier-free guidance (B.4) -------------------------------------------------------

class _StubCFG(nn.Module):
    """u(x, t, c) = k + 1 + t for the one-hot row of class k, −1 + t for the zero row (or None: no class)."""

    in_channels = 1
    num_classes = 10

    def forward(self, x, t, c=None):
        B = x.shape[0]
        c = torch.zeros(B, 10) if c is None else torch.as_tensor(c)
        if not c.is_floating_point():
            c = one_hot(c, 10)
        k = (c * torch.arange(1, 11, dtype=x.dtype)).sum(dim=1)
        value = torch.where(c.abs().sum(dim=1) > 0, k, torch.full_like(k, -1.0))
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1)
        return (value + t.expand(B) if t.numel() == 1 else value + t)[:, None, None, None].expand_as(x).clone()


def _guided(student, model, c, gamma: float, x, t, inputs: str):
    velocity = call(student, model, c, gamma, inputs=inputs)
    if not callable(velocity):
        raise Mismatch(f"cfg_velocity returned a {type(velocity).__name__}, not a function", inputs,
                       "return the guided velocity field itself, a function of (x, t), which euler_integrate "
                       "calls once per step")
    with torch.no_grad():
        return call(velocity, x, t, inputs=inputs)


@exercise("cfg_velocity", "part_b.sampling:cfg_velocity", "17")
@own_rng
def _cfg_velocity(student):
    c = one_hot(torch.tensor([0, 4]), 10)
    x, t = _x0(), 0.3
    u_cond = torch.tensor([1.0, 5.0]) + t       # classes 0 and 4
    u_uncond = torch.full((2,), -1.0) + t
    u_class0 = torch.full((2,), 1.0) + t        # what the model says for class 0's one-hot row

    def field(v):
        return v[:, None, None, None].expand_as(x)

    for gamma in (5.0, 0.0, 1.0):
        inputs = (f"a stub model with u(x, t, c) = k + 1 + t for class k and −1 + t for the zero row, c = one-hot "
                  f"rows of classes 0 and 4, guidance = {gamma}, then velocity(x, {t}) with x {describe(x)}")
        got = _guided(student, _StubCFG(), c, gamma, x, t, inputs)
        expect_close(got, field(u_uncond + gamma * (u_cond - u_uncond)), "the guided velocity", inputs, wrong=[
            (field(u_cond + gamma * (u_cond - u_uncond)),
             "start from the unconditional velocity: u = u_uncond + γ (u_cond − u_uncond)"),
            (field(u_uncond + gamma * (u_uncond - u_cond)),
             "the difference points from the unconditional to the conditional velocity: γ (u_cond − u_uncond)"),
            (field(u_cond + gamma * (u_uncond - u_cond)), "u_cond and u_uncond are swapped"),
            (field(gamma * u_cond), "u = u_uncond + γ (u_cond − u_uncond), not γ u_cond"),
            (field(u_class0 + gamma * (u_cond - u_class0)),
             "the unconditional velocity is the model's for c = 0, the all-zero row it saw when the class was "
             "dropped in training, not class 0's one-hot row"),
            (field(u_uncond + gamma * (u_cond - u_uncond) - t), "pass the time t on to the model")])

    torch.manual_seed(0)
    model = spice(ClassConditionalUNet(1, 10, 2)).eval()
    c = one_hot(torch.tensor([1, 8]), 10)
    x = torch.rand(2, 1, 28, 28, generator=gen(3))
    inputs = (f"ClassConditionalUNet(num_hiddens=2) in eval mode, c = one-hot rows of classes 1 and 8, guidance = 3, "
              f"then velocity(x, 0.6) with x {describe(x)}")
    got = _guided(student, model, c, 3.0, x, 0.6, inputs)
    with torch.no_grad():
        expected = sampling.cfg_velocity(model, c, 3.0)(x, 0.6)
    expect_close(got, expected, "the guided velocity with the course's UNet", inputs, atol=1e-4, rtol=1e-4)
