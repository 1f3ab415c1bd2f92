"""Checks of Part B's DDPM extension (notebook 19): the linear schedule, one step's ε-prediction
loss (Ho et al.'s L_simple), ancestral sampling over all T steps and the same with
classifier-free guidance.

They pin the math, not the plumbing, so that any correct implementation passes: whatever the
order of its random draws, whether it draws from the generator passed in or from torch's global
RNG, whatever shape holding one t / T per image it feeds the model, one batched or two separate
CFG passes.

- ``ddpm_schedule``: exact values (the course's ``part_b.ddpm.linear_schedule``) at the defaults
  and at other arguments; a tuple in another order, T + 1 points, a cumulative sum, α and ᾱ
  swapped ... each named.
- ``ddpm_loss``: a stand-in model records what it is fed. From t / T the check recovers the
  integer steps t (and tests on a large batch that t ~ U{0, …, T − 1}, one per image), from x_t,
  x0 and ᾱ_t the noise ε = (x_t − √ᾱ_t x0)/√(1 − ᾱ_t), tested to be N(0, I) and independent of
  x0; the loss is then compared exactly with the mean of (ε − ε_θ(x_t, t / T))² for the ε and t
  actually used. A wrong x_t is named by the formula that does give standard noise.
- The samplers are graded, as Part A's loops, by what they feed a stand-in ε-model: the steps
  t = T − 1, …, 0 in order (t / T fed), the first state x_T, every transition
  x_{t−1} = mean + √β̃_t z with z standard normal (z-scores over thousands of pixels), fresh
  noise each step, and no noise at the last step (the output is x̂_0 exactly). A made-up
  10-step schedule shows wrong coefficients clearly; the notebook's 300-step linear one follows.
  For CFG both passes must see the same x, one with c and one with all-zero rows.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..part_b.ddpm import linear_schedule
from ._core import Mismatch, call, describe, exercise, expect_close
from ._core import standard as _standard, z_stats as _z_stats
from .part_b_flow import check_condition
from .part_b_networks import gen as _gen, own_rng as _own_rng

_NAMES = ("betas", "alphas", "alphas_cumprod")
_LINSPACE = "β_t evenly spaced from beta_start (t = 0) to beta_end (t = T − 1): torch.linspace(beta_start, beta_end, T)"
_CONFUSED = "β and ᾱ confused: α = ᾱ_t/ᾱ_(t−1) and β = 1 − α are this step's, not ᾱ_t and 1 − ᾱ_t"
_CUMPROD = "ᾱ_t = Π_{s ≤ t} α_s = α_0 α_1 … α_t, the cumulative product torch.cumprod(alphas, 0)"


def _unchanged(before: torch.Tensor, after: torch.Tensor, name: str, inputs: str, hint: str) -> None:
    if not torch.equal(before, after):
        raise Mismatch(f"{name} was changed in place", inputs, hint)


def _close(a, b, atol=1e-6, rtol=1e-5) -> bool:
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.detach().double(), b.detach().double(), atol=atol, rtol=rtol))


# ---- the schedule ---------------------------------------------------------------------------

def _schedule_mistakes(T: int, bs: float, be: float):
    """(position, value, hint) of typical mistakes, position 0, 1, 2 for betas, alphas, alphas_cumprod."""
    d = torch.float64
    betas = torch.linspace(bs, be, T, dtype=d)
    alphas = 1 - betas
    ac = torch.cumprod(alphas, 0)
    more = torch.linspace(bs, be, T + 1, dtype=d)
    t_plus_one = f"T + 1 values: β_t for t = 0, …, T − 1 is T values, {_LINSPACE}"
    ends = f"both ends are included: β_0 = beta_start and β_(T−1) = beta_end, {_LINSPACE}"
    return [
        (0, more, t_plus_one), (1, 1 - more, t_plus_one), (2, torch.cumprod(1 - more, 0), t_plus_one),
        (0, more[1:], ends), (0, more[:-1], ends),
        (0, bs + (be - bs) * torch.arange(T, dtype=d) / T, ends),
        (0, torch.linspace(be, bs, T, dtype=d), "β grows from beta_start at t = 0 to beta_end at t = T − 1"),
        (0, torch.linspace(1e-4, 0.02, T, dtype=d), "use the arguments beta_start and beta_end, not the default "
                                                    "numbers"),
        (0, torch.linspace(1e-4, 0.02, 300, dtype=d), "use the arguments T, beta_start and beta_end, not the "
                                                      "default numbers"),
        (1, betas, "α_t = 1 − β_t, not β_t"),
        (1, alphas.sqrt(), "α_t = 1 − β_t, with no square root"),
        (2, torch.cumsum(alphas, 0), f"the cumulative product, not the sum (torch.cumsum): {_CUMPROD}"),
        (2, alphas, f"ᾱ_t is the product of every α up to t, not α_t = 1 − β_t itself: {_CUMPROD}"),
        (2, torch.cumprod(betas, 0), f"the cumulative product of α_t = 1 − β_t, not of β_t: {_CUMPROD}"),
        (2, 1 - torch.cumprod(betas, 0), f"the cumulative product of α_t = 1 − β_t: {_CUMPROD}"),
        (2, 1 - torch.cumsum(betas, 0), f"ᾱ_t = Π (1 − β_s), not 1 − Σ β_s: {_CUMPROD}"),
        (2, torch.cat([torch.ones(1, dtype=d), ac[:-1]]), "ᾱ_t includes α_t itself: ᾱ_0 = α_0 = 1 − β_0, not 1 "
                                                          "(torch.cumprod, not shifted by one)"),
        (2, torch.cumprod(alphas.flip(0), 0).flip(0), "ᾱ_t multiplies α_0 … α_t, from t = 0 up to t (not from "
                                                      "the end)"),
        (2, ac.sqrt(), f"no square root: {_CUMPROD}"),
    ]


def _schedule_case(student, args: tuple, kwargs: dict, T: int, bs: float, be: float) -> None:
    shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    inputs = f"ddpm_schedule({shown})" + ("" if shown else ", the defaults T = 300, beta_start = 1e-4, "
                                                           "beta_end = 0.02")
    got = call(student, *args, inputs=inputs, **kwargs)
    order = "return the three tensors as a tuple, in this order: return betas, alphas, alphas_cumprod"
    if isinstance(got, torch.Tensor) or not isinstance(got, (tuple, list)):
        raise Mismatch(f"it returned a {type(got).__name__}, expected a tuple (betas, alphas, alphas_cumprod)",
                       inputs, order)
    if len(got) != 3:
        raise Mismatch(f"it returned {len(got)} values, expected 3: (betas, alphas, alphas_cumprod)", inputs, order)
    for name, value in zip(_NAMES, got):
        if not isinstance(value, torch.Tensor):
            raise Mismatch(f"{name} should be a torch.Tensor, got {type(value).__name__}", inputs,
                           "build the schedule with torch (torch.linspace, torch.cumprod)")
    schedule = linear_schedule(T, bs, be)
    expected = (schedule.betas, schedule.alphas, schedule.alphas_cumprod)
    if not all(_close(g, e) for g, e in zip(got, expected)):
        perm = [next((j for j, e in enumerate(expected) if _close(g, e)), None) for g in got]
        if sorted(p for p in perm if p is not None) == [0, 1, 2]:
            hint = ("α and ᾱ swapped: " if perm == [0, 2, 1] else "returned in another order: ") + order
            raise Mismatch(f"it returned ({', '.join(_NAMES[j] for j in perm)}), expected "
                           f"({', '.join(_NAMES)})", inputs, hint)
    mistakes = _schedule_mistakes(T, bs, be)
    for k, (name, value, exp) in enumerate(zip(_NAMES, got, expected)):
        wrong = [(v, h) for pos, v, h in mistakes if pos == k]
        expect_close(value, exp, f"{name} (entry t for t = 0 … T − 1)", inputs, wrong, atol=1e-6, rtol=1e-5)
    for name, value in zip(_NAMES, got):
        if value.dtype != torch.float32:
            raise Mismatch(f"{name} holds {value.dtype} values, expected torch.float32", inputs,
                           "float32 is torch.linspace's default dtype: keep it (no .double(), no numpy)")


@exercise("ddpm_schedule", "solutions.part_b_ddpm:ddpm_schedule", "19")
@_own_rng
def _ddpm_schedule(student):
    _schedule_case(student, (), {}, 300, 1e-4, 0.02)
    _schedule_case(student, (), dict(T=20, beta_start=0.001, beta_end=0.2), 20, 0.001, 0.2)
    _schedule_case(student, (7, 0.05, 0.3), {}, 7, 0.05, 0.3)


# ---- the loss -------------------------------------------------------------------------------

def _linear_300() -> torch.Tensor:
    return linear_schedule().alphas_cumprod.clone()


def _made_up(T: int) -> torch.Tensor:
    """A made-up ᾱ, from 0.9 at t = 0 down to 0.05: every coefficient differs from its mistakes."""
    return torch.linspace(0.9, 0.05, T, dtype=torch.float32)


def _ac_text(ac: torch.Tensor) -> str:
    T = len(ac)
    if T == 300 and torch.equal(ac, _linear_300()):
        return "alphas_cumprod of the 300-step linear schedule (β from 1e-4 to 0.02)"
    return (f"alphas_cumprod = torch.linspace({ac[0].item():.2g}, {ac[-1].item():.2g}, {T}) "
            f"(a made-up schedule, T = {T})")


def _prev(ac: torch.Tensor) -> torch.Tensor:
    """ᾱ_{t−1} for t = 0 … T − 1, with ᾱ_{−1} = 1."""
    return torch.cat([torch.ones(1, dtype=ac.dtype), ac[:-1]])


class _Recorder(nn.Module):
    """Stands in for the UNet: ε_θ(x_t, s) = a x_t + 1/4 with a = 1/2 a parameter (so the loss has a
    gradient); keeps what it was fed."""

    in_channels = 1

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.fed = []

    def forward(self, x, t=None, *rest):
        self.fed.append(tuple(v.detach().clone() if isinstance(v, torch.Tensor) else v for v in (x, t)))
        return self.a * x + 0.25


def _error_hint(m: Mismatch) -> Mismatch:
    """Hints for the errors a wrong t or ᾱ_t raises inside the student's code."""
    if "out of bounds" in m.what:
        m.hint = m.hint or ("t indexes alphas_cumprod, whose entries are t = 0 … T − 1: draw t ~ U{0, …, T − 1} "
                            "with torch.randint(0, T, (B,)) (its upper end is excluded)")
    elif "tensors used as indices" in m.what:
        m.hint = m.hint or ("t is an integer step, t ~ U{0, …, T − 1} (torch.randint(0, T, (B,))), not a "
                            "continuous time (torch.rand)")
    elif "must match the size" in m.what:
        m.hint = m.hint or ("ᾱ_t holds one number per image, shape (B,); to scale images of shape (B, 1, 28, 28) "
                            "it needs shape (B, 1, 1, 1): alphas_cumprod[t].reshape(-1, 1, 1, 1)")
    return m


