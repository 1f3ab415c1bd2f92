"""Checks of Part A's exercises: the forward process, one-step and iterative denoising, CFG, SDEdit,
inpainting, anagrams and hybrids.

The loops are graded by what they feed the model. ``ToyModel``, a deterministic stand-in for IF
that costs microseconds, records every call (x, t, cond); the check then verifies, from the
records alone, that the loop visits ``timesteps[i_start:-1]`` in order, starts from the right
image, makes every transition x_t′ = posterior mean(x_t, ε̂) + σ z with z standard normal
(statistically, on thousands of pixels), adds no noise on the last step (the output is the last
posterior mean exactly) and, for inpainting, keeps the known pixels at forward(im, t′). So any
order of random draws, the generator or torch's global RNG, one batched or two separate CFG
passes all pass. Every case runs under a forked, seeded global RNG: deterministic, and the
notebook's RNG is untouched. Where a typical mistake has a recognisable result, its hint is given.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from functools import lru_cache

import torch

from ..part_a import diffusion, edits
from ..part_a.noise_models import NoiseModel, OracleNoiseModel
from ..part_a.schedule import if_scheduler, strided_timesteps
from ._core import Mismatch, call, describe, exercise, expect_close, expect_equal
from ._core import standard as _standard, z_stats as _z_stats

IF_ALPHAS = "IF's ᾱ_t (1000 steps)"
SHAPE = (2, 3, 32, 32)   # 6144 values: a z-score's mean is known to ±0.013, its std to ±0.009


def own_rng(cases):
    """Run ``cases`` under a forked global RNG seeded to 0: a student's torch.randn_like draws are
    reproducible, and the notebook's own RNG state is left as it was."""
    @functools.wraps(cases)
    def run(student):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return cases(student)
    return run


def _timestep(t) -> int:
    if isinstance(t, torch.Tensor):
        flat = t.detach().flatten()
        if flat.numel() == 0 or not torch.all(flat == flat[0]):
            raise ValueError(f"t must be one timestep for the whole batch, got {describe(t)}")
        t = flat[0].item()
    if int(t) != t:
        raise ValueError(f"t must be an integer timestep, got {t}")
    return int(t)


class ToyModel(NoiseModel):
    """ε̂ = w(c)·x + v(c)·(t/1000)·ramp, variance tanh(x/4 + 1.5 w(c)), w and v read off the condition.

    It depends on x, t and the condition (so CFG, prompts and timesteps all show), its variance
    differs between the prompt (≈ 0.8) and the empty prompt (≈ −0.4), and the ramp makes it not
    equivariant to flips or rotations. The condition may have batch 1 (broadcast) or the batch of
    x, like IF's UNet. Every call is recorded in ``calls`` as (x, t, cond of x's batch).
    """

    def __init__(self, image_shape=SHAPE[1:], variance: bool = True, scheduler=None):
        self.scheduler = scheduler or if_scheduler()
        self.image_shape, self.variance = tuple(image_shape), variance
        self.calls = []

    def __call__(self, x, t, cond):
        t = _timestep(t)
        n = x.shape[0]
        c = cond.expand(n, *cond.shape[1:]) if cond.shape[0] == 1 else cond
        if c.shape[0] != n:
            raise ValueError(f"the condition has batch {c.shape[0]} for x_t of batch {n}: a condition of "
                             "batch 1 is broadcast, any other must match x_t (expand both conditions to "
                             "the batch of x_t before torch.cat)")
        self.calls.append((x.detach().clone(), t, c.detach().clone()))
        return self.predict(x, t, c)

    def predict(self, x, t, c):
        """The output for x at t under condition c (of x's batch), without recording."""
        h, w_ = x.shape[-2:]
        c = c.flatten(1).to(x)
        w, v = c.mean(1).view(-1, 1, 1, 1), c[:, 0].view(-1, 1, 1, 1)
        ramp = torch.arange(h * w_, dtype=x.dtype, device=x.device).view(h, w_) / (h * w_)
        eps = w * x + v * (int(t) / 1000) * ramp
        return eps, (torch.tanh(x / 4 + 1.5 * w) if self.variance else None)


def _linear_schedule():
    """A made-up scheduler, ᾱ from 0.9 at t = 0 down to 0.02: x_0's coefficients differ from IF's
    (where ᾱ_0 ≈ 1 hides many mistakes on the last step), and using IF's ᾱ instead shows."""
    ac = torch.linspace(0.9, 0.02, 1000, dtype=torch.float64)
    betas = 1 - ac / torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    return if_scheduler(trained_betas=betas.tolist())


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


def _model_text(model: ToyModel) -> str:
    schedule = "IF's ᾱ" if model.alphas_cumprod[0] > 0.99 else "ᾱ = linspace(0.9, 0.02, 1000)"
    return f"a toy noise model ({schedule}, {'a predicted variance' if model.variance else 'variance None'})"


@contextmanager
def _hint(hint):
    """Give ``hint`` (a string, or a callable returning one) to a Mismatch that has none."""
    try:
        yield
    except Mismatch as m:
        if not m.hint:
            m.hint = hint() if callable(hint) else hint
        raise




