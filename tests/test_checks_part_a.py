"""Part A's offline checks: the course's functions pass, blanks and typical mistakes fail with
the hint that names the mistake, and ``use`` falls back to the course's function."""
import pytest
import torch

from course_utils import checks
from course_utils.part_a.diffusion import (cfg_eps, conditional_eps, default_alphas_cumprod,
                                           denoise_loop, estimate_x0, expand_cond, randn_like)
from course_utils.part_a.edits import highpass, lowpass
from course_utils.part_a.schedule import strided_timesteps

PART_A = ["forward", "estimate_x0", "denoise_step", "cfg_eps", "sdedit", "keep_known", "anagram_eps",
          "hybrid_eps"]


def reference(name):
    return checks.EXERCISES[name].load_reference()


# ---- typical mistakes, each with the reference's signature

def forward_with(mix, draw=randn_like, shift=0):
    def forward(im, t, alphas_cumprod=None, noise=None, generator=None):
        a = (default_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod)[t + shift]
        eps = draw(im, generator) if noise is None else noise
        return mix(a, im, eps)
    return forward


def x0_with(formula, shift=0):
    return lambda x_t, t, eps, alphas_cumprod: formula(alphas_cumprod[t + shift], x_t, eps)


def step_with(alpha_of, a_prev_of=lambda ac, t, t_prev: ac[t_prev], returns_x0=False):
    def denoise_step(x_t, t, t_prev, eps, alphas_cumprod):
        a_t, a_prev = alphas_cumprod[t], a_prev_of(alphas_cumprod, t, t_prev)
        alpha = alpha_of(alphas_cumprod, t, a_prev)
        x0 = estimate_x0(x_t, t, eps, alphas_cumprod)
        if returns_x0:
            return x0
        return a_prev.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * x_t
    return denoise_step


def cfg_with(guide, variance_half=0, expand=expand_cond, pair=True):
    def cfg(model, cond, uncond, scale=7.0):
        def eps_fn(x, t):
            n = x.shape[0]
            eps, var = model(torch.cat([x, x]), t, torch.cat([expand(cond, n), expand(uncond, n)]))
            eps_c, eps_u = eps.chunk(2)
            out = guide(eps_c, eps_u, scale)
            var = None if var is None else var.chunk(2)[variance_half]
            return (out, var) if pair else out
        return eps_fn
    return cfg


def sdedit_with(start, eps_of=cfg_eps):
    def sdedit(model, im, i_start, cond, uncond, scale=7.0, timesteps=None, generator=None, progress=True):
        timesteps = timesteps or strided_timesteps()
        x = start(im, i_start, timesteps, model.alphas_cumprod, generator)
        eps_fn = eps_of(model, cond, uncond, scale) if eps_of is cfg_eps else eps_of(model, cond)
        return denoise_loop(eps_fn, x, i_start, model.scheduler, timesteps, generator, progress=progress)
    return sdedit


def noised(t_of):
    return lambda im, i, ts, ac, g: reference("forward")(im, t_of(i, ts), ac, generator=g)


def keep_known_with(blend, noise_at_0=False, draw=None):
    def keep_known(x_t, t, im, mask, alphas_cumprod, generator=None):
        if t == 0 and not noise_at_0:
            known = im
        elif draw is None:
            known = reference("forward")(im, t, alphas_cumprod, generator=generator)
        else:
            known = reference("forward")(im, t, alphas_cumprod, noise=draw(im))
        return blend(mask, x_t, known)
    return keep_known


def anagram_with(combine):
    def anagram_eps(model, cond1, cond2, uncond, scale=7.0, view=None):
        def eps_fn(x, t):
            eps1, var1 = cfg_eps(model, cond1, uncond, scale)(x, t)
            eps2, var2 = cfg_eps(model, cond2, uncond, scale)(view.apply(x), t)
            return combine(view, eps1, eps2), None if var1 is None else combine(view, var1, var2)
        return eps_fn
    return anagram_eps


def hybrid_with(combine, combine_var=None):
    def hybrid_eps(model, cond_far, cond_near, uncond, scale=7.0, kernel_size=33, sigma=2.0):
        def eps_fn(x, t):
            eps1, var1 = cfg_eps(model, cond_far, uncond, scale)(x, t)
            eps2, var2 = cfg_eps(model, cond_near, uncond, scale)(x, t)
            var = None if var1 is None else (combine_var or combine)(var1, var2, kernel_size, sigma)
            return combine(eps1, eps2, kernel_size, sigma), var
        return eps_fn
    return hybrid_eps


guided = lambda c, u, s: u + s * (c - u)  # noqa: E731