def _check_steps(s, B: int, T: int, inputs: str) -> torch.Tensor:
    """The t / T fed to the model, as the integer steps t (any shape holding one per image)."""
    if s is None:
        raise Mismatch("the model was called without t", inputs,
                       "the noise estimate depends on the step: call the model as model(x_t, t / T)")
    s = torch.as_tensor(s).detach().to(torch.float64).reshape(-1)
    n = s.numel()
    if n != B:
        raise Mismatch(f"the t / T fed to the model holds {n} value{'s' * (n != 1)}, expected one per image ({B})",
                       inputs, "draw one t per image, t ~ U{0, …, T − 1} of shape (B,)" if n == 1 else
                       "feed the model one t / T per image: shape (B,)")
    if B >= 100 and (s == s[0]).all():
        raise Mismatch(f"every image got the same t / T = {s[0].item():.4g}", inputs,
                       "draw one t per image, torch.randint(0, T, (B,)), not one for the whole batch")
    integral = lambda v: bool(((v - v.round()).abs() < 1e-3).all())   # noqa: E731
    k = s * T
    if integral(s) and s.max() >= 1 and s.min() >= 0 and s.max() <= T - 1 and B >= 100:
        raise Mismatch(f"the model was fed integer steps (largest {s.max().item():.0f})", inputs,
                       "feed the model t / T, a float in [0, 1), not the integer step t")
    if s.min() < 0:
        raise Mismatch(f"the t / T fed to the model has values below 0 (smallest {s.min().item():.4g})", inputs,
                       "t ~ U{0, …, T − 1} is an integer draw (torch.randint(0, T, (B,))), not a normal one")
    if T != 300 and not integral(k) and integral(s * 300) and (s * 300).max() <= T - 1:
        raise Mismatch("the t / T fed to the model are multiples of 1/300", inputs,
                       f"T is len(alphas_cumprod) (here {T}), not 300")
    if not integral(k):
        raise Mismatch(f"the t / T fed to the model, times T = {T}, are not whole numbers (e.g. {k[0].item():.4g})",
                       inputs, "t is an integer step, t ~ U{0, …, T − 1} (torch.randint), not a continuous time; "
                               "the model is fed t / T")
    if k.max().round() > T - 1:
        raise Mismatch(f"the model was fed t / T up to {s.max().item():.4g}, i.e. t = {k.max().round().item():.0f}",
                       inputs, "t ~ U{0, …, T − 1}: torch.randint(0, T, (B,)) (its upper end is excluded), not 1 … T")
    if B >= 100:
        mean, std = k.mean().item(), k.std().item()
        mu, sd = (T - 1) / 2, ((T * T - 1) / 12) ** 0.5
        if (abs(mean - mu) > 5 * sd / B ** 0.5 or abs(std - sd) > 0.12 * sd
                or k.min() > 0.03 * T or k.max() < 0.97 * (T - 1)):
            raise Mismatch(f"the t fed to {B} images (t / T times T) have mean {mean:.1f}, standard deviation "
                           f"{std:.1f}, range [{k.min().item():.0f}, {k.max().item():.0f}]; t ~ U{{0, …, {T - 1}}} "
                           f"gives about {mu:.1f}, {sd:.1f} and [0, {T - 1}]", inputs,
                           "draw t ~ U{0, …, T − 1} (torch.randint(0, T, (B,))), one per image")
    return k.round().long()