def _is_forward(x: torch.Tensor, im: torch.Tensor, a: torch.Tensor) -> bool:
    """Whether x (flattened values) looks like √a im + √(1 − a) ε: standardized residuals N(0, 1),
    and the regression of x on im gives the slope √a (to 6 standard errors)."""
    x, im, a = x.double().flatten(), im.double().flatten(), a.double()
    if not _standard((x - a.sqrt() * im) / (1 - a).sqrt()):
        return False
    tol = max(6 * (1 - a).sqrt().item() / im.norm().item(), 0.02)
    return abs((x @ im / (im @ im)).item() - a.sqrt().item()) < tol


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return (a @ b / (a.norm() * b.norm() + 1e-12)).item()


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
    return diffusion.cfg_eps(_Quiet(model), cond, uncond, scale)(x, t)


def _conditional(model, cond, x, t):
    return _Quiet(model)(x, t, diffusion.expand_cond(cond, x.shape[0]))


class _Quiet:
    """The toy model without the record (the check's own evaluations are not the student's calls)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x, t, cond):
        c = cond.expand(x.shape[0], *cond.shape[1:]) if cond.shape[0] == 1 else cond
        return self.model.predict(x, t, c)


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


@exercise("forward", "solutions.part_a:forward", "01")
@own_rng
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
    with _hint("with alphas_cumprod=None use IF's schedule, default_alphas_cumprod()"):
        got = _call(student, x0, t, noise=eps, inputs=inputs)
        expect_close(got, ref(x0, t, noise=eps), "x_t", inputs, _forward_mistakes(x0, eps, ac, t))

    # noise drawn by the function: from the generator or torch's global RNG, either is fine
    x0, t = _image(*SHAPE, seed=4), 250
    a = ac[t]
    for generator in (_gen(7), None):
        inputs = (_show(im=x0, t=t, alphas_cumprod=IF_ALPHAS)
                  + (", generator = torch.Generator().manual_seed(7)" if generator else ", generator = None"))
        got = _call(student, x0, t, ac, generator=generator, inputs=inputs)
        if not isinstance(got, torch.Tensor) or got.shape != x0.shape:
            expect_close(got, x0, "x_t", inputs)   # names the type or shape
        expect_equal(got.dtype, x0.dtype, "x_t's dtype", inputs, "keep the image's dtype")
        z = (got - a.sqrt() * x0) / (1 - a).sqrt()
        if not _standard(z):
            mean, std = _z_stats(z)
            hint = ("with noise=None, draw ε ~ N(0, I) yourself" if std < 1e-6 else
                    "ε ~ N(0, I) is torch.randn (normal), not torch.rand (uniform)" if 0.4 < mean < 0.6 else
                    "√ᾱ_t scales x_0 and √(1 − ᾱ_t) scales ε ~ N(0, I), drawn in im's shape")
            raise Mismatch("x_t is not √ᾱ_t x_0 + √(1 − ᾱ_t) ε with ε ~ N(0, I)", inputs, hint,
                           f"(x_t − √ᾱ_t x_0)/√(1 − ᾱ_t) has mean {mean:.3g} and std {std:.3g} over "
                           f"{z.numel()} values, expected about 0 and 1")
        if abs(_corr(z, x0)) > 0.2:
            raise Mismatch("the noise ε depends on the image", inputs, "draw ε independently of im")
        again = _call(student, x0, t, ac, generator=_gen(8) if generator else None, inputs=inputs)
        if isinstance(again, torch.Tensor) and torch.equal(again, got):
            raise Mismatch("two calls with noise=None give the same x_t" + (" for two different generators"
                           if generator else ""), inputs,
                           "draw fresh noise on every call" + (", from the generator passed in" if generator else ""))


# ---- §1.3 one-step denoising

def _x0_formula(x_t, eps, a):
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def _x0_mistakes(x_t, eps, ac, t, hint_x0=lambda h: h):
    a = ac[t]
    return [(value, hint_x0(hint)) for value, hint in [
        ((x_t - (1 - a) * eps) / a.sqrt(), "x̂_0: √ is missing on 1 − ᾱ_t"),
        ((x_t - (1 - a).sqrt() * eps) / a, "x̂_0: √ is missing on ᾱ_t: divide by √ᾱ_t"),
        ((x_t - (1 - a) * eps) / a, "x̂_0: √ is missing on ᾱ_t and on 1 − ᾱ_t"),
        ((x_t - a.sqrt() * eps) / (1 - a).sqrt(), "x̂_0: √ᾱ_t and √(1 − ᾱ_t) swapped"),
        ((eps - (1 - a).sqrt() * x_t) / a.sqrt(), "x̂_0: ε̂ and x_t swapped"),
        ((x_t + (1 - a).sqrt() * eps) / a.sqrt(), "x̂_0: sign: the noise is subtracted from x_t"),
        (a.sqrt() * (x_t - (1 - a).sqrt() * eps), "x̂_0: divide by √ᾱ_t, don't multiply"),
        (x_t - (1 - a).sqrt() * eps, "x̂_0: the division by √ᾱ_t is missing"),
        (x_t / a.sqrt() - (1 - a).sqrt() * eps,
         "x̂_0: divide all of x_t − √(1 − ᾱ_t) ε̂ by √ᾱ_t, not only x_t"),
        (_x0_formula(x_t, eps, ac[t - 1]), "x̂_0: t is off by one: alphas_cumprod[t - 1]; use alphas_cumprod[t]"),
        (_x0_formula(x_t, eps, ac[min(t + 1, len(ac) - 1)]),
         "x̂_0: t is off by one: alphas_cumprod[t + 1]; use alphas_cumprod[t]"),
    ]]


@exercise("one_step_denoise", "solutions.part_a:one_step_denoise", "03")
@own_rng
def one_step_denoise_cases(student):
    for model, t, cond, seed in ((ToyModel(), 500, _cond(1, 0.8), 0),
                                 (ToyModel(scheduler=_linear_schedule(), variance=False), 700, _cond(2, -0.4, n=2), 2)):
        x_t = _randn(*SHAPE, seed=seed)
        ac = model.alphas_cumprod
        inputs = _show(model=_model_text(model), x_t=x_t, t=t, cond=cond)
        got = _call(student, model, x_t, t, cond, inputs=inputs)
        if isinstance(got, (tuple, list)):
            raise Mismatch(f"returned a {type(got).__name__}, expected the tensor x̂_0", inputs,
                           "the model returns (ε̂, variance): take ε̂ and return x̂_0 alone")
        calls = [(tt, c) for _, tt, c in model.calls]
        if not calls:
            raise Mismatch("the model was never called", inputs, "ε̂, _ = model(x_t, t, cond)")
        if any(tt != t for tt, _ in calls):
            raise Mismatch(f"the model was called at t = {[tt for tt, _ in calls]}, expected {t}", inputs,
                           "call the model at the timestep t of x_t")
        eps, _ = _conditional(model, cond, x_t, t)
        wrong = _x0_mistakes(x_t, eps, ac, t) + [
            (_x0_formula(x_t, eps, _if_alphas()[t]),
             "use the model's schedule, model.alphas_cumprod, not IF's default")]
        if cond.shape[0] > 1:
            wrong.append((_x0_formula(x_t, _conditional(model, cond[:1], x_t, t)[0], ac[t]),
                          "pass cond to the model as it is (one condition per image here)"))
        expect_close(got, _x0_formula(x_t, eps, ac[t]), "x̂_0", inputs, wrong)

    # with the true noise, x̂_0 is x_0 itself (the forward process solved for x_0)
    x0, eps, t = _image(2, 1, 8, 8, seed=2), _randn(2, 1, 8, 8, seed=3), 750
    oracle = OracleNoiseModel(x0)
    x_t = diffusion.forward(x0, t, oracle.alphas_cumprod, noise=eps)
    inputs = _show(model="an oracle that returns the true ε", x_t="√ᾱ_t x_0 + √(1 − ᾱ_t) ε", t=t, cond="None")
    got = _call(student, oracle, x_t, t, None, inputs=inputs)
    expect_close(got, x0, "x̂_0 (should be x_0 exactly)", inputs, _x0_mistakes(x_t, eps, oracle.alphas_cumprod, t),
                 atol=1e-4)


# ---- §1.4–1.7.2 the loops, graded by what they feed the model

def _posterior_mean(x0, x_t, a_t, a_prev, alpha=None):
    alpha = a_t / a_prev if alpha is None else alpha
    return a_prev.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x_t


def _mean(x_t, t, t_prev, eps, ac):
    return _posterior_mean(_x0_formula(x_t, eps, ac[t]), x_t, ac[t], ac[t_prev])


def _std(ac, t, t_prev, variance):
    """σ of the jump t → t′: √β̃ without a predicted variance, else IF's learned range."""
    a_t, a_prev = ac[t].double(), ac[t_prev].double()
    beta = 1 - a_t / a_prev
    beta_tilde = (beta * (1 - a_prev) / (1 - a_t)).clamp(min=1e-20)
    if variance is None:
        return beta_tilde.sqrt()
    frac = (variance.double() + 1) / 2
    return torch.exp(0.5 * (frac * beta.log() + (1 - frac) * beta_tilde.log()))


