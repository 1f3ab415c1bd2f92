"""Checks of Part A's exercises: the forward process, denoising, CFG and the four edits.

Every case runs on tiny tensors against ``ToyModel``, a deterministic stand-in for IF that costs
microseconds, and compares the student's output with the course's function on the same inputs.
Random draws come from a fresh seeded generator per call, so a student who draws in the course's
order gets the course's noise exactly.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

import torch

from ..part_a import diffusion, edits
from ..part_a.noise_models import NoiseModel
from ..part_a.schedule import if_scheduler, strided_timesteps
from ._core import Mismatch, call, describe, exercise, expect_close, expect_equal

IF_ALPHAS = "IF's ᾱ_t (1000 steps)"
REDRAWN = ("the formula looks right but ε is drawn differently: draw it once from `generator`, "
           "in im's shape (torch.randn takes generator=), so that a seed gives the course's noise")


class ToyModel(NoiseModel):
    """ε̂ = w(c)·x + v(c)·(t/1000)·ramp, variance tanh(x/2 + v(c)·ramp), w and v read off the condition.

    It depends on x, t and the condition (so CFG, prompts and timesteps all show) and the ramp
    makes it not equivariant to flips or rotations (so a view left out or put on the wrong side
    shows too). The condition may have batch 1 (broadcast) or the batch of x, like IF's UNet.
    """

    def __init__(self, image_shape=(3, 8, 8), variance: bool = True):
        self.scheduler = if_scheduler()
        self.image_shape, self.variance = tuple(image_shape), variance

    def __call__(self, x, t, cond):
        n, (h, w_) = x.shape[0], x.shape[-2:]
        c = cond.expand(n, *cond.shape[1:]) if cond.shape[0] == 1 else cond
        if c.shape[0] != n:
            raise ValueError(f"the condition has batch {c.shape[0]} for x_t of batch {n}")
        c = c.flatten(1).to(x)
        w, v = c.mean(1).view(-1, 1, 1, 1), c[:, 0].view(-1, 1, 1, 1)
        ramp = torch.arange(h * w_, dtype=x.dtype, device=x.device).view(h, w_) / (h * w_)
        eps = w * x + v * (int(t) / 1000) * ramp
        return eps, (torch.tanh(x / 2 + v * ramp) if self.variance else None)


# ---- inputs

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=_gen(seed))


def _image(*shape, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=_gen(seed)) * 2 - 1


def _cond(seed: int, offset: float, n: int = 1) -> torch.Tensor:
    """A small stand-in for a prompt embedding (n, tokens, features); offsets keep ε_c ≠ ε_u."""
    return torch.randn(n, 4, 8, generator=_gen(seed)) * 0.3 + offset


@lru_cache(maxsize=1)
def _if_schedule() -> torch.Tensor:
    return if_scheduler().alphas_cumprod


def _if_alphas() -> torch.Tensor:
    return _if_schedule().clone()   # a copy: an in-place edit by the student must not reach later cases


def _call(student, *args, inputs: str, **kwargs):
    """``call`` on copies of the tensors, so that the course's function later sees the inputs intact."""
    fresh = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    return call(student, *fresh, inputs=inputs,
                **{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})


def _show(**values) -> str:
    return ", ".join(f"{k} = {v if isinstance(v, str) else describe(v)}" for k, v in values.items())


@contextmanager
def _hint(hint):
    """Give ``hint`` (a string, or a callable returning one) to a Mismatch that has none."""
    try:
        yield
    except Mismatch as m:
        if not m.hint:
            m.hint = hint() if callable(hint) else hint
        raise


def _redrawn(got, mean, std) -> bool:
    """Whether got = mean + std·ε′ for some other standard normal ε′: right formula, other draw."""
    if not isinstance(got, torch.Tensor) or got.shape != mean.shape:
        return False
    z = ((got.detach().double().cpu() - mean.double()) / std).flatten()
    return z.numel() >= 100 and abs(z.mean().item()) < 0.2 and 0.85 < z.std().item() < 1.15


def _eps_and_variance(eps_fn, x, t, inputs):
    out = call(eps_fn, x.clone(), t, inputs=inputs)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise Mismatch(f"eps_fn(x, t) returned {type(out).__name__}, expected a pair (eps, variance)",
                       inputs, "return both: eps, variance (variance is None when the model gives none)")
    return out