def _looks_normal(z: torch.Tensor, tol: float = 0.012) -> bool:
    """Mean ≈ 0 and standard deviation ≈ 1 (tol is ~6 standard errors for 300,000 numbers)."""
    if not torch.isfinite(z).all():
        return False
    z = z.double()
    return abs(z.mean().item()) < tol and abs(z.std().item() - 1) < tol


def _uncorrelated(z: torch.Tensor, x: torch.Tensor, tol: float = 0.02) -> bool:
    z, x = z.double().flatten(), x.double().flatten()
    z, x = z - z.mean(), x - x.mean()
    return abs((z @ x / (z.norm() * x.norm() + 1e-12)).item()) < tol


def _x_t_hypotheses(ac: torch.Tensor, k: torch.Tensor):
    """(coefficient of x0, coefficient of ε, hint) of typical wrong x_t, one coefficient per image."""
    a = ac.double()[k]
    alpha = (ac.double() / _prev(ac.double()))[k]
    beta = 1 - alpha
    use_abar = "use ᾱ_t = alphas_cumprod[t], the product of every α up to t,"
    return [
        (a, 1 - a, "√ is missing on ᾱ_t and on 1 − ᾱ_t: x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε"),
        (a, (1 - a).sqrt(), "√ is missing on ᾱ_t: x0 is scaled by √ᾱ_t"),
        (a.sqrt(), 1 - a, "√ is missing on 1 − ᾱ_t: ε is scaled by √(1 − ᾱ_t)"),
        ((1 - a).sqrt(), a.sqrt(), "√ᾱ_t and √(1 − ᾱ_t) swapped: √ᾱ_t scales x0, √(1 − ᾱ_t) scales ε"),
        (a.sqrt(), 1 - a.sqrt(), "ε is scaled by √(1 − ᾱ_t), not 1 − √ᾱ_t"),
        (alpha.sqrt(), beta.sqrt(), f"{use_abar} not this step's α_t = ᾱ_t/ᾱ_(t−1) = 1 − β_t"),
        (beta.sqrt(), alpha.sqrt(), f"{use_abar} not β_t"),
    ]