def _step_mistakes(x_t, t, t_prev, eps, ac):
    """Results of typical mistakes in the posterior mean of the jump t → t′ (no noise)."""
    a_t, a_p = ac[t], ac[t_prev]
    alpha, beta = a_t / a_p, 1 - a_t / a_p
    x0 = _x0_formula(x_t, eps, a_t)
    return [
        (x0, "this is x̂_0: the loop returns the posterior mean of its last step (t′ = 0), a blend of "
             "x̂_0 and x_t"),
        (x_t, "the last step is missing: the loop must also take the step that lands on t′ = 0"),
        (_posterior_mean(x0, x_t, a_t, a_p, a_t / ac[t - 1]),
         "α_t and β_t are for the whole jump t → t′: α_t = ᾱ_t/ᾱ_t′, not ᾱ_t/ᾱ_{t−1}"),
        (_posterior_mean(x0, x_t, a_t, ac[t - 1]),
         "t′ is the next strided timestep: use alphas_cumprod[t′], not t − 1"),
        (a_p * beta / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x_t,
         "√ is missing on ᾱ_t′ in x̂_0's coefficient √ᾱ_t′ β_t/(1 − ᾱ_t)"),
        (a_p.sqrt() * beta / (1 - a_t) * x0 + alpha * (1 - a_p) / (1 - a_t) * x_t,
         "√ is missing on α_t in x_t's coefficient √α_t (1 − ᾱ_t′)/(1 − ᾱ_t)"),
        (a_p.sqrt() * beta / (1 - a_t) * x0 + a_t.sqrt() * (1 - a_p) / (1 - a_t) * x_t,
         "x_t's coefficient uses α_t = ᾱ_t/ᾱ_t′, not ᾱ_t"),
        (a_p.sqrt() * (1 - a_t) / (1 - a_t) * x0 + a_t.sqrt() * (1 - a_p) / (1 - a_t) * x_t,
         "α_t and β_t are for the jump: α_t = ᾱ_t/ᾱ_t′ and β_t = 1 − α_t, not ᾱ_t and 1 − ᾱ_t"),
        (a_p.sqrt() * alpha / (1 - a_t) * x0 + beta.sqrt() * (1 - a_p) / (1 - a_t) * x_t,
         "α_t and β_t swapped: β_t = 1 − α_t multiplies x̂_0, √α_t multiplies x_t"),
        (a_p.sqrt() * beta / (1 - a_t) * x_t + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x0,
         "x̂_0 and x_t swapped: √ᾱ_t′ β_t/(1 − ᾱ_t) multiplies x̂_0, "
         "√α_t (1 − ᾱ_t′)/(1 − ᾱ_t) multiplies x_t"),
        (_posterior_mean(_x0_formula(x_t, eps, a_p), x_t, a_t, a_p),
         "x̂_0 comes from x_t at timestep t (ᾱ_t), not t′"),
    ] + [(_posterior_mean(x0_wrong, x_t, a_t, a_p), hint) for x0_wrong, hint in _x0_mistakes(x_t, eps, ac, t)]