def _expect_variance(got, expected, inputs, wrong=()):
    if expected is None:
        if got is not None:
            raise Mismatch("the variance should be None: this model predicts none", inputs,
                           "pass the model's None through (the sampler then uses the fixed variance)")
        return
    if got is None:
        raise Mismatch("the variance is None, but the model predicts one", inputs,
                       "return the variance from the model's output too")
    expect_close(got, expected, "the variance", inputs, wrong)


def _off_by_one(value_at, t):
    """The results of reading ᾱ at t − 1 or t + 1 instead of at t."""
    return [(lambda: value_at(t - 1), "t is off by one: alphas_cumprod[t - 1]; use alphas_cumprod[t]"),
            (lambda: value_at(t + 1), "t is off by one: alphas_cumprod[t + 1]; use alphas_cumprod[t]")]


def _cfg(model, cond, uncond, scale, x, t):
    return diffusion.cfg_eps(model, cond, uncond, scale)(x, t)


def _conditional(model, cond, x, t):
    return model(x, t, diffusion.expand_cond(cond, x.shape[0]))


# ---- §1.1 forward process

def _forward_mistakes(x0, eps, ac, t):
    a = ac[t]
    return [
        (a * x0 + (1 - a) * eps, "√ is missing on ᾱ_t and on 1 − ᾱ_t"),
        (a * x0 + (1 - a).sqrt() * eps, "√ is missing on ᾱ_t: x_0 is scaled by √ᾱ_t"),
        (a.sqrt() * x0 + (1 - a) * eps, "√ is missing on 1 − ᾱ_t: ε is scaled by √(1 − ᾱ_t)"),
        ((1 - a).sqrt() * x0 + a.sqrt() * eps,
         "√ᾱ_t and √(1 − ᾱ_t) swapped (or ε and x_0 swapped): √ᾱ_t scales x_0, "
         "√(1 − ᾱ_t) scales ε"),
        (a.sqrt() * x0 + (1 - a.sqrt()) * eps, "ε is scaled by √(1 − ᾱ_t), not 1 − √ᾱ_t"),
        (a.sqrt() * x0 + eps, "ε must be scaled by √(1 − ᾱ_t)"),
        (a.sqrt() * x0, "ε is missing: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε"),
    ] + _off_by_one(lambda t: diffusion.forward(x0, t, ac, noise=eps), t)


@exercise("forward", "part_a.diffusion:forward", "01")
def forward_cases(student):
    ref, ac = diffusion.forward, _if_alphas()
    x0, eps, t = _image(2, 3, 8, 8), _randn(2, 3, 8, 8, seed=1), 500
    inputs = _show(im=x0, t=t, alphas_cumprod=IF_ALPHAS, noise=eps)
    got = _call(student, x0, t, ac, noise=eps, inputs=inputs)
    expect_close(got, ref(x0, t, ac, noise=eps), "x_t", inputs, _forward_mistakes(x0, eps, ac, t))
    expect_equal(got.dtype, x0.dtype, "x_t's dtype", inputs, "keep the image's dtype")

    # a made-up schedule: the ᾱ passed in must be the one used
    ac2, t = torch.linspace(0.999, 0.01, 1000), 300
    inputs = _show(im=x0, t=t, alphas_cumprod="torch.linspace(0.999, 0.01, 1000)", noise=eps)
    got = _call(student, x0, t, ac2, noise=eps, inputs=inputs)
    expect_close(got, ref(x0, t, ac2, noise=eps), "x_t", inputs, _forward_mistakes(x0, eps, ac2, t)
                 + [(ref(x0, t, ac, noise=eps), "alphas_cumprod is ignored: use the one passed in")])

    # as the notebooks call it: an MNIST-shaped image, the default schedule
    x0, eps, t = _image(2, 1, 8, 8, seed=2), _randn(2, 1, 8, 8, seed=3), 750
    inputs = _show(im=x0, t=t, noise=eps) + " (alphas_cumprod left out)"
    with _hint("with alphas_cumprod=None use IF's schedule, diffusion.default_alphas_cumprod()"):
        got = _call(student, x0, t, noise=eps, inputs=inputs)
        expect_close(got, ref(x0, t, noise=eps), "x_t", inputs, _forward_mistakes(x0, eps, ac, t))

    # noise drawn from the generator
    x0, t = _image(2, 3, 8, 8, seed=4), 250
    inputs = _show(im=x0, t=t, alphas_cumprod=IF_ALPHAS) + ", generator = torch.Generator().manual_seed(7)"
    got = _call(student, x0, t, ac, generator=_gen(7), inputs=inputs)
    a = ac[t]
    with _hint(lambda: REDRAWN if _redrawn(got, a.sqrt() * x0, (1 - a).sqrt()) else ""):
        expect_close(got, ref(x0, t, ac, generator=_gen(7)), "x_t", inputs,
                     [(a.sqrt() * x0, "with noise=None, draw ε ~ N(0, I) from the generator"),
                      (lambda: ref(x0, t, ac, generator=_gen(0)), "use the generator passed in")])
    expect_equal(got.dtype, x0.dtype, "x_t's dtype", inputs, "keep the image's dtype")


