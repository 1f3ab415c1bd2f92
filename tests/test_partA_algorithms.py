"""Part A's formulas, checked against an oracle noise model that knows the clean image.

With ε̂ equal to the true noise, every denoiser in §1.3–1.9 must give back x_0 exactly; a wrong
coefficient anywhere breaks that. Offline and fast: no DeepFloyd, a tiny UNet at most.
"""
import math

import pytest
import torch
from diffusers import DDPMScheduler

from course_utils.part_a.diffusion import (add_jump_variance, blur_denoise, cfg_eps, denoise_loop, forward,
                                           iterative_denoise, iterative_denoise_cfg, one_step_denoise,
                                           sample)
from course_utils.part_a.edits import (FLIP, IDENTITY, ROTATE_90, anagram_eps, box_mask, highpass,
                                       hybrid_eps, inpaint, lowpass, sdedit, sdedit_series, visual_anagram,
                                       hybrid_image)
from course_utils.part_a.noise_models import NoiseModel, OracleNoiseModel, tiny_noise_model
from course_utils.part_a.schedule import IF_SCHEDULER_CONFIG, if_scheduler, strided_timesteps, use_timesteps

TS = strided_timesteps()


@pytest.fixture(scope="module")
def x0():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.fixture(scope="module")
def tiny():
    return tiny_noise_model(seed=0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def cond(seed):
    return torch.randn(1, 77, 4096, generator=gen(seed)) * 0.1


# ---- schedule

def test_alphas_cumprod_match_diffusers_and_the_cosine_formula():
    ours = if_scheduler().alphas_cumprod
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (250, 500, 750):
        # diffusers' ᾱ_t multiplies betas 0..t, i.e. ᾱ(t + 1)/ᾱ(0) (no beta is clipped this early)
        by_hand = f(t + 1) / f(0)
        assert ours[t].item() == pytest.approx(theirs[t].item(), abs=1e-7)
        assert ours[t].item() == pytest.approx(by_hand, rel=1e-4)
    assert [round(ours[t].item(), 4) for t in (250, 500, 750)] == [0.8459, 0.4923, 0.1432]


def test_if_scheduler_config():
    config = if_scheduler().config
    for key, value in IF_SCHEDULER_CONFIG.items():
        assert config[key] == value
    assert config.variance_type == "learned_range" and config.num_train_timesteps == 1000


def test_strided_timesteps():
    assert TS[:3] == [990, 960, 930] and TS[-1] == 0 and len(TS) == 34
    assert all(a - b == 30 for a, b in zip(TS, TS[1:]))
    assert strided_timesteps(990, 90) == [990, 900, 810, 720, 630, 540, 450, 360, 270, 180, 90, 0]
    with pytest.raises(ValueError):
        strided_timesteps(990, 40)


def test_scheduler_previous_timestep_follows_the_strided_schedule():
    scheduler = use_timesteps(if_scheduler(), TS)
    assert int(scheduler.previous_timestep(990)) == 960
    assert int(scheduler.previous_timestep(30)) == 0


def test_add_variance_is_the_learned_range_interpolation():
    scheduler = use_timesteps(if_scheduler(), TS)
    ac = scheduler.alphas_cumprod
    t, t_prev = 510, 480
    v = torch.full((1, 3, 4, 4), 0.3)
    beta = 1 - ac[t] / ac[t_prev]
    beta_tilde = beta * (1 - ac[t_prev]) / (1 - ac[t])
    frac = (0.3 + 1) / 2
    log_var = frac * torch.log(beta) + (1 - frac) * torch.log(beta_tilde)
    assert torch.allclose(scheduler._get_variance(t, v), log_var.expand_as(v), atol=1e-6)
    image = torch.zeros(1, 3, 4, 4)
    noise = torch.randn(image.shape, generator=gen(5))
    out = add_jump_variance(ac, t, t_prev, v, image, gen(5))
    assert torch.allclose(out, torch.exp(0.5 * log_var) * noise, atol=1e-6)


# ---- §1.1–1.4 with an oracle

def test_forward_is_the_closed_form(x0):
    ac = if_scheduler().alphas_cumprod
    eps = torch.randn(x0.shape, generator=gen(1))
    x_t = forward(x0, 500, noise=eps)
    assert torch.allclose(x_t, ac[500].sqrt() * x0 + (1 - ac[500]).sqrt() * eps)
    # seeded: the same generator gives the same noisy image
    assert torch.equal(forward(x0, 500, generator=gen(3)), forward(x0, 500, generator=gen(3)))


@pytest.mark.parametrize("t", [0, 30, 250, 500, 750, 990, 999])
def test_one_step_denoising_recovers_x0_with_true_noise(x0, t):
    oracle = OracleNoiseModel(x0)
    x_t = forward(x0, t, generator=gen(t))
    # dividing by √ᾱ_t magnifies float32 rounding near t = 999 (ᾱ ≈ 1e-9); allow for that
    atol = max(1e-4, 1e-6 / oracle.alphas_cumprod[t].sqrt().item())
    assert torch.allclose(one_step_denoise(oracle, x_t, t, None), x0, atol=atol)


@pytest.mark.parametrize("i_start", [0, 1, 10, 20, 32, 33])
def test_iterative_denoising_ends_at_x0(x0, i_start):
    oracle = OracleNoiseModel(x0)
    x_t = forward(x0, TS[i_start], generator=gen(i_start))
    out = iterative_denoise(oracle, x_t, i_start, None, TS, progress=False)
    if i_start == len(TS) - 1:  # no step left: still noisy at t = 0
        assert torch.equal(out, x_t)
    else:
        # The walk ends at t = 0, where ᾱ_0 = 0.99996 rather than 1: what is left is a residual
        # noise below √α_t (1 − ᾱ_0)/√(1 − ᾱ_t) |ε| ≈ 6e-4 |ε|, far below one 8-bit grey level.
        assert torch.allclose(out, x0, atol=5e-3)
        assert (out - x0).abs().mean() < 1e-3


def test_one_step_of_the_update_with_true_noise(x0):
    # x_t' = √ᾱ_t' β_t/(1−ᾱ_t) x_0 + √α_t (1−ᾱ_t')/(1−ᾱ_t) x_t with x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε:
    # the x_0 coefficients add up to √ᾱ_t', the ε coefficient is √α_t (1−ᾱ_t')/√(1−ᾱ_t).
    from course_utils.part_a.diffusion import denoise_step
    ac = if_scheduler().alphas_cumprod
    eps = torch.randn(x0.shape, generator=gen(2))
    t, t_prev = 510, 480
    a_t, a_p = ac[t], ac[t_prev]
    x_prev = denoise_step(forward(x0, t, noise=eps), t, t_prev, eps, ac)
    expected = a_p.sqrt() * x0 + (a_t / a_p).sqrt() * (1 - a_p) / (1 - a_t).sqrt() * eps
    assert torch.allclose(x_prev, expected, atol=1e-5)


def test_blur_is_torchvision_gaussian_blur(x0):
    out = blur_denoise(x0, 5, 2.0)
    assert out.shape == x0.shape and not torch.equal(out, x0)
    flat = torch.zeros(1, 3, 16, 16) + 0.25
    assert torch.allclose(blur_denoise(flat), flat)


def test_bad_image_shape_says_what_to_do():
    with pytest.raises(ValueError, match="load_image"):
        forward(torch.zeros(3, 64, 64), 500)


# ---- §1.6 CFG

class LinearModel(NoiseModel):
    """A condition-dependent stand-in: ε̂ = x·s(c), variance = c-dependent constant."""

    def __init__(self):
        self.scheduler = if_scheduler()
        self.calls = []

    def __call__(self, x, t, cond):
        self.calls.append(x.shape[0])
        s = cond.mean(dim=(1, 2)).view(-1, 1, 1, 1)
        return x * s, torch.zeros_like(x) + s


def test_cfg_with_scale_one_is_the_conditional_pass(x0):
    model = LinearModel()
    c, u = cond(1), cond(2)
    eps_c, var_c = model(x0, 500, c.expand(2, -1, -1))
    eps, var = cfg_eps(model, c, u, scale=1.0)(x0, 500)
    assert torch.allclose(eps, eps_c, atol=1e-6) and torch.allclose(var, var_c)
    assert model.calls[-1] == 2 * x0.shape[0]  # cond and uncond in ONE batched pass


def test_cfg_formula(x0):
    model = LinearModel()
    c, u = cond(1), cond(2)
    eps_c, _ = model(x0, 500, c.expand(2, -1, -1))
    eps_u, _ = model(x0, 500, u.expand(2, -1, -1))
    eps, _ = cfg_eps(model, c, u, scale=7.0)(x0, 500)
    assert torch.allclose(eps, eps_u + 7.0 * (eps_c - eps_u), atol=1e-5)


def test_cfg_denoising_with_oracle_ends_at_x0(x0):
    oracle = OracleNoiseModel(x0)
    x_t = forward(x0, TS[5], generator=gen(0))
    out = iterative_denoise_cfg(oracle, x_t, 5, cond(1), cond(2), scale=7.0, timesteps=TS, progress=False)
    assert torch.allclose(out, x0, atol=5e-3)


# ---- §1.7 edits with an oracle

def test_sdedit_with_oracle_returns_the_image(x0):
    oracle = OracleNoiseModel(x0)
    for i in (1, 10, 20):
        assert torch.allclose(sdedit(oracle, x0, i, cond(1), cond(2), progress=False), x0, atol=5e-3)


@pytest.mark.parametrize("i_start", [len(TS), len(TS) + 5, -1])
def test_sdedit_outside_the_schedule_is_an_error_as_in_iterative_denoise(x0, i_start):
    oracle = OracleNoiseModel(x0)
    with pytest.raises(ValueError, match=rf"0\.\.{len(TS) - 1}.*got {i_start}"):
        sdedit(oracle, x0, i_start, cond(1), cond(2), timesteps=TS)
    with pytest.raises(ValueError, match=rf"0\.\.{len(TS) - 1}"):
        iterative_denoise(oracle, x0, i_start, cond(1), timesteps=TS)


def test_sdedit_series_shows_i_starts_past_a_short_schedule_unedited_and_says_so(x0, capsys):
    oracle = OracleNoiseModel(x0)
    other = torch.zeros_like(x0)
    out = sdedit_series(oracle, other, cond(1), cond(2), i_starts=(1, len(TS) + 3), timesteps=TS)
    assert len(out) == 2 and torch.equal(out[1], other) and not torch.equal(out[0], other)
    assert f"i_start [{len(TS) + 3}] is past the end" in capsys.readouterr().out


def test_inpainting_keeps_unmasked_pixels(tiny):
    im = torch.rand(1, 3, 64, 64, generator=gen(0)) * 2 - 1
    mask = box_mask(16, 16, 24, 24)
    ts = strided_timesteps(990, 330)
    out = inpaint(tiny, im, mask, cond(1), cond(2), timesteps=ts, generator=gen(0), progress=False)
    keep = mask.expand_as(im) == 0
    assert torch.equal(out[keep], im[keep])
    assert not torch.allclose(out[~keep], im[~keep])


def test_inpainting_with_oracle_restores_everything():
    im = torch.rand(1, 3, 16, 16, generator=gen(0)) * 2 - 1
    out = inpaint(OracleNoiseModel(im), im, box_mask(4, 4, 8, 8, size=16), cond(1), cond(2),
                  generator=gen(1), progress=False)
    assert torch.allclose(out, im, atol=5e-3)


def test_anagram_with_one_prompt_and_identity_view_is_plain_sampling(tiny):
    c, u = cond(1), cond(2)
    ts = strided_timesteps(990, 330)
    plain = sample(tiny, c, 1, u, 7.0, ts, gen(4), progress=False)
    anagram = visual_anagram(tiny, c, c, u, 7.0, IDENTITY, 1, ts, gen(4), progress=False)
    # batched differently (4 images per pass, not 2), so equal only up to float rounding, which
    # the steps amplify; the random model's samples reach |x| ~ 300, so compare to that scale
    assert (plain - anagram).abs().max() <= 1e-5 * plain.abs().max()


def test_anagram_views_are_inverted(x0):
    model = LinearModel()
    c = cond(1)
    for view in (FLIP, ROTATE_90):
        assert torch.equal(view.invert(view.apply(x0)), x0)
    # a model that is equivariant to flips gives ε_1 whatever the view
    eps, _ = anagram_eps(model, c, c, cond(2), 7.0, FLIP)(x0, 500)
    eps1, _ = cfg_eps(model, c, cond(2), 7.0)(x0, 500)
    assert torch.allclose(eps, eps1, atol=1e-5)


def test_lowpass_plus_highpass_is_identity(x0):
    assert torch.allclose(lowpass(x0) + highpass(x0), x0, atol=1e-6)


def test_hybrid_of_a_prompt_with_itself_is_plain_sampling(tiny):
    c, u = cond(1), cond(2)
    ts = strided_timesteps(990, 330)
    plain = sample(tiny, c, 1, u, 7.0, ts, gen(4), progress=False)
    hybrid = hybrid_image(tiny, c, c, u, 7.0, 33, 2.0, 1, ts, gen(4), progress=False)
    assert (plain - hybrid).abs().max() <= 1e-5 * plain.abs().max()


def test_hybrid_eps_splits_frequencies(x0):
    model = LinearModel()
    c1, c2, u = cond(1), cond(2), cond(3)
    eps, _ = hybrid_eps(model, c1, c2, u, 7.0)(x0, 500)
    e1, _ = cfg_eps(model, c1, u, 7.0)(x0, 500)
    e2, _ = cfg_eps(model, c2, u, 7.0)(x0, 500)
    assert torch.allclose(eps, lowpass(e1) + e2 - lowpass(e2), atol=1e-5)


def test_sampling_is_seeded(tiny):
    ts = strided_timesteps(990, 330)
    a = sample(tiny, cond(1), 2, timesteps=ts, generator=gen(7), progress=False)
    b = sample(tiny, cond(1), 2, timesteps=ts, generator=gen(7), progress=False)
    assert torch.equal(a, b) and a.shape == (2, 3, 64, 64) and torch.isfinite(a).all()


def test_denoise_loop_keeps_intermediates(x0):
    oracle = OracleNoiseModel(x0)
    x_t = forward(x0, TS[10], generator=gen(0))
    out, kept = denoise_loop(lambda x, t: oracle(x, t), x_t, 10, oracle.scheduler, TS, keep_every=5,
                             progress=False)
    assert [t for t, _ in kept] == [TS[i] for i in range(10, 33, 5)]
    with pytest.raises(ValueError, match="i_start"):
        denoise_loop(lambda x, t: oracle(x, t), x_t, 40, oracle.scheduler, TS)


def test_anagram_and_hybrid_use_one_forward_pass(x0):
    model = LinearModel()
    anagram_eps(model, cond(1), cond(2), cond(3), 7.0, FLIP)(x0, 500)
    hybrid_eps(model, cond(1), cond(2), cond(3), 7.0)(x0, 500)
    assert model.calls == [4 * x0.shape[0]] * 2  # (prompt 1, prompt 2) × (cond, uncond)