class _Case:
    """One run of a student's loop on the toy model, and what the check expects of it."""

    def __init__(self, model, timesteps, i_start, cond, uncond=None, scale=None, im=None, mask=None):
        self.model, self.timesteps, self.i_start = model, timesteps, i_start
        self.cond, self.uncond, self.scale, self.im, self.mask = cond, uncond, scale, im, mask
        self.ac = model.alphas_cumprod

    def mask_region(self):
        """Where the loop generates: everywhere, or where mask = 1."""
        if self.mask is None:
            return torch.ones(SHAPE, dtype=torch.bool)
        return (self.mask == 1).expand(SHAPE)

    def guided(self, x, t):
        """(ε̂, variance) the loop should use at x, t: CFG with the conditional variance, or plain."""
        if self.uncond is None:
            return _conditional(self.model, self.cond, x, t)
        return _cfg(self.model, self.cond, self.uncond, self.scale, x, t)

    def eps_variants(self, x, t):
        """(ε̂, hint) of typical CFG mistakes."""
        if self.uncond is None:
            return []
        (e_c, _), (e_u, _) = _conditional(self.model, self.cond, x, t), _conditional(self.model, self.uncond, x, t)
        s = self.scale
        return [
            (e_c + s * (e_u - e_c), "guidance the wrong way round: ε_u + γ(ε_c − ε_u), not ε_c + γ(ε_u − ε_c)"),
            (e_c + s * (e_c - e_u), "start from ε_u: ε_u + γ(ε_c − ε_u), not ε_c + γ(ε_c − ε_u)"),
            (e_u + s * e_c, "the guidance term is γ(ε_c − ε_u), not γ ε_c"),
            (e_c, "this is ε_c alone: classifier-free guidance ε_u + γ(ε_c − ε_u) is missing"),
            (e_u, "this is ε_u alone: the conditional estimate is missing"),
            (s * e_c, "the guided estimate is ε_u + γ(ε_c − ε_u), not γ ε_c"),
            (e_u + (s - 1) * (e_c - e_u), "γ scales ε_c − ε_u once: ε_u + γ(ε_c − ε_u)"),
        ]

    def sigma_variants(self, x, t, t_prev):
        """(σ, hint) of typical mistakes in the noise of the jump t → t′."""
        ac, var = self.ac, self.guided(x, t)[1]
        out = []
        if var is not None:
            out.append((_std(ac, t, t_prev, None), "the model predicts a variance: pass it to add_jump_variance "
                        "(σ² then lies between β̃ and β)"))
            out.append((var.abs(), "the variance is the model's learned-range output, not σ: turn it into σ "
                        "with add_jump_variance(model.alphas_cumprod, t, t′, variance, x, generator)"))
            if self.uncond is not None:
                (_, v_c), (_, v_u) = (_conditional(self.model, self.cond, x, t),
                                      _conditional(self.model, self.uncond, x, t))
                out.append((_std(ac, t, t_prev, v_u), "take the variance from the conditional pass (cond), "
                            "not the unconditional one"))
                out.append((_std(ac, t, t_prev, v_u + self.scale * (v_c - v_u)),
                            "guidance applies to ε̂ only: the variance is the conditional pass's"))
                out.append((_std(ac, t, t_prev, (v_c + v_u) / 2), "the variance is the conditional pass's, "
                            "not the average of both"))
        out.append((_std(ac, t, t - 1, var), "σ is for the whole jump t → t′ (pass t′ = timesteps[i + 1]), "
                    "not for one step t → t − 1"))
        a_t, a_p = ac[t], ac[t_prev]
        out.append(((1 - a_t / a_p).sqrt(), "σ² = β̃ (or the learned range), not β: use add_jump_variance"))
        out.append((_std(ac, t, t_prev, var) ** 2, "σ is the square root of the variance"))
        nxt = self.timesteps.index(t_prev) + 1
        if nxt < len(self.timesteps) and self.timesteps[nxt] > 0:
            out.append((_std(ac, t_prev, self.timesteps[nxt], var),
                        "add_jump_variance takes this step's jump t → t′, not the next one"))
        return out


