"""Checks of the Part B algorithms: the noising z = x + σε (§1.2, notebook 13), one step's
flow-matching loss (B.1, notebook 16; B.3 with class dropout, 17), Euler sampling (B.2, 16) and
Euler sampling with classifier-free guidance (B.4, 17).

They pin the math, not the plumbing, so that any correct implementation passes: whatever the order
of its random draws, whether it draws from the generator passed in or from torch's global RNG
(torch.randn_like, ...), and whatever shape holding one t per image it feeds the model.

- ``add_noise``: exact where the noise is an argument; with ``noise=None`` the noise z − x is
  tested statistically (mean, standard deviation, one draw per pixel, fresh on every call).
- The losses get a stand-in model that records what it is fed. From x_t, t and x1 the check
  recovers the noise x0 = (x_t − t x1) / (1 − t) and tests on a large batch that t ~ U[0, 1] and
  x0 ~ N(0, I) (and, for B.3, that the share of dropped classes is p_uncond); the loss is then
  compared exactly with the mean of (u(x_t, t) − (x1 − x0))² for the x0 and t actually used.
- The samplers run on stand-in velocity fields whose Euler solution has a closed form (u = const,
  u = x, u recording t, and for CFG a stub whose velocity says which class it was given), with
  one batched or two separate passes of the model accepted; then once on the course's UNet.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..part_b import sampling
from ..part_b.unet import ClassConditionalUNet, TimeConditionalUNet, one_hot
from ._core import Mismatch, call, describe, exercise, expect_close
from .part_b_networks import gen as _gen, own_rng as _own_rng, spice as _spice

# ---- helpers -------------------------------------------------------------------------------


def _with_hint(m: Mismatch, hint: str) -> Mismatch:
    if not m.hint:
        m.hint = hint
    return m


def _unchanged(before: torch.Tensor, after: torch.Tensor, name: str, inputs: str, hint: str) -> None:
    if not torch.equal(before, after):
        raise Mismatch(f"{name} was changed in place", inputs, hint)


def _normal_stats(z: torch.Tensor) -> tuple[float, float]:
    z = z.double()
    return z.mean().item(), z.std().item()


def _looks_normal(z: torch.Tensor, tol: float = 0.012) -> bool:
    """Mean ≈ 0 and standard deviation ≈ 1 (tol is ~6 standard errors for 300,000 numbers)."""
    mean, std = _normal_stats(z)
    return abs(mean) < tol and abs(std - 1) < tol


# ---- the noising (§1.2) -------------------------------------------------------------------

_SIGMA = "z = x + σ ε, with ε ~ N(0, I) and the clean image x added unscaled"


@exercise("add_noise", "solutions.part_b_flow:add_noise", "13")
@_own_rng
def _add_noise(student):
    x = torch.rand(2, 1, 28, 28, generator=_gen(1))
    eps = torch.randn(2, 1, 28, 28, generator=_gen(2))
    for sigma in (0.5, 0.0, 1.3):
        inputs = f"x {describe(x)}, sigma = {sigma}, noise {describe(eps)}"
        x_before, eps_before = x.clone(), eps.clone()
        got = call(student, x, sigma, eps, inputs=inputs)
        _unchanged(x_before, x, "x", inputs, "return a new tensor z = x + σ ε; do not add to x in place (x += …)")
        _unchanged(eps_before, eps, "noise", inputs, "do not scale the noise in place (noise *= …)")
        try:
            expect_close(got, x + sigma * eps, "z", inputs, wrong=[
                (x + sigma ** 2 * eps, f"σ multiplies the noise, not σ²: {_SIGMA}"),
                (x + sigma ** 0.5 * eps, f"σ multiplies the noise, not √σ: {_SIGMA}"),
                (sigma * x + eps, f"σ scales the noise, not the image: {_SIGMA}"),
                (sigma * eps, f"add the clean image: {_SIGMA}"),
                (x + eps, f"scale the noise by σ: {_SIGMA}"),
                (x, "add the noise: z = x + σ ε")])
        except Mismatch as m:
            raise _with_hint(m, "when noise is given, use it: z = x + sigma * noise (draw ε only when "
                                "noise is None)")

    # noise=None: the noise z − x is drawn; judged statistically (any RNG, any order)
    B, sigma = 512, 0.5
    x = torch.rand(B, 1, 28, 28, generator=_gen(3))
    g = _gen(4)
    inputs = f"x {describe(x)}, sigma = {sigma}, noise = None, generator = torch.Generator().manual_seed(4)"
    x_before = x.clone()
    z = call(student, x, sigma, None, g, inputs=inputs)
    _unchanged(x_before, x, "x", inputs, "return a new tensor z = x + σ ε; do not add to x in place (x += …)")
    if not isinstance(z, torch.Tensor) or z.shape != x.shape:
        expect_close(z, x, "z", inputs)   # names the type or the shape
    e = (z.double() - x.double()) / sigma
    if not torch.isfinite(e).all():
        raise Mismatch("z holds NaN or inf", inputs)
    if e.abs().max() < 1e-12:
        raise Mismatch("z equals x: no noise was added", inputs,
                       "with noise = None, draw ε ~ N(0, I) of x's shape (torch.randn) and return x + σ ε")
    if torch.allclose(e[0], e[1], atol=1e-4):
        raise Mismatch("every image got the same noise", inputs,
                       "draw ε of x's shape, (B, 1, 28, 28): an independent noise image for every digit")
    if e[0].std() < 1e-6:
        raise Mismatch("the noise is one number per image, the same for all its pixels", inputs,
                       "draw ε of x's shape: one independent normal number per pixel")
    mean, std = _normal_stats(e)
    if not _looks_normal(e):
        uniform = abs(mean - 0.5) < 0.02 and abs(std - 12 ** -0.5) < 0.02
        raise Mismatch(f"the noise z − x has mean {mean * sigma:.4f} and standard deviation {std * sigma:.4f}; "
                       f"expected 0 and σ = {sigma}", inputs,
                       "ε ~ N(0, I) is a normal draw (torch.randn), not a uniform one (torch.rand)" if uniform
                       else _SIGMA)
    z2 = call(student, x, sigma, None, g, inputs=inputs + " (a second call, same generator object)")
    if isinstance(z2, torch.Tensor) and torch.equal(z2, z):
        raise Mismatch("a second call gave the same noise", inputs,
                       "draw a fresh ε on every call: do not re-seed a generator inside add_noise")


# ---- the losses (B.1, B.3) ----------------------------------------------------------------

class _Recorder(nn.Module):
    """Stands in for the UNet: u(x_t, t[, c]) = a x_t + 1/4 with a = 1/2 a parameter (so the
    loss has a gradient); keeps what it was fed."""

    in_channels = 1
    num_classes = 10

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.fed = []

    def forward(self, x, t=None, c=None):
        self.fed.append(tuple(v.detach().clone() if isinstance(v, torch.Tensor) else v for v in (x, t, c)))
        return self.a * x + 0.25


def _loss_case(student, seed: int, B: int, p_uncond: float | None = None):
    """One call of the loss; ``p_uncond`` None for B.1, a probability for B.3 (then it returns
    which classes were kept)."""
    x1 = torch.rand(B, 1, 28, 28, generator=_gen(100 + seed))
    y = torch.arange(B) % 9 + 1       # no 0: a class dropped before one-hot shows as class 0
    head, tail = ((), ()) if p_uncond is None else ((y,), (p_uncond,))
    inputs = (f"x1 {describe(x1)}" + (f", y {describe(y)}, p_uncond = {p_uncond}" if tail else "")
              + f", generator = torch.Generator().manual_seed({seed}), a stand-in model "
                f"u(x_t, t{', c' if tail else ''}) = x_t / 2 + 1/4")
    model = _Recorder()
    x1_before = x1.clone()
    try:
        got = call(student, model, x1, *head, _gen(seed), *tail, inputs=inputs)
    except Mismatch as m:
        if "must match the size" in m.what:
            m.hint = ("t holds one number per image, shape (B,); to scale images of shape (B, 1, 28, 28) "
                      "it needs shape (B, 1, 1, 1): t.reshape(-1, 1, 1, 1)")
        raise
    _unchanged(x1_before, x1, "x1", inputs, "build x_t as a new tensor; do not change x1 in place")
    if not model.fed:
        raise Mismatch("the model was never called", inputs,
                       "the loss compares the model's velocity u_θ(x_t, t) with the target x1 − x0")
    xt, t, c = model.fed[-1]
    t = _check_t(t, B, inputs)
    x0 = _check_path(xt, t, x1, inputs)
    kept = _check_c(c, y, model.num_classes, p_uncond, inputs) if tail else None
    _check_value(got, x1, x0, xt, inputs)
    return kept


def _check_t(t, B: int, inputs: str) -> torch.Tensor:
    """The t fed to the model, as a float64 vector of B times (any shape holding one per image)."""
    if t is None:
        raise Mismatch("the model was called without t", inputs,
                       "the velocity depends on the time: call the model with x_t and t")
    t = torch.as_tensor(t).detach().to(torch.float64).reshape(-1)
    n = t.numel()
    if n != B:
        raise Mismatch(f"the t fed to the model holds {n} value{'s' * (n != 1)}, expected one per image ({B})",
                       inputs, "draw one t per image, t ~ U[0, 1] of shape (B,)" if n == 1 else
                       "feed the model one time per image: t of shape (B,)")
    if t.min() < 0:
        raise Mismatch(f"the t fed to the model has values below 0 (smallest {t.min().item():.4g})", inputs,
                       "t ~ U[0, 1] is a uniform draw (torch.rand), not a normal one (torch.randn)")
    if t.max() > 1:
        raise Mismatch(f"the t fed to the model has values above 1 (largest {t.max().item():.4g})", inputs,
                       "t ~ U[0, 1] is the time itself, fed to the model as it is (not scaled)")
    if B >= 100:
        if (t == t[0]).all():
            raise Mismatch(f"every image got the same t = {t[0].item():.4g}", inputs,
                           "draw one t per image, t ~ U[0, 1] of shape (B,), not one for the whole batch")
        mean, std = t.mean().item(), t.std().item()
        se_mean, se_std = 12 ** -0.5 / B ** 0.5, (1 / 80 - 1 / 144) ** 0.5 / (2 * 12 ** -0.5 * B ** 0.5)
        if (abs(mean - 0.5) > 5 * se_mean or abs(std - 12 ** -0.5) > 5 * se_std
                or t.min() > 0.05 or t.max() < 0.95):
            raise Mismatch(f"the t fed to {B} images has mean {mean:.3f}, standard deviation {std:.3f}, "
                           f"range [{t.min().item():.3f}, {t.max().item():.3f}]; t ~ U[0, 1] gives about "
                           f"0.5, 0.289 and [0, 1]", inputs,
                           "draw t ~ U[0, 1] (torch.rand), one per image")
    return t


def _check_path(xt, t: torch.Tensor, x1: torch.Tensor, inputs: str) -> torch.Tensor:
    """x_t must be (1 − t) x0 + t x1 with the t fed to the model and x0 ~ N(0, I): returns that x0,
    recovered as (x_t − t x1) / (1 − t)."""
    if not isinstance(xt, torch.Tensor) or tuple(xt.shape) != tuple(x1.shape):
        raise Mismatch(f"the x_t fed to the model has shape {tuple(getattr(xt, 'shape', ()))}, expected "
                       f"x1's {tuple(x1.shape)}", inputs)
    B = x1.shape[0]
    xt, x1d = xt.double(), x1.double()
    if torch.allclose(xt, x1d):
        raise Mismatch("the x_t fed to the model is x1", inputs,
                       "the model sees x_t = (1 − t) x0 + t x1, a point on the path from x0 to x1, not the data x1")
    tb = t.reshape(-1, 1, 1, 1)
    x0 = (xt - tb * x1d) / (1 - tb)
    if B < 100:
        return x0
    use = t < 0.9                      # (x_t − t x1) / (1 − t) amplifies rounding as t → 1
    z = x0[use]
    if torch.allclose(x0[0], x0[1], atol=1e-4):
        raise Mismatch("every image got the same noise x0", inputs,
                       "draw x0 ~ N(0, I) of x1's shape, (B, 1, 28, 28): an independent noise image per digit")
    if _looks_normal(z) and abs(torch.corrcoef(torch.stack([z.flatten(), x1d[use].flatten()]))[0, 1]) < 0.02:
        return x0
    mean, std = _normal_stats(z)
    detail = (f"the x0 recovered from the x_t and t fed to the model, x0 = (x_t − t x1) / (1 − t), has mean "
              f"{mean:.4f} and standard deviation {std:.4f} (over the images with t < 0.9); x0 ~ N(0, I) "
              f"gives 0 and 1")
    hint = ("x_t = (1 − t) x0 + t x1, with x0 ~ N(0, I) of x1's shape and the same t (one per image) "
            "that is fed to the model")
    late = t > 0.1
    swapped = (xt - (1 - tb) * x1d) / tb
    if _looks_normal(swapped[late]):
        hint = ("x0 and x1 swapped: x_t = (1 − t) x0 + t x1 runs from the noise x0 at t = 0 to the data x1 "
                "at t = 1")
    elif _looks_normal(xt):
        hint = "the model sees x_t, a point on the path from x0 to x1, not the noise x0"
    elif abs(mean - 0.5) < 0.02 and abs(std - 12 ** -0.5) < 0.02:
        hint = "x0 ~ N(0, I) is a normal draw (torch.randn), not a uniform one (torch.rand)"
    raise Mismatch("the x_t fed to the model is not (1 − t) x0 + t x1 with x0 ~ N(0, I)", inputs, hint, detail)


def _check_c(c, y, K: int, p_uncond: float, inputs: str) -> torch.Tensor:
    """c must be y's one-hot rows, each zeroed with probability p_uncond; returns which were kept.

    The stand-in model ignores c, so any draw of the mask will do: p_uncond = 0 and 1 pin it,
    and in between the share of dropped rows is compared with p_uncond.
    """
    B = len(y)
    if c is None:
        raise Mismatch("the model was called without c", inputs,
                       "call the class-conditioned model with x_t, t and the one-hot rows c")
    if not isinstance(c, torch.Tensor):
        raise Mismatch(f"the c fed to the model is a {type(c).__name__}", inputs, "c is a tensor of one-hot rows")
    if c.ndim == 1:
        raise Mismatch(f"the c fed to the model has shape {tuple(c.shape)}: labels, not one-hot rows", inputs,
                       "feed the model one-hot rows of shape (B, 10), with the rows of dropped classes "
                       "all zero (a zeroed label is class 0, not 'no class')")
    if tuple(c.shape) != (B, K):
        raise Mismatch(f"the c fed to the model has shape {tuple(c.shape)}, expected {(B, K)}", inputs,
                       "one one-hot row per image, of length 10 (the number of classes)")
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


def _check_value(got, x1, x0, xt, inputs: str) -> None:
    """The loss against the mean of (u − (x1 − x0))², u the stand-in's velocity at the x_t fed."""
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"the loss should be a torch.Tensor, got {type(got).__name__}", inputs,
                       "training calls loss.backward(): return the tensor, not .item()")
    x1 = x1.double()
    u = 0.5 * xt.double() + 0.25
    err2 = (x1 - x0 - u) ** 2
    expect_close(got, err2.mean(), "the loss", inputs, wrong=[
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


@exercise("time_flow_loss", "solutions.part_b_flow:time_flow_loss", "16")
@_own_rng
def _time_flow_loss(student):
    for seed, B in [(0, 512), (1, 3)]:
        _loss_case(student, seed, B)


@exercise("class_flow_loss", "solutions.part_b_flow:class_flow_loss", "17")
@_own_rng
def _class_flow_loss(student):
    for seed, B, p in [(0, 8, 0.0), (1, 8, 1.0)]:
        _loss_case(student, seed, B, p)
    masks = [_loss_case(student, seed, 512, 0.25) for seed in (2, 3)]
    if torch.equal(*masks):
        raise Mismatch("the same classes are dropped in two calls", "p_uncond = 0.25, 512 images, generators "
                       "seeded 2 and 3", "drop at random: one coin per image, a fresh draw on every call")


# ---- Euler (B.2) --------------------------------------------------------------------------

class _Field(nn.Module):
    """Stands in for the time-conditioned UNet: the velocity ``fn(x, t)`` with t the step's time as
    a float; records the times. Any t holding the time once, or once per image, is accepted."""

    in_channels = 1

    def __init__(self, fn, what: str):
        super().__init__()
        self.fn, self.what, self.times = fn, what, []
        self.unused = nn.Parameter(torch.zeros(()))   # so that next(model.parameters()) works

    def forward(self, x, t=None, *rest):
        self.times.append(_time_of(t, x.shape[0], self.what))
        return self.fn(x, self.times[-1])


def _time_of(t, B: int, inputs: str) -> float:
    """A step's time: a float, or a tensor holding it once or once per image."""
    if t is None:
        raise Mismatch("the model was called without t", inputs,
                       "pass the step's time to the model, model(x, t) with t = i / T as a tensor of shape (B,)")
    t = torch.as_tensor(t).detach().to(torch.float64).reshape(-1)
    if t.numel() not in (1, B):
        raise Mismatch(f"the model was called with a t of {t.numel()} values for {B} images", inputs,
                       "t holds the step's time once per image: shape (B,)")
    if not (t == t[0]).all():
        raise Mismatch(f"the model was called with t = {describe(t)}", inputs,
                       "all images of the batch share one time per step, t = i / T")
    return float(t[0])


def _x0():
    return torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)


def _run(student, args: tuple, x0: torch.Tensor, inputs: str):
    """``student(*args)`` (x0 among them); x0 must come back unchanged and the result be one tensor."""
    x0_before = x0.clone()
    with torch.no_grad():
        out = call(student, *args, inputs=inputs)
    if not torch.equal(x0, x0_before):
        raise Mismatch("x0 was changed in place", inputs,
                       "x += … (or add_) changes the caller's noise: write x = x + … so that each step makes "
                       "a new tensor")
    if isinstance(out, (tuple, list)):
        raise Mismatch(f"it returned a {type(out).__name__}", inputs, "return the final x alone")
    return out


_STEPS = [
    (lambda T: [(i + 1) / T for i in range(T)], "evaluate u at the start of each step, t = i/T for i = 0 … T − 1, "
                                                "not at its end"),
    (lambda T: [float(i) for i in range(T)], "t is the time in [0, 1], i/T, not the step number i"),
    (lambda T: [1 - i / T for i in range(T)], "integrate forward in time, from t = 0 (noise) to t = 1 (data)"),
    (lambda T: [1 - (i + 1) / T for i in range(T)], "integrate forward in time, from t = 0 (noise) to t = 1 (data)"),
    (lambda T: [i / T for i in range(T - 1)], "it takes T − 1 steps: take exactly num_steps steps"),
    (lambda T: [i / T for i in range(T + 1)], "it takes T + 1 steps: take exactly num_steps steps"),
    (lambda T: [i / (T - 1) for i in range(T)], "t = i / T: the last step starts at (T − 1)/T, not at 1"),
]


def _check_times(seen: list, T: int, inputs: str) -> None:
    expected = [i / T for i in range(T)]
    if len(seen) == len(expected) and all(abs(a - b) < 1e-6 for a, b in zip(seen, expected)):
        return
    hint = next((h for f, h in _STEPS if len(f(T)) == len(seen)
                 and all(abs(a - b) < 1e-6 for a, b in zip(seen, f(T)))), "")
    raise Mismatch(f"the model was called at the times {[round(s, 4) for s in seen]}, expected "
                   f"{[round(s, 4) for s in expected]}", inputs,
                   hint or "one model evaluation per step, at t = i/T for i = 0 … T − 1")


@exercise("euler_sample", "solutions.part_b_flow:euler_sample", "16")
@_own_rng
def _euler_sample(student):
    x0 = _x0()
    T = 4
    inputs = f"a stand-in model u(x, t) = 0 that records t, x0 {describe(x0)}, num_steps = {T}"
    model = _Field(lambda x, t: torch.zeros_like(x), inputs)
    _run(student, (model, x0, T), x0, inputs)
    _check_times(model.times, T, inputs)

    for T in (3, 1, 8):
        x0 = _x0()
        inputs = f"a stand-in model u(x, t) = 0.75 everywhere, x0 {describe(x0)}, num_steps = {T}"
        out = _run(student, (_Field(lambda x, t: torch.full_like(x, 0.75), inputs), x0, T), x0, inputs)
        expect_close(out, x0 + 0.75, "x after num_steps steps", inputs, wrong=[
            (x0 + 0.75 * T, "each step moves by (1/T) u: multiply the velocity by the step size 1/T"),
            (x0 + 0.75 * (T - 1) / T, "it takes T − 1 steps: take exactly num_steps steps"),
            (x0 + 0.75 * (T + 1) / T, "it takes T + 1 steps: take exactly num_steps steps"),
            (x0 - 0.75, "the velocity is added, x ← x + (1/T) u: it carries the noise (t = 0) to the data (t = 1)"),
            (x0, "x never changes: each step adds (1/T) u(x, t) to it")])

    for T in (2, 5):
        x0 = _x0()
        inputs = (f"a stand-in model u(x, t) = t (Euler gives x0 + (T − 1)/(2T)), x0 {describe(x0)}, "
                  f"num_steps = {T}")
        out = _run(student, (_Field(lambda x, t: torch.full_like(x, t), inputs), x0, T), x0, inputs)
        expect_close(out, x0 + (T - 1) / (2 * T), "x after num_steps steps", inputs, wrong=[
            (x0 + (T + 1) / (2 * T), "evaluate u at the start of each step, t = i/T, not at its end")])

    for T in (1, 2, 5):
        x0 = _x0()
        inputs = (f"a stand-in model u(x, t) = x (exact solution x0 e^t; Euler gives x0 (1 + 1/T)^T), "
                  f"x0 {describe(x0)}, num_steps = {T}")
        out = _run(student, (_Field(lambda x, t: x * 1.0, inputs), x0, T), x0, inputs)
        expect_close(out, x0 * (1 + 1 / T) ** T, "x after num_steps steps", inputs, wrong=[
            (x0 * 2, "evaluate u at the current x (after the steps so far), not at x0")])

    torch.manual_seed(0)
    model = _spice(TimeConditionalUNet(1, 2)).eval()
    x0 = torch.randn(2, 1, 28, 28, generator=_gen(5))
    inputs = f"TimeConditionalUNet(num_hiddens=2) in eval mode, x0 {describe(x0)}, num_steps = 3"
    got = _run(student, (model, x0, 3), x0, inputs)
    with torch.no_grad():
        expected = sampling.euler_sample(model, x0, 3)
    expect_close(got, expected, "x after num_steps steps with the course's UNet", inputs, atol=1e-4, rtol=1e-4)


# ---- Euler with classifier-free guidance (B.4) ---------------------------------------------

def check_condition(x, t, c, num_classes: int, what: str, pass_t: str, estimate: str) -> torch.Tensor:
    """c as a CFG sampler must feed a class-conditioned model: one-hot float rows, one per image
    of x, all zeros for the unconditional pass. ``pass_t`` is the hint when t was left out,
    ``estimate`` what the model returns ("velocity", "estimate")."""
    B = x.shape[0]
    if c is None and isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[-1] == num_classes:
        raise Mismatch("the model was called as model(x, c), without t", what, pass_t)
    if c is None:
        raise Mismatch("the model was called without c", what,
                       f"the unconditional {estimate} is the model's at c = 0: pass all-zero rows, "
                       "torch.zeros_like(c)")
    c = torch.as_tensor(c)
    if c.ndim == 1 or not c.is_floating_point():
        raise Mismatch(f"the model was fed c of shape {tuple(c.shape)} and type {c.dtype}", what,
                       "c stays one-hot float rows (B, 10); the unconditional pass gets all-zero rows")
    if tuple(c.shape) != (B, num_classes):
        raise Mismatch(f"the model was fed x of {B} images with c of shape {tuple(c.shape)}", what,
                       "one row of c per image of x (for one batched pass, concatenate c and the zero rows "
                       "as you concatenate x with itself)")
    return c


class _StubCFG(nn.Module):
    """u(x, t, c) = k + 1 + t for the one-hot row of class k, −1 + t for the zero row; records
    the times. One batched pass (x and c of 2B rows) or separate passes are both fine."""

    in_channels = 1
    num_classes = 10

    def __init__(self, what: str):
        super().__init__()
        self.what, self.times = what, []
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x, t=None, c=None):
        B = x.shape[0]
        c = check_condition(x, t, c, self.num_classes, self.what,
                            "pass the step's time too: model(x, t, c) with t = i / T, a tensor of shape (B,)",
                            "velocity")
        time = _time_of(t, B, self.what)
        if not self.times or self.times[-1] != time:
            self.times.append(time)
        k = (c.to(x.dtype) * torch.arange(1, 11, dtype=x.dtype)).sum(dim=1)
        value = torch.where(c.abs().sum(dim=1) > 0, k, torch.full_like(k, -1.0)) + time
        return value[:, None, None, None].expand_as(x).clone()