# ---- §1.3 one-step denoising

def _x0_mistakes(x_t, eps, ac, t):
    a = ac[t]
    return [
        ((x_t - (1 - a) * eps) / a.sqrt(), "√ is missing on 1 − ᾱ_t"),
        ((x_t - (1 - a).sqrt() * eps) / a, "√ is missing on ᾱ_t: divide by √ᾱ_t"),
        ((x_t - (1 - a) * eps) / a, "√ is missing on ᾱ_t and on 1 − ᾱ_t"),
        ((x_t - a.sqrt() * eps) / (1 - a).sqrt(), "√ᾱ_t and √(1 − ᾱ_t) swapped"),
        ((eps - (1 - a).sqrt() * x_t) / a.sqrt(), "ε and x_t swapped"),
        ((x_t + (1 - a).sqrt() * eps) / a.sqrt(), "sign: the noise is subtracted from x_t"),
        (a.sqrt() * (x_t - (1 - a).sqrt() * eps), "divide by √ᾱ_t, don't multiply"),
        (x_t - (1 - a).sqrt() * eps, "the division by √ᾱ_t is missing"),
        (x_t / a.sqrt() - (1 - a).sqrt() * eps,
         "divide all of x_t − √(1 − ᾱ_t) ε̂ by √ᾱ_t, not only x_t"),
    ] + _off_by_one(lambda t: diffusion.estimate_x0(x_t, t, eps, ac), t)


@exercise("estimate_x0", "part_a.diffusion:estimate_x0", "03")
def estimate_x0_cases(student):
    ref, ac = diffusion.estimate_x0, _if_alphas()
    x_t, eps, t = _randn(2, 3, 8, 8, seed=0), _randn(2, 3, 8, 8, seed=1), 500
    inputs = _show(x_t=x_t, t=t, eps=eps, alphas_cumprod=IF_ALPHAS)
    got = _call(student, x_t, t, eps, ac, inputs=inputs)
    expect_close(got, ref(x_t, t, eps, ac), "x̂_0", inputs, _x0_mistakes(x_t, eps, ac, t))

    # with the true noise, x̂_0 is x_0 itself (the forward process solved for x_0)
    x0, eps, t = _image(2, 1, 8, 8, seed=2), _randn(2, 1, 8, 8, seed=3), 750
    a = ac[t]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    inputs = _show(x_t="√ᾱ_t x_0 + √(1 − ᾱ_t) ε", t=t, eps="that ε", alphas_cumprod=IF_ALPHAS)
    got = _call(student, x_t, t, eps, ac, inputs=inputs)
    expect_close(got, x0, "x̂_0 (should be x_0 exactly)", inputs, _x0_mistakes(x_t, eps, ac, t))


# ---- §1.4 iterative denoising

def _posterior_mean(x0, x_t, a_t, a_prev, alpha=None):
    alpha = a_t / a_prev if alpha is None else alpha
    return a_prev.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x_t