def _steps(model, n, inputs):
    """The loop's steps from the model's records: (t, x_t) per run of calls at one timestep."""
    steps = []
    for x, t, _ in model.calls:
        if x.shape[0] % n:
            raise Mismatch(f"the model was fed a batch of {x.shape[0]} for {n} images", inputs,
                           "feed x_t (or torch.cat([x_t, x_t]) for both CFG passes at once)")
        chunks = x.split(n)
        if steps and steps[-1][0] == t:
            x_step = steps[-1][1]
        else:
            x_step = chunks[0]
            steps.append((t, x_step))
        if any(not torch.allclose(c, x_step, rtol=0, atol=0, equal_nan=True) for c in chunks):
            raise Mismatch(f"at t = {t} the model was fed two different images in one step", inputs,
                           "both CFG passes (cond and uncond) take the same x_t")
    return steps


def _expect_timesteps(visited, timesteps, i_start, inputs):
    expected = timesteps[i_start:-1]
    if visited == expected:
        return
    default = strided_timesteps()
    hint = ("the model was never called" if not visited else
            "the loop stops after the step that lands on t′ = 0: the model is never called at t = 0"
            if visited == timesteps[i_start:] else
            "start at index i_start: the first t is timesteps[i_start]" if visited == timesteps[:-1] else
            "start at index i_start, not i_start + 1" if visited == timesteps[i_start + 1:-1] else
            "i_start is an index into timesteps: the first t is timesteps[i_start], not i_start"
            if visited and visited[0] == i_start else
            "use the timesteps passed in, not strided_timesteps()" if visited == default[i_start:-1] else
            "walk the strided timesteps passed in (t′ = timesteps[i + 1]), not every t"
            if len(visited) > 1 and visited[0] - visited[1] == 1 else
            "one model call (or one pair of CFG calls) per step, at t = timesteps[i] for "
            "i = i_start, …, len(timesteps) − 2")
    shown = visited if len(visited) <= 14 else visited[:6] + ["…"] + visited[-3:]
    raise Mismatch(f"the model was called at t = {shown}", inputs, hint, f"expected t = {expected}")


def _misfit(z: torch.Tensor) -> float:
    """How far z is from N(0, 1) draws: |mean| + |std − 1| (inf for NaN)."""
    if not torch.isfinite(z).all():
        return float("inf")
    mean, std = _z_stats(z)
    return abs(mean) + abs(std - 1)


def _diagnose(case, steps, k, region):
    """The hint of the typical mistake that explains transitions k, k + 1, … best (all of them)."""
    worst = {}
    for j in range(k, len(steps) - 1):
        (t, x), (t_prev, nxt) = steps[j], steps[j + 1]
        eps, var = case.guided(x, t)
        diff = (nxt - _mean(x, t, t_prev, eps, case.ac)).double()
        sigma = _std(case.ac, t, t_prev, var)
        candidates = [(h, (diff / s)[region]) for s, h in case.sigma_variants(x, t, t_prev)]
        candidates += [(h, ((nxt - _mean(x, t, t_prev, e, case.ac)).double() / sigma)[region])
                       for e, h in case.eps_variants(x, t)]
        for h, z in candidates:
            worst[h] = max(worst.get(h, 0.0), _misfit(z))
    fits = sorted((score, h) for h, score in worst.items() if score < 0.16)
    return fits[0][1] if fits else ""


def _expect_transition(case, steps, k, inputs, region, last_z):
    """The state after step k (what the model sees next) = posterior mean + σ z, z ~ N(0, 1), on ``region``."""
    (t, x), (t_prev, nxt) = steps[k], steps[k + 1]
    eps, var = case.guided(x, t)
    mean = _mean(x, t, t_prev, eps, case.ac)
    diff = (nxt - mean).double()
    if not torch.isfinite(diff).all():
        raise Mismatch(f"the state after the step t = {t} → t′ = {t_prev} holds NaN or inf", inputs,
                       "look for the square root or log of a negative number: is add_jump_variance "
                       "called with t > t′ in that order?")
    z = (diff / _std(case.ac, t, t_prev, var))[region]
    if _standard(z):
        if last_z is not None and abs(_corr(z, last_z)) > 0.3:
            raise Mismatch(f"the noise of the step t = {t} → t′ = {t_prev} repeats the previous step's",
                           inputs, "draw fresh noise at every step")
        if abs(_corr(z, eps[region])) > 0.3:
            raise Mismatch(f"the noise of the step t = {t} → t′ = {t_prev} follows ε̂", inputs,
                           "v_σ is fresh noise z ~ N(0, I) (add_jump_variance draws it), not the model's ε̂")
        return z
    mean_z, std_z = _z_stats(z)
    if diff[region].abs().max() < 1e-6:
        hint = "the noise v_σ is missing: add it (add_jump_variance) on every step but the last"
    elif abs(_corr(diff[region], eps[region])) > 0.9:
        hint = "v_σ is fresh noise z ~ N(0, I) (add_jump_variance draws it), not the model's ε̂"
    else:
        hint = _diagnose(case, steps, k, region)
    raise Mismatch(f"the step t = {t} → t′ = {t_prev} is not posterior mean + σ z with z ~ N(0, I)", inputs,
                   hint, f"(x_t′ − mean)/σ has mean {mean_z:.3g} and std {std_z:.3g} over {z.numel()} values, "
                   "expected about 0 and 1")