WRONG = [
    ("forward", forward_with(lambda a, x0, e: a * x0 + (1 - a) * e), "√ is missing on ᾱ_t and on 1 − ᾱ_t"),
    ("forward", forward_with(lambda a, x0, e: (1 - a).sqrt() * x0 + a.sqrt() * e), "swapped"),
    ("forward", forward_with(lambda a, x0, e: a.sqrt() * x0 + (1 - a).sqrt() * e, shift=-1), "alphas_cumprod[t - 1]"),
    ("forward", forward_with(lambda a, x0, e: a.sqrt() * x0 + (1 - a).sqrt() * e,
                             draw=lambda im, g: torch.randn_like(im)), "ε is drawn differently"),
    ("estimate_x0", x0_with(lambda a, x, e: (x - (1 - a) * e) / a.sqrt()), "√ is missing on 1 − ᾱ_t"),
    ("estimate_x0", x0_with(lambda a, x, e: a.sqrt() * (x - (1 - a).sqrt() * e)), "don't multiply"),
    ("estimate_x0", x0_with(lambda a, x, e: (x - (1 - a).sqrt() * e) / a.sqrt(), shift=-1), "off by one"),
    ("denoise_step", step_with(lambda ac, t, a_prev: ac[t] / ac[t - 1]), "the whole jump t → t′"),
    ("denoise_step", step_with(lambda ac, t, a_prev: ac[t] / a_prev, returns_x0=True), "this is x̂_0"),
    ("denoise_step", step_with(lambda ac, t, a_prev: ac[t] / a_prev, lambda ac, t, t_prev: ac[t - 1]),
     "use alphas_cumprod[t_prev]"),
    ("cfg_eps", cfg_with(lambda c, u, s: c + s * (u - c)), "wrong way round"),
    ("cfg_eps", cfg_with(guided, variance_half=1), "conditional half"),
    ("cfg_eps", cfg_with(guided, expand=lambda c, n: c.repeat(n, 1, 1)), "don't repeat it"),
    ("cfg_eps", cfg_with(guided, pair=False), "return both"),
    ("sdedit", sdedit_with(lambda im, i, ts, ac, g: im), "starts from the clean image"),
    ("sdedit", sdedit_with(noised(lambda i, ts: i)), "index into timesteps"),
    ("sdedit", sdedit_with(noised(lambda i, ts: ts[i]), eps_of=conditional_eps), "classifier-free guidance"),
    ("keep_known", keep_known_with(lambda m, x, k: (1 - m) * x + m * k), "polarity"),
    ("keep_known", keep_known_with(lambda m, x, k: m * x + (1 - m) * k, draw=torch.randn_like), "noise differs"),
    ("keep_known", keep_known_with(lambda m, x, k: m * x + (1 - m) * k, noise_at_0=True), "at t = 0"),
    ("anagram_eps", anagram_with(lambda v, e1, e2: (e1 + e2) / 2), "not mapped back"),
    ("anagram_eps", anagram_with(lambda v, e1, e2: e1 + v.invert(e2)), "divide their sum by 2"),
    ("anagram_eps", anagram_with(lambda v, e1, e2: (e1 + v.apply(e2)) / 2), "not view.apply"),
    ("hybrid_eps", hybrid_with(lambda e1, e2, k, s: highpass(e1, k, s) + lowpass(e2, k, s)), "swapped"),
    ("hybrid_eps", hybrid_with(lambda e1, e2, k, s: lowpass(e1, k, s) + e2), "ε_2 − lowpass(ε_2)"),
    ("hybrid_eps", hybrid_with(lambda e1, e2, k, s: lowpass(e1, k, s) + highpass(e2, k, s),
                               combine_var=lambda v1, v2, k, s: v1), "combine the variances"),
]


@pytest.mark.parametrize("name", PART_A)
def test_the_reference_passes(name):
    result = checks.run(name, reference(name))
    assert result.passed, result.message


@pytest.mark.parametrize("name", PART_A)
def test_a_blank_exercise_is_not_written_yet(name):
    def blank(*args, **kwargs):
        raise NotImplementedError

    result = checks.run(name, blank)
    assert not result.passed and "not written yet" in result.message


@pytest.mark.parametrize("name, wrong, hint", WRONG, ids=[f"{n}-{h[:24]}" for n, _, h in WRONG])
def test_a_typical_mistake_fails_with_its_hint(name, wrong, hint):
    result = checks.run(name, wrong)
    assert not result.passed
    assert "hint: " in result.message and hint in result.message, result.message


def test_every_exercise_has_two_mistakes_tested():
    assert all(sum(n == name for n, _, _ in WRONG) >= 2 for name in PART_A)
    assert set(PART_A) <= set(checks.EXERCISES)


@pytest.mark.parametrize("name", PART_A)
def test_use_falls_back_to_the_reference(name, capsys):
    wrong = next(w for n, w, _ in WRONG if n == name)
    assert checks.use(name, wrong) is reference(name)
    assert "the cells below use the course's" in capsys.readouterr().out
    assert getattr(checks, name)(reference(name)) is reference(name)
    assert "every check passed" in capsys.readouterr().out