def _step_mistakes(x_t, t, t_prev, eps, ac):
    a_t, a_p = ac[t], ac[t_prev]
    alpha, beta = a_t / a_p, 1 - a_t / a_p
    x0 = diffusion.estimate_x0(x_t, t, eps, ac)
    return [
        (x0, "this is x̂_0: the step returns the mean of x_t′, a blend of x̂_0 and x_t"),
        (_posterior_mean(x0, x_t, a_t, a_p, a_t / ac[t - 1]),
         "α_t and β_t are for the whole jump t → t′: α_t = ᾱ_t/ᾱ_t′, not ᾱ_t/ᾱ_{t−1}"),
        (_posterior_mean(x0, x_t, a_t, ac[t - 1]),
         "t′ is the next strided timestep: use alphas_cumprod[t_prev], not t − 1"),
        (a_p * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x_t,
         "√ is missing on ᾱ_t′ in x̂_0's coefficient √ᾱ_t′ β_t/(1 − ᾱ_t)"),
        (a_p.sqrt() * beta / (1 - a_t) * x0 + alpha * (1 - a_p) / (1 - a_t) * x_t,
         "√ is missing on α_t in x_t's coefficient √α_t (1 − ᾱ_t′)/(1 − ᾱ_t)"),
        (a_p.sqrt() * beta / (1 - a_t) * x0 + a_t.sqrt() * (1 - a_p) / (1 - a_t) * x_t,
         "x_t's coefficient uses α_t = ᾱ_t/ᾱ_t′, not ᾱ_t"),
        (a_p.sqrt() * beta / (1 - a_t) * x_t + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x0,
         "x̂_0 and x_t swapped: √ᾱ_t′ β_t/(1 − ᾱ_t) multiplies x̂_0, "
         "√α_t (1 − ᾱ_t′)/(1 − ᾱ_t) multiplies x_t"),
        (_posterior_mean(diffusion.estimate_x0(x_t, t_prev, eps, ac), x_t, a_t, a_p),
         "x̂_0 comes from x_t at timestep t (estimate_x0(x_t, t, …)), not t′"),
    ]


@exercise("denoise_step", "part_a.diffusion:denoise_step", "04")
def denoise_step_cases(student):
    ref, ac = diffusion.denoise_step, _if_alphas()
    for t, t_prev, seed in ((510, 480, 0), (990, 660, 2), (30, 0, 4)):
        x_t, eps = _randn(2, 3, 8, 8, seed=seed), _randn(2, 3, 8, 8, seed=seed + 1)
        inputs = _show(x_t=x_t, t=t, t_prev=t_prev, eps=eps, alphas_cumprod=IF_ALPHAS)
        got = _call(student, x_t, t, t_prev, eps, ac, inputs=inputs)
        expect_close(got, ref(x_t, t, t_prev, eps, ac), "x_t′", inputs,
                     _step_mistakes(x_t, t, t_prev, eps, ac))

    # with the true noise x_t′ = √ᾱ_t′ x_0 + √α_t (1 − ᾱ_t′)/√(1 − ᾱ_t) ε: x_0's coefficients add up
    x0, eps, t, t_prev = _image(2, 1, 8, 8, seed=6), _randn(2, 1, 8, 8, seed=7), 750, 720
    a_t, a_p = ac[t], ac[t_prev]
    x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
    inputs = _show(x_t="√ᾱ_t x_0 + √(1 − ᾱ_t) ε", t=t, t_prev=t_prev, eps="that ε",
                   alphas_cumprod=IF_ALPHAS)
    got = _call(student, x_t, t, t_prev, eps, ac, inputs=inputs)
    expect_close(got, a_p.sqrt() * x0 + (a_t / a_p).sqrt() * (1 - a_p) / (1 - a_t).sqrt() * eps,
                 "x_t′", inputs, _step_mistakes(x_t, t, t_prev, eps, ac))


# ---- §1.6 classifier-free guidance