def _expect_last(case, got, x, t, inputs):
    """The last step lands on t′ = 0 and adds no noise: the output is its posterior mean exactly
    (for inpainting: blended with the clean image)."""
    ac, eps, var = case.ac, *case.guided(x, t)
    mean = _mean(x, t, 0, eps, ac)
    blend = (lambda v: v) if case.mask is None else (lambda v: case.mask * v + (1 - case.mask) * case.im)
    wrong = [(blend(v), h) for v, h in _step_mistakes(x, t, 0, eps, ac)]
    wrong += [(blend(_mean(x, t, 0, e, ac)), h) for e, h in case.eps_variants(x, t)]
    if case.mask is not None:
        m, im = case.mask, case.im
        wrong += [((1 - m) * mean + m * im, "mask polarity swapped: m = 1 marks the pixels to generate, m = 0 "
                   "the ones kept from im"),
                  (mean, "after the last step put back the known pixels: x ← m·x + (1 − m)·im"),
                  (im, "this is im itself: only the pixels where m = 0 are kept")]
    if isinstance(got, (tuple, list)):
        raise Mismatch(f"returned a {type(got).__name__}, expected the tensor x_0", inputs,
                       "return the final images alone")
    expected = blend(mean)
    sigma = _std(ac, t, 0, var)
    with _hint(lambda: "no noise on the last step: the step that lands on t′ = 0 returns the posterior mean "
               "itself" if isinstance(got, torch.Tensor) and got.shape == mean.shape
               and _standard(((got - expected).double() / sigma)[case.mask_region()]) else ""):
        if case.mask is not None and isinstance(got, torch.Tensor) and got.shape == mean.shape:
            keep = (case.mask == 0).expand_as(got)
            if not torch.allclose(got[keep], case.im.expand_as(got)[keep], atol=1e-5):
                a0 = ac[0]
                z = ((got - a0.sqrt() * case.im) / (1 - a0).sqrt())[keep]
                hint = ("at t′ = 0 put back the clean im itself, not forward(im, 0): the kept pixels must end "
                        "exact" if _standard(z) else _matching(got, wrong))
                raise Mismatch("the kept pixels (mask = 0) of the output are not exactly im", inputs, hint)
        expect_close(got, expected, "the output x_0 (the last step's posterior mean, no noise)", inputs, wrong,
                     atol=1e-4)


def _matching(got, wrong):
    for value, hint in wrong:
        if torch.allclose(got.double(), value.double(), atol=1e-4, rtol=1e-4):
            return hint
    return ""


def _expect_known(case, x, t, inputs, step):
    """Inpainting: where m = 0 the state the model sees is forward(im, t), statistically."""
    keep = (case.mask == 0).expand(x.shape)
    im, ac = case.im.expand(x.shape), case.ac

    def z_at(t_):
        a = ac[t_]
        return ((x - a.sqrt() * im) / (1 - a).sqrt())[keep]

    if _is_forward(x[keep], im[keep], ac[t]):
        return
    previous = case.timesteps[case.timesteps.index(t) - 1] if t != case.timesteps[0] else None
    gen = ~keep
    hint = ("the known part must be noised to t′ (forward(im, t′)); the clean im only after the last step"
            if torch.allclose(x[keep], im[keep]) else
            "mask polarity swapped: m = 1 marks the pixels to generate, m = 0 the ones kept from im"
            if _is_forward(x[gen], im[gen], ac[t]) else
            "noise the known part with the model's schedule: forward(im, t′, model.alphas_cumprod, …)"
            if _is_forward(x[keep], im[keep], _if_alphas()[t]) else
            "noise the known part to t′, the timestep the loop just reached, not t"
            if previous is not None and _is_forward(x[keep], im[keep], ac[previous]) else
            "after every step t → t′ set x_t′ ← m·x_t′ + (1 − m)·forward(im, t′): the model must see the "
                 "known pixels noised to its t")
    mean, std = _z_stats(z_at(t))
    raise Mismatch(f"at t = {t} (step {step}) the kept pixels (mask = 0) the model sees are not forward(im, t)",
                   inputs, hint, f"(x_t − √ᾱ_t im)/√(1 − ᾱ_t) there has mean {mean:.3g} and std {std:.3g}, "
                                 "expected about 0 and 1")


def _check_loop(case, got, inputs, first):
    """Everything a loop must do, read off the toy model's records; ``first(x)`` checks the first state."""
    n = SHAPE[0]
    steps = _steps(case.model, n, inputs)
    _expect_timesteps([t for t, _ in steps], case.timesteps, case.i_start, inputs)
    first(steps[0][1])
    if case.mask is not None:
        for k in range(1, len(steps)):
            _expect_known(case, steps[k][1], steps[k][0], inputs, k)
    _expect_last(case, got, steps[-1][1], steps[-1][0], inputs)
    region = case.mask_region()
    last_z = None
    for k in range(len(steps) - 1):
        last_z = _expect_transition(case, steps, k, inputs, region, last_z)


def _loop_cases():
    """(model, timesteps, i_start, cond, uncond, scale): IF's schedule with a predicted variance,
    then a made-up one without (and one condition per image)."""
    return [(ToyModel(), strided_timesteps(990, 90), 3, _cond(1, 0.8), _cond(2, -0.3), 5.0, 11),
            (ToyModel(scheduler=_linear_schedule(), variance=False), strided_timesteps(960, 120), 0,
             _cond(3, 0.6, n=2), _cond(4, -0.2), 3.0, 12)]