def _check_x_t(xt, k: torch.Tensor, x0: torch.Tensor, ac: torch.Tensor, inputs: str) -> torch.Tensor:
    """x_t must be √ᾱ_t x0 + √(1 − ᾱ_t) ε with the t fed to the model and ε ~ N(0, I): returns that
    ε, recovered as (x_t − √ᾱ_t x0)/√(1 − ᾱ_t)."""
    if not isinstance(xt, torch.Tensor) or tuple(xt.shape) != tuple(x0.shape):
        raise Mismatch(f"the x_t fed to the model has shape {tuple(getattr(xt, 'shape', ()))}, expected "
                       f"x0's {tuple(x0.shape)}", inputs)
    B = x0.shape[0]
    xt, x0d = xt.double(), x0.double()
    view = lambda v: v.reshape(-1, 1, 1, 1)   # noqa: E731
    a = view(ac.double()[k])
    eps = (xt - a.sqrt() * x0d) / (1 - a).sqrt()
    if torch.allclose(xt, x0d):
        raise Mismatch("the x_t fed to the model is x0", inputs,
                       "the model sees the noisy x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, not the clean x0")
    if B < 100:
        return eps
    if torch.allclose(eps[0], eps[1], atol=1e-4):
        raise Mismatch("every image got the same noise ε", inputs,
                       "draw ε ~ N(0, I) of x0's shape, (B, 1, 28, 28): an independent noise image per digit")
    if eps[0].std() < 0.2 and eps[1].std() < 0.2:
        raise Mismatch("the noise ε is one number per image, the same for all its pixels", inputs,
                       "draw ε of x0's shape: one independent normal number per pixel")
    if _looks_normal(eps) and _uncorrelated(eps, x0d):
        return eps
    m, s = eps.mean().item(), eps.std().item()
    detail = (f"the ε recovered from the x_t and t / T fed to the model, ε = (x_t − √ᾱ_t x0)/√(1 − ᾱ_t), has "
              f"mean {m:.4f} and standard deviation {s:.4f}; ε ~ N(0, I) gives 0 and 1")
    hint = "x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, with ε ~ N(0, I) of x0's shape and ᾱ_t at the t fed to the model as t / T"
    for c0, c1, h in _x_t_hypotheses(ac, k):
        ok = c1 > 0.05
        if ok.sum() < B // 4:
            continue
        z = ((xt - view(c0) * x0d) / view(c1.clamp(min=1e-12)))[ok]
        if _looks_normal(z, 0.02) and _uncorrelated(z, x0d[ok]):
            hint = h
            break
    else:
        if _looks_normal(xt) and _uncorrelated(xt, x0d):
            hint = "the model sees x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, not the noise ε alone"
        elif abs(m - 0.5) < 0.05 and abs(s - 12 ** -0.5) < 0.05:
            hint = "ε ~ N(0, I) is a normal draw (torch.randn), not a uniform one (torch.rand)"
    raise Mismatch("the x_t fed to the model is not √ᾱ_t x0 + √(1 − ᾱ_t) ε with ε ~ N(0, I)", inputs, hint, detail)


def _check_loss_value(got, x0, eps, xt, inputs: str) -> None:
    """The loss against the mean of (ε − ε_θ(x_t))², ε_θ the stand-in's output at the x_t fed."""
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"the loss should be a torch.Tensor, got {type(got).__name__}", inputs,
                       "training calls loss.backward(): return the tensor, not .item()")
    x0, xt = x0.double(), xt.double()
    out = 0.5 * xt + 0.25
    err2 = (eps - out) ** 2
    expect_close(got, err2.mean(), "the loss", inputs, wrong=[
        (lambda: ((x0 - out) ** 2).mean(), "the target is the noise ε, not the clean x0: the UNet predicts ε"),
        (lambda: ((xt - out) ** 2).mean(), "the target is the noise ε, not x_t"),
        (lambda: err2.sum(), "average the squared error over pixels and images (as F.mse_loss does); do not sum it"),
        (lambda: err2.flatten(1).sum(1).mean(), "average over the pixels too (as F.mse_loss does), not the sum "
                                                "over each image's pixels"),
        (lambda: err2.flatten(1).mean(1), "the loss is one number: average over the images too"),
        (lambda: (eps - out).abs().mean(), "square the error (mean squared error), not its absolute value")])
    if not got.requires_grad:
        raise Mismatch("the loss carries no gradient", inputs,
                       "training calls loss.backward(): compute it from the model's output, without .item(), "
                       ".detach() or torch.no_grad()")


def _loss_case(student, seed: int, B: int, ac: torch.Tensor) -> None:
    x0 = torch.rand(B, 1, 28, 28, generator=_gen(100 + seed)) * 2 - 1
    T = len(ac)
    inputs = (f"x0 {describe(x0)}, {_ac_text(ac)}, generator = torch.Generator().manual_seed({seed}), a stand-in "
              f"model ε_θ(x_t, t / T) = x_t / 2 + 1/4")
    model = _Recorder()
    x0_before, ac_before = x0.clone(), ac.clone()
    try:
        got = call(student, model, x0, ac, _gen(seed), inputs=inputs)
    except Mismatch as m:
        raise _error_hint(m)
    _unchanged(x0_before, x0, "x0", inputs, "build x_t as a new tensor; do not change x0 in place")
    _unchanged(ac_before, ac, "alphas_cumprod", inputs, "read alphas_cumprod; do not change it in place")
    if not model.fed:
        raise Mismatch("the model was never called", inputs,
                       "the loss compares the model's noise estimate ε_θ(x_t, t / T) with the noise ε")
    xt, s = model.fed[-1]
    k = _check_steps(s, B, T, inputs)
    eps = _check_x_t(xt, k, x0, ac, inputs)
    _check_loss_value(got, x0, eps, xt, inputs)


@exercise("ddpm_loss", "solutions.part_b_ddpm:ddpm_loss", "19")
@_own_rng
def _ddpm_loss(student):
    for seed, B, ac in [(0, 512, _linear_300()), (1, 512, _made_up(20)), (2, 3, _made_up(20))]:
        _loss_case(student, seed, B, ac)


# ---- the samplers ---------------------------------------------------------------------------

SHAPE = (16, 1, 28, 28)   # 12544 values a step: a z-score's mean is known to ±0.009, its std to ±0.006