@exercise("cfg_eps", "part_a.diffusion:cfg_eps", "06")
def cfg_eps_cases(student):
    x, t = _randn(2, 3, 8, 8, seed=0), 500
    c, u = _cond(1, 0.8), _cond(2, -0.3)
    for model, cond, scale in ((ToyModel(), c, 7.0), (ToyModel(), _cond(3, 0.5, n=2), 3.0),
                               (ToyModel(variance=False), c, 5.0)):
        inputs = _show(model="a toy noise model" + ("" if model.variance else " (variance None)"),
                       cond=cond, uncond=u, scale=scale) + "; then eps_fn(x, t) with " + _show(x=x, t=t)
        with _hint("cond holds one prompt for all images (batch 1) or one per image (batch n): "
                   "expand a batch-1 condition to n (diffusion.expand_cond), don't repeat it n times"
                   if cond.shape[0] > 1 else ""):
            eps_fn = _call(student, model, cond, u, scale, inputs=inputs)
            eps, variance = _eps_and_variance(eps_fn, x, t, inputs)
            (eps_c, var_c), (eps_u, var_u) = _conditional(model, cond, x, t), _conditional(model, u, x, t)
            expected, var_expected = _cfg(model, cond, u, scale, x, t)
            expect_close(eps, expected, "eps", inputs, [
                (eps_c + scale * (eps_u - eps_c),
                 "guidance the wrong way round: ε_u + γ(ε_c − ε_u), not ε_c + γ(ε_u − ε_c)"),
                (eps_c + scale * (eps_c - eps_u),
                 "start from ε_u: ε_u + γ(ε_c − ε_u), not ε_c + γ(ε_c − ε_u)"),
                (eps_u + scale * eps_c, "the guidance term is γ(ε_c − ε_u), not γ ε_c"),
                (eps_c, "this is ε_c alone: the guidance is missing"),
                (eps_u, "this is ε_u alone: the conditional estimate is missing"),
                (scale * eps_c, "the guided estimate is ε_u + γ(ε_c − ε_u), not γ ε_c"),
            ])
            _expect_variance(variance, var_expected, inputs, [] if var_c is None else [
                (var_u, "take the variance from the conditional half (cond), not the unconditional one"),
                ((var_c + var_u) / 2, "the variance is the conditional one, not the average of both"),
                (var_u + scale * (var_c - var_u),
                 "guidance applies to ε only: the variance is the conditional one"),
            ])


# ---- §1.7 SDEdit

@exercise("sdedit", "part_a.edits:sdedit", "07")
def sdedit_cases(student):
    ref = edits.sdedit
    im, c, u = _image(2, 3, 8, 8), _cond(1, 0.8), _cond(2, -0.3)
    for timesteps, i_start, cond, seed in ((strided_timesteps(990, 330), 1, c, 3),
                                           (None, 20, _cond(4, 0.6, n=2), 5)):
        model, scale, ts = ToyModel(), 5.0, timesteps or strided_timesteps()
        inputs = (_show(model="a toy noise model", im=im, i_start=i_start, cond=cond, uncond=u, scale=scale,
                        timesteps=repr(timesteps)) + f", generator = torch.Generator().manual_seed({seed})")

        def loop(x, start, eps_fn=None, gen=None):
            eps_fn = eps_fn or diffusion.cfg_eps(model, cond, u, scale)
            return diffusion.denoise_loop(eps_fn, x, start, model.scheduler, ts, gen or _gen(seed),
                                          progress=False)

        def from_noised(start, t=None, eps_fn=None):   # forward draws first, then the loop: one generator
            g = _gen(seed)
            t = ts[i_start] if t is None else t
            return loop(diffusion.forward(im, t, model.alphas_cumprod, generator=g), start, eps_fn, g)

        hint = ("the steps look right but the noise differs: draw it only through forward(…, generator=generator) "
                "and then the loop (same generator)")
        with _hint(hint if timesteps else "with timesteps=None use strided_timesteps(); or " + hint):
            got = _call(student, model, im, i_start, cond, u, scale=scale, timesteps=timesteps,
                       generator=_gen(seed), progress=False, inputs=inputs)
            expect_close(got, ref(model, im, i_start, cond, u, scale=scale, timesteps=timesteps,
                                  generator=_gen(seed), progress=False), "the edited image", inputs, [
                (lambda: loop(im, i_start),
                 "SDEdit starts from the clean image: noise it to t = timesteps[i_start] first"),
                (lambda: from_noised(i_start, t=i_start),
                 "i_start is an index into timesteps: noise to t = timesteps[i_start], not t = i_start"),
                (lambda: from_noised(0), "the loop must start at index i_start, where the noise level matches"),
                (lambda: from_noised(i_start + 1), "the loop must start at index i_start, not i_start + 1"),
                (lambda: from_noised(i_start, eps_fn=diffusion.conditional_eps(model, cond)),
                 "denoise with classifier-free guidance (cfg_eps with uncond and scale), "
                 "not the conditional ε alone"),
            ])


# ---- §1.7.2 inpainting