def _noised_inputs(model, t, seed):
    im = _image(*SHAPE, seed=seed)
    return diffusion.forward(im, t, model.alphas_cumprod, generator=_gen(seed + 100))


def _first_is(im_noisy, case, inputs):
    def first(x):
        if torch.equal(x, im_noisy):
            return
        t0, a = case.timesteps[case.i_start], case.ac[case.timesteps[case.i_start]]
        again = _standard((x - a.sqrt() * im_noisy) / (1 - a).sqrt())
        raise Mismatch("the first x_t fed to the model is not im_noisy", inputs,
                       f"im_noisy is already noisy at t = timesteps[i_start] = {t0}: start the loop from it as "
                       "it is, don't noise it again" if again else "start the loop from x_t = im_noisy")
    return first


@exercise("iterative_denoise", "solutions.part_a:iterative_denoise", "04")
@own_rng
def iterative_denoise_cases(student):
    for model, timesteps, i_start, cond, _, _, seed in _loop_cases():
        im_noisy = _noised_inputs(model, timesteps[i_start], seed)
        inputs = (_show(model=_model_text(model), im_noisy=im_noisy, i_start=i_start, cond=cond,
                        timesteps=repr(timesteps)) + f", generator = torch.Generator().manual_seed({seed + 1000})")
        got = _call(student, model, im_noisy, i_start, cond, timesteps, generator=_gen(seed + 1000), inputs=inputs)
        case = _Case(model, timesteps, i_start, cond)
        _check_loop(case, got, inputs, _first_is(im_noisy, case, inputs))


@exercise("iterative_denoise_cfg", "solutions.part_a:iterative_denoise_cfg", "06")
@own_rng
def iterative_denoise_cfg_cases(student):
    for model, timesteps, i_start, cond, uncond, scale, seed in _loop_cases():
        im_noisy = _noised_inputs(model, timesteps[i_start], seed)
        inputs = (_show(model=_model_text(model), im_noisy=im_noisy, i_start=i_start, cond=cond, uncond=uncond,
                        scale=scale, timesteps=repr(timesteps)) + f", generator = torch.Generator().manual_seed({seed + 1000})")
        got = _call(student, model, im_noisy, i_start, cond, uncond, scale, timesteps, generator=_gen(seed + 1000),
                    inputs=inputs)
        case = _Case(model, timesteps, i_start, cond, uncond, scale)
        _check_loop(case, got, inputs, _first_is(im_noisy, case, inputs))


@exercise("sdedit", "solutions.part_a:sdedit", "07")
@own_rng
def sdedit_cases(student):
    for model, timesteps, i_start, cond, uncond, scale, seed in _loop_cases():
        i_start = i_start + 1
        im = _image(*SHAPE, seed=seed).sign() * 0.9   # ±0.9: the noised image's slope on im is sharp
        inputs = (_show(model=_model_text(model), im=im, i_start=i_start, cond=cond, uncond=uncond, scale=scale,
                        timesteps=repr(timesteps)) + f", generator = torch.Generator().manual_seed({seed + 1000})")
        got = _call(student, model, im, i_start, cond, uncond, scale, timesteps, generator=_gen(seed + 1000), inputs=inputs)
        case = _Case(model, timesteps, i_start, cond, uncond, scale)

        def first(x):
            t0 = timesteps[i_start]

            def noised_at(t, ac=case.ac):
                return _is_forward(x, im, ac[t])

            if noised_at(t0):
                return
            hint = ("SDEdit starts from the clean image: noise it to t = timesteps[i_start] first (forward)"
                    if torch.allclose(x, im) else
                    "i_start is an index into timesteps: noise to t = timesteps[i_start], not t = i_start"
                    if noised_at(i_start) else
                    "noise with the model's schedule: forward(im, t, model.alphas_cumprod, …)"
                    if noised_at(t0, _if_alphas()) else
                    "noise im to t = timesteps[i_start], not to timesteps[0] or pure noise"
                    if noised_at(timesteps[0]) or _standard(x) else
                    "the first state is forward(im, timesteps[i_start]): √ᾱ_t im + √(1 − ᾱ_t) ε")
            raise Mismatch(f"the first x_t fed to the model is not im noised to t = timesteps[i_start] = {t0}",
                           inputs, hint)

        _check_loop(case, got, inputs, first)