def _ramp(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return (torch.arange(h * w, dtype=x.dtype, device=x.device).view(h, w) / (h * w) - 0.5)


def _target(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """The digit the stand-in steers to: a fixed pattern in [-0.6, 0.6], shifted by 0.04 (k + 1) for
    the one-hot row of class k (an all-zero row: no shift); one per row of x."""
    h, w = x.shape[-2:]
    i = torch.arange(h, dtype=x.dtype).view(h, 1)
    j = torch.arange(w, dtype=x.dtype).view(1, w)
    pattern = 0.6 * torch.sin(i / 3) * torch.cos(j / 5)
    if c is None:
        return pattern
    c = c.to(x.dtype)
    shift = 0.04 * (c * torch.arange(1, c.shape[1] + 1, dtype=x.dtype)).sum(dim=1)
    return pattern + shift.view(-1, *[1] * (x.ndim - 1))


def _predict(x: torch.Tensor, s: float, ac: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
    """The stand-in's ε̂(x, s[, c]): the noise that x would hold if it were the target digit noised to
    t = round(s T) (s = t / T), plus a bounded term in x and s, so that x̂0 stays near the target
    (the states stay in a digit's range) while ε̂ depends on x, t and c."""
    T = len(ac)
    t = min(max(round(s * T), 0), T - 1)
    a = ac[t].to(x.dtype)
    return (x - a.sqrt() * _target(x, c)) / (1 - a).sqrt() + 0.3 * torch.tanh(x) + 0.3 * (s - 0.4) * _ramp(x)


class _EpsModel(nn.Module):
    """Stands in for the UNet ε_θ: a fixed smooth function of x, t / T (and c); records every call
    as (x, t / T as a float, c). Any t holding the step's t / T once, or once per image, is accepted."""

    in_channels = 1
    num_classes = 10

    def __init__(self, what: str, ac: torch.Tensor, conditioned: bool = False):
        super().__init__()
        self.what, self.ac, self.conditioned, self.calls = what, ac.clone(), conditioned, []
        self.unused = nn.Parameter(torch.zeros(()))   # so that next(model.parameters()) works

    def forward(self, x, t=None, c=None):
        B = x.shape[0]
        if self.conditioned:
            c = self._condition(x, t, c)
        s = _step_of(t, B, self.what)
        self.calls.append((x.detach().clone(), s, None if c is None else c.detach().clone()))
        return _predict(x, s, self.ac, c if self.conditioned else None)

    def _condition(self, x, t, c):
        return check_condition(x, t, c, self.num_classes, self.what,
                               "pass the step too: model(x, t / T, c) with t / T a tensor of shape (B,)", "estimate")


def _step_of(t, B: int, inputs: str) -> float:
    """A step's t / T: a float, or a tensor holding it once or once per image."""
    if t is None:
        raise Mismatch("the model was called without t", inputs,
                       "pass the step to the model, model(x, t / T) with t / T a tensor of shape (B,)")
    t = torch.as_tensor(t).detach().to(torch.float64).reshape(-1)
    if t.numel() not in (1, B):
        raise Mismatch(f"the model was called with a t of {t.numel()} values for {B} images", inputs,
                       "t / T holds the step once per image: shape (B,)")
    if not (t == t[0]).all():
        raise Mismatch(f"the model was called with t = {describe(t)}", inputs,
                       "all images of the batch share the step: t / T, the same for every image")
    return float(t[0])


class _Step:
    """One step of the loop as the model saw it: t / T, the x fed, the conditions fed with it."""

    def __init__(self, s: float, x: torch.Tensor):
        self.s, self.x, self.conds = s, x, []


def _steps(model: _EpsModel, n: int, inputs: str) -> list[_Step]:
    """The loop's steps from the model's records: a new step wherever t / T or x changes."""
    steps = []
    for x, s, c in model.calls:
        if x.shape[0] % n:
            raise Mismatch(f"the model was fed a batch of {x.shape[0]} for {n} images", inputs,
                           "feed x (or torch.cat([x, x]) for both CFG passes at once)")
        chunks = x.split(n)
        if any(not torch.equal(ch, chunks[0]) for ch in chunks[1:]):
            raise Mismatch(f"at t / T = {s:.4g} the model was fed two different images in one pass", inputs,
                           "both CFG passes (c and zeros) take the same x")
        if not steps or steps[-1].s != s or not torch.equal(steps[-1].x, chunks[0]):
            steps.append(_Step(s, chunks[0]))
        if c is not None:
            steps[-1].conds += list(c.split(n))
    return steps


def _expect_steps(seen: list[float], T: int, inputs: str) -> list[int]:
    """The model must be called at t / T for t = T − 1, …, 0; returns those t."""
    expected = [t / T for t in range(T - 1, -1, -1)]
    close = lambda a, b: len(a) == len(b) and all(abs(u - v) < 1e-6 for u, v in zip(a, b))   # noqa: E731
    if close(seen, expected):
        return list(range(T - 1, -1, -1))
    down = lambda hi, lo, scale=T: [t / scale for t in range(hi, lo - 1, -1)]   # noqa: E731
    candidates = [
        ([float(t) for t in range(T - 1, -1, -1)], "feed the model t / T, a float in [0, 1), not the integer step t"),
        (down(T, 1), "the loop runs t = T − 1, …, 0 (range(T − 1, −1, −1)): it fed t = T first and stopped at "
                     "t = 1"),
        (down(T - 1, 1), "the loop stops before t = 0: take the last step too, t = 0, which lands on x̂0"),
        (down(T, 0), "t starts at T − 1, not T: alphas_cumprod has T entries, t = 0 … T − 1"),
        (down(T - 2, 0), "t starts at T − 1, the last entry of alphas_cumprod"),
        ([t / T for t in range(T)], "sampling runs backwards, from t = T − 1 (noise) down to t = 0 (data)"),
        (down(T - 1, 0, 300), f"T is len(alphas_cumprod) (here {T}), not 300"),
        (down(T - 1, 0, T - 1), "the model is fed t / T, not t / (T − 1)"),
    ]
    hint = next((h for values, h in candidates if close(seen, values)),
                "one model call (or one pair of CFG passes) per step, fed t / T for t = T − 1, T − 2, …, 0")
    if not seen:
        hint = "call the model at every step: ε̂ = model(x, t / T)"
    fmt = lambda v: [round(u, 4) for u in v] if len(v) <= 8 else [round(u, 4) for u in v[:4]] + ["…"] + [   # noqa: E731
        round(u, 4) for u in v[-2:]]
    raise Mismatch(f"the model was fed t / T = {fmt(seen)} ({len(seen)} steps)", inputs, hint,
                   f"expected t / T = {fmt(expected)} ({T} steps)")


class _Loop:
    """One run of a student's sampler on the stand-in, and what the check expects of it."""

    def __init__(self, ac: torch.Tensor, c: torch.Tensor | None = None, guidance: float | None = None):
        self.ac = ac.double()
        self.prev = _prev(self.ac)
        self.c, self.guidance = c, guidance

    def coefficients(self, t: int):
        a_t, a_p = self.ac[t], self.prev[t]
        alpha = a_t / a_p
        return a_t, a_p, alpha, 1 - alpha

    def eps_parts(self, x: torch.Tensor, s: float):
        x = x.double()
        if self.c is None:
            return _predict(x, s, self.ac), None
        return _predict(x, s, self.ac, self.c), _predict(x, s, self.ac, torch.zeros_like(self.c))

    def eps(self, x, s):
        e_c, e_u = self.eps_parts(x, s)
        return e_c if e_u is None else e_u + self.guidance * (e_c - e_u)

    def eps_variants(self, x, s):
        """(ε̂, hint) of typical CFG mistakes."""
        if self.c is None:
            return []
        e_c, e_u = self.eps_parts(x, s)
        g = self.guidance
        formula = "ε̂ = ε̂_u + γ (ε̂_c − ε̂_u)"
        return [
            (e_c + g * (e_c - e_u), f"start from the unconditional estimate: {formula}, not ε̂_c + γ (ε̂_c − ε̂_u)"),
            (e_c + g * (e_u - e_c), f"guidance the wrong way round: {formula}, not ε̂_c + γ (ε̂_u − ε̂_c)"),
            (e_u + g * (e_u - e_c), f"the difference points from ε̂_u to ε̂_c: {formula}"),
            (e_u + g * e_c, f"γ multiplies the difference ε̂_c − ε̂_u, not ε̂_c alone: {formula}"),
            (g * e_c, f"{formula}, not γ ε̂_c"),
            (g * e_u + (e_c - e_u), f"γ multiplies ε̂_c − ε̂_u, not ε̂_u: {formula}"),
            (e_c, f"this is ε̂_c alone: the guidance is missing, {formula}"),
            (e_u, f"this is ε̂_u alone: the conditional estimate is missing, {formula}"),
            (e_u + (g - 1) * (e_c - e_u), f"γ scales ε̂_c − ε̂_u once: {formula}"),
        ]

    def x0_hat(self, x, eps, t):
        a_t = self.ac[t]
        return (x.double() - (1 - a_t).sqrt() * eps) / a_t.sqrt()

    def mean(self, x, eps, t):
        a_t, a_p, alpha, beta = self.coefficients(t)
        x = x.double()
        return a_p.sqrt() * beta / (1 - a_t) * self.x0_hat(x, eps, t) + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x

    def sigma(self, t):
        a_t, a_p, _, beta = self.coefficients(t)
        return (beta * (1 - a_p) / (1 - a_t)).sqrt()

    def mean_variants(self, x, eps, t):
        """(mean, hint) of typical mistakes in the posterior mean of the step t → t − 1."""
        a_t, a_p, alpha, beta = self.coefficients(t)
        x = x.double()
        x0 = self.x0_hat(x, eps, t)
        blend = lambda c0, cx, x0=x0: c0 * x0 + cx * x   # noqa: E731
        wrap = self.ac[t - 1]    # alphas_cumprod[t − 1] as Python reads it at t = 0: the last entry
        out = [
            (x0, "x̂0 at every step: x_(t−1) is the posterior mean (a blend of x̂0 and x_t) plus noise; only the "
                 "last step, t = 0, lands on x̂0"),
            (blend(a_p.sqrt() * (1 - a_t) / (1 - a_t), a_t.sqrt() * (1 - a_p) / (1 - a_t)), _CONFUSED),
            (blend(a_p * beta / (1 - a_t), alpha.sqrt() * (1 - a_p) / (1 - a_t)),
             "√ is missing on ᾱ_(t−1) in x̂0's coefficient √ᾱ_(t−1) β/(1 − ᾱ_t)"),
            (blend(a_p.sqrt() * beta / (1 - a_t), alpha * (1 - a_p) / (1 - a_t)),
             "√ is missing on α in x_t's coefficient √α (1 − ᾱ_(t−1))/(1 − ᾱ_t)"),
            (blend(a_p.sqrt() * alpha / (1 - a_t), beta.sqrt() * (1 - a_p) / (1 - a_t)),
             "α and β swapped: β = 1 − α multiplies x̂0, √α multiplies x_t"),
            (a_p.sqrt() * beta / (1 - a_t) * x + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x0,
             "x̂0 and x_t swapped: √ᾱ_(t−1) β/(1 − ᾱ_t) multiplies x̂0, √α (1 − ᾱ_(t−1))/(1 − ᾱ_t) multiplies x_t"),
            (blend(a_p.sqrt() * beta / (1 - a_t), alpha.sqrt() * (1 - a_p) / (1 - a_t),
                   (x - (1 - a_t) * eps) / a_t), "√ is missing in x̂0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t"),
            (blend(a_p.sqrt() * beta / (1 - a_t), alpha.sqrt() * (1 - a_p) / (1 - a_t),
                   (x + (1 - a_t).sqrt() * eps) / a_t.sqrt()), "x̂0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t: subtract the noise"),
            (x - (1 - a_t).sqrt() * eps, "x̂0 divides by √ᾱ_t: x̂0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t"),
        ]
        if t == 0:
            alpha_w = a_t / wrap
            out += [(x, "at t = 0, ᾱ_(t−1) = 1 (clean data), not ᾱ_0: the last step lands on x̂0"),
                    (wrap.sqrt() * (1 - alpha_w) / (1 - a_t) * x0 + alpha_w.sqrt() * (1 - wrap) / (1 - a_t) * x,
                     "at t = 0, ᾱ_(t−1) = 1 (clean data), not alphas_cumprod[−1], which Python reads as the last "
                     "entry")]
        return out

    def sigma_variants(self, t):
        """(σ, hint) of typical mistakes in the noise of the step t → t − 1."""
        a_t, a_p, _, beta = self.coefficients(t)
        beta_tilde = beta * (1 - a_p) / (1 - a_t)
        return [
            (beta.sqrt(), "σ² is β̃_t = β_t (1 − ᾱ_(t−1))/(1 − ᾱ_t), the variance of q(x_(t−1) | x_t, x0) that the "
                          "docstring gives, not β_t (σ² = β_t is Ho et al.'s other choice)"),
            (beta_tilde, "σ is the square root of the variance: √β̃_t"),
            ((1 - a_t).sqrt(), "σ² is β̃_t = β_t (1 − ᾱ_(t−1))/(1 − ᾱ_t), not 1 − ᾱ_t"),
            ((1 - a_p).sqrt(), "β and ᾱ confused: β̃_t = β (1 − ᾱ_(t−1))/(1 − ᾱ_t) with β = 1 − ᾱ_t/ᾱ_(t−1), "
                               "not 1 − ᾱ_t"),
        ]




def _misfit(z: torch.Tensor) -> float:
    if not torch.isfinite(z).all():
        return float("inf")
    mean, std = _z_stats(z)
    return abs(mean) + abs(std - 1)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return (a @ b / (a.norm() * b.norm() + 1e-12)).item()


def _diagnose(loop: _Loop, steps: list[_Step], ts: list[int], k: int) -> str:
    """The hint of the typical mistake that explains the transitions k, k + 1, … best (all of them)."""
    worst, exact = {}, {}
    for j in range(k, len(steps) - 1):
        x, s, t, nxt = steps[j].x, steps[j].s, ts[j], steps[j + 1].x.double()
        eps = loop.eps(x, s)
        mean, sigma = loop.mean(x, eps, t), loop.sigma(t)
        candidates = [(h, (nxt - mean) / sv) for sv, h in loop.sigma_variants(t)]
        candidates += [(h, (nxt - m) / sigma) for m, h in loop.mean_variants(x, eps, t)]
        candidates += [(h, (nxt - loop.mean(x, e, t)) / sigma) for e, h in loop.eps_variants(x, s)]
        _, a_p, _, _ = loop.coefficients(t)
        candidates += [(h, (nxt - m) / (1 - a_p).sqrt())      # β and ᾱ confused in the mean and in β̃ alike
                       for m, h in loop.mean_variants(x, eps, t) if h == _CONFUSED]
        for h, z in candidates:
            worst[h] = max(worst.get(h, 0.0), _misfit(z))
        exacts = loop.mean_variants(x, eps, t) + [(loop.mean(x, e, t), h) for e, h in loop.eps_variants(x, s)]
        for m, h in exacts:     # the mistake without any noise
            exact[h] = exact.get(h, True) and bool(torch.allclose(nxt, m, atol=1e-4, rtol=1e-4))
    hits = [h for h, ok in exact.items() if ok]
    if hits:
        return hits[0] + "; and the noise √β̃_t z is missing (add it on every step but the last)"
    fits = sorted((score, h) for h, score in worst.items() if score < 0.16)
    return fits[0][1] if fits else ""


def _expect_transitions(loop: _Loop, steps: list[_Step], ts: list[int], inputs: str) -> None:
    """The state after each step (what the model sees next) = posterior mean + √β̃_t z, z ~ N(0, I)."""
    last_z = None
    for k in range(len(steps) - 1):
        x, s, t, nxt = steps[k].x, steps[k].s, ts[k], steps[k + 1].x
        eps = loop.eps(x, s)
        diff = nxt.double() - loop.mean(x, eps, t)
        if not torch.isfinite(diff).all():
            raise Mismatch(f"the state after the step t = {t} holds NaN or inf", inputs,
                           "look for the square root of a negative number or a division by zero")
        z = diff / loop.sigma(t)
        what = f"the step t = {t} → {t - 1}"
        if _standard(z):
            if last_z is not None and abs(_corr(z, last_z)) > 0.3:
                raise Mismatch(f"the noise of {what} repeats the previous step's", inputs,
                               "draw fresh noise z at every step (do not re-seed a generator inside the loop)")
            if abs(_corr(z, eps)) > 0.3:
                raise Mismatch(f"the noise of {what} follows ε̂", inputs,
                               "z is fresh noise, z ~ N(0, I) (torch.randn), not the model's ε̂")
            if abs(_corr(z[0], z[1])) > 0.9:
                raise Mismatch(f"every image got the same noise z in {what}", inputs,
                               "draw z of x's shape, (B, 1, 28, 28): an independent noise image per digit")
            if z.flatten(1).std(dim=1).max() < 0.3:
                raise Mismatch(f"the noise z of {what} is one number per image", inputs,
                               "draw z of x's shape: one independent normal number per pixel")
            last_z = z
            continue
        mean_z, std_z = _z_stats(z)
        if std_z < 1e-3 and abs(mean_z) < 1e-3:
            hint = "the noise is missing: add √β̃_t z, fresh z ~ N(0, I), on every step but the last"
        elif abs(_corr(diff, eps)) > 0.9:
            hint = "z is fresh noise, z ~ N(0, I) (torch.randn), not the model's ε̂"
        elif z.flatten(1).std(dim=1).max() < 0.3 and z.flatten(1).mean(dim=1).std() > 0.3:
            hint = "draw z of x's shape: one independent normal number per pixel, not one per image"
        else:
            hint = _diagnose(loop, steps, ts, k)
        raise Mismatch(f"{what} is not mean + √β̃_t z with z ~ N(0, I)", inputs, hint,
                       f"(x_(t−1) − mean)/√β̃_t has mean {mean_z:.3g} and std {std_z:.3g} over {z.numel()} values, "
                       "expected about 0 and 1")


def _expect_last(loop: _Loop, got, step: _Step, inputs: str) -> None:
    """The last step (t = 0) adds no noise: the output is its mean, x̂0, exactly."""
    x, s = step.x, step.s
    eps = loop.eps(x, s)
    expected = loop.mean(x, eps, 0)
    if isinstance(got, (tuple, list)):
        raise Mismatch(f"it returned a {type(got).__name__}, expected the tensor x", inputs,
                       "return the final x alone")
    wrong = list(loop.mean_variants(x, eps, 0))[1:]
    wrong += [(loop.mean(x, e, 0), h) for e, h in loop.eps_variants(x, s)]
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        if not torch.isfinite(got).all():
            raise Mismatch("the output holds NaN or inf", inputs,
                           "at t = 0, ᾱ_(t−1) = 1 (clean data), not alphas_cumprod[−1], which Python reads as the "
                           "last entry (a negative β̃ has no square root)")
        r = got.double() - expected
        if r.std() > 1e-4 and _standard(r / r.std()) and abs(_corr(r, eps)) < 0.3:
            raise Mismatch("the output is x̂0 plus noise", inputs,
                           "no noise at the last step: t = 0 returns the mean itself (there mean = x̂0)")
    expect_close(got, expected, "the output (the mean of the last step, t = 0: x̂0, with no noise)", inputs, wrong,
                 atol=1e-4, rtol=1e-4)


def _expect_conditions(loop: _Loop, steps: list[_Step], inputs: str) -> None:
    """Every step of the CFG loop feeds the model c once and all-zero rows once (batched or not)."""
    c = loop.c.double()
    zeros, class0 = torch.zeros_like(c), torch.zeros_like(c)
    class0[:, 0] = 1
    for step in steps:
        fed = [q.double() for q in step.conds]
        has = lambda target: any(torch.equal(q, target) for q in fed)   # noqa: E731
        if has(c) and has(zeros):
            continue
        where = f"at t / T = {step.s:.4g}"
        if not has(c):
            raise Mismatch(f"{where} the model was never fed the classes c", inputs,
                           "the conditional pass takes c as it is: ε̂_c = model(x, t / T, c)")
        if has(class0):
            raise Mismatch(f"{where} the unconditional pass was fed class 0's one-hot rows", inputs,
                           "the unconditional estimate is the model's for c = 0, the all-zero rows it saw when the "
                           "class was dropped in training, not class 0's one-hot row")
        raise Mismatch(f"{where} the model was never fed all-zero rows", inputs,
                       "the unconditional pass takes c = 0, all-zero rows of c's shape (torch.zeros_like(c)), "
                       "not c itself")


def _sampler_case(student, ac: torch.Tensor, seed: int, c: torch.Tensor | None = None,
                  guidance: float | None = None) -> None:
    x_T = torch.randn(SHAPE, generator=_gen(seed))
    T = len(ac)
    head = "" if c is None else (f", c = one-hot rows of the classes {c.argmax(1).tolist()}, ")
    inputs = (f"a stand-in model ε̂(x, t / T{', c' if c is not None else ''}) (a fixed smooth function, steering "
              f"towards a fixed pattern{' shifted by class' if c is not None else ''}), "
              f"x_T {describe(x_T)}, {_ac_text(ac)}{head}"
              + (f"guidance = {guidance}" if c is not None else "")
              + f", generator = torch.Generator().manual_seed({seed + 1000})")
    model = _EpsModel(inputs, ac, conditioned=c is not None)
    args = (model, x_T, ac) if c is None else (model, c, x_T, ac, guidance)
    before = [a.clone() for a in args[1:] if isinstance(a, torch.Tensor)]
    with torch.no_grad():
        try:
            got = call(student, *args, _gen(seed + 1000), inputs=inputs)
        except Mismatch as m:
            if "out of bounds" in m.what:
                m.hint = m.hint or "t runs from T − 1 down to 0: alphas_cumprod has T entries, indices 0 … T − 1"
            raise
    names = ["x_T", "alphas_cumprod"] if c is None else ["c", "x_T", "alphas_cumprod"]
    for name, b, a in zip(names, before, [a for a in args[1:] if isinstance(a, torch.Tensor)]):
        _unchanged(b, a, name, inputs, "x += … (or add_, or x[...] = …) changes the caller's tensor: write x = … "
                                       "so that each step makes a new tensor")
    n = SHAPE[0]
    steps = _steps(model, n, inputs)
    ts = _expect_steps([st.s for st in steps], T, inputs)
    if not torch.equal(steps[0].x, x_T):
        raise Mismatch("the first x fed to the model is not x_T", inputs, "start the loop from x = x_T as it is")
    loop = _Loop(ac, c, guidance)
    if c is not None:
        _expect_conditions(loop, steps, inputs)
    _expect_last(loop, got, steps[-1], inputs)
    _expect_transitions(loop, steps, ts, inputs)


def _classes(labels) -> torch.Tensor:
    return F.one_hot(torch.tensor(labels), 10).float()


@exercise("ddpm_sample", "solutions.part_b_ddpm:ddpm_sample", "19")
@_own_rng
def _ddpm_sample(student):
    _sampler_case(student, _made_up(10), 1)
    _sampler_case(student, _linear_300(), 2)


@exercise("ddpm_sample_cfg", "solutions.part_b_ddpm:ddpm_sample_cfg", "19")
@_own_rng
def _ddpm_sample_cfg(student):
    _sampler_case(student, _made_up(10), 3, _classes(list(range(10)) + [0, 3, 1, 7, 9, 2]), 3.0)
    _sampler_case(student, _linear_300(), 4, _classes([1, 8, 0, 2, 6, 3, 9, 5, 4, 7] + list(range(6))), 5.0)