@exercise("keep_known", "part_a.edits:keep_known", "08")
def keep_known_cases(student):
    ref, ac = edits.keep_known, _if_alphas()
    x_t, im, mask = _randn(2, 3, 8, 8, seed=0), _image(2, 3, 8, 8, seed=1), edits.box_mask(2, 2, 4, 5, size=8)
    polarity = ("mask polarity swapped: m = 1 marks the pixels to generate (keep x_t there), "
                "m = 0 the known ones (take im there)")

    t, seed = 480, 5
    inputs = (_show(x_t=x_t, t=t, im=im, mask="box_mask(2, 2, 4, 5, size=8)", alphas_cumprod=IF_ALPHAS)
              + f", generator = torch.Generator().manual_seed({seed})")
    got = _call(student, x_t, t, im, mask, ac, _gen(seed), inputs=inputs)
    known = diffusion.forward(im, t, ac, generator=_gen(seed))
    keep = (mask == 0).expand_as(im)
    a = ac[t]
    with _hint(lambda: "the formula looks right but the noise differs: noise im with "
               "forward(im, t, alphas_cumprod, generator=generator), one draw from the generator"
               if _redrawn(got[keep], a.sqrt() * im[keep], (1 - a).sqrt()) else ""):
        expect_close(got, ref(x_t, t, im, mask, ac, _gen(seed)), "x_t", inputs, [
            ((1 - mask) * x_t + mask * known, polarity),
            (mask * x_t + (1 - mask) * im,
             "the known part must be noised to t (forward(im, t, …)); the clean im only at t = 0"),
            (known, "this is the noised image alone: blend it with x_t through the mask"),
            (mask * x_t + (1 - mask) * diffusion.forward(im, t - 1, ac, generator=_gen(seed)),
             "t is off by one: noise the known part to t itself"),
        ])
    expect_equal(got.dtype, x_t.dtype, "x_t's dtype", inputs, "keep the images' dtype")

    # the last step (t = 0) puts back the clean image, so the kept pixels end exact; one mask per image
    mask = torch.cat([mask, edits.box_mask(0, 4, 8, 4, size=8)])
    inputs = (_show(x_t=x_t, t=0, im=im, mask="2 box masks, one per image", alphas_cumprod=IF_ALPHAS)
              + f", generator = torch.Generator().manual_seed({seed})")
    got = _call(student, x_t, 0, im, mask, ac, _gen(seed), inputs=inputs)
    expect_close(got, mask * x_t + (1 - mask) * im, "x_0", inputs, [
        ((1 - mask) * x_t + mask * im, polarity),
        (mask * x_t + (1 - mask) * diffusion.forward(im, 0, ac, generator=_gen(seed)),
         "at t = 0 put back the clean im itself, not forward(im, 0): the kept pixels must end exact"),
    ])


# ---- §1.8 visual anagrams