@exercise("inpaint", "solutions.part_a:inpaint", "08")
@own_rng
def inpaint_cases(student):
    for (model, _, _, cond, uncond, scale, seed), timesteps, mask in (
            (_loop_cases()[0], strided_timesteps(990, 110), edits.box_mask(0, 0, 32, 16, size=32)),
            (_loop_cases()[1], strided_timesteps(960, 160),
             torch.cat([edits.box_mask(0, 16, 32, 16, size=32), edits.box_mask(8, 0, 16, 32, size=32)]))):
        im = _image(*SHAPE, seed=seed).sign() * 0.9
        inputs = (_show(model=_model_text(model), im=im,
                        mask="box_mask(0, 0, 32, 16, size=32) (the left half)" if mask.shape[0] == 1
                        else "two box masks, one per image", cond=cond, uncond=uncond, scale=scale,
                        timesteps=repr(timesteps)) + f", generator = torch.Generator().manual_seed({seed + 1000})")
        got = _call(student, model, im, mask, cond, uncond, scale, timesteps, generator=_gen(seed + 1000), inputs=inputs)
        case = _Case(model, timesteps, 0, cond, uncond, scale, im=im, mask=mask)

        def first(x):
            gen, keep = (mask == 1).expand(SHAPE), (mask == 0).expand(SHAPE)
            a = case.ac[timesteps[0]]
            if _standard(x[gen]) and (_standard(x[keep]) or _standard(((x - a.sqrt() * im) / (1 - a).sqrt())[keep])):
                return
            raise Mismatch("the first x_t fed to the model is not pure noise", inputs,
                           "inpainting samples from pure noise x ~ N(0, I) in im's shape, as in §1.5"
                           if not _standard(x[keep]) or not _standard(x[gen]) else "")

        _check_loop(case, got, inputs, first)


# ---- §1.8 visual anagrams

def _cfg_hint():
    return "each ε needs classifier-free guidance: ε_u + γ(ε_c − ε_u)"


@exercise("anagram_eps", "solutions.part_a:anagram_eps", "10")
@own_rng
def anagram_eps_cases(student):
    x, t = _randn(2, 3, 8, 8, seed=0), 500
    c1, c2, u = _cond(1, 0.8), _cond(2, -0.6), _cond(3, 0.2)
    for model, view, label, scale in ((ToyModel((3, 8, 8)), edits.FLIP, "edits.FLIP", 7.0),
                                      (ToyModel((3, 8, 8), variance=False), edits.ROTATE_90, "edits.ROTATE_90", 4.0)):
        inputs = (_show(model=_model_text(model), cond1=c1, cond2=c2, uncond=u, scale=scale, view=label)
                  + "; then eps_fn(x, t) with " + _show(x=x, t=t))
        eps_fn = _call(student, model, c1, c2, u, scale, view, inputs=inputs)
        eps, variance = _eps_and_variance(eps_fn, x, t, inputs)
        expected, var_expected = edits.anagram_eps(_Quiet(model), c1, c2, u, scale, view)(x, t)
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
                      + view.invert(_conditional(model, c2, view.apply(x), t)[0])) / 2, _cfg_hint()),
            (lambda: (_cfg(model, u, c1, scale, x, t)[0]
                      + view.invert(_cfg(model, u, c2, scale, view.apply(x), t)[0])) / 2,
             "guidance the wrong way round: ε_u + γ(ε_c − ε_u), not ε_c + γ(ε_u − ε_c)"),
            (e1, "this is ε_1 alone: average it with view⁻¹(ε_2)"),
        ])
        _expect_variance(variance, var_expected, inputs, [] if v1 is None else [
            (v1, "average the variance like ε: (v_1 + view⁻¹(v_2))/2"),
            ((v1 + v2) / 2, "map the view's variance back with view.invert too"),
            (lambda: (_conditional(model, u, x, t)[1] + view.invert(_conditional(model, u, view.apply(x), t)[1])) / 2,
             "take each variance from the conditional pass (cond1, cond2), not the unconditional one"),
        ])


# ---- §1.9 hybrid images

@exercise("hybrid_eps", "solutions.part_a:hybrid_eps", "11")
@own_rng
def hybrid_eps_cases(student):
    x, t, kernel_size, sigma = _randn(2, 3, 40, 40, seed=0), 500, 9, 1.5
    c1, c2, u = _cond(1, 0.8), _cond(2, -0.6), _cond(3, 0.2)
    for model, scale in ((ToyModel((3, 40, 40)), 7.0), (ToyModel((3, 40, 40), variance=False), 4.0)):
        inputs = (_show(model=_model_text(model), cond_far=c1, cond_near=c2, uncond=u, scale=scale,
                        kernel_size=kernel_size, sigma=sigma) + "; then eps_fn(x, t) with " + _show(x=x, t=t))
        eps_fn = _call(student, model, c1, c2, u, scale, kernel_size, sigma, inputs=inputs)
        eps, variance = _eps_and_variance(eps_fn, x, t, inputs)
        expected, var_expected = edits.hybrid_eps(_Quiet(model), c1, c2, u, scale, kernel_size, sigma)(x, t)
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
            (lambda: edits.lowpass(e1, kernel_size, sigma ** 2) + edits.highpass(e2, kernel_size, sigma ** 2),
             "sigma is the blur's standard deviation: gaussian_blur(x, [k, k], [sigma, sigma])"),
            (lambda: low(_conditional(model, c1, x, t)[0]) + high(_conditional(model, c2, x, t)[0]), _cfg_hint()),
            (lambda: low(_cfg(model, u, c1, scale, x, t)[0]) + high(_cfg(model, u, c2, scale, x, t)[0]),
             "guidance the wrong way round: ε_u + γ(ε_c − ε_u), not ε_c + γ(ε_u − ε_c)"),
        ])
        _expect_variance(variance, var_expected, inputs, [] if v1 is None else [
            (v1, "combine the variances like ε: lowpass(v_1) + highpass(v_2)"),
            ((v1 + v2) / 2, "combine the variances like ε, not by averaging: lowpass(v_1) + highpass(v_2)"),
            (lambda: high(v1) + low(v2), "the variances' lowpass and highpass are swapped"),
        ])