def _cfg_closed_form(x0, classes, gamma: float, times, dt: float, kind: str = "right"):
    """x0 + Σ dt · u(t_i) for the stub's velocities: u_cond = k + 1 + t, u_uncond = −1 + t."""
    k = torch.tensor(classes, dtype=x0.dtype)
    total = torch.zeros_like(k)
    for t in times:
        cond, uncond, class0 = k + 1 + t, torch.full_like(k, -1.0 + t), torch.full_like(k, 1.0 + t)
        u = {"right": uncond + gamma * (cond - uncond),
             "from cond": cond + gamma * (cond - uncond),
             "backwards": uncond + gamma * (uncond - cond),
             "swapped": cond + gamma * (uncond - cond),
             "gamma cond": gamma * cond,
             "class 0": class0 + gamma * (cond - class0)}[kind]
        total = total + dt * u
    return x0 + total[:, None, None, None]


@exercise("euler_sample_cfg", "solutions.part_b_flow:euler_sample_cfg", "17")
@_own_rng
def _euler_sample_cfg(student):
    classes = [0, 4]
    c = one_hot(torch.tensor(classes), 10)
    stub = ("a stub model with u(x, t, c) = k + 1 + t for the one-hot row of class k and −1 + t for the zero "
            "row, c = one-hot rows of classes 0 and 4")
    x0, T = _x0(), 4
    inputs = f"{stub}, x0 {describe(x0)}, num_steps = {T}, guidance = 5"
    model = _StubCFG(inputs)
    _run(student, (model, c, x0, T, 5.0), x0, inputs)
    _check_times(model.times, T, inputs)

    for gamma, T in ((5.0, 2), (0.0, 2), (1.0, 3), (3.0, 1)):
        x0 = _x0()
        inputs = f"{stub}, x0 {describe(x0)}, num_steps = {T}, guidance = {gamma}"
        c_before = c.clone()
        got = _run(student, (_StubCFG(inputs), c, x0, T, gamma), x0, inputs)
        _unchanged(c_before, c, "c", inputs, "build the zero rows as a new tensor, torch.zeros_like(c)")
        times, dt = [i / T for i in range(T)], 1 / T
        closed = functools.partial(_cfg_closed_form, x0, classes, gamma)
        expect_close(got, closed(times, dt), "x after num_steps guided steps", inputs, wrong=[
            (closed(times, dt, "from cond"), "start from the unconditional velocity: u = u_uncond + γ (u_cond − u_uncond)"),
            (closed(times, dt, "backwards"), "the difference points from the unconditional to the conditional "
                                             "velocity: γ (u_cond − u_uncond)"),
            (closed(times, dt, "swapped"), "u_cond and u_uncond are swapped"),
            (closed(times, dt, "gamma cond"), "u = u_uncond + γ (u_cond − u_uncond), not γ u_cond"),
            (closed(times, dt, "class 0"), "the unconditional velocity is the model's for c = 0, the all-zero row "
                                           "it saw when the class was dropped in training, not class 0's one-hot row"),
            (closed(times, 1.0), "each step moves by (1/T) u: multiply the velocity by the step size 1/T"),
            (closed(times[:-1], dt), "it takes T − 1 steps: take exactly num_steps steps"),
            (closed(times + [1.0], dt), "it takes T + 1 steps: take exactly num_steps steps"),
            (closed([t + dt for t in times], dt), "evaluate u at the start of each step, t = i/T, not at its end"),
            (x0, "x never changes: each step adds (1/T) u to it")])

    torch.manual_seed(0)
    model = _spice(ClassConditionalUNet(1, 10, 2)).eval()
    c = one_hot(torch.tensor([1, 8]), 10)
    x0 = torch.randn(2, 1, 28, 28, generator=_gen(3))
    inputs = (f"ClassConditionalUNet(num_hiddens=2) in eval mode, c = one-hot rows of classes 1 and 8, "
              f"x0 {describe(x0)}, num_steps = 2, guidance = 3")
    got = _run(student, (model, c, x0, 2, 3.0), x0, inputs)
    with torch.no_grad():
        expected = sampling.euler_sample_cfg(model, c, x0, 2, 3.0)
    expect_close(got, expected, "x after num_steps guided steps with the course's UNet", inputs,
                 atol=1e-4, rtol=1e-4)