@exercise("anagram_eps", "part_a.edits:anagram_eps", "10")
def anagram_eps_cases(student):
    x, t = _randn(2, 3, 8, 8, seed=0), 500
    c1, c2, u = _cond(1, 0.8), _cond(2, -0.6), _cond(3, 0.2)
    for model, view, label, scale in ((ToyModel(), edits.FLIP, "edits.FLIP", 7.0),
                                      (ToyModel(variance=False), edits.ROTATE_90, "edits.ROTATE_90", 4.0)):
        inputs = (_show(model="a toy noise model" + ("" if model.variance else " (variance None)"),
                        cond1=c1, cond2=c2, uncond=u, scale=scale, view=label)
                  + "; then eps_fn(x, t) with " + _show(x=x, t=t))
        eps_fn = _call(student, model, c1, c2, u, scale, view, inputs=inputs)
        eps, variance = _eps_and_variance(eps_fn, x, t, inputs)
        expected, var_expected = edits.anagram_eps(model, c1, c2, u, scale, view)(x, t)
        (e1, v1), (e2, v2) = _cfg(model, c1, u, scale, x, t), _cfg(model, c2, u, scale, view.apply(x), t)
        e2_on_x, _ = _cfg(model, c2, u, scale, x, t)
        expect_close(eps, expected, "eps", inputs, [
            ((e1 + e2) / 2, "ε_2, computed on view(x_t), is not mapped back: apply view.invert to it"),
            ((e1 + view.invert(e2_on_x)) / 2, "ε_2 must be computed on the transformed image view.apply(x_t)"),
            ((e1 + e2_on_x) / 2, "the view is not used: ε_2 = view⁻¹(ε(view(x_t), prompt 2))"),
            (e1 + view.invert(e2), "average the two estimates: divide their sum by 2"),
            ((e1 + view.apply(e2)) / 2,
             "map ε_2 back with view.invert, not view.apply (they differ for a 90° rotation)"),
            (lambda: (e1 + view.apply(_cfg(model, c2, u, scale, view.invert(x), t)[0])) / 2,
             "view.apply and view.invert are the wrong way round: apply on x_t, invert on ε_2"),
            (lambda: (_cfg(model, c2, u, scale, x, t)[0]
                      + view.invert(_cfg(model, c1, u, scale, view.apply(x), t)[0])) / 2,
             "prompts swapped: prompt 1 goes with x_t, prompt 2 with view(x_t)"),
            (lambda: (_conditional(model, c1, x, t)[0]
                      + view.invert(_conditional(model, c2, view.apply(x), t)[0])) / 2,
             "each ε needs classifier-free guidance (cfg_eps with uncond and scale)"),
            (e1, "this is ε_1 alone: average it with view⁻¹(ε_2)"),
        ])
        _expect_variance(variance, var_expected, inputs, [] if v1 is None else [
            (v1, "average the variance like ε: (v_1 + view⁻¹(v_2))/2"),
            ((v1 + v2) / 2, "map the view's variance back with view.invert too"),
        ])


# ---- §1.9 hybrid images

@exercise("hybrid_eps", "part_a.edits:hybrid_eps", "11")
def hybrid_eps_cases(student):
    x, t, kernel_size, sigma = _randn(2, 3, 40, 40, seed=0), 500, 9, 1.5
    c1, c2, u = _cond(1, 0.8), _cond(2, -0.6), _cond(3, 0.2)
    for model, scale in ((ToyModel((3, 40, 40)), 7.0), (ToyModel((3, 40, 40), variance=False), 4.0)):
        inputs = (_show(model="a toy noise model" + ("" if model.variance else " (variance None)"),
                        cond_far=c1, cond_near=c2, uncond=u, scale=scale, kernel_size=kernel_size, sigma=sigma)
                  + "; then eps_fn(x, t) with " + _show(x=x, t=t))
        eps_fn = _call(student, model, c1, c2, u, scale, kernel_size, sigma, inputs=inputs)
        eps, variance = _eps_and_variance(eps_fn, x, t, inputs)
        expected, var_expected = edits.hybrid_eps(model, c1, c2, u, scale, kernel_size, sigma)(x, t)
        (e1, v1), (e2, v2) = _cfg(model, c1, u, scale, x, t), _cfg(model, c2, u, scale, x, t)

        def low(e):
            return edits.lowpass(e, kernel_size, sigma)

        def high(e):
            return edits.highpass(e, kernel_size, sigma)

        expect_close(eps, expected, "eps", inputs, [
            (lambda: high(e1) + low(e2),
             "lowpass and highpass swapped (or the prompts): low frequencies from cond_far, high from cond_near"),
            (lambda: low(e1) + e2,
             "highpass(ε_2) is ε_2 − lowpass(ε_2): the low frequencies of ε_2 must go"),
            (lambda: e1 + high(e2), "lowpass ε_1: only its low frequencies are kept"),
            ((e1 + e2) / 2, "no filtering: ε = lowpass(ε_1) + highpass(ε_2)"),
            (lambda: edits.lowpass(e1) + edits.highpass(e2),
             "kernel_size and sigma are ignored: pass them to the filters"),
            (lambda: low(_conditional(model, c1, x, t)[0]) + high(_conditional(model, c2, x, t)[0]),
             "each ε needs classifier-free guidance (cfg_eps with uncond and scale)"),
        ])
        _expect_variance(variance, var_expected, inputs, [] if v1 is None else [
            (v1, "combine the variances like ε: lowpass(v_1) + highpass(v_2)"),
            ((v1 + v2) / 2, "combine the variances like ε, not by averaging: lowpass(v_1) + highpass(v_2)"),
            (lambda: high(v1) + low(v2), "the variances' lowpass and highpass are swapped"),
        ])
